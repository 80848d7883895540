"""The memory tools as an MCP server on stdio: each tool is one request to the daemon.

Only ``memlane mcp`` imports this module, so the SDK (and anyio under it) stays off the
import path of every other command. A daemon that is down or refuses a request becomes a
tool error the assistant can read and act on, never a crash of the server.
"""

from __future__ import annotations

import inspect
import json
import os
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Annotated, Any, TypeVar

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.shared.exceptions import MCPError
from mcp.types import INVALID_PARAMS, ToolAnnotations
from pydantic import Field

from memlane.cli.client import Client, DaemonError, DaemonUnavailable
from memlane.daemon.adapters.paths import resolve_paths
from memlane.daemon.adapters.git_project import detect_project

INSTRUCTIONS = (
    "memlane is this user's long-term memory across coding sessions. Call `briefing` at the "
    "start of a task, `search` before deciding something that may have been decided before, "
    "and `store` for decisions, conventions and lessons worth keeping. Memories belong to a "
    "project (the git root of the session by default).")

CALL_DEADLINE = 2.0  # seconds a tool waits for the daemon: a stalled daemon is a tool error
# Served: tools only. Prompts and resources are not, so they are not advertised either.
_UNSERVED = ("prompts/list", "prompts/get", "resources/list", "resources/read",
             "resources/templates/list", "resources/subscribe", "resources/unsubscribe")


def _version() -> str:
    try:
        return version("memlane")
    except PackageNotFoundError:
        return "0+unknown"


class _Server(MCPServer):
    async def call_tool(self, name: str, arguments: dict[str, Any],
                        context: Any = None) -> Any:
        """An unknown tool is the caller's protocol error (-32602), not a tool's failure."""
        if self._tool_manager.get_tool(name) is None:
            raise MCPError(INVALID_PARAMS, f"Unknown tool: {name!r}")
        return await super().call_tool(name, arguments, context)


server = _Server("memlane", version=_version(), instructions=INSTRUCTIONS, log_level="WARNING")
for _method in _UNSERVED:
    server._lowlevel_server._request_handlers.pop(_method, None)

Project = Annotated[str | None, Field(
    description="Project (a git root path). Default: the current session's project.")]
MemoryId = Annotated[int, Field(ge=1, description="A memory's id, as shown by search.")]
READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)
F = TypeVar("F", bound=Callable[..., str])


def _tool(annotations: ToolAnnotations) -> Callable[[F], F]:
    """Register a tool answering in plain text, described by its (dedented) docstring."""
    def register(fn: F) -> F:
        server.add_tool(fn, description=inspect.cleandoc(fn.__doc__ or ""),
                        annotations=annotations, structured_output=False)
        return fn
    return register


def _request(method: str, path: str, body: Any = None) -> Any:
    """One daemon request; failures become tool errors that say what to do."""
    try:
        return Client(resolve_paths(), timeout=CALL_DEADLINE).request(method, path, body)
    except DaemonUnavailable as exc:
        if isinstance(exc.__cause__, TimeoutError):
            raise ToolError(f"memlane did not answer within {CALL_DEADLINE:g} s (the daemon "
                            "may be busy or stalled); retry later, or ask the user to run "
                            "`memlane status`.") from exc
        raise ToolError(f"No memlane daemon answered ({exc}). Start it with `memlane up` "
                        "(or ask the user to), then retry.") from exc
    except DaemonError as exc:
        raise ToolError(f"memlane refused the request ({exc.code}): {exc.message}") from exc


def _project(project: str | None) -> str:
    """The named project, else the git root of the session (Claude Code names its root)."""
    return project or detect_project(Path(os.environ.get("CLAUDE_PROJECT_DIR") or Path.cwd()))


def _hit_line(hit: dict[str, Any], *, with_project: bool) -> str:
    where = f" in {hit['project']}" if with_project else ""
    return (f"[{hit['id']}] {hit['kind']}, {hit['state']}, score {hit['score']:.3f}{where}: "
            f"{hit['text']}")


@_tool(READ_ONLY)
def search(query: Annotated[str, Field(min_length=1, description="What to look for.")],
           project: Project = None,
           all_projects: Annotated[bool, Field(description="Search every project.")] = False,
           k: Annotated[int, Field(ge=1, le=100, description="How many hits at most.")] = 10,
           ) -> str:
    """Search stored memories by meaning and keywords; one line per hit, best first:
    `[id] kind, state, score: text`. Only memories relevant enough come back: none means
    nothing stored is about this."""
    scope = None if all_projects else _project(project)
    # The model asked: its hits count as an explicit recall (use), unlike what a hook shows.
    hits = _request("POST", "/v1/search", {"query": query, "project": scope, "k": k,
                                           "recall": True})["hits"]
    if not hits:
        return f"No memory in {scope or 'any project'} is relevant to this query."
    return "\n".join(_hit_line(hit, with_project=scope is None) for hit in hits)


@_tool(ToolAnnotations(destructive_hint=False, open_world_hint=False))
def store(text: Annotated[str, Field(min_length=1, description="The memory, self-contained.")],
          kind: Annotated[str | None, Field(
              description="decision or user-note (never expire), insight, note. "
                          "Default: from tags or #hashtags in the text, else note.")] = None,
          tags: Annotated[list[str] | None, Field(description="Short labels.")] = None,
          project: Project = None) -> str:
    """Store a memory (a decision, convention, fact or lesson) for later sessions. Storing the
    same text again in a project returns the existing memory. Secrets are redacted."""
    body = {"text": text, "project": _project(project), "kind": kind, "tags": tags or [],
            "source": "mcp"}
    answer = _request("POST", "/v1/memories", body)
    said = (f"Memory {answer['id']} already holds this text; nothing new was stored."
            if answer["duplicate"] else f"Stored memory {answer['id']} ({answer['kind']}).")
    redactions = answer.get("redactions") or 0
    return said + (f" {redactions} secret(s) were redacted." if redactions else "")


@_tool(READ_ONLY)
def get(memory_id: MemoryId) -> str:
    """One memory with its text, project, kind, state, tags and times, as JSON."""
    memory = _request("GET", f"/v1/memories/{memory_id}")
    return json.dumps({k: v for k, v in memory.items() if v not in (None, [], "")},
                      ensure_ascii=False)


@_tool(ToolAnnotations(destructive_hint=True, idempotent_hint=True, open_world_hint=False))
def forget(memory_id: MemoryId) -> str:
    """Permanently purge a memory's text and vector everywhere, the event log included.
    Use only when the user asks to forget it or it holds something that must not be kept."""
    _request("POST", f"/v1/memories/{memory_id}/forget", {})
    return f"Forgot memory {memory_id}: its text is purged everywhere."


@_tool(READ_ONLY)
def briefing(project: Project = None,
             context: Annotated[str | None, Field(
                 description="What the session is about, to pick the most relevant.")] = None,
             budget: Annotated[int, Field(ge=50, le=100_000, description=(
                 "At most this many estimated tokens (about 4 characters each)."))] = 1500,
             ) -> str:
    """What a session should know about a project: its decisions, notes and proven
    memories, most relevant first, within a token budget."""
    scope = _project(project)
    answer = _request("POST", "/v1/briefing", {"project": scope, "context": context,
                                               "budget": budget})
    return answer["text"] or f"Nothing to brief for {scope} yet."


def run() -> None:
    """Serve the tools on stdin/stdout until the client closes them."""
    server.run("stdio")
