"""The redaction corpus (tests/data/redaction/corpus.jsonl) has the shape the evaluation needs.

Only the shape: recall thresholds wait until the rules are tuned (bench/bench_redaction.py).
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest

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
