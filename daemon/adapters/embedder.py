"""Local embeddings with ONNX Runtime and ``tokenizers`` (CPU; no network).

Texts longer than the model's window are split into overlapping windows whose vectors are
averaged (weighted by length), never silently truncated. Batches are bounded by a token budget
and sorted by length; a text's vector does not depend on its batch neighbours.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import onnxruntime as ort
from tokenizers import Encoding, Tokenizer

from memlane.daemon.adapters.model_store import require_intact
from memlane.daemon.domain.models import ModelSpec, ModelUnavailable, pipeline_id

TOKEN_BUDGET = 8_192  # tokens per forward pass: bounds the activations' memory
OVERLAP = 32
MAX_CHARS_PER_TOKEN = 16  # a query is cut to max_tokens * this many characters before tokenising
InputType = Literal["query", "document"]


def session_options(threads: int) -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # No spinning: spinning threads burn CPU between sporadic requests. Spinning only within a
    # pass (``session.force_spinning_stop``) made a sporadic query faster but took the cores
    # the request loop and SQLite need under load (bench_saturation, alternating runs: 75-78
    # against 93-94 requests/s, the hook at 60% load 31-38 against 29 ms). The arena keeps the
    # memory of the largest batch ever seen.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.enable_cpu_mem_arena = False
    options.log_severity_level = 3
    return options


class Embedder:
    """One loaded model; ``embed`` is thread-safe (ONNX Runtime sessions are)."""

    def __init__(self, spec: ModelSpec, session: ort.InferenceSession, tokenizer: Tokenizer,
                 *, dims: int | None = None, source: Path | None = None) -> None:
        self.spec = spec
        self.source = source  # the ONNX file the session was built from, if known
        self.session = session
        self.tokenizer = tokenizer
        self.dims = dims or spec.dims
        self.pipeline = pipeline_id(spec, self.dims)
        self.query_chars = spec.max_tokens * MAX_CHARS_PER_TOKEN  # all the model reads of a query
        self._inputs = {i.name: i for i in session.get_inputs()}
        outputs = [o.name for o in session.get_outputs()]
        # Decoder exports also list their key/value cache outputs: pool the hidden states.
        self._output = "last_hidden_state" if "last_hidden_state" in outputs else outputs[0]
        self._eos = tokenizer.token_to_id(spec.eos_token) if spec.eos_token else None
        self._untruncated = Tokenizer.from_str(tokenizer.to_str())
        self._untruncated.no_truncation()
        self._specials = tokenizer.num_special_tokens_to_add(False)

    @classmethod
    def load(cls, spec: ModelSpec, models_dir: Path, *, threads: int = 2) -> Embedder:
        onnx_path, tokenizer_path = require_intact(spec, models_dir)
        tokenizer = Tokenizer.from_file(str(tokenizer_path))
        tokenizer.enable_truncation(max_length=spec.max_tokens)
        tokenizer.no_padding()
        return cls(spec, _session(onnx_path, threads), tokenizer, source=onnx_path)

    def twin(self, threads: int) -> Embedder:
        """The same model and tokenizer on a session of its own with ``threads`` compute
        threads: its own copy of the weights in memory."""
        if self.source is None:
            raise ModelUnavailable("this embedder does not know its model file")
        return Embedder(self.spec, _session(self.source, threads), self.tokenizer, dims=self.dims,
                        source=self.source)

    def count_tokens(self, texts: Sequence[str]) -> int:
        """Tokens the texts cost, special tokens included, however many windows they need."""
        return sum(len(e.ids) for e in self._untruncated.encode_batch(list(texts)))

    def embed(self, texts: Sequence[str], *, input_type: InputType = "document",
              dims: int | None = None) -> np.ndarray:
        """Unit vectors for ``texts`` (float32, one row each)."""
        return self.embed_counted(texts, input_type=input_type, dims=dims)[0]

    def embed_counted(self, texts: Sequence[str], *, input_type: InputType = "document",
                      dims: int | None = None) -> tuple[np.ndarray, list[int]]:
        """Unit vectors for ``texts`` and the tokens each text cost, special tokens included,
        counted from the encodings the pass makes: a document's whole text (however many
        windows it takes), a query's first window (the model reads no more of it; with the
        instruction, if the model has one)."""
        if any(not t.strip() for t in texts):
            raise ValueError("cannot embed an empty text")
        if not texts:
            return np.zeros((0, dims or self.dims), dtype=np.float32), []
        if input_type == "query":  # what the model reads of it: no window past the first
            heads = [self._head(self.spec.query_text(t)) for t in texts]
            vectors = self._run(heads)
            return _normalise(vectors[:, : dims or self.dims]), [len(h.ids) for h in heads]
        windows, owners, weights, tokens = self._windows(list(texts))
        # Each window's own unit vector, so a window's weight is its length alone.
        vectors = _normalise(self._run(windows))
        combined = np.zeros((len(texts), vectors.shape[1]), dtype=np.float32)
        np.add.at(combined, owners, vectors * weights[:, None])
        return _normalise(combined[:, : dims or self.dims]), tokens

    def _windows(self, texts: Sequence[str],
                 ) -> tuple[list[Encoding], np.ndarray, np.ndarray, list[int]]:
        """Encodings of every window of every text, the text each belongs to, its weight; and
        each text's tokens."""
        windows: list[Encoding] = []
        owners: list[int] = []
        tokens: list[int] = []
        for index, text in enumerate(texts):
            pieces, count = self._split(text)
            windows += pieces
            owners += [index] * len(pieces)
            tokens.append(count)
        weights = np.array([sum(w.attention_mask) for w in windows], dtype=np.float32)
        return windows, np.array(owners), weights, tokens

    def _split(self, text: str, *, first_only: bool = False) -> tuple[list[Encoding], int]:
        """The text's encoding, or overlapping windows of it when it is longer than the model's
        (only the first with ``first_only``); and the text's tokens."""
        first = self._encode(text)
        if not first.overflowing:  # its count holds an end token _encode appended, if any
            return [first], len(first.ids)
        whole = self._untruncated.encode(text, add_special_tokens=False)
        span = self.spec.max_tokens - 8  # room for special tokens
        starts = range(0, max(len(whole.ids) - OVERLAP, 1), span - OVERLAP)
        pieces = []
        for start in starts[:1] if first_only else starts:
            end = min(start + span, len(whole.offsets))
            begin_char, end_char = whole.offsets[start][0], whole.offsets[end - 1][1]
            pieces.append(self._encode(text[begin_char:end_char]))
        return pieces, len(whole.ids) + self._specials

    def _head(self, text: str) -> Encoding:
        """The first window of the text, the text cut before tokenising to what a window can
        hold (the model reads no more of a query)."""
        return self._split(text[: self.query_chars], first_only=True)[0][0]

    def _encode(self, text: str) -> Encoding:
        encoding = self.tokenizer.encode(text)
        if self._eos is not None and encoding.ids[-1] != self._eos:
            encoding = self.tokenizer.encode(text + (self.spec.eos_token or ""))
        return encoding

    def _run(self, windows: list[Encoding]) -> np.ndarray:
        """Model vectors for every window, batched by length under the token budget."""
        order = sorted(range(len(windows)), key=lambda i: len(windows[i].ids))
        out = np.zeros((len(windows), self.spec.dims), dtype=np.float32)
        start = 0
        while start < len(order):
            longest = len(windows[order[min(start + 255, len(order) - 1)]].ids)
            size = max(1, min(256, TOKEN_BUDGET // max(longest, 1)))
            batch = order[start:start + size]
            out[batch] = self._forward([windows[i] for i in batch])
            start += size
        return out

    def _forward(self, batch: list[Encoding]) -> np.ndarray:
        ids, mask = _pad(batch, left=self.spec.padding_side == "left")
        feed = self._feed(ids, mask)
        hidden = self.session.run([self._output], feed)[0]
        if self.spec.pooling == "mean":
            weights = mask[:, :, None].astype(np.float32)
            return (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        last = mask.shape[1] - 1 - np.argmax(mask[:, ::-1], axis=1)
        return hidden[np.arange(len(batch)), last]

    def _feed(self, ids: np.ndarray, mask: np.ndarray) -> dict[str, np.ndarray]:
        feed: dict[str, np.ndarray] = {}
        for name, meta in self._inputs.items():
            if name == "input_ids":
                feed[name] = ids
            elif name == "attention_mask":
                feed[name] = mask
            elif name == "token_type_ids":
                feed[name] = np.zeros_like(ids)
            elif name == "position_ids":
                feed[name] = np.clip(np.cumsum(mask, axis=1) - 1, 0, None).astype(np.int64)
            elif name.startswith("past_key_values"):
                feed[name] = _empty_past(meta, len(ids))
            else:
                raise ModelUnavailable(f"the model wants an input memlane cannot give: {name}")
        return feed


def _session(onnx_path: Path, threads: int) -> ort.InferenceSession:
    return ort.InferenceSession(str(onnx_path), sess_options=session_options(threads),
                                providers=["CPUExecutionProvider"])


def _pad(batch: list[Encoding], *, left: bool) -> tuple[np.ndarray, np.ndarray]:
    width = max(len(e.ids) for e in batch)
    ids = np.zeros((len(batch), width), dtype=np.int64)
    mask = np.zeros((len(batch), width), dtype=np.int64)
    for row, encoding in enumerate(batch):
        n = len(encoding.ids)
        cols = slice(width - n, width) if left else slice(0, n)
        ids[row, cols] = encoding.ids
        mask[row, cols] = 1
    return ids, mask


def _empty_past(meta: ort.NodeArg, batch: int) -> np.ndarray:
    """A zero-length key/value cache tensor shaped as the graph declares it."""
    shape = [d if isinstance(d, int) else 0 for d in meta.shape]
    shape[0] = batch
    dtype = np.float16 if "float16" in meta.type else np.float32
    return np.zeros(shape, dtype=dtype)


def _normalise(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)
