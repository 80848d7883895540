"""The Claude Code hook fixtures and output checker follow the hooks reference."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from memlane.daemon.service.hooks import context_output
from memlane.daemon.domain.session_notes import session_save, turns
from tests.claude_hooks import (
    BUILDERS,
    COMMON_FIELDS,
    CONTEXT_CHAR_LIMIT,
    EVENTS,
    INPUTS,
    OMIT,
    SESSION_ID,
    hook_input,
    post_tool_use_input,
    pre_compact_input,
    session_end_input,
    session_start_input,
    stop_input,
    transcript_lines,
    user_prompt_submit_input,
    validate_answer,
    validate_output,
    write_transcript,
)


def body(value: Any) -> bytes:
    return json.dumps(value).encode()


def context(event: str, text: str = "memlane: remembered") -> dict[str, Any]:
    return {"hookSpecificOutput": {"hookEventName": event, "additionalContext": text}}


# --- inputs --------------------------------------------------------------------------------


@pytest.mark.parametrize("event", EVENTS)
def test_each_fixture_has_the_documented_fields(event: str) -> None:
    payload = hook_input(event)
    spec = INPUTS[event]
    assert payload["hook_event_name"] == event
    assert COMMON_FIELDS | spec.required <= set(payload) <= spec.allowed
    assert payload["session_id"] == SESSION_ID
    assert payload["transcript_path"].endswith(f"{SESSION_ID}.jsonl")
    assert json.loads(json.dumps(payload)) == payload


def test_event_fields_match_the_reference_examples() -> None:
    assert session_start_input()["source"] == "startup"
    assert "permission_mode" not in session_start_input()
    assert user_prompt_submit_input()["prompt"]
    assert user_prompt_submit_input()["permission_mode"] == "default"
    compact = pre_compact_input()
    assert compact["trigger"] == "manual" and compact["custom_instructions"] is None
    assert "permission_mode" not in compact
    assert session_end_input()["reason"] == "other"
    stop = stop_input()
    assert stop["stop_hook_active"] is False and isinstance(stop["last_assistant_message"], str)
    assert stop["background_tasks"] == [] and stop["session_crons"] == []
    tool = post_tool_use_input()
    assert {"tool_name", "tool_input", "tool_response", "tool_use_id"} <= set(tool)
    assert tool["tool_use_id"].startswith("toolu_")


def test_overrides_replace_add_and_omit_documented_fields() -> None:
    start = session_start_input(source="compact", model=OMIT, session_title="auth")
    assert start["source"] == "compact" and "model" not in start
    assert start["session_title"] == "auth"
    prompt = user_prompt_submit_input(prompt="#decision use uv", prompt_id="p-1",
                                      effort={"level": "high"})
    assert prompt["prompt"] == "#decision use uv" and prompt["prompt_id"] == "p-1"
    assert pre_compact_input(trigger="auto")["custom_instructions"] is None
    assert post_tool_use_input(duration_ms=OMIT).keys() >= {"tool_use_id"}


def test_fixtures_are_fresh_copies() -> None:
    first = post_tool_use_input()
    first["tool_input"]["content"] = "changed"
    assert post_tool_use_input()["tool_input"]["content"] == "file content"


@pytest.mark.parametrize(("builder", "overrides"), [
    (session_start_input, {"prompt": "x"}),
    (session_end_input, {"sessionId": SESSION_ID}),
    (stop_input, {"tool_name": "Bash"}),
])
def test_undocumented_input_fields_are_refused(builder: Any, overrides: dict[str, Any]) -> None:
    with pytest.raises(TypeError, match="documents no field"):
        builder(**overrides)


@pytest.mark.parametrize(("builder", "overrides"), [
    (session_start_input, {"source": "new"}),
    (session_end_input, {"reason": "bypass_permissions_disabled"}),
    (pre_compact_input, {"trigger": "proactive"}),
    (user_prompt_submit_input, {"permission_mode": "manual"}),
    (stop_input, {"effort": {"level": "extreme"}}),
])
def test_values_outside_documented_enums_are_refused(builder: Any,
                                                     overrides: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        builder(**overrides)


def test_required_fields_cannot_be_omitted() -> None:
    with pytest.raises(TypeError, match="always carries"):
        stop_input(stop_hook_active=OMIT)
    with pytest.raises(TypeError, match="always carries"):
        session_end_input(session_id=OMIT)


def test_builders_cover_memlane_events() -> None:
    assert set(BUILDERS) == set(EVENTS) == set(INPUTS)


# --- outputs accepted ----------------------------------------------------------------------


@pytest.mark.parametrize("event", EVENTS)
def test_empty_body_is_no_output(event: str) -> None:
    assert validate_output(event, b"") is None
    assert validate_output(event, b"{}") == {}


@pytest.mark.parametrize("event", EVENTS)
def test_universal_fields_are_accepted_everywhere(event: str) -> None:
    out = {"continue": True, "stopReason": "done", "suppressOutput": False,
           "systemMessage": "memlane saved the session", "terminalSequence": "\x07"}
    assert validate_output(event, body(out)) == out


@pytest.mark.parametrize("event", ["SessionStart", "UserPromptSubmit", "PostToolUse", "Stop"])
def test_additional_context_is_accepted_where_documented(event: str) -> None:
    assert validate_output(event, body(context(event))) == context(event)


@pytest.mark.parametrize("event", ["SessionStart", "UserPromptSubmit"])
def test_the_daemon_context_output_is_valid(event: str) -> None:
    assert validate_output(event, body(context_output(event, "memlane: a memory")))
    assert validate_output(event, body(context_output(event, ""))) == {}


@pytest.mark.parametrize(("event", "out"), [
    ("SessionStart", {"hookSpecificOutput": {
        "hookEventName": "SessionStart", "additionalContext": "branch: main",
        "sessionTitle": "auth", "initialUserMessage": "go", "watchPaths": ["/repo/.envrc"],
        "reloadSkills": True}}),
    ("UserPromptSubmit", {"decision": "block", "reason": "no secrets", "hookSpecificOutput": {
        "hookEventName": "UserPromptSubmit", "additionalContext": "ctx",
        "sessionTitle": "t", "suppressOriginalPrompt": True}}),
    ("PostToolUse", {"decision": "block", "reason": "generated file", "hookSpecificOutput": {
        "hookEventName": "PostToolUse", "additionalContext": "ctx",
        "classifierContext": "staging db",
        "updatedToolOutput": {"stdout": "[redacted]", "stderr": "", "interrupted": False,
                              "isImage": False}}}),
    ("Stop", {"decision": "block", "reason": "run the tests first"}),
    ("PreCompact", {"decision": "block", "reason": "not now"}),
    ("SessionEnd", {"systemMessage": "discarded by Claude Code, but valid"}),
])
def test_documented_outputs_are_accepted(event: str, out: dict[str, Any]) -> None:
    assert validate_output(event, body(out)) == out


def test_a_2xx_answer_is_checked_and_other_statuses_are_not_output() -> None:
    assert validate_answer("Stop", 204, b"") is None
    assert validate_answer("SessionStart", 200, body(context("SessionStart")))
    with pytest.raises(AssertionError, match="status 500"):
        validate_answer("Stop", 500, b"{}")


# --- outputs rejected ----------------------------------------------------------------------


def rejects(event: str, raw: bytes, match: str) -> None:
    with pytest.raises(AssertionError, match=match):
        validate_output(event, raw)


@pytest.mark.parametrize("event", EVENTS)
def test_unknown_top_level_key_is_rejected(event: str) -> None:
    rejects(event, body({"additionalContext": "belongs in hookSpecificOutput"}),
            "unknown top-level key 'additionalContext'")
    rejects(event, body({"continue": True, "memlane": 1}), "unknown top-level key 'memlane'")


@pytest.mark.parametrize("value", [42, ["a"], {"text": "a"}, None, True])
def test_additional_context_of_wrong_type_is_rejected(value: Any) -> None:
    out = {"hookSpecificOutput": {"hookEventName": "UserPromptSubmit",
                                  "additionalContext": value}}
    rejects("UserPromptSubmit", body(out), r"Expected `str`.*additionalContext")


@pytest.mark.parametrize("event", ["PreCompact", "SessionEnd"])
def test_hook_specific_output_is_rejected_where_undocumented(event: str) -> None:
    rejects(event, body(context(event)), f"{event} does not document hookSpecificOutput")


@pytest.mark.parametrize("event", ["SessionStart", "UserPromptSubmit", "PostToolUse", "Stop"])
def test_wrong_hook_event_name_is_rejected(event: str) -> None:
    other = "PreToolUse"
    rejects(event, body(context(other)), f"hookEventName is '{other}', must be '{event}'")
    rejects(event, body({"hookSpecificOutput": {"additionalContext": "x"}}),
            "hookEventName is required")


@pytest.mark.parametrize(("event", "out", "match"), [
    ("SessionStart", {"decision": "block"}, "does not document a top-level 'decision'"),
    ("SessionEnd", {"reason": "bye"}, "does not document a top-level 'reason'"),
    ("Stop", {"decision": "approve", "reason": "x"}, "Invalid enum value 'approve'"),
    ("Stop", {"decision": "block"}, "reason is required"),
    ("Stop", {"continue": "false"}, r"Expected `bool`.*\$\.continue"),
    ("SessionStart", {"systemMessage": None}, r"Expected `str`.*systemMessage"),
    ("SessionStart", {"hookSpecificOutput": None}, "must be an object"),
    ("PostToolUse", {"hookSpecificOutput": {"hookEventName": "PostToolUse",
                                            "permissionDecision": "deny"}},
     "unknown field `permissionDecision`"),
    ("UserPromptSubmit", {"hookSpecificOutput": {"hookEventName": "UserPromptSubmit",
                                                 "updatedPrompt": "x"}},
     "unknown field `updatedPrompt`"),
    ("SessionStart", {"hookSpecificOutput": {"hookEventName": "SessionStart",
                                             "watchPaths": ["relative/.envrc"]}},
     "absolute"),
])
def test_invalid_outputs_are_rejected(event: str, out: dict[str, Any], match: str) -> None:
    rejects(event, body(out), match)


@pytest.mark.parametrize("raw", [b"memlane: plain text", b"[]", b'"text"', b" ", b"{", b"null"])
def test_bodies_that_are_not_a_json_object_are_rejected(raw: bytes) -> None:
    with pytest.raises(AssertionError):
        validate_output("UserPromptSubmit", raw)


def test_context_over_the_documented_cap_is_rejected() -> None:
    at_cap = context("SessionStart", "x" * CONTEXT_CHAR_LIMIT)
    assert validate_output("SessionStart", body(at_cap))
    over = context("SessionStart", "x" * (CONTEXT_CHAR_LIMIT + 1))
    rejects("SessionStart", body(over), "10001 characters")
    assert validate_output("SessionStart", body(over), char_limit=None)
    astral = context("SessionStart", "\U0001f600" * (CONTEXT_CHAR_LIMIT // 2 + 1))
    rejects("SessionStart", body(astral), "characters")  # UTF-16 length, as in JavaScript


def test_unknown_event_is_rejected() -> None:
    rejects("PreToolUse", b"", "not an event memlane handles")


# --- transcript ----------------------------------------------------------------------------


def test_transcript_is_json_lines_in_claude_code_shape(tmp_path: Path) -> None:
    path = write_transcript(tmp_path / "projects" / "p" / f"{SESSION_ID}.jsonl", [
        ("user", "use uv for this repo"),
        ("assistant", "Noted."),
        ("assistant", [{"type": "tool_use", "id": "toolu_1", "name": "Bash",
                        "input": {"command": "uv sync"}}]),
        ("user", [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "ok"}]),
        {"role": "user", "content": "<command-name>/clear</command-name>", "isMeta": True},
        {"type": "summary", "summary": "uv setup", "leafUuid": "x"},
        ("assistant", [{"type": "text", "text": "Done: uv sync ran."}]),
    ])
    raw = path.read_text(encoding="utf-8").splitlines()
    lines = [json.loads(line) for line in raw]
    assert len(lines) == 7
    messages = [line for line in lines if line["type"] in ("user", "assistant")]
    for line in messages:
        assert line["message"]["role"] == line["type"]
        assert line["sessionId"] == SESSION_ID
        assert line["uuid"] and line["timestamp"].endswith("Z")
    assert messages[0]["parentUuid"] is None
    assert [m["parentUuid"] for m in messages[1:]] == [m["uuid"] for m in messages[:-1]]
    assert messages[0]["message"]["content"] == "use uv for this repo"
    assert messages[1]["message"]["content"] == [{"type": "text", "text": "Noted."}]
    assert turns(raw) == [("user", "use uv for this repo"), ("assistant", "Noted."),
                          ("assistant", "Done: uv sync ran.")]
    assert "use uv" in (session_save(raw) or "")


def test_transcript_lines_are_deterministic() -> None:
    assert transcript_lines([("user", "a")]) == transcript_lines([("user", "a")])
    with pytest.raises(ValueError):
        transcript_lines([("system", "a")])  # type: ignore[list-item]
