"""Generate unseen3.jsonl: a held-out redaction set (secrets + near-misses), stdlib only.

Deterministic: random.Random(777). Every value is fake, random in the real shape.
Run: python3 generate.py  -> writes unseen3.jsonl beside this file and prints counts.
"""
from __future__ import annotations

import base64
import hashlib
import json
import random
import re
import string
import struct
import sys
import uuid
import zlib
from collections import Counter
from pathlib import Path
from urllib.parse import quote

R = random.Random(777)
SPLIT = "unseen3"
UP, LO, D = string.ascii_uppercase, string.ascii_lowercase, string.digits
AN = UP + LO + D
HEX = "0123456789abcdef"
B64 = AN + "+/"
URLSAFE = AN + "-_"


def s(alpha: str, n: int) -> str:
    return "".join(R.choice(alpha) for _ in range(n))


def hx(n: int) -> str:
    return s(HEX, n)


def rbytes(n: int) -> bytes:
    return bytes(R.getrandbits(8) for _ in range(n))


def b64(n: int) -> str:
    return base64.b64encode(rbytes(n)).decode()


def b64u(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def uid() -> str:
    return str(uuid.UUID(int=R.getrandbits(128), version=4))


def digits(n: int) -> str:
    return R.choice("123456789") + s(D, n - 1)


WORDS = ["Tundra", "Marigold", "Quokka", "Basalt", "Juniper", "Falcon", "Orchid", "Cobalt",
         "Saffron", "Glacier", "Pelican", "Ember", "Walnut", "Zephyr", "Lantern", "Mosaic"]


def pw() -> str:
    return (R.choice(WORDS) + R.choice("!#%*-_.") + s(D, 4) + s(LO, 2) + R.choice(UP))


def pw_url() -> str:
    """A password made only of characters that may stand unencoded in a URL's userinfo."""
    return R.choice(WORDS) + R.choice("-._~!*") + s(D, 4) + s(LO, 2) + R.choice(UP)


def pw_reserved() -> tuple[str, str]:
    """A password with URL-reserved characters and its percent-encoded form."""
    p = s(AN, 4) + R.choice("@:/#?") + s(AN, 3) + R.choice("@:/#?&%") + s(AN, 4)
    return p, quote(p, safe="")


# ---- value shapes (gitleaks default rules) ----
def akia(prefix: str = "AKIA") -> str:
    return prefix + s(UP + "234567", 16)


def aws_secret() -> str:
    return s(AN + "/+", 40)


def aws_session() -> str:
    return "IQoJb3JpZ2luX2Vj" + s(B64, 340)


def gcp_key() -> str:
    return "AIza" + s(URLSAFE, 35)


def pem_body(lines: int = 8) -> str:
    raw = base64.b64encode(rbytes(48 * lines)).decode()
    return "\n".join(raw[i:i + 64] for i in range(0, len(raw), 64))


def az_storage() -> str:
    return b64(64)


def az_client_secret() -> str:
    return s(AN, 3) + R.choice(D) + "Q~" + s(AN + "_~.-", 34)


def gh(prefix: str) -> str:
    return prefix + s(AN, 36)


def gh_fine() -> str:
    return "github_pat_" + s(AN, 22) + "_" + s(AN, 59)


def glpat() -> str:
    return "glpat-" + s(URLSAFE, 20)


def xoxb() -> str:
    return f"xoxb-{digits(12)}-{digits(13)}-{s(AN, 24)}"


def xoxp() -> str:
    return f"xoxp-{digits(11)}-{digits(12)}-{digits(13)}-{hx(32)}"


def xapp() -> str:
    return f"xapp-1-A0{s(UP + D, 9)}-{digits(13)}-{hx(64)}"


def slack_hook() -> str:
    return f"https://hooks.slack.com/services/T0{s(UP + D, 9)}/B0{s(UP + D, 9)}/{s(AN, 24)}"


def discord_bot() -> str:
    ident = base64.b64encode(digits(19).encode()).decode().rstrip("=")
    return f"{ident}.{s(URLSAFE, 6)}.{s(URLSAFE, 38)}"


def discord_hook() -> str:
    return f"https://discord.com/api/webhooks/{digits(19)}/{s(URLSAFE, 68)}"


def telegram() -> str:
    return f"{digits(10)}:AA{s(URLSAFE, 33)}"


def teams_hook() -> tuple[str, str]:
    path = s(LO + D, 32)
    u = (f"https://contoso.webhook.office.com/webhookb2/{uid()}@{uid()}/IncomingWebhook/"
         f"{path}/{uid()}")
    return u, path


def stripe(prefix: str = "sk_live_", n: int = 99) -> str:
    return prefix + s(AN, n)


def openai_key() -> str:
    return "sk-proj-" + s(URLSAFE, 74) + "T3BlbkFJ" + s(URLSAFE, 74)


def anthropic_key(kind: str = "api03") -> str:
    return f"sk-ant-{kind}-" + s(URLSAFE, 93) + "AA"


def sendgrid() -> str:
    return "SG." + s(URLSAFE, 22) + "." + s(URLSAFE, 43)


def jwt(payload: dict | None = None) -> str:
    head = b64u(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    payload = payload or {"sub": digits(8), "name": R.choice(WORDS).lower(), "iat": 1764000000 + R.randrange(10**6)}
    body = b64u(json.dumps(payload, separators=(",", ":")).encode())
    return f"{head}.{body}.{b64u(rbytes(32))}"


def hvs() -> str:
    return "hvs." + s(URLSAFE, 91)


def pypi() -> str:
    return "pypi-AgEIcHlwaS5vcmc" + s(URLSAFE, 160)


# ---- entry collection ----
ENTRIES: list[dict] = []
CONTEXT: dict[str, str] = {}
SLUGS: Counter = Counter()


def _slug(base: str) -> str:
    SLUGS[base] += 1
    return base if SLUGS[base] == 1 else f"{base}-{SLUGS[base]}"


def sec(kind: str, phrasing: str, ctx: str, slug: str, text: str, secrets, tags=()) -> None:
    eid = f"{kind}/{_slug(kind + '/' + slug).split('/', 1)[1]}"
    ENTRIES.append({"id": eid, "label": "secret", "kind": kind, "phrasing": phrasing,
                    "split": SPLIT, "text": text, "tags": list(tags), "secrets": list(secrets)})
    CONTEXT[eid] = ctx


def nm(cat: str, ctx: str, slug: str, text: str, tags=()) -> None:
    eid = "near-miss/" + _slug(slug)
    ENTRIES.append({"id": eid, "label": "near-miss", "kind": cat, "phrasing": None,
                    "split": SPLIT, "text": text, "tags": list(tags), "secrets": []})
    CONTEXT[eid] = ctx


G = "generic-api-key"

# =========================== SECRETS ===========================
# ---------- AWS ----------
k, sk = akia(), aws_secret()
sec("aws-access-token", "env", "env-file", "dotenv-pair",
    f"# .env.staging (do not commit)\nAWS_ACCESS_KEY_ID={k}\nAWS_SECRET_ACCESS_KEY={sk}\nAWS_REGION=eu-west-1", [k, sk])
k, sk = akia(), aws_secret()
sec("aws-access-token", "config", "ini", "credentials-file",
    f"~/.aws/credentials on the build box:\n[ci-deploy]\naws_access_key_id = {k}\naws_secret_access_key = {sk}", [k, sk])
k, sk, st = akia("ASIA"), aws_secret(), aws_session()
sec("aws-access-token", "json", "json", "sts-assume-role-output",
    f'aws sts assume-role output, pasted so you can see the expiry:\n{{"Credentials": {{"AccessKeyId": "{k}", "SecretAccessKey": "{sk}", '
    f'"SessionToken": "{st}", "Expiration": "2026-12-03T19:10:44Z"}}}}', [k, sk, st])
k, sk = akia(), aws_secret()
sec("aws-access-token", "code", "code-go", "go-static-creds",
    f'// TODO remove before merge\ncfg.Credentials = credentials.NewStaticCredentialsProvider("{k}", "{sk}", "")', [k, sk])
k = akia()
sec("aws-access-token", "prose", "log", "cloudtrail-log",
    f'2026-12-02T11:04:19Z WARN s3sync: AccessDenied for key {k} on arn:aws:s3:::acme-prod-backups (user deploy-bot)', [k])
k, sk = akia(), aws_secret()
sec("aws-access-token", "cli", "container", "docker-run-env",
    f"docker run --rm -e AWS_ACCESS_KEY_ID={k} -e AWS_SECRET_ACCESS_KEY={sk} amazon/aws-cli s3 ls", [k, sk])
sk = aws_secret()
sec(G, "prose", "chat", "aws-secret-prose-de",
    f"Hi! Der AWS Secret Key für das Staging-Konto ist {sk} – bitte nur lokal verwenden.", [sk])
k, sk = akia(), aws_secret()
sec("aws-access-token", "config", "hcl", "terraform-provider",
    f'provider "aws" {{\n  region     = "us-east-1"\n  access_key = "{k}"\n  secret_key = "{sk}"\n}}', [k, sk])
k = akia()
sec("aws-access-token", "tags", "tags", "tag-only",
    "IAM key for the reporting lambda, rotate in January", [k], ["aws", f"key:{k}"])

# ---------- GCP ----------
key = gcp_key()
sec("gcp-api-key", "url", "curl", "maps-query-string",
    f'curl "https://maps.googleapis.com/maps/api/geocode/json?address=Berlin&key={key}"', [key])
key = gcp_key()
sec("gcp-api-key", "code", "code-kotlin", "kotlin-const",
    f'object Keys {{\n    const val PLACES_API_KEY = "{key}"\n}}', [key])
key = gcp_key()
sec("gcp-api-key", "config", "xml", "android-manifest",
    f'<meta-data\n    android:name="com.google.android.geo.API_KEY"\n    android:value="{key}" />', [key])
body = pem_body(10)
sa_pk = body.replace("\n", "\\n")
sec("private-key", "json", "json", "gcp-service-account-json",
    '{\n  "type": "service_account",\n  "project_id": "acme-data-481207",\n  "private_key_id": "' + hx(40) + '",\n'
    '  "private_key": "-----BEGIN PRIVATE KEY-----\\n' + sa_pk + '\\n-----END PRIVATE KEY-----\\n",\n'
    '  "client_email": "etl@acme-data-481207.iam.gserviceaccount.com"\n}', [sa_pk])
gsec = "GOCSPX-" + s(URLSAFE, 28)
sec(G, "env", "env-file", "google-oauth-client-secret",
    f"GOOGLE_CLIENT_ID=4815162342-{s(LO + D, 32)}.apps.googleusercontent.com\nGOOGLE_CLIENT_SECRET={gsec}", [gsec])

# ---------- Azure ----------
ak = az_storage()
sec(G, "config", "connstr", "azure-storage-connstr",
    f"DefaultEndpointsProtocol=https;AccountName=acmelogs;AccountKey={ak};EndpointSuffix=core.windows.net", [ak])
ak = az_storage()
sec(G, "cli", "shell", "az-storage-cli",
    f"az storage blob upload --account-name acmeassets --account-key '{ak}' -c web -f dist/app.js", [ak])
sig = quote(b64(32), safe="")
sec(G, "url", "url", "azure-sas-url",
    f"SAS link for the vendor (expires Friday): https://acmeshare.blob.core.windows.net/drop/report.zip?sv=2022-11-02&ss=b&srt=o&sp=r&se=2026-12-06T00:00:00Z&spr=https&sig={sig}", [sig])
cs = az_client_secret()
sec("azure-ad-client-secret", "env", "ci", "github-actions-env",
    f"jobs:\n  deploy:\n    runs-on: ubuntu-latest\n    env:\n      AZURE_CLIENT_ID: {uid()}\n      AZURE_CLIENT_SECRET: {cs}\n    steps:\n      - uses: azure/login@v2", [cs])
cs = az_client_secret()
sec("azure-ad-client-secret", "code", "code-csharp", "csharp-confidential-client",
    f'var app = ConfidentialClientApplicationBuilder.Create(clientId)\n    .WithClientSecret("{cs}")\n    .WithTenantId(tenantId).Build();', [cs])
cs = az_client_secret()
sec("azure-ad-client-secret", "prose", "chat", "azure-secret-prose",
    f"new app registration secret for the SSO bridge is {cs} (valid 6 months)", [cs])

# ---------- DigitalOcean / Alibaba / IBM ----------
t = "dop_v1_" + hx(64)
sec("digitalocean-pat", "cli", "shell", "doctl-auth",
    f"$ doctl auth init --access-token {t}\nValidating token... OK", [t])
t = "dop_v1_" + hx(64)
sec("digitalocean-pat", "config", "yaml", "doctl-config",
    f"# ~/.config/doctl/config.yaml\naccess-token: {t}\ncontext: default", [t])
t = "doo_v1_" + hx(64)
sec("digitalocean-access-token", "prose", "log", "oauth-callback-log",
    f"INFO oauth: exchanged code, access_token={t} expires_in=2592000", [t])
ali, alis = "LTAI" + s(AN, 20), s(AN, 30)
sec("alibaba-access-key-id", "config", "ini", "aliyun-cli-config",
    f"[default]\naccess_key_id = {ali}\naccess_key_secret = {alis}\nregion = cn-hangzhou", [ali, alis])
ali = "LTAI" + s(AN, 20)
alis = s(AN, 30)
sec("alibaba-secret-key", "code", "code-java", "java-oss-client",
    f'OSS client = new OSSClientBuilder().build(endpoint, "{ali}", "{alis}"); // alibaba secret inline for now', [ali, alis])
ibm = s(URLSAFE, 44)
sec(G, "cli", "shell", "ibmcloud-login",
    f"ibmcloud login --apikey {ibm} -r us-south -g default", [ibm])
ibm = s(URLSAFE, 44)
sec(G, "env", "env-file", "ibm-export",
    f"export IBMCLOUD_API_KEY={ibm}\nexport IC_REGION=eu-de", [ibm])

# ---------- GitHub ----------
t = gh("ghp_")
sec("github-pat", "url", "git", "git-remote-token",
    f"git remote set-url origin https://{t}@github.com/acme/platform.git", [t])
t = gh("ghp_")
sec("github-pat", "cli", "curl", "httpie-auth",
    f"http GET https://api.github.com/user/repos 'Authorization:token {t}'", [t])
t = gh("gho_")
sec("github-oauth", "json", "json", "gh-hosts-json",
    f'{{"github.com": {{"user": "octo-dev", "oauth_token": "{t}", "git_protocol": "https"}}}}', [t])
t = gh("ghs_")
sec("github-app-token", "prose", "log", "actions-log-leak",
    f"##[debug]Evaluating: format('x-access-token:{{0}}', steps.app.outputs.token) => x-access-token:{t}", [t])
t = gh("ghu_")
sec("github-app-token", "code", "code-ts", "ts-octokit",
    f'const octokit = new Octokit({{ auth: "{t}" }});', [t])
t = gh("ghr_")
sec("github-refresh-token", "json", "json", "refresh-response",
    f'{{"access_token":"{gh("ghu_")}","expires_in":28800,"refresh_token":"{t}","token_type":"bearer"}}', [t])
ENTRIES[-1]["secrets"] = [t, re.search(r"ghu_\w+", ENTRIES[-1]["text"]).group(0)]
t = gh_fine()
sec("github-fine-grained-pat", "env", "env-file", "export-gh-token",
    f"export GH_TOKEN={t}\ngh pr list --repo acme/api", [t])
t = gh_fine()
sec("github-fine-grained-pat", "prose", "chat", "commit-message",
    f"commit 9c2e41d\n\n    fix release script\n\n    used {t} locally to test the tag push, will revoke", [t])
t = gh("ghp_")
sec("github-pat", "config", "npmrc", "npmrc-gh-packages",
    f"@acme:registry=https://npm.pkg.github.com\n//npm.pkg.github.com/:_authToken={t}", [t])
t = gh("ghp_")
sec("github-pat", "tags", "tags", "tag-token",
    "gh token used by the nightly mirror job", [t], ["ci", t])

# ---------- GitLab ----------
t = glpat()
sec("gitlab-pat", "url", "git", "clone-oauth2",
    f"git clone https://oauth2:{t}@gitlab.acme.io/infra/terraform-modules.git", [t])
t = glpat()
sec("gitlab-pat", "cli", "curl", "curl-private-token",
    f'curl --header "PRIVATE-TOKEN: {t}" "https://gitlab.com/api/v4/projects/4811/pipelines?status=failed"', [t])
t = "glptt-" + hx(40)
sec("gitlab-ptt", "cli", "curl", "pipeline-trigger",
    f'curl -X POST -F token={t} -F ref=main https://gitlab.com/api/v4/projects/4811/trigger/pipeline', [t])
t = "glrt-" + s(URLSAFE, 20)
sec("gitlab-runner-authentication-token", "cli", "shell", "runner-register",
    f'sudo gitlab-runner register --non-interactive --url https://gitlab.com --token {t} --executor docker', [t])
t = "gldt-" + s(URLSAFE, 20)
sec("gitlab-deploy-token", "config", "yaml", "gitlab-ci-variables",
    f'variables:\n  DEPLOY_USER: gitlab+deploy-token-17\n  DEPLOY_TOKEN: "{t}"\nbuild:\n  script: docker login -u $DEPLOY_USER -p $DEPLOY_TOKEN $CI_REGISTRY', [t])

# ---------- Bitbucket ----------
t = "ATBB" + s(AN, 32)
sec(G, "url", "git", "bitbucket-app-password",
    f"git push https://jdoe:{t}@bitbucket.org/acme/mobile.git HEAD:release", [t])
bid, bsec = s(AN, 18), s(AN, 32)
sec(G, "env", "env-file", "bitbucket-oauth-consumer",
    f"BITBUCKET_CLIENT_ID={bid}\nBITBUCKET_CLIENT_SECRET={bsec}", [bsec])

# ---------- Slack / Discord / Telegram / Teams ----------
t = xoxb()
sec("slack-bot-token", "code", "code-py", "py-webclient",
    f'client = WebClient(token="{t}")\nclient.chat_postMessage(channel="#deploys", text="done")', [t])
t = xoxb()
sec("slack-bot-token", "cli", "curl", "curl-bearer",
    f"curl -s -H 'Authorization: Bearer {t}' https://slack.com/api/auth.test", [t])
t = xoxp()
sec("slack-user-token", "prose", "chat", "user-token-prose-fr",
    f"Voici mon token Slack utilisateur pour le script d'export : {t} (à supprimer après)", [t])
t = xapp()
sec("slack-app-token", "env", "env-file", "socket-mode",
    f"SLACK_BOT_TOKEN={xoxb()}\nSLACK_APP_TOKEN={t}", [t])
ENTRIES[-1]["secrets"].append(re.search(r"xoxb-[\w-]+", ENTRIES[-1]["text"]).group(0))
h = slack_hook()
sec("slack-webhook-url", "config", "yaml", "alertmanager-receiver",
    f"receivers:\n  - name: oncall\n    slack_configs:\n      - api_url: '{h}'\n        channel: '#alerts'", [h])
h = slack_hook()
sec("slack-webhook-url", "cli", "curl", "curl-webhook",
    f"curl -X POST -H 'Content-type: application/json' --data '{{\"text\":\"deploy ok\"}}' {h}", [h])
t = discord_bot()
sec(G, "code", "code-js", "discord-bot-js",
    f"const client = new Client({{ intents: [GatewayIntentBits.Guilds] }});\nclient.login('{t}'); // discord bot token", [t])
h = discord_hook()
hp = h.rsplit("/", 1)[1]
sec("discord-client-secret" if False else G, "url", "url", "discord-webhook",
    f"CI posts build results to {h}", [hp])
dsec = s(URLSAFE, 32)
sec("discord-client-secret", "env", "env-file", "discord-oauth",
    f"DISCORD_CLIENT_ID={digits(18)}\nDISCORD_CLIENT_SECRET={dsec}", [dsec])
t = telegram()
sec("telegram-bot-api-token", "url", "curl", "telegram-sendmessage",
    f'curl "https://api.telegram.org/bot{t}/sendMessage?chat_id=-1001234567&text=backup%20done"', [t])
t = telegram()
sec("telegram-bot-api-token", "code", "code-py", "python-telegram-bot",
    f'app = ApplicationBuilder().token("{t}").build()', [t])
t = telegram()
sec("telegram-bot-api-token", "prose", "chat", "telegram-prose-es",
    f"El token del bot de Telegram es {t}, lo saqué de BotFather.", [t])
h, hp = teams_hook()
sec("microsoft-teams-webhook", "config", "json", "teams-connector-json",
    f'{{"notifications": {{"teams": {{"webhook": "{h}"}}}}}}', [h])

# ---------- Payments ----------
t = stripe("sk_live_", 99)
sec("stripe-access-token", "env", "env-file", "stripe-live-env",
    f"STRIPE_PUBLISHABLE_KEY=pk_live_{s(AN, 99)}\nSTRIPE_SECRET_KEY={t}", [t])
t = stripe("rk_live_", 99)
sec("stripe-access-token", "code", "code-ruby", "ruby-restricted",
    f"Stripe.api_key = '{t}' # restricted key, read-only charges", [t])
t = stripe("sk_test_", 99)
sec("stripe-access-token", "cli", "curl", "curl-u-stripe",
    f"curl https://api.stripe.com/v1/customers -u {t}: -d email=qa@acme.io", [t])
t = "whsec_" + s(AN, 32)
sec(G, "cli", "shell", "stripe-listen-output",
    f"$ stripe listen --forward-to localhost:4242/webhook\n> Ready! Your webhook signing secret is {t} (^C to quit)", [t])
t = "EAAA" + s(URLSAFE, 60)
sec("square-access-token", "code", "code-php", "php-square",
    f"$client = new SquareClient([\n    'accessToken' => '{t}',\n    'environment' => Environment::PRODUCTION,\n]);", [t])
t = "sq0csp-" + s(URLSAFE, 43)
sec("square-secret", "config", "yaml", "square-oauth-yaml",
    f"square:\n  application_id: sq0idp-{s(URLSAFE, 22)}\n  application_secret: {t}", [t])
t = f"access_token$production${s(LO + D, 16)}${hx(32)}"
sec(G, "env", "env-file", "braintree-access-token",
    f"BRAINTREE_ACCESS_TOKEN={t}", [t])
t = s(URLSAFE, 80)
sec(G, "config", "yaml", "paypal-client-secret",
    f"paypal:\n  mode: live\n  client_id: A{s(URLSAFE, 79)}\n  client_secret: {t}", [t])
t = "AQE" + s(B64, 90) + "==-" + s(B64, 43) + "=-" + s(AN, 16)
sec(G, "config", "toml", "adyen-toml",
    f'[adyen]\nmerchant_account = "AcmeECOM"\napi_key = "{t}"', [t])

# ---------- Comms ----------
tk, ts = "SK" + hx(32), s(AN, 32)
sec("twilio-api-key", "env", "env-file", "twilio-key-pair",
    f"TWILIO_ACCOUNT_SID=AC{hx(32)}\nTWILIO_API_KEY={tk}\nTWILIO_API_SECRET={ts}", [tk, ts])
tk = "SK" + hx(32)
sec("twilio-api-key", "code", "code-csharp", "csharp-twilio",
    f'TwilioClient.Init("{tk}", "{s(AN, 32)}", accountSid);', [tk])
ENTRIES[-1]["secrets"].append(re.search(r'", "(\w{32})"', ENTRIES[-1]["text"]).group(1))
t = sendgrid()
sec("sendgrid-api-token", "cli", "curl", "curl-sendgrid",
    f'curl --request POST --url https://api.sendgrid.com/v3/mail/send --header "Authorization: Bearer {t}" --header "Content-Type: application/json" -d @mail.json', [t])
t = sendgrid()
sec("sendgrid-api-token", "config", "ini", "php-ini-style",
    f"[mail]\ntransport = sendgrid\nsendgrid_api_key = {t}", [t])
t = "key-" + hx(32)
sec("mailgun-private-api-token", "cli", "curl", "curl-mailgun",
    f"curl -s --user 'api:{t}' https://api.mailgun.net/v3/mg.acme.io/messages -F from=ops@acme.io -F to=me@acme.io -F subject=test", [t])
t = hx(32) + f"-us{R.randrange(10, 22)}"
sec("mailchimp-api-key", "code", "code-js", "mailchimp-setconfig",
    f'mailchimp.setConfig({{ apiKey: "{t}", server: "{t.rsplit("-", 1)[1]}" }});', [t])
t = uid()
sec(G, "cli", "curl", "postmark-header",
    f'curl "https://api.postmarkapp.com/email" -H "Accept: application/json" -H "X-Postmark-Server-Token: {t}" -d @msg.json', [t])
sp, spe = pw_reserved()
sec(G, "url", "connstr", "smtp-url-encoded",
    f"EMAIL_URL=smtp+tls://mailer%40acme.io:{spe}@smtp.office365.com:587", [spe])

# ---------- AI ----------
t = openai_key()
sec("openai-api-key", "env", "env-file", "openai-export",
    f"export OPENAI_API_KEY={t}", [t])
t = openai_key()
sec("openai-api-key", "code", "code-py", "openai-client",
    f'from openai import OpenAI\nclient = OpenAI(api_key="{t}")', [t])
t = openai_key()
sec("openai-api-key", "prose", "error", "openai-error-echo",
    f"openai.AuthenticationError: Error code: 401 - {{'error': {{'message': 'Incorrect API key provided: {t}. You can find your API key at https://platform.openai.com/account/api-keys.'}}}}", [t])
t = anthropic_key()
sec("anthropic-api-key", "cli", "curl", "anthropic-curl",
    f'curl https://api.anthropic.com/v1/messages -H "x-api-key: {t}" -H "anthropic-version: 2023-06-01" -H "content-type: application/json" -d @req.json', [t])
t = anthropic_key()
sec("anthropic-api-key", "code", "code-ts", "anthropic-ts",
    f'const anthropic = new Anthropic({{ apiKey: "{t}" }});', [t])
t = anthropic_key("admin01")
sec("anthropic-admin-api-key", "prose", "chat", "anthropic-admin-prose",
    f"admin key for the usage report cron: {t}", [t])
t = "hf_" + s(UP + LO, 34)
sec("huggingface-access-token", "cli", "shell", "hf-login",
    f"huggingface-cli login --token {t} --add-to-git-credential", [t])
t = "hf_" + s(UP + LO, 34)
sec("huggingface-access-token", "config", "yaml", "hf-gitlab-ci",
    f"sync-model:\n  stage: deploy\n  variables:\n    HF_TOKEN: {t}\n  script:\n    - python push.py", [t])
t = s(AN, 40)
sec("cohere-api-token", "env", "env-file", "co-api-key",
    f"CO_API_KEY={t}", [t])
t = s(AN, 40)
sec("cohere-api-token", "code", "code-py", "cohere-client",
    f'co = cohere.ClientV2(api_key="{t}")  # cohere trial key', [t])
t = "r8_" + s(AN, 37)
sec(G, "env", "env-file", "replicate-token",
    f"REPLICATE_API_TOKEN={t}", [t])

# ---------- Registries ----------
t = "npm_" + s(AN, 36)
sec("npm-access-token", "config", "npmrc", "npmrc-authtoken",
    f"registry=https://registry.npmjs.org/\n//registry.npmjs.org/:_authToken={t}", [t])
t = "npm_" + s(AN, 36)
sec("npm-access-token", "env", "ci", "gha-npm-publish",
    f"- run: npm publish --access public\n  env:\n    NODE_AUTH_TOKEN: {t}", [t])
t = pypi()
sec("pypi-upload-token", "cli", "shell", "twine-upload",
    f"twine upload -u __token__ -p {t} dist/*", [t])
t = pypi()
sec("pypi-upload-token", "config", "ini", "pypirc",
    f"[pypi]\nusername = __token__\npassword = {t}", [t])
t = "rubygems_" + hx(48)
sec("rubygems-api-token", "config", "yaml", "gem-credentials",
    f"# ~/.gem/credentials\n---\n:rubygems_api_key: {t}", [t])
t = "oy2" + s(LO + D, 43)
sec(G, "cli", "shell", "nuget-push",
    f"dotnet nuget push bin/Release/Acme.Core.3.2.0.nupkg --api-key {t} --source https://api.nuget.org/v3/index.json", [t])
t = "dckr_pat_" + s(URLSAFE, 27)
sec(G, "cli", "container", "docker-login-pat",
    f"echo {t} | docker login -u acmebot --password-stdin", [t])
t = "dckr_pat_" + s(URLSAFE, 27)
sec(G, "json", "json", "docker-config-json",
    '{"auths": {"https://index.docker.io/v1/": {"auth": "' + base64.b64encode(f"acmebot:{t}".encode()).decode() + '"}}}',
    [base64.b64encode(f"acmebot:{t}".encode()).decode()])

# ---------- Infra ----------
t = hvs()
sec("vault-service-token", "cli", "shell", "vault-login",
    f"$ vault login {t}\nSuccess! You are now authenticated.", [t])
t = hvs()
sec("vault-service-token", "env", "env-file", "vault-token-env",
    f"export VAULT_ADDR=https://vault.acme.internal:8200\nexport VAULT_TOKEN={t}", [t])
t = "hvb." + s(URLSAFE, 150)
sec("vault-batch-token", "prose", "log", "vault-batch-log",
    f"level=debug msg=\"renewing lease\" token={t} ttl=20m", [t])
t = "dp.pt." + s(AN, 43)
sec("doppler-api-token", "cli", "shell", "doppler-configure",
    f"doppler configure set token {t} --scope /srv/api", [t])
t = "dp.st.prd." + s(AN, 40)
sec("doppler-api-token" if False else G, "env", "container", "doppler-service-token-compose",
    f"services:\n  api:\n    image: acme/api:2.4\n    environment:\n      DOPPLER_TOKEN: {t}", [t])
t = uid()
sec(G, "env", "env-file", "consul-http-token",
    f"export CONSUL_HTTP_ADDR=127.0.0.1:8500\nexport CONSUL_HTTP_TOKEN={t}", [t])
t = s(AN, 14) + ".atlasv1." + s(URLSAFE, 67)
sec("hashicorp-tf-api-token", "config", "hcl", "terraformrc",
    f'credentials "app.terraform.io" {{\n  token = "{t}"\n}}', [t])
t = "pul-" + hx(40)
sec("pulumi-api-token", "env", "ci", "gitlab-pulumi",
    f"preview:\n  image: pulumi/pulumi:3.140.0\n  variables:\n    PULUMI_ACCESS_TOKEN: {t}\n  script: pulumi preview --stack prod", [t])
t = s(URLSAFE, 40)
sec("cloudflare-api-key", "cli", "curl", "cloudflare-bearer",
    f'curl "https://api.cloudflare.com/client/v4/zones" -H "Authorization: Bearer {t}"  # cloudflare zone token', [t])
t = hx(37)
sec("cloudflare-global-api-key", "cli", "curl", "cloudflare-global",
    f'curl https://api.cloudflare.com/client/v4/user -H "X-Auth-Email: ops@acme.io" -H "X-Auth-Key: {t}"', [t])
t = "v1.0-" + hx(24) + "-" + hx(146)
sec("cloudflare-origin-ca-key", "env", "env-file", "origin-ca-key",
    f"CF_ORIGIN_CA_KEY={t}", [t])
t = s(URLSAFE, 32)
sec("fastly-api-token", "cli", "shell", "fastly-purge",
    f'curl -X POST -H "Fastly-Key: {t}" https://api.fastly.com/service/{s(AN, 22)}/purge_all', [t])
t = "nfp_" + s(AN, 36)
sec("netlify-access-token", "cli", "shell", "netlify-deploy",
    f"NETLIFY_AUTH_TOKEN={t} netlify deploy --prod --dir=dist", [t])
t = s(AN, 24)
sec(G, "cli", "shell", "vercel-token",
    f"vercel deploy --prebuilt --prod --token={t}", [t])
t = uid()
sec("heroku-api-key", "cli", "git", "heroku-git-remote",
    f"git push https://heroku:{t}@git.heroku.com/acme-api.git main   # heroku api key from `heroku auth:token`", [t])
t = "HRKU-AA" + s(URLSAFE, 58)
sec("heroku-api-key-v2", "env", "env-file", "heroku-v2",
    f"HEROKU_API_KEY={t}", [t])

# ---------- Observability ----------
t = hx(40)
sec("datadog-access-token", "cli", "container", "datadog-helm",
    f"helm upgrade --install datadog datadog/datadog --set datadog.apiKey={hx(32)} --set datadog.appKey={t}", [t])
ENTRIES[-1]["secrets"].insert(0, re.search(r"apiKey=(\w+)", ENTRIES[-1]["text"]).group(1))
t = hx(32)
sec(G, "config", "yaml", "datadog-agent-yaml",
    f"# /etc/datadog-agent/datadog.yaml\napi_key: {t}\nsite: datadoghq.eu\nlogs_enabled: true", [t])
t = "NRAK-" + s(UP + D, 27)
sec("new-relic-user-api-key", "cli", "curl", "nerdgraph",
    f"curl https://api.newrelic.com/graphql -H 'API-Key: {t}' -H 'Content-Type: application/json' -d '{{\"query\":\"{{ actor {{ user {{ name }} }} }}\"}}'", [t])
t = "NRII-" + s(AN + "-", 32)
sec("new-relic-insert-key", "config", "yaml", "newrelic-infra",
    f"# newrelic-infra.yml\nlicense_key: {t}\ndisplay_name: web-03", [t])
t = "sntryu_" + hx(64)
sec("sentry-user-token", "env", "env-file", "sentry-auth-token",
    f"SENTRY_AUTH_TOKEN={t}\nSENTRY_ORG=acme", [t])
t = "sntrys_" + base64.b64encode(json.dumps({"iat": 1764600000.123456, "url": "https://sentry.io", "region_url": "https://de.sentry.io", "org": "acme"}, separators=(",", ":")).encode()).decode().rstrip("=") + "_" + s(B64, 43)
sec("sentry-org-token", "config", "ini", "sentryclirc",
    f"[auth]\ntoken={t}", [t])
t = "glsa_" + s(AN, 32) + "_" + hx(8)
sec("grafana-service-account-token", "cli", "curl", "grafana-api",
    f'curl -H "Authorization: Bearer {t}" https://grafana.acme.io/api/dashboards/uid/k8s-nodes', [t])
t = "glc_" + base64.b64encode(json.dumps({"o": digits(6), "n": "stack-deploy", "k": s(AN, 24), "m": {"r": "prod-eu-west-2"}}).encode()).decode()
sec("grafana-cloud-api-token", "config", "yaml", "grafana-alloy",
    f"prometheus.remote_write \"cloud\" {{\n  endpoint {{\n    url = \"https://prometheus-prod-24-prod-eu-west-2.grafana.net/api/prom/push\"\n    basic_auth {{\n      username = \"{digits(7)}\"\n      password = \"{t}\"\n    }}\n  }}\n}}", [t])
CONTEXT[ENTRIES[-1]["id"]] = "hcl"
t = s(AN, 22)
sec(G, "env", "env-file", "honeycomb-key",
    f"OTEL_EXPORTER_OTLP_ENDPOINT=https://api.honeycomb.io\nOTEL_EXPORTER_OTLP_HEADERS=x-honeycomb-team={t}", [t])

# ---------- JWT ----------
t = jwt()
sec("jwt", "cli", "curl", "curl-bearer-jwt",
    f"curl -H 'Authorization: Bearer {t}' https://api.acme.io/v2/orders?limit=5", [t])
t = jwt({"sub": "svc-reporting", "role": "admin", "exp": 1767225600})
sec("jwt", "prose", "log", "access-log-jwt",
    f'10.2.4.17 - - [02/Dec/2026:14:22:05 +0000] "GET /api/export?access_token={t} HTTP/1.1" 200 5123', [t])
t = jwt({"iss": "supabase", "ref": s(LO, 20), "role": "service_role", "iat": 1760000000})
sec("jwt", "env", "env-file", "supabase-service-role",
    f"SUPABASE_URL=https://{s(LO, 20)}.supabase.co\nSUPABASE_SERVICE_ROLE_KEY={t}", [t])
t = jwt()
sec("jwt", "code", "code-swift", "swift-header",
    f'request.setValue("Bearer {t}", forHTTPHeaderField: "Authorization")', [t])

# ---------- Private keys ----------
b = pem_body(12)
sec("private-key", "config", "pem", "rsa-pem",
    f"key for the staging bastion, saved as ~/.ssh/staging.pem:\n-----BEGIN RSA PRIVATE KEY-----\n{b}\n-----END RSA PRIVATE KEY-----", [b])
b = pem_body(6)
sec("private-key", "config", "pem", "openssh-key",
    f"-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n{b}\n-----END OPENSSH PRIVATE KEY-----", [b])
b = pem_body(4)
sec("private-key", "config", "k8s", "k8s-tls-stringdata",
    "apiVersion: v1\nkind: Secret\nmetadata:\n  name: ingress-tls\ntype: kubernetes.io/tls\nstringData:\n  tls.key: |\n    -----BEGIN EC PRIVATE KEY-----\n    "
    + b.replace("\n", "\n    ") + "\n    -----END EC PRIVATE KEY-----", [b.replace("\n", "\n    ")])
b = pem_body(10)
sec("private-key", "config", "pem", "pgp-private-block",
    f"exported the release signing key:\n-----BEGIN PGP PRIVATE KEY BLOCK-----\n\n{b}\n={s(B64, 4)}\n-----END PGP PRIVATE KEY BLOCK-----", [b])
b = pem_body(6)
sec("private-key", "config", "ci", "gha-ssh-key-inline",
    "- name: add deploy key\n  run: |\n    cat > ~/.ssh/id_ed25519 <<'EOF'\n    -----BEGIN OPENSSH PRIVATE KEY-----\n    "
    + b.replace("\n", "\n    ") + "\n    -----END OPENSSH PRIVATE KEY-----\n    EOF", [b.replace("\n", "\n    ")])

# ---------- Kubernetes Secret ----------
p1, p2 = base64.b64encode(pw().encode()).decode(), base64.b64encode(("sk_live_" + s(AN, 24)).encode()).decode()
sec("kubernetes-secret-yaml", "config", "k8s", "k8s-secret-data",
    f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: payments-env\ntype: Opaque\ndata:\n  DB_PASSWORD: {p1}\n  STRIPE_KEY: {p2}", [p1, p2])
p = pw()
sec(G, "cli", "k8s", "kubectl-create-secret",
    f"kubectl create secret generic pg-creds --from-literal=username=app --from-literal=password='{p}' -n prod", [p])

# ---------- Framework secrets ----------
t = hx(128)
sec(G, "env", "env-file", "rails-secret-key-base",
    f"RAILS_ENV=production\nSECRET_KEY_BASE={t}", [t])
t = "base64:" + b64(32)
sec(G, "env", "env-file", "laravel-app-key",
    f"APP_NAME=Acme\nAPP_ENV=production\nAPP_KEY={t}\nAPP_DEBUG=false", [t])
t = s(LO + D + "!@#%^&*(-_=+)", 50)
sec(G, "code", "code-py", "django-settings",
    f"# settings/prod.py\nDEBUG = False\nSECRET_KEY = '{t}'\nALLOWED_HOSTS = ['acme.io']", [t])
t = hx(64)
sec(G, "code", "code-py", "flask-config",
    f'app = Flask(__name__)\napp.config["SECRET_KEY"] = "{t}"', [t])
t = hx(32)
sec(G, "env", "env-file", "symfony-app-secret",
    f"###> symfony/framework-bundle ###\nAPP_ENV=prod\nAPP_SECRET={t}\n###< symfony/framework-bundle ###", [t])
p = pw()
sec(G, "config", "properties", "spring-datasource",
    f"spring.datasource.url=jdbc:postgresql://db.acme.internal:5432/orders\nspring.datasource.username=orders_app\nspring.datasource.password={p}", [p])
t = hx(40)
sec(G, "config", "yaml", "spring-oauth-client-secret",
    f"spring:\n  security:\n    oauth2:\n      client:\n        registration:\n          github:\n            client-id: Iv1.{hx(16)}\n            client-secret: {t}", [t])
t = s(AN + "+/", 32)
sec(G, "config", "properties", "jasypt-password",
    f"jasypt.encryptor.password={t}", [t])

# ---------- Passwords in every form ----------
p = pw()
sec(G, "prose", "chat", "prose-en",
    f"fyi the wifi password in the new office is {p}", [p])
p = pw()
sec(G, "prose", "chat", "prose-db-admin",
    f"Logged into the Postgres admin with user postgres, password {p}. Migration 0042 is stuck.", [p])
p = pw()
sec(G, "prose", "chat", "prose-pt",
    f"A senha do usuário admin do Grafana é {p} — troque depois do deploy.", [p])
p = pw()
sec(G, "prose", "chat", "prose-ja",
    f"ステージングDBのパスワードは {p} です。", [p])
p = pw()
sec(G, "prose", "chat", "prose-it",
    f"la password di root sul NAS è {p}", [p])
p = pw()
sec(G, "cli", "shell", "mysql-p-attached",
    f"mysql -h 10.0.3.12 -u reporting -p{p} analytics < dump.sql", [p])
p = pw()
sec(G, "cli", "shell", "pg-env-prefix",
    f"PGPASSWORD='{p}' psql -h db.acme.internal -U app -d orders -c 'select count(*) from jobs'", [p])
p = pw()
sec(G, "cli", "shell", "sshpass",
    f"sshpass -p '{p}' ssh deploy@203.0.113.40 'systemctl restart api'", [p])
p = pw()
sec(G, "cli", "container", "docker-login-p",
    f"docker login registry.acme.io -u ci-bot -p '{p}'", [p])
p = pw()
sec(G, "cli", "container", "podman-creds",
    f"podman pull --creds deploy:{p} quay.io/acme/worker:1.9.3", [p])
p = pw()
sec(G, "cli", "container", "helm-repo-add",
    f"helm repo add acme-charts https://charts.acme.io --username ci --password '{p}'", [p])
p = pw()
sec(G, "cli", "k8s", "kubectl-docker-registry",
    f"kubectl create secret docker-registry regcred --docker-server=registry.acme.io --docker-username=ci --docker-password='{p}'", [p])
p = pw()
sec(G, "cli", "shell", "redis-cli-a",
    f"redis-cli -h cache.acme.internal -p 6379 -a '{p}' INFO memory", [p])
p = pw()
sec(G, "cli", "shell", "mongosh-password-flag",
    f"mongosh 'mongodb://db1.acme.internal:27017/admin' --username root --password '{p}'", [p])
p = pw()
sec(G, "cli", "shell", "wget-password",
    f"wget --user=backup --password='{p}' https://files.acme.io/nightly/db.tar.gz", [p])
p = pw()
sec("curl-auth-user", "cli", "curl", "curl-u-basic",
    f"curl -u 'admin:{p}' https://jenkins.acme.io/job/deploy/buildWithParameters?ENV=prod -X POST", [p])
p = pw()
sec(G, "cli", "shell", "shell-history",
    f"  501  cd infra\n  502  ansible-playbook site.yml --extra-vars 'ansible_become_pass={p}'\n  503  git status", [p])
p = pw()
sec(G, "cli", "shell", "htpasswd-b",
    f"htpasswd -b -c /etc/nginx/.htpasswd grafana '{p}'", [p])
p = pw()
sec(G, "cli", "shell", "rabbitmqctl",
    f"rabbitmqctl add_user orders_svc '{p}' && rabbitmqctl set_user_tags orders_svc monitoring", [p])
p = pw()
sec(G, "config", "yaml", "compose-postgres-password",
    f"services:\n  db:\n    image: postgres:16\n    environment:\n      POSTGRES_USER: app\n      POSTGRES_PASSWORD: {p}", [p])
p = pw()
sec(G, "config", "ini", "my-cnf-pass",
    f"[client]\nuser=backup\npass={p}\nhost=127.0.0.1", [p])
p = pw()
sec(G, "config", "ini", "ini-passwd",
    f"[smb]\nusername = scanner\npasswd = {p}\nshare = //nas/scans", [p])
p = pw()
sec(G, "config", "toml", "toml-password",
    f'[database]\nhost = "db.acme.internal"\nuser = "svc_ingest"\npassword = "{p}"', [p])
p = pw()
sec(G, "config", "xml", "maven-settings",
    f"<settings>\n  <servers>\n    <server>\n      <id>acme-releases</id>\n      <username>deployer</username>\n      <password>{p}</password>\n    </server>\n  </servers>\n</settings>", [p])
p = pw()
sec(G, "config", "xml", "nuget-config-cleartext",
    f'<packageSourceCredentials>\n  <acme>\n    <add key="Username" value="build" />\n    <add key="ClearTextPassword" value="{p}" />\n  </acme>\n</packageSourceCredentials>', [p])
p = pw()
sec(G, "json", "json", "appsettings-json",
    f'{{\n  "Smtp": {{\n    "Host": "smtp.acme.io",\n    "User": "noreply",\n    "Password": "{p}"\n  }}\n}}', [p])
p = pw()
sec(G, "config", "hcl", "terraform-db-instance",
    f'resource "aws_db_instance" "orders" {{\n  engine   = "postgres"\n  username = "orders"\n  password = "{p}"\n}}', [p])
p = pw()
sec(G, "config", "hcl", "tfvars",
    f'# prod.tfvars\nadmin_password = "{p}"\nregion         = "westeurope"', [p])
p = pw()
sec(G, "code", "code-go", "go-dsn",
    f'db, err := sql.Open("mysql", "app:{p}@tcp(10.0.4.5:3306)/orders?parseTime=true")', [p])
p = pw()
sec(G, "code", "code-java", "java-getconnection",
    f'Connection conn = DriverManager.getConnection(url, "reporting", "{p}");', [p])
p = pw()
sec(G, "code", "code-rust", "rust-pgconfig",
    f'let mut cfg = tokio_postgres::Config::new();\ncfg.host("db.acme.internal").user("ingest").password("{p}");', [p])
p = pw()
sec(G, "code", "code-kotlin", "kotlin-hikari",
    f'val ds = HikariDataSource().apply {{\n    jdbcUrl = "jdbc:mysql://db:3306/app"\n    username = "app"\n    password = "{p}"\n}}', [p])
p = pw()
sec(G, "code", "code-ruby", "ruby-net-smtp",
    f"Net::SMTP.start('smtp.acme.io', 587, 'acme.io', 'alerts', '{p}', :login)", [p])
p = pw()
sec(G, "code", "code-php", "php-pdo",
    f"$pdo = new PDO('mysql:host=localhost;dbname=shop', 'shop', '{p}');", [p])
p = pw()
sec(G, "code", "code-csharp", "csharp-networkcredential",
    f'client.Credentials = new NetworkCredential("svc-print", "{p}");', [p])
p = pw()
sec(G, "code", "code-swift", "swift-keychain-seed",
    f'let adminPassword = "{p}" // TODO: move to keychain before release', [p])
p = pw()
sec(G, "code", "code-js", "js-nodemailer",
    f"const transport = nodemailer.createTransport({{ host: 'smtp.acme.io', auth: {{ user: 'alerts', pass: '{p}' }} }});", [p])
p = pw()
sec(G, "prose", "todo", "todo-comment",
    f"# TODO(anna): stop hardcoding this, the ldap bind password is {p}\nLDAP_BIND_DN = 'cn=svc,dc=acme,dc=io'", [p])
p = pw()
sec(G, "prose", "table", "markdown-table",
    f"| service | user | password |\n|---|---|---|\n| grafana | admin | {p} |\n| minio | console | see vault |", [p])
p = pw()
sec(G, "prose", "error", "stacktrace-dsn",
    f"Traceback (most recent call last):\n  File \"/srv/app/db.py\", line 18, in connect\n    return psycopg.connect(\"host=db user=app password={p} dbname=orders\")\npsycopg.OperationalError: connection to server at \"db\" failed: FATAL:  password authentication failed for user \"app\"", [p])
p = pw()
sec(G, "prose", "log", "log-line-password",
    f"2026-12-01 09:12:44,551 DEBUG ldap3: bind(user='cn=svc-sync,ou=svc,dc=acme,dc=io', password='{p}') -> invalidCredentials", [p])
p = pw()
sec(G, "tags", "tags", "tag-password",
    "router admin login for the lab", [p], ["lab", f"pw={p}"])
p = pw()
sec(G, "config", "yaml", "ansible-vars",
    f"# group_vars/db.yml\npostgresql_users:\n  - name: replicator\n    pwd: \"{p}\"", [p])
p = pw()
sec(G, "cli", "shell", "openssl-passout",
    f"openssl pkcs12 -export -in cert.pem -inkey key.pem -out bundle.p12 -passout pass:{p}", [p])

# ---------- connection strings ----------
p = pw()
sec(G, "config", "connstr", "jdbc-sqlserver",
    f"jdbc:sqlserver://sql01.acme.internal:1433;databaseName=Billing;user=billing_rw;password={p};encrypt=true", [p])
p = pw()
sec(G, "config", "connstr", "odbc-pwd",
    f"Driver={{ODBC Driver 18 for SQL Server}};Server=tcp:sql02,1433;Database=HR;Uid=hr_reader;Pwd={p};Encrypt=yes;", [p])
p = pw()
sec(G, "config", "connstr", "adonet-password",
    f'"ConnectionStrings": {{ "Default": "Server=sql03;Database=Shop;User Id=shop_app;Password={p};TrustServerCertificate=True" }}', [p])
pr, pe = pw_reserved()
sec(G, "url", "connstr", "mongo-srv-encoded",
    f"MONGODB_URI=mongodb+srv://analytics:{pe}@cluster0.ab1cd.mongodb.net/events?retryWrites=true&w=majority", [pe])
pr, pe = pw_reserved()
sec(G, "url", "connstr", "redis-url-encoded",
    f"REDIS_URL=rediss://default:{pe}@redis-12345.c1.eu-west-1.ec2.cloud.redislabs.com:12345/0", [pe])
p = pw_url()
sec(G, "url", "connstr", "amqp-url",
    f"celery broker: amqp://orders_svc:{p}@rabbit.acme.internal:5672/orders", [p])
pr, pe = pw_reserved()
sec(G, "url", "connstr", "mqtt-url-encoded",
    f"mosquitto_sub -L 'mqtts://sensor-gw:{pe}@mqtt.acme.io:8883/plant/+/temp'", [pe])
CONTEXT[ENTRIES[-1]["id"]] = "connstr"
p = pw_url()
sec(G, "url", "connstr", "postgres-url",
    f"DATABASE_URL=postgres://orders:{p}@db.acme.internal:5432/orders?sslmode=require", [p])
pr, pe = pw_reserved()
sec(G, "url", "connstr", "mysql-url-encoded-yaml",
    f"sqlalchemy:\n  url: mysql+pymysql://etl:{pe}@10.0.9.7:3306/warehouse", [pe])
p = pw_url()
sec(G, "url", "url", "https-basic-in-url",
    f"the artifact mirror needs basic auth: https://ci:{p}@nexus.acme.io/repository/raw/ ", [p])
p = pw()
bb = base64.b64encode(f"admin:{p}".encode()).decode()
sec(G, "cli", "curl", "curl-basic-header",
    f"curl -H 'Authorization: Basic {bb}' https://es.acme.internal:9200/_cat/indices", [bb])
p = pw()
bb = base64.b64encode(f"svc:{p}".encode()).decode()
sec(G, "prose", "log", "proxy-log-basic",
    f"DEBUG urllib3: send: b'GET /metrics HTTP/1.1\\r\\nHost: prom.acme.io\\r\\nAuthorization: Basic {bb}\\r\\n'", [bb])

# ---------- misc CI / tags / other kinds ----------
t = "dapi" + hx(32)
sec("databricks-api-token", "config", "ini", "databrickscfg",
    f"[DEFAULT]\nhost = https://adb-{digits(16)}.4.azuredatabricks.net\ntoken = {t}", [t])
t = "lin_api_" + s(AN, 40)
sec("linear-api-key", "code", "code-ts", "linear-client",
    f'const linear = new LinearClient({{ apiKey: "{t}" }});', [t])
t = "shpat_" + hx(32)
sec("shopify-access-token", "cli", "curl", "shopify-admin",
    f'curl -H "X-Shopify-Access-Token: {t}" https://acme-store.myshopify.com/admin/api/2025-10/orders.json', [t])
t = "PMAK-" + hx(24) + "-" + hx(34)
sec("postman-api-token", "env", "ci", "postman-newman",
    f"- name: run collection\n  run: newman run https://api.getpostman.com/collections/123?apikey={t}", [t])
t = "AGE-SECRET-KEY-1" + s("QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L", 58)
sec("age-secret-key", "config", "txt", "age-keys-txt",
    f"# created: 2026-11-30T10:00:00Z\n# public key: age1{s('qpzry9x8gf2tvdw0s3jn54khce6mua7l', 58)}\n{t}", [t])
t = "dt0c01." + s(UP + D, 24) + "." + s(UP + D, 64)
sec("dynatrace-api-token", "env", "env-file", "dynatrace",
    f"DT_API_TOKEN={t}", [t])
t = "pscale_pw_" + s(URLSAFE, 43)
sec("planetscale-password", "url", "connstr", "planetscale-url",
    f"DATABASE_URL=mysql://{s(LO + D, 12)}:{t}@aws.connect.psdb.cloud/shop?sslaccept=strict", [t])
t = "00" + s(URLSAFE, 40)
sec("okta-access-token", "env", "env-file", "okta-token",
    f"OKTA_ORG_URL=https://acme.okta.com\nOKTA_API_TOKEN={t}", [t])
t = s(LO + D, 32)
sec("algolia-api-key", "code", "code-js", "algolia-admin",
    f"const client = algoliasearch('{s(UP + D, 10)}', '{t}'); // algolia admin key, server only", [t])
t = "A3-" + s(UP + D, 6) + "-" + s(UP + D, 11) + "-" + s(UP + D, 5) + "-" + s(UP + D, 5) + "-" + s(UP + D, 5)
sec("1password-secret-key", "prose", "chat", "1password-emergency-kit",
    f"From the emergency kit, secret key: {t}", [t])
t = "EZAK" + s(LO + D, 54)
sec("easypost-api-token", "env", "env-file", "easypost",
    f"EASYPOST_API_KEY={t}", [t])
t = "pk." + b64u(json.dumps({"u": "acme", "a": s(LO + D, 25)}).encode())
# (mapbox public tokens are public by design: not used as a secret)
t = "sk." + b64u(json.dumps({"u": "acme", "a": s(LO + D, 25)}, separators=(",", ":")).encode()) + "." + s(URLSAFE, 22)
sec(G, "env", "env-file", "mapbox-secret-token",
    f"MAPBOX_DOWNLOADS_TOKEN={t}", [t])
t = gh("ghp_")
sec("github-pat", "config", "ci", "gha-checkout-token-literal",
    f"- uses: actions/checkout@v4\n  with:\n    repository: acme/shared-config\n    token: {t}", [t])
t = glpat()
sec("gitlab-pat", "tags", "tags", "tag-gitlab",
    "renovate bot credentials (gitlab)", [t], ["renovate", f"token {t}"])
t = xoxb()
sec("slack-bot-token", "tags", "tags", "tag-slack",
    "#alerts bot", [t], [t, "slack"])
t = openai_key()
sec("openai-api-key", "tags", "tags", "tag-openai",
    "evaluation harness key", [t], ["llm", "openai", t])
t = "sq0atp-" + s(URLSAFE, 22)
sec("square-access-token", "json", "json", "square-atp-json",
    f'{{"square": {{"environment": "production", "access_token": "{t}"}}}}', [t])
t = "pub" + hx(32)
t = "key-" + hx(32)
sec("mailgun-private-api-token", "code", "code-py", "mailgun-requests",
    f'requests.post(MG_URL, auth=("api", "{t}"), data=payload)', [t])
t = uid()
sec(G, "config", "toml", "postmark-toml",
    f'[postmark]\nserver_token = "{t}"\nmessage_stream = "outbound"', [t])
t = "hf_" + s(UP + LO, 34)
sec("huggingface-access-token", "url", "git", "hf-git-remote",
    f"git remote add hub https://user:{t}@huggingface.co/acme/sentiment-small", [t])
t = "r8_" + s(AN, 37)
sec(G, "code", "code-py", "replicate-client",
    f'client = replicate.Client(api_token="{t}")', [t])
t = hvs()
sec("vault-service-token", "cli", "curl", "vault-curl",
    f'curl -H "X-Vault-Token: {t}" https://vault.acme.internal:8200/v1/secret/data/payments', [t])
t = "pul-" + hx(40)
sec("pulumi-api-token", "cli", "shell", "pulumi-login",
    f"PULUMI_ACCESS_TOKEN={t} pulumi login && pulumi up --stack prod --yes", [t])
t = anthropic_key()
sec("anthropic-api-key", "prose", "chat", "anthropic-prose-nl",
    f"Mijn Anthropic API-sleutel voor de test: {t}", [t])
t = gh("ghp_")
sec("github-pat", "prose", "error", "error-echo-remote",
    f"fatal: unable to access 'https://{t}@github.com/acme/infra.git/': The requested URL returned error: 403", [t])
t = stripe("sk_live_", 24)
sec("stripe-access-token", "config", "xml", "stripe-web-config",
    f'<appSettings>\n  <add key="StripeSecretKey" value="{t}" />\n</appSettings>', [t])
t = s(URLSAFE, 40)
sec("cloudflare-api-key", "env", "ci", "wrangler-gha",
    f"- uses: cloudflare/wrangler-action@v3\n  with:\n    apiToken: {t}  # cloudflare token, move to secrets", [t])
t = uid()
sec("heroku-api-key", "prose", "chat", "heroku-prose",
    f"heroku api key for the review-app pipeline: {t}", [t])
t = hx(32)
sec("sentry-access-token" if False else G, "config", "yaml", "datadog-k8s-secret-stringdata",
    f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: datadog-secret\nstringData:\n  api-key: {t}", [t])
CONTEXT[ENTRIES[-1]["id"]] = "k8s"
t = az_storage()
sec(G, "env", "ci", "gitlab-azure-storage",
    f"upload:\n  script:\n    - az storage blob upload-batch -d web -s public --account-name acmeweb --account-key {t}", [t])
sp = pw()
sec(G, "env", "env-file", "smtp-pass-env",
    f"SMTP_HOST=smtp.mailgun.org\nSMTP_USER=postmaster@mg.acme.io\nSMTP_PASS={sp}", [sp])

# =========================== NEAR-MISSES ===========================
def sha40() -> str:
    return hx(40)


nm("git-sha", "git", "log-oneline-full", f"commit {sha40()}\nAuthor: Dana <dana@acme.io>\nDate:   Tue Dec 1 10:22:31 2026 +0100\n\n    retry busy sqlite writes")
nm("git-sha", "ci", "gha-pinned-action", f"- uses: actions/setup-python@{sha40()} # v5.3.0")
nm("git-sha", "url", "github-commit-url", f"regression came in with https://github.com/acme/api/commit/{sha40()}")
nm("git-sha", "git", "git-revert-message", f'Revert "cache tokens per tenant"\n\nThis reverts commit {sha40()}.')
nm("git-sha", "git", "rev-parse", f"$ git rev-parse HEAD\n{sha40()}")
nm("git-sha", "git", "submodule-status", f" {sha40()} vendor/libfoo (v2.1.0-14-g{hx(7)})")
nm("git-sha", "toml", "cargo-git-rev", f'serde_tokenizer = {{ git = "https://github.com/acme/serde-tok", rev = "{sha40()}" }}')
nm("git-sha", "go", "go-pseudo-version", f"require github.com/acme/secretless v0.0.0-20261130101112-{hx(12)}")
nm("short-sha", "git", "short-sha-prose", f"bisected the token refresh bug to {hx(7)}, fixed in {hx(8)}")
nm("short-sha", "git", "git-log-graph", f"* {hx(7)} (HEAD -> main) rotate secrets doc\n* {hx(7)} add password policy page\n* {hx(7)} bump deps")
nm("lockfile-integrity", "json", "package-lock", f'"node_modules/jsonwebtoken": {{\n  "version": "9.0.2",\n  "resolved": "https://registry.npmjs.org/jsonwebtoken/-/jsonwebtoken-9.0.2.tgz",\n  "integrity": "sha512-{b64(64)}"\n}}')
nm("lockfile-integrity", "yaml", "pnpm-lock", f"  /dotenv@16.4.5:\n    resolution: {{integrity: sha512-{b64(64)}}}")
nm("lockfile-integrity", "html", "sri-script", f'<script src="https://cdn.jsdelivr.net/npm/htmx.org@2.0.3" integrity="sha384-{b64(48)}" crossorigin="anonymous"></script>')
nm("lockfile-integrity", "nix", "nix-hash", f'src = fetchFromGitHub {{\n  owner = "acme"; repo = "keyring"; rev = "v1.4.0";\n  hash = "sha256-{b64(32)}";\n}};')
nm("lockfile-integrity", "txt", "pip-hashes", f"cryptography==44.0.0 \\\n    --hash=sha256:{hx(64)} \\\n    --hash=sha256:{hx(64)}")
nm("lockfile-integrity", "toml", "poetry-lock", f'[[package]]\nname = "python-dotenv"\nversion = "1.0.1"\nfiles = [\n    {{file = "python_dotenv-1.0.1-py3-none-any.whl", hash = "sha256:{hx(64)}"}},\n]')
nm("lockfile-integrity", "toml", "cargo-lock", f'[[package]]\nname = "secrecy"\nversion = "0.10.3"\nsource = "registry+https://github.com/rust-lang/crates.io-index"\nchecksum = "{hx(64)}"')
nm("lockfile-integrity", "hcl", "terraform-lock", f'provider "registry.terraform.io/hashicorp/vault" {{\n  version = "4.5.0"\n  hashes = [\n    "h1:{b64(32)}",\n    "zh:{hx(64)}",\n  ]\n}}')
nm("lockfile-integrity", "go", "go-sum", f"golang.org/x/crypto v0.31.0 h1:{b64(32)}\ngolang.org/x/crypto v0.31.0/go.mod h1:{b64(32)}")
nm("lockfile-integrity", "yaml", "yarn-berry-checksum", f'"vault-client@npm:1.2.0":\n  version: 1.2.0\n  checksum: 10c0/{hx(128)}')
nm("docker-digest", "container", "docker-pull-digest", f"docker pull ghcr.io/acme/api@sha256:{hx(64)}")
nm("docker-digest", "k8s", "k8s-image-digest", f"containers:\n  - name: token-service\n    image: registry.acme.io/token-service@sha256:{hx(64)}")
nm("docker-digest", "container", "docker-push-output", f"1.9.3: digest: sha256:{hx(64)} size: 2415")
nm("docker-digest", "shell", "sha256sum-output", f"$ sha256sum vault_1.18.2_linux_amd64.zip\n{hx(64)}  vault_1.18.2_linux_amd64.zip")
nm("docker-digest", "container", "dockerfile-from-digest", f"FROM python:3.12-slim@sha256:{hx(64)}\nRUN pip install --no-cache-dir keyring")
nm("docker-digest", "shell", "checksums-file", f"SHA512 checksum of the release tarball:\n{hx(128)}")
nm("docker-digest", "log", "buildkit-log", f"#7 exporting layers\n#7 writing image sha256:{hx(64)} done\n#7 naming to docker.io/acme/secrets-operator:0.8.1 done")
nm("docker-digest", "shell", "md5-digest", f"md5 of the uploaded backup is {hx(32)}, matches the local copy")
for label, ctx, text in [
    ("request-id-log", "log", "2026-12-02T10:00:01Z INFO request_id={u} tenant=acme path=/v1/tokens status=201"),
    ("trace-id-header", "log", "traceparent: 00-{h32}-{h16}-01"),
    ("uuid-k8s-uid", "k8s", "metadata:\n  name: api-token-rotator\n  uid: {u}\n  resourceVersion: \"884213\""),
    ("uuid-correlation-prose", "chat", "support ticket correlation id {u} — the password reset email never arrived"),
    ("uuid-azure-ids", "env", "AZURE_TENANT_ID={u}\nAZURE_SUBSCRIPTION_ID={u2}"),
    ("uuid-idempotency", "curl", "curl -X POST https://api.acme.io/charges -H 'Idempotency-Key: {u}' -H 'Authorization: Bearer $API_TOKEN' -d amount=500"),
    ("uuid-sql", "code-sql", "SELECT * FROM api_keys WHERE owner_id = '{u}' AND revoked_at IS NULL;"),
    ("x-request-id-hex", "log", "HTTP 502 from upstream, x-amzn-requestid: {u}, x-amz-id-2: {b}"),
]:
    nm("uuid", ctx, label, text.format(u=uid(), u2=uid(), h32=hx(32), h16=hx(16), b=b64(48)))
nm("ssh-fingerprint", "shell", "ssh-keygen-lf", f"$ ssh-keygen -lf ~/.ssh/id_ed25519.pub\n256 SHA256:{b64(32).rstrip('=')} dana@laptop (ED25519)")
nm("ssh-fingerprint", "log", "host-key-prompt", f"The authenticity of host 'bastion.acme.io (203.0.113.9)' can't be established.\nED25519 key fingerprint is SHA256:{b64(32).rstrip('=')}.")
nm("ssh-fingerprint", "shell", "md5-fingerprint", "MD5 fingerprint of the deploy key: " + ":".join(hx(2) for _ in range(16)))
nm("ssh-fingerprint", "git", "gpg-fingerprint", f"gpg --list-secret-keys --keyid-format=long\nsec   ed25519/{hx(16).upper()} 2026-01-04 [SC]\n      {hx(40).upper()}\nuid                 [ultimate] Dana Ops <dana@acme.io>")
def ssh_blob(*parts: bytes) -> str:
    return base64.b64encode(b"".join(struct.pack(">I", len(x)) + x for x in parts)).decode()


nm("ssh-fingerprint", "ssh", "ed25519-public-line", f"add this to authorized_keys: ssh-ed25519 {ssh_blob(b'ssh-ed25519', rbytes(32))} ci@runner")
nm("ssh-fingerprint", "ssh", "rsa-public-line", f"ssh-rsa {ssh_blob(b'ssh-rsa', bytes([1, 0, 1]), bytes([0, 0xC1]) + rbytes(383))} dana@desktop")
nm("ssh-fingerprint", "pem", "pem-public-key", "JWT verification key (public, safe to share):\n-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA" + "\n".join([b64(48)[:20]] + [b64(48) for _ in range(4)]) + "\n-----END PUBLIC KEY-----")
nm("ssh-fingerprint", "pem", "pem-certificate", "CA bundle entry:\n-----BEGIN CERTIFICATE-----\nMIIDdzCCAl+gAwIBAgIE" + "\n".join([b64(48)[:44]] + [b64(48) for _ in range(5)]) + "\n-----END CERTIFICATE-----")
nm("ssh-fingerprint", "ssh", "known-hosts-line", f"github.com ecdsa-sha2-nistp256 {ssh_blob(b'ecdsa-sha2-nistp256', b'nistp256', bytes([4]) + rbytes(64))}")
nm("ssh-fingerprint", "tls", "cert-sha256-fingerprint", "SHA-256 certificate fingerprint: " + ":".join(hx(2).upper() for _ in range(32)))


def png_1x1(rgb: tuple[int, int, int]) -> str:
    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)
    raw = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)) \
        + chunk(b"IDAT", zlib.compress(b"\x00" + bytes(rgb))) + chunk(b"IEND", b"")
    return base64.b64encode(raw).decode()


nm("data-uri", "css", "css-bg-png", f".dot {{ background: url(data:image/png;base64,{png_1x1((R.randrange(256), R.randrange(256), R.randrange(256)))}) }}")
nm("data-uri", "html", "img-inline", f'<img alt="status" src="data:image/png;base64,{png_1x1((12, 200, 90))}">')
nm("data-uri", "md", "markdown-image", f"![spacer](data:image/png;base64,{png_1x1((255, 255, 255))})")
gif = base64.b64encode(b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;").decode()
nm("data-uri", "js", "js-gif-pixel", f"const PIXEL = 'data:image/gif;base64,{gif}';")
nm("data-uri", "json", "favicon-json", f'{{"icon": "data:image/png;base64,{png_1x1((0, 0, 0))}", "name": "Acme Tokens"}}')
for label, ctx, text in [
    ("semver-changelog", "md", "## 3.14.2 (2026-11-28)\n- bump cryptography 43.0.3 → 44.0.0\n- vault client 1.18.2"),
    ("semver-prerelease", "chat", "upgrade keyring to 25.5.0-rc.2+build.20261130 before the token refactor"),
    ("semver-requirements", "txt", "pyjwt>=2.10.1,<3\npasslib==1.7.4\nbcrypt~=4.2.1"),
    ("hex-colours", "css", ":root { --secret-badge: #ff5f1f; --token-bg: #1e293b; --key-border: #94a3b8cc; }"),
    ("ipv6-and-mac", "log", "peer fe80::1c2b:3dff:fe4e:5f60%eth0 mac 3c:22:fb:9a:10:7e token refresh scheduled"),
    ("build-number", "ci", "Build #48213 (run 11834729351, attempt 2) finished in 6m41s"),
]:
    nm("semver" if label.startswith("semver") else "keyword-prose", ctx, label, text)
for label, ctx, text in [
    ("path-secrets-dir", "shell", "ls /etc/acme/secrets/ && cat /run/secrets/db_password_file_path.txt | wc -c"),
    ("path-windows", "shell", r"copied C:\Users\dana\AppData\Roaming\gcloud\application_default_credentials.json.bak to the archive folder"),
    ("path-module", "code-py", "from acme.auth.token_store import TokenStore  # src/acme/auth/token_store.py"),
    ("path-k8s-mount", "k8s", "volumeMounts:\n  - name: api-keys\n    mountPath: /var/run/secrets/acme/api-keys\n    readOnly: true"),
]:
    nm("file-path", ctx, label, text)
for label, ctx, text in [
    ("env-ref-python", "code-py", 'api_key = os.getenv("OPENAI_API_KEY")\nif not api_key:\n    raise RuntimeError("OPENAI_API_KEY is not set")'),
    ("env-ref-js", "code-js", "const stripe = new Stripe(process.env.STRIPE_SECRET_KEY!, { apiVersion: '2025-10-29' });"),
    ("gha-secrets-ref", "ci", "env:\n  AWS_ACCESS_KEY_ID: ${{ secrets.AWS_ACCESS_KEY_ID }}\n  AWS_SECRET_ACCESS_KEY: ${{ secrets.AWS_SECRET_ACCESS_KEY }}"),
    ("gitlab-masked-var", "ci", 'deploy:\n  script:\n    - echo "$CI_REGISTRY_PASSWORD" | docker login -u "$CI_REGISTRY_USER" --password-stdin "$CI_REGISTRY"'),
    ("k8s-secretkeyref", "k8s", "env:\n  - name: DB_PASSWORD\n    valueFrom:\n      secretKeyRef:\n        name: pg-creds\n        key: password"),
    ("terraform-var-sensitive", "hcl", 'variable "db_password" {\n  type      = string\n  sensitive = true\n}\n\npassword = var.db_password'),
    ("go-identifiers", "code-go", "type Config struct {\n\tAPIToken     string `env:\"API_TOKEN\"`\n\tClientSecret string `env:\"CLIENT_SECRET\"`\n}"),
    ("java-identifiers", "code-java", 'String password = System.getenv("DB_PASSWORD");\nchar[] secretKey = vault.read("kv/payments").get("secret_key");'),
    ("rust-identifiers", "code-rust", 'let token = std::env::var("GITHUB_TOKEN").expect("GITHUB_TOKEN must be set");'),
    ("csharp-config-ref", "code-csharp", 'var key = builder.Configuration["Stripe:SecretKey"];'),
    ("ruby-credentials-ref", "code-ruby", "Stripe.api_key = Rails.application.credentials.dig(:stripe, :secret_key)"),
    ("php-env-ref", "code-php", "'password' => env('DB_PASSWORD', ''),"),
    ("kotlin-buildconfig", "code-kotlin", 'buildConfigField("String", "MAPS_KEY", "\\"${project.findProperty("mapsKey")}\\"")'),
    ("swift-keychain-read", "code-swift", 'let password = try keychain.get("db-password")'),
    ("mysql-prompt", "shell", "mysql -u root -p   # prompts for the password"),
    ("docker-password-stdin", "shell", "aws ecr get-login-password --region eu-west-1 | docker login --username AWS --password-stdin 123456789012.dkr.ecr.eu-west-1.amazonaws.com"),
    ("vault-kv-get", "shell", "vault kv get -field=password secret/prod/postgres"),
    ("stripe-publishable", "env", "NEXT_PUBLIC_STRIPE_PUBLISHABLE_KEY=pk_live_" + s(AN, 99)),
    ("stripe-publishable-test-js", "code-js", "const stripe = Stripe('pk_test_" + s(AN, 99) + "');"),
    ("twilio-account-sid", "env", "TWILIO_ACCOUNT_SID=AC" + hx(32) + "\nTWILIO_AUTH_TOKEN=${TWILIO_AUTH_TOKEN}"),
    ("sentry-dsn", "code-py", 'sentry_sdk.init(dsn="https://' + hx(32) + '@o' + digits(6) + '.ingest.sentry.io/' + digits(7) + '")'),
    ("password-policy-code", "code-ts", "if (password.length < 12) throw new ValidationError('password too short');"),
    ("token-type-field", "json", '{"token_type": "bearer", "expires_in": 3600, "scope": "repo read:org"}'),
    ("sql-password-column", "code-sql", "ALTER TABLE users ADD COLUMN password_hash TEXT NOT NULL DEFAULT '';"),
    ("secret-manager-arn", "hcl", 'data "aws_secretsmanager_secret_version" "db" {\n  secret_id = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf"\n}'),
    ("gh-cli-secret-set", "shell", "gh secret set NPM_TOKEN --repo acme/web < /dev/stdin"),
    ("pass-show", "shell", "export GITHUB_TOKEN=$(pass show github/token)"),
    ("onepassword-ref", "env", "DATABASE_PASSWORD=op://Engineering/Postgres prod/password"),
]:
    nm("password-code", ctx, label, text)
for label, ctx, text in [
    ("angle-token", "curl", "curl -H 'Authorization: Bearer <TOKEN>' https://api.acme.io/v1/me"),
    ("dollar-brace", "env", "API_KEY=${API_KEY}\nDB_PASSWORD=${DB_PASSWORD:?missing}"),
    ("dollar-var", "shell", 'curl -u "$USER:$SECRET" https://nexus.acme.io/service/rest/v1/status'),
    ("jinja-secret", "yaml", "password: {{ vault_db_password }}\napi_key: \"{{ lookup('env', 'API_KEY') }}\""),
    ("redacted-word", "log", "INFO auth ok user=dana token=REDACTED password=*** api_key=[redacted:generic-api-key]"),
    ("stars-mask", "chat", "the console shows the secret as ******************** after you close the dialog"),
    ("changeme-docs", "md", "Default credentials for the local stack are `admin` / `changeme`; change them on first login."),
    ("elided-stem", "chat", "the key starts with sk-proj-... and ends with ...x9Qa, I think it's the old one"),
    ("xxxx-mask", "env", "SENDGRID_API_KEY=SG.xxxxxxxxxxxxxxxxxxxx.xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"),
    ("your-hint", "code-py", 'client = WebClient(token="xoxb-your-bot-token-here")'),
    ("replace-me", "yaml", "stripe:\n  secret_key: REPLACE_ME\n  webhook_secret: TODO"),
    ("empty-values", "env", "AWS_ACCESS_KEY_ID=\nAWS_SECRET_ACCESS_KEY=\nGITHUB_TOKEN="),
    ("percent-var", "shell", r"net use Z: \\nas\share /user:ACME\svc %SVC_PASSWORD%"),
    ("helm-values-ref", "yaml", "auth:\n  existingSecret: redis-auth\n  password: \"\""),
    ("example-word", "md", "Set `VAULT_TOKEN=example` when running the docs snippet against the dev server."),
    ("placeholder-table", "table", "| variable | example |\n|---|---|\n| `OPENAI_API_KEY` | `sk-...` |\n| `HF_TOKEN` | `hf_xxx` |"),
    ("null-values", "json", '{"password": null, "apiKey": "", "clientSecret": "<set in vault>"}'),
    ("dummy-test", "code-py", 'def test_login(client):\n    resp = client.post("/login", json={"user": "alice", "password": "dummy"})'),
    ("ghp-ellipsis", "chat", "the old token (ghp_…) was revoked yesterday, new one is in 1Password"),
    ("xml-placeholder", "xml", "<password>${env.NEXUS_PASSWORD}</password>"),
    ("hcl-placeholder", "hcl", 'token = "<terraform cloud token>"'),
    ("toml-placeholder", "toml", 'api_key = "your-api-key"'),
    ("connstr-placeholder", "connstr", "postgres://USER:PASSWORD@HOST:5432/DBNAME"),
    ("connstr-env-ref", "connstr", "Server=sql01;Database=Billing;User Id=billing_rw;Password=$(DB_PASSWORD);"),
    ("mongo-placeholder", "connstr", "mongodb+srv://<username>:<password>@cluster0.example.mongodb.net/"),
    ("k8s-secret-placeholder", "k8s", "apiVersion: v1\nkind: Secret\nmetadata:\n  name: app\nstringData:\n  API_KEY: \"<fill in from vault>\""),
]:
    nm("placeholder", ctx, label, text)
for label, ctx, text in [
    ("format-description-ghp", "chat", "GitHub classic tokens are ghp_ followed by 36 alphanumerics; fine-grained ones start with github_pat_."),
    ("format-description-aws", "chat", "AWS access key ids are 20 uppercase characters starting with AKIA (long-term) or ASIA (temporary)."),
    ("rotate-keys-prose", "chat", "Rotated every API key and secret today; the password manager has the new values."),
    ("token-count-prose", "chat", "The prompt is 18,432 tokens; the secret sauce is the cache key layout."),
    ("keyword-prose-de", "chat", "Das Passwort muss mindestens 14 Zeichen haben und wird alle 90 Tage erneuert."),
    ("keyword-prose-fr", "chat", "Le jeton expire après 15 minutes ; il faut rafraîchir la clé de session."),
    ("timestamp-epoch", "log", "token issued_at=1764672000 expires_at=1764675600 (unix seconds)"),
    ("commit-message-secret-word", "git", "fix(auth): never log the password field; mask secret headers in debug output"),
    ("todo-rotate", "todo", "// TODO: rotate the Slack signing secret once the migration lands (ticket OPS-4412)"),
    ("stacktrace-no-secret", "error", 'Traceback (most recent call last):\n  File "/srv/app/auth.py", line 44, in verify\n    jwt.decode(token, key, algorithms=["RS256"])\njwt.exceptions.ExpiredSignatureError: Signature has expired'),
    ("error-missing-key", "error", "Error: OPENAI_API_KEY environment variable is missing or empty; pass it via --api-key or set it in .env"),
    ("md-table-rotation", "table", "| secret | owner | rotated |\n|---|---|---|\n| Stripe live key | payments | 2026-11-02 |\n| Vault root token | infra | never (sealed) |"),
    ("http-401-log", "log", '127.0.0.1 - - [02/Dec/2026:14:22:05 +0000] "POST /oauth/token HTTP/1.1" 401 62 "-" "python-requests/2.32.3"'),
    ("base32-otp-label", "chat", "scan the QR in Authy; the issuer label says Acme:dana@acme.io"),
    ("jwt-header-only", "chat", 'a JWT header is just base64url of {"alg":"RS256","typ":"JWT"}, nothing secret in it'),
    ("hash-algorithms", "chat", "we hash passwords with argon2id (m=19456, t=2, p=1) and store only the PHC string prefix $argon2id$v=19$"),
]:
    nm("keyword-prose", ctx, label, text)
nm("tags", "tags", "tags-sha", "release notes for 3.14.2", ["release", f"commit:{sha40()}"])
nm("tags", "tags", "tags-digest", "image promoted to prod", [f"sha256:{hx(64)}", "prod"])
nm("tags", "tags", "tags-uuid", "incident follow-up", [f"incident-{uid()}", "postmortem"])
nm("tags", "tags", "tags-keywords", "notes on the secrets rotation runbook", ["secrets", "password-policy", "api-key-rotation"])
nm("tags", "tags", "tags-integrity", "lockfile churn after npm 11", [f"sha512-{b64(64)}"])
nm("tags", "tags", "tags-env-ref", "ci variable naming", ["${{ secrets.NPM_TOKEN }}", "ci"])
nm("tags", "tags", "tags-trace", "slow checkout trace", [f"trace:{hx(32)}", "perf"])
nm("git-sha", "git", "git-merge-line", f"Merge: {hx(7)} {hx(7)}\nMerge pull request #812 from acme/fix-token-expiry")
nm("git-sha", "git", "git-blame", f"{sha40()[:8]} (Dana 2026-11-30 10:12:01 +0100  42)     password = os.environ['DB_PASSWORD']")
nm("uuid", "env", "uuid-guid-csproj", f"<ProjectGuid>{{{uid().upper()}}}</ProjectGuid>")
nm("docker-digest", "k8s", "helm-values-digest", f"image:\n  repository: acme/secret-syncer\n  tag: 0.8.1\n  digest: sha256:{hx(64)}")
nm("ssh-fingerprint", "git", "gpg-signature-verify", f"gpg: Signature made Tue 01 Dec 2026 10:22:31 CET\ngpg:                using EDDSA key {hx(40).upper()}\ngpg: Good signature from \"Dana Ops <dana@acme.io>\"")
nm("password-code", "code-ts", "ts-interface", "interface Credentials {\n  username: string;\n  password: string;\n  apiToken?: string;\n}")
nm("password-code", "code-py", "py-getpass", 'password = getpass.getpass("Vault password: ")')
nm("password-code", "shell", "ssh-keygen-no-value", 'ssh-keygen -t ed25519 -C "ci@acme.io" -f ~/.ssh/deploy_key -N ""')
nm("keyword-prose", "chat", "hex-colour-prose", "Use #0f172a for the secret badge and #facc15 for the token warning banner.")
nm("keyword-prose", "log", "trace-span-ids", f"span_id={hx(16)} trace_id={hx(32)} name=auth.verify_token duration_ms=12")


# Trimmed to about 160 secrets: these entries repeat a kind and context already covered.
DROP = {
    "prose-it", "htpasswd-b", "rabbitmqctl", "wget-password", "redis-cli-a", "openssl-passout", "tfvars",
    "csharp-networkcredential", "js-nodemailer", "java-getconnection", "nuget-config-cleartext",
    "smtp-pass-env", "proxy-log-basic", "jasypt-password", "kubectl-docker-registry",
    "gitlab-azure-storage", "ibm-export", "npmrc-gh-packages", "ts-octokit", "csharp-twilio",
    "php-ini-style", "openai-client", "hf-gitlab-ci", "cohere-client", "replicate-client",
    "gha-npm-publish", "pypirc", "vault-token-env", "pulumi-login", "wrangler-gha", "heroku-prose",
    "datadog-k8s-secret-stringdata", "mailgun-requests", "postmark-toml", "stripe-web-config",
    "mongosh-password-flag", "swift-keychain-seed", "kotlin-hikari", "ruby-net-smtp",
    "azure-secret-prose", "doctl-config", "curl-bearer", "python-telegram-bot", "anthropic-ts",
    "openai-export", "vault-curl", "hf-git-remote", "square-atp-json", "gha-ssh-key-inline",
    "pg-env-prefix", "curl-webhook", "sshpass",
}
_ids = {e["id"].split("/", 1)[1] for e in ENTRIES if e["label"] == "secret"}
assert DROP <= _ids, DROP - _ids
ENTRIES[:] = [e for e in ENTRIES if not (e["label"] == "secret" and e["id"].split("/", 1)[1] in DROP)]

# =========================== VALIDATION ===========================
CRED = [re.compile(p) for p in [
    r"AKIA[A-Z2-7]{16}", r"ASIA[A-Z2-7]{16}", r"AIza[\w-]{35}", r"gh[pousr]_[A-Za-z0-9]{36}", r"github_pat_\w{82}",
    r"glpat-[\w-]{20}", r"xox[bpae]-\d", r"xapp-\d-", r"hooks\.slack\.com/services/T", r"[sr]k_(?:live|test)_[A-Za-z0-9]{10}",
    r"sk-(?:proj|ant)-[\w-]{20}", r"hf_[A-Za-z]{34}", r"npm_[A-Za-z0-9]{36}", r"SG\.[\w-]{22}\.[\w-]{43}", r"hvs\.[\w-]{20}",
    r"dop_v1_[a-f0-9]{64}", r"-----BEGIN[ A-Z]*PRIVATE KEY", r"ey[A-Za-z0-9]{17,}\.ey[A-Za-z0-9_-]{17,}\.",
    r"key-[0-9a-f]{32}", r"pypi-AgEIcHlwaS5vcmc", r"whsec_\w{20}", r"GOCSPX-", r"\d{8,10}:AA[\w-]{33}",
    r"://[^/\s:@<>$]+:(?![A-Z_]+@)[^@\s/<>$]{6,}@", r"dckr_pat_", r"pul-[a-f0-9]{40}", r"sntry[us]_", r"glsa_", r"NRAK-",
    r"AccountKey=", r"Pwd=[^;$]", r"SECRET_KEY_BASE=", r"APP_KEY=base64",
]]


def validate() -> None:
    fields = ["id", "label", "kind", "phrasing", "split", "text", "tags", "secrets"]
    ids = set()
    all_secrets = [x for e in ENTRIES if e["label"] == "secret" for x in e["secrets"]]
    for e in ENTRIES:
        assert list(e) == fields, e["id"]
        assert e["id"] not in ids, e["id"]
        ids.add(e["id"])
        assert isinstance(e["text"], str) and e["text"].strip() and isinstance(e["tags"], list)
        if e["label"] == "secret":
            assert e["id"].startswith(e["kind"] + "/"), e["id"]
            assert e["phrasing"] in {"env", "prose", "cli", "config", "url", "json", "code", "console", "tags"}, e["id"]
            assert e["secrets"], e["id"]
            for x in e["secrets"]:
                assert len(x) >= 8, (e["id"], x)
                assert any(x in t for t in (e["text"], *e["tags"])), (e["id"], x)
            if e["phrasing"] == "tags":
                assert not any(x in e["text"] for x in e["secrets"]), e["id"]
        else:
            assert e["id"].startswith("near-miss/") and e["phrasing"] is None and e["secrets"] == []
            for t in (e["text"], *e["tags"]):
                for rx in CRED:
                    assert not rx.search(t), (e["id"], rx.pattern)
                for x in all_secrets:
                    assert x not in t, (e["id"], x)
    # secret entries must not share values with each other
    assert len(all_secrets) == len(set(all_secrets)), Counter(all_secrets).most_common(3)


def main() -> None:
    validate()
    out = Path(__file__).resolve().parents[1] / "tests" / "data" / "redaction" / "unseen3.jsonl"
    data = "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in ENTRIES)
    out.write_text(data, encoding="utf-8")
    sec_e = [e for e in ENTRIES if e["label"] == "secret"]
    nm_e = [e for e in ENTRIES if e["label"] == "near-miss"]
    print(f"wrote {out}: {len(ENTRIES)} entries, {len(sec_e)} secrets over "
          f"{len({e['kind'] for e in sec_e})} kinds, {len(nm_e)} near-misses")
    print("sha256", hashlib.sha256(data.encode()).hexdigest())
    if "-v" in sys.argv:
        for title, group, key in [("secret kinds", sec_e, "kind"), ("secret phrasings", sec_e, "phrasing"),
                                  ("near-miss categories", nm_e, "kind")]:
            print(f"\n{title}:")
            for k, n in sorted(Counter(e[key] for e in group).items(), key=lambda kv: (-kv[1], kv[0])):
                print(f"  {n:3d} {k}")
        for title, group in [("secret contexts", sec_e), ("near-miss contexts", nm_e)]:
            print(f"\n{title}:")
            c = Counter(CONTEXT[e["id"]] for e in group)
            print("  " + ", ".join(f"{k} {n}" for k, n in sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))))


if __name__ == "__main__":
    main()
