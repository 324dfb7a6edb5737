"""What an operator sees besides the metrics' basics (test_admin_http.py): error codes counted for every API,
consumer group lag and state on /metrics, produce stages, fsyncs, group commit and the cleaner's progress, the
slow-request log and its live threshold, request spans, and JSON log lines."""

import json
import os
import subprocess
import time

import pytest
from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic

from clients import ck_produce, create_topic
from conftest import SLUICE, Broker
from test_admin_http import get, metric

pytestmark = pytest.mark.sluice_only("the admin HTTP listener, the logs and `sluice top` are Sluice's own")


def commit(consumer, offsets):
    """Commits `offsets` synchronously, retrying (bounded) while a just-created group's coordinator moves in
    (NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS: librdkafka reports these to a manual commit)."""
    for attempt in range(20):
        try:
            return consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as error:
            if error.args[0].name() not in ("NOT_COORDINATOR", "COORDINATOR_LOAD_IN_PROGRESS",
                                            "COORDINATOR_NOT_AVAILABLE") or attempt == 19:
                raise
            time.sleep(0.25)


def test_error_codes_are_counted_for_every_api(broker):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    create_topic(broker.bootstrap, "twice", partitions=1)
    futures = admin.create_topics([NewTopic("twice", 1, 1)])
    try:
        futures["twice"].result(30)
        raise AssertionError("a second CreateTopics of one name succeeded")
    except KafkaException as error:
        assert "TOPIC_ALREADY_EXISTS" in str(error) or error.args[0].name() == "TOPIC_ALREADY_EXISTS"
    # DeleteTopics of a topic that does not exist, and DescribeConfigs of one.
    try:
        admin.delete_topics(["never-was"])["never-was"].result(30)
        raise AssertionError("deleting a missing topic succeeded")
    except KafkaException:
        pass
    _, text = get(broker.admin, "/metrics")
    assert metric(text, "sluice_request_errors_total", api="CreateTopics", error="TOPIC_ALREADY_EXISTS") == 1, text
    assert metric(text, "sluice_request_errors_total", api="DeleteTopics", error="UNKNOWN_TOPIC_OR_PARTITION") == 1
    # Answers without an error count nothing: one CreateTopics succeeded and shows no error line of its own.
    assert metric(text, "sluice_requests_total", api="CreateTopics") == 2
    assert not [line for line in text.splitlines() if 'error="NONE"' in line or 'error="CODE_0"' in line]


def test_consumer_group_lag_and_state_on_metrics(broker):
    create_topic(broker.bootstrap, "lagging", partitions=3)
    ck_produce(broker.bootstrap, "lagging", [{"value": b"v%d" % i, "partition": i % 3} for i in range(30)])
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "laggards",
                         "enable.auto.commit": False})
    try:
        commit(consumer, [TopicPartition("lagging", 0, 4), TopicPartition("lagging", 1, 10)])
    finally:
        consumer.close()
    _, text = get(broker.admin, "/metrics")
    lag = lambda p: metric(text, "sluice_consumer_group_lag_records", group="laggards", topic="lagging", partition=p)
    assert (lag(0), lag(1), lag(2)) == (6, 0, None), text
    assert metric(text, "sluice_consumer_group_committed_offset", group="laggards", topic="lagging",
                  partition=0) == 4
    assert metric(text, "sluice_consumer_group_state", group="laggards", state="Empty") == 1
    assert metric(text, "sluice_consumer_group_members", group="laggards") == 0

    # A live member makes the group Stable, and its lag follows new records.
    live = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "laggards", "enable.auto.commit": False})
    live.subscribe(["lagging"])
    try:
        deadline = time.time() + 30
        while time.time() < deadline:
            live.poll(0.2)
            _, text = get(broker.admin, "/metrics")
            if metric(text, "sluice_consumer_group_state", group="laggards", state="Stable") == 1:
                break
        assert metric(text, "sluice_consumer_group_state", group="laggards", state="Stable") == 1, text
        assert metric(text, "sluice_consumer_group_members", group="laggards") == 1
        ck_produce(broker.bootstrap, "lagging", [{"value": b"more", "partition": 1}] * 5)
        _, text = get(broker.admin, "/metrics")
        assert lag(1) == 5
    finally:
        live.close()


def set_broker_config(bootstrap, key, value):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    res = ConfigResource(ConfigResource.Type.BROKER, "0", incremental_configs=[
        ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET)])
    admin.incremental_alter_configs([res])[res].result(30)


def test_slow_requests_are_logged_with_their_timings_and_the_threshold_changes_live(make_broker):
    # 1 ms: creating a topic of 50 partitions (a controller commit, 50 directories and their files) takes longer.
    b = make_broker(shards=2, extra_args=("--set", "log.slow.request.ms=1"))
    create_topic(b.bootstrap, "wide", partitions=50)
    slow = [line for line in b.log().splitlines() if "slow request" in line and "CreateTopics" in line]
    assert slow, b.log()[-3000:]
    line = slow[0]
    for field in ("version=", "correlation_id=", "client_id=", "queue_ms=", "handle_ms=", "total_ms="):
        assert field in line, line
    assert "WARN" in line
    _, text = get(b.admin, "/metrics")
    assert metric(text, "sluice_slow_requests_total", api="CreateTopics") >= 1

    # 0 turns it off, at once, on every shard.
    set_broker_config(b.bootstrap, "log.slow.request.ms", "0")
    before = b.log().count("slow request")
    create_topic(b.bootstrap, "wide2", partitions=50)
    time.sleep(0.2)
    assert b.log().count("slow request") == before, b.log()[-3000:]
    set_broker_config(b.bootstrap, "log.slow.request.ms", "1")
    create_topic(b.bootstrap, "wide3", partitions=50)
    assert b.log().count("slow request") > before


def test_json_logs_carry_request_spans(tmp_path):
    """SLUICE_LOG_FORMAT=json makes every line a JSON object; RUST_LOG still filters, and with the request spans
    on (debug for sluice_net::server) a request's lines carry its span: API, version, client id, correlation
    id."""
    b = Broker(tmp_path / "data", 1)
    b.data_dir.mkdir(parents=True)
    env = {**os.environ, "SLUICE_LOG_FORMAT": "json", "RUST_LOG": "info,sluice_net::server=debug"}
    b.proc = subprocess.Popen(
        [SLUICE, "serve", "--listen", b.bootstrap, "--data-dir", str(b.data_dir), "--shards", "1",
         "--set", "log.slow.request.ms=1", *b.extra_args],
        stdout=open(b.log_path, "ab"), stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.time() + 60
        while "ready to serve" not in b.log() and time.time() < deadline:
            assert b.proc.poll() is None, b.log()
            time.sleep(0.05)
        create_topic(b.bootstrap, "json-wide", partitions=50)
        time.sleep(0.3)
    finally:
        b.proc.terminate()
        assert b.proc.wait(30) == 0
    lines = [line for line in b.log().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line is JSON
    assert any(r["fields"].get("message") == "sluice is ready to serve" for r in records), lines[:5]
    # Over 1 ms: the 50-partition CreateTopics always is; on a busy machine an ApiVersions may be too.
    slow = [r for r in records if r["fields"].get("message") == "slow request"
            and r["fields"].get("api") == "CreateTopics"]
    assert slow and slow[0]["level"] == "WARN", [r for r in records if r["fields"].get("message") == "slow request"]
    assert {"queue_ms", "handle_ms", "total_ms", "correlation_id", "client_id"} <= set(slow[0]["fields"])
    # The slow-request line is logged in its request's span.
    span = slow[0].get("span", {})
    assert span.get("name") == "request" and span.get("api") == "CreateTopics", slow[0]
    assert {"version", "correlation_id", "client_id"} <= set(span), span
    # RUST_LOG still filters: nothing at debug from elsewhere.
    assert not [r for r in records if r["level"] == "DEBUG" and not r["target"].startswith("sluice_net::server")]


def test_a_bad_log_format_is_refused():
    run = subprocess.run([SLUICE, "topic", "list"], env={**os.environ, "SLUICE_LOG_FORMAT": "xml"},
                         capture_output=True, text=True, timeout=30)
    assert run.returncode == 2 and "SLUICE_LOG_FORMAT=xml" in run.stderr
    run = subprocess.run([SLUICE, "--log-format", "xml", "topic", "list"], capture_output=True, text=True,
                         timeout=30)
    assert run.returncode != 0 and "xml" in run.stderr


def test_sluice_top_once_draws_topics_latency_replication_and_lag(broker):
    create_topic(broker.bootstrap, "topped", partitions=2)
    create_topic(broker.bootstrap, "read", partitions=2)
    ck_produce(broker.bootstrap, "read", [{"value": b"x" * 200, "partition": i % 2} for i in range(40)])
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "top-readers", "enable.auto.commit": False})
    try:
        commit(consumer, [TopicPartition("read", 0, 5), TopicPartition("read", 1, 5)])
    finally:
        consumer.close()
    # Load during the frame's interval, so the topic has a rate.
    producer = subprocess.Popen(
        [SLUICE, "bench", "produce", "--bootstrap", broker.bootstrap, "--topic", "topped", "--duration", "4",
         "--rate", "2000", "--record-size", "100"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1)
        run = subprocess.run([SLUICE, "top", "--once", "--interval", "1", "--admin", broker.admin],
                             capture_output=True, text=True, timeout=30)
    finally:
        producer.wait(60)
    assert run.returncode == 0, run.stderr
    frame = run.stdout
    assert "under-replicated 0" in frame, frame
    lines = frame.splitlines()
    topic = next(line for line in lines if line.startswith("topped "))
    assert float(topic.split()[1]) > 0, frame  # bytes in per second
    produce_row = next(line for line in lines if line.startswith("Produce "))
    assert produce_row.split()[3] != "-", frame  # a p50 latency from the histogram
    group = next(line for line in lines if line.startswith("top-readers "))
    assert group.split()[1:] == ["30", "Empty"], frame

    # A broker that does not answer is an error, not a hang.
    bad = subprocess.run([SLUICE, "top", "--once", "--admin", "127.0.0.1:1"], capture_output=True, text=True,
                         timeout=30)
    assert bad.returncode != 0 and "127.0.0.1:1" in bad.stderr


def test_produce_stages_fsync_group_commit_and_cleaner_progress_on_metrics(make_broker):
    broker = make_broker(shards=1, extra_args=["--set", "log.cleaner.backoff.ms=100"])
    create_topic(broker.bootstrap, "staged", partitions=2)
    ck_produce(broker.bootstrap, "staged", [{"value": b"v%d" % i, "partition": i % 2} for i in range(200)],
               acks="all")
    _, text = get(broker.admin, "/metrics")
    count = lambda name, **labels: metric(text, name + "_count", **labels) or 0
    appended = count("sluice_produce_stage_seconds", stage="append")
    assert appended >= 1, text
    # Every partition write that appended waited for its fsync, then for the high watermark (acks=all).
    assert count("sluice_produce_stage_seconds", stage="fsync") == appended
    assert count("sluice_produce_stage_seconds", stage="replication") == appended
    assert count("sluice_produce_stage_seconds", stage="queue") >= appended
    # The default flush policy is `always`: group commit fsynced those appends, several per round at most.
    fsyncs = count("sluice_log_fsync_seconds")
    assert fsyncs >= 1, text
    assert metric(text, "sluice_group_commit_logs_sum") >= fsyncs
    assert metric(text, "sluice_group_commit_appends_sum") >= appended
    assert metric(text, "sluice_log_fsync_seconds_bucket", le="+Inf") == fsyncs
    assert metric(text, "sluice_cleaner_passes_total") == 0

    create_topic(broker.bootstrap, "table", config={"cleanup.policy": "compact", "segment.bytes": "16384",
                                                   "min.cleanable.dirty.ratio": "0.01"})
    # Small batches: one 200 KB batch would fill the active segment alone, and the active segment is never cleaned.
    ck_produce(broker.bootstrap, "table", [{"key": b"k%d" % (i % 10), "value": b"x" * 200} for i in range(1000)],
               **{"batch.size": 4096})
    deadline = time.time() + 30
    while time.time() < deadline:
        _, text = get(broker.admin, "/metrics")
        if (metric(text, "sluice_cleaner_passes_total") or 0) >= 1:
            break
        time.sleep(0.2)
    assert metric(text, "sluice_cleaner_passes_total") >= 1, text
    assert metric(text, "sluice_cleaner_read_bytes_total") > 0
    assert metric(text, "sluice_cleaner_records_removed_total") > 0
    assert metric(text, "sluice_cleaner_pass_seconds_count") == metric(text, "sluice_cleaner_passes_total")
    assert metric(text, "sluice_cleaner_uncleanable_logs") == 0
    assert 0 <= metric(text, "sluice_cleaner_max_dirty_ratio") <= 1
