"""The Java client, org.apache.kafka:kafka-clients 4.4.0: tests/java's Scenarios program runs several client
operations in one JVM and reports what it observed; these tests check the report. Most Kafka users reach a
broker through this client (Spring, Flink, Kafka's own tools)."""

from conftest import ON_KAFKA
from jvm import java_scenario


def rows_by_partition(report):
    return {p: [tuple(r) for r in rows] for p, rows in report.items()}


def test_idempotent_producer_and_classic_and_kip848_groups_commit_and_resume(broker):
    r = java_scenario("clients", broker.bootstrap)
    produced = rows_by_partition(r["produced"])
    # Idempotent acks=all, lz4, 5 in flight: every value once, each partition's offsets dense from 0 in send order.
    assert sorted(v for rows in produced.values() for _, v in rows) == list(range(3000))
    assert set(produced) == {"0", "1", "2"}
    for rows in produced.values():
        assert [o for o, _ in rows] == list(range(len(rows)))
        assert [v for _, v in rows] == sorted(v for _, v in rows)
    # Both group protocols read every partition in order, exactly what was produced, and nothing more.
    assert rows_by_partition(r["classic_first"]) == produced
    assert rows_by_partition(r["consumer_first"]) == produced
    # Each group resumes from its committed offsets: the 30 later records, none of the first 3000.
    more = rows_by_partition(r["produced_more"])
    assert sum(len(rows) for rows in more.values()) == 30
    for p, rows in more.items():
        assert rows[0][0] == len(produced[p]), "the later records follow the first ones"
    assert rows_by_partition(r["classic_again"]) == more
    assert rows_by_partition(r["consumer_again"]) == more
    ends = {f"jc-{p}": len(produced[p]) + len(more.get(p, [])) for p in produced}
    assert r["committed"] == {"jc-classic": ends, "jc-848": ends}
    # ListGroups v5 tells the group types apart; DescribeGroups and ConsumerGroupDescribe describe each.
    assert r["listed_groups"]["jc-classic"] == {"type": "Classic", "protocol": "consumer", "state": "Empty"}
    assert r["listed_groups"]["jc-848"] == {"type": "Consumer", "protocol": "consumer", "state": "Empty"}
    assert r["described_groups"] == {
        "jc-classic": {"type": "Classic", "state": "Empty", "members": 0, "coordinator": 0},
        "jc-848": {"type": "Consumer", "state": "Empty", "members": 0, "coordinator": 0},
    }


def test_admin_topics_partitions_configs_offsets_delete_records_cluster(broker):
    r = java_scenario("admin", broker.bootstrap)
    assert r["cluster"]["controller"] == 0
    assert r["cluster"]["nodes"] == [{"id": 0, "host": "127.0.0.1", "port": broker.port}]
    assert len(r["cluster"]["id"]) == 22, r["cluster"]["id"]  # a base64 UUID, as Kafka's cluster ids
    assert r["create_again_error"] == "TopicExistsException"
    assert r["partitions_created"] == {"count": 2, "leaders": [0, 0]}
    assert r["partitions_after_increase"] == {"count": 5, "leaders": [0] * 5}
    assert r["decrease_error"] == "InvalidPartitionsException"
    # IncrementalAlterConfigs SET and DELETE, read back with their sources.
    assert r["configs_created"] == {
        "retention.ms": {"value": "3600000", "source": "DYNAMIC_TOPIC_CONFIG"},
        "max.message.bytes": {"value": "1048588", "source": "DEFAULT_CONFIG"},
    }
    assert r["configs_set"] == {
        "retention.ms": {"value": "7200000", "source": "DYNAMIC_TOPIC_CONFIG"},
        "max.message.bytes": {"value": "200000", "source": "DYNAMIC_TOPIC_CONFIG"},
    }
    assert r["configs_deleted"] == {
        "retention.ms": {"value": "604800000", "source": "DEFAULT_CONFIG"},
        "max.message.bytes": {"value": "200000", "source": "DYNAMIC_TOPIC_CONFIG"},
    }
    assert r["bad_config_error"] == "InvalidConfigurationException"
    # The Kafka peer runs Kafka's stock server.properties, which sets num.partitions=1 (perf/kafka.sh).
    source = "STATIC_BROKER_CONFIG" if ON_KAFKA else "DEFAULT_CONFIG"
    assert r["broker_configs"]["num.partitions"] == {"value": "1", "source": source}
    assert r["broker_configs"]["message.max.bytes"]["value"] == "1048588"
    # ListOffsets, including MAX_TIMESTAMP (v7, KIP-734): 100 records with timestamps base+0..base+99.
    assert r["offsets_before_delete"] == {
        "earliest": 0, "latest": 100, "max_timestamp": 99, "for_timestamp_50": 50, "for_timestamp_after": -1}
    assert r["delete_records_low_watermark"] == 40
    assert r["offsets_after_delete"] == {"earliest": 40, "latest": 100}
    assert r["first_read_after_delete"] == 40
    assert "ja" not in r["topics_after_delete"]
