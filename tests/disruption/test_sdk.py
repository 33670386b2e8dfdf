"""corral.sdk against a local HTTP server standing in for the API server, and the example loop."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from corral import sdk
from corral.sdk import client as sdk_client
from corral.sdk import protocol as p

ROOT = Path(__file__).resolve().parents[2]
POD_PATH = "/api/v1/namespaces/ml/pods/trainer-w0-r0"


class JSONHandler(BaseHTTPRequestHandler):
    """A quiet handler answering JSON: what the stand-ins for the API server share."""

    def log_message(self, *args: object) -> None:
        pass

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length)) if length else None

    def _answer(self, code: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class FakePodAPI:
    """One pod's GET and merge-PATCH, with the requests it received."""

    def __init__(self, token: str | None = "secret", forbidden: bool = False):
        self.annotations: dict[str, str] = {}
        self.requests: list[dict[str, Any]] = []
        self.token = token
        self.forbidden = forbidden
        self.lock = threading.Lock()
        api = self

        class Handler(JSONHandler):
            def _handle(self) -> None:
                body = self._body()
                with api.lock:
                    api.requests.append(
                        {
                            "method": self.command,
                            "path": self.path,
                            "auth": self.headers.get("Authorization"),
                            "type": self.headers.get("Content-Type"),
                            "body": body,
                        }
                    )
                    if self.path != POD_PATH:
                        return self._answer(404, {"reason": "NotFound"})
                    wanted = f"Bearer {api.token}" if api.token is not None else None
                    if api.forbidden or self.headers.get("Authorization") != wanted:
                        return self._answer(403, {"reason": "Forbidden"})
                    if self.command == "PATCH":
                        for key, value in body["metadata"]["annotations"].items():
                            if value is None:
                                api.annotations.pop(key, None)
                            else:
                                api.annotations[key] = value
                    pod = {"metadata": {"name": "trainer-w0-r0", "annotations": api.annotations}}
                    return self._answer(200, pod)

            do_GET = do_PATCH = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def patches(self) -> list[dict[str, Any]]:
        with self.lock:
            return [r for r in self.requests if r["method"] == "PATCH"]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def api() -> Iterator[FakePodAPI]:
    server = FakePodAPI()
    yield server
    server.close()


@pytest.fixture(autouse=True)
def _fresh_sdk_state() -> Iterator[None]:
    sdk_client._reported.clear()
    sdk_client._last_poll.clear()
    yield


def client(api: FakePodAPI, token: str = "secret") -> sdk.PodClient:
    return sdk.PodClient(server=api.url, token=token, namespace="ml", pod="trainer-w0-r0")


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, None),
        (
            {p.RESUME_STEP_ENV: "120", p.RESUME_FROM_ENV: "s3://b/120"},
            sdk.ResumePoint(120, "s3://b/120", None),
        ),
        (
            {p.RESUME_STEP_ENV: "0", p.RESUME_ID_ENV: "1-notice"},
            sdk.ResumePoint(0, None, "1-notice"),
        ),
    ],
)
def test_resume_point(env: dict[str, str], expected: sdk.ResumePoint | None) -> None:
    assert sdk.resume_point(env) == expected


@pytest.mark.parametrize(
    "env",
    [
        {p.RESUME_STEP_ENV: "ten"},
        {p.RESUME_STEP_ENV: "-1"},
        {p.RESUME_FROM_ENV: "s3://b/1"},
    ],
)
def test_resume_point_refuses_malformed_env(env: dict[str, str]) -> None:
    with pytest.raises(sdk.SDKError):
        sdk.resume_point(env)


def test_annotations_file_is_go_quoted() -> None:
    text = (
        'corral.dev/checkpoint-requested="1796040000-notice"\n'
        'kubectl.kubernetes.io/last-applied-configuration="{\\"a\\":\\"b\\\\n\\"}"\n'
        "garbage line\n"
        'x="\\u00e9\\t"\n'
    )
    parsed = sdk_client.parse_annotations_file(text)
    assert parsed[p.REQUESTED] == "1796040000-notice"
    assert parsed["kubectl.kubernetes.io/last-applied-configuration"] == '{"a":"b\\n"}'
    assert parsed["x"] == "é\t"
    assert "garbage line" not in parsed


def test_checkpoint_requested_from_the_file(tmp_path: Path) -> None:
    path = tmp_path / "annotations"
    assert sdk.checkpoint_requested(path) is None  # no file, no client
    path.write_text(f'{p.REQUESTED}="5-periodic"\n')
    assert sdk.checkpoint_requested(path) == "5-periodic"
    path.write_text(f'{p.REQUESTED}="5-periodic"\n{p.COMPLETED}="5-periodic"\n')
    assert sdk.checkpoint_requested(path) is None


def test_report_patches_the_own_pod_once(tmp_path: Path, api: FakePodAPI) -> None:
    path = tmp_path / "annotations"
    path.write_text(f'{p.REQUESTED}="5-notice"\n')
    pod = client(api)
    request = sdk.checkpoint_requested(path)
    assert request == "5-notice"
    sdk.report_checkpoint(request, 300, uri="s3://b/300", client=pod)
    (patch,) = api.patches()
    assert patch["path"] == POD_PATH and patch["auth"] == "Bearer secret"
    assert patch["type"] == "application/merge-patch+json"
    assert api.annotations == {p.COMPLETED: "5-notice", p.STEP: "300", p.URI: "s3://b/300"}
    # The file has not caught up yet: the same request is not answered twice.
    assert sdk.checkpoint_requested(path) is None


def test_report_without_uri_removes_a_stale_one(api: FakePodAPI) -> None:
    api.annotations[p.URI] = "s3://old"
    sdk.report_checkpoint("6-periodic", 10, client=client(api))
    assert p.URI not in api.annotations and api.annotations[p.STEP] == "10"


def test_checkpoint_requested_through_the_api_is_rate_limited(
    api: FakePodAPI, tmp_path: Path
) -> None:
    api.annotations[p.REQUESTED] = "7-notice"
    pod = client(api)
    missing = tmp_path / "none"
    assert sdk.checkpoint_requested(missing, client=pod) == "7-notice"
    for _ in range(20):
        sdk.checkpoint_requested(missing, client=pod)
    assert sum(r["method"] == "GET" for r in api.requests) == 1


def test_forbidden_names_the_rbac_fix(api: FakePodAPI) -> None:
    with pytest.raises(sdk.SDKError, match="needs get/patch on pods"):
        sdk.report_checkpoint("8-notice", 1, client=client(api, token="wrong"))


@pytest.mark.parametrize("step", [-1, True, 1.5, "3"])
def test_report_refuses_bad_steps(step: Any, api: FakePodAPI) -> None:
    with pytest.raises(sdk.SDKError):
        sdk.report_checkpoint("9-notice", step, client=client(api))
    assert api.patches() == []


def test_client_outside_a_pod_says_what_is_missing() -> None:
    with pytest.raises(sdk.SDKError, match="KUBERNETES_SERVICE_HOST"):
        sdk.PodClient(environ={})
    with pytest.raises(sdk.SDKError, match=p.POD_NAME_ENV):
        sdk.PodClient(
            environ={
                "KUBERNETES_SERVICE_HOST": "10.0.0.1",
                "KUBERNETES_SERVICE_PORT": "443",
                p.POD_NAMESPACE_ENV: "ml",
            }
        )


def test_sdk_imports_only_the_standard_library() -> None:
    code = (
        "import sys, json; before = set(sys.modules); import corral.sdk; "
        "new = set(sys.modules) - before; "
        "print(json.dumps(sorted({m.split('.')[0] for m in new} - set(sys.stdlib_module_names)))); "
        "print(json.dumps(sorted(m for m in new if m.startswith('corral'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout.splitlines()
    assert json.loads(out[0]) == ["corral"]
    assert all(
        m in ("corral", "corral.sdk") or m.startswith("corral.sdk.") for m in json.loads(out[1])
    )


def _run_example(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(ROOT / "examples/sdk/train.py"), *args],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _final(process: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    return dict(json.loads(out.strip().splitlines()[-1]))


def test_example_survives_an_interruption(tmp_path: Path, api: FakePodAPI) -> None:
    """Uninterrupted run vs. a run asked to checkpoint, killed, and resumed: same weights."""
    steps = "600"
    plain = _final(_run_example({}, "--steps", steps, "--checkpoint-dir", str(tmp_path / "a")))

    annotations = tmp_path / "annotations"
    annotations.write_text("")
    env = {
        p.ANNOTATIONS_FILE_ENV: str(annotations),
        p.API_SERVER_ENV: api.url,
        p.POD_NAME_ENV: "trainer-w0-r0",
        p.POD_NAMESPACE_ENV: "ml",
    }
    # No service-account token outside a pod: the SDK sends no Authorization header (as behind
    # kubectl proxy), and this server accepts that.
    api.token = None
    first = _run_example(
        env, "--steps", steps, "--checkpoint-dir", str(tmp_path / "b"), "--step-seconds", "0.01"
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and first.poll() is None:
            time.sleep(0.2)
            annotations.write_text(f'{p.REQUESTED}="1796040000-notice"\n')
            if api.patches():
                break
        assert api.patches(), "the example never acknowledged the checkpoint request"
        first.send_signal(signal.SIGKILL)  # the node goes
        first.wait(timeout=10)
    finally:
        if first.poll() is None:
            first.kill()
    acked_step = int(api.annotations[p.STEP])
    assert 0 <= acked_step < int(steps)
    resumed = _final(
        _run_example(
            {
                p.RESUME_STEP_ENV: str(acked_step),
                p.RESUME_FROM_ENV: api.annotations[p.URI],
            },
            "--steps",
            steps,
            "--checkpoint-dir",
            str(tmp_path / "c"),
        )
    )
    assert resumed["weights"] == plain["weights"]
    assert resumed["loss"] < 1e-3
