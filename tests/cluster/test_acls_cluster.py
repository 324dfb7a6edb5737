"""ACLs in a cluster: three nodes with the authorizer on. The nodes still replicate (they are `User:ANONYMOUS`,
named a super user, as a PLAINTEXT Kafka cluster's brokers must be allowed CLUSTER_ACTION), ACLs created
through one node are committed to the metadata log and so are read on every node, they survive a kill -9 of
the node that took them and a restart of the whole cluster, and they are deleted the same way."""

import kafka
import pytest
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
)

from harness import create_topic, wait_until
from workload import read_all

pytestmark = pytest.mark.sluice_only("Sluice's ACLs; the Kafka cluster of these tests runs without an authorizer")

AUTHORIZER = {
    "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
    "super.users": "User:ANONYMOUS",
}
EVERY_ACL = AclBindingFilter(
    ResourceType.ANY, None, ResourcePatternType.ANY, None, None, AclOperation.ANY, AclPermissionType.ANY
)


def acls_on(node):
    """The ACLs one node describes: its admin client knows only that node, and DescribeAcls reads the image of
    the node it reaches. A node still starting answers with an error, which `wait_until` waits out."""
    client = AdminClient({"bootstrap.servers": node.bootstrap})
    return sorted(map(str, client.describe_acls(EVERY_ACL, request_timeout=20).result(30)))


def test_acls_are_committed_to_every_node_and_survive_kills_and_restarts(make_cluster):
    cluster = make_cluster(3, extra=AUTHORIZER)
    create_topic(cluster.nodes[1].bootstrap, "guarded", partitions=2, replication_factor=3)
    producer = kafka.KafkaProducer(bootstrap_servers=cluster.bootstrap, acks="all")
    for future in [producer.send("guarded", value=f"record {i}".encode()) for i in range(200)]:
        future.get(30)
    producer.close()
    bindings = [
        AclBinding(ResourceType.TOPIC, "guarded", ResourcePatternType.LITERAL, "User:alice", "*",
                   AclOperation.READ, AclPermissionType.ALLOW),
        AclBinding(ResourceType.GROUP, "team-", ResourcePatternType.PREFIXED, "User:alice", "10.0.0.7",
                   AclOperation.READ, AclPermissionType.DENY),
    ]
    client = AdminClient({"bootstrap.servers": cluster.nodes[2].bootstrap})
    for future in client.create_acls(bindings, request_timeout=30).values():
        future.result(30)
    expected = sorted(map(str, bindings))
    for node in cluster.nodes.values():
        wait_until(lambda node=node: acls_on(node) == expected, timeout=30, what=f"node {node.node_id}'s ACLs")

    cluster.nodes[2].kill9()
    # The client may still pick the killed node for its request until the cluster has fenced it: wait, bounded.
    for node_id in (1, 3):
        wait_until(lambda node_id=node_id: acls_on(cluster.nodes[node_id]) == expected, timeout=60,
                   what=f"node {node_id}'s ACLs with node 2 down")
    # Node 2 back, then all three killed while running, and the whole cluster restarted.
    cluster.nodes[2].start()
    for node in cluster.nodes.values():
        node.kill9()
    cluster.start()
    for node in cluster.nodes.values():
        wait_until(lambda node=node: acls_on(node) == expected, timeout=60, what=f"node {node.node_id}'s ACLs")
    records = read_all(cluster.bootstrap, "guarded", [0, 1])
    assert len(records) == 200, "replication and reads work with the authorizer on"

    group_acls = AclBindingFilter(ResourceType.GROUP, None, ResourcePatternType.ANY, None, None,
                                  AclOperation.ANY, AclPermissionType.ANY)
    client = AdminClient({"bootstrap.servers": cluster.nodes[3].bootstrap})
    removed = client.delete_acls([group_acls], request_timeout=30)[group_acls].result(30)
    assert list(map(str, removed)) == [str(bindings[1])]
    for node in cluster.nodes.values():
        wait_until(lambda node=node: acls_on(node) == [str(bindings[0])], timeout=30,
                   what=f"node {node.node_id}'s ACLs after the delete")
