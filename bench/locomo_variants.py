"""The ranking variants and relevance floor designs of issue 17, replayed offline on the
candidate lists of a bench/bench_locomo.py run (its bench/out/locomo_replay/): the exact
dense scan over the daemon's vectors and FTS5 BM25 on a copy of the daemon's SQLite.

Every variant is scored on both splits; the choice of what memlane keeps was made on the
tuning split only (conversations 26, 30), and the test split (41-43) is printed beside it,
never used to choose. Ranking rows: recall@5 / recall@10 / MRR@10 of the positives without
a floor. Floor rows (on memlane's ranking): recall@10 without -> with the floor, share of
clean negatives / adversarial questions / positives answered with nothing.

Run: python -m bench.locomo_variants [--data ../shared/bench/locomo] [--replay DIR]
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np

from bench import locomo_floors, locomo_replay
from bench.bench_locomo import DEFAULT_DATA, K
from bench.locomo_eval import (
    ADVERSARIAL, ANSWERABLE, CANDIDATES, SPLITS, Conversation, dense_exact, header, recall_at,
    reciprocal_rank)
from memlane.daemon.domain.ranking import fts_query, fuse, with_neighbours
from memlane.projections.fulltext import search_fts

Scored = list[tuple[int, float]]
# Words added to the query stopwords in the "more stopwords" variant.
MORE_STOPWORDS = frozenset("did does kind many like go went get got make made much also ever"
                           " thing things think something".split())


@dataclass
class Query:
    """One question asked in one project, with the candidate lists the daemon would have."""

    split: str
    kind: str  # positive, clean negative, adversarial
    question: str
    evidence: list[str]
    target: Conversation
    vector: np.ndarray
    lexical_of: Callable[[str, frozenset[str]], Scored]
    dense: Scored = field(init=False)

    def __post_init__(self) -> None:
        self.dense = dense_exact(self.target, self.vector)

    def lexical(self, extra: frozenset[str] = frozenset()) -> Scored:
        """BM25 candidates, with the words of ``extra`` dropped from the query too."""
        return self.lexical_of(self.question, extra)

    def cosine(self, memory_id: int) -> float:
        return self.target.cosine(memory_id, self.vector)


def queries(replay: locomo_replay.Replay) -> list[Query]:
    """Positives, clean negatives (asked in every other conversation of the split) and
    adversarial questions of both splits, in the bench's order."""
    conn = replay.conn

    def lexical_of(project: str) -> Callable[[str, frozenset[str]], Scored]:
        @cache
        def run(question: str, extra: frozenset[str]) -> Scored:
            kept = " ".join(w for w in re.findall(r"\w+", question) if w.lower() not in extra)
            match = fts_query(kept or question)
            return [] if match is None else search_fts(conn, match, project=project,
                                                       limit=CANDIDATES)
        return run

    lexicals = {c.name: lexical_of(c.project) for cs in replay.splits.values() for c in cs}
    out = []
    for split, conversations in replay.splits.items():
        for c in conversations:
            for q in c.questions(ANSWERABLE):
                vector = replay.vectors[q["question"]]
                out.append(Query(split, "positive", q["question"], q["evidence"], c, vector,
                                 lexicals[c.name]))
                out += [Query(split, "clean negative", q["question"], [], other, vector,
                              lexicals[other.name]) for other in conversations if other is not c]
            out += [Query(split, "adversarial", q["question"], q["evidence"], c,
                          replay.vectors[q["question"]], lexicals[c.name])
                    for q in c.questions((ADVERSARIAL,))]
    return out


# Ranking variants: a query -> (id, score) best first.

def zscore(scored: Scored) -> dict[int, float]:
    values = np.asarray([s for _, s in scored])
    mean, std = (values.mean(), values.std()) if len(values) else (0.0, 0.0)
    return {i: (s - mean) / std if std > 0 else 0.0 for i, s in scored}


def maxnorm(scored: Scored) -> dict[int, float]:
    top = max((s for _, s in scored), default=0.0)
    return {i: s / top if top > 0 else 0.0 for i, s in scored}


def minmax(weight: float, extra: frozenset[str] = frozenset()) -> Callable[[Query], Scored]:
    """memlane's fusion (min-max normalised lists), without the neighbour lift."""
    return lambda q: fuse(q.dense, q.lexical(extra), dense_weight=weight)


def fused(norm: Callable[[Scored], dict[int, float]], weight: float) -> Callable[[Query], Scored]:
    """Fusion with another normalisation than min-max."""
    def ranking(q: Query) -> Scored:
        scores: dict[int, float] = {}
        for i, v in norm(q.dense).items():
            scores[i] = weight * v
        for i, v in norm(q.lexical()).items():
            scores[i] = scores.get(i, 0.0) + (1 - weight) * v
        return sorted(scores.items(), key=lambda item: (-item[1], item[0]))
    return ranking


def lifted(weight: float, share: float, width: int) -> Callable[[Query], Scored]:
    """memlane's ranking: min-max fusion, then the neighbour lift."""
    def ranking(q: Query) -> Scored:
        scored = fuse(q.dense, q.lexical(), dense_weight=weight)
        return with_neighbours(scored, {i: q.target.project for i, _ in scored},
                               share=share, width=width)
    return ranking


def lifted_outside(weight: float, share: float, width: int) -> Callable[[Query], Scored]:
    """The neighbour lift that also brings in neighbours that were no candidate."""
    def ranking(q: Query) -> Scored:
        scores = dict(fuse(q.dense, q.lexical(), dense_weight=weight))
        near = {i + d for i in scores for d in range(-width, width + 1)
                if i + d in q.target.rows}
        boosted = {i: scores.get(i, 0.0) + share * max(
            (scores.get(i + d, 0.0) for d in range(-width, width + 1) if d), default=0.0)
            for i in near}
        return sorted(boosted.items(), key=lambda item: (-item[1], item[0]))
    return ranking


def metrics(positives: Sequence[Query], ranking: Callable[[Query], Scored]) -> np.ndarray:
    """Mean recall@5, recall@10, MRR@10 of the positives under ``ranking``."""
    rows = []
    for q in positives:
        hits = [i for i, _ in ranking(q)[:K]]
        owners = q.target.owners
        rows.append((recall_at(5, hits, owners, q.evidence), recall_at(K, hits, owners, q.evidence),
                     reciprocal_rank(K, hits, owners, q.evidence)))
    return np.mean(rows, axis=0)


KEPT = lifted(0.3, 0.6, 2)
VARIANTS: list[tuple[str, Callable[[Query], Scored]]] = [
    ("baseline: min-max fusion, dense weight 0.5", minmax(0.5)),
    ("more query stopwords, weight 0.5", minmax(0.5, MORE_STOPWORDS)),
    ("dense weight 0.4", minmax(0.4)),
    ("dense weight 0.3", minmax(0.3)),
    ("z-score instead of min-max, weight 0.5", fused(zscore, 0.5)),
    ("max-normalisation, weight 0.5", fused(maxnorm, 0.5)),
    ("neighbour lift, share 0.4, ids +-1, weight 0.5", lifted(0.5, 0.4, 1)),
    ("neighbour lift, share 0.6, ids +-2, weight 0.3 (memlane)", KEPT),
    ("neighbour lift adding non-candidates, share 0.5, +-1, w 0.5",
     lifted_outside(0.5, 0.5, 1)),
]
GRID = [(w, s, d) for w in (0.2, 0.3, 0.4, 0.5) for s in (0.2, 0.4, 0.6, 0.8, 1.0)
        for d in (1, 2, 3)]


def report_variants(by_split: dict[str, list[Query]]) -> None:
    print("\nRanking variants: recall@5 / recall@10 / MRR@10 of memlane search without a floor")
    print(f"  {'variant':<62} {'tuning':>24} {'test':>24}")
    for name, ranking in VARIANTS:
        print(f"  {name:<62}" + "".join(f" {_triple(metrics(by_split[s], ranking)):>24}"
                                          for s in SPLITS))
    tuning = {(w, s, d): metrics(by_split["tuning"], lifted(w, s, d)) for w, s, d in GRID}
    best = max(tuning, key=lambda p: (round(tuning[p][1], 6), tuning[p][0]))
    print(f"  neighbour-lift grid: dense weight 0.2-0.5 x share 0.2-1.0 x ids +-1..3"
          f" ({len(GRID)} points), best tuning recall@10: weight {best[0]}, share {best[1]},"
          f" +-{best[2]}: tuning {_triple(tuning[best])},"
          f" test {_triple(metrics(by_split['test'], lifted(*best)))}")


def _triple(values: np.ndarray) -> str:
    return " / ".join(f"{v:.4f}" for v in values)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--replay", type=Path, default=locomo_replay.DEFAULT_DIR)
    args = parser.parse_args()
    print(header())
    replay = locomo_replay.load(args.replay, args.data)
    print(f"replaying the bench run of {replay.header.splitlines()[-1].removeprefix('date: ')}"
          f"\nmodel {replay.model}; chosen on tuning = {' '.join(SPLITS['tuning'])},"
          f" test = {' '.join(SPLITS['test'])} only reported")
    asked = queries(replay)
    by_split = {s: [q for q in asked if q.split == s and q.kind == "positive"] for s in SPLITS}
    report_variants(by_split)
    locomo_floors.report(asked, KEPT, replay.conn)


if __name__ == "__main__":
    main()
