"""One autoscaler tick: observation in, replica count and its explanation out.

Pure: the state is passed in and returned, time comes with the observation. The operator keeps
one state per InferenceService; the benchmark drives the same function from its discrete-event
model.

Missing data never shrinks the service: with the source down or no request rate at all, the size
is held; with one objective's series missing or malformed, the others may still scale it up,
never down (ScalingActive=False says which series and why).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from corral.autoscaling.forecast import RateHistory, forecast
from corral.autoscaling.histogram import Histogram
from corral.autoscaling.model import Load, ServiceModel, learn, measure_load
from corral.autoscaling.observation import Observation
from corral.autoscaling.policy import ObjectiveTarget, Policy
from corral.autoscaling.recommend import Recommendation, predicted_latency, recommend
from corral.autoscaling.stability import Stabilizer, down_window, stabilize


@dataclass(frozen=True)
class AutoscalerState:
    model: ServiceModel = field(default_factory=ServiceModel)
    rates: RateHistory = field(default_factory=RateHistory)
    stabilizer: Stabilizer = field(default_factory=Stabilizer)


@dataclass(frozen=True)
class Verdict:
    """One condition's status, reason and message."""

    status: bool | None
    reason: str
    message: str


@dataclass(frozen=True)
class ObjectiveReport:
    name: str
    percentile: float
    target: float
    observed: float | None = None
    """Seconds, over the window (a floor when it lies in the +Inf bucket)."""
    predicted: float | None = None
    """Seconds, at the chosen size and the forecast rate."""
    attainment: float | None = None
    met: bool | None = None
    correction: float | None = None
    """The model's correction of this objective's queueing delay (queueing objectives)."""
    own: Histogram | None = None
    """The request's own part of this latency as learned (queueing objectives)."""


@dataclass(frozen=True)
class Decision:
    replicas: int
    reason: str
    """Why this size, in one line (also when it is held)."""
    active: Verdict
    limited: Verdict
    slo_met: Verdict
    objectives: tuple[ObjectiveReport, ...] = ()
    arrival_rate: float | None = None
    forecast_rate: float | None = None
    service_time: float | None = None
    """Seconds a request holds a slot, as the model has it."""
    service_scv: float | None = None
    correction: float | None = None
    """The largest correction among the queueing objectives (1: the model is right)."""


BUSY_SLOTS = "busy slots"
"""The `binding` of a recommendation made by the slots the load keeps busy, not an objective."""
BOOTSTRAP_UTILISATION = 0.8
"""Utilisation sized for while saturated and before the model has learned the latencies."""
NOT_LIMITED = Verdict(False, "WithinBounds", "the recommendation is within bounds")


def tick(
    state: AutoscalerState, observation: Observation, policy: Policy, current: int
) -> tuple[Decision, AutoscalerState]:
    """The replica count after this observation; `current` is the count decided before."""
    now = observation.time
    reports = _observed_reports(observation, policy)
    down = observation.source_down
    if down is not None:
        return _hold(state, current, "MetricsUnavailable", down, reports, policy)
    load = measure_load(observation, policy)
    if isinstance(load, str):
        return _hold(state, current, "NoRequestRate", load, reports, policy)

    model = learn(state.model, observation, load, policy)
    rates = state.rates
    if observation.steady:
        rates = rates.remember(now, load.arrival, span=_trend_span(policy))
    horizon = policy.startup + policy.window / 2
    trend = forecast(rates, now, horizon, _trend_span(policy), latest=load.arrival)
    expected = max(load.demand, trend)
    saturation = _saturation(observation, reports, policy)
    if load.throughput > 0 and model.mean_service is None and saturation is None:
        state = replace(state, model=model, rates=rates)
        if observation.in_flight is not None:
            learning = (
                "learning the time a request holds a replica: it needs a full metrics window "
                f"({policy.window:g} s) at a steady count of ready replicas"
            )
        else:
            learning = (
                "the time a request holds a replica is unknown: add metrics.prometheus.inFlight "
                "(e.g. vllm:num_requests_running) or a Latency objective"
            )
        return _hold(state, current, "NoServiceTime", learning, reports, policy)

    profile = burst_profile(observation.rates, observation.window, model.mean_service)
    recommendation = recommend(model, expected, policy, profile)
    names = {o.name for o in policy.objectives}
    problems = {k: v for k, v in observation.problems.items() if k in names}
    if observation.stopped_reporting:
        # Until the window no longer holds its last samples, its share of the counts is neither
        # there nor made up: the rate would read low and scale the others down.
        problems["reporting"] = (
            f"{observation.stopped_reporting} replica(s) stopped reporting inside the window"
        )
    for name in recommendation.unknown:
        if load.throughput > 0:
            problems.setdefault(
                name,
                "not learned yet (it needs a full window at a steady replica count, not saturated)",
            )
    complete = not problems
    wanted = recommendation.replicas if complete else max(recommendation.replicas, current)
    if model.mean_service is not None and expected > 0:
        # Whatever the objectives, fewer slots than the busy ones is a queue without end.
        stable = math.floor(expected * model.mean_service / policy.concurrency) + 1
        if stable > wanted:
            wanted = stable
            recommendation = replace(recommendation, replicas=stable, binding=BUSY_SLOTS)
    if saturation is not None and (recommendation.unknown or model.mean_service is None):
        # The model cannot size what it has not learned, and waiting to learn it while every
        # slot is busy and the objectives fail only deepens the queue: step up at the rate limit.
        if model.mean_service is not None:
            # The slots the demand keeps busy, at 80 % (queueing without the tail's detail);
            # one more only once the last step's replicas serve: the queue stands while they
            # start, and stepping on it every tick sized a new service for ~1.5x its load.
            slots = expected * model.mean_service / BOOTSTRAP_UTILISATION
            step = current + 1 if observation.replicas.starting == 0 else current
            wanted = max(wanted, step, math.ceil(slots / policy.concurrency))
        elif observation.replicas.starting == 0:
            # Nothing known at all: double, but only once the last step's replicas serve.
            wanted = max(wanted, math.ceil(current * policy.behavior.max_scale_up_rate))
        recommendation = replace(recommendation, replicas=wanted, binding=None)
    if wanted <= current and complete and model.mean_service is not None:
        # What scale-down waits on is computed from the rate averaged over the last window:
        # the highest of noisy recommendations over the window would keep the noise's peak.
        # A rising trend still counts: without it, the steady path took a replica away that the
        # forecast asked back on the next tick (N <-> N-1 every window while the trend lasted).
        rise = max(0.0, trend - load.arrival)
        demand = _steady_demand(rates, load, now, policy) + rise
        steady = recommend(model, demand, policy, profile)
        wanted = min(current, max(steady.replicas, 0))
    result = stabilize(state.stabilizer, wanted, current, policy, now, complete)
    state = AutoscalerState(model, rates, result.stabilizer)

    replicas = result.replicas
    reports = _with_predictions(reports, model, expected, replicas, policy, profile)
    reason = _reason(
        recommendation,
        result.held_by,
        current,
        replicas,
        load,
        expected,
        policy,
        model.mean_service,
    )
    if saturation is not None and recommendation.binding is None and replicas > current:
        reason = f"{saturation}, model not learned yet ({current} -> {replicas})"
    active = (
        Verdict(True, "ValidMetrics", f"sizing from {len(policy.objectives)} objective(s)")
        if complete
        else Verdict(
            False,
            "IncompleteMetrics",
            "; ".join(f"{name}: {why}" for name, why in sorted(problems.items()))
            + " - scaling up only",
        )
    )
    return (
        Decision(
            replicas,
            reason,
            active,
            _limited(result.limit, recommendation, policy),
            _slo_met(reports),
            tuple(reports),
            load.arrival,
            expected,
            model.mean_service,
            model.service_scv if model.mean_service is not None else None,
            max(
                (model.objective(o.name).correction for o in policy.objectives if o.queueing),
                default=None,
            ),
        ),
        state,
    )


def _saturation(
    observation: Observation, reports: list[ObjectiveReport], policy: Policy
) -> str | None:
    """Why the replicas look saturated (every slot busy or a queue, and an objective missed)."""
    missed = [r for r in reports if r.met is False]
    ready = observation.replicas.ready
    if not missed or ready <= 0:
        return None
    slots = ready * policy.concurrency
    busy = observation.in_flight
    if (observation.queued or 0) >= 1:
        return f"saturated: {observation.queued:.0f} queued, {missed[0].name} missed"
    if busy is not None and busy >= 0.9 * slots:
        return f"saturated: {busy:.1f} of {slots} slots busy, {missed[0].name} missed"
    return None


def _steady_demand(rates: RateHistory, load: Load, now: float, policy: Policy) -> float:
    recent = [r for t, r in rates.samples if t > now - policy.window]
    arrival = sum(recent) / len(recent) if recent else load.arrival
    return arrival + (load.demand - load.arrival)


def burst_profile(
    rates: tuple[float, ...], window: float, mean_service: float | None
) -> tuple[float, ...]:
    """The window's rates as multipliers of their mean, in parts of at least two service times
    (a burst shorter than that is absorbed by the queue rather than seen as a rate)."""
    if not rates or mean_service is None:
        return (1.0,)
    mean = sum(rates) / len(rates)
    if mean <= 0:
        return (1.0,)
    part = window / len(rates)
    per_group = max(1, math.ceil(2 * mean_service / part))
    groups = [rates[i : i + per_group] for i in range(0, len(rates), per_group)]
    shares = [sum(g) / len(g) / mean for g in groups]
    if len(shares) < 2:
        return (1.0,)
    # Poisson counts vary by their mean alone; only variation beyond that is burstiness, so
    # the profile is shrunk towards flat by the share of its variance that noise explains.
    expected_count = mean * part * per_group
    observed = sum((x - 1) ** 2 for x in shares) / (len(shares) - 1) * expected_count**2
    keep = 0.0 if observed <= 0 else max(0.0, 1 - expected_count / observed)
    return tuple(1 + keep * (x - 1) for x in shares)


def _trend_span(policy: Policy) -> float:
    return max(2 * (policy.startup + policy.window), 180.0)


def _hold(
    state: AutoscalerState,
    current: int,
    reason: str,
    message: str,
    reports: list[ObjectiveReport],
    policy: Policy,
) -> tuple[Decision, AutoscalerState]:
    # A gap restarts the scale-down window: the window must be covered by complete data.
    stabilizer = replace(state.stabilizer, complete_since=None)
    held = max(min(current, policy.max_replicas), policy.floor)
    return (
        Decision(
            held,
            f"holding {held}: {message}",
            Verdict(False, reason, message),
            NOT_LIMITED,
            _slo_met(reports),
            tuple(reports),
        ),
        replace(state, stabilizer=stabilizer),
    )


def _observed_reports(observation: Observation, policy: Policy) -> list[ObjectiveReport]:
    reports = []
    for objective in policy.objectives:
        histogram = observation.histograms.get(objective.name)
        report = ObjectiveReport(objective.name, objective.percentile, objective.target)
        if histogram is not None and histogram.total > 0:
            attainment = histogram.cdf(objective.target)
            report = replace(
                report,
                observed=histogram.quantile(objective.quantile),
                attainment=attainment,
                met=attainment >= objective.quantile,
            )
        reports.append(report)
    return reports


def _with_predictions(
    reports: list[ObjectiveReport],
    model: ServiceModel,
    rate: float,
    replicas: int,
    policy: Policy,
    profile: tuple[float, ...],
) -> list[ObjectiveReport]:
    out = []
    for objective, report in zip(policy.objectives, reports, strict=True):
        predicted = predicted_latency(model, objective, rate, replicas, policy, profile)
        if predicted is not None and not math.isfinite(predicted):
            predicted = None
        learned = model.objective(objective.name)
        queueing = objective.queueing
        out.append(
            replace(
                report,
                predicted=predicted,
                correction=learned.correction if queueing else None,
                own=learned.own if queueing else None,
            )
        )
    return out


def _reason(
    recommendation: Recommendation,
    held_by: str | None,
    current: int,
    replicas: int,
    load: Load,
    expected: float,
    policy: Policy,
    model_mean: float | None = None,
) -> str:
    rate = f"{expected:.3g} req/s"
    if load.arrival < expected * 0.999:
        rate += f" (now {load.arrival:.3g})"
    if recommendation.binding == BUSY_SLOTS and model_mean is not None:
        busy = expected * model_mean
        need = f"{busy:.3g} busy slots need {recommendation.replicas}"
    elif recommendation.binding is None:
        need = "no load" if expected <= 0 else "no objective binds"
    else:
        binding = _objective(policy, recommendation.binding)
        need = f"{binding.label()} <= {_seconds(binding.target)} needs {recommendation.replicas}"
    if replicas > current:
        return f"{need} at {rate} ({current} -> {replicas})"
    if replicas < current:
        return f"{need} at {rate} for {down_window(policy):.0f}s ({current} -> {replicas})"
    if held_by is not None:
        return f"holding {current}: {need} at {rate}; {held_by}"
    return f"{need} at {rate}"


def _limited(limit: str | None, recommendation: Recommendation, policy: Policy) -> Verdict:
    if recommendation.unattainable:
        names = ", ".join(recommendation.unattainable)
        return Verdict(
            True,
            "ObjectiveUnattainable",
            f"{names}: the request's own time alone exceeds the target; sized for the others",
        )
    messages = {
        "MaxReplicas": f"the objectives need more than maxReplicas ({policy.max_replicas})",
        "MinReplicas": f"held at minReplicas ({policy.floor})",
        "MaxScaleUpRate": f"step cut to x{policy.behavior.max_scale_up_rate:g} per decision",
        "MaxScaleDownRate": f"step cut to -{policy.behavior.max_scale_down_rate:.0%} per decision",
    }
    if limit is None:
        return NOT_LIMITED
    return Verdict(limit != "MinReplicas", limit, messages[limit])


def _slo_met(reports: list[ObjectiveReport]) -> Verdict:
    judged = [r for r in reports if r.met is not None]
    if not judged:
        return Verdict(None, "NoObservations", "no requests observed in the window")
    missed = [r for r in judged if not r.met]
    if missed:
        worst = min(missed, key=lambda r: r.attainment or 0.0)
        return Verdict(
            False,
            "ObjectiveMissed",
            "; ".join(
                f"{r.name} p{r.percentile:g} {_seconds(r.observed)} > {_seconds(r.target)}"
                for r in missed
            )
            + f" ({worst.attainment or 0:.1%} within target)",
        )
    return Verdict(True, "ObjectivesMet", f"{len(judged)} objective(s) met over the window")


def _objective(policy: Policy, name: str) -> ObjectiveTarget:
    return next(o for o in policy.objectives if o.name == name)


def _seconds(value: float | None) -> str:
    if value is None:
        return "?"
    if value < 1:
        return f"{value * 1000:.0f}ms"
    return f"{value:.3g}s"
