"""Finding binaries: version checks, cache stamps, KUBEBUILDER_ASSETS and PATH, pins in step."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest

from corral.localfleet import binaries, versions

REPO = Path(__file__).resolve().parents[2]
TOOL = {t.name: t for t in binaries.TOOLS}


@pytest.mark.parametrize(
    ("name", "output", "ok"),
    [
        ("kube-apiserver", "Kubernetes v1.36.3", True),
        ("kube-apiserver", "Kubernetes v1.36.0", True),
        ("kube-apiserver", "Kubernetes v1.35.2", False),
        ("kube-apiserver", "Kubernetes v0.0.0-master+$Format:%H$", False),
        ("etcd", "etcd Version: 3.6.16\nGit SHA: x\nGo Version: go1.26", True),
        ("etcd", "etcd Version: 3.5.24\n", True),
        ("etcd", "etcd Version: 3.4.23\n", False),
        ("kwok", "kwok version v0.8.0 go1.26.8 (linux/amd64)", True),
        ("kwokctl", "kwokctl version v0.7.0 go1.24", False),
        ("kubectl", "Client Version: v1.35.2\nKustomize Version: v5.7.1", True),
        ("kubectl", "Client Version: v1.32.4-dispatcher\nKustomize Version: v5.5.0", False),
        ("helm", "v4.1.4+g05fa379", True),
        ("helm", "", False),
    ],
)
def test_version_acceptance(name: str, output: str, ok: bool) -> None:
    assert TOOL[name].accepts(output) is ok


def test_pins_match_the_wrapper_modules() -> None:
    controlplane = (REPO / "e2e" / "controlplane" / "go.mod").read_text()
    assert f"require k8s.io/kubernetes {versions.KUBERNETES}" in controlplane
    staging = versions.KUBERNETES.replace("v1.", "v0.")
    replaced = re.findall(r"^\s*(k8s\.io/\S+) => k8s\.io/\S+ (v\S+)$", controlplane, re.M)
    assert replaced and all(version == staging for _, version in replaced)
    etcd = (REPO / "e2e" / "etcd" / "go.mod").read_text()
    assert f"require go.etcd.io/etcd/server/v3 {versions.ETCD}" in etcd


def test_ldflags_stamp_the_kubernetes_version() -> None:
    flags = binaries.kubernetes_ldflags("v1.36.3")
    assert "-X k8s.io/component-base/version.gitVersion=v1.36.3" in flags
    assert "-X k8s.io/component-base/version.gitMinor=36" in flags
    assert flags.startswith("-s -w")


def _fake_binary(path: Path, output: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\necho '{output}'\n")
    path.chmod(0o755)
    return path


def test_cache_is_trusted_by_its_version_stamp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBEBUILDER_ASSETS", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    _fake_binary(tmp_path / "kwok", "whatever")
    (tmp_path / "kwok.version").write_text(versions.KWOK + "\n")
    _fake_binary(tmp_path / "kwokctl", "whatever")
    (tmp_path / "kwokctl.version").write_text("v0.7.0\n")  # stale pin: rebuilt
    found = binaries.locate(tmp_path)
    assert found["kwok"] == binaries.Found(tmp_path / "kwok", "cache")
    assert "kwokctl" not in found


def test_kubebuilder_assets_then_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assets, path_dir = tmp_path / "assets", tmp_path / "path"
    _fake_binary(assets / "kube-apiserver", "Kubernetes v1.36.1")
    _fake_binary(assets / "etcd", "etcd Version: 3.4.23")  # too old: passed over
    _fake_binary(path_dir / "etcd", "etcd Version: 3.6.8")
    _fake_binary(path_dir / "kubectl", "Client Version: v1.32.4")  # too old
    monkeypatch.setenv("KUBEBUILDER_ASSETS", str(assets))
    monkeypatch.setenv("PATH", str(path_dir))
    found = binaries.locate(tmp_path / "cache")
    assert found["kube-apiserver"].source == "KUBEBUILDER_ASSETS"
    assert found["etcd"] == binaries.Found(path_dir / "etcd", "PATH")
    assert "kubectl" not in found


def test_repo_root_holds_the_wrapper_modules() -> None:
    assert binaries.repo_root() == REPO


def test_cache_dir_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CORRAL_CACHE_DIR", str(tmp_path))
    assert binaries.cache_dir() == tmp_path / "bin" / versions.KUBERNETES


def test_fetching_helm_does_not_wait_behind_a_control_plane_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`make test` fetches helm (seconds) while another run may hold the control-plane build
    (minutes): each group has its own lock."""
    monkeypatch.delenv("KUBEBUILDER_ASSETS", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))

    def fetch(out: Path, log: object) -> None:
        _fake_binary(out / "kubectl", f"Client Version: {versions.KUBECTL}")
        _fake_binary(out / "helm", versions.HELM)

    monkeypatch.setitem(binaries._BUILDERS, "kubectl", fetch)
    result: dict[str, Path] = {}
    with binaries._locked(tmp_path, "controlplane"):  # a build in progress elsewhere
        worker = threading.Thread(
            target=lambda: result.update(helm=binaries.ensure(tmp_path, only=["helm"])["helm"]),
            daemon=True,
        )
        worker.start()
        worker.join(timeout=10)
    assert result == {"helm": tmp_path / "helm"}
    assert (tmp_path / "helm.version").read_text().strip() == versions.HELM
