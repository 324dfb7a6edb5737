#!/usr/bin/env bash
# Apache Kafka as the peer (issue 17): fetches Kafka's jars from Maven Central once, then runs a real Kafka
# broker in KRaft combined mode (each node broker and controller): one node, or three on 127.0.0.1-3 with the
# same ports and a data directory each. Stock configuration (Kafka's config/server.properties and the heap
# kafka-server-start.sh gives, 1 GiB), or with --flush1 `log.flush.interval.messages=1`: an fsync after every
# append, the like-for-like durable comparison with Sluice's flush policy `always`.
#
#   perf/kafka.sh fetch                      # the jars, into $SLUICE_PERF_CACHE/kafka-broker-VERSION/libs; prints it
#   perf/kafka.sh start [--nodes 1|3] [--flush1] [--port 9092] [--controller-port 9093] [--dir DIR]
#   perf/kafka.sh status [--dir DIR]         # each node's pid, address and RSS; exit 1 when none runs
#   perf/kafka.sh stop [--dir DIR]           # SIGTERM (SIGKILL after 60 s) to every node it started
#   perf/kafka.sh java CLASS ARGS...         # a class from the jars, e.g. org.apache.kafka.tools.ProducerPerformance
#   perf/kafka.sh node [options as start]    # one node in the foreground (exec java): for tests that own the process
#   perf/kafka.sh prepare --nodes 3 [...]    # only write the nodes' properties and format their storage; then
#   perf/kafka.sh node --nodes 3 --index N --dir DIR   # runs node N of them in the foreground (perf/cluster.py)
#
# Options: --dir is where the nodes live (default /tmp/sluice-kafka-peer): DIR/node-N/{server.properties,
# data/, server.log, stdout.log, pid}. --set KEY=VALUE adds a broker setting (repeatable). --heap sets the JVM
# heap flags (default "-Xmx1g -Xms1g", stock). --node-id sets a single node's node.id (default 1; the client
# tests use 0, Sluice's default). --fresh wipes DIR first (start formats an empty data dir;
# an existing one is reused as it is). Environment: KAFKA_VERSION (default 4.4.0), SLUICE_PERF_CACHE (default
# ~/.cache/sluice).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
version=${KAFKA_VERSION:-4.4.0}
cache=${SLUICE_PERF_CACHE:-$HOME/.cache/sluice}
libs=$cache/kafka-broker-$version/libs  # apart from tools/kafka.sh's client-side jars, which log differently

die() { echo "kafka.sh: $*" >&2; exit 1; }

# ---------------------------------------------------------------- jars
fetch() {
  [ -f "$libs/kafka_2.13-$version.jar" ] && return 0
  if ! command -v mvn >/dev/null || ! command -v java >/dev/null; then
    echo "kafka.sh: installing maven and a JDK from Debian" >&2
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq maven default-jdk-headless >/dev/null
  fi
  echo "kafka.sh: fetching Apache Kafka $version's jars from Maven Central into $libs" >&2
  local pom_dir
  pom_dir=$(mktemp -d)
  # A throwaway project whose only use is to name the broker's, the storage tool's and the tools' jars. The
  # SLF4J binding is log4j2's, as in Kafka's own distribution.
  cat >"$pom_dir/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>sluice.perf</groupId><artifactId>kafka-peer</artifactId><version>1</version><packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$version</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-server</artifactId><version>$version</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-storage</artifactId><version>$version</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId><version>$version</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>2.25.5</version></dependency>
  </dependencies>
</project>
EOF
  rm -rf "$libs.tmp"
  (cd "$pom_dir" && mvn -q -B dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$libs.tmp") >&2 ||
    { rm -rf "$pom_dir" "$libs.tmp"; die "mvn could not fetch Kafka $version"; }
  rm -rf "$pom_dir" "$libs"
  mv "$libs.tmp" "$libs"
}

run_java() { # CLASS ARGS...: a short-lived tool (storage format, perf test) with a small heap
  java ${KAFKA_TOOL_HEAP:--Xmx512m} -cp "$libs/*" -Dlog4j2.configurationFile="$root/perf/kafka-tools-log4j2.properties" "$@"
}

# ---------------------------------------------------------------- options
nodes=1 index=1 node_id=1 flush1="" port=9092 controller_port=9093 dir=/tmp/sluice-kafka-peer heap="-Xmx1g -Xms1g" fresh=""
settings=()
parse() {
  while (($#)); do
    case $1 in
      --nodes) nodes=$2; shift 2 ;;
      --node-id) node_id=$2; shift 2 ;;
      --index) index=$2; shift 2 ;;
      --flush1) flush1=1; shift ;;
      --port) port=$2; shift 2 ;;
      --controller-port) controller_port=$2; shift 2 ;;
      --dir) dir=$2; shift 2 ;;
      --heap) heap=$2; shift 2 ;;
      --set) settings+=("$2"); shift 2 ;;
      --fresh) fresh=1; shift ;;
      *) die "unknown option $1" ;;
    esac
  done
  [[ $nodes == 1 || $nodes == 3 ]] || die "--nodes is 1 or 3"
}

host_of() { echo "127.0.0.$1"; }
id_of() { if ((nodes == 1)); then echo "$node_id"; else echo "$1"; fi; } # node N's node.id

# Kafka 4.x's config/server.properties for a combined node, with its addresses, data dir and (for three
# nodes) the internal topics replicated three ways, as a cluster would run them.
write_properties() { # node
  local n=$1 host voters="" rf=1 isr=1
  host=$(host_of "$n")
  for ((i = 1; i <= nodes; i++)); do voters+="${voters:+,}$(id_of $i)@$(host_of $i):$controller_port"; done
  ((nodes == 1)) || { rf=3; isr=2; }
  mkdir -p "$dir/node-$n/data"
  cat >"$dir/node-$n/server.properties" <<EOF
# Written by perf/kafka.sh: Kafka $version's stock config/server.properties, KRaft combined mode.
process.roles=broker,controller
node.id=$(id_of "$n")
controller.quorum.voters=$voters
listeners=PLAINTEXT://$host:$port,CONTROLLER://$host:$controller_port
advertised.listeners=PLAINTEXT://$host:$port
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL
num.network.threads=3
num.io.threads=8
socket.send.buffer.bytes=102400
socket.receive.buffer.bytes=102400
socket.request.max.bytes=104857600
log.dirs=$dir/node-$n/data
num.partitions=1
num.recovery.threads.per.data.dir=1
offsets.topic.replication.factor=$rf
share.coordinator.state.topic.replication.factor=$rf
share.coordinator.state.topic.min.isr=$isr
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$isr
log.retention.hours=168
log.segment.bytes=1073741824
log.retention.check.interval.ms=300000
EOF
  [ -z "$flush1" ] || echo "log.flush.interval.messages=1" >>"$dir/node-$n/server.properties"
  local kv
  for kv in "${settings[@]}"; do echo "$kv" >>"$dir/node-$n/server.properties"; done
}

prepare() { # writes every node's properties and formats the data dirs that are empty
  fetch
  [ -z "$fresh" ] || rm -rf "$dir"
  mkdir -p "$dir"
  local cluster_id
  if [ -f "$dir/cluster.id" ]; then
    cluster_id=$(cat "$dir/cluster.id")
  else
    # A cluster id is 16 random bytes in URL-safe base64 without padding, as `kafka-storage random-uuid` prints;
    # not one that starts with '-', which the storage tool would read as an option.
    cluster_id=-
    while [[ $cluster_id == -* ]]; do cluster_id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '='); done
    echo "$cluster_id" >"$dir/cluster.id"
  fi
  for ((n = 1; n <= nodes; n++)); do
    write_properties "$n"
    if [ ! -f "$dir/node-$n/data/meta.properties" ]; then
      run_java kafka.tools.StorageTool format -t "$cluster_id" -c "$dir/node-$n/server.properties" \
        >"$dir/node-$n/format.log" 2>&1 || { cat "$dir/node-$n/format.log" >&2; die "formatting node $n failed"; }
    fi
    sed "s#@LOG@#$dir/node-$n/server.log#" "$root/perf/kafka-log4j2.properties" >"$dir/node-$n/log4j2.properties"
  done
}

node_java() { # node: sets java_cmd to the broker's command line, as kafka-server-start.sh builds it
  # shellcheck disable=SC2206 # the heap flags are words
  java_cmd=(java $heap -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
    -XX:+ExplicitGCInvokesConcurrent -XX:MaxInlineLevel=15 -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$dir/node-$1/log4j2.properties" -cp "$libs/*" kafka.Kafka "$dir/node-$1/server.properties")
}

ready() { # node: the broker says it started and its port takes connections
  grep -q "Kafka Server started" "$dir/node-$1/server.log" 2>/dev/null &&
    (exec 3<>"/dev/tcp/$(host_of "$1")/$port") 2>/dev/null
}

alive() { [ -f "$dir/node-$1/pid" ] && kill -0 "$(cat "$dir/node-$1/pid")" 2>/dev/null; }

start() {
  prepare
  for ((n = 1; n <= nodes; n++)); do
    alive "$n" && die "node $n already runs (pid $(cat "$dir/node-$n/pid")); perf/kafka.sh stop --dir $dir"
    : >"$dir/node-$n/server.log"
    # Its own session, so a terminal's ^C does not reach it: `stop` ends it.
    node_java "$n"
    setsid "${java_cmd[@]}" >"$dir/node-$n/stdout.log" 2>&1 </dev/null &
    echo $! >"$dir/node-$n/pid"
  done
  local deadline=$((SECONDS + 120))
  for ((n = 1; n <= nodes; n++)); do
    until ready "$n"; do
      if ! alive "$n" || ((SECONDS > deadline)); then
        tail -30 "$dir/node-$n/stdout.log" "$dir/node-$n/server.log" >&2
        stop
        die "node $n did not start"
      fi
      sleep 0.2
    done
  done
  for ((n = 1; n <= nodes; n++)); do
    echo "node $n: pid $(cat "$dir/node-$n/pid"), $(host_of "$n"):$port${flush1:+, log.flush.interval.messages=1}"
  done
}

stop() {
  local pids=() pid f
  for f in "$dir"/node-*/pid; do
    [ -f "$f" ] || continue
    pid=$(cat "$f")
    # Only a java process that runs this node's properties: a stale pid file must not kill anything else.
    if kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "kafka.Kafka $(dirname "$f")/server.properties"; then
      kill -TERM "$pid"
      pids+=("$pid")
    fi
    rm -f "$f"
  done
  local deadline=$((SECONDS + 60))
  for pid in "${pids[@]}"; do
    while kill -0 "$pid" 2>/dev/null; do
      if ((SECONDS > deadline)); then
        echo "kafka.sh: pid $pid still runs 60 s after SIGTERM: SIGKILL" >&2
        kill -KILL "$pid" 2>/dev/null || true
      fi
      sleep 0.2
    done
  done
}

status() {
  local any=1 f n pid
  for f in "$dir"/node-*/pid; do
    [ -f "$f" ] || continue
    n=${f%/pid}
    n=${n##*/node-}
    pid=$(cat "$f")
    if kill -0 "$pid" 2>/dev/null; then
      echo "node $n: pid $pid, $(host_of "$n"), RSS $(($(awk '/VmRSS/ {print $2}' "/proc/$pid/status") / 1024)) MB"
      any=0
    else
      echo "node $n: not running (stale pid $pid)"
    fi
  done
  return $any
}

cmd=${1:-}
(($#)) && shift
case $cmd in
  fetch) fetch; echo "$libs" ;;
  start) parse "$@"; start ;;
  stop) parse "$@"; stop ;;
  status) parse "$@"; status ;;
  prepare) parse "$@"; prepare; echo "$dir" ;;
  node)
    parse "$@"
    if ((nodes == 1)); then
      prepare
      index=1
    else
      # One node of a three-node cluster that `prepare` wrote: several of these start at once, so none of them
      # rewrites the shared files.
      [[ $index == [123] ]] || die "--index is 1, 2 or 3"
      [ -f "$dir/node-$index/data/meta.properties" ] || die "no formatted node $index in $dir: run prepare first"
    fi
    node_java "$index"
    exec "${java_cmd[@]}"
    ;;
  java) fetch; run_java "$@" ;;
  *) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
esac
