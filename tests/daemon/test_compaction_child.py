"""Compaction's survey and staging in a child process: the same result as in the daemon's own
interpreter, a clear error when the child fails, and a child that never outlives its daemon."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import anyio
import msgspec
import pytest

from memlane.daemon.adapters.compaction_child import (ORPHANED, CompactionFailed,
                                                      PrepareRequest, prepare_in_child)
from memlane.events.compactor import STAGING
from memlane.events.retention import Prepared, prepare
from memlane.events.segments import COMPACTED, list_segments
from tests.history import generate, open_unsynced


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """A month of history in small sealed segments, and its last seq."""
    directory = tmp_path_factory.mktemp("history") / "log"
    log = open_unsynced(directory, 24 * 1024)
    generate(log, days=30, stores=4, prompts=15, switch_at=15, forgets=1, dims=(384, 384))
    last = log.last_seq
    log.close()
    return directory, last


def _in_child(directory: Path, last: int, steps: list[str],
              progress: list[tuple[int, int]]) -> Prepared:
    async def run() -> Prepared:
        return await prepare_in_child(directory, last, cutoff=datetime.now(UTC), floors=[last],
                                      step=steps.append,
                                      progress=lambda done, todo: progress.append((done, todo)))
    return anyio.run(run)


def test_the_child_stages_what_the_daemon_would(tmp_path: Path,
                                                history: tuple[Path, int]) -> None:
    """Same horizon, segments, sizes and staged bytes; every step and segment relayed (each
    copy of the log has inodes of its own, hence each its own identities)."""
    source, last = history
    here, there = tmp_path / "here", tmp_path / "there"
    shutil.copytree(source, here)
    shutil.copytree(source, there)
    expected = prepare(here, last, cutoff=datetime.now(UTC), floors=[last])
    steps: list[str] = []
    progress: list[tuple[int, int]] = []
    got = _in_child(there, last, steps, progress)
    assert got.horizon == expected.horizon
    assert dataclasses.replace(got.staged, segments=[]) == \
        dataclasses.replace(expected.staged, segments=[])
    assert [(s.name, s.before, s.after) for s in got.staged.segments] == \
        [(s.name, s.before, s.after) for s in expected.staged.segments]
    assert [s.identity[0] for s in got.staged.segments] == \
        [(there / s.name).stat().st_ino for s in got.staged.segments]
    assert len(got.staged.segments) >= 5
    assert steps == ["surveyed"] + ["segment_staged"] * len(got.staged.segments)
    todo = len(list_segments(source)) - 1
    assert progress == [(done, todo) for done in range(1, todo + 1)]
    for one in got.staged.segments:
        assert (there / STAGING / one.name).read_bytes() == \
            (here / STAGING / one.name).read_bytes()


def test_a_damaged_segment_fails_with_the_childs_reason(tmp_path: Path,
                                                        history: tuple[Path, int]) -> None:
    """The child's own error comes back as a clear compaction_failed error, and what it
    staged before it met the damage is removed."""
    source, last = history
    directory = tmp_path / "log"
    shutil.copytree(source, directory)
    sealed = list_segments(directory)[1]
    data = bytearray(sealed.read_bytes())
    data[len(data) // 2] ^= 0xFF
    sealed.write_bytes(bytes(data))
    with pytest.raises(CompactionFailed) as failed:
        _in_child(directory, last, [], [])
    assert failed.value.status == 500 and failed.value.code == "compaction_failed"
    assert "LogCorrupted" in failed.value.message and sealed.name in failed.value.message
    assert not (directory / STAGING).exists()


def _children() -> list[int]:
    """Pids of running compaction children (Linux: read from /proc)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if b"memlane.daemon.adapters.compaction_child" in cmdline.read_bytes():
                found.append(int(cmdline.parent.name))
        except OSError:
            continue  # the process ended meanwhile
    return found


def test_a_cancelled_compaction_leaves_no_child(tmp_path: Path,
                                                history: tuple[Path, int]) -> None:
    """The daemon stops (or gives up) mid-staging: its child is killed, not left running."""
    source, last = history
    directory = tmp_path / "log"
    shutil.copytree(source, directory)
    before = _children()

    async def run() -> bool:
        with anyio.CancelScope() as scope:
            def step(name: str) -> None:
                assert len(_children()) == len(before) + 1  # the child is running now
                scope.cancel()

            await prepare_in_child(directory, last, cutoff=datetime.now(UTC), floors=[last],
                                   step=step, progress=lambda done, todo: None)
        return scope.cancelled_caught

    assert anyio.run(run)
    assert _children() == before


def test_the_child_exits_once_its_daemon_is_gone(history: tuple[Path, int],
                                                 tmp_path: Path) -> None:
    """Its stdin closes (the daemon died or gave up): it stops at once, answering nothing,
    with the status that says so."""
    source, last = history
    directory = tmp_path / "log"
    shutil.copytree(source, directory)
    request = msgspec.json.encode(PrepareRequest(str(directory), last, datetime.now(UTC),
                                                 [last], COMPACTED, os.getpid()))
    status, answer, error = child_answer(request)
    assert status == ORPHANED, error
    assert error == b"" and b'"prepared"' not in answer


def child_answer(request: bytes) -> tuple[int, bytes, bytes]:
    with subprocess.Popen([sys.executable, "-m", "memlane.daemon.adapters.compaction_child"],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE) as child:
        answer, error = child.communicate(request + b"\n", timeout=30)  # then stdin closes
    return child.returncode, answer, error


def test_a_child_refuses_a_daemon_of_another_format_or_not_its_parent(
        history: tuple[Path, int], tmp_path: Path) -> None:
    """A daemon started before an upgrade asks in its own words (no format, or another): the
    child says to restart it and stages nothing; a request naming another daemon than its
    parent is an orphan's (its daemon died before the staging lock was free)."""
    source, last = history
    directory = tmp_path / "log"
    shutil.copytree(source, directory)
    fields = {"directory": str(directory), "last_seq": last,
              "cutoff": datetime.now(UTC).isoformat(), "floors": [last]}
    for older in (fields, {**fields, "format": COMPACTED - 1, "daemon": os.getpid()}):
        status, answer, error = child_answer(json.dumps(older).encode())
        assert status == 1 and b"restart the daemon" in error and answer == b""
    status, answer, _ = child_answer(json.dumps(
        {**fields, "format": COMPACTED, "daemon": os.getpid() + 1}).encode())
    assert status == ORPHANED and answer == b""
    assert not (directory / STAGING).exists()
