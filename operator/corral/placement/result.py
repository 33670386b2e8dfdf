"""What the solver answers: a placement, or the reason there is none."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Placement:
    """A node for every worker of the gang, in one pool."""

    pool: str
    assignments: list[str]
    """Node of worker i at index i (ranks next to each other sit next to each other)."""
    span_level: str | None
    """Level of the narrowest domain holding the whole gang (None: the pool as a whole)."""
    span_domain: str | None
    """That domain (a label value; the host name at the host level)."""
    domains_per_level: dict[str, int] = field(default_factory=dict)
    """Domains used at each level of the pool, broadest first, hosts last."""
    explanation: str = ""

    @property
    def hosts(self) -> int:
        return len(set(self.assignments))

    def to_dict(self) -> dict[str, Any]:
        """The `corral plan --output json` object."""
        return {
            "placed": True,
            "pool": self.pool,
            "assignments": [
                {"worker": index, "node": node} for index, node in enumerate(self.assignments)
            ],
            "span": {"level": self.span_level, "domain": self.span_domain},
            "domainsPerLevel": dict(self.domains_per_level),
            "explanation": self.explanation,
        }


@dataclass(frozen=True)
class NoFit:
    """Why the gang cannot be placed, naming the binding constraint."""

    reason: str
    permanent: bool = False
    """True when the gang can never fit the pools it may use, even empty (the job fails as
    Unschedulable); False when it only does not fit now."""

    def to_dict(self) -> dict[str, Any]:
        return {"placed": False, "reason": self.reason, "permanent": self.permanent}
