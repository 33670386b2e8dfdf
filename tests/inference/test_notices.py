"""InferenceService replicas on noticed nodes: replaced surge-first, through the operator's runtime
on the in-memory API (fake clock), counting the operator's requests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.controllers.harness import Harness
from tests.inference.builders import service
from tests.inference.test_admission import NS, T0, gpu_pool, hosts, quota, running
from tests.inference.test_admission import spec as admission_spec
from tests.inference.test_controller import Scenario, condition, replicas, run, status

from corral import metrics
from corral.api import GPUPool
from corral.api.inferenceservice import InferenceServiceStatus
from corral.disruption import notices
from corral.fleet.snapshot import FleetSnapshot
from corral.fleet.testing import node, pool
from corral.inference import lifecycle
from corral.inference.lifecycle import ServiceView
from corral.inference.replicas import revision_of
from corral.localfleet import interrupt
from corral.scheduling.actions import CreateWorker, DeletePod, Emit
from corral.scheduling.ledger import Ledger
from corral.scheduling.tenancy import Tenancy

Obj = dict[str, Any]
NOW = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)


def spot_fleet(hosts: int, gpus: int = 8) -> Harness:
    return Harness(
        nodes=[node(f"h{i}").label("pool", "p").gpus(gpus).spot() for i in range(hosts)],
        pools=[pool("p").select(pool="p")],
    )


def notify(h: Harness, name: str, source: interrupt.SourceName) -> None:
    """What `corral fleet interrupt NODE --source SOURCE` writes, applied to the fake API."""
    body = h.api.obj(f"/api/v1/nodes/{name}")
    assert body is not None
    found = interrupt.signal(source, (body.get("spec") or {}).get("taints") or [], NOW, 120)
    spec = found.node_patch.get("spec")
    if spec:
        body["spec"] = {**(body.get("spec") or {}), **spec}
    meta = found.node_patch.get("metadata") or {}
    body["metadata"].setdefault("annotations", {}).update(meta.get("annotations") or {})
    if found.node_status is not None:
        (ready,) = found.node_status["status"]["conditions"]
        kept = [c for c in body["status"]["conditions"] if c["type"] != "Ready"]
        body["status"]["conditions"] = [*kept, ready]
    h.api.put(body)
    if found.pod_condition is not None:
        for pod in h.pods():
            if pod["spec"].get("nodeName") == name:
                pod.setdefault("status", {}).setdefault("conditions", []).append(
                    dict(found.pod_condition)
                )
                h.api.put(pod)


def withdraw(h: Harness, name: str) -> None:
    body = h.api.obj(f"/api/v1/nodes/{name}")
    assert body is not None
    body["spec"] = {}
    h.api.put(body)


async def settle(h: Harness) -> None:
    """Converge (kube-scheduler and the kubelet act; nothing is marked Ready)."""
    await h.converge()
    h.api.finish_deletions()
    await h.converge()


async def make_ready(h: Harness, *names: str) -> None:
    """kwok's pod-ready stage for these pods (all Running ones when none are named)."""
    for pod in h.pods():
        state = pod.get("status") or {}
        chosen = not names or pod["metadata"]["name"] in names
        if (
            chosen
            and state.get("phase") == "Running"
            and not pod["metadata"].get("deletionTimestamp")
        ):
            conditions = [c for c in state.get("conditions") or [] if c["type"] != "Ready"]
            state["conditions"] = [*conditions, {"type": "Ready", "status": "True"}]
            h.api.put(pod)
    await settle(h)


def names(h: Harness) -> list[str]:
    return [p["metadata"]["name"] for p in replicas(h)]


def where(h: Harness) -> dict[str, str]:
    return {p["metadata"]["name"]: p["spec"].get("nodeName") or "" for p in replicas(h)}


def interruptions(source: str, kind: str = "InferenceService") -> float:
    value = metrics.REGISTRY.get_sample_value(
        "corral_interruptions_total", {"pool": "p", "source": source, "kind": kind}
    )
    return value or 0.0


def harness_run(scenario: Scenario, h: Harness) -> Harness:
    return run(scenario, h)


@pytest.mark.parametrize("source", interrupt.SOURCES)
def test_a_noticed_replica_is_replaced_elsewhere_and_deleted_once_its_replacement_is_ready(
    source: interrupt.SourceName,
) -> None:
    read_as = interrupt.READ_AS[source]
    counted = interruptions(read_as)

    async def scenario(h: Harness) -> None:
        h.api.put(service("chat").replicas(2).gpus(8).dict())
        await settle(h)
        await make_ready(h)
        (first, second) = names(h)
        noticed = where(h)[first]
        before = h.api.requests.copy()

        notify(h, noticed, source)
        await settle(h)
        # Surge-first: the replacement exists, the noticed replica still serves.
        now = where(h)
        replacement = f"{first}-x1"
        assert set(now) == {first, second, replacement}, now
        assert now[replacement] not in (noticed, now[second])
        assert status(h)["readyReplicas"] == 2
        disrupted = condition(h, "Disrupted")
        assert (disrupted["status"], disrupted["reason"]) == ("True", "Replacing")
        assert f"{first} on {noticed}" in disrupted["message"]
        assert f"replacement {replacement} starting on {now[replacement]}" in disrupted["message"]
        (told,) = [m for who, _, r, m in h.events if who == "chat" and r == "TerminationNotice"]
        assert noticed in told and read_as in told and replacement in told
        assert interruptions(read_as) == counted + 1
        made = h.api.requests - before
        assert made[("POST", "pods")] == 1 and made[("DELETE", "pods")] == 0

        # Unchanged while the replacement starts: nothing is written.
        assert h.operator is not None
        writes = h.api.writes()
        for _ in range(3):
            await h.operator.inference.reconcile("default/chat")
        assert h.api.writes() == writes

        await make_ready(h, replacement)
        assert names(h) == sorted([second, replacement])
        assert status(h)["readyReplicas"] == 2
        assert condition(h, "Disrupted")["status"] == "False"
        assert "Replaced" in h.reasons("chat")
        made = h.api.requests - before
        assert made[("POST", "pods")] == 1 and made[("DELETE", "pods")] == 1
        assert interruptions(read_as) == counted + 1

    harness_run(scenario, spot_fleet(4))


def test_without_room_the_noticed_replica_serves_on_and_the_status_says_so() -> None:
    async def scenario(h: Harness) -> None:
        h.api.put(service("chat").replicas(2).gpus(8).dict())
        await settle(h)
        await make_ready(h)
        (first, _) = names(h)
        noticed = where(h)[first]
        notify(h, noticed, "aws")
        await settle(h)
        assert len(replicas(h)) == 2  # nothing else has room: no replacement, nothing deleted
        disrupted = condition(h, "Disrupted")
        assert (disrupted["status"], disrupted["reason"]) == ("True", "Unschedulable")
        assert (
            f"{first} on {noticed} (taint {notices.NTH_SPOT_ITN}, aws-nth" in disrupted["message"]
        )
        assert "it serves until its node goes" in disrupted["message"]
        assert condition(h, "Ready")["status"] == "True"
        assert h.reasons("chat").count("ReplacementBlocked") == 1
        assert h.operator is not None
        writes = h.api.writes()
        for _ in range(3):
            await h.operator.inference.reconcile("default/chat")
        assert h.api.writes() == writes
        # A node joins: the waiting replacement is made at once (woken by the node's event).
        h.api.put(node("h9").label("pool", "p").gpus(8).spot().obj())
        await settle(h)
        assert where(h)[f"{first}-x1"] == "h9"
        await make_ready(h)
        assert first not in names(h)
        assert h.reasons("chat").count("ReplacementBlocked") == 1

    harness_run(scenario, spot_fleet(2))


async def one_replica_noticed(h: Harness, source: interrupt.SourceName) -> tuple[str, str]:
    """One ready replica, its node noticed by `source`, its replacement made: (replica, node)."""
    h.api.put(service("chat").replicas(1).gpus(8).dict())
    await settle(h)
    await make_ready(h)
    (first,) = names(h)
    noticed = where(h)[first]
    notify(h, noticed, source)
    await settle(h)
    assert names(h) == [first, f"{first}-x1"]
    return first, noticed


def test_a_withdrawn_notice_cancels_the_pending_replacement_without_flapping() -> None:
    async def scenario(h: Harness) -> None:
        first, noticed = await one_replica_noticed(h, "karpenter")
        before = h.api.requests.copy()
        withdraw(h, noticed)
        await settle(h)
        assert names(h) == [first]  # the replacement that was starting is cancelled
        assert "NoticeWithdrawn" in h.reasons("chat")
        assert condition(h, "Disrupted")["status"] == "False"
        made = h.api.requests - before
        assert (made[("POST", "pods")], made[("DELETE", "pods")]) == (0, 1)
        # No flapping: later looks make nothing and delete nothing.
        await h.run_for(30)
        await make_ready(h)
        assert names(h) == [first]
        made = h.api.requests - before
        assert (made[("POST", "pods")], made[("DELETE", "pods")]) == (0, 1)

    harness_run(scenario, spot_fleet(3))


def test_a_notice_withdrawn_after_the_replacement_is_ready_keeps_the_older_replica() -> None:
    async def scenario(h: Harness) -> None:
        first, noticed = await one_replica_noticed(h, "gke")
        # Withdrawn in the same instant the replacement turns ready: one replica per slot stays,
        # the older one (warm), and the replacement goes; never both deleted.
        withdraw(h, noticed)
        await make_ready(h, f"{first}-x1")
        assert names(h) == [first]
        assert status(h)["readyReplicas"] == 1

    harness_run(scenario, spot_fleet(3))


@pytest.mark.parametrize(
    ("spec", "noticed", "ceiling"),
    [
        # Fixed size 2, both noticed: max(desired, replicas) + 1 = 3 -> one replacement at a time.
        ({"replicas": 2}, 2, 3),
        # Autoscaled at 2 of at most 4 (no metrics: held at the minimum): both at once (4 <= 5).
        ({"autoscaled": (2, 4)}, 2, 4),
    ],
)
def test_replacements_never_exceed_the_surge_bound(
    spec: dict[str, Any], noticed: int, ceiling: int
) -> None:
    async def scenario(h: Harness) -> None:
        built = service("chat").gpus(8)
        if "replicas" in spec:
            built = built.replicas(spec["replicas"])
        else:
            least, most = spec["autoscaled"]
            built = built.autoscaled(least=least, most=most)
        h.api.put(built.dict())
        await settle(h)
        await make_ready(h)
        first = names(h)
        for name in first[:noticed]:
            notify(h, where(h)[name], "aws")
        peak = 0
        for _ in range(8):
            await settle(h)
            peak = max(peak, len(replicas(h)))
            await make_ready(h)
            peak = max(peak, len(replicas(h)))
        assert peak == ceiling
        assert not set(first[:noticed]) & set(names(h))
        assert status(h)["readyReplicas"] == len(first)

    harness_run(scenario, spot_fleet(6))


def test_a_pod_marked_disruption_target_is_replaced_too() -> None:
    async def scenario(h: Harness) -> None:
        h.api.put(service("chat").replicas(1).gpus(8).dict())
        await settle(h)
        await make_ready(h)
        (first,) = names(h)
        pod = next(p for p in h.pods() if p["metadata"]["name"] == first)
        pod["status"]["conditions"].append(
            {"type": "DisruptionTarget", "status": "True", "reason": "EvictionByEvictionAPI"}
        )
        h.api.put(pod)
        await settle(h)
        assert names(h) == [first, f"{first}-x1"]
        await make_ready(h)
        assert names(h) == [f"{first}-x1"]

    harness_run(scenario, spot_fleet(2))


def advise(h: Harness, name: str) -> None:
    """An advisory notice kube-scheduler does not act on (a node condition, no taint)."""
    body = h.api.obj(f"/api/v1/nodes/{name}")
    assert body is not None
    body["status"]["conditions"].append({"type": "MaintenancePlanned", "status": "True"})
    h.api.put(body)


def test_an_advisory_notice_moves_nothing_and_is_avoided_when_there_is_a_choice() -> None:
    async def scenario(h: Harness) -> None:
        advise(h, "h0")
        advise(h, "h1")
        await settle(h)
        h.api.put(service("chat").replicas(1).gpus(8).dict())
        await settle(h)
        await make_ready(h)
        assert list(where(h).values()) == ["h2"]
        # On an advised node already: it stays (a hint, not a notice).
        advise(h, "h2")
        await settle(h)
        assert list(where(h).values()) == ["h2"]
        assert not any(c["type"] == "Disrupted" for c in status(h)["conditions"])
        # With no other choice, an advised node takes a replica.
        h.api.put(service("chat").replicas(3).gpus(8).dict() | {"metadata": cis_meta(h)})
        await settle(h)
        assert sorted(where(h).values()) == ["h0", "h1", "h2"]

    harness_run(scenario, spot_fleet(3))


def cis_meta(h: Harness) -> Obj:
    found = h.api.obj("/apis/corral.dev/v1alpha1/namespaces/default/inferenceservices/chat")
    assert found is not None
    return dict(found["metadata"])


def ready_count(h: Harness) -> int:
    return sum(
        1
        for p in replicas(h)
        if any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in (p.get("status") or {}).get("conditions") or []
        )
    )


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), wanted=st.integers(1, 3), spare=st.integers(1, 2))
def test_while_room_exists_never_fewer_ready_replicas_than_before_the_notice(
    data: st.DataObject, wanted: int, spare: int
) -> None:
    """Property: whatever nodes are noticed (and withdrawn) and however slowly replacements turn
    ready, a service with room never has fewer ready replicas than before, never more than
    desired + 1 live, and ends with none on a noticed node."""
    noticed_count = data.draw(st.integers(1, wanted), label="noticed")
    hosts = wanted + noticed_count + spare - 1  # a free host for each replacement: room
    sources = data.draw(
        st.lists(
            st.sampled_from(interrupt.SOURCES), min_size=noticed_count, max_size=noticed_count
        ),
        label="sources",
    )
    withdrawn = data.draw(st.integers(-1, noticed_count - 1), label="withdrawn index")

    async def scenario(h: Harness) -> None:
        h.api.put(service("chat").replicas(wanted).gpus(8).dict())
        await settle(h)
        await make_ready(h)
        assert ready_count(h) == wanted
        targets = [where(h)[name] for name in names(h)[:noticed_count]]
        for target, source in zip(targets, sources, strict=True):
            notify(h, target, source)
        for step in range(4 * wanted + 4):
            await settle(h)
            assert ready_count(h) >= wanted, (step, where(h))
            assert len(replicas(h)) <= wanted + 1, (step, where(h))
            if step == 1 and withdrawn >= 0:
                withdraw(h, targets[withdrawn])
            starting = [p["metadata"]["name"] for p in replicas(h) if p["spec"].get("nodeName")]
            chosen = data.draw(st.lists(st.sampled_from(starting), unique=True)) if starting else []
            if step >= 2 * wanted + 2:
                chosen = starting  # eventually every replica starts
            await make_ready(h, *chosen) if chosen else None
            assert ready_count(h) >= wanted, (step, where(h))
        still = {t for i, t in enumerate(targets) if i != withdrawn}
        assert not still & set(where(h).values()), where(h)
        assert len(replicas(h)) == wanted and ready_count(h) == wanted

    harness_run(scenario, spot_fleet(hosts))


# -- the replacement's admission, pure (`corral.inference.lifecycle.decide`) ----------------------


def noticed(nodes: list[Obj], name: str) -> tuple[list[Obj], Callable[[str], Any]]:
    """The nodes with an AWS spot interruption taint on `name`, and the live cluster's reading of
    notices (`binding_notice` of each node)."""
    marked = [
        {**n, "spec": {"taints": [{"key": notices.NTH_SPOT_ITN, "effect": "NoSchedule"}]}}
        if n["metadata"]["name"] == name
        else n
        for n in nodes
    ]
    by_name = {n["metadata"]["name"]: n for n in marked}
    return marked, lambda node_name: notices.binding_notice(by_name[node_name])


@dataclass
class Admitted:
    name: str
    quotas: list[Obj] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    pools: list[GPUPool] = field(default_factory=lambda: [gpu_pool("p")])
    nodes: list[Obj] = field(default_factory=lambda: hosts("p", 3))
    onto: set[str] | None = None
    """Where the replacement may go (None: no replacement is made)."""
    reason: str = "Replacing"


ADMITTED = [
    Admitted("room and no quota: replaced", onto={"p-h2"}),
    Admitted("quota with room for one more", quotas=[quota("3", used="2")], onto={"p-h2"}),
    Admitted(
        "quota full: the noticed replica serves on", [quota("2", used="2")], reason="QuotaExceeded"
    ),
    Admitted(
        "namespace no longer allowed in the pool",
        pools=[gpu_pool("p", team="a")],
        labels={"team": "b"},
        reason="PoolNotAllowed",
    ),
    Admitted(
        "only the allowed pool takes the replacement",
        pools=[gpu_pool("p"), gpu_pool("q", team="a")],
        nodes=[*hosts("p", 3), *hosts("q", 2, gpus=1)],
        labels={"team": "b"},
        onto={"p-h2"},
    ),
    Admitted("no room off the noticed node", nodes=hosts("p", 2), reason="Unschedulable"),
]


@pytest.mark.parametrize("case", ADMITTED, ids=[c.name for c in ADMITTED])
def test_a_replacement_is_admitted_like_any_replica(case: Admitted) -> None:
    service = admission_spec(2)
    revision = revision_of(service)
    pods = [running(slot, revision) for slot in range(2)]
    nodes, node_notice = noticed(case.nodes, "p-h0")
    snapshot = FleetSnapshot.build(nodes, [], case.pools, notices=notices.node_usability)
    tenancy = Tenancy.build(
        [{"kind": "Namespace", "metadata": {"name": NS, "labels": case.labels}}], case.quotas
    )
    view = ServiceView(NS, "chat", "uid", 1, service, InferenceServiceStatus())
    done = lifecycle.decide(
        view,
        pods,
        lifecycle.fixed(2),
        snapshot,
        Ledger(snapshot),
        "cis:x",
        T0,
        tenancy=tenancy,
        node_notice=node_notice,
    )
    decision = done.decision
    created = [a for a in decision.of(CreateWorker) if isinstance(a, CreateWorker)]
    assert not decision.of(DeletePod)  # the noticed replica is never deleted before a swap
    assert isinstance(decision.status, InferenceServiceStatus)
    conditions = {c.type: c for c in decision.status.conditions}
    assert (conditions["Disrupted"].status, conditions["Disrupted"].reason) == ("True", case.reason)
    assert f"chat-{revision}-0 on p-h0" in conditions["Disrupted"].message
    assert conditions["Ready"].status == "True"  # the service still serves
    warnings = [e.reason for e in decision.of(Emit) if isinstance(e, Emit) and e.type == "Warning"]
    if case.onto is None:
        assert created == [] and done.interruptions == []
        assert warnings == ["ReplacementBlocked"]
        assert "it serves until its node goes" in conditions["Disrupted"].message
        return
    (made,) = created
    assert (made.index, made.replacement) == (0, 1) and made.node in case.onto
    assert warnings == ["TerminationNotice"]
    (interruption,) = done.interruptions
    assert (interruption.node, interruption.notice.source) == ("p-h0", "aws-nth")


async def _swap(h: Harness) -> tuple[str, str]:
    """A ready service of two, one replica's node noticed, replaced, the replacement made ready."""
    first, _ = names(h)
    noticed_node = where(h)[first]
    notify(h, noticed_node, "aws")
    await settle(h)
    await make_ready(h)
    await settle(h)
    return first, noticed_node


def test_killed_after_any_write_of_a_swap_a_restarted_operator_converges() -> None:
    """Kill the operator before write k of a swap, for every k; a new operator on the same state
    ends with two ready replicas off the noticed node and one replacement made, never two."""

    async def count(h: Harness) -> None:
        h.api.put(service("chat").replicas(2).gpus(8).dict())
        await settle(h)
        await make_ready(h)
        before = h.api.writes()
        await _swap(h)
        total.append(h.api.writes() - before)

    total: list[int] = []
    harness_run(count, spot_fleet(4))
    assert total[0] >= 4  # create, ungate, status, delete (at least)
    for k in range(total[0]):
        h = spot_fleet(4)

        async def crash_then_restart(h: Harness = h, k: int = k) -> None:
            async with h.running():
                h.api.put(service("chat").replicas(2).gpus(8).dict())
                await settle(h)
                await make_ready(h)
                h.api.crash_after = h.api.writes() + k
                first, noticed_node = await _swap(h)
                assert h.crashed, f"write {k + 1} of the swap never came"
            h.api.crash_after = None
            async with h.running():
                for _ in range(3):
                    await settle(h)
                    await make_ready(h)
                assert first not in names(h), (k, where(h))
                assert noticed_node not in where(h).values(), (k, where(h))
                assert ready_count(h) == 2, (k, where(h))
                made = [p["metadata"]["name"] for p in h.pods() if "-x" in p["metadata"]["name"]]
                assert made == [f"{first}-x1"], (k, made)

        asyncio.run(crash_then_restart())
