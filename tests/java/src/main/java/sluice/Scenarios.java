package sluice;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.DescribeClusterResult;
import org.apache.kafka.clients.admin.GroupListing;
import org.apache.kafka.clients.admin.ListGroupsOptions;
import org.apache.kafka.clients.admin.ListOffsetsResult;
import org.apache.kafka.clients.admin.NewPartitions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.RecordsToDelete;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * Scenarios for the Java client (kafka-clients) against a broker, driven by tests/clients/test_java_client.py.
 * Each scenario runs several client operations in one JVM and prints what it observed as one JSON object on
 * the last line of stdout; the test asserts on those observations. A failed operation throws, so the process
 * exits non-zero with the client's exception on stderr.
 *
 * <p>Usage: {@code java -cp ... sluice.Scenarios SCENARIO BOOTSTRAP} with SCENARIO one of {@code clients}
 * (idempotent producer, classic and KIP-848 consumer groups, group admin) and {@code admin} (topics,
 * partitions, configs, offsets, DeleteRecords, DescribeCluster).
 */
public final class Scenarios {
    private static final Duration POLL_DEADLINE = Duration.ofSeconds(60);

    private Scenarios() {}

    public static void main(String[] args) throws Exception {
        System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", "warn");
        if (args.length != 2) {
            System.err.println("usage: Scenarios clients|admin BOOTSTRAP");
            System.exit(2);
        }
        Map<String, Object> report;
        switch (args[0]) {
            case "clients" -> report = clients(args[1]);
            case "admin" -> report = admin(args[1]);
            default -> throw new IllegalArgumentException("unknown scenario " + args[0]);
        }
        System.out.println(Json.write(report));
    }

    // ---- clients: idempotent producer, classic and KIP-848 consumers committing offsets ----

    static Map<String, Object> clients(String bootstrap) throws Exception {
        Map<String, Object> report = new TreeMap<>();
        String topic = "jc";
        int records = 3000;
        try (Admin admin = connect(bootstrap)) {
            admin.createTopics(List.of(new NewTopic(topic, 3, (short) 1))).all().get();
            report.put("produced", produce(bootstrap, topic, 0, records));
            report.put("classic_first", consume(bootstrap, topic, "jc-classic", "classic", records));
            report.put("consumer_first", consume(bootstrap, topic, "jc-848", "consumer", records));
            // Both groups committed everything; after 30 more records each reads exactly those 30, from its
            // committed offsets.
            report.put("produced_more", produce(bootstrap, topic, records, 30));
            report.put("classic_again", consume(bootstrap, topic, "jc-classic", "classic", 30));
            report.put("consumer_again", consume(bootstrap, topic, "jc-848", "consumer", 30));

            Map<String, Object> committed = new TreeMap<>();
            for (String group : List.of("jc-classic", "jc-848")) {
                Map<String, Object> offsets = new TreeMap<>();
                for (var e : admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get().entrySet()) {
                    offsets.put(e.getKey().toString(), e.getValue().offset());
                }
                committed.put(group, offsets);
            }
            report.put("committed", committed);

            Map<String, Object> listed = new TreeMap<>();
            for (GroupListing g : admin.listGroups(ListGroupsOptions.forConsumerGroups()).all().get()) {
                listed.put(g.groupId(), Map.of(
                        "type", g.type().map(Object::toString).orElse("?"),
                        "protocol", g.protocol(),
                        "state", g.groupState().map(Object::toString).orElse("?")));
            }
            report.put("listed_groups", listed);

            Map<String, Object> described = new TreeMap<>();
            for (var e : admin.describeConsumerGroups(List.of("jc-classic", "jc-848")).all().get().entrySet()) {
                ConsumerGroupDescription d = e.getValue();
                described.put(e.getKey(), Map.of(
                        "type", d.type().toString(),
                        "state", d.groupState().toString(),
                        "members", d.members().size(),
                        "coordinator", d.coordinator().id()));
            }
            report.put("described_groups", described);
        }
        return report;
    }

    /** Sends values "v-first".."v-(first+count-1)" with 50 keys; returns per partition the offsets in send order. */
    static Map<String, Object> produce(String bootstrap, String topic, int first, int count) throws Exception {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
        p.put(ProducerConfig.MAX_IN_FLIGHT_REQUESTS_PER_CONNECTION, "5");
        p.put(ProducerConfig.LINGER_MS_CONFIG, "5");
        p.put(ProducerConfig.BATCH_SIZE_CONFIG, "4096");
        p.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, "lz4");
        Map<Integer, List<Object>> sent = new TreeMap<>();
        try (KafkaProducer<String, String> producer =
                new KafkaProducer<>(p, new StringSerializer(), new StringSerializer())) {
            List<Future<RecordMetadata>> futures = new ArrayList<>();
            for (int i = first; i < first + count; i++) {
                futures.add(producer.send(new ProducerRecord<>(topic, "k" + (i % 50), "v-" + i)));
            }
            producer.flush();
            for (int i = 0; i < futures.size(); i++) {
                RecordMetadata m = futures.get(i).get();
                sent.computeIfAbsent(m.partition(), k -> new ArrayList<>()).add(List.of(m.offset(), first + i));
            }
        }
        Map<String, Object> out = new TreeMap<>();
        sent.forEach((partition, rows) -> out.put(partition.toString(), rows));
        return out;
    }

    /**
     * Joins {@code group} with the given group.protocol, reads until {@code expected} records arrived (or the
     * deadline passed), commits synchronously and leaves. Returns per partition the [offset, value number] pairs
     * in the order read.
     */
    static Map<String, Object> consume(String bootstrap, String topic, String group, String protocol, int expected) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        p.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, protocol);
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        p.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, "500");
        Map<Integer, List<Object>> read = new TreeMap<>();
        int total = 0;
        long deadline = System.nanoTime() + POLL_DEADLINE.toNanos();
        try (KafkaConsumer<String, String> consumer =
                new KafkaConsumer<>(p, new StringDeserializer(), new StringDeserializer())) {
            consumer.subscribe(List.of(topic));
            while (total < expected && System.nanoTime() < deadline) {
                for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(200))) {
                    read.computeIfAbsent(r.partition(), k -> new ArrayList<>())
                            .add(List.of(r.offset(), Integer.parseInt(r.value().substring(2))));
                    total++;
                }
            }
            consumer.commitSync();
            // A short extra poll: a correct resume yields nothing beyond the expected records.
            for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(300))) {
                read.computeIfAbsent(r.partition(), k -> new ArrayList<>())
                        .add(List.of(r.offset(), Integer.parseInt(r.value().substring(2))));
            }
            consumer.commitSync();
        }
        Map<String, Object> out = new TreeMap<>();
        read.forEach((partition, rows) -> out.put(partition.toString(), rows));
        return out;
    }

    // ---- admin: topics, partitions, configs, offsets, DeleteRecords, DescribeCluster ----

    static Map<String, Object> admin(String bootstrap) throws Exception {
        Map<String, Object> report = new TreeMap<>();
        String topic = "ja";
        try (Admin admin = connect(bootstrap)) {
            DescribeClusterResult cluster = admin.describeCluster();
            List<Object> nodes = new ArrayList<>();
            for (Node n : cluster.nodes().get()) {
                nodes.add(Map.of("id", n.id(), "host", n.host(), "port", n.port()));
            }
            report.put("cluster", Map.of(
                    "id", String.valueOf(cluster.clusterId().get()),
                    "controller", cluster.controller().get().id(),
                    "nodes", nodes));

            admin.createTopics(List.of(new NewTopic(topic, 2, (short) 1).configs(Map.of("retention.ms", "3600000"))))
                    .all().get();
            report.put("create_again_error", errorName(() ->
                    admin.createTopics(List.of(new NewTopic(topic, 2, (short) 1))).all().get()));
            report.put("partitions_created", partitions(admin, topic));
            admin.createPartitions(Map.of(topic, NewPartitions.increaseTo(5))).all().get();
            // New partitions reach a broker's metadata a moment after the answer (on Kafka): wait, bounded.
            for (int i = 0; i < 150 && (int) partitions(admin, topic).get("count") < 5; i++) {
                Thread.sleep(200);
            }
            report.put("partitions_after_increase", partitions(admin, topic));
            report.put("decrease_error", errorName(() ->
                    admin.createPartitions(Map.of(topic, NewPartitions.increaseTo(3))).all().get()));

            ConfigResource resource = new ConfigResource(ConfigResource.Type.TOPIC, topic);
            report.put("configs_created", configs(admin, resource, "retention.ms", "max.message.bytes"));
            admin.incrementalAlterConfigs(Map.of(resource, List.of(
                    new AlterConfigOp(new ConfigEntry("retention.ms", "7200000"), AlterConfigOp.OpType.SET),
                    new AlterConfigOp(new ConfigEntry("max.message.bytes", "200000"), AlterConfigOp.OpType.SET))))
                    .all().get();
            report.put("configs_set", configs(admin, resource, "retention.ms", "max.message.bytes"));
            admin.incrementalAlterConfigs(Map.of(resource, List.of(
                    new AlterConfigOp(new ConfigEntry("retention.ms", ""), AlterConfigOp.OpType.DELETE))))
                    .all().get();
            report.put("configs_deleted", configs(admin, resource, "retention.ms", "max.message.bytes"));
            report.put("bad_config_error", errorName(() -> admin.incrementalAlterConfigs(Map.of(resource, List.of(
                    new AlterConfigOp(new ConfigEntry("no.such.config", "1"), AlterConfigOp.OpType.SET))))
                    .all().get()));
            String nodeId = String.valueOf(cluster.controller().get().id());
            report.put("broker_configs", configs(admin, new ConfigResource(ConfigResource.Type.BROKER, nodeId),
                    "num.partitions", "message.max.bytes"));

            // 100 records into partition 0 with timestamps base+0..base+99.
            TopicPartition tp = new TopicPartition(topic, 0);
            long base = System.currentTimeMillis() - 100_000;
            Properties pp = new Properties();
            pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
            pp.put(ProducerConfig.ACKS_CONFIG, "all");
            try (KafkaProducer<String, String> producer =
                    new KafkaProducer<>(pp, new StringSerializer(), new StringSerializer())) {
                for (int i = 0; i < 100; i++) {
                    producer.send(new ProducerRecord<>(topic, 0, base + i, null, "r" + i));
                }
                producer.flush();
            }
            report.put("offsets_before_delete", Map.of(
                    "earliest", listOffset(admin, tp, OffsetSpec.earliest()),
                    "latest", listOffset(admin, tp, OffsetSpec.latest()),
                    "max_timestamp", listOffset(admin, tp, OffsetSpec.maxTimestamp()),
                    "for_timestamp_50", listOffset(admin, tp, OffsetSpec.forTimestamp(base + 50)),
                    "for_timestamp_after", listOffset(admin, tp, OffsetSpec.forTimestamp(base + 1_000))));
            long low = admin.deleteRecords(Map.of(tp, RecordsToDelete.beforeOffset(40))).lowWatermarks().get(tp).get()
                    .lowWatermark();
            report.put("delete_records_low_watermark", low);
            report.put("offsets_after_delete", Map.of(
                    "earliest", listOffset(admin, tp, OffsetSpec.earliest()),
                    "latest", listOffset(admin, tp, OffsetSpec.latest())));
            report.put("first_read_after_delete", firstOffsetFromBeginning(bootstrap, tp));

            admin.deleteTopics(List.of(topic)).all().get();
            report.put("topics_after_delete", new ArrayList<>(admin.listTopics().names().get()));
        }
        return report;
    }

    static Map<String, Object> partitions(Admin admin, String topic) throws Exception {
        TopicDescription d = admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic);
        List<Object> leaders = new ArrayList<>();
        for (TopicPartitionInfo p : d.partitions()) {
            leaders.add(p.leader() == null ? -1 : p.leader().id());
        }
        return Map.of("count", d.partitions().size(), "leaders", leaders);
    }

    static Map<String, Object> configs(Admin admin, ConfigResource resource, String... names) throws Exception {
        Config config = admin.describeConfigs(List.of(resource)).all().get().get(resource);
        Map<String, Object> out = new TreeMap<>();
        for (String name : names) {
            ConfigEntry e = config.get(name);
            out.put(name, e == null ? null : Map.of("value", String.valueOf(e.value()), "source", e.source().toString()));
        }
        return out;
    }

    static long listOffset(Admin admin, TopicPartition tp, OffsetSpec spec) throws Exception {
        ListOffsetsResult.ListOffsetsResultInfo info = admin.listOffsets(Map.of(tp, spec)).partitionResult(tp).get();
        return info.offset();
    }

    static long firstOffsetFromBeginning(String bootstrap, TopicPartition tp) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        try (KafkaConsumer<String, String> consumer =
                new KafkaConsumer<>(p, new StringDeserializer(), new StringDeserializer())) {
            consumer.assign(List.of(tp));
            consumer.seekToBeginning(List.of(tp));
            long deadline = System.nanoTime() + POLL_DEADLINE.toNanos();
            while (System.nanoTime() < deadline) {
                for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(200))) {
                    return r.offset();
                }
            }
        }
        return -1;
    }

    interface Action {
        void run() throws Exception;
    }

    /** The simple name of the exception an action fails with (unwrapping ExecutionException), or "none". */
    static String errorName(Action action) {
        try {
            action.run();
            return "none";
        } catch (ExecutionException e) {
            return e.getCause().getClass().getSimpleName();
        } catch (Exception e) {
            return e.getClass().getSimpleName();
        }
    }

    static Admin connect(String bootstrap) {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "30000");
        return Admin.create(p);
    }

    /** A minimal JSON writer for the report: maps, collections, strings, numbers, booleans and null. */
    static final class Json {
        private Json() {}

        static String write(Object value) {
            StringBuilder out = new StringBuilder();
            write(out, value);
            return out.toString();
        }

        private static void write(StringBuilder out, Object value) {
            if (value == null) {
                out.append("null");
            } else if (value instanceof Map<?, ?> map) {
                out.append('{');
                boolean first = true;
                for (var e : new TreeMap<>(stringKeys(map)).entrySet()) {
                    if (!first) {
                        out.append(',');
                    }
                    first = false;
                    string(out, e.getKey());
                    out.append(':');
                    write(out, e.getValue());
                }
                out.append('}');
            } else if (value instanceof Collection<?> list) {
                out.append('[');
                boolean first = true;
                for (Object item : list) {
                    if (!first) {
                        out.append(',');
                    }
                    first = false;
                    write(out, item);
                }
                out.append(']');
            } else if (value instanceof Number || value instanceof Boolean) {
                out.append(value);
            } else {
                string(out, value.toString());
            }
        }

        private static Map<String, Object> stringKeys(Map<?, ?> map) {
            Map<String, Object> out = new HashMap<>();
            map.forEach((k, v) -> out.put(String.valueOf(k), v));
            return out;
        }

        private static void string(StringBuilder out, String s) {
            out.append('"');
            for (char c : s.toCharArray()) {
                switch (c) {
                    case '"' -> out.append("\\\"");
                    case '\\' -> out.append("\\\\");
                    case '\n' -> out.append("\\n");
                    default -> {
                        if (c < 0x20) {
                            out.append(String.format("\\u%04x", (int) c));
                        } else {
                            out.append(c);
                        }
                    }
                }
            }
            out.append('"');
        }
    }
}
