#!/usr/bin/env bash
# Sign-in timing benchmark: does a wrong password take longer for an existing account than
# for an unknown name? See bench/README.md ("Sign-in timing").
#
# Builds the server and examples/login_timing.rs, starts the server on 127.0.0.1 with its
# built-in database (a throwaway data folder under bench/out/, demo data loaded on first
# start) and the sign-in rate limit raised, sends LOGIN_BENCH_COUNT (default 2,000) wrong-
# password sign-ins alternating between LOGIN_BENCH_EXISTING (alice) and an unknown name,
# one at a time, and prints the median and p90 of each and their difference. The server
# (and with it its PostgreSQL) is stopped on exit.
#
# Settings (environment): LOGIN_BENCH_COUNT (2000, at most 20000), LOGIN_BENCH_PROFILE
# (release; "dev" uses target/debug), LOGIN_BENCH_SKIP_BUILD (0).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$ROOT/bench/out"
COUNT="${LOGIN_BENCH_COUNT:-2000}"
PROFILE="${LOGIN_BENCH_PROFILE:-release}"
EXISTING="${LOGIN_BENCH_EXISTING:-alice}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
if [ "$PROFILE" = dev ]; then DIR=debug; FLAG=(); else DIR=release; FLAG=(--release); fi
BIN="$TARGET_DIR/$DIR/portcullis"
DRIVER="$TARGET_DIR/$DIR/examples/login_timing"
DATA="$OUT/login-timing-data"
LOG="$OUT/login-timing-server.log"

say() { printf '[login-timing %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

SERVER_PID=""
cleanup() {
  local rc=$?
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID"
    for _ in $(seq 1 300); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ "${LOGIN_BENCH_SKIP_BUILD:-0}" != 1 ]; then
  say "building ($PROFILE): portcullis, login_timing"
  (cd "$ROOT" && cargo build "${FLAG[@]}" --bin portcullis --example login_timing)
fi

PORT=""
for p in $(shuf -i 20000-60999 -n 200); do
  if [ -z "$(ss -Htln "sport = :$p" 2>/dev/null)" ]; then PORT=$p; break; fi
done
[ -n "$PORT" ] || { say "no free port"; exit 1; }

mkdir -p "$OUT"
rm -rf "$DATA"
say "starting the server on 127.0.0.1:$PORT with its built-in database in $DATA"
env -u DATABASE_URL PORTCULLIS_DATA_DIR="$DATA" PORTCULLIS_SIGN_IN_LIMIT=1000000 \
  "$BIN" serve --bind "127.0.0.1:$PORT" >"$LOG" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 1200); do
  curl -fs -o /dev/null "http://127.0.0.1:$PORT/readyz" && break
  kill -0 "$SERVER_PID" 2>/dev/null || { say "the server stopped (see $LOG)"; exit 1; }
  sleep 0.1
done
say "$COUNT wrong-password sign-ins, alternating $EXISTING and an unknown name"
"$DRIVER" --base "http://127.0.0.1:$PORT" --existing "$EXISTING" --unknown "nobody-by-this-name" \
  --count "$COUNT"
