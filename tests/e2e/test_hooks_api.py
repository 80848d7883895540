"""The daemon's Claude Code hook endpoints, posted real hook inputs (built from the official
reference's fields), every answer validated against the documented output schema."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
from pathlib import Path

from tests.claude_hooks import EVENTS, hook_input, validate_answer, write_transcript
from tests.e2e.daemon import DaemonProcess


class _UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path: Path) -> None:
        super().__init__("localhost", timeout=30)
        self._path = str(path)

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self._path)


def post_hook(daemon: DaemonProcess, event: str, payload: dict[str, object]) -> tuple[int, bytes]:
    conn = _UnixHTTP(daemon.paths.socket)
    try:
        conn.request("POST", f"/hooks/{event}", body=json.dumps(payload),
                     headers={"content-type": "application/json"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def git_repo(path: Path) -> Path:
    path.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    return path


def context_of(event: str, status: int, body: bytes) -> str:
    output = validate_answer(event, status, body)
    if not output:
        return ""
    return str(output["hookSpecificOutput"]["additionalContext"])


def test_every_event_gets_a_valid_answer_even_with_nothing_stored(daemon: DaemonProcess,
                                                                  short_tmp: Path) -> None:
    for event in EVENTS:
        status, body = post_hook(daemon, event, hook_input(event, cwd=str(short_tmp),
                                                           transcript_path="/nonexistent"))
        validate_answer(event, status, body)


def test_session_start_briefs_the_project_and_prompts_add_new_relevant_memories(
        daemon: DaemonProcess, short_tmp: Path) -> None:
    repo = git_repo(short_tmp / "repo")
    store = lambda text: daemon.client.request(  # noqa: E731
        "POST", "/v1/memories", {"text": text, "project": str(repo)})["id"]
    decision = store("#decision we install every dependency with uv, never pip")
    cache = store("The build cache must be cleared after upgrading the toolchain")
    other = daemon.client.request("POST", "/v1/memories", {
        "text": "Clear the build cache after a toolchain upgrade", "project": "/other"})["id"]
    daemon.wait_idle()

    start = context_of("SessionStart", *post_hook(daemon, "SessionStart", hook_input(
        "SessionStart", cwd=str(repo / "sub"), session_id="s1")))
    assert f"[{decision}]" in start and f"[{other}]" not in start

    prompt = hook_input("UserPromptSubmit", cwd=str(repo), session_id="s2",
                        prompt="the build broke after the toolchain upgrade, what cache?")
    first = context_of("UserPromptSubmit", *post_hook(daemon, "UserPromptSubmit", prompt))
    assert f"[{cache}]" in first and f"[{other}]" not in first
    again = context_of("UserPromptSubmit", *post_hook(daemon, "UserPromptSubmit", prompt))
    assert again == ""  # this session was shown it already
    parallel = {**prompt, "session_id": "s3"}
    assert f"[{cache}]" in context_of("UserPromptSubmit",
                                      *post_hook(daemon, "UserPromptSubmit", parallel))
    # Shown by the briefing (s1) and two prompts (s2, s3): exposure, never a recall.
    assert events_of(daemon, cache) == ["stored", "shown", "shown", "shown"]


def events_of(daemon: DaemonProcess, memory: int) -> list[str]:
    history = daemon.client.request("GET", f"/v1/memories/{memory}/history")["events"]
    return [e["type"] for e in history if e["type"] not in ("embedded", "linked")]


def test_an_unrelated_prompt_adds_nothing(daemon: DaemonProcess, short_tmp: Path) -> None:
    repo = git_repo(short_tmp / "repo")
    daemon.client.request("POST", "/v1/memories", {
        "text": "The build cache must be cleared after upgrading the toolchain",
        "project": str(repo)})
    daemon.wait_idle()
    prompt = hook_input("UserPromptSubmit", cwd=str(repo), prompt="write a haiku about autumn")
    assert context_of("UserPromptSubmit", *post_hook(daemon, "UserPromptSubmit", prompt)) == ""


def test_a_marked_prompt_is_stored_as_a_decision(daemon: DaemonProcess, short_tmp: Path) -> None:
    repo = git_repo(short_tmp / "repo")
    prompt = hook_input("UserPromptSubmit", cwd=str(repo),
                        prompt="#decision from now on migrations run in a separate job")
    validate_answer("UserPromptSubmit", *post_hook(daemon, "UserPromptSubmit", prompt))
    rows = daemon.client.request("GET", f"/v1/export?project={repo}")["memories"]
    assert [(r["kind"], r["text"]) for r in rows] == [
        ("decision", "from now on migrations run in a separate job")]


def test_pre_compact_and_session_end_save_the_session(daemon: DaemonProcess,
                                                      short_tmp: Path) -> None:
    repo = git_repo(short_tmp / "repo")
    transcript = write_transcript(short_tmp / "t.jsonl", [
        ("user", "Why does the upload test fail on CI?"),
        ("assistant", [{"type": "text", "text": "The S3 mock's clock is skewed by 15 minutes."},
                       {"type": "tool_use", "id": "t1", "name": "Bash", "input": {}}]),
        ("user", [{"type": "tool_result", "tool_use_id": "t1", "content": "ok"}]),
        ("user", "Fix it by freezing time in the fixture."),
        ("assistant", "Done: the fixture now freezes time with time-machine."),
    ])
    for event in ("PreCompact", "SessionEnd"):
        payload = hook_input(event, cwd=str(repo), transcript_path=str(transcript))
        assert validate_answer(event, *post_hook(daemon, event, payload)) in (None, {})
    rows = daemon.client.request("GET", f"/v1/export?project={repo}&include_expired=1")
    saves = [r for r in rows["memories"] if r["kind"] == "session-save"]
    assert len(saves) == 1  # the same transcript twice is one memory
    assert "upload test" in saves[0]["text"] and "time-machine" in saves[0]["text"]
    assert "tool_result" not in saves[0]["text"]


def test_a_transcript_that_is_a_symlink_or_foreign_is_not_read(daemon: DaemonProcess,
                                                               short_tmp: Path) -> None:
    repo = git_repo(short_tmp / "repo")
    real = write_transcript(short_tmp / "real.jsonl", [("user", "secret plans for the API")])
    link = short_tmp / "link.jsonl"
    os.symlink(real, link)
    payload = hook_input("PreCompact", cwd=str(repo), transcript_path=str(link))
    validate_answer("PreCompact", *post_hook(daemon, "PreCompact", payload))
    rows = daemon.client.request("GET", f"/v1/export?project={repo}&include_expired=1")
    assert rows["memories"] == []


def test_bad_hook_requests_get_clear_errors(daemon: DaemonProcess) -> None:
    status, body = post_hook(daemon, "NoSuchEvent", hook_input("Stop"))
    assert status == 404 and json.loads(body)["error"]["code"] == "not_found"
    status, body = post_hook(daemon, "Stop", {"hook_event_name": "Stop"})
    assert status == 400 and "session_id" in json.loads(body)["error"]["message"]
