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
