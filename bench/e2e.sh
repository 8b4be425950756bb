#!/usr/bin/env bash
# End-to-end load benchmark for `POST /v1/tools/execute`.
#
# In one run, with the same wrk settings, it drives:
#   1. direct    : the demo upstream itself            (GET  /health)
#   2. nginx     : nginx proxy_pass + upstream keepalive (GET  /health)
#   3. runtime   : portcullis /v1/tools/execute         (POST {"toolId":"tickets:getHealth"})
#   4. runtime+key (optional, ROW_KEY=1): tickets:getTicket with X-Demo-Key injected from `secrets`,
#      compared with direct GET /tickets/1 carrying the key.
#   5. runtime-info (ROW_INFO=1): GET /v1/runtime/info, the inbound HTTP layer alone.
#   6. realistic (ROW_REAL=1): `oidc_jwks` auth with a warm token from the dev issuer that
#      `portcullis serve --dev` bundles (host/src/dev/issuer.rs), the key injected from `secrets`,
#      one deny pattern and one approval rule in policy; the called tool (tickets:getTicket) is
#      allowed and not approval-gated.
#   7. realistic+rego (ROW_REGO=1): the same plus the Rego policy plugin
#      (plugins/rego-policy/examples/portcullis.rego); the report gives the plugin's share.
# and prints a markdown table: req/s, p50, p99, ratio to nginx, and CPU per request of the
# serving process (utime+stime from /proc/<pid>/stat over the measured run, divided by the
# requests wrk completed; for nginx its worker) and of the upstream behind it.
#
# Everything binds to 127.0.0.1; every process is killed on exit; the run is bounded
# (roughly targets x (WARMUP + DURATION) + build).
#
# Env knobs:
#   DURATION=10s CONNECTIONS=64 THREADS=2 WARMUP=3s  wrk settings (same for every target)
#   NGINX_WORKERS=1      nginx worker_processes (see docs/performance.md for why 1)
#   ROW_KEY=1            also run the credential-injection row (0 to skip)
#   ROW_INFO=1 ROW_REAL=1 ROW_REGO=1   the rows 5-7 above (0 to skip; ROW_REGO needs
#                        ${PORTCULLIS_PLUGIN_DIR:-target/plugins}/rego_policy.wasm: plugins/build)
#   ROW_DOOR=1           also call `tickets:getHealth` through the runtime's own MCP door (`POST /mcp`,
#                        stateless 2026-07-28 `tools/call`), to compare with `/v1/tools/execute`
#                        (issue #18 item 6; 0 to skip)
#   ROW_MCP=1            also run bench/mcp.sh (MCP `echo` through the runtime's pooled stdio and
#                        streamable-HTTP sessions vs the official SDK client) with this binary,
#                        after the rows above, and append its table (0 to skip; needs node)
#   ROW_NOSYNC=1         also run a second runtime with `--audit-no-sync` (durable audit off) in
#                        the same run, to measure what durability costs (0 to skip)
#   BASELINE_BIN=path    also run the `tickets:getHealth` row against this other build (say, main
#                        before a change), right after the same row of this one: an A/B in one run
#                        (BASELINE_LABEL names it in the table)
#   SKIP_BUILD=1         reuse target/release/portcullis
#   PORTCULLIS_BIN=path  use this binary
#   OUT=path             markdown output (default target/bench/e2e-<date>.md)
#   STATE_ROOT=dir       runtime --state-dir (audit log lives there; default: the run's temp dir
#                        on disk). STATE_ROOT=/dev/shm/... isolates the cost of the audit fsync.
#   PERF=1               also `perf record --call-graph dwarf` the runtime during its measured run
#                        (target/bench/perf-<date>.data; read with `perf report -i ...`);
#                        PERF_ROW=<row name> (runtime-info, runtime-real, ...) profiles that row instead
# When `perf` is installed, every row also counts the serving process's context switches and
# `fdatasync` calls (`perf stat -e context-switches -e syscalls:sys_enter_fdatasync -p <pid>` over
# the measured run), reported per request.
set -euo pipefail

DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
WARMUP=${WARMUP:-3s}
NGINX_WORKERS=${NGINX_WORKERS:-1}
ROW_KEY=${ROW_KEY:-1}
ROW_NOSYNC=${ROW_NOSYNC:-1}
ROW_INFO=${ROW_INFO:-1}
ROW_REAL=${ROW_REAL:-1}
ROW_REGO=${ROW_REGO:-1}
ROW_MCP=${ROW_MCP:-1}
ROW_DOOR=${ROW_DOOR:-1}
PLUGIN_DIR=${PORTCULLIS_PLUGIN_DIR:-}
CLK_TCK=$(getconf CLK_TCK)
KEY=bench-key-0123456789

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
PLUGIN_DIR=${PLUGIN_DIR:-$ROOT/target/plugins}
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT=${OUT:-$ROOT/target/bench/e2e-$STAMP.md}
TMP=$(mktemp -d /tmp/portcullis-e2e.XXXXXX)
PIDS=()

cleanup() {
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    sleep 0.3
    for pid in "${PIDS[@]}"; do
        kill -9 "$pid" 2>/dev/null || true
    done
    rm -rf "$TMP"
    [ -n "${STATE_ROOT:-}" ] && [ -n "${STATE:-}" ] && rm -rf "$STATE"
    return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf '[e2e] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------- tools
need_install=()
command -v wrk >/dev/null || need_install+=(wrk)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need_install+=(nginx)
command -v curl >/dev/null || need_install+=(curl)
if [ ${#need_install[@]} -gt 0 ]; then
    log "installing ${need_install[*]}"
    apt-get install -y "${need_install[@]}" >/dev/null 2>&1 ||
        { apt-get update >/dev/null && apt-get install -y "${need_install[@]}" >/dev/null; }
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

# ---------------------------------------------------------------- build
BIN=${PORTCULLIS_BIN:-$ROOT/target/release/portcullis}
if [ -z "${SKIP_BUILD:-}" ] && [ -z "${PORTCULLIS_BIN:-}" ]; then
    log "cargo build --release -p portcullis"
    cargo build --release -p portcullis >&2
fi
[ -x "$BIN" ] || die "no binary at $BIN"

# ---------------------------------------------------------------- ports
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}
UP_PORT=$(free_port)
NGX_PORT=$(free_port)
RT_PORT=$(free_port)
NS_PORT=$(free_port)
DEV_PORT=$(free_port)
REAL_PORT=$(free_port)
REGO_PORT=$(free_port)
UP=http://127.0.0.1:$UP_PORT
NGX=http://127.0.0.1:$NGX_PORT
RT=http://127.0.0.1:$RT_PORT
NS=http://127.0.0.1:$NS_PORT
BASE_PORT=$(free_port)
BASE=http://127.0.0.1:$BASE_PORT
DEV=http://127.0.0.1:$DEV_PORT
REAL=http://127.0.0.1:$REAL_PORT
REGO=http://127.0.0.1:$REGO_PORT

wait_http() { # url [method] [body]
    local url=$1 i
    for i in $(seq 1 100); do # 100 x 0.1 s = 10 s bound
        if curl -fsS -o /dev/null --max-time 1 "$url" 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    die "$url did not become ready within 10 s"
}

# ---------------------------------------------------------------- upstream
log "demo upstream on $UP (key required except /health)"
"$BIN" demo-upstream --addr "127.0.0.1:$UP_PORT" --key "$KEY" >"$TMP/upstream.log" 2>&1 &
UP_PID=$!
PIDS+=($UP_PID)
wait_http "$UP/health"
# One ticket for the credential-injection row.
curl -fsS -o /dev/null -X POST "$UP/tickets" -H "X-Demo-Key: $KEY" \
    -H 'Content-Type: application/json' -d '{"title":"bench"}'

# ---------------------------------------------------------------- nginx
mkdir -p "$TMP/nginx"
cat >"$TMP/nginx/nginx.conf" <<EOF
# Generated by bench/e2e.sh (template: bench/nginx.conf.template)
worker_processes $NGINX_WORKERS;
daemon off;
master_process on;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $TMP/nginx/body;
    proxy_temp_path $TMP/nginx/proxy;
    fastcgi_temp_path $TMP/nginx/fastcgi;
    uwsgi_temp_path $TMP/nginx/uwsgi;
    scgi_temp_path $TMP/nginx/scgi;
    upstream demo {
        server 127.0.0.1:$UP_PORT;
        keepalive 64;
    }
    server {
        listen 127.0.0.1:$NGX_PORT;
        location / {
            proxy_pass http://demo;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF
log "nginx on $NGX (worker_processes $NGINX_WORKERS, upstream keepalive 64)"
"$NGINX" -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" -e "$TMP/nginx/error.log" >"$TMP/nginx/stdout.log" 2>&1 &
NGX_PID=$!
PIDS+=($NGX_PID)
wait_http "$NGX/health"
# CPU per request is read from the worker (the master only supervises).
NGX_WORKER=$(pgrep -P "$NGX_PID" | head -1)
[ -n "$NGX_WORKER" ] || die "no nginx worker under $NGX_PID"

# ---------------------------------------------------------------- portcullis
STATE=${STATE_ROOT:-$TMP/state}
[ -n "${STATE_ROOT:-}" ] && STATE=$(mktemp -d "$STATE_ROOT/portcullis-e2e-state.XXXXXX")
mkdir -p "$TMP/project" "$STATE"
sed "s#http://127.0.0.1:9000#$UP#" host/src/dev/tickets.openapi.yaml >"$TMP/project/tickets.openapi.yaml"
cat >"$TMP/project/.cli.json" <<EOF
{"cli":"1.0.0","mode":{"default":"discover"},"runtime":{"mode":"remote"},
 "sources":{"s":{"type":"openapi","uri":"tickets.openapi.yaml"}},
 "services":{"tickets":{"source":"s"}},
 "secrets":{"demoKey":{"type":"literal","value":"$KEY"}}}
EOF
log "portcullis on $RT (no auth configured)"
# Host-level managed/user scopes are pointed at nothing so the machine's config cannot skew the run.
PORTCULLIS_MANAGED_CONFIG=$TMP/no-managed.json PORTCULLIS_USER_CONFIG=$TMP/no-user.json \
PORTCULLIS_LOG=${PORTCULLIS_LOG:-warn} "$BIN" serve --config "$TMP/project/.cli.json" \
    --addr "127.0.0.1:$RT_PORT" --state-dir "$STATE" >"$TMP/runtime.log" 2>&1 &
RT_PID=$!
PIDS+=($RT_PID)
wait_http "$RT/v1/runtime/info"
if [ "$ROW_NOSYNC" = 1 ]; then
    log "portcullis --audit-no-sync on $NS (durable audit off, for the cost of durability)"
    mkdir -p "$STATE/nosync"
    PORTCULLIS_MANAGED_CONFIG=$TMP/no-managed.json PORTCULLIS_USER_CONFIG=$TMP/no-user.json \
    PORTCULLIS_LOG=${PORTCULLIS_LOG:-warn} "$BIN" serve --config "$TMP/project/.cli.json" \
        --addr "127.0.0.1:$NS_PORT" --state-dir "$STATE/nosync" --instance-id nosync \
        --audit-no-sync >"$TMP/runtime-nosync.log" 2>&1 &
    NS_PID=$!
    PIDS+=($NS_PID)
    wait_http "$NS/v1/runtime/info"
fi

if [ -n "${BASELINE_BIN:-}" ]; then
    log "baseline portcullis ($BASELINE_BIN) on $BASE"
    mkdir -p "$STATE/base"
    PORTCULLIS_MANAGED_CONFIG=$TMP/no-managed.json PORTCULLIS_USER_CONFIG=$TMP/no-user.json \
    PORTCULLIS_LOG=${PORTCULLIS_LOG:-warn} "$BASELINE_BIN" serve --config "$TMP/project/.cli.json" \
        --addr "127.0.0.1:$BASE_PORT" --state-dir "$STATE/base" --instance-id base \
        >"$TMP/runtime-base.log" 2>&1 &
    BASE_PID=$!
    PIDS+=($BASE_PID)
    wait_http "$BASE/v1/runtime/info"
fi

# Sanity: each target answers 200 with the upstream body before we measure.
exec_body() { printf '{"toolId":"%s","pathArgs":[%s],"flags":{}}' "$1" "$2"; }
check_exec() {
    local body=$1 got
    got=$(curl -sS --max-time 5 -X POST "$RT/v1/tools/execute" -H 'Content-Type: application/json' -d "$body")
    case "$got" in
        *'"statusCode":200'*) log "runtime check ok: $got" ;;
        *) die "runtime answered $got for $body (log: $(tail -5 "$TMP/runtime.log"))" ;;
    esac
}
check_exec "$(exec_body tickets:getHealth '')"
[ "$ROW_KEY" = 1 ] && check_exec "$(exec_body tickets:getTicket '"1"')"

# ---------------------------------------------------------------- realistic rows
# The dev server bundles an OpenID issuer (host/src/dev/issuer.rs); the realistic runtimes trust
# it through the same `oidc_jwks` path as production and call the shared upstream.
REAL_POLICY='"deny":["tickets:deleteTicket"],"approvalRequired":["tickets:createTicket"]'
start_realistic() { # name port extra-json-members
    local name=$1 port=$2 extra=$3 got
    mkdir -p "$STATE/$name"
    cat >"$TMP/project/$name.cli.json" <<EOF
{"cli":"1.0.0","mode":{"default":"discover"},
 "runtime":{"mode":"remote","server":{"auth":$DEV_AUTH}},
 "sources":{"s":{"type":"openapi","uri":"tickets.openapi.yaml"}},
 "services":{"tickets":{"source":"s"}},
 "secrets":{"demoKey":{"type":"literal","value":"$KEY"}}$extra}
EOF
    PORTCULLIS_MANAGED_CONFIG=$TMP/no-managed.json PORTCULLIS_USER_CONFIG=$TMP/no-user.json \
    PORTCULLIS_LOG=${PORTCULLIS_LOG:-warn} "$BIN" serve --config "$TMP/project/$name.cli.json" \
        --addr "127.0.0.1:$port" --state-dir "$STATE/$name" --instance-id "$name" \
        >"$TMP/$name.log" 2>&1 &
    eval "${name//-/_}_PID=$!"
    PIDS+=($!)
    wait_http_auth "http://127.0.0.1:$port/v1/runtime/info"
    check_exec_at "http://127.0.0.1:$port" "$(exec_body tickets:getTicket '"1"')"
    got=$(curl -sS --max-time 5 -X POST "http://127.0.0.1:$port/v1/tools/execute" \
        -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
        -d "$(exec_body tickets:deleteTicket '"1"')")
    case "$got" in *denied*) ;; *) die "$name: the deny rule did not refuse: $got" ;; esac
}
wait_http_auth() {
    local i
    for i in $(seq 1 100); do
        curl -fsS -o /dev/null --max-time 1 -H "Authorization: Bearer $TOKEN" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    die "$1 did not become ready within 10 s"
}
check_exec_at() { # base body
    local got
    got=$(curl -sS --max-time 5 -X POST "$1/v1/tools/execute" -H "Authorization: Bearer $TOKEN" \
        -H 'Content-Type: application/json' -d "$2")
    case "$got" in
        *'"statusCode":200'*) log "check ok at $1" ;;
        *) die "$1 answered $got for $2" ;;
    esac
}
if [ "$ROW_REGO" = 1 ] && [ ! -f "$PLUGIN_DIR/rego_policy.wasm" ]; then
    log "no $PLUGIN_DIR/rego_policy.wasm (run plugins/build): skipping the Rego row"
    ROW_REGO=0
fi
if [ "$ROW_REAL" = 1 ] || [ "$ROW_REGO" = 1 ]; then
    log "dev server on $DEV (its issuer signs the realistic rows' token)"
    mkdir -p "$STATE/dev"
    PORTCULLIS_MANAGED_CONFIG=$TMP/no-managed.json PORTCULLIS_USER_CONFIG=$TMP/no-user.json \
    PORTCULLIS_LOG=${PORTCULLIS_LOG:-warn} "$BIN" serve --dev --addr "127.0.0.1:$DEV_PORT" \
        --state-dir "$STATE/dev" >"$TMP/dev.log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 1 100); do grep -q '^export PORTCULLIS_TOKEN=' "$TMP/dev.log" && break; sleep 0.1; done
    TOKEN=$(sed -n 's/^export PORTCULLIS_TOKEN=//p' "$TMP/dev.log")
    DEV_CONFIG=$(sed -n 's/.*config: //p' "$TMP/dev.log" | head -1)
    [ -n "$TOKEN" ] && [ -f "$DEV_CONFIG" ] || die "dev server did not print a token (log: $(tail -5 "$TMP/dev.log"))"
    DEV_AUTH=$(python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))["runtime"]["server"]["auth"]))' "$DEV_CONFIG")
fi
if [ "$ROW_REAL" = 1 ]; then
    log "portcullis realistic on $REAL (oidc_jwks, secrets, deny + approval rule)"
    start_realistic runtime-real "$REAL_PORT" ",\"policy\":{$REAL_POLICY}"
fi
if [ "$ROW_REGO" = 1 ]; then
    log "portcullis realistic + Rego plugin on $REGO"
    cp "$PLUGIN_DIR/rego_policy.wasm" "$TMP/project/rego_policy.wasm"
    REGO_PLUGIN=$(python3 -c '
import json, sys, hashlib
wasm, rego = sys.argv[1], open(sys.argv[2]).read()
print(json.dumps({"rego": {"path": wasm, "sha256": hashlib.sha256(open(wasm, "rb").read()).hexdigest(),
    "config": {"policies": {"portcullis.rego": rego}, "data": {"frozen_services": ["billing"]}}}}))
' "$TMP/project/rego_policy.wasm" plugins/rego-policy/examples/portcullis.rego)
    start_realistic runtime-rego "$REGO_PORT" ",\"plugins\":$REGO_PLUGIN,\"policy\":{$REAL_POLICY,\"plugins\":[\"rego\"]}"
fi

# ---------------------------------------------------------------- wrk scripts
lua_post() { # file body
    cat >"$1" <<EOF
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '$2'
EOF
}
lua_key() { # file
    cat >"$1" <<EOF
wrk.headers["X-Demo-Key"] = "$KEY"
EOF
}
lua_post "$TMP/exec-health.lua" "$(exec_body tickets:getHealth '')"
lua_post "$TMP/exec-ticket.lua" "$(exec_body tickets:getTicket '"1"')"
lua_key "$TMP/key.lua"
DOOR_CALL='{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"tickets.getHealth","arguments":{},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/clientInfo":{"name":"bench","version":"1"}}}}'
lua_post "$TMP/door-health.lua" "$DOOR_CALL"
cat >>"$TMP/door-health.lua" <<'EOF2'
wrk.headers["Accept"] = "application/json, text/event-stream"
wrk.headers["MCP-Protocol-Version"] = "2026-07-28"
wrk.headers["Mcp-Method"] = "tools/call"
wrk.headers["Mcp-Name"] = "tickets.getHealth"
EOF2
if [ "$ROW_DOOR" = 1 ]; then
    got=$(curl -sS --max-time 5 -X POST "$RT/mcp" -H 'Content-Type: application/json' \
        -H 'Accept: application/json, text/event-stream' -H 'MCP-Protocol-Version: 2026-07-28' \
        -H 'Mcp-Method: tools/call' -H 'Mcp-Name: tickets.getHealth' -d "$DOOR_CALL")
    case "$got" in
        *'"result"'*) log "MCP door check ok" ;;
        *) die "the MCP door answered $got" ;;
    esac
fi
if [ -n "${TOKEN:-}" ]; then
    lua_post "$TMP/exec-ticket-auth.lua" "$(exec_body tickets:getTicket '"1"')"
    echo "wrk.headers[\"Authorization\"] = \"Bearer $TOKEN\"" >>"$TMP/exec-ticket-auth.lua"
fi
: >"$TMP/none.lua"

# wrk output -> "rps p50 p99 non2xx errors"
parse_wrk() {
    awk '
        function us(v) {  # wrk latency -> microseconds
            if (v ~ /us$/) { sub(/us$/, "", v); return v + 0 }
            if (v ~ /ms$/) { sub(/ms$/, "", v); return v * 1000 }
            if (v ~ /s$/)  { sub(/s$/, "", v);  return v * 1000000 }
            return v + 0
        }
        $1 == "50%" { p50 = us($2) }
        $1 == "99%" { p99 = us($2) }
        /^Requests\/sec:/ { rps = $2 }
        / requests in / { reqs = $1 }
        /Non-2xx or 3xx responses:/ { non2xx = $NF }
        /Socket errors:/ { errs = $0; sub(/.*Socket errors: */, "", errs); gsub(/ /, "", errs) }
        END { printf "%s %s %s %s %s %s\n", rps, p50, p99, (non2xx == "" ? 0 : non2xx), (errs == "" ? "-" : errs), reqs }
    '
}

# utime+stime of a process (all its threads), in clock ticks.
cpu_ticks() {
    awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"
}
# CPU µs per request from two tick readings.
per_req() { # before after requests
    awk -v a="$1" -v b="$2" -v n="$3" -v hz="$CLK_TCK" 'BEGIN { if (n > 0) printf "%.1f", (b - a) * 1e6 / hz / n; else print "n/a" }'
}

RESULTS=()  # "name|rps|p50|p99|non2xx|errors|cpu µs/req server|cpu µs/req upstream"
run_target() { # name url lua server-pid
    local name=$1 url=$2 lua=$3 pid=$4 out
    log "warm-up $name ($WARMUP)"
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP" -s "$lua" "$url" >/dev/null 2>&1 || true
    sleep 1
    log "measure $name: wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency"
    local perf_pid=
    if [ -n "${PERF:-}" ] && [ "$name" = "${PERF_ROW:-runtime}" ] && command -v perf >/dev/null; then
        mkdir -p "$ROOT/target/bench"
        perf record -q -F 499 --call-graph dwarf,16384 -p "$pid" -o "$ROOT/target/bench/perf-$STAMP.data" >/dev/null 2>&1 &
        perf_pid=$!
        PIDS+=($perf_pid)
    fi
    local s0 u0 s1 u1 stat_pid=
    if command -v perf >/dev/null; then
        perf stat -e context-switches -e syscalls:sys_enter_fdatasync -x, -o "$TMP/cs-$name.txt" -p "$pid" >/dev/null 2>&1 &
        stat_pid=$!
        PIDS+=($stat_pid)
    fi
    s0=$(cpu_ticks "$pid"); u0=$(cpu_ticks "$UP_PID")
    out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$lua" "$url")
    s1=$(cpu_ticks "$pid"); u1=$(cpu_ticks "$UP_PID")
    if [ -n "$stat_pid" ]; then
        kill -INT "$stat_pid" 2>/dev/null || true
        wait "$stat_pid" 2>/dev/null || true
    fi
    if [ -n "$perf_pid" ]; then
        kill -INT "$perf_pid" 2>/dev/null || true
        wait "$perf_pid" 2>/dev/null || true
        log "perf data: target/bench/perf-$STAMP.data"
    fi
    printf '%s\n' "$out" >"$TMP/wrk-$name.txt"
    # shellcheck disable=SC2046
    set -- $(printf '%s\n' "$out" | parse_wrk)
    local cpu up cs=- syncs=-
    cpu=$(per_req "$s0" "$s1" "$6")
    up=$(per_req "$u0" "$u1" "$6")
    [ "$pid" = "$UP_PID" ] && up=-
    if [ -s "$TMP/cs-$name.txt" ]; then
        cs=$(awk -F, -v n="$6" '$3 == "context-switches" && n > 0 { printf "%.2f", $1 / n }' "$TMP/cs-$name.txt")
        syncs=$(awk -F, -v n="$6" '$3 == "syscalls:sys_enter_fdatasync" && n > 0 { printf "%.3f", $1 / n }' "$TMP/cs-$name.txt")
    fi
    RESULTS+=("$name|$1|$2|$3|$4|$5|$cpu|$up|${cs:--}|${syncs:--}")
    log "$name: $1 req/s, p50 ${2}us, p99 ${3}us, CPU ${cpu}µs/req (upstream $up), ctx switches/req $cs, fdatasync/req $syncs, non-2xx $4, socket errors $5"
    sleep 1
}

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
log "load average before the measured runs: $LOAD_BEFORE ($(nproc) cores)"
run_target direct "$UP/health" "$TMP/none.lua" "$UP_PID"
run_target nginx "$NGX/health" "$TMP/none.lua" "$NGX_WORKER"
run_target runtime "$RT/v1/tools/execute" "$TMP/exec-health.lua" "$RT_PID"
[ "$ROW_DOOR" = 1 ] && run_target runtime-door "$RT/mcp" "$TMP/door-health.lua" "$RT_PID"
[ -n "${BASELINE_BIN:-}" ] && run_target runtime-base "$BASE/v1/tools/execute" "$TMP/exec-health.lua" "$BASE_PID"
[ "$ROW_NOSYNC" = 1 ] && run_target runtime-nosync "$NS/v1/tools/execute" "$TMP/exec-health.lua" "$NS_PID"
[ "$ROW_INFO" = 1 ] && run_target runtime-info "$RT/v1/runtime/info" "$TMP/none.lua" "$RT_PID"
if [ "$ROW_KEY" = 1 ]; then
    run_target direct-key "$UP/tickets/1" "$TMP/key.lua" "$UP_PID"
    run_target runtime-key "$RT/v1/tools/execute" "$TMP/exec-ticket.lua" "$RT_PID"
fi
[ "$ROW_REAL" = 1 ] && run_target runtime-real "$REAL/v1/tools/execute" "$TMP/exec-ticket-auth.lua" "$runtime_real_PID"
[ "$ROW_REGO" = 1 ] && run_target runtime-rego "$REGO/v1/tools/execute" "$TMP/exec-ticket-auth.lua" "$runtime_rego_PID"

LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- report
field() { # name index
    local r
    for r in "${RESULTS[@]}"; do
        IFS='|' read -r -a f <<<"$r"
        [ "${f[0]}" = "$1" ] && { echo "${f[$2]}"; return; }
    done
}
fmt_ms() { awk -v u="$1" 'BEGIN { if (u >= 1000) printf "%.2f ms", u / 1000; else printf "%.0f µs", u }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f×", a / b; else print "n/a" }'; }

describe() {
    case $1 in
        direct) echo "direct: upstream \`GET /health\`" ;;
        nginx) echo "nginx \`proxy_pass\` + keepalive 64 → \`GET /health\`" ;;
        runtime) echo "portcullis \`tickets:getHealth\` (no auth, durable audit)" ;;
        runtime-base) echo "${BASELINE_LABEL:-baseline build}: \`tickets:getHealth\` (no auth, durable audit)" ;;
        runtime-door) echo "portcullis \`POST /mcp\` \`tools/call\` of \`tickets.getHealth\` (the MCP door, stateless 2026-07-28)" ;;
        runtime-nosync) echo "portcullis \`tickets:getHealth\`, \`--audit-no-sync\` (audit not durable)" ;;
        direct-key) echo "direct: upstream \`GET /tickets/1\` + \`X-Demo-Key\`" ;;
        runtime-key) echo "portcullis \`tickets:getTicket\` (key injected from \`secrets\`)" ;;
        runtime-info) echo "portcullis \`GET /v1/runtime/info\` (no tool call)" ;;
        runtime-real) echo "portcullis \`tickets:getTicket\`, realistic: \`oidc_jwks\` warm token, key from \`secrets\`, deny + approval rules" ;;
        runtime-rego) echo "realistic + Rego policy plugin" ;;
    esac
}

{
    echo "### e2e run $STAMP"
    echo
    echo "Machine: $(nproc) cores, $(uname -r); $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2); $("$NGINX" -v 2>&1 | sed 's/.*: //')"
    echo "wrk \`-t$THREADS -c$CONNECTIONS -d$DURATION --latency\` (warm-up $WARMUP per target); nginx worker_processes $NGINX_WORKERS; all processes share the same cores; runtime state dir on $(df --output=fstype "$STATE" | tail -1); load average before/after: $LOAD_BEFORE / $LOAD_AFTER (other work on the machine skews absolute figures, not the in-run ratios as much)."
    echo
    echo "| target | req/s | p50 | p99 | req/s ÷ nginx | p99 ÷ nginx | CPU µs/req (server) | CPU µs/req (upstream) | ctx switches/req (server) | fdatasync/req (server) | non-2xx | socket errors |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    for r in "${RESULTS[@]}"; do
        IFS='|' read -r name rps p50 p99 non2xx errs cpu up cs syncs <<<"$r"
        printf '| %s | %.0f | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$(describe "$name")" "$rps" \
            "$(fmt_ms "$p50")" "$(fmt_ms "$p99")" "$(ratio "$rps" "$(field nginx 1)")" \
            "$(ratio "$p99" "$(field nginx 3)")" "$cpu" "$up" "$cs" "$syncs" "$non2xx" "$errs"
    done
    echo
    echo "**runtime / nginx throughput: $(ratio "$(field runtime 1)" "$(field nginx 1)")** (goal ≥ 0.70×); runtime CPU per call: **$(field runtime 6) µs** (goal ≤ 75); nginx / direct: $(ratio "$(field nginx 1)" "$(field direct 1)")"
    if [ "$ROW_DOOR" = 1 ]; then
        echo
        echo "**MCP door vs execute, CPU per call: $(field runtime-door 6) ÷ $(field runtime 6) µs = $(ratio "$(field runtime-door 6)" "$(field runtime 6)")** (issue #18 goal ≤ 1.10×)"
    fi
    if [ "$ROW_NOSYNC" = 1 ]; then
        echo
        echo "**durable audit cost: $(awk -v a="$(field runtime 1)" -v b="$(field runtime-nosync 1)" 'BEGIN { if (b > 0) printf "%.1f%%", (1 - a / b) * 100; else print "n/a" }')** of \`--audit-no-sync\` throughput (goal ≤ 5%)"
    fi
    if [ "$ROW_REAL" = 1 ] && [ "$ROW_REGO" = 1 ]; then
        echo
        echo "**Rego plugin share of the realistic call's CPU: $(awk -v a="$(field runtime-real 6)" -v b="$(field runtime-rego 6)" 'BEGIN { if (b > 0) printf "%.1f µs, %.0f%%", b - a, (b - a) / b * 100; else print "n/a" }')**"
    fi
} >"$TMP/report.md"

mkdir -p "$(dirname "$OUT")"
cp "$TMP/report.md" "$OUT"
{
    echo
    echo "<details><summary>raw wrk output</summary>"
    echo
    echo '```'
    for r in "${RESULTS[@]}"; do
        name=${r%%|*}
        echo "== $name"
        cat "$TMP/wrk-$name.txt"
    done
    echo '```'
    echo "</details>"
} >>"$OUT"
cat "$TMP/report.md"
if [ "$ROW_MCP" = 1 ]; then
    log "MCP rows: bench/mcp.sh"
    {
        echo
        echo "### MCP tool calls"
        echo
        PORTCULLIS_BIN=$BIN DURATION=${DURATION%s} WARMUP=${WARMUP%s} OUT=$TMP/mcp.md "$ROOT/bench/mcp.sh"
    } | tee -a "$OUT"
fi
log "written to $OUT"
