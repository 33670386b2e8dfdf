"""Resource amounts of nodes and pods as exact integers.

Kubernetes quantities are parsed exactly (`corral.api.quantity`) and then rounded once, in the
direction that never overcommits a node: what a node offers is rounded down, what a pod asks for is
rounded up. cpu is counted in millicores, memory in bytes, everything else in whole units.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from fractions import Fraction
from typing import Any

from corral.api.quantity import QuantityError, parse_quantity

CPU = "cpu"
MEMORY = "memory"
PODS = "pods"

Amounts = dict[str, int]
"""Resource name -> amount (cpu in millicores, memory in bytes, others in units)."""


def _scaled(name: str, value: Fraction) -> Fraction:
    return value * 1000 if name == CPU else value


def _amounts(quantities: Any, rounding: Any) -> Amounts:
    out: Amounts = {}
    if not isinstance(quantities, Mapping):
        return out
    for name, text in quantities.items():
        try:
            value = parse_quantity(text)
        except (QuantityError, TypeError):
            continue
        out[str(name)] = max(0, int(rounding(_scaled(str(name), value))))
    return out


def offered(quantities: Any) -> Amounts:
    """A node's `status.allocatable` (or `capacity`), rounded down."""
    return _amounts(quantities, math.floor)


def requested(quantities: Any) -> Amounts:
    """A container's requests, rounded up."""
    return _amounts(quantities, math.ceil)


def _container_requests(container: Any) -> Amounts:
    if not isinstance(container, Mapping):
        return {}
    resources = container.get("resources") or {}
    if not isinstance(resources, Mapping):
        return {}
    # The API server defaults requests to limits where only limits are set; a hand-written pod
    # (as `corral plan --pods` may read) gets the same treatment here.
    amounts = requested(resources.get("limits"))
    amounts.update(requested(resources.get("requests")))
    return amounts


def add_into(total: Amounts, more: Mapping[str, int], sign: int = 1) -> None:
    for name, amount in more.items():
        total[name] = total.get(name, 0) + sign * amount


def _maximum(left: Amounts, right: Mapping[str, int]) -> Amounts:
    out = dict(left)
    for name, amount in right.items():
        if amount > out.get(name, 0):
            out[name] = amount
    return out


def pod_requests(spec: Any) -> Amounts:
    """What a pod takes from its node, as kube-scheduler counts it.

    The sum of the app containers and the restartable (sidecar) init containers, or the largest
    single init container plus the sidecars started before it if that is more, plus the pod
    `overhead`; and one `pods` slot.
    """
    if not isinstance(spec, Mapping):
        return {PODS: 1}
    total: Amounts = {}
    for container in _as_list(spec.get("containers")):
        add_into(total, _container_requests(container))
    sidecars: Amounts = {}
    init_peak: Amounts = {}
    for container in _as_list(spec.get("initContainers")):
        amounts = _container_requests(container)
        if isinstance(container, Mapping) and container.get("restartPolicy") == "Always":
            add_into(sidecars, amounts)
            continue
        during = dict(sidecars)
        add_into(during, amounts)
        init_peak = _maximum(init_peak, during)
    add_into(total, sidecars)
    total = _maximum(total, init_peak)
    add_into(total, requested(spec.get("overhead")))
    total[PODS] = 1
    return {name: amount for name, amount in total.items() if amount}


def _as_list(value: Any) -> Iterable[Any]:
    return value if isinstance(value, list) else ()
