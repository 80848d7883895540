"""The vector projection: one vector per memory id for the active embedding pipeline.

Two layouts, chosen by size: below :data:`EXACT_BELOW` vectors a flat float32 matrix
(:mod:`memlane.projections.flat_vectors`: exact scan, nothing to build, mapped from its files,
so a save flushes what changed); from
there on a usearch HNSW graph of the int8 codes (:mod:`memlane.projections.graph_vectors`),
built in batches on every core. The projection switches by itself as it grows (and back, with
some slack, as it shrinks); during a replay (start-up catch-up, ``memlane rebuild``) a flat
matrix stays flat up to :data:`DEFERRED_UP_TO` vectors, so the graph is built in one batch.
Vectors are inserted in batches: a run of ``AddVector`` ops becomes one insertion. Every
vector is held quantised
(:mod:`memlane.events.vector_codes`) and both layouts give a vector the same cosine. A flat
matrix saved as the model's floats by an older memlane is quantised when loaded; a graph keeps
the floats it was saved with (building it again would hold a start for minutes) until it is
rebuilt or goes back to flat.

The files are saved beside a small JSON file recording the layout, the seq they reflect and
their sizes and CRC32C; a missing, stale or mismatched file is rebuilt from the log.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple, assert_never

import numpy as np

from memlane.events.model import Embedded, Embeddings, ForgetRequested, Forgotten, ModelChanged
from memlane.events.model import Record
from memlane.events.vector_codes import codes_rows, held, unit
from memlane.projections import graph_save, graph_vectors
from memlane.projections.flat_vectors import FlatVectors, keys_path

from usearch.index import Index  # isort: skip  (after graph_vectors: onnxruntime first)

EXACT_BELOW = 50_000  # below this many vectors: the flat matrix (an exact scan, and fast)
DEFERRED_UP_TO = 4 * EXACT_BELOW  # a replay's flat matrix holds floats: this many at most
FLAT_AGAIN_BELOW = 0.8  # a graph shrunk under this share of EXACT_BELOW goes back to flat
HELD_VALUES = "int8-codes"  # every vector held quantised (older saves: the model's floats)
Among = Callable[[list[int]], list[int]]  # the ids to keep of those given (a search's filter)

class AddVector(NamedTuple):
    key: int
    vector: bytes
    dims: int
    pipeline: str
    codes: bool  # int8 codes (see vector_codes), else the model's float32 bytes


class RemoveVector(NamedTuple):
    key: int


class ResetIndex(NamedTuple):
    pipeline: str
    dims: int


VectorOp = AddVector | RemoveVector | ResetIndex
Vectors = FlatVectors | Index


# The events :func:`vector_ops` does something for (an apply skips the others unread).
VECTOR_EVENTS = frozenset({Embedded, Embeddings, ForgetRequested, Forgotten, ModelChanged})


def vector_ops(record: Record) -> list[VectorOp]:
    """The pure fold: what one record does to the vector index."""
    event = record.event
    match event:
        case Embedded() if event.vector:
            return [AddVector(event.memory, event.vector, event.dims, event.pipeline, False)]
        case Embeddings():  # a forgotten memory's zeros: removed by the ForgetRequested after
            return [AddVector(memory, event.codes_of(i), event.dims, event.pipeline, True)
                    for i, memory in enumerate(event.memories)]
        case ForgetRequested():
            return [RemoveVector(m) for m in event.memories]
        case Forgotten():
            return [RemoveVector(event.memory)]
        case ModelChanged():
            return [ResetIndex(event.pipeline, event.dims)]
        case _:
            return []


class VectorProjection:
    """The vectors of one pipeline (flat or HNSW) and the last seq applied to them.

    Searches come from read threads that do not hold the projections' lock, so a change
    (apply, compact) and a lookup (search, vectors) take :attr:`_guard` in turn. A save only
    reads: the projections' lock keeps changes off while it starts; a graph's save then goes on
    in a forked child while changes resume (see :mod:`memlane.projections.graph_save`).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._guard = threading.Lock()
        self.pipeline: str | None = None
        self.applied_seq = 0
        self.index: Vectors | None = None
        self._changes = 0  # counts changes; the files hold those up to _saved_changes
        self._saved_changes = 0
        self.values: str | None = HELD_VALUES  # None: some vectors are the model's floats
        self.deferred = False  # while True a flat matrix stays flat (up to DEFERRED_UP_TO)

    @property
    def meta_path(self) -> Path:
        return self.path.with_name(self.path.name + ".json")

    @property
    def keys_path(self) -> Path:
        return keys_path(self.path)

    @property
    def dirty(self) -> bool:
        """Whether the vectors changed since the files were last written."""
        return self._changes != self._saved_changes

    @property
    def mode(self) -> str:
        """``flat`` or ``hnsw`` (``flat`` while empty)."""
        return "hnsw" if isinstance(self.index, Index) else "flat"

    def move_to(self, path: Path) -> None:
        """Save to ``path`` from now on (the vectors in memory are unchanged)."""
        self.path = path
        self._changes += 1

    def load(self) -> bool:
        """Load the saved vectors if they match their metadata; False means rebuild from 1.
        What a save interrupted by a kill left behind is deleted first."""
        graph_save.remove_leftovers(self.path)
        try:
            meta = json.loads(self.meta_path.read_text())
            self.index = _load(self.path, meta)
        except (OSError, ValueError, KeyError, RuntimeError):
            self.index = None
        if self.index is None:
            return False
        self.pipeline, self.applied_seq = meta["pipeline"], int(meta["applied_seq"])
        self.values = meta.get("values")
        if self.values != HELD_VALUES and isinstance(self.index, FlatVectors):
            self.index, self.values = _requantised(self.index, self.path), HELD_VALUES
            self._changes += 1
        self._settle()
        return True

    def apply(self, records: Sequence[Record]) -> None:
        """Apply records in order; consecutive additions go in as one batch."""
        with self._guard:
            self._apply(records)

    def _apply(self, records: Sequence[Record]) -> None:
        run: list[AddVector] = []
        for record in records:
            if type(record.event) not in VECTOR_EVENTS:
                continue  # most of a replay: links, recalls, stores
            for op in vector_ops(record):
                if isinstance(op, AddVector):
                    run.append(op)
                    continue
                self._add(run)
                run = []
                self._apply_op(op)
        self._add(run)
        if records:
            self.applied_seq = records[-1].seq
            self._changes += 1

    def _apply_op(self, op: RemoveVector | ResetIndex) -> None:
        match op:
            case ResetIndex():
                if op.pipeline != self.pipeline:
                    self.pipeline, self.index = op.pipeline, FlatVectors(op.dims, self.path)
                    self.values = HELD_VALUES
            case RemoveVector():
                if self.index is not None and op.key in self.index:
                    self.index.remove(op.key)
                    self._settle()
            case _:
                assert_never(op)

    def _add(self, run: list[AddVector]) -> None:
        if not run:
            return
        if self.pipeline is None:
            self.pipeline, self.index = run[0].pipeline, FlatVectors(run[0].dims, self.path)
        ops = [op for op in run if op.pipeline == self.pipeline]
        if not ops or self.index is None:
            return
        codes = codes_rows([op.vector for op in ops], [op.codes for op in ops], ops[0].dims)
        keys = [op.key for op in ops]
        if isinstance(self.index, FlatVectors):
            self.index.add(keys, unit(codes))
        else:
            graph_vectors.add(self.index, keys, codes)
        self._settle()

    def settle(self) -> None:
        """End a deferral: switch to the layout the count calls for (a graph built at once)."""
        with self._guard:
            self.deferred = False
            before = self.index
            self._settle()
            if self.index is not before:
                self._changes += 1

    def _settle(self) -> None:
        """Switch layout when the count crosses a threshold (a deferred flat matrix: past
        :data:`DEFERRED_UP_TO` only)."""
        index = self.index
        if isinstance(index, FlatVectors) and len(index) >= EXACT_BELOW and not (
                self.deferred and len(index) < DEFERRED_UP_TO):
            self.index = graph_vectors.graph_of(*index.items())
        elif isinstance(index, Index) and len(index) < EXACT_BELOW * FLAT_AGAIN_BELOW:
            keys = [int(key) for key in index.keys]
            flat = FlatVectors(index.ndim, self.path, capacity=len(keys))
            if keys:
                flat.add(keys, self._held_in(index, keys))
            self.index, self.values = flat, HELD_VALUES

    def search(self, vector: np.ndarray, k: int, *, exact: bool | None = None,
               among: Among | None = None) -> list[tuple[int, float]]:
        """Nearest memory ids with cosine similarity, best first (always exact while flat; an
        HNSW graph answers approximately unless ``exact``); ``among`` keeps only the ids it
        returns (of those it is given, in order). An approximate graph search applies it to
        its candidates before reading their held vectors: the same hits, and each candidate
        read costs ~5 µs at 100k (its codes are fetched key by key)."""
        with self._guard:
            return self._search(vector, k, exact=exact, among=among)

    def search_many(self, vectors: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
        """:meth:`search` for each row of ``vectors`` (a flat matrix scores them in one
        product, whose scores may differ from :meth:`search`'s in the last bit; a graph
        answers each in turn, letting other searches in between)."""
        with self._guard:
            if isinstance(self.index, FlatVectors):
                return self.index.search_many(vectors, k)
        return [self.search(vector, k) for vector in vectors]

    def _search(self, vector: np.ndarray, k: int, *, exact: bool | None = None,
                among: Among | None = None) -> list[tuple[int, float]]:
        index = self.index
        if index is None or len(index) == 0:
            return []
        if isinstance(index, FlatVectors):
            return _kept(index.search(vector, k), among)
        query = np.asarray(vector, dtype=np.float32).reshape(-1)
        found = graph_vectors.candidates(index, query, k, exact=bool(exact))
        if among is not None and not exact:  # every candidate is a hit: filter them first
            found, among = among(found), None
        keys, rows = self._vectors(found)
        return _kept(graph_vectors.scored(keys, rows, query, k), among) if keys else []

    def vector(self, key: int) -> np.ndarray | None:
        keys, rows = self.vectors([key])
        return rows[0] if keys else None

    def vectors(self, keys: Sequence[int]) -> tuple[list[int], np.ndarray]:
        """The keys among ``keys`` that have a vector, and their vectors (rows in that order)."""
        with self._guard:
            return self._vectors(keys)

    def _vectors(self, keys: Sequence[int]) -> tuple[list[int], np.ndarray]:
        index = self.index
        if index is None:
            return [], np.zeros((0, 0), dtype=np.float32)
        if isinstance(index, FlatVectors):
            return index.get(keys)
        present = [k for k in keys if k in index]
        if not present:
            return [], np.zeros((0, 0), dtype=np.float32)
        return present, self._held_in(index, present)

    def _held_in(self, index: Index, keys: list[int]) -> np.ndarray:
        return graph_vectors.held_in(index, keys, floats_held=self.values == HELD_VALUES)

    def compact(self) -> None:
        """Overwrite the bytes of removed vectors in a graph
        (:func:`~memlane.projections.graph_vectors.overwrite_free_slots`; rebuilding it instead
        would take many seconds per 20k vectors; tests/projections/test_vector_forget.py checks
        the bytes are gone). The flat matrix needs none of this: its save zeroes what a removal
        freed."""
        with self._guard:
            if isinstance(self.index, Index) and graph_vectors.overwrite_free_slots(self.index):
                self._changes += 1

    def __len__(self) -> int:
        return 0 if self.index is None else len(self.index)

    def save(self) -> None:
        """Write the vectors, then their metadata (atomically, last)."""
        self.begin_save()()

    def begin_save(self) -> Callable[[], None]:
        """Start a save (with the projections' lock held: nothing changes the vectors) and
        return the call that completes it, which needs no lock: a flat matrix is written
        before this returns, a graph by a forked child whose snapshot later changes leave
        alone. A failed child is followed by a save in process (changes held off meanwhile)."""
        with self._guard:
            if not isinstance(self.index, Index):
                self._save_now()
                return _nothing
            meta, changes = self._meta(), self._changes
            pending = graph_save.start(self.index, self.path)
        return partial(self._finish, meta, changes, pending)

    def _finish(self, meta: dict[str, Any], changes: int, pending: graph_save.GraphSave) -> None:
        try:
            meta["size"], meta["crc32c"] = pending.finish()
        except graph_save.ChildFailed:
            with self._guard:
                self._save_now()
            return
        self._commit(meta, changes)

    def _save_now(self) -> None:
        """The whole save in this thread (call under :attr:`_guard`)."""
        if self.index is None:
            remove_files(self.path)
            return
        meta, changes = self._meta(), self._changes
        if isinstance(self.index, FlatVectors):
            self.index.save(self.path)
            meta["dims"] = self.index.dims
            meta["crc32c"], meta["keys_crc32c"] = self.index.checksums()
        else:
            meta["size"], meta["crc32c"] = graph_save.save_here(self.index, self.path).finish()
        self._commit(meta, changes)

    def _meta(self) -> dict[str, Any]:
        return {"applied_seq": self.applied_seq, "pipeline": self.pipeline,
                "count": len(self), "mode": self.mode, "values": self.values}

    def _commit(self, meta: dict[str, Any], changes: int) -> None:
        """Replace the metadata (last: until then the old one describes the old files)."""
        if meta["mode"] == "hnsw":
            self.keys_path.unlink(missing_ok=True)
        meta_tmp = self.meta_path.with_name(self.meta_path.name + ".tmp")
        meta_tmp.write_text(json.dumps(meta))
        graph_save.fsync_path(meta_tmp)
        os.replace(meta_tmp, self.meta_path)
        self._saved_changes = changes


def _kept(hits: list[tuple[int, float]], among: Among | None) -> list[tuple[int, float]]:
    if among is None:
        return hits
    kept = set(among([key for key, _ in hits]))
    return [hit for hit in hits if hit[0] in kept]


def _nothing() -> None:
    return None


def _load(path: Path, meta: dict[str, Any]) -> Vectors | None:
    if meta.get("mode", "hnsw") == "flat":
        return FlatVectors.load(path, dims=int(meta["dims"]),
                                count=int(meta["count"]),
                                checksums=(meta["crc32c"], meta["keys_crc32c"]))
    if graph_save.checksum(path) != (meta["size"], meta["crc32c"]):
        return None
    index = Index.restore(str(path))
    return index if index is not None and len(index) == meta["count"] else None


def _requantised(index: FlatVectors, beside: Path) -> FlatVectors:
    """The same vectors, held quantised (an upgrade of vectors saved as the model's floats)."""
    keys, rows = index.items()
    flat = FlatVectors(index.dims, beside, capacity=len(keys))
    flat.add([int(key) for key in keys], held(rows))
    return flat


def remove_files(path: Path) -> None:
    """Delete the vectors, their keys, their metadata and what unfinished saves left."""
    graph_save.remove_leftovers(path)
    path.unlink(missing_ok=True)
    keys_path(path).unlink(missing_ok=True)
    path.with_name(path.name + ".json").unlink(missing_ok=True)
