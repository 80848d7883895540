"""A real daemon in a subprocess, with a state directory of its own, for end-to-end tests."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from memlane.cli.client import Client, DaemonUnavailable
from memlane.daemon.adapters.paths import resolve_paths

READY_TIMEOUT = 60.0


class DaemonProcess:
    """Starts ``python -m memlane.daemon`` with ``MEMLANE_HOME`` set; kill -9 or SIGTERM it."""

    def __init__(self, home: Path, **env: str) -> None:
        self.home = home
        self.env = {**os.environ, "MEMLANE_HOME": str(home), "MEMLANE_PORT": "0", **env}
        self.paths = resolve_paths({"MEMLANE_HOME": str(home)})
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def client(self) -> Client:
        return Client(self.paths, timeout=30.0)

    def start(self, *, wait_model: bool = True) -> DaemonProcess:
        with open(self.home / "stderr.log", "ab") as stderr:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "memlane.daemon"], env=self.env, stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=stderr)
        self.wait_ready(wait_model=wait_model)
        return self

    def wait_ready(self, *, wait_model: bool) -> dict[str, Any]:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"daemon exited {self.process.returncode}: {self.stderr()}")
            try:
                health = self.client.request("GET", "/v1/health")
            except DaemonUnavailable:
                health = None
            if health is not None and (health["status"] == "ready" or not wait_model):
                return health  # type: ignore[no-any-return]
            time.sleep(0.02)
        raise TimeoutError(f"daemon not ready: {self.stderr()}")

    def hook_failures(self) -> int:
        """Hooks that failed inside the daemon (0 when it is not running)."""
        if self.process is None or self.process.poll() is not None:
            return 0
        return int(self.client.request("GET", "/v1/status")["hook_failures"])

    def wait_idle(self) -> dict[str, Any]:
        """Wait until every live memory has its vector; return the status then."""
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            status = self.client.request("GET", "/v1/status")
            live = sum(n for state, n in status["memories"].items() if state in ("active", "proven"))
            if status["embedding_backlog"] == 0 and status["vectors"] >= live:
                return status  # type: ignore[no-any-return]
            time.sleep(0.02)
        raise TimeoutError("the daemon did not finish embedding")

    def stderr(self) -> str:
        """Everything the daemons of this home wrote to stderr (whole: under load, health polls
        alone can push a start's warning out of any fixed tail)."""
        path = self.home / "stderr.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def kill9(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=60)


@contextmanager
def temporary_daemon(**env: str) -> Iterator[DaemonProcess]:
    """A started daemon in a fresh temporary state directory (for module-scoped fixtures)."""
    root = Path(tempfile.mkdtemp(prefix="ml-", dir="/tmp"))
    (root / "home").mkdir()
    process = DaemonProcess(root / "home", **env).start()
    failures = 0
    try:
        yield process
        failures = process.hook_failures()
    finally:
        process.stop()
        shutil.rmtree(root, ignore_errors=True)
    # Hooks fail open (Claude Code sees nothing): only the count tells a crash apart.
    assert failures == 0, f"{failures} hook(s) failed inside the daemon"
