"""Nodes and pods reduced to what placement reads, parsed once from the API's plain dicts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from corral.api.names import NODE_ANNOTATION
from corral.fleet.fields import (
    InvalidFleetObject,
    boolean,
    labels,
    mapping,
    object_parts,
    sequence,
    string,
    string_map,
)
from corral.fleet.resources import Amounts, offered, pod_requests

HARD_TAINT_EFFECTS = ("NoSchedule", "NoExecute")
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
TERMINATED_PHASES = ("Succeeded", "Failed")

PodKey = tuple[str, str]
"""(namespace, name)."""


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
    notice: str | None = None
    """A binding termination notice on the node (the signal read, e.g. `condition
    DrainInProgress=True`): it is going, so no new worker is placed on it, whatever its taints
    and conditions say to kube-scheduler (`corral.disruption.notices.node_usability`)."""
    advisory: str | None = None
    """An advisory notice (a rebalance recommendation, planned maintenance): placement avoids
    the node when it has a choice."""

    @classmethod
    def from_dict(cls, node: Mapping[str, Any]) -> NodeRecord:
        """Raises InvalidFleetObject naming the first field of the wrong type."""
        metadata, spec, status, name = object_parts(node, "Node")
        ready = False
        for index, condition in enumerate(sequence(status.get("conditions"), "status.conditions")):
            field = f"status.conditions[{index}]"
            condition = mapping(condition, field)
            kind = string(condition.get("type"), f"{field}.type", required=True)
            state = string(condition.get("status"), f"{field}.status", required=True)
            ready = ready or (kind == "Ready" and state == "True")
        taints = []
        for index, taint in enumerate(sequence(spec.get("taints"), "spec.taints")):
            field = f"spec.taints[{index}]"
            taint = mapping(taint, field)
            string(taint.get("key"), f"{field}.key", required=True)
            string(taint.get("value"), f"{field}.value")
            effect = string(taint.get("effect"), f"{field}.effect", required=True)
            if effect not in TAINT_EFFECTS:
                raise InvalidFleetObject(f"{field}.effect", f"must be one of {TAINT_EFFECTS}")
            if effect in HARD_TAINT_EFFECTS:
                taints.append(dict(taint))
        allocatable = offered(status.get("allocatable"), "status.allocatable")
        capacity = offered(status.get("capacity"), "status.capacity") or dict(allocatable)
        return cls(
            name=name,
            labels=labels(metadata.get("labels"), "metadata.labels"),
            ready=ready,
            unschedulable=boolean(spec.get("unschedulable"), "spec.unschedulable"),
            taints=tuple(taints),
            allocatable=allocatable,
            capacity=capacity,
        )

    @property
    def schedulable(self) -> bool:
        """Ready, not cordoned and not going: the taint check depends on the pod and is made
        elsewhere."""
        return self.ready and not self.unschedulable and self.notice is None

    @property
    def problem(self) -> str | None:
        """Why no new pod should be placed here (cordoned, NotReady, a termination notice), in
        words; None if fine."""
        if self.unschedulable:
            return f"node {self.name} is cordoned"
        if not self.ready:
            return f"node {self.name} is NotReady"
        if self.notice is not None:
            return f"node {self.name} has a termination notice ({self.notice})"
        return None


@dataclass(frozen=True, slots=True)
class PodRecord:
    """One Pod: where it counts and what it takes there."""

    key: PodKey
    node: str | None
    """`spec.nodeName`; for a pod not bound yet, Corral's `corral.dev/node` annotation or else
    `status.nominatedNodeName` (where kube-scheduler, another scheduler or an autoscaler expects
    it to land: room Corral must not plan for a gang either)."""
    requests: Amounts
    active: bool
    """Not Succeeded/Failed: its requests still hold on the node."""

    @classmethod
    def from_dict(cls, pod: Mapping[str, Any]) -> PodRecord:
        """Raises InvalidFleetObject naming the first field of the wrong type."""
        metadata, spec, status, name = object_parts(pod, "Pod")
        namespace = string(metadata.get("namespace"), "metadata.namespace") or "default"
        annotations = string_map(metadata.get("annotations"), "metadata.annotations")
        node = (
            string(spec.get("nodeName"), "spec.nodeName")
            or annotations.get(NODE_ANNOTATION)
            or string(status.get("nominatedNodeName"), "status.nominatedNodeName")
        )
        phase = string(status.get("phase"), "status.phase")
        return cls(
            key=(namespace, name),
            node=node or None,
            requests=pod_requests(spec),
            active=phase not in TERMINATED_PHASES,
        )

    @property
    def counted(self) -> bool:
        """Whether this pod's requests are held on a node."""
        return self.active and self.node is not None


@dataclass(frozen=True, slots=True)
class Overcommit:
    """A node whose counted pods ask for more of `resource` than it offers, and who they are."""

    node: str
    resource: str
    requested: int
    offered: int
    pods: tuple[PodKey, ...]
