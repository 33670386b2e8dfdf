"""CustomResourceDefinitions generated from the pydantic models (`corral crds`).

Pydantic emits JSON Schema (draft 2020-12 with `$ref`s); the API server wants a *structural*
OpenAPI v3.0 schema: every node typed, no `$ref`, no `anyOf` except int-or-string, booleans for
exclusive bounds, defaults that the API server applies. This module does that translation, so the
CRDs can never drift from the models that the operator and the CLI validate with.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema, to_jsonable_python

from corral.api.gpupool import GPUPoolSpec, GPUPoolStatus
from corral.api.inferenceservice import InferenceServiceSpec, InferenceServiceStatus
from corral.api.meta import NAME_RULE
from corral.api.trainingjob import TrainingJobSpec, TrainingJobStatus

GROUP = "corral.dev"
VERSION = "v1alpha1"
CATEGORIES = ["corral"]

# Keys of JSON Schema that a structural schema keeps as they are.
_KEPT = {
    "type",
    "format",
    "description",
    "enum",
    "pattern",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "required",
    "default",
    "nullable",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-int-or-string",
    "x-kubernetes-validations",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
}


class _CRDSchemaGenerator(GenerateJsonSchema):
    """Pydantic's generator, plus the defaults that come from `default_factory`."""

    def default_schema(self, schema: core_schema.WithDefaultSchema) -> JsonSchemaValue:
        factory = schema.get("default_factory")
        if factory is None or schema.get("default_factory_takes_data"):
            return super().default_schema(schema)
        inner = self.generate_inner(schema["schema"])
        value = factory()  # type: ignore[call-arg]
        if isinstance(value, BaseModel):
            default = value.model_dump(mode="json", by_alias=True, exclude_defaults=True)
        else:
            default = to_jsonable_python(value)
        return {**inner, "default": default}


class SchemaError(ValueError):
    """A model uses a construct that has no structural OpenAPI equivalent."""


def _structural(node: dict[str, Any], defs: dict[str, Any], path: str) -> dict[str, Any]:
    node = dict(node)
    ref = node.pop("$ref", None)
    if ref is not None:
        target = defs[ref.rsplit("/", 1)[-1]]
        # Siblings of a $ref (description, default) win over the referenced definition.
        node = {**copy.deepcopy(target), **node}
    any_of = node.pop("anyOf", None)
    if any_of is not None:
        if node.get("x-kubernetes-int-or-string"):
            node.pop("type", None)
            out = {k: v for k, v in node.items() if k in _KEPT}
            out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
            return out
        non_null = [option for option in any_of if option.get("type") != "null"]
        if len(non_null) != 1:
            raise SchemaError(f"{path}: a union of {len(non_null)} types is not structural")
        merged = {**non_null[0], **node}
        return _structural(merged, defs, path)
    if node.get("default", 0) is None:
        del node["default"]
    exclusive_min = node.pop("exclusiveMinimum", None)
    exclusive_max = node.pop("exclusiveMaximum", None)
    out = {k: v for k, v in node.items() if k in _KEPT}
    if exclusive_min is not None:
        out["minimum"] = exclusive_min
        out["exclusiveMinimum"] = True
    if exclusive_max is not None:
        out["maximum"] = exclusive_max
        out["exclusiveMaximum"] = True
    if "const" in node:
        out["enum"] = [node["const"]]
        out.setdefault("type", "string")
    kind = out.get("type")
    if kind is None and not out.get("x-kubernetes-preserve-unknown-fields"):
        raise SchemaError(f"{path}: no type")
    if kind == "object":
        properties = node.get("properties")
        if properties:
            out["properties"] = {
                name: _structural(child, defs, f"{path}.{name}")
                for name, child in properties.items()
            }
        extra = node.get("additionalProperties")
        if isinstance(extra, dict):
            out["additionalProperties"] = _structural(extra, defs, f"{path}[*]")
    elif kind == "array":
        out["items"] = _structural(node["items"], defs, f"{path}[*]")
    if "required" in out and not out["required"]:
        del out["required"]
    return out


def structural_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The structural OpenAPI v3 schema of one pydantic model."""
    raw = model.model_json_schema(
        by_alias=True, mode="validation", schema_generator=_CRDSchemaGenerator
    )
    defs = raw.pop("$defs", {})
    return _annotate_conditions(_structural(raw, defs, model.__name__))


def _annotate_conditions(schema: dict[str, Any]) -> dict[str, Any]:
    conditions = schema.get("properties", {}).get("conditions")
    if conditions is not None:
        conditions["x-kubernetes-list-type"] = "map"
        conditions["x-kubernetes-list-map-keys"] = ["type"]
    return schema


@dataclass(frozen=True)
class KindInfo:
    """What a CRD needs to know about one kind beyond its schema."""

    kind: str
    plural: str
    short_names: list[str]
    scope: str
    spec: type[BaseModel]
    status: type[BaseModel]
    printer_columns: list[dict[str, Any]]
    scale: dict[str, str] | None = None
    description: str = ""
    extra_validations: list[dict[str, str]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.plural}.{GROUP}"


_AGE = {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}

KINDS: list[KindInfo] = [
    KindInfo(
        kind="GPUPool",
        plural="gpupools",
        short_names=["gp"],
        scope="Cluster",
        spec=GPUPoolSpec,
        status=GPUPoolStatus,
        description="A set of nodes that share an accelerator: inventory, topology, free "
        "capacity per level, fragmentation and price.",
        printer_columns=[
            {"name": "Accelerator", "type": "string", "jsonPath": ".spec.accelerator.type"},
            {"name": "Nodes", "type": "integer", "jsonPath": ".status.nodes"},
            {"name": "Ready", "type": "integer", "jsonPath": ".status.readyNodes"},
            {"name": "Devices", "type": "integer", "jsonPath": ".status.devices.allocatable"},
            {"name": "Free", "type": "integer", "jsonPath": ".status.devices.free"},
            {"name": "Frag", "type": "number", "jsonPath": ".status.fragmentation"},
            {"name": "Capacity", "type": "string", "jsonPath": ".spec.capacityType", "priority": 1},
            {
                "name": "$/h",
                "type": "number",
                "jsonPath": ".status.pricePerHour.totalPerHour",
                "priority": 1,
            },
            _AGE,
        ],
    ),
    KindInfo(
        kind="TrainingJob",
        plural="trainingjobs",
        short_names=["tj"],
        scope="Namespaced",
        spec=TrainingJobSpec,
        status=TrainingJobStatus,
        description="A gang of workers placed all-or-nothing by a topology-aware solver, "
        "surviving spot interruptions by checkpointing on notice.",
        printer_columns=[
            {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
            {"name": "Workers", "type": "integer", "jsonPath": ".spec.workers"},
            {"name": "GPUs/W", "type": "integer", "jsonPath": ".spec.acceleratorsPerWorker"},
            {"name": "Pool", "type": "string", "jsonPath": ".status.placement.pool"},
            {"name": "Domain", "type": "string", "jsonPath": ".status.placement.domain"},
            {"name": "Restarts", "type": "integer", "jsonPath": ".status.restarts"},
            {
                "name": "Device-h",
                "type": "number",
                "jsonPath": ".status.deviceHours",
                "priority": 1,
            },
            {"name": "Cost", "type": "number", "jsonPath": ".status.cost", "priority": 1},
            _AGE,
        ],
    ),
    KindInfo(
        kind="InferenceService",
        plural="inferenceservices",
        short_names=["cis"],
        scope="Namespaced",
        spec=InferenceServiceSpec,
        status=InferenceServiceStatus,
        description="Model-server replicas on a pool, autoscaled against latency objectives.",
        printer_columns=[
            {"name": "Replicas", "type": "integer", "jsonPath": ".status.replicas"},
            {"name": "Ready", "type": "integer", "jsonPath": ".status.readyReplicas"},
            {"name": "Desired", "type": "integer", "jsonPath": ".status.desiredReplicas"},
            {"name": "Latency-ms", "type": "number", "jsonPath": ".status.observedLatencyMs"},
            {"name": "Target-ms", "type": "number", "jsonPath": ".status.targetLatencyMs"},
            {
                "name": "SLO-Met",
                "type": "string",
                "jsonPath": '.status.conditions[?(@.type=="SLOMet")].status',
            },
            {"name": "Reason", "type": "string", "jsonPath": ".status.lastScaleReason"},
            {
                "name": "Attainment",
                "type": "number",
                "jsonPath": ".status.sloAttainment",
                "priority": 1,
            },
            {
                "name": "Req/s",
                "type": "number",
                "jsonPath": ".status.model.arrivalRate",
                "priority": 1,
            },
            _AGE,
        ],
        scale={
            "specReplicasPath": ".spec.replicas",
            "statusReplicasPath": ".status.replicas",
            "labelSelectorPath": ".status.selector",
        },
    ),
]


def crd(info: KindInfo) -> dict[str, Any]:
    """The CustomResourceDefinition object for one kind."""
    spec_schema = structural_schema(info.spec)
    status_schema = structural_schema(info.status)
    spec_schema.pop("default", None)
    status_schema.pop("default", None)
    subresources: dict[str, Any] = {"status": {}}
    if info.scale is not None:
        subresources["scale"] = dict(info.scale)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": info.name,
            "labels": {"app.kubernetes.io/name": "corral", "app.kubernetes.io/part-of": "corral"},
        },
        "spec": {
            "group": GROUP,
            "names": {
                "kind": info.kind,
                "listKind": f"{info.kind}List",
                "plural": info.plural,
                "singular": info.kind.lower(),
                "shortNames": list(info.short_names),
                "categories": list(CATEGORIES),
            },
            "scope": info.scope,
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": info.description,
                            "x-kubernetes-validations": [dict(NAME_RULE)],
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": spec_schema,
                                "status": status_schema,
                            },
                        }
                    },
                    "subresources": subresources,
                    "additionalPrinterColumns": info.printer_columns,
                }
            ],
        },
    }


def render(info: KindInfo) -> str:
    header = "# Generated by `corral crds` from corral/api models. Do not edit; run `make crds`.\n"
    return header + yaml.safe_dump(crd(info), sort_keys=False, width=100)


def file_name(info: KindInfo) -> str:
    return f"{GROUP}_{info.plural}.yaml"


def write_crds(out_dir: Path) -> list[Path]:
    """Write one YAML file per kind; returns the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for info in KINDS:
        path = out_dir / file_name(info)
        path.write_text(render(info))
        written.append(path)
    return written
