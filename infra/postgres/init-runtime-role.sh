#!/usr/bin/env bash
# Run once by the postgres image on a new data directory (/docker-entrypoint-initdb.d): the role the
# MASH processes connect as. It owns nothing; `mash db upgrade` (the compose `migrate` service, as
# the schema owner) grants it rows in every table and only SELECT and INSERT on the audit trail.
set -euo pipefail
: "${MASH_RUNTIME_PASSWORD:?set MASH_RUNTIME_PASSWORD}"
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v password="$MASH_RUNTIME_PASSWORD" <<'SQL'
CREATE ROLE mash_runtime LOGIN PASSWORD :'password';
SQL
