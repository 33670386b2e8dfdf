"""Every kubeconfig form kubectl reads (that the operator supports) is read without the
`kubernetes` package, and the unsupported ones are refused in one line."""

from __future__ import annotations

import base64
import ssl
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.kube.scripted import Reply, ScriptedServer, run

from corral.kube import kubeconfig
from corral.kube.credentials import (
    CertFilesSource,
    ExecSource,
    OIDCSource,
    StaticSource,
    TokenFileSource,
)
from corral.kube.kubeconfig import ConfigError
from corral.kube.rest import KubeAPI

TLS = Path(__file__).parent / "tls"


def b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def write(path: Path, *, cluster: dict[str, Any], user: dict[str, Any], **extra: Any) -> Path:
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "ctx",
        "clusters": [{"name": "c", "cluster": cluster}],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "ctx", "context": {"cluster": "c", "user": "u", **extra}}],
    }
    path.write_text(yaml.safe_dump(doc))
    return path


SERVER = {"server": "https://127.0.0.1:6443"}


@pytest.mark.parametrize(
    ("user", "kind"),
    [
        ({"token": "abc"}, StaticSource),
        ({"tokenFile": "token"}, TokenFileSource),
        ({"username": "admin", "password": "pw"}, StaticSource),
        ({"client-certificate": "tls.crt", "client-key": "tls.key"}, CertFilesSource),
        (
            {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": "./bin/login"}},
            ExecSource,
        ),
        (
            {"auth-provider": {"name": "oidc", "config": {"client-id": "k", "id-token": "x.y.z"}}},
            OIDCSource,
        ),
    ],
)
def test_user_forms_become_credential_sources(
    tmp_path: Path, user: dict[str, Any], kind: type
) -> None:
    (tmp_path / "tls.crt").write_bytes((TLS / "client-a.crt").read_bytes())
    (tmp_path / "tls.key").write_bytes((TLS / "client-a.key").read_bytes())
    config = kubeconfig.load([write(tmp_path / "config", cluster=SERVER, user=user)])
    assert [type(s) for s in config.credentials.sources] == [kind]
    assert config.server == "https://127.0.0.1:6443"


def test_relative_paths_are_read_from_the_kubeconfigs_folder(tmp_path: Path) -> None:
    folder = tmp_path / "kube"
    folder.mkdir()
    user = {
        "tokenFile": "token",
        "exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": "./bin/login"},
    }
    (folder / "ca.crt").write_bytes((TLS / "ca.crt").read_bytes())
    path = write(
        folder / "config", cluster={**SERVER, "certificate-authority": "ca.crt"}, user=user
    )
    config = kubeconfig.load([path])
    token, plugin = config.credentials.sources
    assert isinstance(token, TokenFileSource) and token.path == folder.resolve() / "token"
    assert isinstance(plugin, ExecSource) and plugin.command == str(folder.resolve() / "bin/login")
    assert config.tls.ca_pem == (TLS / "ca.crt").read_bytes()


def test_the_first_file_in_kubeconfig_wins(tmp_path: Path) -> None:
    first = write(tmp_path / "a", cluster={"server": "https://first:6443"}, user={"token": "1"})
    second = write(tmp_path / "b", cluster={"server": "https://second:6443"}, user={"token": "2"})
    env = {"KUBECONFIG": f"{first}:{tmp_path / 'missing'}:{second}", "HOME": str(tmp_path)}
    config = kubeconfig.from_environment(environ=env)
    assert config.server == "https://first:6443"


def test_context_namespace_and_exec_cluster_info(tmp_path: Path) -> None:
    cluster = {**SERVER, "certificate-authority-data": b64(TLS / "ca.crt")}
    user = {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "command": "gke-gcloud-auth-plugin",
            "provideClusterInfo": True,
            "env": [{"name": "A", "value": "1"}],
        }
    }
    config = kubeconfig.load([write(tmp_path / "c", cluster=cluster, user=user, namespace="ml")])
    (plugin,) = config.credentials.sources
    assert isinstance(plugin, ExecSource)
    assert plugin.env == {"A": "1"}
    assert plugin.cluster == {
        "server": "https://127.0.0.1:6443",
        "certificate-authority-data": b64(TLS / "ca.crt"),
    }
    assert config.namespace == "ml"


@pytest.mark.parametrize(
    ("cluster", "user", "message"),
    [
        (
            {**SERVER, "insecure-skip-tls-verify": True, "certificate-authority-data": "eA=="},
            {},
            "insecure",
        ),
        ({**SERVER, "proxy-url": "http://proxy:3128"}, {}, "proxy-url"),
        ({}, {}, "no server"),
        (SERVER, {"as": "admin"}, "impersonation"),
        (SERVER, {"auth-provider": {"name": "gcp"}}, "gke-gcloud-auth-plugin"),
        (
            SERVER,
            {"exec": {"apiVersion": "client.authentication.k8s.io/v1alpha1", "command": "x"}},
            "apiVersion",
        ),
        (
            SERVER,
            {
                "exec": {
                    "apiVersion": "client.authentication.k8s.io/v1",
                    "command": "x",
                    "interactiveMode": "Always",
                }
            },
            "terminal",
        ),
        (SERVER, {"client-certificate-data": "eA=="}, "needs its key"),
        (SERVER, {"client-certificate": "missing.crt"}, "No such file"),
        (SERVER, {"client-certificate": "gone.crt", "client-key": "gone.key"}, "no such file"),
    ],
)
def test_unusable_kubeconfigs_are_refused_in_one_line(
    tmp_path: Path, cluster: dict[str, Any], user: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        kubeconfig.load([write(tmp_path / "config", cluster=cluster, user=user)])
    assert "\n" not in str(caught.value)


def test_missing_file_and_missing_context(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        kubeconfig.load([tmp_path / "nope"])
    path = write(tmp_path / "config", cluster=SERVER, user={})
    with pytest.raises(ConfigError, match="context 'other' not found"):
        kubeconfig.load([path], context="other")


def test_in_cluster_reads_the_service_account_and_rereads_its_token(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("sa-token")
    (tmp_path / "ca.crt").write_bytes((TLS / "ca.crt").read_bytes())
    (tmp_path / "namespace").write_text("corral-system")
    env = {"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "443"}
    config = kubeconfig.in_cluster(env, directory=tmp_path)
    assert config.server == "https://[fd00::1]:443"
    assert config.namespace == "corral-system"
    assert [type(s) for s in config.credentials.sources] == [TokenFileSource]
    assert run(config.credentials.current()).token == "sa-token"


def test_client_certificate_data_and_ca_data_talk_tls(tmp_path: Path) -> None:
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(TLS / "ca.crt"))
    server_tls.load_cert_chain(str(TLS / "server.crt"), str(TLS / "server.key"))
    server_tls.verify_mode = ssl.CERT_REQUIRED

    async def scenario() -> str | None:
        async with ScriptedServer(server_tls) as server:
            server.on("GET", "/version", Reply(body={"gitVersion": "v1.36.3"}))
            path = write(
                tmp_path / "config",
                cluster={"server": server.url, "certificate-authority-data": b64(TLS / "ca.crt")},
                user={
                    "client-certificate-data": b64(TLS / "client-a.crt"),
                    "client-key-data": b64(TLS / "client-a.key"),
                },
            )
            api = KubeAPI.from_environment(str(path))
            assert (await api.get("/version"))["gitVersion"] == "v1.36.3"
            await api.close()
            return server.seen[0].peer_cn

    assert run(scenario()) == "corral-a"


def test_insecure_skip_tls_verify_accepts_an_unknown_ca(tmp_path: Path) -> None:
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(str(TLS / "server.crt"), str(TLS / "server.key"))

    async def scenario() -> int:
        async with ScriptedServer(server_tls) as server:
            server.on("GET", "/version", Reply(body={}))
            path = write(
                tmp_path / "config",
                cluster={"server": server.url, "insecure-skip-tls-verify": True},
                user={"token": "t"},
            )
            api = KubeAPI.from_environment(str(path))
            await api.get("/version")
            await api.close()
            return len(server.seen)

    assert run(scenario()) == 1
