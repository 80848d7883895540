"""Hypothesis strategies for events and records."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import strategies as st

from memlane.events import model as m

ids = st.integers(min_value=1, max_value=2**40)
texts = st.text(min_size=1, max_size=200)
names = st.text(min_size=1, max_size=30)
tags = st.lists(st.text(min_size=1, max_size=10), max_size=4).map(tuple)
scores = st.floats(min_value=-1, max_value=1, allow_nan=False)
digests = st.text(alphabet="0123456789abcdef", min_size=32, max_size=32)
times = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2100, 1, 1),
                     timezones=st.just(UTC))

# One strategy per event type; tests/events/test_codec.py checks that none is missing.
BY_TYPE: dict[type, st.SearchStrategy[m.Event]] = {
    m.Stored: st.builds(m.Stored, id=ids, text=texts, project=names, kind=st.sampled_from(m.KINDS),
              content_hash=digests, source=names, tags=tags, redactions=st.integers(0, 9),
              idempotency_key=st.none() | names),
    m.Embedded: st.builds(m.Embedded, memory=ids, vector=st.binary(max_size=64), dims=st.integers(1, 16),
              model=names, pipeline=names),
    m.Linked: st.builds(m.Linked, a=ids, b=ids, similarity=scores),
    m.Clustered: st.builds(m.Clustered, cluster=ids, members=st.lists(ids, max_size=5).map(tuple),
              cohesion=scores),
    m.Consolidated: st.builds(m.Consolidated, id=ids, sources=st.lists(ids, max_size=5).map(tuple), text=texts,
              project=names, kind=names, content_hash=digests, model=names, prompt_version=names,
              cluster=st.none() | ids, tags=tags),
    m.Routed: st.builds(m.Routed, memory=ids, target=names, section=names,
              action=st.sampled_from(["proposed", "written", "skipped"]), verdict=names),
    m.Recalled: st.builds(m.Recalled, memory=ids, query=texts, rank=st.integers(0, 100), score=scores),
    m.Reprieved: st.builds(m.Reprieved, memory=ids, count=st.integers(0, 3), reason=names),
    m.Promoted: st.builds(m.Promoted, memory=ids, reason=names),
    m.Expired: st.builds(m.Expired, memory=ids, reason=names),
    m.Restored: st.builds(m.Restored, memory=ids),
    m.ForgetRequested: st.builds(m.ForgetRequested, memories=st.lists(ids, min_size=1,
              max_size=4).map(tuple), keep_descendants=st.booleans()),
    m.Forgotten: st.builds(m.Forgotten, memory=ids, content_hash=digests, request=ids,
              files_scanned=ids, needles=ids, matches=ids),
    m.ThresholdSet: st.builds(m.ThresholdSet, model=names, name=names, value=scores),
    m.ModelChanged: st.builds(m.ModelChanged, model=names, pipeline=names, dims=st.integers(1, 4096)),
    m.Reinforced: st.builds(m.Reinforced, memory=ids, source=names),
    m.Shown: st.builds(m.Shown, memories=st.lists(ids, max_size=4).map(tuple), session=names,
              hook=names, prompt_hash=names),
    m.Used: st.builds(m.Used, memory=ids, evidence=st.sampled_from(["reply", "prompt", "mcp", "user"]),
              score=scores, session=names),
    m.Pinned: st.builds(m.Pinned, memory=ids, pinned=st.booleans()),
    m.ConsolidationRejected: st.builds(m.ConsolidationRejected, cluster=ids,
              members=st.lists(ids, max_size=5).map(tuple)),
    m.Tallied: st.lists(st.tuples(ids, st.integers(0, 9), st.integers(0, 9), st.none() | times,
                                  st.integers(0, 2**40)), max_size=4).map(
        lambda rows: m.Tallied(memories=tuple(r[0] for r in rows),
                               recalls=tuple(r[1] for r in rows), shown=tuple(r[2] for r in rows),
                               last_recalled=tuple(r[3] for r in rows),
                               refreshed=tuple(r[4] for r in rows))),
    m.Embeddings: st.integers(1, 8).flatmap(lambda dims: st.lists(st.tuples(
        ids, st.binary(min_size=dims, max_size=dims), st.floats(0, 1, width=32)), max_size=4).map(
        lambda rows: m.Embeddings(memories=tuple(r[0] for r in rows),
                                  codes=b"".join(r[1] for r in rows),
                                  scales=tuple(r[2] for r in rows), dims=dims, model="m",
                                  pipeline="m/mean/8/p1"))),
}
EVENTS = st.one_of(*BY_TYPE.values())
