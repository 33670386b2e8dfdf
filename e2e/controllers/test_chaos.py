"""Chaos on the local fleet: two operator replicas under leader election, a stream of jobs that
finish and fail, 20 SIGKILLs at random moments (half of them the leader's), and one restart of
kube-apiserver. Afterwards every job converges, and at no sampled moment were devices
overcommitted, a worker pod duplicated, or a write sent by a replica that was not leading.

The fast mode (CI) uses short Lease timings (4 s / 3 s / 0.5 s) and a 45 s window; the long mode
(`CORRAL_CHAOS_MODE=long`, run by `make bench`) uses controller-runtime's 15 s / 10 s / 2 s and
a 4-minute window, and writes bench/results/chaos.json.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from builders import node
from chaos import FAST, LONG, Chaos
from harness import Cluster
from operator_support import MakePool

REPO = Path(__file__).resolve().parents[2]


def test_operator_converges_through_kills_an_apiserver_restart_and_failovers(
    cluster: Cluster, namespace: str, make_pool: MakePool, tmp_path: Path
) -> None:
    mode = LONG if os.environ.get("CORRAL_CHAOS_MODE") == "long" else FAST
    hosts = [node(f"h{i}").rack(f"r{i // 2}") for i in range(4)]
    pool = make_pool(hosts)
    capacity = {
        n["metadata"]["name"]: int(n["status"]["allocatable"]["nvidia.com/gpu"])
        for n in cluster.kubectl.json("get", "nodes", "-l", f"e2e.corral.dev/pool={pool}")["items"]
    }
    chaos = Chaos(cluster, namespace, pool, capacity, mode, tmp_path)
    report = chaos.run()
    summary = report.summary()
    print("\nchaos:", json.dumps(summary, indent=1))
    if mode is LONG:
        out = REPO / "bench" / "results" / "chaos.json"
        out.write_text(json.dumps(summary, indent=1) + "\n")

    assert report.kills >= 20 and report.apiserver_restarts == 1
    assert report.leader_kills >= 1 and report.failovers, "no leader kill was measured"
    assert not report.overcommits, report.overcommits[:5]
    assert not report.duplicates, report.duplicates[:5]
    assert not report.non_leader_writes, report.non_leader_writes[:5]
    assert not report.unconverged, report.unconverged[:5]
    assert not report.orphans, report.orphans[:5]
    assert report.samples >= 20
    # Failover to a warm standby: the lease runs out (as the standby last saw it renewed), then
    # its next retry; twice the lease leaves room for a loaded CI machine.
    lease = mode.lease[0]
    assert max(report.failovers) <= 2 * lease + 2, report.failovers
