"""Shared Kubernetes types: ObjectMeta, LabelSelector, Condition, Toleration, PodTemplateSpec."""

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


def _check_label_key(key: str) -> str:
    name = key.rsplit("/", 1)[-1]
    if not _QUALIFIED_NAME.match(key) or len(name) > 63 or len(key) > 253 + 1 + 63:
        raise ValueError(
            f"{key!r} is not a valid label key (e.g. topology.kubernetes.io/zone: an optional "
            "DNS prefix, '/', and a name of at most 63 alphanumerics, '-', '_' or '.')"
        )
    return key


def _check_label_value(value: str) -> str:
    if len(value) > 63 or not _LABEL_VALUE.match(value):
        raise ValueError(
            f"{value!r} is not a valid label value (at most 63 alphanumerics, '-', '_' or '.', "
            "starting and ending with an alphanumeric)"
        )
    return value


LabelKey = Annotated[
    str,
    AfterValidator(_check_label_key),
    Field(min_length=1, max_length=317),
]
LabelValue = Annotated[str, AfterValidator(_check_label_value), Field(max_length=63)]

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
ObjectName = Annotated[str, Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN)]


class LabelSelectorRequirement(SpecModel):
    """One expression of a LabelSelector."""

    key: LabelKey
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: list[LabelValue] = Field(default_factory=list)

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

    match_labels: dict[LabelKey, LabelValue] = Field(default_factory=dict)
    match_expressions: list[LabelSelectorRequirement] = Field(default_factory=list)

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

    key: str | None = None
    operator: Literal["Exists", "Equal"] = "Equal"
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    toleration_seconds: int | None = None

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

    name: ObjectName | None = None
    namespace: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    uid: str | None = None
    generation: int | None = None
    resourceVersion: str | None = None
    creationTimestamp: Time | None = None


PRESERVE_UNKNOWN: dict[str, Any] = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}


def _check_pod_template(value: Any) -> dict[str, Any]:
    """A PodTemplateSpec is carried as-is (the API server validates the pod when it is created);
    here only the shape Corral relies on is checked, so a missing container is caught at apply
    time rather than as a failed pod later."""
    if not isinstance(value, dict):
        raise ValueError("must be a PodTemplateSpec object with metadata and spec")
    spec = value.get("spec")
    if not isinstance(spec, dict):
        raise ValueError("spec: required (a PodSpec with at least one container)")
    containers = spec.get("containers")
    if not isinstance(containers, list) or not containers:
        raise ValueError("spec.containers: must list at least one container")
    for index, container in enumerate(containers):
        if not isinstance(container, dict):
            raise ValueError(f"spec.containers[{index}]: must be an object")
        if not isinstance(container.get("name"), str) or not container["name"]:
            raise ValueError(f"spec.containers[{index}].name: required")
        if not isinstance(container.get("image"), str) or not container["image"]:
            raise ValueError(f"spec.containers[{index}].image: required")
    return value


PodTemplateSpec = Annotated[
    dict[str, Any],
    AfterValidator(_check_pod_template),
    WithJsonSchema(
        {
            **PRESERVE_UNKNOWN,
            "description": "A PodTemplateSpec (metadata and spec) for each worker or replica. "
            "The API server validates it as a pod when the pod is created.",
            # CEL can only name declared fields: without these the rule below does not compile.
            "properties": {
                "spec": {
                    **PRESERVE_UNKNOWN,
                    "properties": {"containers": {"type": "array", "items": PRESERVE_UNKNOWN}},
                }
            },
            "x-kubernetes-validations": [
                {
                    "rule": "has(self.spec) && has(self.spec.containers) && size(self.spec.containers) > 0",
                    "message": "template.spec.containers must list at least one container",
                }
            ],
        }
    ),
]
