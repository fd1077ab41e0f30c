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

cargo test --workspace --locked
