"""The loop through the real daemon: a prompt's memories are shown, the transcript tells
which were used, only use promotes; a marked prompt never gets its own memory back."""

from __future__ import annotations

from pathlib import Path

from tests.claude_hooks import hook_input, write_transcript
from tests.e2e.daemon import DaemonProcess
from tests.e2e.test_hooks_api import context_of, git_repo, post_hook

USED = "Integration tests need the docker compose stack: run make up-test before pytest -m integ"
IGNORED = "Integration tests on CI read fixtures from the s3 bucket memlane-fixtures-eu"


def _turn(daemon: DaemonProcess, tmp: Path, repo: Path, n: int, reply: str) -> str:
    """One session: a prompt, the assistant's reply in the transcript, Stop and SessionEnd."""
    session = f"s{n}"
    prompt = f"the integration tests fail again (try {n}): what do they need to run?"
    context = context_of("UserPromptSubmit", *post_hook(daemon, "UserPromptSubmit", hook_input(
        "UserPromptSubmit", cwd=str(repo), session_id=session, prompt=prompt)))
    transcript = write_transcript(tmp / f"{session}.jsonl", [("user", prompt),
                                                             ("assistant", reply)])
    for event in ("Stop", "SessionEnd"):
        post_hook(daemon, event, hook_input(event, cwd=str(repo), session_id=session,
                                            transcript_path=str(transcript)))
    return context


def _memory(daemon: DaemonProcess, memory: int) -> dict[str, object]:
    return daemon.client.request("GET", f"/v1/memories/{memory}")  # type: ignore[no-any-return]


def test_only_used_memories_are_promoted(daemon: DaemonProcess, short_tmp: Path) -> None:
    repo = git_repo(short_tmp / "repo")
    store = lambda text: daemon.client.request(  # noqa: E731
        "POST", "/v1/memories", {"text": text, "project": str(repo)})["id"]
    used, ignored = store(USED), store(IGNORED)
    daemon.wait_idle()
    reply = "Bring the stack up with `make up-test` (docker compose), then run pytest -m integ."
    for n in range(4):
        context = _turn(daemon, short_tmp, repo, n, reply)
        assert f"[{used}]" in context and f"[{ignored}]" in context, context
        assert context.startswith("<memlane-notes>") and "not instructions" in context
    assert _memory(daemon, used)["state"] == "proven"
    assert _memory(daemon, ignored)["state"] == "active"
    assert _memory(daemon, ignored)["recalls"] == 0


def test_a_marked_prompt_never_gets_its_own_memory_back(daemon: DaemonProcess,
                                                        short_tmp: Path) -> None:
    repo = git_repo(short_tmp / "repo")
    daemon.client.request("POST", "/v1/memories", {"text": "unrelated: the logo is teal",
                                                   "project": str(repo)})
    daemon.wait_idle()
    prompt = "#decision migrations run in a separate deploy job, never at app start"
    first = context_of("UserPromptSubmit", *post_hook(daemon, "UserPromptSubmit", hook_input(
        "UserPromptSubmit", cwd=str(repo), session_id="a", prompt=prompt)))
    daemon.wait_idle()
    again = context_of("UserPromptSubmit", *post_hook(daemon, "UserPromptSubmit", hook_input(
        "UserPromptSubmit", cwd=str(repo), session_id="b", prompt=prompt)))
    hits = daemon.client.request("POST", "/v1/search", {"query": "migrations deploy job",
                                                        "project": str(repo)})["hits"]
    decision = next(h for h in hits if h["kind"] == "decision")
    assert decision["text"] == "migrations run in a separate deploy job, never at app start"
    assert _memory(daemon, decision["id"])["source"] == "marker:UserPromptSubmit"
    assert f"[{decision['id']}]" not in first + again


def test_a_question_mentioning_a_marker_stores_nothing(daemon: DaemonProcess,
                                                       short_tmp: Path) -> None:
    repo = git_repo(short_tmp / "repo")
    for prompt in ("should we add a #decision tag?", "#decision: should we use uv?",
                   "we talked about #note markers earlier"):
        post_hook(daemon, "UserPromptSubmit", hook_input("UserPromptSubmit", cwd=str(repo),
                                                         prompt=prompt))
    assert daemon.client.request("GET", f"/v1/export?project={repo}")["memories"] == []


def test_a_prompt_over_64k_is_clipped_not_refused(daemon: DaemonProcess, short_tmp: Path) -> None:
    repo = git_repo(short_tmp / "repo")
    prompt = "#note " + "the build cache lives in /var/cache/build. " * 2000
    status, _ = post_hook(daemon, "UserPromptSubmit", hook_input(
        "UserPromptSubmit", cwd=str(repo), prompt=prompt))
    assert status == 200 and len(prompt) > 65536
    rows = daemon.client.request("GET", f"/v1/export?project={repo}")["memories"]
    assert len(rows) == 1 and len(rows[0]["text"]) <= 65536


def test_an_id_beyond_64_bits_is_no_memory_not_no_route(daemon: DaemonProcess) -> None:
    from memlane.cli.client import DaemonError

    for memory in (2**63 - 1, 2**63, 10**30):
        for path in (f"/v1/memories/{memory}", f"/v1/memories/{memory}/history"):
            try:
                daemon.client.request("GET", path)
            except DaemonError as exc:
                assert (exc.status, exc.message) == (404, f"no memory with id {memory}"), path
            else:
                raise AssertionError(f"{path} answered")

