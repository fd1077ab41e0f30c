#!/usr/bin/env bash
# The whole test suite, runnable alone on a fresh machine: it installs what the tests need
# beyond cargo, then runs every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."

# The git-source tests start real servers: git daemon and git http-backend (git), nginx with
# fcgiwrap in front of it, OpenSSH's sshd, and a Secret Service (gnome-keyring) on a D-Bus of
# their own.
# Debian 12 packages, installed when missing.
need=()
command -v git >/dev/null 2>&1 || need+=(git)
command -v nginx >/dev/null 2>&1 || need+=(nginx-light)
command -v fcgiwrap >/dev/null 2>&1 || need+=(fcgiwrap)
command -v dbus-daemon >/dev/null 2>&1 || need+=(dbus-daemon)
command -v gnome-keyring-daemon >/dev/null 2>&1 || need+=(gnome-keyring)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v ssh-keygen >/dev/null 2>&1 || need+=(openssh-client)
# The real control plane's pod network is a `local` route (iproute2); the blackhole of a real
# link drops packets with nftables in a network namespace.
command -v ip >/dev/null 2>&1 || need+=(iproute2)
# The HTTP log tests: a pod's server is Python's own http.server, and curl is a client.
[ -x /usr/bin/python3 ] || need+=(python3)
command -v curl >/dev/null 2>&1 || need+=(curl)
{ [ -x /usr/sbin/nft ] || command -v nft >/dev/null 2>&1; } || need+=(nftables)
# The host-name tests: kftray-helper writes a real /etc/hosts inside a mount namespace
# (unshare, nsenter), glibc reads it (getent), and a low port is asked for by an
# unprivileged user (setpriv).
for tool in unshare nsenter setpriv; do
    command -v "$tool" >/dev/null 2>&1 || { need+=(util-linux); break; }
done
command -v getent >/dev/null 2>&1 || need+=(libc-bin)
# The relay image: built with buildah from a static (musl) relay, run once under podman (with
# runc: see scripts/relay-image-check.sh).
command -v buildah >/dev/null 2>&1 || need+=(buildah)
command -v podman >/dev/null 2>&1 || need+=(podman)
command -v runc >/dev/null 2>&1 || need+=(runc)
command -v musl-gcc >/dev/null 2>&1 || need+=(musl-tools)
if [ "${#need[@]}" -gt 0 ]; then
    echo "scripts/test.sh: installing ${need[*]}" >&2
    sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    "${sudo[@]}" apt-get update -qq
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y --no-install-recommends "${need[@]}"
fi

# The simulated-cluster tests drive the real kubectl. It cannot come from a package registry
# here, so its absence is reported (and fatal when KUBESIM_REQUIRE_KUBECTL=1, as on CI).
if ! command -v kubectl >/dev/null 2>&1; then
    echo "scripts/test.sh: kubectl not found: the kubectl tests will say so and skip" >&2
fi

# The real control plane (tests/controlplane): Kubernetes 1.37 for the whole suite and 1.34,
# the oldest release served, for the end-to-end journey. Both are built from the Go module
# proxy on first use (Go 1.26 is on these machines; Debian's is too old) and cached in
# target/controlplane.
if ! command -v go >/dev/null 2>&1; then
    echo "scripts/test.sh: go is not on PATH: the real control plane cannot be built" >&2
    exit 1
fi
# What the disk holds, for a failure that turns out to be a full one.
echo "scripts/test.sh: $(df -Ph . | awk 'NR == 2 { print $4 " free of " $2 " on " $6 }')" >&2
bash scripts/controlplane-build.sh 1.37 >/dev/null
bash scripts/controlplane-build.sh 1.34 >/dev/null

cargo test --workspace --locked
KFTRAY_K8S_VERSION=1.34 cargo test --workspace --locked --test e2e --test clients --test transport

# The relay image as the release builds it, run once.
bash scripts/relay-image-check.sh

# What a release would publish: the crates from their tarballs, an archive of this build.
bash scripts/release/check.sh
