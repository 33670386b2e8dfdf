"""The operator's metrics as a real Prometheus sees them: scraped, parsed and queryable."""

from __future__ import annotations

import json
import shutil
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from builders import node, training_job
from harness import Cluster, ManagedProcess, wait_for
from operator_support import Jobs, MakePool, RunningOperator, free_port


def start_prometheus(spawn: Callable[..., ManagedProcess], tmp_path: Path, target_port: int) -> str:
    binary = shutil.which("prometheus")
    assert binary, "prometheus is not installed: `make prometheus` installs it"
    config = tmp_path / "prometheus.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "scrape_configs": [
                    {
                        "job_name": "corral",
                        "static_configs": [{"targets": [f"127.0.0.1:{target_port}"]}],
                    }
                ],
            }
        )
    )
    port = free_port()
    process = spawn(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        name="prometheus",
    )
    process.wait_for_log(r"Server is ready to receive web requests", timeout=60)
    return f"http://127.0.0.1:{port}"


def query(base: str, promql: str) -> list[dict[str, Any]]:
    url = f"{base}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
    with urllib.request.urlopen(url, timeout=5) as answer:
        body = json.loads(answer.read())
    assert body["status"] == "success", body
    return list(body["data"]["result"])


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
