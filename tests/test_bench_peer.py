"""The peer benchmark's setup is fair and its data fixed; the saturation mix is the fixed one."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from memlane.daemon.adapters.model_store import model_files
from memlane.daemon.domain.models import MINILM
from tokenizers import Tokenizer

from bench.bench_peer import PEER_MODEL_DIR, Peer, read_corpus
from bench.bench_saturation import KINDS, Mix
from bench.corpora import load


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_peer_gets_memlanes_model_file_and_a_tokenizer_that_does_not_pad(
        tmp_path: Path) -> None:
    """Padding every text to 128 tokens made the peer ~4x slower per text: it must be off."""
    Peer(Path("/nonexistent/python"), tmp_path).place_model()
    placed = tmp_path / "home" / PEER_MODEL_DIR
    onnx, _ = model_files(MINILM, Path("/nonexistent"))
    assert sha256(placed / "model.onnx") == sha256(onnx)
    tokenizer = Tokenizer.from_file(str(placed / "tokenizer.json"))
    short, long = tokenizer.encode_batch(["deploy", "we deploy with blue-green on fridays"])
    assert len(short.ids) < len(long.ids) < 128
    assert json.loads((placed / "tokenizer.json").read_text())["truncation"]["max_length"] \
        == MINILM.max_tokens


@pytest.mark.slow
def test_the_peer_slice_holds_every_judged_memory_of_its_queries() -> None:
    """Recall in the peer table is measured against the corpus's own judgements."""
    memories, queries, extra = read_corpus(500, 20, 5)
    directory = load("zipf-100k")
    corpus = [json.loads(line) for line in (directory / "memories.jsonl").read_text().splitlines()]
    with (directory / "queries.jsonl").open() as file:
        originals = [json.loads(line) for _, line in zip(range(20), file)]
    assert len(memories) == 500 and len(queries) == 20 and len(extra) == 5
    for ours, theirs in zip(queries, originals, strict=True):
        assert [memories[i]["text"] for i in ours["relevant"]] == \
            [corpus[i]["text"] for i in theirs["relevant"]]
    assert not {m["text"] for m in extra} & {m["text"] for m in memories}


def test_the_saturation_mix_takes_each_kind_in_turn_over_every_project(tmp_path: Path) -> None:
    """A fixed mix: the same sequence of requests in every run."""
    projects = [tmp_path / f"p{i}" for i in range(3)]
    mix = Mix(projects)
    drawn = [mix.next() for _ in range(24)]
    assert [kind for kind, _ in drawn] == list(KINDS) * 6
    hooks = [body for kind, (_, body) in drawn if kind == "hook"]
    assert {body["cwd"] for body in hooks} == {str(p) for p in projects}
    assert len({body["session_id"] for body in hooks}) == len(hooks)

