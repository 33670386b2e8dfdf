"""One tick at a time: what the autoscaler decides and says, with missing, stale or bad data."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.autoscaling.builders import E2E, TTFT, learned, load, policy

from corral.autoscaling.autoscaler import AutoscalerState, Decision, tick
from corral.autoscaling.observation import Observation
from corral.autoscaling.policy import Behavior, ObjectiveTarget, Policy
from corral.autoscaling.recommend import recommend
from corral.autoscaling.servingsim import Request, ServingSim, observe


def warm(model_rate: float = 5.0) -> AutoscalerState:
    """A state whose model is learned (as after a few minutes of traffic)."""
    return AutoscalerState(model=learned())


def run(
    state: AutoscalerState, observations: list[Observation], current: int, rules: Policy
) -> tuple[list[Decision], AutoscalerState]:
    decisions = []
    for observation in observations:
        decision, state = tick(state, observation, rules, current)
        current = decision.replicas
        decisions.append(decision)
    return decisions, state


def test_scales_up_at_once_and_says_which_objective_asked() -> None:
    decision, _ = tick(warm(), load(rate=10.0).replicas(4).build(at=100), policy(), current=4)
    assert decision.replicas == 8  # x2 per decision
    assert decision.reason.startswith("ttft p99 <= 2s needs")
    assert "(4 -> 8)" in decision.reason
    assert decision.limited.status is True and decision.limited.reason == "MaxScaleUpRate"
    assert decision.active.status is True


def test_prometheus_down_holds_the_size_and_says_so() -> None:
    down = replace(load().build(at=100), problems={"source": "GET /api/v1/query: timed out"})
    decision, state = tick(warm(), down, policy(), current=6)
    assert decision.replicas == 6
    assert decision.active.status is False
    assert decision.active.reason == "MetricsUnavailable"
    assert "timed out" in decision.active.message
    assert state.stabilizer.complete_since is None


def test_a_new_service_without_series_holds_rather_than_scaling_to_min() -> None:
    observation = load().broken("ttft", "no series for vllm:time_to_first_token_seconds_bucket")
    decision, _ = tick(AutoscalerState(), observation.build(at=10), policy(), current=3)
    assert decision.replicas == 3
    assert decision.active.reason == "NoRequestRate"
    assert "no series" in decision.active.message


def test_no_scale_down_while_one_objective_is_unreadable_but_scale_up_still_works() -> None:
    rules = policy(TTFT, E2E)
    quiet = load(rate=0.5).broken("e2e", "NaN in bucket counts")
    decisions, _ = run(
        warm(),
        [quiet.build(at=t, objectives=("ttft", "e2e")) for t in range(0, 900, 15)],
        10,
        rules,
    )
    assert {d.replicas for d in decisions} == {10}
    assert decisions[-1].active.reason == "IncompleteMetrics"
    assert "e2e: NaN" in decisions[-1].active.message
    busy = load(rate=20.0).broken("e2e", "NaN in bucket counts")
    decision, _ = tick(warm(), busy.build(at=1000, objectives=("ttft", "e2e")), rules, 10)
    assert decision.replicas > 10


def test_a_replica_not_reporting_is_made_up_for_not_blocking() -> None:
    everyone = load(rate=8.0).replicas(4).build(at=100)
    three_of_four = replace(load(rate=6.0).replicas(4).build(at=100), reporting=3)
    full, _ = tick(warm(), everyone, policy(), current=4)
    partial, _ = tick(warm(), three_of_four, policy(), current=4)
    assert partial.replicas == full.replicas
    assert partial.active.status is True


def test_zero_traffic_goes_back_to_min_after_the_window() -> None:
    quiet = [load(rate=0.0).build(at=t) for t in range(0, 1200, 15)]
    decisions, _ = run(warm(), quiet, 12, policy())
    at_min = next(i for i, d in enumerate(decisions) if d.replicas == 1) * 15
    assert 300 <= at_min <= 600
    assert decisions[-1].reason == "no load at 0 req/s"
    assert decisions[-1].limited.reason == "MinReplicas"


def test_saturated_before_anything_is_learned_steps_up_from_the_busy_slots() -> None:
    jammed = load(rate=2.0, mean_service=4.0).replicas(2).slow(40.0)
    jammed.queued = 150.0
    decision, _ = tick(AutoscalerState(), jammed.build(at=60), policy(max_replicas=64), current=2)
    assert decision.replicas == 4  # x2: the rate bound
    assert decision.reason.startswith("saturated: 150 queued")


def test_objectives_report_observed_and_predicted_latency() -> None:
    decision, _ = tick(warm(), load(rate=5.0).replicas(12).build(at=100), policy(), current=12)
    (report,) = decision.objectives
    assert report.name == "ttft" and report.target == 2.0
    assert report.observed is not None
    assert 0.25 < report.observed <= 0.5  # inside vLLM's (0.25, 0.5] bucket, as PromQL says
    assert report.met is True and report.attainment == 1.0
    assert report.predicted is not None and report.predicted <= 2.0
    assert decision.slo_met.status is True


def test_a_missed_objective_is_named_in_slo_met() -> None:
    decision, _ = tick(warm(), load(rate=5.0).slow(4.0).build(at=100), policy(), current=12)
    assert decision.slo_met.status is False
    assert decision.slo_met.message.startswith("ttft p99 ")


observations = st.builds(
    lambda rate, ready, ttft, broken, down: replace(
        load(rate=rate).replicas(ready).slow(ttft).build(at=100),
        problems={"source": "down"} if down else ({"ttft": "NaN"} if broken else {}),
    ),
    st.floats(0.0, 200.0),
    st.integers(0, 60),
    st.floats(0.01, 100.0),
    st.booleans(),
    st.booleans(),
)


@given(observations, st.integers(0, 80), st.integers(1, 40), st.integers(0, 5))
def test_bounds_are_always_respected(
    observation: Observation, current: int, most: int, least: int
) -> None:
    rules = policy(max_replicas=most, min_replicas=min(least, most))
    decision, _ = tick(warm(), observation, rules, current)
    assert rules.floor <= decision.replicas <= rules.max_replicas


@given(st.floats(0.0, 60.0), st.floats(1.0, 4.0), st.integers(1, 40))
def test_more_load_never_gives_fewer_replicas(rate: float, factor: float, current: int) -> None:
    rules = policy(max_replicas=400)
    low, _ = tick(warm(), load(rate=rate).replicas(current).build(at=100), rules, current)
    high, _ = tick(warm(), load(rate=rate * factor).replicas(current).build(at=100), rules, current)
    assert high.replicas >= low.replicas


def test_closed_loop_at_constant_load_settles_without_flapping() -> None:
    rng = random.Random(3)
    t, requests = 0.0, []
    while t < 2400:
        t += rng.expovariate(4.0)
        requests.append(Request(t, rng.uniform(0.05, 0.4), rng.expovariate(1 / 2.0), 40))
    rules = policy(TTFT, max_replicas=64)
    sim = ServingSim(requests, 1, 60.0, 12)
    state, current, sizes = AutoscalerState(), 12, []
    for step in range(1, 160):
        sim.advance(step * 15.0)
        decision, state = tick(state, observe(sim, rules), rules, current)
        if decision.replicas != current:
            sim.resize(decision.replicas)
            current = decision.replicas
            sizes.append(current)
    flaps = sum(
        1
        for a, b, c in zip(sizes, sizes[1:], sizes[2:], strict=False)
        if abs(a - b) == 1 and a == c
    )
    assert flaps == 0
    late = [ttft for arrival, ttft, _ in sim.served if arrival > 600]
    within = sum(1 for v in late if v <= 2.0) / len(late)
    assert within >= 0.99


def test_a_new_services_first_windows_are_not_taken_for_a_rising_load() -> None:
    # The service began serving at 0: until 60 s, the window began before it existed and its
    # rate reads 1/4, 2/4, 3/4 of the true 10 req/s. That is not a trend.
    observations = [
        load(rate=10.0 * min(t, 60) / 60).replicas(8).build(at=float(t)) for t in range(15, 181, 15)
    ]
    decisions, _ = run(warm(), observations, 8, policy())
    needed = recommend(learned(), 10.0, policy()).replicas
    for decision in decisions:
        assert decision.forecast_rate is not None and decision.forecast_rate <= 10.0 + 1e-9
        assert decision.replicas <= needed


def test_a_rising_load_at_a_steady_replica_count_is_forecast_but_not_across_a_scale_up() -> None:
    def rising(ready_for: float) -> list[Observation]:
        out = []
        for t in range(300, 481, 15):
            builder = load(rate=4.0 + t / 30).replicas(8)
            builder.ready_since = t - ready_for
            out.append(builder.build(at=float(t)))
        return out

    decisions, _ = run(warm(), rising(ready_for=300.0), 8, policy(max_replicas=8))
    last = decisions[-1]
    assert last.forecast_rate is not None and last.arrival_rate is not None
    assert last.forecast_rate > 1.1 * last.arrival_rate  # the trend looks a start-up ahead

    # The same rates, read while the ready count changed within each window: they may
    # under-count the new replicas' requests, so they teach no trend.
    decisions, _ = run(warm(), rising(ready_for=30.0), 8, policy(max_replicas=8))
    assert decisions[-1].forecast_rate == decisions[-1].arrival_rate


def test_saturated_while_replicas_start_waits_for_them_before_stepping_again() -> None:
    model = replace(learned(mean_service=4.0), objectives={})  # service time known, TTFT not
    jammed = load(rate=1.0, mean_service=4.0).replicas(4, starting=4).slow(40.0)
    jammed.queued = 10.0
    state = AutoscalerState(model=model)
    decision, _ = tick(state, jammed.build(at=120), policy(max_replicas=64), current=8)
    assert decision.replicas == 8  # 4 ready + 4 starting cover the 6 slots the demand needs
    jammed.starting = 0
    decision, _ = tick(state, jammed.build(at=120), policy(max_replicas=64), current=6)
    assert decision.replicas == 7  # none starting, 6 there and still saturated: one more


def test_a_replica_that_stops_reporting_inside_the_window_never_scales_the_others_down() -> None:
    # 30 ready, 30 with samples in the window, 29 at its end: the silent one's requests are
    # partly missing from the counts, and `reporting` (30) does not make them up yet.
    partial = replace(load(rate=5.8).replicas(30).build(at=400), reporting=30, reporting_now=29)
    ticks = [replace(partial, time=400.0 + 15 * i) for i in range(30)]
    decisions, _ = run(warm(), ticks, 30, policy())
    assert {d.replicas for d in decisions} == {30}  # 17 would do at 6 req/s
    assert decisions[-1].active.reason == "IncompleteMetrics"
    assert "1 replica(s) stopped reporting" in decisions[-1].active.message
    assert decisions[-1].arrival_rate == pytest.approx(6.0)  # made up by ready / reporting now

    # Once the window holds none of its samples, the others size the service as before.
    settled = replace(partial, reporting=29)
    decision, _ = tick(warm(), settled, policy(), 30)
    assert decision.active.reason == "ValidMetrics"
    assert decision.arrival_rate == pytest.approx(6.0)


def test_a_rising_trend_that_is_not_renewed_never_flaps_the_size() -> None:
    """Seen in e2e: a step to 10 req/s taught a rising trend; every scale-down then changed the
    ready count, so no window was steady and the trend, never renewed, lasted its whole span.
    The scale-down path read the averaged rate without the trend (5 replicas), the scale-up
    path the forecast with it (6): 6 -> 5 -> 6 every window. Scale-down counts the trend too."""
    rules = policy(
        ObjectiveTarget("ttft", "TimeToFirstToken", 99, 1.0),
        window=20.0,
        startup=10.0,
        concurrency=4,
        max_replicas=10,
        behavior=Behavior(scale_down_stabilization=20.0, tolerance=0.0),
    )
    state = AutoscalerState(model=learned(mean_service=1.2))
    current, ready_since, sizes = 6, -1000.0, []
    for step in range(1, 200):
        t = step * 2.0
        rate = 2.0 if t < 100 else min(10.0, 2.0 + (t - 100) / 20 * 8)
        builder = load(rate=rate, mean_service=1.2).replicas(current)
        builder.ready_since = ready_since
        decision, state = tick(state, builder.build(at=t, window=20.0), rules, current)
        if decision.replicas != current:
            current, ready_since = decision.replicas, t + rules.startup
            if t > 120:  # the load is constant from 120 s
                sizes.append(current)
    flaps = [
        (a, b, c)
        for a, b, c in zip(sizes, sizes[1:], sizes[2:], strict=False)
        if abs(a - b) == 1 and a == c and b < a
    ]
    assert not flaps, sizes
    assert current >= 5, sizes  # 10 req/s of 1.2 s requests on 4 slots each
