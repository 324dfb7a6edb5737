/*
 * gcfloor: the group-commit latency floor at a fixed record rate: what the disk alone (and, with `tcp`, the disk
 * plus a loopback request/response path) can do, with no broker and no Kafka client. It is the limit that
 * DESIGN's W4 latency target (50 k records/s of 1 KiB, acks=all, fsync before the ack) is quoted against in
 * perf/compare.sh.
 *
 *   gcfloor FILE RATE SECONDS RECORD_BYTES MODE [tcp]
 *
 * Records are produced at RATE records/s, paced by each record's due time; without `tcp` latency is counted
 * from that due time, so a stall of the appender is not hidden. An appender writes them to FILE, and a flusher runs group-commit rounds as
 * Sluice's flusher does: woken by an append, fdatasync the file, and every record appended before the round
 * started is then durable. A record's latency runs to the end of the first round that covers it.
 *
 * Without `tcp` the pacing thread appends itself. With `tcp` it is a client: it sends the records over one
 * loopback TCP connection (TCP_NODELAY) to a server thread that appends whatever whole records each read
 * brings, and the flusher sends back the count of durable records after each round; a client receiver thread
 * takes the latency when that count arrives. With `tcp` latency counts from the send, as librdkafka's own
 * per-message latency (perf/rdkperf.c) counts from produce(): a late wake-up of the pacing thread is left out
 * of both. That is the smallest broker there can be: the floor for a client
 * and broker sharing this machine, with every cost of the Kafka protocol, the client library and Sluice left out.
 *
 * MODE says what the file looks like where the records land:
 *   append      the file grows with every record (each fdatasync also writes the size and block allocation)
 *   window      a window of 1 MiB of zeros is kept written past the end, 128 KiB at a time, by the appender
 *               right after its records: what Sluice's engine does (engine/src/prewrite.rs)
 *   prewritten  the whole file is written with zeros and synced before the run (the best case of the above)
 *   none        records are not written and rounds do not sync: with `tcp`, the loopback path's floor alone
 *
 * Prints one JSON line: mode, transport, records, rounds, p50/p99/p99.9/max latency in ms.
 * Build: gcc -O2 -pthread.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define WINDOW_BYTES (1 << 20)
#define CHUNK_BYTES (128 << 10)

static int fd, server_sock = -1, client_sock = -1, sync_rounds = 1, window, write_records = 1;
static long total, record;
static int64_t *due_ns, *durable_ns;
static long appended, durable, rounds;
static int finished;
static off_t end, zeroed_to;
static char *zeros;
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

static void send_all(int sock, const void *buf, size_t len) {
    const char *p = buf;
    while (len > 0) {
        ssize_t n = send(sock, p, len, MSG_NOSIGNAL);
        if (n <= 0) die("send");
        p += n, len -= (size_t)n;
    }
}

/* Appends `count` records (at `buf`) to the file, keeps the window ahead, and hands them to the flusher. */
static void append_records(const char *buf, long count) {
    if (write_records) {
        write_all(buf, (size_t)(record * count), end);
        end += record * count;
        if (window && zeroed_to - end < WINDOW_BYTES - CHUNK_BYTES) {
            off_t from = zeroed_to > end ? zeroed_to : end;
            write_all(zeros, CHUNK_BYTES, from);
            zeroed_to = from + CHUNK_BYTES;
        }
    }
    pthread_mutex_lock(&lock);
    appended += count;
    pthread_cond_signal(&work);
    pthread_mutex_unlock(&lock);
}

static void finish_appending(void) {
    pthread_mutex_lock(&lock);
    finished = 1;
    pthread_cond_signal(&work);
    pthread_mutex_unlock(&lock);
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
        if (sync_rounds && fdatasync(fd) != 0) die("fdatasync");
        if (server_sock >= 0) {
            int64_t count = target;
            send_all(server_sock, &count, sizeof count);
        } else {
            int64_t t = now_ns();
            for (long i = durable; i < target; i++) durable_ns[i] = t;
        }
        pthread_mutex_lock(&lock);
        durable = target;
        rounds++;
        pthread_mutex_unlock(&lock);
    }
}

/* tcp: reads the client's records and appends every whole record each read brings. */
static void *server(void *unused) {
    (void)unused;
    size_t cap = (size_t)record * 64, have = 0;
    char *buf = malloc(cap);
    if (!buf) die("malloc");
    for (long received = 0; received < total;) {
        ssize_t n = recv(server_sock, buf + have, cap - have, 0);
        if (n <= 0) die("recv (server)");
        have += (size_t)n;
        long whole = (long)(have / (size_t)record);
        if (whole == 0) continue;
        append_records(buf, whole);
        received += whole;
        have -= (size_t)(whole * record);
        memmove(buf, buf + whole * record, have);
    }
    finish_appending();
    free(buf);
    return NULL;
}

/* tcp: takes each record's latency when the count of durable records covering it arrives. */
static void *receiver(void *unused) {
    (void)unused;
    for (long acked = 0; acked < total;) {
        int64_t count;
        size_t got = 0;
        while (got < sizeof count) {
            ssize_t n = recv(client_sock, (char *)&count + got, sizeof count - got, 0);
            if (n <= 0) die("recv (client)");
            got += (size_t)n;
        }
        int64_t t = now_ns();
        for (; acked < count; acked++) durable_ns[acked] = t;
    }
    return NULL;
}

static void connect_loopback(void) {
    int listener = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof addr;
    if (listener < 0 || bind(listener, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(listener, 1) != 0 ||
        getsockname(listener, (struct sockaddr *)&addr, &len) != 0)
        die("listen");
    client_sock = socket(AF_INET, SOCK_STREAM, 0);
    if (client_sock < 0 || connect(client_sock, (struct sockaddr *)&addr, sizeof addr) != 0) die("connect");
    server_sock = accept(listener, NULL, NULL);
    if (server_sock < 0) die("accept");
    close(listener);
    setsockopt(client_sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(server_sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    int tcp = argc == 7 && !strcmp(argv[6], "tcp");
    if (argc != 6 && !tcp) {
        fprintf(stderr, "usage: gcfloor FILE RATE SECONDS RECORD_BYTES append|window|prewritten|none [tcp]\n");
        return 2;
    }
    long rate = atol(argv[2]), seconds = atol(argv[3]);
    record = atol(argv[4]);
    const char *mode = argv[5];
    window = !strcmp(mode, "window");
    int prewritten = !strcmp(mode, "prewritten"), none = !strcmp(mode, "none");
    if (rate <= 0 || seconds <= 0 || record <= 0 || (!window && !prewritten && !none && strcmp(mode, "append"))) {
        fprintf(stderr, "gcfloor: bad arguments\n");
        return 2;
    }
    write_records = sync_rounds = !none;
    total = rate * seconds;
    fd = open(argv[1], O_CREAT | O_TRUNC | O_RDWR, 0644);
    if (fd < 0) die("open");
    due_ns = calloc((size_t)total, sizeof *due_ns);
    durable_ns = calloc((size_t)total, sizeof *durable_ns);
    char *buf = malloc((size_t)record);
    zeros = calloc(1, CHUNK_BYTES);
    if (!due_ns || !durable_ns || !buf || !zeros) die("calloc");
    memset(buf, 'x', (size_t)record);
    if (prewritten) {
        off_t need = (off_t)(record * total) + WINDOW_BYTES;
        for (; zeroed_to < need; zeroed_to += CHUNK_BYTES) write_all(zeros, CHUNK_BYTES, zeroed_to);
        if (fsync(fd) != 0) die("fsync");
    }
    pthread_t flush_thread, server_thread, receiver_thread;
    if (tcp) {
        connect_loopback();
        if (pthread_create(&server_thread, NULL, server, NULL) != 0 ||
            pthread_create(&receiver_thread, NULL, receiver, NULL) != 0)
            die("pthread_create");
    }
    if (pthread_create(&flush_thread, NULL, flusher, NULL) != 0) die("pthread_create");
    int64_t start = now_ns() + 1000000;
    for (long i = 0; i < total; i++) {
        int64_t due = start + (int64_t)((double)i * 1e9 / (double)rate);
        while (now_ns() < due) {
            struct timespec pause = {0, 20000};
            nanosleep(&pause, NULL);
        }
        if (tcp) {
            due_ns[i] = now_ns();
            send_all(client_sock, buf, (size_t)record);
        } else {
            due_ns[i] = due;
            append_records(buf, 1);
        }
    }
    if (tcp) {
        pthread_join(server_thread, NULL);
        pthread_join(receiver_thread, NULL);
    } else {
        finish_appending();
    }
    pthread_join(flush_thread, NULL);
    for (long i = 0; i < total; i++) durable_ns[i] -= due_ns[i];
    qsort(durable_ns, (size_t)total, sizeof *durable_ns, cmp_i64);
#define Q(p) ((double)durable_ns[(long)((double)(total - 1) * (p))] / 1e6)
    printf("{\"mode\":\"%s\",\"transport\":\"%s\",\"records\":%ld,\"rounds\":%ld,\"p50_ms\":%.3f,\"p99_ms\":%.3f,"
           "\"p999_ms\":%.3f,\"max_ms\":%.3f}\n",
           mode, tcp ? "tcp" : "none", total, rounds, Q(0.5), Q(0.99), Q(0.999), Q(1.0));
    close(fd);
    unlink(argv[1]);
    return 0;
}
