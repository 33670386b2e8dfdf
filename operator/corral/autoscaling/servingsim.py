"""A discrete-event model of model-server replicas, for the benchmark and the model's tests.

Requests arrive at given times with a known prefill and decode time. Replicas have
`concurrency` slots; one FCFS queue feeds the least-loaded ready replica (the model's
assumption of a least-loaded router). A replica asked for serves after `startup` seconds; a
replica removed stops taking requests and leaves when its last request ends (graceful: no
request is dropped by a scale-down). Replica-seconds count from creation to departure.

Observations are recorded as a Prometheus client would: time to first token when the first
token is out, request latency and inter-token latency when the request ends.
"""

from __future__ import annotations

import heapq
import itertools
import math
from bisect import bisect_left, bisect_right
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from corral.autoscaling.histogram import (
    ITL_BUCKETS,
    REQUEST_LATENCY_BUCKETS,
    TTFT_BUCKETS,
    Histogram,
)
from corral.autoscaling.observation import Observation, Replicas
from corral.autoscaling.policy import Policy

# Service time of one request on one replica slot, from its token counts. Representative of a
# 70B-class model on a tensor-parallel H100 replica serving one request per slot: prefill at
# 8,000 prompt tokens/s after a 20 ms fixed cost, decode at 25 ms per generated token (40
# tokens/s per stream). Not measured here; they set the scale (Azure conv trace: 5.4 s mean,
# code: 1.0 s).
PREFILL_FIXED_S = 0.02
PREFILL_TOKENS_PER_S = 8000.0
DECODE_S_PER_TOKEN = 0.025


@dataclass(frozen=True)
class Request:
    arrival: float
    prefill: float
    """Seconds from start of service to the first token."""
    decode: float
    """Seconds from the first token to the last."""
    tokens: int = 1
    """Generated tokens (inter-token latency = decode / (tokens - 1))."""

    @property
    def service(self) -> float:
        return self.prefill + self.decode


def request_of(arrival: float, context_tokens: int, generated_tokens: int) -> Request:
    """A request of an LLM trace (prompt and output tokens) at the constants above."""
    generated = max(1, generated_tokens)
    return Request(
        arrival=arrival,
        prefill=PREFILL_FIXED_S + context_tokens / PREFILL_TOKENS_PER_S,
        decode=(generated - 1) * DECODE_S_PER_TOKEN,
        tokens=generated,
    )


@dataclass
class _Replica:
    ident: int
    created: float
    ready_at: float
    slots: int
    busy: int = 0
    draining: bool = False

    def ready(self, now: float) -> bool:
        return self.ready_at <= now


@dataclass
class Series:
    """Observations in time order: (time observed, value, weight)."""

    times: list[float] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    weights: list[float] = field(default_factory=list)

    def add(self, time: float, value: float, weight: float = 1.0) -> None:
        self.times.append(time)
        self.values.append(value)
        self.weights.append(weight)

    def between(self, start: float, end: float) -> tuple[list[float], list[float]]:
        """Values and weights observed in (start, end]."""
        low, high = bisect_right(self.times, start), bisect_right(self.times, end)
        return self.values[low:high], self.weights[low:high]

    def histogram(self, start: float, end: float, bounds: Sequence[float]) -> Histogram:
        values, weights = self.between(start, end)
        counts = [0.0] * (len(bounds) + 1)
        total = 0.0
        for value, weight in zip(values, weights, strict=True):
            counts[bisect_left(bounds, value)] += weight
            total += value * weight
        return Histogram(tuple(bounds), tuple(counts), total)


_FIRST, _END, _READY = 1, 2, 3


class ServingSim:
    """Replicas serving a stream of requests; advance it in time, resize it between steps."""

    def __init__(
        self, requests: Iterable[Request], concurrency: int, startup: float, replicas: int
    ) -> None:
        self.concurrency = concurrency
        self.startup = startup
        self.now = 0.0
        self._pending: deque[Request] = deque(sorted(requests, key=lambda r: r.arrival))
        self._events: list[tuple[float, int, int, int, Request | None]] = []
        self._order = itertools.count()
        self._ids = itertools.count()
        self._replicas: dict[int, _Replica] = {}
        self._queue: deque[Request] = deque()
        self.ttft = Series()
        self.latency = Series()
        self.itl = Series()
        self.waits = Series()
        self.replica_seconds = 0.0
        self.busy_seconds = 0.0
        self.queued_seconds = 0.0
        self.served: list[tuple[float, float, float]] = []
        """(arrival, time to first token, latency) of every finished request."""
        self._integrals: list[tuple[float, float, float, int]] = [(0.0, 0.0, 0.0, 0)]
        """(time, busy-slot integral, queue-length integral, queue length) at each step end."""
        self._integral_times: list[float] = [0.0]
        self.ready_since = 0.0
        for _ in range(replicas):
            ident = next(self._ids)
            self._replicas[ident] = _Replica(ident, 0.0, 0.0, concurrency)

    # --- reading ---------------------------------------------------------------------------

    @property
    def ready(self) -> int:
        return sum(1 for r in self._replicas.values() if r.ready(self.now) and not r.draining)

    @property
    def starting(self) -> int:
        return sum(1 for r in self._replicas.values() if not r.ready(self.now))

    @property
    def size(self) -> int:
        """Replicas asked for and not being removed (ready or starting)."""
        return sum(1 for r in self._replicas.values() if not r.draining)

    @property
    def existing(self) -> int:
        """Replicas that cost: starting, ready and draining."""
        return len(self._replicas)

    @property
    def busy(self) -> int:
        return sum(r.busy for r in self._replicas.values())

    @property
    def queued(self) -> int:
        return len(self._queue)

    @property
    def pending(self) -> bool:
        """Whether requests are still to arrive."""
        return bool(self._pending)

    @property
    def finished(self) -> bool:
        return not self._pending and not self._events and not self._queue

    def in_flight_average(self, start: float) -> float:
        """Average busy slots over (start, now], from the integrals kept at each step."""
        t0, busy0, _, _ = self._integral_at(start)
        span = self.now - t0
        return 0.0 if span <= 0 else (self.busy_seconds - busy0) / span

    def in_system_average(self, start: float) -> float:
        """Average requests in the system (served or queued) over (start, now]."""
        t0, busy0, queued0, _ = self._integral_at(start)
        span = self.now - t0
        if span <= 0:
            return float(self.busy + self.queued)
        return (self.busy_seconds - busy0 + self.queued_seconds - queued0) / span

    def queued_at(self, time: float) -> int:
        return self._integral_at(time)[3]

    def _integral_at(self, time: float) -> tuple[float, float, float, int]:
        index = bisect_right(self._integral_times, time) - 1
        return self._integrals[max(0, index)]

    # --- acting ----------------------------------------------------------------------------

    def offer(self, requests: Iterable[Request]) -> None:
        """More requests, arriving no earlier than the last one offered (a live load)."""
        for request in requests:
            if self._pending and request.arrival < self._pending[-1].arrival:
                raise ValueError("requests must be offered in arrival order")
            self._pending.append(request)

    def resize(self, replicas: int) -> None:
        """Ask for `replicas` (ready or starting): new ones start, surplus ones drain (starting
        ones first, then the least busy)."""
        replicas = max(0, replicas)
        current = [r for r in self._replicas.values() if not r.draining]
        if replicas > len(current):
            for _ in range(replicas - len(current)):
                self.add()
            return
        surplus = len(current) - replicas
        ordered = sorted(current, key=lambda r: (r.ready(self.now), r.busy, -r.ident))
        for replica in ordered[:surplus]:
            self.drain(replica.ident)

    def add(self, startup: float | None = None) -> int:
        """One more replica, serving after `startup` seconds (default: the model's); returns
        its identity (for `drain`)."""
        ident = next(self._ids)
        delay = self.startup if startup is None else startup
        replica = _Replica(ident, self.now, self.now + delay, self.concurrency)
        self._replicas[ident] = replica
        heapq.heappush(self._events, (replica.ready_at, _READY, next(self._order), ident, None))
        return ident

    def drain(self, ident: int) -> None:
        """That replica takes no more requests and leaves when its last one ends."""
        replica = self._replicas.get(ident)
        if replica is None or replica.draining:
            return
        was_ready = replica.ready(self.now)
        replica.draining = True
        if replica.busy == 0:
            self._leave(replica)
        if was_ready:
            self.ready_since = self.now

    def advance(self, until: float) -> None:
        """Run every event up to `until`."""
        while True:
            arrival = self._pending[0].arrival if self._pending else math.inf
            event = self._events[0][0] if self._events else math.inf
            at = min(arrival, event)
            if at > until:
                break
            self._elapse(at)
            if event <= arrival:
                _, kind, _, replica_id, request = heapq.heappop(self._events)
                self._handle(kind, replica_id, request)
            else:
                self._queue.append(self._pending.popleft())
            self._dispatch()
        self._elapse(until)
        self._integrals.append((self.now, self.busy_seconds, self.queued_seconds, self.queued))
        self._integral_times.append(self.now)
        if len(self._integrals) > 8192:
            del self._integrals[:4096]
            del self._integral_times[:4096]

    # --- inside ----------------------------------------------------------------------------

    def _elapse(self, to: float) -> None:
        if to <= self.now:
            return
        span = to - self.now
        self.replica_seconds += span * len(self._replicas)
        self.busy_seconds += span * self.busy
        self.queued_seconds += span * len(self._queue)
        self.now = to

    def _handle(self, kind: int, replica_id: int, request: Request | None) -> None:
        if request is None:  # a replica became ready
            replica = self._replicas.get(replica_id)
            if replica is not None and not replica.draining:
                self.ready_since = self.now
            return
        if kind == _FIRST:
            self.ttft.add(self.now, self.now - request.arrival)
            return
        self.latency.add(self.now, self.now - request.arrival)
        self.served.append(
            (
                request.arrival,
                self.now - request.decode - request.arrival,
                self.now - request.arrival,
            )
        )
        if request.tokens > 1:
            self.itl.add(self.now, request.decode / (request.tokens - 1), request.tokens - 1)
        replica = self._replicas[replica_id]
        replica.busy -= 1
        if replica.draining and replica.busy == 0:
            self._leave(replica)

    def _leave(self, replica: _Replica) -> None:
        del self._replicas[replica.ident]

    def _dispatch(self) -> None:
        while self._queue:
            best: _Replica | None = None
            for replica in self._replicas.values():
                if replica.draining or not replica.ready(self.now) or replica.busy >= replica.slots:
                    continue
                if best is None or replica.busy < best.busy:
                    best = replica
            if best is None:
                return
            request = self._queue.popleft()
            best.busy += 1
            self.waits.add(self.now, self.now - request.arrival)
            first = self.now + request.prefill
            heapq.heappush(self._events, (first, _FIRST, next(self._order), best.ident, request))
            end = first + request.decode
            heapq.heappush(self._events, (end, _END, next(self._order), best.ident, request))


def observe(sim: ServingSim, policy: Policy, window: float | None = None) -> Observation:
    """What Prometheus would answer about the simulated replicas now: each objective's
    histogram over the window (vLLM's buckets), the in-flight average and the queue."""
    span = policy.window if window is None else window
    start = sim.now - span
    histograms = {}
    for objective in policy.objectives:
        series, bounds = _SERIES[objective.type]
        histograms[objective.name] = getattr(sim, series).histogram(start, sim.now, bounds)
    queued_before = sim.queued_at(start)
    counts = max(
        (getattr(sim, _SERIES[o.type][0]) for o in policy.objectives if o.queueing),
        key=lambda series: len(series.times),
        default=sim.ttft,
    )
    bins = max(1, round(span / RATE_RESOLUTION))
    part = span / bins
    rates = tuple(
        sum(counts.between(start + i * part, start + (i + 1) * part)[1]) / part for i in range(bins)
    )
    return Observation(
        time=sim.now,
        window=span,
        replicas=Replicas(sim.ready, sim.starting, sim.ready_since),
        histograms=histograms,
        in_flight=sim.in_flight_average(start),
        queued=float(sim.queued),
        queued_growth=(sim.queued - queued_before) / span,
        rates=rates,
        reporting=sim.ready,
    )


RATE_RESOLUTION = 10.0
"""Seconds per part of the window in `Observation.rates`."""

_SERIES: dict[str, tuple[str, tuple[float, ...]]] = {
    "Latency": ("latency", REQUEST_LATENCY_BUCKETS),
    "TimeToFirstToken": ("ttft", TTFT_BUCKETS),
    "InterTokenLatency": ("itl", ITL_BUCKETS),
}
