"""The viewer's routes under ``/ui/``: pages, fragments, the live feed, and changes.

Access (Host, Origin, CSRF on changes) was checked on the head (``api/access.py``); a page
asked for without a session is answered with the login page, and nothing else is shown.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

import msgspec

from memlane.daemon.api.bodies import decode_body
from memlane.daemon.api.server import Request, Response, json_response
from memlane.daemon.api.ui.render import SECURITY_HEADERS, page, redirect, static_response
from memlane.daemon.api.ui.sessions import Sessions
from memlane.daemon.domain.errors import BadRequest, MethodNotAllowed, NotFound
from memlane.daemon.service.lifecycle import Lifecycle
from memlane.daemon.service.memories import Memories
from memlane.daemon.service.requests import JobBody, Text
from memlane.daemon.service.review import Review
from memlane.daemon.service.viewer import Viewer
from memlane.projections.viewer_queries import TIMELINE_FILTERS

_MEMORY = re.compile(r"^/ui/memories/(\d{1,18})(?:/(forget|restore|pin|unpin|edit))?$")
_JOB = re.compile(r"^/ui/jobs/(cluster|consolidate)$")
_UNDO = re.compile(r"^/ui/review/consolidations/(\d{1,18})/undo$")
_CLUSTER = re.compile(r"^/ui/review/clusters/(\d{1,18})/(accept|reject)$")
_ROUTE = re.compile(r"^/ui/review/routes/(\d{1,18})/(accept|reject|undo)$")
_STATIC = re.compile(r"^/ui/static/([A-Za-z0-9_.-]{1,64})$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True)
class Ui:
    """What the viewer's routes use (built by the composition root)."""

    sessions: Sessions
    viewer: Viewer
    memories: Memories
    lifecycle: Lifecycle
    review: Review


Page = Callable[[Ui, Request, str], Awaitable[Response]]


class EditBody(msgspec.Struct, forbid_unknown_fields=True):
    text: Text


class AcceptBody(msgspec.Struct, forbid_unknown_fields=True):
    """The digest of the file the diff was shown for; ``text``: the memory as edited."""

    digest: Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{32}$")]
    text: Text | None = None


async def serve(ui: Ui, request: Request) -> Response:
    """Answer a request under ``/ui/``."""
    if match := _STATIC.match(request.path):
        found = static_response(match.group(1))
        if found is None:
            raise NotFound(f"no static file {match.group(1)}")
        return found
    if request.path == "/ui/login":
        return _log_in(ui, request)
    session = ui.sessions.session_of(request)
    if session is None:
        return page("login.html", 401)
    if request.method == "POST":
        return await _change(ui, request)
    if request.method not in ("GET", "HEAD"):
        raise MethodNotAllowed(f"{request.method} is not allowed on {request.path}")
    csrf = ui.sessions.csrf_token(session)
    if match := _MEMORY.match(request.path):
        if match.group(2):
            raise MethodNotAllowed(f"{request.method} is not allowed on {request.path}")
        return page("memory.html", csrf=csrf, **await ui.viewer.memory(int(match.group(1))))
    handler = PAGES.get(request.path)
    if handler is None:
        raise NotFound(f"no page {request.path}")
    return await handler(ui, request, csrf)


def _log_in(ui: Ui, request: Request) -> Response:
    cookie = ui.sessions.log_in(request.query.get("code", ""))
    if cookie is None:
        return page("login.html", 401, expired=bool(request.query.get("code")))
    return redirect("/ui/", ("set-cookie", cookie))


def _filters(request: Request) -> dict[str, str]:
    found = {name: request.query[name] for name in TIMELINE_FILTERS if request.query.get(name)}
    for name in ("since", "until"):
        if _DATE.match(request.query.get(name, "")):
            found[name] = request.query[name]
    return found


def _id(request: Request, name: str) -> int | None:
    value = request.query.get(name, "")
    if not value:
        return None
    if not value.isdigit() or len(value) > 18:
        raise BadRequest(f"{name} must be a memory id")
    return int(value)


async def _timeline(ui: Ui, request: Request, csrf: str) -> Response:
    filters = _filters(request)
    found = await ui.viewer.timeline(filters, before=_id(request, "before"))
    return page("timeline.html", csrf=csrf, filters=filters, facets=await ui.viewer.facets(),
                **found)


async def _rows(ui: Ui, request: Request, csrf: str) -> Response:
    found = await ui.viewer.timeline(_filters(request), before=_id(request, "before"),
                                     after=_id(request, "after"))
    return page("rows.html", **found)


async def _search(ui: Ui, request: Request, csrf: str) -> Response:
    """The search page, or (``fragment=1``, the page's own fetch) only its results, which
    need no filter choices; ``Server-Timing`` says where the daemon's time went."""
    query, project = request.query.get("q", "").strip(), request.query.get("project") or None
    started = time.perf_counter()
    hits = await ui.viewer.search(query, project) if query else []
    searched = time.perf_counter()
    if request.query.get("fragment") == "1":
        response = page("results.html", query=query, hits=hits)
    else:
        response = page("search.html", csrf=csrf, query=query, project=project or "",
                        hits=hits, facets=await ui.viewer.facets())
    done = time.perf_counter()
    response.headers.append(("server-timing", f"search;dur={(searched - started) * 1000:.1f}, "
                             f"render;dur={(done - searched) * 1000:.1f}, "
                             f"total;dur={(done - started) * 1000:.1f}"))
    return response


async def _graph(ui: Ui, request: Request, csrf: str) -> Response:
    facets = await ui.viewer.facets()
    project = request.query.get("project") or (facets["project"] or ["global"])[0]
    return page("graph.html", csrf=csrf, project=project, facets=facets)


async def _graph_data(ui: Ui, request: Request, csrf: str) -> Response:
    response = json_response(await ui.viewer.graph(request.query.get("project", "global")))
    response.headers.extend([*SECURITY_HEADERS, ("cache-control", "no-store")])
    return response


async def _health(ui: Ui, request: Request, csrf: str) -> Response:
    return page("health.html", csrf=csrf, health=await ui.viewer.health())


async def _review(ui: Ui, request: Request, csrf: str) -> Response:
    return page("review.html", csrf=csrf, **await ui.review.overview())


async def _live(ui: Ui, request: Request, csrf: str) -> Response:
    return Response(200, b"", "text/event-stream",
                    [*SECURITY_HEADERS, ("cache-control", "no-store")],
                    stream=_events(ui.viewer))


async def _events(viewer: Viewer) -> AsyncGenerator[bytes, None]:
    yield b"retry: 1000\n\n"
    async for change in viewer.live():
        yield b"data: " + msgspec.json.encode(change) + b"\n\n"


async def _change(ui: Ui, request: Request) -> Response:
    """A change the page asked for (session, Origin and CSRF token already checked)."""
    answer: Any
    if (match := _MEMORY.match(request.path)) and match.group(2):
        memory_id = int(match.group(1))
        if match.group(2) == "forget":
            answer = await ui.memories.forget(memory_id)
        elif match.group(2) == "restore":
            answer = await ui.memories.restore(memory_id)
        elif match.group(2) == "edit":
            answer = await ui.viewer.edit(memory_id, decode_body(request.body, EditBody).text)
        else:
            answer = await ui.viewer.pin(memory_id, pinned=match.group(2) == "pin")
    elif match := _JOB.match(request.path):
        options = decode_body(request.body or b"{}", JobBody)
        extra = {"offline": options.offline} if match.group(1) == "consolidate" else {}
        answer = await ui.lifecycle.run_job(match.group(1), **extra)
    elif match := _UNDO.match(request.path):
        answer = await ui.review.undo_consolidation(int(match.group(1)))
    elif match := _CLUSTER.match(request.path):
        answer = await _review_cluster(ui.review, int(match.group(1)), match.group(2), request)
    elif match := _ROUTE.match(request.path):
        answer = await _review_route(ui.review, int(match.group(1)), match.group(2), request)
    else:
        raise NotFound(f"no change {request.path}")
    response = json_response(answer)
    response.headers.extend([*SECURITY_HEADERS, ("cache-control", "no-store")])
    return response


async def _review_cluster(review: Review, cluster: int, verdict: str, request: Request) -> Any:
    if verdict == "accept":
        return await review.proposals.accept(cluster, decode_body(request.body, EditBody).text)
    return await review.proposals.reject(cluster)


async def _review_route(review: Review, memory: int, verdict: str, request: Request) -> Any:
    if verdict == "accept":
        body = decode_body(request.body, AcceptBody)
        return await review.accept_route(memory, digest_seen=body.digest, text=body.text)
    if verdict == "reject":
        return await review.reject_route(memory)
    return await review.undo_route(memory)


PAGES: dict[str, Page] = {
    "/ui/": _timeline,
    "/ui/rows": _rows,
    "/ui/search": _search,
    "/ui/graph": _graph,
    "/ui/graph.json": _graph_data,
    "/ui/health": _health,
    "/ui/review": _review,
    "/ui/live": _live,
}
