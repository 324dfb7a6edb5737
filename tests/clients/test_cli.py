"""The sluice CLI (topic, produce, consume) against the broker, cross-checked with another client; and the
README's first command: `sluice serve` with no flags and no config file."""

import os
import signal
import socket
import subprocess
import time

import pytest

from clients import ck_consume, ck_produce, kp_consume
from conftest import SLUICE, sluice


def test_topic_produce_consume_commands(broker):
    b = ["--bootstrap", broker.bootstrap]
    out = sluice("topic", "create", "cli", "--partitions", "3", "--config", "retention.ms=86400000", *b).stdout
    assert "created topic cli with 3 partition(s)" in out
    again = sluice("topic", "create", "cli", *b, check=False)
    assert again.returncode == 1 and "TopicAlreadyExists" in again.stderr
    assert "cli\t3" in sluice("topic", "list", *b).stdout
    lines = "".join(f"user{i % 5}|event {i}\n" for i in range(100))
    sluice("produce", "cli", "--key-separator", "|", *b, input=lines)
    got = kp_consume(broker.bootstrap, "cli", [0, 1, 2], 100)
    assert sorted(m.value.decode() for m in got) == sorted(f"event {i}" for i in range(100))
    keys_to_partitions = {}
    for m in got:
        keys_to_partitions.setdefault(m.key, set()).add(m.partition)
    assert all(len(p) == 1 for p in keys_to_partitions.values())
    ck_produce(broker.bootstrap, "cli", [{"key": b"x", "value": b"from confluent", "partition": 1}])
    out = sluice("consume", "cli", "--from-beginning", "-e", "--partition", "1", "--format", "%p %o %k %v\\n", *b).stdout
    rows = out.strip().splitlines()
    assert rows[-1].endswith(" x from confluent")
    assert [int(r.split()[1]) for r in rows] == list(range(len(rows)))
    out = sluice("consume", "cli", "--offset", "2", "--partition", "1", "--max-records", "1", "--format", "%o\\n", *b).stdout
    assert out.strip() == "2"
    desc = sluice("topic", "describe", "cli", *b).stdout
    assert "config retention.ms=86400000\t(topic override)" in desc
    sluice("topic", "alter-config", "cli", "--set", "retention.ms=1000", "--delete", "segment.ms", *b)
    assert "config retention.ms=1000\t(topic override)" in sluice("topic", "describe", "cli", *b).stdout
    bad = sluice("topic", "alter-config", "cli", "--set", "retention.ms=never", *b, check=False)
    assert bad.returncode == 1 and "InvalidConfig" in bad.stderr
    sluice("topic", "delete", "cli", *b)
    assert "cli\t" not in sluice("topic", "list", *b).stdout


def test_cli_errors_are_clear_when_the_broker_is_down():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = sluice("topic", "list", "--bootstrap", f"127.0.0.1:{port}", check=False)
    assert result.returncode == 1
    assert f"cannot reach broker at 127.0.0.1:{port}" in result.stderr
    assert "panicked" not in result.stderr


def port_free(port):
    with socket.socket() as s:
        try:
            s.bind(("0.0.0.0", port))
            return True
        except OSError:
            return False


@pytest.mark.skipif(not port_free(9092), reason="port 9092 is taken on this machine")
@pytest.mark.sluice_only("runs `sluice serve` itself")
def test_serve_with_no_flags_uses_the_embedded_defaults(tmp_path):
    proc = subprocess.Popen([SLUICE, "serve"], cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 60
        line = ""
        while time.time() < deadline and "ready to serve" not in line:
            line = proc.stderr.readline()
            assert line or proc.poll() is None, "broker exited"
        assert "listen=0.0.0.0:9092" in line and "advertised=localhost:9092" in line, line
        assert f"shards={os.cpu_count()}" in line, line
        assert (tmp_path / "sluice-data").is_dir()
        out = subprocess.run(["kcat", "-b", "localhost:9092", "-L"], capture_output=True, text=True, timeout=30).stdout
        assert "broker 0 at localhost:9092" in out
        ck_produce("localhost:9092", "auto-created", [{"value": b"hello"}])
        assert [m.value() for m in ck_consume("localhost:9092", "auto-created", [0], 1)] == [b"hello"]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    assert proc.returncode == 0
    assert (tmp_path / "sluice-data" / ".clean-shutdown").exists()


def test_bench_produce_writes_what_it_reports(broker, tmp_path):
    import json
    import kafka
    summary_path = tmp_path / "bench.json"
    result = sluice("bench", "produce", "--bootstrap", broker.bootstrap, "--topic", "bench", "--partitions", "3",
                    "--record-size", "200", "--batch-bytes", "20000", "--records", "30000", "--producers", "2",
                    "--acks", "all", "--compression", "lz4", "--json", str(summary_path), timeout=120)
    assert "produce:" in result.stdout and "records/s" in result.stderr
    summary = json.loads(summary_path.read_text())
    assert summary["records"] == 30000 and summary["errors"] == 0
    assert summary["latency_ms"]["p50"] > 0 and summary["latency_ms"]["max"] >= summary["latency_ms"]["p99"]
    consumer = kafka.KafkaConsumer(bootstrap_servers=broker.bootstrap)
    partitions = [kafka.TopicPartition("bench", p) for p in range(3)]
    assert sum(consumer.end_offsets(partitions).values()) == 30000
    consumer.close()
    consumed_path = tmp_path / "consume.json"
    result = sluice("bench", "consume", "--bootstrap", broker.bootstrap, "--topic", "bench", "--json", str(consumed_path))
    assert "consume: 30000 records" in result.stdout
    assert json.loads(consumed_path.read_text())["records"] == 30000
    e2e_path = tmp_path / "e2e.json"
    sluice("bench", "e2e", "--bootstrap", broker.bootstrap, "--topic", "e2e", "--partitions", "2", "--duration", "2",
           "--rate", "500", "--batch-records", "5", "--json", str(e2e_path))
    e2e = json.loads(e2e_path.read_text())
    assert e2e["sent"] == e2e["received"] > 0 and e2e["errors"] == 0
    assert 0 < e2e["latency_ms"]["p50"] <= e2e["latency_ms"]["max"]
