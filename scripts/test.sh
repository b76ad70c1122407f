#!/usr/bin/env bash
# Runs every check and test: formatting, clippy (host and guests), the host's unit and
# CLI tests, and the end-to-end tests against real plugins. Installs what it needs.
set -euo pipefail
cd "$(dirname "$0")/.."

if command -v rustup >/dev/null 2>&1; then
  rustup component add rustfmt clippy >/dev/null 2>&1 || true
fi

step() { printf '\n==> %s\n' "$*"; }

step "python virtualenv with the official openai SDK (target/pyenv)"
if [ ! -x target/pyenv/bin/python ]; then
  python3 -m venv target/pyenv
fi
target/pyenv/bin/pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt \
  -r sdk/python/requirements.txt

step "the official openai Node SDK (tests/node/node_modules)"
command -v node >/dev/null 2>&1 || { echo "node (20 or newer) is required for the Node SDK tests" >&2; exit 1; }
npm ci --prefix tests/node --no-audit --no-fund --loglevel=error

step "the JavaScript plugin toolchain, jco + ComponentizeJS (sdk/js/node_modules)"
npm ci --prefix sdk/js --no-audit --no-fund --loglevel=error

step "build plugins and fixtures (wasm32-wasip2)"
bash scripts/build-plugins.sh

step "cargo fmt --check"
cargo fmt --all -- --check

step "clippy: host and tests"
cargo clippy --locked -p switchyard -p switchyard-tests -p switchyard-mock-upstream --all-targets -- -D warnings

step "clippy: sdk, plugins and fixtures (wasm32-wasip2)"
guests=(-p switchyard-sdk)
for d in plugins/*/ tests/fixtures/*/; do [ -f "$d/Cargo.toml" ] && guests+=(-p "$(basename "$d")"); done
cargo clippy --locked --target wasm32-wasip2 --profile plugin "${guests[@]}" -- -D warnings

# Every bundled plugin's unit tests run natively (fixtures have none worth running).
native=(-p switchyard-sdk)
for d in plugins/*/; do [ -f "$d/Cargo.toml" ] && native+=(-p "$(basename "$d")"); done

step "clippy: sdk and plugin unit tests (native)"
cargo clippy --locked "${native[@]}" --tests -- -D warnings

step "unit tests of the sdk and plugins (native)"
cargo test --locked "${native[@]}"

step "tests"
cargo test --locked -p switchyard -p switchyard-tests -p switchyard-mock-upstream

step "the example Python and JavaScript plugins' test.json cases through the gateway"
SWITCHYARD_PLUGIN_CASES_DIR=target/plugin-cases target/pyenv/bin/python tests/python/test_plugin_cases.py

echo
echo "all checks passed"
