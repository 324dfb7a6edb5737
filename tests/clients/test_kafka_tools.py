"""Apache Kafka's own command-line tools (kafka-tools 4.4.0 from Maven Central, through tools/kafka.sh) against
Sluice, as an operator would run them: each call is one JVM, and each test checks what the tool printed."""

import json
import re

import pytest

from conftest import ON_KAFKA
from jvm import kafka_tool

# One broker shape only, --shards 2 (requests cross shards): every tool run is a JVM start, about 1 s of CPU,
# and the tools use the Java client that test_java_client.py already runs against both shapes.
pytestmark = pytest.mark.parametrize("broker", [2], indirect=True, ids=["shards2"])


def lines(result):
    return result.stdout.strip().splitlines()


def test_kafka_topics_and_kafka_configs(broker):
    b = ("--bootstrap-server", broker.bootstrap)
    out = kafka_tool("kafka-topics", *b, "--create", "--topic", "ops", "--partitions", "3",
                     "--config", "retention.ms=3600000").stdout
    assert "Created topic ops." in out
    again = kafka_tool("kafka-topics", *b, "--create", "--topic", "ops", "--partitions", "3", check=False)
    assert again.returncode == 1 and "TopicExistsException" in again.stderr, again.stderr
    kafka_tool("kafka-topics", *b, "--alter", "--topic", "ops", "--partitions", "5")
    assert "ops" in lines(kafka_tool("kafka-topics", *b, "--list"))
    described = lines(kafka_tool("kafka-topics", *b, "--describe", "--topic", "ops"))
    # Configs lists what is not a default: the Kafka peer's stock server.properties adds segment.bytes there.
    assert re.search(r"Topic: ops\tTopicId: \S+\tPartitionCount: 5\tReplicationFactor: 1\tConfigs: (\S+,)?retention.ms=3600000",
                     described[0]), described
    assert [re.search(r"Partition: (\d+)\tLeader: 0\tReplicas: 0\tIsr: 0", line).group(1)
            for line in described[1:]] == ["0", "1", "2", "3", "4"]

    kafka_tool("kafka-configs", *b, "--alter", "--entity-type", "topics", "--entity-name", "ops",
               "--add-config", "max.message.bytes=200000,retention.ms=7200000")
    dynamic = kafka_tool("kafka-configs", *b, "--describe", "--entity-type", "topics", "--entity-name", "ops").stdout
    assert "max.message.bytes=200000 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:max.message.bytes=200000" in dynamic
    assert "retention.ms=7200000 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:retention.ms=7200000" in dynamic
    kafka_tool("kafka-configs", *b, "--alter", "--entity-type", "topics", "--entity-name", "ops",
               "--delete-config", "retention.ms")
    every = kafka_tool("kafka-configs", *b, "--describe", "--entity-type", "topics", "--entity-name", "ops",
                       "--all").stdout
    # The Kafka peer's stock server.properties sets log.retention.hours, and Kafka then lists no synonym here.
    synonyms = "{}" if ON_KAFKA else "{DEFAULT_CONFIG:log.retention.ms=604800000}"
    assert f"retention.ms=604800000 sensitive=false synonyms={synonyms}" in every, every
    assert "max.message.bytes=200000 " in every
    broker_configs = kafka_tool("kafka-configs", *b, "--describe", "--entity-type", "brokers", "--entity-name", "0",
                                "--all").stdout
    assert f"advertised.listeners=PLAINTEXT://{broker.bootstrap} " in broker_configs
    assert re.search(r"num.partitions=1 sensitive=false synonyms=\{(STATIC_BROKER_CONFIG:num.partitions=1, )?"
                     r"DEFAULT_CONFIG:num.partitions=1\}", broker_configs), broker_configs
    kafka_tool("kafka-topics", *b, "--delete", "--topic", "ops")
    assert "ops" not in lines(kafka_tool("kafka-topics", *b, "--list"))


def test_console_tools_consumer_groups_offsets_and_delete_records(broker, tmp_path):
    b = ("--bootstrap-server", broker.bootstrap)
    kafka_tool("kafka-topics", *b, "--create", "--topic", "con", "--partitions", "2")
    sent = "".join(f"k{i % 10}:value-{i}\n" for i in range(200))
    kafka_tool("kafka-console-producer", *b, "--topic", "con", "--reader-property", "parse.key=true",
               "--reader-property", "key.separator=:", input=sent)
    # The KIP-848 protocol here (the classic one is covered by the clients' tests): no initial rebalance delay.
    consumed = kafka_tool("kafka-console-consumer", *b, "--topic", "con", "--group", "ops-group", "--from-beginning",
                          "--max-messages", "200", "--command-property", "group.protocol=consumer",
                          "--formatter-property", "print.key=true", "--formatter-property", "print.partition=true",
                          "--formatter-property", "print.offset=true")
    assert "Processed a total of 200 messages" in consumed.stderr
    rows = [re.fullmatch(r"Partition:(\d)\tOffset:(\d+)\t(k\d)\t(value-\d+)", line).groups() for line in lines(consumed)]
    assert sorted(int(v[6:]) for _, _, _, v in rows) == list(range(200))
    per_partition = {}
    for partition, offset, key, value in rows:
        assert key == f"k{int(value[6:]) % 10}"
        per_partition.setdefault(partition, []).append((int(offset), int(value[6:])))
    ends = {}
    for partition, seen in per_partition.items():
        # Offsets dense from 0 in each partition, values in the order the producer read them.
        assert [o for o, _ in seen] == list(range(len(seen)))
        assert [v for _, v in seen] == sorted(v for _, v in seen)
        ends[int(partition)] = len(seen)
    assert sorted(ends) == [0, 1]

    def group_rows():
        out = kafka_tool("kafka-consumer-groups", *b, "--describe", "--group", "ops-group").stdout
        found = re.findall(r"^ops-group\s+con\s+(\d)\s+(\d+)\s+(\d+)\s+(\d+)\s", out, re.M)
        return {int(p): (int(current), int(end), int(lag)) for p, current, end, lag in found}

    assert group_rows() == {p: (end, end, 0) for p, end in ends.items()}
    assert "ops-group" in lines(kafka_tool("kafka-consumer-groups", *b, "--list"))
    typed = kafka_tool("kafka-consumer-groups", *b, "--list", "--type", "consumer").stdout
    assert re.search(r"^ops-group\s+Consumer\s*$", typed, re.M), typed
    reset = kafka_tool("kafka-consumer-groups", *b, "--reset-offsets", "--group", "ops-group", "--topic", "con",
                       "--to-offset", "7", "--execute").stdout
    assert sorted(re.findall(r"^ops-group\s+con\s+(\d)\s+(\d+)\s*$", reset, re.M)) == [("0", "7"), ("1", "7")]
    assert group_rows() == {p: (7, end, end - 7) for p, end in ends.items()}

    def offsets(*extra):
        out = lines(kafka_tool("kafka-get-offsets", *b, "--topic", "con", *extra))
        return {int(p): int(o) for p, o in (line.split(":")[1:] for line in out)}

    assert offsets() == ends
    assert offsets("--time", "-2") == {0: 0, 1: 0}
    # -3 (ListOffsets v7, KIP-734): the last record of each partition, as the console producer stamps
    # increasing times; equal times answer the first record with the largest one.
    newest = offsets("--time", "-3")
    assert all(0 <= newest[p] < ends[p] for p in ends), newest
    spec = tmp_path / "delete.json"
    spec.write_text(json.dumps({"version": 1, "partitions": [{"topic": "con", "partition": 1, "offset": 11}]}))
    deleted = kafka_tool("kafka-delete-records", *b, "--offset-json-file", str(spec)).stdout
    assert "partition: con-1\tlow_watermark: 11" in deleted, deleted
    assert offsets("--time", "-2") == {0: 0, 1: 11}
    # The group's offset 7 on partition 1 is now below the log start; the reset moves it to the earliest.
    kafka_tool("kafka-consumer-groups", *b, "--reset-offsets", "--group", "ops-group", "--topic", "con",
               "--to-earliest", "--execute")
    assert group_rows() == {0: (0, ends[0], ends[0]), 1: (11, ends[1], ends[1] - 11)}


def test_producer_and_consumer_perf_test(broker):
    kafka_tool("kafka-topics", "--bootstrap-server", broker.bootstrap, "--create", "--topic", "perf",
               "--partitions", "2")
    produced = kafka_tool("kafka-producer-perf-test", "--topic", "perf", "--num-records", "50000", "--record-size",
                          "100", "--throughput", "-1", "--command-property", f"bootstrap.servers={broker.bootstrap}",
                          "acks=all", "linger.ms=5").stdout
    assert re.search(r"^50000 records sent, [\d.]+ records/sec", produced, re.M), produced
    consumed = kafka_tool("kafka-consumer-perf-test", "--bootstrap-server", broker.bootstrap, "--topic", "perf",
                          "--num-records", "50000", "--timeout", "30000",
                          "--command-property", "group.protocol=consumer")
    header, values = [line.split(", ") for line in lines(consumed)[-2:]]
    row = dict(zip(header, values))
    assert row["data.consumed.in.nMsg"] == "50000", consumed.stdout
    assert float(row["data.consumed.in.MB"]) == round(50000 * 100 / 1024 / 1024, 4)
    ends = lines(kafka_tool("kafka-get-offsets", "--bootstrap-server", broker.bootstrap, "--topic", "perf"))
    assert sum(int(line.split(":")[2]) for line in ends) == 50000
