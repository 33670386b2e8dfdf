"""The PromQL Corral asks: its own pods, the spec's selectors, the standard histogram series."""

from __future__ import annotations

from corral.api.inferenceservice import Objective, PrometheusSource
from corral.sources import promql

SOURCE = PrometheusSource(url="http://prom:9090", selector='model_name="llama"')
TTFT = Objective(
    name="ttft",
    histogram="vllm:time_to_first_token_seconds",
    type="TimeToFirstToken",
    latency_ms=500,
)


def scope(**fields: object) -> promql.Scope:
    source = SOURCE.model_copy(update=fields)
    return promql.Scope("team-a", ("chat-7d9f-x1", "chat-7d9f-x2"), source)


def test_buckets_select_the_services_pods_and_the_spec_selector() -> None:
    assert promql.buckets(scope(), TTFT) == (
        "sum by (le) (increase(vllm:time_to_first_token_seconds_bucket"
        '{namespace="team-a", pod=~"chat-7d9f-x1|chat-7d9f-x2", model_name="llama"}[60s]))'
    )


def test_objective_selector_and_custom_labels() -> None:
    objective = TTFT.model_copy(update={"selector": '{engine="0"}'})
    query = promql.total_sum(scope(pod_label="kubernetes_pod_name", namespace_label=""), objective)
    assert query == (
        "sum(increase(vllm:time_to_first_token_seconds_sum"
        '{kubernetes_pod_name=~"chat-7d9f-x1|chat-7d9f-x2", model_name="llama", engine="0"}[60s]))'
    )


def test_pod_matching_off_leaves_the_selector_to_isolate_the_service() -> None:
    assert promql.reporting(scope(pod_label=""), TTFT) is None
    assert "pod=~" not in promql.buckets(scope(pod_label=""), TTFT)


def test_pod_names_are_regex_literals_and_no_pods_match_nothing() -> None:
    dotted = promql.Scope("ns", ("a.b",), SOURCE)
    assert 'pod=~"a\\\\.b"' in promql.buckets(dotted, TTFT)
    empty = promql.Scope("ns", (), SOURCE)
    assert 'pod=~"^$"' in promql.buckets(empty, TTFT)


def test_reporting_counts_pods_with_series_in_the_window() -> None:
    assert promql.reporting(scope(), TTFT) == (
        "count(count by (pod) (count_over_time(vllm:time_to_first_token_seconds_count"
        '{namespace="team-a", pod=~"chat-7d9f-x1|chat-7d9f-x2", model_name="llama"}[60s])))'
    )


def test_reporting_now_counts_pods_with_series_at_the_windows_end() -> None:
    assert promql.reporting_now(scope(), TTFT) == (
        "count(count by (pod) (vllm:time_to_first_token_seconds_count"
        '{namespace="team-a", pod=~"chat-7d9f-x1|chat-7d9f-x2", model_name="llama"}))'
    )
    assert promql.reporting_now(scope(pod_label=""), TTFT) is None


def test_gauges_average_and_change_over_the_window() -> None:
    s = scope()
    assert promql.gauge_average(s, "vllm:num_requests_running").startswith(
        "sum(avg_over_time(vllm:num_requests_running{"
    )
    assert promql.gauge_change(s, "vllm:num_requests_waiting").startswith(
        "sum(delta(vllm:num_requests_waiting{"
    )
