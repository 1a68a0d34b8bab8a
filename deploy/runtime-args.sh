#!/usr/bin/env bash
# Prints the extra podman flags this machine needs to run containers, as two
# lines: flags before the sub-command, then flags for `run` and `build`. Both
# are empty where podman works as it comes, or with ENGINE=docker.
# Usage: { read -r global; read -r local; } < <(deploy/runtime-args.sh IMAGE)
#        podman $global run $local ...   (unquoted: no flag holds a space)
#
# Seen on the development VM (Debian 12, podman 4.3.1, kernel 6.18, cgroups v1
# with a cgroup2 hierarchy holding hugetlb), see docs/deploy.md:
#   crun: "cgroups in hybrid mode not supported, drop all controllers from cgroupv2"
#   runc with podman's default rlimits: "error setting rlimit type 7 (then 6):
#   operation not permitted"
# runc (apt-get install runc) with lower nofile and nproc limits runs.
# GLOBAL_ARGS and RUN_ARGS, when set, are printed as they are.
# shellcheck disable=SC2086 # the flags are split on spaces on purpose
set -euo pipefail
image=${1:?usage: runtime-args.sh IMAGE}
engine=${ENGINE:-podman}
if [ -n "${GLOBAL_ARGS+x}${RUN_ARGS+x}" ]; then
  printf '%s\n%s\n' "${GLOBAL_ARGS:-}" "${RUN_ARGS:-}"
  exit 0
fi
works() { "$engine" $1 run --rm --network=none $2 --entrypoint true "$image" >/dev/null 2>&1; }
if [ "$engine" != podman ] || works "" ""; then
  printf '\n\n'
  exit 0
fi
nofile=$(ulimit -Hn)
if [ "$nofile" = unlimited ] || [ "$nofile" -gt 16384 ]; then nofile=16384; fi
global="--runtime runc" local="--ulimit nofile=$nofile:$nofile --ulimit nproc=4096:4096"
if ! works "$global" "$local"; then
  echo "runtime-args.sh: podman cannot run $image here, neither as it comes nor with $global $local:" >&2
  "$engine" $global run --rm --network=none $local --entrypoint true "$image" >&2 || true
  exit 1
fi
printf '%s\n%s\n' "$global" "$local"
