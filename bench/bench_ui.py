"""The viewer through a real browser at scale: timeline first-contentful-paint (Paint Timing
API) and search request → results in the DOM (the page's performance marks).

Run: python -m bench.bench_ui [--memories 100000] [--runs 5]

The memories are written to the log directly (Stored plus Embedded events with random unit
vectors under the daemon's own pipeline, so nothing is re-embedded), then the daemon starts on
that log and catches its projections up: what is timed is the viewer, not the import.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from playwright.sync_api import Page

from memlane.events.log import EventLog
from memlane.events.model import Embedded, Event, Stored
from tests.e2e import daemon as daemon_process
from tests.e2e.daemon import DaemonProcess
from tests.ui.browser import base_url, launched, log_in

WORDS = ("cache build postgres pool uv install docker layer pytest fixture react render "
         "terraform state kubernetes probe rust lifetime rebase runner flag limit").split()
QUERIES = ["postgres pool exhausted", "docker layer cache", "kubernetes probe flag",
           "rust lifetime rebase", "pytest fixture runner"]
BATCH = 5000
CATCH_UP_TIMEOUT = 1800.0  # seconds: projecting 100k memories and vectors on a loaded machine


def write_memories(daemon: DaemonProcess, count: int) -> None:
    """Append ``count`` memories with vectors to the stopped daemon's log."""
    status = daemon.client.request("GET", "/v1/status")
    model, pipeline = status["model"], status["pipeline"]
    dims = len(daemon.client.request("POST", "/v1/embeddings", {"input": ["x"]})["data"][0]
               ["embedding"])
    daemon.stop()
    rng = np.random.default_rng(0)
    log = EventLog.open(daemon.paths.log_dir)
    try:
        for start in range(0, count, BATCH):
            size = min(BATCH, count - start)
            first = log.last_seq + 1
            vectors = rng.normal(size=(size, dims)).astype(np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            # Each memory's vector right after it: a run of vectors would look like a link pass
            # a crash interrupted, and the daemon would link the whole run at start.
            events: list[Event] = []
            for i in range(size):
                events += [Stored(id=first + 2 * i, project=f"p{(start + i) % 5}", kind="note",
                                  text=f"note {start + i}: " + " ".join(rng.choice(WORDS, 6)),
                                  content_hash=f"{start + i:032x}"),
                           Embedded(memory=first + 2 * i, vector=vectors[i].tobytes(), dims=dims,
                                    model=model, pipeline=pipeline)]
            log.append(events)
    finally:
        log.close()


# The viewer's CSP forbids eval, so Playwright's wait_for_function cannot poll in its pages:
# these wait in a promise (evaluate is allowed) or on the DOM.
FCP = """() => new Promise(done => new PerformanceObserver(list => {
  const fcp = list.getEntriesByName("first-contentful-paint")[0];
  if (fcp) done(fcp.startTime);
}).observe({type: "paint", buffered: true}))"""


def timeline_fcp(page: Page, url: str) -> float:
    page.goto(url)
    return float(page.evaluate(FCP))


def search_ms(page: Page, url: str, query: str) -> float:
    page.goto(url + "/ui/search")
    page.fill("input[name=q]", query)
    page.click("#search button")
    page.locator("#hits li").first.wait_for()
    return float(page.evaluate("performance.getEntriesByName('search')[0].duration"))


def describe_machine() -> str:
    sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                         text=True, cwd=Path(__file__).parent).stdout.strip()
    one, five, _ = os.getloadavg()
    return (f"machine: {platform.platform()}, {os.cpu_count()} CPUs; date "
            f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; sha {sha}; load {one:.2f} / {five:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--memories", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    daemon_process.READY_TIMEOUT = CATCH_UP_TIMEOUT  # the tests' minute is too short here
    root = Path(tempfile.mkdtemp(prefix="ml-", dir="/tmp"))
    (root / "home").mkdir()
    daemon = DaemonProcess(root / "home", GEMINI_API_KEY="", GOOGLE_API_KEY="",
                           MEMLANE_JOBS_INTERVAL_S="86400").start()
    try:
        write_memories(daemon, args.memories)
        started = time.perf_counter()
        daemon.start()
        status = daemon.client.request("GET", "/v1/status")
        print(f"{args.memories} memories; daemon caught up in "
              f"{time.perf_counter() - started:.1f} s; embedding backlog "
              f"{status['embedding_backlog']}, vectors {status['vectors']}")
        with launched() as browser:
            page = browser.new_context().new_page()
            log_in(page, daemon)
            url = base_url(daemon)
            fcp = [timeline_fcp(page, url + "/ui/") for _ in range(args.runs)]
            search = [search_ms(page, url, QUERIES[i % len(QUERIES)]) for i in range(args.runs)]
        print(f"timeline first-contentful-paint: median {statistics.median(fcp):.0f} ms, "
              f"max {max(fcp):.0f} ms ({args.runs} loads)")
        print(f"search request -> results in DOM: median {statistics.median(search):.0f} ms, "
              f"max {max(search):.0f} ms ({args.runs} queries)")
        print(describe_machine())
    finally:
        try:
            daemon.stop()
        except subprocess.TimeoutExpired:
            daemon.kill9()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
