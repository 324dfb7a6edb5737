#!/usr/bin/env python3
"""How long a consumer reading cold data stalls its shard (issue 15, hole 7).

Starts a one-shard `sluice serve` on loopback with its data on disk (DIR, default /var/tmp), produces
MIB MiB, drops the page cache (root), then reads it all from offset 0 with confluent-kafka while another
connection sends ApiVersions requests one after another to the same shard and times each answer. A shard
whose thread blocks in `sendfile` on cold data answers nothing meanwhile, so the worst ApiVersions times
show the stall. Prints their median, p99 and max, and the consumer's time. Run from the repository root with
the client tests' venv:

    tests/clients/.venv/bin/python perf/cold-fetch-stall.py --bin target/release/sluice [--mib 256]
"""

import argparse
import os
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import tempfile
import threading
import time

from confluent_kafka import Consumer, Producer, TopicPartition


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def api_versions_loop(port, stop, latencies_us):
    s = socket.create_connection(("127.0.0.1", port))
    request = struct.pack(">hhih", 18, 0, 1, -1)
    frame = struct.pack(">i", len(request)) + request
    while not stop.is_set():
        start = time.perf_counter_ns()
        s.sendall(frame)
        size = struct.unpack(">i", s.recv(4, socket.MSG_WAITALL))[0]
        s.recv(size, socket.MSG_WAITALL)
        latencies_us.append((time.perf_counter_ns() - start) / 1000)
        time.sleep(0.001)
    s.close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", required=True)
    parser.add_argument("--dir", default="/var/tmp")
    parser.add_argument("--mib", type=int, default=256)
    args = parser.parse_args()

    root = tempfile.mkdtemp(prefix="cold-fetch-", dir=args.dir)
    port = free_port()
    log_path = os.path.join(root, "broker.log")
    with open(log_path, "wb") as log:
        broker = subprocess.Popen(
            [args.bin, "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", os.path.join(root, "d"),
             "--shards", "1"],
            stdout=log, stderr=log,
        )
    try:
        deadline = time.time() + 60
        while "ready to serve" not in open(log_path, errors="replace").read():
            if broker.poll() is not None or time.time() > deadline:
                raise SystemExit("broker did not start:\n" + open(log_path, errors="replace").read())
            time.sleep(0.05)
        bootstrap = f"127.0.0.1:{port}"
        producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "batch.size": 1 << 20,
                             "acks": "all"})
        value = os.urandom(10 << 10)
        records = (args.mib << 20) // len(value)
        for _ in range(records):
            while True:
                try:
                    producer.produce("cold", value=value, partition=0)
                    break
                except BufferError:
                    producer.poll(0.05)
            producer.poll(0)
        assert producer.flush(120) == 0
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")

        stop = threading.Event()
        latencies = []
        pinger = threading.Thread(target=api_versions_loop, args=(port, stop, latencies))
        pinger.start()
        time.sleep(0.5)
        warm = list(latencies)
        consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "cold", "enable.auto.commit": False,
                             "fetch.max.bytes": 52428800, "max.partition.fetch.bytes": 4194304})
        consumer.assign([TopicPartition("cold", 0, 0)])
        started = time.time()
        seen = 0
        read_from = len(latencies)
        while seen < records and time.time() - started < 300:
            for message in consumer.consume(1000, 1.0):
                if message.error() is None:
                    seen += 1
        consume_s = time.time() - started
        during = latencies[read_from:]
        stop.set()
        pinger.join()
        consumer.close()
        during.sort()
        print(f"bin={args.bin} mib={args.mib} records={records} read={seen} consume_s={consume_s:.2f}")
        print(f"ApiVersions while idle: median {statistics.median(warm):.0f} us (n={len(warm)})")
        print(f"ApiVersions during the cold read: median {statistics.median(during):.0f} us, "
              f"p99 {during[int(len(during) * 0.99)]:.0f} us, max {during[-1]:.0f} us (n={len(during)}), "
              f"answers over 5 ms: {sum(1 for x in during if x > 5000)}")
    finally:
        if broker.poll() is None:
            broker.send_signal(signal.SIGKILL)
            broker.wait()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
