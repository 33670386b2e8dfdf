"""Builders of valid sample objects, and a way to break one field at a time."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
_DELETE = object()


def example(kind: str) -> dict[str, Any]:
    """The first example of a kind in examples/."""
    for path in sorted(EXAMPLES.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") == kind:
                return dict(doc)
    raise LookupError(kind)


def minimal(kind: str) -> dict[str, Any]:
    """The smallest valid object of a kind: everything else comes from defaults."""
    template = {"spec": {"containers": [{"name": "main", "image": "busybox"}]}}
    specs: dict[str, dict[str, Any]] = {
        "GPUPool": {
            "nodeSelector": {"matchLabels": {"nvidia.com/gpu.product": "H100"}},
            "accelerator": {"type": "H100-80GB", "memoryGiB": 80},
        },
        "TrainingJob": {"workers": 2, "template": template},
        "InferenceService": {"template": template, "replicas": 1},
    }
    meta: dict[str, Any] = {"name": "sample"}
    if kind != "GPUPool":
        meta["namespace"] = "default"
    return {
        "apiVersion": "corral.dev/v1alpha1",
        "kind": kind,
        "metadata": meta,
        "spec": specs[kind],
    }


def breaking(doc: dict[str, Any], path: str, value: Any = _DELETE) -> dict[str, Any]:
    """A copy of `doc` with the dotted `path` set to `value` (or removed when no value)."""
    out = copy.deepcopy(doc)
    parts = path.split(".")
    target = out
    for part in parts[:-1]:
        target = target[int(part)] if isinstance(target, list) else target.setdefault(part, {})
    last: Any = int(parts[-1]) if isinstance(target, list) else parts[-1]
    if value is _DELETE:
        del target[last]
    else:
        target[last] = value
    return out


DELETE = _DELETE
