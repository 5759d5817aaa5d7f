/* coordinator/proto.c: the control-plane wire protocol (include/ignis/proto.h,
 * docs/protocol.md): framing, the schema of every message type as data (a
 * table of field descriptors per type) walked by one generic validator,
 * base64, and send/recv over ZeroMQ with bounded waits.
 *
 * Invariants: decode either returns IG_OK with a body that passed its schema
 * or IG_ERR_FORMAT with a one-line, ASCII-only message naming the part that
 * was wrong; it reads nothing outside the given frames. encode validates
 * too, so a peer never sends what it would itself reject. Unknown fields are
 * ignored; known ones are checked for type, range and length (null is a wrong
 * type). Every wait of send/recv is a zmq_poll with a deadline. */
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

enum { PATH_MAX_ = 96, MAX_ITEMS = IG_PROTO_MAX_WORLD, TEXT_MAX = 1024 };

/* ---- schemas ---- */

typedef enum kind {
    K_INT,  /* integer in [lo, hi]; with ref: also below the root's integer `ref` */
    K_NUM,  /* finite number; not negative when nonneg */
    K_BOOL,
    K_STR,  /* string of lo .. hi bytes */
    K_B64,  /* canonical base64 of lo .. hi decoded bytes */
    K_OBJ,  /* object with `fields` (NULL: any object) */
    K_ARR,  /* array of lo .. hi `item`s; with ref: exactly the root's integer `ref` items */
} kind;

typedef struct field {
    const char *name; /* NULL ends a table */
    kind kind;
    bool required;
    bool nonneg;      /* K_NUM */
    long long lo, hi;
    const char *ref;  /* a top-level integer field listed earlier (world) */
    int group;        /* nonzero: exactly one field of the object with this group is present */
    const struct field *fields, *item;
} field;

enum { OPT = 0, REQ = 1 };
#define END {0}
#define INT(n, r, l, h) {.name = n, .kind = K_INT, .required = r, .lo = l, .hi = h}
#define ID(n, r) INT(n, r, 0, INT64_MAX)
#define RANK(n, ref_) {.name = n, .kind = K_INT, .required = REQ, .lo = 0, .hi = MAX_ITEMS - 1, .ref = ref_}
#define NUM(n, r, nn) {.name = n, .kind = K_NUM, .required = r, .nonneg = nn}
#define BOOL(n, r) {.name = n, .kind = K_BOOL, .required = r}
#define STR(n, r, l, h) {.name = n, .kind = K_STR, .required = r, .lo = l, .hi = h}
#define B64(n, r, h) {.name = n, .kind = K_B64, .required = r, .lo = 1, .hi = h}
#define OBJ(n, r, f) {.name = n, .kind = K_OBJ, .required = r, .fields = f}
#define ARR(n, r, l, h, it) {.name = n, .kind = K_ARR, .required = r, .lo = l, .hi = h, .item = it}

static const field gpu_item = INT("", REQ, 0, 1023);
static const field slots_fields[] = {INT("cpus", REQ, 0, MAX_ITEMS), ARR("gpus", OPT, 0, 256, &gpu_item), END};
static const field running_fields[] = {ID("job", REQ), ID("attempt", REQ), RANK("rank", NULL), END};
static const field running_item = OBJ("", REQ, running_fields);
static const field progress_fields[] = {ID("job", REQ), ID("attempt", REQ), RANK("rank", NULL),
                                        ID("step", OPT), NUM("loss", OPT, false), NUM("tokens_per_s", OPT, true),
                                        NUM("step_ms", OPT, true), ID("ckpt_step", OPT), END};
static const field progress_item = OBJ("", REQ, progress_fields);
static const field job_fields[] = {ID("job", REQ), STR("name", OPT, 0, 255), STR("state", REQ, 1, 32),
                                   STR("reason", OPT, 0, TEXT_MAX), ID("attempt", REQ),
                                   INT("ranks", OPT, 1, MAX_ITEMS), ID("step", OPT),
                                   NUM("loss", OPT, false), NUM("tokens_per_s", OPT, true),
                                   NUM("step_ms", OPT, true), ID("ckpt_step", OPT), END};
static const field job_item = OBJ("", REQ, job_fields);
static const field placement_fields[] = {RANK("rank", "world"), INT("local_rank", REQ, 0, MAX_ITEMS - 1),
                                         INT("slot", REQ, 0, MAX_ITEMS - 1), END};
static const field placement_item = OBJ("", REQ, placement_fields);
static const field address_item = B64("", REQ, IG_PROTO_MAX_BLOB);

static const field rank_exit[] = {ID("job", REQ), ID("attempt", REQ), RANK("rank", NULL),
                                  {.name = "exit_code", .kind = K_INT, .lo = 0, .hi = 255, .group = 1},
                                  {.name = "signal", .kind = K_INT, .lo = 1, .hi = 128, .group = 1},
                                  NUM("time", REQ, true), END};
static const field exited_item = OBJ("", REQ, rank_exit);
static const field hello[] = {STR("node", REQ, 1, 255), OBJ("slots", REQ, slots_fields),
                              INT("protocol", REQ, 1, 65535), ID("worker", OPT),
                              ARR("running", OPT, 0, MAX_ITEMS, &running_item),
                              ARR("exited", OPT, 0, MAX_ITEMS, &exited_item), END};
static const field hello_ack[] = {ID("worker", REQ), INT("heartbeat_ms", OPT, 10, 3600000), END};
static const field heartbeat[] = {ID("worker", REQ), ARR("ranks", OPT, 0, MAX_ITEMS, &progress_item), END};
static const field submit[] = {OBJ("spec", REQ, NULL), INT("ranks", OPT, 1, MAX_ITEMS),
                               INT("min_ranks", OPT, 1, MAX_ITEMS), INT("max_ranks", OPT, 1, MAX_ITEMS),
                               INT("max_restarts", OPT, 0, 1000000), STR("strategy", OPT, 1, 32), END};
static const field job_only[] = {ID("job", REQ), END};
static const field status[] = {ID("job", OPT), END};
static const field status_reply[] = {ARR("jobs", REQ, 0, MAX_ITEMS, &job_item), END};
static const field logs[] = {ID("job", REQ), INT("rank", REQ, -1, MAX_ITEMS - 1), ID("offset", OPT),
                             INT("max_bytes", OPT, 1, IG_PROTO_MAX_LOG_CHUNK), ID("attempt", OPT), END};
static const field logs_reply[] = {ID("job", REQ), INT("rank", REQ, -1, MAX_ITEMS - 1), ID("offset", REQ),
                                   {.name = "data", .kind = K_B64, .required = REQ, .hi = IG_PROTO_MAX_LOG_CHUNK},
                                   BOOL("eof", OPT), ID("attempt", OPT), ID("attempts", OPT), END};
static const field log_data[] = {ID("worker", REQ), ID("job", REQ), ID("attempt", REQ), RANK("rank", NULL),
                                 ID("offset", REQ),
                                 {.name = "data", .kind = K_B64, .required = REQ,
                                  .hi = IG_PROTO_MAX_LOG_DATA},
                                 BOOL("final", OPT), END};
static const field log_ack[] = {ID("job", REQ), ID("attempt", REQ), RANK("rank", NULL), ID("size", REQ),
                                BOOL("final", OPT), END};
static const field start_ranks[] = {ID("job", REQ), ID("attempt", REQ), OBJ("spec", REQ, NULL),
                                    INT("world", REQ, 1, MAX_ITEMS),
                                    ARR("ranks", REQ, 1, MAX_ITEMS, &placement_item),
                                    STR("rendezvous", REQ, 1, 255), END};
static const field abort_[] = {ID("job", REQ), ID("attempt", REQ), STR("reason", REQ, 0, TEXT_MAX), END};
static const field rendezvous[] = {ID("job", REQ), ID("attempt", REQ), INT("world", REQ, 1, MAX_ITEMS),
                                   RANK("rank", "world"), B64("address", REQ, IG_PROTO_MAX_BLOB), END};
static const field rendezvous_reply[] = {ID("job", REQ), ID("attempt", REQ), INT("world", REQ, 1, MAX_ITEMS),
                                         RANK("rank", "world"),
                                         {.name = "addresses", .kind = K_ARR, .required = REQ, .lo = 1,
                                          .hi = MAX_ITEMS, .ref = "world", .item = &address_item},
                                         END};
static const field error_[] = {STR("code", REQ, 1, 64), STR("message", REQ, 0, TEXT_MAX), STR("request", OPT, 1, 32),
                               END};
static const field ok[] = {END};

static const field *const schemas[IG_MSG_COUNT] = {
    [IG_MSG_HELLO] = hello,         [IG_MSG_HELLO_ACK] = hello_ack,
    [IG_MSG_HEARTBEAT] = heartbeat, [IG_MSG_SUBMIT] = submit,
    [IG_MSG_SUBMIT_ACK] = job_only, [IG_MSG_STATUS] = status,
    [IG_MSG_STATUS_REPLY] = status_reply, [IG_MSG_CANCEL] = job_only,
    [IG_MSG_LOGS] = logs,           [IG_MSG_LOGS_REPLY] = logs_reply,
    [IG_MSG_START_RANKS] = start_ranks, [IG_MSG_RANK_EXIT] = rank_exit,
    [IG_MSG_ABORT] = abort_,        [IG_MSG_RENDEZVOUS] = rendezvous,
    [IG_MSG_RENDEZVOUS_REPLY] = rendezvous_reply, [IG_MSG_ERROR] = error_,
    [IG_MSG_OK] = ok,               [IG_MSG_LOG_DATA] = log_data,
    [IG_MSG_LOG_ACK] = log_ack,
};

const char *ig_msg_name(ig_msg_type type) {
    static const char *names[IG_MSG_COUNT] = {
        [IG_MSG_NONE] = "NONE",
#define X(name, text) [name] = text,
        IG_MSG_LIST(X)
#undef X
    };
    return (unsigned)type < IG_MSG_COUNT ? names[type] : "NONE";
}

/* ---- base64 ---- */

static const char B64_ALPHABET[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *ig_proto_b64_encode(const void *data, size_t n) {
    const unsigned char *p = data;
    char *s = malloc((n + 2) / 3 * 4 + 1), *o = s;
    if (!s) return NULL;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
        *o++ = B64_ALPHABET[v >> 18 & 63];
        *o++ = B64_ALPHABET[v >> 12 & 63];
        *o++ = i + 1 < n ? B64_ALPHABET[v >> 6 & 63] : '=';
        *o++ = i + 2 < n ? B64_ALPHABET[v & 63] : '=';
    }
    *o = 0;
    return s;
}

static int b64_value(char c) {
    const char *p = c ? strchr(B64_ALPHABET, c) : NULL;
    return p ? (int)(p - B64_ALPHABET) : -1;
}

/* out NULL: only checks (and counts). */
ig_status ig_proto_b64_decode(const char *s, size_t len, void *out, size_t cap, size_t *n_out) {
    if (len % 4) return ig__error(IG_ERR_FORMAT, "invalid base64: length %zu is not a multiple of 4", len);
    size_t pad = len && s[len - 1] == '=' ? (s[len - 2] == '=' ? 2 : 1) : 0;
    size_t n = len / 4 * 3 - pad;
    if (n > cap) return ig__error(IG_ERR_FORMAT, "base64 of %zu bytes, more than the limit %zu", n, cap);
    unsigned char *o = out;
    for (size_t i = 0; i < len; i += 4) {
        uint32_t v = 0;
        for (size_t j = 0; j < 4; j++) {
            int d = i + j >= len - pad ? 0 : b64_value(s[i + j]);
            if (d < 0)
                return ig__error(IG_ERR_FORMAT, "invalid base64: character %zu is 0x%02x", i + j,
                                 (unsigned char)s[i + j]);
            v = v << 6 | (uint32_t)d;
        }
        size_t k = i + 4 == len ? 3 - pad : 3;
        if (i + 4 == len && (v & (pad == 2 ? 0xffff : pad == 1 ? 0xff : 0)))
            return ig__error(IG_ERR_FORMAT, "invalid base64: nonzero bits in the padding");
        for (size_t j = 0; out && j < k; j++) o[i / 4 * 3 + j] = (unsigned char)(v >> (16 - 8 * j));
    }
    if (n_out) *n_out = n;
    return IG_OK;
}

/* ---- the validator ---- */

typedef struct vctx {
    const char *type;   /* "HELLO" */
    const json_t *root; /* the body, for `ref` */
} vctx;

/* Error messages are printable ASCII: other bytes (DEL, those of quoted
 * input) become '?'. */
static char *printable(char *s) {
    for (char *p = s; *p; p++)
        if ((unsigned char)*p < 32 || (unsigned char)*p >= 127) *p = '?';
    return s;
}

/* The value as a message shows it ("an object", "-3", "\"gpu\""). */
static const char *shown(const json_t *v, char buf[static 48]) {
    if (json_is_object(v)) return "an object";
    if (json_is_array(v)) return "an array";
    char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_ENSURE_ASCII | JSON_REAL_PRECISION(10));
    snprintf(buf, 48, "%s", s ? s : "?");
    if (s && strlen(s) >= 48) strcpy(buf + 40, "...");
    free(s);
    return printable(buf);
}

static ig_status bad(const vctx *c, const char *path, const char *expected, const json_t *got) {
    char buf[48];
    return ig__error(IG_ERR_FORMAT, "%s: field '%s': expected %s, got %s", c->type, path, expected,
                     shown(got, buf));
}

static ig_status check_fields(const vctx *c, const char *path, const json_t *obj, const field *fields);

static ig_status check_value(const vctx *c, const char *path, const field *f, const json_t *v) {
    char what[128];
    switch (f->kind) {
    case K_INT: {
        long long hi = f->hi;
        const json_t *ref = f->ref ? json_object_get(c->root, f->ref) : NULL;
        if (json_is_integer(ref) && json_integer_value(ref) - 1 < hi) hi = json_integer_value(ref) - 1;
        if (f->lo == 0 && hi == INT64_MAX)
            snprintf(what, sizeof what, "a non-negative integer");
        else if (json_is_integer(ref))
            snprintf(what, sizeof what, "an integer in [%lld, %lld] (below %s %lld)", f->lo, hi, f->ref,
                     (long long)json_integer_value(ref));
        else
            snprintf(what, sizeof what, "an integer in [%lld, %lld]", f->lo, hi);
        if (!json_is_integer(v) || json_integer_value(v) < f->lo || json_integer_value(v) > hi)
            return bad(c, path, what, v);
        return IG_OK;
    }
    case K_NUM:
        if (!json_is_number(v) || !isfinite(json_number_value(v)) || (f->nonneg && json_number_value(v) < 0))
            return bad(c, path, f->nonneg ? "a non-negative number" : "a number", v);
        return IG_OK;
    case K_BOOL:
        return json_is_boolean(v) ? IG_OK : bad(c, path, "true or false", v);
    case K_STR: {
        snprintf(what, sizeof what, "a string of %lld to %lld bytes", f->lo, f->hi);
        if (!json_is_string(v)) return bad(c, path, what, v);
        size_t n = json_string_length(v);
        if (n < (size_t)f->lo || n > (size_t)f->hi)
            return ig__error(IG_ERR_FORMAT, "%s: field '%s': expected %s, got one of %zu bytes", c->type, path,
                             what, n);
        return IG_OK;
    }
    case K_B64: {
        snprintf(what, sizeof what, "base64 of %lld to %lld bytes", f->lo, f->hi);
        if (!json_is_string(v)) return bad(c, path, what, v);
        size_t n = 0;
        ig_status st = ig_proto_b64_decode(json_string_value(v), json_string_length(v), NULL, (size_t)f->hi, &n);
        if (st || n < (size_t)f->lo) {
            char why[128]; /* the last error is about to be overwritten */
            snprintf(why, sizeof why, "%s", st ? ig_last_error() : "an empty blob");
            return ig__error(IG_ERR_FORMAT, "%s: field '%s': expected %s, got %s", c->type, path, what, why);
        }
        return IG_OK;
    }
    case K_OBJ:
        if (!json_is_object(v)) return bad(c, path, "an object", v);
        return f->fields ? check_fields(c, path, v, f->fields) : IG_OK;
    case K_ARR: {
        long long lo = f->lo, hi = f->hi;
        const json_t *ref = f->ref ? json_object_get(c->root, f->ref) : NULL;
        if (json_is_integer(ref)) lo = hi = json_integer_value(ref);
        if (!json_is_array(v)) return bad(c, path, "an array", v);
        size_t n = json_array_size(v);
        if ((long long)n < lo || (long long)n > hi) {
            if (lo == hi)
                return ig__error(IG_ERR_FORMAT, "%s: field '%s': expected %lld items (%s), got %zu", c->type,
                                 path, lo, f->ref ? f->ref : "exactly", n);
            return ig__error(IG_ERR_FORMAT, "%s: field '%s': expected %lld to %lld items, got %zu", c->type,
                             path, lo, hi, n);
        }
        for (size_t i = 0; i < n; i++) {
            char sub[PATH_MAX_];
            snprintf(sub, sizeof sub, "%s[%zu]", path, i);
            ig_status st = check_value(c, sub, f->item, json_array_get(v, i));
            if (st) return st;
        }
        return IG_OK;
    }
    }
    return IG_OK;
}

static ig_status check_fields(const vctx *c, const char *path, const json_t *obj, const field *fields) {
    for (const field *f = fields; f->name; f++) {
        char sub[PATH_MAX_];
        snprintf(sub, sizeof sub, *path ? "%s.%s" : "%s%s", path, f->name);
        const json_t *v = json_object_get(obj, f->name);
        if (!v) {
            if (f->required) return ig__error(IG_ERR_FORMAT, "%s: field '%s': required, missing", c->type, sub);
            continue;
        }
        ig_status st = check_value(c, sub, f, v);
        if (st) return st;
    }
    for (const field *f = fields; f->name; f++) { /* groups: exactly one present */
        if (!f->group || (f > fields && f[-1].group == f->group)) continue;
        char names[128] = "";
        int present = 0;
        for (const field *g = f; g->name && g->group == f->group; g++) {
            present += json_object_get(obj, g->name) != NULL;
            snprintf(names + strlen(names), sizeof names - strlen(names), "%s'%s'", g == f ? "" : " or ",
                     g->name);
        }
        if (present != 1)
            return ig__error(IG_ERR_FORMAT, "%s: %s%sexpected exactly one of %s, got %d", c->type, path,
                             *path ? ": " : "", names, present);
    }
    return IG_OK;
}

ig_status ig_proto_validate(ig_msg_type type, const json_t *body) {
    IG_CHECK(type > IG_MSG_NONE && type < IG_MSG_COUNT, "ig_proto_validate: no message type %d", (int)type);
    vctx c = {ig_msg_name(type), body};
    if (!json_is_object(body)) {
        char buf[48];
        return ig__error(IG_ERR_FORMAT, "%s: body: expected a JSON object, got %s", c.type,
                         body ? shown(body, buf) : "nothing");
    }
    return check_fields(&c, "", body, schemas[type]);
}

/* ---- framing ---- */

ig_status ig_proto_encode(ig_msg_type type, const json_t *body, ig_proto_wire *out) {
    *out = (ig_proto_wire){0};
    json_t *empty = body ? NULL : json_object();
    if (!body) body = empty;
    ig_status st = ig_proto_validate(type, body);
    char *text = st ? NULL : json_dumps(body, JSON_COMPACT);
    json_decref(empty);
    if (st) return st;
    if (!text) return ig__error(IG_ERR_NOMEM, "%s: encoding the body: out of memory", ig_msg_name(type));
    size_t n = strlen(text);
    if (n > IG_PROTO_MAX_BODY) {
        free(text);
        return ig__error(IG_ERR_FORMAT, "%s: body: %zu bytes, more than the limit %u", ig_msg_name(type), n,
                         IG_PROTO_MAX_BODY);
    }
    memcpy(out->header, IG_PROTO_MAGIC, 4);
    out->header[4] = IG_PROTO_VERSION >> 8;
    out->header[5] = IG_PROTO_VERSION & 0xff;
    out->header[6] = (unsigned char)(type >> 8);
    out->header[7] = (unsigned char)(type & 0xff);
    out->body = text;
    out->body_size = n;
    return IG_OK;
}

void ig_proto_wire_free(ig_proto_wire *w) {
    free(w->body);
    w->body = NULL;
    w->body_size = 0;
}

void ig_proto_msg_clear(ig_proto_msg *m) {
    json_decref(m->body);
    m->body = NULL;
    m->type = IG_MSG_NONE;
}

ig_status ig_proto_decode(const ig_proto_frame *frames, size_t n, size_t offset, ig_proto_msg *out) {
    IG_CHECK(offset <= n, "ig_proto_decode: offset %zu beyond %zu frames", offset, n);
    out->type = IG_MSG_NONE;
    out->body = NULL;
    frames += offset;
    n -= offset;
    if (n == 0) return ig__error(IG_ERR_FORMAT, "header: missing (no frames)");
    const unsigned char *h = frames[0].data;
    if (frames[0].size != IG_PROTO_HEADER_SIZE)
        return ig__error(IG_ERR_FORMAT, "header: expected %d bytes, got %zu", IG_PROTO_HEADER_SIZE, frames[0].size);
    if (memcmp(h, IG_PROTO_MAGIC, 4)) {
        char got[20], *g = got;
        for (int i = 0; i < 4; i++)
            g += sprintf(g, h[i] >= 32 && h[i] < 127 && h[i] != '\\' ? "%c" : "\\x%02x", h[i]);
        return ig__error(IG_ERR_FORMAT, "header: magic: expected IGNS, got \"%s\"", got);
    }
    unsigned version = (unsigned)h[4] << 8 | h[5], type = (unsigned)h[6] << 8 | h[7];
    if (version != IG_PROTO_VERSION)
        return ig__error(IG_ERR_FORMAT, "header: protocol version %u: this side speaks %d", version,
                         IG_PROTO_VERSION);
    if (type == IG_MSG_NONE || type >= IG_MSG_COUNT)
        return ig__error(IG_ERR_FORMAT, "header: unknown message type %u (known: 1 to %d)", type,
                         IG_MSG_COUNT - 1);
    const char *name = ig_msg_name((ig_msg_type)type);
    out->type = (ig_msg_type)type;
    if (n < 2) return ig__error(IG_ERR_FORMAT, "%s: body: missing (a header frame alone)", name);
    if (n > 2) return ig__error(IG_ERR_FORMAT, "%s: extra frames after the body", name);
    if (frames[1].size == 0) return ig__error(IG_ERR_FORMAT, "%s: body: empty", name);
    if (frames[1].size > IG_PROTO_MAX_BODY)
        return ig__error(IG_ERR_FORMAT, "%s: body: %zu bytes, more than the limit %u", name, frames[1].size,
                         IG_PROTO_MAX_BODY);
    json_error_t err;
    json_t *body = json_loadb(frames[1].data, frames[1].size, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &err);
    if (!body) /* Jansson may quote the bad bytes */
        return ig__error(IG_ERR_FORMAT, "%s: body: not JSON: %s at byte %d", name, printable(err.text),
                         err.position);
    ig_status st = ig_proto_validate(out->type, body);
    if (st) {
        json_decref(body);
        return st;
    }
    out->body = body;
    return IG_OK;
}

json_t *ig_proto_error_body(ig_status code, const char *message) {
    char text[TEXT_MAX + 1];
    snprintf(text, sizeof text, "%s", message ? message : "");
    json_t *m = json_string(text);
    if (!m) { /* not UTF-8 (or cut inside a character) */
        for (char *p = text; *p; p++)
            if ((unsigned char)*p >= 128) *p = '?';
        m = json_string(text);
    }
    return json_pack("{s:s, s:o}", "code", ig_status_name(code), "message", m);
}

/* ---- ZeroMQ ---- */

#ifdef IG_HAVE_ZMQ
static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Waits until sock is ready for events, at most timeout_ms. */
static ig_status wait_for(void *sock, short events, int timeout_ms, const char *what) {
    IG_CHECK(timeout_ms >= 0, "%s: timeout %d ms: must be >= 0 (no wait is unbounded)", what, timeout_ms);
    double deadline = now_ms() + timeout_ms;
    for (;;) {
        zmq_pollitem_t item = {.socket = sock, .events = events};
        double left = deadline - now_ms();
        int r = zmq_poll(&item, 1, left > 0 ? (long)ceil(left) : 0);
        if (r > 0) return IG_OK;
        if (r == 0) return ig__error(IG_ERR_TIMEOUT, "%s: nothing within %d ms", what, timeout_ms);
        if (errno != EINTR) return ig__error(IG_ERR_COMM, "%s: zmq_poll: %s", what, zmq_strerror(errno));
    }
}

ig_status ig_proto_send(void *sock, const void *peer, size_t peer_size, ig_msg_type type, const json_t *body,
                        int timeout_ms) {
    char what[64];
    snprintf(what, sizeof what, "send %s", ig_msg_name(type));
    ig_proto_wire w;
    ig_status st = ig_proto_encode(type, body, &w);
    if (!st) st = wait_for(sock, ZMQ_POLLOUT, timeout_ms, what);
    /* Once the first frame is queued, ZeroMQ queues the rest of the message. */
    if (!st && ((peer && zmq_send(sock, peer, peer_size, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) ||
                zmq_send(sock, w.header, sizeof w.header, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
                zmq_send(sock, w.body, w.body_size, ZMQ_DONTWAIT) < 0))
        st = errno == EAGAIN ? ig__error(IG_ERR_TIMEOUT, "%s: peer not ready", what)
                             : ig__error(IG_ERR_COMM, "%s: zmq_send: %s", what, zmq_strerror(errno));
    ig_proto_wire_free(&w);
    return st;
}

ig_status ig_proto_recv(void *sock, bool router, int timeout_ms, ig_proto_msg *out) {
    enum { KEEP = 4 }; /* identity, header, body, and one to see that there are more */
    out->type = IG_MSG_NONE;
    out->body = NULL;
    out->peer_size = 0;
    ig_status st = wait_for(sock, ZMQ_POLLIN, timeout_ms, "recv");
    if (st) return st;
    zmq_msg_t parts[KEEP];
    size_t n = 0;
    int more = 1;
    while (more) { /* the whole message is there once its first frame is */
        zmq_msg_t scratch, *m = n < KEEP ? &parts[n] : &scratch;
        zmq_msg_init(m);
        if (zmq_msg_recv(m, sock, ZMQ_DONTWAIT) < 0) {
            st = ig__error(IG_ERR_COMM, "recv: zmq_msg_recv: %s", zmq_strerror(errno));
            zmq_msg_close(m);
            break;
        }
        more = zmq_msg_more(m);
        if (m == &scratch)
            zmq_msg_close(m);
        else
            n++;
    }
    if (!st && router && n > 0) {
        out->peer_size = zmq_msg_size(&parts[0]) < IG_PROTO_MAX_PEER ? zmq_msg_size(&parts[0]) : IG_PROTO_MAX_PEER;
        memcpy(out->peer, zmq_msg_data(&parts[0]), out->peer_size);
    }
    if (!st) {
        ig_proto_frame frames[KEEP];
        for (size_t i = 0; i < n; i++) frames[i] = (ig_proto_frame){zmq_msg_data(&parts[i]), zmq_msg_size(&parts[i])};
        st = ig_proto_decode(frames, n, router ? 1 : 0, out);
    }
    for (size_t i = 0; i < n; i++) zmq_msg_close(&parts[i]);
    return st;
}

ig_status ig_proto_reply_error(void *sock, const ig_proto_msg *req, ig_status code, const char *message,
                               int timeout_ms) {
    json_t *body = ig_proto_error_body(code, message);
    if (!body) return ig__error(IG_ERR_NOMEM, "send ERROR: out of memory");
    if (req->type != IG_MSG_NONE) json_object_set_new(body, "request", json_string(ig_msg_name(req->type)));
    ig_status st = ig_proto_send(sock, req->peer_size ? req->peer : NULL, req->peer_size, IG_MSG_ERROR, body,
                                 timeout_ms);
    json_decref(body);
    return st;
}
#else
ig_status ig_proto_send(void *sock, const void *peer, size_t peer_size, ig_msg_type type, const json_t *body,
                        int timeout_ms) {
    return ig__error(IG_ERR_UNSUPPORTED, "send %s: this build of ignis has no ZeroMQ", ig_msg_name(type));
}
ig_status ig_proto_recv(void *sock, bool router, int timeout_ms, ig_proto_msg *out) {
    return ig__error(IG_ERR_UNSUPPORTED, "recv: this build of ignis has no ZeroMQ");
}
ig_status ig_proto_reply_error(void *sock, const ig_proto_msg *req, ig_status code, const char *message,
                               int timeout_ms) {
    return ig__error(IG_ERR_UNSUPPORTED, "send ERROR: this build of ignis has no ZeroMQ");
}
#endif
