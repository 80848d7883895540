"""The pure fold from log records to SQLite operations.

``event_ops(record)`` and the record's rows in the per-memory index depend on the record alone,
so applying records one at a time, in batches, or all at once from an empty database gives the
same rows.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import assert_never

import msgspec

from memlane.events.model import (
    Clustered,
    Consolidated,
    ConsolidationRejected,
    Embedded,
    Embeddings,
    Expired,
    ForgetRequested,
    Forgotten,
    Linked,
    ModelChanged,
    Promoted,
    Recalled,
    Record,
    Pinned,
    Reinforced,
    Reprieved,
    Restored,
    Routed,
    Shown,
    Stored,
    Tallied,
    ThresholdSet,
    Unknown,
    Used,
)

Op = tuple[str, tuple[object, ...]]

INSERTED_COLUMNS = ("id", "project", "kind", "source", "text", "tags", "content_hash", "state",
                    "proven", "created_at", "updated_at", "idempotency_key", "redactions",
                    "refreshed_seq", "embedded_by")
INSERT_MEMORY = (f"INSERT INTO memories ({', '.join(INSERTED_COLUMNS)})"
                 f" VALUES ({', '.join('?' * len(INSERTED_COLUMNS))})")
INSERT_FTS = "INSERT INTO memories_fts (rowid, text) VALUES (?, ?)"
REFRESH = "UPDATE memories SET reprieves = 0, refreshed_seq = ? WHERE id = ?"
INSERT_LINK = "INSERT OR REPLACE INTO links (a, b, similarity, seq) VALUES (?, ?, ?, ?)"
EMBED = "UPDATE memories SET embedded_by = ? WHERE id = ?"
SET_STATE = "UPDATE memories SET state = ?, updated_at = ? WHERE id = ? AND state != 'forgotten'"


@lru_cache(maxsize=64)
def _iso(at: datetime) -> str:
    # The records of one append batch share their timestamp: format it once per batch.
    return at.isoformat()


def link_ops(event: Linked, seq: int) -> list[Op]:
    """A link's statements: the pair, lower id first, and a refresh of both memories."""
    a, b = (event.a, event.b) if event.a <= event.b else (event.b, event.a)
    return [(INSERT_LINK, (a, b, event.similarity, seq)), (REFRESH, (seq, a)), (REFRESH, (seq, b))]


def event_ops(record: Record) -> list[Op]:
    """The statements that apply one record (its rows in the per-memory index aside:
    :func:`memlane.projections.memory_events.rows_of`)."""
    at = _iso(record.at)
    event = record.event
    match event:  # the kinds most of a log holds first: cases are tried in turn
        case Stored():
            return _insert_memory(event.id, event, at, proven=False)
        case Embedded():
            return [(EMBED, (event.pipeline, event.memory))]
        case Linked():
            return link_ops(event, record.seq)
        case Recalled():
            return [("UPDATE memories SET recalls = recalls + 1, reprieves = 0, last_recalled_at = ?,"
                     " refreshed_seq = ? WHERE id = ?", (at, record.seq, event.memory))]
        case Consolidated():
            return [
                *_insert_memory(event.id, event, at, proven=True),
                *[("INSERT OR IGNORE INTO lineage (child, parent) VALUES (?, ?)", (event.id, s))
                  for s in event.sources],
                ("UPDATE clusters SET consolidated_into = ? WHERE id = ?", (event.id, event.cluster)),
            ]
        case Embeddings():
            return [(EMBED, (event.pipeline, memory)) for memory in event.memories]
        case Clustered():
            return [
                ("INSERT INTO clusters (id, cohesion, created_at) VALUES (?, ?, ?)",
                 (event.cluster, event.cohesion, at)),
                *[("INSERT OR IGNORE INTO cluster_members (cluster, memory) VALUES (?, ?)", (event.cluster, m))
                  for m in event.members],
            ]
        case Routed():
            return [("INSERT OR REPLACE INTO routes (memory, target, section, action, verdict, seq)"
                     " VALUES (?, ?, ?, ?, ?, ?)",
                     (event.memory, event.target, event.section, event.action, event.verdict,
                      record.seq))]
        case Reinforced():
            return [("UPDATE memories SET repeats = repeats + 1, reprieves = 0, refreshed_seq = ?"
                     " WHERE id = ?", (record.seq, event.memory))]
        case Reprieved():
            return [("UPDATE memories SET reprieves = ?, updated_at = ?, refreshed_seq = ?"
                     " WHERE id = ?", (event.count, at, record.seq, event.memory))]
        case Promoted():
            return [("UPDATE memories SET proven = 1 WHERE id = ?", (event.memory,)),
                    (SET_STATE + " AND state = 'active'", ("proven", at, event.memory))]
        case Expired():
            return [("UPDATE memories SET expiry_reason = ? WHERE id = ?", (event.reason, event.memory)),
                    (SET_STATE, ("expired", at, event.memory))]
        case Restored():
            return [("UPDATE memories SET expiry_reason = NULL, state = CASE WHEN proven THEN"
                     " 'proven' ELSE 'active' END, updated_at = ? WHERE id = ? AND state = 'expired'",
                     (at, event.memory))]
        case ForgetRequested() if not event.memories:
            return []  # a tombstone naming only memories this device never received
        case ForgetRequested():
            return [*[op for m in event.memories for op in _forget_ops(m, at)],
                    ("INSERT OR REPLACE INTO forget_requests (seq, memories, keep_descendants)"
                     " VALUES (?, ?, ?)",
                     (record.seq, _json(event.memories), int(event.keep_descendants)))]
        case Forgotten():
            return [*_forget_ops(event.memory, at),
                    ("DELETE FROM forget_requests WHERE seq = ?", (event.request,))]
        case ThresholdSet():
            return [("INSERT OR REPLACE INTO thresholds (model, name, value, seq) VALUES (?, ?, ?, ?)",
                     (event.model, event.name, event.value, record.seq))]
        case ModelChanged():
            return [("INSERT OR REPLACE INTO meta (key, value) VALUES ('pipeline', ?)",
                     (event.pipeline,))]
        case Shown():
            return [op for m in event.memories for op in (
                ("UPDATE memories SET shown = shown + 1 WHERE id = ?", (m,)),
                ("INSERT OR IGNORE INTO shown_in (session, memory, seq, prompt_hash)"
                 " VALUES (?, ?, ?, ?)", (event.session, m, record.seq, event.prompt_hash)))]
        case Used():
            return [("UPDATE memories SET recalls = recalls + 1, reprieves = 0, last_recalled_at = ?,"
                     " refreshed_seq = ? WHERE id = ?", (at, record.seq, event.memory)),
                    ("INSERT OR IGNORE INTO used_in (session, memory, evidence, seq)"
                     " VALUES (?, ?, ?, ?)", (event.session, event.memory, event.evidence,
                                              record.seq))]
        case Pinned():
            return [("UPDATE memories SET pinned = ?, updated_at = ? WHERE id = ?",
                     (int(event.pinned), at, event.memory))]
        case ConsolidationRejected():
            # Closed without a memory: 0 is no memory's id (seqs start at 1).
            return [("UPDATE clusters SET consolidated_into = 0 WHERE id = ?"
                     " AND consolidated_into IS NULL", (event.cluster,))]
        case Tallied():
            return _tally_ops(event)
        case Unknown():
            return [("INSERT INTO unknown_events (seq, tag) VALUES (?, ?)", (record.seq, event.tag))]
        case _:
            assert_never(event)


_encode_json = msgspec.json.Encoder().encode


def _json(value: object) -> str:
    """JSON text for a TEXT column (the schema's type; a database folded before this holds
    it as a BLOB, which every reader decodes alike)."""
    return _encode_json(value).decode()


def _tally_ops(event: Tallied) -> list[Op]:
    """What the recalls and exposures a ``Tallied`` stands for did to each memory's row."""
    ops: list[Op] = []
    for memory, recalls, shown, last, refreshed in zip(
            event.memories, event.recalls, event.shown, event.last_recalled, event.refreshed,
            strict=True):
        ops.append(("UPDATE memories SET recalls = recalls + ?, shown = shown + ? WHERE id = ?",
                    (recalls, shown, memory)))
        if last is not None:
            ops.append(("UPDATE memories SET last_recalled_at = ? WHERE id = ?",
                        (_iso(last), memory)))
        if refreshed:
            ops.append((REFRESH, (refreshed, memory)))
    return ops


def _forget_ops(memory: int, at: str) -> list[Op]:
    """A forgotten memory keeps its row (id, project, hash, state) and loses every text."""
    return [("UPDATE memories SET text = NULL, tags = '[]', state = 'forgotten',"
             " idempotency_key = NULL, updated_at = ? WHERE id = ?", (at, memory)),
            ("DELETE FROM memories_fts WHERE rowid = ?", (memory,)),
            ("UPDATE routes SET verdict = '' WHERE memory = ?", (memory,))]


def _insert_memory(memory_id: int, event: Stored | Consolidated, at: str, *, proven: bool) -> list[Op]:
    key = event.idempotency_key if isinstance(event, Stored) else None
    source = event.source if isinstance(event, Stored) else "consolidation"
    redactions = event.redactions if isinstance(event, Stored) else 0
    row = (memory_id, event.project, event.kind, source, event.text, _json(event.tags),
           event.content_hash, "proven" if proven else "active", int(proven), at, at, key,
           redactions, memory_id, None)
    return [(INSERT_MEMORY, row), (INSERT_FTS, (memory_id, event.text))]
