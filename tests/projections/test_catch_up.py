"""Catching the projections up with the log."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import numpy as np
import pytest

from memlane.events.log import EventLog, read_log
from memlane.events.model import Embedded, Record
from memlane.projections import catchup, graph_vectors, vector_store
from memlane.projections.catchup import Projections
from memlane.projections.sqlite_store import PreparedBatch

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


def write_vectors(directory: Path, count: int) -> None:
    log = EventLog.open(directory)
    rng = np.random.default_rng(5)
    for memory in range(1, count + 1):
        log.append([Embedded(memory=memory, vector=rng.standard_normal(8).astype("<f4").tobytes(),
                             dims=8, model="m", pipeline="m:8")])
    log.close()


def counted_builds(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of every graph built in one batch from now on."""
    built: list[int] = []
    graph_of = graph_vectors.graph_of

    def counted(keys: np.ndarray, rows: np.ndarray) -> object:
        built.append(len(keys))
        return graph_of(keys, rows)

    monkeypatch.setattr(graph_vectors, "graph_of", counted)
    return built


def test_a_replay_past_the_flat_threshold_builds_its_graph_once_at_the_end(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No graph grown batch by batch: the vectors stay flat through the replay, then move
    into one graph holding them all."""
    monkeypatch.setattr(vector_store, "EXACT_BELOW", 40)
    monkeypatch.setattr(catchup, "CATCH_UP_BATCH", 10)
    write_vectors(tmp_path / "log", 100)
    built = counted_builds(monkeypatch)
    monkeypatch.setattr(graph_vectors, "add", lambda *a: pytest.fail("grown in steps"))
    projections = Projections(tmp_path / "p.sqlite3", tmp_path / "vectors.usearch")
    assert projections.catch_up(tmp_path / "log", 100) == 100
    assert built == [100] and projections.vectors.mode == "hnsw" and len(projections.vectors) == 100
    assert not projections.vectors.deferred and projections.vectors.dirty
    projections.close()


def test_a_replay_holds_floats_only_up_to_its_bound(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A flat matrix holds floats: past DEFERRED_UP_TO vectors the replay builds its graph
    and goes on adding to it."""
    monkeypatch.setattr(vector_store, "EXACT_BELOW", 40)
    monkeypatch.setattr(vector_store, "DEFERRED_UP_TO", 60)
    monkeypatch.setattr(catchup, "CATCH_UP_BATCH", 10)
    write_vectors(tmp_path / "log", 100)
    built = counted_builds(monkeypatch)
    projections = Projections(tmp_path / "p.sqlite3", tmp_path / "vectors.usearch")
    assert projections.catch_up(tmp_path / "log", 100) == 100
    assert built == [60] and projections.vectors.mode == "hnsw" and len(projections.vectors) == 100
    projections.close()


def test_a_replay_that_fails_builds_no_graph_on_its_way_out(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """An interrupted catch-up (a full disk, Ctrl-C on a rebuild) does not first spend the
    time of a graph build; the next addition settles the layout."""
    monkeypatch.setattr(vector_store, "EXACT_BELOW", 40)
    monkeypatch.setattr(catchup, "CATCH_UP_BATCH", 10)
    write_vectors(tmp_path / "log", 100)
    built = counted_builds(monkeypatch)
    projections = Projections(tmp_path / "p.sqlite3", tmp_path / "vectors.usearch")
    apply = projections.vectors.apply

    def interrupted(records: list) -> None:
        if records[0].seq > 60:
            raise KeyboardInterrupt
        apply(records)

    monkeypatch.setattr(projections.vectors, "apply", interrupted)
    with pytest.raises(KeyboardInterrupt):
        projections.catch_up(tmp_path / "log", 100)
    assert built == [] and projections.vectors.mode == "flat"
    assert len(projections.vectors) == 60 and not projections.vectors.deferred
    projections.close()


def test_a_batch_commits_to_sqlite_while_its_vectors_are_applied(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The two projections catch up side by side: each SQLite commit waits until the vectors
    of its batch are being applied, which a catch-up that ran them in turn never reaches."""
    monkeypatch.setattr(catchup, "CATCH_UP_BATCH", 10)
    write_vectors(tmp_path / "log", 30)
    projections = Projections(tmp_path / "p.sqlite3", tmp_path / "vectors.usearch")
    applying = {seq: threading.Event() for seq in (1, 11, 21)}
    commit, apply = projections.sqlite.commit, projections.vectors.apply

    def commit_beside(batch: PreparedBatch) -> None:
        assert applying[batch.first_seq].wait(10), "the vectors waited for the commit"
        commit(batch)

    def apply_beside(records: list[Record]) -> None:
        applying[records[0].seq].set()
        apply(records)

    monkeypatch.setattr(projections.sqlite, "commit", commit_beside)
    monkeypatch.setattr(projections.vectors, "apply", apply_beside)
    assert projections.catch_up(tmp_path / "log", 30) == 30
    assert projections.sqlite.applied_seq == projections.vectors.applied_seq == 30
    projections.close()


def test_a_commit_that_fails_in_its_thread_fails_the_catch_up_and_the_next_one_completes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The error of a commit in its thread is the catch-up's; the vectors may be a batch
    ahead, and the next catch-up brings both to the end."""
    monkeypatch.setattr(catchup, "CATCH_UP_BATCH", 10)
    write_vectors(tmp_path / "log", 30)
    projections = Projections(tmp_path / "p.sqlite3", tmp_path / "vectors.usearch")
    commit = projections.sqlite.commit

    def failing(batch: PreparedBatch) -> None:
        if batch.first_seq == 11:
            raise sqlite3.OperationalError("disk I/O error")
        commit(batch)

    monkeypatch.setattr(projections.sqlite, "commit", failing)
    with pytest.raises(sqlite3.OperationalError, match="disk I/O"):
        projections.catch_up(tmp_path / "log", 30)
    assert projections.sqlite.applied_seq == 10
    monkeypatch.setattr(projections.sqlite, "commit", commit)
    assert projections.catch_up(tmp_path / "log", 30) > 0
    assert projections.sqlite.applied_seq == projections.vectors.applied_seq == 30
    assert len(projections.vectors) == 30
    projections.close()


def test_an_interrupt_while_a_commit_fails_is_raised_as_the_interrupt(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C during the vectors' apply stays a KeyboardInterrupt though the commit beside it
    fails meanwhile."""
    monkeypatch.setattr(catchup, "CATCH_UP_BATCH", 10)
    write_vectors(tmp_path / "log", 20)
    projections = Projections(tmp_path / "p.sqlite3", tmp_path / "vectors.usearch")
    failed = threading.Event()

    def failing(batch: PreparedBatch) -> None:
        failed.set()
        raise sqlite3.OperationalError("disk I/O error")

    def interrupted(records: list[Record]) -> None:
        failed.wait(10)
        raise KeyboardInterrupt

    monkeypatch.setattr(projections.sqlite, "commit", failing)
    monkeypatch.setattr(projections.vectors, "apply", interrupted)
    with pytest.raises(KeyboardInterrupt):
        projections.catch_up(tmp_path / "log", 20)
    projections.reads.close()
    projections.sqlite.close()


@pytest.mark.parametrize("graph", [False, True], ids=["flat", "graph"])
def test_a_copy_of_the_saved_vectors_sees_no_apply_after_the_save(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, graph: bool) -> None:
    """A backup copies the files as saved: an apply that comes meanwhile waits for the copy
    of a flat matrix (it writes into its files); a graph's files change only when saved."""
    if graph:
        monkeypatch.setattr(vector_store, "EXACT_BELOW", 20)
    write_vectors(tmp_path / "log", 40)
    projections = Projections(tmp_path / "p.sqlite3", tmp_path / "v.usearch")
    projections.catch_up(tmp_path / "log", 30)
    later = list(read_log(tmp_path / "log", 31))
    applied = threading.Event()
    copies = tmp_path / "copy"
    copies.mkdir()

    def copy() -> None:
        assert not projections.vectors.dirty  # saved just before
        meanwhile = threading.Thread(target=lambda: (projections.apply(later), applied.set()))
        meanwhile.start()
        applied.wait(10 if graph else 0.3)  # a graph's apply goes through; a flat one waits
        for path in tmp_path.glob("v.usearch*"):
            (copies / path.name).write_bytes(path.read_bytes())
        copied.append(applied.is_set())

    copied: list[bool] = []
    projections.save_vectors(then=copy)
    assert applied.wait(10) and projections.vectors.applied_seq == 40
    assert copied == [graph]  # the graph's apply did not wait: its files stayed as saved
    backup = vector_store.VectorProjection(copies / "v.usearch")
    assert backup.load() and backup.applied_seq == 30 and len(backup) == 30
    projections.close()
