#!/usr/bin/env bash
# The long soak (not in CI; the suite runs a 40 s one): `kftray up` on the real control
# plane under churn for KFTRAY_SOAK_SECS (default 600), sampling its fds, RSS and threads.
# The samples are printed and written to target/reliability/soak.tsv.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/controlplane-build.sh 1.37 >/dev/null
cargo build --locked -p kftray-relay -p kubesim
KFTRAY_SOAK_SECS="${KFTRAY_SOAK_SECS:-600}" \
    cargo test --locked --test soak -- --nocapture
