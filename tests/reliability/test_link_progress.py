"""A crash between a batch's ``Embedded`` events and its link pass loses no links: the next
start runs the pass for that batch (and only that one)."""

from __future__ import annotations

from pathlib import Path

import anyio
import numpy as np

from memlane.daemon.domain.admission import AdmissionIndex
from memlane.daemon.domain.models import ModelSpec
from memlane.daemon.runtime.linker import Linker
from memlane.daemon.runtime.projector import Projector
from memlane.daemon.runtime.writer import Writer
from memlane.events.log import EventLog, read_log
from memlane.events.model import Embedded, Linked, Record, Stored
from memlane.projections.catchup import Projections

SPEC = ModelSpec(name="t", onnx_file="-", tokenizer_file="-", pooling="mean", dims=8,
                 max_tokens=8, thresholds={"link": 0.9})
BASE = np.random.default_rng(3).standard_normal(8).astype("<f4")


def near(n: int) -> bytes:
    """A vector close to every other ``near`` vector (cosine well above 0.9)."""
    jitter = np.random.default_rng(n).standard_normal(8).astype("<f4") * 0.05
    return (BASE + jitter).astype("<f4").tobytes()


def stores_then_vectors(log: EventLog, first: int, count: int) -> None:
    """``count`` stores, then their vectors as one batch (as the indexer appends them)."""
    ids = [log.last_seq + 1 + i for i in range(count)]
    log.append([Stored(id=i, text=f"memory {i}", project="p", kind="note",
                       content_hash=f"{i:032x}") for i in ids])
    log.append([Embedded(memory=i, vector=near(i), dims=8, model="t", pipeline="t:8")
                for i in ids])


def links_in(log_dir: Path) -> set[tuple[int, int]]:
    return {(r.event.a, r.event.b) for r in read_log(log_dir, 1)
            if isinstance(r.event, Linked)}


def restart_link_pass(tmp_path: Path) -> int:
    """What a start does: catch up, then finish the interrupted link pass; returns how many
    memories the pass checked."""
    log = EventLog.open(tmp_path / "log")
    projections = Projections(tmp_path / "p.sqlite3", tmp_path / "v.usearch")
    projections.catch_up(log.directory, log.last_seq)
    projector = Projector(projections, log_dir=log.directory)

    async def on_commit(records: list[Record]) -> None:
        await projector.push(records)

    writer = Writer(log, AdmissionIndex(), on_commit=on_commit)

    async def main() -> int:
        async with anyio.create_task_group() as tg:
            await tg.start(writer.run)
            await tg.start(projector.run)
            checked = await Linker(projections, projector, writer).finish_interrupted(
                SPEC, log.directory, log.last_seq)
            tg.cancel_scope.cancel()
        return checked

    checked = anyio.run(main)
    projections.close()
    log.close()
    return checked


def test_a_batch_embedded_but_never_linked_is_linked_at_the_next_start(tmp_path: Path) -> None:
    """The log ends with an ``Embedded`` batch and no links (kill -9 right after embedding):
    the start links that batch, and a second start finds nothing more to link."""
    log = EventLog.open(tmp_path / "log")
    stores_then_vectors(log, 1, 6)
    log.close()
    assert links_in(tmp_path / "log") == set()
    assert restart_link_pass(tmp_path) == 6
    linked = links_in(tmp_path / "log")
    assert len(linked) == 15  # every pair of the six
    restart_link_pass(tmp_path)
    assert links_in(tmp_path / "log") == linked


def test_only_the_batch_after_the_last_link_is_checked(tmp_path: Path) -> None:
    """Batches linked before are not searched again: only the unlinked tail is."""
    log = EventLog.open(tmp_path / "log")
    stores_then_vectors(log, 1, 4)
    log.close()
    restart_link_pass(tmp_path)
    log = EventLog.open(tmp_path / "log")
    stores_then_vectors(log, log.last_seq + 1, 3)
    log.close()
    assert restart_link_pass(tmp_path) == 3
    assert len(links_in(tmp_path / "log")) == 21  # every pair of the seven
