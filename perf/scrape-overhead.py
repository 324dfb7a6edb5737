#!/usr/bin/env python3
"""What scraping /metrics every second costs a produce and fetch load (issue 19: at most 1% of throughput).

Starts one broker, then runs rounds alternating A (no scraping) and B (GET /metrics every second, as
Prometheus would), back to back: each round produces to a fresh topic with `sluice bench produce` for
--seconds, then reads it back with `sluice bench consume`. Prints every round and, per mode, the mean and the
spread; the machine is shared, so read the spread before the difference.

Usage: perf/scrape-overhead.py [--bin target/release/sluice] [--rounds 6] [--seconds 8] [--shards 2]
"""

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(port):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET /metrics HTTP/1.1\r\n\r\n")
        size = 0
        while chunk := s.recv(65536):
            size += len(chunk)
    return size


def scraper(port, stop, counts):
    while not stop.wait(1.0):
        counts.append(scrape(port))


def bench(binary, *args):
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        subprocess.run([binary, "bench", *args, "--json", out.name], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=300)
        return json.loads(Path(out.name).read_text().strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", default=os.environ.get("SLUICE_BIN", str(ROOT / "target/release/sluice")))
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--record-size", type=int, default=1024)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="scrape-overhead-"))
    port, admin = free_port(), free_port()
    bootstrap = f"127.0.0.1:{port}"
    log = open(work / "broker.log", "wb")
    broker = subprocess.Popen([args.bin, "serve", "--listen", bootstrap, "--data-dir", str(work / "data"),
                               "--shards", str(args.shards), "--set", f"admin.listeners=127.0.0.1:{admin}"],
                              stdout=log, stderr=log)
    results = []
    try:
        deadline = time.time() + 60
        while b"ready to serve" not in (work / "broker.log").read_bytes():
            if time.time() > deadline or broker.poll() is not None:
                sys.exit(f"broker did not start:\n{(work / 'broker.log').read_text()[-2000:]}")
            time.sleep(0.1)
        print(f"load before: {os.getloadavg()}", flush=True)
        for round_index in range(args.rounds):
            mode = "A" if round_index % 2 == 0 else "B"
            topic = f"scrape-overhead-{round_index}"
            stop, scrapes = threading.Event(), []
            thread = threading.Thread(target=scraper, args=(admin, stop, scrapes)) if mode == "B" else None
            if thread:
                thread.start()
            try:
                produced = bench(args.bin, "produce", "--bootstrap", bootstrap, "--topic", topic, "--partitions", "2",
                                 "--record-size", str(args.record_size), "--duration", str(args.seconds))
                consumed = bench(args.bin, "consume", "--bootstrap", bootstrap, "--topic", topic)
            finally:
                stop.set()
                if thread:
                    thread.join()
            results.append((mode, produced["mb_per_second"], consumed["mb_per_second"], len(scrapes)))
            print(f"round {round_index} {mode}: produce {produced['mb_per_second']:.1f} MB/s, "
                  f"consume {consumed['mb_per_second']:.1f} MB/s, scrapes {len(scrapes)}"
                  + (f" ({scrapes[-1]} bytes each)" if scrapes else ""), flush=True)
        print(f"load after: {os.getloadavg()}")
        # The cost of a scrape itself, with the broker idle: wall time of back-to-back scrapes bounds the broker
        # time each takes, and so the share of a core that one scrape a second can use.
        started = time.perf_counter()
        for _ in range(100):
            size = scrape(admin)
        per_scrape_ms = (time.perf_counter() - started) * 10
        print(f"scrape: {per_scrape_ms:.2f} ms wall each ({size} bytes), back to back with the broker idle: "
              f"at most {per_scrape_ms / 10:.2f}% of one core at one scrape a second")
    finally:
        broker.send_signal(signal.SIGTERM)
        try:
            broker.wait(30)
        except subprocess.TimeoutExpired:
            broker.kill()
            broker.wait()
        shutil.rmtree(work, ignore_errors=True)

    for index, what in ((1, "produce"), (2, "consume")):
        a = [r[index] for r in results if r[0] == "A"]
        b = [r[index] for r in results if r[0] == "B"]
        print(f"{what}: A (no scrape) mean {statistics.mean(a):.1f} MB/s [{min(a):.1f}-{max(a):.1f}], "
              f"B (scrape every 1 s) mean {statistics.mean(b):.1f} MB/s [{min(b):.1f}-{max(b):.1f}], "
              f"B/A {statistics.mean(b) / statistics.mean(a):.3f}")


if __name__ == "__main__":
    main()
