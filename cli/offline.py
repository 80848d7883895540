"""Work the CLI does on the state directory itself when no daemon runs (it takes the lock)."""

from __future__ import annotations

from typing import Any

from memlane.daemon.paths import Paths
from memlane.events.log import EventLog
from memlane.projections.catchup import Projections


def rebuild_offline(paths: Paths) -> dict[str, Any]:
    """Replay the whole log into fresh projections, holding the writer lock meanwhile."""
    log = EventLog.open(paths.log_dir)
    try:
        projections = Projections(paths.sqlite, paths.vectors)
        count = projections.rebuild(paths.log_dir, log.last_seq)
        projections.close()
        return {"replayed": count, "last_seq": log.last_seq}
    finally:
        log.close()
