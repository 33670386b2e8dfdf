"""The httpGet checkpoint hook's caller: POSTs off the reconcile path, answers fed back as pods.

The lifecycle decides whom to ask (`CallHook`: this worker, this request id, this timeout); the
executor hands the call here and moves on, so a slow or silent workload never holds the one
worker that decides for every object. A call is

    POST <scheme>://<podIP>:<port><path>    {"id": "<request id>"}   (header X-Corral-Checkpoint-Id)

and a `200` with JSON `{"step": N, "uri": "..."}` acknowledges it: the answer is written onto the
pod as the same annotations a worker using the annotation hook would write
(`corral.disruption.checkpoints.http_ack`), so the lifecycle judges both hooks with one function,
and a restarted operator reads the acknowledgement back from the pod. The pod's job is queued at
once (the patch's answer is in the cache: its watch echo marks no work).

Anything else — another status, a body that is not that JSON, a refused connection, no answer
within `checkpoint.timeoutSeconds` — is a Warning event on the job (once per worker and request)
and the worker counts as not acknowledged. A call in flight is never started twice; a failed one
is tried again when the lifecycle still asks for it, at most every RETRY_SECONDS. HTTPS hooks are
called without certificate verification: a pod IP has no name a certificate could prove.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import aiohttp

from corral.controllers.cache import ClusterCache, controller_uid
from corral.controllers.clock import Clock
from corral.controllers.executor import PostEvent
from corral.disruption.checkpoints import http_ack
from corral.kube.client import Client
from corral.kube.rest import ApiError, core_path
from corral.scheduling.actions import CallHook

log = logging.getLogger("corral.hooks")

Obj = dict[str, Any]
RETRY_SECONDS = 5.0
REMEMBERED = 4096
"""Calls remembered (for retries and for telling a failure once): the oldest are forgotten."""
HEADER = "X-Corral-Checkpoint-Id"


class HookCaller:
    def __init__(
        self,
        api: Client,
        cache: ClusterCache,
        enqueue: Callable[[str], None],
        post_event: PostEvent,
        clock: Clock,
    ):
        self.api = api
        self.cache = cache
        self.enqueue = enqueue
        self.post_event = post_event
        self.clock = clock
        self._session: aiohttp.ClientSession | None = None
        self._inflight: dict[tuple[str, str, str], asyncio.Task[None]] = {}
        self._tried: OrderedDict[tuple[str, str, str], float] = OrderedDict()
        """(namespace, pod, request id) -> when it was last called (monotonic)."""
        self._told: OrderedDict[tuple[str, str, str], None] = OrderedDict()

    @property
    def tasks(self) -> list[asyncio.Task[None]]:
        return list(self._inflight.values())

    def call(self, namespace: str, job: Obj, action: CallHook) -> None:
        """Start the call unless it is in flight or was tried a moment ago; never blocks."""
        key = (namespace, action.pod, action.request_id)
        if key in self._inflight:
            return
        now = self.clock.monotonic()
        last = self._tried.get(key)
        if last is not None and now - last < RETRY_SECONDS:
            return
        self._remember(self._tried, key, now)
        self._inflight[key] = asyncio.create_task(
            self._call(namespace, job, action), name=f"corral-hook-{action.pod}"
        )

    async def close(self) -> None:
        for task in list(self._inflight.values()):
            task.cancel()
        await asyncio.gather(*self._inflight.values(), return_exceptions=True)
        self._inflight.clear()
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- one call -----------------------------------------------------------------------------

    async def _call(self, namespace: str, job: Obj, action: CallHook) -> None:
        key = (namespace, action.pod, action.request_id)
        try:
            problem = await self._ask(namespace, action)
            if problem is not None:
                self._tell(key, job, problem)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # never let a call take anything else down
            log.warning("checkpoint hook of %s/%s: %s", namespace, action.pod, exc)
        finally:
            self._inflight.pop(key, None)

    async def _ask(self, namespace: str, action: CallHook) -> str | None:
        """Call the hook and record a good answer on the pod; the problem otherwise."""
        try:
            async with asyncio.timeout(action.timeout_seconds):
                status, body = await self._post(action)
        except TimeoutError:
            return (
                f"checkpoint hook of {action.pod} ({action.url}) did not answer "
                f"{action.request_id} within {action.timeout_seconds:g}s"
            )
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            return f"checkpoint hook of {action.pod} ({action.url}) failed: {exc or type(exc).__name__}"
        annotations, problem = http_ack(action.request_id, status, body)
        if annotations is None:
            return f"{action.pod} ({action.url}): {problem}"
        try:
            answer = await self.api.patch(
                core_path("pods", namespace, action.pod),
                {"metadata": {"annotations": annotations}},
            )
        except ApiError as exc:
            if exc.status == 404:
                return None  # the pod is gone: its job sees that on its own
            raise
        self.cache.apply("Pod", "MODIFIED", answer, "write")
        owner = controller_uid(answer)
        job_key = self.cache.by_uid.get(owner) if owner else None
        if job_key is not None:
            self.enqueue(job_key)
        return None

    async def _post(self, action: CallHook) -> tuple[int, bytes]:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        async with self._session.post(
            action.url,
            data=json.dumps({"id": action.request_id}),
            headers={"Content-Type": "application/json", HEADER: action.request_id},
            ssl=False,  # a pod IP has no name a certificate could prove
            allow_redirects=False,
        ) as response:
            return response.status, await response.read()

    def _tell(self, key: tuple[str, str, str], job: Obj, problem: str) -> None:
        log.info("%s", problem)
        if key in self._told:
            return
        self._remember(self._told, key, None)
        self.post_event(job, "Warning", "CheckpointHookFailed", problem)

    @staticmethod
    def _remember(store: OrderedDict[Any, Any], key: Any, value: Any) -> None:
        store[key] = value
        store.move_to_end(key)
        while len(store) > REMEMBERED:
            store.popitem(last=False)
