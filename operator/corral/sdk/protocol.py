"""The checkpoint protocol between Corral and a workload: annotation keys and environment names.

Standard library only: the workload imports this (through `corral.sdk`) without kopf, pydantic or
the Kubernetes client, and the operator's pure checkpoint logic imports the same names, so the two
sides cannot drift apart.

    operator sets    corral.dev/checkpoint-requested = <id>        on every worker pod
    worker sets      corral.dev/checkpoint-completed = <id>        once its checkpoint is durable
                     corral.dev/checkpoint-step      = <n>
                     corral.dev/checkpoint-uri       = <where>     (optional)
    restarted worker reads CORRAL_RESUME_FROM (the uri) and CORRAL_RESUME_STEP (the step)
"""

from __future__ import annotations

REQUESTED = "corral.dev/checkpoint-requested"
COMPLETED = "corral.dev/checkpoint-completed"
STEP = "corral.dev/checkpoint-step"
URI = "corral.dev/checkpoint-uri"

RESUME_FROM_ENV = "CORRAL_RESUME_FROM"
RESUME_STEP_ENV = "CORRAL_RESUME_STEP"
RESUME_ID_ENV = "CORRAL_RESUME_ID"

ANNOTATIONS_FILE = "/etc/corral/annotations"
"""Where the example worker template mounts the downward-API `metadata.annotations`."""
ANNOTATIONS_FILE_ENV = "CORRAL_ANNOTATIONS_FILE"
POD_NAME_ENV = "CORRAL_POD_NAME"
POD_NAMESPACE_ENV = "CORRAL_POD_NAMESPACE"
API_SERVER_ENV = "CORRAL_API_SERVER"
"""Overrides the in-cluster API address (e.g. `http://127.0.0.1:8001` behind `kubectl proxy`)."""
