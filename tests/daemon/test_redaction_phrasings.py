"""Secrets written the ways people write them, and look-alikes that must pass unchanged.

Written from the formats (CLI manuals, config file syntaxes, vendor docs), not from the corpus;
every value is a fake. ``{s}`` in a template is the secret that must be gone.
"""

from __future__ import annotations

import pytest

from memlane.daemon.domain.redaction import redact

SECRETS = [
    # prose and console wording
    ("my password is {s}", "hunter2"),
    ("The password for admin@example.com is {s}.", "Tr0ub4dor&3"),
    ("Your password has been reset to {s}", "Kq7!mZ2pLw"),
    ("temporary password: {s}", "Xy12!abcD"),
    ("login with password {s} then change it", "Qz8#vLm2"),
    ("creds for the staging box: admin / {s}", "Mango77!stack"),
    ("the db passphrase was {s} yesterday", "correct-horse-7"),
    ("the secret access key: {s}", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY1"),
    ("the api key is {s} for the staging env", "9f8e7d6c5b4a39281706f5e4d3c2b1a0"),
    ("Your new API key: {s} (shown once)", "k3j4h5g6f7d8s9a0q1w2e3r4t5y6u7i8"),
    ("client secret is {s}", "p9Xr2LmQ7vTz4KwB8nYc"),
    # CLI flags
    ("mysqldump --password {s} -u root shop", "Tr0ub4dor&3"),
    ("mysql -uroot -p'{s}' shop", "Basalt7#z"),
    ("psql --password={s}", "S3cr3t!x"),
    ("redis-cli -h cache -a {s} ping", "R3disPass!9"),
    ("mongosh mongodb://db --username admin --password {s}", "M0ngo!pass"),
    ("sshpass -p {s} scp x pi@host:", "Falcon55!"),
    ("docker login -u bot -p {s} registry.example.com", "D0cker!pw"),
    ("curl -u :{s} https://api.example.com", "tok3n-Zx9"),
    ("curl --user 'deploy:{s}' https://ci.example.com", "Dep10y!now"),
    ("htpasswd -b /etc/nginx/.htpasswd admin {s}", "Tr0ub4dor9"),
    ("smbclient //nas/share -U backup%{s}", "Nas!pass12"),
    # env and config files
    ("DB_PASS={s}", "Pa55word!x"),
    ("export MYSQL_PWD={s}", "My5ql!pw"),
    ("set -x OPENAI_TOKEN {s}", "t0k3nValue9x"),
    ("ENV API_KEY {s}", "Ak3y9Zx7Wq"),
    ("setenv DB_PASSWORD {s}", "Csh!pass9"),
    ("Server=db;Uid=sa;Pwd={{{s}}};", "Qx9#kk2!;x"),
    ("Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=root;SharedAccessKey={s}",
     "q8X3k2mJf9Lp0Qz7Rt5Vw1Ny4Bc6Dg8Hj2Kl0Mn3Pq5="),
    ("APP_KEY=base64:{s}", "q8X3k2mJf9Lp0Qz7Rt5Vw1Ny4Bc6Dg8Hj2Kl0Mn3Pq5="),
    ("secret_key_base: {s}", "620520319a957ca3b10cdf50f119fbce4d15d9c2314a494670af40"),
    ("JWT_SIGNING_KEY=\"{s}\"", "s3cr3t-signing-k3y-v4lue"),
    ("<password>{s}</password>", "Mvn!pass77"),
    ("<add key=\"ApiToken\" value=\"{s}\" />", "a8f7e6d5c4b3a2f1e0"),
    ("machine api.example.com login bot password {s}", "N3trc!pw"),
    ("//registry.example.com/:_auth={s}", "ZGVwbG95OlMzY3IzdCE="),
    ('{{"auths": {{"ghcr.io": {{"auth": "{s}"}}}}}}', "ZGVwbG95OlMzY3IzdCExMjM0NTY="),
    ("https://acct.blob.core.windows.net/c/f?sv=2022-11-02&sr=b&sig={s}",
     "Zx8%2Bq7LmP0w9N1c3V5b7Y9t1R3e5W7q9A1s3D5f7G9h%3D"),
    # code
    ('api_key: str = "{s}"', "Zx9LmQ7vTz4KwB8n"),
    ('os.environ["DB_PASSWORD"] = "{s}"', "Env!pass99"),
    ("config.set('password', '{s}')", "Cfg!pass77"),
    ('HTTPBasicAuth("admin", "{s}")', "Basic!pw88"),
    ('smtp.login("me@example.com", "{s}")', "Smtp!pw66"),
    ("HEROKU_API_KEY={s}", "01234567-89ab-cdef-0123-456789abcdef"),
    ("heroku api key {s}", "01234567-89ab-cdef-0123-456789abcdef"),
    # vendor shapes named in issue 14
    ("whsec_{s}", "6nfqQhNrkyNh0AT6Cu4QiYD1JXrOACX8"),
    ("GOCSPX-{s}", "AbCdEfGhIjKlMnOpQrStUvWxYz12"),
    ("SG.{s}", "abcdefghijklmnopqrstuv.ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopq"),
    ("vault login hvs.{s}", "CAESIJ2xV4aKKVN5qDs1c3WNpN5qSxv22Itqmt81dJgJlypH"),
    ("xapp-{s}", "1-A0123ABCD-1234567890123-abcdef0123456789abcdef0123456789"),
    ("PASSWORD=1234abcd", "1234abcd"),
    ("PuTTY-User-Key-File-3: ssh-ed25519\nPrivate-Lines: 1\n{s}\nPrivate-MAC: ab",
     "AAAAIBdWq2KQ0l1dX3cRj7N2V5t9p8o7i6u5y4t3r2e1w0q9"),
]

NEAR_MISSES = [
    "the password is stored in vault",
    "the password is at least 12 chars",
    "password hashing uses argon2id now",
    "docker build --secret id=npmrc,src=$HOME/.npmrc .",
    "mysql -p shop",
    "echo $PWD",
    "cd $PWD/build",
    "PWD=/home/dev/project",
    "the token refresh landed in commit 3f2a9c1e8b7d6a5f4e3d2c1b0a9f8e7d6c5b4a39",
    "session token 123e4567-e89b-12d3-a456-426614174000 expired",
    "the key fingerprint is SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8",
    "api key rotation is scheduled for 2024-06-01",
    "the secret is in 1password under Deploy",
    "--password-stdin reads it from the pipe",
    "token budget: 128000 tokens",
    "release token release-2024-05-01-hotfix shipped",
    "the key is sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    "signature verified: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGc8vXyQ2aRt key",
    '"auth": "required"',
    "<password></password>",
    "login with password authentication disabled",
    "set -x PATH $HOME/bin $PATH",
    "ENV NODE_ENV production",
    "cache key v2-npm-deps-Linux-9f8e7d6c5b4a3928",
    "restore-keys: Linux-node-modules-Release2024",
    "S3 object key: uploads/2024/05/a1b2c3d4e5f6g7h8i9j0.png",
    "token: 2024-05-01T12:00:00Z",
    "key: fe80::1ff:fe23:4567:890a",
    "gpg --recv-keys 4AEE18F83AFDEB23",
    "secretKeyRef:\n  name: db-creds\n  key: password",
    "password: ${{ secrets.DB_PASSWORD }}",
    "api_key = os.environ['API_KEY']",
    "integrity sha512-Q2hyb21lVmVyc2lvbjEyMy0xMjM0NTY3ODkwQUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo=",
    "pip install x --hash=sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    "nix: sha256-Zm9vYmFyYmF6cXV4cXV1eHF1dXhxdXV4cXV1eA6Hk2=",
    "ssh key MD5:16:27:ac:a5:76:28:2d:36:63:1b:56:4d:eb:df:a6:48",
    "Twilio account AC0123456789abcdef0123456789abcdef token lives in vault",
    "SENTRY_DSN=https://0123456789abcdef0123456789abcdef@o12345.ingest.sentry.io/678",
    "kubectl get secret db-creds -o jsonpath='{.data.password}' | base64 -d",
    "--password-file /run/secrets/db_password",
    "PASSWORD_MIN_LENGTH=12",
    "SESSION_TOKEN_TTL=3600s",
    "password_hash = bcrypt.hashpw(pw, salt)",
    "token = jwt.encode(payload, key, algorithm='HS256')",
    "image: ghcr.io/acme/api@sha256:0123456789abcdef0123456789abcdef0123456789abcdef01234567",
    "data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7",
    "uuid 550e8400-e29b-41d4-a716-446655440000 is the key for this row",
    "token usage: prompt_tokens=1523 completion_tokens=312",
    "public key: age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p",
    "auth header missing for request req_01HZX3K9Q2W8E5R7T6Y4U1I0OP",
]


@pytest.mark.parametrize(("template", "secret"), SECRETS, ids=[t for t, _ in SECRETS])
def test_the_secret_is_gone(template: str, secret: str) -> None:
    """Each phrasing loses its secret, and only that is replaced by a marker."""
    result = redact(template.format(s=secret))
    assert secret not in result.text
    assert result.count >= 1


@pytest.mark.parametrize("text", NEAR_MISSES)
def test_a_look_alike_passes_unchanged(text: str) -> None:
    """Prose about secrets, references, hashes and ids are not secrets."""
    assert redact(text).text == text
