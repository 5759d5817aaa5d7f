/* core/data_loader.c: the (B, T) window loader. Window k of the range starts
 * at begin + k*T and holds T+1 tokens; an epoch visits windows in the order
 * perm(seed, epoch, 0..n-1). A batch is a slice of the global batch (B * world
 * consecutive windows of the epoch order, running on into the next epoch).
 *
 * Invariants: the cursor (epoch, position) is the only state that changes, and
 * always 0 <= position < windows; the shuffle is stateless (a keyed bijection
 * of [0, windows)), so any cursor can be set in O(1) and a batch allocates
 * nothing but its two output tensors (a host staging buffer is made once). */
#include <string.h>

#include "core/impl.h"
#include "ignis/data.h"
#include "kernels/philox.h"

struct ig_loader {
    const ig_tokens *tokens;
    ig_loader_config cfg; /* end resolved */
    int64_t windows;
    int half_bits; /* the shuffle permutes [0, 4^half_bits) >= windows */
    ig_loader_cursor cur;
    int64_t *staging; /* inputs then targets, B*T each */
};

/* A pseudo-random bijection of [0, n) keyed by (seed, epoch): a 4-round
 * Feistel network over 2h bits whose round function is Philox, walked along
 * its cycle until it lands inside [0, n) (it does: the cycle through i < n
 * returns to i). 4^h < 4n, so the walk averages under 4 steps. */
static int64_t permute(const ig_loader *l, int64_t epoch, int64_t i) {
    int h = l->half_bits;
    if (h == 0) return i;
    uint64_t mask = (1ull << h) - 1, x = (uint64_t)i;
    do {
        uint64_t left = x >> h, right = x & mask;
        for (uint64_t round = 0; round < 4; round++) {
            uint64_t ctr = ((uint64_t)epoch * 4 + round) << 32 | right;
            uint64_t f = ig_philox(l->cfg.seed, ctr).v[0] & mask;
            uint64_t next = left ^ f;
            left = right;
            right = next;
        }
        x = left << h | right;
    } while (x >= (uint64_t)l->windows);
    return (int64_t)x;
}

ig_status ig_loader_new(const ig_tokens *tokens, const ig_loader_config *cfg, ig_loader **out) {
    *out = NULL;
    int64_t count = ig_tokens_count(tokens);
    ig_loader_config c = *cfg;
    if (c.end <= 0) c.end = count;
    IG_CHECK(c.batch > 0 && c.seq_len > 0 && c.world >= 1 && c.rank >= 0 && c.rank < c.world,
             "loader_new: batch %d, seq_len %d, rank %d of world %d", c.batch, c.seq_len, c.rank,
             c.world);
    if (c.begin < 0 || c.end > count)
        return ig__error(IG_ERR_INVALID, "loader_new: tokens [%lld, %lld) outside a stream of "
                         "%lld tokens", (long long)c.begin, (long long)c.end, (long long)count);
    int64_t windows = c.end - c.begin > c.seq_len ? (c.end - c.begin - 1) / c.seq_len : 0;
    if (windows == 0)
        return ig__error(IG_ERR_INVALID, "loader_new: tokens [%lld, %lld) hold no window of "
                         "seq_len + 1 = %d tokens", (long long)c.begin, (long long)c.end,
                         c.seq_len + 1);
    ig_loader *l = calloc(1, sizeof *l);
    int64_t *staging = malloc(2 * sizeof(int64_t) * (size_t)c.batch * (size_t)c.seq_len);
    if (!l || !staging) {
        free(l);
        free(staging);
        return ig__error(IG_ERR_NOMEM, "loader_new: out of memory for a %d x %d batch", c.batch,
                         c.seq_len);
    }
    *l = (ig_loader){.tokens = tokens, .cfg = c, .windows = windows, .staging = staging};
    if (c.shuffle)
        while (windows > 1 && (1ll << 2 * l->half_bits) < windows) l->half_bits++;
    *out = l;
    return IG_OK;
}

void ig_loader_free(ig_loader *l) {
    if (!l) return;
    free(l->staging);
    free(l);
}

ig_status ig_loader_next(ig_loader *l, ig_device dev, ig_tensor **inputs, ig_tensor **targets) {
    *inputs = *targets = NULL;
    int64_t B = l->cfg.batch, T = l->cfg.seq_len, global = B * l->cfg.world;
    int64_t first = B * l->cfg.rank;
    int64_t *in = l->staging, *tg = l->staging + B * T;
    ig_loader_cursor c = l->cur;
    for (int64_t j = 0; j < global; j++) {
        if (j >= first && j < first + B) {
            int64_t w = l->cfg.shuffle ? permute(l, c.epoch, c.position) : c.position;
            int64_t start = l->cfg.begin + w * T, row = (j - first) * T;
            ig_tokens_read(l->tokens, start, T, in + row);
            ig_tokens_read(l->tokens, start + 1, T, tg + row);
        }
        if (++c.position == l->windows) {
            c.epoch++;
            c.position = 0;
        }
    }
    ig_tensor *x = ig_from_data(in, IG_SHAPE(B, T), IG_I64, dev);
    ig_tensor *y = x ? ig_from_data(tg, IG_SHAPE(B, T), IG_I64, dev) : NULL;
    if (!y) {
        if (x && !x->scope) ig_tensor_free(x); /* a scope would release it */
        return ig_last_status();
    }
    l->cur = c;
    *inputs = x;
    *targets = y;
    return IG_OK;
}

ig_loader_cursor ig_loader_get_cursor(const ig_loader *l) { return l->cur; }

void ig_loader_set_cursor(ig_loader *l, ig_loader_cursor c) {
    IG_CHECK(c.epoch >= 0 && c.position >= 0, "loader_set_cursor: epoch %lld, position %lld",
             (long long)c.epoch, (long long)c.position);
    l->cur.epoch = c.epoch + c.position / l->windows;
    l->cur.position = c.position % l->windows;
}

int64_t ig_loader_windows(const ig_loader *l) { return l->windows; }
