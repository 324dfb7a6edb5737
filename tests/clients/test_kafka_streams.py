"""Kafka Streams (org.apache.kafka:kafka-streams 4.4.0), at-least-once: tests/java's sluice.WordCount counts the
words of an input topic in a RocksDB store, whose changelog topic is compacted, through a repartition topic,
into an output topic. The test writes the lines, runs the application, and reads the output and the changelog
itself. A second run, in a new JVM with the same application.id and an empty state directory, restores the
store from the changelog and counts more lines on top of it."""

import random
import struct
import time
from collections import Counter

import confluent_kafka
from confluent_kafka import Consumer, TopicPartition

from clients import ck_produce, create_topic
from conftest import assert_healthy_log
from jvm import java_main

APP = "wc"
CHANGELOG = f"{APP}-counts-changelog"
REPARTITION = f"{APP}-counts-repartition"
VOCABULARY = ["sluice", "kafka", "stream", "log", "segment", "offset", "broker", "shard", "raft", "compact"]


def lines(rng, count, vocabulary):
    """COUNT lines of 1-12 words, skewed towards the vocabulary's first words, some capitalized, each ending
    with a full stop: the application lower-cases and splits on \\W+."""
    def word():
        w = rng.choice(vocabulary[:rng.randint(1, len(vocabulary))])
        return w.capitalize() if rng.random() < 0.2 else w
    return [" ".join(word() for _ in range(rng.randint(1, 12))) + "." for _ in range(count)]


def read_to_end(bootstrap, topic, timeout=30):
    """Every record of TOPIC up to its current end, per partition in offset order, as (key, value) pairs."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused-no-commits",
                         "enable.auto.commit": False})
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions}
    consumer.assign([TopicPartition(topic, p, confluent_kafka.OFFSET_BEGINNING) for p in partitions])
    out = {p: [] for p in partitions}
    positions = {p: 0 for p in partitions}
    deadline = time.time() + timeout
    while any(positions[p] < ends[p] for p in partitions) and time.time() < deadline:
        for msg in consumer.consume(num_messages=1000, timeout=0.5):
            assert not msg.error(), msg.error()
            out[msg.partition()].append((msg.key().decode(), msg.value()))
            positions[msg.partition()] = msg.offset() + 1
    consumer.close()
    assert all(positions[p] >= ends[p] for p in partitions), f"{topic}: read {positions}, ends {ends}"
    return out


def wait_for_compaction(bootstrap, at_most, timeout=30):
    """Waits until the changelog holds at most AT_MOST records (one per word, plus the active segments'), and
    returns how many it holds."""
    deadline = time.time() + timeout
    while True:
        held = sum(len(records) for records in read_to_end(bootstrap, CHANGELOG).values())
        if held <= at_most or time.time() > deadline:
            assert held <= at_most, f"the changelog still holds {held} records after {timeout} s"
            return held
        time.sleep(0.3)


def counts_by_word(records_by_partition):
    """word -> the counts written for it, in order; each word lives in one partition."""
    seen = {}
    for records in records_by_partition.values():
        for word, value in records:
            seen.setdefault(word, []).append(struct.unpack(">q", value)[0])
    return seen


def word_count(text):
    return Counter(w for line in text for w in line.lower().replace(".", " ").split())


def run_app(broker, state_dir):
    return java_main("sluice.WordCount", broker.bootstrap, APP, "lines", "counts", str(state_dir),
                     timeout=150, jvm_opts="-XX:+UseSerialGC")


def test_word_count_with_state_restored_from_the_compacted_changelog(make_broker, tmp_path):
    broker = make_broker(shards=2, extra_args=["--set", "log.cleaner.backoff.ms=200"])
    create_topic(broker.bootstrap, "lines", partitions=2)
    create_topic(broker.bootstrap, "counts", partitions=2)
    rng = random.Random(17)
    first = lines(rng, 300, VOCABULARY)
    ck_produce(broker.bootstrap, "lines", [{"key": str(i).encode(), "value": line.encode()}
                                           for i, line in enumerate(first)])

    r1 = run_app(broker, tmp_path / "state-1")
    assert r1["restored"] == 0
    assert r1["internal_topics"] == {CHANGELOG: {"cleanup.policy": "compact"},
                                     REPARTITION: {"cleanup.policy": "delete"}}
    expected1 = word_count(first)
    out1 = counts_by_word(read_to_end(broker.bootstrap, "counts"))
    # With the record cache off, each occurrence of a word writes its next count: 1, 2, ... n.
    assert out1 == {w: list(range(1, n + 1)) for w, n in expected1.items()}

    # The changelog holds every update, less those the broker compacted already in sealed segments. Sluice
    # (as Kafka) rolls a segment older than segment.ms (500 ms here) at the next append, so append each
    # partition's last record again, unchanged (the store restores the same value from it), and wait until
    # the cleaner has left one record per word in the sealed segments.
    changelog = read_to_end(broker.bootstrap, CHANGELOG)
    assert len(expected1) <= sum(len(records) for records in changelog.values()) <= sum(expected1.values())
    time.sleep(0.6)
    ck_produce(broker.bootstrap, CHANGELOG, [
        {"key": records[-1][0].encode(), "value": records[-1][1], "partition": p}
        for p, records in changelog.items() if records])
    compacted = wait_for_compaction(broker.bootstrap, len(expected1) + len(changelog))

    # More lines, two new words among them; a new JVM with an empty state directory must restore every
    # word's count from the changelog and continue from it.
    second = lines(rng, 200, VOCABULARY + ["tansu", "redpanda"])
    ck_produce(broker.bootstrap, "lines", [{"key": str(i).encode(), "value": line.encode()}
                                           for i, line in enumerate(second)])
    r2 = run_app(broker, tmp_path / "state-2")
    # Every word's latest count, and no more than the compacted changelog holds.
    assert len(expected1) <= r2["restored"] <= compacted, r2
    expected2 = word_count(first + second)
    out2 = counts_by_word(read_to_end(broker.bootstrap, "counts"))
    assert {w: values[-1] for w, values in out2.items()} == dict(expected2)
    assert out2 == {w: list(range(1, n + 1)) for w, n in expected2.items()}, "the second run counts on"
    # The changelog's latest value per word is the final count (values are 8-byte longs, as in the output).
    latest = {w: values[-1] for w, values in counts_by_word(read_to_end(broker.bootstrap, CHANGELOG)).items()}
    assert latest == dict(expected2)
    assert_healthy_log(broker)
