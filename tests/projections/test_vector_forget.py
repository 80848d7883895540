"""A forgotten memory's vector leaves the saved usearch file, not only the index's key set."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np

import pytest

from memlane.events.model import Embedded, ForgetRequested, Record
from memlane.events.vector_codes import held, quantise
from memlane.projections import vector_store
from memlane.projections.vector_store import VectorProjection

AT = datetime(2026, 1, 1, tzinfo=UTC)


def test_a_removed_vector_is_gone_from_the_saved_file_after_compaction(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """usearch keeps a removed vector's bytes (the graph holds int8 codes) in its file;
    compaction overwrites them, also in an index loaded from a file saved with the removal."""
    monkeypatch.setattr(vector_store, "EXACT_BELOW", 0)  # the usearch graph, however small
    rng = np.random.default_rng(7)
    floats = {k: rng.standard_normal(16).astype("<f4") for k in (1, 2, 3)}
    records = [Record(seq=k, at=AT, event=Embedded(memory=k, vector=v.tobytes(), dims=16, model="t",
                                                   pipeline="t:16")) for k, v in floats.items()]
    vectors = {k: quantise(v.reshape(1, -1))[0].tobytes() for k, v in floats.items()}  # codes
    projection = VectorProjection(tmp_path / "vectors.usearch")
    projection.apply([*records, Record(seq=4, at=AT, event=ForgetRequested(memories=(2,)))])
    projection.save()
    assert vectors[2] in projection.path.read_bytes()  # why compaction is needed
    projection = VectorProjection(projection.path)
    assert projection.load()
    projection.compact()
    projection.save()
    data = projection.path.read_bytes()
    assert vectors[2] not in data and vectors[1] in data and vectors[3] in data
    reloaded = VectorProjection(projection.path)
    assert reloaded.load() and len(reloaded) == 2
    assert reloaded.search(floats[3], 1)[0][0] == 3


def test_the_flat_matrix_keeps_no_removed_vector_in_its_file(tmp_path: Path) -> None:
    """Below the graph's size the vectors are a flat matrix: a save after a removal leaves
    the removed vector's bytes nowhere in the file (compaction has nothing to do)."""
    rng = np.random.default_rng(8)
    floats = {k: rng.standard_normal(16).astype("<f4") for k in (1, 2, 3)}
    records = [Record(seq=k, at=AT, event=Embedded(memory=k, vector=v.tobytes(), dims=16, model="t",
                                                   pipeline="t:16")) for k, v in floats.items()]
    vectors = {k: held(v.reshape(1, -1)).tobytes() for k, v in floats.items()}  # as held
    projection = VectorProjection(tmp_path / "vectors.usearch")
    projection.apply([*records, Record(seq=4, at=AT, event=ForgetRequested(memories=(2,)))])
    assert projection.mode == "flat"
    projection.save()
    data = projection.path.read_bytes()
    assert vectors[2] not in data and vectors[1] in data and vectors[3] in data
