"""A topic's `compression.type` other than `producer`: the broker stores every client batch in that codec,
recompressing the others (as Kafka does), and both clients read back exactly what was produced. A batch whose
records decompress past the broker's limit (a compression bomb) gets CORRUPT_MESSAGE, is logged, and leaves
the partition untouched."""

import struct
import time

import pytest
from confluent_kafka import KafkaError
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource
from kafka.record.default_records import DefaultRecordBatchBuilder

from clients import ck_consume, ck_produce, create_topic, kp_consume, kp_produce
from test_bad_input import frame, header, send_raw

CODEC_IDS = {"uncompressed": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}


def stored_codecs(broker, topic, partition=0):
    """The codec of every batch in the partition's first segment, read from the file."""
    path = broker.data_dir / f"{topic}-{partition}" / "00000000000000000000.log"
    data = path.read_bytes()
    codecs, position = [], 0
    while position + 61 <= len(data):
        batch_length = struct.unpack_from(">i", data, position + 8)[0]
        if batch_length <= 0:  # pre-written zeros past the last batch
            break
        codecs.append(struct.unpack_from(">h", data, position + 21)[0] & 0x07)
        position += 12 + batch_length
    return codecs


def records(tag, count=200):
    return [{"key": f"{tag}-k{i}".encode(), "value": (f"{tag} value {i} " * 30).encode(),
             "headers": [("h", f"{tag}{i}".encode())], "timestamp": 1_700_000_000_000 + i} for i in range(count)]


def test_batches_are_stored_in_the_topic_codec(broker):
    create_topic(broker.bootstrap, "zstd-topic", config={"compression.type": "zstd"})
    sent = records("lz4") + records("gzip") + records("zstd") + records("none")
    ck_produce(broker.bootstrap, "zstd-topic", sent[:200], **{"compression.type": "lz4", "enable.idempotence": True})
    kp_produce(broker.bootstrap, "zstd-topic", sent[200:400], compression_type="gzip")
    ck_produce(broker.bootstrap, "zstd-topic", sent[400:600], **{"compression.type": "zstd"})
    kp_produce(broker.bootstrap, "zstd-topic", sent[600:], compression_type=None)
    codecs = stored_codecs(broker, "zstd-topic")
    assert codecs and set(codecs) == {CODEC_IDS["zstd"]}, codecs
    for got in (ck_consume(broker.bootstrap, "zstd-topic", [0], len(sent)),
                kp_consume(broker.bootstrap, "zstd-topic", [0], len(sent))):
        assert len(got) == len(sent)
        for i, (message, record) in enumerate(zip(got, sent)):
            offset, key, value, headers, timestamp = (
                (message.offset(), message.key(), message.value(), message.headers(), message.timestamp()[1])
                if hasattr(message, "error") else
                (message.offset, message.key, message.value, message.headers, message.timestamp))
            assert (offset, key, value) == (i, record["key"], record["value"])
            assert [(k, bytes(v)) for k, v in headers] == record["headers"]
            assert timestamp == record["timestamp"]


@pytest.mark.parametrize("topic_codec,producer_codec", [("uncompressed", "snappy"), ("snappy", "zstd"),
                                                        ("lz4", "gzip"), ("gzip", "lz4")])
def test_every_codec_is_a_topic_codec(broker, topic_codec, producer_codec):
    create_topic(broker.bootstrap, "codec", config={"compression.type": topic_codec})
    sent = records(producer_codec)
    ck_produce(broker.bootstrap, "codec", sent, **{"compression.type": producer_codec})
    assert set(stored_codecs(broker, "codec")) == {CODEC_IDS[topic_codec]}
    got = kp_consume(broker.bootstrap, "codec", [0], len(sent))
    assert [m.value for m in got] == [r["value"] for r in sent]


def test_compression_type_changes_live(broker):
    create_topic(broker.bootstrap, "live")
    ck_produce(broker.bootstrap, "live", records("before", 20), **{"compression.type": "lz4"})
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    res = ConfigResource(ConfigResource.Type.TOPIC, "live", incremental_configs=[
        ConfigEntry("compression.type", "gzip", incremental_operation=AlterConfigOpType.SET)])
    admin.incremental_alter_configs([res])[res].result(30)
    ck_produce(broker.bootstrap, "live", records("after", 20), **{"compression.type": "lz4"})
    codecs = stored_codecs(broker, "live")
    assert codecs[0] == CODEC_IDS["lz4"] and codecs[-1] == CODEC_IDS["gzip"], codecs
    assert len(ck_consume(broker.bootstrap, "live", [0], 40)) == 40
    # An unknown codec is refused.
    res = ConfigResource(ConfigResource.Type.TOPIC, "live", incremental_configs=[
        ConfigEntry("compression.type", "brotli", incremental_operation=AlterConfigOpType.SET)])
    with pytest.raises(Exception) as refused:
        admin.incremental_alter_configs([res])[res].result(30)
    assert refused.value.args[0].code() == KafkaError.INVALID_CONFIG


def produce_v3(topic, partition, batch, correlation_id=11):
    body = header(0, 3, correlation_id) + struct.pack(">hhi", -1, -1, 30_000)
    name = topic.encode()
    body += struct.pack(">i", 1) + struct.pack(">h", len(name)) + name
    body += struct.pack(">i", 1) + struct.pack(">ii", partition, len(batch)) + batch
    return frame(body)


@pytest.mark.sluice_only("Sluice bounds a batch's decompressed size and refuses a bomb with CORRUPT_MESSAGE, "
                         "deliberately stricter: Apache Kafka 4.4 accepts it (error 0)")
def test_a_compression_bomb_gets_corrupt_message(broker):
    create_topic(broker.bootstrap, "bombed", config={"compression.type": "zstd"})
    # One record of 65 MiB of zeros: 66 KB gzipped, past the broker's 64 MiB decompression limit.
    builder = DefaultRecordBatchBuilder(magic=2, compression_type=1, is_transactional=False, producer_id=-1,
                                        producer_epoch=-1, base_sequence=-1, batch_size=2**31 - 1)
    builder.append(0, timestamp=int(time.time() * 1000), key=None, value=b"\0" * (65 << 20), headers=[])
    bomb = bytes(builder.build())
    assert len(bomb) < 100_000
    reply = send_raw(broker, produce_v3("bombed", 0, bomb), timeout=30)
    # size, correlation id, [topic: name, [partition, error, ...]]
    size, correlation_id, topics, name_length = struct.unpack_from(">iiih", reply)
    partitions, partition, error = struct.unpack_from(">iih", reply, 14 + name_length)
    assert (correlation_id, topics, partitions, partition) == (11, 1, 1, 0)
    assert error == 2, f"error code {error}, expected CORRUPT_MESSAGE"
    assert "compression bomb" in broker.log()
    # Nothing was written, and the partition takes honest batches.
    ck_produce(broker.bootstrap, "bombed", records("after", 5), **{"compression.type": "gzip"})
    got = ck_consume(broker.bootstrap, "bombed", [0], 5)
    assert [m.offset() for m in got] == list(range(5))


def test_the_broker_default_applies_to_topics_without_their_own(broker):
    create_topic(broker.bootstrap, "inherits")
    create_topic(broker.bootstrap, "own", config={"compression.type": "producer"})
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    res = ConfigResource(ConfigResource.Type.BROKER, "0", incremental_configs=[
        ConfigEntry("compression.type", "snappy", incremental_operation=AlterConfigOpType.SET)])
    admin.incremental_alter_configs([res])[res].result(30)
    for topic in ("inherits", "own"):
        ck_produce(broker.bootstrap, topic, records(topic, 20), **{"compression.type": "zstd"})
    assert set(stored_codecs(broker, "inherits")) == {CODEC_IDS["snappy"]}
    assert set(stored_codecs(broker, "own")) == {CODEC_IDS["zstd"]}
