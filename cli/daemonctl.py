"""Starting and stopping the daemon from the CLI (``memlane up`` / ``memlane down``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from memlane.cli.client import Client, DaemonUnavailable
from memlane.daemon.adapters.paths import Paths

READY_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0


def is_up(paths: Paths) -> dict[str, object] | None:
    """The daemon's health answer, or None when nothing answers."""
    try:
        return Client(paths, timeout=2.0).request("GET", "/v1/health")  # type: ignore[no-any-return]
    except DaemonUnavailable:
        return None


def start_background(paths: Paths) -> dict[str, object]:
    """Start a detached daemon and wait until it answers; raise RuntimeError if it dies."""
    paths.home.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(paths.daemon_log, "ab") as out:
        os.chmod(paths.daemon_log, 0o600)
        process = subprocess.Popen(
            [sys.executable, "-m", "memlane.daemon"], stdin=subprocess.DEVNULL, stdout=out,
            stderr=out, start_new_session=True, close_fds=True)
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the daemon exited with status {process.returncode}; "
                               f"see {paths.daemon_log}")
        health = is_up(paths)
        if health is not None:
            return {"pid": process.pid, **health}
        time.sleep(0.05)
    raise RuntimeError(f"the daemon did not answer within {READY_TIMEOUT:.0f} s; "
                       f"see {paths.daemon_log}")


def daemon_pid(paths: Paths) -> int | None:
    try:
        return int(paths.pid_file.read_text())
    except (OSError, ValueError):
        return None


def stop(paths: Paths) -> dict[str, object]:
    """SIGTERM the daemon and wait for it to exit."""
    pid = daemon_pid(paths)
    if pid is None or not _alive(pid):
        return {"stopped": False, "reason": "not running"}
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    while time.monotonic() < deadline:
        if not _alive(pid):
            return {"stopped": True, "pid": pid}
        time.sleep(0.05)
    raise RuntimeError(f"the daemon (pid {pid}) did not stop within {STOP_TIMEOUT:.0f} s")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of ours counts as gone
        return os.waitpid(pid, os.WNOHANG) == (0, 0)
    except ChildProcessError:
        return True
