"""`corral fleet interrupt|replay-spot`: each source's signal is what Corral's notice reader reads."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from tests.disruption.builders import T0, at, signal_node, worker_pod

from corral.disruption import notices
from corral.localfleet import interrupt


def _apply(node: dict[str, Any], found: interrupt.Signal) -> dict[str, Any]:
    """What the API server holds after the merge patches (enough of them for these keys)."""
    out = copy.deepcopy(node)
    for section, fields in found.node_patch.items():
        for key, value in fields.items():
            if isinstance(value, dict):
                out[section].setdefault(key, {}).update(value)
            else:
                out[section][key] = value
    if found.node_status:
        (ready,) = found.node_status["status"]["conditions"]
        out["status"]["conditions"] = [ready]
    return out


@pytest.mark.parametrize("source", interrupt.SOURCES)
def test_every_source_is_read_back_as_that_source(source: interrupt.SourceName) -> None:
    node = signal_node("n1").spot().taint("dedicated", "gpu").obj()
    found = interrupt.signal(source, node["spec"].get("taints", []), T0, 120)
    after = _apply(node, found)
    signals = notices.node_notices(after)
    assert signals.problems == ()
    read = [(n.source, n.kind) for n in signals.notices if not n.advisory]
    assert read == [(interrupt.READ_AS[source], "reclaim")]
    kept = [t["key"] for t in after["spec"].get("taints", [])]
    assert "dedicated" in kept  # the node's own taints stay
    if source == "corral":
        (notice,) = signals.notices
        assert notice.deadline == at(120)
    if source == "kubelet":
        assert found.pod_condition is not None
        pod = worker_pod("w0", conditions=[found.pod_condition])
        (pod_notice,) = notices.pod_notices(pod).notices
        assert pod_notice.pod == "default/w0" and "TerminationByKubelet" in pod_notice.signal


def test_signal_does_not_repeat_its_taint() -> None:
    first = interrupt.signal("gke", [], T0, 30)
    again = interrupt.signal("gke", first.node_patch["spec"]["taints"], T0, 30)
    assert again.node_patch == first.node_patch


def test_unknown_source() -> None:
    with pytest.raises(ValueError, match="unknown source"):
        interrupt.signal("azure", [], T0, 30)  # type: ignore[arg-type]


def _trace(tmp_path: Path, folder: str, gap: float, data: list[int]) -> Path:
    path = tmp_path / folder / "aws-01-01-2024" / "us-east-1a_v100_1.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"metadata": {"gap_seconds": gap}, "data": data}))
    return path


def test_single_node_trace_moves_every_spot_node(tmp_path: Path) -> None:
    trace = interrupt.load_trace(_trace(tmp_path, "1-node", 600, [1, 0, 1]))
    assert trace.capacity == 1 and trace.gap_seconds == 600
    spot = ["s3", "s1", "s2"]
    assert interrupt.up_at(trace, 0, spot) == {"s1", "s2", "s3"}
    assert interrupt.up_at(trace, 1, spot) == set()


def test_multi_node_trace_is_a_share_of_the_spot_nodes(tmp_path: Path) -> None:
    trace = interrupt.load_trace(_trace(tmp_path, "4-node", 300, [4, 2, 3, 0, 9]))
    assert trace.capacity == 4
    spot = [f"s{i}" for i in range(8)]
    assert [len(interrupt.up_at(trace, t, spot)) for t in range(5)] == [8, 4, 6, 0, 8]
    assert interrupt.up_at(trace, 1, spot) == {"s0", "s1", "s2", "s3"}  # first in name order


def test_trace_capacity_override_and_bad_files(tmp_path: Path) -> None:
    path = _trace(tmp_path, "x", 30, [0, 3, 6])
    assert interrupt.load_trace(path).capacity == 6
    assert interrupt.load_trace(path, capacity=3).capacity == 3
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"metadata": {"gap_seconds": 0}, "data": [1]}))
    with pytest.raises(ValueError):
        interrupt.load_trace(bad)


def test_the_cli_offers_every_source() -> None:
    from corral.commands.fleet import NOTICE_SOURCES

    assert NOTICE_SOURCES == interrupt.SOURCES


def test_fleet_up_reattaches_a_node_the_kubelet_source_detached() -> None:
    from corral.localfleet import cluster, fleetfile, nodes

    fleet = fleetfile.load(Path(__file__).resolve().parents[2] / "e2e/fleets/tiny.yaml")
    desired = nodes.fleet_nodes(fleet)[0]
    existing = copy.deepcopy(desired)
    assert not cluster._differs(existing, desired)
    detached = interrupt.signal("kubelet", [], T0, 30).node_patch["metadata"]["annotations"]
    existing["metadata"]["annotations"].update(detached)
    assert cluster._differs(existing, desired)
