"""The simulator end to end on small fleets: each scenario checks what happened, in simulated
time, through the operator's own pass and lifecycle."""

from __future__ import annotations

from typing import Any

import pytest

from corral.api.gpupool import GPUPool
from corral.fleet.testing import BLOCK, RACK, ZONE, node, pool
from corral.sim.engine import Options, simulate
from corral.sim.generate import GeneratorParams, generate
from corral.sim.results import RunResult, summary
from corral.sim.spot import SpotTrace
from corral.sim.workload import WorkloadJob

GPU = "nvidia.com/gpu.product"


def hosts(count: int, spot: set[int] | None = None, product: str = "H100") -> list[dict[str, Any]]:
    out = []
    for i in range(count):
        builder = node(f"{product.lower()}-{i:02d}").zone("z1").block("b1").rack(f"r{i // 4}")
        builder = builder.label(GPU, product).gpus(8)
        out.append((builder.spot() if spot and i in spot else builder.on_demand()).obj())
    return out


def h100_pool(**spec: Any) -> GPUPool:
    builder = pool("h100").levels(ZONE, BLOCK, RACK).match_labels({GPU: "H100"})
    data = builder.accelerator("H100").power(700, peak_tflops=989).dict()
    data["spec"].update(spec)
    return GPUPool.model_validate(data)


def job(
    name: str, submit: float, devices: int = 8, duration: float = 3600.0, **extra: Any
) -> WorkloadJob:
    workers, per = (devices // 8, 8) if devices > 8 else (1, devices)
    return WorkloadJob(name, submit, workers, per, duration, **extra)


def by_key(result: RunResult) -> dict[str, Any]:
    return {j.key.partition("/")[2]: j for j in result.jobs}


def test_jobs_run_for_their_duration_and_are_charged_at_the_pools_price() -> None:
    result = simulate(hosts(2), [h100_pool()], [job("a", 0), job("b", 0, duration=1800)])
    jobs = by_key(result)
    assert (jobs["a"].first_placed, jobs["a"].finished) == (0.0, 3600.0)
    assert (jobs["b"].first_placed, jobs["b"].finished) == (0.0, 1800.0)
    total = result.chargeback.total()
    assert total.device_hours == pytest.approx(12.0)
    assert total.cost == pytest.approx(12.0 * 4.0)  # on-demand price of the builder's pool
    assert total.energy_kwh == pytest.approx(12.0 * 0.7)  # 700 W, utilisation 1, PUE 1
    assert [d.job for d in result.decisions] == ["default/a", "default/b"]


def test_waiting_gangs_are_served_in_order_and_hold_their_pool() -> None:
    # One host: b waits for a; c (1 device) is submitted later and waits behind b (strict FIFO).
    jobs = [
        job("a", 0, duration=1000),
        job("b", 10, duration=1000),
        job("c", 20, devices=1, duration=100),
    ]
    result = by_key(simulate(hosts(1), [h100_pool()], jobs))
    assert result["b"].first_placed == 1000.0
    assert result["c"].first_placed == 2000.0
    assert result["c"].queue_delay == 1980.0


def test_a_failed_worker_restarts_the_gang_from_its_last_checkpoint() -> None:
    # The operator asks for a checkpoint every intervalSeconds (300) after the last one; each is
    # written in 30 s: at 330 and 660 of running. The worker fails at 700.
    jobs = [job("a", 0, duration=1000, checkpoint_seconds=300, fail_after=700)]
    result = by_key(simulate(hosts(1), [h100_pool()], jobs))["a"]
    assert result.restarts == 1
    assert result.lost_device_seconds == (700 - 660) * 8
    assert result.finished == pytest.approx(700 + (1000 - 660))


def test_a_spot_notice_checkpoints_the_gang_which_moves_on_before_the_reclaim() -> None:
    # Host 0 is spot (the cheaper capacity, so the gang starts there); the trace takes it away
    # at t=1000: a termination notice, the host reclaimed two minutes later. The operator asks
    # for a checkpoint, the workload writes it in 30 s, and the gang resumes on host 1 from it.
    trace = SpotTrace("t", 1000.0, (1, 0, 1, 1, 1, 1), 1)
    jobs = [job("a", 0, duration=3000)]
    result = simulate(hosts(2, spot={0}), [h100_pool()], jobs, Options(spot=[trace]))
    a = by_key(result)["a"]
    assert a.interruptions == 1 and a.restarts == 0
    assert [(d.time, d.nodes) for d in result.decisions] == [
        (0.0, ("h100-00",)),
        (1030.0, ("h100-01",)),
    ]
    assert a.lost_device_seconds == 0 and a.finished == 3000.0
    assert result.series.spot_up[0] == 1 and 0 in result.series.spot_up


def test_a_host_lost_without_a_checkpoint_loses_the_work_since_the_last_one() -> None:
    # The workload cannot answer the notice's request in time (a checkpoint takes it 600 s): the
    # operator gives up after checkpoint.timeoutSeconds (90) and moves the gang, which resumes
    # from its last checkpoint — the periodic one asked at 400 s and written at 1000 s.
    trace = SpotTrace("t", 1000.0, (1, 0, 1, 1, 1, 1), 1)
    jobs = [job("a", 0, duration=3000, checkpoint_seconds=400)]
    options = Options(spot=[trace], checkpoint_write_seconds=600.0)
    result = simulate(hosts(2, spot={0}), [h100_pool()], jobs, options)
    a = by_key(result)["a"]
    assert a.interruptions == 1
    assert a.lost_device_seconds == (1000 + 90 - 1000) * 8


def test_a_gang_bigger_than_the_fleet_fails_and_the_run_ends() -> None:
    result = simulate(hosts(2), [h100_pool()], [job("big", 0, devices=32), job("small", 10)])
    jobs = by_key(result)
    assert jobs["big"].failed and jobs["big"].finished == 0.0
    assert jobs["small"].finished == 10 + 3600


def test_the_same_seed_gives_the_same_decisions() -> None:
    trace = SpotTrace("t", 600.0, (2, 1, 0, 2, 1, 2), 2)
    jobs = generate(GeneratorParams(max_seconds=7200), 64, 4, 0.9, 5)
    runs = [
        simulate(hosts(8, spot={1, 5}), [h100_pool()], jobs, Options(seed=3, spot=[trace]))
        for _ in range(2)
    ]
    assert runs[0].decisions == runs[1].decisions
    assert summary(runs[0])["queueing"] == summary(runs[1])["queueing"]


@pytest.mark.parametrize("policy", ["corral", "first-fit", "spread", "kueue-bestfit"])
def test_every_policy_finishes_the_workload(policy: str) -> None:
    mix = ((1, 0.5), (4, 0.2), (8, 0.2), (32, 0.1))  # nothing bigger than the fleet
    jobs = generate(GeneratorParams(size_mix=mix, max_seconds=7200), 128, 3, 0.9, 2)
    result = simulate(hosts(16), [h100_pool()], jobs, Options(policy=policy))
    assert all(j.finished is not None and not j.failed for j in result.jobs)
    assert result.policy == policy and result.events > len(jobs)


def test_cost_per_work_pays_more_per_device_hour_to_pay_less_per_unit_of_work() -> None:
    a100 = pool("a100").levels(ZONE, BLOCK, RACK).match_labels({GPU: "A100"}).pricing(2.0)
    pools = [h100_pool(), a100.accelerator("A100").obj()]
    fleet = hosts(1) + hosts(1, product="A100")
    # The job runs 4x faster on an H100: per unit of work H100 4.0 / 4 = 1.0, A100 2.0 / 1 = 2.0.
    flexible = {"accelerators": ("A100", "H100"), "throughput": (("A100", 1.0), ("H100", 4.0))}
    cheap = simulate(fleet, pools, [job("a", 0, objective="CostPerWork", **flexible)])
    default = simulate(fleet, pools, [job("a", 0, **flexible)])
    assert cheap.decisions[0].pool == "h100"
    assert default.decisions[0].pool == "a100"  # the default order: the cheaper device-hour
    per_work = [
        r.chargeback.total().cost / sum(j.work_units for j in r.jobs) for r in (cheap, default)
    ]
    assert per_work == pytest.approx([0.5 * per_work[1], per_work[1]])
    assert by_key(cheap)["a"].finished == 3600.0
    assert by_key(default)["a"].finished == 4 * 3600.0


def test_carbon_aware_jobs_wait_for_the_clean_night_and_meet_their_deadline() -> None:
    night = [100.0] * 6 + [400.0] * 12 + [100.0] * 6  # UTC hours; the simulation starts at 00:00
    pools = [h100_pool(carbon={"hourly": night})]
    flexible = job("a", 9 * 3600, duration=3600, carbon_aware=True, deadline=30 * 3600)
    eager = job("b", 9 * 3600, duration=3600)
    result = by_key(simulate(hosts(2), pools, [flexible, eager]))
    assert result["a"].first_placed == 18 * 3600
    assert result["a"].deferred_seconds == 9 * 3600 and result["a"].queue_delay == 0
    assert result["a"].missed_deadline is False
    assert result["b"].first_placed == 9 * 3600
    assert result["a"].charge.carbon_grams == pytest.approx(result["b"].charge.carbon_grams / 4)


def test_a_higher_priority_row_overtakes_through_its_priority_class() -> None:
    # One host: "first" runs; "low" and then "high" wait; "high" goes first when "first" ends.
    jobs = [job("first", 0), job("low", 10), job("high", 20, priority=100)]
    result = simulate(hosts(1), [h100_pool()], jobs)
    order = [d.job.partition("/")[2] for d in result.decisions]
    assert order == ["first", "high", "low"]
