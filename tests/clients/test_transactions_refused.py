"""Sluice has no transaction coordinator yet. A transactional producer must fail at its first step with a
fatal error that names the reason, not retry the coordinator lookup until its timeout (librdkafka retried
INVALID_REQUEST every 500 ms, so init_transactions hung: librdkafka tests 0055, 0061, 0129, 0137)."""

import kafka
import kafka.errors
import pytest
from confluent_kafka import KafkaError, KafkaException, Producer


@pytest.mark.sluice_only("Sluice has no transactions yet and refuses them; Apache Kafka runs them")
def test_librdkafka_transactional_producer_fails_fatally(broker):
    producer = Producer({"bootstrap.servers": broker.bootstrap, "transactional.id": "x"})
    with pytest.raises(KafkaException) as raised:
        producer.init_transactions(10)
    error = raised.value.args[0]
    # A hang ends in a retriable _TIMED_OUT; a refusal is fatal and says why.
    assert error.code() == KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED, error
    assert error.fatal(), error
    assert "transactions are not supported" in error.str(), error


@pytest.mark.sluice_only("Sluice has no transactions yet and refuses them; Apache Kafka runs them")
def test_java_style_transactional_producer_fails_fatally(broker):
    """kafka-python's transaction manager follows the Java client's: a refused coordinator lookup is fatal."""
    producer = kafka.KafkaProducer(bootstrap_servers=broker.bootstrap, transactional_id="x")
    try:
        with pytest.raises(kafka.errors.TransactionalIdAuthorizationFailedError):
            producer.init_transactions()
    finally:
        producer.close(timeout=5)


def test_idempotent_producer_still_gets_a_producer_id(broker):
    producer = Producer({"bootstrap.servers": broker.bootstrap, "enable.idempotence": True})
    producer.produce("idem", b"v")
    assert producer.flush(30) == 0
