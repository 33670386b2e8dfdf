"""The inference input of `corral simulate`: InferenceServices as a user applies them, each with
the request trace it serves.

`--inference FILE` is a YAML file of InferenceService objects — the operator's own type and
validation, nothing new — each naming its load in simulation annotations:

    sim.corral.dev/trace    a CSV in the Azure LLM inference trace format (TIMESTAMP,
                            ContextTokens, GeneratedTokens), relative to the YAML file (required)
    sim.corral.dev/start    seconds from the simulation's start when the load begins (default 0)
    sim.corral.dev/speed    time compression: the same requests arrive this much faster (default 1)
    sim.corral.dev/repeat   the trace played this many times back to back (default 1)

A request's service time comes from its token counts (`corral.autoscaling.servingsim.request_of`,
the constants `bench/autoscaling.py` uses). Bad input raises `WorkloadError`: one line naming the
file, the document or line, and the field.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from corral.api.errors import InvalidObject
from corral.api.inferenceservice import InferenceService
from corral.api.objects import parse_object
from corral.autoscaling.servingsim import Request, request_of
from corral.sim.workload import WorkloadError

TRACE = "sim.corral.dev/trace"
START = "sim.corral.dev/start"
SPEED = "sim.corral.dev/speed"
REPEAT = "sim.corral.dev/repeat"
TRACE_COLUMNS = ("TIMESTAMP", "ContextTokens", "GeneratedTokens")
MAX_REPEAT = 1000


@dataclass(frozen=True)
class ServiceLoad:
    """One InferenceService and the requests it is sent, in simulated seconds."""

    service: InferenceService
    requests: tuple[Request, ...]
    start: float
    trace: str
    """The trace file, as the input names it (for the report)."""

    @property
    def key(self) -> str:
        meta = self.service.metadata
        return f"{meta.namespace or 'default'}/{meta.name}"

    @property
    def end(self) -> float:
        """The last arrival (the start when there is none)."""
        return self.requests[-1].arrival if self.requests else self.start


def read_trace(path: str | Path, speed: float = 1.0) -> list[Request]:
    """Requests of an Azure-format trace CSV, in seconds from its first row; `speed` > 1
    compresses time (the same requests arrive `speed` times faster)."""
    rows: list[tuple[datetime, int, int]] = []
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise WorkloadError(f"{path}: {exc.strerror or exc}") from None
    reader = csv.DictReader(text.splitlines())
    missing = [c for c in TRACE_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise WorkloadError(
            f"{path}: line 1: column {missing[0]} missing (an Azure LLM inference trace has "
            f"{', '.join(TRACE_COLUMNS)})"
        )
    for line, row in enumerate(reader, start=2):
        rows.append(_trace_row(path, line, row))
    if not rows:
        raise WorkloadError(f"{path}: no requests")
    rows.sort()
    start = rows[0][0]
    return [
        request_of((stamp - start).total_seconds() / speed, context, generated)
        for stamp, context, generated in rows
    ]


def _trace_row(path: str | Path, line: int, row: dict[str, Any]) -> tuple[datetime, int, int]:
    stamp = str(row.get("TIMESTAMP") or "").strip()
    try:
        # Seven fractional digits: one more than fromisoformat accepts before Python 3.11.
        when = datetime.fromisoformat(stamp[:26])
    except ValueError:
        raise WorkloadError(
            f"{path}: line {line}: TIMESTAMP: {stamp!r} is not a time (YYYY-MM-DD HH:MM:SS.f)"
        ) from None
    counts = []
    for column in TRACE_COLUMNS[1:]:
        text = str(row.get(column) or "").strip()
        try:
            value = int(text)
        except ValueError:
            value = -1
        if value < 0:
            raise WorkloadError(
                f"{path}: line {line}: {column}: {text!r} is not a token count (an integer >= 0)"
            )
        counts.append(value)
    return when, counts[0], counts[1]


def services(documents: Sequence[Any], source: str, base: Path) -> list[ServiceLoad]:
    """The InferenceServices of an `--inference` file and their loads (traces read from `base`)."""
    out: list[ServiceLoad] = []
    seen: dict[str, int] = {}
    for number, document in enumerate(documents, start=1):
        meta = document.get("metadata") if isinstance(document, dict) else None
        name = meta.get("name") if isinstance(meta, dict) else None
        which = f"InferenceService {name}" if isinstance(name, str) else f"document {number}"
        try:
            service = parse_object(document, expect="InferenceService")
        except InvalidObject as exc:
            raise WorkloadError(f"{source}: {which}: {exc}") from None
        assert isinstance(service, InferenceService)
        if not service.metadata.name:
            raise WorkloadError(f"{source}: document {number}: metadata.name: required")
        load = _load(service, f"{source}: {which}", base)
        if load.key in seen:
            raise WorkloadError(
                f"{source}: InferenceService {load.key} is given twice "
                f"(documents {seen[load.key]} and {number})"
            )
        seen[load.key] = number
        out.append(load)
    if not out:
        raise WorkloadError(f"{source}: no InferenceService in the file")
    return out


def _load(service: InferenceService, where: str, base: Path) -> ServiceLoad:
    annotations = service.metadata.annotations or {}
    trace = annotations.get(TRACE)
    if not trace:
        raise WorkloadError(
            f"{where}: metadata.annotations[{TRACE}]: required (the request trace it serves, a "
            "CSV in the Azure LLM inference trace format)"
        )
    start = _number(annotations, START, where, 0.0, low=0.0)
    speed = _number(annotations, SPEED, where, 1.0, low=0.0, above=True)
    repeat = _number(annotations, REPEAT, where, 1.0, low=1.0)
    if repeat != int(repeat) or repeat > MAX_REPEAT:
        raise WorkloadError(
            f"{where}: metadata.annotations[{REPEAT}]: {annotations[REPEAT]!r} is not a whole "
            f"number from 1 to {MAX_REPEAT}"
        )
    path = Path(trace) if Path(trace).is_absolute() else base / trace
    try:
        once = read_trace(path, speed)
    except WorkloadError as exc:
        raise WorkloadError(f"{where}: metadata.annotations[{TRACE}]: {exc}") from None
    # Played again after its last arrival plus the mean gap, so the rate stays the trace's.
    span = once[-1].arrival + (once[-1].arrival / max(1, len(once) - 1))
    requests = tuple(
        Request(start + r * span + q.arrival, q.prefill, q.decode, q.tokens)
        for r in range(int(repeat))
        for q in once
    )
    return ServiceLoad(service, requests, start, trace)


def _number(
    annotations: dict[str, str],
    key: str,
    where: str,
    default: float,
    low: float,
    above: bool = False,
) -> float:
    text = annotations.get(key)
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < low or (above and value == low):
        bound = f"> {low:g}" if above else f">= {low:g}"
        raise WorkloadError(
            f"{where}: metadata.annotations[{key}]: {text!r} is not a number {bound}"
        )
    return value
