"""Relevance floor designs for bench/locomo_variants.py, on memlane's ranking.

A design decides, from one query's signals, which of its top 10 hits are shown (none: the
query is answered with nothing). Each family is a grid; the point kept per family is the one
that answers the most tuning clean negatives with nothing while costing at most 0.01 tuning
recall@10. The test split is only reported.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from bench.bench_locomo import K
from bench.locomo_eval import SPLITS, recall_at
from memlane.daemon.domain.calibration import pair_scores
from memlane.daemon.domain.models import MINILM
from memlane.daemon.domain.ranking import FOREIGN_MIN, Floor, foreign_evidence, fts_query
from memlane.daemon.service.candidates import lexical_evidence
from memlane.projections.fulltext import document_counts
from memlane.projections.queries import indexed_count

if TYPE_CHECKING:
    from bench.locomo_variants import Query, Scored

MAX_COST = 0.01
CONTEXT = 0.2  # an answered query's hits need this cosine or a BM25 match


@dataclass
class Signals:
    """What a floor may look at for one query: its top hits and their evidence."""

    query: Query
    hits: list[int]
    cosine: dict[int, float]  # of each hit
    lexical: frozenset[int]  # BM25 candidates
    closest: float  # the project's closest memory
    kth: float  # the 10th closest
    strength: float  # BM25 strength, as the daemon computes it
    coverage: float  # share of the query words' idf found in the project at all
    foreign: int  # as the daemon computes it: memories elsewhere behind its foreign word
    spread: tuple[float, float]  # mean, std of the query's cosine to the project's memories

    def passes(self, hit: int) -> bool:
        return hit in self.lexical or self.cosine[hit] >= CONTEXT


def signals(queries: Iterable[Query], ranking: Callable[[Query], Scored],
            conn: sqlite3.Connection) -> list[Signals]:
    """Every query's signals under ``ranking``, the BM25 ones from the index in ``conn``."""
    total = indexed_count(conn)
    out = []
    for q in queries:
        hits = [i for i, _ in ranking(q)[:K]]
        lexical = q.lexical()
        every = q.target.matrix @ q.vector
        evidence = lexical_evidence(conn, q.question, q.target.project)
        out.append(Signals(q, hits, {i: q.cosine(i) for i in hits},
                           frozenset(i for i, _ in lexical), q.dense[0][1], q.dense[K - 1][1],
                           evidence.strength, _coverage(conn, q, total), evidence.foreign,
                           (float(every.mean()), float(every.std()))))
    return out


def _coverage(conn: sqlite3.Connection, q: Query, total: int) -> float:
    words = (fts_query(q.question) or "").replace('"', "").split(" OR ")
    idf = {w: max(math.log((total - n + 0.5) / (n + 0.5)), 1e-6)
           for w, n in document_counts(conn, [w for w in words if w]).items()}
    found = sum(v for w, v in idf.items() if conn.execute(
        "SELECT 1 FROM memories_fts f JOIN memories m ON m.id = f.rowid"
        " WHERE memories_fts MATCH ? AND m.project = ? LIMIT 1",
        (f'"{w}"', q.target.project)).fetchone())
    return found / sum(idf.values()) if idf else 0.0


Design = Callable[[Signals], list[int]]


def gated(answers: Callable[[Signals], bool]) -> Design:
    """Hits of an answered query that pass the context cut; nothing otherwise."""
    return lambda s: [h for h in s.hits if s.passes(h)] if answers(s) else []


def per_hit(relevance: float, lexical: float) -> Design:
    return lambda s: [h for h in s.hits if s.cosine[h] >= relevance
                      or (h in s.lexical and s.cosine[h] >= lexical)]


def previous(relevance: float, lexical: float, *, any_hit: bool = False) -> Design:
    """memlane's floor before this change: the closest memory >= ``relevance``, or the best
    hit (any hit) shares words with the query and is >= ``lexical``."""
    def answers(s: Signals) -> bool:
        shared = [h for h in (s.hits if any_hit else s.hits[:1]) if h in s.lexical]
        return s.closest >= relevance or any(s.cosine[h] >= lexical for h in shared)
    return gated(answers)


def shipped(floor: Floor) -> Design:
    """The daemon's floor, as :class:`Floor` decides."""
    return lambda s: [h for h in s.hits
                      if floor.answers(s.closest, strength=s.strength, foreign=s.foreign)
                      and floor.passes(s.cosine[h], lexical=h in s.lexical)]


def outcome(design: Design, chosen: Sequence[Signals]) -> dict[str, float]:
    """recall@10 of the positives without and with the floor, share answered with nothing."""
    shown = [design(s) for s in chosen]
    out: dict[str, float] = {}
    for kind in ("positive", "clean negative", "adversarial"):
        picked = [h for s, h in zip(chosen, shown, strict=True) if s.query.kind == kind]
        out[kind] = sum(not h for h in picked) / max(len(picked), 1)
    positives = [(s, h) for s, h in zip(chosen, shown, strict=True) if s.query.kind == "positive"]
    out["off"] = float(np.mean([recall_at(K, s.hits, s.query.target.owners, s.query.evidence)
                                for s, _ in positives]))
    out["on"] = float(np.mean([recall_at(K, h, s.query.target.owners, s.query.evidence)
                               for s, h in positives]))
    return out


def best(family: dict[str, Design], tuning: Sequence[Signals]) -> tuple[str, Design]:
    """The grid point answering most tuning clean negatives with nothing within the cost."""
    scored = {name: outcome(design, tuning) for name, design in family.items()}
    within = [n for n in scored if scored[n]["off"] - scored[n]["on"] <= MAX_COST + 1e-9]
    name = max(within or scored, key=lambda n: (scored[n]["clean negative"],
                                                 scored[n]["on"]))
    return name, family[name]


FEATURES: dict[str, Callable[[Signals], float]] = {
    "closest": lambda s: s.closest,
    "margin": lambda s: s.closest - s.kth,
    "bm25 strength": lambda s: s.strength,
    "top hit": lambda s: s.cosine[s.hits[0]] if s.hits else 0.0,
    "coverage": lambda s: s.coverage,
    "foreign": lambda s: foreign_evidence(s.foreign),
}
LOGISTIC = [("closest", "bm25 strength"), ("closest", "margin", "bm25 strength", "top hit"),
            ("closest", "margin", "bm25 strength", "top hit", "coverage"),
            ("closest", "coverage"), ("closest", "coverage", "bm25 strength"),
            ("closest", "bm25 strength", "foreign")]


def logistic(names: Sequence[str], tuning: Sequence[Signals]) -> tuple[np.ndarray, Callable]:
    """(bias and weights, the score) of a logistic model of positives against clean
    negatives, fitted on the tuning split."""
    labelled = [s for s in tuning if s.query.kind in ("positive", "clean negative")]
    x = lambda s: np.array([FEATURES[n](s) for n in names])
    w = fit(np.array([x(s) for s in labelled]),
            np.array([s.query.kind == "positive" for s in labelled], dtype=float))
    return w, lambda s: 1 / (1 + math.exp(-(w[0] + w[1:] @ x(s))))


def fit(x: np.ndarray, y: np.ndarray, l2: float = 1e-2) -> np.ndarray:
    """Logistic regression by Newton steps on standardised inputs; (bias, weights) on the raw
    inputs."""
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-9
    z = np.hstack([np.ones((len(x), 1)), (x - mean) / std])
    w = np.zeros(z.shape[1])
    ridge = l2 * np.diag([0.0] + [1.0] * x.shape[1])
    for _ in range(50):
        p = 1 / (1 + np.exp(-z @ w))
        gradient = z.T @ (p - y) + ridge @ w
        hessian = (z * (p * (1 - p))[:, None]).T @ z + ridge + 1e-9 * np.eye(len(w))
        w -= np.linalg.solve(hessian, gradient)
    raw = w[1:] / std
    return np.concatenate([[w[0] - raw @ mean], raw])


def families(tuning: Sequence[Signals]) -> dict[str, dict[str, Design]]:
    """Every design tried, by family: a grid each."""
    steps = lambda low, high, step: [round(v, 3) for v in np.arange(low, high + 1e-9, step)]
    z_all = lambda s: (s.closest - s.spread[0]) / s.spread[1]
    z_top = lambda s: ((s.closest - np.mean(list(s.cosine.values()))) / s.closest)
    grids = {
        "per hit: cosine >= R, or >= C with a BM25 match (R 0.25-0.60, C 0.10-0.50)": {
            f"R {r} C {c}": per_hit(r, c)
            for r, c in itertools.product(steps(0.25, 0.6, 0.05), steps(0.1, 0.5, 0.05))},
        "per query: closest memory >= G (0.35-0.60), then hits >= 0.2 or BM25": {
            f"G {g}": gated(lambda s, g=g: s.closest >= g) for g in steps(0.35, 0.6, 0.01)},
        "previous memlane: closest >= G, or top hit BM25 and >= L (G .40-.55, L .30-.45)": {
            f"G {g} L {l}": previous(g, l)
            for g, l in itertools.product(steps(0.4, 0.55, 0.01), steps(0.3, 0.45, 0.01))},
        "as previous, any hit's BM25 match (G 0.40-0.55, L 0.30-0.45)": {
            f"G {g} L {l}": previous(g, l, any_hit=True)
            for g, l in itertools.product(steps(0.4, 0.55, 0.01), steps(0.3, 0.45, 0.01))},
        "margin: closest - 10th closest >= M (0-0.25)": {
            f"M {m}": gated(lambda s, m=m: s.closest - s.kth >= m) for m in steps(0, 0.25, 0.005)},
        "closest >= G and margin >= M (G 0.30-0.50, M 0-0.15)": {
            f"G {g} M {m}": gated(lambda s, g=g, m=m: s.closest >= g and s.closest - s.kth >= m)
            for g, m in itertools.product(steps(0.3, 0.5, 0.01), steps(0, 0.15, 0.01))},
        "project-relative: (closest - mean) / std over the project's memories >= Z (1-6)": {
            f"Z {z}": gated(lambda s, z=z: z_all(s) >= z) for z in steps(1, 6, 0.05)},
        "project-relative: closest - the project's mean cosine >= D (0.1-0.5)": {
            f"D {d}": gated(lambda s, d=d: s.closest - s.spread[0] >= d)
            for d in steps(0.1, 0.5, 0.01)},
        "top-10 relative: (closest - mean of the 10 hits) / closest >= T (0-0.4)": {
            f"T {t}": gated(lambda s, t=t: z_top(s) >= t) for t in steps(0, 0.4, 0.01)},
        "BM25 strength >= S (0-1)": {
            f"S {v}": gated(lambda s, v=v: s.strength >= v) for v in steps(0, 1, 0.02)},
        "closest >= G, or BM25 strength >= S and closest >= L (G .40-.55, S .2-.8, L .30-.45)": {
            f"G {g} S {v} L {l}": gated(lambda s, g=g, v=v, l=l: s.closest >= g
                                         or (s.strength >= v and s.closest >= l))
            for g, v, l in itertools.product(steps(0.4, 0.55, 0.01), steps(0.2, 0.8, 0.1),
                                             steps(0.3, 0.45, 0.03))},
    }
    w, _ = logistic(LOGISTIC[0], tuning)
    weight = round(float(w[2] / w[1]), 3)
    grids[f"linear: closest + {weight} x BM25 strength >= T (the weight: the first logistic"
          " below, T 0.50-0.65)"] = {
        f"T {t}": shipped(Floor(relevance=t, bm25_weight=weight, context=CONTEXT))
        for t in steps(0.5, 0.65, 0.001)}
    for names in LOGISTIC:
        w, score = logistic(names, tuning)
        weights = ", ".join(f"{v:+.3f}" for v in w)
        grids[f"logistic of {', '.join(names)} (bias, weights {weights}), fitted on tuning,"
              " >= P (0.02-0.98)"] = {
            f"P {p}": gated(lambda s, p=p, score=score: score(s) >= p)
            for p in steps(0.02, 0.98, 0.01)}
    return grids


def report_closeness(split: dict[str, list[Signals]]) -> None:
    """How close questions and memories are, per split: what a floor on cosine faces."""
    print("\nCloseness: the closest memory's cosine to a question, percentiles p10 p50 p90;"
          " pairs of memories of one conversation, mean ± std")
    for name, chosen in split.items():
        closest = {kind: np.percentile([s.closest for s in chosen if s.query.kind == kind],
                                       (10, 50, 90)) for kind in ("positive", "clean negative")}
        pairs = np.concatenate([pair_scores(c.matrix)[1] for c in
                                {id(s.query.target): s.query.target for s in chosen}.values()])
        print(f"  {name:<7} positives {' '.join(f'{v:.3f}' for v in closest['positive'])},"
              f" clean negatives {' '.join(f'{v:.3f}' for v in closest['clean negative'])},"
              f" memory pairs {pairs.mean():.3f} ± {pairs.std():.3f}")


def report(queries: Sequence[Query], ranking: Callable[[Query], Scored],
           conn: sqlite3.Connection) -> None:
    split = {name: signals([q for q in queries if q.split == name], ranking, conn)
             for name in SPLITS}
    report_closeness(split)
    print("\nRelevance floor designs on memlane's ranking: recall@10 without -> with (cost),"
          " answered with nothing: clean negatives / adversarial / positives."
          f"\nEach family's point: most tuning clean negatives empty at a tuning cost <= {MAX_COST}")
    rows = [(family, *best(grid, split["tuning"]), len(grid))
            for family, grid in families(split["tuning"]).items()]
    t = MINILM.thresholds
    floor = Floor(relevance=t["relevance"], bm25_weight=t["relevance_bm25"], context=t["context"],
                  foreign_weight=t.get("relevance_foreign", 0.0))
    rows.append(("memlane's floor as shipped (models.MINILM)", str(floor), shipped(floor), 1))
    print("\nForeign evidence on the line above: " + report_foreign(split))
    for family, name, design, points in rows:
        print(f"  {family}\n    chosen {name} ({points} points)")
        for s in SPLITS:
            o = outcome(design, split[s])
            print(f"    {s:<7} {o['off']:.4f} -> {o['on']:.4f} ({o['on'] - o['off']:+.4f}),"
                  f" empty {o['clean negative']:6.1%} / {o['adversarial']:6.1%}"
                  f" / {o['positive']:5.1%}")


def report_foreign(split: dict[str, list[Signals]]) -> str:
    """Foreign evidence (:func:`foreign_evidence`) subtracted from the two-feature line as
    chosen above, so that a project alone (no foreign evidence) keeps that line's floor. Its
    weight: the middle of the tuning plateau (the weights answering the most tuning clean
    negatives with nothing at the best tuning recall within the cost), printed with its ends;
    the count a word needs elsewhere (20, 50, 100) and its plateau are printed too."""
    w, _ = logistic(LOGISTIC[0], split["tuning"])
    weight = round(float(w[2] / w[1]), 3)
    steps = [round(v, 3) for v in np.arange(0.5, 0.65 + 1e-9, 0.001)]
    line = {t: Floor(relevance=t, bm25_weight=weight, context=CONTEXT) for t in steps}
    _, base = best({str(t): shipped(f) for t, f in line.items()}, split["tuning"])
    relevance = next(t for t, f in line.items() if outcome(shipped(f), split["tuning"])
                     == outcome(base, split["tuning"]))
    out = [f"line T {relevance}, BM25 weight {weight}"]
    for least in (FOREIGN_MIN, 50, 100):
        counted = {name: [dataclasses.replace(s, foreign=s.foreign if s.foreign >= least else 0)
                          for s in chosen] for name, chosen in split.items()}
        weights = [round(v, 4) for v in np.arange(0.0025, 0.1 + 1e-9, 0.0025)]
        floors = {fw: Floor(relevance=relevance, bm25_weight=weight, context=CONTEXT,
                            foreign_weight=fw) for fw in weights}
        tuned = {fw: outcome(shipped(f), counted["tuning"]) for fw, f in floors.items()}
        within = [fw for fw in weights if tuned[fw]["off"] - tuned[fw]["on"] <= MAX_COST + 1e-9]
        top = max((tuned[fw]["clean negative"], tuned[fw]["on"]) for fw in within)
        plateau = [fw for fw in within if (tuned[fw]["clean negative"], tuned[fw]["on"]) == top]
        middle = plateau[len(plateau) // 2]
        out.append(f"\n  a word held by >= {least} memories elsewhere: tuning plateau weight"
                   f" {plateau[0]}-{plateau[-1]} ({len(plateau)} of {len(weights)} points up to"
                   f" 0.1), its middle {middle}")
        for label, fw in (("low end", plateau[0]), ("middle", middle), ("high end", plateau[-1])):
            for name in SPLITS:
                o = outcome(shipped(floors[fw]), counted[name])
                out.append(f"\n    {label:<8} {fw:<7} {name:<7} {o['off']:.4f} -> {o['on']:.4f}"
                           f" ({o['on'] - o['off']:+.4f}), empty {o['clean negative']:6.1%} /"
                           f" {o['adversarial']:6.1%} / {o['positive']:5.1%}")
    for name in SPLITS:
        alone = outcome(base, [dataclasses.replace(s, foreign=0) for s in split[name]])
        out.append(f"\n  without foreign evidence (a project alone) {name:<7}"
                   f" empty {alone['clean negative']:6.1%} / {alone['adversarial']:6.1%}"
                   f" / {alone['positive']:5.1%}")
    return "".join(out)
