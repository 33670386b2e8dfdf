"""The base class of every Corral API model: camelCase on the wire, snake_case in Python."""

from __future__ import annotations

import copy
import datetime
import enum
from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


def _camel(name: str) -> str:
    # `memory_gib` must become `memoryGiB` and `peak_tflops` `peakTFLOPS`: the wire names are the
    # contract, so acronyms are spelled out here rather than guessed by a generator.
    special = {
        "memory_gib": "memoryGiB",
        "min_memory_gib": "minMemoryGiB",
        "peak_tflops": "peakTFLOPS",
        "grams_per_kwh": "gramsPerKWh",
        "energy_kwh": "energyKWh",
        "settled_energy_kwh": "settledEnergyKWh",
        "latency_ms": "latencyMs",
        "observed_latency_ms": "observedLatencyMs",
        "http_get": "httpGet",
        "url": "url",
    }
    return special.get(name, to_camel(name))


class SpecModel(BaseModel):
    """Spec models reject unknown fields: a typo must fail loudly, not be ignored."""

    model_config = ConfigDict(
        alias_generator=_camel,
        populate_by_name=True,
        extra="forbid",
        validate_default=True,
        # NaN and infinities are not numbers any price, budget or size can use (YAML has .nan
        # and .inf; JSON does not, so the API server never sends them).
        allow_inf_nan=False,
        use_attribute_docstrings=True,
    )

    def to_wire(self) -> dict[str, Any]:
        """The object as the API server stores it (camelCase, unset optionals omitted)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class StatusModel(BaseModel):
    """Status models ignore unknown fields so an older operator can read a newer status."""

    model_config = ConfigDict(
        alias_generator=_camel,
        populate_by_name=True,
        extra="ignore",
        use_attribute_docstrings=True,
    )

    def to_wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> StatusModel:
        # Every reconcile step deep-copies the status it decides on (`model_copy(deep=True)`):
        # pydantic's generic deepcopy walked each string and datetime through copy.deepcopy and
        # was a quarter of the simulator's time. Statuses hold only models, lists, dicts and
        # immutable scalars, which this copies directly (anything else falls back to deepcopy).
        copied = _copied(self)
        assert isinstance(copied, StatusModel)
        return copied


_IMMUTABLE = frozenset(
    {str, int, float, bool, type(None), datetime.datetime, datetime.date, datetime.timedelta}
)


def _copied(value: Any) -> Any:
    kind = type(value)
    if kind in _IMMUTABLE:
        return value
    # Immutable items are taken as they are without a call: most of a status is strings,
    # numbers and times, and a call per item was most of the copy's cost.
    immutable = _IMMUTABLE
    if kind is list:
        return [v if type(v) in immutable else _copied(v) for v in value]
    if isinstance(value, BaseModel):
        out = object.__new__(kind)
        fields = {k: v if type(v) in immutable else _copied(v) for k, v in value.__dict__.items()}
        object.__setattr__(out, "__dict__", fields)
        extra = value.__pydantic_extra__
        object.__setattr__(out, "__pydantic_extra__", None if extra is None else _copied(extra))
        object.__setattr__(out, "__pydantic_fields_set__", set(value.__pydantic_fields_set__))
        private = getattr(value, "__pydantic_private__", None)
        object.__setattr__(
            out, "__pydantic_private__", None if private is None else copy.deepcopy(private)
        )
        return out
    if kind is dict:
        return {k: v if type(v) in immutable else _copied(v) for k, v in value.items()}
    if isinstance(value, (enum.Enum, frozenset)):
        return value
    return copy.deepcopy(value)
