/* core/status.c: status names, the per-thread last error, and the assertion
 * that reports programmer errors with file and line. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/impl.h"

static _Thread_local char last_error[1024];
static _Thread_local ig_status last_status;

const char *ig_status_name(ig_status s) {
    static const char *names[] = {
#define X(name, text) #name,
        IG_STATUS_LIST(X)
#undef X
    };
    return (unsigned)s < IG_STATUS_COUNT ? names[s] : "IG_STATUS_UNKNOWN";
}

const char *ig_status_text(ig_status s) {
    static const char *texts[] = {
#define X(name, text) text,
        IG_STATUS_LIST(X)
#undef X
    };
    return (unsigned)s < IG_STATUS_COUNT ? texts[s] : "unknown status";
}

const char *ig_last_error(void) { return last_error; }
ig_status ig_last_status(void) { return last_status; }

void ig_clear_error(void) {
    last_error[0] = 0;
    last_status = IG_OK;
}

ig_status ig_set_error(ig_status s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    last_status = s;
    return s;
}

void ig__fail(const char *file, int line, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "ignis: %s:%d: %s\n", file, line, msg);
    fflush(stderr);
    abort();
}
