"""FTS5's BM25, scored in numpy over an in-memory copy of the full-text index's postings.

Inside SQLite, ``bm25()`` costs a few microseconds per matched document and query word: about
13 ms for a query over 100k memories (``python -m bench.search_stages``). The copy is read from
FTS5 itself (its ``fts5vocab`` instance table: each term's documents and counts, each
document's length: FTS5's tokens), so its scores are ``bm25()``'s own, and the documents a
query's words choose are those FTS5 would match. It covers the documents up to a rowid; newer
ones are found and scored by FTS5. It is a cache in memory, never on disk:
:class:`PostingsCache` rebuilds it in the background when it lags behind the index and drops
it when a memory is forgotten.
"""

from __future__ import annotations

import functools
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import structlog
from memlane.projections.queries import indexed_count
from memlane.projections.read_pool import ReadPool

K1, B = 1.2, 0.75  # FTS5's bm25() constants
LEAST_DOCUMENTS = 2_000  # below this FTS5 scores a query in a few milliseconds: no copy
RETRY_AFTER = 60.0  # seconds before a failed build is tried again

log = structlog.get_logger()


@dataclass(frozen=True, eq=False)
class Postings:
    """Every term's documents (rowids ascending) and counts, every document's length and
    project code, as the index held them up to rowid :attr:`upto`."""

    upto: int
    documents: int
    terms: dict[str, int]  # term -> slot
    offsets: np.ndarray  # slot -> its first posting; one past the last at the end
    docs: np.ndarray  # int64 rowids
    counts: np.ndarray  # float32 occurrences of the term in the document (exact below 2**24)
    rowids: np.ndarray  # int64, every document's, ascending
    lengths: np.ndarray  # float64 tokens per document
    projects: np.ndarray  # int32 code per document (-1: its memory row is gone)
    project_codes: dict[str, int]
    per_project: np.ndarray  # code -> its documents

    @classmethod
    def read(cls, conn: sqlite3.Connection) -> Postings:
        """The postings as ``conn``'s read transaction sees them (one snapshot throughout)."""
        conn.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.memories_instances"
                     " USING fts5vocab(main, memories_fts, instance)")
        top = conn.execute("SELECT rowid FROM memories_fts ORDER BY rowid DESC LIMIT 1").fetchone()
        terms: dict[str, int] = {}
        pieces: list[np.ndarray] = []
        # fts5vocab walks its terms in order: SQLite groups them without sorting.
        for term, docs in conn.execute("SELECT term, group_concat(doc) FROM"
                                       " temp.memories_instances GROUP BY term"):
            terms[term] = len(pieces)
            pieces.append(np.sort(np.fromstring(docs, dtype=np.int64, sep=",")))
        instances = np.concatenate(pieces) if pieces else np.zeros(0, np.int64)
        sizes = np.fromiter(map(len, pieces), dtype=np.int64, count=len(pieces))
        slots = np.repeat(np.arange(len(pieces)), sizes)
        first = np.ones(len(instances), dtype=bool)
        first[1:] = (instances[1:] != instances[:-1]) | (slots[1:] != slots[:-1])
        starts = np.flatnonzero(first)
        counts = np.diff(np.append(starts, len(instances))).astype(np.float32)
        rowids, lengths = _lengths(instances)
        codes, projects = _projects(conn, rowids)
        return cls(upto=int(top[0]) if top else 0, documents=len(rowids), terms=terms,
                   offsets=np.searchsorted(slots[starts], np.arange(len(pieces) + 1)),
                   docs=instances[starts], counts=counts, rowids=rowids,
                   lengths=lengths.astype(np.float64), projects=projects, project_codes=codes,
                   per_project=np.bincount(projects[projects >= 0], minlength=len(codes)))

    def documents_of(self, project: str) -> int:
        """How many of the copy's documents are ``project``'s."""
        code = self.project_codes.get(project)
        return 0 if code is None else int(self.per_project[code])

    def placed_in(self, ids: Sequence[int], project: str) -> list[int]:
        """``ids`` less those the copy holds as another project's (the rest may be
        ``project``'s: the copy does not know them or places them there)."""
        if not len(self.rowids):
            return list(ids)
        keys = np.asarray(ids, dtype=np.int64)
        at = np.minimum(np.searchsorted(self.rowids, keys), len(self.rowids) - 1)
        elsewhere = (self.rowids[at] == keys) & (
            self.projects[at] != self.project_codes.get(project, -2))
        placed: list[int] = keys[~elsewhere].tolist()
        return placed

    def holding(self, terms: Sequence[str], *, every: bool) -> np.ndarray:
        """The documents (ascending) holding any of ``terms``, or with ``every`` all of them."""
        held = [self.docs[self.offsets[slot]:self.offsets[slot + 1]]
                for slot in (self.terms.get(term) for term in terms) if slot is not None]
        if every:
            if len(held) < len(terms) or not held:
                return np.zeros(0, dtype=np.int64)
            return functools.reduce(np.intersect1d, held)
        return np.unique(np.concatenate(held)) if held else np.zeros(0, dtype=np.int64)

    def score(self, candidates: np.ndarray, terms: Sequence[str], idf: Sequence[float], *,
              average_length: float, project: str | None) -> tuple[np.ndarray, np.ndarray]:
        """(rowids, BM25 scores) of the ``candidates`` (strictly ascending, from
        :meth:`holding`) of ``project``, scored over ``terms`` weighted by ``idf``."""
        if not len(self.rowids):
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        at = np.minimum(np.searchsorted(self.rowids, candidates), len(self.rowids) - 1)
        keep = self.rowids[at] == candidates
        if project is not None:
            keep &= self.projects[at] == self.project_codes.get(project, -2)
        candidates, at = candidates[keep], at[keep]
        norm = K1 * (1 - B + B * self.lengths[at] / average_length)
        total = np.zeros(len(candidates))
        for term, weight in zip(terms, idf, strict=True):
            slot = self.terms.get(term)
            if slot is None or not len(candidates):
                continue
            low, high = int(self.offsets[slot]), int(self.offsets[slot + 1])
            where, freq = occurrences(self.docs[low:high], self.counts[low:high], candidates)
            total[where] += weight * (freq * (K1 + 1)) / (freq + norm[where])
        return candidates, total


def occurrences(docs: np.ndarray, counts: np.ndarray, candidates: np.ndarray, *,
                from_docs: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Where among ``candidates`` a term's ``docs`` stand (both strictly ascending) and its
    count in each (float64). The shorter list is looked up in the longer (``from_docs``
    forces a side): a long prompt's rare words hold a few of thousands of candidates."""
    if from_docs is None:
        from_docs = len(docs) < len(candidates)
    if from_docs:
        at = np.minimum(np.searchsorted(candidates, docs), len(candidates) - 1)
        held = candidates[at] == docs
        return at[held], counts[held].astype(float)
    found = np.minimum(np.searchsorted(docs, candidates), len(docs) - 1)
    held = docs[found] == candidates
    return np.flatnonzero(held), counts[found[held]].astype(float)


def _lengths(instances: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every document's rowid (ascending) and its tokens, from its instances: counted in one
    pass when the rowids are dense enough (a sort of millions holds the GIL for ~150 ms)."""
    if not len(instances):
        return instances, instances
    low = int(instances.min())
    if int(instances.max()) - low > 8 * len(instances):
        return np.unique(instances, return_counts=True)
    counted = np.bincount(instances - low)
    present = np.flatnonzero(counted)
    return present + low, counted[present]


def _projects(conn: sqlite3.Connection, rowids: np.ndarray) -> tuple[dict[str, int], np.ndarray]:
    """A code per project, and each of ``rowids``' project code (-1 without a memory row)."""
    codes: dict[str, int] = {}
    ids: list[int] = []
    projects: list[int] = []
    for memory, project in conn.execute("SELECT id, project FROM memories"):
        ids.append(memory)
        projects.append(codes.setdefault(project, len(codes)))
    order = np.argsort(np.array(ids, dtype=np.int64))
    known, code = np.array(ids, dtype=np.int64)[order], np.array(projects, np.int32)[order]
    at = np.minimum(np.searchsorted(known, rowids), max(len(known) - 1, 0))
    found = known[at] == rowids if len(known) else np.zeros(len(rowids), dtype=bool)
    return codes, np.where(found, code[at] if len(known) else -1, -1).astype(np.int32)


class PostingsCache:
    """The newest :class:`Postings` of one database, read in a background thread when there is
    none or the index has grown past it by an eighth (and at least ``LAG`` documents)."""

    LAG = 1_000

    def __init__(self, reads: ReadPool, *, least: int = LEAST_DOCUMENTS) -> None:
        self._reads = reads
        self._least = least
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)  # notified when a build ends
        self._postings: Postings | None = None
        self._generation = 0
        self._building = False
        self._failed_at = -RETRY_AFTER

    def current(self, conn: sqlite3.Connection) -> Postings | None:
        """The copy to score with (None: let FTS5 score) for the index ``conn`` sees; starts a
        build when the copy is missing or lags."""
        documents = indexed_count(conn)
        if documents < self._least:
            return None
        postings = self._postings
        if postings is None or documents > postings.documents + max(self.LAG,
                                                                     postings.documents // 8):
            self._build_soon()
        return postings

    def describe(self) -> dict[str, object]:
        """For status: who scores BM25 now (the copy, or FTS5 while there is none), how many
        documents the copy holds, and whether a build runs."""
        postings = self._postings
        return {"scored_by": "fts5" if postings is None else "postings",
                "documents": 0 if postings is None else postings.documents,
                "building": self._building}

    def drop(self) -> None:
        """Forget the copy (and any build under way): a memory's terms leave memory with it."""
        with self._lock:
            self._generation += 1
            self._postings = None

    def wait_built(self, timeout: float) -> bool:
        """Wait until no build runs; True when a copy is held (benchmarks build it before they
        measure)."""
        with self._idle:
            self._idle.wait_for(lambda: not self._building, timeout)
            return self._postings is not None

    def _build_soon(self) -> None:
        with self._lock:
            if self._building or time.monotonic() - self._failed_at < RETRY_AFTER:
                return
            self._building = True
            generation = self._generation
        threading.Thread(target=self._build, args=(generation,), name="memlane-postings",
                         daemon=True).start()

    def _build(self, generation: int) -> None:
        """Read a copy and keep it unless a forget came meanwhile; a failure (logged, or raised
        to the thread's hook) is tried again after RETRY_AFTER, FTS5 scoring meanwhile."""
        postings = None
        try:
            with self._reads.connection() as conn:
                postings = Postings.read(conn)
        except sqlite3.Error:
            log.exception("postings_build_failed")
        finally:
            with self._idle:
                if postings is None:
                    self._failed_at = time.monotonic()
                elif generation == self._generation:
                    self._postings = postings
                self._building = False
                self._idle.notify_all()
