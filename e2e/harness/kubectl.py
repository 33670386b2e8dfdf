"""Run the project's kubectl (from the binary cache, never whatever is on PATH) on a cluster."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any


class KubectlError(AssertionError):
    """kubectl exited non-zero; carries its stderr (the API server's message)."""

    def __init__(self, args: Sequence[str], returncode: int, stdout: str, stderr: str) -> None:
        super().__init__(f"kubectl {' '.join(args)} exited {returncode}: {stderr.strip()}")
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr


class Kubectl:
    def __init__(self, binary: Path, kubeconfig: Path) -> None:
        self.binary = binary
        self.kubeconfig = kubeconfig

    def run(
        self,
        *args: str,
        input: str | None = None,
        check: bool = True,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[str]:
        """kubectl ARGS; raises KubectlError on a non-zero exit unless check=False."""
        env = dict(os.environ, KUBECONFIG=str(self.kubeconfig))
        done = subprocess.run(
            [str(self.binary), *args],
            input=input,
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
            check=False,
        )
        if check and done.returncode != 0:
            raise KubectlError(args, done.returncode, done.stdout, done.stderr)
        return done

    def __call__(self, *args: str, input: str | None = None) -> str:
        """kubectl ARGS → stdout (raises on failure)."""
        return self.run(*args, input=input).stdout

    def json(self, *args: str) -> Any:
        """kubectl ARGS -o json → the parsed object."""
        return json.loads(self.run(*args, "-o", "json").stdout)

    def apply(self, manifest: str | Path, *extra: str) -> str:
        """Apply a path (file or directory) or a YAML text."""
        if isinstance(manifest, Path):
            return self("apply", "-f", str(manifest), *extra)
        return self("apply", "-f", "-", *extra, input=manifest)
