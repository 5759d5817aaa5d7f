/* launcher/cmd_logs.c: `ignis logs JOB [--rank R] [--attempt A] [--follow]`:
 * a job's rank output as the coordinator collected it (LOGS, docs/protocol.md),
 * raw bytes on stdout.
 *
 * Without --rank it reads the merged view ("[rank R] " before each line);
 * without --attempt the latest attempt that started, pinned by the first
 * answer so that one run reads one attempt. It reads until the end of what is
 * there; --follow goes on polling every FOLLOW_POLL_MS until the coordinator
 * says no more output comes (eof): then, unless --attempt was given, it moves
 * on to the job's next attempt when there is one, else it exits 0. Every
 * request is bounded by CLIENT_TIMEOUT_MS; a failed one exits 1 with the
 * coordinator's (or the transport's) message. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "launcher/commands.h"

enum { FOLLOW_POLL_MS = 300, OPT_COORD = 256, OPT_RANK, OPT_ATTEMPT, OPT_FOLLOW };

/* One LOGS request: its bytes written to stdout; 0, or 1 on an error. */
static int fetch(const char *addr, json_t *body, bool *eof, size_t *got, json_int_t *attempt,
                 json_int_t *attempts) {
    static unsigned char data[IG_PROTO_MAX_LOG_CHUNK];
    json_t *reply;
    int rc = client_request(addr, IG_MSG_LOGS, body, IG_MSG_LOGS_REPLY, CLIENT_TIMEOUT_MS, &reply);
    if (rc) return rc;
    const json_t *text = json_object_get(reply, "data");
    if (ig_proto_b64_decode(json_string_value(text), json_string_length(text), data, sizeof data, got)) {
        fprintf(stderr, "ignis: LOGS_REPLY: %s\n", ig_last_error()); /* validated already: not reached */
        json_decref(reply);
        return 1;
    }
    fwrite(data, 1, *got, stdout);
    fflush(stdout);
    *eof = json_is_true(json_object_get(reply, "eof"));
    *attempt = json_integer_value(json_object_get(reply, "attempt")); /* 0: the job has not started */
    *attempts = json_integer_value(json_object_get(reply, "attempts"));
    json_decref(reply);
    return 0;
}

int cmd_logs(int argc, char **argv) {
    static const struct option opts[] = {{"coordinator", required_argument, NULL, OPT_COORD},
                                         {"rank", required_argument, NULL, OPT_RANK},
                                         {"attempt", required_argument, NULL, OPT_ATTEMPT},
                                         {"follow", no_argument, NULL, OPT_FOLLOW},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *addr = NULL;
    long long job, rank = -1, attempt = 0;
    bool follow = false;
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case OPT_COORD: addr = optarg; break;
        case OPT_RANK:
            if (!cmd_parse_int(optarg, 0, IG_PROTO_MAX_WORLD - 1, &rank))
                return cmd_usage("logs", "--rank: expected a rank (an integer in [0, %d]), got '%s'",
                             IG_PROTO_MAX_WORLD - 1, optarg);
            break;
        case OPT_ATTEMPT:
            if (!cmd_parse_int(optarg, 1, INT64_MAX, &attempt))
                return cmd_usage("logs", "--attempt: expected an attempt (an integer >= 1), got '%s'", optarg);
            break;
        case OPT_FOLLOW: follow = true; break;
        case 'h': return fputs("usage: ignis logs JOB [options]\n" LOGS_HELP, stdout), 0;
        case ':': return cmd_usage("logs", "option '%s' needs a value", argv[optind - 1]);
        default: return cmd_usage("logs", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (argc - optind != 1) return cmd_usage("logs", "expected one JOB id, got %d arguments", argc - optind);
    if (!cmd_parse_int(argv[optind], 0, INT64_MAX, &job))
        return cmd_usage("logs", "JOB: expected a job id (an integer >= 0), got '%s'", argv[optind]);
    addr = client_address(addr);
    bool pinned = attempt > 0;
    json_int_t offset = 0, at = attempt, attempts = 0;
    for (;;) {
        json_t *body = json_pack("{s:I, s:I, s:I, s:i}", "job", (json_int_t)job, "rank", (json_int_t)rank,
                                 "offset", offset, "max_bytes", (int)IG_PROTO_MAX_LOG_CHUNK);
        if (at > 0) json_object_set_new(body, "attempt", json_integer(at));
        bool eof = false;
        size_t got = 0;
        json_int_t served = 0;
        int rc = fetch(addr, body, &eof, &got, &served, &attempts);
        json_decref(body);
        if (rc) return rc;
        at = served;
        offset += (json_int_t)got;
        if (got == IG_PROTO_MAX_LOG_CHUNK) continue; /* more is there now */
        if (!follow) return 0;
        if (eof) {
            if (pinned || attempts <= at) return 0;
            at++, offset = 0; /* the job's next attempt */
            continue;
        }
        nanosleep(&(struct timespec){0, FOLLOW_POLL_MS * 1000000L}, NULL);
    }
}
