"""Secrets known by their context: what precedes a value says it is one (the table ``RULES``).

A rule's pattern has a ``secret`` group, the span replaced; the rest of the match is context
that is kept (a URL's user and host, an assignment's key name, a header's scheme). Its check
decides whether a candidate is a secret at all: context rules keep a value that only stands in
for one (a mask, an elision, a reference or template, a stock word, see ``is_placeholder``) and
values that are code (``token = settings.TOKEN``, ``os.environ[...]``). Prose and keyword rules
also want the value to look like a secret (digits or symbols for a password, a long high-entropy
string for a key), and never take a hash: commit ids, digests, integrity strings, fingerprints.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

_MIN_ASSIGNED = 4
_MIN_ENTROPY = 3.5  # bits per character; random base64 of 20+ characters has over 4
_PLACEHOLDER_WORDS = frozenset({
    "changeme", "password", "passwd", "pass", "secret", "token", "apikey", "example", "dummy",
    "placeholder", "redacted", "none", "null", "nil", "true", "false", "undefined", "todo",
    "fixme",
})
# A whole-value mask, one repeated character or an elided stem (sk-...), or the start of a
# reference or template.
_STAND_IN = re.compile(
    r"(.)\1*$|[*xX•.#_-]+$|[A-Za-z0-9_.-]{0,12}(?:\.\.\.|…)$|\$[{(A-Za-z_]|%[A-Za-z_]+%$|[<{]"
    r"|[A-Za-z0-9_.-]{0,12}x{4,}")
_NAME = re.compile(r"[A-Za-z_]+(?:\.[A-Za-z_]+)*")  # api_key, settings.API_KEY: no digits
_CALLEE = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")  # sha256, base64.b64decode: before ( or [
# Values that are public by design: hashes, digests, ids, paths.
_HASH_LIKE = re.compile(
    r"(?:sha\d{1,3}|md5|blake2b?|xxh\d*|h\d)[-:~=]|[0-9a-f]{7,}$|[0-9A-F]{7,}$"
    r"|[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}|[/~]|\.{0,2}/|AAAA", re.IGNORECASE)
_PUBLIC = re.compile(r"pk_(?:live|test)_|pk\.")  # publishable keys are public by design
_HASH_BEFORE = re.compile(r"(?:sha\d{1,3}|md5|blake2b?|base64|SHA\d{1,3})[-:~,]\s?$|@$", re.I)


@dataclass(frozen=True, slots=True)
class Rule:
    """One kind of secret: the pattern whose ``secret`` group is replaced by the marker, and the
    check that a candidate really is a secret."""

    kind: str
    pattern: re.Pattern[str]
    check: Callable[[re.Match[str]], bool]
    gate: tuple[str, ...] = ()  # the rule runs only on text holding one of these (lower case)


def is_placeholder(value: str) -> bool:
    """Whether a value stands in for a secret: a mask, an elision, a reference, a stock word."""
    word = value.lower().replace("_", "").replace("-", "")
    return (_STAND_IN.match(value) is not None or word in _PLACEHOLDER_WORDS
            or word.startswith(("your", "replace")))


def entropy(value: str) -> float:
    """Shannon entropy of ``value`` in bits per character."""
    counts = Counter(value).values()
    return -sum(n / len(value) * math.log2(n / len(value)) for n in counts)


def _any(_match: re.Match[str]) -> bool:
    return True


def _real_value(match: re.Match[str]) -> bool:
    """Context rules: the value is a secret unless it is a placeholder."""
    return not is_placeholder(match["secret"])


def _assigned_value(match: re.Match[str]) -> bool:
    """Quoted assignments: a non-trivial value that is not a placeholder."""
    return len(match["secret"]) >= _MIN_ASSIGNED and _real_value(match)


def _assigned_literal(match: re.Match[str]) -> bool:
    """Unquoted assignments: as quoted, and not code, nor a path."""
    return (not _is_code(match) and not match["secret"].startswith(("/", "./", "~/"))
            and _assigned_value(match))


def _is_code(match: re.Match[str]) -> bool:
    """Whether an unquoted value is a name, an attribute path, or a callee or subscripted name."""
    value, following = match["secret"], match.string[match.end():match.end() + 1]
    return (_NAME.fullmatch(value) is not None
            or (following in ("(", "[") and _CALLEE.fullmatch(value) is not None))


def _password_like(match: re.Match[str]) -> bool:
    """Prose and flags: a value with a digit or a symbol (one word alone is ambiguous)."""
    value = match["secret"]
    return (_assigned_value(match) and not value.isalpha() and not value.isdigit()
            and not _is_code(match) and _HASH_LIKE.match(value) is None)


def _random_like(match: re.Match[str]) -> bool:
    """Keyword context: a long string of high entropy with upper, lower and digits, no hash."""
    value, before = match["secret"], match.string[max(0, match.start("secret") - 12):
                                                  match.start("secret")]
    return (any(c.isupper() for c in value) and any(c.islower() for c in value)
            and any(c.isdigit() for c in value) and entropy(value) >= _MIN_ENTROPY
            and _HASH_LIKE.match(value) is None and _HASH_BEFORE.search(before) is None
            and not is_placeholder(value) and _PUBLIC.match(value) is None)


def _key_like(match: re.Match[str]) -> bool:
    """Prose about a key: random-looking, or long hex that is not a commit id or a digest."""
    value = match["secret"]
    hex_key = re.fullmatch(r"[0-9a-fA-F]{32,128}", value) is not None and len(value) not in (40, 64)
    return hex_key or _random_like(match)


def _rule(kind: str, pattern: str, check: Callable[[re.Match[str]], bool] = _any) -> Rule:
    """A context rule, gated on the literal words that every match of ``pattern`` holds."""
    return Rule(kind, re.compile(pattern, re.IGNORECASE), check, _gate(kind))


_SECRET_WORDS = ("pass", "pwd", "secret", "token", "key")
_GATES = {
    "slack-webhook": ("hooks.slack",), "teams-webhook": ("webhookb2",),
    "authorization": ("authorization",), "url-password": ("://",),
    "aws-secret-key": ("secret",), "secret-assignment": _SECRET_WORDS,
    "password-flag": ("-p", "-u", "--", "auth"), "sidekiq-secret": ("contribsys",),
    "pgpass-password": (":",), "password-prose": ("pass", "pwd", "pin"),
    "key-prose": ("key", "token", "secret"),
    "high-entropy-secret": (*_SECRET_WORDS, "credential", "auth", "signature"),
}


def _gate(kind: str) -> tuple[str, ...]:
    return _GATES[kind]


_PEM_LABEL = r"(?:[A-Z0-9]{1,16} ){0,3}PRIVATE KEY(?: BLOCK)?"
_PEM_BEGIN = rf"-----BEGIN {_PEM_LABEL}-----"
# Anything but a run of five dashes, so a block never reaches past the next armour line.
_PEM_BODY = r"(?:[^-]|-(?!----)){0,65536}"
_B64_LINES = r"(?:\s{1,8}[A-Za-z0-9+/=]{16,128}){1,1024}"
# Key names that end in one of these words hold secrets (DB_PASSWORD, GITHUB_TOKEN, apiKey).
_SECRET_WORD = (r"(?:passw(?:or)?d|passphrase|(?<![a-z])pwd|secret(?:[_-]?key(?:[_-]?base)?)?"
                r"|token|api[_-]?key|access[_-]?key|private[_-]?key|account[_-]?key"
                r"|(?:app|encryption|signing|master|shared[_-]?access)[_-]?key)")
_AWS_SECRET_NAME = r"(?:(?:aws[ _-]?)?secret[ _-]?access[ _-]?key|aws[_-]?secret[_-]?key)"
_ASSIGNS = r"[\"']?[ \t]{0,4}(?::=|=>|[:=])[ \t]{0,4}"
_UNQUOTED = r"(?P<secret>(?![:=])[^\s\"'`,;&()\[\]{}<>]{1,256})"
_FLAG_VALUE = r"[\"']?(?P<secret>[^\s\"'`]{1,256})"

# Order matters: whole blocks first, then context; shapes (secret_shapes) run before these, so a
# token inside an assignment or a URL is named by its shape and a later rule sees a marker.
BLOCKS: tuple[Rule, ...] = (
    Rule("private-key", re.compile(
        rf"(?P<secret>{_PEM_BEGIN}{_PEM_BODY}-----END {_PEM_LABEL}-----)"), _any),
    Rule("private-key", re.compile(rf"(?P<secret>{_PEM_BEGIN}{_B64_LINES})"), _any),
)
RULES: tuple[Rule, ...] = (
    _rule("slack-webhook",
          r"hooks\.slack\.com/(?:services|workflows|triggers)/(?P<secret>[A-Za-z0-9_/-]{8,255})"),
    _rule("teams-webhook", r"webhook\.office\.com/webhookb2/(?P<secret>[\w@/-]{20,300})"),
    _rule("authorization",
          r"authorization[\"']?[ \t]{0,4}[:=][ \t]{0,4}[\"']?(?:bearer|basic|token)"
          r"[ \t]{1,4}(?P<secret>[A-Za-z0-9._~+/=-]{4,4096})", _real_value),
    # scheme://user:password@host; the password may hold '@' and ':', so it runs to the last '@'.
    _rule("url-password",
          r"://[^\s:/?#@\[\]]{0,128}:(?P<secret>[^\s/?#\[\]]{1,256})@", _real_value),
    _rule("aws-secret-key",
          rf"{_AWS_SECRET_NAME}(?:[ \t]id)?{_ASSIGNS}[\"']?"
          r"(?P<secret>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])"),
    _rule("secret-assignment",
          rf"{_SECRET_WORD}{_ASSIGNS}(?P<quote>[\"'])"
          r"(?P<secret>(?:(?!(?P=quote))[^\n]){1,512})(?P=quote)", _assigned_value),
    # Unquoted values end at a delimiter, so a connection string or query keeps its next field;
    # a leading ':' or '=' is a path (token::Kind) or a comparison, not a value.
    _rule("secret-assignment", rf"{_SECRET_WORD}{_ASSIGNS}{_UNQUOTED}", _assigned_literal),
    _rule("secret-assignment",  # <add key="ClearTextPassword" value="..."/>
          r"key=\"[^\"\n]{0,64}(?:passw|secret|token|api_?key)[^\"\n]{0,64}\"\s{1,8}"
          r"value=\"(?P<secret>[^\"\n]{1,512})\"", _assigned_value),
    _rule("password-flag",
          r"(?<![\w-])--?(?:password|passwd|pass|token|api-?key|secret|client-secret"
          rf"|auth-token|access-token)(?:=|[ \t]{{1,4}}){_FLAG_VALUE}", _password_like),
    _rule("password-flag",  # mysql -pSECRET: only attached, `-p db` prompts
          r"\b(?:mysql|mysqldump|mysqladmin|mariadb(?:-dump)?)\b[^\n|;&]{0,200}?[ \t]-p"
          r"[\"']?(?P<secret>[^\s\"'`]{1,256})", _real_value),
    _rule("password-flag",
          r"\b(?:sshpass|twine|docker|podman|helm|skopeo|buildah)\b[^\n|;&]{0,200}?[ \t]-p"
          rf"[ \t]{{0,4}}{_FLAG_VALUE}", _real_value),
    _rule("password-flag",
          r"\b(?:curl|wget|http)\b[^\n|;&]{0,300}?[ \t](?:-u|--user)(?:=|[ \t]{0,4})[\"']?"
          r"[^\s:\"']{1,128}:(?P<secret>[^\s\"']{1,256})", _real_value),
    _rule("password-flag",  # requests.get(url, auth=("user", "password"))
          r"auth[ \t]{0,4}=[ \t]{0,4}\([ \t]{0,4}[\"'][^\"'\n]{0,128}[\"'][ \t]{0,4},[ \t]{0,4}"
          r"[\"'](?P<secret>[^\"'\n]{1,256})[\"']", _assigned_value),
    _rule("sidekiq-secret",
          r"BUNDLE_(?:ENTERPRISE|GEMS)__CONTRIBSYS__COM[\"']?[ \t]{0,4}[:=][ \t]{0,4}[\"']?"
          r"(?P<secret>[a-f0-9]{8}:[a-f0-9]{8})"),
    _rule("pgpass-password",  # host:port:database:user:password
          r"(?<![\w.:-])[\w.-]{1,128}:\d{2,5}:[\w*.-]{1,128}:[\w*.-]{1,128}:"
          r"(?P<secret>[^\s:]{4,256})", _real_value),
    _rule("password-prose",
          r"\b(?:password|passwd|passphrase|pwd|passcode|pin)(?:[ \t][a-z]{1,12}){0,3}?"
          r"[ \t]{0,2}(?:is|was|=|:|to|of)[ \t]{1,4}(?:now[ \t]|set[ \t]to[ \t])?[\"'`]?"
          r"(?P<secret>[^\s\"'`]{1,128}?)[\"'`]?(?=[.,;:!?)]?(?:\s|$))", _password_like),
    _rule("key-prose",
          r"\b(?:api[ _-]?key|token|secret|access[ _-]?key|auth[ _-]?key|license[ _-]?key)"
          r"(?:[ \t][a-z]{1,12}){0,3}?[ \t]{0,2}(?:is|was|=|:)[ \t]{1,4}[\"'`]?"
          r"(?P<secret>[\w.+/=~-]{16,512}?)[\"'`]?(?=[.,;:!?)]?(?:\s|$))", _key_like),
    _rule("high-entropy-secret",
          r"(?:key|secret|token|passw|pwd|credential|auth|signature)[^\n]{0,80}?"
          r"(?<![\w+/=.-])(?P<secret>[A-Za-z0-9+/_-]{20,1024}={0,2})(?![\w+/=.-])", _random_like),
)
