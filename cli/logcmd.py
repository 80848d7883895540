"""``memlane log verify`` and ``memlane log tail``: read the log files directly, read-only."""

from __future__ import annotations

from collections import deque
from pathlib import Path
from typing import Any

from memlane.events.acked import read_acked
from memlane.events.errors import LogCorrupted, WatermarkDamaged
from memlane.events.log import read_log
from memlane.events.model import Embedded, Embeddings, Record, Unknown
from memlane.events.seal import verify_sealed
from memlane.events.segments import list_segments


def verify(log_dir: Path) -> dict[str, Any]:
    """Check every record of every segment; report counts or the first damage."""
    records = unknown = 0
    last = 0
    try:
        for record in read_log(log_dir, 1, tolerate_tail=True):
            records += 1
            last = record.seq
            unknown += isinstance(record.event, Unknown)
    except LogCorrupted as exc:
        return {"ok": False, "error": str(exc), "path": str(exc.path), "offset": exc.offset,
                "records_before": records}
    try:
        acked = read_acked(log_dir)
    except WatermarkDamaged as exc:
        return {"ok": False, "error": str(exc), "records_before": records}
    sealed = verify_sealed(log_dir)
    problems = [{"segment": p.segment.name, "kind": p.kind, "offset": p.offset,
                 "detail": p.detail} for p in sealed.problems]
    ok = not sealed.damaged and last >= acked
    answer = {"ok": ok, "segments": len(list_segments(log_dir)), "records": records,
              "last_seq": last, "acked_seq": acked, "unknown_events": unknown,
              "sealed": {"checked": sealed.checked, "problems": problems}}
    if last < acked:
        answer["error"] = (f"the log ends at seq {last}, below the acknowledged seq {acked}: "
                           "acknowledged events are missing")
    return answer


def tail(log_dir: Path, count: int) -> list[dict[str, Any]]:
    """The last ``count`` records, summarised (vectors as their size)."""
    last: deque[Record] = deque(maxlen=count)
    last.extend(read_log(log_dir, 1, tolerate_tail=True))
    return [summarise(r) for r in last]


def summarise(record: Record) -> dict[str, Any]:
    event = record.event
    if isinstance(event, Unknown):
        fields: dict[str, Any] = {"type": event.tag, "unknown": True}
    else:
        fields = {"type": event.__struct_config__.tag}
        for name in event.__struct_fields__:
            value = getattr(event, name)
            fields[name] = list(value) if isinstance(value, tuple) else value
        if isinstance(event, Embedded):
            fields["vector"] = f"<{event.dims} floats>"
        elif isinstance(event, Embeddings):
            fields["codes"] = f"<{len(event.memories)} x {event.dims} int8 codes>"
            fields["scales"] = f"<{len(event.scales)} scales>"
    return {"seq": record.seq, "at": record.at.isoformat(), **fields}
