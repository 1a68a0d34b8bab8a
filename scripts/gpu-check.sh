#!/usr/bin/env bash
# Runs on a lent GPU machine (see gpu-prepare.sh): builds the bridge against
# the machine's torch, checks CUDA parity, and benchmarks GPU against CPU and
# against transformers `generate`, in one go. Results go to $OUT.
set -u
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
g=build/gpu
T=$(python3 -c 'import torch,os;print(os.path.dirname(torch.__file__))')
python3 -c 'import torch;print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name(0))'
nproc; lscpu | grep -E '^(Model name|Socket|Thread|Core)'
echo "cpu flags of note: $(grep -o -w -E 'avx512f|avx512_vnni|avx512_bf16|amx_bf16|amx_int8' /proc/cpuinfo | sort -u | tr '\n' ' ')"
step() { echo "== $* ($(date +%T))"; }

# The benchmark models are made here, with this machine's torch, while the bridge builds and the
# parity tests run (nothing timed runs before they are done).
(python3 model/python/export.py --random-shape gpt2-small --tokenizer $g/testmodels/nano-ru/tokenizer.json --out /tmp/g2s &&
  python3 model/python/export.py --random-shape gpt2-small --quantize int8 --tokenizer $g/testmodels/nano-ru/tokenizer.json \
    --out /tmp/g2s-int8) > "$OUT/export.log" 2>&1 &
export_pid=$!

step build bridge
# With CUDA graphs (TORCH_DEFS=-DCBRIDGE_CUDA, from find-libtorch.sh), and
# without them if that does not compile.
PYTHON=python3 scripts/find-libtorch.sh > "$OUT/torch.mk"; cat "$OUT/torch.mk"
eval "$(sed -E 's/^([A-Z_]+) := (.*)$/\1="\2"/' "$OUT/torch.mk")"
build_bridge() {
  g++ -O2 -shared -fPIC -std=c++17 -D_GLIBCXX_USE_CXX11_ABI=$TORCH_ABI "$@" cbridge/*.cpp $TORCH_INC \
    -L$TORCH_LIBDIR -Wl,--no-as-needed $TORCH_LIBS -Wl,--as-needed -ldl -Wl,-rpath,$TORCH_LIBDIR -o bin/libcbridge.so
}
if ! time build_bridge $TORCH_DEFS 2> "$OUT/bridge-build.log"; then
  tail -20 "$OUT/bridge-build.log"; echo "BRIDGE WITH CUDA GRAPHS DID NOT BUILD; building without"
  build_bridge || exit 1
fi
export DIALOGBOT_CBRIDGE=$PWD/bin/libcbridge.so LD_LIBRARY_PATH=$T/lib

step parity tests on cuda
DIALOGBOT_SHARED=$g/shared DIALOGBOT_TESTMODELS=$PWD/$g/testmodels DIALOGBOT_TEST_DEVICE=cuda DIALOGBOT_REQUIRE_TORCH=1 \
  timeout 120 bin/torch.test -test.v -test.count=1 2>&1 | grep -E '^(--- |ok|FAIL|PASS)|module_test' | tee "$OUT/torch-test-cuda.txt"

step chat greedy cuda vs cpu
timeout 60 bin/dialogbot chat --model $g/testmodels/nano-ru --greedy --device cuda < $g/chat-in.txt > "$OUT/chat-cuda.txt" 2> "$OUT/chat-cuda.err"
if diff $g/chat-cpu.txt "$OUT/chat-cuda.txt"; then echo "CHAT PARITY OK"; else echo "CHAT PARITY DIFFERS"; fi
cat "$OUT/chat-cuda.txt"; tail -3 "$OUT/chat-cuda.err"

step wait for the exports
timeout 180 tail --pid=$export_pid -f /dev/null; grep -E '^wrote|Error|error' "$OUT/export.log"

step bench ours cuda fp32, CUDA graphs on
timeout 120 bin/dialogbot bench --model /tmp/g2s --device cuda --concurrency 1,8,64,256 --json "$OUT/bench-cuda-fp32.json" 2>&1 | tail -5
step bench ours cuda bf16, CUDA graphs on
timeout 60 bin/dialogbot bench --model /tmp/g2s --device cuda --dtype bfloat16 --concurrency 1,256 --json "$OUT/bench-cuda-bf16.json" 2>&1 | tail -2
step bench ours cuda, 6-turn conversations, reusing the cached prompt and not
for reuse in "" --no-reuse; do
  timeout 60 bin/dialogbot bench --model /tmp/g2s --device cuda --concurrency 8 --turns 6 --prompt-tokens 24 --new-tokens 16 \
    --requests 96 --warmup 48 $reuse --json "$OUT/bench-cuda-turns${reuse}.json" 2>&1 | tail -1 | sed "s/^/reuse${reuse:-on} /"
done
if [ -n "${SKIP_CPU:-}" ]; then step done; exit 0; fi
step which CPU matvec is fastest here, 2 threads
timeout 90 python3 scripts/cpu-linear-probe.py 2
cpu_bench() { # NAME THREADS MODEL [ARGS...]: one chat, 3 replies of 40 tokens
  local name=$1 threads=$2 model=$3; shift 3
  timeout 60 bin/dialogbot bench --model "$model" --device cpu --threads "$threads" --concurrency 1 --requests 3 --warmup 1 \
    --json "$OUT/bench-$name.json" "$@" > "$OUT/bench-$name.txt" 2>&1
  echo "$name: $(grep -o 'quantized engine [A-Z0-9]*' "$OUT/bench-$name.txt") $(tail -1 "$OUT/bench-$name.txt")"
}
step bench ours cpu, 2 threads: fp32, bf16, int8
cpu_bench cpu2-fp32 2 /tmp/g2s
cpu_bench cpu2-bf16 2 /tmp/g2s --dtype bfloat16
cpu_bench cpu2-int8 2 /tmp/g2s-int8
DIALOGBOT_JIT_OPTIMIZE=1 cpu_bench cpu2-int8-jitopt 2 /tmp/g2s-int8
step bench ours cpu, 16 threads: int8, bf16
cpu_bench cpu16-int8 16 /tmp/g2s-int8
cpu_bench cpu16-bf16 16 /tmp/g2s --dtype bfloat16
if [ -n "${SKIP_HF:-}" ]; then step done; exit 0; fi

step transformers baseline, same machine
timeout 150 python3 $g/hf_generate_baseline.py --device cuda --batch 1,8,64,256 --modes greedy --runs 3 | tee "$OUT/hf-cuda.jsonl"
timeout 60 python3 $g/hf_generate_baseline.py --device cpu --threads 2 --batch 1 --modes greedy --runs 2 | tee "$OUT/hf-cpu2.jsonl"
step ratios
cat "$OUT/hf-cuda.jsonl" "$OUT/hf-cpu2.jsonl" > "$OUT/hf-all.jsonl"
timeout 60 bin/dialogbot bench --model /tmp/g2s --device cuda --concurrency 1,8,64,256 --baseline "$OUT/hf-all.jsonl" --json "$OUT/bench-cuda-vs-hf.json" 2>&1 | tail -5
step done
