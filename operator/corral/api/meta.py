"""Shared Kubernetes types: ObjectMeta, LabelSelector, Condition, Toleration."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
    model_validator,
)

from corral.api.base import SpecModel, StatusModel


def format_time(value: datetime) -> str:
    """RFC 3339 in UTC with a `Z`, whole seconds: what the API server writes for metav1.Time."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


Time = Annotated[
    AwareDatetime,
    PlainSerializer(format_time, return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
"""An RFC 3339 timestamp with a zone (`2026-12-01T00:00:00Z`)."""

_QUALIFIED_NAME = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def check_label_key(key: str) -> str:
    name = key.rsplit("/", 1)[-1]
    if not _QUALIFIED_NAME.match(key) or len(name) > 63 or len(key) > 253 + 1 + 63:
        raise ValueError(
            f"{key!r} is not a valid label key (e.g. topology.kubernetes.io/zone: an optional "
            "DNS prefix, '/', and a name of at most 63 alphanumerics, '-', '_' or '.')"
        )
    return key


def check_label_value(value: str) -> str:
    if len(value) > 63 or not _LABEL_VALUE.match(value):
        raise ValueError(
            f"{value!r} is not a valid label value (at most 63 alphanumerics, '-', '_' or '.', "
            "starting and ending with an alphanumeric)"
        )
    return value


LabelKey = Annotated[
    str,
    AfterValidator(check_label_key),
    Field(min_length=1, max_length=317),
]
LabelValue = Annotated[str, AfterValidator(check_label_value), Field(max_length=63)]

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
ObjectName = Annotated[str, Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN)]

MAX_NAME_LENGTH = 63
"""Longest name of a GPUPool, TrainingJob or InferenceService.

Every name Corral derives from it must fit: the `corral.dev/job` and `corral.dev/pool` label
values (at most 63 characters), the rendezvous Service (a DNS-1035 label, at most 63; a name that
is not one is hashed to one), the worker hostnames `worker-<i>` under it, and the worker pods
`<job>-w<index>-r<attempt>` (DNS subdomains: 63 + 9 characters for index and attempt up to 99999
leaves 181 digits of attempt below 253). The label value is the binding limit: 63, as for a Job.
"""
WorkloadName = Annotated[
    str, Field(min_length=1, max_length=MAX_NAME_LENGTH, pattern=DNS_SUBDOMAIN)
]
NAME_RULE: dict[str, str] = {
    "rule": f"size(self.metadata.name) <= {MAX_NAME_LENGTH}",
    "message": f"metadata.name must be at most {MAX_NAME_LENGTH} characters: it becomes a label "
    "value of every pod Corral creates",
    # No fieldPath: the API server accepts none into metadata (it is not in the schema).
}
"""The same limit for the API server (a CEL rule at the root of each CRD)."""


class LabelSelectorRequirement(SpecModel):
    """One expression of a LabelSelector."""

    key: LabelKey
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: Annotated[list[LabelValue], Field(max_length=256)] = Field(default_factory=list)

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.operator in ['In', 'NotIn'] ? size(self.values) > 0 : size(self.values) == 0",
                    "message": "values must be non-empty for In and NotIn, and empty for Exists and DoesNotExist",
                    "fieldPath": ".values",
                }
            ]
        }
    )

    @model_validator(mode="after")
    def _values_match_operator(self) -> LabelSelectorRequirement:
        if self.operator in ("In", "NotIn") and not self.values:
            raise ValueError(f"values: must be non-empty for operator {self.operator}")
        if self.operator in ("Exists", "DoesNotExist") and self.values:
            raise ValueError(f"values: must be empty for operator {self.operator}")
        return self


class LabelSelector(SpecModel):
    """A Kubernetes LabelSelector: every matchLabels pair AND every expression must hold."""

    match_labels: Annotated[dict[LabelKey, LabelValue], Field(max_length=64)] = Field(
        default_factory=dict
    )
    match_expressions: Annotated[list[LabelSelectorRequirement], Field(max_length=32)] = Field(
        default_factory=list
    )

    def matches(self, labels: dict[str, str]) -> bool:
        for key, value in self.match_labels.items():
            if labels.get(key) != value:
                return False
        for expr in self.match_expressions:
            present = expr.key in labels
            if expr.operator == "In" and (not present or labels[expr.key] not in expr.values):
                return False
            if expr.operator == "NotIn" and present and labels[expr.key] in expr.values:
                return False
            if expr.operator == "Exists" and not present:
                return False
            if expr.operator == "DoesNotExist" and present:
                return False
        return True


ConditionStatus = Literal["True", "False", "Unknown"]


class Condition(StatusModel):
    """A condition in the Kubernetes API convention (metav1.Condition)."""

    type: Annotated[str, Field(pattern=r"^[A-Z][A-Za-z0-9]*$", max_length=316)]
    status: ConditionStatus
    reason: Annotated[
        str, Field(pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$", max_length=1024)
    ]
    message: Annotated[str, Field(max_length=32768)] = ""
    last_transition_time: Time
    observed_generation: Annotated[int, Field(ge=0)] | None = None


class Toleration(SpecModel):
    """A pod toleration (corev1.Toleration)."""

    key: Annotated[str, Field(max_length=317)] | None = None
    operator: Literal["Exists", "Equal"] = "Equal"
    value: Annotated[str, Field(max_length=63)] | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    # Bounds a JSON double holds exactly: the API server reads schema numbers as float64.
    toleration_seconds: Annotated[int, Field(ge=-(10**12), le=10**12)] | None = None

    def tolerates(self, taint: dict[str, Any]) -> bool:
        """Whether this toleration tolerates a taint (same rules as the scheduler)."""
        if self.effect is not None and self.effect != taint.get("effect"):
            return False
        if self.key is None:
            return self.operator == "Exists"
        if self.key != taint.get("key"):
            return False
        if self.operator == "Exists":
            return True
        return (self.value or "") == (taint.get("value") or "")


class ObjectMeta(BaseModel):
    """The parts of metav1.ObjectMeta Corral reads; everything else is kept as it is."""

    model_config = ConfigDict(alias_generator=None, populate_by_name=True, extra="allow")

    name: WorkloadName | None = None
    namespace: Annotated[str, Field(max_length=63)] | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    uid: str | None = None
    generation: Annotated[int, Field(ge=0, le=2**63 - 1)] | None = None
    resourceVersion: str | None = None
    creationTimestamp: Time | None = None
