"""Claude Code hooks answered by the warm daemon: ``POST /hooks/<EventName>``.

Input is the hook's JSON as Claude Code sends it; the answer is Claude Code's hook output
(``hookSpecificOutput.additionalContext``) or an empty object when there is nothing to add.
A hook never blocks a session: failures inside answer with nothing, and nothing here waits on
background work.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from collections.abc import Awaitable
from typing import Annotated, Any

import anyio
import msgspec
import structlog

from memlane.daemon.briefing import compose_briefing
from memlane.daemon.core import Core
from memlane.daemon.errors import NotFound
from memlane.daemon.kinds import detect_kind
from memlane.daemon.project import detect_project
from memlane.daemon.protocol import MAX_TEXT, SearchBody, StoreBody, decode_body
from memlane.daemon.retrieval import Ranking
from memlane.daemon.sessions import Sessions
from memlane.daemon.transcript import session_save
from memlane.projections import queries

log = structlog.get_logger()
BRIEFING_BUDGET = 2500
PROMPT_HITS = 3
PROMPT_CANDIDATES = 8
PROMPT_QUERY_CHARS = 2000
HIT_CHARS = 300
TRANSCRIPT_TAIL = 2 * 1024 * 1024
CAPTURED_KINDS = ("decision", "user-note", "insight")
Short = Annotated[str, msgspec.Meta(max_length=4096)]


class HookInput(msgspec.Struct, kw_only=True):
    """The fields memlane reads; Claude Code's other fields are accepted and ignored."""

    session_id: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    hook_event_name: Short
    cwd: Short = ""
    transcript_path: Short | None = None
    prompt: Annotated[str, msgspec.Meta(max_length=MAX_TEXT)] | None = None
    source: Short | None = None


def context_output(event: str, text: str) -> dict[str, Any]:
    if not text:
        return {}
    return {"hookSpecificOutput": {"hookEventName": event, "additionalContext": text}}


class Hooks:
    def __init__(self, core: Core, sessions: Sessions | None = None) -> None:
        self.core = core
        self.sessions = sessions or Sessions()

    async def handle(self, event: str, body: bytes) -> dict[str, Any]:
        handler = {"SessionStart": self.session_start, "UserPromptSubmit": self.prompt,
                   "PreCompact": self.save, "SessionEnd": self.save,
                   "Stop": self.nothing, "PostToolUse": self.nothing}.get(event)
        if handler is None:
            raise NotFound(f"memlane does not handle the {event} hook")
        hook = decode_body(body, HookInput)
        try:
            return await handler(event, hook)
        except Exception:  # a memory system must never break a coding session
            log.exception("hook_failed", hook=event)
            return {}

    async def nothing(self, event: str, hook: HookInput) -> dict[str, Any]:
        return {}

    async def session_start(self, event: str, hook: HookInput) -> dict[str, Any]:
        project = await _project_of(hook.cwd)
        candidates = await self.core.read(lambda conn: queries.briefing_rows(conn, project))
        chosen, text = compose_briefing(candidates, budget=BRIEFING_BUDGET)
        self.sessions.shown(hook.session_id).update(m["id"] for m in chosen)
        header = "memlane: what earlier sessions in this project learned.\n\n"
        return context_output(event, header + text if text else "")

    async def prompt(self, event: str, hook: HookInput) -> dict[str, Any]:
        prompt = (hook.prompt or "").strip()
        if not prompt:
            return {}
        project = await _project_of(hook.cwd)
        await self._capture(prompt, project, hook.session_id)
        body = SearchBody(query=prompt[:PROMPT_QUERY_CHARS], project=project,
                          k=PROMPT_CANDIDATES)
        ranking = await self.core.ranked_search(body, fresh=False)
        recall, context = await self.core.floor("recall"), await self.core.floor("context")
        shown = self.sessions.shown(hook.session_id)
        fresh = [h for h in ranking.hits if h["id"] not in shown
                 and relevant(ranking, h["id"], recall=recall, context=context)][:PROMPT_HITS]
        if not fresh:
            return {}
        shown.update(h["id"] for h in fresh)
        record = self.core.record_recalls(prompt, fresh, ranking.similarity)
        if self.core.background is not None:  # the prompt need not wait for the log
            self.core.background.start_soon(_quietly, record)
        else:
            await record
        lines = [f"- [{h['id']}] {_clip(h['text'])}" for h in fresh]
        return context_output(event, "memlane: memories related to this prompt.\n"
                              + "\n".join(lines))

    async def _capture(self, prompt: str, project: str, session_id: str) -> None:
        """Store a prompt the user marked (``#decision``, ``#note``, ``#insight``)."""
        kind = detect_kind(prompt, [], None)
        if kind in CAPTURED_KINDS:
            await self.core.store(StoreBody(text=prompt, project=project, kind=kind,
                                            source="hook:UserPromptSubmit"))

    async def save(self, event: str, hook: HookInput) -> dict[str, Any]:
        if event == "SessionEnd":
            self.sessions.end(hook.session_id)
        if not hook.transcript_path:
            return {}
        lines = await anyio.to_thread.run_sync(read_transcript_tail, Path(hook.transcript_path))
        text = session_save(lines)
        if text:
            project = await _project_of(hook.cwd)
            await self.core.store(StoreBody(
                text=text, project=project, kind="session-save", source=f"hook:{event}",
                idempotency_key=f"{hook.session_id}:{event}:{len(lines)}"))
        if self.core.lifecycle is not None:
            self.core.lifecycle.kick()
        return {}


async def _quietly(work: Awaitable[None]) -> None:
    try:
        await work
    except Exception:  # a lost recall signal is not worth a crash
        log.exception("recall_not_recorded")


def relevant(ranking: Ranking, memory: int, *, recall: float, context: float) -> bool:
    """Close in meaning (above the recall floor), or somewhat close and sharing words."""
    similarity = ranking.similarity.get(memory, 0.0)
    return similarity >= recall or (similarity >= context and memory in ranking.lexical)


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= HIT_CHARS else text[: HIT_CHARS - 1] + "…"


async def _project_of(cwd: str) -> str:
    if not cwd:
        return "global"
    return await anyio.to_thread.run_sync(detect_project, Path(cwd))


def read_transcript_tail(path: Path) -> list[str]:
    """The last lines of a transcript the daemon's user owns (no symlinks, bounded)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return []
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid():
            return []
        start = max(0, info.st_size - TRANSCRIPT_TAIL)
        handle.seek(start)
        data = handle.read(TRANSCRIPT_TAIL)
    lines = data.decode("utf-8", errors="replace").splitlines()
    return lines[1:] if start else lines
