#!/usr/bin/env bash
# The GitHub workflows checked as GitHub would run them (actionlint) and for what an attacker
# could do with them (zizmor), and the release scripts they call, on sample inputs. Installs
# both tools into target/tools on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
tools=$PWD/target/tools
mkdir -p "$tools"

# actionlint's PyPI package downloads its binary from GitHub at install time, which these
# machines cannot reach; the same program comes from the Go module proxy.
actionlint_version=v1.7.12
if [ "$("$tools/actionlint" --version 2>/dev/null | head -1)" != "$actionlint_version" ]; then
    GOBIN=$tools GOFLAGS=-mod=mod go install "github.com/rhysd/actionlint/cmd/actionlint@$actionlint_version"
fi
zizmor_version=1.33.1
if [ "$("$tools/venv/bin/zizmor" --version 2>/dev/null)" != "zizmor $zizmor_version" ]; then
    python3 -m venv "$tools/venv"
    "$tools/venv/bin/pip" install --quiet --disable-pip-version-check "zizmor==$zizmor_version"
fi

"$tools/actionlint" .github/workflows/*.yml
# Offline: the audits that ask GitHub's API (known-vulnerable versions, impostor commits)
# cannot run here.
"$tools/venv/bin/zizmor" --offline --no-progress .github/workflows/

# The release scripts, on this version and made-up checksums.
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
bash scripts/release/notes.sh "$version" >"$scratch/notes.md"
for target in x86_64-unknown-linux-musl aarch64-unknown-linux-musl x86_64-apple-darwin \
    aarch64-apple-darwin; do
    echo "$(printf '%s' "$target" | sha256sum | cut -d' ' -f1)  kftray-$version-$target.tar.gz"
done >"$scratch/SHA256SUMS"
echo "$(printf windows | sha256sum | cut -d' ' -f1)  kftray-$version-x86_64-pc-windows-msvc.zip" \
    >>"$scratch/SHA256SUMS"
bash scripts/release/homebrew.sh "$version" "$scratch/SHA256SUMS" >"$scratch/kftray.rb"
bash scripts/release/krew.sh "$version" "$scratch/SHA256SUMS" >"$scratch/kftray.yaml"
if command -v ruby >/dev/null 2>&1; then
    ruby -c "$scratch/kftray.rb" >/dev/null
fi
python3 - "$scratch" <<'PY'
import json, pathlib, sys
scratch = pathlib.Path(sys.argv[1])
sums = dict(reversed(line.split()) for line in (scratch / "SHA256SUMS").read_text().splitlines())
formula = (scratch / "kftray.rb").read_text()
manifest = (scratch / "kftray.yaml").read_text()
for name, digest in sums.items():
    if name.endswith(".tar.gz"):
        assert f'sha256 "{digest}"' in formula, f"{name} missing from the formula"
    assert f"sha256: {digest}" in manifest, f"{name} missing from the krew manifest"
    assert name in manifest, f"{name}'s address missing from the krew manifest"
PY
echo "scripts/lint-workflows.sh: workflows and release scripts pass"
