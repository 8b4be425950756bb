#!/usr/bin/env bash
# Warm GET /v1/catalog/effective latency for GitHub's REST API catalog (1,223 tools).
#
#   bench/catalog-effective.sh            # DURATION=10s by default
#
# Serves api.github.com.json from @octokit/openapi (installed by tests/run) through a release
# build, then drives the route with wrk on one connection (latency) and on eight (throughput),
# once as plain JSON and once with Accept-Encoding: gzip (what the open-cli Go client sends).
# Then the same catalog behind runtime auth (`oidc_jwks`, the real `oidc-provider` issuer in
# tests/peers/idp): a caller whose token grants `bundle:github` gets the scope-filtered view (its
# own render, cached per scope set) and every request is authenticated and audited. Each row also
# gives the runtime's CPU per request (utime+stime from /proc/<pid>/stat over the run).
# Loopback only; stops everything it started. PORTCULLIS_BIN=path skips the build.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
DURATION="${DURATION:-10s}"
command -v wrk >/dev/null || apt-get install -y wrk >/dev/null
[ -f tests/peers/node_modules/@octokit/openapi/generated/api.github.com.json ] || npm ci --prefix tests/peers --no-audit --no-fund --ignore-scripts
bin="${PORTCULLIS_BIN:-target/release/portcullis}"
[ -n "${PORTCULLIS_BIN:-}" ] || cargo build --release -p portcullis >/dev/null
tick_us=$((1000000 / $(getconf CLK_TCK)))
cpu_us() { awk -v t="$tick_us" '{ sub(/^.*\) /, ""); print ($12 + $13) * t }' "/proc/$1/stat"; }

work="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
cat > "$work/.cli.json" <<JSON
{"cli":"1.0.0","mode":{"default":"discover"},
 "sources":{"gh":{"type":"openapi","uri":"$root/tests/peers/node_modules/@octokit/openapi/generated/api.github.com.json"}},
 "services":{"github":{"source":"gh"}}}
JSON
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
PORTCULLIS_MANAGED_CONFIG=/nonexistent PORTCULLIS_USER_CONFIG=/nonexistent PORTCULLIS_LOG=warn \
  "$bin" serve --config "$work/.cli.json" --addr "127.0.0.1:$port" --state-dir "$work/state" &
pid=$!
url="http://127.0.0.1:$port/v1/catalog/effective"
for _ in $(seq 100); do curl -sf -o /dev/null "$url" && break; sleep 0.1; done

plain=$(curl -s -o /dev/null -w '%{size_download}' "$url")
zipped=$(curl -s -o /dev/null -H 'Accept-Encoding: gzip' -w '%{size_download}' "$url")
echo "response size: $plain bytes plain, $zipped bytes gzip"
printf 'wrk.headers["Accept-Encoding"] = "gzip"\n' > "$work/gzip.lua"

run() { # label connections [script]
  local out cpu0 cpu1 requests
  cpu0=$(cpu_us "$pid")
  out=$(wrk -t1 -c"$2" -d"$DURATION" --latency ${3:+-s "$3"} "$url")
  cpu1=$(cpu_us "$pid")
  grep -q 'Non-2xx' <<<"$out" && { echo "non-2xx answers: $out" >&2; exit 1; }
  requests=$(awk '/requests in/ {print $1}' <<<"$out")
  printf '| %s | %s | %s | %s | %s | %s |\n' "$1" "$2" \
    "$(awk '/Requests\/sec/ {print $2}' <<<"$out")" \
    "$(awk '$1=="50%" {print $2}' <<<"$out")" "$(awk '$1=="99%" {print $2}' <<<"$out")" \
    "$(awk -v a="$cpu0" -v b="$cpu1" -v n="$requests" 'BEGIN { printf "%.0f", (b - a) / n }')"
}
echo
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| encoding | connections | req/s | p50 | p99 | CPU per request (µs) |"
echo "|---|---|---|---|---|---|"
run plain 1
run gzip 1 "$work/gzip.lua"
run plain 8
run gzip 8 "$work/gzip.lua"

# ---- the same catalog behind runtime auth: the scope-filtered view of a `bundle:github` caller
idp_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
PORT=$idp_port SCOPES="bundle:github" node tests/peers/idp/issuer.mjs >"$work/idp.log" 2>&1 &
for _ in $(seq 100); do grep -q ready "$work/idp.log" && break; sleep 0.1; done
issuer="http://127.0.0.1:$idp_port"
mkdir -p "$work/auth"
cat > "$work/auth/.cli.json" <<JSON
{"cli":"1.0.0","mode":{"default":"discover"},
 "sources":{"gh":{"type":"openapi","uri":"$root/tests/peers/node_modules/@octokit/openapi/generated/api.github.com.json"}},
 "services":{"github":{"source":"gh"}},
 "runtime":{"server":{"auth":{"validationProfile":"oidc_jwks","issuer":"$issuer","jwksURL":"$issuer/jwks",
   "audience":"https://runtime.local/api"}}}}
JSON
auth_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
PORTCULLIS_MANAGED_CONFIG=/nonexistent PORTCULLIS_USER_CONFIG=/nonexistent PORTCULLIS_LOG=warn \
  "$bin" serve --config "$work/auth/.cli.json" --addr "127.0.0.1:$auth_port" --state-dir "$work/auth-state" &
pid=$!
url="http://127.0.0.1:$auth_port/v1/catalog/effective"
token=$(curl -sf -u runtime-client:runtime-secret -d grant_type=client_credentials -d scope=bundle:github \
  -d resource=https://runtime.local/api "$issuer/token" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
for _ in $(seq 100); do curl -sf -o /dev/null -H "Authorization: Bearer $token" "$url" && break; sleep 0.1; done
printf 'wrk.headers["Authorization"] = "Bearer %s"\nwrk.headers["Accept-Encoding"] = "gzip"\n' "$token" > "$work/auth-gzip.lua"
printf 'wrk.headers["Authorization"] = "Bearer %s"\n' "$token" > "$work/auth-plain.lua"
echo
echo "With runtime auth (oidc_jwks, warm token granting bundle:github; every request audited):"
echo
echo "| encoding | connections | req/s | p50 | p99 | CPU per request (µs) |"
echo "|---|---|---|---|---|---|"
run "filtered gzip" 1 "$work/auth-gzip.lua"
run "filtered gzip" 8 "$work/auth-gzip.lua"
run "filtered plain" 1 "$work/auth-plain.lua"
