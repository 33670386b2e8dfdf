"""What the lifecycle needs to know of a worker pod, read from the pod as the API returns it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from corral.api.names import (
    NODE_ANNOTATION,
    PLACEMENT_GATE,
    REPLACEMENT_LABEL,
    RESTART_LABEL,
    WORKER_INDEX_LABEL,
)

CHECKPOINT_PREFIX = "corral.dev/checkpoint-"


def _time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None  # a time the API server would never write: treat as unknown
        return parsed if parsed.tzinfo is not None else None
    return None


@dataclass(frozen=True)
class WorkerPod:
    name: str
    uid: str | None
    index: int
    restart: int
    phase: str
    node: str | None
    """spec.nodeName: set once kube-scheduler bound the pod."""
    planned_node: str | None
    gated: bool
    deleting: bool
    start_time: datetime | None
    finish_time: datetime | None
    failure: str | None
    """Why the worker failed, in words (`exit code 1 (Error)`), when it did."""
    checkpoint: dict[str, str] = field(default_factory=dict)
    """The pod's `corral.dev/checkpoint-*` annotations (the checkpoint protocol)."""
    disruption: str | None = None
    """The reason of a `DisruptionTarget=True` condition: the pod is being terminated by the
    platform (preemption, eviction, node shutdown), not failing on its own."""
    pod_ip: str | None = None
    nominated_node: str | None = None
    """status.nominatedNodeName: the node kube-scheduler keeps for the pod until it binds."""
    unschedulable: str | None = None
    """kube-scheduler's words when it tried to bind the (ungated) pod and could not
    (condition PodScheduled=False, reason Unschedulable)."""
    replacement: int = 0
    """How many times this worker's index was replaced in place in its attempt (its label)."""

    @property
    def terminated(self) -> bool:
        return self.phase in ("Succeeded", "Failed")

    @classmethod
    def from_pod(cls, pod: dict[str, Any]) -> WorkerPod | None:
        """None for a pod that is not a well-formed Corral worker (labels edited by hand)."""
        meta = pod.get("metadata") or {}
        labels = meta.get("labels") or {}
        try:
            index = int(labels[WORKER_INDEX_LABEL])
            restart = int(labels.get(RESTART_LABEL, "0"))
            replacement = int(labels.get(REPLACEMENT_LABEL, "0"))
        except (KeyError, ValueError):
            return None
        spec = pod.get("spec") or {}
        status = pod.get("status") or {}
        gates = [gate.get("name") for gate in spec.get("schedulingGates") or []]
        finish, failure = None, None
        for container in status.get("containerStatuses") or []:
            terminated = (container.get("state") or {}).get("terminated")
            if terminated:
                finished = _time(terminated.get("finishedAt"))
                if finished and (finish is None or finished > finish):
                    finish = finished
                code = terminated.get("exitCode", 0)
                if code:
                    reason = terminated.get("reason") or "Error"
                    failure = (
                        f"container {container.get('name')} exited with code {code} ({reason})"
                    )
        phase = status.get("phase") or "Pending"
        annotations = meta.get("annotations") or {}
        # Taken by the platform (preemption, eviction, node shutdown), not failing on its own.
        disruption = _condition(status, "DisruptionTarget", "True", "reason", "unknown reason")
        # kube-scheduler tried to bind the ungated pod and could not.
        unschedulable = _condition(
            status, "PodScheduled", "False", "message", "no reason given", "Unschedulable"
        )
        if phase == "Failed" and failure is None:
            failure = status.get("message") or status.get("reason") or "the pod failed"
        return cls(
            name=meta.get("name", ""),
            uid=meta.get("uid"),
            index=index,
            restart=restart,
            phase=phase,
            node=spec.get("nodeName") or None,
            planned_node=annotations.get(NODE_ANNOTATION),
            gated=PLACEMENT_GATE in gates,
            deleting=bool(meta.get("deletionTimestamp")),
            start_time=_time(status.get("startTime")),
            finish_time=finish,
            failure=failure,
            checkpoint={
                str(k): str(v)
                for k, v in annotations.items()
                if str(k).startswith(CHECKPOINT_PREFIX)
            },
            disruption=disruption,
            pod_ip=status.get("podIP"),
            nominated_node=status.get("nominatedNodeName") or None,
            unschedulable=None if gates or spec.get("nodeName") else unschedulable,
            replacement=replacement,
        )


def _condition(
    status: dict[str, Any],
    kind: str,
    value: str,
    field: str,
    default: str,
    reason: str | None = None,
) -> str | None:
    """`field` (reason or message, else `default`) of the pod condition `kind` when it has
    status `value` (and `reason`, if given); None when there is no such condition."""
    for condition in status.get("conditions") or []:
        if (
            isinstance(condition, dict)
            and condition.get("type") == kind
            and condition.get("status") == value
            and (reason is None or condition.get("reason") == reason)
        ):
            return str(condition.get(field) or default)
    return None
