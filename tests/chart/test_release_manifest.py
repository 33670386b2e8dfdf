"""manifests/corral.yaml, the one file plain-kubectl users apply, is the chart rendered by
`make manifest`: a stale copy fails here, as a stale crds/ fails tests/api/test_crds.py."""

from __future__ import annotations

import re
import shlex
import subprocess

import yaml
from tests.chart.helm import ROOT, helm

MANIFEST = ROOT / "manifests" / "corral.yaml"


def _render_as_make_does() -> str:
    makefile = (ROOT / "Makefile").read_text()
    match = re.search(r"^MANIFEST_RENDER = (.+)$", makefile, re.M)
    assert match, "the Makefile defines MANIFEST_RENDER"
    return subprocess.run(
        [str(helm()), *shlex.split(match[1])],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout


def test_the_release_manifest_is_up_to_date() -> None:
    assert MANIFEST.read_text() == _render_as_make_does(), "run `make manifest`"


def test_the_release_manifest_holds_the_crds_a_namespace_and_the_operator() -> None:
    objects = [doc for doc in yaml.safe_load_all(MANIFEST.read_text()) if doc]
    kinds = [o["kind"] for o in objects]
    assert kinds[:4] == ["CustomResourceDefinition"] * 3 + ["Namespace"], "applied in order"
    assert {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Deployment"} <= set(kinds)
    crds = {o["metadata"]["name"]: o for o in objects if o["kind"] == "CustomResourceDefinition"}
    generated = [yaml.safe_load(path.read_text()) for path in (ROOT / "crds").glob("*.yaml")]
    assert crds == {crd["metadata"]["name"]: crd for crd in generated}
    namespaced = [o for o in objects if "namespace" in o["metadata"]]
    assert {o["metadata"]["namespace"] for o in namespaced} == {"corral-system"}
