"""The real daemon under strace, for syscall fault injection, and the checks the fault and crash
suites share."""

from __future__ import annotations

import functools
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from memlane.cli.client import Client, DaemonError, DaemonUnavailable
from memlane.events.log import read_log
from memlane.events.model import Stored
from memlane.events.segments import segment_name

from tests.e2e.daemon import DaemonProcess
from tests.tools import missing

STRACE = shutil.which("strace")
# An unknown model fails to load at once: nothing but the test's own requests writes to the log.
NO_MODEL = {"MEMLANE_MODEL": "no-such-model"}


@functools.cache
def strace_can_inject() -> bool:
    """strace is installed and may trace here (ptrace can be forbidden in a container)."""
    if STRACE is None:
        return False
    probe = [STRACE, "-f", "-qq", "-o", "/dev/null", "-e", "trace=fdatasync",
             "-e", "inject=fdatasync:error=EIO", "true"]
    return subprocess.run(probe, capture_output=True, timeout=60).returncode == 0


def require_strace() -> None:
    if not strace_can_inject():
        missing("strace is not installed or may not trace here")


def first_segment(daemon: DaemonProcess) -> Path:
    """The segment every store of a fresh state directory goes to (``strace -P`` scopes to it)."""
    return daemon.paths.log_dir / segment_name(1)


class StracedDaemon(DaemonProcess):
    """The daemon started as ``strace <strace_args> python -m memlane.daemon``.

    strace blocks SIGTERM while it runs its child, so signals go to the daemon's own pid; strace
    exits with the daemon's exit code.
    """

    def __init__(self, home: Path, strace_args: list[str], **env: str) -> None:
        super().__init__(home, **env)
        self.strace_args = strace_args
        self.pid = 0

    def start(self, *, wait_model: bool = True) -> StracedDaemon:
        assert STRACE is not None
        command = [STRACE, "-f", "-qq", "-o", "/dev/null", *self.strace_args,
                   sys.executable, "-m", "memlane.daemon"]
        with open(self.home / "stderr.log", "ab") as stderr:
            self.process = subprocess.Popen(command, env=self.env, stdin=subprocess.DEVNULL,
                                            stdout=subprocess.DEVNULL, stderr=stderr)
        self.wait_ready(wait_model=wait_model)
        self.pid = int(self.paths.pid_file.read_text())
        return self

    def kill9(self) -> None:
        assert self.process is not None
        if self.process.poll() is None:
            os.kill(self.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
        return self.process.wait(timeout=60)


def store_until_failure(client: Client, prefix: str, limit: int = 200
                        ) -> tuple[list[dict[str, Any]], str, Exception]:
    """Store texts one by one until a store fails: the acknowledged answers (with their text),
    the text that failed, and how it failed."""
    acked: list[dict[str, Any]] = []
    for n in range(limit):
        text = f"{prefix} {n}"
        try:
            answer = client.request("POST", "/v1/memories", {"text": text, "project": "p"})
        except (DaemonError, DaemonUnavailable) as exc:
            return acked, text, exc
        acked.append({"text": text, **answer})
    raise AssertionError(f"no store failed in {limit} attempts")


def assert_acked_present(daemon: DaemonProcess, acked: list[dict[str, Any]]) -> None:
    for answer in acked:
        memory = daemon.client.request("GET", f"/v1/memories/{answer['id']}")
        assert memory["text"] == answer["text"], answer


def stored_with_text(daemon: DaemonProcess, text: str) -> list[Stored]:
    return [r.event for r in read_log(daemon.paths.log_dir, tolerate_tail=False)
            if isinstance(r.event, Stored) and r.event.text == text]


def assert_contiguous(daemon: DaemonProcess) -> list[int]:
    seqs = [r.seq for r in read_log(daemon.paths.log_dir, tolerate_tail=False)]
    assert seqs == list(range(1, len(seqs) + 1))
    return seqs
