"""Static membership (KIP-345, and KIP-848's static members): a second consumer with the same
`group.instance.id` must not leave two members owning one identity. With the classic protocol the newcomer takes
the place and the old member is fenced (FENCED_INSTANCE_ID on its next JoinGroup, SyncGroup, Heartbeat or
OffsetCommit); with KIP-848 the newcomer is refused while the old member holds the id (UNRELEASED_INSTANCE_ID).
librdkafka's test 0102 (`do_test_fenced_member_classic`, `do_test_fenced_member_consumer`) checks both."""

import time

from confluent_kafka import Consumer, KafkaError

from clients import create_topic


def consumer(broker, group, instance, client_id, protocol):
    conf = {
        "bootstrap.servers": broker.bootstrap,
        "group.id": group,
        "group.instance.id": instance,
        "client.id": client_id,
        "auto.offset.reset": "earliest",
        "group.protocol": protocol,
    }
    if protocol == "classic":
        conf.update({"session.timeout.ms": 6000, "heartbeat.interval.ms": 500})
    return Consumer(conf)


def poll_until_assigned(consumers, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        for c in consumers:
            c.poll(0.2)
        if all(c.assignment() for c in consumers):
            return
    raise AssertionError("consumers were not all assigned partitions")


def poll_for_fatal(victim, others, timeout=30):
    """Polls every consumer until `victim` reports a fatal error (librdkafka delivers it as an _FATAL
    message error whose text names the broker's error); returns its text, or None."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        for c in others:
            c.poll(0.1)
        msg = victim.poll(0.2)
        if msg is not None and msg.error() is not None and msg.error().code() == KafkaError._FATAL:
            return msg.error().str()
    return None


def test_classic_static_member_is_fenced_by_its_replacement(broker):
    create_topic(broker.bootstrap, "static-classic", partitions=3)
    first = consumer(broker, "static-classic-g", "consumer1", "consumer1", "classic")
    old = consumer(broker, "static-classic-g", "consumer2", "consumer2a", "classic")
    first.subscribe(["static-classic"])
    old.subscribe(["static-classic"])
    poll_until_assigned([first, old])

    new = consumer(broker, "static-classic-g", "consumer2", "consumer2b", "classic")
    new.subscribe(["static-classic"])
    fatal = poll_for_fatal(old, [first, new])
    assert fatal is not None, "the replaced static member was never fenced"
    assert "Static consumer fenced by other consumer with same group.instance.id" in fatal, fatal

    # The newcomer and the untouched member share the partitions.
    poll_until_assigned([first, new])
    for c in (first, new):
        c.close()


def test_kip848_static_member_id_cannot_be_taken_while_held(broker):
    create_topic(broker.bootstrap, "static-848", partitions=3)
    first = consumer(broker, "static-848-g", "consumer1", "consumer1", "consumer")
    held = consumer(broker, "static-848-g", "consumer2", "consumer2a", "consumer")
    first.subscribe(["static-848"])
    held.subscribe(["static-848"])
    poll_until_assigned([first, held])

    newcomer = consumer(broker, "static-848-g", "consumer2", "consumer2b", "consumer")
    newcomer.subscribe(["static-848"])
    fatal = poll_for_fatal(newcomer, [first, held])
    assert fatal is not None, "a second member took a static instance id that was still held"
    assert "instance ID is still used by another member" in fatal, fatal
    # The member that holds the id keeps its partitions.
    poll_until_assigned([first, held])
    assert not newcomer.assignment()
    for c in (first, held):
        c.close()
