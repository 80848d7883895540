"""Shared fixtures: a real daemon in a temporary state directory."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.daemon import DaemonProcess


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A temporary directory with a short path (Unix socket paths are limited to ~100 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="ml-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def daemon(short_tmp: Path, request: pytest.FixtureRequest) -> Iterator[DaemonProcess]:
    marked = request.node.get_closest_marker("daemon_env")
    process = DaemonProcess(short_tmp / "home", **(marked.kwargs if marked else {}))
    (short_tmp / "home").mkdir()
    process.start()
    yield process
    failures = process.hook_failures()
    if process.process is not None and process.process.poll() is None:
        process.stop()
    # Hooks fail open (Claude Code sees nothing): only the count tells a crash apart.
    assert failures == 0, f"{failures} hook(s) failed; see {process.home / 'stderr.log'}"
