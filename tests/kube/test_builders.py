"""Worker pods carry what the launcher, the scheduler and the operator need, and nothing less."""

from __future__ import annotations

from typing import Any

from tests.training.builders import T0

from corral.api import TrainingJobSpec
from corral.api.meta import Toleration
from corral.api.names import NODE_ANNOTATION, PLACEMENT_GATE, service_name
from corral.kube.builders import event, rendezvous_service, worker_pod
from corral.training.pods import WorkerPod


def spec(**fields: Any) -> TrainingJobSpec:
    base: dict[str, Any] = {
        "workers": 4,
        "acceleratorsPerWorker": 8,
        "template": {
            "metadata": {"labels": {"team": "llm"}},
            "spec": {
                "containers": [
                    {
                        "name": "trainer",
                        "image": "t",
                        "env": [{"name": "LR", "value": "3e-4"}],
                        "resources": {"requests": {"cpu": "8"}},
                    },
                    {"name": "sidecar", "image": "s"},
                ]
            },
        },
    }
    base.update(fields)
    return TrainingJobSpec.model_validate(base)


def build(**overrides: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "namespace": "ml",
        "job": "llama",
        "uid": "u-1",
        "spec": spec(),
        "index": 2,
        "attempt": 3,
        "node": "h7",
        "pool": "h100",
        "resource_name": "nvidia.com/gpu",
        "pool_tolerations": [
            Toleration(key="nvidia.com/gpu", operator="Exists", effect="NoSchedule")
        ],
    }
    args.update(overrides)
    return worker_pod(**args)


def env_of(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container["env"]}


def test_name_labels_and_owner() -> None:
    pod = build()
    meta = pod["metadata"]
    assert meta["name"] == "llama-w2-r3"
    assert meta["labels"]["corral.dev/job"] == "llama"
    assert meta["labels"]["corral.dev/worker-index"] == "2"
    assert meta["labels"]["corral.dev/pool"] == "h100"
    assert meta["labels"]["team"] == "llm"
    assert meta["annotations"][NODE_ANNOTATION] == "h7"
    (owner,) = meta["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == (
        "TrainingJob",
        "llama",
        "u-1",
        True,
    )


def test_launcher_env_on_every_container() -> None:
    pod = build()
    for container in pod["spec"]["containers"]:
        env = env_of(container)
        assert env["WORLD_SIZE"] == env["PET_NNODES"] == "4"
        assert env["RANK"] == env["NODE_RANK"] == env["PET_NODE_RANK"] == "2"
        assert env["PET_NPROC_PER_NODE"] == "8"
        assert env["MASTER_ADDR"] == env["PET_MASTER_ADDR"] == "worker-0.llama"
        assert env["MASTER_PORT"] == env["PET_MASTER_PORT"] == "29500"
    assert env_of(pod["spec"]["containers"][0])["LR"] == "3e-4"


def test_devices_go_to_the_first_container() -> None:
    trainer, sidecar = build()["spec"]["containers"]
    assert trainer["resources"]["limits"]["nvidia.com/gpu"] == "8"
    assert trainer["resources"]["requests"] == {"cpu": "8", "nvidia.com/gpu": "8"}
    assert "resources" not in sidecar


def test_pinned_gated_and_tolerating() -> None:
    pod_spec = build()["spec"]
    terms = pod_spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"
    ]
    assert terms == [
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["h7"]}]}
    ]
    assert pod_spec["schedulingGates"] == [{"name": PLACEMENT_GATE}]
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod_spec[
        "tolerations"
    ]
    assert (pod_spec["hostname"], pod_spec["subdomain"], pod_spec["restartPolicy"]) == (
        "worker-2",
        "llama",
        "Never",
    )


def test_resume_from_checkpoint() -> None:
    env = env_of(build(resume_from="ckpt-41")["spec"]["containers"][0])
    assert env["CORRAL_RESUME_FROM"] == "ckpt-41"


def test_template_is_not_mutated() -> None:
    s = spec()
    before = s.model_dump()
    build(spec=s)
    assert s.model_dump() == before


def test_built_pod_reads_back_as_a_worker() -> None:
    worker = WorkerPod.from_pod(build())
    assert worker is not None
    assert (worker.index, worker.restart, worker.planned_node, worker.gated, worker.node) == (
        2,
        3,
        "h7",
        True,
        None,
    )


def test_service_is_headless_and_publishes_unready() -> None:
    svc = rendezvous_service(namespace="ml", job="llama", uid="u-1", port=29500)
    assert svc["spec"]["clusterIP"] == "None"
    assert svc["spec"]["publishNotReadyAddresses"] is True
    assert svc["spec"]["selector"] == {"corral.dev/job": "llama"}


def test_service_name_is_a_dns_label_for_any_job_name() -> None:
    for job in ["llama", "llama.v2", "9lives", "x" * 100]:
        name = service_name(job)
        assert (
            len(name) <= 63 and name[0].isalpha() and all(c.isalnum() or c == "-" for c in name)
        ), name
    assert service_name("llama.v2") == service_name("llama.v2")


def test_event_names_its_object() -> None:
    involved = {
        "apiVersion": "corral.dev/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": "llama", "namespace": "ml", "uid": "u"},
    }
    body = event(involved=involved, type_="Normal", reason="Placed", message="m", now=T0)
    assert body["involvedObject"]["kind"] == "TrainingJob"
    assert body["metadata"]["namespace"] == "ml"
    assert body["metadata"]["name"].startswith("llama.")
    assert body["lastTimestamp"] == "2026-11-22T05:00:00Z"


def test_workers_get_the_job_s_priority_class() -> None:
    pod = build(spec=spec(priorityClassName="team-high"))
    assert pod["spec"]["priorityClassName"] == "team-high"
    assert "priorityClassName" not in build()["spec"]
