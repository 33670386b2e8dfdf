"""The chart's alert rules and Grafana dashboard against a real Prometheus scraping a real
operator: every rule loads and evaluates without error, and every panel's query is valid PromQL
that Prometheus answers (the unit tests only check the metric names)."""

from __future__ import annotations

import json
import urllib.error
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from builders import node, training_job
from harness import ManagedProcess, wait_for
from harness.cluster import REPO
from operator_support import (
    Jobs,
    MakePool,
    RunningOperator,
    prometheus_api,
    query,
    render_chart,
    start_prometheus,
)

# Grafana's values for the dashboard's variables: every job and pool, short windows.
GRAFANA = {"$job": ".+", "$pool": ".+", "$__rate_interval": "1m", "$__range": "5m"}


def _rules() -> list[dict[str, Any]]:
    docs = render_chart(
        "corral",
        "corral-system",
        "--set=metrics.prometheusRule.enabled=true",
        "--api-versions=monitoring.coreos.com/v1",
    )
    rule = next(d for d in docs if d["kind"] == "PrometheusRule")
    return list(rule["spec"]["groups"])


def _panel_queries() -> list[tuple[str, str]]:
    dashboard = json.loads((REPO / "charts" / "corral" / "dashboards" / "corral.json").read_text())
    found = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expression = target["expr"]
            for variable, value in GRAFANA.items():
                expression = expression.replace(variable, value)
            found.append((panel["title"], expression))
    return found


def test_alert_rules_and_dashboard_queries_run_on_a_real_prometheus(
    namespace: str,
    make_pool: MakePool,
    jobs: Jobs,
    operator: RunningOperator,
    spawn: Callable[..., ManagedProcess],
    tmp_path: Path,
) -> None:
    rules_file = tmp_path / "corral-rules.yaml"
    groups = _rules()
    rules_file.write_text(yaml.safe_dump({"groups": groups}))
    # The scrape job and namespace the chart's ServiceMonitor gives the operator's series.
    prometheus = start_prometheus(
        spawn,
        tmp_path,
        operator.metrics_port,
        job="corral-metrics",
        target_labels={"namespace": "corral-system"},
        rule_files=[rules_file],
    )
    pool = make_pool([node("h1").rack("r1"), node("h2").rack("r1")])
    jobs.create(training_job("watched", namespace).workers(1).gpus(8).pool(pool).obj())
    jobs.wait_phase("watched", "Running")
    wait_for(
        lambda: query(prometheus, 'corral_pool_devices{state="allocated"} > 0'),
        timeout=30,
        message="the operator's pool metrics in Prometheus",
    )

    def evaluated() -> list[dict[str, Any]]:
        loaded = prometheus_api(prometheus, "rules")["groups"]
        rules = [r for group in loaded for r in group["rules"]]
        done = all(r["lastEvaluation"] > "2000" for r in rules)
        return rules if done and len(rules) == sum(len(g["rules"]) for g in groups) else []

    rules = wait_for(evaluated, timeout=30, message="every alert rule evaluated once")
    assert [(r["name"], r["health"], r.get("lastError", "")) for r in rules] == [
        (r["alert"], "ok", "") for group in groups for r in group["rules"]
    ]

    def operator_down_state() -> str:
        loaded = prometheus_api(prometheus, "rules", type="alert")["groups"]
        return next(
            r["state"] for g in loaded for r in g["rules"] if r["name"] == "CorralOperatorDown"
        )

    # Pending from evaluations before the first scrape; inactive once `up` is there.
    wait_for(
        lambda: operator_down_state() == "inactive",
        timeout=30,
        message="CorralOperatorDown inactive while the operator is scraped",
    )

    refused = []
    for title, expression in _panel_queries():
        try:
            query(prometheus, expression)
        except urllib.error.HTTPError as exc:  # 400 bad_data: Prometheus's parse error
            refused.append((title, expression, exc.read().decode()))
    assert refused == []
    assert query(prometheus, _panel_queries()[0][1]), "allocated devices panel has data"
    pools = prometheus_api(prometheus, "label/pool/values", **{"match[]": "corral_pool_devices"})
    assert pool in pools, "the dashboard's pool variable lists the pool"
