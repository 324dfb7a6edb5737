"""kcat (Debian's, linking librdkafka 2.0.2, an old client many servers still meet) and kafkajs (non-flexible
versions only), each paired with another client library."""

import json
import subprocess
from pathlib import Path

from clients import ck_consume, ck_produce, create_topic, kp_consume, kp_produce

HERE = Path(__file__).resolve().parent


def kcat(*args, input=None):
    return subprocess.run(["kcat", *args], input=input, capture_output=True, check=True, timeout=60)


def test_kcat_librdkafka_2_0_2_round_trip(broker):
    version = kcat("-V").stdout.decode()
    assert "librdkafka 2.0.2" in version, version
    listing = kcat("-b", broker.bootstrap, "-L").stdout.decode()
    assert "1 brokers" in listing
    create_topic(broker.bootstrap, "kc", partitions=2)
    lines = b"".join(f"key{i % 7}:value-{i}\n".encode() for i in range(2000))
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"]:
        kcat("-b", broker.bootstrap, "-P", "-t", "kc", "-K", ":", "-z", codec, "-H", f"codec={codec}", input=lines)
    got = kp_consume(broker.bootstrap, "kc", [0, 1], 10_000)
    assert len(got) == 10_000
    # Each codec's run carried the same 2000 values, with their keys.
    assert sorted(m.value for m in got) == sorted([f"value-{i}".encode() for i in range(2000)] * 5)
    assert sorted((m.key, m.value) for m in got) == sorted(
        [(f"key{i % 7}".encode(), f"value-{i}".encode()) for i in range(2000)] * 5)
    assert {dict(m.headers)["codec"] for m in got} == {b"none", b"gzip", b"snappy", b"lz4", b"zstd"}
    for p in (0, 1):
        offsets = [m.offset for m in got if m.partition == p]
        assert offsets == list(range(len(offsets)))
    # kcat consumes what kafka-python produced, with offsets and keys.
    create_topic(broker.bootstrap, "kc2")
    kp_produce(broker.bootstrap, "kc2", [{"key": f"k{i}".encode(), "value": f"v{i}".encode()} for i in range(300)])
    out = kcat("-b", broker.bootstrap, "-C", "-t", "kc2", "-o", "beginning", "-e", "-f", "%o %k %s\\n").stdout.decode()
    rows = [line.split() for line in out.strip().splitlines()]
    assert rows == [[str(i), f"k{i}", f"v{i}"] for i in range(300)]
    # Offsets by timestamp through kcat's -Q (ListOffsets).
    queried = kcat("-b", broker.bootstrap, "-Q", "-t", "kc2:0:0").stdout.decode()
    assert "offset 0" in queried


def test_kafkajs_produces_and_lists_offsets_confluent_consumes(broker):
    result = subprocess.run(["node", str(HERE / "kafkajs_produce.js"), broker.bootstrap, "js", "1000"],
                            capture_output=True, text=True, timeout=120, cwd=HERE)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["created"] is True and summary["again"] is False
    assert summary["partitions"] == 3
    assert sum(int(o["high"]) for o in summary["offsets"]) == 1000
    got = ck_consume(broker.bootstrap, "js", [0, 1, 2], 1000)
    assert len(got) == 1000
    seqs = {int(dict(m.headers())["seq"]) for m in got}
    assert seqs == set(range(1000))
    for m in got:
        seq = int(dict(m.headers())["seq"])
        assert m.value() == f"value-{seq}".encode() and m.timestamp()[1] == 1700000000000 + seq
    by_time = {int(o["partition"]): int(o["offset"]) for o in summary["byTime"]}
    for p, offset in by_time.items():
        records = sorted((m for m in got if m.partition() == p), key=lambda m: m.offset())
        expected = next((m.offset() for m in records if m.timestamp()[1] >= 1700000000000 + 500), None)
        if expected is not None:
            assert offset == expected, (p, offset, expected)
