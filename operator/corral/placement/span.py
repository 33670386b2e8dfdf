"""Where a set of hosts lies in a pool's topology: the domains used per level and the span.

Shared by the solver (to describe its placement) and the baseline policies (to describe theirs),
so that the two are measured the same way.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from corral.api.gpupool import HOSTNAME_LEVEL
from corral.fleet.topology import Topology


@dataclass(frozen=True)
class Span:
    counts: dict[str, int]
    """Domains used at each tree level, broadest first, then hosts (`kubernetes.io/hostname`)."""
    level: str | None
    """Level of the narrowest domain holding every host (None: only the pool as a whole)."""
    domain: str | None
    """That domain's name (the host name at the host level)."""


def rank_order(topology: Topology, hosts: Iterable[str]) -> list[str]:
    """Hosts in tree order (by the path of their domains, then host name): neighbouring ranks of
    a gang sit in neighbouring hosts."""
    return sorted(
        hosts, key=lambda node: (topology.parent_of[node].sort_key(), topology.host_name[node])
    )


def span_of(topology: Topology, hosts: list[str]) -> Span:
    """Counts per level follow `Topology.unit_of`: a host without some level's label counts there
    as its first labelled domain below (or itself)."""
    counts = {
        key: len({topology.unit_of(node, level) for node in hosts})
        for level, key in enumerate(topology.levels)
    }
    counts[HOSTNAME_LEVEL] = len(hosts)
    if len(hosts) == 1:
        return Span(counts, HOSTNAME_LEVEL, topology.host_name[hosts[0]])
    for level in range(topology.depth - 1, -1, -1):
        if counts[topology.levels[level]] == 1:
            domain = topology.domain_of(hosts[0], level)
            assert domain is not None, "one unit at the narrowest such level is a domain"
            return Span(counts, topology.levels[level], domain.name)
    return Span(counts, None, None)
