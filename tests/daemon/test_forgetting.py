"""Forget's pure rules, and the writer refusing events about a forgotten memory."""

from __future__ import annotations

from pathlib import Path

import anyio
import numpy as np

from memlane.daemon.domain.admission import AdmissionIndex
from memlane.daemon.domain.forgetting import (
    VECTOR_NEEDLE,
    descendants,
    drop_about,
    gather_traces,
    needles,
    remove_routed,
)
from memlane.daemon.domain.routing import SECTION, insert_memory
from memlane.daemon.runtime.writer import Writer
from memlane.events import model as m
from memlane.events.log import EventLog, read_log
from memlane.events.vector_codes import coded, held
from tests.events.test_text_fields import AT

SECRET = "the vault code is quokka 7781"


def stored(seq: int, text: str = SECRET) -> m.Stored:
    return m.Stored(id=seq, text=text, project="/p", kind="note", content_hash=f"{seq:032x}")


def test_routed_lines_leave_the_file_and_the_rest_stays() -> None:
    """Every bullet of the forgotten memory goes; other entries and the user's text stay."""
    text = insert_memory("# Project\n\nUser line.\n", 4, "keep this rule")
    text = insert_memory(text, 9, "first secret line\nsecond secret line")
    text = insert_memory(text, 12, "later rule")
    for known in ("first secret line\nsecond secret line", None):
        after = remove_routed(text, 9, known)
        assert "secret" not in after
        assert "User line." in after and "keep this rule" in after and "later rule" in after
        assert SECTION in after and "memlane:12" in after


def test_events_about_a_forgotten_memory_are_dropped() -> None:
    """An embed or link of a forgotten id is dropped; a command creating ids is dropped whole."""
    gone = {5}.__contains__
    embed = m.Embedded(memory=5, vector=b"\0" * 8, dims=2, model="t", pipeline="t")
    link = m.Linked(a=1, b=5, similarity=0.9)
    keep = m.Linked(a=1, b=2, similarity=0.9)
    assert drop_about(gone, [embed, link, keep]) == [keep]
    merged = m.Consolidated(id=9, sources=(5, 6), text="x", project="/p", kind="proven",
                            content_hash="0" * 32, model="x", prompt_version="1")
    assert drop_about(gone, [merged, m.Expired(memory=6, reason="merged")]) == []
    forget = [m.ForgetRequested(memories=(5,)), m.Forgotten(memory=5, content_hash="0" * 32)]
    assert drop_about(gone, forget) == forget


def test_descendants_follow_lineage_transitively() -> None:
    lineage = {1: [4], 4: [7, 8], 8: [1]}
    assert descendants(lambda ps: [c for p in ps for c in lineage.get(p, [])], [1]) == [1, 4, 7, 8]


def test_traces_and_needles_cover_text_and_queries() -> None:
    """Texts come from the store, queries from every recall of the memory; forms include
    JSON-escaped and UTF-16 copies."""
    records = [m.Record(seq=1, at=AT, event=stored(1, 'say "hi"\nthen leave now')),
               m.Record(seq=2, at=AT, event=m.Recalled(memory=1, query="who says hi", rank=0,
                                                        score=0.9))]
    traces = gather_traces(records, [1])
    assert traces.texts == {1: 'say "hi"\nthen leave now'} and traces.queries == {"who says hi"}
    found = needles([*traces.texts.values()])
    assert b'say \\"hi\\"\\nthen leave now' in found
    assert "then leave now".encode("utf-16-le") in found


def test_a_vectors_traces_are_its_bytes_in_the_log_and_in_the_projection() -> None:
    """The proof scan looks for a vector as each log form holds it (floats, or codes once
    compacted, also while a compaction stages them) and as the vector projection holds it
    (quantised: other bytes); a vector blanked by an earlier forget, or with no direction,
    gives no needle (its zeros would match everywhere)."""
    floats, other = np.random.default_rng(5).standard_normal((2, 64)).astype("<f4")
    codes, scale = coded(floats.tobytes(), 64)
    other_codes, other_scale = coded(other.tobytes(), 64)
    projected = held(floats.reshape(1, -1)).tobytes()[:VECTOR_NEEDLE]
    run = m.Embeddings(memories=(2, 1), codes=other_codes + codes, scales=(other_scale, scale),
                       dims=64, model="t", pipeline="t")
    records = [m.Record(seq=1, at=AT, event=stored(1)),
               m.Record(seq=2, at=AT, event=m.Embedded(memory=1, vector=floats.tobytes(), dims=64,
                                                        model="t", pipeline="t")),
               m.Record(seq=3, at=AT, event=run),
               m.Record(seq=4, at=AT, event=run.without(frozenset({1}))),  # forgotten before
               m.Record(seq=5, at=AT, event=m.Embedded(memory=1, vector=bytes(4 * 64), dims=64,
                                                        model="t", pipeline="t"))]
    traces = gather_traces(records, [1])
    needles = [codes[:VECTOR_NEEDLE], projected]
    assert traces.vectors == [floats.tobytes()[:VECTOR_NEEDLE], *needles, *needles]
    assert projected != floats.tobytes()[:VECTOR_NEEDLE]


def test_admission_seeded_with_a_forgotten_row_knows_it() -> None:
    index = AdmissionIndex()
    index.load_row(3, "/p", "h", live=False, key=None, forgotten=True)
    assert index.is_forgotten(3) and not index.is_forgotten(4)


def test_the_writer_drops_a_racing_embed_after_a_forget(tmp_path: Path) -> None:
    """An embedding computed before the forget and submitted after it never reaches the log."""
    log = EventLog.open(tmp_path / "log")

    async def main() -> None:
        async def nothing(_records: list[m.Record]) -> None:
            return None

        writer = Writer(log, AdmissionIndex(), on_commit=nothing)
        async with anyio.create_task_group() as tg:
            await tg.start(writer.run)
            await writer.append([stored(1)])
            await writer.append([m.ForgetRequested(memories=(1,))])
            late = m.Embedded(memory=1, vector=b"\1" * 8, dims=2, model="t", pipeline="t")
            assert await writer.append([late, m.Linked(a=1, b=1, similarity=1.0)]) == []
            tg.cancel_scope.cancel()

    anyio.run(main)
    types = [type(r.event) for r in read_log(tmp_path / "log", 1)]
    log.close()
    assert types == [m.Stored, m.ForgetRequested]
