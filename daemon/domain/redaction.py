"""Secret redaction: text loses its credentials before it reaches the log, the LLM or a log line.

``redact`` replaces each secret in free text (notes holding code, commands, URLs, config) with a
marker ``[redacted:<kind>]``. Pure: no I/O, standard library only. Secrets are found by shape
(``secret_shapes``: vendor prefixes and alphabets, gitleaks' rule table) and by context
(``secret_rules``: PEM blocks, assignments, URLs, headers, CLI flags, prose, keyword + entropy).

Invariants:

- Only secrets change. A URL keeps its scheme, user and host, an assignment its key name, a
  header its scheme (``postgres://app:[redacted:url-password]@db:5432/x``).
- Markers are final: a candidate whose secret overlaps a marker (ours, or one already in the
  input) is skipped, so ``count`` is exactly the number of markers added.
- Idempotent: the rules are applied until a pass replaces nothing, so ``redact`` of its own
  output returns that output with ``count == 0``.
- Linear time: every repetition is bounded and none nests ambiguous quantifiers; shapes are
  only looked for inside runs of 16 or more token characters, which prose rarely has.
- Near-misses survive: commit ids, digests, integrity hashes, UUIDs, fingerprints, base64 images.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from memlane.daemon.domain.secret_rules import BLOCKS, RULES, Rule
from memlane.daemon.domain.secret_shapes import SHAPE_KINDS, SHAPES, kind_of

_MARKER = re.compile(r"\[redacted:[a-z0-9-]{1,40}\]")
_MARKER_REACH = len("[redacted:]") + 40  # the longest marker _MARKER can match
_TOKEN_RUN = re.compile(r"[\w.~+/=:-]{16,}")  # where a shape may be: no shape is shorter


@dataclass(frozen=True, slots=True)
class Redacted:
    """The redacted text, how many secrets were replaced, and their kinds (distinct, sorted)."""

    text: str
    count: int
    kinds: tuple[str, ...]


def redact(text: str) -> Redacted:
    """Replace every secret in ``text`` with ``[redacted:<kind>]``.

    Passes repeat until one replaces nothing (two in all, for text with secrets): a rule may
    only see a secret once a later rule has replaced the text next to it.
    """
    count, kinds = 0, set[str]()
    while found := _apply_all(text):
        text, added = found
        count += len(added)
        kinds.update(added)
    return Redacted(text=text, count=count, kinds=tuple(sorted(kinds)))


def _apply_all(text: str) -> tuple[str, list[str]] | None:
    """One pass: blocks, then shapes, then context rules; None when nothing was replaced."""
    added: list[str] = []
    for rule in BLOCKS:
        text = _replace(text, _matches(rule, text), added)
    text = _replace(text, _shapes(text), added)
    lowered = text.lower()
    for rule in RULES:
        if any(word in lowered for word in rule.gate):
            text = _replace(text, _matches(rule, text), added)
    return (text, added) if added else None


def _matches(rule: Rule, text: str) -> Iterator[tuple[int, int, str]]:
    """The spans a context rule accepts, with its kind."""
    for match in rule.pattern.finditer(text):
        if rule.check(match):
            yield (*match.span("secret"), rule.kind)


def _shapes(text: str) -> Iterator[tuple[int, int, str]]:
    """The spans of every shape, looked for only inside long runs of token characters."""
    for run in _TOKEN_RUN.finditer(text):
        for match in SHAPES.finditer(text, run.start(), run.end()):
            yield (*match.span(), kind_of(match))


def _replace(text: str, spans: Iterator[tuple[int, int, str]], added: list[str]) -> str:
    """Replace each span that touches no marker and no earlier span; note its kind."""
    pieces: list[str] = []
    kept_from = 0
    for start, end, kind in spans:
        if start >= kept_from and not _touches_marker(text, start, end):
            pieces += (text[kept_from:start], f"[redacted:{kind}]")
            kept_from = end
            added.append(kind)
    return "".join(pieces) + text[kept_from:]


def _touches_marker(text: str, start: int, end: int) -> bool:
    """Whether ``text[start:end]`` overlaps a marker."""
    nearby = _MARKER.finditer(text, max(0, start - _MARKER_REACH), end + _MARKER_REACH)
    return any(marker.start() < end and marker.end() > start for marker in nearby)


KINDS: tuple[str, ...] = tuple(dict.fromkeys(
    [rule.kind for rule in BLOCKS] + list(SHAPE_KINDS) + [rule.kind for rule in RULES]))
"""Every kind of secret ``redact`` recognises, in the order its rules run."""
