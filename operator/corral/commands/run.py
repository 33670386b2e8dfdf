"""`corral run`: start the operator (kopf) against the current kubeconfig."""

from __future__ import annotations

import argparse
import logging
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("run", help="run the operator")
    parser.add_argument(
        "--namespace",
        "-n",
        action="append",
        default=[],
        help="watch only these namespaces (repeatable); default: all",
    )
    parser.add_argument(
        "--metrics-port", type=int, default=8080, help="port of /metrics (default 8080; 0 = off)"
    )
    parser.add_argument(
        "--liveness-port", type=int, default=8081, help="port of /healthz (default 8081; 0 = off)"
    )
    parser.add_argument("--verbose", "-v", action="store_true", help="debug logging")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    import kopf

    from corral import controllers

    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO)
    if not controllers.HANDLERS:
        logging.getLogger("corral").warning(
            "no controllers yet: the operator starts but reconciles nothing"
        )
    kopf.run(
        clusterwide=not args.namespace,
        namespaces=list(args.namespace),
        liveness_endpoint=f"http://0.0.0.0:{args.liveness_port}/healthz"
        if args.liveness_port
        else None,
        standalone=True,
    )
    return 0
