"""The operator's metrics as a real Prometheus sees them: scraped, parsed and queryable."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from builders import node, training_job
from harness import Cluster, ManagedProcess, wait_for
from operator_support import Jobs, MakePool, RunningOperator, query, start_prometheus


def test_prometheus_scrapes_pool_job_and_placement_metrics(
    cluster: Cluster,
    namespace: str,
    make_pool: MakePool,
    jobs: Jobs,
    operator: RunningOperator,
    spawn: Callable[..., ManagedProcess],
    tmp_path: Path,
) -> None:
    prometheus = start_prometheus(spawn, tmp_path, operator.metrics_port)
    pool = make_pool([node("h1").rack("r1"), node("h2").rack("r1")])
    jobs.create(training_job("watched", namespace).workers(1).gpus(8).pool(pool).obj())
    jobs.wait_phase("watched", "Running")

    def scraped(promql: str, expected: float) -> Callable[[], bool]:
        return lambda: any(float(r["value"][1]) == expected for r in query(prometheus, promql))

    wait_for(scraped('up{job="corral"}', 1), timeout=30, message="Prometheus scrapes the operator")
    wait_for(
        scraped(f'corral_pool_devices{{pool="{pool}",state="allocated"}}', 8),
        timeout=30,
        message="allocated devices of the pool in Prometheus",
    )
    wait_for(
        scraped(f'corral_pool_devices{{pool="{pool}",state="free"}}', 8),
        timeout=30,
        message="free devices of the pool in Prometheus",
    )
    wait_for(
        lambda: any(
            float(r["value"][1]) >= 1 for r in query(prometheus, 'corral_jobs{phase="Running"}')
        ),
        timeout=30,
        message="running jobs in Prometheus",
    )
    wait_for(
        lambda: any(
            float(r["value"][1]) >= 1 for r in query(prometheus, "corral_placement_seconds_count")
        ),
        timeout=30,
        message="placement histogram in Prometheus",
    )
    buckets = query(prometheus, "corral_placement_seconds_bucket")
    assert {r["metric"]["le"] for r in buckets} >= {"0.001", "0.01", "+Inf"}, "histogram buckets"
