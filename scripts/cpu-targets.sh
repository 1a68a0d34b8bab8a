#!/usr/bin/env bash
# Measures issue 12's CPU targets (docs/cpu.md) with the default settings:
# GPT-2-small int8 at 1 chat against eager PyTorch's int8 decode step in
# the same minutes, then idle against one busy process (`bench --load 1`),
# and nano-ru at 32 chats in int8 and in float32.
#
#   scripts/cpu-targets.sh GPT2_SMALL_DIR NANO_RU_DIR [SHARED_DIR]
#
# Both models exported with both copies, e.g.
#   /usr/bin/python3 model/python/export.py --random-shape gpt2-small \
#     --tokenizer ../shared/tokenizers/ru-tokenizer.json --quantize both --out /tmp/m-g2s
#   /usr/bin/python3 model/python/export.py --hf ../shared/models/nano-ru --quantize both --out /tmp/nano
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
g2s=${1:?GPT-2-small export dir}
nano=${2:?nano-ru export dir}
shared=$(cd "${3:-$root/../shared}" && pwd)
bin=$root/bin/dialogbot
bench() { # model chats [dtype] [extra flags]
  "$bin" bench --model "$1" --device cpu --concurrency "$2" --requests $(($2 < 4 ? 8 : 2 * $2)) \
    --warmup $(($2 < 4 ? 2 : 1)) --new-tokens 32 --threads 2 --dtype "${3:-auto}" ${4:-} 2>&1 |
    tail -1 | awk '{print $4" tok/s, "$7" ms/token"}'
}
echo "== start $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
for _ in 1 2 3; do
  (cd / && /usr/bin/python3 "$shared/bench/eager_decode_step.py" 2>&1 | grep "int8-dynamic threads 2 batch 1")
  echo "dialogbot GPT-2-small int8, 1 chat: $(bench "$g2s" 1)"
done
for _ in 1 2; do
  echo "GPT-2-small 1 chat: idle $(bench "$g2s" 1) | one busy process $(bench "$g2s" 1 auto '--load 1')"
  echo "nano-ru 32 chats: idle $(bench "$nano" 32) | one busy process $(bench "$nano" 32 auto '--load 1')"
  echo "nano-ru 32 chats float32: $(bench "$nano" 32 float32)"
done
echo "== end $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
