#!/usr/bin/env bash
# SSH gateway benchmark: bulk throughput and connection latency through the gateway against a
# direct ssh to the same target in the same run, and the server's memory with many idle
# gateway connections. See bench/README.md ("SSH gateway"). Needs root (the session's account
# is made on this machine, named BENCH_PREFIX-...), openssh-server and the OpenSSH client;
# everything it starts is stopped on exit.
#
# Settings (environment): BENCH_BYTES (200000000), BENCH_ROUNDS (3, bulk transfers each way
# and kind of data), BENCH_DATA ("zero text random": what the bulk transfers send),
# BENCH_RUNS (40, `ssh ... true` each way), BENCH_IDLE (200), BENCH_PREFIX (pcgwbench),
# BENCH_SKIP_BUILD (0), BENCH_PROFILE (bench-gw, optimised; dev measures target/debug).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$ROOT/bench/out/gateway"
PREFIX="${BENCH_PREFIX:-pcgwbench}"
BYTES="${BENCH_BYTES:-200000000}"
ROUNDS="${BENCH_ROUNDS:-3}"
RUNS="${BENCH_RUNS:-40}"
IDLE="${BENCH_IDLE:-200}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
DATA_KINDS="${BENCH_DATA:-zero text random}"
PROFILE="${BENCH_PROFILE:-bench-gw}"
PROFILE_DIR=$([ "$PROFILE" = dev ] && echo debug || echo "$PROFILE")
BIN="$TARGET_DIR/$PROFILE_DIR/portcullis"
HELPER="$TARGET_DIR/$PROFILE_DIR/examples/bench_gateway"

say() { printf '[gateway-bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { say "$*"; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root: the benchmark makes an account on this machine"
command -v /usr/sbin/sshd >/dev/null || die "install openssh-server"
command -v ssh >/dev/null || die "install openssh-client"

if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
  say "building ($PROFILE): portcullis, bench_gateway"
  cargo build --profile "$PROFILE" --bin portcullis --example bench_gateway --manifest-path "$ROOT/Cargo.toml"
fi

SSHD_PID=""
SERVER_PID=""
CLIENT_PIDS=()
cleanup() {
  local rc=$?
  for pid in "${CLIENT_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID"
    for _ in $(seq 1 300); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
  fi
  [ -n "$SSHD_PID" ] && kill "$SSHD_PID" 2>/dev/null || true
  for u in $(cut -d: -f1 /etc/passwd | grep "^$PREFIX-" || true); do
    pkill -KILL -u "$u" 2>/dev/null || true
    userdel -r "$u" 2>/dev/null || true
  done
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
  local p
  for p in $(shuf -i 20000-60999 -n 200); do
    if [ -z "$(ss -Htln "sport = :$p" 2>/dev/null)" ]; then echo "$p"; return; fi
  done
  die "no free port"
}
now() { date +%s.%N; }
# CPU ticks used so far by the server, and by its PostgreSQL (postmaster and its children).
server_ticks() { awk '{print $14 + $15}' "/proc/$SERVER_PID/stat"; }
pg_ticks() {
  local pm; pm=$(head -1 "$DATA/pg/postmaster.pid")
  for p in "$pm" $(pgrep -P "$pm"); do awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null; done | awk '{s += $1} END {print s + 0}'
}
# CPU ticks used so far by every process on the machine (/proc/stat: user, nice, system, irq,
# softirq, steal): the client, the target's sshd, the gateway and PostgreSQL share the CPUs.
machine_ticks() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat; }
rss_kib() { awk "/^$1:/ {print \$2}" "/proc/$SERVER_PID/status"; }
mib() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }
# p-th percentile (nearest rank) of the numbers in a file, one per line.
pct() { sort -g "$1" | awk -v p="$2" '{v[NR] = $1} END {r = int(p / 100 * NR + 0.999999); if (r < 1) r = 1; print v[r]}'; }
median() { pct "$1" 50; }
verdict() { if awk "BEGIN {exit !($1)}"; then echo "PASS"; else echo "FAIL"; fi; }
# psql on the built-in cluster's socket, as the server's database owner.
psql_data() { psql -h "$DATA/run" -U portcullis -d portcullis "$@"; }

rm -rf "$OUT"
mkdir -p "$OUT/authorized" /run/sshd
chmod 711 "$OUT"

# --- the target: an sshd of its own on a loopback port ----------------------------------------
ssh-keygen -q -t ed25519 -N '' -f "$OUT/host_key"
ssh-keygen -q -t ed25519 -N '' -f "$OUT/service_key"
ssh-keygen -q -t ed25519 -N '' -f "$OUT/user_key"
cp "$OUT/service_key.pub" "$OUT/authorized/root"
SSHD_PORT=$(free_port)
cat > "$OUT/sshd_config" <<CONF
ListenAddress 127.0.0.1
Port $SSHD_PORT
HostKey $OUT/host_key
PidFile $OUT/sshd.pid
AuthorizedKeysFile $OUT/authorized/%u
StrictModes no
PermitRootLogin prohibit-password
# The gateway logs in with the session's password; the direct runs with the user's key.
PasswordAuthentication yes
KbdInteractiveAuthentication no
UsePAM no
UseDNS no
# Room for the idle connections opened in batches.
MaxStartups 100:30:300
LogLevel ERROR
CONF
/usr/sbin/sshd -D -e -f "$OUT/sshd_config" 2>"$OUT/sshd.log" &
SSHD_PID=$!
for _ in $(seq 50); do
  (exec 3<>"/dev/tcp/127.0.0.1/$SSHD_PORT") 2>/dev/null && break
  sleep 0.1
done

# --- Portcullis, with its built-in database and the gateway -----------------------------------
HTTP_PORT=$(free_port)
GW_PORT=$(free_port)
DATA="$OUT/data"
say "starting portcullis ($PROFILE) on 127.0.0.1:$HTTP_PORT, gateway on 127.0.0.1:$GW_PORT, data in $DATA"
env -u DATABASE_URL PORTCULLIS_DATA_DIR="$DATA" PORTCULLIS_SSH_GATEWAY_BIND="127.0.0.1:$GW_PORT" \
  "$BIN" serve --bind "127.0.0.1:$HTTP_PORT" >"$OUT/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 1200); do
  curl -fs -o /dev/null "http://127.0.0.1:$HTTP_PORT/readyz" && break
  kill -0 "$SERVER_PID" 2>/dev/null || die "the server stopped (see $OUT/server.log)"
  sleep 0.1
done
sleep 2
RSS_START=$(rss_kib VmRSS)

say "preparing a session on the target (provisioning through the worker)"
"$HELPER" --data-dir "$DATA" --key-file "$DATA/secret.key" --port "$SSHD_PORT" \
  --host-key "$OUT/host_key.pub" --service-key "$OUT/service_key" --user-key "$OUT/user_key.pub" \
  --prefix "$PREFIX" > "$OUT/session.txt"
STRING=$(sed -n 1p "$OUT/session.txt")
ACCOUNT=$(sed -n 2p "$OUT/session.txt")
[ -n "$STRING" ] && [ -n "$ACCOUNT" ] || die "no session (see $OUT/session.txt)"
# The direct runs log in as the same account with the user's key.
cp "$OUT/user_key.pub" "$OUT/authorized/$ACCOUNT"

# The same key exchange on both paths: OpenSSH alone would pick sntrup761x25519 (post-quantum,
# several times the CPU), which russh does not offer, so the direct runs would pay for more.
SSH_OPTS=(-F /dev/null -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes
  -o IdentitiesOnly=yes -o LogLevel=ERROR -o KexAlgorithms=curve25519-sha256 -i "$OUT/user_key")
via_gateway() { ssh "${SSH_OPTS[@]}" -p "$GW_PORT" "$STRING@127.0.0.1" "$@"; }
direct() { ssh "${SSH_OPTS[@]}" -p "$SSHD_PORT" "$ACCOUNT@127.0.0.1" "$@"; }

[ "$(via_gateway whoami </dev/null)" = "$ACCOUNT" ] || die "whoami through the gateway is not $ACCOUNT"
[ "$(direct whoami </dev/null)" = "$ACCOUNT" ] || die "direct whoami is not $ACCOUNT"
say "session ready: login account $ACCOUNT"
# The cipher each path negotiates with the user's client (OpenSSH's defaults on both).
cipher_of() {
  ssh "${SSH_OPTS[@]}" -v -p "$1" "$2@127.0.0.1" true </dev/null 2>&1 \
    | sed -n 's/.*kex: server->client cipher: \([^ ]*\).*/\1/p' | head -1
}
CIPHER_GW=$(cipher_of "$GW_PORT" "$STRING")
CIPHER_DIRECT=$(cipher_of "$SSHD_PORT" "$ACCOUNT")
say "ciphers: gateway $CIPHER_GW, direct $CIPHER_DIRECT"

# --- memory with IDLE idle interactive connections ------------------------------------------------
# First, on the fresh server: the bulk transfers leave the allocator holding their buffers.
sleep 3
RSS_IDLE=$(rss_kib VmRSS)
# Every client reads its input from one FIFO that this script keeps open and never writes:
# the shells stay idle at their prompt.
mkfifo "$OUT/idle.fifo"
exec 7<>"$OUT/idle.fifo"
say "opening $IDLE idle interactive connections through the gateway"
t0=$(now)
for i in $(seq 1 "$IDLE"); do
  ssh "${SSH_OPTS[@]}" -tt -p "$GW_PORT" "$STRING@127.0.0.1" <"$OUT/idle.fifo" >/dev/null 2>>"$OUT/idle-clients.log" &
  CLIENT_PIDS+=($!)
  # In batches, so that sshd's MaxStartups does not drop logins.
  if (( i % 25 == 0 )); then
    for _ in $(seq 1 600); do
      open=$(ss -Htn state established "( sport = :$GW_PORT )" | wc -l)
      up=$(ss -Htn state established "( dport = :$SSHD_PORT )" | wc -l)
      (( open >= i && up >= i )) && break
      sleep 0.2
    done
  fi
done
for _ in $(seq 1 600); do
  up=$(ss -Htn state established "( dport = :$SSHD_PORT )" | wc -l)
  (( up >= IDLE )) && break
  sleep 0.2
done
OPEN_GW=$(ss -Htn state established "( sport = :$GW_PORT )" | wc -l)
OPEN_UP=$(ss -Htn state established "( dport = :$SSHD_PORT )" | wc -l)
ALIVE=0
for pid in "${CLIENT_PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && ALIVE=$((ALIVE + 1)); done
OPEN_SECS=$(awk -v a="$t0" -v z="$(now)" 'BEGIN {printf "%.1f", z - a}')
# Settle: the first prompts are recorded, then nothing flows.
sleep 5
RSS_LOADED=$(rss_kib VmRSS)
HWM=$(rss_kib VmHWM)
THREADS=$(awk '/^Threads:/ {print $2}' "/proc/$SERVER_PID/status")
say "idle connections: $ALIVE clients alive, $OPEN_GW at the gateway, $OPEN_UP upstream; RSS $(mib "$RSS_LOADED") MiB"
for pid in "${CLIENT_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
CLIENT_PIDS=()
exec 7>&-

# --- connection latency, alternating -------------------------------------------------------------
: > "$OUT/latency-gateway.txt"; : > "$OUT/latency-direct.txt"
for _ in $(seq 1 "$RUNS"); do
  for side in direct gateway; do
    t0=$(now)
    if [ "$side" = gateway ]; then via_gateway true </dev/null; else direct true </dev/null; fi
    t1=$(now)
    awk -v a="$t0" -v z="$t1" 'BEGIN {printf "%.1f\n", (z - a) * 1000}' >> "$OUT/latency-$side.txt"
  done
done
LAT_GW_50=$(pct "$OUT/latency-gateway.txt" 50); LAT_GW_99=$(pct "$OUT/latency-gateway.txt" 99)
LAT_D_50=$(pct "$OUT/latency-direct.txt" 50); LAT_D_99=$(pct "$OUT/latency-direct.txt" 99)
say "latency p50/p99: gateway $LAT_GW_50/$LAT_GW_99 ms, direct $LAT_D_50/$LAT_D_99 ms"

# --- bulk throughput, alternating ----------------------------------------------------------------
# Three kinds of output: NULs (/dev/zero), text (this repository's sources and docs, over and
# over: what `cat` of a log or a dump prints) and random bytes (a compressed or binary file).
# The files are made once, readable by the session's account.
mkdir -p "$OUT/payload"
chmod 755 "$OUT/payload"
payload() {
  case "$1" in
    zero) echo "head -c $BYTES /dev/zero" ;;
    text|random) echo "cat $OUT/payload/$1" ;;
    *) die "BENCH_DATA: unknown kind $1 (zero, text or random)" ;;
  esac
}
for kind in $DATA_KINDS; do
  case "$kind" in
    text)
      find "$ROOT/src" "$ROOT/README.md" "$ROOT/bench/README.md" "$ROOT/templates" -type f | sort \
        | xargs cat > "$OUT/payload/text.one"
      copies=$(( BYTES / $(stat -c %s "$OUT/payload/text.one") + 1 ))
      for _ in $(seq 1 "$copies"); do cat "$OUT/payload/text.one"; done | head -c "$BYTES" > "$OUT/payload/text" || true
      rm -f "$OUT/payload/text.one" ;;
    random) head -c "$BYTES" /dev/urandom > "$OUT/payload/random" ;;
  esac
  [ "$kind" = zero ] || chmod 644 "$OUT/payload/$kind"
done
BULK_ROWS=()
BULK_NOTES=()
BULK_RATIOS=()
for kind in $DATA_KINDS; do
  command=$(payload "$kind")
  : > "$OUT/bulk-$kind-gateway.txt"; : > "$OUT/bulk-$kind-direct.txt"
  CPU_GW=0; CPU_PG=0; WALL_GW=0; ALL_GW=0; ALL_DIRECT=0
  for r in $(seq 1 "$ROUNDS"); do
    for side in direct gateway; do
      t0=$(now)
      c0=$(server_ticks); p0=$(pg_ticks); m0=$(machine_ticks)
      if [ "$side" = gateway ]; then
        got=$(via_gateway "$command" </dev/null | wc -c)
      else
        got=$(direct "$command" </dev/null | wc -c)
      fi
      t1=$(now)
      c1=$(server_ticks); p1=$(pg_ticks); m1=$(machine_ticks)
      [ "$got" = "$BYTES" ] || die "$side ($kind): received $got of $BYTES bytes"
      mbs=$(awk -v b="$BYTES" -v a="$t0" -v z="$t1" 'BEGIN {printf "%.1f", b / (z - a) / 1e6}')
      echo "$mbs" >> "$OUT/bulk-$kind-$side.txt"
      if [ "$side" = gateway ]; then
        CPU_GW=$(awk -v s="$CPU_GW" -v d="$((c1 - c0))" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.2f", s + d / hz}')
        CPU_PG=$(awk -v s="$CPU_PG" -v d="$((p1 - p0))" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.2f", s + d / hz}')
        WALL_GW=$(awk -v s="$WALL_GW" -v a="$t0" -v z="$t1" 'BEGIN {printf "%.2f", s + z - a}')
        ALL_GW=$(awk -v s="$ALL_GW" -v d="$((m1 - m0))" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.2f", s + d / hz}')
      else
        ALL_DIRECT=$(awk -v s="$ALL_DIRECT" -v d="$((m1 - m0))" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.2f", s + d / hz}')
      fi
      say "bulk round $r $kind $side: $mbs MB/s"
    done
  done
  gw=$(median "$OUT/bulk-$kind-gateway.txt")
  di=$(median "$OUT/bulk-$kind-direct.txt")
  ratio=$(awk -v a="$gw" -v b="$di" 'BEGIN {printf "%.2f", a / b}')
  BULK_RATIOS+=("$ratio")
  cpu_gb=$(awk -v s="$CPU_GW" -v n="$ROUNDS" -v b="$BYTES" 'BEGIN {printf "%.2f", s / (n * b / 1e9)}')
  pg_gb=$(awk -v s="$CPU_PG" -v n="$ROUNDS" -v b="$BYTES" 'BEGIN {printf "%.2f", s / (n * b / 1e9)}')
  case "$kind" in
    zero) label="\`head -c $BYTES /dev/zero\`" ;;
    text) label="\`cat\` of $BYTES bytes of text (this repository's sources and docs, repeated)" ;;
    random) label="\`cat\` of $BYTES random bytes" ;;
  esac
  BULK_ROWS+=("| bulk: $label, median of $ROUNDS | $gw MB/s ($(paste -sd/ "$OUT/bulk-$kind-gateway.txt")) | $di MB/s ($(paste -sd/ "$OUT/bulk-$kind-direct.txt")) | ≥ 0.7× direct: $ratio× **$(verdict "$ratio >= 0.7")** |")
  BULK_NOTES+=("- $kind: during the gateway's transfers ($WALL_GW s in all) the server used $CPU_GW CPU seconds ($cpu_gb per GB relayed, recording included), its PostgreSQL $CPU_PG ($pg_gb per GB: the recording's chunks).")
  # The whole machine's CPU per GB each way, and what that allows on this machine's CPUs:
  # when the transfer is CPU-bound, the gateway's can go no faster than all CPUs busy.
  all_gw=$(awk -v s="$ALL_GW" -v n="$ROUNDS" -v b="$BYTES" 'BEGIN {printf "%.2f", s / (n * b / 1e9)}')
  all_di=$(awk -v s="$ALL_DIRECT" -v n="$ROUNDS" -v b="$BYTES" 'BEGIN {printf "%.2f", s / (n * b / 1e9)}')
  ceiling=$(awk -v c="$(nproc)" -v g="$all_gw" -v d="$di" 'BEGIN {printf "%.0f MB/s (%.2f× direct)", c / g * 1000, c / g * 1000 / d}')
  BULK_NOTES+=("  Every process on the machine together: $all_di CPU seconds per GB for the direct transfers, $all_gw through the gateway; on $(nproc) CPUs the latter allows at most $ceiling.")
done
RSS_AFTER_BULK=$(rss_kib VmRSS)
STORED=$(psql_data -Atc "SELECT pg_size_pretty(pg_total_relation_size('recording_chunks'))" 2>/dev/null || echo "?")

PER_CONN=$(awk -v a="$RSS_LOADED" -v b="$RSS_IDLE" -v n="$OPEN_UP" 'BEGIN {printf "%.0f", (n > 0 ? (a - b) / n : 0)}')
{
  echo "# Gateway benchmark results"
  echo
  echo "Run $(date -u +%Y-%m-%dT%H:%M:%SZ) of revision $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown) ($PROFILE build), loopback only."
  echo "Machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load average $(cut -d' ' -f1-3 /proc/loadavg) at the end."
  echo "Clients: $(ssh -V 2>&1); target: the same OpenSSH's sshd, password login for the gateway, key for the direct runs."
  echo "Ciphers with the user's ssh (its defaults): through the gateway $CIPHER_GW, direct $CIPHER_DIRECT."
  echo
  echo "| measured | through the gateway | direct ssh | target |"
  echo "|---|---|---|---|"
  printf '%s\n' "${BULK_ROWS[@]}"
  echo "| connection: \`ssh ... true\`, p50 / p99 of $RUNS | $LAT_GW_50 / $LAT_GW_99 ms | $LAT_D_50 / $LAT_D_99 ms | added p50 $(awk -v a="$LAT_GW_50" -v b="$LAT_D_50" 'BEGIN {printf "%.1f", a - b}') ms, p99 $(awk -v a="$LAT_GW_99" -v b="$LAT_D_99" 'BEGIN {printf "%.1f", a - b}') ms |"
  echo "| server RSS with $OPEN_UP idle interactive connections (PTY, shell at its prompt) | $(mib "$RSS_LOADED") MiB (peak $(mib "$HWM") MiB, $THREADS threads) | - | ≤ 100 MiB: **$(verdict "$RSS_LOADED <= 102400")** |"
  echo
  echo "- Server RSS: $(mib "$RSS_START") MiB after start, $(mib "$RSS_IDLE") MiB idle before the $IDLE connections (after preparing the session), $(mib "$RSS_LOADED") MiB with them (about $PER_CONN KiB each; opening them took $OPEN_SECS s), $(mib "$RSS_AFTER_BULK") MiB after the bulk transfers (peak $(mib "$(rss_kib VmHWM)") MiB)."
  printf '%s\n' "${BULK_NOTES[@]}"
  echo "- The gateway records every byte (chunks in PostgreSQL), so each bulk run also writes its $BYTES bytes as recording events: recording_chunks held $STORED at the end."
} > "$OUT/results.md"
cat "$OUT/results.md"
