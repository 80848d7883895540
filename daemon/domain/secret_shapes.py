"""Secrets known by their shape: a vendor prefix and an alphabet (gitleaks' rule table).

Each entry is (kind, regex) from the public formats of the issuers, as gitleaks' default rules
(``config/gitleaks.toml``, v8.30) write them; the kinds keep this project's older names where it
had them (``github-token``, ``openai-key``). ``SHAPES`` joins them into one alternation whose
group name gives the kind, so the text is scanned once. A shape never starts inside a longer
word (``hf_hub_download``, base64 text) nor right after a marker.
"""

from __future__ import annotations

import re

_HEX = "[a-f0-9]"
_TABLE: tuple[tuple[str, str], ...] = (
    ("aws-access-key", r"(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}(?![A-Za-z0-9])"),
    ("github-token", r"gh[pousr]_[A-Za-z0-9]{36,251}|github_pat_\w{22,244}"),
    ("gitlab-token", (r"gl(?:pat|dt|ft|rt|soat|cbt|imt|agent|oas|ffct)-[\w-]{20,249}"
                     r"|glptt-[a-f0-9]{40}|GR1348941[\w-]{20}")),
    ("slack-token", (r"xox[abposre]-[A-Za-z0-9-]{10,250}|xoxe\.xox[bp]-\d-[A-Za-z0-9]{20,250}"
                    r"|xapp-\d-[A-Za-z0-9]{4,}-\d{4,}-[A-Za-z0-9]{8,}")),
    ("stripe-key", r"(?:sk|rk)_(?:live|test|prod)_[A-Za-z0-9]{10,247}|whsec_[A-Za-z0-9]{24,}"),
    ("anthropic-key", r"sk-ant-[A-Za-z0-9_-]{20,249}"),
    ("openai-key", r"sk-(?:(?:proj|svcacct|admin)-[A-Za-z0-9_-]{20,245}|[A-Za-z0-9]{32,252})"),
    ("google-api-key", r"AIza[\w-]{35}"),
    ("google-oauth-secret", r"GOCSPX-[\w-]{24,40}"),
    ("huggingface-token", r"hf_[A-Za-z0-9]{30,253}|api_org_[A-Za-z]{34}"),
    ("npm-token", r"npm_[A-Za-z0-9]{36,252}"),
    ("pypi-token", r"pypi-AgEIcHlwaS5vcmc[\w-]{50,1000}"),
    ("rubygems-token", rf"rubygems_{_HEX}{{48}}"),
    ("clojars-token", r"CLOJARS_[A-Za-z0-9]{60}"),
    ("sendgrid-key", r"SG\.[\w-]{16,32}\.[\w-]{30,50}"),
    ("mailchimp-key", rf"{_HEX}{{32}}-us\d{{1,2}}(?![\w-])"),
    ("mailgun-key", rf"key-{_HEX}{{32}}(?![\w-])"),
    ("twilio-key", r"SK[0-9a-fA-F]{32}(?![\w-])"),
    ("square-token", r"(?:EAAA|sq0atp-|sq0csp-)[\w-]{22,60}"),
    ("shopify-token", r"shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}"),
    ("vault-token", r"hv[sbr]\.[\w-]{24,300}|s\.[A-Za-z0-9]{24}(?![\w.-])"),
    ("terraform-token", r"[A-Za-z0-9]{14}\.atlasv1\.[\w=-]{60,70}"),
    ("doppler-token", r"dp\.(?:pt|st|sa|ct|scim|audit)\.[A-Za-z0-9]{40,44}"),
    ("postman-key", r"PMAK-[a-fA-F0-9]{24}-[a-fA-F0-9]{34}"),
    ("linear-key", r"lin_(?:api|oauth)_[A-Za-z0-9]{40}"),
    ("notion-token", r"ntn_\d{11}[A-Za-z0-9]{35}|secret_[A-Za-z0-9]{43}(?![\w-])"),
    ("easypost-key", r"EZ[AT]K[A-Za-z0-9]{54}"),
    ("octopus-key", r"API-[A-Z0-9]{26}(?![\w-])"),
    ("frameio-token", r"fio-u-[\w=-]{64}"),
    ("cloudflare-origin-key", rf"v1\.0-{_HEX}{{24}}-{_HEX}{{146}}"),
    ("settlemint-token", r"sm_(?:pat|aat|sat)_[A-Za-z0-9]{16}"),
    ("telegram-token", r"(?<![\d\]])\d{5,16}:A[\w-]{34}(?![\w-])"),  # also after /bot
    ("age-secret-key", r"AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}"),
    ("azure-client-secret", r"[\w~.]{3}\dQ~[\w~.-]{31,34}"),
    ("digitalocean-token", rf"do[opr]_v1_{_HEX}{{64}}"),
    ("databricks-token", rf"dapi{_HEX}{{32}}(?:-\d)?"),
    ("dynatrace-token", r"dt0c01\.[A-Za-z0-9]{24}\.[A-Za-z0-9]{64}"),
    ("duffel-token", r"duffel_(?:test|live)_[\w=-]{43}"),
    ("flyio-token", r"fo1_[\w-]{43}|fm[12][ar]?_[A-Za-z0-9+/]{100,}={0,3}"),
    ("grafana-token", r"glc_[A-Za-z0-9+/]{32,400}={0,3}|glsa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8}"),
    ("heroku-key", r"HRKU-AA[\w-]{58}"),
    ("infracost-token", r"ico-[A-Za-z0-9]{32}"),
    ("new-relic-key", r"NR(?:AK|II|JS|RA)-[A-Za-z0-9]{27}"),
    ("onepassword-token", r"ops_eyJ[A-Za-z0-9+/]{250,}={0,3}"),
    ("openshift-token", r"sha256~[\w-]{43}"),
    ("perplexity-key", r"pplx-[A-Za-z0-9]{48}"),
    ("planetscale-token", r"pscale_(?:tkn|pw|oauth)_[\w=.-]{32,64}"),
    ("prefect-token", r"pnu_[A-Za-z0-9]{36}"),
    ("pulumi-token", rf"pul-{_HEX}{{40}}"),
    ("readme-token", r"rdme_[a-z0-9]{70}"),
    ("scalingo-token", r"tk-us-[\w-]{48}"),
    ("sentry-token", r"sntry[us]_[A-Za-z0-9_=+/.-]{40,}"),
    ("shippo-token", r"shippo_(?:live|test)_[a-fA-F0-9]{40}"),
    ("sourcegraph-token", r"sgp_(?:[a-fA-F0-9]{16}_|local_)?[a-fA-F0-9]{40}"),
    ("artifactory-key", r"AKCp[A-Za-z0-9]{69}|cmVmdGtu[A-Za-z0-9]{56}"),
    ("typeform-token", r"tfp_[\w.=-]{59}"),
    ("discord-token", r"[MNO][A-Za-z\d_-]{23,25}\.[\w-]{6}\.[\w-]{27,38}"),
    # A PEM private key, base64-encoded again (Kubernetes Secret data, CI variables).
    ("private-key", (r"LS0tLS1CRUdJTi(?:BSU0EgUFJJVkFURSBL|BQUklWQVRFIEtF"
                     r"|BPUEVOU1NIIFBSSVZBVEUgS0VZ|BFQyBQUklWQVRFIEtF|BEU0EgUFJJVkFURSBL"
                     r"|BFTkNSWVBURUQgUFJJVkFURSBL|BQR1AgUFJJVkFURSBL)[A-Za-z0-9+/=]{0,65536}")),
    ("jwt", (r"eyJ[A-Za-z0-9_-]{4,4096}\.eyJ[A-Za-z0-9_-]{4,8192}\.[A-Za-z0-9_-]{0,4096}"
            r"|ZXlK[A-Za-z0-9+/]{40,8192}={0,2}")),
)

# Not inside a longer word, nor right after a marker (``]``), so passes stay few; a shape with
# a lookbehind of its own (a Telegram token follows ``/bot``) sets its own start.
_WORD_START = r"(?<![A-Za-z0-9_\]-])"
_KIND_OF = {f"k{index}": kind for index, (kind, _) in enumerate(_TABLE)}
_BRANCHES = [(f"(?P<k{index}>{body})", body.startswith("(?<"))
             for index, (_, body) in enumerate(_TABLE)]
SHAPES = re.compile(  # one shared lookbehind: per branch, it would cost a check per position
    _WORD_START + "(?:" + "|".join(branch for branch, own in _BRANCHES if not own) + ")|"
    + "|".join(branch for branch, own in _BRANCHES if own))
"""Every shape in one pattern; ``kind_of(match)`` names the one that matched."""

SHAPE_KINDS: tuple[str, ...] = tuple(dict.fromkeys(kind for kind, _ in _TABLE))


def kind_of(match: re.Match[str]) -> str:
    """The kind of the shape a ``SHAPES`` match came from."""
    return _KIND_OF[match.lastgroup or ""]
