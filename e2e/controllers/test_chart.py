"""The Helm chart: it renders, its objects pass the real API server (restricted pod security
included), and its RBAC is enough for the operator to do its whole job — and no more."""

from __future__ import annotations

import base64
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from builders import node, training_job
from corral.localfleet import binaries
from harness import Cluster, ManagedProcess
from harness.cluster import REPO
from operator_support import Jobs, MakePool, free_port, render_chart

RELEASE = "corral"


def render(namespace: str) -> list[dict[str, Any]]:
    """The operator's objects (the tenant-facing admission policy and user roles are cluster-wide
    and tested on their own in e2e/test_admission_policy.py)."""
    return render_chart(
        RELEASE,
        namespace,
        "--set",
        "admissionPolicy.enabled=false",
        "--set",
        "userRoles.enabled=false",
    )


def token_kubeconfig(cluster: Cluster, namespace: str, account: str, path: Path) -> Path:
    admin = yaml.safe_load(cluster.kubeconfig.read_text())
    context = next(c for c in admin["contexts"] if c["name"] == admin["current-context"])["context"]
    server = next(c for c in admin["clusters"] if c["name"] == context["cluster"])["cluster"]
    token = cluster.kubectl("create", "token", account, "-n", namespace, "--duration=1h").strip()
    cluster_entry = {"server": server["server"]}
    if "certificate-authority-data" in server:
        cluster_entry["certificate-authority-data"] = server["certificate-authority-data"]
    elif "certificate-authority" in server:
        ca = Path(server["certificate-authority"]).read_bytes()
        cluster_entry["certificate-authority-data"] = base64.b64encode(ca).decode()
    else:
        cluster_entry["insecure-skip-tls-verify"] = True
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": cluster_entry}],
        "users": [{"name": account, "user": {"token": token}}],
        "contexts": [{"name": "sa", "context": {"cluster": "c", "user": account}}],
        "current-context": "sa",
    }
    path.write_text(yaml.safe_dump(config))
    return path


def test_chart_renders_the_generated_crds_and_a_restricted_deployment(namespace: str) -> None:
    docs = render(namespace)
    kinds = sorted(doc["kind"] for doc in docs)
    assert kinds == [
        "ClusterRole", "ClusterRoleBinding", "Deployment", "PodDisruptionBudget", "Role",
        "RoleBinding", "Service", "ServiceAccount",
    ]  # fmt: skip
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    container = pod["containers"][0]
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    role = next(d for d in docs if d["kind"] == "ClusterRole")
    resources = {r for rule in role["rules"] for r in rule["resources"]}
    assert "secrets" not in resources and "*" not in resources
    verbs = {v for rule in role["rules"] for v in rule["verbs"]}
    assert "*" not in verbs


def test_chart_objects_pass_the_api_server_under_restricted_pod_security(
    cluster: Cluster, namespace: str
) -> None:
    cluster.kubectl(
        "label",
        "namespace",
        namespace,
        "pod-security.kubernetes.io/enforce=restricted",
        "pod-security.kubernetes.io/warn=restricted",
    )
    manifest = yaml.safe_dump_all(render(namespace))
    done = cluster.kubectl.run("apply", "--dry-run=server", "-f", "-", input=manifest)
    assert "would violate PodSecurity" not in done.stderr, done.stderr


def test_helm_install_with_default_values_rolls_out_under_restricted_pod_security(
    cluster: Cluster, namespace: str
) -> None:
    """`helm install` as a user runs it: CRDs already present (Helm skips them), schema checked,
    every object accepted, the operator pod admitted under `restricted` and rolled out (kwok
    runs the pod: the image is never pulled here)."""
    cluster.kubectl(
        "label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted"
    )
    helm = binaries.ensure(only=["helm"], log=lambda _: None)["helm"]
    release = f"chart-{namespace[-4:]}"  # cluster-scoped names follow the release

    def run_helm(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(helm), *args, "--namespace", namespace, "--kubeconfig", str(cluster.kubeconfig)],
            capture_output=True,
            text=True,
            check=False,
            timeout=180,
        )

    installed = run_helm(
        "install", release, str(REPO / "charts" / "corral"), "--wait", "--timeout", "120s"
    )
    try:
        assert installed.returncode == 0, installed.stderr
        deployment = cluster.kubectl.json("get", "deployment", f"{release}-corral", "-n", namespace)
        assert deployment["status"].get("availableReplicas") == 2, deployment["status"]
        pods = cluster.kubectl.json(
            "get", "pods", "-n", namespace, "-l", f"app.kubernetes.io/instance={release}"
        )["items"]
        assert [p["spec"]["serviceAccountName"] for p in pods] == [f"{release}-corral"] * 2
    finally:
        uninstalled = run_helm("uninstall", release, "--wait", "--timeout", "60s")
        assert uninstalled.returncode == 0, uninstalled.stderr
    assert (
        cluster.kubectl(
            "get", "clusterrole", f"{release}-corral", "--ignore-not-found", "-o", "name"
        )
        == ""
    )


def test_operator_does_its_job_with_only_the_charts_rbac(
    cluster: Cluster,
    namespace: str,
    make_pool: MakePool,
    jobs: Jobs,
    spawn: Callable[..., ManagedProcess],
    tmp_path: Path,
) -> None:
    docs = [
        d
        for d in render(namespace)
        if d["kind"]
        in ("ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")
    ]
    for doc in docs:  # cluster-scoped names are made unique to this test
        if doc["kind"] in ("ClusterRole", "ClusterRoleBinding"):
            doc["metadata"]["name"] = f"{namespace}-corral"
        if doc["kind"] == "ClusterRoleBinding":
            doc["roleRef"]["name"] = f"{namespace}-corral"
    cluster.kubectl.run("apply", "-f", "-", input=yaml.safe_dump_all(docs))
    account = next(d for d in docs if d["kind"] == "ServiceAccount")["metadata"]["name"]
    try:
        who = f"system:serviceaccount:{namespace}:{account}"
        assert (
            cluster.kubectl.run(
                "auth", "can-i", "list", "secrets", "--as", who, "-A", check=False
            ).stdout.strip()
            == "no"
        )
        assert (
            cluster.kubectl.run(
                "auth", "can-i", "update", "trainingjobs.corral.dev", "--as", who, "-A", check=False
            ).stdout.strip()
            == "no"
        )
        kubeconfig = token_kubeconfig(cluster, namespace, account, tmp_path / "sa.kubeconfig")
        pool = make_pool([node("h1").rack("r1"), node("h2").rack("r1")])
        # No admin $KUBECONFIG around: kopf's own login, too, must use the ServiceAccount's.
        process = spawn(
            [
                "env",
                "-u",
                "KUBECONFIG",
                sys.executable,
                "-m",
                "corral",
                "run",
                f"--kubeconfig={kubeconfig}",
                f"--metrics-port={free_port()}",
                f"--health-port={free_port()}",
                # The chart's Lease Role: leader election works with it alone.
                "--leader-elect",
                f"--leader-election-namespace={namespace}",
                "--leader-election-id=corral",
            ],
            name="corral-sa",
        )
        process.wait_for_log(r"cache seeded", timeout=60)
        process.wait_for_log(r"leading \(Lease", timeout=30)
        jobs.create(training_job("rbac", namespace).workers(2).gpus(8).pool(pool).obj())
        status = jobs.wait_phase("rbac", "Running")
        assert len(status["placement"]["nodes"]) == 2
        assert "Placed" in jobs.event_reasons("rbac")
        # An RBAC denial reads `... is forbidden: User "system:serviceaccount:..." cannot ...`.
        logs = process.logs()
        assert f'User "{who}" cannot' not in logs
        # kopf words a denied watch its own way ("Not enough permissions to watch ...").
        assert "permission" not in logs.lower() and "forbidden" not in logs.lower(), logs
    finally:
        for kind in ("clusterrolebinding", "clusterrole"):
            cluster.kubectl.run(
                "delete", kind, f"{namespace}-corral", "--ignore-not-found", check=False
            )
