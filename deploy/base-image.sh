#!/usr/bin/env bash
# Makes the two base images deploy/Dockerfile.cpu starts from, for a machine
# that reaches no image registry but does reach a Debian mirror:
#   localhost/dialogbot-base:bookworm  Debian bookworm (minbase) made with debootstrap
#   localhost/dialogbot-go:VERSION     this machine's Go toolchain at /usr/local/go
# An image that already exists is kept. Needs root, podman and debootstrap
# (apt-get install podman buildah debootstrap).
#
# Env: MIRROR (default: the first deb.debian.org-style URI apt uses here, else
# http://deb.debian.org/debian), ENGINE (podman), BASE_TAG, GO_TAG.
# Prints the two image names, one per line, on stdout.
set -euo pipefail
engine=${ENGINE:-podman}
goroot=$(go env GOROOT)
gover=$(go env GOVERSION) # go1.26.8
base_tag=${BASE_TAG:-localhost/dialogbot-base:bookworm}
go_tag=${GO_TAG:-localhost/dialogbot-go:${gover#go}}

# apt_mirror is the Debian mirror apt uses on this machine, so debootstrap
# reaches the same (allowed, maybe local) server.
apt_mirror() {
  local m
  m=$(grep -rhoE '^(URIs:|deb) +https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null |
    awk '{print $2}' | head -1)
  echo "${m:-http://deb.debian.org/debian}"
}

exists() { "$engine" image exists "$1" 2>/dev/null || "$engine" image inspect "$1" >/dev/null 2>&1; }

make_base() {
  local mirror=${MIRROR:-$(apt_mirror)} dir
  dir=$(mktemp -d /var/tmp/dialogbot-rootfs.XXXXXX)
  trap 'rm -rf "$dir"' RETURN
  echo "debootstrap bookworm from $mirror" >&2
  debootstrap --variant=minbase bookworm "$dir" "$mirror" >"$dir.log" 2>&1 ||
    { tail -20 "$dir.log" >&2; return 1; }
  rm -f "$dir.log"
  # The same suites a debian:bookworm image has: security fixes too.
  cat >"$dir/etc/apt/sources.list" <<EOF
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb ${mirror%/debian*}/debian-security bookworm-security main
EOF
  rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/*
  tar --numeric-owner -C "$dir" -c . |
    "$engine" import --change 'CMD ["/bin/bash"]' --change 'ENV LANG=C.UTF-8' - "$base_tag" >/dev/null
}

make_go() {
  echo "Go toolchain $gover from $goroot" >&2
  tar --numeric-owner -C "$goroot" --transform 's,^\.,usr/local/go,' -c . |
    "$engine" import --change 'ENV PATH=/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' - "$go_tag" >/dev/null
}

exists "$base_tag" || make_base
exists "$go_tag" || make_go
echo "$base_tag"
echo "$go_tag"
