/* core/data_mnist.c: MNIST idx files (big-endian headers, unsigned byte data):
 * images idx3 (magic 0x00000803, N, rows, cols, then N*rows*cols pixels) and
 * labels idx1 (magic 0x00000801, N, then N labels).
 *
 * Invariants: a file is read whole and checked before any tensor is made: its
 * size must equal header + data exactly (so every pixel read is in bounds),
 * the counts must agree and be > 0. On failure no tensor is returned. */
#include <errno.h>
#include <string.h>

#include "core/impl.h"
#include "ignis/data.h"

typedef struct idx_file {
    const char *path;
    uint8_t *data;
    size_t len;
} idx_file;

static ig_status read_file(const char *path, idx_file *f) {
    *f = (idx_file){.path = path};
    FILE *fp = fopen(path, "rb");
    if (!fp) return ig__error(IG_ERR_IO, "%s: %s", path, strerror(errno));
    ig_status s = IG_OK;
    long len = fseek(fp, 0, SEEK_END) == 0 ? ftell(fp) : -1;
    if (len < 0 || fseek(fp, 0, SEEK_SET) != 0) {
        s = ig__error(IG_ERR_IO, "%s: %s", path, strerror(errno));
    } else if (!(f->data = malloc((size_t)len + 1))) {
        s = ig__error(IG_ERR_NOMEM, "%s: out of memory for %ld bytes", path, len);
    } else if (fread(f->data, 1, (size_t)len, fp) != (size_t)len) {
        s = ig__error(IG_ERR_IO, "%s: short read", path);
    }
    fclose(fp);
    f->len = (size_t)len;
    return s;
}

static uint32_t be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* Checks the header of an idx file of `ndim` dims (magic 0x0800 + ndim) and
 * that the file ends right after the data; dims[] gets the sizes. */
static ig_status check_idx(const idx_file *f, int ndim, uint32_t *dims) {
    size_t header = 4 + 4 * (size_t)ndim;
    uint32_t want = 0x800u + (uint32_t)ndim;
    if (f->len >= 4 && be32(f->data) != want)
        return ig__error(IG_ERR_FORMAT, "%s: byte 0 (magic): expected 0x%08x, got 0x%08x",
                         f->path, want, be32(f->data));
    if (f->len < header)
        return ig__error(IG_ERR_FORMAT, "%s: header: expected %zu bytes, got a file of %zu bytes",
                         f->path, header, f->len);
    unsigned __int128 n = 1; /* up to three 32-bit factors: no overflow */
    char sizes[48] = "";
    for (int d = 0; d < ndim; d++) {
        dims[d] = be32(f->data + 4 + 4 * d);
        if (dims[d] == 0)
            return ig__error(IG_ERR_FORMAT, "%s: byte %d (dimension %d): expected > 0, got 0",
                             f->path, 4 + 4 * d, d);
        n *= dims[d];
        size_t used = strlen(sizes);
        snprintf(sizes + used, sizeof sizes - used, d ? " x %u" : "%u", dims[d]);
    }
    if (n != f->len - header)
        return ig__error(IG_ERR_FORMAT, "%s: byte %zu: expected %s bytes of data (the header's "
                         "sizes) up to the end of the file, got %zu", f->path, header, sizes,
                         f->len - header);
    return IG_OK;
}

ig_status ig_mnist_load(const char *images_path, const char *labels_path, ig_tensor **images,
                        ig_tensor **labels) {
    *images = *labels = NULL;
    idx_file fi, fl;
    uint32_t di[3] = {0}, dl[1] = {0};
    ig_status s = read_file(images_path, &fi);
    if (s == IG_OK) s = read_file(labels_path, &fl);
    else fl.data = NULL;
    if (s == IG_OK) s = check_idx(&fi, 3, di);
    if (s == IG_OK) s = check_idx(&fl, 1, dl);
    if (s == IG_OK && di[0] != dl[0])
        s = ig__error(IG_ERR_FORMAT, "%s: byte 4 (count): expected %u labels, one per image of "
                      "%s, got %u", labels_path, di[0], images_path, dl[0]);
    ig_tensor *x = NULL, *y = NULL;
    if (s == IG_OK) {
        int64_t n = di[0], pixels = (int64_t)di[1] * di[2];
        x = ig_keep(ig_empty(IG_SHAPE(n, pixels), IG_F32, IG_CPU));
        y = x ? ig_keep(ig_empty(IG_SHAPE(n), IG_I64, IG_CPU)) : NULL;
        if (y) {
            float *px = ig_tensor_data(x);
            const uint8_t *pi = fi.data + 16;
            for (int64_t i = 0; i < n * pixels; i++) px[i] = pi[i] / 255.0f;
            int64_t *py = ig_tensor_data(y);
            for (int64_t i = 0; i < n; i++) py[i] = fl.data[8 + i];
        } else {
            ig_tensor_free(x);
            x = NULL;
            s = ig_last_status();
        }
    }
    free(fi.data);
    free(fl.data);
    *images = x;
    *labels = y;
    return s;
}
