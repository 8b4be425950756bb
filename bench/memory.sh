#!/usr/bin/env bash
# Resident memory of a release runtime serving GitHub's REST catalog (1,223 tools, from
# @octokit/openapi) with the three example plugins loaded and prewarmed (issue #16, item 6):
# `age-secrets` as a secret source, `rego-policy` (plugins/rego-policy/examples/portcullis.rego)
# as a policy evaluator, `apikey-auth` as the runtime's auth profile.
#
# Prints VmRSS (split into anonymous and file-backed pages) right after the runtime answers, again
# after IDLE seconds idle, after CALLS authenticated requests (catalog + policy explain, which runs
# the Rego plugin), again after IDLE seconds idle, and VmHWM (the peak, reached while the catalog
# is built). Loopback only; stops everything it started.
#
# Env: IDLE=10 (s) CALLS=200 PORTCULLIS_BIN=path (else target/release/portcullis, built if missing)
#      PREWARM=4 (each plugin's prewarm.instances; 0 prepares per call) PLUGINS=1 (0: the catalog
#      alone, auth off, to tell the plugins' share from the catalog's)
# Needs: the npm peers (npm ci --prefix tests/peers), `age` (apt-get install -y age), the
# wasm32-wasip2 target (plugins/build adds it).
set -euo pipefail
IDLE=${IDLE:-10}
PREWARM=${PREWARM:-4}
PLUGINS=${PLUGINS:-1}
CALLS=${CALLS:-200}
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
command -v age >/dev/null || apt-get install -y age >/dev/null
gh=tests/peers/node_modules/@octokit/openapi/generated/api.github.com.json
[ -f "$gh" ] || npm ci --prefix tests/peers --no-audit --no-fund --ignore-scripts >&2
bin="${PORTCULLIS_BIN:-target/release/portcullis}"
[ -n "${PORTCULLIS_BIN:-}" ] || cargo build --release -p portcullis >&2
work="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
PORTCULLIS_PLUGIN_DIR="$work/plugins" plugins/build >&2

mkdir -p "$work/keys" "$work/secrets"
age-keygen -o "$work/keys/identity.txt" 2>/dev/null
recipient=$(age-keygen -y "$work/keys/identity.txt")
printf 'GITHUB_TOKEN=ghp_bench0123456789\n' | age -r "$recipient" -o "$work/secrets/app.env.age"
api_key=$(openssl rand -hex 24)
salt=$(openssl rand -hex 16)
digest=$(printf '%s%s' "$salt" "$api_key" | sha256sum | cut -d' ' -f1)
rego=$(python3 -c 'import json,sys; print(json.dumps(open(sys.argv[1]).read()))' plugins/rego-policy/examples/portcullis.rego)
cat > "$work/.cli.json" <<JSON
{"cli":"1.0.0","mode":{"default":"discover"},
 "sources":{"gh":{"type":"openapi","uri":"$root/$gh"}},
 "services":{"github":{"source":"gh"}},
 "plugins":{
   "age":{"path":"plugins/age_secrets.wasm","prewarm":{"instances":$PREWARM},"grants":{"files":["secrets","keys"]},
          "config":{"secretsFile":"$work/secrets/app.env.age","identityFile":"$work/keys/identity.txt"}},
   "rego":{"path":"plugins/rego_policy.wasm","prewarm":{"instances":$PREWARM},"config":{"policies":{"portcullis.rego":$rego}}},
   "keys":{"path":"plugins/apikey_auth.wasm","prewarm":{"instances":$PREWARM},"config":{"keys":[
     {"id":"bench","salt":"$salt","sha256":"$digest","principal":"svc:bench","scopes":["bundle:github"]}]}}},
 "secrets":{"github.token":{"type":"plugin","plugin":"age","value":"GITHUB_TOKEN"}},
 "policy":{"plugins":["rego"]},
 "runtime":{"server":{"auth":{"validationProfile":"plugin","plugin":"keys","audience":"portcullis"}}}}
JSON
if [ "$PLUGINS" = 0 ]; then
  cat > "$work/.cli.json" <<JSON
{"cli":"1.0.0","mode":{"default":"discover"},
 "sources":{"gh":{"type":"openapi","uri":"$root/$gh"}},
 "services":{"github":{"source":"gh"}}}
JSON
fi
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
PORTCULLIS_MANAGED_CONFIG=/nonexistent PORTCULLIS_USER_CONFIG=/nonexistent PORTCULLIS_LOG=warn \
  "$bin" serve --config "$work/.cli.json" --addr "127.0.0.1:$port" --state-dir "$work/state" &
pid=$!
base="http://127.0.0.1:$port"
auth=(-H "Authorization: Bearer $api_key")
for _ in $(seq 600); do curl -sf -o /dev/null "${auth[@]}" "$base/v1/runtime/info" && break; sleep 0.1; done
curl -sf -o /dev/null "${auth[@]}" "$base/v1/runtime/info" || { echo "runtime did not start" >&2; exit 1; }
kib() { awk -v k="$1" '$1 == k":" {print $2}' "/proc/$pid/status"; }
row() {
  printf '| %s | %.1f MiB | %.1f MiB | %.1f MiB |\n' "$1" "$(awk -v k="$(kib VmRSS)" 'BEGIN {print k / 1024}')" \
    "$(awk -v k="$(kib RssAnon)" 'BEGIN {print k / 1024}')" "$(awk -v k="$(kib RssFile)" 'BEGIN {print k / 1024}')"
}
echo "plugins: $([ "$PLUGINS" = 0 ] && echo none || echo "3, prewarm.instances $PREWARM"); $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| moment | resident (VmRSS) | anonymous (heap, stacks, plugin memory) | file-backed (the binary's pages) |"
echo "|---|---:|---:|---:|"
row "ready (catalog built, plugins loaded and prewarmed)"
sleep "$IDLE"
row "after ${IDLE} s idle"
tool=$(curl -sf "${auth[@]}" "$base/v1/catalog/effective" | python3 -c 'import json,sys; print(json.load(sys.stdin)["catalog"]["tools"][0]["id"])')
for _ in $(seq "$CALLS"); do
  curl -sf -o /dev/null -H 'Accept-Encoding: gzip' "${auth[@]}" "$base/v1/catalog/effective"
  curl -sf -o /dev/null "${auth[@]}" -H 'Content-Type: application/json' \
    -d "{\"toolId\":\"$tool\"}" "$base/v1/policy/explain" || true
done
row "after $CALLS catalog reads and $CALLS policy explanations"
sleep "$IDLE"
row "after those and ${IDLE} s idle"
printf '| peak (VmHWM) | %.1f MiB | | |\n' "$(awk -v k="$(kib VmHWM)" 'BEGIN {print k / 1024}')"
