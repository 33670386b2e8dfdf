"""Markers Corral uses internally are never honoured on objects users write (issue 9)."""

from __future__ import annotations

from corral.api import GPUPool
from corral.fleet import FleetSnapshot
from corral.fleet.testing import job, node, pool
from corral.placement import NoFit, PlacementRequest, place


def test_an_implicit_pool_annotation_on_a_user_pool_is_ignored() -> None:
    """`corral plan` once marked its made-up pool with the annotation corral.dev/implicit-pool,
    and a user GPUPool carrying it skipped the accelerator and residency checks: a job requiring
    TPU-v5 in the US was placed on an EU H100 pool."""
    eu = pool("eu-h100").accelerator("H100-80GB").location("eu-west-1", "EU").dict()
    eu["metadata"]["annotations"] = {"corral.dev/implicit-pool": "true"}
    snapshot = FleetSnapshot.build([node("h1").gpus(8).obj()], [], [GPUPool.model_validate(eu)])
    assert snapshot.pools["eu-h100"].implicit is False
    request = PlacementRequest.from_training_job(
        job("j").accelerator("TPU-v5").residency(jurisdictions=["US"]).obj()
    )
    result = place(snapshot, request)
    assert isinstance(result, NoFit), result
    assert result.permanent
    assert "accelerator" in result.reason


def test_only_the_caller_makes_a_pool_implicit() -> None:
    made = pool("default").obj()
    snapshot = FleetSnapshot.build([node("h1").gpus(8).obj()], [], [made], implicit=["default"])
    assert snapshot.pools["default"].implicit is True
