#!/usr/bin/env bash
# Self-test of check_deps.sh: runs it on fixtures/tree (files that break each rule, and
# exempt files that look as if they did) and compares with fixtures/expected.txt.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
actual="$(bash "$here/check_deps.sh" "$here/fixtures/tree")"
code=$?
if [[ $code -ne 1 ]]; then
  echo "check_deps selftest: expected exit code 1, got $code"
  exit 1
fi
if ! diff -u "$here/fixtures/expected.txt" <(printf '%s\n' "$actual"); then
  echo "check_deps selftest: output differs from fixtures/expected.txt (- expected, + actual)"
  exit 1
fi
echo "check_deps selftest: OK"
