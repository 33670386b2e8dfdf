"""The service model of one InferenceService, learned online from what each tick observes.

Three things are learned, each robustly (a tick moves an estimate at most x2, then blends it in):
- the time a request holds a slot (mean, and squared coefficient of variation): from Little's
  law on the in-flight gauge when there is one, else from the `Latency` objective;
- per queueing objective, the distribution of the request's own part X (its service, or its
  prefill for TTFT), recovered from the observed histogram by removing the model's wait;
- per queueing objective, a correction of the wait: the smoothed ratio of the observed to the
  predicted queueing delay at the objective's percentile, learned only while the wait is a
  material part of the latency (where the sizing decision is made), so it cannot flip between
  regimes; per inter-token objective, a robust line of latency against requests per replica.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from corral.autoscaling.histogram import Histogram
from corral.autoscaling.observation import Observation
from corral.autoscaling.policy import ObjectiveTarget, Policy
from corral.autoscaling.queueing import Wait, deconvolve, latency_quantile, wait_of

MIN_SAMPLES = 20
"""Observations in a window before its histogram teaches the model anything."""
LITTLE_SAMPLES = 3
"""Requests served in a window before Little's law on the in-flight gauge is trusted."""
BLEND = 0.3
"""Weight of a new window in the running estimates (about the last three windows count)."""
CORRECTION_BOUNDS = (0.5, 4.0)
SCV_BOUNDS = (0.05, 20.0)
ITL_POINTS = 32
MATERIAL_WAIT = 0.1
"""The wait must be at least this share of the predicted percentile for a correction update."""
SERVICE_MEMORY = 120.0
"""Seconds over which the service time's sums decay by e."""
CLEAR_WAIT = 0.1
"""Once X is known, it is refined only from windows where fewer requests wait than this: there
the observed histogram is mostly X whatever the error of the wait model, so the two estimates
(X and the correction of the wait) learn from different windows and cannot chase each other."""
CORRECTION_BLEND = 0.2
TAIL_SAMPLES = 5
"""Observations expected beyond the percentile before a window's percentile is trusted."""


@dataclass(frozen=True)
class ObjectiveModel:
    own: Histogram | None = None
    """Normalised distribution of the request's own part X (queueing objectives)."""
    correction: float = 1.0
    """Observed / predicted queueing delay at the percentile, smoothed (queueing objectives)."""
    corrected_at: float | None = None
    """When the correction last learned (once per window: ticks share most of their window)."""
    points: tuple[tuple[float, float], ...] = ()
    """(requests per replica, observed percentile) pairs (inter-token objectives)."""


@dataclass(frozen=True)
class ServiceModel:
    mean_service: float | None = None
    """Seconds a request holds a slot, on average."""
    service_sums: tuple[float, float] = (0.0, 0.0)
    """Decaying sums of slot-seconds busy and requests served, whose ratio is the mean."""
    service_at: float | None = None
    service_scv: float = 1.0
    objectives: Mapping[str, ObjectiveModel] = field(default_factory=dict)

    def objective(self, name: str) -> ObjectiveModel:
        return self.objectives.get(name, ObjectiveModel())

    def wait(self, servers: int, rate: float, correction: float = 1.0) -> Wait:
        """The modelled wait with `servers` slots at `rate` requests/s, its delay scaled by
        `correction`."""
        if self.mean_service is None:
            return Wait(0.0, math.inf)
        return wait_of(servers, rate, self.mean_service, self.service_scv).scaled(correction)


@dataclass(frozen=True)
class Load:
    throughput: float
    """Requests per second served over the window (scaled up for replicas not reporting)."""
    arrival: float
    """Throughput plus the growth of the queue: what arrives."""
    demand: float
    """Arrival plus the standing queue drained within one window: what must be served."""
    coverage: float = 1.0
    """ready / reporting replicas (1 when all report)."""


def measure_load(observation: Observation, policy: Policy) -> Load | str:
    """The load seen by the queueing objectives' histograms, or why it cannot be read."""
    counts = [
        observation.histograms[o.name].total
        for o in policy.objectives
        if o.queueing and o.name in observation.histograms
    ]
    if not counts:
        missing = [o.name for o in policy.objectives if o.queueing]
        if not missing:
            return "no Latency or TimeToFirstToken objective gives the request rate"
        reasons = [f"{name}: {observation.problems.get(name, 'no data')}" for name in missing]
        return "; ".join(reasons)
    coverage = 1.0
    reporting, ready = observation.reporting, observation.replicas.ready
    if observation.stopped_reporting:
        # Its part of the window is partly there: made up as if wholly missing, an over-count
        # (scale-up only: the window is incomplete) rather than an under-count.
        reporting = observation.reporting_now
    if reporting is not None and 0 < reporting < ready:
        coverage = ready / reporting
    throughput = max(counts) / observation.window * coverage
    growth = max(0.0, observation.queued_growth or 0.0)
    arrival = throughput + growth
    backlog = max(0.0, observation.queued or 0.0)
    return Load(throughput, arrival, arrival + backlog / observation.window, coverage)


def learn(
    model: ServiceModel, observation: Observation, load: Load, policy: Policy
) -> ServiceModel:
    """The model after one tick's observation."""
    replicas = observation.replicas
    stable = observation.steady
    servers = replicas.ready * policy.concurrency
    model = _learn_service_time(model, observation, load, policy, servers, stable)
    learned = dict(model.objectives)
    for objective in policy.objectives:
        histogram = observation.histograms.get(objective.name)
        if histogram is None or histogram.total < MIN_SAMPLES or not stable:
            continue
        current = model.objective(objective.name)
        if objective.queueing:
            learned[objective.name] = _learn_queueing(
                current,
                objective,
                histogram,
                model.wait(servers, load.throughput),
                observation.time,
                observation.window,
            )
        else:
            per_replica = _per_replica(observation, load, model, replicas.ready)
            if per_replica is not None:
                point = (per_replica, histogram.quantile(objective.quantile))
                learned[objective.name] = replace(
                    current, points=(*current.points, point)[-ITL_POINTS:]
                )
    return replace(model, objectives=learned)


def _learn_service_time(
    model: ServiceModel,
    observation: Observation,
    load: Load,
    policy: Policy,
    servers: int,
    stable: bool,
) -> ServiceModel:
    latency = next(
        (
            o
            for o in policy.objectives
            if o.type == "Latency"
            and o.name in observation.histograms
            and observation.histograms[o.name].total >= MIN_SAMPLES
        ),
        None,
    )
    # Each window adds (slot-seconds busy, requests served) to decaying sums; the mean is their
    # ratio. A ratio of sums weighs each window by its requests, so a quiet window's odd mean
    # moves it little, and the estimate follows the request mix over about SERVICE_MEMORY.
    busy: float | None = None
    served = load.throughput / load.coverage * observation.window
    if observation.in_flight is not None and load.throughput > 0:
        # Little's law holds over a window at a steady replica count only: a replica's series
        # born inside the window is under-counted by Prometheus's increase() (it extrapolates
        # little past a series' first sample) while the in-flight gauge's average is not, so a
        # new service or a scale-up would read a longer service time, size for it, and
        # scale up again on the new replicas' series.
        if served >= LITTLE_SAMPLES and stable:
            busy = observation.in_flight * observation.window
    elif latency is not None and (stable or model.mean_service is None):
        observed = observation.histograms[latency.name]
        wait = model.wait(servers, load.throughput, model.objective(latency.name).correction)
        sample = observed.mean() - (0.0 if wait.saturated else wait.mean())
        served = observed.total
        busy = (sample if sample > 0 else observed.mean()) * served
    mean, sums, at = model.mean_service, model.service_sums, model.service_at
    if busy is not None and math.isfinite(busy) and busy > 0:
        decay = 0.0 if at is None else math.exp(-(observation.time - at) / SERVICE_MEMORY)
        sums = (sums[0] * decay + busy, sums[1] * decay + served)
        mean, at = sums[0] / sums[1], observation.time
    scv = model.service_scv
    if latency is not None and (stable or model.mean_service is None):
        own = model.objective(latency.name).own
        if own is not None:
            scv = _blend(scv, _clamp(own.scv(), *SCV_BOUNDS))
    return replace(model, mean_service=mean, service_scv=scv, service_sums=sums, service_at=at)


def _learn_queueing(
    current: ObjectiveModel,
    objective: ObjectiveTarget,
    observed: Histogram,
    wait: Wait,
    now: float,
    window: float,
) -> ObjectiveModel:
    correction = current.correction
    corrected = wait.scaled(correction)
    own = current.own
    if own is None or corrected.probability <= CLEAR_WAIT:
        recovered = deconvolve(observed, corrected)
        if recovered is not None:
            own = (
                recovered
                if own is None or own.bounds != recovered.bounds
                else own.scaled(1 - BLEND).merged(recovered, BLEND)
            )
    if own is None:
        # Only a window where the wait can be told apart teaches X: from a saturated one the
        # whole wait would pass for the request's own time and the objective look unattainable.
        return current
    fresh = current.corrected_at is None or now - current.corrected_at >= window
    tail_samples = observed.total * (1 - objective.quantile)
    corrected_at = current.corrected_at
    if fresh and tail_samples >= TAIL_SAMPLES and not wait.saturated:
        own_q = own.quantile(objective.quantile)
        predicted = latency_quantile(own, corrected, objective.quantile)
        observed_q = observed.quantile(objective.quantile)
        modelled_delay = predicted - own_q
        if math.isfinite(predicted) and modelled_delay >= MATERIAL_WAIT * predicted:
            ratio = _clamp((observed_q - own_q) / modelled_delay, 0.5, 2.0)
            step = CORRECTION_BLEND * math.log(ratio)
            correction = _clamp(correction * math.exp(step), *CORRECTION_BOUNDS)
            corrected_at = now
    return replace(current, own=own, correction=correction, corrected_at=corrected_at)


def _per_replica(
    observation: Observation, load: Load, model: ServiceModel, ready: int
) -> float | None:
    if ready <= 0:
        return None
    if observation.in_flight is not None:
        return observation.in_flight * load.coverage / ready
    if model.mean_service is not None:
        return load.throughput * model.mean_service / ready
    return None


def inter_token_line(points: tuple[tuple[float, float], ...]) -> tuple[float, float] | None:
    """(intercept, slope) of the percentile against requests per replica: Theil-Sen over pairs
    far enough apart, else a line through the origin-shifted median point (latency grows in
    proportion to 1 + requests per replica), a prior that errs towards more replicas."""
    usable = [(u, q) for u, q in points if math.isfinite(q) and q > 0]
    if not usable:
        return None
    spread = max(u for u, _ in usable) - min(u for u, _ in usable)
    slopes = [
        (q2 - q1) / (u2 - u1)
        for i, (u1, q1) in enumerate(usable)
        for u2, q2 in usable[i + 1 :]
        if abs(u2 - u1) >= max(0.05 * spread, 1e-9) and spread >= 0.5
    ]
    if slopes:
        slope = max(0.0, statistics.median(slopes))
        intercept = statistics.median(q - slope * u for u, q in usable)
        return max(0.0, intercept), slope
    u = statistics.median(u for u, _ in usable)
    q = statistics.median(q for _, q in usable)
    slope = q / (1 + u)
    return slope, slope


def _blend(old: float, new: float) -> float:
    return old + BLEND * (new - old)


def _clamp(value: float, low: float, high: float) -> float:
    return min(high, max(low, value))
