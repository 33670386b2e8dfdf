"""The `corral` command: `run`, `plan`, `simulate`, `fleet`, `crds`.

Each subcommand lives in `corral.commands.<name>` with `register(subparsers)`; this module only
wires them and turns user errors into one line on stderr and exit status 2 (no traceback).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from corral import __version__
from corral.commands import crds, fleet, plan, run, simulate
from corral.commands.common import UsageError


class _Parser(argparse.ArgumentParser):
    """argparse prints usage plus the error; a user of a CLI in scripts wants one line."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="corral",
        description="Corral: a Kubernetes operator for accelerator fleets.",
    )
    parser.add_argument("--version", action="version", version=f"corral {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for command in (run, plan, simulate, fleet, crds):
        command.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status: int = args.handler(args)
    except UsageError as exc:
        # One line, whatever a file or a value quoted from it contained.
        print(f"corral {args.command}: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return status
