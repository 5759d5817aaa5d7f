/* coordinator/auth.c: who may talk to a CurveZMQ coordinator (auth.h,
 * docs/protocol.md "Security"). The coordinator's ROUTER is a CurveZMQ
 * server; libzmq asks the ZAP handler (RFC 27: a REP socket bound to
 * inproc://zeromq.zap.01 in the same context) about every client handshake,
 * and this one answers 200 only for public keys listed in the authorized-keys
 * file: one Z85 key per line, optionally followed by a comment; '#' lines and
 * blank lines are skipped, like ssh's authorized_keys.
 *
 * Invariants: the file is re-read before a request when its identity, size or
 * mtime changed, so keys are added or removed without a restart; a malformed
 * line is logged (FILE:LINE) and skipped; while the file cannot be read every
 * key is refused (fail closed). Every refusal is one log line naming the
 * peer's address and key, and a 400 to the client, whose handshake then fails
 * (ZMQ_EVENT_HANDSHAKE_FAILED_AUTH on its side); the daemon goes on.
 *
 * Handshakes that fail before ZAP is asked (a plaintext client, a client
 * holding the wrong coordinator key) come from a monitor of the ROUTER,
 * read in ig__auth_serve; ZeroMQ only names our own endpoint for them, and
 * a client with the wrong key retries every 100 ms, so they are counted and
 * logged at most once per FAILURES_EVERY_S. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <zmq.h>

#include "coordinator/auth.h"
#include "core/impl.h"
#include "ignis/proto.h"

enum { MAX_FRAMES = 8, CURVE_KEY_BYTES = 32, FAILURES_EVERY_S = 10 };

struct ig__auth {
    void *zap;
    void *monitor;                   /* PAIR: the ROUTER's failed handshakes */
    int plaintext, wrong_key, other; /* failed handshakes not logged yet */
    double logged_at;                /* monotonic seconds of the last such log line; 0: never */
    char *path;
    ig__auth_log log;
    char (*keys)[IG_PROTO_KEY_LEN + 1];
    int nkeys;
    bool readable;    /* the last look at the file could read it */
    struct stat seen; /* the file as last read */
    char summary[1200];
};

static bool same_file(const struct stat *a, const struct stat *b) {
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* The file is gone or unreadable: at start an error, later every key refused. */
static ig_status unreadable(ig__auth *a, bool first, int err) {
    if (first) return ig__error(IG_ERR_IO, "--authorized-keys %s: %s", a->path, strerror(err));
    if (a->readable)
        a->log("authorized keys %s: %s: every key is refused until it can be read", a->path, strerror(err));
    a->readable = false;
    a->nkeys = 0;
    return IG_OK;
}

/* Reads the file when it changed since the last read. */
static ig_status reload(ig__auth *a, bool first) {
    struct stat st;
    if (stat(a->path, &st)) return unreadable(a, first, errno);
    if (a->readable && same_file(&st, &a->seen)) return IG_OK;
    FILE *f = fopen(a->path, "r");
    if (!f) return unreadable(a, first, errno);
    char *line = NULL;
    size_t cap = 0;
    int n = 0, lineno = 0;
    while (getline(&line, &cap, f) >= 0) {
        lineno++;
        char *key = line + strspn(line, " \t\r\n");
        key[strcspn(key, " \t\r\n")] = 0;
        if (!*key || *key == '#') continue;
        if (!ig_proto_key_is_z85(key)) {
            a->log("%s:%d: expected a %d-character Z85 public key, got '%.48s'; line skipped", a->path,
                   lineno, IG_PROTO_KEY_LEN, key);
            continue;
        }
        a->keys = realloc(a->keys, (size_t)(n + 1) * sizeof *a->keys);
        memcpy(a->keys[n++], key, IG_PROTO_KEY_LEN + 1);
    }
    free(line);
    fclose(f);
    if (!first) a->log("authorized keys %s re-read: %d key(s)", a->path, n);
    a->nkeys = n;
    a->readable = true;
    a->seen = st;
    return IG_OK;
}

static bool authorized(const ig__auth *a, const char *key) {
    for (int k = 0; k < a->nkeys; k++)
        if (!strcmp(a->keys[k], key)) return true;
    return false;
}

ig_status ig__auth_open(void *zctx, void *router, const char *key_file, const char *authorized_keys,
                        ig__auth_log log, ig__auth **out) {
    *out = NULL;
    ig_proto_keypair kp;
    if (ig_proto_keypair_load(key_file, &kp)) {
        char why[1200];
        snprintf(why, sizeof why, "%s", ig_last_error());
        return ig__error(ig_last_status(), "coordinator: --key: %s", why);
    }
    ig__auth *a = calloc(1, sizeof *a);
    a->path = realpath(authorized_keys, NULL); /* absolute in the log lines */
    if (!a->path) a->path = strdup(authorized_keys);
    a->log = log;
    ig_status s = reload(a, true);
    int one = 1, zero = 0;
    if (!s && (zmq_setsockopt(router, ZMQ_CURVE_SERVER, &one, sizeof one) ||
               zmq_setsockopt(router, ZMQ_CURVE_SECRETKEY, kp.secret_key, IG_PROTO_KEY_LEN)))
        s = ig__error(IG_ERR_COMM, "coordinator: CurveZMQ server: %s", zmq_strerror(errno));
    if (!s &&
        (!(a->zap = zmq_socket(zctx, ZMQ_REP)) || zmq_setsockopt(a->zap, ZMQ_LINGER, &zero, sizeof zero) ||
         zmq_bind(a->zap, "inproc://zeromq.zap.01")))
        s = ig__error(IG_ERR_COMM, "coordinator: ZAP handler: %s", zmq_strerror(errno));
    if (!s && (!(a->monitor = zmq_socket(zctx, ZMQ_PAIR)) ||
               zmq_setsockopt(a->monitor, ZMQ_LINGER, &zero, sizeof zero) ||
               zmq_socket_monitor(router, "inproc://ignis-coordinator-monitor",
                                  ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) ||
               zmq_connect(a->monitor, "inproc://ignis-coordinator-monitor")))
        s = ig__error(IG_ERR_COMM, "coordinator: socket monitor: %s", zmq_strerror(errno));
    if (s) {
        ig__auth_close(a);
        return s;
    }
    snprintf(a->summary, sizeof a->summary, "CurveZMQ, public key %s, %d authorized key(s) in %s",
             kp.public_key, a->nkeys, a->path);
    *out = a;
    return IG_OK;
}

int ig__auth_fd(const ig__auth *a) {
    int fd = -1;
    size_t n = sizeof fd;
    zmq_getsockopt(a->zap, ZMQ_FD, &fd, &n);
    return fd;
}

const char *ig__auth_summary(const ig__auth *a) { return a->summary; }

static bool frame_is(zmq_msg_t *m, const char *text) {
    return zmq_msg_size(m) == strlen(text) && !memcmp(zmq_msg_data(m), text, strlen(text));
}

/* One request (frames: version, request id, domain, address, routing id,
 * mechanism, credentials...): its status code, logging refusals. */
static const char *decide(ig__auth *a, zmq_msg_t *f, int n, char *user) {
    char addr[64] = "";
    if (n >= 4)
        snprintf(addr, sizeof addr, "%.*s", (int)(zmq_msg_size(&f[3]) < 63 ? zmq_msg_size(&f[3]) : 63),
                 (const char *)zmq_msg_data(&f[3]));
    if (n < 6 || !frame_is(&f[0], "1.0")) {
        a->log("ZAP: a malformed request (%d frames) refused", n);
        return "500";
    }
    if (!frame_is(&f[5], "CURVE") || n != 7 || zmq_msg_size(&f[6]) != CURVE_KEY_BYTES) {
        a->log("refused connection from %s: not CurveZMQ", *addr ? addr : "(local)");
        return "400";
    }
    char key[IG_PROTO_KEY_LEN + 1];
    zmq_z85_encode(key, zmq_msg_data(&f[6]), CURVE_KEY_BYTES);
    reload(a, false);
    if (authorized(a, key)) {
        memcpy(user, key, sizeof key);
        return "200";
    }
    a->log("refused tcp connection from %s: key %s is not in %s", *addr ? addr : "(local)", key, a->path);
    return "400";
}

static double mono_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The ROUTER's failed handshakes: counted, logged at most every FAILURES_EVERY_S. */
static void count_failures(ig__auth *a) {
    zmq_msg_t part;
    for (;;) {
        uint32_t value = 0;
        int got = 0;
        for (int more = 1, k = 0; more; k++) { /* [u16 event, u32 value][endpoint] */
            zmq_msg_init(&part);
            if (zmq_msg_recv(&part, a->monitor, ZMQ_DONTWAIT) < 0)
                more = 0;
            else {
                if (k == 0 && zmq_msg_size(&part) >= 6)
                    memcpy(&value, (char *)zmq_msg_data(&part) + 2, 4), got = 1;
                more = zmq_msg_more(&part);
            }
            zmq_msg_close(&part);
        }
        if (!got) break;
        if (value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH)
            a->plaintext++;
        else if (value == ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC)
            a->wrong_key++;
        else
            a->other++;
    }
    double now = mono_s();
    if (!(a->plaintext + a->wrong_key + a->other) || (a->logged_at && now - a->logged_at < FAILURES_EVERY_S))
        return;
    char text[400];
    int n = 0;
    const int counts[] = {a->plaintext, a->wrong_key, a->other};
    static const char *const why[] = {
        "plaintext (a client without IGNIS_KEY?)",
        "a hello that did not decrypt (a client with the wrong coordinator key?)", "another protocol error"};
    for (int k = 0; k < 3; k++)
        if (counts[k])
            n += snprintf(text + n, sizeof text - (size_t)n, "%s%d %s", n ? ", " : "", counts[k], why[k]);
    a->log("refused connection(s) that failed the CurveZMQ handshake%s: %s",
           a->logged_at ? " since the last such line" : "", text);
    a->plaintext = a->wrong_key = a->other = 0;
    a->logged_at = now;
}

void ig__auth_serve(ig__auth *a) {
    count_failures(a);
    for (;;) {
        int ev = 0;
        size_t len = sizeof ev;
        if (zmq_getsockopt(a->zap, ZMQ_EVENTS, &ev, &len) || !(ev & ZMQ_POLLIN)) break;
        zmq_msg_t f[MAX_FRAMES], extra;
        int n = 0;
        for (int more = 1; more;) {
            zmq_msg_t *m = n < MAX_FRAMES ? &f[n] : &extra;
            zmq_msg_init(m);
            if (zmq_msg_recv(m, a->zap, ZMQ_DONTWAIT) < 0) {
                zmq_msg_close(m);
                break;
            }
            more = zmq_msg_more(m);
            if (m == &extra)
                zmq_msg_close(m);
            else
                n++;
        }
        char user[IG_PROTO_KEY_LEN + 1] = "";
        const char *status = decide(a, f, n, user);
        const char *text = !strcmp(status, "200") ? "OK" : "key not authorized";
        zmq_send(a->zap, "1.0", 3, ZMQ_SNDMORE | ZMQ_DONTWAIT);
        zmq_send(a->zap, n > 1 ? zmq_msg_data(&f[1]) : "", n > 1 ? zmq_msg_size(&f[1]) : 0,
                 ZMQ_SNDMORE | ZMQ_DONTWAIT);
        zmq_send(a->zap, status, 3, ZMQ_SNDMORE | ZMQ_DONTWAIT);
        zmq_send(a->zap, text, strlen(text), ZMQ_SNDMORE | ZMQ_DONTWAIT);
        zmq_send(a->zap, user, strlen(user), ZMQ_SNDMORE | ZMQ_DONTWAIT);
        zmq_send(a->zap, "", 0, ZMQ_DONTWAIT);
        for (int k = 0; k < n; k++) zmq_msg_close(&f[k]);
    }
}

void ig__auth_close(ig__auth *a) {
    if (!a) return;
    if (a->monitor) zmq_close(a->monitor);
    if (a->zap) zmq_close(a->zap);
    free(a->keys);
    free(a->path);
    free(a);
}
