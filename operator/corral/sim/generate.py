"""A generator of gang workloads, for fleets where no job log is at hand.

No public multi-node training job log could be obtained for this project, so gang workloads are
generated. The parameters below give the *shape* that the published analyses of production
deep-learning clusters report — Microsoft Philly (Jeon et al., "Analysis of Large-Scale
Multi-Tenant GPU Clusters for DNN Training Workloads", USENIX ATC '19) and SenseTime Helios (Hu
et al., "Characterization and Prediction of Deep Learning Workloads in Large-Scale GPU
Datacenters", SC '21): most jobs ask for 1 to 8 devices, a small share asks for tens to hundreds
and takes most of the device-time, bigger jobs run longer, and run times are heavy-tailed,
from minutes to days. The numbers are ours, not fitted to those traces (they are not available
here); `describe` reports what a generated workload really contains, and docs/simulate.md prints
it for the benchmark's workload, so a reader can judge the match.

Deterministic: the same parameters and seed give the same jobs.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from corral.sim.workload import LEVELS, WorkloadJob

HOST_DEVICES = 8
"""Devices per host: jobs of more than this many devices are gangs of whole-host workers."""


@dataclass(frozen=True)
class Tenant:
    namespace: str
    team: str
    weight: float


@dataclass(frozen=True)
class GeneratorParams:
    size_mix: tuple[tuple[int, float], ...] = (
        (1, 0.55),
        (2, 0.10),
        (4, 0.12),
        (8, 0.13),
        (16, 0.04),
        (32, 0.03),
        (64, 0.02),
        (128, 0.007),
        (256, 0.003),
    )
    """(devices, share of jobs): 90 % of jobs take at most one 8-device host."""
    median_seconds_one_device: float = 1800.0
    """Median run time of a 1-device job."""
    size_exponent: float = 0.3
    """Median run time grows as devices ** this (8 devices: 1.9x, 256: 5.3x the 1-device median)."""
    sigma: float = 1.5
    """Log-normal shape: the 99th percentile is exp(2.33 x 1.5) = 33x the median."""
    max_seconds: float = 7 * 86400.0
    high_priority_share: float = 0.1
    high_priority: int = 100
    required_block_share: float = 0.3
    """Multi-host gangs that must stay inside one network block; the others prefer one rack."""
    checkpoint_seconds: float = 1800.0
    """Checkpoint interval of jobs that run longer than it."""
    tenants: tuple[Tenant, ...] = (
        Tenant("research", "nlp", 0.35),
        Tenant("research", "vision", 0.25),
        Tenant("prod", "recsys", 0.25),
        Tenant("platform", "infra", 0.15),
    )
    extra: dict[str, Any] = field(default_factory=dict)
    """Fields set on every job (e.g. `capacity_types`)."""

    def median_seconds(self, devices: int) -> float:
        return self.median_seconds_one_device * math.pow(devices, self.size_exponent)

    def mean_device_seconds(self) -> float:
        """Expected devices x run time of one job: the mean of the log-normal capped at
        `max_seconds`, E[min(X, c)] = e^(mu + s^2/2) Phi((ln c - mu - s^2)/s) + c (1 - Phi((ln c -
        mu)/s))."""
        sigma, cap = self.sigma, self.max_seconds
        total = 0.0
        for devices, share in self.size_mix:
            mu = math.log(self.median_seconds(devices))
            below = math.exp(mu + sigma**2 / 2) * _phi((math.log(cap) - mu - sigma**2) / sigma)
            total += share * devices * (below + cap * (1 - _phi((math.log(cap) - mu) / sigma)))
        return total


def _phi(x: float) -> float:
    """The standard normal distribution function."""
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


def arrival_rate(params: GeneratorParams, devices: int, load: float) -> float:
    """Jobs per second that offer `load` x `devices` of device-time on average."""
    return load * devices / params.mean_device_seconds()


def generate(
    params: GeneratorParams, devices: int, hours: float, load: float, seed: int
) -> list[WorkloadJob]:
    """Poisson arrivals over `hours` offering `load` (0.85 = 85 %) of a fleet of `devices`."""
    rng = random.Random(seed)
    rate = arrival_rate(params, devices, load)
    sizes = [size for size, _ in params.size_mix]
    shares = [share for _, share in params.size_mix]
    tenants = list(params.tenants)
    weights = [t.weight for t in tenants]
    jobs: list[WorkloadJob] = []
    now = 0.0
    horizon = hours * 3600.0
    while True:
        now += rng.expovariate(rate)
        if now >= horizon:
            return jobs
        size = rng.choices(sizes, shares)[0]
        tenant = rng.choices(tenants, weights)[0]
        median = params.median_seconds(size)
        duration = min(
            params.max_seconds, max(60.0, rng.lognormvariate(math.log(median), params.sigma))
        )
        workers, per_worker = (
            (1, size) if size <= HOST_DEVICES else (size // HOST_DEVICES, HOST_DEVICES)
        )
        required = preferred = None
        if workers > 1:
            if rng.random() < params.required_block_share:
                required = LEVELS["block"]
                preferred = LEVELS["rack"]
            else:
                preferred = LEVELS["rack"]
        priority = params.high_priority if rng.random() < params.high_priority_share else 0
        jobs.append(
            WorkloadJob(
                name=f"{tenant.team}-{len(jobs):06d}",
                submit=round(now, 3),
                workers=workers,
                devices_per_worker=per_worker,
                duration=round(duration, 1),
                namespace=tenant.namespace,
                team=tenant.team,
                priority=priority,
                required=required,
                preferred=preferred,
                checkpoint_seconds=params.checkpoint_seconds
                if duration > params.checkpoint_seconds
                else 0.0,
                **params.extra,
            )
        )


def describe(jobs: list[WorkloadJob]) -> dict[str, Any]:
    """What a workload contains: the share of jobs and of device-time by job size, and run-time
    percentiles, for docs and reports."""
    by_size: Counter[int] = Counter()
    time_by_size: dict[int, float] = {}
    for job in jobs:
        by_size[job.devices] += 1
        time_by_size[job.devices] = time_by_size.get(job.devices, 0.0) + job.devices * job.duration
    total_time = sum(time_by_size.values()) or 1.0
    durations = sorted(job.duration for job in jobs)

    def pct(share: float) -> float:
        return durations[min(len(durations) - 1, int(share * len(durations)))] if durations else 0.0

    return {
        "jobs": len(jobs),
        "device_hours": round(total_time / 3600.0, 1),
        "by_devices": {
            str(size): {
                "jobs_share": round(count / len(jobs), 4),
                "device_time_share": round(time_by_size.get(size, 0.0) / total_time, 4),
            }
            for size, count in sorted(by_size.items())
        },
        "duration_seconds": {"p50": pct(0.5), "p90": pct(0.9), "p99": pct(0.99), "max": pct(1.0)},
    }
