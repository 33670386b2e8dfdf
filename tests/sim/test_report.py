"""Summary figures of a run, the comparison table, and the self-contained HTML report."""

from __future__ import annotations

import base64
import re

import pytest

from corral.cost.chargeback import Chargeback, ChargeKey
from corral.cost.charges import Charge
from corral.sim.report import render
from corral.sim.results import JobOutcome, RunResult, Series, comparison, comparison_table, summary


def run(policy: str, delays: list[float], cost: float = 100.0) -> RunResult:
    jobs = [
        JobOutcome(
            key=f"ns/j{i}",
            namespace="ns",
            team="t",
            devices=8 if i % 2 else 1,
            submit=100.0 * i,
            first_placed=100.0 * i + delay,
            finished=100.0 * i + delay + 50,
            deadline=100.0 * i + 1000 if i == 0 else None,
            work_units=10.0,
        )
        for i, delay in enumerate(delays)
    ]
    table = Chargeback()
    table.add(ChargeKey("ns", "t", "h100", "spot"), Charge(10.0, cost, 5.0, 2000.0))
    series = Series(
        time=[0.0, 300.0, 600.0],
        allocated=[0, 8, 4],
        capacity=[16, 16, 16],
        fragmentation=[0.0, 0.5, 0.25],
        queued=[0, 2, 0],
        running=[0, 1, 1],
        spot_up=[2, 1, 2],
    )
    return RunResult(
        policy=policy,
        seed=0,
        arrival_end=600.0,
        end=900.0,
        events=40,
        wall_seconds=0.5,
        jobs=jobs,
        series=series,
        chargeback=table,
        decisions=[],
        allocated_device_seconds=4800.0,
        capacity_device_seconds=9600.0,
        losses=[(300.0, 3600.0)],
    )


def test_summary_figures() -> None:
    data = summary(run("corral", [0.0, 10.0, 20.0, 400.0]))
    assert data["queueing"]["meanSeconds"] == 107.5
    assert data["queueing"]["p50Seconds"] == 10.0
    assert data["queueing"]["p95Seconds"] == 400.0
    assert data["queueing"]["bySize"]["1"] == {
        "jobs": 2,
        "meanQueueSeconds": 10.0,
        "p95QueueSeconds": 20.0,
    }
    assert data["utilisation"] == 0.5
    assert data["meanFragmentation"] == pytest.approx(0.25)
    assert data["deadlines"] == {"jobs": 1, "missed": 0}
    assert data["economics"]["cost"] == 100.0
    assert data["economics"]["carbonKg"] == 2.0
    assert data["economics"]["costPerWorkUnit"] == 2.5
    assert data["economics"]["byTeam"] == {
        "t": {"deviceHours": 10.0, "cost": 100.0, "energyKWh": 5.0, "carbonKg": 2.0}
    }
    assert data["simulation"]["eventsPerSecond"] == 80


def test_comparison_gives_ratios_to_the_first_policy() -> None:
    table = comparison(
        [summary(run("corral", [10.0, 10.0])), summary(run("spread", [20.0, 30.0], 150.0))]
    )
    spread = table["rows"][1]
    assert spread["mean queue ratio"] == 2.5
    assert spread["cost ratio"] == 1.5
    text = comparison_table(table)
    assert "spread" in text and "(2.50x)" in text and "ratios against corral" in text


def test_the_report_is_one_page_with_its_figures_inside() -> None:
    results = [run("corral", [0.0, 60.0, 600.0]), run("spread", [0.0, 120.0, 900.0])]
    summaries = [summary(r) for r in results]
    page = render(results, summaries, {"fleet": "f.yaml"}, comparison(summaries))
    images = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", page)
    assert len(images) == 5  # utilisation, queueing CDF, fragmentation, cost/carbon, lost work
    assert all(base64.b64decode(image).startswith(b"\x89PNG") for image in images)
    assert "src='http" not in page  # self-contained: nothing fetched
    for words in (
        "Utilisation over time",
        "Queueing delay by job size",
        "Policies compared",
        "Chargeback",
    ):
        assert words in page
