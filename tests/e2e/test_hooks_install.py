"""`memlane hooks install|uninstall|status` on Claude Code's settings.json: ours added beside the
user's own settings, idempotent, one mode at a time, and the original bytes back on uninstall."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from memlane.cli import claude_settings as cs
from tests.e2e.test_cli import MEMLANE

# Four-space indent, inline objects, non-ASCII text, an empty event list: a hand-edited file.
ORIGINAL = """{
    "model": "opus",
    "env": {"GREETING": "grüß dich — ☕"},
    "permissions": {"allow": ["Bash(git diff:*)"], "deny": []},
    "hooks": {
        "UserPromptSubmit": [
            {"hooks": [{"type": "command", "command": "~/bin/prompt-log.sh", "timeout": 7}]}
        ],
        "PostToolUse": [
            {
                "matcher": "Edit|Write",
                "hooks": [{"type": "command", "command": "npx prettier --write \\"$FILE\\""}]
            }
        ],
        "Notification": []
    },
    "statusLine": {"type": "command", "command": "echo ✓"}
}
""".encode()
OUR_EVENTS = {"SessionStart", "UserPromptSubmit", "PreCompact", "SessionEnd"}
TARGET = cs.Target(script=cs.HOOK_SCRIPT, socket=Path("/run/user/1000/memlane/memlane.sock"),
                   memlane=Path("/usr/local/bin/memlane"), port=52525)


def memlane(home: Path, *args: str, cwd: Path | None = None,
            check: bool = True, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items()
             if k not in ("CLAUDE_CONFIG_DIR", "MEMLANE_PORT", "XDG_CONFIG_HOME")}
    clean.update(HOME=str(home), MEMLANE_HOME=str(home / "state"), **env)
    result = subprocess.run([MEMLANE, *args], env=clean, capture_output=True, text=True,
                            timeout=60, cwd=cwd or home, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"memlane {' '.join(args)} failed: {result.stderr}")
    return result


def install(home: Path, *args: str, cwd: Path | None = None) -> dict[str, Any]:
    return json.loads(memlane(home, "hooks", "install", "--json", *args, cwd=cwd).stdout)


def uninstall(home: Path, *args: str, cwd: Path | None = None) -> dict[str, Any]:
    return json.loads(memlane(home, "hooks", "uninstall", "--json", *args, cwd=cwd).stdout)


def ours(settings: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    return cs.ours_in(settings, cs.script_markers())


@pytest.fixture
def home(short_tmp: Path) -> Path:
    (short_tmp / ".claude").mkdir()
    (short_tmp / ".claude" / "settings.json").write_bytes(ORIGINAL)
    return short_tmp


def settings_file(home: Path) -> Path:
    return home / ".claude" / "settings.json"


def test_install_adds_our_command_hooks_and_keeps_everything_else(home: Path) -> None:
    """Other keys and other hooks keep their values and places; ours follow them."""
    result = install(home)
    assert result["action"] == "added" and result["mode"] == "command"
    before, after = json.loads(ORIGINAL), json.loads(settings_file(home).read_bytes())
    assert {k: v for k, v in after.items() if k != "hooks"} == \
           {k: v for k, v in before.items() if k != "hooks"}
    assert list(after) == list(before)
    for event, groups in before["hooks"].items():
        assert after["hooks"][event][:len(groups)] == groups
    found = ours(after)
    assert set(found) == OUR_EVENTS
    socket = home / "state" / "run" / "memlane.sock"
    for event, handlers in found.items():
        assert [h["type"] for h in handlers] == ["command"]
        assert shlex.split(handlers[0]["command"]) == [
            "/bin/sh", str(cs.HOOK_SCRIPT), event, str(socket), MEMLANE]
        assert handlers[0]["timeout"] == cs.COMMAND_TIMEOUTS[event]
        assert after["hooks"][event][-1] == {"hooks": handlers}  # a group of our own, no matcher


def test_installing_twice_changes_nothing(home: Path) -> None:
    """The second install reports unchanged and leaves the bytes as they were."""
    install(home)
    first = settings_file(home).read_bytes()
    assert install(home)["action"] == "unchanged"
    assert settings_file(home).read_bytes() == first


def test_http_mode_replaces_our_command_hooks_and_never_writes_the_token(home: Path) -> None:
    """--http swaps ours for HTTP hooks (SessionStart stays a command) naming $MEMLANE_HOOK_TOKEN."""
    token = memlane(home, "token").stdout.strip()
    install(home)
    result = install(home, "--http")
    assert result["action"] == "updated" and "hook-token" in result["shell_profile"]
    data = settings_file(home).read_bytes()
    assert token.encode() not in data
    after = json.loads(data)
    found = ours(after)
    assert {e: [h["type"] for h in hs] for e, hs in found.items()} == {
        "SessionStart": ["command"], "UserPromptSubmit": ["http"], "PreCompact": ["http"],
        "SessionEnd": ["http"]}
    prompt = found["UserPromptSubmit"][0]
    assert prompt == {"type": "http", "url": "http://127.0.0.1:52525/hooks/UserPromptSubmit",
                      "headers": {"Authorization": "Bearer $MEMLANE_HOOK_TOKEN"},
                      "allowedEnvVars": ["MEMLANE_HOOK_TOKEN"], "timeout": 3}
    before = json.loads(ORIGINAL)
    assert after["hooks"]["PostToolUse"] == before["hooks"]["PostToolUse"]
    assert after["hooks"]["UserPromptSubmit"][0] == before["hooks"]["UserPromptSubmit"][0]
    assert install(home, "--http")["action"] == "unchanged"


def test_uninstall_restores_the_original_bytes(home: Path) -> None:
    """After installs in both modes, uninstall puts back the very bytes the user had."""
    install(home)
    install(home, "--http")
    assert uninstall(home)["action"] == "restored"
    assert settings_file(home).read_bytes() == ORIGINAL
    assert not any((home / "state" / "claude-settings-backup").iterdir())
    assert uninstall(home)["action"] == "absent"
    assert settings_file(home).read_bytes() == ORIGINAL


def test_uninstall_after_an_edit_keeps_the_edit_in_the_file_s_own_indentation(home: Path) -> None:
    """A setting added while installed survives; only ours go; the 4-space indent stays."""
    install(home)
    edited = json.loads(settings_file(home).read_bytes())
    edited["theme"] = "dark"
    settings_file(home).write_text(json.dumps(edited, indent=4, ensure_ascii=False) + "\n")
    assert uninstall(home)["action"] == "removed"
    text = settings_file(home).read_text()
    assert json.loads(text) == {**json.loads(ORIGINAL), "theme": "dark"}
    assert '\n    "model": "opus"' in text and "☕" in text


def test_project_scope_writes_the_repository_s_settings(home: Path) -> None:
    """--project edits <git root>/.claude/settings.json, creating it, and leaves the user's."""
    repo = home / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "src").mkdir()
    result = install(home, "--project", cwd=repo / "src")
    project_file = repo / ".claude" / "settings.local.json"
    assert result["path"] == str(project_file) and set(ours(json.loads(
        project_file.read_bytes()))) == OUR_EVENTS
    assert settings_file(home).read_bytes() == ORIGINAL
    assert (repo / ".gitignore").read_text() == ".claude/settings.local.json\n"
    install(home, "--project", cwd=repo)  # once is enough
    assert (repo / ".gitignore").read_text() == ".claude/settings.local.json\n"
    status = json.loads(memlane(home, "hooks", "status", "--json", cwd=repo).stdout)
    assert [(row["path"], set(row["hooks"])) for row in status["settings"]] == [
        (str(settings_file(home)), set()), (str(project_file), OUR_EVENTS)]
    assert uninstall(home, "--project", cwd=repo)["action"] == "restored"
    assert not project_file.exists()  # there was no file before


def test_dry_run_writes_nothing(home: Path) -> None:
    """--dry-run reports the change and the entries, and leaves the file and state alone."""
    result = install(home, "--dry-run")
    assert result["action"] == "added" and set(result["hooks"]) == OUR_EVENTS
    assert settings_file(home).read_bytes() == ORIGINAL
    assert not (home / "state" / "claude-settings-backup").exists()


def test_a_file_memlane_cannot_edit_safely_is_left_alone(home: Path) -> None:
    """Broken JSON, or hooks that are not an object, stop the install with a message."""
    for content in (b'{"hooks": {,}}', b'{"hooks": []}'):
        settings_file(home).write_bytes(content)
        result = memlane(home, "hooks", "install", check=False)
        assert result.returncode == 1 and str(settings_file(home)) in result.stderr
        assert settings_file(home).read_bytes() == content


def test_http_mode_needs_a_fixed_port(home: Path) -> None:
    """With port 0 the daemon's port changes at every start, so --http refuses."""
    result = memlane(home, "hooks", "install", "--http", check=False, MEMLANE_PORT="0")
    assert result.returncode == 1 and "--command" in result.stderr
    assert settings_file(home).read_bytes() == ORIGINAL


def test_removing_ours_drops_only_what_we_emptied() -> None:
    """A group shared with another handler keeps it; groups and events we did not empty stay."""
    mine = cs.command_handler("UserPromptSubmit", TARGET)
    theirs = {"type": "command", "command": "audit.sh"}
    settings = {"hooks": {"UserPromptSubmit": [{"hooks": [theirs, mine]}, {"hooks": [mine]}],
                          "Stop": [{"hooks": []}], "PreCompact": [{"hooks": [mine]}]}}
    assert cs.remove_hooks(settings, TARGET.markers) == {
        "hooks": {"UserPromptSubmit": [{"hooks": [theirs]}], "Stop": [{"hooks": []}]}}
    assert cs.remove_hooks({"hooks": {"PreCompact": [{"hooks": [mine]}]}}, TARGET.markers) == {}


def test_other_tools_hooks_on_localhost_are_not_ours() -> None:
    """An HTTP hook to 127.0.0.1 without our token variable, or another script, is theirs."""
    assert not cs.is_ours({"type": "http", "url": "http://127.0.0.1:52525/hooks/Stop"},
                          TARGET.markers)
    assert not cs.is_ours({"type": "command", "command": "/opt/x/hook.sh Stop"}, TARGET.markers)
    assert cs.is_ours(cs.http_handler("SessionEnd", 4000), TARGET.markers)
    assert cs.is_ours({"type": "command", "command": "sh /x/site-packages/memlane/cli/hook.sh"},
                      TARGET.markers)


_handler = st.fixed_dictionaries({"type": st.just("command"),
                                  "command": st.text(st.characters(codec="utf-8"), max_size=20)})
_group = st.fixed_dictionaries({"hooks": st.lists(_handler, min_size=1, max_size=3)},
                               optional={"matcher": st.sampled_from(["", "Edit", "startup"])})
_hooks = st.dictionaries(st.sampled_from(["SessionStart", "UserPromptSubmit", "Stop", "X"]),
                         st.lists(_group, min_size=1, max_size=3), min_size=1)
_settings = st.fixed_dictionaries({}, optional={"hooks": _hooks, "model": st.text(max_size=5)})


@given(_settings, st.sampled_from(["command", "http"]))
def test_install_then_remove_gives_back_any_settings_without_ours(
        settings: dict[str, Any], mode: cs.Mode) -> None:
    """For settings holding none of ours, removing after installing is the identity."""
    installed = cs.install_hooks(settings, cs.our_entries(mode, TARGET), TARGET.markers)
    assert set(cs.ours_in(installed, TARGET.markers)) == OUR_EVENTS
    assert cs.install_hooks(installed, cs.our_entries(mode, TARGET), TARGET.markers) is installed
    assert cs.remove_hooks(installed, TARGET.markers) == settings
