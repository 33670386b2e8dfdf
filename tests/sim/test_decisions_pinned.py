"""The simulator's decisions on a fixed small case, pinned byte for byte.

Speed work on the simulator and on the operator code it runs (the pass, the lifecycle, the
snapshot) must not change a single decision: this replays a seeded case with queueing, StrictFIFO
holding, gangs, failures and spot reclaims under every policy and compares every placement, every
job's outcome and the fleet samples with the recorded ones. A deliberate change of behaviour
re-records them (`CORRAL_UPDATE_GOLDEN=1 pytest tests/sim/test_decisions_pinned.py`) and says why in
its commit.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest
from tests.sim.test_engine import h100_pool, hosts

from corral.sim.engine import Options, simulate
from corral.sim.generate import GeneratorParams, generate
from corral.sim.results import RunResult
from corral.sim.spot import SpotTrace

GOLDEN = Path(__file__).parent / "golden"


def record(result: RunResult) -> str:
    lines = [f"events {result.events} end {result.end!r}"]
    lines += [f"{d.time!r} {d.job} {d.pool} {' '.join(d.nodes)}" for d in result.decisions]
    lines += [
        f"{j.key} placed={j.first_placed!r} finished={j.finished!r} failed={j.failed} "
        f"restarts={j.restarts} interruptions={j.interruptions} "
        f"lost={j.lost_device_seconds!r} deferred={j.deferred_seconds!r}"
        for j in result.jobs
    ]
    series = result.series
    lines += [
        f"t={t!r} allocated={a} fragmentation={f!r} running={r} queued={q} spot={s}"
        for t, a, f, r, q, s in zip(
            series.time,
            series.allocated,
            series.fragmentation,
            series.running,
            series.queued,
            series.spot_up,
            strict=True,
        )
    ]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("policy", ["corral", "first-fit", "spread", "kueue-bestfit"])
def test_a_seeded_case_makes_the_recorded_decisions(policy: str) -> None:
    trace = SpotTrace("t", 900.0, (3, 2, 1, 3, 0, 2, 3, 1, 3), 3)
    jobs = generate(GeneratorParams(max_seconds=3 * 3600.0), 16 * 8, 6, 1.1, 11)
    # Every seventh job fails once after ten minutes: restarts from its last checkpoint.
    jobs = [replace(j, fail_after=600.0) if i % 7 == 3 else j for i, j in enumerate(jobs)]
    result = simulate(
        hosts(16, spot={1, 5, 9, 13}),
        [h100_pool()],
        jobs,
        Options(policy=policy, seed=4, spot=[trace]),
    )
    text = record(result)
    path = GOLDEN / f"decisions-{policy}.txt"
    if os.environ.get("CORRAL_UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text()
    assert len(result.decisions) > len(jobs)  # re-placements happened (failures, reclaims)
