"""The topology tree of one pool: domains per level, broadest first, nodes at the leaves.

A domain is identified by its path of label values from the broadest level down (`("eu-1a",
"b1", "r07")`), so that two racks both called `r07` in different blocks stay two racks. A node that
lacks the label of some level has no place in that level nor below it (the tree is built top
down): it hangs directly under its deepest labelled domain as a *loose* node, and is usable only by
gangs that do not need it inside one domain of those levels.

`kubernetes.io/hostname` is not a tree level even when a pool lists it: every node is a leaf of its
own, which is what that level means.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

from corral.api.gpupool import HOSTNAME_LEVEL


class Domain:
    """One domain of a topology level (or the pool itself, the root, at level -1)."""

    __slots__ = ("children", "level", "name", "nodes", "parent", "path")

    def __init__(self, level: int, path: tuple[str, ...], parent: Domain | None):
        self.level = level
        self.path = path
        self.name = path[-1] if path else ""
        self.parent = parent
        self.children: dict[str, Domain] = {}
        self.nodes: set[str] = set()
        """Nodes directly under this domain: its hosts if it is at the deepest tree level,
        otherwise loose nodes (without the next level's label)."""

    def __repr__(self) -> str:
        return f"Domain({self.level}, {'/'.join(self.path) or '<pool>'})"

    def ancestors(self) -> Iterator[Domain]:
        """This domain, then its parent, up to and including the root."""
        domain: Domain | None = self
        while domain is not None:
            yield domain
            domain = domain.parent

    def empty(self) -> bool:
        return not self.children and not self.nodes


def tree_levels(levels: Sequence[str]) -> tuple[str, ...]:
    """The label levels that form the tree: a pool's levels without the host level."""
    return tuple(level for level in levels if level != HOSTNAME_LEVEL)


class Topology:
    """The tree of one pool, updated one node at a time."""

    def __init__(self, levels: Sequence[str]):
        self.levels: tuple[str, ...] = tree_levels(levels)
        """Tree levels, broadest first (no host level)."""
        self.reported_levels: tuple[str, ...] = (*self.levels, HOSTNAME_LEVEL)
        """Levels as reported to users: the tree levels and the hosts."""
        self.root = Domain(-1, (), None)
        self.by_level: list[dict[tuple[str, ...], Domain]] = [{} for _ in self.levels]
        self.parent_of: dict[str, Domain] = {}
        """Node name -> the domain it hangs under."""
        self.host_name: dict[str, str] = {}
        """Node name -> its kubernetes.io/hostname label (or its name)."""
        self.loose: list[int] = [0] * len(self.levels)
        """Per tree level, how many nodes lack its label (and so sit in no domain of it)."""

    @property
    def depth(self) -> int:
        return len(self.levels)

    def add(self, node: str, labels: Mapping[str, str]) -> Domain:
        """Place a node in the tree (creating domains as needed); returns its parent domain."""
        domain = self.root
        for level, key in enumerate(self.levels):
            value = labels.get(key)
            if value is None or value == "":
                break
            path = (*domain.path, value)
            child = domain.children.get(value)
            if child is None:
                child = Domain(level, path, domain)
                domain.children[value] = child
                self.by_level[level][path] = child
            domain = child
        domain.nodes.add(node)
        self.parent_of[node] = domain
        if domain.level + 1 < self.depth:
            self.loose[domain.level + 1] += 1
        self.host_name[node] = labels.get(HOSTNAME_LEVEL) or node
        return domain

    def remove(self, node: str) -> Domain | None:
        """Take a node out; domains left empty are dropped. Returns its former parent."""
        parent = self.parent_of.pop(node, None)
        self.host_name.pop(node, None)
        if parent is None:
            return None
        parent.nodes.discard(node)
        if parent.level + 1 < self.depth:
            self.loose[parent.level + 1] -= 1
        domain: Domain | None = parent
        while domain is not None and domain.parent is not None and domain.empty():
            del domain.parent.children[domain.name]
            del self.by_level[domain.level][domain.path]
            domain = domain.parent
        return parent

    def loose_level(self, node: str) -> int | None:
        """The first tree level whose label the node lacks, or None if it has them all."""
        level = self.parent_of[node].level + 1
        return level if level < self.depth else None

    def domain_of(self, node: str, level: int) -> Domain | None:
        """The node's domain at a tree level, or None if it has no place at that level."""
        domain = self.parent_of[node]
        if domain.level < level:
            return None
        while domain.level > level:
            assert domain.parent is not None
            domain = domain.parent
        return domain
