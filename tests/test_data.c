/* test_data.c - the data-set code: PIL-exact resizing against PIL goldens
 * (tests/golden/data/data_resize.safetensors, made by tests/golden/gen_data.py), gzip, idx,
 * tar, the CIFAR-10 / STL-10 / (Fashion-)MNIST / folder readers on small files made here
 * (in memory or in a scratch folder that is removed), bad input, and the loader's
 * shuffling, partial batches and resumable state. */
#include "test.h"
#if !defined(_WIN32)
#include <sys/wait.h>
#endif

#ifndef TEST_DATA_DIR
#define TEST_DATA_DIR "tests"
#endif

/* ---- PIL resize goldens ---- */
static int test_resize_pil_golden(void) {
    char path[512];
    ag_array_list l;
    ag_error err;
    int i, cases = 0;
    snprintf(path, sizeof path, "%s/golden/data/data_resize.safetensors", TEST_DATA_DIR);
    memset(&l, 0, sizeof l);
    TEST_CHECK(ag_safetensors_read(path, &l, NULL, &err) == 0, "%s", err.msg);
    for (i = 0; i < l.count; i++) {
        const ag_array *in = &l.items[i], *want;
        char oname[128];
        size_t nl = strlen(in->name), k, bad = 0;
        unsigned char *got;
        int h, w, c, s;
        if (nl < 3 || strcmp(in->name + nl - 3, ".in") != 0) continue;
        snprintf(oname, sizeof oname, "%.*s.out", (int)(nl - 3), in->name);
        want = ag_array_list_find(&l, oname);
        TEST_CHECK(want && in->dtype == AG_DTYPE_U8 && want->dtype == AG_DTYPE_U8 && in->ndim == 3 && want->ndim == 3,
                   "case %s malformed", in->name);
        h = (int)in->shape[0]; w = (int)in->shape[1]; c = (int)in->shape[2]; s = (int)want->shape[0];
        got = (unsigned char *)malloc(want->nbytes);
        TEST_CHECK(got != NULL, "oom");
        TEST_CHECK(ag_image_resize_bilinear_pil((const unsigned char *)in->data, h, w, c, got, s, s) == 0, "resize failed");
        for (k = 0; k < want->nbytes; k++) if (got[k] != ((const unsigned char *)want->data)[k]) bad++;
        if (bad) {
            for (k = 0; got[k] == ((const unsigned char *)want->data)[k]; k++) {}
            fprintf(stderr, "    %s: %lu of %lu bytes differ from PIL; first [%lu] got %d want %d\n", oname, (unsigned long)bad,
                    (unsigned long)want->nbytes, (unsigned long)k, got[k], ((const unsigned char *)want->data)[k]);
        }
        free(got);
        TEST_CHECK(bad == 0, "%s differs from PIL", oname);
        cases++;
    }
    ag_array_list_free(&l);
    TEST_CHECK(cases >= 17, "only %d resize cases in %s", cases, path);
    return 0;
}

/* ---- helpers ---- */
static unsigned char *rd_load_abs(const char *path, size_t *len) {
    unsigned char *buf = NULL;
    ag_error err;
    if (ag_read_file(path, &buf, len, &err)) { fprintf(stderr, "    %s\n", err.msg); return NULL; }
    return buf;
}
#define TD_DIR TEST_DATA_DIR "/data/datasets"

static unsigned cifar_px(int b, int k, int c, int q) { return (unsigned)(b * 53 + k * 29 + c * 7 + q * 11) & 255u; }
static unsigned stl_px(int f, int i, int y, int x, int c) { return (unsigned)(f * 71 + i * 13 + y * 5 + x * 3 + c * 101 + (x * y) % 7) & 255u; }
static unsigned mnist_px(int i, int y, int x) { return (unsigned)(i * 17 + y * 9 + x * 5) & 255u; }

/* a data set the failed load must leave exactly as it was */
static void td_sentinel(ag_dataset *ds) { memset(ds, 0x5a, sizeof *ds); }
static int td_untouched(const ag_dataset *ds) {
    const unsigned char *p = (const unsigned char *)ds;
    size_t i;
    for (i = 0; i < sizeof *ds; i++) if (p[i] != 0x5a) return 0;
    return 1;
}

/* expect ag_dataset_load to fail with a message containing `want`, *ds untouched */
static int td_expect_fail(const char *name, const char *path, const char *split, int resize, const char *want) {
    ag_dataset ds;
    ag_error err;
    err.msg[0] = 0;
    td_sentinel(&ds);
    if (ag_dataset_load(&ds, name, path, split, resize, &err) == 0) {
        fprintf(stderr, "    %s %s: loaded, expected an error containing '%s'\n", name, path ? path : "(null)", want);
        return 1;
    }
    if (!strstr(err.msg, want)) { fprintf(stderr, "    %s: message '%s' lacks '%s'\n", name, err.msg, want); return 1; }
    if (!td_untouched(&ds)) { fprintf(stderr, "    %s: a failed load changed the caller's data set\n", name); return 1; }
    return 0;
}

static int td_write(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    size_t put;
    if (!f) return -1;
    put = n ? fwrite(data, 1, n, f) : 0;
    return (fclose(f) == 0 && put == n) ? 0 : -1;
}

/* one ustar member (typeflag '0') at buf + at; returns the new end */
static size_t td_tar_add(unsigned char *buf, size_t at, const char *name, const void *data, size_t n) {
    unsigned char *h = buf + at;
    unsigned sum = 0;
    int i;
    memset(h, 0, 512);
    memcpy(h, name, strlen(name));
    memcpy(h + 100, "0000644", 7);
    snprintf((char *)h + 124, 12, "%011lo", (unsigned long)n);
    h[156] = '0';
    memcpy(h + 257, "ustar\0" "00", 8);
    memset(h + 148, ' ', 8);
    for (i = 0; i < 512; i++) sum += h[i];
    snprintf((char *)h + 148, 8, "%06o", sum);
    memcpy(buf + at + 512, data, n);
    memset(buf + at + 512 + n, 0, (512 - n % 512) % 512);
    return at + 512 + (n + 511) / 512 * 512;
}

/* gzip of in: header + the raw DEFLATE inside the header's zlib stream + CRC-32 + length */
static unsigned char *td_gzip(const unsigned char *in, size_t n, size_t *out_len) {
    unsigned char *z, *g;
    size_t zl;
    ag_error err;
    uint32_t crc = ag_crc32(0, in, n);
    if (ag__deflate_zlib(in, n, &z, &zl, &err)) return NULL;
    g = (unsigned char *)malloc(zl + 20);
    if (!g) { free(z); return NULL; }
    memcpy(g, "\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff", 10);
    memcpy(g + 10, z + 2, zl - 6);
    *out_len = 10 + zl - 6;
    g[(*out_len)++] = (unsigned char)crc; g[(*out_len)++] = (unsigned char)(crc >> 8);
    g[(*out_len)++] = (unsigned char)(crc >> 16); g[(*out_len)++] = (unsigned char)(crc >> 24);
    g[(*out_len)++] = (unsigned char)n; g[(*out_len)++] = (unsigned char)(n >> 8);
    g[(*out_len)++] = (unsigned char)(n >> 16); g[(*out_len)++] = (unsigned char)(n >> 24);
    free(z);
    return g;
}

#define TD_SCRATCH "build/data_scratch"
static int td_scratch(void) { return system("rm -rf " TD_SCRATCH " && mkdir -p " TD_SCRATCH) == 0 ? 0 : -1; }
static void td_scratch_done(void) { if (system("rm -rf " TD_SCRATCH) != 0) fprintf(stderr, "    cannot remove " TD_SCRATCH "\n"); }

/* ---- gzip and idx ---- */
static int test_gzip_idx(void) {
    unsigned char raw[16 + 2 * 3 * 4], *gz, *out;
    size_t gl, ol, i;
    ag_array a;
    ag_error err;
    int cut;
    /* idx of int32 [2][3] = 0..5 negated, big-endian */
    memcpy(raw, "\0\0\x0c\x02\0\0\0\x02\0\0\0\x03", 12);
    for (i = 0; i < 6; i++) {
        uint32_t v = (uint32_t)(-(int32_t)i);
        raw[12 + 4 * i] = (unsigned char)(v >> 24); raw[13 + 4 * i] = (unsigned char)(v >> 16);
        raw[14 + 4 * i] = (unsigned char)(v >> 8); raw[15 + 4 * i] = (unsigned char)v;
    }
    TEST_CHECK(ag_idx_read_from_memory(raw, 12 + 24, &a, &err) == 0, "%s", err.msg);
    TEST_CHECK(a.dtype == AG_DTYPE_I32 && a.ndim == 2 && a.shape[0] == 2 && a.shape[1] == 3, "idx shape");
    for (i = 0; i < 6; i++) TEST_CHECK(((int32_t *)a.data)[i] == -(int32_t)i, "idx value %d", (int)i);
    ag_array_free(&a);
    gz = td_gzip(raw, 36, &gl);
    TEST_CHECK(gz != NULL, "gzip");
    TEST_CHECK(ag_gunzip(gz, gl, 0, &out, &ol, &err) == 0 && ol == 36 && memcmp(out, raw, 36) == 0, "gunzip: %s", err.msg);
    free(out);
    TEST_CHECK(ag_idx_read_from_memory(gz, gl, &a, &err) == 0 && ((int32_t *)a.data)[5] == -5, "gz idx: %s", err.msg);
    ag_array_free(&a);
    /* bad input, each with its message and a zeroed output */
    TEST_CHECK(ag_idx_read_from_memory(raw, 35, &a, &err) != 0 && strstr(err.msg, "truncated") && !a.data, "short data: %s", err.msg);
    TEST_CHECK(ag_idx_read_from_memory(raw, 10, &a, &err) != 0 && strstr(err.msg, "truncated header"), "short header: %s", err.msg);
    raw[7] = 3;   /* header says [3][3]: disagrees with the data */
    TEST_CHECK(ag_idx_read_from_memory(raw, 36, &a, &err) != 0 && strstr(err.msg, "needs 36 data bytes, the file has 24"), "%s", err.msg);
    raw[7] = 2; raw[0] = 1;
    TEST_CHECK(ag_idx_read_from_memory(raw, 36, &a, &err) != 0 && strstr(err.msg, "bad magic"), "%s", err.msg);
    raw[0] = 0; raw[2] = 0x0a;
    TEST_CHECK(ag_idx_read_from_memory(raw, 36, &a, &err) != 0 && strstr(err.msg, "unknown data type 0x0a"), "%s", err.msg);
    raw[2] = 0x0c;
    for (cut = 1; cut < (int)gl; cut += 3) {
        TEST_CHECK(ag_gunzip(gz, (size_t)cut, 0, &out, &ol, &err) != 0 && out == NULL, "truncated gzip (%d bytes) read", cut);
        TEST_CHECK(strstr(err.msg, "gzip") || strstr(err.msg, "inflate"), "message: %s", err.msg);
    }
    gz[gl - 6] ^= 1;   /* CRC-32 */
    TEST_CHECK(ag_gunzip(gz, gl, 0, &out, &ol, &err) != 0 && strstr(err.msg, "CRC-32 mismatch"), "%s", err.msg);
    gz[gl - 6] ^= 1; gz[gl - 3] ^= 1;   /* ISIZE */
    TEST_CHECK(ag_gunzip(gz, gl, 0, &out, &ol, &err) != 0 && strstr(err.msg, "length"), "%s", err.msg);
    gz[gl - 3] ^= 1;
    TEST_CHECK(ag_gunzip(gz, gl, 20, &out, &ol, &err) != 0 && strstr(err.msg, "limit"), "max_out: %s", err.msg);
    free(gz);
    return 0;
}

/* ---- tar ---- */
typedef struct td_tarlog { char names[8][300]; uint64_t sizes[8]; size_t got[8]; int n, order_ok; unsigned char first[8]; } td_tarlog;
static int td_tar_cb(void *user, const char *name, uint64_t size, const unsigned char *data, size_t len, uint64_t off, ag_error *err) {
    td_tarlog *l = (td_tarlog *)user;
    (void)err;
    if (!data) {
        if (l->n == 8) return -1;
        snprintf(l->names[l->n], sizeof l->names[0], "%s", name);
        l->sizes[l->n] = size; l->got[l->n] = 0; l->n++;
        return 0;
    }
    if (off != l->got[l->n - 1]) l->order_ok = 0;
    if (off == 0) l->first[l->n - 1] = data[0];
    l->got[l->n - 1] += len;
    return 0;
}

/* set a header's type flag and fix its checksum */
static void retag(unsigned char *h, char type) {
    unsigned sum = 0; int k;
    h[156] = (unsigned char)type; memset(h + 148, ' ', 8);
    for (k = 0; k < 512; k++) sum += h[k];
    snprintf((char *)h + 148, 8, "%06o", sum);
}

static int test_tar(void) {
    static unsigned char buf[16384], big[3000];
    unsigned char *gz;
    size_t end = 0, gl, i;
    td_tarlog lg;
    ag_error err;
    char longname[200];
    int cut;
    for (i = 0; i < sizeof big; i++) big[i] = (unsigned char)(i * 7 + 1);
    end = td_tar_add(buf, end, "dir/a.bin", big, sizeof big);
    end = td_tar_add(buf, end, "empty", "", 0);
    memset(longname, 'n', sizeof longname - 1); longname[sizeof longname - 1] = 0;
    /* GNU long name: a 'L' member whose data is the next member's name */
    end = td_tar_add(buf, end, "././@LongLink", longname, sizeof longname);
    retag(buf + end - 512 - 512, 'L');
    end = td_tar_add(buf, end, "short", big + 5, 10);
    {   /* a pax header whose path= names the next member (160 bytes: "160 path=<150 chars>\n") */
        char rec[200];
        memcpy(rec, "160 path=", 9); memset(rec + 9, 'p', 150); rec[159] = '\n';
        end = td_tar_add(buf, end, "PaxHeader", rec, 160);
        retag(buf + end - 1024, 'x');
        end = td_tar_add(buf, end, "truncated-name", big, 3);
    }
    {   /* a POSIX ustar prefix */
        unsigned char *h = buf + end;
        end = td_tar_add(buf, end, "file.bin", big, 1);
        memcpy(h + 345, "some/dir", 8);
        retag(h, '0');
    }
    memset(buf + end, 0, 1024); end += 1024;
    memset(&lg, 0, sizeof lg); lg.order_ok = 1;
    TEST_CHECK(ag_tar_read_from_memory(buf, end, td_tar_cb, &lg, &err) == 0, "%s", err.msg);
    TEST_CHECK(lg.n == 5 && lg.order_ok, "members %d", lg.n);
    TEST_CHECK(!strcmp(lg.names[0], "dir/a.bin") && lg.sizes[0] == sizeof big && lg.got[0] == sizeof big && lg.first[0] == 1, "member 0");
    TEST_CHECK(!strcmp(lg.names[1], "empty") && lg.sizes[1] == 0 && lg.got[1] == 0, "empty member");
    TEST_CHECK(!strcmp(lg.names[2], longname) && lg.got[2] == 10 && lg.first[2] == big[5], "long name: '%s'", lg.names[2]);
    TEST_CHECK(strlen(lg.names[3]) == 150 && lg.names[3][0] == 'p' && lg.got[3] == 3, "pax path: '%s'", lg.names[3]);
    TEST_CHECK(!strcmp(lg.names[4], "some/dir/file.bin") && lg.got[4] == 1, "ustar prefix: '%s'", lg.names[4]);
    /* the same archive gzipped streams the same */
    gz = td_gzip(buf, end, &gl);
    TEST_CHECK(gz != NULL, "gzip");
    memset(&lg, 0, sizeof lg); lg.order_ok = 1;
    TEST_CHECK(ag_tar_read_from_memory(gz, gl, td_tar_cb, &lg, &err) == 0 && lg.n == 5 && lg.got[0] == sizeof big, "gz: %s", err.msg);
    /* truncated anywhere inside the members: an error (the end blocks may go) */
    for (cut = 100; cut < (int)end - 1024; cut += 200) {
        memset(&lg, 0, sizeof lg);
        TEST_CHECK(ag_tar_read_from_memory(buf, (size_t)cut, td_tar_cb, &lg, &err) != 0 && strstr(err.msg, "truncated"),
                   "cut at %d: %s", cut, err.msg);
    }
    for (cut = 20; cut < (int)gl - 8; cut += 97) {
        memset(&lg, 0, sizeof lg);
        TEST_CHECK(ag_tar_read_from_memory(gz, (size_t)cut, td_tar_cb, &lg, &err) != 0, "gz cut at %d read", cut);
    }
    free(gz);
    buf[100] ^= 1;   /* the first header's checksum no longer fits */
    memset(&lg, 0, sizeof lg);
    TEST_CHECK(ag_tar_read_from_memory(buf, end, td_tar_cb, &lg, &err) != 0 && strstr(err.msg, "checksum"), "%s", err.msg);
    TEST_CHECK(ag_tar_read_from_memory(buf, 0, td_tar_cb, &lg, &err) != 0 && strstr(err.msg, "empty"), "empty: %s", err.msg);
    return 0;
}

/* archives larger than the 1 MB read window: refills inside Huffman and stored blocks */
typedef struct td_crc { uint32_t crc; uint64_t got; int members; } td_crc;
static int td_crc_cb(void *user, const char *name, uint64_t size, const unsigned char *data, size_t len, uint64_t off, ag_error *err) {
    td_crc *c = (td_crc *)user;
    (void)name; (void)size; (void)off; (void)err;
    if (!data) { c->members++; return 0; }
    c->crc = ag_crc32(c->crc, data, len);
    c->got += len;
    return 0;
}

static int test_tar_streamed_files(void) {
    size_t n = 2600000 + 123, tl, gl, at, i;
    unsigned char *payload = (unsigned char *)malloc(n), *tar = (unsigned char *)malloc(n + 4096), *st, *gz;
    uint32_t want, x = 12345;
    ag_error err;
    td_crc c;
    int pass;
    TEST_CHECK(payload && tar, "oom");
    for (i = 0; i < n; i++) { x = x * 1103515245u + 12345u; payload[i] = (unsigned char)(i % 3 ? x >> 24 : i >> 10); }
    want = ag_crc32(0, payload, n);
    tl = td_tar_add(tar, 0, "big/payload.bin", payload, n);
    memset(tar + tl, 0, 1024); tl += 1024;
    /* gzip with stored blocks (as gzip -1 does for incompressible data), written by hand */
    st = (unsigned char *)malloc(tl + tl / 65535 * 5 + 64);
    TEST_CHECK(st != NULL, "oom");
    memcpy(st, "\x1f\x8b\x08\x08\x00\x00\x00\x00\x00\xff" "big.tar", 17); st[17] = 0;   /* FNAME */
    at = 18;
    for (i = 0; i < tl; i += 65535) {
        size_t k = tl - i < 65535 ? tl - i : 65535;
        st[at++] = i + k == tl ? 1 : 0;
        st[at++] = (unsigned char)k; st[at++] = (unsigned char)(k >> 8);
        st[at++] = (unsigned char)~k; st[at++] = (unsigned char)(~k >> 8);
        memcpy(st + at, tar + i, k); at += k;
    }
    {
        uint32_t crc = ag_crc32(0, tar, tl);
        st[at++] = (unsigned char)crc; st[at++] = (unsigned char)(crc >> 8); st[at++] = (unsigned char)(crc >> 16); st[at++] = (unsigned char)(crc >> 24);
        st[at++] = (unsigned char)tl; st[at++] = (unsigned char)(tl >> 8); st[at++] = (unsigned char)(tl >> 16); st[at++] = (unsigned char)(tl >> 24);
    }
    gz = td_gzip(tar, tl, &gl);
    TEST_CHECK(gz != NULL, "gzip");
    TEST_CHECK(td_scratch() == 0, "scratch");
    TEST_CHECK(td_write(TD_SCRATCH "/plain.tar", tar, tl) == 0 && td_write(TD_SCRATCH "/stored.tar.gz", st, at) == 0 &&
               td_write(TD_SCRATCH "/huff.tar.gz", gz, gl) == 0, "write");
    for (pass = 0; pass < 3; pass++) {
        static const char *const files[3] = { TD_SCRATCH "/plain.tar", TD_SCRATCH "/stored.tar.gz", TD_SCRATCH "/huff.tar.gz" };
        memset(&c, 0, sizeof c);
        TEST_CHECK(ag_tar_read(files[pass], td_crc_cb, &c, &err) == 0, "%s", err.msg);
        TEST_CHECK(c.members == 1 && c.got == n && c.crc == want, "%s: %d members, %lu bytes, crc %08x (want %08x)", files[pass],
                   c.members, (unsigned long)c.got, (unsigned)c.crc, (unsigned)want);
    }
    /* the same files cut short: an error, from a file as from memory */
    TEST_CHECK(td_write(TD_SCRATCH "/stored.tar.gz", st, at - 700000) == 0 && td_write(TD_SCRATCH "/huff.tar.gz", gz, gl - 5) == 0, "write");
    memset(&c, 0, sizeof c);
    TEST_CHECK(ag_tar_read(TD_SCRATCH "/stored.tar.gz", td_crc_cb, &c, &err) != 0 && strstr(err.msg, "stored.tar.gz: inflate: truncated"), "%s", err.msg);
    TEST_CHECK(ag_tar_read(TD_SCRATCH "/huff.tar.gz", td_crc_cb, &c, &err) != 0 && strstr(err.msg, "gzip: truncated"), "%s", err.msg);
    td_scratch_done();
    free(payload); free(tar); free(st); free(gz);
    return 0;
}

/* ---- the readers on the files of tests/golden/gen_data.py ---- */
static int td_check_cifar(const ag_dataset *ds, int test) {
    static const int counts[7] = { 0, 2, 3, 1, 2, 2, 3 };
    int b, k, at = 0, c, q;
    TEST_CHECK(ds->height == 32 && ds->width == 32 && ds->channels == 3 && ds->num_classes == 10, "geometry");
    TEST_CHECK(ds->count == (test ? 3 : 10), "count %d", ds->count);
    for (b = test ? 6 : 1; b <= (test ? 6 : 5); b++)
        for (k = 0; k < counts[b]; k++, at++) {
            TEST_CHECK(ds->labels[at] == (b + 3 * k) % 10, "label of batch %d record %d", b, k);
            for (c = 0; c < 3; c++) for (q = 0; q < 1024; q++)
                TEST_CHECK(ds->pixels[(size_t)at * 3072 + q * 3 + c] == cifar_px(b, k, c, q), "pixel b%d k%d c%d q%d", b, k, c, q);
        }
    return 0;
}

static int test_cifar10(void) {
    static const char *const files[2] = { TD_DIR "/cifar10_bin.tar", TD_DIR "/cifar10_py.tar.gz" };
    ag_dataset ds;
    ag_error err;
    int f, test;
    for (f = 0; f < 2; f++)
        for (test = 0; test < 2; test++) {
            TEST_CHECK(ag_dataset_load(&ds, "cifar10", files[f], test ? "test" : "train", 0, &err) == 0, "%s", err.msg);
            if (td_check_cifar(&ds, test)) { fprintf(stderr, "    in %s %s\n", files[f], test ? "test" : "train"); return 1; }
            ag_dataset_free(&ds);
        }
    return 0;
}

/* extract an archive into a folder with the tar reader itself, then load the folder */
typedef struct td_extract { char dir[256]; FILE *f; int failed; } td_extract;
static int td_extract_cb(void *user, const char *name, uint64_t size, const unsigned char *data, size_t len, uint64_t off, ag_error *err) {
    td_extract *x = (td_extract *)user;
    char path[600], cmd[700], *slash;
    (void)size; (void)off; (void)err;
    if (!data) {
        if (x->f) fclose(x->f);
        snprintf(path, sizeof path, "%s/%s", x->dir, name);
        slash = strrchr(path, '/');
        *slash = 0;
        snprintf(cmd, sizeof cmd, "mkdir -p '%s'", path);
        if (system(cmd) != 0) x->failed = 1;
        *slash = '/';
        x->f = fopen(path, "wb");
        if (!x->f) x->failed = 1;
        return 0;
    }
    if (x->f && fwrite(data, 1, len, x->f) != len) x->failed = 1;
    return 0;
}

static int test_extracted_folders(void) {
    static const char *const arch[3] = { TD_DIR "/cifar10_bin.tar", TD_DIR "/cifar10_py.tar.gz", TD_DIR "/stl10.tar.gz" };
    ag_dataset a, b;
    ag_error err;
    int i;
    TEST_CHECK(td_scratch() == 0, "scratch folder");
    for (i = 0; i < 3; i++) {
        td_extract x;
        const char *name = i < 2 ? "cifar10" : "stl10";
        memset(&x, 0, sizeof x);
        snprintf(x.dir, sizeof x.dir, TD_SCRATCH "/x%d", i);
        TEST_CHECK(ag_tar_read(arch[i], td_extract_cb, &x, &err) == 0, "%s", err.msg);
        if (x.f) fclose(x.f);
        TEST_CHECK(!x.failed, "extracting %s", arch[i]);
        TEST_CHECK(ag_dataset_load(&a, name, arch[i], "train", 0, &err) == 0, "%s", err.msg);
        TEST_CHECK(ag_dataset_load(&b, name, x.dir, "train", 0, &err) == 0, "%s", err.msg);
        TEST_CHECK(a.count == b.count && memcmp(a.pixels, b.pixels, (size_t)a.count * a.height * a.width * a.channels) == 0 &&
                   memcmp(a.labels, b.labels, (size_t)a.count * sizeof(int)) == 0, "%s: folder and archive differ", arch[i]);
        ag_dataset_free(&a); ag_dataset_free(&b);
    }
    td_scratch_done();
    return 0;
}

static int test_stl10(void) {
    ag_dataset ds;
    ag_error err;
    int i, y, x, c, f;
    unsigned char img[96 * 96 * 3], small[48 * 48 * 3];
    TEST_CHECK(ag_dataset_load(&ds, "stl10", TD_DIR "/stl10.tar.gz", "train", 0, &err) == 0, "%s", err.msg);
    TEST_CHECK(ds.count == 7 && ds.height == 96 && ds.channels == 3 && ds.num_classes == 10, "train+unlabeled: %d", ds.count);
    for (i = 0; i < 7; i++) {
        int fi = i < 3 ? 0 : 1, ii = i < 3 ? i : i - 3;
        TEST_CHECK(ds.labels[i] == (i < 3 ? (2 * i) % 10 : -1), "label %d: %d", i, ds.labels[i]);
        for (y = 0; y < 96; y++) for (x = 0; x < 96; x++) for (c = 0; c < 3; c++)
            TEST_CHECK(ds.pixels[(size_t)i * 27648 + (y * 96 + x) * 3 + c] == stl_px(fi, ii, y, x, c), "image %d (%d,%d,%d)", i, y, x, c);
    }
    ag_dataset_free(&ds);
    /* resized while streaming = the PIL resize (checked against PIL above) of each image */
    for (f = 0; f < 2; f++) {
        TEST_CHECK(ag_dataset_load(&ds, "stl10", TD_DIR "/stl10.tar.gz", f ? "test" : "train", 48, &err) == 0, "%s", err.msg);
        TEST_CHECK(ds.count == (f ? 2 : 7) && ds.height == 48 && ds.width == 48, "resized count %d", ds.count);
        for (i = 0; i < ds.count; i++) {
            int fi = f ? 2 : i < 3 ? 0 : 1, ii = f ? i : i < 3 ? i : i - 3;
            for (y = 0; y < 96; y++) for (x = 0; x < 96; x++) for (c = 0; c < 3; c++) img[(y * 96 + x) * 3 + c] = (unsigned char)stl_px(fi, ii, y, x, c);
            TEST_CHECK(ag_image_resize_bilinear_pil(img, 96, 96, 3, small, 48, 48) == 0, "resize");
            TEST_CHECK(memcmp(small, ds.pixels + (size_t)i * sizeof small, sizeof small) == 0, "resized image %d differs", i);
            if (f) TEST_CHECK(ds.labels[i] == (2 + 2 * i) % 10, "test label %d", i);
        }
        ag_dataset_free(&ds);
    }
    return 0;
}

static int test_mnist_and_default(void) {
    ag_dataset ds, r;
    ag_error err;
    int i, y, x, t;
    long long sum = 0;
    for (t = 0; t < 2; t++) {   /* train: gzipped idx; test: raw idx */
        int n = t ? 3 : 5;
        TEST_CHECK(ag_dataset_load(&ds, "mnist", TD_DIR "/mnist", t ? "test" : "train", 0, &err) == 0, "%s", err.msg);
        TEST_CHECK(ds.count == n && ds.height == 28 && ds.width == 28 && ds.channels == 1 && ds.num_classes == 10, "mnist geometry");
        for (i = 0; i < n; i++) {
            TEST_CHECK(ds.labels[i] == (i * 7) % 10, "label %d", i);
            for (y = 0; y < 28; y++) for (x = 0; x < 28; x++)
                TEST_CHECK(ds.pixels[(size_t)i * 784 + y * 28 + x] == mnist_px(i, y, x), "pixel %d %d %d", i, y, x);
        }
        /* resize at load = ag_dataset_resized = the per-image PIL resize */
        TEST_CHECK(ag_dataset_resized(&ds, 32, &r, &err) == 0 && r.height == 32 && r.count == n, "%s", err.msg);
        {
            unsigned char one[32 * 32];
            ag_dataset l2;
            TEST_CHECK(ag_image_resize_bilinear_pil(ds.pixels + 784, 28, 28, 1, one, 32, 32) == 0, "resize");
            TEST_CHECK(memcmp(one, r.pixels + 1024, 1024) == 0, "ag_dataset_resized differs from the image resize");
            TEST_CHECK(ag_dataset_load(&l2, "mnist", TD_DIR "/mnist/t10k-images-idx3-ubyte", t ? "test" : "train", 32, &err) == 0, "%s", err.msg);
            TEST_CHECK(l2.count == n && memcmp(l2.pixels, r.pixels, (size_t)n * 1024) == 0, "resize_to at load differs");
            ag_dataset_free(&l2);
        }
        ag_dataset_free(&r);
        ag_dataset_free(&ds);
    }
    /* the embedded default: the real Fashion-MNIST test split in examples/data */
    TEST_CHECK(ag_dataset_load(&ds, "fashion-mnist", NULL, "test", 0, &err) == 0, "%s", err.msg);
    TEST_CHECK(ds.count == 10000 && ds.height == 28 && ds.channels == 1, "fashion-mnist test: %d", ds.count);
    for (i = 0; i < ds.count * 784; i++) sum += ds.pixels[i];
    TEST_CHECK(sum == 573469082LL && ds.labels[0] == 9 && ds.labels[1] == 2 && ds.labels[9999] == 5,
               "fashion-mnist test: pixel sum %lld (573469082 by numpy), labels %d %d %d", sum, ds.labels[0], ds.labels[1], ds.labels[9999]);
    ag_dataset_free(&ds);
    return 0;
}

static int test_png_folder(void) {
    static const char *const want_order[3] = { "a.png (gray)", "b/2.png", "b/c/1.png" };
    ag_dataset ds;
    ag_error err;
    int j, y, x, c;
    TEST_CHECK(ag_dataset_load(&ds, "folder", TD_DIR "/pngs", NULL, 0, &err) == 0, "%s", err.msg);
    TEST_CHECK(ds.count == 3 && ds.height == 10 && ds.width == 12 && ds.channels == 3 && ds.num_classes == 0, "geometry");
    for (j = 0; j < 3; j++) {
        TEST_CHECK(ds.labels[j] == -1, "unlabelled");
        for (y = 0; y < 10; y++) for (x = 0; x < 12; x++) for (c = 0; c < 3; c++)
            TEST_CHECK(ds.pixels[(size_t)j * 360 + (y * 12 + x) * 3 + c] == ((j * 40 + y * 7 + x * 3 + (j ? c : 0) * 50) & 255),
                       "%s pixel (%d,%d,%d)", want_order[j], y, x, c);
    }
    ag_dataset_free(&ds);
    TEST_CHECK(ag_dataset_load(&ds, "folder", TD_DIR "/pngs", NULL, 8, &err) == 0 && ds.height == 8 && ds.width == 8, "%s", err.msg);
    ag_dataset_free(&ds);
    return 0;
}

/* ---- bad input: messages name the file, nothing half-loaded ---- */
static int test_bad_archives(void) {
    unsigned char *buf, *gz, tarbuf[1 << 15], rec[3073];
    size_t len, gl, end;
    ag_error err;
    int cut;
    TEST_CHECK(td_scratch() == 0, "scratch");
    /* truncated archives (gzip and plain) */
    buf = rd_load_abs(TD_DIR "/cifar10_py.tar.gz", &len);
    TEST_CHECK(buf != NULL, "load");
    for (cut = 30; cut < (int)len; cut += (int)len / 7) {
        TEST_CHECK(td_write(TD_SCRATCH "/cut.tar.gz", buf, (size_t)cut) == 0, "write");
        if (td_expect_fail("cifar10", TD_SCRATCH "/cut.tar.gz", "train", 0, TD_SCRATCH "/cut.tar.gz")) return 1;
    }
    buf[0] = 0x1e;   /* neither gzip nor tar */
    TEST_CHECK(td_write(TD_SCRATCH "/magic.tar.gz", buf, len) == 0, "write");
    if (td_expect_fail("cifar10", TD_SCRATCH "/magic.tar.gz", "train", 0, "checksum")) return 1;
    free(buf);
    buf = rd_load_abs(TD_DIR "/stl10.tar.gz", &len);
    TEST_CHECK(buf != NULL, "load");
    TEST_CHECK(td_write(TD_SCRATCH "/stl.tar.gz", buf, len - 3000) == 0, "write");
    if (td_expect_fail("stl10", TD_SCRATCH "/stl.tar.gz", "train", 48, "stl.tar.gz")) return 1;
    free(buf);
    /* a CIFAR batch whose size is not whole records; a label out of range; a missing batch */
    memset(rec, 7, sizeof rec);
    rec[0] = 3;
    end = td_tar_add(tarbuf, 0, "b/test_batch.bin", rec, sizeof rec - 5);
    memset(tarbuf + end, 0, 1024);
    TEST_CHECK(td_write(TD_SCRATCH "/c.tar", tarbuf, end + 1024) == 0, "write");
    if (td_expect_fail("cifar10", TD_SCRATCH "/c.tar", "test", 0, "test_batch.bin has 3068 bytes, not a whole number")) return 1;
    rec[0] = 12;
    end = td_tar_add(tarbuf, 0, "b/test_batch.bin", rec, sizeof rec);
    memset(tarbuf + end, 0, 1024);
    TEST_CHECK(td_write(TD_SCRATCH "/c.tar", tarbuf, end + 1024) == 0, "write");
    if (td_expect_fail("cifar10", TD_SCRATCH "/c.tar", "test", 0, "label 12")) return 1;
    if (td_expect_fail("cifar10", TD_SCRATCH "/c.tar", "train", 0, "no data_batch_1.bin")) return 1;
    /* an STL image file that is not whole images; labels disagreeing with the images */
    {
        static unsigned char x[2 * 27648];
        unsigned char y[3] = { 1, 2, 3 };
        memset(x, 9, sizeof x);
        end = td_tar_add(tarbuf, 0, "s/test_y.bin", y, 3);
        memset(tarbuf + end, 0, 1024);
        buf = (unsigned char *)malloc(end + sizeof x + 4096);
        TEST_CHECK(buf != NULL, "oom");
        memcpy(buf, tarbuf, end);
        end = td_tar_add(buf, end, "s/test_X.bin", x, sizeof x);
        memset(buf + end, 0, 1024);
        gz = td_gzip(buf, end + 1024, &gl);
        TEST_CHECK(gz && td_write(TD_SCRATCH "/s.tar.gz", gz, gl) == 0, "write");
        if (td_expect_fail("stl10", TD_SCRATCH "/s.tar.gz", "test", 0, "test_X.bin holds 2 images but test_y.bin 3 labels")) return 1;
        free(gz);
        end = td_tar_add(buf, 0, "s/test_X.bin", x, sizeof x - 1);
        memset(buf + end, 0, 1024);
        TEST_CHECK(td_write(TD_SCRATCH "/s.tar", buf, end + 1024) == 0, "write");
        if (td_expect_fail("stl10", TD_SCRATCH "/s.tar", "test", 0, "not a whole number of 96x96x3 images")) return 1;
        free(buf);
    }
    /* idx whose image and label counts disagree; labels out of range */
    {
        unsigned char im[16 + 2 * 4], lb[8 + 3];
        memcpy(im, "\0\0\x08\x03\0\0\0\x02\0\0\0\x02\0\0\0\x02", 16);
        memset(im + 16, 1, 8);
        memcpy(lb, "\0\0\x08\x01\0\0\0\x03", 8);
        lb[8] = 1; lb[9] = 2; lb[10] = 3;
        TEST_CHECK(system("mkdir -p " TD_SCRATCH "/m") == 0, "mkdir");
        TEST_CHECK(td_write(TD_SCRATCH "/m/t10k-images-idx3-ubyte", im, sizeof im) == 0, "write");
        TEST_CHECK(td_write(TD_SCRATCH "/m/t10k-labels-idx1-ubyte", lb, sizeof lb) == 0, "write");
        if (td_expect_fail("mnist", TD_SCRATCH "/m", "test", 0, "holds 2 images but")) return 1;
        lb[7] = 2; lb[9] = 11;
        TEST_CHECK(td_write(TD_SCRATCH "/m/t10k-labels-idx1-ubyte", lb, 10) == 0, "write");
        if (td_expect_fail("mnist", TD_SCRATCH "/m", "test", 0, "label 11 at index 1")) return 1;
        im[3] = 2;   /* [2][2] with 8 bytes of data: header and data disagree */
        TEST_CHECK(td_write(TD_SCRATCH "/m/t10k-images-idx3-ubyte", im, sizeof im) == 0, "write");
        if (td_expect_fail("mnist", TD_SCRATCH "/m", "test", 0, "t10k-images-idx3-ubyte: idx: the header's shape needs")) return 1;
        if (td_expect_fail("mnist", TD_SCRATCH "/m", "train", 0, "no train-images-idx3-ubyte")) return 1;
    }
    /* folders: a non-image, a corrupt PNG, mixed sizes; nothing there at all */
    {
        unsigned char px[4 * 5 * 3];
        ag_dataset ds;
        memset(px, 100, sizeof px);
        TEST_CHECK(system("mkdir -p " TD_SCRATCH "/p/sub") == 0, "mkdir");
        TEST_CHECK(ag_png_write(TD_SCRATCH "/p/a.png", px, 5, 4, 3, &err) == 0, "%s", err.msg);
        TEST_CHECK(ag_png_write(TD_SCRATCH "/p/sub/b.png", px, 5, 4, 3, &err) == 0, "%s", err.msg);
        TEST_CHECK(ag_dataset_load(&ds, "folder", TD_SCRATCH "/p", NULL, 0, &err) == 0 && ds.count == 2, "%s", err.msg);
        ag_dataset_free(&ds);
        TEST_CHECK(td_write(TD_SCRATCH "/p/sub/notes.txt", "hello", 5) == 0, "write");
        if (td_expect_fail("folder", TD_SCRATCH "/p", NULL, 0, "p/sub/notes.txt: not a PNG image")) return 1;
        TEST_CHECK(remove(TD_SCRATCH "/p/sub/notes.txt") == 0, "rm");
        buf = rd_load_abs(TD_SCRATCH "/p/a.png", &len);
        TEST_CHECK(buf != NULL, "load");
        TEST_CHECK(td_write(TD_SCRATCH "/p/sub/c.png", buf, len - 12) == 0, "write");
        free(buf);
        if (td_expect_fail("folder", TD_SCRATCH "/p", NULL, 0, "p/sub/c.png")) return 1;
        TEST_CHECK(ag_png_write(TD_SCRATCH "/p/sub/c.png", px, 4, 5, 3, &err) == 0, "%s", err.msg);
        if (td_expect_fail("folder", TD_SCRATCH "/p", NULL, 0, "p/sub/c.png: 4 x 5, but")) return 1;
        TEST_CHECK(ag_dataset_load(&ds, "folder", TD_SCRATCH "/p", NULL, 6, &err) == 0 && ds.count == 3 && ds.width == 6, "%s", err.msg);
        ag_dataset_free(&ds);
        /* only gray images: a gray data set */
        TEST_CHECK(system("mkdir -p " TD_SCRATCH "/g") == 0, "mkdir");
        TEST_CHECK(ag_png_write(TD_SCRATCH "/g/1.png", px, 5, 4, 1, &err) == 0 && ag_png_write(TD_SCRATCH "/g/2.png", px, 5, 4, 2, &err) == 0, "%s", err.msg);
        TEST_CHECK(ag_dataset_load(&ds, "folder", TD_SCRATCH "/g", NULL, 0, &err) == 0 && ds.count == 2 && ds.channels == 1, "gray folder: %s", err.msg);
        ag_dataset_free(&ds);
        TEST_CHECK(system("mkdir -p " TD_SCRATCH "/empty") == 0, "mkdir");
        if (td_expect_fail("folder", TD_SCRATCH "/empty", NULL, 0, "no images")) return 1;
    }
    if (td_expect_fail("cifar10", TD_SCRATCH "/nothing-here.tar.gz", "train", 0, "nothing-here.tar.gz: no such file")) return 1;
    if (td_expect_fail("imagenet", "x", "train", 0, "unknown")) return 1;
    if (td_expect_fail("cifar10", TD_DIR "/cifar10_bin.tar", "valid", 0, "split 'valid'")) return 1;
    if (td_expect_fail("cifar10", TD_DIR "/stl10.tar.gz", "train", 0, "not CIFAR-10")) return 1;
    if (td_expect_fail("stl10", TD_DIR "/cifar10_bin.tar", "train", 0, "not STL-10")) return 1;
    td_scratch_done();
    return 0;
}

/* ---- the loader ---- */
static int test_shuffle_uniform(void) {
    /* 6,000 shuffles of 3 items: each of the 6 orders about 1,000 times (binomial sd 29:
       800..1200 is 7 sd); the same seed gives the same sequence */
    int counts[6] = { 0 }, i, k, idx[3];
    ag_rng r, r2;
    ag_rng_seed(&r, 7, 0);
    for (i = 0; i < 6000; i++) {
        idx[0] = 0; idx[1] = 1; idx[2] = 2;
        ag_shuffle_indices(&r, idx, 3);
        counts[idx[0] * 2 + (idx[1] > idx[2])]++;
    }
    for (k = 0; k < 6; k++) TEST_CHECK(counts[k] > 800 && counts[k] < 1200, "order %d drawn %d times of 6000", k, counts[k]);
    ag_rng_seed(&r, 9, 1); ag_rng_seed(&r2, 9, 1);
    {
        int a[100], b[100];
        for (i = 0; i < 100; i++) a[i] = b[i] = i;
        ag_shuffle_indices(&r, a, 100); ag_shuffle_indices(&r2, b, 100);
        TEST_CHECK(memcmp(a, b, sizeof a) == 0 && r.state == r2.state, "same seed, different shuffle");
    }
    return 0;
}


static int test_loader(void) {
    ag_dataset ds;
    ag_data_loader l, l2;
    ag_rng r1, r2;
    ag_error err;
    float *x, *x2;
    int lab[8], lab2[8], seen[10], i, k, n, e, order1[10], order2[10];
    char state[128];
    TEST_CHECK(ag_dataset_load(&ds, "cifar10", TD_DIR "/cifar10_bin.tar", "train", 0, &err) == 0, "%s", err.msg);
    x = (float *)malloc(sizeof(float) * 4 * 3 * 1024);
    x2 = (float *)malloc(sizeof(float) * 4 * 3 * 1024);
    TEST_CHECK(x && x2, "oom");
    TEST_CHECK(ag_data_loader_init(&l, &ds, 4, 3, &err) == 0, "%s", err.msg);
    ag_rng_seed(&r1, 42, 0);
    /* epochs of 10 images in batches 4, 4, 2; each image once; ToTensor + Normalize values */
    for (e = 1; e <= 3; e++) {
        memset(seen, 0, sizeof seen);
        for (k = 0; k < 3; k++) {
            n = ag_data_loader_next(&l, &r1, x, lab);
            TEST_CHECK(n == (k < 2 ? 4 : 2) && l.epoch == e, "epoch %d batch %d: %d images", e, k, n);
            for (i = 0; i < n; i++) {
                int idx = l.order[k * 4 + i];
                seen[idx]++;
                TEST_CHECK(lab[i] == ds.labels[idx], "label");
                TEST_CHECK(x[(size_t)i * 3072 + 1024 + 37] == ((float)ds.pixels[(size_t)idx * 3072 + 37 * 3 + 1] / 255.0f - 0.5f) / 0.5f,
                           "normalised value");
            }
        }
        for (i = 0; i < 10; i++) TEST_CHECK(seen[i] == 1, "epoch %d: image %d seen %d times", e, i, seen[i]);
        if (e == 1) memcpy(order1, l.order, sizeof order1);
        if (e == 2) TEST_CHECK(memcmp(order1, l.order, sizeof order1) != 0, "epoch 2 reuses epoch 1's order");
    }
    /* same seed, same order; another seed, another order */
    TEST_CHECK(ag_data_loader_init(&l2, &ds, 4, 3, &err) == 0, "%s", err.msg);
    ag_rng_seed(&r2, 42, 0);
    ag_data_loader_next(&l2, &r2, x2, lab2);
    TEST_CHECK(memcmp(order1, l2.order, sizeof order1) == 0, "same seed, different order");
    ag_rng_seed(&r2, 43, 0);
    l2.position = ds.count;
    ag_data_loader_next(&l2, &r2, x2, lab2);
    memcpy(order2, l2.order, sizeof order2);
    TEST_CHECK(memcmp(order1, order2, sizeof order1) != 0, "seeds 42 and 43 give one order");
    /* resume mid-epoch: the state string restores position and order exactly */
    ag_data_loader_next(&l, &r1, x, lab);
    ag_data_loader_state_string(&l, state, sizeof state);
    r2 = r1;
    TEST_CHECK(ag_data_loader_restore(&l2, state, &err) == 0, "%s", err.msg);
    for (k = 0; k < 7; k++) {
        int n1 = ag_data_loader_next(&l, &r1, x, lab), n2 = ag_data_loader_next(&l2, &r2, x2, lab2);
        TEST_CHECK(n1 == n2 && memcmp(x, x2, sizeof(float) * (size_t)n1 * 3072) == 0 && memcmp(lab, lab2, sizeof(int) * (size_t)n1) == 0,
                   "resumed batch %d differs", k);
    }
    TEST_CHECK(ag_data_loader_restore(&l2, "1 11 5 7", &err) != 0, "position past the end accepted");
    TEST_CHECK(ag_data_loader_restore(&l2, "garbage", &err) != 0 && strstr(err.msg, "epoch position"), "%s", err.msg);
    ag_data_loader_free(&l2);
    /* 3 -> 1 channel: PIL's convert("L") */
    TEST_CHECK(ag_data_loader_init(&l2, &ds, 4, 1, &err) == 0, "%s", err.msg);
    l2.shuffle = 0;
    ag_data_loader_next(&l2, &r2, x2, lab2);
    {
        const unsigned char *p = ds.pixels + 5 * 3;
        unsigned gray = (p[0] * 19595u + p[1] * 38470u + p[2] * 7471u + 0x8000u) >> 16;
        TEST_CHECK(x2[5] == ((float)gray / 255.0f - 0.5f) / 0.5f && lab2[0] == ds.labels[0], "gray conversion");
    }
    ag_data_loader_free(&l2);
    ag_data_loader_free(&l);
    ag_dataset_free(&ds);
    /* 1 -> 3 channels by replication */
    TEST_CHECK(ag_dataset_load(&ds, "mnist", TD_DIR "/mnist", "test", 0, &err) == 0, "%s", err.msg);
    TEST_CHECK(ag_data_loader_init(&l, &ds, 8, 3, &err) == 0, "%s", err.msg);
    n = ag_data_loader_next(&l, &r1, x, lab);
    TEST_CHECK(n == 3, "3 images, batch 8: %d", n);
    for (i = 0; i < 784; i++) TEST_CHECK(x[i] == x[784 + i] && x[i] == x[2 * 784 + i], "replication");
    TEST_CHECK(ag_data_loader_init(&l2, &ds, 0, 1, &err) != 0, "batch 0 accepted");
    TEST_CHECK(ag_data_loader_init(&l2, &ds, 4, 2, &err) != 0 && strstr(err.msg, "channels"), "2 channels accepted");
    ag_data_loader_free(&l);
    ag_dataset_free(&ds);
    free(x); free(x2);
    return 0;
}


/* 6 G steps straight = 3 steps, then resumed to 6 (the loader's epoch and order come back
   from the checkpoint; 3 images in batches of 2 cross epochs and a lone last image) */
static int td_same_tensors(const char *x, const char *y) {
    ag_array_list a, b; ag_error err; int i, same;
    if (ag_safetensors_read(x, &a, NULL, &err)) return 0;
    if (ag_safetensors_read(y, &b, NULL, &err)) { ag_array_list_free(&a); return 0; }
    same = a.count == b.count && a.count > 0;
    for (i = 0; same && i < a.count; i++) {
        const ag_array *t = ag_array_list_find(&b, a.items[i].name);
        same = t && t->nbytes == a.items[i].nbytes && !memcmp(t->data, a.items[i].data, t->nbytes);
    }
    ag_array_list_free(&a); ag_array_list_free(&b);
    return same;
}
static int test_train_dataset_resume(void) {
    static const char *const F = "./build/train --gen_model autogan_cifar10_a --gf_dim 8 --df_dim 8 --latent_dim 8 --bottom_width 1 --gen_bs 4 --dis_bs 2 "
                                 "--n_critic 2 --threads 2 --print_freq 100 --dataset folder --data_path " TD_DIR "/pngs --log_dir " TD_SCRATCH;
    static const struct { const char *args, *want; int rc; } bad[] = {
        { "--gen_model autogan_cifar10_a --exp_name x --log_dir " TD_SCRATCH " --dataset imagenet", "imagenet", 2 },
        { "--gen_model autogan_cifar10_a --exp_name x --log_dir " TD_SCRATCH " --data synthetic", "unknown option '--data'", 2 },
        { "--gen_model autogan_cifar10_a --exp_name x --log_dir " TD_SCRATCH " --dataset cifar10 --data_path build/no-such.tar.gz", "build/no-such.tar.gz: no such file", 2 },
        { "--gen_model autogan_cifar10_a --exp_name x --log_dir " TD_SCRATCH " --dataset cifar10", "cifar10: no path given (--data_path)", 2 },
    };
    char cmd[1024], out[8192];
    int rc, k;
    TEST_CHECK(td_scratch() == 0, "scratch");
    snprintf(cmd, sizeof cmd, "%s --max_iter 6 --exp_name full", F);
    TEST_CHECK((rc = test_run_command(cmd, out, sizeof out)) == 0 && strstr(out, "folder, 3 images"), "exit %d:\n%s", rc, out);
    snprintf(cmd, sizeof cmd, "%s --max_iter 3 --exp_name half", F);
    TEST_CHECK((rc = test_run_command(cmd, out, sizeof out)) == 0, "exit %d:\n%s", rc, out);
    snprintf(cmd, sizeof cmd, "./build/train --max_iter 6 --load_path " TD_SCRATCH "/half");
    TEST_CHECK((rc = test_run_command(cmd, out, sizeof out)) == 0, "exit %d:\n%s", rc, out);
    TEST_CHECK(td_same_tensors(TD_SCRATCH "/full/Model/checkpoint.safetensors", TD_SCRATCH "/half/Model/checkpoint.safetensors"),
               "the resumed run's checkpoint differs from the straight run's");
    /* resuming on another data set is refused */
    snprintf(cmd, sizeof cmd, "./build/train --max_iter 7 --load_path " TD_SCRATCH "/full --dataset mnist --data_path " TD_DIR "/mnist");
    TEST_CHECK((rc = test_run_command(cmd, out, sizeof out)) == 2 && strstr(out, "was trained on folder"), "exit %d:\n%s", rc, out);
    for (k = 0; k < (int)(sizeof bad / sizeof bad[0]); k++) {
        snprintf(cmd, sizeof cmd, "./build/train %s", bad[k].args);
        rc = test_run_command(cmd, out, sizeof out);
        TEST_CHECK(rc == bad[k].rc && strstr(out, bad[k].want), "train %s: exit %d (want %d and '%s'):\n%s", bad[k].args, rc, bad[k].rc, bad[k].want, out);
    }
    td_scratch_done();
    return 0;
}

/* only the split's members are read, and a CIFAR-10 batch may not claim more than 64 MB */
static int test_archive_members_bounded(void) {
    static unsigned char buf[3 * 27648 + 8192];
    unsigned char x[27648], y = 1;
    size_t end;
    ag_dataset ds;
    ag_error err;
    TEST_CHECK(td_scratch() == 0, "scratch");
    /* STL-10 train: a broken test_X.bin beside it is not read */
    memset(x, 40, sizeof x);
    end = td_tar_add(buf, 0, "stl10_binary/train_X.bin", x, sizeof x);
    end = td_tar_add(buf, end, "stl10_binary/train_y.bin", &y, 1);
    end = td_tar_add(buf, end, "stl10_binary/unlabeled_X.bin", x, sizeof x);
    end = td_tar_add(buf, end, "stl10_binary/test_X.bin", x, 5);
    memset(buf + end, 0, 1024);
    TEST_CHECK(td_write(TD_SCRATCH "/s.tar", buf, end + 1024) == 0, "write");
    TEST_CHECK(ag_dataset_load(&ds, "stl10", TD_SCRATCH "/s.tar", "train", 0, &err) == 0 && ds.count == 2 && ds.labels[0] == 0 &&
               ds.labels[1] == -1, "train split beside a broken test_X.bin: %s", err.msg);
    ag_dataset_free(&ds);
    if (td_expect_fail("stl10", TD_SCRATCH "/s.tar", "test", 0, "test_X.bin has 5 bytes")) return 1;
    TEST_CHECK(ag_dataset_load(&ds, "stl10", TD_SCRATCH "/s.tar", "test", 0, &err) != 0 && !strncmp(err.msg, TD_SCRATCH "/s.tar: stl10_binary/", 39),
               "the archive named once: %s", err.msg);
    /* a CIFAR-10 batch whose header claims 100 MB: refused before anything is collected */
    end = td_tar_add(buf, 0, "cifar-10-batches-bin/data_batch_1.bin", x, 0);
    snprintf((char *)buf + 124, 12, "%011lo", 100000000ul);
    retag(buf, '0');
    TEST_CHECK(td_write(TD_SCRATCH "/c.tar", buf, end) == 0, "write");
    if (td_expect_fail("cifar10", TD_SCRATCH "/c.tar", "train", 0, "data_batch_1.bin has 100000000 bytes (too large)")) return 1;
    td_scratch_done();
    return 0;
}

/* ---- faults: FIFOs and devices, the end of a tar, gzip bombs, the folder loader's memory ----
   Each check that old code failed by hanging or by growing without bound runs in a child
   process, killed by alarm() after a few seconds and (for memory) under RLIMIT_AS, so a
   regression fails the test instead of stopping the suite. */
#if !defined(_WIN32)
#include <unistd.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/resource.h>

/* fn(arg) in a child killed after `seconds`; with headroom_mb > 0 the child's address space
   is limited to its current size plus that many MB. 0 when fn returned 0; otherwise says why. */
static int td_child(const char *what, int (*fn)(const void *), const void *arg, unsigned seconds, long headroom_mb) {
    pid_t pid;
    int st;
    fflush(stdout); fflush(stderr);
    pid = fork();
    if (pid < 0) { fprintf(stderr, "    %s: fork failed\n", what); return 1; }
    if (pid == 0) {
        alarm(seconds);
        if (headroom_mb > 0) {
            unsigned long pages = 0;
            FILE *f = fopen("/proc/self/statm", "r");
            struct rlimit rl;
            if (!f || fscanf(f, "%lu", &pages) != 1) _exit(3);
            fclose(f);
            rl.rlim_cur = rl.rlim_max = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + (rlim_t)headroom_mb * 1048576;
            if (setrlimit(RLIMIT_AS, &rl) != 0) _exit(3);
        }
        fflush(stderr);
        _exit(fn(arg) ? 1 : 0);
    }
    if (waitpid(pid, &st, 0) != pid) { fprintf(stderr, "    %s: waitpid failed\n", what); return 1; }
    if (WIFSIGNALED(st)) {
        fprintf(stderr, "    %s: %s\n", what, WTERMSIG(st) == SIGALRM ? "still running after the time limit (it hangs)" : "killed by a signal");
        return 1;
    }
    if (WEXITSTATUS(st) == 3) { fprintf(stderr, "    %s: could not limit the child's memory\n", what); return 1; }
    if (WEXITSTATUS(st)) { fprintf(stderr, "    %s: failed (above)\n", what); return 1; }
    return 0;
}

/* a reader given a FIFO or a device: an error naming the path and what it is */
typedef struct td_probe { int kind; const char *path, *want; } td_probe;
static int td_probe_run(const void *arg) {
    const td_probe *p = (const td_probe *)arg;
    ag_error err;
    ag_array a;
    ag_dataset ds;
    ag_zip z;
    unsigned char *b = NULL;
    size_t n;
    int r = 0;
    err.msg[0] = 0;
    switch (p->kind) {
    case 0: r = ag_read_file(p->path, &b, &n, &err); free(b); break;
    case 1: { td_crc c; memset(&c, 0, sizeof c); r = ag_tar_read(p->path, td_crc_cb, &c, &err); } break;
    case 2: r = ag_idx_read(p->path, &a, &err); if (!r) ag_array_free(&a); break;
    case 3: r = ag_png_read(p->path, 3, &a, &err); if (!r) ag_array_free(&a); break;
    case 4: r = ag_zip_open(&z, p->path, &err); if (!r) ag_zip_close(&z); break;
    case 5: r = ag_dataset_load(&ds, "cifar10", p->path, "test", 0, &err); break;
    case 6: r = ag_dataset_load(&ds, "mnist", p->path, "test", 0, &err); break;
    case 7: r = ag_dataset_load(&ds, "folder", p->path, NULL, 0, &err); break;
    case 8: r = ag_dataset_load(&ds, "stl10", p->path, "test", 0, &err); break;
    default: return 1;
    }
    if (r == 0) { fprintf(stderr, "    %s: read, expected an error containing '%s'\n", p->path, p->want); return 1; }
    if (!strstr(err.msg, p->want)) { fprintf(stderr, "    %s: message '%s' lacks '%s'\n", p->path, err.msg, p->want); return 1; }
    return 0;
}

static int test_fifo_and_devices(void) {
    static const char *const what[9] = { "ag_read_file", "ag_tar_read", "ag_idx_read", "ag_png_read", "ag_zip_open",
                                         "cifar10", "mnist", "folder", "stl10" };
    static const td_probe probes[] = {
        { 0, TD_SCRATCH "/pipe", TD_SCRATCH "/pipe: is a FIFO (named pipe), not a regular file" },
        { 1, TD_SCRATCH "/pipe", TD_SCRATCH "/pipe: is a FIFO" },
        { 2, TD_SCRATCH "/pipe", TD_SCRATCH "/pipe: is a FIFO" },
        { 3, TD_SCRATCH "/pipe", TD_SCRATCH "/pipe: is a FIFO" },
        { 4, TD_SCRATCH "/pipe", TD_SCRATCH "/pipe: is a FIFO" },
        { 5, TD_SCRATCH "/pipe", TD_SCRATCH "/pipe: is a FIFO" },                          /* the archive itself */
        { 5, TD_SCRATCH "/c", TD_SCRATCH "/c/test_batch.bin: is a FIFO" },                 /* a member of its folder */
        { 8, TD_SCRATCH "/s", TD_SCRATCH "/s/stl10_binary/test_X.bin: is a FIFO" },
        { 6, TD_SCRATCH "/m", TD_SCRATCH "/m/t10k-images-idx3-ubyte: is a FIFO" },         /* idx files of a folder */
        { 7, TD_SCRATCH "/p", TD_SCRATCH "/p/b.png: is a FIFO" },                          /* an image of a folder */
        { 0, "/dev/zero", "/dev/zero: is a character device, not a regular file" },
        { 5, "/dev/zero", "/dev/zero: is a character device" },                               /* ran for ever */
        { 1, "/dev/null", "/dev/null: is a character device" },
    };
    unsigned char px[4 * 5 * 3];
    ag_error err;
    char out[2048], label[96];
    size_t k;
    int rc;
    TEST_CHECK(td_scratch() == 0, "scratch");
    TEST_CHECK(system("mkdir -p " TD_SCRATCH "/c " TD_SCRATCH "/s/stl10_binary " TD_SCRATCH "/m " TD_SCRATCH "/p") == 0, "mkdir");
    TEST_CHECK(mkfifo(TD_SCRATCH "/pipe", 0600) == 0 && mkfifo(TD_SCRATCH "/c/test_batch.bin", 0600) == 0 &&
               mkfifo(TD_SCRATCH "/s/stl10_binary/test_X.bin", 0600) == 0 && mkfifo(TD_SCRATCH "/m/t10k-images-idx3-ubyte", 0600) == 0 &&
               mkfifo(TD_SCRATCH "/p/b.png", 0600) == 0, "mkfifo");
    TEST_CHECK(td_write(TD_SCRATCH "/m/t10k-labels-idx1-ubyte", "\0\0\x08\x01\0\0\0\0", 8) == 0 &&
               td_write(TD_SCRATCH "/s/stl10_binary/test_y.bin", "\1", 1) == 0, "write");
    memset(px, 100, sizeof px);
    TEST_CHECK(ag_png_write(TD_SCRATCH "/p/a.png", px, 5, 4, 3, &err) == 0, "%s", err.msg);
    for (k = 0; k < sizeof probes / sizeof probes[0]; k++) {
        snprintf(label, sizeof label, "%s(%s)", what[probes[k].kind], probes[k].path);
        if (td_child(label, td_probe_run, &probes[k], 5, 0)) return 1;
    }
    /* the program: refused at once, exit 1 with the message */
    rc = test_run_command("timeout 20 ./build/dataset --dataset cifar10 --data_path /dev/zero", out, sizeof out);
    TEST_CHECK(rc == 1 && strstr(out, "/dev/zero: is a character device, not a regular file"), "build/dataset /dev/zero: exit %d:\n%s", rc, out);
    rc = test_run_command("timeout 20 ./build/dataset --dataset folder --data_path " TD_SCRATCH "/p", out, sizeof out);
    TEST_CHECK(rc == 1 && strstr(out, "p/b.png: is a FIFO (named pipe), not a regular file"), "build/dataset FIFO image: exit %d:\n%s", rc, out);
    td_scratch_done();
    return 0;
}

/* raw DEFLATE stored blocks of in[0..n), none final; returns the new end of out */
static size_t td_stored_blocks(unsigned char *out, size_t at, const unsigned char *in, size_t n) {
    size_t i;
    for (i = 0; i < n; i += 65535) {
        size_t k = n - i < 65535 ? n - i : 65535;
        out[at++] = 0;
        out[at++] = (unsigned char)k; out[at++] = (unsigned char)(k >> 8);
        out[at++] = (unsigned char)~k; out[at++] = (unsigned char)(~k >> 8);
        memcpy(out + at, in + i, k); at += k;
    }
    return at;
}

static int test_tar_end_marker(void) {
    static unsigned char buf[16384], pay[1000];
    unsigned char *gz, *zeros;
    size_t end, i, at, tail = (size_t)3 << 20;
    td_tarlog lg;
    ag_error err;
    for (i = 0; i < sizeof pay; i++) pay[i] = (unsigned char)(i * 13 + 5);
    end = td_tar_add(buf, 0, "x/one.bin", pay, sizeof pay);
    end = td_tar_add(buf, end, "x/two.bin", pay, 10);
    /* two zero blocks, then garbage that is no tar header: the members, and no error */
    memset(buf + end, 0, 1024);
    for (i = 0; i < 3000; i++) buf[end + 1024 + i] = (unsigned char)(i * 7 + 1);
    TEST_CHECK(td_scratch() == 0, "scratch");
    TEST_CHECK(td_write(TD_SCRATCH "/g.tar", buf, end + 1024 + 3000) == 0, "write");
    memset(&lg, 0, sizeof lg); lg.order_ok = 1;
    TEST_CHECK(ag_tar_read(TD_SCRATCH "/g.tar", td_tar_cb, &lg, &err) == 0, "garbage after the end: %s", err.msg);
    TEST_CHECK(lg.n == 2 && lg.order_ok && lg.got[0] == sizeof pay && lg.got[1] == 10, "members %d", lg.n);
    memset(&lg, 0, sizeof lg); lg.order_ok = 1;
    TEST_CHECK(ag_tar_read_from_memory(buf, end + 1024 + 3000, td_tar_cb, &lg, &err) == 0 && lg.n == 2, "from memory: %s", err.msg);
    /* a single zero block, then the end of the file */
    TEST_CHECK(td_write(TD_SCRATCH "/one.tar", buf, end + 512) == 0, "write");
    memset(&lg, 0, sizeof lg); lg.order_ok = 1;
    TEST_CHECK(ag_tar_read(TD_SCRATCH "/one.tar", td_tar_cb, &lg, &err) == 0 && lg.n == 2, "one zero block: %s", err.msg);
    /* gzipped: the DEFLATE stream goes on for 3 MB of zeros past the end blocks and then turns
       invalid (a block of type 3); the reading stops before it */
    zeros = (unsigned char *)calloc(tail, 1);
    gz = (unsigned char *)malloc(tail + tail / 65535 * 5 + end + 4096);
    TEST_CHECK(zeros && gz, "oom");
    memcpy(gz, "\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff", 10);
    at = td_stored_blocks(gz, 10, buf, end);
    at = td_stored_blocks(gz, at, zeros, tail);
    gz[at++] = 0x07;   /* BFINAL 1, BTYPE 3 */
    memset(gz + at, 0, 16); at += 16;
    TEST_CHECK(td_write(TD_SCRATCH "/g.tar.gz", gz, at) == 0, "write");
    memset(&lg, 0, sizeof lg); lg.order_ok = 1;
    TEST_CHECK(ag_tar_read(TD_SCRATCH "/g.tar.gz", td_tar_cb, &lg, &err) == 0, "gzip read past the end of the archive: %s", err.msg);
    TEST_CHECK(lg.n == 2 && lg.got[0] == sizeof pay && lg.got[1] == 10, "gz members %d", lg.n);
    memset(&lg, 0, sizeof lg); lg.order_ok = 1;
    TEST_CHECK(ag_tar_read_from_memory(gz, at, td_tar_cb, &lg, &err) == 0 && lg.n == 2, "gz from memory: %s", err.msg);
    free(zeros); free(gz);
    td_scratch_done();
    return 0;
}

/* an idx.gz whose header says uint8 [5][10][10] (500 bytes) while its DEFLATE stream goes
   on to ~100 MB of zeros (650 KB compressed: fixed-Huffman matches of 258 at distance 1) */
typedef struct td_bits { unsigned char *p; size_t n; uint32_t acc; int nb; } td_bits;
static void td_put(td_bits *b, uint32_t v, int n) {   /* LSB first */
    b->acc |= v << b->nb; b->nb += n;
    while (b->nb >= 8) { b->p[b->n++] = (unsigned char)b->acc; b->acc >>= 8; b->nb -= 8; }
}
static void td_put_code(td_bits *b, uint32_t code, int len) {   /* Huffman codes MSB first */
    int i;
    for (i = len - 1; i >= 0; i--) td_put(b, (code >> i) & 1u, 1);
}
static unsigned char *td_idx_bomb(size_t *len) {
    static const unsigned char hdr[16] = { 0, 0, 8, 3, 0, 0, 0, 5, 0, 0, 0, 10, 0, 0, 0, 10 };
    size_t matches = 400000, i;   /* 1 + 400,000 x 258 = 103,200,001 bytes after the header */
    td_bits b;
    b.p = (unsigned char *)malloc(matches * 13 / 8 + 1024);
    if (!b.p) return NULL;
    b.n = 0; b.acc = 0; b.nb = 0;
    memcpy(b.p, "\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff", 10); b.n = 10;
    b.n = td_stored_blocks(b.p, b.n, hdr, sizeof hdr);
    td_put(&b, 1, 1); td_put(&b, 1, 2);            /* final, fixed Huffman */
    td_put_code(&b, 0x30, 8);                       /* literal 0 */
    for (i = 0; i < matches; i++) { td_put_code(&b, 0xc5, 8); td_put_code(&b, 0, 5); }   /* length 258 (285), distance 1 */
    td_put_code(&b, 0, 7);                          /* end of block */
    if (b.nb) td_put(&b, 0, 8 - b.nb);
    memset(b.p + b.n, 0, 8); b.n += 8;              /* CRC-32 and length (never reached) */
    *len = b.n;
    return b.p;
}

static int td_bomb_run(const void *arg) {
    ag_array a;
    ag_error err;
    err.msg[0] = 0;
    if (ag_idx_read((const char *)arg, &a, &err) == 0) { fprintf(stderr, "    the bomb was read\n"); ag_array_free(&a); return 1; }
    if (!strstr(err.msg, "bomb.gz: idx: the header's shape needs 500 data bytes, the gzipped data holds more")) {
        fprintf(stderr, "    message: %s\n", err.msg);
        return 1;
    }
    return 0;
}

static int test_gzip_idx_bomb(void) {
    size_t len;
    unsigned char *bomb = td_idx_bomb(&len);
    TEST_CHECK(bomb != NULL, "oom");
    TEST_CHECK(len < 700000, "the bomb is %lu bytes", (unsigned long)len);
    TEST_CHECK(td_scratch() == 0 && td_write(TD_SCRATCH "/bomb.gz", bomb, len) == 0, "write");
    free(bomb);
    /* refused with its message, in 20 s and 48 MB more address space (inflating it whole
       took ~200 MB) */
    if (td_child("ag_idx_read(bomb.gz)", td_bomb_run, TD_SCRATCH "/bomb.gz", 20, 48)) return 1;
    td_scratch_done();
    return 0;
}

/* 32 PNGs of 1024 x 1024 RGB (3 MB each decoded) load resized to 16 x 16 within 64 MB of
   address space: decoding them all before resizing needed ~100 MB more */
static int test_folder_peak_memory(void) {
    unsigned char *px = (unsigned char *)malloc((size_t)1024 * 1024 * 3), *png;
    size_t len, i;
    ag_error err;
    char out[2048], path[256];
    int rc;
    TEST_CHECK(px != NULL, "oom");
    for (i = 0; i < (size_t)1024 * 1024 * 3; i++) px[i] = (unsigned char)((i / 3 % 1024) * 3 + i / 3072 + (i % 3) * 50);
    TEST_CHECK(td_scratch() == 0 && system("mkdir -p " TD_SCRATCH "/big") == 0, "scratch");
    TEST_CHECK(ag_png_write(TD_SCRATCH "/big/00.png", px, 1024, 1024, 3, &err) == 0, "%s", err.msg);
    free(px);
    png = rd_load_abs(TD_SCRATCH "/big/00.png", &len);
    TEST_CHECK(png != NULL, "load");
    for (i = 1; i < 32; i++) {
        snprintf(path, sizeof path, TD_SCRATCH "/big/%02d.png", (int)i);
        TEST_CHECK(td_write(path, png, len) == 0, "write");
    }
    free(png);
    rc = test_run_command("ulimit -v 65536 && OMP_NUM_THREADS=2 OMP_WAIT_POLICY=passive ./build/dataset --dataset folder --data_path "
                          TD_SCRATCH "/big --img_size 16", out, sizeof out);
    TEST_CHECK(rc == 0 && strstr(out, "folder (train): 32 images of 16 x 16 x 3"), "exit %d:\n%s", rc, out);
    td_scratch_done();
    return 0;
}
#endif

const test_case tests_data[] = {
    { "data/resize_pil_golden", test_resize_pil_golden },
    { "data/gzip_idx", test_gzip_idx },
    { "data/tar", test_tar },
    { "data/tar_streamed_files", test_tar_streamed_files },
    { "data/cifar10", test_cifar10 },
    { "data/stl10", test_stl10 },
    { "data/mnist_and_default", test_mnist_and_default },
    { "data/png_folder", test_png_folder },
    { "data/extracted_folders", test_extracted_folders },
    { "data/bad_input", test_bad_archives },
    { "data/shuffle_uniform", test_shuffle_uniform },
    { "data/loader", test_loader },
    { "data/train_dataset_resume", test_train_dataset_resume },
    { "data/archive_members_bounded", test_archive_members_bounded },
#if !defined(_WIN32)
    { "data/fifo_and_devices", test_fifo_and_devices },
    { "data/tar_end_marker", test_tar_end_marker },
    { "data/gzip_idx_bomb", test_gzip_idx_bomb },
    { "data/folder_peak_memory", test_folder_peak_memory },
#endif
    { 0, 0 }
};
