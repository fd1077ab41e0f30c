#!/usr/bin/env bash
# A real Kubernetes control plane on this machine (etcd, kube-apiserver,
# kube-controller-manager of a pinned release, a kubelet for local pods), built on first use:
#
#   bash scripts/cluster.sh [--fixture FILE.yaml]... [--version 1.34] [--nodes N]
#                           [--image PREFIX=PROGRAM]... [--image-env PREFIX=NAME=VALUE]...
#
# It prints `export KUBECONFIG=…` once every fixture pod is Ready and stops cleanly on Ctrl-C
# or SIGTERM. Relay pods (kftray's UDP and proxy forwards) run this workspace's relay-server.
# Pods and ClusterIPs live on 198.18.0.0/15, which it makes local with `ip route` (root).
set -euo pipefail
cd "$(dirname "$0")/.."
version=${KFTRAY_K8S_VERSION:-1.37}
args=()
while [ $# -gt 0 ]; do
    case "$1" in
    --version) version=$2; shift 2 ;;
    --version=*) version=${1#--version=}; shift ;;
    *) args+=("$1"); shift ;;
    esac
done
bash scripts/controlplane-build.sh "$version" >/dev/null
cargo build --quiet -p controlplane --bin controlplane
cargo build --quiet -p kftray-relay --bin relay-server
relay=ghcr.io/kftray/kftray-relay
# exec: Ctrl-C and SIGTERM reach the control plane itself, which stops every process it
# started before it exits.
exec target/debug/controlplane serve --version "$version" \
    --image "$relay=$PWD/target/debug/relay-server" \
    --image-env "$relay=RELAY_LISTEN=\$(POD_IP):7000" \
    --image-env "$relay=RELAY_NAMESERVER=\$(KUBESIM_NAMESERVER)" \
    "${args[@]}"
