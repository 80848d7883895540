"""What one device publishes and another applies: the pure translation between a local record
and its signed wire form.

Shared facts: ``Stored``, ``Consolidated`` (with lineage), ``Pinned``, ``Restored`` and the
forget tombstone ``ForgetRequested``. Everything else stays on its device: vectors and links
are derived again from the same text by the same model, usage (shown, used, recalled,
reinforced, reprieved) and aging are local signals, ``Forgotten`` is each device's own proof.

Every seq reference (``events.model.SEQ_REFS``) leaves as a global id ``(device, seq)`` and
comes back as the local seq it maps to; a reference to a record this device never got is
dropped from a tuple, and makes an event about that one memory an orphan (not applied); a
tombstone keeps such ids as text (``unreceived``), so they can be refused later.
Projects leave as their portable id. Text is redacted again before it leaves.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

import msgspec

from memlane.daemon.domain.global_ids import GlobalId, text_of
from memlane.daemon.domain.redaction import redact
from memlane.daemon.domain.storing import content_hash
from memlane.events.model import (
    SEQ_REFS,
    TEXT_FIELDS,
    Consolidated,
    Event,
    ForgetRequested,
    Pinned,
    Record,
    Restored,
    Stored,
)

SHARED = (Stored, Consolidated, Pinned, Restored, ForgetRequested)
TOKEN = re.compile(r"[a-z0-9_-]{1,64}")
SIGNATURE_BYTES = 64


class SyncUnavailable(Exception):
    """The sync server cannot be reached or refused a request (retried later)."""

    code = "sync_unavailable"


class WireError(ValueError):
    """A message that is not a well-formed, signed memlane event."""


class Wire(msgspec.Struct, frozen=True, kw_only=True):
    """One published event: its global id, clock stamp, portable project and the event with
    its seq references in ``refs`` (field name -> global ids) and zero in the event."""

    origin: str
    seq: int
    hlc: int
    at: datetime
    project: str
    event: Event
    refs: dict[str, list[GlobalId]]

    @property
    def global_id(self) -> GlobalId:
        return (self.origin, self.seq)


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Wire)


def shareable(record: Record) -> bool:
    """Whether this device publishes the record: its own, of a shared kind, not blanked."""
    event = record.event
    if record.origin or not isinstance(event, SHARED):
        return False
    return not isinstance(event, Stored | Consolidated) or bool(event.text)


def to_wire(record: Record, *, device: str, project: str, hlc: int,
            global_of: Callable[[int], GlobalId]) -> Wire:
    """The wire form of a shareable record (see :func:`shareable`)."""
    assert isinstance(record.event, SHARED)
    event = _redacted(record.event)
    if isinstance(event, Stored):
        event = msgspec.structs.replace(event, project=project, idempotency_key=None)
    elif isinstance(event, Consolidated):
        event = msgspec.structs.replace(event, project=project, cluster=None)
    refs = {name: [global_of(s) for s in _seqs(getattr(event, name))]
            for name in SEQ_REFS.get(type(event), ())}
    return Wire(origin=device, seq=record.seq, hlc=hlc, at=record.at, project=project,
                event=_zeroed(event), refs=refs)


def from_wire(wire: Wire, *, project: str, local_of: Callable[[GlobalId], int | None]
              ) -> Event | None:
    """The local event for a wire event (``project``: the local project it maps to), or None
    for an orphan. The caller maps the wire's own global id first (it creates a memory).

    A tombstone is never an orphan: the ids it names that this device has not received go
    into its ``unreceived``, so they are refused if they arrive after it."""
    event = wire.event
    if isinstance(event, ForgetRequested):
        named = [(g[0], g[1]) for g in wire.refs.get("memories", ())]
        local = {g: local_of(g) for g in named}
        return msgspec.structs.replace(
            event, memories=tuple(s for s in local.values() if s is not None),
            unreceived=tuple(text_of(g) for g, s in local.items() if s is None))
    changes: dict[str, Any] = {}
    for name in SEQ_REFS.get(type(event), ()):
        known = [s for g in wire.refs.get(name, ()) if (s := local_of((g[0], g[1]))) is not None]
        if isinstance(getattr(event, name), tuple):
            changes[name] = tuple(known)
        elif known:
            changes[name] = known[0]
        elif name == "cluster":
            changes[name] = None
        else:
            return None
    if isinstance(event, Stored | Consolidated):
        changes["project"] = project
    return msgspec.structs.replace(event, **changes)


def owner_of(wire: Wire) -> GlobalId | None:
    """The memory whose subject carries this event (None: a tombstone, never purged)."""
    if isinstance(wire.event, ForgetRequested):
        return None
    first = wire.refs.get(SEQ_REFS[type(wire.event)][0]) or [("", 0)]
    return (first[0][0], first[0][1])


def subject(team: str, wire: Wire) -> str:
    """``memlane.<team>.<project>.m.<device>-<seq>`` for a memory's events (purged with it),
    ``memlane.<team>.<project>.forgets`` for tombstones."""
    memory = owner_of(wire)
    if memory is None:
        return f"memlane.{team}.{wire.project}.forgets"
    return memory_subject(team, wire.project, memory)


def memory_subject(team: str, project: str, memory: GlobalId) -> str:
    return f"memlane.{team}.{project}.m.{memory[0]}-{memory[1]}"


def project_filter(team: str, project: str) -> str:
    return f"memlane.{team}.{project}.>"


def lease_key(kind: str, members: list[GlobalId]) -> str:
    """The KV key of a once-per-team decision about ``members`` (the same on every device)."""
    text = ",".join(f"{d}-{s}" for d, s in sorted(members))
    return f"{kind}-{hashlib.sha256(text.encode()).hexdigest()[:40]}"


def msg_id(global_id: GlobalId) -> str:
    """The ``Nats-Msg-Id`` of an event: its global id."""
    return text_of(global_id)


def seal(wire: Wire, sign: Callable[[bytes], bytes]) -> bytes:
    """The message body: the signature, then the encoded wire event."""
    body = _encoder.encode(wire)
    return sign(body) + body


def unseal(data: bytes) -> tuple[Wire, bytes, bytes]:
    """The wire event, its encoded bytes and its signature; :class:`WireError` if malformed."""
    signature, body = data[:SIGNATURE_BYTES], data[SIGNATURE_BYTES:]
    if len(signature) < SIGNATURE_BYTES:
        raise WireError("shorter than a signature")
    try:
        wire = _decoder.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise WireError(f"not a memlane event: {exc}") from None
    if not isinstance(wire.event, SHARED) or not TOKEN.fullmatch(wire.origin):
        raise WireError(f"{type(wire.event).__name__} from {wire.origin!r} is not shared")
    return wire, body, signature


def check_token(name: str, value: str) -> str:
    """``value`` if it is safe as a NATS subject token and a stream name part."""
    if not TOKEN.fullmatch(value):
        raise ValueError(f"{name} {value!r}: use 1-64 of a-z, 0-9, '_' and '-'")
    return value


def _seqs(value: object) -> tuple[int, ...]:
    if value is None:
        return ()
    if isinstance(value, tuple):
        return value
    assert isinstance(value, int)
    return (value,)


def _zeroed(event: Event) -> Event:
    changes = {name: (() if isinstance(getattr(event, name), tuple) else
                      None if getattr(event, name) is None else 0)
               for name in SEQ_REFS.get(type(event), ())}
    return msgspec.structs.replace(event, **changes)


def _redacted(event: Event) -> Event:
    """Redacted again with today's rules (a newer rule may catch what an older one missed)."""
    changes: dict[str, Any] = {}
    for name in TEXT_FIELDS.get(type(event), ()):
        value = getattr(event, name)
        if isinstance(value, str):
            changes[name] = redact(value).text
        elif isinstance(value, tuple):
            changes[name] = tuple(redact(v).text for v in value)
    if isinstance(event, Stored | Consolidated) and changes.get("text", event.text) != event.text:
        changes["content_hash"] = content_hash(changes["text"])
    return msgspec.structs.replace(event, **changes) if changes else event
