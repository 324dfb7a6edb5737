"""Issue 15, hostile clients: raw Kafka requests that once reached internal state unchecked. Each test writes the
request bytes by hand and asserts on the reply's bytes, then checks that well-behaved clients are unaffected."""

import signal
import socket
import struct
import subprocess
import time

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kafka.record.default_records import DefaultRecordBatchBuilder

from clients import ck_consume, ck_produce, create_topic
from conftest import SLUICE, sluice

INVALID_TOPIC_EXCEPTION = 17
INVALID_REQUEST = 42
INVALID_TXN_STATE = 48
TRANSACTIONAL_ID_AUTHORIZATION_FAILED = 53


class Connection:
    """One connection to the broker; `call` sends a request frame and returns the reply's body after its
    correlation id (and, for flexible replies, the empty tagged-field byte)."""

    def __init__(self, broker):
        host, port = broker.bootstrap.split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=30)
        self.correlation_id = 0

    def call(self, api_key, version, body, flexible_header=False):
        self.correlation_id += 1
        header = struct.pack(">hhih", api_key, version, self.correlation_id, -1)
        if flexible_header:
            header += b"\x00"
        frame = header + body
        self.sock.sendall(struct.pack(">i", len(frame)) + frame)
        size = struct.unpack(">i", self._read(4))[0]
        reply = self._read(size)
        assert struct.unpack(">i", reply[:4])[0] == self.correlation_id
        return reply[5:] if flexible_header else reply[4:]

    def _read(self, n):
        out = b""
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            assert chunk, "the broker closed the connection"
            out += chunk
        return out

    def close(self):
        self.sock.close()


def string(s):
    return struct.pack(">h", len(s)) + s.encode()


def record_batch(records, compression=0, transactional=False, producer_id=-1, epoch=-1, sequence=-1):
    builder = DefaultRecordBatchBuilder(2, compression, transactional, producer_id, epoch, sequence, 1 << 20)
    for offset, (key, value) in enumerate(records):
        builder.append(offset, int(time.time() * 1000), key, value, [])
    return bytes(builder.build())


def produce_v3(conn, topic, partition, batch, transactional_id=None):
    """Produce v3 (acks=-1) of one batch; returns (error code, base offset) of the partition."""
    body = (struct.pack(">h", -1) if transactional_id is None else string(transactional_id))
    body += struct.pack(">hi", -1, 10_000) + struct.pack(">i", 1) + string(topic)
    body += struct.pack(">ii", 1, partition) + struct.pack(">i", len(batch)) + batch
    reply = conn.call(0, 3, body)
    (name_len,) = struct.unpack(">h", reply[4:6])
    at = 6 + name_len + 4
    index, error, base_offset = struct.unpack(">ihq", reply[at:at + 14])
    assert index == partition
    return error, base_offset


def wait_for_offsets_topic(broker):
    deadline = time.time() + 30
    while time.time() < deadline:
        if "__consumer_offsets" in sluice("topic", "list", "--bootstrap", broker.bootstrap).stdout:
            return
        time.sleep(0.2)
    raise AssertionError("__consumer_offsets was not created")


@pytest.mark.sluice_only("Sluice guards its internal topics more strictly than Apache Kafka, deliberately: Kafka "
                         "creates __consumer_offsets only at a group's first FindCoordinator and lets a client "
                         "change its retention")
def test_internal_topics_refuse_client_writes_and_deletes(broker):
    wait_for_offsets_topic(broker)
    conn = Connection(broker)
    # What kcat once stored in __consumer_offsets: a gzip batch with a value that is not JSON.
    kcat_batch = record_batch([(None, b"not json")], compression=1)
    for topic in ("__consumer_offsets", "__cluster_metadata", "__transaction_state"):
        error, base_offset = produce_v3(conn, topic, 0, kcat_batch)
        assert (error, base_offset) == (INVALID_TOPIC_EXCEPTION, -1), topic
    # A record that even parses as the coordinator's is refused too.
    key = b'{"type":"Offset","version":1,"group":"g","topic":"t","partition":0}'
    forged = record_batch([(key, b'{"version":1,"offset":99,"leader_epoch":-1,"metadata":"","commit_timestamp_ms":1}')])
    assert produce_v3(conn, "__consumer_offsets", 0, forged)[0] == INVALID_TOPIC_EXCEPTION
    # DeleteRecords v1 on __consumer_offsets would cut live groups' offsets.
    body = struct.pack(">i", 1) + string("__consumer_offsets") + struct.pack(">iiq", 1, 0, -1) + struct.pack(">i", 5000)
    reply = conn.call(21, 1, body)
    at = 4 + 4 + 2 + len("__consumer_offsets") + 4
    index, low_watermark, error = struct.unpack(">iqh", reply[at:at + 14])
    assert (index, low_watermark, error) == (0, -1, INVALID_TOPIC_EXCEPTION)
    # Metadata v4 that allows auto-creation does not create an internal topic as a regular one.
    metadata = struct.pack(">i", 1) + string("__transaction_state") + b"\x01"
    conn.call(3, 4, metadata)
    conn.close()
    time.sleep(0.5)
    assert "__transaction_state" not in sluice("topic", "list", "--bootstrap", broker.bootstrap).stdout
    # Nor may a client create one, or give __consumer_offsets a deletion policy that would lose live offsets.
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    for name in ("__transaction_state", "__consumer_offsets"):
        future = admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1,
                                               config={"retention.ms": "1000"})])[name]
        with pytest.raises(KafkaException) as refused:
            future.result(30)
        assert refused.value.args[0].code() == KafkaError.INVALID_REQUEST, name
    altered = sluice("topic", "alter-config", "__consumer_offsets", "--set", "cleanup.policy=compact,delete",
                     "--bootstrap", broker.bootstrap, check=False)
    assert altered.returncode == 1 and "InvalidConfig" in altered.stderr, altered.stderr
    # Groups still work: a commit reads back.
    create_topic(broker.bootstrap, "plain")
    ck_produce(broker.bootstrap, "plain", [{"value": b"v"}])
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "survivor", "enable.auto.commit": False})
    try:
        consumer.commit(offsets=[TopicPartition("plain", 0, 1)], asynchronous=False)
        assert consumer.committed([TopicPartition("plain", 0)], timeout=30)[0].offset == 1
    finally:
        consumer.close()


@pytest.mark.sluice_only("Sluice has no transactions yet and refuses transactional batches; Apache Kafka runs them")
def test_transactional_batches_are_refused_and_read_committed_keeps_up(broker):
    create_topic(broker.bootstrap, "txn")
    conn = Connection(broker)
    batch = record_batch([(None, b"dangling")], transactional=True, producer_id=4242, epoch=0, sequence=0)
    assert produce_v3(conn, "txn", 0, batch) == (TRANSACTIONAL_ID_AUTHORIZATION_FAILED, -1)
    assert produce_v3(conn, "txn", 0, batch, transactional_id="tx") == (INVALID_TXN_STATE, -1)
    # An ordinary idempotent batch of the same producer id is fine.
    plain = record_batch([(None, b"first")], producer_id=4242, epoch=0, sequence=0)
    assert produce_v3(conn, "txn", 0, plain) == (0, 0)
    conn.close()
    ck_produce(broker.bootstrap, "txn", [{"value": b"second", "partition": 0}])
    # librdkafka's default isolation: nothing holds the last stable offset back.
    got = ck_consume(broker.bootstrap, "txn", [0], 2, timeout=20, **{"isolation.level": "read_committed"})
    assert [m.value() for m in got] == [b"first", b"second"]


def init_producer_id_v3(conn, producer_id, epoch):
    body = b"\x00" + struct.pack(">iqh", 60_000, producer_id, epoch) + b"\x00"
    reply = conn.call(22, 3, body, flexible_header=True)
    _throttle, error, got_id, got_epoch = struct.unpack(">ihqh", reply[:16])
    return error, got_id, got_epoch


@pytest.mark.sluice_only("Apache Kafka bumps a presented producer id's epoch (KIP-360) and answers differently "
                         "(COORDINATOR_LOAD_IN_PROGRESS at first here); Sluice hands out a new id, deliberately")
def test_init_producer_id_never_bumps_a_presented_pair(broker):
    conn = Connection(broker)
    error, first, epoch = init_producer_id_v3(conn, -1, -1)
    assert error == 0 and first >= 0 and epoch == 0
    # The producer's own pair, a stale epoch of it, and another producer's id: each gets a new id at epoch 0,
    # never the presented id with a bumped epoch.
    seen = {first}
    for presented in [(first, 0), (first, 7), (first + 100_000, 3)]:
        error, got, epoch = init_producer_id_v3(conn, *presented)
        assert error == 0 and epoch == 0, presented
        assert got not in seen and got != presented[0], (presented, got)
        seen.add(got)
    # Half a pair is malformed.
    assert init_producer_id_v3(conn, -1, 3)[0] == INVALID_REQUEST
    assert init_producer_id_v3(conn, first, -1)[0] == INVALID_REQUEST
    conn.close()
    # An idempotent client still works end to end.
    ck_produce(broker.bootstrap, "idem", [{"value": b"v"}], **{"enable.idempotence": True})


def test_fetch_with_min_bytes_zero_answers_at_once(broker):
    create_topic(broker.bootstrap, "empty")
    conn = Connection(broker)
    # Fetch v4: max_wait_ms 10 s, min_bytes 0, on an empty partition.
    body = struct.pack(">iiiib", -1, 10_000, 0, 1 << 20, 0) + struct.pack(">i", 1) + string("empty")
    body += struct.pack(">iiqi", 1, 0, 0, 1 << 20)
    at = 4 + 4 + 2 + len("empty") + 4
    # Apache Kafka may answer NOT_LEADER_OR_FOLLOWER (6) for a moment after the topic's leader shows in
    # Metadata, until its replica manager has applied the leadership: ask again then.
    for _ in range(50):
        started = time.monotonic()
        reply = conn.call(1, 4, body)
        elapsed = time.monotonic() - started
        index, error, high_watermark = struct.unpack(">ihq", reply[at:at + 14])
        if error != 6:
            break
        time.sleep(0.1)
    conn.close()
    assert (index, error, high_watermark) == (0, 0, 0)
    # A correctness bound, not a performance one: waiting out max_wait_ms would take 10 s.
    assert elapsed < 5, f"a min_bytes=0 fetch waited {elapsed:.1f} s"


def cli_into_closed_pipe(broker, signal_setup):
    """Runs `sluice topic describe` with its stdout a pipe whose reader is gone before it writes."""
    proc = subprocess.Popen([SLUICE, "topic", "describe", "pipes", "--bootstrap", broker.bootstrap],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=signal_setup)
    proc.stdout.close()
    stderr = proc.stderr.read().decode(errors="replace")
    return proc.wait(timeout=60), stderr


def test_cli_exits_quietly_when_its_output_pipe_closes(broker):
    create_topic(broker.bootstrap, "pipes", partitions=3)

    def blocked():
        signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGPIPE])

    def ignored():
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)

    # `| head` in a shell, and the same under a parent that blocks or ignores SIGPIPE (both are inherited).
    for setup in (None, blocked, ignored):
        code, stderr = cli_into_closed_pipe(broker, setup)
        assert "panicked" not in stderr, stderr
        assert stderr.strip() == "", stderr
        assert code in (0, -signal.SIGPIPE), (setup, code, stderr)
