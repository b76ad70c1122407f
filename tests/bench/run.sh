#!/usr/bin/env bash
# The load harness in one command: installs what it needs (nginx-light, oha, LiteLLM,
# Portkey), builds Switchyard and its plugins (release), then runs every system one
# after another on loopback and prints the results table (also in target/bench/).
#
#   bash tests/bench/run.sh                  # the full run (about 15 minutes)
#   bash tests/bench/run.sh --quick          # seconds per system: checks the harness
#   bash tests/bench/run.sh --systems direct,switchyard-full,switchyard-adapter
#
# Not part of the test command or CI: its figures depend on the machine being quiet.
set -euo pipefail
cd "$(dirname "$0")/../.."

OHA_VERSION=1.16.0
systems="direct,switchyard-full,switchyard-governed,switchyard-adapter,litellm,portkey"
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case "${args[$i]}" in
    --systems) systems="${args[$((i + 1))]:-}" ;;
    --systems=*) systems="${args[$i]#--systems=}" ;;
  esac
done

need_root() { if [ "$(id -u)" -ne 0 ]; then echo sudo; fi; }

if ! command -v nginx >/dev/null; then
  echo "== installing nginx-light (apt)" >&2
  $(need_root) apt-get update -qq
  $(need_root) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light
fi
for tool in taskset python3; do
  command -v "$tool" >/dev/null || { echo "error: $tool is required" >&2; exit 1; }
done
if [ "$("$HOME/.cargo/bin/oha" --version 2>/dev/null || true)" != "oha $OHA_VERSION" ]; then
  echo "== installing oha $OHA_VERSION (cargo install)" >&2
  cargo install oha --version "$OHA_VERSION" --locked
fi
case ",$systems," in *,litellm,*) bash tests/bench/competitors/litellm.sh install ;; esac
case ",$systems," in *,portkey,*) bash tests/bench/competitors/portkey.sh install ;; esac

echo "== building Switchyard, its plugins and the stream load client (release)" >&2
bash scripts/build-plugins.sh
cargo build --release -p switchyard
cargo build --release -p switchyard-tests --example stream_load

exec python3 tests/bench/bench.py --command "bash tests/bench/run.sh $*" "$@"
