"""The Argo CD health checks and actions of docs/argocd/argocd-cm.yaml, run in Lua 5.1 (the
dialect of Argo CD's gopher-lua) against sample objects in every state."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import yaml
from lupa import lua51
from tests.chart.helm import ROOT

from corral.disruption import notices

CONFIG = yaml.safe_load((ROOT / "docs" / "argocd" / "argocd-cm.yaml").read_text())["data"]
HEALTH = "resource.customizations.health.corral.dev_"
ACTIONS = yaml.safe_load(CONFIG["resource.customizations.actions.corral.dev_TrainingJob"])


def run_lua(script: str, obj: dict[str, Any]) -> dict[str, Any]:
    """Runs a script as Argo CD does: the object as the global `obj`, the returned table back."""
    lua = lua51.LuaRuntime(unpack_returned_tuples=True)
    lua.globals().obj = lua.table_from(obj, recursive=True)
    result = lua.execute(script)
    return _to_python(result)


def _to_python(value: Any) -> Any:
    if lua51.lua_type(value) == "table":
        keys = list(value.keys())
        if keys and all(isinstance(k, int) for k in keys):
            return [_to_python(value[k]) for k in sorted(keys)]
        return {k: _to_python(value[k]) for k in keys}
    return value


def health(kind: str, obj: dict[str, Any]) -> tuple[str, str]:
    result = run_lua(CONFIG[HEALTH + kind], obj)
    assert set(result) <= {"status", "message"}, result
    return result["status"], result.get("message", "")


def condition(kind: str, status: str, reason: str, message: str) -> dict[str, Any]:
    return {"type": kind, "status": status, "reason": reason, "message": message}


def obj(generation: int = 2, observed: int | None = 2, **status: Any) -> dict[str, Any]:
    """An object of any kind at `generation`, with a status the operator wrote for `observed`."""
    body: dict[str, Any] = {"metadata": {"name": "x", "generation": generation}, "spec": {}}
    if observed is not None or status:
        body["status"] = {"observedGeneration": observed, **status} if observed else status
    return body


def test_every_kind_has_a_health_check() -> None:
    assert {k.removeprefix(HEALTH) for k in CONFIG if k.startswith(HEALTH)} == {
        "GPUPool",
        "TrainingJob",
        "InferenceService",
    }


# --- GPUPool ---------------------------------------------------------------------------------

READY = condition("Ready", "True", "NodesReady", "4 of 4 node(s) ready")
AVAILABLE = condition("Degraded", "False", "AllNodesAvailable", "every node is Ready")
NO_OVERLAP = condition("Overlapping", "False", "NoOverlap", "no node is selected by another pool")

POOLS: dict[str, tuple[dict[str, Any], str, str]] = {
    "new, no status": (obj(observed=None), "Progressing", "Waiting for the operator"),
    "spec changed, not yet seen": (
        obj(generation=3, observed=2, conditions=[READY]),
        "Progressing",
        "observe generation 3",
    ),
    "ready": (obj(conditions=[READY, AVAILABLE, NO_OVERLAP]), "Healthy", "4 of 4 node(s) ready"),
    "some nodes cordoned": (
        obj(
            conditions=[
                READY,
                condition("Degraded", "True", "NodesUnavailable", "1 node(s) unavailable"),
                NO_OVERLAP,
            ]
        ),
        "Healthy",
        "1 node(s) unavailable",
    ),
    "no nodes": (
        obj(conditions=[condition("Ready", "False", "NoNodes", "no node matches")]),
        "Degraded",
        "NoNodes: no node matches",
    ),
    "overlapping another pool": (
        obj(
            conditions=[
                READY,
                condition("Overlapping", "True", "NodesInTwoPools", "2 node(s) also selected"),
            ]
        ),
        "Degraded",
        "NodesInTwoPools",
    ),
}


# --- TrainingJob -----------------------------------------------------------------------------


def job(phase: str | None, *conditions: dict[str, Any], suspend: bool = False, **kw: Any) -> Any:
    body = obj(phase=phase, conditions=list(conditions), **kw) if phase else obj(observed=None)
    body["spec"] = {"workers": 2, "suspend": suspend}
    return body


PLACED_NO = condition("Placed", "False", "Unschedulable", "needs 16 devices in one rack; 8 free")
JOBS: dict[str, tuple[dict[str, Any], str, str]] = {
    "new": (job(None), "Progressing", "Waiting for the operator"),
    "pending": (job("Pending"), "Progressing", ""),
    "queued, with the solver's reason": (
        job("Queued", PLACED_NO),
        "Progressing",
        "Queued: needs 16",
    ),
    "placing": (
        job("Placing", condition("Placed", "True", "GangPlaced", "rack r1")),
        "Progressing",
        "Placing: rack r1",
    ),
    "running": (
        job("Running", condition("Running", "True", "AllWorkersRunning", "2 worker(s) running")),
        "Healthy",
        "2 worker(s) running",
    ),
    "checkpointing": (job("Checkpointing"), "Healthy", ""),
    "recovering": (
        job("Recovering", condition("Running", "False", "GangRestarting", "worker 1 failed")),
        "Progressing",
        "Recovering: worker 1 failed",
    ),
    "succeeded": (job("Succeeded"), "Healthy", "Every worker succeeded"),
    "failed": (
        job("Failed", condition("Failed", "True", "BackoffLimitExceeded", "10 restarts")),
        "Degraded",
        "BackoffLimitExceeded: 10 restarts",
    ),
    "suspended": (job("Suspended", suspend=True), "Suspended", "spec.suspend is true"),
    "suspend requested, workers still there": (
        job("Running", suspend=True),
        "Progressing",
        "Suspending",
    ),
    "resumed, not yet seen": (
        job("Suspended", generation=4, observed=3),
        "Progressing",
        "observe generation 4",
    ),
}


def test_every_training_phase_has_a_health() -> None:
    from corral.api.trainingjob import TrainingPhase

    for phase in TrainingPhase.__args__:
        status, _ = health("TrainingJob", job(phase, suspend=phase == "Suspended"))
        assert status in ("Healthy", "Progressing", "Degraded", "Suspended"), phase


# --- InferenceService ------------------------------------------------------------------------


def isvc(*conditions: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return obj(conditions=list(conditions), readyReplicas=3, desiredReplicas=4, **kw)


SERVING = condition("Ready", "True", "ReplicasReady", "3 of 4 ready")
SLO_OK = condition("SLOMet", "True", "WithinSLO", "p99 420 ms <= 500 ms")
SLO_MISSED = condition("SLOMet", "False", "LatencyAboveSLO", "p99 900 ms > 500 ms")
AT_MAX = condition("ScalingLimited", "True", "TooManyReplicas", "at maxReplicas 4")
NOT_LIMITED = condition("ScalingLimited", "False", "DesiredWithinRange", "")
SERVICES: dict[str, tuple[dict[str, Any], str, str]] = {
    "new": (obj(observed=None), "Progressing", "Waiting for the operator"),
    "spec changed, not yet seen": (
        obj(generation=5, observed=4, conditions=[SERVING]),
        "Progressing",
        "observe generation 5",
    ),
    "serving within the SLO": (isvc(SERVING, SLO_OK, NOT_LIMITED), "Healthy", "3/4 replicas"),
    "serving, no SLO yet": (isvc(SERVING), "Healthy", "3/4 replicas ready"),
    "missing the SLO, scaling up": (
        isvc(SERVING, SLO_MISSED, NOT_LIMITED),
        "Progressing",
        "SLO missed, scaling: p99 900 ms",
    ),
    "missing the SLO at maxReplicas": (
        isvc(SERVING, SLO_MISSED, AT_MAX),
        "Degraded",
        "at maxReplicas 4",
    ),
    "replicas starting": (
        isvc(condition("Ready", "False", "ReplicasStarting", "0 of 4 ready")),
        "Progressing",
        "ReplicasStarting",
    ),
    "refused spec": (
        isvc(condition("Ready", "False", "InvalidSpec", "template: bad")),
        "Degraded",
        "InvalidSpec: template: bad",
    ),
}


# --- every kind, every state ------------------------------------------------------------------

STATES = [
    pytest.param(kind, body, status, message, id=f"{kind}: {name}")
    for kind, table in (("GPUPool", POOLS), ("TrainingJob", JOBS), ("InferenceService", SERVICES))
    for name, (body, status, message) in table.items()
]


@pytest.mark.parametrize(("kind", "body", "status", "message"), STATES)
def test_health(kind: str, body: dict[str, Any], status: str, message: str) -> None:
    got = health(kind, body)
    assert got[0] == status and message in got[1], got


# --- TrainingJob actions ---------------------------------------------------------------------


def _action(name: str) -> str:
    return next(d["action.lua"] for d in ACTIONS["definitions"] if d["name"] == name)


@pytest.mark.parametrize(
    ("phase", "suspend", "enabled"),
    [
        ("Running", False, {"suspend", "checkpoint-now"}),
        ("Queued", False, {"suspend"}),
        ("Suspended", True, {"resume"}),
        ("Succeeded", False, set()),
        ("Failed", False, set()),
    ],
)
def test_actions_offered_per_state(phase: str, suspend: bool, enabled: set[str]) -> None:
    actions = run_lua(ACTIONS["discovery.lua"], job(phase, suspend=suspend))
    assert {name for name, a in actions.items() if not a["disabled"]} == enabled


@pytest.mark.parametrize(("name", "suspend"), [("suspend", True), ("resume", False)])
def test_actions_set_spec_suspend_and_nothing_else(name: str, suspend: bool) -> None:
    before = job("Running", SERVING, suspend=not suspend)  # (an empty Lua table has no type)
    after = run_lua(_action(name), before)
    assert after["spec"]["suspend"] is suspend
    assert {**after, "spec": {}} == {**before, "spec": {}}
    assert after["spec"]["workers"] == 2


def test_checkpoint_now_annotates_the_job_with_the_time_and_nothing_else() -> None:
    before = job("Running", SERVING)
    after = run_lua(_action("checkpoint-now"), before)
    stamp = after["metadata"]["annotations"].pop("corral.dev/checkpoint-now")
    assert notices.parse_time(stamp) is not None, stamp
    assert abs((notices.parse_time(stamp) - datetime.now(UTC)).total_seconds()) < 60  # type: ignore[operator]
    assert after["metadata"]["annotations"] == (before["metadata"].get("annotations") or {})
    assert {**after, "metadata": {}} == {**before, "metadata": {}}
