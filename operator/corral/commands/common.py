"""What the subcommands share: the user-error type and reading YAML files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from corral.api.errors import yaml_problem


class UsageError(Exception):
    """A user mistake (bad file, bad flag, invalid object): one line, exit status 2."""


def read_documents(path: str | Path) -> list[Any]:
    """All YAML documents of a file (`-` is stdin), `v1 List`s flattened into their items."""
    import sys

    try:
        text = sys.stdin.read() if str(path) == "-" else Path(path).read_text()
    except OSError as exc:
        raise UsageError(f"{path}: {exc.strerror or exc}") from None
    try:
        documents = [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except yaml.YAMLError as exc:
        raise UsageError(f"{path}: invalid YAML: {yaml_problem(exc)}") from None
    flat: list[Any] = []
    for doc in documents:
        if isinstance(doc, dict) and doc.get("kind", "").endswith("List") and "items" in doc:
            items = doc.get("items") or []
            if not isinstance(items, list):
                raise UsageError(f"{path}: items of a {doc['kind']} must be a list")
            flat.extend(items)
        else:
            flat.append(doc)
    return flat
