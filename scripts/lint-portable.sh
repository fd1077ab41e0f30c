#!/usr/bin/env bash
# The product's crates as Windows sees them: clippy for x86_64-pc-windows-gnu (mingw-w64 builds
# the C of the dependencies), on the libraries, the binaries and the unit tests. macOS needs
# Apple's SDK for that C and is left to the GitHub workflow; it shares the unix code paths
# that the Linux suite runs.
set -euo pipefail
cd "$(dirname "$0")/.."
target=x86_64-pc-windows-gnu
if ! command -v x86_64-w64-mingw32-gcc >/dev/null 2>&1; then
    sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    "${sudo[@]}" apt-get update -qq
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y --no-install-recommends gcc-mingw-w64-x86-64
fi
rustup target list --installed | grep -qx "$target" || rustup target add "$target"
crates=(-p kftray -p kftray-spdy -p kftray-relay)
cargo clippy --quiet --locked --target "$target" "${crates[@]}" --lib --bins -- -D warnings
# Each crate alone: `--profile test` on several at once unifies dev-dependency features.
for crate in kftray kftray-spdy kftray-relay; do
    cargo clippy --quiet --locked --target "$target" -p "$crate" --lib --profile test -- -D warnings
done
echo "scripts/lint-portable.sh: kftray, kftray-spdy and kftray-relay are clippy-clean for $target"
