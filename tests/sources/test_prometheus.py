"""The Prometheus source against a small HTTP server speaking the Prometheus API on loopback:
good answers become an Observation, every failure becomes a problem (never an exception)."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web

from corral.api.inferenceservice import Objective, PrometheusSource
from corral.autoscaling.observation import Observation, Replicas
from corral.sources.metrics import Target
from corral.sources.prometheus import PrometheusMetrics

TTFT = Objective(name="ttft", histogram="ttft_seconds", type="TimeToFirstToken", latency_ms=500)
ITL = Objective(name="itl", histogram="itl_seconds", type="InterTokenLatency", latency_ms=50)
BUCKETS = [("0.1", "10"), ("0.5", "80"), ("1", "95"), ("+Inf", "100")]

Answer = Callable[[str], Awaitable[web.Response] | web.Response]


def vector(*samples: tuple[dict[str, str], str]) -> web.Response:
    result = [{"metric": labels, "value": [1700000000.0, value]} for labels, value in samples]
    return web.json_response(
        {"status": "success", "data": {"resultType": "vector", "result": result}}
    )


def good(query: str) -> web.Response:
    if "_bucket" in query:
        return vector(*(({"le": le}, count) for le, count in BUCKETS))
    if "_sum" in query:
        return vector(({}, "25.5"))
    if "count by (pod)" in query:
        return vector(({}, "2"))
    if "avg_over_time" in query:
        return vector(({}, "7.5"))
    return vector(({}, "0"))


def matrix(values: list[str]) -> web.Response:
    points = [[1700000000.0 + 10 * i, v] for i, v in enumerate(values)]
    result = [{"metric": {}, "values": points}]
    return web.json_response(
        {"status": "success", "data": {"resultType": "matrix", "result": result}}
    )


def observe(
    answer: Answer, objectives: tuple[Objective, ...] = (TTFT,), **fields: Any
) -> Observation:
    async def main() -> Observation:
        async def query(request: web.Request) -> web.StreamResponse:
            form = await request.post()
            reply = answer(str(form["query"]))
            return await reply if asyncio.iscoroutine(reply) else reply  # type: ignore[return-value]

        async def query_range(request: web.Request) -> web.StreamResponse:
            return matrix(["5", "5", "20", "5", "5", "5"])

        app = web.Application()
        app.router.add_post("/api/v1/query", query)
        app.router.add_post("/api/v1/query_range", query_range)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        source = PrometheusSource(url=f"http://127.0.0.1:{port}", **fields)
        metrics = PrometheusMetrics()
        try:
            return await metrics.observe(target(source, objectives), 1700000000.0)
        finally:
            await metrics.close()
            await runner.cleanup()

    return asyncio.run(main())


def target(source: PrometheusSource, objectives: tuple[Objective, ...]) -> Target:
    return Target("ns", "chat", ("chat-a", "chat-b", "chat-c"), Replicas(3), source, objectives)


def test_a_good_answer_becomes_the_observation() -> None:
    observation = observe(good, in_flight="running")
    histogram = observation.histograms["ttft"]
    assert histogram.counts == (10, 70, 15, 5)
    assert histogram.sum == 25.5
    assert observation.in_flight == 7.5
    assert observation.reporting == 2 and observation.reporting_now == 2
    assert observation.rates == (5.0, 5.0, 20.0, 5.0, 5.0, 5.0)
    assert observation.problems == {}


def test_prometheus_down_is_a_source_problem() -> None:
    async def main() -> Observation:
        source = PrometheusSource(url="http://127.0.0.1:9", timeout_seconds=2)
        metrics = PrometheusMetrics()
        try:
            return await metrics.observe(target(source, (TTFT,)), 1700000000.0)
        finally:
            await metrics.close()

    observation = asyncio.run(main())
    assert set(observation.problems) == {"source"}
    assert observation.problems["source"].startswith("http://127.0.0.1:9/api/v1/")
    assert observation.histograms == {}


def test_a_slow_prometheus_times_out_as_a_source_problem() -> None:
    async def slow(query: str) -> web.Response:
        await asyncio.sleep(2)
        return good(query)

    observation = observe(slow, timeout_seconds=0.2)
    assert "no answer within 0.2s" in observation.problems["source"]


def test_an_http_error_page_is_a_source_problem() -> None:
    observation = observe(lambda q: web.Response(status=502, text="<html>bad gateway</html>"))
    assert "HTTP 502, not JSON" in observation.problems["source"]


def test_a_bad_query_is_that_objectives_problem_only() -> None:
    def answer(query: str) -> web.Response:
        if "itl_seconds" in query:
            return web.json_response(
                {"status": "error", "errorType": "bad_data", "error": "parse error at char 12"},
                status=400,
            )
        return good(query)

    observation = observe(answer, objectives=(TTFT, ITL))
    assert "ttft" in observation.histograms
    assert set(observation.problems) == {"itl"}
    assert "parse error" in observation.problems["itl"]


@pytest.mark.parametrize(
    ("buckets", "problem"),
    [
        ([("0.1", "NaN"), ("+Inf", "3")], "NaN"),
        ([("0.1", "5"), ("0.5", "2"), ("+Inf", "5")], "decrease"),
        ([("0.1", "5")], "no +Inf bucket"),
        ([], "no series for ttft_seconds_bucket{"),
    ],
)
def test_malformed_or_missing_buckets_are_the_objectives_problem(
    buckets: list[tuple[str, str]], problem: str
) -> None:
    def answer(query: str) -> web.Response:
        if "_bucket" in query:
            return vector(*(({"le": le}, count) for le, count in buckets))
        return good(query)

    observation = observe(answer)
    assert problem in observation.problems["ttft"]
    assert "source" not in observation.problems


def test_a_non_prometheus_answer_is_a_source_problem() -> None:
    observation = observe(lambda q: web.json_response({"hello": "world"}))
    assert "source" in observation.problems


def test_nan_gauges_are_left_unknown() -> None:
    def answer(query: str) -> web.Response:
        if "avg_over_time" in query:
            return vector(({}, "NaN"))
        return good(query)

    observation = observe(answer, in_flight="running")
    assert observation.in_flight is None or not math.isnan(observation.in_flight)
    assert observation.in_flight is None
