#!/usr/bin/env bash
# Prepares what a lent GPU machine needs (it has torch 2.x with CUDA and
# Python, but no Go and no ../shared): the Go binaries and the test models,
# under 64 MiB in all. Then, with the device tool:
#   carry: bin/dialogbot bin/torch.test build/gpu   command: bash scripts/gpu-check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
shared=${DIALOGBOT_SHARED:-../shared}
py=${PYTHON:-/usr/bin/python3}
g=build/gpu
rm -rf $g && mkdir -p $g/testmodels $g/shared/models/tiny-gpt2 $g/shared/models/nano-ru
go build -ldflags='-s -w' -o bin/dialogbot .
go test -c -ldflags='-s -w' -o bin/torch.test ./torch
# nano-ru's checkpoint is fp16: exported in fp16 it is half the size, and the
# bridge widens it to fp32 losslessly (the tests load with dtype float32).
$py model/python/export.py --hf $shared/models/nano-ru --out $g/testmodels/nano-ru --dtype float16 >/dev/null
$py model/python/export.py --hf $shared/models/tiny-gpt2 --out $g/testmodels/tiny-gpt2 >/dev/null
rm $g/testmodels/tiny-gpt2/tokenizer.json # the torch tests do not read it
cp $shared/models/tiny-gpt2/golden.json $g/shared/models/tiny-gpt2/
cp $shared/models/nano-ru/golden.json $g/shared/models/nano-ru/
cp $shared/bench/hf_generate_baseline.py $g/
# The CPU's greedy replies, which CUDA must reproduce.
printf '%s\n' "/reset" "Доктор, у меня болит голова." "/reset" "Сколько будет дважды два?" "/reset" \
  "Привет, как дела?" "/reset" "Где ты был вчера?" "как дела?" > $g/chat-in.txt
bin/dialogbot chat --model $g/testmodels/nano-ru --greedy --device cpu < $g/chat-in.txt > $g/chat-cpu.txt 2>/dev/null
du -sb bin/dialogbot bin/torch.test $g | awk '{s+=$1; print} END {printf "total %.1f MiB (limit 64)\n", s/1048576}'
