/*
 * gcfloor: the disk's own group-commit latency at a fixed record rate, with no broker, network or client.
 * It is the limit that DESIGN's W4 latency target (50 k records/s of 1 KiB, acks=all, fsync before the ack)
 * is quoted against in perf/compare.sh.
 *
 *   gcfloor FILE RATE SECONDS RECORD_BYTES MODE
 *
 * One thread appends RECORD_BYTES at RATE records/s to FILE (paced by each record's due time, and latency is
 * counted from that due time, so a stall is not hidden); another runs group-commit rounds as Sluice's flusher
 * does: woken by an append, fdatasync the file, and every record appended before the round started is then
 * durable. A record's latency is from its due time to the end of the first round that covers it.
 *
 * MODE says what the file looks like where the records land:
 *   append      the file grows with every record (each fdatasync also writes the size and block allocation)
 *   window      a window of 1 MiB of zeros is kept written past the end, 128 KiB at a time, by the appender
 *               right after its record: what Sluice's engine does (engine/src/prewrite.rs)
 *   prewritten  the whole file is written with zeros and synced before the run (the best case of the above)
 *
 * Prints one JSON line: mode, records, rounds, p50/p99/p99.9/max latency in ms. Build: gcc -O2 -pthread.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define WINDOW_BYTES (1 << 20)
#define CHUNK_BYTES (128 << 10)

static int fd;
static long total;
static int64_t *due_ns, *durable_ns;
static long appended, durable, rounds;
static int finished;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t work = PTHREAD_COND_INITIALIZER;

static int64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static void die(const char *what) {
    perror(what);
    exit(2);
}

static void write_all(const char *buf, size_t len, off_t at) {
    while (len > 0) {
        ssize_t n = pwrite(fd, buf, len, at);
        if (n <= 0) die("pwrite");
        buf += n, len -= (size_t)n, at += n;
    }
}

static void *flusher(void *unused) {
    (void)unused;
    for (;;) {
        pthread_mutex_lock(&lock);
        while (appended == durable && !finished) pthread_cond_wait(&work, &lock);
        long target = appended;
        int stop = finished && appended == durable;
        pthread_mutex_unlock(&lock);
        if (stop) return NULL;
        if (fdatasync(fd) != 0) die("fdatasync");
        int64_t t = now_ns();
        for (long i = durable; i < target; i++) durable_ns[i] = t;
        pthread_mutex_lock(&lock);
        durable = target;
        rounds++;
        pthread_mutex_unlock(&lock);
    }
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: gcfloor FILE RATE SECONDS RECORD_BYTES append|window|prewritten\n");
        return 2;
    }
    long rate = atol(argv[2]), seconds = atol(argv[3]), record = atol(argv[4]);
    const char *mode = argv[5];
    int window = !strcmp(mode, "window"), prewritten = !strcmp(mode, "prewritten");
    if (rate <= 0 || seconds <= 0 || record <= 0 || (!window && !prewritten && strcmp(mode, "append"))) {
        fprintf(stderr, "gcfloor: bad arguments\n");
        return 2;
    }
    total = rate * seconds;
    fd = open(argv[1], O_CREAT | O_TRUNC | O_RDWR, 0644);
    if (fd < 0) die("open");
    due_ns = calloc((size_t)total, sizeof *due_ns);
    durable_ns = calloc((size_t)total, sizeof *durable_ns);
    char *buf = malloc((size_t)record), *zeros = calloc(1, CHUNK_BYTES);
    if (!due_ns || !durable_ns || !buf || !zeros) die("calloc");
    memset(buf, 'x', (size_t)record);
    off_t zeroed_to = 0;
    if (prewritten) {
        off_t need = (off_t)(record * total) + WINDOW_BYTES;
        for (; zeroed_to < need; zeroed_to += CHUNK_BYTES) write_all(zeros, CHUNK_BYTES, zeroed_to);
        if (fsync(fd) != 0) die("fsync");
    }
    pthread_t thread;
    if (pthread_create(&thread, NULL, flusher, NULL) != 0) die("pthread_create");
    int64_t start = now_ns() + 1000000;
    off_t end = 0;
    for (long i = 0; i < total; i++) {
        int64_t due = start + (int64_t)((double)i * 1e9 / (double)rate);
        while (now_ns() < due) {
            struct timespec pause = {0, 20000};
            nanosleep(&pause, NULL);
        }
        write_all(buf, (size_t)record, end);
        end += record;
        if (window && zeroed_to - end < WINDOW_BYTES - CHUNK_BYTES) {
            off_t from = zeroed_to > end ? zeroed_to : end;
            write_all(zeros, CHUNK_BYTES, from);
            zeroed_to = from + CHUNK_BYTES;
        }
        due_ns[i] = due;
        pthread_mutex_lock(&lock);
        appended = i + 1;
        pthread_cond_signal(&work);
        pthread_mutex_unlock(&lock);
    }
    pthread_mutex_lock(&lock);
    finished = 1;
    pthread_cond_signal(&work);
    pthread_mutex_unlock(&lock);
    pthread_join(thread, NULL);
    for (long i = 0; i < total; i++) durable_ns[i] -= due_ns[i];
    qsort(durable_ns, (size_t)total, sizeof *durable_ns, cmp_i64);
#define Q(p) ((double)durable_ns[(long)((double)(total - 1) * (p))] / 1e6)
    printf("{\"mode\":\"%s\",\"records\":%ld,\"rounds\":%ld,\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"p999_ms\":%.3f,"
           "\"max_ms\":%.3f}\n",
           mode, total, rounds, Q(0.5), Q(0.99), Q(0.999), Q(1.0));
    close(fd);
    unlink(argv[1]);
    return 0;
}
