"""Generate an unseen redaction evaluation set for memlane (split ``unseen``).

stdlib only; every random draw comes from ``random.Random(4242)`` in a fixed order, so the
output is byte-for-byte deterministic. Writes ``unseen.jsonl`` (corpus entry format: id, label,
kind, phrasing, split, text, tags, secrets) and ``unseen.contexts.json`` (id -> {context,
family}: the developer context of each entry, a sidecar used only for the counts report; not part
of the corpus format).

Every value is fake: random strings in the shape of the real credential (prefix, alphabet,
length). ``kind`` is a gitleaks default rule id (config/gitleaks.toml @ b58d3f10) whose shape
the value has; values without a dedicated rule of their shape are ``generic-api-key``.
"""

from __future__ import annotations

import base64
import json
import random
import string
import struct
import zlib
from collections import Counter
from pathlib import Path
from urllib.parse import quote

SEED = 4242
SPLIT = "unseen"
HERE = Path(__file__).resolve().parents[1] / "tests" / "data" / "redaction"
OUT = HERE / "unseen.jsonl"
CTX_OUT = HERE / "unseen.contexts.json"

R = random.Random(SEED)

LOWER = string.ascii_lowercase
UPPER = string.ascii_uppercase
DIGITS = string.digits
ALNUM = LOWER + UPPER + DIGITS
HEX = "0123456789abcdef"
B64 = UPPER + LOWER + DIGITS + "+/"
B64URL = UPPER + LOWER + DIGITS + "-_"


# ---------------------------------------------------------------- value generators
def rs(alphabet: str, n: int) -> str:
    return "".join(R.choice(alphabet) for _ in range(n))


def hexs(n: int, upper: bool = False) -> str:
    s = rs(HEX, n)
    return s.upper() if upper else s


def b64bytes(n: int, url: bool = False, pad: bool = True) -> str:
    raw = bytes(R.getrandbits(8) for _ in range(n))
    s = (base64.urlsafe_b64encode if url else base64.b64encode)(raw).decode()
    return s if pad else s.rstrip("=")


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def mixed(n: int, alphabet: str = ALNUM) -> str:
    """Random string that has at least one upper, lower and digit (looks machine-made)."""
    while True:
        s = rs(alphabet, n)
        if any(c.isupper() for c in s) and any(c.islower() for c in s) and any(c.isdigit() for c in s):
            return s


def password(n: int | None = None, symbols: str = "!#%^*-_=+.@~") -> str:
    """A strong human/generated password: upper, lower, digits and at least one symbol."""
    n = n or R.randint(14, 22)
    while True:
        s = rs(ALNUM + ALNUM + symbols, n)
        if (any(c.isupper() for c in s) and any(c.islower() for c in s)
                and any(c.isdigit() for c in s) and any(c in symbols for c in s)
                and s[0] in ALNUM):
            return s


def uuid4() -> str:
    h = list(hexs(32))
    h[12] = "4"
    h[16] = R.choice("89ab")
    h = "".join(h)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def aws_id(prefix: str = "AKIA") -> str:
    return prefix + rs(UPPER + "234567", 16)


def aws_secret() -> str:
    return mixed(40, ALNUM + "+/")


def aws_session_token() -> str:
    return "IQoJb3JpZ2luX2VjE" + rs(ALNUM, 3) + b64bytes(270)[:-4] + rs(ALNUM, 2) + "=="


def gcp_key() -> str:
    return "AIzaSy" + mixed(33, ALNUM + "-_")


def gocspx() -> str:
    return "GOCSPX-" + mixed(28, ALNUM + "-_")


def azure_storage_key() -> str:
    return b64bytes(64)


def azure_client_secret() -> str:
    return rs(ALNUM + "_~.", 3) + R.choice(DIGITS) + "Q~" + mixed(34, ALNUM + "_~.-")


def ghp() -> str:
    return "ghp_" + mixed(36)


def gho() -> str:
    return "gho_" + mixed(36)


def ghs() -> str:
    return "ghs_" + mixed(36)


def github_pat() -> str:
    return "github_pat_11" + rs(UPPER + DIGITS, 20) + "_" + mixed(59)


def glpat() -> str:
    return "glpat-" + mixed(20, ALNUM + "-_")


def glpat_routable() -> str:
    return "glpat-" + mixed(36, ALNUM + "-_") + ".01" + rs(LOWER + DIGITS, 7)


def atbb() -> str:
    return "ATBB" + mixed(32) + hexs(8, upper=True)


def xoxb() -> str:
    return f"xoxb-{rs(DIGITS, 12)}-{rs(DIGITS, 13)}-{mixed(24)}"


def xoxp() -> str:
    return f"xoxp-{rs(DIGITS, 12)}-{rs(DIGITS, 12)}-{rs(DIGITS, 13)}-{hexs(32)}"


def xapp() -> str:
    return f"xapp-1-A{rs(UPPER + DIGITS, 10)}-{rs(DIGITS, 13)}-{hexs(64)}"


def slack_webhook() -> str:
    return (f"https://hooks.slack.com/services/T{rs(UPPER + DIGITS, 8)}/B{rs(UPPER + DIGITS, 10)}/"
            f"{mixed(24)}")


def discord_bot() -> str:
    uid = str(R.randint(10**17, 13 * 10**17))
    return f"{b64u(uid.encode())}.{mixed(6, ALNUM + '-_')}.{mixed(38, ALNUM + '-_')}"


def discord_webhook() -> str:
    return f"https://discord.com/api/webhooks/{R.randint(10**17, 13 * 10**17)}/{mixed(68, ALNUM + '-_')}"


def stripe(prefix: str = "sk_live_") -> str:
    return prefix + "51" + mixed(R.choice([22, 97]))


def whsec() -> str:
    return "whsec_" + mixed(32)


def twilio_ac() -> str:
    return "AC" + hexs(32)


def twilio_sk() -> str:
    return "SK" + hexs(32)


def sendgrid() -> str:
    return f"SG.{mixed(22, ALNUM + '-_')}.{mixed(43, ALNUM + '-_')}"


def mailgun() -> str:
    return "key-" + hexs(32)


def mailchimp() -> str:
    return hexs(32) + "-us" + str(R.choice([6, 12, 14, 19, 21]))


def openai_key(kind: str = "proj") -> str:
    return f"sk-{kind}-{mixed(74, ALNUM + '-_')}T3BlbkFJ{mixed(74, ALNUM + '-_')}"


def anthropic_key() -> str:
    return "sk-ant-api03-" + mixed(93, ALNUM + "-_") + "AA"


def anthropic_admin() -> str:
    return "sk-ant-admin01-" + mixed(93, ALNUM + "-_") + "AA"


def hf() -> str:
    return "hf_" + rs(LOWER + UPPER, 34)


def npm_tok() -> str:
    return "npm_" + mixed(36)


def pypi_tok() -> str:
    raw = (b"\x02\x01\x08pypi.org\x02\x24" + uuid4().encode() + b"\x00\x02\x2a"
           + b'[1,["ver"],{"permissions":"user","version":1}]' + b"\x00\x00\x06\x20"
           + bytes(R.getrandbits(8) for _ in range(32)))
    return "pypi-" + b64u(raw)


def hvs() -> str:
    return "hvs.CAESI" + mixed(R.randint(86, 100), ALNUM + "-_")


def vault_legacy() -> str:
    return "s." + mixed(24)


def doppler_st() -> str:
    return f"dp.st.{R.choice(['prd', 'dev', 'stg'])}." + mixed(40)


def doppler_pt() -> str:
    return "dp.pt." + mixed(43)


def nrak() -> str:
    return "NRAK-" + rs(UPPER + DIGITS, 27)


def sntryu() -> str:
    return "sntryu_" + hexs(64)


def sntrys(org: str) -> str:
    payload = json.dumps({"iat": R.randint(1_700_000_000, 1_760_000_000) + 0.123456,
                          "url": "https://sentry.io", "region_url": "https://us.sentry.io",
                          "org": org}, separators=(",", ":")).encode()
    return "sntrys_" + base64.b64encode(payload).decode().rstrip("=") + "_" + mixed(43, ALNUM + "+/")


def shopify(prefix: str = "shpat_") -> str:
    return prefix + hexs(32)


def square_eaaa() -> str:
    return "EAAA" + mixed(60, ALNUM + "-_")


def square_sq0() -> str:
    return "sq0atp-" + mixed(22, ALNUM + "-_")


def jwt(claims: dict, alg: str = "HS256") -> str:
    head = b64u(json.dumps({"alg": alg, "typ": "JWT"}, separators=(",", ":")).encode())
    body = b64u(json.dumps(claims, separators=(",", ":")).encode())
    sig = b64u(bytes(R.getrandbits(8) for _ in range(32 if alg.startswith("HS") else 256)))
    return f"{head}.{body}.{sig}"


def now_claims(**extra) -> dict:
    iat = R.randint(1_735_000_000, 1_765_000_000)
    d = {"sub": str(R.randint(10000, 999999)), "iat": iat, "exp": iat + R.choice([900, 3600, 86400])}
    d.update(extra)
    return d


def pem_body(prefix: str, total_chars: int) -> list[str]:
    assert total_chars % 4 == 0
    body = prefix + rs(B64, total_chars - len(prefix))
    return [body[i:i + 64] for i in range(0, len(body), 64)]


def pem(kind: str) -> tuple[str, list[str]]:
    """A multi-line PEM private key and its body lines (each listed as a secret)."""
    if kind == "RSA":
        lines = pem_body("MIIEowIBAAKCAQEA", 1588)
        label = "RSA PRIVATE KEY"
    elif kind == "PKCS8":
        lines = pem_body("MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQ", 1624)
        label = "PRIVATE KEY"
    elif kind == "EC":
        raw = (b"\x30\x77\x02\x01\x01\x04\x20" + bytes(R.getrandbits(8) for _ in range(32))
               + b"\xa0\x0a\x06\x08\x2a\x86\x48\xce\x3d\x03\x01\x07\xa1\x44\x03\x42\x00\x04"
               + bytes(R.getrandbits(8) for _ in range(64)))
        b = base64.b64encode(raw).decode()
        lines = [b[i:i + 64] for i in range(0, len(b), 64)]
        label = "EC PRIVATE KEY"
    elif kind == "OPENSSH":
        pub = bytes(R.getrandbits(8) for _ in range(32))
        chk = bytes(R.getrandbits(8) for _ in range(4))
        comment = f"{R.choice(USERS)}@{R.choice(HOSTS)}".encode()
        blob_pub = struct.pack(">I", 11) + b"ssh-ed25519" + struct.pack(">I", 32) + pub
        priv = (chk + chk + blob_pub + struct.pack(">I", 64)
                + bytes(R.getrandbits(8) for _ in range(32)) + pub
                + struct.pack(">I", len(comment)) + comment)
        priv += bytes(range(1, 1 + (8 - len(priv) % 8) % 8))
        raw = (b"openssh-key-v1\x00" + struct.pack(">I", 4) + b"none" + struct.pack(">I", 4)
               + b"none" + struct.pack(">I", 0) + struct.pack(">I", 1)
               + struct.pack(">I", len(blob_pub)) + blob_pub + struct.pack(">I", len(priv)) + priv)
        b = base64.b64encode(raw).decode()
        lines = [b[i:i + 70] for i in range(0, len(b), 70)]
        label = "OPENSSH PRIVATE KEY"
    else:
        raise ValueError(kind)
    block = f"-----BEGIN {label}-----\n" + "\n".join(lines) + f"\n-----END {label}-----"
    return block, lines


def rails_skb() -> str:
    return hexs(128)


def laravel_key() -> str:
    return "base64:" + b64bytes(32)


def django_key() -> str:
    while True:
        k = rs(LOWER + DIGITS + "!@#%^&*(-_=+)", 50)
        if any(c.isdigit() for c in k) and any(c in "!@#%^&*(-_=+)" for c in k):
            return k


def flask_key() -> str:
    return hexs(64)


def bcrypt_hash() -> str:
    alph = "./" + UPPER + LOWER + DIGITS
    return "$2y$10$" + rs(alph, 53)


def apr1_hash() -> str:
    alph = "./" + UPPER + LOWER + DIGITS
    return f"$apr1${rs(alph, 8)}${rs(alph, 22)}"


def generic_token(n: int = 40) -> str:
    return mixed(n)


# ---------------------------------------------------------------- near-miss helpers
def sha(n: int = 40) -> str:
    return hexs(n)


def sri(bits: int = 512) -> str:
    return f"sha{bits}-" + b64bytes(bits // 8)


def ssh_fp() -> str:
    return "SHA256:" + b64bytes(32, pad=False)


def md5_fp() -> str:
    return ":".join(hexs(2) for _ in range(16))


def ssh_pubkey() -> str:
    raw = struct.pack(">I", 11) + b"ssh-ed25519" + struct.pack(">I", 32) + bytes(
        R.getrandbits(8) for _ in range(32))
    return "ssh-ed25519 " + base64.b64encode(raw).decode()


def tiny_png() -> str:
    def chunk(t: bytes, d: bytes) -> bytes:
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
    w, h = R.choice([(1, 1), (2, 2), (4, 4), (8, 8)])
    pix = bytes(R.getrandbits(8) for _ in range(3))
    raw = b"".join(b"\x00" + pix * w for _ in range(h))
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    return "data:image/png;base64," + base64.b64encode(png).decode()


def tiny_gif() -> str:
    gif = (b"GIF89a\x01\x00\x01\x00\x80\x00\x00" + bytes(R.getrandbits(8) for _ in range(3))
           + b"\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")
    return "data:image/gif;base64," + base64.b64encode(gif).decode()


def isbn13() -> str:
    d = [9, 7, 8, R.choice([0, 1])] + [R.randint(0, 9) for _ in range(8)]
    s = sum(x * (1 if i % 2 == 0 else 3) for i, x in enumerate(d))
    d.append((10 - s % 10) % 10)
    t = "".join(map(str, d))
    return f"{t[:3]}-{t[3]}-{t[4:8]}-{t[8:12]}-{t[12]}"


def semver() -> str:
    return f"{R.randint(0, 9)}.{R.randint(0, 40)}.{R.randint(0, 30)}"


def ts() -> str:
    return (f"2026-{R.randint(1, 11):02d}-{R.randint(1, 28):02d}T{R.randint(0, 23):02d}:"
            f"{R.randint(0, 59):02d}:{R.randint(0, 59):02d}.{R.randint(0, 999):03d}Z")


USERS = ["dana", "mkowalski", "priya", "jbauer", "sofia", "tnguyen", "ops", "deploy", "ci-bot", "alex",
         "hiro", "lucia", "omar", "svc-reports", "grafana", "etl"]
HOSTS = ["db-prod-01", "pg.internal", "build-7", "laptop", "bastion", "api-gw-2", "worker-3",
         "staging-db", "mac-mini", "ci-runner-12"]
DOMAINS = ["acme-corp.io", "internal.example.net", "shopfront.dev", "northwind.co", "lumen-labs.com",
           "tidepool.app", "orbital.systems"]
ORGS = ["acme", "northwind", "lumen-labs", "tidepool", "orbital", "brightside"]
REPOS = ["billing-api", "web-frontend", "infra", "data-pipeline", "mobile-app", "auth-service",
         "notifications", "search-indexer"]
DBS = ["orders", "analytics", "app_prod", "inventory", "crm", "events"]
REGIONS = ["us-east-1", "eu-west-1", "us-west-2", "ap-southeast-2", "eu-central-1"]


def pick(xs):
    return R.choice(xs)


# ---------------------------------------------------------------- entry registry
ENTRIES: list[dict] = []
CONTEXTS: dict[str, str] = {}
_slugs: Counter = Counter()

PHRASINGS = {"env", "prose", "cli", "config", "url", "json", "code", "console", "tags"}


LANGS = {"python": "python", "django": "python", "flask": "python", "js": "javascript", "discordjs": "javascript",
         "ts": "typescript", "go": "go", "java": "java", "ruby": "ruby", "php": "php", "csharp": "csharp",
         "node": "javascript", "spring": "java", "bcrypt": "python", "jwt": "python", "password": "python",
         "token": "typescript", "stripe": "javascript", "jsx": "javascript", "csrf": "prose"}
# (slug tokens that select the family, family); first match wins. Used only for the counts report.
FAMILY_RULES = [
    ({"curl"}, "shell: curl"),
    ({"log", "traceback", "trace", "error", "stack"}, "log / trace / error"),
    ({"markdown", "table"}, "markdown"),
    ({"commit", "git", "submodule", "describe", "reflog", "bisect"}, "git (commands, remotes, commits)"),
    ({"prose", "chat", "notes", "message", "console", "docs", "plan", "sauce", "numbers", "citations",
      "lives", "budget", "colors", "mac", "ports"}, "prose / chat / docs"),
    ({"k8s", "helm"}, "kubernetes"),
    ({"terraform"}, "terraform"),
    ({"dotenv", "export", "env", "environ"}, "dotenv / export / env refs"),
    ({"docker", "dockerfile"}, "docker"),
    ({"lock", "sum", "hashes", "hash", "checksum", "integrity", "deps", "pins", "gradle", "sri"}, "lockfiles / manifests"),
    ({"url", "connection", "jdbc", "odbc", "srv", "dsn", "uri"}, "connection string / url"),
    ({"css", "html", "img", "avatar", "jsx"}, "html / css / jsx / json images"),
    ({"ssh", "known", "authorized", "gpg", "tls", "pgp"}, "ssh / gpg / tls (public material)"),
    ({"path", "paths", "files"}, "file paths"),
]


SHELL, CONF, CHK = "shell / terminal output", "config file (yaml/toml/ini/xml/hcl/rc)", "checksums / digests"
FAMILY_OVERRIDES = {
    "sops-age-keys": CONF, "rails-secret-key-base": "dotenv / export / env refs",
    "supabase-service-role": "dotenv / export / env refs", "gh-actions-secret-set": SHELL,
    "actions-pinned-sha": "ci config", "gh-actions-secrets": "ci config", "github-actions-hardcoded-env": "ci config",
    "sha256sum-output": CHK, "sha1-labelled": CHK, "md5-labelled": CHK, "openssl-dgst": CHK,
    "release-checksums-table": "markdown", "sql-row": "code: sql", "http-response-header": "http headers",
    "idempotency-key": "shell: curl", "sentry-event-id": "log / trace / error", "stripe-request-id": "log / trace / error",
    "version-output": SHELL, "kernel-uname": SHELL, "changelog": "markdown", "mysql-p-prompt": SHELL,
    "vault-cli-read": SHELL, "aws-cli-profile": SHELL, "pass-show": SHELL, "shell-var-refs": SHELL,
    "masked-cli": SHELL, "angle-bracket-token": "shell: curl", "docker-login-stdin": SHELL,
    "ansible-vault-var": CONF, "yaml-changeme": CONF, "replace-me": CONF, "compose-interpolation": CONF,
    "twilio-account-sid-only": "prose / chat / docs", "elided-github-token": SHELL, "xxxx-key": "dotenv / export / env refs",
    "authorized-keys": "ssh / gpg / tls (public material)", "gpg-fingerprint-prose": "ssh / gpg / tls (public material)",
    "csrf-field-description": "prose / chat / docs", "keyboard-and-keys": "prose / chat / docs",
    "cache-hash-path": "file paths", "bcrypt-hash-call": "code: python", "go-pseudo-version": "lockfiles / manifests",
    "docker-config-json": "json file", "docs-url-password": "prose / chat / docs",
}


def family(ctx: str, phrasing: str | None, kind: str) -> str:
    """A coarse developer-context family for the counts report (sidecar only)."""
    if phrasing == "tags" or kind == "tags":
        return "memlane tags"
    if ctx in FAMILY_OVERRIDES:
        return FAMILY_OVERRIDES[ctx]
    tokens = set(ctx.split("-"))
    for keys, fam in FAMILY_RULES:
        if tokens & keys:
            return fam
    lang = LANGS.get(ctx.split("-")[0])
    if phrasing == "code" or (phrasing is None and lang):
        return f"code: {lang or 'other'}"
    if phrasing == "cli":
        return "shell / terminal output"
    if phrasing == "json":
        return "json file"
    if phrasing in ("config", "url"):
        return "config file (yaml/toml/ini/xml/hcl/rc)"
    return "other"


def _id(prefix: str, ctx: str) -> str:
    key = f"{prefix}/{ctx}"
    _slugs[key] += 1
    return key if _slugs[key] == 1 else f"{key}-{_slugs[key]}"


def sec(kind: str, phrasing: str, ctx: str, text: str, secrets: list[str], tags: list[str] | None = None):
    assert phrasing in PHRASINGS, phrasing
    tags = tags or []
    for s in secrets:
        assert s in text or any(s in t for t in tags), (kind, ctx, s)
    eid = _id(kind, ctx)
    ENTRIES.append({"id": eid, "label": "secret", "kind": kind, "phrasing": phrasing, "split": SPLIT,
                    "text": text, "tags": tags, "secrets": secrets})
    CONTEXTS[eid] = {"context": ctx, "family": family(ctx, phrasing, kind)}


def nm(kind: str, ctx: str, text: str, tags: list[str] | None = None):
    eid = _id("near-miss", ctx)
    ENTRIES.append({"id": eid, "label": "near-miss", "kind": kind, "phrasing": None, "split": SPLIT,
                    "text": text, "tags": tags or [], "secrets": []})
    CONTEXTS[eid] = {"context": ctx, "family": family(ctx, None, kind)}


# ================================================================= SECRET ENTRIES
def secrets_aws():
    k, s = aws_id(), aws_secret()
    sec("aws-access-token", "env", "shell-export", f"""$ export AWS_ACCESS_KEY_ID={k}
$ export AWS_SECRET_ACCESS_KEY={s}
$ export AWS_DEFAULT_REGION={pick(REGIONS)}
$ aws s3 ls s3://{pick(ORGS)}-backups/""", [k, s])

    k, s = aws_id(), aws_secret()
    sec("aws-access-token", "config", "aws-credentials-ini", f"""~/.aws/credentials on the build box:

[default]
aws_access_key_id = {k}
aws_secret_access_key = {s}

[readonly]
role_arn = arn:aws:iam::{R.randint(10**11, 10**12 - 1)}:role/ReadOnly
source_profile = default""", [k, s])

    k, s, t = aws_id("ASIA"), aws_secret(), aws_session_token()
    sec("aws-access-token", "json", "sts-assume-role-output", f"""aws sts assume-role --role-arn arn:aws:iam::{R.randint(10**11, 10**12 - 1)}:role/deployer --role-session-name gh-{R.randint(1000, 9999)}
{{
    "Credentials": {{
        "AccessKeyId": "{k}",
        "SecretAccessKey": "{s}",
        "SessionToken": "{t}",
        "Expiration": "{ts()[:19]}+00:00"
    }}
}}""", [k, s, t])

    k, s = aws_id(), aws_secret()
    sec("aws-access-token", "code", "python-boto3", f"""import boto3

s3 = boto3.client(
    "s3",
    region_name="{pick(REGIONS)}",
    aws_access_key_id="{k}",
    aws_secret_access_key="{s}",
)
s3.upload_file("report.csv", "{pick(ORGS)}-reports", "daily/report.csv")""", [k, s])

    k, s = aws_id(), aws_secret()
    sec("aws-access-token", "config", "terraform-provider", f"""provider "aws" {{
  region     = "{pick(REGIONS)}"
  access_key = "{k}"
  secret_key = "{s}"
}}""", [k, s])

    k, s = aws_id(), aws_secret()
    sec("aws-access-token", "cli", "docker-run-env", f"""docker run --rm -e AWS_ACCESS_KEY_ID={k} -e AWS_SECRET_ACCESS_KEY={s} amazon/aws-cli:2.17.{R.randint(1, 40)} sts get-caller-identity""",
        [k, s])

    k, s = aws_id(), aws_secret()
    sec("aws-access-token", "console", "console-french", f"""Clé d'accès créée pour l'utilisateur IAM svc-export dans la console.
ID de clé d'accès : {k}
Clé d'accès secrète : {s}
J'ai aussi téléchargé le fichier .csv.""", [k, s])

    k, s = aws_id(), aws_secret()
    sec("aws-access-token", "tags", "tag-only", "Rotated the upload user's key after the incident; new pair saved as tags for now.",
        [k, s], tags=["aws", f"aws_access_key_id={k}", f"aws_secret_access_key={s}"])

    k, s = aws_id(), aws_secret()
    sec("aws-access-token", "prose", "markdown-table", f"""| env | access key id | secret access key |
|---|---|---|
| staging | `{k}` | `{s}` |
| prod | (in Vault) | (in Vault) |""", [k, s])


def secrets_gcp():
    org = pick(ORGS)
    block, lines = pem("PKCS8")
    esc = block.replace("\n", "\\n") + "\\n"
    sec("private-key", "json", "gcp-service-account-json", f"""{{
  "type": "service_account",
  "project_id": "{org}-prod-{R.randint(100, 999)}",
  "private_key_id": "{hexs(40)}",
  "private_key": "{esc}",
  "client_email": "bq-loader@{org}-prod.iam.gserviceaccount.com",
  "client_id": "{R.randint(10**20, 10**21 - 1)}",
  "auth_uri": "https://accounts.google.com/o/oauth2/auth",
  "token_uri": "https://oauth2.googleapis.com/token"
}}""", lines)

    k = gcp_key()
    sec("gcp-api-key", "code", "js-maps-loader", f"""const loader = new Loader({{
  apiKey: "{k}",
  version: "weekly",
  libraries: ["places"],
}});""", [k])

    k = gcp_key()
    sec("gcp-api-key", "url", "curl-query-key", f"""curl -s "https://maps.googleapis.com/maps/api/geocode/json?address=1600+Amphitheatre+Pkwy&key={k}" | jq '.results[0].geometry'""", [k])

    k = gcp_key()
    sec("gcp-api-key", "config", "android-strings-xml", f"""<!-- app/src/main/res/values/secrets.xml -->
<resources>
    <string name="youtube_data_api_key">{k}</string>
    <string name="app_name">Tidepool</string>
</resources>""", [k])

    c = gocspx()
    cid = f"{R.randint(10**11, 10**12 - 1)}-{rs(LOWER + DIGITS, 32)}.apps.googleusercontent.com"
    sec("generic-api-key", "json", "google-oauth-client-secret-json", f"""{{"web":{{"client_id":"{cid}","project_id":"{pick(ORGS)}-login","auth_uri":"https://accounts.google.com/o/oauth2/auth","token_uri":"https://oauth2.googleapis.com/token","client_secret":"{c}","redirect_uris":["http://localhost:8080/callback"]}}}}""", [c])

    c = gocspx()
    sec("generic-api-key", "env", "dotenv-nextauth", f"""# .env.local
NEXTAUTH_URL=http://localhost:3000
GOOGLE_CLIENT_ID={R.randint(10**11, 10**12 - 1)}-{rs(LOWER + DIGITS, 32)}.apps.googleusercontent.com
GOOGLE_CLIENT_SECRET={c}""", [c])


def secrets_azure():
    acct = pick(ORGS).replace("-", "") + "store"
    key = azure_storage_key()
    sec("generic-api-key", "json", "appsettings-json", f"""{{
  "Logging": {{ "LogLevel": {{ "Default": "Information" }} }},
  "ConnectionStrings": {{
    "Blobs": "DefaultEndpointsProtocol=https;AccountName={acct};AccountKey={key};EndpointSuffix=core.windows.net"
  }}
}}""", [key])

    key = azure_storage_key()
    sec("generic-api-key", "cli", "az-storage-upload", f"""az storage blob upload-batch --account-name {acct} --account-key "{key}" -d '$web' -s ./dist""", [key])

    sig = quote(b64bytes(32), safe="")
    sec("generic-api-key", "url", "azure-sas-url", f"""Upload URL for the vendor (valid 30 days):
https://{acct}.blob.core.windows.net/exports/q3.zip?sv=2022-11-02&ss=b&srt=o&sp=r&se=2026-12-31T23:59:59Z&st=2026-12-01T00:00:00Z&spr=https&sig={sig}""", [sig])

    k = b64bytes(32)
    ns = pick(ORGS) + "-bus"
    sec("generic-api-key", "config", "servicebus-connection-string", f"""<!-- web.config -->
<connectionStrings>
  <add name="ServiceBus" connectionString="Endpoint=sb://{ns}.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey={k}" />
</connectionStrings>""", [k])

    c = azure_client_secret()
    sec("azure-ad-client-secret", "env", "dotenv-azure-identity", f"""AZURE_TENANT_ID={uuid4()}
AZURE_CLIENT_ID={uuid4()}
AZURE_CLIENT_SECRET={c}""", [c])

    c = azure_client_secret()
    sec("azure-ad-client-secret", "code", "csharp-confidential-client", f"""var app = ConfidentialClientApplicationBuilder.Create("{uuid4()}")
    .WithClientSecret("{c}")
    .WithAuthority(new Uri("https://login.microsoftonline.com/{uuid4()}"))
    .Build();""", [c])

    c = azure_client_secret()
    sec("azure-ad-client-secret", "config", "terraform-tfvars", f"""# terraform.tfvars
subscription_id = "{uuid4()}"
tenant_id       = "{uuid4()}"
client_id       = "{uuid4()}"
client_secret   = "{c}"
location        = "westeurope\"""", [c])


def secrets_github():
    org, repo = pick(ORGS), pick(REPOS)
    t = ghs()
    sec("github-app-token", "url", "git-remote-x-access-token", f"""$ git remote -v
origin	https://x-access-token:{t}@github.com/{org}/{repo}.git (fetch)
origin	https://x-access-token:{t}@github.com/{org}/{repo}.git (push)""", [t])

    t, org, repo = ghp(), pick(ORGS), pick(REPOS)
    sec("github-pat", "url", "git-clone-token-url", f"""git clone https://{t}@github.com/{org}/{repo}.git && cd {repo} && make bootstrap""", [t])

    t = gho()
    sec("github-oauth", "config", "gh-hosts-yml", f"""cat ~/.config/gh/hosts.yml
github.com:
    user: {pick(USERS)}
    oauth_token: {t}
    git_protocol: ssh""", [t])

    t = ghp()
    sec("github-pat", "cli", "curl-api-token-header", f"""curl -sS -H "Authorization: token {t}" -H "Accept: application/vnd.github+json" https://api.github.com/repos/{org}/{repo}/actions/runs?per_page=5""", [t])

    t = github_pat()
    sec("github-fine-grained-pat", "code", "go-oauth2-static", f"""ts := oauth2.StaticTokenSource(&oauth2.Token{{AccessToken: "{t}"}})
client := github.NewClient(oauth2.NewClient(ctx, ts))""", [t])

    t = github_pat()
    sec("github-fine-grained-pat", "prose", "slack-message", f"""@{pick(USERS)} made you a fine-grained PAT scoped to {org}/{repo} (contents: read) — {t} — expires in 30 days""", [t])

    t = gho()
    sec("github-oauth", "env", "log-line", f"""{ts()} DEBUG oauth.callback exchanged code for token user={pick(USERS)} token={t} scope=repo,read:org""", [t])

    t = ghs()
    sec("github-app-token", "config", "ci-log", f"""Run actions/checkout@v4
  with:
    repository: {org}/{repo}
    token: {t}
    ssh-strict: true
Syncing repository: {org}/{repo}""", [t])

    t = ghp()
    sec("github-pat", "prose", "commit-message", f"""commit message draft:

fix(ci): use personal token for the release job

The default GITHUB_TOKEN cannot push tags to the protected branch, so the release job now
uses {t} until we set up the GitHub App.""", [t])

    t = ghp()
    sec("github-pat", "tags", "tag-only", "Token for the docs bot; keep until the GitHub App lands.",
        [t], tags=["github", "docs-bot", t])

    t = ghp()
    sec("github-pat", "prose", "prose-spanish", f"""Oye, te dejo el token de GitHub para el runner de staging: {t}. Bórralo del chat cuando lo copies.""", [t])


def secrets_gitlab():
    t = glpat()
    sec("gitlab-pat", "cli", "curl-private-token", f"""curl --header "PRIVATE-TOKEN: {t}" "https://gitlab.{pick(DOMAINS)}/api/v4/projects/{R.randint(10, 900)}/pipelines?status=failed\"""", [t])

    t = glpat()
    sec("gitlab-pat", "config", "python-gitlab-cfg", f"""# ~/.python-gitlab.cfg
[global]
default = work
ssl_verify = true

[work]
url = https://gitlab.{pick(DOMAINS)}
private_token = {t}
api_version = 4""", [t])

    t = glpat_routable()
    sec("gitlab-pat-routable", "env", "gitlab-ci-variable-export", f"""export GITLAB_TOKEN={t}
glab mr list --assignee=@me""", [t])


def secrets_bitbucket():
    t = atbb()
    u = pick(USERS)
    sec("generic-api-key", "url", "bitbucket-clone-app-password", f"""git clone https://{u}:{t}@bitbucket.org/{pick(ORGS)}/{pick(REPOS)}.git""", [t])


def secrets_slack():
    t = xoxb()
    sec("slack-bot-token", "code", "python-slack-sdk", f"""from slack_sdk import WebClient

client = WebClient(token="{t}")
client.chat_postMessage(channel="#deploys", text="build green")""", [t])

    t, ss = xoxb(), hexs(32)
    sec("slack-bot-token", "env", "dotenv-bolt", f"""SLACK_BOT_TOKEN={t}
SLACK_SIGNING_SECRET={ss}
PORT=3000""", [t, ss])

    t = xoxp()
    sec("slack-user-token", "cli", "curl-bearer", f"""curl -s -X POST -H 'Authorization: Bearer {t}' -H 'Content-type: application/json' --data '{{"channel":"C0{rs(UPPER + DIGITS, 8)}","text":"hi"}}' https://slack.com/api/chat.postMessage""", [t])

    t = xapp()
    sec("slack-app-token", "config", "socket-mode-yaml", f"""# config/slack.yml
socket_mode:
  enabled: true
  app_token: {t}
channels:
  alerts: C0{rs(UPPER + DIGITS, 8)}""", [t])

    w = slack_webhook()
    sec("slack-webhook-url", "json", "alertmanager-json", f"""{{
  "receivers": [{{
    "name": "oncall",
    "slack_configs": [{{ "api_url": "{w}", "channel": "#oncall" }}]
  }}]
}}""", [w])

    w = slack_webhook()
    sec("slack-webhook-url", "cli", "curl-post-webhook", f"""curl -X POST -H 'Content-type: application/json' --data '{{"text":"backup finished"}}' {w}""", [w])

    t = xoxb()
    sec("slack-bot-token", "prose", "error-message", f"""slack_sdk.errors.SlackApiError: The request to the Slack API failed. (url: https://www.slack.com/api/conversations.history)
The server responded with: {{'ok': False, 'error': 'not_in_channel'}}
token used: {t}""", [t])


def secrets_discord():
    t = discord_bot()
    sec("generic-api-key", "code", "discordjs-login", f"""const {{ Client, GatewayIntentBits }} = require('discord.js');
const client = new Client({{ intents: [GatewayIntentBits.Guilds] }});
client.login('{t}');""", [t])

    w = discord_webhook()
    sec("generic-api-key", "code", "python-discord-webhook", f"""WEBHOOK = "{w}"
requests.post(WEBHOOK, json={{"content": f"deploy {{version}} done"}})""", [w.rsplit("/", 1)[1]])

    c = mixed(32, ALNUM + "-_")
    sec("discord-client-secret", "config", "discord-oauth-toml", f"""[discord]
client_id = "{R.randint(10**17, 13 * 10**17)}"
client_secret = "{c}"
redirect_uri = "https://{pick(DOMAINS)}/auth/discord/callback\"""", [c])


def secrets_stripe():
    k = stripe()
    sec("stripe-access-token", "code", "php-stripe-client", f"""<?php
require_once 'vendor/autoload.php';
$stripe = new \\Stripe\\StripeClient('{k}');
$stripe->refunds->create(['payment_intent' => $pi]);""", [k])

    k = stripe("rk_live_")
    sec("stripe-access-token", "code", "ruby-stripe-restricted", f"""Stripe.api_key = '{k}' # restricted: read charges only
Stripe::Charge.list(limit: 3)""", [k])

    w = whsec()
    sec("generic-api-key", "env", "dotenv-stripe-webhook", f"""STRIPE_WEBHOOK_SECRET={w}""", [w])

    w = whsec()
    sec("generic-api-key", "code", "ts-stripe-construct-event", f"""const event = stripe.webhooks.constructEvent(
  req.body,
  req.headers['stripe-signature'] as string,
  '{w}'
);""", [w])

    k = stripe()
    sec("stripe-access-token", "cli", "curl-u-stripe", f"""curl https://api.stripe.com/v1/customers/cus_{mixed(14)} -u {k}:""", [k])


def secrets_twilio():
    k, s = twilio_sk(), mixed(32)
    sec("twilio-api-key", "code", "python-twilio-apikey", f"""from twilio.rest import Client
client = Client("{k}", "{s}", "{twilio_ac()}")""", [k, s])

    ac, tok = twilio_ac(), hexs(32)
    sec("generic-api-key", "code", "csharp-twilio-auth-token", f"""const string accountSid = "{ac}";
const string authToken = "{tok}";
TwilioClient.Init(accountSid, authToken);""", [tok])

    ac, tok = twilio_ac(), hexs(32)
    sec("curl-auth-user", "cli", "curl-u-twilio", f"""curl -X POST https://api.twilio.com/2010-04-01/Accounts/{ac}/Messages.json --data-urlencode "Body=test" -d From=+15005550006 -d To=+15005550009 -u {ac}:{tok}""", [tok])


def secrets_mail():
    k = sendgrid()
    sec("sendgrid-api-token", "env", "dotenv-sendgrid", f"""MAIL_DRIVER=sendgrid
SENDGRID_API_KEY={k}
MAIL_FROM=noreply@{pick(DOMAINS)}""", [k])

    k = sendgrid()
    sec("sendgrid-api-token", "code", "csharp-sendgrid", f"""var client = new SendGridClient("{k}");
var msg = MailHelper.CreateSingleEmail(from, to, subject, plain, html);""", [k])

    k = mailgun()
    sec("mailgun-private-api-token", "env", "dotenv-mailgun", f"""MAILGUN_DOMAIN=mg.{pick(DOMAINS)}
MAILGUN_API_KEY={k}""", [k])

    k = mailgun()
    sec("mailgun-private-api-token", "cli", "curl-mailgun", f"""curl -s --user 'api:{k}' https://api.mailgun.net/v3/mg.{pick(DOMAINS)}/messages -F from='ops@{pick(DOMAINS)}' -F to=me@example.org -F subject=test -F text=hello""", [k])

    k = mailchimp()
    sec("mailchimp-api-key", "code", "php-mailchimp", f"""$mailchimp = new \\MailchimpMarketing\\ApiClient();
$mailchimp->setConfig([
    'apiKey' => '{k}',
    'server' => '{k.split('-')[1]}'
]);""", [k])


def secrets_ai():
    k = openai_key()
    sec("openai-api-key", "env", "dotenv-openai", f"""OPENAI_API_KEY={k}
OPENAI_MODEL=gpt-4o-mini""", [k])

    k = openai_key()
    sec("openai-api-key", "code", "python-openai-client", f"""from openai import OpenAI

client = OpenAI(api_key="{k}")
resp = client.responses.create(model="gpt-4.1", input="summarise the changelog")""", [k])

    k = openai_key("svcacct")
    sec("openai-api-key", "prose", "prose-german", f"""Hier ist der Service-Account-Schlüssel für den Übersetzungsjob: {k} – bitte nicht ins Repo committen.""", [k])

    k = anthropic_key()
    sec("anthropic-api-key", "code", "ts-anthropic-sdk", f"""import Anthropic from '@anthropic-ai/sdk';

const anthropic = new Anthropic({{ apiKey: '{k}' }});""", [k])

    k = anthropic_key()
    sec("anthropic-api-key", "cli", "curl-x-api-key", f"""curl https://api.anthropic.com/v1/messages \\
  -H "x-api-key: {k}" \\
  -H "anthropic-version: 2023-06-01" \\
  -H "content-type: application/json" \\
  -d '{{"model":"claude-sonnet-4-5","max_tokens":256,"messages":[{{"role":"user","content":"ping"}}]}}'""", [k])

    k = anthropic_admin()
    sec("anthropic-admin-api-key", "prose", "chat-note", f"""the admin key for usage reports is {k}, it can manage workspaces so treat it carefully""", [k])

    t = hf()
    sec("huggingface-access-token", "cli", "huggingface-cli-login", f"""$ huggingface-cli login --token {t} --add-to-git-credential
Token is valid (permission: write).""", [t])

    t = hf()
    sec("huggingface-access-token", "code", "python-hf-hub", f"""from huggingface_hub import snapshot_download
snapshot_download("{pick(ORGS)}/reranker-v2", token="{t}")""", [t])


def secrets_registries():
    t = npm_tok()
    sec("npm-access-token", "config", "npmrc-authtoken", f"""# ~/.npmrc
registry=https://registry.npmjs.org/
//registry.npmjs.org/:_authToken={t}
save-exact=true""", [t])

    t = npm_tok()
    sec("npm-access-token", "config", "yarnrc-yml", f"""# .yarnrc.yml
nodeLinker: node-modules
npmScopes:
  {pick(ORGS)}:
    npmRegistryServer: "https://registry.npmjs.org"
    npmAuthToken: "{t}\"""", [t])

    t = pypi_tok()
    sec("pypi-upload-token", "config", "pypirc", f"""# ~/.pypirc
[distutils]
index-servers = pypi

[pypi]
username = __token__
password = {t}""", [t])

    t = pypi_tok()
    sec("pypi-upload-token", "cli", "twine-upload", f"""python -m twine upload -u __token__ -p {t} dist/*""", [t])


def secrets_vault_doppler():
    t = hvs()
    sec("vault-service-token", "cli", "vault-login", f"""$ vault login {t}
Success! You are now authenticated.""", [t])

    t = vault_legacy()
    sec("vault-service-token", "config", "vault-agent-hcl", f"""vault {{
  address = "https://vault.{pick(DOMAINS)}:8200"
  token   = "{t}"
}}""", [t])

    t = doppler_st()
    sec("generic-api-key", "env", "dotenv-doppler-service", f"""DOPPLER_TOKEN={t}
doppler run -- npm start""", [t])

    t = doppler_pt()
    sec("doppler-api-token", "cli", "doppler-configure", f"""doppler configure set token {t} --scope /home/{pick(USERS)}/src""", [t])


def secrets_observability():
    k = hexs(32)
    sec("generic-api-key", "env", "dotenv-datadog-api", f"""DD_API_KEY={k}
DD_SITE=datadoghq.eu
DD_ENV=production""", [k])

    k, a = hexs(32), hexs(40)
    sec("datadog-access-token", "config", "datadog-yaml", f"""# datadog.yaml
api_key: {k}
datadog_app_key: {a}
site: datadoghq.com
logs_enabled: true""", [k, a])

    k = nrak()
    sec("new-relic-user-api-key", "cli", "curl-nerdgraph", f"""curl https://api.newrelic.com/graphql -H 'Content-Type: application/json' -H 'API-Key: {k}' -d '{{"query":"{{ actor {{ user {{ name }} }} }}"}}'""", [k])

    t = sntryu()
    sec("sentry-user-token", "config", "sentryclirc", f"""# ~/.sentryclirc
[auth]
token={t}

[defaults]
org={pick(ORGS)}""", [t])

    t = sntrys(pick(ORGS))
    sec("sentry-org-token", "env", "ci-env-sentry", f"""SENTRY_AUTH_TOKEN={t}
npx @sentry/wizard@latest -i sourcemaps""", [t])

    pub, sk = hexs(32), hexs(32)
    sec("generic-api-key", "url", "legacy-sentry-dsn-secret", f"""SENTRY_DSN=https://{pub}:{sk}@o{R.randint(100000, 999999)}.ingest.sentry.io/{R.randint(1000000, 9999999)}
# legacy DSN with the secret key, server-side only""", [sk])


def secrets_commerce():
    t = shopify()
    sec("shopify-access-token", "code", "ruby-shopify-session", f"""session = ShopifyAPI::Auth::Session.new(
  shop: "{pick(ORGS)}.myshopify.com",
  access_token: "{t}"
)""", [t])

    t = shopify("shpss_")
    sec("shopify-shared-secret", "env", "dotenv-shopify-app", f"""SHOPIFY_API_KEY={hexs(32)}
SHOPIFY_API_SECRET={t}
SCOPES=read_products,write_orders""", [t])

    t = shopify("shpca_")
    sec("shopify-custom-access-token", "cli", "curl-shopify-header", f"""curl -X GET "https://{pick(ORGS)}.myshopify.com/admin/api/2025-01/orders.json?status=any" -H "X-Shopify-Access-Token: {t}\"""", [t])

    t = square_sq0()
    sec("square-access-token", "code", "js-square-client", f"""const client = new Client({{ accessToken: '{t}', environment: Environment.Production }});""", [t])


def secrets_jwt():
    t = jwt(now_claims(role="admin", email=f"{pick(USERS)}@{pick(DOMAINS)}"))
    sec("jwt", "json", "http-request-log", f"""{ts()} INFO  http GET /api/v2/admin/users 200 12ms
  headers: {{"host":"api.{pick(DOMAINS)}","authorization":"Bearer {t}","user-agent":"okhttp/4.12.0"}}""", [t])

    t = jwt(now_claims(scope="read write"), "RS256")
    sec("jwt", "cli", "curl-bearer-jwt", f"""curl -H "Authorization: Bearer {t}" https://api.{pick(DOMAINS)}/v1/invoices?limit=10""", [t])

    a, r = jwt(now_claims(typ="access")), jwt(now_claims(typ="refresh"))
    sec("jwt", "json", "oauth-token-response", f"""{{"access_token":"{a}","token_type":"Bearer","expires_in":3600,"refresh_token":"{r}"}}""", [a, r])

    t = jwt(now_claims(aud="grafana"))
    sec("jwt", "env", "nginx-cookie-log", f"""10.0.{R.randint(0, 255)}.{R.randint(1, 254)} - - [03/Dec/2026:10:14:{R.randint(10, 59)} +0000] "GET /dashboard HTTP/1.1" 200 5123 "-" "Mozilla/5.0" cookie="session={t}\"""", [t])


def secrets_pem():
    block, lines = pem("RSA")
    sec("private-key", "config", "cat-id-rsa", f"""$ cat ~/.ssh/deploy_rsa
{block}""", lines)

    block, lines = pem("EC")
    ind = "\n".join("    " + l for l in block.splitlines())
    sec("private-key", "config", "k8s-tls-secret-stringdata", f"""apiVersion: v1
kind: Secret
metadata:
  name: webhook-tls
type: kubernetes.io/tls
stringData:
  tls.key: |
{ind}""", lines)

    block, lines = pem("OPENSSH")
    sec("private-key", "prose", "chat-paste", f"""here's the jump host key, add it to your agent:

{block}

passphrase is empty""", lines)

    block, lines = pem("PKCS8")
    jl = '"' + '\\n" +\n    "'.join(block.splitlines()) + '\\n"'
    sec("private-key", "code", "java-string-literal", f"""private static final String SIGNING_KEY =
    {jl};""", lines)

    block, lines = pem("OPENSSH")
    ind = "\n".join("  " + l for l in block.splitlines())
    sec("private-key", "config", "ansible-vars-yaml", f"""# group_vars/bastion.yml
deploy_user: {pick(USERS)}
deploy_ssh_key: |
{ind}""", lines)


def secrets_frameworks():
    k = rails_skb()
    sec("generic-api-key", "env", "rails-secret-key-base", f"""RAILS_ENV=production
SECRET_KEY_BASE={k}
RAILS_SERVE_STATIC_FILES=1""", [k])

    k = laravel_key()
    sec("generic-api-key", "env", "laravel-dotenv", f"""APP_NAME=Tidepool
APP_ENV=production
APP_KEY={k}
APP_DEBUG=false""", [k])

    k = django_key()
    sec("generic-api-key", "code", "django-settings", f"""# settings/production.py
DEBUG = False
SECRET_KEY = '{k}'
ALLOWED_HOSTS = ["{pick(DOMAINS)}"]""", [k])

    k = flask_key()
    sec("generic-api-key", "code", "flask-config", f"""app = Flask(__name__)
app.config["SECRET_KEY"] = "{k}"
app.config["SESSION_COOKIE_SECURE"] = True""", [k])


def secrets_urls_connstrings():
    u, p = pick(USERS), password()
    pe = quote(p, safe="")
    sec("generic-api-key", "url", "postgres-database-url", f"""DATABASE_URL=postgresql://{u}:{pe}@{pick(HOSTS)}.{pick(DOMAINS)}:5432/{pick(DBS)}?sslmode=require""", [pe])

    u, p = pick(USERS), password()
    pe = quote(p, safe="")
    sec("generic-api-key", "url", "mongodb-srv", f"""const uri = "mongodb+srv://{u}:{pe}@cluster0.{rs(LOWER + DIGITS, 5)}.mongodb.net/{pick(DBS)}?retryWrites=true&w=majority";""", [pe])

    p = password(symbols="-_.~")
    sec("generic-api-key", "url", "redis-url", f"""REDIS_URL=rediss://default:{p}@redis-{R.randint(10000, 19999)}.c{R.randint(1, 300)}.{pick(REGIONS)}-1.ec2.cloud.redislabs.com:{R.randint(10000, 19999)}/0""", [p])

    u, p = pick(USERS), password()
    pe = quote(p, safe="")
    sec("generic-api-key", "url", "amqp-url", f"""celery -A tasks worker --broker 'amqps://{u}:{pe}@rabbit.{pick(DOMAINS)}:5671/%2Fprod' -l info""", [pe])

    p = password(symbols="!#%^*-_.~")
    sec("generic-api-key", "url", "jdbc-url-password-param", f"""jdbc:mysql://{pick(HOSTS)}:3306/{pick(DBS)}?user=report&password={quote(p, safe='')}&useSSL=true""", [quote(p, safe='')])

    u, p = pick(USERS), password()
    pe = quote(p, safe="")
    sec("generic-api-key", "url", "pip-conf-index-url", f"""# /etc/pip.conf
[global]
index-url = https://{u}:{pe}@nexus.{pick(DOMAINS)}/repository/pypi-group/simple""", [pe])

    p = password(symbols="!#%^*-_.@~")
    sec("generic-api-key", "config", "odbc-connection-string", f"""Driver={{ODBC Driver 18 for SQL Server}};Server=tcp:{pick(ORGS)}-sql.database.windows.net,1433;Database={pick(DBS)};Uid=etl_reader;Pwd={p};Encrypt=yes;TrustServerCertificate=no;""", [p])

    p = password(symbols="!#%^*-_.@~")
    sec("generic-api-key", "config", "adonet-connection-string", f"""<add name="DefaultConnection" connectionString="Server={pick(HOSTS)};Database={pick(DBS)};User Id=app_user;Password={p};MultipleActiveResultSets=true" providerName="System.Data.SqlClient" />""", [p])

    p = password()
    sec("generic-api-key", "config", "spring-application-yml", f"""spring:
  datasource:
    url: jdbc:postgresql://{pick(HOSTS)}:5432/{pick(DBS)}
    username: svc_api
    password: "{p}\"""", [p])

    p = password(symbols="-_.~!*")
    sec("generic-api-key", "url", "java-stack-trace", f"""org.postgresql.util.PSQLException: FATAL: password authentication failed for user "billing"
	at org.postgresql.core.v3.ConnectionFactoryImpl.doAuthentication(ConnectionFactoryImpl.java:693)
	at com.{pick(ORGS).replace('-', '')}.db.Pool.open(Pool.java:41) [url=jdbc:postgresql://{pick(HOSTS)}:5432/billing?user=billing&password={p}]""", [p])

    k = generic_token(32)
    sec("generic-api-key", "url", "python-traceback", f"""Traceback (most recent call last):
  File "/app/sync.py", line 88, in <module>
    resp.raise_for_status()
requests.exceptions.HTTPError: 429 Client Error: Too Many Requests for url: https://api.{pick(DOMAINS)}/v3/contacts?page=4&api_key={k}""", [k])


def secrets_cli_passwords():
    p = password(symbols="%@+=._-")
    sec("generic-api-key", "cli", "mysql-p-flag", f"""mysql -h {pick(HOSTS)} -u root -p{p} {pick(DBS)} < dump.sql""", [p])

    p = password(symbols="%@+=._-")
    sec("generic-api-key", "cli", "pgpassword-psql", f"""PGPASSWORD={p} psql -h {pick(HOSTS)} -U {pick(USERS)} -d {pick(DBS)} -c 'select count(*) from orders'""", [p])

    p = password(symbols="!#%^*-_=+.@~")
    sec("generic-api-key", "cli", "docker-login-p", f"""docker login registry.{pick(DOMAINS)} -u {pick(USERS)} -p '{p}'
WARNING! Using --password via the CLI is insecure. Use --password-stdin.""", [p])

    u, p = pick(USERS), password(symbols="%@+=._-!")
    sec("curl-auth-user", "cli", "curl-u-basic", f"""curl -u {u}:{p} -X POST https://jenkins.{pick(DOMAINS)}/job/{pick(REPOS)}/build""", [p])

    p = password(symbols="%@+=._-")
    sec("generic-api-key", "cli", "sshpass", f"""sshpass -p {p} ssh -o StrictHostKeyChecking=no {pick(USERS)}@{pick(HOSTS)} 'sudo systemctl restart api'""", [p])

    p = password(symbols="!#%^*-_=+.@~")
    sec("generic-api-key", "cli", "mongosh-password", f"""mongosh "mongodb://{pick(HOSTS)}:27017/admin" --username admin --password '{p}' --eval 'db.stats()'""", [p])

    p = password(symbols="%@+=._-")
    sec("generic-api-key", "cli", "bash-history-mysqldump", f"""  512  cd /srv/backups
  513  mysqldump --user=backup --password={p} --single-transaction {pick(DBS)} | gzip > nightly.sql.gz
  514  ls -lh""", [p])


def secrets_misc_files():
    h = pick(DOMAINS)
    t = generic_token(40)
    sec("generic-api-key", "config", "netrc", f"""# ~/.netrc
machine api.{h}
  login {pick(USERS)}
  password {t}""", [t])

    auth = base64.b64encode(f"{pick(USERS)}:{password()}".encode()).decode()
    sec("generic-api-key", "json", "docker-config-json", f"""cat ~/.docker/config.json
{{
	"auths": {{
		"registry.{h}": {{
			"auth": "{auth}"
		}}
	}}
}}""", [auth])

    hsh = bcrypt_hash()
    sec("generic-api-key", "config", "htpasswd-bcrypt", f"""# /etc/nginx/.htpasswd
{pick(USERS)}:{hsh}""", [hsh])

    hsh, p = apr1_hash(), password(symbols="%@+=._-")
    sec("generic-api-key", "cli", "htpasswd-apr1", f"""$ htpasswd -nb admin {p}
admin:{hsh}""", [p, hsh])

    p, feed = password(symbols="!#%^*-_.@~"), pick(ORGS).replace("-", "") + "Feed"
    sec("nuget-config-password", "config", "nuget-config", f"""<packageSourceCredentials>
  <{feed}>
    <add key="Username" value="{pick(USERS)}" />
    <add key="ClearTextPassword" value="{p}" />
  </{feed}>
</packageSourceCredentials>""", [p])

    secret_b64 = base64.b64encode(password().encode()).decode()
    user_b64 = base64.b64encode(pick(USERS).encode()).decode()
    sec("kubernetes-secret-yaml", "config", "k8s-secret-data", f"""apiVersion: v1
kind: Secret
metadata:
  name: {pick(REPOS)}-db
  namespace: prod
type: Opaque
data:
  username: {user_b64}
  password: {secret_b64}""", [secret_b64])

    p = password(symbols="!#%^*-_.@~")
    sec("generic-api-key", "config", "k8s-secret-stringdata", f"""apiVersion: v1
kind: Secret
metadata:
  name: smtp-credentials
stringData:
  SMTP_USER: mailer
  SMTP_PASSWORD: "{p}\"""", [p])

    p = mixed(R.randint(12, 18), ALNUM + "-_=")
    sec("hashicorp-tf-password", "config", "terraform-tfvars-sql", f"""# prod.auto.tfvars
sql_server_name              = "{pick(ORGS)}-sql-prod"
administrator_login          = "sqladmin"
administrator_login_password = "{p}\"""", [p])

    p = mixed(R.randint(12, 18), ALNUM + "-_=")
    sec("hashicorp-tf-password", "config", "terraform-rds", f"""resource "aws_db_instance" "main" {{
  engine         = "postgres"
  instance_class = "db.t4g.medium"
  username       = "app"
  password       = "{p}"
}}""", [p])


def secrets_generic():
    k = generic_token(40)
    sec("generic-api-key", "config", "yaml-api-key", f"""integrations:
  geocoder:
    endpoint: https://geo.{pick(DOMAINS)}/v2
    api_key: {k}
    timeout_s: 5""", [k])

    c = generic_token(48)
    sec("generic-api-key", "config", "toml-client-secret", f"""[oauth.okta]
issuer = "https://{pick(ORGS)}.okta.com/oauth2/default"
client_id = "0oa{mixed(17)}"
client_secret = "{c}\"""", [c])

    t = generic_token(64)
    sec("generic-api-key", "config", "ini-access-token", f"""[upload]
endpoint = https://cdn.{pick(DOMAINS)}/ingest
access_token = {t}
retries = 3""", [t])

    k = generic_token(36)
    sec("generic-api-key", "code", "java-constant", f"""public final class WeatherClient {{
    private static final String API_KEY = "{k}";
    private static final String BASE = "https://api.weather.{pick(DOMAINS)}/v1";
}}""", [k])

    c = generic_token(40)
    sec("generic-api-key", "code", "go-oauth-config", f"""conf := &oauth2.Config{{
	ClientID:     "{hexs(20)}",
	ClientSecret: "{c}",
	Endpoint:     oauth2.Endpoint{{TokenURL: "https://auth.{pick(DOMAINS)}/token"}},
}}""", [c])

    k = generic_token(32)
    sec("generic-api-key", "code", "php-define", f"""define('PAYMENT_GATEWAY_API_KEY', '{k}');
define('PAYMENT_GATEWAY_URL', 'https://pay.{pick(DOMAINS)}/api');""", [k])

    k = generic_token(40)
    sec("generic-api-key", "code", "ts-config-object", f"""export const config = {{
  region: 'eu-west-1',
  maps: {{ accessToken: '{k}' }},
}};""", [k])

    k = generic_token(40)
    sec("generic-api-key", "config", "xml-element-tag", f"""<settings>
  <exchange>
    <endpoint>https://fx.{pick(DOMAINS)}/latest</endpoint>
    <apiKey>{k}</apiKey>
  </exchange>
</settings>""", [k])


def secrets_prose():
    p = password()
    sec("generic-api-key", "prose", "prose-english", f"""Reminder for tomorrow: the staging Postgres superuser password is {p} (user postgres). Change it after the migration.""", [p])

    p = password()
    sec("generic-api-key", "prose", "prose-german", f"""Das Passwort für den Admin-Account im Grafana ist {p} – bitte nach dem ersten Login ändern.""", [p])

    p = password()
    sec("generic-api-key", "prose", "prose-portuguese", f"""A senha do usuário root no servidor de build é {p}, não compartilhe fora do time.""", [p])

    p = password()
    sec("generic-api-key", "prose", "prose-japanese", f"""本番DBの管理者パスワードは {p} です。作業後に変更してください。""", [p])

    p = password()
    sec("generic-api-key", "prose", "prose-french", f"""Le mot de passe du compte de service « sftp-import » est {p} ; il expire à la fin du mois.""", [p])

    p = password()
    sec("generic-api-key", "prose", "meeting-notes", f"""Notes 12/03
- VPN for contractors: user `ext-{pick(USERS)}`, pass `{p}`
- TODO: move this into 1Password""", [p])

    k = generic_token(40)
    sec("generic-api-key", "prose", "markdown-table-services", f"""| service | login | key |
|---|---|---|
| geocoder | team@{pick(DOMAINS)} | {k} |
| status page | sso | — |""", [k])

    p, u = password(), pick(USERS)
    sec("generic-api-key", "prose", "commit-message", f"""commit {sha()}
Author: {u} <{u}@{pick(DOMAINS)}>

    temp: hardcode smtp password ({p}) until vault agent works""", [p])


def secrets_extra_kinds():
    t = f"{R.randint(10**9, 8 * 10**9)}:AA{mixed(33, ALNUM + '-_')}"
    sec("telegram-bot-api-token", "env", "dotenv-telegram", f"""TELEGRAM_BOT_TOKEN={t}
TELEGRAM_CHAT_ID=-100{R.randint(10**9, 10**10 - 1)}""", [t])

    t = "dop_v1_" + hexs(64)
    sec("digitalocean-pat", "cli", "doctl-auth", f"""doctl auth init --context {pick(ORGS)} --access-token {t}""", [t])

    t = "dapi" + hexs(32)
    sec("databricks-api-token", "config", "databrickscfg", f"""# ~/.databrickscfg
[DEFAULT]
host  = https://adb-{R.randint(10**15, 10**16 - 1)}.{R.randint(1, 19)}.azuredatabricks.net
token = {t}""", [t])

    t = f"glsa_{mixed(32)}_{hexs(8)}"
    sec("grafana-service-account-token", "code", "python-grafana-client", f"""headers = {{"Authorization": "Bearer {t}"}}
requests.post(f"{{GRAFANA}}/api/annotations", json=payload, headers=headers)""", [t])

    t = f"PMAK-{hexs(24)}-{hexs(34)}"
    sec("postman-api-token", "cli", "newman-run", f"""newman run https://api.getpostman.com/collections/{uuid4()}?apikey={t} -e staging.json""", [t])

    t = "HRKU-AA" + mixed(58, ALNUM + "-_")
    sec("heroku-api-key-v2", "env", "shell-export", f"""export HEROKU_API_KEY={t}
heroku releases -a {pick(REPOS)}""", [t])

    t = "AGE-SECRET-KEY-1" + rs("QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L".upper(), 58)
    sec("age-secret-key", "config", "sops-age-keys", f"""# ~/.config/sops/age/keys.txt
# created: {ts()[:19]}Z
# public key: age1{rs('qpzry9x8gf2tvdw0s3jn54khce6mua7l', 58)}
{t}""", [t])

    t = "rubygems_" + hexs(48)
    sec("rubygems-api-token", "config", "gem-credentials", f"""# ~/.gem/credentials
---
:rubygems_api_key: {t}""", [t])

    t = f"https://{pick(ORGS).replace('-', '')}.webhook.office.com/webhookb2/{uuid4()}@{uuid4()}/IncomingWebhook/{hexs(32)}/{uuid4()}"
    sec("microsoft-teams-webhook", "config", "teams-webhook-yaml", f"""notifications:
  teams:
    webhook_url: {t}""", [t.split("/IncomingWebhook/")[1]])

    cred = f"{hexs(8)}:{hexs(8)}"
    sec("sidekiq-sensitive-url", "config", "gemfile-source", f"""source "https://{cred}@gems.contribsys.com/" do
  gem "sidekiq-pro"
end""", [cred])


def secrets_tags_and_headers():
    t = xoxb()
    sec("slack-bot-token", "tags", "tag-only", "Slack bot for #releases set up; token kept as a tag.", [t], tags=["slack", f"token:{t}"])

    k = openai_key()
    sec("openai-api-key", "tags", "tag-only", "Key for the eval harness (personal project).", [k], tags=[k])

    k = stripe()
    sec("stripe-access-token", "tags", "tag-only", "Stripe live key for the migration script, remove when done.", [k], tags=["stripe", "migration", k])

    p = password()
    sec("generic-api-key", "tags", "tag-only", "Wi-Fi and printer setup for the Lisbon office.", [p], tags=["office", f"wifi-password={p}"])

    t = hvs()
    sec("vault-service-token", "tags", "tag-only", "Root token generated during the unseal ceremony.", [t], tags=["vault", t])

    t = generic_token(40)
    sec("curl-auth-header", "cli", "curl-x-api-key-header", f"""curl -s -H 'X-API-Key: {t}' https://api.{pick(DOMAINS)}/v2/status | jq .""", [t])

    t = generic_token(48)
    sec("curl-auth-header", "cli", "curl-bearer-opaque", f"""curl --fail -H "Authorization: Bearer {t}" https://uptime.{pick(DOMAINS)}/api/checks""", [t])

    basic = base64.b64encode(f"{pick(USERS)}:{password()}".encode()).decode()
    sec("curl-auth-header", "cli", "curl-basic-header", f"""curl -H "Authorization: Basic {basic}" https://artifactory.{pick(DOMAINS)}/artifactory/api/storage/libs-release""", [basic])

    k = generic_token(40)
    sec("generic-api-key", "prose", "error-message-echo", f"""Error: 401 Unauthorized - {{"message":"Invalid API key '{k}'. Generate a new one in Settings → API."}}""", [k])

    t = jwt(now_claims(role="service"))
    sec("jwt", "env", "supabase-service-role", f"""SUPABASE_URL=https://{rs(LOWER, 20)}.supabase.co
SUPABASE_SERVICE_ROLE_KEY={t}""", [t])

    t = github_pat()
    sec("github-fine-grained-pat", "env", "gh-actions-secret-set", f"""gh secret set RELEASE_TOKEN --body "{t}" -R {pick(ORGS)}/{pick(REPOS)}""", [t])

    k = generic_token(40)
    sec("generic-api-key", "config", "github-actions-hardcoded-env", f"""jobs:
  deploy:
    runs-on: ubuntu-latest
    env:
      FASTLY_API_TOKEN: {k}
    steps:
      - uses: actions/checkout@v4""", [k])


# ================================================================= NEAR-MISSES
def near_git():
    msgs = [f"Merge pull request #{R.randint(100, 999)} from {pick(ORGS)}/fix-retry", "bump deps",
            "docs: clarify token rotation", "fix flaky test"]
    lines = "\n".join(f"{sha()} {msg}" for msg in msgs)
    nm("git-sha", "git-log-oneline-full", f"$ git log --format='%H %s' -4\n{lines}")
    u = pick(USERS)
    nm("git-sha", "commit-header", f"""commit {sha()}
Merge: {sha(7)} {sha(7)}
Author: {u} <{u}@{pick(DOMAINS)}>
Date:   Tue Dec 1 14:02:11 2026 +0000

    Merge branch 'release/{semver()}'""")
    nm("git-sha", "actions-pinned-sha", f"""steps:
  - uses: actions/checkout@{sha()} # v4.2.2
  - uses: actions/setup-node@{sha()} # v4.1.0
    with:
      node-version: 22""")
    nm("git-sha", "github-commit-url", f"""regression introduced in https://github.com/{pick(ORGS)}/{pick(REPOS)}/commit/{sha()} — reverting""")
    nm("git-sha", "pip-git-pin", f"""pip install "git+https://github.com/{pick(ORGS)}/{pick(REPOS)}.git@{sha()}#egg=client\"""")
    nm("git-sha", "git-bisect", f"""$ git bisect good
Bisecting: 3 revisions left to test after this (roughly 2 steps)
[{sha()}] perf: cache compiled regexes
$ git bisect bad
{sha()} is the first bad commit""")
    nm("git-sha", "cargo-lock-git-source", f"""[[package]]
name = "tokio-util"
version = "0.7.13"
source = "git+https://github.com/tokio-rs/tokio?rev={sha(12)}#{sha()}\"""")
    nm("git-sha", "git-rev-parse", f"""$ git rev-parse HEAD origin/main
{sha()}
{sha()}""")
    nm("git-sha", "reflog", "\n".join(f"{sha(7)} HEAD@{{{i}}}: {m}" for i, m in enumerate(
        ["commit: tighten timeout", "checkout: moving from main to fix/tokens", "pull: Fast-forward"])) + f"\n(full: {sha()})")
    nm("git-sha", "submodule-status", f"""$ git submodule status
 {sha()} vendor/libsodium (1.0.20-RELEASE)
+{sha()} third_party/protobuf (v29.2-14-g{sha(9)})""")
    nm("short-sha", "short-sha-prose", f"""the retry fix landed in {sha(7)}, and {sha(8)} reverted the token refresh change""")
    nm("short-sha", "go-pseudo-version", f"""require github.com/{pick(ORGS)}/{pick(REPOS)} v0.0.0-2026{R.randint(1, 11):02d}{R.randint(10, 28)}{R.randint(100000, 235959)}-{sha(12)}""")
    nm("short-sha", "docker-tag-sha", f"""image: ghcr.io/{pick(ORGS)}/{pick(REPOS)}:sha-{sha(7)}""")
    nm("short-sha", "git-reset-output", f"""$ git reset --hard origin/main
HEAD is now at {sha(7)} chore: drop unused token helper""")
    nm("short-sha", "git-describe", f"""$ git describe --tags --long
v{semver()}-17-g{sha(10)}""")


def near_integrity():
    nm("lockfile-integrity", "package-lock", f"""    "node_modules/lodash": {{
      "version": "4.17.21",
      "resolved": "https://registry.npmjs.org/lodash/-/lodash-4.17.21.tgz",
      "integrity": "{sri()}",
      "license": "MIT"
    }}""")
    nm("lockfile-integrity", "yarn-lock", f"""chalk@^5.3.0:
  version "5.3.0"
  resolved "https://registry.yarnpkg.com/chalk/-/chalk-5.3.0.tgz#{sha()}"
  integrity {sri()}""")
    nm("lockfile-integrity", "pnpm-lock", f"""  /zod@3.23.8:
    resolution: {{integrity: {sri()}}}
    dev: false""")
    nm("lockfile-integrity", "sri-script-tag", f"""<script src="https://cdn.jsdelivr.net/npm/bootstrap@5.3.3/dist/js/bootstrap.bundle.min.js" integrity="{sri(384)}" crossorigin="anonymous"></script>""")
    nm("lockfile-integrity", "nix-hash", f"""  src = fetchFromGitHub {{
    owner = "{pick(ORGS)}";
    repo = "{pick(REPOS)}";
    rev = "v{semver()}";
    hash = "sha256-{b64bytes(32)}";
  }};""")
    nm("lockfile-integrity", "pip-require-hashes", f"""requests==2.32.3 \\
    --hash=sha256:{sha(64)} \\
    --hash=sha256:{sha(64)}""")
    nm("lockfile-integrity", "poetry-lock", f"""[[package]]
name = "idna"
version = "3.10"
files = [
    {{file = "idna-3.10-py3-none-any.whl", hash = "sha256:{sha(64)}"}},
    {{file = "idna-3.10.tar.gz", hash = "sha256:{sha(64)}"}},
]""")
    nm("lockfile-integrity", "cargo-lock-checksum", f"""[[package]]
name = "serde"
version = "1.0.217"
source = "registry+https://github.com/rust-lang/crates.io-index"
checksum = "{sha(64)}\"""")
    nm("lockfile-integrity", "terraform-lock-hcl", f"""provider "registry.terraform.io/hashicorp/aws" {{
  version     = "5.82.2"
  constraints = "~> 5.0"
  hashes = [
    "h1:{b64bytes(32)}",
    "zh:{sha(64)}",
  ]
}}""")
    nm("lockfile-integrity", "go-sum", f"""golang.org/x/crypto v0.31.0 h1:{b64bytes(32)}
golang.org/x/crypto v0.31.0/go.mod h1:{b64bytes(32)}""")


def near_digests():
    nm("docker-digest", "docker-pull-digest", f"""$ docker pull postgres:16.6
16.6: Pulling from library/postgres
Digest: sha256:{sha(64)}
Status: Downloaded newer image for postgres:16.6""")
    nm("docker-digest", "k8s-image-digest", f"""    containers:
      - name: api
        image: ghcr.io/{pick(ORGS)}/{pick(REPOS)}@sha256:{sha(64)}
        imagePullPolicy: IfNotPresent""")
    nm("docker-digest", "docker-images-digests", f"""$ docker images --digests redis
REPOSITORY   TAG       DIGEST                                                                    IMAGE ID       CREATED       SIZE
redis        7.4       sha256:{sha(64)}   {sha(12)}   2 weeks ago   117MB""")
    nm("docker-digest", "sha256sum-output", f"""$ sha256sum memlane-{semver()}-linux-amd64.tar.gz
{sha(64)}  memlane-linux-amd64.tar.gz""")
    nm("docker-digest", "sha1-labelled", f"""SHA1 checksum of the firmware image: {sha(40)} (matches the vendor's release notes)""")
    nm("docker-digest", "md5-labelled", f"""md5sum backup-2026-12-01.tar → {sha(32)}; same as yesterday's, so nothing changed""")
    nm("docker-digest", "openssl-dgst", f"""$ openssl dgst -sha256 release.zip
SHA2-256(release.zip)= {sha(64)}""")
    nm("docker-digest", "release-checksums-table", f"""| file | sha256 |
|---|---|
| cli-darwin-arm64 | `{sha(64)}` |
| cli-linux-amd64 | `{sha(64)}` |""")
    nm("docker-digest", "dockerfile-from-digest", f"""FROM python:3.12-slim@sha256:{sha(64)} AS base
RUN pip install --no-cache-dir uv""")


def near_uuid():
    nm("uuid", "request-id-log", f"""{ts()} WARN request_id={uuid4()} path=/v1/sessions status=503 upstream_timeout=2.0s""")
    nm("uuid", "trace-ids", f"""trace_id={hexs(32)} span_id={hexs(16)} service=checkout msg="payment authorized\"""")
    nm("uuid", "k8s-uid", f"""metadata:
  name: {pick(REPOS)}-7d9f8b6c5-x2k4q
  uid: {uuid4()}
  resourceVersion: "{R.randint(100000, 9999999)}\"""")
    nm("uuid", "sql-row", f"""INSERT INTO orders (id, customer_id, total_cents) VALUES ('{uuid4()}', '{uuid4()}', {R.randint(100, 99999)});""")
    nm("uuid", "http-response-header", f"""HTTP/2 429
x-request-id: {uuid4()}
x-ratelimit-remaining: 0
retry-after: 30""")
    nm("uuid", "stripe-request-id", f"""Stripe returned card_declined (request id req_{mixed(14)}), customer cus_{mixed(14)}, charge ch_3{mixed(23)}""")
    nm("uuid", "azure-ids-prose", f"""The subscription id is {uuid4()} and the tenant id is {uuid4()}; both are fine to paste in tickets.""")
    nm("uuid", "idempotency-key", f"""curl -X POST https://api.{pick(DOMAINS)}/v1/payouts -H "Idempotency-Key: {uuid4()}" -H "Content-Type: application/json" -d @payout.json""")
    nm("uuid", "sentry-event-id", f"""Sentry issue {pick(REPOS).upper()}-{R.randint(100, 999)}, event_id {hexs(32)}, first seen {ts()}""")


def near_fingerprints():
    nm("ssh-fingerprint", "ssh-first-connect", f"""The authenticity of host '{pick(HOSTS)} (10.0.{R.randint(0, 255)}.{R.randint(1, 254)})' can't be established.
ED25519 key fingerprint is {ssh_fp()}.
Are you sure you want to continue connecting (yes/no/[fingerprint])?""")
    nm("ssh-fingerprint", "ssh-keygen-l", f"""$ ssh-keygen -lf ~/.ssh/id_ed25519.pub
256 {ssh_fp()} {pick(USERS)}@{pick(HOSTS)} (ED25519)
$ ssh-keygen -E md5 -lf ~/.ssh/id_ed25519.pub
256 MD5:{md5_fp()} {pick(USERS)}@{pick(HOSTS)} (ED25519)""")
    nm("ssh-fingerprint", "authorized-keys", f"""# ~/.ssh/authorized_keys
{ssh_pubkey()} {pick(USERS)}@{pick(HOSTS)}
{ssh_pubkey()} ci@{pick(HOSTS)}""")
    nm("ssh-fingerprint", "known-hosts", f"""{pick(HOSTS)}.{pick(DOMAINS)} {ssh_pubkey()}""")
    u = pick(USERS)
    nm("ssh-fingerprint", "gpg-key-id", f"""$ gpg --list-secret-keys --keyid-format=long
sec   ed25519/{hexs(16, upper=True)} 2025-03-14 [SC]
      {hexs(40, upper=True)}
uid                 [ultimate] {u} <{u}@{pick(DOMAINS)}>
$ git config --global user.signingkey {hexs(16, upper=True)}""")
    groups = [hexs(4, upper=True) for _ in range(10)]
    fp = " ".join(groups[:5]) + "  " + " ".join(groups[5:])
    nm("ssh-fingerprint", "gpg-fingerprint-prose", f"""Release artifacts are signed with key {fp}; verify with `gpg --verify` before installing.""")
    nm("ssh-fingerprint", "tls-cert-fingerprint", f"""$ openssl x509 -noout -fingerprint -sha256 -in cert.pem
sha256 Fingerprint={':'.join(hexs(2, upper=True) for _ in range(32))}""")
    pubkey = base64.b64encode(bytes(R.getrandbits(8) for _ in range(96))).decode()
    nm("ssh-fingerprint", "pgp-public-key-block", f"""-----BEGIN PGP PUBLIC KEY BLOCK-----

{chr(10).join(("mDMEZ" + pubkey)[i:i + 64] for i in range(0, len(pubkey) + 5, 64))}
={rs(B64, 4)}
-----END PGP PUBLIC KEY BLOCK-----""")


def near_data_uri():
    nm("data-uri", "css-background", f""".spinner {{ background-image: url("{tiny_png()}"); }}""")
    nm("data-uri", "html-img", f"""<img alt="status" width="8" height="8" src="{tiny_png()}">""")
    nm("data-uri", "markdown-img", f"""![pixel]({tiny_gif()})""")
    nm("data-uri", "json-avatar", f"""{{"user":"{pick(USERS)}","avatar":"{tiny_png()}"}}""")
    nm("data-uri", "jsx-placeholder", f"""<Image placeholder="blur" blurDataURL="{tiny_png()}" src={{hero}} />""")


def near_versions():
    nm("semver", "package-json-deps", f"""  "dependencies": {{
    "next": "15.1.3",
    "react": "^19.0.0",
    "zod": "~3.23.8",
    "@tanstack/react-query": "5.62.{R.randint(0, 20)}"
  }}""")
    nm("semver", "version-output", f"""$ node --version && npm --version && python3 --version
v22.12.0
10.9.2
Python 3.12.8""")
    nm("semver", "changelog", f"""## [{semver()}] - 2026-11-{R.randint(10, 28)}
### Fixed
- Token refresh no longer races the session cleanup (#{R.randint(100, 999)})
## [{semver()}-rc.2+build.{R.randint(100, 999)}]""")
    nm("semver", "requirements-pins", """fastapi==0.115.6
uvicorn[standard]>=0.32,<0.35
pydantic-settings==2.7.0
python-jose[cryptography]==3.3.0""")
    nm("semver", "kernel-uname", f"""Linux {pick(HOSTS)} 6.8.0-{R.randint(40, 60)}-generic #{R.randint(40, 70)}-Ubuntu SMP PREEMPT_DYNAMIC x86_64 GNU/Linux""")
    nm("semver", "helm-chart-version", f"""apiVersion: v2
name: {pick(REPOS)}
version: {semver()}
appVersion: "{semver()}\"""")
    nm("semver", "gradle-deps", """implementation("io.jsonwebtoken:jjwt-api:0.12.6")
implementation("org.springframework.security:spring-security-crypto:6.4.2")""")


def near_paths():
    nm("file-path", "secret-paths", f"""Secrets are mounted at /var/run/secrets/kubernetes.io/serviceaccount/token and /etc/{pick(REPOS)}/tls/tls.key (files, do not copy them).""")
    nm("file-path", "nix-store-path", f"""/nix/store/{rs('0123456789abcdfghijklmnpqrsvwxyz', 32)}-openssl-3.3.2/lib/libcrypto.so.3""")
    nm("file-path", "pnpm-store-path", f"""node_modules/.pnpm/@types+jsonwebtoken@9.0.7/node_modules/@types/jsonwebtoken/index.d.ts""")
    nm("file-path", "token-source-files", f"""M  src/auth/token_store.py
M  src/auth/password_reset.py
A  tests/auth/test_secret_rotation.py""")
    nm("file-path", "cache-hash-path", f"""~/.cache/pre-commit/repo{rs(LOWER + DIGITS + '_', 8)}/py_env-python3.12/bin/ruff""")


def near_code():
    nm("password-code", "python-os-environ", """import os

DB_PASSWORD = os.environ["DB_PASSWORD"]
API_TOKEN = os.getenv("API_TOKEN", "")""")
    nm("password-code", "node-process-env", """const stripe = new Stripe(process.env.STRIPE_SECRET_KEY!, { apiVersion: '2024-12-18.acacia' });""")
    nm("password-code", "gh-actions-secrets", """      - name: Publish
        run: npm publish
        env:
          NODE_AUTH_TOKEN: ${{ secrets.NPM_TOKEN }}""")
    nm("password-code", "k8s-secretkeyref", """        env:
          - name: DATABASE_PASSWORD
            valueFrom:
              secretKeyRef:
                name: app-db
                key: password""")
    nm("password-code", "docker-login-stdin", """echo "$CR_PAT" | docker login ghcr.io -u USERNAME --password-stdin""")
    nm("password-code", "mysql-p-prompt", f"""mysql -h {pick(HOSTS)} -u admin -p
Enter password:""")
    nm("password-code", "python-getpass", """from getpass import getpass

password = getpass("Vault password: ")
token = client.auth.userpass.login(username=user, password=password)["auth"]["client_token"]""")
    nm("password-code", "terraform-sensitive-var", """variable "db_password" {
  type      = string
  sensitive = true
}

resource "aws_db_instance" "main" {
  password = var.db_password
}""")
    nm("password-code", "spring-value-annotation", """@Value("${spring.datasource.password}")
private String dbPassword;

@Value("${jwt.secret}")
private String jwtSecret;""")
    nm("password-code", "ansible-vault-var", """- name: create db user
  community.postgresql.postgresql_user:
    name: app
    password: "{{ vault_app_db_password }}\"""")
    nm("password-code", "helm-existing-secret", """auth:
  existingSecret: redis-auth
  existingSecretPasswordKey: redis-password""")
    nm("password-code", "password-validation-fn", """def validate_password(password: str) -> list[str]:
    errors = []
    if len(password) < PASSWORD_MIN_LENGTH:
        errors.append("too short")
    return errors""")
    nm("password-code", "token-enum", """enum TokenKind {
  AccessToken = "access_token",
  RefreshToken = "refresh_token",
  ClientSecret = "client_secret",
}""")
    nm("password-code", "bcrypt-hash-call", """hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=12))
if not bcrypt.checkpw(candidate.encode(), hashed):
    raise InvalidCredentials()""")
    nm("password-code", "stripe-publishable-key", f"""// publishable key: safe to ship to the browser
const stripe = await loadStripe('pk_live_51{mixed(97)}');""")
    nm("password-code", "go-struct-tags", """type Config struct {
	APIKey       string `env:"API_KEY,required"`
	ClientSecret string `env:"CLIENT_SECRET,required"`
	Password     string `env:"DB_PASSWORD" json:"-"`
}""")
    nm("password-code", "csharp-config-binding", """var apiKey = builder.Configuration["Payments:ApiKey"]
    ?? throw new InvalidOperationException("Payments:ApiKey missing");""")
    nm("password-code", "vault-cli-read", """export DB_PASS="$(vault kv get -field=password secret/prod/db)"
psql "host=db user=app password=$DB_PASS" -c 'select 1'""")
    nm("password-code", "aws-cli-profile", """aws configure set aws_access_key_id "$AWS_KEY_ID" --profile ci
aws configure set aws_secret_access_key "$AWS_SECRET" --profile ci""")
    nm("password-code", "twilio-account-sid-only", f"""Twilio account SID (not secret, appears in every API URL): {twilio_ac()}""")
    nm("password-code", "jwt-verify-code", """payload = jwt.decode(token, settings.JWT_PUBLIC_KEY, algorithms=["RS256"], audience="api")""")


def near_placeholders():
    nm("placeholder", "angle-bracket-token", """curl -H "Authorization: Bearer <YOUR_TOKEN>" https://api.github.com/user""")
    nm("placeholder", "dotenv-example", """# .env.example — copy to .env and fill in
OPENAI_API_KEY=
STRIPE_SECRET_KEY=sk_live_...
SLACK_BOT_TOKEN=xoxb-your-token
DATABASE_URL=postgres://user:password@localhost:5432/app""")
    nm("placeholder", "shell-var-refs", """export GITHUB_TOKEN=$GITHUB_TOKEN
curl -u "$JIRA_USER:$JIRA_API_TOKEN" https://jira.example.com/rest/api/2/myself""")
    nm("placeholder", "compose-interpolation", """    environment:
      POSTGRES_PASSWORD: ${POSTGRES_PASSWORD:?set it in .env}
      API_KEY: ${API_KEY}""")
    nm("placeholder", "redacted-log", f"""{ts()} INFO login ok user={pick(USERS)} password=REDACTED token=*** api_key=[redacted:generic-api-key]""")
    nm("placeholder", "masked-cli", """$ heroku config:get STRIPE_SECRET_KEY
sk_live_************************
$ gh auth status
  ✓ Token: gho_************************************""")
    nm("placeholder", "readme-config-table", """| variable | example |
|---|---|
| `SENDGRID_API_KEY` | `SG.xxxxxxxx.xxxxxxxx` |
| `AWS_SECRET_ACCESS_KEY` | `<your secret key>` |""")
    nm("placeholder", "yaml-changeme", """admin:
  username: admin
  password: changeme   # replaced by the init container""")
    nm("placeholder", "windows-env-ref", """set PGPASSWORD=%DB_PASSWORD%
psql -h localhost -U app -d app""")
    nm("placeholder", "helm-template", """stringData:
  password: {{ .Values.db.password | quote }}
  apiKey: {{ required "apiKey is required" .Values.apiKey }}""")
    nm("placeholder", "replace-me", """[credentials]
client_id = "REPLACE_ME"
client_secret = "REPLACE_ME"
api_token = "TODO"
refresh_token = null""")
    nm("placeholder", "docs-url-password", """Connect with `mongodb+srv://<username>:<password>@cluster0.example.mongodb.net/` — replace both placeholders.""")
    nm("placeholder", "xxxx-key", """OPENAI_API_KEY=sk-proj-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx""")
    nm("placeholder", "elided-github-token", """gh auth login --with-token < token.txt   # token looks like ghp_… (never paste it here)""")
    nm("placeholder", "terraform-var-ref", """provider "datadog" {
  api_key = var.datadog_api_key
  app_key = var.datadog_app_key
}""")
    nm("placeholder", "k8s-secret-empty", """apiVersion: v1
kind: Secret
metadata:
  name: app
type: Opaque
stringData:
  API_TOKEN: ""   # filled by external-secrets""")
    nm("placeholder", "password-stock-words", """Test fixtures use password="example" and token="dummy"; the mock server accepts anything.""")
    nm("placeholder", "pass-show", """export RESTIC_PASSWORD="$(pass show backup/restic)"
restic -r s3:s3.amazonaws.com/bucket backup ~/src""")


def near_prose():
    nm("keyword-prose", "token-rotation-plan", """Plan: rotate every deploy token on the 1st, revoke the old key after 24h, and keep the secret names unchanged so the pipelines don't break.""")
    nm("keyword-prose", "llm-token-budget", """max_tokens=4096, temperature=0.2; the prompt is ~12k tokens so we truncate the context window at 100k tokens.""")
    nm("keyword-prose", "hex-colors", """Theme tokens: --primary: #1E40AF; --accent: #F59E0B; --danger: #DC2626; --muted: #6B7280;""")
    nm("keyword-prose", "isbn-citations", f"""Reading list: Designing Data-Intensive Applications (ISBN {isbn13()}), Security Engineering (ISBN {isbn13()}).""")
    nm("keyword-prose", "timestamps-ipv6-mac", f"""{ts()} link up on eth0 mac=02:42:{':'.join(hexs(2) for _ in range(4))} addr=2001:db8:{hexs(4)}:{hexs(4)}::{hexs(2)}/64""")
    nm("keyword-prose", "key-format-docs", """GitHub personal access tokens start with the prefix ghp_ followed by 36 alphanumeric characters; fine-grained ones start with github_pat_. Our scanner flags both.""")
    nm("keyword-prose", "where-secret-lives", """The prod database password lives in 1Password under "Infra / prod-db"; ask in #platform if you need access. Do not paste it anywhere.""")
    nm("keyword-prose", "keyboard-and-keys", """Press the Escape key twice to clear the prompt; the primary key on that table is (tenant_id, created_at).""")
    nm("keyword-prose", "secret-sauce", """Honestly the secret sauce is just caching the token introspection result for 30 seconds.""")
    nm("keyword-prose", "ticket-numbers", f"""Fixed in PROJ-{R.randint(1000, 9999)}; see incident INC{R.randint(1000000, 9999999)} and PR #{R.randint(1000, 9999)}.""")
    nm("keyword-prose", "csrf-field-description", """The form posts a hidden csrf_token field; the server compares it with the session value in constant time.""")
    nm("keyword-prose", "prose-german-no-secret", """Das Token läuft nach 15 Minuten ab; danach holt der Client mit dem Refresh-Token ein neues.""")
    nm("keyword-prose", "prose-spanish-no-secret", """Recuerda: la contraseña nunca se guarda en texto plano, solo su hash con argon2id.""")
    nm("keyword-prose", "cron-and-ports", f"""cron: "*/15 * * * *", listen on 0.0.0.0:{R.randint(8000, 9000)}, max body 8 MiB, idle timeout 75s""")
    nm("keyword-prose", "benchmark-numbers", f"""p50 {R.randint(10, 40)}ms, p99 {R.randint(100, 400)}ms over {R.randint(10000, 99999)} requests; tokens/s = {R.randint(50, 200)}.{R.randint(0, 9)}""")


def near_tags():
    nm("tags", "tag-commit-sha", "Deployed the hotfix to production.", tags=["deploy", sha()])
    nm("tags", "tag-digest", "Pinned the base image after the CVE scan.", tags=["docker", f"sha256:{sha(64)}"])
    nm("tags", "tag-uuid", "Customer reported duplicate invoices; traced to the retry loop.", tags=["incident", uuid4()])
    nm("tags", "tag-semver", "Release notes drafted.", tags=["release", f"v{semver()}"])
    nm("tags", "tag-integrity", "Lockfile drift between CI and local.", tags=["npm", sri()])
    nm("tags", "tag-fingerprint", "Added the new bastion host key to known_hosts.", tags=["ssh", ssh_fp()])
    nm("tags", "tag-keywords", "Notes on the auth refactor.", tags=["token-refresh", "password-reset", "secret-rotation"])
    nm("tags", "tag-placeholder", "Documented the env vars for the worker.", tags=["env", "${API_KEY}", "<YOUR_TOKEN>"])


def main() -> None:
    for fn in (secrets_aws, secrets_gcp, secrets_azure, secrets_github, secrets_gitlab, secrets_bitbucket,
               secrets_slack, secrets_discord, secrets_stripe, secrets_twilio, secrets_mail, secrets_ai,
               secrets_registries, secrets_vault_doppler, secrets_observability, secrets_commerce,
               secrets_jwt, secrets_pem, secrets_frameworks, secrets_urls_connstrings,
               secrets_cli_passwords, secrets_misc_files, secrets_generic, secrets_prose,
               secrets_extra_kinds, secrets_tags_and_headers,
               near_git, near_integrity, near_digests, near_uuid, near_fingerprints, near_data_uri,
               near_versions, near_paths, near_code, near_placeholders, near_prose, near_tags):
        fn()
    ids = [e["id"] for e in ENTRIES]
    assert len(ids) == len(set(ids)), "duplicate ids"
    with OUT.open("w", encoding="utf-8", newline="\n") as f:
        for e in ENTRIES:
            f.write(json.dumps(e, ensure_ascii=False) + "\n")
    CTX_OUT.write_text(json.dumps(CONTEXTS, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    secrets = [e for e in ENTRIES if e["label"] == "secret"]
    print(f"wrote {OUT} ({len(secrets)} secret, {len(ENTRIES) - len(secrets)} near-miss)")


if __name__ == "__main__":
    main()
