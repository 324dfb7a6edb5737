#!/usr/bin/env bash
# Runs Apache Kafka's own command-line tools, from the Maven Central artifacts (kafka-tools, kafka_2.13; the
# version is tools/kafka/pom.xml's kafka.version), with `java -cp`, as Kafka's bin/ scripts do:
#
#   tools/kafka.sh kafka-topics --bootstrap-server 127.0.0.1:9092 --list
#   tools/kafka-topics.sh --bootstrap-server 127.0.0.1:9092 --list     # the same, through a symlink
#   tools/kafka.sh run-class org.apache.kafka.tools.ClusterTool ...     # any class on the classpath
#   tools/kafka.sh connect-distributed worker.properties                # a Kafka Connect worker
#   tools/kafka.sh fetch                                                # only fetch the jars
#
# The first run copies the jars into ~/.cache/sluice/kafka-VERSION/libs (or $SLUICE_KAFKA_LIBS) with Maven,
# online; later runs start the JVM at once. Needs java 17+ and mvn. Like bin/kafka-run-class.sh, it takes
# KAFKA_HEAP_OPTS, KAFKA_JVM_PERFORMANCE_OPTS and KAFKA_OPTS from the environment, and puts CLASSPATH after
# Kafka's jars (Connect plugins, for instance).
set -euo pipefail
here=$(cd "$(dirname "$(readlink -f "$0")")" && pwd)
pom="$here/kafka/pom.xml"

name=$(basename "$0" .sh)
if [ "$name" = kafka ]; then
  [ $# -ge 1 ] || { echo "usage: $0 TOOL [ARGS...] (kafka-topics, kafka-configs, ...; or run-class CLASS)" >&2; exit 2; }
  name=$1
  shift
fi
case "$name" in
  kafka-topics) class=org.apache.kafka.tools.TopicCommand ;;
  kafka-configs) class=org.apache.kafka.tools.ConfigCommand ;;
  kafka-console-producer) class=org.apache.kafka.tools.ConsoleProducer ;;
  kafka-console-consumer) class=org.apache.kafka.tools.consumer.ConsoleConsumer ;;
  kafka-consumer-groups) class=org.apache.kafka.tools.consumer.group.ConsumerGroupCommand ;;
  kafka-get-offsets) class=org.apache.kafka.tools.GetOffsetShell ;;
  kafka-delete-records) class=org.apache.kafka.tools.DeleteRecordsCommand ;;
  kafka-producer-perf-test) class=org.apache.kafka.tools.ProducerPerformance ;;
  kafka-consumer-perf-test) class=org.apache.kafka.tools.ConsumerPerformance ;;
  kafka-metadata-quorum) class=org.apache.kafka.tools.MetadataQuorumCommand ;;
  kafka-reassign-partitions) class=org.apache.kafka.tools.reassign.ReassignPartitionsCommand ;;
  kafka-leader-election) class=org.apache.kafka.tools.LeaderElectionCommand ;;
  kafka-cluster) class=org.apache.kafka.tools.ClusterTool ;;
  connect-distributed) class=org.apache.kafka.connect.cli.ConnectDistributed ;;
  kafka-log-dirs) class=org.apache.kafka.tools.LogDirsCommand ;;
  kafka-acls) class=org.apache.kafka.tools.AclCommand ;;
  kafka-verifiable-producer) class=org.apache.kafka.tools.VerifiableProducer ;;
  kafka-verifiable-consumer) class=org.apache.kafka.tools.VerifiableConsumer ;;
  fetch) class="" ;;
  run-class | kafka-run-class)
    [ $# -ge 1 ] || { echo "usage: $0 run-class CLASS [ARGS...]" >&2; exit 2; }
    class=$1
    shift
    ;;
  *) echo "$0: unknown tool '$name'" >&2; exit 2 ;;
esac

version=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$pom")
libs=${SLUICE_KAFKA_LIBS:-$HOME/.cache/sluice/kafka-$version/libs}
# The stamp records the pom the jars came from, so a changed pom copies them again.
stamp="$libs/.from-pom.sha256"
want=$(sha256sum "$pom" | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  command -v mvn >/dev/null || { echo "$0: mvn is required to fetch Kafka $version's jars" >&2; exit 1; }
  echo "== fetching Apache Kafka $version's tools into $libs (once)" >&2
  rm -rf "$libs.tmp"
  mvn -B -q -f "$pom" dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$libs.tmp" >&2
  rm -rf "$libs"
  mv "$libs.tmp" "$libs"
  echo "$want" >"$stamp"
fi

[ -n "$class" ] || exit 0

# shellcheck disable=SC2086 # the *_OPTS variables are word lists, as in Kafka's bin/kafka-run-class.sh
exec java ${KAFKA_HEAP_OPTS:--Xmx512m} ${KAFKA_JVM_PERFORMANCE_OPTS:-} ${KAFKA_OPTS:-} \
  -Dorg.slf4j.simpleLogger.defaultLogLevel=warn -cp "$libs/*${CLASSPATH:+:$CLASSPATH}" "$class" "$@"
