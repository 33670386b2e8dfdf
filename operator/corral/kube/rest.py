"""A small asyncio client of the Kubernetes REST API that speaks plain dicts.

Plain dicts because generated models cost more to build than the operator's decisions for a
2,000-node list (bench/client.py measures it against lightkube, kr8s and kubernetes_asyncio).
What a client of a shared API server owes it (the same as client-go):

- credentials kept fresh (kube/credentials.py); a 401 refreshes them and is tried once more;
- `User-Agent: corral/<version>` and `fieldManager=corral` on every write;
- 429 (API Priority and Fairness) waits the server's Retry-After; 5xx and lost answers are
  retried with capped, jittered exponential backoff — but only when sending again is safe:
  reads, PUT/PATCH/DELETE (idempotent), and a create only after reading back that the first
  one did not land (a create that timed out may have been applied);
- errors classified by Status reason and causes (kube/errors.py), never by message;
- every request counted in `corral_api_requests_total{verb,resource,code}`;
- a write fence: with `fence` set, a write is sent only while `fence()` is True (leader election
  plugs in there), so a replica that lost its Lease stops writing at once.
"""

from __future__ import annotations

import asyncio
import json
import platform
import random
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from corral import __version__, metrics
from corral.kube import kubeconfig
from corral.kube.credentials import (
    Credentials,
    Material,
    Source,
    SSLContexts,
    StaticSource,
    TLSConfig,
    TokenFileSource,
)
from corral.kube.errors import (
    CONNECTION_ERROR,
    TIMEOUT,
    ApiError,
    Fenced,
    StatusDetails,
)

__all__ = [
    "PATCH_TYPES",
    "ApiError",
    "Fenced",
    "KubeAPI",
    "RetryPolicy",
    "core_path",
    "custom_path",
]

PATCH_TYPES = {
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "apply": "application/apply-patch+yaml",
}
USER_AGENT = f"corral/{__version__} ({platform.system().lower()}/{platform.machine().lower()})"
FIELD_MANAGER = "corral"
RETRIABLE_STATUS = frozenset({429, 500, 502, 503, 504})
Obj = dict[str, Any]


@dataclass(frozen=True)
class RetryPolicy:
    retries: int = 5
    """Sends after the first (a 401 refresh does not count)."""
    base: float = 0.2
    cap: float = 8.0
    retry_after_cap: float = 60.0
    """A Retry-After longer than this is cut short (the caller's own backoff takes over)."""

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Half fixed, half jitter: clients that failed together do not return together."""
        ceiling = min(self.cap, self.base * 2**attempt)
        return float(ceiling / 2 + rng.uniform(0, ceiling / 2))

    def after(self, error: ApiError, attempt: int, rng: random.Random) -> float:
        if error.retry_after is not None:
            return min(self.retry_after_cap, error.retry_after) + rng.uniform(0, 0.1)
        return self.backoff(attempt, rng)


class _NoAnswer(Exception):
    def __init__(self, sent: bool, reason: str, message: str):
        self.sent = sent
        """False when the request certainly never reached the server (connect failed)."""
        self.reason = reason
        self.message = message
        super().__init__(message)


class KubeAPI:
    def __init__(
        self,
        host: str,
        ssl_context: ssl.SSLContext | bool | None = None,
        token_file: Path | None = None,
        token: str | None = None,
        *,
        tls: TLSConfig | None = None,
        credentials: Credentials | None = None,
        fence: Callable[[], bool] | None = None,
        field_manager: str = FIELD_MANAGER,
        user_agent: str = USER_AGENT,
        retry: RetryPolicy | None = None,
        request_timeout: float = 60.0,
        connections: int = 32,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ):
        self.host = host.rstrip("/")
        if credentials is None:
            sources: list[Source] = [TokenFileSource(token_file)] if token_file else []
            if token:
                sources.append(StaticSource(Material(token=token)))
            credentials = Credentials(sources)
        self.credentials = credentials
        self.tls = tls or TLSConfig()
        self._fixed_ssl = ssl_context
        self._contexts = SSLContexts(self.tls)
        self.fence = fence
        self.field_manager = field_manager
        self.user_agent = user_agent
        self.retry = retry or RetryPolicy()
        self.request_timeout = request_timeout
        self._connections = connections
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def from_environment(cls, kubeconfig_path: str | None = None, **options: Any) -> KubeAPI:
        """In-cluster when running in a pod, else the kubeconfig (`kubeconfig_path`,
        $KUBECONFIG, ~/.kube/config). Raises kubeconfig.ConfigError with a one-line reason."""
        return cls.from_config(kubeconfig.from_environment(kubeconfig_path), **options)

    @classmethod
    def from_config(cls, config: kubeconfig.ClusterConfig, **options: Any) -> KubeAPI:
        return cls(config.server, tls=config.tls, credentials=config.credentials, **options)

    def clone(self, **options: Any) -> KubeAPI:
        """Another client of the same server and credentials (its own connections), with
        `options` changed: e.g. the leader elector's, unfenced, without retries and with a
        short timeout, so a Lease renewal never waits behind a burst of pod creations."""
        settings: dict[str, Any] = {
            "tls": self.tls,
            "credentials": self.credentials,
            "fence": self.fence,
            "field_manager": self.field_manager,
            "user_agent": self.user_agent,
            "retry": self.retry,
            "request_timeout": self.request_timeout,
            "connections": self._connections,
            "sleep": self._sleep,
            "rng": self._rng,
        }
        return KubeAPI(self.host, self._fixed_ssl, **{**settings, **options})

    # -- the transport -------------------------------------------------------------------------

    async def _ensure_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._connections)
            self._session = aiohttp.ClientSession(
                connector=connector, headers={"User-Agent": self.user_agent}
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def _ssl_for(self, material: Material) -> ssl.SSLContext | bool:
        if not self.host.startswith("https"):
            return False
        if self._fixed_ssl is not None:
            return self._fixed_ssl
        return self._contexts.for_material(material)

    async def _open(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None,
        data: bytes | None,
        content_type: str,
        timeout: aiohttp.ClientTimeout,
        verb: str,
        resource: str,
        stream: bool,
    ) -> tuple[aiohttp.ClientResponse, bytes, int]:
        """One HTTP exchange: the response, its body (unless `stream`), and the generation of
        the credentials it was sent with. Counts it; raises _NoAnswer when no answer came (with
        whether the request may have reached the server)."""
        session = await self._ensure_session()
        material = await self.credentials.current()
        generation = self.credentials.generation
        headers = {"Accept": "application/json"}
        if material.authorization:
            headers["Authorization"] = material.authorization
        if data is not None:
            headers["Content-Type"] = content_type
        try:
            response = await session.request(
                method,
                self.host + path,
                params=params,
                data=data,
                headers=headers,
                ssl=self._ssl_for(material),
                server_hostname=self.tls.server_name,
                timeout=timeout,
            )
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            metrics.API_REQUESTS.labels(verb, resource, "<error>").inc()
            raise _NoAnswer(False, CONNECTION_ERROR, str(exc) or type(exc).__name__) from exc
        except (TimeoutError, aiohttp.ClientError) as exc:
            metrics.API_REQUESTS.labels(verb, resource, "<error>").inc()
            raise _NoAnswer(True, _reason(exc), str(exc) or type(exc).__name__) from exc
        metrics.API_REQUESTS.labels(verb, resource, str(response.status)).inc()
        if stream and response.status < 300:
            return response, b"", generation
        try:
            raw = await response.read()
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise _NoAnswer(True, _reason(exc), f"answer cut short: {exc}") from exc
        finally:
            response.release()
        return response, raw, generation

    async def _exchange(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        retries: int | None = None,
        timeout: aiohttp.ClientTimeout | None = None,
        stream: bool = False,
    ) -> tuple[aiohttp.ClientResponse, bytes]:
        """Send until a 2xx answer, retrying what is safe to retry. Returns the response and
        its body; with `stream`, the open response (the caller reads and releases it)."""
        verb, resource = request_verb(method, path, params), resource_of(path)
        write = method not in ("GET", "HEAD")
        query = dict(params or {})
        if write and method != "DELETE" and self.field_manager:
            query.setdefault("fieldManager", self.field_manager)
        data = json.dumps(body).encode() if body is not None else None
        budget = self.retry.retries if retries is None else retries
        timeout = timeout or aiohttp.ClientTimeout(total=self.request_timeout)
        attempt, refreshed = 0, False
        while True:
            if write and self.fence is not None and not self.fence():
                raise Fenced(method, path)
            try:
                response, raw, generation = await self._open(
                    method,
                    path,
                    params=query,
                    data=data,
                    content_type=content_type,
                    timeout=timeout,
                    verb=verb,
                    resource=resource,
                    stream=stream,
                )
            except _NoAnswer as lost:
                error = ApiError(0, lost.reason, f"{method} {path}: {lost.message}")
                if attempt >= budget:
                    raise error from None
                if lost.sent and not may_resend(method, body, content_type):
                    await self._resolve_lost_create(path, body, error)
                metrics.API_RETRIES.labels(verb, "no_answer").inc()
                await self._sleep(self.retry.backoff(attempt, self._rng))
                attempt += 1
                continue
            if response.status < 300:
                return response, raw
            error = ApiError.from_response(
                response.status,
                response.reason or "",
                raw.decode(errors="replace"),
                _retry_after(response),
            )
            if response.status == 401 and not refreshed:
                # Expired or rotated credentials: fetch them again and send once more.
                self.credentials.invalidate(generation)
                refreshed = True
                metrics.API_RETRIES.labels(verb, "unauthorized").inc()
                continue
            if response.status not in RETRIABLE_STATUS or attempt >= budget:
                raise error
            if response.status != 429 and not may_resend(method, body, content_type):
                # A 5xx to a create does not say whether the object was stored.
                await self._resolve_lost_create(path, body, error)
            reason = "throttled" if response.status == 429 else "server_error"
            metrics.API_RETRIES.labels(verb, reason).inc()
            await self._sleep(self.retry.after(error, attempt, self._rng))
            attempt += 1

    async def _resolve_lost_create(self, path: str, body: Any, error: ApiError) -> None:
        """A create whose answer was lost may have been applied: read before sending it again.
        Returns when the object is absent (sending again is safe); raises 409 AlreadyExists when
        it exists (the caller compares it, as after any 409), or `error` when it has no name
        to read it back by."""
        name = ((body or {}).get("metadata") or {}).get("name") if isinstance(body, dict) else None
        if not name:
            raise error
        try:
            existing = await self.request("GET", f"{path}/{name}")
        except ApiError as read_error:
            if read_error.is_not_found:
                return
            raise error from read_error
        raise ApiError(
            409,
            "AlreadyExists",
            f"{path}/{name} exists after a create whose answer was lost ({error.reason}): "
            "compare it before using it",
            StatusDetails(name=name, kind=str(existing.get("kind") or "")),
        )

    # -- requests ------------------------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        retries: int | None = None,
    ) -> Obj:
        started = time.perf_counter()
        _, raw = await self._exchange(
            method, path, params=params, body=body, content_type=content_type, retries=retries
        )
        metrics.API_REQUEST_SECONDS.labels(
            request_verb(method, path, params), resource_of(path)
        ).observe(time.perf_counter() - started)
        answer: Obj = json.loads(raw) if raw else {}
        return answer

    async def list(
        self, path: str, params: Mapping[str, str] | None = None
    ) -> tuple[list[Obj], str]:
        """Every item of a collection (paginated); returns the items and the list's
        resourceVersion. An expired continue token (410) starts the list again."""
        items: list[Obj] = []
        query = {"limit": "500", **(params or {})}
        while True:
            try:
                page = await self.request("GET", path, params=query)
            except ApiError as exc:
                if exc.is_gone and "continue" in query:
                    items, query = [], {k: v for k, v in query.items() if k != "continue"}
                    continue
                raise
            items.extend(page.get("items") or [])
            meta = page.get("metadata") or {}
            token = meta.get("continue")
            if not token:
                return items, str(meta.get("resourceVersion") or "")
            query = {**query, "continue": token}

    async def get(self, path: str) -> Obj:
        return await self.request("GET", path)

    async def create(self, path: str, body: Obj) -> Obj:
        return await self.request("POST", path, body=body)

    async def replace(self, path: str, body: Obj) -> Obj:
        """PUT: with metadata.resourceVersion set, a 409 Conflict if the object changed."""
        return await self.request("PUT", path, body=body)

    async def patch(self, path: str, body: Any, patch_type: str = "merge") -> Obj:
        params = {"force": "true"} if patch_type == "apply" else None
        return await self.request(
            "PATCH", path, params=params, body=body, content_type=PATCH_TYPES[patch_type]
        )

    async def apply(self, path: str, body: Obj) -> Obj:
        """Server-side apply as field manager `corral` (forcing conflicts: the operator owns
        the fields it applies)."""
        return await self.patch(path, body, "apply")

    async def delete(
        self,
        path: str,
        *,
        grace_seconds: int | None = None,
        propagation: str = "Background",
        preconditions: Mapping[str, str] | None = None,
    ) -> Obj:
        """`preconditions` ({"uid": ..., "resourceVersion": ...}): deletes only that object, as
        it was read (409 Conflict otherwise)."""
        options: dict[str, Any] = {
            "kind": "DeleteOptions",
            "apiVersion": "v1",
            "propagationPolicy": propagation,
        }
        if grace_seconds is not None:
            options["gracePeriodSeconds"] = grace_seconds
        if preconditions:
            # Delete only this incarnation (uid) or version: a 409 says it is another one.
            options["preconditions"] = dict(preconditions)
        return await self.request("DELETE", path, body=options)

    async def watch(
        self,
        path: str,
        *,
        resource_version: str,
        timeout_seconds: int = 290,
        params: Mapping[str, str] | None = None,
    ) -> AsyncIterator[Obj]:
        """Decoded watch events ({"type", "object"}) from `resource_version`, bookmarks
        included, until the server ends the watch (`timeout_seconds`). An ERROR event raises
        ApiError from its Status: 410 Expired/Gone means relist."""
        query = {
            **(params or {}),
            "watch": "true",
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(timeout_seconds),
        }
        started = time.perf_counter()
        response, _ = await self._exchange(
            "GET",
            path,
            params=query,
            timeout=aiohttp.ClientTimeout(total=None, connect=30, sock_read=timeout_seconds + 30),
            stream=True,
        )
        metrics.API_REQUEST_SECONDS.labels("watch", resource_of(path)).observe(
            time.perf_counter() - started
        )
        try:
            async for line in _lines(response):
                event = json.loads(line)
                if event.get("type") == "ERROR":
                    status = event.get("object") or {}
                    raise ApiError.from_status(status, default_reason="Expired")
                yield event
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise ApiError(0, TIMEOUT, f"watch {path} broke: {exc}") from exc
        finally:
            response.release()


async def _lines(response: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    """Newline-separated JSON: one event per line. (aiohttp's own line reader refuses lines
    over 128 KiB; a Pod or Node can be larger.)"""
    buffer = b""
    async for chunk in response.content.iter_any():
        buffer += chunk
        while (end := buffer.find(b"\n")) >= 0:
            line, buffer = buffer[:end], buffer[end + 1 :]
            if line.strip():
                yield line
    if buffer.strip():
        yield buffer


def _reason(exc: BaseException) -> str:
    return TIMEOUT if isinstance(exc, TimeoutError) else CONNECTION_ERROR


def _retry_after(response: aiohttp.ClientResponse) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: the API server never sends one


def may_resend(method: str, body: Any, content_type: str) -> bool:
    """Is sending this request twice the same as sending it once?"""
    if method in ("GET", "HEAD", "PUT", "DELETE"):
        return True
    if method != "PATCH":
        return False  # POST: creates a second object, or fails with 409 after creating one
    if content_type == PATCH_TYPES["json"] and isinstance(body, list):
        # Appending to an array (`/-`) would append twice; every other op lands the same.
        return not any(
            str(op.get("path", "")).endswith("/-") for op in body if isinstance(op, dict)
        )
    return True


def request_verb(method: str, path: str, params: Mapping[str, str] | None = None) -> str:
    """The Kubernetes verb of a request (what RBAC and the API server's metrics call it)."""
    if method == "GET":
        if params and params.get("watch") in ("true", "1"):
            return "watch"
        return "get" if _names_object(path) else "list"
    if method == "DELETE" and not _names_object(path):
        return "deletecollection"
    return {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}.get(
        method, method.lower()
    )


def _segments(path: str) -> list[str]:
    parts = [p for p in path.split("?", 1)[0].split("/") if p]
    if parts[:1] == ["api"]:
        rest = parts[2:]
    elif parts[:1] == ["apis"]:
        rest = parts[3:]
    else:
        return parts
    if rest[:1] == ["namespaces"] and len(rest) >= 3:
        rest = rest[2:]  # the namespace scope, not the namespaces resource
    return rest


def _names_object(path: str) -> bool:
    return len(_segments(path)) >= 2


def resource_of(path: str) -> str:
    """`pods`, `pods/status`, `trainingjobs`, `leases`: bounded label values for metrics."""
    rest = _segments(path)
    if not rest:
        return "<none>"
    return rest[0] + (f"/{rest[2]}" if len(rest) >= 3 else "")


def core_path(
    resource: str,
    namespace: str | None = None,
    name: str | None = None,
    subresource: str | None = None,
) -> str:
    path = "/api/v1" + (f"/namespaces/{namespace}" if namespace else "") + f"/{resource}"
    return path + (f"/{name}" if name else "") + (f"/{subresource}" if subresource else "")


def custom_path(
    plural: str,
    namespace: str | None = None,
    name: str | None = None,
    subresource: str | None = None,
    group: str = "corral.dev",
    version: str = "v1alpha1",
) -> str:
    path = (
        f"/apis/{group}/{version}"
        + (f"/namespaces/{namespace}" if namespace else "")
        + f"/{plural}"
    )
    return path + (f"/{name}" if name else "") + (f"/{subresource}" if subresource else "")
