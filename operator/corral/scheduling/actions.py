"""Typed actions: what a lifecycle decides, as values; one executor per runtime applies them.

A lifecycle returns a `Decision`; its `actions` come out in the one order that keeps every
invariant if the process dies between any two of them (see `ORDER`). The live executor
(controllers/executor.py) writes them to the API server; the in-memory cluster of the simulator
and of the unit tests (corral/sim/memory.py) applies them to its own state. Consecutive actions
of one type may run concurrently; an action that fails stops the ones after it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import BaseModel


@dataclass(frozen=True)
class WriteStatus:
    """The object's whole status as it should be; only the difference is written, and only
    against the version it was decided on (a concurrent change is a conflict, decided again)."""

    status: BaseModel


@dataclass(frozen=True)
class DeletePod:
    name: str
    uid: str | None = None
    """Delete only this incarnation (a pod of the same name made later is not ours to delete)."""


@dataclass(frozen=True)
class ReleaseAssumed:
    """Forget the ledger's planned workers of `attempt` that were never created."""

    attempt: int


@dataclass(frozen=True)
class EnsureService:
    """The workload's Service exists (created if someone deleted it)."""


@dataclass(frozen=True)
class CreateWorker:
    """Worker `index` of `attempt`, pinned to `node` and gated; counted in the ledger first."""

    index: int
    attempt: int
    node: str
    replacement: int = 0
    """A worker replaced in place: its count within the attempt (part of the pod's name)."""


@dataclass(frozen=True)
class Nominate:
    """Write `status.nominatedNodeName` of a gated pod (pods/status): kube-scheduler then counts
    the pod on `node` when it places pods of equal or lower priority, so the planned room stays
    free until the gang is ungated and bound (KEP-5278; docs/training.md, "Reservations")."""

    name: str
    node: str


@dataclass(frozen=True)
class Ungate:
    """Remove the placement gate: kube-scheduler may bind the pod to its planned node."""

    name: str


@dataclass(frozen=True)
class AnnotatePod:
    """Merge annotations into a worker pod (the checkpoint request of corral.disruption)."""

    name: str
    annotations: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class CallHook:
    """Ask a worker for a checkpoint through its httpGet hook: POST `url` with the request id.
    Done off the reconcile path by the runtime's hook caller, within `timeout_seconds`; a 200's
    `{"step", "uri"}` is written back onto the pod as the acknowledgement annotations, so the
    lifecycle reads both hooks the same way (corral.disruption.checkpoints.http_ack)."""

    pod: str
    url: str
    request_id: str
    timeout_seconds: float


@dataclass(frozen=True)
class Emit:
    """A Kubernetes Event on the object (also logged)."""

    type: str
    """Normal or Warning."""
    reason: str
    message: str


@dataclass(frozen=True)
class WantsPlacement:
    """The workload waits in the queue: run the scheduling pass."""


@dataclass(frozen=True)
class RequeueAfter:
    """Look at the object again after `seconds` (a time-based check is due)."""

    seconds: float


Action = (
    WriteStatus
    | DeletePod
    | ReleaseAssumed
    | EnsureService
    | CreateWorker
    | Nominate
    | Ungate
    | AnnotatePod
    | CallHook
    | Emit
    | WantsPlacement
    | RequeueAfter
)

ORDER: tuple[type, ...] = (
    WriteStatus,  # records placements, attempts and settled usage before anything depends on it
    DeletePod,  # leftovers of older attempts go before new pods appear
    ReleaseAssumed,
    EnsureService,  # the rendezvous name resolves before any worker starts
    CreateWorker,  # gated: nothing binds until the whole gang exists
    Nominate,  # kube-scheduler keeps the planned room before any worker of the gang is ungated
    Ungate,
    AnnotatePod,  # a checkpoint request: after the status that records why it was made
    CallHook,  # the same request through the httpGet hook (started, not awaited)
    Emit,  # events only after the writes they tell of succeeded
    WantsPlacement,
    RequeueAfter,
)
"""The crash-safe order of a decision's actions (a new action type takes its place here)."""


@dataclass
class Decision:
    """What one reconcile of one object decided: a status and the actions around it."""

    status: BaseModel
    others: list[Action] = field(default_factory=list)

    def add(self, *actions: Action) -> None:
        self.others.extend(actions)

    def of(self, kind: type) -> list[Action]:
        return [action for action in self.others if isinstance(action, kind)]

    def drop(self, kind: type) -> None:
        self.others = [action for action in self.others if not isinstance(action, kind)]

    @property
    def actions(self) -> list[Action]:
        unique = list(dict.fromkeys(self.others))  # a pod deleted for two reasons: once
        ordered = sorted(unique, key=lambda action: ORDER.index(type(action)))
        return [WriteStatus(self.status), *ordered]
