#!/usr/bin/env bash
# `portcullis user import` at scale, and the admin list on what it made:
# generates a file of N users (default a million, JSON lines with bcrypt and
# argon2 hashes, as another system exports them), times the import into a
# fresh SQLite database and a fresh PostgreSQL database, then times
# `GET /api/users` on the result (first page, a deep page, an e-mail search).
#
#   bench/import.sh             # a million lines
#   N=100000 bench/import.sh    # fewer
#   PG=0 bench/import.sh        # SQLite only
#   BIN=target/debug/portcullis N=20000 bench/import.sh   # a binary already built
#
# PostgreSQL: PG_URL (default postgres://postgres@127.0.0.1:5432, needs psql);
# the database `portcullis_import_bench` is made and dropped.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-1000000}
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432}

if [ -n "${BIN:-}" ]; then
    bin=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
else
    cargo build --release --quiet --bin portcullis
    target_dir=$(cd "${CARGO_TARGET_DIR:-target}" && pwd)
    bin="$target_dir/release/portcullis"
fi
work=$(mktemp -d)
pg=0
server=
cleanup() {
    [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null || true
    rm -rf "$work"
    if [ $pg = 1 ]; then
        PGOPTIONS='-c client_min_messages=warning' psql "$PG_URL/postgres" -qc \
            'DROP DATABASE IF EXISTS portcullis_import_bench WITH (FORCE)' >/dev/null 2>&1 || true
    fi
}
trap cleanup EXIT
export SECRET_KEY=portcullis-bench-secret-0123456789-abcdefghijklmnop LOG_FORMAT=json RUST_LOG=warn,sqlx=error

# Hashes of "bench-password-42": bcrypt ($2b$ and PHP's $2y$, cost 10) and
# argon2id (m=19 MiB, t=2, p=1), as the exporting systems made them.
python3 - "$N" "$work/users.jsonl" <<'PY'
import json, sys
n, path = int(sys.argv[1]), sys.argv[2]
hashes = [
    "$2b$10$Mre1L7JqjGRA.m1dP9m3bOuSBYE9RmmJl3ljAZZMNa07fyapKs/rC",
    "$2y$10$Mre1L7JqjGRA.m1dP9m3bOuSBYE9RmmJl3ljAZZMNa07fyapKs/rC",
    "$argon2id$v=19$m=19456,t=2,p=1$GcJF3HhTwG/q9Syox4Wytg$e8VrYpeNnJiv8Sy23e3kVgbUSNCDbIFeESw1PullQOI",
]
with open(path, "w") as f:
    for i in range(n):
        f.write(json.dumps({"email": f"user{i}@example.com", "name": f"User {i}",
                            "password_hash": hashes[i % 3], "is_verified": i % 2 == 0,
                            "created_at": 1700000000 + i}) + "\n")
PY
echo "generated $N lines ($(du -h "$work/users.jsonl" | cut -f1))"

ms() { python3 -c "import sys; print(round(float(sys.argv[1]) * 1000, 1))" "$1"; }

# bench_on NAME DATABASE_URL: import, then time the admin list on a server.
bench_on() {
    local name=$1 url=$2 port=18011
    export DATABASE_URL=$url
    (cd "$work" && "$bin" migrate)
    local start end
    start=$(date +%s.%N)
    (cd "$work" && "$bin" user import users.jsonl >"$work/import.out")
    end=$(date +%s.%N)
    printf '%-10s import of %s lines: %.1f s (%s)\n' "$name" "$N" \
        "$(python3 -c "print($end - $start)")" "$(cat "$work/import.out")"
    echo "bench-admin-password-42" | (cd "$work" && "$bin" user create --email admin@bench.test --superuser) >/dev/null
    (cd "$work" && PORT=$port RATE_LIMIT_ENABLED=false exec "$bin" serve) 2>/dev/null &
    server=$!
    for _ in $(seq 1 100); do curl -s -o /dev/null "127.0.0.1:$port/healthz" && break; sleep 0.1; done
    local token
    token=$(curl -fs -X POST "127.0.0.1:$port/api/auth/login/json" -H 'content-type: application/json' \
        -d '{"email":"admin@bench.test","password":"bench-admin-password-42"}' |
        python3 -c 'import json,sys;print(json.load(sys.stdin)["data"]["access_token"])')
    # An imported user logs in with their old password.
    curl -fs -o /dev/null -X POST "127.0.0.1:$port/api/auth/login/json" -H 'content-type: application/json' \
        -d '{"email":"user1@example.com","password":"bench-password-42"}' ||
        { echo "bench: an imported user could not log in" >&2; exit 1; }
    local deep=$(( N / 20 / 2 ))
    for query in "page=1" "page=$deep" "email=user99999@" "email=USER12345" "email=nobody"; do
        # The best of 3 (the first may warm caches).
        local best=999
        for _ in 1 2 3; do
            local t
            t=$(curl -fs -o "$work/page.json" -w '%{time_total}' -H "Authorization: Bearer $token" \
                "127.0.0.1:$port/api/users?$query")
            best=$(python3 -c "print(min($best, $t))")
        done
        local total
        total=$(python3 -c 'import json,sys;print(json.load(open(sys.argv[1]))["data"]["total"])' "$work/page.json")
        printf '%-10s GET /api/users?%-20s %7s ms (total %s)\n' "$name" "$query" "$(ms "$best")" "$total"
    done
    kill "$server"; wait "$server" 2>/dev/null || true; server=
}

bench_on SQLite "sqlite://$work/bench.db"
if [ "${PG:-1}" != 0 ] && command -v psql >/dev/null && psql "$PG_URL/postgres" -qAtc 'select 1' >/dev/null 2>&1; then
    pg=1
    PGOPTIONS='-c client_min_messages=warning' psql "$PG_URL/postgres" -qc 'DROP DATABASE IF EXISTS portcullis_import_bench WITH (FORCE)' \
        -c 'CREATE DATABASE portcullis_import_bench' >/dev/null
    bench_on PostgreSQL "$PG_URL/portcullis_import_bench"
fi
echo "(cores: $(nproc))"
