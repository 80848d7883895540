"""Dense candidates from the real usearch projection equal an exact scan, per project."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from memlane.projections import queries, vector_store
from memlane.projections.queries import first_live, indexed_count, live_among
from memlane.daemon.service.candidates import (
    LexicalEvidence, dense_candidates, hybrid_hits, lexical_candidates, lexical_evidence, rank,
    rank_embedded)
from memlane.daemon.domain.ranking import CANDIDATES, fuse, with_neighbours
from memlane.events.model import Embedded, Expired, Record, Stored
from memlane.events.vector_codes import held
from memlane.projections.catchup import Projections
from memlane.projections.postings import PostingsCache

DIMS = 32
AT = datetime(2026, 11, 27, tzinfo=UTC)


def build(tmp_path: Path, projects: list[str], rng: np.random.Generator,
          texts: list[str] | None = None) -> tuple[Projections, np.ndarray]:
    vectors = rng.normal(size=(len(projects), DIMS)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    records, seq = [], 0
    for i, project in enumerate(projects, start=1):
        seq += 1
        records.append(Record(seq=seq, at=AT, event=Stored(
            id=i, text=texts[i - 1] if texts else f"memory number {i}", project=project,
            kind="note",
            content_hash=f"{i:032x}")))
    for i in range(1, len(projects) + 1):
        seq += 1
        records.append(Record(seq=seq, at=AT, event=Embedded(
            memory=i, vector=vectors[i - 1].astype("<f4").tobytes(), dims=DIMS, model="m",
            pipeline="m/mean/32/p1")))
    projections = Projections(tmp_path / "p.sqlite3", tmp_path / "v.usearch")
    projections.apply(records)
    return projections, held(vectors)  # as the projection holds them


def exact(vectors: np.ndarray, query: np.ndarray, allowed: np.ndarray) -> list[int]:
    scores = vectors @ query
    order = [int(i) for i in np.argsort(-scores, kind="stable") if allowed[i]]
    return [i + 1 for i in order[:CANDIDATES]]


@pytest.fixture(params=["index", "project scan"])
def strategy(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Small collections take the index path; a large one scans a small project's vectors."""
    if request.param == "project scan":
        monkeypatch.setattr(vector_store, "EXACT_BELOW", 100)
    return str(request.param)


def test_dense_candidates_equal_an_exact_scan(tmp_path: Path, strategy: str) -> None:
    rng = np.random.default_rng(1)
    projects = [f"p{i % 3}" for i in range(900)]
    projections, vectors = build(tmp_path, projects, rng)
    for _ in range(5):
        query = vectors[rng.integers(len(vectors))] + rng.normal(scale=0.3, size=DIMS)
        query = (query / np.linalg.norm(query)).astype(np.float32)
        for project in (None, "p1"):
            allowed = np.array([project is None or p == project for p in projects])
            got = dense_candidates(projections.vectors, projections.sqlite.conn, query, project)
            assert [i for i, _ in got] == exact(vectors, query, allowed)
            assert np.allclose([s for _, s in got],
                               [float(vectors[i - 1] @ query) for i, _ in got], atol=1e-5)
    projections.close()


def test_a_small_project_among_many_memories_still_gets_its_candidates(tmp_path: Path,
                                                                       strategy: str) -> None:
    rng = np.random.default_rng(2)
    projects = ["big"] * 3000 + ["small"] * 5
    projections, vectors = build(tmp_path, projects, rng)
    query = vectors[0]
    got = dense_candidates(projections.vectors, projections.sqlite.conn, query, "small")
    assert sorted(i for i, _ in got) == list(range(3001, 3006))
    projections.close()


def test_expired_memories_are_not_candidates(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    projections, vectors = build(tmp_path, ["p"] * 20, rng)
    projections.apply([Record(seq=41, at=AT, event=Expired(memory=1, reason="aged"))])
    got = dense_candidates(projections.vectors, projections.sqlite.conn, vectors[0], "p")
    assert 1 not in [i for i, _ in got] and len(got) == 19
    hits = hybrid_hits(projections.sqlite.conn, got, "memory number 1", "p", 5)
    assert 1 not in [h["id"] for h in hits]
    projections.close()


def test_bm25_strength_is_high_when_one_memory_holds_the_rare_words(tmp_path: Path) -> None:
    """A query whose rare word one memory holds is strong; the same query with a word no
    memory holds is weak; a query matching nothing has no strength."""
    projections, _ = build(tmp_path, ["p"] * 150, np.random.default_rng(4))
    conn = projections.sqlite.conn

    def strength(query: str) -> float:
        found, strength, _ = lexical_evidence(conn, query, "p")
        assert found == lexical_candidates(conn, query, "p")
        return strength

    assert strength("memory number 17") > 0.8
    assert strength("memory number zebra") < 0.2 * strength("memory number 17")
    assert strength("zebra") == 0.0
    projections.close()


def test_a_word_other_projects_hold_and_this_one_never_does_is_foreign(tmp_path: Path) -> None:
    """A query naming someone only another project speaks of carries that project's count of
    memories naming them; a word this project holds, or no project holds, is not foreign."""
    texts = [f"Caroline painted picture {i}" for i in range(30)] + [
        f"Jon danced routine {i}" for i in range(20)] + ["Jon once painted a fence"]
    projects = ["a"] * 30 + ["b"] * 21
    projections, _ = build(tmp_path, projects, np.random.default_rng(6), texts)
    conn = projections.sqlite.conn
    assert lexical_evidence(conn, "What did Caroline paint?", "b").foreign == 30
    assert lexical_evidence(conn, "What did Caroline paint?", "a").foreign == 0
    assert lexical_evidence(conn, "When did Jon dance?", "a").foreign == 21
    assert lexical_evidence(conn, "Did Jon paint zebras?", "b").foreign == 0
    assert lexical_evidence(conn, "What did Caroline paint?", None).foreign == 0
    projections.close()


@pytest.mark.parametrize("size", [0, 5, 300])
def test_indexed_count_is_the_full_text_index_row_count(tmp_path: Path, size: int) -> None:
    """Read from FTS5's own record (a varint of one or more bytes), it equals a count."""
    projections, _ = build(tmp_path, ["p"] * size, np.random.default_rng(5))
    conn = projections.sqlite.conn
    assert indexed_count(conn) == size == conn.execute(
        "SELECT count(*) FROM memories_fts").fetchone()[0]
    projections.close()


def test_a_project_with_no_memory_scans_no_vector(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A prompt from a new project: no candidates, and no scan of the other projects' vectors
    (it took the whole index plus a lookup of every id before)."""
    rng = np.random.default_rng(3)
    projections, vectors = build(tmp_path, [f"p{i % 3}" for i in range(300)], rng)

    def no_scan(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the vector index was scanned for an empty project")

    monkeypatch.setattr(projections.vectors, "search", no_scan)
    assert dense_candidates(projections.vectors, projections.sqlite.conn, vectors[0],
                            "a-new-project") == []
    projections.close()


def test_candidates_are_plain_ints_and_floats(tmp_path: Path, strategy: str) -> None:
    """Ids and cosines come back as Python ints and floats from either layout (they are
    encoded as JSON and compared by key)."""
    projections, vectors = build(tmp_path, [f"p{i % 3}" for i in range(300)],
                                 np.random.default_rng(6))
    for project in (None, "p2"):
        got = dense_candidates(projections.vectors, projections.sqlite.conn, vectors[4], project)
        assert got and all(type(i) is int and type(s) is float for i, s in got)
    projections.close()


def test_live_among_keeps_the_live_memories_of_the_project(tmp_path: Path) -> None:
    """Expired memories, other projects' memories and unknown ids are left out."""
    projections, _ = build(tmp_path, ["a", "b", "a", "a"], np.random.default_rng(7))
    projections.apply([Record(seq=9, at=AT, event=Expired(memory=3, reason="aged"))])
    conn = projections.sqlite.conn
    assert live_among(conn, [1, 2, 3, 4, 99], "a") == {1, 4}
    assert live_among(conn, [1, 2, 3, 4, 99], None) == {1, 2, 4}
    assert live_among(conn, [], "a") == set()
    projections.close()


def test_first_live_keeps_the_order_and_stops_at_the_count(tmp_path: Path) -> None:
    """The first live memories of the project in the order given, past any number of dead or
    foreign ones, and no more than asked for."""
    projections, _ = build(tmp_path, ["a", "b"] * 60, np.random.default_rng(8))
    projections.apply([Record(seq=1000 + m, at=AT, event=Expired(memory=m, reason="aged"))
                       for m in range(1, 41)])
    conn = projections.sqlite.conn
    order = list(range(120, 0, -1))
    a_live = [m for m in order if m % 2 == 1 and m > 40]
    assert first_live(conn, order, "a", 5) == a_live[:5]
    assert first_live(conn, order, "a", 100) == a_live
    assert first_live(conn, [*range(1, 41), 99, 97], "a", 1) == [99]
    assert first_live(conn, order, None, 3) == [120, 119, 118]
    assert first_live(conn, [], "a", 3) == []
    projections.close()


def test_ranking_in_a_known_project_equals_ranking_with_projects_looked_up(
        tmp_path: Path) -> None:
    """Given the project both lists were searched in, the neighbour lift sees the same
    projects as when it looks each candidate up: same hits, same scores."""
    rng = np.random.default_rng(8)
    projects = [f"p{(i // 4) % 2}" for i in range(200)]
    projections, vectors = build(tmp_path, projects, rng)
    conn = projections.sqlite.conn
    for query in ("memory number 12", "number 7 memory 41", "memory"):
        dense = dense_candidates(projections.vectors, conn, vectors[10], "p1")
        lexical = LexicalEvidence(lexical_candidates(conn, query, "p1"), 0.0, 0)
        known = rank(conn, dense, lexical, 10, project="p1")
        looked_up = rank(conn, dense, lexical, 10)
        assert known.hits == looked_up.hits and len(known.hits) == 10
    dense = dense_candidates(projections.vectors, conn, vectors[10], None)
    lexical = LexicalEvidence(lexical_candidates(conn, "memory number 12", None), 0.0, 0)
    truth = with_neighbours(fuse(dense, lexical.found), dict(enumerate(projects, start=1)))[:10]
    assert [(h["id"], h["score"]) for h in rank(conn, dense, lexical, 10).hits] == [
        (i, round(score, 6)) for i, score in truth]
    projections.close()


def test_the_postings_copy_changes_no_ranking(tmp_path: Path) -> None:
    """Ranked with the in-memory postings (BM25 and the dense scan's project filter) or
    without, every query gets the same hits, scores and evidence, per project and over all,
    with expired memories and a project the copy has not seen yet."""
    rng = np.random.default_rng(12)
    words = "cache build deploy retry ledger queue worker timeout refunds postgres".split()
    texts = [" ".join(rng.choice(words, size=int(rng.integers(2, 9)))) for _ in range(600)]
    projects = [f"p{i % 4}" for i in range(600)]
    projections, vectors = build(tmp_path, projects, rng, texts)
    projections.apply([Record(seq=5000 + m, at=AT, event=Expired(memory=m, reason="aged"))
                       for m in range(1, 600, 9)])
    copy = PostingsCache(projections.reads, least=0)
    conn = projections.sqlite.conn
    copy.current(conn)
    assert copy.wait_built(30)
    newcomer = rng.normal(size=DIMS).astype(np.float32)
    newcomer /= np.linalg.norm(newcomer)
    projections.apply([
        Record(seq=6000, at=AT, event=Stored(id=601, text="cache ledger newcomer", project="p9",
                                             kind="note", content_hash=f"{601:032x}")),
        Record(seq=6001, at=AT, event=Embedded(memory=601, vector=newcomer.astype("<f4").tobytes(),
                                               dims=DIMS, model="m", pipeline="m/mean/32/p1"))])
    for i in range(40):
        query = " ".join(rng.choice(words, size=3))
        vector = vectors[int(rng.integers(0, 600))]
        for project in ("p1", "p9", None):
            plain = rank_embedded(projections.vectors, conn, vector,
                                  lexical_evidence(conn, query, project), 10, project=project)
            held = rank_embedded(projections.vectors, conn, vector,
                                 lexical_evidence(conn, query, project, postings=copy), 10,
                                 project=project, postings=copy)
            assert [h["id"] for h in held.hits] == [h["id"] for h in plain.hits], (i, project)
            assert [h["score"] for h in held.hits] == pytest.approx(
                [h["score"] for h in plain.hits], abs=1e-9)
            assert held.strength == pytest.approx(plain.strength, rel=1e-12)
            assert held.foreign == plain.foreign
    projections.close()


def test_placement_asks_in_chunks_and_misses_none(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A link pass a crash cut may name 100k memories: more than one query's parameters."""
    projections, _ = build(tmp_path, ["a", "b", "a"], np.random.default_rng(9))
    monkeypatch.setattr(queries, "PLACEMENT_CHUNK", 2)
    placed = queries.placement(projections.sqlite.conn, [1, 2, 3, 99])
    assert placed == {1: ("a", "active"), 2: ("b", "active"), 3: ("a", "active")}
    projections.close()
