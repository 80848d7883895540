"""The redaction corpus (tests/data/redaction/corpus.jsonl): its shape, and the redactor's scores.

A secret that leaks is a bug, so the scores are tests: the tune split is held at what the rules
reach on it, the held-out split at issue 14's acceptance (recall >= 98%, near-misses altered
<= 2%). Failures name figures only, never a held-out entry: rules are tuned on ``tune`` alone.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest

from memlane.daemon.domain.redaction import redact

CORPUS = Path(__file__).resolve().parents[1] / "data" / "redaction" / "corpus.jsonl"
FIELDS = {"id", "label", "kind", "phrasing", "split", "text", "tags", "secrets"}


@pytest.fixture(scope="module")
def entries() -> list[dict[str, Any]]:
    return [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines()]


def secrets_of(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in entries if e["label"] == "secret"]


def test_every_entry_has_every_field_with_its_type(entries: list[dict[str, Any]]) -> None:
    for entry in entries:
        assert set(entry) == FIELDS, entry["id"]
        assert entry["label"] in ("secret", "near-miss"), entry["id"]
        assert entry["split"] in ("tune", "heldout"), entry["id"]
        assert isinstance(entry["text"], str) and entry["text"], entry["id"]
        assert all(isinstance(tag, str) and tag for tag in entry["tags"]), entry["id"]
    assert len({e["id"] for e in entries}) == len(entries)


def test_enough_secrets_kinds_and_near_misses(entries: list[dict[str, Any]]) -> None:
    secrets = secrets_of(entries)
    assert len(secrets) >= 80
    assert len({e["kind"] for e in secrets}) >= 50
    assert sum(e["label"] == "near-miss" for e in entries) >= 200


def test_each_secret_is_in_its_text_or_tags(entries: list[dict[str, Any]]) -> None:
    for entry in secrets_of(entries):
        assert entry["secrets"], entry["id"]
        for secret in entry["secrets"]:
            assert secret in entry["text"] or any(secret in t for t in entry["tags"]), entry["id"]


def test_near_misses_list_no_secret(entries: list[dict[str, Any]]) -> None:
    assert all(e["secrets"] == [] for e in entries if e["label"] == "near-miss")


def test_some_secrets_are_only_in_tags(entries: list[dict[str, Any]]) -> None:
    in_tags = [e for e in secrets_of(entries)
               if all(s not in e["text"] and any(s in t for t in e["tags"]) for s in e["secrets"])]
    assert len(in_tags) >= 5


def test_both_splits_hold_secrets_and_near_misses(entries: list[dict[str, Any]]) -> None:
    assert {(e["label"], e["split"]) for e in entries} == {
        (label, split) for label in ("secret", "near-miss") for split in ("tune", "heldout")}


def test_each_kind_is_halved_between_splits(entries: list[dict[str, Any]]) -> None:
    splits: defaultdict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for entry in entries:
        splits[entry["label"], entry["kind"]][entry["split"]] += 1
    for kind, counts in splits.items():
        assert abs(counts["tune"] - counts["heldout"]) <= 1, kind


def scores(entries: list[dict[str, Any]], split: str) -> tuple[float, float]:
    """Recall over secret entries (every secret gone from text and tags, tags redacted one by
    one) and the share of near-misses changed at all, on one split."""
    caught = secrets = altered = near_misses = 0
    for entry in (e for e in entries if e["split"] == split):
        text, tags = redact(entry["text"]).text, [redact(tag).text for tag in entry["tags"]]
        if entry["label"] == "near-miss":
            near_misses += 1
            altered += text != entry["text"] or tags != entry["tags"]
        else:
            secrets += 1
            caught += not any(s in stored for s in entry["secrets"] for stored in (text, *tags))
    return caught / secrets, altered / near_misses


def test_tune_split_is_fully_redacted_and_near_misses_survive(
        entries: list[dict[str, Any]]) -> None:
    """On the split the rules were written against, every secret goes and no near-miss changes."""
    assert scores(entries, "tune") == (1.0, 0.0)


def test_heldout_recall_holds_its_measured_floor(entries: list[dict[str, Any]]) -> None:
    """Held out: recall stays at least 98.7% and near-miss alteration at most 2% (81/82, 2/111
    once the forms fresh missed were added), so a change that loses ground fails here."""
    recall, alteration = scores(entries, "heldout")
    assert recall >= 0.987, f"held-out recall {recall:.1%}"
    assert alteration <= 0.02, f"held-out near-miss alteration {alteration:.1%}"


def test_heldout_meets_the_issue_14_thresholds(entries: list[dict[str, Any]]) -> None:
    """Held out: recall at least 98% and near-miss alteration at most 2% (issue 14)."""
    recall, alteration = scores(entries, "heldout")
    assert recall >= 0.98, f"held-out recall {recall:.1%}"
    assert alteration <= 0.02, f"held-out near-miss alteration {alteration:.1%}"
