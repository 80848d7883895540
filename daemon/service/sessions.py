"""What each Claude Code session has been shown, so a prompt never repeats a memory.

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
        self._limit = limit

    def shown(self, session_id: str) -> set[int]:
        """The memory ids this session was shown (a live set: add to it)."""
        seen = self._shown.pop(session_id, None) or set()
        if len(seen) > MAX_SHOWN:
            seen = set()
        self._shown[session_id] = seen
        while len(self._shown) > self._limit:
            self._shown.popitem(last=False)
        return seen

    def end(self, session_id: str) -> None:
        self._shown.pop(session_id, None)
