/* bench/coord_256.c: the control plane at 256 ranks. Starts the real
 * coordinator (`ignis coordinator` as a child process on a free loopback
 * port, its state in a temporary directory), then 256 simulated workers in
 * this process: 256 DEALER sockets that speak only the protocol, each a
 * node of 1 CPU slot. Per round, it measures:
 *   placement:  SUBMIT of a 256-rank job -> all 256 START_RANKS received;
 *   rendezvous: 256 RENDEZVOUS (fake 64-byte address blobs, sent from the
 *               workers' sockets) -> all 256 RENDEZVOUS_REPLY received, each
 *               with the 256 addresses;
 *   restart:    RANK_EXIT (signal 9) of one rank -> every worker got ABORT of
 *               attempt 1 and START_RANKS of attempt 2;
 * then cancels the job (every worker gets ABORT) and starts the next round.
 * The coordinator's heartbeat timeout is 600 s, so the simulated workers
 * need send no heartbeats. Every wait is bounded (WAIT_MS).
 *     bench_coord_256 IGNIS [ROUNDS]   (IGNIS: the path of the ignis program) */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <zmq.h>

#include "ignis/proto.h"

enum { NW = 256, WAIT_MS = 20000, ADDR_BYTES = 64 };

typedef struct worker {
    void *sock;
    int64_t id;          /* from HELLO_ACK; 0 = not yet */
    int rank;            /* of the current attempt (1 slot: 1 rank) */
    int64_t start_attempt; /* the last START_RANKS' attempt */
    int64_t abort_attempt; /* the last ABORT's attempt */
    int64_t rdv_attempt;   /* the last RENDEZVOUS_REPLY's attempt */
} worker;

static worker W[NW];
static void *client;
static pid_t coord = -1;
static char dir[] = "/tmp/ignis-coord256-XXXXXX";

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void die(const char *what) {
    fprintf(stderr, "bench_coord_256: %s (coordinator log: %s/coord.log)\n", what, dir);
    if (coord > 0) kill(coord, SIGKILL);
    exit(1);
}

static void handle(worker *w, const ig_proto_msg *m) {
    json_t *b = m->body;
    int64_t attempt = json_integer_value(json_object_get(b, "attempt"));
    switch (m->type) {
    case IG_MSG_HELLO_ACK: w->id = json_integer_value(json_object_get(b, "worker")); break;
    case IG_MSG_START_RANKS:
        w->start_attempt = attempt;
        w->rank = (int)json_integer_value(json_object_get(json_array_get(json_object_get(b, "ranks"), 0), "rank"));
        break;
    case IG_MSG_ABORT: w->abort_attempt = attempt; break;
    case IG_MSG_RENDEZVOUS_REPLY:
        if (json_array_size(json_object_get(b, "addresses")) != NW) die("a RENDEZVOUS_REPLY without 256 addresses");
        w->rdv_attempt = attempt;
        break;
    case IG_MSG_OK: break;
    default:
        fprintf(stderr, "worker %lld got %s: %s\n", (long long)w->id, ig_msg_name(m->type),
                json_string_value(json_object_get(b, "message")));
        die("unexpected message");
    }
}

/* Receives whatever the workers got until done() holds, at most WAIT_MS. */
static void wait_until(bool (*done)(int64_t), int64_t arg, const char *what) {
    static zmq_pollitem_t items[NW];
    double deadline = now_s() + WAIT_MS / 1000.0;
    for (int i = 0; i < NW; i++) items[i] = (zmq_pollitem_t){.socket = W[i].sock, .events = ZMQ_POLLIN};
    while (!done(arg)) {
        long left = (long)((deadline - now_s()) * 1000);
        if (left <= 0) die(what);
        if (zmq_poll(items, NW, left) < 0) die("zmq_poll");
        for (int i = 0; i < NW; i++) {
            if (!(items[i].revents & ZMQ_POLLIN)) continue;
            ig_proto_msg m = {0};
            while (ig_proto_recv(W[i].sock, false, 0, &m) == IG_OK) {
                handle(&W[i], &m);
                ig_proto_msg_clear(&m);
            }
            ig_proto_msg_clear(&m);
        }
    }
}

static bool all_acked(int64_t a) { for (int i = 0; i < NW; i++) if (!W[i].id) return false; return (void)a, true; }
static bool all_started(int64_t a) { for (int i = 0; i < NW; i++) if (W[i].start_attempt != a) return false; return true; }
static bool all_aborted(int64_t a) { for (int i = 0; i < NW; i++) if (W[i].abort_attempt != a) return false; return true; }
static bool all_met(int64_t a) { for (int i = 0; i < NW; i++) if (W[i].rdv_attempt != a) return false; return true; }
static bool restarted(int64_t a) { return all_aborted(a - 1) && all_started(a); }

static void send_or_die(void *s, ig_msg_type t, json_t *body) {
    if (ig_proto_send(s, NULL, 0, t, body, WAIT_MS)) die(ig_last_error());
    json_decref(body);
}

static json_t *request(ig_msg_type t, json_t *body, ig_msg_type want, int timeout_ms) {
    ig_proto_msg m = {0};
    ig_status st = ig_proto_send(client, NULL, 0, t, body, timeout_ms);
    json_decref(body);
    if (!st) st = ig_proto_recv(client, false, timeout_ms, &m);
    json_t *out = !st && m.type == want ? json_incref(m.body) : NULL;
    ig_proto_msg_clear(&m);
    return out;
}

static int free_port(void) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t n = sizeof a;
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) || getsockname(s, (struct sockaddr *)&a, &n))
        die("no free port");
    close(s);
    return ntohs(a.sin_port);
}

static void *dealer(void *ctx, const char *endpoint) {
    void *s = zmq_socket(ctx, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
    if (!s || zmq_connect(s, endpoint)) die("zmq_connect");
    return s;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void report(const char *name, double *t, int n) {
    qsort(t, (size_t)n, sizeof *t, cmp);
    printf("%-34s min %7.1f ms  median %7.1f ms  max %7.1f ms\n", name, t[0] * 1e3, t[n / 2] * 1e3,
           t[n - 1] * 1e3);
}

int main(int argc, char **argv) {
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: bench_coord_256 IGNIS [ROUNDS]\n");
        return 2;
    }
    int rounds = argc == 3 ? atoi(argv[2]) : 5;
    if (rounds < 1 || rounds > 1000) rounds = 5;
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max; /* 256 sockets: a TCP connection and a mailbox each */
    setrlimit(RLIMIT_NOFILE, &rl);
    if (!mkdtemp(dir)) die("mkdtemp");
    char endpoint[64], state[sizeof dir + 8], log[sizeof dir + 16];
    snprintf(endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", free_port());
    snprintf(state, sizeof state, "%s/state", dir);
    snprintf(log, sizeof log, "%s/coord.log", dir);
    if ((coord = fork()) == 0) {
        if (!freopen(log, "w", stderr)) _exit(127);
        execl(argv[1], argv[1], "coordinator", "--listen", endpoint, "--state", state, "--heartbeat-timeout",
              "600", (char *)NULL);
        _exit(127);
    }

    void *ctx = zmq_ctx_new();
    zmq_ctx_set(ctx, ZMQ_MAX_SOCKETS, 4 * NW);
    client = dealer(ctx, endpoint);
    json_t *r = NULL;
    for (int k = 0; k < 50 && !r; k++) r = request(IG_MSG_STATUS, json_object(), IG_MSG_STATUS_REPLY, 200);
    if (!r) die("the coordinator did not answer STATUS");
    json_decref(r);

    double t0 = now_s();
    for (int i = 0; i < NW; i++) {
        char node[32];
        snprintf(node, sizeof node, "sim-%03d", i);
        W[i].sock = dealer(ctx, endpoint);
        send_or_die(W[i].sock, IG_MSG_HELLO,
                    json_pack("{s:s, s:{s:i}, s:i}", "node", node, "slots", "cpus", 1, "protocol", IG_PROTO_VERSION));
    }
    wait_until(all_acked, 0, "not every worker got HELLO_ACK");
    printf("256 workers registered (HELLO -> HELLO_ACK, connections included): %.1f ms\n", (now_s() - t0) * 1e3);

    unsigned char blob[ADDR_BYTES];
    double t_place[1000], t_rdv[1000], t_both[1000], t_restart[1000];
    json_t *spec = json_loads("{\"name\": \"bench\", \"model\": {\"type\": \"gpt\", \"n_layer\": 1, \"n_head\": 2, "
                              "\"n_embd\": 16, \"block_size\": 16}, \"data\": {\"format\": \"text\", \"train\": "
                              "\"/nonexistent/corpus.txt\"}, \"train\": {\"batch_size\": 256, \"steps\": 10}}",
                              0, NULL);
    for (int round = 0; round < rounds; round++) {
        /* placement */
        double a = now_s();
        json_t *ack = request(IG_MSG_SUBMIT, json_pack("{s:O, s:i, s:i}", "spec", spec, "ranks", NW, "max_restarts", 3),
                              IG_MSG_SUBMIT_ACK, WAIT_MS);
        if (!ack) die("SUBMIT was not acknowledged");
        int64_t job = json_integer_value(json_object_get(ack, "job"));
        json_decref(ack);
        wait_until(all_started, 1, "not every worker got START_RANKS of attempt 1");
        double b = now_s();
        /* rendezvous */
        for (int i = 0; i < NW; i++) {
            for (int k = 0; k < ADDR_BYTES; k++) blob[k] = (unsigned char)(i * 31 + k);
            char *addr = ig_proto_b64_encode(blob, sizeof blob);
            send_or_die(W[i].sock, IG_MSG_RENDEZVOUS,
                        json_pack("{s:I, s:i, s:i, s:i, s:s}", "job", (json_int_t)job, "attempt", 1, "world", NW,
                                  "rank", W[i].rank, "address", addr));
            free(addr);
        }
        wait_until(all_met, 1, "not every rank got RENDEZVOUS_REPLY");
        double c = now_s();
        /* restart: rank 17's worker reports it killed by signal 9 */
        int victim = 0;
        while (W[victim].rank != 17) victim++;
        send_or_die(W[victim].sock, IG_MSG_RANK_EXIT,
                    json_pack("{s:I, s:i, s:i, s:i, s:f}", "job", (json_int_t)job, "attempt", 1, "rank", 17,
                              "signal", 9, "time", (double)time(NULL)));
        wait_until(restarted, 2, "not every worker got ABORT of attempt 1 and START_RANKS of attempt 2");
        double d = now_s();
        t_place[round] = b - a, t_rdv[round] = c - b, t_both[round] = c - a, t_restart[round] = d - c;
        printf("round %d: placement %.1f ms, rendezvous %.1f ms, restart %.1f ms\n", round + 1, (b - a) * 1e3,
               (c - b) * 1e3, (d - c) * 1e3);
        /* cancel; the next job starts at attempt 1 again */
        json_t *ok = request(IG_MSG_CANCEL, json_pack("{s:I}", "job", (json_int_t)job), IG_MSG_OK, WAIT_MS);
        if (!ok) die("CANCEL was not acknowledged");
        json_decref(ok);
        wait_until(all_aborted, 2, "not every worker got ABORT of attempt 2");
        for (int i = 0; i < NW; i++) W[i].start_attempt = W[i].abort_attempt = W[i].rdv_attempt = 0;
    }
    printf("--- %d rounds, 256 workers of 1 slot, one 256-rank job per round ---\n", rounds);
    report("placement (SUBMIT -> 256 START)", t_place, rounds);
    report("rendezvous (256 RDV -> 256 REPLY)", t_rdv, rounds);
    report("placement + rendezvous", t_both, rounds);
    report("restart (RANK_EXIT -> ABORT+START)", t_restart, rounds);

    json_decref(spec);
    for (int i = 0; i < NW; i++) zmq_close(W[i].sock);
    zmq_close(client);
    zmq_ctx_term(ctx);
    kill(coord, SIGTERM);
    int status = 0;
    for (int k = 0; k < 50 && waitpid(coord, &status, WNOHANG) == 0; k++) usleep(100000);
    if (waitpid(coord, &status, WNOHANG) == 0) kill(coord, SIGKILL), waitpid(coord, &status, 0);
    char cmd[sizeof dir + 16];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd)) fprintf(stderr, "could not remove %s\n", dir);
    return 0;
}
