# shellcheck shell=bash disable=SC2154,SC2034  # build, work in; endpoint, endpoint_env out
# Shared by bench/run_raft_bench.sh and bench/store_bench.sh (sourced, not run). The caller
# sets `build` (the build dir) and `work` (a scratch dir) and owns `serve_pid`.

log() { echo "== $*" >&2; }
machine_load() { cut -d' ' -f1-3 /proc/loadavg; }
fmt() { printf '%.0f' "$1"; }

# require_tools TOOL...: exit 1 unless each is on PATH; refuse to run next to another etcd.
require_tools() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null || { echo "$tool not on PATH" >&2; exit 1; }
  done
  if pgrep -x etcd >/dev/null; then
    echo "an etcd process is already running (pgrep -x etcd): stop it first," \
      "it would skew the figures" >&2
    exit 1
  fi
}

# require_built EXE...: exit 1 unless each is in $build.
require_built() {
  local exe
  for exe in "$@"; do
    [[ -x "$build/$exe" ]] || { echo "missing $build/$exe: build it first" >&2; exit 1; }
  done
}

stop_pid() {  # stop_pid PID: SIGTERM, then SIGKILL after 5 s
  local pid=$1
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# serve_cluster vigil|etcd [SERVE_OPTIONS...]: a 3-node cluster via `vigil-failover-bench
# --serve` (with the options: --vigil-insecure, --etcd-tls) in the
# background (not in a subshell: the caller's trap must know serve_pid); sets endpoint (the
# leader's API) and endpoint_env (TLS and token variables of an HTTPS API).
serve_cluster() {
  local target=$1 ready="$work/$1.endpoint"
  rm -f "$ready" "$ready.env" "$ready.nodes"
  "$build/vigil-failover-bench" --serve "$target" --dir "$work/serve" --ready-file "$ready" \
    "${@:2}" >"$work/$target.serve.log" 2>&1 &
  serve_pid=$!
  for _ in $(seq 600); do
    if [[ -s "$ready" ]]; then
      endpoint=$(cat "$ready")
      endpoint_env=$(cat "$ready.env" 2>/dev/null || true)
      return 0
    fi
    kill -0 "$serve_pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "the $target cluster did not come up:" >&2
  cat "$work/$target.serve.log" >&2
  return 1
}
