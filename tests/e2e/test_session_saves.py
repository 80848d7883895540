"""Session saves read the whole transcript (streamed), skip sessions whose only answers are
Claude Code's synthetic errors, and are one memory per session content."""

from __future__ import annotations

from pathlib import Path

from tests.claude_hooks import hook_input, validate_answer, write_transcript
from tests.e2e.daemon import DaemonProcess
from tests.e2e.test_hooks_api import git_repo, post_hook


def _saves(daemon: DaemonProcess, repo: Path) -> list[str]:
    rows = daemon.client.request("GET", f"/v1/export?project={repo}&include_expired=1")
    return [r["text"] for r in rows["memories"] if r["kind"] == "session-save"]


def _end(daemon: DaemonProcess, repo: Path, transcript: Path, session: str = "s") -> None:
    payload = hook_input("SessionEnd", cwd=str(repo), transcript_path=str(transcript),
                         session_id=session)
    validate_answer("SessionEnd", *post_hook(daemon, "SessionEnd", payload))


def test_a_session_whose_only_answer_is_a_synthetic_error_is_not_saved(
        daemon: DaemonProcess, short_tmp: Path) -> None:
    """`claude` without a login fires SessionEnd too: "Not logged in" is not a memory."""
    repo = git_repo(short_tmp / "repo")
    transcript = write_transcript(short_tmp / "t.jsonl", [
        ("user", "refactor the billing module into smaller services"),
        {"role": "assistant", "content": "Not logged in · Please run /login",
         "isApiErrorMessage": True}])
    _end(daemon, repo, transcript)
    assert _saves(daemon, repo) == []


def test_the_save_covers_the_whole_transcript_beyond_2_mib(daemon: DaemonProcess,
                                                            short_tmp: Path) -> None:
    """The first ask of a long session (2.9 MB of tool output later) is in its save."""
    repo = git_repo(short_tmp / "repo")
    bulk = [{"type": "tool_result", "tool_use_id": "t", "content": "x" * 100_000}]
    turns: list[object] = [("user", "port the importer from Perl to Python"),
                           ("assistant", "Starting with the CSV reader.")]
    for n in range(30):
        turns += [("user", bulk), ("user", f"now step {n}"), ("assistant", f"step {n} done")]
    transcript = write_transcript(short_tmp / "t.jsonl", turns)  # type: ignore[arg-type]
    assert transcript.stat().st_size > 2.5 * 1024 * 1024
    _end(daemon, repo, transcript)
    _end(daemon, repo, transcript)  # a second SessionEnd for the same content: one save
    saves = _saves(daemon, repo)
    assert len(saves) == 1
    assert "port the importer from Perl" in saves[0] and "now step 29" in saves[0]
    assert "more)" in saves[0]  # the middle asks are counted, not listed


def test_the_save_counts_the_secrets_redacted_from_the_transcript(daemon: DaemonProcess,
                                                                   short_tmp: Path) -> None:
    repo = git_repo(short_tmp / "repo")
    key = "AKIA" + "Q3XWZ7RT2YB6PLM4"
    transcript = write_transcript(short_tmp / "t.jsonl", [
        ("user", f"deploy with the key {key}"), ("assistant", f"Deployed; {key} works.")])
    _end(daemon, repo, transcript)
    hits = daemon.client.request("POST", "/v1/search", {"query": "deploy key",
                                                        "project": str(repo)})["hits"]
    memory = daemon.client.request("GET", f"/v1/memories/{hits[0]['id']}")
    assert memory["kind"] == "session-save" and key not in memory["text"]
    assert memory["redactions"] == 2
