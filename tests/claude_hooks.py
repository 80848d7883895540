"""Claude Code hook fixtures and a strict checker of what memlane's daemon answers to a hook.

Source: the official Claude Code hooks reference, https://code.claude.com/docs/en/hooks
(formerly https://docs.anthropic.com/en/docs/claude-code/hooks), read in the revision that
documents Claude Code up to v2.1.274 (the ``mcp_server`` input field is the newest it names).
Section names below are that page's headings.

What this module gives the tests:

* ``<event>_input(**overrides)``: the JSON Claude Code sends for the six events memlane
  handles, with exactly the fields the reference's JSON example for that event shows
  ("Common input fields" plus the event's "<Event> input" section). Overrides may replace any
  field or add one the reference documents as optional for that event; ``OMIT`` removes a
  field. An undocumented key or a value outside a documented enum raises, so a typo in a test
  cannot pass as Claude Code's format. A test that wants an undocumented field on purpose
  (forward compatibility) adds it to the returned dict itself.
* ``write_transcript(path, turns)``: a session transcript (JSON lines) as Claude Code writes it.
* ``validate_output(event, body)``: the daemon's HTTP answer checked against "JSON output",
  "HTTP response handling" and the event's "decision control" section.

Facts from the reference that shape memlane (kept here so tests can cite them):

* ``SessionStart`` supports only ``command`` and ``mcp_tool`` handlers, not ``http``
  ("Prompt-based hooks": "SessionStart and Setup support command and mcp_tool hooks ... They
  don't support http, prompt, or agent hooks"). memlane's SessionStart therefore has to be a
  command hook that relays the daemon's answer on stdout; the answer's format is the same.
* An HTTP hook answered ``2xx`` with an empty body is "success, equivalent to exit code 0 with
  no output"; a 2xx JSON object body is parsed with the same schema as command-hook stdout and
  "a body that fails schema validation is a non-blocking error"; a 2xx body that is not a JSON
  object, a non-2xx status and a connection failure are non-blocking errors; on timeout the
  hook is cancelled and its output discarded.
* ``additionalContext``, ``systemMessage`` and ``initialUserMessage`` strings are capped at
  10,000 characters each; over the cap Claude Code saves the text to a file and passes Claude
  the path with a 2,000-character preview, and does not ask Claude to read the file.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

REFERENCE_URL = "https://code.claude.com/docs/en/hooks"
EVENTS = ("SessionStart", "UserPromptSubmit", "PreCompact", "SessionEnd", "Stop", "PostToolUse")
# Events on which Claude Code refuses ``type: "http"`` handlers (see the module docstring).
HTTP_HANDLER_UNSUPPORTED = frozenset({"SessionStart"})
# "JSON output": additionalContext, systemMessage and initialUserMessage are capped at 10,000
# characters each; over the cap Claude sees only a file path and a 2,000-character preview.
CONTEXT_CHAR_LIMIT = 10_000

SESSION_ID = "5f0c3a52-7c1e-4d0a-9a8e-2b6f1c9d4e07"
CWD = "/home/user/my-project"
TRANSCRIPT_PATH = f"/home/user/.claude/projects/-home-user-my-project/{SESSION_ID}.jsonl"
TOOL_USE_ID = "toolu_01ABC123DEF456GHI789JKL0"
MODEL = "claude-opus-5"


class _Omit:
    def __repr__(self) -> str:
        return "OMIT"


OMIT: Any = _Omit()
"""Pass as an override value to leave that field out of the input."""

# --- hook input ----------------------------------------------------------------------------

# "Common input fields": always sent.
COMMON_FIELDS = frozenset({"session_id", "transcript_path", "cwd", "hook_event_name"})
# "Common input fields": sent only sometimes. prompt_id is absent until the first user input
# (v2.1.196+); scratchpad_dir is absent without a scratchpad (v2.1.257+); permission_mode is
# "not all events receive this field. Check the JSON example in each hook event section";
# effort ({"level": ...}) comes with events fired in a tool-use context when the model supports
# it; agent_id / agent_type come with --agent or inside a subagent.
COMMON_OPTIONAL_FIELDS = frozenset({"prompt_id", "scratchpad_dir", "permission_mode", "effort",
                                    "agent_id", "agent_type"})

PERMISSION_MODES = frozenset({"default", "plan", "acceptEdits", "auto", "dontAsk",
                              "bypassPermissions"})
SESSION_START_SOURCES = frozenset({"startup", "resume", "clear", "compact", "fork"})
SESSION_END_REASONS = frozenset({"clear", "resume", "logout", "prompt_input_exit", "other"})
COMPACT_TRIGGERS = frozenset({"manual", "auto"})
EFFORT_LEVELS = frozenset({"low", "medium", "high", "xhigh", "max"})


class InputSpec(msgspec.Struct, frozen=True):
    """One event's input: the reference's JSON example, and the optional fields it documents."""

    example: dict[str, Any]
    required: frozenset[str]
    optional: frozenset[str]

    @property
    def allowed(self) -> frozenset[str]:
        return COMMON_FIELDS | COMMON_OPTIONAL_FIELDS | self.required | self.optional


def _common(event: str, **fields: Any) -> dict[str, Any]:
    return {"session_id": SESSION_ID, "transcript_path": TRANSCRIPT_PATH, "cwd": CWD,
            "hook_event_name": event, **fields}


INPUTS: dict[str, InputSpec] = {
    # "SessionStart input": source, and optionally model (omitted e.g. after /clear),
    # agent_type (claude --agent) and session_title (custom title). On source resume/fork with
    # an earlier response (v2.1.251+): the four resume-cost fields. No permission_mode in the
    # example.
    "SessionStart": InputSpec(
        example=_common("SessionStart", source="startup", model=MODEL),
        required=frozenset({"source"}),
        optional=frozenset({"model", "agent_type", "session_title",
                            "seconds_since_last_response", "context_tokens",
                            "prompt_cache_likely_expired", "estimated_cache_write_usd"})),
    # "UserPromptSubmit input": prompt (pasted text expanded in place); session_title when
    # the session has a custom title.
    "UserPromptSubmit": InputSpec(
        example=_common("UserPromptSubmit", permission_mode="default",
                        prompt="Write a function to calculate the factorial of a number"),
        required=frozenset({"prompt"}),
        optional=frozenset({"session_title"})),
    # "PreCompact input": trigger, and custom_instructions, which is what the user passed to
    # /compact, or null for a bare /compact and always for auto.
    "PreCompact": InputSpec(
        example=_common("PreCompact", trigger="manual", custom_instructions=None),
        required=frozenset({"trigger", "custom_instructions"}),
        optional=frozenset()),
    # "SessionEnd input": reason.
    "SessionEnd": InputSpec(
        example=_common("SessionEnd", reason="other"),
        required=frozenset({"reason"}),
        optional=frozenset()),
    # "Stop input": stop_hook_active and last_assistant_message; background_tasks and
    # session_crons "are present when the task registry is reachable".
    "Stop": InputSpec(
        example=_common("Stop", permission_mode="default", stop_hook_active=False,
                        last_assistant_message="I've completed the refactoring. Here's a "
                                               "summary...",
                        background_tasks=[], session_crons=[]),
        required=frozenset({"stop_hook_active", "last_assistant_message"}),
        optional=frozenset({"background_tasks", "session_crons"})),
    # "PostToolUse input": tool_name, tool_input, tool_response, tool_use_id; optional
    # duration_ms; mcp_server ({name, source}) for MCP tools (v2.1.274+).
    "PostToolUse": InputSpec(
        example=_common("PostToolUse", permission_mode="default", tool_name="Write",
                        tool_input={"file_path": "/home/user/my-project/notes.txt",
                                    "content": "file content"},
                        tool_response={"filePath": "/home/user/my-project/notes.txt",
                                       "type": "create"},
                        tool_use_id=TOOL_USE_ID, duration_ms=12),
        required=frozenset({"tool_name", "tool_input", "tool_response", "tool_use_id"}),
        optional=frozenset({"duration_ms", "mcp_server"})),
}

_ENUMS: dict[str, frozenset[str]] = {"permission_mode": PERMISSION_MODES,
                                     "trigger": COMPACT_TRIGGERS}
_EVENT_ENUMS: dict[str, dict[str, frozenset[str]]] = {
    "SessionStart": {"source": SESSION_START_SOURCES},
    "SessionEnd": {"reason": SESSION_END_REASONS},
}


def _build(event: str, overrides: Mapping[str, Any]) -> dict[str, Any]:
    spec = INPUTS[event]
    unknown = sorted(set(overrides) - spec.allowed)
    if unknown:
        raise TypeError(f"{event} input documents no field {unknown}; documented: "
                        f"{sorted(spec.allowed)} ({REFERENCE_URL})")
    payload = copy.deepcopy(spec.example)
    for key, value in overrides.items():
        if value is OMIT:
            payload.pop(key, None)
        else:
            payload[key] = copy.deepcopy(value)
    missing = sorted((COMMON_FIELDS | spec.required) - set(payload))
    if missing:
        raise TypeError(f"{event} input always carries {missing}")
    enums = {**_ENUMS, **_EVENT_ENUMS.get(event, {})}
    for key, values in enums.items():
        if key in payload and payload[key] not in values:
            raise ValueError(f"{event} {key}={payload[key]!r} is not one of {sorted(values)}")
    effort = payload.get("effort")
    if effort is not None and (not isinstance(effort, dict) or set(effort) != {"level"}
                               or effort["level"] not in EFFORT_LEVELS):
        raise ValueError(f"effort must be {{'level': one of {sorted(EFFORT_LEVELS)}}}")
    if payload["hook_event_name"] != event:
        raise ValueError(f"hook_event_name must be {event!r}")
    return payload


def session_start_input(**overrides: Any) -> dict[str, Any]:
    return _build("SessionStart", overrides)


def user_prompt_submit_input(**overrides: Any) -> dict[str, Any]:
    return _build("UserPromptSubmit", overrides)


def pre_compact_input(**overrides: Any) -> dict[str, Any]:
    return _build("PreCompact", overrides)


def session_end_input(**overrides: Any) -> dict[str, Any]:
    return _build("SessionEnd", overrides)


def stop_input(**overrides: Any) -> dict[str, Any]:
    return _build("Stop", overrides)


def post_tool_use_input(**overrides: Any) -> dict[str, Any]:
    return _build("PostToolUse", overrides)


BUILDERS = {"SessionStart": session_start_input, "UserPromptSubmit": user_prompt_submit_input,
            "PreCompact": pre_compact_input, "SessionEnd": session_end_input,
            "Stop": stop_input, "PostToolUse": post_tool_use_input}


def hook_input(event: str, **overrides: Any) -> dict[str, Any]:
    return BUILDERS[event](**overrides)


# --- transcript ----------------------------------------------------------------------------
#
# Documented: the hooks reference gives transcript_path as the path of the conversation, a
# ``.jsonl`` file under ~/.claude/projects/<project>/, written asynchronously, so it "may not
# yet include the current turn's most recent messages when a hook fires". The Agent SDK
# sessions page (docs.claude.com/docs/claude-code/sdk/sdk-sessions) shows sample lines: one
# JSON object per line with ``type`` "user"/"assistant", ``uuid``, ``parentUuid``,
# ``timestamp``, and ``message.content`` as a string or a list of ``{"type": "text", ...}``
# blocks.
#
# Inferred from transcripts as Claude Code writes them (not documented): every line also
# carries ``sessionId`` (camelCase, unlike the hook input's ``session_id``), ``cwd``,
# ``version``, ``gitBranch``, ``isSidechain`` and ``userType``; ``message.role`` repeats the
# line type; an assistant ``message`` is the whole API message (``id``, ``model``,
# ``stop_reason``, ``usage``) with a ``requestId`` beside it; tool calls are ``tool_use``
# blocks in assistant lines and their results ``tool_result`` blocks in user lines; lines of
# other types (``summary``, ``system``, ``progress``, ...) and ``isMeta`` user lines occur too.

Content = str | list[dict[str, Any]]
Turn = tuple[Literal["user", "assistant"], Content] | Mapping[str, Any]
VERSION = "2.1.274"
_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def _line_uuid(session_id: str, index: int) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"memlane-test:{session_id}:{index}"))


def transcript_lines(turns: Iterable[Turn], *, session_id: str = SESSION_ID, cwd: str = CWD,
                     model: str = MODEL) -> list[dict[str, Any]]:
    """The transcript's lines as dicts (see ``write_transcript``)."""
    lines: list[dict[str, Any]] = []
    parent: str | None = None
    for index, turn in enumerate(turns):
        extra: dict[str, Any] = {}
        if isinstance(turn, Mapping):
            if "role" not in turn:  # a raw line (summary, system, ...) written as given
                lines.append(dict(turn))
                continue
            extra = {k: v for k, v in turn.items() if k not in ("role", "content")}
            role, content = turn["role"], turn["content"]
        else:
            role, content = turn
        if role not in ("user", "assistant"):
            raise ValueError(f"a turn's role is 'user' or 'assistant', not {role!r}")
        if role == "assistant" and isinstance(content, str):
            content = [{"type": "text", "text": content}]
        line_uuid = _line_uuid(session_id, index)
        line: dict[str, Any] = {
            "parentUuid": parent, "isSidechain": False, "userType": "external", "cwd": cwd,
            "sessionId": session_id, "version": VERSION, "gitBranch": "main", "type": role,
            "uuid": line_uuid,
            "timestamp": (_EPOCH + timedelta(seconds=index)).isoformat(
                timespec="milliseconds").replace("+00:00", "Z")}
        if role == "user":
            line["message"] = {"role": "user", "content": content}
        else:
            line["message"] = {"id": f"msg_{line_uuid.replace('-', '')[:24]}",
                               "type": "message", "role": "assistant", "model": model,
                               "content": content, "stop_reason": "end_turn",
                               "stop_sequence": None,
                               "usage": {"input_tokens": 10, "output_tokens": 20}}
            line["requestId"] = f"req_{line_uuid.replace('-', '')[:24]}"
        line.update(extra)
        lines.append(line)
        parent = line_uuid
    return lines


def write_transcript(path: Path, turns: Iterable[Turn], **options: Any) -> Path:
    """Write a JSONL transcript and return its path.

    Each turn is ``(role, content)`` with role "user" or "assistant" and content a string or a
    list of content blocks (an assistant string becomes one text block, as Claude Code writes
    it); or a mapping with ``role`` and ``content`` plus extra line fields (``isMeta=True``);
    or a mapping without ``role``, written as a raw line (``{"type": "summary", ...}``).
    Options: ``session_id``, ``cwd``, ``model``.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = transcript_lines(turns, **options)
    path.write_text("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines),
                    encoding="utf-8")
    return path


# --- hook output ---------------------------------------------------------------------------
#
# "JSON output": universal fields every event accepts (some events discard them); top-level
# decision/reason only for events whose "decision control" documents them; hookSpecificOutput
# only for events that document event-specific fields, with hookEventName set to the event.


class _Universal(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    continue_: bool | UnsetType = msgspec.field(default=UNSET, name="continue")
    stopReason: str | UnsetType = UNSET
    suppressOutput: bool | UnsetType = UNSET  # accepted, "has no effect"
    systemMessage: str | UnsetType = UNSET
    terminalSequence: str | UnsetType = UNSET


class _Decision(_Universal, kw_only=True):
    # "The only value for decision is "block". To allow the action to proceed, omit it."
    decision: Literal["block"] | UnsetType = UNSET
    reason: str | UnsetType = UNSET


class _Specific(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    hookEventName: str


class SessionStartSpecific(_Specific, kw_only=True):
    """ "SessionStart decision control"."""

    additionalContext: str | UnsetType = UNSET
    initialUserMessage: str | UnsetType = UNSET
    sessionTitle: str | UnsetType = UNSET
    watchPaths: list[str] | UnsetType = UNSET
    reloadSkills: bool | UnsetType = UNSET


class UserPromptSubmitSpecific(_Specific, kw_only=True):
    """ "UserPromptSubmit decision control"."""

    additionalContext: str | UnsetType = UNSET
    sessionTitle: str | UnsetType = UNSET
    suppressOriginalPrompt: bool | UnsetType = UNSET


class PostToolUseSpecific(_Specific, kw_only=True):
    """ "PostToolUse decision control"; the replacement outputs must match the tool's shape."""

    additionalContext: str | UnsetType = UNSET
    classifierContext: str | UnsetType = UNSET
    updatedToolOutput: Any = UNSET
    updatedMCPToolOutput: Any = UNSET


class StopSpecific(_Specific, kw_only=True):
    """ "Stop decision control": non-error feedback that continues the conversation."""

    additionalContext: str | UnsetType = UNSET


class SessionStartOutput(_Universal, kw_only=True):
    hookSpecificOutput: SessionStartSpecific | UnsetType = UNSET


class UserPromptSubmitOutput(_Decision, kw_only=True):
    hookSpecificOutput: UserPromptSubmitSpecific | UnsetType = UNSET


class PostToolUseOutput(_Decision, kw_only=True):
    hookSpecificOutput: PostToolUseSpecific | UnsetType = UNSET


class StopOutput(_Decision, kw_only=True):
    hookSpecificOutput: StopSpecific | UnsetType = UNSET


class PreCompactOutput(_Decision, kw_only=True):
    """ "PreCompact": block with exit 2 or ``"decision": "block"``; no event-specific fields."""


class SessionEndOutput(_Universal, kw_only=True):
    """ "SessionEnd": no decision control; Claude Code discards the JSON output fields."""


OUTPUTS: dict[str, type[_Universal]] = {
    "SessionStart": SessionStartOutput, "UserPromptSubmit": UserPromptSubmitOutput,
    "PostToolUse": PostToolUseOutput, "Stop": StopOutput, "PreCompact": PreCompactOutput,
    "SessionEnd": SessionEndOutput}
UNIVERSAL_OUTPUT_FIELDS = frozenset({"continue", "stopReason", "suppressOutput",
                                     "systemMessage", "terminalSequence"})
DECISION_EVENTS = frozenset({"UserPromptSubmit", "PostToolUse", "Stop", "PreCompact"})
SPECIFIC_EVENTS = frozenset({"SessionStart", "UserPromptSubmit", "PostToolUse", "Stop"})


def _utf16_len(text: str) -> int:
    # Claude Code is JavaScript: its "characters" are UTF-16 code units (String.length).
    return len(text.encode("utf-16-le")) // 2


def validate_output(event: str, body: bytes, *,
                    char_limit: int | None = CONTEXT_CHAR_LIMIT) -> dict[str, Any] | None:
    """Check the body of memlane's 2xx answer to ``event``; None for an empty body (no output).

    Raises AssertionError naming the problem. ``char_limit`` (default 10,000, the documented
    cap) also rejects context strings Claude would only see truncated; None turns that off.
    """

    def fail(problem: str) -> AssertionError:
        return AssertionError(f"{event} hook output: {problem} ({REFERENCE_URL})")

    if event not in OUTPUTS:
        raise fail(f"not an event memlane handles ({', '.join(EVENTS)})")
    if body == b"":
        return None
    try:
        data = msgspec.json.decode(body)
    except msgspec.DecodeError as error:
        raise fail(f"body is neither empty nor JSON ({error}); Claude Code treats that as a "
                   f"non-blocking error: {body[:80]!r}") from None
    if not isinstance(data, dict):
        raise fail(f"body must be a JSON object, got {type(data).__name__}")

    allowed = set(UNIVERSAL_OUTPUT_FIELDS)
    if event in DECISION_EVENTS:
        allowed |= {"decision", "reason"}
    if event in SPECIFIC_EVENTS:
        allowed.add("hookSpecificOutput")
    for key in data:
        if key in allowed:
            continue
        if key in ("decision", "reason"):
            raise fail(f"{event} does not document a top-level {key!r}")
        if key == "hookSpecificOutput":
            raise fail(f"{event} does not document hookSpecificOutput")
        raise fail(f"unknown top-level key {key!r}; documented: {sorted(allowed)}")

    specific = data.get("hookSpecificOutput")
    if specific is not None or "hookSpecificOutput" in data:
        if not isinstance(specific, dict):
            raise fail("hookSpecificOutput must be an object")
        if "hookEventName" not in specific:
            raise fail("hookSpecificOutput.hookEventName is required")
        if specific["hookEventName"] != event:
            raise fail(f"hookSpecificOutput.hookEventName is {specific['hookEventName']!r}, "
                       f"must be {event!r}")

    try:
        msgspec.convert(data, type=OUTPUTS[event], strict=True)
    except msgspec.ValidationError as error:
        raise fail(str(error)) from None

    if event == "Stop" and data.get("decision") == "block" and "reason" not in data:
        raise fail("reason is required when decision is 'block'")
    for path in (specific or {}).get("watchPaths", []):
        if not (PurePosixPath(path).is_absolute() or PureWindowsPath(path).is_absolute()):
            raise fail(f"watchPaths entries must be absolute paths, got {path!r}")
    if char_limit is not None:
        strings = {"systemMessage": data.get("systemMessage")}
        for key in ("additionalContext", "initialUserMessage"):
            strings[f"hookSpecificOutput.{key}"] = (specific or {}).get(key)
        for key, text in strings.items():
            if isinstance(text, str) and _utf16_len(text) > char_limit:
                raise fail(f"{key} is {_utf16_len(text)} characters; over {char_limit} Claude "
                           "sees only a file path and a 2,000-character preview")
    return data


def validate_answer(event: str, status: int, body: bytes, **options: Any) -> dict[str, Any] | None:
    """``validate_output`` for a whole HTTP answer: only a 2xx status counts as output."""
    if not 200 <= status < 300:
        raise AssertionError(f"{event} hook answer: status {status} is a non-blocking error "
                             f"in Claude Code, not output ({REFERENCE_URL})")
    return validate_output(event, body, **options)
