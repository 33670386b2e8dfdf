"""What the cluster says about tenants: namespace labels, ResourceQuotas, PriorityClasses.

Read from the plain objects the API returns (or a test writes), defensively: an object that cannot
be read is left out and `problems` says why — one bad quota never stops the pass. Quantities are
exact integers in the units of `corral.fleet.resources` (cpu in millicores); what a quota allows
is rounded down and what it has used rounded up, so Corral never thinks there is more room than
the API server will grant.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from corral.api.quantity import QuantityError, parse_quantity
from corral.fleet.fields import (
    InvalidFleetObject,
    labels,
    mapping,
    object_parts,
    sequence,
    string,
)
from corral.fleet.resources import CPU, PODS, Amounts

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
"""Set by the API server on every namespace since Kubernetes 1.21."""


def quota_resource(key: str) -> str | None:
    """The pod resource a ResourceQuota `hard` key counts (`requests.nvidia.com/gpu` ->
    `nvidia.com/gpu`, `cpu` -> `cpu`, `count/pods` -> `pods`), or None for keys that do not count
    pod requests (limits, object counts, storage)."""
    if key.startswith("requests."):
        return key[len("requests.") :]
    if key in ("cpu", "memory", "ephemeral-storage"):
        return key
    if key in ("pods", "count/pods"):
        return PODS
    return None


def _amount(name: str, value: Any, field: str, rounding: Any) -> int:
    try:
        exact = parse_quantity(value)
    except QuantityError as exc:
        raise InvalidFleetObject(field, str(exc)) from None
    return int(rounding(exact * 1000 if name == CPU else exact))


@dataclass(frozen=True)
class ScopeRequirement:
    """One term of a quota's scopes: `Terminating`, `PriorityClass In [high]`, ..."""

    scope: str
    operator: str = "Exists"
    values: tuple[str, ...] = ()


@dataclass(frozen=True)
class PodFacts:
    """What quota scopes look at in the pods a workload would create."""

    priority_class: str | None = None
    terminating: bool = False
    """The template sets activeDeadlineSeconds."""


@dataclass(frozen=True)
class ResourceQuota:
    namespace: str
    name: str
    hard: Amounts
    """Pod resource -> what the quota allows (only the keys that count pod requests)."""
    keys: dict[str, str]
    """Pod resource -> the `hard` key it came from, for messages."""
    used: Amounts
    scopes: tuple[ScopeRequirement, ...] = ()

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> ResourceQuota:
        metadata, spec, status, name = object_parts(obj, "ResourceQuota")
        namespace = string(metadata.get("namespace"), "metadata.namespace", required=True)
        assert namespace is not None
        hard: Amounts = {}
        keys: dict[str, str] = {}
        for key, value in mapping(spec.get("hard"), "spec.hard").items():
            resource = quota_resource(str(key))
            if resource is not None:
                amount = _amount(resource, value, f"spec.hard[{key}]", math.floor)
                if resource not in hard or amount < hard[resource]:
                    hard[resource], keys[resource] = amount, str(key)
        used: Amounts = {}
        for key, value in mapping(status.get("used"), "status.used").items():
            resource = quota_resource(str(key))
            if resource is not None and keys.get(resource) == key:
                used[resource] = _amount(resource, value, f"status.used[{key}]", math.ceil)
        scopes = [
            ScopeRequirement(string(scope, "spec.scopes[]", required=True) or "")
            for scope in sequence(spec.get("scopes"), "spec.scopes")
        ]
        selector = mapping(spec.get("scopeSelector"), "spec.scopeSelector")
        for index, term in enumerate(
            sequence(selector.get("matchExpressions"), "spec.scopeSelector.matchExpressions")
        ):
            where = f"spec.scopeSelector.matchExpressions[{index}]"
            term = mapping(term, where)
            values = sequence(term.get("values"), f"{where}.values")
            scopes.append(
                ScopeRequirement(
                    string(term.get("scopeName"), f"{where}.scopeName", required=True) or "",
                    string(term.get("operator"), f"{where}.operator", required=True) or "",
                    tuple(string(v, f"{where}.values[]", required=True) or "" for v in values),
                )
            )
        return cls(namespace, name, hard, keys, used, tuple(scopes))

    def applies_to(self, pod: PodFacts) -> bool:
        """Whether the pods of a workload are counted by this quota (all its scopes match)."""
        return all(_scope_matches(scope, pod) for scope in self.scopes)


def _scope_matches(term: ScopeRequirement, pod: PodFacts) -> bool:
    if term.scope == "Terminating":
        return pod.terminating
    if term.scope == "NotTerminating":
        return not pod.terminating
    if term.scope == "BestEffort":
        return False  # Corral's pods always request devices
    if term.scope == "NotBestEffort":
        return True
    if term.scope == "CrossNamespacePodAffinity":
        return False
    if term.scope == "PriorityClass":
        name = pod.priority_class
        if term.operator == "Exists":
            return name is not None
        if term.operator == "DoesNotExist":
            return name is None
        if term.operator == "In":
            return name in term.values
        if term.operator == "NotIn":
            return name not in term.values
    return True  # a scope Corral does not know: assume it counts (never promise too much)


@dataclass
class Tenancy:
    namespace_labels: dict[str, dict[str, str]] = field(default_factory=dict)
    priority_classes: dict[str, int] = field(default_factory=dict)
    default_priority: int = 0
    """The value of the globalDefault PriorityClass (0 without one), for pods naming none."""
    default_class: str | None = None
    """The globalDefault PriorityClass, which the API server gives pods naming none."""
    quotas: dict[str, list[ResourceQuota]] = field(default_factory=dict)
    """Namespace -> its quotas that count pod requests."""
    problems: dict[str, str] = field(default_factory=dict)
    """Objects left out because they could not be read -> why."""

    @classmethod
    def build(
        cls,
        namespaces: Iterable[Mapping[str, Any]] = (),
        quotas: Iterable[Mapping[str, Any]] = (),
        priority_classes: Iterable[Mapping[str, Any]] = (),
    ) -> Tenancy:
        tenancy = cls()
        for namespace in namespaces:
            try:
                metadata, _, _, name = object_parts(namespace, "Namespace")
                tenancy.namespace_labels[name] = labels(metadata.get("labels"), "metadata.labels")
            except InvalidFleetObject as exc:
                tenancy.problems[f"Namespace {_name(namespace)}"] = str(exc)
        for quota in quotas:
            try:
                parsed = ResourceQuota.from_dict(quota)
            except InvalidFleetObject as exc:
                tenancy.problems[f"ResourceQuota {_name(quota)}"] = str(exc)
                continue
            if parsed.hard:
                tenancy.quotas.setdefault(parsed.namespace, []).append(parsed)
        defaults: list[tuple[str, int]] = []
        for priority_class in priority_classes:
            class_name = _name(priority_class)
            value = priority_class.get("value") if isinstance(priority_class, Mapping) else None
            if class_name is None or isinstance(value, bool) or not isinstance(value, int):
                tenancy.problems[f"PriorityClass {class_name}"] = "value: must be an integer"
                continue
            assert isinstance(priority_class, Mapping)
            tenancy.priority_classes[class_name] = value
            if priority_class.get("globalDefault") is True:
                defaults.append((class_name, value))
        if defaults:
            # Kubernetes allows one; if a race left two, the API server uses the lowest value.
            tenancy.default_class, tenancy.default_priority = min(defaults, key=lambda d: d[1])
        return tenancy

    def labels_of(self, namespace: str) -> dict[str, str]:
        """A namespace's labels; one not seen yet has the label every namespace carries."""
        return self.namespace_labels.get(namespace, {NAMESPACE_NAME_LABEL: namespace})

    def priority(self, class_name: str | None) -> int | None:
        """The priority of pods naming `class_name` (None: no such PriorityClass)."""
        if class_name is None:
            return self.default_priority
        return self.priority_classes.get(class_name)


def _name(obj: Any) -> str | None:
    metadata = obj.get("metadata") if isinstance(obj, Mapping) else None
    namespace = metadata.get("namespace") if isinstance(metadata, Mapping) else None
    name = metadata.get("name") if isinstance(metadata, Mapping) else None
    if not isinstance(name, str):
        return None
    return f"{namespace}/{name}" if isinstance(namespace, str) else name
