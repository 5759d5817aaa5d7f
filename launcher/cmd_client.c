/* launcher/cmd_client.c: the client commands `ignis submit`, `ignis status`
 * and `ignis cancel`, which talk to a coordinator (docs/protocol.md), and the
 * helpers that `ignis run` (cmd_run.c) shares with them.
 *
 * Invariants: every request is one DEALER socket, one message out and one
 * answer in, bounded by a timeout (no answer: "ignis: no answer from the
 * coordinator at ADDR", exit 1). A job spec is loaded and validated here
 * before anything is sent (a bad spec: exit 2, nothing submitted); it travels
 * as its JSON object with its input paths made absolute (they are relative to
 * the spec file, which the worker does not see) and its name filled in. The
 * socket's security comes from IGNIS_KEY and IGNIS_COORDINATOR_KEY
 * (ig_proto_client_open); a refused key is its own message, not a timeout. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#ifdef IG_HAVE_ZMQ
#include <zmq.h>
#endif

#include "ignis/job.h"
#include "launcher/commands.h"

const char *client_address(const char *given) {
    const char *env = getenv("IGNIS_COORDINATOR");
    return given ? given : env && *env ? env : CLIENT_DEFAULT_COORDINATOR;
}

int client_request(const char *addr, ig_msg_type type, const json_t *body, ig_msg_type want,
                   int timeout_ms, json_t **reply) {
    int rc = 1;
    *reply = NULL;
#ifndef IG_HAVE_ZMQ
    fprintf(stderr, "ignis: %s: this build of ignis has no ZeroMQ\n", addr);
    return rc;
#else
    ig_proto_client c;
    ig_proto_msg m = {0};
    void *ctx = zmq_ctx_new();
    ig_status st = ig_proto_client_open(ctx, addr, &c);
    if (!st) st = ig_proto_client_wait(&c, ZMQ_POLLOUT, timeout_ms);
    if (!st) st = ig_proto_send(c.sock, NULL, 0, type, body, 0);
    if (!st) st = ig_proto_client_wait(&c, ZMQ_POLLIN, timeout_ms);
    if (!st) st = ig_proto_recv(c.sock, false, 0, &m);
    if (st == IG_ERR_TIMEOUT)
        fprintf(stderr, "ignis: no answer from the coordinator at %s within %d s%s%s\n", addr,
                timeout_ms / 1000, c.failure[0] ? ": " : "", c.failure);
    else if (st)
        fprintf(stderr, "ignis: %s\n", ig_last_error());
    else if (m.type == IG_MSG_ERROR)
        fprintf(stderr, "ignis: %s\n", json_string_value(json_object_get(m.body, "message")));
    else if (m.type != want)
        fprintf(stderr, "ignis: the coordinator at %s answered %s to %s\n", addr, ig_msg_name(m.type),
                ig_msg_name(type));
    else {
        *reply = json_incref(m.body);
        rc = 0;
    }
    ig_proto_msg_clear(&m);
    ig_proto_client_close(&c);
    zmq_ctx_term(ctx);
    return rc;
#endif
}

/* A relative input path joined to dir (the spec file's absolute directory);
 * NULL when v is no relative path. */
static json_t *absolute(const json_t *v, const char *dir) {
    const char *p = json_string_value(v);
    if (!p || !*p || p[0] == '/') return NULL;
    char buf[2 * PATH_MAX];
    snprintf(buf, sizeof buf, "%s/%s", dir, p);
    return json_string(buf);
}

int client_load_spec(const char *path, json_t **out) {
    static ig_job_spec spec;
    *out = NULL;
    if (ig_job_spec_load(path, &spec)) {
        fprintf(stderr, "%s\n", ig_last_error());
        return 2;
    }
    const char *ext = strrchr(path, '.');
    if (ext && !strchr(ext, '/') && (!strcasecmp(ext, ".yaml") || !strcasecmp(ext, ".yml"))) {
        fprintf(stderr, "%s: YAML specs cannot be submitted yet; write the spec as JSON\n", path);
        return 2;
    }
    json_error_t e;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &e);
    char dir[PATH_MAX], resolved[PATH_MAX];
    const char *slash = strrchr(path, '/');
    snprintf(dir, sizeof dir, "%.*s", slash ? (slash == path ? 1 : (int)(slash - path)) : 1, slash ? path : ".");
    if (!root || !realpath(dir, resolved)) {
        fprintf(stderr, "%s: %s\n", path, root ? strerror(errno) : e.text);
        json_decref(root);
        return 2;
    }
    if (!json_object_get(root, "name")) json_object_set_new(root, "name", json_string(spec.name));
    static const char *const data_keys[] = {"train", "val", "train_labels", "val_labels"};
    json_t *data = json_object_get(root, "data"), *init = json_object_get(root, "init");
    for (size_t k = 0; k < sizeof data_keys / sizeof *data_keys; k++) {
        json_t *v = json_object_get(data, data_keys[k]), *item, *abs;
        size_t i;
        json_array_foreach(v, i, item) if ((abs = absolute(item, resolved))) json_array_set_new(v, i, abs);
        if ((abs = absolute(v, resolved))) json_object_set_new(data, data_keys[k], abs);
    }
    json_t *abs = absolute(json_object_get(init, "from"), resolved);
    if (abs) json_object_set_new(init, "from", abs);
    *out = root;
    return 0;
}

void client_print_job(FILE *f, const json_t *j) {
    const char *reason = json_string_value(json_object_get(j, "reason"));
    json_t *ranks = json_object_get(j, "ranks"), *step = json_object_get(j, "step"),
           *loss = json_object_get(j, "loss"), *tps = json_object_get(j, "tokens_per_s"),
           *ms = json_object_get(j, "step_ms"), *ckpt = json_object_get(j, "ckpt_step");
    fprintf(f, "job %" JSON_INTEGER_FORMAT "  %s  attempt %" JSON_INTEGER_FORMAT,
            json_integer_value(json_object_get(j, "job")), json_string_value(json_object_get(j, "state")),
            json_integer_value(json_object_get(j, "attempt")));
    if (reason && *reason) fprintf(f, " (%s)", reason);
    if (ranks) fprintf(f, "  %" JSON_INTEGER_FORMAT " ranks", json_integer_value(ranks));
    if (step) fprintf(f, "  step %" JSON_INTEGER_FORMAT, json_integer_value(step));
    if (loss) fprintf(f, "  loss %.4g", json_number_value(loss));
    if (tps) {
        double v = json_number_value(tps);
        if (v >= 1e6) fprintf(f, "  %.2fM tok/s", v / 1e6);
        else if (v >= 1e3) fprintf(f, "  %.1fk tok/s", v / 1e3);
        else fprintf(f, "  %.0f tok/s", v);
    }
    if (ms) fprintf(f, "  %.1f ms/step", json_number_value(ms));
    if (ckpt) fprintf(f, "  checkpoint %" JSON_INTEGER_FORMAT, json_integer_value(ckpt));
    fputc('\n', f);
}

enum { OPT_COORD = 256, OPT_RANKS, OPT_MIN, OPT_MAX, OPT_RESTARTS, OPT_JSON, OPT_STRATEGY };

int cmd_submit(int argc, char **argv) {
    static const struct option opts[] = {
        {"coordinator", required_argument, NULL, OPT_COORD}, {"ranks", required_argument, NULL, OPT_RANKS},
        {"min-ranks", required_argument, NULL, OPT_MIN},      {"max-ranks", required_argument, NULL, OPT_MAX},
        {"max-restarts", required_argument, NULL, OPT_RESTARTS}, {"strategy", required_argument, NULL, OPT_STRATEGY},
        {"help", no_argument, NULL, 'h'},                     {NULL, 0, NULL, 0}};
    static const char *const names[] = {"ranks", "min_ranks", "max_ranks", "max_restarts"};
    long long v[4] = {0, 0, 0, -1};
    const char *addr = NULL, *strategy = NULL;
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case OPT_COORD: addr = optarg; break;
        case OPT_STRATEGY: /* the coordinator says which it runs */
            if (!*optarg || strlen(optarg) > 32)
                return cmd_usage("submit", "--strategy: expected a name like ddp, got '%s'", optarg);
            strategy = optarg;
            break;
        case OPT_RANKS:
        case OPT_MIN:
        case OPT_MAX:
            if (!cmd_parse_int(optarg, 1, IG_PROTO_MAX_WORLD, &v[c - OPT_RANKS]))
                return cmd_usage("submit", "--%s: expected an integer in [1, %d], got '%s'",
                                 opts[c - OPT_RANKS + 1].name, IG_PROTO_MAX_WORLD, optarg);
            break;
        case OPT_RESTARTS:
            if (!cmd_parse_int(optarg, 0, 1000000, &v[3]))
                return cmd_usage("submit", "--max-restarts: expected an integer in [0, 1000000], got '%s'", optarg);
            break;
        case 'h': return fputs("usage: ignis submit JOB [options]\n" SUBMIT_HELP, stdout), 0;
        case ':': return cmd_usage("submit", "option '%s' needs a value", argv[optind - 1]);
        default: return cmd_usage("submit", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (argc - optind != 1) return cmd_usage("submit", "expected one JOB file, got %d arguments", argc - optind);
    if ((v[1] && v[0] && v[0] < v[1]) || (v[2] && v[0] && v[0] > v[2]) || (v[1] && v[2] && v[1] > v[2]))
        return cmd_usage("submit", "need --min-ranks <= --ranks <= --max-ranks");
    json_t *spec, *reply;
    int rc = client_load_spec(argv[optind], &spec);
    if (rc) return rc;
    json_t *body = json_pack("{s:o}", "spec", spec);
    for (int k = 0; k < 4; k++)
        if (v[k] > 0 || (k == 3 && v[k] >= 0)) json_object_set_new(body, names[k], json_integer(v[k]));
    if (strategy) json_object_set_new(body, "strategy", json_string(strategy));
    addr = client_address(addr);
    rc = client_request(addr, IG_MSG_SUBMIT, body, IG_MSG_SUBMIT_ACK, CLIENT_TIMEOUT_MS, &reply);
    if (!rc) printf("submitted job %" JSON_INTEGER_FORMAT "\n", json_integer_value(json_object_get(reply, "job")));
    json_decref(body);
    json_decref(reply);
    return rc;
}

/* status and cancel: [JOB] [--coordinator ADDR] (and --json for status). */
static int job_command(const char *who, int argc, char **argv, bool need_job, const char **addr,
                       long long *job, bool *as_json) {
    static const struct option opts[] = {{"coordinator", required_argument, NULL, OPT_COORD},
                                         {"json", no_argument, NULL, OPT_JSON},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int c;
    *addr = NULL;
    *job = -1;
    optind = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case OPT_COORD: *addr = optarg; break;
        case OPT_JSON:
            if (!as_json) return cmd_usage(who, "unknown option '--json'");
            *as_json = true;
            break;
        case 'h':
            printf("usage: ignis %s %s [options]\n%s", who, need_job ? "JOB" : "[JOB]",
                   need_job ? CANCEL_HELP : STATUS_HELP);
            return -1;
        case ':': return cmd_usage(who, "option '%s' needs a value", argv[optind - 1]);
        default: return cmd_usage(who, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (argc - optind > 1 || (need_job && argc - optind != 1))
        return cmd_usage(who, "expected %s JOB id, got %d arguments", need_job ? "one" : "at most one", argc - optind);
    if (argc - optind == 1 && !cmd_parse_int(argv[optind], 0, INT64_MAX, job))
        return cmd_usage(who, "JOB: expected a job id (an integer >= 0), got '%s'", argv[optind]);
    *addr = client_address(*addr);
    return 0;
}

int cmd_status(int argc, char **argv) {
    const char *addr;
    long long job;
    bool as_json = false;
    int rc = job_command("status", argc, argv, false, &addr, &job, &as_json);
    if (rc) return rc < 0 ? 0 : rc;
    json_t *body = job >= 0 ? json_pack("{s:I}", "job", (json_int_t)job) : json_object(), *reply;
    rc = client_request(addr, IG_MSG_STATUS, body, IG_MSG_STATUS_REPLY, CLIENT_TIMEOUT_MS, &reply);
    json_decref(body);
    if (rc) return rc;
    if (as_json) {
        json_dumpf(reply, stdout, JSON_INDENT(2));
        fputc('\n', stdout);
    } else {
        size_t i;
        json_t *j;
        json_array_foreach(json_object_get(reply, "jobs"), i, j) client_print_job(stdout, j);
        if (!json_array_size(json_object_get(reply, "jobs"))) puts("no jobs");
    }
    json_decref(reply);
    return 0;
}

int cmd_cancel(int argc, char **argv) {
    const char *addr;
    long long job;
    int rc = job_command("cancel", argc, argv, true, &addr, &job, NULL);
    if (rc) return rc < 0 ? 0 : rc;
    json_t *body = json_pack("{s:I}", "job", (json_int_t)job), *reply;
    rc = client_request(addr, IG_MSG_CANCEL, body, IG_MSG_OK, CLIENT_TIMEOUT_MS, &reply);
    if (!rc) printf("cancelled job %lld\n", job);
    json_decref(body);
    json_decref(reply);
    return rc;
}
