"""The review's rules (pure): undoing a consolidation, verdicts on routes, the exact diff, and
a route taken back out of its file."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from memlane.daemon.domain.errors import BadRequest
from memlane.daemon.domain.forgetting import remove_routed
from memlane.daemon.domain.review import (
    UNDONE,
    MemoryFacts,
    RouteFacts,
    decide_route_review,
    decide_undo_consolidation,
    route_diff,
)
from memlane.daemon.domain.routing import decide_route, drop_empty_section, insert_memory
from memlane.daemon.domain.routing import TargetScore
from memlane.events.model import Expired, Restored, Routed

PROVEN = MemoryFacts(10, "proven", "consolidation")


def test_undo_restores_the_sources_this_consolidation_expired_and_retires_it() -> None:
    """Only sources expired into this memory come back; the memory expires with a reason."""
    sources = [MemoryFacts(1, "expired", "cli", "consolidated into 10"),
               MemoryFacts(2, "expired", "cli", "consolidated into 10"),
               MemoryFacts(3, "expired", "cli", "superseded by #9 (edited)"),
               MemoryFacts(4, "forgotten", "cli", "consolidated into 10")]
    assert decide_undo_consolidation(PROVEN, sources) == [
        Restored(memory=1), Restored(memory=2), Expired(memory=10, reason=UNDONE)]


@pytest.mark.parametrize("memory", [MemoryFacts(10, "expired", "consolidation", UNDONE),
                                    MemoryFacts(10, "active", "cli")])
def test_undo_refuses_a_memory_that_is_not_a_live_consolidation(memory: MemoryFacts) -> None:
    """An undone (expired) consolidation or a stored memory cannot be undone."""
    with pytest.raises(BadRequest):
        decide_undo_consolidation(memory, [])


@pytest.mark.parametrize(("action", "verdict", "expected"), [
    ("proposed", "accepted", ("written", "accepted by the user")),
    ("proposed", "rejected", ("skipped", "rejected by the user")),
    ("written", "undone", ("skipped", "undone by the user"))])
def test_a_verdict_is_one_more_routed_fact(action: str, verdict: str,
                                           expected: tuple[str, str]) -> None:
    """Accepting writes, rejecting and undoing skip (the router never proposes it again)."""
    route = RouteFacts(5, "/p/CLAUDE.md", "Proven knowledge (memlane)", action)
    assert decide_route_review(route, verdict) == Routed(  # type: ignore[arg-type]
        memory=5, target="/p/CLAUDE.md", section="Proven knowledge (memlane)",
        action=expected[0], verdict=expected[1])  # type: ignore[arg-type]


@pytest.mark.parametrize(("action", "verdict"), [("written", "accepted"), ("skipped", "rejected"),
                                                 ("proposed", "undone")])
def test_a_verdict_on_the_wrong_kind_of_route_is_refused(action: str, verdict: str) -> None:
    """Only a proposal is accepted or rejected, only a written route undone."""
    with pytest.raises(BadRequest, match="only a"):
        decide_route_review(RouteFacts(5, "t", "s", action), verdict)  # type: ignore[arg-type]


def test_the_diff_is_exactly_the_inserted_entry() -> None:
    """The diff adds memlane's section and the entry, and nothing else."""
    updated, diff = route_diff("# P\n\nUse uv.\n", 7, "Pool size is 20", "CLAUDE.md")
    assert updated == insert_memory("# P\n\nUse uv.\n", 7, "Pool size is 20")
    added = [ln for ln in diff.splitlines() if ln.startswith("+") and not ln.startswith("+++")]
    assert added == ["+", "+## Proven knowledge (memlane)", "+",
                     "+- Pool size is 20 <!-- memlane:7 -->"]


def test_review_mode_proposes_what_would_be_written() -> None:
    """In review mode a route that would be written waits for the user instead."""
    best = TargetScore("CLAUDE.md", 0.1, "x")
    assert decide_route(1, "t", best, "", duplicate=0.9, conflict=False, may_write=True,
                        review=True).action == "proposed"
    assert decide_route(1, "t", best, "", duplicate=0.9, conflict=False,
                        may_write=True).action == "written"


lines = st.text(st.characters(codec="utf-8", exclude_characters="#\r<>-"), max_size=40)


@given(st.lists(lines, max_size=6), st.text(st.characters(codec="utf-8",
                                                          exclude_characters="\r<>"),
                                            min_size=1, max_size=60).filter(str.strip))
def test_undoing_a_route_restores_a_file_ending_in_one_newline(paragraphs: list[str],
                                                                text: str) -> None:
    """Inserting a memory then removing it (and the emptied section) gives the file back."""
    original = "\n\n".join(p.strip() for p in paragraphs if p.strip())
    original = original + "\n" if original else ""
    written = insert_memory(original, 42, text)
    assert drop_empty_section(remove_routed(written, 42, text)) == original


def test_a_section_holding_other_entries_stays() -> None:
    """Only an empty memlane section is dropped."""
    text = "# A\n\n## Proven knowledge (memlane)\n\n- old <!-- memlane:1 -->\n\n## B\n\nx\n"
    assert drop_empty_section(text) == text
