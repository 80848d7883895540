"""What memlane installs, checked by the real Claude Code CLI (`claude`, the npm package
`@anthropic-ai/claude-code`, pinned in .ci/run): `claude doctor` validates the hook settings,
`claude mcp list` starts the MCP server and completes its handshake, and `claude -p` fires the
session's hooks into memlane before it stops at the login. None needs a login.
Claude Code runs with a fresh HOME of its own, so the user's setup is never read or touched."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from memlane.daemon.adapters.paths import resolve_paths
from tests.e2e.daemon import DaemonProcess
from tests.tools import MEMLANE, require

INVALID = "Invalid settings"


@pytest.fixture
def claude() -> str:
    return require("claude", "the real Claude Code checks what memlane installs")


def environment(home: Path, daemon: DaemonProcess) -> dict[str, str]:
    """A fresh HOME for Claude Code, memlane's venv first on PATH, the daemon's state dir."""
    return {**os.environ, "HOME": str(home), "MEMLANE_HOME": str(daemon.home),
            "PATH": f"{Path(MEMLANE).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "DISABLE_AUTOUPDATER": "1", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"}


def run(argv: list[str], env: dict[str, str], cwd: Path) -> str:
    done = subprocess.run(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr + done.stdout
    return done.stdout + done.stderr


def project_in(root: Path) -> Path:
    project = root / "project"
    (project / ".git").mkdir(parents=True)
    return project


@pytest.mark.parametrize("mode", ["--command", "--http"])
def test_claude_doctor_accepts_the_hooks_memlane_installs(
        claude: str, daemon: DaemonProcess, short_tmp: Path, mode: str) -> None:
    """Both hook modes, user and project settings: `claude doctor` reports no invalid setting;
    the same settings with one hook of an unknown type are reported (the check can fail)."""
    env, project = environment(short_tmp, daemon), project_in(short_tmp)
    for scope in ("--user", "--project"):
        run([MEMLANE, "hooks", "install", scope, mode, "--json"], env, project)
    user = short_tmp / ".claude" / "settings.json"
    assert json.loads(user.read_text())["hooks"]["UserPromptSubmit"]
    assert INVALID not in run([claude, "doctor"], env, project)

    settings = json.loads(user.read_text())
    settings["hooks"]["UserPromptSubmit"][0]["hooks"][0]["type"] = "telepathy"
    user.write_text(json.dumps(settings))
    report = run([claude, "doctor"], env, project)
    assert INVALID in report and "telepathy" in report


def connected(listing: str) -> bool:
    """Whether `claude mcp list` shows the memlane server connected."""
    line = next((row for row in listing.splitlines() if row.startswith("memlane:")), "")
    return bool(re.search(r"\bConnected\b", line)) and "Failed" not in line


def test_claude_connects_to_the_mcp_server_memlane_installs(
        claude: str, daemon: DaemonProcess, short_tmp: Path) -> None:
    """User scope (~/.claude.json, absolute path) and project scope (.mcp.json naming plain
    `memlane`, approved in the user's settings): Claude Code starts `memlane mcp`
    and completes the MCP handshake."""
    env, project = environment(short_tmp, daemon), project_in(short_tmp)
    run([MEMLANE, "mcp", "install", "--user", "--json"], env, project)
    assert connected(run([claude, "mcp", "list"], env, project))

    run([MEMLANE, "mcp", "uninstall", "--user", "--json"], env, project)
    run([MEMLANE, "mcp", "install", "--project", "--json"], env, project)
    pending = run([claude, "mcp", "list"], env, project)
    assert "memlane:" in pending and not connected(pending)  # a shared file needs approval
    approved = short_tmp / ".claude" / "settings.json"  # a project's own settings are not
    approved.parent.mkdir(exist_ok=True)  # trusted before its workspace is: the user's are
    approved.write_text(json.dumps({"enabledMcpjsonServers": ["memlane"]}))
    assert connected(run([claude, "mcp", "list"], env, project))


@pytest.mark.daemon_env(MEMLANE_LOG_LEVEL="debug")  # every request logged: the test reads them
@pytest.mark.parametrize("mode", ["--command", "--http"])
def test_claude_without_a_login_fires_the_hooks_and_leaves_no_memory(
        claude: str, daemon: DaemonProcess, short_tmp: Path, mode: str) -> None:
    """`claude -p` with no login: Claude Code still runs SessionStart, UserPromptSubmit and
    SessionEnd through memlane's installed hooks (each answered 200), then stops at the login;
    a prompt without a marker stores nothing."""
    env, project = environment(short_tmp, daemon), project_in(short_tmp)
    port = resolve_paths({"MEMLANE_HOME": str(daemon.home)}).runtime / "tcp.port"
    env["MEMLANE_PORT"] = port.read_text().strip()  # the HTTP hooks' URL: this daemon's port
    run([MEMLANE, "hooks", "install", "--user", mode, "--json"], env, project)
    if mode == "--http":  # the line README asks HTTP-hook users to add to their shell
        env["MEMLANE_HOOK_TOKEN"] = (daemon.home / "hook-token").read_text().strip()
    done = subprocess.run([claude, "-p", "why does the build cache break after upgrades?"],
                          env=env, cwd=project, stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode != 0 and "login" in (done.stdout + done.stderr).lower(), done
    log = (daemon.home / "stderr.log").read_text(errors="replace")
    answered = {json.loads(line)["route"] for line in log.splitlines()
                if line.startswith("{") and '"route": "/hooks/' in line
                and json.loads(line).get("status") == 200}
    assert {"/hooks/SessionStart", "/hooks/UserPromptSubmit", "/hooks/SessionEnd"} <= answered
    assert daemon.client.request("GET", "/v1/status")["memories"] == {}
