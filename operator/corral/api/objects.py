"""Turning user documents (YAML/JSON dicts) into validated Corral objects."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from corral.api.crdgen import GROUP, VERSION
from corral.api.errors import InvalidObject, describe_errors, shorten
from corral.api.gpupool import GPUPool
from corral.api.inferenceservice import InferenceService
from corral.api.trainingjob import TrainingJob

API_VERSION = f"{GROUP}/{VERSION}"
KIND_MODELS: dict[str, type[GPUPool] | type[TrainingJob] | type[InferenceService]] = {
    "GPUPool": GPUPool,
    "TrainingJob": TrainingJob,
    "InferenceService": InferenceService,
}

CorralObject = GPUPool | TrainingJob | InferenceService

MAX_DEPTH = 64
"""Deepest nesting of an object Corral accepts (a pod template stays below 20)."""


def parse_object(document: Any, expect: str | None = None) -> CorralObject:
    """Validate one document as a Corral object; raises InvalidObject naming each bad field."""
    if not isinstance(document, dict):
        raise InvalidObject(
            [f"expected a Kubernetes object (a mapping), got {type(document).__name__}"]
        )
    kind = document.get("kind")
    if expect is not None and kind != expect:
        raise InvalidObject([f"kind: expected {expect}, got {shorten(repr(kind))}"])
    if not isinstance(kind, str) or kind not in KIND_MODELS:
        raise InvalidObject(
            [f"kind: {shorten(repr(kind))} is not a Corral kind (one of {', '.join(KIND_MODELS)})"]
        )
    api_version = document.get("apiVersion")
    if api_version != API_VERSION:
        raise InvalidObject(
            [f"apiVersion: expected {API_VERSION}, got {shorten(repr(api_version))}"]
        )
    depth = nesting_depth(document)
    if depth > MAX_DEPTH:
        raise InvalidObject([f"nested {depth} levels deep (at most {MAX_DEPTH})"])
    model = KIND_MODELS[kind]
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        raise InvalidObject(describe_errors(exc)) from None


def nesting_depth(value: Any, limit: int = 10 * MAX_DEPTH) -> int:
    """How deep mappings and lists nest (a scalar is 0), counted without recursion and up to
    `limit`: copying or dumping a deeper object would raise RecursionError."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list) and deepest < limit:
            deepest = max(deepest, depth)
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return deepest


def validate_spec(model: type[BaseModel], spec: Any) -> Any:
    """Validate a bare `spec` (as a controller receives it); errors are prefixed `spec.`."""
    try:
        return model.model_validate(spec if spec is not None else {})
    except ValidationError as exc:
        raise InvalidObject(describe_errors(exc, prefix="spec")) from None
