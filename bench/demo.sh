#!/usr/bin/env bash
# The main job on the offline model: start the daemon, store memories, search them, let
# related ones connect and consolidate into proven knowledge, brief a session, show status,
# stop. Usage: bench/demo.sh path/to/memlane (MEMLANE_HOME chooses the state).
set -euo pipefail
memlane=${1:-memlane}
trap '"$memlane" down >/dev/null 2>&1 || true' EXIT
"$memlane" up
"$memlane" store --project demo --kind decision "We use SQLite in WAL mode for the projections; never put the database on NFS."
"$memlane" store --project demo "The integration tests need Redis on port 6380, started by make services."
"$memlane" store --project demo "Run ruff format before committing; CI rejects unformatted code."
"$memlane" store --project demo "Run ruff format before committing;  CI rejects unformatted code."
"$memlane" store --project demo "The pg pool runs out under load; set pool_size=20 in db.py"
"$memlane" store --project demo "Postgres connection pool exhausted under load, raise pool_size to 20"
"$memlane" store --project demo "Under heavy load the database pool is exhausted: pool_size=20 fixes it"
echo "--- search: how do I start the test services?"
"$memlane" search --project demo -k 2 "how do I start the services the tests need"
echo "--- search: database settings"
"$memlane" search --project demo -k 1 "which journal mode does the database use"
echo "--- related memories cluster and merge into proven knowledge (offline: no LLM key)"
"$memlane" cluster
"$memlane" consolidate --offline
echo "--- what a new session in this project is told"
"$memlane" briefing --project demo --json
echo "--- status"
"$memlane" status
