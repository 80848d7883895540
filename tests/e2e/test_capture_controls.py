"""Capture controls: #off-the-record for a session, `memlane pause`/`resume`, ignored
projects in config, `memlane forget --project`."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.claude_hooks import hook_input, write_transcript
from tests.e2e.daemon import DaemonProcess
from tests.e2e.test_cli import MEMLANE
from tests.e2e.test_hooks_api import git_repo, post_hook


def _rows(daemon: DaemonProcess, repo: Path) -> list[dict[str, object]]:
    return daemon.client.request(  # type: ignore[no-any-return]
        "GET", f"/v1/export?project={repo}&include_expired=1")["memories"]


def _session(daemon: DaemonProcess, tmp: Path, repo: Path, session: str, *prompts: str) -> None:
    for prompt in prompts:
        post_hook(daemon, "UserPromptSubmit", hook_input(
            "UserPromptSubmit", cwd=str(repo), session_id=session, prompt=prompt))
    transcript = write_transcript(tmp / f"{session}.jsonl", [
        *[("user", p) for p in prompts], ("assistant", "Done: the importer now streams rows.")])
    post_hook(daemon, "SessionEnd", hook_input("SessionEnd", cwd=str(repo), session_id=session,
                                               transcript_path=str(transcript)))


def _cli(daemon: DaemonProcess, *args: str) -> dict[str, object]:
    done = subprocess.run([MEMLANE, *args, "--json"], env=daemon.env, capture_output=True,
                          text=True, timeout=60, check=True)
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def test_an_off_the_record_session_stores_nothing(daemon: DaemonProcess,
                                                  short_tmp: Path) -> None:
    repo = git_repo(short_tmp / "repo")
    _session(daemon, short_tmp, repo, "private", "#off-the-record let's try the prod key",
             "#decision rotate keys monthly")
    assert _rows(daemon, repo) == []
    _session(daemon, short_tmp, repo, "public", "#decision rotate keys monthly")
    assert [r["kind"] for r in _rows(daemon, repo)] == ["decision", "session-save"]


def test_pause_and_resume(daemon: DaemonProcess, short_tmp: Path) -> None:
    repo = git_repo(short_tmp / "repo")
    assert _cli(daemon, "pause")["paused"] is True
    _session(daemon, short_tmp, repo, "a", "#decision the importer streams rows")
    assert _rows(daemon, repo) == []
    assert _cli(daemon, "resume")["paused"] is False
    _session(daemon, short_tmp, repo, "b", "#decision the importer streams rows")
    assert len(_rows(daemon, repo)) == 2


def test_an_ignored_project_is_never_captured(short_tmp: Path) -> None:
    home = short_tmp / "home"
    home.mkdir()
    secret, other = git_repo(short_tmp / "secret"), git_repo(short_tmp / "other")
    (home / "config.toml").write_text(f'ignore_projects = ["{short_tmp / "secret"}"]\n')
    daemon = DaemonProcess(home).start()
    try:
        _session(daemon, short_tmp, secret, "s", "#decision use the internal registry")
        _session(daemon, short_tmp, other, "o", "#decision use the public registry")
        assert _rows(daemon, secret) == [] and len(_rows(daemon, other)) == 2
    finally:
        daemon.stop()


def test_forget_a_whole_project(daemon: DaemonProcess, short_tmp: Path) -> None:
    for text in ("alpha uses uv", "alpha deploys on fridays", "alpha logs are json"):
        daemon.client.request("POST", "/v1/memories", {"text": text, "project": "/alpha"})
    kept = daemon.client.request("POST", "/v1/memories", {"text": "beta", "project": "/beta"})
    answer = _cli(daemon, "forget", "--project", "/alpha")
    assert len(answer["forgotten"]) == 3  # type: ignore[arg-type]
    assert _rows(daemon, Path("/alpha")) == []
    assert daemon.client.request("GET", f"/v1/memories/{kept['id']}")["state"] == "active"
