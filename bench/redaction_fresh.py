"""Write tests/data/redaction/fresh.jsonl: a fresh held-out redaction corpus (split ``fresh``).

Run: python -m bench.redaction_fresh  (rewrites the file; byte-identical on every run)

Written without reading the redaction rules or the entries of corpus.jsonl, only its format
(tests/data/redaction/README.md): same fields, `kind` a gitleaks rule id for secrets (or
`generic-api-key` where gitleaks has no dedicated rule) and a category for near-misses. Every
value is fake: drawn from ``random.Random(SEED)`` in the shape of the real format (prefix,
alphabet, length) so that the file is reproducible (the ``secrets`` module cannot be seeded).
None is a real credential. Score it, never tune on it: ``python -m bench.bench_redaction
--split fresh``.
"""

# ruff: noqa: E501 (the templates are data: a pasted line reads best unbroken)
from __future__ import annotations

import base64
import json
import random
import string
import uuid
from pathlib import Path
from typing import Any

SEED = 20261203
OUT = Path(__file__).resolve().parents[1] / "tests" / "data" / "redaction" / "fresh.jsonl"

R = random.Random(SEED)
LOWER, UPPER, DIGITS = string.ascii_lowercase, string.ascii_uppercase, string.digits
ALNUM = LOWER + UPPER + DIGITS
HEX = "0123456789abcdef"
B64 = ALNUM + "+/"
B64URL = ALNUM + "-_"
BASE32 = UPPER + "234567"

ENTRIES: list[dict[str, Any]] = []


def rnd(alphabet: str, n: int) -> str:
    return "".join(R.choice(alphabet) for _ in range(n))


def b64(n_bytes: int) -> str:
    return base64.b64encode(R.randbytes(n_bytes)).decode()


def b64u(data: bytes | str) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def uid() -> str:
    return str(uuid.UUID(bytes=R.randbytes(16), version=4))


def password(n: int | None = None) -> str:
    """A random password of the kind people generate or invent (letters, digits, symbols)."""
    n = n or R.randint(12, 20)
    while True:
        value = rnd(ALNUM + "!#%^*-_+=.", n)
        if (any(c in LOWER for c in value) and any(c in UPPER for c in value)
                and any(c in DIGITS for c in value)):
            return value


def human_password() -> str:
    """A password a person invents: two words, digits, a symbol."""
    words = ["Maple", "orbit", "Falcon", "copper", "Tundra", "violet", "Harbor", "pixel",
             "Summit", "lantern", "Quartz", "ember", "Nimbus", "walrus", "Cobalt", "saffron"]
    return (R.choice(words) + R.choice("!@#$%&*.-_") + R.choice(words).capitalize()
            + str(R.randint(10, 9999)))


def secret(kind: str, phrasing: str, slug: str, text: str, secrets: list[str],
           tags: list[str] | None = None) -> None:
    for value in secrets:
        assert value and any(value in stored for stored in (text, *(tags or []))), (slug, value)
    ENTRIES.append({"id": f"{kind}/{slug}", "label": "secret", "kind": kind,
                    "phrasing": phrasing, "split": "fresh", "text": text, "tags": tags or [],
                    "secrets": secrets})


def near(kind: str, slug: str, text: str, tags: list[str] | None = None) -> None:
    ENTRIES.append({"id": f"near-miss/{slug}", "label": "near-miss", "kind": kind,
                    "phrasing": None, "split": "fresh", "text": text, "tags": tags or [],
                    "secrets": []})


# ---------------------------------------------------------------- shapes of real formats

def aws_id(prefix: str = "AKIA") -> str:
    return prefix + rnd(BASE32, 16)


def aws_secret() -> str:
    return rnd(B64, 40)


def ghp(prefix: str = "ghp_") -> str:
    return prefix + rnd(ALNUM, 36)


def github_pat() -> str:
    return "github_pat_11" + rnd(BASE32 + DIGITS, 20) + "_" + rnd(ALNUM, 59)


def glpat() -> str:
    return "glpat-" + rnd(ALNUM + "-_", 20)


def xoxb() -> str:
    return f"xoxb-{R.randint(10**10, 10**12)}-{R.randint(10**12, 10**13)}-{rnd(ALNUM, 24)}"


def xoxp() -> str:
    return (f"xoxp-{R.randint(10**10, 10**12)}-{R.randint(10**10, 10**12)}-"
            f"{R.randint(10**12, 10**13)}-{rnd(HEX, 32)}")


def xapp() -> str:
    return f"xapp-1-A{rnd(UPPER + DIGITS, 10)}-{R.randint(10**12, 10**13)}-{rnd(HEX, 64)}"


def slack_hook() -> str:
    return (f"https://hooks.slack.com/services/T{rnd(UPPER + DIGITS, 8)}/"
            f"B{rnd(UPPER + DIGITS, 10)}/{rnd(ALNUM, 24)}")


def stripe(prefix: str = "sk_live_", n: int = 99) -> str:
    return prefix + rnd(ALNUM, n)


def sendgrid() -> str:
    return "SG." + rnd(B64URL, 22) + "." + rnd(B64URL, 43)


def openai() -> str:
    return "sk-proj-" + rnd(B64URL, 74) + "T3BlbkFJ" + rnd(B64URL, 74)


def openai_legacy() -> str:
    return "sk-" + rnd(ALNUM, 20) + "T3BlbkFJ" + rnd(ALNUM, 20)


def anthropic(kind: str = "api03") -> str:
    return f"sk-ant-{kind}-" + rnd(B64URL, 93) + "AA"


def aiza() -> str:
    return "AIza" + rnd(B64URL, 35)


def gocspx() -> str:
    return "GOCSPX-" + rnd(B64URL, 28)


def npm() -> str:
    return "npm_" + rnd(ALNUM, 36)


def pypi() -> str:
    return "pypi-AgEIcHlwaS5vcmc" + rnd(B64URL, 120)


def hvs() -> str:
    return "hvs." + rnd(ALNUM, 24)


def hvs_long() -> str:
    return "hvs.CAESI" + rnd(B64URL, 86)


def jwt(claims: dict[str, Any], alg: str = "HS256") -> str:
    header = b64u(json.dumps({"alg": alg, "typ": "JWT"}, separators=(",", ":")))
    body = b64u(json.dumps(claims, separators=(",", ":")))
    sig = b64u(R.randbytes(32 if alg.startswith("HS") else 256))
    return f"{header}.{body}.{sig}"


def pem_lines(head: str, n_bytes: int) -> list[str]:
    body = head + b64(n_bytes)
    return [body[i:i + 64] for i in range(0, len(body), 64)]


def pem(label: str, lines: list[str], newline: str = "\n") -> str:
    return newline.join([f"-----BEGIN {label}-----", *lines, f"-----END {label}-----"])


def azure_key() -> str:
    return b64(64)


def sha1() -> str:
    return rnd(HEX, 40)


def sha256() -> str:
    return rnd(HEX, 64)


# ---------------------------------------------------------------- secrets: cloud

k1, s1 = aws_id(), aws_secret()
secret("aws-access-token", "console", "aws-cli-configure-transcript",
       f"$ aws configure --profile staging\nAWS Access Key ID [None]: {k1}\n"
       f"AWS Secret Access Key [None]: {s1}\nDefault region name [None]: eu-west-1\n"
       "Default output format [None]: json", [k1, s1])
k2, s2 = aws_id(), aws_secret()
secret("aws-access-token", "config", "aws-credentials-ini",
       f"~/.aws/credentials on the build box:\n[default]\naws_access_key_id = {k2}\n"
       f"aws_secret_access_key = {s2}\nregion = us-east-2", [k2, s2])
k3, s3 = aws_id(), aws_secret()
secret("aws-access-token", "json", "aws-create-access-key-output",
       '{\n    "AccessKey": {\n        "UserName": "ci-uploader",\n        "AccessKeyId": "'
       + k3 + '",\n        "Status": "Active",\n        "SecretAccessKey": "' + s3
       + '",\n        "CreateDate": "2026-11-30T09:12:44+00:00"\n    }\n}', [k3, s3])
k4, s4 = aws_id("ASIA"), aws_secret()
tok4 = "IQoJb3JpZ2luX2VjE" + rnd(B64, 300)
secret("aws-access-token", "env", "aws-sts-session-export",
       f"export AWS_ACCESS_KEY_ID={k4}\nexport AWS_SECRET_ACCESS_KEY={s4}\n"
       f"export AWS_SESSION_TOKEN={tok4}", [k4, s4, tok4])
k5, s5 = aws_id(), aws_secret()
secret("aws-access-token", "code", "boto3-client-literal",
       'import boto3\n\ns3 = boto3.client(\n    "s3",\n    aws_access_key_id="' + k5
       + '",\n    aws_secret_access_key="' + s5 + '",\n)', [k5, s5])
k6, s6 = aws_id(), aws_secret()
secret("aws-access-token", "prose", "aws-slack-note",
       f"hey, for the migration use the temp IAM user: key id {k6} and the secret is {s6} "
       "— I'll rotate it Friday", [k6, s6])
k7, s7 = aws_id(), aws_secret()
secret("aws-access-token", "cli", "docker-run-aws-env",
       f"docker run --rm -e AWS_ACCESS_KEY_ID={k7} -e AWS_SECRET_ACCESS_KEY={s7} "
       "amazon/aws-cli s3 ls s3://acme-backups", [k7, s7])

gcp_lines = pem_lines("MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQ", 1180)
gcp_key = pem("PRIVATE KEY", gcp_lines, "\\n") + "\\n"
secret("private-key", "json", "gcp-service-account-json",
       '{\n  "type": "service_account",\n  "project_id": "acme-analytics-prod",\n'
       f'  "private_key_id": "{sha1()}",\n  "private_key": "{gcp_key}",\n'
       '  "client_email": "etl-runner@acme-analytics-prod.iam.gserviceaccount.com",\n'
       f'  "client_id": "{R.randint(10**20, 10**21)}",\n'
       '  "token_uri": "https://oauth2.googleapis.com/token"\n}',
       [gcp_lines[3], gcp_lines[10], gcp_lines[-2]])
gcp2 = pem_lines("MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQ", 1180)
secret("private-key", "env", "gcp-key-in-env-one-line",
       'GOOGLE_PRIVATE_KEY="' + pem("PRIVATE KEY", gcp2, "\\n") + '\\n"\n'
       "GOOGLE_CLIENT_EMAIL=sheets-sync@acme-internal.iam.gserviceaccount.com",
       [gcp2[2], gcp2[12], gcp2[-2]])
a1 = aiza()
secret("gcp-api-key", "code", "firebase-config-js",
       "const firebaseConfig = {\n  apiKey: \"" + a1 + "\",\n  authDomain: \"acme-chat.firebaseapp.com\",\n"
       "  projectId: \"acme-chat\",\n};", [a1])
a2 = aiza()
secret("gcp-api-key", "url", "maps-api-url",
       f"curl 'https://maps.googleapis.com/maps/api/geocode/json?address=Berlin&key={a2}'", [a2])
a3 = aiza()
secret("gcp-api-key", "env", "gemini-key-env", f"GEMINI_API_KEY={a3}", [a3])
g1 = gocspx()
secret("generic-api-key", "json", "google-oauth-client-secret-json",
       '{"web":{"client_id":"' + str(R.randint(10**11, 10**12)) + '-' + rnd(LOWER + DIGITS, 32)
       + '.apps.googleusercontent.com","project_id":"acme-login","client_secret":"' + g1
       + '","redirect_uris":["http://localhost:8080/callback"]}}', [g1])
g2 = gocspx()
secret("generic-api-key", "env", "google-oauth-secret-env",
       f"GOOGLE_CLIENT_ID=8812734.apps.googleusercontent.com\nGOOGLE_CLIENT_SECRET={g2}", [g2])

az1 = azure_key()
secret("generic-api-key", "config", "azure-storage-connection-string",
       "appsettings.json has\n\"StorageConnection\": \"DefaultEndpointsProtocol=https;AccountName="
       f"acmeassets;AccountKey={az1};EndpointSuffix=core.windows.net\"", [az1])
az2 = azure_key()
secret("generic-api-key", "cli", "az-storage-cli-account-key",
       f"az storage blob upload --account-name acmelogs --account-key {az2} "
       "--container-name nightly --file dump.tar.gz --name dump.tar.gz", [az2])
sig = base64.b64encode(R.randbytes(32)).decode()
sig_q = sig.replace("+", "%2B").replace("/", "%2F").replace("=", "%3D")
secret("generic-api-key", "url", "azure-sas-url",
       "download it from https://acmeexports.blob.core.windows.net/reports/q3.csv?sv=2022-11-02"
       f"&ss=b&srt=o&sp=r&se=2026-12-31T23:59:59Z&st=2026-12-01T00:00:00Z&spr=https&sig={sig_q}",
       [sig_q])
az3 = azure_key()
secret("generic-api-key", "env", "azure-storage-key-env", f"AZURE_STORAGE_KEY={az3}", [az3])
sb = b64(32)
secret("generic-api-key", "config", "azure-service-bus-connection",
       "Endpoint=sb://acme-events.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;"
       f"SharedAccessKey={sb}", [sb])
ad1 = rnd(ALNUM, 3) + str(R.randint(0, 9)) + "Q~" + rnd(ALNUM + "_~.-", 34)
secret("azure-ad-client-secret", "env", "azure-ad-secret-env",
       f"AZURE_TENANT_ID={uid()}\nAZURE_CLIENT_ID={uid()}\nAZURE_CLIENT_SECRET={ad1}", [ad1])
ad2 = rnd(ALNUM, 3) + str(R.randint(0, 9)) + "Q~" + rnd(ALNUM + "_~.-", 34)
secret("azure-ad-client-secret", "cli", "az-login-service-principal",
       f"az login --service-principal -u {uid()} -p {ad2} --tenant acme.onmicrosoft.com", [ad2])
do1 = "dop_v1_" + rnd(HEX, 64)
secret("digitalocean-pat", "cli", "doctl-auth-init",
       f"doctl auth init --access-token {do1}", [do1])

# ---------------------------------------------------------------- VCS

t = ghp()
secret("github-pat", "url", "git-clone-with-token",
       f"git clone https://{t}@github.com/acme/infra-private.git", [t])
t2 = ghp()
secret("github-pat", "env", "gh-token-export", f"export GH_TOKEN={t2}\ngh pr list", [t2])
t3 = ghp()
secret("github-pat", "config", "npmrc-github-packages",
       f"//npm.pkg.github.com/:_authToken={t3}\n@acme:registry=https://npm.pkg.github.com", [t3])
t4 = ghp("gho_")
secret("github-oauth", "config", "gh-hosts-yml",
       f"# ~/.config/gh/hosts.yml\ngithub.com:\n    user: jdoe\n    oauth_token: {t4}\n"
       "    git_protocol: https", [t4])
t5 = github_pat()
secret("github-fine-grained-pat", "cli", "curl-github-api-bearer",
       f'curl -H "Authorization: Bearer {t5}" -H "Accept: application/vnd.github+json" '
       "https://api.github.com/repos/acme/api/actions/runs", [t5])
t6 = github_pat()
secret("github-fine-grained-pat", "prose", "fine-grained-pat-chat",
       f"new fine-grained PAT for the release bot (expires in 90 days): {t6}", [t6])
t7 = ghp("ghs_")
secret("github-app-token", "console", "actions-debug-log",
       "2026-12-01T10:02:11.4431Z ##[debug]Evaluating: secrets.GITHUB_TOKEN\n"
       f"2026-12-01T10:02:11.4435Z ##[debug]Result: '{t7}'", [t7])
t8 = ghp("ghu_")
secret("github-app-token", "json", "github-app-user-token-response",
       '{"access_token":"' + t8 + '","expires_in":28800,"refresh_token":"'
       + (r8 := ghp("ghr_") + rnd(ALNUM, 40)) + '","token_type":"bearer"}', [t8, r8])
gl1 = glpat()
secret("gitlab-pat", "config", "gitlab-ci-variables-yaml",
       f"variables:\n  GITLAB_TOKEN: \"{gl1}\"\n  DOCKER_DRIVER: overlay2", [gl1])
gl2 = glpat()
secret("gitlab-pat", "url", "gitlab-clone-oauth2",
       f"git remote set-url origin https://oauth2:{gl2}@gitlab.com/acme/platform/deploy.git", [gl2])
gl3 = glpat()
secret("gitlab-pat", "cli", "gitlab-private-token-header",
       f"curl --header \"PRIVATE-TOKEN: {gl3}\" \"https://gitlab.example.org/api/v4/projects\"",
       [gl3])
gl4 = "glptt-" + rnd(HEX, 40)
secret("gitlab-ptt", "cli", "gitlab-trigger-curl",
       f"curl -X POST --fail -F token={gl4} -F ref=main "
       "https://gitlab.com/api/v4/projects/4412/trigger/pipeline", [gl4])
gl5 = "gldt-" + rnd(ALNUM + "-_", 20)
secret("gitlab-deploy-token", "cli", "docker-login-gitlab-deploy-token",
       f"docker login registry.gitlab.com -u gitlab+deploy-token-88 -p {gl5}", [gl5])
gl6 = "glrt-" + rnd(ALNUM + "-_", 20)
secret("gitlab-runner-authentication-token", "config", "runner-config-toml",
       '[[runners]]\n  name = "build-01"\n  url = "https://gitlab.com"\n'
       f'  token = "{gl6}"\n  executor = "docker"', [gl6])

# ---------------------------------------------------------------- chat and mail

x1 = xoxb()
secret("slack-bot-token", "env", "slack-bot-env", f"SLACK_BOT_TOKEN={x1}\nSLACK_CHANNEL=#deploys", [x1])
x2 = xoxb()
secret("slack-bot-token", "code", "slack-bolt-python",
       f'app = App(token="{x2}", signing_secret=os.environ["SLACK_SIGNING_SECRET"])', [x2])
x3 = xoxp()
secret("slack-user-token", "cli", "slack-api-curl-user-token",
       f"curl -s -H 'Authorization: Bearer {x3}' https://slack.com/api/conversations.list", [x3])
x4 = xapp()
secret("slack-app-token", "env", "slack-socket-mode-env",
       f"SLACK_APP_TOKEN={x4}\nSOCKET_MODE=true", [x4])
x5 = xapp()
secret("slack-app-token", "prose", "slack-app-token-note",
       f"the socket mode app-level token is {x5} (scope connections:write)", [x5])
h1 = slack_hook()
secret("slack-webhook-url", "cli", "slack-webhook-curl",
       f"curl -X POST -H 'Content-type: application/json' --data '{{\"text\":\"deploy done\"}}' {h1}",
       [h1.rsplit("/", 1)[1]])
h2 = slack_hook()
secret("slack-webhook-url", "config", "alertmanager-slack-yaml",
       f"receivers:\n  - name: oncall\n    slack_configs:\n      - api_url: '{h2}'\n"
       "        channel: '#alerts'", [h2.rsplit("/", 1)[1]])
sss = rnd(HEX, 32)
secret("generic-api-key", "env", "slack-signing-secret-env", f"SLACK_SIGNING_SECRET={sss}", [sss])
tg = f"{R.randint(10**9, 8 * 10**9)}:AA{rnd(B64URL, 33)}"
secret("telegram-bot-api-token", "url", "telegram-sendmessage-url",
       f"curl 'https://api.telegram.org/bot{tg}/sendMessage?chat_id=-100123&text=hi'", [tg])
tg2 = f"{R.randint(10**9, 8 * 10**9)}:AA{rnd(B64URL, 33)}"
secret("telegram-bot-api-token", "env", "telegram-token-env", f"TELEGRAM_BOT_TOKEN={tg2}", [tg2])
dc_id = str(R.randint(10**17, 10**18))
dc = b64u(dc_id) + "." + rnd(B64URL, 6) + "." + rnd(B64URL, 38)
secret("discord-api-token", "code", "discord-py-run",
       f"client.run('{dc}')  # TODO move to env", [dc])
tw_sk, tw_sec = "SK" + rnd(HEX, 32), rnd(ALNUM, 32)
secret("twilio-api-key", "env", "twilio-api-key-env",
       f"TWILIO_ACCOUNT_SID=AC{rnd(HEX, 32)}\nTWILIO_API_KEY={tw_sk}\nTWILIO_API_SECRET={tw_sec}",
       [tw_sk, tw_sec])
tw_auth = rnd(HEX, 32)
secret("generic-api-key", "cli", "twilio-curl-auth-token",
       f"curl -X POST https://api.twilio.com/2010-04-01/Accounts/AC{rnd(HEX, 32)}/Messages.json "
       f"--data-urlencode 'Body=hi' -u AC{rnd(HEX, 32)}:{tw_auth}", [tw_auth])
sg1 = sendgrid()
secret("sendgrid-api-token", "code", "sendgrid-node",
       f"sgMail.setApiKey('{sg1}');\nawait sgMail.send(msg);", [sg1])
sg2 = sendgrid()
secret("sendgrid-api-token", "config", "smtp-sendgrid-yaml",
       "smtp:\n  host: smtp.sendgrid.net\n  port: 587\n  user: apikey\n"
       f"  password: {sg2}", [sg2])
mg = "key-" + rnd(HEX, 32)
secret("mailgun-private-api-token", "cli", "mailgun-curl",
       f"curl -s --user 'api:{mg}' https://api.mailgun.net/v3/mg.acme.io/messages "
       "-F from='ops@acme.io' -F to=me@acme.io -F subject=test -F text=ok", [mg])
mg2 = rnd(HEX, 32) + "-" + rnd(HEX, 8) + "-" + rnd(HEX, 8)
secret("mailgun-private-api-token", "env", "mailgun-new-style-key-env", f"MAILGUN_API_KEY={mg2}", [mg2])
mc = rnd(HEX, 32) + "-us" + str(R.randint(2, 21))
secret("mailchimp-api-key", "env", "mailchimp-env", f"MAILCHIMP_API_KEY={mc}", [mc])
bv = "xkeysib-" + rnd(HEX, 64) + "-" + rnd(ALNUM, 16)
secret("sendinblue-api-token", "config", "brevo-key-php",
       f"$config = Configuration::getDefaultConfiguration()->setApiKey('api-key', '{bv}');", [bv])

# ---------------------------------------------------------------- payments

st1 = stripe()
secret("stripe-access-token", "env", "stripe-secret-env",
       f"STRIPE_SECRET_KEY={st1}\nSTRIPE_PUBLISHABLE_KEY=pk_live_{rnd(ALNUM, 99)}", [st1])
st2 = stripe("rk_live_")
secret("stripe-access-token", "cli", "stripe-curl-restricted",
       f"curl https://api.stripe.com/v1/charges -u {st2}: -d limit=3", [st2])
st3 = stripe("sk_live_", 24)
secret("stripe-access-token", "json", "stripe-key-escaped-json",
       '{"config": "{\\"stripe\\": {\\"key\\": \\"' + st3 + '\\"}}"}', [st3])
st4 = stripe()
secret("stripe-access-token", "code", "stripe-ruby",
       f"Stripe.api_key = '{st4}'", [st4])
wh1 = "whsec_" + rnd(ALNUM, 32)
secret("generic-api-key", "env", "stripe-webhook-secret-env", f"STRIPE_WEBHOOK_SECRET={wh1}", [wh1])
wh2 = "whsec_" + rnd(HEX, 64)
secret("generic-api-key", "console", "stripe-cli-listen-output",
       "$ stripe listen --forward-to localhost:4242/webhook\n> Ready! You are using Stripe API "
       f"Version [2024-06-20]. Your webhook signing secret is {wh2} (^C to quit)", [wh2])
sq = "EAAA" + rnd(B64URL, 60)
secret("square-access-token", "env", "square-access-token-env", f"SQUARE_ACCESS_TOKEN={sq}", [sq])
sh = "shpat_" + rnd(HEX, 32)
secret("shopify-access-token", "cli", "shopify-admin-curl",
       f"curl -H 'X-Shopify-Access-Token: {sh}' https://acme-store.myshopify.com/admin/api/2024-10/orders.json",
       [sh])
ss = "shpss_" + rnd(HEX, 32)
secret("shopify-shared-secret", "env", "shopify-shared-secret-env", f"SHOPIFY_API_SECRET={ss}", [ss])

# ---------------------------------------------------------------- AI APIs

o1 = openai()
secret("openai-api-key", "env", "openai-proj-env", f"OPENAI_API_KEY={o1}", [o1])
o2 = openai_legacy()
secret("openai-api-key", "code", "openai-python-literal",
       f'client = OpenAI(api_key="{o2}")', [o2])
o3 = openai()
secret("openai-api-key", "console", "openai-401-traceback",
       "Traceback (most recent call last):\n  File \"app.py\", line 12, in <module>\n"
       "openai.AuthenticationError: Error code: 401 - {'error': {'message': 'Incorrect API key "
       f"provided: {o3}. You can find your API key at https://platform.openai.com/account/api-keys.'}}}}",
       [o3])
an1 = anthropic()
secret("anthropic-api-key", "env", "anthropic-export", f"export ANTHROPIC_API_KEY={an1}", [an1])
an2 = anthropic()
secret("anthropic-api-key", "cli", "anthropic-curl-x-api-key",
       f'curl https://api.anthropic.com/v1/messages -H "x-api-key: {an2}" '
       '-H "anthropic-version: 2023-06-01" -H "content-type: application/json" -d @req.json',
       [an2])
an3 = anthropic("admin01")
secret("anthropic-admin-api-key", "prose", "anthropic-admin-key-note",
       f"Org admin key for usage reports, keep out of the repo: {an3}", [an3])
hf = "hf_" + rnd(LOWER + UPPER, 34)
secret("huggingface-access-token", "cli", "huggingface-cli-login",
       f"huggingface-cli login --token {hf} --add-to-git-credential", [hf])
hf2 = "hf_" + rnd(LOWER + UPPER, 34)
secret("huggingface-access-token", "code", "hf-hub-download-token",
       f'snapshot_download("acme/private-model", token="{hf2}")', [hf2])
pplx = "pplx-" + rnd(ALNUM, 48)
secret("perplexity-api-key", "env", "perplexity-env", f"PERPLEXITY_API_KEY={pplx}", [pplx])

# ---------------------------------------------------------------- package registries, infra

n1 = npm()
secret("npm-access-token", "config", "npmrc-registry-token",
       f"registry=https://registry.npmjs.org/\n//registry.npmjs.org/:_authToken={n1}", [n1])
n2 = npm()
secret("npm-access-token", "cli", "npm-token-echo-to-npmrc",
       f'echo "//registry.npmjs.org/:_authToken={n2}" > ~/.npmrc && npm publish --access public',
       [n2])
p1 = pypi()
secret("pypi-upload-token", "config", "pypirc",
       f"[distutils]\nindex-servers = pypi\n\n[pypi]\nusername = __token__\npassword = {p1}", [p1])
p2 = pypi()
secret("pypi-upload-token", "cli", "twine-upload-password-flag",
       f"twine upload -u __token__ -p {p2} dist/*", [p2])
p3 = pypi()
secret("pypi-upload-token", "env", "uv-publish-token-env", f"UV_PUBLISH_TOKEN={p3} uv publish", [p3])
rg = "rubygems_" + rnd(HEX, 48)
secret("rubygems-api-token", "config", "gem-credentials-yaml",
       f"---\n:rubygems_api_key: {rg}", [rg])
v1 = hvs()
secret("vault-service-token", "cli", "vault-login-token",
       f"$ vault login {v1}\nSuccess! You are now authenticated.", [v1])
v2 = hvs_long()
secret("vault-service-token", "env", "vault-token-env",
       f"VAULT_ADDR=https://vault.acme.internal:8200\nVAULT_TOKEN={v2}", [v2])
v3 = hvs()
secret("vault-service-token", "console", "vault-token-create-output",
       "Key                  Value\n---                  -----\n"
       f"token                {v3}\ntoken_accessor       {rnd(ALNUM, 24)}\n"
       "token_duration       768h\ntoken_renewable      true", [v3])
vb = "hvb." + rnd(B64URL, 138)
secret("vault-batch-token", "cli", "vault-batch-curl",
       f"curl -H \"X-Vault-Token: {vb}\" https://vault:8200/v1/secret/data/app", [vb])
tf = rnd(ALNUM, 14) + ".atlasv1." + rnd(ALNUM, 67)
secret("hashicorp-tf-api-token", "config", "terraformrc-credentials",
       f'credentials "app.terraform.io" {{\n  token = "{tf}"\n}}', [tf])
dp = "dp.st.prd." + rnd(ALNUM, 43)
secret("doppler-api-token", "env", "doppler-service-token", f"DOPPLER_TOKEN={dp}", [dp])
pul = "pul-" + rnd(HEX, 40)
secret("pulumi-api-token", "env", "pulumi-token-env", f"PULUMI_ACCESS_TOKEN={pul}", [pul])
gsa = "glsa_" + rnd(ALNUM, 32) + "_" + rnd(HEX, 8)
secret("grafana-service-account-token", "cli", "grafana-api-curl",
       f"curl -H 'Authorization: Bearer {gsa}' https://grafana.acme.io/api/dashboards/home", [gsa])
dbx = "dapi" + rnd(HEX, 32)
secret("databricks-api-token", "config", "databrickscfg",
       f"[DEFAULT]\nhost = https://adb-1234567890123456.7.azuredatabricks.net\ntoken = {dbx}", [dbx])
nr = "NRAK-" + rnd(UPPER + DIGITS, 27)
secret("new-relic-user-api-key", "env", "new-relic-env", f"NEW_RELIC_API_KEY={nr}", [nr])
snt = "sntryu_" + rnd(HEX, 64)
secret("sentry-user-token", "env", "sentry-auth-token-env",
       f"SENTRY_AUTH_TOKEN={snt} sentry-cli releases new 1.4.2", [snt])
lin = "lin_api_" + rnd(ALNUM, 40)
secret("linear-api-key", "code", "linear-sdk-ts", f"const linear = new LinearClient({{ apiKey: '{lin}' }});", [lin])
pm = "PMAK-" + rnd(HEX, 24) + "-" + rnd(HEX, 34)
secret("postman-api-token", "cli", "postman-newman-api-key",
       f"newman run 'https://api.getpostman.com/collections/1234?apikey={pm}'", [pm])
age = "AGE-SECRET-KEY-1" + rnd("QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L", 58)
secret("age-secret-key", "config", "age-key-file",
       "# created: 2026-11-02T11:04:19+01:00\n# public key: age1" + rnd("qpzry9x8gf2tvdw0s3jn54khce6mua7l", 58)
       + "\n" + age, [age])
fly = "fo1_" + rnd(B64URL, 43)
secret("flyio-access-token", "env", "fly-api-token-env", f"FLY_API_TOKEN={fly}", [fly])
ps = "pscale_pw_" + rnd(B64URL, 43)
secret("planetscale-password", "url", "planetscale-mysql-url",
       f"DATABASE_URL='mysql://k2x9abcdq1:{ps}@aws.connect.psdb.cloud/shop?sslaccept=strict'", [ps])
hk = "HRKU-AA" + rnd(B64URL, 58)
secret("heroku-api-key-v2", "cli", "heroku-auth-header",
       f'curl -n https://api.heroku.com/apps -H "Authorization: Bearer {hk}" '
       '-H "Accept: application/vnd.heroku+json; version=3"', [hk])
atl = "ATATT3xFfGF0" + rnd(B64URL, 174) + "=" + rnd(HEX.upper(), 8)
secret("atlassian-api-token", "env", "jira-api-token-env",
       f"JIRA_USER=jdoe@acme.io\nJIRA_API_TOKEN={atl}", [atl])

# ---------------------------------------------------------------- JWTs and keys

j1 = jwt({"sub": "user_8812", "role": "admin", "iat": 1764580000, "exp": 1764666400})
secret("jwt", "cli", "curl-bearer-jwt",
       f"curl -H 'Authorization: Bearer {j1}' https://api.acme.io/v2/me", [j1])
j2 = jwt({"iss": "https://auth.acme.io/", "sub": "auth0|64f1", "aud": "api", "exp": 1764700000},
         "RS256")
secret("jwt", "json", "jwt-in-login-response",
       '{"token_type":"Bearer","expires_in":3600,"access_token":"' + j2 + '"}', [j2])
j3 = jwt({"user_id": 42, "session": uid()})
secret("jwt", "prose", "jwt-cookie-debug",
       f"the session cookie looks like session={j3}; Path=/; HttpOnly — decoding it shows user 42",
       [j3])
j4 = jwt({"ref": "abcdefghijklmnopqrst", "role": "service_role", "iat": 1700000000,
          "exp": 2015576000})
secret("jwt", "env", "supabase-service-role-env",
       f"SUPABASE_URL=https://abcdefghijklmnopqrst.supabase.co\nSUPABASE_SERVICE_ROLE_KEY={j4}", [j4])

rsa = pem_lines("MIIEpAIBAAKCAQEA", 1180)
secret("private-key", "config", "rsa-pem-block",
       "deploy key for the staging box:\n" + pem("RSA PRIVATE KEY", rsa), [rsa[1], rsa[12], rsa[-2]])
ossh_head = "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW"
ossh = pem_lines(ossh_head, 300)
secret("private-key", "console", "openssh-key-cat",
       "$ cat ~/.ssh/id_ed25519\n" + pem("OPENSSH PRIVATE KEY", ossh), [ossh[2], ossh[-1]])
ec = pem_lines("MHcCAQEEI", 112)
secret("private-key", "config", "ec-key-k8s-tls-yaml",
       "stringData:\n  tls.key: |\n    " + pem("EC PRIVATE KEY", ec, "\n    "), [ec[0][12:], ec[1]])
enc = pem_lines("MIIFHDBOBgkqhkiG9w0BBQ0wQTApBgkqhkiG9w0BBQwwHAQI", 1240)
secret("private-key", "code", "pem-in-python-triple-quotes",
       'SIGNING_KEY = """' + pem("ENCRYPTED PRIVATE KEY", enc) + '"""', [enc[2], enc[10], enc[-2]])
pgp = pem_lines("lQVYBGX", 1500)
secret("private-key", "config", "pgp-private-key-block",
       "-----BEGIN PGP PRIVATE KEY BLOCK-----\n\n" + "\n".join(pgp)
       + "\n=" + rnd(B64, 4) + "\n-----END PGP PRIVATE KEY BLOCK-----", [pgp[3], pgp[-3]])

# ---------------------------------------------------------------- databases and connection strings

pw = password()
secret("generic-api-key", "url", "postgres-url-env",
       f"DATABASE_URL=postgres://app_rw:{pw}@db-prod-1.internal:5432/orders?sslmode=require", [pw])
pw = password()
secret("generic-api-key", "url", "mongodb-srv-url",
       f'client = MongoClient("mongodb+srv://analytics:{pw}@cluster0.ab1cd.mongodb.net/'
       'reporting?retryWrites=true&w=majority")', [pw])
pw = password(24)
secret("generic-api-key", "url", "redis-url-no-user", f"REDIS_URL=redis://:{pw}@cache.internal:6379/0", [pw])
pw = password()
secret("generic-api-key", "url", "amqp-url-yaml",
       f"celery:\n  broker_url: amqp://worker:{pw}@rabbitmq.svc.cluster.local:5672/prod", [pw])
pw = password()
secret("generic-api-key", "url", "jdbc-url-password-param",
       f"spring.datasource.url=jdbc:postgresql://db:5432/app?user=app&password={pw}&ssl=true", [pw])
pw = password()
secret("generic-api-key", "config", "odbc-sqlserver",
       "Driver={ODBC Driver 18 for SQL Server};Server=tcp:acme-sql.database.windows.net,1433;"
       f"Database=billing;Uid=billing_app;Pwd={pw};Encrypt=yes;", [pw])
pw = password()
secret("generic-api-key", "config", "dotnet-connection-string-json",
       '"ConnectionStrings": {\n  "Default": "Server=sql01;Database=Crm;User Id=crm_svc;'
       f'Password={pw};TrustServerCertificate=True"\n}}', [pw])
pw = password()
secret("generic-api-key", "cli", "mysql-p-flag",
       f"mysql -h 10.0.4.12 -u root -p{pw} orders < dump.sql", [pw])
pw = password()
secret("generic-api-key", "cli", "pgpassword-inline",
       f"PGPASSWORD='{pw}' pg_dump -h db.internal -U postgres -Fc app > app.dump", [pw])
pw = password()
secret("generic-api-key", "cli", "mysqldump-long-password",
       f"mysqldump --user=backup --password={pw} --single-transaction shop | gzip > shop.sql.gz",
       [pw])
pw = password()
secret("generic-api-key", "cli", "redis-cli-a",
       f"redis-cli -h cache.internal -a {pw} --no-auth-warning INFO memory", [pw])
pw = password()
secret("generic-api-key", "config", "pgpass-file", f"# ~/.pgpass\ndb.internal:5432:*:replicator:{pw}", [pw])
pw = password()
secret("generic-api-key", "config", "spring-yaml-password",
       f"spring:\n  datasource:\n    username: inventory\n    password: {pw}", [pw])
pw = password()
secret("generic-api-key", "config", "docker-compose-postgres-env",
       "services:\n  db:\n    image: postgres:16\n    environment:\n"
       f"      POSTGRES_USER: app\n      POSTGRES_PASSWORD: \"{pw}\"", [pw])
pw = password()
secret("generic-api-key", "config", "django-databases-dict",
       "DATABASES = {\n    'default': {\n        'ENGINE': 'django.db.backends.postgresql',\n"
       f"        'NAME': 'shop',\n        'USER': 'shop',\n        'PASSWORD': '{pw}',\n    }}\n}}",
       [pw])

# ---------------------------------------------------------------- framework secrets

skb = rnd(HEX, 128)
secret("generic-api-key", "env", "rails-secret-key-base", f"SECRET_KEY_BASE={skb}", [skb])
mk = rnd(HEX, 32)
secret("generic-api-key", "cli", "rails-master-key-heroku",
       f"heroku config:set RAILS_MASTER_KEY={mk} -a acme-web", [mk])
lk = "base64:" + b64(32)
secret("generic-api-key", "env", "laravel-app-key", f"APP_NAME=Acme\nAPP_ENV=production\nAPP_KEY={lk}\nAPP_DEBUG=false", [lk[7:]])
dj = rnd(LOWER + DIGITS + "!@#$%^&*(-_=+)", 50)
secret("generic-api-key", "code", "django-settings-secret-key", f"SECRET_KEY = '{dj}'", [dj])
dj2 = "django-insecure-" + rnd(LOWER + DIGITS + "!@#$%^&*(-_=+)", 50)
secret("generic-api-key", "code", "django-insecure-secret-key",
       f"# SECURITY WARNING: keep the secret key used in production secret!\nSECRET_KEY = \"{dj2}\"",
       [dj2])
fl = rnd(HEX, 64)
secret("generic-api-key", "code", "flask-secret-key", f"app.config['SECRET_KEY'] = '{fl}'", [fl])
nx = b64(32)
secret("generic-api-key", "env", "nextauth-secret", f"NEXTAUTH_URL=https://acme.app\nNEXTAUTH_SECRET={nx}", [nx])
jws = b64(48)
secret("generic-api-key", "config", "jwt-secret-yaml", f"auth:\n  jwt_secret: \"{jws}\"\n  ttl: 15m", [jws])

# ---------------------------------------------------------------- generic keys in code and config

g = rnd(HEX, 32)
secret("generic-api-key", "code", "python-api-key-literal",
       f'WEATHER_API_KEY = "{g}"\nresp = requests.get(URL, params={{"appid": WEATHER_API_KEY}})', [g])
g = rnd(ALNUM, 40)
secret("generic-api-key", "code", "go-const-token", f'const apiToken = "{g}"', [g])
g = rnd(ALNUM, 32)
secret("generic-api-key", "code", "java-string-secret",
       f'private static final String CLIENT_SECRET = "{g}";', [g])
g = rnd(HEX, 40)
secret("generic-api-key", "code", "csharp-header-add",
       f'client.DefaultRequestHeaders.Add("X-Api-Key", "{g}");', [g])
g = rnd(ALNUM, 36)
secret("generic-api-key", "code", "rust-bearer-literal",
       f'let resp = client.get(url).bearer_auth("{g}").send().await?;', [g])
g = rnd(HEX, 32)
secret("generic-api-key", "config", "toml-api-key", f'[services.geocoder]\napi_key = "{g}"\ntimeout = 5', [g])
g = rnd(ALNUM, 48)
secret("generic-api-key", "config", "ini-secret", f"[oauth]\nclient_id = acme-cli\nclient_secret = {g}", [g])
g = rnd(ALNUM + "-_", 40)
secret("generic-api-key", "json", "json-access-token",
       '{"provider": "segment", "writeKey": "' + rnd(ALNUM, 32) + '", "access_token": "' + g + '"}',
       [g])
g = rnd(HEX, 32)
secret("generic-api-key", "config", "xml-api-key",
       f'<add key="PaymentGatewayApiKey" value="{g}" />', [g])
g = rnd(ALNUM, 32)
secret("generic-api-key", "cli", "api-key-flag", f"./sync --api-key {g} --since 2026-11-01", [g])
g = rnd(B64URL, 43)
secret("curl-auth-header", "cli", "curl-x-api-key-header",
       f"curl -sS https://api.acme-weather.com/v1/forecast -H 'X-API-Key: {g}'", [g])
g = rnd(B64URL, 40)
secret("curl-auth-header", "cli", "curl-bearer-opaque",
       f'curl --request GET --url https://api.vendor.io/v3/items --header "authorization: Bearer {g}"',
       [g])
pw = password()
secret("curl-auth-user", "cli", "curl-u-user-pass",
       f"curl -u admin:{pw} http://localhost:15672/api/queues", [pw])
pw = password()
secret("curl-auth-header", "cli", "curl-basic-header-b64",
       "curl -H 'Authorization: Basic " + (bb := base64.b64encode(f"jenkins:{pw}".encode()).decode())
       + "' https://ci.acme.io/api/json", [bb])
g = rnd(ALNUM, 32)
secret("generic-api-key", "url", "api-key-query-string",
       f"GET https://api.openweathermap.org/data/2.5/weather?q=Oslo&appid={rnd(HEX, 32)}&apikey={g}",
       [g])
pw = password()
secret("generic-api-key", "url", "basic-auth-in-https-url",
       f"pip install --index-url https://deploy:{pw}@pypi.acme.internal/simple/ acme-core", [pw])
pw = password()
secret("generic-api-key", "url", "basic-auth-in-webhook-url",
       f"Jenkins notify URL: https://ci-bot:{pw}@jenkins.acme.io/job/api/build?token=deploy", [pw])

# ---------------------------------------------------------------- containers

da = base64.b64encode(f"acmebot:{password(20)}".encode()).decode()
secret("generic-api-key", "json", "docker-config-auths",
       '{\n\t"auths": {\n\t\t"registry.acme.io": {\n\t\t\t"auth": "' + da + '"\n\t\t}\n\t}\n}', [da])
pw = password()
secret("generic-api-key", "cli", "docker-login-p", f"docker login -u acmebot -p {pw} registry.acme.io", [pw])
kpw = password()
kb = base64.b64encode(kpw.encode()).decode()
secret("kubernetes-secret-yaml", "config", "k8s-secret-data-b64",
       "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db-credentials\ntype: Opaque\ndata:\n"
       f"  username: {base64.b64encode(b'app').decode()}\n  password: {kb}", [kb])
kpw2 = password()
secret("kubernetes-secret-yaml", "config", "k8s-secret-stringdata",
       "apiVersion: v1\nkind: Secret\nmetadata:\n  name: api\nstringData:\n"
       f"  API_TOKEN: {kpw2}", [kpw2])
kpw3 = password()
secret("generic-api-key", "cli", "kubectl-create-secret-literal",
       f"kubectl create secret generic smtp --from-literal=username=mailer "
       f"--from-literal=password='{kpw3}' -n prod", [kpw3])
sat = jwt({"iss": "kubernetes/serviceaccount", "kubernetes.io/serviceaccount/namespace": "ci",
           "sub": "system:serviceaccount:ci:deployer"}, "RS256")
secret("jwt", "config", "kubeconfig-user-token",
       f"users:\n- name: deployer\n  user:\n    token: {sat}", [sat])
pw = password()
secret("generic-api-key", "cli", "helm-set-password",
       f"helm upgrade --install pg bitnami/postgresql --set auth.postgresPassword={pw}", [pw])

# ---------------------------------------------------------------- prose and chat

pw = human_password()
secret("generic-api-key", "prose", "prose-my-password-is", f"my password for the staging admin panel is {pw}", [pw])
pw = human_password()
secret("generic-api-key", "prose", "prose-wifi-password", f"office wifi: SSID acme-guest, password: {pw}", [pw])
pw = password()
secret("generic-api-key", "prose", "prose-pw-abbrev",
       f"login for grafana is admin / {pw} until SSO lands", [pw])
pw = password()
secret("generic-api-key", "prose", "prose-reset-to",
       f"I reset the root password on db-2 to {pw}, tell Sam", [pw])
pw = human_password()
secret("generic-api-key", "prose", "prose-passphrase",
       f"The passphrase for the backup GPG key is \"{pw}\".", [pw])
g = rnd(ALNUM, 32)
secret("generic-api-key", "prose", "prose-api-key-colon",
       f"Vendor support gave us a sandbox-but-billable api key: {g} (account 7712)", [g])
pw = password()
secret("generic-api-key", "prose", "prose-credentials-line",
       f"creds for the FTP drop -> user: partner_upload pass: {pw}", [pw])
g = rnd(HEX, 40)
secret("generic-api-key", "prose", "prose-token-for-ci",
       f"Use this token for CI, it has repo scope: {g}", [g])
pw = password()
secret("generic-api-key", "prose", "prose-german-passwort",
       f"Das Passwort für den Router ist {pw}", [pw])
pw = human_password()
secret("generic-api-key", "prose", "prose-secret-is-quoted",
       f"remember: the shared secret for the RADIUS server is '{pw}'", [pw])

# ---------------------------------------------------------------- misc CLI forms

pw = password()
secret("generic-api-key", "cli", "sshpass-p", f"sshpass -p '{pw}' ssh deploy@10.0.3.7 'systemctl restart api'", [pw])
pw = password()
secret("generic-api-key", "cli", "psql-conninfo-password",
       f'psql "host=db.internal port=5432 dbname=app user=admin password={pw} sslmode=require"', [pw])
pw = password()
secret("generic-api-key", "cli", "openssl-passout",
       f"openssl pkcs12 -export -in cert.pem -inkey key.pem -out bundle.p12 -passout pass:{pw}", [pw])
pw = password()
secret("generic-api-key", "cli", "git-credential-store-line",
       f"$ cat ~/.git-credentials\nhttps://jdoe:{pw}@bitbucket.org", [pw])
pw = password()
secret("generic-api-key", "cli", "wget-http-password",
       f"wget --http-user=backup --http-password={pw} https://files.acme.io/db/latest.tar.gz", [pw])
pw = password()
secret("generic-api-key", "cli", "mongosh-password",
       f"mongosh \"mongodb://db1:27017/admin\" --username root --password '{pw}'", [pw])
pw = password()
secret("generic-api-key", "cli", "ansible-extra-vars",
       f"ansible-playbook site.yml -e 'db_password={pw}' --limit prod", [pw])
pw = password()
secret("generic-api-key", "env", "smtp-password-env",
       f"SMTP_HOST=smtp.office365.com\nSMTP_USER=noreply@acme.io\nSMTP_PASSWORD={pw}", [pw])
pw = password()
secret("generic-api-key", "config", "netrc", f"machine api.heroku.com\n  login jdoe@acme.io\n  password {pw}", [pw])
pw = password()
secret("generic-api-key", "config", "maven-settings-xml",
       f"<server>\n  <id>acme-releases</id>\n  <username>deployer</username>\n  <password>{pw}</password>\n</server>",
       [pw])
pw = password()
secret("nuget-config-password", "config", "nuget-config-cleartext",
       f'<packageSourceCredentials>\n  <acme>\n    <add key="Username" value="ci" />\n'
       f'    <add key="ClearTextPassword" value="{pw}" />\n  </acme>\n</packageSourceCredentials>', [pw])

# ---------------------------------------------------------------- secrets only in tags, or in text and tags

t = ghp()
secret("github-pat", "tags", "ghp-in-tag", "rotated the CI token, see tag", [t], tags=["ci", f"token:{t}"])
sk = stripe()
secret("stripe-access-token", "tags", "stripe-in-tag", "billing fixture notes", [sk],
       tags=["billing", sk])
x = xoxb()
secret("slack-bot-token", "tags", "slack-in-tag", "slack bot setup for #deploys", [x],
       tags=[f"slack_token={x}"])
pw = password()
secret("generic-api-key", "tags", "password-in-tag", "db creds moved to vault", [pw],
       tags=["db", f"password={pw}"])
ak = aiza()
secret("gcp-api-key", "tags", "aiza-in-tag-and-text",
       f"maps key for the store locator is {ak}", [ak], tags=["maps", ak])
hv = hvs()
secret("vault-service-token", "tags", "vault-in-tag", "vault bootstrap done", [hv], tags=[f"VAULT_TOKEN={hv}"])
gp = glpat()
secret("gitlab-pat", "tags", "glpat-in-tag", "gitlab mirror configured", [gp], tags=["mirror", gp])
an = anthropic()
secret("anthropic-api-key", "tags", "anthropic-in-tag", "eval harness runs nightly", [an], tags=[an])

# ================================================================ near-misses

for i, fmt in enumerate([
        "Merged in {s} (Merge pull request #4412 from acme/fix-retry)",
        "commit {s}\nAuthor: Jane Doe <jane@acme.io>\nDate:   Mon Nov 30 10:12:03 2026 +0100",
        "pinned the action: uses: actions/checkout@{s} # v4.2.2",
        "see https://github.com/acme/api/commit/{s} for the revert",
        "git revert {s} --no-edit",
        "$ git rev-parse HEAD\n{s}",
        "go.sum pseudo-version points at {s}",
        "Bisect: {s} is the first bad commit",
        "requirements: git+https://github.com/acme/lib.git@{s}#egg=acmelib",
        "Cherry-picked from {s}; conflicts in daemon/store.py resolved by hand."]):
    near("git-sha", f"git-sha-{i}", fmt.format(s=sha1()))
for i, fmt in enumerate([
        "fixed in {s}, released in 2.4.1",
        "* {s} (HEAD -> main, origin/main) Retry on SQLITE_BUSY",
        "Docker tag: api:{s}-amd64",
        "git checkout -b hotfix {s}",
        "build {s} on main passed in 4m12s"]):
    near("short-sha", f"short-sha-{i}", fmt.format(s=rnd(HEX, R.choice([7, 8, 10, 12]))))
for i, fmt in enumerate([
        '"integrity": "sha512-{b}"',
        "lodash@^4.17.21:\n  version \"4.17.21\"\n  resolved \"https://registry.yarnpkg.com/lodash/-/lodash-4.17.21.tgz#{h}\"\n  integrity sha512-{b}",
        '<script src="https://cdn.jsdelivr.net/npm/bootstrap@5.3.3/dist/js/bootstrap.min.js" integrity="sha384-{c}" crossorigin="anonymous"></script>',
        "requests==2.32.3 \\\n    --hash=sha256:{d}",
        '[[package]]\nname = "serde"\nversion = "1.0.215"\nsource = "registry+https://github.com/rust-lang/crates.io-index"\nchecksum = "{d}"',
        'hash = "sha256-{n}";  # nix fetchFromGitHub',
        'provider "registry.terraform.io/hashicorp/aws" {{\n  version = "5.77.0"\n  hashes = [\n    "h1:{n}",\n    "zh:{d}",\n  ]\n}}',
        "github.com/spf13/cobra v1.8.1 h1:{n}",
        'files = [\n    {{file = "numpy-2.1.3-cp312-cp312-manylinux_2_17_x86_64.whl", hash = "sha256:{d}"}},\n]',
        "pnpm-lock.yaml: resolution: {{integrity: sha512-{b}}}"]):
    near("lockfile-integrity", f"integrity-{i}",
         fmt.format(b=b64(64), c=b64(48), d=sha256(), h=sha1(), n=b64(32)))
for i, fmt in enumerate([
        "FROM python:3.12-slim@sha256:{d}",
        "Digest: sha256:{d}\nStatus: Downloaded newer image for nginx:1.27",
        "{d}  memlane-0.9.3.tar.gz",
        "image: ghcr.io/acme/api@sha256:{d}",
        "$ sha256sum backup.tar\n{d}  backup.tar",
        "Layer sha256:{d} already exists",
        "kubectl shows imageID: docker-pullable://redis@sha256:{d}",
        "SHA-256 checksum of the installer: {D}",
        "the release notes list sha256 {d} for the arm64 binary",
        "oci manifest config digest sha256:{d}, size 7023"]):
    d = sha256()
    near("docker-digest", f"digest-{i}", fmt.format(d=d, D=d.upper()))
for i, fmt in enumerate([
        "request_id={u} status=500 path=/v1/items",
        "Session {u} expired after 30m",
        '{{"id": "{u}", "type": "memory", "created": "2026-12-01T09:00:00Z"}}',
        "docker volume rm {u}",
        "Azure subscription id: {u}",
        "trace: {U}",
        "DELETE /api/projects/{u}/members/{u2}",
        "blkid: UUID=\"{u}\" TYPE=\"ext4\"",
        "idempotency key used for the retry: {u}",
        "tenant_id: {u}  # Azure AD directory id (public)"]):
    u = uid()
    near("uuid", f"uuid-{i}", fmt.format(u=u, U=u.upper(), u2=uid()))
for i, fmt in enumerate([
        "256 SHA256:{f} jdoe@laptop (ED25519)",
        "The authenticity of host 'git.acme.io (10.0.0.5)' can't be established.\nED25519 key fingerprint is SHA256:{f}.",
        "RSA key fingerprint is MD5:{m}.",
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI{p} jdoe@acme.io",
        "GPG key fingerprint: {g}",
        "known_hosts: github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI{p}",
        "Signature made Mon 30 Nov 2026 using RSA key {G}",
        "TLS cert SHA-1 fingerprint {c}"]):
    near("ssh-fingerprint", f"fingerprint-{i}", fmt.format(
        f=b64(32).rstrip("="), m=":".join(rnd(HEX, 2) for _ in range(16)), p=b64(32)[:43],
        g=" ".join(rnd(HEX.upper(), 4) for _ in range(10)), G=rnd(HEX.upper(), 40),
        c=":".join(rnd(HEX.upper(), 2) for _ in range(20))))
png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + R.randbytes(180)).decode()
gif = base64.b64encode(b"GIF89a" + R.randbytes(60)).decode()
svg = base64.b64encode(b'<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16"><circle cx="8" cy="8" r="6" fill="#e33"/></svg>').decode()
png2 = base64.b64encode(b"\x89PNG" + R.randbytes(90)).decode()
woff = base64.b64encode(b"wOF2" + R.randbytes(240)).decode()
for i, text in enumerate([
        f'<img alt="dot" src="data:image/png;base64,{png}">',
        f".icon {{ background: url(data:image/gif;base64,{gif}); }}",
        f"favicon: data:image/svg+xml;base64,{svg}",
        f"@font-face {{ src: url('data:font/woff2;base64,{woff}') format('woff2'); }}",
        f'![chart](data:image/png;base64,{png2})']):
    near("data-uri", f"data-uri-{i}", text)
for i, text in enumerate([
        "Bumped fastapi 0.115.4 -> 0.115.6 and pydantic 2.10.3",
        "Version: 3.12.7 (main, Oct  1 2026, 08:28:03) [GCC 13.2.0]",
        "Kubernetes v1.31.2+k3s1",
        "release v2.0.0-rc.3+build.20261201",
        "node v22.11.0, npm 10.9.0"]):
    near("semver", f"semver-{i}", text)
for i, text in enumerate([
        "edit ~/.config/memlane/secrets.example.toml and /etc/ssl/private/README",
        "logs are in /var/log/acme/token-refresher/2026-12-01.log",
        r"C:\Users\jdoe\AppData\Roaming\npm\node_modules\password-prompt\index.js",
        "src/auth/api_key_middleware.py:88 in verify_api_key"]):
    near("file-path", f"path-{i}", text)
for i, text in enumerate([
        "api_key = os.environ[\"OPENAI_API_KEY\"]",
        "env:\n  NPM_TOKEN: ${{ secrets.NPM_TOKEN }}\n  GITHUB_TOKEN: ${{ github.token }}",
        "echo \"$CR_PAT\" | docker login ghcr.io -u jdoe --password-stdin",
        "password_field = forms.CharField(widget=forms.PasswordInput, min_length=12)",
        "tokenizer = AutoTokenizer.from_pretrained(\"bert-base-uncased\")\nmax_tokens = 4096",
        "def rotate_secret_key(old_key: bytes, new_key: bytes) -> None:",
        "valueFrom:\n  secretKeyRef:\n    name: db-credentials\n    key: password",
        "mysql -u root -p  # prompts for the password",
        "const token = req.headers.authorization?.split(' ')[1];",
        "if (!process.env.STRIPE_SECRET_KEY) throw new Error('missing STRIPE_SECRET_KEY');",
        "export VAULT_TOKEN=$(vault print token)",
        "aws_secret_access_key = credentials.secret_key",
        "SELECT id, password_hash, last_login FROM users WHERE email = $1",
        "passwordEncoder = new BCryptPasswordEncoder(12);",
        "gh auth token | gh secret set RELEASE_TOKEN --repo acme/api",
        "@Value(\"${jwt.secret}\") private String jwtSecret;",
        "kubectl get secret db-credentials -o jsonpath='{.data.password}' | base64 -d",
        "read -s -p 'Password: ' PASSWORD && export PGPASSWORD=\"$PASSWORD\""]):
    near("password-code", f"code-{i}", text)
for i, text in enumerate([
        "OPENAI_API_KEY=<YOUR_API_KEY>",
        "export GITHUB_TOKEN=ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "password: changeme  # default in the docs, change it on first login",
        "AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY}",
        "stripe.api_key = \"sk_live_...\"",
        "DATABASE_URL=postgres://user:password@localhost:5432/dbname",
        "curl -H \"Authorization: Bearer $TOKEN\" https://api.acme.io/v1/me",
        "SLACK_WEBHOOK_URL=https://hooks.slack.com/services/XXX/YYY/ZZZ",
        "api_key: \"{{ vault_api_key }}\"",
        "SECRET_KEY_BASE=REPLACE_ME",
        "APP_KEY=",
        "token = \"********\"",
        "mysql -u root -p<password> mydb",
        "Set ANTHROPIC_API_KEY to your key (sk-ant-…) before running.",
        "client_secret = \"your-client-secret-here\"",
        "password=%DB_PASSWORD%",
        "token: [redacted:github-pat]",
        "--api-key $(pass show acme/api-key)"]):
    near("placeholder", f"placeholder-{i}", text)
for i, text in enumerate([
        "The tokenizer splits on whitespace before BPE; token budget is 8k.",
        "We discussed key rotation: secrets older than 90 days are flagged by the scanner.",
        "Password reset emails were delayed 12 minutes on 2026-11-30 (incident INC-2291).",
        "primary key (user_id, created_at) on the sessions table",
        "the secret sauce is the retry budget, not the cache",
        "Host 2001:db8:85a3::8a2e:370:7334 MAC 3c:22:fb:91:0e:4a up 14 days",
        "Go build ID: \"" + rnd(B64URL, 20) + "/" + rnd(B64URL, 20) + "\"",
        "ELF BuildID[sha1]=" + sha1() + ", stripped",
        "x-amzn-RequestId: " + uid() + "\nx-amz-cf-id: " + rnd(B64URL, 54) + "==",
        "S3 ETag \"" + rnd(HEX, 32) + "\" matched the local md5",
        "timestamp 1764580012345 ns; offset 0x7ffd4c2a1e90",
        "The API key must be sent in the X-Api-Key header; tokens expire after 1h.",
        "Cache key: v3-deps-" + rnd(HEX, 64),
        "Access keys can be created in the IAM console under Security credentials.",
        "ISBN 978-0-13-468599-1, DOI 10.1145/3368089.3409704",
        "keyboard shortcut: press Ctrl+K then type 'secret' to filter"]):
    near("keyword-prose", f"prose-{i}", text)
for i, (text, tags) in enumerate([
        ("release notes", ["v2.4.1", sha1()]),
        ("image pinned", ["sha256:" + sha256()]),
        ("session summary", [uid(), "memlane"]),
        ("lockfile bump", ["sha512-" + b64(64)]),
        ("ssh host key rotated", ["SHA256:" + b64(32).rstrip("=")]),
        ("build", ["build-" + rnd(HEX, 12), "ci"]),
        ("auth refactor", ["tokenizer", "password-reset", "api-keys"]),
        ("placeholder config", ["${GITHUB_TOKEN}", "<your-api-key>"])]):
    near("tags", f"tags-{i}", text, tags)


def main() -> None:
    ids = [entry["id"] for entry in ENTRIES]
    assert len(ids) == len(set(ids)), [i for i in ids if ids.count(i) > 1]
    OUT.write_text("".join(json.dumps(entry, ensure_ascii=False) + "\n" for entry in ENTRIES),
                   encoding="utf-8")
    secrets_n = sum(entry["label"] == "secret" for entry in ENTRIES)
    kinds = {entry["kind"] for entry in ENTRIES if entry["label"] == "secret"}
    print(f"{OUT}: {secrets_n} secrets over {len(kinds)} kinds, "
          f"{len(ENTRIES) - secrets_n} near-misses")


if __name__ == "__main__":
    main()
