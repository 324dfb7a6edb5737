"""Fixtures for the end-to-end client tests: a real `sluice serve` process per test, on a free loopback port
and a fresh data directory, run with --shards 1 and --shards 2.

With SLUICE_TEST_TARGET=kafka the same tests run against Apache Kafka instead (kafka_peer.py): one Kafka node
per test, and the tests marked @pytest.mark.sluice_only("why") are skipped with that reason."""

import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from target import ON_KAFKA, register_marker, skip_sluice_only

ROOT = Path(__file__).resolve().parents[2]
SLUICE = os.environ.get("SLUICE_BIN", str(ROOT / "target" / "release" / "sluice"))
# The shard counts a test runs with. Kafka has no shards: one run.
SHARDS = [1] if ON_KAFKA else [1, 2]
SHARD_IDS = ["kafka"] if ON_KAFKA else ["shards1", "shards2"]


def pytest_configure(config):
    register_marker(config)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    def __init__(self, data_dir, shards, extra_args=()):
        self.data_dir = Path(data_dir)
        self.shards = shards
        self.port = free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.extra_args = list(extra_args)
        # The admin listener (/metrics, /health/*) on a free port of its own: the default, 9644, is one per host.
        self.admin_port = free_port()
        self.admin = f"127.0.0.1:{self.admin_port}"
        if not any("admin.listeners" in arg for arg in self.extra_args):
            self.extra_args += ["--set", f"admin.listeners=127.0.0.1:{self.admin_port}"]
        self.proc = None
        self.log_path = self.data_dir.parent / f"broker-{self.port}.log"

    def ready_count(self):
        return self.log().count("ready to serve")

    def start(self):
        self.data_dir.mkdir(parents=True, exist_ok=True)
        ready_before = self.ready_count()
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [SLUICE, "serve", "--listen", self.bootstrap, "--data-dir", str(self.data_dir),
             "--shards", str(self.shards), *self.extra_args],
            stdout=log, stderr=log, env={**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "info")},
        )
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                sockets = subprocess.run(["ss", "-tanp"], capture_output=True, text=True).stdout
                holders = "\n".join(line for line in sockets.splitlines() if f":{self.port} " in line)
                raise RuntimeError(f"broker exited at start:\n{self.log()}\nsockets on the port:\n{holders}")
            if self.ready_count() > ready_before:
                return self
            time.sleep(0.05)
        raise RuntimeError(f"broker not ready after 60 s:\n{self.log()}")

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self, timeout=30):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"broker did not stop within {timeout} s on SIGTERM")
        return self.proc.returncode if self.proc else None

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def restart(self):
        return self.start()

    def rss_kib(self):
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        return int(re.search(r"VmRSS:\s+(\d+)", status).group(1))

    def alive(self):
        return self.proc.poll() is None


def assert_healthy_log(b):
    """Bugs show in the log even when a client copes: a handler that could not encode, or a panic. (Sluice's log
    lines: nothing to check on Kafka.)"""
    if ON_KAFKA:
        return
    log = b.log()
    for bad in ("response encoding failed", "panicked", "shard stopped with an error"):
        assert bad not in log, f"broker log contains '{bad}':\n{log[-4000:]}"


def new_broker(path, shards, extra_args=()):
    """A broker that is not started yet: `sluice serve`, or a Kafka node with SLUICE_TEST_TARGET=kafka."""
    if ON_KAFKA:
        from kafka_peer import KafkaBroker
        return KafkaBroker(path, extra_args)
    return Broker(path, shards, extra_args)


def clean_shutdown_marked(b):
    """Sluice leaves .clean-shutdown in its data dir after a clean stop; Kafka's equivalent is its own
    .kafka_cleanshutdown file in each log dir."""
    return (b.data_dir / (".kafka_cleanshutdown" if ON_KAFKA else ".clean-shutdown")).exists()


# Modules whose tests run on a one-shard broker as well as on two shards. The rest run on two shards only,
# where requests cross shards (the harder path), so that the README's test command stays under 30 minutes on
# two cores. SLUICE_TEST_ALL_SHARDS=1 runs every test on both.
BOTH_SHARD_COUNTS = {"test_produce_consume", "test_offsets_and_idempotence", "test_fetch_limits", "test_bad_input",
                     "test_hostile_clients", "test_crash"}


def pytest_collection_modifyitems(config, items):
    if ON_KAFKA:
        skip_sluice_only(items)
        return
    if os.environ.get("SLUICE_TEST_ALL_SHARDS"):
        return
    dropped = [item for item in items
               if getattr(item, "callspec", None) is not None
               and 1 in (item.callspec.params.get("broker"), item.callspec.params.get("group_broker"))
               and item.module.__name__ not in BOTH_SHARD_COUNTS]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if item not in dropped]


@pytest.fixture(params=SHARDS, ids=SHARD_IDS)
def broker(request, tmp_path):
    b = new_broker(tmp_path / "data", request.param).start()
    yield b
    code = b.stop()
    assert code == 0, f"broker exited with {code} on SIGTERM:\n{b.log()[-4000:]}"
    assert_healthy_log(b)
    assert clean_shutdown_marked(b), "no clean-shutdown marker after SIGTERM"


@pytest.fixture
def make_broker(tmp_path):
    """For tests that need special flags or several restarts."""
    brokers = []

    def make(shards=1, extra_args=(), name="data"):
        b = new_broker(tmp_path / name, shards, extra_args)
        brokers.append(b)
        return b.start()

    yield make
    for b in brokers:
        if b.proc and b.proc.poll() is None:
            b.proc.kill()
            b.proc.wait()


def sluice(*args, input=None, check=True, timeout=60):
    """Runs the sluice CLI and returns the completed process."""
    return subprocess.run([SLUICE, *args], input=input, capture_output=True, text=True, check=check, timeout=timeout)
