"""The embedder's decoder path (Qwen3 spec) on a tiny model with the real export's interface."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import numpy as np
import pytest
from tokenizers import Tokenizer

from memlane.daemon.adapters.embedder import Embedder
from memlane.daemon.adapters.model_store import FileRecord, Manifest, manifest_path, sha256_of, spec_files
from memlane.daemon.domain.models import QWEN3
from tests.tiny_qwen import EOS, WORDS, build_tiny_qwen, reference_hidden

Feed = dict[str, np.ndarray]
SMALL_WINDOW = msgspec.structs.replace(QWEN3, max_tokens=64)


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("models")
    build_tiny_qwen(root / QWEN3.name)
    record_as_pulled(root)
    return root


@pytest.fixture(scope="module")
def embedder(models_dir: Path) -> Embedder:
    return Embedder.load(QWEN3, models_dir)


@pytest.fixture(scope="module")
def small_window(models_dir: Path) -> Embedder:
    return Embedder.load(SMALL_WINDOW, models_dir)


@pytest.fixture(scope="module")
def tokenizer(models_dir: Path) -> Tokenizer:
    return Tokenizer.from_file(str(models_dir / QWEN3.name / QWEN3.tokenizer_file))


def record_as_pulled(models_dir: Path) -> None:
    """Write the manifest `memlane model pull` would have, so loading verifies the files."""
    root = models_dir / QWEN3.name
    files = {relative: FileRecord(size=(root / relative).stat().st_size,
                                  sha256=sha256_of(root / relative))
             for relative in spec_files(QWEN3)}
    manifest = Manifest(model=QWEN3.name, repo=QWEN3.hub_repo or "", revision="local",
                        pulled_at=datetime.now(UTC).isoformat(timespec="seconds"), files=files)
    manifest_path(QWEN3, models_dir).write_bytes(msgspec.json.encode(manifest))


def words(count: int, seed: int) -> str:
    """``count`` vocabulary words, all different when there are enough of them."""
    rng = np.random.default_rng(seed)
    return " ".join(rng.choice(WORDS, size=count, replace=count > len(WORDS)))


def unit(vector: np.ndarray) -> np.ndarray:
    return vector / np.linalg.norm(vector)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(unit(a) @ unit(b))


def expected(ids: list[int]) -> np.ndarray:
    """The reference vector of one sequence: its last token's hidden state, normalised."""
    return unit(reference_hidden(ids)[-1])


def record_feeds(monkeypatch: pytest.MonkeyPatch, embedder: Embedder) -> list[Feed]:
    """Every feed ``embedder`` gives ONNX Runtime from now on in this test."""
    feeds: list[Feed] = []
    run = embedder.session.run

    def recording_run(names: list[str], feed: Feed) -> list[np.ndarray]:
        feeds.append(feed)
        return run(names, feed)

    monkeypatch.setattr(embedder.session, "run", recording_run)
    return feeds


def fed_rows(feeds: list[Feed]) -> list[tuple[list[int], list[int]]]:
    """(token ids, position ids) of the real tokens of every row fed."""
    rows = []
    for feed in feeds:
        for ids, mask, positions in zip(feed["input_ids"], feed["attention_mask"],
                                        feed["position_ids"], strict=True):
            rows.append((ids[mask == 1].tolist(), positions[mask == 1].tolist()))
    return rows


def test_vector_is_the_last_tokens_hidden_state(embedder: Embedder,
                                                tokenizer: Tokenizer) -> None:
    """A text's vector is the normalised hidden state at its EOS, not a mean or an earlier one."""
    text = "The cache keeps notes about the river road"
    ids = tokenizer.encode(text).ids
    vector = embedder.embed([text])[0]
    np.testing.assert_allclose(vector, expected(ids), atol=1e-5)
    hidden = reference_hidden(ids)
    assert cosine(vector, hidden.mean(axis=0)) < 0.99
    assert cosine(vector, hidden[-2]) < 0.99


def test_left_padding_leaves_a_short_text_unchanged(embedder: Embedder, tokenizer: Tokenizer,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A short text padded on the left beside a long one keeps its vector; positions start at 0."""
    short, long = "a quick note", words(300, seed=1)
    alone = embedder.embed([short])[0]
    feeds = record_feeds(monkeypatch, embedder)
    together = embedder.embed([long, short])
    assert cosine(alone, together[1]) > 0.99999
    np.testing.assert_allclose(together[1], expected(tokenizer.encode(short).ids), atol=1e-5)
    [feed] = feeds
    row = int(np.argmin(feed["attention_mask"].sum(axis=1)))
    mask, positions = feed["attention_mask"][row], feed["position_ids"][row]
    real = len(tokenizer.encode(short).ids)
    assert mask.tolist() == [0] * (len(mask) - real) + [1] * real
    assert positions[mask == 1].tolist() == list(range(real))


@pytest.mark.parametrize("tokenizer_appends_eos", [True, False])
def test_every_sequence_fed_ends_with_one_eos(embedder: Embedder, tokenizer_appends_eos: bool,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """EOS ends every sequence exactly once, whether or not the tokenizer appends it itself."""
    subject = embedder
    if not tokenizer_appends_eos:
        bare = Tokenizer.from_str(embedder.tokenizer.to_str())
        bare.post_processor = None
        subject = Embedder(QWEN3, embedder.session, bare)
    texts = ["the dog ran home", words(700, seed=2)]
    feeds = record_feeds(monkeypatch, subject)
    vectors = subject.embed(texts)
    queries = subject.embed(texts[:1], input_type="query")
    eos = embedder.tokenizer.token_to_id(EOS)
    rows = fed_rows(feeds)
    assert len(rows) > len(texts) + 1  # the long text was split into windows
    for ids, _ in rows:
        assert ids[-1] == eos and ids.count(eos) == 1
    np.testing.assert_allclose(vectors, embedder.embed(texts), atol=1e-5)
    np.testing.assert_allclose(queries, embedder.embed(texts[:1], input_type="query"), atol=1e-5)


def test_queries_get_the_instruction_and_documents_do_not(embedder: Embedder,
                                                          tokenizer: Tokenizer) -> None:
    """A query is embedded as ``QWEN3.query_text``; a document as it is."""
    text = "where did my father leave the car"
    query = embedder.embed([text], input_type="query")[0]
    document = embedder.embed([text])[0]
    np.testing.assert_allclose(query, embedder.embed([QWEN3.query_text(text)])[0], atol=1e-6)
    np.testing.assert_allclose(document, expected(tokenizer.encode(text).ids), atol=1e-5)
    assert cosine(query, document) < 0.99


def test_long_text_is_split_into_overlapping_windows(small_window: Embedder, tokenizer: Tokenizer,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Overlapping windows from position 0 cover the text; its vector is their weighted mean."""
    text = words(150, seed=3)
    whole = tokenizer.encode(text, add_special_tokens=False).ids
    feeds = record_feeds(monkeypatch, small_window)
    vector = small_window.embed([text])[0]
    rows = fed_rows(feeds)
    assert all(positions == list(range(len(ids))) for ids, positions in rows)
    windows = sorted((ids for ids, _ in rows), key=lambda ids: _span(ids, whole))
    assert len(windows) > 1
    assert all(len(ids) <= SMALL_WINDOW.max_tokens for ids in windows)
    spans = [_span(ids, whole) for ids in windows]
    assert spans[0][0] == 0 and spans[-1][1] == len(whole)
    assert all(start < end for (_, end), (start, _) in itertools.pairwise(spans))
    mean = np.sum([len(ids) * expected(ids) for ids in windows], axis=0)
    np.testing.assert_allclose(vector, unit(mean), atol=1e-5)
    assert cosine(vector, expected(windows[0])) < 0.999


def test_last_words_of_a_long_text_change_its_vector(small_window: Embedder) -> None:
    """Nothing past the model's window is dropped: changing the last word changes the vector."""
    head, last = words(150, seed=4).rsplit(" ", 1)
    replacement = "river" if last == "cache" else "cache"
    before, after = small_window.embed([f"{head} {last}", f"{head} {replacement}"])
    assert cosine(before, after) < 0.9999


def test_matryoshka_truncation_keeps_the_leading_components(embedder: Embedder) -> None:
    """``dims=256`` gives the first 256 components of the full vector, renormalised."""
    texts = ["a note on the garden wall", words(700, seed=5)]
    full = embedder.embed(texts)
    cut = embedder.embed(texts, dims=256)
    assert cut.shape == (2, 256)
    np.testing.assert_allclose(np.linalg.norm(full, axis=1), 1, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(cut, axis=1), 1, atol=1e-6)
    leading = full[:, :256] / np.linalg.norm(full[:, :256], axis=1, keepdims=True)
    np.testing.assert_allclose(cut, leading, atol=1e-6)
    narrow = Embedder(QWEN3, embedder.session, embedder.tokenizer, dims=256)
    assert narrow.pipeline != embedder.pipeline
    np.testing.assert_allclose(narrow.embed(texts), cut, atol=1e-6)


def test_a_mixed_batch_equals_each_text_alone(embedder: Embedder,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Sorting, padding and token-budget batching do not change any text's vector."""
    rng = np.random.default_rng(6)
    texts = [words(int(n), seed=int(n)) for n in rng.integers(1, 700, size=60)]
    alone = np.vstack([embedder.embed([text]) for text in texts])
    feeds = record_feeds(monkeypatch, embedder)
    together = embedder.embed(texts)
    assert len(feeds) > 1
    assert min(cosine(a, b) for a, b in zip(together, alone, strict=True)) > 0.99999


def _span(window: list[int], whole: list[int]) -> tuple[int, int]:
    """Where a window's tokens (EOS excluded) lie in the text's tokens: [start, end)."""
    body = window[:-1]
    starts = [i for i in range(len(whole) - len(body) + 1) if whole[i:i + len(body)] == body]
    assert len(starts) == 1
    return starts[0], starts[0] + len(body)
