"""Consumer groups (classic protocol) with confluent-kafka and kafka-python: partitions split between
members, commits, resumption after the committed offsets, rebalances on join, leave and kill, static
membership, offsets across a broker kill -9, admin operations, and error codes."""

import os
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict

import kafka
import kafka.admin
import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from clients import ck_produce, create_topic
from conftest import SHARD_IDS, SHARDS

GROUP_ARGS = ["--set", "group.initial.rebalance.delay.ms=0", "--set", "group.min.session.timeout.ms=1000"]


@pytest.fixture(params=SHARDS, ids=SHARD_IDS)
def group_broker(request, make_broker):
    return make_broker(shards=request.param, extra_args=GROUP_ARGS)


def ck_member(bootstrap, group, **conf):
    return Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 500,
        **conf,
    })


def kp_member(bootstrap, group, topic, **conf):
    return kafka.KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group, auto_offset_reset="earliest",
                               enable_auto_commit=False, session_timeout_ms=6000, heartbeat_interval_ms=500, **conf)


def produce_values(bootstrap, topic, start, count, partitions=4):
    ck_produce(bootstrap, topic, [{"value": f"m{i}".encode(), "partition": i % partitions} for i in range(start, start + count)])


def poll_until(consumer, predicate, timeout=30):
    got = []
    deadline = time.time() + timeout
    while time.time() < deadline and not predicate(got):
        msg = consumer.poll(0.2)
        if msg is not None and not msg.error():
            got.append(msg)
    return got


def poll_once(consumer, timeout=0.2):
    msg = consumer.poll(timeout)
    return [msg] if msg is not None and not msg.error() else []


def commit_retrying(consumer, *others, timeout=30, **kwargs):
    """Commits, polling through rebalances: a commit during one gets REBALANCE_IN_PROGRESS, as in Kafka."""
    deadline = time.time() + timeout
    while True:
        try:
            return consumer.commit(asynchronous=False, **kwargs)
        except KafkaException as exc:
            # NOT_COORDINATOR and COORDINATOR_LOAD_IN_PROGRESS are retriable too: Apache Kafka answers them while it
            # creates and loads __consumer_offsets for a group's first commit.
            retriable = (KafkaError.REBALANCE_IN_PROGRESS, KafkaError.ILLEGAL_GENERATION, KafkaError.NOT_COORDINATOR,
                         KafkaError.COORDINATOR_LOAD_IN_PROGRESS)
            if exc.args[0].code() not in retriable or time.time() > deadline:
                raise
            for c in (consumer, *others):
                c.poll(0.1)


def test_two_members_split_partitions_and_a_new_member_resumes_after_commits(group_broker):
    b = group_broker.bootstrap
    create_topic(b, "shared", partitions=4)
    first, second = ck_member(b, "g"), ck_member(b, "g")
    first.subscribe(["shared"])
    second.subscribe(["shared"])
    deadline = time.time() + 30
    while time.time() < deadline and not (first.assignment() and second.assignment()):
        first.poll(0.1)
        second.poll(0.1)
    produce_values(b, "shared", 0, 400)
    seen = defaultdict(list)
    deadline = time.time() + 40
    while time.time() < deadline and sum(len(v) for v in seen.values()) < 400:
        for name, consumer in (("first", first), ("second", second)):
            msg = consumer.poll(0.1)
            if msg is not None and not msg.error():
                seen[name].append(msg)
    assert sum(len(v) for v in seen.values()) == 400
    assignments = {name: set(tp.partition for tp in c.assignment()) for name, c in (("first", first), ("second", second))}
    assert assignments["first"] and assignments["second"], assignments
    assert assignments["first"].isdisjoint(assignments["second"])
    assert assignments["first"] | assignments["second"] == {0, 1, 2, 3}
    commit_retrying(first, second)
    commit_retrying(second, first)
    first.close()
    second.close()
    produce_values(b, "shared", 400, 200)
    # kafka-python joins the same group and gets exactly the records after the committed offsets.
    resumed = kp_member(b, "g", "shared", consumer_timeout_ms=4000)
    values = sorted(int(m.value[1:]) for m in resumed)
    resumed.close()
    assert values == list(range(400, 600))


def test_members_joining_leaving_and_dying_lose_no_committed_progress(group_broker, tmp_path):
    b = group_broker.bootstrap
    create_topic(b, "churn", partitions=4)
    produce_values(b, "churn", 0, 1000)
    consumed = []
    a = ck_member(b, "churners")
    a.subscribe(["churn"])
    got = poll_until(a, lambda g: len(g) >= 300)
    consumed += [m.value() for m in got]
    commit_retrying(a)
    # A third-party member joins mid-stream: kafka-python.
    kp = kp_member(b, "churners", "churn")
    kp_got = []
    deadline = time.time() + 30
    while time.time() < deadline and not kp.assignment():
        for batch in kp.poll(timeout_ms=200).values():
            kp_got += batch
        for m in poll_once(a):
            consumed.append(m.value())
    assert kp.assignment(), "kafka-python never got partitions"
    # A member that is killed outright (no LeaveGroup): a subprocess consumer, SIGKILLed.
    script = (
        "import sys, time\n"
        "from confluent_kafka import Consumer\n"
        f"c = Consumer({{'bootstrap.servers': '{b}', 'group.id': 'churners', 'auto.offset.reset': 'earliest',"
        " 'enable.auto.commit': False, 'session.timeout.ms': 3000, 'heartbeat.interval.ms': 300})\n"
        "c.subscribe(['churn'])\n"
        "while True:\n"
        "    c.poll(0.2)\n"
    )
    victim = subprocess.Popen([sys.executable, "-c", script])
    time.sleep(4)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    # kafka-python leaves cleanly after committing what it read.
    deadline = time.time() + 20
    while time.time() < deadline and len(kp_got) < 50:
        for batch in kp.poll(timeout_ms=200).values():
            kp_got += batch
        for m in poll_once(a, 0.1):
            consumed.append(m.value())
    deadline = time.time() + 30
    while True:
        try:
            kp.commit()
            break
        except (kafka.errors.CommitFailedError, kafka.errors.RebalanceInProgressError):
            # The group is rebalancing after the kill: rejoin, then commit what this member still owns.
            assert time.time() < deadline, "kafka-python could not commit within 30 s"
            for batch in kp.poll(timeout_ms=200).values():
                kp_got += batch
            consumed.extend(m.value() for m in poll_once(a, 0.1))
    kp.close()
    consumed += [m.value for m in kp_got]
    # The survivor ends up with every partition and reads everything not yet committed.
    deadline = time.time() + 40
    while time.time() < deadline:
        for m in poll_until(a, lambda g: len(g) >= 100, timeout=1):
            consumed.append(m.value())
        if {f"m{i}".encode() for i in range(1000)} <= set(consumed):
            break
    assert {f"m{i}".encode() for i in range(1000)} <= set(consumed), "records were never consumed"
    # The survivor ends up owning every partition; it reads each to the end, so its commit covers all.
    deadline = time.time() + 30
    while time.time() < deadline:
        positions = [tp.offset for tp in a.position([TopicPartition("churn", p) for p in range(4)])]
        if len(a.assignment()) == 4 and positions == [250] * 4:
            break
        consumed.extend(m.value() for m in poll_once(a))
    assert {tp.partition for tp in a.assignment()} == {0, 1, 2, 3}
    commit_retrying(a)
    committed = a.committed([TopicPartition("churn", p) for p in range(4)], timeout=10)
    assert [tp.offset for tp in committed] == [250, 250, 250, 250]
    a.close()


def test_static_member_restart_does_not_rebalance(group_broker):
    b = group_broker.bootstrap
    create_topic(b, "static", partitions=2)
    produce_values(b, "static", 0, 20, partitions=2)
    conf = {"group.instance.id": "static-1", "session.timeout.ms": 10000}
    one = ck_member(b, "statics", **conf)
    two = ck_member(b, "statics", **{"group.instance.id": "static-2", "session.timeout.ms": 10000})
    one.subscribe(["static"])
    two.subscribe(["static"])
    deadline = time.time() + 30
    while time.time() < deadline and not (one.assignment() and two.assignment()):
        one.poll(0.1)
        two.poll(0.1)
    before = {tp.partition for tp in one.assignment()}
    admin = kafka.admin.KafkaAdminClient(bootstrap_servers=b)
    generation = lambda: admin.describe_consumer_groups(["statics"])[0]
    state_before = generation()
    one.close()  # a static member's close sends no LeaveGroup: its place is kept for the session timeout
    restarted = ck_member(b, "statics", **conf)
    restarted.subscribe(["static"])
    deadline = time.time() + 20
    while time.time() < deadline and not restarted.assignment():
        restarted.poll(0.1)
        two.poll(0.1)
    assert {tp.partition for tp in restarted.assignment()} == before
    state_after = generation()
    assert state_after.state == "Stable"
    assert len(state_after.members) == 2
    confluent_admin = AdminClient({"bootstrap.servers": b})  # must outlive the future
    described = confluent_admin.describe_consumer_groups(["statics"])["statics"].result(10)
    assert {m.group_instance_id for m in described.members} == {"static-1", "static-2"}
    restarted.close()
    two.close()
    admin.close()


def test_committed_offsets_survive_broker_kill9(make_broker):
    broker = make_broker(shards=2, extra_args=GROUP_ARGS)
    b = broker.bootstrap
    create_topic(b, "durable-offsets", partitions=3)
    produce_values(b, "durable-offsets", 0, 300, partitions=3)
    consumer = ck_member(b, "survivors")
    consumer.subscribe(["durable-offsets"])
    poll_until(consumer, lambda g: len(g) >= 300)
    consumer.commit(offsets=[TopicPartition("durable-offsets", p, 42 + p) for p in range(3)], asynchronous=False)
    broker.kill9()
    broker.restart()
    fresh = ck_member(b, "survivors")
    # After a restart Apache Kafka answers NOT_COORDINATOR while it reloads __consumer_offsets: ask again then.
    deadline = time.time() + 30
    while True:
        try:
            committed = fresh.committed([TopicPartition("durable-offsets", p) for p in range(3)], timeout=20)
            break
        except KafkaException as exc:
            retriable = (KafkaError.NOT_COORDINATOR, KafkaError.COORDINATOR_LOAD_IN_PROGRESS)
            if exc.args[0].code() not in retriable or time.time() > deadline:
                raise
            time.sleep(0.2)
    assert [tp.offset for tp in committed] == [42, 43, 44]
    kp = kafka.KafkaConsumer(bootstrap_servers=b, group_id="survivors")
    assert kp.committed(kafka.TopicPartition("durable-offsets", 2)) == 44
    kp.close()
    fresh.close()


def test_group_admin_operations_through_both_clients(group_broker):
    b = group_broker.bootstrap
    create_topic(b, "admin-groups", partitions=2)
    produce_values(b, "admin-groups", 0, 10, partitions=2)
    active = ck_member(b, "busy")
    active.subscribe(["admin-groups"])
    poll_until(active, lambda g: len(g) >= 10)
    commit_retrying(active)
    idle = ck_member(b, "idle")
    idle.assign([TopicPartition("admin-groups", 0)])
    idle.commit(offsets=[TopicPartition("admin-groups", 0, 5)], asynchronous=False)
    idle.close()

    admin = AdminClient({"bootstrap.servers": b})
    listed = admin.list_consumer_groups().result(10)
    states = {g.group_id: g.state.name for g in listed.valid}
    assert states["busy"] == "STABLE" and states["idle"] == "EMPTY"
    described = admin.describe_consumer_groups(["busy"])["busy"].result(10)
    assert described.state.name == "STABLE" and len(described.members) == 1
    assert {tp.partition for tp in described.members[0].assignment.topic_partitions} == {0, 1}
    offsets = admin.list_consumer_group_offsets([__import__("confluent_kafka").ConsumerGroupTopicPartitions("idle")])
    assert [tp.offset for tp in offsets["idle"].result(10).topic_partitions] == [5]

    kp_admin = kafka.admin.KafkaAdminClient(bootstrap_servers=b)
    assert {g[0] for g in kp_admin.list_consumer_groups()} >= {"busy", "idle"}
    assert kp_admin.list_consumer_group_offsets("idle")[kafka.TopicPartition("admin-groups", 0)].offset == 5
    # Deleting an active group is refused; an empty one goes, with its offsets.
    with pytest.raises(Exception) as refused:
        admin.delete_consumer_groups(["busy"])["busy"].result(10)
    assert "NON_EMPTY_GROUP" in str(refused.value)
    kp_admin.delete_consumer_groups(["idle"])
    assert "idle" not in {g[0] for g in kp_admin.list_consumer_groups()}
    active.close()
    admin.delete_consumer_groups(["busy"])["busy"].result(10)
    kp_admin.close()


def test_commit_errors_have_kafka_codes(group_broker):
    b = group_broker.bootstrap
    create_topic(b, "errs", partitions=1)
    consumer = ck_member(b, "errors")
    consumer.assign([TopicPartition("errs", 0)])
    with pytest.raises(KafkaException) as unknown:
        consumer.commit(offsets=[TopicPartition("no-such-topic", 0, 1)], asynchronous=False)
    assert unknown.value.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART or "UNKNOWN_TOPIC" in str(unknown.value)
    with pytest.raises(KafkaException) as bad_partition:
        consumer.commit(offsets=[TopicPartition("errs", 7, 1)], asynchronous=False)
    assert "UNKNOWN_TOPIC" in str(bad_partition.value)
    consumer.close()
    # A stale generation: raw protocol through kafka-python's client.
    from kafka.protocol.commit import OffsetCommitRequest
    member = kp_member(b, "gen", "errs")
    member.poll(timeout_ms=3000)
    client = member._client
    node = member._coordinator.coordinator_id
    generation = member._coordinator._generation
    request = OffsetCommitRequest[2](
        "gen", generation.generation_id + 5, generation.member_id, -1, [("errs", [(0, 1, "")])])
    future = client.send(node, request)
    client.poll(future=future, timeout_ms=5000)
    assert future.value.topics[0][1][0][1] == 22  # ILLEGAL_GENERATION
    request = OffsetCommitRequest[2]("gen", generation.generation_id, "not-a-member", -1, [("errs", [(0, 1, "")])])
    future = client.send(node, request)
    client.poll(future=future, timeout_ms=5000)
    assert future.value.topics[0][1][0][1] == 25  # UNKNOWN_MEMBER_ID
    member.close()


def test_sluice_group_commands(group_broker):
    from conftest import sluice
    b = group_broker.bootstrap
    boot = ["--bootstrap", b]
    create_topic(b, "cli-groups", partitions=2)
    produce_values(b, "cli-groups", 0, 100, partitions=2)
    member = ck_member(b, "cli-g", **{"client.id": "cli-test-client"})
    member.subscribe(["cli-groups"])
    poll_until(member, lambda g: len(g) >= 60)
    commit_retrying(member)
    assert "cli-g\tStable\tconsumer" in sluice("group", "list", *boot).stdout
    out = sluice("group", "describe", "cli-g", *boot).stdout
    assert "state Stable" in out and "client cli-test-client" in out
    assert "partitions cli-groups-0,cli-groups-1" in out
    rows = [line.split("\t") for line in out.splitlines() if line.startswith("cli-groups\t")]
    assert len(rows) == 2
    for topic, partition, committed, end, lag, owner in rows:
        assert int(end) == 50 and int(lag) == 50 - int(committed) and owner != "-"
    refused = sluice("group", "reset-offsets", "cli-g", "--topic", "cli-groups", "--to-earliest", "--execute", *boot, check=False)
    assert refused.returncode == 1 and "stop its consumers first" in refused.stderr
    member.close()
    dry = sluice("group", "reset-offsets", "cli-g", "--topic", "cli-groups", "--to-earliest", *boot).stdout
    assert "dry run" in dry
    committed = lambda: {int(r[1]): int(r[2]) for r in (l.split("\t") for l in sluice("group", "describe", "cli-g", *boot).stdout.splitlines()) if r[0] == "cli-groups"}
    before = committed()
    sluice("group", "reset-offsets", "cli-g", "--topic", "cli-groups", "--to-earliest", "--execute", *boot)
    assert committed() == {0: 0, 1: 0}
    sluice("group", "reset-offsets", "cli-g", "--topic", "cli-groups", "--shift-by", "7", "--execute", *boot)
    assert committed() == {0: 7, 1: 7}
    sluice("group", "reset-offsets", "cli-g", "--topic", "cli-groups", "--shift-by", "-100", "--execute", *boot)
    assert committed() == {0: 0, 1: 0}
    sluice("group", "reset-offsets", "cli-g", "--topic", "cli-groups", "--to-offset", "20", "--execute", *boot)
    assert committed() == {0: 20, 1: 20}
    sluice("group", "reset-offsets", "cli-g", "--topic", "cli-groups", "--to-latest", "--execute", *boot)
    assert committed() == {0: 50, 1: 50}
    assert before != committed() or before == {0: 50, 1: 50}
    # A new member resumes from the reset offsets.
    resumed = ck_member(b, "cli-g")
    resumed.subscribe(["cli-groups"])
    produce_values(b, "cli-groups", 100, 10, partitions=2)
    got = poll_until(resumed, lambda g: len(g) >= 10, timeout=20)
    assert sorted(int(m.value()[1:]) for m in got) == list(range(100, 110))
    resumed.close()
    sluice("group", "delete", "cli-g", *boot)
    assert "cli-g\t" not in sluice("group", "list", *boot).stdout


def test_kafkajs_group_commits_are_read_by_confluent(group_broker):
    import json
    from pathlib import Path
    b = group_broker.bootstrap
    create_topic(b, "js-groups", partitions=3)
    produce_values(b, "js-groups", 0, 300, partitions=3)
    here = Path(__file__).resolve().parent
    result = subprocess.run(["node", str(here / "kafkajs_group.js"), b, "js-groups", "js-g", "300"],
                            capture_output=True, text=True, timeout=90, cwd=here)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["count"] == 300 and len(set(summary["values"])) == 300
    admin = AdminClient({"bootstrap.servers": b})
    from confluent_kafka import ConsumerGroupTopicPartitions
    offsets = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions("js-g")])["js-g"].result(10)
    assert sorted((tp.partition, tp.offset) for tp in offsets.topic_partitions) == [(0, 100), (1, 100), (2, 100)]
    # kafkajs's own assignor name: another client joining must agree on a protocol.
    described = admin.describe_consumer_groups(["js-g"])["js-g"].result(10)
    assert described.state.name == "EMPTY"


KIP848_ARGS = GROUP_ARGS + ["--set", "group.consumer.heartbeat.interval.ms=500", "--set", "group.consumer.session.timeout.ms=6000"]


@pytest.mark.parametrize("assignor", ["uniform", "range"])
@pytest.mark.parametrize("shards", SHARDS)
def test_kip848_consumers_split_partitions_and_rebalance_when_one_leaves(make_broker, shards, assignor):
    b = make_broker(shards=shards, extra_args=KIP848_ARGS).bootstrap
    create_topic(b, "next-gen", partitions=4)
    produce_values(b, "next-gen", 0, 400)

    def member():
        return Consumer({"bootstrap.servers": b, "group.id": f"kip848-{assignor}", "group.protocol": "consumer",
                         "group.remote.assignor": assignor, "auto.offset.reset": "earliest",
                         "enable.auto.commit": False})

    one, two = member(), member()
    one.subscribe(["next-gen"])
    two.subscribe(["next-gen"])
    seen = []
    deadline = time.time() + 30
    # Nothing is committed yet, so a partition that moves while the second member joins is read again from
    # the start by its new owner: at least once, so count distinct records.
    while time.time() < deadline and not (len(set(seen)) >= 400 and one.assignment() and two.assignment()):
        for consumer in (one, two):
            msg = consumer.poll(0.1)
            if msg is not None and not msg.error():
                seen.append(msg.value())
    assert set(seen) == {f"m{i}".encode() for i in range(400)}
    first = {tp.partition for tp in one.assignment()}
    second = {tp.partition for tp in two.assignment()}
    assert first and second and first.isdisjoint(second) and first | second == {0, 1, 2, 3}, (first, second)
    described = AdminClient({"bootstrap.servers": b})
    group = described.describe_consumer_groups([f"kip848-{assignor}"])[f"kip848-{assignor}"].result(10)
    assert group.state.name == "STABLE" and len(group.members) == 2
    one.commit(asynchronous=False)
    two.commit(asynchronous=False)
    two.close()
    deadline = time.time() + 20
    while time.time() < deadline and len(one.assignment()) < 4:
        one.poll(0.1)
    assert {tp.partition for tp in one.assignment()} == {0, 1, 2, 3}
    committed = one.committed([TopicPartition("next-gen", p) for p in range(4)], timeout=10)
    assert [tp.offset for tp in committed] == [100, 100, 100, 100]
    one.close()


def offset_delete_raw(bootstrap, group, topic, partitions):
    """OffsetDelete v0 by hand (neither client library has it). Returns (top error, {partition: error})."""
    import socket
    import struct

    def string(s):
        return struct.pack(">h", len(s)) + s.encode()

    body = string(group) + struct.pack(">i", 1) + string(topic) + struct.pack(">i", len(partitions))
    body += b"".join(struct.pack(">i", p) for p in partitions)
    request = struct.pack(">hhi", 47, 0, 11) + string("raw") + body
    host, port = bootstrap.split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(struct.pack(">i", len(request)) + request)
        size = struct.unpack(">i", s.recv(4, socket.MSG_WAITALL))[0]
        reply = s.recv(size, socket.MSG_WAITALL)
    correlation, error, _throttle, topics = struct.unpack(">ihii", reply[:14])
    assert correlation == 11
    if topics == 0:
        return error, {}
    pos = 14
    name_len = struct.unpack(">h", reply[pos:pos + 2])[0]
    pos += 2 + name_len
    count = struct.unpack(">i", reply[pos:pos + 4])[0]
    pos += 4
    results = {}
    for _ in range(count):
        partition, code = struct.unpack(">ih", reply[pos:pos + 6])
        results[partition] = code
        pos += 6
    return error, results


def test_offset_delete(group_broker):
    b = group_broker.bootstrap
    create_topic(b, "od", partitions=2)
    produce_values(b, "od", 0, 10, partitions=2)
    idle = ck_member(b, "od-idle")
    idle.assign([TopicPartition("od", 0)])
    commit_retrying(idle, offsets=[TopicPartition("od", 0, 3), TopicPartition("od", 1, 4)])
    assert offset_delete_raw(b, "od-idle", "od", [0]) == (0, {0: 0})
    committed = idle.committed([TopicPartition("od", 0), TopicPartition("od", 1)], timeout=10)
    assert [tp.offset for tp in committed] == [-1001, 4]
    idle.close()
    # An active member subscribed to the topic: GROUP_SUBSCRIBED_TO_TOPIC (86).
    active = ck_member(b, "od-active")
    active.subscribe(["od"])
    poll_until(active, lambda g: len(g) >= 10)
    commit_retrying(active)
    assert offset_delete_raw(b, "od-active", "od", [0, 1]) == (0, {0: 86, 1: 86})
    assert offset_delete_raw(b, "no-such-group", "od", [0])[0] == 69  # GROUP_ID_NOT_FOUND
    active.close()
