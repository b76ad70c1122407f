#!/usr/bin/env bash
# Profiles Switchyard under the harness's closed loop and prints where a request's CPU
# goes (see cpu_profile.py). Needs `perf` (Debian: linux-perf) and the harness's tools
# (`bash tests/bench/run.sh --quick --systems direct` installs them).
#
#   bash tests/bench/profile.sh [full|adapter] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v perf >/dev/null || { echo "error: perf is required (apt install linux-perf)" >&2; exit 1; }
bash scripts/build-plugins.sh
# Frame pointers let perf walk Rust stacks; a separate target dir keeps the normal
# release build untouched.
RUSTFLAGS="-C force-frame-pointers=yes" cargo build --release -p switchyard --target-dir target/fp
cargo build --release -p switchyard-tests --example stream_load
SWITCHYARD_BIN=target/fp/release/switchyard exec python3 tests/bench/cpu_profile.py "$@"
