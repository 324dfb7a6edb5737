"""franz-go (github.com/twmb/franz-go v1.22.3, kadm v1.20.0), a strict and widely used Go client: tests/go's
program produces, consumes, joins a classic and a KIP-848 group and uses kadm, then reports what it saw."""

from jvm import franzgo


def rows_by_partition(report):
    return {p: [tuple(r) for r in rows] for p, rows in report.items()}


def test_franz_go_produce_consume_groups_and_kadm(broker):
    r = franzgo(broker.bootstrap)
    assert r["created_partitions"] == 3
    assert r["create_again_error"] == "TOPIC_ALREADY_EXISTS"
    produced = rows_by_partition(r["produced"])
    assert sorted(v for rows in produced.values() for _, v in rows) == list(range(2000))
    for rows in produced.values():
        # The default producer is idempotent with acks=all: dense offsets, values in the order sent.
        assert [o for o, _ in rows] == list(range(len(rows)))
        assert [v for _, v in rows] == sorted(v for _, v in rows)
    assert rows_by_partition(r["direct"]) == produced
    more = rows_by_partition(r["produced_more"])
    assert sum(len(rows) for rows in more.values()) == 30
    for group, group_type in (("fg-classic", "classic"), ("fg-848", "consumer")):
        first, again = r[f"{group}/first"], r[f"{group}/again"]
        # Described while the one member is in the group: all three partitions assigned to it.
        for seen in (first, again):
            assert seen["listed_type"] == group_type, group
            assert seen["listed_protocol"] == "consumer"
            assert (seen["state"], seen["members"], seen["assigned"]) == ("Stable", 1, 3), (group, seen)
        assert rows_by_partition(first["read"]) == produced, group
        # Resumed from the commit: exactly the 30 later records.
        assert rows_by_partition(again["read"]) == more, group
    ends = {p: len(produced[p]) + len(more.get(p, [])) for p in produced}
    assert r["committed"] == {"fg-classic": ends, "fg-848": ends}
    assert r["offsets"] == {p: [0, end] for p, end in ends.items()}
    assert r["groups_of_type_consumer"] == ["fg-848"]
    assert r["configs_set"] == {"retention.ms": ["7200000", "DYNAMIC_TOPIC_CONFIG"],
                                "max.message.bytes": ["300000", "DYNAMIC_TOPIC_CONFIG"]}
    assert r["configs_deleted"] == {"retention.ms": ["604800000", "DEFAULT_CONFIG"],
                                    "max.message.bytes": ["300000", "DYNAMIC_TOPIC_CONFIG"]}
