"""Kafka Connect (org.apache.kafka:connect-runtime 4.4.0) in distributed mode moves a file through Sluice: a
worker (tools/kafka.sh connect-distributed) keeps its configs, source offsets and statuses in three compacted
topics on the broker; the test configures a file source and a file sink over Connect's REST API and waits
for the sink's file to equal the source's, then appends to the source file and waits again.

Kafka's own FileStreamSource and FileStreamSink (org.apache.kafka:connect-file) are not on Maven Central for
4.4.0, so the connectors are tests/java's sluice.connect.LineFileSource and LineFileSink, which do the same."""

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request

from confluent_kafka.admin import AdminClient, ConfigResource

from clients import ck_consume, create_topic
from conftest import assert_healthy_log, free_port
from jvm import INSTALL_HINT, KAFKA_SH, SCENARIOS_JAR

INTERNAL = {"configs": "sluice-connect-configs", "offsets": "sluice-connect-offsets",
            "status": "sluice-connect-status"}


def rest(port, method, path, body=None):
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        text = response.read()
        return response.status, json.loads(text) if text else None


def wait_for(what, check, timeout, log):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"{what}: not after {timeout} s; worker log:\n{log()[-6000:]}")


class Worker:
    """A Connect worker in distributed mode on a free REST port of 127.0.0.1."""

    def __init__(self, bootstrap, tmp_path):
        assert SCENARIOS_JAR.exists(), f"{SCENARIOS_JAR} is missing: {INSTALL_HINT}"
        self.port = free_port()
        self.log_path = tmp_path / "connect.log"
        properties = tmp_path / "worker.properties"
        properties.write_text("\n".join([
            f"bootstrap.servers={bootstrap}",
            "group.id=sluice-connect",
            "key.converter=org.apache.kafka.connect.storage.StringConverter",
            "value.converter=org.apache.kafka.connect.storage.StringConverter",
            f"config.storage.topic={INTERNAL['configs']}",
            f"offset.storage.topic={INTERNAL['offsets']}",
            f"status.storage.topic={INTERNAL['status']}",
            "config.storage.replication.factor=1",
            "offset.storage.replication.factor=1",
            "status.storage.replication.factor=1",
            "offset.storage.partitions=2",
            "status.storage.partitions=2",
            "offset.flush.interval.ms=500",
            f"listeners=http://127.0.0.1:{self.port}",
            "rest.advertised.host.name=127.0.0.1",
            # The connectors are in tests/java's jar, on the classpath, named in its META-INF/services.
            "plugin.discovery=service_load",
            "",
        ]))
        env = {**os.environ, "CLASSPATH": str(SCENARIOS_JAR), "KAFKA_HEAP_OPTS": "-Xmx512m",
               "KAFKA_JVM_PERFORMANCE_OPTS": "-XX:+UseSerialGC",
               "KAFKA_OPTS": "-Dorg.slf4j.simpleLogger.defaultLogLevel=info"}
        self.log_file = open(self.log_path, "wb")
        self.proc = subprocess.Popen([str(KAFKA_SH), "connect-distributed", str(properties)],
                                     stdout=self.log_file, stderr=subprocess.STDOUT, env=env)
        try:
            wait_for("Connect's REST API up", self.ready, 90, self.log)
        except BaseException:
            self.stop()
            raise

    def log(self):
        return self.log_path.read_text(errors="replace")

    def ready(self):
        assert self.proc.poll() is None, f"the worker exited with {self.proc.returncode}:\n{self.log()[-6000:]}"
        try:
            # The worker answers 200 on / before it has joined its group; /connectors waits for that.
            return rest(self.port, "GET", "/connectors")[0] == 200
        except (urllib.error.URLError, ConnectionError):
            return False

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log_file.close()


def connector_running(worker, name):
    try:
        status = rest(worker.port, "GET", f"/connectors/{name}/status")[1]
    except urllib.error.HTTPError:
        return False
    tasks = status["tasks"]
    failed = [t for t in tasks if t["state"] == "FAILED"]
    assert not failed, f"{name}: {failed}"
    return status["connector"]["state"] == "RUNNING" and [t["state"] for t in tasks] == ["RUNNING"]


def test_connect_distributed_moves_a_file_through_sluice(make_broker, tmp_path):
    broker = make_broker(shards=2, extra_args=["--set", "log.cleaner.backoff.ms=200"])
    # One partition, so the sink sees the lines in the order the source read them.
    create_topic(broker.bootstrap, "file-lines", partitions=1)
    source, sink = tmp_path / "in.txt", tmp_path / "out.txt"
    first = [f"line {i}: {'é' * (i % 7)}{'x' * (i % 300)}" for i in range(3000)] + [""]
    source.write_text("\n".join(first) + "\n", encoding="utf-8")

    worker = Worker(broker.bootstrap, tmp_path)
    try:
        assert rest(worker.port, "POST", "/connectors", {"name": "file-source", "config": {
            "connector.class": "sluice.connect.LineFileSource", "tasks.max": "1", "file": str(source),
            "topic": "file-lines"}})[0] == 201
        assert rest(worker.port, "POST", "/connectors", {"name": "file-sink", "config": {
            "connector.class": "sluice.connect.LineFileSink", "tasks.max": "1", "file": str(sink),
            "topics": "file-lines"}})[0] == 201
        for name in ("file-source", "file-sink"):
            wait_for(f"{name} RUNNING", lambda: connector_running(worker, name), 60, worker.log)
        assert sorted(rest(worker.port, "GET", "/connectors")[1]) == ["file-sink", "file-source"]

        def same():
            return sink.exists() and sink.read_bytes() == source.read_bytes()
        wait_for("the sink's file equals the source's", same, 60, worker.log)

        # The source tails its file: appended lines follow through the broker.
        with open(source, "a", encoding="utf-8") as f:
            f.write("".join(f"more {i}\n" for i in range(500)))
        wait_for("the appended lines in the sink's file", same, 60, worker.log)

        # The worker's own topics, created by Connect through Sluice, are compacted, and hold its state: the
        # two connectors' configs, and the source's offset (the byte position after the last line it sent).
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        resources = [ConfigResource(ConfigResource.Type.TOPIC, t) for t in INTERNAL.values()]
        for resource, future in admin.describe_configs(resources).items():
            assert future.result(30)["cleanup.policy"].value == "compact", resource
        wait_for("the source offset committed", lambda: committed_position(broker, source) == source.stat().st_size,
                 30, worker.log)
    finally:
        worker.stop()
    assert worker.proc.returncode in (0, 143), f"the worker exited with {worker.proc.returncode} on SIGTERM"
    assert_healthy_log(broker)


def committed_position(broker, source):
    """The source task's last offset in Connect's offset topic, read back from the broker."""
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    partitions = admin.list_topics(INTERNAL["offsets"], timeout=10).topics[INTERNAL["offsets"]].partitions
    records = ck_consume(broker.bootstrap, INTERNAL["offsets"], list(partitions), 10**9, timeout=2)
    position = None
    for msg in records:
        key = json.loads(msg.key())
        if key == ["file-source", {"file": str(source)}] and msg.value() is not None:
            position = json.loads(msg.value())["position"]
    return position
