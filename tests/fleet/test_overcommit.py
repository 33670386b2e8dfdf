"""The snapshot counts a pod where it is bound, planned or nominated, and says when a node's
counted pods ask for more than it offers (room planned for a gang was taken)."""

from __future__ import annotations

import pytest

from corral.fleet.snapshot import FleetSnapshot
from corral.fleet.testing import PodBuilder, node, pod, pool


def snapshot(*pods: dict[str, object]) -> FleetSnapshot:
    return FleetSnapshot.build(
        [node("h1").gpus(8).obj(), node("h2").gpus(8).obj()],
        list(pods),
        [pool("p").obj()],
    )


@pytest.mark.parametrize(
    ("where", "counted_on"),
    [
        (pod("w").on("h1"), "h1"),
        (pod("w").assumed("h1"), "h1"),
        (pod("w").nominated("h1"), "h1"),
        (pod("w").assumed("h1").nominated("h2"), "h1"),  # Corral's own plan comes first
        (pod("w").phase("Pending"), None),
    ],
)
def test_a_pod_counts_where_it_is_bound_planned_or_nominated(
    where: PodBuilder, counted_on: str | None
) -> None:
    built = snapshot(where.gpus(8).obj())
    assert {n for n, pods in built.pods_on.items() if pods} == (
        {counted_on} if counted_on else set()
    )


def test_overcommitted_names_the_resource_and_every_pod_on_the_node() -> None:
    built = snapshot(
        pod("j-w0-r0", "ml").assumed("h1").gpus(8).obj(),
        pod("intruder", "web").on("h1").gpus(4).obj(),
        pod("fits", "web").on("h2").gpus(8).obj(),
    )
    over = built.overcommitted("h1")
    assert over is not None
    assert (over.resource, over.requested, over.offered) == ("nvidia.com/gpu", 12, 8)
    assert over.pods == (("ml", "j-w0-r0"), ("web", "intruder"))
    assert built.overcommitted("h2") is None
    assert built.overcommitted("nowhere") is None
