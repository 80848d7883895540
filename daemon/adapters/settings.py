"""Daemon settings: defaults, overridden by the config file, overridden by the environment.

The config file is TOML with flat keys named as the fields below; an unknown key or a wrong
type is an error that names it.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from memlane.daemon.adapters.files import write_atomic
from memlane.daemon.adapters.paths import DEFAULT_PORT

Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]


class ConfigError(Exception):
    """The config file or an environment variable holds a value memlane cannot use."""

    code = "bad_config"


class Settings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What the daemon needs to start."""

    port: Port = DEFAULT_PORT
    model: str | None = None
    threads: Annotated[int, msgspec.Meta(ge=1, le=256)] = 2
    # Requests that arrive while a forward pass runs share the next one; an extra window only
    # delays lone requests (asyncio rounds sleeps up to 1 ms), so none by default.
    batch_window_ms: Annotated[float, msgspec.Meta(ge=0, le=1000)] = 0.0
    max_batch: Annotated[int, msgspec.Meta(ge=1, le=4096)] = 64
    snapshot_interval_s: Annotated[float, msgspec.Meta(gt=0)] = 30.0
    jobs_interval_s: Annotated[float, msgspec.Meta(gt=0)] = 600.0
    age_limit: Annotated[int, msgspec.Meta(ge=1)] = 40
    llm_model: str = "gemini-2.5-flash"
    llm_base_url: str | None = None  # a proxy or a test server; the key is never in config
    llm_daily_budget: Annotated[int, msgspec.Meta(ge=0)] = 200
    route_write_projects: tuple[str, ...] = ()  # projects whose files memlane may write
    route_docs: tuple[str, ...] = ()  # extra route targets, relative to each project root
    # Projects (git roots) or folders whose sessions memlane never captures from: no marked
    # prompt, no session save, no record of what was shown.
    ignore_projects: tuple[str, ...] = ()
    # Review mode: consolidations and routes wait in the viewer's review for the user's
    # approval (the merge to record; the exact diff of the file) instead of being applied.
    review: bool = False
    # Compaction keeps every record of the last ``retention_days`` (replay --until sees them);
    # past ``disk_budget_mb`` of log (0: no budget) the scheduled round compacts.
    retention_days: Annotated[int, msgspec.Meta(ge=0)] = 30
    disk_budget_mb: Annotated[int, msgspec.Meta(ge=0)] = 0
    # A forget's proof reads every byte of the state directory in a child process; one that
    # has not answered by then is killed and the forget stays pending (retried at the next
    # start). The scan of a 100k-memory home takes a few seconds.
    forget_scan_timeout_s: Annotated[float, msgspec.Meta(gt=0)] = 600.0
    # "debug" also logs every request served (refused and slow ones are logged at "info").
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @classmethod
    def load(cls, config: Path | None = None, env: dict[str, str] | None = None) -> Settings:
        """Settings from ``config`` (if it exists) and the environment."""
        env = dict(os.environ) if env is None else env
        values = read_config(config) if config is not None else {}
        values.update(_from_env(env))
        if isinstance(values.get("log_level"), str):  # DEBUG as well as debug
            values["log_level"] = values["log_level"].lower()
        try:
            return msgspec.convert(values, cls, strict=False)
        except msgspec.ValidationError as exc:
            raise ConfigError(f"{config or 'settings'}: {exc}") from None


ENV_VARS = {
    "MEMLANE_PORT": "port",
    "MEMLANE_MODEL": "model",
    "MEMLANE_THREADS": "threads",
    "MEMLANE_BATCH_WINDOW_MS": "batch_window_ms",
    "MEMLANE_MAX_BATCH": "max_batch",
    "MEMLANE_JOBS_INTERVAL_S": "jobs_interval_s",
    "MEMLANE_AGE_LIMIT": "age_limit",
    "MEMLANE_LLM_MODEL": "llm_model",
    "MEMLANE_LLM_BASE_URL": "llm_base_url",
    "MEMLANE_LLM_DAILY_BUDGET": "llm_daily_budget",
    "MEMLANE_REVIEW": "review",
    "MEMLANE_FORGET_SCAN_TIMEOUT_S": "forget_scan_timeout_s",
    "MEMLANE_RETENTION_DAYS": "retention_days",
    "MEMLANE_DISK_BUDGET_MB": "disk_budget_mb",
    "MEMLANE_LOG_LEVEL": "log_level",
}


def _from_env(env: dict[str, str]) -> dict[str, str]:
    return {field: env[var] for var, field in ENV_VARS.items() if env.get(var)}


def read_config(path: Path) -> dict[str, Any]:
    """The config file's table (empty when there is no file)."""
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        return {}
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def write_config_value(path: Path, key: str, value: Any) -> None:
    """Set one key in the config file (atomically), validating the whole result first."""
    import tomli_w

    values = read_config(path)
    values[key] = value
    try:
        msgspec.convert(values, Settings, strict=False)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_atomic(path, tomli_w.dumps(values).encode())
