"""What a device-hour of a pool costs: money, energy and carbon.

    energy (kWh) = device-hours x board watts x utilisation x PUE / 1000
    carbon (g)   = energy x the pool's gCO2e/kWh (hour by hour, UTC, when it has a schedule)
    cost         = device-hours x the pool's price for the node's capacity type

The figures and their assumptions are documented in docs/economics.md. Everything here is pure:
times are passed in, nothing reads a clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from corral.api.gpupool import Carbon, GPUPoolSpec
from corral.api.selection import CapacityType

HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class Charge:
    """Usage in the four units Corral reports; added up per job, namespace, team or pool."""

    device_hours: float = 0.0
    cost: float = 0.0
    energy_kwh: float = 0.0
    carbon_grams: float = 0.0

    def __add__(self, other: Charge) -> Charge:
        return Charge(
            self.device_hours + other.device_hours,
            self.cost + other.cost,
            self.energy_kwh + other.energy_kwh,
            self.carbon_grams + other.carbon_grams,
        )


ZERO = Charge()


@dataclass(frozen=True)
class Rates:
    """One pool and capacity type: its price and what a device draws."""

    price_per_device_hour: float
    currency: str
    kw_per_device: float
    """Board watts x utilisation x PUE / 1000: the facility power one busy device costs."""
    carbon: Carbon | None

    @classmethod
    def of(cls, spec: GPUPoolSpec, capacity_type: CapacityType) -> Rates:
        watts = spec.accelerator.watts or 0.0
        return cls(
            price_per_device_hour=spec.pricing.per_device_hour(capacity_type),
            currency=spec.pricing.currency,
            kw_per_device=watts * spec.energy.utilisation * spec.energy.pue / 1000.0,
            carbon=spec.carbon,
        )

    def charge(self, devices: int, start: datetime, end: datetime) -> Charge:
        """`devices` held from `start` to `end` (nothing if end <= start)."""
        if end <= start or devices <= 0:
            return ZERO
        hours = devices * (end - start).total_seconds() / 3600.0
        kw = devices * self.kw_per_device
        return Charge(
            device_hours=hours,
            cost=hours * self.price_per_device_hour,
            energy_kwh=hours * self.kw_per_device,
            carbon_grams=carbon_grams(self.carbon, kw, start, end),
        )


def intensity(carbon: Carbon | None, at: datetime) -> float:
    """gCO2e/kWh at a moment (the hourly value of its UTC hour when the pool has a schedule)."""
    if carbon is None:
        return 0.0
    return carbon.at_hour(at.astimezone(UTC).hour) if carbon.hourly else carbon.grams_per_kwh


def carbon_grams(carbon: Carbon | None, kw: float, start: datetime, end: datetime) -> float:
    """Grams of CO2e of drawing `kw` from `start` to `end`, hour by hour for a schedule."""
    if carbon is None or kw <= 0 or end <= start:
        return 0.0
    if not carbon.hourly:
        return kw * (end - start).total_seconds() / 3600.0 * carbon.grams_per_kwh
    return kw * mean_intensity(carbon, start, end) * (end - start).total_seconds() / 3600.0


def mean_intensity(carbon: Carbon | None, start: datetime, end: datetime) -> float:
    """The time-weighted mean gCO2e/kWh over [start, end) (the value at `start` if empty)."""
    if carbon is None:
        return 0.0
    if not carbon.hourly or end <= start:
        return intensity(carbon, start)
    total = (end - start).total_seconds()
    since = _seconds_of_day(start)
    return (_cumulative(carbon.hourly, since + total) - _cumulative(carbon.hourly, since)) / total


def _seconds_of_day(moment: datetime) -> float:
    moment = moment.astimezone(UTC)
    midnight = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    return (moment - midnight).total_seconds()


def _cumulative(hourly: list[float], seconds: float) -> float:
    """gCO2e/kWh x seconds from 00:00 UTC of a day until `seconds` later (any number of days)."""
    days, rest = divmod(seconds, 86400.0)
    hour, within = divmod(rest, 3600.0)
    full = days * sum(hourly) + sum(hourly[: int(hour)])
    return 3600.0 * full + within * hourly[int(hour)]
