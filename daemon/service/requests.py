"""What the services are asked to do, as msgspec structs that validate types, sizes and ranges
(the HTTP layer decodes request bodies straight into them)."""

from __future__ import annotations

from typing import Annotated

import msgspec

MAX_TEXT = 64 * 1024  # a memory, not a document: longer texts cost seconds to embed
MAX_IMPORT = 10_000

Text = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_TEXT)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=512)]
Tag = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Key = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Short = Annotated[str, msgspec.Meta(max_length=4096)]


class StoreBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    text: Text
    project: Name | None = None
    kind: Name | None = None
    tags: Annotated[list[Tag], msgspec.Meta(max_length=32)] = []
    source: Name = "api"
    idempotency_key: Key | None = None
    # Secrets the caller already redacted from ``text`` (a session save redacts each turn
    # before clipping): added to the store's own count.
    redacted_before: Annotated[int, msgspec.Meta(ge=0, le=100_000)] = 0


class ImportBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    memories: Annotated[list[StoreBody], msgspec.Meta(max_length=MAX_IMPORT)]


class SearchBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    query: Text
    project: Name | None = None
    k: Annotated[int, msgspec.Meta(ge=1, le=100)] = 10
    recall: bool = False
    floor: bool = True  # false: every hit, those below the relevance floor marked below_floor


class BriefingBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    project: Name | None = None
    context: Annotated[str, msgspec.Meta(max_length=MAX_TEXT)] | None = None
    budget: Annotated[int, msgspec.Meta(ge=50, le=100_000)] = 1500  # estimated tokens


class CalibrateBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    apply: bool = False


class CaptureBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    paused: bool


class ForgetProjectBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    project: Annotated[str, msgspec.Meta(min_length=1, max_length=4096)]


class RevokeBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    device: Annotated[str, msgspec.Meta(pattern="^[a-z0-9_-]{1,64}$")]


class JobBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    dry_run: bool = False
    offline: bool = False
    write: bool = False


class ForgetBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    keep_descendants: bool = False


class VerifyBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Texts to byte-scan for (``memlane forget --verify``); never stored nor logged."""

    texts: Annotated[list[Text], msgspec.Meta(min_length=1, max_length=100)]


class HookInput(msgspec.Struct, kw_only=True):
    """The fields of a Claude Code hook's input memlane reads; the others are accepted and
    ignored."""

    session_id: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    hook_event_name: Short
    cwd: Short = ""
    transcript_path: Short | None = None
    prompt: str | None = None  # bounded by the body limit; the hook clips what it keeps
    source: Short | None = None


class BackupBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``POST /v1/backup``: where to write the copy, and whether to include projections."""

    dest: Annotated[str, msgspec.Meta(min_length=1, max_length=4096)]
    projections: bool = False
