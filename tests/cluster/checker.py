"""Judges a fault run's history (history.py), Jepsen-style. Each anomaly has a name and a list of cases, the
first of which names the offending record:

- lost: acknowledged, never read, although later offsets of its partition were read;
- unseen: acknowledged and not read by the end (after healing), with no later offset read either;
- duplicate: one value at two offsets;
- inconsistent: one offset read with two values (across readers, the final read and the replicas' files), or a
  value read at another offset than the one it was acknowledged at;
- nonmonotonic-send: one producer's acknowledged records out of order within a partition;
- poll-skip and nonmonotonic-poll: a reader or group member jumped over offsets that exist, or went back,
  within one assignment;
- committed-backwards: a group's committed offset for a partition fell below one acknowledged earlier;
- failed-but-read: a write that definitely failed was read.

A write whose outcome is unknown (timed out) may or may not appear."""

from collections import defaultdict

ANOMALIES = ("lost", "unseen", "duplicate", "inconsistent", "nonmonotonic-send", "poll-skip",
             "nonmonotonic-poll", "committed-backwards", "failed-but-read")


def check(events, final_reads, final_committed=None, replica_values=None):
    """`events`: the history's events; `final_reads`: (partition, offset, value) of a read of every partition
    from the start after healing; `final_committed`: group -> partition -> committed offset after healing;
    `replica_values`: node -> {(partition, offset): value-or-digest} to compare replicas with. Returns
    {"anomalies": name -> cases, "counts": ...}."""
    out = {name: [] for name in ANOMALIES}
    values_at = defaultdict(set)  # (p, o) -> values read there
    offsets_of = defaultdict(set)  # value -> (p, o) it was read at
    for e in events:
        if e["f"] == "poll":
            values_at[(e["p"], e["o"])].add(e["value"])
            offsets_of[e["value"]].add((e["p"], e["o"]))
    final_values = {}
    for p, o, v in final_reads:
        values_at[(p, o)].add(v)
        offsets_of[v].add((p, o))
        final_values[(p, o)] = v
    for node, view in (replica_values or {}).items():
        for (p, o), v in view.items():
            if (p, o) in final_values and final_values[(p, o)] != v:
                out["inconsistent"].append({"p": p, "o": o, "final read": final_values[(p, o)],
                                            f"replica on node {node}": v})

    for (p, o), vs in sorted(values_at.items()):
        if len(vs) > 1:
            out["inconsistent"].append({"p": p, "o": o, "values": sorted(vs)})
    for v, places in sorted(offsets_of.items()):
        if len(places) > 1:
            out["duplicate"].append({"value": v, "at": sorted(places)})

    highest = defaultdict(lambda: -1)  # partition -> highest offset read anywhere
    for p, o in values_at:
        highest[p] = max(highest[p], o)
    acked = {}
    failed = {}
    for e in events:
        if e["f"] == "ok":
            acked[e["value"]] = e
        elif e["f"] == "fail":
            failed[e["value"]] = e
    final_set = {v for (_, _, v) in final_reads}
    for v, e in sorted(acked.items(), key=lambda kv: kv[1]["t"]):
        place = (e["p"], e["o"])
        if e["o"] is None:  # acknowledged without an offset (librdkafka does so for some idempotent retries)
            if v not in final_set:
                out["unseen"].append({"value": v, "acked at": "unknown offset", "acked t": e["t"]})
            continue
        if v not in offsets_of:
            case = {"value": v, "acked at": place, "acked t": e["t"]}
            (out["lost"] if highest[e["p"]] > e["o"] else out["unseen"]).append(case)
        elif place not in offsets_of[v]:
            out["inconsistent"].append({"value": v, "acked at": place, "read at": sorted(offsets_of[v])})
        elif v not in final_set:
            out["lost"].append({"value": v, "acked at": place, "note": "read during the run, gone at the end"})
    for v, e in failed.items():
        if v in offsets_of:
            out["failed-but-read"].append({"value": v, "error": e.get("err"), "read at": sorted(offsets_of[v])})

    _check_sends(acked, out)
    _check_polls(events, set(values_at) | {(e["p"], e["o"]) for e in acked.values() if e["o"] is not None}, out)
    _check_commits(events, final_committed or {}, out)

    counts = defaultdict(int)
    for e in events:
        counts[e["f"]] += 1
    return {"anomalies": out, "counts": dict(counts), "acknowledged": len(acked), "final records": len(final_reads)}


def _check_sends(acked, out):
    by_producer = defaultdict(list)  # (producer, partition) -> [(seq, offset, value)]
    for v, e in acked.items():
        if e["o"] is None:
            continue
        producer, seq = v.rsplit(":", 1)
        by_producer[(producer, e["p"])].append((int(seq), e["o"], v))
    for (producer, p), sends in sorted(by_producer.items()):
        sends.sort()
        for (s1, o1, v1), (s2, o2, v2) in zip(sends, sends[1:]):
            if o2 <= o1:
                out["nonmonotonic-send"].append({"producer": producer, "p": p, "earlier": (v1, o1), "later": (v2, o2)})
                break


def _check_polls(events, known, out):
    """`known`: every (partition, offset) read anywhere or acknowledged: offsets that exist(ed)."""
    exists = defaultdict(set)
    for p, o in known:
        exists[p].add(o)
    last = {}  # (proc, p) -> last offset polled in this assignment
    for e in events:
        key = (e["proc"], e.get("p"))
        if e["f"] in ("assign", "revoke"):
            last.pop(key, None)
        elif e["f"] == "poll":
            previous = last.get(key)
            o = e["o"]
            if previous is not None:
                if o <= previous:
                    out["nonmonotonic-poll"].append({"proc": e["proc"], "p": e["p"], "after": previous, "polled": o,
                                                     "t": e["t"]})
                elif any(x in exists[e["p"]] for x in range(previous + 1, o)):
                    missed = [x for x in range(previous + 1, o) if x in exists[e["p"]]]
                    out["poll-skip"].append({"proc": e["proc"], "p": e["p"], "after": previous, "polled": o,
                                             "skipped": missed[:10], "t": e["t"]})
            last[key] = o


def _check_commits(events, final_committed, out):
    best = {}  # (group, p) -> (offset, event) of the highest acknowledged commit so far
    for e in events:
        if e["f"] != "commit":
            continue
        key = (e["group"], e["p"])
        if key in best and e["o"] < best[key][0]:
            out["committed-backwards"].append({"group": e["group"], "p": e["p"], "was": best[key][0], "now": e["o"],
                                               "by": e["proc"], "t": e["t"]})
        if key not in best or e["o"] > best[key][0]:
            best[key] = (e["o"], e)
    for (group, p), (offset, _) in sorted(best.items()):
        final = final_committed.get(group, {}).get(p)
        if final is not None and final < offset:
            out["committed-backwards"].append({"group": group, "p": p, "was": offset, "final": final})


def summary(result):
    """One line per anomaly with its count and first case."""
    lines = []
    for name in ANOMALIES:
        cases = result["anomalies"][name]
        lines.append(f"{name}: {len(cases)}" + (f" (first: {cases[0]})" if cases else ""))
    return "\n".join(lines)


def failed(result, names=ANOMALIES):
    return {n: len(result["anomalies"][n]) for n in names if result["anomalies"][n]}
