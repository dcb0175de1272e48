#!/usr/bin/env bash
# Builds the gateway image (deploy/docker/Dockerfile.gateway) where Docker
# cannot run and no image registry is reachable: the base image
# debian:bookworm-slim is made with debootstrap from Debian's mirror, and
# buildah runs every RUN step in a chroot (no container runtime needed).
#
#   deploy/docker/buildah-build.sh CACHE_DIR TAG
#
# CACHE_DIR keeps the debootstrapped base (a tar file, about 60 MB) and a
# private buildah storage, so a second build starts from the cached base.
# DEBIAN_MIRROR overrides the mirror (default: the first deb.debian.org-style
# URI of this machine's apt sources, else http://deb.debian.org/debian).
# Needs root and the packages debootstrap and buildah. Prints the image ID.
#
# The image is then used with the same storage:
#   buildah --root CACHE_DIR/storage --runroot CACHE_DIR/run \
#     run --isolation chroot "$(buildah ... from TAG)" -- iotgw --version
set -euo pipefail
[ $# -eq 2 ] || { sed -n '2,17p' "$0" >&2; exit 2; }
cache=$1
tag=$2
root=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)
for p in debootstrap buildah; do
  command -v "$p" >/dev/null || { echo "buildah-build: $p is not installed (package $p)" >&2; exit 1; }
done

B=(buildah --root "$cache/storage" --runroot "$cache/run" --storage-driver vfs)
base_tar="$cache/debian-bookworm-minbase.tar"
base_ref=docker.io/library/debian:bookworm-slim

if [ ! -s "$base_tar" ]; then
  mirror="${DEBIAN_MIRROR:-}"
  if [ -z "$mirror" ]; then
    mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null |
      grep -oE 'https?://[^ ]+/debian/?( |$)' | grep -v security | head -1 | tr -d ' ' || true)
    mirror="${mirror:-http://deb.debian.org/debian}"
  fi
  echo "buildah-build: debootstrap --variant=minbase bookworm from $mirror" >&2
  rm -rf "$cache/rootfs.tmp"
  debootstrap --variant=minbase bookworm "$cache/rootfs.tmp" "$mirror" >"$cache/debootstrap.log" 2>&1 ||
    { tail -5 "$cache/debootstrap.log" >&2; exit 1; }
  # What the slim image leaves out and nothing here needs: apt's lists and
  # caches.
  rm -rf "$cache/rootfs.tmp/var/lib/apt/lists/"* "$cache/rootfs.tmp/var/cache/apt/"*.bin
  tar -C "$cache/rootfs.tmp" --numeric-owner -cf "$base_tar.tmp" .
  mv "$base_tar.tmp" "$base_tar"
  rm -rf "$cache/rootfs.tmp"
  # A new base: images built on the old one are stale.
  rm -rf "$cache/storage" "$cache/run"
fi

# Working containers left by an interrupted build: the storage is this
# script's own, so none of them is in use.
"${B[@]}" rm --all >/dev/null 2>&1 || true

if ! "${B[@]}" inspect --type image "$base_ref" >/dev/null 2>&1; then
  echo "buildah-build: importing the base as $base_ref" >&2
  ctr=$("${B[@]}" from scratch)
  mnt=$("${B[@]}" mount "$ctr")
  tar -C "$mnt" --numeric-owner -xf "$base_tar"
  "${B[@]}" umount "$ctr" >/dev/null
  "${B[@]}" config --cmd /bin/bash --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$ctr"
  "${B[@]}" commit --rm -q "$ctr" "$base_ref" >/dev/null
fi

echo "buildah-build: building $tag from $root (context filtered by .dockerignore)" >&2
"${B[@]}" bud --isolation chroot --pull=never --layers=false -q \
  -f "$root/deploy/docker/Dockerfile.gateway" -t "$tag" "$root"
