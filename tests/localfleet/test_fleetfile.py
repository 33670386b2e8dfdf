"""Fleet files: the shipped fleets, the topology expansion, spot spreading and error messages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from corral.localfleet import fleetfile, nodes

FLEETS = Path(__file__).resolve().parents[2] / "e2e" / "fleets"


def _fleet(**overrides: Any) -> fleetfile.Fleet:
    data: dict[str, Any] = {"name": "t", "regions": [{"name": "r1", "zones": [{"name": "z1"}]}]}
    return fleetfile.parse(data | overrides)


@pytest.mark.parametrize(
    ("name", "hosts", "gpus", "spot", "zones", "blocks", "racks"),
    [
        ("tiny", 4, 32, 0, 1, 1, 2),
        ("demo", 64, 512, 16, 2, 4, 16),
        ("scale", 2000, 16000, 600, 2, 10, 250),
    ],
)
def test_shipped_fleets(
    name: str, hosts: int, gpus: int, spot: int, zones: int, blocks: int, racks: int
) -> None:
    fleet = fleetfile.load(FLEETS / f"{name}.yaml")
    assert fleet.name == name
    assert nodes.summary(fleet) == {
        "hosts": hosts, "gpus": gpus, "spot": spot, "zones": zones, "blocks": blocks, "racks": racks,
    }  # fmt: skip


def test_hosts_are_named_after_their_place_in_the_topology() -> None:
    fleet = _fleet(blocksPerZone=2, racksPerBlock=2, hostsPerRack=2)
    names = [h.name for h in fleetfile.hosts(fleet)]
    assert names[:3] == ["z1-b1-r1-h01", "z1-b1-r1-h02", "z1-b1-r2-h01"]
    assert names[-1] == "z1-b2-r2-h02"
    host = fleetfile.hosts(fleet)[-1]
    assert (host.region, host.zone, host.block, host.rack) == ("r1", "z1", "z1-b2", "z1-b2-r2")


def test_spot_hosts_are_spread_evenly_through_each_zone() -> None:
    fleet = _fleet(hostsPerRack=8, spot=0.25)
    assert [h.spot for h in fleetfile.hosts(fleet)] == [False, False, False, True] * 2


def test_zone_and_block_overrides() -> None:
    fleet = _fleet(
        host={"gpus": 8},
        regions=[
            {
                "name": "r1",
                "zones": [
                    {"name": "z1", "host": {"product": "NVIDIA-H200", "labels": {"a": "1"}}},
                    {
                        "name": "z2",
                        "blocks": [
                            {"racks": 1, "hostsPerRack": 2, "spot": 1.0, "host": {"gpus": 4}},
                            {"racks": 2},
                        ],
                        "hostsPerRack": 3,
                    },
                ],
            }
        ],
    )
    hosts = fleetfile.hosts(fleet)
    z1 = [h for h in hosts if h.zone == "z1"]
    assert [(h.spec.product, h.spec.labels) for h in z1] == [("NVIDIA-H200", {"a": "1"})]
    z2 = [h for h in hosts if h.zone == "z2"]
    assert [(h.block, h.spec.gpus, h.spot) for h in z2[:3]] == [
        ("z2-b1", 4, True),
        ("z2-b1", 4, True),
        ("z2-b2", 8, False),
    ]
    assert len(z2) == 2 + 2 * 3


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"name": "t", "regions": []}, "regions"),
        ({"name": "T!", "regions": [{"name": "r", "zones": [{"name": "z"}]}]}, "name"),
        ({"name": "t", "spot": 1.5, "regions": [{"name": "r", "zones": [{"name": "z"}]}]}, "spot"),
        ({"name": "t", "host": {"memory": "lots"}, "regions": [{"name": "r", "zones": [{"name": "z"}]}]}, "host.memory"),
        ({"name": "t", "racks": 2, "regions": [{"name": "r", "zones": [{"name": "z"}]}]}, "racks: Extra inputs"),
        ({"name": "t", "regions": [{"name": "r", "zones": [{"name": "z"}, {"name": "z"}]}]}, "unique"),
        ([1, 2], "a mapping"),
    ],
)  # fmt: skip
def test_invalid_fleet_files_name_the_field(data: Any, fragment: str) -> None:
    with pytest.raises(fleetfile.FleetFileError) as error:
        fleetfile.parse(data, "f.yaml")
    assert str(error.value).startswith("f.yaml: ")
    assert fragment in str(error.value)


def test_load_reports_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(fleetfile.FleetFileError, match="No such file"):
        fleetfile.load(tmp_path / "nope.yaml")
    (tmp_path / "bad.yaml").write_text("name: [")
    with pytest.raises(fleetfile.FleetFileError, match="invalid YAML"):
        fleetfile.load(tmp_path / "bad.yaml")
