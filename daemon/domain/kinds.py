"""What kind of memory a store is, from its explicit kind, its tags and its text (pure).

Kinds decide lifecycles: ``decision`` and ``user-note`` are protected (they never expire),
``session-save`` summaries age like notes, and an ``auto-save`` or session save with nothing
in it is stored (the log keeps everything) and expires at once.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from memlane.events.model import PROTECTED_KINDS

_TAG_KINDS = {"decision": "decision", "decided": "decision", "adr": "decision",
              "note": "user-note", "user-note": "user-note", "remember": "user-note",
              "insight": "insight", "learned": "insight", "til": "insight",
              "session-save": "session-save", "auto-save": "auto-save"}
_HASHTAG = re.compile(r"(?<![\w#])#([a-z][a-z-]{1,20})\b", re.IGNORECASE)
_WORD = re.compile(r"[^\W\d_][\w'./-]*", re.UNICODE)
# Words a generated save contains even when the session did nothing.
_BOILERPLATE = frozenset("""
session summary save saved auto autosave compact compaction pre end ended start started
context transcript no nothing changes change none n/a na empty notes note work done todo
the a an of in on for and or to was were is are this that with
""".split())
MIN_SAVE_WORDS = 4
# A prompt marker: ``#decision``, ``#note``, ``#insight`` (or a synonym) as the first word of the
# prompt or of one of its lines, optionally followed by a colon. ``#off-the-record`` there keeps
# the session out of memory. Anywhere else a hashtag is just text.
OFF_THE_RECORD = "off-the-record"
_MARKER = re.compile(r"^[ \t]*#([a-z][a-z-]{1,20})(?![\w-])[ \t]*:?[ \t]*",
                     re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True)
class PromptMarks:
    kind: str | None  # the kind to store the prompt as, None to store nothing
    text: str  # the prompt without its markers
    off_the_record: bool = False


def detect_kind(text: str, tags: Sequence[str], explicit: str | None) -> str:
    """The explicit kind, else the first tag or ``#hashtag`` naming one, else ``note``."""
    if explicit:
        return explicit
    for tag in tags:
        if (kind := _TAG_KINDS.get(tag.lstrip("#").lower())) is not None:
            return kind
    for match in _HASHTAG.finditer(text):
        if (kind := _TAG_KINDS.get(match.group(1).lower())) is not None:
            return kind
    return "note"


def prompt_marks(prompt: str) -> PromptMarks:
    """The markers at the start of the prompt or of its lines, and the text without them.

    A marked line that asks a question (ends with ``?``) is not stored: a question is never a
    decision."""
    kind: str | None = None
    off = False
    question = False
    for match in _MARKER.finditer(prompt):
        word = match.group(1).lower()
        if word == OFF_THE_RECORD:
            off = True
        elif (found := _TAG_KINDS.get(word)) in ("decision", "user-note", "insight"):
            if kind is None:
                kind = found
            line_end = prompt.find("\n", match.end())
            line = prompt[match.end(): None if line_end < 0 else line_end]
            question = question or line.rstrip().endswith("?")
    text = _MARKER.sub(lambda m: "" if _is_marker(m.group(1)) else m.group(0), prompt).strip()
    if question or not text:
        kind = None
    return PromptMarks(kind=kind, text=text, off_the_record=off)


def _is_marker(word: str) -> bool:
    word = word.lower()
    return word == OFF_THE_RECORD or _TAG_KINDS.get(word) in ("decision", "user-note", "insight")


def is_protected(kind: str) -> bool:
    return kind in PROTECTED_KINDS


def is_empty_save(kind: str, text: str) -> bool:
    """A generated save (auto or session) with fewer than a few words of its own."""
    if kind not in ("auto-save", "session-save"):
        return False
    words = [w for w in _WORD.findall(text.lower()) if w.strip("./-'") not in _BOILERPLATE]
    return len(words) < MIN_SAVE_WORDS
