"""`corral fleet`: not built yet (see the README's status)."""

from __future__ import annotations

import argparse
from typing import Any

from corral.commands.common import UsageError


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("fleet", help="not implemented yet")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    raise UsageError("not implemented yet")
