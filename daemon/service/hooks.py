"""Claude Code hooks answered by the warm daemon: ``POST /hooks/<EventName>``.

Input is the hook's JSON as Claude Code sends it; the answer is Claude Code's hook output
(``hookSpecificOutput.additionalContext``) or an empty object when there is nothing to add.
A hook never blocks a session: a failure inside answers with nothing (fail open), and is
counted (``hook_failures`` in status) and logged; nothing here waits on background work.

Exposure is recorded apart from use: a prompt's related memories and a briefing append
``Shown``; ``Stop``, ``PreCompact`` and ``SessionEnd`` read the transcript for evidence of use
(``service/usage.py``). Only use promotes. Injected text is fenced as recalled notes, and
instruction-like memories the user did not type are never injected (``domain/provenance``).
A session marked ``#off-the-record`` (or ``memlane pause``) records nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

import anyio
import structlog

from memlane.daemon.domain.briefing import compose_briefing
from memlane.daemon.domain.errors import NotFound
from memlane.daemon.domain.kinds import prompt_marks
from memlane.daemon.domain.provenance import fence, is_quarantined
from memlane.daemon.domain.redaction import redact
from memlane.daemon.domain.session_notes import digest, save_text
from memlane.daemon.domain.usage import prompt_hash
from memlane.daemon.runtime.reader import Reader
from memlane.daemon.service.briefings import briefing_inputs
from memlane.daemon.service.candidates import Ranking
from memlane.daemon.service.memories import Memories
from memlane.daemon.service.requests import HookInput, SearchBody, StoreBody
from memlane.daemon.service.search import Search
from memlane.daemon.service.sessions import Sessions
from memlane.daemon.service.spooled import Spool, SpoolReplay
from memlane.daemon.service.usage import Usage

log = structlog.get_logger()
PROMPT_HITS = 3
PROMPT_CANDIDATES = 8
PROMPT_QUERY_CHARS = 2000
HIT_CHARS = 300
MAX_PROMPT = 64 * 1024  # a longer prompt is clipped, never refused
Handler = Callable[[str, HookInput], Awaitable[dict[str, Any]]]


def context_output(event: str, text: str) -> dict[str, Any]:
    if not text:
        return {}
    return {"hookSpecificOutput": {"hookEventName": event, "additionalContext": text}}


class Hooks:
    def __init__(self, *, memories: Memories, search: Search, reader: Reader,
                 usage: Usage, kick: Callable[[], None],
                 read_transcript: Callable[[Path], Iterable[str]],
                 project_of: Callable[[Path], str], sessions: Sessions | None = None,
                 ignored_projects: tuple[str, ...] = (),
                 spool: Spool | None = None) -> None:
        self._memories = memories
        self._search = search
        self._reader = reader
        self._usage = usage
        self.ignored_projects = ignored_projects
        self._spool = None if spool is None else SpoolReplay(spool, self._store_spooled)
        self._kick = kick
        self._read_transcript = read_transcript
        self._project_of = project_of
        self.sessions = sessions or Sessions()
        self.failures = 0

    def handler(self, event: str) -> Handler:
        """The handler of a hook event (404 for one memlane does not handle)."""
        handler: Handler | None = {
            "SessionStart": self.session_start, "UserPromptSubmit": self.prompt,
            "PreCompact": self.save, "SessionEnd": self.save,
            "Stop": self.save, "PostToolUse": self.nothing}.get(event)
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
        await self.replay_spool()
        project = await self._project(hook.cwd)
        candidates, related = await self._reader.read(
            lambda conn: briefing_inputs(conn, project))
        chosen, text = compose_briefing(candidates, related=related)
        ids = [m["id"] for m in chosen]
        self.sessions.shown(hook.session_id).update(ids)
        if not (self.sessions.off_the_record(hook.session_id) or self._ignored(project)):
            await self._usage.shown(hook.session_id, ids, hook=event)
        header = "memlane: what earlier sessions in this project learned."
        return context_output(event, fence(header, [text]) if text else "")

    async def prompt(self, event: str, hook: HookInput) -> dict[str, Any]:
        marks = prompt_marks((hook.prompt or "")[:MAX_PROMPT])
        prompt = marks.text
        if marks.off_the_record:
            self.sessions.go_off_the_record(hook.session_id)
        if not prompt:
            return {}
        await self.replay_spool()
        project = await self._project(hook.cwd)
        shown = self.sessions.shown(hook.session_id)
        off = self.sessions.off_the_record(hook.session_id) or self._ignored(project)
        if marks.kind is not None and not off:
            # The prompt that creates a memory never gets it back as a related memory.
            shown.add(await self._capture(prompt, project, marks.kind))
        body = SearchBody(query=prompt[:PROMPT_QUERY_CHARS], project=project,
                          k=PROMPT_CANDIDATES)
        floor = await self._search.relevance_floor()
        if floor is None:  # without a model nothing says a hit is relevant: add nothing
            return {}
        ranking = (await self._search.ranked(body, fresh=False)).floored(floor)
        fresh = fresh_hits(ranking, shown)
        if not fresh:
            return {}
        shown.update(h["id"] for h in fresh)
        if not off:  # exposure, not use: what the session does with them decides
            await self._usage.shown(hook.session_id, [h["id"] for h in fresh], hook=event,
                                    prompt_hash=prompt_hash(redact(prompt).text))
        lines = [f"- [{h['id']}] {_clip(h['text'])}" for h in fresh]
        return context_output(event, fence("memlane: memories related to this prompt.", lines))

    async def replay_spool(self) -> int:
        """Store the marked prompts spooled while the daemon was down (0 without a spool)."""
        if self._spool is None:
            return 0
        try:
            return await self._spool.replay()
        except Exception:  # the spool stays set aside for the next replay; counted
            self.failures += 1
            log.exception("spool_not_replayed")
            return 0

    async def _store_spooled(self, text: str, cwd: str, kind: str, key: str) -> None:
        project = await self._project(cwd)
        await self._memories.store(StoreBody(text=text, project=project, kind=kind,
                                             source="marker:spool", idempotency_key=key))

    async def _capture(self, text: str, project: str, kind: str) -> int:
        """Store a prompt the user marked (``#decision``, ``#note``, ``#insight``); its id."""
        answer = await self._memories.store(StoreBody(text=text, project=project, kind=kind,
                                                      source="marker:UserPromptSubmit"))
        return int(answer["id"])

    async def save(self, event: str, hook: HookInput) -> dict[str, Any]:
        off = self.sessions.off_the_record(hook.session_id)
        if event == "SessionEnd":
            self.sessions.end(hook.session_id)
        if not hook.transcript_path or off:
            return {}
        path = Path(hook.transcript_path)
        found = await anyio.to_thread.run_sync(lambda: digest(self._read_transcript(path)))
        await self._usage.detect(hook.session_id, list(found.recent))
        text = save_text(found) if event != "Stop" else None
        project = await self._project(hook.cwd)
        if text and not self._ignored(project):
            await self._memories.store(StoreBody(
                text=text, project=project, kind="session-save", source=f"transcript:{event}",
                idempotency_key=f"session-save:{hook.session_id}:{prompt_hash(text)}",
                redacted_before=found.redactions))
        self._kick()
        return {}

    def _ignored(self, project: str) -> bool:
        """A project configured as ignored (``ignore_projects``), or inside an ignored folder."""
        return any(project == p or project.startswith(p.rstrip("/") + "/")
                   for p in self.ignored_projects)

    async def _project(self, cwd: str) -> str:
        if not cwd:
            return "global"
        return await anyio.to_thread.run_sync(self._project_of, Path(cwd))


def fresh_hits(ranking: Ranking, shown: set[int]) -> list[dict[str, Any]]:
    """The best ``PROMPT_HITS`` hits the session was not shown, none quarantined and at most
    one session save (saves of similar sessions echo each other and the prompt); the
    quarantine's patterns are matched only as far down the ranking as that takes."""
    fresh: list[dict[str, Any]] = []
    for hit in ranking.hits:
        save = hit["kind"] == "session-save"
        if hit["id"] in shown or (save and any(h["kind"] == "session-save" for h in fresh)):
            continue
        if not is_quarantined(hit["text"], ranking.sources.get(hit["id"], "")):
            fresh.append(hit)
            if len(fresh) == PROMPT_HITS:
                break
    return fresh


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= HIT_CHARS else text[: HIT_CHARS - 1] + "…"
