#!/usr/bin/env bash
# Provisioning benchmark: grant and revoke latency of the linux_ssh provisioner against a
# real OpenSSH server on loopback, and a burst of sessions starting together. See
# bench/README.md. Needs root (it makes and removes accounts on this machine, all named
# BENCH_PREFIX-...) and openssh-server; everything it starts is stopped on exit.
#
# Settings (environment): BENCH_ROUNDS (40), BENCH_BURST (100), BENCH_PREFIX (pcbench),
# BENCH_SKIP_BUILD (0), BENCH_PROFILE (release; dev measures a debug build: the time goes to
# SSH logins and the commands on the target, not to Portcullis's own code).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$ROOT/bench/out/provisioning"
PREFIX="${BENCH_PREFIX:-pcbench}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"

[ "$(id -u)" = 0 ] || { echo "run as root: the benchmark makes accounts on this machine" >&2; exit 1; }
command -v /usr/sbin/sshd >/dev/null || { echo "install openssh-server" >&2; exit 1; }

PROFILE="${BENCH_PROFILE:-release}"
PROFILE_DIR=$([ "$PROFILE" = dev ] && echo debug || echo "$PROFILE")
if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
  cargo build --profile "$PROFILE" --example bench_provisioning --manifest-path "$ROOT/Cargo.toml"
fi

rm -rf "$OUT"
mkdir -p "$OUT/authorized" /run/sshd
SSHD_PID=""
cleanup() {
  [ -n "$SSHD_PID" ] && kill "$SSHD_PID" 2>/dev/null || true
  for u in $(cut -d: -f1 /etc/passwd | grep "^$PREFIX-" || true); do
    pkill -KILL -u "$u" 2>/dev/null || true
    userdel -r "$u" 2>/dev/null || true
  done
}
trap cleanup EXIT

ssh-keygen -q -t ed25519 -N '' -f "$OUT/host_key"
ssh-keygen -q -t ed25519 -N '' -f "$OUT/service_key"
cp "$OUT/service_key.pub" "$OUT/authorized/root"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$OUT/sshd_config" <<CONF
ListenAddress 127.0.0.1
Port $PORT
HostKey $OUT/host_key
PidFile $OUT/sshd.pid
AuthorizedKeysFile $OUT/authorized/%u
StrictModes no
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
# Room for the burst's concurrent logins.
MaxStartups 64:30:128
LogLevel ERROR
CONF
/usr/sbin/sshd -D -e -f "$OUT/sshd_config" 2>"$OUT/sshd.log" &
SSHD_PID=$!
for _ in $(seq 50); do
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
  sleep 0.1
done

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
"$TARGET_DIR/$PROFILE_DIR/examples/bench_provisioning" \
  --port "$PORT" --host-key "$OUT/host_key.pub" --service-key "$OUT/service_key" \
  --data-dir "$OUT/db" --prefix "$PREFIX" \
  --rounds "${BENCH_ROUNDS:-40}" --burst "${BENCH_BURST:-100}" | tee "$OUT/results.txt"
