"""Usage added up by who pays for it: namespace, team (the `corral.dev/team` label), pool and
capacity type, the labels of the `corral_*_total` metrics and the simulator's report."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields

from corral.api.names import TEAM_LABEL
from corral.cost.charges import ZERO, Charge

NO_TEAM = ""
"""The team of a workload without the `corral.dev/team` label."""


def team_of(labels: Mapping[str, str] | None) -> str:
    return (labels or {}).get(TEAM_LABEL, NO_TEAM)


@dataclass(frozen=True, order=True)
class ChargeKey:
    namespace: str
    team: str
    pool: str
    capacity_type: str


DIMENSIONS = tuple(f.name for f in fields(ChargeKey))


def split_by_capacity_type(
    charge: Charge, workers: Iterable[tuple[str, float]]
) -> dict[str, Charge]:
    """A gang's usage shared out over the capacity types of its workers' nodes (`workers`: one
    (capacity type, price per device-hour) per worker): device-hours, energy and carbon by the
    share of workers, cost by the share of what they are priced at."""
    counts: dict[str, int] = {}
    priced: dict[str, float] = {}
    for capacity_type, price in workers:
        counts[capacity_type] = counts.get(capacity_type, 0) + 1
        priced[capacity_type] = priced.get(capacity_type, 0.0) + price
    total, total_price = sum(counts.values()), sum(priced.values())
    if not total:
        return {}
    return {
        kind: Charge(
            device_hours=charge.device_hours * count / total,
            cost=charge.cost * (priced[kind] / total_price if total_price else count / total),
            energy_kwh=charge.energy_kwh * count / total,
            carbon_grams=charge.carbon_grams * count / total,
        )
        for kind, count in sorted(counts.items())
    }


class Chargeback:
    """A table of charges by `ChargeKey`, and its roll-ups."""

    def __init__(self) -> None:
        self.rows: dict[ChargeKey, Charge] = {}

    def add(self, key: ChargeKey, charge: Charge) -> None:
        self.rows[key] = self.rows.get(key, ZERO) + charge

    def extend(self, items: Iterable[tuple[ChargeKey, Charge]]) -> None:
        for key, charge in items:
            self.add(key, charge)

    def total(self) -> Charge:
        return sum(self.rows.values(), ZERO)

    def by(self, *dimensions: str) -> dict[tuple[str, ...], Charge]:
        """Charges summed over everything but the named dimensions (e.g. `by("namespace")`)."""
        unknown = [d for d in dimensions if d not in DIMENSIONS]
        if unknown:
            raise ValueError(f"unknown dimension {unknown[0]!r} (one of {', '.join(DIMENSIONS)})")
        out: dict[tuple[str, ...], Charge] = {}
        for key, charge in self.rows.items():
            group = tuple(getattr(key, d) for d in dimensions)
            out[group] = out.get(group, ZERO) + charge
        return dict(sorted(out.items()))
