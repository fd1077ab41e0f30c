#!/usr/bin/env bash
# The peers the benchmarks compare kftray with, installed with their own ordinary clients into
# target/peers (never vendored, never a dependency of kftray):
#
#   bash scripts/peers.sh
#
# - kftui (kftray's terminal app) from crates.io with `cargo install`;
# - kubefwd and krelay (and krelay-server) from the Go module proxy with `go install`;
# - kftui's UDP relay (kftray-server) from kftray's repository with `cargo install --git`.
# A peer that cannot be had is reported with the registry's answer, and the others are still
# installed; the exit status is 0 when at least one peer is there. A peer's program put in
# target/peers/bin by other means (kubefwd, krelay, krelay-server, kftui, kftray-server) is
# used as it is.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD/target/peers
mkdir -p "$root/bin"

KFTUI_VERSION=${KFTUI_VERSION:-0.35.1}
KUBEFWD_VERSION=${KUBEFWD_VERSION:-v1.25.16}
KRELAY_VERSION=${KRELAY_VERSION:-v0.2.0}
KFTRAY_GIT=${KFTRAY_GIT:-https://github.com/hcavarsan/kftray}

ok=0
say() { echo "peers: $*" >&2; }

# kftui links libdbus (its keyring) and vendors OpenSSL.
if ! [ -x "$root/bin/kftui" ]; then
    missing=()
    dpkg -s libdbus-1-dev >/dev/null 2>&1 || missing+=(libdbus-1-dev)
    command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
    if [ ${#missing[@]} -gt 0 ]; then
        say "installing ${missing[*]}"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null
    fi
    say "kftui $KFTUI_VERSION: cargo install (about 15 minutes on 2 cores)"
    # --locked first, as its authors pin it; when the registry no longer serves a pinned
    # version, the newest compatible ones (said in the output).
    if ! cargo install kftui --version "$KFTUI_VERSION" --locked --root "$root" 2>"$root/kftui.log"; then
        say "kftui: --locked failed ($(grep -m1 '^error' "$root/kftui.log")); trying without it"
        cargo install kftui --version "$KFTUI_VERSION" --root "$root" 2>>"$root/kftui.log" ||
            say "kftui: not installed, see $root/kftui.log"
    fi
fi
[ -x "$root/bin/kftui" ] && { say "kftui: $root/bin/kftui"; ok=1; }

go_peer() {
    local name=$1 module=$2
    if [ -x "$root/bin/$name" ]; then
        ok=1
        return
    fi
    local built=$root/go-$name
    mkdir -p "$built"
    # Installed under the name its command directory gives, then under the peer's name.
    if GOBIN=$built go install "$module" 2>"$root/$name.log" &&
        mv "$built/$(basename "${module%@*}")" "$root/bin/$name"; then
        say "$name: $root/bin/$name"
        ok=1
    else
        say "$name: not installed: $(grep -m1 -o 'reading https[^ ]*: [0-9]* [A-Za-z ]*' "$root/$name.log" || tail -1 "$root/$name.log")"
    fi
}
go_peer kubefwd "github.com/txn2/kubefwd/cmd/kubefwd@$KUBEFWD_VERSION"
go_peer krelay "github.com/knight42/krelay/cmd/client@$KRELAY_VERSION"
go_peer krelay-server "github.com/knight42/krelay/cmd/server@$KRELAY_VERSION"

# kftui's relay pod for UDP (the image ghcr.io/hcavarsan/kftray-server, which the bench cluster
# maps to this program). It is not on crates.io: cargo installs it from kftray's public
# repository, as a user without the image would.
if [ -x "$root/bin/kftui" ] && ! [ -x "$root/bin/kftray-server" ]; then
    say "kftray-server: cargo install --git $KFTRAY_GIT"
    timeout 900 cargo install --git "$KFTRAY_GIT" kftray-server --root "$root" 2>"$root/kftray-server.log" ||
        say "kftray-server: not installed ($(grep -m1 -i 'error\|fail' "$root/kftray-server.log")); figure 7 leaves kftui out"
fi

[ "$ok" = 1 ]
