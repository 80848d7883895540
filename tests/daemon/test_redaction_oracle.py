"""detect-secrets, a well-kept scanner, as an oracle: whatever its regex plugins find, we redact.

Run over the tune split of the corpus and the phrasing probes (never the held-out split, which
only scores). detect-secrets is not used at run time: its 20 plugins cost about 6 ms per 2,000
characters called per line, its import 110 ms, and it imports ``os`` and ``requests``, which the
pure layer may not; here it checks that the hand-written shapes miss none of its kinds.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from detect_secrets.plugins import (
    artifactory,
    aws,
    azure_storage_key,
    basic_auth,
    discord,
    github_token,
    gitlab_token,
    jwt,
    mailchimp,
    npm,
    openai,
    private_key,
    pypi_token,
    sendgrid,
    slack,
    square_oauth,
    stripe,
    telegram_token,
    twilio,
)
from detect_secrets.plugins.base import BasePlugin

from memlane.daemon.domain.redaction import redact
from tests.daemon.test_redaction_phrasings import NEAR_MISSES, SECRETS

CORPUS = Path(__file__).resolve().parents[1] / "data" / "redaction" / "corpus.jsonl"
PLUGINS: list[BasePlugin] = [
    aws.AWSKeyDetector(), slack.SlackDetector(), stripe.StripeDetector(),
    github_token.GitHubTokenDetector(), jwt.JwtTokenDetector(), private_key.PrivateKeyDetector(),
    basic_auth.BasicAuthDetector(), azure_storage_key.AzureStorageKeyDetector(),
    sendgrid.SendGridDetector(), mailchimp.MailchimpDetector(),
    telegram_token.TelegramBotTokenDetector(), twilio.TwilioKeyDetector(), npm.NpmDetector(),
    pypi_token.PypiTokenDetector(), openai.OpenAIDetector(), discord.DiscordBotTokenDetector(),
    gitlab_token.GitLabTokenDetector(), square_oauth.SquareOAuthDetector(),
    artifactory.ArtifactoryDetector(),
]
# Public by design or a stand-in, as the corpus README defines them: a Twilio Account SID
# (AC + 32 hex; the API key is SK + 32 hex), the word "password" in a URL template, and masks
# (AKIAXXXXXXXXXXXXXXXX: detect-secrets matches the shape alone).
PUBLIC = ("AC", "password")
MASK = re.compile(r"([xX*])\1{3,}")


def tune_texts() -> list[str]:
    entries = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines()]
    return [text for e in entries if e["split"] == "tune" for text in (e["text"], *e["tags"])]


TEXTS = tune_texts() + [t.format(s=s) for t, s in SECRETS] + NEAR_MISSES


def found_by_detect_secrets(text: str) -> set[str]:
    return {secret.secret_value for line in text.splitlines() for plugin in PLUGINS
            for secret in plugin.analyze_line(filename="memory.txt", line=line, line_number=0)
            if secret.secret_value}


@pytest.mark.parametrize("text", TEXTS, ids=range(len(TEXTS)))
def test_what_detect_secrets_finds_is_redacted(text: str) -> None:
    """Every value a detect-secrets regex plugin reports is gone, unless public by design."""
    redacted = redact(text).text
    leaked = {value for value in found_by_detect_secrets(text)
              if value in redacted and not value.startswith(PUBLIC) and not MASK.search(value)}
    assert not leaked
