"""``memlane restore``: a new state directory from a backup, with every forget the ledger
holds that the backup predates applied again (so no forgotten text comes back)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from memlane.daemon.adapters.paths import Paths
from memlane.daemon.domain.forgetting import gather_traces, purge
from memlane.events.ledger import read_ledger
from memlane.events.log import EventLog, read_log
from memlane.events.model import Consolidated, ForgetRequested, Forgotten, Stored
from memlane.projections import queries
from memlane.projections.catchup import Projections

Progress = Callable[[int, int], None]


def restore(source: Path, into: Paths, *, ledger: Path | None,
            progress: Progress | None = None) -> dict[str, Any]:
    """Rebuild ``into`` (holding no log yet) from the backup at ``source``."""
    manifest = _manifest(source)
    if into.log_dir.exists() and any(into.log_dir.iterdir()):
        raise ValueError(f"{into.home} already holds a log; restore into a new directory")
    _copy_tree(source / "log", into.log_dir, progress)
    log = EventLog.open(into.log_dir)  # checks the copy holds every seq up to the position
    try:
        forgotten = _forget_again(log, read_ledger(ledger) if ledger else [])
        if manifest.get("projections") and not forgotten:
            _copy_tree(source / "projections", into.sqlite.parent, None)
        projections = Projections(into.sqlite, into.vectors)
        projections.catch_up(into.log_dir, log.last_seq)
        counts = queries.count_by_state(projections.sqlite.conn)
        projections.close()
        return {"home": str(into.home), "position": manifest["position"],
                "last_seq": log.last_seq, "forgotten_again": forgotten, "memories": counts}
    finally:
        log.close()


def _manifest(source: Path) -> dict[str, Any]:
    try:
        manifest = json.loads((source / "backup.json").read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{source} is not a memlane backup (no readable backup.json: {exc})")
    if manifest.get("format") != 1:
        raise ValueError(f"{source} is a backup in format {manifest.get('format')}, which this "
                         "memlane does not read: upgrade memlane")
    return manifest  # type: ignore[no-any-return]


def _copy_tree(source: Path, target: Path, progress: Progress | None) -> None:
    files = sorted(p for p in source.iterdir() if p.is_file())
    total, done = sum(p.stat().st_size for p in files), 0
    target.mkdir(parents=True, exist_ok=True, mode=0o700)
    for path in files:
        shutil.copyfile(path, target / path.name)
        done += path.stat().st_size
        if progress is not None:
            progress(done, total)


def _forget_again(log: EventLog, entries: list[dict[str, Any]]) -> list[int]:
    """Forget again what the ledger holds and the restored log still remembers (same id,
    same content hash): rewrite its records, then record the forget."""
    if not entries:
        return []
    hashes, done = {}, set()
    for record in read_log(log.directory, 1, upto=log.last_seq):
        event = record.event
        if isinstance(event, Stored | Consolidated):
            hashes[event.id] = event.content_hash
        elif isinstance(event, Forgotten):
            done.add(event.memory)
    ids = sorted({e["memory"] for e in entries
                  if hashes.get(e["memory"]) == e.get("content_hash") and e["memory"] not in done})
    if not ids:
        return []
    traces = gather_traces(read_log(log.directory, 1, upto=log.last_seq), ids)
    log.rewrite(purge(ids, traces.queries))
    request = log.append([ForgetRequested(memories=tuple(ids))])[0]
    log.append([Forgotten(memory=m, content_hash=hashes[m], request=request.seq) for m in ids])
    return ids
