"""Races for the same room on a control plane with Kubernetes' own gang scheduling switched on.

Four 8-GPU hosts in one block; gangs of 4 x 8 GPUs that require a block: exactly one gang fits at
a time. An upstream PodGroup gang (scheduled by kube-scheduler alone) and a Corral TrainingJob are
submitted a seeded few milliseconds apart, in both orders; in another case a plain Deployment
grabs hosts of the pool while the gang is being placed. A sampler watches the pods all along:

- never more than one gang holds devices in the block for longer than SECONDS;
- no Corral worker runs while its gang is incomplete for longer than SECONDS: workers bind one by
  one and kwok starts each at once, so a gang ramps up through "2 of 4 Running" for a moment;
  what must not happen is a gang stuck partly running (it was, for placementTimeoutSeconds, when
  another gang took part of its room);
- every gang eventually runs whole (the first is finished to let the second in).
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from builders import EXIT_CODE_ANNOTATION, POOL_LABEL, node, training_job
from harness import Cluster, wait_for
from operator_support import Jobs, MakePool, StartOperator, ensure_priority_classes

GPU = "nvidia.com/gpu"
BLOCK = "network.corral.dev/block"
WORKERS = 4
SECONDS = 3.0
"""How long two gangs may both hold devices in the block (the loser's release in flight), and
a Corral gang may be partly running (ramping up, or released after a lost race)."""
MAX_GAP_SECONDS = 1.5
"""The longest the sampler may go between two looks at the pods."""


@pytest.fixture(scope="module")
def cluster(upstream_cluster: Cluster) -> Cluster:
    """This module runs on the control plane with the alpha gang scheduling gates."""
    return upstream_cluster


def block_of_four(make_pool: MakePool) -> str:
    return make_pool(
        [node(f"r{r}h{h}").block("b1").rack(f"r{r}").gpus(8) for r in (1, 2) for h in (1, 2)]
    )


@dataclass
class Sampler:
    """Polls the namespace's pods every `interval` s in a thread and checks the invariants."""

    cluster: Cluster
    namespace: str
    corral: str
    others: list[str]
    """Label values of `gang=<name>` of the competing non-Corral workloads."""
    interval: float = 0.05
    overlap_started: float | None = None
    longest_overlap: float = 0.0
    partial_since: dict[str, float] = field(default_factory=dict)
    """Corral attempt -> since when some but not all of its workers are Running."""
    longest_partial: float = 0.0
    samples: int = 0
    last_sample: float | None = None
    longest_gap: float = 0.0
    """The longest time between two samples: a state lasting longer than SECONDS plus twice this
    cannot go unseen."""
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Sampler:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(Exception):  # the API blinked: the next sample looks again
                self.sample()
            self._stop.wait(self.interval)

    def sample(self) -> None:
        pods = self.cluster.core.list_namespaced_pod(self.namespace).items
        now = time.monotonic()
        self.samples += 1
        if self.last_sample is not None:
            self.longest_gap = max(self.longest_gap, now - self.last_sample)
        self.last_sample = now
        holding = set()
        running_by_attempt: dict[str, int] = {}
        for pod in pods:
            labels = pod.metadata.labels or {}
            active = pod.status.phase not in ("Succeeded", "Failed")
            owner = (
                "corral"
                if labels.get("corral.dev/job") == self.corral
                else labels.get("gang")
                if labels.get("gang") in self.others
                else None
            )
            if owner and pod.spec.node_name and active:
                holding.add(owner)
            if (
                owner == "corral"
                and pod.status.phase == "Running"
                and not pod.metadata.deletion_timestamp
            ):
                attempt = labels.get("corral.dev/restart", "?")
                running_by_attempt[attempt] = running_by_attempt.get(attempt, 0) + 1
        partial = {a for a, running in running_by_attempt.items() if 0 < running < WORKERS}
        for attempt in set(self.partial_since) - partial:
            del self.partial_since[attempt]
        for attempt in partial:
            since = self.partial_since.setdefault(attempt, now)
            self.longest_partial = max(self.longest_partial, now - since)
        if len(holding) > 1:
            if self.overlap_started is None:
                self.overlap_started = now
            self.longest_overlap = max(self.longest_overlap, now - self.overlap_started)
        else:
            self.overlap_started = None

    def check(self) -> None:
        print(
            f"\nsampler: {self.samples} samples, at most {self.longest_gap:.1f} s apart; two "
            "gangs in the block for at most "
            f"{self.longest_overlap:.1f} s; Corral partly running for at most "
            f"{self.longest_partial:.1f} s"
        )
        # Each sample is a pod list (a few hundred ms on a loaded 2-core machine), and the
        # scenarios take seconds: what matters is that no sample was far from the next.
        assert self.samples >= 3, "the sampler barely ran"
        assert self.longest_gap <= MAX_GAP_SECONDS, (
            f"the sampler looked only every {self.longest_gap:.1f} s: it could miss a violation"
        )
        assert self.longest_overlap <= SECONDS, (
            f"two gangs held devices in the block for {self.longest_overlap:.1f} s"
        )
        assert self.longest_partial <= SECONDS, (
            f"Corral workers ran for {self.longest_partial:.1f} s while their gang was incomplete"
        )


@dataclass
class Contest:
    """The contested block (a pool of four hosts), the operator running, and the sampler."""

    pool: str
    sampler: Sampler


@pytest.fixture
def contest(
    cluster: Cluster, namespace: str, make_pool: MakePool, start_operator: StartOperator
) -> Iterator[Contest]:
    pool = block_of_four(make_pool)
    start_operator()
    sampler = Sampler(cluster, namespace, "trainer", ["upstream", "web"]).start()
    yield Contest(pool, sampler)
    sampler.stop()


def gang_pod(
    name: str, index: int, pool: str, group: str | None, node: str | None = None
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "nodeSelector": {POOL_LABEL: pool} | ({"kubernetes.io/hostname": node} if node else {}),
        "terminationGracePeriodSeconds": 0,
        "containers": [
            {
                "name": "main",
                "image": "registry.example/trainer:1",
                "resources": {"limits": {GPU: "8"}, "requests": {"cpu": "1"}},
            }
        ],
    }
    if group:
        spec["schedulingGroup"] = {"podGroupName": group}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"{name}-{index}", "labels": {"gang": name}},
        "spec": spec,
    }


def submit_upstream(cluster: Cluster, namespace: str, name: str, pool: str) -> None:
    """A PodGroup of WORKERS that must share a block, and its pods: kube-scheduler's own gang."""
    cluster.custom.create_namespaced_custom_object(
        "scheduling.k8s.io",
        "v1alpha2",
        namespace,
        "podgroups",
        {
            "apiVersion": "scheduling.k8s.io/v1alpha2",
            "kind": "PodGroup",
            "metadata": {"name": name},
            "spec": {
                "schedulingPolicy": {"gang": {"minCount": WORKERS}},
                "schedulingConstraints": {"topology": [{"key": BLOCK}]},
            },
        },
    )
    for index in range(WORKERS):
        cluster.core.create_namespaced_pod(namespace, gang_pod(name, index, pool, name))


def submit_corral(jobs: Jobs, namespace: str, name: str, pool: str) -> None:
    jobs.create(
        training_job(name, namespace)
        .workers(WORKERS)
        .gpus(8)
        .pool(pool)
        .spec(topology={"required": BLOCK})
        .obj()
    )


def running(cluster: Cluster, namespace: str, selector: str) -> int:
    pods = cluster.core.list_namespaced_pod(namespace, label_selector=selector).items
    return sum(1 for p in pods if p.status.phase == "Running" and not p.metadata.deletion_timestamp)


def finish(cluster: Cluster, namespace: str, selector: str) -> None:
    """The gang's processes exit 0 (kwok moves annotated pods to Succeeded): the block frees."""
    for pod in cluster.core.list_namespaced_pod(namespace, label_selector=selector).items:
        cluster.core.patch_namespaced_pod(
            pod.metadata.name,
            namespace,
            {"metadata": {"annotations": {EXIT_CODE_ANNOTATION: "0"}}},
        )


@pytest.mark.parametrize(
    ("first", "seed"),
    [("upstream", 1), ("upstream", 2), ("corral", 1), ("corral", 2)],
)
def test_an_upstream_gang_and_a_corral_gang_race_for_one_block(
    cluster: Cluster, namespace: str, jobs: Jobs, contest: Contest, first: str, seed: int
) -> None:
    pool = contest.pool
    gap = random.Random(seed).uniform(0.0, 0.3)
    order = ["upstream", "corral"] if first == "upstream" else ["corral", "upstream"]
    for index, which in enumerate(order):
        if index:
            time.sleep(gap)  # the seeded gap between the two submissions is the scenario
        if which == "upstream":
            submit_upstream(cluster, namespace, "upstream", pool)
        else:
            submit_corral(jobs, namespace, "trainer", pool)
    selectors = {"corral": "corral.dev/job=trainer", "upstream": "gang=upstream"}

    winner = wait_for(
        lambda: next(
            (w for w, s in selectors.items() if running(cluster, namespace, s) == WORKERS), None
        ),
        timeout=60,
        message="one gang Running whole",
    )
    loser = "upstream" if winner == "corral" else "corral"
    assert running(cluster, namespace, selectors[loser]) == 0
    finish(cluster, namespace, selectors[winner])
    wait_for(
        lambda: running(cluster, namespace, selectors[loser]) == WORKERS,
        timeout=60,
        message=f"{loser} Running whole after {winner} finished",
    )
    contest.sampler.stop()
    print(f"TrainingJob events: {jobs.event_reasons('trainer')}")
    contest.sampler.check()


def test_a_deployment_grabbing_pool_nodes_never_leaves_the_gang_partly_running(
    cluster: Cluster, namespace: str, jobs: Jobs, contest: Contest
) -> None:
    pool = contest.pool
    submit_corral(jobs, namespace, "trainer", pool)
    template = gang_pod("web", 0, pool, None)
    cluster.apps.create_namespaced_deployment(
        namespace,
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web"},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"gang": "web"}},
                "template": {"metadata": {"labels": {"gang": "web"}}, "spec": template["spec"]},
            },
        },
    )
    wait_for(
        lambda: (
            running(cluster, namespace, "corral.dev/job=trainer") == WORKERS
            or running(cluster, namespace, "gang=web") > 0
        ),
        timeout=60,
        message="the gang or the Deployment running",
    )
    cluster.apps.patch_namespaced_deployment_scale("web", namespace, {"spec": {"replicas": 0}})
    runs_whole_then_check(cluster, namespace, jobs, contest, "once the Deployment let go")


@pytest.mark.parametrize("priority", ["equal", "high"])
def test_a_pod_pinned_to_a_planned_node_never_leaves_the_gang_partly_running(
    cluster: Cluster, namespace: str, jobs: Jobs, contest: Contest, priority: str
) -> None:
    """The sharpest race: the moment the plan is recorded, a pod is pinned to a planned node.
    Of equal priority it is kept out if the worker is nominated already, else it binds and the
    gang is re-placed before it is ungated; of higher priority it gets in whatever the
    nomination, and the gang is re-placed. Either way no worker runs alone for long: before
    nominations and lost-race recovery, three workers ran until the intruder left."""
    ensure_priority_classes(cluster)
    submit_corral(jobs, namespace, "trainer", contest.pool)
    planned = wait_for(
        lambda: (jobs.status("trainer").get("placement") or {}).get("nodes"),
        timeout=30,
        interval=0.02,
        message="the gang planned",
    )
    intruder = gang_pod("intruder", 0, contest.pool, None, node=planned[0])
    if priority == "high":
        intruder["spec"]["priorityClassName"] = "e2e-reservations-high"
    intruder["metadata"]["labels"] = {"gang": "web"}
    cluster.core.create_namespaced_pod(namespace, intruder)
    # Decided either way, never half: the gang whole with the intruder kept out, or the intruder
    # in and no Corral worker running (the gang re-placed, waiting for room).
    outcome = wait_for(
        lambda: decided(cluster, namespace),
        timeout=30,
        message="the gang whole or the intruder in, nothing in between",
    )
    if priority == "high":
        assert outcome == "intruder in", "a higher priority is not kept out by a nomination"
    cluster.core.delete_namespaced_pod("intruder-0", namespace, grace_period_seconds=0)
    runs_whole_then_check(cluster, namespace, jobs, contest, f"after the {outcome}")


def decided(cluster: Cluster, namespace: str) -> str | None:
    intruder = cluster.core.read_namespaced_pod("intruder-0", namespace)
    ours = running(cluster, namespace, "corral.dev/job=trainer")
    if ours == WORKERS and not intruder.spec.node_name:
        return "gang whole"
    if ours == 0 and intruder.status.phase == "Running":
        return "intruder in"
    return None


def runs_whole_then_check(
    cluster: Cluster, namespace: str, jobs: Jobs, contest: Contest, when: str
) -> None:
    wait_for(
        lambda: running(cluster, namespace, "corral.dev/job=trainer") == WORKERS,
        timeout=60,
        message=f"the gang Running whole {when}",
    )
    contest.sampler.stop()
    print(f"TrainingJob events: {jobs.event_reasons('trainer')}")
    contest.sampler.check()
