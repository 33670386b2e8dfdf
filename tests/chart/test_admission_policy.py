"""The chart's tenant-facing objects: the admission policy on workload templates and the user
roles (rendered here; e2e/test_admission_policy.py runs them against a real API server)."""

from __future__ import annotations

from tests.chart.helm import refusal, render


def test_the_policy_and_its_binding_are_on_by_default() -> None:
    chart = render()
    policy = chart.one("ValidatingAdmissionPolicy")
    binding = chart.one("ValidatingAdmissionPolicyBinding")
    assert binding["spec"]["policyName"] == policy["metadata"]["name"]
    assert binding["spec"]["validationActions"] == ["Deny"]
    assert "matchResources" not in binding["spec"]
    rules = policy["spec"]["matchConstraints"]["resourceRules"]
    assert rules[0]["resources"] == ["trainingjobs", "inferenceservices"]
    messages = " ".join(
        v.get("message", v.get("messageExpression", "")) for v in policy["spec"]["validations"]
    )
    for field in (
        "hostNetwork",
        "hostPID",
        "hostIPC",
        "privileged",
        "hostPath",
        "serviceAccountName",
    ):
        assert field in messages


def test_service_accounts_exemptions_and_actions_come_from_values() -> None:
    chart = render(
        {
            "admissionPolicy": {
                "validationActions": ["Warn", "Audit"],
                "serviceAccounts": {"allowed": ["default", "trainer"]},
                "exemptNamespaces": ["platform"],
            }
        }
    )
    policy = chart.one("ValidatingAdmissionPolicy")
    accounts = next(v for v in policy["spec"]["variables"] if v["name"] == "serviceAccounts")
    assert accounts["expression"].startswith('["default","trainer"] +')
    binding = chart.one("ValidatingAdmissionPolicyBinding")
    assert binding["spec"]["validationActions"] == ["Warn", "Audit"]
    assert binding["spec"]["matchResources"]["namespaceSelector"]["matchExpressions"] == [
        {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["platform"]}
    ]


def test_values_that_would_break_the_policy_are_refused() -> None:
    assert "validationActions" in refusal(
        {"admissionPolicy": {"validationActions": ["Deny", "Warn"]}}
    )
    # A value is pasted into CEL: only names are allowed.
    assert "allowed" in refusal(
        {"admissionPolicy": {"serviceAccounts": {"allowed": ["a'] + ['x"]}}}
    )


def test_both_can_be_turned_off() -> None:
    chart = render({"admissionPolicy": {"enabled": False}, "userRoles": {"enabled": False}})
    assert not chart.has("ValidatingAdmissionPolicy")
    assert [o["metadata"]["name"] for o in chart.objects if o["kind"] == "ClusterRole"] == [
        "corral"
    ]


def test_user_roles_aggregate_and_never_write_status() -> None:
    roles = {o["metadata"]["name"]: o for o in render().objects if o["kind"] == "ClusterRole"}
    editor, viewer = roles["corral-editor"], roles["corral-viewer"]
    assert editor["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-edit"] == "true"
    assert viewer["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-view"] == "true"
    for role in (editor, viewer):
        for rule in role["rules"]:
            if any(r.endswith("/status") for r in rule["resources"]):
                assert rule["verbs"] == ["get"], rule
            assert "gpupools" not in rule["resources"] or set(rule["verbs"]) <= {
                "get",
                "list",
                "watch",
            }
