#!/usr/bin/env bash
# The relay image from a static relay-server binary: the binary alone in an empty image (no
# base image is pulled), run as user 65532, every timestamp at the epoch so that the same
# binary always gives the same digest.
#
#   scripts/relay-image.sh BINARY IMAGE [ARCH]
#
# BINARY is a static relay-server (scripts/relay-static.sh builds one); IMAGE the name to commit
# to buildah's local storage; ARCH the image's architecture (amd64, arm64; default: this
# machine's). With RELAY_MANIFEST=NAME the image is also added to that manifest list, for a
# multi-arch push (the release workflow). Prints the image's ID.
set -euo pipefail
binary=${1:?usage: scripts/relay-image.sh BINARY IMAGE [ARCH]}
image=${2:?usage: scripts/relay-image.sh BINARY IMAGE [ARCH]}
arch=${3:-$(uname -m | sed 's/x86_64/amd64/; s/aarch64/arm64/')}

# A dynamically linked binary would start nowhere: the image has no libc.
if readelf -l "$binary" | grep -q 'INTERP'; then
    echo "scripts/relay-image.sh: $binary is dynamically linked; the image needs a static one" >&2
    exit 1
fi

version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$(dirname "$0")/../Cargo.toml" | head -1)
ctr=$(buildah from --arch "$arch" --os linux scratch)
trap 'buildah rm "$ctr" >/dev/null 2>&1 || true' EXIT
buildah copy --chmod 0555 --chown 0:0 "$ctr" "$binary" /relay-server >/dev/null
# A numeric user, so that runAsNonRoot can check it without an /etc/passwd. The relay listens
# on the pod's loopback: only a port-forward reaches it.
buildah config \
    --user 65532:65532 \
    --env RELAY_LISTEN=127.0.0.1:7000 \
    --port 7000 \
    --entrypoint '["/relay-server"]' \
    --cmd '[]' \
    --label org.opencontainers.image.title=kftray-relay \
    --label org.opencontainers.image.description="kftray's in-cluster relay" \
    --label org.opencontainers.image.source=https://github.com/kftray/kftray-cli \
    --label org.opencontainers.image.licenses="MIT OR Apache-2.0" \
    --label org.opencontainers.image.version="$version" \
    "$ctr"
buildah commit --quiet --timestamp 0 --omit-history "$ctr" "$image"
if [ -n "${RELAY_MANIFEST:-}" ]; then
    buildah manifest add "$RELAY_MANIFEST" "$image" >/dev/null
fi
