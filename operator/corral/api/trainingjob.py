"""TrainingJob: a gang of workers placed all-or-nothing, surviving spot interruptions."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, WithJsonSchema, model_validator

from corral.api.base import SpecModel, StatusModel
from corral.api.meta import Condition, ObjectMeta, Time
from corral.api.selection import WorkloadSelection
from corral.api.template import PodTemplateSpec, pod_spec

# Narrowness rank of the topology labels Corral knows, so that the CRD can refuse a `preferred`
# level broader than `required` before any pool is consulted. Families (Corral, GKE, AWS) share
# ranks so that a mixed pair is still ordered; labels not listed are checked against the pool's own
# levels by the operator at admission.
TOPOLOGY_RANK: dict[str, int] = {
    "topology.kubernetes.io/region": 0,
    "topology.kubernetes.io/zone": 1,
    "network.corral.dev/block": 2,
    "cloud.google.com/gce-topology-block": 2,
    "topology.k8s.aws/network-node-layer-1": 2,
    "network.corral.dev/rack": 3,
    "cloud.google.com/gce-topology-subblock": 3,
    "topology.k8s.aws/network-node-layer-2": 3,
    "topology.k8s.aws/network-node-layer-3": 4,
    "cloud.google.com/gce-topology-host": 5,
    "kubernetes.io/hostname": 6,
}
_RANK_LITERAL = "{" + ", ".join(f"'{k}': {v}" for k, v in TOPOLOGY_RANK.items()) + "}"

# Env names Corral sets on every worker; a template that sets them would fight the launcher.
RESERVED_ENV = (
    "PET_NNODES",
    "PET_NODE_RANK",
    "PET_NPROC_PER_NODE",
    "PET_MASTER_ADDR",
    "PET_MASTER_PORT",
    "MASTER_ADDR",
    "MASTER_PORT",
    "WORLD_SIZE",
    "RANK",
    "NODE_RANK",
    "CORRAL_RESUME_FROM",
    "CORRAL_RESUME_STEP",
    "CORRAL_RESUME_ID",
    "CORRAL_JOB",
    "CORRAL_WORKER_INDEX",
)


class TopologyRequirement(SpecModel):
    """How tightly the gang must be packed, by node label key of a pool topology level."""

    required: Annotated[str, Field(min_length=1, max_length=317)] | None = None
    """The gang must lie inside one domain of this level."""
    preferred: Annotated[str, Field(min_length=1, max_length=317)] | None = None
    """Tried first; must be narrower than `required`."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    # Kubernetes' CEL has no cel.bind; `[x].all(rank, ...)` binds the map.
                    "rule": "!has(self.required) || !has(self.preferred) || "
                    f"[{_RANK_LITERAL}].all(rank, "
                    "self.required in rank && self.preferred in rank ? "
                    "rank[self.preferred] > rank[self.required] : self.preferred != self.required)",
                    "message": "topology.preferred must be a narrower level than topology.required",
                    "fieldPath": ".preferred",
                }
            ]
        }
    )

    @model_validator(mode="after")
    def _preferred_is_narrower(self) -> TopologyRequirement:
        if self.required is None or self.preferred is None:
            return self
        known = self.required in TOPOLOGY_RANK and self.preferred in TOPOLOGY_RANK
        if (known and TOPOLOGY_RANK[self.preferred] <= TOPOLOGY_RANK[self.required]) or (
            self.preferred == self.required
        ):
            raise ValueError(
                f"preferred: {self.preferred!r} must be a narrower level than required "
                f"{self.required!r}"
            )
        return self


class HTTPGetHook(SpecModel):
    path: Annotated[str, Field(pattern=r"^/", max_length=1024)] = "/checkpoint"
    port: Annotated[int, Field(ge=1, le=65535)]
    scheme: Literal["HTTP", "HTTPS"] = "HTTP"


class AnnotationHook(SpecModel):
    """The workload watches `corral.dev/checkpoint-requested` on its own pod (see corral.sdk)."""


class CheckpointHook(SpecModel):
    """Exactly one way to ask a worker for a checkpoint."""

    annotation: AnnotationHook | None = None
    http_get: HTTPGetHook | None = None

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "has(self.annotation) != has(self.httpGet)",
                    "message": "checkpoint.hook needs exactly one of annotation or httpGet",
                }
            ]
        }
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> CheckpointHook:
        if (self.annotation is None) == (self.http_get is None):
            raise ValueError("needs exactly one of annotation or httpGet")
        return self


class Checkpoint(SpecModel):
    interval_seconds: Annotated[int, Field(ge=0, le=7 * 86400)] = 1800
    """Periodic checkpoint requests; 0 = never."""
    on_interruption: bool = True
    """Checkpoint when a node of the gang gets a termination notice."""
    hook: CheckpointHook = Field(
        default_factory=lambda: CheckpointHook(annotation=AnnotationHook())
    )
    timeout_seconds: Annotated[int, Field(ge=1, le=3600)] = 90
    """How long to wait for a requested checkpoint before giving up on it."""


class Progress(SpecModel):
    """How far the job is and how fast it goes: what the deadline spot policy measures
    (docs/disruption.md). With `spec.deadline`, and pools offering spot and on-demand, the job
    runs on spot while it is ahead of the straight line to its deadline, on on-demand when it
    falls behind."""

    total_steps: Annotated[int, Field(ge=1, le=10**15)]
    """Steps the job needs in all; its progress is the step of `status.lastCheckpoint`."""
    steps_per_hour: Annotated[float, Field(gt=0, le=1e15)] | None = None
    """Steps the gang makes per hour of running. Unset: learned from the checkpoints' steps
    (`status.capacity.stepsPerHour`); until then the policy does not decide."""
    restart_overhead_seconds: Annotated[int, Field(ge=0, le=86400)] = 600
    """What a (re)start costs before steps resume: placement, image, loading the checkpoint."""


class Budget(SpecModel):
    """Ceilings on what the job may use, over all its attempts. Admission refuses a placement
    whose expected use would exceed one (the job waits, `BudgetExceeded`); a running job that
    reaches one is stopped and fails."""

    device_hours: Annotated[float, Field(gt=0, le=1e9)] | None = None
    """Ceiling on device-hours (devices x hours)."""
    cost: Annotated[float, Field(gt=0, le=1e12)] | None = None
    """Ceiling on cost in the pool's currency."""
    expected_duration_seconds: Annotated[int, Field(ge=1, le=365 * 86400)] | None = None
    """How long one run of the gang is expected to take: admission counts the gang's devices for
    this long, on top of what the job has used. Unset: admission refuses only a job whose budget
    is already used up (a restart or re-placement would start over budget)."""


class Rendezvous(SpecModel):
    port: Annotated[int, Field(ge=1, le=65535)] = 29500
    """MASTER_PORT / PET_MASTER_PORT; worker 0 listens there."""
    replace_in_place: bool = True
    """On a termination notice for some of the gang's nodes, replace only their workers (when
    the gang's span domain has room) while the others keep running and re-form the rendezvous,
    as torchrun's elastic agent does. false: every interruption re-places the whole gang, for
    launchers whose workers cannot take a new member (a plain mpirun)."""


class CarbonDeferral(SpecModel):
    """Let the job wait for a lower-carbon hour of the pools it may use (docs/economics.md).

    The latest start is `startBy`, or `spec.deadline - expectedDurationSeconds`, whichever is
    earlier; the job never waits past it."""

    start_by: Time | None = None
    """Start no later than this."""
    expected_duration_seconds: Annotated[int, Field(ge=1, le=90 * 86400)] | None = None
    """How long the job is expected to run: the window whose carbon is compared, and, with
    spec.deadline, what bounds the latest start."""
    min_saving_percent: Annotated[float, Field(ge=0, le=100)] = 10.0
    """Wait only for a window at least this much cleaner than starting now."""


Objective = Literal["Default", "CostPerWork"]

_WORK_TYPE = Annotated[str, Field(min_length=1, max_length=63)]


class TrainingJobSpec(WorkloadSelection):
    """A gang of identical workers."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.carbonDeferral) || has(self.carbonDeferral.startBy) || "
                    "(has(self.deadline) && has(self.carbonDeferral.expectedDurationSeconds))",
                    "message": "carbonDeferral needs startBy, or expectedDurationSeconds with "
                    "spec.deadline: the job must know when it has to start at the latest",
                    "fieldPath": ".carbonDeferral",
                }
            ]
        }
    )

    workers: Annotated[int, Field(ge=1, le=100000)]
    """Pods in the gang; all are placed or none."""
    accelerators_per_worker: Annotated[int, Field(ge=1, le=1024)] = 1
    """Devices per worker pod."""
    topology: TopologyRequirement = Field(default_factory=TopologyRequirement)
    template: PodTemplateSpec
    checkpoint: Checkpoint = Field(default_factory=Checkpoint)
    deadline: Time | None = None
    """The spot policy must finish the job by then (with `progress`)."""
    progress: Progress | None = None
    """Total steps and steps per hour: with `deadline`, the spot policy decides spot, on-demand
    or waiting at each event."""
    budget: Budget = Field(default_factory=Budget)
    priority: Annotated[
        int,
        Field(ge=-1000000, le=1000000),
        WithJsonSchema(
            {
                "type": "integer",
                "minimum": -1000000,
                "maximum": 1000000,
                "default": 0,
                "x-kubernetes-validations": [
                    {
                        "rule": "self == 0",
                        "message": "spec.priority is no longer used (any tenant could raise it): "
                        "set spec.priorityClassName to a PriorityClass an admin defined",
                    }
                ],
            }
        ),
    ] = 0
    """Deprecated and ignored: set priorityClassName. The API server refuses a new non-zero
    value; objects stored with one keep it (CRD validation ratcheting) and are queued by their
    PriorityClass like any other."""
    max_restarts: Annotated[int, Field(ge=0, le=10000)] = 10
    """Gang restarts after worker failures before the job fails."""
    suspend: bool = False
    placement_timeout_seconds: Annotated[int, Field(ge=1, le=86400)] = 120
    """Workers not all bound by then: the whole gang is re-placed."""
    rendezvous: Rendezvous = Field(default_factory=Rendezvous)
    placement_objective: Objective = "Default"
    """Default: the solver's order between pools (topology first). CostPerWork: among the pools
    where the gang fits now, the lowest price per unit of work (price per device-hour divided by
    `throughput` of the pool's accelerator type, or by its peakTFLOPS)."""
    throughput: Annotated[
        dict[_WORK_TYPE, Annotated[float, Field(gt=0, le=1e15)]], Field(max_length=32)
    ] = Field(default_factory=dict)
    """Work per device-hour by accelerator type, in any unit the same for all types (samples/s,
    tokens/s...): what CostPerWork divides prices by. Unset: each pool's peakTFLOPS."""
    carbon_deferral: CarbonDeferral | None = None

    @model_validator(mode="after")
    def _deferral_has_a_latest_start(self) -> TrainingJobSpec:
        deferral = self.carbon_deferral
        if deferral is None or deferral.start_by is not None:
            return self
        if self.deadline is None or deferral.expected_duration_seconds is None:
            raise ValueError(
                "carbonDeferral: needs startBy, or expectedDurationSeconds with spec.deadline "
                "(the job must know when it has to start at the latest)"
            )
        return self

    @model_validator(mode="after")
    def _no_reserved_env(self) -> TrainingJobSpec:
        # The template is validated by now: containers and env are lists of objects.
        containers: list[dict[str, Any]] = pod_spec(self.template)["containers"]
        for index, container in enumerate(containers):
            for env in container.get("env") or []:
                if env["name"] in RESERVED_ENV:
                    raise ValueError(
                        f"template.spec.containers[{index}].env: {env['name']} is set by Corral "
                        "for the launcher; remove it from the template"
                    )
        return self


TrainingPhase = Literal[
    "Pending",
    "Queued",
    "Placing",
    "Running",
    "Checkpointing",
    "Recovering",
    "Succeeded",
    "Failed",
    "Suspended",
]


class PlacementStatus(StatusModel):
    pool: str
    level: str | None = None
    """Topology level of the span domain."""
    domain: str | None = None
    """The narrowest domain holding the whole gang."""
    nodes: list[str] = Field(default_factory=list)
    """Node of worker i at index i."""
    time: Time | None = None
    """When the current workers were placed (or last recreated): the bind timeout counts from here."""
    devices_per_worker: int | None = None
    """spec.acceleratorsPerWorker the gang was placed for (a spec change re-places the gang)."""
    replacements: list[int] = Field(default_factory=list)
    """Times worker i was replaced in place in this attempt (its node got a termination notice
    and the others kept running), at index i; empty when none was. Worker i's pod is named
    with this count (`<job>-w<i>-r<attempt>-x<count>`)."""

    def replacement(self, index: int) -> int:
        """How many times worker `index` was replaced in place in this attempt."""
        return self.replacements[index] if index < len(self.replacements) else 0


class CheckpointRecord(StatusModel):
    id: str
    """The request id every worker acknowledged (`corral.dev/checkpoint-completed`)."""
    step: int | None = None
    """`corral.dev/checkpoint-step`: restarted workers get it as CORRAL_RESUME_STEP."""
    time: Time | None = None
    uri: str | None = None
    """`corral.dev/checkpoint-uri`: restarted workers get it as CORRAL_RESUME_FROM."""


class WorkerCounts(StatusModel):
    total: int = 0
    bound: int = 0
    running: int = 0
    succeeded: int = 0
    failed: int = 0


class Accounting(StatusModel):
    """Usage of earlier gang attempts, settled when their workers were deleted."""

    settled_device_hours: float = 0.0
    settled_cost: float = 0.0
    settled_energy_kwh: float = 0.0
    settled_carbon_grams: float = 0.0


class RequeueState(StatusModel):
    """Backoff of re-placements (Kueue's requeueState): a gang whose workers could not all bind
    waits longer each time before it is placed again; reset once the gang runs."""

    count: int = 0
    """Re-placements since the gang last ran."""
    requeue_at: Time | None = None
    """Not placed again before this time."""


RestartReason = Literal["SpotReclaimed", "Maintenance", "NodeFailure", "AppError", "CapacityPolicy"]


class DisruptionStatus(StatusModel):
    """The termination notice the gang is handling (checkpoint, then move): what was read, when
    Corral first saw it, and by when the node goes."""

    node: str
    source: str
    """Who set it: aws-nth, karpenter, gke, aks, kubelet, node-condition or corral."""
    signal: str
    """The exact key read, e.g. `taint aws-node-termination-handler/spot-itn`."""
    reason: RestartReason
    seen: Time
    deadline: Time | None = None


class RestartRecord(StatusModel):
    """Why the gang last started again: an interruption (SpotReclaimed, Maintenance, NodeFailure,
    or CapacityPolicy: the deadline spot policy moved a running gang between spot and on-demand;
    counted in `interruptions`, never against maxRestarts) or a worker's own failure (AppError;
    counted in `restarts`)."""

    reason: RestartReason
    time: Time
    message: str
    lost_work_seconds: float | None = None
    """Work since the last complete checkpoint that the restart discards (when known)."""
    since: Time | None = None
    """When the notice was first seen (or the loss observed): recovery time counts from here."""
    source: str | None = None
    """The notice's source (aws-nth, karpenter, gke, aks, kubelet, node-condition, corral), or
    `policy` for a move of the deadline spot policy."""


CapacityChoice = Literal["spot", "on-demand", "none"]
PolicyChoice = Literal["spot", "on-demand", "none", "any"]


class CapacityStatus(StatusModel):
    """The deadline spot policy's decision (spec.deadline with spec.progress)."""

    type: PolicyChoice
    """What the gang should run on now: spot, on-demand, none (wait for spot), or any (the
    policy cannot decide yet, its steps-per-hour rate is unknown: any capacity
    spec.capacity.types allows; `placed` says which the gang got)."""
    reason: str
    """Why, in numbers (as of the last change of `type`)."""
    since: Time
    """When `type` last changed."""
    placed: CapacityChoice | None = None
    """What the current placement runs on. When `type` differs from it, the running gang is
    being moved (a checkpoint first, then a re-placement on `type`)."""
    committed: bool = False
    """The safety net fired: on-demand until the end."""
    steps_per_hour: float | None = None
    """Learned from the checkpoints (when spec.progress.stepsPerHour is unset)."""
    rate_step: int | None = None
    rate_time: Time | None = None
    """The step and time the next learned rate counts from (reset when the gang starts)."""


class TrainingJobStatus(StatusModel):
    observed_generation: int | None = None
    phase: TrainingPhase = "Pending"
    attempt: int = 0
    """Gang attempt: grows at every restart or re-placement; worker pods are named `-r<attempt>`."""
    queued_since: Time | None = None
    """When the job last entered the queue."""
    placement: PlacementStatus | None = None
    workers: WorkerCounts = Field(default_factory=WorkerCounts)
    last_checkpoint: CheckpointRecord | None = None
    disruption: DisruptionStatus | None = None
    """The termination notice being handled, while the gang checkpoints before it moves."""
    last_restart: RestartRecord | None = None
    interruptions: int = 0
    """Gang moves caused by notices, preemption or node loss: never counted against maxRestarts."""
    restarts: int = 0
    """Gang restarts after a worker's own failure (AppError), bounded by spec.maxRestarts."""
    device_hours: float = 0.0
    cost: float = 0.0
    currency: str | None = None
    energy_kwh: float = 0.0
    """Energy of the device-hours: board watts x utilisation x PUE of the pool (docs/economics.md)."""
    carbon_grams: float = 0.0
    """gCO2e of that energy at the pool's carbon intensity (hourly when it has a schedule)."""
    queued_seconds: float = 0.0
    """Total time spent waiting for placement."""
    deferred_until: Time | None = None
    """The job waits for a lower-carbon window until then (spec.carbonDeferral)."""
    capacity: CapacityStatus | None = None
    """The deadline spot policy's decision (spec.deadline with spec.progress)."""
    accounting: Accounting = Field(default_factory=Accounting)
    requeue_state: RequeueState | None = None
    start_time: Time | None = None
    completion_time: Time | None = None
    conditions: list[Condition] = Field(default_factory=list)


class TrainingJob(SpecModel):
    """A gang of workers, all placed or none."""

    api_version: Literal["corral.dev/v1alpha1"] = "corral.dev/v1alpha1"
    kind: Literal["TrainingJob"] = "TrainingJob"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: TrainingJobSpec
    status: TrainingJobStatus | None = None
