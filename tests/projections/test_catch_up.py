"""Catching the projections up with the log."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from memlane.events.log import EventLog
from memlane.events.model import Embedded
from memlane.projections import catchup, graph_vectors, vector_store
from memlane.projections.catchup import Projections

from tests.events.test_log import write_log


def test_projections_at_the_log_end_read_no_segment(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    write_log(tmp_path / "log", 20)
    projections = Projections(tmp_path / "p.sqlite3", tmp_path / "vectors.usearch")
    assert projections.catch_up(tmp_path / "log", 20) == 20

    def no_reading(*args: object, **kwargs: object) -> None:
        raise AssertionError("the log was read with nothing to replay")

    monkeypatch.setattr(catchup, "read_log", no_reading)
    assert projections.catch_up(tmp_path / "log", 20) == 0
    projections.close()


def test_a_replay_past_the_flat_threshold_builds_its_graph_once_at_the_end(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No graph grown batch by batch: the vectors stay flat through the replay, then move
    into one graph holding them all."""
    monkeypatch.setattr(vector_store, "EXACT_BELOW", 40)
    monkeypatch.setattr(catchup, "CATCH_UP_BATCH", 10)
    log = EventLog.open(tmp_path / "log")
    rng = np.random.default_rng(5)
    for memory in range(1, 101):
        log.append([Embedded(memory=memory, vector=rng.standard_normal(8).astype("<f4").tobytes(),
                             dims=8, model="m", pipeline="m:8")])
    log.close()
    built: list[int] = []
    graph_of = graph_vectors.graph_of

    def counted(keys: np.ndarray, rows: np.ndarray) -> object:
        built.append(len(keys))
        return graph_of(keys, rows)

    monkeypatch.setattr(graph_vectors, "graph_of", counted)
    monkeypatch.setattr(graph_vectors, "add", lambda *a: pytest.fail("grown in steps"))
    projections = Projections(tmp_path / "p.sqlite3", tmp_path / "vectors.usearch")
    assert projections.catch_up(tmp_path / "log", 100) == 100
    assert built == [100] and projections.vectors.mode == "hnsw" and len(projections.vectors) == 100
    assert not projections.vectors.deferred and projections.vectors.dirty
    projections.close()
