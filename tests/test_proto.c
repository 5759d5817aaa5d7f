/* tests/test_proto.c: the control-plane wire protocol (coordinator/proto.c).
 * Every message type makes a round trip through a real ZeroMQ ROUTER/DEALER
 * pair (tcp on 127.0.0.1 with an ephemeral port, and inproc) in both
 * directions; every class of malformed input (framing, header, JSON, schema)
 * is IG_ERR_FORMAT with a one-line message naming what was wrong, and the
 * receiver can answer it with an ERROR; bounded receives and sends time out
 * instead of hanging. Skipped (77) in a build without ZeroMQ. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ignis/proto.h"
#include "tests/proto_samples.h"
#include "tests/testutil.h"

#ifdef IG_HAVE_ZMQ
#include <zmq.h>

enum { WAIT_MS = 5000 }; /* generous: nothing here should take more than milliseconds */

static json_t *sample(ig_msg_type t) {
    json_error_t err;
    json_t *b = json_loads(proto_samples[t], JSON_REJECT_DUPLICATES, &err);
    if (!b) fail_msg("sample %s: %s", ig_msg_name(t), err.text);
    return b;
}

static void header(unsigned char h[8], const char *magic, unsigned version, unsigned type) {
    memcpy(h, magic, 4);
    h[4] = (unsigned char)(version >> 8);
    h[5] = (unsigned char)version;
    h[6] = (unsigned char)(type >> 8);
    h[7] = (unsigned char)type;
}

/* A failing decode of these frames: IG_ERR_FORMAT, one line, containing frag. */
static void expect_frames_error(const ig_proto_frame *f, size_t n, const char *frag) {
    ig_proto_msg m = {0};
    ig_status st = ig_proto_decode(f, n, 0, &m);
    const char *msg = ig_last_error();
    if (st != IG_ERR_FORMAT || strchr(msg, '\n') || !strstr(msg, frag) || m.body)
        fail_msg("decode gave %s \"%s\", wanted IG_ERR_FORMAT naming \"%s\"", ig_status_name(st), msg, frag);
}

/* A well-framed message of this type with this body text must be rejected. */
static void expect_body_error(ig_msg_type type, const char *body, const char *frag) {
    unsigned char h[8];
    header(h, "IGNS", IG_PROTO_VERSION, type);
    ig_proto_frame f[2] = {{h, 8}, {body, strlen(body)}};
    expect_frames_error(f, 2, frag);
}

static void expect_body_ok(ig_msg_type type, const char *body) {
    unsigned char h[8];
    header(h, "IGNS", IG_PROTO_VERSION, type);
    ig_proto_frame f[2] = {{h, 8}, {body, strlen(body)}};
    ig_proto_msg m = {0};
    if (ig_proto_decode(f, 2, 0, &m)) fail_msg("%s %s rejected: %s", ig_msg_name(type), body, ig_last_error());
    assert_int_equal(m.type, type);
    ig_proto_msg_clear(&m);
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* A connected pair: the coordinator's ROUTER bound on `bind` (tcp port
 * chosen by the system) and a DEALER with routing id "worker-1". */
typedef struct pair {
    void *ctx, *router, *dealer;
} pair;

static pair pair_open(const char *bind) {
    pair p = {zmq_ctx_new()};
    assert_non_null(p.ctx);
    p.router = zmq_socket(p.ctx, ZMQ_ROUTER);
    p.dealer = zmq_socket(p.ctx, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt(p.router, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(p.dealer, ZMQ_LINGER, &zero, sizeof zero);
    assert_int_equal(zmq_setsockopt(p.dealer, ZMQ_ROUTING_ID, "worker-1", 8), 0);
    assert_int_equal(zmq_bind(p.router, bind), 0);
    char endpoint[256];
    size_t len = sizeof endpoint;
    assert_int_equal(zmq_getsockopt(p.router, ZMQ_LAST_ENDPOINT, endpoint, &len), 0);
    if (!strncmp(bind, "tcp://", 6)) assert_string_not_equal(endpoint, bind); /* a real port */
    assert_int_equal(zmq_connect(p.dealer, endpoint), 0);
    return p;
}

static void pair_close(pair *p) {
    zmq_close(p->router);
    zmq_close(p->dealer);
    zmq_ctx_term(p->ctx);
}

static void round_trip_all(const char *bind) {
    pair p = pair_open(bind);
    for (int t = 1; t < IG_MSG_COUNT; t++) {
        json_t *body = sample(t);
        /* DEALER -> ROUTER: the router learns who sent it */
        if (ig_proto_send(p.dealer, NULL, 0, t, body, WAIT_MS))
            fail_msg("send %s: %s", ig_msg_name(t), ig_last_error());
        ig_proto_msg m = {0};
        if (ig_proto_recv(p.router, true, WAIT_MS, &m)) fail_msg("recv %s: %s", ig_msg_name(t), ig_last_error());
        assert_int_equal(m.type, t);
        assert_true(json_equal(m.body, body));
        assert_int_equal(m.peer_size, 8);
        assert_memory_equal(m.peer, "worker-1", 8);
        /* ROUTER -> DEALER, addressed by the routing id just received */
        if (ig_proto_send(p.router, m.peer, m.peer_size, t, m.body, WAIT_MS))
            fail_msg("reply %s: %s", ig_msg_name(t), ig_last_error());
        ig_proto_msg r = {0};
        if (ig_proto_recv(p.dealer, false, WAIT_MS, &r)) fail_msg("recv reply %s: %s", ig_msg_name(t), ig_last_error());
        assert_int_equal(r.type, t);
        assert_true(json_equal(r.body, body));
        assert_int_equal(r.peer_size, 0);
        ig_proto_msg_clear(&m);
        ig_proto_msg_clear(&r);
        json_decref(body);
    }
    pair_close(&p);
}

static void test_every_type_round_trips_over_tcp_loopback(void **state) { round_trip_all("tcp://127.0.0.1:*"); }
static void test_every_type_round_trips_over_inproc(void **state) { round_trip_all("inproc://test-proto"); }

static void test_types_have_stable_wire_values_and_unique_names(void **state) {
    assert_int_equal(IG_MSG_HELLO, 1);
    assert_int_equal(IG_MSG_RENDEZVOUS_REPLY, 15);
    assert_int_equal(IG_MSG_OK, 17);
    assert_int_equal(IG_MSG_LOG_DATA, 18);
    assert_int_equal(IG_MSG_LOG_ACK, 19);
    assert_int_equal(IG_MSG_COUNT, 20);
    assert_string_equal(ig_msg_name(IG_MSG_NONE), "NONE");
    assert_string_equal(ig_msg_name((ig_msg_type)999), "NONE");
    assert_string_equal(ig_msg_name(IG_MSG_START_RANKS), "START_RANKS");
    for (int a = 1; a < IG_MSG_COUNT; a++)
        for (int b = a + 1; b < IG_MSG_COUNT; b++) assert_string_not_equal(ig_msg_name(a), ig_msg_name(b));
}

static void test_encoding_is_header_then_compact_json_and_decodes_at_an_offset(void **state) {
    json_t *body = sample(IG_MSG_CANCEL);
    ig_proto_wire w;
    assert_int_equal(ig_proto_encode(IG_MSG_CANCEL, body, &w), IG_OK);
    assert_memory_equal(w.header, "IGNS\x00\x01\x00\x08", 8);
    assert_int_equal(w.body_size, strlen("{\"job\":41}"));
    assert_memory_equal(w.body, "{\"job\":41}", w.body_size);
    /* a ROUTER's identity frame first: decode starts at offset 1 */
    ig_proto_frame f[3] = {{"peer", 4}, {w.header, 8}, {w.body, w.body_size}};
    ig_proto_msg m = {0};
    assert_int_equal(ig_proto_decode(f, 3, 1, &m), IG_OK);
    assert_int_equal(m.type, IG_MSG_CANCEL);
    assert_true(json_equal(m.body, body));
    ig_proto_msg_clear(&m);
    ig_proto_wire_free(&w);
    /* an absent body is an empty object */
    assert_int_equal(ig_proto_encode(IG_MSG_OK, NULL, &w), IG_OK);
    assert_memory_equal(w.body, "{}", 2);
    ig_proto_wire_free(&w);
    json_decref(body);
}

static void test_malformed_framing_and_headers_are_rejected_with_the_reason(void **state) {
    unsigned char h[8];
    const char *b = "{\"job\": 1}";
    expect_frames_error(NULL, 0, "header: missing");
    header(h, "IGNS", 1, IG_MSG_STATUS);
    expect_frames_error((ig_proto_frame[]){{h, 5}, {b, strlen(b)}}, 2, "header: expected 8 bytes, got 5");
    expect_frames_error((ig_proto_frame[]){{h, 0}}, 1, "header: expected 8 bytes, got 0");
    header(h, "IGNX", 1, IG_MSG_STATUS);
    expect_frames_error((ig_proto_frame[]){{h, 8}, {b, strlen(b)}}, 2, "header: magic: expected IGNS, got \"IGNX\"");
    header(h, "\x00GN\xff", 1, IG_MSG_STATUS);
    expect_frames_error((ig_proto_frame[]){{h, 8}, {b, strlen(b)}}, 2, "got \"\\x00GN\\xff\"");
    header(h, "IGNS", 7, IG_MSG_STATUS);
    expect_frames_error((ig_proto_frame[]){{h, 8}, {b, strlen(b)}}, 2,
                        "header: protocol version 7: this side speaks 1");
    header(h, "IGNS", 1, 0);
    expect_frames_error((ig_proto_frame[]){{h, 8}, {b, strlen(b)}}, 2, "header: unknown message type 0");
    header(h, "IGNS", 1, 999);
    expect_frames_error((ig_proto_frame[]){{h, 8}, {b, strlen(b)}}, 2, "header: unknown message type 999");
    header(h, "IGNS", 1, IG_MSG_STATUS);
    expect_frames_error((ig_proto_frame[]){{h, 8}}, 1, "STATUS: body: missing");
    expect_frames_error((ig_proto_frame[]){{h, 8}, {b, strlen(b)}, {b, 1}}, 3,
                        "STATUS: extra frames after the body");
    expect_frames_error((ig_proto_frame[]){{h, 8}, {"", 0}}, 2, "STATUS: body: empty");
    size_t big = IG_PROTO_MAX_BODY + 1;
    char *huge = malloc(big);
    memset(huge, ' ', big);
    huge[0] = '{', huge[big - 1] = '}';
    expect_frames_error((ig_proto_frame[]){{h, 8}, {huge, big}}, 2,
                        "STATUS: body: 1048577 bytes, more than the limit 1048576");
    huge[big - 2] = '}', huge[big - 1] = ' '; /* exactly at the limit: fine */
    ig_proto_msg m = {0};
    assert_int_equal(ig_proto_decode((ig_proto_frame[]){{h, 8}, {huge, big - 1}}, 2, 0, &m), IG_OK);
    ig_proto_msg_clear(&m);
    free(huge);
}

static void test_malformed_bodies_are_rejected_naming_the_field(void **state) {
    expect_body_error(IG_MSG_STATUS, "{\"job\": ", "STATUS: body: not JSON: ");
    expect_body_error(IG_MSG_STATUS, "{\"job\": 1} x", "STATUS: body: not JSON: ");
    expect_body_error(IG_MSG_STATUS, "{\"job\": \"\xff\"}", "STATUS: body: not JSON: ");
    expect_body_error(IG_MSG_STATUS, "{\"job\": 1, \"job\": 2}", "not JSON: duplicate object key");
    expect_body_error(IG_MSG_STATUS, "[1, 2]", "STATUS: body: expected a JSON object, got an array");
    expect_body_error(IG_MSG_STATUS, "\"job\"", "STATUS: body: expected a JSON object, got \"job\"");
    expect_body_error(IG_MSG_CANCEL, "{}", "CANCEL: field 'job': required, missing");
    expect_body_error(IG_MSG_STATUS, "{\"job\": -3}", "STATUS: field 'job': expected a non-negative integer, got -3");
    expect_body_error(IG_MSG_CANCEL, "{\"job\": \"41\"}", "CANCEL: field 'job': expected a non-negative integer, got \"41\"");
    expect_body_error(IG_MSG_CANCEL, "{\"job\": 4.0}", "got 4.0");
    expect_body_error(IG_MSG_CANCEL, "{\"job\": null}", "got null");
    expect_body_error(IG_MSG_CANCEL, "{\"job\": 99999999999999999999}", "CANCEL: body: not JSON: ");
    expect_body_error(IG_MSG_LOGS, "{\"job\": 1, \"rank\": -2}", "LOGS: field 'rank': expected an integer in [-1, 65535], got -2");
    expect_body_error(IG_MSG_HELLO, "{\"node\": \"\", \"slots\": {\"cpus\": 1}, \"protocol\": 1}",
                      "HELLO: field 'node': expected a string of 1 to 255 bytes, got one of 0 bytes");
    expect_body_error(IG_MSG_HELLO, "{\"node\": \"n\", \"slots\": {\"gpus\": [0]}, \"protocol\": 1}",
                      "HELLO: field 'slots.cpus': required, missing");
    expect_body_error(IG_MSG_HELLO, "{\"node\": \"n\", \"slots\": {\"cpus\": 1, \"gpus\": [0, \"1\"]}, \"protocol\": 1}",
                      "HELLO: field 'slots.gpus[1]': expected an integer in [0, 1023], got \"1\"");
    expect_body_error(IG_MSG_HEARTBEAT, "{\"worker\": 1, \"ranks\": [{\"job\": 1, \"attempt\": 0, \"rank\": 0},"
                                        " {\"job\": 1, \"attempt\": 0, \"rank\": 1, \"loss\": \"nan\"}]}",
                      "HEARTBEAT: field 'ranks[1].loss': expected a number, got \"nan\"");
    expect_body_error(IG_MSG_SUBMIT, "{\"spec\": [1]}", "SUBMIT: field 'spec': expected an object, got an array");
    expect_body_error(IG_MSG_START_RANKS,
                      "{\"job\": 1, \"attempt\": 0, \"spec\": {}, \"world\": 2, \"rendezvous\": \"tcp://h:1\","
                      " \"ranks\": [{\"rank\": 2, \"local_rank\": 0, \"slot\": 0}]}",
                      "START_RANKS: field 'ranks[0].rank': expected an integer in [0, 1] (below world 2), got 2");
    expect_body_error(IG_MSG_RENDEZVOUS_REPLY,
                      "{\"job\": 1, \"attempt\": 0, \"world\": 3, \"rank\": 0, \"addresses\": [\"AA==\", \"AA==\"]}",
                      "RENDEZVOUS_REPLY: field 'addresses': expected 3 items (world), got 2");
    expect_body_error(IG_MSG_RENDEZVOUS, "{\"job\": 1, \"attempt\": 0, \"world\": 4, \"rank\": 1, \"address\": \"AAE*\"}",
                      "RENDEZVOUS: field 'address': expected base64 of 1 to 8192 bytes, got invalid base64: character 3");
    expect_body_error(IG_MSG_RENDEZVOUS, "{\"job\": 1, \"attempt\": 0, \"world\": 4, \"rank\": 1, \"address\": \"\"}",
                      "got an empty blob");
    expect_body_error(IG_MSG_RANK_EXIT, "{\"job\": 1, \"attempt\": 0, \"rank\": 0, \"time\": 5}",
                      "RANK_EXIT: expected exactly one of 'exit_code' or 'signal', got 0");
    expect_body_error(IG_MSG_RANK_EXIT, "{\"job\": 1, \"attempt\": 0, \"rank\": 0, \"time\": 5, \"exit_code\": 0, \"signal\": 9}",
                      "RANK_EXIT: expected exactly one of 'exit_code' or 'signal', got 2");
    expect_body_error(IG_MSG_STATUS_REPLY, "{\"jobs\": [{\"job\": 1, \"state\": \"x\", \"attempt\": 0, \"tokens_per_s\": -1}]}",
                      "STATUS_REPLY: field 'jobs[0].tokens_per_s': expected a non-negative number, got -1");
    expect_body_error(IG_MSG_LOGS_REPLY, "{\"job\": 1, \"rank\": 0, \"offset\": 0, \"data\": \"\", \"eof\": 1}",
                      "LOGS_REPLY: field 'eof': expected true or false, got 1");
    expect_body_error(IG_MSG_LOG_DATA, "{\"worker\": 1, \"job\": 1, \"attempt\": 1, \"rank\": 0, \"offset\": -1,"
                                       " \"data\": \"\"}",
                      "LOG_DATA: field 'offset': expected a non-negative integer, got -1");
    expect_body_error(IG_MSG_LOG_ACK, "{\"job\": 1, \"attempt\": 1, \"rank\": 0}", "LOG_ACK: field 'size': required, missing");
    /* arrays are bounded */
    json_t *hello = sample(IG_MSG_HELLO), *gpus = json_object_get(json_object_get(hello, "slots"), "gpus");
    while (json_array_size(gpus) < 257) json_array_append_new(gpus, json_integer(0));
    ig_proto_wire w;
    assert_int_equal(ig_proto_encode(IG_MSG_HELLO, hello, &w), IG_ERR_FORMAT);
    assert_string_equal(ig_last_error(), "HELLO: field 'slots.gpus': expected 0 to 256 items, got 257");
    assert_null(w.body);
    json_decref(hello);
}

static void test_unknown_fields_are_ignored_and_known_ones_still_checked(void **state) {
    expect_body_ok(IG_MSG_STATUS, "{\"job\": 3, \"since\": \"2026-01-01\", \"x\": {\"y\": [null]}}");
    expect_body_ok(IG_MSG_STATUS, "{}"); /* job is optional */
    expect_body_ok(IG_MSG_OK, "{\"anything\": 1}");
    expect_body_ok(IG_MSG_LOGS_REPLY, "{\"job\": 1, \"rank\": 0, \"offset\": 0, \"data\": \"\"}"); /* empty chunk */
    expect_body_ok(IG_MSG_LOG_DATA, "{\"worker\": 1, \"job\": 1, \"attempt\": 1, \"rank\": 0, \"offset\": 0,"
                                    " \"data\": \"\", \"final\": true}"); /* a rank that printed nothing */
    expect_body_error(IG_MSG_STATUS, "{\"job\": \"3\", \"since\": 1}", "STATUS: field 'job'");
}

static void test_base64_round_trips_and_rejects_non_canonical_text(void **state) {
    unsigned char data[64], back[64];
    for (size_t i = 0; i < sizeof data; i++) data[i] = (unsigned char)(i * 37 + 11);
    for (size_t n = 0; n <= sizeof data; n++) {
        char *s = ig_proto_b64_encode(data, n);
        size_t got = 999;
        assert_int_equal(strlen(s), (n + 2) / 3 * 4);
        assert_int_equal(ig_proto_b64_decode(s, strlen(s), back, sizeof back, &got), IG_OK);
        assert_int_equal(got, n);
        if (n) assert_memory_equal(back, data, n);
        free(s);
    }
    char *s = ig_proto_b64_encode("foobar", 6);
    assert_string_equal(s, "Zm9vYmFy");
    free(s);
    static const char *const bad[] = {"Zm9", "Zm9v=", "Zg=A", "Z===", "====", "Zh==", "Zm9=", "Zm9v\nYmFy", "Zm-v"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (ig_proto_b64_decode(bad[i], strlen(bad[i]), back, sizeof back, NULL) != IG_ERR_FORMAT)
            fail_msg("\"%s\" accepted as base64", bad[i]);
    assert_int_equal(ig_proto_b64_decode("Zm9vYmFy", 8, back, 5, NULL), IG_ERR_FORMAT); /* over cap */
    assert_non_null(strstr(ig_last_error(), "more than the limit 5"));
}

static void test_a_malformed_message_is_answered_with_an_error_and_the_router_goes_on(void **state) {
    pair p = pair_open("tcp://127.0.0.1:*");
    unsigned char h[8];
    header(h, "IGNS", 1, IG_MSG_STATUS);
    const char *body = "{\"job\": -3}";
    assert_int_equal(zmq_send(p.dealer, h, 8, ZMQ_SNDMORE), 8);
    assert_int_equal(zmq_send(p.dealer, body, strlen(body), 0), (int)strlen(body));
    ig_proto_msg m = {0};
    assert_int_equal(ig_proto_recv(p.router, true, WAIT_MS, &m), IG_ERR_FORMAT);
    assert_int_equal(m.type, IG_MSG_STATUS);
    assert_null(m.body);
    assert_memory_equal(m.peer, "worker-1", 8);
    char why[1024];
    snprintf(why, sizeof why, "%s", ig_last_error());
    assert_string_equal(why, "STATUS: field 'job': expected a non-negative integer, got -3");
    assert_int_equal(ig_proto_reply_error(p.router, &m, IG_ERR_FORMAT, why, WAIT_MS), IG_OK);
    ig_proto_msg r = {0};
    assert_int_equal(ig_proto_recv(p.dealer, false, WAIT_MS, &r), IG_OK);
    assert_int_equal(r.type, IG_MSG_ERROR);
    assert_string_equal(json_string_value(json_object_get(r.body, "code")), "IG_ERR_FORMAT");
    assert_string_equal(json_string_value(json_object_get(r.body, "message")), why);
    ig_proto_msg_clear(&r);
    /* a garbage frame, then extra frames: each rejected, nothing left over */
    assert_int_equal(zmq_send(p.dealer, "hi", 2, 0), 2);
    assert_int_equal(ig_proto_recv(p.router, true, WAIT_MS, &m), IG_ERR_FORMAT);
    assert_string_equal(ig_last_error(), "header: expected 8 bytes, got 2");
    assert_int_equal(m.type, IG_MSG_NONE);
    for (int i = 0; i < 6; i++) zmq_send(p.dealer, i == 0 ? (void *)h : "{}", i == 0 ? 8 : 2, i < 5 ? ZMQ_SNDMORE : 0);
    assert_int_equal(ig_proto_recv(p.router, true, WAIT_MS, &m), IG_ERR_FORMAT);
    assert_string_equal(ig_last_error(), "STATUS: extra frames after the body");
    /* and a good message after them is received intact */
    json_t *ok = sample(IG_MSG_SUBMIT);
    assert_int_equal(ig_proto_send(p.dealer, NULL, 0, IG_MSG_SUBMIT, ok, WAIT_MS), IG_OK);
    assert_int_equal(ig_proto_recv(p.router, true, WAIT_MS, &m), IG_OK);
    assert_true(json_equal(m.body, ok));
    ig_proto_msg_clear(&m);
    json_decref(ok);
    pair_close(&p);
}

static void test_an_invalid_body_is_never_sent(void **state) {
    pair p = pair_open("inproc://test-proto-invalid");
    json_t *body = json_pack("{s:i}", "job", -3);
    assert_int_equal(ig_proto_send(p.dealer, NULL, 0, IG_MSG_CANCEL, body, WAIT_MS), IG_ERR_FORMAT);
    assert_string_equal(ig_last_error(), "CANCEL: field 'job': expected a non-negative integer, got -3");
    ig_proto_msg m = {0};
    assert_int_equal(ig_proto_recv(p.router, true, 100, &m), IG_ERR_TIMEOUT);
    json_decref(body);
    pair_close(&p);
}

static void test_receives_and_sends_time_out_instead_of_hanging(void **state) {
    void *ctx = zmq_ctx_new();
    void *router = zmq_socket(ctx, ZMQ_ROUTER), *dealer = zmq_socket(ctx, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt(router, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(dealer, ZMQ_LINGER, &zero, sizeof zero);
    assert_int_equal(zmq_bind(router, "tcp://127.0.0.1:*"), 0);
    /* a router nobody talks to */
    ig_proto_msg m = {0};
    double t0 = now_ms();
    assert_int_equal(ig_proto_recv(router, true, 200, &m), IG_ERR_TIMEOUT);
    double dt = now_ms() - t0;
    assert_true(dt >= 190 && dt < 3000);
    assert_non_null(strstr(ig_last_error(), "recv: nothing within 200 ms"));
    t0 = now_ms();
    assert_int_equal(ig_proto_recv(router, true, 0, &m), IG_ERR_TIMEOUT);
    assert_true(now_ms() - t0 < 1000);
    /* a dealer connected to nothing cannot send: it waits, then gives up */
    json_t *body = sample(IG_MSG_STATUS);
    t0 = now_ms();
    assert_int_equal(ig_proto_send(dealer, NULL, 0, IG_MSG_STATUS, body, 150), IG_ERR_TIMEOUT);
    dt = now_ms() - t0;
    assert_true(dt >= 140 && dt < 3000);
    assert_int_equal(ig_proto_recv(dealer, false, 50, &m), IG_ERR_TIMEOUT);
    json_decref(body);
    zmq_close(router);
    zmq_close(dealer);
    zmq_ctx_term(ctx);
}

static void test_error_bodies_are_valid_for_any_message(void **state) {
    char long_msg[3000];
    memset(long_msg, 'x', sizeof long_msg - 1);
    long_msg[sizeof long_msg - 1] = 0;
    long_msg[1023] = (char)0xc3; /* a two-byte character cut at the limit */
    long_msg[1024] = (char)0xa9;
    const char *msgs[] = {"", "plain", "bad \xff\xfe utf-8", long_msg};
    for (size_t i = 0; i < 4; i++) {
        json_t *b = ig_proto_error_body(IG_ERR_TIMEOUT, msgs[i]);
        assert_non_null(b);
        assert_int_equal(ig_proto_validate(IG_MSG_ERROR, b), IG_OK);
        assert_string_equal(json_string_value(json_object_get(b, "code")), "IG_ERR_TIMEOUT");
        assert_true(json_string_length(json_object_get(b, "message")) <= 1024);
        json_decref(b);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_types_have_stable_wire_values_and_unique_names),
        cmocka_unit_test(test_encoding_is_header_then_compact_json_and_decodes_at_an_offset),
        cmocka_unit_test(test_every_type_round_trips_over_tcp_loopback),
        cmocka_unit_test(test_every_type_round_trips_over_inproc),
        cmocka_unit_test(test_malformed_framing_and_headers_are_rejected_with_the_reason),
        cmocka_unit_test(test_malformed_bodies_are_rejected_naming_the_field),
        cmocka_unit_test(test_unknown_fields_are_ignored_and_known_ones_still_checked),
        cmocka_unit_test(test_base64_round_trips_and_rejects_non_canonical_text),
        cmocka_unit_test(test_a_malformed_message_is_answered_with_an_error_and_the_router_goes_on),
        cmocka_unit_test(test_an_invalid_body_is_never_sent),
        cmocka_unit_test(test_receives_and_sends_time_out_instead_of_hanging),
        cmocka_unit_test(test_error_bodies_are_valid_for_any_message),
    };
    return TU_RUN(tests);
}
#else
int main(void) { return 77; } /* no ZeroMQ in this build */
#endif
