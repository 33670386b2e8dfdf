"""Prometheus metrics of the operator, on one registry that `corral run` serves at /metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

POOL_DEVICES = Gauge(
    "corral_pool_devices",
    "Devices of a GPUPool by state (capacity, allocatable, allocated, free).",
    ["pool", "state"],
    registry=REGISTRY,
)
POOL_FRAGMENTATION = Gauge(
    "corral_pool_fragmentation",
    "1 - free devices on wholly free nodes / free devices of a GPUPool: the share of free "
    "devices a gang of whole-node workers cannot use (0 = unfragmented or nothing free).",
    ["pool"],
    registry=REGISTRY,
)
PLACEMENT_SECONDS = Histogram(
    "corral_placement_seconds",
    "Time the gang solver took for one placement decision.",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
    registry=REGISTRY,
)
JOB_QUEUE_SECONDS = Histogram(
    "corral_job_queue_seconds",
    "Time a TrainingJob waited from creation (or requeue) until it was placed.",
    buckets=(0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 24 * 3600),
    registry=REGISTRY,
)
JOBS = Gauge("corral_jobs", "TrainingJobs by phase.", ["phase"], registry=REGISTRY)
JOB_RESTARTS = Counter(
    "corral_job_restarts_total", "Gang restarts of TrainingJobs.", ["namespace"], registry=REGISTRY
)
INTERRUPTIONS = Counter(
    "corral_interruptions_total",
    "Workloads moved by the platform, by pool, notice source (node-failure when there was no "
    "notice) and kind: TrainingJob gang moves (notices, preemption, node loss; never counted as "
    "restarts) and InferenceService replicas replaced for a termination notice.",
    ["pool", "source", "kind"],
    registry=REGISTRY,
)
CHECKPOINT_SECONDS = Histogram(
    "corral_checkpoint_seconds",
    "Time from a checkpoint request to the last worker's acknowledgement, by pool.",
    ["pool"],
    buckets=(1, 2, 5, 10, 20, 30, 60, 90, 120, 300, 600, 1800),
    registry=REGISTRY,
)
RECOVERY_SECONDS = Histogram(
    "corral_recovery_seconds",
    "Time from a termination notice (or a node's loss) to every worker Running again (MTTR), "
    "by pool.",
    ["pool"],
    buckets=(5, 10, 20, 30, 60, 90, 120, 180, 300, 600, 1800, 3600),
    registry=REGISTRY,
)
LOST_WORK_SECONDS = Histogram(
    "corral_lost_work_seconds",
    "Work discarded by an interruption: time since the last complete checkpoint (0 when the "
    "gang checkpointed on notice), by the pool the gang was on.",
    ["pool"],
    buckets=(0, 1, 10, 60, 300, 900, 1800, 3600, 7200, 14400),
    registry=REGISTRY,
)
USAGE_LABELS = ["namespace", "team", "pool", "capacity_type"]
"""Who pays (namespace, the `corral.dev/team` label) and what for (pool, capacity type)."""
GANG_RACES = Counter(
    "corral_gang_races_total",
    "Gangs re-placed at once because another pod took room planned for a worker not bound yet.",
    ["pool"],
    registry=REGISTRY,
)
DEVICE_HOURS = Counter(
    "corral_device_hours_total",
    "Device-hours consumed by Corral workloads.",
    USAGE_LABELS,
    registry=REGISTRY,
)
COST = Counter(
    "corral_cost_total",
    "Cost of device-hours consumed, at the pool's price for the node's capacity type.",
    [*USAGE_LABELS, "currency"],
    registry=REGISTRY,
)
ENERGY_KWH = Counter(
    "corral_energy_kwh_total",
    "Energy of device-hours consumed: board watts x utilisation x PUE of the pool (kWh).",
    USAGE_LABELS,
    registry=REGISTRY,
)
CARBON_GRAMS = Counter(
    "corral_carbon_grams_total",
    "gCO2e of that energy at the pool's carbon intensity (hourly when it has a schedule).",
    USAGE_LABELS,
    registry=REGISTRY,
)
STATUS_WRITES = Counter(
    "corral_status_writes_total",
    "Status patches the operator sent, by kind (unchanged status is never written).",
    ["kind"],
    registry=REGISTRY,
)

# -- the API client and the runtime around it -------------------------------------------------

API_REQUESTS = Counter(
    "corral_api_requests_total",
    "Every HTTP request the operator sent to the API server (retries included), by verb "
    "(get, list, watch, create, update, patch, delete), resource and HTTP code "
    "(<error> when no answer came).",
    ["verb", "resource", "code"],
    registry=REGISTRY,
)
API_REQUEST_SECONDS = Histogram(
    "corral_api_request_seconds",
    "Latency of API requests until the answer is read (watches: until the stream opened).",
    ["verb", "resource"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
    registry=REGISTRY,
)
API_RETRIES = Counter(
    "corral_api_retries_total",
    "Requests sent again, by why: throttled (429), server_error (5xx), no_answer (connection "
    "or timeout), unauthorized (401, after refreshing credentials).",
    ["verb", "reason"],
    registry=REGISTRY,
)
LEADER = Gauge(
    "corral_leader", "1 while this replica holds the leader Lease, else 0.", registry=REGISTRY
)
LEADER_TRANSITIONS = Counter(
    "corral_leader_transitions_total",
    "Times this replica started or stopped leading.",
    registry=REGISTRY,
)
EVENTS = Counter(
    "corral_events_total",
    "Kubernetes Events by outcome: created, aggregated (an existing Event's count patched), "
    "rate_limited (per-object budget spent), dropped (send queue full), failed (API error).",
    ["outcome"],
    registry=REGISTRY,
)
INFORMER_RELISTS = Counter(
    "corral_informer_relists_total",
    "Lists after a watch expired (deletions missed meanwhile are synthesised from the diff).",
    ["kind"],
    registry=REGISTRY,
)
INFERENCE_REPLICAS = Gauge(
    "corral_inference_replicas",
    "Replicas of an InferenceService by state: desired (the size Corral keeps), live (pods not "
    "terminating) and ready.",
    ["namespace", "name", "state"],
    registry=REGISTRY,
)
INFERENCE_LATENCY = Gauge(
    "corral_inference_latency_seconds",
    "An autoscaled InferenceService objective's observed percentile over the autoscaler's "
    "metrics window (absent while not observed).",
    ["namespace", "name", "objective"],
    registry=REGISTRY,
)
INFERENCE_OBJECTIVE = Gauge(
    "corral_inference_objective_seconds",
    "An InferenceService objective's latency target.",
    ["namespace", "name", "objective"],
    registry=REGISTRY,
)
INFERENCE_ATTAINMENT = Gauge(
    "corral_inference_slo_attainment",
    "Share of an InferenceService's requests of the metrics window within an objective's "
    "latency target, 0-1 (absent while not observed).",
    ["namespace", "name", "objective"],
    registry=REGISTRY,
)
INFERENCE_ATTAINMENT_TARGET = Gauge(
    "corral_inference_slo_attainment_target",
    "The share an objective requires within its latency target: its percentile / 100.",
    ["namespace", "name", "objective"],
    registry=REGISTRY,
)
INFERENCE_REQUEST_RATE = Gauge(
    "corral_inference_request_rate",
    "Requests per second arriving at an autoscaled InferenceService, as the autoscaler measured "
    "them over its window.",
    ["namespace", "name"],
    registry=REGISTRY,
)
INFERENCE_SCALINGS = Counter(
    "corral_inference_scalings_total",
    "Sizes the autoscaler changed an InferenceService to, by direction (up, down).",
    ["namespace", "name", "direction"],
    registry=REGISTRY,
)
