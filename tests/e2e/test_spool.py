"""A marked prompt posted while the daemon is down is never dropped silently: hook.sh spools
it (0600, in the state directory), tells the user, and the daemon stores it once it is up,
through the normal store path (markers stripped, secrets redacted)."""

from __future__ import annotations

import json
import stat
import time
from pathlib import Path

from tests.claude_hooks import hook_input, validate_output
from tests.e2e.daemon import DaemonProcess
from tests.e2e.test_hook_script import run_hook
from tests.e2e.test_hooks_api import git_repo

SECRET = "AKIA" + "Q3XWZ7RT2YB6PLM4"


def _stored(daemon: DaemonProcess, repo: Path, count: int) -> list[dict[str, object]]:
    """The project's rows once ``count`` are stored and the replay has dropped its copy (which
    it does after the last store returns)."""
    aside = daemon.home / "spool" / "prompts.replaying"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        rows = daemon.client.request("GET", f"/v1/export?project={repo}")["memories"]
        if len(rows) >= count and not aside.exists():
            return rows  # type: ignore[no-any-return]
        time.sleep(0.02)
    raise TimeoutError("the spooled prompts were not stored")


def test_a_decision_posted_while_the_daemon_is_down_is_spooled_then_stored(
        short_tmp: Path) -> None:
    home = short_tmp / "home"
    home.mkdir()
    daemon = DaemonProcess(home)
    repo = git_repo(short_tmp / "repo")
    told = []
    for prompt in ("#decision migrations run in their own deploy job",
                   f"#note the staging AWS key is {SECRET}",
                   "what does this function do?"):
        result, _ = run_hook("UserPromptSubmit", hook_input(
            "UserPromptSubmit", cwd=str(repo), prompt=prompt, session_id="down"),
            socket_path=daemon.paths.socket, env=daemon.env)
        assert result.returncode == 0
        output = validate_output("UserPromptSubmit", result.stdout.strip())
        told.append(output.get("systemMessage", "") if output else "")
    assert ["spooled" in message for message in told] == [True, True, False]
    spool = home / "spool" / "prompts.jsonl"
    assert stat.S_IMODE(spool.stat().st_mode) == 0o600
    assert len(spool.read_bytes().splitlines()) == 2  # the unmarked prompt is not kept
    assert SECRET.encode() not in spool.read_bytes()  # redacted before it touches the disk

    daemon.start()
    try:
        rows = _stored(daemon, repo, 2)
        assert sorted((r["kind"], r["text"]) for r in rows) == [
            ("decision", "migrations run in their own deploy job"),
            ("user-note", "the staging AWS key is [redacted:aws-access-key]")]
        assert spool.read_bytes() == b"" and not (home / "spool" / "prompts.replaying").exists()
        assert SECRET not in json.dumps(rows)
    finally:
        daemon.stop()
