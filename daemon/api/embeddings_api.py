"""``POST /v1/embeddings``: OpenAI's request and response shapes over the warm engine."""

from __future__ import annotations

import base64
from typing import Annotated, Any, Literal

import msgspec
import numpy as np

from memlane.daemon.domain.errors import BadRequest
from memlane.daemon.runtime.ports import Embeds
from memlane.daemon.service.requests import Text


class EmbeddingsBody(msgspec.Struct, kw_only=True):
    """OpenAI's embeddings request, plus ``input_type`` (query or document)."""

    input: Text | Annotated[list[Text], msgspec.Meta(min_length=1, max_length=2048)]
    model: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: Annotated[int, msgspec.Meta(ge=1, le=8192)] | None = None
    input_type: Literal["query", "document"] = "document"
    user: Annotated[str, msgspec.Meta(max_length=200)] | None = None


async def create_embeddings(engine: Embeds, body: EmbeddingsBody) -> dict[str, Any]:
    """Embed ``body.input`` and answer as OpenAI does (``float`` lists or ``base64`` float32)."""
    texts = [body.input] if isinstance(body.input, str) else body.input
    if blank := [i for i, text in enumerate(texts) if not text.strip()]:
        raise BadRequest(f"input {blank[0]} is blank; every input needs some text",
                         code="blank_input")
    vectors, tokens = await engine.embed_counted(texts, input_type=body.input_type,
                                                 dims=_dims(engine, body), shed=True)
    embedder = engine.embedder
    assert embedder is not None
    encoded = (json_floats(vectors) if body.encoding_format == "float"
               else [_base64(vector) for vector in vectors])
    data = [{"object": "embedding", "index": i, "embedding": embedding}
            for i, embedding in enumerate(encoded)]
    return {"object": "list", "data": data, "model": embedder.spec.name,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}


def _dims(engine: Embeds, body: EmbeddingsBody) -> int | None:
    embedder = engine.embedder
    if body.dimensions is None or embedder is None or body.dimensions == embedder.dims:
        return None
    if not embedder.spec.matryoshka or body.dimensions > embedder.dims:
        raise BadRequest(f"model {embedder.spec.name} gives {embedder.dims} dimensions and cannot"
                         f" be truncated to {body.dimensions}", code="bad_dimensions")
    return body.dimensions


def _base64(vector: np.ndarray) -> str:
    return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")


def json_floats(vectors: np.ndarray) -> list[list[float]]:
    """Rows of float32 values as floats of 9 significant digits, enough for each to parse back
    to the same float32. A float32 printed as the float64 it widens to takes 17 digits: 8 KB
    per MiniLM vector instead of 5.6 KB, and a third more of a JSON client's parse time.

    Each value becomes round(x * 10^k) / 10^k with k putting 9 digits before the point: both
    operands are exact doubles and division rounds correctly, so the quotient is the double
    nearest the 9-digit decimal, which prints as that decimal. Values below 1e-13 (10^k would
    not be exact) or from 1e9 up (whole numbers already) are left as they are."""
    values = np.asarray(vectors, dtype=np.float32).astype(np.float64)
    size = np.abs(values)
    exact = (size > 1e-13) & (size < 1e9)
    digits = 8 - np.floor(np.log10(np.where(exact, size, 1.0)))
    scale = np.power(10.0, digits)
    rounded = np.where(exact, np.round(values * scale) / scale, values)
    return rounded.tolist()  # type: ignore[no-any-return]
