"""Every fact memlane records, as frozen tagged structs, and the envelope that orders them.

Tags are part of the on-disk format: they never change. Evolution is additive (new fields last,
with defaults). A memory's id is the ``seq`` of the event that created it (``Stored`` or
``Consolidated``), so ids are unique, stable and need no extra counter.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

Kind = Literal["decision", "user-note", "session-save", "insight", "auto-save", "note", "proven"]
KINDS: tuple[str, ...] = Kind.__args__  # type: ignore[attr-defined]
# Protected kinds never expire and win over every other kind in a merge (the first present wins).
PROTECTED_ORDER: tuple[Literal["decision"], Literal["user-note"]] = ("decision", "user-note")
PROTECTED_KINDS = frozenset(PROTECTED_ORDER)
State = Literal["active", "proven", "expired", "forgotten"]


class _Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", gc=False):
    """Base of all events: immutable, keyword-only, tagged by ``type``."""


class Stored(_Event, frozen=True, tag="stored"):
    """A memory was accepted. ``content_hash`` is of the normalised text, per project."""

    id: int
    text: str
    project: str
    kind: str
    content_hash: str
    source: str = "cli"
    tags: tuple[str, ...] = ()
    redactions: int = 0
    idempotency_key: str | None = None


class Embedded(_Event, frozen=True, tag="embedded"):
    """A memory's vector (little-endian float32 bytes) from a named embedding pipeline."""

    memory: int
    vector: bytes
    dims: int
    model: str
    pipeline: str


class Linked(_Event, frozen=True, tag="linked"):
    """Two memories of one project were found similar enough to connect."""

    a: int
    b: int
    similarity: float


class Clustered(_Event, frozen=True, tag="clustered"):
    """A cohesive group of memories was recognised; ``cluster`` is this event's own seq."""

    cluster: int
    members: tuple[int, ...]
    cohesion: float


class Consolidated(_Event, frozen=True, tag="consolidated"):
    """A new proven memory ``id`` was written from ``sources`` (which expire separately)."""

    id: int
    sources: tuple[int, ...]
    text: str
    project: str
    kind: str
    content_hash: str
    model: str
    prompt_version: str
    cluster: int | None = None
    tags: tuple[str, ...] = ()


class Routed(_Event, frozen=True, tag="routed"):
    """A proven memory was proposed for, written to, or kept out of an instruction file."""

    memory: int
    target: str
    section: str
    action: Literal["proposed", "written", "skipped"]
    verdict: str


class Recalled(_Event, frozen=True, tag="recalled"):
    """A memory was returned for a query with a rank and a score."""

    memory: int
    query: str
    rank: int
    score: float


class Reprieved(_Event, frozen=True, tag="reprieved"):
    """An isolated memory past its age limit was kept after a substance check."""

    memory: int
    count: int
    reason: str


class Promoted(_Event, frozen=True, tag="promoted"):
    """A memory became proven (e.g. after enough recalls)."""

    memory: int
    reason: str


class Expired(_Event, frozen=True, tag="expired"):
    """A memory left the working set, with the reason (restorable)."""

    memory: int
    reason: str


class Restored(_Event, frozen=True, tag="restored"):
    """An expired memory was brought back by the user."""

    memory: int


class ForgetRequested(_Event, frozen=True, tag="forget_requested"):
    """The user asked to purge ``memories`` (descendants included unless kept): the intent,
    recorded before anything is rewritten, so a restart finishes an interrupted forget.

    ``unreceived`` (a tombstone from another device only): the global ids (``device.seq``) it
    names that this device has not received; an event about one of them that arrives later
    is never applied."""

    memories: tuple[int, ...]
    keep_descendants: bool = False
    unreceived: tuple[str, ...] = ()


class Forgotten(_Event, frozen=True, tag="forgotten"):
    """The user purged a memory: only its id and content hash remain anywhere.

    ``request`` is the seq of its :class:`ForgetRequested` (0 before requests existed); the
    counts are the proof scan's result (never the text): files scanned, needles looked for,
    and matches left (0 when the forget is complete)."""

    memory: int
    content_hash: str
    request: int = 0
    files_scanned: int = 0
    needles: int = 0
    matches: int = 0


class ThresholdSet(_Event, frozen=True, tag="threshold_set"):
    """A similarity threshold was chosen for a model (``name``: link, cluster, recall...)."""

    model: str
    name: str
    value: float


class ModelChanged(_Event, frozen=True, tag="model_changed"):
    """The active embedding pipeline changed; memories are re-embedded from their text."""

    model: str
    pipeline: str
    dims: int


class Reinforced(_Event, frozen=True, tag="reinforced"):
    """The same text was stored again in the project: a signal that the memory matters."""

    memory: int
    source: str = "cli"


class Shown(_Event, frozen=True, tag="shown"):
    """Memories were put in front of the assistant (a prompt's context or a briefing).

    Exposure, not use: it never promotes a memory nor keeps it from ageing. ``prompt_hash``
    (a short hash of the prompt that drew them, no text) lets usage detection look only at
    what came after."""

    memories: tuple[int, ...]
    session: str
    hook: str
    prompt_hash: str = ""


class Used(_Event, frozen=True, tag="used"):
    """Evidence that a shown memory was used: its content came back in the assistant's reply
    (``reply``), in the user's later prompts (``prompt``), an explicit recall by the model
    (``mcp``) or an action of the user (``user``). Use promotes and keeps a memory young."""

    memory: int
    evidence: Literal["reply", "prompt", "mcp", "user"]
    score: float
    session: str = ""


class Pinned(_Event, frozen=True, tag="pinned"):
    """The user pinned a memory (it never expires), or unpinned it (``pinned`` false)."""

    memory: int
    pinned: bool = True


class ConsolidationRejected(_Event, frozen=True, tag="consolidation_rejected"):
    """The user rejected the merge of cluster ``cluster`` (the viewer's review): the cluster
    closes unmerged, and its ``members`` are never clustered together again."""

    cluster: int
    members: tuple[int, ...]
class Tallied(_Event, frozen=True, tag="tallied"):
    """Compaction folded ``Recalled`` and ``Shown`` events into counts (see
    :mod:`memlane.events.compaction`); the fields are parallel columns, one entry per memory.

    ``recalls`` and ``shown`` add to the memory's counts. ``last_recalled`` is the time of its
    last recall among them, and ``refreshed`` the seq of the last event that refreshed it, when
    no record kept after them sets those itself (None and 0 otherwise)."""

    memories: tuple[int, ...]
    recalls: tuple[int, ...]
    shown: tuple[int, ...]
    last_recalled: tuple[datetime | None, ...]
    refreshed: tuple[int, ...]


class Embeddings(_Event, frozen=True, tag="embeddings"):
    """Compaction's form of a run of ``Embedded`` of one pipeline (see
    :mod:`memlane.events.compaction`): each memory's vector as int8 codes (``dims`` bytes
    each, in the order of ``memories``) and their scale (:mod:`memlane.events.vector_codes`),
    applied in that order."""

    memories: tuple[int, ...]
    codes: bytes
    scales: tuple[float, ...]
    dims: int
    model: str
    pipeline: str

    def codes_of(self, index: int) -> bytes:
        """The codes of ``memories[index]``."""
        return self.codes[index * self.dims:(index + 1) * self.dims]

    def without(self, memories: frozenset[int]) -> Embeddings:
        """The same run with the vectors of ``memories`` blanked: codes zero and scale 0 (as
        forget leaves an ``Embedded``: the record stays, naming the pipeline that embedded the
        memory, and the ``ForgetRequested`` after it removes the zero vector from a replay)."""
        blank = bytes(self.dims)
        return msgspec.structs.replace(
            self, codes=b"".join(blank if memory in memories else self.codes_of(i)
                                 for i, memory in enumerate(self.memories)),
            scales=tuple(0.0 if memory in memories else scale
                         for memory, scale in zip(self.memories, self.scales, strict=True)))


Event = (
    Stored
    | Embedded
    | Linked
    | Clustered
    | Consolidated
    | Routed
    | Recalled
    | Reprieved
    | Promoted
    | Expired
    | Restored
    | ForgetRequested
    | Forgotten
    | ThresholdSet
    | ModelChanged
    | Reinforced
    | Shown
    | Used
    | Pinned
    | ConsolidationRejected
    | Tallied
    | Embeddings
)
EVENT_TYPES: tuple[type[_Event], ...] = Event.__args__

# Every str, bytes or tuple-of-str field of every event is declared here, once: either it may
# carry the user's text (forget blanks it in every event about a forgotten memory, redaction and
# their tests iterate over it) or it never does. tests/events/test_text_fields.py fails on a field
# declared in neither.
TEXT_FIELDS: dict[type[_Event], tuple[str, ...]] = {
    Stored: ("text", "tags", "idempotency_key"),
    Consolidated: ("text", "tags"),
    Embedded: ("vector",),  # a vector can be inverted to approximate its text
    Embeddings: ("codes",),  # forget takes out the forgotten memories' codes alone (without)
    Recalled: ("query",),
    Routed: ("verdict",),  # may quote the target's nearest paragraph
}
TEXT_FREE: dict[type[_Event], tuple[str, ...]] = {
    Stored: ("project", "kind", "content_hash", "source"),
    Consolidated: ("project", "kind", "content_hash", "model", "prompt_version"),
    Embedded: ("model", "pipeline"),
    Embeddings: ("model", "pipeline"),
    Routed: ("target", "section", "action"),
    Reprieved: ("reason",),  # written by memlane's rules, never the user's words
    Promoted: ("reason",),
    Expired: ("reason",),
    Forgotten: ("content_hash",),
    ForgetRequested: ("unreceived",),  # global ids, never text
    ThresholdSet: ("model", "name"),
    ModelChanged: ("model", "pipeline"),
    Reinforced: ("source",),
    Shown: ("session", "hook", "prompt_hash"),  # a 16-hex hash of the prompt, never its text
    Used: ("evidence", "session"),
}


class Unknown(msgspec.Struct, frozen=True, kw_only=True):
    """An event whose tag this version does not know (written by a newer memlane)."""

    tag: str
    raw: bytes


# Every int or tuple-of-int field of every event is declared here, once: either it holds the
# seq of another record (a memory id is the seq of the event that created it, a cluster id its
# ``Clustered``'s, a request its ``ForgetRequested``'s), which sync translates between devices
# through global ids, or it is a plain number. tests/events/test_seq_refs.py fails on a field
# declared in neither.
SEQ_REFS: dict[type[_Event], tuple[str, ...]] = {
    Stored: ("id",),
    Embedded: ("memory",),
    Linked: ("a", "b"),
    Clustered: ("cluster", "members"),
    Consolidated: ("id", "sources", "cluster"),
    Routed: ("memory",),
    Recalled: ("memory",),
    Reprieved: ("memory",),
    Promoted: ("memory",),
    Expired: ("memory",),
    Restored: ("memory",),
    ForgetRequested: ("memories",),
    Forgotten: ("memory", "request"),
    Reinforced: ("memory",),
    Shown: ("memories",),
    Used: ("memory",),
    Pinned: ("memory",),
    ConsolidationRejected: ("cluster", "members"),
    Tallied: ("memories", "refreshed"),
    Embeddings: ("memories",),
}
SEQ_FREE: dict[type[_Event], tuple[str, ...]] = {
    Stored: ("redactions",),
    Embedded: ("dims",),
    Recalled: ("rank",),
    Reprieved: ("count",),
    Forgotten: ("files_scanned", "needles", "matches"),
    ModelChanged: ("dims",),
    Tallied: ("recalls", "shown"),
    Embeddings: ("dims",),
}


class Record(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """One log entry: a contiguous sequence number, a UTC timestamp and one event.

    The envelope fields after ``event`` are set only on an event another device wrote (see
    ``daemon/service/sync_inbox.py``): ``origin`` is its device id ("" for this device),
    ``origin_seq`` its seq there, so its global id is ``(origin, origin_seq)`` (a local
    event's is ``(this device, seq)``); ``hlc`` its hybrid logical clock stamp and ``sig``
    its device's Ed25519 signature of the published message. Left at their defaults they are
    not encoded, so a local record's bytes are as before and every older log still decodes.
    """

    seq: int
    at: datetime
    event: Event | Unknown
    origin: str = ""
    origin_seq: int = 0
    hlc: int = 0
    sig: bytes = b""
