"""The Prometheus series of InferenceServices: replicas, each objective's latency and attainment
against its target, the request rate and size changes (the chart's dashboard and SLO alert read
them).

Series are labelled by service; every label set exported for a service is remembered, so that
a deleted service, or an objective removed from one, leaves no stale series behind.
"""

from __future__ import annotations

import contextlib

from prometheus_client import Gauge

from corral import metrics
from corral.autoscaling.autoscaler import Decision

Labels = tuple[str, ...]


class ServiceMetrics:
    def __init__(self) -> None:
        self._exported: dict[tuple[str, str], set[tuple[Gauge, Labels]]] = {}

    def replicas(self, namespace: str, name: str, desired: int, live: int, ready: int) -> None:
        for state, count in (("desired", desired), ("live", live), ("ready", ready)):
            self._set(metrics.INFERENCE_REPLICAS, (namespace, name, state), count)

    def decided(self, namespace: str, name: str, decision: Decision, previous: int) -> None:
        """One autoscaler decision: its figures, and the size change it made (if any)."""
        if decision.replicas != previous:
            direction = "up" if decision.replicas > previous else "down"
            metrics.INFERENCE_SCALINGS.labels(namespace, name, direction).inc()
        rate = (namespace, name)
        if decision.arrival_rate is None:
            self._drop(metrics.INFERENCE_REQUEST_RATE, rate)
        else:
            self._set(metrics.INFERENCE_REQUEST_RATE, rate, decision.arrival_rate)
        wanted: set[tuple[Gauge, Labels]] = {(metrics.INFERENCE_REQUEST_RATE, rate)}
        for report in decision.objectives:
            labels: Labels = (namespace, name, report.name)
            self._set(metrics.INFERENCE_OBJECTIVE, labels, report.target)
            self._set(metrics.INFERENCE_ATTAINMENT_TARGET, labels, report.percentile / 100)
            wanted |= {(metrics.INFERENCE_OBJECTIVE, labels)}
            wanted |= {(metrics.INFERENCE_ATTAINMENT_TARGET, labels)}
            # Not observed this window (no requests, metrics missing): absent, not stale.
            for gauge, value in (
                (metrics.INFERENCE_LATENCY, report.observed),
                (metrics.INFERENCE_ATTAINMENT, report.attainment),
            ):
                if value is not None:
                    self._set(gauge, labels, value)
                    wanted.add((gauge, labels))
        exported = self._exported.get((namespace, name), set())
        for gauge, labels in list(exported):
            if gauge is not metrics.INFERENCE_REPLICAS and (gauge, labels) not in wanted:
                self._drop(gauge, labels)

    def forget(self, namespace: str, name: str) -> None:
        """The service is gone: none of its series remain."""
        for gauge, labels in self._exported.pop((namespace, name), set()):
            gauge.remove(*labels)
        for direction in ("up", "down"):
            with contextlib.suppress(KeyError):  # never scaled that way
                metrics.INFERENCE_SCALINGS.remove(namespace, name, direction)

    def autoscaling_stopped(self, namespace: str, name: str) -> None:
        """`spec.replicas` fixes the size: only the replica counts remain true."""
        for gauge, labels in list(self._exported.get((namespace, name), set())):
            if gauge is not metrics.INFERENCE_REPLICAS:
                self._drop(gauge, labels)

    def _set(self, gauge: Gauge, labels: Labels, value: float) -> None:
        gauge.labels(*labels).set(value)
        self._exported.setdefault((labels[0], labels[1]), set()).add((gauge, labels))

    def _drop(self, gauge: Gauge, labels: Labels) -> None:
        exported = self._exported.get((labels[0], labels[1]))
        if exported is not None and (gauge, labels) in exported:
            exported.discard((gauge, labels))
            gauge.remove(*labels)
