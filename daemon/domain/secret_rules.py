"""Secrets known by their context: what surrounds a value says it is one (``BLOCKS``, ``RULES``).

A rule's pattern has a ``secret`` group, the span replaced; the rest of the match is context
that is kept (a URL's user and host, an assignment's key name, a flag, a header's scheme). Its
check (``secret_checks``) decides whether the candidate is a secret at all. Every rule also names
the words one of which any match holds, so most text skips most rules. Patterns are compiled
case-insensitively; every repetition is bounded, so a pass is linear in the text.

Kinds: assignments (``KEY=v``, ``key: v``, ``"key": "v"``, ``key := v``, ``$key = 'v'``,
``environ["KEY"] = "v"``, ``api_key: str = "v"``, ``set("password", "v")``, ``ENV KEY v``,
``<password>v</password>``, ``<add key="Password" value="v"/>``, ``Pwd={v}``, aligned columns)
whose key name ends in a secret word; URL passwords, webhook tokens and secret query parameters;
crypt(3) and argon2 password hashes; ``Authorization`` headers; CLI flags (``--password v``,
``mysql -pv``, ``sshpass -p v``, ``curl -u user:v``, ``redis-cli -a v``, ``htpasswd -b f user
v``, ``htpasswd -nb user v``, ``smbclient -U user%v``); basic-auth calls; ``.netrc`` and
``.pgpass`` lines; markdown table cells under a secret column; prose ("my password for the
admin panel is v", "das Passwort ist v", "パスワードは v", "user ops, pass v", "the api key:
v", "clé secrète : v", "the shared secret for x is 'v'", "login for x is admin / v").
"""

from __future__ import annotations

import re
from collections.abc import Callable

from memlane.daemon.domain.secret_checks import (
    Rule,
    all_of,
    any_match,
    any_of,
    assigned_literal,
    assigned_value,
    in_secret_column,
    in_secret_manifest,
    key_like,
    password_like,
    random_like,
    random_under_key_name,
    real_segments,
    real_value,
    secret_name,
    strong_password,
    url_password,
    worded_secret,
)


def _rule(kind: str, gate: tuple[str, ...], pattern: str,
          check: Callable[[re.Match[str]], bool] = any_match) -> Rule:
    return Rule(kind, re.compile(pattern, re.IGNORECASE), check, gate)


_PEM_LABEL = r"(?:[A-Z0-9]{1,16} ){0,3}PRIVATE KEY(?: BLOCK)?"
_PEM_BEGIN = rf"-----BEGIN {_PEM_LABEL}-----"
# Anything but a run of five dashes, so a block never reaches past the next armour line.
_PEM_BODY = r"(?:[^-]|-(?!----)){0,65536}"
_B64_LINES = r"(?:\s{1,8}[A-Za-z0-9+/=]{16,128}){1,1024}"
_SECRET_GATE = ("pass", "pw", "secret", "token", "key", "auth")
# English, then German, French, Spanish, Portuguese, Dutch and Russian; and their verbs for "is".
_PASSWORD_WORD = (r"(?:password|passwd|passphrase|passcode|pwd|pw|pin"
                  r"|passwort|kennwort|mot de passe|contraseña|senha|wachtwoord|пароль)")
_FOREIGN_GATE = ("kennwort", "contraseña", "senha", "wachtwoord", "пароль")
# Japanese, Chinese and Korean: words run together, so no word boundary; then a particle.
_CJK_PASSWORD = ("パスワード", "密码", "密碼", "口令", "비밀번호", "암호")
# Key and secret words in French, Spanish, Portuguese, Italian, German and Dutch; gated by
# their accents where they have one (a gate word of one character costs next to nothing).
_FOREIGN_KEY = r"clé|clave|chave|chiave|schlüssel|sleutel|secrète|geheim"
_FOREIGN_KEY_GATE = ("é", "è", "ü", "clave", "chave", "chiave", "sleutel", "geheim")
_IS = r"(?:\b(?:is|was|are|were|be|to|of|became|ist|lautet|war|est|es|era|é|è)|:|=|->)"
# A key name: it holds a secret when it ends in a secret word (checks.secret_name). Found by
# the assignment after it, so the pattern starts where text rarely matches.
_KEY = r"(?<![\w.-])(?P<name>[\w.-]{1,64})"
_AWS_SECRET_NAME = r"(?:(?:aws[ _-]?)?secret[ _-]?access[ _-]?key|aws[_-]?secret[_-]?key)"
# After the key name: an optional closing quote or subscript, an optional type annotation.
_ASSIGNS = (r"(?:[\"']\])?[\"']?[ \t]{0,24}"  # aligned columns pad with many spaces
            r"(?::=|=>|:[ \t]{0,4}[\w.\[\]|, ]{1,40}?[ \t]{0,4}=|[:=])[ \t]{0,24}")
_QUOTED = r"(?P<quote>[\"'])(?P<secret>(?:(?!(?P=quote))[^\n]){1,512})(?P=quote)"
# Unquoted values end at a delimiter, so a connection string or query keeps its next field
# (an '&' ends the value only where a parameter follows); a leading ':' or '=' is a path
# (token::Kind) or a comparison, not a value; a leading '?' is the message of a required
# variable (``${DB_PASSWORD:?set it}``).
_UNQUOTED = r"(?P<secret>(?![:=?])(?:[^\s\"'`,;&()\[\]{}<>]|&(?![\w.-]{1,64}=)){1,256})"
_FLAG_VALUE = r"[\"']?(?P<secret>[^\s\"'`]{1,256})"
# "the password for the staging admin panel is", "the token for CI, it has repo scope:"
_CLAUSE = r"(?:[ \t][^\s]{1,40}){0,6}?[ \t]{0,2}"
_LONG_CLAUSE = r"(?:[ \t][^\s]{1,40}){0,8}?[ \t]{0,2}"
_PROSE_VALUE = r"[\"'`]?(?P<secret>[^\s\"'`]{1,128}?)[\"'`]?(?=[.,;:!?)]?(?:\s|$))"
# After a label word: a ':' or '=', or spaces (not '-': ``--password-stdin`` is a flag).
_LABEL = r"(?:[ \t]{0,2}[:=][ \t]{0,4}|[ \t]{1,4})"
# A value with a digit or a symbol ahead: "password of the box is v" reads past "of the".
_SYMBOL_AHEAD = r"(?=[^\s]{0,130}?(?:\d|[^\w\s]))"
_UUID = r"[0-9a-f]{8}-(?:[0-9a-f]{4}-){3}[0-9a-f]{12}"
_CLI_START = r"[^\n|;&]{0,200}?[ \t]"  # the rest of one command, up to the flag

BLOCKS: tuple[Rule, ...] = (
    _rule("private-key", ("private key",),
          rf"(?P<secret>{_PEM_BEGIN}{_PEM_BODY}-----END {_PEM_LABEL}-----)"),
    _rule("private-key", ("private key",), rf"(?P<secret>{_PEM_BEGIN}{_B64_LINES})"),
    _rule("private-key", ("private-lines",),  # PuTTY .ppk
          r"Private-Lines:[ \t]{0,4}\d{1,4}\s{1,4}"
          r"(?P<secret>[A-Za-z0-9+/=]{4,128}(?:\s{1,4}[A-Za-z0-9+/=]{4,128}){0,255})"),
)
# Order matters: shapes (secret_shapes) run before these, so a token inside an assignment or a
# URL is named by its shape and a later rule sees a marker and skips it.
RULES: tuple[Rule, ...] = (
    _rule("slack-webhook", ("hooks.slack",),
          r"hooks\.slack\.com/(?:services|workflows|triggers)/(?P<secret>[A-Za-z0-9_/-]{8,255})",
          real_segments),
    # crypt(3) hashes (bcrypt, md5-crypt, apr1, sha-crypt, yescrypt) and argon2: crackable
    _rule("password-hash", ("$",),
          r"(?<![\w$])(?P<secret>\$(?:2[abxy]?\$\d\d\$[./A-Za-z0-9]{53}"
          r"|(?:1|5|6|apr1)\$(?:rounds=\d{1,9}\$)?[./A-Za-z0-9]{1,64}\$[./A-Za-z0-9]{16,128}"
          r"|y\$[./A-Za-z0-9]{1,16}\$[./A-Za-z0-9]{1,64}\$[./A-Za-z0-9]{16,128}"
          r"|argon2(?:id|i|d)\$v=\d{1,3}\$[\w=,]{1,64}\$[A-Za-z0-9+/]{8,128}"
          r"\$[A-Za-z0-9+/]{16,256}))"),
    _rule("webhook-token", ("webhook",),  # discord.com/api/webhooks/<id>/<token>
          r"/webhooks?/(?:\d{1,20}/)?(?P<secret>[\w-]{20,256})", random_like),
    _rule("teams-webhook", ("webhookb2",),
          r"webhook\.office\.com/webhookb2/(?P<secret>[\w@/-]{20,300})"),
    _rule("authorization", ("authorization",),
          r"authorization[\"']?[ \t]{0,4}[:=][ \t]{0,4}[\"']?(?:bearer|basic|token)"
          r"[ \t]{1,4}(?P<secret>[A-Za-z0-9._~+/=-]{4,4096})", real_value),
    # scheme://user:password@host; the password may hold any of '@:/#?*!' (unencoded), so it
    # runs to the last '@' before a space.
    _rule("url-password", ("://",),
          r"://[^\s:/?#@\[\]]{0,128}:(?P<secret>[^\s\[\]]{1,256})@", url_password),
    _rule("url-token", ("://",),  # https://<token>@host
          r"://(?P<secret>[A-Za-z0-9_-]{20,256})@", random_like),
    _rule("url-token", ("?", "&"),
          r"[?&](?:sig|signature|key|code|auth|access_token|token|apikey|api_key|client_secret"
          r"|secret|password|pwd)=(?P<secret>[^&\s#\"'<>]{16,1024})", random_like),
    _rule("aws-secret-key", ("secret",),
          rf"{_AWS_SECRET_NAME}(?:[ \t]id)?{_ASSIGNS}[\"']?"
          r"(?P<secret>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])"),
    _rule("heroku-key", ("heroku",),
          rf"heroku[^\n]{{0,40}}?(?<![\w-])(?P<secret>{_UUID})(?![\w-])"),
    _rule("sidekiq-secret", ("contribsys",),
          r"BUNDLE_(?:ENTERPRISE|GEMS)__CONTRIBSYS__COM[\"']?[ \t]{0,4}[:=][ \t]{0,4}[\"']?"
          r"(?P<secret>[a-f0-9]{8}:[a-f0-9]{8})"),
    _rule("secret-assignment", _SECRET_GATE, rf"{_KEY}{_ASSIGNS}{_QUOTED}",
          all_of(secret_name, assigned_value)),
    _rule("secret-assignment", _SECRET_GATE, rf"{_KEY}{_ASSIGNS}{_UNQUOTED}",
          any_of(all_of(secret_name, assigned_literal), random_under_key_name)),
    _rule("secret-assignment", _SECRET_GATE,  # ODBC: Pwd={va;ue}
          rf"{_KEY}[ \t]{{0,4}}=[ \t]{{0,4}}\{{(?P<secret>[^}}\n]{{1,256}})\}}",
          all_of(secret_name, assigned_value)),
    _rule("secret-assignment", _SECRET_GATE,  # set("password", "v"), setenv("API_KEY", "v")
          rf"{_KEY}[\"'][ \t]{{0,4}},[ \t]{{0,4}}{_QUOTED}", all_of(secret_name, assigned_value)),
    _rule("secret-assignment", _SECRET_GATE,  # ENV API_KEY v, set -x TOKEN v, setenv PASS v
          r"(?:\bset[ \t]{1,4}-[a-z]{1,3}|\bsetenv|\bENV|\bARG)[ \t]{1,4}(?P<name>\w{1,64})"
          rf"[ \t]{{1,4}}{_UNQUOTED}", all_of(secret_name, assigned_literal)),
    _rule("secret-assignment", _SECRET_GATE,  # <password>v</password>
          r"<(?P<name>[\w:.-]{1,64})>(?P<secret>[^<\n]{1,512})</",
          all_of(secret_name, assigned_value)),
    _rule("secret-assignment", _SECRET_GATE,  # <add key="ClearTextPassword" value="v"/>
          r"key=\"(?P<name>[^\"\n]{1,64})\"\s{1,8}value=\"(?P<secret>[^\"\n]{1,512})\"",
          all_of(secret_name, assigned_value)),
    _rule("secret-assignment", ("auth",),  # docker config.json: "auth": "base64(user:pass)"
          r"[\"']auth[\"'][ \t]{0,4}:[ \t]{0,4}[\"'](?P<secret>[A-Za-z0-9+/=]{8,1024})[\"']",
          random_like),
    _rule("password-flag", ("--", "-p", "-a"),  # --password v, --http-password=v, --token v
          r"(?<![\w-])--?(?:[a-z]{1,12}-){0,3}(?:password|passwd|pass|token|api-?key|secret"
          rf")(?:=|[ \t]{{1,4}})(?!-){_FLAG_VALUE}", password_like),
    _rule("password-flag", ("-p",),  # mysql -pSECRET: only attached, `-p db` prompts
          rf"\b(?:mysql|mysqldump|mysqladmin|mariadb(?:-dump)?)\b{_CLI_START}-p"
          r"[\"']?(?P<secret>[^\s\"'`]{1,256})", real_value),
    _rule("password-flag", ("-p",),
          r"\b(?:sshpass|twine|docker|podman|helm|skopeo|buildah|az|oc|mongo(?:sh|dump"
          rf"|restore|import|export)?)\b{_CLI_START}-p"
          rf"[ \t]{{0,4}}{_FLAG_VALUE}", real_value),
    _rule("password-flag", ("-p",),  # sqlcmd -S db -U sa -P v
          rf"\b(?:sqlcmd|bcp|mssql-cli|isql)\b{_CLI_START}-P[ \t]{{0,4}}{_FLAG_VALUE}", real_value),
    _rule("password-flag", ("sqlplus",),  # sqlplus user/v@db
          r"\bsqlplus\b[ \t]{1,4}(?:-[a-z]{1,3}[ \t]{1,4}){0,3}[\w$]{1,64}/"
          r"(?P<secret>[^\s@/\"']{1,128})", real_value),
    _rule("password-flag", ("password-stdin",),  # echo v | docker login --password-stdin
          r"\b(?:echo|printf)[ \t]{1,4}(?:-[a-z][ \t]{1,4})?[\"']?(?P<secret>[^\s\"'|]{1,256})"
          r"[\"']?[ \t]{0,4}\|[^\n]{0,200}?--password-stdin", real_value),
    _rule("password-flag", ("vault",),  # vault login v (not -method=userpass)
          r"\bvault[ \t]{1,4}login[ \t]{1,4}(?:-[\w=-]{1,64}[ \t]{1,4}){0,4}"
          r"(?P<secret>[^\s=\"'-][^\s=\"']{7,256})(?=\s|$)", password_like),
    _rule("password-flag", ("-a",),
          rf"\bredis-cli\b{_CLI_START}-a[ \t]{{1,4}}{_FLAG_VALUE}", real_value),
    _rule("password-flag", ("-u", "--user"),
          rf"\b(?:curl|wget|http)\b{_CLI_START}(?:-u|--user)(?:=|[ \t]{{0,4}})[\"']?"
          r"[^\s:\"']{0,128}:(?P<secret>[^\s\"']{1,256})", real_value),
    _rule("password-flag", ("htpasswd",),  # -b file user v; -nb user v (no file)
          r"\bhtpasswd\b[^\n|;&]{0,100}?[ \t]-(?:(?=[a-z]{0,4}n)(?=[a-z]{0,4}b)[a-z]{1,5}"
          r"|[a-z]{0,4}b[a-z]{0,4}[ \t]{1,4}[^\s]{1,256})"
          rf"[ \t]{{1,4}}[^\s]{{1,128}}[ \t]{{1,4}}{_FLAG_VALUE}", real_value),
    _rule("password-flag", ("-u",),  # smbclient -U user%password
          r"[ \t]-U[ \t]{0,4}[\w.@\\-]{1,64}%(?P<secret>[^\s\"']{1,256})", real_value),
    # auth=("u", "p"), HTTPBasicAuth("u", "p"), smtp.login(u, "p"), getConnection(url, u, "p")
    _rule("password-flag", ("auth", "login", "getconnection"),
          r"(?:auth[ \t]{0,4}=[ \t]{0,4}\(|BasicAuth\(|\.login\(|getConnection\([^,\n]{1,256},)"
          r"[ \t]{0,4}(?:[\"'][^\"'\n]{0,128}[\"']|[\w.]{1,64})[ \t]{0,4},[ \t]{0,4}"
          r"[\"'](?P<secret>[^\"'\n]{1,256})[\"']", assigned_value),
    _rule("kubernetes-secret", ("secret",),  # the data entries of a `kind: Secret` manifest
          r"(?m)^[ \t]{1,8}[\w.-]{1,253}:[ \t]{1,4}[\"']?"
          r"(?P<secret>[^\s\"'#]{4,65536}?)[\"']?[ \t]*$",
          in_secret_manifest),
    _rule("netrc-password", ("login",),  # machine host login user password v
          r"(?:\bmachine\s{1,8}[^\s]{1,253}|\bdefault)\s{1,8}login\s{1,8}[^\s]{1,128}\s{1,8}"
          r"password\s{1,8}(?P<secret>[^\s]{1,256})",
          real_value),
    _rule("pgpass-password", (":",),  # host:port:database:user:password
          r"(?<![\w.:-])[\w.-]{1,128}:\d{2,5}:[\w*.-]{1,128}:[\w*.-]{1,128}:"
          r"(?P<secret>[^\s:]{4,256})", real_value),
    _rule("password-prose", ("pass", "pw", "pin", *_FOREIGN_GATE),
          rf"\b{_PASSWORD_WORD}{_LONG_CLAUSE}{_IS}"
          rf"[ \t]{{1,4}}(?:now[ \t]|still[ \t])?{_SYMBOL_AHEAD}{_PROSE_VALUE}", password_like),
    _rule("password-prose", ("pass", "pw"),
          rf"\b(?:with|using|use|new)[ \t](?:the[ \t])?{_PASSWORD_WORD}[ \t]{{1,4}}{_PROSE_VALUE}",
          password_like),
    _rule("password-prose", ("pass", "pw"),  # "wifi password Xy7!...", "password, Xy7!..., "
          rf"\b{_PASSWORD_WORD},?[ \t]{{1,4}}{_PROSE_VALUE}",
          all_of(strong_password, password_like)),
    _rule("password-prose", ("cred", "login"),  # creds: admin / v, login for x is admin / v
          r"\b(?:creds?|credentials|login)\b[^\n]{0,40}?(?:[:=]|->|[ \t](?:is|are|was))[ \t]{0,4}"
          r"[\w.@+-]{1,64}"
          rf"[ \t]{{0,2}}[/:][ \t]{{0,2}}{_PROSE_VALUE}", password_like),
    _rule("password-prose", _CJK_PASSWORD,  # パスワードは v, 密码是 v, 비밀번호는 v
          rf"(?:{'|'.join(_CJK_PASSWORD)})(?:[はが：:是为為는은][ \t]{{0,4}}|[ \t]{{1,4}})"
          rf"{_PROSE_VALUE}", password_like),
    _rule("password-prose", ("pass", "pw"),  # user `ops`, pass `v`; login: ops / pw: v
          rf"\b(?:user(?:name)?|login){_LABEL}[\"'`]?[\w.@+][\w.@+-]{{0,63}}[\"'`]?"
          rf"[ \t]{{0,2}}[,;/|]?[ \t]{{0,4}}\b(?:pass(?:word)?|pwd|pw){_LABEL}{_PROSE_VALUE}",
          password_like),
    _rule("table-secret", ("|",), r"\|[ \t]{0,8}(?P<secret>[^\s|](?:[^|\n]{0,254}[^\s|])?)"
          r"[ \t]{0,8}(?=\|)", in_secret_column),
    # "the master key is v", "API key:\nv" (the value alone on its line, not a log's first word)
    _rule("key-prose", ("key", "token", "secret"),
          r"\b(?:[a-z0-9]{1,20}[ _-])?(?:key|token|secret)s?"
          rf"{_LONG_CLAUSE}(?:(?:is|was|=|:)[ \t]{{1,4}}"
          r"|:?[ \t]{0,4}\r?\n[ \t]{0,8}(?=[^\s]{16,514}[ \t]*(?:\r?\n|$)))[\"'`]?"
          r"(?P<secret>[\w.+/=~-]{16,512}?)[\"'`]?(?=[.,;:!?)]?(?:\s|$))", key_like),
    _rule("key-prose", ("key", "token", "secret"),  # "the shared secret for x is 'v'"
          rf"\b(?:key|token|secret)s?{_CLAUSE}(?:\b(?:is|was|are)|=|:)[ \t]{{1,4}}{_PROSE_VALUE}",
          worded_secret),
    _rule("high-entropy-secret", (*_SECRET_GATE, "credential", "signature", *_FOREIGN_KEY_GATE),
          rf"(?:key|secret|token|passw|pwd|credential|auth|signature|{_FOREIGN_KEY})"
          r"[^\n]{0,80}?"
          r"(?<![\w+/=.-])(?P<secret>[A-Za-z0-9+/_-]{20,1024}={0,2})(?![\w+/=.-])", random_like),
)
