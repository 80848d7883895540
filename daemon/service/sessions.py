"""What each Claude Code session has been shown, so a prompt never repeats a memory, and which
sessions are off the record (``#off-the-record`` or ``memlane pause``): nothing of theirs is
stored, shown-recorded or saved.

Keyed by ``session_id``: parallel sessions never see each other's state. Bounded: the least
recently active sessions are dropped first.
"""

from __future__ import annotations

from collections import OrderedDict

MAX_SESSIONS = 512
MAX_SHOWN = 2000


class Sessions:
    def __init__(self, limit: int = MAX_SESSIONS) -> None:
        self._shown: OrderedDict[str, set[int]] = OrderedDict()
        self._off: OrderedDict[str, None] = OrderedDict()
        self._limit = limit
        self.paused = False  # ``memlane pause``: every session off the record until resumed

    def shown(self, session_id: str) -> set[int]:
        """The memory ids this session was shown (a live set: add to it)."""
        seen = self._shown.pop(session_id, None) or set()
        if len(seen) > MAX_SHOWN:
            seen = set()
        self._shown[session_id] = seen
        while len(self._shown) > self._limit:
            self._shown.popitem(last=False)
        return seen

    def go_off_the_record(self, session_id: str) -> None:
        self._off[session_id] = None
        while len(self._off) > self._limit:
            self._off.popitem(last=False)

    def off_the_record(self, session_id: str) -> bool:
        return self.paused or session_id in self._off

    def end(self, session_id: str) -> None:
        self._shown.pop(session_id, None)
        self._off.pop(session_id, None)
