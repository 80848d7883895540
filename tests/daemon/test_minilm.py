"""The offline model: checksummed files, semantic sanity, batch invariance, long texts."""

from __future__ import annotations

import os
import time
from pathlib import Path

import msgspec
import numpy as np
import pytest

from memlane.daemon.adapters.embedder import Embedder
from memlane.daemon.domain.models import MINILM, ModelUnavailable

PAIRS = [  # (text, paraphrase, unrelated)
    ("The build cache must be cleared after upgrading the compiler.",
     "After a toolchain upgrade, wipe the build cache.",
     "Our cat sleeps on the windowsill every afternoon."),
    ("Use uv instead of pip to install dependencies.",
     "Install packages with uv rather than pip.",
     "The quarterly sales meeting moved to Thursday."),
    ("Integration tests need Redis running on port 6380.",
     "Redis must listen on 6380 before the integration suite runs.",
     "She painted the fence a bright shade of green."),
]


@pytest.fixture(scope="module")
def embedder(tmp_path_factory: pytest.TempPathFactory) -> Embedder:
    return Embedder.load(MINILM, tmp_path_factory.mktemp("models"), threads=1)


def test_paraphrases_score_above_unrelated_pairs(embedder: Embedder) -> None:
    for text, paraphrase, unrelated in PAIRS:
        a, b, c = embedder.embed([text, paraphrase, unrelated])
        assert float(a @ b) > 0.6 > 0.2 > float(a @ c)


def test_vectors_are_unit_length_and_batch_invariant(embedder: Embedder) -> None:
    texts = [t for triple in PAIRS for t in triple]
    together = embedder.embed(texts)
    assert np.allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)
    alone = np.vstack([embedder.embed([t]) for t in texts])
    assert ((together * alone).sum(axis=1) > 0.99999).all()


def test_a_text_beyond_the_window_is_chunked_not_truncated(embedder: Embedder) -> None:
    head = "The deploy script reads its settings from the environment. " * 40
    tail = "Finally remember that the staging database password rotates every Monday."
    assert embedder.count_tokens([head]) > MINILM.max_tokens
    whole, truncated_only = embedder.embed([head + tail, head])
    assert float(whole @ truncated_only) < 0.999  # the tail beyond the window counts
    tail_vector = embedder.embed([tail])[0]
    assert float(whole @ tail_vector) > float(truncated_only @ tail_vector)


def test_the_pass_counts_each_texts_tokens_as_count_tokens_does(embedder: Embedder) -> None:
    """The embeddings route's usage comes from the pass's own encodings, not a second
    tokenising on the request loop: the same counts, also for a text split into windows."""
    long = "The deploy script reads its settings from the environment. " * 40
    texts = ["short note", PAIRS[0][0], long]
    vectors, tokens = embedder.embed_counted(texts)
    assert tokens == [embedder.count_tokens([t]) for t in texts]
    assert tokens[2] > MINILM.max_tokens
    assert np.array_equal(vectors, embedder.embed(texts))
    _, asked = embedder.embed_counted(["short note", PAIRS[1][0], long], input_type="query")
    assert asked[:2] == [embedder.count_tokens([t]) for t in ("short note", PAIRS[1][0])]
    # a query counts what the model reads of it: of a long one, its first window
    assert MINILM.max_tokens - 8 <= asked[2] <= MINILM.max_tokens < tokens[2]


def test_files_that_differ_from_the_pinned_checksums_are_refused(tmp_path: Path) -> None:
    wrong = msgspec.structs.replace(MINILM, sha256={**MINILM.sha256, "model.onnx": "0" * 64})
    with pytest.raises(ModelUnavailable, match="sha256"):
        Embedder.load(wrong, tmp_path)


def test_empty_text_is_refused(embedder: Embedder) -> None:
    with pytest.raises(ValueError, match="empty"):
        embedder.embed(["  "])


def test_a_query_is_embedded_as_far_as_the_model_reads(embedder: Embedder) -> None:
    """A query is cut to the model's window (a stored text is chunked): words past the window
    change nothing, so a 2,000-character prompt costs one forward pass, not three."""
    words = " ".join(f"retry{i} backoff" for i in range(300))
    query = embedder.embed([words], input_type="query")
    longer = embedder.embed([words + " unrelated kubernetes ingress annotations"] * 1,
                            input_type="query")
    assert float(query[0] @ longer[0]) > 0.99999
    document = embedder.embed([words], input_type="document")
    assert float(document[0] @ query[0]) < 0.9999  # the document's later windows count


def _threads() -> set[str]:
    return set(os.listdir("/proc/self/task"))


def _cpu_ticks(threads: set[str]) -> int:
    """User and system clock ticks the given threads of this process have used."""
    ticks = 0
    for tid in threads:
        fields = Path(f"/proc/self/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return ticks


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux's /proc")
def test_an_idle_embedder_burns_no_cpu_after_a_pass(tmp_path: Path) -> None:
    """ONNX Runtime's own threads do not spin once a pass is over: an idle daemon burns no CPU
    (spinning costs ~40 ms of CPU after every request on 2 threads). Only the session's
    threads are counted, so other threads of the test process cannot disturb it."""
    before = _threads()
    embedder = Embedder.load(MINILM, tmp_path, threads=2)
    text = ["the build cache must be cleared after upgrading the toolchain"]
    embedder.embed(text)
    pool = _threads() - before
    assert pool, "the session started no thread of its own"
    idle = []
    for _ in range(5):
        embedder.embed(text)
        ticks = _cpu_ticks(pool)
        time.sleep(0.2)
        idle.append(_cpu_ticks(pool) - ticks)
    assert sorted(idle)[2] <= 1, f"clock ticks the session's threads used in 0.2 s idle: {idle}"
