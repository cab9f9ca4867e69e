#!/usr/bin/env bash
# Runs the consensus benchmark of docs/BENCHMARKS.md: put throughput and latency at 1/16/64
# clients, then leader failover, for 3-voter Vigil and etcd clusters on 127.0.0.1.
#
# usage: bench/run_raft_bench.sh BUILD_DIR [--seconds S] [--rounds R] [--runs N] [--out FILE]
#   BUILD_DIR holds vigil, vigil-kv-load and vigil-failover-bench (this script builds
#   nothing). --seconds: load per client count (default 10); --rounds: load rounds, each a
#   fresh Vigil and a fresh etcd cluster, in alternating order (default 1; the table shows
#   the median, and the range when R > 1); --runs: failover runs (10); --out: also write
#   the table and the raw JSON to FILE. Needs etcd 3.4 on PATH and jq.
set -euo pipefail

usage() {
  sed -n '4,10p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

[[ $# -ge 1 ]] || usage
build=$(cd "$1" && pwd)
shift
seconds=10
rounds=1
runs=10
out=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --seconds) seconds=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) usage ;;
  esac
done

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_built vigil vigil-kv-load vigil-failover-bench
require_tools etcd jq

work=$(mktemp -d /tmp/vigil-raft-bench.XXXXXX)
serve_pid=""
bench_pid=""
endpoint=""
endpoint_env=""

cleanup() {
  [[ -n "$bench_pid" ]] && stop_pid "$bench_pid"
  [[ -n "$serve_pid" ]] && stop_pid "$serve_pid"
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

start_cluster() { serve_cluster "$1"; }

stop_cluster() {
  stop_pid "$serve_pid"
  serve_pid=""
}

# load vigil|etcd ROUND: kv-load at 1, 16 and 64 clients against the leader of a fresh
# cluster; JSON lines (with the round) appended to a file.
load() {
  local target=$1 round=$2
  start_cluster "$target"
  log "$target round $round: cluster up, leader API $endpoint"
  sleep 1
  for clients in 1 16 64; do
    log "$target round $round: $clients clients for $seconds s"
    # shellcheck disable=SC2086  # endpoint_env is VAR=VALUE words
    env $endpoint_env "$build/vigil-kv-load" --target "$target" --endpoint "$endpoint" \
      --clients "$clients" \
      --seconds "$seconds" --json | jq -c --argjson r "$round" '. + {round: $r}' \
      | tee -a "$work/$target.load.jsonl" >&2
  done
  stop_cluster
  rm -rf "$work/serve"
}


log "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
load_before=$(machine_load)
log "load average before: $load_before"
# Alternate which system goes first: the machine's background load drifts.
for round in $(seq "$rounds"); do
  if (( round % 2 )); then load vigil "$round"; load etcd "$round"
  else load etcd "$round"; load vigil "$round"; fi
done
log "failover: vigil and etcd, $runs runs each"
"$build/vigil-failover-bench" --target both --runs "$runs" --dir "$work/failover" --json \
  >"$work/failover.json" 2>"$work/failover.err" &
bench_pid=$!
if ! wait "$bench_pid"; then
  bench_pid=""
  cat "$work/failover.err" >&2
  exit 1
fi
bench_pid=""
load_after=$(machine_load)

# ------------------------------------------------------------------ table
fmt1() { printf '%.1f' "$1"; }
figure() {  # figure TARGET CLIENTS FIELD [min|max]: the median over rounds (or min/max)
  jq -rs --argjson c "$2" --arg f "$3" --arg what "${4:-median}" '
    map(select(.clients == $c) | .[$f]) | sort
    | if $what == "min" then .[0] elif $what == "max" then .[-1]
      elif length % 2 == 1 then .[length / 2 | floor]
      else (.[length / 2 - 1] + .[length / 2]) / 2 end' "$work/$1.load.jsonl"
}
ops() {  # ops TARGET CLIENTS: "median" or "median (min–max)"
  local m
  m=$(fmt "$(figure "$1" "$2" ops_per_s)")
  if (( rounds > 1 )); then
    m="$m ($(fmt "$(figure "$1" "$2" ops_per_s min)")–$(fmt "$(figure "$1" "$2" ops_per_s max)"))"
  fi
  echo "$m"
}
errors() {  # errors TARGET CLIENTS: the sum over rounds
  jq -s --argjson c "$2" 'map(select(.clients == $c) | .errors) | add' "$work/$1.load.jsonl"
}
fo() {  # fo TARGET FIELD
  jq -r ".$1.$2" "$work/failover.json"
}
per_run() {
  jq -r ".$1.runs | map(.failover_ms | floor | tostring) | join(\", \")" "$work/failover.json"
}

table=$(
  echo "| Figure (3 voters, 127.0.0.1, fsync on; load: median of $rounds round(s)) | Vigil | etcd $(etcd --version | awk '/etcd Version/ {print $3}') |"
  echo "|---|---:|---:|"
  for c in 1 16 64; do
    echo "| put throughput, $c client(s) (ops/s) | $(ops vigil $c) | $(ops etcd $c) |"
    echo "| put latency p50 / p99, $c client(s) (ms) | $(fmt1 "$(figure vigil $c p50_ms)") / $(fmt1 "$(figure vigil $c p99_ms)") | $(fmt1 "$(figure etcd $c p50_ms)") / $(fmt1 "$(figure etcd $c p99_ms)") |"
    echo "| put errors, $c client(s) | $(errors vigil $c) | $(errors etcd $c) |"
  done
  echo "| leader failover median ($runs runs, ms) | $(fmt "$(fo vigil median_ms)") | $(fmt "$(fo etcd median_ms)") |"
  echo "| leader failover min / max (ms) | $(fmt "$(fo vigil min_ms)") / $(fmt "$(fo vigil max_ms)") | $(fmt "$(fo etcd min_ms)") / $(fmt "$(fo etcd max_ms)") |"
  echo "| failover per run (ms) | $(per_run vigil) | $(per_run etcd) |"
)
echo
echo "Load average (1/5/15 min) before: $load_before, after: $load_after"
echo
echo "$table"
if [[ -n "$out" ]]; then
  {
    echo "Load average (1/5/15 min) before: $load_before, after: $load_after"
    echo
    echo "$table"
    echo
    echo '```json'
    cat "$work/failover.json"
    cat "$work/vigil.load.jsonl" "$work/etcd.load.jsonl"
    echo '```'
  } >"$out"
fi
