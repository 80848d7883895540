"""The flat matrix lives in its files (mapped): new files until the first save, files that run
ahead of the last save between saves, none left behind, a full disk met as an error."""

from __future__ import annotations

import errno
import gc
import os
from pathlib import Path

import numpy as np
import pytest

from memlane.events.model import Forgotten, Record
from memlane.projections import vector_store
from memlane.projections.vector_store import VectorProjection
from tests.projections.test_vector_store import AT, embedded, vectors

SAVED = ["v.usearch", "v.usearch.json", "v.usearch.keys"]


def names(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir())


def test_a_new_matrix_is_written_beside_the_saved_files_until_its_first_save(
        tmp_path: Path) -> None:
    """Until its save, the files the metadata describes are left as they were."""
    rows = vectors(40, seed=5)
    projection = VectorProjection(tmp_path / "v.usearch")
    projection.apply([embedded(i + 1, i + 1, rows[i]) for i in range(20)])
    unsaved = names(tmp_path)
    assert len(unsaved) == 2 and all(".flat-" in name and name.endswith(".tmp")
                                     for name in unsaved)
    projection.save()
    assert names(tmp_path) == SAVED
    projection.apply([embedded(i + 1, i + 1, rows[i]) for i in range(20, 40)])
    projection.save()
    assert names(tmp_path) == SAVED  # later saves flush the files in place
    reloaded = VectorProjection(tmp_path / "v.usearch")
    assert reloaded.load() and len(reloaded) == 40
    assert reloaded.search(rows[33], 1)[0][0] == 34


def test_files_that_ran_ahead_of_the_last_save_load_as_that_save(tmp_path: Path) -> None:
    """A kill after adds leaves rows past the saved count: the load takes the saved ones and
    zeroes the others, so none outlives a forget that the log no longer replays (the files keep
    their size: a start on a full disk still finds it full). After a removal the saved rows no
    longer match: the load refuses them (a replay)."""
    rows = vectors(60, seed=6)
    for name in ("ahead", "removed"):
        (tmp_path / name).mkdir()
    ahead = VectorProjection(tmp_path / "ahead" / "v.usearch")
    ahead.apply([embedded(i + 1, i + 1, rows[i]) for i in range(30)])
    ahead.save()
    ahead.apply([embedded(i + 1, i + 1, rows[i]) for i in range(30, 60)])  # then killed
    unsaved = ahead.vector(45).tobytes()
    del ahead  # (the process is gone: nothing maps the files past their new end)
    gc.collect()
    assert any(unsaved in path.read_bytes() for path in (tmp_path / "ahead").iterdir())
    sizes = [path.stat().st_size for path in sorted((tmp_path / "ahead").iterdir())]
    loaded = VectorProjection(tmp_path / "ahead" / "v.usearch")
    assert loaded.load() and len(loaded) == 30 and loaded.applied_seq == 30
    assert [path.stat().st_size for path in sorted((tmp_path / "ahead").iterdir())] == sizes
    assert loaded.vector(31) is None and loaded.search(rows[29], 1)[0][0] == 30
    assert not any(unsaved in path.read_bytes() for path in (tmp_path / "ahead").iterdir())
    loaded.apply([embedded(31, 31, rows[30])])  # the files grow again from the cut
    assert loaded.search(rows[30], 1)[0][0] == 31

    removed = VectorProjection(tmp_path / "removed" / "v.usearch")
    removed.apply([embedded(i + 1, i + 1, rows[i]) for i in range(30)])
    removed.save()
    removed.apply([Record(seq=31, at=AT, event=Forgotten(memory=3, content_hash="0" * 32))])
    del removed
    gc.collect()
    assert not VectorProjection(tmp_path / "removed" / "v.usearch").load()


def test_a_matrix_never_saved_leaves_no_file_behind(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the threshold the vectors go into a graph: the flat files it left go with it."""
    monkeypatch.setattr(vector_store, "EXACT_BELOW", 10)
    rows = vectors(20, seed=7)
    projection = VectorProjection(tmp_path / "v.usearch")
    projection.apply([embedded(i + 1, i + 1, rows[i]) for i in range(20)])
    assert projection.mode == "hnsw"
    gc.collect()
    assert names(tmp_path) == []
    projection.save()
    assert names(tmp_path) == ["v.usearch", "v.usearch.json"]


def test_a_full_disk_fails_the_growth_and_leaves_the_vectors_as_they_were(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks are reserved as the files grow: no write into the mapping can meet a full
    disk (a SIGBUS), the growth reports it."""
    rows = vectors(1100, seed=8)
    projection = VectorProjection(tmp_path / "v.usearch")
    projection.apply([embedded(i + 1, i + 1, rows[i]) for i in range(1000)])

    def full(fd: int, offset: int, length: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "posix_fallocate", full)
    with pytest.raises(OSError, match="No space left"):  # the files must grow
        projection.apply([embedded(i + 1, i + 1, rows[i]) for i in range(1000, 1100)])
    assert len(projection) == 1000 and projection.search(rows[999], 1)[0][0] == 1000
    monkeypatch.undo()
    projection.apply([embedded(i + 1, i + 1, rows[i]) for i in range(1000, 1100)])
    assert len(projection) == 1100 and projection.search(rows[1099], 1)[0][0] == 1100
