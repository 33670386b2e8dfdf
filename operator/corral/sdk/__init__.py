"""corral.sdk: the workload's side of Corral's checkpoint protocol (standard library only).

    from corral import sdk

    resume = sdk.resume_point()                 # where a restarted worker picks up
    ...
    request = sdk.checkpoint_requested()        # a request id, or None
    if request:
        save(step, path)
        sdk.report_checkpoint(request, step, uri=path)

Importable without kopf, pydantic or the Kubernetes client; see docs/disruption.md.
"""

from corral.sdk.client import (
    PodClient,
    ResumePoint,
    SDKError,
    checkpoint_requested,
    report_checkpoint,
    resume_point,
)

__all__ = [
    "PodClient",
    "ResumePoint",
    "SDKError",
    "checkpoint_requested",
    "report_checkpoint",
    "resume_point",
]
