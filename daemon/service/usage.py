"""Exposure and use: what a session was shown (``Shown``), and which of it the session used
(``Used``), read from the transcript after the prompt that drew each memory.

Only use promotes a memory and keeps it from ageing (see ``domain/recall.decide_uses`` and
the fold); a memory shown and ignored stays where it was.
"""

from __future__ import annotations

from collections.abc import Sequence

from memlane.daemon.domain.recall import decide_uses
from memlane.daemon.domain.usage import UseEvidence, after_prompt, detect_use
from memlane.daemon.runtime.reader import Reader
from memlane.daemon.runtime.writer import Writer
from memlane.events.model import Event, Shown
from memlane.projections import queries


class Usage:
    def __init__(self, *, writer: Writer, reader: Reader) -> None:
        self._writer = writer
        self._reader = reader

    async def shown(self, session: str, ids: Sequence[int], *, hook: str,
                    prompt_hash: str = "") -> None:
        if ids:
            await self._writer.append([Shown(memories=tuple(ids), session=session, hook=hook,
                                             prompt_hash=prompt_hash)])

    async def detect(self, session: str, turns: Sequence[tuple[str, str]]) -> list[Event]:
        """Record the uses the transcript's ``turns`` show of what ``session`` was shown."""
        rows = await self._reader.read(lambda conn: queries.shown_unused(conn, session))
        found: list[UseEvidence] = []
        for memory, text, _state, hashed in rows:
            after = after_prompt(turns, hashed)
            if after is None:
                continue
            use = detect_use(memory, text, prompt=after.prompt, replies=after.replies,
                             later_prompts=after.later_prompts)
            if use is not None:
                found.append(use)
        if not found:
            return []
        ids = [u.memory for u in found]
        counts = await self._reader.read(lambda conn: queries.recall_counts(conn, ids))
        states = {m: s for m, _t, s, _h in rows}
        events = decide_uses(found, session=session, uses=counts, states=states)
        await self._writer.append(events)
        return events
