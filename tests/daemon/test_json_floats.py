"""Vectors answered as JSON floats: 9 significant digits, each parsing back to its float32."""

from __future__ import annotations

import json

import msgspec
import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from memlane.daemon.api.embeddings_api import json_floats

FLOAT32 = st.floats(width=32, allow_nan=False, allow_infinity=False)


@given(hnp.arrays(np.float32, st.tuples(st.integers(1, 4), st.integers(1, 48)),
                  elements=FLOAT32))
def test_every_float_parses_back_to_the_same_float32(vectors: np.ndarray) -> None:
    wire = msgspec.json.encode(json_floats(vectors))
    back = np.array(json.loads(wire), dtype=np.float32)
    assert np.array_equal(back, vectors)


def test_a_unit_vector_prints_at_most_nine_significant_digits() -> None:
    rng = np.random.default_rng(7)
    vector = rng.standard_normal((2, 384)).astype(np.float32)
    vector /= np.linalg.norm(vector, axis=1, keepdims=True)
    numbers = msgspec.json.encode(json_floats(vector)).decode().strip("[]").replace("]", "")
    for number in numbers.replace("[", "").split(","):
        digits = number.lstrip("-").split("e")[0].replace(".", "").lstrip("0")
        assert len(digits) <= 9, number


def test_float64_rows_are_answered_as_their_float32() -> None:
    """What the base64 answer carries: a float64 row is cast to float32 first."""
    rows = np.random.default_rng(3).standard_normal((3, 384))
    back = np.array(json.loads(msgspec.json.encode(json_floats(rows))), dtype=np.float32)
    assert np.array_equal(back, rows.astype(np.float32))
