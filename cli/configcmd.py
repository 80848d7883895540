"""``memlane config show|path|set``: the one TOML file, validated like the daemon reads it."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from memlane.cli.render import emit, fail
from memlane.daemon.adapters.paths import resolve_paths

config_app = typer.Typer(help="The config file: show, path, set.", no_args_is_help=True)
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON (default when piped).")]


@config_app.command("path")
def path() -> None:
    """Where the config file is (it may not exist yet)."""
    print(resolve_paths().config)


@config_app.command("show")
def show(as_json: JsonFlag = False) -> None:
    """Every setting's effective value and where it comes from (env > file > default)."""
    import msgspec

    from memlane.daemon.adapters.settings import ENV_VARS, ConfigError, Settings, read_config

    paths = resolve_paths()
    try:
        effective = msgspec.to_builtins(Settings.load(paths.config))
        in_file = read_config(paths.config)
    except ConfigError as exc:
        fail(str(exc))
    from_env = {field: var for var, field in ENV_VARS.items()}
    rows = {key: {"value": value, "source": _source(key, in_file, from_env)}
            for key, value in effective.items()}
    emit({"path": str(paths.config), "settings": rows}, as_json=as_json, text="\n".join(
        f"{key:<22} {json.dumps(row['value'])}  ({row['source']})" for key, row in rows.items()))


def _source(key: str, in_file: dict[str, Any], from_env: dict[str, str]) -> str:
    import os

    if key in from_env and os.environ.get(from_env[key]):
        return f"env {from_env[key]}"
    return "file" if key in in_file else "default"


@config_app.command("set")
def set_(key: str, value: Annotated[str, typer.Argument(help="JSON, or a plain string.")]) -> None:
    """Set one key in the config file (checked before it is written)."""
    from memlane.daemon.adapters.settings import ConfigError, write_config_value

    try:
        parsed = json.loads(value)
    except ValueError:
        parsed = value
    try:
        write_config_value(resolve_paths().config, key, parsed)
    except ConfigError as exc:
        fail(str(exc))
    print(f"{key} = {json.dumps(parsed)} (restart the daemon to apply)")
