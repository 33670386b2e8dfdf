"""A scripted API server on 127.0.0.1 for the client's tests: each route answers from a list of
replies (the last one repeats) and every request is recorded."""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import web
from aiohttp.test_utils import TestServer

T = TypeVar("T")


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    """Seconds before answering (to make the client time out)."""
    lines: list[Any] | None = None
    """A streamed answer (a watch): one JSON document per line."""
    effect: Callable[[Seen], None] | None = None
    """Runs when the request arrives, before the delay (e.g. the server stores the object)."""


def status(code: int, reason: str, message: str = "", **details: Any) -> Reply:
    """A meta/v1 Status answer, as kube-apiserver writes it."""
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "code": code,
        "reason": reason,
        "message": message or reason,
    }
    if details:
        body["details"] = details
    return Reply(code, body)


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    peer_cn: str | None = None


class ScriptedServer:
    def __init__(self, ssl_context: ssl.SSLContext | None = None):
        self.routes: dict[tuple[str, str], list[Reply]] = {}
        self.seen: list[Seen] = []
        self._ssl = ssl_context
        self._server: TestServer | None = None

    def on(self, method: str, path: str, *replies: Reply) -> ScriptedServer:
        self.routes.setdefault((method, path), []).extend(replies)
        return self

    def requests(self, method: str | None = None, path: str | None = None) -> list[Seen]:
        return [
            s
            for s in self.seen
            if (method is None or s.method == method) and (path is None or s.path == path)
        ]

    @property
    def url(self) -> str:
        assert self._server is not None
        scheme = "https" if self._ssl else "http"
        return f"{scheme}://127.0.0.1:{self._server.port}"

    async def __aenter__(self) -> ScriptedServer:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._server = TestServer(app, host="127.0.0.1")
        await self._server.start_server(ssl=self._ssl)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        await self._server.close()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        peer = request.transport.get_extra_info("peercert") if request.transport else None
        cn = None
        if peer:
            cn = next(
                (v for rdn in peer.get("subject", ()) for k, v in rdn if k == "commonName"), None
            )
        seen = Seen(
            request.method,
            request.path,
            dict(request.query),
            dict(request.headers),
            _decode(raw),
            cn,
        )
        self.seen.append(seen)
        replies = self.routes.get((request.method, request.path))
        if not replies:
            reply = status(404, "NotFound", f"{request.path} not found")
        else:
            reply = replies.pop(0) if len(replies) > 1 else replies[0]
        if reply.effect is not None:
            reply.effect(seen)
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if reply.lines is not None:
            response = web.StreamResponse(status=reply.status, headers=reply.headers)
            await response.prepare(request)
            for line in reply.lines:
                await response.write(json.dumps(line).encode() + b"\n")
            await response.write_eof()
            return response
        return web.json_response(reply.body or {}, status=reply.status, headers=reply.headers)


def _decode(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode()  # a form (the OIDC token endpoint)
