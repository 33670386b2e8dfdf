"""Deterministic names and labels of a job's objects: a restarted operator finds what it made."""

from __future__ import annotations

import hashlib
import re

JOB_LABEL = "corral.dev/job"
WORKER_INDEX_LABEL = "corral.dev/worker-index"
RESTART_LABEL = "corral.dev/restart"
REPLACEMENT_LABEL = "corral.dev/replacement"
"""On a worker replaced in place (its node got a termination notice, the rest of the gang kept
running): how many times worker <index> of this attempt was replaced (absent: never)."""
POOL_LABEL = "corral.dev/pool"
TEAM_LABEL = "corral.dev/team"
"""On a TrainingJob (or InferenceService): the team its usage is charged to (docs/economics.md)."""
NODE_ANNOTATION = "corral.dev/node"
"""The node Corral chose for a worker: counts the pod's devices there before it is bound."""
CHECKPOINT_NOW_ANNOTATION = "corral.dev/checkpoint-now"
"""On a TrainingJob, set by a person or a tool (Argo CD's "checkpoint-now" action): an RFC 3339
time; the running gang is asked for a checkpoint unless one was requested at or after it."""
PLACEMENT_GATE = "corral.dev/placement"
"""Scheduling gate held until every pod of the gang exists (binding is all-or-nothing)."""

_DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def worker_pod_name(job: str, index: int, restart: int, replacement: int = 0) -> str:
    """`<job>-w<index>-r<restart>`: a new restart generation never collides with the old one.
    A worker replaced in place for the `replacement`-th time within an attempt is
    `<job>-w<index>-r<restart>-x<replacement>`: it never collides with the pod it replaces, which
    may still be terminating on the noticed node."""
    base = f"{job}-w{index}-r{restart}"
    return f"{base}-x{replacement}" if replacement else base


def service_name(job: str) -> str:
    """The headless Service of a job: its name when that is a valid DNS label, else a stable hash."""
    if len(job) <= 63 and _DNS_LABEL.match(job):
        return job
    digest = hashlib.sha256(job.encode()).hexdigest()[:10]
    prefix = re.sub(r"[^a-z0-9-]", "-", job.lower())[:40].strip("-") or "job"
    if not prefix[0].isalpha():
        prefix = "tj-" + prefix
    return f"{prefix}-{digest}"


def worker_hostname(index: int) -> str:
    return f"worker-{index}"


def master_address(job: str) -> str:
    """Worker 0's stable DNS name inside the job's namespace."""
    return f"{worker_hostname(0)}.{service_name(job)}"


INFERENCE_LABEL = "corral.dev/inference"
"""On an InferenceService's replicas and Service: the service's name (the Service selects by it)."""
REVISION_LABEL = "corral.dev/revision"
"""On a replica: the hash of the template it was made from (a template change rolls out)."""
SLOT_LABEL = "corral.dev/slot"
"""On a replica: its slot; slots 0..desired-1 are kept, higher ones are scaled away."""


def replica_pod_name(service: str, revision: str, slot: int, replacement: int = 0) -> str:
    """`<service>-<revision>-<slot>`: a new revision's replica never collides with the old one.
    The `replacement`-th replica made for a slot whose replica's node got a termination notice is
    `<service>-<revision>-<slot>-x<replacement>` (label `corral.dev/replacement`): both serve
    until the replacement is ready."""
    base = f"{service}-{revision}-{slot}"
    return f"{base}-x{replacement}" if replacement else base


def replica_selector(service: str) -> str:
    """The label selector of a service's replicas (status.selector, for the scale subresource)."""
    return f"{INFERENCE_LABEL}={service}"
