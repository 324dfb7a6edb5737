"""Apache Kafka's own cluster tools (kafka-tools 4.4.0 through tools/kafka.sh) against a three-node Sluice
cluster, as an operator would run them: kafka-metadata-quorum (DescribeQuorum through the Admin client),
kafka-log-dirs (DescribeLogDirs), and kafka-reassign-partitions from --generate through a throttled --execute
to --verify, which clears the throttles."""

import json
import re

from confluent_kafka import Consumer, TopicPartition

from harness import create_topic, wait_until
from jvm import kafka_tool


def test_kafka_metadata_quorum_describes_the_controller_quorum(cluster):
    b = ("--bootstrap-server", cluster.nodes[2].bootstrap)
    status = kafka_tool("kafka-metadata-quorum", *b, "describe", "--status").stdout
    fields = dict(re.findall(r"^(\w+):\s+(.*)$", status, re.M))
    leader = int(fields["LeaderId"])
    assert leader in (1, 2, 3), status
    assert int(fields["LeaderEpoch"]) >= 1 and int(fields["HighWatermark"]) > 0, status
    assert sorted(voter["id"] for voter in json.loads(fields["CurrentVoters"])) == [1, 2, 3], status
    assert json.loads(fields["CurrentObservers"]) == [], status
    described = cluster.describe()
    assert leader == described["quorum"]["leader_id"], (status, described)
    assert fields["ClusterId"] == described["cluster_id"], (status, described)

    replication = kafka_tool("kafka-metadata-quorum", *b, "describe", "--replication").stdout.strip().splitlines()
    rows = {int(row.split()[0]): row.split() for row in replication[1:]}
    assert sorted(rows) == [1, 2, 3], replication
    assert rows[leader][-1] == "Leader" and sum(row[-1] == "Follower" for row in rows.values()) == 2, replication


def partitions_of(log_dirs_json):
    """{broker: {partition name: size}} from kafka-log-dirs' JSON line."""
    report = json.loads(log_dirs_json)
    return {broker["broker"]: {p["partition"]: p["size"] for d in broker["logDirs"] for p in d["partitions"]}
            for broker in report["brokers"]}


def test_kafka_log_dirs_and_a_throttled_kafka_reassign_partitions(cluster):
    bootstrap = cluster.nodes[1].bootstrap
    b = ("--bootstrap-server", bootstrap)
    create_topic(bootstrap, "moving", partitions=2, replication_factor=2)
    before = cluster.leaders("moving")
    values = "".join(f"k{i}\tv{i}\n" for i in range(2000))
    kafka_tool("kafka-console-producer", *b, "--topic", "moving", "--property", "parse.key=true",
               "--producer-property", "acks=all", input=values)

    out = kafka_tool("kafka-log-dirs", *b, "--describe", "--topic-list", "moving").stdout
    held = partitions_of(out.strip().splitlines()[-1])
    for partition, (_, replicas, _) in before.items():
        for broker in (1, 2, 3):
            sizes = held[broker]
            assert (f"moving-{partition}" in sizes) == (broker in replicas), (partition, replicas, held)
    assert all(size > 0 for sizes in held.values() for size in sizes.values()), held

    topics_file = cluster.root / "topics.json"
    topics_file.write_text(json.dumps({"version": 1, "topics": [{"topic": "moving"}]}))
    generated = kafka_tool("kafka-reassign-partitions", *b, "--topics-to-move-json-file", str(topics_file),
                           "--broker-list", "1,2,3", "--generate").stdout
    current, proposed = [json.loads(line) for line in generated.splitlines() if line.startswith("{")]
    assert {(p["partition"], tuple(p["replicas"])) for p in current["partitions"]} == \
        {(p, tuple(replicas)) for p, (_, replicas, _) in before.items()}
    # A plan of our own that moves every replica set (the proposal may leave one where it is).
    plan = {"version": 1, "partitions": [
        {"topic": "moving", "partition": p, "replicas": [r for r in (1, 2, 3) if r not in replicas] + [replicas[0]]}
        for p, (_, replicas, _) in before.items()]}
    assert len(proposed["partitions"]) == 2
    plan_file = cluster.root / "plan.json"
    plan_file.write_text(json.dumps(plan))
    started = kafka_tool("kafka-reassign-partitions", *b, "--reassignment-json-file", str(plan_file), "--execute",
                         "--throttle", "50000000", "--replica-alter-log-dirs-throttle", "50000000").stdout
    assert "Successfully started partition reassignments" in started, started
    rates = kafka_tool("kafka-configs", *b, "--describe", "--entity-type", "brokers", "--entity-name", "1").stdout
    assert "leader.replication.throttled.rate=50000000" in rates, rates
    # The log-dirs throttle is set only for moves between a broker's directories; --verify clears it anyway.
    assert "follower.replication.throttled.rate=50000000" in rates, rates

    def verified():
        out = kafka_tool("kafka-reassign-partitions", *b, "--reassignment-json-file", str(plan_file),
                         "--verify").stdout
        return out if out.count("is completed") == 2 else None

    out = wait_until(verified, timeout=60, interval=1, what="kafka-reassign-partitions --verify")
    assert "Clearing broker-level throttles on brokers 1,2,3" in out, out
    for node in (1, 2, 3):
        rates = kafka_tool("kafka-configs", *b, "--describe", "--entity-type", "brokers", "--entity-name",
                           str(node)).stdout
        assert "throttled.rate" not in rates and "alter.log.dirs" not in rates, rates
    after = cluster.leaders("moving")
    assert {p: sorted(r) for p, (_, r, _) in after.items()} == \
        {p["partition"]: sorted(p["replicas"]) for p in plan["partitions"]}

    # Every record is still there, read from the new replica sets.
    consumer = Consumer({"bootstrap.servers": cluster.nodes[3].bootstrap, "group.id": "after-move",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.assign([TopicPartition("moving", p, 0) for p in after])
    seen = set()
    try:
        wait_until(lambda: seen.update(m.value() for m in consumer.consume(500, 1) if not m.error())
                   or len(seen) == 2000, timeout=60, what="the 2,000 records after the move")
    finally:
        consumer.close()
    assert seen == {f"v{i}".encode() for i in range(2000)}
    held = partitions_of(kafka_tool("kafka-log-dirs", *b, "--describe", "--topic-list", "moving")
                         .stdout.strip().splitlines()[-1])
    for partition, (_, replicas, _) in after.items():
        assert {broker for broker in held if f"moving-{partition}" in held[broker]} == set(replicas), held
