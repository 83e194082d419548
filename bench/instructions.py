#!/usr/bin/env python3
"""Instructions per request, counted by callgrind: a figure that, unlike
requests per second, does not move with what else the machine is doing.

    bench/instructions.py                 # hello-world, /healthz, /me
    bench/instructions.py /healthz        # one path (GET)

Each server runs under `valgrind --tool=callgrind` twice, answering 500 and
then 2,500 keep-alive requests after a warm-up; the difference of the two
totals over 2,000 is what one request costs, start-up and shutdown cancelled
out. User-space instructions only: the kernel's share (sockets, wake-ups) is
not counted. Run `cargo build --release --bin portcullis --example hello`
first. Needs valgrind (apt-get install valgrind).

Under valgrind the CPU's SHA extensions are not detected, so SHA-256 (the
token's HMAC) runs its portable code: about 20,000 of /me's instructions that
the real CPU does in about 2,000.
"""
import glob
import http.client
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
PORTCULLIS = os.path.join(TARGET, "release", "portcullis")
HELLO = os.path.join(TARGET, "release", "examples", "hello")
PORT = 18111


def total_instructions(binary, path, requests):
    work = tempfile.mkdtemp(prefix="portcullis-instructions-")
    env = dict(os.environ, SECRET_KEY="portcullis-bench-secret-0123456789-abcdefghijklmnop",
               PORT=str(PORT), LOG_FORMAT="json", RUST_LOG="warn", RATE_LIMIT_ENABLED="false")
    out = os.path.join(work, "callgrind.out")
    args = [binary] if binary == HELLO else [binary, "serve"]
    server = subprocess.Popen(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"] + args,
                              cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        conn = None
        for _ in range(600):
            try:
                conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=60)
                conn.request("GET", "/")
                conn.getresponse().read()
                break
            except OSError:
                conn = None
                time.sleep(0.1)
        if conn is None:
            sys.exit(f"{binary} did not start")
        headers = {}
        if path.startswith("/api/auth/me"):
            body = json.dumps({"email": "bench@example.com", "password": "bench-password-42"})
            conn.request("POST", "/api/auth/register", body, {"Content-Type": "application/json"})
            token = json.loads(conn.getresponse().read())["data"]["access_token"]
            headers["Authorization"] = f"Bearer {token}"
        for _ in range(200 + requests):
            conn.request("GET", path, headers=headers)
            reply = conn.getresponse()
            reply.read()
            if reply.status != 200:
                sys.exit(f"{path}: {reply.status}")
    finally:
        server.terminate()
        server.wait()
    total = 0
    for f in glob.glob(out + "*"):
        with open(f) as lines:
            for line in lines:
                if line.startswith(("summary:", "totals:")):
                    total += int(line.split()[1])
                    break
    return total


def per_request(binary, path):
    return (total_instructions(binary, path, 2500) - total_instructions(binary, path, 500)) / 2000


def main():
    cases = [(HELLO, "/", "hello-world axum, GET /"),
             (PORTCULLIS, "/healthz", "GET /healthz"),
             (PORTCULLIS, "/api/auth/me", "GET /api/auth/me (session cache)")]
    if len(sys.argv) > 1:
        cases = [(PORTCULLIS, p, f"GET {p}") for p in sys.argv[1:]]
    for binary, _, _ in cases:
        if not os.path.exists(binary):
            sys.exit(f"{binary} is missing: cargo build --release --bin portcullis --example hello")
    base = None
    for binary, path, name in cases:
        n = per_request(binary, path)
        base = base or n
        print(f"{name:40} {n:9.0f} instructions/request  {n / base:5.2f}x hello-world")


if __name__ == "__main__":
    main()
