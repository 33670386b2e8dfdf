"""The Dockerfile and the chart agree on how the operator runs (the image itself is built with a
container engine: docs/install.md#image)."""

from __future__ import annotations

import json
import re

from tests.chart.helm import ROOT, render

DOCKERFILE = (ROOT / "Dockerfile").read_text()


def _runtime_stage() -> str:
    return DOCKERFILE.split("\nFROM ")[-1]


def test_the_image_runs_as_the_numeric_user_the_chart_requires() -> None:
    user = re.search(r"^USER (\d+):(\d+)$", _runtime_stage(), re.M)
    assert user, "the runtime stage sets a numeric USER uid:gid (runAsNonRoot can verify it)"
    pod = render().one("Deployment")["spec"]["template"]["spec"]["securityContext"]
    assert (pod["runAsUser"], pod["runAsGroup"]) == (int(user[1]), int(user[2]))
    assert int(user[1]) != 0


def test_the_chart_runs_the_image_entrypoint_with_run() -> None:
    entrypoint = re.search(r"^ENTRYPOINT (\[.*\])$", _runtime_stage(), re.M)
    assert entrypoint and json.loads(entrypoint[1]) == ["corral"]
    assert render().container()["args"][0] == "run"


def test_the_local_fleet_tooling_stays_out_of_the_image() -> None:
    assert "rm -rf operator/corral/localfleet" in DOCKERFILE
    assert "COPY --from=build /opt/corral /opt/corral" in _runtime_stage()
    assert "operator" not in _runtime_stage().replace("/opt/corral", "")
