"""HTTP routes: access checks, body validation, and dispatch to :class:`Core`."""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from memlane.daemon.core import Core
from memlane.daemon.errors import ApiError, Forbidden, MethodNotAllowed, NotFound, Unauthorized
from memlane.daemon.server import Request, Response, error_response, json_response
from memlane.daemon.embeddings_api import create_embeddings
from memlane.daemon.protocol import (
    BriefingBody,
    CalibrateBody,
    EmbeddingsBody,
    ImportBody,
    JobBody,
    SearchBody,
    StoreBody,
    decode_body,
)
from memlane.daemon.token import token_matches
from memlane.projections import queries

log = structlog.get_logger()
_LOCAL_HOSTS = re.compile(r"^(localhost|127\.0\.0\.1|\[::1\])(:\d{1,5})?$", re.IGNORECASE)
_MEMORY = re.compile(r"^/v1/memories/(\d{1,18})(?:/(links|lineage|history|forget|restore))?$")
_MEMORY_POSTS = ("forget", "restore")
_HOOK = re.compile(r"^/hooks/([A-Za-z]{1,40})$")
_JOB = re.compile(r"^/v1/jobs/(cluster|consolidate|route|age)$")

Route = Callable[[Core, Request], Awaitable[Any]]


def check_access(request: Request, token: str) -> None:
    """Refuse browser origins and (on TCP) foreign Host headers and missing tokens."""
    if "origin" in request.headers:
        raise Forbidden("requests from browsers (with an Origin header) are refused")
    if request.transport != "tcp":
        return
    if not _LOCAL_HOSTS.match(request.headers.get("host", "")):
        raise Forbidden("the Host header must name localhost (DNS rebinding protection)")
    if not token_matches(token, request.headers.get("authorization")):
        raise Unauthorized("missing or wrong bearer token; `memlane token` prints it")


async def _store(core: Core, request: Request) -> Any:
    return await core.store(decode_body(request.body, StoreBody))


async def _import(core: Core, request: Request) -> Any:
    return await core.import_many(decode_body(request.body, ImportBody).memories)


async def _search(core: Core, request: Request) -> Any:
    return {"hits": await core.search(decode_body(request.body, SearchBody))}


async def _embeddings(core: Core, request: Request) -> Any:
    return await create_embeddings(core.engine, decode_body(request.body, EmbeddingsBody))


async def _status(core: Core, request: Request) -> Any:
    return await core.status()


async def _health(core: Core, request: Request) -> Any:
    embedder = core.engine.embedder
    state = "ready" if embedder else ("failed" if core.engine.load_error else "loading")
    return {"status": state, "model": embedder.spec.name if embedder else None,
            "pipeline": embedder.pipeline if embedder else None, "error": core.engine.load_error}


async def _export(core: Core, request: Request) -> Any:
    rows = await core.export(project=request.query.get("project"),
                             include_expired=request.query.get("include_expired") == "1")
    return {"memories": rows}


async def _rebuild(core: Core, request: Request) -> Any:
    return await core.rebuild()


async def _calibrate(core: Core, request: Request) -> Any:
    return await core.calibrate(apply=decode_body(request.body or b"{}", CalibrateBody).apply)


async def _routes(core: Core, request: Request) -> Any:
    return {"routes": await core.read(queries.routes)}


async def _briefing(core: Core, request: Request) -> Any:
    return await core.briefing(decode_body(request.body, BriefingBody))


async def _clusters(core: Core, request: Request) -> Any:
    open_only = request.query.get("open") == "1"
    return {"clusters": await core.read(lambda conn: queries.clusters(conn, open_only=open_only))}


async def _memory_view(core: Core, memory_id: int, view: str | None) -> Any:
    memory = await core.get(memory_id)
    if view == "links":
        links = await core.read(lambda conn: queries.links_of(conn, memory_id))
        return {"links": [{"id": memory_id, "other": other, "similarity": round(sim, 6)}
                          for other, sim in links]}
    if view == "history":
        return {"id": memory_id, "events": await core.history(memory_id)}
    if view == "lineage":
        return {"id": memory_id, **await core.read(lambda conn: queries.lineage_of(conn, memory_id))}
    return memory


async def _job(core: Core, name: str, request: Request) -> Any:
    assert core.lifecycle is not None
    options = decode_body(request.body or b"{}", JobBody)
    if name == "age":
        return await core.lifecycle.run_job("age", dry_run=options.dry_run)
    if name == "route":
        return await core.lifecycle.run_job("route", dry_run=options.dry_run, write=options.write)
    if name == "consolidate":
        return await core.lifecycle.run_job("consolidate", offline=options.offline)
    return await core.lifecycle.run_job(name)


ROUTES: dict[str, dict[str, Route]] = {
    "/v1/memories": {"POST": _store},
    "/v1/import": {"POST": _import},
    "/v1/search": {"POST": _search},
    "/v1/embeddings": {"POST": _embeddings},
    "/v1/status": {"GET": _status},
    "/v1/health": {"GET": _health},
    "/v1/rebuild": {"POST": _rebuild},
    "/v1/export": {"GET": _export},
    "/v1/clusters": {"GET": _clusters},
    "/v1/briefing": {"POST": _briefing},
    "/v1/routes": {"GET": _routes},
    "/v1/calibrate": {"POST": _calibrate},
}


def make_handler(core: Core, token: str) -> Callable[[Request], Awaitable[Response]]:
    """The request handler: every error becomes a JSON error with a fitting status."""

    async def handle(request: Request) -> Response:
        started = time.perf_counter()
        response = await _answer(request)
        # One line per request: what was asked and how it went, never bodies or headers.
        log.info("request", method=request.method, path=request.path, via=request.transport,
                 status=response.status, ms=round((time.perf_counter() - started) * 1000, 2))
        return response

    async def _answer(request: Request) -> Response:
        try:
            check_access(request, token)
            return json_response(await dispatch(core, request))
        except ApiError as exc:
            return error_response(exc)
        except Exception:
            log.exception("request_failed", method=request.method, path=request.path)
            return error_response(ApiError("internal error; see the daemon log"))

    return handle


async def dispatch(core: Core, request: Request) -> Any:
    if match := _MEMORY.match(request.path):
        memory_id, view = int(match.group(1)), match.group(2)
        if request.method != ("POST" if view in _MEMORY_POSTS else "GET"):
            raise MethodNotAllowed(f"{request.method} is not allowed on {request.path}")
        if view == "forget":
            return await core.forget(memory_id)
        if view == "restore":
            return await core.restore(memory_id)
        return await _memory_view(core, memory_id, view)
    if match := _HOOK.match(request.path):
        if request.method != "POST":
            raise MethodNotAllowed(f"{request.method} is not allowed on {request.path}")
        assert core.hooks is not None
        return await core.hooks.handle(match.group(1), request.body)
    if match := _JOB.match(request.path):
        if request.method != "POST":
            raise MethodNotAllowed(f"{request.method} is not allowed on {request.path}")
        return await _job(core, match.group(1), request)
    methods = ROUTES.get(request.path)
    if methods is None:
        raise NotFound(f"no route {request.path}")
    route = methods.get(request.method)
    if route is None:
        raise MethodNotAllowed(f"{request.method} is not allowed on {request.path}")
    return await route(core, request)
