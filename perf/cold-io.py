#!/usr/bin/env python3
"""What the file calls a shard thread makes itself cost with a cold page cache (issue 15, hole 7).

Builds a partition-like directory on the data disk (DIR, default /var/tmp): a few segments of SEGMENT_MIB
each with their index files, snapshots and checkpoints. Then, ROUNDS times, drops the page cache
(`echo 3 > /proc/sys/vm/drop_caches`, root) and times, each on its own cold cache:
- `read_dir` of the partition directory (a segment roll lists it for producer snapshots);
- a 4 KiB and a 64 KiB `pwrite` at a segment's end, where the last page is partly written (the append path's
  small writes, on the shard thread);
- a `sendfile` of 1 MiB of a sealed segment to a loopback socket (a fetch of cold data);
and the same calls warm, for comparison. Prints the median and the worst of each, in microseconds.

    sudo perf/cold-io.py [--dir /var/tmp] [--rounds 15]
"""

import argparse
import os
import shutil
import socket
import statistics
import tempfile
import threading
import time


def drop_caches():
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def timed(call):
    start = time.perf_counter_ns()
    call()
    return (time.perf_counter_ns() - start) / 1000


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", default="/var/tmp")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--segment-mib", type=int, default=64)
    args = parser.parse_args()

    root = tempfile.mkdtemp(prefix="cold-io-", dir=args.dir)
    part = os.path.join(root, "topic-0")
    os.mkdir(part)
    segment = args.segment_mib << 20
    block = os.urandom(1 << 20)
    bases = [i * 100_000 for i in range(4)]
    for base in bases:
        with open(os.path.join(part, f"{base:020}.log"), "wb") as f:
            for _ in range(args.segment_mib):
                f.write(block)
            f.write(block[:1000])  # the last page partly written
        for suffix in (".index", ".timeindex"):
            with open(os.path.join(part, f"{base:020}{suffix}"), "wb") as f:
                f.write(b"\0" * 8192)
    for name in (f"{bases[-1]:020}.snapshot", f"{bases[-2]:020}.snapshot", "partition.checkpoint",
                 "leader-epoch-checkpoint"):
        with open(os.path.join(part, name), "wb") as f:
            f.write(b"x" * 100)
    os.sync()

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    sender = socket.create_connection(server.getsockname())
    receiver, _ = server.accept()
    sender.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8 << 20)

    def drain():
        while True:
            if not receiver.recv(1 << 20):
                return

    threading.Thread(target=drain, daemon=True).start()
    sealed = os.open(os.path.join(part, f"{bases[0]:020}.log"), os.O_RDONLY)
    active_path = os.path.join(part, f"{bases[-1]:020}.log")

    def sendfile_mib(offset):
        left = 1 << 20
        while left:
            left -= os.sendfile(sender.fileno(), sealed, offset + (1 << 20) - left, left)

    def pwrite(size):
        fd = os.open(active_path, os.O_WRONLY)
        end = os.fstat(fd).st_size
        try:
            return timed(lambda: os.pwrite(fd, block[:size], end))
        finally:
            os.ftruncate(fd, end)
            os.close(fd)

    results = {}
    for state in ("cold", "warm"):
        for round_ in range(args.rounds):
            offset = (round_ * 3 % args.segment_mib) << 20
            if state == "warm":
                os.listdir(part)
                sendfile_mib(offset)
            for name, call in (
                ("read_dir", lambda: timed(lambda: os.listdir(part))),
                ("pwrite 4 KiB", lambda: pwrite(4096)),
                ("pwrite 64 KiB", lambda: pwrite(65536)),
                ("sendfile 1 MiB", lambda: timed(lambda: sendfile_mib(offset))),
            ):
                if state == "cold":
                    drop_caches()
                elif name.startswith("pwrite"):
                    pwrite(4096)
                results.setdefault((state, name), []).append(call())
    sender.close()
    os.close(sealed)
    shutil.rmtree(root, ignore_errors=True)
    print(f"dir={args.dir} rounds={args.rounds} segment_mib={args.segment_mib}")
    print(f"{'call':16} {'state':5} {'median us':>10} {'max us':>10}")
    for (state, name), values in sorted(results.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        print(f"{name:16} {state:5} {statistics.median(values):10.0f} {max(values):10.0f}")


if __name__ == "__main__":
    main()
