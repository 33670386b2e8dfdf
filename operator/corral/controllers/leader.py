"""Leader election on a coordination.k8s.io/v1 Lease, as client-go's leaderelection does it.

Durations are controller-runtime's defaults: a 15 s lease, a 10 s renew deadline, a 2 s retry
period. A candidate takes the Lease when it is free (released, or not renewed for a lease
duration as observed by the candidate's own clock, so clock skew between nodes does not
matter); the holder renews it every retry period with optimistic concurrency (a PUT carrying
the resourceVersion it read: two candidates racing cannot both win).

`is_leader()` is what the API client's write fence asks before every write. It turns False the
moment the last successful renewal is older than the renew deadline, even if the renewal loop is
stuck in a request, and that is 5 s before any other candidate may take the Lease (lease
duration - renew deadline): a stale leader has stopped writing before a new one starts.

On a clean shutdown the holder releases the Lease (empty holder), so a standby takes over on its
next retry instead of waiting out the lease: rolling updates fail over in ~2 s.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import random
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from corral import metrics
from corral.kube.errors import ApiError
from corral.kube.rest import KubeAPI, RetryPolicy

log = logging.getLogger("corral.leader")

LEASE_DURATION_SECONDS = 15.0
RENEW_DEADLINE_SECONDS = 10.0
RETRY_PERIOD_SECONDS = 2.0
JITTER = 1.2
"""client-go's JitterFactor: a candidate waits retry * (1 + U(0, 0.2)) between tries."""

Obj = dict[str, Any]
Callback = Callable[[], Awaitable[None] | None]


class LeaseClient(Protocol):
    async def get(self, path: str) -> Obj: ...

    async def create(self, path: str, body: Obj) -> Obj: ...

    async def replace(self, path: str, body: Obj) -> Obj: ...


def default_identity() -> str:
    """The pod's name (its hostname) and a random suffix: a restarted pod with the same name
    is a new candidate, never mistaken for the old holder."""
    return f"{os.environ.get('HOSTNAME') or socket.gethostname()}_{uuid.uuid4().hex[:8]}"


def micro_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class LeaseRecord:
    holder: str
    duration: float
    acquire_time: str | None
    renew_time: str | None
    transitions: int
    version: str
    """metadata.resourceVersion: any write, even one with an equal renewTime, is news."""

    @classmethod
    def of(cls, lease: Obj) -> LeaseRecord:
        spec = lease.get("spec") or {}
        return cls(
            holder=str(spec.get("holderIdentity") or ""),
            duration=float(spec.get("leaseDurationSeconds") or LEASE_DURATION_SECONDS),
            acquire_time=spec.get("acquireTime"),
            renew_time=spec.get("renewTime"),
            transitions=int(spec.get("leaseTransitions") or 0),
            version=str((lease.get("metadata") or {}).get("resourceVersion") or ""),
        )


class LeaderElector:
    def __init__(
        self,
        api: LeaseClient,
        *,
        namespace: str,
        name: str = "corral",
        identity: str | None = None,
        lease_duration: float = LEASE_DURATION_SECONDS,
        renew_deadline: float = RENEW_DEADLINE_SECONDS,
        retry_period: float = RETRY_PERIOD_SECONDS,
        on_started_leading: Callback | None = None,
        on_stopped_leading: Callback | None = None,
        release_on_stop: bool = True,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ):
        if not lease_duration > renew_deadline > retry_period * JITTER:
            raise ValueError(
                "leader election needs lease duration > renew deadline > retry period x 1.2"
            )
        self.api = api
        self.namespace = namespace
        self.name = name
        self.identity = identity or default_identity()
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self.on_started_leading = on_started_leading
        self.on_stopped_leading = on_stopped_leading
        self.release_on_stop = release_on_stop
        self._clock = clock
        self._wall = wall or (lambda: datetime.now(UTC))
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._path = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{name}"
        self._observed: LeaseRecord | None = None
        self._observed_at = 0.0
        self._lease: Obj | None = None
        self._renewed_at: float | None = None
        """Monotonic time of the last successful acquire or renew while leading."""
        self.leading = False
        self.lost = asyncio.Event()
        """Set once leadership, held, was lost (not on a clean release)."""

    # -- what the fence asks ---------------------------------------------------------------------

    def is_leader(self) -> bool:
        return (
            self.leading
            and self._renewed_at is not None
            and self._clock() - self._renewed_at < self.renew_deadline
        )

    @property
    def holder(self) -> str | None:
        """Who holds the Lease, as last observed."""
        return self._observed.holder if self._observed else None

    # -- one try ---------------------------------------------------------------------------------

    async def try_acquire_or_renew(self) -> bool:
        """One attempt (client-go's tryAcquireOrRenew): True if this candidate holds the Lease
        afterwards."""
        now = self._clock()
        stamp = micro_time(self._wall())
        try:
            lease = await self.api.get(self._path)
        except ApiError as exc:
            if not exc.is_not_found:
                log.warning("reading Lease %s/%s failed: %s", self.namespace, self.name, exc)
                return False
            return await self._create(stamp, now)
        record = LeaseRecord.of(lease)
        if record != self._observed:
            self._observed, self._observed_at = record, now
        mine = record.holder == self.identity
        expired = self._observed_at + record.duration <= now
        if record.holder and not mine and not expired:
            return False
        spec = {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": round(self.lease_duration),
            "acquireTime": record.acquire_time if mine else stamp,
            "renewTime": stamp,
            "leaseTransitions": record.transitions if mine else record.transitions + 1,
        }
        body = {**lease, "spec": {**(lease.get("spec") or {}), **spec}}
        try:
            answer = await self.api.replace(self._path, body)
        except ApiError as exc:
            if not exc.is_conflict:
                log.warning("updating Lease %s/%s failed: %s", self.namespace, self.name, exc)
            return False  # someone else wrote first: read again next time
        self._took(answer, now)
        return True

    async def _create(self, stamp: str, now: float) -> bool:
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": {
                "holderIdentity": self.identity,
                "leaseDurationSeconds": round(self.lease_duration),
                "acquireTime": stamp,
                "renewTime": stamp,
                "leaseTransitions": 0,
            },
        }
        try:
            answer = await self.api.create(self._path.rsplit("/", 1)[0], body)
        except ApiError as exc:
            if not exc.is_already_exists:
                log.warning("creating Lease %s/%s failed: %s", self.namespace, self.name, exc)
            return False
        self._took(answer, now)
        return True

    def _took(self, lease: Obj, now: float) -> None:
        self._lease = lease
        self._observed, self._observed_at = LeaseRecord.of(lease), now
        self._renewed_at = now

    async def _attempt(self) -> bool:
        """One try, bounded by what is left of the renew deadline (a hung request must not
        keep a candidate thinking it may still renew)."""
        budget = self.retry_period
        if self.leading and self._renewed_at is not None:
            budget = max(0.05, self.renew_deadline - (self._clock() - self._renewed_at))
        try:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation
            # that races the inner call's completion, and the elector would never stop.
            async with asyncio.timeout(budget):
                return await self.try_acquire_or_renew()
        except TimeoutError:
            log.warning("Lease %s/%s: no answer in %.1fs", self.namespace, self.name, budget)
            return False

    # -- the loop --------------------------------------------------------------------------------

    async def run(self) -> None:
        """Acquire, then renew until leadership is lost (returns) or the task is cancelled
        (releases the Lease when holding it, then re-raises)."""
        try:
            await self._acquire()
            await self._became(True)
            await self._renew()
        except asyncio.CancelledError:
            if self.leading and self.release_on_stop:
                await asyncio.shield(self.release())
            raise
        finally:
            if self.leading:
                await self._became(False)
        self.lost.set()

    async def _acquire(self) -> None:
        log.info("%s: waiting to lead (Lease %s/%s)", self.identity, self.namespace, self.name)
        while not await self._attempt():
            if self.holder and self.holder != self.identity:
                log.debug("Lease held by %s", self.holder)
            await self._sleep(self.retry_period * (1 + self._rng.uniform(0, JITTER - 1)))

    async def _renew(self) -> None:
        while True:
            await self._sleep(self.retry_period)
            if await self._attempt():
                continue
            if not self.is_leader():
                log.error(
                    "%s: Lease %s/%s not renewed within %.0fs: leadership lost",
                    self.identity,
                    self.namespace,
                    self.name,
                    self.renew_deadline,
                )
                return

    async def release(self) -> bool:
        """Give the Lease up now (holder emptied, as client-go's ReleaseOnCancel), so the next
        candidate need not wait out the lease."""
        if self._lease is None or not self.leading:
            return False
        stamp = micro_time(self._wall())
        spec = {
            **(self._lease.get("spec") or {}),
            "holderIdentity": "",
            "leaseDurationSeconds": 1,
            "acquireTime": stamp,
            "renewTime": stamp,
        }
        try:
            async with asyncio.timeout(self.renew_deadline):
                await self.api.replace(self._path, {**self._lease, "spec": spec})
        except (ApiError, TimeoutError) as exc:
            log.warning("releasing Lease %s/%s failed: %s", self.namespace, self.name, exc)
            return False
        finally:
            self._renewed_at = None
            await self._became(False)
        log.info("%s: released Lease %s/%s", self.identity, self.namespace, self.name)
        return True

    async def _became(self, leading: bool) -> None:
        if self.leading == leading:
            return
        self.leading = leading
        metrics.LEADER.set(1 if leading else 0)
        metrics.LEADER_TRANSITIONS.inc()
        if leading:
            log.info("%s: leading (Lease %s/%s)", self.identity, self.namespace, self.name)
        callback = self.on_started_leading if leading else self.on_stopped_leading
        if callback is not None:
            result = callback()
            if inspect.isawaitable(result):
                await result


@dataclass(frozen=True)
class LeaderElection:
    """`corral run --leader-elect` settings."""

    namespace: str
    name: str = "corral"
    identity: str | None = None
    lease_duration: float = LEASE_DURATION_SECONDS
    renew_deadline: float = RENEW_DEADLINE_SECONDS
    retry_period: float = RETRY_PERIOD_SECONDS


def start_election(
    api: KubeAPI,
    election: LeaderElection,
    *,
    on_started_leading: Callback | None = None,
    on_stopped_leading: Callback | None = None,
) -> tuple[LeaderElector, asyncio.Task[None]]:
    """Fence `api` with a new elector and start it. The elector talks through a client of its
    own (unfenced, no retries, a short timeout): its renewals never queue behind the operator's
    writes, and a renewal that hangs is abandoned well before the renew deadline."""
    lease_api = api.clone(
        fence=None,
        retry=RetryPolicy(retries=0),
        request_timeout=election.renew_deadline / 2,
        connections=2,
    )
    elector = LeaderElector(
        lease_api,
        namespace=election.namespace,
        name=election.name,
        identity=election.identity,
        lease_duration=election.lease_duration,
        renew_deadline=election.renew_deadline,
        retry_period=election.retry_period,
        on_started_leading=on_started_leading,
        on_stopped_leading=on_stopped_leading,
    )
    api.fence = elector.is_leader
    return elector, asyncio.create_task(elector.run(), name="corral-leader-election")
