#!/usr/bin/env bash
# Measures `dialogbot bench` on the CPU under each OpenMP wait policy x thread count x competing load,
# one run each, printing the 1-minute load average beside every line (a shared machine's other work
# changes the numbers as much as the settings do: compare lines of the same minute). docs/cpu.md.
#
#   scripts/cpu-threads-matrix.sh MODEL_DIR [CHATS] [NEW_TOKENS]
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${DIALOGBOT:-$root/bin/dialogbot}
model=${1:?usage: $0 MODEL_DIR [CHATS] [NEW_TOKENS]}
chats=${2:-32}
new=${3:-32}
for load in 0 1; do
  for threads in 2 1; do
    # An empty OMP_WAIT_POLICY is left alone by dialogbot, so libgomp keeps its default (spin, then sleep).
    for policy in "" PASSIVE; do
      row=$(OMP_WAIT_POLICY=$policy "$bin" bench --model "$model" --device cpu --concurrency "$chats" \
        --new-tokens "$new" --threads "$threads" --load "$load" 2>&1 | tail -1)
      echo "$(date -u +%H:%M:%S) loadavg=$(cut -d' ' -f1 /proc/loadavg) --load $load --threads $threads" \
        "OMP_WAIT_POLICY=${policy:-libgomp-default}: $row"
    done
  done
done
