"""The proof scan's byte search runs in a child process and finds every form it is given."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from memlane.daemon.adapters import byte_scan
from memlane.daemon.adapters.byte_scan import CHUNK, ScanFailed, files_holding, scan_in_child

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def write(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


async def test_the_search_runs_outside_the_daemons_interpreter() -> None:
    """/proc/self/cmdline names the process that reads it: the child's names this module, the
    caller's (pytest) does not."""
    own = byte_scan.__name__.encode()
    assert files_holding([own], ["/proc/self/cmdline"]) == []
    assert await scan_in_child([own], ["/proc/self/cmdline"]) == ["/proc/self/cmdline"]


async def test_a_pattern_across_a_chunk_boundary_is_found(tmp_path: Path) -> None:
    """The chunks overlap by the longest pattern: a text split by a boundary still counts; a
    vanished file and a file without the text hold nothing."""
    secret = "walrus-cobalt-5531".encode("utf-16-le")
    split = write(tmp_path / "split", b"x" * (CHUNK - 7) + secret + b"y" * 100)
    clean = write(tmp_path / "clean", b"x" * (2 * CHUNK))
    gone = str(tmp_path / "gone")
    paths = [split, clean, gone]
    assert files_holding([b"unrelated", secret], paths) == [split]
    assert await scan_in_child([b"unrelated", secret], paths) == [split]


async def test_a_child_that_fails_is_an_error_not_a_clean_scan(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A child that exits without an answer never passes for "no file holds the text"."""
    path = write(tmp_path / "file", b"the text")
    monkeypatch.setattr(byte_scan.sys, "executable", "/bin/false")
    with pytest.raises(ScanFailed, match="exited"):
        await scan_in_child([b"the text"], [path])


async def test_a_file_that_cannot_be_read_fails_the_scan(tmp_path: Path) -> None:
    """Only a file that vanished holds nothing; one that cannot be read (here a directory in
    place of a file) is never passed as clean."""
    with pytest.raises(IsADirectoryError):
        files_holding([b"the text"], [str(tmp_path)])
    with pytest.raises(ScanFailed, match="exited with status 1"):
        await scan_in_child([b"the text"], [str(tmp_path)])


async def test_a_child_that_does_not_answer_in_time_is_killed_and_fails_the_scan(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past its deadline the child is killed and the scan fails: never a hang, never clean."""
    path = write(tmp_path / "file", b"the text")
    stuck = tmp_path / "stuck"
    stuck.write_text(f"#!/bin/sh\necho $$ > {tmp_path / 'pid'}\nexec sleep 60\n")
    stuck.chmod(0o755)
    monkeypatch.setattr(byte_scan.sys, "executable", str(stuck))
    started = time.monotonic()
    with pytest.raises(ScanFailed, match="did not answer within 0.5 s"):
        await scan_in_child([b"the text"], [path], timeout=0.5)
    assert time.monotonic() - started < 10
    pid = int((tmp_path / "pid").read_text())
    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
