"""Which broker the end-to-end and cluster tests run against: Sluice (the default) or, with
SLUICE_TEST_TARGET=kafka, Apache Kafka 4.4 as the reference. A test that fails on Kafka is a wrong test, unless
Sluice is deliberately different there: such tests say why with @pytest.mark.sluice_only("why"), and are
skipped on Kafka with that reason."""

import os

import pytest

TARGET = os.environ.get("SLUICE_TEST_TARGET", "sluice")
if TARGET not in ("sluice", "kafka"):
    raise ValueError(f"SLUICE_TEST_TARGET is sluice or kafka, not {TARGET!r}")
ON_KAFKA = TARGET == "kafka"


def register_marker(config):
    config.addinivalue_line(
        "markers", "sluice_only(reason): checks what only Sluice has or where Sluice is deliberately stricter than "
        "Apache Kafka; skipped with SLUICE_TEST_TARGET=kafka")


def skip_sluice_only(items):
    for item in items:
        marker = item.get_closest_marker("sluice_only")
        if marker is not None:
            reason = marker.args[0] if marker.args else marker.kwargs.get("reason", "")
            assert reason, f"{item.nodeid}: sluice_only needs a reason"
            item.add_marker(pytest.mark.skip(reason=f"Sluice only: {reason}"))
