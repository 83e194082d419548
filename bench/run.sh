#!/usr/bin/env bash
# Side-by-side throughput of Portcullis and a hello-world axum server, in one
# run on this machine, reported as ratios (machines here are noisy; absolute
# numbers mean little). Needs wrk (apt-get install wrk).
#
#   bench/run.sh            # 10 s per endpoint
#   DURATION=30s bench/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-32}
command -v wrk >/dev/null || { echo "bench: wrk is required (apt-get install wrk)" >&2; exit 1; }

cargo build --release --quiet --bin portcullis --example hello
target_dir=$(cd "${CARGO_TARGET_DIR:-target}" && pwd)
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

PORT=18001 "$target_dir"/release/examples/hello &
(cd "$work" && SECRET_KEY=$(printf 'b%.0s' {1..48}) PORT=18002 RATE_LIMIT_ENABLED=false \
    LOG_FORMAT=json RUST_LOG=warn "$target_dir/release/portcullis" serve) &
for port in 18001 18002; do
    for _ in $(seq 1 100); do curl -s -o /dev/null "127.0.0.1:$port/" && break; sleep 0.1; done
done

curl -fs -X POST 127.0.0.1:18002/api/auth/register -H 'content-type: application/json' \
    -d '{"email":"bench@example.com","password":"bench-password-42"}' -o "$work/reg.json"
token=$(python3 -c 'import json,sys;print(json.load(open(sys.argv[1]))["data"]["access_token"])' "$work/reg.json")

cat > "$work/login.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"email":"bench@example.com","password":"bench-password-42"}'
LUA

rps() { # url [wrk args…] → requests/second
    local url=$1; shift
    wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency "$@" "$url" > "$work/out.txt"
    grep -q 'Non-2xx' "$work/out.txt" && { echo "bench: non-2xx answers from $url" >&2; cat "$work/out.txt" >&2; }
    awk '/Requests\/sec/ {print $2}' "$work/out.txt"
}
p99() { awk '/ 99%/ {print $2}' "$work/out.txt"; }

hello=$(rps http://127.0.0.1:18001/);                                 hello_p99=$(p99)
health=$(rps http://127.0.0.1:18002/healthz);                         health_p99=$(p99)
me=$(rps http://127.0.0.1:18002/api/auth/me -H "Authorization: Bearer $token"); me_p99=$(p99)
login=$(CONNECTIONS=8 rps http://127.0.0.1:18002/api/auth/login/json -s "$work/login.lua"); login_p99=$(p99)

printf '%-28s %12s %10s %14s\n' endpoint req/s p99 "vs hello-world"
for row in "hello-world axum|$hello|$hello_p99" "GET /healthz|$health|$health_p99" \
           "GET /api/auth/me (JWT+session)|$me|$me_p99" "POST /login/json (argon2id)|$login|$login_p99"; do
    IFS='|' read -r name r p <<<"$row"
    printf '%-28s %12s %10s %13.3fx\n' "$name" "$r" "$p" "$(python3 -c "print($r/$hello)")"
done
echo "(cores: $(nproc); login is bound by argon2id, ~1 hash per core at a time)"
