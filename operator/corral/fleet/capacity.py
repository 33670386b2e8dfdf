"""Capacity types and prices of nodes."""

from __future__ import annotations

from collections.abc import Mapping

from corral.api.selection import CapacityType

CAPACITY_LABELS = (
    "karpenter.sh/capacity-type",
    "eks.amazonaws.com/capacityType",
    "cloud.google.com/gke-spot",
    "cloud.google.com/gke-preemptible",
    "kubernetes.azure.com/scalesetpriority",
)


def capacity_type_from_labels(labels: Mapping[str, str]) -> CapacityType:
    """What each cloud says about a node; anything unrecognised is on-demand.

    Karpenter (`karpenter.sh/capacity-type`: spot, on-demand, reserved), EKS managed node groups
    (`eks.amazonaws.com/capacityType`: SPOT, ON_DEMAND, CAPACITY_BLOCK), GKE (`gke-spot` or
    `gke-preemptible` = true) and AKS (`kubernetes.azure.com/scalesetpriority` = spot).
    """
    karpenter = labels.get("karpenter.sh/capacity-type")
    if karpenter == "spot":
        return "spot"
    if karpenter == "reserved":
        return "reserved"
    if karpenter == "on-demand":
        return "on-demand"
    eks = labels.get("eks.amazonaws.com/capacityType")
    if eks == "SPOT":
        return "spot"
    if eks == "CAPACITY_BLOCK":
        return "reserved"
    if eks == "ON_DEMAND":
        return "on-demand"
    if (
        labels.get("cloud.google.com/gke-spot") == "true"
        or labels.get("cloud.google.com/gke-preemptible") == "true"
        or labels.get("kubernetes.azure.com/scalesetpriority") == "spot"
    ):
        return "spot"
    return "on-demand"
