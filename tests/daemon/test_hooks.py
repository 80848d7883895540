"""Hooks fail open for Claude Code, and every failure is counted."""

from __future__ import annotations

from typing import Any

import anyio

from memlane.daemon.service.hooks import Hooks
from memlane.daemon.service.requests import HookInput


class BrokenReader:
    async def read(self, query: Any) -> Any:
        raise RuntimeError("the projection is gone")


def test_a_crashing_hook_answers_nothing_and_is_counted() -> None:
    hooks = Hooks(memories=None, search=None, reader=BrokenReader(),  # type: ignore[arg-type]
                  usage=None, kick=lambda: None,  # type: ignore[arg-type]
                  read_transcript=lambda path: [],
                  project_of=lambda path: "global")
    hook = HookInput(session_id="s1", hook_event_name="SessionStart")
    assert anyio.run(hooks.handle, "SessionStart", hook) == {}
    assert anyio.run(hooks.handle, "SessionStart", hook) == {}
    assert hooks.failures == 2
