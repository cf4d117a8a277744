/* fuzz_readers.c - libFuzzer targets for the file readers of autogan.h.

   Cases: 0 raw DEFLATE, 1 zlib, 2 zip, 3 .npy, 4 .npz, 5 PNG as stored, 6 PNG converted,
   7 PyTorch .pth, 8 PNG encode/decode round trip, 9 .safetensors (and GAN checkpoint
   metadata), 10 array helpers, 11 tar (gzipped or not, streamed), 12 idx (gzipped or not),
   13 a CIFAR-10 python batch (the pickle VM's numpy arrays).
   Built once per reader with -DFUZZ_CASES='{...}' (the cases of that reader: the first
   input byte picks among them, the rest is the file); without it, one target takes every
   case (first byte modulo 14). Readers must return 0 or -1 with a message and never
   crash, leak or read out of bounds; round trips that succeed must give back what went
   in (abort() otherwise, so the fuzzer reports it).

   make fuzz FUZZ_SECONDS=20   builds one target per reader (build/fuzz_inflate, _zip,
   _npy, _npz, _png, _pth, _safetensors, _arrays, _tar, _idx) with clang -fsanitize=fuzzer,address,
   undefined, seeds each corpus from tests/data and tests/golden/data, and runs each that
   long. */
#define AUTOGAN_IMPLEMENTATION
#include "../../autogan.h"
#include <stdlib.h>

static void fz_check_error(int r, const ag_error *err) {
    if (r != 0 && r != -1) abort();
    if (r == -1 && err->msg[0] == '\0') abort();   /* every failure says why */
}

static void fz_zip(const unsigned char *d, size_t n) {
    ag_zip z;
    ag_error err;
    int k, r;
    err.msg[0] = '\0';
    r = ag_zip_open_from_memory(&z, d, n, &err);
    fz_check_error(r, &err);
    if (r) return;
    for (k = 0; k < z.count; k++) {
        unsigned char *out = NULL;
        const unsigned char *v = NULL;
        size_t len = 0;
        err.msg[0] = '\0';
        r = ag_zip_extract(&z, k, (size_t)1 << 22, &out, &len, &err);
        fz_check_error(r, &err);
        if (!r && (uint64_t)len != z.entries[k].size) abort();
        err.msg[0] = '\0';
        if (ag_zip_view(&z, k, &v, &len, &err) == 0 && out && memcmp(v, out, len) != 0) abort();
        AG_FREE(out);
        if (ag_zip_find(&z, z.entries[k].name) < 0 || ag_zip_find_suffix(&z, z.entries[k].name) < 0) abort();
    }
    ag_zip_close(&z);
}

/* tar members must arrive whole and in order: a start, then pieces at consecutive offsets */
typedef struct fz_tar { uint64_t size, got; int open; } fz_tar;
static int fz_tar_cb(void *user, const char *name, uint64_t size, const unsigned char *data, size_t len, uint64_t off, ag_error *err) {
    fz_tar *t = (fz_tar *)user;
    (void)err;
    if (!name) abort();
    if (!data) {
        if (len || off || (t->open && t->got != t->size)) abort();   /* the previous member ended early */
        t->size = size; t->got = 0; t->open = 1;
        return 0;
    }
    if (!t->open || off != t->got || size != t->size || len == 0 || t->got + len > t->size) abort();
    t->got += len;
    return 0;
}

static void fz_png_roundtrip(const unsigned char *d, size_t n) {
    int w, h, c;
    unsigned char *png = NULL;
    size_t plen = 0;
    ag_array a;
    ag_error err;
    if (n < 3) return;
    w = 1 + d[0] % 32;
    h = 1 + d[1] % 32;
    c = 1 + d[2] % 4;
    d += 3;
    n -= 3;
    if (n < (size_t)(w * h * c)) return;
    if (ag_png_write_to_memory(d, w, h, c, &png, &plen, &err)) abort();
    if (ag_png_read_from_memory(png, plen, 0, &a, &err)) abort();
    if (a.shape[0] != h || a.shape[1] != w || a.shape[2] != c || memcmp(a.data, d, (size_t)(w * h * c)) != 0) abort();
    ag_array_free(&a);
    AG_FREE(png);
}

#ifdef FUZZ_CASES
static const unsigned char fz_cases[] = FUZZ_CASES;
#define FZ_CASE(b) fz_cases[(b) % sizeof fz_cases]
#else
#define FZ_CASE(b) ((b) % 14)
#endif
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ag_error err;
    const unsigned char *d = data + 1;
    size_t n;
    int r;
    if (size < 1) return 0;
    n = size - 1;
    err.msg[0] = '\0';
    switch (FZ_CASE(data[0])) {
    case 0: case 1: {   /* raw DEFLATE / zlib */
        unsigned char *out = NULL;
        size_t olen = 0, used = 0;
        r = ag__inflate(d, n, FZ_CASE(data[0]), 0, (size_t)1 << 22, &out, &olen, &used, &err);
        fz_check_error(r, &err);
        if (!r && used > n) abort();
        if (!r) {   /* re-compress and inflate again: must give the same bytes */
            unsigned char *z = NULL, *back = NULL;
            size_t zl = 0, bl = 0;
            if (ag__deflate_zlib(out, olen, &z, &zl, &err)) abort();
            if (ag__inflate(z, zl, 1, olen, olen, &back, &bl, NULL, &err) || bl != olen || (olen && memcmp(back, out, olen))) abort();
            AG_FREE(z);
            AG_FREE(back);
        }
        AG_FREE(out);
        break;
    }
    case 2: fz_zip(d, n); break;
    case 3: {   /* npy, then write it back and read again */
        ag_array a, b;
        r = ag_npy_read_from_memory(d, n, &a, &err);
        fz_check_error(r, &err);
        if (!r) {
            unsigned char *o = NULL;
            size_t ol = 0;
            if (ag_npy_write_to_memory(&a, &o, &ol, &err) == 0) {
                if (ag_npy_read_from_memory(o, ol, &b, &err)) abort();
                if (b.dtype != a.dtype || b.ndim != a.ndim || b.nbytes != a.nbytes || (a.nbytes && memcmp(a.data, b.data, a.nbytes)))
                    abort();
                ag_array_free(&b);
                AG_FREE(o);
            }
            ag_array_free(&a);
        }
        break;
    }
    case 4: {
        ag_array_list l;
        r = ag_npz_read_from_memory(d, n, &l, &err);
        fz_check_error(r, &err);
        if (!r) {
            unsigned char *o = NULL;
            size_t ol = 0;
            ag_array_list l2;
            if (ag_npz_write_to_memory(&l, &o, &ol, &err) == 0) {
                int k;
                if (ag_npz_read_from_memory(o, ol, &l2, &err) || l2.count != l.count) abort();
                for (k = 0; k < l.count; k++)
                    if (strcmp(l.items[k].name, l2.items[k].name) || l.items[k].nbytes != l2.items[k].nbytes ||
                        (l.items[k].nbytes && memcmp(l.items[k].data, l2.items[k].data, l.items[k].nbytes)))
                        abort();
                ag_array_list_free(&l2);
                AG_FREE(o);
            }
            ag_array_list_free(&l);
        }
        break;
    }
    case 5: case 6: {   /* PNG decode as stored and converted */
        ag_array a;
        r = ag_png_read_from_memory(d, n, FZ_CASE(data[0]) == 5 ? 0 : (int)(data[0] / 11 % 5), &a, &err);
        fz_check_error(r, &err);
        if (!r) {
            if (a.dtype != AG_DTYPE_U8 || a.ndim != 3 || (size_t)(a.shape[0] * a.shape[1] * a.shape[2]) != a.nbytes) abort();
            ag_array_free(&a);
        }
        break;
    }
    case 7: {
        ag_array_list l;
        r = ag_pth_read_from_memory(d, n, &l, &err);
        fz_check_error(r, &err);
        if (!r) {
            int k;
            for (k = 0; k < l.count; k++) {   /* every array is self-consistent */
                size_t need = (size_t)ag_array_numel(&l.items[k]) * ag_dtype_size(l.items[k].dtype);
                if (need != l.items[k].nbytes || !l.items[k].name) abort();
            }
            if (l.count && ag_array_list_select_prefix(&l, l.items[0].name, &err)) abort();
            ag_array_list_free(&l);
        }
        break;
    }
    case 8: fz_png_roundtrip(d, n); break;
    case 9: {   /* safetensors: arrays self-consistent, metadata a string */
        ag_array_list l; char *meta = NULL;
        r = ag_safetensors_read_from_memory(d, n, &l, &meta, &err);
        fz_check_error(r, &err);
        if (!r) {
            int k;
            for (k = 0; k < l.count; k++) {
                if ((size_t)ag_array_numel(&l.items[k]) * ag_dtype_size(l.items[k].dtype) != l.items[k].nbytes) abort();
                (void)ag__array_first_bad(&l.items[k], 1);   /* the checkpoint loader's NaN scan */
            }
            if (meta) {   /* the GAN checkpoint metadata checks: valid or a reason */
                ag_gan_checkpoint_info info; uint64_t rng[2];
                err.msg[0] = '\0';
                r = ag__gan_meta_parse(meta, "fuzz", &info, rng, &err);
                fz_check_error(r, &err);
                if (!r && (info.stage < 0 || info.stage > 2 || info.arch_len != ag_arch_len(info.stage) || info.iteration < 0)) abort();
            }
            ag_array_list_free(&l);
            free(meta);
        }
        break;
    }
    case 11: {
        fz_tar t;
        memset(&t, 0, sizeof t);
        r = ag_tar_read_from_memory(d, n, fz_tar_cb, &t, &err);
        fz_check_error(r, &err);
        if (!r && t.open && t.got != t.size) abort();   /* success means the last member was whole */
        break;
    }
    case 12: {
        ag_array a;
        r = ag_idx_read_from_memory(d, n, &a, &err);
        fz_check_error(r, &err);
        if (!r) {
            if ((size_t)ag_array_numel(&a) * ag_dtype_size(a.dtype) != a.nbytes || a.ndim < 1 || a.ndim > 8) abort();
            ag_array_free(&a);
        } else if (a.data) abort();
        break;
    }
    case 13: {
        unsigned char *px = NULL;
        int *labels = NULL, count = -1, k;
        r = ag__cifar_pickle(d, n, &px, &labels, &count, &err);
        fz_check_error(r, &err);
        if (!r) {
            for (k = 0; k < count; k++) if (labels[k] < 0 || labels[k] > 9) abort();
            if (count > 0 && px[(size_t)count * 3072 - 1] != px[(size_t)count * 3072 - 1]) abort();   /* ASan checks the extent */
        } else if (px || labels) abort();
        AG_FREE(px);
        AG_FREE(labels);
        break;
    }
    default: {   /* array helpers on fuzzed shapes */
        ag_array_list l;
        int64_t shape[8];
        int nd = n ? d[0] % 9 : 0, k;
        memset(&l, 0, sizeof l);
        for (k = 0; k < nd; k++) shape[k] = (size_t)(k + 1) < n ? (int64_t)(d[k + 1] % 5) : 1;   /* at most 4^8 elements */
        r = ag_array_list_add(&l, "x", AG_DTYPE_F16, nd, shape, NULL, &err);
        fz_check_error(r, &err);
        if (!r) {
            float *f = (float *)AG_MALLOC((size_t)ag_array_numel(&l.items[0]) * sizeof(float) + 1);
            if (ag_array_to_f32(&l.items[0], f, &err)) abort();
            AG_FREE(f);
        }
        ag_array_list_free(&l);
        break;
    }
    }
    return 0;
}
