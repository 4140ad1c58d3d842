#!/usr/bin/env bash
# Install and start PostgreSQL and Chromium for the tests that use them (idempotent).
set -uo pipefail
if [ "$(id -u)" != "0" ]; then echo "not root: skipping services"; exit 0; fi
# The postgres user cannot enter the checkout's folder; run its commands from /.
cd /
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || need+=(postgresql)
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
if [ -n "${PG_BIN}" ]; then
  PGDATA=/tmp/ensemble_hpo_pg
  # Leave a server that already answers alone (re-runs on the same machine).
  if ! "${PG_BIN}/pg_isready" -h 127.0.0.1 -p 54329 >/dev/null 2>&1; then
    rm -rf "$PGDATA"; mkdir -p "$PGDATA"; chown postgres:postgres "$PGDATA"
    su postgres -c "${PG_BIN}/initdb -D $PGDATA -A trust -U postgres" >/dev/null
    su postgres -c "${PG_BIN}/pg_ctl -D $PGDATA -o '-p 54329 -k /tmp' -l $PGDATA/log start -w" >/dev/null
  fi
  su postgres -c "psql -h 127.0.0.1 -p 54329 -U postgres -tc \"SELECT 1 FROM pg_database WHERE datname='ensemble_hpo_test'\"" | grep -q 1 \
    || su postgres -c "psql -h 127.0.0.1 -p 54329 -U postgres -c 'CREATE DATABASE ensemble_hpo_test'" >/dev/null
  echo "postgresql ready on 127.0.0.1:54329"
fi
