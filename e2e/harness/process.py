"""A background process tied to the cluster (e.g. `corral run`), with its output in a log file."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

from harness.wait import wait_for


class ManagedProcess:
    """Start, stop (SIGTERM, then SIGKILL), kill and read the log of one subprocess.

    It runs in its own process group so a stop also reaches its children. Use it as a context
    manager, or through the `spawn` fixture, which stops it after the test and prints its log
    when the test failed.
    """

    def __init__(
        self,
        args: Sequence[str],
        *,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        name: str | None = None,
    ) -> None:
        self.args = list(args)
        self.log_path = log_path
        self.env = dict(env) if env is not None else dict(os.environ)
        self.cwd = cwd
        self.name = name or Path(self.args[0]).name
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> ManagedProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.popen = subprocess.Popen(
                self.args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
            )
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None, f"{self.name} was not started"
        return self.popen.pid

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    @property
    def returncode(self) -> int | None:
        return None if self.popen is None else self.popen.poll()

    def logs(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def wait_for_log(self, pattern: str, timeout: float = 30) -> re.Match[str]:
        """Wait until the log matches `pattern` (a regex); fail early if the process exits."""
        regex = re.compile(pattern)

        def seen() -> re.Match[str] | None:
            match = regex.search(self.logs())
            if match is None and not self.running:
                raise AssertionError(
                    f"{self.name} exited ({self.returncode}) before logging {pattern!r}"
                )
            return match

        return wait_for(seen, timeout=timeout, message=f"{self.name} logs {pattern!r}")

    def _signal_group(self, signum: int) -> None:
        if self.popen is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signum)

    def stop(self, timeout: float = 10) -> int | None:
        """SIGTERM the process group, SIGKILL it after `timeout`; the exit status."""
        if self.popen is None:
            return None
        if self.popen.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                self.popen.wait(timeout=10)
        self._signal_group(signal.SIGKILL)  # children that outlived their parent
        return self.popen.returncode

    def kill(self) -> int | None:
        """SIGKILL at once (a crash, as far as the process is concerned)."""
        if self.popen is None:
            return None
        self._signal_group(signal.SIGKILL)
        return self.popen.wait(timeout=10)

    def __enter__(self) -> ManagedProcess:
        return self.start() if self.popen is None else self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else f"exited {self.returncode}"
        pid = self.popen.pid if self.popen else "-"
        return f"<ManagedProcess {self.name} pid={pid} {state} log={self.log_path}>"


def wait_gone(pid: int, timeout: float = 10) -> None:
    """Wait until no process has this pid (or it is a zombie)."""

    def gone() -> bool:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
        except OSError:
            return True
        return state in ("Z", "X")

    wait_for(gone, timeout=timeout, message=f"pid {pid} exits")
