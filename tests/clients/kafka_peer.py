"""Apache Kafka as the broker under the client tests: with SLUICE_TEST_TARGET=kafka, conftest.py's fixtures start
a single Kafka 4.x node (KRaft combined mode, perf/kafka.sh) where they would start `sluice serve`, so every
test that passes on Sluice is checked against the reference broker as well (issue 17).

A test that fails on Kafka is a wrong test, unless Sluice is deliberately stricter there; then the test says
so with @pytest.mark.sluice_only("why"), as do tests of what only Sluice has (its admin HTTP port, its log
lines, its data directory's files, its configuration).

KafkaBroker offers the subset of conftest.Broker that tests use: bootstrap, port, data_dir, start, stop,
kill9, restart, rss_kib, alive and log."""

import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
KAFKA_SH = ROOT / "perf" / "kafka.sh"
# The tests start one broker each, so a smaller heap than the stock 1 GiB, and no fixed minimum.
HEAP = os.environ.get("SLUICE_TEST_KAFKA_HEAP", "-Xmx512m")
STARTED = "Kafka Server started"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def broker_settings(extra_args):
    """The KEY=VALUE pairs of a `sluice serve` command line's `--set KEY=VALUE` flags: Sluice's settings carry
    Kafka's names, so Kafka takes them as they are. Any other flag has no Kafka meaning, and a test that
    passes one is Sluice only."""
    args = list(extra_args)
    settings = []
    while args:
        flag = args.pop(0)
        if flag != "--set" or not args:
            raise ValueError(f"flag {flag!r} has no Kafka equivalent: mark the test sluice_only")
        settings.append(args.pop(0))
    # Kafka refuses a KIP-848 heartbeat interval or session timeout below its group.consumer.min.* bounds
    # (5 s and 45 s); Sluice has no such bounds. A test that asks for shorter ones gets the bounds lowered too.
    for key in ("heartbeat.interval.ms", "session.timeout.ms"):
        for kv in list(settings):
            if kv.startswith(f"group.consumer.{key}="):
                settings.append(f"group.consumer.min.{key}={kv.split('=', 1)[1]}")
    return settings


class KafkaBroker:
    def __init__(self, home, extra_args=()):
        self.home = Path(home)
        self.data_dir = self.home / "node-1" / "data"
        self.port = free_port()
        self.controller_port = free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.settings = broker_settings(extra_args)
        self.proc = None
        self.log_path = self.home / "node-1" / "server.log"
        self.stdout_path = self.home / "kafka-stdout.log"

    def ready_count(self):
        return self.log().count(STARTED)

    def start(self):
        self.home.mkdir(parents=True, exist_ok=True)
        ready_before = self.ready_count()
        sets = [arg for kv in self.settings for arg in ("--set", kv)]
        with open(self.stdout_path, "ab") as out:
            # perf/kafka.sh formats the data dir when it is empty, then execs the JVM: proc is the broker itself.
            self.proc = subprocess.Popen(
                [str(KAFKA_SH), "node", "--node-id", "0", "--dir", str(self.home), "--port", str(self.port),
                 "--controller-port", str(self.controller_port), "--heap", HEAP, *sets],
                stdout=out, stderr=out)
        deadline = time.time() + 120
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"kafka exited at start ({self.proc.returncode}):\n{self.stdout()[-4000:]}\n"
                                   f"{self.log()[-4000:]}")
            if self.ready_count() > ready_before and self.accepts():
                return self
            time.sleep(0.1)
        self.proc.kill()
        raise RuntimeError(f"kafka not ready after 120 s:\n{self.log()[-4000:]}")

    def accepts(self):
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            return True
        except OSError:
            return False

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stdout(self):
        try:
            return self.stdout_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self, timeout=60):
        """SIGTERM and wait. The JVM runs Kafka's shutdown hook and then exits with 143 (128 + SIGTERM), which is
        its clean stop: reported as 0, like Sluice's."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"kafka did not stop within {timeout} s on SIGTERM")
        if self.proc is None:
            return None
        code = self.proc.returncode
        return 0 if code == 128 + signal.SIGTERM else code

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
