"""A session-start briefing (pure): the memories most worth showing, within a token budget.

Sections in order: what matches the session's context, decisions and the user's notes, proven
knowledge, then recent memories. A memory appears once, and never beside one it repeats or
contradicts: of two related memories (linked, i.e. cosine at or above the link threshold, or
members of one cluster) only the newer is shown — on the same subject the newer supersedes the
older. Quarantined memories (instruction-like text the user did not type) are never shown.
The budget counts estimated tokens (about four characters each) of the rendered text; each
line starts with its memory id.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from memlane.daemon.domain.provenance import is_quarantined

SECTIONS = (("relevant", "Relevant to this session"), ("protected", "Decisions and notes"),
            ("proven", "Proven knowledge"), ("recent", "Recent"))
DEFAULT_BUDGET = 1500  # estimated tokens
CHARS_PER_TOKEN = 4
LINE_CHARS = 400


def estimate_tokens(text: str) -> int:
    return -(-len(text) // CHARS_PER_TOKEN)


def render_line(memory: Mapping[str, Any]) -> str:
    text = " ".join(str(memory["text"]).split()).lstrip("-*• ")
    if len(text) > LINE_CHARS:
        text = text[: LINE_CHARS - 1] + "…"
    return f"- [{memory['id']}] {text}"


def superseded(ids: Collection[int], related: Collection[tuple[int, int]]) -> set[int]:
    """The older of every related pair among ``ids`` (ids grow with time)."""
    return {min(a, b) for a, b in related if a != b and a in ids and b in ids}


def compose_briefing(candidates: Mapping[str, Sequence[Mapping[str, Any]]], *,
                     budget: int = DEFAULT_BUDGET,
                     related: Collection[tuple[int, int]] = ()) -> tuple[list[Mapping[str, Any]], str]:
    """The chosen memories and the Markdown text, never over ``budget`` estimated tokens."""
    everyone = {m["id"] for ms in candidates.values() for m in ms}
    seen = superseded(everyone, related)
    chosen: list[Mapping[str, Any]] = []
    parts: list[str] = []
    used = 0
    limit = budget * CHARS_PER_TOKEN
    for key, title in SECTIONS:
        lines: list[str] = []
        for memory in candidates.get(key, ()):
            if memory["id"] in seen or is_quarantined(str(memory["text"]),
                                                      str(memory.get("source", ""))):
                continue
            line = render_line(memory)
            header = 0 if lines else len(f"## {title}\n") + (1 if parts else 0)
            if used + header + len(line) + 1 > limit:
                break
            lines.append(line)
            seen.add(memory["id"])
            chosen.append(memory)
            used += header + len(line) + 1
        if lines:
            parts.append(f"## {title}\n" + "\n".join(lines) + "\n")
    return chosen, "\n".join(parts)
