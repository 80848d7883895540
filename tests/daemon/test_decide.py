"""Store decisions and kind detection: pure functions, no I/O."""

from __future__ import annotations

import pytest

from memlane.daemon.domain.admission import AdmissionIndex
from memlane.daemon.domain.storing import StoreRequest, decide_store
from memlane.daemon.domain.kinds import detect_kind, is_empty_save, is_protected
from memlane.events.model import Expired, Reinforced, Stored


@pytest.mark.parametrize(("text", "tags", "explicit", "kind"), [
    ("Use uv", [], "insight", "insight"),
    ("Use uv", ["decision"], None, "decision"),
    ("Use uv", ["#note"], None, "user-note"),
    ("We chose Postgres over MySQL #decision", [], None, "decision"),
    ("remember: staging db is read-only #note", [], None, "user-note"),
    ("TIL pytest -x stops early #til", [], None, "insight"),
    ("issue #123 is fixed", [], None, "note"),
    ("color: #decide", [], None, "note"),
    ("plain text", ["misc"], None, "note"),
])
def test_kind_comes_from_the_flag_then_tags_then_hashtags(text: str, tags: list[str],
                                                          explicit: str | None, kind: str) -> None:
    assert detect_kind(text, tags, explicit) == kind


def test_only_decisions_and_user_notes_are_protected() -> None:
    assert is_protected("decision") and is_protected("user-note")
    assert not any(is_protected(k) for k in ("note", "insight", "session-save", "auto-save"))


@pytest.mark.parametrize(("kind", "text", "empty"), [
    ("auto-save", "Session summary: nothing.", True),
    ("session-save", "## Session end\n- no changes\n", True),
    ("session-save", "Fixed the flaky upload test by mocking the S3 clock skew", False),
    ("note", "ok", False),  # only generated saves are judged empty
])
def test_empty_generated_saves(kind: str, text: str, empty: bool) -> None:
    assert is_empty_save(kind, text) is empty


def request(text: str, **overrides: object) -> StoreRequest:
    return StoreRequest(**{"text": text, "project": "p", "kind": "note", **overrides})  # type: ignore[arg-type]


def test_a_new_text_is_stored_with_the_next_seq_as_id() -> None:
    events, outcome = decide_store(AdmissionIndex(), request("Run ruff"), 7)
    assert [type(e) for e in events] == [Stored] and events[0].id == 7  # type: ignore[union-attr]
    assert (outcome.id, outcome.duplicate) == (7, False)


def test_a_repeat_in_the_same_project_is_reinforced_not_stored() -> None:
    index = AdmissionIndex()
    first, _ = decide_store(index, request("Run ruff before commit"), 1)
    index.observe(first)
    events, outcome = decide_store(index, request("  run RUFF before   commit", source="hook"), 2)
    assert events == [Reinforced(memory=1, source="hook")]
    assert (outcome.id, outcome.duplicate) == (1, True)
    other, _ = decide_store(index, request("Run ruff before commit", project="q"), 3)
    assert isinstance(other[0], Stored)


def test_a_retry_with_a_known_key_appends_nothing() -> None:
    index = AdmissionIndex()
    first, _ = decide_store(index, request("Run ruff", idempotency_key="k1"), 1)
    index.observe(first)
    events, outcome = decide_store(index, request("Something else", idempotency_key="k1"), 2)
    assert events == [] and (outcome.id, outcome.duplicate) == (1, True)


def test_an_empty_save_is_stored_and_expired_at_once() -> None:
    events, _ = decide_store(AdmissionIndex(), request("Session ended.", kind="session-save"), 4)
    assert isinstance(events[0], Stored)
    assert isinstance(events[1], Expired) and events[1].memory == 4
