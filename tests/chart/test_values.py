"""values.schema.json and the chart's own checks: every bad value fails `helm template` with a
message naming it, and nothing a user writes can inject YAML into the operator's pod."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.chart.helm import CHART, prerender, refusal, render

INJECTION = "x\nhostNetwork: true"

# (values, what helm's message must contain): one row per way a platform team gets a value wrong.
BAD_VALUES: dict[str, tuple[dict[str, Any], str]] = {
    "metrics port 0": ({"metrics": {"port": 0}}, "at '/metrics/port': minimum: got 0"),
    "privileged metrics port": ({"metrics": {"port": 80}}, "at '/metrics/port'"),
    "port above 65535": ({"health": {"port": 70000}}, "at '/health/port': maximum"),
    "port as a string": ({"metrics": {"port": "8080"}}, "at '/metrics/port'"),
    "same port twice": (
        {"metrics": {"port": 9000}, "health": {"port": 9000}},
        "metrics.port and health.port are both 9000",
    ),
    "priorityClassName injecting YAML": ({"priorityClassName": INJECTION}, "/priorityClassName"),
    "priorityClassName upper case": ({"priorityClassName": "High"}, "/priorityClassName"),
    "log level DEBUG": ({"logLevel": "DEBUG"}, "at '/logLevel'"),
    "log level trace": ({"logLevel": "trace"}, "at '/logLevel'"),
    "zero replicas": ({"replicas": 0}, "at '/replicas': minimum"),
    "replicas as text": ({"replicas": "2"}, "at '/replicas'"),
    "two replicas without leader election": (
        {"replicas": 2, "leaderElection": {"enabled": False}},
        "replicas 2 needs leaderElection.enabled: true",
    ),
    "unknown top-level key": ({"replica": 1}, "additional properties 'replica' not allowed"),
    "unknown nested key": ({"metrics": {"serviceMonitr": {}}}, "'serviceMonitr' not allowed"),
    "image tag injecting YAML": ({"image": {"tag": "1.0\nhostPID: true"}}, "at '/image/tag'"),
    "image repository with a tag": ({"image": {"repository": "ghcr.io/x/y:1"}}, "/image/repository"),
    "image digest not sha256": ({"image": {"digest": "md5:abc"}}, "at '/image/digest'"),
    "pull policy": ({"image": {"pullPolicy": "Sometimes"}}, "at '/image/pullPolicy'"),
    "pull secret without name": ({"imagePullSecrets": [{"nam": "x"}]}, "/imagePullSecrets/0"),
    "pull secrets as strings": ({"imagePullSecrets": ["regcred"]}, "/imagePullSecrets/0"),
    "service account name": ({"serviceAccount": {"name": "Corral SA"}}, "/serviceAccount/name"),
    "no account at all": (
        {"serviceAccount": {"create": False}},
        "set serviceAccount.name to the existing ServiceAccount",
    ),
    "pod label value injecting YAML": ({"podLabels": {"team": INJECTION}}, "/podLabels/team"),
    "pod label key": ({"podLabels": {"bad key": "x"}}, "invalid propertyName 'bad key'"),
    "annotation value not a string": ({"podAnnotations": {"a": 1}}, "/podAnnotations/a"),
    "node selector value": ({"nodeSelector": {"pool": ["a"]}}, "/nodeSelector/pool"),
    "toleration operator": ({"tolerations": [{"key": "k", "operator": "In"}]}, "/tolerations/0"),
    "toleration unknown field": ({"tolerations": [{"effect": "NoSchedule", "x": 1}]}, "/tolerations/0"),
    "affinity unknown part": ({"affinity": {"nodeAffinty": {}}}, "/affinity"),
    "resources unknown resource": ({"resources": {"limits": {"gpu": 1}}}, "invalid propertyName 'gpu'"),
    "resources bad quantity": ({"resources": {"requests": {"memory": "lots"}}}, "/resources/requests/memory"),
    "resources negative": ({"resources": {"requests": {"cpu": -1}}}, "/resources/requests/cpu"),
    "scrape interval": ({"metrics": {"serviceMonitor": {"interval": "30 seconds"}}}, "/metrics/serviceMonitor/interval"),
    "service monitor without service": (
        {"metrics": {"service": False, "serviceMonitor": {"enabled": True}}},
        "metrics.serviceMonitor.enabled needs metrics.service: true",
    ),
    "queue threshold too short": (
        {"metrics": {"prometheusRule": {"queuedTooLongMinutes": 1}}},
        "/metrics/prometheusRule/queuedTooLongMinutes",
    ),
    "dashboard namespace": ({"dashboards": {"namespace": "Monitoring"}}, "/dashboards/namespace"),
    "dashboards enabled as text": ({"dashboards": {"enabled": "yes"}}, "/dashboards/enabled"),
}  # fmt: skip


@pytest.fixture(scope="module", autouse=True)
def _render_every_value_set_at_once() -> None:
    prerender(values for values, _ in BAD_VALUES.values())


@pytest.mark.parametrize(("values", "message"), BAD_VALUES.values(), ids=BAD_VALUES.keys())
def test_bad_values_fail_with_a_message_naming_them(values: dict[str, Any], message: str) -> None:
    assert message in refusal(values)


def _leaves(tree: Any, path: str = "") -> list[str]:
    if isinstance(tree, dict) and tree:
        return [leaf for key, value in tree.items() for leaf in _leaves(value, f"{path}/{key}")]
    return [path]


def _schema_at(schema: dict[str, Any], path: str) -> dict[str, Any] | None:
    node: dict[str, Any] | None = schema
    for key in path.strip("/").split("/"):
        if node is None:
            return None
        properties = node.get("properties", {})
        if key in properties:
            node = properties[key]
        elif isinstance(node.get("additionalProperties"), dict):
            node = node["additionalProperties"]
        else:
            return None
        while node is not None and "$ref" in node:
            node = schema["definitions"][node["$ref"].rsplit("/", 1)[1]]
    return node


def test_the_schema_describes_every_default_value() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    missing = [leaf for leaf in _leaves(defaults) if _schema_at(schema, leaf) is None]
    assert missing == []


def _closed_objects(node: Any, path: str = "") -> list[str]:
    """Paths of schema objects that list their properties yet accept unknown ones."""
    open_ones = []
    if isinstance(node, dict):
        if "properties" in node and node.get("additionalProperties") is not False:
            open_ones.append(path or "/")
        for key, child in node.items():
            open_ones += _closed_objects(child, f"{path}/{key}")
    return open_ones


def test_every_object_with_known_keys_refuses_unknown_ones() -> None:
    """A typo (`serviceMonitr`) must fail, not be silently ignored."""
    schema = json.loads((CHART / "values.schema.json").read_text())
    assert _closed_objects(schema) == []


@pytest.mark.parametrize(
    "values",
    [
        {"priorityClassName": "team-high"},
        {"image": {"digest": "sha256:" + "a" * 64, "repository": "registry.local:5000/corral"}},
        {"image": {"tag": "0.2.0-rc.1"}},
        {"resources": {"requests": {"cpu": 0.5, "memory": "1Gi"}, "limits": {"cpu": "2"}}},
        {"tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]},
        {"podLabels": {"team": "platform"}, "podAnnotations": {"example.com/note": "a b: c"}},
        {"serviceAccount": {"create": False, "name": "existing"}},
        {"global": {"imageRegistry": "x"}},
    ],
    ids=lambda values: ",".join(_leaves(values)),
)
def test_good_values_render(values: dict[str, Any]) -> None:
    assert render(values).has("Deployment")


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = schema["definitions"][node["$ref"].rsplit("/", 1)[1]]
    return node


def _value_names(schema: dict[str, Any], node: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted names of the values a user sets. A group with a setting of its own (`metrics`:
    `port`) is listed by its members; one made only of Kubernetes structures (`resources`,
    `affinity`) or a map (labels) is one value."""
    names = []
    for key, child in node.get("properties", {}).items():
        if key == "global":
            continue
        child = _resolve(schema, child)
        members = [_resolve(schema, c) for c in child.get("properties", {}).values()]
        if any(m.get("type") != "object" for m in members):
            names += _value_names(schema, child, f"{prefix}{key}.")
        else:
            names.append(f"{prefix}{key}")
    return names


def test_every_value_is_documented_in_the_install_guide() -> None:
    guide = (Path(__file__).resolve().parents[2] / "docs" / "install.md").read_text()
    schema = json.loads((CHART / "values.schema.json").read_text())
    undocumented = [n for n in _value_names(schema, schema) if f"`{n}`" not in guide]
    assert undocumented == []
