#!/usr/bin/env bash
# check-deps: pure modules stay pure, dependencies point one way, every module has a README,
# and no source line is wider than 100 columns (DESIGN.md "Layout", STYLE.md "Tests" 6).
#
# Usage: check_deps.sh [REPO_ROOT]   (default: the repository holding this script)
# Prints one line per violation, "path:line: rule: detail", and exits 1 if there is any.
#
# Pure modules (decisions, no effects): base raft store cluster sched vrrp health, whichever
# exist. Their files must not include or call anything that brings threads, sockets, files,
# real clocks, randomness or the environment; those enter through the interfaces of
# src/base (Clock, Rng, Env) so the simulator can replace them.
#
# Exemptions, each on purpose:
#   src/base/env.h, env.cc, env_posix.cc  Env is the one interface that wraps the file
#                                         system; its POSIX implementation does real I/O and
#                                         the simulator swaps it for env_mem.cc.
#   src/<pure>/io/                        the shell half of a module (vrrp/io opens raw
#                                         sockets, health/io runs probes; DESIGN.md).
#   tests/tidy/fixtures/                  files that break the rules on purpose (self-test).
set -uo pipefail
export LC_ALL=C.UTF-8  # so that grep counts columns in characters, not bytes

root="${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
cd "$root" || { echo "check_deps: no such directory: $root" >&2; exit 2; }

readonly kMaxColumns=100
readonly kPureModules=(base raft store cluster sched vrrp health)
readonly kExempt=(src/base/env.h src/base/env.cc src/base/env_posix.cc)

# Allowed `#include "M/..."` edges of each pure module (DESIGN.md: base ← raft ← store ←
# cluster ← sched; vrrp and health need only base).
declare -A kAllowed=(
  [base]="base"
  [raft]="base raft"
  [store]="base raft store"
  [cluster]="base raft store cluster"
  [sched]="base raft store cluster sched"
  [vrrp]="base vrrp"
  [health]="base health"
)

# Headers a pure module must not include (extended regex on the include target).
readonly kForbiddenInclude='^(thread|mutex|shared_mutex|condition_variable|future|semaphore|latch|barrier|stop_token|atomic|random|ctime|time\.h|fstream|filesystem|csignal|signal\.h|unistd\.h|fcntl\.h|poll\.h|netdb\.h|pthread\.h|dirent\.h|dlfcn\.h|sys/.*|netinet/.*|arpa/.*|linux/.*|boost/.*|asio.*|openssl/.*|spdlog/.*)$'

# Calls a pure module must not make (extended regex, comments stripped first).
readonly kForbiddenCall='(_clock[[:space:]]*::[[:space:]]*now|std::this_thread|sleep_for|sleep_until|\busleep[[:space:]]*\(|\bsleep[[:space:]]*\(|\bs?rand[[:space:]]*\(|random_device|\btime[[:space:]]*\(|clock_gettime|gettimeofday|\bgetenv[[:space:]]*\(|std::thread|std::jthread|std::async|\bfopen[[:space:]]*\(|\bsystem[[:space:]]*\()'

violations=0
report() {  # path line rule detail (line 0: the path as a whole)
  if [[ "$2" == 0 ]]; then
    echo "$1: $3: $4"
  else
    echo "$1:$2: $3: $4"
  fi
  violations=$((violations + 1))
}

is_exempt() {
  local f="$1" e
  for e in "${kExempt[@]}"; do
    [[ "$f" == "$e" ]] && return 0
  done
  [[ "$f" == src/*/io/* ]] && return 0
  return 1
}

sources_under() {  # dir...: C++ sources, sorted, fixtures left out
  find "$@" -type f \( -name '*.h' -o -name '*.cc' -o -name '*.hpp' -o -name '*.cpp' \) \
    -not -path 'tests/tidy/fixtures/*' 2>/dev/null | sort
}

# 1. Pure modules: includes and calls.
for m in "${kPureModules[@]}"; do
  [[ -d "src/$m" ]] || continue
  while IFS= read -r f; do
    is_exempt "$f" && continue
    while IFS=: read -r line text; do
      target=$(sed -E 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]([^>"]*)[>"].*/\1/' \
               <<<"$text")
      if [[ "$target" =~ $kForbiddenInclude ]]; then
        report "$f" "$line" "forbidden include in pure module $m" "<$target>"
      fi
      if [[ "$text" =~ \#[[:space:]]*include[[:space:]]*\" && "$target" == */* ]]; then
        dep="${target%%/*}"
        if [[ -d "src/$dep" && " ${kAllowed[$m]} " != *" $dep "* ]]; then
          report "$f" "$line" "dependency $m -> $dep not allowed" \
                 "\"$target\" (allowed: ${kAllowed[$m]})"
        fi
      fi
    done < <(grep -nE '^[[:space:]]*#[[:space:]]*include' "$f")
    while IFS=: read -r line text; do
      report "$f" "$line" "forbidden call in pure module $m" \
             "$(grep -oE "$kForbiddenCall" <<<"$text" | head -n1)"
    done < <(sed -E 's#//.*$##' "$f" | grep -nE "$kForbiddenCall")
  done < <(sources_under "src/$m")
done

# 2. Every module has a README.md.
for d in src/*/; do
  d="${d%/}"
  [[ -f "$d/README.md" ]] || report "$d" 0 "missing README.md" \
    "every src/<module>/ says in a README what it is for (STYLE.md)"
done

# 3. No line wider than 100 columns.
dirs=()
for d in src tests bench tools; do
  [[ -d "$d" ]] && dirs+=("$d")
done
if [[ ${#dirs[@]} -gt 0 ]]; then
  while IFS= read -r f; do
    while IFS=: read -r line _; do
      cols=$(sed -n "${line}p" "$f" | tr -d '\n' | wc -m)
      report "$f" "$line" "line longer than $kMaxColumns columns" "$cols columns"
    done < <(grep -naE ".{$((kMaxColumns + 1)),}" "$f")
  done < <(sources_under "${dirs[@]}")
fi

if [[ $violations -gt 0 ]]; then
  echo "check_deps: $violations violation(s); see tests/tidy/check_deps.sh for the rules"
  exit 1
fi
echo "check_deps: OK"
