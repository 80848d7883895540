"""One daemon with 2,000 imported memories and a known cluster, and a logged-in browser page,
shared by the viewer's browser tests."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest
from playwright.sync_api import BrowserContext, Page

from tests.e2e.daemon import DaemonProcess, temporary_daemon
from tests.tools import require
from tests.ui.browser import CHROMIUM, browser_context, log_in

BULK = 2000
KNOWN = "The billing API retries with exponential backoff capped at 30 seconds"
POOL = ["The pg pool runs out under load; set pool_size=20 in db.py",
        "Postgres connection pool exhausted under load, raise pool_size to 20",
        "Under heavy load the database pool is exhausted: pool_size=20 fixes it"]
WORDS = ("cache queue worker deploy schema index token retry timeout bucket shard replica "
         "webhook cron lint build release branch tag cursor batch stream socket proxy vault "
         "metric alert trace span budget quota tenant region zone pod node image layer").split()


def bulk_memories(count: int, seed: int = 7) -> list[dict[str, object]]:
    """``count`` distinct memories across kinds and sources, the known one among them."""
    rng = random.Random(seed)
    rows = [{"text": f"Note {i}: " + " ".join(rng.sample(WORDS, 7)), "project": "bulk",
             "kind": ("note", "insight")[i % 2], "source": ("import-a", "import-b")[i % 3 == 0]}
            for i in range(count - 1)]
    rows.insert(count // 2, {"text": KNOWN, "project": "bulk", "kind": "insight"})
    return rows


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's chromium (a skip locally without it, a failure in CI)."""
    found = require("chromium", "the viewer's browser tests drive it")
    assert found == CHROMIUM, f"chromium is {found}, not Debian's {CHROMIUM}"
    return found


@pytest.fixture(scope="session")
def viewed(chromium: str) -> Iterator[DaemonProcess]:
    """The daemon (no LLM, jobs only when asked) with the bulk import and the pool memories."""
    with temporary_daemon(GEMINI_API_KEY="", GOOGLE_API_KEY="",
                          MEMLANE_JOBS_INTERVAL_S="3600") as daemon:
        rows = bulk_memories(BULK)
        for start in range(0, len(rows), 1000):
            daemon.client.request("POST", "/v1/import", {"memories": rows[start:start + 1000]})
        for text in POOL:
            daemon.client.request("POST", "/v1/memories", {"text": text, "project": "graphs"})
        daemon.wait_idle()
        yield daemon


@pytest.fixture(scope="session")
def context(chromium: str) -> Iterator[BrowserContext]:
    with browser_context() as context:
        yield context


@pytest.fixture
def page(context: BrowserContext, viewed: DaemonProcess) -> Iterator[Page]:
    """A logged-in page that fails its test on any CSP violation or page error."""
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text)
            if "Content Security Policy" in m.text else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    log_in(page, viewed)
    yield page
    page.close()
    assert problems == []
