"""Device-hours, cost, energy and carbon of usage, and their roll-up by who pays."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from corral.api.gpupool import Carbon, GPUPoolSpec
from corral.cost.chargeback import Chargeback, ChargeKey, team_of
from corral.cost.charges import Charge, Rates, carbon_grams, mean_intensity

T0 = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)
DAY_NIGHT = Carbon(hourly=[100.0] * 6 + [400.0] * 12 + [100.0] * 6)
"""Clean from 18:00 to 06:00 UTC, dirty by day."""


def spec(**overrides: object) -> GPUPoolSpec:
    data: dict[str, object] = {
        "nodeSelector": {},
        "accelerator": {"type": "H100-80GB", "memoryGiB": 80, "peakTFLOPS": 989, "watts": 700},
        "pricing": {"onDemandPerDeviceHour": 4.0, "spotPerDeviceHour": 1.5},
        "carbon": {"gramsPerKWh": 350},
        "energy": {"utilisation": 0.8, "pue": 1.25},
    }
    data.update(overrides)
    return GPUPoolSpec.model_validate(data)


def hours(n: float) -> timedelta:
    return timedelta(hours=n)


@pytest.mark.parametrize(
    ("capacity", "devices", "span", "expected"),
    [
        # 8 devices for 2 h on demand: 16 device-h, 64 USD, 16 x 0.7 kW x 0.8 x 1.25 = 11.2 kWh,
        # 11.2 kWh x 350 g = 3920 g
        ("on-demand", 8, 2.0, Charge(16.0, 64.0, 11.2, 3920.0)),
        ("spot", 8, 2.0, Charge(16.0, 24.0, 11.2, 3920.0)),
        ("spot", 1, 0.5, Charge(0.5, 0.75, 0.35, 122.5)),
        ("on-demand", 4, 0.0, Charge()),
    ],
)
def test_a_charge_is_device_hours_priced_powered_and_carbon_weighted(
    capacity: str, devices: int, span: float, expected: Charge
) -> None:
    rates = Rates.of(spec(), capacity)  # type: ignore[arg-type]
    got = rates.charge(devices, T0, T0 + hours(span))
    for field in ("device_hours", "cost", "energy_kwh", "carbon_grams"):
        assert getattr(got, field) == pytest.approx(getattr(expected, field)), field


def test_a_pool_without_watts_or_carbon_reports_no_energy_or_carbon() -> None:
    bare = spec(
        accelerator={"type": "H100-80GB", "memoryGiB": 80}, carbon=None, energy={"pue": 1.0}
    )
    got = Rates.of(bare, "on-demand").charge(8, T0, T0 + hours(1))
    assert (got.device_hours, got.cost, got.energy_kwh, got.carbon_grams) == (8.0, 32.0, 0.0, 0.0)


@pytest.mark.parametrize(
    ("start", "span", "mean"),
    [
        (0, 6, 100.0),  # 00:00-06:00: all clean
        (6, 12, 400.0),  # 06:00-18:00: all dirty
        (5, 2, 250.0),  # one clean hour, one dirty
        (5.5, 1, 250.0),  # half an hour each side of 06:00
        (0, 24, 250.0),  # a whole day
        (3, 72, 250.0),  # three whole days from any hour
        (17.75, 0.5, 250.0),  # 17:45-18:15
    ],
)
def test_hourly_carbon_is_integrated_hour_by_hour(start: float, span: float, mean: float) -> None:
    begin = T0 + hours(start)
    assert mean_intensity(DAY_NIGHT, begin, begin + hours(span)) == pytest.approx(mean)
    assert carbon_grams(DAY_NIGHT, 2.0, begin, begin + hours(span)) == pytest.approx(
        2.0 * span * mean
    )


@given(start=st.integers(0, 7 * 24 * 60), first=st.integers(1, 3000), second=st.integers(1, 3000))
def test_carbon_of_two_adjacent_intervals_adds_up(start: int, first: int, second: int) -> None:
    a = T0 + timedelta(minutes=start)
    b = a + timedelta(minutes=first)
    c = b + timedelta(minutes=second)
    whole = carbon_grams(DAY_NIGHT, 1.0, a, c)
    assert whole == pytest.approx(
        carbon_grams(DAY_NIGHT, 1.0, a, b) + carbon_grams(DAY_NIGHT, 1.0, b, c)
    )


def test_chargeback_rolls_up_by_any_dimension() -> None:
    table = Chargeback()
    table.add(ChargeKey("ml", "vision", "h100", "spot"), Charge(1.0, 1.5, 0.5, 245.0))
    table.add(ChargeKey("ml", "vision", "h100", "on-demand"), Charge(2.0, 8.0, 1.5, 490.0))
    table.add(ChargeKey("ml", "nlp", "a100", "on-demand"), Charge(4.0, 8.0, 1.6, 0.0))
    table.add(ChargeKey("ml", "nlp", "a100", "on-demand"), Charge(1.0, 2.0, 0.4, 0.0))
    assert table.by("team") == {
        ("nlp",): Charge(5.0, 10.0, 2.0, 0.0),
        ("vision",): Charge(3.0, 9.5, 2.0, 735.0),
    }
    assert table.by("namespace")[("ml",)] == table.total()
    assert set(table.by("pool", "capacity_type")) == {
        ("a100", "on-demand"),
        ("h100", "on-demand"),
        ("h100", "spot"),
    }
    with pytest.raises(ValueError, match="unknown dimension"):
        table.by("zone")


def test_the_team_comes_from_the_chargeback_label() -> None:
    assert team_of({"corral.dev/team": "vision"}) == "vision"
    assert team_of({}) == "" and team_of(None) == ""
