#!/usr/bin/env bash
# Runs Schemathesis (from PyPI, installed into .tools/venv) against /v1/openapi.json of a real
# `supernode run` on a free loopback port, with a partner key made by `supernode admin
# partner create --relay` (a relay key may use the partner API and the relay REST API, so
# both are exercised; a plain key would only ever see `403` from /v1/relay/sessions).
# Fails on any server error or any response that breaks the schema (every check enabled).
#   scripts/schemathesis.sh            # defaults: 150 examples per operation
#   SCHEMATHESIS_MAX_EXAMPLES=500 scripts/schemathesis.sh
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="$PWD/.tools/venv"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
if ! "$VENV/bin/schemathesis" --version >/dev/null 2>&1; then
  echo "schemathesis.sh: installing schemathesis from PyPI into .tools/venv"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check 'schemathesis>=4,<5'
fi
cargo build --quiet -p supernode
BIN="$PWD/target/debug/supernode"
DATA=$(mktemp -d)
LOG="$DATA/server.log"
OUT="$DATA/stdout"
PID=""
cleanup() {
  if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
  rm -rf "$DATA"
}
trap cleanup EXIT

unset SUPERNODE_DATABASE_URL
KEY=$("$BIN" admin --data-dir "$DATA" partner create schemathesis --relay \
  | "$VENV/bin/python" -c 'import json,sys; print(json.load(sys.stdin)["api_key"])')
# A high rate limit: the run is about schema conformance, and 429 is documented anyway.
SUPERNODE_RATE_LIMIT_PER_SECOND=100000 SUPERNODE_RATE_LIMIT_BURST=100000 \
  "$BIN" run --listen 127.0.0.1:0 --data-dir "$DATA" >"$OUT" 2>"$LOG" &
PID=$!
for _ in $(seq 1 100); do grep -q 'listening on' "$OUT" 2>/dev/null && break; sleep 0.1; done
BASE=$(sed -n 's/^supernode: listening on //p' "$OUT" | head -1)
[ -n "$BASE" ] || { echo "schemathesis.sh: server did not start"; cat "$LOG"; exit 1; }
echo "schemathesis.sh: supernode at $BASE"

# scripts/schemathesis_hooks.py generates SDP offers for WHIP/WHEP (`application/sdp`).
PYTHONPATH="$PWD/scripts${PYTHONPATH:+:$PYTHONPATH}" SCHEMATHESIS_HOOKS=schemathesis_hooks \
"$VENV/bin/schemathesis" run "$BASE/v1/openapi.json" \
  --url "$BASE" \
  --checks all \
  -H "Authorization: Bearer $KEY" \
  --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-150}" \
  --seed "${SCHEMATHESIS_SEED:-1}" \
  --no-color
