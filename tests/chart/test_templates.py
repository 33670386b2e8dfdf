"""What the chart renders for several value sets, asserted on the parsed objects (in the spirit
of helm-unittest)."""

from __future__ import annotations

import pytest
from tests.chart.helm import NAMESPACE, PROMETHEUS_OPERATOR, render


def test_defaults_render_a_restricted_operator_with_least_privilege() -> None:
    chart = render()
    assert chart.kinds() == [
        "ClusterRole", "ClusterRole", "ClusterRole", "ClusterRoleBinding", "Deployment",
        "PodDisruptionBudget", "Role", "RoleBinding", "Service", "ServiceAccount",
        "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding",
    ]  # fmt: skip
    deployment = chart.one("Deployment")
    assert deployment["metadata"]["namespace"] == NAMESPACE
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert "hostNetwork" not in pod and "priorityClassName" not in pod
    container = chart.container()
    assert container["image"] == "ghcr.io/corral-dev/corral:0.1.0"
    assert container["args"] == [
        "run", "--metrics-port=8080", "--health-port=8081", "--leader-elect",
        f"--leader-election-namespace={NAMESPACE}", "--leader-election-id=corral",
        "--log-level=info",
    ]  # fmt: skip
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    # kopf takes its identity from POD_ID; without it, it looks the UID up in /etc/passwd.
    assert {"name": "POD_ID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}} in (
        container["env"]
    )
    assert chart.one("ServiceAccount")["metadata"]["name"] == "corral"


def test_the_cluster_role_grants_no_secrets_no_wildcards_and_no_spec_writes() -> None:
    role = next(
        o
        for o in render().objects
        if o["kind"] == "ClusterRole" and o["metadata"]["name"] == "corral"
    )
    rules = role["rules"]
    resources = {r for rule in rules for r in rule["resources"]}
    verbs = {v for rule in rules for v in rule["verbs"]}
    assert "secrets" not in resources and "*" not in resources and "*" not in verbs
    for rule in rules:
        if "corral.dev" in rule["apiGroups"]:
            writes = set(rule["verbs"]) & {"create", "update", "patch", "delete"}
            assert not writes or all("/" in r for r in rule["resources"]), rule


def test_log_level_reaches_the_operator() -> None:
    assert "--log-level=debug" in render({"logLevel": "debug"}).container()["args"]


def test_ports_reach_the_flags_the_probe_and_the_service() -> None:
    chart = render({"metrics": {"port": 9102}, "health": {"port": 9103}})
    container = chart.container()
    assert {"--metrics-port=9102", "--health-port=9103"} <= set(container["args"])
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {
        "metrics": 9102,
        "health": 9103,
    }
    assert container["livenessProbe"]["httpGet"]["port"] == "health"
    assert chart.one("Service")["spec"]["ports"][0]["port"] == 9102
    annotations = chart.one("Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == "9102"


def test_scheduling_values_are_rendered_as_data() -> None:
    values = {
        "priorityClassName": "system-cluster-critical",
        "nodeSelector": {"node-role.kubernetes.io/control-plane": ""},
        "tolerations": [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}],
        "affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": []}},
        "podAnnotations": {"example.com/owner": "platform: gpu", "prometheus.io/scrape": "false"},
        "podLabels": {"team": "platform", "app.kubernetes.io/name": "impostor"},
        "imagePullSecrets": [{"name": "regcred"}],
    }
    pod = render(values).one("Deployment")["spec"]["template"]
    spec = pod["spec"]
    assert spec["priorityClassName"] == "system-cluster-critical"
    assert spec["nodeSelector"] == values["nodeSelector"]
    assert spec["tolerations"] == values["tolerations"]
    assert spec["affinity"] == values["affinity"]
    assert spec["imagePullSecrets"] == [{"name": "regcred"}]
    # A user annotation wins over the chart's; a user label never replaces a selector label.
    assert pod["metadata"]["annotations"]["example.com/owner"] == "platform: gpu"
    assert pod["metadata"]["annotations"]["prometheus.io/scrape"] == "false"
    assert pod["metadata"]["labels"]["team"] == "platform"
    assert pod["metadata"]["labels"]["app.kubernetes.io/name"] == "corral"


def test_image_by_tag_or_by_digest() -> None:
    assert render({"image": {"tag": "0.2.0"}}).container()["image"].endswith("corral:0.2.0")
    digest = "sha256:" + "0123456789abcdef" * 4
    image = render({"image": {"tag": "ignored", "digest": digest}}).container()["image"]
    assert image == f"ghcr.io/corral-dev/corral@{digest}"


def test_an_existing_service_account() -> None:
    chart = render({"serviceAccount": {"create": False, "name": "corral-existing"}})
    assert not chart.has("ServiceAccount")
    pod = chart.one("Deployment")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "corral-existing"
    subject = chart.one("ClusterRoleBinding")["subjects"][0]
    assert subject == {"kind": "ServiceAccount", "name": "corral-existing", "namespace": NAMESPACE}


@pytest.mark.parametrize(
    ("release", "name"), [("corral", "corral"), ("gpu", "gpu-corral"), ("my-corral", "my-corral")]
)
def test_object_names_follow_the_release(release: str, name: str) -> None:
    chart = render(release=release)
    assert chart.one("Deployment")["metadata"]["name"] == name
    assert chart.one("Service")["metadata"]["name"] == f"{name}-metrics"


def test_no_metrics_service_when_disabled() -> None:
    assert not render({"metrics": {"service": False}}).has("Service")


MONITORING = {"metrics": {"serviceMonitor": {"enabled": True}, "prometheusRule": {"enabled": True}}}


def test_service_monitor_and_rules_need_the_value_and_the_prometheus_operator_api() -> None:
    assert not render(MONITORING).has("ServiceMonitor")  # the API is not served
    assert not render(MONITORING).has("PrometheusRule")
    assert not render(api_versions=(PROMETHEUS_OPERATOR,)).has("ServiceMonitor")  # not enabled
    chart = render(MONITORING, api_versions=(PROMETHEUS_OPERATOR,))
    monitor = chart.one("ServiceMonitor")
    service = chart.one("Service")
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == service["spec"]["ports"][0]["name"] == "metrics"
    # Workload metrics carry their own `namespace` label; the target's must not overwrite it.
    assert endpoint["honorLabels"] is True
    assert chart.one("PrometheusRule")["spec"]["groups"][0]["rules"]


def test_service_monitor_labels_let_a_prometheus_select_it() -> None:
    values = {"metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "kps"}}}}
    monitor = render(values, api_versions=(PROMETHEUS_OPERATOR,)).one("ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "kps"


def test_queue_threshold_reaches_the_alert() -> None:
    values = {"metrics": {"prometheusRule": {"enabled": True, "queuedTooLongMinutes": 90}}}
    rule = render(values, api_versions=(PROMETHEUS_OPERATOR,)).one("PrometheusRule")
    alerts = {r["alert"]: r for r in rule["spec"]["groups"][0]["rules"]}
    assert "[90m:1m]" in alerts["CorralJobsQueuedTooLong"]["expr"]


def test_dashboard_config_map_carries_the_sidecar_label() -> None:
    assert not render().has("ConfigMap")
    config_map = render({"dashboards": {"enabled": True}}).one("ConfigMap")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert config_map["metadata"]["namespace"] == NAMESPACE
    assert list(config_map["data"]) == ["corral.json"]
    other = render({"dashboards": {"enabled": True, "namespace": "monitoring"}}).one("ConfigMap")
    assert other["metadata"]["namespace"] == "monitoring"


def test_namespace_object_only_on_request() -> None:
    assert not render().has("Namespace")
    namespace = render({"namespace": {"create": True}}).one("Namespace")
    assert namespace["metadata"]["name"] == NAMESPACE
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_leader_election_rbac_is_one_namespaced_lease_and_a_budget_keeps_a_replica() -> None:
    chart = render()
    role = chart.one("Role")
    assert role["metadata"]["namespace"] == NAMESPACE
    assert role["rules"] == [
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "resourceNames": ["corral"],
            "verbs": ["get", "update"],
        },
    ]
    assert chart.one("RoleBinding")["roleRef"]["name"] == role["metadata"]["name"]
    assert chart.one("PodDisruptionBudget")["spec"]["minAvailable"] == 1


def test_one_replica_without_leader_election_is_the_old_single_operator() -> None:
    chart = render({"replicas": 1, "leaderElection": {"enabled": False}})
    assert not chart.has("Role") and not chart.has("PodDisruptionBudget")
    assert chart.one("Deployment")["spec"]["strategy"] == {"type": "Recreate"}
    assert "--leader-elect" not in chart.container()["args"]


def test_the_no_leader_alert_comes_with_leader_election_only() -> None:
    def alerts(values: dict[str, object]) -> set[str]:
        rule = render(values, api_versions=(PROMETHEUS_OPERATOR,)).one("PrometheusRule")
        return {r["alert"] for r in rule["spec"]["groups"][0]["rules"]}

    enabled = {"metrics": {"prometheusRule": {"enabled": True}}}
    assert "CorralNoLeader" in alerts(enabled)
    single = {**enabled, "replicas": 1, "leaderElection": {"enabled": False}}
    assert "CorralNoLeader" not in alerts(single)
