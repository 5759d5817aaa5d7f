/* coordinator/journal.c: the coordinator's SQLite journal (dir/journal.db):
 * schema, open and restore, one-transaction writes, the events history.
 *
 * Invariants: the schema version lives in meta; a file without meta, with an
 * unreadable one or a newer version is refused with its name. Job and node
 * ids are dense (1..n, ids never reused, rows never deleted), so memory
 * indexes them as arrays. Restoring checks what it reads (states, placements
 * against node slots): a journal that contradicts itself is IG_ERR_FORMAT,
 * never a crash. */
#include <errno.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "coordinator/coord.h"

#define SCHEMA_VERSION 1

static const char schema[] =
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE jobs(id INTEGER PRIMARY KEY, spec TEXT NOT NULL, batch INTEGER NOT NULL,"
    " ranks INTEGER NOT NULL, min_ranks INTEGER NOT NULL, max_ranks INTEGER NOT NULL,"
    " max_restarts INTEGER NOT NULL, state TEXT NOT NULL, reason TEXT NOT NULL,"
    " attempt INTEGER NOT NULL, restarts INTEGER NOT NULL, submitted REAL NOT NULL,"
    " started REAL NOT NULL, ended REAL NOT NULL, ckpt_step INTEGER NOT NULL);"
    "CREATE TABLE nodes(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
    " slots INTEGER NOT NULL, fenced INTEGER NOT NULL, reason TEXT NOT NULL);"
    "CREATE TABLE placements(job INTEGER NOT NULL, rank INTEGER NOT NULL,"
    " node INTEGER NOT NULL, local_rank INTEGER NOT NULL, slot INTEGER NOT NULL,"
    " PRIMARY KEY(job, rank));"
    "CREATE TABLE events(id INTEGER PRIMARY KEY AUTOINCREMENT, time REAL NOT NULL,"
    " job INTEGER NOT NULL, kind TEXT NOT NULL, text TEXT NOT NULL);"
    "CREATE INDEX events_job ON events(job);";

double ig__coord_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static ig_status dberr(ig__coord *c, const char *what) {
    return ig_set_error(IG_ERR_IO, "%s: %s: %s", c->path, what, sqlite3_errmsg(c->db));
}

static ig_status exec(ig__coord *c, const char *sql) {
    return sqlite3_exec(c->db, sql, NULL, NULL, NULL) == SQLITE_OK ? IG_OK : dberr(c, sql);
}

ig_status ig__coord_begin(ig__coord *c) { return exec(c, "BEGIN IMMEDIATE"); }
ig_status ig__coord_commit(ig__coord *c) {
    ig_status st = exec(c, "COMMIT");
    if (st) ig__coord_rollback(c);
    return st;
}
void ig__coord_rollback(ig__coord *c) {
    if (!sqlite3_get_autocommit(c->db)) sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
}

static void bind(sqlite3_stmt *s, const char *types, va_list ap) {
    for (int k = 0; types[k]; k++) {
        switch (types[k]) {
        case 'i': sqlite3_bind_int(s, k + 1, va_arg(ap, int)); break;
        case 'l': sqlite3_bind_int64(s, k + 1, va_arg(ap, int64_t)); break;
        case 'd': sqlite3_bind_double(s, k + 1, va_arg(ap, double)); break;
        default: sqlite3_bind_text(s, k + 1, va_arg(ap, const char *), -1, SQLITE_TRANSIENT);
        }
    }
}

ig_status ig__coord_sql(ig__coord *c, const char *sql, const char *types, ...) {
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(c->db, sql, -1, &s, NULL) != SQLITE_OK) return dberr(c, sql);
    va_list ap;
    va_start(ap, types);
    bind(s, types, ap);
    va_end(ap);
    int rc = sqlite3_step(s);
    sqlite3_finalize(s);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? IG_OK : dberr(c, sql);
}

ig_status ig__coord_event(ig__coord *c, int64_t job, const char *kind, const char *fmt, ...) {
    char text[2 * IG_COORD_REASON_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    return ig__coord_sql(c, "INSERT INTO events(time, job, kind, text) VALUES(?, ?, ?, ?)",
                         "dltt", ig__coord_now(), job, kind, text);
}

ig_status ig__coord_write_job(ig__coord *c, const ig__coord_job *j) {
    return ig__coord_sql(
        c,
        "INSERT OR REPLACE INTO jobs(id, spec, batch, ranks, min_ranks, max_ranks, max_restarts,"
        " state, reason, attempt, restarts, submitted, started, ended, ckpt_step)"
        " VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        "ltiiiiittiidddl", j->id, j->spec, j->batch, j->ranks, j->min_ranks, j->max_ranks,
        j->max_restarts, ig__job_state_name(j->state), j->reason, j->attempt, j->restarts,
        j->submitted, j->started, j->ended, j->ckpt_step);
}

ig_status ig__coord_write_placements(ig__coord *c, const ig__coord_job *j) {
    ig_status st = ig__coord_sql(c, "DELETE FROM placements WHERE job = ?", "l", j->id);
    if (st || !j->assign) return st;
    sqlite3_stmt *s;
    const char *sql = "INSERT INTO placements(job, rank, node, local_rank, slot) VALUES(?, ?, ?, ?, ?)";
    if (sqlite3_prepare_v2(c->db, sql, -1, &s, NULL) != SQLITE_OK) return dberr(c, sql);
    for (int r = 0; r < j->ranks && !st; r++) {
        sqlite3_bind_int64(s, 1, j->id);
        sqlite3_bind_int(s, 2, r);
        sqlite3_bind_int64(s, 3, j->assign[r].node);
        sqlite3_bind_int(s, 4, j->assign[r].local_rank);
        sqlite3_bind_int(s, 5, j->assign[r].slot);
        if (sqlite3_step(s) != SQLITE_DONE) st = dberr(c, sql);
        sqlite3_reset(s);
    }
    sqlite3_finalize(s);
    return st;
}

ig_status ig__coord_write_node(ig__coord *c, const ig__coord_node *n) {
    return ig__coord_sql(c, "INSERT OR REPLACE INTO nodes(id, name, slots, fenced, reason) VALUES(?, ?, ?, ?, ?)",
                         "ltiit", n->id, n->name, n->slots, (int)n->fenced, n->reason);
}

ig_status ig__coord_events(ig__coord *c, int64_t job, ig__coord_event_fn fn, void *user) {
    sqlite3_stmt *s;
    const char *sql = "SELECT time, job, kind, text FROM events WHERE ? = 0 OR job = ? ORDER BY id";
    if (sqlite3_prepare_v2(c->db, sql, -1, &s, NULL) != SQLITE_OK) return dberr(c, sql);
    sqlite3_bind_int64(s, 1, job);
    sqlite3_bind_int64(s, 2, job);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW)
        fn(user, sqlite3_column_double(s, 0), sqlite3_column_int64(s, 1),
           (const char *)sqlite3_column_text(s, 2), (const char *)sqlite3_column_text(s, 3));
    sqlite3_finalize(s);
    return rc == SQLITE_DONE ? IG_OK : dberr(c, sql);
}

/* ---- open and restore ---- */

static ig_status bad(ig__coord *c, const char *what) {
    return ig_set_error(IG_ERR_FORMAT, "%s: not a valid ignis coordinator journal: %s", c->path, what);
}

static void copy_text(char *dst, size_t cap, const unsigned char *src) {
    snprintf(dst, cap, "%s", src ? (const char *)src : "");
}

static ig_status load_nodes(ig__coord *c) {
    sqlite3_stmt *s;
    const char *sql = "SELECT id, name, slots, fenced, reason FROM nodes ORDER BY id";
    if (sqlite3_prepare_v2(c->db, sql, -1, &s, NULL) != SQLITE_OK) return dberr(c, sql);
    ig_status st = IG_OK;
    int rc;
    while (!st && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        int slots = sqlite3_column_int(s, 2);
        if (sqlite3_column_int64(s, 0) != c->nnodes + 1 || slots < 1 || slots > 1 << 16) {
            st = bad(c, "node ids not dense or slots out of range");
            break;
        }
        if (c->nnodes == c->cap_nodes) {
            c->cap_nodes = c->cap_nodes ? 2 * c->cap_nodes : 16;
            c->nodes = realloc(c->nodes, (size_t)c->cap_nodes * sizeof *c->nodes);
        }
        ig__coord_node *n = &c->nodes[c->nnodes++];
        *n = (ig__coord_node){.id = c->nnodes, .slots = slots, .fenced = sqlite3_column_int(s, 3) != 0,
                              .owner = calloc((size_t)slots, sizeof(int64_t))};
        copy_text(n->name, sizeof n->name, sqlite3_column_text(s, 1));
        copy_text(n->reason, sizeof n->reason, sqlite3_column_text(s, 4));
    }
    if (!st && rc != SQLITE_DONE) st = dberr(c, sql);
    sqlite3_finalize(s);
    return st;
}

static int state_of(const unsigned char *name) {
    for (int k = 0; k < IG_JOB_STATE_COUNT; k++)
        if (name && !strcmp((const char *)name, ig__job_state_name((ig__job_state)k))) return k;
    return -1;
}

static ig_status load_jobs(ig__coord *c) {
    sqlite3_stmt *s;
    const char *sql = "SELECT id, spec, batch, ranks, min_ranks, max_ranks, max_restarts, state, reason,"
                      " attempt, restarts, submitted, started, ended, ckpt_step FROM jobs ORDER BY id";
    if (sqlite3_prepare_v2(c->db, sql, -1, &s, NULL) != SQLITE_OK) return dberr(c, sql);
    ig_status st = IG_OK;
    int rc;
    while (!st && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        int state = state_of(sqlite3_column_text(s, 7));
        int ranks = sqlite3_column_int(s, 3), min = sqlite3_column_int(s, 4), max = sqlite3_column_int(s, 5);
        if (sqlite3_column_int64(s, 0) != c->njobs + 1 || state < 0 || min < 1 || max < min ||
            max > IG_COORD_MAX_RANKS || ranks < 0 || ranks > max || (state == IG_JOB_RUNNING && ranks < 1) ||
            sqlite3_column_int(s, 2) < 1 || !sqlite3_column_text(s, 1)) {
            st = bad(c, "job ids not dense, unknown state, no spec or sizes out of range");
            break;
        }
        if (c->njobs == c->cap_jobs) {
            c->cap_jobs = c->cap_jobs ? 2 * c->cap_jobs : 16;
            c->jobs = realloc(c->jobs, (size_t)c->cap_jobs * sizeof *c->jobs);
        }
        ig__coord_job *j = &c->jobs[c->njobs++];
        *j = (ig__coord_job){
            .id = c->njobs, .spec = strdup((const char *)sqlite3_column_text(s, 1)),
            .batch = sqlite3_column_int(s, 2), .ranks = ranks, .min_ranks = min,
            .max_ranks = max, .max_restarts = sqlite3_column_int(s, 6), .state = (ig__job_state)state,
            .attempt = sqlite3_column_int(s, 9), .restarts = sqlite3_column_int(s, 10),
            .submitted = sqlite3_column_double(s, 11), .started = sqlite3_column_double(s, 12),
            .ended = sqlite3_column_double(s, 13), .ckpt_step = sqlite3_column_int64(s, 14),
            .awaiting = state == IG_JOB_RUNNING};
        copy_text(j->reason, sizeof j->reason, sqlite3_column_text(s, 8));
        if (state == IG_JOB_RUNNING) {
            j->assign = malloc((size_t)ranks * sizeof *j->assign);
            for (int r = 0; r < ranks; r++) j->assign[r].node = 0; /* filled by load_placements */
        }
    }
    if (!st && rc != SQLITE_DONE) st = dberr(c, sql);
    sqlite3_finalize(s);
    return st;
}

static ig_status load_placements(ig__coord *c) {
    sqlite3_stmt *s;
    const char *sql = "SELECT job, rank, node, local_rank, slot FROM placements ORDER BY job, rank";
    if (sqlite3_prepare_v2(c->db, sql, -1, &s, NULL) != SQLITE_OK) return dberr(c, sql);
    ig_status st = IG_OK;
    int rc;
    while (!st && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        ig__coord_job *j = ig__coord_job_get(c, sqlite3_column_int64(s, 0));
        int r = sqlite3_column_int(s, 1), slot = sqlite3_column_int(s, 4);
        ig__coord_node *n = ig__coord_node_get(c, sqlite3_column_int64(s, 2));
        if (!j || j->state != IG_JOB_RUNNING || r < 0 || r >= j->ranks || !n || slot < 0 ||
            slot >= n->slots || n->owner[slot] || j->assign[r].node) {
            st = bad(c, "a placement names no running job, no node or a taken slot");
            break;
        }
        j->assign[r] = (ig__coord_rank){n->id, sqlite3_column_int(s, 3), slot};
        n->owner[slot] = j->id, n->used++;
    }
    if (!st && rc != SQLITE_DONE) st = dberr(c, sql);
    sqlite3_finalize(s);
    for (int64_t k = 0; !st && k < c->njobs; k++)
        for (int r = 0; c->jobs[k].assign && r < c->jobs[k].ranks; r++)
            if (!c->jobs[k].assign[r].node) {
                st = bad(c, "a running job lacks placements");
                break;
            }
    return st;
}

/* The schema version, or an error when the file is no journal. */
static ig_status check_meta(ig__coord *c, bool *empty) {
    sqlite3_stmt *s;
    /* the first read of the file: a corrupt or foreign file fails here */
    if (sqlite3_prepare_v2(c->db, "SELECT count(*) FROM sqlite_master", -1, &s, NULL) != SQLITE_OK)
        return ig_set_error(IG_ERR_FORMAT, "%s: not a valid ignis coordinator journal: %s", c->path,
                            sqlite3_errmsg(c->db));
    int rc = sqlite3_step(s);
    *empty = rc == SQLITE_ROW && sqlite3_column_int(s, 0) == 0;
    sqlite3_finalize(s);
    if (rc != SQLITE_ROW)
        return ig_set_error(IG_ERR_FORMAT, "%s: not a valid ignis coordinator journal: %s", c->path,
                            sqlite3_errmsg(c->db));
    if (*empty) return IG_OK;
    if (sqlite3_prepare_v2(c->db, "SELECT value FROM meta WHERE key = 'schema_version'", -1, &s, NULL) != SQLITE_OK)
        return bad(c, "no meta table (another program's database?)");
    rc = sqlite3_step(s);
    int version = rc == SQLITE_ROW ? sqlite3_column_int(s, 0) : 0;
    sqlite3_finalize(s);
    if (version < 1) return bad(c, "no schema_version in meta");
    if (version > SCHEMA_VERSION)
        return ig_set_error(IG_ERR_UNSUPPORTED,
                            "%s: journal schema version %d is newer than this coordinator's (%d): "
                            "run a newer ignis", c->path, version, SCHEMA_VERSION);
    return IG_OK;
}

ig_status ig__coord_open(const char *dir, ig__coord **out) {
    *out = NULL;
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return ig_set_error(IG_ERR_IO, "%s: cannot create the coordinator state directory: %s", dir,
                            strerror(errno));
    ig__coord *c = calloc(1, sizeof *c);
    if ((size_t)snprintf(c->path, sizeof c->path, "%s/journal.db", dir) >= sizeof c->path) {
        free(c);
        return ig_set_error(IG_ERR_INVALID, "%s: path too long", dir);
    }
    ig_status st = IG_OK;
    bool empty = false;
    if (sqlite3_open_v2(c->path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK)
        st = ig_set_error(IG_ERR_IO, "%s: cannot open: %s", c->path,
                          c->db ? sqlite3_errmsg(c->db) : "out of memory");
    if (!st) {
        sqlite3_extended_result_codes(c->db, 1);
        sqlite3_busy_timeout(c->db, 5000);
        st = check_meta(c, &empty);
    }
    if (!st) st = exec(c, "PRAGMA journal_mode=WAL");
    if (!st) st = exec(c, "PRAGMA synchronous=FULL");
    if (!st && empty) {
        char sql[sizeof schema + 128];
        snprintf(sql, sizeof sql, "BEGIN; %s INSERT INTO meta VALUES('schema_version', '%d'); COMMIT;",
                 schema, SCHEMA_VERSION);
        st = exec(c, sql);
        if (st) ig__coord_rollback(c);
    }
    if (!st) st = load_nodes(c);
    if (!st) st = load_jobs(c);
    if (!st) st = load_placements(c);
    if (st) {
        ig__coord_close(c);
        return st;
    }
    *out = c;
    return IG_OK;
}

void ig__coord_close(ig__coord *c) {
    if (!c) return;
    sqlite3_close_v2(c->db);
    for (int64_t k = 0; k < c->njobs; k++) free(c->jobs[k].spec), free(c->jobs[k].assign);
    for (int64_t k = 0; k < c->nnodes; k++) free(c->nodes[k].owner);
    free(c->jobs);
    free(c->nodes);
    free(c);
}
