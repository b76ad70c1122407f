#!/usr/bin/env bash
# Portkey AI gateway (open-source Node build) as a load-benchmark competitor.
#
#   portkey.sh install                               npm install the pinned gateway (idempotent)
#   portkey.sh version                               print the installed version
#   portkey.sh start PORT PLAIN_BASE_URL [STREAM_BASE_URL [PIDFILE]]
#        run the gateway in the background on PORT (it binds all interfaces; there is no host option),
#        wait until a real chat completion through it to PLAIN_BASE_URL (and a streamed one to
#        STREAM_BASE_URL, default the same) works, print the PID of the
#        node server process on stdout and write it to PIDFILE if given. The caller stops it with `kill PID`.
#   portkey.sh headers UPSTREAM_BASE_URL
#        print the request headers a client must send, one per line (e.g. for `oha -H "$line"`).
#
# Portkey has no server-side route config: the upstream is chosen per request by headers:
#   x-portkey-provider: openai
#   x-portkey-custom-host: UPSTREAM_BASE_URL        (e.g. http://127.0.0.1:9191/v1)
#   Authorization: Bearer dummy                      (forwarded to the upstream as the API key)
# and the client posts to http://127.0.0.1:PORT/v1/chat/completions with any "model".
#
# Environment overrides: BENCH_DIR (default <repo>/target/bench), PORTKEY_READY_TIMEOUT (s, default 60).
set -euo pipefail

PORTKEY_VERSION="1.15.2"
# The gateway's own package.json asks for ^ ranges; its repo lockfile at v1.15.2 resolves the hono
# packages to these. Newer @hono/node-server (>1.14.2) breaks the gateway: every streamed chat
# completion fails with "TypeError: immutable" (Portkey-AI/gateway issue #1389), so pin them.
HONO_NODE_SERVER_VERSION="1.13.5"
HONO_NODE_WS_VERSION="1.2.0"
HONO_VERSION="4.9.7"

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../../.." && pwd)"
BENCH_DIR="${BENCH_DIR:-$REPO_ROOT/target/bench}"
PREFIX="$BENCH_DIR/portkey"
ENTRY="$PREFIX/node_modules/@portkey-ai/gateway/build/start-server.js"

log() { echo "portkey.sh: $*" >&2; }
# shellcheck source=common.sh
source "$SCRIPT_DIR/common.sh"

is_installed() {
    [[ -f "$ENTRY" ]] || return 1
    (cd "$PREFIX" && node -e '
        const want = process.argv.slice(1);
        const names = ["@portkey-ai/gateway", "@hono/node-server", "@hono/node-ws", "hono"];
        names.forEach((n, i) => {
            if (require("./node_modules/" + n + "/package.json").version !== want[i]) process.exit(1);
        });' "$PORTKEY_VERSION" "$HONO_NODE_SERVER_VERSION" "$HONO_NODE_WS_VERSION" "$HONO_VERSION") >/dev/null 2>&1
}

cmd_install() {
    if is_installed; then
        log "@portkey-ai/gateway $PORTKEY_VERSION already installed in $PREFIX"
        return 0
    fi
    mkdir -p "$PREFIX"
    cat >"$PREFIX/package.json" <<EOF
{
  "name": "switchyard-bench-portkey",
  "private": true,
  "dependencies": {
    "@portkey-ai/gateway": "$PORTKEY_VERSION"
  },
  "overrides": {
    "@hono/node-server": "$HONO_NODE_SERVER_VERSION",
    "@hono/node-ws": "$HONO_NODE_WS_VERSION",
    "hono": "$HONO_VERSION"
  }
}
EOF
    log "npm installing @portkey-ai/gateway@$PORTKEY_VERSION into $PREFIX"
    # The package's postinstall (patch-package) has no patches to apply in the published build.
    npm install --prefix "$PREFIX" --no-audit --no-fund --loglevel=error >&2
    is_installed || { log "install finished but the pinned versions are not in place"; exit 1; }
    log "installed @portkey-ai/gateway $PORTKEY_VERSION"
}

cmd_headers() {
    if [[ $# -lt 1 ]]; then log "usage: portkey.sh headers UPSTREAM_BASE_URL"; exit 2; fi
    printf '%s\n' \
        "x-portkey-provider: openai" \
        "x-portkey-custom-host: ${1%/}" \
        "Authorization: Bearer dummy"
}

chat_ok() { # PORT UPSTREAM STREAM(true|false)
    chat_reply_ok "$1" bench-model "$3" -H 'x-portkey-provider: openai' \
        -H "x-portkey-custom-host: $2" -H 'Authorization: Bearer dummy'
}

cmd_start() {
    if [[ $# -lt 2 ]]; then
        log "usage: portkey.sh start PORT PLAIN_BASE_URL [STREAM_BASE_URL [PIDFILE]]"
        exit 2
    fi
    local port="$1" upstream="${2%/}" stream_upstream="${3:-$2}" pidfile="${4:-}"
    stream_upstream="${stream_upstream%/}"
    is_installed || { log "not installed; run: $0 install"; exit 1; }

    # Custom hosts on loopback/private addresses are refused ("Invalid custom host", HTTP 400) unless
    # trusted. The default trusted set is localhost, 127.0.0.1, ::1, host.docker.internal; setting
    # TRUSTED_CUSTOM_HOSTS replaces it, so keep those and add the upstream's host if it is another one.
    local host
    host="$(sed -E 's#^[a-zA-Z]+://##; s#/.*$##; s#:[0-9]+$##; s#^\[(.*)\]$#\1#' <<<"$upstream")"
    local trusted="localhost,127.0.0.1,::1,host.docker.internal"
    case ",$trusted," in *",$host,"*) ;; *) trusted="$trusted,$host" ;; esac

    local run_dir="$BENCH_DIR/portkey-run-$port"
    mkdir -p "$run_dir"
    local logfile="$run_dir/portkey.log"

    # node runs the entry file directly (no npx/npm wrapper), so $! is the server's PID.
    #  --port=N      the only way to choose the port (the PORT env var is not used for listening)
    #  --headless    no /public UI and no /log/stream route
    #  NODE_ENV=production  same effect on the UI routes; the gateway logs nothing per request
    env -u HTTP_PROXY -u HTTPS_PROXY -u http_proxy -u https_proxy \
        NODE_ENV=production \
        TRUSTED_CUSTOM_HOSTS="$trusted" \
        node "$ENTRY" --port="$port" --headless \
        >"$logfile" 2>&1 </dev/null &
    local pid=$!

    await_ready "$pid" "$logfile" "${PORTKEY_READY_TIMEOUT:-60}" \
        'chat_ok "$port" "$upstream" false' 'chat_ok "$port" "$stream_upstream" true'
    [[ -n "$pidfile" ]] && echo "$pid" >"$pidfile"
    log "ready on :$port (pid $pid, upstream $upstream via x-portkey-custom-host, log $logfile)"
    echo "$pid"
}

cmd_version() {
    is_installed || { echo "@portkey-ai/gateway (not installed)"; return 0; }
    echo "@portkey-ai/gateway $(node -p "require('$PREFIX/node_modules/@portkey-ai/gateway/package.json').version") (node $(node --version), hono $HONO_VERSION, @hono/node-server $HONO_NODE_SERVER_VERSION)"
}

case "${1:-}" in
    install) shift; cmd_install "$@" ;;
    version) cmd_version ;;
    start) shift; cmd_start "$@" ;;
    headers) shift; cmd_headers "$@" ;;
    *) echo "usage: $0 install | version | start PORT PLAIN_BASE_URL [STREAM_BASE_URL [PIDFILE]] | headers UPSTREAM_BASE_URL" >&2; exit 2 ;;
esac
