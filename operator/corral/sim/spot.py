"""Spot availability traces in the SkyPilot format (github.com/skypilot-org/spot-traces).

A file is `{"metadata": {"gap_seconds": G}, "data": [v0, v1, ...]}`: tick i covers [i*G, (i+1)*G)
seconds. In 1-node files a value is 1 (an instance was up or could be launched) or 0 (unavailable
or preempted); in multi-node files it is the number of the N requested instances that were up.
Either way `share(t)` is the available fraction at time t (value / the file's largest value).
The simulator gives each zone of the fleet one trace (files in name order, dealt round-robin over
the zones in fleet order) and keeps that share of the zone's spot hosts up: when it drops, hosts
get a termination notice and are reclaimed; when it rises, they come back.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from corral.sim.workload import WorkloadError


@dataclass(frozen=True)
class SpotTrace:
    name: str
    gap_seconds: float
    values: tuple[int, ...]
    capacity: int
    """The largest value (N for an N-node file, 1 for a 1-node file)."""

    def share(self, seconds: float) -> float:
        """Available share at `seconds` from the start; the trace repeats past its end."""
        if not self.values or self.capacity <= 0:
            return 1.0
        tick = int(seconds // self.gap_seconds) % len(self.values)
        return self.values[tick] / self.capacity

    @property
    def span_seconds(self) -> float:
        return self.gap_seconds * len(self.values)


def _one(path: Path) -> SpotTrace:
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise WorkloadError(f"{path}: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise WorkloadError(f"{path}: not JSON: line {exc.lineno}: {exc.msg}") from None
    if not isinstance(data, dict):
        raise WorkloadError(f"{path}: a spot trace is a JSON object with metadata and data")
    gap = (data.get("metadata") or {}).get("gap_seconds")
    values = data.get("data")
    if not isinstance(gap, int | float) or isinstance(gap, bool) or gap <= 0:
        raise WorkloadError(f"{path}: metadata.gap_seconds: must be a number > 0")
    if not isinstance(values, list) or not values:
        raise WorkloadError(f"{path}: data: must be a non-empty list of counts")
    for index, value in enumerate(values):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise WorkloadError(f"{path}: data[{index}]: must be an integer >= 0")
    return SpotTrace(path.stem, float(gap), tuple(values), max(values))


def load(path: str | Path) -> list[SpotTrace]:
    """One trace file, or every `*.json` below a folder (in name order)."""
    path = Path(path)
    if path.is_dir():
        files = sorted(path.rglob("*.json"))
        if not files:
            raise WorkloadError(f"{path}: no *.json spot trace in this folder")
        return [_one(f) for f in files]
    return [_one(path)]
