"""Vectors as memlane holds them: int8 codes (and one float32 scale) per vector.

A live ``Embedded`` carries the model's float32 vector. The vector projection holds every vector
quantised: each value rounded to a multiple of the vector's largest magnitude / 127 (its scale),
the codes then scaled to unit length (search compares by cosine, and readers of the projection
take a dot product for one). Compaction writes the codes and the scale in place of the floats:
a quarter of the bytes, and a replay of the compacted log builds the very same projection (the
codes compaction keeps are those the projection computed from the floats, and the unit-length
form depends on the codes alone: the integer sum of their squares, so no rounding order).
Retrieval measured both ways on LoCoMo: test split recall@10 0.7581 with the floats and with
the codes (BENCHMARKS.md).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

CODE_MAX = 127
FLOAT = np.dtype("<f4")
CODE = np.dtype("i1")


def quantise(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Codes (int8, one row per vector) and scales (float32, one per vector) for ``rows``."""
    rows = np.asarray(rows, dtype=np.float32)
    scales = (np.abs(rows).max(axis=1, initial=0.0) / np.float32(CODE_MAX)).astype(np.float32)
    divisors = np.where(scales > 0, scales, np.float32(1))
    codes = np.clip(np.rint(rows / divisors[:, None]), -CODE_MAX, CODE_MAX).astype(CODE)
    return codes, scales


def unit(codes: np.ndarray) -> np.ndarray:
    """Codes as float32 rows of unit length (a zero row stays zero)."""
    wide = codes.astype(np.int32)  # a row's sum of squares fits below 133k dims
    sums = np.einsum("ij,ij->i", wide, wide)
    factors = np.zeros(len(codes), dtype=np.float64)
    np.divide(1.0, np.sqrt(sums), out=factors, where=sums > 0)
    return codes.astype(np.float32) * factors.astype(np.float32)[:, None]


def held(rows: np.ndarray) -> np.ndarray:
    """Float32 ``rows`` as memlane holds them (quantised, at unit length)."""
    return unit(quantise(rows)[0])


def codes_rows(vectors: Sequence[bytes], are_codes: Sequence[bool], dims: int) -> np.ndarray:
    """The int8 codes of event vectors: each either the model's float32 bytes or int8 codes
    as compaction writes them (their scale is not needed here)."""
    out = np.empty((len(vectors), dims), dtype=CODE)
    floats = [i for i, codes in enumerate(are_codes) if not codes]
    codes = [i for i, codes in enumerate(are_codes) if codes]
    if floats:
        out[floats] = quantise(np.frombuffer(b"".join(vectors[i] for i in floats), dtype=FLOAT)
                               .reshape(len(floats), dims))[0]
    if codes:
        out[codes] = np.frombuffer(b"".join(vectors[i] for i in codes), dtype=CODE) \
            .reshape(len(codes), dims)
    return out


def held_rows(vectors: Sequence[bytes], are_codes: Sequence[bool], dims: int) -> np.ndarray:
    """The float32 rows held for event vectors (:func:`codes_rows` at unit length)."""
    return unit(codes_rows(vectors, are_codes, dims))


def coded(vector: bytes, dims: int) -> tuple[bytes, float]:
    """A float32 vector's codes (as bytes) and scale: what compaction writes in its place."""
    codes, scales = quantise(np.frombuffer(vector, dtype=FLOAT).reshape(1, dims))
    return codes.tobytes(), float(scales[0])
