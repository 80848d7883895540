"""The composition root: builds the real parts, recovers, and serves until cancelled.

Start-up order: lock and recover the log, catch the projections up, seed the writer's index,
start the writer, projector and model, bind both listeners; only then is the daemon ready.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import structlog
from anyio.abc import TaskGroup, TaskStatus

from memlane.daemon.consolidator import consolidator_from
from memlane.daemon.core import Core, seed_admission
from memlane.daemon.embedder import Embedder
from memlane.daemon.files import write_atomic
from memlane.daemon.engine import EmbedEngine
from memlane.daemon.server import Limits
from memlane.daemon.aging import AgePolicy
from memlane.daemon.hooks import Hooks
from memlane.daemon.indexer import Indexer
from memlane.daemon.lifecycle import Lifecycle
from memlane.daemon.router import RouteOptions
from memlane.daemon.linker import Linker
from memlane.daemon.listeners import open_tcp_listener, open_unix_listener, tcp_handler, unix_handler
from memlane.daemon.models import default_model_name, resolve_spec
from memlane.daemon.notify import keep_watchdog_fed, notify, watchdog_interval
from memlane.daemon.paths import Paths
from memlane.daemon.projector import Projector
from memlane.daemon.routes import make_handler
from memlane.daemon.settings import Settings
from memlane.daemon.token import ensure_token
from memlane.daemon.writer import Writer
from memlane.events.log import EventLog
from memlane.events.model import ModelChanged, Record
from memlane.projections import queries
from memlane.projections.catchup import Projections

log = structlog.get_logger()
DRAIN_TIMEOUT = 10.0  # well inside the unit's TimeoutStopSec


def model_loader(paths: Paths, settings: Settings) -> Callable[[], Embedder]:
    def load() -> Embedder:
        name = settings.model or default_model_name(paths.models_dir)
        return Embedder.load(resolve_spec(name), paths.models_dir, threads=settings.threads)

    return load


async def run_daemon(paths: Paths, settings: Settings, *,
                     task_status: TaskStatus[Core] = anyio.TASK_STATUS_IGNORED) -> None:
    """Run the daemon until cancelled; ``task_status`` receives the core once it is ready."""
    started = time.monotonic()
    paths.home.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(paths.home, 0o700)  # also when the user created the directory
    event_log = EventLog.open(paths.log_dir)
    projections: Projections | None = None
    try:
        projections = Projections(paths.sqlite, paths.vectors)
        caught_up = await anyio.to_thread.run_sync(
            projections.catch_up, paths.log_dir, event_log.last_seq)
        log.info("recovered", last_seq=event_log.last_seq, replayed=caught_up,
                 truncated_bytes=event_log.truncated_bytes, rebuilt=projections.rebuilt)
        async with anyio.create_task_group() as tg:
            core = await _start_parts(tg, paths, settings, event_log, projections, started)
            core.stop_listening = await _start_listeners(tg, paths, settings, core)
            core.background = tg
            tg.start_soon(_snapshot_vectors, projections, settings.snapshot_interval_s)
            tg.start_soon(_embed_backlog, core)
            tg.start_soon(_run_jobs, core.lifecycle, settings.jobs_interval_s)
            if (interval := watchdog_interval()) is not None:
                tg.start_soon(keep_watchdog_fed, interval)
            log.info("ready", socket=str(paths.socket), pid=os.getpid())
            notify(f"READY=1\nSTATUS=ready: {event_log.last_seq} events, "
                   f"{len(projections.vectors)} vectors")
            task_status.started(core)
    finally:
        with anyio.CancelScope(shield=True):
            if projections is not None:
                await anyio.to_thread.run_sync(_close_in_step, projections, paths, event_log)
            event_log.close()
            paths.pid_file.unlink(missing_ok=True)


def _close_in_step(projections: Projections, paths: Paths, event_log: EventLog) -> None:
    """Apply what was committed but not yet projected, then save: the next start replays
    nothing after a clean stop."""
    try:
        projections.catch_up(paths.log_dir, event_log.last_seq)  # only acknowledged records
    finally:
        projections.close()


async def _start_parts(tg: TaskGroup, paths: Paths, settings: Settings, event_log: EventLog,
                       projections: Projections, started: float) -> Core:
    projector = Projector(projections)
    engine = EmbedEngine(model_loader(paths, settings), window=settings.batch_window_ms / 1000,
                         max_batch=settings.max_batch)
    indexer: Indexer | None = None

    def on_commit(records: list[Record]) -> None:
        projector.push(records)
        if indexer is not None:
            indexer.push(records)

    writer = Writer(event_log, seed_admission(projections), on_commit=on_commit)
    indexer = Indexer(engine, writer, Linker(projections, projector, writer))
    for part in (writer.run, projector.run, engine.run, indexer.run):
        await tg.start(part)
    core = Core(paths=paths, writer=writer, projections=projections, projector=projector,
                engine=engine, indexer=indexer, started=started)
    llm = consolidator_from(os.environ, model=settings.llm_model, base_url=settings.llm_base_url,
                            daily_budget=settings.llm_daily_budget,
                            budget_file=paths.home / "llm-budget.json")
    core.lifecycle = Lifecycle(core, policy=AgePolicy(limit=settings.age_limit),
                               route_options=RouteOptions(settings.route_write_projects,
                                                          settings.route_docs), llm=llm)
    core.hooks = Hooks(core)
    return core


async def _start_listeners(tg: TaskGroup, paths: Paths, settings: Settings,
                           core: Core) -> anyio.CancelScope:
    """Bind both listeners; connections are served in ``tg``, accepting stops when the
    returned scope is cancelled (a graceful shutdown lets requests in flight finish)."""
    handler = core.gate.wrap(make_handler(core, ensure_token(paths.token)))
    limits = Limits()
    slots = anyio.CapacityLimiter(limits.max_connections)
    listeners = [(await open_unix_listener(paths.socket), unix_handler(handler, limits, slots))]
    try:
        tcp = await open_tcp_listener(settings.port)
    except OSError as exc:  # a port clash must not take the Unix socket (and hooks) down
        core.tcp_error = f"cannot listen on 127.0.0.1:{settings.port}: {exc.strerror or exc}"
        log.error("tcp_unavailable", port=settings.port, error=core.tcp_error)
        (paths.runtime / "tcp.port").unlink(missing_ok=True)
    else:
        port = tcp.extra(anyio.abc.SocketAttribute.local_port)
        _write_private(paths.runtime / "tcp.port", f"{port}\n")
        listeners.append((tcp, tcp_handler(handler, limits, slots)))
    _write_private(paths.pid_file, f"{os.getpid()}\n")
    accepting = anyio.CancelScope()
    tg.start_soon(_accept, accepting, listeners, tg)
    return accepting


async def _accept(scope: anyio.CancelScope, listeners: list[tuple[Any, Any]],
                  connections: TaskGroup) -> None:
    with scope:
        async with anyio.create_task_group() as accept:
            for listener, handler in listeners:
                accept.start_soon(_serve, listener, handler, connections)


async def _serve(listener: anyio.abc.SocketListener, handler: Any, connections: TaskGroup) -> None:
    async with listener:
        await listener.serve(handler, task_group=connections)


async def _embed_backlog(core: Core) -> None:
    """Once the model is loaded: record a pipeline change, then embed what lacks a vector."""
    with anyio.move_on_after(600):
        while not core.engine.ready and core.engine.load_error is None:
            await anyio.sleep(0.05)
    embedder = core.engine.embedder
    if embedder is None:
        return
    current = core.projections.vectors.pipeline
    if current != embedder.pipeline:
        await core.writer.append([ModelChanged(model=embedder.spec.name,
                                               pipeline=embedder.pipeline, dims=embedder.dims)])
    core.indexer.pipeline_recorded.set()
    ids = await core.read(lambda conn: queries.unembedded_ids(conn, embedder.pipeline))
    for start in range(0, len(ids), 1000):
        chunk = ids[start:start + 1000]
        texts = await core.read(lambda conn, chunk=chunk: queries.texts_of(conn, chunk))
        core.indexer.enqueue([(i, texts[i]) for i in chunk if i in texts])


async def _run_jobs(lifecycle: Lifecycle | None, interval: float) -> None:
    """Cluster, consolidate, route and age on a timer, or soon after a kick (a session ended);
    clients can also run a job at once."""
    assert lifecycle is not None
    while True:
        with anyio.move_on_after(interval):
            await lifecycle.kicked.wait()
        lifecycle.kicked = anyio.Event()
        await lifecycle.run_all()


async def _snapshot_vectors(projections: Projections, interval: float) -> None:
    while True:
        await anyio.sleep(interval)
        await anyio.to_thread.run_sync(projections.save_vectors)


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_atomic(path, text.encode(), mode=0o600)


async def serve_until_signalled(paths: Paths, settings: Settings) -> None:
    """Run the daemon until SIGTERM or SIGINT, then shut down cleanly."""
    async with anyio.create_task_group() as tg:
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            core = await tg.start(run_daemon, paths, settings)
            async for signum in signals:
                log.info("stopping", signal=signal.Signals(signum).name)
                notify("STOPPING=1")
                await core.shut_down(DRAIN_TIMEOUT)
                tg.cancel_scope.cancel()
                break
