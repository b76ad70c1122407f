#!/usr/bin/env bash
# Builds every bundled plugin (plugins/*) into target/plugins/NAME.wasm and every test
# fixture (tests/fixtures/*) into target/fixtures/NAME.wasm, for wasm32-wasip2.
# Plugin names are the folder names (kebab-case); cargo writes snake_case files, so they
# are copied and renamed here.
set -euo pipefail
cd "$(dirname "$0")/.."

if command -v rustup >/dev/null 2>&1; then
  rustup target add wasm32-wasip2 >/dev/null 2>&1 || rustup target add wasm32-wasip2
fi

crates_in() { for d in "$1"/*/; do [ -f "$d/Cargo.toml" ] && basename "$d"; done; }
mapfile -t plugins < <(crates_in plugins)
mapfile -t fixtures < <(crates_in tests/fixtures)

args=()
for c in "${plugins[@]}" "${fixtures[@]}"; do args+=(-p "$c"); done
cargo build --quiet --target wasm32-wasip2 --profile plugin "${args[@]}"

out=target/wasm32-wasip2/plugin
mkdir -p target/plugins target/fixtures
copy() { # crate dest-dir [dest-name]
  local src="$out/${1//-/_}.wasm" dest="$2/${3:-$1}.wasm"
  [ -f "$src" ] || { echo "build-plugins: $src was not produced" >&2; exit 1; }
  # Write beside and rename, so a running gateway never loads a half-copied file.
  cp "$src" "$dest.tmp" && mv -f "$dest.tmp" "$dest"
}
for c in "${plugins[@]}"; do copy "$c" target/plugins; done
for c in "${fixtures[@]}"; do copy "$c" target/fixtures; done

# A second build of the echo fixture, to test hot swaps between two versions.
cargo build --quiet --target wasm32-wasip2 --profile plugin -p fx-echo --features v2
copy fx-echo target/fixtures fx-echo-v2
# Leave the v1 artifact in place for the next incremental build.
cargo build --quiet --target wasm32-wasip2 --profile plugin -p fx-echo

echo "built ${#plugins[@]} plugins into target/plugins and ${#fixtures[@]} fixtures into target/fixtures"
