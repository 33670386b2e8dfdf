"""The smallest replica count whose predicted percentiles meet every objective.

Replica counts are tried upward from the least that is not saturated, stepping the Erlang B
recursion along (one pass over the slots, however many counts are tried). Predicted latency
only falls as replicas are added and only rises with the rate, so the first count that meets
every objective is the smallest, and more load never gives fewer replicas.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from corral.autoscaling.histogram import Histogram
from corral.autoscaling.model import ServiceModel, inter_token_line
from corral.autoscaling.policy import ObjectiveTarget, Policy
from corral.autoscaling.queueing import (
    Wait,
    erlang_b,
    exceedance,
    latency_quantile,
    quantile_of,
    wait_of,
)


@dataclass(frozen=True)
class Recommendation:
    replicas: int
    """Unbounded by min/max (max + 1 when even max replicas would not do)."""
    binding: str | None
    """The objective that asked for the most replicas (None when no objective needs any)."""
    unattainable: tuple[str, ...] = ()
    """Objectives no replica count can meet: their request's own part alone is over target."""
    unknown: tuple[str, ...] = ()
    """Objectives the model cannot evaluate yet (nothing learned)."""


def recommend(
    model: ServiceModel, rate: float, policy: Policy, profile: tuple[float, ...] = (1.0,)
) -> Recommendation:
    """The smallest count at `rate` requests/s. `profile` spreads the rate over equal parts of
    the window (multipliers with mean 1): a request arriving in part i sees the queue of rate
    `rate * profile[i]`, so bursts inside the window count as bursts, not as their average."""
    if rate <= 0:
        return Recommendation(0, None)
    checks: list[tuple[ObjectiveTarget, _Check]] = []
    unattainable: list[str] = []
    unknown: list[str] = []
    for objective in policy.objectives:
        check = _check_for(model, objective, rate, policy, profile)
        if check is None:
            unknown.append(objective.name)
        elif isinstance(check, str):
            unattainable.append(objective.name)
        else:
            checks.append((objective, check))
    if not checks:
        return Recommendation(0, None, tuple(unattainable), tuple(unknown))
    needed = {objective.name: 0 for objective, _ in checks}
    for objective, check in checks:
        needed[objective.name] = check.smallest(policy.max_replicas + 1)
    binding = max(needed, key=lambda name: needed[name])
    return Recommendation(needed[binding], binding, tuple(unattainable), tuple(unknown))


def predicted_latency(
    model: ServiceModel,
    objective: ObjectiveTarget,
    rate: float,
    replicas: int,
    policy: Policy,
    profile: tuple[float, ...] = (1.0,),
) -> float | None:
    """The model's percentile of one objective at this rate and replica count (seconds)."""
    if replicas <= 0:
        return math.inf if rate > 0 else None
    learned = model.objective(objective.name)
    if objective.queueing:
        if learned.own is None:
            return None
        waits = [
            model.wait(replicas * policy.concurrency, rate * share, learned.correction)
            for share in profile
        ]
        return mixture_quantile(learned.own, waits, profile, objective.quantile)
    line = inter_token_line(learned.points)
    if line is None or model.mean_service is None:
        return None
    intercept, slope = line
    busiest = rate * max(profile)
    return intercept + slope * _per_replica(busiest, model.mean_service, replicas, policy)


def mixture_exceedance(
    own: Histogram, waits: Sequence[Wait], weights: Sequence[float], t: float
) -> float:
    """P(W + X > t) for a request in a part picked with probability proportional to weight."""
    total = math.fsum(weights)
    return (
        math.fsum(w * exceedance(own, wait, t) for w, wait in zip(weights, waits, strict=True))
        / total
    )


def mixture_quantile(
    own: Histogram, waits: Sequence[Wait], weights: Sequence[float], q: float
) -> float:
    if len(waits) == 1:
        return latency_quantile(own, waits[0], q)
    if any(wait.saturated for wait in waits):
        return math.inf
    guess = max(latency_quantile(own, wait, q) for wait in waits)
    return quantile_of(lambda t: mixture_exceedance(own, waits, weights, t), q, guess)


WINDOW_CONFIDENCE = 0.95
"""Share of metrics windows whose own percentile should meet the target."""


def window_allowance(quantile: float, requests: float) -> float:
    """The chance of exceeding the target each request may have so that a window of about
    `requests` requests meets its percentile with WINDOW_CONFIDENCE: its excess count is about
    Poisson, and at most n(1 - q) of the n may exceed. Never below a fifth of 1 - q (a window
    of a handful of requests would otherwise ask for any number of replicas)."""
    allowed = 1 - quantile
    if requests <= 0:
        return allowed
    excess = math.floor(requests * allowed + 1e-9)
    # The largest Poisson mean mu with P(N <= excess) >= confidence (bisection).
    low, high = 0.0, max(1.0, 2.0 * excess + 10.0)
    for _ in range(40):
        mu = (low + high) / 2
        if _poisson_cdf(excess, mu) >= WINDOW_CONFIDENCE:
            low = mu
        else:
            high = mu
    return max(allowed / 5, min(allowed, low / requests))


def _poisson_cdf(k: int, mu: float) -> float:
    term = math.exp(-mu)
    total = term
    for i in range(1, k + 1):
        term *= mu / i
        total += term
    return total


class _Check:
    """Whether n replicas meet one objective."""

    def smallest(self, limit: int) -> int:
        """The least replica count below `limit` that meets it, else `limit`."""
        raise NotImplementedError


class _QueueingCheck(_Check):
    def __init__(
        self,
        model: ServiceModel,
        objective: ObjectiveTarget,
        rate: float,
        policy: Policy,
        profile: tuple[float, ...],
    ) -> None:
        learned = model.objective(objective.name)
        assert learned.own is not None and model.mean_service is not None
        self.model, self.own, self.correction = model, learned.own, learned.correction
        self.mean = model.mean_service
        self.rates = [rate * share for share in profile]
        self.weights = list(profile)
        self.objective, self.concurrency = objective, policy.concurrency
        self.window = policy.window

    def smallest(self, limit: int) -> int:
        loads = [rate * self.mean for rate in self.rates]
        # Every part must be below saturation: a saturated part's queue spills into the next.
        first = max(1, math.floor(max(loads) / self.concurrency) + 1)
        if first >= limit:
            return limit
        slots = (first - 1) * self.concurrency
        blocking = [erlang_b(slots, load) for load in loads]
        # The wait is what replicas change: its share of the budget is what the window's
        # confidence tightens (the request's own exceedance stays whatever the count).
        budget = 1 - self.objective.quantile
        own = min(budget, self.own.survival(self.objective.target))
        requests = sum(self.rates) / len(self.rates) * self.window
        tightened = window_allowance(self.objective.quantile, requests) / budget
        allowed = own + (budget - own) * tightened
        for replicas in range(first, limit):
            for index, load in enumerate(loads):
                b = blocking[index]
                for k in range(slots + 1, slots + self.concurrency + 1):
                    b = load * b / (k + load * b)  # Erlang B, one slot more
                blocking[index] = b
            slots += self.concurrency
            waits = [
                wait_of(slots, rate, self.mean, self.model.service_scv, blocking=b).scaled(
                    self.correction
                )
                for rate, b in zip(self.rates, blocking, strict=True)
            ]
            exceeds = mixture_exceedance(self.own, waits, self.weights, self.objective.target)
            if exceeds <= allowed:
                return replicas
        return limit


class _LineCheck(_Check):
    """intercept + slope · min(k, rate · mean / n) <= target."""

    def __init__(
        self,
        intercept: float,
        slope: float,
        rate: float,
        mean: float,
        policy: Policy,
        target: float,
    ) -> None:
        self.most_per_replica = math.inf if slope <= 0 else (target - intercept) / slope
        self.busy = rate * mean
        self.concurrency = policy.concurrency

    def smallest(self, limit: int) -> int:
        if self.most_per_replica >= self.concurrency:
            return 1
        return min(limit, max(1, math.ceil(self.busy / self.most_per_replica - 1e-9)))


def _check_for(
    model: ServiceModel,
    objective: ObjectiveTarget,
    rate: float,
    policy: Policy,
    profile: tuple[float, ...],
) -> _Check | str | None:
    """A check, "unattainable", or None when the model knows nothing of this objective yet."""
    learned = model.objective(objective.name)
    if model.mean_service is None:
        return None
    if objective.queueing:
        if learned.own is None:
            return None
        if learned.own.survival(objective.target) > 1 - objective.quantile:
            return "unattainable"
        return _QueueingCheck(model, objective, rate, policy, profile)
    line = inter_token_line(learned.points)
    if line is None:
        return None
    intercept, slope = line
    if intercept >= objective.target:
        return "unattainable"
    busiest = rate * max(profile)
    return _LineCheck(intercept, slope, busiest, model.mean_service, policy, objective.target)


def _per_replica(rate: float, mean: float, replicas: int, policy: Policy) -> float:
    return min(float(policy.concurrency), rate * mean / replicas)
