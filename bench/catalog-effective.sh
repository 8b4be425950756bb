#!/usr/bin/env bash
# Warm GET /v1/catalog/effective latency for GitHub's REST API catalog (1,223 tools).
#
#   bench/catalog-effective.sh            # DURATION=10s by default
#
# Serves api.github.com.json from @octokit/openapi (installed by tests/run) through a release
# build, then drives the route with wrk on one connection (latency) and on eight (throughput),
# once as plain JSON and once with Accept-Encoding: gzip (what the open-cli Go client sends).
# Loopback only; stops everything it started.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
DURATION="${DURATION:-10s}"
command -v wrk >/dev/null || apt-get install -y wrk >/dev/null
[ -f tests/peers/node_modules/@octokit/openapi/generated/api.github.com.json ] || npm ci --prefix tests/peers --no-audit --no-fund --ignore-scripts
cargo build --release -p portcullis >/dev/null

work="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
cat > "$work/.cli.json" <<JSON
{"cli":"1.0.0","mode":{"default":"discover"},
 "sources":{"gh":{"type":"openapi","uri":"$root/tests/peers/node_modules/@octokit/openapi/generated/api.github.com.json"}},
 "services":{"github":{"source":"gh"}}}
JSON
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
PORTCULLIS_MANAGED_CONFIG=/nonexistent PORTCULLIS_USER_CONFIG=/nonexistent PORTCULLIS_LOG=warn \
  target/release/portcullis serve --config "$work/.cli.json" --addr "127.0.0.1:$port" --state-dir "$work/state" &
url="http://127.0.0.1:$port/v1/catalog/effective"
for _ in $(seq 100); do curl -sf -o /dev/null "$url" && break; sleep 0.1; done

plain=$(curl -s -o /dev/null -w '%{size_download}' "$url")
zipped=$(curl -s -o /dev/null -H 'Accept-Encoding: gzip' -w '%{size_download}' "$url")
echo "response size: $plain bytes plain, $zipped bytes gzip"
printf 'wrk.headers["Accept-Encoding"] = "gzip"\n' > "$work/gzip.lua"

run() { # label connections [script]
  local out
  out=$(wrk -t1 -c"$2" -d"$DURATION" --latency ${3:+-s "$3"} "$url")
  printf '| %s | %s | %s | %s | %s |\n' "$1" "$2" \
    "$(awk '/Requests\/sec/ {print $2}' <<<"$out")" \
    "$(awk '$1=="50%" {print $2}' <<<"$out")" "$(awk '$1=="99%" {print $2}' <<<"$out")"
}
echo
echo "| encoding | connections | req/s | p50 | p99 |"
echo "|---|---|---|---|---|"
run plain 1
run gzip 1 "$work/gzip.lua"
run plain 8
run gzip 8 "$work/gzip.lua"
