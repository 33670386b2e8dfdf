"""What a gang asks for, reduced to plain values the solver reads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from corral.api.meta import Toleration
from corral.api.selection import ALL_CAPACITY_TYPES, CapacityType, WorkloadSelection
from corral.api.template import pod_spec, template_node_selector, template_tolerations
from corral.api.trainingjob import Objective, TrainingJob
from corral.fleet.demand import WorkerDemand
from corral.fleet.memo import kept
from corral.fleet.resources import CPU, MEMORY, PODS, pod_requests

if TYPE_CHECKING:
    from corral.placement.scarcity import Contention


@dataclass(frozen=True)
class PlacementRequest:
    """A gang: `workers` identical workers, all placed or none."""

    key: str
    """`namespace/name` of the workload, for messages."""
    workers: int
    devices_per_worker: int
    cpu_millis_per_worker: int = 0
    memory_bytes_per_worker: int = 0
    tolerations: tuple[Toleration, ...] = ()
    node_selector: tuple[tuple[str, str], ...] = ()
    """The worker template's `spec.nodeSelector`, as sorted pairs."""
    pools: tuple[str, ...] = ()
    """Pools to consider; empty means every pool."""
    accelerator_types: tuple[str, ...] = ()
    min_memory_gib: float | None = None
    capacity_types: tuple[CapacityType, ...] = ALL_CAPACITY_TYPES
    capacity_prefer: CapacityType | None = None
    jurisdictions: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    required_level: str | None = None
    preferred_level: str | None = None
    carbon_hour: int | None = None
    """UTC hour for pools with an hourly carbon schedule (the caller passes the time in); None
    compares their static figure."""
    objective: Objective = "Default"
    """`spec.placementObjective`: the solver ignores it; `corral.cost.objective` acts on it."""
    throughput: tuple[tuple[str, float], ...] = ()
    """`spec.throughput`: work per device-hour by accelerator type, sorted pairs."""
    contention: Contention | None = None
    """How contended each pool is by the jobs present (`corral.placement.scarcity`; the
    scheduling pass passes it in, as it passes the hour): between pools that place the gang
    equally well by topology, the least contended wins. None: every pool counts as 0."""

    @property
    def name(self) -> str:
        return self.key

    @property
    def devices(self) -> int:
        return self.workers * self.devices_per_worker

    def worker_requests(self, resource_name: str) -> dict[str, int]:
        """What one worker takes from its node, for the assumed-pod ledger."""
        amounts = {
            resource_name: self.devices_per_worker,
            CPU: self.cpu_millis_per_worker,
            MEMORY: self.memory_bytes_per_worker,
            PODS: 1,
        }
        return {name: amount for name, amount in amounts.items() if amount}

    def demand(self) -> WorkerDemand:
        # Asked for once per waiting job and pool in every scheduling pass; the request is
        # immutable, so its demand is built once (kept outside the dataclass fields: equality
        # and hashing do not see it).
        return kept(
            self,
            "_demand",
            None,
            lambda: WorkerDemand.of(
                devices=self.devices_per_worker,
                cpu_millis=self.cpu_millis_per_worker,
                memory_bytes=self.memory_bytes_per_worker,
                tolerations=self.tolerations,
                capacity_types=self.capacity_types,
                node_selector=dict(self.node_selector),
            ),
        )

    @classmethod
    def of_workload(
        cls,
        key: str,
        selection: WorkloadSelection,
        template: dict[str, Any],
        *,
        workers: int,
        devices_per_worker: int,
        **more: Any,
    ) -> PlacementRequest:
        """A gang of `workers` pods of `template`, where a workload's selection fields allow
        (shared by TrainingJob gangs and InferenceService replicas, a gang of one)."""
        requests = pod_requests(pod_spec(template))
        return cls(
            key=key,
            workers=workers,
            devices_per_worker=devices_per_worker,
            cpu_millis_per_worker=requests.get(CPU, 0),
            memory_bytes_per_worker=requests.get(MEMORY, 0),
            tolerations=template_tolerations(template),
            node_selector=template_node_selector(template),
            pools=tuple(selection.pools),
            accelerator_types=tuple(selection.accelerator.types),
            min_memory_gib=selection.accelerator.min_memory_gib,
            capacity_types=tuple(selection.capacity.types),
            capacity_prefer=selection.capacity.prefer,
            jurisdictions=tuple(selection.residency.jurisdictions),
            regions=tuple(selection.residency.regions),
            **more,
        )

    @classmethod
    def from_training_job(cls, job: TrainingJob) -> PlacementRequest:
        """The gang of a TrainingJob. The model has validated the template (tolerations,
        nodeSelector, quantities), so this cannot fail for a parsed job."""
        spec = job.spec
        meta = job.metadata
        return cls.of_workload(
            f"{meta.namespace or 'default'}/{meta.name or ''}",
            spec,
            spec.template,
            workers=spec.workers,
            devices_per_worker=spec.accelerators_per_worker,
            required_level=spec.topology.required,
            preferred_level=spec.topology.preferred,
            objective=spec.placement_objective,
            throughput=tuple(sorted(spec.throughput.items())),
        )
