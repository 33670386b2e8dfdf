"""The reproductions of issue 9 against the real runtime and the in-memory API (which, unlike the
API server, applies no CRD schema: these objects are what an operator meets when the CRDs are
older than its objects, or were applied without validation). Each once stopped the operator from
starting or stopped scheduling for everyone; now each fails alone, as InvalidSpec naming the
field or as a queued job saying why, and a plain job of another namespace runs."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.controllers.harness import Harness
from tests.mutations import mutated
from tests.placement.test_hostile_objects import full_job

from corral.fleet.testing import BLOCK, RACK, job, node, pool

Obj = dict[str, Any]


def _container(body: Obj) -> Obj:
    container: Obj = body["spec"]["template"]["spec"]["containers"][0]
    return container


def _poison(name: str, change: Callable[[Obj], None]) -> Obj:
    body = job(name, "team-b").workers(1).gpus(8).dict()
    change(body)
    return body


def _set(path: str, value: Any) -> Callable[[Obj], None]:
    def change(body: Obj) -> None:
        *parents, leaf = path.split(".")
        target = body
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        target[leaf] = value

    return change


def _cpu(value: str) -> Callable[[Obj], None]:
    def change(body: Obj) -> None:
        _container(body).setdefault("resources", {}).setdefault("requests", {})["cpu"] = value

    return change


# (job name, change to a valid 1-worker job, fragment of its InvalidSpec message)
INVALID: list[tuple[str, Callable[[Obj], None], str]] = [
    ("tolerations-map", _set("spec.template.spec.tolerations", {"key": "x"}),
     "spec.template.spec.tolerations: must be a list"),
    ("selector-int", _set("spec.template.spec.nodeSelector", {"a": 1}),
     "spec.template.spec.nodeSelector.a: must be a string"),
    ("env-number", _set("spec.template.spec.containers.0.env", 5),
     "spec.template.spec.containers[0].env: must be a list"),
    ("cpu-1e5000", _cpu("1e5000"), "resources.requests.cpu: '1e5000' is not a quantity"),
    ("cpu-1e999999999", _cpu("1e999999999"), "'1e999999999' is not a quantity"),
    ("j" * 64, lambda body: None, "metadata.name: must have at most 63 characters"),
]  # fmt: skip


def test_the_reproductions_of_issue_9_fail_alone_and_a_plain_job_runs() -> None:
    h = Harness(
        nodes=[
            *(node(f"h{i}").rack(f"r{i // 2}").label("pool", "p").gpus(8) for i in range(2)),
            # A node no valid request can read (its allocatable once froze the process).
            node("bad").label("pool", "p").gpus(8).cpu("1e999999999"),
        ],
        pools=[pool("p").select(pool="p")],
    )
    for name, change, _ in INVALID:
        h.api.put(_poison(name, change))
    # A 1-worker job no node matches, at the top priority: under strict FIFO it once held every
    # pool it could use, for good.
    h.api.put(
        {
            "apiVersion": "scheduling.k8s.io/v1",
            "kind": "PriorityClass",
            "metadata": {"name": "top"},
            "value": 1_000_000,
        }
    )
    unmatched = job("unmatched", "team-b").workers(1).gpus(8).node_selector(gpu="none").dict()
    unmatched["spec"]["priorityClassName"] = "top"
    h.api.put(unmatched)
    # A pool whose price once overflowed at start.
    expensive = pool("expensive").select(pool="none").dict()
    expensive["spec"]["pricing"] = {"onDemandPerDeviceHour": 1e308}
    h.api.put(expensive)

    async def scenario() -> None:
        started = time.monotonic()
        async with h.running():  # Operator.start() once raised on env: 5 and never started
            h.api.put(job("plain", "team-a").workers(2).gpus(8).dict())
            await h.converge()
            assert h.phase("plain", "team-a") == "Running"
            for name, _, expected in INVALID:
                failed = _condition(h.job(name, "team-b"), "Failed")
                assert failed["reason"] == "InvalidSpec", (name, failed)
                assert expected in failed["message"], (name, failed["message"])
                assert (name, "Warning", "InvalidSpec") in {e[:3] for e in h.events}
                assert not h.job_pods(name, "team-b")
            placed = _condition(h.job("unmatched", "team-b"), "Placed")
            assert (placed["status"], placed["reason"]) == ("False", "NoMatchingNodes"), placed
            assert "nodeSelector gpu=none" in placed["message"]
            ready = _condition(_pool(h, "expensive"), "Ready")
            assert ready["reason"] == "InvalidSpec", ready
            assert "onDemandPerDeviceHour: must be <= 1000000" in ready["message"]
            assert h.operator is not None and not any(t.done() for t in h.operator.tasks)
        # 1e999999999 is refused by its text, not computed (it once took the GIL for good).
        assert time.monotonic() - started < 60

    asyncio.run(scenario())


def _condition(obj: Obj, type_: str) -> Obj:
    found = [c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == type_]
    assert found, f"no {type_} condition on {obj['metadata']['name']}: {obj.get('status')}"
    condition: Obj = found[0]
    return condition


def _pool(h: Harness, name: str) -> Obj:
    found = h.api.obj(f"/apis/corral.dev/v1alpha1/gpupools/{name}")
    assert found is not None
    return found


def test_a_refused_service_fails_its_job_and_frees_the_devices() -> None:
    """Issue 9: a job whose Service the API server refused (422 then, for a 64-character name; a
    quota on Services or an admission policy now) was retried forever, placed, holding its
    devices: a job of another namespace waited behind it for good."""
    h = Harness(
        nodes=[node(f"h{i}").rack("r0").label("pool", "p").gpus(8) for i in range(2)],
        pools=[pool("p").select(pool="p")],
    )

    async def scenario() -> None:
        async with h.running():
            refused = h.api.fail("POST", "services", 403, times=1_000)
            h.api.put(job("a", "team-b").workers(2).gpus(8).dict())
            await h.run_for(5)
            failed = _condition(h.job("a", "team-b"), "Failed")
            assert failed["reason"] == "PodRejected", failed
            assert "its Service a was refused" in failed["message"]
            assert refused.times == 1_000 - 1  # refused once, not retried
            h.api.faults.clear()
            h.api.put(job("b", "team-a").workers(2).gpus(8).dict())
            await h.run_for(5)
            assert h.phase("b", "team-a") == "Running"

    asyncio.run(scenario())


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(mutated(full_job()), min_size=1, max_size=4))
def test_mutated_jobs_in_the_api_never_stop_the_operator(poison: list[Obj]) -> None:
    """The generated counterpart through the real runtime: whatever team-b's stored jobs hold
    (the in-memory API applies no schema), the operator starts, nothing escapes its loop, and a
    plain job of team-a runs."""
    h = Harness(
        nodes=[node(f"h{i}").block("b1").rack(f"r{i // 2}").gpus(8) for i in range(4)],
        pools=[pool("h100").levels(BLOCK, RACK).accelerator("H100-80GB")],
    )
    for index, document in enumerate(poison):
        # What the API server always stores right, whatever the body said.
        document.update(apiVersion="corral.dev/v1alpha1", kind="TrainingJob")
        document["metadata"] = {"name": f"poison-{index}", "namespace": "team-b"}
        document.pop("status", None)
        h.api.put(document)

    async def scenario() -> None:
        async with h.running():
            h.api.put(job("plain", "team-a").workers(2).gpus(8).dict())
            await h.converge()
            assert h.phase("plain", "team-a") == "Running"
            assert h.operator is not None and not any(t.done() for t in h.operator.tasks)

    asyncio.run(scenario())
