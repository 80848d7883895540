"""The composition root: the only module that knows every concrete part. It builds the real
adapters, hands them to the runtime and the services as ports, recovers, and serves until
cancelled.

Start-up order: lock and recover the log, catch the projections up, seed the writer's index,
start the writer, projector and model, bind both listeners; only then is the daemon ready.
"""

from __future__ import annotations

import dataclasses
import gc
import os
import signal
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import structlog
from anyio.abc import TaskGroup, TaskStatus
from memlane.daemon.adapters import byte_scan, compaction_child
from memlane.daemon.adapters.consolidator import consolidator_from
from memlane.daemon.adapters.embedder import Embedder
from memlane.daemon.adapters.engine import EmbedEngine, halves, start_loading
from memlane.daemon.adapters.files import write_atomic
from memlane.daemon.adapters.git_project import detect_project
from memlane.daemon.adapters.heap import heap_trimmer
from memlane.daemon.adapters.log_output import RECENT_ERRORS
from memlane.daemon.adapters.sync_config import OutboxCursor, SyncConfig, read_sync_config
from memlane.daemon.adapters.model_store import default_model_name
from memlane.daemon.adapters.paths import Paths, ensure_private_dir
from memlane.daemon.adapters.sd_notify import keep_watchdog_fed, notify, watchdog_interval
from memlane.daemon.adapters.settings import Settings
from memlane.daemon.adapters.token_file import ensure_token
from memlane.daemon.api.access import Guard
from memlane.daemon.adapters.spool import SpoolFile
from memlane.daemon.adapters.transcript_file import read_transcript
from memlane.daemon.api.drain import Gate, after_each_busy_spell
from memlane.daemon.api.listeners import (open_tcp_listener, open_unix_listener,
                                          serve_listener, tcp_handler, unix_handler)
from memlane.daemon.api.routes import Api, make_handler
from memlane.daemon.api.ui.pages import Ui
from memlane.daemon.api.ui.sessions import Sessions
from memlane.daemon.api.server import Limits
from memlane.daemon.domain.aging import AgePolicy
from memlane.daemon.domain.errors import StartRefused
from memlane.daemon.domain.identifiers import identifier_key
from memlane.daemon.domain.models import resolve_spec
from memlane.daemon.runtime.backlog import Backlog
from memlane.daemon.runtime.indexer import Indexer
from memlane.daemon.runtime.linker import Linker
from memlane.daemon.runtime.projector import Projector
from memlane.daemon.runtime.reader import Reader
from memlane.daemon.runtime.scheduler import JobScheduler
from memlane.daemon.runtime.storage import ADVICE, LOW_SPACE, disk_refusal, free_bytes
from memlane.daemon.runtime.thresholds import Thresholds
from memlane.daemon.runtime.writer import Writer, seed_admission
from memlane.daemon.service.briefings import Briefings
from memlane.daemon.service.calibrate import Calibration
from memlane.daemon.service.backups import Backups
from memlane.daemon.service.capture import Capture
from memlane.daemon.service.compaction import Compaction
from memlane.daemon.service.hooks import Hooks
from memlane.daemon.service.usage import Usage
from memlane.daemon.service.lifecycle import Lifecycle
from memlane.daemon.service.memories import Memories
from memlane.daemon.service.proposals import Proposals
from memlane.daemon.service.review import Review
from memlane.daemon.service.router import RouteOptions, Router
from memlane.daemon.service.search import Search
from memlane.daemon.service.status import Status
from memlane.daemon.service.sync import Sync, load_global_ids
from memlane.daemon.service.sync_inbox import Inbox
from memlane.daemon.service.sync_outbox import Outbox
from memlane.daemon.service.viewer import Viewer
from memlane.events.log import EventLog, TailCut
from memlane.events.model import Record
from memlane.projections.catchup import Projections, committed_seq
from memlane.projections.damage import is_storage_error

if TYPE_CHECKING:
    from memlane.daemon.adapters.nats_link import NatsLink

log = structlog.get_logger()
DRAIN_TIMEOUT = 10.0  # well inside the unit's TimeoutStopSec
RELEASE_AFTER_S = 10.0  # quiet seconds after a spell of requests before freed memory goes back


@dataclass
class Daemon:
    """A running daemon, as its supervisor sees it."""

    api: Api
    gate: Gate
    stop_listening: anyio.CancelScope

    async def shut_down(self, timeout: float) -> None:
        """Stop accepting, let requests in flight finish (bounded); the caller then cancels."""
        self.stop_listening.cancel()
        finished = await self.gate.drain(timeout)
        log.info("drained", finished=finished, inflight=self.gate.inflight)


def model_loader(paths: Paths, settings: Settings) -> Callable[[], Embedder]:
    def load() -> Embedder:
        name = settings.model or default_model_name(paths.models_dir)
        return Embedder.load(resolve_spec(name), paths.models_dir, threads=settings.threads)

    return load


async def run_daemon(paths: Paths, settings: Settings, *,
                     task_status: TaskStatus[Daemon] = anyio.TASK_STATUS_IGNORED) -> None:
    """Run the daemon until cancelled; ``task_status`` receives it once it is ready."""
    started = time.monotonic()
    with refused_by_disk(paths.home):
        ensure_private_dir(paths.home)  # a real directory of ours, 0700, never through a link
        ensure_private_dir(paths.runtime)
        load_model = start_loading(model_loader(paths, settings))  # while the log recovers and
        # the projections open (a start that finds the log locked loaded it in vain: rare)
        event_log = EventLog.open(paths.log_dir, acknowledged_at_least=committed_seq(
            paths.sqlite, paths.vectors))
    projections: Projections | None = None
    try:
        with refused_by_disk(paths.home):
            projections = Projections(paths.sqlite, paths.vectors)
            caught_up = await anyio.to_thread.run_sync(
                projections.catch_up, paths.log_dir, event_log.last_seq)
        log.info("recovered", last_seq=event_log.last_seq, replayed=caught_up,
                 truncated_bytes=event_log.truncated_bytes, rebuilt=projections.rebuilt,
                 damage=projections.damage.as_dict(),
                 tail_cut=_describe(event_log.tail_cut) or None)
        if event_log.tail_cut is not None and event_log.tail_cut.possibly_acknowledged:
            log.warning("tail_cut_possibly_acknowledged", **_describe(event_log.tail_cut))
        async with anyio.create_task_group() as tg:
            # start-up's long-lived objects (modules, tables, the log) leave the GC's view
            # before anything serves or allocates in bulk: a full pass over them held the GIL
            # 30-35 ms, on the loop when it ran after the listeners opened, and 22-25 ms in
            # the writer's seed, whose allocations set one off (a GC callback placed both)
            gc.collect()
            gc.freeze()
            api = await _start_parts(tg, paths, settings, event_log, projections, started,
                                     load_model)
            gate = Gate()
            accepting = await _start_listeners(tg, paths, settings, api, gate)
            tg.start_soon(api.status.check_sealed_segments)
            if (interval := watchdog_interval()) is not None:
                tg.start_soon(keep_watchdog_fed, interval)
            if (trim := heap_trimmer()) is not None:
                tg.start_soon(partial(after_each_busy_spell, gate, trim, quiet=RELEASE_AFTER_S))
            gc.collect(1)  # the parts' own long-lived objects too: the young generations
            gc.freeze()  # cleared first (cheap), so no cyclic garbage is kept for good
            log.info("ready", socket=str(paths.socket), pid=os.getpid())
            notify(f"READY=1\nSTATUS=ready: {event_log.last_seq} events, "
                   f"{len(projections.vectors)} vectors")
            task_status.started(Daemon(api, gate, accepting))
    finally:
        with anyio.CancelScope(shield=True):
            if projections is not None:
                await anyio.to_thread.run_sync(_close_in_step, projections, paths, event_log)
            event_log.close()
            paths.pid_file.unlink(missing_ok=True)


def _describe(cut: TailCut | None) -> dict[str, Any]:
    if cut is None:
        return {}
    return {**dataclasses.asdict(cut), "segment": str(cut.segment), "copy": str(cut.copy)}


def _close_in_step(projections: Projections, paths: Paths, event_log: EventLog) -> None:
    """Apply what was committed but not yet projected, then save: the next start replays
    nothing after a clean stop (a disk that refuses leaves that to the next start)."""
    try:
        projections.catch_up(paths.log_dir, event_log.last_seq)  # only acknowledged records
        projections.close()
    except (OSError, RuntimeError, sqlite3.DatabaseError) as exc:
        if disk_refusal(exc) is None and not isinstance(exc, RuntimeError):
            raise
        log.warning("projections_not_saved", error=str(exc), action="the next start catches up")
        projections.sqlite.close()


@contextmanager
def refused_by_disk(home: Path) -> Iterator[None]:
    """Turn a full or read-only state directory met at start into :class:`StartRefused`
    (an exit code the service units do not restart: restarting cannot free space). SQLite
    reports some writes a full disk refuses as an I/O error: the free space tells."""
    try:
        yield
    except (OSError, sqlite3.DatabaseError) as exc:
        reason = disk_refusal(exc)
        if reason is None and is_storage_error(exc) and free_bytes(home) < LOW_SPACE:
            reason = "disk_full"
        if reason is None:
            raise
        raise StartRefused(f"cannot start: {ADVICE[reason]} ({exc}); then start memlane "
                           "again (`memlane up` or `systemctl --user start memlane`)",
                           reason) from exc


async def _start_parts(tg: TaskGroup, paths: Paths, settings: Settings, event_log: EventLog,
                       projections: Projections, started: float,
                       load_model: Callable[[], Embedder]) -> Api:
    """Build the runtime and the services over the real adapters, and start their tasks."""
    projector = Projector(projections, log_dir=paths.log_dir)
    engine = EmbedEngine(load_model, window=settings.batch_window_ms / 1000,
                         max_batch=settings.max_batch, twin=halves(settings.threads),
                         trim=heap_trimmer())
    indexer: Indexer | None = None
    outbox: Outbox | None = None

    async def on_commit(records: list[Record]) -> None:
        await projector.push(records)
        if indexer is not None:
            indexer.push(records)
        if outbox is not None:
            outbox.push(records)

    writer = Writer(event_log, partial(seed_admission, projections), on_commit=on_commit)
    reader = Reader(projections, projector, event_log)
    linker = Linker(projections, projector, writer)
    indexer = Indexer(engine, writer, linker)
    backlog = Backlog(engine=engine, reader=reader.bulk(), writer=writer, indexer=indexer,
                      linker=linker, log_dir=paths.log_dir)
    for part in (writer.run, projector.run, engine.run):
        await tg.start(part)
    await tg.start(indexer.run, backlog.missing)
    api = _services(paths, settings, reader=reader, writer=writer, projector=projector,
                    engine=engine, indexer=indexer, started=started, tg=tg)
    try:
        await api.memories.resume_forgets()  # an interrupted forget finishes before we serve
    except byte_scan.ScanFailed as exc:  # scrubbed, not yet proven: retried at the next start
        log.warning("forget_proof_deferred", reason=str(exc))
    if (sync_config := read_sync_config(paths.home)) is not None:
        sync = await _sync(paths, sync_config, reader=reader.bulk(), writer=writer, api=api)
        api, outbox = dataclasses.replace(api, sync=sync), sync.outbox
        api.lifecycle.claim = sync.claim
        api.compaction.hold(sync.hold)  # nothing unpublished is compacted
        api.lifecycle.router.from_teammate = sync.from_teammate  # only proposed, never written
        tg.start_soon(sync.run)
    tg.start_soon(projector.snapshot_vectors, settings.snapshot_interval_s)
    tg.start_soon(backlog.run)
    tg.start_soon(api.hooks.replay_spool)  # marked prompts posted while the daemon was down
    return api


def _services(paths: Paths, settings: Settings, *, reader: Reader, writer: Writer,
              projector: Projector, engine: EmbedEngine, indexer: Indexer, started: float,
              tg: TaskGroup) -> Api:
    thresholds = Thresholds(reader)
    llm = consolidator_from(os.environ, model=settings.llm_model, base_url=settings.llm_base_url,
                            daily_budget=settings.llm_daily_budget,
                            budget_file=paths.home / "llm-budget.json")
    router = Router(reader=reader.bulk(), writer=writer, engine=engine, llm=llm,
                    options=RouteOptions(settings.route_write_projects, settings.route_docs,
                                         review=settings.review),
                    write_file=_write_project_file)
    lifecycle = Lifecycle(reader=reader.bulk(), writer=writer, engine=engine, indexer=indexer,
                          thresholds=thresholds, router=router, llm=llm,
                          policy=AgePolicy(limit=settings.age_limit), review=settings.review)
    compaction = Compaction(writer=writer, reader=reader.bulk(), log_dir=paths.log_dir,
                            retention_days=settings.retention_days,
                            budget_bytes=settings.disk_budget_mb * 1024 * 1024,
                            prepare=compaction_child.prepare_in_child,
                            crash_at=os.environ.get("MEMLANE_TEST_COMPACT_CRASH_AT"))  # tests

    async def scheduled_round() -> None:
        await lifecycle.run_all()
        await compaction.keep_within_budget()

    scheduler = JobScheduler(scheduled_round, settings.jobs_interval_s)
    tg.start_soon(scheduler.run)
    memories = Memories(writer=writer, reader=reader, log_dir=paths.log_dir,
                        identifier_key=identifier_key(ensure_token(paths.token)),
                        write_file=_write_project_file,
                        scan_files=partial(byte_scan.scan_in_child,
                                           timeout=settings.forget_scan_timeout_s),
                        crash_at=os.environ.get("MEMLANE_TEST_CRASH_AT"))  # tests only
    search = Search(reader=reader, writer=writer, engine=engine, indexer=indexer,
                    thresholds=thresholds)
    hooks = Hooks(memories=memories, search=search, reader=reader, kick=scheduler.kick,
                  usage=Usage(writer=writer, reader=reader), spool=SpoolFile(paths.home),
                  ignored_projects=settings.ignore_projects,
                  read_transcript=read_transcript, project_of=detect_project)
    status = Status(reader=reader, log=writer.log, engine=engine, indexer=indexer,
                    projector=projector, home=paths.home,
                    budget=llm.budget if llm is not None else None,
                    hook_failures=lambda: hooks.failures, started=started,
                    recent_errors=RECENT_ERRORS.recent, compaction=compaction.state)
    viewer = Viewer(reader=reader, writer=writer, memories=memories, search=search, status=status,
                    watch=projector.watch, log_dir=paths.log_dir)
    return Api(memories=memories, search=search,
               briefings=Briefings(reader=reader, search=search),
               calibration=Calibration(reader=reader, writer=writer, engine=engine,
                                       thresholds=thresholds, log_dir=paths.log_dir),
               hooks=hooks, lifecycle=lifecycle, status=status, engine=engine, reader=reader,
               compaction=compaction, backups=Backups(writer=writer, reader=reader),
               capture=Capture(sessions=hooks.sessions, memories=memories, reader=reader),
               ui=Ui(sessions=Sessions(), viewer=viewer, memories=memories, lifecycle=lifecycle,
                     review=Review(reader=reader, writer=writer,
                                   write_file=_write_project_file,
                                   lock=lifecycle.job_lock("route"),
                                   proposals=Proposals(reader=reader, writer=writer,
                                                       merge=lifecycle.review_merge,
                                                       lock=lifecycle.job_lock("consolidate")))))


async def _sync(paths: Paths, config: SyncConfig, *, reader: Reader, writer: Writer,
                api: Api) -> Sync:
    """The sync service over NATS, with this device's identity and its global id map."""
    # PyNaCl only when sync is on (most daemons never sign an event): a start does not load it
    from memlane.daemon.adapters.identity import ensure_identity, verify

    identity = ensure_identity(paths.home / "identity.json")
    ids = await anyio.to_thread.run_sync(load_global_ids, identity.device, paths.log_dir,
                                         writer.log.last_seq)

    async def connect() -> NatsLink:
        from memlane.daemon.adapters.nats_link import NatsLink  # nats only when sync is on

        return await NatsLink.connect(config.url, creds=config.creds, team=config.team,
                                      device=identity.device,
                                      projects=sorted(set(config.projects.values())),
                                      replicas=config.replicas)

    outbox = Outbox(reader=reader, log_dir=paths.log_dir, ids=ids, identity=identity,
                    cursor=OutboxCursor(paths.home), team=config.team, projects=config.projects)
    inbox = Inbox(writer=writer, reader=reader, ids=ids, verify=verify, projects=config.projects,
                  finish_forgets=api.memories.resume_forgets)
    return Sync(connect=connect, outbox=outbox, inbox=inbox, ids=ids, reader=reader,
                public_key=identity.public_key, projects=config.projects,
                describe={"device": identity.device, "team": config.team, "url": config.url,
                          "projects": config.projects})


def _write_project_file(path: Path, data: bytes, mode: int | None) -> None:
    write_atomic(path, data, mode=mode)


async def _start_listeners(tg: TaskGroup, paths: Paths, settings: Settings, api: Api,
                           gate: Gate) -> anyio.CancelScope:
    """Bind both listeners; connections are served in ``tg``, accepting stops when the
    returned scope is cancelled (a graceful shutdown lets requests in flight finish)."""
    guard = Guard(ensure_token(paths.token), ensure_token(paths.hook_token), api.ui.sessions)
    handler = guard.wrap(gate.wrap(make_handler(api)))
    limits = Limits()
    # One pool of slots each: a TCP flood never takes the owner's socket slots.
    listeners = [(await open_unix_listener(paths.socket), unix_handler(
        handler, limits, guard.admit, slots=anyio.CapacityLimiter(limits.max_connections)))]
    try:
        tcp = await open_tcp_listener(settings.port)
    except OSError as exc:  # a port clash must not take the Unix socket (and hooks) down
        api.status.tcp_error = f"cannot listen on 127.0.0.1:{settings.port}: {exc.strerror or exc}"
        log.error("tcp_unavailable", port=settings.port, error=api.status.tcp_error)
        (paths.runtime / "tcp.port").unlink(missing_ok=True)
    else:
        port = tcp.extra(anyio.abc.SocketAttribute.local_port)
        _write_private(paths.runtime / "tcp.port", f"{port}\n")
        listeners.append((tcp, tcp_handler(
            handler, limits, guard.admit, slots=anyio.CapacityLimiter(limits.max_connections))))
    _write_private(paths.pid_file, f"{os.getpid()}\n")
    accepting = anyio.CancelScope()
    tg.start_soon(_accept, accepting, listeners, tg)
    return accepting


async def _accept(scope: anyio.CancelScope, listeners: list[tuple[Any, Any]],
                  connections: TaskGroup) -> None:
    with scope:
        async with anyio.create_task_group() as accept:
            for listener, handler in listeners:
                accept.start_soon(serve_listener, listener, handler, connections)


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_atomic(path, text.encode(), mode=0o600)


async def serve_until_signalled(paths: Paths, settings: Settings) -> None:
    """Run the daemon until SIGTERM or SIGINT, then shut down cleanly."""
    async with anyio.create_task_group() as tg:
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            daemon = await tg.start(run_daemon, paths, settings)
            async for signum in signals:
                log.info("stopping", signal=signal.Signals(signum).name)
                notify("STOPPING=1")
                await daemon.shut_down(DRAIN_TIMEOUT)
                tg.cancel_scope.cancel()
                break
