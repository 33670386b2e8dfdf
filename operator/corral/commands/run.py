"""`corral run`: start the operator (kopf) against the current kubeconfig or in-cluster config."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from typing import Any

from corral.commands.common import UsageError

LOG_LEVELS = ("debug", "info", "warning", "error")
"""Values of --log-level (the chart's `logLevel`), least severe first."""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("run", help="run the operator")
    parser.add_argument(
        "--kubeconfig",
        help="kubeconfig file (default: in-cluster, then $KUBECONFIG, then ~/.kube/config)",
    )
    parser.add_argument(
        "--metrics-port", type=int, default=8080, help="port of /metrics (default 8080; 0 = off)"
    )
    parser.add_argument(
        "--health-port", type=int, default=8081, help="port of /healthz (default 8081; 0 = off)"
    )
    parser.add_argument(
        "--log-level",
        choices=LOG_LEVELS,
        default="info",
        help="least severe messages logged (default info; debug also logs every watch event)",
    )
    parser.add_argument("--verbose", "-v", action="store_true", help="same as --log-level=debug")
    parser.add_argument(
        "--usage-refresh",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="how often a running job's deviceHours, cost, energyKWh and carbonGrams are brought "
        "up to date in its status (default 60; also at every phase change)",
    )
    parser.add_argument(
        "--prometheus-url",
        metavar="URL",
        help="Prometheus for InferenceServices that name none in "
        "spec.autoscaling.metrics.prometheus (e.g. http://prometheus.monitoring:9090)",
    )
    parser.add_argument(
        "--leader-elect",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="elect a leader among replicas with a coordination.k8s.io Lease (the chart turns "
        "it on); a replica that loses the Lease exits 1 and comes back as a standby",
    )
    parser.add_argument(
        "--leader-election-namespace",
        metavar="NAMESPACE",
        help="namespace of the Lease (default: the pod's own namespace, else the kubeconfig "
        "context's, else default)",
    )
    parser.add_argument(
        "--leader-election-id",
        default="corral",
        metavar="NAME",
        help="name of the Lease (default corral); replicas with the same one elect one leader",
    )
    for flag, default, what in (
        ("lease-duration", 15.0, "how long a Lease not renewed stays taken"),
        ("renew-deadline", 10.0, "how long the leader keeps trying to renew before it stops"),
        ("retry-period", 2.0, "how often candidates and the leader try"),
    ):
        parser.add_argument(
            f"--leader-election-{flag}",
            type=float,
            default=default,
            metavar="SECONDS",
            help=f"{what} (default {default:g}, controller-runtime's)",
        )
    parser.add_argument(
        "--autoscaler-interval",
        type=float,
        default=15.0,
        metavar="SECONDS",
        help="how often autoscaled InferenceServices read their metrics and are sized (default 15)",
    )
    parser.set_defaults(handler=handle)


def _port(value: int, flag: str) -> int:
    if not 0 <= value <= 65535:
        raise UsageError(f"{flag} {value}: must be a port number from 0 to 65535")
    return value


def handle(args: argparse.Namespace) -> int:
    import kopf
    from prometheus_client import start_http_server

    from corral import controllers, metrics

    metrics_port = _port(args.metrics_port, "--metrics-port")
    if not 1.0 <= args.usage_refresh <= 86400.0:
        raise UsageError(f"--usage-refresh {args.usage_refresh:g}: must be 1 to 86400 seconds")
    health_port = _port(args.health_port, "--health-port")
    if not 1.0 <= args.autoscaler_interval <= 3600.0:
        raise UsageError(
            f"--autoscaler-interval {args.autoscaler_interval:g}: must be 1 to 3600 seconds"
        )
    if args.prometheus_url is not None and not args.prometheus_url.startswith(
        ("http://", "https://")
    ):
        raise UsageError(f"--prometheus-url {args.prometheus_url}: must start with http(s)://")
    if args.kubeconfig is not None and not os.path.isfile(args.kubeconfig):
        raise UsageError(f"--kubeconfig {args.kubeconfig}: no such file")
    if args.kubeconfig:
        os.environ["KUBECONFIG"] = args.kubeconfig  # kopf's own login reads it too
    from corral.kube import kubeconfig
    from corral.kube.rest import KubeAPI

    try:
        config = kubeconfig.from_environment(args.kubeconfig)
    except (kubeconfig.ConfigError, OSError) as exc:
        where = args.kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
        reason = " ".join(str(exc).split())
        raise UsageError(f"cannot load cluster credentials from {where}: {reason}") from None
    api = KubeAPI.from_config(config)
    election = None
    if args.leader_elect:
        from corral.controllers.leader import LeaderElection

        election = LeaderElection(
            namespace=args.leader_election_namespace or config.namespace or "default",
            name=args.leader_election_id,
            lease_duration=args.leader_election_lease_duration,
            renew_deadline=args.leader_election_renew_deadline,
            retry_period=args.leader_election_retry_period,
        )
        if not election.lease_duration > election.renew_deadline > election.retry_period * 1.2:
            raise UsageError(
                "leader election needs --leader-election-lease-duration > "
                "--leader-election-renew-deadline > 1.2 x --leader-election-retry-period"
            )
    level = logging.DEBUG if args.verbose else getattr(logging, args.log_level.upper())
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if level > logging.DEBUG:
        # kopf logs every handled watch event at INFO; the operator's own log says what matters.
        logging.getLogger("kopf.objects").setLevel(max(level, logging.WARNING))
    controllers.load()
    if metrics_port:
        try:
            start_http_server(metrics_port, registry=metrics.REGISTRY)
        except OSError as exc:
            raise UsageError(f"--metrics-port {metrics_port}: {exc.strerror}") from None
    _log_in_with(api)
    lost = asyncio.Event()
    kopf.run(
        clusterwide=True,
        standalone=True,
        liveness_endpoint=f"http://0.0.0.0:{health_port}/healthz" if health_port else None,
        memo=kopf.Memo(
            api=api,
            usage_refresh_seconds=args.usage_refresh,
            prometheus_url=args.prometheus_url,
            leader_election=election,
            leadership_lost=lost,
            autoscaler_interval=args.autoscaler_interval,
        ),
        stop_flag=lost,
    )
    return 1 if lost.is_set() else 0


def _log_in_with(api: Any) -> None:
    """kopf authenticates with Corral's own credentials (exec plugins, OIDC, rotating tokens)
    instead of piggybacking on the kubernetes package, which the operator does without."""
    import kopf

    logins = 0

    @kopf.on.login(id="corral")
    async def login(**_: Any) -> kopf.ConnectionInfo:
        nonlocal logins
        if logins:
            api.credentials.invalidate()  # kopf logs in again only after a 401
        logins += 1
        material = await api.credentials.current()
        certificate = material.certificate
        return kopf.ConnectionInfo(
            server=api.host,
            ca_data=api.tls.ca_pem,
            insecure=api.tls.insecure or None,
            scheme="Bearer" if material.token else None,
            token=material.token,
            username=material.basic[0] if material.basic else None,
            password=material.basic[1] if material.basic else None,
            certificate_data=certificate[0] if certificate else None,
            private_key_data=certificate[1] if certificate else None,
        )
