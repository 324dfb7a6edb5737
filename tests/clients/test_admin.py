"""Every admin operation through two real admin clients: confluent-kafka's AdminClient and kafka-python's
KafkaAdminClient."""

import time

import kafka
import kafka.admin
import pytest
from confluent_kafka import Consumer, KafkaError, TopicPartition
from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, ConfigSource,
                                   NewPartitions, NewTopic)

from clients import ck_consume, ck_produce, wait_for_leaders
from conftest import ON_KAFKA


def admin(broker):
    return AdminClient({"bootstrap.servers": broker.bootstrap})


def error_code(future):
    try:
        future.result(30)
    except Exception as exc:  # confluent wraps KafkaError in KafkaException
        return exc.args[0].code()
    return None


def settle():
    """Apache Kafka answers an admin change once its controller has committed it and applies it to the broker's
    metadata cache a moment later, which Metadata and DescribeConfigs read; Sluice answers after applying it."""
    if ON_KAFKA:
        time.sleep(0.5)


def topics(client):
    settle()
    return client.list_topics(timeout=10).topics


def topic_config(client, name):
    settle()
    res = ConfigResource(ConfigResource.Type.TOPIC, name)
    return client.describe_configs([res])[res].result(30)


# The legacy AlterConfigs API is tested on purpose: older tools still use it.
@pytest.mark.filterwarnings("ignore:alter_configs has been deprecated")
def test_confluent_admin_operations(broker):
    client = admin(broker)
    # validate_only creates nothing.
    fs = client.create_topics([NewTopic("a1", 3, 1, config={"retention.ms": "3600000"})], validate_only=True)
    fs["a1"].result(30)
    assert "a1" not in topics(client)
    fs = client.create_topics([NewTopic("a1", 3, 1, config={"retention.ms": "3600000"})])
    fs["a1"].result(30)
    assert len(topics(client)["a1"].partitions) == 3
    # Creating it again: TOPIC_ALREADY_EXISTS. Bad configs and factors are refused.
    assert error_code(client.create_topics([NewTopic("a1", 1, 1)])["a1"]) == KafkaError.TOPIC_ALREADY_EXISTS
    assert error_code(client.create_topics([NewTopic("a2", 1, 1, config={"retention.ms": "soon"})])["a2"]) == KafkaError.INVALID_CONFIG
    assert error_code(client.create_topics([NewTopic("a3", 1, 3)])["a3"]) == KafkaError.INVALID_REPLICATION_FACTOR
    assert error_code(client.create_topics([NewTopic("bad/name", 1, 1)])["bad/name"]) == KafkaError.TOPIC_EXCEPTION

    # DescribeConfigs: override with its source, defaults with theirs.
    configs = topic_config(client, "a1")
    assert configs["retention.ms"].value == "3600000"
    assert configs["retention.ms"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    assert configs["segment.bytes"].value == "1073741824"
    # Kafka's stock server.properties sets log.segment.bytes, so there it is the broker's static config.
    assert configs["segment.bytes"].source in (ConfigSource.DEFAULT_CONFIG.value, ConfigSource.STATIC_BROKER_CONFIG.value)
    if not ON_KAFKA:  # Sluice's own topic config
        assert configs["flush.policy"].value == "always"
    broker_res = ConfigResource(ConfigResource.Type.BROKER, "0")
    broker_configs = client.describe_configs([broker_res])[broker_res].result(30)
    assert broker_configs["num.partitions"].value == "1"
    assert broker_configs["message.max.bytes"].value == "1048588"

    # IncrementalAlterConfigs, applied live.
    res = ConfigResource(ConfigResource.Type.TOPIC, "a1", incremental_configs=[
        ConfigEntry("retention.ms", "7200000", incremental_operation=AlterConfigOpType.SET),
        ConfigEntry("max.message.bytes", "50000", incremental_operation=AlterConfigOpType.SET)])
    client.incremental_alter_configs([res])[res].result(30)
    configs = topic_config(client, "a1")
    assert configs["retention.ms"].value == "7200000"
    assert configs["max.message.bytes"].value == "50000"
    # Live: a 60 KB record is now too large for a1.
    from clients import ck_producer
    p = ck_producer(broker.bootstrap, **{"retries": 0})
    errs = []
    p.produce("a1", value=b"x" * 60_000, partition=0, on_delivery=lambda e, m: errs.append(e))
    p.flush(30)
    assert errs[0] is not None and errs[0].code() == KafkaError.MSG_SIZE_TOO_LARGE
    res = ConfigResource(ConfigResource.Type.TOPIC, "a1", incremental_configs=[
        ConfigEntry("max.message.bytes", None, incremental_operation=AlterConfigOpType.DELETE)])
    client.incremental_alter_configs([res])[res].result(30)
    assert topic_config(client, "a1")["max.message.bytes"].source == ConfigSource.DEFAULT_CONFIG.value

    # Legacy AlterConfigs replaces the override set.
    res = ConfigResource(ConfigResource.Type.TOPIC, "a1", set_config={"segment.ms": "600000"})
    client.alter_configs([res])[res].result(30)
    configs = topic_config(client, "a1")
    assert configs["segment.ms"].value == "600000"
    assert configs["retention.ms"].source == ConfigSource.DEFAULT_CONFIG.value

    # CreatePartitions.
    client.create_partitions([NewPartitions("a1", 5)])["a1"].result(30)
    assert len(topics(client)["a1"].partitions) == 5
    assert error_code(client.create_partitions([NewPartitions("a1", 2)])["a1"]) == KafkaError.INVALID_PARTITIONS
    ck_produce(broker.bootstrap, "a1", [{"value": b"p4", "partition": 4}])

    # DeleteRecords.
    ck_produce(broker.bootstrap, "a1", [{"value": f"r{i}".encode(), "partition": 0} for i in range(10)])
    result = client.delete_records([TopicPartition("a1", 0, 6)])
    low = list(result.values())[0].result(30)
    assert low.low_watermark == 6
    got = ck_consume(broker.bootstrap, "a1", [0], 4)
    assert [m.offset() for m in got] == [6, 7, 8, 9]

    # DescribeCluster.
    cluster = client.describe_cluster().result(30)
    assert cluster.controller.id == 0
    assert [n.id for n in cluster.nodes] == [0]
    assert cluster.cluster_id

    # DeleteTopics.
    client.delete_topics(["a1"])["a1"].result(30)
    # Kafka removes a deleted topic from metadata a moment after answering; Sluice by the time it answers.
    deadline = time.time() + 30
    while "a1" in topics(client) and time.time() < deadline:
        time.sleep(0.2)
    assert "a1" not in topics(client)
    assert error_code(client.delete_topics(["a1"])["a1"]) == KafkaError.UNKNOWN_TOPIC_OR_PART
    # A topic recreated under the same name starts empty.
    client.create_topics([NewTopic("a1", 1, 1)])["a1"].result(30)
    wait_for_leaders(client, "a1", 1)
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "unused"})
    assert consumer.get_watermark_offsets(TopicPartition("a1", 0), timeout=10) == (0, 0)
    consumer.close()


def test_kafka_python_admin_operations(broker):
    client = kafka.admin.KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    client.create_topics([kafka.admin.NewTopic("k1", 2, 1, topic_configs={"retention.bytes": "1000000"})])
    assert "k1" in client.list_topics()
    with pytest.raises(kafka.errors.TopicAlreadyExistsError):
        client.create_topics([kafka.admin.NewTopic("k1", 2, 1)])
    client.create_partitions({"k1": kafka.admin.NewPartitions(4)})
    # New partitions reach a broker's metadata a moment after CreatePartitions answers (on Kafka).
    deadline = time.time() + 30
    while len(client.describe_topics(["k1"])[0]["partitions"]) < 4 and time.time() < deadline:
        time.sleep(0.2)
    described = client.describe_topics(["k1"])
    assert len(described[0]["partitions"]) == 4
    resources = client.describe_configs([kafka.admin.ConfigResource(kafka.admin.ConfigResourceType.TOPIC, "k1")])
    entries = {c[0]: c[1] for c in resources[0].resources[0][4]}
    assert entries["retention.bytes"] == "1000000"
    client.alter_configs([kafka.admin.ConfigResource(kafka.admin.ConfigResourceType.TOPIC, "k1",
                                                     configs={"retention.bytes": "2000000"})])
    # Kafka answers AlterConfigs once its controller committed the change, and its broker's DescribeConfigs reads
    # the metadata cache that applies it a moment later: read until it shows (Sluice shows it at once).
    deadline = time.time() + 10
    while True:
        resources = client.describe_configs([kafka.admin.ConfigResource(kafka.admin.ConfigResourceType.TOPIC, "k1")])
        entries = {c[0]: c[1] for c in resources[0].resources[0][4]}
        if entries["retention.bytes"] == "2000000" or time.time() > deadline:
            break
        time.sleep(0.1)
    assert entries["retention.bytes"] == "2000000"
    cluster = client.describe_cluster()
    assert cluster["controller_id"] == 0
    ck_produce(broker.bootstrap, "k1", [{"value": b"x", "partition": 1} for _ in range(5)])
    lows = client.delete_records({kafka.TopicPartition("k1", 1): 3})
    assert lows[kafka.TopicPartition("k1", 1)]["low_watermark"] == 3
    client.delete_topics(["k1"])
    assert "k1" not in client.list_topics()
    client.close()
