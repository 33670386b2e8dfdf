"""The topology tree of one pool: domains per level, broadest first, nodes at the leaves.

A domain is identified by its path of label values from the broadest level down (`("eu-1a",
"b1", "r07")`), so that two racks both called `r07` in different blocks stay two racks.

A node without the label of some level is in no domain of that level: in the tree it sits in an
*unlabelled* domain there (name None, path component None), which is not a domain for any
purpose — it can never hold a gang's span, and it is counted as what it contains: for the
objective and the status, each labelled domain (or node) directly under it counts as a domain of
its own at that level. So a node missing `topology.kubernetes.io/zone` is still in its block and
rack, but only gangs without a constraint at the zone level can use it; a node missing the rack
label is its own "rack".

`kubernetes.io/hostname` is not a tree level even when a pool lists it: every node is a leaf of its
own, which is what that level means.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

from corral.api.gpupool import HOSTNAME_LEVEL

Path = tuple[str | None, ...]


class Domain:
    """One domain of a topology level (or the pool itself, the root, at level -1)."""

    __slots__ = ("children", "labelled", "level", "name", "nodes", "parent", "path")

    def __init__(self, level: int, path: Path, parent: Domain | None):
        self.level = level
        self.path = path
        self.name: str | None = path[-1] if path else ""
        self.labelled = self.name is not None
        """False for the stand-in of a missing label (see the module docstring)."""
        self.parent = parent
        self.children: dict[str | None, Domain] = {}
        self.nodes: set[str] = set()
        """Nodes directly under this domain (only at the deepest tree level, or the root of a
        pool with no tree levels)."""

    def __repr__(self) -> str:
        shown = "/".join("-" if p is None else p for p in self.path) or "<pool>"
        return f"Domain({self.level}, {shown})"

    def ancestors(self) -> Iterator[Domain]:
        """This domain, then its parent, up to and including the root."""
        domain: Domain | None = self
        while domain is not None:
            yield domain
            domain = domain.parent

    def empty(self) -> bool:
        return not self.children and not self.nodes

    def sort_key(self) -> tuple[str, ...]:
        return tuple("" if p is None else p for p in self.path)


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
        self.by_level: list[dict[Path, Domain]] = [{} for _ in self.levels]
        """Per level, its labelled domains."""
        self.parent_of: dict[str, Domain] = {}
        """Node name -> the domain of the deepest tree level it hangs under."""
        self.host_name: dict[str, str] = {}
        """Node name -> its kubernetes.io/hostname label (or its name)."""
        self.unlabelled: list[int] = [0] * len(self.levels)
        """Per tree level, how many nodes lack its label."""

    @property
    def depth(self) -> int:
        return len(self.levels)

    def add(self, node: str, labels: Mapping[str, str]) -> Domain:
        """Place a node in the tree (creating domains as needed); returns its parent domain."""
        domain = self.root
        for level, key in enumerate(self.levels):
            value = labels.get(key) or None
            if value is None:
                self.unlabelled[level] += 1
            child = domain.children.get(value)
            if child is None:
                child = Domain(level, (*domain.path, value), domain)
                domain.children[value] = child
                if value is not None:
                    self.by_level[level][child.path] = child
            domain = child
        domain.nodes.add(node)
        self.parent_of[node] = domain
        self.host_name[node] = labels.get(HOSTNAME_LEVEL) or node
        return domain

    def remove(self, node: str) -> list[Domain]:
        """Take a node out; domains left empty are dropped (and returned)."""
        dropped: list[Domain] = []
        parent = self.parent_of.pop(node, None)
        self.host_name.pop(node, None)
        if parent is None:
            return dropped
        parent.nodes.discard(node)
        for above in parent.ancestors():
            if above.parent is not None and not above.labelled:
                self.unlabelled[above.level] -= 1
        domain: Domain | None = parent
        while domain is not None and domain.parent is not None and domain.empty():
            del domain.parent.children[domain.name]
            if domain.labelled:
                del self.by_level[domain.level][domain.path]
            dropped.append(domain)
            domain = domain.parent
        return dropped

    def domain_of(self, node: str, level: int) -> Domain | None:
        """The node's labelled domain at a tree level, or None if it lacks that label."""
        domain = self.parent_of[node]
        while domain.level > level:
            assert domain.parent is not None
            domain = domain.parent
        return domain if domain.labelled else None

    def unit_of(self, node: str, level: int) -> tuple[object, ...]:
        """What the node counts as at a level: its domain there; without that label, its first
        labelled domain below (or the node itself), since that is all that is known."""
        chain = []
        domain: Domain | None = self.parent_of[node]
        while domain is not None and domain.level >= level:
            chain.append(domain)
            domain = domain.parent
        for candidate in reversed(chain):
            if candidate.labelled:
                return ("domain", candidate.path)
        return ("node", node)
