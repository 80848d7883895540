"""A real daemon dies at ten points inside compaction: the log opens and replays the same."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from memlane.cli.client import DaemonError, DaemonUnavailable
from memlane.cli.offline import compact_offline
from memlane.daemon.adapters.paths import resolve_paths
from memlane.events.log import EventLog
from memlane.events.segments import list_segments
from tests.e2e.daemon import DaemonProcess
from tests.history import generate, open_unsynced
from tests.projections.test_compaction import project, rows, vectors

CRASH_POINTS = ("surveyed", "segment_staged:1", "segment_staged:2", "segment_staged:4",
                "manifest_written", "committed", "segment_installed:1", "segment_installed:2",
                "segment_installed:5", "installed")


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A state directory holding months of history in small sealed segments."""
    home = tmp_path_factory.mktemp("seeded") / "home"
    log = open_unsynced(resolve_paths({"MEMLANE_HOME": str(home)}).log_dir, 24 * 1024)
    generate(log, days=30, stores=4, prompts=15, switch_at=15, forgets=1, dims=(384, 384))
    log.close()
    return home


@pytest.fixture(scope="module")
def compacted_names(seeded: Path, tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """The segments a whole compaction of the seeded log rewrites."""
    home = tmp_path_factory.mktemp("whole") / "home"
    shutil.copytree(seeded, home)
    paths = resolve_paths({"MEMLANE_HOME": str(home)})
    before = {p.name: p.read_bytes() for p in list_segments(paths.log_dir)}
    compact_offline(paths)
    return {p.name for p in list_segments(paths.log_dir) if p.read_bytes() != before[p.name]}


def replayed(tmp: Path, name: str, log_dir: Path) -> tuple[dict, tuple]:
    log = EventLog.open(log_dir)
    projections = project(tmp, name, log)
    answer = rows(projections, horizon=int(list_segments(log_dir)[-1].stem)), \
        vectors(projections, range(1, log.last_seq + 1))
    projections.close()
    log.close()
    return answer


def reference(tmp: Path, originals: Path, log_dir: Path) -> Path:
    """The log as it would be without compaction: the original sealed segments, then every
    segment the daemon appended to."""
    ref = tmp / "reference"
    ref.mkdir()
    first_active = list_segments(originals)[-1].name
    for path in list_segments(originals)[:-1]:
        shutil.copy2(path, ref / path.name)
    for path in list_segments(log_dir):
        if path.name >= first_active:
            shutil.copy2(path, ref / path.name)
    return ref


@pytest.mark.parametrize("point", [*CRASH_POINTS, None])
def test_kill_inside_compaction_leaves_a_log_that_replays_the_same(
        tmp_path: Path, seeded: Path, compacted_names: set[str], point: str | None) -> None:
    """Killed at ``point`` (or not at all), the daemon leaves old or new segments, never a
    mix; the log opens, and replays to the projections of the uncompacted log."""
    home = tmp_path / "home"
    shutil.copytree(seeded, home)
    paths = resolve_paths({"MEMLANE_HOME": str(home)})
    originals = tmp_path / "originals"
    shutil.copytree(paths.log_dir, originals)
    env = {"MEMLANE_TEST_COMPACT_CRASH_AT": point} if point else {}
    daemon = DaemonProcess(home, **env).start(wait_model=False)
    try:
        answer = daemon.client.request("POST", "/v1/compact", {})
    except (DaemonUnavailable, DaemonError, ConnectionError):
        answer = None
    assert daemon.process is not None
    if point is None:
        assert answer is not None and answer["segments_compacted"] >= 5, answer
        daemon.kill9()
    else:
        assert daemon.process.wait(timeout=60) == 137, daemon.stderr()
    sealed = {p.name: p.read_bytes() for p in list_segments(originals)[:-1]}
    EventLog.open(paths.log_dir).close()  # recovery finishes or drops the switch
    changed = {p.name for p in list_segments(paths.log_dir)
               if p.name in sealed and p.read_bytes() != sealed[p.name]}
    decided = point is None or point.split(":")[0] in ("committed", "segment_installed",
                                                          "installed")
    assert len(compacted_names) >= 5
    assert changed == (compacted_names if decided else set()), point
    assert not any(p.is_dir() and p.name.startswith("compact-") for p in paths.log_dir.iterdir())
    assert replayed(tmp_path, "after", paths.log_dir) == \
        replayed(tmp_path, "before", reference(tmp_path, originals, paths.log_dir))
