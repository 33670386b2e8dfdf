"""Which capacity a gang with a deadline runs on: Uniform Progress with hysteresis and a safety net.

In the spirit of "Can't Be Late: Optimizing Spot Instance Savings under Deadlines" (Wu et al.,
NSDI '24). The job should make progress at least as fast as the straight line from (start, 0) to
(deadline, total work). At each event (spot capacity came or went, a checkpoint moved progress, a
timer):

1. **safety net** — when the time left is less than the work left plus 2 x the restart overhead
   (plus the decision granularity), run on on-demand *for good*: one more preemption could make the
   deadline unreachable;
2. on on-demand, go back to spot only when spot is available and progress is ahead of the line by
   at least the hysteresis (default 2 x restart overhead), so the switch pays for itself;
3. spot available → spot;
4. no spot: ahead of the line, or behind it by less than the tolerance (default half the initial
   slack) → wait for spot (idle costs nothing); further behind → on-demand.

Progress is measured in hours of gang work: from checkpoint steps and a steps-per-hour rate (from
the spec, or learned online by `StepRate`). Every decision carries a reason that says why, in
numbers; a switch is an event. Pure: hours in, a decision out; time is passed in.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

Capacity = Literal["spot", "on-demand", "none"]


@dataclass(frozen=True)
class Job:
    """The deadline problem, in hours from the job's start."""

    total_work: float
    """Hours of gang work the job needs."""
    deadline: float
    """Hours from the start by which the work must be done."""
    restart_overhead: float
    """Hours a (re)start costs before progress resumes: scheduling, image, loading the checkpoint."""
    hysteresis: float | None = None
    """How far ahead of the line (hours) before leaving on-demand for spot; default 2 x overhead."""
    granularity: float = 0.0
    """Hours between two decisions at most: the safety net keeps this much more in reserve."""
    tolerance: float | None = None
    """How far behind the line (hours) before leaving spot-or-wait for on-demand; default half
    the initial slack (deadline - work): idling early costs nothing while the deadline allows it,
    and measured on the traces it saves more than on-demand at the first lag (bench/spot_policy.py)."""

    @property
    def switch_back_margin(self) -> float:
        return 2 * self.restart_overhead if self.hysteresis is None else self.hysteresis

    @property
    def behind_margin(self) -> float:
        if self.tolerance is not None:
            return self.tolerance
        return 0.5 * max(0.0, self.deadline - self.total_work)


@dataclass(frozen=True)
class State:
    now: float
    """Hours since the job's start."""
    done_work: float
    """Hours of work done (at the last checkpoint plus live progress since: before a planned
    switch Corral checkpoints, so a switch loses nothing)."""
    running: Capacity
    spot_available: bool
    committed: bool = False
    """The safety net fired earlier: on-demand until the end."""
    at_risk: float = 0.0
    """Hours of work a reclaim would lose (done since the last checkpoint; 0 when the workload
    checkpoints on notice). The safety net keeps it in reserve while running on spot."""


@dataclass(frozen=True)
class Decision:
    capacity: Capacity
    reason: str
    committed: bool

    def switches_from(self, running: Capacity) -> bool:
        return self.capacity != running


def ahead_of_line(job: Job, state: State) -> float:
    """Hours ahead of (positive) or behind (negative) the uniform-progress line."""
    rate = job.total_work / job.deadline if job.deadline > 0 else float("inf")
    return state.done_work / rate - state.now if rate > 0 else float("inf")


def decide(job: Job, state: State) -> Decision:
    left_work = max(0.0, job.total_work - state.done_work)
    left_time = job.deadline - state.now
    reserve = 2 * job.restart_overhead + job.granularity
    if state.running == "spot":
        left_work += state.at_risk
    if state.committed or left_time < left_work + reserve:
        why = (
            "safety net (committed earlier)"
            if state.committed
            else (
                f"safety net: {left_time:.2f} h left for {left_work:.2f} h of work + "
                f"2 x {job.restart_overhead:.2f} h restart overhead"
                + (f" + {job.granularity:.2f} h between decisions" if job.granularity else "")
            )
        )
        return Decision("on-demand", why + "; on-demand until the end", True)
    ahead = ahead_of_line(job, state)
    if state.running == "on-demand":
        if state.spot_available and ahead >= job.switch_back_margin:
            return Decision(
                "spot",
                f"{ahead:.2f} h ahead of the line (>= {job.switch_back_margin:.2f} h hysteresis) "
                "and spot is available",
                False,
            )
        return Decision(
            "on-demand",
            (
                f"staying on on-demand: {ahead:.2f} h ahead of the line, "
                f"{job.switch_back_margin:.2f} h needed to switch back"
                if state.spot_available
                else f"staying on on-demand: no spot ({ahead:.2f} h ahead of the line)"
            ),
            False,
        )
    if state.spot_available:
        return Decision("spot", f"spot is available ({ahead:+.2f} h against the line)", False)
    if ahead >= -job.behind_margin:
        return Decision(
            "none", f"no spot; {ahead:+.2f} h against the line, waiting for spot", False
        )
    return Decision(
        "on-demand",
        f"no spot and {-ahead:.2f} h behind the line (tolerance {job.behind_margin:.2f} h): "
        "on-demand",
        False,
    )


def hours_between(start: datetime, moment: datetime) -> float:
    return (moment - start).total_seconds() / 3600.0


@dataclass(frozen=True)
class StepRate:
    """Steps per hour, from the spec or learned online from (time, step) observations of a
    running gang: an exponentially weighted average of observed rates (restarts reset the
    baseline, never the estimate)."""

    per_hour: float | None = None
    last_time: datetime | None = None
    last_step: int | None = None
    weight: float = 0.3

    def observe(self, time: datetime, step: int) -> StepRate:
        if self.last_time is None or self.last_step is None or step < self.last_step:
            return replace(self, last_time=time, last_step=step)
        hours = hours_between(self.last_time, time)
        if hours <= 0 or step == self.last_step:
            return self
        rate = (step - self.last_step) / hours
        blended = (
            rate
            if self.per_hour is None
            else (1 - self.weight) * self.per_hour + self.weight * rate
        )
        return replace(self, per_hour=blended, last_time=time, last_step=step)

    def work_hours(self, steps: int) -> float | None:
        """Hours of gang work that many steps amount to, when the rate is known."""
        if not self.per_hour:
            return None
        return steps / self.per_hour


@dataclass(frozen=True)
class DeadlineProblem:
    """A job's deadline problem as the operator sees it: times and steps, not hours."""

    start: datetime
    """When the job was submitted: the line runs from here."""
    deadline: datetime
    total_steps: int
    restart_overhead_seconds: float
    granularity_seconds: float = 0.0
    """The longest time between two decisions (the operator's policy timer)."""


def decide_for(
    problem: DeadlineProblem,
    *,
    now: datetime,
    steps_per_hour: float | None,
    done_step: int,
    running: Capacity,
    spot_available: bool,
    committed: bool,
    at_risk_seconds: float = 0.0,
) -> Decision | None:
    """`decide` on a job's steps: progress is `done_step` (the last checkpoint's) over the rate;
    None while the rate is unknown (neither in the spec nor learned yet)."""
    if not steps_per_hour:
        return None
    job = Job(
        total_work=problem.total_steps / steps_per_hour,
        deadline=hours_between(problem.start, problem.deadline),
        restart_overhead=problem.restart_overhead_seconds / 3600.0,
        granularity=problem.granularity_seconds / 3600.0,
    )
    state = State(
        now=hours_between(problem.start, now),
        done_work=min(done_step, problem.total_steps) / steps_per_hour,
        running=running,
        spot_available=spot_available,
        committed=committed,
        at_risk=at_risk_seconds / 3600.0,
    )
    return decide(job, state)
