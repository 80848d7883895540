"""hook.sh, the command hook Claude Code runs: the daemon's answer relayed as valid hook output,
and nothing (exit 0, fast) when the daemon is down, stalled or curl is missing."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from memlane.cli.claude_settings import HOOK_SCRIPT
from memlane.cli.client import Client, DaemonUnavailable
from memlane.daemon.adapters.paths import resolve_paths
from tests.claude_hooks import hook_input, validate_output
from tests.e2e.daemon import DaemonProcess
from tests.e2e.test_cli import MEMLANE
from tests.e2e.test_hooks_api import git_repo

# Far under the deadline the down test sets: a hook with no daemon does not wait for it (its
# speed, sh + curl, is the bench's to measure; a loaded CI machine misses tight bounds).
DOWN_BOUND = 2.0
DOWN_DEADLINE = "10"
START_TIMEOUT = 60.0


def run_hook(event: str, payload: dict[str, Any], *, socket_path: Path,
             env: dict[str, str]) -> tuple[subprocess.CompletedProcess[bytes], float]:
    """Run the script as settings.json does; the result and its wall time."""
    started = time.monotonic()
    result = subprocess.run(["/bin/sh", str(HOOK_SCRIPT), event, str(socket_path), MEMLANE],
                            input=json.dumps(payload).encode(), capture_output=True, env=env,
                            timeout=60, check=False)
    return result, time.monotonic() - started


def context(event: str, result: subprocess.CompletedProcess[bytes]) -> str:
    assert result.returncode == 0, result.stderr
    output = validate_output(event, result.stdout.strip())
    return str(output["hookSpecificOutput"]["additionalContext"]) if output else ""


def bin_without_curl(folder: Path, *tools: str) -> dict[str, str]:
    """A PATH of symlinks to ``tools`` only: no curl."""
    folder.mkdir()
    for tool in tools:
        found = shutil.which(tool)
        assert found is not None, tool
        (folder / tool).symlink_to(found)
    return {"PATH": str(folder)}


@pytest.fixture
def repo_with_memories(daemon: DaemonProcess, short_tmp: Path) -> dict[str, Any]:
    repo = git_repo(short_tmp / "repo")
    ids = {name: daemon.client.request("POST", "/v1/memories", {
        "text": text, "project": str(repo)})["id"] for name, text in (
        ("decision", "#decision we install every dependency with uv, never pip"),
        ("cache", "The build cache must be cleared after upgrading the toolchain"))}
    daemon.wait_idle()
    return {"repo": repo, **ids}


PROMPT = "the build broke after the toolchain upgrade, what cache?"


def test_the_script_ships_executable() -> None:
    """The installed copy sits beside memlane.cli and keeps its exec bit."""
    assert HOOK_SCRIPT.is_file() and os.access(HOOK_SCRIPT, os.X_OK)


def test_answers_pass_claude_code_s_output_schema(daemon: DaemonProcess,
                                                  repo_with_memories: dict[str, Any]) -> None:
    """SessionStart gets the briefing, a prompt its related memory, Stop nothing at all."""
    repo, env = repo_with_memories["repo"], daemon.env
    start, _ = run_hook("SessionStart", hook_input("SessionStart", cwd=str(repo)),
                        socket_path=daemon.paths.socket, env=env)
    assert f"[{repo_with_memories['decision']}]" in context("SessionStart", start)
    prompt, _ = run_hook("UserPromptSubmit", hook_input(
        "UserPromptSubmit", cwd=str(repo), session_id="s2", prompt=PROMPT),
        socket_path=daemon.paths.socket, env=env)
    assert f"[{repo_with_memories['cache']}]" in context("UserPromptSubmit", prompt)
    stop, _ = run_hook("Stop", hook_input("Stop", cwd=str(repo)),
                       socket_path=daemon.paths.socket, env=env)
    assert (stop.returncode, stop.stdout) == (0, b"")


def test_with_the_daemon_down_it_exits_at_once_with_nothing(daemon: DaemonProcess) -> None:
    """No daemon: exit 0, empty stdout, without waiting for the deadline."""
    daemon.stop()
    env = {**daemon.env, "MEMLANE_HOOK_TIMEOUT": DOWN_DEADLINE}
    for event in ("UserPromptSubmit", "PreCompact", "SessionEnd"):
        result, elapsed = run_hook(event, hook_input(event), socket_path=daemon.paths.socket,
                                   env=env)
        assert (result.returncode, result.stdout) == (0, b"")
        assert elapsed < DOWN_BOUND, f"{event}: {elapsed:.3f} s"


@contextmanager
def silent_server(path: Path) -> Iterator[None]:
    """A Unix socket that takes connections (the kernel's backlog) and never answers."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(16)
    try:
        yield
    finally:
        server.close()


def test_a_daemon_that_never_answers_costs_only_the_deadline(short_tmp: Path) -> None:
    """A stalled daemon: exit 0 with nothing within the deadline (MEMLANE_HOOK_TIMEOUT)."""
    deadline = 0.5
    env = {**os.environ, "MEMLANE_HOOK_TIMEOUT": str(deadline),
           "MEMLANE_HOME": str(short_tmp / "home")}
    with silent_server(short_tmp / "stalled.sock"):
        for event in ("UserPromptSubmit", "SessionStart"):
            result, elapsed = run_hook(event, hook_input(event),
                                       socket_path=short_tmp / "stalled.sock", env=env)
            assert (result.returncode, result.stdout) == (0, b"")
            # The upper bound tells this deadline from the events' default (2 s) or none, with
            # room for sh and curl on a loaded machine.
            assert deadline <= elapsed < deadline + 1.0, f"{event}: {elapsed:.3f} s"


def wait_for_daemon(home: Path) -> dict[str, Any]:
    client = Client(resolve_paths({"MEMLANE_HOME": str(home)}), timeout=5.0)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        try:
            return client.request("GET", "/v1/health")  # type: ignore[no-any-return]
        except DaemonUnavailable:
            time.sleep(0.05)
    raise TimeoutError(f"no daemon answered in {home}")


@pytest.mark.parametrize("with_curl", [True, False], ids=["curl", "no-curl"])
def test_session_start_with_no_daemon_starts_one_and_returns_at_once(
        short_tmp: Path, with_curl: bool) -> None:
    """SessionStart does not wait: it starts `memlane up` detached and exits 0 with nothing."""
    home = short_tmp / "home"
    env = {**os.environ, "MEMLANE_HOME": str(home), "MEMLANE_PORT": "0"}
    if not with_curl:
        env.update(bin_without_curl(short_tmp / "bin", "nohup", "setsid", "timeout"))
    socket_path = resolve_paths({"MEMLANE_HOME": str(home)}).socket
    try:
        result, elapsed = run_hook("SessionStart", hook_input("SessionStart"),
                                   socket_path=socket_path, env=env)
        assert (result.returncode, result.stdout) == (0, b"")
        assert elapsed < 1.0, f"{elapsed:.3f} s"
        assert wait_for_daemon(home)["status"] in ("ready", "loading")
        assert socket_path.is_socket()
    finally:
        down = subprocess.run([MEMLANE, "down", "--json"], env=env, capture_output=True,
                              text=True, timeout=60, check=False)
    assert json.loads(down.stdout)["stopped"] is True


@pytest.mark.parametrize("tools", [("timeout",), ()], ids=["timeout", "no-timeout"])
def test_without_curl_the_cli_relays_the_hook(daemon: DaemonProcess, short_tmp: Path,
                                              repo_with_memories: dict[str, Any],
                                              tools: tuple[str, ...]) -> None:
    """No curl on PATH: `memlane hook` answers the same, and a bad event name gets nothing."""
    env = {**daemon.env, **bin_without_curl(short_tmp / "bin", *tools)}
    prompt, _ = run_hook("UserPromptSubmit", hook_input(
        "UserPromptSubmit", cwd=str(repo_with_memories["repo"]), prompt=PROMPT),
        socket_path=daemon.paths.socket, env=env)
    assert f"[{repo_with_memories['cache']}]" in context("UserPromptSubmit", prompt)
    stop, _ = run_hook("Stop", hook_input("Stop"), socket_path=daemon.paths.socket, env=env)
    assert (stop.returncode, stop.stdout) == (0, b"")
    odd = subprocess.run([MEMLANE, "hook", "../v1/status"], input=b"{}", env=env,
                         capture_output=True, timeout=60, check=False)
    assert (odd.returncode, odd.stdout) == (0, b"")


def test_the_cli_relay_exits_0_with_nothing_when_no_daemon_answers(short_tmp: Path) -> None:
    """`memlane hook` with no daemon, or with input that is not JSON: exit 0, no output."""
    env = {**os.environ, "MEMLANE_HOME": str(short_tmp / "home")}
    for stdin in (json.dumps(hook_input("UserPromptSubmit")).encode(), b"not json"):
        result = subprocess.run([MEMLANE, "hook", "UserPromptSubmit", "--timeout", "0.5"],
                                input=stdin, env=env, capture_output=True, timeout=60,
                                check=False)
        assert (result.returncode, result.stdout) == (0, b"")
