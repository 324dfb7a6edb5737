"""SASL/SCRAM on a SASL_PLAINTEXT listener, with librdkafka (confluent-kafka) and kafka-python.

The first user comes from `sluice serve --add-scram` (Kafka's `kafka-storage format --add-scram`); others are
added with AlterUserScramCredentials and listed with DescribeUserScramCredentials. A client authenticates with
SCRAM-SHA-256 or SCRAM-SHA-512 and is then `User:NAME` to the authorizer; a wrong password, or any request
before the exchange, ends the connection. The credentials are in the metadata log: they survive a restart."""

import struct

import pytest
import kafka
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (
    AclBinding,
    AclOperation,
    AclPermissionType,
    AdminClient,
    NewTopic,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialDeletion,
    UserScramCredentialUpsertion,
)

from clients import produce_error
from conftest import new_broker
from jvm import kafka_tool
from test_bad_input import frame, header, send_raw

pytestmark = pytest.mark.sluice_only("starts a SASL_PLAINTEXT broker with --add-scram, a Sluice flag")

ADMIN = ("admin", "admin-secret")


def sasl(user, password, mechanism="SCRAM-SHA-256"):
    return {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": mechanism,
            "sasl.username": user, "sasl.password": password}


@pytest.fixture
def sasl_broker(tmp_path):
    broker = new_broker(tmp_path / "data", 2, [
        "--add-scram", f"SCRAM-SHA-256=[name={ADMIN[0]},password={ADMIN[1]}]",
        "--set", "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "--set", f"super.users=User:{ADMIN[0]}",
    ])
    broker.extra_args += ["--set", f"listeners=SASL_PLAINTEXT://{broker.bootstrap}"]
    broker.start()
    yield broker
    assert broker.stop() == 0


def test_scram_users_authenticate_and_the_authorizer_sees_them(sasl_broker):
    broker = sasl_broker
    admin = AdminClient({"bootstrap.servers": broker.bootstrap, **sasl(*ADMIN)})
    for future in admin.create_topics([NewTopic("orders", 2, 1)]).values():
        future.result(30)

    # A user added over the API, with the other mechanism and more iterations.
    alice = UserScramCredentialUpsertion("alice", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192),
                                         b"alice-secret")
    admin.alter_user_scram_credentials([alice])["alice"].result(30)
    described = admin.describe_user_scram_credentials().result(30)
    assert [(i.mechanism, i.iterations) for i in described["alice"].scram_credential_infos] == [
        (ScramMechanism.SCRAM_SHA_512, 8192)]
    assert [(i.mechanism, i.iterations) for i in described["admin"].scram_credential_infos] == [
        (ScramMechanism.SCRAM_SHA_256, 4096)]
    with pytest.raises(KafkaException) as missing:
        admin.describe_user_scram_credentials(["nobody"])["nobody"].result(30)
    assert missing.value.args[0].code() == KafkaError.RESOURCE_NOT_FOUND

    # Kafka's kafka-configs (the Java Admin client), logged in as admin over SCRAM, adds bob.
    properties = broker.data_dir.parent / "admin.properties"
    properties.write_text(
        "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=SCRAM-SHA-256\n"
        "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="{ADMIN[0]}" password="{ADMIN[1]}";\n')
    kafka_tool("kafka-configs", "--bootstrap-server", broker.bootstrap, "--command-config", str(properties),
               "--alter", "--add-config", "SCRAM-SHA-256=[iterations=4096,password=bob-secret]",
               "--entity-type", "users", "--entity-name", "bob")
    assert "bob" in admin.describe_user_scram_credentials().result(30)
    bob = AdminClient({"bootstrap.servers": broker.bootstrap, **sasl("bob", "bob-secret")})
    assert bob.list_topics(timeout=30) is not None

    alice_conf = sasl("alice", "alice-secret", "SCRAM-SHA-512")
    # Authenticated, but no ACL lets alice write yet; then one does.
    assert produce_error(broker.bootstrap, "orders", **alice_conf) == KafkaError.TOPIC_AUTHORIZATION_FAILED
    allow = AclBinding(ResourceType.TOPIC, "orders", ResourcePatternType.LITERAL, "User:alice", "*",
                       AclOperation.WRITE, AclPermissionType.ALLOW)
    admin.create_acls([allow])[allow].result(30)
    assert produce_error(broker.bootstrap, "orders", **alice_conf) is None

    # kafka-python, as alice over SCRAM-SHA-512: its writes pass the same ACL.
    producer = kafka.KafkaProducer(bootstrap_servers=broker.bootstrap, security_protocol="SASL_PLAINTEXT",
                                   sasl_mechanism="SCRAM-SHA-512", sasl_plain_username="alice",
                                   sasl_plain_password="alice-secret", acks="all")
    producer.send("orders", b"from kafka-python").get(30)
    producer.close()

    # A wrong password, and the right password for the mechanism alice has no credential for, both fail.
    for config in (sasl("alice", "wrong", "SCRAM-SHA-512"), sasl("alice", "alice-secret", "SCRAM-SHA-256")):
        client = AdminClient({"bootstrap.servers": broker.bootstrap, **config})
        with pytest.raises(KafkaException) as failed:
            client.list_topics(timeout=5)
        assert failed.value.args[0].code() in (KafkaError._AUTHENTICATION, KafkaError._TRANSPORT), failed.value
    assert "SASL authentication failed" in broker.log()

    # Before authenticating: ApiVersions is answered, anything else ends the connection.
    assert send_raw(broker, frame(header(18, 0, 1))) != b""
    assert send_raw(broker, frame(header(3, 1, 1) + struct.pack(">i", 0))) == b""

    # Credentials are in the metadata log: after a restart alice still gets in; deleted, she does not.
    broker.stop()
    broker.start()
    assert produce_error(broker.bootstrap, "orders", **alice_conf) is None
    admin = AdminClient({"bootstrap.servers": broker.bootstrap, **sasl(*ADMIN)})
    deletion = UserScramCredentialDeletion("alice", ScramMechanism.SCRAM_SHA_512)
    admin.alter_user_scram_credentials([deletion])["alice"].result(30)
    client = AdminClient({"bootstrap.servers": broker.bootstrap, **alice_conf})
    with pytest.raises(KafkaException):
        client.list_topics(timeout=5)


def test_a_sasl_listener_in_a_cluster_and_unknown_mechanisms_are_refused_at_start(tmp_path):
    for attempt, (settings, expected) in enumerate([
        (["--set", "sasl.enabled.mechanisms=GSSAPI"], "GSSAPI is not served"),
        (["--set", "controller.quorum.voters=1@127.0.0.1:19999,2@127.0.0.2:19999", "--set", "node.id=1"],
         "does not authenticate between brokers"),
    ]):
        broker = new_broker(tmp_path / f"data-{attempt}", 1, settings)
        broker.extra_args += ["--set", f"listeners=SASL_PLAINTEXT://{broker.bootstrap}"]
        with pytest.raises(RuntimeError) as refused:
            broker.start()
        assert expected in str(refused.value)
