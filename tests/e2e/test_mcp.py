"""`memlane mcp`: the memory tools over stdio for the official SDK's client, against a real
daemon; `memlane mcp install|uninstall` editing Claude Code's configuration files."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.types import CallToolResult, TextContent

from tests.e2e.daemon import DaemonProcess
from tests.e2e.test_cli import MEMLANE

TOOLS = {"search", "store", "get", "forget", "briefing"}
ENTRY = {"type": "stdio", "command": MEMLANE, "args": ["mcp"]}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@asynccontextmanager
async def session(daemon: DaemonProcess, *, cwd: Path | None = None,
                  **env: str) -> AsyncIterator[ClientSession]:
    """`memlane mcp` spawned over stdio, its stderr kept next to the daemon's."""
    params = StdioServerParameters(command=MEMLANE, args=["mcp"], env={**daemon.env, **env},
                                   cwd=cwd)
    # The server's stderr needs a real file descriptor; opening a local file does not block.
    with open(daemon.home / "mcp.stderr", "a") as errlog:  # noqa: ASYNC230
        async with (stdio_client(params, errlog=errlog) as (read, write),
                    ClientSession(read, write) as client):
            await client.initialize()
            yield client


def text_of(result: CallToolResult) -> str:
    assert len(result.content) == 1 and isinstance(result.content[0], TextContent)
    return result.content[0].text


async def call(client: ClientSession, tool: str, **arguments: Any) -> str:
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, text_of(result)
    return text_of(result)


def stored_id(answer: str) -> int:
    match = re.search(r"memory (\d+)", answer)
    assert match, answer
    return int(match.group(1))


@pytest.mark.anyio
async def test_lists_the_five_tools_with_input_schemas(daemon: DaemonProcess) -> None:
    """Each tool has a description and a typed input schema naming its required inputs."""
    async with session(daemon) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert set(tools) == TOOLS
    assert all(tool.description and tool.input_schema["type"] == "object"
               for tool in tools.values())
    required = {name: set(tool.input_schema.get("required", [])) for name, tool in tools.items()}
    assert required == {"search": {"query"}, "store": {"text"}, "get": {"memory_id"},
                        "forget": {"memory_id"}, "briefing": set()}
    assert tools["search"].input_schema["properties"]["k"]["type"] == "integer"
    assert tools["forget"].annotations is not None and tools["forget"].annotations.destructive_hint


@pytest.mark.anyio
async def test_store_search_get_briefing_forget(daemon: DaemonProcess) -> None:
    """A stored memory is found by search, read by get, briefed, then forgotten."""
    text = "We deploy with blue-green; never restart prod by hand"
    async with session(daemon) as client:
        memory_id = stored_id(await call(client, "store", text=text, project="p",
                                         kind="decision", tags=["deploy"]))
        assert "already holds" in await call(client, "store", text=text, project="p")
        await call(client, "store", text="Pin numpy below 3 for the old CI", project="p")
        daemon.wait_idle()
        hits = (await call(client, "search", query="how do we deploy to prod?",
                           project="p")).splitlines()
        assert hits[0].startswith(f"[{memory_id}] decision, active, score ") and text in hits[0]
        memory = json.loads(await call(client, "get", memory_id=memory_id))
        assert (memory["text"], memory["project"], memory["kind"], memory["tags"]) == (
            text, "p", "decision", ["deploy"])
        assert text in await call(client, "briefing", project="p", context="deploying")
        assert f"Forgot memory {memory_id}" in await call(client, "forget", memory_id=memory_id)
        assert json.loads(await call(client, "get", memory_id=memory_id))["state"] == "forgotten"
        after = await call(client, "search", query="how do we deploy to prod?", project="p")
        unrelated = await call(client, "search", query="a haiku about autumn leaves", project="p")
    assert f"[{memory_id}]" not in after
    assert unrelated == "No memory in p is relevant to this query."  # the relevance floor


@pytest.mark.anyio
async def test_default_project_is_the_sessions_git_root(daemon: DaemonProcess,
                                                       short_tmp: Path) -> None:
    """Without a project, memories go to Claude Code's project dir, else the cwd's git root."""
    repo, other = short_tmp / "repo", short_tmp / "other"
    for root in (repo, other):
        (root / ".git").mkdir(parents=True)
    (repo / "src").mkdir()
    async with session(daemon, cwd=repo / "src") as client:
        in_cwd = stored_id(await call(client, "store", text="Lint with ruff"))
        assert json.loads(await call(client, "get", memory_id=in_cwd))["project"] == str(repo)
    async with session(daemon, cwd=repo, CLAUDE_PROJECT_DIR=str(other)) as client:
        named = stored_id(await call(client, "store", text="Format with black"))
        assert json.loads(await call(client, "get", memory_id=named))["project"] == str(other)


@pytest.mark.anyio
async def test_daemon_errors_are_tool_errors_that_say_what_to_do(daemon: DaemonProcess) -> None:
    """A refused request and a stopped daemon give isError results; the server keeps serving."""
    async with session(daemon) as client:
        missing = await client.call_tool("get", {"memory_id": 999999})
        assert missing.is_error and "not_found" in text_of(missing)
        daemon.stop()
        for tool, arguments in (("search", {"query": "deploy"}), ("store", {"text": "x"})):
            down = await client.call_tool(tool, arguments)
            assert down.is_error and "memlane up" in text_of(down), text_of(down)
        invalid = await client.call_tool("search", {"query": "deploy", "k": 0})
        assert invalid.is_error


def test_other_commands_do_not_import_the_sdk() -> None:
    """Loading the CLI leaves the MCP SDK unimported: only `memlane mcp` pays for it."""
    code = ("import sys, memlane.cli.app\n"
            "print(sorted(m for m in ('mcp',) if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, timeout=60)
    assert result.stdout.strip() == "[]"


def memlane(home: Path, cwd: Path, *args: str,
            check: bool = True) -> subprocess.CompletedProcess[str]:
    """`memlane mcp ARGS --json` with HOME (where ~/.claude.json lives) at ``home``."""
    env = {**os.environ, "HOME": str(home)}
    result = subprocess.run([MEMLANE, "mcp", *args, "--json"], check=False, env=env, cwd=cwd,
                            capture_output=True, text=True, timeout=60)
    if check and result.returncode != 0:
        raise AssertionError(f"memlane mcp {' '.join(args)} failed: {result.stderr}")
    return result


def action(result: subprocess.CompletedProcess[str]) -> str:
    return json.loads(result.stdout)["action"]  # type: ignore[no-any-return]


def test_user_install_merges_into_claude_json_idempotently(short_tmp: Path) -> None:
    """--user adds only our entry to ~/.claude.json; repeats change nothing; uninstall restores
    the original bytes."""
    config = short_tmp / ".claude.json"
    original: dict[str, Any] = {
        "numStartups": 7, "projects": {"/x": {"mcpServers": {"local": {"command": "a"}}}},
        "mcpServers": {"other": {"type": "stdio", "command": "other-mcp", "args": []}},
        "tipsHistory": {"ünïcode": 1}}
    config.write_text(json.dumps(original, indent=2, ensure_ascii=False))
    config.chmod(0o600)
    before = config.read_bytes()
    assert action(memlane(short_tmp, short_tmp, "install", "--user")) == "added"
    installed = json.loads(config.read_text())
    assert installed["mcpServers"] == {**original["mcpServers"], "memlane": ENTRY}
    assert installed == {**original, "mcpServers": installed["mcpServers"]}
    assert config.stat().st_mode & 0o777 == 0o600
    after_install = config.read_bytes()
    assert action(memlane(short_tmp, short_tmp, "install")) == "unchanged"
    assert config.read_bytes() == after_install
    assert action(memlane(short_tmp, short_tmp, "uninstall", "--user")) == "removed"
    assert config.read_bytes() == before
    assert action(memlane(short_tmp, short_tmp, "uninstall")) == "absent"
    assert config.read_bytes() == before


def test_project_install_writes_mcp_json_at_the_git_root(short_tmp: Path) -> None:
    """--project writes .mcp.json at the repository root, beside other servers, and removes
    only our entry (the file too when nothing else was in it)."""
    repo = short_tmp / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "src").mkdir()
    config = repo / ".mcp.json"
    assert action(memlane(short_tmp, repo / "src", "install", "--project")) == "added"
    assert json.loads(config.read_text()) == {"mcpServers": {"memlane": ENTRY}}
    assert action(memlane(short_tmp, repo / "src", "uninstall", "--project")) == "removed"
    assert not config.exists()
    shared = json.dumps({"mcpServers": {"db": {"command": "db-mcp"}}}, indent=4) + "\n"
    config.write_text(shared)
    memlane(short_tmp, repo, "install", "--project")
    assert config.read_text().startswith('{\n    "mcpServers": {\n        "db": {')
    assert json.loads(config.read_text())["mcpServers"]["memlane"] == ENTRY
    memlane(short_tmp, repo, "uninstall", "--project")
    assert config.read_text() == shared
    assert not (short_tmp / ".claude.json").exists()


def test_a_project_entry_names_plain_memlane_when_it_is_on_path(short_tmp: Path) -> None:
    """A shared .mcp.json must work on a teammate's machine: no absolute venv path."""
    repo = short_tmp / "repo"
    (repo / ".git").mkdir(parents=True)
    env = {**os.environ, "HOME": str(short_tmp),
           "PATH": f"{Path(MEMLANE).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    subprocess.run([MEMLANE, "mcp", "install", "--project", "--json"], check=True, env=env,
                   cwd=repo, capture_output=True, timeout=60)
    entry = json.loads((repo / ".mcp.json").read_text())["mcpServers"]["memlane"]
    assert entry == {"type": "stdio", "command": "memlane", "args": ["mcp"]}


def test_an_entry_carries_the_state_directory_it_was_installed_with(short_tmp: Path) -> None:
    """Installed with MEMLANE_HOME set, the entry names that home (as the hooks name its
    socket), so the MCP server and the hooks always talk to the same daemon."""
    home = short_tmp / "state"
    env = {**os.environ, "HOME": str(short_tmp), "MEMLANE_HOME": str(home)}
    subprocess.run([MEMLANE, "mcp", "install", "--json"], check=True, env=env, cwd=short_tmp,
                   capture_output=True, timeout=60)
    entry = json.loads((short_tmp / ".claude.json").read_text())["mcpServers"]["memlane"]
    assert entry == {**ENTRY, "env": {"MEMLANE_HOME": str(home)}}


def test_dry_run_and_bad_json_change_nothing(short_tmp: Path) -> None:
    """--dry-run reports the change without writing; a config that is not JSON is left alone."""
    dry = memlane(short_tmp, short_tmp, "install", "--dry-run")
    assert json.loads(dry.stdout) == {"action": "added", "path": str(short_tmp / ".claude.json"),
                                      "entry": ENTRY, "dry_run": True}
    assert not (short_tmp / ".claude.json").exists()
    (short_tmp / ".claude.json").write_text("{not json")
    broken = memlane(short_tmp, short_tmp, "install", check=False)
    assert broken.returncode == 1 and "not valid JSON" in broken.stderr
    assert (short_tmp / ".claude.json").read_text() == "{not json"


@pytest.mark.anyio
async def test_protocol_errors_follow_the_spec_and_only_tools_are_advertised(
        daemon: DaemonProcess) -> None:
    """Unknown tool: -32602; prompts are not served (nor advertised); the version is filled."""
    from mcp.shared.exceptions import MCPError

    params = StdioServerParameters(command=MEMLANE, args=["mcp"], env=daemon.env)
    with open(daemon.home / "mcp.stderr", "a") as errlog:  # noqa: ASYNC230
        async with (stdio_client(params, errlog=errlog) as (read, write),
                    ClientSession(read, write) as client):
            init = await client.initialize()
            caps = init.capabilities
            assert caps.tools is not None and caps.prompts is None and caps.resources is None
            assert init.server_info.version and init.server_info.version != ""
            with pytest.raises(MCPError) as unknown:
                await client.call_tool("no_such_tool", {})
            assert unknown.value.error.code == -32602
            with pytest.raises(MCPError) as prompt:
                await client.get_prompt("no_such_prompt")
            assert prompt.value.error.code in (-32601, -32602)


@pytest.mark.anyio
async def test_a_stalled_daemon_is_a_clear_tool_error_within_the_deadline(
        daemon: DaemonProcess) -> None:
    import signal
    import time

    assert daemon.process is not None
    async with session(daemon) as client:
        os.kill(daemon.process.pid, signal.SIGSTOP)
        try:
            started = time.monotonic()
            result = await client.call_tool("search", {"query": "deploys"})
            elapsed = time.monotonic() - started
        finally:
            os.kill(daemon.process.pid, signal.SIGCONT)
    assert result.is_error and "did not answer within 2 s" in text_of(result)
    assert elapsed < 4.0, elapsed
