"""The Grafana dashboard and the alert rules read only metrics the operator exports."""

from __future__ import annotations

import json
from typing import Any

import pytest
from prometheus_client.metrics_core import Metric
from tests.chart.helm import CHART, PROMETHEUS_OPERATOR, render
from tests.chart.promql import label_values_metric, metric_names

from corral import metrics

# Series Prometheus itself makes for every scrape target.
PROMETHEUS_SERIES = frozenset({"up", "scrape_duration_seconds", "scrape_samples_scraped"})
SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_sum", "_count"),
    "summary": ("", "_sum", "_count"),
    "gauge": ("",),
    "info": ("_info",),
}


def _series(family: Metric) -> set[str]:
    return {family.name + suffix for suffix in SUFFIXES.get(family.type, ("",))}


EXPORTED = frozenset(name for family in metrics.REGISTRY.collect() for name in _series(family))
DASHBOARD: dict[str, Any] = json.loads((CHART / "dashboards" / "corral.json").read_text())


def _panels(container: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for panel in container.get("panels", []):
        found.append(panel)
        found += _panels(panel)  # collapsed rows hold their panels
    return found


PANELS = [p for p in _panels(DASHBOARD) if p.get("type") != "row"]


@pytest.mark.parametrize(
    ("expression", "names"),
    [
        ("up", {"up"}),
        ('sum by (le) (rate(a_bucket{job=~"$job", le!="x"}[$__rate_interval]))', {"a_bucket"}),
        ("histogram_quantile(0.99, sum without (pod, instance) (rate(b[5m])))", {"b"}),
        ("a / on (pool) group_left (zone) b offset 1h", {"a", "b"}),
        ('min_over_time((max(c{phase="Queued"}))[60m:1m]) > 0 and bool d', {"c", "d"}),
        ('label_replace(e, "x", "$1", "y", "(.*)") * 3600 + 1e3', {"e"}),
        ('absent(up{job="x"} == 1) or vector(0)', {"up"}),
    ],
)
def test_metric_names_of_an_expression(expression: str, names: set[str]) -> None:
    assert metric_names(expression) == names


def test_the_registry_is_read_with_its_exposition_suffixes() -> None:
    assert {"corral_placement_seconds_bucket", "corral_cost_total", "corral_jobs"} <= EXPORTED


def test_every_panel_queries_only_exported_metrics() -> None:
    unknown = {
        (panel["title"], name)
        for panel in PANELS
        for target in panel.get("targets", [])
        for name in metric_names(target["expr"])
        if name not in EXPORTED | PROMETHEUS_SERIES
    }
    assert unknown == set()


def test_every_panel_has_a_query_and_a_place() -> None:
    for panel in PANELS:
        assert panel.get("targets"), panel["title"]
        assert all(t["expr"].strip() for t in panel["targets"]), panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
    ids = [p["id"] for p in _panels(DASHBOARD)]
    assert len(ids) == len(set(ids)), "panel ids are unique"


def test_panels_do_not_overlap() -> None:
    taken: set[tuple[int, int]] = set()
    for panel in _panels(DASHBOARD):
        grid = panel["gridPos"]
        cells = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        assert not cells & taken, f"{panel['title']} overlaps another panel"
        taken |= cells


def test_template_variables_read_exported_metrics() -> None:
    queries = [
        v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
        for v in DASHBOARD["templating"]["list"]
        if v["type"] == "query"
    ]
    assert queries
    for query in queries:
        assert label_values_metric(query) and label_values_metric(query) <= EXPORTED, query


def test_alert_rules_read_only_exported_metrics() -> None:
    values = {"metrics": {"prometheusRule": {"enabled": True}}}
    rule = render(values, api_versions=(PROMETHEUS_OPERATOR,)).one("PrometheusRule")
    expressions = [r["expr"] for group in rule["spec"]["groups"] for r in group["rules"]]
    assert expressions
    for expression in expressions:
        assert metric_names(expression) <= EXPORTED | PROMETHEUS_SERIES, expression


def test_the_dashboard_ships_in_the_config_map_unchanged() -> None:
    config_map = render({"dashboards": {"enabled": True}}).one("ConfigMap")
    assert json.loads(config_map["data"]["corral.json"]) == DASHBOARD
