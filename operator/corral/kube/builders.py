"""Objects Corral creates: worker pods, the rendezvous Service, Events."""

from __future__ import annotations

import copy
import hashlib
from datetime import datetime
from typing import Any

from corral.api.meta import Toleration, format_time
from corral.api.names import (
    JOB_LABEL,
    NODE_ANNOTATION,
    PLACEMENT_GATE,
    POOL_LABEL,
    REPLACEMENT_LABEL,
    RESTART_LABEL,
    WORKER_INDEX_LABEL,
    master_address,
    service_name,
    worker_hostname,
    worker_pod_name,
)
from corral.api.trainingjob import TrainingJobSpec

MANAGED_BY = {"app.kubernetes.io/managed-by": "corral"}


def owner_reference(api_version: str, kind: str, name: str, uid: str) -> dict[str, Any]:
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": name,
        "uid": uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def place_on(
    pod_spec: dict[str, Any],
    node: str,
    resource_name: str,
    devices: int,
    pool_tolerations: list[Toleration],
) -> None:
    """Make a pod Corral placed: its devices on the first container (the trainer or server, by
    convention, as in Kubeflow), the pool's tolerations, a required affinity to `node`, and the
    placement gate (nothing binds before Corral has counted the pod)."""
    resources = pod_spec["containers"][0].setdefault("resources", {})
    resources.setdefault("limits", {})[resource_name] = str(devices)
    resources.setdefault("requests", {})[resource_name] = str(devices)
    pod_spec["tolerations"] = [
        *(pod_spec.get("tolerations") or []),
        *(t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in pool_tolerations),
    ]
    pod_spec["affinity"] = {
        **(pod_spec.get("affinity") or {}),
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}
                ]
            }
        },
    }
    pod_spec["schedulingGates"] = [{"name": PLACEMENT_GATE}]


def _launcher_env(
    job: str, spec: TrainingJobSpec, index: int, attempt: int
) -> list[dict[str, Any]]:
    master = master_address(job)
    port = str(spec.rendezvous.port)
    values = {
        "PET_NNODES": str(spec.workers),
        "PET_NODE_RANK": str(index),
        "PET_NPROC_PER_NODE": str(spec.accelerators_per_worker),
        "PET_MASTER_ADDR": master,
        "PET_MASTER_PORT": port,
        "MASTER_ADDR": master,
        "MASTER_PORT": port,
        "WORLD_SIZE": str(spec.workers),
        "RANK": str(index),
        "NODE_RANK": str(index),
        "CORRAL_JOB": job,
        "CORRAL_WORKER_INDEX": str(index),
    }
    return [{"name": key, "value": value} for key, value in values.items()]


def worker_pod(
    *,
    namespace: str,
    job: str,
    uid: str,
    spec: TrainingJobSpec,
    index: int,
    attempt: int,
    node: str,
    pool: str,
    resource_name: str,
    pool_tolerations: list[Toleration],
    resume_from: str | None = None,
    resume_env: dict[str, str] | None = None,
    replacement: int = 0,
) -> dict[str, Any]:
    """Worker `index` of attempt `attempt`, pinned to `node`, gated until the gang exists."""
    template = copy.deepcopy(spec.template)
    meta = template.get("metadata") or {}
    pod_spec = template["spec"]
    labels = {
        **(meta.get("labels") or {}),
        **MANAGED_BY,
        JOB_LABEL: job,
        WORKER_INDEX_LABEL: str(index),
        RESTART_LABEL: str(attempt),
        POOL_LABEL: pool,
        **({REPLACEMENT_LABEL: str(replacement)} if replacement else {}),
    }
    annotations = {**(meta.get("annotations") or {}), NODE_ANNOTATION: node}
    env = _launcher_env(job, spec, index, attempt)
    if resume_env:
        # Where and from which step a restarted worker resumes (corral.disruption.checkpoints).
        env.extend({"name": key, "value": value} for key, value in sorted(resume_env.items()))
    elif resume_from:
        env.append({"name": "CORRAL_RESUME_FROM", "value": resume_from})
    for container in pod_spec["containers"]:
        container["env"] = [*(container.get("env") or []), *env]
    place_on(pod_spec, node, resource_name, spec.accelerators_per_worker, pool_tolerations)
    pod_spec["hostname"] = worker_hostname(index)
    pod_spec["subdomain"] = service_name(job)
    pod_spec["restartPolicy"] = "Never"
    if spec.priority_class_name:
        # The class that ordered the job's queue also orders kube-scheduler's (and preemption).
        pod_spec["priorityClassName"] = spec.priority_class_name
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": worker_pod_name(job, index, attempt, replacement),
            "namespace": namespace,
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [owner_reference("corral.dev/v1alpha1", "TrainingJob", job, uid)],
        },
        "spec": pod_spec,
    }


def rendezvous_service(*, namespace: str, job: str, uid: str, port: int) -> dict[str, Any]:
    """Headless Service giving each worker `worker-<i>.<service>`: MASTER_ADDR resolves to worker 0."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": service_name(job),
            "namespace": namespace,
            "labels": {**MANAGED_BY, JOB_LABEL: job},
            "ownerReferences": [owner_reference("corral.dev/v1alpha1", "TrainingJob", job, uid)],
        },
        "spec": {
            "clusterIP": "None",
            "selector": {JOB_LABEL: job},
            # Workers rendezvous before any is Ready.
            "publishNotReadyAddresses": True,
            "ports": [{"name": "rendezvous", "port": port, "targetPort": port}],
        },
    }


def event(
    *,
    involved: dict[str, Any],
    type_: str,
    reason: str,
    message: str,
    now: datetime,
    component: str = "corral",
) -> dict[str, Any]:
    """A core/v1 Event, as `kubectl describe` shows them."""
    meta = involved.get("metadata") or {}
    namespace = meta.get("namespace") or "default"
    digest = hashlib.sha1(
        f"{meta.get('uid')}{reason}{message}{now.isoformat()}".encode()
    ).hexdigest()[:10]
    stamp = format_time(now)
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{meta.get('name')}.{digest}", "namespace": namespace},
        "involvedObject": {
            "apiVersion": involved.get("apiVersion"),
            "kind": involved.get("kind"),
            "name": meta.get("name"),
            "namespace": meta.get("namespace"),
            "uid": meta.get("uid"),
            "resourceVersion": meta.get("resourceVersion"),
        },
        "type": type_,
        "reason": reason,
        "message": message[:1024],
        "source": {"component": component},
        "reportingComponent": component,
        "reportingInstance": component,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }
