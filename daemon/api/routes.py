"""HTTP routes: access checks, body decoding into the services' requests, and dispatch.

One canonical log line per request (method, route template, transport, status, time); never
a body, a header or a raw path (paths carry ids and hook names, not text, but a template is
what an operator needs).
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog

from memlane.daemon.domain.errors import ApiError, MethodNotAllowed, NotFound
from memlane.daemon.runtime.storage import storage_error
from memlane.daemon.api.bodies import decode_body
from memlane.daemon.api.embeddings_api import EmbeddingsBody, create_embeddings
from memlane.daemon.api.server import Request, Response, error_response, json_response
from memlane.daemon.api.ui.pages import Ui, serve
from memlane.daemon.runtime.ports import Embeds
from memlane.daemon.runtime.reader import Reader
from memlane.daemon.service.briefings import Briefings
from memlane.daemon.service.calibrate import Calibration
from memlane.daemon.service.backups import Backups
from memlane.daemon.service.capture import Capture
from memlane.daemon.service.compaction import Compaction
from memlane.daemon.service.hooks import Hooks
from memlane.daemon.service.lifecycle import Lifecycle
from memlane.daemon.service.memories import Memories
from memlane.daemon.service.requests import (
    BackupBody,
    BriefingBody,
    CalibrateBody,
    CaptureBody,
    ForgetProjectBody,
    ForgetBody,
    HookInput,
    ImportBody,
    JobBody,
    RevokeBody,
    SearchBody,
    StoreBody,
    VerifyBody,
)
from memlane.daemon.service.search import Search
from memlane.daemon.service.status import Status
from memlane.daemon.service.sync import Sync
from memlane.projections import queries

log = structlog.get_logger()
_MEMORY = re.compile(r"^/v1/memories/(\d{1,40})(?:/(links|lineage|history|forget|restore))?$")
MAX_ID = 2**63 - 1  # SQLite's largest integer: a larger id names no memory
SLOW_REQUEST_MS = 500.0  # logged at info when this slow or refused (the others at debug)
_MEMORY_POSTS = ("forget", "restore")
_HOOK = re.compile(r"^/hooks/([A-Za-z]{1,40})$")
_JOB = re.compile(r"^/v1/jobs/(cluster|consolidate|route|age)$")
_UI_PART = re.compile(r"(?<=/)\d+(?=/|$)")


@dataclass(frozen=True)
class Api:
    """The services the routes dispatch to (built by the composition root)."""

    memories: Memories
    search: Search
    briefings: Briefings
    calibration: Calibration
    hooks: Hooks
    lifecycle: Lifecycle
    status: Status
    engine: Embeds
    reader: Reader
    capture: Capture
    ui: Ui
    compaction: Compaction
    backups: Backups
    sync: Sync | None = None  # set when sync is enabled (``memlane sync enable``)


Route = Callable[[Api, Request], Awaitable[Any]]


async def _store(api: Api, request: Request) -> Any:
    return await api.memories.store(decode_body(request.body, StoreBody))


async def _import(api: Api, request: Request) -> Any:
    return await api.memories.import_many(decode_body(request.body, ImportBody).memories)


async def _search(api: Api, request: Request) -> Any:
    return {"hits": await api.search.search(decode_body(request.body, SearchBody))}


async def _embeddings(api: Api, request: Request) -> Any:
    return await create_embeddings(api.engine, decode_body(request.body, EmbeddingsBody))


async def _login_code(api: Api, request: Request) -> Any:
    return api.ui.sessions.issue_code()


async def _status(api: Api, request: Request) -> Any:
    return await api.status.status()


async def _sync_status(api: Api, request: Request) -> Any:
    return {"enabled": False} if api.sync is None else await api.sync.status()
async def _sync_revoke(api: Api, request: Request) -> Any:
    if api.sync is None:
        raise NotFound("sync is not enabled")
    return await api.sync.revoke(decode_body(request.body, RevokeBody).device)


async def _sizes(api: Api, request: Request) -> Any:
    return await api.status.sizes()


async def _health(api: Api, request: Request) -> Any:
    return await api.status.health()


async def _export(api: Api, request: Request) -> Any:
    rows = await api.memories.export(project=request.query.get("project"),
                                     include_expired=request.query.get("include_expired") == "1")
    return {"memories": rows}


async def _rebuild(api: Api, request: Request) -> Any:
    return await api.memories.rebuild()


async def _rebuild_state(api: Api, request: Request) -> Any:
    return api.memories.rebuild_state()


async def _compact(api: Api, request: Request) -> Any:
    return await api.compaction.compact()


async def _backup(api: Api, request: Request) -> Any:
    body = decode_body(request.body, BackupBody)
    return await api.backups.backup(body.dest, projections=body.projections)


async def _backup_state(api: Api, request: Request) -> Any:
    return api.backups.state()


async def _calibrate(api: Api, request: Request) -> Any:
    body = decode_body(request.body or b"{}", CalibrateBody)
    return await api.calibration.calibrate(apply=body.apply)


async def _verify_forgotten(api: Api, request: Request) -> Any:
    return await api.memories.verify_forgotten(decode_body(request.body, VerifyBody).texts)


async def _routes(api: Api, request: Request) -> Any:
    return {"routes": await api.reader.read(queries.routes)}


async def _capture_state(api: Api, request: Request) -> Any:
    return api.capture.state()


async def _capture_set(api: Api, request: Request) -> Any:
    return api.capture.pause(decode_body(request.body, CaptureBody).paused)


async def _forget_project(api: Api, request: Request) -> Any:
    return await api.capture.forget_project(decode_body(request.body, ForgetProjectBody).project)


async def _briefing(api: Api, request: Request) -> Any:
    return await api.briefings.briefing(decode_body(request.body, BriefingBody))


async def _clusters(api: Api, request: Request) -> Any:
    open_only = request.query.get("open") == "1"
    return {"clusters": await api.reader.read(
        lambda conn: queries.clusters(conn, open_only=open_only))}


async def _memory_view(api: Api, memory_id: int, view: str | None) -> Any:
    memory = await api.memories.get(memory_id)
    if view == "links":
        links = await api.reader.read(lambda conn: queries.links_of(conn, memory_id))
        return {"links": [{"id": memory_id, "other": other, "similarity": round(sim, 6)}
                          for other, sim in links]}
    if view == "history":
        return {"id": memory_id, "events": await api.memories.history(memory_id)}
    if view == "lineage":
        return {"id": memory_id,
                **await api.reader.read(lambda conn: queries.lineage_of(conn, memory_id))}
    return memory


async def _job(api: Api, name: str, request: Request) -> Any:
    options = decode_body(request.body or b"{}", JobBody)
    if name == "age":
        return await api.lifecycle.run_job("age", dry_run=options.dry_run)
    if name == "route":
        return await api.lifecycle.run_job("route", dry_run=options.dry_run, write=options.write)
    if name == "consolidate":
        return await api.lifecycle.run_job("consolidate", offline=options.offline)
    return await api.lifecycle.run_job(name)


ROUTES: dict[str, dict[str, Route]] = {
    "/v1/memories": {"POST": _store},
    "/v1/import": {"POST": _import},
    "/v1/search": {"POST": _search},
    "/v1/embeddings": {"POST": _embeddings},
    "/v1/status": {"GET": _status},
    "/v1/status/sizes": {"GET": _sizes},
    "/v1/health": {"GET": _health},
    "/v1/sync": {"GET": _sync_status},
    "/v1/sync/revoke": {"POST": _sync_revoke},
    "/v1/rebuild": {"GET": _rebuild_state, "POST": _rebuild},
    "/v1/export": {"GET": _export},
    "/v1/clusters": {"GET": _clusters},
    "/v1/briefing": {"POST": _briefing},
    "/v1/routes": {"GET": _routes},
    "/v1/calibrate": {"POST": _calibrate},
    "/v1/capture": {"GET": _capture_state, "POST": _capture_set},
    "/v1/projects/forget": {"POST": _forget_project},
    "/v1/forget/verify": {"POST": _verify_forgotten},
    "/v1/ui/login-code": {"POST": _login_code},
    "/v1/compact": {"POST": _compact},
    "/v1/backup": {"GET": _backup_state, "POST": _backup},
}


def make_handler(api: Api) -> Callable[[Request], Awaitable[Response]]:
    """The request handler: every error becomes a JSON error with a fitting status. Access
    was checked on the request's head, before its body was read (``api/access.py``)."""

    async def handle(request: Request) -> Response:
        started = time.perf_counter()
        response = await _answer(request)
        ms = (time.perf_counter() - started) * 1000
        # Every request at info cost ~0.13 ms of the request loop (a line written to stderr)
        # and filled the journal with a line per prompt: only refusals and slow ones.
        noted = log.info if response.status >= 400 or ms >= SLOW_REQUEST_MS else log.debug
        noted("request", method=request.method, route=template(request.path),
              via=request.transport, status=response.status, ms=round(ms, 2))
        return response

    async def _answer(request: Request) -> Response:
        try:
            answer = await dispatch(api, request)
            return answer if isinstance(answer, Response) else json_response(answer)
        except ApiError as exc:
            return error_response(exc)
        except Exception as exc:
            if (refused := storage_error(exc)) is not None:  # the disk refuses writes: 507
                return error_response(refused)
            log.exception("request_failed", method=request.method,
                          route=template(request.path))
            return error_response(ApiError("internal error; see the daemon log"))

    return handle


def template(path: str) -> str:
    """The route a path matched, with its variable parts named (what the log keeps)."""
    if match := _MEMORY.match(path):
        return "/v1/memories/{id}" + (f"/{match.group(2)}" if match.group(2) else "")
    if _HOOK.match(path) or _JOB.match(path) or path in ROUTES:
        return path
    if path.startswith("/ui/"):
        return _UI_PART.sub("{id}", path) if not path.startswith("/ui/static/") \
            else "/ui/static/{name}"
    return "(unknown)"


def _only(method: str, request: Request) -> None:
    if request.method != method:
        raise MethodNotAllowed(f"{request.method} is not allowed on {request.path}")


async def dispatch(api: Api, request: Request) -> Any:
    if request.path.startswith("/ui/"):
        return await serve(api.ui, request)
    if match := _MEMORY.match(request.path):
        memory_id, view = int(match.group(1)), match.group(2)
        _only("POST" if view in _MEMORY_POSTS else "GET", request)
        if memory_id > MAX_ID:
            raise NotFound(f"no memory with id {memory_id}")
        if view == "forget":
            body = decode_body(request.body or b"{}", ForgetBody)
            return await api.memories.forget(memory_id, keep_descendants=body.keep_descendants)
        if view == "restore":
            return await api.memories.restore(memory_id)
        return await _memory_view(api, memory_id, view)
    if match := _HOOK.match(request.path):
        _only("POST", request)
        api.hooks.handler(match.group(1))  # 404 before the body is read for an unknown hook
        return await api.hooks.handle(match.group(1), decode_body(request.body, HookInput))
    if match := _JOB.match(request.path):
        _only("POST", request)
        return await _job(api, match.group(1), request)
    methods = ROUTES.get(request.path)
    if methods is None:
        raise NotFound(f"no route {request.path}")
    route = methods.get(request.method)
    if route is None:
        raise MethodNotAllowed(f"{request.method} is not allowed on {request.path}")
    return await route(api, request)
