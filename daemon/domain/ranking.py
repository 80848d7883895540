"""Hybrid retrieval: dense (usearch) and BM25 (SQLite FTS5) candidates fused by score.

Each list's scores are min-max normalised over its top candidates and combined (dense weight
0.3); a candidate missing from one list gets 0 there. A candidate then gains a share of its
best neighbour's score: memories stored next to each other in a project (ids up to 2 apart)
often hold one exchange, and the answer sits beside the turn that matches the words. On
LoCoMo this beats reciprocal-rank fusion (which discards how far apart scores are) and either
list alone; the weight, the share and the width were chosen on the tuning split
(bench/locomo_variants.py). Pure functions; the caller gathers the candidate lists.

The relevance floor is judged on cosine to the query and on BM25 strength, never on the
fused score: the fused score is normalised per query, so the best hit of a query with no
answer still scores near 1, while cosine and BM25 strength are comparable across queries.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

DENSE_WEIGHT = 0.3
NEIGHBOUR_SHARE = 0.6
NEIGHBOUR_WIDTH = 2
CANDIDATES = 100
FEW_DOCUMENTS = 100  # an index this small gives BM25 strength no idf to judge by
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


def with_neighbours(fused: Sequence[tuple[int, float]], project_of: Mapping[int, str], *,
                    share: float = NEIGHBOUR_SHARE,
                    width: int = NEIGHBOUR_WIDTH) -> list[tuple[int, float]]:
    """Each candidate's score plus ``share`` of its best neighbour's (a candidate of the same
    project whose id is at most ``width`` away), best first; ties broken by id."""
    scores = dict(fused)

    def neighbour(memory_id: int) -> float:
        near = (memory_id + d for d in range(-width, width + 1) if d)
        return max((scores[n] for n in near
                    if n in scores and project_of.get(n) == project_of.get(memory_id)),
                   default=0.0)

    boosted = {i: score + share * neighbour(i) for i, score in scores.items()}
    return sorted(boosted.items(), key=lambda item: (-item[1], item[0]))


def bm25_strength(best: float, document_counts: Iterable[int], documents: int) -> float:
    """The best BM25 score over the summed idf of the query's words (FTS5's idf, over
    ``documents``): near 1 when one memory holds every word of the query, rare ones weighing
    most; 0 without a match. Below :data:`FEW_DOCUMENTS` idf says little (a word most of a
    handful of memories hold weighs nothing), and any match counts as 1."""
    if documents < FEW_DOCUMENTS:
        return 1.0 if best > 0 else 0.0
    idf = sum(max(math.log((documents - n + 0.5) / (n + 0.5)), 1e-6) for n in document_counts)
    return best / idf if idf > 0 else 0.0


FOREIGN_MIN = 20  # memories elsewhere holding a word before its absence here says anything


def foreign_evidence(documents: int) -> float:
    """How strongly a query belongs to other projects: log(1 + the memories elsewhere that
    hold its commonest word this project never holds), 0 when it has none or when fewer than
    :data:`FOREIGN_MIN` hold it (a rare word found a few times elsewhere says little; a name
    other projects speak of hundreds of times weighs about 6). Not tuned: on LoCoMo's tuning
    split 20, 50 and 100 tie."""
    return math.log1p(documents) if documents >= FOREIGN_MIN else 0.0


FLOOR_THRESHOLDS = ("relevance", "relevance_bm25", "relevance_foreign", "context")


@dataclass(frozen=True)
class Floor:
    """The relevance floor of a model. A query is answered only when its closest memory's
    cosine, plus ``bm25_weight`` times its BM25 strength, minus ``foreign_weight`` times
    :func:`foreign_evidence`, reaches ``relevance``; the hits shown are then those at least
    ``context`` close or sharing words with it. Chosen on LoCoMo's tuning split
    (bench/locomo_variants.py): ``bm25_weight`` is a logistic fit of positives against clean
    negatives, ``relevance`` the line answering most clean negatives with nothing at a
    recall@10 cost of at most 0.01, ``foreign_weight`` the middle of the weights that then
    tie on that split (it saturates; bench/locomo_floors.report_foreign prints the range). A
    floor per hit did worse (questions asked in the wrong conversation still share words with
    many memories)."""

    relevance: float
    bm25_weight: float
    context: float
    foreign_weight: float = 0.0

    @classmethod
    def of(cls, thresholds: Mapping[str, float]) -> Floor:
        """The floor a model's thresholds make (the names in :data:`FLOOR_THRESHOLDS`)."""
        return cls(relevance=thresholds["relevance"], bm25_weight=thresholds["relevance_bm25"],
                   context=thresholds["context"], foreign_weight=thresholds["relevance_foreign"])

    def evidence(self, closest: float, *, strength: float, foreign: int = 0) -> float:
        """How well a query is answered, from its closest memory's cosine, its BM25 strength
        and its foreign word's count elsewhere (:func:`foreign_evidence`): what
        :meth:`answers` compares with ``relevance``."""
        return (closest + self.bm25_weight * strength
                - self.foreign_weight * foreign_evidence(foreign))

    def answers(self, closest: float, *, strength: float, foreign: int = 0) -> bool:
        """Whether a query gets any hit (its :meth:`evidence` reaches ``relevance``)."""
        return self.reached(self.evidence(closest, strength=strength, foreign=foreign))

    def reached(self, evidence: float) -> bool:
        """Whether a query with this :meth:`evidence` gets any hit."""
        return evidence >= self.relevance

    def passes(self, cosine: float, *, lexical: bool) -> bool:
        """Whether a hit of an answered query is shown."""
        return lexical or cosine >= self.context
