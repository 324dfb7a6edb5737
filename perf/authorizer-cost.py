#!/usr/bin/env python3
"""What the ACL authorizer costs on the produce path: the same small-batch produce load against one broker
without an authorizer and one with it on and ACLS ACLs, in one run, reported as a ratio. The ACLs are on other
topics, as a cluster with many tenants has them: a check must pass them by, and allow.everyone.if.no.acl.found
lets the load through.

    perf/authorizer-cost.py [--acls 1000] [--duration 8]

Needs a release build (target/release/sluice) and the client test venv (confluent-kafka) for CreateAcls.
"""

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SLUICE = os.environ.get("SLUICE_BIN", str(ROOT / "target/release/sluice"))
AUTHORIZER = ["--set", "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
              "--set", "allow.everyone.if.no.acl.found=true"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(data, extra):
    port = free_port()
    log = open(data / "broker.log", "ab")
    proc = subprocess.Popen([SLUICE, "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", str(data / "d"),
                             "--shards", "1", "--set", "admin.listeners=", *extra], stdout=log, stderr=log)
    deadline = time.time() + 60
    while "ready to serve" not in (data / "broker.log").read_text(errors="replace"):
        if time.time() > deadline or proc.poll() is not None:
            sys.exit(f"broker did not start: {(data / 'broker.log').read_text()[-2000:]}")
        time.sleep(0.1)
    return proc, f"127.0.0.1:{port}"


def add_acls(bootstrap, count):
    from confluent_kafka.admin import (AclBinding, AclOperation, AclPermissionType, AdminClient,
                                       ResourcePatternType, ResourceType)
    client = AdminClient({"bootstrap.servers": bootstrap})
    bindings = [AclBinding(ResourceType.TOPIC, f"other-{i}", ResourcePatternType.LITERAL, f"User:u{i}", "*",
                           AclOperation.WRITE, AclPermissionType.ALLOW) for i in range(count)]
    for future in client.create_acls(bindings, request_timeout=60).values():
        future.result(60)


def bench(bootstrap, duration, out):
    subprocess.run([SLUICE, "bench", "produce", "--bootstrap", bootstrap, "--partitions", "16", "--acks", "1",
                    "--record-size", "100", "--batch-bytes", "1024", "--duration", str(duration), "--json", str(out)],
                   check=True, capture_output=True)
    return json.loads(out.read_text())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--acls", type=int, default=1000)
    parser.add_argument("--duration", type=int, default=8)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="sluice-authz-"))
    results = {"off": [], "on": []}
    try:
        # Two rounds, alternating, so drift on the shared machine falls on both sides.
        for round_ in range(2):
            for name, extra in [("off", []), ("on", AUTHORIZER)]:
                data = root / f"{name}-{round_}"
                data.mkdir()
                proc, bootstrap = start(data, extra)
                try:
                    if name == "on" and args.acls > 0:
                        add_acls(bootstrap, args.acls)
                    result = bench(bootstrap, args.duration, data / "bench.json")
                    assert result["errors"] == 0, f"the load was refused: {result}"
                    results[name].append(result)
                    print(f"round {round_} authorizer {name}: {json.dumps(result)}", flush=True)
                finally:
                    proc.terminate()
                    proc.wait(30)
    finally:
        shutil.rmtree(root, ignore_errors=True)

    def mean(name, field):
        values = [r[field] if not isinstance(field, tuple) else r[field[0]][field[1]] for r in results[name]]
        return sum(values) / len(values)

    throughput = mean("on", "records_per_second") / mean("off", "records_per_second")
    p99 = (mean("off", ("latency_ms", "p99")), mean("on", ("latency_ms", "p99")))
    print(f"throughput on/off with {args.acls} ACLs: {throughput:.3f}; p99 ms off {p99[0]:.2f}, on {p99[1]:.2f}")


if __name__ == "__main__":
    main()
