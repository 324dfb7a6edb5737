"""The shard's request budget (`queued.max.request.bytes`): many connections sending large frames slowly do
not grow the broker's memory past the budget, and a well-behaved client is served once memory frees."""

import socket
import struct
import threading
import time

import pytest

from clients import ck_consume, ck_produce, create_topic

pytestmark = pytest.mark.sluice_only("Sluice's per-shard request budget: the tests read its RSS, its log lines and its "
                                     "refusal to start with a budget below one request, none of which Kafka has")

FRAME_BYTES = 4 << 20
BUDGET_BYTES = 8 << 20
HOSTILE = 40


def push(sockets, remaining, deadline, stop_at):
    """Sends on non-blocking sockets until each has `stop_at` bytes left or no progress is made for 1 s."""
    idle_since = time.time()
    while time.time() < deadline and time.time() - idle_since < 1.0:
        progressed = False
        for i, s in enumerate(sockets):
            if len(remaining[i]) <= stop_at:
                continue
            try:
                sent = s.send(remaining[i][: len(remaining[i]) - stop_at][:1 << 20])
            except BlockingIOError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                # The broker read the frame, found garbage and closed the connection.
                remaining[i] = b""
                continue
            remaining[i] = remaining[i][sent:]
            progressed = progressed or sent > 0
        if progressed:
            idle_since = time.time()
        else:
            time.sleep(0.01)


def test_large_slow_requests_stay_within_the_budget_and_a_normal_client_gets_through(make_broker):
    broker = make_broker(
        shards=1,
        extra_args=["--set", f"socket.request.max.bytes={FRAME_BYTES}", "--set", f"queued.max.request.bytes={BUDGET_BYTES}"],
    )
    create_topic(broker.bootstrap, "calm")
    ck_produce(broker.bootstrap, "calm", [{"value": b"warm-up"}])
    rss_before = broker.rss_kib()
    peak = [rss_before]
    sampling = threading.Event()

    def sample():
        while not sampling.is_set():
            peak[0] = max(peak[0], broker.rss_kib())
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    host, port = broker.bootstrap.split(":")
    hostile = []
    for _ in range(HOSTILE):
        s = socket.socket()
        # A small send buffer (no autotuning up to 4 MiB), so what the broker does not read stays unsent here.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 128 << 10)
        s.connect((host, int(port)))
        hostile.append(s)
    # Each declares a maximum-size Produce frame (garbage after the header) and sends all of it but the last
    # byte: without a budget the broker would hold 40 x 4 MiB of bodies.
    body = struct.pack(">hhih", 0, 3, 1, -1) + b"\xab" * (FRAME_BYTES - 10)
    remaining = [struct.pack(">i", len(body)) + body for _ in hostile]
    for s in hostile:
        s.setblocking(False)
    try:
        push(hostile, remaining, time.time() + 30, stop_at=1)
        held = sum(1 for r in remaining if len(r) == 1)
        assert held < HOSTILE, "every connection was read to its last byte: nothing held the readers back"
        grown = peak[0] - rss_before
        # Two 4 MiB bodies fit in the budget; the rest wait unread. Generous: a correctness bound.
        assert grown < 48 * 1024, f"RSS grew by {grown} KiB with a {BUDGET_BYTES >> 20} MiB budget"

        # A well-behaved producer, started while the budget is spent, is answered once memory frees.
        produced = {}

        def produce():
            try:
                ck_produce(broker.bootstrap, "calm", [{"value": b"served"}])
                produced["ok"] = True
            except Exception as error:  # reported below
                produced["error"] = error

        producer = threading.Thread(target=produce)
        producer.start()
        # The hostile clients finish their frames (which decode as garbage and close their connections),
        # and those still waiting get their turn one by one.
        push(hostile, remaining, time.time() + 60, stop_at=0)
        producer.join(90)
        assert produced.get("ok"), f"the producer was not served: {produced}"
        assert [m.value() for m in ck_consume(broker.bootstrap, "calm", [0], 2)] == [b"warm-up", b"served"]
    finally:
        sampling.set()
        sampler.join()
        for s in hostile:
            s.close()
    grown = peak[0] - rss_before
    assert grown < 64 * 1024, f"RSS grew by {grown} KiB with a {BUDGET_BYTES >> 20} MiB budget"
    assert broker.alive()
    assert "malformed request" in broker.log()


def test_a_budget_below_the_largest_request_is_refused_at_startup(tmp_path):
    from conftest import Broker

    broker = Broker(
        tmp_path / "data", 1, ["--set", "socket.request.max.bytes=2097152", "--set", "queued.max.request.bytes=1048576"]
    )
    try:
        broker.start()
        raise AssertionError("the broker started with a budget smaller than one request")
    except RuntimeError as error:
        assert "below socket.request.max.bytes" in str(error)
    finally:
        if broker.proc and broker.proc.poll() is None:
            broker.proc.kill()
            broker.proc.wait()


def test_a_sender_stalled_mid_frame_gives_its_budget_back_when_others_wait(make_broker):
    """Two clients start maximum-size frames that fill the budget and stop sending. Without a rule they would
    hold it until connections.max.idle.ms (10 minutes); while others wait, they are closed after 10 s."""
    broker = make_broker(
        shards=1,
        extra_args=["--set", f"socket.request.max.bytes={FRAME_BYTES}", "--set", f"queued.max.request.bytes={BUDGET_BYTES}"],
    )
    create_topic(broker.bootstrap, "calm")
    host, port = broker.bootstrap.split(":")
    stalled = [socket.create_connection((host, int(port))) for _ in range(2)]
    for s in stalled:
        s.sendall(struct.pack(">i", FRAME_BYTES) + struct.pack(">hhih", 0, 3, 1, -1) + b"\xab" * (1 << 20))
    time.sleep(0.5)
    # Served once the stalled senders are closed (the helper waits up to 60 s for delivery).
    ck_produce(broker.bootstrap, "calm", [{"value": b"served"}])
    # At least one was closed to make room; one whose budget nobody needs any more may stay.
    closed = 0
    for s in stalled:
        s.settimeout(1)
        try:
            closed += s.recv(1) == b""
        except TimeoutError:
            pass
        s.close()
    assert closed >= 1, "no stalled sender was closed"
    assert "while other connections waited for the request budget" in broker.log()
    assert [m.value() for m in ck_consume(broker.bootstrap, "calm", [0], 1)] == [b"served"]
