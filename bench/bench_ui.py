"""The viewer through a real browser at scale: timeline first-contentful-paint (Paint Timing
API), search request → results in the DOM (the page's performance marks) with where that time
goes, and the link graph at 5,000 nodes (draw, frames while panning, click → memory page).

Run: python -m bench.bench_ui [--memories 100000] [--runs 5] [--home DIR]

The memories are written to the log directly (Stored plus Embedded events with random unit
vectors under the daemon's own pipeline, so nothing is re-embedded), then the daemon starts on
that log and catches its projections up: what is timed is the viewer, not the import. A
project ``graph`` gets 5,000 more, linked in groups of ten (``Linked`` facts written the same
way; every other group also ``Clustered``), for the graph's figures. ``--home DIR`` keeps the
state directory (and reuses it when its log already holds memories).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from memlane.events.log import EventLog
from memlane.events.model import Clustered, Embedded, Event, Linked, Stored
from playwright.sync_api import Page

from bench.bench_embed import print_load
from bench.report import print_machine
from tests.e2e import daemon as daemon_process
from tests.e2e.daemon import DaemonProcess
from tests.ui.browser import base_url, launched, log_in

WORDS = ("cache build postgres pool uv install docker layer pytest fixture react render "
         "terraform state kubernetes probe rust lifetime rebase runner flag limit").split()
QUERIES = ["postgres pool exhausted", "docker layer cache", "kubernetes probe flag",
           "rust lifetime rebase", "pytest fixture runner"]
BATCH = 5000
GRAPH_NODES = 5000  # the graph's cap: the figures are at 5,000 nodes
PAN_FRAMES = 120
CATCH_UP_TIMEOUT = 1800.0  # seconds: projecting 100k memories and vectors on a loaded machine


def write_memories(daemon: DaemonProcess, count: int) -> None:
    """Append ``count`` memories with vectors, then the linked graph project, to the stopped
    daemon's log."""
    status = daemon.client.request("GET", "/v1/status")
    model, pipeline = status["model"], status["pipeline"]
    dims = len(daemon.client.request("POST", "/v1/embeddings", {"input": ["x"]})["data"][0]
               ["embedding"])
    daemon.stop()
    rng = np.random.default_rng(0)
    log = EventLog.open(daemon.paths.log_dir)

    def memories(size: int, start: int, project: Callable[[int], str]) -> list[Event]:
        first = log.last_seq + 1
        vectors = rng.normal(size=(size, dims)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        # Each memory's vector right after it: a run of vectors would look like a link pass
        # a crash interrupted, and the daemon would link the whole run at start.
        events: list[Event] = []
        for i in range(size):
            events += [Stored(id=first + 2 * i, project=project(start + i), kind="note",
                              text=f"note {start + i}: " + " ".join(rng.choice(WORDS, 6)),
                              content_hash=f"{start + i:032x}"),
                       Embedded(memory=first + 2 * i, vector=vectors[i].tobytes(), dims=dims,
                                model=model, pipeline=pipeline)]
        return events

    try:
        for start in range(0, count, BATCH):
            log.append(memories(min(BATCH, count - start), start, lambda i: f"p{i % 5}"))
        first = log.last_seq + 1
        log.append(memories(GRAPH_NODES, count, lambda _: "graph"))
        ids = [first + 2 * i for i in range(GRAPH_NODES)]
        links: list[Event] = [Linked(a=a, b=b, similarity=0.8) for a, b in linked_groups(ids)]
        log.append(links)
        seq = log.last_seq + 1
        groups = [ids[i:i + 10] for i in range(0, len(ids), 20)]
        log.append([Clustered(cluster=seq + i, members=tuple(group), cohesion=0.8)
                    for i, group in enumerate(groups)])
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


SERVER_TIMING = """() => {
  const entry = performance.getEntriesByType("resource")
    .filter(e => e.name.includes("/ui/search?fragment=1")).pop();
  return Object.fromEntries((entry ? entry.serverTiming : []).map(t => [t.name, t.duration]));
}"""


def search_ms(page: Page, url: str, query: str) -> tuple[float, dict[str, float]]:
    """Request → results in the DOM, and the parts the daemon reported (Server-Timing)."""
    page.goto(url + "/ui/search")
    page.fill("input[name=q]", query)
    page.click("#search button")
    page.locator("#hits li").first.wait_for()
    total = float(page.evaluate("performance.getEntriesByName('search')[0].duration"))
    return total, page.evaluate(SERVER_TIMING)


def daemon_search_ms(daemon: DaemonProcess, query: str) -> float:
    """The same search through the API on the Unix socket (no viewer, no browser)."""
    started = time.perf_counter()
    daemon.client.request("POST", "/v1/search", {"query": query, "k": 20})
    return (time.perf_counter() - started) * 1000


def median(values: list[float]) -> str:
    return f"{statistics.median(values):.0f}" if values else "-"


def linked_groups(ids: list[int]) -> list[tuple[int, int]]:
    """Links within groups of ten: a chain and three chords, so each group is one component
    (the daemon draws the largest components first, up to its cap)."""
    pairs = []
    for start in range(0, len(ids), 10):
        group = ids[start:start + 10]
        pairs += list(zip(group, group[1:]))
        pairs += [(group[0], group[j]) for j in (3, 6, 9) if j < len(group)]
    return pairs


PAN = """(frames) => new Promise(done => {
  const cy = window.memlaneGraph, times = [];
  let last = null, count = 0;
  function step(now) {  // the renderer draws in its own frame callback after each pan
    if (last !== null) times.push(now - last);
    last = now;
    cy.panBy({x: 3, y: 2});
    if (++count <= frames) requestAnimationFrame(step); else done(times);
  }
  requestAnimationFrame(step);
})"""
FOCUS = """(id) => {
  const cy = window.memlaneGraph, node = cy.getElementById(String(id));
  cy.zoom(1); cy.center(node);
  return node.renderedPosition();
}"""


def graph_figures(page: Page, url: str, runs: int) -> dict[str, Any]:
    """The graph page of project ``graph``: draw time (fetch, first model, first frame: the
    page's ``graph`` measure), frame intervals while panning, and a real click on a node until
    its memory page has loaded."""
    draws, fetches, clicks, frames = [], [], [], []
    nodes = edges = 0
    for run in range(runs):
        page.goto(url + "/ui/graph?project=graph")
        page.locator("#graph[data-nodes]").wait_for(state="attached", timeout=60_000)
        draws.append(float(page.evaluate("performance.getEntriesByName('graph')[0].duration")))
        fetches.append(float(page.evaluate(
            "performance.getEntriesByName('graph-fetch')[0].duration")))
        nodes = int(page.evaluate("window.memlaneGraph.nodes().length"))
        edges = int(page.evaluate("window.memlaneGraph.edges().length"))
        frames += page.evaluate(PAN, PAN_FRAMES)
        node = int(page.evaluate(f"window.memlaneGraph.nodes()[{run * 97 % nodes}].id()"))
        at = page.evaluate(FOCUS, node)
        box = page.locator("#graph").bounding_box()
        assert box is not None
        started = time.perf_counter()
        page.mouse.click(box["x"] + at["x"], box["y"] + at["y"])
        page.wait_for_url(f"**/ui/memories/{node}", wait_until="load")
        clicks.append((time.perf_counter() - started) * 1000)
    ordered = sorted(frames)
    return {"nodes": nodes, "edges": edges, "draw": draws, "fetch": fetches, "click": clicks,
            "frames": len(frames), "frame_median": statistics.median(ordered),
            "frame_p95": ordered[int(len(ordered) * 0.95)], "frame_max": ordered[-1]}


LOADED = """() => { const n = performance.getEntriesByType("navigation")[0];
  return n.loadEventEnd - n.startTime; }"""


def memory_page_ms(page: Page, url: str, memory: int) -> float:
    """A memory's page, navigation start → load (its history is read at the seqs the
    per-memory index holds; it was a scan of the log from the memory's own record, which made
    the oldest memory the worst case)."""
    page.goto(f"{url}/ui/memories/{memory}", wait_until="load")
    return float(page.evaluate(LOADED))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--memories", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--home", type=Path, help="keep (and reuse) this state directory")
    args = parser.parse_args()
    daemon_process.READY_TIMEOUT = CATCH_UP_TIMEOUT  # the tests' minute is too short here
    root = args.home or Path(tempfile.mkdtemp(prefix="ml-", dir="/tmp")) / "home"
    root.mkdir(parents=True, exist_ok=True)
    daemon = DaemonProcess(root, GEMINI_API_KEY="", GOOGLE_API_KEY="",
                           MEMLANE_JOBS_INTERVAL_S="86400").start()
    try:
        if daemon.client.request("GET", "/v1/status")["last_seq"] < args.memories:
            write_memories(daemon, args.memories)
        else:
            daemon.stop()
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
            runs = [search_ms(page, url, QUERIES[i % len(QUERIES)]) for i in range(args.runs)]
            api = [daemon_search_ms(daemon, QUERIES[i % len(QUERIES)]) for i in range(args.runs)]
            graph = graph_figures(page, url, args.runs)
            oldest = int(daemon.client.request("POST", "/v1/search", {
                "query": "note 0:", "k": 1, "floor": False})["hits"][0]["id"])
            pages = [memory_page_ms(page, url, oldest) for _ in range(args.runs)]
        search = [total for total, _ in runs]
        print(f"timeline first-contentful-paint: median {statistics.median(fcp):.0f} ms, "
              f"max {max(fcp):.0f} ms ({args.runs} loads)")
        print(f"search request -> results in DOM: median {statistics.median(search):.0f} ms, "
              f"max {max(search):.0f} ms ({args.runs} queries)")
        parts = {name: [t[name] for _, t in runs if name in t]
                 for name in ("search", "render", "total")}
        print(f"  of which in the daemon (Server-Timing, medians): search {median(parts['search'])}"
              f" ms, render (with the filter choices on a full page) {median(parts['render'])} ms,"
              f" whole request "
              f"{median(parts['total'])} ms; the same search over the API: median "
              f"{median(api)} ms")
        print(f"graph, {graph['nodes']} nodes / {graph['edges']} edges: drawn in median "
              f"{median(graph['draw'])} ms (max {max(graph['draw']):.0f}; of which fetching "
              f"the graph {median(graph['fetch'])} ms); panning: frame "
              f"median {graph['frame_median']:.1f} ms, p95 {graph['frame_p95']:.1f} ms, max "
              f"{graph['frame_max']:.1f} ms ({graph['frames']} frames); click -> memory page "
              f"median {median(graph['click'])} ms (max {max(graph['click']):.0f})")
        print(f"memory page of the oldest memory (#{oldest}, its events read by seq): median "
              f"{median(pages)} ms, max {max(pages):.0f} ms")
        print_machine()
        print_load("at the end")
    finally:
        try:
            daemon.stop()
        except subprocess.TimeoutExpired:
            daemon.kill9()
        if args.home is None:
            shutil.rmtree(root.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
