"""A session-start briefing (pure): the memories most worth showing, within a token budget.

Sections in order: what matches the session's context, decisions and the user's notes, proven
knowledge, then recent memories. A memory appears once, and never beside one it repeats or
contradicts: of two related memories (linked, i.e. cosine at or above the link threshold, or
members of one cluster) only one is shown: the one of the higher rank (decisions and notes,
then consolidated knowledge, then insights and notes, then session saves; proven adds one),
and of equal ranks the newer — on the same subject the newer supersedes the older. Quarantined memories (instruction-like text the user did not type) are never shown.
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


_RANK = {"decision": 4, "user-note": 4, "proven": 3, "insight": 2, "note": 2}


def rank_of(memory: Mapping[str, Any]) -> int:
    """Decisions and notes, then consolidated knowledge, then notes; proof of use adds one."""
    return _RANK.get(str(memory.get("kind")), 0) + (memory.get("state") == "proven")


def superseded(memories: Mapping[int, Mapping[str, Any]],
               related: Collection[tuple[int, int]]) -> set[int]:
    """Of every related pair among ``memories``, the lower-ranked one, or of equal ranks the
    older (ids grow with time)."""
    dropped = set()
    for a, b in related:
        if a == b or a not in memories or b not in memories:
            continue
        key = {m: (rank_of(memories[m]), m) for m in (a, b)}
        dropped.add(min((a, b), key=key.__getitem__))
    return dropped


def compose_briefing(candidates: Mapping[str, Sequence[Mapping[str, Any]]], *,
                     budget: int = DEFAULT_BUDGET,
                     related: Collection[tuple[int, int]] = ()) -> tuple[list[Mapping[str, Any]], str]:
    """The chosen memories and the Markdown text, never over ``budget`` estimated tokens."""
    everyone = {m["id"]: m for ms in candidates.values() for m in ms}
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
