"""The viewer in a real browser, on a real daemon holding 2,000 memories: the live timeline,
search, the graph, a memory's history after a consolidation, forget, and escaped text."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.e2e.daemon import DaemonProcess
from tests.ui.browser import base_url, screenshot
from tests.ui.conftest import KNOWN, POOL

LIVE_WAIT = 30_000  # ms: generous, on a loaded machine


def memory_id(daemon: DaemonProcess, text: str, project: str = "bulk") -> int:
    return int(daemon.client.request("POST", "/v1/memories",
                                     {"text": text, "project": project})["id"])


def test_the_timeline_shows_the_import_and_a_new_memory_arrives_live(
        bulk_page: Page, bulk: DaemonProcess) -> None:
    """The timeline pages through the 2,000 imported memories, newest first, and a memory
    stored meanwhile appears at the top without a reload."""
    bulk_page.goto(f"{base_url(bulk)}/ui/?project=bulk")
    rows = bulk_page.locator("#timeline li.memory")
    expect(rows).to_have_count(50)
    ids = [int(i) for i in rows.evaluate_all("rows => rows.map(r => r.dataset.id)")]
    assert ids == sorted(ids, reverse=True)
    bulk_page.get_by_role("button", name="Older").click()
    expect(rows).to_have_count(100)
    expect(bulk_page.locator("#live-state")).to_have_text("live")
    fresh = memory_id(bulk, "A memory stored while the timeline is open")
    expect(bulk_page.locator(f'#timeline li.memory[data-id="{fresh}"]')).to_be_visible(
        timeout=LIVE_WAIT)
    assert int(rows.first.get_attribute("data-id") or 0) == fresh
    bulk_page.evaluate("window.scrollTo(0, 0)")
    screenshot(bulk_page, "timeline")


def test_the_timeline_filters_by_kind_and_source(bulk_page: Page, bulk: DaemonProcess) -> None:
    """Filters narrow the rows to the kind and source asked for."""
    bulk_page.goto(f"{base_url(bulk)}/ui/?project=bulk&kind=insight&source=import-b")
    metas = bulk_page.locator("#timeline li.memory .meta").all_inner_texts()
    assert len(metas) == 50
    assert all(" · insight · " in m and " · import-b · " in m for m in metas)


def test_search_finds_a_known_memory_highlighted_with_its_score_parts(
        bulk_page: Page, bulk: DaemonProcess) -> None:
    """The hybrid search finds the known memory among 2,000, marks the query's words, and
    shows the parts of its score on demand."""
    bulk_page.goto(f"{base_url(bulk)}/ui/search")
    bulk_page.get_by_placeholder("Search memories").fill("exponential backoff billing")
    bulk_page.get_by_role("button", name="Search").click()
    known = bulk_page.locator("#hits li.hit", has_text=KNOWN)
    expect(known).to_have_count(1, timeout=LIVE_WAIT)
    expect(known.locator("mark").first).to_have_text(re.compile("billing|exponential|backoff",
                                                                re.IGNORECASE))
    known.locator("details.score summary").click()
    expect(known.locator("details.score dl")).to_contain_text("dense cosine")
    expect(known.locator("details.score dl")).to_contain_text("matched")
    assert bulk_page.evaluate("performance.getEntriesByName('search').length") == 1
    screenshot(bulk_page, "search")


def test_the_graph_renders_the_known_cluster_and_opens_a_memory(
        lived_page: Page, lived: DaemonProcess) -> None:
    """The pool memories, clustered, are nodes of one coloured cluster in cytoscape's model,
    drawn where the daemon placed them, labelled once zoomed in enough to read; clicking a
    node opens its page."""
    clustered = lived.client.request("POST", "/v1/jobs/cluster", {})
    assert clustered, clustered
    pool = {h["id"] for h in lived.client.request(
        "POST", "/v1/search", {"query": POOL[0], "project": "graphs", "k": 3})["hits"]}
    lived_page.goto(f"{base_url(lived)}/ui/graph?project=graphs")
    # The page's CSP forbids eval, so no wait_for_function: wait on what the page marks.
    expect(lived_page.locator("#graph[data-nodes]")).to_be_attached()
    nodes = lived_page.evaluate("window.memlaneGraph.nodes().map(n => "
                          "({id: Number(n.id()), cluster: n.data('cluster')}))")
    assert pool <= {n["id"] for n in nodes}
    clusters = {n["cluster"] for n in nodes if n["id"] in pool}
    assert len(clusters) == 1 and None not in clusters
    graph = lived_page.evaluate("fetch('/ui/graph.json?project=graphs').then(r => r.json())")
    drawn = lived_page.evaluate("window.memlaneGraph.nodes().map(n => "
                                "[Number(n.id()), n.position('x'), n.position('y')])")
    assert sorted(drawn) == sorted([n["id"], n["x"], n["y"]] for n in graph["nodes"])
    labels = ("(zoom) => { const cy = window.memlaneGraph; cy.zoom(zoom);"
              " return cy.nodes().map(n => n.style('label')); }")
    assert set(lived_page.evaluate(labels, 0.3)) == {""}  # too small to read: not laid out
    assert set(lived_page.evaluate(labels, 1.5)) == {f"#{n['id']}" for n in graph["nodes"]}
    lived_page.evaluate("window.memlaneGraph.fit()")
    screenshot(lived_page, "graph")
    node = min(pool)
    at = lived_page.evaluate(f"window.memlaneGraph.getElementById('{node}').renderedPosition()")
    box = lived_page.locator("#graph").bounding_box()
    assert box is not None
    lived_page.mouse.click(box["x"] + at["x"], box["y"] + at["y"])  # a real click on the node
    lived_page.wait_for_url(f"**/ui/memories/{node}")


def test_a_memory_page_shows_its_history_after_a_consolidation(
        lived_page: Page, lived: DaemonProcess) -> None:
    """Cluster and consolidate from the viewer's buttons; a source's page then tells its
    history in words, and lineage leads both ways."""
    lived_page.goto(f"{base_url(lived)}/ui/")
    lived_page.get_by_role("button", name="Cluster now").click()
    expect(lived_page.locator("#answer")).to_contain_text("clusters")
    lived_page.get_by_role("button", name="Consolidate now (offline)").click()
    expect(lived_page.locator("#answer")).to_contain_text("consolidated", timeout=2 * LIVE_WAIT)
    lineage = [c for c in lived.client.request("GET", "/v1/clusters")["clusters"]
               if c["consolidated_into"] is not None]
    assert lineage, "nothing was consolidated"
    member, proven = lineage[0]["members"][0], lineage[0]["consolidated_into"]
    lived_page.goto(f"{base_url(lived)}/ui/memories/{member}")
    history = lived_page.locator("#history")
    expect(history).to_contain_text("stored from")
    expect(history).to_contain_text("embedded by")
    expect(history).to_contain_text("linked to #")
    expect(history).to_contain_text("clustered with #")
    expect(history).to_contain_text(f"consolidated into #{proven}")
    screenshot(lived_page, "memory")
    lived_page.locator("#lineage").get_by_role("link", name=f"#{proven}").click()
    expect(lived_page.locator("#history")).to_contain_text("consolidated from #")
    expect(lived_page.locator("#lineage")).to_contain_text(f"#{member}")


def test_forget_from_the_page_removes_the_memory_everywhere(
        lived_page: Page, lived: DaemonProcess) -> None:
    """Forget on a memory's page purges it: the answer is shown, the page says forgotten, and
    neither the API, the search nor the timeline nor any state file holds its text."""
    secret = "the vault recipe is quokka-saffron-7781"
    forgotten = memory_id(lived, secret)
    lived_page.goto(f"{base_url(lived)}/ui/memories/{forgotten}")
    lived_page.once("dialog", lambda dialog: dialog.accept())
    lived_page.get_by_role("button", name="Forget").click()
    expect(lived_page.locator("#state")).to_have_text("forgotten", timeout=LIVE_WAIT)
    assert lived.client.request("GET", f"/v1/memories/{forgotten}")["text"] is None
    hits = lived.client.request("POST", "/v1/search", {"query": "quokka saffron"})["hits"]
    assert [h for h in hits if h["id"] == forgotten or "quokka" in (h["text"] or "")] == []
    lived_page.goto(f"{base_url(lived)}/ui/?project=bulk")
    row = lived_page.locator(f'li.memory[data-id="{forgotten}"] .text')
    expect(row).to_have_text("(forgotten)")
    leaks = [p for p in lived.home.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]
    assert leaks == []


def test_a_stored_script_is_shown_as_text_and_never_runs(
        bulk_page: Page, bulk: DaemonProcess) -> None:
    """Markup in a memory is escaped on every page: no script runs, no handler fires."""
    hostile = ('<script>window.pwned = 1</script><img src=x onerror="window.pwned = 2">'
               " hostile markup sample")
    hostile_id = memory_id(bulk, hostile)
    for path in ("/ui/?project=bulk", "/ui/search?q=hostile+markup+sample",
                 f"/ui/memories/{hostile_id}"):
        bulk_page.goto(base_url(bulk) + path)
        expect(bulk_page.locator(f'[data-id="{hostile_id}"] .text').first).to_contain_text(
            "<script>window.pwned = 1</script>")
        assert bulk_page.evaluate("typeof window.pwned") == "undefined"


def test_the_health_page_shows_status_queues_budget_and_log_size(
        lived_page: Page, lived: DaemonProcess) -> None:
    """Health names the model, the queues, the LLM budget and the log's size."""
    lived_page.goto(f"{base_url(lived)}/ui/health")
    expect(lived_page).to_have_title("Health · memlane")
    expect(lived_page.locator("#errors")).to_have_count(1)
    health = lived_page.locator("#health")
    expect(health).to_contain_text("embedding queue")
    expect(health).to_contain_text("no LLM configured")
    expect(health).to_contain_text(re.compile(r"log size\s*[\d,]+ bytes"))
    expect(lived_page.locator("#problems")).to_contain_text("none")
    screenshot(lived_page, "health")



def test_pin_and_unpin_from_a_memory_page(lived_page: Page, lived: DaemonProcess) -> None:
    """Pin marks a memory as never expiring and its history says so; unpin undoes it."""
    pinned = memory_id(lived, "Always run migrations before the deploy step", "graphs")
    lived_page.goto(f"{base_url(lived)}/ui/memories/{pinned}")
    lived_page.get_by_role("button", name="Pin", exact=True).click()
    expect(lived_page.locator("#pinned")).to_have_text("yes: it never expires")
    expect(lived_page.locator("#history")).to_contain_text("pinned: it never expires")
    lived_page.get_by_role("button", name="Unpin").click()
    expect(lived_page.locator("#pinned")).to_have_text("no")
    expect(lived_page.locator("#history")).to_contain_text("unpinned: it ages again")


def test_edit_stores_a_new_memory_that_supersedes_the_old(
        lived_page: Page, lived: DaemonProcess) -> None:
    """Editing saves the new text as a new memory; the old one expires, naming its successor."""
    old = memory_id(lived, "Deploys go out on Tuesdays", "graphs")
    lived_page.goto(f"{base_url(lived)}/ui/memories/{old}")
    lived_page.locator("#editor summary").click()
    lived_page.locator("#edit textarea").fill("Deploys go out on Wednesdays")
    lived_page.get_by_role("button", name="Save as a new memory").click()
    lived_page.wait_for_url(re.compile(rf".*/ui/memories/(?!{old}$)\d+$"))
    new = int(lived_page.url.rsplit("/", 1)[1])
    assert new != old
    expect(lived_page.locator("#memory .text")).to_have_text("Deploys go out on Wednesdays")
    lived_page.goto(f"{base_url(lived)}/ui/memories/{old}")
    expect(lived_page.locator("#history")).to_contain_text(f"expired because superseded by #{new}")


def test_the_health_page_charts_states_and_names_errors_without_their_text(
        lived_page: Page, lived: DaemonProcess) -> None:
    """The chart draws a line per state, ending at today's counts; a warning the daemon logged
    shows by name and numbers, never the text it was about."""
    secret = b"an unreadable spooled prompt about quokka-saffron-9917"
    spool = lived.home / "spool"
    spool.mkdir(mode=0o700, exist_ok=True)
    with open(spool / "prompts.jsonl", "ab") as handle:
        handle.write(secret + b"\n")
    lived.client.request("POST", "/hooks/SessionStart", {
        "session_id": "health-check", "hook_event_name": "SessionStart", "cwd": "/tmp"})
    counts = lived.client.request("GET", "/v1/status")["memories"]
    lived_page.goto(f"{base_url(lived)}/ui/health")
    errors = lived_page.locator("#errors")
    expect(errors).to_contain_text("spool_entry_unreadable")
    expect(errors).to_contain_text(f"size={len(secret)}")
    assert "quokka" not in lived_page.content()
    chart = lived_page.locator("#states-chart")
    for state in ("active", "proven", "expired", "forgotten"):
        line = chart.locator(f'polyline[data-state="{state}"]')
        expect(line).to_have_attribute("data-last", str(counts.get(state, 0)))
    screenshot(lived_page, "health")
