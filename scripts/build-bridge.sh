#!/usr/bin/env bash
# Builds bin/libcbridge.so (or $1) against the libtorch that find-libtorch.sh
# finds. libtorch is looked up now, when the bridge is built, not when make
# reads the Makefile: on a fresh machine `make test` installs libtorch first,
# and the build that follows must see it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/bin/libcbridge.so}
cxx=${CXX:-g++}
eval "$("$root/scripts/find-libtorch.sh" --shell)"
if [ "$TORCH_KIND" = none ]; then
  echo "libtorch not found. Install Debian's: sudo apt-get install libtorch-dev libopenblas0-openmp" >&2
  echo "or unpack the official archive into third_party/libtorch (make libtorch), or pip install torch." >&2
  exit 1
fi
echo "cbridge: using libtorch from $TORCH_KIND" >&2
# OpenMP: at::parallel_for is a header template that runs on the calling
# thread unless this build has -fopenmp, so the int8 kernel
# (cbridge/linear_w8.cpp) needs it to use --threads. Only where libtorch
# itself uses the system's libgomp (Debian's does): official archives and
# pip wheels bundle their own copy, and a second OpenMP runtime in the
# process would keep a second pool of threads that ignores set_num_threads.
omp=""
if ldd "$TORCH_LIBDIR/libtorch_cpu.so" 2>/dev/null | grep -q '^[[:space:]]*libgomp\.so\.1 '; then
  omp=-fopenmp
else
  echo "cbridge: libtorch brings its own OpenMP runtime: the int8 kernel runs on one thread" >&2
fi
mkdir -p "$(dirname "$out")"
# shellcheck disable=SC2086 # the flag lists are word lists
"$cxx" -O2 $omp -shared -fPIC -std=c++17 -D_GLIBCXX_USE_CXX11_ABI="$TORCH_ABI" $TORCH_DEFS "$root"/cbridge/*.cpp \
  $TORCH_INC -L"$TORCH_LIBDIR" -Wl,--no-as-needed $TORCH_LIBS -Wl,--as-needed -ldl -Wl,-rpath,"$TORCH_LIBDIR" \
  -o "$out.tmp"
mv "$out.tmp" "$out"
