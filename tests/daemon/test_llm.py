"""The Gemini adapter, through the real google-genai client against a local fake Gemini."""

from __future__ import annotations

import json
import socket
import stat
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from memlane.daemon.adapters.gemini import (
    PROMPT_VERSION,
    DailyBudget,
    GeminiClient,
    LlmError,
    SourceMemory,
    api_key_from_env,
)
from tests.gemini_server import Blocked, Error, FakeGemini, Stall, Text, json_text

pytestmark = pytest.mark.anyio
KEY = "AIzaSy-memlane-test-key-0123456789"
SOURCES = (
    SourceMemory(id=1, text="Run tests with make test.", kind="note", tags=("testing",)),
    SourceMemory(id=2, text="make test runs pytest -q.", kind="note", tags=("make", "testing")),
)
MERGED = {"text": "Run tests with make test (pytest -q).", "kind": "note",
          "tags": ["testing"], "title": "Running tests"}


# One event loop, fake server and client for the module: building a client costs ~60 ms.
@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def server() -> Iterator[FakeGemini]:
    with FakeGemini(api_key=KEY) as fake:
        yield fake


@pytest.fixture
def gemini(server: FakeGemini) -> FakeGemini:
    server.reset()
    return server


@pytest.fixture(scope="module")
async def llm(server: FakeGemini) -> AsyncIterator[GeminiClient]:
    async with GeminiClient(KEY, base_url=server.base_url, timeout_s=2.0) as client:
        yield client


def assert_key_hidden(error: BaseException) -> None:
    """Neither the error nor anything chained to it shows the API key."""
    current: BaseException | None = error
    while current is not None:
        assert KEY not in str(current) and KEY not in repr(current)
        current = current.__cause__ or current.__context__


async def test_consolidation_is_decoded_from_a_json_reply(
        gemini: FakeGemini, llm: GeminiClient) -> None:
    """A valid reply becomes a Consolidation; the request carries the key and asks for JSON."""
    gemini.queue(json_text(MERGED))
    merged = await llm.consolidate(SOURCES)
    assert (merged.text, merged.kind, merged.tags, merged.title) == (
        MERGED["text"], "note", ["testing"], "Running tests")
    [request] = gemini.requests
    assert (request.version, request.model, request.api_key) == ("v1beta", "gemini-2.5-flash", KEY)
    assert request.generation_config["responseMimeType"] == "application/json"
    assert {"text", "kind", "tags", "title"} <= request.schema_fields
    assert "Run tests with make test." in request.prompt and "pytest -q" in request.prompt
    assert (llm.model, llm.prompt_version) == ("gemini-2.5-flash", PROMPT_VERSION)


@pytest.mark.parametrize(("kinds", "expected"), [
    (("note", "decision"), "decision"),
    (("user-note", "note"), "user-note"),
    (("user-note", "decision"), "decision"),
])
async def test_protected_kind_and_source_tags_override_the_model(
        gemini: FakeGemini, llm: GeminiClient, kinds: tuple[str, str], expected: str) -> None:
    """A decision or user-note source keeps its kind and every source tag, whatever the reply."""
    sources = [SourceMemory(id=i, text=f"fact {i}", kind=kind, tags=(f"t{i}", "shared"))
               for i, kind in enumerate(kinds)]
    gemini.queue(json_text({**MERGED, "kind": "insight", "tags": ["invented"]}))
    merged = await llm.consolidate(sources)
    assert (merged.kind, merged.tags) == (expected, ["t0", "shared", "t1"])


async def test_the_model_cannot_invent_a_protected_kind(
        gemini: FakeGemini, llm: GeminiClient) -> None:
    """Without a protected source, a reply claiming decision or user-note becomes an insight."""
    gemini.queue(json_text({**MERGED, "kind": "user-note"}))
    assert (await llm.consolidate(SOURCES)).kind == "insight"


@pytest.mark.parametrize("bad", [
    Text('{"text": "unterminated'),
    json_text({**MERGED, "kind": "banana"}),
    json_text({**MERGED, "text": "   "}),
    Text(""),
], ids=["malformed", "bad-enum", "blank-text", "empty"])
async def test_one_bad_reply_is_repaired_by_one_retry(
        gemini: FakeGemini, llm: GeminiClient, bad: Text) -> None:
    """The retry replays the bad reply and quotes the error; its valid answer is used."""
    gemini.queue(bad, json_text(MERGED))
    assert (await llm.consolidate(SOURCES)).title == "Running tests"
    first, repair = gemini.requests
    assert [turn["role"] for turn in repair.contents] == ["user", "model", "user"]
    assert repair.contents[0] == first.contents[0]
    assert "not valid" in repair.prompt and len(repair.prompt) > 60


async def test_two_bad_replies_fail_with_llm_bad_reply(
        gemini: FakeGemini, llm: GeminiClient) -> None:
    """After the one repair fails too, the call fails; no third request is made."""
    gemini.queue(Text("not json"), json_text({"verdict": "maybe", "reason": "?"}))
    with pytest.raises(LlmError) as caught:
        await llm.check_conflict("Use tabs.", "Use spaces.")
    assert caught.value.code == "llm_bad_reply" and "verdict" in caught.value.message
    assert len(gemini.requests) == 2


@pytest.mark.parametrize(("status", "code"), [
    (400, "llm_refused"), (403, "llm_refused"), (404, "llm_refused"),
    (429, "llm_quota"), (500, "llm_unavailable"), (503, "llm_unavailable"),
])
async def test_http_errors_get_stable_codes_without_sdk_retries(
        gemini: FakeGemini, llm: GeminiClient, status: int, code: str) -> None:
    """Each HTTP error maps to one code after exactly one request (the SDK does not retry)."""
    gemini.queue(Error(status, f"echoing {KEY} back"))
    with pytest.raises(LlmError) as caught:
        await llm.judge_substance("Deploys need the VPN.")
    assert caught.value.code == code and str(status) in caught.value.message
    assert "[api key]" in caught.value.message
    assert KEY not in str(caught.value) and KEY not in repr(caught.value)
    assert len(gemini.requests) == 1


async def test_a_wrong_key_is_refused_and_not_shown(gemini: FakeGemini) -> None:
    """Gemini's 400 for a bad key is llm_refused; the key sent appears in no error."""
    async with GeminiClient(KEY[::-1], base_url=gemini.base_url, timeout_s=2.0) as client:
        with pytest.raises(LlmError) as caught:
            await client.judge_substance("x")
    assert caught.value.code == "llm_refused" and "API key not valid" in caught.value.message
    assert KEY[::-1] not in str(caught.value)
    assert gemini.requests[0].api_key == KEY[::-1]


async def test_a_stalled_answer_times_out_fast(gemini: FakeGemini) -> None:
    """A server slower than timeout_s gives llm_timeout right after the deadline."""
    gemini.queue(Stall())
    started = time.monotonic()
    async with GeminiClient(KEY, base_url=gemini.base_url, timeout_s=0.2) as client:
        with pytest.raises(LlmError) as caught:
            await client.judge_substance("x")
    assert caught.value.code == "llm_timeout"
    assert time.monotonic() - started < 1.0
    assert_key_hidden(caught.value)


async def test_an_unreachable_endpoint_is_llm_unreachable() -> None:
    """A refused connection becomes llm_unreachable at once (no SDK retry with sleeps)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with GeminiClient(KEY, base_url=f"http://127.0.0.1:{port}", timeout_s=2.0) as client:
        with pytest.raises(LlmError) as caught:
            await client.judge_substance("x")
    assert caught.value.code == "llm_unreachable"
    assert_key_hidden(caught.value)


async def test_a_blocked_prompt_is_refused_without_repair(
        gemini: FakeGemini, llm: GeminiClient) -> None:
    """A reply without candidates because of a block reason is llm_refused, not retried."""
    gemini.queue(Blocked("SAFETY"))
    with pytest.raises(LlmError) as caught:
        await llm.judge_substance("x")
    assert caught.value.code == "llm_refused" and "SAFETY" in caught.value.message
    assert len(gemini.requests) == 1


async def test_errors_and_client_never_show_the_key(
        gemini: FakeGemini, llm: GeminiClient) -> None:
    """Bad-reply and HTTP errors, their causes and the client's repr keep the key out."""
    gemini.queue(Text("x"), Text("y"), Error(429), Error(500))
    for _ in range(3):
        with pytest.raises(LlmError) as caught:
            await llm.judge_substance("x")
        assert_key_hidden(caught.value)
    assert KEY not in repr(llm)


async def test_verdicts_parse(gemini: FakeGemini, llm: GeminiClient) -> None:
    """Conflict and substance verdicts decode from their JSON replies."""
    gemini.queue(json_text({"verdict": "conflicts", "reason": "tabs vs spaces"}),
                 json_text({"keep": False, "reason": "a transient status"}))
    conflict = await llm.check_conflict("Indent with tabs.", "Indent with four spaces.")
    substance = await llm.judge_substance("Build is running.")
    assert (conflict.verdict, conflict.reason) == ("conflicts", "tabs vs spaces")
    assert (substance.keep, substance.reason) == (False, "a transient status")
    assert "Indent with tabs." in gemini.requests[0].prompt
    assert gemini.requests[0].schema_fields == {"verdict", "reason"}


async def test_the_default_fake_reply_serves_every_operation(
        gemini: FakeGemini, llm: GeminiClient) -> None:
    """Without a script the fake answers plausibly: sources joined, unrelated, kept."""
    merged = await llm.consolidate(SOURCES)
    assert merged.text == "Run tests with make test. make test runs pytest -q."
    assert merged.tags == ["testing", "make"]
    assert (await llm.check_conflict("a", "b")).verdict == "unrelated"
    assert (await llm.judge_substance("a")).keep is True


async def test_the_budget_counts_every_request(gemini: FakeGemini, tmp_path: Path) -> None:
    """A repair needs budget too; when it is spent the call fails with llm_budget."""
    budget = DailyBudget(tmp_path / "budget.json", limit=1)
    gemini.queue(Text("not json"))
    async with GeminiClient(KEY, base_url=gemini.base_url, budget=budget) as client:
        with pytest.raises(LlmError) as caught:
            await client.judge_substance("x")
    assert caught.value.code == "llm_budget"
    assert len(gemini.requests) == 1 and budget.used_today == 1


class Clock:
    """A settable UTC clock."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def test_budget_refuses_at_the_limit_and_persists(tmp_path: Path) -> None:
    """Spends stop at the limit, and a new instance (a restart) sees the same count."""
    clock = Clock(datetime(2025, 3, 1, 12, tzinfo=UTC))
    budget = DailyBudget(tmp_path / "state" / "budget.json", limit=2, clock=clock)
    assert [budget.try_spend() for _ in range(3)] == [True, True, False]
    again = DailyBudget(tmp_path / "state" / "budget.json", limit=2, clock=clock)
    assert (again.used_today, again.limit, again.try_spend()) == (2, 2, False)


def test_budget_resets_on_a_new_utc_day(tmp_path: Path) -> None:
    """The count belongs to the UTC day: 23:30 at UTC-5 is already the next day."""
    clock = Clock(datetime(2025, 3, 1, 23, 0, tzinfo=UTC))
    budget = DailyBudget(tmp_path / "budget.json", limit=1, clock=clock)
    assert budget.try_spend() and not budget.try_spend()
    clock.now = datetime(2025, 3, 1, 23, 30, tzinfo=timezone(timedelta(hours=-5)))
    assert budget.used_today == 0 and budget.try_spend()
    assert DailyBudget(tmp_path / "budget.json", limit=1, clock=clock).used_today == 1


def test_budget_file_is_private_json(tmp_path: Path) -> None:
    """The file is 0600 JSON, replaced whole (no temporary file left behind)."""
    path = tmp_path / "budget.json"
    DailyBudget(path, limit=5, clock=Clock(datetime(2025, 3, 1, tzinfo=UTC))).try_spend()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_bytes()) == {"day": "2025-03-01", "used": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["budget.json"]


def test_a_damaged_budget_file_fails_closed(tmp_path: Path) -> None:
    """An unreadable count spends nothing more today rather than starting again at zero."""
    path = tmp_path / "budget.json"
    path.write_text("{half")
    budget = DailyBudget(path, limit=3)
    assert (budget.used_today, budget.try_spend()) == (3, False)


@pytest.mark.parametrize(("env", "expected"), [
    ({"GEMINI_API_KEY": "g", "GOOGLE_API_KEY": "o"}, "g"),
    ({"GEMINI_API_KEY": "  ", "GOOGLE_API_KEY": "o"}, "o"),
    ({}, None),
])
def test_api_key_comes_from_the_environment(env: dict[str, str], expected: str | None) -> None:
    """GEMINI_API_KEY wins over GOOGLE_API_KEY; blank counts as unset."""
    assert api_key_from_env(env) == expected


def test_importing_the_adapter_does_not_import_the_sdk() -> None:
    """google.genai loads only when a client is built, so importing memlane stays fast."""
    code = ("import sys, memlane.daemon.adapters.gemini; "
            "sys.exit('google.genai' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
