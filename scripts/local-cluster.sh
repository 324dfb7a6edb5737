#!/usr/bin/env bash
# Three Sluice nodes on 127.0.0.1, .2 and .3 (ports 9092 for clients, 9093 for the controller quorum), from
# examples/cluster/node-N.properties, with their data under ./sluice-cluster/node-N and their logs beside it.
#
#   scripts/local-cluster.sh start     # builds the release binary if needed, starts the three, waits until ready
#   scripts/local-cluster.sh status    # sluice cluster describe
#   scripts/local-cluster.sh stop      # SIGTERM to each: leaderships move away, then the node stops
#   scripts/local-cluster.sh wipe      # stop, then delete ./sluice-cluster
set -euo pipefail
cd "$(dirname "$0")/.."
SLUICE="${SLUICE_BIN:-$PWD/target/release/sluice}"
DIR=sluice-cluster
NODES=(1 2 3)
BOOTSTRAP=127.0.0.1:9092,127.0.0.2:9092,127.0.0.3:9092

start() {
  [[ -x "$SLUICE" ]] || cargo build --release --bin sluice
  mkdir -p "$DIR"
  declare -A before
  for n in "${NODES[@]}"; do
    before[$n]=$(stat -c %s "$DIR/node-$n.log" 2>/dev/null || echo 0)
    if [[ -f "$DIR/node-$n.pid" ]] && kill -0 "$(cat "$DIR/node-$n.pid")" 2>/dev/null; then
      echo "node $n is already running (pid $(cat "$DIR/node-$n.pid"))"
      continue
    fi
    "$SLUICE" serve --config "examples/cluster/node-$n.properties" --shards 1 >>"$DIR/node-$n.log" 2>&1 &
    echo $! >"$DIR/node-$n.pid"
    echo "node $n: pid $!, log $DIR/node-$n.log"
  done
  for n in "${NODES[@]}"; do
    for _ in $(seq 1 600); do
      tail -c +"$((before[$n] + 1))" "$DIR/node-$n.log" 2>/dev/null | grep -q "ready to serve" && break
      kill -0 "$(cat "$DIR/node-$n.pid")" 2>/dev/null || { echo "node $n exited:"; tail -20 "$DIR/node-$n.log"; exit 1; }
      sleep 0.1
    done
  done
  echo "cluster ready: --bootstrap $BOOTSTRAP"
}

stop() {
  for n in "${NODES[@]}"; do
    local pidfile="$DIR/node-$n.pid"
    [[ -f "$pidfile" ]] || continue
    local pid; pid="$(cat "$pidfile")"
    if kill -TERM "$pid" 2>/dev/null; then
      for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -0 "$pid" 2>/dev/null && { echo "node $n did not stop in 30 s; killing it"; kill -9 "$pid"; }
      echo "node $n stopped"
    fi
    rm -f "$pidfile"
  done
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) "$SLUICE" cluster describe --bootstrap "$BOOTSTRAP" ;;
  wipe) stop; rm -rf "$DIR" ;;
  *) echo "usage: $0 start|status|stop|wipe" >&2; exit 2 ;;
esac
