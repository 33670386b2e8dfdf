"""Run examples/sdk/train.py as the workers of a TrainingJob on the local fleet.

kwok marks pods Running without running their containers, so on the local fleet nothing trains.
This stands in for the containers: one train.py process per live worker pod, given the pod's name
and the pod's own CORRAL_RESUME_* env, talking to the API server through `kubectl proxy`
(CORRAL_API_SERVER) with corral.sdk, as it would from inside the pod. A pod that goes (deleted,
its node reclaimed) takes its process with it (SIGKILL: the node is gone, nothing is saved on the
way out); a new pod (a replaced worker) gets a new process, which resumes from the checkpoint
Corral hands it.

    kubectl proxy --port 8001 &
    python examples/sdk/workers.py --job llama-pretrain --proxy http://127.0.0.1:8001

With --until-resumed it exits 0 once a resumed worker has trained on for a few seconds (what
`make dev-interrupt` waits for), or 1 after --seconds; without, it runs for --seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from corral.sdk import protocol

TRAIN = Path(__file__).resolve().with_name("train.py")
RESUME_ENV = (protocol.RESUME_STEP_ENV, protocol.RESUME_FROM_ENV, protocol.RESUME_ID_ENV)


def live_pods(proxy: str, namespace: str, job: str) -> dict[str, dict[str, str]]:
    """The job's worker pods that run and are not going away: name -> their CORRAL_RESUME_* env."""
    query = urllib.parse.urlencode({"labelSelector": f"corral.dev/job={job}"})
    url = f"{proxy}/api/v1/namespaces/{namespace}/pods?{query}"
    with urllib.request.urlopen(url, timeout=10) as answer:
        pods: list[dict[str, Any]] = json.load(answer)["items"]
    out: dict[str, dict[str, str]] = {}
    for pod in pods:
        if pod["metadata"].get("deletionTimestamp") or pod["status"].get("phase") != "Running":
            continue
        env = pod["spec"]["containers"][0].get("env") or []
        out[pod["metadata"]["name"]] = {
            e["name"]: e["value"] for e in env if e["name"] in RESUME_ENV and "value" in e
        }
    return out


class Worker:
    """One train.py process standing in for one pod's container; its lines prefixed by the pod."""

    def __init__(self, pod: str, resume: dict[str, str], args: argparse.Namespace):
        env = {
            **os.environ,
            **resume,
            protocol.POD_NAME_ENV: pod,
            protocol.POD_NAMESPACE_ENV: args.namespace,
            protocol.API_SERVER_ENV: args.proxy,
            # No downward-API file outside a pod: the SDK reads the pod through the API.
            protocol.ANNOTATIONS_FILE_ENV: str(args.checkpoint_dir / "no-annotations-file"),
        }
        self.pod = pod
        self.resumed = threading.Event()
        self.process = subprocess.Popen(
            [
                sys.executable,
                str(TRAIN),
                f"--steps={args.steps}",
                f"--step-seconds={args.step_seconds}",
                f"--checkpoint-dir={args.checkpoint_dir / pod}",
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._relay, daemon=True).start()

    def _relay(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            print(f"[{self.pod}] {line.rstrip()}", flush=True)
            if line.startswith("resumed from"):
                self.resumed.set()

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--job", required=True)
    parser.add_argument("--namespace", default="default")
    parser.add_argument("--proxy", default="http://127.0.0.1:8001", help="a kubectl proxy")
    parser.add_argument("--steps", type=int, default=10**7)
    parser.add_argument("--step-seconds", type=float, default=0.02)
    parser.add_argument("--checkpoint-dir", type=Path, default=Path("/tmp/corral-demo-ckpt"))
    parser.add_argument("--seconds", type=float, default=600.0, help="give up after this long")
    parser.add_argument("--until-resumed", action="store_true")
    parser.add_argument("--ready-file", type=Path, help="created once the first workers run")
    args = parser.parse_args(argv)

    workers: dict[str, Worker] = {}
    deadline = time.monotonic() + args.seconds
    try:
        while time.monotonic() < deadline:
            try:
                pods = live_pods(args.proxy, args.namespace, args.job)
            except (urllib.error.URLError, OSError) as exc:  # the proxy is starting
                print(f"workers: API not reachable through {args.proxy}: {exc}", file=sys.stderr)
                time.sleep(1.0)
                continue
            for pod in set(workers) - set(pods):
                print(f"workers: {pod} is gone: its process killed", flush=True)
                workers.pop(pod).kill()
            for pod in sorted(set(pods) - set(workers)):
                resume = pods[pod]
                how = f"resuming at step {resume[protocol.RESUME_STEP_ENV]}" if resume else "fresh"
                print(f"workers: {pod} runs: train.py started ({how})", flush=True)
                workers[pod] = Worker(pod, resume, args)
            if workers and args.ready_file and not args.ready_file.exists():
                args.ready_file.touch()
            resumed = [w for w in workers.values() if w.resumed.is_set()]
            if args.until_resumed and resumed:
                time.sleep(3.0)  # let it train on: a resume that crashes shows here
                alive = [w.pod for w in resumed if w.process.poll() is None]
                print(f"workers: resumed and training on: {', '.join(alive) or 'none'}", flush=True)
                return 0 if alive else 1
            time.sleep(0.5)
        if args.until_resumed:
            print(f"workers: no worker resumed within {args.seconds:.0f} s", flush=True)
            return 1
        return 0
    finally:
        for worker in workers.values():
            worker.kill()


if __name__ == "__main__":
    sys.exit(main())
