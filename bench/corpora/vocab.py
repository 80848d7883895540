"""Vocabulary of the benchmark corpora: five projects with memories and one new project.

Every list is in rank order: the generator draws from it with Zipf weights (1/rank), so the
first terms are frequent and the last are rare. A term written ``"canonical|alternative|..."``
appears in memories in its canonical form; queries may use an alternative (a paraphrase).
Changing anything here changes the corpora: regenerate MANIFEST.json in the same commit.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Project:
    """A project (its id is the git root path), its share of a corpus and its own terms."""

    path: str
    share: int  # percent of the corpus
    ticket: str  # ticket prefix, PAY-1234
    components: tuple[str, ...]
    tools: tuple[str, ...]
    purposes: tuple[str, ...]
    files: tuple[str, ...]
    commands: tuple[tuple[str, str], ...]  # (command, what it does)


def _split(text: str) -> tuple[str, ...]:
    return tuple(term.strip() for term in text.split(";") if term.strip())


PAYMENTS = Project(
    "/home/dev/src/payments-api", 40, "PAY",
    _split("webhook handler|stripe webhooks; refund worker; ledger service; invoice exporter; "
           "idempotency middleware; checkout endpoint; payout scheduler|payout cron; "
           "currency converter|fx conversion; dispute sync; settlement report; fraud scorer; "
           "card vault; subscription renewer; tax calculator; receipt mailer; "
           "audit trail|audit log; merchant onboarding; balance cache; retry queue; "
           "reconciliation job|recon job"),
    _split("postgres|the database; stripe sdk; alembic|migrations; celery; fastapi; pydantic; "
           "sqlalchemy|the orm; httpx; structlog; pgbouncer; sentry; hypothesis; testcontainers"),
    _split("the payout batch; idempotency keys; webhook retries; currency rounding; "
           "ledger snapshots; refund state; invoice numbering; settlement files; "
           "per-merchant rate limits; dispute evidence uploads; card tokenisation; "
           "the outbox table|transactional outbox; partial captures; tax rounding"),
    _split("app/webhooks/stripe.py; app/ledger/entries.py; app/refunds/worker.py; "
           "app/payouts/scheduler.py; app/api/checkout.py; app/fx/rates.py; app/db/session.py; "
           "app/disputes/sync.py; migrations/env.py; app/invoices/export.py; tests/conftest.py; "
           "app/middleware/idempotency.py; app/tax/rules.py; app/settings.py"),
    (("uv run pytest -x tests/{module}", "run the {module} tests"),
     ("uv run alembic upgrade head", "apply the migrations"),
     ("make db-reset", "recreate the local database"),
     ("stripe listen --forward-to localhost:8000/webhooks/stripe", "replay stripe webhooks"),
     ("uv run python -m app.tools.replay --since {date}", "replay failed events"),
     ("docker compose up -d postgres redis", "start the local services"),
     ("uv run alembic revision --autogenerate -m {slug}", "create a migration"),
     ("make lint", "run ruff and mypy")),
)

DASHBOARD = Project(
    "/home/dev/src/web-dashboard", 25, "WEB",
    _split("data table|grid; chart panel; date range picker; auth guard; settings page; "
           "sidebar nav|navigation; export button; filter bar; user menu; toast queue|toasts; "
           "onboarding wizard; permissions hook; search box; billing page; dark mode toggle; "
           "error boundary; api client; feature flag provider"),
    _split("react; vite; typescript|ts; tanstack query|react query; zustand; playwright; "
           "vitest; tailwind; storybook; msw; eslint; zod; pnpm"),
    _split("server state caching; form validation; route-level code splitting; optimistic updates; "
           "table virtualisation; chart rendering; auth token refresh; i18n strings; "
           "visual regression tests; api mocking; bundle size budgets; theme tokens"),
    _split("src/components/DataTable.tsx; src/api/client.ts; src/routes/settings.tsx; "
           "src/hooks/usePermissions.ts; src/charts/Panel.tsx; src/auth/guard.tsx; "
           "src/stores/filters.ts; vite.config.ts; playwright.config.ts; src/main.tsx"),
    (("pnpm test -- {module}", "run the {module} unit tests"),
     ("pnpm exec playwright test --project=chromium", "run the e2e suite"),
     ("pnpm build && pnpm preview", "check the production bundle"),
     ("pnpm storybook", "open the component catalogue"),
     ("pnpm exec tsc --noEmit", "type-check the app"),
     ("pnpm dlx vite-bundle-visualizer", "inspect the bundle size")),
)

INFRA = Project(
    "/home/dev/src/infra-live", 15, "OPS",
    _split("eks cluster|kubernetes cluster; vpc module; ingress controller; cert manager; "
           "rds instance; nat gateway; state bucket; argo cd|argocd; node group; "
           "external dns; iam roles; prometheus stack|monitoring stack; backup vault"),
    _split("terraform; helm; kubectl; aws cli; terragrunt; karpenter; argo rollouts; "
           "tflint; sops; cloudflare"),
    _split("remote state locking; node autoscaling; tls certificates; secrets rotation; "
           "blue green deploys; database backups; cost alerts; log retention; "
           "cross-account access; spot instances"),
    _split("modules/eks/main.tf; modules/vpc/outputs.tf; envs/prod/terragrunt.hcl; "
           "charts/ingress/values.yaml; envs/staging/rds.tf; policies/ci-deploy.json; "
           "argocd/apps/payments.yaml"),
    (("terragrunt run-all plan --terragrunt-working-dir envs/{module}", "plan {module}"),
     ("kubectl -n {module} rollout restart deploy", "restart the {module} workloads"),
     ("aws sso login --profile prod", "log in to prod"),
     ("helm diff upgrade ingress charts/ingress", "preview the ingress chart"),
     ("tflint --recursive", "lint the modules")),
)

MOBILE = Project(
    "/home/dev/src/mobile-app", 12, "MOB",
    _split("deep link router|deep links; push notifications|push; offline cache; "
           "login screen; image uploader; feed list; in-app purchases; crash reporter; "
           "settings screen; camera module; analytics queue"),
    _split("react native|rn; expo; hermes; fastlane; detox; reanimated; mmkv; "
           "gradle; cocoapods; firebase"),
    _split("over-the-air updates; background sync; image caching; app store builds; "
           "android release signing; end-to-end device tests; secure token storage; "
           "gesture handling"),
    _split("src/navigation/linking.ts; android/app/build.gradle; ios/Podfile; "
           "src/screens/Feed.tsx; src/storage/cache.ts; fastlane/Fastfile; app.config.ts"),
    (("npx expo run:android --variant release", "build a release apk"),
     ("bundle exec fastlane ios beta", "ship an ios beta"),
     ("npx detox test -c ios.sim.debug {module}", "run the {module} device tests"),
     ("cd ios && pod install", "refresh the pods")),
)

PIPELINE = Project(
    "/home/dev/src/ingest-pipeline", 8, "ING",
    _split("kafka consumer; parquet writer; schema registry client; dedup stage; "
           "backfill job; partition compactor; dead letter topic|dlq; metrics exporter; "
           "s3 sink"),
    _split("go; kafka; parquet; duckdb; s3; protobuf; golangci-lint; testify"),
    _split("exactly-once delivery; late events; schema evolution; partition pruning; "
           "small file compaction; consumer lag alerts"),
    _split("internal/consumer/loop.go; internal/sink/s3.go; internal/dedup/window.go; "
           "cmd/backfill/main.go; schemas/event.proto"),
    (("go test ./internal/{module}/...", "test the {module} package"),
     ("make proto", "regenerate the protobuf code"),
     ("go run ./cmd/backfill --from {date}", "backfill a day")),
)

NEW_PROJECT = Project(
    "/home/dev/src/search-gateway", 0, "SRCH",
    _split("query parser; ranking service; autocomplete endpoint; synonym loader; "
           "shard router; result cache; relevance dashboard"),
    _split("rust; axum; tantivy; tokio; opentelemetry; criterion"),
    _split("typo tolerance; query timeouts; index warmup; shard rebalancing"),
    _split("src/parser.rs; src/router.rs; src/cache.rs; benches/query.rs"),
    (("cargo test -p {module}", "test the {module} crate"),),
)

PROJECTS = (PAYMENTS, DASHBOARD, INFRA, MOBILE, PIPELINE)

REASONS = _split(
    "it keeps retries idempotent; the old client leaked connections; it was already in the stack; "
    "the team knows it well; it halves the test time|tests run twice as fast; "
    "the hosted option was too expensive; it supports async natively; "
    "the previous approach lost events on restart; it gives typed errors; "
    "it is the vendor's recommended path; the migration cost is low; it avoids a second deploy; "
    "it works offline; local runs match ci; it has first-class tracing")
SYMPTOMS = _split(
    "times out|hangs; returns 500|throws server errors; deadlocks; runs twice|fires twice; "
    "leaks memory|grows memory; drops events; logs duplicate rows; crashes on startup; "
    "returns stale data; fails only in ci|is flaky in ci; spikes cpu; ignores the config")
CONDITIONS = _split(
    "under load|with high traffic; after a deploy; when the cache is cold; on the first request; "
    "with concurrent writers; during the nightly batch; behind the proxy; on large payloads; "
    "after the dependency upgrade|after bumping dependencies; when the clock skews; "
    "in the staging environment; with an empty database")
FIXES = _split(
    "adding a unique index; pinning the client version; raising the pool size; "
    "moving the work to a background task; wrapping it in a transaction; "
    "retrying with exponential backoff|retries with backoff; "
    "invalidating the cache on write; setting an explicit timeout; batching the writes; "
    "reverting the upgrade; taking an advisory lock|taking a lock; streaming instead of buffering")
PRACTICES = _split(
    "run the migrations locally; rebase on main; check the feature flag; update the changelog; "
    "add a regression test; tag the release; ask for a second review; bump the lockfile")
ALT_WORDS = ("the old setup", "a hand-rolled version", "the managed service", "plain sql",
             "a cron script", "the previous library")
