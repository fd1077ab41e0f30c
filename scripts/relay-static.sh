#!/usr/bin/env bash
# A static relay-server for the relay image: musl, small, stripped, one codegen unit.
#
#   scripts/relay-static.sh [TARGET]     (default: this machine's <arch>-unknown-linux-musl)
#
# Prints the binary's path. Needs the target's standard library (rustup target add) and a
# musl C toolchain for the C the dependencies build (Debian's musl-tools).
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:-$(uname -m)-unknown-linux-musl}
rustup target list --installed | grep -qx "$target" || rustup target add "$target" >&2
# Paths of this checkout and of cargo's home out of the binary (panic messages name source
# files), so that the same commit gives the same bytes, and the image the same digest,
# wherever it is built.
export RUSTFLAGS="--remap-path-prefix=$PWD=/kftray --remap-path-prefix=${CARGO_HOME:-$HOME/.cargo}=/cargo"
CARGO_PROFILE_RELEASE_DEBUG=false \
CARGO_PROFILE_RELEASE_LTO=true \
CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1 \
CARGO_PROFILE_RELEASE_OPT_LEVEL=s \
CARGO_PROFILE_RELEASE_STRIP=true \
CARGO_PROFILE_RELEASE_PANIC=abort \
    cargo build --quiet --release --locked --target "$target" -p kftray-relay --bin relay-server
echo "$PWD/target/$target/release/relay-server"
