/* worker/train_rendezvous.c: how a rank started by `ignis worker` joins its
 * job's process group: no mpirun, so the coordinator relays the addresses.
 *
 * The rank sends RENDEZVOUS {job, attempt, world, rank, address} to the
 * coordinator over a ZeroMQ DEALER; the coordinator answers every rank with
 * RENDEZVOUS_REPLY (all the addresses) once the last one has joined. What
 * the address is depends on the job's device:
 *  - CPU: the rank's UCX worker address (ig_pg_ucx_address); with the reply
 *    the rank connects to its peers (ig_pg_init_ucx);
 *  - CUDA: rank 0 sends a fresh NCCL unique id (ig_pg_nccl_unique_id), the
 *    others the 4 bytes "nccl" (they have nothing to publish); with the reply
 *    every rank creates the NCCL group from addresses[0] (ig_pg_init_nccl_id)
 *    on its slot's GPU: IGNIS_SLOT, the GPU index the coordinator gave the
 *    slot (else LOCAL_RANK). Every GPU stays visible to every rank (no
 *    CUDA_VISIBLE_DEVICES per rank): NCCL's peer-to-peer paths between the
 *    ranks' GPUs need to see the peers' devices.
 * Until the reply comes, RENDEZVOUS is sent
 * again every RESEND_MS (the coordinator keeps the latest address of each
 * rank and answers a late repeat again), so a coordinator that restarted
 * meanwhile still hears every rank. Every wait is bounded: the whole
 * rendezvous by IGNIS_RENDEZVOUS_TIMEOUT seconds (default 60). An ERROR
 * reply (an unknown job, a stale attempt, a world that does not match) ends
 * it at once, naming the coordinator's reason, and so does a refused
 * handshake (the worker's CurveZMQ key, inherited through IGNIS_KEY and
 * IGNIS_COORDINATOR_KEY: ig_proto_client_open); other messages, and replies
 * about another job or attempt, are ignored. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ignis/cuda.h"
#include "ignis/proto.h"
#include "worker/trainer_impl.h"

#ifdef IG_HAVE_ZMQ
#include <zmq.h>

enum { RESEND_MS = 2000 };
/* What the ranks other than 0 of a CUDA job send as their address. */
static const char NCCL_PLACEHOLDER[] = "nccl";
#define DEFAULT_TIMEOUT_S 60.0

static double mono_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* An environment variable as an integer in [lo, hi]. */
static ig_status env_int(const char *name, long long lo, long long hi, long long *out) {
    const char *v = getenv(name);
    char *end = NULL;
    errno = 0;
    long long x = v ? strtoll(v, &end, 10) : 0;
    if (!v || !*v || *end || errno || x < lo || x > hi)
        return ig_set_error(IG_ERR_FORMAT, "rendezvous: %s='%s': expected an integer in [%lld, %lld]", name,
                            v ? v : "(unset)", lo, hi);
    *out = x;
    return IG_OK;
}

typedef struct rdv {
    const char *coordinator;
    long long job, attempt, rank, world;
    double timeout_s;
} rdv;

static ig_status read_env(rdv *r) {
    r->coordinator = getenv("IGNIS_COORDINATOR");
    if (!r->coordinator || !*r->coordinator)
        return ig_set_error(IG_ERR_FORMAT, "rendezvous: IGNIS_COORDINATOR is not set");
    ig_status st = env_int("IGNIS_JOB", 0, INT64_MAX, &r->job);
    if (st == IG_OK) st = env_int("IGNIS_ATTEMPT", 0, INT64_MAX, &r->attempt);
    if (st == IG_OK) st = env_int("WORLD_SIZE", 1, IG_PROTO_MAX_WORLD, &r->world);
    if (st == IG_OK) st = env_int("RANK", 0, r->world - 1, &r->rank);
    r->timeout_s = DEFAULT_TIMEOUT_S;
    const char *t = getenv("IGNIS_RENDEZVOUS_TIMEOUT");
    if (st == IG_OK && t) {
        char *end = NULL;
        r->timeout_s = strtod(t, &end);
        if (end == t || *end || !(r->timeout_s > 0 && r->timeout_s <= 86400))
            st = ig_set_error(IG_ERR_FORMAT,
                              "rendezvous: IGNIS_RENDEZVOUS_TIMEOUT='%s': expected seconds in (0, 86400]", t);
    }
    return st;
}

static bool is_ours(const rdv *r, const json_t *b) {
    return json_integer_value(json_object_get(b, "job")) == r->job &&
           json_integer_value(json_object_get(b, "attempt")) == r->attempt &&
           json_integer_value(json_object_get(b, "rank")) == r->rank &&
           json_integer_value(json_object_get(b, "world")) == r->world;
}

/* Sends RENDEZVOUS until the coordinator answers; *reply: its addresses. */
static ig_status exchange(ig_proto_client *c, const rdv *r, const char *address, json_t **reply) {
    json_t *req = json_pack("{s:I, s:I, s:I, s:I, s:s}", "job", (json_int_t)r->job, "attempt",
                            (json_int_t)r->attempt, "world", (json_int_t)r->world, "rank",
                            (json_int_t)r->rank, "address", address);
    if (!req) return ig_set_error(IG_ERR_NOMEM, "rendezvous: out of memory");
    double deadline = mono_s() + r->timeout_s;
    ig_status st = IG_ERR_TIMEOUT;
    while (st == IG_ERR_TIMEOUT && mono_s() < deadline) {
        double round = mono_s() + RESEND_MS * 1e-3;
        if (round > deadline) round = deadline;
        /* ZMQ_IMMEDIATE: while not connected the send times out, and we try again */
        st = ig_proto_client_wait(c, ZMQ_POLLOUT, (int)((round - mono_s()) * 1e3) + 1);
        if (st == IG_OK) st = ig_proto_send(c->sock, NULL, 0, IG_MSG_RENDEZVOUS, req, 0);
        if (st != IG_OK && st != IG_ERR_TIMEOUT) break;
        for (double left; (left = round - mono_s()) > 0;) {
            ig_proto_msg m = {0};
            st = ig_proto_client_wait(c, ZMQ_POLLIN, (int)(left * 1e3) + 1);
            if (st == IG_OK) st = ig_proto_recv(c->sock, false, 0, &m);
            if (st == IG_OK && m.type == IG_MSG_ERROR) {
                st = ig_set_error(IG_ERR_STATE, "rendezvous with %s: job %lld attempt %lld rank %lld: %s: %s",
                                  r->coordinator, r->job, r->attempt, r->rank,
                                  json_string_value(json_object_get(m.body, "code")),
                                  json_string_value(json_object_get(m.body, "message")));
            } else if (st == IG_OK && m.type == IG_MSG_RENDEZVOUS_REPLY && is_ours(r, m.body)) {
                *reply = json_incref(m.body);
            } else if (st == IG_OK || st == IG_ERR_FORMAT) {
                st = IG_ERR_TIMEOUT; /* not for us: keep waiting */
                ig_proto_msg_clear(&m);
                continue;
            }
            ig_proto_msg_clear(&m);
            break;
        }
        if (st == IG_ERR_TIMEOUT) ig_clear_error();
    }
    json_decref(req);
    if (st == IG_ERR_TIMEOUT)
        st = ig_set_error(IG_ERR_TIMEOUT,
                          "rendezvous with %s: job %lld attempt %lld rank %lld: no reply within %g s "
                          "(the coordinator is away, or not all %lld ranks joined)%s%s",
                          r->coordinator, r->job, r->attempt, r->rank, r->timeout_s, r->world,
                          c->failure[0] ? "; " : "", c->failure);
    return st;
}

/* The addresses of the reply, decoded, then the group: UCX, or NCCL on dev
 * from rank 0's unique id. */
static ig_status connect_group(const rdv *r, ig_device dev, const json_t *reply, ig_pg **out) {
    int world = (int)r->world;
    void **addrs = calloc((size_t)world, sizeof *addrs);
    size_t *lens = calloc((size_t)world, sizeof *lens);
    ig_status st = addrs && lens ? IG_OK : ig_set_error(IG_ERR_NOMEM, "rendezvous: out of memory");
    const json_t *list = json_object_get(reply, "addresses"); /* world items: checked by the protocol */
    for (int i = 0; i < world && st == IG_OK; i++) {
        const char *s = json_string_value(json_array_get(list, (size_t)i));
        if (!(addrs[i] = malloc(IG_PROTO_MAX_BLOB))) st = ig_set_error(IG_ERR_NOMEM, "rendezvous: out of memory");
        else st = ig_proto_b64_decode(s, strlen(s), addrs[i], IG_PROTO_MAX_BLOB, &lens[i]);
    }
    if (st == IG_OK && dev.kind == IG_DEV_CUDA)
        st = ig_pg_init_nccl_id((int)r->rank, world, addrs[0], lens[0], dev.index, NULL, out);
    else if (st == IG_OK)
        st = ig_pg_init_ucx((int)r->rank, world, (const void *const *)addrs, lens, NULL, out);
    for (int i = 0; addrs && i < world; i++) free(addrs[i]);
    free(addrs);
    free(lens);
    return st;
}

/* The GPU of this rank's slot (IGNIS_SLOT, else LOCAL_RANK, else 0). */
static ig_status slot_gpu(ig_device *dev) {
    const char *name = getenv("IGNIS_SLOT") ? "IGNIS_SLOT" : "LOCAL_RANK";
    long long gpu = 0;
    ig_status st = getenv(name) ? env_int(name, 0, 1023, &gpu) : IG_OK;
    int count = ig_cuda_device_count();
    if (st == IG_OK && gpu >= count)
        st = ig_set_error(IG_ERR_NO_DEVICE, "rendezvous: %s=%lld: no such CUDA device (this rank sees %d)", name,
                          gpu, count);
    if (st == IG_OK) *dev = IG_CUDA((int)gpu);
    return st;
}

/* This rank's address for RENDEZVOUS, base64 (malloc'd). */
static ig_status own_address(const rdv *r, ig_device dev, char **address) {
    void *blob = NULL;
    size_t len = 0;
    ig_status st;
    if (dev.kind == IG_DEV_CUDA && r->rank != 0) {
        blob = strdup(NCCL_PLACEHOLDER);
        len = sizeof NCCL_PLACEHOLDER - 1;
        st = blob ? IG_OK : ig_set_error(IG_ERR_NOMEM, "rendezvous: out of memory");
    } else if (dev.kind == IG_DEV_CUDA) {
        blob = malloc(IG_PROTO_MAX_BLOB);
        st = blob ? ig_pg_nccl_unique_id(blob, IG_PROTO_MAX_BLOB, &len)
                  : ig_set_error(IG_ERR_NOMEM, "rendezvous: out of memory");
    } else {
        st = ig_pg_ucx_address(&blob, &len);
    }
    *address = st == IG_OK ? ig_proto_b64_encode(blob, len) : NULL;
    free(blob);
    if (st == IG_OK && !*address) st = ig_set_error(IG_ERR_NOMEM, "rendezvous: out of memory");
    return st;
}

ig_status train_rendezvous(ig_device *dev, ig_pg **out) {
    *out = NULL;
    rdv r;
    ig_status st = read_env(&r);
    if (st == IG_OK && dev->kind == IG_DEV_CUDA) st = slot_gpu(dev);
    if (st != IG_OK || r.world == 1) return st;
    char *address = NULL;
    st = own_address(&r, *dev, &address);
    void *ctx = st == IG_OK ? zmq_ctx_new() : NULL;
    ig_proto_client c = {0};
    if (st == IG_OK) st = ig_proto_client_open(ctx, r.coordinator, &c);
    if (st != IG_OK && ctx) {
        char why[1024];
        snprintf(why, sizeof why, "%s", ig_last_error());
        st = ig_set_error(st, "rendezvous: %s", why);
    }
    json_t *reply = NULL;
    if (st == IG_OK) st = exchange(&c, &r, address, &reply);
    ig_proto_client_close(&c);
    if (ctx) zmq_ctx_term(ctx);
    free(address);
    if (st == IG_OK) st = connect_group(&r, *dev, reply, out);
    json_decref(reply);
    return st;
}
#else
ig_status train_rendezvous(ig_device *dev, ig_pg **out) {
    (void)dev;
    *out = NULL;
    return ig_set_error(IG_ERR_UNSUPPORTED, "rendezvous: this build of ignis has no ZeroMQ");
}
#endif
