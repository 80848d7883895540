"""Hybrid retrieval: dense (usearch) and BM25 (SQLite FTS5) candidates fused by score.

Each list's scores are min-max normalised over its top candidates and combined with equal
weight; a candidate missing from one list gets 0 there. On LoCoMo this beats reciprocal-rank
fusion (which discards how far apart scores are) and either list alone (see BENCHMARKS.md).
Pure functions; the caller gathers the candidate lists.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

DENSE_WEIGHT = 0.5
CANDIDATES = 100
_WORD = re.compile(r"\w+", re.UNICODE)

# Function words that match almost every memory and only add noise to BM25.
STOPWORDS = frozenset("""
a about above after again against all am an and any are as at be been before being below
between both but by can could did do does doing done down during each ever few for from further
had has have having he her here hers herself him himself his how i if in into is it its itself
just me more most my myself no nor not now of off on once only or other our ours ourselves out
over own same she should so some such than that the their theirs them themselves then there
these they this those through to too under until up very was we were what when where which
while who whom whose why will with would you your yours yourself yourselves
""".split())


def fts_query(text: str, *, drop_stopwords: bool = True) -> str | None:
    """An FTS5 query ORing the words of free text, quoted (user text is never FTS syntax).

    Stopwords are left out unless nothing else remains.
    """
    words = [w for w in _WORD.findall(text.lower()) if len(w) > 1]
    kept = [w for w in words if w not in STOPWORDS] if drop_stopwords else words
    chosen = kept or words
    if not chosen:
        return None
    return " OR ".join(f'"{w}"' for w in dict.fromkeys(chosen))


def _normalised(scored: Sequence[tuple[int, float]]) -> dict[int, float]:
    top = scored[:CANDIDATES]
    if not top:
        return {}
    values = [score for _, score in top]
    low, high = min(values), max(values)
    span = high - low
    return {memory_id: (score - low) / span if span > 0 else 1.0 for memory_id, score in top}


def fuse(dense: Sequence[tuple[int, float]], lexical: Sequence[tuple[int, float]], *,
         dense_weight: float = DENSE_WEIGHT) -> list[tuple[int, float]]:
    """Combine (id, cosine) and (id, BM25) lists, best first; ties broken by id."""
    scores: dict[int, float] = {}
    for memory_id, value in _normalised(dense).items():
        scores[memory_id] = dense_weight * value
    for memory_id, value in _normalised(lexical).items():
        scores[memory_id] = scores.get(memory_id, 0.0) + (1 - dense_weight) * value
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))
