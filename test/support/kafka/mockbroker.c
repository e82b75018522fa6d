/*
 * A Kafka-protocol test broker: librdkafka's mock cluster behind a line protocol.
 *
 *   mockbroker <brokers> [topic:partitions ...]
 *
 * Prints the bootstrap address ("127.0.0.1:port,...") as the first stdout line, then reads one command
 * per line on stdin and answers each with one line, "ok" or "error <reason>":
 *
 *   down <brokerId>                         disconnect a broker and refuse new connections
 *   up <brokerId>                           accept connections again
 *   topic <name> <partitions>               create a topic (the mock has no CreateTopics handler)
 *   error <apiKey> <errcode> <count>        the next <count> requests of <apiKey> fail with <errcode>
 *   broker-error <brokerId> <apiKey> <errcode> <count>   same, on one broker only
 *   clear <apiKey>                          drop pending cluster-wide errors for <apiKey>
 *   leader <topic> <partition> <brokerId>   move a partition's leader
 *   rtt <brokerId> <ms>                     delay every response of a broker
 *   apiversion <apiKey> <min> <max>         announce only these versions of <apiKey> in ApiVersions
 *   leader-answer <topic> <p> <id> <epoch>  the next Metadata answer gives this leader and leader epoch for the
 *                                           partition, whatever they are (librdkafka 2.4 and later)
 *   produce <topic> <partition> <codec> <count>   write <count> records with librdkafka's producer, its
 *                                           compression.codec set to <codec> (none, gzip, snappy, lz4,
 *                                           zstd): key "k<i % 10>", header "src: mockbroker", value
 *                                           {"n":<i>,"codec":"<codec>","pad":"<80 zeros>"}
 *
 * Broker ids start at 1. Exits with status 0 on SIGTERM, SIGINT or end of stdin, so a test runner that
 * dies without stopping it still takes it down (its stdin pipe closes).
 *
 * Build: gcc -O2 -o mockbroker mockbroker.c -lrdkafka   (Debian: apt-get install librdkafka-dev)
 * scripts/test-setup.mjs also links it against a recent librdkafka built from source (mockbroker-recent),
 * whose mock speaks current protocol versions (Metadata v12, Fetch v16, Produce v10).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <sys/socket.h>

/*
 * Kafka brokers turn Nagle's algorithm off on every connection (TCP_NODELAY, as Kafka's SocketServer does);
 * librdkafka's mock leaves it on. Then of two answers written back to back on one connection, the second waits
 * for the client's delayed acknowledgement of the first, up to 40 ms, which no real broker makes a client wait.
 * The mock accepts its connections with accept(3) from librdkafka; this program's own definition comes first
 * in symbol lookup, calls the C library's and sets TCP_NODELAY on the new socket.
 */
static void no_delay(int fd) {
        int one = 1;
        if (fd >= 0)
                setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

int accept(int fd, struct sockaddr *addr, socklen_t *len) {
        static int (*libc_accept)(int, struct sockaddr *, socklen_t *);
        if (!libc_accept)
                libc_accept = (int (*)(int, struct sockaddr *, socklen_t *))dlsym(RTLD_NEXT, "accept");
        int s = libc_accept(fd, addr, len);
        no_delay(s);
        return s;
}

int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags) {
        static int (*libc_accept4)(int, struct sockaddr *, socklen_t *, int);
        if (!libc_accept4)
                libc_accept4 = (int (*)(int, struct sockaddr *, socklen_t *, int))dlsym(RTLD_NEXT, "accept4");
        int s = libc_accept4(fd, addr, len, flags);
        no_delay(s);
        return s;
}

static volatile sig_atomic_t run = 1;

static void on_signal(int sig) {
        (void)sig;
        run = 0;
}

/* Parses a whole decimal integer; returns 0 on success. */
static int parse_long(const char *s, long *out) {
        char *end;
        if (!s || !*s)
                return -1;
        errno = 0;
        *out = strtol(s, &end, 10);
        return (errno || *end) ? -1 : 0;
}

static void reply_err(rd_kafka_resp_err_t err) {
        if (err)
                printf("error %s\n", rd_kafka_err2str(err));
        else
                printf("ok\n");
}

/* Delivery reports of the produce command: counts failures, keeps the first error. */
static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
        rd_kafka_resp_err_t *first = opaque;
        (void)rk;
        if (m->err && !*first)
                *first = m->err;
}

/* The produce command: a librdkafka producer of its own, connected to the mock cluster. */
static void produce(rd_kafka_mock_cluster_t *mc, const char *topic, int32_t partition, const char *codec,
                    long count) {
        char errstr[512], value[160], key[16];
        rd_kafka_resp_err_t first = RD_KAFKA_RESP_ERR_NO_ERROR;
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        rd_kafka_t *p;

        rd_kafka_conf_set_opaque(conf, &first);
        rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
        if (rd_kafka_conf_set(conf, "bootstrap.servers", rd_kafka_mock_cluster_bootstraps(mc), errstr,
                              sizeof errstr) ||
            rd_kafka_conf_set(conf, "compression.codec", codec, errstr, sizeof errstr) ||
            rd_kafka_conf_set(conf, "linger.ms", "20", errstr, sizeof errstr) ||
            rd_kafka_conf_set(conf, "log_level", "0", errstr, sizeof errstr)) {
                rd_kafka_conf_destroy(conf);
                printf("error %s\n", errstr);
                return;
        }
        p = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
        if (!p) {
                printf("error %s\n", errstr);
                return;
        }
        for (long i = 0; i < count && !first; i++) {
                int klen = snprintf(key, sizeof key, "k%ld", i % 10);
                int vlen = snprintf(value, sizeof value, "{\"n\":%ld,\"codec\":\"%s\",\"pad\":\"%080d\"}", i,
                                    codec, 0);
                rd_kafka_resp_err_t err;
                while ((err = rd_kafka_producev(p, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
                                                RD_KAFKA_V_KEY(key, (size_t)klen),
                                                RD_KAFKA_V_VALUE(value, (size_t)vlen),
                                                RD_KAFKA_V_HEADER("src", "mockbroker", 10),
                                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END)) ==
                       RD_KAFKA_RESP_ERR__QUEUE_FULL)
                        rd_kafka_poll(p, 10);
                if (err && !first)
                        first = err;
        }
        if (!first && rd_kafka_flush(p, 30000))
                first = RD_KAFKA_RESP_ERR__TIMED_OUT;
        rd_kafka_poll(p, 0);
        rd_kafka_destroy(p);
        reply_err(first);
}

static void handle(rd_kafka_mock_cluster_t *mc, char *line) {
        char *argv[6];
        int argc = 0;
        long a, b, c, d;
        char *tok, *save = NULL;

        for (tok = strtok_r(line, " \t\r", &save); tok && argc < 6; tok = strtok_r(NULL, " \t\r", &save))
                argv[argc++] = tok;
        if (argc == 0)
                return;

        if ((!strcmp(argv[0], "down") || !strcmp(argv[0], "up")) && argc == 2 && !parse_long(argv[1], &a)) {
                reply_err(argv[0][0] == 'd' ? rd_kafka_mock_broker_set_down(mc, (int32_t)a)
                                            : rd_kafka_mock_broker_set_up(mc, (int32_t)a));
        } else if (!strcmp(argv[0], "topic") && argc == 3 && !parse_long(argv[2], &a) && a > 0) {
                reply_err(rd_kafka_mock_topic_create(mc, argv[1], (int)a, 1));
        } else if (!strcmp(argv[0], "error") && argc == 4 && !parse_long(argv[1], &a) &&
                   !parse_long(argv[2], &b) && !parse_long(argv[3], &c) && c > 0 && c <= 1000) {
                rd_kafka_resp_err_t errs[1000];
                for (long i = 0; i < c; i++)
                        errs[i] = (rd_kafka_resp_err_t)b;
                rd_kafka_mock_push_request_errors_array(mc, (int16_t)a, (size_t)c, errs);
                printf("ok\n");
        } else if (!strcmp(argv[0], "broker-error") && argc == 5 && !parse_long(argv[1], &a) &&
                   !parse_long(argv[2], &b) && !parse_long(argv[3], &c) && !parse_long(argv[4], &d) &&
                   d > 0) {
                rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
                for (long i = 0; i < d && !err; i++)
                        err = rd_kafka_mock_broker_push_request_error_rtts(mc, (int32_t)a, (int16_t)b, 1,
                                                                           (rd_kafka_resp_err_t)c, 0);
                reply_err(err);
        } else if (!strcmp(argv[0], "clear") && argc == 2 && !parse_long(argv[1], &a)) {
                rd_kafka_mock_clear_request_errors(mc, (int16_t)a);
                printf("ok\n");
        } else if (!strcmp(argv[0], "leader") && argc == 4 && !parse_long(argv[2], &a) &&
                   !parse_long(argv[3], &b)) {
                reply_err(rd_kafka_mock_partition_set_leader(mc, argv[1], (int32_t)a, (int32_t)b));
        } else if (!strcmp(argv[0], "produce") && argc == 5 && !parse_long(argv[2], &a) &&
                   !parse_long(argv[4], &b) && b >= 0) {
                produce(mc, argv[1], (int32_t)a, argv[3], b);
        } else if (!strcmp(argv[0], "apiversion") && argc == 4 && !parse_long(argv[1], &a) &&
                   !parse_long(argv[2], &b) && !parse_long(argv[3], &c)) {
                reply_err(rd_kafka_mock_set_apiversion(mc, (int16_t)a, (int16_t)b, (int16_t)c));
#if RD_KAFKA_VERSION >= 0x020400ff
        } else if (!strcmp(argv[0], "leader-answer") && argc == 5 && !parse_long(argv[2], &a) &&
                   !parse_long(argv[3], &b) && !parse_long(argv[4], &c)) {
                reply_err(rd_kafka_mock_partition_push_leader_response(mc, argv[1], (int)a, (int32_t)b,
                                                                       (int32_t)c));
#endif
        } else if (!strcmp(argv[0], "rtt") && argc == 3 && !parse_long(argv[1], &a) &&
                   !parse_long(argv[2], &b)) {
                reply_err(rd_kafka_mock_broker_set_rtt(mc, (int32_t)a, (int)b));
        } else {
                printf("error unknown or malformed command: %s\n", argv[0]);
        }
}

int main(int argc, char **argv) {
        char errstr[512];
        char buf[4096];
        size_t used = 0;
        long brokers;
        rd_kafka_conf_t *conf;
        rd_kafka_t *rk;
        rd_kafka_mock_cluster_t *mc;
        struct sigaction sa;

        if (argc < 2 || parse_long(argv[1], &brokers) || brokers < 1) {
                fprintf(stderr, "usage: %s <brokers> [topic:partitions ...]\n", argv[0]);
                return 2;
        }

        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_signal; /* no SA_RESTART: poll() returns EINTR so the loop sees run == 0 */
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        signal(SIGPIPE, SIG_IGN);

        /* The mock needs a client instance for its bookkeeping only; keep that client quiet. */
        conf = rd_kafka_conf_new();
        rd_kafka_conf_set(conf, "log_level", "0", errstr, sizeof errstr);
        rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
        if (!rk) {
                fprintf(stderr, "rd_kafka_new failed: %s\n", errstr);
                return 1;
        }
        mc = rd_kafka_mock_cluster_new(rk, (int)brokers);
        if (!mc) {
                fprintf(stderr, "rd_kafka_mock_cluster_new failed\n");
                rd_kafka_destroy(rk);
                return 1;
        }
#if RD_KAFKA_VERSION <= 0x020002ff
        /* librdkafka 2.0.2's mock writes the leader epoch of a ListOffsets v4+ answer as 8 bytes instead of 4, so
         * no client can read it; announce the versions before it, as a broker of that age would. */
        rd_kafka_mock_set_apiversion(mc, 2, 0, 3);
#endif

        for (int i = 2; i < argc; i++) {
                char name[256];
                long parts;
                const char *colon = strrchr(argv[i], ':');
                size_t len = colon ? (size_t)(colon - argv[i]) : 0;
                if (!colon || len == 0 || len >= sizeof name || parse_long(colon + 1, &parts) || parts < 1) {
                        fprintf(stderr, "bad topic spec '%s', expected name:partitions\n", argv[i]);
                        _exit(2);
                }
                memcpy(name, argv[i], len);
                name[len] = '\0';
                rd_kafka_mock_topic_create(mc, name, (int)parts, 1);
        }

        setvbuf(stdout, NULL, _IOLBF, 0);
        printf("%s\n", rd_kafka_mock_cluster_bootstraps(mc));

        while (run) {
                struct pollfd pfd = {.fd = STDIN_FILENO, .events = POLLIN};
                int r = poll(&pfd, 1, 500);
                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        break;
                }
                if (r == 0)
                        continue;
                ssize_t n = read(STDIN_FILENO, buf + used, sizeof buf - 1 - used);
                if (n <= 0)
                        break; /* EOF: the parent went away */
                used += (size_t)n;
                buf[used] = '\0';
                char *start = buf, *nl;
                while ((nl = strchr(start, '\n'))) {
                        *nl = '\0';
                        handle(mc, start);
                        start = nl + 1;
                }
                used -= (size_t)(start - buf);
                memmove(buf, start, used);
                if (used == sizeof buf - 1) {
                        printf("error command line too long\n");
                        used = 0;
                }
        }

        /* rd_kafka_mock_cluster_destroy() takes a full second (it waits out its thread's poll interval);
         * the process holds nothing the OS does not release, so exit at once and keep test teardown fast. */
        fflush(stdout);
        _exit(0);
}
