"""The HNSW graph is saved by a forked child: same file, old files kept when a save fails."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from structlog.testing import capture_logs

from memlane.events.model import Embedded, Record
from memlane.events.vector_codes import held
from memlane.projections import vector_store
from memlane.projections.vector_store import Index, VectorProjection  # onnxruntime first

AT = datetime(2026, 12, 3, tzinfo=UTC)
DIMS = 16
ORIGINAL_SAVE = Index.save


def embedded(seq: int, rows: np.ndarray) -> Record:
    return Record(seq=seq, at=AT, event=Embedded(
        memory=seq, vector=rows[seq - 1].astype("<f4").tobytes(), dims=DIMS, model="m",
        pipeline="m:16"))


@pytest.fixture
def rows(monkeypatch: pytest.MonkeyPatch) -> np.ndarray:
    monkeypatch.setattr(vector_store, "EXACT_BELOW", 0)  # the usearch graph, however small
    return np.random.default_rng(3).standard_normal((40, DIMS)).astype(np.float32)


def graph(tmp_path: Path, rows: np.ndarray, upto: int) -> VectorProjection:
    projection = VectorProjection(tmp_path / "vectors.usearch")
    projection.apply([embedded(seq, rows) for seq in range(1, upto + 1)])
    assert projection.mode == "hnsw"
    return projection


def saving_in_child(act: str):  # type: ignore[no-untyped-def]
    """An ``Index.save`` that does ``act`` ("fail" or "die") when run in a forked child and
    saves as usual in this process."""
    parent = os.getpid()

    def save(index: Index, path: str) -> None:
        if os.getpid() != parent:
            Path(path).write_bytes(b"partial")
            if act == "die":
                os.kill(os.getpid(), signal.SIGKILL)
            raise OSError("no space left on device")
        ORIGINAL_SAVE(index, path)
    return save


def test_the_graph_is_written_by_a_child_and_restores_to_the_same_index(
        tmp_path: Path, rows: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> None:
    """The file comes from another process and loads back with every key and vector."""
    writers = tmp_path / "writers"

    def save(index: Index, path: str) -> None:
        with open(writers, "a") as out:
            out.write(f"{os.getpid()}\n")
        ORIGINAL_SAVE(index, path)

    monkeypatch.setattr(Index, "save", save)
    projection = graph(tmp_path, rows, 30)
    projection.save()
    assert [int(pid) for pid in writers.read_text().split()] != [os.getpid()]
    reloaded = VectorProjection(projection.path)
    assert reloaded.load() and reloaded.applied_seq == 30 and reloaded.mode == "hnsw"
    keys, vectors = reloaded.vectors(list(range(1, 31)))
    assert keys == list(range(1, 31)) and np.array_equal(vectors, held(rows[:30]))
    assert reloaded.search(rows[12], 1)[0][0] == 13
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "vectors.usearch", "vectors.usearch.json", "writers"]


def test_changes_while_the_child_writes_stay_out_of_the_file_and_keep_it_dirty(
        tmp_path: Path, rows: np.ndarray) -> None:
    """The child saves the index as it was at the fork; what is applied meanwhile is saved
    by the next save."""
    projection = graph(tmp_path, rows, 30)
    finish = projection.begin_save()
    projection.apply([embedded(seq, rows) for seq in range(31, 41)])
    finish()
    assert projection.dirty
    reloaded = VectorProjection(projection.path)
    assert reloaded.load() and reloaded.applied_seq == 30 and len(reloaded) == 30
    projection.save()
    assert not projection.dirty
    reloaded = VectorProjection(projection.path)
    assert reloaded.load() and reloaded.applied_seq == 40 and len(reloaded) == 40


@pytest.mark.parametrize(("act", "reason"), [("fail", "exited with status 1"),
                                             ("die", "was killed by signal 9")])
def test_a_failed_child_is_reported_and_the_graph_saved_in_process(
        tmp_path: Path, rows: np.ndarray, monkeypatch: pytest.MonkeyPatch,
        act: str, reason: str) -> None:
    """A child that fails or is killed leaves a log line and no file; the save is done here."""
    monkeypatch.setattr(Index, "save", saving_in_child(act))
    projection = graph(tmp_path, rows, 30)
    with capture_logs() as logs:
        projection.save()
    assert [(e["event"], e["reason"]) for e in logs] == [("vector_save_child_failed", reason)]
    assert not projection.dirty
    reloaded = VectorProjection(projection.path)
    assert reloaded.load() and reloaded.applied_seq == 30 and len(reloaded) == 30
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vectors.usearch",
                                                          "vectors.usearch.json"]


def test_a_fork_that_fails_is_reported_and_the_graph_saved_in_process(
        tmp_path: Path, rows: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a child (no memory for one), the save still happens, and says why it held up."""
    def no_fork() -> int:
        raise BlockingIOError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(os, "fork", no_fork)
    projection = graph(tmp_path, rows, 30)
    with capture_logs() as logs:
        projection.save()
    assert [e["event"] for e in logs] == ["vector_save_fork_failed"]
    assert "temporarily unavailable" in logs[0]["error"]
    reloaded = VectorProjection(projection.path)
    assert reloaded.load() and reloaded.applied_seq == 30


KILLED_MID_SAVE = """
import os, sys, time
from pathlib import Path
import numpy as np
from memlane.projections import vector_store
from memlane.projections.vector_store import Index, VectorProjection
from tests.projections.test_graph_save import embedded

vector_store.EXACT_BELOW = 0
rows = np.random.default_rng(3).standard_normal((40, 16)).astype(np.float32)
projection = VectorProjection(Path(sys.argv[1]))
projection.apply([embedded(seq, rows) for seq in range(1, 31)])
projection.save()
projection.apply([embedded(seq, rows) for seq in range(31, 41)])

def stuck(index, path):  # the child writes half a file and never finishes
    Path(path).write_bytes(b"partial")
    time.sleep(60)

Index.save = stuck
projection.save()
"""


def test_a_kill_mid_save_leaves_the_old_files_valid(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """kill -9 of the daemon and its child while the child writes: the files saved before
    still load, and the next start deletes the partial file."""
    monkeypatch.setattr(vector_store, "EXACT_BELOW", 0)  # as the killed daemon had it
    path = tmp_path / "vectors.usearch"
    script = textwrap.dedent(KILLED_MID_SAVE)
    process = subprocess.Popen([sys.executable, "-c", script, str(path)],
                               cwd=Path(__file__).parents[2], start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not (path.with_name("vectors.usearch.json").exists()  # the first save is done
                   and list(tmp_path.glob("vectors.usearch.*.tmp"))):
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    reloaded = VectorProjection(path)
    assert reloaded.load() and reloaded.applied_seq == 30 and len(reloaded) == 30
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vectors.usearch",
                                                          "vectors.usearch.json"]
