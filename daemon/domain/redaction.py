"""Secret redaction: memory text loses its credentials before it is written to the event log.

``redact`` replaces each secret in free text (notes holding code, commands, URLs, config) with a
marker ``[redacted:<kind>]``. Pure: no I/O, standard library only. ``_RULES`` is the table of
(kind, pattern, check): a pattern's ``secret`` group is the span replaced, the rest of the match is
context that is kept, and the check decides whether a candidate is a secret at all.

Invariants:

- Only secrets change. A URL keeps its scheme, user and host, an assignment its key name, a
  header its scheme (``postgres://app:[redacted:url-password]@db:5432/x``).
- Markers are final: a candidate whose secret overlaps a marker (ours, or one already in the
  input) is skipped, so ``count`` is exactly the number of markers added.
- Idempotent: the table is applied until a pass replaces nothing, so ``redact`` of its own
  output returns that output with ``count == 0``.
- Linear time: every repetition is bounded and none nests ambiguous quantifiers, so a pass costs
  the length of the text times a constant (the longest secret a rule accepts).

Shape rules (PEM blocks, ``AKIA``, ``ghp_``, ``sk-``, ``eyJ`` JWTs...) take every match that does
not start inside a longer word; example keys of the right shape are redacted too. Context rules
(``Authorization`` headers, URL passwords, assignments to a key whose name ends in password,
passwd, passphrase, secret, secret_key, token, api_key, access_key or private_key, in any case
and with any prefix: ``DB_PASSWORD=``, ``"client_secret":``, ``apiKey:``, ``X-Api-Key:``) keep a
value that only stands in for a secret:

- a mask (``***``, ``xxxx``, one repeated character) or an elided stem (``sk-...``, ``ghp_…``);
- a reference or template: ``$TOKEN``, ``${TOKEN}``, ``$(pass show x)``, ``%TOKEN%``,
  ``{{ token }}``, ``<your-token>``;
- a stock word (``changeme``, ``password``, ``example``, ``none``, ``null``, ``todo``...), or a
  value starting with ``your`` or ``replace`` (``YOUR_API_KEY``).

Assignments also keep values under 4 characters, and unquoted values that are code: a name or
attribute path without digits (``api_key=api_key``, ``token = settings.TOKEN``), or a name that
is called or subscripted (``sha256(...)``, ``os.environ[...]``). The price: an unquoted password
of letters only (``PASSWORD=letmein``) is kept. Unquoted values end at whitespace, quotes and
``,;&()[]{}<>``, so a connection string or a query string keeps its next field.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

_MARKER = re.compile(r"\[redacted:[a-z0-9-]{1,40}\]")
_MARKER_REACH = len("[redacted:]") + 40  # the longest marker _MARKER can match
_MIN_ASSIGNED = 4
_PLACEHOLDER_WORDS = frozenset({
    "changeme", "password", "passwd", "pass", "secret", "token", "apikey", "example", "dummy",
    "placeholder", "redacted", "none", "null", "nil", "true", "false", "undefined", "todo",
    "fixme",
})
# A whole-value mask, one repeated character or an elided stem (sk-...), or the start of a
# reference or template.
_STAND_IN = re.compile(
    r"(.)\1*$|[*xX•.#_-]+$|[A-Za-z0-9_-]{0,12}(?:\.\.\.|…)$|\$[{(A-Za-z_]|%[A-Za-z_]+%$|[<{]")
_NAME = re.compile(r"[A-Za-z_]+(?:\.[A-Za-z_]+)*")  # api_key, settings.API_KEY: no digits
_CALLEE = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")  # sha256, base64.b64decode: before ( or [


@dataclass(frozen=True, slots=True)
class Redacted:
    """The redacted text, how many secrets were replaced, and their kinds (distinct, sorted)."""

    text: str
    count: int
    kinds: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Rule:
    """One kind of secret: the pattern whose ``secret`` group is replaced by the marker (the
    rest of the match is context, kept), and the check that a candidate is really a secret."""

    kind: str
    pattern: re.Pattern[str]
    check: Callable[[re.Match[str]], bool]


def redact(text: str) -> Redacted:
    """Replace every secret in ``text`` with ``[redacted:<kind>]``.

    Passes repeat until one replaces nothing (two in all, for text with secrets): a rule may
    only see a secret once a later rule has replaced the text next to it.
    """
    count, kinds = 0, set[str]()
    while found := _apply_rules(text):
        text, added = found
        count += len(added)
        kinds.update(added)
    return Redacted(text=text, count=count, kinds=tuple(sorted(kinds)))


def _apply_rules(text: str) -> tuple[str, list[str]] | None:
    """One pass of every rule in table order; None when nothing was replaced."""
    added: list[str] = []
    for rule in _RULES:
        text, replaced = _apply(rule, text)
        added += [rule.kind] * replaced
    return (text, added) if added else None


def _apply(rule: _Rule, text: str) -> tuple[str, int]:
    """Replace the secret group of each accepted match of one rule."""
    pieces: list[str] = []
    kept_from = replaced = 0
    for match in rule.pattern.finditer(text):
        start, end = match.span("secret")
        if rule.check(match) and not _touches_marker(text, start, end):
            pieces += (text[kept_from:start], f"[redacted:{rule.kind}]")
            kept_from, replaced = end, replaced + 1
    return "".join(pieces) + text[kept_from:], replaced


def _touches_marker(text: str, start: int, end: int) -> bool:
    """Whether ``text[start:end]`` overlaps a marker."""
    nearby = _MARKER.finditer(text, max(0, start - _MARKER_REACH), end + _MARKER_REACH)
    return any(marker.start() < end and marker.end() > start for marker in nearby)


def _is_placeholder(value: str) -> bool:
    """Whether a value stands in for a secret: a mask, an elision, a reference, a stock word."""
    word = value.lower().replace("_", "").replace("-", "")
    return (_STAND_IN.match(value) is not None or word in _PLACEHOLDER_WORDS
            or word.startswith(("your", "replace")))


def _any(_match: re.Match[str]) -> bool:
    """Shape rules: every match is a secret."""
    return True


def _real_value(match: re.Match[str]) -> bool:
    """Context rules: the value is a secret unless it is a placeholder."""
    return not _is_placeholder(match["secret"])


def _assigned_value(match: re.Match[str]) -> bool:
    """Quoted assignments: a non-trivial value that is not a placeholder."""
    return len(match["secret"]) >= _MIN_ASSIGNED and _real_value(match)


def _assigned_literal(match: re.Match[str]) -> bool:
    """Unquoted assignments: as quoted, and not code (a name, attribute, call or subscript)."""
    return not _is_code(match) and _assigned_value(match)


def _is_code(match: re.Match[str]) -> bool:
    """Whether an unquoted value is a name, an attribute path, or a callee or subscripted name."""
    value, following = match["secret"], match.string[match.end():match.end() + 1]
    return (_NAME.fullmatch(value) is not None
            or (following in ("(", "[") and _CALLEE.fullmatch(value) is not None))


def _shaped(kind: str, body: str) -> _Rule:
    """A secret recognised by its shape alone: the whole match is replaced."""
    return _Rule(kind, re.compile(f"(?P<secret>{body})"), _any)


def _token(kind: str, body: str) -> _Rule:
    """A token recognised by its prefix and alphabet, not starting inside a longer word."""
    return _shaped(kind, rf"{_WORD_START}(?:{body})")


def _in_context(kind: str, pattern: str, check: Callable[[re.Match[str]], bool]) -> _Rule:
    """A secret recognised by what precedes it (case-insensitively)."""
    return _Rule(kind, re.compile(pattern, re.IGNORECASE), check)


# A token does not start inside a longer word (base64 text, an identifier such as hf_hub_x),
# nor right after a marker: a replacement never lets a new token start, so passes stay few.
_WORD_START = r"(?<![A-Za-z0-9_\]-])"
_PEM_LABEL = r"(?:[A-Z0-9]{1,16} ){0,3}PRIVATE KEY(?: BLOCK)?"
_PEM_BEGIN = rf"-----BEGIN {_PEM_LABEL}-----"
# Anything but a run of five dashes, so a block never reaches past the next armour line.
_PEM_BODY = r"(?:[^-]|-(?!----)){0,65536}"
_B64_LINES = r"(?:\s{1,8}[A-Za-z0-9+/=]{16,128}){1,1024}"
# Key names that end in one of these words hold secrets (DB_PASSWORD, GITHUB_TOKEN, apiKey).
_SECRET_WORD = (r"(?:passw(?:or)?d|passphrase|secret(?:[_-]?key)?|token|api[_-]?key"
                r"|access[_-]?key|private[_-]?key)")
_AWS_SECRET_NAME = r"(?:(?:aws[_-]?)?secret[_-]?access[_-]?key|aws[_-]?secret[_-]?key)"
_ASSIGNS = r"[\"']?[ \t]{0,4}(?::=|=>|[:=])[ \t]{0,4}"

# Order matters: whole blocks first, then shapes, then context, so that a token inside an
# assignment or a URL is named by its shape and the later rule sees a marker and skips it.
_RULES: tuple[_Rule, ...] = (
    _shaped("private-key", rf"{_PEM_BEGIN}{_PEM_BODY}-----END {_PEM_LABEL}-----"),
    _shaped("private-key", _PEM_BEGIN + _B64_LINES),  # a key cut off before its END line
    _token("aws-access-key", r"(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}"),
    _token("github-token", r"gh[pousr]_[A-Za-z0-9]{36,251}|github_pat_[A-Za-z0-9_]{22,244}"),
    _token("gitlab-token", r"glpat-[A-Za-z0-9_-]{20,249}"),
    _token("slack-token", r"xox[abprs]-[A-Za-z0-9-]{10,250}"),
    _Rule("slack-webhook", re.compile(
        r"hooks\.slack\.com/(?:services|workflows|triggers)/(?P<secret>[A-Za-z0-9_/-]{8,255})"),
        _any),
    _token("stripe-key", r"[rs]k_(?:live|test)_[A-Za-z0-9]{16,247}"),
    _token("anthropic-key", r"sk-ant-[A-Za-z0-9_-]{20,249}"),
    _token("openai-key",
           r"sk-(?:(?:proj|svcacct|admin)-[A-Za-z0-9_-]{20,245}|[A-Za-z0-9]{32,252})"),
    _token("google-api-key", r"AIza[A-Za-z0-9_-]{35}"),
    _token("huggingface-token", r"hf_[A-Za-z0-9]{30,253}"),
    _token("npm-token", r"npm_[A-Za-z0-9]{36,252}"),
    _token("jwt", r"eyJ[A-Za-z0-9_-]{4,4096}\.eyJ[A-Za-z0-9_-]{4,8192}\.[A-Za-z0-9_-]{0,4096}"),
    _in_context("authorization",
                r"authorization[\"']?[ \t]{0,4}[:=][ \t]{0,4}[\"']?(?:bearer|basic|token)"
                r"[ \t]{1,4}(?P<secret>[A-Za-z0-9._~+/=-]{4,4096})", _real_value),
    # scheme://user:password@host; the password may hold '@' and ':', so it runs to the last '@'.
    _in_context("url-password",
                r"://[^\s:/?#@\[\]]{0,128}:(?P<secret>[^\s/?#\[\]]{1,256})@", _real_value),
    _in_context("aws-secret-key",
                rf"{_AWS_SECRET_NAME}{_ASSIGNS}[\"']?"
                r"(?P<secret>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])", _any),
    _in_context("secret-assignment",
                rf"{_SECRET_WORD}{_ASSIGNS}(?P<quote>[\"'])"
                r"(?P<secret>(?:(?!(?P=quote))[^\n]){1,512})(?P=quote)", _assigned_value),
    # Unquoted values end at a delimiter, so a connection string or query keeps its next field;
    # a leading ':' or '=' is a path (token::Kind) or a comparison, not a value.
    _in_context("secret-assignment",
                rf"{_SECRET_WORD}{_ASSIGNS}(?P<secret>(?![:=])[^\s\"'`,;&()\[\]{{}}<>]{{1,256}})",
                _assigned_literal),
)

KINDS: tuple[str, ...] = tuple(dict.fromkeys(rule.kind for rule in _RULES))
"""Every kind of secret ``redact`` recognises, in the order its rules run."""
