/* worker/job_spec.c: job specs (include/ignis/job.h). JSON (Jansson) and YAML
 * (libyaml, converted into the same json_t tree) meet one validator that walks
 * the tree section by section.
 *
 * Invariants: a spec either validates completely or the call fails with
 * IG_ERR_FORMAT (IG_ERR_IO when the file cannot be read) and a one-line
 * message "origin: dotted.field: what was expected, got what" ("origin:L:C:"
 * for syntax errors; "command line" for fields set by overrides). Every key is
 * known (unknown ones are errors, with the nearest known key suggested); null
 * means "the default". Input paths (data.*, init.from) are joined to the spec
 * file's directory; output paths (log.metrics, checkpoint.dir, output) are
 * kept as written, relative to the working directory. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <errno.h>
#include <jansson.h>
#include <yaml.h>

#include "core/impl.h"
#include "ignis/job.h"

#define TRY(x)                          \
    do {                                \
        ig_status try_ = (x);           \
        if (try_ != IG_OK) return try_; \
    } while (0)

enum { MAX_SPEC_BYTES = 16 << 20, MAX_DEPTH = 32, FIELD_MAX = 160 };

/* ---- YAML -> json_t ---- */

typedef struct yconv {
    yaml_parser_t parser;
    const char *origin;
    json_t *anchors; /* anchor name -> node, for aliases */
} yconv;

static ig_status ynext(yconv *y, yaml_event_t *ev) {
    if (yaml_parser_parse(&y->parser, ev)) return IG_OK;
    const yaml_parser_t *p = &y->parser;
    if (p->error == YAML_READER_ERROR)
        return ig__error(IG_ERR_FORMAT, "%s: YAML error at byte %zu: %s", y->origin,
                         p->problem_offset, p->problem ? p->problem : "unreadable input");
    return ig__error(IG_ERR_FORMAT, "%s:%zu:%zu: YAML syntax error: %s", y->origin,
                     p->problem_mark.line + 1, p->problem_mark.column + 1,
                     p->problem ? p->problem : "malformed input");
}

static bool is_one_of(const char *s, const char *const *words) {
    for (; *words; words++)
        if (!strcmp(s, *words)) return true;
    return false;
}

/* [-+]?(D+(.D*)?|.D+)([eE][-+]?D+)?, D a digit. */
static bool looks_real(const char *s) {
    s += *s == '-' || *s == '+';
    size_t whole = strspn(s, "0123456789"), frac = 0;
    s += whole;
    if (*s == '.') frac = strspn(++s, "0123456789"), s += frac;
    if (!whole && !frac) return false;
    if (*s == 'e' || *s == 'E') {
        s++;
        s += *s == '-' || *s == '+';
        size_t e = strspn(s, "0123456789");
        if (!e) return false;
        s += e;
    }
    return !*s;
}

/* A plain scalar by the YAML 1.1 rules (as PyYAML resolves them, except that
 * 1e-3 is a number): null, booleans, integers (decimal, 0x hex), reals, else a
 * string. Underscores are allowed between digits. */
static json_t *yplain(const char *s, size_t n) {
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL", NULL};
    static const char *const trues[] = {"true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON", NULL};
    static const char *const falses[] = {"false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF", NULL};
    if (is_one_of(s, nulls)) return json_null();
    if (is_one_of(s, trues)) return json_true();
    if (is_one_of(s, falses)) return json_false();
    char num[64];
    size_t k = 0;
    for (size_t i = 0; i < n && k < sizeof num - 1; i++)
        if (s[i] != '_' || i == 0) num[k++] = s[i];
    num[k] = 0;
    if (k < sizeof num - 1 && k == strspn(num, "0123456789abcdefABCDEFxX+-.")) {
        const char *d = num + (num[0] == '-' || num[0] == '+');
        char *end;
        errno = 0;
        bool hex = d[0] == '0' && (d[1] == 'x' || d[1] == 'X');
        long long v = strtoll(num, &end, hex ? 16 : 10);
        if (!*end && end != num && !errno && (hex || strspn(d, "0123456789") == strlen(d)))
            return json_integer(v);
        if (looks_real(num)) {
            double r = strtod(num, &end);
            if (isfinite(r)) return json_real(r);
        }
    }
    return json_stringn(s, n);
}

static ig_status ynode(yconv *y, yaml_event_t *ev, int depth, json_t **out);

/* Reads the items of a sequence or mapping whose start event was consumed. */
static ig_status ycollection(yconv *y, bool mapping, int depth, json_t *node) {
    for (;;) {
        yaml_event_t ev, val;
        TRY(ynext(y, &ev));
        if (ev.type == YAML_SEQUENCE_END_EVENT || ev.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&ev);
            return IG_OK;
        }
        json_t *item;
        if (!mapping) {
            TRY(ynode(y, &ev, depth + 1, &item));
            json_array_append_new(node, item);
            continue;
        }
        if (ev.type != YAML_SCALAR_EVENT) {
            ig_status st = ig__error(IG_ERR_FORMAT, "%s:%zu:%zu: a key must be a plain value",
                                     y->origin, ev.start_mark.line + 1, ev.start_mark.column + 1);
            yaml_event_delete(&ev);
            return st;
        }
        char key[256];
        snprintf(key, sizeof key, "%s", (const char *)ev.data.scalar.value);
        yaml_mark_t at = ev.start_mark;
        yaml_event_delete(&ev);
        if (json_object_get(node, key))
            return ig__error(IG_ERR_FORMAT, "%s:%zu:%zu: duplicate key '%s'", y->origin,
                             at.line + 1, at.column + 1, key);
        TRY(ynext(y, &val));
        TRY(ynode(y, &val, depth + 1, &item));
        json_object_set_new(node, key, item);
    }
}

/* Converts the node that starts with ev (consumed and deleted here). */
static ig_status ynode(yconv *y, yaml_event_t *ev, int depth, json_t **out) {
    ig_status st = IG_OK;
    const yaml_char_t *anchor = NULL;
    *out = NULL;
    if (depth > MAX_DEPTH) {
        st = ig__error(IG_ERR_FORMAT, "%s:%zu:%zu: nested deeper than %d levels", y->origin,
                       ev->start_mark.line + 1, ev->start_mark.column + 1, MAX_DEPTH);
    } else if (ev->type == YAML_ALIAS_EVENT) {
        json_t *target = json_object_get(y->anchors, (const char *)ev->data.alias.anchor);
        if (target) *out = json_deep_copy(target);
        else
            st = ig__error(IG_ERR_FORMAT, "%s:%zu:%zu: unknown alias '*%s'", y->origin,
                           ev->start_mark.line + 1, ev->start_mark.column + 1,
                           (const char *)ev->data.alias.anchor);
    } else if (ev->type == YAML_SCALAR_EVENT) {
        anchor = ev->data.scalar.anchor;
        const char *s = (const char *)ev->data.scalar.value;
        size_t n = ev->data.scalar.length;
        *out = ev->data.scalar.plain_implicit ? yplain(s, n) : json_stringn(s, n);
        if (!*out) st = ig__error(IG_ERR_FORMAT, "%s:%zu:%zu: not valid UTF-8", y->origin,
                                  ev->start_mark.line + 1, ev->start_mark.column + 1);
    } else {
        bool mapping = ev->type == YAML_MAPPING_START_EVENT;
        anchor = mapping ? ev->data.mapping_start.anchor : ev->data.sequence_start.anchor;
        *out = mapping ? json_object() : json_array();
        st = ycollection(y, mapping, depth, *out);
    }
    if (st == IG_OK && anchor) json_object_set(y->anchors, (const char *)anchor, *out);
    yaml_event_delete(ev);
    if (st != IG_OK) {
        json_decref(*out);
        *out = NULL;
    }
    return st;
}

/* One YAML document as a json_t (null when the text holds none). */
static ig_status yaml_to_json(const char *text, size_t len, const char *origin, json_t **out) {
    yconv y = {.origin = origin, .anchors = json_object()};
    yaml_parser_initialize(&y.parser);
    yaml_parser_set_input_string(&y.parser, (const unsigned char *)text, len);
    yaml_event_t ev;
    ig_status st;
    *out = NULL;
    while ((st = ynext(&y, &ev)) == IG_OK) {
        yaml_event_type_t t = ev.type;
        if (t == YAML_STREAM_END_EVENT || (*out && t == YAML_DOCUMENT_START_EVENT)) {
            if (t != YAML_STREAM_END_EVENT)
                st = ig__error(IG_ERR_FORMAT, "%s:%zu:%zu: only one YAML document is allowed",
                               origin, ev.start_mark.line + 1, ev.start_mark.column + 1);
            yaml_event_delete(&ev);
            break;
        }
        if (t == YAML_STREAM_START_EVENT || t == YAML_DOCUMENT_START_EVENT ||
            t == YAML_DOCUMENT_END_EVENT) {
            yaml_event_delete(&ev);
            continue;
        }
        if ((st = ynode(&y, &ev, 0, out)) != IG_OK) break;
    }
    yaml_parser_delete(&y.parser);
    json_decref(y.anchors);
    if (st != IG_OK) {
        json_decref(*out);
        *out = NULL;
    } else if (!*out) {
        *out = json_null();
    }
    return st;
}

/* ---- the validator ---- */

typedef struct vctx {
    const char *origin;
    json_t *cli;                /* dotted fields set from the command line */
    char base[IG_JOB_PATH_MAX]; /* directory of input paths ("" = as written) */
} vctx;

typedef struct sect {
    const vctx *c;
    const char *name; /* NULL: the top level */
    json_t *obj;      /* NULL when absent */
} sect;

static ig_status verr(const vctx *c, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static ig_status verr(const vctx *c, const char *field, const char *fmt, ...) {
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const char *who = json_object_get(c->cli, field) ? "command line" : c->origin;
    return ig__error(IG_ERR_FORMAT, "%s: %s: %s", who, field, msg);
}

/* The value as the message shows it ("an object", "-3", "\"gpu\""). */
static const char *shown(const json_t *v, char buf[static 64]) {
    if (json_is_object(v)) return "an object";
    if (json_is_array(v)) return "an array";
    char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_REAL_PRECISION(10));
    snprintf(buf, 64, "%s", s ? s : "?");
    if (s && strlen(s) >= 64) strcpy(buf + 60, "...");
    free(s);
    return buf;
}

static void dotted(char *field, const char *sec, const char *key) {
    snprintf(field, FIELD_MAX, sec ? "%s.%s" : "%s%s", sec ? sec : "", key);
}

/* The value of key in the section (NULL when absent or null). */
static json_t *value(const sect *s, const char *key, char *field) {
    dotted(field, s->name, key);
    json_t *v = s->obj ? json_object_get(s->obj, key) : NULL;
    return json_is_null(v) ? NULL : v;
}

static const char *const TOP_KEYS[] = {"name", "model", "init", "data", "train", "optimizer",
                                       "schedule", "eval", "log", "checkpoint", "output",
                                       "sample", "run", NULL};
static const char *const GPT_KEYS[] = {"type", "n_layer", "n_head", "n_embd", "block_size",
                                       "vocab_size", "dropout", NULL};
static const char *const MLP_KEYS[] = {"type", "in", "hidden", "layers", "classes", "dropout", NULL};
static const char *const CNN_KEYS[] = {"type", "channels", "height", "width_px", "width",
                                       "classes", NULL};
static const char *const INIT_KEYS[] = {"seed", "from", NULL};
static const char *const DATA_KEYS[] = {"format", "train", "val", "val_fraction", "train_labels",
                                        "val_labels", NULL};
static const char *const TRAIN_KEYS[] = {"batch_size", "seq_len", "steps", "grad_accum",
                                         "grad_clip", "precision", "device", NULL};
static const char *const OPTIM_KEYS[] = {"name", "lr", "weight_decay", "betas", "eps",
                                         "momentum", "dampening", "nesterov", "decay_all", NULL};
static const char *const SCHED_KEYS[] = {"name", "warmup", "min_lr", NULL};
static const char *const EVAL_KEYS[] = {"interval", "batches", NULL};
static const char *const LOG_KEYS[] = {"interval", "metrics", NULL};
static const char *const CKPT_KEYS[] = {"dir", "interval", "keep", NULL};
static const char *const SAMPLE_KEYS[] = {"tokens", "prompt", "temperature", "top_k", NULL};
static const char *const RUN_KEYS[] = {"ranks", "min_ranks", "max_ranks", "max_restarts", "strategy", NULL};

static const char *const *const MODEL_KEYS[IG_MODEL_KIND_COUNT] = {GPT_KEYS, MLP_KEYS, CNN_KEYS};
static const char *const MODEL_TYPES[] = {"gpt", "mlp", "cnn", NULL};
static const char *const DATA_FORMATS[] = {"text", "shards", "mnist", NULL};
static const char *const OPTIMIZERS[] = {"sgd", "adam", "adamw", NULL};
static const char *const SCHEDULES[] = {"constant", "cosine", "linear", NULL};
static const char *const PRECISIONS[] = {"fp32", "bf16", NULL};
static const char *const STRATEGIES[] = {"ddp", NULL};

static const struct {
    const char *name;
    const char *const *keys;
} SECTIONS[] = {{NULL, TOP_KEYS},          {"model", GPT_KEYS},     {"model", MLP_KEYS},
                {"model", CNN_KEYS},       {"init", INIT_KEYS},     {"data", DATA_KEYS},
                {"train", TRAIN_KEYS},     {"optimizer", OPTIM_KEYS}, {"schedule", SCHED_KEYS},
                {"eval", EVAL_KEYS},       {"log", LOG_KEYS},       {"checkpoint", CKPT_KEYS},
                {"sample", SAMPLE_KEYS},   {"run", RUN_KEYS}};

/* Optimal string alignment distance (an adjacent swap costs 1). */
static int edit_distance(const char *a, const char *b) {
    size_t n = strlen(a), m = strlen(b);
    if (n > 63 || m > 63) return INT_MAX;
    int d[64][64];
    for (size_t i = 0; i <= n; i++) d[i][0] = (int)i;
    for (size_t j = 0; j <= m; j++) d[0][j] = (int)j;
    for (size_t i = 1; i <= n; i++)
        for (size_t j = 1; j <= m; j++) {
            int best = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            if (d[i - 1][j] + 1 < best) best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best) best = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    return d[n][m];
}

/* Every key of obj must be in keys; otherwise an error that suggests the
 * nearest key of the section (edit distance <= 2) or the section that has it. */
static ig_status check_keys(const vctx *c, json_t *obj, const char *sec, const char *const *keys,
                            const char *why) {
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v) {
        if (is_one_of(key, keys)) continue;
        char field[FIELD_MAX];
        dotted(field, sec, key);
        const char *best = NULL;
        int best_d = 3;
        for (const char *const *k = keys; *k; k++) {
            int d = edit_distance(key, *k);
            if (d < best_d) best = *k, best_d = d;
        }
        if (best) return verr(c, field, "unknown key%s (did you mean %s?)", why, best);
        for (size_t i = 0; i < sizeof SECTIONS / sizeof *SECTIONS; i++) {
            const char *other = SECTIONS[i].name;
            if ((other && sec && !strcmp(other, sec)) || (!other && !sec)) continue;
            if (is_one_of(key, SECTIONS[i].keys))
                return verr(c, field, "unknown key%s (did you mean %s%s%s?)", why,
                            other ? other : "", other ? "." : "", key);
        }
        return verr(c, field, "unknown key%s", why);
    }
    return IG_OK;
}

/* The section `name` of the top level, its keys checked when keys is set. */
static ig_status section(const vctx *c, json_t *root, const char *name, const char *const *keys,
                         sect *s) {
    *s = (sect){c, name, json_object_get(root, name)};
    if (json_is_null(s->obj)) s->obj = NULL;
    char got[64];
    if (s->obj && !json_is_object(s->obj))
        return verr(c, name, "expected a section (an object of fields), got %s", shown(s->obj, got));
    return s->obj && keys ? check_keys(c, s->obj, name, keys, "") : IG_OK;
}

static ig_status get_i64(const sect *s, const char *key, int64_t lo, int64_t hi, int64_t *out) {
    char field[FIELD_MAX], want[96], got[64];
    json_t *v = value(s, key, field);
    if (!v) return IG_OK;
    double r = json_real_value(v); /* an integral real (2e3) counts as an integer */
    bool integral = json_is_integer(v) || (json_is_real(v) && r == floor(r) && fabs(r) < 0x1p53);
    json_int_t x = json_is_integer(v) ? json_integer_value(v) : (json_int_t)r;
    if (integral && x >= lo && x <= hi) {
        *out = x;
        return IG_OK;
    }
    if (lo == 1 && hi >= INT_MAX) snprintf(want, sizeof want, "a positive integer");
    else if (hi >= INT_MAX) snprintf(want, sizeof want, "an integer >= %lld", (long long)lo);
    else snprintf(want, sizeof want, "an integer in [%lld, %lld]", (long long)lo, (long long)hi);
    return verr(s->c, field, "expected %s, got %s", want, shown(v, got));
}

static ig_status get_int(const sect *s, const char *key, int lo, int *out) {
    int64_t x = *out;
    TRY(get_i64(s, key, lo, INT_MAX, &x));
    *out = (int)x;
    return IG_OK;
}

/* A number in the interval from lo to hi (open ends where said; hi may be inf). */
static ig_status real_of(const vctx *c, const char *field, json_t *v, double lo, bool lo_open,
                         double hi, bool hi_open, double *out) {
    char want[96], got[64];
    double x = json_number_value(v);
    if (json_is_number(v) && (lo_open ? x > lo : x >= lo) && (hi_open ? x < hi : x <= hi)) {
        *out = x;
        return IG_OK;
    }
    if (isinf(hi)) snprintf(want, sizeof want, "a number %s %g", lo_open ? ">" : ">=", lo);
    else snprintf(want, sizeof want, "a number in %c%g, %g%c", lo_open ? '(' : '[', lo, hi,
                  hi_open ? ')' : ']');
    return verr(c, field, "expected %s, got %s", want, shown(v, got));
}

static ig_status get_real(const sect *s, const char *key, double lo, bool lo_open, double hi,
                          bool hi_open, double *out) {
    char field[FIELD_MAX];
    json_t *v = value(s, key, field);
    return v ? real_of(s->c, field, v, lo, lo_open, hi, hi_open, out) : IG_OK;
}

static ig_status get_bool(const sect *s, const char *key, bool *out) {
    char field[FIELD_MAX], got[64];
    json_t *v = value(s, key, field);
    if (!v) return IG_OK;
    if (!json_is_boolean(v)) return verr(s->c, field, "expected true or false, got %s", shown(v, got));
    *out = json_is_true(v);
    return IG_OK;
}

static ig_status get_str(const sect *s, const char *key, char *out, size_t cap) {
    char field[FIELD_MAX], got[64];
    json_t *v = value(s, key, field);
    if (!v) return IG_OK;
    if (!json_is_string(v) || json_string_length(v) >= cap)
        return verr(s->c, field, "expected a string of at most %zu bytes, got %s", cap - 1,
                    shown(v, got));
    memcpy(out, json_string_value(v), json_string_length(v) + 1);
    return IG_OK;
}

/* One of names (NULL-terminated); out is its index. */
static ig_status get_choice(const sect *s, const char *key, const char *const *names, int *out) {
    char field[FIELD_MAX], want[128] = "", got[64];
    json_t *v = value(s, key, field);
    if (!v) return IG_OK;
    for (int i = 0; names[i]; i++) {
        if (json_is_string(v) && !strcmp(json_string_value(v), names[i])) {
            *out = i;
            return IG_OK;
        }
        snprintf(want + strlen(want), sizeof want - strlen(want), "%s%s", i ? ", " : "", names[i]);
    }
    return verr(s->c, field, "expected one of %s, got %s", want, shown(v, got));
}

/* A path; input paths are joined to the spec's directory. */
static ig_status path_of(const vctx *c, const char *field, json_t *v, bool input,
                         bool allow_empty, char *out) {
    char got[64];
    if (!json_is_string(v) || (!allow_empty && !json_string_length(v)))
        return verr(c, field, "expected a path (a non-empty string), got %s", shown(v, got));
    const char *p = json_string_value(v);
    size_t nb = strlen(c->base);
    int n = input && nb && p[0] && p[0] != '/'
                ? snprintf(out, IG_JOB_PATH_MAX, "%s%s%s", c->base, c->base[nb - 1] == '/' ? "" : "/", p)
                : snprintf(out, IG_JOB_PATH_MAX, "%s", p);
    if (n >= IG_JOB_PATH_MAX)
        return verr(c, field, "expected a path of at most %d bytes", IG_JOB_PATH_MAX - 1);
    return IG_OK;
}

static ig_status get_path(const sect *s, const char *key, bool input, char *out) {
    char field[FIELD_MAX];
    json_t *v = value(s, key, field);
    return v ? path_of(s->c, field, v, input, true, out) : IG_OK;
}

/* A path or a list of paths (input paths). */
static ig_status get_paths(const sect *s, const char *key, char (*out)[IG_JOB_PATH_MAX], int *n) {
    char field[FIELD_MAX], item[FIELD_MAX + 24], got[64];
    json_t *v = value(s, key, field);
    if (!v) return IG_OK;
    if (json_is_string(v)) {
        *n = 1;
        return path_of(s->c, field, v, true, false, out[0]);
    }
    if (!json_is_array(v) || json_array_size(v) > IG_JOB_MAX_FILES)
        return verr(s->c, field, "expected a path or a list of at most %d paths, got %s",
                    IG_JOB_MAX_FILES, shown(v, got));
    size_t i;
    json_t *p;
    json_array_foreach(v, i, p) {
        snprintf(item, sizeof item, "%s[%zu]", field, i);
        TRY(path_of(s->c, item, p, true, false, out[i]));
    }
    *n = (int)json_array_size(v);
    return IG_OK;
}

static bool device_ok(const char *d) {
    if (!strcmp(d, "cpu") || !strcmp(d, "cuda")) return true;
    size_t n = strspn(d + 5, "0123456789");
    return !strncmp(d, "cuda:", 5) && n > 0 && n <= 4 && !d[5 + n] && atoi(d + 5) < 1024;
}

static ig_status check_model(const vctx *c, json_t *root, ig_job_spec *spec) {
    sect s;
    TRY(section(c, root, "model", NULL, &s));
    int type = spec->model;
    TRY(get_choice(&s, "type", MODEL_TYPES, &type));
    spec->model = (ig_model_kind)type;
    char why[48];
    snprintf(why, sizeof why, " for model type %s", MODEL_TYPES[type]);
    if (s.obj) TRY(check_keys(c, s.obj, "model", MODEL_KEYS[type], why));
    if (spec->model == IG_MODEL_GPT) {
        ig_gpt_config *g = &spec->gpt;
        TRY(get_int(&s, "n_layer", 1, &g->n_layer));
        TRY(get_int(&s, "n_head", 1, &g->n_head));
        TRY(get_int(&s, "n_embd", 1, &g->n_embd));
        TRY(get_int(&s, "block_size", 1, &g->block_size));
        TRY(get_int(&s, "vocab_size", 1, &g->vocab_size));
        TRY(get_real(&s, "dropout", 0, false, 1, true, &g->dropout));
        if (g->n_embd % g->n_head)
            return verr(c, "model.n_embd", "expected a multiple of model.n_head (%d), got %d",
                        g->n_head, g->n_embd);
        spec->seq_len = g->block_size;
    } else if (spec->model == IG_MODEL_MLP) {
        ig_mlp_config *m = &spec->mlp;
        TRY(get_int(&s, "in", 1, &m->in));
        TRY(get_int(&s, "hidden", 1, &m->hidden));
        TRY(get_int(&s, "layers", 1, &m->n_hidden_layers));
        TRY(get_int(&s, "classes", 1, &m->classes));
        TRY(get_real(&s, "dropout", 0, false, 1, true, &m->dropout));
    } else {
        ig_cnn_config *m = &spec->cnn;
        TRY(get_int(&s, "channels", 1, &m->channels));
        TRY(get_int(&s, "height", 1, &m->height));
        TRY(get_int(&s, "width_px", 1, &m->width_px));
        TRY(get_int(&s, "width", 1, &m->width));
        TRY(get_int(&s, "classes", 1, &m->classes));
    }
    return IG_OK;
}

static ig_status check_data(const vctx *c, json_t *root, ig_job_spec *spec) {
    sect s;
    TRY(section(c, root, "data", DATA_KEYS, &s));
    int format = spec->data_format;
    TRY(get_choice(&s, "format", DATA_FORMATS, &format));
    spec->data_format = (ig_data_format)format;
    TRY(get_paths(&s, "train", spec->train, &spec->n_train));
    TRY(get_paths(&s, "val", spec->val, &spec->n_val));
    TRY(get_real(&s, "val_fraction", 0, false, 1, true, &spec->val_fraction));
    TRY(get_path(&s, "train_labels", true, spec->train_labels));
    TRY(get_path(&s, "val_labels", true, spec->val_labels));
    if (!spec->n_train) return verr(c, "data.train", "required: a path or a list of paths");
    bool mnist = spec->data_format == IG_DATA_MNIST;
    if (mnist != (spec->model != IG_MODEL_GPT))
        return verr(c, "data.format", "model type %s trains on %s data, got \"%s\"",
                    MODEL_TYPES[spec->model], mnist ? "text or shards" : "mnist",
                    DATA_FORMATS[format]);
    if (format == IG_DATA_SHARDS && (spec->n_train != 1 || spec->n_val > 1))
        return verr(c, spec->n_train != 1 ? "data.train" : "data.val",
                    "format shards takes one path or glob");
    if (!mnist) {
        if (spec->train_labels[0] || spec->val_labels[0])
            return verr(c, spec->train_labels[0] ? "data.train_labels" : "data.val_labels",
                        "only for format mnist");
        if (format == IG_DATA_TEXT && spec->gpt.vocab_size < 256)
            return verr(c, "model.vocab_size", "format text has 256 byte tokens: expected "
                        "at least 256, got %d", spec->gpt.vocab_size);
        return IG_OK;
    }
    if (spec->n_train != 1 || spec->n_val > 1)
        return verr(c, spec->n_train != 1 ? "data.train" : "data.val",
                    "format mnist takes one idx images file");
    if (!spec->train_labels[0])
        return verr(c, "data.train_labels", "required for format mnist (the idx labels file)");
    if (spec->n_val && !spec->val_labels[0])
        return verr(c, "data.val_labels", "required for format mnist when data.val is given");
    return IG_OK;
}

static ig_status check_train(const vctx *c, json_t *root, ig_job_spec *spec) {
    sect s;
    TRY(section(c, root, "train", TRAIN_KEYS, &s));
    TRY(get_int(&s, "batch_size", 1, &spec->batch_size));
    TRY(get_int(&s, "seq_len", 1, &spec->seq_len));
    TRY(get_i64(&s, "steps", 1, INT64_MAX, &spec->steps));
    TRY(get_int(&s, "grad_accum", 1, &spec->grad_accum));
    TRY(get_real(&s, "grad_clip", 0, false, INFINITY, false, &spec->grad_clip));
    int prec = strcmp(spec->precision, "fp32") != 0;
    TRY(get_choice(&s, "precision", PRECISIONS, &prec));
    strcpy(spec->precision, PRECISIONS[prec]);
    TRY(get_str(&s, "device", spec->device, sizeof spec->device));
    if (!device_ok(spec->device))
        return verr(c, "train.device", "expected cpu, cuda or cuda:N, got \"%s\"", spec->device);
    if (spec->model == IG_MODEL_GPT && spec->seq_len > spec->gpt.block_size)
        return verr(c, "train.seq_len", "expected at most model.block_size (%d), got %d",
                    spec->gpt.block_size, spec->seq_len);
    return IG_OK;
}

static ig_status check_optim(const vctx *c, json_t *root, ig_job_spec *spec) {
    sect s;
    ig_optim_config *o = &spec->optim;
    TRY(section(c, root, "optimizer", OPTIM_KEYS, &s));
    int kind = o->kind;
    TRY(get_choice(&s, "name", OPTIMIZERS, &kind));
    o->kind = (ig_optim_kind)kind;
    o->weight_decay = o->kind == IG_OPTIM_ADAMW ? 0.1 : 0.0;
    TRY(get_real(&s, "lr", 0, true, INFINITY, false, &o->lr));
    TRY(get_real(&s, "weight_decay", 0, false, INFINITY, false, &o->weight_decay));
    TRY(get_real(&s, "eps", 0, true, INFINITY, false, &o->eps));
    TRY(get_real(&s, "momentum", 0, false, INFINITY, false, &o->momentum));
    TRY(get_real(&s, "dampening", 0, false, 1, false, &o->dampening));
    TRY(get_bool(&s, "nesterov", &o->nesterov));
    TRY(get_bool(&s, "decay_all", &o->decay_all));
    char field[FIELD_MAX], got[64];
    json_t *betas = value(&s, "betas", field);
    if (betas) {
        if (json_array_size(betas) != 2)
            return verr(c, field, "expected two numbers [beta1, beta2], got %s", shown(betas, got));
        TRY(real_of(c, "optimizer.betas[0]", json_array_get(betas, 0), 0, false, 1, true, &o->beta1));
        TRY(real_of(c, "optimizer.betas[1]", json_array_get(betas, 1), 0, false, 1, true, &o->beta2));
    }
    if (o->nesterov && (o->kind != IG_OPTIM_SGD || o->momentum <= 0 || o->dampening != 0))
        return verr(c, "optimizer.nesterov", "needs optimizer sgd with momentum > 0 and dampening 0");
    return IG_OK;
}

/* run.*: the orchestrator's part; min_ranks <= ranks <= max_ranks where given. */
static ig_status check_run(const vctx *c, json_t *root, ig_job_spec *spec) {
    sect s;
    int64_t r[3] = {0, 0, 0};
    const char *names[3] = {"ranks", "min_ranks", "max_ranks"};
    TRY(section(c, root, "run", RUN_KEYS, &s));
    for (int k = 0; k < 3; k++) TRY(get_i64(&s, names[k], 1, IG_JOB_MAX_RANKS, &r[k]));
    int64_t restarts = spec->run_max_restarts;
    TRY(get_i64(&s, "max_restarts", 0, 1000000, &restarts));
    int strategy = 0;
    TRY(get_choice(&s, "strategy", STRATEGIES, &strategy));
    if ((r[1] && r[0] && r[1] > r[0]) || (r[2] && r[0] && r[0] > r[2]) || (r[1] && r[2] && r[1] > r[2]))
        return verr(c, "run", "expected min_ranks <= ranks <= max_ranks, got %lld, %lld, %lld (0: not given)",
                    (long long)r[1], (long long)r[0], (long long)r[2]);
    spec->run_ranks = (int)r[0], spec->run_min_ranks = (int)r[1], spec->run_max_ranks = (int)r[2];
    spec->run_max_restarts = (int)restarts;
    snprintf(spec->run_strategy, sizeof spec->run_strategy, "%s", STRATEGIES[strategy]);
    return IG_OK;
}

static ig_status check_rest(const vctx *c, json_t *root, ig_job_spec *spec) {
    sect s;
    ig_lr_schedule *l = &spec->schedule;
    TRY(section(c, root, "schedule", SCHED_KEYS, &s));
    int kind = l->kind;
    TRY(get_choice(&s, "name", SCHEDULES, &kind));
    l->kind = (ig_lr_kind)kind;
    l->lr = spec->optim.lr;
    l->total = spec->steps;
    l->min_lr = l->lr / 10;
    TRY(get_i64(&s, "warmup", 0, INT64_MAX, &l->warmup));
    if (l->warmup > spec->steps)
        return verr(c, "schedule.warmup", "expected at most train.steps (%lld), got %lld",
                    (long long)spec->steps, (long long)l->warmup);
    TRY(get_real(&s, "min_lr", 0, false, l->lr, false, &l->min_lr));

    TRY(section(c, root, "eval", EVAL_KEYS, &s));
    TRY(get_i64(&s, "interval", 0, INT64_MAX, &spec->eval_interval));
    TRY(get_int(&s, "batches", 1, &spec->eval_batches));
    TRY(section(c, root, "log", LOG_KEYS, &s));
    TRY(get_i64(&s, "interval", 1, INT64_MAX, &spec->log_interval));
    TRY(get_path(&s, "metrics", false, spec->metrics));
    TRY(section(c, root, "checkpoint", CKPT_KEYS, &s));
    TRY(get_path(&s, "dir", false, spec->ckpt_dir));
    TRY(get_i64(&s, "interval", 0, INT64_MAX, &spec->ckpt_interval));
    TRY(get_int(&s, "keep", 1, &spec->ckpt_keep));
    sect top = {c, NULL, root};
    TRY(get_path(&top, "output", false, spec->output));

    TRY(section(c, root, "sample", SAMPLE_KEYS, &s));
    TRY(get_int(&s, "tokens", 0, &spec->sample_tokens));
    TRY(get_str(&s, "prompt", spec->sample_prompt, sizeof spec->sample_prompt));
    TRY(get_real(&s, "temperature", 0, false, INFINITY, false, &spec->sample_temperature));
    TRY(get_int(&s, "top_k", 0, &spec->sample_top_k));
    if (spec->sample_tokens && spec->model != IG_MODEL_GPT)
        return verr(c, "sample.tokens", "only for model type gpt");
    return check_run(c, root, spec);
}

static ig_status validate(const vctx *c, json_t *root, ig_job_spec *spec) {
    char got[64];
    if (!json_is_object(root))
        return ig__error(IG_ERR_FORMAT, "%s: expected an object of sections at the top level, got %s",
                         c->origin, shown(root, got));
    TRY(check_keys(c, root, NULL, TOP_KEYS, ""));
    sect top = {c, NULL, root}, init;
    TRY(get_str(&top, "name", spec->name, sizeof spec->name));
    TRY(check_model(c, root, spec));
    TRY(section(c, root, "init", INIT_KEYS, &init));
    int64_t seed = (int64_t)spec->seed;
    TRY(get_i64(&init, "seed", 0, INT64_MAX, &seed));
    spec->seed = (uint64_t)seed;
    TRY(get_path(&init, "from", true, spec->init_from));
    TRY(check_data(c, root, spec));
    TRY(check_train(c, root, spec));
    TRY(check_optim(c, root, spec));
    return check_rest(c, root, spec);
}

/* ---- entry points ---- */

void ig_job_spec_init(ig_job_spec *spec) {
    memset(spec, 0, sizeof *spec);
    strcpy(spec->name, "job");
    spec->model = IG_MODEL_GPT;
    spec->gpt.n_layer = 4, spec->gpt.n_head = 4, spec->gpt.n_embd = 128;
    spec->gpt.block_size = 128, spec->gpt.vocab_size = 256, spec->gpt.dropout = 0.0;
    spec->mlp.in = 784, spec->mlp.hidden = 128, spec->mlp.n_hidden_layers = 1;
    spec->mlp.classes = 10, spec->mlp.dropout = 0.0;
    spec->cnn.channels = 1, spec->cnn.height = 28, spec->cnn.width_px = 28;
    spec->cnn.width = 16, spec->cnn.classes = 10;
    spec->seed = 1337;
    spec->run_max_restarts = -1;
    strcpy(spec->run_strategy, "ddp");
    spec->data_format = IG_DATA_TEXT;
    spec->val_fraction = 0.1;
    spec->batch_size = 16, spec->seq_len = 128, spec->steps = 1000, spec->grad_accum = 1;
    spec->grad_clip = 1.0;
    strcpy(spec->precision, "fp32");
    strcpy(spec->device, "cpu");
    ig_optim_config *o = &spec->optim;
    o->kind = IG_OPTIM_ADAMW, o->lr = 1e-3, o->weight_decay = 0.1;
    o->beta1 = 0.9, o->beta2 = 0.95, o->eps = 1e-8;
    ig_lr_schedule *l = &spec->schedule;
    l->kind = IG_LR_COSINE, l->lr = 1e-3, l->warmup = 0, l->total = 1000, l->min_lr = 1e-4;
    spec->eval_batches = 20;
    spec->log_interval = 10;
    spec->ckpt_keep = 2;
    strcpy(spec->sample_prompt, "\n");
    spec->sample_temperature = 0.8;
    spec->sample_top_k = 40;
}

/* Sets "a.b.c=value" (value read as YAML) in the tree. */
static ig_status apply_override(json_t *root, const char *ov, json_t *cli) {
    const char *eq = strchr(ov, '=');
    char field[FIELD_MAX];
    if (!eq || eq == ov || (size_t)(eq - ov) >= sizeof field)
        return ig__error(IG_ERR_FORMAT, "command line: \"%s\": expected FIELD=VALUE", ov);
    memcpy(field, ov, (size_t)(eq - ov));
    field[eq - ov] = 0;
    json_t *v;
    TRY(yaml_to_json(eq + 1, strlen(eq + 1), "command line", &v));
    json_object_set_new(cli, field, json_true());
    json_t *obj = root;
    char *key = field;
    for (char *dot; (dot = strchr(key, '.')); key = dot + 1) {
        *dot = 0;
        json_t *next = json_object_get(obj, key);
        if (!json_is_object(next)) {
            if (next && !json_is_null(next)) {
                json_decref(v);
                return ig__error(IG_ERR_FORMAT, "command line: %s: not a section", field);
            }
            json_object_set_new(obj, key, next = json_object());
        }
        obj = next;
        *dot = '.';
    }
    json_object_set_new(obj, key, v);
    return IG_OK;
}

static ig_status build(const char *text, size_t len, const char *origin, bool yaml,
                       const char *base, const char *const *overrides, int n_overrides,
                       ig_job_spec *spec) {
    ig_job_spec_init(spec);
    snprintf(spec->path, sizeof spec->path, "%s", origin);
    const char *stem = strrchr(origin, '/') ? strrchr(origin, '/') + 1 : origin;
    const char *ext = strrchr(stem, '.');
    if (stem[0] && ext != stem)
        snprintf(spec->name, sizeof spec->name, "%.*s", ext ? (int)(ext - stem) : 127, stem);

    json_t *root = NULL;
    ig_status st = IG_OK;
    if (yaml) {
        st = yaml_to_json(text, len, origin, &root);
    } else {
        json_error_t e;
        root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &e);
        if (!root)
            st = ig__error(IG_ERR_FORMAT, "%s:%d:%d: JSON syntax error: %s", origin, e.line,
                           e.column, e.text);
    }
    vctx c = {.origin = origin, .cli = json_object()};
    snprintf(c.base, sizeof c.base, "%s", base);
    if (!st && n_overrides && json_is_null(root)) {
        json_decref(root);
        root = json_object();
    }
    for (int i = 0; !st && json_is_object(root) && i < n_overrides; i++) st = apply_override(root, overrides[i], c.cli);
    if (!st) st = validate(&c, root, spec);
    json_decref(root);
    json_decref(c.cli);
    return st;
}

ig_status ig_job_spec_parse(const char *text, size_t len, const char *origin, bool yaml,
                            ig_job_spec *spec) {
    return build(text, len, origin, yaml, "", NULL, 0, spec);
}

ig_status ig_job_spec_load_with(const char *path, const char *const *overrides, int n_overrides,
                                ig_job_spec *spec) {
    FILE *f = fopen(path, "rb");
    if (!f) return ig__error(IG_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    char *text = malloc(MAX_SPEC_BYTES + 1);
    if (!text) {
        fclose(f);
        return ig__error(IG_ERR_NOMEM, "%s: out of memory", path);
    }
    size_t len = fread(text, 1, MAX_SPEC_BYTES + 1, f);
    int read_errno = ferror(f) ? errno : 0;
    fclose(f);
    ig_status st = IG_OK;
    if (read_errno) st = ig__error(IG_ERR_IO, "%s: cannot read: %s", path, strerror(read_errno));
    else if (len > MAX_SPEC_BYTES)
        st = ig__error(IG_ERR_FORMAT, "%s: larger than %d bytes", path, MAX_SPEC_BYTES);
    if (!st) {
        const char *ext = strrchr(path, '.');
        bool yaml = ext && !strchr(ext, '/') && (!strcasecmp(ext, ".yaml") || !strcasecmp(ext, ".yml"));
        char base[IG_JOB_PATH_MAX] = "";
        const char *slash = strrchr(path, '/');
        if (slash) snprintf(base, sizeof base, "%.*s", slash == path ? 1 : (int)(slash - path), path);
        st = build(text, len, path, yaml, base, overrides, n_overrides, spec);
    }
    free(text);
    return st;
}

ig_status ig_job_spec_load(const char *path, ig_job_spec *spec) {
    return ig_job_spec_load_with(path, NULL, 0, spec);
}
