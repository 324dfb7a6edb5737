"""Group configs (Kafka's `GroupConfig`, KIP-848): DescribeConfigs and IncrementalAlterConfigs on a GROUP
resource, through confluent-kafka's AdminClient, as librdkafka's test 0081 uses them. Any group id can be
described (the broker's `group.consumer.*` values until the group has its own); `consumer.session.timeout.ms`
and `consumer.heartbeat.interval.ms` may be set within the broker's `group.consumer.min/max.*` bounds; other
keys are refused; and the group's members get the new values in their next ConsumerGroupHeartbeat."""

import socket
import struct
import time
import uuid

from confluent_kafka import KafkaError
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigResource, ConfigSource

from test_config_lists import alter as alter_configs

GROUP = ConfigResource.Type.GROUP
SESSION = "consumer.session.timeout.ms"
HEARTBEAT = "consumer.heartbeat.interval.ms"


def alter(client, group, *entries):
    """One IncrementalAlterConfigs request on a group; the error, or None."""
    return alter_configs(client, GROUP, group, *entries)


def described(client, group):
    res = ConfigResource(GROUP, group)
    return client.describe_configs([res])[res].result(30)


def compact_string(value):
    data = value.encode()
    return bytes([len(data) + 1]) + data


def heartbeat_interval_ms(bootstrap, group):
    """Joins `group` with a raw ConsumerGroupHeartbeat v1 (a member id of its own, epoch 0, subscribed to
    nothing) and returns the heartbeat interval the coordinator answers, after FindCoordinator sends it to the
    right broker. Retries, as clients do, while the coordinator is loading or moving (errors 14, 15, 16)."""
    deadline = time.time() + 30
    while True:
        error, interval = heartbeat_once(bootstrap, group)
        if error not in (14, 15, 16) or time.time() > deadline:
            assert error == 0, f"ConsumerGroupHeartbeat error {error}"
            return interval
        time.sleep(0.2)


def heartbeat_once(bootstrap, group, topics=()):
    """One raw ConsumerGroupHeartbeat v1 joining `group`, subscribed to `topics`: its error code, and the
    heartbeat interval when there is no error."""
    host, port = bootstrap.split(":")

    def call(address, api_key, version, body):
        # Request header v2: api key, version, correlation id, client id (nullable string), tagged fields.
        request = struct.pack(">hhi", api_key, version, 7) + struct.pack(">h", 3) + b"raw" + b"\x00" + body
        with socket.create_connection(address, timeout=10) as s:
            s.sendall(struct.pack(">i", len(request)) + request)
            size = struct.unpack(">i", s.recv(4, socket.MSG_WAITALL))[0]
            return s.recv(size, socket.MSG_WAITALL)[5:]  # correlation id and the header's tagged fields

    # FindCoordinator v4 (flexible): key type 0, one key.
    body = b"\x00" + b"\x02" + compact_string(group) + b"\x00"
    reply = call((host, int(port)), 10, 4, body)
    at = 4 + 1  # throttle time, coordinators array length (one)
    key_len = reply[at] - 1
    at += 1 + key_len + 4  # key, node id
    host_len = reply[at] - 1
    coordinator_host = reply[at + 1:at + 1 + host_len].decode()
    at += 1 + host_len
    coordinator_port = struct.unpack(">i", reply[at:at + 4])[0]
    error = struct.unpack(">h", reply[at + 4:at + 6])[0]
    if error != 0:
        return error, None

    body = (compact_string(group) + compact_string(str(uuid.uuid4())) + struct.pack(">i", 0)
            + b"\x00" + b"\x00"  # instance id, rack id: null
            + struct.pack(">i", 30000)  # rebalance timeout
            + bytes([len(topics) + 1]) + b"".join(compact_string(t) for t in topics)  # subscribed topic names
            + b"\x00"  # subscribed topic regex (v1): null
            + b"\x00" + b"\x01" + b"\x00")  # server assignor null, owned partitions empty, tagged fields
    reply = call((coordinator_host, coordinator_port), 68, 1, body)
    error = struct.unpack(">h", reply[4:6])[0]
    if error != 0:
        return error, None
    at = 6
    at += max(reply[at] - 1, 0) + 1  # error message
    at += max(reply[at] - 1, 0) + 1  # member id
    at += 4  # member epoch
    return 0, struct.unpack(">i", reply[at:at + 4])[0]


def test_group_configs_are_described_altered_and_bounded(broker):
    client = AdminClient({"bootstrap.servers": broker.bootstrap})
    # A group that does not exist has the broker's values.
    entries = described(client, "no-such-group")
    assert entries[SESSION].value == "45000" and entries[HEARTBEAT].value == "5000"
    assert entries[SESSION].source != ConfigSource.GROUP_CONFIG.value

    assert alter(client, "cfg", (SESSION, AlterConfigOpType.SET, "50000")) is None
    entry = described(client, "cfg")[SESSION]
    assert entry.value == "50000" and entry.source == ConfigSource.GROUP_CONFIG.value
    assert described(client, "other")[SESSION].value == "45000"

    # Kafka's bounds: group.consumer.min/max.session.timeout.ms (45 s, 60 s) and the heartbeat interval's
    # (5 s, 15 s); unknown keys and list operations are refused.
    for entry in [(SESSION, AlterConfigOpType.SET, "44999"), (SESSION, AlterConfigOpType.SET, "60001"),
                  (HEARTBEAT, AlterConfigOpType.SET, "4999"), (HEARTBEAT, AlterConfigOpType.SET, "15001"),
                  ("no.such.key", AlterConfigOpType.SET, "1"), (SESSION, AlterConfigOpType.APPEND, "1")]:
        error = alter(client, "cfg", entry)
        assert error is not None and error.code() == KafkaError.INVALID_CONFIG, entry
    assert described(client, "cfg")[SESSION].value == "50000"

    assert alter(client, "cfg", (SESSION, AlterConfigOpType.DELETE, "")) is None
    entry = described(client, "cfg")[SESSION]
    assert entry.value == "45000" and entry.source != ConfigSource.GROUP_CONFIG.value


def test_members_heartbeat_at_their_groups_interval(broker):
    client = AdminClient({"bootstrap.servers": broker.bootstrap})
    assert heartbeat_interval_ms(broker.bootstrap, "hb-default") == 5000
    assert alter(client, "hb-own", (HEARTBEAT, AlterConfigOpType.SET, "7000")) is None
    assert heartbeat_interval_ms(broker.bootstrap, "hb-own") == 7000
    assert heartbeat_interval_ms(broker.bootstrap, "hb-default") == 5000
    assert alter(client, "hb-own", (HEARTBEAT, AlterConfigOpType.DELETE, "")) is None
    assert heartbeat_interval_ms(broker.bootstrap, "hb-own") == 5000
