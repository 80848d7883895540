"""A session save from a Claude Code transcript (pure): what the user asked, what was done.

The transcript is JSON lines (``type`` user/assistant, ``message.content`` a string or a list
of blocks). Only text blocks count; tool calls, tool results, meta lines and Claude Code's own
synthetic error answers (``isApiErrorMessage``: "Not logged in", rate limits) are skipped.
The whole transcript is read as a stream with bounded state: the first and the last asks,
how many there were, the last answer, and the recent turns (for usage detection).
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from memlane.daemon.domain.redaction import redact

SAVE_BUDGET = 1500
LINE_CHARS = 200
FIRST_ASKS = 3
LAST_ASKS = 5
RECENT_TURNS = 400
TURN_CHARS = 4000


def _text_of(message: Any) -> str:
    content = message.get("content") if isinstance(message, dict) else None
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(b.get("text", "") for b in content
                        if isinstance(b, dict) and b.get("type") == "text")
    return ""


def _entries(lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("type") in ("user", "assistant") \
                and not entry.get("isMeta") and not entry.get("isApiErrorMessage"):
            yield entry


def iter_turns(lines: Iterable[str]) -> Iterator[tuple[str, str, int]]:
    """(role, text, redactions) of each user or assistant text turn, in order."""
    for entry in _entries(lines):
        # Redact the whole turn before anything clips it: a cut secret no longer has the shape
        # (or the length) a rule recognises, and its prefix would be stored.
        clean = redact(_text_of(entry.get("message")))
        text = " ".join(clean.text.split())
        if text and not text.startswith("<"):  # command wrappers and system reminders
            yield entry["type"], text, clean.count


def turns(lines: Iterable[str]) -> list[tuple[str, str]]:
    """(role, text) of each user or assistant text turn, in order; bad lines are skipped."""
    return [(role, text) for role, text, _ in iter_turns(lines)]


@dataclass
class SessionDigest:
    """What a streamed transcript leaves behind: bounded whatever its length."""

    first_asks: list[str] = field(default_factory=list)
    last_asks: deque[str] = field(default_factory=lambda: deque(maxlen=LAST_ASKS))
    asks: int = 0
    answers: int = 0
    last_answer: str = ""
    redactions: int = 0
    recent: deque[tuple[str, str]] = field(default_factory=lambda: deque(maxlen=RECENT_TURNS))

    def add(self, role: str, text: str, redactions: int) -> None:
        self.redactions += redactions
        self.recent.append((role, text[:TURN_CHARS]))
        if role == "assistant":
            self.answers += 1
            self.last_answer = text[: 2 * LINE_CHARS + 1]
            return
        self.asks += 1
        clipped = _clip(text, LINE_CHARS)
        if len(self.first_asks) < FIRST_ASKS:
            self.first_asks.append(clipped)
        else:
            self.last_asks.append(clipped)


def digest(lines: Iterable[str]) -> SessionDigest:
    found = SessionDigest()
    for role, text, count in iter_turns(lines):
        found.add(role, text, count)
    return found


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def save_text(found: SessionDigest, *, budget: int = SAVE_BUDGET) -> str | None:
    """The save's text, or None when the session has no real answer (nothing happened, or its
    only answers were Claude Code's synthetic errors)."""
    if not found.answers:
        return None
    parts = ["Session summary."]
    if found.asks:
        skipped = found.asks - len(found.first_asks) - len(found.last_asks)
        middle = [f"({skipped} more)"] if skipped > 0 else []
        parts.append("Asked: " + " | ".join([*found.first_asks, *middle, *found.last_asks]))
    parts.append("Last answer: " + _clip(found.last_answer, 2 * LINE_CHARS))
    return _clip("\n".join(parts), budget)


def session_save(lines: Iterable[str], *, budget: int = SAVE_BUDGET) -> str | None:
    """The save's text for a whole transcript, or None (see :func:`save_text`)."""
    return save_text(digest(lines), budget=budget)
