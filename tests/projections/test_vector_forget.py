"""A forgotten memory's vector leaves the saved usearch file, not only the index's key set."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from memlane.events.model import Embedded, ForgetRequested, Record
from memlane.projections.vector_store import VectorProjection

AT = datetime(2026, 1, 1, tzinfo=UTC)


def test_a_removed_vector_is_gone_from_the_saved_file_after_compaction(tmp_path: Path) -> None:
    """usearch keeps a removed vector's bytes in its file; compaction overwrites them, also
    in an index loaded from a file saved with the removal."""
    rng = np.random.default_rng(7)
    vectors = {k: rng.standard_normal(16).astype("<f4").tobytes() for k in (1, 2, 3)}
    records = [Record(seq=k, at=AT, event=Embedded(memory=k, vector=v, dims=16, model="t",
                                                   pipeline="t:16")) for k, v in vectors.items()]
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
    assert reloaded.search(np.frombuffer(vectors[3], dtype="<f4"), 1)[0][0] == 3
