"""A training loop that survives interruptions with corral.sdk (numpy, no GPU).

It fits a linear model by mini-batch SGD on synthetic data. Every batch is a pure function of the
step number, so a run resumed from a checkpoint at step k ends with exactly the weights of an
uninterrupted run. Each step it asks `sdk.checkpoint_requested()`; when Corral asks (every
`checkpoint.intervalSeconds`, and at once on a termination notice), it writes the weights
atomically and acknowledges with `sdk.report_checkpoint(id, step, uri)`. A restarted worker
resumes from `sdk.resume_point()` (CORRAL_RESUME_STEP / CORRAL_RESUME_FROM).

    python examples/sdk/train.py --steps 2000 --checkpoint-dir /tmp/ckpt

Outside a pod there is no annotations file, so nothing requests a checkpoint; point
CORRAL_ANNOTATIONS_FILE at a file with a line `corral.dev/checkpoint-requested="1-notice"` to
ask by hand (with --no-report, nothing is patched).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from corral import sdk

FEATURES = 16


def batch(step: int, size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """The batch of a step: the same on every run, so resuming reproduces the run exactly."""
    rng = np.random.default_rng(step)
    truth = np.linspace(-1.0, 1.0, FEATURES)
    x = rng.normal(size=(size, FEATURES))
    y = x @ truth + 0.01 * rng.normal(size=size)
    return x, y


def save(directory: Path, step: int, weights: np.ndarray) -> Path:
    """Write then rename: a checkpoint is either whole or absent."""
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / f"step-{step}.npy"
    partial = directory / f".step-{step}.npy.partial"
    with partial.open("wb") as handle:
        np.save(handle, weights)
        handle.flush()
        os.fsync(handle.fileno())
    partial.rename(final)
    return final


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--checkpoint-dir", type=Path, default=Path("/tmp/corral-ckpt"))
    parser.add_argument("--step-seconds", type=float, default=0.0, help="sleep per step (demo)")
    parser.add_argument("--no-report", action="store_true", help="do not patch the pod")
    args = parser.parse_args(argv)

    weights = np.zeros(FEATURES)
    start = 0
    resume = sdk.resume_point()
    if resume is not None:
        if resume.uri is None:
            raise SystemExit("CORRAL_RESUME_STEP is set without CORRAL_RESUME_FROM")
        weights = np.load(resume.uri)
        start = resume.step
        print(f"resumed from {resume.uri} at step {start}", flush=True)

    client = None if args.no_report else _client()
    handled: set[str] = set()  # without a client the SDK cannot remember what it acknowledged
    for step in range(start, args.steps):
        request = sdk.checkpoint_requested(client=client)
        if request is not None and request not in handled:
            handled.add(request)
            path = save(args.checkpoint_dir, step, weights)
            if client is not None:
                sdk.report_checkpoint(request, step, uri=str(path), client=client)
            print(f"checkpoint {request} at step {step}: {path}", flush=True)
        x, y = batch(step)
        gradient = 2.0 * x.T @ (x @ weights - y) / len(y)
        weights -= args.lr * gradient
        if args.step_seconds:
            time.sleep(args.step_seconds)
    x, y = batch(10**9, size=1024)
    loss = float(np.mean((x @ weights - y) ** 2))
    print(json.dumps({"done": args.steps, "loss": loss, "weights": weights.tolist()}), flush=True)
    return 0


def _client() -> sdk.PodClient | None:
    """The in-cluster client, or None outside a pod (nothing to acknowledge to)."""
    try:
        return sdk.PodClient()
    except sdk.SDKError as exc:
        print(f"not acknowledging checkpoints: {exc}", file=sys.stderr, flush=True)
        return None


if __name__ == "__main__":
    sys.exit(main())
