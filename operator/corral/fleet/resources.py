"""Resource amounts of nodes and pods as exact integers.

Kubernetes quantities are parsed exactly (`corral.api.quantity`) and then rounded once, in the
direction that never overcommits a node: what a node offers is rounded down, what a pod asks for is
rounded up. cpu is counted in millicores, memory in bytes, everything else in whole units.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from fractions import Fraction
from typing import Any

from corral.api.quantity import QuantityError, parse_quantity
from corral.fleet.fields import InvalidFleetObject, mapping, sequence

CPU = "cpu"
MEMORY = "memory"
PODS = "pods"

Amounts = dict[str, int]
"""Resource name -> amount (cpu in millicores, memory in bytes, others in units)."""


def _scaled(name: str, value: Fraction) -> Fraction:
    return value * 1000 if name == CPU else value


def _amounts(quantities: Any, rounding: Any, field: str) -> Amounts:
    out: Amounts = {}
    for name, text in mapping(quantities, field).items():
        try:
            value = parse_quantity(text)
        except QuantityError as exc:
            raise InvalidFleetObject(f"{field}[{name}]", str(exc)) from None
        out[str(name)] = max(0, int(rounding(_scaled(str(name), value))))
    return out


def offered(quantities: Any, field: str = "status.allocatable") -> Amounts:
    """A node's `status.allocatable` (or `capacity`), rounded down."""
    return _amounts(quantities, math.floor, field)


def requested(quantities: Any, field: str = "resources.requests") -> Amounts:
    """A container's requests, rounded up."""
    return _amounts(quantities, math.ceil, field)


def _container_requests(container: Any, field: str) -> tuple[Amounts, bool]:
    """The container's requests, and whether it is a sidecar (an init container that stays)."""
    container = mapping(container, field)
    resources = mapping(container.get("resources"), f"{field}.resources")
    # The API server defaults requests to limits where only limits are set; a hand-written pod
    # (as `corral plan --pods` may read) gets the same treatment here.
    amounts = requested(resources.get("limits"), f"{field}.resources.limits")
    amounts.update(requested(resources.get("requests"), f"{field}.resources.requests"))
    return amounts, container.get("restartPolicy") == "Always"


def add_into(total: Amounts, more: Mapping[str, int], sign: int = 1) -> None:
    for name, amount in more.items():
        total[name] = total.get(name, 0) + sign * amount


def _maximum(left: Amounts, right: Mapping[str, int]) -> Amounts:
    out = dict(left)
    for name, amount in right.items():
        if amount > out.get(name, 0):
            out[name] = amount
    return out


def pod_requests(spec: Any, field: str = "spec") -> Amounts:
    """What a pod takes from its node, as kube-scheduler counts it.

    The sum of the app containers and the restartable (sidecar) init containers, or the largest
    single init container plus the sidecars started before it if that is more, plus the pod
    `overhead`; and one `pods` slot.
    """
    spec = mapping(spec, field)
    total: Amounts = {}
    for index, container in enumerate(sequence(spec.get("containers"), f"{field}.containers")):
        add_into(total, _container_requests(container, f"{field}.containers[{index}]")[0])
    sidecars: Amounts = {}
    init_peak: Amounts = {}
    inits = sequence(spec.get("initContainers"), f"{field}.initContainers")
    for index, container in enumerate(inits):
        amounts, sidecar = _container_requests(container, f"{field}.initContainers[{index}]")
        if sidecar:
            add_into(sidecars, amounts)
            continue
        during = dict(sidecars)
        add_into(during, amounts)
        init_peak = _maximum(init_peak, during)
    add_into(total, sidecars)
    total = _maximum(total, init_peak)
    add_into(total, requested(spec.get("overhead"), f"{field}.overhead"))
    total[PODS] = 1
    return {name: amount for name, amount in total.items() if amount}
