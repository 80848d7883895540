"""Size visible, and the disk budget: status and doctor say what the log holds; past the
budget the daemon compacts, and past it again it warns (it never drops a live memory)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from memlane.cli.doctor import check_log_size
from memlane.daemon.adapters.paths import resolve_paths
from tests.e2e.daemon import DaemonProcess
from tests.e2e.test_cli import run_json
from tests.history import generate, open_unsynced


def seed(home: Path, stores: int = 10) -> int:
    """Forty old days of history (with 10 stores a day, about 3 MiB of log, 1 MiB once
    compacted); returns how many memories are live."""
    log = open_unsynced(resolve_paths({"MEMLANE_HOME": str(home)}).log_dir, 256 * 1024)
    history = generate(log, days=40, stores=stores, prompts=150, switch_at=20, forgets=1,
                       dims=(384, 384))
    log.close()
    return len(history.live)


def wait_for(predicate, what: str, timeout: float = 60.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (found := predicate()):
            return found
        time.sleep(0.1)
    raise TimeoutError(what)


def live(daemon: DaemonProcess) -> int:
    counts = daemon.client.request("GET", "/v1/status")["memories"]
    return int(counts.get("active", 0) + counts.get("proven", 0))


def test_status_shows_the_log_by_kind_by_project_and_its_growth(tmp_path: Path) -> None:
    """Sizes add up to the records' bytes; today's stores show as growth, in their project."""
    (tmp_path / "home").mkdir()
    daemon = DaemonProcess(tmp_path / "home").start(wait_model=False)
    try:
        for i in range(3):
            daemon.client.request("POST", "/v1/memories", {
                "text": f"the release checklist step {i} lives in docs/release.md",
                "project": "sizes-demo"})
        daemon.wait_idle()  # embedded: the vectors are in files, saved or not yet
        sizes = daemon.client.request("GET", "/v1/status/sizes")
    finally:
        daemon.stop()
    log = sizes["log"]
    assert log["by_kind"]["stored"] > 0 and log["by_project"]["sizes-demo"] > 0
    assert sum(log["by_kind"].values()) == sum(log["by_project"].values()) <= log["bytes"]
    today = datetime.now(UTC).date().isoformat()
    assert log["growth_7d"]["by_day"][today] == log["growth_7d"]["bytes"] > 0
    assert len(log["growth_7d"]["by_day"]) == 7
    assert sizes["projections"]["sqlite"] > 0 and sizes["projections"]["vectors"] > 0


@pytest.mark.parametrize("budget_mb,stores,still_over", [(2, 10, False), (1, 25, True)])
def test_past_the_budget_the_daemon_compacts_then_warns(
        tmp_path: Path, budget_mb: int, stores: int, still_over: bool) -> None:
    """The scheduled round compacts a log past its budget; one still past it is reported by
    status and doctor, and every live memory is still there."""
    home = tmp_path / "home"
    memories = seed(home, stores)
    daemon = DaemonProcess(home, MEMLANE_DISK_BUDGET_MB=str(budget_mb),
                           MEMLANE_JOBS_INTERVAL_S="0.5").start(wait_model=False)
    try:
        def settled() -> dict | None:
            state = daemon.client.request("GET", "/v1/status")["compaction"]
            return state if state["last"] and state["over_budget"] is still_over else None

        state = wait_for(settled, "no compaction ran, or it did not settle", timeout=300)
        assert state["last"]["bytes_after"] * 2 < state["last"]["bytes_before"]
        finding = check_log_size(daemon.paths)
        assert finding.ok is (not still_over), finding
        if still_over:
            assert "past the disk budget" in finding.detail and "disk_budget_mb" in finding.fix
        assert live(daemon) == memories
    finally:
        daemon.stop()


def test_memlane_compact_reports_what_it_did_and_status_shows_it(tmp_path: Path) -> None:
    """`memlane compact --json` through the daemon: bytes and kinds before and after; the
    same report is the status's last compaction; a second run only shrinks (what the daemon
    re-embedded with its own model since may make more vectors dead)."""
    home = tmp_path / "home"
    memories = seed(home)
    daemon = DaemonProcess(home).start(wait_model=False)
    try:
        report = run_json(daemon, "compact")
        assert report["segments_compacted"] > 0 and report["bytes_after"] < report["bytes_before"]
        assert report["by_kind_after"].get("recalled", 0) == 0 < report["by_kind_before"]["recalled"]
        assert daemon.client.request("GET", "/v1/status")["compaction"]["last"] == report
        again = run_json(daemon, "compact")
        assert again["bytes_after"] <= again["bytes_before"] <= report["bytes_after"]
        assert live(daemon) == memories
    finally:
        daemon.stop()
