"""Vectors held as int8 codes: close to the model's, and the same from floats or from codes."""

from __future__ import annotations

import numpy as np

from memlane.events.vector_codes import CODE_MAX, coded, held, held_rows

DIMS = 384


def unit_rows(count: int, seed: int = 0) -> np.ndarray:
    rows = np.random.default_rng(seed).standard_normal((count, DIMS)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_a_held_vector_points_where_the_models_did() -> None:
    """Every held row has unit length and a cosine of at least 0.9999 to the model's vector."""
    rows = unit_rows(2000)
    kept = held(rows)
    assert np.allclose(np.linalg.norm(kept, axis=1), 1.0, atol=1e-6)
    assert float((kept * rows).sum(axis=1).min()) >= 0.9999


def test_codes_are_a_quarter_of_the_floats_and_read_back_as_the_same_rows() -> None:
    """What compaction writes (codes and a scale) is held bit for bit as the floats were,
    one at a time or in a batch mixing both forms; a zero vector stays zero."""
    rows = np.vstack([unit_rows(50, seed=1), np.zeros((1, DIMS), dtype=np.float32),
                      3.5 * unit_rows(1, seed=2)])
    floats = [row.astype("<f4").tobytes() for row in rows]
    codes = [coded(vector, DIMS) for vector in floats]
    assert all(len(c) == DIMS and len(f) == 4 * DIMS for (c, _), f in zip(codes, floats))
    assert all(np.abs(np.frombuffer(c, dtype="i1")).max(initial=0) <= CODE_MAX for c, _ in codes)
    from_floats = held_rows(floats, [False] * len(floats), DIMS)
    from_codes = held_rows([c for c, _ in codes], [True] * len(codes), DIMS)
    assert from_floats.tobytes() == from_codes.tobytes()
    mixed = held_rows([codes[0][0], floats[1], codes[2][0]], [True, False, True],
                      DIMS)
    assert mixed.tobytes() == from_floats[:3].tobytes()
    assert all(held_rows([f], [False], DIMS).tobytes() == from_floats[i].tobytes()
               for i, f in enumerate(floats))
    assert not from_codes[50].any() and codes[50][1] == 0.0
    assert np.allclose(np.frombuffer(codes[51][0], dtype="i1") * codes[51][1], rows[51],
                       atol=codes[51][1])  # the scale gives the values back, not only the direction
