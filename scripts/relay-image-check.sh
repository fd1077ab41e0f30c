#!/usr/bin/env bash
# The relay image, built here as the release builds it and run once under podman: the same
# binary gives the same digest twice, the image holds one file and runs as user 65532, the
# relay starts and answers a session (its own probe, run inside the container as a kubelet's
# exec probe would), and it refuses to serve when started as root.
set -euo pipefail
cd "$(dirname "$0")/.."

binary=$(bash scripts/relay-static.sh)
scratch=$(mktemp -d)
name=kftray-relay-check-$$
cleanup() {
    podman rm --force --time 0 "$name" >/dev/null 2>&1 || true
    buildah rmi kftray-relay-check:a kftray-relay-check:b >/dev/null 2>&1 || true
    rm -rf "$scratch"
}
trap cleanup EXIT

bash scripts/relay-image.sh "$binary" kftray-relay-check:a
bash scripts/relay-image.sh "$binary" kftray-relay-check:b
# The digest a registry would give: of the manifest as pushed.
digest() {
    buildah push --quiet --digestfile "$scratch/$1.digest" "kftray-relay-check:$1" \
        "oci:$scratch/$1" >/dev/null
    cat "$scratch/$1.digest"
}
first=$(digest a)
second=$(digest b)
if [ "$first" != "$second" ]; then
    echo "relay image: not reproducible: $first, then $second" >&2
    exit 1
fi
config=$(buildah inspect --type image --format '{{.OCIv1.Config.User}} {{len .OCIv1.RootFS.DiffIDs}}' kftray-relay-check:a)
if [ "$config" != "65532:65532 1" ]; then
    echo "relay image: user and layers are \"$config\", not \"65532:65532 1\"" >&2
    exit 1
fi

# runc rather than crun, and limits no higher than this shell's: some sandboxes (this
# project's CI among them) mount cgroups v1 and v2 side by side, which crun refuses, and
# forbid raising a limit.
run=(podman run --runtime runc --network host
    --ulimit "nofile=$(ulimit -n):$(ulimit -n)" --ulimit "nproc=1024:1024")
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"${run[@]}" --detach --name "$name" --read-only --cap-drop ALL \
    --env "RELAY_LISTEN=127.0.0.1:$port" kftray-relay-check:a >/dev/null
for _ in $(seq 100); do
    podman exec "$name" /relay-server probe 2>/dev/null && break
    sleep 0.1
done
if ! podman exec "$name" /relay-server probe; then
    podman logs "$name" >&2
    echo "relay image: the relay does not answer a session" >&2
    exit 1
fi
podman rm --force --time 0 "$name" >/dev/null

set +e
as_root=$("${run[@]}" --rm --user 0 kftray-relay-check:a 2>&1)
code=$?
set -e
if [ "$code" -ne 2 ] || ! grep -q "does not run as root" <<<"$as_root"; then
    echo "relay image: as root it exited $code, saying: $as_root" >&2
    exit 1
fi
size=$(stat -c %s "$binary")
echo "relay image: $first, one file of $((size / 1024)) KiB, user 65532; answers a session; refuses root"
