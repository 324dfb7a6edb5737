"""All four codecs round-trip between two client libraries; a 900 KiB record round-trips; a record above
max.message.bytes gets MESSAGE_TOO_LARGE and the broker keeps serving."""

import pytest
from confluent_kafka import KafkaError, KafkaException

from clients import ck_consume, ck_produce, ck_producer, create_topic, kp_consume, kp_produce

CODECS = ["gzip", "snappy", "lz4", "zstd"]


def payloads(codec):
    return [{"key": f"k{i}".encode(), "value": (f"{codec}-{i}-" * 20).encode()} for i in range(500)]


@pytest.mark.parametrize("codec", CODECS)
def test_confluent_compressed_batches_read_by_kafka_python(broker, codec):
    create_topic(broker.bootstrap, "zipped")
    records = payloads(codec)
    ck_produce(broker.bootstrap, "zipped", records, **{"compression.type": codec})
    got = kp_consume(broker.bootstrap, "zipped", [0], len(records))
    assert [m.value for m in got] == [r["value"] for r in records]
    assert [m.offset for m in got] == list(range(len(records)))


@pytest.mark.parametrize("codec", CODECS)
def test_kafka_python_compressed_batches_read_by_confluent(broker, codec):
    create_topic(broker.bootstrap, "zipped")
    records = payloads(codec)
    kp_produce(broker.bootstrap, "zipped", records, compression_type=codec)
    got = ck_consume(broker.bootstrap, "zipped", [0], len(records))
    assert [m.value() for m in got] == [r["value"] for r in records]


def test_900_kib_record_round_trips(broker):
    create_topic(broker.bootstrap, "big")
    value = bytes(range(256)) * (900 * 1024 // 256)
    ck_produce(broker.bootstrap, "big", [{"key": b"big", "value": value}], **{"message.max.bytes": 2_000_000})
    got = kp_consume(broker.bootstrap, "big", [0], 1, max_partition_fetch_bytes=2_000_000)
    assert len(got) == 1 and got[0].value == value
    kp_produce(broker.bootstrap, "big", [{"key": b"big2", "value": value}], max_request_size=2_000_000)
    got = ck_consume(broker.bootstrap, "big", [0], 2)
    assert [m.value() for m in got] == [value, value]


def test_record_above_max_message_bytes_is_refused(broker):
    create_topic(broker.bootstrap, "small", config={"max.message.bytes": "100000"})
    producer = ck_producer(broker.bootstrap, **{"message.max.bytes": 1_000_000, "retries": 0})
    errors = []
    producer.produce("small", value=b"x" * 200_000, on_delivery=lambda err, msg: errors.append(err))
    producer.flush(30)
    assert len(errors) == 1 and errors[0] is not None
    assert errors[0].code() == KafkaError.MSG_SIZE_TOO_LARGE, errors[0]
    # kafka-python sees the broker's error too.
    import kafka
    kp = kafka.KafkaProducer(bootstrap_servers=broker.bootstrap, max_request_size=1_000_000, retries=0)
    with pytest.raises(kafka.errors.MessageSizeTooLargeError):
        kp.send("small", value=b"y" * 200_000).get(timeout=30)
    kp.close()
    # The broker keeps serving.
    ck_produce(broker.bootstrap, "small", [{"value": b"fits"}])
    assert [m.value() for m in ck_consume(broker.bootstrap, "small", [0], 1)] == [b"fits"]
    assert broker.alive()
