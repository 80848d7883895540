"""Vectors as one float32 matrix with a parallel key array: exact search by a matrix product.

Below a few tens of thousands of vectors an exact scan is as fast as a graph search and costs
nothing to build. On disk the matrix and its keys are two raw little-endian files that a save
rewrites in place from the first row that changed (new rows are appended), so a save after a
few stores writes a few rows. A removal moves the last row into the freed slot; the save
overwrites that slot and zeroes the bytes past the new end before truncating, so a removed
vector's bytes are left in neither file.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import crc32c
import numpy as np

ROW_DTYPE = np.dtype("<f4")
KEY_DTYPE = np.dtype("<i8")


class FlatVectors:
    """Rows ``[0, count)`` of ``rows`` hold the vectors of ``keys[0:count]``."""

    def __init__(self, dims: int, capacity: int = 1024) -> None:
        self.dims = dims
        self._rows = np.zeros((capacity, dims), dtype=ROW_DTYPE)
        self._norms = np.zeros(capacity, dtype=np.float32)
        self._keys = np.zeros(capacity, dtype=KEY_DTYPE)
        self._row_of: dict[int, int] = {}
        self.count = 0
        self._changed_from = 0  # lowest row changed since the last save
        self._saved_rows = 0  # rows the files held after the last save

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
        self._rows[start:stop] = rows[picked]
        self._norms[start:stop] = np.linalg.norm(self._rows[start:stop], axis=1)
        self._keys[start:stop] = [key for key, _ in fresh]
        self._row_of.update((key, start + n) for n, (key, _) in enumerate(fresh))
        self.count = stop

    def _set(self, row: int, key: int, vector: np.ndarray) -> None:
        self._rows[row] = vector
        self._norms[row] = np.linalg.norm(self._rows[row])
        self._keys[row] = key
        self._row_of[key] = row
        self._changed_from = min(self._changed_from, row)

    def _reserve(self, needed: int) -> None:
        capacity = len(self._keys)
        if needed <= capacity:
            return
        capacity = max(needed, capacity * 2)
        rows = np.zeros((capacity, self.dims), dtype=ROW_DTYPE)
        rows[:self.count] = self._rows[:self.count]
        norms = np.zeros(capacity, dtype=np.float32)
        norms[:self.count] = self._norms[:self.count]
        keys = np.zeros(capacity, dtype=KEY_DTYPE)
        keys[:self.count] = self._keys[:self.count]
        self._rows, self._norms, self._keys = rows, norms, keys

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
        self._changed_from = min(self._changed_from, row)

    def search(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        """The ``k`` keys of highest cosine similarity to ``vector``, best first (exact)."""
        n = self.count
        k = min(k, n)
        if k <= 0:
            return []
        query = np.asarray(vector, dtype=np.float32).reshape(-1)
        return self._best(self._rows[:n] @ query, query, k)

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

    def checksums(self) -> tuple[int, int]:
        # read in place: a copy of 100k rows is 154 MB of fresh memory
        return (crc32c.crc32c(self._rows[:self.count].data),
                crc32c.crc32c(self._keys[:self.count].data))

    def save(self, path: Path, keys_path: Path, *, in_place: bool) -> None:
        """Write the rows and keys: in place from the first changed row when the files hold
        the last save, else to new files swapped in."""
        if in_place and path.exists() and keys_path.exists():
            start = min(self._changed_from, self._saved_rows)
            _rewrite_tail(path, self._rows, start, self.count, self._saved_rows)
            _rewrite_tail(keys_path, self._keys, start, self.count, self._saved_rows)
        else:
            for target, array in ((path, self._rows), (keys_path, self._keys)):
                tmp = target.with_name(target.name + ".tmp")
                with open(tmp, "wb") as f:
                    f.write(array[:self.count].data)  # the rows' bytes, not a copy
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, target)
        self._saved_rows = self._changed_from = self.count

    @classmethod
    def load(cls, path: Path, keys_path: Path, *, dims: int, count: int,
             checksums: Sequence[int]) -> FlatVectors | None:
        """The vectors saved at ``path``, or None if the files do not match their metadata."""
        rows = np.fromfile(path, dtype=ROW_DTYPE)
        keys = np.fromfile(keys_path, dtype=KEY_DTYPE)
        if len(rows) != count * dims or len(keys) != count:
            return None
        flat = cls(dims, capacity=max(count, 1024))
        flat.count = flat._saved_rows = flat._changed_from = count
        flat._rows[:count] = rows.reshape(count, dims)
        flat._norms[:count] = np.linalg.norm(flat._rows[:count], axis=1)
        flat._keys[:count] = keys
        flat._row_of = {int(key): row for row, key in enumerate(keys.tolist())}
        if list(flat.checksums()) != list(checksums) or len(flat._row_of) != count:
            return None
        return flat


def _unless_unit(norms: np.ndarray) -> np.ndarray | None:
    if np.all(np.abs(norms - 1) < 1e-5):
        return None
    return np.asarray(np.maximum(norms, np.float32(1e-30)))


def _rewrite_tail(path: Path, array: np.ndarray, start: int, count: int, old_count: int) -> None:
    """Rows ``[start, count)`` written over the file in place; rows past ``count`` zeroed,
    then cut off."""
    row_bytes = array.itemsize * (array.shape[1] if array.ndim == 2 else 1)
    with open(path, "r+b") as f:
        f.seek(start * row_bytes)
        f.write(array[start:count].data)
        if old_count > count:
            f.write(bytes((old_count - count) * row_bytes))
        f.flush()
        os.fsync(f.fileno())
        f.truncate(count * row_bytes)
        os.fsync(f.fileno())
