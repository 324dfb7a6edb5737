"""Fixtures for the multi-process cluster tests: nodes on 127.0.0.1..N, same ports, own data directories."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "clients"))

from harness import Cluster, assert_clean_log  # noqa: E402


@pytest.fixture
def make_cluster(tmp_path):
    """Starts clusters on demand; every node is killed at the end, and their logs are checked for panics."""
    clusters = []

    def make(size=3, start=True, **kwargs):
        cluster = Cluster(tmp_path / f"cluster-{len(clusters)}", size=size, **kwargs)
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
