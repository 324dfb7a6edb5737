#!/usr/bin/env python3
"""Broker RSS under many connections each sending a maximum-size frame slowly (issue 15, hole 4).

Starts `sluice serve` on loopback, opens CONNECTIONS connections, and on each declares a frame of
`socket.request.max.bytes` (100 MiB by default) and sends its body in CHUNK-byte pieces every INTERVAL
seconds, for DURATION seconds: bounded in time and in bytes (CONNECTIONS x DURATION / INTERVAL x CHUNK at
most). Samples the broker's RSS from /proc every 100 ms, then closes every connection and waits for the
broker's periodic malloc_trim (10 s). Prints RSS before, peak and after, and the bytes the clients got into
the kernel. Loopback only; the broker is killed at the end whatever happens.

    perf/slow-frames.py --bin target/release/sluice [--connections 1000] [--duration 20] \
        [--set queued.max.request.bytes=-1]
"""

import argparse
import os
import re
import resource
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", required=True)
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--chunk", type=int, default=16 << 10)
    parser.add_argument("--interval", type=float, default=0.2)
    parser.add_argument("--frame-bytes", type=int, default=100 << 20)
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--set", action="append", default=[])
    args = parser.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, args.connections * 2 + 1024)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))

    data = tempfile.mkdtemp(prefix="slow-frames-")
    port = free_port()
    log_path = os.path.join(data, "broker.log")
    sets = [x for pair in args.set for x in ("--set", pair)]
    with open(log_path, "wb") as log:
        broker = subprocess.Popen(
            [args.bin, "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", os.path.join(data, "d"),
             "--shards", str(args.shards), *sets],
            stdout=log, stderr=log,
        )
    sockets = []
    try:
        deadline = time.time() + 60
        while "ready to serve" not in open(log_path, errors="replace").read():
            if broker.poll() is not None or time.time() > deadline:
                raise SystemExit("broker did not start:\n" + open(log_path, errors="replace").read())
            time.sleep(0.05)
        time.sleep(0.5)
        before = rss_kib(broker.pid)
        # A Produce v3 header, then filler: the body never completes within the run.
        header = struct.pack(">i", args.frame_bytes) + struct.pack(">hhih", 0, 3, 1, -1)
        for _ in range(args.connections):
            s = socket.create_connection(("127.0.0.1", port))
            s.setblocking(False)
            sockets.append(s)
            try:
                s.send(header)
            except BlockingIOError:
                pass
        piece = b"\xab" * args.chunk
        sent_bytes = 0
        blocked_sends = 0
        peak = before
        started = time.time()
        next_tick = started
        while time.time() - started < args.duration:
            now = time.time()
            if now >= next_tick:
                next_tick += args.interval
                for s in sockets:
                    try:
                        sent_bytes += s.send(piece)
                    except BlockingIOError:
                        blocked_sends += 1
            peak = max(peak, rss_kib(broker.pid))
            time.sleep(0.1)
        peak = max(peak, rss_kib(broker.pid))
        for s in sockets:
            s.close()
        sockets = []
        time.sleep(12)
        after = rss_kib(broker.pid)
        alive = broker.poll() is None
        print(f"connections={args.connections} duration_s={args.duration} chunk={args.chunk} "
              f"interval_s={args.interval} frame_bytes={args.frame_bytes} shards={args.shards} set={args.set}")
        print(f"bytes into the kernel: {sent_bytes / 2**20:.0f} MiB; sends that would block: {blocked_sends}")
        print(f"RSS before {before / 1024:.0f} MiB, peak {peak / 1024:.0f} MiB, after {after / 1024:.0f} MiB; "
              f"broker alive: {alive}")
    finally:
        for s in sockets:
            s.close()
        if broker.poll() is None:
            broker.send_signal(signal.SIGKILL)
            broker.wait()
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
