"""Three daemons for the viewer's browser tests: one holding 2,000 imported memories (timeline,
search, escaping), one small with a known cluster (graph, consolidation, forget, health), so
the lifecycle jobs never wait for 2,000 memories to be linked on a loaded machine, and one in
review mode whose routes wait for approval. Each gets
its own browser context: cookies name a host, not a port."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from tests.e2e.daemon import DaemonProcess, temporary_daemon
from tests.tools import require
from tests.ui.browser import CHROMIUM, base_url, launched, log_in

BULK = 2000
KNOWN = "The billing API retries with exponential backoff capped at 30 seconds"
POOL = ["The pg pool runs out under load; set pool_size=20 in db.py",
        "Postgres connection pool exhausted under load, raise pool_size to 20",
        "Under heavy load the database pool is exhausted: pool_size=20 fixes it"]
WORDS = ("cache queue worker deploy schema index token retry timeout bucket shard replica "
         "webhook cron lint build release branch tag cursor batch stream socket proxy vault "
         "metric alert trace span budget quota tenant region zone pod node image layer").split()
NO_LLM = {"GEMINI_API_KEY": "", "GOOGLE_API_KEY": "", "MEMLANE_JOBS_INTERVAL_S": "3600"}


def bulk_memories(count: int, seed: int = 7) -> list[dict[str, object]]:
    """``count`` distinct memories across kinds and sources, the known one among them."""
    rng = random.Random(seed)
    rows: list[dict[str, object]] = [
        {"text": f"Note {i}: " + " ".join(rng.sample(WORDS, 7)), "project": "bulk",
         "kind": ("note", "insight")[i % 2], "source": ("import-a", "import-b")[i % 3 == 0]}
        for i in range(count - 1)]
    rows.insert(count // 2, {"text": KNOWN, "project": "bulk", "kind": "insight"})
    return rows


def import_all(daemon: DaemonProcess, rows: list[dict[str, object]]) -> None:
    for start in range(0, len(rows), 1000):
        daemon.client.request("POST", "/v1/import", {"memories": rows[start:start + 1000]})


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Debian's chromium (a skip locally without it, a failure in CI)."""
    found = require("chromium", "the viewer's browser tests drive it")
    assert found == CHROMIUM, f"chromium is {found}, not Debian's {CHROMIUM}"
    with launched() as browser:
        yield browser


@pytest.fixture(scope="session")
def bulk() -> Iterator[DaemonProcess]:
    """The daemon with the 2,000 imported memories (embedded in the background)."""
    with temporary_daemon(**NO_LLM) as daemon:
        import_all(daemon, bulk_memories(BULK))
        yield daemon


@pytest.fixture(scope="session")
def lived() -> Iterator[DaemonProcess]:
    """A small daemon whose pool memories are embedded and linked."""
    with temporary_daemon(**NO_LLM) as daemon:
        for text in POOL:
            daemon.client.request("POST", "/v1/memories", {"text": text, "project": "graphs"})
        daemon.wait_idle()
        yield daemon


def watched_page(browser: Browser, daemon: DaemonProcess) -> Iterator[Page]:
    """A logged-in page that fails its test on any CSP violation or page error."""
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text)
            if "Content Security Policy" in m.text else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    log_in(page, daemon)
    yield page
    context.close()
    assert problems == []


@pytest.fixture
def bulk_page(browser: Browser, bulk: DaemonProcess) -> Iterator[Page]:
    yield from watched_page(browser, bulk)


@pytest.fixture
def lived_page(browser: Browser, lived: DaemonProcess) -> Iterator[Page]:
    yield from watched_page(browser, lived)



@dataclass(frozen=True)
class Routed:
    """A project directory whose CLAUDE.md has a routing proposal waiting for review."""

    root: Path
    original: bytes
    proven: int
    sources: tuple[int, ...]

    @property
    def claude(self) -> Path:
        return self.root / "CLAUDE.md"


@dataclass(frozen=True)
class Reviewing:
    """The review-mode daemon: per project, its waiting cluster; ``routed``: the projects
    whose cluster was accepted (in the fixture) and whose route waits for approval."""

    daemon: DaemonProcess
    clusters: dict[str, int]
    routed: dict[str, Routed]


ROUTED = ("alpha", "beta", "gamma")  # accepted by the fixture, their routes wait
WAITING = ("delta", "epsilon")  # their clusters wait for the tests


@pytest.fixture(scope="session")
def reviewing(browser: Browser) -> Iterator[Reviewing]:
    """A daemon in review mode with five projects, each with a pool that clusters. The job
    merges nothing; the fixture accepts three clusters through the viewer, whose routes into
    their project's CLAUDE.md then wait for approval too."""
    with temporary_daemon(MEMLANE_REVIEW="1", **NO_LLM) as daemon:
        roots = {name: daemon.home.parent / name for name in (*ROUTED, *WAITING)}
        for name, root in roots.items():
            root.mkdir()
            (root / "CLAUDE.md").write_bytes(f"# {name}\n\nA FastAPI service.\n".encode())
            for text in POOL:
                daemon.client.request("POST", "/v1/memories", {"text": text, "project": str(root)})
        daemon.wait_idle()
        done = daemon.client.request("POST", "/v1/jobs/consolidate", {"offline": True})
        assert done["consolidated"] == [] and len(done["waiting"]) == len(roots), done
        clusters = {_project_of(daemon, c["members"][0], roots): c["id"]
                    for c in daemon.client.request("GET", "/v1/clusters")["clusters"]}
        proven = _accept_clusters(browser, daemon, [clusters[name] for name in ROUTED])
        routes = daemon.client.request("POST", "/v1/jobs/route", {"write": True})["routes"]
        assert {r["action"] for r in routes} == {"proposed"}, routes
        routed = {name: Routed(roots[name], (roots[name] / "CLAUDE.md").read_bytes(),
                               *proven[clusters[name]]) for name in ROUTED}
        yield Reviewing(daemon, clusters, routed)


def _project_of(daemon: DaemonProcess, memory: int, roots: dict[str, Path]) -> str:
    project = daemon.client.request("GET", f"/v1/memories/{memory}")["project"]
    return next(name for name, root in roots.items() if str(root) == project)


ACCEPT = """async ([url, text]) => {
  const csrf = document.querySelector('meta[name="csrf"]').content;
  const response = await fetch(url, {method: "POST", body: JSON.stringify({text}),
                                     headers: {"x-memlane-csrf": csrf}});
  return await response.json();
}"""


def _accept_clusters(browser: Browser, daemon: DaemonProcess, clusters: list[int]
                     ) -> dict[int, tuple[int, tuple[int, ...]]]:
    """Accept each cluster's merge as the review page shows it: (proven id, sources)."""
    context = browser.new_context()
    page = context.new_page()
    log_in(page, daemon)
    page.goto(f"{base_url(daemon)}/ui/review")
    found = {}
    for cluster in clusters:
        text = page.locator(f'li.merge[data-cluster="{cluster}"] .merged').inner_text()
        answer = page.evaluate(ACCEPT, [f"/ui/review/clusters/{cluster}/accept", text])
        found[cluster] = (answer["proven"], tuple(answer["sources"]))
    context.close()
    return found


@pytest.fixture
def review_page(browser: Browser, reviewing: Reviewing) -> Iterator[Page]:
    yield from watched_page(browser, reviewing.daemon)
