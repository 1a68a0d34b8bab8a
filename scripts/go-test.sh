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
  echo "--- go test failed; each failing test's own messages (file:line), then the output around each failure (full log: $log):"
  # go test -v streams a test's messages, indented, after its "=== RUN" or
  # "=== CONT" line; a long log (a child's output) can bury them, so they are
  # gathered per test and shown when its "--- FAIL" line comes.
  awk '/^=== (RUN|CONT|PAUSE|NAME)/ { cur = $3; next }
       /^    [A-Za-z_0-9.]+\.go:[0-9]+: / { msgs[cur] = msgs[cur] "  " cur ": " substr($0, 5, 300) "\n"; next }
       /^ *--- FAIL: / { name = $3; if (name in msgs) printf "%s", msgs[name]; delete msgs[name] }' "$log" | head -100
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
