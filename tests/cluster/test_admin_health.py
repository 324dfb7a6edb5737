"""The admin listener in a cluster: each node binds the default, port 9644 on its own client listener's host
(127.0.0.N), and /health/ready follows the broker's standing with the controller quorum: ready while in
session, 503 once it lost the quorum long enough to assume it was fenced, ready again when the quorum is back."""

import socket

import pytest

from harness import wait_until

pytestmark = pytest.mark.sluice_only("Sluice's admin listener (/health/ready and /health/live)")

ADMIN_PORT = 9644


def ready(node):
    """(status, body) of GET /health/ready on the node's default admin listener, or None if nothing answers."""
    try:
        with socket.create_connection((node.host, ADMIN_PORT), timeout=5) as s:
            s.sendall(b"GET /health/ready HTTP/1.1\r\n\r\n")
            answer = b""
            while chunk := s.recv(4096):
                answer += chunk
    except OSError:
        return None
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body.decode()


def is_ready(node):
    """Whether the node answers ready; otherwise raises with its answer (503 and why, or None when nothing answers
    on its admin port), which `wait_until` reports if it times out."""
    answer = ready(node)
    if answer != (200, "ready\n"):
        raise AssertionError(f"/health/ready answered {answer!r}")
    return True


def test_ready_follows_the_brokers_session_with_the_quorum(make_cluster):
    cluster = make_cluster(3)
    nodes = [cluster.nodes[i] for i in (1, 2, 3)]
    for node in nodes:
        wait_until(lambda: is_ready(node), timeout=30, what=f"node {node.node_id} ready")
        assert f"address={node.host}:{ADMIN_PORT}" in node.log()

    # Without two of three voters there is no controller: node 3's heartbeats go unanswered, and past its
    # session it must assume it was fenced.
    nodes[0].kill9()
    nodes[1].kill9()
    wait_until(lambda: (ready(nodes[2]) or (0, ""))[0] == 503, timeout=30, what="node 3 not ready")
    status, body = ready(nodes[2])
    assert body.startswith("not ready: "), body

    nodes[0].start(wait=False)
    nodes[1].start(wait=False)
    wait_until(lambda: is_ready(nodes[2]), timeout=60, what="node 3 ready again")
    for node in nodes[:2]:
        wait_until(lambda: is_ready(node), timeout=60, what=f"node {node.node_id} ready again")
