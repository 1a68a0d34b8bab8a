#!/usr/bin/env bash
# Runs go test with the given flags and packages, shows each package's result,
# every failure in full, and at the end how many tests skipped and why (most
# often ../shared, the reference models and data, is absent).
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$root/build"
log="$root/build/go-test.log"
go test -count=1 -v "$@" >"$log" 2>&1
rc=$?
grep -E '^(ok|FAIL|\?|panic:)' "$log" | grep -v 'no test files'
if [ $rc -ne 0 ]; then
  echo "--- go test failed; the failing tests' output (full log: $log):"
  grep -E -B2 -A30 '^\s*--- FAIL|^panic:|^FAIL\s|build failed|\[setup failed\]' "$log" | head -400
fi
passed=$(grep -cE '^\s*--- PASS' "$log")
failed=$(grep -cE '^\s*--- FAIL' "$log")
skipped=$(grep -cE '^\s*--- SKIP' "$log")
if [ "$skipped" -gt 0 ]; then
  echo "skipped tests and why:"
  # go test -v prints a test's t.Skip message on the line before its "--- SKIP".
  grep -E -B1 '^\s*--- SKIP' "$log" | grep -vE '^\s*--- |^--$|^=== ' | sed -E 's/^\s+//; s/^[a-z_0-9]+\.go:[0-9]+: //' | sort | uniq -c | sort -rn
fi
echo "go test: $passed passed, $failed failed, $skipped skipped"
exit $rc
