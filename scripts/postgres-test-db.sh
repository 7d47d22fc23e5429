#!/usr/bin/env bash
# Starts the local PostgreSQL cluster (Debian's pg_ctlcluster) and makes sure the role and
# database of the signaling storage tests exist. Prints the URL to export as
# SUPERNODE_TEST_POSTGRES_URL. Needs root (or the postgres user) and the postgresql package.
set -euo pipefail
ver=$(pg_lsclusters --no-header | awk 'NR==1{print $1}')
name=$(pg_lsclusters --no-header | awk 'NR==1{print $2}')
port=$(pg_lsclusters --no-header | awk 'NR==1{print $3}')
if [ -z "$ver" ]; then
  echo "postgres-test-db: no PostgreSQL cluster found" >&2
  exit 1
fi
pg_lsclusters --no-header | awk 'NR==1{print $4}' | grep -q online || pg_ctlcluster "$ver" "$name" start
as_pg() { if [ "$(id -un)" = postgres ]; then "$@"; else su postgres -c "$(printf '%q ' "$@")"; fi; }
for _ in $(seq 1 30); do as_pg psql -p "$port" -qAtc 'SELECT 1' >/dev/null 2>&1 && break; sleep 0.5; done
as_pg psql -p "$port" -qAtc "SELECT 1 FROM pg_roles WHERE rolname='supernode'" | grep -q 1 \
  || as_pg psql -p "$port" -qc "CREATE ROLE supernode LOGIN PASSWORD 'supernode'"
as_pg psql -p "$port" -qAtc "SELECT 1 FROM pg_database WHERE datname='supernode_test'" | grep -q 1 \
  || as_pg psql -p "$port" -qc "CREATE DATABASE supernode_test OWNER supernode"
echo "postgres://supernode:supernode@127.0.0.1:${port}/supernode_test"
