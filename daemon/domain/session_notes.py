"""A session save from a Claude Code transcript (pure): what the user asked, what was done.

The transcript is JSON lines (``type`` user/assistant, ``message.content`` a string or a list
of blocks). Only text blocks count; tool calls, tool results and meta lines are skipped. The
save lists the user's requests and the assistant's last answer, within a character budget.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from memlane.daemon.domain.redaction import redact

SAVE_BUDGET = 1500
LINE_CHARS = 200


def _text_of(message: Any) -> str:
    content = message.get("content") if isinstance(message, dict) else None
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(b.get("text", "") for b in content
                        if isinstance(b, dict) and b.get("type") == "text")
    return ""


def turns(lines: Iterable[str]) -> list[tuple[str, str]]:
    """(role, text) of each user or assistant text turn, in order; bad lines are skipped."""
    found = []
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if not isinstance(entry, dict) or entry.get("type") not in ("user", "assistant"):
            continue
        if entry.get("isMeta"):
            continue
        # Redact the whole turn before anything clips it: a cut secret no longer has the shape
        # (or the length) a rule recognises, and its prefix would be stored.
        text = " ".join(redact(_text_of(entry.get("message"))).text.split())
        if text and not text.startswith("<"):  # command wrappers and system reminders
            found.append((entry["type"], text))
    return found


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def session_save(lines: Iterable[str], *, budget: int = SAVE_BUDGET) -> str | None:
    """The save's text, or None when the session said nothing."""
    found = turns(lines)
    asked = [text for role, text in found if role == "user"]
    answers = [text for role, text in found if role == "assistant"]
    if not asked and not answers:
        return None
    parts = ["Session summary."]
    if asked:
        parts.append("Asked: " + " | ".join(_clip(a, LINE_CHARS) for a in asked[-8:]))
    if answers:
        parts.append("Last answer: " + _clip(answers[-1], 2 * LINE_CHARS))
    return _clip("\n".join(parts), budget)
