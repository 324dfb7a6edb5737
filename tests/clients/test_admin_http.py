"""The admin listener (`admin.listeners`): /metrics in the Prometheus text format, checked against what was
produced and consumed and by `promtool check metrics`; /health/live and /health/ready through start-up and
shutdown; and bad HTTP (garbage, a huge head, slow clients, too many connections, other methods) answered or
closed without the broker missing a beat on either port."""

import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from confluent_kafka import Producer

from clients import ck_consume, create_topic
from conftest import SLUICE, Broker, free_port

pytestmark = pytest.mark.sluice_only("the admin HTTP listener (/metrics, /health/*) is Sluice's own")

RECORDS = 20


def http(address, raw, timeout=10):
    """Sends raw bytes and returns everything the server answers until it closes."""
    host, port = address.split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.sendall(raw)
        chunks = []
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)


def get(address, path):
    """(status, body) of GET path."""
    answer = http(address, f"GET {path} HTTP/1.1\r\nHost: sluice\r\n\r\n".encode())
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1])
    return status, body.decode()


def metric(text, name, **labels):
    """The value of one series, or None."""
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        series, _, value = line.rpartition(" ")
        if series == (f"{name}{{{want}}}" if want else name):
            return float(value)
    return None


def stored_batch_bytes(data_dir, topic):
    """Bytes of the record batches in the topic's segment files, read from disk: each batch is 8 bytes of
    base offset, 4 of length and that many more; pre-written zeros past the log's end are not batches."""
    total = 0
    for segment in Path(data_dir).glob(f"{topic}-*/*.log"):
        data = segment.read_bytes()
        at = 0
        while at + 12 <= len(data):
            length = int.from_bytes(data[at + 8:at + 12], "big")
            if length == 0:
                break
            total += 12 + length
            at += 12 + length
    return total


def test_metrics_count_what_was_produced_and_consumed(broker):
    create_topic(broker.bootstrap, "metered", partitions=2)
    producer = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 0, "acks": "all",
                         "compression.type": "none"})
    errors = []
    for i in range(RECORDS):
        producer.produce("metered", value=f"value-{i}".encode() * 10, partition=i % 2,
                         on_delivery=lambda err, msg: err and errors.append(err))
        # One record per Produce request: each is delivered before the next is sent.
        assert producer.flush(30) == 0
    assert not errors, errors
    consumed = ck_consume(broker.bootstrap, "metered", [0, 1], RECORDS)
    assert len(consumed) == RECORDS

    status, text = get(broker.admin, "/metrics")
    assert status == 200
    stored = stored_batch_bytes(broker.data_dir, "metered")
    assert stored > RECORDS * 100
    assert metric(text, "sluice_bytes_in_total", topic="metered") == stored, text
    assert metric(text, "sluice_records_in_total", topic="metered") == RECORDS
    # The consumer read every batch at least once, and only from the beginning.
    bytes_out = metric(text, "sluice_bytes_out_total", topic="metered")
    assert bytes_out is not None and bytes_out >= stored
    assert metric(text, "sluice_requests_total", api="Produce") == RECORDS
    assert metric(text, "sluice_requests_total", api="Fetch") >= 1
    assert metric(text, "sluice_requests_total", api="CreateTopics") == 1
    assert metric(text, "sluice_request_latency_seconds_count", api="Produce") == RECORDS
    assert metric(text, "sluice_request_latency_seconds_bucket", le="+Inf", api="Produce") == RECORDS
    assert metric(text, "sluice_partitions_led") >= 2
    assert metric(text, "sluice_under_replicated_partitions") == 0
    ends = [metric(text, "sluice_log_end_offset", topic="metered", partition=p) for p in (0, 1)]
    assert ends == [RECORDS / 2, RECORDS / 2]
    assert metric(text, "sluice_process_resident_memory_bytes") > 1 << 20
    assert metric(text, "sluice_process_open_fds") > 0
    assert sum(metric(text, "sluice_connections", shard=s) or 0 for s in range(broker.shards)) >= 0
    assert "# EOF" not in text

    # A consumer caught up at the log end holds a long-poll Fetch on the broker almost all the time.
    from confluent_kafka import Consumer, TopicPartition
    waiting = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "unused", "fetch.wait.max.ms": 5000})
    waiting.assign([TopicPartition("metered", 0, RECORDS // 2)])
    try:
        assert waiting.poll(1.5) is None
        _, text = get(broker.admin, "/metrics")
        in_flight = [metric(text, "sluice_requests_in_flight", shard=s) for s in range(broker.shards)]
        assert sum(in_flight) >= 1, text
    finally:
        waiting.close()

    # Errors are counted by API and Kafka's name for them: a fetch past the log end.
    consumer_fetch_error = ck_offset_out_of_range(broker.bootstrap)
    _, text = get(broker.admin, "/metrics")
    assert consumer_fetch_error
    assert metric(text, "sluice_request_errors_total", api="Fetch", error="OFFSET_OUT_OF_RANGE") >= 1, text


def ck_offset_out_of_range(bootstrap):
    from confluent_kafka import Consumer, TopicPartition
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused", "enable.auto.commit": False,
                         "auto.offset.reset": "error"})
    consumer.assign([TopicPartition("metered", 0, 1000)])
    deadline = time.time() + 30
    try:
        while time.time() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error():
                return True
        return False
    finally:
        consumer.close()


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian's prometheus) not installed")
def test_promtool_accepts_the_exposition(broker):
    create_topic(broker.bootstrap, "linted", partitions=3)
    producer = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 0})
    producer.produce("linted", value=b"x")
    assert producer.flush(30) == 0
    # A SIGTERM within ~50 ms of creating a topic can race a checkpoint write of its new partitions and end in
    # an unclean shutdown, on main too (reported, not fixed here): let the new partitions settle.
    time.sleep(0.5)
    status, text = get(broker.admin, "/metrics")
    assert status == 200
    check = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
    assert check.returncode == 0, f"{check.stdout}{check.stderr}\n{text}"
    # Prometheus asks for OpenMetrics and gets it.
    answer = http(broker.admin, b"GET /metrics HTTP/1.1\r\nAccept: application/openmetrics-text;version=1.0.0\r\n\r\n")
    assert b"Content-Type: application/openmetrics-text" in answer and answer.endswith(b"# EOF\n")


def test_per_partition_series_can_be_turned_off(make_broker):
    b = make_broker(extra_args=("--set", "metrics.per.partition.enabled=false"))
    create_topic(b.bootstrap, "quiet", partitions=2)
    _, text = get(b.admin, "/metrics")
    assert "sluice_log_end_offset" not in text
    assert metric(text, "sluice_partitions_led") >= 2


def test_health_is_not_ready_while_the_broker_cannot_register(tmp_path):
    """A broker whose controller quorum is not there is live but not ready, and says why."""
    nobody = free_port()
    b = Broker(tmp_path / "data", 1, extra_args=(
        "--set", "process.roles=broker", "--set", "node.id=2",
        "--set", f"controller.quorum.voters=1@127.0.0.1:{nobody}"))
    b.data_dir.mkdir(parents=True)
    log = open(b.log_path, "ab")
    b.proc = subprocess.Popen(
        [SLUICE, "serve", "--listen", b.bootstrap, "--data-dir", str(b.data_dir),
         "--shards", "1", *b.extra_args], stdout=log, stderr=log)
    try:
        deadline = time.time() + 30
        answer = None
        while time.time() < deadline and answer is None:
            try:
                answer = get(b.admin, "/health/ready")
            except OSError:
                time.sleep(0.05)
        assert answer is not None, b.log()
        status, body = answer
        assert status == 503 and "not ready: broker is Starting" in body, body
        assert get(b.admin, "/health/live") == (200, "live\n")
        time.sleep(1)
        assert get(b.admin, "/health/ready")[0] == 503
    finally:
        b.proc.send_signal(signal.SIGTERM)
        try:
            b.proc.wait(30)
        except subprocess.TimeoutExpired:
            b.proc.kill()
            b.proc.wait()


def test_health_through_start_up_and_shutdown(tmp_path):
    b = Broker(tmp_path / "data", 2)
    b.data_dir.mkdir(parents=True)
    log = open(b.log_path, "ab")
    b.proc = subprocess.Popen(
        [SLUICE, "serve", "--listen", b.bootstrap, "--data-dir", str(b.data_dir),
         "--shards", "2", *b.extra_args], stdout=log, stderr=log)
    try:
        seen = []
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                status, body = get(b.admin, "/health/ready")
            except OSError:
                time.sleep(0.01)
                continue
            seen.append((status, body))
            if status == 200:
                break
            assert status == 503 and body.startswith("not ready: "), body
        assert seen and seen[-1] == (200, "ready\n"), (seen, b.log())
        # Ready means serving: the Kafka port answers at once.
        from confluent_kafka.admin import AdminClient
        assert AdminClient({"bootstrap.servers": b.bootstrap}).list_topics(timeout=10).brokers
        assert "ready to serve" in b.log()

        b.proc.send_signal(signal.SIGTERM)
        after = []
        while b.proc.poll() is None and len(after) < 10_000:
            try:
                after.append(get(b.admin, "/health/ready"))
            except OSError:
                break
        # Once asked to stop, the node never says it is ready again.
        first_not_ready = next((i for i, (status, _) in enumerate(after) if status == 503), len(after))
        assert all(status == 503 and body == "not ready: shutting down\n"
                   for status, body in after[first_not_ready:]), after
        assert all(status == 200 for status, _ in after[:first_not_ready])
        assert b.proc.wait(30) == 0, b.log()
    finally:
        if b.proc.poll() is None:
            b.proc.kill()
            b.proc.wait()


def test_bad_http_is_refused_and_both_ports_keep_serving(broker):
    admin = broker.admin
    # Garbage, a Kafka frame on the wrong port, and a request line that is not one.
    for garbage in (b"\x00\x00\x00\x10\x00\x12\x00\x03\x00\x00\x00\x01\x00\x00\r\n\r\n", b"hello\r\n\r\n",
                    b"GET /metrics HTTP/9\r\n\r\n"):
        assert http(admin, garbage).startswith(b"HTTP/1.1 400 Bad Request\r\n")
    # A head over 8 KiB gets 431 and the connection is closed, whether or not it ever ends.
    huge = b"GET /metrics HTTP/1.1\r\nX-Filler: " + b"a" * 20_000 + b"\r\n\r\n"
    try:
        assert http(admin, huge).startswith(b"HTTP/1.1 431 ")
    except ConnectionResetError:
        pass  # the server closed while the rest of the head was still arriving: also a refusal
    # Only GET; unknown paths are 404.
    answer = http(admin, b"POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc")
    assert answer.startswith(b"HTTP/1.1 405 Method Not Allowed\r\n") and b"Allow: GET\r\n" in answer
    assert http(admin, b"GET /nope HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 404 Not Found\r\n")

    # Slow clients: 64 connections that send half a head hold every slot; the 65th is closed unanswered; the
    # slow ones are closed after the read timeout (5 s), and the listener serves again.
    slow = []
    for _ in range(64):
        s = socket.create_connection(("127.0.0.1", broker.admin_port), timeout=20)
        s.sendall(b"GET /metr")
        slow.append(s)
    time.sleep(0.3)
    try:
        assert http(admin, b"GET /metrics HTTP/1.1\r\n\r\n", timeout=5) == b""
    except ConnectionResetError:
        pass
    # Kafka is not held up meanwhile.
    create_topic(broker.bootstrap, "while-slow", partitions=1)
    started = time.time()
    for s in slow:
        assert s.recv(100) == b""  # closed by the server, nothing answered
        s.close()
    assert time.time() - started < 15
    status, text = get(admin, "/metrics")
    assert status == 200 and metric(text, "sluice_requests_total", api="CreateTopics") >= 1
    producer = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 0})
    producer.produce("while-slow", value=b"still serving")
    assert producer.flush(30) == 0
    assert len(ck_consume(broker.bootstrap, "while-slow", [0], 1)) == 1
    assert get(admin, "/health/ready") == (200, "ready\n")
