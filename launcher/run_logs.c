/* launcher/run_logs.c: what `ignis run` shows of its job's output: rank 0's
 * log, as the coordinator collects it from the workers (LOGS,
 * docs/protocol.md), relayed to stdout as it grows, one attempt after the
 * other (a line "ignis run: attempt A" before each restarted one). So `ignis
 * run` reads like `ignis train` (the trainer prints on rank 0 only), on any
 * launcher, without reading the workers' files. The first failed request
 * (printed) ends the relay; the job is followed regardless. When an attempt
 * fails, the last lines the other ranks wrote (the merged view, rank -1)
 * follow on stderr: the error of a rank other than 0 is seen too. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "launcher/run_workers.h"

static unsigned char data[IG_PROTO_MAX_LOG_CHUNK]; /* one LOGS_REPLY's bytes */

/* One LOGS request: the bytes of job's rank (-1: the merged view) in attempt
 * from offset, into data (*got of them); 0, or 1 when it failed (printed). */
static int fetch(const char *addr, long long job, int rank, long long attempt, long long offset, size_t *got,
                 bool *eof, json_int_t *attempts) {
    json_t *body = json_pack("{s:I, s:i, s:I, s:I, s:i}", "job", (json_int_t)job, "rank", rank, "attempt",
                             (json_int_t)attempt, "offset", (json_int_t)offset, "max_bytes",
                             (int)IG_PROTO_MAX_LOG_CHUNK),
           *reply = NULL;
    int rc = run_request(addr, IG_MSG_LOGS, body, IG_MSG_LOGS_REPLY, CLIENT_TIMEOUT_MS, &reply);
    json_decref(body);
    if (rc) return rc;
    const json_t *text = json_object_get(reply, "data");
    rc = ig_proto_b64_decode(json_string_value(text), json_string_length(text), data, sizeof data, got) != IG_OK;
    *eof = json_is_true(json_object_get(reply, "eof"));
    *attempts = json_integer_value(json_object_get(reply, "attempts"));
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
        if (fetch(addr, l->job, 0, l->attempt, l->offset, &got, &eof, &attempts)) {
            fprintf(stderr, "ignis run: rank 0's output is not shown from here on (ignis logs %lld --rank 0 "
                            "--attempt %lld, or the files under --state)\n", l->job, l->attempt);
            l->off = true;
            return true;
        }
        fwrite(data, 1, got, stdout);
        fflush(stdout);
        l->offset += (long long)got;
        if (got == IG_PROTO_MAX_LOG_CHUNK) continue; /* more is there now */
        if (!eof) return false;
        if (attempts <= l->attempt) return true; /* all of it, so far */
        l->attempt++, l->offset = 0;
        printf("ignis run: attempt %lld\n", l->attempt);
        fflush(stdout);
    }
}

enum { TAIL_KEEP = 64 << 10 };

void run_logs_tail(const char *addr, long long job, long long attempt, int lines, double wait_s) {
    static char keep[TAIL_KEEP + 1];
    size_t kept = 0;
    long long offset = 0;
    for (double end = run_now() + wait_s;;) { /* the merged log, keeping its last TAIL_KEEP bytes, to eof */
        size_t got = 0;
        bool eof = false;
        json_int_t attempts;
        if (fetch(addr, job, -1, attempt, offset, &got, &eof, &attempts)) return;
        offset += (long long)got;
        size_t take = got < TAIL_KEEP ? got : TAIL_KEEP;
        if (kept + take > TAIL_KEEP) { /* drop the oldest bytes */
            memmove(keep, keep + kept + take - TAIL_KEEP, TAIL_KEEP - take);
            kept = TAIL_KEEP - take;
        }
        memcpy(keep + kept, data + got - take, take), kept += take;
        if (got == IG_PROTO_MAX_LOG_CHUNK) continue;
        if (eof || run_now() >= end) break;
        nanosleep(&(struct timespec){0, 100000000L}, NULL);
    }
    keep[kept] = 0;
    /* the last `lines` lines of ranks other than 0 (rank 0's were relayed) */
    char *pick[64];
    int n = 0;
    if (lines > 64) lines = 64;
    for (char *save, *line = strtok_r(keep, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (!strncmp(line, "[rank 0] ", 9)) continue;
        if (n == lines) memmove(pick, pick + 1, (size_t)(lines - 1) * sizeof *pick), n--;
        pick[n++] = line;
    }
    if (!n) return;
    fprintf(stderr, "ignis run: the last lines of the other ranks in attempt %lld (ignis logs %lld --attempt %lld):\n",
            attempt, job, attempt);
    for (int i = 0; i < n; i++) fprintf(stderr, "  %s\n", pick[i]);
}
