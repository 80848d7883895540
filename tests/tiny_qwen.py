"""A tiny model with the ONNX interface of the Qwen3-Embedding-0.6B export, for tests.

Same inputs (``input_ids``, ``attention_mask``, ``position_ids``, an empty key/value cache per
layer) and output (``last_hidden_state``) as the public export, same file layout as
``memlane.daemon.domain.models.QWEN3``. The graph is causal and position-aware:
``h[t] = sum(E[ids[s]] for real s <= t) + P[position_ids[t]]``, so pooling the wrong token,
feeding the wrong positions or letting padding in all change the vectors. ``reference_hidden``
computes the same in numpy, independently of ONNX Runtime.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

EOS = "<|endoftext|>"
UNK = "[UNK]"
MAX_POSITIONS = 640
KV_HEADS = 2
HEAD_DIM = 64
OPSET = 17
IR_VERSION = 8  # the IR version that goes with opset 17

WORDS = sorted(set("""
a about above across after again against all almost alone along already also always am among
an and another answer any anything are around as ask at away back bad be because been before
began behind being below best better between big black blue book both bring but by call came
can cache car case change child city clean close code cold come could country cut dark day did
different do does dog done door down draw during each early earth east eat end enough even
ever every eye face fact fall family far fast father feel few field file find fire first fish
five follow food for form found four free friend from full game gave get girl give given go
good got great green group grow had hand hard has have he head hear heard help her here high
him his hold home hot house how i idea if important in instruct into is it its just keep kind
knew know land large last late learn leave left less let letter life light like line list
little live long look lost made make man many map may me mean memories men might mind more
morning most mother move much must my name near need never new next night no north not note
notes now number of off often old on once one only open or order other our out over own page
paper part people place plant play point query question quick read real red remember rest
retrieve right river road rock room round run said same saw say school sea second see seem
sentence set she should show side small so some something song soon sound south start state
still stop story study such sun sure table take talk tell test than that the their them then
there these they thing think this those thought three through time to today together too took
tree true try turn two under until up upon us use very walk want warm was watch water way we
week well went were west what when where which while white who why will with without word
work world would write year yes yet you young your
""".split()))
PUNCTUATION = [".", ",", ":", ";", "?", "!", "'", '"', "-", "(", ")"]
VOCAB = [UNK, EOS, *WORDS, *PUNCTUATION]


def build_tiny_qwen(root: Path, *, hidden: int = 1024, layers: int = 2, seed: int = 0) -> Path:
    """Write ``root/onnx/model_int8.onnx`` and ``root/tokenizer.json``; return ``root``."""
    (root / "onnx").mkdir(parents=True, exist_ok=True)
    build_tokenizer().save(str(root / "tokenizer.json"))
    onnx.save(build_graph(hidden=hidden, layers=layers, seed=seed),
              str(root / "onnx" / "model_int8.onnx"))
    return root


def build_tokenizer() -> Tokenizer:
    """Lowercased word-level vocabulary; appends EOS to every sequence, as Qwen3's does."""
    vocab = {token: i for i, token in enumerate(VOCAB)}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token=UNK))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.add_special_tokens([EOS])
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"$A {EOS}", special_tokens=[(EOS, vocab[EOS])])
    return tokenizer


def weights(*, hidden: int = 1024, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(token embeddings E [vocab, hidden], position embeddings P [MAX_POSITIONS, hidden])."""
    rng = np.random.default_rng(seed)
    tokens = rng.standard_normal((len(VOCAB), hidden), dtype=np.float32)
    positions = rng.standard_normal((MAX_POSITIONS, hidden), dtype=np.float32)
    return tokens, positions


def reference_hidden(ids: Sequence[int], *, hidden: int = 1024, seed: int = 0) -> np.ndarray:
    """Hidden states [len(ids), hidden] of one unpadded sequence whose positions start at 0."""
    tokens, positions = weights(hidden=hidden, seed=seed)
    return np.cumsum(tokens[list(ids)], axis=0) + positions[: len(ids)]


def build_graph(*, hidden: int, layers: int, seed: int) -> onnx.ModelProto:
    """The model: ``CumSum(E[input_ids] * attention_mask) + P[position_ids]``."""
    tokens, positions = weights(hidden=hidden, seed=seed)
    nodes = [
        helper.make_node("Gather", ["tokens", "input_ids"], ["embedded"]),
        helper.make_node("Cast", ["attention_mask"], ["mask_float"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["mask_float", "last_axis"], ["mask_column"]),
        helper.make_node("Mul", ["embedded", "mask_column"], ["masked"]),
        helper.make_node("CumSum", ["masked", "sequence_axis"], ["running"]),
        helper.make_node("Gather", ["positions", "position_ids"], ["placed"]),
        helper.make_node("Add", ["running", "placed"], ["last_hidden_state"]),
    ]
    initializers = [
        numpy_helper.from_array(tokens, "tokens"),
        numpy_helper.from_array(positions, "positions"),
        numpy_helper.from_array(np.array([-1], dtype=np.int64), "last_axis"),
        numpy_helper.from_array(np.array(1, dtype=np.int64), "sequence_axis"),
    ]
    graph = helper.make_graph(nodes, "tiny_qwen3", _inputs(layers), [
        helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT,
                                      ["batch_size", "sequence_length", hidden])],
        initializer=initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              ir_version=IR_VERSION)
    onnx.checker.check_model(model)
    return model


def _inputs(layers: int) -> list[onnx.ValueInfoProto]:
    """The export's inputs; the cache is declared but empty (past length 0) when embedding."""
    declared = [
        helper.make_tensor_value_info("input_ids", TensorProto.INT64,
                                      ["batch_size", "sequence_length"]),
        helper.make_tensor_value_info("attention_mask", TensorProto.INT64,
                                      ["batch_size", "total_sequence_length"]),
        helper.make_tensor_value_info("position_ids", TensorProto.INT64,
                                      ["batch_size", "sequence_length"]),
    ]
    cache_shape: list[str | int] = ["batch_size", KV_HEADS, "past_sequence_length", HEAD_DIM]
    for layer in range(layers):
        for kind in ("key", "value"):
            declared.append(helper.make_tensor_value_info(
                f"past_key_values.{layer}.{kind}", TensorProto.FLOAT, cache_shape))
    return declared
