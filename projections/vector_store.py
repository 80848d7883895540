"""The usearch projection: one vector per memory id for the active embedding pipeline.

The index is saved atomically beside a small JSON file recording the seq it reflects and the
index file's size and CRC32C; a missing, stale or mismatched index is rebuilt from the log.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple, assert_never

import crc32c
import numpy as np

# usearch's wheel carries its own copy of libstdc++; loaded before onnxruntime, it makes
# `import onnxruntime` crash (SIGSEGV; usearch 2.26, onnxruntime 1.32). Load onnxruntime first.
import onnxruntime  # type: ignore[import-untyped]  # noqa: F401  isort: skip
from usearch.index import Index  # isort: skip

from memlane.events.model import Embedded, ForgetRequested, Forgotten, ModelChanged, Record


EXACT_BELOW = 50_000  # below this many vectors a search scans them all (exact, and fast)
FILLER_KEY = 2**63 - 1  # throwaway keys count down from here, far above any memory id (a seq)

class AddVector(NamedTuple):
    key: int
    vector: bytes
    dims: int
    pipeline: str


class RemoveVector(NamedTuple):
    key: int


class ResetIndex(NamedTuple):
    pipeline: str
    dims: int


VectorOp = AddVector | RemoveVector | ResetIndex


def vector_ops(record: Record) -> list[VectorOp]:
    """The pure fold: what one record does to the vector index."""
    event = record.event
    match event:
        case Embedded() if event.vector:
            return [AddVector(event.memory, event.vector, event.dims, event.pipeline)]
        case ForgetRequested():
            return [RemoveVector(m) for m in event.memories]
        case Forgotten():
            return [RemoveVector(event.memory)]
        case ModelChanged():
            return [ResetIndex(event.pipeline, event.dims)]
        case _:
            return []


class VectorProjection:
    """A usearch index plus the pipeline it holds and the last seq applied to it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.meta_path = path.with_name(path.name + ".json")
        self.pipeline: str | None = None
        self.applied_seq = 0
        self.index: Index | None = None
        self.dirty = False

    def move_to(self, path: Path) -> None:
        """Save to ``path`` from now on (the in-memory index is unchanged)."""
        self.path = path
        self.meta_path = path.with_name(path.name + ".json")
        self.dirty = True

    def load(self) -> bool:
        """Load the saved index if it matches its metadata; False means rebuild from seq 1."""
        try:
            meta = json.loads(self.meta_path.read_text())
            data = self.path.read_bytes()
            if len(data) != meta["size"] or crc32c.crc32c(data) != meta["crc32c"]:
                return False
            self.index = Index.restore(str(self.path))
            if self.index is None or len(self.index) != meta["count"]:
                return False
        except (OSError, ValueError, KeyError, RuntimeError):
            self.index = None
            return False
        self.pipeline, self.applied_seq = meta["pipeline"], int(meta["applied_seq"])
        return True

    def apply(self, records: Sequence[Record]) -> None:
        for record in records:
            for op in vector_ops(record):
                self._apply_op(op)
        if records:
            self.applied_seq = records[-1].seq
            self.dirty = True

    def _apply_op(self, op: VectorOp) -> None:
        match op:
            case ResetIndex():
                if op.pipeline != self.pipeline:
                    self.pipeline, self.index = op.pipeline, _new_index(op.dims)
            case AddVector():
                if self.pipeline is None:
                    self.pipeline, self.index = op.pipeline, _new_index(op.dims)
                if op.pipeline != self.pipeline or self.index is None:
                    return
                if op.key in self.index:
                    self.index.remove(op.key)
                self.index.add(op.key, np.frombuffer(op.vector, dtype="<f4"))
            case RemoveVector():
                if self.index is not None and op.key in self.index:
                    self.index.remove(op.key)
            case _:
                assert_never(op)

    def search(self, vector: np.ndarray, k: int, *,
               exact: bool | None = None) -> list[tuple[int, float]]:
        """Nearest memory ids with cosine similarity, best first (an exact scan below
        :data:`EXACT_BELOW` vectors unless ``exact`` says otherwise)."""
        if self.index is None or len(self.index) == 0:
            return []
        if exact is None:
            exact = len(self.index) < EXACT_BELOW
        matches = self.index.search(vector, min(k, len(self.index)), exact=exact)
        return [(int(key), 1.0 - float(dist)) for key, dist in zip(matches.keys, matches.distances)]

    def vector(self, key: int) -> np.ndarray | None:
        if self.index is None or key not in self.index:
            return None
        return np.asarray(self.index.get(key), dtype=np.float32)

    def vectors(self, keys: Sequence[int]) -> tuple[list[int], np.ndarray]:
        """The keys among ``keys`` that have a vector, and their vectors (rows in that order)."""
        present = [k for k in keys if self.index is not None and k in self.index]
        if not present or self.index is None:
            return [], np.zeros((0, 0), dtype=np.float32)
        rows = np.asarray(self.index.get(present), dtype=np.float32).reshape(len(present), -1)
        return present, rows

    def compact(self) -> None:
        """Overwrite the bytes of removed vectors: usearch keeps a removed vector in its slot
        (and in the saved file) until an add reuses the slot, so one throwaway vector is added
        per free slot and removed again. Rebuilding the graph instead would take a minute per
        20k vectors; tests/projections/test_vector_forget.py checks the bytes are gone."""
        if self.index is None:
            return
        free = int(self.index.stats.nodes) - len(self.index)
        if free <= 0:
            return
        keys = np.arange(FILLER_KEY - free + 1, FILLER_KEY + 1, dtype=np.uint64)
        filler = np.full((free, self.index.ndim), 1e-3, dtype=np.float32)
        self.index.add(keys, filler)
        for key in keys:
            self.index.remove(int(key))
        self.dirty = True

    def __len__(self) -> int:
        return 0 if self.index is None else len(self.index)

    def save(self) -> None:
        """Write the index and its metadata atomically (index first, metadata last)."""
        if self.index is None:
            self.path.unlink(missing_ok=True)
            self.meta_path.unlink(missing_ok=True)
            return
        tmp = self.path.with_name(self.path.name + ".tmp")
        self.index.save(str(tmp))
        _fsync_path(tmp)
        data = tmp.read_bytes()
        os.replace(tmp, self.path)
        meta = {"applied_seq": self.applied_seq, "pipeline": self.pipeline, "count": len(self.index),
                "size": len(data), "crc32c": crc32c.crc32c(data)}
        meta_tmp = self.meta_path.with_name(self.meta_path.name + ".tmp")
        meta_tmp.write_text(json.dumps(meta))
        _fsync_path(meta_tmp)
        os.replace(meta_tmp, self.meta_path)
        self.dirty = False


def _new_index(dims: int) -> Index:
    return Index(ndim=dims, metric="cos", dtype="f32")


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_files(path: Path) -> None:
    """Delete the index and its metadata."""
    path.unlink(missing_ok=True)
    path.with_name(path.name + ".json").unlink(missing_ok=True)
