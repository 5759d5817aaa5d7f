/* launcher/run_logs.c: what `ignis run` shows of its job's output: rank 0's
 * log, as the coordinator collects it from the workers (LOGS,
 * docs/protocol.md), relayed to stdout as it grows, one attempt after the
 * other (a line "ignis run: attempt A" before each restarted one). So `ignis
 * run` reads like `ignis train` (the trainer prints on rank 0 only), on any
 * launcher, without reading the workers' files. The first failed request
 * (printed) ends the relay; the job is followed regardless. */
#include <signal.h>
#include <stdio.h>

#include "launcher/run_workers.h"

/* One LOGS request from where the relay stands; its bytes to stdout. */
static int fetch(run_logs *l, const char *addr, size_t *got, bool *eof, json_int_t *attempts) {
    static unsigned char data[IG_PROTO_MAX_LOG_CHUNK];
    json_t *body = json_pack("{s:I, s:i, s:I, s:I, s:i}", "job", (json_int_t)l->job, "rank", 0, "attempt",
                             (json_int_t)l->attempt, "offset", (json_int_t)l->offset, "max_bytes",
                             (int)IG_PROTO_MAX_LOG_CHUNK),
           *reply = NULL;
    int rc = run_request(addr, IG_MSG_LOGS, body, IG_MSG_LOGS_REPLY, CLIENT_TIMEOUT_MS, &reply);
    json_decref(body);
    if (rc) return rc;
    const json_t *text = json_object_get(reply, "data");
    rc = ig_proto_b64_decode(json_string_value(text), json_string_length(text), data, sizeof data, got) != IG_OK;
    if (!rc) {
        fwrite(data, 1, *got, stdout);
        fflush(stdout);
        l->offset += (long long)*got;
        *eof = json_is_true(json_object_get(reply, "eof"));
        *attempts = json_integer_value(json_object_get(reply, "attempts"));
    }
    json_decref(reply);
    return rc;
}

bool run_logs_poll(run_logs *l, const char *addr) {
    if (l->off) return true;
    if (l->attempt < 1) l->attempt = 1, l->offset = 0;
    for (;;) {
        size_t got = 0;
        bool eof = false;
        json_int_t attempts = 0;
        if (fetch(l, addr, &got, &eof, &attempts)) {
            fprintf(stderr, "ignis run: rank 0's output is not shown from here on (ignis logs %lld --rank 0 "
                            "--attempt %lld, or the files under --state)\n", l->job, l->attempt);
            l->off = true;
            return true;
        }
        if (got == IG_PROTO_MAX_LOG_CHUNK) continue; /* more is there now */
        if (!eof) return false;
        if (attempts <= l->attempt) return true; /* all of it, so far */
        l->attempt++, l->offset = 0;
        printf("ignis run: attempt %lld\n", l->attempt);
        fflush(stdout);
    }
}
