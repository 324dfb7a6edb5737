/*
 * rdkperf: an independent librdkafka-based load generator for perf/compare.sh, in the spirit of librdkafka's
 * own rdkafka_performance. It cross-checks `sluice bench` with a client we did not write.
 *
 *   rdkperf produce BOOTSTRAP TOPIC RECORD_SIZE RECORDS [prop=value ...]
 *   rdkperf consume BOOTSTRAP TOPIC RECORDS [prop=value ...]
 *
 * Any prop=value goes to librdkafka (acks, linger.ms, batch.size, compression.type, ...), except `rate=N`,
 * which paces the producer at N records/s. Records are spread round-robin over the topic's partitions.
 * It prints one JSON line: records, bytes, seconds, records_per_second, mb_per_second, errors, and for
 * produce the delivery latency (librdkafka's own per-message latency, from produce() to acknowledgement)
 * p50/p99/p99.9/max in milliseconds. Build: gcc -O2 -o rdkperf rdkperf.c -lrdkafka
 */
#include <librdkafka/rdkafka.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int64_t *latencies_us;
static size_t latencies_len, latencies_cap;
static uint64_t delivered, delivered_bytes, failed;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *detail) {
    fprintf(stderr, "rdkperf: %s: %s\n", what, detail);
    exit(2);
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk;
    (void)opaque;
    if (m->err) {
        if (failed++ < 5) fprintf(stderr, "rdkperf: delivery failed: %s\n", rd_kafka_err2str(m->err));
        return;
    }
    delivered++;
    delivered_bytes += m->len;
    if (latencies_len < latencies_cap) latencies_us[latencies_len++] = rd_kafka_message_latency(m);
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static double quantile_ms(double q) {
    if (latencies_len == 0) return 0.0;
    size_t i = (size_t)(q * (double)(latencies_len - 1) + 0.5);
    return (double)latencies_us[i] / 1000.0;
}

/* Applies prop=value arguments; returns the `rate` one (0 when absent). */
static long configure(rd_kafka_conf_t *conf, int argc, char **argv) {
    char err[512];
    long rate = 0;
    for (int i = 0; i < argc; i++) {
        char *eq = strchr(argv[i], '=');
        if (!eq) die("expected prop=value", argv[i]);
        *eq = '\0';
        if (strcmp(argv[i], "rate") == 0) {
            rate = atol(eq + 1);
        } else if (rd_kafka_conf_set(conf, argv[i], eq + 1, err, sizeof err) != RD_KAFKA_CONF_OK) {
            die(argv[i], err);
        }
    }
    return rate;
}

static int partition_count(rd_kafka_t *rk, rd_kafka_topic_t *topic) {
    const struct rd_kafka_metadata *md;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, topic, &md, 10000);
    if (err) die("metadata", rd_kafka_err2str(err));
    if (md->topic_cnt != 1 || md->topics[0].err) die("metadata", "topic not found");
    int count = md->topics[0].partition_cnt;
    rd_kafka_metadata_destroy(md);
    return count;
}

static int produce(const char *bootstrap, const char *topic_name, size_t size, uint64_t records, int argc,
                   char **argv) {
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, err, sizeof err);
    rd_kafka_conf_set(conf, "queue.buffering.max.messages", "1000000", err, sizeof err);
    rd_kafka_conf_set(conf, "queue.buffering.max.kbytes", "1048576", err, sizeof err);
    long rate = configure(conf, argc, argv);
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (!rk) die("producer", err);
    rd_kafka_topic_t *topic = rd_kafka_topic_new(rk, topic_name, NULL);
    int partitions = partition_count(rk, topic);

    latencies_cap = records;
    latencies_us = malloc(sizeof(int64_t) * (records ? records : 1));
    char *payload = malloc(size ? size : 1);
    for (size_t i = 0; i < size; i++) payload[i] = (char)('a' + i % 26);

    double start = now_s();
    for (uint64_t i = 0; i < records; i++) {
        if (rate > 0) {
            double due = start + (double)i / (double)rate;
            double wait = due - now_s();
            if (wait > 0) {
                struct timespec ts = {(time_t)wait, (long)((wait - (double)(time_t)wait) * 1e9)};
                nanosleep(&ts, NULL);
            }
        }
        while (rd_kafka_produce(topic, (int32_t)(i % (uint64_t)partitions), 0, payload, size, NULL, 0, NULL) ==
               -1) {
            if (rd_kafka_last_error() != RD_KAFKA_RESP_ERR__QUEUE_FULL)
                die("produce", rd_kafka_err2str(rd_kafka_last_error()));
            rd_kafka_poll(rk, 1);
        }
        rd_kafka_poll(rk, 0);
    }
    while (rd_kafka_outq_len(rk) > 0) rd_kafka_poll(rk, 10);
    double seconds = now_s() - start;

    qsort(latencies_us, latencies_len, sizeof(int64_t), cmp_i64);
    printf("{\"records\":%llu,\"bytes\":%llu,\"seconds\":%.3f,\"records_per_second\":%.1f,"
           "\"mb_per_second\":%.3f,\"latency_ms\":{\"p50\":%.3f,\"p99\":%.3f,\"p999\":%.3f,\"max\":%.3f},"
           "\"errors\":%llu}\n",
           (unsigned long long)delivered, (unsigned long long)delivered_bytes, seconds, delivered / seconds,
           delivered_bytes / seconds / 1e6, quantile_ms(0.5), quantile_ms(0.99), quantile_ms(0.999),
           quantile_ms(1.0), (unsigned long long)failed);
    rd_kafka_topic_destroy(topic);
    rd_kafka_destroy(rk);
    return failed ? 1 : 0;
}

static int consume(const char *bootstrap, const char *topic_name, uint64_t records, int argc, char **argv) {
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, err, sizeof err);
    rd_kafka_conf_set(conf, "group.id", "rdkperf", err, sizeof err);
    rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof err);
    rd_kafka_conf_set(conf, "fetch.max.bytes", "104857600", err, sizeof err);
    rd_kafka_conf_set(conf, "max.partition.fetch.bytes", "16777216", err, sizeof err);
    rd_kafka_conf_set(conf, "queued.max.messages.kbytes", "1048576", err, sizeof err);
    configure(conf, argc, argv);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    if (!rk) die("consumer", err);
    rd_kafka_topic_t *topic = rd_kafka_topic_new(rk, topic_name, NULL);
    int partitions = partition_count(rk, topic);
    rd_kafka_topic_destroy(topic);
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(partitions);
    for (int p = 0; p < partitions; p++)
        rd_kafka_topic_partition_list_add(list, topic_name, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_resp_err_t aerr = rd_kafka_assign(rk, list);
    if (aerr) die("assign", rd_kafka_err2str(aerr));
    rd_kafka_topic_partition_list_destroy(list);

    uint64_t got = 0, bytes = 0, errors = 0;
    double start = 0, last = now_s();
    while (got < records) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 1000);
        if (!m) {
            if (now_s() - last > 30) die("consume", "no record for 30 s");
            continue;
        }
        if (m->err) {
            if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF && errors++ < 5)
                fprintf(stderr, "rdkperf: consume: %s\n", rd_kafka_message_errstr(m));
        } else {
            if (got == 0) start = now_s();
            got++;
            bytes += m->len;
            last = now_s();
        }
        rd_kafka_message_destroy(m);
    }
    double seconds = now_s() - start;
    printf("{\"records\":%llu,\"bytes\":%llu,\"seconds\":%.3f,\"records_per_second\":%.1f,"
           "\"mb_per_second\":%.3f,\"errors\":%llu}\n",
           (unsigned long long)got, (unsigned long long)bytes, seconds, got / seconds, bytes / seconds / 1e6,
           (unsigned long long)errors);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 6 && strcmp(argv[1], "produce") == 0)
        return produce(argv[2], argv[3], (size_t)atol(argv[4]), strtoull(argv[5], NULL, 10), argc - 6, argv + 6);
    if (argc >= 5 && strcmp(argv[1], "consume") == 0)
        return consume(argv[2], argv[3], strtoull(argv[4], NULL, 10), argc - 5, argv + 5);
    fprintf(stderr,
            "usage: rdkperf produce BOOTSTRAP TOPIC RECORD_SIZE RECORDS [prop=value ...]\n"
            "       rdkperf consume BOOTSTRAP TOPIC RECORDS [prop=value ...]\n");
    return 2;
}
