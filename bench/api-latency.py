#!/usr/bin/env python3
"""Polls API URLs one request at a time for a while and prints the latency distribution.

Used by BENCHMARKS.md to measure how the embedded stack's HTTP server answers while a race
rides through MQTT:

    python3 bench/api-latency.py --seconds 30 \
        http://127.0.0.1:8080/api/config "http://127.0.0.1:8080/api/leaderboard?classId=1"

Standard library only. Every answer must be 200; any other status or error is counted and shown.
"""

import argparse
import http.client
import time
import urllib.parse


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("urls", nargs="+")
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    targets = [urllib.parse.urlsplit(url) for url in args.urls]
    latencies, failures = [], 0
    deadline = time.monotonic() + args.seconds
    i = 0
    while time.monotonic() < deadline:
        url = targets[i % len(targets)]
        i += 1
        start = time.monotonic()
        try:
            connection = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
            path = url.path + ("?" + url.query if url.query else "")
            connection.request("GET", path)
            response = connection.getresponse()
            response.read()
            connection.close()
            if response.status != 200:
                failures += 1
        except OSError:
            failures += 1
        latencies.append((time.monotonic() - start) * 1000)
    latencies.sort()

    def quantile(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))]

    print(
        f"{len(latencies)} requests, {failures} not 200: p50 {quantile(0.5):.1f} ms, "
        f"p99 {quantile(0.99):.1f} ms, max {latencies[-1]:.1f} ms"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
