/* coordinator/client.c: the one way a client (the CLI, a worker, a rank)
 * opens its DEALER to the coordinator (proto.h, ig_proto_client), so that all
 * take their CurveZMQ security from the same environment variables and all
 * report a refused handshake the same way, as a clear message instead of a
 * bare timeout.
 *
 * ZeroMQ hides the handshake: a client whose key the coordinator refuses only
 * sees that nothing ever connects. So each client socket has a monitor (a
 * PAIR on inproc) whose HANDSHAKE_FAILED_* events say why: AUTH (the ZAP
 * handler refused the key), PROTOCOL (a plaintext client of a CurveZMQ
 * coordinator, or the reverse; ZeroMQ does not retry either), NO_DETAIL (the
 * coordinator dropped the handshake, as it does when the client has the wrong
 * coordinator key, and sometimes for a plaintext client when its reset beats
 * the greeting; ZeroMQ retries it). */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef IG_HAVE_ZMQ
#include <zmq.h>
#endif

#include "core/impl.h"
#include "ignis/proto.h"

#ifdef IG_HAVE_ZMQ
enum {
    EVENTS = ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
             ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH,
    HEARTBEAT_IVL_MS = 1000,
    HEARTBEAT_TIMEOUT_MS = 5000,
};

/* The client's keys from the environment; *curve false: plaintext. */
static ig_status env_keys(ig_proto_client *c, bool *curve, ig_proto_keypair *kp,
                          char server[IG_PROTO_KEY_LEN + 1]) {
    const char *key = getenv("IGNIS_KEY"), *coord = getenv("IGNIS_COORDINATOR_KEY");
    bool has_key = key && *key, has_coord = coord && *coord;
    *curve = has_key;
    if (has_key != has_coord)
        return ig__error(
            IG_ERR_INVALID,
            "%s is set but %s is not: a client of a CurveZMQ coordinator needs both (IGNIS_KEY: this "
            "client's key pair file from 'ignis keygen'; IGNIS_COORDINATOR_KEY: the coordinator's "
            "public key or its .pub file)",
            has_key ? "IGNIS_KEY" : "IGNIS_COORDINATOR_KEY", has_key ? "IGNIS_COORDINATOR_KEY" : "IGNIS_KEY");
    if (!has_key) return IG_OK;
    ig_status s = ig_proto_keypair_load(key, kp);
    if (s) {
        char why[1024];
        snprintf(why, sizeof why, "%s", ig_last_error());
        return ig__error(s, "IGNIS_KEY: %s", why);
    }
    snprintf(c->key_file, sizeof c->key_file, "%s", key);
    return ig_proto_public_key(coord, "IGNIS_COORDINATOR_KEY", server);
}

ig_status ig_proto_client_open(void *ctx, const char *address, ig_proto_client *c) {
    *c = (ig_proto_client){0};
    snprintf(c->address, sizeof c->address, "%s", address);
    bool curve;
    ig_proto_keypair kp;
    char server[IG_PROTO_KEY_LEN + 1], mon[64];
    ig_status s = env_keys(c, &curve, &kp, server);
    if (s) return s;
    int zero = 0, one = 1, ivl = HEARTBEAT_IVL_MS, timeout = HEARTBEAT_TIMEOUT_MS;
    c->sock = zmq_socket(ctx, ZMQ_DEALER);
    c->monitor = zmq_socket(ctx, ZMQ_PAIR);
    snprintf(mon, sizeof mon, "inproc://ignis-client-monitor-%p", c->sock);
    bool ok = c->sock && c->monitor && !zmq_setsockopt(c->sock, ZMQ_LINGER, &zero, sizeof zero) &&
              !zmq_setsockopt(c->sock, ZMQ_IMMEDIATE, &one, sizeof one) &&
              !zmq_setsockopt(c->sock, ZMQ_HEARTBEAT_IVL, &ivl, sizeof ivl) &&
              !zmq_setsockopt(c->sock, ZMQ_HEARTBEAT_TIMEOUT, &timeout, sizeof timeout) &&
              !zmq_setsockopt(c->monitor, ZMQ_LINGER, &zero, sizeof zero);
    if (ok && curve)
        ok = !zmq_setsockopt(c->sock, ZMQ_CURVE_SERVERKEY, server, IG_PROTO_KEY_LEN) &&
             !zmq_setsockopt(c->sock, ZMQ_CURVE_PUBLICKEY, kp.public_key, IG_PROTO_KEY_LEN) &&
             !zmq_setsockopt(c->sock, ZMQ_CURVE_SECRETKEY, kp.secret_key, IG_PROTO_KEY_LEN);
    ok = ok && !zmq_socket_monitor(c->sock, mon, EVENTS) && !zmq_connect(c->monitor, mon) &&
         !zmq_connect(c->sock, address);
    if (!ok) {
        s = ig__error(IG_ERR_COMM, "cannot connect to the coordinator at '%s': %s", address,
                      zmq_strerror(errno));
        ig_proto_client_close(c);
    }
    return s;
}

bool ig_proto_client_event(ig_proto_client *c, int *event, int *value) {
    zmq_msg_t part;
    bool got = false;
    for (int more = 1, k = 0; more; k++) { /* [u16 event, u32 value][endpoint] */
        zmq_msg_init(&part);
        if (zmq_msg_recv(&part, c->monitor, ZMQ_DONTWAIT) < 0)
            more = 0;
        else {
            if (k == 0 && zmq_msg_size(&part) >= 6) {
                uint16_t e;
                uint32_t v;
                memcpy(&e, zmq_msg_data(&part), 2);
                memcpy(&v, (char *)zmq_msg_data(&part) + 2, 4);
                *event = e, *value = (int)v, got = true;
            }
            more = zmq_msg_more(&part);
        }
        zmq_msg_close(&part);
    }
    return got;
}

ig_status ig_proto_client_failure(ig_proto_client *c, int event, int value, bool *fatal) {
    bool curve = c->key_file[0] != 0;
    *fatal = true;
    switch (event) {
    case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
        if (curve)
            return ig__error(IG_ERR_COMM,
                             "the coordinator at %s refused this client's key (IGNIS_KEY=%s): is its "
                             "public key in the coordinator's authorized keys?",
                             c->address, c->key_file);
        return ig__error(IG_ERR_COMM, "the coordinator at %s refused this client (status %d)", c->address,
                         value);
    case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
        if (value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH && !curve)
            return ig__error(IG_ERR_COMM,
                             "the coordinator at %s requires a CurveZMQ key: set IGNIS_KEY to this "
                             "client's key pair file ('ignis keygen') and IGNIS_COORDINATOR_KEY to the "
                             "coordinator's public key",
                             c->address);
        if (value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH)
            return ig__error(IG_ERR_COMM,
                             "the coordinator at %s does not use CurveZMQ (plaintext, on loopback): "
                             "unset IGNIS_KEY and IGNIS_COORDINATOR_KEY",
                             c->address);
        return ig__error(IG_ERR_COMM,
                         "the handshake with the coordinator at %s failed: ZeroMQ protocol error "
                         "0x%x",
                         c->address, (unsigned)value);
    case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
        *fatal = false;
        snprintf(c->failure, sizeof c->failure, "the handshake with the coordinator at %s failed (%s)%s",
                 c->address, zmq_strerror(value),
                 curve ? ": is IGNIS_COORDINATOR_KEY the coordinator's public key?"
                       : ": does it require a CurveZMQ key (IGNIS_KEY, IGNIS_COORDINATOR_KEY)?");
        return ig__error(IG_ERR_COMM, "%s", c->failure);
    default: *fatal = false; return IG_OK;
    }
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

ig_status ig_proto_client_wait(ig_proto_client *c, short events, int timeout_ms) {
    IG_CHECK(timeout_ms >= 0, "client wait: timeout %d ms: must be >= 0", timeout_ms);
    double deadline = now_ms() + timeout_ms;
    for (;;) {
        int event, value;
        bool fatal;
        while (ig_proto_client_event(c, &event, &value)) {
            if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) c->failure[0] = 0;
            if (ig_proto_client_failure(c, event, value, &fatal) && fatal) return IG_ERR_COMM;
        }
        zmq_pollitem_t items[2] = {{.socket = c->sock, .events = events},
                                   {.socket = c->monitor, .events = ZMQ_POLLIN}};
        double left = deadline - now_ms();
        int r = zmq_poll(items, 2, left > 0 ? (long)ceil(left) : 0);
        if (r < 0 && errno != EINTR) return ig__error(IG_ERR_COMM, "zmq_poll: %s", zmq_strerror(errno));
        if (r > 0 && items[0].revents) return IG_OK;
        if (r == 0)
            return ig__error(IG_ERR_TIMEOUT, "no answer from the coordinator at %s within %d ms%s%s",
                             c->address, timeout_ms, c->failure[0] ? ": " : "", c->failure);
    }
}

void ig_proto_client_close(ig_proto_client *c) {
    if (c->sock && c->monitor) zmq_socket_monitor(c->sock, NULL, 0);
    if (c->monitor) zmq_close(c->monitor);
    if (c->sock) zmq_close(c->sock);
    c->sock = c->monitor = NULL;
}
#else
ig_status ig_proto_client_open(void *ctx, const char *address, ig_proto_client *c) {
    *c = (ig_proto_client){0};
    return ig__error(IG_ERR_UNSUPPORTED, "%s: this build of ignis has no ZeroMQ", address);
}
bool ig_proto_client_event(ig_proto_client *c, int *event, int *value) { return false; }
ig_status ig_proto_client_failure(ig_proto_client *c, int event, int value, bool *fatal) {
    *fatal = false;
    return IG_OK;
}
ig_status ig_proto_client_wait(ig_proto_client *c, short events, int timeout_ms) {
    return ig__error(IG_ERR_UNSUPPORTED, "this build of ignis has no ZeroMQ");
}
void ig_proto_client_close(ig_proto_client *c) {}
#endif
