"""How many replicas an InferenceService wants: what is kept per autoscaled service between
autoscaler ticks, and how a tick and a reconcile read it.

The operator's controller and the simulator (`corral.sim.services`) both keep one `Scaling` per
autoscaled service and drive it the same way: at every tick `saw_ready` (the ready count as the
controller sees it), `count` (what the decision starts from), then `decide` on the observation;
at every reconcile `sizing` (or `fixed` when `spec.replicas` is set, after `stand_aside`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from corral.autoscaling.autoscaler import AutoscalerState, Verdict, tick
from corral.autoscaling.autoscaler import Decision as ScalingDecision
from corral.autoscaling.observation import Observation
from corral.autoscaling.policy import Policy
from corral.inference.lifecycle import ServiceView, Sizing
from corral.inference.replicas import ReplicaPod


def start_count(view: ServiceView, live: list[ReplicaPod], policy: Policy) -> int:
    """The count to start from: what runs (or was decided) within bounds, at least the min. A
    replica and the replacement made for its notice hold one slot: they count once."""
    count = max(len({(p.revision, p.slot) for p in live}), view.status.desired_replicas)
    return max(policy.floor, min(policy.max_replicas, count))


@dataclass
class Scaling:
    """What is kept per autoscaled service between ticks (memory only)."""

    state: AutoscalerState = field(default_factory=AutoscalerState)
    decision: ScalingDecision | None = None
    current: int | None = None
    """The count the autoscaler last decided (what its next decision starts from)."""
    ready: int | None = None
    ready_since: float | None = None

    def saw_ready(self, ready: int, now: float) -> None:
        """The ready replicas at a tick; `ready_since` is when that count was first seen."""
        if self.ready != ready:
            self.ready, self.ready_since = ready, now

    def count(self, view: ServiceView, live: list[ReplicaPod], policy: Policy) -> int:
        """What this tick's decision starts from."""
        return self.current if self.current is not None else start_count(view, live, policy)

    def decided(self, decision: ScalingDecision) -> None:
        self.decision = decision
        self.current = decision.replicas

    def decide(self, observation: Observation, policy: Policy, current: int) -> ScalingDecision:
        """One autoscaler tick on this service's state."""
        decision, self.state = tick(self.state, observation, policy, current)
        self.decided(decision)
        return decision

    def stand_aside(self) -> None:
        """`spec.replicas` was set: sizing resumes from what then runs, with a fresh scale-down
        window; what was learned of the service stays (it is the same service)."""
        self.decision, self.current = None, None
        self.state = AutoscalerState(model=self.state.model)

    def sizing(self, view: ServiceView, pods: list[ReplicaPod], policy: Policy) -> Sizing:
        """The count a reconcile works toward: the last decision, or the start count until the
        first tick."""
        decision = self.decision
        if decision is None:
            live = [p for p in pods if p.live]
            start = self.count(view, live, policy)
            self.current = start
            waiting = Verdict(None, "WaitingForMetrics", "the first metrics are being read")
            return Sizing(
                start,
                f"starting at {start} (min {policy.floor}) until the first metrics",
                waiting,
                Verdict(False, "WithinBounds", "the recommendation is within bounds"),
                Verdict(None, "NoObservations", "no requests observed yet"),
            )
        return Sizing(
            decision.replicas,
            decision.reason,
            decision.active,
            decision.limited,
            decision.slo_met,
            decision,
        )
