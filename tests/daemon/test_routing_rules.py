"""Routing and consolidation rules (pure)."""

from __future__ import annotations

import numpy as np

from memlane.daemon.domain.consolidation import (
    Merge,
    Source,
    decide_consolidation,
    extractive_merge,
    merged_kind,
    sentences_of,
)
from memlane.daemon.domain.routing import (
    SECTION,
    TargetScore,
    already_present,
    choose_target,
    decide_route,
    insert_memory,
    offline_conflict,
    paragraphs,
    score_targets,
)
from memlane.events.model import Consolidated, Expired

CLAUDE = "# Project\n\nA FastAPI service.\n\n## Testing\n\nRun pytest -x.\n"


def test_paragraphs_split_on_blank_lines_and_headings() -> None:
    assert paragraphs(CLAUDE) == ["# Project", "A FastAPI service.", "## Testing", "Run pytest -x."]


def test_the_nearest_paragraph_picks_the_target_and_empty_targets_default() -> None:
    scores = score_targets({"CLAUDE.md": [("a", 0.2)], ".claude/rules/db.md": [("b", 0.7)],
                            "docs/x.md": []})
    assert choose_target(scores, "CLAUDE.md").target == ".claude/rules/db.md"
    empty = score_targets({"CLAUDE.md": [], "docs/x.md": []})
    assert choose_target(empty, "CLAUDE.md") == TargetScore("CLAUDE.md", -1.0, "")


def test_insertion_creates_then_extends_the_marked_section() -> None:
    once = insert_memory(CLAUDE, 12, "- Use uv\n- Never pip install")
    assert once.startswith(CLAUDE.rstrip("\n")) and SECTION in once
    assert "- Use uv <!-- memlane:12 -->\n- Never pip install\n" in once
    twice = insert_memory(once + "\n## Later\n\nkept\n", 13, "Pin node in .nvmrc")
    assert twice.count(SECTION) == 1
    section = twice.split(SECTION)[1].split("## Later")[0]
    assert "memlane:12" in section and "memlane:13" in section and twice.endswith("kept\n")
    assert insert_memory("", 1, "x") == f"{SECTION}\n\n- x <!-- memlane:1 -->\n"


def test_what_the_file_says_already_is_skipped() -> None:
    text = insert_memory(CLAUDE, 12, "Use uv")
    assert already_present(text, 12, "anything") and already_present(CLAUDE, 99, "run PYTEST -x.")
    best = TargetScore("CLAUDE.md", 0.5, "x")
    assert decide_route(12, "Use uv", best, text, duplicate=0.95, conflict=False,
                        may_write=True).action == "skipped"
    near = TargetScore("CLAUDE.md", 0.97, "Use uv for installs")
    assert decide_route(5, "Install with uv", near, CLAUDE, duplicate=0.95, conflict=False,
                        may_write=True).action == "skipped"


def test_conflicts_and_projects_without_opt_in_are_only_proposed() -> None:
    best = TargetScore("CLAUDE.md", 0.7, "Always run migrations in CI")
    conflict = offline_conflict("Never run migrations in CI", best.nearest, best.similarity,
                                threshold=0.6)
    assert conflict and not offline_conflict("Run migrations in CI first", best.nearest, 0.7,
                                             threshold=0.6)
    assert not offline_conflict("Never do X", "Always do Y", 0.3, threshold=0.6)
    proposed = decide_route(1, "Never run migrations in CI", best, CLAUDE, duplicate=0.95,
                            conflict=True, may_write=True)
    assert proposed.action == "proposed" and "conflict" in proposed.verdict
    assert decide_route(1, "New fact", best, CLAUDE, duplicate=0.95, conflict=False,
                        may_write=False).action == "proposed"
    assert decide_route(1, "New fact", best, CLAUDE, duplicate=0.95, conflict=False,
                        may_write=True).action == "written"


SOURCES = [Source(1, "Pool runs out under load. Set pool_size=20.", "note", ("db",)),
           Source(2, "The pool is exhausted under load.", "decision", ("perf",)),
           Source(3, "Set pool_size=20.\nRestart the API after.", "note", ())]


def test_the_offline_merge_keeps_central_sentences_once() -> None:
    sentences = sentences_of(SOURCES)
    assert sentences == ["Pool runs out under load.", "Set pool_size=20.",
                         "The pool is exhausted under load.", "Restart the API after."]
    similarity = np.eye(4)
    similarity[0, 2] = similarity[2, 0] = 0.9  # two ways to say the same thing
    merge = extractive_merge(SOURCES, sentences, similarity, threshold=0.8)
    assert merge.text.count("\n") == 2 and "Restart the API after." in merge.text
    assert merge.kind == "decision" and set(merge.tags) == {"db", "perf"}


def test_consolidation_expires_the_sources_and_passes_protected_kinds_on() -> None:
    merge = Merge(text="Set pool_size=20 under load", kind="note", tags=("x",), model="m",
                  prompt_version="1")
    events = decide_consolidation(7, "api", SOURCES, merge, 40)
    proven = events[0]
    assert isinstance(proven, Consolidated) and proven.id == 40 and proven.sources == (1, 2, 3)
    assert proven.kind == "decision" and proven.cluster == 7
    assert set(proven.tags) == {"db", "perf", "x"}
    assert events[1:] == [Expired(memory=i, reason="consolidated into 40") for i in (1, 2, 3)]
    assert merged_kind([Source(1, "x", "note", ())], "insight") == "insight"


def test_a_teammates_memory_is_only_proposed() -> None:
    """Knowledge that came from another device by sync is never written on its own: it waits
    for this user's approval, even where writing is enabled."""
    best = TargetScore("CLAUDE.md", 0.5, "x")
    mine = decide_route(7, "Pin the toolchain", best, CLAUDE, duplicate=0.95, conflict=False,
                        may_write=True)
    theirs = decide_route(7, "Pin the toolchain", best, CLAUDE, duplicate=0.95,
                          conflict=False, may_write=True, teammate=True)
    assert mine.action == "written"
    assert theirs.action == "proposed" and "teammate" in theirs.verdict
