"""The chart's ValidatingAdmissionPolicy against the real kube-apiserver (issue 9, §4): templates
asking for the host's namespaces, privileged containers, hostPath volumes or a service account
the namespace was not given are refused at `kubectl apply`; ordinary ones pass; the CEL type-checks
against Corral's CRD schemas; and the aggregated user roles grant what they say."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from harness import Cluster, Kubectl, KubectlError, wait_for
from harness.cluster import REPO
from operator_support import render_chart

EXAMPLE = yaml.safe_load((REPO / "examples" / "trainingjob-llama.yaml").read_text())
ANNOTATION = "corral.dev/allowed-service-accounts"


def training_job(namespace: str, **pod_spec: Any) -> dict[str, Any]:
    job = copy.deepcopy(EXAMPLE)
    job["metadata"] = {"name": "tj", "namespace": namespace}
    job["spec"]["template"]["spec"].update(pod_spec)
    return dict(job)


def inference_service(namespace: str, **pod_spec: Any) -> dict[str, Any]:
    container = {"name": "server", "image": "vllm:1"}
    return {
        "apiVersion": "corral.dev/v1alpha1",
        "kind": "InferenceService",
        "metadata": {"name": "cis", "namespace": namespace},
        "spec": {"replicas": 1, "template": {"spec": {"containers": [container], **pod_spec}}},
    }


def privileged(name: str = "trainer") -> dict[str, Any]:
    return {"name": name, "image": "t", "securityContext": {"privileged": True}}


def dry_run(kubectl: Kubectl, obj: dict[str, Any]) -> str | None:
    """None when the API server accepts the object, else its message."""
    try:
        kubectl("create", "--dry-run=server", "-f", "-", input=json.dumps(obj))
    except KubectlError as refused:
        return refused.stderr
    return None


@pytest.fixture
def policy(cluster: Cluster, kubectl: Kubectl, namespace: str) -> Iterator[dict[str, Any]]:
    """The chart's policy and binding, as rendered, bound to this test's namespace only."""
    docs = render_chart(
        namespace, namespace, "--set", "userRoles.enabled=false", "--show-only",
        "templates/admissionpolicy.yaml",
    )  # fmt: skip
    policy, binding = docs
    binding["spec"]["matchResources"] = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}
    }
    kubectl.apply(yaml.safe_dump_all([policy, binding]))
    try:
        # The API server loads policies asynchronously: wait until one is enforced.
        wait_for(
            lambda: dry_run(kubectl, training_job(namespace, hostNetwork=True)),
            timeout=60,
            message="the policy refuses hostNetwork",
        )
        yield policy
    finally:
        for kind, doc in (
            ("validatingadmissionpolicybinding", binding),
            ("validatingadmissionpolicy", policy),
        ):
            kubectl.run("delete", kind, doc["metadata"]["name"], "--wait=false", check=False)


REFUSED: list[tuple[str, dict[str, Any], str]] = [
    ("hostNetwork", {"hostNetwork": True}, "hostNetwork is not allowed"),
    ("hostPID", {"hostPID": True}, "hostPID is not allowed"),
    ("hostIPC", {"hostIPC": True}, "hostIPC is not allowed"),
    ("privileged", {"containers": [privileged()]}, "privileged containers are not allowed"),
    ("privileged-init", {"initContainers": [privileged("init")]}, "privileged containers are not allowed"),
    ("hostPath", {"volumes": [{"name": "root", "hostPath": {"path": "/"}}]}, "hostPath volumes are not allowed"),
    ("service-account", {"serviceAccountName": "deployer"}, "serviceAccountName deployer is not allowed in namespace"),
    ("deprecated-service-account", {"serviceAccount": "deployer"}, "is not allowed in namespace"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("pod_spec", "fragment"), [pytest.param(s, f, id=i) for i, s, f in REFUSED]
)
def test_the_policy_refuses_what_a_tenant_must_not_ask_for(
    kubectl: Kubectl,
    namespace: str,
    policy: dict[str, Any],
    pod_spec: dict[str, Any],
    fragment: str,
) -> None:
    for obj in (training_job(namespace, **pod_spec), inference_service(namespace, **pod_spec)):
        message = dry_run(kubectl, obj)
        assert message is not None, f"{obj['kind']} with {pod_spec} was accepted"
        assert fragment in message and "ValidatingAdmissionPolicy" in message, message


def test_ordinary_templates_and_allowed_service_accounts_pass(
    kubectl: Kubectl, namespace: str, policy: dict[str, Any]
) -> None:
    unprivileged = {"name": "trainer", "image": "t", "securityContext": {"privileged": False}}
    for pod_spec in (
        {},
        {"hostNetwork": False, "containers": [unprivileged]},
        {"serviceAccountName": "default"},
        {"volumes": [{"name": "scratch", "emptyDir": {}}]},
    ):
        assert dry_run(kubectl, training_job(namespace, **pod_spec)) is None, pod_spec
    refused = dry_run(kubectl, training_job(namespace, serviceAccountName="trainer"))
    assert refused is not None and "allowed are default" in refused
    kubectl("annotate", "namespace", namespace, f"{ANNOTATION}=trainer, loader")
    wait_for(
        lambda: dry_run(kubectl, training_job(namespace, serviceAccountName="trainer")) is None,
        timeout=30,
        message="a service account the namespace annotation allows passes",
    )
    assert dry_run(kubectl, training_job(namespace, serviceAccountName="loader")) is None


def test_the_policy_type_checks_against_the_crds(kubectl: Kubectl, policy: dict[str, Any]) -> None:
    name = policy["metadata"]["name"]

    def checked() -> dict[str, Any] | None:
        status = kubectl.json("get", "validatingadmissionpolicy", name).get("status") or {}
        return status if status.get("observedGeneration") else None

    status = wait_for(checked, timeout=60, message="the API server type-checked the policy")
    assert (status.get("typeChecking") or {}).get("expressionWarnings") in (None, []), status


def test_aggregated_user_roles(cluster: Cluster, kubectl: Kubectl, namespace: str) -> None:
    roles = render_chart(
        namespace, namespace, "--set", "admissionPolicy.enabled=false", "--show-only",
        "templates/userroles.yaml",
    )  # fmt: skip
    assert sorted(r["metadata"]["name"] for r in roles) == [
        f"{namespace}-corral-editor",
        f"{namespace}-corral-viewer",
    ]
    kubectl.apply(yaml.safe_dump_all(roles))
    try:
        kubectl("create", "serviceaccount", "alice", "-n", namespace)
        kubectl(
            "create",
            "rolebinding",
            "alice-edit",
            "--clusterrole=edit",
            f"--serviceaccount={namespace}:alice",
            "-n",
            namespace,
        )
        kubectl("create", "serviceaccount", "bob", "-n", namespace)
        kubectl(
            "create",
            "rolebinding",
            "bob-view",
            "--clusterrole=view",
            f"--serviceaccount={namespace}:bob",
            "-n",
            namespace,
        )

        def can(who: str, verb: str, resource: str, subresource: str = "") -> bool:
            answer = kubectl.run(
                "auth", "can-i", verb, resource, "-n", namespace,
                *([f"--subresource={subresource}"] if subresource else []),
                "--as", f"system:serviceaccount:{namespace}:{who}", check=False,
            )  # fmt: skip
            return answer.stdout.strip() == "yes"

        wait_for(
            lambda: can("alice", "create", "trainingjobs.corral.dev"),
            timeout=30,
            message="edit aggregates the editor role",
        )
        wait_for(
            lambda: can("bob", "list", "trainingjobs.corral.dev"),
            timeout=30,
            message="view aggregates the viewer role",
        )
        assert can("alice", "patch", "inferenceservices.corral.dev", "scale")
        assert can("alice", "get", "trainingjobs.corral.dev", "status")
        assert not can("alice", "patch", "trainingjobs.corral.dev", "status"), "status is Corral's"
        assert not can("bob", "create", "trainingjobs.corral.dev")
    finally:
        for role in roles:
            kubectl.run(
                "delete", "clusterrole", role["metadata"]["name"], "--wait=false", check=False
            )
