"""`corral crds --out DIR`: write the CustomResourceDefinitions generated from the models."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from corral.api.crdgen import KINDS, render, write_crds
from corral.commands.common import UsageError


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("crds", help="write the CRDs generated from the API models")
    parser.add_argument(
        "--out",
        metavar="DIR",
        help="directory to write one YAML per kind (default: print to stdout)",
    )
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    if args.out is None:
        sys.stdout.write("---\n".join(render(info) for info in KINDS))
        return 0
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out}: not a directory")
    for path in write_crds(out):
        print(path)
    return 0
