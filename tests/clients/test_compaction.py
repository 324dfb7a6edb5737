"""Log compaction (`cleanup.policy=compact`) with stock clients: confluent-kafka (librdkafka) and kafka-python
create compacted topics, write many versions of each key in every codec and uncompressed, and read back the
latest value per key at the offsets they were written, with tombstones visible for `delete.retention.ms` and
gone after it. Records without a key are refused with INVALID_RECORD, as Kafka refuses them."""

import time

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource

from clients import ck_consume, ck_produce, ck_producer, create_topic, high_watermarks, kp_produce

FAST_CLEANER = ["--set", "log.cleaner.backoff.ms=100"]
COMPACTED = {"cleanup.policy": "compact", "segment.bytes": "16384", "min.cleanable.dirty.ratio": "0.01"}


def versions(keys, rounds, tag, prefix="key"):
    return [{"key": f"{prefix}-{k}".encode(), "value": f"{tag} round {r} of key {k} ".encode() * 4}
            for r in range(rounds) for k in range(keys)]


def produce_everywhere(bootstrap, topic, keys, rounds, prefix="key"):
    """Writes `rounds` versions of each key, alternating clients and codecs. Returns offset -> (key, value)."""
    written = {}
    codecs = [("ck", "lz4"), ("kp", "gzip"), ("ck", "zstd"), ("kp", None), ("ck", "snappy"), ("ck", "none")]
    for r in range(rounds):
        client, codec = codecs[r % len(codecs)]
        batch = versions(keys, 1, f"r{r}-{codec}", prefix)
        if client == "ck":
            delivered = ck_produce(bootstrap, topic, batch, **{"compression.type": codec or "none",
                                                             "enable.idempotence": True})
        else:
            delivered = kp_produce(bootstrap, topic, batch, compression_type=codec)
        by_key = {r["key"]: r["value"] for r in batch}
        for _, offset, key in delivered:
            written[offset] = (key, by_key[key])
    return written


def consumed(messages):
    out = []
    for m in messages:
        if hasattr(m, "error"):
            out.append((m.offset(), m.key(), m.value()))
        else:
            out.append((m.offset, m.key, m.value))
    return out


def read_to_end(bootstrap, topic, high, timeout=30):
    """Every record of partition 0 from the start up to `high` (exclusive), with each client, as
    (offset, key, value) lists. Compaction leaves gaps, so the reads stop at the last offset, not at a count."""
    import confluent_kafka
    import kafka
    consumer = confluent_kafka.Consumer({"bootstrap.servers": bootstrap, "group.id": "unused",
                                         "enable.auto.commit": False})
    consumer.assign([confluent_kafka.TopicPartition(topic, 0, confluent_kafka.OFFSET_BEGINNING)])
    ck, deadline = [], time.time() + timeout
    while (not ck or ck[-1][0] < high - 1) and time.time() < deadline:
        for m in consumer.consume(num_messages=1000, timeout=0.5):
            if m.error():
                raise RuntimeError(m.error())
            ck.append((m.offset(), m.key(), m.value()))
    consumer.close()
    consumer = kafka.KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    tp = kafka.TopicPartition(topic, 0)
    consumer.assign([tp])
    consumer.seek_to_beginning(tp)
    kp, deadline = [], time.time() + timeout
    while (not kp or kp[-1][0] < high - 1) and time.time() < deadline:
        for batch in consumer.poll(timeout_ms=500).values():
            kp.extend((m.offset, m.key, m.value) for m in batch)
    consumer.close()
    return ck, kp


def read_until(bootstrap, topic, condition, timeout=60):
    """Reads the partition from the start (both clients) until `condition(records)` holds for both."""
    deadline = time.time() + timeout
    while True:
        ck, kp = read_to_end(bootstrap, topic, end_offset(bootstrap, topic))
        if (condition(ck) and condition(kp)) or time.time() > deadline:
            return ck, kp
        time.sleep(0.5)


def end_offset(bootstrap, topic):
    return high_watermarks(bootstrap, topic, 1)[0]


def check_compacted(records, written, latest):
    offsets = [o for o, _, _ in records]
    assert offsets == sorted(set(offsets)), "offsets only increase"
    for offset, key, value in records:
        assert written[offset] == (key, value), f"record at {offset} is not what was written there"
    present = {(o, k) for o, k, _ in records}
    for key, offset in latest.items():
        assert (offset, key) in present, f"the latest value of {key!r} (offset {offset}) is gone"


def latest_offsets(written):
    latest = {}
    for offset in sorted(written):
        latest[written[offset][0]] = offset
    return latest


@pytest.mark.sluice_only("seals segments of a few KiB; Kafka 4 refuses segment.bytes under 1 MiB (Sluice takes them)")
def test_compacted_topic_keeps_the_latest_value_per_key(make_broker):
    broker = make_broker(shards=2, extra_args=FAST_CLEANER)
    create_topic(broker.bootstrap, "table", config=COMPACTED)
    keys, rounds = 40, 24
    written = produce_everywhere(broker.bootstrap, "table", keys, rounds)
    latest = latest_offsets(written)

    # Fewer than half the records left: the cleaner ran over the sealed segments (the active one stays dirty).
    ck, kp = read_until(broker.bootstrap, "table", lambda recs: 0 < len(recs) < len(written) // 2)
    for records in (ck, kp):
        assert len(records) < len(written) // 2, f"{len(records)} of {len(written)} records: nothing was cleaned"
        check_compacted(records, written, latest)
    log = broker.log()
    assert "cleaned log" in log

    # A clean restart keeps the compacted log as it was, and so does the cleaner's next pass.
    assert broker.stop() == 0
    broker.start()
    ck, kp = read_until(broker.bootstrap, "table", lambda recs: len(recs) > 0)
    for records in (ck, kp):
        check_compacted(records, written, latest)


@pytest.mark.sluice_only("seals segments of a few KiB; Kafka 4 refuses segment.bytes under 1 MiB (Sluice takes them)")
def test_tombstones_are_seen_then_expire(make_broker):
    broker = make_broker(shards=1, extra_args=FAST_CLEANER)
    create_topic(broker.bootstrap, "deletes",
                 config={**COMPACTED, "segment.bytes": "2048", "delete.retention.ms": "3000"})
    written = produce_everywhere(broker.bootstrap, "deletes", 20, 4)
    producer = ck_producer(broker.bootstrap)
    for k in range(5):
        producer.produce("deletes", key=f"key-{k}".encode(), value=None)
    assert producer.flush(30) == 0
    base = end_offset(broker.bootstrap, "deletes")
    for offset, k in zip(range(base - 5, base), range(5)):
        written[offset] = (f"key-{k}".encode(), None)
    # Filler with other keys seals the segment holding the tombstones.
    written.update(produce_everywhere(broker.bootstrap, "deletes", 200, 2, prefix="filler"))
    latest = latest_offsets(written)
    tombstones = {f"key-{k}".encode() for k in range(5)}

    def cleaned_with_tombstones(records):
        keys = {k for _, k, _ in records}
        return len(records) < len(written) and tombstones <= keys

    ck, kp = read_until(broker.bootstrap, "deletes", cleaned_with_tombstones)
    for records in (ck, kp):
        assert cleaned_with_tombstones(records), "the tombstones must be readable until delete.retention.ms passes"
        check_compacted(records, written, latest)
        for offset, key, value in records:
            if key in tombstones:
                assert value is None, f"{key!r} at {offset}: only its tombstone stays"

    # After delete.retention.ms (3 s), a pass removes them; every other key keeps its latest value.
    gone = lambda records: not tombstones & {k for _, k, _ in records}  # noqa: E731
    ck, kp = read_until(broker.bootstrap, "deletes", gone, timeout=60)
    for records in (ck, kp):
        assert gone(records), "tombstones older than delete.retention.ms stay"
        check_compacted(records, written, {k: o for k, o in latest.items() if k not in tombstones})


def test_records_without_keys_are_refused(broker):
    create_topic(broker.bootstrap, "keyed", config={"cleanup.policy": "compact"})
    producer = ck_producer(broker.bootstrap, **{"message.send.max.retries": 0})
    errors = []
    # Separate requests: a batch with one keyless record is refused whole, as Kafka refuses it.
    producer.produce("keyed", value=b"no key", on_delivery=lambda err, msg: errors.append(err))
    producer.flush(30)
    producer.produce("keyed", key=b"k", value=b"keyed", on_delivery=lambda err, msg: errors.append(err))
    producer.flush(30)
    assert [e.code() if e else None for e in errors] == [KafkaError.INVALID_RECORD, None]
    got = consumed(ck_consume(broker.bootstrap, "keyed", [0], 1))
    assert [(k, v) for _, k, v in got] == [(b"k", b"keyed")]


def test_keyless_records_in_a_batch_are_named_one_by_one(broker):
    """librdkafka's test 0011 (`test_message_single_partition_record_fail`): a batch mixing keyed and keyless
    records is refused whole with INVALID_RECORD, and the response lists each keyless record (Produce v8+
    `record_errors`, as Kafka's LogValidator does), so the client fails exactly those with INVALID_RECORD and
    the others with _INVALID_DIFFERENT_RECORD. Without the list every record would get INVALID_RECORD."""
    create_topic(broker.bootstrap, "mixed", config={"cleanup.policy": "compact"})
    producer = ck_producer(broker.bootstrap, **{"linger.ms": 1000, "message.send.max.retries": 0,
                                                "compression.type": "lz4"})
    reports = {}
    for i in range(30):
        key = None if i % 10 == 3 else f"k{i}".encode()
        producer.produce("mixed", key=key, value=f"v{i}".encode(), partition=0,
                         on_delivery=lambda err, msg, i=i: reports.__setitem__(i, err))
    assert producer.flush(30) == 0
    codes = {i: err.code() if err else None for i, err in reports.items()}
    keyless = {3, 13, 23}
    assert {i for i, c in codes.items() if c == KafkaError.INVALID_RECORD} == keyless, codes
    assert {i for i, c in codes.items() if c == KafkaError._INVALID_DIFFERENT_RECORD} == set(range(30)) - keyless
    # Nothing of the refused batch was written; a keyed batch after it is.
    ck_produce(broker.bootstrap, "mixed", [{"key": b"k", "value": b"after", "partition": 0}])
    got = consumed(ck_consume(broker.bootstrap, "mixed", [0], 1))
    assert [(k, v) for _, k, v in got] == [(b"k", b"after")]


@pytest.mark.sluice_only("seals segments of a few KiB; Kafka 4 refuses segment.bytes under 1 MiB (Sluice takes them)")
def test_cleanup_policy_is_described_and_changes_live(make_broker):
    broker = make_broker(shards=1, extra_args=FAST_CLEANER)
    create_topic(broker.bootstrap, "switch", config={"segment.bytes": "16384"})
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    resource = ConfigResource(ConfigResource.Type.TOPIC, "switch")
    described = admin.describe_configs([resource])[resource].result(30)
    assert described["cleanup.policy"].value == "delete"
    assert described["min.cleanable.dirty.ratio"].value == "0.5"
    written = produce_everywhere(broker.bootstrap, "switch", 30, 12)
    # Switching to compaction live cleans what is already there.
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry
    change = ConfigResource(ConfigResource.Type.TOPIC, "switch", incremental_configs=[
        ConfigEntry("cleanup.policy", "compact", incremental_operation=AlterConfigOpType.APPEND),
        ConfigEntry("min.cleanable.dirty.ratio", "0.01", incremental_operation=AlterConfigOpType.SET)])
    admin.incremental_alter_configs([change])[change].result(30)
    described = admin.describe_configs([resource])[resource].result(30)
    assert described["cleanup.policy"].value == "delete,compact"
    ck, kp = read_until(broker.bootstrap, "switch", lambda recs: 0 < len(recs) < len(written) // 2)
    for records in (ck, kp):
        assert len(records) < len(written) // 2
        check_compacted(records, written, latest_offsets(written))
    with pytest.raises(KafkaException):
        bad = ConfigResource(ConfigResource.Type.TOPIC, "switch", incremental_configs=[
            ConfigEntry("min.cleanable.dirty.ratio", "2", incremental_operation=AlterConfigOpType.SET)])
        admin.incremental_alter_configs([bad])[bad].result(30)


def low_watermark(bootstrap, topic):
    import confluent_kafka
    probe = confluent_kafka.Consumer({"bootstrap.servers": bootstrap, "group.id": "unused"})
    try:
        return probe.get_watermark_offsets(confluent_kafka.TopicPartition(topic, 0), timeout=10)[0]
    finally:
        probe.close()


@pytest.mark.sluice_only("seals segments of a few KiB; Kafka 4 refuses segment.bytes under 1 MiB (Sluice takes them)")
def test_an_empty_cleanup_policy_keeps_every_record(make_broker):
    """Kafka 4.1+: `cleanup.policy=` (neither delete nor compact) is "delete" with infinite retention. Beside
    a `delete` topic whose retention removes its old segments, the empty-policy topic keeps all of them, takes
    records without keys, and DeleteRecords still moves its log start."""
    broker = make_broker(shards=1, extra_args=["--set", "log.retention.check.interval.ms=100", *FAST_CLEANER])
    small = {"segment.bytes": "16384", "retention.ms": "1", "min.cleanable.dirty.ratio": "0.01"}
    create_topic(broker.bootstrap, "kept", config={**small, "cleanup.policy": ""})
    create_topic(broker.bootstrap, "expiring", config=small)
    records = [{"value": f"keyless record {i} ".encode() * 20} for i in range(400)]
    for topic in ("kept", "expiring"):
        ck_produce(broker.bootstrap, topic, records)
    deadline = time.time() + 30
    while low_watermark(broker.bootstrap, "expiring") == 0:
        assert time.time() < deadline, "retention never removed the delete topic's old segments"
        time.sleep(0.2)
    time.sleep(1)  # a few more retention and cleaner rounds
    assert low_watermark(broker.bootstrap, "kept") == 0
    got = [m.value() for m in ck_consume(broker.bootstrap, "kept", [0], len(records))]
    assert got == [r["value"] for r in records]
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    from confluent_kafka import TopicPartition
    result = admin.delete_records([TopicPartition("kept", 0, 100)])
    assert list(result.values())[0].result(30).low_watermark == 100
    assert low_watermark(broker.bootstrap, "kept") == 100
