"""A disk that fills under acks=all producers: what the broker answers must match what its log holds.

librdkafka takes KAFKA_STORAGE_ERROR for "not persisted". An idempotent producer then renumbers the retry
under a bumped producer epoch, so a record answered that way but kept in the log (and on a follower, which
may lead next) is written twice: the fault run's duplicates in CI. A write that reached the log before the
disk filled, and waited for its fsync when a later write failed, has an unknown outcome instead
(REQUEST_TIMED_OUT, which clients retry with the same sequence). Here the producers do not retry, so every
record keeps the answer it got; after more space and a restart, no record answered "not persisted" is in the
log, and every acknowledged one is."""

import os
import subprocess
import time

import pytest
from clients import ck_consume, ck_producer, create_topic, high_watermarks
from confluent_kafka import KafkaError

TOPIC = "filling"
PARTITIONS = 2
PRODUCERS = 4
VALUE = 2048


@pytest.fixture
def small_disk(tmp_path):
    # The broker's data directory itself (its log file goes beside it, on the roomy disk).
    disk = tmp_path / "disk" / "data"
    disk.mkdir(parents=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (CI has it)")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(disk)], check=True)
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


@pytest.mark.sluice_only("Kafka stops a broker whose only log directory fails; Sluice takes the partition offline "
                         "and keeps serving")
def test_a_filling_disk_answers_not_persisted_only_for_records_it_does_not_keep(make_broker, small_disk):
    broker = make_broker(shards=1, extra_args=["--set", "log.segment.bytes=1048576"], name="disk/data")
    create_topic(broker.bootstrap, TOPIC, partitions=PARTITIONS)
    answers = {}

    def report(err, msg):
        answers[msg.value().decode()[:24]] = None if err is None else err.code()

    producers = [ck_producer(broker.bootstrap, acks="all", **{"enable.idempotence": False, "retries": 0,
                                                             "linger.ms": 2, "batch.num.messages": 20,
                                                             "message.timeout.ms": 20000})
                 for _ in range(PRODUCERS)]
    sent = 0
    deadline = time.time() + 60
    # Until some writes fail (the disk is full), and a little past that; bounded in count and time.
    while time.time() < deadline and sent < 20_000:
        for i, producer in enumerate(producers):
            key = f"p{i}-{sent:08d}".ljust(24, ".")
            try:
                producer.produce(TOPIC, value=(key + "x" * (VALUE - 24)).encode(), partition=sent % PARTITIONS,
                                 on_delivery=report)
            except BufferError:
                producer.poll(0.05)
            producer.poll(0)
        sent += 1
        if sent % 200 == 0 and sum(1 for code in answers.values() if code is not None) > 50:
            break
    for producer in producers:
        assert producer.flush(60) == 0
    codes = {}
    for code in answers.values():
        codes[code] = codes.get(code, 0) + 1
    print("answers by error code:", codes)
    assert any(code is not None for code in codes), f"the disk never filled: {codes}"

    broker.kill9()
    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
    broker.start()
    ends = high_watermarks(broker.bootstrap, TOPIC, PARTITIONS)
    kept = {m.value().decode()[:24] for m in ck_consume(broker.bootstrap, TOPIC, range(PARTITIONS), sum(ends))}
    assert len(kept) == sum(ends), f"read {len(kept)} distinct records of {sum(ends)}"
    acknowledged = {key for key, code in answers.items() if code is None}
    assert acknowledged <= kept, f"acknowledged records lost: {sorted(acknowledged - kept)[:5]}"
    not_persisted = {key for key, code in answers.items() if code == KafkaError.KAFKA_STORAGE_ERROR}
    assert not (not_persisted & kept), (f"{len(not_persisted & kept)} records answered KAFKA_STORAGE_ERROR are in "
                                        f"the log, e.g. {sorted(not_persisted & kept)[:5]}; answers {codes}")
