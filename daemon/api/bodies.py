"""Request bodies decoded and validated: any failure is a 400 that names the problem."""

from __future__ import annotations

from typing import TypeVar

import msgspec

from memlane.daemon.domain.errors import BadRequest

T = TypeVar("T")


def decode_body(body: bytes, kind: type[T]) -> T:
    """Decode and validate a JSON body, turning any failure into a 400 that names the problem."""
    try:
        return msgspec.json.decode(body, type=kind)
    except msgspec.ValidationError as exc:
        raise BadRequest(f"invalid request: {exc}", code="invalid_request") from exc
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise BadRequest(f"malformed JSON: {exc}", code="malformed_json") from exc
