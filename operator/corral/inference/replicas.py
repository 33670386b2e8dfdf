"""What the InferenceService lifecycle needs to know of a replica pod, and of the template."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from corral.api.inferenceservice import InferenceServiceSpec
from corral.api.names import (
    NODE_ANNOTATION,
    PLACEMENT_GATE,
    REPLACEMENT_LABEL,
    REVISION_LABEL,
    SLOT_LABEL,
)
from corral.disruption.notices import Notice, pod_notices


def revision_of(spec: InferenceServiceSpec) -> str:
    """A short hash of everything a replica pod is made from: a change of it rolls out."""
    made_from = {
        "template": spec.template,
        "acceleratorsPerReplica": spec.accelerators_per_replica,
        "port": spec.port,
    }
    digest = hashlib.sha256(json.dumps(made_from, sort_keys=True).encode()).hexdigest()
    return digest[:8]


@dataclass(frozen=True)
class ReplicaPod:
    name: str
    uid: str | None
    slot: int
    revision: str
    phase: str
    node: str | None
    """spec.nodeName, once bound."""
    planned_node: str | None
    gated: bool
    deleting: bool
    ready: bool
    replacement: int = 0
    """How many replicas of this slot were made for termination notices before this one
    (label `corral.dev/replacement`; absent: 0)."""
    disruption: Notice | None = None
    """The pod's own notice: condition DisruptionTarget=True (it is about to be terminated)."""

    @property
    def terminated(self) -> bool:
        return self.phase in ("Succeeded", "Failed")

    @property
    def live(self) -> bool:
        """Counts as a replica: not going away, not ended."""
        return not self.deleting and not self.terminated

    @property
    def where(self) -> str | None:
        return self.node or self.planned_node

    @classmethod
    def from_pod(cls, pod: dict[str, Any]) -> ReplicaPod | None:
        """None for a pod that is not a well-formed replica (labels edited by hand)."""
        meta = pod.get("metadata") or {}
        labels = meta.get("labels") or {}
        try:
            slot = int(labels[SLOT_LABEL])
            revision = str(labels[REVISION_LABEL])
        except (KeyError, ValueError):
            return None
        try:
            replacement = max(0, int(labels.get(REPLACEMENT_LABEL) or 0))
        except ValueError:
            replacement = 0
        spec = pod.get("spec") or {}
        status = pod.get("status") or {}
        gates = [gate.get("name") for gate in spec.get("schedulingGates") or []]
        ready = any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in status.get("conditions") or []
            if isinstance(c, dict)
        )
        return cls(
            name=meta.get("name", ""),
            uid=meta.get("uid"),
            slot=slot,
            revision=revision,
            phase=status.get("phase") or "Pending",
            node=spec.get("nodeName") or None,
            planned_node=(meta.get("annotations") or {}).get(NODE_ANNOTATION),
            gated=PLACEMENT_GATE in gates,
            deleting=bool(meta.get("deletionTimestamp")),
            ready=ready and not meta.get("deletionTimestamp"),
            replacement=replacement,
            disruption=next(iter(pod_notices(pod).notices), None),
        )
