"""InferenceService: model-server replicas on a pool, autoscaled against latency objectives."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field, model_validator

from corral.api.base import SpecModel, StatusModel
from corral.api.meta import Condition, ObjectMeta, Time
from corral.api.selection import WorkloadSelection
from corral.api.template import PodTemplateSpec

METRIC_NAME = r"^[a-zA-Z_:][a-zA-Z0-9_:]*$"
ObjectiveType = Literal["Latency", "TimeToFirstToken", "InterTokenLatency"]
SLO_OBJECTIVE = "slo"
"""The name `spec.autoscaling.slo` carries among the objectives (status, reasons)."""


class SLO(SpecModel):
    """The one-objective shorthand: a percentile of `metrics.prometheus.histogram`."""

    percentile: Annotated[float, Field(gt=0, lt=100)] = 99.0
    latency_ms: Annotated[float, Field(gt=0, le=3_600_000)]


class Objective(SpecModel):
    """A latency objective on one Prometheus histogram; every objective must hold."""

    name: Annotated[
        str, Field(min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    ]
    """Short name used in status and reasons, e.g. `ttft`."""
    histogram: Annotated[str, Field(pattern=METRIC_NAME, max_length=256)]
    """Base name of the histogram in seconds (without _bucket), e.g. `vllm:time_to_first_token_seconds`."""
    type: ObjectiveType = "Latency"
    """What the histogram measures. `Latency` (the whole request) and `TimeToFirstToken` include the wait for a free replica; `InterTokenLatency` grows with the requests a replica serves at once (its batch), not with the queue."""
    percentile: Annotated[float, Field(gt=0, lt=100)] = 99.0
    latency_ms: Annotated[float, Field(gt=0, le=3_600_000)]
    """The objective: `percentile` % of observations within this many milliseconds."""
    selector: Annotated[str, Field(max_length=1024)] | None = None
    """Extra label matchers for this histogram only, e.g. `model_name="llama"`."""


class PrometheusSource(SpecModel):
    url: Annotated[str, Field(pattern=r"^https?://[^\s]+$", max_length=2048)]
    """Base URL of the Prometheus HTTP API."""
    histogram: Annotated[str, Field(pattern=METRIC_NAME, max_length=256)] | None = None
    """Base name of the latency histogram in seconds (without _bucket) that `slo` applies to."""
    selector: Annotated[str, Field(max_length=1024)] | None = None
    """Extra label matchers, e.g. `model="llama"`; the service's own pods are always selected."""
    window_seconds: Annotated[int, Field(ge=10, le=3600)] = 60
    """Range of the rate() window."""
    in_flight: Annotated[str, Field(pattern=METRIC_NAME, max_length=256)] | None = None
    """Optional gauge of requests being served (e.g. `vllm:num_requests_running`): gives the per-request service time by Little's law when no `Latency` objective measures it."""
    queued: Annotated[str, Field(pattern=METRIC_NAME, max_length=256)] | None = None
    """Optional gauge of requests waiting for a slot (e.g. `vllm:num_requests_waiting`): a growing or standing queue is demand the served rate does not show."""
    pod_label: Annotated[str, Field(pattern=r"^([a-zA-Z_][a-zA-Z0-9_]*)?$", max_length=128)] = "pod"
    """The series label holding the pod name; Corral selects its own replicas by it. Empty turns pod matching off (then `selector` must isolate the service)."""
    namespace_label: Annotated[
        str, Field(pattern=r"^([a-zA-Z_][a-zA-Z0-9_]*)?$", max_length=128)
    ] = "namespace"
    """The series label holding the namespace; empty turns namespace matching off."""
    timeout_seconds: Annotated[float, Field(gt=0, le=60)] = 5.0
    """Per-query timeout; a query that takes longer holds the replica count."""


class MetricsSource(SpecModel):
    prometheus: PrometheusSource


class ScalingBehavior(SpecModel):
    scale_up_stabilization_seconds: Annotated[int, Field(ge=0, le=3600)] = 0
    scale_down_stabilization_seconds: Annotated[int, Field(ge=0, le=3600)] = 300
    max_scale_up_rate: Annotated[float, Field(ge=1, le=1000)] = 2.0
    """At most this factor more replicas per decision."""
    max_scale_down_rate: Annotated[float, Field(gt=0, le=1)] = 0.5
    """At most this share of replicas removed per decision."""
    tolerance: Annotated[float, Field(ge=0, lt=1)] = 0.1
    """A scale-down is considered only when the recommendation is at least this share below the current count (HPA's tolerance); scale-ups act on any shortfall."""


class Autoscaling(SpecModel):
    min_replicas: Annotated[int, Field(ge=0, le=10000)] = 1
    max_replicas: Annotated[int, Field(ge=1, le=10000)] = 32
    slo: SLO | None = None
    """One objective on `metrics.prometheus.histogram` (named `slo` in status)."""
    objectives: Annotated[
        list[Objective],
        Field(
            max_length=8,
            json_schema_extra={
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["name"],
            },
        ),
    ] = Field(default_factory=list)
    """Latency objectives, each on its own histogram; all of them (and `slo`) must hold."""
    metrics: MetricsSource | None = None
    behavior: ScalingBehavior = Field(default_factory=ScalingBehavior)
    concurrency_per_replica: Annotated[int, Field(ge=1, le=4096)] = 1
    """Requests one replica serves at once (for an LLM server, its effective batch size); the queueing model treats each replica as this many servers."""
    startup_seconds: Annotated[int, Field(ge=0, le=3600)] = 60
    """Time from a replica's creation until it serves; capacity needed within this time is never released, and forecasts look this far ahead."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.minReplicas <= self.maxReplicas",
                    "message": "autoscaling.minReplicas must be <= autoscaling.maxReplicas",
                    "fieldPath": ".minReplicas",
                },
                {
                    "rule": "has(self.slo) || (has(self.objectives) && size(self.objectives) > 0)",
                    "message": "autoscaling needs slo or at least one objective",
                },
                {
                    "rule": "!has(self.slo) || !has(self.objectives) || "
                    "!self.objectives.exists(o, o.name == 'slo')",
                    "message": "objective name 'slo' is taken by autoscaling.slo",
                    "fieldPath": ".objectives",
                },
            ]
        }
    )

    @model_validator(mode="after")
    def _min_le_max(self) -> Autoscaling:
        if self.min_replicas > self.max_replicas:
            raise ValueError(
                f"minReplicas: {self.min_replicas} must be <= maxReplicas {self.max_replicas}"
            )
        if self.slo is None and not self.objectives:
            raise ValueError("set slo or at least one objective")
        names = [objective.name for objective in self.all_objectives()]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"objectives: name {repeated[0]!r} is used twice")
        return self

    def all_objectives(self) -> list[Objective]:
        """`slo` (on `metrics.prometheus.histogram`) followed by `objectives`.

        An `slo` without a histogram is kept with an empty histogram name: the operator reports
        it in a condition rather than refusing the object, which older versions accepted."""
        out: list[Objective] = []
        if self.slo is not None:
            histogram = None if self.metrics is None else self.metrics.prometheus.histogram
            out.append(
                Objective.model_construct(
                    name=SLO_OBJECTIVE,
                    histogram=histogram or "",
                    type="Latency",
                    percentile=self.slo.percentile,
                    latency_ms=self.slo.latency_ms,
                    selector=None,
                )
            )
        return out + list(self.objectives)


class InferenceServiceSpec(WorkloadSelection):
    template: PodTemplateSpec
    accelerators_per_replica: Annotated[int, Field(ge=1, le=1024)] = 1
    replicas: Annotated[int, Field(ge=0, le=10000)] | None = None
    """A fixed replica count (the scale subresource's path); unset = autoscaled."""
    autoscaling: Autoscaling | None = None
    port: Annotated[int, Field(ge=1, le=65535)] = 8080
    """Container port the model server listens on; the Service targets it."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "has(self.replicas) || has(self.autoscaling)",
                    "message": "set spec.replicas or spec.autoscaling",
                }
            ]
        }
    )

    @model_validator(mode="after")
    def _has_a_size(self) -> InferenceServiceSpec:
        if self.replicas is None and self.autoscaling is None:
            raise ValueError("set replicas (a fixed count) or autoscaling (an SLO)")
        return self


class OwnTimeStatus(StatusModel):
    """The request's own part of an objective's latency (its service, or its prefill, without
    the wait for a slot) as the autoscaler has learned it, over the histogram's buckets."""

    bounds_ms: list[float] = Field(default_factory=list)
    """The histogram's finite bucket bounds."""
    shares: list[float] = Field(default_factory=list)
    """Share of requests in each bucket, one more than `boundsMs` (the last is above them)."""
    mean_ms: float | None = None


class ObjectiveStatus(StatusModel):
    """One objective as last observed and as the service model predicts it."""

    name: str
    percentile: float
    target_latency_ms: float
    observed_latency_ms: float | None = None
    """The percentile over the metrics window (bucket-interpolated, as histogram_quantile)."""
    predicted_latency_ms: float | None = None
    """The model's percentile at the desired replica count and the forecast load."""
    attainment: float | None = None
    """Share of observations within `targetLatencyMs` over the window (0..1)."""
    met: bool | None = None
    correction: float | None = None
    """Smoothed observed/predicted queueing delay of this objective (1 = the model is right);
    a restarted operator resumes from it and from `ownTime`."""
    own_time: OwnTimeStatus | None = None


class ServiceModelStatus(StatusModel):
    """What the autoscaler has learned about one replica, shown so each decision can be checked."""

    arrival_rate: float | None = None
    """Requests per second, observed over the window."""
    forecast_rate: float | None = None
    """Requests per second expected one start-up time ahead."""
    service_time_ms: float | None = None
    """Mean time a request holds one of a replica's `concurrencyPerReplica` slots."""
    service_time_scv: float | None = None
    """Squared coefficient of variation of that time (1 = exponential)."""
    correction: float | None = None
    """Smoothed observed/predicted latency ratio applied to the model (1 = the model is right)."""


class InferenceServiceStatus(StatusModel):
    observed_generation: int | None = None
    replicas: int = 0
    ready_replicas: int = 0
    desired_replicas: int = 0
    selector: str = ""
    """Label selector of the replicas, for the scale subresource."""
    observed_latency_ms: float | None = None
    """Observed latency of the objective closest to (or furthest past) its target."""
    target_latency_ms: float | None = None
    """The target of that objective."""
    slo_attainment: float | None = None
    """Share of requests within that objective's latency over the metrics window (0..1)."""
    objectives: list[ObjectiveStatus] = Field(default_factory=list)
    model: ServiceModelStatus | None = None
    last_scale_time: Time | None = None
    last_scale_reason: str | None = None
    conditions: list[Condition] = Field(default_factory=list)


class InferenceService(SpecModel):
    api_version: Literal["corral.dev/v1alpha1"] = "corral.dev/v1alpha1"
    kind: Literal["InferenceService"] = "InferenceService"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: InferenceServiceSpec
    status: InferenceServiceStatus | None = None
