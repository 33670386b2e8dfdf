"""examples/sdk/workers.py (what `make dev-interrupt` runs as the demo's workload) against a local
HTTP server standing in for the API server behind `kubectl proxy`: one training loop per live
worker pod, acknowledging through corral.sdk; a pod that goes takes its process with it; a new
pod's loop resumes from the step its CORRAL_RESUME_* env names."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from tests.disruption.test_sdk import JSONHandler

from corral.sdk import protocol as p

ROOT = Path(__file__).resolve().parents[2]
PODS = "/api/v1/namespaces/ml/pods"
REQUEST = "1796040000-notice"


class FakePods:
    """The pods of namespace `ml`: list (by the job label), GET and merge-PATCH of one."""

    def __init__(self) -> None:
        self.pods: dict[str, dict[str, Any]] = {}
        self.lock = threading.Lock()
        fake = self

        class Handler(JSONHandler):
            def _handle(self) -> None:
                body = self._body()
                url = urllib.parse.urlsplit(self.path)
                with fake.lock:
                    if url.path == PODS and self.command == "GET":
                        selector = urllib.parse.parse_qs(url.query)["labelSelector"][0]
                        assert selector == "corral.dev/job=trainer"
                        return self._answer(200, {"items": list(fake.pods.values())})
                    pod = fake.pods.get(url.path.removeprefix(PODS + "/"))
                    if pod is None:
                        return self._answer(404, {"reason": "NotFound"})
                    if self.command == "PATCH":
                        annotations = pod["metadata"]["annotations"]
                        for key, value in body["metadata"]["annotations"].items():
                            if value is None:
                                annotations.pop(key, None)
                            else:
                                annotations[key] = value
                    return self._answer(200, pod)

            do_GET = do_PATCH = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def add(self, name: str, env: dict[str, str] | None = None) -> None:
        with self.lock:
            self.pods[name] = {
                "metadata": {"name": name, "annotations": {}},
                "spec": {
                    "containers": [
                        {"env": [{"name": k, "value": v} for k, v in (env or {}).items()]}
                    ]
                },
                "status": {"phase": "Running"},
            }

    def annotate(self, name: str, **annotations: str) -> None:
        with self.lock:
            self.pods[name]["metadata"]["annotations"].update(annotations)

    def annotations(self, name: str) -> dict[str, str]:
        with self.lock:
            return dict(self.pods[name]["metadata"]["annotations"])

    def delete(self, name: str) -> None:
        with self.lock:
            self.pods[name]["metadata"]["deletionTimestamp"] = "2026-11-30T12:00:00Z"


@pytest.fixture
def fake() -> Iterator[FakePods]:
    server = FakePods()
    yield server
    server.server.shutdown()
    server.server.server_close()


def wait(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_workers_acknowledge_die_with_their_pod_and_a_new_pod_resumes(
    tmp_path: Path, fake: FakePods
) -> None:
    fake.add("trainer-w0-r0")
    fake.add("trainer-w1-r0")
    ready = tmp_path / "ready"
    process = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "examples/sdk/workers.py"),
            "--job=trainer",
            "--namespace=ml",
            f"--proxy={fake.url}",
            f"--checkpoint-dir={tmp_path / 'ckpt'}",
            f"--ready-file={ready}",
            "--step-seconds=0.01",
            "--until-resumed",
            "--seconds=60",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait(ready.exists, 30, "the workers started")
        for pod in ("trainer-w0-r0", "trainer-w1-r0"):  # the operator asks
            fake.annotate(pod, **{p.REQUESTED: REQUEST})
        wait(
            lambda: all(
                fake.annotations(pod).get(p.COMPLETED) == REQUEST
                for pod in ("trainer-w0-r0", "trainer-w1-r0")
            ),
            30,
            "both loops acknowledged through the SDK",
        )
        acked = fake.annotations("trainer-w0-r0")
        step, uri = acked[p.STEP], acked[p.URI]
        assert Path(uri).exists(), "acknowledged only once the checkpoint is on disk"
        # The operator replaces worker 0: its pod goes, a new one carries the resume point.
        fake.delete("trainer-w0-r0")
        fake.add(
            "trainer-w0-r0-x1",
            {p.RESUME_STEP_ENV: step, p.RESUME_FROM_ENV: uri, p.RESUME_ID_ENV: REQUEST},
        )
        out, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, out
    assert "workers: trainer-w0-r0 is gone: its process killed" in out
    assert "trainer-w1-r0 is gone" not in out, "the kept worker's loop runs on"
    assert f"[trainer-w0-r0-x1] resumed from {uri} at step {step}" in out
    assert "workers: resumed and training on: trainer-w0-r0-x1" in out
