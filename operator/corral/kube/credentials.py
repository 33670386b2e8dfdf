"""Credentials that stay valid for the life of the operator, as client-go keeps them.

Each source yields `Material` (a bearer token, basic auth, a client certificate) with the moment
it expires; `Credentials` caches it and fetches again when it expires or when the API server
answered 401 (`invalidate`). The sources are the ones kubeconfig and in-cluster config name:

- a bearer token, or a token file re-read from disk every minute (projected ServiceAccount tokens
  are rotated by the kubelet; client-go re-reads them on the same period);
- an exec plugin (client.authentication.k8s.io/v1 and v1beta1 ExecCredential), run again only when
  its `expirationTimestamp` passes or after a 401;
- the `oidc` auth-provider: the id-token until its `exp`, then the refresh-token grant at the
  issuer's token endpoint;
- client certificate and key files, re-read after a 401 (a rotated certificate is picked up).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import os
import ssl
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import aiohttp

from corral.kube.errors import ApiError

TOKEN_FILE_PERIOD_SECONDS = 60.0
EXPIRY_SKEW_SECONDS = 10.0
"""Material this close to its expiry is fetched again before use, saving a 401 round trip."""
EXEC_TIMEOUT_SECONDS = 60.0

EXEC_API_VERSIONS = ("client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1")


class CredentialError(ApiError):
    """Credentials could not be obtained (plugin failed, token file unreadable, refresh
    refused). Nothing was sent to the API server."""

    def __init__(self, message: str):
        super().__init__(0, "CredentialError", message)


@dataclass(frozen=True)
class Material:
    token: str | None = None
    basic: tuple[str, str] | None = None
    cert_pem: bytes | None = None
    key_pem: bytes | None = None
    expires_at: float | None = None
    """Epoch seconds after which the material is fetched again; None: until a 401."""

    def merged(self, other: Material) -> Material:
        """`other`'s fields where it has them; the earliest expiry of the two."""
        expiries = [e for e in (self.expires_at, other.expires_at) if e is not None]
        return Material(
            token=other.token or self.token,
            basic=other.basic or self.basic,
            cert_pem=other.cert_pem or self.cert_pem,
            key_pem=other.key_pem or self.key_pem,
            expires_at=min(expiries) if expiries else None,
        )

    @property
    def authorization(self) -> str | None:
        if self.token:
            return f"Bearer {self.token}"
        if self.basic:
            raw = f"{self.basic[0]}:{self.basic[1]}".encode()
            return "Basic " + base64.b64encode(raw).decode()
        return None

    @property
    def certificate(self) -> tuple[bytes, bytes] | None:
        return (self.cert_pem, self.key_pem) if self.cert_pem and self.key_pem else None


class Source(Protocol):
    async def fetch(self, now: float) -> Material: ...


@dataclass
class StaticSource:
    material: Material

    async def fetch(self, now: float) -> Material:
        return self.material


@dataclass
class TokenFileSource:
    path: Path
    period: float = TOKEN_FILE_PERIOD_SECONDS

    async def fetch(self, now: float) -> Material:
        try:
            token = self.path.read_text().strip()
        except OSError as exc:
            raise CredentialError(f"token file {self.path}: {exc.strerror}") from None
        return Material(token=token or None, expires_at=now + self.period)


@dataclass
class CertFilesSource:
    cert_path: Path
    key_path: Path

    async def fetch(self, now: float) -> Material:
        try:
            return Material(
                cert_pem=self.cert_path.read_bytes(), key_pem=self.key_path.read_bytes()
            )
        except OSError as exc:
            raise CredentialError(f"client certificate {exc.filename}: {exc.strerror}") from None


@dataclass
class ExecSource:
    """A client-go credential plugin (kubeconfig `users[].user.exec`)."""

    command: str
    args: Sequence[str] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    api_version: str = EXEC_API_VERSIONS[0]
    cluster: Mapping[str, Any] | None = None
    """spec.cluster of the ExecCredential, when the kubeconfig sets provideClusterInfo."""
    install_hint: str = ""
    timeout: float = EXEC_TIMEOUT_SECONDS
    runs: int = 0
    """How many times the plugin ran (plugins can be slow or rate-limited: cache hits matter)."""

    async def fetch(self, now: float) -> Material:
        spec: dict[str, Any] = {"interactive": False}
        if self.cluster is not None:
            spec["cluster"] = dict(self.cluster)
        info = {"apiVersion": self.api_version, "kind": "ExecCredential", "spec": spec}
        environment = {**os.environ, **self.env, "KUBERNETES_EXEC_INFO": json.dumps(info)}
        self.runs += 1
        try:
            process = await asyncio.create_subprocess_exec(
                self.command,
                *self.args,
                env=environment,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as exc:
            hint = f" ({self.install_hint.strip()})" if self.install_hint else ""
            raise CredentialError(
                f"exec plugin {self.command}: {exc.strerror or exc}{hint}"
            ) from None
        try:
            async with asyncio.timeout(self.timeout):
                out, err = await process.communicate()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
            raise CredentialError(
                f"exec plugin {self.command}: no answer in {self.timeout:.0f}s"
            ) from None
        if process.returncode != 0:
            # stderr is the plugin's own diagnostics; stdout may hold a credential: never shown.
            tail = " ".join(err.decode(errors="replace").split())[-300:]
            raise CredentialError(
                f"exec plugin {self.command} exited {process.returncode}: {tail or 'no message'}"
            )
        return self._parse(out)

    def _parse(self, out: bytes) -> Material:
        where = f"exec plugin {self.command}"
        try:
            answer = json.loads(out)
        except ValueError:
            raise CredentialError(f"{where}: output is not an ExecCredential (not JSON)") from None
        if not isinstance(answer, dict) or answer.get("kind") != "ExecCredential":
            raise CredentialError(f"{where}: output is not an ExecCredential")
        if answer.get("apiVersion") != self.api_version:
            raise CredentialError(
                f"{where}: answered apiVersion {answer.get('apiVersion')}, "
                f"the kubeconfig asked for {self.api_version}"
            )
        status = answer.get("status") or {}
        token = status.get("token") or None
        cert, key = status.get("clientCertificateData"), status.get("clientKeyData")
        if bool(cert) != bool(key):
            raise CredentialError(
                f"{where}: clientCertificateData and clientKeyData must come together"
            )
        if not token and not cert:
            raise CredentialError(f"{where}: the ExecCredential has neither token nor certificate")
        expires = status.get("expirationTimestamp")
        return Material(
            token=token,
            cert_pem=cert.encode() if cert else None,
            key_pem=key.encode() if key else None,
            expires_at=parse_timestamp(expires, where) if expires else None,
        )


@dataclass
class OIDCSource:
    """The `oidc` auth-provider: id-token until its `exp`, then the refresh-token grant.

    Refreshed tokens are kept in memory; unlike kubectl the operator does not write them back to
    the kubeconfig (it is often a read-only mount)."""

    client_id: str
    id_token: str | None = None
    refresh_token: str | None = None
    issuer_url: str | None = None
    client_secret: str | None = None
    ca_pem: bytes | None = None
    refreshes: int = 0

    async def fetch(self, now: float) -> Material:
        expiry = jwt_expiry(self.id_token) if self.id_token else None
        if self.id_token and expiry is not None and expiry - EXPIRY_SKEW_SECONDS > now:
            return Material(token=self.id_token, expires_at=expiry)
        if not self.refresh_token or not self.issuer_url:
            if self.id_token and expiry is None:
                return Material(token=self.id_token)  # no exp claim: use it until a 401
            raise CredentialError(
                "oidc: the id-token expired and there is no refresh-token and issuer to renew "
                "it; log in again"
            )
        await self._refresh()
        assert self.id_token
        return Material(token=self.id_token, expires_at=jwt_expiry(self.id_token))

    async def _refresh(self) -> None:
        context: ssl.SSLContext | bool = True
        if self.ca_pem:
            context = ssl.create_default_context(cadata=self.ca_pem.decode())
        issuer = (self.issuer_url or "").rstrip("/")
        timeout = aiohttp.ClientTimeout(total=30)
        try:
            async with aiohttp.ClientSession(timeout=timeout) as session:
                async with session.get(
                    f"{issuer}/.well-known/openid-configuration", ssl=context
                ) as response:
                    if response.status != 200:
                        raise CredentialError(
                            f"oidc: discovery at {issuer}: HTTP {response.status}"
                        )
                    endpoint = (await response.json(content_type=None)).get("token_endpoint")
                if not endpoint:
                    raise CredentialError(f"oidc: {issuer} publishes no token_endpoint")
                form = {"grant_type": "refresh_token", "refresh_token": self.refresh_token or ""}
                # RFC 6749 §2.3.1: client credentials in the Basic header.
                basic = Material(basic=(self.client_id, self.client_secret or "")).authorization
                headers = {"Authorization": basic or ""}
                async with session.post(
                    endpoint, data=form, headers=headers, ssl=context
                ) as response:
                    body = await response.json(content_type=None)
                    if response.status != 200 or not isinstance(body, dict):
                        error = body.get("error") if isinstance(body, dict) else None
                        raise CredentialError(
                            f"oidc: refresh refused by {issuer}: HTTP {response.status} {error or ''}".strip()
                        )
        except aiohttp.ClientError as exc:
            raise CredentialError(f"oidc: cannot reach {issuer}: {exc}") from None
        if not body.get("id_token"):
            raise CredentialError(f"oidc: {issuer} answered the refresh without an id_token")
        self.refreshes += 1
        self.id_token = str(body["id_token"])
        self.refresh_token = str(body.get("refresh_token") or self.refresh_token)


class Credentials:
    """The current material of one or more sources, fetched again when it expires or after a
    401. Concurrent requests share one fetch (an exec plugin runs once, not once per request)."""

    def __init__(
        self,
        sources: Sequence[Source] = (),
        clock: Callable[[], float] = time.time,
        skew: float = EXPIRY_SKEW_SECONDS,
    ):
        self.sources = list(sources)
        self._clock = clock
        self._skew = skew
        self._cached: Material | None = None
        self._lock = asyncio.Lock()
        self.generation = 0
        """Bumped each time the material is fetched again; a request made with an older
        generation that got 401 knows someone refreshed already."""

    @classmethod
    def token(cls, token: str | None) -> Credentials:
        return cls([StaticSource(Material(token=token))] if token else [])

    def _fresh(self, material: Material) -> bool:
        return material.expires_at is None or self._clock() < material.expires_at - self._skew

    async def current(self) -> Material:
        cached = self._cached
        if cached is not None and self._fresh(cached):
            return cached
        async with self._lock:
            if self._cached is not None and self._fresh(self._cached):
                return self._cached
            now = self._clock()
            material = Material()
            for source in self.sources:
                material = material.merged(await source.fetch(now))
            self._cached = material
            self.generation += 1
            return material

    def invalidate(self, generation: int | None = None) -> None:
        """Forget the material (after a 401); no-op if it was refreshed since `generation`."""
        if generation is None or generation == self.generation:
            self._cached = None


@dataclass(frozen=True)
class TLSConfig:
    """How to trust the server (kubeconfig `clusters[].cluster`)."""

    ca_pem: bytes | None = None
    insecure: bool = False
    server_name: str | None = None


class SSLContexts:
    """One SSLContext per client certificate: built again only when the certificate changes."""

    def __init__(self, tls: TLSConfig):
        self.tls = tls
        self._built: dict[tuple[bytes, bytes] | None, ssl.SSLContext] = {}

    def for_material(self, material: Material) -> ssl.SSLContext:
        key = material.certificate
        context = self._built.get(key)
        if context is None:
            context = build_ssl_context(self.tls, key)
            self._built = {key: context}  # the old certificate is not needed again
        return context


def build_ssl_context(tls: TLSConfig, certificate: tuple[bytes, bytes] | None) -> ssl.SSLContext:
    if tls.ca_pem:
        context = ssl.create_default_context(cadata=tls.ca_pem.decode())
    else:
        context = ssl.create_default_context()
    if tls.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if certificate is not None:
        # The ssl module loads chains from files only: a private, short-lived directory.
        with tempfile.TemporaryDirectory(prefix="corral-tls-") as directory:
            cert_file, key_file = Path(directory, "tls.crt"), Path(directory, "tls.key")
            cert_file.write_bytes(certificate[0])
            key_file.touch(mode=0o600)
            key_file.write_bytes(certificate[1])
            try:
                context.load_cert_chain(str(cert_file), str(key_file))
            except ssl.SSLError as exc:
                raise CredentialError(f"client certificate unusable: {exc.reason}") from None
    return context


def parse_timestamp(value: str, where: str) -> float:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise CredentialError(f"{where}: expirationTimestamp {value!r} is not RFC 3339") from None


def jwt_expiry(token: str) -> float | None:
    """The `exp` claim of a JWT (not verified: the API server does that), or None."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, binascii.Error):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    return float(exp) if isinstance(exp, int | float) else None
