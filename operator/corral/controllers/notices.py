"""Warning events for termination notices Corral cannot read (one per node, not per reconcile).

`corral.disruption.notices` computes the problems (a `corral.dev/terminating=soon` taint, an NTH
`action-time` that is not Unix seconds ...); the notice still counts, but the person who set the
value should hear that its deadline was not understood. A node's problems are posted once, and
again only when they change; a node whose values are fixed, or that is deleted, is forgotten.
After an operator restart each node with a problem is told once more (the Event recorder
aggregates repeats of an identical message).
"""

from __future__ import annotations

from typing import Any

from corral.controllers.executor import PostEvent
from corral.disruption.notices import node_notices

Obj = dict[str, Any]
REASON = "MalformedNotice"


class NoticeProblems:
    def __init__(self, post_event: PostEvent):
        self.post_event = post_event
        self._told: dict[str, tuple[str, ...]] = {}
        """Node name -> the problems last posted for it."""

    def observe(self, name: str, node: Obj | None) -> None:
        """A node was added, changed or deleted (None)."""
        if node is None:
            self._told.pop(name, None)
            return
        problems = tuple(sorted({p.message for p in node_notices(node).problems}))
        if problems == self._told.get(name, ()):
            return
        if not problems:
            self._told.pop(name, None)
            return
        self._told[name] = problems
        meta = node.get("metadata") or {}
        involved = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": name, "uid": meta.get("uid")},
        }
        self.post_event(involved, "Warning", REASON, "; ".join(problems))
