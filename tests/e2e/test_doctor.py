"""`memlane doctor` finds what is wrong and says how to fix it; a port clash does not stop
the daemon from serving its Unix socket."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.daemon import DaemonProcess
from tests.e2e.test_cli import run


def findings(daemon: DaemonProcess) -> dict[str, dict[str, object]]:
    result = run(daemon, "doctor", "--json", check=False)
    return {f["check"]: f for f in json.loads(result.stdout)["checks"]}


def test_a_healthy_daemon_passes_every_check_it_can_run(daemon: DaemonProcess) -> None:
    result = run(daemon, "doctor", "--json", check=False)
    assert result.returncode == 0, result.stdout
    checks = findings(daemon)
    for name in ("unix socket", "tcp listener", "permissions", "model files", "event log",
                 "projections", "disk space"):
        assert checks[name]["ok"] is True, checks[name]


def test_a_stopped_daemon_and_loose_permissions_are_reported_with_fixes(
        daemon: DaemonProcess) -> None:
    daemon.stop()
    daemon.paths.token.chmod(0o644)
    result = run(daemon, "doctor", "--json", check=False)
    assert result.returncode == 1
    checks = findings(daemon)
    assert checks["unix socket"]["ok"] is False and "memlane up" in str(checks["unix socket"]["fix"])
    assert checks["permissions"]["ok"] is False and "644" in str(checks["permissions"]["detail"])
    assert checks["projections"]["ok"] is None


@pytest.fixture
def squatter() -> Iterator[int]:
    """Another process's listener on a TCP port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_a_port_held_by_another_process_is_named_and_the_socket_still_works(
        short_tmp: Path, squatter: int) -> None:
    (short_tmp / "home").mkdir()
    daemon = DaemonProcess(short_tmp / "home", MEMLANE_PORT=str(squatter))
    daemon.start()
    try:
        status = daemon.client.request("GET", "/v1/status")
        assert str(squatter) in status["tcp_error"]
        daemon.client.request("POST", "/v1/memories", {"text": "still works", "project": "p"})
        checks = findings(daemon)
        assert checks["unix socket"]["ok"] is True
        assert checks["tcp listener"]["ok"] is False
        assert str(squatter) in str(checks["tcp listener"]["detail"]) + str(
            checks["tcp listener"]["fix"])
    finally:
        daemon.stop()
