#!/usr/bin/env bash
# What a release would publish, checked here: the three crates packaged and each built from
# its own tarball (path dependencies served from cargo's temporary registry), and a release
# archive of this machine's debug build, twice, byte for byte the same.
set -euo pipefail
cd "$(dirname "$0")/../.."

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
# --allow-dirty: a developer's uncommitted work is checked too; CI's clone is clean.
cargo package --quiet --locked --allow-dirty -p kftray-spdy -p kftray-relay -p kftray
for crate in kftray-spdy kftray-relay kftray; do
    listed=$(tar tzf "target/package/$crate-$version.crate" | wc -l)
    echo "scripts/release/check.sh: $crate packaged, $listed files, built from its tarball"
done
# Listings go through a variable: `tar | grep -q` fails under pipefail when grep stops early.
if grep -q "^kftray-$version/tests/" <<<"$(tar tzf "target/package/kftray-$version.crate")"; then
    echo "scripts/release/check.sh: the kftray crate carries the test suite" >&2
    exit 1
fi

cargo build --quiet --locked -p kftray --bins
host=$(rustc -vV | sed -n 's/^host: //p')
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
first=$(bash scripts/release/archive.sh "$host" "$version" target/debug "$scratch/a")
second=$(bash scripts/release/archive.sh "$host" "$version" target/debug "$scratch/b")
cmp "$first" "$second"
name="kftray-$version-$host"
listing=$(tar tzf "$first")
for file in kftray kftray-helper kftray.1 completions/kftray.bash completions/_kftray \
    completions/kftray.fish completions/_kftray.ps1 completions/kftray.elv README.md \
    CHANGELOG.md LICENSE-MIT LICENSE-APACHE; do
    grep -qx "$name/$file" <<<"$listing" || {
        echo "scripts/release/check.sh: $file missing from $first" >&2
        exit 1
    }
done
tar xzf "$first" -C "$scratch"
"$scratch/$name/kftray" -V
echo "scripts/release/check.sh: archive $(basename "$first") is reproducible and complete"
