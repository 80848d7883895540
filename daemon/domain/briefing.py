"""A session-start briefing (pure): the memories most worth showing, within a character budget.

Sections in order: what matches the session's context, proven knowledge, decisions and the
user's notes, then recent memories. A memory appears once; the budget counts rendered lines.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

SECTIONS = (("relevant", "Relevant to this session"), ("proven", "Proven knowledge"),
            ("protected", "Decisions and notes"), ("recent", "Recent"))
DEFAULT_BUDGET = 2000
LINE_CHARS = 400


def render_line(memory: Mapping[str, Any]) -> str:
    text = " ".join(str(memory["text"]).split()).lstrip("-*• ")
    if len(text) > LINE_CHARS:
        text = text[: LINE_CHARS - 1] + "…"
    return f"- [{memory['id']}] {text}"


def compose_briefing(candidates: Mapping[str, Sequence[Mapping[str, Any]]], *,
                     budget: int = DEFAULT_BUDGET) -> tuple[list[Mapping[str, Any]], str]:
    """The chosen memories and the Markdown text, never longer than ``budget`` characters."""
    chosen: list[Mapping[str, Any]] = []
    seen: set[int] = set()
    parts: list[str] = []
    used = 0
    for key, title in SECTIONS:
        lines: list[str] = []
        for memory in candidates.get(key, ()):
            if memory["id"] in seen:
                continue
            line = render_line(memory)
            header = 0 if lines else len(f"## {title}\n") + (1 if parts else 0)
            if used + header + len(line) + 1 > budget:
                break
            lines.append(line)
            seen.add(memory["id"])
            chosen.append(memory)
            used += header + len(line) + 1
        if lines:
            parts.append(f"## {title}\n" + "\n".join(lines) + "\n")
    return chosen, "\n".join(parts)
