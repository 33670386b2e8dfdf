"""The httpGet checkpoint hook: the lifecycle decides whom to call, the runtime's caller POSTs off
the reconcile path (a real local HTTP server here) and writes a 200's answer onto the pod, where
the lifecycle reads it as it reads the annotation hook's."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta

import pytest
from aiohttp import web
from tests.controllers.harness import Harness
from tests.disruption.test_operator_notices import host, workers_of
from tests.disruption.test_recovery import KEY, T0, cluster, notice_on, started, status

from corral.controllers.clock import FakeClock
from corral.controllers.hooks import HEADER, HookCaller
from corral.disruption import notices
from corral.fleet.testing import job, pool
from corral.kube.fake import FakeAPI
from corral.scheduling.actions import CallHook
from corral.sdk import protocol

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@asynccontextmanager
async def hook_server(handler: Handler) -> AsyncIterator[int]:
    """A worker's hook on 127.0.0.1; yields its port."""
    app = web.Application()
    app.router.add_post("/checkpoint", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield port
    finally:
        await runner.cleanup()


def answering(step: int, uri: str | None = None, seen: list[str] | None = None) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        body = await request.json()
        assert request.headers[HEADER] == body["id"]
        if seen is not None:
            seen.append(body["id"])
        return web.json_response({"step": step, **({"uri": uri} if uri else {})})

    return handler


# -- the caller on its own ------------------------------------------------------------------


class Setup:
    def __init__(self) -> None:
        from corral.controllers.cache import ClusterCache

        self.clock = FakeClock()
        self.api = FakeAPI(clock=self.clock.now)
        self.cache = ClusterCache()
        self.queued: list[str] = []
        self.events: list[tuple[str, str]] = []
        self.job = {
            "apiVersion": "corral.dev/v1alpha1",
            "kind": "TrainingJob",
            "metadata": {"name": "j", "namespace": "default", "uid": "job-uid"},
        }
        self.cache.by_uid["job-uid"] = "default/j"
        self.api.put(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": "j-w0-r0",
                    "namespace": "default",
                    "ownerReferences": [{"uid": "job-uid", "controller": True}],
                },
                "spec": {"containers": [{"name": "c"}]},
                "status": {"phase": "Running", "podIP": "127.0.0.1"},
            }
        )
        self.caller = HookCaller(
            self.api,
            self.cache,
            self.queued.append,
            lambda _obj, _type, reason, message: self.events.append((reason, message)),
            self.clock,
        )

    def call(self, port: int, request: str = "1796040000-notice", timeout: float = 2) -> CallHook:
        action = CallHook("j-w0-r0", f"http://127.0.0.1:{port}/checkpoint", request, timeout)
        self.caller.call("default", self.job, action)
        return action

    async def done(self) -> None:
        await asyncio.gather(*self.caller.tasks)

    def annotations(self) -> dict[str, str]:
        pod = self.api.obj("/api/v1/namespaces/default/pods/j-w0-r0")
        assert pod is not None
        return dict(pod["metadata"].get("annotations") or {})


def test_a_200_with_step_and_uri_is_written_onto_the_pod_and_the_job_is_queued() -> None:
    async def main() -> None:
        s = Setup()
        seen: list[str] = []
        async with hook_server(answering(42, "s3://ckpt/42", seen)) as port:
            s.call(port)
            s.call(port)  # in flight already: not called twice
            await s.done()
        assert seen == ["1796040000-notice"]
        assert s.annotations() == {
            protocol.COMPLETED: "1796040000-notice",
            protocol.STEP: "42",
            protocol.URI: "s3://ckpt/42",
        }
        assert s.api.requests[("PATCH", "pods")] == 1
        assert s.queued == ["default/j"] and not s.events
        await s.caller.close()

    asyncio.run(main())


async def slow(request: web.Request) -> web.Response:
    await asyncio.sleep(5)
    return web.json_response({"step": 1})


async def broken(request: web.Request) -> web.Response:
    return web.Response(status=500, text="disk full")


async def not_json(request: web.Request) -> web.Response:
    return web.Response(status=200, text="ok")


async def no_step(request: web.Request) -> web.Response:
    return web.json_response({"uri": "s3://x"})


@pytest.mark.parametrize(
    ("handler", "said"),
    [
        (broken, "answered HTTP 500"),
        (not_json, "not JSON"),
        (no_step, '"step"'),
        (slow, "did not answer"),
    ],
    ids=["500", "not-json", "no-step", "timeout"],
)
def test_any_other_answer_is_one_warning_and_no_acknowledgement(
    handler: Handler, said: str
) -> None:
    async def main() -> None:
        s = Setup()
        async with hook_server(handler) as port:
            s.call(port, timeout=0.5)
            await s.done()
            s.clock.advance(10)
            s.call(port, timeout=0.5)  # asked again later: tried again, told once
            await s.done()
        assert protocol.COMPLETED not in s.annotations()
        assert len(s.events) == 1 and s.events[0][0] == "CheckpointHookFailed"
        assert said in s.events[0][1], s.events
        assert s.api.writes() == 0
        await s.caller.close()

    asyncio.run(main())


def test_a_refused_connection_is_a_warning() -> None:
    async def main() -> None:
        s = Setup()
        async with hook_server(broken) as port:
            pass  # closed: nothing listens there any more
        s.call(port)
        await s.done()
        assert s.events and "failed" in s.events[0][1]
        await s.caller.close()

    asyncio.run(main())


def test_retries_wait_a_little() -> None:
    async def main() -> None:
        s = Setup()
        seen: list[str] = []

        async def counting(request: web.Request) -> web.Response:
            seen.append("x")
            return web.Response(status=503)

        async with hook_server(counting) as port:
            s.call(port)
            await s.done()
            s.call(port)  # right after a failure: not yet
            await s.done()
            s.clock.advance(6)
            s.call(port)
            await s.done()
        assert len(seen) == 2
        await s.caller.close()

    asyncio.run(main())


# -- through the lifecycle ------------------------------------------------------------------

HTTP_HOOK = {"hook": {"httpGet": {"port": 8080, "path": "/checkpoint"}}, "timeoutSeconds": 30}


def test_the_in_memory_cluster_reads_hook_answers_as_acknowledgements() -> None:
    c = cluster()
    c.hook = lambda call: (200, json.dumps({"step": 77, "uri": "gs://b/77"}).encode())
    started(c, checkpoint=HTTP_HOOK)
    for pod in c.pods.values():
        pod["status"]["podIP"] = "10.0.0.9"
        c._touch(pod)  # the cluster sees the change (as the API's watch would report it)
    notice_on(c, status(c)["placement"]["nodes"][0])
    now = T0 + timedelta(seconds=60)
    c.reconcile(KEY, now)  # the calls are made, the answers land on the pods
    assert {call.url for call in c.hook_calls} == {"http://10.0.0.9:8080/checkpoint"}
    c.reconcile(KEY, now + timedelta(seconds=1))
    s = status(c)
    assert s["lastCheckpoint"]["step"] == 77 and s["lastCheckpoint"]["uri"] == "gs://b/77"
    assert s["interruptions"] == 1 and s["lastRestart"]["lostWorkSeconds"] == 0


def test_a_notice_checkpoints_through_the_http_hook_over_the_real_runtime() -> None:
    h = Harness(nodes=[host(f"h{i}") for i in range(3)], pools=[pool("p").select(pool="p")])

    async def scenario(h: Harness, port: int) -> None:
        body = job("j").workers(2).gpus(8).dict()
        body["spec"]["checkpoint"] = {"hook": {"httpGet": {"port": port}}, "timeoutSeconds": 30}
        h.api.put(body)
        await h.converge()
        for pod in workers_of(h, "j").values():  # the kubelet reports the pods' IPs
            pod["status"]["podIP"] = "127.0.0.1"
            h.api.put(pod)
        await h.converge()
        noticed = h.job("j")["status"]["placement"]["nodes"][0]
        h.api.put(host(noticed).taint(notices.NTH_SPOT_ITN).obj())
        await h.converge()
        assert h.operator is not None
        for _ in range(100):  # the calls run off the reconcile path, in real time
            await asyncio.gather(*h.operator.hooks.tasks)
            await h.converge()
            if h.job("j")["status"].get("interruptions"):
                break
            await asyncio.sleep(0.01)
        status = h.job("j")["status"]
        assert status["interruptions"] == 1 and status["phase"] == "Running"
        assert status["lastCheckpoint"]["step"] == 900
        assert status["lastRestart"]["lostWorkSeconds"] == 0
        assert status["placement"]["replacements"] in ([1, 0], [0, 1])
        await h.operator.hooks.close()

    async def main() -> None:
        async with hook_server(answering(900)) as port, h.running():
            await scenario(h, port)

    asyncio.run(main())
