"""What kube-apiserver says when a ResourceQuota refuses a pod, against the real API server: Corral
tells a full quota (the job waits for it) from a pod no quota can count (the job fails) by these
words, so a change of them must fail here rather than turn waits into failures."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from corral.controllers.executor import QuotaRefused, refusal
from harness import Kubectl, KubectlError


@dataclass
class Case:
    name: str
    hard: str
    container: dict[str, object]
    refused_for_now: bool
    """True: the quota is full (passes); False: the pod cannot be counted (never passes)."""


CASES = [
    Case(
        "a full quota",
        "requests.nvidia.com/gpu=1",
        {"resources": {"requests": {"nvidia.com/gpu": "2"}, "limits": {"nvidia.com/gpu": "2"}}},
        refused_for_now=True,
    ),
    Case(
        "a quota on limits.cpu and a pod without one",
        "limits.cpu=4",
        {"resources": {}},
        refused_for_now=False,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_the_api_server_words_a_quota_refusal_as_corral_reads_it(
    kubectl: Kubectl, namespace: str, case: Case
) -> None:
    kubectl("create", "quota", "q", "-n", namespace, f"--hard={case.hard}")
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": namespace},
        "spec": {"containers": [{"name": "c", "image": "worker:1", **case.container}]},
    }
    with pytest.raises(KubectlError) as refused:
        kubectl("create", "-f", "-", input=json.dumps(pod))
    message = refused.value.stderr
    assert "is forbidden" in message, message
    assert isinstance(refusal(message), QuotaRefused) is case.refused_for_now, message
