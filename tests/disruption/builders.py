"""Builders for disruption tests: `signal_node("n1").spot().taint(KEY).obj()`, `worker_pod(...)`."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


class SignalNode:
    """A Node dict with the signals under test; Ready unless told otherwise."""

    def __init__(self, name: str):
        self._meta: dict[str, Any] = {"name": name, "labels": {}, "annotations": {}}
        self._spec: dict[str, Any] = {}
        self._conditions: list[dict[str, Any]] = [{"type": "Ready", "status": "True"}]

    def spot(self, label: str = "karpenter.sh/capacity-type", value: str = "spot") -> SignalNode:
        self._meta["labels"][label] = value
        return self

    def label(self, key: str, value: str) -> SignalNode:
        self._meta["labels"][key] = value
        return self

    def annotate(self, key: str, value: str) -> SignalNode:
        self._meta["annotations"][key] = value
        return self

    def taint(
        self, key: str, value: str = "", effect: str = "NoSchedule", added: str | None = None
    ) -> SignalNode:
        taint: dict[str, Any] = {"key": key, "effect": effect}
        if value:
            taint["value"] = value
        if added:
            taint["timeAdded"] = added
        self._spec.setdefault("taints", []).append(taint)
        return self

    def cordoned(self) -> SignalNode:
        self._spec["unschedulable"] = True
        return self

    def ready(
        self, status: str, reason: str = "", message: str = "", since: str = ""
    ) -> SignalNode:
        condition: dict[str, Any] = {"type": "Ready", "status": status}
        if reason:
            condition["reason"] = reason
        if message:
            condition["message"] = message
        if since:
            condition["lastTransitionTime"] = since
        self._conditions[0] = condition
        return self

    def condition(self, type_: str, status: str = "True", since: str = "") -> SignalNode:
        condition = {"type": type_, "status": status}
        if since:
            condition["lastTransitionTime"] = since
        self._conditions.append(condition)
        return self

    def raw_spec(self, **fields: Any) -> SignalNode:
        self._spec.update(fields)
        return self

    def obj(self) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": copy.deepcopy(self._meta),
            "spec": copy.deepcopy(self._spec),
            "status": {"conditions": copy.deepcopy(self._conditions)},
        }


def signal_node(name: str = "n1") -> SignalNode:
    return SignalNode(name)


def worker_pod(
    name: str,
    *,
    node: str | None = "n1",
    namespace: str = "default",
    annotations: dict[str, str] | None = None,
    conditions: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "annotations": annotations or {}},
        "spec": {"nodeName": node} if node else {},
        "status": {"phase": "Running", "conditions": conditions or []},
    }
