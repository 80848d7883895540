"""The LLM's merge in review mode, in a real browser, with the fake Gemini server: the
consolidate job asks the LLM once per cluster and merges nothing; the review page shows the
LLM's text (and which model wrote it) without asking again; Accept records exactly that text
as the LLM's, an edit is recorded as the user's, Reject closes the cluster unmerged; a failed
call leaves the offline merge shown until the next round."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.daemon import DaemonProcess, temporary_daemon
from tests.gemini_server import (
    Error,
    FakeGemini,
    GeminiRequest,
    Reply,
    json_text,
    plausible_reply,
)
from tests.ui.browser import base_url, screenshot
from tests.ui.conftest import POOL, watched_page

MODEL = "gemini-2.5-flash"
PROJECTS = ("accepted", "edited", "rejected")
MERGED = "Under load the Postgres pool runs dry; set pool_size=20 in db.py (LLM merge)"


def respond(request: GeminiRequest) -> Reply:
    """One recognisable merge (never the offline merge's words); anything else plausible."""
    if {"text", "kind", "tags", "title"} <= request.schema_fields:
        return json_text({"text": MERGED, "kind": "insight", "tags": ["db"], "title": "pool"})
    return plausible_reply(request)


def merge_requests(gemini: FakeGemini) -> int:
    return sum({"text", "kind", "tags", "title"} <= r.schema_fields for r in gemini.requests)


@dataclass(frozen=True)
class LlmReviewing:
    daemon: DaemonProcess
    gemini: FakeGemini
    clusters: dict[str, int]


@pytest.fixture(scope="module")
def llm_reviewing() -> Iterator[LlmReviewing]:
    """A daemon in review mode with an LLM, three projects whose pools cluster, and one
    consolidate round (which asks the LLM and merges nothing)."""
    with FakeGemini(respond=respond) as gemini, temporary_daemon(
            MEMLANE_REVIEW="1", GEMINI_API_KEY=gemini.api_key, GOOGLE_API_KEY="",
            MEMLANE_LLM_BASE_URL=gemini.base_url, MEMLANE_LLM_MODEL=MODEL,
            MEMLANE_JOBS_INTERVAL_S="3600") as daemon:
        roots = {name: daemon.home.parent / name for name in PROJECTS}
        for root in roots.values():
            root.mkdir()
            for text in POOL:
                daemon.client.request("POST", "/v1/memories", {"text": text, "project": str(root)})
        daemon.wait_idle()
        done = daemon.client.request("POST", "/v1/jobs/consolidate", {})
        assert done["consolidated"] == [] and len(done["waiting"]) == len(roots), done
        clusters = {}
        for cluster in daemon.client.request("GET", "/v1/clusters?open=1")["clusters"]:
            project = daemon.client.request("GET", f"/v1/memories/{cluster['members'][0]}")
            clusters[next(n for n, r in roots.items() if str(r) == project["project"])] = (
                cluster["id"])
        yield LlmReviewing(daemon, gemini, clusters)


@pytest.fixture
def llm_page(browser: Browser, llm_reviewing: LlmReviewing) -> Iterator[Page]:
    yield from watched_page(browser, llm_reviewing.daemon)


def consolidation_of(daemon: DaemonProcess, proven: int) -> dict[str, object]:
    events = daemon.client.request("GET", f"/v1/memories/{proven}/history")["events"]
    return next(e for e in events if e["type"] == "consolidated")


def proven_of(daemon: DaemonProcess, cluster: int) -> int:
    return int(next(c for c in daemon.client.request("GET", "/v1/clusters")["clusters"]
                    if c["id"] == cluster)["consolidated_into"])


def test_the_job_asks_the_llm_once_per_cluster_and_merges_nothing(
        llm_reviewing: LlmReviewing) -> None:
    """Each waiting cluster cost one merge request; another round asks nothing again."""
    daemon, gemini = llm_reviewing.daemon, llm_reviewing.gemini
    assert merge_requests(gemini) == len(PROJECTS)
    again = daemon.client.request("POST", "/v1/jobs/consolidate", {})
    assert again["consolidated"] == []
    assert merge_requests(gemini) == len(PROJECTS)


def test_the_llm_merge_waits_with_its_text_and_accept_records_it(
        llm_page: Page, llm_reviewing: LlmReviewing) -> None:
    """The page shows the LLM's merged text and its model, drawing it asks the LLM nothing,
    and Accept records exactly that text as the LLM's consolidation."""
    daemon, gemini = llm_reviewing.daemon, llm_reviewing.gemini
    cluster = llm_reviewing.clusters["accepted"]
    asked = len(gemini.requests)
    llm_page.goto(f"{base_url(daemon)}/ui/review")
    item = llm_page.locator(f'#merges li.merge[data-cluster="{cluster}"]')
    expect(item.locator(".merged")).to_have_text(MERGED)
    expect(item.locator(".merged-by")).to_contain_text(MODEL)
    screenshot(llm_page, "review-llm")
    llm_page.reload()
    assert len(gemini.requests) == asked
    item.get_by_role("button", name="Accept", exact=True).click()
    expect(item).to_have_count(0)
    proven = proven_of(daemon, cluster)
    assert daemon.client.request("GET", f"/v1/memories/{proven}")["text"] == MERGED
    event = consolidation_of(daemon, proven)
    assert (event["model"], event["prompt_version"]) == (MODEL, "memlane-llm-1")
    assert len(gemini.requests) == asked


def test_an_edited_llm_merge_is_recorded_as_the_users(
        llm_page: Page, llm_reviewing: LlmReviewing) -> None:
    """Edit before accepting: the edited text is recorded, as the user's words."""
    daemon, cluster = llm_reviewing.daemon, llm_reviewing.clusters["edited"]
    edited = "pool_size=20 in db.py keeps Postgres from running out under load"
    llm_page.goto(f"{base_url(daemon)}/ui/review")
    item = llm_page.locator(f'#merges li.merge[data-cluster="{cluster}"]')
    expect(item.locator("textarea")).to_have_value(MERGED)
    item.locator("summary").click()
    item.locator("textarea").fill(edited)
    item.get_by_role("button", name="Accept as edited").click()
    expect(item).to_have_count(0)
    proven = proven_of(daemon, cluster)
    assert daemon.client.request("GET", f"/v1/memories/{proven}")["text"] == edited
    assert consolidation_of(daemon, proven)["model"] == "user"


def test_a_rejected_llm_merge_closes_its_cluster(
        llm_page: Page, llm_reviewing: LlmReviewing) -> None:
    """Reject: nothing is merged, the members stay active, the LLM is not asked again."""
    daemon, gemini = llm_reviewing.daemon, llm_reviewing.gemini
    cluster = llm_reviewing.clusters["rejected"]
    llm_page.goto(f"{base_url(daemon)}/ui/review")
    item = llm_page.locator(f'#merges li.merge[data-cluster="{cluster}"]')
    expect(item.locator(".merged")).to_have_text(MERGED)
    item.get_by_role("button", name="Reject").click()
    expect(item).to_have_count(0)
    assert proven_of(daemon, cluster) == 0
    asked = merge_requests(gemini)
    daemon.client.request("POST", "/v1/jobs/consolidate", {})
    assert merge_requests(gemini) == asked


def test_a_failed_llm_call_shows_the_offline_merge_until_the_next_round(
        llm_page: Page, llm_reviewing: LlmReviewing) -> None:
    """Gemini failing: the new cluster waits with the offline merge, labelled so; the next
    round asks again and the page then shows the LLM's."""
    daemon, gemini = llm_reviewing.daemon, llm_reviewing.gemini
    root = daemon.home.parent / "failing"
    root.mkdir()
    for text in POOL:
        daemon.client.request("POST", "/v1/memories", {"text": text, "project": str(root)})
    daemon.wait_idle()
    gemini.queue(Error(503, "overloaded"))
    first = daemon.client.request("POST", "/v1/jobs/consolidate", {})
    [waiting] = [w for w in first["waiting"] if "merged_by" not in w]
    assert "offline merge" in waiting["reason"], first
    llm_page.goto(f"{base_url(daemon)}/ui/review")
    item = llm_page.locator(f'#merges li.merge[data-cluster="{waiting["cluster"]}"]')
    expect(item.locator(".merged-by")).to_contain_text("offline merge")
    expect(item.locator(".merged")).not_to_have_text(MERGED)
    daemon.client.request("POST", "/v1/jobs/consolidate", {})
    llm_page.reload()
    expect(item.locator(".merged")).to_have_text(MERGED)
    expect(item.locator(".merged-by")).to_contain_text(MODEL)
