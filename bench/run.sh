#!/usr/bin/env bash
# Side-by-side figures of Portcullis and a hello-world axum server, in one
# run on this machine, reported as ratios (machines here are noisy; absolute
# numbers mean little). Needs wrk (apt-get install wrk), python3, sqlite3,
# and for the PostgreSQL rows psql and a server at PG_URL.
#
#   bench/run.sh                # 10 s per measurement
#   DURATION=5s bench/run.sh
#   MILLION=0 bench/run.sh      # skip the million-user database
#   bench/run.sh passkeys       # only passkey vs password sign-ins (no wrk needed)
#
# What it reports (SPEC §9, issue #11):
#   GET /me on SQLite and PostgreSQL at c=64 (and with the session cache off),
#   p99 at c=256; /healthz; refreshes/s (rotation, c=16, each client chaining
#   its own tokens) with the worst request; logins/s against the hashing
#   ceiling measured in the same run (cores / one login's time at c=1); the
#   median time of a login with an unknown e-mail and with a wrong password; RSS
#   idle, during and after a login flood at c=256; start to ready on an
#   existing database; /me and login again on a million users; and (issue
#   #18) passkey sign-ins/s against password sign-ins/s, side by side.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
mode=${1:-all}
case $mode in
    all) command -v wrk >/dev/null || { echo "bench: wrk is required (apt-get install wrk)" >&2; exit 1; } ;;
    passkeys) ;;
    *) echo "usage: bench/run.sh [passkeys]" >&2; exit 2 ;;
esac

cargo build --release --quiet --bin portcullis --example hello --example passkey_bench
target_dir=$(cd "${CARGO_TARGET_DIR:-target}" && pwd)
bin="$target_dir/release/portcullis"
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
serve() { # dir port [VAR=value…]: a server in dir, in the background; its pid in $server_pid
    local dir=$1 port=$2; shift 2
    mkdir -p "$dir"
    (cd "$dir" && exec env SECRET_KEY=$BENCH_SECRET PORT="$port" LOG_FORMAT=json RUST_LOG=warn "$@" "$bin" serve 2>>"$work/servers.log") &
    server_pid=$!
}
# Passkey vs password sign-in (issue #18), SQLite, its own database: USERS
# users with a passkey each (registered through the API by
# examples/passkey_bench.rs with a software authenticator), then
# /login/json and options + finish (a fresh ceremony each), both from that
# one Rust client at c=PK_CONCURRENCY, for DURATION each.
passkey_figures() { # → $work/passkeys.txt
    serve "$work/passkeys" 18006 RATE_LIMIT_ENABLED=false WEBAUTHN_RP_ID=localhost WEBAUTHN_ORIGINS=http://localhost:8000
    for _ in $(seq 1 100); do curl -s -o /dev/null "127.0.0.1:18006/healthz" && break; sleep 0.1; done
    BASE_URL=http://127.0.0.1:18006 ORIGIN=http://localhost:8000 DURATION="$DURATION" SERVER_PID=$server_pid \
        USERS="${PK_USERS:-64}" CONCURRENCY="${PK_CONCURRENCY:-64}" \
        "$target_dir"/release/examples/passkey_bench > "$work/passkeys.txt"
}
pk() { awk -F= -v k="$1" '$1 == k {print $2}' "$work/passkeys.txt"; }
print_passkeys() {
    echo "password vs passkey sign-in, SQLite, c=$(pk concurrency), $(pk users) users with one passkey each (a fresh ceremony per sign-in; the client signs on the same cores):"
    echo "  password (POST /login/json):        $(pk password_signins_per_s) sign-ins/s, p99 $(pk password_p99_ms) ms, $(pk password_refused) refused, server CPU $(pk password_server_cpu_ms) ms each"
    echo "  passkey (options + /login/passkey): $(pk passkey_signins_per_s) sign-ins/s = $(pk passkey_requests_per_s) requests/s, p99 $(pk passkey_p99_ms) ms, $(pk passkey_refused) refused, server CPU $(pk passkey_server_cpu_ms) ms each"
    echo "  passkey / password: $(pk ratio)x the sign-ins/s; $(pk cpu_ratio)x less server CPU per sign-in (issue #22 goal: >= 20x)"
}
if [ "$mode" = passkeys ]; then
    passkey_figures
    print_passkeys
    exit 0
fi

PORT=18001 "$target_dir"/release/examples/hello &
serve "$work" 18002 RATE_LIMIT_ENABLED=false;                       sqlite_pid=$server_pid
serve "$work/limited" 18004                                          # rate limits on
serve "$work" 18005 RATE_LIMIT_ENABLED=false SESSION_CACHE_SIZE=0    # same database, no cache
if [ "${PG:-1}" != 0 ] && command -v psql >/dev/null && psql "$PG_URL/postgres" -qAtc 'select 1' >/dev/null 2>&1; then
    pg=1
    PGOPTIONS='-c client_min_messages=warning' psql "$PG_URL/postgres" -qc 'DROP DATABASE IF EXISTS portcullis_bench WITH (FORCE)' -c 'CREATE DATABASE portcullis_bench' >/dev/null
    serve "$work/pg" 18003 RATE_LIMIT_ENABLED=false DATABASE_URL="$PG_URL/portcullis_bench"
fi
ports="18001 18002 18004 18005"; [ $pg = 1 ] && ports="$ports 18003"
for port in $ports; do
    for _ in $(seq 1 100); do curl -s -o /dev/null "127.0.0.1:$port/" && break; sleep 0.1; done
done

field() { python3 -c 'import json,sys;print(json.load(open(sys.argv[1]))["data"][sys.argv[2]])' "$1" "$2"; }
register() { # port → access token of a new user
    curl -fs -X POST "127.0.0.1:$1/api/auth/register" -H 'content-type: application/json' \
        -d '{"email":"bench@example.com","password":"bench-password-42"}' -o "$work/reg.json"
    field "$work/reg.json" access_token
}
login_refresh() { # port → a fresh session's refresh token
    curl -fs -X POST "127.0.0.1:$1/api/auth/login/json" -H 'content-type: application/json' \
        -d '{"email":"bench@example.com","password":"bench-password-42"}' -o "$work/login.json"
    field "$work/login.json" refresh_token
}
rss() { awk '/VmRSS/ {printf "%.1f", $2/1024}' "/proc/$1/status"; }
rss_idle=$(rss $sqlite_pid)
token=$(register 18002)

cat > "$work/login.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"email":"bench@example.com","password":"bench-password-42"}'
LUA
# One connection per thread, each chaining its own refresh tokens.
cat > "$work/refresh.lua" <<'LUA'
local n = 0
function setup(thread) n = n + 1; thread:set("id", n) end
function init(args)
  local i = 0
  for line in io.lines(os.getenv("REFRESH_TOKENS")) do
    i = i + 1
    if i == id then token = line end
  end
  failed = 0
end
function request()
  return wrk.format("POST", "/api/auth/refresh", {["Content-Type"] = "application/json"},
    '{"refresh_token":"' .. token .. '"}')
end
function response(status, headers, body)
  if status == 200 then
    token = body:match('"refresh_token":"([^"]+)"') or token
  else
    failed = failed + 1
  end
end
LUA

run_wrk() { # connections url [wrk args…]: leaves the report in $work/out.txt
    local c=$1 url=$2; shift 2
    local t=2; [ "$c" -lt 2 ] && t=1
    wrk -t"$t" -c"$c" -d"$DURATION" --latency "$@" "$url" > "$work/out.txt"
    if [ -z "${EXPECT_REFUSALS:-}" ] && grep -q 'Non-2xx' "$work/out.txt"; then
        echo "bench: non-2xx answers from $url" >&2; cat "$work/out.txt" >&2
    fi
}
rps() { awk '/Requests\/sec/ {print $2}' "$work/out.txt"; }
p99() { awk '/ 99%/ {print $2}' "$work/out.txt"; }
worst() { awk '/Latency/ {print $4; exit}' "$work/out.txt"; }
ms() { python3 -c "
import re,sys
v=sys.argv[1]; m=re.match(r'([0-9.]+)(us|ms|s|m)',v)
print(round(float(m.group(1))*{'us':0.001,'ms':1,'s':1000,'m':60000}[m.group(2)],2))" "$1"; }
declare -a rows
row() { rows+=("$1|$2|$3|$4"); } # name req/s p99 note

# ---- throughput against hello-world ----------------------------------------------
run_wrk 64 http://127.0.0.1:18001/;                                       hello=$(rps); row "hello-world axum, c=64" "$hello" "$(p99)" ""
run_wrk 256 http://127.0.0.1:18001/;                                      row "hello-world axum, c=256" "$(rps)" "$(p99)" ""
run_wrk 64 http://127.0.0.1:18002/healthz;                                row "GET /healthz, c=64" "$(rps)" "$(p99)" ""
auth=(-H "Authorization: Bearer $token")
run_wrk 64 http://127.0.0.1:18002/api/auth/me "${auth[@]}";                me_sqlite=$(rps); row "GET /me, SQLite, c=64" "$me_sqlite" "$(p99)" ""
run_wrk 256 http://127.0.0.1:18002/api/auth/me "${auth[@]}";               row "GET /me, SQLite, c=256" "$(rps)" "$(p99)" "p99 target <= 15ms"
run_wrk 64 http://127.0.0.1:18005/api/auth/me "${auth[@]}";                row "GET /me, SQLite, no cache, c=64" "$(rps)" "$(p99)" "SESSION_CACHE_SIZE=0"
if [ $pg = 1 ]; then
    pg_token=$(register 18003)
    pg_auth=(-H "Authorization: Bearer $pg_token")
    run_wrk 64 http://127.0.0.1:18003/api/auth/me "${pg_auth[@]}";         me_pg=$(rps); row "GET /me, PostgreSQL, c=64" "$me_pg" "$(p99)" ""
    run_wrk 256 http://127.0.0.1:18003/api/auth/me "${pg_auth[@]}";        row "GET /me, PostgreSQL, c=256" "$(rps)" "$(p99)" ""
fi

# ---- refresh rotation: 16 clients, each chaining its own tokens -----------------------
: > "$work/refresh_tokens"
for _ in $(seq 1 16); do login_refresh 18002 >> "$work/refresh_tokens"; done
REFRESH_TOKENS="$work/refresh_tokens" run_wrk 16 http://127.0.0.1:18002/api/auth/refresh -t16 -s "$work/refresh.lua"
row "POST /refresh, SQLite, c=16" "$(rps)" "$(p99)" "worst $(worst)"

# ---- logins against the hashing ceiling ---------------------------------------------
run_wrk 1 http://127.0.0.1:18002/api/auth/login/json -s "$work/login.lua"
one_login_ms=$(ms "$(awk '/Latency/ {print $2; exit}' "$work/out.txt")")
workers=$(nproc)
ceiling=$(python3 -c "print(round($workers*1000/$one_login_ms,1))")
# Login enumeration by timing (SPEC §7): a wrong password and an unknown e-mail
# answer in the same time (the tests check the hashing work by count).
for who in bench nobody; do
    cat > "$work/refused-$who.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"email":"$who@example.com","password":"not-the-password"}'
LUA
done
EXPECT_REFUSALS=1 run_wrk 1 http://127.0.0.1:18002/api/auth/login/json -s "$work/refused-bench.lua"
wrong_ms=$(ms "$(awk '/ 50%/ {print $2}' "$work/out.txt")")
EXPECT_REFUSALS=1 run_wrk 1 http://127.0.0.1:18002/api/auth/login/json -s "$work/refused-nobody.lua"
unknown_ms=$(ms "$(awk '/ 50%/ {print $2}' "$work/out.txt")")
row "POST /login/json, unknown e-mail vs wrong password, c=1" "" "" "median ${unknown_ms} ms vs ${wrong_ms} ms ($(python3 -c "print(f'{$unknown_ms/$wrong_ms:.2f}x')"))"
run_wrk 64 http://127.0.0.1:18002/api/auth/login/json -s "$work/login.lua"
login=$(rps); row "POST /login/json, c=64" "$login" "$(p99)" "$(python3 -c "print(f'{$login/$ceiling:.2f}x the ceiling of $ceiling/s')")"

# ---- memory: a login flood at c=256 (past the queue: 503s expected) ---------------------
rss_before_flood=$(rss $sqlite_pid)
( while sleep 0.5; do rss $sqlite_pid; echo; done ) > "$work/rss.txt" &
sampler=$!
EXPECT_REFUSALS=1 run_wrk 256 http://127.0.0.1:18002/api/auth/login/json -s "$work/login.lua"
kill $sampler 2>/dev/null || true; wait $sampler 2>/dev/null || true
flood=$(rps); flood_non2xx=$(awk '/Non-2xx/ {print $5}' "$work/out.txt")
rss_during=$(sort -n "$work/rss.txt" | tail -1)
sleep 2
rss_after=$(rss $sqlite_pid)
row "POST /login/json, c=256 (flood)" "$flood" "$(p99)" "${flood_non2xx:-0} answers 503"

# ---- memory after mixed load: registrations c=64 + /me c=64 + refresh chains c=16 ------
cat > "$work/register.lua" <<'LUA'
local n = 0
function setup(thread) n = n + 1; thread:set("id", n) end
function init(args) count = 0 end
function request()
  count = count + 1
  return wrk.format("POST", "/api/auth/register", {["Content-Type"] = "application/json"},
    '{"email":"mix-' .. id .. '-' .. count .. '@example.com","password":"bench-password-42"}')
end
LUA
: > "$work/refresh_tokens2"
for _ in $(seq 1 16); do login_refresh 18002 >> "$work/refresh_tokens2"; done
mixed=${MIXED:-20s}
wrk -t2 -c64 -d"$mixed" -s "$work/register.lua" http://127.0.0.1:18002/api/auth/register > "$work/mix_reg.txt" &
mix1=$!
wrk -t2 -c64 -d"$mixed" -H "Authorization: Bearer $token" http://127.0.0.1:18002/api/auth/me > "$work/mix_me.txt" &
mix2=$!
REFRESH_TOKENS="$work/refresh_tokens2" wrk -t16 -c16 -d"$mixed" -s "$work/refresh.lua" http://127.0.0.1:18002/api/auth/refresh > "$work/mix_refresh.txt" &
mix3=$!
( while sleep 0.5; do rss $sqlite_pid; echo; done ) > "$work/rss_mix.txt" &
sampler=$!
wait $mix1 $mix2 $mix3
kill $sampler 2>/dev/null || true; wait $sampler 2>/dev/null || true
rss_mix_peak=$(sort -n "$work/rss_mix.txt" | tail -1)
sleep 2
rss_mix_after=$(rss $sqlite_pid)
mix_5xx=$(cat "$work"/mix_*.txt | awk '/Non-2xx/ {s += $5} END {print s + 0}')
mix_counts=$(for f in reg me refresh; do awk -v f=$f '/requests in/ {printf "%s %s, ", f, $1}' "$work/mix_$f.txt"; done)

# ---- refused logins (rate limits on) ------------------------------------------------
register 18004 >/dev/null
EXPECT_REFUSALS=1 run_wrk 8 http://127.0.0.1:18004/api/auth/login/json -s "$work/login.lua"; limited=$(rps)
row "POST /login/json, limited (429)" "$limited" "$(p99)" ""

# ---- passkey vs password sign-in (issue #18) ------------------------------------------
passkey_figures

# ---- start to ready on an existing database -----------------------------------------
ready_ms=$(python3 - "$bin" "$work" "$BENCH_SECRET" <<'PY'
import os, subprocess, sys, time
binary, work, secret = sys.argv[1:4]
env = dict(os.environ, SECRET_KEY=secret, PORT="18009", LOG_FORMAT="json", RUST_LOG="info",
           RATE_LIMIT_ENABLED="false")
best = None
for _ in range(5):
    began = time.monotonic()
    p = subprocess.Popen([binary, "serve"], cwd=work, env=env, stderr=subprocess.PIPE, text=True)
    for line in p.stderr:
        if "127.0.0.1:18009" in line:
            took = (time.monotonic() - began) * 1000
            best = took if best is None else min(best, took)
            break
    p.terminate(); p.wait()
print(round(best, 1))
PY
)

# ---- a million users -----------------------------------------------------------------
if [ "${MILLION:-1}" != 0 ]; then
    hash=$(sqlite3 "$work/data/portcullis.db" "SELECT password_hash FROM users WHERE email = 'bench@example.com'")
    began=$(date +%s)
    sqlite3 "$work/data/portcullis.db" "PRAGMA busy_timeout = 60000; WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000000)
        INSERT INTO users (email, email_key, name, password_hash, is_active, is_verified, is_superuser, extra, created_at, updated_at)
        SELECT 'user' || i || '@million.test', 'user' || i || '@million.test', NULL, '$hash', 1, 1, 0, '{}', 0, 0 FROM n;"
    [ $pg = 1 ] && PGOPTIONS='-c client_min_messages=warning' psql "$PG_URL/portcullis_bench" -qc "INSERT INTO users (email, email_key, password_hash, is_active, is_verified, created_at, updated_at)
        SELECT 'user' || i || '@million.test', 'user' || i || '@million.test', '$hash', TRUE, TRUE, 0, 0 FROM generate_series(1, 1000000) AS i" -c 'ANALYZE users' >/dev/null
    echo "(seeded a million users in $(( $(date +%s) - began )) s)" >&2
    run_wrk 64 http://127.0.0.1:18002/api/auth/me "${auth[@]}"; row "GET /me, SQLite, 1M users, c=64" "$(rps)" "$(p99)" "$(python3 -c "print(f'{$(rps)/$me_sqlite:.2f}x the 1-user figure')")"
    run_wrk 64 http://127.0.0.1:18002/api/auth/login/json -s "$work/login.lua"; row "POST /login/json, SQLite, 1M users" "$(rps)" "$(p99)" "$(python3 -c "print(f'{$(rps)/$login:.2f}x the 1-user figure')")"
    if [ $pg = 1 ]; then
        run_wrk 64 http://127.0.0.1:18003/api/auth/me "${pg_auth[@]}"; row "GET /me, PostgreSQL, 1M users, c=64" "$(rps)" "$(p99)" "$(python3 -c "print(f'{$(rps)/$me_pg:.2f}x the 1-user figure')")"
        run_wrk 64 http://127.0.0.1:18003/api/auth/login/json -s "$work/login.lua"; row "POST /login/json, PG, 1M users" "$(rps)" "$(p99)" ""
    fi
fi

printf '%-36s %10s %9s %8s  %s\n' measurement req/s p99 "× hello" note
for r in "${rows[@]}"; do
    IFS='|' read -r name v p note <<<"$r"
    if [ -n "$v" ]; then
        printf '%-36s %10s %9s %7.3fx  %s\n' "$name" "$v" "$p" "$(python3 -c "print($v/$hello)")" "$note"
    else # a row that is not a rate (e.g. the timing comparison): its note only
        printf '%-36s %10s %9s %8s  %s\n' "$name" "-" "-" "-" "$note"
    fi
done
echo
echo "hashing ceiling: $workers cores / ${one_login_ms} ms per login at c=1 = ${ceiling} logins/s"
printf 'a refused (429) login costs %.2f%% of a hashed one\n' "$(python3 -c "print(100*$login/$limited)")"
echo "RSS of the SQLite server: idle ${rss_idle} MB (at start), ${rss_before_flood} MB before the flood (after the other runs), during the c=256 login flood ${rss_during} MB (peak of 0.5 s samples), 2 s after ${rss_after} MB"
echo "RSS during ${mixed} of mixed load (${mix_counts}non-2xx: ${mix_5xx}, registrations past the hashing queue are 503): peak ${rss_mix_peak} MB, 2 s after ${rss_mix_after} MB"
echo "start to ready (listening) on an existing SQLite database: ${ready_ms} ms (best of 5)"
print_passkeys
echo "(machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); wrk runs on the same cores)"
