"""Claude Code hooks answered by the warm daemon: ``POST /hooks/<EventName>``.

Input is the hook's JSON as Claude Code sends it; the answer is Claude Code's hook output
(``hookSpecificOutput.additionalContext``) or an empty object when there is nothing to add.
A hook never blocks a session: a failure inside answers with nothing (fail open), and is
counted (``hook_failures`` in status) and logged; nothing here waits on background work.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import structlog
from anyio.abc import TaskGroup

from memlane.daemon.domain.briefing import compose_briefing
from memlane.daemon.domain.errors import NotFound
from memlane.daemon.domain.kinds import detect_kind
from memlane.daemon.domain.session_notes import session_save
from memlane.daemon.runtime.reader import Reader
from memlane.daemon.service.memories import Memories
from memlane.daemon.service.requests import HookInput, SearchBody, StoreBody
from memlane.daemon.service.search import Search
from memlane.daemon.service.sessions import Sessions
from memlane.projections import queries

log = structlog.get_logger()
BRIEFING_BUDGET = 2500
PROMPT_HITS = 3
PROMPT_CANDIDATES = 8
PROMPT_QUERY_CHARS = 2000
HIT_CHARS = 300
CAPTURED_KINDS = ("decision", "user-note", "insight")
Handler = Callable[[str, HookInput], Awaitable[dict[str, Any]]]


def context_output(event: str, text: str) -> dict[str, Any]:
    if not text:
        return {}
    return {"hookSpecificOutput": {"hookEventName": event, "additionalContext": text}}


class Hooks:
    def __init__(self, *, memories: Memories, search: Search, reader: Reader,
                 kick: Callable[[], None], read_transcript: Callable[[Path], list[str]],
                 project_of: Callable[[Path], str], sessions: Sessions | None = None) -> None:
        self._memories = memories
        self._search = search
        self._reader = reader
        self._kick = kick
        self._read_transcript = read_transcript
        self._project_of = project_of
        self.sessions = sessions or Sessions()
        self.background: TaskGroup | None = None  # for work a hook need not wait for
        self.failures = 0

    def handler(self, event: str) -> Handler:
        """The handler of a hook event (404 for one memlane does not handle)."""
        handler: Handler | None = {
            "SessionStart": self.session_start, "UserPromptSubmit": self.prompt,
            "PreCompact": self.save, "SessionEnd": self.save,
            "Stop": self.nothing, "PostToolUse": self.nothing}.get(event)
        if handler is None:
            raise NotFound(f"memlane does not handle the {event} hook")
        return handler

    async def handle(self, event: str, hook: HookInput) -> dict[str, Any]:
        handler = self.handler(event)
        try:
            return await handler(event, hook)
        except Exception:  # a memory system must never break a coding session: fail open
            self.failures += 1
            log.exception("hook_failed", hook=event)
            return {}

    async def nothing(self, event: str, hook: HookInput) -> dict[str, Any]:
        return {}

    async def session_start(self, event: str, hook: HookInput) -> dict[str, Any]:
        project = await self._project(hook.cwd)
        candidates = await self._reader.read(lambda conn: queries.briefing_rows(conn, project))
        chosen, text = compose_briefing(candidates, budget=BRIEFING_BUDGET)
        self.sessions.shown(hook.session_id).update(m["id"] for m in chosen)
        header = "memlane: what earlier sessions in this project learned.\n\n"
        return context_output(event, header + text if text else "")

    async def prompt(self, event: str, hook: HookInput) -> dict[str, Any]:
        prompt = (hook.prompt or "").strip()
        if not prompt:
            return {}
        project = await self._project(hook.cwd)
        await self._capture(prompt, project)
        body = SearchBody(query=prompt[:PROMPT_QUERY_CHARS], project=project,
                          k=PROMPT_CANDIDATES)
        floor = await self._search.relevance_floor()
        if floor is None:  # without a model nothing says a hit is relevant: add nothing
            return {}
        ranking = (await self._search.ranked(body, fresh=False)).floored(floor)
        shown = self.sessions.shown(hook.session_id)
        fresh = [h for h in ranking.hits if h["id"] not in shown][:PROMPT_HITS]
        if not fresh:
            return {}
        shown.update(h["id"] for h in fresh)
        record = self._search.record_recalls(prompt, fresh, ranking.similarity)
        if self.background is not None:  # the prompt need not wait for the log
            self.background.start_soon(self._quietly, record)
        else:
            await record
        lines = [f"- [{h['id']}] {_clip(h['text'])}" for h in fresh]
        return context_output(event, "memlane: memories related to this prompt.\n"
                              + "\n".join(lines))

    async def _capture(self, prompt: str, project: str) -> None:
        """Store a prompt the user marked (``#decision``, ``#note``, ``#insight``)."""
        kind = detect_kind(prompt, [], None)
        if kind in CAPTURED_KINDS:
            await self._memories.store(StoreBody(text=prompt, project=project, kind=kind,
                                                 source="hook:UserPromptSubmit"))

    async def save(self, event: str, hook: HookInput) -> dict[str, Any]:
        if event == "SessionEnd":
            self.sessions.end(hook.session_id)
        if not hook.transcript_path:
            return {}
        lines = await anyio.to_thread.run_sync(self._read_transcript, Path(hook.transcript_path))
        text = session_save(lines)
        if text:
            project = await self._project(hook.cwd)
            await self._memories.store(StoreBody(
                text=text, project=project, kind="session-save", source=f"hook:{event}",
                idempotency_key=f"{hook.session_id}:{event}:{len(lines)}"))
        self._kick()
        return {}

    async def _project(self, cwd: str) -> str:
        if not cwd:
            return "global"
        return await anyio.to_thread.run_sync(self._project_of, Path(cwd))

    async def _quietly(self, work: Awaitable[None]) -> None:
        try:
            await work
        except Exception:  # a lost recall signal must not end the daemon; it is counted
            self.failures += 1
            log.exception("recall_not_recorded")


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= HIT_CHARS else text[: HIT_CHARS - 1] + "…"
