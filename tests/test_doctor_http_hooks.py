"""Doctor warns when HTTP hooks run on a machine where other users can log in: they send their
credential to whoever owns the port, and cannot prove the daemon first."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from memlane.cli.claude_settings import command_handler, http_handler
from memlane.cli.doctor import check_http_hooks_alone, other_login_accounts
from memlane.cli.hookprobe import prompt_handlers
from memlane.daemon.adapters.paths import resolve_paths


@pytest.fixture
def claude_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def install(config: Path, handler: dict[str, object]) -> None:
    hooks = {"UserPromptSubmit": [{"hooks": [handler]}]}
    (config / "settings.json").write_text(json.dumps({"hooks": hooks}))


def test_http_hooks_with_other_login_accounts_are_a_red_finding(claude_config: Path) -> None:
    install(claude_config, http_handler("UserPromptSubmit", 52525))
    paths = resolve_paths({"MEMLANE_HOME": str(claude_config / "home")})
    shared = check_http_hooks_alone(paths, accounts=lambda: ["alice", "bob"])
    assert shared.ok is False and "alice, bob" in shared.detail and "without --http" in shared.fix
    alone = check_http_hooks_alone(paths, accounts=lambda: [])
    assert alone.ok is True


def test_command_hooks_need_no_such_warning(claude_config: Path) -> None:
    from memlane.cli.claude_settings import Target

    paths = resolve_paths({"MEMLANE_HOME": str(claude_config / "home")})
    target = Target(script=Path("/usr/lib/memlane/cli/hook.sh"), socket=paths.socket,
                    memlane=Path("/usr/bin/memlane"), port=0)
    install(claude_config, command_handler("UserPromptSubmit", target))
    assert prompt_handlers(claude_config / "settings.json")  # ours, so the check looked at it
    finding = check_http_hooks_alone(paths, accounts=lambda: ["alice"])
    assert finding.ok is None


def test_this_users_own_account_is_never_listed() -> None:
    import os
    import pwd

    assert pwd.getpwuid(os.getuid()).pw_name not in other_login_accounts()
