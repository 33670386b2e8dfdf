"""Where the API server is and how to authenticate to it: in-cluster config or kubeconfig.

The forms kubectl reads are read here without the `kubernetes` package: several files in
$KUBECONFIG (the first to set a key wins), relative paths resolved from the file that names
them, `*-data` fields inline, `insecure-skip-tls-verify`, `tls-server-name`, token and
tokenFile, username/password, client certificates, exec plugins and the `oidc` auth-provider.
Not supported (refused with a one-line reason): impersonation (`as`), `proxy-url`, and the
removed `gcp`/`azure` auth-providers (their exec plugins replace them).
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from corral.kube.credentials import (
    EXEC_API_VERSIONS,
    CertFilesSource,
    Credentials,
    ExecSource,
    Material,
    OIDCSource,
    Source,
    StaticSource,
    TLSConfig,
    TokenFileSource,
)

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")


class ConfigError(ValueError):
    """The kubeconfig cannot be used; the message is one line naming the field."""


@dataclass
class ClusterConfig:
    server: str
    tls: TLSConfig = field(default_factory=TLSConfig)
    credentials: Credentials = field(default_factory=Credentials)
    namespace: str | None = None
    source: str = ""
    """Where it came from (a file, or `in-cluster`), for messages."""


def from_environment(
    kubeconfig: str | None = None, environ: Mapping[str, str] | None = None
) -> ClusterConfig:
    """In-cluster when running in a pod and no kubeconfig is named; else the kubeconfig
    (`kubeconfig`, $KUBECONFIG, ~/.kube/config)."""
    env = os.environ if environ is None else environ
    in_pod = env.get("KUBERNETES_SERVICE_HOST") and (SERVICE_ACCOUNT / "token").exists()
    if kubeconfig is None and in_pod:
        return in_cluster(env)
    if kubeconfig is not None:
        files = [Path(kubeconfig)]
    elif env.get("KUBECONFIG"):
        files = [Path(p) for p in env["KUBECONFIG"].split(os.pathsep) if p]
    else:
        files = [Path(env.get("HOME", "~")).expanduser() / ".kube" / "config"]
    return load(files)


def in_cluster(
    environ: Mapping[str, str] | None = None, directory: Path = SERVICE_ACCOUNT
) -> ClusterConfig:
    env = os.environ if environ is None else environ
    host, port = env["KUBERNETES_SERVICE_HOST"], env.get("KUBERNETES_SERVICE_PORT", "443")
    if ":" in host:
        host = f"[{host}]"  # IPv6
    ca = directory / "ca.crt"
    namespace = directory / "namespace"
    return ClusterConfig(
        server=f"https://{host}:{port}",
        tls=TLSConfig(ca_pem=ca.read_bytes() if ca.exists() else None),
        # Projected tokens rotate (the kubelet renews them at 80 % of their life): re-read.
        credentials=Credentials([TokenFileSource(directory / "token")]),
        namespace=namespace.read_text().strip() if namespace.exists() else None,
        source="in-cluster",
    )


def load(files: list[Path], context: str | None = None) -> ClusterConfig:
    merged = _merge(files)
    where = ", ".join(str(f) for f in files)
    name = context or merged.current_context
    if not name:
        raise ConfigError(f"{where}: no current-context")
    ctx = merged.contexts.get(name)
    if ctx is None:
        raise ConfigError(f"{where}: context {name!r} not found")
    cluster_name, user_name = ctx[0].get("cluster"), ctx[0].get("user")
    if cluster_name not in merged.clusters:
        raise ConfigError(f"{where}: context {name!r} names cluster {cluster_name!r}, not found")
    cluster, cluster_dir = merged.clusters[cluster_name]
    if user_name and user_name not in merged.users:
        raise ConfigError(f"{where}: context {name!r} names user {user_name!r}, not found")
    user, user_dir = merged.users[user_name] if user_name else ({}, cluster_dir)
    server = str(cluster.get("server") or "")
    if not server:
        raise ConfigError(f"{where}: cluster {cluster_name!r} has no server")
    if cluster.get("proxy-url"):
        raise ConfigError(f"{where}: cluster {cluster_name!r}: proxy-url is not supported")
    tls = _tls(cluster, cluster_dir, f"{where}: cluster {cluster_name!r}")
    sources = _sources(user, user_dir, cluster, tls, f"{where}: user {user_name!r}")
    return ClusterConfig(
        server=server.rstrip("/"),
        tls=tls,
        credentials=Credentials(sources),
        namespace=ctx[0].get("namespace"),
        source=where,
    )


@dataclass
class _Merged:
    current_context: str | None = None
    clusters: dict[str, tuple[dict[str, Any], Path]] = field(default_factory=dict)
    users: dict[str, tuple[dict[str, Any], Path]] = field(default_factory=dict)
    contexts: dict[str, tuple[dict[str, Any], Path]] = field(default_factory=dict)


def _merge(files: list[Path]) -> _Merged:
    """kubectl's rule: the first file to set a value (or name an entry) wins."""
    merged = _Merged()
    found = False
    for path in files:
        if not path.is_file():
            continue
        found = True
        try:
            doc = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(
                f"{path}: not readable as YAML: {' '.join(str(exc).split())}"
            ) from None
        if not isinstance(doc, dict):
            raise ConfigError(f"{path}: not a kubeconfig (top level is not a mapping)")
        base = path.resolve().parent
        merged.current_context = merged.current_context or doc.get("current-context") or None
        for key, store, inner in (
            ("clusters", merged.clusters, "cluster"),
            ("users", merged.users, "user"),
            ("contexts", merged.contexts, "context"),
        ):
            for entry in doc.get(key) or []:
                if isinstance(entry, dict) and entry.get("name") and entry["name"] not in store:
                    store[entry["name"]] = (entry.get(inner) or {}, base)
    if not found:
        raise ConfigError(f"{', '.join(str(f) for f in files)}: no such file")
    return merged


def _data(entry: Mapping[str, Any], key: str, base: Path, where: str) -> bytes | None:
    """`key-data` (base64) or the file named by `key` (relative to the kubeconfig's folder)."""
    inline = entry.get(f"{key}-data")
    if inline:
        try:
            return base64.b64decode(inline, validate=False)
        except (binascii.Error, ValueError):
            raise ConfigError(f"{where}: {key}-data is not base64") from None
    named = entry.get(key)
    if not named:
        return None
    path = _resolve(named, base)
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{where}: {key} {path}: {exc.strerror}") from None


def _resolve(name: str, base: Path) -> Path:
    path = Path(os.path.expanduser(name))
    return path if path.is_absolute() else base / path


def _tls(cluster: Mapping[str, Any], base: Path, where: str) -> TLSConfig:
    ca = _data(cluster, "certificate-authority", base, where)
    insecure = bool(cluster.get("insecure-skip-tls-verify"))
    if insecure and ca:
        # kubectl refuses the combination too: it is ambiguous which one the user meant.
        raise ConfigError(f"{where}: certificate-authority together with insecure-skip-tls-verify")
    return TLSConfig(ca_pem=ca, insecure=insecure, server_name=cluster.get("tls-server-name"))


def _sources(
    user: Mapping[str, Any],
    base: Path,
    cluster: Mapping[str, Any],
    tls: TLSConfig,
    where: str,
) -> list[Source]:
    if user.get("as") or user.get("as-groups") or user.get("as-uid"):
        raise ConfigError(f"{where}: impersonation (as, as-groups) is not supported")
    sources: list[Source] = []
    # Client certificate: files are re-read after a 401 (rotation); inline data is fixed.
    if user.get("client-certificate") and user.get("client-key"):
        pair = CertFilesSource(
            _resolve(user["client-certificate"], base), _resolve(user["client-key"], base)
        )
        for path in (pair.cert_path, pair.key_path):
            if not path.is_file():
                raise ConfigError(f"{where}: {path}: no such file")
        sources.append(pair)
    else:
        cert = _data(user, "client-certificate", base, where)
        key = _data(user, "client-key", base, where)
        if bool(cert) != bool(key):
            raise ConfigError(f"{where}: a client certificate needs its key (and the reverse)")
        if cert and key:
            sources.append(StaticSource(Material(cert_pem=cert, key_pem=key)))
    if user.get("token"):
        sources.append(StaticSource(Material(token=str(user["token"]))))
    elif user.get("tokenFile"):
        sources.append(TokenFileSource(_resolve(user["tokenFile"], base)))
    elif user.get("username"):
        basic = (str(user["username"]), str(user.get("password") or ""))
        sources.append(StaticSource(Material(basic=basic)))
    if user.get("exec"):
        sources.append(_exec(user["exec"], base, cluster, tls, where))
    provider = user.get("auth-provider")
    if provider:
        sources.append(_auth_provider(provider, base, where))
    return sources


def _exec(
    spec: Mapping[str, Any], base: Path, cluster: Mapping[str, Any], tls: TLSConfig, where: str
) -> ExecSource:
    command = spec.get("command")
    if not command:
        raise ConfigError(f"{where}: exec has no command")
    api_version = spec.get("apiVersion") or ""
    if api_version not in EXEC_API_VERSIONS:
        raise ConfigError(
            f"{where}: exec apiVersion {api_version!r} is not one of {', '.join(EXEC_API_VERSIONS)}"
        )
    if spec.get("interactiveMode") == "Always":
        raise ConfigError(f"{where}: exec interactiveMode Always: the operator has no terminal")
    # client-go: a command with a path separator is relative to the kubeconfig's folder.
    if os.sep in command and not os.path.isabs(command):
        command = str(base / command)
    env = {str(e["name"]): str(e.get("value", "")) for e in spec.get("env") or [] if "name" in e}
    info = None
    if spec.get("provideClusterInfo"):
        info = {
            "server": cluster.get("server"),
            "tls-server-name": tls.server_name,
            "insecure-skip-tls-verify": tls.insecure,
            "certificate-authority-data": base64.b64encode(tls.ca_pem).decode()
            if tls.ca_pem
            else None,
        }
        extension = next(
            (
                e.get("extension")
                for e in cluster.get("extensions") or []
                if e.get("name") == "client.authentication.k8s.io/exec"
            ),
            None,
        )
        if extension is not None:
            info["config"] = extension
        info = {k: v for k, v in info.items() if v not in (None, False)}
    return ExecSource(
        command=str(command),
        args=[str(a) for a in spec.get("args") or []],
        env=env,
        api_version=api_version,
        cluster=info,
        install_hint=str(spec.get("installHint") or ""),
    )


def _auth_provider(provider: Mapping[str, Any], base: Path, where: str) -> Source:
    name = provider.get("name")
    config = provider.get("config") or {}
    if name != "oidc":
        raise ConfigError(
            f"{where}: auth-provider {name!r} is not supported (client-go removed the gcp and "
            "azure providers; use their exec plugins: gke-gcloud-auth-plugin, kubelogin)"
        )
    if not config.get("client-id"):
        raise ConfigError(f"{where}: auth-provider oidc has no client-id")
    return OIDCSource(
        client_id=str(config["client-id"]),
        client_secret=config.get("client-secret"),
        id_token=config.get("id-token"),
        refresh_token=config.get("refresh-token"),
        issuer_url=config.get("idp-issuer-url"),
        ca_pem=_data(config, "idp-certificate-authority", base, where),
    )
