"""A real Prometheus server scrapes a running broker's admin listener every second, and PromQL through its HTTP
API gives back what was done to the broker: the bytes produced (exactly, as a counter's growth, and as a rate
consistent with it) and a consumer group's lag after a partial consume and commit (exactly: produced minus
committed). The Grafana dashboard (docs/grafana/sluice.json) is checked against the same: every metric it names
is on a live /metrics, and every query it runs is PromQL this Prometheus accepts. Prometheus runs from Debian's package (scripts/install-test-tools.sh) on a free port with its
storage in the test's temporary directory, and is killed at the end whatever happens."""

import json
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from clients import create_topic
from conftest import free_port
from test_admin_http import get, metric, stored_batch_bytes
from test_observability import commit

PROMETHEUS = shutil.which("prometheus")
pytestmark = [pytest.mark.skipif(PROMETHEUS is None, reason="prometheus (Debian's package) not installed"),
              pytest.mark.sluice_only("it scrapes the admin listener's /metrics, which is Sluice's own")]

TOPIC = "scraped"
RECORDS = 400
VALUE_BYTES = 1000
CONSUMED = 150
GROUP = "scraped-readers"


class Prometheus:
    """A Prometheus server scraping one target every second."""

    def __init__(self, tmp_path, target):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.dir = tmp_path / "prometheus"
        self.dir.mkdir()
        config = self.dir / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n"
            "scrape_configs:\n  - job_name: sluice\n    static_configs:\n"
            f"      - targets: ['{target}']\n")
        self.log_path = self.dir / "prometheus.log"
        self.proc = subprocess.Popen(
            [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={self.dir / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--storage.tsdb.retention.time=1h"],
            stdout=open(self.log_path, "wb"), stderr=subprocess.STDOUT)

    def log(self):
        return self.log_path.read_text(errors="replace")[-4000:]

    def wait_ready(self, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            assert self.proc.poll() is None, f"prometheus exited:\n{self.log()}"
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as answer:
                    if answer.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError):
                pass
            time.sleep(0.2)
        raise AssertionError(f"prometheus not ready after {timeout} s:\n{self.log()}")

    def query(self, promql, at=None):
        """The instant vector of `promql`: a list of (labels, value)."""
        params = {"query": promql}
        if at is not None:
            params["time"] = f"{at:.3f}"
        with urllib.request.urlopen(f"{self.url}/api/v1/query?{urllib.parse.urlencode(params)}", timeout=10) as a:
            answer = json.load(a)
        assert answer["status"] == "success", answer
        return [(series["metric"], float(series["value"][1])) for series in answer["data"]["result"]]

    def scalar(self, promql, at=None):
        """The one value of `promql`, or None when the vector is empty."""
        result = self.query(promql, at)
        assert len(result) <= 1, result
        return result[0][1] if result else None

    def wait_for(self, promql, predicate, timeout=30):
        """Polls `promql` until its value satisfies `predicate`; returns (value, time it was seen)."""
        deadline = time.time() + timeout
        value = None
        while time.time() < deadline:
            value = self.scalar(promql)
            if value is not None and predicate(value):
                return value, time.time()
            time.sleep(0.25)
        raise AssertionError(f"{promql} = {value} after {timeout} s\n{self.log()}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def prometheus_for(tmp_path):
    started = []

    def start(broker):
        server = Prometheus(tmp_path, broker.admin)
        started.append(server)
        server.wait_ready()
        return server

    yield start
    for server in started:
        server.stop()


def produce(bootstrap, count, value_bytes):
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "acks": "all", "compression.type": "none"})
    errors = []
    for i in range(count):
        producer.produce(TOPIC, value=bytes([65 + i % 26]) * value_bytes, partition=i % 2,
                         on_delivery=lambda err, msg: err and errors.append(err))
    assert producer.flush(60) == 0
    assert not errors, errors


def consume_and_commit(bootstrap, count):
    """Consumes `count` records with the group and commits exactly past them; returns the committed offsets."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": GROUP, "enable.auto.commit": False,
                         "auto.offset.reset": "earliest"})
    consumer.subscribe([TOPIC])
    next_offsets = {}
    deadline = time.time() + 60
    try:
        while len_consumed(next_offsets) < count and time.time() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            next_offsets[msg.partition()] = msg.offset() + 1
            if len_consumed(next_offsets) == count:
                break
        assert len_consumed(next_offsets) == count, next_offsets
        # A partition the consumer has not reached yet is committed at 0, so every partition has a lag.
        next_offsets = {p: next_offsets.get(p, 0) for p in (0, 1)}
        commit(consumer, [TopicPartition(TOPIC, p, o) for p, o in next_offsets.items()])
    finally:
        consumer.close()
    return next_offsets


def len_consumed(next_offsets):
    # Each partition is read from offset 0 in order, so its next offset is how many of its records were read.
    return sum(next_offsets.values())


def test_prometheus_scrapes_bytes_in_and_consumer_lag(make_broker, prometheus_for):
    broker = make_broker(shards=2)
    prometheus = prometheus_for(broker)
    prometheus.wait_for('up{job="sluice"}', lambda up: up == 1)

    create_topic(broker.bootstrap, TOPIC, partitions=2)
    # One record first, so the counter's series exists and is scraped before the load: a counter born with
    # the whole load in it would show no growth.
    produce(broker.bootstrap, 1, VALUE_BYTES)
    _, text = get(broker.admin, "/metrics")
    before = metric(text, "sluice_bytes_in_total", topic=TOPIC)
    assert before and before > VALUE_BYTES
    series = f'sluice_bytes_in_total{{job="sluice",topic="{TOPIC}"}}'
    _, scraped_before = prometheus.wait_for(series, lambda v: v == before)

    produce(broker.bootstrap, RECORDS, VALUE_BYTES)
    stored = stored_batch_bytes(broker.data_dir, TOPIC)
    load = stored - before
    assert load > RECORDS * VALUE_BYTES
    _, scraped_after = prometheus.wait_for(series, lambda v: v == stored)

    # Exactly the load, as the counter's growth over a window that holds a sample before and after it.
    window = int(scraped_after - scraped_before) + 5
    growth = prometheus.scalar(f"max_over_time({series}[{window}s]) - min_over_time({series}[{window}s])")
    assert growth == load
    # The rate agrees: increase() is the rate times the window, extrapolated to the window's edges by at most a
    # scrape interval or so, and never below the real growth since the window holds both samples.
    rate = prometheus.scalar(f"rate({series}[{window}s])")
    assert rate > 0
    assert load * 0.99 <= rate * window <= load * 1.5, (rate, window, load)

    committed = consume_and_commit(broker.bootstrap, CONSUMED)
    produced = RECORDS + 1
    lag = f'sum(sluice_consumer_group_lag_records{{job="sluice",group="{GROUP}",topic="{TOPIC}"}})'
    prometheus.wait_for(lag, lambda value: value == produced - CONSUMED)
    for partition, offset in committed.items():
        labels = f'group="{GROUP}",topic="{TOPIC}",partition="{partition}"'
        assert prometheus.scalar(f"sluice_consumer_group_committed_offset{{{labels}}}") == offset
    # The consumer left: its group is empty, and says so.
    prometheus.wait_for(f'sluice_consumer_group_state{{group="{GROUP}",state="Empty"}}', lambda v: v == 1)
    assert prometheus.scalar(f'sluice_consumer_group_state{{group="{GROUP}",state="Stable"}}') == 0


DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana" / "sluice.json"


def dashboard_queries():
    """Every PromQL expression of the Grafana dashboard: its panels' targets and its variables' queries."""
    dashboard = json.loads(DASHBOARD.read_text())
    queries = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            queries.append(variable["definition"])
    return queries


def test_the_grafana_dashboard_names_only_live_metrics_and_its_queries_run(make_broker, prometheus_for):
    broker = make_broker(shards=2)
    create_topic(broker.bootstrap, TOPIC, partitions=2)
    produce(broker.bootstrap, 20, 100)
    consume_and_commit(broker.bootstrap, 5)
    with pytest.raises(KafkaException):  # an error code, for the error panels' series
        create_topic(broker.bootstrap, TOPIC, partitions=2)
    _, text = get(broker.admin, "/metrics")
    live = {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and not line.startswith("#")}

    queries = dashboard_queries()
    assert len(queries) > 20
    named = {name for query in queries for name in re.findall(r"\bsluice_[a-z0-9_]+", query)}
    assert named >= {"sluice_bytes_in_total", "sluice_consumer_group_lag_records",
                     "sluice_request_latency_seconds_bucket", "sluice_under_replicated_partitions"}
    missing = sorted(named - live)
    assert not missing, f"the dashboard names metrics /metrics does not have: {missing}"

    # Each query, with Grafana's variables filled in, is PromQL Prometheus accepts; the main ones have data.
    prometheus = prometheus_for(broker)
    prometheus.wait_for('up{job="sluice"}', lambda up: up == 1)
    time.sleep(3)  # a few scrapes, so rates have two samples
    for query in queries:
        promql = query.replace("$__rate_interval", "10s").replace("$instance", ".*")
        if promql.startswith("label_values("):
            metric_name, label = re.match(r"label_values\((\w+), (\w+)\)", promql).groups()
            promql = f"count by ({label}) ({metric_name})"
        prometheus.query(promql)
    assert prometheus.query(next(q for q in queries if "consumer_group_lag" in q).replace("$instance", ".*"))
    bytes_in = next(q for q in queries if "sluice_bytes_in_total" in q)
    assert prometheus.query(bytes_in.replace("$__rate_interval", "10s").replace("$instance", ".*"))
