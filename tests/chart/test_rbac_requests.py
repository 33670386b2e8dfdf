"""The chart's ClusterRole grants every request the operator sends (issue 9, §4: exactly the verbs
the code uses). The operator runs a lifecycle against the in-memory API — a gang placed, a worker
failing and the gang restarted, a job finishing, an InferenceService scaled, a repeated Event
aggregated — which counts each request by verb and resource; each must be allowed by a rule."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.chart.helm import render
from tests.controllers.harness import Harness
from tests.inference.builders import service

from corral.controllers.events import EventRecorder
from corral.fleet.testing import job, node, pool
from corral.kube.fake import FakeAPI

RBAC_VERB = {
    "GET": "get",
    "LIST": "list",
    "WATCH": "watch",
    "POST": "create",
    "PUT": "update",
    "PATCH": "patch",
    "DELETE": "delete",
}
GROUP = {
    "gpupools": "corral.dev",
    "trainingjobs": "corral.dev",
    "inferenceservices": "corral.dev",
    "priorityclasses": "scheduling.k8s.io",
}
"""API group of each resource the operator reads (the in-memory API counts resources only);
core ("") for the rest."""
PLURAL = {"TrainingJob": "trainingjobs", "InferenceService": "inferenceservices"}


def _operator_requests() -> set[tuple[str, str]]:
    h = Harness(
        nodes=[node(f"h{i}").rack(f"r{i // 2}").label("pool", "p").gpus(8) for i in range(4)],
        pools=[pool("p").select(pool="p")],
    )

    async def scenario() -> None:
        async with h.running():
            h.api.put(job("a").workers(2).gpus(8).dict())
            h.api.put(job("b").workers(1).gpus(8).dict())
            h.api.put(service("chat").replicas(1).dict())
            await h.run_for(5)
            h.api.finish("default", "b-w0-r0", exit_code=1)  # a restart: pods deleted, re-made
            await h.run_for(10)
            for name in ("a-w0-r0", "a-w1-r0"):
                h.api.finish("default", name, exit_code=0)
            await h.run_for(5)
            assert h.phase("a") == "Succeeded"
            assert (h.job("b").get("status") or {}).get("restarts", 0) >= 1

    asyncio.run(scenario())
    sent = {(verb, resource) for (verb, resource), count in h.api.requests.items() if count}
    # Creating an object whose ownerReference blocks the owner's deletion needs `update` on the
    # owner's finalizers where OwnerReferencesPermissionEnforcement is on (OpenShift): an
    # authorization check of the create, not a request of its own.
    for made in [*h.api.items("", "pods"), *h.api.items("", "services")]:
        for owner in made["metadata"].get("ownerReferences") or []:
            if owner.get("blockOwnerDeletion"):
                sent.add(("PUT", f"{PLURAL[owner['kind']]}/finalizers"))
    return sent


def _event_requests() -> set[tuple[str, str]]:
    api = FakeAPI()
    involved: dict[str, Any] = job("j").dict()
    involved["metadata"].update(uid="u1", resourceVersion="1")

    async def scenario() -> None:
        recorder = EventRecorder(api)
        recorder.start()
        for _ in range(2):  # the second is aggregated into the first's count: a patch
            recorder.post(involved, "Warning", "WorkerRecreated", "worker 1 recreated")
            await asyncio.wait_for(recorder.drained(), 5)
        await recorder.stop()

    asyncio.run(scenario())
    return {(verb, resource) for (verb, resource), count in api.requests.items() if count}


def _allowed(rules: list[dict[str, Any]], group: str, resource: str, verb: str) -> bool:
    return any(
        group in rule.get("apiGroups", [])
        and resource in rule.get("resources", [])
        and verb in rule.get("verbs", [])
        for rule in rules
    )


def test_every_request_the_operator_sends_is_granted_by_the_chart() -> None:
    role = next(
        o
        for o in render().objects
        if o["kind"] == "ClusterRole" and o["metadata"]["name"] == "corral"
    )
    sent = _operator_requests() | _event_requests()
    assert ("PATCH", "events") in sent  # the scenario reaches event aggregation
    assert ("DELETE", "pods") in sent and ("PATCH", "trainingjobs/status") in sent
    assert {("PUT", "trainingjobs/finalizers"), ("PUT", "inferenceservices/finalizers")} <= sent
    missing = sorted(
        f"{RBAC_VERB[verb]} {GROUP.get(resource.split('/')[0], '') or 'core'}/{resource}"
        for verb, resource in sent
        if not _allowed(
            role["rules"], GROUP.get(resource.split("/")[0], ""), resource, RBAC_VERB[verb]
        )
    )
    assert not missing, f"the operator sends requests its ClusterRole does not grant: {missing}"
