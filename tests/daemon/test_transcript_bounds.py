"""A transcript named by a hook is read within bounds: past ``tail_bytes`` only its end is
read (from the first whole line), and reading stops once its time budget is spent."""

from __future__ import annotations

import time
from pathlib import Path

from memlane.daemon.adapters.transcript_file import read_transcript


def lines_file(path: Path, count: int) -> Path:
    path.write_text("".join(f"line {n:05d}\n" for n in range(count)))  # 11 bytes a line
    return path


def test_a_file_past_the_size_bound_is_read_from_its_last_whole_lines(tmp_path: Path) -> None:
    path = lines_file(tmp_path / "t.jsonl", 1000)
    assert list(read_transcript(path, tail_bytes=11 * 1000)) == [
        f"line {n:05d}" for n in range(1000)]  # within the bound: all of it
    tail = list(read_transcript(path, tail_bytes=11 * 10 + 5))  # cuts line 989 in the middle
    assert tail == [f"line {n:05d}" for n in range(990, 1000)]


def test_reading_stops_when_the_time_budget_is_spent(tmp_path: Path) -> None:
    path = lines_file(tmp_path / "t.jsonl", 100)
    read = []
    for line in read_transcript(path, budget_s=0.2):
        read.append(line)
        time.sleep(0.05)
    assert 1 <= len(read) < 20  # about 0.2 s of 0.05 s lines, not the 5 s of all 100
    assert read == [f"line {n:05d}" for n in range(len(read))]
