"""What every benchmark reports alongside its figures: machine, date, git sha, load average.

A :class:`Figure` is one measured number with the floor or baseline it is judged against
(measured in the same run where possible) and its target; ``bench.run_all`` collects them
into bench/results.json and the tables of BENCHMARKS.md.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Figure:
    bench: str
    name: str
    value: float
    unit: str
    baseline: float | None = None  # the floor or fair baseline, same run
    baseline_name: str = ""
    target: str = ""  # e.g. ">= 100000" or "ratio >= 0.7"
    met: bool | None = None
    load: float = 0.0  # 1-minute load average when measured

    @property
    def ratio(self) -> float | None:
        if self.baseline in (None, 0):
            return None
        return self.value / self.baseline  # type: ignore[operator]

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ratio": self.ratio}


def write_figures(path: Path, figures: list[Figure]) -> None:
    """Hand ``figures`` to ``bench.run_all`` (a benchmark it runs in a process of its own)."""
    path.write_text(json.dumps([asdict(f) for f in figures]))


def read_figures(path: Path) -> list[Figure]:
    return [Figure(**row) for row in json.loads(path.read_text())]


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


def machine() -> dict[str, Any]:
    """Where and when: CPU, cores, memory, Python, the git sha and the load average."""
    root = Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, check=True,
                             capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=root, capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        sha, dirty = "unknown", ""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": _memory_gib(),
            "python": platform.python_version(), "system": platform.system(),
            "git_sha": sha + ("+dirty" if dirty else ""),
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "load_average": load_average()}


def _memory_gib() -> float:
    try:
        pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        return 0.0
    return round(pages * size / 2**30, 1)


def print_machine() -> None:
    facts = machine()
    print(f"machine: {facts['cpu']}, {facts['cores']} cores, {facts['memory_gib']} GiB,"
          f" python {facts['python']}; git {facts['git_sha']}; {facts['date']};"
          f" load average {facts['load_average']}")


def cpu_times() -> tuple[int, int]:
    """(idle, total) clock ticks of every CPU since boot, from /proc/stat. Waiting on I/O is
    not idle: writes the benchmark before left to the disk are waited out too."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return fields[3], sum(fields[:8])  # user .. steal; guest time is within user


def idle_share(before: tuple[int, int], after: tuple[int, int]) -> float:
    """The share of CPU time left idle between two :func:`cpu_times` readings."""
    total = after[1] - before[1]
    return 1.0 if total <= 0 else (after[0] - before[0]) / total


QUIET = 0.9  # the idle share of the CPUs a benchmark waits for


def wait_quiet(*, idle: float = QUIET, window_s: float = 2.0, limit_s: float = 60.0) -> float:
    """Wait until the CPUs stay at least ``idle`` idle over ``window_s`` (what the benchmark
    before left running has wound down), at most ``limit_s``; the idle share last seen."""
    deadline = time.monotonic() + limit_s
    while True:
        before = cpu_times()
        time.sleep(window_s)
        share = idle_share(before, cpu_times())
        if share >= idle or time.monotonic() >= deadline:
            return share
