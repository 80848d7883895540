"""Vectors as one float32 matrix with a parallel key array, both mapped from their files:
exact search by a matrix product, nothing to build, and nothing to copy at a load or a save.

Below a few tens of thousands of vectors an exact scan is as fast as a graph search. The rows
and the keys are two raw little-endian files mapped shared and sized to a capacity (doubled as
it fills; what lies past the count is zeros). An add writes its rows into the files' pages and
a removal moves the last row into the freed slot and zeroes the last, so a removed vector's
bytes stay in neither file. A save flushes the pages to disk; the metadata written after it
(count and checksums, :mod:`memlane.projections.vector_store`) says which rows it saved.
Between saves the files run ahead of that: a kill leaves rows past the saved count (the load
zeroes them) or, after a removal, rows that fail the checksum (the vectors are replayed).

A new matrix lives in temporary files of its own beside its target, moved over the target's
files by its first save: until then the files there keep what their metadata describes.
Blocks are reserved as the files grow, so a full disk is an error at the growth, never a
``SIGBUS`` at a write into the mapping.
"""

from __future__ import annotations

import errno
import itertools
import mmap
import os
import weakref
from collections.abc import Sequence
from pathlib import Path

import crc32c
import numpy as np

from memlane.projections.split_scan import split_scan

ROW_DTYPE = np.dtype("<f4")
KEY_DTYPE = np.dtype("<i8")
MIN_CAPACITY = 64  # rows: a small store reserves little (growing costs no copy)
_fresh_names = itertools.count(1)


class FlatVectors:
    """Rows ``[0, count)`` of the mapped rows hold the vectors of ``keys[0:count]``."""

    def __init__(self, dims: int, beside: Path, capacity: int = MIN_CAPACITY) -> None:
        """An empty matrix whose first save goes to ``beside`` (until then: new files there)."""
        self.dims = dims
        self.count = 0
        self._row_of: dict[int, int] = {}
        fresh = f"{beside.name}.flat-{os.getpid()}-{next(_fresh_names)}"
        self._files = (beside.with_name(f"{fresh}.tmp"), beside.with_name(f"{fresh}.keys.tmp"))
        # never saved, its files go with it (a save moves them away first)
        weakref.finalize(self, _unlink, *self._files)
        self._norms = np.zeros(0, dtype=np.float32)
        self._map(max(capacity, MIN_CAPACITY))

    def _map(self, capacity: int) -> None:
        """Map the files at ``capacity`` rows (grown to it if shorter); the norms (in memory)
        follow."""
        self._mappings = (_mapped(self._files[0], ROW_DTYPE, capacity * self.dims),
                          _mapped(self._files[1], KEY_DTYPE, capacity))
        self._rows = np.frombuffer(self._mappings[0], dtype=ROW_DTYPE).reshape(capacity, self.dims)
        self._keys = np.frombuffer(self._mappings[1], dtype=KEY_DTYPE)
        norms = np.zeros(capacity, dtype=np.float32)
        norms[:self.count] = self._norms[:self.count]
        self._norms = norms

    def __len__(self) -> int:
        return self.count

    def __contains__(self, key: int) -> bool:
        return key in self._row_of

    def add(self, keys: Sequence[int], rows: np.ndarray) -> None:
        """Insert or replace the vectors of ``keys`` (a later duplicate wins)."""
        latest = {int(key): i for i, key in enumerate(keys)}
        fresh = []
        for key, i in latest.items():
            row = self._row_of.get(key)
            if row is None:
                fresh.append((key, i))
            else:
                self._set(row, key, rows[i])
        if not fresh:
            return
        self._reserve(self.count + len(fresh))
        start, stop = self.count, self.count + len(fresh)
        picked = np.fromiter((i for _, i in fresh), dtype=np.int64, count=len(fresh))
        self._keys[start:stop] = [key for key, _ in fresh]  # first: see _clear_past_count
        self._rows[start:stop] = rows[picked]
        self._norms[start:stop] = np.linalg.norm(self._rows[start:stop], axis=1)
        self._row_of.update((key, start + n) for n, (key, _) in enumerate(fresh))
        self.count = stop

    def _set(self, row: int, key: int, vector: np.ndarray) -> None:
        self._rows[row] = vector
        self._norms[row] = np.linalg.norm(self._rows[row])
        self._keys[row] = key
        self._row_of[key] = row

    def _reserve(self, needed: int) -> None:
        """Room for ``needed`` rows: the files grow (doubling) and are mapped again, with no
        row copied (the old mapping goes with its last view)."""
        if needed > len(self._keys):
            self._map(max(needed, 2 * len(self._keys)))

    def remove(self, key: int) -> None:
        """Drop ``key``'s vector: the last row moves into its slot, the old last row is zeroed."""
        row = self._row_of.pop(key, None)
        if row is None:
            return
        last = self.count - 1
        if row != last:
            self._set(row, int(self._keys[last]), self._rows[last])
        self._rows[last] = 0
        self._norms[last] = 0
        self._keys[last] = 0
        self.count = last

    def search(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        """The ``k`` keys of highest cosine similarity to ``vector``, best first (exact)."""
        n = self.count
        k = min(k, n)
        if k <= 0:
            return []
        query = np.asarray(vector, dtype=np.float32).reshape(-1)
        return self._best(split_scan.scores(self._rows[:n], query), query, k)

    def search_many(self, vectors: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
        """:meth:`search` for each row of ``vectors``, scored in one matrix product (a batch
        of new memories looks for its neighbours at once). A matrix product rounds otherwise
        than a matrix-vector one: scores may differ from :meth:`search`'s by ~1e-7."""
        n = self.count
        if min(k, n) <= 0 or not len(vectors):
            return [[] for _ in range(len(vectors))]
        queries = np.asarray(vectors, dtype=np.float32).reshape(len(vectors), -1)
        scores = queries @ self._rows[:n].T
        return [self._best(row, query, min(k, n)) for row, query in zip(scores, queries)]

    def _best(self, scores: np.ndarray, query: np.ndarray, k: int) -> list[tuple[int, float]]:
        """The ``k`` best of one query's dot products with the first rows, as cosines.
        Unit vectors (what the embedder gives) are scored by the dot product alone, so the
        order equals a plain exact scan's; others are divided by their norms (cosine)."""
        n = len(scores)
        scale = _unless_unit(self._norms[:n] * np.float32(np.linalg.norm(query)))
        if scale is not None:
            scores = scores / scale
        best = np.argpartition(-scores, k - 1)[:k] if k < n else np.arange(n)
        best = best[np.argsort(-scores[best], kind="stable")]
        return list(zip(self._keys[best].tolist(), scores[best].tolist(), strict=True))

    def get(self, keys: Sequence[int]) -> tuple[list[int], np.ndarray]:
        """The keys among ``keys`` that have a vector, and their rows (copies, in that order)."""
        present = [key for key in keys if key in self._row_of]
        rows = self._rows[[self._row_of[key] for key in present]] if present else \
            np.zeros((0, self.dims), dtype=np.float32)
        return present, rows

    def items(self) -> tuple[np.ndarray, np.ndarray]:
        """Every key and its row (views: valid until the next change)."""
        return self._keys[:self.count], self._rows[:self.count]

    def _clear_past_count(self, rows_in: int) -> None:
        """Zero what a process killed after its last save had added past the rows counted, so
        no vector forgotten since outlives its forget there. An add writes its keys before its
        rows: the last key set tells how far rows were written. Nothing is cut off (that would
        free space: a start on a full disk must still see it full)."""
        written = np.flatnonzero(self._keys[self.count:rows_in])
        if written.size:
            end = self.count + int(written[-1]) + 1
            self._rows[self.count:end] = 0
            self._keys[self.count:end] = 0

    def checksums(self) -> tuple[int, int]:
        # read in place: a copy of 100k rows is 154 MB of fresh memory
        return (crc32c.crc32c(self._rows[:self.count].data),
                crc32c.crc32c(self._keys[:self.count].data))

    def save(self, path: Path) -> None:
        """Flush the rows and keys to disk; files still elsewhere than ``path`` (a new matrix,
        or one moved) are then moved over the files there."""
        for mapping in self._mappings:
            mapping.flush()
        if self._files[0] != path:
            os.replace(self._files[1], keys_path(path))
            os.replace(self._files[0], path)
            self._files = (path, keys_path(path))

    @classmethod
    def load(cls, path: Path, *, dims: int, count: int,
             checksums: Sequence[int]) -> FlatVectors | None:
        """The vectors saved at ``path`` (mapped in place), or None if the files do not hold
        the ``count`` rows their metadata describes; rows written past them are zeroed."""
        files = (path, keys_path(path))
        rows_in = min(_length(files[0]) // (ROW_DTYPE.itemsize * dims),
                      _length(files[1]) // KEY_DTYPE.itemsize)
        if rows_in < count:
            return None
        if count == 0:
            return cls(dims, path)
        flat = cls.__new__(cls)
        flat.dims, flat.count, flat._files = dims, 0, files
        flat._norms = np.zeros(0, dtype=np.float32)
        flat._map(rows_in)
        flat.count = count
        if list(flat.checksums()) != list(checksums):
            return None  # the files left as found
        flat._clear_past_count(rows_in)
        flat._norms[:count] = np.linalg.norm(flat._rows[:count], axis=1)
        flat._row_of = {int(key): row for row, key in enumerate(flat._keys[:count].tolist())}
        return flat if len(flat._row_of) == count else None


def keys_path(path: Path) -> Path:
    """Where the flat layout keeps its key array, beside the vectors at ``path``."""
    return path.with_name(path.name + ".keys")


def _mapped(path: Path, dtype: np.dtype[np.generic], length: int) -> mmap.mmap:
    """The file at ``path`` mapped shared as ``length`` items (created, or grown with zeros,
    to that size first)."""
    size = length * dtype.itemsize
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if os.fstat(fd).st_size < size:
            _reserve_blocks(fd, size)
        return mmap.mmap(fd, size)
    finally:
        os.close(fd)


def _reserve_blocks(fd: int, size: int) -> None:
    """Grow the file to ``size``, its blocks allocated where the system can (macOS has no
    ``posix_fallocate``; some file systems refuse it)."""
    if hasattr(os, "posix_fallocate"):
        try:
            os.posix_fallocate(fd, 0, size)
            return
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
                raise
    os.ftruncate(fd, size)


def _length(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return -1


def _unlink(*paths: Path) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


def _unless_unit(norms: np.ndarray) -> np.ndarray | None:
    if np.all(np.abs(norms - 1) < 1e-5):
        return None
    return np.asarray(np.maximum(norms, np.float32(1e-30)))
