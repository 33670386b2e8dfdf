"""The autoscaler's metrics from the Prometheus HTTP API (`/api/v1/query`, `/api/v1/query_range`).

Never raises to its caller: a server that is down, slow, answering an error or nonsense becomes
a `problem` in the Observation (`source` for the server, the objective's name for its series),
which the autoscaler turns into holding the size with the reason in ScalingActive.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from corral.api.inferenceservice import Objective, PrometheusSource
from corral.autoscaling.histogram import Histogram, MalformedHistogram
from corral.autoscaling.observation import Observation
from corral.sources import promql
from corral.sources.metrics import Target

RATE_STEPS = 6
"""Parts of the window in `Observation.rates`."""


class QueryError(Exception):
    """A query Prometheus could not answer; `server` is True when no answer came at all."""

    def __init__(self, message: str, server: bool = False) -> None:
        super().__init__(message)
        self.server = server


@dataclass(frozen=True)
class Sample:
    labels: Mapping[str, str]
    value: float


class PrometheusClient:
    """POSTs PromQL to one Prometheus; answers are vectors of (labels, value)."""

    def __init__(
        self, url: str, timeout: float, session: aiohttp.ClientSession | None = None
    ) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._session = session
        self._owned = session is None

    async def close(self) -> None:
        if self._owned and self._session is not None:
            await self._session.close()
            self._session = None

    async def instant(self, query: str, at: float) -> list[Sample]:
        data = await self._post("/api/v1/query", {"query": query, "time": f"{at:.3f}"})
        if data.get("resultType") != "vector":
            raise QueryError(f"expected a vector, got {data.get('resultType')!r}")
        return [_sample(item, "value") for item in _results(data)]

    async def series(self, query: str, start: float, end: float, step: float) -> list[float]:
        """The values of a single-series range query, in time order (missing steps skipped)."""
        data = await self._post(
            "/api/v1/query_range",
            {"query": query, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"},
        )
        if data.get("resultType") != "matrix":
            raise QueryError(f"expected a matrix, got {data.get('resultType')!r}")
        results = _results(data)
        if not results:
            return []
        values = results[0].get("values")
        if not isinstance(values, list):
            raise QueryError("a matrix series without values")
        return [_number(pair) for pair in values]

    async def _post(self, path: str, form: dict[str, str]) -> dict[str, Any]:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        try:
            async with self._session.post(
                self.url + path,
                data=form,
                timeout=aiohttp.ClientTimeout(total=self.timeout),
            ) as response:
                try:
                    body = await response.json(content_type=None)
                except (ValueError, aiohttp.ContentTypeError) as error:
                    raise QueryError(
                        f"{path}: HTTP {response.status}, not JSON", server=True
                    ) from error
        except TimeoutError as error:
            raise QueryError(f"{path}: no answer within {self.timeout:g}s", server=True) from error
        except aiohttp.ClientError as error:
            raise QueryError(f"{path}: {type(error).__name__}: {error}", server=True) from error
        if not isinstance(body, dict):
            raise QueryError(f"{path}: answer is not a JSON object", server=True)
        if body.get("status") != "success":
            kind = body.get("errorType", f"HTTP {response.status}")
            # A bad query is the spec's fault (this objective); anything else is the server's.
            raise QueryError(f"{path}: {kind}: {body.get('error', '')}", server=kind != "bad_data")
        data = body.get("data")
        if not isinstance(data, dict):
            raise QueryError(f"{path}: answer without data", server=True)
        return data


class PrometheusMetrics:
    """The MetricsSource of the operator: one client per Prometheus URL."""

    def __init__(self, session: aiohttp.ClientSession | None = None) -> None:
        self._session = session
        self._clients: dict[tuple[str, float], PrometheusClient] = {}

    async def close(self) -> None:
        for client in self._clients.values():
            await client.close()
        self._clients.clear()

    def client(self, source: PrometheusSource) -> PrometheusClient:
        key = (source.url, source.timeout_seconds)
        if key not in self._clients:
            self._clients[key] = PrometheusClient(source.url, source.timeout_seconds, self._session)
        return self._clients[key]

    async def observe(self, target: Target, now: float) -> Observation:
        source = target.source
        scope = promql.Scope(target.namespace, target.pods, source)
        window = float(source.window_seconds)
        base = Observation(time=now, window=window, replicas=target.replicas)
        client = self.client(source)
        queueing = promql.queueing(target.objectives)
        first = queueing[0] if queueing else None
        failed: str | None = None
        try:
            async with asyncio.TaskGroup() as group:
                histograms = {
                    o.name: group.create_task(_histogram(client, scope, o, now))
                    for o in target.objectives
                }
                reporting, reporting_now = (
                    (
                        group.create_task(_count(client, query(scope, first), now))
                        if first is not None and query(scope, first) is not None
                        else None
                    )
                    for query in (promql.reporting, promql.reporting_now)
                )
                rates = (
                    group.create_task(_rates(client, scope, first, now))
                    if first is not None
                    else None
                )
                in_flight = _gauge(
                    group, client, source.in_flight, promql.gauge_average, scope, now
                )
                queued = _gauge(group, client, source.queued, promql.gauge_now, scope, now)
                change = _gauge(group, client, source.queued, promql.gauge_change, scope, now)
        except* QueryError as failures:
            # The server failed (or answered nonsense to a query every objective relies on):
            # nothing this tick can be trusted, so the size is held.
            failed = f"{source.url}{failures.exceptions[0]}"
        if failed is not None:
            return _with_problem(base, "source", failed)
        found: dict[str, Histogram] = {}
        problems: dict[str, str] = {}
        for name, task in histograms.items():
            result = task.result()
            if isinstance(result, Histogram):
                found[name] = result
            else:
                problems[name] = result
        growth = change.result() if change is not None else None
        return Observation(
            time=now,
            window=window,
            replicas=target.replicas,
            histograms=found,
            problems=problems,
            in_flight=in_flight.result() if in_flight is not None else None,
            queued=queued.result() if queued is not None else None,
            queued_growth=None if growth is None else growth / window,
            rates=rates.result() if rates is not None else (),
            reporting=_counted(reporting),
            reporting_now=_counted(reporting_now),
        )


async def _histogram(
    client: PrometheusClient, scope: promql.Scope, objective: Objective, now: float
) -> Histogram | str:
    """The objective's histogram over the window, or why it is unusable (its own problem)."""
    if not objective.histogram:
        return "no histogram: set metrics.prometheus.histogram for autoscaling.slo"
    query = promql.buckets(scope, objective)
    try:
        samples = await client.instant(query, now)
        total = await client.instant(promql.total_sum(scope, objective), now)
    except QueryError as error:
        if error.server:
            raise
        return str(error)
    if not samples:
        return f"no series for {objective.histogram}_bucket{scope.matchers(objective.selector)}"
    try:
        buckets = [(_le(sample), sample.value) for sample in samples]
        histogram_sum = total[0].value if total else 0.0
        if not math.isfinite(histogram_sum):
            histogram_sum = 0.0
        return Histogram.from_cumulative(buckets, histogram_sum)
    except (MalformedHistogram, ValueError) as error:
        return f"{objective.histogram}: {error}"


async def _count(client: PrometheusClient, query: str | None, now: float) -> float | None:
    if query is None:
        return None
    samples = await client.instant(query, now)
    return samples[0].value if samples and math.isfinite(samples[0].value) else 0.0


async def _rates(
    client: PrometheusClient, scope: promql.Scope, objective: Objective, now: float
) -> tuple[float, ...]:
    window = float(scope.source.window_seconds)
    step = window / RATE_STEPS
    try:
        values = await client.series(
            promql.request_rates(scope, objective, step), now - window + step, now, step
        )
    except QueryError as error:
        if error.server:
            raise
        return ()
    finite = [v for v in values if math.isfinite(v) and v >= 0]
    # Missing steps (scrapes sparser than a step) leave too little to see bursts by.
    return tuple(finite) if len(finite) >= RATE_STEPS // 2 else ()


def _counted(task: asyncio.Task[float | None] | None) -> int | None:
    if task is None or task.result() is None:
        return None
    return int(task.result() or 0)


def _gauge(
    group: asyncio.TaskGroup,
    client: PrometheusClient,
    gauge: str | None,
    build: Any,
    scope: promql.Scope,
    now: float,
) -> asyncio.Task[float | None] | None:
    if gauge is None:
        return None

    async def read() -> float | None:
        try:
            samples = await client.instant(build(scope, gauge), now)
        except QueryError as error:
            if error.server:
                raise
            return None
        if not samples or not math.isfinite(samples[0].value):
            return None
        return samples[0].value

    return group.create_task(read())


def _with_problem(observation: Observation, key: str, message: str) -> Observation:
    return Observation(
        time=observation.time,
        window=observation.window,
        replicas=observation.replicas,
        problems={key: message},
    )


def _results(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    results = data.get("result")
    if not isinstance(results, list) or not all(isinstance(r, dict) for r in results):
        raise QueryError("malformed result list")
    return results


def _sample(item: Mapping[str, Any], key: str) -> Sample:
    labels = item.get("metric")
    if not isinstance(labels, dict):
        raise QueryError("a sample without labels")
    return Sample({str(k): str(v) for k, v in labels.items()}, _number(item.get(key)))


def _number(pair: Any) -> float:
    if not isinstance(pair, list | tuple) or len(pair) != 2:
        raise QueryError(f"malformed sample {pair!r}")
    try:
        return float(pair[1])  # Prometheus sends "NaN", "+Inf" and "1.5" as strings
    except (TypeError, ValueError) as error:
        raise QueryError(f"malformed sample value {pair[1]!r}") from error


def _le(sample: Sample) -> float:
    le = sample.labels.get("le")
    if le is None:
        raise ValueError("a bucket without an le label")
    return float(le)


__all__: Sequence[str] = ["PrometheusClient", "PrometheusMetrics", "QueryError"]
