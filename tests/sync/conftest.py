"""Fixtures of the sync suite: a real nats-server and two devices on one repository."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.sync.devices import Device, make_repo, new_device
from tests.sync.servers import NatsServer


@pytest.fixture
def server(short_tmp: Path) -> Iterator[NatsServer]:
    server = NatsServer(short_tmp / "nats").start()
    yield server
    server.kill9()


@pytest.fixture
def repo(short_tmp: Path) -> Path:
    return make_repo(short_tmp)


@pytest.fixture
def pair(short_tmp: Path, repo: Path, server: NatsServer) -> Iterator[tuple[Device, Device]]:
    """Devices A and B, sync enabled for their clones of one repository (not started)."""
    a = new_device(short_tmp, "a", repo, server.url)
    b = new_device(short_tmp, "b", repo, server.url)
    yield a, b
    for device in (a, b):
        print(f"--- {device.home.name} stderr ---\n{device.daemon.stderr()}")  # on failure
        if device.daemon.process is not None and device.daemon.process.poll() is None:
            device.daemon.stop()
