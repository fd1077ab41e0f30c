#!/usr/bin/env bash
# The main job on a fresh machine: starts the simulated cluster with the demo fixture, then
# runs `kftray up` on examples/demo.toml in the foreground. In another terminal:
#   curl http://127.0.0.1:8080/        # answered by a pod of the demo `web` service
# Ctrl-C stops kftray (which deletes its relay pod), then the cluster.
#
# KFTRAY_DEMO_BIN: a folder already holding kftray, kubesim and relay-server (skips the build).
set -euo pipefail
cd "$(dirname "$0")/.."

bin=${KFTRAY_DEMO_BIN:-}
if [ -z "$bin" ]; then
    echo "demo: building kftray, the simulated cluster and the relay (about 5 minutes the first time on 2 cores, seconds later)" >&2
    # One invocation: the three share their dependencies, built once with one feature set.
    cargo build -p kftray -p kubesim -p kftray-relay --bins
    bin=$PWD/target/debug
fi
work=$(mktemp -d)
cleanup() {
    if [ -n "${sim:-}" ]; then
        kill "$sim" 2>/dev/null || true
        wait "$sim" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# Relay pods run the relay-server just built. A simulated pod has no loopback of its own, so
# the relay listens on its pod IP, and the cluster DNS is its nameserver (a real pod's
# resolv.conf). The cluster runs in a session of its own, so the terminal's Ctrl-C reaches
# kftray alone: kftray cleans up while the cluster is still there, then the trap stops it.
relay=ghcr.io/kftray/kftray-relay
setsid "$bin/kubesim" serve \
    --fixture tests/kubesim/fixtures/demo.yaml --kubeconfig "$work/kubeconfig" \
    --image "$relay=$bin/relay-server" \
    --image-env "$relay=RELAY_LISTEN=\$(POD_IP):7000" \
    --image-env "$relay=RELAY_NAMESERVER=\$(KUBESIM_NAMESERVER)" >"$work/sim.out" 2>&1 &
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
"$bin/kftray" -f examples/demo.toml up "$@"
