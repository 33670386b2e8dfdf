"""Performance per dollar: CostPerWork picks the fitting pool with the lowest price per unit of
work, and says which pools it compared and why one won."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from corral.api.gpupool import GPUPool
from corral.cost.objective import solve
from corral.fleet import FleetSnapshot
from corral.fleet.testing import node, pod, pool
from corral.placement import NoFit, Placement, PlacementRequest, place
from corral.placement.baselines import first_fit

PRODUCT = "nvidia.com/gpu.product"


def gpu_pool(name: str, product: str, price: float, tflops: float | None) -> GPUPool:
    data = pool(name).match_labels({PRODUCT: product}).pricing(price).dict()
    accelerator: dict[str, Any] = {"type": name.upper(), "memoryGiB": 80}
    if tflops is not None:
        accelerator["peakTFLOPS"] = tflops
    data["spec"]["accelerator"] = accelerator
    return GPUPool.model_validate(data)


def two_pools(
    h100_price: float = 4.0, a100_price: float = 1.5, a100_tflops: float | None = 312
) -> FleetSnapshot:
    nodes = [node(f"h{i}").label(PRODUCT, "H100").gpus(8).obj() for i in range(2)]
    nodes += [node(f"a{i}").label(PRODUCT, "A100").gpus(8).obj() for i in range(2)]
    pools = [
        gpu_pool("h100", "H100", h100_price, 989),
        gpu_pool("a100", "A100", a100_price, a100_tflops),
    ]
    return FleetSnapshot.build(nodes, [], pools)


def gang(objective: str = "CostPerWork", **extra: Any) -> PlacementRequest:
    return PlacementRequest(
        key="ns/j",
        workers=1,
        devices_per_worker=8,
        objective=objective,
        **extra,  # type: ignore[arg-type]
    )


def test_default_objective_is_the_solver_itself() -> None:
    snapshot = two_pools()
    assert solve(snapshot, gang("Default")) == place(snapshot, gang("Default"))


def test_cost_per_work_uses_peak_tflops_and_explains_the_comparison() -> None:
    # h100: 4.0 / 989 = 0.004044 per TFLOPS; a100: 1.5 / 312 = 0.00481: the H100 wins although
    # its device-hour costs more.
    result = solve(two_pools(), gang())
    assert isinstance(result, Placement) and result.pool == "h100"
    assert "placementObjective CostPerWork: h100 has the lowest price per unit of work" in (
        result.explanation
    )
    assert "a100 1.50 USD/device-h / 312 TFLOPS = 0.004808" in result.explanation
    assert "h100 4.00 USD/device-h / 989 TFLOPS = 0.004044" in result.explanation


def test_the_jobs_own_throughput_overrides_peak_tflops() -> None:
    # the job runs 4x faster on H100 than A100: 4.0/4 = 1.0 against 1.5/1 = 1.5
    result = solve(two_pools(), gang(throughput=(("A100", 1.0), ("H100", 4.0))))
    assert isinstance(result, Placement) and result.pool == "h100"
    # only 2x faster: 4.0/2 = 2.0 against 1.5
    result = solve(two_pools(), gang(throughput=(("A100", 1.0), ("H100", 2.0))))
    assert isinstance(result, Placement) and result.pool == "a100"
    assert "1.50 USD/device-h / 1 work = 1.5" in result.explanation


def test_a_pool_without_a_work_rate_is_placed_only_when_nothing_comparable_fits() -> None:
    snapshot = two_pools(a100_price=0.1, a100_tflops=None)
    result = solve(snapshot, gang())
    assert isinstance(result, Placement) and result.pool == "h100"
    assert "a100 (0.10 USD/device-h, no work rate: not compared)" in result.explanation


def test_the_cheaper_pool_is_skipped_while_it_is_full() -> None:
    snapshot = two_pools(h100_price=10.0)
    for name in ("a0", "a1"):
        snapshot.upsert_pod(pod(f"busy-{name}").on(name).gpus(8).obj())
    result = solve(snapshot, gang())
    assert isinstance(result, Placement) and result.pool == "h100"
    assert "not fitting now: a100" in result.explanation


def test_nothing_fits_gives_the_solvers_own_reason() -> None:
    snapshot = two_pools()
    request = replace(gang(), workers=5)
    assert solve(snapshot, request) == place(snapshot, request)
    assert isinstance(solve(snapshot, request), NoFit)


def test_the_objective_wraps_any_policy() -> None:
    result = solve(two_pools(), gang(), solver=first_fit)
    assert isinstance(result, Placement) and result.pool == "h100"
    assert result.explanation.startswith("first-fit:")
