"""The queueing model: M/G/c waiting time, and the latency it adds to a request's own time.

Replicas x `concurrencyPerReplica` slots form `c` servers fed by one queue (a least-loaded
router is close to that). The chance of waiting is Erlang C — exact for M/M/c — and the wait of
those who wait is taken as exponential with the Allen-Cunneen mean: E[W] for M/G/c ≈ E[W] for
M/M/c x (ca² + cs²)/2. So P(W > t) = C(c, a) · exp(-θt) with θ = (cμ - λ) · 2/(ca² + cs²).

A latency objective adds the request's own part X (its service, or its prefill for TTFT) to the
wait: P(W + X > t) = P(X > t) + C · E[exp(-θ(t - X)); X ≤ t], computed exactly for X spread
uniformly inside each histogram bucket. docs/inference.md gives the measured error against the
discrete-event simulator.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from corral.autoscaling.histogram import Histogram


def erlang_b(servers: int, load: float) -> float:
    """Blocking probability of M/M/c/c with `load` erlangs (the stable recursion)."""
    blocking = 1.0
    for k in range(1, servers + 1):
        blocking = load * blocking / (k + load * blocking)
    return blocking


def erlang_c_from_b(servers: int, load: float, blocking: float) -> float:
    """Probability of waiting in M/M/c from the Erlang B value of the same c and load."""
    utilisation = load / servers
    if utilisation >= 1:
        return 1.0
    return blocking / (1 - utilisation * (1 - blocking))


def erlang_c(servers: int, load: float) -> float:
    if servers <= 0:
        return 1.0
    return erlang_c_from_b(servers, load, erlang_b(servers, load))


@dataclass(frozen=True)
class Wait:
    """The waiting time of an M/G/c queue: an atom at 0 and an exponential tail."""

    probability: float
    """P(W > 0); 1 when saturated."""
    decay: float
    """θ of P(W > t | W > 0) = exp(-θt); 0 when saturated (the wait grows without bound)."""

    @property
    def saturated(self) -> bool:
        return self.decay <= 0

    def mean(self) -> float:
        return math.inf if self.saturated else self.probability / self.decay

    def scaled(self, factor: float) -> Wait:
        """The wait multiplied by `factor` (the model's correction of the queueing delay)."""
        if factor == 1.0 or self.saturated or self.probability <= 0:
            return self
        return Wait(self.probability, self.decay / factor)

    def exceeds(self, t: float) -> float:
        if self.saturated:
            return 1.0
        return self.probability * math.exp(-self.decay * max(t, 0.0))


NO_WAIT = Wait(0.0, math.inf)


def wait_of(
    servers: int,
    rate: float,
    mean_service: float,
    service_scv: float,
    arrival_scv: float = 1.0,
    blocking: float | None = None,
) -> Wait:
    """The M/G/c wait for `servers` slots, `rate` requests/s and the service time's mean and
    squared coefficient of variation. `blocking` (Erlang B at this c) may be passed by a caller
    stepping through c, to avoid recomputing the recursion."""
    if rate <= 0 or mean_service <= 0:
        return NO_WAIT
    if servers <= 0:
        return Wait(1.0, 0.0)
    load = rate * mean_service
    if load >= servers:
        return Wait(1.0, 0.0)
    b = erlang_b(servers, load) if blocking is None else blocking
    probability = erlang_c_from_b(servers, load, b)
    variability = max((arrival_scv + service_scv) / 2, 1e-3)
    decay = (servers / mean_service - rate) / variability
    return Wait(probability, decay)


def exceedance(own: Histogram, wait: Wait, t: float) -> float:
    """P(W + X > t) for the wait W and X distributed as `own` (uniform inside each bucket; the
    +Inf bucket's mass is put at the last finite bound)."""
    if wait.saturated:
        return 1.0
    total = own.total
    if total <= 0:
        return wait.exceeds(t)
    if wait.probability <= 0:
        return own.survival(t)
    theta = wait.decay
    tail = 0.0  # E[exp(-θ(t - X)); X ≤ t] · total
    # The +Inf bucket is left out: its mass lies above every finite t, so survival() counts it.
    for index, count in enumerate(own.counts[:-1]):
        if count <= 0:
            continue
        low, high = own.lower(index), own.upper(index)
        if low > t:
            break
        top = min(high, t)
        if high <= low:  # a bucket `le=0`: a point mass at 0
            tail += count * math.exp(-theta * t)
            continue
        if theta * (top - low) < 1e-9:
            inside = top - low
        else:
            inside = (math.exp(-theta * (t - top)) - math.exp(-theta * (t - low))) / theta
        tail += count * inside / (high - low)
    return min(1.0, own.survival(t) + wait.probability * tail / total)


def latency_quantile(own: Histogram, wait: Wait, q: float) -> float:
    """The q-quantile of W + X (bisection on `exceedance`); inf when saturated."""
    if wait.saturated:
        return math.inf
    return quantile_of(lambda t: exceedance(own, wait, t), q, own.upper(len(own.bounds)))


def quantile_of(exceeds: Callable[[float], float], q: float, guess: float) -> float:
    """The least t with exceeds(t) <= 1 - q, for a non-increasing `exceeds` (bisection to
    0.01 %), searching upward from `guess`; inf past 10^7 s."""
    target = 1 - q
    low, high = 0.0, max(guess, 1e-3)
    while exceeds(high) > target:
        low, high = high, high * 2
        if high > 1e7:
            return math.inf
    for _ in range(60):
        middle = (low + high) / 2
        if exceeds(middle) > target:
            low = middle
        else:
            high = middle
        if high - low <= 1e-4 * high:
            break
    return high


def deconvolve(observed: Histogram, wait: Wait) -> Histogram | None:
    """The distribution of X given that of W + X (observed) and the model's wait.

    With W = 0 w.p. 1-C and Exp(θ) w.p. C, the Laplace transforms give
    S_X(t) = (S_L(t) - C · P(L + E' > t)) / (1 - C) with E' ~ Exp(θ/(1-C)). The inversion is
    ill-conditioned as C → 1, so it is refused above C = 0.5 (the caller keeps what it had)."""
    if wait.saturated or wait.probability > 0.5:
        return None
    if wait.probability <= 1e-6:
        return observed.normalized()
    c = wait.probability
    shifted = Wait(1.0, wait.decay / (1 - c))
    survivals: list[float] = []
    previous = 1.0
    for bound in observed.bounds:
        value = (observed.survival(bound) - c * exceedance(observed, shifted, bound)) / (1 - c)
        value = min(previous, max(0.0, value))  # a survival function never rises
        survivals.append(value)
        previous = value
    counts: list[float] = []
    before = 1.0
    for value in survivals:
        counts.append(before - value)
        before = value
    counts.append(before)
    mean = max(0.0, observed.mean() - wait.mean()) if observed.total > 0 else 0.0
    return Histogram(observed.bounds, tuple(counts), mean)
