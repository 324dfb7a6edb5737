"""ListOffsets (earliest, latest, by timestamp) through two clients, and idempotent producers."""

import kafka
from confluent_kafka import Consumer, TopicPartition

from clients import ck_consume, ck_produce, create_topic, kp_consume, kp_produce

BASE_TS = 1_600_000_000_000


def test_list_offsets_earliest_latest_and_by_timestamp(broker):
    create_topic(broker.bootstrap, "times", partitions=2)
    records = [{"value": f"v{i}".encode(), "timestamp": BASE_TS + i * 1000, "partition": 0} for i in range(100)]
    ck_produce(broker.bootstrap, "times", records)

    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "unused"})
    low, high = consumer.get_watermark_offsets(TopicPartition("times", 0), timeout=10)
    assert (low, high) == (0, 100)
    assert consumer.get_watermark_offsets(TopicPartition("times", 1), timeout=10) == (0, 0)
    found = consumer.offsets_for_times([TopicPartition("times", 0, BASE_TS + 41_500)], timeout=10)
    assert found[0].offset == 42
    # No record at or after the time: -1 (librdkafka reports it as OFFSET_END, -1).
    found = consumer.offsets_for_times([TopicPartition("times", 0, BASE_TS + 10_000_000)], timeout=10)
    assert found[0].offset == -1
    # An empty partition has no match either.
    found = consumer.offsets_for_times([TopicPartition("times", 1, BASE_TS)], timeout=10)
    assert found[0].offset == -1
    consumer.close()

    kp = kafka.KafkaConsumer(bootstrap_servers=broker.bootstrap)
    tp0 = kafka.TopicPartition("times", 0)
    assert kp.beginning_offsets([tp0])[tp0] == 0
    assert kp.end_offsets([tp0])[tp0] == 100
    found = kp.offsets_for_times({tp0: BASE_TS + 7_000})[tp0]
    assert found.offset == 7 and found.timestamp == BASE_TS + 7_000
    assert kp.offsets_for_times({tp0: BASE_TS + 10_000_000})[tp0] is None
    kp.close()


def test_idempotent_producers_write_each_record_once(broker):
    create_topic(broker.bootstrap, "idem", partitions=2)
    records = [{"key": str(i % 5).encode(), "value": f"c{i}".encode()} for i in range(3000)]
    delivered = ck_produce(broker.bootstrap, "idem", records, **{"enable.idempotence": True, "acks": "all"})
    assert len(delivered) == 3000
    more = [{"key": str(i % 5).encode(), "value": f"k{i}".encode()} for i in range(2000)]
    kp_produce(broker.bootstrap, "idem", more, enable_idempotence=True, acks="all")
    got = kp_consume(broker.bootstrap, "idem", [0, 1], 5000)
    values = [m.value for m in got]
    assert len(values) == 5000 and len(set(values)) == 5000
    for p in (0, 1):
        offsets = [m.offset for m in got if m.partition == p]
        assert offsets == list(range(len(offsets)))
    # Each batch carries a producer id: two producers, two ids.
    confluent = ck_consume(broker.bootstrap, "idem", [0, 1], 5000)
    assert len(confluent) == 5000


def test_read_committed_consumers_read_non_transactional_records(broker):
    create_topic(broker.bootstrap, "committed")
    ck_produce(broker.bootstrap, "committed", [{"value": f"c{i}".encode()} for i in range(50)])
    got = ck_consume(broker.bootstrap, "committed", [0], 50, **{"isolation.level": "read_committed"})
    assert [m.offset() for m in got] == list(range(50))
    got = kp_consume(broker.bootstrap, "committed", [0], 50, isolation_level="read_committed")
    assert [m.offset for m in got] == list(range(50))
