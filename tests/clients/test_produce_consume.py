"""10,000 keyed records with headers and explicit timestamps over 3 partitions, produced by one client
library and consumed by another, in both directions: each arrives exactly once, in per-partition order, with
contiguous offsets, and headers and timestamps round-trip."""

from collections import defaultdict

import pytest

from clients import ck_consume, ck_produce, create_topic, kp_consume, kp_produce

COUNT = 10_000
BASE_TS = 1_700_000_000_000


def records():
    return [
        {
            "key": f"key-{i % 97}".encode(),
            "value": f"value-{i}".encode(),
            "headers": [("seq", str(i).encode()), ("origin", b"test")],
            "timestamp": BASE_TS + i,
        }
        for i in range(COUNT)
    ]


def check(delivered, consumed):
    """consumed: list of (partition, offset, key, value, headers dict, timestamp)."""
    assert len(consumed) == COUNT, f"consumed {len(consumed)} of {COUNT}"
    values = [c[3] for c in consumed]
    assert len(set(values)) == COUNT, "a record arrived twice"
    by_partition = defaultdict(list)
    for c in consumed:
        by_partition[c[0]].append(c)
    assert set(by_partition) == {0, 1, 2}
    for partition, items in by_partition.items():
        offsets = [c[1] for c in items]
        assert offsets == list(range(len(items))), f"partition {partition}: offsets not contiguous from 0"
        seqs = [int(c[4]["seq"]) for c in items]
        assert seqs == sorted(seqs), f"partition {partition}: records out of produce order"
    for c in consumed:
        i = int(c[4]["seq"])
        assert c[3] == f"value-{i}".encode()
        assert c[2] == f"key-{i % 97}".encode()
        assert c[4]["origin"] == b"test"
        assert c[5] == BASE_TS + i, "timestamp did not round-trip"
    # Same key, same partition: the partitioner's choice is kept.
    key_partitions = defaultdict(set)
    for c in consumed:
        key_partitions[c[2]].add(c[0])
    assert all(len(p) == 1 for p in key_partitions.values())
    # What the producer was told matches what the consumer read.
    assert sorted((p, o) for p, o, _ in delivered) == sorted((c[0], c[1]) for c in consumed)


def test_confluent_produces_kafka_python_consumes(broker):
    create_topic(broker.bootstrap, "orders", partitions=3)
    # Idempotent: without it a retried batch may land after the next one, on any broker (seen on Kafka).
    delivered = ck_produce(broker.bootstrap, "orders", records(), **{"enable.idempotence": True})
    consumed = kp_consume(broker.bootstrap, "orders", [0, 1, 2], COUNT)
    check(delivered, [(m.partition, m.offset, m.key, m.value, dict(m.headers), m.timestamp) for m in consumed])


def test_kafka_python_produces_confluent_consumes(broker):
    create_topic(broker.bootstrap, "orders", partitions=3)
    delivered = kp_produce(broker.bootstrap, "orders", records())
    consumed = ck_consume(broker.bootstrap, "orders", [0, 1, 2], COUNT)
    check(delivered, [(m.partition(), m.offset(), m.key(), m.value(), dict(m.headers()), m.timestamp()[1]) for m in consumed])
