"""The one executor of typed actions against the API server.

Actions run in the order the domain gives them (`corral.scheduling.actions.ORDER`); consecutive
actions of one type run concurrently (64 pod creations are one round trip of latency, not 64);
the first failure stops the rest, so nothing depends on a write that did not happen. Every answer
goes into the cache at once. Writes are fenced: a status patch carries the resourceVersion the
decision was made on (a concurrent change is a 409, decided again from a fresh read), a pod is
deleted only with its UID as precondition, and a create that meets an existing object reads it
and adopts it only if the workload owns it by UID.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from itertools import groupby
from typing import Any

from corral import metrics
from corral.controllers.cache import ClusterCache, controller_uid
from corral.kube.client import Client
from corral.kube.patches import merge_patch
from corral.kube.rest import ApiError, core_path, custom_path
from corral.scheduling.actions import (
    Action,
    AnnotatePod,
    CallHook,
    CreateWorker,
    DeletePod,
    Emit,
    EnsureService,
    Nominate,
    ReleaseAssumed,
    RequeueAfter,
    Ungate,
    WantsPlacement,
    WriteStatus,
)

log = logging.getLogger("corral.executor")

Obj = dict[str, Any]
PostEvent = Callable[[Obj, str, str, str], None]
"""post_event(involved object, type, reason, message): enqueue, never block, never raise."""
CallHooks = Callable[[str, Obj, CallHook], None]
"""call(namespace, the job, the call): start an httpGet hook call, never block
(corral.controllers.hooks)."""


class Conflict(Exception):
    """The object changed since the decision was made: read it again and decide again."""


class Gone(Exception):
    """The object was deleted meanwhile: nothing more to do for it."""


class Blocked(Exception):
    """Something in the cluster stands in the way and no retry of ours can fix it soon (an
    object of the same name that the workload does not own)."""


class PodRejected(Exception):
    """The API server (validation, a quota or an admission policy) refused a pod, or the
    workload's Service without which its pods cannot start."""


class QuotaRefused(PodRejected):
    """A ResourceQuota had no room left for a pod or the Service ("exceeded quota"). Unlike the
    other refusals it passes: the quota frees as other pods end, and the pass admitted the
    workload from a count that was behind the API server's (or other workloads' pods took the
    room since). A caller that does not tell it apart treats it as any refusal."""


@dataclass
class Target:
    """The object a decision is about, and how to make its workload-specific objects."""

    obj: Obj
    """As observed when deciding (its status is diffed, its resourceVersion fences the write)."""
    kind: str
    status_path: str
    ledger_owner: Callable[[int], str] = lambda attempt: ""
    """Ledger owner of an attempt's planned workers."""
    worker: Callable[[CreateWorker], tuple[Obj, dict[str, int]] | None] | None = None
    """The pod of a worker and what it takes on its node (None: cannot be built now)."""
    service: Callable[[], Obj] | None = None

    @classmethod
    def status_of(cls, obj: Obj, kind: str, plural: str) -> Target:
        """A target whose decision writes only its status (an object too invalid to act on)."""
        meta = obj.get("metadata") or {}
        path = custom_path(plural, meta.get("namespace"), meta.get("name"), "status")
        return cls(obj=obj, kind=kind, status_path=path)

    @property
    def namespace(self) -> str:
        return str((self.obj.get("metadata") or {}).get("namespace") or "")

    @property
    def uid(self) -> str:
        return str((self.obj.get("metadata") or {}).get("uid") or "")


@dataclass
class Outcome:
    wants_placement: bool = False
    requeue_after: float | None = None
    wrote_pods: bool = False
    """Pods were created, deleted or ungated: look again (their answers are in the cache)."""
    status_written: bool = False
    events: list[Emit] = field(default_factory=list)


class Executor:
    def __init__(
        self,
        api: Client,
        cache: ClusterCache,
        post_event: PostEvent,
        call_hook: CallHooks | None = None,
    ):
        self.api = api
        self.cache = cache
        self.post_event = post_event
        self._told_unnominated = False
        self.call_hook = call_hook

    async def execute(self, target: Target, actions: Sequence[Action]) -> Outcome:
        outcome = Outcome()
        # A worker's nomination follows its own create at once instead of waiting for the whole
        # gang's creates (ORDER puts Nominate right after CreateWorker): the round trips overlap.
        nominations = {a.name: a for a in actions if isinstance(a, Nominate)}
        nominated: set[str] = set()
        for kind, group in groupby(actions, key=type):
            batch = list(group)
            if kind is CreateWorker:
                await _all(
                    self._create_and_nominate(target, action, nominations, nominated, outcome)
                    for action in batch
                    if isinstance(action, CreateWorker)
                )
                continue
            if kind is Nominate:
                batch = [a for a in batch if isinstance(a, Nominate) and a.name not in nominated]
            if kind is WantsPlacement:
                outcome.wants_placement = True
            elif kind is RequeueAfter:
                delays = [a.seconds for a in batch if isinstance(a, RequeueAfter)]
                outcome.requeue_after = min([*delays, outcome.requeue_after or float("inf")])
            elif kind is Emit:
                for action in batch:
                    assert isinstance(action, Emit)
                    self.post_event(target.obj, action.type, action.reason, action.message)
                    outcome.events.append(action)
            else:
                await _all(self._run(target, action, outcome) for action in batch)
        return outcome

    async def _run(self, target: Target, action: Action, outcome: Outcome) -> None:
        if isinstance(action, WriteStatus):
            outcome.status_written = await self.write_status(target, action)
        elif isinstance(action, DeletePod):
            await self._delete_pod(target.namespace, action)
            outcome.wrote_pods = True
        elif isinstance(action, ReleaseAssumed):
            self.cache.ledger.forget(target.ledger_owner(action.attempt))
        elif isinstance(action, EnsureService):
            await self._ensure_service(target)
        elif isinstance(action, Nominate):
            await self._nominate(target.namespace, action)
            outcome.wrote_pods = True
        elif isinstance(action, Ungate):
            await self._ungate(target.namespace, action.name)
            outcome.wrote_pods = True
        elif isinstance(action, AnnotatePod):
            await self._annotate(target.namespace, action)
        elif isinstance(action, CallHook):
            if self.call_hook is not None:
                self.call_hook(target.namespace, target.obj, action)
        else:  # pragma: no cover - every action type has a branch
            raise TypeError(f"no executor for {type(action).__name__}")

    # -- status -----------------------------------------------------------------------------------

    async def write_status(self, target: Target, action: WriteStatus) -> bool:
        """Patch what changed, fenced by the observed resourceVersion. False: nothing to write."""
        wire = action.status.model_dump(mode="json", by_alias=True, exclude_none=True)
        patch = merge_patch(target.obj.get("status") or {}, wire)
        if not patch:
            return False
        meta = target.obj.get("metadata") or {}
        body = {"metadata": {"resourceVersion": meta.get("resourceVersion")}, "status": patch}
        try:
            answer = await self.api.patch(target.status_path, body)
        except ApiError as exc:
            if exc.status == 404:
                raise Gone() from exc
            if exc.status == 409:
                raise Conflict(exc.message) from exc
            raise
        self.cache.apply(target.kind, "MODIFIED", answer, "write")
        target.obj = answer
        metrics.STATUS_WRITES.labels(kind=target.kind).inc()
        return True

    # -- pods -------------------------------------------------------------------------------------

    async def _delete_pod(self, namespace: str, action: DeletePod) -> None:
        key = f"{namespace}/{action.name}"
        try:
            answer = await self.api.delete(
                core_path("pods", namespace, action.name),
                preconditions={"uid": action.uid} if action.uid else None,
            )
        except ApiError as exc:
            if exc.status == 404:
                self.cache.forget("Pod", key)
                return
            if exc.status == 409 and action.uid:
                return  # another pod of that name now: not the one we decided to delete
            raise
        if answer.get("kind") == "Pod" or (answer.get("metadata") or {}).get("name"):
            if (answer.get("metadata") or {}).get("deletionTimestamp"):
                self.cache.apply("Pod", "MODIFIED", answer, "write")
            else:
                self.cache.forget("Pod", key)

    async def _create_and_nominate(
        self,
        target: Target,
        action: CreateWorker,
        nominations: dict[str, Nominate],
        nominated: set[str],
        outcome: Outcome,
    ) -> None:
        name = await self._create_worker(target, action)
        outcome.wrote_pods = True
        if name is not None and name in nominations:
            nominated.add(name)
            await self._nominate(target.namespace, nominations[name])

    async def _create_worker(self, target: Target, action: CreateWorker) -> str | None:
        """The pod's name once it exists (created or adopted); None when none was made."""
        if target.worker is None:
            return None
        built = target.worker(action)
        if built is None:
            return None  # its pool is gone: the next reconcile re-places the gang
        pod, requests = built
        name = pod["metadata"]["name"]
        self.cache.ledger.assume(
            target.ledger_owner(action.attempt), target.namespace, {name: action.node}, requests
        )
        path = core_path("pods", target.namespace)
        try:
            answer = await self.api.create(path, pod)
        except ApiError as exc:
            if exc.status == 409:
                answer = await self._adopt(target, "pods", name)
            elif _is_rejection(exc):
                raise refusal(exc.message) from exc
            else:
                raise
        self.cache.apply("Pod", "ADDED", answer, "write")
        return str(name)

    async def _nominate(self, namespace: str, action: Nominate) -> None:
        """status.nominatedNodeName through pods/status. Best effort: without the permission
        (a chart older than the operator) the gang still binds, only unprotected until then."""
        try:
            answer = await self.api.patch(
                core_path("pods", namespace, action.name, "status"),
                {"status": {"nominatedNodeName": action.node}},
            )
        except ApiError as exc:
            if exc.status == 404:
                return  # gone: the next reconcile sees it missing
            if exc.status == 403:
                if not self._told_unnominated:
                    self._told_unnominated = True
                    log.warning(
                        "cannot nominate worker pods (patch pods/status forbidden): planned "
                        "nodes are not kept by kube-scheduler until the gang binds; grant "
                        "patch on pods/status (the chart's ClusterRole does): %s",
                        exc.message,
                    )
                return
            raise
        self.cache.apply("Pod", "MODIFIED", answer, "write")

    async def _ungate(self, namespace: str, name: str) -> None:
        try:
            answer = await self.api.patch(
                core_path("pods", namespace, name),
                [{"op": "remove", "path": "/spec/schedulingGates"}],
                patch_type="json",
            )
        except ApiError as exc:
            if exc.status in (404, 422):
                return  # gone, or already ungated
            raise
        self.cache.apply("Pod", "MODIFIED", answer, "write")

    async def _annotate(self, namespace: str, action: AnnotatePod) -> None:
        try:
            answer = await self.api.patch(
                core_path("pods", namespace, action.name),
                {"metadata": {"annotations": dict(action.annotations)}},
            )
        except ApiError as exc:
            if exc.status == 404:
                return  # gone: the next reconcile sees it
            raise
        self.cache.apply("Pod", "MODIFIED", answer, "write")

    # -- the Service ------------------------------------------------------------------------------

    async def _ensure_service(self, target: Target) -> None:
        if target.service is None:
            return
        body = target.service()
        name = body["metadata"]["name"]
        existing = self.cache.services.get(f"{target.namespace}/{name}")
        if existing is not None:
            if controller_uid(existing) != target.uid:
                raise Blocked(_not_ours("Service", name))
            return
        try:
            answer = await self.api.create(core_path("services", target.namespace), body)
        except ApiError as exc:
            if exc.status != 409:
                if _is_rejection(exc):
                    # Refused by validation, a quota on Services or an admission policy: no retry
                    # fixes it, and retrying would hold the gang's devices for good (issue 9).
                    raise refusal(
                        f"its Service {name} was refused, so no pod can start: {exc.message}"
                    ) from exc
                raise
            answer = await self._adopt(target, "services", name)
        self.cache.apply("Service", "ADDED", answer, "write")

    async def _adopt(self, target: Target, resource: str, name: str) -> Obj:
        """A create met an object of the same name: ours (made before a restart) or not."""
        current = await self.api.get(core_path(resource, target.namespace, name))
        if controller_uid(current) != target.uid:
            raise Blocked(_not_ours(resource.rstrip("s").capitalize(), name))
        return current


def _not_ours(kind: str, name: str) -> str:
    return (
        f"a {kind} named {name} exists and is not owned by this object (ownerReference UID); "
        "delete or rename it"
    )


def refusal(message: str) -> PodRejected:
    """The refusal the API server's message says: a full quota passes, the rest do not."""
    # The quota admission plugin words a full quota "exceeded quota: <name>, requested: ...";
    # a pod a quota cannot count ("failed quota: <name>: must specify ...") stays refused.
    return QuotaRefused(message) if "exceeded quota" in message else PodRejected(message)


def _is_rejection(exc: ApiError) -> bool:
    """Invalid (422), or forbidden by admission (403) — but not the operator's own RBAC, and not
    a namespace being deleted, which are no fault of the workload."""
    if exc.status == 422:
        return True
    # RBAC refusals carry no cause to tell them from admission denials: the API server's
    # authorizer words them "... cannot create resource ...".
    return (
        exc.status == 403
        and not exc.is_namespace_terminating
        and "cannot create resource" not in exc.message
    )


async def _all(calls: Any) -> None:
    """Run concurrently; the first failure cancels the rest and is raised."""
    tasks: list[Awaitable[None]] = list(calls)
    if len(tasks) == 1:
        await tasks[0]
    elif tasks:
        try:
            async with asyncio.TaskGroup() as group:
                for task in tasks:
                    group.create_task(task)  # type: ignore[arg-type]
        except BaseExceptionGroup as failures:
            raise _first_leaf(failures) from None


def _first_leaf(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The callers handle plain exceptions (a 409, a rejected pod): raise the first of a group,
    preferring the ones that say most (a rejection over a cancellation)."""
    leaves: list[BaseException] = []
    pending: list[BaseException] = [group]
    while pending:
        item = pending.pop(0)
        if isinstance(item, BaseExceptionGroup):
            pending.extend(item.exceptions)
        else:
            leaves.append(item)
    # A refusal that passes (a full quota) says less than one that does not (an invalid pod).
    leaves.sort(key=lambda leaf: isinstance(leaf, QuotaRefused))
    for preferred in (PodRejected, Blocked, Gone, Conflict):
        for leaf in leaves:
            if isinstance(leaf, preferred):
                return leaf
    return leaves[0]
