"""Secret redaction: text loses its credentials before it reaches the log, the LLM or a log line.

``redact`` replaces each secret in free text (notes holding code, commands, URLs, config) with a
marker ``[redacted:<kind>]``. Pure: no I/O, standard library only. Secrets are found by shape
(``secret_shapes``: vendor prefixes and alphabets, gitleaks' rule table) and by context
(``secret_rules``: PEM blocks, assignments, URLs, password hashes, headers, CLI flags, tables,
prose, keyword + entropy).

Invariants:

- Only secrets change. A URL keeps its scheme, user and host, an assignment its key name, a
  header its scheme (``postgres://app:[redacted:url-password]@db:5432/x``).
- Markers are final: a candidate whose secret overlaps a marker (ours, or one already in the
  input) is skipped, so ``count`` is exactly the number of markers added.
- Idempotent: the rules are applied until a pass replaces nothing, so ``redact`` of its own
  output returns that output with ``count == 0``.
- Linear time: every repetition is bounded and none nests ambiguous quantifiers; shapes are
  only looked for inside runs of 16 or more token characters, which prose rarely has.
- Near-misses survive: commit ids, digests, integrity hashes, UUIDs, fingerprints, base64 images,
  masks in a secret's shape (``ghp_xxxx…``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from memlane.daemon.domain.secret_checks import Rule, is_placeholder
from memlane.daemon.domain.secret_rules import BLOCKS, RULES
from memlane.daemon.domain.secret_shapes import SHAPE_KINDS, SHAPES, kind_of

_MARKER = re.compile(r"\[redacted:[a-z0-9-]{1,40}\]")
_MARKER_REACH = len("[redacted:]") + 40  # the longest marker _MARKER can match
# Where a shape may be: no shape is shorter. The lookbehind starts a run only at its first
# character, so finding the runs reads each character once.
_TOKEN_RUN = re.compile(r"(?<![\w.~+/=:-])[\w.~+/=:-]{16,}")


_GATE_WORDS = frozenset(word for rule in BLOCKS + RULES for word in rule.gate)


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
    text = _apply_rules(BLOCKS, text, added)
    text = _replace(text, _shapes(text), added)
    text = _apply_rules(RULES, text, added)
    return (text, added) if added else None


def _apply_rules(rules: tuple[Rule, ...], text: str, added: list[str]) -> str:
    """Apply each rule whose gate words the text holds. The words are read once: a replacement
    only takes context away, and the words its marker adds start no secret."""
    lowered = text.lower()
    present = {word for word in _GATE_WORDS if word in lowered}
    for rule in rules:
        if not present.isdisjoint(rule.gate):
            text = _replace(text, _matches(rule, text), added)
    return text


def _matches(rule: Rule, text: str) -> Iterator[tuple[int, int, str]]:
    """The spans a context rule accepts, with its kind. A rejected match is searched again one
    character on, so that it hides no candidate inside it (``--from-literal=password=v``)."""
    position = 0
    while match := rule.pattern.search(text, position):
        if rule.check(match):
            yield (*match.span("secret"), rule.kind)
            position = max(match.end(), position + 1)
        else:
            position = match.start() + 1


def _shapes(text: str) -> Iterator[tuple[int, int, str]]:
    """The spans of every shape, looked for only inside long runs of token characters; a
    masked one (``ghp_xxxx…``, ``AKIAXXXX…``) is a placeholder, not a secret."""
    for run in _TOKEN_RUN.finditer(text):
        for match in SHAPES.finditer(text, run.start(), run.end()):
            if not is_placeholder(match[0]):
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
