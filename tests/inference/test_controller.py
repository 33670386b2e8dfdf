"""The InferenceService controller against the in-memory API, on a fake clock, counting requests."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from tests.autoscaling.builders import load
from tests.controllers.harness import Harness
from tests.controllers.test_operator import assert_never_overcommitted, gang
from tests.inference.builders import service

from corral import metrics
from corral.autoscaling.observation import Observation
from corral.fleet.testing import node, pool
from corral.sources.metrics import FakeMetrics, Target

Obj = dict[str, Any]
Scenario = Callable[[Harness], Awaitable[None]]


class Traffic:
    """What the fake Prometheus answers: requests/s now, or down."""

    def __init__(self, rate: float = 0.5):
        self.rate = rate

    def answer(self, target: Target, now: float) -> Observation:
        return load(rate=self.rate, mean_service=0.5).replicas(target.replicas.ready).build(at=now)


def fleet(hosts: int = 4, gpus: int = 8, zones: int = 1) -> Harness:
    return Harness(
        nodes=[
            node(f"h{i}").zone(f"z{i % zones}").label("pool", "p").gpus(gpus) for i in range(hosts)
        ],
        pools=[pool("p").select(pool="p")],
    )


def run(scenario: Scenario, h: Harness | None = None, traffic: Traffic | None = None) -> Harness:
    harness = h or fleet()
    fake = FakeMetrics(answer=(traffic or Traffic()).answer)

    async def main() -> None:
        async with harness.running():
            assert harness.operator is not None
            harness.operator.inference.metrics = fake
            await scenario(harness)

    asyncio.run(main())
    return harness


def cis(h: Harness, name: str = "chat") -> Obj:
    found = h.api.obj(f"/apis/corral.dev/v1alpha1/namespaces/default/inferenceservices/{name}")
    assert found is not None
    return found


def status(h: Harness, name: str = "chat") -> Obj:
    return dict(cis(h, name).get("status") or {})


def condition(h: Harness, type_: str, name: str = "chat") -> Obj:
    return next(c for c in status(h, name).get("conditions", []) if c["type"] == type_)


def replicas(h: Harness, name: str = "chat") -> list[Obj]:
    uid = cis(h, name)["metadata"]["uid"]
    return sorted(
        (
            p
            for p in h.pods()
            if any(r.get("uid") == uid for r in p["metadata"].get("ownerReferences") or [])
            and not p["metadata"].get("deletionTimestamp")
        ),
        key=lambda p: p["metadata"]["name"],
    )


async def serve(h: Harness, seconds: float = 0.0, step: float = 1.0) -> None:
    """Converge, marking every running replica Ready (kwok's pod-ready stage), for `seconds`."""
    elapsed = -step
    while elapsed < seconds:
        await h.converge()
        for pod in h.pods():
            state = pod.get("status") or {}
            conditions = state.get("conditions") or []
            if state.get("phase") == "Running" and not any(
                c["type"] == "Ready" for c in conditions
            ):
                state["conditions"] = [*conditions, {"type": "Ready", "status": "True"}]
                h.api.put(pod)
        await h.converge()
        elapsed += step
        if elapsed < seconds:
            h.clock.advance(step)
    h.api.finish_deletions()
    await h.converge()


def test_fixed_replicas_are_placed_on_different_hosts_and_served() -> None:
    async def scenario(h: Harness) -> None:
        h.api.put(service("chat").replicas(2).dict())
        await serve(h)
        pods = replicas(h)
        assert next(p["metadata"]["name"] for p in pods).startswith("chat-")
        assert len({p["spec"]["nodeName"] for p in pods}) == 2
        assert all(not p["spec"].get("schedulingGates") for p in pods)
        st = status(h)
        assert (st["replicas"], st["readyReplicas"], st["desiredReplicas"]) == (2, 2, 2)
        assert st["selector"] == "corral.dev/inference=chat"
        assert condition(h, "Ready")["status"] == "True"
        assert condition(h, "ScalingActive")["reason"] == "FixedReplicas"
        assert h.api.requests[("POST", "pods")] == 2
        assert h.api.requests[("PATCH", "pods")] == 2  # one ungate each, nothing else
        assert h.api.requests[("POST", "services")] == 1
        svc = h.api.obj("/api/v1/namespaces/default/services/chat")
        assert svc is not None and svc["spec"]["selector"] == {"corral.dev/inference": "chat"}

    run(scenario)


def test_a_reconcile_of_an_unchanged_service_writes_nothing() -> None:
    async def scenario(h: Harness) -> None:
        h.api.put(service("chat").replicas(2).dict())
        await serve(h, 5)
        before = h.api.writes()
        assert h.operator is not None
        for _ in range(5):
            await h.operator.inference.reconcile("default/chat")
        assert h.api.writes() == before

    run(scenario)


def test_autoscaled_service_grows_with_load_and_says_why() -> None:
    traffic = Traffic(rate=0.5)

    async def scenario(h: Harness) -> None:
        h.api.put(service("chat").autoscaled(least=1, most=8).dict())
        await serve(h, 90, step=5)
        small = status(h)["desiredReplicas"]
        traffic.rate = 8.0
        await serve(h, 90, step=5)
        st = status(h)
        assert st["desiredReplicas"] > small
        assert st["desiredReplicas"] <= 8
        assert st["lastScaleReason"].startswith("ttft p99 <= 2s needs")
        assert condition(h, "ScalingActive")["status"] == "True"
        assert "Scaled" in h.reasons("chat")
        assert len(replicas(h)) == st["desiredReplicas"]
        assert st["model"]["arrivalRate"] == 8.0
        assert st["objectives"][0]["name"] == "ttft"

    run(scenario, traffic=traffic)


def test_prometheus_down_holds_the_size_with_the_reason() -> None:
    traffic = Traffic(rate=3.0)

    async def scenario(h: Harness) -> None:
        h.api.put(service("chat").autoscaled(least=1, most=8).dict())
        await serve(h, 90, step=5)
        size = status(h)["desiredReplicas"]
        assert h.operator is not None
        fake = h.operator.inference.metrics
        assert isinstance(fake, FakeMetrics)
        fake.down = "http://prometheus:9090/api/v1/query: ClientConnectorError"
        traffic.rate = 0.0
        await serve(h, 900, step=15)
        assert status(h)["desiredReplicas"] == size
        active = condition(h, "ScalingActive")
        assert (active["status"], active["reason"]) == ("False", "MetricsUnavailable")
        assert "ClientConnectorError" in active["message"]

    run(scenario, traffic=traffic)


def test_scale_subresource_fixes_the_size_and_removing_it_resumes_autoscaling() -> None:
    async def scenario(h: Harness) -> None:
        h.api.put(service("chat").autoscaled(least=1, most=8).dict())
        await serve(h, 90, step=5)
        fixed = service("chat").autoscaled(least=1, most=8).replicas(3).dict()
        fixed["metadata"] = cis(h)["metadata"]
        h.api.put(fixed)
        await serve(h, 30, step=5)
        assert status(h)["desiredReplicas"] == 3 and len(replicas(h)) == 3
        assert condition(h, "ScalingActive")["reason"] == "FixedReplicas"
        resumed = service("chat").autoscaled(least=1, most=8).dict()
        resumed["metadata"] = cis(h)["metadata"]
        h.api.put(resumed)
        await serve(h, 30, step=5)
        assert condition(h, "ScalingActive")["reason"] == "ValidMetrics"  # the model was kept
        assert status(h)["desiredReplicas"] >= 1

    run(scenario, traffic=Traffic(rate=0.5))


def test_a_template_change_rolls_out_without_losing_ready_replicas() -> None:
    async def scenario(h: Harness) -> None:
        h.api.put(service("chat").replicas(3).dict())
        await serve(h)
        old = {p["metadata"]["name"] for p in replicas(h)}
        changed = service("chat").replicas(3).image("vllm:v2").dict()
        changed["metadata"] = cis(h)["metadata"]
        h.api.put(changed)
        lowest = 3
        for _ in range(20):
            await h.converge()
            live = replicas(h)
            lowest = min(lowest, sum(1 for p in live if _ready(p)))
            assert len(live) <= 4  # surge of one
            await serve(h)
        new = {p["metadata"]["name"] for p in replicas(h)}
        assert new.isdisjoint(old) and len(new) == 3
        assert all(p["spec"]["containers"][0]["image"] == "vllm:v2" for p in replicas(h))
        assert lowest >= 3  # maxUnavailable 0

    run(scenario)


def test_training_and_inference_sharing_one_pool_never_overcommit() -> None:
    async def scenario(h: Harness) -> None:
        h.api.put(gang("big", workers=2, gpus=8))
        await serve(h)
        assert h.phase("big") == "Running"
        h.api.put(service("chat").replicas(4).gpus(4).dict())
        await serve(h, 10)
        assert_never_overcommitted(h)
        placed = [p for p in replicas(h) if p["spec"].get("nodeName")]
        assert len(placed) == 4  # on the two hosts the gang left, two each
        assert {p["spec"]["nodeName"] for p in placed}.isdisjoint(
            h.job("big")["status"]["placement"]["nodes"]
        )
        h.api.put(gang("more", workers=1, gpus=8))
        await serve(h, 10)
        assert_never_overcommitted(h)
        assert h.phase("more") == "Queued"  # the pool is full: it waits, nothing is shared

    run(scenario, fleet(hosts=4))


def test_two_replicas_wait_for_a_second_host_rather_than_share_one() -> None:
    async def scenario(h: Harness) -> None:
        h.api.put(gang("big", workers=1, gpus=8))
        await serve(h)
        h.api.put(service("chat").replicas(2).gpus(2).dict())
        await serve(h, 5)
        placed = [p for p in replicas(h) if p["spec"].get("nodeName")]
        assert len(placed) == 1
        ready = condition(h, "Ready")
        assert (ready["status"], ready["reason"]) == ("False", "Unschedulable")
        assert "already holds every other replica" in ready["message"]
        assert condition(h, "ScalingLimited")["reason"] == "InsufficientCapacity"

    run(scenario, fleet(hosts=2))


def test_steady_autoscaled_service_writes_figures_at_most_once_a_minute() -> None:
    async def scenario(h: Harness) -> None:
        h.api.put(service("chat").autoscaled(least=2, most=8).dict())
        await serve(h, 120, step=5)
        before = dict(h.api.requests)
        await serve(h, 600, step=15)
        delta = {
            k: v - before.get(k, 0) for k, v in h.api.requests.items() if v != before.get(k, 0)
        }
        writes = {k: v for k, v in delta.items() if k[0] in ("POST", "PATCH", "PUT", "DELETE")}
        assert set(writes) <= {("PATCH", "inferenceservices/status")}, writes
        assert writes.get(("PATCH", "inferenceservices/status"), 0) <= 11

    run(scenario, traffic=Traffic(rate=1.5))


def test_an_invalid_spec_is_reported_once() -> None:
    async def scenario(h: Harness) -> None:
        bad = service("chat").replicas(1).dict()
        bad["spec"]["acceleratorsPerReplica"] = 0
        h.api.put(bad)
        await serve(h, 30, step=5)
        ready = condition(h, "Ready")
        assert (ready["status"], ready["reason"]) == ("False", "InvalidSpec")
        assert "acceleratorsPerReplica" in ready["message"]
        assert h.api.requests[("PATCH", "inferenceservices/status")] == 1
        assert h.pods() == []

    run(scenario)


def test_service_series_follow_the_decisions_and_go_with_the_service() -> None:
    traffic = Traffic(rate=0.5)

    def value(series: str, **labels: str) -> float | None:
        return metrics.REGISTRY.get_sample_value(series, {"namespace": "default", **labels})

    ttft = {"name": "metered", "objective": "ttft"}

    async def scenario(h: Harness) -> None:
        h.api.put(service("metered").autoscaled(least=1, most=8).dict())
        await serve(h, 90, step=5)
        traffic.rate = 8.0
        await serve(h, 90, step=5)
        st = status(h, "metered")
        desired = st["desiredReplicas"]
        assert value("corral_inference_replicas", name="metered", state="desired") == desired
        ready = value("corral_inference_replicas", name="metered", state="ready")
        assert ready == st["readyReplicas"]
        assert value("corral_inference_request_rate", name="metered") == 8.0
        assert value("corral_inference_objective_seconds", **ttft) == 2.0
        assert value("corral_inference_slo_attainment_target", **ttft) == 0.99
        assert (value("corral_inference_latency_seconds", **ttft) or 0) > 0
        assert 0 <= (value("corral_inference_slo_attainment", **ttft) or -1) <= 1
        up = value("corral_inference_scalings_total", name="metered", direction="up")
        assert up is not None and up >= 1

        # A fixed size: the autoscaler's figures go, the counts stay.
        fixed = service("metered").autoscaled(least=1, most=8).replicas(3).dict()
        fixed["metadata"] = cis(h, "metered")["metadata"]
        h.api.put(fixed)
        await serve(h, 30, step=5)
        assert value("corral_inference_replicas", name="metered", state="desired") == 3
        assert value("corral_inference_slo_attainment", **ttft) is None
        assert value("corral_inference_request_rate", name="metered") is None

        # Deleted: nothing of it remains.
        await h.api.delete("/apis/corral.dev/v1alpha1/namespaces/default/inferenceservices/metered")
        await serve(h)
        exported = {
            sample.labels.get("name")
            for family in metrics.REGISTRY.collect()
            if family.name.startswith("corral_inference_")
            for sample in family.samples
        }
        assert "metered" not in exported

    run(scenario, traffic=traffic)


def _ready(pod: Obj) -> bool:
    return any(
        c["type"] == "Ready" and c["status"] == "True"
        for c in (pod.get("status") or {}).get("conditions") or []
    )


def test_a_restarted_operator_resumes_a_warm_model_and_scales_down_no_sooner() -> None:
    traffic = Traffic(rate=4.0)
    window = 120.0

    async def scenario(h: Harness) -> None:
        spec = service("chat").autoscaled(least=1, most=8, scaleDownStabilizationSeconds=window)
        h.api.put(spec.dict())
        await serve(h, 300, step=5)
        size = status(h)["desiredReplicas"]
        assert size > 1
        assert h.operator is not None
        before = h.operator.inference.scaling["default/chat"].state.model
        assert before.mean_service is not None and before.objective("ttft").own is not None

        await h.stop()
        # What the previous operator had learned of the wait (the fake's flat latencies never
        # teach a correction, so status says it as a long-running operator would have).
        learned = cis(h)
        learned["status"]["objectives"][0]["correction"] = 1.7
        h.api.put(learned)
        traffic.rate = 0.2  # load falls while no operator runs (12 requests a window)
        await h.start()
        assert h.operator is not None
        h.operator.inference.metrics = FakeMetrics(answer=traffic.answer)

        await serve(h, 15, step=5)
        model = h.operator.inference.scaling["default/chat"].state.model
        assert model.mean_service == before.mean_service
        assert model.objective("ttft").correction == 1.7
        assert model.objective("ttft").own is not None
        assert condition(h, "ScalingActive")["reason"] == "ValidMetrics"

        # Lower recommendations from the first tick, yet nothing goes before a window of them.
        for _ in range(int(window // 15) - 1):
            await serve(h, 15, step=5)
            assert status(h)["desiredReplicas"] == size
        await serve(h, 2 * window, step=15)
        assert status(h)["desiredReplicas"] < size

    run(scenario, traffic=traffic)


def test_a_service_over_its_namespace_quota_stays_at_the_quota_and_says_so_once() -> None:
    quota = {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "gpus", "namespace": "default"},
        "spec": {"hard": {"requests.nvidia.com/gpu": "2"}},
        "status": {"hard": {"requests.nvidia.com/gpu": "2"}, "used": {}},
    }

    async def scenario(h: Harness) -> None:
        h.api.put(quota)
        await h.converge()
        h.api.put(service("chat").replicas(3).dict())
        await serve(h)
        assert len(replicas(h)) == 2
        ready = condition(h, "Ready")
        assert (ready["status"], ready["reason"]) == ("False", "QuotaExceeded")
        assert "the replica needs 1, 0 left of 2" in ready["message"]
        assert h.api.requests[("POST", "pods")] == 2

        # The API server counts the replicas in the quota as it creates them (the fake does
        # not): the quota now says what it would.
        quota["status"]["used"] = {"requests.nvidia.com/gpu": "2"}
        h.api.put(quota)
        await serve(h, 60, step=5)  # the quota event, then the placement retries
        assert len(replicas(h)) == 2
        writes = h.api.writes()
        assert condition(h, "Ready")["reason"] == "QuotaExceeded"
        assert h.operator is not None
        h.operator.queue.add("cis:default/chat")
        await serve(h, 60, step=5)
        assert h.api.writes() == writes
        assert h.api.requests[("POST", "pods")] == 2
        warnings = [e for e in h.events if e[0] == "chat" and e[1] == "Warning"]
        assert [reason for _, _, reason, _ in warnings] == ["QuotaExceeded"]

    run(scenario)


def _quota(gpus: int) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "gpus", "namespace": "default"},
        "spec": {"hard": {"requests.nvidia.com/gpu": str(gpus)}},
        "status": {"hard": {"requests.nvidia.com/gpu": str(gpus)}, "used": {}},
    }


def _namespace(**labels: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "default", "labels": labels},
    }


def _team_pool(h: Harness) -> None:
    document = pool("p").select(pool="p").dict()
    document["spec"]["namespaceSelector"] = {"matchLabels": {"team": "b"}}
    h.api.put(document)


@dataclass
class Wake:
    name: str
    blocked: Callable[[Harness], None]
    """Puts what refuses the third replica."""
    reason: str
    unblock: Callable[[Harness], None]
    """The change that lets it be made (an event, no clock advance)."""
    hosts: int = 4


WAKES = [
    Wake(
        "a ResourceQuota raised",
        lambda h: h.api.put(_quota(2)),
        "QuotaExceeded",
        lambda h: h.api.put(_quota(3)),
    ),
    Wake(
        "a ResourceQuota deleted",
        lambda h: h.api.put(_quota(2)),
        "QuotaExceeded",
        lambda h: h.api.remove(_quota(2)),
    ),
    Wake(
        "the namespace labelled for the pool",
        lambda h: (h.api.put(_namespace()), _team_pool(h)),
        "PoolNotAllowed",
        lambda h: h.api.put(_namespace(team="b")),
    ),
    Wake(
        "the pool's namespaceSelector dropped",
        lambda h: (h.api.put(_namespace()), _team_pool(h)),
        "PoolNotAllowed",
        lambda h: h.api.put(pool("p").select(pool="p").dict()),
    ),
    Wake(
        "a third host joins",
        lambda h: None,
        "Unschedulable",
        lambda h: h.api.put(node("h2").zone("z0").label("pool", "p").gpus(8).obj()),
        hosts=2,
    ),
]


@pytest.mark.parametrize("case", WAKES, ids=lambda c: c.name)
def test_a_waiting_service_is_woken_by_the_change_that_admits_it(case: Wake) -> None:
    """Not by the 15 s retry: the clock never moves after the change."""

    async def scenario(h: Harness) -> None:
        case.blocked(h)
        await h.converge()
        # Two 8-GPU replicas per host at most: on two hosts the third waits for a host
        # (capacity); on four, only the quota or the pool's selector stops it.
        h.api.put(service("chat").replicas(3).gpus(8 if case.hosts == 2 else 1).dict())
        await serve(h)
        made = len(replicas(h))
        assert condition(h, "Ready")["reason"] == case.reason
        assert made < 3
        case.unblock(h)
        await serve(h)  # no clock advance: only the change's event can wake the service
        assert len(replicas(h)) == 3, condition(h, "Ready")
        assert condition(h, "Ready")["reason"] == "ReplicasReady"
        assert h.api.requests[("POST", "pods")] == 3

    run(scenario, fleet(hosts=case.hosts))


def test_only_the_waiting_services_of_the_changed_namespace_are_woken() -> None:
    async def scenario(h: Harness) -> None:
        assert h.operator is not None
        h.api.put(_quota(2))
        await h.converge()
        h.api.put(service("chat").replicas(3).dict())  # waits: QuotaExceeded
        # Serves, in a namespace of its own (in chat's it would wait too: chat's replicas just
        # made fill the quota, though its figures do not show them yet): nothing to wake.
        h.api.put(service("ok", "other").replicas(1).dict())
        await serve(h)
        assert condition(h, "Ready")["reason"] == "QuotaExceeded"
        woken: list[str] = []
        reconcile = h.operator.inference.reconcile

        async def counted(key: str) -> None:
            woken.append(key)
            await reconcile(key)

        h.operator.inference.reconcile = counted  # type: ignore[method-assign]
        other = _quota(1)
        other["metadata"]["namespace"] = "other"
        counted_now = _quota(2)  # kube-controller-manager counts the two replicas: still full
        counted_now["status"]["used"] = {"requests.nvidia.com/gpu": "2"}
        for change in (other, _namespace(team="a"), counted_now):
            woken.clear()
            h.api.put(change)
            await serve(h)
            # The waiting service (again after its own status write, when the quota's figures in
            # its message moved); never the one that serves, nor anything for another namespace.
            expected = set() if change is other else {"default/chat"}
            assert set(woken) == expected, (change["kind"], woken)
            # A quota of another namespace moving must not drop the count of the replicas just
            # made that this namespace's quota does not show yet: no replica over the quota.
            assert h.api.requests[("POST", "pods")] == 2 + 1, change["kind"]
        assert h.api.requests[("POST", "pods")] == 2 + 1  # chat's two and ok's one, no more
        assert condition(h, "Ready")["reason"] == "QuotaExceeded"

    run(scenario)


@dataclass
class Refusal:
    name: str
    message: str
    reason: str
    retry: Callable[[Harness], Awaitable[None]]
    """What lets the service try again."""


async def _quota_moves(h: Harness) -> None:
    h.api.put(_quota(2))  # no clock advance: only the quota's event can wake it
    await serve(h)


async def _a_minute_passes(h: Harness) -> None:
    await serve(h)
    assert not replicas(h)  # not before the retry time
    await serve(h, 60)


REFUSALS = [
    Refusal(
        "a full quota waits for the quota",
        'pods "chat-0" is forbidden: exceeded quota: gpus, requested: requests.nvidia.com/gpu=1, '
        "used: requests.nvidia.com/gpu=2, limited: requests.nvidia.com/gpu=2",
        "QuotaExceeded",
        _quota_moves,
    ),
    Refusal(
        "Pod Security is tried again after a minute",
        'pods "chat-0" is forbidden: violates PodSecurity "restricted:latest": privileged',
        "PodRejected",
        _a_minute_passes,
    ),
]


@pytest.mark.parametrize("case", REFUSALS, ids=lambda c: c.name)
def test_a_refused_replica_is_said_once_and_tried_again_when_it_may_pass(case: Refusal) -> None:
    """Pods of other workloads can fill the quota between admission and the create; an admission
    policy can refuse the template. The service says why, and its own status write does not make
    it try again: that wrote the status back and forth and created pods in a hot loop."""

    async def scenario(h: Harness) -> None:
        h.api.fail("POST", "pods", 403, times=1_000, message=case.message)
        h.api.put(service("chat").replicas(1).dict())
        await serve(h)
        ready = condition(h, "Ready")
        assert (ready["reason"], ready["message"], replicas(h)) == (
            case.reason,
            case.message,
            [],
        )
        assert h.api.requests[("POST", "pods")] == 1
        assert h.api.writes("inferenceservices/status") <= 2
        assert [e for e in h.events if e[2] == case.reason] == [
            ("chat", "Warning", case.reason, case.message)
        ]
        h.api.faults.clear()
        await case.retry(h)
        assert len(replicas(h)) == 1
        assert condition(h, "Ready")["reason"] == "ReplicasReady"

    run(scenario)
