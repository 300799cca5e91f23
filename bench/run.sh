#!/usr/bin/env bash
# Portcullis performance benchmark. See bench/README.md.
#
# Builds the release binary and the two bench examples, starts a PostgreSQL cluster of its
# own under bench/out/, seeds 10,000 users, 20,000 resources, 5,000 live and 1,000,000
# historical sessions (and a clone of that database without the history), then measures on
# loopback, 64 connections each, in this order:
#   reference_1   examples/bench_reference.rs: one query, 20 rows, no session        (wrk)
#   dashboard_1   GET /dashboard, 64 signed-in users in turn, with the history        (wrk)
#   dashboard_empty_history_1, _2   the same on the clone without history             (wrk)
#   dashboard_2   with the history again (A B B A evens out drift in background load)
#   resources     GET /wizard/resources?q=TERM, each user's draft at that step        (wrk)
#   wizard        the whole wizard, Create Session to Finish, 64 other users  (bench_wizard)
#   reference_2   the reference again
# and writes bench/out/results.md. Every process it starts is stopped on exit.
#
# Settings (environment): BENCH_DURATION (s, default 25), BENCH_WARMUP (s, 5),
# BENCH_CONNECTIONS (64), BENCH_THREADS (2), BENCH_SEARCH (fra-db), BENCH_NICE (-10: run
# everything benchmarked ahead of other work on the machine; 0 to disable),
# BENCH_PGSS (1: count statements with pg_stat_statements), BENCH_REUSE_DB (0; 1 keeps an
# already seeded cluster from a previous run), BENCH_HISTORY (1000000), BENCH_SKIP_BUILD (0),
# BENCH_DB_MAX_CONNECTIONS (unset: the application's default pool size),
# BENCH_SESSION_CACHE_SECONDS (unset: the application's default; 0 reads every session from
# the database, as before the session cache), BENCH_REVISION (the
# revision named in the results; default: git describe).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH="$ROOT/bench"
OUT="$BENCH/out"
DURATION="${BENCH_DURATION:-25}"
WARMUP="${BENCH_WARMUP:-5}"
CONNECTIONS="${BENCH_CONNECTIONS:-64}"
THREADS="${BENCH_THREADS:-2}"
SEARCH="${BENCH_SEARCH:-fra-db}"
NICE="${BENCH_NICE:--10}"
PGSS="${BENCH_PGSS:-1}"
REUSE_DB="${BENCH_REUSE_DB:-0}"
HISTORY="${BENCH_HISTORY:-1000000}"
SEED_USERS=9995        # + 5 demo users = 10,000
SEED_RESOURCES=19968   # + 32 demo resources = 20,000
SEED_LIVE=5000
PASSWORD="portcullis-demo"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="$TARGET_DIR/release/portcullis"
REF_BIN="$TARGET_DIR/release/examples/bench_reference"
DRIVER="$TARGET_DIR/release/examples/bench_wizard"

PGDATA="$OUT/pg"
PGSOCK="$OUT/run"
DB_FULL="portcullis"
DB_EMPTY="portcullis_empty"
RESULTS="$OUT/results.md"
PHASES="$OUT/phases.tsv"
LOG="$OUT/run.log"

say() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" | tee -a "$LOG" >&2; }
die() { say "FAILED: $*"; exit 1; }

# --- processes we start, stopped on exit ------------------------------------------------------
SERVER_PIDS=()
REF_PID=""
DRIVER_PID=""
PG_STARTED=0
cleanup() {
  local rc=$?
  set +e
  local pid
  for pid in "${SERVER_PIDS[@]}"; do stop_pid "$pid"; done
  [ -n "$REF_PID" ] && stop_pid "$REF_PID"
  [ -n "$DRIVER_PID" ] && stop_pid "$DRIVER_PID"
  if [ "$PG_STARTED" = 1 ]; then
    runuser -u postgres -- pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null 2>&1
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

stop_pid() {
  local pid=$1
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return 0; }
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null || true
}

free_port() {
  local p
  for p in $(shuf -i 20000-60999 -n 200); do
    if [ -z "$(ss -Htln "sport = :$p" 2>/dev/null)" ]; then echo "$p"; return 0; fi
  done
  die "no free port"
}

wait_http() { # URL PID
  for _ in $(seq 1 600); do
    curl -fs -o /dev/null "$1" && return 0
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

psql_db() { # DB, then psql arguments
  local db=$1; shift
  psql -X -q -v ON_ERROR_STOP=1 -h "$PGSOCK" -U portcullis -d "$db" "$@"
}

mkdir -p "$OUT"
: > "$LOG"
say "output in $OUT"
# With the kernel's autogroup scheduling (the default), nice only ranks processes of one
# session against each other; the session's autogroup gets the priority here, so that the
# server, PostgreSQL and the load generator are measured rather than whatever else runs.
if [ "$NICE" != 0 ]; then echo "$NICE" > /proc/$$/autogroup 2>/dev/null || true; fi

# --- machine ----------------------------------------------------------------------------------
NPROC=$(nproc)
CPU_MODEL=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
CPU_FAMILY=$(grep -m1 '^cpu family' /proc/cpuinfo | cut -d: -f2 | tr -d ' ')
CPU_MODEL_NO=$(grep -m1 '^model[[:space:]]*:' /proc/cpuinfo | cut -d: -f2 | tr -d ' ')
MEM_GIB=$(awk '/MemTotal/ {printf "%.0f", $2/1048576}' /proc/meminfo)
HYPERVISOR=$(lscpu 2>/dev/null | awk -F: '/Hypervisor vendor/ {gsub(/ /,"",$2); print $2}')
say "machine: $NPROC cpus, $CPU_MODEL (family $CPU_FAMILY model $CPU_MODEL_NO), ${MEM_GIB} GiB, hypervisor ${HYPERVISOR:-none}, load $(cut -d' ' -f1-3 /proc/loadavg)"

# --- build and tools --------------------------------------------------------------------------
if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
  say "building (release): portcullis, bench_reference, bench_wizard"
  (cd "$ROOT" && cargo build --release --bin portcullis --examples) >>"$LOG" 2>&1 \
    || die "cargo build failed (see $LOG)"
fi
for f in "$BIN" "$REF_BIN" "$DRIVER"; do [ -x "$f" ] || die "missing $f"; done

if ! command -v wrk >/dev/null; then
  say "installing wrk"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -q >>"$LOG" 2>&1
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q wrk >>"$LOG" 2>&1 || die "cannot install wrk"
fi
WRK_VERSION=$( (wrk -v 2>&1 || true) | head -1 | awk '{print $2}')
PG_BIN=$(dirname "$(command -v postgres 2>/dev/null || ls /usr/lib/postgresql/*/bin/postgres | sort -V | tail -1)")
export PATH="$PG_BIN:$PATH"
PG_VERSION=$(postgres --version | awk '{print $3}')
[ "$(id -u)" = 0 ] || die "run as root (PostgreSQL runs as the postgres user, RSS peaks are reset through /proc)"
id postgres >/dev/null 2>&1 || die "a 'postgres' user is needed to run the cluster"

# --- PostgreSQL cluster of our own (Unix socket only, like Portcullis' built-in one) -----------
start_cluster() {
  local preload=""
  [ "$PGSS" = 1 ] && preload="-c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=top"
  runuser -u postgres -- pg_ctl -D "$PGDATA" -l "$OUT/postgres.log" -w -t 120 \
    -o "-c listen_addresses= -c unix_socket_directories=$PGSOCK -c unix_socket_permissions=0700 $preload" \
    start >>"$LOG" 2>&1 || die "PostgreSQL did not start (see $OUT/postgres.log)"
  PG_STARTED=1
  PG_PID=$(head -1 "$PGDATA/postmaster.pid")
  if [ "$NICE" != 0 ]; then
    renice -n "$NICE" -p "$PG_PID" >/dev/null
    # The postmaster runs in a session (so an autogroup) of its own: give that one priority too.
    echo "$NICE" > "/proc/$PG_PID/autogroup" 2>/dev/null || true
  fi
}

chmod 711 "$OUT"
# A cluster left running by an interrupted run is stopped first.
if [ -f "$PGDATA/postmaster.pid" ]; then
  runuser -u postgres -- pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null 2>&1 || true
fi
if [ "$REUSE_DB" = 1 ] && [ -f "$PGDATA/bench_seeded" ]; then
  say "reusing the seeded cluster in $PGDATA"
  start_cluster
else
  rm -rf "$PGDATA" "$PGSOCK" "$OUT/data"
  install -d -o postgres -g postgres -m 700 "$PGDATA" "$PGSOCK"
  install -o postgres -g postgres -m 600 /dev/null "$OUT/postgres.log"
  say "initdb $PGDATA (PostgreSQL $PG_VERSION)"
  runuser -u postgres -- initdb -D "$PGDATA" --username portcullis --auth=trust \
    --encoding=UTF8 --locale=C >>"$LOG" 2>&1 || die "initdb failed"
  start_cluster
  psql_db postgres -c "CREATE DATABASE $DB_FULL"
fi
[ "$PGSS" = 1 ] && psql_db postgres -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements"

url_of() { echo "postgres://portcullis@localhost/$1?host=$PGSOCK"; }
export PORTCULLIS_DATA_DIR="$OUT/data"
mkdir -p "$PORTCULLIS_DATA_DIR"

if [ ! -f "$PGDATA/bench_seeded" ]; then
  say "schema and demo data (portcullis migrate, seed apply seed/demo.toml)"
  DATABASE_URL=$(url_of $DB_FULL) "$BIN" migrate >>"$LOG" 2>&1 || die "migrate failed"
  DATABASE_URL=$(url_of $DB_FULL) "$BIN" seed apply "$ROOT/seed/demo.toml" >>"$LOG" 2>&1 || die "seed apply failed"
  say "seeding users, catalogue, policies, $SEED_LIVE live sessions (bench/seed.sql)"
  t0=$SECONDS
  psql_db $DB_FULL -v users=$SEED_USERS -v resources=$SEED_RESOURCES -v live=$SEED_LIVE \
    -f "$BENCH/seed.sql" >>"$LOG" 2>&1 || die "bench/seed.sql failed (see $LOG)"
  say "  done in $((SECONDS - t0)) s; cloning it as $DB_EMPTY (the same data without history)"
  psql_db postgres -c "CREATE DATABASE $DB_EMPTY TEMPLATE $DB_FULL"
  say "seeding $HISTORY historical sessions (bench/seed_history.sql)"
  t0=$SECONDS
  psql_db $DB_FULL -v history="$HISTORY" -f "$BENCH/seed_history.sql" >>"$LOG" 2>&1 \
    || die "bench/seed_history.sql failed (see $LOG)"
  say "  done in $((SECONDS - t0)) s; VACUUM ANALYZE and CHECKPOINT"
  psql_db $DB_FULL -c "VACUUM (ANALYZE)"
  psql_db $DB_EMPTY -c "VACUUM (ANALYZE)"
  psql_db postgres -c "CHECKPOINT"
  touch "$PGDATA/bench_seeded"
fi
if [ "$PGSS" = 1 ]; then
  psql_db $DB_FULL -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements"
  psql_db $DB_EMPTY -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements"
fi
VOLUME=$(psql_db $DB_FULL -At -F' ' -c "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM resources),
  (SELECT count(*) FROM activity_sessions WHERE status IN ('waiting_for_approval','pending','provisioning','available','logged_in','locked')),
  (SELECT count(*) FROM activity_sessions WHERE status IN ('completed','canceled','approval_denied','expired','failed')),
  (SELECT count(*) FROM session_events), (SELECT count(*) FROM policy_resources),
  pg_size_pretty(pg_database_size(current_database()))")
VOLUME_EMPTY=$(psql_db $DB_EMPTY -At -F' ' -c "SELECT (SELECT count(*) FROM activity_sessions WHERE status IN ('completed','canceled','approval_denied','expired','failed')), pg_size_pretty(pg_database_size(current_database()))")
read -r V_USERS V_RESOURCES V_LIVE V_HIST V_EVENTS V_GRANTS V_SIZE <<<"$VOLUME"
read -r V_EMPTY_HIST V_EMPTY_SIZE <<<"$VOLUME_EMPTY"
say "volume: $V_USERS users, $V_RESOURCES resources, $V_LIVE live and $V_HIST historical sessions, $V_EVENTS events, $V_GRANTS policy grants of resources, $V_SIZE; empty-history clone: $V_EMPTY_HIST historical, $V_EMPTY_SIZE"

# --- measurement helpers ----------------------------------------------------------------------
# CPU ticks of every process, "pid ppid ticks comm".
proc_ticks() {
  local d s rest pid comm
  for d in /proc/[0-9]*; do
    s=$(cat "$d/stat" 2>/dev/null) || continue
    pid=${d#/proc/}
    comm=${s#*(}; comm=${comm%%)*}; comm=${comm// /_}
    rest=${s##*) }
    # shellcheck disable=SC2086
    set -- $rest
    if [ "$pid" = "${PG_PID:-}" ]; then
      # The postmaster also counts the CPU of its children that exited (cutime, cstime),
      # so backends and autovacuum workers that end inside a window are not lost.
      echo "$pid $2 $(( ${12} + ${13} + ${14} + ${15} )) $comm"
    else
      echo "$pid $2 $(( ${12} + ${13} )) $comm"
    fi
  done
}
# Busy and steal ticks of the whole machine.
sys_ticks() { awk '/^cpu / {print $2+$3+$4+$7+$8, $9}' /proc/stat; }

# Share (percent of the machine) of: the server process, our PostgreSQL (postmaster and its
# children), the load generator (ticks from `time`), everything else, idle; then steal, and
# the three busiest other commands.
cpu_split() { # BEFORE_FILE AFTER_FILE SYS_BEFORE SYS_AFTER SERVER_PID GEN_TICKS SECONDS
  awk -v sb="$3" -v sa="$4" -v server="$5" -v pg="$PG_PID" -v gen="$6" -v secs="$7" -v ncpu="$NPROC" '
    FNR == NR { before[$1] = $3; next }
    { d = $3 - ($1 in before ? before[$1] : 0); if (d < 0) d = 0
      if ($1 == server) s += d
      else if ($1 == pg || $2 == pg) p += d
      else if (d > 0 && $4 != "bench_wizard" && $4 != "wrk") { o[$4] += d } }
    END {
      split(sb, b, " "); split(sa, a, " ")
      busy = a[1] - b[1]; steal = a[2] - b[2]; total = secs * 100 * ncpu
      if (busy > total) total = busy
      other = busy - s - p - gen; if (other < 0) other = 0
      top = ""
      for (k = 0; k < 3; k++) {
        best = ""; bv = 0
        for (c in o) if (o[c] > bv) { bv = o[c]; best = c }
        if (best == "" || 100 * bv / total < 1) break
        top = top (top == "" ? "" : ",") best "=" sprintf("%.0f", 100 * bv / total) "%"
        delete o[best]
      }
      printf "%.0f %.0f %.0f %.0f %.0f %.0f %s", 100*s/total, 100*p/total, 100*gen/total, 100*other/total, 100*(total-busy)/total, 100*steal/total, (top == "" ? "-" : top)
    }' "$1" "$2"
}

pgss_reset() { [ "$PGSS" = 1 ] && psql_db "$1" -c "SELECT pg_stat_statements_reset()" >/dev/null; return 0; }
# Statements per request and the busiest statements of a phase.
pgss_report() { # DB REQUESTS NAME
  [ "$PGSS" = 1 ] || { echo "-"; return 0; }
  local filter="query NOT ILIKE '%pg_stat_statements%' AND dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
  psql_db "$1" -At -F $'\t' -c "
    SELECT round(sum(calls)::numeric / greatest($2, 1), 2) FROM pg_stat_statements WHERE $filter" 2>/dev/null
  psql_db "$1" -P pager=off -c "
    SELECT round(calls::numeric / greatest($2, 1), 3) AS per_request, calls,
           round(mean_exec_time::numeric, 3) AS mean_ms,
           round((100 * total_exec_time / sum(total_exec_time) OVER ())::numeric, 1) AS pct_time,
           regexp_replace(left(query, 160), '\s+', ' ', 'g') AS query
    FROM pg_stat_statements WHERE $filter ORDER BY total_exec_time DESC LIMIT 12" \
    > "$OUT/statements-$3.txt" 2>&1
}

# Start and end of a measured window: peak RSS reset, statement counters reset, CPU ticks.
begin_window() { # DB SERVER_PID
  echo 5 > "/proc/$2/clear_refs"
  pgss_reset "$1"
  W_XACT0=$(psql_db "$1" -At -c "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()")
  W_LOAD=$(cut -d' ' -f1 /proc/loadavg)
  proc_ticks > "$OUT/.ticks0"; W_SYS0=$(sys_ticks)
  W_T0=$(date +%s.%N)
}
end_window() { # DB
  W_T1=$(date +%s.%N)
  proc_ticks > "$OUT/.ticks1"; W_SYS1=$(sys_ticks)
  W_XACT1=$(psql_db "$1" -At -c "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()")
}
wait_file() { # FILE PID
  while [ ! -e "$1" ]; do
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.05
  done
}

# Runs one measured phase: warm-up, the load, accounting.
#   phase NAME DB SERVER_PID wrk COOKIES_FILE URL
#   phase NAME DB SERVER_PID wizard BASE_URL FIRST_USER COOKIES_FILE
phase() {
  local name=$1 db=$2 spid=$3 kind=$4; shift 4
  local json="$OUT/$name.json" timef="$OUT/.time-$name" gen_ticks
  rm -f "$json"
  if [ "$kind" = wrk ]; then
    say "phase $name: warm-up ${WARMUP}s"
    BENCH_COOKIES="$1" nice -n "$NICE" wrk -c "$CONNECTIONS" -t "$THREADS" -d "${WARMUP}s" \
      -s "$BENCH/rotate_cookies.lua" "$2" >>"$LOG" 2>&1
    begin_window "$db" "$spid"
    say "phase $name: measuring ${DURATION}s"
    local TIMEFORMAT='%U %S'
    { time BENCH_COOKIES="$1" nice -n "$NICE" wrk -c "$CONNECTIONS" -t "$THREADS" -d "${DURATION}s" \
        -s "$BENCH/rotate_cookies.lua" "$2" > "$OUT/$name.wrk.txt" 2>&1 ; } 2> "$timef"
    end_window "$db"
    grep '^{' "$OUT/$name.wrk.txt" | tail -1 > "$json"
    gen_ticks=$(tail -1 "$timef" | awk '{printf "%.0f", ($1 + $2) * 100}')
    # A lost sign-in would answer with a small redirect to /login, fast and "successful".
    if [ -n "${EXPECT_BYTES:-}" ] && ! jq -e --argjson min "$EXPECT_BYTES" \
        '.requests > 0 and (.bytes / .requests) >= $min * 0.9' "$json" >/dev/null; then
      die "phase $name: responses average $(jq '.bytes / .requests | floor' "$json") bytes, expected a page of $EXPECT_BYTES"
    fi
  else
    # One driver run: warm-up, then the measured window, which it marks with two files.
    say "phase $name: warm-up ${WARMUP}s, then measuring ${DURATION}s"
    rm -f "$OUT/.mark-start" "$OUT/.mark-end"
    nice -n "$NICE" "$DRIVER" run --base "$1" --first "$2" --count "$CONNECTIONS" --cookies "$3" \
      --warmup "$WARMUP" --duration "$DURATION" --json "$json" \
      --mark-start "$OUT/.mark-start" --mark-end "$OUT/.mark-end" \
      >> "$LOG" 2> "$OUT/$name.driver.txt" &
    local dpid=$!
    DRIVER_PID=$dpid
    wait_file "$OUT/.mark-start" "$dpid" || { cat "$OUT/$name.driver.txt" >&2; die "wizard driver failed"; }
    begin_window "$db" "$spid"
    wait_file "$OUT/.mark-end" "$dpid" || { cat "$OUT/$name.driver.txt" >&2; die "wizard driver failed"; }
    end_window "$db"
    wait "$dpid" || { cat "$OUT/$name.driver.txt" >&2; die "wizard driver failed"; }
    DRIVER_PID=""
    gen_ticks=$(jq -r .cpu_ticks "$json")
  fi
  [ -s "$json" ] || die "phase $name produced no result"
  local hwm rss secs split reqs stmts xacts
  hwm=$(awk '/VmHWM/ {print $2}' "/proc/$spid/status")
  rss=$(awk '/VmRSS/ {print $2}' "/proc/$spid/status")
  secs=$(awk -v a="$W_T0" -v b="$W_T1" 'BEGIN {printf "%.2f", b - a}')
  split=$(cpu_split "$OUT/.ticks0" "$OUT/.ticks1" "$W_SYS0" "$W_SYS1" "$spid" "$gen_ticks" "$secs")
  # HTTP requests measured, for statements per request.
  if [ "$kind" = wrk ]; then reqs=$(jq -r .requests "$json"); else reqs=$(jq -r .http_requests "$json"); fi
  stmts=$(pgss_report "$db" "$reqs" "$name" | head -1)
  xacts=$(( W_XACT1 - W_XACT0 - 2 ))
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$(cat "$json")" "$hwm" "$rss" "$split" \
    "$stmts" "$(awk -v x="$xacts" -v r="$reqs" 'BEGIN {printf "%.2f", x / (r > 0 ? r : 1)}')" "$W_LOAD" "$db" >> "$PHASES"
  say "phase $name: $(cat "$json")"
  say "phase $name: server peak RSS ${hwm} kB; CPU % server/postgres/generator/other/idle/steal, busiest others: $split; statements/request $stmts"
}

# Starts a Portcullis server on DB; sets SERVER_PID and SERVER_URL.
declare -A RSS_START RSS_SIGNED_IN
start_server() {
  local db=$1 port
  port=$(free_port)
  SERVER_URL="http://127.0.0.1:$port"
  say "starting portcullis on $SERVER_URL (database $db${BENCH_DB_MAX_CONNECTIONS:+, pool $BENCH_DB_MAX_CONNECTIONS}${BENCH_SESSION_CACHE_SECONDS:+, session cache $BENCH_SESSION_CACHE_SECONDS s})"
  # Password-only sign-in (the bench's users have no second factor) and no per-address limit
  # (every simulated user signs in from 127.0.0.1).
  # env, not bare assignments: an assignment that comes from an expansion (the optional
  # settings) would be taken for the command.
  env DATABASE_URL="$(url_of "$db")" PORTCULLIS_BIND="127.0.0.1:$port" \
    PORTCULLIS_SECOND_FACTOR=optional PORTCULLIS_SIGN_IN_LIMIT=1000000 \
    ${BENCH_DB_MAX_CONNECTIONS:+PORTCULLIS_DB_MAX_CONNECTIONS=$BENCH_DB_MAX_CONNECTIONS} \
    ${BENCH_SESSION_CACHE_SECONDS:+PORTCULLIS_SESSION_CACHE_SECONDS=$BENCH_SESSION_CACHE_SECONDS} \
    nice -n "$NICE" "$BIN" serve >>"$OUT/server-$db.log" 2>&1 &
  SERVER_PID=$!
  SERVER_PIDS+=("$SERVER_PID")
  wait_http "$SERVER_URL/healthz" "$SERVER_PID" || die "portcullis did not start (see $OUT/server-$db.log)"
  RSS_START[$db]=$(awk '/VmRSS/ {print $2}' "/proc/$SERVER_PID/status")
}

# Signs users in on SERVER_URL and writes their cookies to bench/out/cookies-NAME.txt.
prepare_users() { # NAME FIRST [--draft --search TERM]
  local name=$1 first=$2; shift 2
  say "signing in u$(printf %05d "$first")..u$(printf %05d $((first + CONNECTIONS - 1))) $*"
  "$DRIVER" prepare --base "$SERVER_URL" --first "$first" --count "$CONNECTIONS" --password "$PASSWORD" \
    "$@" --out "$OUT/cookies-$name.txt" > "$OUT/prepare-$name.json" 2>>"$LOG" \
    || die "signing users in failed (see $LOG)"
  say "  $(cat "$OUT/prepare-$name.json")"
  RSS_SIGNED_IN[$name]=$(awk '/VmRSS/ {print $2}' "/proc/$SERVER_PID/status")
  say "  server RSS now $((RSS_SIGNED_IN[$name] / 1024)) MiB"
}

run_reference() { # NAME
  REF_PORT=$(free_port)
  say "starting bench_reference on 127.0.0.1:$REF_PORT"
  DATABASE_URL=$(url_of $DB_FULL) BENCH_REF_BIND="127.0.0.1:$REF_PORT" nice -n "$NICE" "$REF_BIN" >>"$OUT/reference.log" 2>&1 &
  REF_PID=$!
  wait_http "http://127.0.0.1:$REF_PORT/" "$REF_PID" || die "bench_reference did not start"
  curl -fs "http://127.0.0.1:$REF_PORT/" | grep -q '<tbody>' || die "reference page has no table"
  REF_BYTES=$(curl -fs "http://127.0.0.1:$REF_PORT/" | wc -c)
  EXPECT_BYTES=$REF_BYTES phase "$1" $DB_FULL "$REF_PID" wrk "" "http://127.0.0.1:$REF_PORT/"
  stop_pid "$REF_PID"; REF_PID=""
}

: > "$PHASES"
RUN_STARTED=$(date -u +%Y-%m-%dT%H:%M:%SZ)
REVISION="${BENCH_REVISION:-$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)}"
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

# 1. The reference: same machine, same database, the simplest page (again at the end).
run_reference reference_1

# 2. Two Portcullis servers, one on the database with the million historical sessions and one
# on its clone without them; the same 64 users signed in on each, each with a wizard draft at
# Resource Selection. Only one is under load at a time.
start_server $DB_FULL
FULL_PID=$SERVER_PID; FULL_URL=$SERVER_URL
prepare_users full 1 --draft --search "$SEARCH"
start_server $DB_EMPTY
EMPTY_PID=$SERVER_PID; EMPTY_URL=$SERVER_URL
prepare_users empty 1 --draft --search "$SEARCH"

# 3. The dashboard, alternating A B B A so that drift in what else runs on the machine
# weighs on both equally.
dash_full() { EXPECT_BYTES=$(jq .dashboard_bytes "$OUT/prepare-full.json") \
  phase "$1" $DB_FULL "$FULL_PID" wrk "$OUT/cookies-full.txt" "$FULL_URL/dashboard"; }
dash_empty() { EXPECT_BYTES=$(jq .dashboard_bytes "$OUT/prepare-empty.json") \
  phase "$1" $DB_EMPTY "$EMPTY_PID" wrk "$OUT/cookies-empty.txt" "$EMPTY_URL/dashboard"; }
dash_full dashboard_1
dash_empty dashboard_empty_history_1
dash_empty dashboard_empty_history_2
dash_full dashboard_2
stop_pid "$EMPTY_PID"

# 4. Resource Selection with a search, then the whole wizard (other users), with the history.
EXPECT_BYTES=$(jq .resources_bytes "$OUT/prepare-full.json") \
  phase resources $DB_FULL "$FULL_PID" wrk "$OUT/cookies-full.txt" "$FULL_URL/wizard/resources?q=$SEARCH"
SERVER_PID=$FULL_PID; SERVER_URL=$FULL_URL
prepare_users wizard $((CONNECTIONS + 1))
phase wizard $DB_FULL "$FULL_PID" wizard "$FULL_URL" $((CONNECTIONS + 1)) "$OUT/cookies-wizard.txt"
stop_pid "$FULL_PID"

# 5. The reference again.
run_reference reference_2

# Rounds of the same scenario become one row: mean throughput and percentiles, highest RSS,
# mean CPU shares and statements per request.
combine() { # NAME ROUND_NAMES...
  local name=$1; shift
  awk -F'\t' -v want="$(printf '%s ' "$@")" 'BEGIN { n = split(want, w, " "); for (i = 1; i <= n; i++) ok[w[i]] = 1 } ok[$1]' "$PHASES" > "$OUT/.rounds"
  local json hwm rss split stmts xacts load db
  json=$(cut -f2 "$OUT/.rounds" | jq -sc '{requests: (map(.requests) | add), duration_us: (map(.duration_us) | add),
      bytes: (map(.bytes) | add), rps: (map(.rps) | add / length * 10 | round / 10),
      p50_ms: (map(.p50_ms) | add / length * 100 | round / 100), p90_ms: (map(.p90_ms) | add / length * 100 | round / 100),
      p99_ms: (map(.p99_ms) | add / length * 100 | round / 100), max_ms: (map(.max_ms) | max),
      errors_connect: (map(.errors_connect) | add), errors_read: (map(.errors_read) | add),
      errors_write: (map(.errors_write) | add), errors_status: (map(.errors_status) | add),
      errors_timeout: (map(.errors_timeout) | add), rounds_rps: map(.rps), rounds_p99_ms: map(.p99_ms * 100 | round / 100)}')
  hwm=$(cut -f3 "$OUT/.rounds" | sort -n | tail -1)
  rss=$(cut -f4 "$OUT/.rounds" | tail -1)
  split=$(cut -f5 "$OUT/.rounds" | awk '{for (i = 1; i <= 6; i++) t[i] += $i; top = (NR == 1 ? $7 : top)} END {for (i = 1; i <= 6; i++) printf "%.0f ", t[i] / NR; printf "%s", top}')
  stmts=$(cut -f6 "$OUT/.rounds" | awk '$1 != "-" {t += $1; n++} END {if (n) printf "%.2f", t / n; else print "-"}')
  xacts=$(cut -f7 "$OUT/.rounds" | awk '{t += $1} END {printf "%.2f", t / NR}')
  load=$(cut -f8 "$OUT/.rounds" | head -1); db=$(cut -f9 "$OUT/.rounds" | head -1)
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$json" "$hwm" "$rss" "$split" "$stmts" "$xacts" "$load" "$db" >> "$PHASES"
}
combine reference reference_1 reference_2
combine dashboard dashboard_1 dashboard_2
combine dashboard_empty_history dashboard_empty_history_1 dashboard_empty_history_2

# --- results ------------------------------------------------------------------------------------
field() { awk -F'\t' -v n="$1" -v c="$2" '$1 == n {print $c}' "$PHASES"; }
j() { field "$1" 2 | jq -r "$2"; }
REF_RPS=$(j reference .rps)
# Requests per second per CPU core that the server, PostgreSQL and the load generator used:
# what the machine would do for this page if nothing else ran on it.
per_core() { # NAME RATE
  field "$1" 5 | awk -v r="$2" '{used = ($1 + $2 + $3) / 100 * '"$NPROC"'; printf "%.0f", (used > 0 ? r / used : 0)}'
}
REF_PER_CORE=$(per_core reference "$REF_RPS")
row() { # NAME LABEL
  local n=$1 label=$2 rate shown p50 p99 errors vs="-" vs_core="-"
  if [ "$n" = wizard ]; then
    rate=$(j wizard .wizards_per_s); p50=$(j wizard .p50_ms); p99=$(j wizard .p99_ms)
    errors=$(j wizard .errors)
    shown="$rate requests created/s ($(j wizard .http_per_s) HTTP req/s)"
  else
    rate=$(j "$n" .rps); p50=$(j "$n" .p50_ms); p99=$(j "$n" .p99_ms)
    errors=$(j "$n" '.errors_status + .errors_connect + .errors_read + .errors_write + .errors_timeout')
    shown="$rate req/s"
    vs=$(awk -v a="$rate" -v b="$REF_RPS" 'BEGIN {printf "%.0f%%", 100*a/b}')
  fi
  local core; core=$(per_core "$n" "$rate")
  [ "$n" != wizard ] && vs_core=$(awk -v a="$core" -v b="$REF_PER_CORE" 'BEGIN {printf "%.0f%%", (b > 0 ? 100*a/b : 0)}')
  local hwm; hwm=$(awk -v k="$(field "$n" 3)" 'BEGIN {printf "%.0f", k/1024}')
  local split; split=$(field "$n" 5 | awk '{printf "%s / %s / %s / %s (%s)", $1, $2, $3, $4, $7}')
  printf '| %s | %s | %.2f | %.2f | %s | %s / core (%s) | %s | %s | %s | %s |\n' "$label" "$shown" "$p50" "$p99" \
    "$vs" "$core" "$vs_core" "$hwm" "$(field "$n" 6)" "$split" "$errors"
}
DASH_RPS=$(j dashboard .rps); DASH_P99=$(j dashboard .p99_ms); EMPTY_RPS=$(j dashboard_empty_history .rps)
verdict() { if awk "BEGIN {exit !($1)}"; then echo "PASS"; else echo "FAIL"; fi; }
RATIO=$(awk -v a="$DASH_RPS" -v b="$REF_RPS" 'BEGIN {printf "%.0f", 100*a/b}')
RATIO_CORE=$(awk -v a="$(per_core dashboard "$DASH_RPS")" -v b="$REF_PER_CORE" 'BEGIN {printf "%.0f", 100*a/b}')
HIST=$(awk -v a="$DASH_RPS" -v b="$EMPTY_RPS" 'BEGIN {printf "%+.1f", 100*(a-b)/b}')
DASH_CORE=$(per_core dashboard "$DASH_RPS"); EMPTY_CORE=$(per_core dashboard_empty_history "$EMPTY_RPS")
HIST_CORE=$(awk -v a="$DASH_CORE" -v b="$EMPTY_CORE" 'BEGIN {printf "%+.1f", (b > 0 ? 100*(a-b)/b : 0)}')
mib() { echo $(( ${1:-0} / 1024 )); }
{
  echo "# Portcullis benchmark results"
  echo
  echo "Run $RUN_STARTED of revision $REVISION${BENCH_SESSION_CACHE_SECONDS:+ with PORTCULLIS_SESSION_CACHE_SECONDS=$BENCH_SESSION_CACHE_SECONDS}: $CONNECTIONS connections, $THREADS wrk threads, ${WARMUP} s warm-up + ${DURATION} s measured per phase, loopback only."
  echo
  echo "- Machine: $NPROC CPUs, $CPU_MODEL (family $CPU_FAMILY, model $CPU_MODEL_NO), ${MEM_GIB} GiB RAM, hypervisor ${HYPERVISOR:-none}. Server, PostgreSQL $PG_VERSION and the load generator (wrk $WRK_VERSION, bench_wizard) share those CPUs."
  echo "- Load average at start: $LOAD_START. The benchmarked processes ran at nice $NICE; the CPU column shows what else ran."
  echo "- Volume: $V_USERS users, $V_RESOURCES resources, $V_LIVE live and $V_HIST historical sessions, $V_EVENTS session events, $V_GRANTS policy-resource grants ($V_SIZE). Empty-history clone: $V_EMPTY_HIST historical sessions ($V_EMPTY_SIZE)."
  echo "- Pages: reference $REF_BYTES bytes (20 rows); dashboard $(jq -r '"\(.dashboard_bytes) bytes (\(.dashboard_rows) rows)"' "$OUT/prepare-full.json"); Resource Selection q=$SEARCH $(jq -r '"\(.resources_bytes) bytes (\(.resources_rows) rows)"' "$OUT/prepare-full.json")."
  echo "- Server RSS: $(mib "${RSS_START[$DB_FULL]:-}") MiB after start, $(mib "${RSS_SIGNED_IN[full]:-}") MiB after $CONNECTIONS sign-ins, $(mib "${RSS_SIGNED_IN[wizard]:-}") MiB after $CONNECTIONS more (same process); empty-history server: $(mib "${RSS_START[$DB_EMPTY]:-}") MiB after start, $(mib "${RSS_SIGNED_IN[empty]:-}") MiB after $CONNECTIONS sign-ins."
  echo
  echo "| scenario | throughput | p50 ms | p99 ms | vs reference | req/s per CPU core used (vs reference) | server peak RSS MiB | SQL statements / HTTP request | CPU % server / postgres / load gen / other (busiest other) | errors |"
  echo "|---|---|---|---|---|---|---|---|---|---|"
  row reference "reference: axum + sqlx + askama, 1 query, 20 rows, no session"
  row dashboard "signed-in Active dashboard, 1M historical sessions"
  row dashboard_empty_history "signed-in Active dashboard, empty history"
  row resources "Resource Selection, search q=$SEARCH"
  row wizard "whole wizard, Create Session to Finish (12 HTTP requests each)"
  echo
  echo "Targets (dashboard with the history):"
  echo
  echo "- half or more of the reference's requests per second: $RATIO% ($DASH_RPS vs $REF_RPS req/s): **$(verdict "$RATIO >= 50")**; per CPU core used: $RATIO_CORE%: **$(verdict "$RATIO_CORE >= 50")**"
  echo "- p99 under 25 ms: $DASH_P99 ms: **$(verdict "$DASH_P99 < 25")**"
  echo "- within 10% of its speed on an empty history: $HIST% ($DASH_RPS vs $EMPTY_RPS req/s): **$(verdict "${HIST#+} >= -10")**; per CPU core used: $HIST_CORE% ($DASH_CORE vs $EMPTY_CORE): **$(verdict "${HIST_CORE#+} >= -10")**"
  echo
  echo "Rounds (req/s, then p99 ms): reference $(j reference '"\(.rounds_rps | join(", ")); \(.rounds_p99_ms | join(", "))"') (first and last phase of the run);"
  echo "dashboard $(j dashboard '"\(.rounds_rps | join(", ")); \(.rounds_p99_ms | join(", "))"'); empty history $(j dashboard_empty_history '"\(.rounds_rps | join(", ")); \(.rounds_p99_ms | join(", "))"') (run in the order dashboard, empty, empty, dashboard)."
  echo
  echo "Wizard mean time per step (ms, each a POST and the GET it redirects to): $(j wizard '.step_mean_ms | to_entries | map("\(.key) \(.value)") | join(", ")')."
  echo
  echo "How to read: throughput counts responses completed in the measured window (wizard: Finish"
  echo "responses, i.e. activity requests created). p50/p99 are per HTTP request (wrk) or per whole"
  echo "wizard. 'req/s per CPU core used' divides throughput by the CPU that the server, PostgreSQL"
  echo "and the load generator consumed, so it does not depend on what else ran. Peak RSS is VmHWM"
  echo "of the server process, reset after the warm-up. CPU shares are of all $NPROC CPUs during the"
  echo "measured window. Statements per request come from pg_stat_statements (background work of"
  echo "the server included); each phase's busiest statements are in bench/out/statements-*.txt."
} > "$RESULTS"
cat "$RESULTS"
say "results written to $RESULTS"
