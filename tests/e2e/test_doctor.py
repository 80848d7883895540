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


def _doctor_hook(daemon: DaemonProcess, config: Path, **env: str) -> dict[str, object]:
    import subprocess

    from tests.e2e.test_cli import MEMLANE

    clean = {k: v for k, v in daemon.env.items() if k != "MEMLANE_HOOK_TOKEN"}
    result = subprocess.run([MEMLANE, "doctor", "--json"], capture_output=True, text=True,
                            env={**clean, "CLAUDE_CONFIG_DIR": str(config), **env},
                            timeout=60, check=False, cwd=config)
    return {f["check"]: f for f in json.loads(result.stdout)["checks"]}["hook delivery"]


def test_http_hooks_are_probed_with_the_credential_and_port_claude_code_would_use(
        daemon: DaemonProcess, short_tmp: Path) -> None:
    """A missing or wrong MEMLANE_HOOK_TOKEN, or a wrong port, is a red finding that says so."""
    from memlane.cli.claude_settings import http_handler

    port = int((daemon.paths.runtime / "tcp.port").read_text())
    config = short_tmp / "claude"
    config.mkdir()

    def install(at: int) -> None:
        hooks = {"UserPromptSubmit": [{"hooks": [http_handler("UserPromptSubmit", at)]}]}
        (config / "settings.json").write_text(json.dumps({"hooks": hooks}))

    install(port)
    token = daemon.paths.hook_token.read_text().strip()
    right = _doctor_hook(daemon, config, MEMLANE_HOOK_TOKEN=token)
    assert right["ok"] is True, right
    missing = _doctor_hook(daemon, config)
    assert missing["ok"] is False and "$MEMLANE_HOOK_TOKEN is not set" in str(missing["detail"])
    wrong = _doctor_hook(daemon, config, MEMLANE_HOOK_TOKEN="not-the-token")
    assert wrong["ok"] is False and "answered 401" in str(wrong["detail"])
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        install(free.getsockname()[1])  # nothing listens there once closed
    moved = _doctor_hook(daemon, config, MEMLANE_HOOK_TOKEN=token)
    assert moved["ok"] is False and "nothing answers there" in str(moved["detail"])
