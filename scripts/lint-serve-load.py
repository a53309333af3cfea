#!/usr/bin/env python3
"""Load for scripts/bench-lint-serve.sh: /validate latency while /lint is saturated, and the
server's memory under lint traffic that includes clients that never read their responses.

Usage: lint-serve-load.py PORT CA PID LINT_BODY WIDE_BODY REVIEW_BODY [SECONDS]
Standard library only (ssl, http.client, threads)."""

import http.client
import socket
import ssl
import sys
import threading
import time

PORT, CA, PID = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
LINT_BODY = open(sys.argv[4], "rb").read()
WIDE_BODY = open(sys.argv[5], "rb").read()
REVIEW = open(sys.argv[6], "rb").read()
SECONDS = float(sys.argv[7]) if len(sys.argv) > 7 else 20.0
CTX = ssl.create_default_context(cafile=CA)


def status_kib(field):
    with open(f"/proc/{PID}/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1])
    return -1


def connect():
    return http.client.HTTPSConnection("127.0.0.1", PORT, context=CTX, timeout=60)


def poster(body, query, stop, counts, lock):
    conn = connect()
    while not stop.is_set():
        try:
            conn.request("POST", "/lint" + query, body=body)
            r = conn.getresponse()
            r.read()
            code = r.status
        except Exception as e:  # noqa: BLE001 - counted, the load goes on
            code = type(e).__name__
            conn.close()
            conn = connect()
        with lock:
            counts[code] = counts.get(code, 0) + 1
        if code == 429:
            time.sleep(0.05)


def sampler(stop, samples):
    while not stop.is_set():
        samples.append(status_kib("VmRSS:"))
        time.sleep(0.2)


def validate_loop(seconds, rate, latencies, errors):
    conn = connect()
    interval = 1.0 / rate
    end = time.monotonic() + seconds
    nxt = time.monotonic()
    while time.monotonic() < end:
        nxt += interval
        t0 = time.perf_counter()
        try:
            conn.request("POST", "/validate", body=REVIEW, headers={"content-type": "application/json"})
            r = conn.getresponse()
            r.read()
            if r.status == 200:
                latencies.append((time.perf_counter() - t0) * 1000)
            else:
                errors.append(r.status)
        except Exception as e:  # noqa: BLE001
            errors.append(type(e).__name__)
            conn.close()
            conn = connect()
        delay = nxt - time.monotonic()
        if delay > 0:
            time.sleep(delay)


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round((len(xs) - 1) * p)))] if xs else float("nan")


def phase(name, posters, stallers, seconds):
    stop, lock, counts, samples = threading.Event(), threading.Lock(), {}, []
    threads = [threading.Thread(target=sampler, args=(stop, samples), daemon=True)]
    for body, query in posters:
        threads.append(threading.Thread(target=poster, args=(body, query, stop, counts, lock), daemon=True))
    stalled = []
    for _ in range(stallers):
        # Sends a request and never reads the response.
        s = CTX.wrap_socket(socket.create_connection(("127.0.0.1", PORT)), server_hostname="127.0.0.1")
        head = f"POST /lint?format=sarif HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(LINT_BODY)}\r\n\r\n"
        s.sendall(head.encode() + LINT_BODY)
        stalled.append(s)
    for t in threads:
        t.start()
    time.sleep(1.0)
    latencies, errors = [], []
    validate_loop(seconds, 200, latencies, errors)
    stop.set()
    for t in threads:
        t.join(timeout=70)
    peak = max(samples) if samples else -1
    print(f"## {name}")
    print(f"  /validate at 200 req/s for {seconds:.0f} s: {len(latencies)} ok, {len(errors)} errors {sorted(set(map(str, errors)))[:5]}; "
          f"p50 {pct(latencies, 0.5):.2f} ms, p99 {pct(latencies, 0.99):.2f} ms, max {max(latencies, default=float('nan')):.2f} ms")
    print(f"  /lint answers: {dict(sorted((str(k), v) for k, v in counts.items()))}")
    print(f"  server VmRSS max {peak / 1024:.1f} MiB during the phase, VmHWM {status_kib('VmHWM:') / 1024:.1f} MiB")
    for s in stalled:
        s.close()
    time.sleep(3)
    print(f"  server VmRSS 3 s after the phase (non-reading clients gone): {status_kib('VmRSS:') / 1024:.1f} MiB")


print(f"idle server VmRSS {status_kib('VmRSS:') / 1024:.1f} MiB; lint body {len(LINT_BODY)} bytes, wide group {len(WIDE_BODY)} bytes")
phase("isolation: 8 clients posting the 8,000-site group", [(WIDE_BODY, "")] * 8, 0, SECONDS)
phase("isolation: 8 clients posting the 3 MiB bundle (SARIF)", [(LINT_BODY, "?format=sarif")] * 8, 0, SECONDS)
phase("memory: 3 non-reading clients + 4 clients posting the 3 MiB bundle (SARIF)", [(LINT_BODY, "?format=sarif")] * 4, 3, SECONDS)
