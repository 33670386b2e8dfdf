"""What the subcommands share: the user-error type and reading YAML files, boundedly.

A file given to a command may be anything: a FIFO that never ends, /dev/zero, a 5 GB log, bytes
that are not text, YAML nested a thousand deep, an integer of 10,000 digits, or a few aliases
that expand to billions of nodes. Each is one line on stderr and exit status 2 — never a
traceback, never a hang: only regular files are read, reads stop at `MAX_FILE_BYTES`, YAML is
parsed by libyaml (which limits nesting), and the loaded documents are measured (depth and
expanded size, aliases counted as often as they are used) before anything walks them.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import yaml

from corral.api.errors import yaml_problem

MAX_FILE_BYTES = 128 * 2**20
"""Largest input file: a `kubectl get pods -A -o yaml` of a few thousand GPU nodes fits."""
MAX_DEPTH = 100
"""Deepest nesting of mappings and lists (Kubernetes objects stay below 30)."""
MAX_NODES = 20_000_000
"""Most values a file may expand to, aliases counted each time they are used."""
MAX_INT_DIGITS = 4000
"""Python refuses to convert integers of more than 4,300 digits from text."""


class UsageError(Exception):
    """A user mistake (bad file, bad flag, invalid object): one line, exit status 2."""


class _Loader(yaml.CSafeLoader):
    """The libyaml loader (fast, nesting bounded), with integers bounded before conversion."""

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        digits = sum(ch.isdigit() for ch in str(node.value))
        if digits > MAX_INT_DIGITS:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"an integer of {digits} digits (at most {MAX_INT_DIGITS})",
                node.start_mark,
            )
        value: int = super().construct_yaml_int(node)
        return value


_Loader.add_constructor("tag:yaml.org,2002:int", _Loader.construct_yaml_int)


def _read_bytes(path: str | Path) -> bytes:
    if str(path) == "-":
        return _bounded_read(sys.stdin.buffer, "-")
    try:
        info = os.stat(path)
    except OSError as exc:
        raise UsageError(f"{path}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(info.st_mode):
        raise UsageError(f"{path}: not a regular file (a directory, FIFO or device is not read)")
    if info.st_size > MAX_FILE_BYTES:
        raise UsageError(f"{path}: {info.st_size} bytes, more than the {MAX_FILE_BYTES} read")
    try:
        with open(path, "rb") as handle:
            return _bounded_read(handle, path)
    except OSError as exc:
        raise UsageError(f"{path}: {exc.strerror or exc}") from None


def _bounded_read(handle: BinaryIO, path: str | Path) -> bytes:
    data = handle.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise UsageError(f"{path}: more than {MAX_FILE_BYTES} bytes (the most that is read)")
    return data


def _decode(data: bytes, path: str | Path) -> str:
    """UTF-8 (with or without a BOM), or UTF-16/32 announced by a BOM, as YAML allows."""
    encoding = "utf-8-sig"
    if data.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        encoding = "utf-32"
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
        encoding = "utf-16"
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"{path}: not {encoding.split('-sig')[0].upper()} text (byte 0x{data[exc.start]:02x} "
            f"at offset {exc.start})"
        ) from None


def _measure(documents: list[Any], path: str | Path) -> None:
    """Refuse structures too deep, or too large once aliases are expanded, before any caller
    walks them recursively (RecursionError) or exhaustively (a billion laughs)."""
    sizes: dict[int, int] = {}
    stack: list[tuple[Any, int, bool]] = [(doc, 1, False) for doc in documents]
    while stack:
        value, depth, done = stack.pop()
        if not isinstance(value, dict | list):
            continue
        if id(value) in sizes:
            continue
        if depth > MAX_DEPTH:
            raise UsageError(f"{path}: nested deeper than {MAX_DEPTH} levels")
        children = list(value.values()) if isinstance(value, dict) else value
        if done:
            sizes[id(value)] = 1 + sum(
                sizes.get(id(child), 1) if isinstance(child, dict | list) else 1
                for child in children
            )
            if sizes[id(value)] > MAX_NODES:
                raise UsageError(f"{path}: expands to more than {MAX_NODES} values (YAML aliases?)")
            continue
        stack.append((value, depth, True))
        stack.extend((child, depth + 1, False) for child in children)


def _load(text: str, path: str | Path) -> list[Any]:
    if text.lstrip()[:1] in ("{", "["):
        # `kubectl get -o json`: JSON is YAML, and the json module reads it fifty times faster.
        # Anything it refuses (deep nesting, huge integers) is left to the YAML path's errors.
        try:
            return [json.loads(text)]
        except (ValueError, RecursionError):
            pass
    try:
        return [doc for doc in yaml.load_all(text, Loader=_Loader) if doc is not None]
    except yaml.YAMLError as exc:
        raise UsageError(f"{path}: invalid YAML: {yaml_problem(exc)}") from None


def read_documents(path: str | Path) -> list[Any]:
    """All YAML documents of a file (`-` is stdin), `v1 List`s flattened into their items."""
    documents = _load(_decode(_read_bytes(path), path), path)
    _measure(documents, path)
    return list(_flatten(documents, path))


def _flatten(documents: list[Any], path: str | Path) -> Iterator[Any]:
    for doc in documents:
        kind = doc.get("kind") if isinstance(doc, dict) else None
        if isinstance(kind, str) and kind.endswith("List") and "items" in doc:
            items = doc.get("items") or []
            if not isinstance(items, list):
                raise UsageError(f"{path}: items of a {kind} must be a list")
            yield from items
        else:
            yield doc
