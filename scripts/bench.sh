#!/usr/bin/env bash
# The benchmarks: kftray against kubectl port-forward (and the honest ceilings) on the
# simulated cluster, every figure in one run. Builds the release binaries it drives, then runs
# them; arguments go to kftray-bench (--quick, --only 1,2, --size-mib N, --rounds N, --out P,
# --real 1.37 for the real control plane instead of kubesim).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "bench: building the release binaries (about 9 minutes the first time on 2 cores, seconds after)" >&2
cargo build --release -p kftray -p kubesim -p kftray-relay -p kftray-bench -p controlplane --bins
exec target/release/kftray-bench "$@"
