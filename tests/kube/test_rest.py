"""The API client against a scripted server on 127.0.0.1: what it sends, what it retries (and
what it must never send twice), the fence, watches, and the request metrics."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from tests.kube.scripted import Reply, ScriptedServer, Seen, run, status

from corral import metrics
from corral.kube.credentials import Credentials, TokenFileSource
from corral.kube.errors import ApiError, Fenced
from corral.kube.rest import (
    KubeAPI,
    RetryPolicy,
    core_path,
    custom_path,
    may_resend,
    request_verb,
    resource_of,
)

PODS = core_path("pods", "ns")
POD = core_path("pods", "ns", "w-0")
JOB_STATUS = custom_path("trainingjobs", "ns", "j", "status")


class Sleeps:
    """A sleep that records how long it was asked to wait and returns at once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


def client(server: ScriptedServer, sleeps: Sleeps | None = None, **options: Any) -> KubeAPI:
    return KubeAPI(
        server.url,
        token="t0",
        sleep=sleeps or Sleeps(),
        rng=random.Random(7),
        **options,
    )


def pod(name: str = "w-0") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "ns"}}


def requests_counted(verb: str, resource: str, code: str) -> float:
    value = metrics.REGISTRY.get_sample_value(
        "corral_api_requests_total", {"verb": verb, "resource": resource, "code": code}
    )
    return value or 0.0


# -- what every request carries ---------------------------------------------------------------


def test_writes_carry_user_agent_token_and_field_manager_reads_no_field_manager() -> None:
    async def scenario() -> list[Seen]:
        async with ScriptedServer() as server:
            server.on("GET", POD, Reply(body=pod())).on("POST", PODS, Reply(201, pod()))
            server.on("PATCH", JOB_STATUS, Reply(body={})).on("DELETE", POD, Reply(body={}))
            api = client(server)
            await api.get(POD)
            await api.create(PODS, pod())
            await api.patch(JOB_STATUS, {"status": {"phase": "Running"}})
            await api.delete(POD, preconditions={"uid": "u1"})
            await api.close()
            return server.seen

    seen = run(scenario())
    assert [s.method for s in seen] == ["GET", "POST", "PATCH", "DELETE"]
    for s in seen:
        assert s.headers["User-Agent"].startswith("corral/")
        assert s.headers["Authorization"] == "Bearer t0"
    assert [s.query.get("fieldManager") for s in seen] == [None, "corral", "corral", None]
    assert seen[2].headers["Content-Type"] == "application/merge-patch+json"
    assert seen[3].body["preconditions"] == {"uid": "u1"}


def test_server_side_apply_sends_apply_patch_with_force() -> None:
    async def scenario() -> Seen:
        async with ScriptedServer() as server:
            server.on("PATCH", JOB_STATUS, Reply(body={}))
            api = client(server)
            await api.apply(JOB_STATUS, {"status": {"phase": "Running"}})
            await api.close()
            return server.seen[0]

    seen = run(scenario())
    assert seen.headers["Content-Type"] == "application/apply-patch+yaml"
    assert seen.query == {"fieldManager": "corral", "force": "true"}


# -- 401: refresh, then once more ---------------------------------------------------------------


def test_401_rereads_a_rotated_token_file_and_sends_once_more(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("old\n")

    def rotate(_: Seen) -> None:
        token.write_text("new\n")  # the kubelet rotated the projected token meanwhile

    async def scenario() -> list[str]:
        async with ScriptedServer() as server:
            server.on(
                "GET",
                POD,
                Reply(effect=rotate, **_status(401, "Unauthorized")),
                Reply(body=pod()),
            )
            api = KubeAPI(server.url, credentials=Credentials([TokenFileSource(token)]))
            answer = await api.get(POD)
            await api.close()
            assert answer["metadata"]["name"] == "w-0"
            return [s.headers["Authorization"] for s in server.seen]

    assert run(scenario()) == ["Bearer old", "Bearer new"]


def test_a_second_401_is_the_answer() -> None:
    async def scenario() -> tuple[ApiError, int]:
        async with ScriptedServer() as server:
            server.on("GET", POD, status(401, "Unauthorized"))
            api = client(server)
            with pytest.raises(ApiError) as caught:
                await api.get(POD)
            await api.close()
            return caught.value, len(server.seen)

    error, sent = run(scenario())
    assert error.is_unauthorized and sent == 2


# -- 429 and 5xx ----------------------------------------------------------------------------------


def test_429_waits_the_servers_retry_after() -> None:
    sleeps = Sleeps()

    async def scenario() -> int:
        async with ScriptedServer() as server:
            throttled = status(429, "TooManyRequests", "Too many requests, please try again later.")
            throttled.headers = {"Retry-After": "3"}
            server.on("PATCH", JOB_STATUS, throttled, Reply(body={}))
            api = client(server, sleeps)
            await api.patch(JOB_STATUS, {"status": {}})
            await api.close()
            return len(server.seen)

    assert run(scenario()) == 2
    assert len(sleeps.delays) == 1 and 3.0 <= sleeps.delays[0] <= 3.1


def test_5xx_on_a_read_backs_off_exponentially_then_gives_up() -> None:
    sleeps = Sleeps()

    async def scenario() -> tuple[ApiError, int]:
        async with ScriptedServer() as server:
            server.on("GET", POD, status(503, "ServiceUnavailable"))
            api = client(server, sleeps, retry=RetryPolicy(retries=4, base=0.2, cap=1.0))
            with pytest.raises(ApiError) as caught:
                await api.get(POD)
            await api.close()
            return caught.value, len(server.seen)

    error, sent = run(scenario())
    assert error.status == 503 and sent == 5
    ceilings = [0.2, 0.4, 0.8, 1.0]  # capped
    assert all(c / 2 <= d <= c for d, c in zip(sleeps.delays, ceilings, strict=True))


def test_5xx_then_success_on_an_idempotent_patch() -> None:
    async def scenario() -> int:
        async with ScriptedServer() as server:
            server.on(
                "PATCH", JOB_STATUS, status(500, "InternalError"), status(504, ""), Reply(body={})
            )
            api = client(server)
            await api.patch(JOB_STATUS, {"status": {"phase": "Running"}})
            await api.close()
            return len(server.seen)

    assert run(scenario()) == 3


def test_a_json_patch_appending_to_an_array_is_not_sent_twice() -> None:
    append = [{"op": "add", "path": "/spec/schedulingGates/-", "value": {"name": "x"}}]
    remove = [{"op": "remove", "path": "/spec/schedulingGates"}]
    assert not may_resend("PATCH", append, "application/json-patch+json")
    assert may_resend("PATCH", remove, "application/json-patch+json")
    assert not may_resend("POST", pod(), "application/json")
    assert all(may_resend(m, None, "application/json") for m in ("GET", "PUT", "DELETE"))


# -- a create whose answer was lost is read back, never sent blindly again --------------------------


def test_a_create_that_timed_out_after_landing_reads_back_and_reports_409() -> None:
    stored: dict[str, Any] = {}

    def store(seen: Seen) -> None:
        stored["w-0"] = seen.body

    async def scenario() -> tuple[ApiError, list[str]]:
        async with ScriptedServer() as server:
            server.on("POST", PODS, Reply(201, pod(), delay=1.0, effect=store))
            server.on("GET", POD, Reply(body=pod()))
            api = client(server, request_timeout=0.2)
            with pytest.raises(ApiError) as caught:
                await api.create(PODS, pod())
            await api.close()
            return caught.value, [s.method for s in server.seen]

    error, methods = run(scenario())
    assert methods == ["POST", "GET"], "one create, then a read; never a second create"
    assert error.is_already_exists and stored


def test_a_create_that_timed_out_without_landing_is_sent_again_after_the_read() -> None:
    async def scenario() -> list[str]:
        async with ScriptedServer() as server:
            server.on("POST", PODS, Reply(201, pod(), delay=1.0), Reply(201, pod()))
            server.on("GET", POD, status(404, "NotFound"))
            api = client(server, request_timeout=0.2)
            answer = await api.create(PODS, pod())
            await api.close()
            assert answer["metadata"]["name"] == "w-0"
            return [s.method for s in server.seen]

    assert run(scenario()) == ["POST", "GET", "POST"]


def test_a_500_to_a_create_reads_back_too() -> None:
    async def scenario() -> list[str]:
        async with ScriptedServer() as server:
            server.on("POST", PODS, status(500, "InternalError"))
            server.on("GET", POD, Reply(body=pod()))
            api = client(server)
            with pytest.raises(ApiError) as caught:
                await api.create(PODS, pod())
            await api.close()
            assert caught.value.is_already_exists
            return [s.method for s in server.seen]

    assert run(scenario()) == ["POST", "GET"]


def test_a_lost_create_with_generate_name_is_not_retried() -> None:
    body = {"metadata": {"generateName": "w-", "namespace": "ns"}}

    async def scenario() -> tuple[ApiError, int]:
        async with ScriptedServer() as server:
            server.on("POST", PODS, Reply(201, pod(), delay=1.0))
            api = client(server, request_timeout=0.2)
            with pytest.raises(ApiError) as caught:
                await api.create(PODS, body)
            await api.close()
            return caught.value, len(server.seen)

    error, sent = run(scenario())
    assert error.no_answer and error.reason == "Timeout" and sent == 1


def test_connection_refused_is_retried_then_reported_without_an_answer() -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed once the block ends: nothing listens there
    sleeps = Sleeps()

    async def scenario() -> ApiError:
        api = KubeAPI(
            f"http://127.0.0.1:{port}",
            sleep=sleeps,
            retry=RetryPolicy(retries=2),
            rng=random.Random(1),
        )
        with pytest.raises(ApiError) as caught:
            await api.create(PODS, pod())  # never reached the server: safe to send again
        await api.close()
        return caught.value

    error = run(scenario())
    assert error.no_answer and error.reason == "ConnectionError"
    assert len(sleeps.delays) == 2


# -- the fence --------------------------------------------------------------------------------------


def test_the_fence_stops_writes_before_they_are_sent_and_lets_reads_through() -> None:
    leading = [True]

    async def scenario() -> list[str]:
        async with ScriptedServer() as server:
            server.on("GET", POD, Reply(body=pod())).on("PATCH", JOB_STATUS, Reply(body={}))
            api = client(server, fence=lambda: leading[0])
            await api.patch(JOB_STATUS, {"status": {}})
            leading[0] = False
            with pytest.raises(Fenced):
                await api.patch(JOB_STATUS, {"status": {}})
            with pytest.raises(Fenced):
                await api.delete(POD)
            await api.get(POD)
            lease_client = api.clone(fence=None)  # the leader elector's own client
            await lease_client.patch(JOB_STATUS, {"status": {}})
            await lease_client.close()
            await api.close()
            return [s.method for s in server.seen]

    assert run(scenario()) == ["PATCH", "GET", "PATCH"]


def test_a_write_backing_off_is_fenced_when_leadership_is_lost_meanwhile() -> None:
    leading = [True]

    class LoseLeadership(Sleeps):
        async def __call__(self, delay: float) -> None:
            leading[0] = False

    async def scenario() -> int:
        async with ScriptedServer() as server:
            server.on("PATCH", JOB_STATUS, status(503, "ServiceUnavailable"))
            api = client(server, LoseLeadership(), fence=lambda: leading[0])
            with pytest.raises(Fenced):
                await api.patch(JOB_STATUS, {"status": {}})
            await api.close()
            return len(server.seen)

    assert run(scenario()) == 1


# -- metrics ----------------------------------------------------------------------------------------


def test_every_request_is_counted_by_verb_resource_and_code() -> None:
    before = {
        key: requests_counted(*key)
        for key in [("get", "pods", "200"), ("patch", "trainingjobs/status", "503")]
    }
    before[("patch", "trainingjobs/status", "200")] = requests_counted(
        "patch", "trainingjobs/status", "200"
    )

    async def scenario() -> None:
        async with ScriptedServer() as server:
            server.on("GET", POD, Reply(body=pod()))
            server.on("PATCH", JOB_STATUS, status(503, "ServiceUnavailable"), Reply(body={}))
            api = client(server)
            await api.get(POD)
            await api.patch(JOB_STATUS, {"status": {}})
            await api.close()

    run(scenario())
    assert requests_counted("get", "pods", "200") - before[("get", "pods", "200")] == 1
    assert (
        requests_counted("patch", "trainingjobs/status", "503")
        - before[("patch", "trainingjobs/status", "503")]
        == 1
    )
    assert (
        requests_counted("patch", "trainingjobs/status", "200")
        - before[("patch", "trainingjobs/status", "200")]
        == 1
    )


@pytest.mark.parametrize(
    ("method", "path", "params", "verb", "resource"),
    [
        ("GET", "/api/v1/nodes", None, "list", "nodes"),
        ("GET", "/api/v1/nodes/h1", None, "get", "nodes"),
        ("GET", "/api/v1/pods", {"watch": "true"}, "watch", "pods"),
        ("GET", "/api/v1/namespaces", None, "list", "namespaces"),
        ("GET", "/api/v1/namespaces/ns", None, "get", "namespaces"),
        ("POST", PODS, None, "create", "pods"),
        ("PATCH", JOB_STATUS, None, "patch", "trainingjobs/status"),
        (
            "PUT",
            "/apis/coordination.k8s.io/v1/namespaces/ns/leases/corral",
            None,
            "update",
            "leases",
        ),
        ("DELETE", POD, None, "delete", "pods"),
        ("DELETE", PODS, None, "deletecollection", "pods"),
    ],
)
def test_verb_and_resource_of_a_request(
    method: str, path: str, params: dict[str, str] | None, verb: str, resource: str
) -> None:
    assert request_verb(method, path, params) == verb
    assert resource_of(path) == resource


# -- lists and watches ------------------------------------------------------------------------------


def test_list_follows_continue_tokens_and_restarts_when_one_expires() -> None:
    def page(names: list[str], rv: str, token: str | None = None) -> Reply:
        meta: dict[str, Any] = {"resourceVersion": rv}
        if token:
            meta["continue"] = token
        return Reply(body={"items": [pod(n) for n in names], "metadata": meta})

    async def scenario() -> tuple[list[str], str, list[dict[str, str]]]:
        async with ScriptedServer() as server:
            server.on(
                "GET",
                PODS,
                page(["a"], "10", "c1"),
                status(410, "Expired", "The provided continue parameter is too old"),
                page(["a", "b"], "12", "c2"),
                page(["c"], "12"),
            )
            api = client(server)
            items, rv = await api.list(PODS)
            await api.close()
            return [i["metadata"]["name"] for i in items], rv, [s.query for s in server.seen]

    names, rv, queries = run(scenario())
    assert names == ["a", "b", "c"] and rv == "12"
    assert [q.get("continue") for q in queries] == [None, "c1", None, "c2"]
    assert all(q["limit"] == "500" for q in queries)


def test_watch_yields_decoded_events_and_bookmarks_then_ends() -> None:
    big = "x" * 300_000  # longer than aiohttp's own line reader accepts
    events = [
        {"type": "ADDED", "object": {**pod("a"), "data": big}},
        {"type": "BOOKMARK", "object": {"kind": "Pod", "metadata": {"resourceVersion": "20"}}},
        {"type": "DELETED", "object": pod("a")},
    ]

    async def scenario() -> tuple[list[str], dict[str, str]]:
        async with ScriptedServer() as server:
            server.on("GET", PODS, Reply(lines=events))
            api = client(server)
            got = [e async for e in api.watch(PODS, resource_version="7", timeout_seconds=5)]
            await api.close()
            assert got[0]["object"]["data"] == big
            return [e["type"] for e in got], server.seen[0].query

    types, query = run(scenario())
    assert types == ["ADDED", "BOOKMARK", "DELETED"]
    assert query == {
        "watch": "true",
        "resourceVersion": "7",
        "allowWatchBookmarks": "true",
        "timeoutSeconds": "5",
    }


def test_an_expired_watch_raises_410() -> None:
    expired = {
        "type": "ERROR",
        "object": {
            "kind": "Status",
            "code": 410,
            "reason": "Expired",
            "message": "too old resource version: 7 (4000)",
        },
    }

    async def scenario() -> tuple[list[str], ApiError]:
        async with ScriptedServer() as server:
            server.on("GET", PODS, Reply(lines=[{"type": "ADDED", "object": pod("a")}, expired]))
            api = client(server)
            got: list[str] = []
            with pytest.raises(ApiError) as caught:
                async for event in api.watch(PODS, resource_version="7"):
                    got.append(event["type"])
            await api.close()
            return got, caught.value

    got, error = run(scenario())
    assert got == ["ADDED"]
    assert error.status == 410 and error.is_gone


# -- errors by reason and causes, never by message ----------------------------------------------------


def _status(code: int, reason: str) -> dict[str, Any]:
    reply = status(code, reason)
    return {"status": reply.status, "body": reply.body}


def test_a_create_in_a_terminating_namespace_is_told_by_its_cause() -> None:
    # What NamespaceLifecycle admission answers (apiserver/pkg/admission/plugin/namespace/lifecycle).
    terminating = ApiError.from_status(
        {
            "kind": "Status",
            "code": 403,
            "reason": "Forbidden",
            "message": 'pods "w-0" is forbidden: unable to create new content in namespace ns '
            "because it is being terminated",
            "details": {
                "name": "w-0",
                "kind": "pods",
                "causes": [
                    {
                        "reason": "NamespaceTerminating",
                        "message": "namespace ns is being terminated",
                        "field": "metadata.namespace",
                    }
                ],
            },
        }
    )
    rbac = ApiError.from_status(
        {
            "code": 403,
            "reason": "Forbidden",
            "message": 'pods is forbidden: User "x" cannot create resource "pods" in the namespace '
            '"ns": being terminated',  # the words alone decide nothing
            "details": {"kind": "pods"},
        }
    )
    assert terminating.is_namespace_terminating and terminating.is_forbidden
    assert rbac.is_forbidden and not rbac.is_namespace_terminating


@pytest.mark.parametrize(
    ("code", "reason", "expected"),
    [
        (404, "NotFound", "is_not_found"),
        (404, "Not Found", "is_not_found"),  # a proxy's page: the code decides
        (409, "AlreadyExists", "is_already_exists"),
        (409, "Conflict", "is_conflict"),
        (410, "Expired", "is_gone"),
        (410, "Gone", "is_gone"),
        (422, "Invalid", "is_invalid"),
        (429, "TooManyRequests", "is_too_many_requests"),
        (500, "InternalError", "is_server_error"),
    ],
)
def test_classification_by_reason_with_the_code_as_fallback(
    code: int, reason: str, expected: str
) -> None:
    error = ApiError(code, reason, "whatever the message says")
    flags = [
        "is_not_found",
        "is_already_exists",
        "is_conflict",
        "is_gone",
        "is_invalid",
        "is_too_many_requests",
        "is_server_error",
    ]
    assert [f for f in flags if getattr(error, f)] == [expected]
