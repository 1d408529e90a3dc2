#!/usr/bin/env bash
# Runs every test program in $BUILD/tests and the shell tests in tests/*.sh,
# sums their "N passed, N failed" lines and prints the total. Exits non-zero
# when any test failed or any program crashed.
set -u
BUILD=${BUILD:-build}
total_pass=0; total_fail=0; crashed=0
for t in "$BUILD"/tests/test_* tests/cli_*.sh; do
  [ -x "$t" ] || continue
  echo "== $t"
  out=$(mktemp)
  start=$(date +%s)
  BUILD="$BUILD" "$t" > "$out"
  rc=$?
  cat "$out"
  line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$out" | tail -1)
  rm -f "$out"
  if [ -z "$line" ]; then
    echo "!! $t exited with status $rc without a summary line"; crashed=$((crashed+1)); continue
  fi
  p=${line%% passed*}; f=${line#*, }; f=${f%% failed*}
  total_pass=$((total_pass+p)); total_fail=$((total_fail+f))
  [ $rc -ne 0 ] && [ "$f" -eq 0 ] && { echo "!! $t exited with status $rc"; crashed=$((crashed+1)); }
  echo "   ($(( $(date +%s) - start ))s)"
done
total_fail=$((total_fail+crashed))
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
