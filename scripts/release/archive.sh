#!/usr/bin/env bash
# One release archive: the binaries built for TARGET, the man page and the shell completions
# they generate, and the documents. A .zip for Windows, a .tar.gz elsewhere. Prints its path.
#
#   scripts/release/archive.sh TARGET VERSION BINDIR OUTDIR
set -euo pipefail
target=${1:?usage: scripts/release/archive.sh TARGET VERSION BINDIR OUTDIR}
version=${2:?}
bindir=${3:?}
outdir=${4:?}
root=$(cd "$(dirname "$0")/../.." && pwd)
exe=
case "$target" in *windows*) exe=.exe ;; esac

name="kftray-$version-$target"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/$name/completions" "$outdir"
kftray="$bindir/kftray$exe"
cp "$kftray" "$stage/$name/"
# The privileged helper (hosts entries, loopback aliases, low ports): Linux and macOS only.
if [ -z "$exe" ]; then
    cp "$bindir/kftray-helper$exe" "$stage/$name/"
fi
"$kftray" man >"$stage/$name/kftray.1"
"$kftray" completions bash >"$stage/$name/completions/kftray.bash"
"$kftray" completions zsh >"$stage/$name/completions/_kftray"
"$kftray" completions fish >"$stage/$name/completions/kftray.fish"
"$kftray" completions powershell >"$stage/$name/completions/_kftray.ps1"
"$kftray" completions elvish >"$stage/$name/completions/kftray.elv"
cp "$root/README.md" "$root/CHANGELOG.md" "$root/LICENSE-MIT" "$root/LICENSE-APACHE" "$stage/$name/"

outdir=$(cd "$outdir" && pwd)
if [ -n "$exe" ]; then
    out="$outdir/$name.zip"
    (cd "$stage" && rm -f "$out" && 7z a -tzip -bso0 "$out" "$name")
else
    out="$outdir/$name.tar.gz"
    # Sorted names, fixed owners and times: the same files give the same archive.
    tar -C "$stage" --sort=name --owner=0 --group=0 --numeric-owner \
        --mtime=@"${SOURCE_DATE_EPOCH:-0}" -cf - "$name" | gzip -n >"$out"
fi
echo "$out"
