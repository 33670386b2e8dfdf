"""The workload side of the checkpoint protocol, with the standard library only.

A worker learns of a checkpoint request from its own pod's annotations — through the downward-API
annotations file when the pod mounts one (no API access needed to read), else from the API — and
acknowledges it by patching its own pod with the in-cluster service-account token (RBAC: `patch`,
and `get` for the API read, on pods in its namespace; see docs/disruption.md).
"""

from __future__ import annotations

import ast
import json
import os
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from corral.sdk import protocol

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
API_POLL_SECONDS = 2.0
"""At most one API read per this many seconds when there is no annotations file."""

_reported: set[str] = set()
"""Ids this process acknowledged: the annotations file lags behind the patch by up to the
kubelet's sync period, and a request must not be answered twice meanwhile."""
_last_poll: dict[int, tuple[float, dict[str, str]]] = {}


class SDKError(Exception):
    """The SDK cannot do what was asked; the message says what to fix."""


@dataclass(frozen=True)
class ResumePoint:
    """Where a restarted worker picks up: Corral's last complete checkpoint."""

    step: int
    uri: str | None
    id: str | None


def resume_point(environ: Mapping[str, str] | None = None) -> ResumePoint | None:
    """From CORRAL_RESUME_STEP / CORRAL_RESUME_FROM (set by Corral on restarted workers); None on
    a first start. A malformed step is an error: resuming from a wrong step silently would be
    worse than stopping."""
    env = os.environ if environ is None else environ
    raw = env.get(protocol.RESUME_STEP_ENV, "").strip()
    uri = env.get(protocol.RESUME_FROM_ENV) or None
    if not raw:
        if uri:
            raise SDKError(
                f"{protocol.RESUME_FROM_ENV} is set but {protocol.RESUME_STEP_ENV} is not"
            )
        return None
    try:
        step = int(raw)
    except ValueError:
        raise SDKError(f"{protocol.RESUME_STEP_ENV}={raw!r} is not a step number") from None
    if step < 0:
        raise SDKError(f"{protocol.RESUME_STEP_ENV}={raw!r} is negative")
    return ResumePoint(step, uri, env.get(protocol.RESUME_ID_ENV) or None)


def parse_annotations_file(text: str) -> dict[str, str]:
    """The downward API writes one `key="value"` line per annotation, the value Go-quoted
    (strconv.Quote); lines that do not parse are skipped."""
    annotations: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, quoted = line.partition("=")
        if not sep or not key:
            continue
        quoted = quoted.strip()
        if len(quoted) >= 2 and quoted[0] == quoted[-1] == '"':
            try:
                value = ast.literal_eval(quoted)
            except (ValueError, SyntaxError):
                continue
            if isinstance(value, str):
                annotations[key.strip()] = value
    return annotations


class PodClient:
    """Reads and patches this worker's own pod through the API server.

    Defaults come from inside the pod: `KUBERNETES_SERVICE_HOST/PORT`, the service-account token,
    CA and namespace files, and the pod name from `CORRAL_POD_NAME` (set it from the downward API;
    the pod's hostname is `worker-<i>`, not its name). `CORRAL_API_SERVER` overrides the server
    (e.g. `http://127.0.0.1:8001` for `kubectl proxy`); tests pass `server`, `token`,
    `namespace` and `pod`.
    """

    def __init__(
        self,
        *,
        server: str | None = None,
        token: str | None = None,
        namespace: str | None = None,
        pod: str | None = None,
        ca_file: str | None = None,
        timeout: float = 10.0,
        environ: Mapping[str, str] | None = None,
    ):
        env = os.environ if environ is None else environ
        server = server or env.get(protocol.API_SERVER_ENV)
        if server is None:
            host, port = env.get("KUBERNETES_SERVICE_HOST"), env.get("KUBERNETES_SERVICE_PORT")
            if not host or not port:
                raise SDKError(
                    "not running in a pod (KUBERNETES_SERVICE_HOST/PORT unset); pass server="
                )
            host = f"[{host}]" if ":" in host else host
            server = f"https://{host}:{port}"
        self.server = server.rstrip("/")
        self._token = token
        self.namespace = (
            namespace
            or env.get(protocol.POD_NAMESPACE_ENV)
            or _read(SERVICE_ACCOUNT_DIR / "namespace")
        )
        self.pod = pod or env.get(protocol.POD_NAME_ENV)
        if not self.namespace or not self.pod:
            raise SDKError(
                f"the pod's name and namespace are unknown: set {protocol.POD_NAME_ENV} (and "
                f"{protocol.POD_NAMESPACE_ENV}) from the downward API (fieldRef metadata.name, "
                "metadata.namespace)"
            )
        self.timeout = timeout
        self._context: ssl.SSLContext | None = None
        if self.server.startswith("https://"):
            ca = ca_file or str(SERVICE_ACCOUNT_DIR / "ca.crt")
            self._context = ssl.create_default_context(cafile=ca if Path(ca).exists() else None)

    @property
    def path(self) -> str:
        return f"/api/v1/namespaces/{self.namespace}/pods/{self.pod}"

    def _bearer(self) -> str | None:
        # Projected tokens rotate: read the file at every call. Without one (kubectl proxy) no
        # Authorization header is sent, and a 401/403 names the fix.
        return self._token or _read(SERVICE_ACCOUNT_DIR / "token")

    def _call(self, method: str, body: bytes | None, content_type: str | None) -> Any:
        request = urllib.request.Request(self.server + self.path, data=body, method=method)
        token = self._bearer()
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        request.add_header("Accept", "application/json")
        if content_type:
            request.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(
                request, timeout=self.timeout, context=self._context
            ) as response:
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:300]
            hint = (
                " (the pod's service account needs get/patch on pods; see docs/disruption.md)"
                if exc.code in (401, 403)
                else ""
            )
            raise SDKError(f"{method} {self.path}: HTTP {exc.code}{hint}: {detail}") from None
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise SDKError(f"{method} {self.path}: {exc}") from None

    def annotations(self) -> dict[str, str]:
        pod = self._call("GET", None, None)
        found = (pod.get("metadata") or {}).get("annotations") or {}
        return {str(k): str(v) for k, v in found.items()}

    def patch_annotations(self, annotations: Mapping[str, str | None]) -> None:
        """One JSON merge patch: the operator sees every key of an acknowledgement at once."""
        body = json.dumps({"metadata": {"annotations": dict(annotations)}}).encode()
        self._call("PATCH", body, "application/merge-patch+json")


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


def _annotations_path(path: str | os.PathLike[str] | None) -> Path:
    return Path(path or os.environ.get(protocol.ANNOTATIONS_FILE_ENV) or protocol.ANNOTATIONS_FILE)


def checkpoint_requested(
    annotations_file: str | os.PathLike[str] | None = None, client: PodClient | None = None
) -> str | None:
    """The id of a checkpoint request this worker has not acknowledged yet, or None.

    Reads the downward-API annotations file when it exists (cheap: call it every step; the
    kubelet refreshes it within its sync period, about a minute by default), else asks the API
    through `client` (fresher; needs `get` on pods). Without either, None.
    """
    path = _annotations_path(annotations_file)
    if path.exists():
        try:
            annotations = parse_annotations_file(path.read_text())
        except OSError:
            annotations = {}
    elif client is not None:
        polled_at, annotations = _last_poll.get(id(client), (float("-inf"), {}))
        if time.monotonic() - polled_at >= API_POLL_SECONDS:
            annotations = client.annotations()
            _last_poll[id(client)] = (time.monotonic(), annotations)
    else:
        return None
    requested = annotations.get(protocol.REQUESTED)
    if not requested or requested in _reported or annotations.get(protocol.COMPLETED) == requested:
        return None
    return requested


def report_checkpoint(
    request_id: str, step: int, uri: str | None = None, client: PodClient | None = None
) -> None:
    """Acknowledge a checkpoint: call it once the checkpoint is durable (written and flushed).
    Every worker of the gang acknowledges the same id; Corral records the step and uri and hands
    them to restarted workers as CORRAL_RESUME_STEP / CORRAL_RESUME_FROM."""
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise SDKError(f"step must be a whole number >= 0, not {step!r}")
    if not request_id:
        raise SDKError("request_id is empty")
    annotations: dict[str, str | None] = {
        protocol.COMPLETED: request_id,
        protocol.STEP: str(step),
        protocol.URI: uri or None,
    }
    (client or PodClient()).patch_annotations(annotations)
    _reported.add(request_id)
