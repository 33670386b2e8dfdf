"""The pool `corral plan` assumes when it is given no GPUPools."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

from corral.api.gpupool import HOSTNAME_LEVEL, GPUPool
from corral.api.trainingjob import TOPOLOGY_RANK
from corral.fleet.objects import NodeRecord

DEFAULT_POOL = "default"
DEVICE_RESOURCES = (
    "nvidia.com/gpu",
    "amd.com/gpu",
    "google.com/tpu",
    "habana.ai/gaudi",
    "aws.amazon.com/neuron",
    "gpu.intel.com/i915",
)
"""Extended resources counted as devices when no pool names one, most common first."""
NETWORK_PREFIX = "network.corral.dev/"
_ACCELERATOR_TYPE = re.compile(r"^[A-Za-z0-9][-A-Za-z0-9_.]{0,62}$")


def device_resource(nodes: Sequence[NodeRecord]) -> str:
    """The device resource most nodes offer (nvidia.com/gpu when none does)."""
    counts = Counter(
        resource
        for node in nodes
        for resource in DEVICE_RESOURCES
        if node.allocatable.get(resource, 0) > 0
    )
    if not counts:
        return DEVICE_RESOURCES[0]
    return max(DEVICE_RESOURCES, key=lambda resource: counts[resource])


def default_levels(nodes: Sequence[NodeRecord]) -> list[str]:
    """The `network.corral.dev/*` labels the nodes carry, broadest first, then the host.

    Broadest means fewest distinct values (a block label has fewer values than a rack label);
    ties go by the known order of topology labels, then by name.
    """
    values: dict[str, set[str]] = {}
    for node in nodes:
        for key, value in node.labels.items():
            if key.startswith(NETWORK_PREFIX):
                values.setdefault(key, set()).add(value)
    keys = sorted(values, key=lambda k: (len(values[k]), TOPOLOGY_RANK.get(k, 99), k))
    return [*keys[:7], HOSTNAME_LEVEL]


def default_pool(nodes: Sequence[NodeRecord]) -> tuple[GPUPool, list[NodeRecord]]:
    """One pool named `default` over every node with devices, and those nodes.

    The caller enters it as implicit (`FleetSnapshot.build(..., implicit=[DEFAULT_POOL])`): it
    declares no accelerator or location, so a job's accelerator and residency requirements are
    not checked against it (the explanation says so).
    """
    resource = device_resource(nodes)
    members = [node for node in nodes if node.allocatable.get(resource, 0) > 0]
    products = {node.labels.get("nvidia.com/gpu.product") for node in members}
    product = products.pop() if len(products) == 1 else None
    pool = GPUPool.model_validate(
        {
            "metadata": {"name": DEFAULT_POOL},
            "spec": {
                "nodeSelector": {},
                "resourceName": resource,
                "accelerator": {
                    "type": product if product and _ACCELERATOR_TYPE.match(product) else "any",
                    "memoryGiB": 1,
                },
                "topology": {"levels": default_levels(members)},
                "capacityType": "auto",
            },
        }
    )
    return pool, members
