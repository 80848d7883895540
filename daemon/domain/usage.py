"""Whether a memory shown to the assistant was used (pure).

Exposure is not use: a memory put in a prompt's context may be ignored. Use is evidence that
the memory's content came back after it was shown — in the assistant's reply or in the user's
later prompts. A bare substring is not evidence (a memory about ``pnpm`` is not used because a
reply says "pnpm" once), and neither are words the prompt itself brought: the prompt drew the
memory *because* they share words. So the evidence is the memory's *novel* distinctive terms
(its content words that the drawing prompt did not contain) reappearing, enough of them and a
large enough share. (Embedding closeness of answer sentences is not used: with the shipped
MiniLM model a paraphrase of a memory scores 0.3-0.5 against it, below the 0.6 link
threshold, so it would never lower the bar.)
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

_TERM = re.compile(r"[A-Za-z0-9_][\w.:/+-]*[\w+]|[A-Za-z0-9]")
_STOP = frozenset("""
about above after again against all also always an and any are as at be because been before
being below between both but by can cannot could did do does doing done down during each else
ever every few for from further get gets got had has have having here how however if in into
is it its itself just keep kept like make makes many may might more most much must need needs
never no nor not now of off often on once only or other our out over own per please rather
same should since so some still such than that the their them then there these they this
those though through thus to too under until up upon use used uses using very via want was
way we were what when where which while who why will with within without would yes yet you
your file files code thing things something anything work works working run runs running
instead first last next new old good better best make made sure okay ok let lets now just
""".split())
MIN_TERMS = 2  # novel terms that must reappear
MIN_SHARE = 0.3  # of the memory's novel terms


@dataclass(frozen=True)
class UseEvidence:
    memory: int
    evidence: Literal["reply", "prompt", "mcp", "user"]
    score: float  # share of the memory's novel terms that came back


def _stem(term: str) -> str:
    for suffix in ("ing", "ed", "es", "s"):
        if len(term) > len(suffix) + 3 and term.endswith(suffix):
            return term[: -len(suffix)]
    return term


def terms(text: str) -> set[str]:
    """Distinctive terms: content words of four letters or more, identifiers, numbers."""
    found = set()
    for raw in _TERM.findall(text.lower()):
        term = raw.strip(".:/-")
        if term in _STOP:
            continue
        if len(term) >= 4 or any(c.isdigit() or c in "._/-+" for c in term):
            found.add(_stem(term))
    return found


def use_score(memory: str, prompt: str, evidence: Iterable[str]) -> float:
    """The share of the memory's novel terms found in ``evidence`` (0 when fewer than
    :data:`MIN_TERMS` or less than :data:`MIN_SHARE` of them came back)."""
    novel = terms(memory) - terms(prompt)
    if not novel:
        return 0.0
    seen: set[str] = set()
    for text in evidence:
        seen |= terms(text)
    hits = len(novel & seen)
    share = hits / len(novel)
    return round(share, 4) if hits >= MIN_TERMS and share >= MIN_SHARE else 0.0


def detect_use(memory: int, text: str, *, prompt: str, replies: Sequence[str],
               later_prompts: Sequence[str]) -> UseEvidence | None:
    """Evidence that a shown memory was used, from what came after the prompt that drew it."""
    if (score := use_score(text, prompt, replies)) > 0:
        return UseEvidence(memory, "reply", score)
    if (score := use_score(text, prompt, later_prompts)) > 0:
        return UseEvidence(memory, "prompt", score)
    return None


def prompt_hash(prompt: str) -> str:
    """A short hash of a prompt as the transcript holds it (whitespace-normalised), no text."""
    return hashlib.sha256(" ".join(prompt.split()).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class AfterPrompt:
    prompt: str
    replies: list[str]
    later_prompts: list[str]


def after_prompt(turns: Sequence[tuple[str, str]], hashed: str) -> AfterPrompt | None:
    """The assistant's replies and the user's prompts after the prompt with hash ``hashed``
    (its first occurrence), or None when the transcript does not hold that prompt (yet).

    Without a hash (shown by a briefing, before any prompt) every reply is evidence and every
    user prompt counts as the one that brought its words: only the assistant shows use."""
    if not hashed:
        return AfterPrompt(" ".join(t for r, t in turns if r == "user"),
                           [t for r, t in turns if r == "assistant"], [])
    for index, (role, text) in enumerate(turns):
        if role == "user" and prompt_hash(text) == hashed:
            rest = turns[index + 1:]
            return AfterPrompt(text, [t for r, t in rest if r == "assistant"],
                               [t for r, t in rest if r == "user"])
    return None
