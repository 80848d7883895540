"""The review page in a real browser, on a daemon in review mode: a cluster waits until its
merge is accepted (as shown) or rejected; a routing proposal shows its exact diff and is
written only when accepted (byte for byte), a rejected one leaves the file alone, an undone
route takes its lines back out, an edit is written as a new memory, and an undone
consolidation brings its sources back."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from memlane.daemon.domain.routing import insert_memory
from tests.e2e.daemon import DaemonProcess
from tests.ui.browser import base_url, screenshot
from tests.ui.conftest import Reviewing


def memory_text(daemon: DaemonProcess, memory: int) -> str:
    return str(daemon.client.request("GET", f"/v1/memories/{memory}")["text"])


def test_accepting_a_proposal_writes_exactly_its_diff_and_undo_takes_it_back(
        review_page: Page, reviewing: Reviewing) -> None:
    """Review mode wrote nothing; Accept writes the entry the diff showed, byte for byte;
    Undo on the written route gives the file its original bytes back."""
    daemon, projects = reviewing.daemon, reviewing.routed
    alpha = projects["alpha"]
    assert alpha.claude.read_bytes() == alpha.original  # waiting, not written
    review_page.goto(f"{base_url(daemon)}/ui/review")
    item = review_page.locator(f'#proposals li.proposal[data-memory="{alpha.proven}"]')
    text = memory_text(daemon, alpha.proven)
    first_line = f"+- {text.splitlines()[0].lstrip('- ')}"
    expect(item.locator("pre.diff .add").filter(has_text=first_line[:30])).to_have_count(1)
    screenshot(review_page, "review")
    item.get_by_role("button", name="Accept", exact=True).click()
    expect(review_page.locator(f'#routes li.action-written[data-memory="{alpha.proven}"]')
           ).to_be_visible()
    expected = insert_memory(alpha.original.decode(), alpha.proven, text).encode()
    assert alpha.claude.read_bytes() == expected
    review_page.once("dialog", lambda dialog: dialog.accept())
    review_page.locator(f'#routes li[data-memory="{alpha.proven}"]').get_by_role(
        "button", name="Undo").click()
    expect(review_page.locator(f'#routes li.action-skipped[data-memory="{alpha.proven}"]')
           ).to_contain_text("undone by the user")
    assert alpha.claude.read_bytes() == alpha.original


def test_rejecting_a_proposal_leaves_the_file_untouched(
        review_page: Page, reviewing: Reviewing) -> None:
    """Reject records the verdict; the target file keeps its bytes and its modification."""
    daemon, projects = reviewing.daemon, reviewing.routed
    beta = projects["beta"]
    before = beta.claude.stat().st_mtime_ns
    review_page.goto(f"{base_url(daemon)}/ui/review")
    review_page.locator(f'#proposals li.proposal[data-memory="{beta.proven}"]').get_by_role(
        "button", name="Reject").click()
    expect(review_page.locator(f'#routes li.action-skipped[data-memory="{beta.proven}"]')
           ).to_contain_text("rejected by the user")
    assert beta.claude.read_bytes() == beta.original
    assert beta.claude.stat().st_mtime_ns == before


def test_undoing_a_consolidation_restores_its_sources(
        review_page: Page, reviewing: Reviewing) -> None:
    """Undo on a consolidation: its sources are active again, the proven memory is expired
    and its history says the user undid it."""
    daemon, projects = reviewing.daemon, reviewing.routed
    beta = projects["beta"]
    review_page.goto(f"{base_url(daemon)}/ui/review")
    review_page.once("dialog", lambda dialog: dialog.accept())
    review_page.locator(f'#consolidations li[data-id="{beta.proven}"]').get_by_role(
        "button", name="Undo").click()
    expect(review_page.locator(f'#consolidations li[data-id="{beta.proven}"]')
           ).to_contain_text("consolidation undone by the user")
    states = {s: daemon.client.request("GET", f"/v1/memories/{s}")["state"]
              for s in beta.sources}
    assert states == dict.fromkeys(beta.sources, "active")
    again = daemon.client.request("POST", "/v1/jobs/cluster", {})["clusters"]
    assert [c for c in again if len(set(c["members"]) & set(beta.sources)) > 1] == []
    review_page.goto(f"{base_url(daemon)}/ui/memories/{beta.proven}")
    expect(review_page.locator("#state")).to_contain_text("expired")
    expect(review_page.locator("#history")).to_contain_text(
        "expired because consolidation undone by the user")
    review_page.goto(f"{base_url(daemon)}/ui/memories/{beta.sources[0]}")
    expect(review_page.locator("#history")).to_contain_text("restored by the user")


def test_an_edited_proposal_is_written_as_a_new_memory(
        review_page: Page, reviewing: Reviewing) -> None:
    """Edit before accepting: the edited text becomes a proven memory made from the proposed
    one (which expires into it), and exactly its entry is written."""
    daemon, projects = reviewing.daemon, reviewing.routed
    gamma = projects["gamma"]
    edited = "Set pool_size=20 in db.py: the default pool runs dry under load"
    review_page.goto(f"{base_url(daemon)}/ui/review")
    item = review_page.locator(f'#proposals li.proposal[data-memory="{gamma.proven}"]')
    item.locator("summary").click()
    item.locator("textarea").fill(edited)
    item.get_by_role("button", name="Accept as edited").click()
    written = review_page.locator("#routes li.action-written", has_text=str(gamma.root))
    expect(written).to_have_count(1)
    new = int(written.get_attribute("data-memory") or 0)
    assert new > gamma.proven and memory_text(daemon, new) == edited
    assert gamma.claude.read_bytes() == insert_memory(gamma.original.decode(), new,
                                                      edited).encode()
    old = daemon.client.request("GET", f"/v1/memories/{gamma.proven}")
    assert (old["state"], old["expiry_reason"]) == ("expired", f"consolidated into {new}")


def test_a_waiting_consolidation_is_recorded_as_shown_when_accepted(
        review_page: Page, reviewing: Reviewing) -> None:
    """Review mode merged nothing; Accept records the merge the page showed, and the
    cluster's members expire into it."""
    daemon, cluster = reviewing.daemon, reviewing.clusters["delta"]
    review_page.goto(f"{base_url(daemon)}/ui/review")
    item = review_page.locator(f'#merges li.merge[data-cluster="{cluster}"]')
    shown = item.locator(".merged").inner_text()
    members = [c for c in daemon.client.request("GET", "/v1/clusters?open=1")["clusters"]
               if c["id"] == cluster][0]["members"]
    item.get_by_role("button", name="Accept", exact=True).click()
    expect(review_page.locator(f'#merges li.merge[data-cluster="{cluster}"]')).to_have_count(0)
    proven = next(c for c in daemon.client.request("GET", "/v1/clusters")["clusters"]
                  if c["id"] == cluster)["consolidated_into"]
    assert memory_text(daemon, proven) == shown
    assert {daemon.client.request("GET", f"/v1/memories/{m}")["state"] for m in members} == {
        "expired"}
    expect(review_page.locator(f'#consolidations li[data-id="{proven}"]')).to_contain_text(
        "proven")


def test_a_rejected_consolidation_closes_its_cluster_for_good(
        review_page: Page, reviewing: Reviewing) -> None:
    """Reject keeps the members active, closes the cluster unmerged, and clustering again
    never groups them."""
    daemon, cluster = reviewing.daemon, reviewing.clusters["epsilon"]
    review_page.goto(f"{base_url(daemon)}/ui/review")
    review_page.locator(f'#merges li.merge[data-cluster="{cluster}"]').get_by_role(
        "button", name="Reject").click()
    expect(review_page.locator(f'#merges li.merge[data-cluster="{cluster}"]')).to_have_count(0)
    found = next(c for c in daemon.client.request("GET", "/v1/clusters")["clusters"]
                 if c["id"] == cluster)
    assert found["consolidated_into"] == 0
    assert {daemon.client.request("GET", f"/v1/memories/{m}")["state"]
            for m in found["members"]} == {"active"}
    again = daemon.client.request("POST", "/v1/jobs/cluster", {})["clusters"]
    assert [c for c in again if len(set(c["members"]) & set(found["members"])) > 1] == []
    review_page.goto(f"{base_url(daemon)}/ui/memories/{found['members'][0]}")
    expect(review_page.locator("#history")).to_contain_text("rejected by the user")
