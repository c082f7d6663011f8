#!/usr/bin/env bash
# Runs the unit tests (cmocka, under ASan+UBSan) and the integration tests (node:test against
# build/asan/herald), then prints one summary line: "N passed, M failed".
set -uo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}
passed=0
failed=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# tally NAME RC PASS_SED FAIL_SED: adds the counts found in $log; a non-zero exit with no
# failure counted (a sanitizer abort, a crash) counts as one failure.
tally() {
  local name=$1 rc=$2 p f
  cat "$log"
  p=$(sed -n "$3" "$log" | tail -1)
  f=$(sed -n "$4" "$log" | tail -1)
  passed=$((passed + ${p:-0}))
  failed=$((failed + ${f:-0}))
  if [ "$rc" -ne 0 ] && [ "${f:-0}" -eq 0 ]; then
    echo "test.sh: $name exited $rc without reporting a failure"
    failed=$((failed + 1))
  fi
}

if [ "$what" = all ] || [ "$what" = unit ]; then
  for bin in build/asan/tests/test_*; do
    [ -x "$bin" ] || continue
    "$bin" >"$log" 2>&1
    tally "$bin" $? 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p'
  done
fi

if [ "$what" = all ] || [ "$what" = integration ]; then
  export HERALD_BIN=${HERALD_BIN:-$PWD/build/asan/herald}
  # HERALD_TEST_FILES narrows the files (make test-valgrind leaves the load tests to ASan).
  files=${HERALD_TEST_FILES:-}
  [ -n "$files" ] || files=$(cd tests/integration && echo ./*.test.mjs)
  (cd tests/integration && node --test --test-concurrency=1 --test-reporter=spec \
     --test-timeout=180000 $files) >"$log" 2>&1
  tally "integration suite" $? 's/^ℹ pass \([0-9]*\)/\1/p' 's/^ℹ fail \([0-9]*\)/\1/p'
fi

echo
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
