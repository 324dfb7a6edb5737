"""IncrementalAlterConfigs APPEND and SUBTRACT on list-typed keys, through confluent-kafka's AdminClient (the
librdkafka admin API that librdkafka's test 0011 uses; kafka-python has no IncrementalAlterConfigs). As Kafka
does, APPEND adds the items not already present, SUBTRACT removes, both start from the key's default when the
resource has no value yet, an emptied list stays an empty override, other keys get INVALID_CONFIG, and the
result is validated like a SET: `cleanup.policy` takes `delete` and `compact`, or neither (Kafka 4.1+)."""

import time

import pytest
from confluent_kafka import KafkaError
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, ConfigSource

from clients import create_topic
from conftest import ON_KAFKA

LEADER = "leader.replication.throttled.replicas"
TOPIC = ConfigResource.Type.TOPIC
BROKER = ConfigResource.Type.BROKER


def alter(client, kind, name, *entries):
    """One IncrementalAlterConfigs request; the error code, or None."""
    ops = [ConfigEntry(key, value, incremental_operation=op) for key, op, value in entries]
    res = ConfigResource(kind, name, incremental_configs=ops)
    try:
        client.incremental_alter_configs([res])[res].result(30)
    except Exception as exc:  # confluent wraps KafkaError in KafkaException
        return exc.args[0]
    if ON_KAFKA:
        # Kafka answers once its controller has committed the change and applies it to the broker's metadata
        # cache a moment later; DescribeConfigs reads that cache. Sluice answers after applying it.
        time.sleep(0.5)
    return None


def described(client, kind, name):
    res = ConfigResource(kind, name)
    return client.describe_configs([res])[res].result(30)


def test_append_and_subtract_on_topic_lists(broker):
    create_topic(broker.bootstrap, "lists")
    client = AdminClient({"bootstrap.servers": broker.bootstrap})
    append, subtract = AlterConfigOpType.APPEND, AlterConfigOpType.SUBTRACT

    assert alter(client, TOPIC, "lists", (LEADER, append, "0:0,1:0")) is None
    assert described(client, TOPIC, "lists")[LEADER].value == "0:0,1:0"
    # Items already present are not added twice.
    assert alter(client, TOPIC, "lists", (LEADER, append, "1:0,2:0")) is None
    assert described(client, TOPIC, "lists")[LEADER].value == "0:0,1:0,2:0"
    assert alter(client, TOPIC, "lists", (LEADER, subtract, "1:0,7:0")) is None
    assert described(client, TOPIC, "lists")[LEADER].value == "0:0,2:0"
    # Subtracting the rest leaves an empty override (Kafka), not the default.
    assert alter(client, TOPIC, "lists", (LEADER, subtract, "0:0,2:0")) is None
    entry = described(client, TOPIC, "lists")[LEADER]
    assert (entry.value or "") == "" and entry.source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    # The result is validated like a SET.
    error = alter(client, TOPIC, "lists", (LEADER, append, "zero:one"))
    assert error is not None and error.code() == KafkaError.INVALID_CONFIG

    # Keys that are not lists: INVALID_CONFIG, nothing changed.
    for op in (append, subtract):
        error = alter(client, TOPIC, "lists", ("retention.ms", op, "1000"))
        assert error is not None and error.code() == KafkaError.INVALID_CONFIG, error
    assert described(client, TOPIC, "lists")["retention.ms"].source == ConfigSource.DEFAULT_CONFIG.value

    # cleanup.policy: APPEND starts from the default `delete`, and adds `compact` (what librdkafka's test 0011
    # does); an unknown policy is refused like a SET of it, and removing the last leaves an empty policy, which
    # keeps every record (Kafka 4.1+).
    assert alter(client, TOPIC, "lists", ("cleanup.policy", append, "delete")) is None
    assert described(client, TOPIC, "lists")["cleanup.policy"].value == "delete"
    assert alter(client, TOPIC, "lists", ("cleanup.policy", append, "compact")) is None
    assert described(client, TOPIC, "lists")["cleanup.policy"].value == "delete,compact"
    error = alter(client, TOPIC, "lists", ("cleanup.policy", append, "shred"))
    assert error is not None and error.code() == KafkaError.INVALID_CONFIG, error
    assert alter(client, TOPIC, "lists", ("cleanup.policy", subtract, "delete")) is None
    assert described(client, TOPIC, "lists")["cleanup.policy"].value == "compact"
    assert alter(client, TOPIC, "lists", ("cleanup.policy", subtract, "compact")) is None
    assert described(client, TOPIC, "lists")["cleanup.policy"].value == ""


def test_append_and_subtract_on_broker_lists(broker):
    client = AdminClient({"bootstrap.servers": broker.bootstrap})
    append, subtract = AlterConfigOpType.APPEND, AlterConfigOpType.SUBTRACT
    # This broker ("0"); librdkafka refuses to name the cluster-wide default (""), which the unit tests cover.
    assert alter(client, BROKER, "0", ("log.cleanup.policy", append, "delete")) is None
    error = alter(client, BROKER, "0", ("log.cleanup.policy", append, "shred"))
    # A bad value of a broker key is INVALID_REQUEST (Kafka's broker-side check), not a topic's INVALID_CONFIG.
    assert error is not None and error.code() == KafkaError.INVALID_REQUEST
    assert alter(client, BROKER, "0", ("log.cleanup.policy", append, "compact")) is None
    assert described(client, BROKER, "0")["log.cleanup.policy"].value == "delete,compact"
    assert alter(client, BROKER, "0", ("log.cleanup.policy", subtract, "delete")) is None
    assert described(client, BROKER, "0")["log.cleanup.policy"].value == "compact"
    # The throttled-replicas lists name one topic's replicas: a topic config, refused on a broker.
    assert alter(client, BROKER, "0", ("follower.replication.throttled.replicas", append, "0:0")) is not None
    error = alter(client, BROKER, "0", ("log.retention.ms", append, "1"))
    assert error is not None and error.code() == KafkaError.INVALID_CONFIG
