"""Fixtures shared by the reliability suites."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.daemon import DaemonProcess


@pytest.fixture
def daemons() -> Iterator[list[DaemonProcess]]:
    """Every daemon a test starts; any still running at the end is killed."""
    started: list[DaemonProcess] = []
    yield started
    for daemon in started:
        if daemon.process is not None and daemon.process.poll() is None:
            daemon.kill9()


def start(daemons: list[DaemonProcess], daemon: DaemonProcess) -> DaemonProcess:
    """Start ``daemon`` without waiting for its model, and have the fixture clean it up."""
    daemons.append(daemon)
    return daemon.start(wait_model=False)
