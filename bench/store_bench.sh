#!/usr/bin/env bash
# Runs the store/API benchmark of docs/BENCHMARKS.md (issue #3) for 3-voter Vigil and etcd
# clusters on 127.0.0.1, fsync on, through the HTTP API (etcd: its v3 JSON gateway): RSS of
# the leader idle, puts at 1/16/64/256 clients, linearizable gets at 16/64, RSS after,
# watch latency (put on the leader, watcher on a follower), election failover with TTL 1 s.
# Vigil runs as it does by default (mutual TLS between agents, HTTPS API), etcd with its
# defaults (plain HTTP). Then the leader's RSS idle and after 64-client puts with both set up
# alike, twice: both plain, and both with TLS (etcd: peer mTLS and HTTPS).
#
# usage: bench/store_bench.sh BUILD_DIR [--seconds S] [--watch-count N] [--runs R] [--out FILE]
#                             [--etcd-first]
#   BUILD_DIR holds vigil and vigil-{kv-load,failover-bench,watch-latency,etcd-elect} (this
#   script builds nothing). --seconds: load per step (default 10); --watch-count: watch
#   samples (1000); --runs: election failover runs, TTL 1 s (10; 0 skips); --out: also
#   write the table and the raw JSON to FILE; --etcd-first: etcd's cluster first (the
#   machine's load drifts: alternate). Needs etcd 3.4 on PATH, jq and ss.
set -euo pipefail

usage() {
  sed -n "10,16p" "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

[[ $# -ge 1 ]] || usage
build=$(cd "$1" && pwd)
shift
seconds=10
watch_count=1000
runs=10
out=""
etcd_first=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --seconds) seconds=$2; shift 2 ;;
    --watch-count) watch_count=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --etcd-first) etcd_first=1; shift ;;
    *) usage ;;
  esac
done

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_built vigil vigil-kv-load vigil-failover-bench vigil-watch-latency vigil-etcd-elect
require_tools etcd jq ss

work=$(mktemp -d /tmp/vigil-store-bench.XXXXXX)
serve_pid=""
endpoint=""
endpoint_env=""
leader_pid=""
elect_pids=()

kill_group() {  # kill_group PID: SIGKILL to the process group PID leads (setsid), then reap
  kill -KILL -- "-$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

cleanup() {
  local p
  for p in "${elect_pids[@]}"; do kill_group "$p"; done
  [[ -n "$serve_pid" ]] && stop_pid "$serve_pid"
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# start_cluster vigil|etcd [SERVE_OPTIONS...]: serve_cluster (lib.sh), and leader_pid, the
# leader's process.
start_cluster() {
  serve_cluster "$@" || return 1
  leader_pid=$(pid_listening "${endpoint##*:}")
  [[ -n "$leader_pid" ]] || { echo "no process listens on $endpoint" >&2; return 1; }
  # The leader must be a member this script started (a child of the serve process).
  [[ $(ps -o ppid= -p "$leader_pid" | tr -d ' ') == "$serve_pid" ]] || {
    echo "pid $leader_pid on $endpoint is not a child of $serve_pid" >&2
    return 1
  }
}

pid_listening() {  # pid_listening PORT: the pid of the process listening on 127.0.0.1:PORT
  ss -Htlnp "sport = :$1" | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2
}

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

stop_cluster() {
  stop_pid "$serve_pid"
  serve_pid=""
  rm -rf "$work/serve"
}

# candidate URL SERVER_NAME NAME LOG: one election candidate with a 1 s TTL in its own process
# group, in the background (sets cand_pid). Vigil: `vigil elect`; etcd: vigil-etcd-elect.
candidate() {
  if [[ $target == vigil ]]; then
    # shellcheck disable=SC2086  # endpoint_env is VAR=VALUE words
    env $endpoint_env VIGIL_SERVER_NAME="$2" setsid "$build/vigil" elect --api "$1" --ttl 1 \
      "$3" -- /bin/sh -c 'sleep 600' >"$4" 2>&1 &
  else
    setsid "$build/vigil-etcd-elect" "$1" 1 "$3" >"$4" 2>&1 &
  fi
  cand_pid=$!
  elect_pids+=("$cand_pid")
}

# election_runs: election failover with a 1 s TTL: the holder through the leader's API, the
# other candidate through a follower's; SIGKILL of the holder's process group (keep-alives
# stop) to the moment the other prints its token. JSON lines to $work/$target.election.jsonl.
election_runs() {
  local leader_line follower_line run
  leader_line=$(awk -v e="$endpoint" '$2 == e' "$work/$target.endpoint.nodes")
  follower_line=$(awk -v e="$endpoint" '$2 != e' "$work/$target.endpoint.nodes" | head -1)
  read -r _ l_url l_name <<<"$leader_line"
  read -r _ f_url f_name <<<"$follower_line"
  for run in $(seq "$runs"); do
    local l1="$work/$target.elect.$run.1.log" l2="$work/$target.elect.$run.2.log" c1 c2 t0 t1
    candidate "$l_url" "$l_name" "bench-$run" "$l1"
    c1=$cand_pid
    wait_token "$l1" 10 || { echo "holder not elected:" >&2; cat "$l1" >&2; return 1; }
    candidate "$f_url" "$f_name" "bench-$run" "$l2"
    c2=$cand_pid
    sleep 1.5  # the second candidate is campaigning (and must not hold)
    if grep -q 'token ' "$l2"; then echo "two holders at once:" >&2; cat "$l2" >&2; return 1; fi
    t0=$(date +%s%N)
    kill_group "$c1"
    wait_token "$l2" 10 || { echo "no failover:" >&2; cat "$l2" >&2; return 1; }
    t1=$(date +%s%N)
    kill_group "$c2"
    elect_pids=()
    echo "{\"target\":\"$target\",\"run\":$run,\"failover_ms\":$(( (t1 - t0) / 1000000 ))}" \
      | tee -a "$work/$target.election.jsonl" >&2
  done
  # etcd raises a TTL below its minimum: record what it granted.
  if [[ $target == etcd ]]; then
    grep -ho 'ttl [0-9]* s' "$work/$target.elect.1.1.log" | head -1 | sed 's/^ttl //' >"$work/etcd.granted_ttl"
  fi
}

wait_token() {  # wait_token LOG SECONDS: polls every 5 ms for the "token N" line
  local deadline=$(( $(date +%s) + $2 ))
  while (( $(date +%s) < deadline )); do
    grep -q 'token ' "$1" 2>/dev/null && return 0
    sleep 0.005
  done
  return 1
}

# Every put step cycles over the same $put_keys keys (shared out among its clients), so the
# faster system does not end the puts holding more keys than the other: at the rates of
# both, each client of the 64- and 256-client steps writes its share more than once, and
# "RSS after the puts" compares the same data.
put_keys=32768

# bench vigil|etcd: one fresh cluster: RSS idle, puts, gets, RSS after, watch, election.
bench() {
  target=$1
  start_cluster "$target"
  log "$target: cluster up, leader API $endpoint (pid $leader_pid)"
  sleep 2
  echo "{\"target\":\"$target\",\"rss_idle_kib\":$(rss_kib "$leader_pid")}" \
    >>"$work/$target.rss.jsonl"
  local op clients
  for op in put get; do
    local counts="1 16 64 256"
    [[ $op == get ]] && counts="16 64"
    for clients in $counts; do
      log "$target: $op, $clients clients for $seconds s"
      # shellcheck disable=SC2086  # endpoint_env is VAR=VALUE words
      env $endpoint_env "$build/vigil-kv-load" --target "$target" --endpoint "$endpoint" \
        --op "$op" --clients "$clients" --seconds "$seconds" --keys "$put_keys" --json \
        | tee -a "$work/$target.load.jsonl" >&2
    done
    if [[ $op == put ]]; then
      echo "{\"target\":\"$target\",\"rss_after_puts_kib\":$(rss_kib "$leader_pid")}" \
        >>"$work/$target.rss.jsonl"
    fi
  done
  local watcher
  watcher=$(awk -v e="$endpoint" '$2 != e' "$work/$target.endpoint.nodes" | head -1)
  local wurl wname
  wurl=$(echo "$watcher" | cut -d' ' -f2)
  wname=$(echo "$watcher" | cut -d' ' -f3)
  log "$target: watch latency, $watch_count puts on $endpoint, watcher on $wurl"
  [[ $wname == - ]] && wname=""
  # shellcheck disable=SC2086
  env $endpoint_env "$build/vigil-watch-latency" --target "$target" --put-endpoint "$endpoint" \
    --watch-endpoint "$wurl" ${wname:+--watch-server-name "$wname"} \
    --count "$watch_count" --json | tee "$work/$target.watch.json" >&2
  if [[ $runs -gt 0 ]]; then
    log "$target: election failover, TTL 1 s, $runs runs"
    election_runs
  fi
  stop_cluster
}

# rss_setup plain|tls vigil|etcd: the leader's RSS idle and after 64-client puts (the same
# keys as above) with both systems set up alike: plain TCP and HTTP everywhere (etcd's
# default), or TLS between the members and on the client API (Vigil's default; etcd with
# peer mTLS and HTTPS). The main run above compares Vigil with TLS to etcd without.
rss_setup() {
  local setup=$1 opts=()
  target=$2
  [[ $setup == plain && $target == vigil ]] && opts=(--vigil-insecure)
  [[ $setup == tls && $target == etcd ]] && opts=(--etcd-tls)
  start_cluster "$target" "${opts[@]}"
  log "$target ($setup): cluster up, leader API $endpoint (pid $leader_pid)"
  sleep 2
  local idle
  idle=$(rss_kib "$leader_pid")
  # shellcheck disable=SC2086  # endpoint_env is VAR=VALUE words
  env $endpoint_env "$build/vigil-kv-load" --target "$target" --endpoint "$endpoint" \
    --op put --clients 64 --seconds "$seconds" --keys "$put_keys" --json >&2
  echo "{\"target\":\"$target\",\"setup\":\"$setup\",\"rss_idle_kib\":$idle,\"rss_after_puts_kib\":$(rss_kib "$leader_pid")}" \
    >>"$work/rss_setups.jsonl"
  stop_cluster
}

log "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
load_before=$(machine_load)
log "load average before: $load_before"
if (( etcd_first )); then bench etcd; bench vigil; else bench vigil; bench etcd; fi
for setup in plain tls; do
  if (( etcd_first )); then rss_setup $setup etcd; rss_setup $setup vigil
  else rss_setup $setup vigil; rss_setup $setup etcd; fi
done
load_after=$(machine_load)

# ------------------------------------------------------------------ table
fmt1() { printf '%.1f' "$1"; }
field() {  # field TARGET OP CLIENTS FIELD
  jq -r --arg op "$2" --argjson c "$3" --arg f "$4" \
    'select(.op == $op and .clients == $c) | .[$f]' "$work/$1.load.jsonl"
}
rss() { jq -r ".$2 // empty" "$work/$1.rss.jsonl" | awk '{printf "%.1f", $1 / 1024}'; }
rss_setup_mib() {  # rss_setup_mib TARGET SETUP FIELD
  jq -r --arg t "$1" --arg s "$2" "select(.target == \$t and .setup == \$s) | .$3" \
    "$work/rss_setups.jsonl" | awk '{printf "%.1f", $1 / 1024}'
}
watch() { fmt1 "$(jq -r ".$2" "$work/$1.watch.json")"; }
election() {  # election TARGET median|per_run
  local f="$work/$1.election.jsonl"
  [[ -s "$f" ]] || { echo "not run"; return; }
  if [[ $2 == median ]]; then
    jq -s 'map(.failover_ms) | sort | if length % 2 == 1 then .[length / 2 | floor]
      else (.[length / 2 - 1] + .[length / 2]) / 2 end' "$f"
  else
    jq -rs 'map(.failover_ms | tostring) | join(", ")' "$f"
  fi
}
etcd_ttl=$(cat "$work/etcd.granted_ttl" 2>/dev/null || true)

table=$(
  echo "| Figure (3 voters, 127.0.0.1, fsync on, HTTP API; $seconds s per step) | Vigil | etcd $(etcd --version | awk '/etcd Version/ {print $3}') |"
  echo "|---|---:|---:|"
  for op in put get; do
    counts="1 16 64 256"
    [[ $op == get ]] && counts="16 64"
    what=$op
    [[ $op == get ]] && what="linearizable get"
    for c in $counts; do
      echo "| $what throughput, $c client(s) (ops/s) | $(fmt "$(field vigil $op "$c" ops_per_s)") | $(fmt "$(field etcd $op "$c" ops_per_s)") |"
      echo "| $what latency p50 / p99, $c client(s) (ms) | $(fmt1 "$(field vigil $op "$c" p50_ms)") / $(fmt1 "$(field vigil $op "$c" p99_ms)") | $(fmt1 "$(field etcd $op "$c" p50_ms)") / $(fmt1 "$(field etcd $op "$c" p99_ms)") |"
      echo "| $what errors, $c client(s) | $(field vigil $op "$c" errors) | $(field etcd $op "$c" errors) |"
    done
  done
  echo "| watch latency median / p99 ($watch_count puts, ms) | $(watch vigil median_ms) / $(watch vigil p99_ms) | $(watch etcd median_ms) / $(watch etcd p99_ms) |"
  echo "| watch events lost (5 s wait) | $(jq -r .lost "$work/vigil.watch.json") | $(jq -r .lost "$work/etcd.watch.json") |"
  echo "| election failover median, TTL 1 s asked ($runs runs, ms) | $(election vigil median) | $(election etcd median) |"
  echo "| election failover per run (ms) | $(election vigil per_run) | $(election etcd per_run) |"
  echo "| lease TTL granted | 1 s | ${etcd_ttl:-?} |"
  echo "| leader RSS idle, Vigil with TLS, etcd without (MiB) | $(rss vigil rss_idle_kib) | $(rss etcd rss_idle_kib) |"
  echo "| leader RSS after the put benchmark, the same (MiB) | $(rss vigil rss_after_puts_kib) | $(rss etcd rss_after_puts_kib) |"
  for setup in plain tls; do
    what="plain TCP and HTTP"
    [[ $setup == tls ]] && what="both with TLS"
    for f in rss_idle_kib rss_after_puts_kib; do
      label="idle"
      [[ $f == rss_after_puts_kib ]] && label="after 64-client puts"
      echo "| leader RSS $label, $what (MiB) | $(rss_setup_mib vigil $setup $f) | $(rss_setup_mib etcd $setup $f) |"
    done
  done
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
    cat "$work"/*.load.jsonl "$work"/*.rss.jsonl "$work"/rss_setups.jsonl "$work"/*.watch.json
    cat "$work"/*.election.jsonl 2>/dev/null || true
    echo '```'
  } >"$out"
fi
