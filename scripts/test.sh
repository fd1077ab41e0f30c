#!/usr/bin/env bash
# The whole test suite, runnable alone on a fresh machine: it installs what the tests need
# beyond cargo, then runs every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."

# The simulated-cluster tests drive the real kubectl. It cannot come from a package registry
# here, so its absence is reported (and fatal when KUBESIM_REQUIRE_KUBECTL=1, as on CI).
if ! command -v kubectl >/dev/null 2>&1; then
    echo "scripts/test.sh: kubectl not found: the kubectl tests will say so and skip" >&2
fi

cargo test --workspace --locked
