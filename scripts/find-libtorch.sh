#!/usr/bin/env bash
# Finds libtorch for building cbridge and prints its settings: Make variable
# assignments, or with --shell, shell assignments (scripts/build-bridge.sh).
# Order: third_party/libtorch (the official archive, CUDA or CPU), the libtorch
# inside an installed pip torch, then Debian's libtorch-dev under /usr.
# PYTHON may name the Python to ask for a pip torch.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
py=${PYTHON:-python3}
shell=0
[ "${1:-}" = --shell ] && shell=1

# put NAME VALUE prints one setting in the asked syntax.
put() {
  if [ $shell = 1 ]; then printf '%s=%q\n' "$1" "$2"; else printf '%s := %s\n' "$1" "$2"; fi
}

emit() { # kind include-dir lib-dir abi
  local kind=$1 inc=$2 lib=$3 abi=$4 libs="-ltorch -ltorch_cpu -lc10" defs=""
  if [ -e "$lib/libtorch_cuda.so" ]; then
    libs="$libs -ltorch_cuda -lc10_cuda"
    defs="-DCBRIDGE_CUDA $(cuda_includes "$lib")"
  fi
  put TORCH_KIND "$kind"
  put TORCH_INC "-I$inc -I$inc/torch/csrc/api/include"
  put TORCH_LIBDIR "$lib"
  put TORCH_LIBS "$libs"
  put TORCH_ABI "$abi"
  put TORCH_DEFS "$defs"
}

# cuda_includes finds the CUDA runtime headers that CUDA graph capture needs:
# the toolkit's (nvcc's), or those pip's nvidia-* packages install beside torch.
cuda_includes() {
  local dirs=() d
  if command -v nvcc >/dev/null; then dirs+=("$(dirname "$(dirname "$(command -v nvcc)")")/include"); fi
  dirs+=(/usr/local/cuda/include)
  for d in "$1"/../../nvidia/*/include "$1"/../../nvidia/*/*/include; do dirs+=("$d"); done
  for d in "${dirs[@]}"; do [ -e "$d/cuda_runtime_api.h" ] && printf -- '-I%s ' "$d"; done
}

# abi_of reports whether a libtorch was built with the C++11 string ABI,
# which every object linked against it must match.
abi_of() {
  if nm -DC "$1/libc10.so" 2>/dev/null | grep -q '__cxx11'; then echo 1; else echo 0; fi
}

tp="$root/third_party/libtorch"
if [ -e "$tp/lib/libtorch.so" ]; then
  emit "third_party/libtorch" "$tp/include" "$tp/lib" "$(abi_of "$tp/lib")"
  exit 0
fi
for p in "$py" python3 /usr/bin/python3; do
  t=$(cd / && "$p" -c 'import torch,os;print(os.path.dirname(torch.__file__))' 2>/dev/null) || continue
  case "$t" in /usr/lib/python3/dist-packages/*) continue ;; esac # Debian's: found below as /usr
  if [ -e "$t/lib/libtorch.so" ] && [ -d "$t/include/torch" ]; then
    abi=$(cd / && "$p" -c 'import torch;print(int(torch.compiled_with_cxx11_abi()))')
    emit "pip torch ($t)" "$t/include" "$t/lib" "$abi"
    exit 0
  fi
done
deb=/usr/lib/$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
if [ -e "$deb/libtorch.so" ] && [ -e /usr/include/torch/script.h ]; then
  emit "Debian libtorch-dev (/usr)" /usr/include "$deb" "$(abi_of "$deb")"
  exit 0
fi
put TORCH_KIND none
