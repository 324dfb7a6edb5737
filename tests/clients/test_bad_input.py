"""Garbage bytes, a truncated frame, a frame declaring 2 GiB, the 8-byte Metadata frame that once made a Rust
decoder ask for 3.6 GiB, an i32::MAX array length and an unknown API key: the broker survives, its RSS does
not jump, the right thing comes back (UNSUPPORTED_VERSION or a closed connection), and a normal client still
works."""

import socket
import struct
import time

import pytest

from clients import ck_consume, ck_produce, create_topic
from conftest import ON_KAFKA


def send_raw(broker, payload, read=True, timeout=3.0):
    """Sends bytes on a fresh connection; returns what came back before the broker closed it or `timeout`."""
    host, port = broker.bootstrap.split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.sendall(payload)
        if not read:
            return b""
        s.shutdown(socket.SHUT_WR)
        chunks = []
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        except socket.timeout:
            pass
        return b"".join(chunks)


def header(api_key, version, correlation_id):
    return struct.pack(">hhih", api_key, version, correlation_id, -1)


def frame(body):
    return struct.pack(">i", len(body)) + body


@pytest.mark.sluice_only("Apache Kafka closes the connection on an unknown API key or an unadvertised version of "
                         "a known one; Sluice answers UNSUPPORTED_VERSION, deliberately, so a client learns why")
def test_unknown_api_key_gets_unsupported_version(broker):
    reply = send_raw(broker, frame(header(999, 0, 77)))
    size, correlation_id, error = struct.unpack(">iih", reply[:10])
    assert correlation_id == 77 and error == 35  # UNSUPPORTED_VERSION
    assert size == len(reply) - 4
    # A known API at a version past the advertised range: the same answer.
    reply = send_raw(broker, frame(header(3, 99, 78)))
    assert struct.unpack(">iih", reply[:10])[1:] == (78, 35)


def test_bad_frames_close_only_their_connection(broker):
    create_topic(broker.bootstrap, "survivor")
    rss_before = broker.rss_kib()
    # Garbage: a negative size.
    assert send_raw(broker, b"\xff\xfe\xfd\xfc" + b"garbage" * 100) == b""
    # A Metadata request promising 5 topics and carrying one byte.
    assert send_raw(broker, frame(header(3, 7, 9) + struct.pack(">i", 5) + b"\x00")) == b""
    # The 8-byte Metadata frame of a Rust decoder's 3.6 GiB allocation, and one with i32::MAX topics.
    assert send_raw(broker, bytes.fromhex("0300 0003 3c0c 00b6")) == b""
    assert send_raw(broker, frame(header(3, 4, 1) + struct.pack(">i", 0x7FFFFFFF))) == b""
    # Negative and overlong lengths inside a Produce v9 (flexible) request.
    overlong_varint = b"\xff\xff\xff\xff\xff\xff"
    assert send_raw(broker, frame(header(0, 9, 2) + b"\x00" + overlong_varint)) == b""
    assert send_raw(broker, frame(header(0, 3, 3) + struct.pack(">hhii", -1, 1, 1000, -5))) == b""
    # A frame that declares 2 GiB: refused before anything is buffered.
    assert send_raw(broker, struct.pack(">I", 0x7FFFFFFF) + b"x" * 1000) == b""
    assert send_raw(broker, struct.pack(">I", 0x80000000)) == b""
    # A frame that declares 50 MiB (under the limit) but stops after 1 KiB: the broker waits for the rest;
    # memory follows what arrived, not what was declared.
    host, port = broker.bootstrap.split(":")
    hanging = [socket.create_connection((host, int(port))) for _ in range(20)]
    for s in hanging:
        s.sendall(struct.pack(">i", 50 << 20) + header(0, 9, 5) + b"x" * 1024)
    time.sleep(0.5)
    rss_after = broker.rss_kib()
    # A JVM's RSS grows as its heap does, whatever the requests: the bound is Sluice's.
    if not ON_KAFKA:
        assert rss_after - rss_before < 64 * 1024, f"RSS grew from {rss_before} KiB to {rss_after} KiB"
    # Truncated frame: the client goes away mid-frame.
    for s in hanging:
        s.close()
    assert broker.alive()
    # A normal client still works.
    ck_produce(broker.bootstrap, "survivor", [{"value": b"still here"}])
    assert [m.value() for m in ck_consume(broker.bootstrap, "survivor", [0], 1)] == [b"still here"]
    if not ON_KAFKA:  # Sluice's log lines
        assert "malformed request" in broker.log() or "connection closed" in broker.log()


@pytest.mark.sluice_only("Sluice closes a connection over max.connections at once and says so in its log; Apache "
                         "Kafka stops accepting until a slot frees, so the extra connection waits instead")
def test_connection_limits_idle_timeout_and_max_connections(make_broker):
    broker = make_broker(shards=1, extra_args=["--set", "max.connections=3", "--set", "connections.max.idle.ms=500"])
    host, port = broker.bootstrap.split(":")
    held = [socket.create_connection((host, int(port))) for _ in range(3)]
    time.sleep(0.2)
    extra = socket.create_connection((host, int(port)), timeout=5)
    # Over the limit: accepted by the kernel, closed by the broker.
    assert extra.recv(1) == b""
    extra.close()
    assert "max.connections reached" in broker.log()
    # Idle connections are closed after connections.max.idle.ms.
    time.sleep(1.5)
    for s in held:
        s.settimeout(5)
        assert s.recv(1) == b""
        s.close()
    assert "idle" in broker.log()
    # Once they are gone, new clients get in.
    time.sleep(0.2)
    reply = send_raw(broker, frame(header(18, 0, 5)))
    assert struct.unpack(">ii", reply[:8])[1] == 5
