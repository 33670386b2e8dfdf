"""What kube-scheduler 1.36 does with `status.nominatedNodeName` on pods it has not bound yet.

Corral plans a gang, creates its workers gated (`corral.dev/placement`) with a required node
affinity, and ungates them once all exist. Between the plan and the bind, the only way to tell
kube-scheduler "this room is taken" without binding is a nomination: `status.nominatedNodeName`,
written through the pods/status subresource (KEP-5278, gate NominatedNodeNameForExpectation,
beta and on by default since 1.35). These tests pin down, on the real kube-scheduler, when a
nomination keeps other pods out and when it does not, so a Kubernetes upgrade that changes it
fails here rather than in a customer's cluster. Each test brings its own 8-GPU kwok node (the
"room"); every case runs on the default control plane and on one with Kubernetes' alpha gang
scheduling switched on. docs/training.md ("Reservations") quotes these outcomes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from builders import node
from corral.localfleet.cluster import is_schedulable
from harness import Cluster, wait_for
from operator_support import ensure_priority_classes, ignore_404

GPU = "nvidia.com/gpu"
GATE = "corral.dev/placement"


@pytest.fixture(params=["default", "upstream-gang"])
def fleet(request: pytest.FixtureRequest) -> Cluster:
    """Each case on the default control plane and on one with the alpha gang scheduling gates."""
    name = "cluster" if request.param == "default" else "upstream_cluster"
    handle: Cluster = request.getfixturevalue(name)
    return handle


@dataclass
class Room:
    """One 8-GPU node of the test's own, and pods pinned to it."""

    cluster: Cluster
    namespace: str
    node: str

    def pod(self, name: str, *, gated: bool = False, priority: str = "") -> dict[str, Any]:
        spec: dict[str, Any] = {
            "nodeSelector": {"kubernetes.io/hostname": self.node},
            "terminationGracePeriodSeconds": 0,
            "containers": [
                {
                    "name": "main",
                    "image": "registry.example/worker:1",
                    "resources": {"limits": {GPU: "8"}, "requests": {"cpu": "1"}},
                }
            ],
        }
        if gated:
            spec["schedulingGates"] = [{"name": GATE}]
        if priority:
            spec["priorityClassName"] = f"e2e-reservations-{priority}"
        body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}
        created: dict[str, Any] = self.cluster.api.sanitize_for_serialization(
            self.cluster.core.create_namespaced_pod(self.namespace, body)
        )
        return created

    def read(self, name: str) -> Any:
        return self.cluster.core.read_namespaced_pod(name, self.namespace)

    def nominate(self, name: str, node_name: str | None = None) -> Any:
        """What Corral would do: write the nomination through pods/status."""
        return self.cluster.core.patch_namespaced_pod_status(
            name, self.namespace, {"status": {"nominatedNodeName": node_name or self.node}}
        )

    def clear_nomination(self, name: str) -> Any:
        return self.cluster.core.patch_namespaced_pod_status(
            name, self.namespace, {"status": {"nominatedNodeName": None}}
        )

    def ungate(self, name: str) -> None:
        self.cluster.core.patch_namespaced_pod(
            name, self.namespace, [{"op": "remove", "path": "/spec/schedulingGates"}]
        )

    def outcome(self, name: str) -> str | None:
        """ "bound" once kube-scheduler bound the pod, "unschedulable: <message>" once it
        reported that it cannot, None while it has not decided yet."""
        pod = self.read(name)
        if pod.spec.node_name:
            return "bound"
        scheduled = next((c for c in pod.status.conditions or [] if c.type == "PodScheduled"), None)
        if scheduled is not None and scheduled.reason == "Unschedulable":
            return f"unschedulable: {scheduled.message}"
        return None

    def wait_outcome(self, name: str, timeout: float = 20) -> str:
        result: str = wait_for(
            lambda: self.outcome(name), timeout=timeout, message=f"kube-scheduler decided {name}"
        )
        return result


@pytest.fixture
def room(fleet: Cluster, request: pytest.FixtureRequest) -> Iterator[Room]:
    ensure_priority_classes(fleet)
    namespace = fleet.create_namespace(request.node.name)
    body = node(f"{namespace}-h1").gpus(8).obj()
    fleet.core.create_node(body)
    name = body["metadata"]["name"]
    try:
        # Ready is not enough: kube-apiserver taints a new node not-ready until
        # kube-controller-manager has seen it Ready, and kube-scheduler honours the taint.
        wait_for(
            lambda: is_schedulable(
                fleet.api.sanitize_for_serialization(fleet.core.read_node(name))
            ),
            timeout=30,
            message=f"node {name} Ready and untainted",
        )
        yield Room(fleet, namespace, name)
    finally:
        fleet.delete_namespace(namespace)
        ignore_404(lambda: fleet.core.delete_node(name))
        fleet.check_health()


# --- does a nomination keep others out? -------------------------------------------------------


@pytest.mark.parametrize(
    ("worker", "intruder", "nominated", "expected"),
    [
        pytest.param("", "", True, "unschedulable", id="equal-priority-kept-out"),
        pytest.param("high", "low", True, "unschedulable", id="lower-priority-kept-out"),
        pytest.param("low", "high", True, "bound", id="higher-priority-gets-in"),
        pytest.param("", "", False, "bound", id="control-no-nomination"),
    ],
)
def test_a_gated_pod_nominated_through_pods_status_reserves_its_node(
    room: Room, worker: str, intruder: str, nominated: bool, expected: str
) -> None:
    room.pod("worker", gated=True, priority=worker)
    if nominated:
        answer = room.nominate("worker")
        assert answer.status.nominated_node_name == room.node  # the API server keeps it
    room.pod("intruder", priority=intruder)

    outcome = room.wait_outcome("intruder")

    assert outcome.split(":")[0] == expected, outcome
    if expected == "unschedulable":
        assert "Insufficient nvidia.com/gpu" in outcome
    assert room.outcome("worker") is None  # still gated: kube-scheduler never looks at it


def test_a_nomination_in_the_create_body_is_dropped(room: Room) -> None:
    """The API server resets status on create: only pods/status can nominate."""
    created = room.pod("worker", gated=True)
    with_status = room.cluster.core.create_namespaced_pod(
        room.namespace,
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "with-status"},
            "spec": created["spec"],
            "status": {"nominatedNodeName": room.node},
        },
    )
    assert not with_status.status.nominated_node_name
    room.pod("intruder")
    assert room.wait_outcome("intruder") == "bound"


# --- from ungate to bind ----------------------------------------------------------------------


def test_an_ungated_nominated_pod_binds_to_its_node_before_a_waiting_pod(room: Room) -> None:
    room.pod("worker", gated=True)
    room.nominate("worker")
    room.pod("intruder")
    assert room.wait_outcome("intruder").startswith("unschedulable")

    room.ungate("worker")

    assert room.wait_outcome("worker") == "bound"
    bound = room.read("worker")
    assert bound.spec.node_name == room.node
    assert not bound.status.nominated_node_name  # the bind clears it: nothing stale is left
    assert (room.outcome("intruder") or "").startswith("unschedulable")


@pytest.mark.parametrize("release", ["delete", "clear"])
def test_releasing_a_nomination_lets_a_waiting_pod_in(room: Room, release: str) -> None:
    room.pod("worker", gated=True)
    room.nominate("worker")
    room.pod("intruder")
    assert room.wait_outcome("intruder").startswith("unschedulable")

    if release == "delete":
        room.cluster.core.delete_namespaced_pod("worker", room.namespace, grace_period_seconds=0)
    else:
        room.clear_nomination("worker")

    assert wait_for(lambda: room.outcome("intruder") == "bound", timeout=20, message="bound")


@pytest.mark.parametrize(
    ("worker", "occupant", "expected"),
    [
        pytest.param("", "", "unschedulable", id="equal-priority-reported-unschedulable"),
        pytest.param("high", "low", "bound", id="higher-priority-worker-preempts"),
    ],
)
def test_an_ungated_worker_whose_room_is_taken(
    room: Room, worker: str, occupant: str, expected: str
) -> None:
    room.pod("occupant", priority=occupant)
    assert room.wait_outcome("occupant") == "bound"
    room.pod("worker", gated=True, priority=worker)
    room.nominate("worker")

    room.ungate("worker")

    outcome = room.wait_outcome("worker", timeout=30)
    if expected == "unschedulable":
        assert outcome.startswith("unschedulable") and "Insufficient nvidia.com/gpu" in outcome
        # kube-scheduler drops the nomination once preemption cannot help: the room is no
        # longer held for the worker, so the gang's plan is void (Corral re-places it).
        wait_for(
            lambda: not room.read("worker").status.nominated_node_name,
            timeout=10,
            message="nomination cleared",
        )
    else:
        # A higher-priority worker makes kube-scheduler evict the occupant, then binds.
        assert wait_for(lambda: room.outcome("worker") == "bound", timeout=30, message="bound")
        wait_for(
            lambda: (
                not room.cluster.core.list_namespaced_pod(
                    room.namespace, field_selector="metadata.name=occupant"
                ).items
            ),
            timeout=10,
            message="occupant preempted",
        )
