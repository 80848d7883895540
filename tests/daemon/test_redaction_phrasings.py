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
    # a key name ending in _KEY with a random base64 value, however the key is called
    ("ARCHIVE_STORE_KEY={s}", "G5NhQyxLpPr9hnxfSxmhBRve+QZzeOaw1J5/+JOgOGAwCaGmrF0kaW4neY/uprSCz"
     "IarUfoXGKklmwHULrSazw=="),
    ("  signerKey: {s}", "lrctrOmiUznxmhhr3NeZ/pYQR3CesASKRxgcjdVJ9a8="),
    # URL userinfo: the password runs to the last '@' before the host, whatever it holds
    ("postgresql://reporter:{s}@reports-db.lan/metrics", "Kv8#q!Lz*2"),
    ("CACHE_URL=rediss://:{s}@queue.lan:6380/1", "t#7Hh?pW9x"),
    ("  dsn: mysql://etl:{s}@warehouse:3306/etl", "Zp!4#rr*Q1"),
    ("amqps://svc:{s}@mq.example.net/vhost", "Zr@m#9Kq!z"),
    # prose: several words between the secret word and the verb; quoted values
    ("the password for our shared staging db box is {s}", "Pelican.Ridge42"),
    ("the signing secret for the billing webhook is \"{s}\"", "Orca%Lantern88"),
    ("the shared key of the VPN tunnel is '{s}'", "Quartz&Heron519"),
    ("the vault passphrase we agreed on = {s}", "Ember-Kettle-907"),
    # password words in other languages
    ("Das WLAN-Passwort ist {s}", "Fjord7!Birke"),
    ("Le mot de passe du serveur est {s}", "Cerise#81vent"),
    ("La contraseña del portal es {s}", "Limon$73agua"),
    ("A senha do roteador é {s}", "Caju!58praia"),
    ("Het wachtwoord van de server is {s}", "Tulp#64gracht"),
    ("Das Kennwort lautet: {s}", "Birne#41Wald"),
    # user / password after a login or credentials word
    ("login for the jenkins box is deploy / {s} for now", "Q7v!rT2m#x"),
    ("credentials for the ftp mirror are mirror / {s}", "Ftp*Mirror93"),
    ("creds for prod db -> admin / {s}", "Xy!9pass"),
    # a secret word, a short clause, then a colon
    ("here is the bot token for the release job, it can push tags: {s}",
     "1026b36d9d2c42af132742fef32ad76d89c3e93a"),
    ("grab the API key from me, it expires Friday: {s}", "WogN3Nm6jXb8U7FKxZnVCe0169gBrPP9"),
    ("the shared token for the build agents: {s}", "ba5ae9dd843684422eb4ca24b627562a8105ca7d"),
    # key and secret labels in other languages
    ("Clé secrète du compte : {s}", "Hq3vN8tR/zW5pL2xK9mB7cY4dF6gJ1sA0eU8iO3r"),
    ("Geheimer Schlüssel = {s}", "Tk4Ld9Wq2Zx7Mn5Bv8Cp3Rf6Gh1Jy0Ks"),
    ("chave da API → {s}", "Pz2Wx8Rk5Lm3Nq7Vb4Ct9Yh6Jd1Fg0Ss"),
    # a webhook URL whose path holds its token
    ("https://discordapp.com/api/webhooks/112233445566778899/{s}",
     "Kq8Lz2Xm9Vr4Tn7Pw3Yc6Hb1Jd5Gf0Sa-Qe8Rt2Uy4Io6Pa_Ss8Dd0Ff2Gg4Hh6Jj8Kk0Ll2"),
    ("notify: https://chat.example.org/hooks/webhooks/{s}", "k8Qz2Lm9Xv4Rt7Np3Wc6Yb1Hd5Fj0Gs"),
    # crypt(3) password hashes (htpasswd, /etc/shadow, argon2)
    ("deploy:{s}", "$2b$12$" + "Qm7xR2pLk9Zt4Wv8Nc3Yb6Hd1Fj5Gs0KaE2rT7uI9oP3lM8nB4vC6x"),
    ("root:{s}:19000:0:99999:7:::", "$6$rounds=5000$Pq8sLt2W$" + "Zx7Lm2Qv9Rt4Np8Wc3Yb6Hd1Fj5" * 3),
    ("web:{s}", "$apr1$Xk3pQ9zL$Hn4Wq8Zr2Lm6Tv0Pb5Yc7J"),
    ("hash = {s}", "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$Rd3scUdvJCsgt3ub+b+dWRWJTmaaJObG"),
    ("htpasswd -nbB ops {s}", "Gr4nite!Fox"),
    # assignments aligned with many spaces (terraform fmt, gofmt, YAML)
    ('  client_secret            = "{s}"', "Wv7pQ2zL9xRk"),
    ("SMTP_PASSWORD:          {s}", "Mail!9Relay"),
    # prose: a longer clause, names in typographic quotes, '=' inside the value
    ("the password of the backup user on the nas box is {s}", "Heron%Slate61"),
    ("Le mot de passe de l'utilisateur « backup » sur le NAS est {s} ; merci", "Givre#42Pin"),
    ("the wifi password is {s}", "Rq7=mK!x2p"),
    # password words in Japanese, Chinese, Korean and Russian
    ("サーバーのパスワードは {s} です", "Tk8%mW2qLz"),
    ("数据库密码是 {s}", "Hz9#pL4vQx"),
    ("관리자 비밀번호는 {s} 입니다", "Bn6!rT3wKy"),
    ("пароль от сервера: {s}", "Vx5$kM8nPq"),
    # a user then a password, each after its label
    ("guest wifi: user `guest42`, pass `{s}`", "Lm4#Qz8!Rw2p"),
    # a markdown table whose column is headed by a secret word
    ("| env | user | password |\n|---|---|---|\n| prod | admin | {s} |", "Pr0d!Adm1n#9"),
    ("| name | api key |\n| --- | --- |\n| maps | {s} |\n| mail | none |",
     "Zq7Lm2Xv9Rt4Np8Wc3Yb6Hd1Fj5Gs0K"),
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
    # code expressions as values
    "const pwd = form.elements?.password?.value;",
    "auth_token = session?.user?.token",
    "let secret = ctx.request.headers['x-signature']?.trim();",
    # masks and placeholder segments
    "export NPM_TOKEN=npm_" + "x" * 36,
    "AWS_ACCESS_KEY_ID=AKIA" + "X" * 16,
    "OPENAI_API_KEY=sk-proj-" + "*" * 40,
    "webhook: https://hooks.slack.com/services/TXXXXXXXX/BXXXXXXXX/XXXXXXXXXXXXXXXXXXXXXXXX",
    "https://hooks.slack.com/services/AAA/BBB/CCC",
    # base64 under key names that index or are public
    "IDEMPOTENCY_KEY=lrctrOmiUznxmhhr3NeZ/pYQR3CesASKRxgcjdVJ9a8=",
    "RECAPTCHA_SITE_KEY=6LdQx2EqAAAAAK9vWm3Zt7Rb1Yc4Hn8Jp0Lx5Se2",
    "JWT_VERIFY_KEY=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAu1SU1LfVLPHCozMxH2Mo",
    # hex and slugs after cache key, checksum, digest and hash words
    "cache key: v7-py311-8a66a6e854aa5723333f5d77049b694fb1d07708c25806608469c9aa8dbe2062",
    "Checksum key: ba5ae9dd843684422eb4ca24b627562a8105ca7d597f9afacbfb156451407706",
    "the token fix landed, see commit: 1026b36d9d2c42af132742fef32ad76d89c3e93a",
    # prose around secret words that holds no secret
    "the secret for the cluster is named 'prod-db-creds'",
    "the key for this release is v2.0.1-RC3",
    "Das Passwort ist im Tresor gespeichert",
    "Le mot de passe est trop court",
    "login for the wiki is your email / password from the SSO page",
    "postgres://app@db.lan:5432/app?application_name=etl#notes",
    "https://example.com:8443/invite?email=ana@example.com",
    # a value on the line after a secret word, followed by more words (git log --oneline)
    "fix: rotate the api key\n9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c bump version",
    # dependencies named like secrets, valued with a version
    'implementation("io.github.webtoken:webtoken-core:3.1.4")',
    '"passport-secret": "^1.2.3"',
    '"jsonwebtoken": "9.0.2"',
    # names of secrets held elsewhere, and values that spell their own field name
    "existingSecret: grafana-admin",
    "existing_secret: minio-creds",
    'REFRESH_TOKEN = "refresh_token"',
    '"client_secret": "client_secret",',
    # placeholder words inside a vendor shape
    "SLACK_USER_TOKEN=xoxp-replace-with-your-token",
    "ANTHROPIC_API_KEY=sk-ant-your-anthropic-key-here",
    # a required-variable message in a parameter expansion
    "DB_PASSWORD: ${DB_PASSWORD:?DB_PASSWORD must be set}",
    # tables, webhook paths and users whose values are not secrets
    "| setting | value |\n|---|---|\n| token ttl | 3600 |",
    "| key | action |\n|---|---|\n| q | quit |",
    "POST https://example.com/api/webhooks/incoming-github-push",
    "user alice, pass the token to the CLI",
    "helm registry login registry.example.com --user username --password-stdin",
    "awk '{print $1$2$3}' file",
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
