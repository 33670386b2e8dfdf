"""Credentials stay fresh: exec plugins cached until they expire, token files re-read, OIDC
tokens refreshed, client certificates picked up again after rotation."""

from __future__ import annotations

import base64
import json
import ssl
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from tests.kube.scripted import Reply, ScriptedServer, run, status

from corral.kube.credentials import (
    CertFilesSource,
    CredentialError,
    Credentials,
    ExecSource,
    OIDCSource,
    TokenFileSource,
    jwt_expiry,
)
from corral.kube.rest import KubeAPI

TLS = Path(__file__).parent / "tls"


class Clock:
    def __init__(self, now: float = 1_800_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def plugin(tmp_path: Path, expires_in: float | None, *, clock: Clock, fail: bool = False) -> Path:
    """An exec credential plugin: counts its runs in a file and answers a numbered token that
    also carries what it was told in KUBERNETES_EXEC_INFO."""
    runs = tmp_path / "runs"
    expiry = (
        ""
        if expires_in is None
        else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(clock.now + expires_in))
    )
    script = tmp_path / "plugin.py"
    script.write_text(
        f"""#!{sys.executable}
import json, os, pathlib, sys
runs = pathlib.Path({str(runs)!r})
n = int(runs.read_text()) + 1 if runs.exists() else 1
runs.write_text(str(n))
if {fail!r}:
    print("login required: run `cloud auth login`", file=sys.stderr)
    sys.exit(3)
info = json.loads(os.environ["KUBERNETES_EXEC_INFO"])
status = {{"token": f"tok-{{n}}-{{info['spec']['interactive']}}-{{os.environ.get('EXTRA', '')}}"}}
if {expiry!r}:
    status["expirationTimestamp"] = {expiry!r}
print(json.dumps({{"apiVersion": info["apiVersion"], "kind": "ExecCredential", "status": status}}))
"""
    )
    script.chmod(0o755)
    return script


def exec_runs(tmp_path: Path) -> int:
    runs = tmp_path / "runs"
    return int(runs.read_text()) if runs.exists() else 0


def test_an_exec_plugin_runs_once_until_its_credential_expires(tmp_path: Path) -> None:
    clock = Clock()
    source = ExecSource(str(plugin(tmp_path, 3600, clock=clock)), env={"EXTRA": "x"})
    credentials = Credentials([source], clock=clock)

    async def scenario() -> list[str | None]:
        tokens = [(await credentials.current()).token for _ in range(5)]
        clock.now += 3600 - 5  # inside the expiry skew: fetched again before it lapses
        tokens.append((await credentials.current()).token)
        return tokens

    tokens = run(scenario())
    assert tokens == ["tok-1-False-x"] * 5 + ["tok-2-False-x"]
    assert exec_runs(tmp_path) == 2


def test_concurrent_requests_share_one_plugin_run(tmp_path: Path) -> None:
    clock = Clock()
    credentials = Credentials([ExecSource(str(plugin(tmp_path, 3600, clock=clock)))], clock=clock)

    async def scenario() -> set[str | None]:
        import asyncio

        answers = await asyncio.gather(*(credentials.current() for _ in range(10)))
        return {a.token for a in answers}

    assert run(scenario()) == {"tok-1-False-"}
    assert exec_runs(tmp_path) == 1


def test_an_exec_credential_without_expiry_is_kept_until_a_401(tmp_path: Path) -> None:
    clock = Clock()

    async def scenario() -> list[str]:
        async with ScriptedServer() as server:
            server.on(
                "GET", "/api/v1/nodes", Reply(body={}), status(401, "Unauthorized"), Reply(body={})
            )
            source = ExecSource(str(plugin(tmp_path, None, clock=clock)))
            api = KubeAPI(server.url, credentials=Credentials([source], clock=clock))
            await api.get("/api/v1/nodes")
            clock.now += 10 * 86400
            await api.get("/api/v1/nodes")  # 401, plugin runs again, sent again
            await api.close()
            return [s.headers["Authorization"] for s in server.seen]

    assert run(scenario()) == ["Bearer tok-1-False-", "Bearer tok-1-False-", "Bearer tok-2-False-"]
    assert exec_runs(tmp_path) == 2


def test_a_failing_plugin_says_why_without_showing_its_output(tmp_path: Path) -> None:
    clock = Clock()
    credentials = Credentials([ExecSource(str(plugin(tmp_path, 60, clock=clock, fail=True)))])
    with pytest.raises(CredentialError, match=r"exited 3: login required: run `cloud auth login`"):
        run(credentials.current())


def test_a_missing_plugin_shows_the_install_hint() -> None:
    source = ExecSource("/nonexistent/kubectl-oidc", install_hint="install it with brew")
    with pytest.raises(CredentialError, match="install it with brew"):
        run(Credentials([source]).current())


def test_exec_info_carries_cluster_info_when_asked(tmp_path: Path) -> None:
    script = tmp_path / "echo.py"
    script.write_text(
        f"#!{sys.executable}\nimport json, os\n"
        "info = json.loads(os.environ['KUBERNETES_EXEC_INFO'])\n"
        "print(json.dumps({'apiVersion': info['apiVersion'], 'kind': 'ExecCredential', "
        "'status': {'token': info['spec']['cluster']['server']}}))\n"
    )
    script.chmod(0o755)
    source = ExecSource(
        str(script),
        api_version="client.authentication.k8s.io/v1beta1",
        cluster={"server": "https://k8s.example:6443"},
    )
    assert run(Credentials([source]).current()).token == "https://k8s.example:6443"


def test_a_token_file_is_reread_every_minute(tmp_path: Path) -> None:
    clock = Clock()
    token = tmp_path / "token"
    token.write_text("one")
    credentials = Credentials([TokenFileSource(token)], clock=clock, skew=0)

    async def scenario() -> list[str | None]:
        seen = [(await credentials.current()).token]
        token.write_text("two")  # rotated on disk
        clock.now += 30
        seen.append((await credentials.current()).token)
        clock.now += 31
        seen.append((await credentials.current()).token)
        return seen

    assert run(scenario()) == ["one", "one", "two"]


def jwt(exp: float) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none'})}.{part({'exp': int(exp), 'sub': 'ops'})}.sig"


def test_oidc_uses_the_id_token_until_exp_then_refreshes_at_the_issuer() -> None:
    clock = Clock()
    fresh = jwt(clock.now + 7200)

    async def scenario() -> tuple[list[str | None], list[Any], OIDCSource]:
        async with ScriptedServer() as issuer:
            issuer.on(
                "GET",
                "/.well-known/openid-configuration",
                Reply(body={"token_endpoint": f"{issuer.url}/token"}),
            )
            issuer.on("POST", "/token", Reply(body={"id_token": fresh, "refresh_token": "r2"}))
            source = OIDCSource(
                client_id="kubectl",
                client_secret="s3cret",
                id_token=jwt(clock.now + 60),
                refresh_token="r1",
                issuer_url=issuer.url,
            )
            credentials = Credentials([source], clock=clock)
            tokens = [(await credentials.current()).token]
            clock.now += 55  # within the skew of exp
            tokens.append((await credentials.current()).token)
            tokens.append((await credentials.current()).token)
            return tokens, [s.headers.get("Authorization") for s in issuer.requests("POST")], source

    tokens, auth, source = run(scenario())
    assert tokens[1:] == [fresh, fresh] and tokens[0] != fresh
    assert source.refreshes == 1 and source.refresh_token == "r2"
    assert auth == ["Basic " + base64.b64encode(b"kubectl:s3cret").decode()]
    assert jwt_expiry(fresh) == clock.now - 55 + 7200


def test_oidc_without_a_refresh_token_asks_to_log_in_again() -> None:
    clock = Clock()
    source = OIDCSource(client_id="kubectl", id_token=jwt(clock.now - 1))
    with pytest.raises(CredentialError, match="log in again"):
        run(Credentials([source], clock=clock).current())


# -- client certificates over TLS -------------------------------------------------------------------


def server_tls() -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(TLS / "ca.crt"))
    context.load_cert_chain(str(TLS / "server.crt"), str(TLS / "server.key"))
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def test_a_rotated_client_certificate_is_picked_up_after_a_401(tmp_path: Path) -> None:
    from corral.kube.credentials import TLSConfig

    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    cert.write_bytes((TLS / "client-a.crt").read_bytes())
    key.write_bytes((TLS / "client-a.key").read_bytes())

    def rotate(_: object) -> None:
        cert.write_bytes((TLS / "client-b.crt").read_bytes())
        key.write_bytes((TLS / "client-b.key").read_bytes())

    async def scenario() -> list[str | None]:
        async with ScriptedServer(server_tls()) as server:
            unauthorized = status(401, "Unauthorized")
            unauthorized.effect = rotate
            server.on("GET", "/api/v1/nodes", Reply(body={}), unauthorized, Reply(body={}))
            api = KubeAPI(
                server.url,
                tls=TLSConfig(ca_pem=(TLS / "ca.crt").read_bytes()),
                credentials=Credentials([CertFilesSource(cert, key)]),
            )
            await api.get("/api/v1/nodes")
            await api.get("/api/v1/nodes")
            await api.close()
            return [s.peer_cn for s in server.seen]

    assert run(scenario()) == ["corral-a", "corral-a", "corral-b"]
