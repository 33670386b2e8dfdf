"""A load-and-latency simulator standing in for an InferenceService's model servers.

kwok pods run no process, so this one does what their servers would show Prometheus: it runs
the discrete-event model of the replicas (`corral.autoscaling.servingsim`) in real time, with
as many replicas as the service has Ready pods (read from the API server every second), under
a request rate the test sets, and serves vLLM's metrics for every pod:
`vllm:time_to_first_token_seconds`, `vllm:e2e_request_latency_seconds`,
`vllm:inter_token_latency_seconds` (histograms), `vllm:num_requests_running` and
`vllm:num_requests_waiting` (gauges), labelled `namespace` and `pod`.

    python e2e/loadsim.py --namespace ns --service chat --port 9400 [--rate 2] [--concurrency 4]
    python e2e/loadsim.py ... --profile 2:120,14:180,2:300    # rate:seconds, cycled (make dev)

    GET  /metrics                       the Prometheus exposition
    GET  /load                          {"rate", "replicas", "busy", "queued", "served"}
    POST /load    {"rate": 12}          the request rate from now on (requests/s)
    POST /silence {"pod": "chat-..."}   that pod's series disappear (a replica not reporting)

Request sizes: prefill uniform in 50-300 ms, 10-70 generated tokens at 25 ms each (LLM-like,
~1.2 s a request). A request is counted on the pod a least-loaded router would pick, which
for these statistics is any of them: the pod is chosen uniformly.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import random
import time
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from corral.api.names import INFERENCE_LABEL
from corral.autoscaling.histogram import ITL_BUCKETS, REQUEST_LATENCY_BUCKETS, TTFT_BUCKETS
from corral.autoscaling.servingsim import Request, ServingSim
from corral.kube.rest import KubeAPI, core_path

log = logging.getLogger("loadsim")
LABELS = ("namespace", "pod")
STEP = 0.25
"""Seconds between advances of the model."""


class LoadSim:
    def __init__(self, namespace: str, service: str, concurrency: int, rate: float, seed: int):
        self.namespace, self.service = namespace, service
        self.rate = rate
        self.rng = random.Random(seed)
        self.sim = ServingSim([], concurrency, startup=0.0, replicas=0)
        self.started = time.monotonic()
        self.pods: list[str] = []
        self.silenced: set[str] = set()
        self.next_arrival = 0.0
        self.seen = {"ttft": 0, "latency": 0, "itl": 0}
        self.registry = CollectorRegistry()
        self.ttft = Histogram(
            "vllm:time_to_first_token_seconds",
            "Time to first token.",
            LABELS,
            buckets=TTFT_BUCKETS,
            registry=self.registry,
        )
        self.latency = Histogram(
            "vllm:e2e_request_latency_seconds",
            "End-to-end request latency.",
            LABELS,
            buckets=REQUEST_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.itl = Histogram(
            "vllm:inter_token_latency_seconds",
            "Inter-token latency.",
            LABELS,
            buckets=ITL_BUCKETS,
            registry=self.registry,
        )
        self.running = Gauge(
            "vllm:num_requests_running", "Requests being served.", LABELS, registry=self.registry
        )
        self.waiting = Gauge(
            "vllm:num_requests_waiting", "Requests waiting.", LABELS, registry=self.registry
        )

    # -- the model ------------------------------------------------------------------------------

    def now(self) -> float:
        return time.monotonic() - self.started

    def step(self) -> None:
        now = self.now()
        horizon = now + STEP
        arrivals = []
        # No Ready pod, no service: clients get connection errors, not a queue.
        serving = bool(self.pods)
        while serving and self.rate > 0 and self.next_arrival < horizon:
            self.next_arrival = max(self.next_arrival, now) + self.rng.expovariate(self.rate)
            tokens = self.rng.randint(10, 70)
            arrivals.append(
                Request(
                    self.next_arrival, self.rng.uniform(0.05, 0.3), (tokens - 1) * 0.025, tokens
                )
            )
        if self.rate <= 0 or not serving:
            self.next_arrival = horizon
        self.sim.offer(arrivals)
        self.sim.advance(now)
        self._export()

    def _export(self) -> None:
        reporting = [pod for pod in self.pods if pod not in self.silenced]
        for name, series, histogram in (
            ("ttft", self.sim.ttft, self.ttft),
            ("latency", self.sim.latency, self.latency),
            ("itl", self.sim.itl, self.itl),
        ):
            values, weights = series.values, series.weights
            for index in range(self.seen[name], len(values)):
                if not self.pods:
                    continue
                # Requests are spread over every replica; a silent one's share is lost from the
                # series (it serves but does not report), as the autoscaler must make up.
                pod = self.rng.choice(self.pods)
                if pod in self.silenced:
                    continue
                child = histogram.labels(self.namespace, pod)
                for _ in range(int(weights[index])):
                    child.observe(values[index])
            self.seen[name] = len(values)
        share = max(1, len(self.pods))
        for pod in reporting:
            self.running.labels(self.namespace, pod).set(self.sim.busy / share)
            self.waiting.labels(self.namespace, pod).set(self.sim.queued / share)

    # -- the replicas -----------------------------------------------------------------------------

    async def follow(self, api: KubeAPI) -> None:
        """Keep the model's replicas equal to the service's Ready pods."""
        while True:
            try:
                found, _ = await api.list(
                    core_path("pods", self.namespace),
                    {"labelSelector": f"{INFERENCE_LABEL}={self.service}"},
                )
                ready = sorted(
                    pod["metadata"]["name"]
                    for pod in found
                    if not pod["metadata"].get("deletionTimestamp")
                    and any(
                        c.get("type") == "Ready" and c.get("status") == "True"
                        for c in (pod.get("status") or {}).get("conditions") or []
                    )
                )
                for gone in set(self.pods) - set(ready):
                    self._forget(gone)
                self.pods = ready
                if self.sim.size != len(ready):
                    self.sim.resize(len(ready))
            except Exception as exc:  # the API server restarting must not end the simulator
                log.warning("listing pods failed: %s", exc)
            await asyncio.sleep(1.0)

    def _forget(self, pod: str) -> None:
        for metric in (self.ttft, self.latency, self.itl, self.running, self.waiting):
            with contextlib.suppress(KeyError):
                metric.remove(self.namespace, pod)

    async def run(self) -> None:
        while True:
            self.step()
            await asyncio.sleep(STEP)

    async def cycle(self, profile: list[tuple[float, float]]) -> None:
        """Set the rate from a schedule of (rate, seconds), over and over."""
        while True:
            for rate, seconds in profile:
                self.rate = rate
                log.info("rate %.1f req/s for %.0f s", rate, seconds)
                await asyncio.sleep(seconds)

    # -- HTTP -------------------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/load", self._state)
        app.router.add_post("/load", self._set_load)
        app.router.add_post("/silence", self._silence)
        return app

    async def _metrics(self, request: web.Request) -> web.Response:
        body = generate_latest(self.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    def _snapshot(self) -> dict[str, Any]:
        return {
            "rate": self.rate,
            "replicas": self.sim.ready,
            "pods": self.pods,
            "busy": self.sim.busy,
            "queued": self.sim.queued,
            "served": len(self.sim.served),
        }

    async def _state(self, request: web.Request) -> web.Response:
        return web.json_response(self._snapshot())

    async def _set_load(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.rate = max(0.0, float(body["rate"]))
        log.info("rate set to %.2f req/s", self.rate)
        return web.json_response(self._snapshot())

    async def _silence(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.silenced.add(str(body["pod"]))
        self._forget(str(body["pod"]))
        return web.json_response(self._snapshot())


def set_load(base: str, rate: float) -> dict[str, Any]:
    """POST /load from a test (stdlib only)."""
    import urllib.request

    data = json.dumps({"rate": rate}).encode()
    call = urllib.request.Request(
        f"{base}/load", data=data, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(call, timeout=5) as answer:
        result: dict[str, Any] = json.loads(answer.read())
    return result


async def main(args: argparse.Namespace) -> None:
    sim = LoadSim(args.namespace, args.service, args.concurrency, args.rate, args.seed)
    api = KubeAPI.from_environment(args.kubeconfig)
    runner = web.AppRunner(sim.app())
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", args.port).start()
    log.info("serving metrics of %s/%s on :%d", args.namespace, args.service, args.port)
    tasks = [sim.run(), sim.follow(api)]
    if args.profile:
        steps = [part.split(":") for part in args.profile.split(",")]
        tasks.append(sim.cycle([(float(rate), float(seconds)) for rate, seconds in steps]))
    try:
        await asyncio.gather(*tasks)
    finally:
        await runner.cleanup()
        await api.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--service", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--rate", type=float, default=1.0)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--profile", help="rate:seconds,... cycled (overrides --rate)")
    parser.add_argument("--kubeconfig")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    asyncio.run(main(parser.parse_args()))
