"""Leader election on a Lease: one winner per race, optimistic renewals, a leader that cannot
renew stops within the renew deadline, and a clean shutdown hands over at once."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from corral import metrics
from corral.controllers.leader import LeaderElector
from corral.kube.errors import ApiError

LEASE = "/apis/coordination.k8s.io/v1/namespaces/corral-system/leases/corral"


class LeaseAPI:
    """The Lease endpoints of an API server: resourceVersions, 409 on a stale PUT or a second
    create, and faults. Every call yields to the loop first, so concurrent callers interleave
    (both read before either writes) as they do against a real server."""

    def __init__(self) -> None:
        self.lease: dict[str, Any] | None = None
        self.version = 0
        self.fail: ApiError | None = None
        self.hang = False
        self.writes = 0

    async def _enter(self) -> None:
        await asyncio.sleep(0)
        if self.hang:
            await asyncio.Event().wait()
        if self.fail is not None:
            raise self.fail

    def _store(self, body: dict[str, Any]) -> dict[str, Any]:
        self.version += 1
        self.writes += 1
        self.lease = copy.deepcopy(body)
        self.lease["metadata"]["resourceVersion"] = str(self.version)
        return copy.deepcopy(self.lease)

    async def get(self, path: str) -> dict[str, Any]:
        await self._enter()
        assert path == LEASE
        if self.lease is None:
            raise ApiError(404, "NotFound", 'leases.coordination.k8s.io "corral" not found')
        return copy.deepcopy(self.lease)

    async def create(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        await self._enter()
        assert path == LEASE.rsplit("/", 1)[0]
        if self.lease is not None:
            raise ApiError(
                409, "AlreadyExists", 'leases.coordination.k8s.io "corral" already exists'
            )
        return self._store(body)

    async def replace(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        await self._enter()
        assert self.lease is not None and path == LEASE
        if body["metadata"].get("resourceVersion") != self.lease["metadata"]["resourceVersion"]:
            raise ApiError(409, "Conflict", "the object has been modified")
        return self._store(body)

    @property
    def holder(self) -> str | None:
        return (self.lease or {}).get("spec", {}).get("holderIdentity")


class VirtualTime:
    """A monotonic clock that sleeping advances (one loop under test at a time)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


def elector(
    api: LeaseAPI, identity: str, time: VirtualTime | None = None, **options: Any
) -> LeaderElector:
    if time is not None:
        options.setdefault("clock", time)
        options.setdefault("sleep", time.sleep)
    return LeaderElector(
        api,
        namespace="corral-system",
        identity=identity,
        wall=lambda: datetime(2026, 11, 30, 12, 0, tzinfo=UTC),
        **options,
    )


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


async def until(predicate: Callable[[], bool], timeout: float, message: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        await asyncio.sleep(0.01)


def test_the_first_candidate_creates_the_lease_and_leads() -> None:
    async def scenario() -> LeaseAPI:
        api = LeaseAPI()
        a = elector(api, "a", VirtualTime())
        assert await a.try_acquire_or_renew()
        assert a.is_leader() is False, "not leading until run() says so"
        return api

    api = run(scenario())
    assert api.holder == "a"
    spec = api.lease["spec"]  # type: ignore[index]
    assert spec["leaseDurationSeconds"] == 15 and spec["leaseTransitions"] == 0
    assert spec["renewTime"] == "2026-11-30T12:00:00.000000Z"


@pytest.mark.parametrize("existing", [None, "released", "expired"])
def test_two_candidates_racing_for_the_lease_make_one_leader(existing: str | None) -> None:
    async def scenario() -> tuple[list[bool], str | None, int]:
        api, time = LeaseAPI(), VirtualTime()
        if existing is not None:
            old = elector(api, "old", time)
            assert await old.try_acquire_or_renew()
            if existing == "released":
                old.leading = True
                await old.release()
        a, b = elector(api, "a", time), elector(api, "b", time)
        if existing == "expired":
            await a.try_acquire_or_renew()  # first sight of old's record...
            await b.try_acquire_or_renew()
            time.now += 15  # ...and it is not renewed for a lease duration
        won = list(await asyncio.gather(a.try_acquire_or_renew(), b.try_acquire_or_renew()))
        transitions = api.lease["spec"]["leaseTransitions"]  # type: ignore[index]
        return won, api.holder, transitions

    won, holder, transitions = run(scenario())
    assert sorted(won) == [False, True]
    assert holder == ("a" if won[0] else "b")
    assert transitions == (0 if existing is None else 1)


def test_a_held_lease_is_taken_only_after_a_lease_duration_without_renewal() -> None:
    async def scenario() -> list[bool]:
        api, time = LeaseAPI(), VirtualTime()
        a, b = elector(api, "a", time), elector(api, "b", time)
        assert await a.try_acquire_or_renew()
        tries = [await b.try_acquire_or_renew()]
        time.now += 10
        assert await a.try_acquire_or_renew()  # renewed...
        tries.append(await b.try_acquire_or_renew())  # ...b sees it: its count starts again
        time.now += 14
        tries.append(await b.try_acquire_or_renew())
        time.now += 1  # 15 s since b saw the last renewal
        tries.append(await b.try_acquire_or_renew())
        assert not await a.try_acquire_or_renew()
        return tries

    assert run(scenario()) == [False, False, False, True]


def test_a_leader_that_cannot_renew_stops_leading_within_the_renew_deadline() -> None:
    stopped: list[float] = []

    async def scenario() -> tuple[float, float, LeaderElector]:
        api, time = LeaseAPI(), VirtualTime()
        a = elector(api, "a", time, on_stopped_leading=lambda: stopped.append(time.now))
        started = asyncio.Event()
        a.on_started_leading = started.set
        task = asyncio.create_task(a.run())
        await started.wait()
        api.fail = ApiError(500, "InternalError", "etcdserver: request timed out")
        await asyncio.wait_for(task, 5)
        assert a._renewed_at is not None
        return a._renewed_at, time.now, a

    last_renewal, ended, a = run(scenario())
    assert a.lost.is_set() and not a.is_leader() and not a.leading
    # Stops at the first retry past the deadline (retries every 2 s).
    assert stopped == [ended] and last_renewal + 10 <= ended <= last_renewal + 10 + 2
    assert metrics.REGISTRY.get_sample_value("corral_leader") == 0


def test_the_fence_drops_at_the_renew_deadline_even_while_a_renewal_hangs() -> None:
    async def scenario() -> list[bool]:
        api, time = LeaseAPI(), VirtualTime()
        a = elector(api, "a", time)
        assert await a.try_acquire_or_renew()
        a.leading = True
        api.hang = True  # the renewal request never answers
        renewal = asyncio.create_task(a.try_acquire_or_renew())
        await asyncio.sleep(0.01)
        seen = [a.is_leader()]
        time.now += 9.9
        seen.append(a.is_leader())
        time.now += 0.1
        seen.append(a.is_leader())  # nothing returned, yet writes stop now
        renewal.cancel()
        return seen

    assert run(scenario()) == [True, True, False]


def test_a_clean_shutdown_releases_the_lease_and_the_standby_takes_it_at_once() -> None:
    async def scenario() -> tuple[str | None, bool, float]:
        api, time = LeaseAPI(), VirtualTime()
        a = elector(api, "a", time)
        task = asyncio.create_task(a.run())
        await until(a.is_leader, 5, "a leads")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        released_holder = api.holder
        b = elector(api, "b", time)
        before = time.now
        took = await b.try_acquire_or_renew()  # no lease duration to wait out
        return released_holder, took, time.now - before

    holder, took, waited = run(scenario())
    assert holder == "" and took and waited == 0


def test_failover_between_two_running_replicas_in_real_time() -> None:
    """Small durations, real clock: the leader dies without releasing (SIGKILL); the standby
    leads after the lease runs out; while both run, at most one is ever leader."""
    timings = {"lease_duration": 0.6, "renew_deadline": 0.4, "retry_period": 0.1}

    async def scenario() -> float:
        api = LeaseAPI()
        a = elector(api, "a", release_on_stop=False, **timings)
        b = elector(api, "b", **timings)
        tasks = [asyncio.create_task(a.run()), asyncio.create_task(b.run())]
        await until(lambda: a.is_leader() or b.is_leader(), 3, "a leader")
        leader, standby = (a, b) if a.is_leader() else (b, a)
        for _ in range(30):  # 0.3 s of both running: never two leaders
            assert not (a.is_leader() and b.is_leader())
            await asyncio.sleep(0.01)
        loop = asyncio.get_running_loop()
        killed = loop.time()
        tasks[0 if leader is a else 1].cancel()  # a dead process releases nothing
        leader.leading = False
        await until(standby.is_leader, 3, "the standby leads")
        failover = loop.time() - killed
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return failover

    failover = run(scenario())
    assert 0.4 <= failover <= 1.5


def test_durations_must_nest() -> None:
    with pytest.raises(ValueError, match="lease duration > renew deadline"):
        elector(LeaseAPI(), "a", lease_duration=10, renew_deadline=10)


def test_start_election_fences_the_client_until_this_replica_leads() -> None:
    from corral.controllers.leader import LeaderElection, start_election
    from corral.kube.errors import Fenced
    from corral.kube.rest import KubeAPI

    async def scenario() -> None:
        api = KubeAPI("http://127.0.0.1:9")  # nothing listens: a write must not even be tried
        elector, task = start_election(api, LeaderElection(namespace="corral-system"))
        assert api.fence is not None and not api.fence()
        with pytest.raises(Fenced):
            await api.create("/api/v1/namespaces/ml/pods", {"metadata": {"name": "w-0"}})
        assert elector.api is not api, "the elector has a client (and connections) of its own"
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await api.close()

    run(scenario())
