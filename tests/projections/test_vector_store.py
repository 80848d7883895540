"""The vector projection: flat below the threshold, HNSW above, same answers, forgets for good."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings

from memlane.events.model import Embedded, Forgotten, Record
from memlane.events.vector_codes import held, quantise
from memlane.projections import graph_vectors, vector_store
from memlane.projections.flat_vectors import FlatVectors
from memlane.projections.vector_store import VectorProjection
from tests.projections.test_fold import histories

AT = datetime(2026, 11, 27, tzinfo=UTC)
DIMS = 16


def embedded(seq: int, memory: int, vector: np.ndarray) -> Record:
    return Record(seq=seq, at=AT, event=Embedded(
        memory=memory, vector=vector.astype("<f4").tobytes(), dims=DIMS, model="m",
        pipeline="m:16"))


def vectors(count: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((count, DIMS)).astype(np.float32)


def test_a_forgotten_vector_leaves_no_bytes_in_any_file(tmp_path: Path) -> None:
    """After remove and save, no file beside the projection holds the vector's bytes."""
    rows = vectors(50)
    projection = VectorProjection(tmp_path / "v.usearch")
    projection.apply([embedded(i + 1, i + 1, rows[i]) for i in range(50)])
    projection.save()
    for victim in (7, 50):  # one from the middle, then the last row
        secret = held(rows)[victim - 1].tobytes()  # what the projection holds
        assert any(secret in f.read_bytes() for f in tmp_path.iterdir())
        projection.apply([Record(seq=100 + victim, at=AT, event=Forgotten(memory=victim, content_hash="0" * 32))])
        projection.save()
        assert not any(secret in f.read_bytes() for f in tmp_path.iterdir())
        assert projection.vector(victim) is None
    reloaded = VectorProjection(tmp_path / "v.usearch")
    assert reloaded.load() and len(reloaded) == 48
    for key in (1, 8, 49):
        assert np.array_equal(reloaded.vector(key), held(rows)[key - 1])


def test_saves_append_in_place_and_reload_the_same_vectors(tmp_path: Path) -> None:
    """Saving after each batch keeps the files equal to the vectors in memory."""
    rows = vectors(300, seed=1)
    projection = VectorProjection(tmp_path / "v.usearch")
    for start in range(0, 300, 100):
        projection.apply([embedded(i + 1, i + 1, rows[i]) for i in range(start, start + 100)])
        projection.save()
    projection.apply([embedded(301, 5, rows[299])])  # a new vector for an existing key
    projection.save()
    reloaded = VectorProjection(tmp_path / "v.usearch")
    assert reloaded.load() and reloaded.applied_seq == 301 and reloaded.mode == "flat"
    assert np.array_equal(reloaded.vector(5), held(rows)[299])
    query = rows[42]
    assert reloaded.search(query, 10) == projection.search(query, 10)


def test_the_layout_switches_with_size_and_answers_alike(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the threshold the vectors move into a graph (of int8 codes), and back to flat when
    it shrinks; answers are the same in both layouts, with the same cosines, and after a
    reload."""
    monkeypatch.setattr(vector_store, "EXACT_BELOW", 200)
    rows = vectors(250, seed=2)
    projection = VectorProjection(tmp_path / "v.usearch")
    projection.apply([embedded(i + 1, i + 1, rows[i]) for i in range(150)])
    assert projection.mode == "flat"
    flat_answer = projection.search(rows[3], 10)
    projection.apply([embedded(i + 1, i + 1, rows[i]) for i in range(150, 250)])
    assert projection.mode == "hnsw" and len(projection) == 250
    graph_answer = [(key, score) for key, score in projection.search(rows[3], 250, exact=True)
                    if key <= 150][:10]
    assert [key for key, _ in graph_answer] == [key for key, _ in flat_answer]
    assert np.allclose([s for _, s in graph_answer], [s for _, s in flat_answer], atol=1e-6)
    (key, score), = projection.search(rows[3], 1)  # approximate, scored the same
    assert key == graph_answer[0][0] and score == pytest.approx(graph_answer[0][1], abs=1e-6)
    codes = quantise(rows[200:201])[0].tobytes()  # the graph holds the codes themselves
    projection.save()
    assert codes in projection.path.read_bytes()
    assert np.array_equal(projection.vector(201), held(rows)[200])
    reloaded = VectorProjection(tmp_path / "v.usearch")
    assert reloaded.load() and reloaded.mode == "hnsw"
    forget = [Record(seq=300 + key, at=AT, event=Forgotten(memory=key, content_hash="0" * 32)) for key in range(151, 251)]
    reloaded.apply(forget)
    assert reloaded.mode == "flat" and len(reloaded) == 150
    assert [key for key, _ in reloaded.search(rows[3], 10)] == [key for key, _ in flat_answer]


def test_an_exact_graph_search_finds_what_a_flat_scan_finds(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The graph compares the query's codes: the vectors at the edge of the top k by the
    codes are fetched too and re-scored, so an exact search returns the flat scan's top k."""
    monkeypatch.setattr(vector_store, "EXACT_BELOW", 500)
    dims, count = 384, 3000
    rows = np.random.default_rng(1).standard_normal((count, dims)).astype(np.float32)
    projection = VectorProjection(tmp_path / "v.usearch")
    projection.apply([Record(seq=i + 1, at=AT, event=Embedded(
        memory=i + 1, vector=rows[i].tobytes(), dims=dims, model="m", pipeline="m:384"))
        for i in range(count)])
    assert projection.mode == "hnsw"
    kept = held(rows)
    for query in np.random.default_rng(9).standard_normal((100, dims)).astype(np.float32):
        scores = kept @ query / np.linalg.norm(query)
        flat = (np.argsort(-scores, kind="stable")[:10] + 1).tolist()
        assert [key for key, _ in projection.search(query, 10, exact=True)] == flat


@pytest.mark.parametrize("count", [150, 250])  # flat, and a graph past the threshold
def test_a_batch_of_queries_gets_what_each_would_get_alone(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, count: int) -> None:
    """``search_many`` answers each query as ``search`` does, for unit vectors (the embedder's:
    scored by the dot product) and others (divided by their norms)."""
    monkeypatch.setattr(vector_store, "EXACT_BELOW", 200)
    rows = vectors(count, seed=3)
    projection = VectorProjection(tmp_path / "v.usearch")
    projection.apply([embedded(i + 1, i + 1, rows[i]) for i in range(count)])
    queries = vectors(7, seed=4)
    for batch in (queries, queries / np.linalg.norm(queries, axis=1, keepdims=True)):
        together = projection.search_many(batch, 12)
        alone = [projection.search(query, 12) for query in batch]
        assert [[k for k, _ in hits] for hits in together] == [[k for k, _ in h] for h in alone]
        assert np.allclose([s for hits in together for _, s in hits],
                           [s for hits in alone for _, s in hits], atol=1e-6)
    assert projection.search_many(queries[:0], 12) == []


def saved_as_floats(tmp_path: Path, records: list[Record], *, graph: bool) -> None:
    """Files as a memlane that held the model's floats saved them (no "values" in the meta):
    a flat matrix, or a graph, of the floats as given."""
    keys = [r.event.memory for r in records]  # type: ignore[union-attr]
    rows = np.stack([np.frombuffer(r.event.vector, dtype="<f4") for r in records])  # type: ignore[union-attr]
    if graph:
        index = graph_vectors.Index(ndim=DIMS, metric="cos", dtype="f32")
        index.add(np.asarray(keys, dtype=np.uint64), rows)
    else:
        index = FlatVectors(DIMS, tmp_path / "old.usearch")
        index.add(keys, rows)
    saved = VectorProjection(tmp_path / "old.usearch")
    saved.index, saved.pipeline, saved.applied_seq = index, "m:16", records[-1].seq
    saved.apply([])  # nothing: the files are written below as they are
    saved.save()
    meta = json.loads(saved.meta_path.read_text())
    del meta["values"]
    saved.meta_path.write_text(json.dumps(meta))


def test_a_flat_matrix_saved_as_the_models_floats_is_held_as_codes_once_loaded(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """It loads as a replay now builds it (no replay needed), and is saved again so."""
    rows = vectors(40, seed=3)
    records = [embedded(i + 1, i + 1, rows[i]) for i in range(40)]
    saved_as_floats(tmp_path, records, graph=False)
    loaded = VectorProjection(tmp_path / "old.usearch")
    assert loaded.load() and loaded.dirty and loaded.applied_seq == 40 and loaded.mode == "flat"
    replayed = VectorProjection(tmp_path / "new.usearch")
    replayed.apply(records)
    keys = list(range(1, 41))
    assert loaded.vectors(keys)[1].tobytes() == replayed.vectors(keys)[1].tobytes()
    assert not np.array_equal(loaded.vectors(keys)[1], rows)
    loaded.save()
    assert json.loads(loaded.meta_path.read_text())["values"] == vector_store.HELD_VALUES
    again = VectorProjection(tmp_path / "old.usearch")
    assert again.load() and not again.dirty
    assert again.vectors(keys)[1].tobytes() == replayed.vectors(keys)[1].tobytes()


def test_a_graph_saved_as_the_models_floats_keeps_them_until_it_goes_flat(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Building a large graph again would hold a start for minutes: it loads as saved (its
    file keeps the floats), says so in its meta, answers with the held (quantised) vectors,
    and holds them so once it shrinks back to flat."""
    monkeypatch.setattr(vector_store, "EXACT_BELOW", 20)
    rows = vectors(40, seed=4)
    records = [embedded(i + 1, i + 1, rows[i]) for i in range(40)]
    saved_as_floats(tmp_path, records, graph=True)
    loaded = VectorProjection(tmp_path / "old.usearch")
    assert loaded.load() and not loaded.dirty and loaded.mode == "hnsw"
    assert loaded.values is None and rows[6].tobytes() in loaded.path.read_bytes()
    assert np.array_equal(loaded.vector(7), held(rows)[6])
    assert loaded.search(rows[6], 1) == [(7, pytest.approx(float(held(rows)[6] @ rows[6])
                                                           / float(np.linalg.norm(rows[6]))))]
    loaded.apply([Record(seq=40 + i, at=AT, event=Forgotten(memory=i, content_hash="0" * 32))
                  for i in range(1, 31)])
    assert loaded.mode == "flat" and loaded.values == vector_store.HELD_VALUES
    assert np.array_equal(loaded.vector(37), held(rows)[36])


@pytest.mark.parametrize("count", [150, 250])  # flat, and a graph past the threshold
def test_a_filtered_search_keeps_the_hits_the_filter_keeps_reading_only_theirs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, count: int) -> None:
    """``among`` (a project's filter) gives the unfiltered search's hits less those it drops,
    in the same order with the same cosines; a graph reads the held vectors of the kept
    candidates only (each read of a candidate costs ~5 µs at 100k)."""
    monkeypatch.setattr(vector_store, "EXACT_BELOW", 200)
    rows = vectors(count, seed=5)
    projection = VectorProjection(tmp_path / "v.usearch")
    projection.apply([embedded(i + 1, i + 1, rows[i]) for i in range(count)])
    even = lambda ids: [i for i in ids if i % 2 == 0]  # noqa: E731
    read: list[int] = []
    held_in = graph_vectors.held_in
    monkeypatch.setattr(graph_vectors, "held_in",
                        lambda index, keys, **kw: read.extend(keys) or held_in(index, keys, **kw))
    for query in vectors(5, seed=6):
        everything = projection.search(query, 60)
        read.clear()
        filtered = projection.search(query, 60, among=even)
        expected = [hit for hit in everything if hit[0] % 2 == 0]
        assert [key for key, _ in filtered] == [key for key, _ in expected]
        assert np.allclose([s for _, s in filtered], [s for _, s in expected], atol=1e-6)
        assert all(key % 2 == 0 for key in read)
        assert (len(read) > 0) == (projection.mode == "hnsw")


@settings(max_examples=40, deadline=None)
@given(history=histories())
def test_events_an_apply_skips_have_no_vector_ops(history: list[Record]) -> None:
    """An apply reads only the kinds in VECTOR_EVENTS: every other kind does nothing to vectors."""
    assert [r for r in history if type(r.event) not in vector_store.VECTOR_EVENTS
            and vector_store.vector_ops(r)] == []
