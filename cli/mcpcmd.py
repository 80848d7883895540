"""``memlane mcp``: serve the memory tools to Claude Code over stdio; ``install`` and
``uninstall`` register that server in Claude Code's configuration.

User scope is the top-level ``mcpServers`` of ``~/.claude.json``; project scope is
``.mcp.json`` at the project root (the git root, else the working directory). An edit
loads the JSON, changes only the ``memlane`` entry and writes the file back atomically in
its own indentation, so other keys survive and a repeated command changes nothing.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Annotated, Any

import typer

from memlane.cli import jsonfile
from memlane.cli.jsonfile import Layout
from memlane.cli.installation import memlane_executable
from memlane.cli.render import emit, fail
from memlane.daemon.adapters.files import write_atomic
from memlane.daemon.adapters.git_project import GLOBAL, detect_project
from memlane.daemon.adapters.paths import resolve_paths

SERVER_NAME = "memlane"
SERVERS_KEY = "mcpServers"

mcp_app = typer.Typer(help="MCP server for Claude Code: `memlane mcp` runs it on stdio.")
ProjectScope = Annotated[bool, typer.Option(
    "--project/--user", help="The project's .mcp.json, or ~/.claude.json (every project).")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Show the change, write nothing.")]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON (default when piped).")]


@mcp_app.callback(invoke_without_command=True)
def serve(ctx: typer.Context) -> None:
    """Run the MCP server on stdin/stdout (what Claude Code starts)."""
    if ctx.invoked_subcommand is None:
        from memlane.cli.mcp_server import run

        run()


def _command(*, project: bool) -> str:
    """The command to run: a project's .mcp.json is shared (committed), so it names plain
    ``memlane`` when that is this installation on PATH; else (and for the user's file) the
    absolute path, which works whatever PATH Claude Code gets."""
    found = memlane_executable("mcp install")
    on_path = shutil.which("memlane")
    if project and on_path and os.path.realpath(on_path) == os.path.realpath(found):
        return "memlane"
    return str(found)


@mcp_app.command()
def install(project: ProjectScope = False, dry_run: DryRun = False,
            as_json: JsonFlag = False) -> None:
    """Register `memlane mcp` with Claude Code (idempotent)."""
    path = _config_path(project=project)
    document, layout = _load(path)
    entry: dict[str, Any] = {"type": "stdio", "command": _command(project=project),
                             "args": ["mcp"]}
    if "MEMLANE_HOME" in os.environ:  # the hooks name this home's socket: the server must too
        entry["env"] = {"MEMLANE_HOME": str(resolve_paths().home)}
    servers = _servers(document, path)
    action = ("unchanged" if servers.get(SERVER_NAME) == entry
              else "updated" if SERVER_NAME in servers else "added")
    servers[SERVER_NAME] = entry
    document[SERVERS_KEY] = servers
    if action != "unchanged" and not dry_run:
        _write(path, document, layout)
    _report({"action": action, "path": str(path), "entry": entry}, dry_run=dry_run,
            as_json=as_json)


@mcp_app.command()
def uninstall(project: ProjectScope = False, dry_run: DryRun = False,
              as_json: JsonFlag = False) -> None:
    """Remove the memlane entry from Claude Code's configuration, and nothing else."""
    path = _config_path(project=project)
    document, layout = _load(path)
    servers = _servers(document, path)
    action = "removed" if servers.pop(SERVER_NAME, None) is not None else "absent"
    if action == "removed":
        if not servers:
            del document[SERVERS_KEY]  # it held only our entry
        if not dry_run:
            _write(path, document, layout)
    _report({"action": action, "path": str(path)}, dry_run=dry_run, as_json=as_json)


def _config_path(*, project: bool) -> Path:
    if not project:
        return Path.home() / ".claude.json"
    root = detect_project(Path.cwd())
    return (Path.cwd() if root == GLOBAL else Path(root)) / ".mcp.json"


def _load(path: Path) -> tuple[dict[str, Any], Layout]:
    """The document (empty when the file is missing) and its layout."""
    try:
        return jsonfile.parse(jsonfile.read_bytes(path))
    except jsonfile.JsonFileError as exc:
        fail(f"{path} {exc}; fix it first, nothing was changed")
    except UnicodeDecodeError:
        fail(f"{path} is not UTF-8 text; nothing was changed")


def _servers(document: dict[str, Any], path: Path) -> dict[str, Any]:
    servers: dict[str, Any] = document.get(SERVERS_KEY, {})
    if not isinstance(servers, dict):
        fail(f"{path}: \"{SERVERS_KEY}\" is not a JSON object; nothing was changed")
    return servers


def _write(path: Path, document: dict[str, Any], layout: Layout) -> None:
    """Replace the file atomically, keeping its mode; an emptied document removes the file."""
    write_atomic(path, jsonfile.render(document, layout) if document else None)


def _report(result: dict[str, Any], *, dry_run: bool, as_json: bool) -> None:
    verb = {"added": "added to", "updated": "updated in", "removed": "removed from",
            "unchanged": "already in", "absent": "not in"}[result["action"]]
    note = " (dry run: nothing written)" if dry_run else ""
    emit({**result, "dry_run": dry_run}, as_json=as_json,
         text=f"memlane MCP server {verb} {result['path']}{note}")
