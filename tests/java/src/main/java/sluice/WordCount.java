package sluice;

import java.time.Duration;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ListOffsetsResult;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.CloseOptions;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.processor.StateRestoreListener;

/**
 * A Kafka Streams word count, at-least-once, driven by tests/clients/test_kafka_streams.py: lines from INPUT are
 * split into words, re-keyed by word (through a repartition topic), counted in a persistent (RocksDB) store
 * named {@code counts} (backed by the compacted changelog topic APP_ID-counts-changelog), and every new count
 * goes to OUTPUT as word → long.
 *
 * <p>The program runs until the application's consumer group has committed the end offset of every INPUT
 * partition and of the repartition topic, that is until every line is counted and the counts are written (a
 * Streams commit flushes its producer first), then closes and prints one JSON line: how many changelog records
 * the store restored at start, and the configs of the internal topics as the broker describes them. The test
 * reads OUTPUT itself. Usage: {@code java -cp ... sluice.WordCount BOOTSTRAP APP_ID INPUT OUTPUT STATE_DIR}.
 */
public final class WordCount {
    private static final Duration DEADLINE = Duration.ofSeconds(90);

    private WordCount() {}

    public static void main(String[] args) throws Exception {
        System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", "warn");
        if (args.length != 5) {
            System.err.println("usage: WordCount BOOTSTRAP APP_ID INPUT OUTPUT STATE_DIR");
            System.exit(2);
        }
        String bootstrap = args[0];
        String appId = args[1];
        String input = args[2];
        String output = args[3];

        StreamsBuilder builder = new StreamsBuilder();
        builder.stream(input, Consumed.with(Serdes.String(), Serdes.String()))
                .flatMapValues(line -> Arrays.asList(line.toLowerCase(Locale.ROOT).split("\\W+")))
                .filter((key, word) -> !word.isEmpty())
                .map((key, word) -> KeyValue.pair(word, word))
                .groupByKey(Grouped.with("counts", Serdes.String(), Serdes.String()))
                .count(Materialized.as("counts"))
                .toStream()
                .to(output, Produced.with(Serdes.String(), Serdes.Long()));

        Properties props = new Properties();
        props.put(StreamsConfig.APPLICATION_ID_CONFIG, appId);
        props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(StreamsConfig.STATE_DIR_CONFIG, args[4]);
        props.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.AT_LEAST_ONCE);
        props.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, 200);
        props.put(StreamsConfig.REPLICATION_FACTOR_CONFIG, 1);
        props.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, 1);
        // Every update reaches OUTPUT, so the test sees each word's counts rise one by one.
        props.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, 0);
        props.put(StreamsConfig.consumerPrefix(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG), "earliest");
        // Internal topics roll segments often and compact soon, so the broker's cleaner works on the changelog
        // while the test runs (log.cleaner.backoff.ms is short there).
        props.put(StreamsConfig.topicPrefix("segment.ms"), 500);
        props.put(StreamsConfig.topicPrefix("min.cleanable.dirty.ratio"), 0.01);

        AtomicLong restored = new AtomicLong();
        AtomicReference<Throwable> failure = new AtomicReference<>();
        KafkaStreams streams = new KafkaStreams(builder.build(), props);
        streams.setGlobalStateRestoreListener(new StateRestoreListener() {
            @Override
            public void onRestoreStart(TopicPartition tp, String store, long start, long end) {}

            @Override
            public void onBatchRestored(TopicPartition tp, String store, long batchEnd, long numRestored) {
                restored.addAndGet(numRestored);
            }

            @Override
            public void onRestoreEnd(TopicPartition tp, String store, long totalRestored) {}
        });
        CountDownLatch running = new CountDownLatch(1);
        streams.setStateListener((now, before) -> {
            if (now == KafkaStreams.State.RUNNING) {
                running.countDown();
            }
        });
        streams.setUncaughtExceptionHandler(e -> {
            failure.set(e);
            return org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse
                    .SHUTDOWN_CLIENT;
        });

        Map<String, Object> report = new TreeMap<>();
        String repartition = appId + "-counts-repartition";
        String changelog = appId + "-counts-changelog";
        try (Admin admin = Scenarios.connect(bootstrap)) {
            streams.start();
            long deadline = System.nanoTime() + DEADLINE.toNanos();
            if (!running.await(DEADLINE.toSeconds(), TimeUnit.SECONDS)) {
                throw new IllegalStateException("Streams not RUNNING after " + DEADLINE + ": " + streams.state());
            }
            while (!caughtUp(admin, appId, Set.of(input, repartition))) {
                if (failure.get() != null) {
                    throw new IllegalStateException("the stream thread failed", failure.get());
                }
                if (System.nanoTime() > deadline) {
                    throw new IllegalStateException("input not all committed after " + DEADLINE);
                }
                Thread.sleep(100);
            }
            report.put("state_before_close", streams.state().toString());
            // Leave the group, so that the next run (a new member) need not wait out this one's session.
            streams.close(CloseOptions.groupMembershipOperation(CloseOptions.GroupMembershipOperation.LEAVE_GROUP)
                    .withTimeout(Duration.ofSeconds(30)));
            report.put("restored", restored.get());
            Map<String, Object> topics = new TreeMap<>();
            for (String topic : new String[] {changelog, repartition}) {
                ConfigResource resource = new ConfigResource(ConfigResource.Type.TOPIC, topic);
                Config config = admin.describeConfigs(Set.of(resource)).all().get().get(resource);
                topics.put(topic, Map.of("cleanup.policy", config.get("cleanup.policy").value()));
            }
            report.put("internal_topics", topics);
        } finally {
            streams.close(Duration.ofSeconds(30));
        }
        System.out.println(Scenarios.Json.write(report));
    }

    /** Whether the group APP_ID has committed the end offset of every partition of TOPICS. */
    static boolean caughtUp(Admin admin, String group, Set<String> topics) throws Exception {
        Map<TopicPartition, OffsetAndMetadata> committed =
                admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get();
        Map<TopicPartition, OffsetSpec> latest = new HashMap<>();
        admin.describeTopics(topics).allTopicNames().get().forEach((name, description) ->
                description.partitions().forEach(p -> latest.put(new TopicPartition(name, p.partition()),
                        OffsetSpec.latest())));
        Map<TopicPartition, ListOffsetsResult.ListOffsetsResultInfo> ends = admin.listOffsets(latest).all().get();
        for (var end : ends.entrySet()) {
            OffsetAndMetadata done = committed.get(end.getKey());
            long at = done == null ? 0 : done.offset();
            if (at < end.getValue().offset()) {
                return false;
            }
        }
        return true;
    }
}
