"""The workloads and the policies `bench/autoscaling.py` compares Corral's autoscaler with.

Workloads: a trace CSV (TIMESTAMP, ContextTokens, GeneratedTokens) turned into requests with
the service-time constants below, or Poisson arrivals with request sizes drawn from a trace.

Policies, each driving the same discrete-event model (`corral.autoscaling.servingsim`):
- `hpa`: Kubernetes HPA on requests in flight per replica (served + queued, averaged over the
  last minute as a Prometheus adapter would), desired = ceil(n * m / t), tolerance 0.1, 300 s
  scale-down window (highest recommendation), up at most x2 or +4 per 15 s sync.
- `kpa`: Knative's KPA: concurrency averaged over a 60 s stable and a 6 s panic window, target
  70 % of the replica's concurrency, panic when the panic-window need is 2x the ready replicas
  (no scale-down while panicking, for 60 s), at most halving per 2 s tick.
- `queue`: vLLM production-stack's KEDA trigger: HPA on the summed `num_requests_waiting` with
  a threshold of 5 per replica (desired = ceil(waiting / 5)), the same HPA window and tolerance.
- `oracle`: offline, minute by minute, the fewest replicas that meet every objective on exact
  replay of that minute's arrivals (binary search), started a start-up time ahead.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from corral.autoscaling.policy import Policy
from corral.autoscaling.servingsim import Request, ServingSim


def poisson(
    sizes: Sequence[Request], rate: Callable[[float], float], duration: float, seed: int
) -> list[Request]:
    """Poisson arrivals at `rate(t)` (thinning against its maximum), sizes drawn from `sizes`."""
    rng = random.Random(seed)
    peak = max(rate(t) for t in range(0, int(duration) + 1, 10)) or 1.0
    out: list[Request] = []
    t = 0.0
    while True:
        t += rng.expovariate(peak)
        if t >= duration:
            return out
        if rng.random() * peak <= rate(t):
            size = rng.choice(sizes)
            out.append(Request(t, size.prefill, size.decode, size.tokens))


# --- baselines -------------------------------------------------------------------------------


@dataclass
class HPA:
    """HPA's replica calculator and stabilisation on an average-value metric per replica."""

    target: float
    metric: Callable[[ServingSim], float]
    """The metric summed over replicas (desired = ceil(metric / target))."""
    policy: Policy
    period: float = 15.0
    tolerance: float = 0.1
    window: float = 300.0
    history: list[tuple[float, int]] = field(default_factory=list)

    def decide(self, sim: ServingSim, current: int) -> int:
        total = self.metric(sim)
        ready = max(sim.ready, 1)
        usage_ratio = total / ready / self.target
        if abs(usage_ratio - 1) <= self.tolerance:
            recommended = current
        else:
            recommended = math.ceil(total / self.target)
        recommended = min(self.policy.max_replicas, max(self.policy.floor, recommended))
        self.history = [(t, n) for t, n in self.history if t > sim.now - self.window]
        self.history.append((sim.now, recommended))
        if recommended > current:
            return min(recommended, max(2 * current, current + 4))
        return min(current, max(n for _, n in self.history))


@dataclass
class KPA:
    """Knative's autoscaler (stable/panic windows) on concurrency per replica."""

    target: float
    policy: Policy
    period: float = 2.0
    stable: float = 60.0
    panic: float = 6.0
    panic_until: float = -math.inf

    def decide(self, sim: ServingSim, current: int) -> int:
        stable = sim.in_system_average(sim.now - self.stable)
        panic = sim.in_system_average(sim.now - self.panic)
        want_stable = math.ceil(stable / self.target)
        want_panic = math.ceil(panic / self.target)
        ready = max(sim.ready, 1)
        if want_panic >= 2 * ready:
            self.panic_until = sim.now + self.stable
        desired = max(want_panic, current) if sim.now < self.panic_until else want_stable
        desired = max(desired, math.ceil(current / 2))  # at most halve per tick
        return min(self.policy.max_replicas, max(self.policy.floor, desired))


def in_system(sim: ServingSim) -> float:
    """Requests in flight (served or queued) averaged over the last minute."""
    return sim.in_system_average(sim.now - 60.0)


def waiting(sim: ServingSim) -> float:
    return float(sim.queued)


# --- the oracle ------------------------------------------------------------------------------


@dataclass(frozen=True)
class OracleObjective:
    ttft: bool
    """True: time to first token; False: request latency."""
    quantile: float
    target: float


def oracle_plan(
    requests: Sequence[Request],
    objectives: Sequence[OracleObjective],
    concurrency: int,
    minute: float,
    most: int,
) -> list[int]:
    """Replicas per minute: the fewest meeting every objective for that minute's arrivals, by
    exact replay from the state the previous minutes left (binary search per minute)."""
    ordered = sorted(requests, key=lambda r: r.arrival)
    end = ordered[-1].arrival if ordered else 0.0
    minutes = int(end // minute) + 1
    busy: list[float] = []  # end times of requests holding a slot
    queue_index = 0
    plan: list[int] = []
    for m in range(minutes):
        stop = (m + 1) * minute
        upto = queue_index
        while upto < len(ordered) and ordered[upto].arrival < stop:
            upto += 1
        batch = ordered[queue_index:upto]

        def meets(replicas: int, batch: Sequence[Request] = batch) -> bool:
            return _meets(_replay(busy, batch, replicas * concurrency), objectives)

        low, high = 0, 1
        while not meets(high) and high < most:
            low, high = high, min(most, high * 2)
        while high - low > 1:
            middle = (low + high) // 2
            if meets(middle):
                high = middle
            else:
                low = middle
        chosen = high if batch or busy else 0
        plan.append(chosen)
        starts = _replay(busy, batch, max(chosen, 1) * concurrency)
        for request, (started, _ttft, _latency) in zip(batch, starts, strict=True):
            heapq.heappush(busy, started + request.service)
        queue_index = upto
        while busy and busy[0] <= stop:
            heapq.heappop(busy)
    return plan


def _replay(
    busy: list[float], batch: Sequence[Request], slots: int
) -> list[tuple[float, float, float]]:
    """(start, ttft, latency) of each request with `slots` slots, FCFS."""
    if slots <= 0:
        return [(math.inf, math.inf, math.inf) for _ in batch]
    running = list(busy)
    heapq.heapify(running)
    out = []
    for request in batch:
        while running and running[0] <= request.arrival:
            heapq.heappop(running)
        start = request.arrival
        while len(running) >= slots:
            start = max(start, heapq.heappop(running))
        heapq.heappush(running, start + request.service)
        wait = start - request.arrival
        out.append((start, wait + request.prefill, wait + request.service))
    return out


def _meets(
    results: Sequence[tuple[float, float, float]], objectives: Sequence[OracleObjective]
) -> bool:
    if not results:
        return True
    for objective in objectives:
        values = sorted(ttft if objective.ttft else latency for _, ttft, latency in results)
        if quantile(values, objective.quantile) > objective.target:
            return False
    return True


def quantile(sorted_values: Sequence[float], q: float) -> float:
    """The nearest-rank q-quantile of sorted values."""
    if not sorted_values:
        return 0.0
    rank = max(0, math.ceil(q * len(sorted_values)) - 1)
    return sorted_values[rank]
