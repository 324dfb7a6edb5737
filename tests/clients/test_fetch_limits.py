"""Fetch's request-wide `max_bytes` (the consumer's `fetch.max.bytes`) bounds the whole answer, across
partitions, as well as each partition's `partition_max_bytes` (KIP-74): only the first batch of the first
non-empty partition may pass it, when it alone is larger. librdkafka's test 0082 checks this with a receive
buffer just above `fetch.max.bytes` and four partitions of several MB each."""

import socket
import struct

import pytest
from confluent_kafka import Consumer, TopicPartition

from clients import ck_produce, create_topic

RECORD_BYTES = 10_000
RECORDS_PER_PARTITION = 400  # about 4 MB a partition


def fill(broker, topic, partitions=4):
    create_topic(broker.bootstrap, topic, partitions=partitions)
    records = [{"value": bytes([i % 251]) * RECORD_BYTES, "partition": p}
               for p in range(partitions) for i in range(RECORDS_PER_PARTITION)]
    # Batches of about 64 KiB, uncompressed, so that every batch is far smaller than the limits below.
    ck_produce(broker.bootstrap, topic, records, **{"batch.size": 65536, "compression.type": "none"})


def kafka_string(text):
    data = text.encode()
    return struct.pack(">h", len(data)) + data


def fetch_v4(broker, topic, partitions, max_bytes, partition_max_bytes):
    """One raw Fetch v4 from offset 0 of each partition. Returns (response frame size, [(partition, error,
    record set bytes)])."""
    body = struct.pack(">hhih", 1, 4, 7, -1)  # Fetch v4, correlation 7, null client id
    body += struct.pack(">iiiib", -1, 500, 1, max_bytes, 0)
    body += struct.pack(">i", 1) + kafka_string(topic) + struct.pack(">i", len(partitions))
    for p in partitions:
        body += struct.pack(">iqi", p, 0, partition_max_bytes)
    host, port = broker.bootstrap.split(":")
    with socket.create_connection((host, int(port)), timeout=30) as s:
        s.sendall(struct.pack(">i", len(body)) + body)
        size = struct.unpack(">i", recv_exact(s, 4))[0]
        data = recv_exact(s, size)
    correlation, _throttle, topics = struct.unpack_from(">iii", data, 0)
    assert correlation == 7 and topics == 1
    at = 12
    name_len = struct.unpack_from(">h", data, at)[0]
    at += 2 + name_len
    count = struct.unpack_from(">i", data, at)[0]
    at += 4
    out = []
    for _ in range(count):
        partition, error, _hw, _lso, aborted = struct.unpack_from(">ihqqi", data, at)
        at += 4 + 2 + 8 + 8 + 4
        assert aborted == -1
        records_len = struct.unpack_from(">i", data, at)[0]
        at += 4
        records = data[at:at + max(records_len, 0)]
        at += max(records_len, 0)
        out.append((partition, error, records))
    assert at == len(data)
    return size, out


def recv_exact(sock, n):
    chunks, got = [], 0
    while got < n:
        chunk = sock.recv(min(n - got, 1 << 20))
        assert chunk, "connection closed mid-response"
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def batch_sizes(records):
    """The sizes of the whole RecordBatches that make up a record set; fails on a cut batch."""
    sizes, at = [], 0
    while at < len(records):
        assert len(records) - at >= 12, "a batch header is cut off"
        batch_len = struct.unpack_from(">i", records, at + 8)[0]
        assert at + 12 + batch_len <= len(records), "a batch is cut off"
        sizes.append(12 + batch_len)
        at += 12 + batch_len
    return sizes


@pytest.mark.sluice_only("Apache Kafka may end a partition's data with a partial batch where the request's max_bytes "
                         "cuts through it (clients drop it); Sluice sends whole batches only, deliberately")
def test_request_max_bytes_bounds_the_answer_across_partitions(broker):
    fill(broker, "fmb")
    # Each partition alone may send 20 MB; the request allows 1 MB in all.
    size, parts = fetch_v4(broker, "fmb", [0, 1, 2, 3], max_bytes=1_000_000, partition_max_bytes=20_000_000)
    assert all(error == 0 for _, error, _ in parts)
    total = sum(len(records) for _, _, records in parts)
    assert 0 < total <= 1_000_000, f"{total} record bytes for a 1 MB request"
    assert size <= 1_000_000 + 512
    for _, _, records in parts:
        batch_sizes(records)

    # 400 KB a partition within 1 MB: two partitions whole, the third cut to the whole batches that still
    # fit, the fourth left out.
    _, parts = fetch_v4(broker, "fmb", [0, 1, 2, 3], max_bytes=1_000_000, partition_max_bytes=400_000)
    sizes = [sum(batch_sizes(records)) for _, _, records in parts]
    assert 0 < sizes[0] <= 400_000 and 0 < sizes[1] <= 400_000, sizes
    assert 0 < sizes[2] <= 1_000_000 - sizes[0] - sizes[1], sizes
    assert sum(sizes) <= 1_000_000, sizes
    assert sizes[3] == 0, sizes


def test_a_first_batch_larger_than_max_bytes_comes_whole_and_alone(broker):
    create_topic(broker.bootstrap, "huge", partitions=2, config={"max.message.bytes": "4000000"})
    for p in (0, 1):
        ck_produce(broker.bootstrap, "huge", [{"value": b"x" * 2_000_000, "partition": p}],
                   **{"message.max.bytes": 4_000_000, "compression.type": "none"})
    _, parts = fetch_v4(broker, "huge", [0, 1], max_bytes=1_000_000, partition_max_bytes=20_000_000)
    first, second = (batch_sizes(records) for _, _, records in parts)
    assert len(first) == 1 and first[0] > 2_000_000, first
    assert second == [], "nothing may follow a first batch that alone passes max_bytes"


def test_librdkafka_consumes_within_fetch_max_bytes(broker):
    """librdkafka's test 0082: a receive buffer just above fetch.max.bytes fails any larger answer."""
    fill(broker, "fmb-rdk")
    consumer = Consumer({
        "bootstrap.servers": broker.bootstrap,
        "group.id": "fetch-max-bytes",
        "fetch.max.bytes": 1_000_000,
        "max.partition.fetch.bytes": 20_000_000,
        "receive.message.max.bytes": 1_000_000 + 512,
        "enable.auto.commit": False,
    })
    consumer.assign([TopicPartition("fmb-rdk", p, 0) for p in range(4)])
    want = 4 * RECORDS_PER_PARTITION
    got = 0
    errors = []
    for _ in range(240):
        for msg in consumer.consume(num_messages=1000, timeout=0.5):
            if msg.error():
                errors.append(msg.error())
            else:
                got += 1
        if got >= want or errors:
            break
    consumer.close()
    assert not errors, errors[:3]
    assert got == want
