#!/usr/bin/env bash
# Runs build/herald under valgrind for `make test-valgrind`: any leak or memory error makes the
# exit code 77, which fails the test that started it.
here=$(cd "$(dirname "$0")/.." && pwd)
exec valgrind --quiet --leak-check=full --show-leak-kinds=definite,indirect \
  --errors-for-leak-kinds=definite,indirect --error-exitcode=77 \
  "$here/build/herald" "$@"
