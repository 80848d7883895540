"""A vector is listed by its size and form, never its values: `memlane log` and a memory's
history, for a model's floats and for a compacted run of codes."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from memlane.cli.logcmd import summarise
from memlane.daemon.domain.history import history
from memlane.events import model as m

AT = datetime(2026, 12, 4, tzinfo=UTC)
FLOATS = m.Record(seq=2, at=AT, event=m.Embedded(memory=1, vector=b"\x01" * 32, dims=8,
                                                  model="t", pipeline="t:8"))
RUN = m.Record(seq=9, at=AT, event=m.Embeddings(memories=(1, 5), codes=b"\x07" * 16,
                                                 scales=(0.5, 0.25), dims=8, model="t",
                                                 pipeline="t:8"))


def test_the_log_listing_shows_sizes_not_values() -> None:
    floats, run = summarise(FLOATS), summarise(RUN)
    assert floats["vector"] == "<8 floats>"
    assert run["codes"] == "<2 x 8 int8 codes>" and run["scales"] == "<2 scales>"
    assert run["memories"] == [1, 5]
    assert "\\u0007" not in json.dumps(run) and "\\u0001" not in json.dumps(floats)


def test_a_memorys_history_shows_its_compacted_vector_as_the_embedding_it_was() -> None:
    """Each memory of a run sees one ``embedded`` row of its own, with no values."""
    rows = history([FLOATS, RUN], 5)
    assert rows == [{"seq": 9, "at": AT.isoformat(), "type": "embedded", "memory": 5, "dims": 8,
                     "model": "t", "pipeline": "t:8", "vector": "<8 int8 codes>"}]
    assert [row["vector"] for row in history([FLOATS, RUN], 1)] == ["<8 floats>",
                                                                     "<8 int8 codes>"]
