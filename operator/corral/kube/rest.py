"""A small asyncio client of the Kubernetes REST API that speaks plain dicts.

The official client's generated models cost more to build than the operator's decisions for a
2,000-node list, and block the event loop; kopf already brings aiohttp. Credentials come from
the same places as kubectl's (in-cluster service account, or $KUBECONFIG / ~/.kube/config),
read with the kubernetes package's loader so every kubeconfig form it knows works here.
"""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aiohttp

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
PATCH_TYPES = {
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
    "strategic": "application/strategic-merge-patch+json",
}


class ApiError(Exception):
    """A non-2xx answer; `status` is the HTTP code, `reason` the Status reason (NotFound, ...)."""

    def __init__(self, status: int, reason: str, message: str):
        self.status = status
        self.reason = reason
        self.message = message
        super().__init__(f"{status} {reason}: {message}")


class KubeAPI:
    def __init__(
        self,
        host: str,
        ssl_context: ssl.SSLContext | bool,
        token_file: Path | None = None,
        token: str | None = None,
    ):
        self.host = host.rstrip("/")
        self._ssl = ssl_context
        self._token_file = token_file
        self._token = token
        self._token_read = 0.0
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def from_environment(cls, kubeconfig: str | None = None) -> KubeAPI:
        """In-cluster when running in a pod, else the kubeconfig (`kubeconfig`, $KUBECONFIG, ~/.kube/config)."""
        host = os.environ.get("KUBERNETES_SERVICE_HOST")
        if host and (SERVICE_ACCOUNT / "token").exists() and kubeconfig is None:
            port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
            in_cluster = ssl.create_default_context(cafile=str(SERVICE_ACCOUNT / "ca.crt"))
            return cls(f"https://{host}:{port}", in_cluster, token_file=SERVICE_ACCOUNT / "token")
        from kubernetes import client, config

        configuration = client.Configuration()
        config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)  # type: ignore[no-untyped-call]
        context: ssl.SSLContext | bool
        if configuration.host.startswith("https"):
            context = ssl.create_default_context(cafile=configuration.ssl_ca_cert)
            if not configuration.verify_ssl:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            if configuration.cert_file:
                context.load_cert_chain(configuration.cert_file, configuration.key_file)
        else:
            context = False
        auth = (configuration.api_key or {}).get("authorization") or (
            configuration.api_key or {}
        ).get("BearerToken")
        token = auth.removeprefix("Bearer ").strip() if auth else None
        return cls(configuration.host, context, token=token)

    def _authorization(self) -> dict[str, str]:
        # Projected service-account tokens rotate; re-read the file every minute.
        if self._token_file is not None and time.monotonic() - self._token_read > 60:
            self._token = self._token_file.read_text().strip()
            self._token_read = time.monotonic()
        return {"Authorization": f"Bearer {self._token}"} if self._token else {}

    async def _ensure_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(ssl=self._ssl, limit=32)
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=aiohttp.ClientTimeout(total=60)
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        retries: int = 3,
    ) -> dict[str, Any]:
        session = await self._ensure_session()
        headers = {"Accept": "application/json", **self._authorization()}
        data = None
        if body is not None:
            headers["Content-Type"] = content_type
            data = json.dumps(body)
        for attempt in range(retries + 1):
            try:
                async with session.request(
                    method, self.host + path, params=params, data=data, headers=headers
                ) as response:
                    text = await response.text()
                    if response.status < 300:
                        return json.loads(text) if text else {}
                    if response.status in (429, 500, 502, 503, 504) and attempt < retries:
                        await asyncio.sleep(min(2.0, 0.1 * 2**attempt))
                        continue
                    try:
                        status = json.loads(text)
                    except ValueError:
                        status = {}
                    raise ApiError(
                        response.status,
                        status.get("reason") or response.reason or "",
                        status.get("message") or text[:500],
                    )
            except (TimeoutError, aiohttp.ClientConnectionError) as exc:
                if attempt >= retries:
                    raise ApiError(0, "ConnectionError", str(exc) or type(exc).__name__) from exc
                await asyncio.sleep(min(2.0, 0.1 * 2**attempt))
        raise AssertionError("unreachable")

    async def list(
        self, path: str, params: Mapping[str, str] | None = None
    ) -> tuple[list[dict[str, Any]], str]:
        """Every item of a collection (paginated); returns the items and the list's resourceVersion."""
        items: list[dict[str, Any]] = []
        query = {"limit": "500", **(params or {})}
        while True:
            page = await self.request("GET", path, params=query)
            items.extend(page.get("items") or [])
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return items, (page.get("metadata") or {}).get("resourceVersion", "")
            query = {**query, "continue": token}

    async def get(self, path: str) -> dict[str, Any]:
        return await self.request("GET", path)

    async def create(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self.request("POST", path, body=body)

    async def patch(self, path: str, body: Any, patch_type: str = "merge") -> dict[str, Any]:
        return await self.request("PATCH", path, body=body, content_type=PATCH_TYPES[patch_type])

    async def delete(
        self, path: str, *, grace_seconds: int | None = None, propagation: str = "Background"
    ) -> dict[str, Any]:
        options: dict[str, Any] = {
            "kind": "DeleteOptions",
            "apiVersion": "v1",
            "propagationPolicy": propagation,
        }
        if grace_seconds is not None:
            options["gracePeriodSeconds"] = grace_seconds
        return await self.request("DELETE", path, body=options)


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
