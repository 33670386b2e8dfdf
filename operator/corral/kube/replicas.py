"""Builders of an InferenceService's objects: its replica pods and its Service."""

from __future__ import annotations

import copy
from typing import Any

from corral.api.inferenceservice import InferenceServiceSpec
from corral.api.meta import Toleration
from corral.api.names import (
    INFERENCE_LABEL,
    NODE_ANNOTATION,
    POOL_LABEL,
    REPLACEMENT_LABEL,
    REVISION_LABEL,
    SLOT_LABEL,
    replica_pod_name,
    service_name,
)
from corral.kube.builders import MANAGED_BY, owner_reference, place_on


def replica_pod(
    *,
    namespace: str,
    service: str,
    uid: str,
    spec: InferenceServiceSpec,
    revision: str,
    slot: int,
    node: str,
    pool: str,
    resource_name: str,
    pool_tolerations: list[Toleration],
    replacement: int = 0,
) -> dict[str, Any]:
    """Replica `slot` of `revision`, pinned to `node`, gated until Corral ungates it
    (`replacement` > 0: made for a replica whose node got a termination notice)."""
    template = copy.deepcopy(spec.template)
    meta = template.get("metadata") or {}
    pod_spec = template["spec"]
    labels = {
        **(meta.get("labels") or {}),
        **MANAGED_BY,
        INFERENCE_LABEL: service,
        REVISION_LABEL: revision,
        SLOT_LABEL: str(slot),
        POOL_LABEL: pool,
        **({REPLACEMENT_LABEL: str(replacement)} if replacement else {}),
    }
    annotations = {**(meta.get("annotations") or {}), NODE_ANNOTATION: node}
    container = pod_spec["containers"][0]
    if not any(p.get("containerPort") == spec.port for p in container.get("ports") or []):
        container["ports"] = [*(container.get("ports") or []), {"containerPort": spec.port}]
    place_on(pod_spec, node, resource_name, spec.accelerators_per_replica, pool_tolerations)
    pod_spec.setdefault("restartPolicy", "Always")
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": replica_pod_name(service, revision, slot, replacement),
            "namespace": namespace,
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [
                owner_reference("corral.dev/v1alpha1", "InferenceService", service, uid)
            ],
        },
        "spec": pod_spec,
    }


def inference_service(*, namespace: str, service: str, uid: str, port: int) -> dict[str, Any]:
    """The ClusterIP Service in front of the ready replicas."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": service_name(service),
            "namespace": namespace,
            "labels": {**MANAGED_BY, INFERENCE_LABEL: service},
            "ownerReferences": [
                owner_reference("corral.dev/v1alpha1", "InferenceService", service, uid)
            ],
        },
        "spec": {
            "selector": {INFERENCE_LABEL: service},
            "ports": [{"name": "http", "port": port, "targetPort": port}],
        },
    }
