"""Fixtures for the multi-process cluster tests: nodes on 127.0.0.1..N, same ports, own data directories.

With SLUICE_TEST_TARGET=kafka the clusters are Apache Kafka 4.4's (kafka_cluster.py: three KRaft combined
nodes, stock configuration plus the test's `extra` settings), and the tests marked
@pytest.mark.sluice_only("why") are skipped with that reason."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "clients"))

from harness import assert_clean_log, new_cluster  # noqa: E402
from target import ON_KAFKA, register_marker, skip_sluice_only  # noqa: E402


def pytest_configure(config):
    register_marker(config)


def pytest_collection_modifyitems(config, items):
    if ON_KAFKA:
        skip_sluice_only(items)


@pytest.fixture
def make_cluster(tmp_path):
    """Starts clusters on demand; every node is killed at the end, and their logs are checked for panics."""
    clusters = []

    def make(size=3, start=True, **kwargs):
        cluster = new_cluster(tmp_path / f"cluster-{len(clusters)}", size=size, **kwargs)
        clusters.append(cluster)
        return cluster.start() if start else cluster

    yield make
    for cluster in clusters:
        cluster.close()
    for cluster in clusters:
        for node in cluster.nodes.values():
            assert_clean_log(node)


@pytest.fixture
def cluster(make_cluster):
    return make_cluster(3)
