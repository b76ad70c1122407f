#!/usr/bin/env bash
# Builds the bundled plugins and the gateway (release), then runs
# `switchyard serve --config switchyard.toml` on 127.0.0.1:8080. Extra arguments are
# passed to `serve` (e.g. --listen 127.0.0.1:9000).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build-plugins.sh
cargo build --release -p switchyard
exec target/release/switchyard serve --config switchyard.toml "$@"
