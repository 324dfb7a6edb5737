#!/usr/bin/env python3
"""What scraping /metrics every second costs a produce and fetch load (issue 19: at most 1% of throughput).

Starts one broker, then runs rounds alternating A (no scraping) and B (GET /metrics every second, as
Prometheus would), back to back: each round produces to a fresh topic with `sluice bench produce` for
--seconds, then reads it back with `sluice bench consume`. Prints every round and, per mode, the mean and the
spread; the machine is shared, so read the spread before the difference.

Throughput on a shared 2-core machine varies far more than 1% from round to round, so the script also measures
what a scrape costs where it is paid, in the broker's CPU time (the sum of its threads' run time from
/proc/PID/task/*/schedstat, in nanoseconds): the broker CPU each round used per MB moved, in A and in B, and
the CPU of --scrapes back-to-back scrapes after the rounds (every topic the rounds made still there, with its
per-partition series). One scrape a second then costs that CPU per second, which it prints as a share of the
CPU the broker used per second of load: the throughput a CPU-bound broker would lose to scraping.

Usage: perf/scrape-overhead.py [--bin target/release/sluice] [--rounds 6] [--seconds 8] [--shards 2]
                               [--partitions 2] [--scrapes 1000] [--set KEY=VALUE ...]
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


def broker_cpu_ns(pid):
    """CPU time of every thread of `pid` so far, in nanoseconds."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            pass  # a thread that ended between the listing and the read
    return total


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
    parser.add_argument("--partitions", type=int, default=2)
    parser.add_argument("--scrapes", type=int, default=1000)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a broker setting, e.g. metrics.per.partition.enabled=false")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="scrape-overhead-"))
    port, admin = free_port(), free_port()
    bootstrap = f"127.0.0.1:{port}"
    log = open(work / "broker.log", "wb")
    broker = subprocess.Popen([args.bin, "serve", "--listen", bootstrap, "--data-dir", str(work / "data"),
                               "--shards", str(args.shards), "--set", f"admin.listeners=127.0.0.1:{admin}",
                               *[arg for setting in args.set for arg in ("--set", setting)]],
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
            cpu_before, wall_before = broker_cpu_ns(broker.pid), time.perf_counter()
            try:
                produced = bench(args.bin, "produce", "--bootstrap", bootstrap, "--topic", topic, "--partitions",
                                 str(args.partitions),
                                 "--record-size", str(args.record_size), "--duration", str(args.seconds))
                consumed = bench(args.bin, "consume", "--bootstrap", bootstrap, "--topic", topic)
            finally:
                stop.set()
                if thread:
                    thread.join()
            cpu_ns, wall = broker_cpu_ns(broker.pid) - cpu_before, time.perf_counter() - wall_before
            moved_mb = (produced["bytes"] + consumed["bytes"]) / 1e6
            results.append((mode, produced["mb_per_second"], consumed["mb_per_second"], len(scrapes),
                            cpu_ns / 1e3 / moved_mb, cpu_ns / 1e9 / wall))
            print(f"round {round_index} {mode}: produce {produced['mb_per_second']:.1f} MB/s, "
                  f"consume {consumed['mb_per_second']:.1f} MB/s, broker CPU {cpu_ns / 1e3 / moved_mb:.0f} us/MB "
                  f"({cpu_ns / 1e9 / wall:.2f} cores), scrapes {len(scrapes)}"
                  + (f" ({scrapes[-1]} bytes each)" if scrapes else ""), flush=True)
        print(f"load after: {os.getloadavg()}")
        # The cost of a scrape itself: the broker CPU of back-to-back scrapes, less what the idle broker uses in
        # the same time (measured right before, for as long).
        def idle_rate(seconds=3.0):
            started, cpu = time.perf_counter(), broker_cpu_ns(broker.pid)
            time.sleep(seconds)
            return (broker_cpu_ns(broker.pid) - cpu) / (time.perf_counter() - started)

        time.sleep(5)  # the last round's background work (group commit, pre-write trims) settles
        idle_before = idle_rate()
        started, cpu_before = time.perf_counter(), broker_cpu_ns(broker.pid)
        for _ in range(args.scrapes):
            size = scrape(admin)
        wall = time.perf_counter() - started
        scrapes_cpu = broker_cpu_ns(broker.pid) - cpu_before
        idle_after = idle_rate()
        idle = (idle_before + idle_after) / 2
        print(f"idle broker: {idle_before / 1e6:.2f} ms CPU per second before the scrapes, {idle_after / 1e6:.2f} after")
        scrape_cpu_ms = (scrapes_cpu - idle * wall) / 1e6 / args.scrapes
        load_cores = statistics.mean(r[5] for r in results)
        print(f"scrape: {wall / args.scrapes * 1e3:.2f} ms wall and {scrape_cpu_ms:.3f} ms of broker CPU each "
              f"({size} bytes, {args.scrapes} back to back); one a second is {scrape_cpu_ms / 10:.3f}% of one core, "
              f"and {scrape_cpu_ms / 1e3 / load_cores * 100:.3f}% of the {load_cores:.2f} cores the broker used "
              f"under the rounds' load")
    finally:
        broker.send_signal(signal.SIGTERM)
        try:
            broker.wait(30)
        except subprocess.TimeoutExpired:
            broker.kill()
            broker.wait()
        shutil.rmtree(work, ignore_errors=True)

    for index, what, unit in ((1, "produce", "MB/s"), (2, "consume", "MB/s"), (4, "broker CPU", "us/MB")):
        a = [r[index] for r in results if r[0] == "A"]
        b = [r[index] for r in results if r[0] == "B"]
        print(f"{what}: A (no scrape) mean {statistics.mean(a):.1f} {unit} [{min(a):.1f}-{max(a):.1f}], "
              f"B (scrape every 1 s) mean {statistics.mean(b):.1f} {unit} [{min(b):.1f}-{max(b):.1f}], "
              f"B/A {statistics.mean(b) / statistics.mean(a):.3f}")


if __name__ == "__main__":
    main()
