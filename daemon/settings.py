"""Daemon settings: defaults overridden by the environment (the TOML config file comes later)."""

from __future__ import annotations

import os

import msgspec

from memlane.daemon.paths import DEFAULT_PORT


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """What the daemon needs to start."""

    port: int = DEFAULT_PORT
    model: str | None = None
    threads: int = 2
    batch_window_ms: float = 0.5
    max_batch: int = 64
    snapshot_interval_s: float = 30.0

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ) if env is None else env
        fields = {
            "port": ("MEMLANE_PORT", int),
            "model": ("MEMLANE_MODEL", str),
            "threads": ("MEMLANE_THREADS", int),
            "batch_window_ms": ("MEMLANE_BATCH_WINDOW_MS", float),
        }
        values = {name: cast(env[var]) for name, (var, cast) in fields.items() if env.get(var)}
        return cls(**values)
