#!/usr/bin/env bash
# MCP tool calls through the runtime's pooled session vs the official SDK client calling the same
# server directly, over stdio and over streamable HTTP (issue #16, item 3).
#
# In one run, with CONCURRENCY calls in flight everywhere:
#   sdk-stdio   : tests/peers/mcp/bench-client.mjs (official TypeScript SDK client, one session)
#                 spawns server-everything over stdio and calls `echo`
#   rt-stdio    : wrk POSTs {"toolId":"evstdio:echo",...} to portcullis /v1/tools/execute; the
#                 runtime keeps one pooled stdio session to its own server-everything child
#   sdk-http    : the SDK client over streamable HTTP to a server-everything on loopback
#   rt-http     : wrk -> portcullis -> pooled streamable-HTTP session -> the same server
# For every row: calls/s, and CPU per call (utime+stime from /proc/<pid>/stat over the measured
# run, divided by calls) of the caller (the SDK client's Node process, or the runtime) and of the
# MCP server. The runtime's own overhead per call is its CPU per call; the server's is shown so the
# rows can be compared end to end.
#
# Env: DURATION=10 (s) WARMUP=3 (s) CONCURRENCY=16 PORTCULLIS_BIN=path (else target/release,
#      built if missing) OUT=path (default target/bench/mcp-<date>.md)
# Needs: node, wrk, curl, python3, the npm peers (npm ci --prefix tests/peers).
set -euo pipefail

DURATION=${DURATION:-10}
WARMUP=${WARMUP:-3}
CONCURRENCY=${CONCURRENCY:-16}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT=${OUT:-$ROOT/target/bench/mcp-$STAMP.md}
TMP=$(mktemp -d /tmp/portcullis-mcp-bench.XXXXXX)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    sleep 0.3
    for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
log() { printf '[mcp] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

command -v wrk >/dev/null || apt-get install -y wrk >/dev/null
command -v node >/dev/null || die "node is required (the MCP server and the SDK client run on it)"
SERVER=$ROOT/tests/peers/node_modules/.bin/mcp-server-everything
[ -x "$SERVER" ] || npm ci --prefix tests/peers --no-audit --no-fund >&2
BIN=${PORTCULLIS_BIN:-$ROOT/target/release/portcullis}
if [ -z "${PORTCULLIS_BIN:-}" ]; then cargo build --release -p portcullis >&2; fi
[ -x "$BIN" ] || die "no binary at $BIN"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
TICK_US=$((1000000 / $(getconf CLK_TCK)))
# utime+stime of one process (its own threads, not its children), in microseconds.
cpu_us() { awk -v t="$TICK_US" '{ sub(/^.*\) /, ""); print ($12 + $13) * t }' "/proc/$1/stat"; }
per_call() { python3 -c "import sys; a,b,n=map(float,sys.argv[1:]); print(f'{(b-a)/n:.1f}' if n else '-')" "$@"; }

# ---------------------------------------------------------------- the streamable-HTTP server
MCP_PORT=$(free_port)
# server-everything listens on all interfaces: only for the length of this run.
PORT=$MCP_PORT "$SERVER" streamableHttp >"$TMP/mcp-http.log" 2>&1 &
MCP_HTTP_PID=$!
PIDS+=($MCP_HTTP_PID)
for _ in $(seq 100); do
    curl -s -o /dev/null "http://127.0.0.1:$MCP_PORT/mcp" && break
    sleep 0.1
done
# The npm bin is a shell shim or node; the process that burns CPU is the node child, if any.
server_pid() { local child; child=$(pgrep -P "$1" | head -1 || true); echo "${child:-$1}"; }

RESULTS=() # "row|calls/s|caller µs/call|server µs/call"

# ---------------------------------------------------------------- SDK client rows
sdk_row() { # name mode target [server pid, for http]
    local name=$1 mode=$2 target=$3 srv=${4:-} line cpu0 scpu0 cpu1 scpu1 result
    log "$name: official SDK client, $CONCURRENCY in flight, ${WARMUP}s warm-up, ${DURATION}s measured"
    coproc CLIENT { CONCURRENCY=$CONCURRENCY DURATION_MS=$((DURATION * 1000)) WARMUP_MS=$((WARMUP * 1000)) \
        node tests/peers/mcp/bench-client.mjs "$mode" "$target" 2>"$TMP/$name.err"; }
    local client=$CLIENT_PID
    while read -r line <&"${CLIENT[0]}"; do
        case "$line" in
            *serverPid*) srv=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["serverPid"])' "$line") ;;
            *measure*) break ;;
        esac
    done
    srv=$(server_pid "$srv")
    scpu0=$(cpu_us "$srv")
    echo go >&"${CLIENT[1]}"
    read -r result <&"${CLIENT[0]}"
    scpu1=$(cpu_us "$srv")
    echo done >&"${CLIENT[1]}"
    wait "$client" 2>/dev/null || true
    local calls seconds client_us
    read -r calls seconds client_us < <(python3 -c 'import json,sys; r=json.loads(sys.argv[1]); print(r["calls"], r["seconds"], r["clientCpuUs"])' "$result")
    RESULTS+=("$name|$(python3 -c "print(f'{$calls/$seconds:.0f}')")|$(per_call 0 "$client_us" "$calls")|$(per_call "$scpu0" "$scpu1" "$calls")")
    log "$name: $calls calls in ${seconds}s"
}

# ---------------------------------------------------------------- the runtime
RT_PORT=$(free_port)
RT=http://127.0.0.1:$RT_PORT
mkdir -p "$TMP/project" "$TMP/state"
cat >"$TMP/project/.cli.json" <<EOF
{"cli":"1.0.0","mode":{"default":"discover"},"runtime":{"mode":"remote"},
 "sources":{
   "evstdio":{"type":"mcp","transport":{"type":"stdio","command":"$SERVER","args":["stdio"]}},
   "evhttp":{"type":"mcp","transport":{"type":"streamable-http","url":"http://127.0.0.1:$MCP_PORT/mcp"}}}}
EOF
PORTCULLIS_MANAGED_CONFIG=$TMP/none.json PORTCULLIS_USER_CONFIG=$TMP/none.json PORTCULLIS_LOG=warn \
    "$BIN" serve --config "$TMP/project/.cli.json" --addr "127.0.0.1:$RT_PORT" --state-dir "$TMP/state" \
    >"$TMP/runtime.log" 2>&1 &
RT_PID=$!
PIDS+=($RT_PID)
for _ in $(seq 100); do curl -fs -o /dev/null "$RT/v1/runtime/info" && break; sleep 0.1; done
body() { printf '{"toolId":"%s","body":{"message":"hello"}}' "$1"; }
for tool in evstdio:echo evhttp:echo; do
    got=$(curl -sS --max-time 10 -X POST "$RT/v1/tools/execute" -H 'Content-Type: application/json' -d "$(body $tool)")
    case "$got" in *hello*) ;; *) die "runtime answered $got for $tool (log: $(tail -5 "$TMP/runtime.log"))" ;; esac
done
# The runtime's stdio server is its child (through the npm shim, if any).
RT_STDIO_SERVER=$(pgrep -P "$RT_PID" | head -1)
RT_STDIO_SERVER=$(server_pid "$RT_STDIO_SERVER")

rt_row() { # name tool server-pid
    local name=$1 tool=$2 srv=$3 out cpu0 cpu1 scpu0 scpu1 requests rps
    printf 'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = %s\n' \
        "'$(body "$tool")'" >"$TMP/$name.lua"
    log "$name: wrk -t2 -c$CONCURRENCY, ${WARMUP}s warm-up, ${DURATION}s measured"
    wrk -t2 -c"$CONCURRENCY" -d"${WARMUP}s" -s "$TMP/$name.lua" "$RT/v1/tools/execute" >/dev/null
    cpu0=$(cpu_us "$RT_PID"); scpu0=$(cpu_us "$srv")
    out=$(wrk -t2 -c"$CONCURRENCY" -d"${DURATION}s" -s "$TMP/$name.lua" "$RT/v1/tools/execute")
    cpu1=$(cpu_us "$RT_PID"); scpu1=$(cpu_us "$srv")
    printf '%s\n' "$out" >"$TMP/wrk-$name.txt"
    grep -q 'Non-2xx' <<<"$out" && die "$name: non-2xx answers: $out"
    requests=$(awk '/requests in/ {print $1}' <<<"$out")
    rps=$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' <<<"$out")
    RESULTS+=("$name|$rps|$(per_call "$cpu0" "$cpu1" "$requests")|$(per_call "$scpu0" "$scpu1" "$requests")")
    log "$name: $requests calls, $rps/s"
}

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
sdk_row sdk-stdio stdio "$SERVER"
rt_row rt-stdio evstdio:echo "$RT_STDIO_SERVER"
sdk_row sdk-http http "http://127.0.0.1:$MCP_PORT/mcp" "$MCP_HTTP_PID"
rt_row rt-http evhttp:echo "$(server_pid "$MCP_HTTP_PID")"
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

mkdir -p "$(dirname "$OUT")"
{
    echo "MCP \`echo\` on server-everything, $CONCURRENCY calls in flight, ${DURATION}s measured after ${WARMUP}s warm-up; $(date -u '+%Y-%m-%d %H:%M UTC'); $(nproc) cores; load average before/after: $LOAD_BEFORE / $LOAD_AFTER"
    echo
    echo "| row | calls/s | caller CPU per call (µs) | MCP server CPU per call (µs) |"
    echo "|---|---:|---:|---:|"
    for r in "${RESULTS[@]}"; do
        IFS='|' read -r name rps caller server <<<"$r"
        echo "| $name | $rps | $caller | $server |"
    done
    echo
    echo "Caller = the official SDK client's Node process (sdk-*) or the portcullis process (rt-*, its own"
    echo "threads: parse, admit, policy, audit with durable intent records, the pooled MCP session, render)."
} | tee "$OUT"
log "written to $OUT"
