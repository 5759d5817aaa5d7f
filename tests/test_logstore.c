/* tests/test_logstore.c: the coordinator's copy of rank logs
 * (coordinator/logs.h) on real files in a temporary directory: chunks that
 * overlap what is stored (the overlap skipped), that leave a gap (refused),
 * repeated final chunks, the merged view (lines prefixed per rank, partial
 * lines held until their newline or the final chunk, long lines cut, nothing
 * lost or doubled across a reopen), reads, and LOG_DATA / LOGS against a real
 * job store: unknown job, attempt and rank refused, eof once every rank's
 * final chunk is stored and the job ended. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "coordinator/logs.h"
#include "ignis/proto.h"

static char dir[64];
static ig__logstore *S;

static int setup(void **state) {
    snprintf(dir, sizeof dir, "/tmp/ig_logs_XXXXXX");
    if (!mkdtemp(dir)) return -1;
    return ig__logstore_open(dir, &S) ? -1 : 0;
}

static int teardown(void **state) {
    ig__logstore_close(S);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd);
}

static ig__log_stored put(int64_t job, int rank, int64_t offset, const char *text, bool final) {
    ig__log_stored out;
    assert_int_equal(ig__logstore_append(S, job, 1, rank, offset, text, strlen(text), final, &out), IG_OK);
    return out;
}

/* The whole of rank's log (-1: all.log) of job/attempt 1, NUL-terminated. */
static const char *contents(int64_t job, int rank) {
    static char buf[65536];
    size_t n;
    assert_int_equal(ig__logstore_read(S, job, 1, rank, 0, buf, sizeof buf - 1, &n), IG_OK);
    buf[n] = 0;
    return buf;
}

static void overlaps_are_skipped_and_gaps_refused(void **state) {
    ig__log_stored o = put(1, 0, 0, "hello\nwor", false);
    assert_int_equal(o.size, 9);
    assert_false(o.gap || o.final);
    o = put(1, 0, 6, "world\n", false); /* "wor" again, then "ld\n" */
    assert_int_equal(o.size, 12);
    o = put(1, 0, 0, "hello\nworld\n", false); /* a resend of everything */
    assert_int_equal(o.size, 12);
    o = put(1, 0, 20, "lost", false);
    assert_true(o.gap);
    assert_int_equal(o.size, 12);
    assert_string_equal(contents(1, 0), "hello\nworld\n");
    assert_string_equal(contents(1, -1), "[rank 0] hello\n[rank 0] world\n");
    o = put(1, 0, 12, "", true); /* an empty final chunk */
    assert_true(o.final);
    assert_true(ig__logstore_final(S, 1, 1, 0));
    assert_false(ig__logstore_final(S, 1, 1, 1));
}

static void partial_lines_are_held_per_rank_until_the_newline_or_the_end(void **state) {
    put(2, 1, 0, "a", false);
    put(2, 0, 0, "x\ny", false);
    put(2, 1, 1, "b\nc", false);
    assert_string_equal(contents(2, -1), "[rank 0] x\n[rank 1] ab\n");
    ig__log_stored o = put(2, 1, 4, "d", true); /* the end: "cd" shown without its newline */
    assert_true(o.final);
    assert_int_equal(o.size, 5);
    o = put(2, 1, 4, "d", true); /* the same final chunk again (its ack was lost) */
    assert_true(o.final);
    assert_int_equal(o.size, 5);
    assert_string_equal(contents(2, -1), "[rank 0] x\n[rank 1] ab\n[rank 1] cd\n");
    /* a reopened store (a restarted coordinator) still holds rank 0's "y" */
    ig__logstore_close(S);
    assert_int_equal(ig__logstore_open(dir, &S), IG_OK);
    put(2, 0, 3, "z\n", false);
    assert_string_equal(contents(2, -1), "[rank 0] x\n[rank 1] ab\n[rank 1] cd\n[rank 0] yz\n");
    assert_string_equal(contents(2, 0), "x\nyz\n");
    assert_string_equal(contents(2, 1), "ab\ncd");
}

/* A line longer than IG_LOG_LINE_MAX is shown in pieces as it arrives: the
 * pieces, prefixes and added newlines taken out, are the line. */
static void long_lines_are_cut_and_lose_nothing(void **state) {
    char chunk[1001], want[6001] = "", got[8192] = "";
    int64_t off = 0;
    for (int k = 0; k < 6; k++) {
        memset(chunk, 'a' + k, 1000);
        chunk[1000] = 0;
        put(3, 0, off, chunk, false);
        off += 1000;
        strcat(want, chunk);
    }
    put(3, 0, off, "\n", false);
    const char *all = contents(3, -1);
    for (const char *p = all; *p;) {
        assert_memory_equal(p, "[rank 0] ", 9);
        const char *nl = strchr(p, '\n');
        assert_non_null(nl);
        strncat(got, p + 9, (size_t)(nl - p - 9));
        p = nl + 1;
    }
    assert_string_equal(got, want);
}

static void reads_start_at_an_offset_and_end_empty(void **state) {
    put(4, 0, 0, "0123456789", false);
    char buf[8];
    size_t n;
    assert_int_equal(ig__logstore_read(S, 4, 1, 0, 4, buf, 3, &n), IG_OK);
    assert_int_equal(n, 3);
    assert_memory_equal(buf, "456", 3);
    assert_int_equal(ig__logstore_read(S, 4, 1, 0, 10, buf, 8, &n), IG_OK);
    assert_int_equal(n, 0);
    assert_int_equal(ig__logstore_read(S, 4, 1, 1, 0, buf, 8, &n), IG_OK); /* nothing stored yet */
    assert_int_equal(n, 0);
    assert_int_equal(ig__logstore_world(S, 4, 1), 0);
    assert_int_equal(ig__logstore_begin(S, 4, 1, 3), IG_OK);
    assert_int_equal(ig__logstore_world(S, 4, 1), 3);
}

static json_t *parse(const char *text) {
    json_t *j = json_loads(text, 0, NULL);
    assert_non_null(j);
    return j;
}

static void log_data_and_logs_follow_the_job_store(void **state) {
    char sub[96]; /* a state directory of its own: job 1 here is not the job 1 above */
    snprintf(sub, sizeof sub, "%s/coordinator", dir);
    ig__logstore_close(S);
    ig__coord *c;
    assert_int_equal(ig__coord_open(sub, &c), IG_OK);
    assert_int_equal(ig__logstore_open(sub, &S), IG_OK);
    int64_t node, job;
    assert_int_equal(ig__coord_node_register(c, "n1", 2, &node), IG_OK);
    assert_int_equal(ig__coord_submit(c, "{\"name\": \"t\", \"train\": {\"batch_size\": 4}}", 2, 2, 0, &job),
                     IG_OK);
    assert_int_equal(ig__coord_schedule(c, NULL), IG_OK);
    assert_int_equal(ig__logstore_begin(S, job, 1, 2), IG_OK);
    json_t *ack = NULL, *reply = NULL, *b;
    bool gap;

    b = parse("{\"worker\": 1, \"job\": 77, \"attempt\": 1, \"rank\": 0, \"offset\": 0, \"data\": \"\"}");
    assert_int_equal(ig__logs_data(S, c, b, &ack, &gap), IG_ERR_INVALID);
    assert_string_equal(ig_last_error(), "LOG_DATA: job 77: no such job");
    json_decref(b);
    b = parse("{\"worker\": 1, \"job\": 1, \"attempt\": 2, \"rank\": 0, \"offset\": 0, \"data\": \"\"}");
    assert_int_equal(ig__logs_data(S, c, b, &ack, &gap), IG_ERR_INVALID);
    assert_string_equal(ig_last_error(), "LOG_DATA: job 1 attempt 2: never started");
    json_decref(b);
    b = parse("{\"worker\": 1, \"job\": 1, \"attempt\": 1, \"rank\": 2, \"offset\": 0, \"data\": \"\"}");
    assert_int_equal(ig__logs_data(S, c, b, &ack, &gap), IG_ERR_INVALID);
    assert_string_equal(ig_last_error(), "LOG_DATA: job 1 attempt 1 has 2 ranks, got rank 2");
    json_decref(b);

    /* rank 0: "hi\n" (base64 aGkK), final; rank 1: nothing, final */
    b = parse("{\"worker\": 1, \"job\": 1, \"attempt\": 1, \"rank\": 0, \"offset\": 0, \"data\": \"aGkK\", "
              "\"final\": true}");
    assert_int_equal(ig__logs_data(S, c, b, &ack, &gap), IG_OK);
    assert_int_equal(ig_proto_validate(IG_MSG_LOG_ACK, ack), IG_OK);
    assert_int_equal(json_integer_value(json_object_get(ack, "size")), 3);
    assert_true(json_is_true(json_object_get(ack, "final")));
    json_decref(ack);
    json_decref(b);

    /* the job still runs: no eof, though every rank of it may be done */
    b = parse("{\"job\": 1, \"rank\": -1}");
    assert_int_equal(ig__logs_request(S, c, b, 5.0, &reply), IG_OK);
    assert_int_equal(ig_proto_validate(IG_MSG_LOGS_REPLY, reply), IG_OK);
    assert_string_equal(json_string_value(json_object_get(reply, "data")),
                        "W3JhbmsgMF0gaGkK"); /* "[rank 0] hi\n" */
    assert_false(json_is_true(json_object_get(reply, "eof")));
    assert_int_equal(json_integer_value(json_object_get(reply, "attempt")), 1);
    json_decref(reply);

    /* ended: eof once rank 1's final chunk is stored too */
    assert_int_equal(ig__coord_job_end(c, job, IG_JOB_SUCCEEDED, "done"), IG_OK);
    assert_int_equal(ig__logs_request(S, c, b, 1e9, &reply), IG_OK);
    assert_false(json_is_true(json_object_get(reply, "eof")));
    json_decref(reply);
    json_t *last = parse("{\"worker\": 1, \"job\": 1, \"attempt\": 1, \"rank\": 1, \"offset\": 0, \"data\": "
                         "\"\", \"final\": true}");
    assert_int_equal(ig__logs_data(S, c, last, &ack, &gap), IG_OK);
    json_decref(ack);
    json_decref(last);
    assert_int_equal(ig__logs_request(S, c, b, 1e9, &reply), IG_OK);
    assert_true(json_is_true(json_object_get(reply, "eof")));
    json_decref(reply);
    json_decref(b);

    b = parse("{\"job\": 1, \"rank\": 2}");
    assert_int_equal(ig__logs_request(S, c, b, 5.0, &reply), IG_ERR_INVALID);
    assert_string_equal(ig_last_error(), "job 1 attempt 1 has 2 ranks, got rank 2");
    json_decref(b);
    b = parse("{\"job\": 1, \"rank\": 0, \"attempt\": 3}");
    assert_int_equal(ig__logs_request(S, c, b, 5.0, &reply), IG_ERR_INVALID);
    assert_string_equal(ig_last_error(), "job 1 has no attempt 3 (its attempts: 1 to 1)");
    json_decref(b);
    b = parse("{\"job\": 9, \"rank\": 0}");
    assert_int_equal(ig__logs_request(S, c, b, 5.0, &reply), IG_ERR_INVALID);
    assert_string_equal(ig_last_error(), "job 9: no such job");
    json_decref(b);
    ig__coord_close(c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(overlaps_are_skipped_and_gaps_refused),
        cmocka_unit_test(partial_lines_are_held_per_rank_until_the_newline_or_the_end),
        cmocka_unit_test(long_lines_are_cut_and_lose_nothing),
        cmocka_unit_test(reads_start_at_an_offset_and_end_empty),
        cmocka_unit_test(log_data_and_logs_follow_the_job_store),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
