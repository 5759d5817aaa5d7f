/* worker/train_data.c: the trainer's batches. A GPT reads token windows
 * through ig_loader (text files concatenated at byte level, or llm.c shards);
 * a classifier reads MNIST idx files and walks a per-epoch permutation of the
 * examples drawn from (seed, epoch). Validation is a held-out tail of the
 * training data unless the spec names validation files; it is read in order,
 * the same batches at every evaluation. */
#include <errno.h>
#include <glob.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "worker/trainer_impl.h"

/* ---- token streams ---- */

/* Reads every file matched by the patterns into one byte stream. */
static ig_status read_text(const char (*pats)[IG_JOB_PATH_MAX], int n, ig_tokens **out) {
    uint16_t *buf = NULL;
    int64_t len = 0, cap = 0;
    ig_status st = IG_OK;
    for (int i = 0; i < n && st == IG_OK; i++) {
        glob_t g;
        if (glob(pats[i], GLOB_NOCHECK, NULL, &g) != 0) {
            st = ig_set_error(IG_ERR_IO, "%s: no such file", pats[i]);
            break;
        }
        for (size_t k = 0; k < g.gl_pathc && st == IG_OK; k++) {
            FILE *f = fopen(g.gl_pathv[k], "rb");
            if (!f) {
                st = ig_set_error(IG_ERR_IO, "%s: cannot open: %s", g.gl_pathv[k], strerror(errno));
                break;
            }
            unsigned char chunk[65536];
            size_t got;
            while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) {
                if (len + (int64_t)got > cap) {
                    cap = (len + (int64_t)got) * 2;
                    uint16_t *nb = realloc(buf, sizeof *buf * (size_t)cap);
                    if (!nb) {
                        st = ig_set_error(IG_ERR_NOMEM, "out of memory reading %s", g.gl_pathv[k]);
                        break;
                    }
                    buf = nb;
                }
                for (size_t j = 0; j < got; j++) buf[len++] = chunk[j];
            }
            fclose(f);
        }
        globfree(&g);
    }
    if (st == IG_OK && len == 0) st = ig_set_error(IG_ERR_FORMAT, "%s: no text", pats[0]);
    if (st == IG_OK) *out = ig_tokens_from_array(buf, len);
    free(buf);
    return st;
}

static ig_status open_tokens(const ig_job_spec *spec, const char (*pats)[IG_JOB_PATH_MAX], int n,
                             ig_tokens **out) {
    if (spec->data_format == IG_DATA_TEXT) return read_text(pats, n, out);
    if (n != 1)
        return ig_set_error(IG_ERR_INVALID, "%s: data: shards take one path or glob, got %d",
                               spec->path, n);
    return ig_tokens_open_shards(pats[0], out);
}

static ig_status open_token_data(train_data *d, const ig_job_spec *spec) {
    ig_status st = open_tokens(spec, spec->train, spec->n_train, &d->train_tokens);
    if (st != IG_OK) return st;
    int64_t n = ig_tokens_count(d->train_tokens), split = n;
    ig_loader_config val = IG_LOADER_CONFIG_INIT;
    val.batch = spec->batch_size;
    val.seq_len = spec->seq_len;
    val.shuffle = false;
    if (spec->n_val > 0) {
        st = open_tokens(spec, spec->val, spec->n_val, &d->val_tokens);
        if (st != IG_OK) return st;
    } else if (spec->val_fraction > 0) {
        split = (int64_t)((double)n * (1.0 - spec->val_fraction));
        d->val_tokens = d->train_tokens;
        val.begin = split;
        val.end = n;
    }
    d->val_cfg = val;
    ig_loader_config tr = IG_LOADER_CONFIG_INIT;
    tr.batch = d->batch;
    tr.seq_len = spec->seq_len;
    tr.begin = 0;
    tr.end = split;
    tr.shuffle = true;
    tr.seed = spec->seed;
    tr.rank = d->rank;
    tr.world = d->world;
    return ig_loader_new(d->train_tokens, &tr, &d->train_loader);
}

/* ---- classification ---- */

typedef struct keyed {
    float key;
    int64_t index;
} keyed;

static int by_key(const void *a, const void *b) {
    const keyed *x = a, *y = b;
    return x->key < y->key ? -1 : x->key > y->key ? 1 : (x->index > y->index) - (x->index < y->index);
}

/* The order of epoch e: examples sorted by Philox uniforms from (seed, e). */
static ig_status permute(train_data *d, int64_t e) {
    int64_t n = ig_tensor_size(d->images, 0);
    ig_generator g = {d->seed ^ 0x9e3779b97f4a7c15ull, (uint64_t)e * (uint64_t)n};
    ig_scope *s = ig_scope_begin();
    ig_tensor *u = ig_rand(IG_SHAPE(n), IG_F32, IG_CPU, &g);
    keyed *k = u ? malloc(sizeof *k * (size_t)n) : NULL;
    if (!k) {
        ig_scope_end(s);
        return ig_set_error(IG_ERR_NOMEM, "out of memory shuffling %lld examples", (long long)n);
    }
    const float *p = ig_tensor_data(u);
    for (int64_t i = 0; i < n; i++) k[i] = (keyed){p[i], i};
    qsort(k, (size_t)n, sizeof *k, by_key);
    for (int64_t i = 0; i < n; i++) d->order[i] = k[i].index;
    free(k);
    ig_scope_end(s);
    return IG_OK;
}

static ig_status open_mnist(train_data *d, const ig_job_spec *spec) {
    ig_status st = ig_mnist_load(spec->train[0], spec->train_labels, &d->images, &d->labels);
    if (st != IG_OK) return st;
    int64_t n = ig_tensor_size(d->images, 0);
    if (spec->n_val > 0) {
        st = ig_mnist_load(spec->val[0], spec->val_labels, &d->val_images, &d->val_labels);
        if (st != IG_OK) return st;
    } else {
        int64_t nv = (int64_t)((double)n * spec->val_fraction), nt = n - nv;
        if (nt < 1 || nv < 1)
            return ig_set_error(IG_ERR_INVALID, "%s: data.val_fraction leaves no examples",
                                   spec->path);
        d->val_images = ig_keep(ig_clone(ig_narrow(d->images, 0, nt, nv)));
        d->val_labels = ig_keep(ig_clone(ig_narrow(d->labels, 0, nt, nv)));
        ig_tensor *ti = ig_keep(ig_clone(ig_narrow(d->images, 0, 0, nt)));
        ig_tensor *tl = ig_keep(ig_clone(ig_narrow(d->labels, 0, 0, nt)));
        ig_tensor_free(d->images);
        ig_tensor_free(d->labels);
        d->images = ti;
        d->labels = tl;
        n = nt;
    }
    int64_t features = ig_tensor_size(d->images, 1);
    if (spec->model == IG_MODEL_MLP && features != spec->mlp.in)
        return ig_set_error(IG_ERR_INVALID, "%s: model.in is %d but the images have %lld pixels",
                               spec->path, spec->mlp.in, (long long)features);
    if (spec->model == IG_MODEL_CNN) {
        d->images_2d = true;
        d->height = spec->cnn.height;
        d->width = spec->cnn.width_px;
        if ((int64_t)spec->cnn.channels * d->height * d->width != features)
            return ig_set_error(IG_ERR_INVALID,
                                   "%s: model channels x height x width_px is %lld, the images "
                                   "have %lld pixels", spec->path,
                                   (long long)spec->cnn.channels * d->height * d->width,
                                   (long long)features);
    }
    d->order = malloc(sizeof(int64_t) * (size_t)n);
    if (!d->order) return ig_set_error(IG_ERR_NOMEM, "out of memory");
    d->seed = spec->seed;
    return permute(d, 0);
}

ig_status train_data_open(train_data *d, const ig_job_spec *spec, int rank, int world) {
    memset(d, 0, sizeof *d);
    if (spec->batch_size % world != 0)
        return ig_set_error(IG_ERR_INVALID,
                            "%s: train.batch_size %d (the global batch) is not divisible by the "
                            "%d ranks", spec->path, spec->batch_size, world);
    d->format = spec->data_format;
    d->batch = spec->batch_size / world;
    d->rank = rank;
    d->world = world;
    ig_status st = d->format == IG_DATA_MNIST ? open_mnist(d, spec) : open_token_data(d, spec);
    if (st != IG_OK) train_data_close(d);
    return st;
}

void train_data_close(train_data *d) {
    ig_loader_free(d->train_loader);
    if (d->val_tokens != d->train_tokens) ig_tokens_free(d->val_tokens);
    ig_tokens_free(d->train_tokens);
    ig_tensor_free(d->images);
    ig_tensor_free(d->labels);
    ig_tensor_free(d->val_images);
    ig_tensor_free(d->val_labels);
    free(d->order);
    memset(d, 0, sizeof *d);
}

static ig_tensor *as_input(const train_data *d, ig_tensor *x) {
    if (!d->images_2d || !x) return x;
    return ig_reshape(x, IG_SHAPE(ig_tensor_size(x, 0), 1, d->height, d->width));
}

ig_status train_data_next(train_data *d, ig_device dev, ig_tensor **x, ig_tensor **y) {
    if (d->format != IG_DATA_MNIST) return ig_loader_next(d->train_loader, dev, x, y);
    /* the global batch is the next world * batch examples; this rank's rows
     * are [rank * batch, (rank + 1) * batch) of it */
    int64_t n = ig_tensor_size(d->images, 0), idx[4096];
    if (d->batch > 4096) return ig_set_error(IG_ERR_INVALID, "batch_size above 4096");
    for (int i = 0; i < d->batch * d->world; i++) {
        if (d->cursor.position >= n) {
            d->cursor.epoch++;
            d->cursor.position = 0;
            ig_status st = permute(d, d->cursor.epoch);
            if (st != IG_OK) return st;
        }
        int64_t e = d->order[d->cursor.position++];
        if (i / d->batch == d->rank) idx[i % d->batch] = e;
    }
    ig_tensor *it = ig_from_data(idx, IG_SHAPE(d->batch), IG_I64, IG_CPU);
    *x = ig_to(as_input(d, ig_index_select(d->images, 0, it)), IG_F32, dev);
    *y = ig_to(ig_index_select(d->labels, 0, it), IG_I64, dev);
    return *x && *y ? IG_OK : ig_last_status();
}

ig_loader_cursor train_data_cursor(const train_data *d) {
    return d->format == IG_DATA_MNIST ? d->cursor : ig_loader_get_cursor(d->train_loader);
}

void train_data_set_cursor(train_data *d, ig_loader_cursor c) {
    if (d->format != IG_DATA_MNIST) {
        ig_loader_set_cursor(d->train_loader, c);
        return;
    }
    d->cursor = c;
    permute(d, c.epoch);
}

int64_t train_data_items(const train_data *d, const ig_job_spec *spec) {
    (void)d;
    return spec->data_format == IG_DATA_MNIST ? spec->batch_size
                                              : (int64_t)spec->batch_size * spec->seq_len;
}

/* Index of the largest logit of each row (N, C) -> (N) i64. */
/* The index of each row's largest logit, found on the CPU: the CUDA backend
 * has no argmax kernel (a few rows of class scores per batch). */
static ig_tensor *argmax_rows(ig_tensor *logits) {
    ig_tensor *idx = NULL;
    return ig_max(ig_to(logits, IG_F32, IG_CPU), 1, false, &idx) ? idx : NULL;
}

ig_status train_data_eval(train_data *d, ig_model *m, const ig_job_spec *spec, ig_device dev,
                          double *loss, double *accuracy) {
    bool prev = ig_grad_set_enabled(false);
    ig_model_train(m, false);
    double total = 0, correct = 0, seen = 0;
    int batches = 0;
    ig_status st = IG_OK;
    if (d->format == IG_DATA_MNIST) {
        int64_t n = ig_tensor_size(d->val_images, 0);
        for (int64_t at = 0; at < n && batches < spec->eval_batches && st == IG_OK; batches++) {
            ig_scope *s = ig_scope_begin();
            int64_t b = n - at < spec->batch_size ? n - at : spec->batch_size;
            ig_tensor *x = ig_to(as_input(d, ig_narrow(d->val_images, 0, at, b)), IG_F32, dev);
            ig_tensor *y = ig_to(ig_narrow(d->val_labels, 0, at, b), IG_I64, dev);
            ig_tensor *logits = train_logits(m, spec, x);
            ig_tensor *l = ig_cross_entropy(logits, y, IG_IGNORE_INDEX_NONE, 0.0);
            ig_tensor *ok = ig_eq(ig_to(y, IG_F32, dev), ig_to(argmax_rows(logits), IG_F32, dev));
            if (!l || !ok) st = ig_last_status();
            else {
                total += ig_tensor_item(l) * (double)b;
                correct += ig_tensor_item(ig_sum_all(ig_to(ok, IG_F32, dev)));
                seen += (double)b;
            }
            at += b;
            ig_scope_end(s);
        }
        *loss = total / (seen ? seen : 1);
        *accuracy = correct / (seen ? seen : 1);
    } else if (d->val_tokens) {
        ig_loader *vl = NULL;
        st = ig_loader_new(d->val_tokens, &d->val_cfg, &vl);
        int64_t windows = st == IG_OK ? ig_loader_windows(vl) : 0;
        int max = (int)(windows / spec->batch_size);
        if (max < 1) max = 1;
        for (; st == IG_OK && batches < spec->eval_batches && batches < max; batches++) {
            ig_scope *s = ig_scope_begin();
            ig_tensor *x, *y;
            st = ig_loader_next(vl, dev, &x, &y);
            ig_tensor *l = st == IG_OK ? train_loss(m, spec, x, y) : NULL;
            if (st == IG_OK && !l) st = ig_last_status();
            if (st == IG_OK) total += ig_tensor_item(l);
            ig_scope_end(s);
        }
        ig_loader_free(vl);
        *loss = total / (batches ? batches : 1);
        *accuracy = NAN;
    } else {
        *loss = NAN;
        *accuracy = NAN;
    }
    ig_model_train(m, true);
    ig_grad_set_enabled(prev);
    return st;
}
