"""The fixed benchmark corpora: the generator reproduces MANIFEST.json, and the data is usable."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from memlane.daemon.domain.storing import normalise
from memlane.daemon.domain.redaction import redact

from bench.corpora import CorpusMismatch, load, manifest
from bench.corpora.generate import write
from bench.corpora.vocab import NEW_PROJECT, PROJECTS


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def hooks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("corpora") / "hooks-20k"
    assert write("hooks-20k", directory) == manifest()["hooks-20k"]
    return directory


def test_hook_memories_are_distinct_and_stored_as_written(hooks: Path) -> None:
    memories = lines(hooks / "memories.jsonl")
    assert len({(m["project"], normalise(m["text"])) for m in memories}) == 20_000
    assert not any(redact(m["text"]).count for m in memories)
    assert Counter(m["project"] for m in memories) == {p.path: p.share * 200 for p in PROJECTS}


def test_hook_prompts_come_from_the_largest_and_a_new_project(hooks: Path) -> None:
    prompts = lines(hooks / "prompts.jsonl")
    assert Counter((p["project"], p["size"]) for p in prompts) == {
        (project, size): 50 for project in (PROJECTS[0].path, NEW_PROJECT.path)
        for size in (300, 2000)}
    assert all(p["size"] - 80 < len(p["prompt"]) <= p["size"] for p in prompts)
    assert len({p["prompt"] for p in prompts}) == len(prompts)


@pytest.mark.slow
def test_zipf_corpus_matches_the_manifest_and_its_queries_are_judged(tmp_path: Path) -> None:
    assert write("zipf-100k", tmp_path) == manifest()["zipf-100k"]
    memories = lines(tmp_path / "memories.jsonl")
    assert len({normalise(m["text"]) for m in memories}) == 100_000
    queries = lines(tmp_path / "queries.jsonl")
    assert Counter(q["project"] for q in queries) == {p.path: 40 for p in PROJECTS}
    assert len({q["query"] for q in queries}) == 200
    for query in queries:
        assert 1 <= len(query["relevant"]) <= 5
        assert {memories[i]["project"] for i in query["relevant"]} == {query["project"]}


def test_load_generates_once_and_refuses_a_changed_file(tmp_path: Path) -> None:
    directory = load("hooks-20k", cache=tmp_path)
    assert load("hooks-20k", cache=tmp_path) == directory
    with (directory / "prompts.jsonl").open("a") as file:
        file.write("{}\n")
    with pytest.raises(CorpusMismatch):
        load("hooks-20k", cache=tmp_path)
    with pytest.raises(KeyError):
        load("nope", cache=tmp_path)
