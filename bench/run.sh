#!/usr/bin/env bash
# Side-by-side throughput of Portcullis and a hello-world axum server, in one
# run on this machine, reported as ratios (machines here are noisy; absolute
# numbers mean little). Needs wrk (apt-get install wrk).
#
#   bench/run.sh            # 10 s per endpoint
#   DURATION=30s bench/run.sh
#
# With PostgreSQL reachable (PG_URL, default postgres://postgres@127.0.0.1:5432,
# which needs psql), GET /me is also measured on a second instance backed by
# a fresh database `portcullis_bench`; PG=0 skips it.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-32}
command -v wrk >/dev/null || { echo "bench: wrk is required (apt-get install wrk)" >&2; exit 1; }

cargo build --release --quiet --bin portcullis --example hello
target_dir=$(cd "${CARGO_TARGET_DIR:-target}" && pwd)
work=$(mktemp -d)
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432}
pg=0
cleanup() {
    kill $(jobs -p) 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$work"
    if [ $pg = 1 ]; then
        PGOPTIONS='-c client_min_messages=warning' psql "$PG_URL/postgres" -qc 'DROP DATABASE IF EXISTS portcullis_bench WITH (FORCE)' >/dev/null 2>&1 || true
    fi
}
trap cleanup EXIT

# Any key that passes the strength rule (32+ bytes, not one repeated character).
BENCH_SECRET=portcullis-bench-secret-0123456789-abcdefghijklmnop
PORT=18001 "$target_dir"/release/examples/hello &
# The same server with the rate limits on (the default), for the cost of a
# refused login.
(mkdir -p "$work/limited" && cd "$work/limited" && SECRET_KEY=$BENCH_SECRET PORT=18004 \
    LOG_FORMAT=json RUST_LOG=warn exec "$target_dir/release/portcullis" serve) &
(cd "$work" && SECRET_KEY=$BENCH_SECRET PORT=18002 RATE_LIMIT_ENABLED=false \
    LOG_FORMAT=json RUST_LOG=warn exec "$target_dir/release/portcullis" serve) &
if [ "${PG:-1}" != 0 ] && command -v psql >/dev/null && psql "$PG_URL/postgres" -qAtc 'select 1' >/dev/null 2>&1; then
    pg=1
    PGOPTIONS='-c client_min_messages=warning' psql "$PG_URL/postgres" -qc 'DROP DATABASE IF EXISTS portcullis_bench' -c 'CREATE DATABASE portcullis_bench' >/dev/null
    (cd "$work" && SECRET_KEY=$BENCH_SECRET PORT=18003 RATE_LIMIT_ENABLED=false \
        DATABASE_URL="$PG_URL/portcullis_bench" LOG_FORMAT=json RUST_LOG=warn \
        exec "$target_dir/release/portcullis" serve) &
fi
ports="18001 18002 18004"; [ $pg = 1 ] && ports="$ports 18003"
for port in $ports; do
    for _ in $(seq 1 100); do curl -s -o /dev/null "127.0.0.1:$port/" && break; sleep 0.1; done
done

register() { # port → access token of a new user
    curl -fs -X POST "127.0.0.1:$1/api/auth/register" -H 'content-type: application/json' \
        -d '{"email":"bench@example.com","password":"bench-password-42"}' -o "$work/reg.json"
    python3 -c 'import json,sys;print(json.load(open(sys.argv[1]))["data"]["access_token"])' "$work/reg.json"
}
token=$(register 18002)

cat > "$work/login.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"email":"bench@example.com","password":"bench-password-42"}'
LUA

rps() { # url [wrk args…] → requests/second
    local url=$1; shift
    wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency "$@" "$url" > "$work/out.txt"
    [ -z "${EXPECT_REFUSALS:-}" ] && grep -q 'Non-2xx' "$work/out.txt" && { echo "bench: non-2xx answers from $url" >&2; cat "$work/out.txt" >&2; }
    awk '/Requests\/sec/ {print $2}' "$work/out.txt"
}
p99() { awk '/ 99%/ {print $2}' "$work/out.txt"; }

hello=$(rps http://127.0.0.1:18001/);                                 hello_p99=$(p99)
health=$(rps http://127.0.0.1:18002/healthz);                         health_p99=$(p99)
me=$(rps http://127.0.0.1:18002/api/auth/me -H "Authorization: Bearer $token"); me_p99=$(p99)
if [ $pg = 1 ]; then
    pg_token=$(register 18003)
    me_pg=$(rps http://127.0.0.1:18003/api/auth/me -H "Authorization: Bearer $pg_token"); me_pg_p99=$(p99)
fi
login=$(CONNECTIONS=8 rps http://127.0.0.1:18002/api/auth/login/json -s "$work/login.lua"); login_p99=$(p99)
# With limits on, all but the first 10 logins a minute (per e-mail and IP)
# answer 429 before any hashing.
register 18004 >/dev/null
limited=$(EXPECT_REFUSALS=1 CONNECTIONS=8 rps http://127.0.0.1:18004/api/auth/login/json -s "$work/login.lua"); limited_p99=$(p99)

printf '%-31s %12s %10s %14s\n' endpoint req/s p99 "vs hello-world"
rows=("hello-world axum|$hello|$hello_p99" "GET /healthz|$health|$health_p99"
      "GET /me, SQLite (JWT+session)|$me|$me_p99")
[ $pg = 1 ] && rows+=("GET /me, PostgreSQL|$me_pg|$me_pg_p99")
rows+=("POST /login/json (argon2id)|$login|$login_p99")
rows+=("POST /login/json, limited (429)|$limited|$limited_p99")
for row in "${rows[@]}"; do
    IFS='|' read -r name r p <<<"$row"
    printf '%-31s %12s %10s %13.3fx\n' "$name" "$r" "$p" "$(python3 -c "print($r/$hello)")"
done
echo "(cores: $(nproc); login is bound by argon2id, ~1 hash per core at a time)"
printf 'a refused (429) login costs %.2f%% of a hashed one\n' "$(python3 -c "print(100*$login/$limited)")"
