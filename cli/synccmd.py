"""``memlane sync enable|status|revoke``: share a project's memories with a team over NATS
JetStream.

``enable`` writes ``sync.toml`` in the state directory (the daemon starts syncing at its next
start); ``status`` asks the running daemon for the lag in each direction and the last error;
``revoke`` marks a device's key revoked in the team roster (a lost laptop).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from memlane.cli.client import Client, DaemonError, DaemonUnavailable
from memlane.cli.render import emit, fail
from memlane.daemon.adapters.git_project import detect_project
from memlane.daemon.adapters.paths import resolve_paths
from memlane.daemon.adapters.sync_config import (
    SyncConfig,
    SyncConfigError,
    check_token,
    portable_id,
    read_sync_config,
    write_sync_config,
)

sync_app = typer.Typer(help="Sync memories with a team over NATS JetStream.",
                       no_args_is_help=True)
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON (default when piped).")]


@sync_app.command("enable")
def enable(
    url: Annotated[str, typer.Option(help="NATS server URL(s), comma-separated.")],
    team: Annotated[str, typer.Option(help="Team name: a-z, 0-9, '_' and '-'.")],
    project: Annotated[Optional[str], typer.Option(
        "--project", "-p", help="Project (default: git root of cwd; 'global' for none).")] = None,
    creds: Annotated[Optional[Path], typer.Option(help="A NATS .creds file.")] = None,
    replicas: Annotated[int, typer.Option(help="Stream replicas (3 on a cluster).")] = 1,
    as_json: JsonFlag = False,
) -> None:
    """Sync a project with the team (its stored memories, consolidations, pins, restores and
    forgets; usage and aging stay on this machine)."""
    paths = resolve_paths()
    local = project or detect_project(Path.cwd())
    try:
        check_token("team", team)
        existing = read_sync_config(paths.home)
        if existing is not None and (existing.team, existing.url) != (team, url):
            fail(f"sync already goes to team {existing.team!r} at {existing.url}; one team per "
                 "installation: edit or remove " + str(paths.home / "sync.toml"))
        projects = dict(existing.projects) if existing is not None else {}
        projects[local] = portable_id(local)
    except SyncConfigError as exc:
        fail(str(exc))
    if creds is not None and not creds.is_file():
        fail(f"{creds}: no such credentials file")
    write_sync_config(paths.home, SyncConfig(
        url=url, team=team, creds=str(creds.absolute()) if creds else None,
        replicas=replicas, projects=projects))
    emit({"team": team, "url": url, "project": local, "project_id": projects[local],
          "restart": True}, as_json=as_json,
         text=f"syncing {local} as {projects[local]} with team {team} at {url}; restart the "
              "daemon to start (`memlane down && memlane up`)")


@sync_app.command("status")
def status(as_json: JsonFlag = False) -> None:
    """Lag per direction (events not yet published, messages not yet applied), refusals and
    the last error."""
    paths = resolve_paths()
    try:
        answer = Client(paths).request("GET", "/v1/sync")
    except DaemonUnavailable as exc:
        config = read_sync_config(paths.home)
        fail(f"{exc}; sync is {'enabled' if config else 'not enabled'}. Start it with "
             "`memlane up`.", code=2)
    except DaemonError as exc:
        fail(f"{exc.code}: {exc.message}")
    emit(answer, as_json=as_json, text=_text(answer))


@sync_app.command("revoke")
def revoke(
    device: Annotated[str, typer.Argument(help="The device id (from its `memlane sync status`).")],
    as_json: JsonFlag = False,
) -> None:
    """Revoke a team member's device: every device refuses its events from then on (a lost or
    retired machine). Memories it shared before stay."""
    paths = resolve_paths()
    try:
        answer = Client(paths).request("POST", "/v1/sync/revoke", {"device": device})
    except DaemonUnavailable as exc:
        fail(f"{exc}; start it with `memlane up`.", code=2)
    except DaemonError as exc:
        fail(f"{exc.code}: {exc.message}")
    emit(answer, as_json=as_json, text=f"device {device} revoked: its events are refused from now on")


def _text(answer: dict[str, object]) -> str:
    if not answer.get("enabled"):
        return "sync is not enabled (`memlane sync enable --url nats://… --team T`)"
    out, inbox = answer["outbox"], answer["inbox"]
    assert isinstance(out, dict) and isinstance(inbox, dict)
    lines = [f"team {answer['team']} at {answer['url']} as device {answer['device']}: "
             f"{'connected' if answer['connected'] else 'not connected'}",
             f"outbox: {out['lag_events']} events to publish ({out['published']} published)",
             f"inbox: {inbox['pending']} to apply ({inbox['applied']} applied, "
             f"{inbox['refused']} refused, {inbox['forgotten_before_arrival']} kept out: "
             "forgotten before they arrived)"]
    if answer.get("last_error"):
        lines.append(f"last error: {answer['last_error']}")
    if inbox.get("last_refusal"):
        lines.append(f"last refusal: {json.dumps(inbox['last_refusal'])}")
    return "\n".join(lines)
