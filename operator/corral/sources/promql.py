"""The PromQL the autoscaler asks, built from an InferenceService's spec and its pods.

Pure string building (tested without a server). Every query selects the service's own pods
(`namespace="<ns>"`, `pod=~"<pod>|<pod>"`, label names from the spec) plus the spec's
selectors, and reads the standard `_bucket`, `_sum` and `_count` series of each histogram.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from corral.api.inferenceservice import Objective, PrometheusSource


@dataclass(frozen=True)
class Scope:
    """Which series belong to one InferenceService."""

    namespace: str
    pods: tuple[str, ...]
    source: PrometheusSource

    def matchers(self, extra: str | None = None) -> str:
        parts: list[str] = []
        if self.source.namespace_label:
            parts.append(f'{self.source.namespace_label}="{_quote(self.namespace)}"')
        if self.source.pod_label:
            alternatives = "|".join(_regex_literal(pod) for pod in sorted(self.pods)) or "^$"
            parts.append(f'{self.source.pod_label}=~"{alternatives}"')
        for selector in (self.source.selector, extra):
            if selector and selector.strip():
                parts.append(selector.strip().strip("{}").strip().rstrip(","))
        return "{" + ", ".join(parts) + "}"

    @property
    def window(self) -> str:
        return f"{self.source.window_seconds}s"


def buckets(scope: Scope, objective: Objective) -> str:
    sel = scope.matchers(objective.selector)
    return f"sum by (le) (increase({objective.histogram}_bucket{sel}[{scope.window}]))"


def total_sum(scope: Scope, objective: Objective) -> str:
    sel = scope.matchers(objective.selector)
    return f"sum(increase({objective.histogram}_sum{sel}[{scope.window}]))"


def reporting(scope: Scope, objective: Objective) -> str | None:
    """How many pods have this histogram's series in the window (None: no pod label)."""
    if not scope.source.pod_label:
        return None
    sel = scope.matchers(objective.selector)
    label = scope.source.pod_label
    return (
        f"count(count by ({label}) "
        f"(count_over_time({objective.histogram}_count{sel}[{scope.window}])))"
    )


def reporting_now(scope: Scope, objective: Objective) -> str | None:
    """How many pods have this histogram's series at the window's end: a series that vanished
    gets a staleness marker at the next scrape and leaves the instant vector, while its samples
    still count in `reporting` until they leave the window (None: no pod label)."""
    if not scope.source.pod_label:
        return None
    sel = scope.matchers(objective.selector)
    return f"count(count by ({scope.source.pod_label}) ({objective.histogram}_count{sel}))"


def request_rates(scope: Scope, objective: Objective, step: float) -> str:
    """Requests/s in steps across the window (a range query), for bursts inside it."""
    sel = scope.matchers(objective.selector)
    return f"sum(rate({objective.histogram}_count{sel}[{_seconds(2 * step)}]))"


def gauge_average(scope: Scope, gauge: str) -> str:
    return f"sum(avg_over_time({gauge}{scope.matchers()}[{scope.window}]))"


def gauge_now(scope: Scope, gauge: str) -> str:
    return f"sum({gauge}{scope.matchers()})"


def gauge_change(scope: Scope, gauge: str) -> str:
    return f"sum(delta({gauge}{scope.matchers()}[{scope.window}]))"


def queueing(objectives: Sequence[Objective]) -> list[Objective]:
    return [o for o in objectives if o.type != "InterTokenLatency"]


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _regex_literal(value: str) -> str:
    # Pod names are DNS subdomains ([a-z0-9.-]): only the dot means something to RE2. Escaped
    # for the regex, then the backslash for the PromQL string.
    return _quote(value.replace(".", "\\."))


def _seconds(value: float) -> str:
    return f"{max(1, round(value))}s"
