# Shared helpers for the stack scripts: paths, logging, locking, bounded waits.
# shellcheck shell=bash
set -euo pipefail

STACK_LIB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.sh
source "$STACK_LIB_DIR/versions.sh"

# Builds and downloads: kept across runs, outside the repository, keyed by version.
CACHE_DIR="${EVENTLOOM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/eventloom}"
# Running state (data, logs, pids): a temp dir, gone with `down`.
STATE_DIR="${EVENTLOOM_STACK_DIR:-${TMPDIR:-/tmp}/eventloom-stack-$(id -u)}"

KAFKA_PORT="${EVENTLOOM_KAFKA_PORT:-19092}"
KAFKA_CONTROLLER_PORT="${EVENTLOOM_KAFKA_CONTROLLER_PORT:-19093}"
# Broker heap: 512 MiB ran out with ~8,500 topics (the operator benchmark at 1,000 Orchestrations).
KAFKA_HEAP="${EVENTLOOM_KAFKA_HEAP:-1g}"
ETCD_PORT="${EVENTLOOM_ETCD_PORT:-12379}"
ETCD_PEER_PORT="${EVENTLOOM_ETCD_PEER_PORT:-12380}"
APISERVER_PORT="${EVENTLOOM_APISERVER_PORT:-16443}"
JAEGER_UI_PORT="${EVENTLOOM_JAEGER_UI_PORT:-16686}"
JAEGER_OTLP_HTTP_PORT="${EVENTLOOM_JAEGER_OTLP_HTTP_PORT:-14318}"
JAEGER_OTLP_GRPC_PORT="${EVENTLOOM_JAEGER_OTLP_GRPC_PORT:-14317}"
JAEGER_HEALTH_PORT="${EVENTLOOM_JAEGER_HEALTH_PORT:-13133}"

log() { printf '[stack] %s\n' "$*" >&2; }

# die STEP MESSAGE [LOGFILE]: say which step failed, show the log tail, exit 1.
die() {
  local step="$1" msg="$2" logfile="${3:-}"
  printf '[stack] FAILED at step "%s": %s\n' "$step" "$msg" >&2
  if [[ -n "$logfile" && -f "$logfile" ]]; then
    printf '[stack] last lines of %s:\n' "$logfile" >&2
    tail -n 40 "$logfile" | sed 's/^/    /' >&2
  fi
  exit 1
}

need() {
  local cmd="$1" why="$2"
  command -v "$cmd" >/dev/null 2>&1 || die "prerequisites" "'$cmd' is not installed; it is needed to $why"
}

# with_lock NAME CMD...: run CMD holding an exclusive lock, so two `up`s at once
# never build or start the same thing twice.
with_lock() {
  local name="$1"; shift
  mkdir -p "$CACHE_DIR/locks"
  local lockfile="$CACHE_DIR/locks/$name.lock"
  (
    flock -w 3600 9 || die "lock" "timed out waiting for $lockfile"
    "$@"
  ) 9>"$lockfile"
}

# wait_for STEP TIMEOUT_SECONDS LOGFILE CMD...: poll CMD until it succeeds or time is up.
wait_for() {
  local step="$1" timeout="$2" logfile="$3"; shift 3
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      die "$step" "not ready after ${timeout}s" "$logfile"
    fi
    sleep 0.5
  done
}

port_free() {
  ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

require_port_free() {
  local step="$1" port="$2" var="$3"
  port_free "$port" || die "$step" "port $port on 127.0.0.1 is already in use by another process; set $var to a free port"
}

pid_alive() {
  local pidfile="$1"
  [[ -f "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}
