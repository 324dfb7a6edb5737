#!/usr/bin/env bash
# The cluster's figures in one run on a local three-node cluster (127.0.0.1-3, --shards 1): CreateTopics
# latency, controller failover, idle CPU/RSS per node, RF=3 against RF=1 throughput and latency, failover
# windows after kill -9 and SIGTERM, and a new replica's catch-up rate against loopback (perf/cluster.py).
#
#   perf/cluster.sh            # about 10 minutes
#   perf/cluster.sh --quick    # a smoke run of every step, about 2 minutes
#   perf/cluster.sh --peer kafka [--peer kafka-flush1] [--quick]
#                              # the steps that make sense on Kafka too (throughput, latency, failover windows,
#                              # CPU per MB, RSS), on Sluice and then on a 3-node Apache Kafka 4.4 cluster
#                              # (perf/kafka.sh), with Sluice ÷ Kafka ratios; ~5 min for Sluice, 11-17 per Kafka variant
#
# Needs the test tools (scripts/install-test-tools.sh: the Python clients in tests/clients/.venv) and iperf3
# for the loopback figure (installed from Debian if missing). Output: a Markdown table on stdout, raw figures
# in perf/out/cluster/results.json (peer-results.json with --peer).
set -euo pipefail
cd "$(dirname "$0")/.."
[[ -x tests/clients/.venv/bin/python ]] || ./scripts/install-test-tools.sh
command -v iperf3 >/dev/null || { apt-get install -y -qq iperf3 >/dev/null 2>&1 || echo "iperf3 unavailable: no loopback figure" >&2; }
cargo build --release --locked --bin sluice
SLUICE_BIN="${CARGO_TARGET_DIR:-$PWD/target}/release/sluice" exec tests/clients/.venv/bin/python perf/cluster.py "$@"
