"""Economics in the live operator: a TrainingJob's status carries its energy and carbon, and the
usage counters are labelled by namespace, team, pool and capacity type (the operator against the
in-memory API, on a fake clock)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from tests.controllers.harness import Harness

from corral import metrics
from corral.controllers.clock import FakeClock
from corral.fleet.testing import job, node, pool

NIGHT = [100.0] * 6 + [400.0] * 12 + [100.0] * 6


def sample(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


def harness() -> Harness:
    h100 = pool("p").select(pool="p").pricing(4.0, spot=1.5).power(700)
    h100 = h100.energy(utilisation=0.5, pue=1.2).hourly_carbon(NIGHT)
    nodes = [node("h0").label("pool", "p").gpus(8).spot(), node("h1").label("pool", "p").gpus(8)]
    # 05:30 UTC: the first half hour is clean (100 g/kWh), the next hour dirty (400 g/kWh).
    clock = FakeClock(start=datetime(2026, 12, 1, 5, 30, tzinfo=UTC))
    return Harness(nodes=nodes, pools=[h100], usage_refresh_seconds=60.0, clock=clock)


def test_status_and_metrics_carry_energy_and_carbon_by_team_and_capacity_type() -> None:
    labels = {"namespace": "default", "team": "nlp", "pool": "p"}
    before = {
        kind: {
            name: sample(name, **labels, capacity_type=kind)
            for name in (
                "corral_device_hours_total",
                "corral_energy_kwh_total",
                "corral_carbon_grams_total",
            )
        }
        for kind in ("spot", "on-demand")
    }
    h = harness()

    async def scenario() -> None:
        async with h.running():
            body = job("j").workers(2).gpus(8).dict()
            body["metadata"]["labels"] = {"corral.dev/team": "nlp"}
            h.api.put(body)
            await h.converge()
            assert h.phase("j") == "Running"
            await h.run_for(90 * 60, step=30.0)

    asyncio.run(scenario())
    status = h.job("j")["status"]
    # 16 devices for about 1.5 h: 24 device-h; 0.7 kW x 0.5 x 1.2 = 0.42 kW a device.
    hours = status["deviceHours"]
    assert hours == pytest.approx(24.0, rel=0.02)
    assert status["energyKWh"] == pytest.approx(hours * 0.42, rel=1e-6)
    # a third of the time at 100 g/kWh, two thirds at 400: a mean of 300 g/kWh
    assert status["carbonGrams"] == pytest.approx(status["energyKWh"] * 300, rel=0.03)
    assert status["cost"] == pytest.approx(hours * (4.0 + 1.5) / 2, rel=1e-6)
    grown = {
        kind: {
            name: sample(name, **labels, capacity_type=kind) - value for name, value in b.items()
        }
        for kind, b in before.items()
    }
    for kind in ("spot", "on-demand"):  # one worker on each: half of everything each
        assert grown[kind]["corral_device_hours_total"] == pytest.approx(hours / 2, rel=0.05)
        assert grown[kind]["corral_carbon_grams_total"] == pytest.approx(
            status["carbonGrams"] / 2, rel=0.05
        )
    spot_cost = sample("corral_cost_total", **labels, capacity_type="spot", currency="USD")
    assert spot_cost > 0
