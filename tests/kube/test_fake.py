"""The in-memory API keeps the API server's behaviour the operator depends on."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from corral.kube.fake import FakeAPI, apply_json_patch, selector_matches
from corral.kube.rest import ApiError

JOBS = "/apis/corral.dev/v1alpha1/namespaces/ns/trainingjobs"


def job(name: str = "j") -> dict[str, Any]:
    return {
        "apiVersion": "corral.dev/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": name},
        "spec": {"workers": 1},
    }


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_status_and_spec_writes_go_through_their_own_endpoints() -> None:
    async def scenario() -> None:
        api = FakeAPI()
        made = await api.create(JOBS, {**job(), "status": {"phase": "Running"}})
        assert "status" not in made and made["metadata"]["generation"] == 1
        after = await api.patch(
            f"{JOBS}/j/status", {"status": {"phase": "Queued"}, "spec": {"workers": 9}}
        )
        assert after["status"] == {"phase": "Queued"} and after["spec"] == {"workers": 1}
        assert after["metadata"]["generation"] == 1
        spec = await api.patch(f"{JOBS}/j", {"spec": {"workers": 2}, "status": {"phase": "Lost"}})
        assert spec["status"] == {"phase": "Queued"} and spec["metadata"]["generation"] == 2

    run(scenario())


def test_a_patch_carrying_a_stale_resource_version_conflicts() -> None:
    async def scenario() -> None:
        api = FakeAPI()
        made = await api.create(JOBS, job())
        await api.patch(f"{JOBS}/j", {"metadata": {"labels": {"a": "b"}}})
        with pytest.raises(ApiError) as err:
            await api.patch(
                f"{JOBS}/j/status",
                {
                    "metadata": {"resourceVersion": made["metadata"]["resourceVersion"]},
                    "status": {},
                },
            )
        assert err.value.status == 409

    run(scenario())


def test_delete_preconditions_and_owner_garbage_collection() -> None:
    async def scenario() -> None:
        api = FakeAPI()
        owner = await api.create(JOBS, job())
        pod = {
            "metadata": {
                "name": "p",
                "ownerReferences": [{"uid": owner["metadata"]["uid"], "controller": True}],
            },
            "spec": {"containers": [{"name": "c"}]},
        }
        await api.create("/api/v1/namespaces/ns/pods", pod)
        with pytest.raises(ApiError) as err:
            await api.delete("/api/v1/namespaces/ns/pods/p", preconditions={"uid": "other"})
        assert err.value.status == 409
        await api.delete(f"{JOBS}/j")
        assert api.items("", "pods") == []

    run(scenario())


def test_a_watch_replays_history_and_answers_410_after_compaction() -> None:
    async def scenario() -> None:
        api = FakeAPI()
        first = await api.create(JOBS, job("a"))
        await api.create(JOBS, job("b"))
        stream = api.watch(JOBS, resource_version=first["metadata"]["resourceVersion"])
        event = await anext(stream)
        assert (event["type"], event["object"]["metadata"]["name"]) == ("ADDED", "b")
        await stream.aclose()
        api.expire_watches()
        with pytest.raises(ApiError) as err:
            await anext(api.watch(JOBS, resource_version=first["metadata"]["resourceVersion"]))
        assert err.value.status == 410

    run(scenario())


def test_faults_are_injected_by_verb_and_resource_even_after_the_write_applied() -> None:
    async def scenario() -> None:
        api = FakeAPI()
        api.fail("POST", "trainingjobs", 0, after_apply=True)
        with pytest.raises(ApiError) as err:
            await api.create(JOBS, job())
        assert err.value.status == 0
        assert api.obj(f"{JOBS}/j") is not None  # it happened, the client cannot know
        assert api.requests[("POST", "trainingjobs")] == 1

    run(scenario())


@pytest.mark.parametrize(
    ("selector", "labels", "matches"),
    [
        ("a=b", {"a": "b"}, True),
        ("a=b", {"a": "c"}, False),
        ("a", {"a": "x"}, True),
        ("!a", {"a": "x"}, False),
        ("a!=b", {}, True),
        ("a in (x, y),c", {"a": "y", "c": "1"}, True),
        ("a notin (x)", {"a": "x"}, False),
    ],
)
def test_label_selectors(selector: str, labels: dict[str, str], matches: bool) -> None:
    assert selector_matches(selector, labels) is matches


def test_json_patch_remove_of_a_missing_path_is_invalid() -> None:
    with pytest.raises(ApiError) as err:
        apply_json_patch({"spec": {}}, [{"op": "remove", "path": "/spec/schedulingGates"}])
    assert err.value.status == 422
