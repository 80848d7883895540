"""Work the CLI does on the state directory itself when no daemon runs (it takes the lock)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from memlane.daemon.adapters.paths import Paths, resolve_paths
from memlane.events.log import EventLog
from memlane.projections.catchup import Projections, committed_seq


def rebuild_offline(paths: Paths, progress: Callable[[int, int], None] | None = None
                    ) -> dict[str, Any]:
    """Replay the whole log into fresh projections, holding the writer lock meanwhile."""
    log = EventLog.open(paths.log_dir, acknowledged_at_least=committed_seq(
        paths.sqlite, paths.vectors))
    try:
        projections = Projections(paths.sqlite, paths.vectors)
        count = projections.rebuild(paths.log_dir, log.last_seq, progress=progress)
        projections.close()
        return {"replayed": count, "last_seq": log.last_seq}
    finally:
        log.close()


def compact_offline(paths: Paths, *, retention_days: int | None = None,
                    progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Compact the log in place while no daemon runs (holding the writer lock)."""
    import time
    from datetime import UTC, datetime, timedelta

    from memlane.daemon.adapters.settings import Settings
    from memlane.daemon.service.compaction import report
    from memlane.events.retention import compact

    days = Settings.load(paths.config).retention_days if retention_days is None \
        else retention_days
    started = time.monotonic()
    cutoff = datetime.now(UTC) - timedelta(days=days)
    log = EventLog.open(paths.log_dir, acknowledged_at_least=committed_seq(
        paths.sqlite, paths.vectors))
    try:
        projections = Projections(paths.sqlite, paths.vectors)  # caught up: nothing is
        projections.catch_up(paths.log_dir, log.last_seq)      # replayed from mid-segment
        projections.close()
        prepared = compact(log, cutoff=cutoff, floors=[projections.sqlite.applied_seq],
                           progress=progress)
        return report(prepared, cutoff, time.monotonic() - started)
    finally:
        log.close()


def _copy_compacted(source: Path, target: Path, last: int | None, moment: Any) -> int:
    """Copy the segments up to the end of the compacted part of the log whole (their records
    no longer follow one another), or refuse a point inside it; returns the seq to go on from."""
    import shutil

    from memlane.events.compactor import compacted_through
    from memlane.events.log import read_log
    from memlane.events.segments import list_segments

    through = compacted_through(source)
    if not through:
        return 1
    after = next(read_log(source, through + 1), None)
    since = f" ({after.at.isoformat()})" if after is not None else ""
    if (last is not None and last <= through) or (
            moment is not None and (after is None or moment < after.at)):
        raise ValueError(f"compacted away: the log keeps every event only from seq "
                         f"{through + 1}{since} on; replay to a later point (or restore an "
                         f"older backup)")
    target.mkdir(parents=True, exist_ok=True, mode=0o700)
    for path in list_segments(source):
        if int(path.stem) <= through:
            shutil.copyfile(path, target / path.name)
    return through + 1


def replay_until(paths: Paths, until: str, into: Path) -> dict[str, Any]:
    """Copy the log up to ``until`` (a seq or an ISO timestamp) into a new state directory
    ``into`` and build its projections: a memlane home showing the state as it was then."""
    from datetime import datetime
    from itertools import islice, takewhile

    from memlane.events.log import read_log
    from memlane.projections import queries

    if into.exists() and any(into.iterdir()):
        raise ValueError(f"{into} is not empty; replay into a new directory")
    moment = None if until.isdigit() else datetime.fromisoformat(until).astimezone()
    last = int(until) if moment is None else None
    target = resolve_paths({"MEMLANE_HOME": str(into)})
    start = _copy_compacted(paths.log_dir, target.log_dir, last, moment)
    log = EventLog.open(target.log_dir)
    try:
        records = takewhile(lambda r: moment is None or r.at <= moment,
                            read_log(paths.log_dir, start, upto=last))
        while batch := list(islice(records, 5000)):
            log.append_records(batch)
        projections = Projections(target.sqlite, target.vectors)
        projections.catch_up(target.log_dir, log.last_seq)
        counts = queries.count_by_state(projections.sqlite.conn)
        projections.close()
        return {"until_seq": log.last_seq, "home": str(into), "memories": counts}
    finally:
        log.close()


def backup_offline(paths: Paths, dest: str, *, projections: bool,
                   progress: Callable[[int, int], None]) -> dict[str, Any]:
    """The backup the daemon takes (``daemon/service/backups.py``), taken here while no daemon
    runs: the writer lock keeps one from starting meanwhile."""
    import time

    from memlane.daemon.service.backups import check_target, copy_projections, write_backup

    started = time.monotonic()
    target = check_target(dest)
    log = EventLog.open(paths.log_dir, acknowledged_at_least=committed_seq(
        paths.sqlite, paths.vectors))
    try:
        snapshot = log.snapshot()
        try:
            manifest = write_backup(snapshot, target, started=started, progress=progress,
                                    projections=(lambda into: copy_projections(
                                        paths.sqlite, paths.vectors, into))
                                    if projections else None)
        finally:
            snapshot.close()
    finally:
        log.close()
    return {**manifest, "path": str(target)}
