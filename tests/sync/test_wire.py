"""The pure translation between a local record and its signed wire form (no server)."""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from memlane.daemon.adapters.identity import ensure_identity, read_identity, verify
from memlane.daemon.domain.global_ids import GlobalIds
from memlane.daemon.domain.hlc import receive, tick
from memlane.daemon.domain.sync_wire import (
    WireError,
    from_wire,
    seal,
    shareable,
    subject,
    to_wire,
    unseal,
)
from memlane.events.log import read_log
from memlane.events.model import (
    Consolidated,
    Embedded,
    ForgetRequested,
    Pinned,
    Record,
    Shown,
    Stored,
)

AT = datetime(2026, 12, 1, tzinfo=UTC)
UPGRADES = Path(__file__).parents[1] / "data" / "upgrades"


def stored(seq: int, text: str = "use uv for every virtualenv here") -> Record:
    return Record(seq=seq, at=AT, event=Stored(id=seq, text=text, project="/home/a/repo",
                                               kind="note", content_hash="0" * 32,
                                               idempotency_key="k"))


def test_a_memory_and_its_lineage_cross_devices_by_global_id() -> None:
    """A's memories 1 and 2, consolidated into 3 and pinned, arrive on B under B's own seqs,
    every reference translated; B's project is its own path for the same portable id."""
    a, b = GlobalIds("aaaa"), GlobalIds("bbbb")
    records = [stored(1), stored(2, "pin the python version in ci"),
               Record(seq=3, at=AT, event=Consolidated(
                   id=3, sources=(1, 2), text="tooling rules", project="/home/a/repo",
                   kind="proven", content_hash="1" * 32, model="m", prompt_version="v",
                   cluster=9)),
               Record(seq=4, at=AT, event=Pinned(memory=3))]
    next_b = 40
    for record in records:
        wire = to_wire(record, device="aaaa", project="cproj", hlc=record.seq,
                       global_of=a.global_of)
        event = from_wire(wire, project="/home/b/repo",
                          local_of=lambda g: next_b if g == wire.global_id else b.local_of(g))
        assert event is not None
        b.observe([Record(seq=next_b, at=AT, event=event, origin="aaaa", origin_seq=record.seq)])
        next_b += 1
    assert b.local_of(("aaaa", 1)) == 40 and b.global_of(42) == ("aaaa", 3)
    assert event == Pinned(memory=42)
    consolidated = from_wire(to_wire(records[2], device="aaaa", project="cproj", hlc=3,
                                     global_of=a.global_of),
                             project="/home/b/repo", local_of=b.local_of)
    assert isinstance(consolidated, Consolidated)
    assert consolidated.sources == (40, 41) and consolidated.cluster is None
    assert consolidated.project == "/home/b/repo"


def test_a_reference_to_a_record_never_received_makes_an_orphan() -> None:
    """A pin of a memory B never got is not applied; a forget applies to the known ids and
    keeps the others' global ids (refused if they arrive later)."""
    a, b = GlobalIds("aaaa"), GlobalIds("bbbb")
    b.observe([Record(seq=7, at=AT, event=stored(7).event, origin="aaaa", origin_seq=1)])
    pin = to_wire(Record(seq=5, at=AT, event=Pinned(memory=2)), device="aaaa", project="p",
                  hlc=1, global_of=a.global_of)
    assert from_wire(pin, project="x", local_of=b.local_of) is None
    forget = to_wire(Record(seq=6, at=AT, event=ForgetRequested(memories=(1, 2))),
                     device="aaaa", project="p", hlc=2, global_of=a.global_of)
    assert from_wire(forget, project="x", local_of=b.local_of) == ForgetRequested(
        memories=(7,), unreceived=("aaaa.2",))


def test_what_is_shared_and_what_stays_local() -> None:
    """Own stores, pins and forgets leave; vectors, exposure, applied and blanked records
    do not."""
    assert shareable(stored(1))
    assert shareable(Record(seq=2, at=AT, event=Pinned(memory=1)))
    assert not shareable(Record(seq=3, at=AT, event=Embedded(
        memory=1, vector=b"\0" * 8, dims=2, model="m", pipeline="p")))
    assert not shareable(Record(seq=4, at=AT, event=Shown(memories=(1,), session="s",
                                                           hook="h")))
    assert not shareable(Record(seq=5, at=AT, event=stored(5).event, origin="bbbb",
                                origin_seq=1))
    assert not shareable(stored(6, text=""))  # blanked by a forget


def test_text_is_redacted_again_and_local_keys_stay_home() -> None:
    """A secret that reached the log (an older rule missed it) does not reach the wire; the
    idempotency key (a keyed hash of this machine's token) is not published."""
    secret = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
    wire = to_wire(stored(1, f"deploy with token {secret}"), device="aaaa", project="p",
                   hlc=1, global_of=GlobalIds("aaaa").global_of)
    assert isinstance(wire.event, Stored)
    assert secret not in wire.event.text and wire.event.idempotency_key is None
    assert wire.event.content_hash != "0" * 32


def test_subjects_put_each_memory_apart_and_tombstones_together() -> None:
    """A memory's events share a subject (purged with it); forgets share one never purged."""
    ids = GlobalIds("aaaa")
    store = to_wire(stored(3), device="aaaa", project="cp", hlc=1, global_of=ids.global_of)
    pin = to_wire(Record(seq=4, at=AT, event=Pinned(memory=3)), device="aaaa", project="cp",
                  hlc=2, global_of=ids.global_of)
    forget = to_wire(Record(seq=5, at=AT, event=ForgetRequested(memories=(3,))),
                     device="aaaa", project="cp", hlc=3, global_of=ids.global_of)
    assert subject("t", store) == subject("t", pin) == "memlane.t.cp.m.aaaa-3"
    assert subject("t", forget) == "memlane.t.cp.forgets"


def test_a_signed_message_verifies_only_with_its_key(short_tmp: Path) -> None:
    """The identity is created once (0600) and signs; a changed byte or another key fails."""
    identity = ensure_identity(short_tmp / "identity.json")
    assert ensure_identity(short_tmp / "identity.json").device == identity.device
    assert os.stat(short_tmp / "identity.json").st_mode & 0o777 == 0o600
    wire = to_wire(stored(1), device=identity.device, project="p", hlc=1,
                   global_of=GlobalIds(identity.device).global_of)
    _, body, signature = unseal(seal(wire, identity.sign))
    assert verify(identity.public_key, body, signature)
    assert not verify(identity.public_key, body[:-1] + b"\0", signature)
    other = ensure_identity(short_tmp / "other.json")
    assert not verify(other.public_key, body, signature)
    assert read_identity(short_tmp / "identity.json").public_key == identity.public_key


@pytest.mark.parametrize("data", [b"", b"\0" * 64, b"\0" * 64 + b"\x93\x01\x02\x03"])
def test_a_malformed_message_is_a_wire_error(data: bytes) -> None:
    with pytest.raises(WireError):
        unseal(data)


def test_the_clock_never_goes_back_and_passes_what_it_saw() -> None:
    """A stamp exceeds the last one even when the wall clock steps back, and every remote one."""
    first = tick(0, 1_000)
    assert tick(first, 500) > first
    assert receive(first, first + 10_000, 500) > first + 10_000


def test_a_log_written_before_sync_reads_as_all_local(short_tmp: Path) -> None:
    """The upgrade fixture's log (written by an older release) decodes with local envelopes:
    every record's global id is (this device, seq), none is taken for a remote one."""
    (fixture,) = [p for p in UPGRADES.iterdir() if (p / "expected.json").is_file()]
    shutil.copytree(fixture / "home" / "log", short_tmp / "log")
    records = list(read_log(short_tmp / "log"))
    assert records and all(r.origin == "" and r.origin_seq == 0 and not r.sig for r in records)
    ids = GlobalIds("dddd")
    ids.observe(records)
    assert ids.applied == 0 and ids.global_of(records[-1].seq) == ("dddd", records[-1].seq)
