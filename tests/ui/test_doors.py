"""The viewer's doors in a real browser: only the login page without a session, nothing
changed from another origin, no cookie of an earlier daemon instance, strict headers."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from memlane.cli.uicmd import login_url
from tests.e2e.daemon import DaemonProcess
from tests.ui.browser import base_url, log_in, port_of, screenshot
from tests.ui.conftest import watched_page

# Every way a page of another origin can try to change something in the viewer.
ATTACK = """<!doctype html><script>
window.results = [];
const target = "{target}";
async function attempt(name, init) {{
  try {{
    const r = await fetch(target, init);
    window.results.push(name + ":" + r.status + r.type);
  }}
  catch (e) {{ window.results.push(name + ":failed"); }}
}}
(async () => {{
  await attempt("cors", {{method: "POST", credentials: "include", body: "{{}}",
                          headers: {{"x-memlane-csrf": "guess"}}}});
  await attempt("no-cors", {{method: "POST", mode: "no-cors", credentials: "include",
                             body: "{{}}"}});
  window.done = true;
}})();
</script>
<form id="f" method="post" action="{target}"><button>go</button></form>"""


# Every change the viewer takes ({m}: a memory id); each needs the session, the page's CSRF
# token and the own Origin.
CHANGES = ["/ui/memories/{m}/forget", "/ui/memories/{m}/restore", "/ui/memories/{m}/pin",
           "/ui/memories/{m}/unpin", "/ui/memories/{m}/edit", "/ui/jobs/cluster",
           "/ui/jobs/consolidate", "/ui/review/consolidations/{m}/undo",
           "/ui/review/clusters/{m}/accept", "/ui/review/clusters/{m}/reject",
           "/ui/review/routes/{m}/accept", "/ui/review/routes/{m}/reject",
           "/ui/review/routes/{m}/undo"]


@pytest.fixture(params=["/ui/memories/{m}/forget", "/ui/review/consolidations/{m}/undo",
                        "/ui/review/routes/{m}/reject"])
def attacker(request: pytest.FixtureRequest, lived: DaemonProcess) -> Iterator[tuple[str, str]]:
    """A page of another origin (another port on 127.0.0.1), aimed at changing a memory."""
    victim = int(lived.client.request("POST", "/v1/memories", {
        "text": f"a memory another origin tries to change via {request.param}",
        "project": "graphs"})["id"])
    target = base_url(lived) + request.param.format(m=victim)
    page = ATTACK.format(target=target).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
            self.send_response(200)
            self.send_header("content-type", "text/html")
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", str(victim)
    server.shutdown()
    server.server_close()


def test_a_page_of_another_origin_cannot_change_anything(
        browser: Browser, lived: DaemonProcess, attacker: tuple[str, str]) -> None:
    """With a live viewer session in the same browser, another origin's fetches (CORS or
    not) and its form post are refused: the memory is still there."""
    url, victim = attacker
    for page in watched_page(browser, lived):
        page.goto(url)
        page.wait_for_function("window.done === true")
        results = page.evaluate("window.results")
        assert results == ["cors:failed", "no-cors:0opaque"], results
        with page.expect_navigation():
            page.click("#f button")
        assert "forbidden" in page.content()
        screenshot(page, "other-origin")
    assert lived.client.request("GET", f"/v1/memories/{victim}")["state"] == "active"


def test_every_change_needs_the_page_csrf_token(lived_page: Page, lived: DaemonProcess) -> None:
    """From the viewer's own page, with its session and Origin, every change without the CSRF
    token, or with a wrong one, is refused (403) and changes nothing."""
    memory = int(lived.client.request("POST", "/v1/memories", {
        "text": "a memory a change without its token must not touch", "project": "graphs"})["id"])
    lived.wait_idle()  # embedded and linked: only a change could alter it now
    before = lived.client.request("GET", f"/v1/memories/{memory}")
    lived_page.goto(f"{base_url(lived)}/ui/")
    for change in CHANGES:
        statuses = lived_page.evaluate(POST_WITHOUT_TOKEN, change.format(m=memory))
        assert statuses == [403, 403], (change, statuses)
    assert lived.client.request("GET", f"/v1/memories/{memory}") == before


POST_WITHOUT_TOKEN = """async (url) => {
  const statuses = [];
  for (const headers of [{}, {"x-memlane-csrf": "0".repeat(64)}]) {
    const response = await fetch(url, {method: "POST", headers, body: "{}"});
    statuses.push(response.status);
  }
  return statuses;
}"""


@pytest.mark.parametrize("path", ["/ui/", "/ui/search?q=pool", "/ui/memories/2", "/ui/graph",
                                  "/ui/graph.json?project=graphs", "/ui/health", "/ui/rows",
                                  "/ui/live", "/ui/review"])
def test_without_a_session_only_the_login_page_is_served(
        browser: Browser, lived: DaemonProcess, path: str) -> None:
    """A browser without the session sees the login page, and no memory, on every page."""
    context = browser.new_context()
    page = context.new_page()
    response = page.goto(base_url(lived) + path)
    assert response is not None and response.status == 401
    expect(page.locator("#login")).to_contain_text("memlane ui")
    assert "pool" not in page.content().lower()
    context.close()


def test_a_login_code_works_once(browser: Browser, lived: DaemonProcess) -> None:
    """The one-time code logs in once; the same link again shows the login page."""
    url = login_url(lived.paths)
    first, second = browser.new_context(), browser.new_context()
    first.new_page().goto(url)
    assert [c["name"] for c in first.cookies()] == ["memlane_ui"]
    page = second.new_page()
    page.goto(url)
    expect(page.locator("#login")).to_contain_text("used already")
    assert second.cookies() == []
    screenshot(page, "login")
    first.close()
    second.close()


def test_a_cookie_of_an_earlier_daemon_instance_is_refused(
        browser: Browser, short_tmp: Path) -> None:
    """After a restart the browser's cookie (same name, same host) no longer opens a page."""
    (short_tmp / "home").mkdir()
    daemon = DaemonProcess(short_tmp / "home", GEMINI_API_KEY="", GOOGLE_API_KEY="").start()
    try:
        context = browser.new_context()
        page = context.new_page()
        log_in(page, daemon)
        expect(page.locator("#timeline")).to_be_attached()
        daemon.stop()
        daemon.start()
        page.goto(f"{base_url(daemon)}/ui/")
        expect(page.locator("#login")).to_be_visible()
        assert context.cookies()[0]["name"] == "memlane_ui"  # sent, and refused
        context.close()
    finally:
        daemon.stop()


def test_pages_and_assets_carry_strict_headers(lived_page: Page, lived: DaemonProcess) -> None:
    """Pages: a strict CSP, nosniff, no framing, no store, no CORS; assets: their content
    types and a year of caching (their URLs name their content)."""
    cookie = "; ".join(f"{c['name']}={c['value']}" for c in lived_page.context.cookies())
    conn = http.client.HTTPConnection("127.0.0.1", port_of(lived), timeout=30)
    try:
        check_headers(conn, cookie)
    finally:
        conn.close()


def check_headers(conn: http.client.HTTPConnection, cookie: str) -> None:
    conn.request("GET", "/ui/", headers={"Cookie": cookie})
    page = conn.getresponse()
    html = page.read().decode()
    assert page.status == 200
    csp = page.getheader("content-security-policy") or ""
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert page.getheader("x-content-type-options") == "nosniff"
    assert page.getheader("cache-control") == "no-store"
    assert not [h for h, _ in page.getheaders() if h.lower().startswith("access-control-")]
    assert "<script>" not in html and " style=" not in html
    for name, kind in [("app.js", "text/javascript"), ("app.css", "text/css"),
                       ("cytoscape.min.js", "text/javascript")]:
        asset = html if name != "cytoscape.min.js" else ""
        conn.request("GET", f"/ui/static/{name}?v=1")
        response = conn.getresponse()
        response.read()
        assert response.status == 200
        assert (response.getheader("content-type") or "").startswith(kind)
        assert "immutable" in (response.getheader("cache-control") or "")
        assert not asset or f"/ui/static/{name}?v=" in asset
