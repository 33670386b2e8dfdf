"""Nodes and pods reduced to what placement reads, parsed once from the API's plain dicts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from corral.fleet.resources import Amounts, offered, pod_requests

NODE_ANNOTATION = "corral.dev/node"
"""On Corral's gated worker pods: the node the solver assigned (counted before the pod binds)."""

HARD_TAINT_EFFECTS = ("NoSchedule", "NoExecute")
TERMINATED_PHASES = ("Succeeded", "Failed")

PodKey = tuple[str, str]
"""(namespace, name)."""


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _labels(value: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in _mapping(value).items() if v is not None}


@dataclass(frozen=True, slots=True)
class NodeRecord:
    """One Node: its labels, whether pods may land on it, and what it offers."""

    name: str
    labels: dict[str, str] = field(default_factory=dict)
    ready: bool = False
    unschedulable: bool = False
    taints: tuple[dict[str, Any], ...] = ()
    """Only NoSchedule and NoExecute taints: PreferNoSchedule does not keep a pod away."""
    allocatable: Amounts = field(default_factory=dict)
    capacity: Amounts = field(default_factory=dict)

    @classmethod
    def from_dict(cls, node: Mapping[str, Any]) -> NodeRecord:
        metadata = _mapping(node.get("metadata"))
        spec = _mapping(node.get("spec"))
        status = _mapping(node.get("status"))
        name = metadata.get("name")
        if not isinstance(name, str) or not name:
            raise ValueError("a Node needs metadata.name")
        ready = any(
            isinstance(c, Mapping) and c.get("type") == "Ready" and c.get("status") == "True"
            for c in status.get("conditions") or ()
        )
        taints = tuple(
            dict(t)
            for t in spec.get("taints") or ()
            if isinstance(t, Mapping) and t.get("effect") in HARD_TAINT_EFFECTS
        )
        allocatable = offered(status.get("allocatable"))
        capacity = offered(status.get("capacity")) or dict(allocatable)
        return cls(
            name=name,
            labels=_labels(metadata.get("labels")),
            ready=ready,
            unschedulable=bool(spec.get("unschedulable")),
            taints=taints,
            allocatable=allocatable,
            capacity=capacity,
        )

    @property
    def schedulable(self) -> bool:
        """Ready and not cordoned: the taint check depends on the pod and is made elsewhere."""
        return self.ready and not self.unschedulable

    @property
    def problem(self) -> str | None:
        """Why no new pod should be placed here (cordoned, NotReady), in words; None if fine."""
        if self.unschedulable:
            return f"node {self.name} is cordoned"
        if not self.ready:
            return f"node {self.name} is NotReady"
        return None


@dataclass(frozen=True, slots=True)
class PodRecord:
    """One Pod: where it counts and what it takes there."""

    key: PodKey
    node: str | None
    """`spec.nodeName`, or Corral's `corral.dev/node` annotation for a pod not bound yet."""
    requests: Amounts
    active: bool
    """Not Succeeded/Failed: its requests still hold on the node."""

    @classmethod
    def from_dict(cls, pod: Mapping[str, Any]) -> PodRecord:
        metadata = _mapping(pod.get("metadata"))
        spec = _mapping(pod.get("spec"))
        status = _mapping(pod.get("status"))
        name = metadata.get("name")
        if not isinstance(name, str) or not name:
            raise ValueError("a Pod needs metadata.name")
        namespace = metadata.get("namespace") or "default"
        node = spec.get("nodeName") or _mapping(metadata.get("annotations")).get(NODE_ANNOTATION)
        return cls(
            key=(str(namespace), name),
            node=str(node) if node else None,
            requests=pod_requests(spec),
            active=status.get("phase") not in TERMINATED_PHASES,
        )

    @property
    def counted(self) -> bool:
        """Whether this pod's requests are held on a node."""
        return self.active and self.node is not None
