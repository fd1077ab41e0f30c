#!/usr/bin/env bash
# The main job on a fresh machine: starts the simulated cluster with the demo fixture, then
# runs `kftray up` on examples/demo.toml in the foreground. In another terminal:
#   curl http://127.0.0.1:8080/        # answered by a pod of the demo `web` service
# Ctrl-C stops kftray, then the cluster.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --quiet --bin kftray && cargo build --quiet -p kubesim --bin kubesim &&
    cargo build --quiet -p relay-server --bin relay-server
work=$(mktemp -d)
cleanup() {
    [ -n "${sim:-}" ] && kill "$sim" 2>/dev/null && wait "$sim" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

# Relay pods run the relay-server just built. A simulated pod has no loopback of its own, so
# the relay listens on its pod IP, and the cluster DNS is its nameserver (a real pod's
# resolv.conf).
relay=ghcr.io/kftray/kftray-relay
cargo run --quiet -p kubesim --bin kubesim -- serve \
    --fixture tests/kubesim/fixtures/demo.yaml --kubeconfig "$work/kubeconfig" \
    --image "$relay=$PWD/target/debug/relay-server" \
    --image-env "$relay=RELAY_LISTEN=\$(POD_IP):7000" \
    --image-env "$relay=RELAY_NAMESERVER=\$(KUBESIM_NAMESERVER)" >"$work/sim.out" &
sim=$!
# kubesim prints the export line once the kubeconfig is complete and the fixture applied.
for _ in $(seq 300); do
    grep -q '^export KUBECONFIG=' "$work/sim.out" 2>/dev/null && break
    kill -0 "$sim" 2>/dev/null || break
    sleep 0.1
done
grep -q '^export KUBECONFIG=' "$work/sim.out" 2>/dev/null ||
    { cat "$work/sim.out" >&2; echo "demo: the simulated cluster did not start" >&2; exit 1; }

export KUBECONFIG="$work/kubeconfig"
echo "demo: forwards are coming up; try: curl http://127.0.0.1:8080/  (Ctrl-C to stop)"
cargo run --quiet --bin kftray -- -f examples/demo.toml up "$@"
