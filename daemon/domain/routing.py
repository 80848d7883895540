"""Where proven knowledge goes, and how it is written (pure).

Candidate targets of a project: its ``CLAUDE.md``, each ``.claude/rules/*.md`` and the docs
files the user configured. A proven memory goes to the target holding the paragraph nearest
to it by embedding (``CLAUDE.md`` when no target has content yet). It is skipped when the
target already says it, held back as a proposal when it may contradict what the target says,
and otherwise appended under a marked section with a provenance comment.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from memlane.daemon.domain.storing import normalise

SECTION = "## Proven knowledge (memlane)"
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n|\n(?=#)")
_NEGATION = re.compile(r"\b(not|never|no|don't|do not|avoid|stop|without|instead of|"
                       r"shouldn't|must not|disable[ds]?)\b", re.IGNORECASE)
_MARKER = re.compile(r"<!-- memlane:(\d+) -->")


@dataclass(frozen=True)
class TargetScore:
    target: str  # path relative to the project root
    similarity: float  # the nearest paragraph's cosine to the memory (-1 when empty)
    nearest: str  # that paragraph


@dataclass(frozen=True)
class RouteDecision:
    target: str
    action: Literal["proposed", "written", "skipped"]
    verdict: str


def paragraphs(text: str) -> list[str]:
    """The non-empty paragraphs (and headed blocks) of a Markdown file."""
    return [p.strip() for p in _PARAGRAPH_BREAK.split(text) if p.strip()]


def choose_target(scores: Sequence[TargetScore], default: str) -> TargetScore:
    """The target with the nearest paragraph; ``default`` when none has content."""
    best = max(scores, key=lambda s: (s.similarity, s.target == default), default=None)
    if best is None or best.similarity < 0:
        return TargetScore(default, -1.0, "")
    return best


def already_present(file_text: str, memory_id: int, memory_text: str) -> bool:
    """Whether the file holds this memory already (its marker, or the same text)."""
    if memory_id in {int(m) for m in _MARKER.findall(file_text)}:
        return True
    return normalise(memory_text) in normalise(file_text)


def offline_conflict(memory_text: str, nearest: str, similarity: float, *,
                     threshold: float) -> bool:
    """A likely contradiction without an LLM: about the same thing, opposite polarity."""
    if similarity < threshold:
        return False
    return bool(_NEGATION.search(memory_text)) != bool(_NEGATION.search(nearest))


def decide_route(memory_id: int, memory_text: str, best: TargetScore, file_text: str, *,
                 duplicate: float, conflict: bool, may_write: bool,
                 review: bool = False, teammate: bool = False) -> RouteDecision:
    """Skip what is there, propose what may conflict or may not be written or came from a
    teammate's device, else write (in ``review`` mode: propose, for the user to accept)."""
    if already_present(file_text, memory_id, memory_text) or best.similarity >= duplicate:
        return RouteDecision(best.target, "skipped", "already present")
    if conflict:
        return RouteDecision(best.target, "proposed", "may conflict with: " + best.nearest[:200])
    if teammate:
        return RouteDecision(best.target, "proposed", "from a teammate: waiting for your approval")
    if not may_write:
        return RouteDecision(best.target, "proposed", "writing is not enabled for this project")
    if review:
        return RouteDecision(best.target, "proposed", "waiting for review")
    return RouteDecision(best.target, "written", "no conflict")


def render_entry(memory_id: int, memory_text: str) -> str:
    """One bullet per line of the memory; the provenance comment names its id."""
    lines = [ln.strip().lstrip("-*• ").strip() for ln in memory_text.splitlines()]
    # A text of bullet marks alone (``*``) stays itself: an entry always has a line.
    bullets = [f"- {' '.join(ln.split())}" for ln in lines if ln] or \
        [f"- {' '.join(memory_text.split())}"]
    bullets[0] += f" <!-- memlane:{memory_id} -->"
    return "\n".join(bullets) + "\n"


def insert_memory(file_text: str, memory_id: int, memory_text: str) -> str:
    """``file_text`` with the memory appended under the memlane section (created if missing)."""
    entry = render_entry(memory_id, memory_text)
    if SECTION not in file_text:
        base = file_text.rstrip("\n")
        return f"{base}\n\n{SECTION}\n\n{entry}" if base else f"{SECTION}\n\n{entry}"
    head, _, rest = file_text.partition(SECTION)
    next_heading = re.search(r"\n#{1,2} ", rest)
    end = next_heading.start() if next_heading else len(rest)
    section = rest[:end].rstrip("\n") + "\n" + entry
    return head + SECTION + section + ("\n" + rest[end:].lstrip("\n") if next_heading else "")


def drop_empty_section(file_text: str) -> str:
    """``file_text`` without memlane's section once no entry is left in it (the inverse of
    :func:`insert_memory` creating it)."""
    head, found, rest = file_text.partition(SECTION)
    next_heading = re.search(r"\n#{1,2} ", rest)
    body = rest[:next_heading.start()] if next_heading else rest
    if not found or body.strip():
        return file_text
    after = rest[next_heading.start():].strip("\n") if next_heading else ""
    parts = [part for part in (head.rstrip("\n"), after) if part]
    return "\n\n".join(parts) + "\n" if parts else ""


def score_targets(similarities: Mapping[str, Sequence[tuple[str, float]]]) -> list[TargetScore]:
    """Per target, its nearest paragraph among (paragraph, cosine) pairs."""
    scores = []
    for target, pairs in similarities.items():
        if pairs:
            nearest, similarity = max(pairs, key=lambda p: p[1])
            scores.append(TargetScore(target, similarity, nearest))
        else:
            scores.append(TargetScore(target, -1.0, ""))
    return scores
