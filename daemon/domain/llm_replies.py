"""The LLM's replies: their schemas, their decoding, and the rules no reply may break (pure).

The reply Structs are sent to the model as JSON schemas; a reply is decoded and validated here,
and a protected source kind always overrides what the model says.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Literal, TypeVar

import msgspec

from memlane.events.model import PROTECTED_ORDER

T = TypeVar("T")

# The reply Structs' docstrings reach the model as schema descriptions: editing one changes
# the prompt, so bump PROMPT_VERSION with it.
Kind = Literal["note", "decision", "insight", "user-note"]
# msgspec writes a Literal as a bare enum; Gemini's schema wants the type next to it.
_STRING = msgspec.Meta(extra_json_schema={"type": "string"})
_NON_BLANK = r"\S"


class SourceMemory(msgspec.Struct, frozen=True, kw_only=True):
    """A memory handed to the model (its text already redacted at store time)."""

    id: int
    text: str
    kind: str
    tags: tuple[str, ...] = ()


class Consolidation(msgspec.Struct, frozen=True, kw_only=True):
    """The merge of a cluster: 1-5 concise sentences or bullet lines, filed by kind and tags."""

    text: Annotated[str, msgspec.Meta(pattern=_NON_BLANK, max_length=1500)]
    kind: Annotated[Kind, _STRING]
    tags: Annotated[list[str], msgspec.Meta(max_length=12)]
    title: Annotated[str, msgspec.Meta(pattern=_NON_BLANK, max_length=100)]


class ConflictVerdict(msgspec.Struct, frozen=True, kw_only=True):
    """Whether a new memory agrees with, contradicts or is unrelated to existing text."""

    verdict: Annotated[Literal["agrees", "conflicts", "unrelated"], _STRING]
    reason: str


class SubstanceVerdict(msgspec.Struct, frozen=True, kw_only=True):
    """Whether an isolated, ageing memory is worth keeping."""

    keep: bool
    reason: str


class InvalidReply(Exception):
    """The model's reply is not the JSON the schema asks for (the message says why)."""


def decode_reply(text: str | None, reply_type: type[T]) -> T:
    if not text:
        raise InvalidReply("the reply was empty")
    try:
        return msgspec.json.decode(text, type=reply_type)
    except msgspec.DecodeError as exc:
        raise InvalidReply(str(exc)) from exc


def enforce_protection(reply: Consolidation, sources: Sequence[SourceMemory]) -> Consolidation:
    """A protected source kind and all source tags override the model; it never invents one."""
    kinds = {source.kind for source in sources}
    protected = next((kind for kind in PROTECTED_ORDER if kind in kinds), None)
    if protected is not None:
        tags = list(dict.fromkeys(tag for source in sources for tag in source.tags))
        return msgspec.structs.replace(reply, kind=protected, tags=tags)
    if reply.kind in PROTECTED_ORDER:
        return msgspec.structs.replace(reply, kind="insight")
    return reply
