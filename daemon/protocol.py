"""Request bodies of the HTTP API, validated by msgspec (types, sizes, ranges)."""

from __future__ import annotations

from typing import Annotated, Literal, TypeVar

import msgspec

from memlane.daemon.errors import BadRequest

T = TypeVar("T")
MAX_TEXT = 64 * 1024  # a memory, not a document: longer texts cost seconds to embed
MAX_IMPORT = 10_000

Text = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_TEXT)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=512)]
Tag = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Key = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class StoreBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    text: Text
    project: Name | None = None
    kind: Name | None = None
    tags: Annotated[list[Tag], msgspec.Meta(max_length=32)] = []
    source: Name = "api"
    idempotency_key: Key | None = None


class ImportBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    memories: Annotated[list[StoreBody], msgspec.Meta(max_length=MAX_IMPORT)]


class SearchBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    query: Text
    project: Name | None = None
    k: Annotated[int, msgspec.Meta(ge=1, le=100)] = 10
    recall: bool = False


class BriefingBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    project: Name | None = None
    context: Annotated[str, msgspec.Meta(max_length=MAX_TEXT)] | None = None
    budget: Annotated[int, msgspec.Meta(ge=200, le=100_000)] = 2000


class CalibrateBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    apply: bool = False


class JobBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    dry_run: bool = False
    offline: bool = False
    write: bool = False


class EmbeddingsBody(msgspec.Struct, kw_only=True):
    """OpenAI's embeddings request, plus ``input_type`` (query or document)."""

    input: Text | Annotated[list[Text], msgspec.Meta(min_length=1, max_length=2048)]
    model: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: Annotated[int, msgspec.Meta(ge=1, le=8192)] | None = None
    input_type: Literal["query", "document"] = "document"
    user: Annotated[str, msgspec.Meta(max_length=200)] | None = None


def decode_body(body: bytes, kind: type[T]) -> T:
    """Decode and validate a JSON body, turning any failure into a 400 that names the problem."""
    try:
        return msgspec.json.decode(body, type=kind)
    except msgspec.ValidationError as exc:
        raise BadRequest(f"invalid request: {exc}", code="invalid_request") from exc
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise BadRequest(f"malformed JSON: {exc}", code="malformed_json") from exc
