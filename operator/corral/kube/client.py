"""The one interface the runtime talks to the API server through.

Two implementations: `corral.kube.rest.KubeAPI` (aiohttp, the real API server) and
`corral.kube.fake.FakeAPI` (in memory, for unit tests). Objects are plain dicts as the API
returns them; paths are built with `core_path` / `custom_path` / `group_path`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any, Protocol

Obj = dict[str, Any]


class Client(Protocol):
    async def list(
        self, path: str, params: Mapping[str, str] | None = None
    ) -> tuple[list[Obj], str]:
        """Every item of a collection and the list's resourceVersion."""
        ...

    async def get(self, path: str) -> Obj: ...

    async def create(self, path: str, body: Obj) -> Obj: ...

    async def patch(self, path: str, body: Any, patch_type: str = "merge") -> Obj: ...

    async def delete(
        self,
        path: str,
        *,
        grace_seconds: int | None = None,
        propagation: str = "Background",
        preconditions: Mapping[str, str] | None = None,
    ) -> Obj: ...

    def watch(
        self,
        path: str,
        *,
        resource_version: str,
        timeout_seconds: int = 290,
        params: Mapping[str, str] | None = None,
    ) -> AsyncIterator[Obj]:
        """Watch events (`{"type": ..., "object": ...}`) after `resource_version`; raises
        ApiError(410) when that version is too old (the caller lists again)."""
        ...

    async def close(self) -> None: ...


def group_path(
    group: str,
    version: str,
    resource: str,
    namespace: str | None = None,
    name: str | None = None,
    subresource: str | None = None,
) -> str:
    """The path of a resource of any API group ("" is the core group)."""
    root = "/api/v1" if group == "" else f"/apis/{group}/{version}"
    path = root + (f"/namespaces/{namespace}" if namespace else "") + f"/{resource}"
    return path + (f"/{name}" if name else "") + (f"/{subresource}" if subresource else "")
