"""What makes a candidate value a secret: the checks that context rules (``secret_rules``) apply.

A context rule finds a value where a secret would be (after ``password=``, ``--token``, "the
password is"); its check then keeps values that only stand in for a secret (a mask, an elision,
a reference or template, a stock word), values that are code (``token = settings.TOKEN``),
values that are public by design (hashes, digests, UUIDs, paths, publishable keys), and values
that name a secret rather than hold it (a dependency's version, a field name such as
``refresh_token``, Helm's ``existingSecret: name``). Prose and keyword rules also want the value
to look like a secret: digits or symbols for a password, a long random string (letters and
digits, high entropy, not a slug of words) for a key.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

MIN_ASSIGNED = 4
_MIN_RANDOM = 16
_MIN_STRONG = 8
_MIN_ENTROPY = 3.5  # bits per character; random base64 of 20+ characters has over 4
_PLACEHOLDER_WORDS = frozenset({
    "changeme", "password", "passwd", "pass", "secret", "token", "apikey", "example", "dummy",
    "placeholder", "redacted", "none", "null", "nil", "true", "false", "undefined", "todo",
    "fixme",
})
# A whole-value mask, one repeated character or an elided stem (sk-...), a stem masked from
# there on (ghp_xxxx, AKIAXXXX, sk-proj-****), or the start of a reference or template.
_STAND_IN = re.compile(
    r"(.)\1*$|[*xX•.#_-]+$|[A-Za-z0-9_.-]{0,12}(?:\.\.\.|…)$|\$[{(A-Za-z_]|%[A-Za-z_]+%$|[<{]"
    r"|[A-Za-z0-9_.-]{0,12}(?:x{4,}|X{4,}|\*{4,}|•{4,})"
    # a vendor stem, then placeholder words (xoxb-your-token, sk_test_replace_me)
    r"|[A-Za-z0-9]{1,12}[_-](?:[A-Za-z0-9]{1,12}[_-])?"
    r"(?i:your|replace|insert|enter|example|dummy|fake|placeholder|changeme)")
# api_key, settings.API_KEY, session?.user?.token (optional chaining): no digits
_NAME = re.compile(r"[A-Za-z_]+(?:[?!]?\.[A-Za-z_]+)*")
_CALLEE = re.compile(  # sha256, base64.b64decode, headers.authorization?.split: before ( or [
    r"[A-Za-z_][A-Za-z0-9_]*(?:[?!]?\.[A-Za-z_][A-Za-z0-9_]*)*")
# Request, environment and object members, whatever they are called (process.env.KEY2).
_CODE_START = re.compile(
    r"(?:process\.env|import\.meta\.env|os\.environ|req|res|request|ctx|self|this|props)[?!]?\.")
# Values that are public by design: hashes, digests, ids, paths, public keys.
_HASH_LIKE = re.compile(
    r"(?:sha\d{1,3}|md5|blake2b?|xxh\d*|h\d)[-:~=]|[0-9a-f]{7,}$|[0-9A-F]{7,}$"
    r"|[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}|[/~]|\.{0,2}/|AAAA", re.IGNORECASE)
_HASH_BEFORE = re.compile(r"(?:sha\d{1,3}|md5|blake2b?|ssh-\w+)[-:~, ]\s?$|base64,$|@$",
                          re.IGNORECASE)
# Public by design: publishable keys, age recipients, DER public keys in base64 (RSA, EC,
# Ed25519); and whatever follows "public key".
_PUBLIC = re.compile(
    r"pk_(?:live|test)_|pk\.|age1[a-z0-9]{58}$|MII[BC]IjAN|MFkwEwYHKoZIzj0|MCowBQYDK2V[wx]")
_PUBLIC_BEFORE = re.compile(r"public[ _-]?key\S{0,2}\s{0,2}$", re.IGNORECASE)
_HEX_KEY = re.compile(r"[0-9a-fA-F]{32,128}")
_SECRET_KIND = re.compile(r"^kind:[ \t]*[\"']?Secret[\"']?[ \t]*$", re.MULTILINE)
_TOP_LEVEL_KEY = re.compile(r"^([A-Za-z]\w*):", re.MULTILINE)
# Key names that end in one of these words hold secrets (DB_PASSWORD, GITHUB_TOKEN, apiKey).
_SECRET_NAME = re.compile(
    r"(?:passw(?:or)?d|passphrase|(?<![a-z])(?:pwd|pw|pass|_auth)"
    r"|secret(?:[_-]?key(?:[_-]?base)?)?|token|api[_-]?key|access[_-]?key"
    r"|private[_-]?key|account[_-]?key"
    r"|(?:app|encryption|signing|master|shared[_-]?access|hmac|session|jwt|cookie|aes"
    r"|cipher|crypto|client|license|service|admin|auth|webhook|deploy)[_-]?key)$", re.IGNORECASE)
_SEPARATORS = re.compile(r"[-_./]")
# Key names that say what a key indexes, or that it is public (CACHE_KEY, RSA_PUB_KEY).
_NOT_SECRET_KEY_NAME = re.compile(
    r"(?:cache|idempotency|partition|sort|primary|foreign|object|routing|dedup|lookup|cursor"
    r"|row|hash|range|map|dict|pub|public|site|verify|verifying)[_-]?key$", re.IGNORECASE)
_KEY_NAME = re.compile(r"[\w.-]key$", re.IGNORECASE)  # STORAGE_KEY, signerKey: not key alone
_BASE64 = re.compile(r"[A-Za-z0-9+/_-]{20,1024}={0,2}")
# What names a digest, not a secret, right before a value ("Cache key: v3-deps-<hex>").
_DIGEST_BEFORE = re.compile(
    r"(?:cache|checksum|digest|hash|fingerprint|etag)(?:[ _-]?keys?)?[\"']?\s{0,2}"
    r"(?:[:=]|is)?\s{0,2}[\"'`]?$", re.IGNORECASE)
# A phrase that says the value is a commit, a digest or a fingerprint.
_DIGEST_WORD = re.compile(
    r"commit|\bsha(?:-?\d|\b)|\bhash(?:es|ed)?\b|digest|checksum|fingerprint|\bcache|revision"
    r"|\b[gp]pg\b", re.IGNORECASE)
_PORT_THEN_MORE = re.compile(r"\d{1,5}(?:[/?#]|$)")
_VERSION = re.compile(r"v?\d{1,4}(?:\.\d{1,4}){1,3}(?:[-+][\w.]{1,40})?$", re.IGNORECASE)
# Ids, times and quantities: ULIDs and prefixed object ids (req_, msg_), dates, numbers.
_ID_LIKE = re.compile(r"(?:[a-z]{2,8}_)?[0-9A-HJKMNP-TV-Z]{26}$|(?:req|msg|evt|cus|ch|pi|in|sub"
                      r"|usr|user|org|run|job|txn|ord|acct|prod|price)_[A-Za-z0-9]{8,}$")
# A dependency's version or range, alone or after its name (``^1.2.3``, ``jjwt-api:0.12.6``).
_DEPENDENCY = re.compile(
    r"(?:[\w.-]{1,100}[:@])?[\^~<>=]{0,2}v?\d{1,4}(?:\.[\dx*]{1,4}){1,3}(?:[-+][\w.]{1,40})?$")
# Lower-case words joined by separators: a field name (``refresh_token``), not its value.
_FIELD_NAME = re.compile(r"[a-z]{2,20}(?:[_.-][a-z]{2,20}){1,4}")
# A key name that says its value names a secret held elsewhere (Helm's existingSecret).
_REFERENCE_NAME = re.compile(r"existing", re.IGNORECASE)
# The start of a setting, ``id=x,src=y``: a name in one case, then '='.
_SETTING = re.compile(r"(?:[a-z][a-z0-9_.-]{0,30}|[A-Z][A-Z0-9_.-]{0,30})=")
# A markdown table's rule line, under its header (``|---|:--:|``).
_TABLE_RULE = re.compile(r"\|?(?:[ \t]*:?-{3,}:?[ \t]*\|)+(?:[ \t]*:?-{3,}:?[ \t]*)?")
_TABLE_ROWS = 200  # how many rows above a cell its table's header is looked for
_PASSWORD_COLUMN = re.compile(r"(?:pass(?:word|wd|phrase)?|pwd|pw)s?", re.IGNORECASE)
_KEY_COLUMN = re.compile(
    r"(?:(?:api|access|secret|private|client)[ _-]?)?(?:keys?|tokens?|secrets?)", re.IGNORECASE)
_NOT_LITERAL = re.compile(r"\d{4}-\d\d-\d\d|\d{1,12}(?:\.\d{1,6})?(?:ms|s|m|h|d|[kmg]i?b|%)?$")


@dataclass(frozen=True, slots=True)
class Rule:
    """One kind of secret: the pattern whose ``secret`` group is replaced by the marker, the
    check that a candidate really is a secret, and the words one of which every match holds
    (lower case; the rule is skipped on text without any, which is most text)."""

    kind: str
    pattern: re.Pattern[str]
    check: Callable[[re.Match[str]], bool]
    gate: tuple[str, ...] = ()


def is_placeholder(value: str) -> bool:
    """Whether a value stands in for a secret: a mask, an elision, a reference, a stock word."""
    word = value.lower().replace("_", "").replace("-", "")
    return (_STAND_IN.match(value) is not None or word in _PLACEHOLDER_WORDS
            or word.startswith(("your", "replace")))


def entropy(value: str) -> float:
    """Shannon entropy of ``value`` in bits per character."""
    counts = Counter(value).values()
    return -sum(n / len(value) * math.log2(n / len(value)) for n in counts)


def all_of(*checks: Callable[[re.Match[str]], bool]) -> Callable[[re.Match[str]], bool]:
    """A check that passes when every one of ``checks`` does."""
    return lambda match: all(check(match) for check in checks)


def any_of(*checks: Callable[[re.Match[str]], bool]) -> Callable[[re.Match[str]], bool]:
    """A check that passes when one of ``checks`` does."""
    return lambda match: any(check(match) for check in checks)


def secret_name(match: re.Match[str]) -> bool:
    """The key name (group ``name``) ends in a secret word (DB_PASSWORD, apiKey, X-Auth-Token)
    and does not say the value names a secret held elsewhere (existingSecret)."""
    name = match["name"]
    return _SECRET_NAME.search(name) is not None and _REFERENCE_NAME.match(name) is None


def random_under_key_name(match: re.Match[str]) -> bool:
    """A key name ending in "key" (AZURE_STORAGE_KEY, signerKey) holding random base64, unless
    the name says what the key indexes or that it is public (CACHE_KEY, RECAPTCHA_SITE_KEY)."""
    name = match["name"]
    return (_KEY_NAME.search(name) is not None and _NOT_SECRET_KEY_NAME.search(name) is None
            and _BASE64.fullmatch(match["secret"]) is not None and random_like(match))


def any_match(_match: re.Match[str]) -> bool:
    """Rules whose context is proof enough: every match is a secret."""
    return True


def real_value(match: re.Match[str]) -> bool:
    """The value is a secret unless it is a placeholder."""
    return not is_placeholder(match["secret"])


def real_segments(match: re.Match[str]) -> bool:
    """A path of secret segments, none a placeholder (``services/XXX/YYY/ZZZ``)."""
    return not any(is_placeholder(part) for part in match["secret"].split("/") if part)


def url_password(match: re.Match[str]) -> bool:
    """A URL's password, not the port and path of a URL whose path or query holds an '@'."""
    return _PORT_THEN_MORE.match(match["secret"]) is None and real_value(match)


def assigned_value(match: re.Match[str]) -> bool:
    """Quoted assignments: a non-trivial value that is not a placeholder, a dependency's version
    (``"jsonwebtoken": "^9.0.2"``) or a field name (``REFRESH_TOKEN = "refresh_token"``)."""
    value = match["secret"]
    return (len(value) >= MIN_ASSIGNED and real_value(match)
            and _DEPENDENCY.match(value) is None
            and not (_FIELD_NAME.fullmatch(value) and _SECRET_NAME.search(value)))


def assigned_literal(match: re.Match[str]) -> bool:
    """Unquoted assignments: as quoted, and not code, nor a path."""
    value = match["secret"]
    return (not _is_code(match) and not value.startswith(("/", "./", "~/"))
            and _NOT_LITERAL.match(value) is None and assigned_value(match))


def password_like(match: re.Match[str]) -> bool:
    """Prose and flags: a value with a digit or a symbol (one word alone is ambiguous), not
    code, a hash, a version, a date or a list of settings (``--secret id=x,src=y``)."""
    value = match["secret"]
    return (assigned_value(match) and not value.isalpha() and not value.isdigit()
            and _SETTING.match(value) is None and not _is_code(match)
            and _HASH_LIKE.match(value) is None and _VERSION.match(value) is None
            and _NOT_LITERAL.match(value) is None)


def worded_secret(match: re.Match[str]) -> bool:
    """Prose about a key, token or secret: a strong password, not words joined by dashes
    (``restore-keys: Linux-node-modules-Release2024``)."""
    return (strong_password(match) and password_like(match)
            and not _is_slug(match["secret"]))


def strong_password(match: re.Match[str]) -> bool:
    """Without a verb before it, a password needs 8+ characters with upper, lower and digits."""
    value = match["secret"]
    return (len(value) >= _MIN_STRONG and any(c.isupper() for c in value)
            and any(c.islower() for c in value) and any(c.isdigit() for c in value))


def random_like(match: re.Match[str]) -> bool:
    """Keyword context: a long random string of letters and digits, not a hash nor a slug."""
    value = match["secret"]
    before = match.string[max(0, match.start("secret") - 24):match.start("secret")]
    return (len(value) >= _MIN_RANDOM and any(c.isalpha() for c in value)
            and any(c.isdigit() for c in value) and entropy(value) >= _MIN_ENTROPY
            and _HASH_LIKE.match(value) is None and _HASH_BEFORE.search(before[-16:]) is None
            and _DIGEST_BEFORE.search(before) is None
            and _PUBLIC.match(value) is None and _PUBLIC_BEFORE.search(before) is None
            and _ID_LIKE.match(value) is None and "=" not in value.rstrip("=")
            and not _is_slug(value)
            and not is_placeholder(value))


def key_like(match: re.Match[str]) -> bool:
    """Prose about a key: random-looking, or long hex where the phrase names no commit, digest
    or fingerprint (40 and 64 hex digits are those lengths)."""
    phrase = match.string[max(0, match.start() - 24):match.start("secret")]
    if _DIGEST_WORD.search(phrase) is not None:
        return False
    return _HEX_KEY.fullmatch(match["secret"]) is not None or random_like(match)


def in_secret_manifest(match: re.Match[str]) -> bool:
    """An entry under ``data:`` or ``stringData:`` in a YAML document of ``kind: Secret``."""
    text, start = match.string, match.start()
    doc_start = text.rfind("\n---", 0, start) + 1
    doc_end = text.find("\n---", start)
    document = text[doc_start:doc_end if doc_end >= 0 else len(text)]
    sections: list[str] = _TOP_LEVEL_KEY.findall(text, doc_start, start)
    return (_SECRET_KIND.search(document) is not None and bool(sections)
            and sections[-1] in ("data", "stringData") and real_value(match))


def in_secret_column(match: re.Match[str]) -> bool:
    """A cell of a markdown table whose column is headed by a secret word: a password column
    holds a password (``password_like``), a key, token or secret column a random string."""
    text, start = match.string, match.start()
    row_start = text.rfind("\n", 0, start) + 1
    header = _table_header(text, row_start)
    column = text.count("|", row_start, start)
    title = header[column].strip() if header and column < len(header) else ""
    if _PASSWORD_COLUMN.fullmatch(title):
        return password_like(match)
    return _KEY_COLUMN.fullmatch(title) is not None and random_like(match)


def _table_header(text: str, row_start: int) -> list[str] | None:
    """The header cells of the markdown table whose body holds the row at ``row_start``; None
    when that row is not in a table's body (it is prose, a header or the rule under one)."""
    lines: list[str] = []  # the row, then each line above it while it is a table row
    start, end = row_start, text.find("\n", row_start)
    end = len(text) if end < 0 else end
    while len(lines) <= _TABLE_ROWS:
        line = text[start:end].strip()
        if not line.startswith("|"):
            break
        lines.append(line)
        if start == 0:
            break
        end = start - 1
        start = text.rfind("\n", 0, end) + 1
    if len(lines) < 3 or _TABLE_RULE.fullmatch(lines[-2]) is None:
        return None
    return lines[-1].strip("|").split("|")


def _is_slug(value: str) -> bool:
    """Whether a value is words joined by separators (``v2-npm-deps-Linux-9f8e7d``, a path)."""
    words = [part for part in _SEPARATORS.split(value) if len(part) >= 3]
    return len([part for part in words if part.isalpha() and part.islower()]) >= 2


def _is_code(match: re.Match[str]) -> bool:
    """Whether an unquoted value is a name, an attribute path (``a?.b`` too), a member of a
    request or the environment, or a callee or subscripted name."""
    value, following = match["secret"], match.string[match.end():match.end() + 1]
    return (_NAME.fullmatch(value) is not None or _CODE_START.match(value) is not None
            or (following in ("(", "[") and _CALLEE.fullmatch(value) is not None))
