#!/usr/bin/env bash
# Builds the dialogbot container image: deploy/build-image.sh [cpu|cuda]
#
# cpu (default): deploy/Dockerfile.cpu, tagged dialogbot:cpu. Without BASE and
#   GO_IMAGE it first makes local base images (deploy/base-image.sh: debootstrap
#   from the Debian mirror, and this machine's Go), so it needs no registry;
#   with a registry: BASE=docker.io/library/debian:bookworm-slim
#   GO_IMAGE=docker.io/library/golang:1.26-bookworm deploy/build-image.sh cpu
# cuda: deploy/Dockerfile.cuda, tagged dialogbot:cuda; needs a registry (the
#   nvidia/cuda and golang images) and download.pytorch.org.
#
# Env: ENGINE (podman, or docker), TAG, GO_IMAGE, GOPROXY; cpu: BASE; cuda:
# CUDA_VERSION and LIBTORCH_URL (a matching pair, see deploy/Dockerfile.cuda).
# The build uses the host's network (--network=host) for the Debian mirror, as
# apt on this machine does.
set -euo pipefail
cd "$(dirname "$0")/.."
kind=${1:-cpu}
engine=${ENGINE:-podman}
tag=${TAG:-dialogbot:$kind}
args=(--network=host -f "deploy/Dockerfile.$kind" -t "$tag")
[ "$engine" = podman ] && args+=(--format docker) # HEALTHCHECK is a Docker-format field
# Go modules: with podman, from this machine's module cache mounted read-only as
# a file proxy (no network, no TLS: here HTTPS goes through an egress proxy whose
# CA the image does not trust); else GOPROXY, or the Dockerfile's proxy.golang.org.
modcache=$(go env GOMODCACHE 2>/dev/null || true)/cache/download
if [ -z "${GOPROXY:-}" ] && [ "$engine" = podman ] && [ -d "$modcache" ]; then
  # A module missing there is fetched from proxy.golang.org (where the network allows).
  args+=(-v "$modcache:/goproxy:ro" --build-arg "GOPROXY=file:///goproxy,https://proxy.golang.org,direct")
elif [ -n "${GOPROXY:-}" ]; then
  args+=(--build-arg "GOPROXY=$GOPROXY")
fi

case "$kind" in
cpu)
  if [ -z "${BASE:-}" ] || [ -z "${GO_IMAGE:-}" ]; then
    mapfile -t local_images < <(ENGINE=$engine deploy/base-image.sh)
    BASE=${BASE:-${local_images[0]}} GO_IMAGE=${GO_IMAGE:-${local_images[1]}}
  fi
  args+=(--build-arg "BASE=$BASE" --build-arg "GO_IMAGE=$GO_IMAGE")
  ;;
cuda)
  [ -n "${CUDA_VERSION:-}" ] && args+=(--build-arg "CUDA_VERSION=$CUDA_VERSION")
  [ -n "${LIBTORCH_URL:-}" ] && args+=(--build-arg "LIBTORCH_URL=$LIBTORCH_URL")
  [ -n "${GO_IMAGE:-}" ] && args+=(--build-arg "GO_IMAGE=$GO_IMAGE")
  ;;
*)
  echo "usage: $0 [cpu|cuda]" >&2
  exit 2
  ;;
esac
# Extra flags where podman needs them here (deploy/runtime-args.sh says why).
global="" local=""
if [ -n "${BASE:-}" ]; then
  { read -r global; read -r local; } < <(ENGINE=$engine deploy/runtime-args.sh "$BASE")
fi
echo "$engine $global build $local ${args[*]} ." >&2
# shellcheck disable=SC2086 # the flags hold no spaces
"$engine" $global build $local "${args[@]}" .
"$engine" image inspect --format '{{.Id}} {{.Size}}' "$tag" |
  awk -v t="$tag" '{printf "built %s: id %.12s, %.0f MiB\n", t, $1, $2/1048576}'
