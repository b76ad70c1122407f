# Shared by litellm.sh and portkey.sh (sourced; expects `log`).

# chat_reply_ok PORT MODEL STREAM(true|false) [CURL_ARGS...]: one real chat completion
# through the gateway on PORT; true if it answered with choices (or, streamed, [DONE]).
chat_reply_ok() {
    local port="$1" model="$2" stream="$3" body
    shift 3
    body=$(curl -sS --max-time 10 "http://127.0.0.1:$port/v1/chat/completions" \
        -H 'content-type: application/json' "$@" \
        -d "{\"model\":\"$model\",\"stream\":$stream,\"messages\":[{\"role\":\"user\",\"content\":\"ping\"}]}" 2>/dev/null) || return 1
    if [[ "$stream" == true ]]; then
        [[ "$body" == *"data: [DONE]"* ]]
    else
        [[ "$body" == *'"choices"'* ]]
    fi
}

# die_with_log PID LOGFILE MESSAGE: stops the server and shows the end of its log.
die_with_log() {
    log "$3; last log lines ($2):"
    tail -n 30 "$2" >&2 || true
    kill "$1" 2>/dev/null || true
    exit 1
}

# await_ready PID LOGFILE TIMEOUT_S PLAIN_CHECK STREAM_CHECK: polls PLAIN_CHECK (a
# command) until it succeeds, then runs STREAM_CHECK once. Dies, killing PID, if the
# server exits, stays silent past the timeout, or cannot stream.
await_ready() {
    local pid="$1" logfile="$2" timeout="$3" plain="$4" stream="$5" waited=0
    until eval "$plain"; do
        kill -0 "$pid" 2>/dev/null || die_with_log "$pid" "$logfile" "server exited during startup"
        (( waited < timeout * 4 )) || die_with_log "$pid" "$logfile" "server not answering after ${timeout}s"
        sleep 0.25
        waited=$((waited + 1))
    done
    eval "$stream" || die_with_log "$pid" "$logfile" "non-streamed requests work but a streamed one failed"
}
