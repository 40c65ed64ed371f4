#!/usr/bin/env bash
# Build (once) and import the container base for the image test: Debian 12
# from Debian's package mirror with mmdebstrap, since no container registry
# is reachable here. Prints the image name.
#
#   infra/deploy/base.sh        -> localhost/session-bridge-base:bookworm-<hash>
#
# The root filesystem tarball is cached in ~/.cache/session-bridge/deploy/,
# keyed by the recipe below: a changed recipe builds a new one (~1-2 min).
set -euo pipefail

cache=${SB_DEPLOY_CACHE:-$HOME/.cache/session-bridge/deploy}
# Essential packages + CA certificates, merged /usr without the usrmerge
# package (which drags in perl), no documentation, manuals or locales: about
# what debian:bookworm-slim holds.
recipe=(
  --variant=essential --include=ca-certificates
  --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr
  --dpkgopt='path-exclude=/usr/share/man/*'
  --dpkgopt='path-exclude=/usr/share/info/*'
  --dpkgopt='path-exclude=/usr/share/doc/*'
  --dpkgopt='path-include=/usr/share/doc/*/copyright'
  --dpkgopt='path-exclude=/usr/share/locale/*'
  --dpkgopt='path-include=/usr/share/locale/locale.alias'
  --dpkgopt='path-exclude=/usr/share/lintian/*'
  bookworm
)
hash=$(printf '%s\n' "${recipe[@]}" | sha256sum | cut -c1-12)
image=localhost/session-bridge-base:bookworm-$hash
tar=$cache/base-bookworm-$hash.tar

if podman image exists "$image"; then
  echo "$image"
  exit 0
fi
mkdir -p "$cache"
if [ ! -s "$tar" ]; then
  echo "infra/deploy/base.sh: building $tar with mmdebstrap" >&2
  log=$cache/mmdebstrap-$hash.log
  # mmdebstrap picks the output format from the name: keep ".tar" last.
  tmp=$cache/.tmp-$hash.tar
  if ! mmdebstrap "${recipe[@]}" "$tmp" >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    rm -rf "$tmp"
    echo "infra/deploy/base.sh: mmdebstrap failed (log: $log)" >&2
    exit 1
  fi
  mv "$tmp" "$tar"
fi
podman import --quiet "$tar" "$image" >/dev/null
echo "$image"
