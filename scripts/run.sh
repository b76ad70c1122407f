#!/usr/bin/env bash
# Builds the bundled plugins and the gateway (release), starts `switchyard mock-upstream`
# on 127.0.0.1:9090 (so the `demo` model answers without provider keys), then runs
# `switchyard serve --config switchyard.toml` on 127.0.0.1:8080. Extra arguments are
# passed to `serve`. Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build-plugins.sh
cargo build --release -p switchyard
target/release/switchyard mock-upstream --listen 127.0.0.1:9090 &
mock=$!
trap 'kill $mock 2>/dev/null || true' EXIT
target/release/switchyard serve --config switchyard.toml "$@"
