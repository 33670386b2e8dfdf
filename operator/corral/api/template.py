"""The worker/replica PodTemplateSpec: carried as the user wrote it, checked where Corral reads it.

Corral copies the template into every pod it creates, so the template stays a plain dict (fields
Corral does not know survive untouched). But the parts Corral itself reads — containers, env,
resources, tolerations, nodeSelector — and the parts an admission policy reads — hostNetwork,
hostPID, hostIPC, privileged, volumes, serviceAccountName — are typed here, once: the same
models give the CRD its schema (so the API server refuses a map where a list belongs, or a
quantity with a 9-digit exponent) and check the template in the operator and in `corral plan`
(so an object written before the schema existed fails alone, as InvalidSpec, and never reaches
the solver). Every object node keeps unknown fields (`x-kubernetes-preserve-unknown-fields`):
declaring a field must never make the API server prune its siblings.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, ValidationError, model_validator

from corral.api.base import _camel
from corral.api.errors import describe_errors
from corral.api.meta import DNS_SUBDOMAIN, LabelKey, LabelValue, Toleration
from corral.api.quantity import Quantity

MAX_CONTAINERS = 32
MAX_ENV = 512
MAX_TOLERATIONS = 64
MAX_SELECTOR_LABELS = 64
MAX_VOLUMES = 256
MAX_RESOURCES = 32
MAX_TEMPLATE_LABELS = 64
MAX_TEMPLATE_ANNOTATIONS = 128
MAX_TEMPLATE_BYTES = 248 * 1024
"""Largest template, as compact JSON in UTF-8. Its annotations become every pod's, and the API
server refuses a pod whose annotations (keys and values) pass 256 KiB: 248 KiB leaves 8 KiB for
the annotations Corral adds (`corral.dev/node`, the checkpoint protocol's). It also bounds what
Corral copies into each of a gang's pods. CEL cannot measure a serialized size, so the API server
bounds a template only by its object limit (about 1.5 MiB, etcd's request size); the operator and
`corral plan` refuse a larger template as InvalidSpec."""

_OPEN: dict[str, Any] = {"x-kubernetes-preserve-unknown-fields": True}


class _Open(BaseModel):
    """A view of a Kubernetes object: the declared fields are checked, the rest passes."""

    model_config = ConfigDict(
        alias_generator=_camel,
        extra="allow",
        allow_inf_nan=False,
        json_schema_extra=_OPEN,
    )


ResourceMap = Annotated[
    dict[Annotated[str, Field(max_length=253)], Quantity], Field(max_length=MAX_RESOURCES)
]


ServiceAccountName = Annotated[str, Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN)]


class ResourceRequirements(_Open):
    requests: ResourceMap | None = None
    limits: ResourceMap | None = None


class EnvVar(_Open):
    name: Annotated[str, Field(min_length=1, max_length=4096)]


class SecurityContext(_Open):
    privileged: bool | None = None


class Container(_Open):
    name: Annotated[str, Field(min_length=1, max_length=63)]
    image: Annotated[str, Field(min_length=1, max_length=4096)]
    env: Annotated[list[EnvVar], Field(max_length=MAX_ENV)] | None = None
    resources: ResourceRequirements | None = None
    security_context: SecurityContext | None = None


class HostPathSource(_Open):
    """Declared only so that an admission policy can refuse it."""


class Volume(_Open):
    name: Annotated[str, Field(min_length=1, max_length=63)]
    host_path: HostPathSource | None = None


class PodSpec(_Open):
    """The parts of a PodSpec Corral or its admission policy reads."""

    containers: Annotated[list[Container], Field(min_length=1, max_length=MAX_CONTAINERS)]
    init_containers: Annotated[list[Container], Field(max_length=MAX_CONTAINERS)] | None = None
    tolerations: Annotated[list[Toleration], Field(max_length=MAX_TOLERATIONS)] | None = None
    node_selector: (
        Annotated[dict[LabelKey, LabelValue], Field(max_length=MAX_SELECTOR_LABELS)] | None
    ) = None
    overhead: ResourceMap | None = None
    volumes: Annotated[list[Volume], Field(max_length=MAX_VOLUMES)] | None = None
    host_network: bool | None = None
    host_pid: bool | None = Field(default=None, alias="hostPID")
    host_ipc: bool | None = Field(default=None, alias="hostIPC")
    service_account_name: ServiceAccountName | None = None
    service_account: ServiceAccountName | None = None
    """The deprecated spelling of serviceAccountName; the API server still honours it."""
    node_name: str | None = None
    """Refused: Corral chooses each worker's node (declared so that CEL can name it)."""
    priority_class_name: str | None = None
    """Refused: the workload's `spec.priorityClassName` sets it on every pod."""
    priority: Annotated[int, Field(ge=-(2**31), le=2**31 - 1)] | None = None
    """Refused: the API server sets it from the PriorityClass."""

    model_config = ConfigDict(
        json_schema_extra={
            **_OPEN,
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.nodeName)",
                    "message": "template.spec.nodeName must not be set: Corral chooses each "
                    "worker's node",
                    "fieldPath": ".nodeName",
                },
                {
                    "rule": "!has(self.priorityClassName) && !has(self.priority)",
                    "message": "template.spec.priorityClassName and priority must not be set: "
                    "set the workload's spec.priorityClassName (Corral puts it on every pod)",
                    "fieldPath": ".priorityClassName",
                },
            ],
        }
    )

    @model_validator(mode="after")
    def _corral_owns(self) -> PodSpec:
        if self.node_name is not None:
            raise ValueError("nodeName: must not be set: Corral chooses each worker's node")
        if self.priority_class_name is not None or self.priority is not None:
            field = "priorityClassName" if self.priority_class_name is not None else "priority"
            raise ValueError(
                f"{field}: must not be set in the template: set the workload's "
                "spec.priorityClassName (Corral puts it on every pod)"
            )
        return self


class TemplateMeta(_Open):
    labels: Annotated[dict[LabelKey, LabelValue], Field(max_length=MAX_TEMPLATE_LABELS)] | None = (
        None
    )
    annotations: (
        Annotated[
            dict[Annotated[str, Field(max_length=317)], str],
            Field(max_length=MAX_TEMPLATE_ANNOTATIONS),
        ]
        | None
    ) = None


class PodTemplate(_Open):
    """A PodTemplateSpec (metadata and spec) for each worker or replica. The API server validates
    the rest of it as a pod when the pod is created."""

    metadata: TemplateMeta | None = None
    spec: PodSpec


def _check(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError("must be a PodTemplateSpec object with metadata and spec")
    try:
        PodTemplate.model_validate(value)
    except ValidationError as exc:
        problems = describe_errors(exc)
        # The first problem only: it is what `kubectl describe` shows, one line, naming the field.
        raise ValueError(_friendlier(problems[0])) from None
    size = _encoded_size(value)
    if size is None:
        raise ValueError("could not be encoded as JSON (a string that is not valid Unicode?)")
    if size > MAX_TEMPLATE_BYTES:
        raise ValueError(
            f"is {size} bytes as JSON, over the limit of {MAX_TEMPLATE_BYTES} (248 KiB): its "
            "annotations would not fit a pod's; move large data to a ConfigMap or Secret"
        )
    return value


def _encoded_size(value: dict[str, Any]) -> int | None:
    """Bytes of the compact JSON encoding (what the API server stores and sends); None if the
    value has none (a lone surrogate, which json.loads accepts from an escape)."""
    try:
        return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
    except (TypeError, ValueError, RecursionError):
        return None


def _friendlier(problem: str) -> str:
    if problem.startswith("spec.containers: must have at least"):
        return "spec.containers: must list at least one container"
    if problem.startswith("spec: required"):
        return "spec: required (a PodSpec with at least one container)"
    return problem


PodTemplateSpec = Annotated[
    dict[str, Any], PlainValidator(_check, json_schema_input_type=PodTemplate)
]
"""The template as a plain dict, validated by `PodTemplate` (which also gives its schema)."""


def pod_spec(template: dict[str, Any]) -> dict[str, Any]:
    """The template's PodSpec (a validated template always has one)."""
    spec = template.get("spec")
    return spec if isinstance(spec, dict) else {}


def template_tolerations(template: dict[str, Any]) -> tuple[Toleration, ...]:
    """The tolerations of a validated template, as models."""
    return tuple(Toleration.model_validate(t) for t in pod_spec(template).get("tolerations") or ())


def template_node_selector(template: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """The nodeSelector of a validated template, as sorted pairs."""
    return tuple(sorted((pod_spec(template).get("nodeSelector") or {}).items()))
