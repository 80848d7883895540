"""The health page's chart on a compacted log, in a real browser: a month of generated history
compacted offline, then served by a daemon. The chart ends at the daemon's counts, marks the
compaction's horizon and says what was compacted before it."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from memlane.cli.offline import compact_offline
from memlane.daemon.adapters.paths import resolve_paths
from memlane.daemon.domain.state_history import STATES
from memlane.events.compactor import compacted_through
from tests.e2e.daemon import DaemonProcess
from tests.history import generate, open_unsynced
from tests.ui.browser import base_url, screenshot
from tests.ui.conftest import NO_LLM, watched_page


@pytest.fixture(scope="module")
def compacted() -> Iterator[tuple[DaemonProcess, int]]:
    """A daemon on a month of history in small segments, compacted up to its end."""
    root = Path(tempfile.mkdtemp(prefix="ml-", dir="/tmp"))
    paths = resolve_paths({"MEMLANE_HOME": str(root / "home")})
    log = open_unsynced(paths.log_dir, 24 * 1024)
    generate(log, days=30, stores=4, prompts=15, switch_at=15, forgets=1, dims=(384, 384))
    log.close()
    compact_offline(paths, retention_days=0)
    through = compacted_through(paths.log_dir)
    assert through > 0
    daemon = DaemonProcess(paths.home, **NO_LLM).start()
    try:
        yield daemon, through
    finally:
        daemon.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def compacted_page(browser: Browser, compacted: tuple[DaemonProcess, int]) -> Iterator[Page]:
    yield from watched_page(browser, compacted[0])


def test_the_chart_of_a_compacted_log_marks_its_horizon_and_ends_at_todays_counts(
        compacted_page: Page, compacted: tuple[DaemonProcess, int]) -> None:
    """Each state's line ends at the daemon's count; a dashed line and a sentence say up to
    which seq the log was compacted."""
    daemon, through = compacted
    compacted_page.goto(f"{base_url(daemon)}/ui/health")
    chart = compacted_page.locator("#states-chart")
    counts = daemon.client.request("GET", "/v1/status")["memories"]
    for state in STATES:
        expect(chart.locator(f'polyline[data-state="{state}"]')).to_have_attribute(
            "data-last", str(counts.get(state, 0)))
    expect(chart.locator("line.horizon")).to_have_count(1)
    note = compacted_page.locator("#states-compacted")
    expect(note).to_contain_text("is compacted")
    seq = int(note.inner_text().split("(up to seq ")[1].split(")")[0])
    assert through - 4096 < seq <= through
    screenshot(compacted_page, "health-compacted")
