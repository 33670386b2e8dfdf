"""The CRDs are generated, structural, in sync with the committed files, and mirror the models."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
from tests.api.objects import minimal

from corral.api import parse_object
from corral.api.crdgen import KINDS, crd, file_name, render

ROOT = Path(__file__).resolve().parents[2]
COMBINATORS = ("allOf", "anyOf", "oneOf", "not")


def structural_violations(node: dict[str, Any], path: str = "") -> list[str]:
    """The rules of a structural schema, from the Kubernetes docs ("Specifying a structural
    schema"), as far as a generated schema can break them."""
    problems = []
    if "$ref" in node:
        problems.append(f"{path}: $ref is not allowed")
    int_or_string = node.get("x-kubernetes-int-or-string") is True
    preserve = node.get("x-kubernetes-preserve-unknown-fields") is True
    if not node.get("type") and not int_or_string and not preserve:
        problems.append(f"{path}: no type")
    for combinator in COMBINATORS:
        if combinator in node:
            options = node[combinator] if isinstance(node[combinator], list) else [node[combinator]]
            if (
                combinator == "anyOf"
                and int_or_string
                and options == [{"type": "integer"}, {"type": "string"}]
            ):
                continue
            for option in options:
                for forbidden in (
                    "description",
                    "type",
                    "default",
                    "additionalProperties",
                    "nullable",
                ):
                    if forbidden in option:
                        problems.append(f"{path}.{combinator}: {forbidden} is not allowed inside")
    if "properties" in node and "additionalProperties" in node:
        problems.append(f"{path}: properties and additionalProperties together")
    if node.get("additionalProperties") is False:
        problems.append(f"{path}: additionalProperties: false is not allowed")
    if isinstance(node.get("exclusiveMinimum"), int | float) and not isinstance(
        node.get("exclusiveMinimum"), bool
    ):
        problems.append(f"{path}: exclusiveMinimum must be a boolean in OpenAPI v3.0")
    for name, child in (node.get("properties") or {}).items():
        problems += structural_violations(child, f"{path}.{name}")
    if isinstance(node.get("additionalProperties"), dict):
        problems += structural_violations(node["additionalProperties"], f"{path}[*]")
    if "items" in node:
        problems += structural_violations(node["items"], f"{path}[*]")
    if node.get("type") == "array" and "items" not in node:
        problems.append(f"{path}: array without items")
    for key in node.get("x-kubernetes-list-map-keys", []):
        item = node["items"]
        if key not in item.get("required", []) and "default" not in item["properties"].get(key, {}):
            problems.append(f"{path}: list map key {key} must be required or defaulted")
    return problems


def apply_defaults(schema: dict[str, Any], value: Any) -> Any:
    """What the API server's defaulting does to an object: fill missing fields that have a
    default, then recurse (so defaults inside a defaulted `{}` apply too)."""
    if isinstance(value, dict) and schema.get("type") == "object":
        out = dict(value)
        for name, child in (schema.get("properties") or {}).items():
            if name not in out and "default" in child:
                out[name] = copy.deepcopy(child["default"])
            if name in out:
                out[name] = apply_defaults(child, out[name])
        return out
    if isinstance(value, list) and "items" in schema:
        return [apply_defaults(schema["items"], item) for item in value]
    return value


def openapi(kind: str) -> dict[str, Any]:
    info = next(info for info in KINDS if info.kind == kind)
    schema: dict[str, Any] = crd(info)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


@pytest.mark.parametrize("info", KINDS, ids=lambda info: info.kind)
def test_committed_crds_match_a_fresh_generation(info: Any) -> None:
    fresh = render(info)
    for folder in ("crds", "charts/corral/crds"):
        committed = (ROOT / folder / file_name(info)).read_text()
        assert committed == fresh, f"{folder}/{file_name(info)} is stale: run `make crds`"


def test_no_stray_files_in_crd_folders() -> None:
    expected = {file_name(info) for info in KINDS}
    for folder in ("crds", "charts/corral/crds"):
        assert {p.name for p in (ROOT / folder).glob("*")} == expected


@pytest.mark.parametrize("info", KINDS, ids=lambda info: info.kind)
def test_schema_is_structural(info: Any) -> None:
    assert structural_violations(openapi(info.kind)) == []


@pytest.mark.parametrize("info", KINDS, ids=lambda info: info.kind)
def test_crd_shape(info: Any) -> None:
    obj = crd(info)
    spec = obj["spec"]
    assert obj["metadata"]["name"] == f"{info.plural}.corral.dev"
    assert spec["group"] == "corral.dev"
    assert spec["names"]["categories"] == ["corral"]
    assert spec["names"]["shortNames"] == info.short_names
    (version,) = spec["versions"]
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
    assert "status" in version["subresources"]
    assert version["additionalPrinterColumns"][-1]["name"] == "Age"


def test_scopes_and_short_names() -> None:
    by_kind = {info.kind: crd(info)["spec"] for info in KINDS}
    assert by_kind["GPUPool"]["scope"] == "Cluster"
    assert by_kind["TrainingJob"]["scope"] == "Namespaced"
    assert by_kind["InferenceService"]["scope"] == "Namespaced"
    assert [
        by_kind[k]["names"]["shortNames"] for k in ("GPUPool", "TrainingJob", "InferenceService")
    ] == [
        ["gp"],
        ["tj"],
        ["cis"],
    ]


def test_inferenceservice_has_scale_subresource() -> None:
    info = next(info for info in KINDS if info.kind == "InferenceService")
    version = crd(info)["spec"]["versions"][0]
    assert version["subresources"]["scale"] == {
        "specReplicasPath": ".spec.replicas",
        "statusReplicasPath": ".status.replicas",
        "labelSelectorPath": ".status.selector",
    }


def _resolve(schema: dict[str, Any], json_path: str) -> dict[str, Any] | None:
    node: dict[str, Any] | None = schema
    # `.status.conditions[?(@.type=="Ready")].status` walks into the list's items.
    path = re.sub(r"\[\?\(@\.[A-Za-z]+==\"[A-Za-z]+\"\)\]", "[*]", json_path)
    for part in path.strip(".").split("."):
        if node is None:
            return None
        node = (node.get("properties") or {}).get(part.removesuffix("[*]"))
        if part.endswith("[*]") and node is not None:
            node = node.get("items")
    return node


@pytest.mark.parametrize("info", KINDS, ids=lambda info: info.kind)
def test_printer_columns_point_at_fields_of_their_type(info: Any) -> None:
    schema = openapi(info.kind)
    for column in crd(info)["spec"]["versions"][0]["additionalPrinterColumns"]:
        if column["jsonPath"].startswith(".metadata"):
            continue
        target = _resolve(schema, column["jsonPath"])
        assert target is not None, column
        assert target["type"] == column["type"] or (
            column["type"] == "number" and target["type"] == "integer"
        ), column


def _rules(node: dict[str, Any]) -> list[str]:
    found = [rule["rule"] for rule in node.get("x-kubernetes-validations", [])]
    for child in (node.get("properties") or {}).values():
        found += _rules(child)
    if "items" in node:
        found += _rules(node["items"])
    return found


@pytest.mark.parametrize(
    ("kind", "fragment"),
    [
        ("InferenceService", "self.minReplicas <= self.maxReplicas"),
        ("InferenceService", "has(self.replicas) || has(self.autoscaling)"),
        ("TrainingJob", "rank[self.preferred] > rank[self.required]"),
        ("TrainingJob", "has(self.annotation) != has(self.httpGet)"),
        ("TrainingJob", "self.prefer in self.types"),
        ("TrainingJob", "!has(self.nodeName)"),
        ("TrainingJob", "size(self.metadata.name) <= 63"),
        ("GPUPool", "size(self.metadata.name) <= 63"),
        ("InferenceService", "size(self.metadata.name) <= 63"),
        ("GPUPool", "size(self.values) > 0"),
        ("GPUPool", "self.levels.all("),
    ],
)
def test_cross_field_rules_are_in_the_schema(kind: str, fragment: str) -> None:
    # That the API server enforces them is e2e/test_crds.py's job; here: they were generated.
    assert any(fragment in rule for rule in _rules(openapi(kind)))


def test_percentile_bounds_are_exclusive() -> None:
    percentile = _resolve(openapi("InferenceService"), "spec.autoscaling.slo.percentile")
    assert percentile is not None
    assert (percentile["minimum"], percentile["exclusiveMinimum"]) == (0, True)
    assert (percentile["maximum"], percentile["exclusiveMaximum"]) == (100, True)


@pytest.mark.parametrize("kind", ["GPUPool", "TrainingJob", "InferenceService"])
def test_crd_defaults_mirror_model_defaults(kind: str) -> None:
    doc = minimal(kind)
    if kind == "InferenceService":
        doc["spec"]["autoscaling"] = {"slo": {"latencyMs": 300}}
    defaulted_by_api_server = apply_defaults(openapi(kind)["properties"]["spec"], doc["spec"])
    defaulted_by_model = parse_object(doc).to_wire()["spec"]
    assert _numbers_as_json(defaulted_by_api_server) == _numbers_as_json(defaulted_by_model)


def _numbers_as_json(value: Any) -> Any:
    """JSON does not tell 80 from 80.0, and neither does the API server."""
    if isinstance(value, dict):
        return {key: _numbers_as_json(child) for key, child in value.items()}
    if isinstance(value, list):
        return [_numbers_as_json(child) for child in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def test_conditions_are_a_map_list_keyed_by_type() -> None:
    for info in KINDS:
        conditions = openapi(info.kind)["properties"]["status"]["properties"]["conditions"]
        assert conditions["x-kubernetes-list-type"] == "map"
        assert conditions["x-kubernetes-list-map-keys"] == ["type"]


def _objects_under(node: dict[str, Any], path: str) -> list[tuple[str, dict[str, Any]]]:
    found = [(path, node)] if node.get("type") == "object" else []
    for name, child in (node.get("properties") or {}).items():
        found += _objects_under(child, f"{path}.{name}")
    if "items" in node:
        found += _objects_under(node["items"], f"{path}[*]")
    return found


@pytest.mark.parametrize("kind", ["TrainingJob", "InferenceService"])
def test_template_schema_declares_without_pruning(kind: str) -> None:
    """Declaring a template field must never make the API server drop the fields beside it:
    every object is open (preserve-unknown-fields), a map, or a complete Kubernetes type."""
    template = _resolve(openapi(kind), "spec.template")
    assert template is not None
    closed = [
        path
        for path, node in _objects_under(template, "template")
        if not node.get("x-kubernetes-preserve-unknown-fields")
        and "additionalProperties" not in node
        and not path.endswith(".tolerations[*]")  # corev1.Toleration: every field declared
    ]
    assert closed == []
    containers = _resolve(openapi(kind), "spec.template.spec.containers")
    assert containers is not None
    assert (containers["minItems"], containers["maxItems"]) == (1, 32)
    assert template["required"] == ["spec"]


@pytest.mark.parametrize("kind", ["GPUPool", "TrainingJob", "InferenceService"])
def test_every_list_and_map_in_a_spec_is_bounded(kind: str) -> None:
    """maxItems / maxProperties everywhere a user can grow the object (CEL cost and etcd size)."""
    spec = openapi(kind)["properties"]["spec"]
    unbounded = []

    def walk(node: dict[str, Any], path: str) -> None:
        if node.get("type") == "array" and "maxItems" not in node:
            unbounded.append(path)
        if isinstance(node.get("additionalProperties"), dict) and "maxProperties" not in node:
            unbounded.append(path)
        for name, child in (node.get("properties") or {}).items():
            walk(child, f"{path}.{name}")
        if "items" in node:
            walk(node["items"], f"{path}[*]")

    walk(spec, "spec")
    assert unbounded == []


@pytest.mark.parametrize("kind", ["GPUPool", "TrainingJob", "InferenceService"])
def test_every_number_in_a_spec_has_a_maximum(kind: str) -> None:
    spec = openapi(kind)["properties"]["spec"]
    missing = []

    def walk(node: dict[str, Any], path: str) -> None:
        if node.get("type") in ("number", "integer") and "maximum" not in node:
            missing.append(path)
        for bound in ("minimum", "maximum"):
            # The API server reads schema numbers as float64: a bound it cannot hold exactly
            # makes every `kubectl apply` of the CRD a change.
            if abs(node.get(bound, 0)) > 2**53:
                missing.append(f"{path} ({bound} beyond 2^53)")
        for name, child in (node.get("properties") or {}).items():
            walk(child, f"{path}.{name}")
        for key in ("items", "additionalProperties"):
            if isinstance(node.get(key), dict):
                walk(node[key], f"{path}[*]")

    walk(spec, "spec")
    assert missing == []
