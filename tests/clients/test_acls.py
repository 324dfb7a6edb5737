"""ACLs and the authorizer, through confluent-kafka's AdminClient, Producer and Consumer (librdkafka).

Without `authorizer.class.name` the ACL APIs answer SECURITY_DISABLED, as Kafka's do. With it, CreateAcls,
DescribeAcls and DeleteAcls keep ACLs in the metadata log (they survive a restart), and every request is checked
against them with Kafka's rules. Sluice's listener is PLAINTEXT, so every client is `User:ANONYMOUS`; these
tests run with `allow.everyone.if.no.acl.found=true` and use DENY entries, and ALLOW entries for other users
that take a resource away from ANONYMOUS."""

import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    NewTopic,
    ResourcePatternType,
    ResourceType,
)

from clients import produce_error
from jvm import kafka_tool
from test_group_configs import heartbeat_once

pytestmark = pytest.mark.sluice_only("starts brokers with and without an authorizer; the Kafka peer runs without one")

AUTHORIZER = [
    "--set", "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
    "--set", "allow.everyone.if.no.acl.found=true",
]
ANONYMOUS = "User:ANONYMOUS"
EVERY_ACL = AclBindingFilter(
    ResourceType.ANY, None, ResourcePatternType.ANY, None, None, AclOperation.ANY, AclPermissionType.ANY
)


def admin(broker):
    return AdminClient({"bootstrap.servers": broker.bootstrap})


def described(client, acl_filter=EVERY_ACL):
    return sorted(client.describe_acls(acl_filter, request_timeout=30).result(30), key=str)


def test_acl_apis_answer_security_disabled_without_an_authorizer(broker):
    binding = AclBinding(ResourceType.TOPIC, "t", ResourcePatternType.LITERAL, ANONYMOUS, "*",
                         AclOperation.READ, AclPermissionType.ALLOW)
    client = admin(broker)
    futures = client.create_acls([binding], request_timeout=30)
    with pytest.raises(KafkaException) as refused:
        futures[binding].result(30)
    assert refused.value.args[0].code() == KafkaError.SECURITY_DISABLED
    # librdkafka does not read DescribeAcls' top-level error; kafka-python does.
    from kafka.admin import (ACLFilter, ACLOperation, ACLPermissionType, ACLResourcePatternType,
                             KafkaAdminClient, ResourcePatternFilter)
    from kafka.admin import ResourceType as KpResourceType
    from kafka.errors import SecurityDisabledError
    kp = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        every = ACLFilter(principal=None, host=None, operation=ACLOperation.ANY,
                          permission_type=ACLPermissionType.ANY,
                          resource_pattern=ResourcePatternFilter(KpResourceType.ANY, None, ACLResourcePatternType.ANY))
        with pytest.raises(SecurityDisabledError):
            kp.describe_acls(every)
    finally:
        kp.close()


def test_acls_are_kept_enforced_and_removed(make_broker):
    broker = make_broker(shards=2, extra_args=AUTHORIZER)
    client = admin(broker)
    suffix = uuid.uuid4().hex[:8]
    locked, free, orders = f"locked-{suffix}", f"free-{suffix}", f"orders-{suffix}"
    for future in client.create_topics([NewTopic(t, 2, 1) for t in (locked, free, orders)]).values():
        future.result(30)
    assert produce_error(broker.bootstrap, locked) is None

    deny_write = AclBinding(ResourceType.TOPIC, locked, ResourcePatternType.LITERAL, ANONYMOUS, "*",
                            AclOperation.WRITE, AclPermissionType.DENY)
    # An ALLOW for another user on the prefix: the topics under it are no longer "without ACLs" for anyone.
    alice_orders = AclBinding(ResourceType.TOPIC, "orders-", ResourcePatternType.PREFIXED, "User:alice", "*",
                              AclOperation.READ, AclPermissionType.ALLOW)
    deny_group = AclBinding(ResourceType.GROUP, f"blocked-{suffix}", ResourcePatternType.LITERAL, ANONYMOUS, "*",
                            AclOperation.ALL, AclPermissionType.DENY)
    bad_principal = AclBinding(ResourceType.TOPIC, free, ResourcePatternType.LITERAL, "alice", "*",
                               AclOperation.READ, AclPermissionType.ALLOW)
    results = client.create_acls([deny_write, alice_orders, deny_group, bad_principal], request_timeout=30)
    for binding in (deny_write, alice_orders, deny_group):
        results[binding].result(30)
    with pytest.raises(KafkaException) as refused:
        results[bad_principal].result(30)
    assert refused.value.args[0].code() == KafkaError.INVALID_REQUEST

    assert described(client) == sorted([deny_write, alice_orders, deny_group], key=str)
    covering = AclBindingFilter(ResourceType.TOPIC, f"orders-{suffix}", ResourcePatternType.MATCH, None, None,
                                AclOperation.ANY, AclPermissionType.ANY)
    assert described(client, covering) == [alice_orders]

    # WRITE is denied on one topic only; the others still take records.
    assert produce_error(broker.bootstrap, locked) == KafkaError.TOPIC_AUTHORIZATION_FAILED
    assert produce_error(broker.bootstrap, free) is None
    # As in Kafka, any ACL on a resource ends `allow.everyone.if.no.acl.found` for it: ANONYMOUS may not even
    # describe the locked topic or the prefixed ones, so the topic list leaves them out.
    listed = client.list_topics(timeout=30).topics
    assert free in listed and locked not in listed and orders not in listed
    # A consumer group it may not use.
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": f"blocked-{suffix}",
                         "auto.offset.reset": "earliest"})
    try:
        consumer.subscribe([free])
        error = None
        deadline = time.time() + 30
        while error is None and time.time() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error():
                error = msg.error().code()
        assert error == KafkaError.GROUP_AUTHORIZATION_FAILED
    finally:
        consumer.close()
    # A KIP-848 member may subscribe only to topics it may describe (Kafka 4's check), so an assignment cannot
    # reveal a topic that Metadata hides.
    g848 = f"g848-{suffix}"
    read_g848 = AclBinding(ResourceType.GROUP, g848, ResourcePatternType.LITERAL, ANONYMOUS, "*",
                           AclOperation.READ, AclPermissionType.ALLOW)
    client.create_acls([read_g848], request_timeout=30)[read_g848].result(30)
    assert heartbeat_once(broker.bootstrap, g848, [free, locked])[0] == KafkaError.TOPIC_AUTHORIZATION_FAILED
    assert heartbeat_once(broker.bootstrap, g848, [free])[0] == 0
    # ConsumerGroupDescribe reports what the ACLs allow on the group: READ, and the DESCRIBE it implies.
    group = client.describe_consumer_groups([g848], include_authorized_operations=True)[g848].result(30)
    assert len(group.members) == 1
    assert set(group.authorized_operations) == {AclOperation.READ, AclOperation.DESCRIBE}
    read_g848_filter = AclBindingFilter(ResourceType.GROUP, g848, ResourcePatternType.LITERAL, ANONYMOUS, "*",
                                        AclOperation.READ, AclPermissionType.ALLOW)
    assert client.delete_acls([read_g848_filter], request_timeout=30)[read_g848_filter].result(30) == [read_g848]

    # The ACLs are in the metadata log: a restart keeps them.
    broker.stop()
    broker.start()
    client = admin(broker)
    assert described(client) == sorted([deny_write, alice_orders, deny_group], key=str)

    deleting = AclBindingFilter(ResourceType.TOPIC, None, ResourcePatternType.ANY, ANONYMOUS, None,
                                AclOperation.ANY, AclPermissionType.DENY)
    removed = client.delete_acls([deleting], request_timeout=30)[deleting].result(30)
    assert removed == [deny_write]
    assert described(client) == sorted([alice_orders, deny_group], key=str)
    assert produce_error(broker.bootstrap, locked) is None


def test_kafka_acls_tool_adds_lists_and_removes(make_broker):
    """Kafka 4.4's `kafka-acls.sh` (the Java Admin client's ACL calls) against a broker with the authorizer."""

    broker = make_broker(shards=1, extra_args=AUTHORIZER)
    b = ("--bootstrap-server", broker.bootstrap)
    kafka_tool("kafka-acls", *b, "--add", "--allow-principal", "User:bob", "--allow-host", "10.0.0.1",
               "--operation", "Read", "--operation", "Describe", "--topic", "orders", "--group", "billing")
    listed = kafka_tool("kafka-acls", *b, "--list", "--topic", "orders").stdout
    assert "principal=User:bob, host=10.0.0.1, operation=READ, permissionType=ALLOW" in listed, listed
    assert "operation=DESCRIBE" in listed and "billing" not in listed, listed
    kafka_tool("kafka-acls", *b, "--remove", "--force", "--allow-principal", "User:bob", "--allow-host", "10.0.0.1",
               "--operation", "Read", "--operation", "Describe", "--topic", "orders")
    left = kafka_tool("kafka-acls", *b, "--list").stdout
    assert "resourceType=GROUP, name=billing" in left and "name=orders" not in left, left
