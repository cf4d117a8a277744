/* test_readers.c - tests of the file readers and writers (deflate, zip, npy/npz, PNG, .pth).
 *
 * Included after the header with its implementation (the tests also call a few private
 * ag__ functions: ag__inflate, ag__deflate_zlib). Input files come from tests/data/, made by
 * tests/data/make_reader_files.py; values there are simple formulas checked exactly here.
 * Scratch files are written to the current directory and removed. */
#include "test.h"

#ifndef AG_TEST_DATA_DIR
#define AG_TEST_DATA_DIR "tests/data/"
#endif

/* ---- helpers ---- */

static unsigned char *rd_load(const char *name, size_t *len) {
    char path[512];
    unsigned char *buf = NULL;
    ag_error err;
    snprintf(path, sizeof path, "%s%s", AG_TEST_DATA_DIR, name);
    if (ag_read_file(path, &buf, len, &err)) {
        fprintf(stderr, "    cannot load test file: %s\n", err.msg);
        return NULL;
    }
    return buf;
}

static int rd_contains(const char *hay, const char *needle) { return strstr(hay, needle) != NULL; }

static int rd_is_zero(const void *p, size_t n) {
    const unsigned char *b = (const unsigned char *)p;
    size_t i;
    for (i = 0; i < n; i++) if (b[i]) return 0;
    return 1;
}

/* Flatten an array to floats (for value checks); caller frees. */
static float *rd_f32(const ag_array *a) {
    int64_t n = ag_array_numel(a);
    float *f = (float *)malloc((size_t)(n ? n : 1) * sizeof *f);
    ag_error err;
    if (f && ag_array_to_f32(a, f, &err)) { free(f); return NULL; }
    return f;
}

static int rd_shape_is(const ag_array *a, int ndim, int64_t d0, int64_t d1, int64_t d2) {
    int64_t want[3];
    int k;
    want[0] = d0; want[1] = d1; want[2] = d2;
    if (a->ndim != ndim) return 0;
    for (k = 0; k < ndim && k < 3; k++) if (a->shape[k] != want[k]) return 0;
    return 1;
}

/* Two arrays identical in name, dtype, shape and bytes. */
static int rd_same_array(const ag_array *a, const ag_array *b) {
    int k;
    if (a->dtype != b->dtype || a->ndim != b->ndim || a->nbytes != b->nbytes) return 0;
    for (k = 0; k < a->ndim; k++) if (a->shape[k] != b->shape[k]) return 0;
    if ((a->name == NULL) != (b->name == NULL) || (a->name && strcmp(a->name, b->name))) return 0;
    return a->nbytes == 0 || memcmp(a->data, b->data, a->nbytes) == 0;
}

static int rd_same_list(const ag_array_list *a, const ag_array_list *b) {
    int k;
    if (a->count != b->count) return 0;
    for (k = 0; k < a->count; k++) if (!rd_same_array(&a->items[k], &b->items[k])) return 0;
    return 1;
}

/* ---- checksums and DEFLATE ---- */

static int test_checksums(void) {
    TEST_CHECK(ag_crc32(0, "123456789", 9) == 0xCBF43926u, "crc32 check value");
    TEST_CHECK(ag_crc32(ag_crc32(0, "1234", 4), "56789", 5) == 0xCBF43926u, "crc32 incremental");
    TEST_CHECK(ag_crc32(0, "", 0) == 0, "crc32 of nothing");
    TEST_CHECK(ag_adler32(1, "Wikipedia", 9) == 0x11E60398u, "adler32 check value");
    TEST_CHECK(ag_adler32(1, "", 0) == 1, "adler32 of nothing");
    {   /* the sliced path for long inputs agrees with byte-at-a-time updates */
        size_t n = 200003, k;
        unsigned char *b = (unsigned char *)malloc(n);
        uint32_t whole, parts = 0, a1, a2 = 1;
        for (k = 0; k < n; k++) b[k] = (unsigned char)(k * 2654435761u >> 13);
        whole = ag_crc32(0, b, n);
        for (k = 0; k < n; k += 999) parts = ag_crc32(parts, b + k, n - k < 999 ? n - k : 999);
        a1 = ag_adler32(1, b, n);
        for (k = 0; k < n; k += 999) a2 = ag_adler32(a2, b + k, n - k < 999 ? n - k : 999);
        free(b);
        TEST_CHECK(whole == parts, "crc32 sliced %08lx vs bytewise %08lx", (unsigned long)whole, (unsigned long)parts);
        TEST_CHECK(a1 == a2, "adler32 in parts");
    }
    return 0;
}

static int test_inflate_zlib_files(void) {
    static const char *files[] = { "defl_l0.zlib", "defl_l1.zlib", "defl_l9.zlib", "defl_fixed.zlib",
                                   "defl_huff.zlib", "defl_multi.zlib" };
    size_t clen, zlen, olen, used, f;
    unsigned char *content = rd_load("defl_content.bin", &clen), *z, *o;
    ag_error err;
    TEST_CHECK(content != NULL, "content");
    for (f = 0; f < sizeof files / sizeof files[0]; f++) {
        z = rd_load(files[f], &zlen);
        TEST_CHECK(z != NULL, "%s", files[f]);
        TEST_CHECK(ag__inflate(z, zlen, 1, 0, (size_t)1 << 20, &o, &olen, &used, &err) == 0, "%s: %s", files[f], err.msg);
        TEST_CHECK(olen == clen && memcmp(o, content, clen) == 0, "%s: inflated bytes differ (%lu vs %lu)", files[f],
                   (unsigned long)olen, (unsigned long)clen);
        TEST_CHECK(used == zlen, "%s: consumed %lu of %lu", files[f], (unsigned long)used, (unsigned long)zlen);
        free(o);
        /* an exact-size limit works, one byte less is refused */
        TEST_CHECK(ag__inflate(z, zlen, 1, clen, clen, &o, &olen, NULL, &err) == 0, "%s exact limit", files[f]);
        free(o);
        err.msg[0] = '\0';
        TEST_CHECK(ag__inflate(z, zlen, 1, 0, clen - 1, &o, &olen, NULL, &err) == -1 && o == NULL, "%s limit", files[f]);
        TEST_CHECK(rd_contains(err.msg, "limit"), "%s: message '%s'", files[f], err.msg);
        free(z);
    }
    free(content);
    return 0;
}

static int test_inflate_raw_and_empty(void) {
    size_t clen, zlen, olen;
    unsigned char *content = rd_load("defl_content.bin", &clen), *z, *o;
    ag_error err;
    z = rd_load("defl_raw.deflate", &zlen);
    TEST_CHECK(content && z, "load");
    TEST_CHECK(ag__inflate(z, zlen, 0, 0, (size_t)1 << 20, &o, &olen, NULL, &err) == 0, "raw: %s", err.msg);
    TEST_CHECK(olen == clen && memcmp(o, content, clen) == 0, "raw inflate differs");
    free(o);
    /* the raw stream is not a zlib stream */
    TEST_CHECK(ag__inflate(z, zlen, 1, 0, (size_t)1 << 20, &o, &olen, NULL, &err) == -1, "raw as zlib accepted");
    free(z);
    free(content);
    z = rd_load("defl_empty.zlib", &zlen);
    TEST_CHECK(z != NULL, "load empty");
    TEST_CHECK(ag__inflate(z, zlen, 1, 0, 16, &o, &olen, NULL, &err) == 0 && olen == 0, "empty: %s", err.msg);
    free(o);
    free(z);
    return 0;
}

/* Every proper prefix of a zlib stream must fail (the checksum is at the end). */
static int test_inflate_truncated_and_flipped(void) {
    size_t clen, zlen, olen, cut, i;
    unsigned char *content = rd_load("defl_content.bin", &clen), *z = rd_load("defl_l9.zlib", &zlen), *o, *bad;
    ag_error err;
    TEST_CHECK(content && z, "load");
    for (cut = 0; cut < zlen; cut++) {
        err.msg[0] = '\0';
        o = (unsigned char *)1;
        TEST_CHECK(ag__inflate(z, cut, 1, 0, (size_t)1 << 20, &o, &olen, NULL, &err) == -1, "prefix of %lu bytes accepted",
                   (unsigned long)cut);
        TEST_CHECK(o == NULL && olen == 0 && err.msg[0], "failure left output or no message at cut %lu", (unsigned long)cut);
    }
    bad = (unsigned char *)malloc(zlen);
    for (i = 0; i < zlen; i++) {   /* a flipped byte: refused, or (unused bits) the same output */
        memcpy(bad, z, zlen);
        bad[i] ^= (unsigned char)(0x5a ^ i);
        if (ag__inflate(bad, zlen, 1, 0, (size_t)1 << 20, &o, &olen, NULL, &err) == 0) {
            TEST_CHECK(olen == clen && memcmp(o, content, clen) == 0, "flip at %lu gave different output unnoticed", (unsigned long)i);
            free(o);
        } else TEST_CHECK(err.msg[0] != '\0', "no message");
    }
    free(bad);
    free(z);
    free(content);
    return 0;
}

static int test_inflate_bad_streams(void) {
    /* hand-made raw DEFLATE streams */
    static const unsigned char type3[] = { 0x07 };                          /* final, type 3 */
    static const unsigned char stored_bad[] = { 0x01, 0x05, 0x00, 0x00, 0x00, 'a', 'b', 'c', 'd', 'e' };  /* NLEN wrong */
    static const unsigned char stored_ok[] = { 0x01, 0x05, 0x00, 0xfa, 0xff, 'a', 'b', 'c', 'd', 'e' };
    static const unsigned char bad_zhdr[] = { 0x78, 0x9d, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01 };
    static const unsigned char bad_adler[] = { 0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x02 };
    static const unsigned char good_empty[] = { 0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01 };
    static const unsigned char dict[] = { 0x78, 0xbb, 0x00, 0x00, 0x00, 0x01, 0x03, 0x00 };
    unsigned char *o, far_dist[16], overs[16];
    size_t olen;
    ag_error err;
    ag__bitw w;
    /* fixed block: 'a', then a match of 3 at distance 5 (before the start), end */
    memset(&w, 0, sizeof w);
    w.buf = far_dist; w.cap = sizeof far_dist;
    ag__bw_put(&w, 1, 1); ag__bw_put(&w, 1, 2);
    ag__bw_fixed_sym(&w, 'a'); ag__bw_fixed_sym(&w, 257); ag__bw_code(&w, 4, 5); ag__bw_put(&w, 0, 1);
    ag__bw_fixed_sym(&w, 256); ag__bw_put(&w, 0, 7);
    TEST_CHECK(ag__inflate(far_dist, w.len, 0, 0, 100, &o, &olen, NULL, &err) == -1 && rd_contains(err.msg, "distance"), "far: %s", err.msg);
    /* the same with distance 1 is fine: "aaaa" */
    memset(&w, 0, sizeof w);
    w.buf = far_dist; w.cap = sizeof far_dist;
    ag__bw_put(&w, 1, 1); ag__bw_put(&w, 1, 2);
    ag__bw_fixed_sym(&w, 'a'); ag__bw_fixed_sym(&w, 257); ag__bw_code(&w, 0, 5);
    ag__bw_fixed_sym(&w, 256); ag__bw_put(&w, 0, 7);
    TEST_CHECK(ag__inflate(far_dist, w.len, 0, 0, 100, &o, &olen, NULL, &err) == 0 && olen == 4 && !memcmp(o, "aaaa", 4), "near: %s", err.msg);
    free(o);
    /* dynamic block whose code-length code is over-subscribed: four codes of length 1 */
    memset(&w, 0, sizeof w);
    w.buf = overs; w.cap = sizeof overs;
    ag__bw_put(&w, 1, 1); ag__bw_put(&w, 2, 2); ag__bw_put(&w, 0, 5); ag__bw_put(&w, 0, 5); ag__bw_put(&w, 0, 4);
    ag__bw_put(&w, 1, 3); ag__bw_put(&w, 1, 3); ag__bw_put(&w, 1, 3); ag__bw_put(&w, 1, 3); ag__bw_put(&w, 0, 8);
    TEST_CHECK(ag__inflate(type3, sizeof type3, 0, 0, 100, &o, &olen, NULL, &err) == -1 && rd_contains(err.msg, "block type"), "type 3: %s", err.msg);
    TEST_CHECK(ag__inflate(stored_bad, sizeof stored_bad, 0, 0, 100, &o, &olen, NULL, &err) == -1 && rd_contains(err.msg, "length check"), "stored: %s", err.msg);
    TEST_CHECK(ag__inflate(stored_ok, sizeof stored_ok, 0, 0, 100, &o, &olen, NULL, &err) == 0 && olen == 5 && !memcmp(o, "abcde", 5), "stored ok: %s", err.msg);
    free(o);
    TEST_CHECK(ag__inflate(stored_ok, sizeof stored_ok - 1, 0, 0, 100, &o, &olen, NULL, &err) == -1, "short stored");
    TEST_CHECK(ag__inflate(bad_zhdr, sizeof bad_zhdr, 1, 0, 100, &o, &olen, NULL, &err) == -1 && rd_contains(err.msg, "header"), "zlib header: %s", err.msg);
    TEST_CHECK(ag__inflate(bad_adler, sizeof bad_adler, 1, 0, 100, &o, &olen, NULL, &err) == -1 && rd_contains(err.msg, "adler"), "adler: %s", err.msg);
    TEST_CHECK(ag__inflate(good_empty, sizeof good_empty, 1, 0, 100, &o, &olen, NULL, &err) == 0 && olen == 0, "empty zlib: %s", err.msg);
    free(o);
    TEST_CHECK(ag__inflate(dict, sizeof dict, 1, 0, 100, &o, &olen, NULL, &err) == -1 && rd_contains(err.msg, "dictionary"), "dict: %s", err.msg);
    TEST_CHECK(ag__inflate(overs, w.len, 0, 0, 100, &o, &olen, NULL, &err) == -1 && rd_contains(err.msg, "code-length"), "oversubscribed: %s", err.msg);
    TEST_CHECK(ag__inflate(NULL, 0, 0, 0, 100, &o, &olen, NULL, &err) == -1, "nothing accepted");
    return 0;
}

static int test_deflate_roundtrip(void) {
    size_t clen, zlen, olen, n, i, sizes[5];
    unsigned char *content = rd_load("defl_content.bin", &clen), *z, *o, *big;
    uint32_t s = 12345;
    ag_error err;
    TEST_CHECK(content != NULL, "load");
    TEST_CHECK(ag__deflate_zlib(content, clen, &z, &zlen, &err) == 0, "deflate: %s", err.msg);
    TEST_CHECK(zlen < clen * 6 / 10, "weak compression: %lu -> %lu", (unsigned long)clen, (unsigned long)zlen);
    TEST_CHECK(ag__inflate(z, zlen, 1, 0, clen, &o, &olen, NULL, &err) == 0 && olen == clen && !memcmp(o, content, clen), "roundtrip");
    free(o);
    free(z);
    free(content);
    /* > 32 KB with repeats far apart, runs and noise: exercises the sliding window */
    n = 300000;
    big = (unsigned char *)malloc(n);
    for (i = 0; i < n; i++) {
        s = s * 1103515245u + 12345u;
        if ((i / 5000) % 3 == 0) big[i] = (unsigned char)(s >> 24);
        else if ((i / 5000) % 3 == 1) big[i] = big[i % 5000];
        else big[i] = (unsigned char)(i / 700);
    }
    sizes[0] = 0; sizes[1] = 1; sizes[2] = 2; sizes[3] = 3; sizes[4] = n;
    for (i = 0; i < 5; i++) {
        TEST_CHECK(ag__deflate_zlib(big, sizes[i], &z, &zlen, &err) == 0, "deflate %lu", (unsigned long)sizes[i]);
        TEST_CHECK(ag__inflate(z, zlen, 1, 0, n, &o, &olen, NULL, &err) == 0 && olen == sizes[i] &&
                   (olen == 0 || !memcmp(o, big, olen)), "roundtrip of %lu bytes: %s", (unsigned long)sizes[i], err.msg);
        free(o);
        free(z);
    }
    free(big);
    return 0;
}

/* ---- zip ---- */

static int test_zip_read(void) {
    size_t len, dlen;
    unsigned char *buf = rd_load("zip_mixed.zip", &len), *d;
    const unsigned char *v;
    ag_zip z;
    ag_error err;
    int i, k;
    TEST_CHECK(buf != NULL, "load");
    TEST_CHECK(ag_zip_open_from_memory(&z, buf, len, &err) == 0, "open: %s", err.msg);
    TEST_CHECK(z.count == 5, "count %d", z.count);
    TEST_CHECK(ag_zip_find(&z, "deflated.bin") == 2 && ag_zip_find(&z, "nope") == -1, "find");
    TEST_CHECK(ag_zip_find_suffix(&z, "stored.txt") == 1 && ag_zip_find_suffix(&z, ".zzz") == -1, "find_suffix");
    i = ag_zip_find(&z, "dir/stored.txt");
    TEST_CHECK(ag_zip_extract(&z, i, 0, &d, &dlen, &err) == 0 && dlen == 60 && !memcmp(d, "hello stored member\nhello", 25), "stored: %s", err.msg);
    free(d);
    TEST_CHECK(ag_zip_view(&z, i, &v, &dlen, &err) == 0 && dlen == 60 && v[0] == 'h', "view: %s", err.msg);
    i = ag_zip_find(&z, "deflated.bin");
    TEST_CHECK(z.entries[i].method == 8, "method");
    TEST_CHECK(ag_zip_extract(&z, i, 0, &d, &dlen, &err) == 0 && dlen == 2048, "deflated: %s", err.msg);
    for (k = 0; k < 2048; k++) TEST_CHECK(d[k] == (unsigned char)k, "deflated byte %d", k);
    free(d);
    TEST_CHECK(ag_zip_extract(&z, i, 2047, &d, &dlen, &err) == -1 && rd_contains(err.msg, "too large"), "max_size: %s", err.msg);
    TEST_CHECK(ag_zip_view(&z, i, &v, &dlen, &err) == -1 && rd_contains(err.msg, "compressed"), "view of deflated: %s", err.msg);
    i = ag_zip_find(&z, "bzip2.bin");
    TEST_CHECK(ag_zip_extract(&z, i, 0, &d, &dlen, &err) == -1 && rd_contains(err.msg, "method 12") && rd_contains(err.msg, "bzip2.bin"),
               "bzip2: %s", err.msg);
    i = ag_zip_find(&z, "empty.txt");
    TEST_CHECK(ag_zip_extract(&z, i, 0, &d, &dlen, &err) == 0 && dlen == 0, "empty: %s", err.msg);
    free(d);
    TEST_CHECK(ag_zip_extract(&z, 99, 0, &d, &dlen, &err) == -1, "bad index");
    ag_zip_close(&z);
    TEST_CHECK(rd_is_zero(&z, sizeof z), "close zeroes");
    free(buf);
    return 0;
}

static int test_zip_encrypted_zip64(void) {
    size_t len, dlen;
    unsigned char *buf = rd_load("zip_encrypted.zip", &len), *d;
    ag_zip z;
    ag_error err;
    int k;
    TEST_CHECK(buf != NULL, "load");
    TEST_CHECK(ag_zip_open_from_memory(&z, buf, len, &err) == 0, "open: %s", err.msg);
    TEST_CHECK(ag_zip_extract(&z, 0, 0, &d, &dlen, &err) == -1 && rd_contains(err.msg, "encrypted"), "encrypted: %s", err.msg);
    ag_zip_close(&z);
    free(buf);
    buf = rd_load("zip_zip64.zip", &len);
    TEST_CHECK(buf != NULL, "load");
    TEST_CHECK(ag_zip_open_from_memory(&z, buf, len, &err) == 0 && z.count == 2, "zip64 open: %s", err.msg);
    TEST_CHECK(z.entries[1].size == 40 && z.entries[1].local_offset > 0, "zip64 sizes/offset from the extra field");
    TEST_CHECK(ag_zip_extract(&z, 0, 0, &d, &dlen, &err) == 0 && dlen == 16 && !memcmp(d, "zip64 member one", 16), "zip64 #0: %s", err.msg);
    free(d);
    TEST_CHECK(ag_zip_extract(&z, 1, 0, &d, &dlen, &err) == 0 && dlen == 40, "zip64 #1: %s", err.msg);
    for (k = 0; k < 40; k++) TEST_CHECK(d[k] == k, "zip64 byte %d", k);
    free(d);
    ag_zip_close(&z);
    free(buf);
    return 0;
}

static int test_zip_corrupt(void) {
    size_t len, cut, i, dlen, dlen0;
    unsigned char *buf = rd_load("zip_mixed.zip", &len), *bad, *d, *d0;
    ag_zip z, z0;
    ag_error err;
    int k;
    TEST_CHECK(buf != NULL, "load");
    TEST_CHECK(ag_zip_open_from_memory(&z0, buf, len, &err) == 0, "open");
    bad = (unsigned char *)malloc(len);
    /* truncation: open fails, or every member extracts as before or fails */
    for (cut = 0; cut < len; cut++) {
        memcpy(bad, buf, cut);
        if (ag_zip_open_from_memory(&z, bad, cut, &err)) {
            TEST_CHECK(err.msg[0] && rd_is_zero(&z, sizeof z), "cut %lu: no message or output not zeroed", (unsigned long)cut);
            continue;
        }
        for (k = 0; k < z.count && k < z0.count; k++) {
            if (ag_zip_extract(&z, k, 0, &d, &dlen, &err) == 0) {
                TEST_CHECK(ag_zip_extract(&z0, k, 0, &d0, &dlen0, &err) == 0, "original");
                TEST_CHECK(dlen == dlen0 && !memcmp(d, d0, dlen), "cut %lu member %d: different bytes", (unsigned long)cut, k);
                free(d0);
                free(d);
            }
        }
        ag_zip_close(&z);
    }
    /* flipped bytes: no crash; extracted members are right or refused (CRC) */
    for (i = 0; i < len; i++) {
        memcpy(bad, buf, len);
        bad[i] ^= 0xff;
        if (ag_zip_open_from_memory(&z, bad, len, &err)) continue;
        for (k = 0; k < z.count; k++) {
            int j = ag_zip_find(&z0, z.entries[k].name);
            if (ag_zip_extract(&z, k, 0, &d, &dlen, &err) == 0) {
                if (j >= 0 && ag_zip_extract(&z0, j, 0, &d0, &dlen0, &err) == 0) {
                    TEST_CHECK(dlen == dlen0 && !memcmp(d, d0, dlen), "flip at %lu: member '%s' changed unnoticed", (unsigned long)i, z.entries[k].name);
                    free(d0);
                }
                free(d);
            }
        }
        ag_zip_close(&z);
    }
    free(bad);
    ag_zip_close(&z0);
    /* huge declared sizes in the central directory */
    {
        size_t cd;
        for (cd = len - 4; cd > 0 && memcmp(buf + cd, "PK\1\2", 4); cd--) {}
        bad = (unsigned char *)malloc(len);
        memcpy(bad, buf, len);
        /* the last central entry is empty.txt (stored, 0 bytes): claim 2 GB */
        bad[cd + 24] = bad[cd + 20] = 0xff;
        bad[cd + 25] = bad[cd + 21] = 0xff;
        bad[cd + 26] = bad[cd + 22] = 0xff;
        bad[cd + 27] = bad[cd + 23] = 0x7f;
        TEST_CHECK(ag_zip_open_from_memory(&z, bad, len, &err) == 0, "open");
        TEST_CHECK(ag_zip_extract(&z, 4, 0, &d, &dlen, &err) == -1 && rd_contains(err.msg, "outside"), "huge stored: %s", err.msg);
        ag_zip_close(&z);
        memcpy(bad, buf, len);
        for (cd = len - 4; cd > 0 && memcmp(buf + cd, "PK\1\2", 4); cd--) {}
        for (cd = cd - 1; cd > 0 && memcmp(buf + cd, "PK\1\2", 4); cd--) {}
        for (cd = cd - 1; cd > 0 && memcmp(buf + cd, "PK\1\2", 4); cd--) {}   /* deflated.bin */
        TEST_CHECK(!memcmp(buf + cd + 46, "deflated.bin", 12), "found the entry");
        bad[cd + 24] = bad[cd + 25] = bad[cd + 26] = 0xff;
        bad[cd + 27] = 0x7f;
        TEST_CHECK(ag_zip_open_from_memory(&z, bad, len, &err) == 0, "open");
        TEST_CHECK(ag_zip_extract(&z, 2, 0, &d, &dlen, &err) == -1 && rd_contains(err.msg, "implausible"), "bomb: %s", err.msg);
        ag_zip_close(&z);
        free(bad);
    }
    TEST_CHECK(ag_zip_open_from_memory(&z, (const unsigned char *)"PK\3\4 not a zip at all, no end record", 37, &err) == -1 &&
               rd_contains(err.msg, "end of central directory"), "garbage: %s", err.msg);
    TEST_CHECK(ag_zip_open(&z, AG_TEST_DATA_DIR "does_not_exist.zip", &err) == -1 && rd_contains(err.msg, "does_not_exist.zip"),
               "missing file: %s", err.msg);
    free(buf);
    return 0;
}

static int test_zip_write(void) {
    ag_zip_writer w;
    ag_zip z;
    ag_error err;
    unsigned char *zipb, *d, big[3000];
    size_t zlen, dlen, k;
    memset(&w, 0, sizeof w);
    for (k = 0; k < sizeof big; k++) big[k] = (unsigned char)(k * 7);
    TEST_CHECK(ag_zip_writer_add(&w, "a.txt", "hello", 5, &err) == 0, "add: %s", err.msg);
    TEST_CHECK(ag_zip_writer_add(&w, "dir/big.bin", big, sizeof big, &err) == 0, "add big");
    TEST_CHECK(ag_zip_writer_add(&w, "empty", NULL, 0, &err) == 0, "add empty");
    TEST_CHECK(ag_zip_writer_add(&w, "", "x", 1, &err) == -1, "empty name accepted");
    TEST_CHECK(ag_zip_writer_finish(&w, &zipb, &zlen, &err) == 0, "finish: %s", err.msg);
    TEST_CHECK(rd_is_zero(&w, sizeof w), "writer reset");
    TEST_CHECK(ag_zip_open_from_memory(&z, zipb, zlen, &err) == 0 && z.count == 3, "reopen: %s", err.msg);
    TEST_CHECK(ag_zip_extract(&z, ag_zip_find(&z, "a.txt"), 0, &d, &dlen, &err) == 0 && dlen == 5 && !memcmp(d, "hello", 5), "a.txt");
    free(d);
    TEST_CHECK(ag_zip_extract(&z, ag_zip_find(&z, "dir/big.bin"), 0, &d, &dlen, &err) == 0 && dlen == sizeof big && !memcmp(d, big, dlen), "big");
    free(d);
    TEST_CHECK(ag_zip_extract(&z, 2, 0, &d, &dlen, &err) == 0 && dlen == 0, "empty");
    free(d);
    ag_zip_close(&z);
    free(zipb);
    return 0;
}

/* ---- npy / npz ---- */

static int rd_read_npy(const char *name, ag_array *a) {
    size_t len;
    unsigned char *buf = rd_load(name, &len);
    ag_error err;
    int r;
    if (!buf) return -1;
    r = ag_npy_read_from_memory(buf, len, a, &err);
    if (r) fprintf(stderr, "    %s: %s\n", name, err.msg);
    free(buf);
    return r;
}

static int test_npy_read(void) {
    ag_array a;
    float *f;
    int64_t i64[5];
    int32_t i32;
    int16_t i16[3];
    int k;
    TEST_CHECK(rd_read_npy("npy_f4_2x3.npy", &a) == 0 && a.dtype == AG_DTYPE_F32 && rd_shape_is(&a, 2, 2, 3, 0), "f4");
    for (k = 0; k < 6; k++) TEST_CHECK(((float *)a.data)[k] == k * 0.5f - 1, "f4[%d] = %g", k, ((float *)a.data)[k]);
    TEST_CHECK(a.name == NULL && a.nbytes == 24, "name / nbytes");
    ag_array_free(&a);
    TEST_CHECK(rd_read_npy("npy_f8_4x1.npy", &a) == 0 && a.dtype == AG_DTYPE_F64 && rd_shape_is(&a, 2, 4, 1, 0), "f8");
    for (k = 0; k < 4; k++) TEST_CHECK(((double *)a.data)[k] == k / 3.0, "f8[%d]", k);
    ag_array_free(&a);
    TEST_CHECK(rd_read_npy("npy_i8_5.npy", &a) == 0 && a.dtype == AG_DTYPE_I64 && rd_shape_is(&a, 1, 5, 0, 0), "i8");
    memcpy(i64, a.data, sizeof i64);
    for (k = 0; k < 5; k++) TEST_CHECK(i64[k] == k * -1000000007LL, "i8[%d]", k);
    ag_array_free(&a);
    TEST_CHECK(rd_read_npy("npy_i4_scalar.npy", &a) == 0 && a.dtype == AG_DTYPE_I32 && a.ndim == 0 && a.nbytes == 4, "i4 scalar");
    memcpy(&i32, a.data, 4);
    TEST_CHECK(i32 == -123456, "i4 value %d", (int)i32);
    ag_array_free(&a);
    TEST_CHECK(rd_read_npy("npy_u1_2x2x3.npy", &a) == 0 && a.dtype == AG_DTYPE_U8 && rd_shape_is(&a, 3, 2, 2, 3), "u1");
    for (k = 0; k < 12; k++) TEST_CHECK(((unsigned char *)a.data)[k] == k * 21 % 256, "u1[%d]", k);
    ag_array_free(&a);
    TEST_CHECK(rd_read_npy("npy_b1_4.npy", &a) == 0 && a.dtype == AG_DTYPE_BOOL && !memcmp(a.data, "\1\0\0\1", 4), "b1");
    ag_array_free(&a);
    TEST_CHECK(rd_read_npy("npy_f2_3.npy", &a) == 0 && a.dtype == AG_DTYPE_F16, "f2");
    f = rd_f32(&a);
    TEST_CHECK(f && f[0] == 1.5f && f[1] == -2.0f && f[2] == 65504.0f, "f2 values");
    free(f);
    ag_array_free(&a);
    TEST_CHECK(rd_read_npy("npy_i2_3.npy", &a) == 0 && a.dtype == AG_DTYPE_I16, "i2");
    memcpy(i16, a.data, 6);
    TEST_CHECK(i16[0] == -32768 && i16[1] == 5 && i16[2] == 32767, "i2 values");
    ag_array_free(&a);
    TEST_CHECK(rd_read_npy("npy_i1_3.npy", &a) == 0 && a.dtype == AG_DTYPE_I8 && ((signed char *)a.data)[0] == -128 &&
               ((signed char *)a.data)[2] == 127, "i1");
    ag_array_free(&a);
    /* Fortran order is transposed into C order */
    TEST_CHECK(rd_read_npy("npy_f4_fortran.npy", &a) == 0 && rd_shape_is(&a, 2, 3, 4, 0), "fortran");
    for (k = 0; k < 12; k++) TEST_CHECK(((float *)a.data)[k] == (float)k, "fortran[%d] = %g", k, ((float *)a.data)[k]);
    ag_array_free(&a);
    TEST_CHECK(rd_read_npy("npy_f4_fortran3d.npy", &a) == 0 && rd_shape_is(&a, 3, 2, 3, 4), "fortran 3d");
    for (k = 0; k < 24; k++) TEST_CHECK(((float *)a.data)[k] == (float)k, "fortran3d[%d] = %g", k, ((float *)a.data)[k]);
    ag_array_free(&a);
    TEST_CHECK(rd_read_npy("npy_f4_be.npy", &a) == 0 && rd_shape_is(&a, 1, 6, 0, 0), "big-endian");
    for (k = 0; k < 6; k++) TEST_CHECK(((float *)a.data)[k] == k * 0.5f - 1, "be[%d] = %g", k, ((float *)a.data)[k]);
    ag_array_free(&a);
    TEST_CHECK(rd_read_npy("npy_f4_v2.npy", &a) == 0 && rd_shape_is(&a, 2, 2, 3, 0) && ((float *)a.data)[5] == 1.5f, "v2");
    ag_array_free(&a);
    TEST_CHECK(rd_read_npy("npy_f4_v3.npy", &a) == 0 && rd_shape_is(&a, 2, 2, 3, 0) && ((float *)a.data)[4] == 1.0f, "v3");
    ag_array_free(&a);
    TEST_CHECK(rd_read_npy("npy_empty_0x3.npy", &a) == 0 && rd_shape_is(&a, 2, 0, 3, 0) && a.nbytes == 0 && a.data, "empty");
    ag_array_free(&a);
    return 0;
}

static int test_npy_bad(void) {
    static const char *huge[] = {
        "{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000, 1000000000), }",   /* data missing */
        "{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 4611686018427387904), }",  /* overflow */
        "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }",      /* > int64 */
        "{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1), }",          /* 9 dims */
        "{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }",
        "{'descr': '<f4', 'fortran_order': False, }",
        "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }",
        "{'descr': '<f4', 'fortran_order': Maybe, 'shape': (1,), }",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'extra': 1}",
        "{'descr': '<f4' 'fortran_order': False, 'shape': (1,), }",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (1,)",
    };
    unsigned char file[256], *buf, *bad;
    size_t len, cut, i, k;
    ag_array a;
    ag_error err;
    for (k = 0; k < sizeof huge / sizeof huge[0]; k++) {
        size_t hl = strlen(huge[k]);
        memcpy(file, "\x93NUMPY\x01\x00", 8);
        file[8] = (unsigned char)hl;
        file[9] = 0;
        memcpy(file + 10, huge[k], hl);
        memset(file + 10 + hl, 0, 16);   /* 16 bytes of "data" */
        err.msg[0] = '\0';
        TEST_CHECK(ag_npy_read_from_memory(file, 10 + hl + 16, &a, &err) == -1 && err.msg[0], "accepted header %lu", (unsigned long)k);
        TEST_CHECK(rd_is_zero(&a, sizeof a), "output not zeroed");
    }
    buf = rd_load("npy_c8.npy", &len);
    TEST_CHECK(buf && ag_npy_read_from_memory(buf, len, &a, &err) == -1 && rd_contains(err.msg, "<c8"), "c8: %s", err.msg);
    free(buf);
    buf = rd_load("npy_u2.npy", &len);
    TEST_CHECK(buf && ag_npy_read_from_memory(buf, len, &a, &err) == -1 && rd_contains(err.msg, "<u2"), "u2: %s", err.msg);
    free(buf);
    buf = rd_load("npy_f4_2x3.npy", &len);
    TEST_CHECK(buf != NULL, "load");
    for (cut = 0; cut < len; cut++)
        TEST_CHECK(ag_npy_read_from_memory(buf, cut, &a, &err) == -1 && err.msg[0], "prefix of %lu bytes accepted", (unsigned long)cut);
    bad = (unsigned char *)malloc(len);
    for (i = 0; i < len; i++) {
        memcpy(bad, buf, len);
        bad[i] ^= 0x20;
        if (ag_npy_read_from_memory(bad, len, &a, &err) == 0) ag_array_free(&a);
    }
    bad[0] = 'X';
    TEST_CHECK(ag_npy_read_from_memory(bad, len, &a, &err) == -1 && rd_contains(err.msg, "magic"), "magic: %s", err.msg);
    memcpy(bad, buf, len);
    bad[6] = 4;
    TEST_CHECK(ag_npy_read_from_memory(bad, len, &a, &err) == -1 && rd_contains(err.msg, "version"), "version: %s", err.msg);
    free(bad);
    free(buf);
    TEST_CHECK(ag_npy_read(AG_TEST_DATA_DIR "missing.npy", &a, &err) == -1 && rd_contains(err.msg, "missing.npy"), "path in message: %s", err.msg);
    return 0;
}

static int test_npy_write(void) {
    ag_array a, b;
    ag_error err;
    unsigned char *out, *ref;
    size_t olen, rlen;
    float f[6];
    double d[3] = { 0.25, -1e300, 3.0 };
    unsigned char u[4] = { 0, 1, 254, 255 };
    int k;
    const char *tmp = "test_readers_tmp.npy";
    for (k = 0; k < 6; k++) f[k] = k * 0.5f - 1;
    memset(&a, 0, sizeof a);
    a.dtype = AG_DTYPE_F32; a.ndim = 2; a.shape[0] = 2; a.shape[1] = 3; a.data = f; a.nbytes = sizeof f;
    TEST_CHECK(ag_npy_write_to_memory(&a, &out, &olen, &err) == 0, "write: %s", err.msg);
    ref = rd_load("npy_f4_2x3.npy", &rlen);
    TEST_CHECK(ref && olen == rlen && !memcmp(out, ref, olen), "not byte-identical to numpy's file (%lu vs %lu bytes)",
               (unsigned long)olen, (unsigned long)rlen);
    free(ref);
    free(out);
    a.dtype = AG_DTYPE_F64; a.ndim = 1; a.shape[0] = 3; a.data = d; a.nbytes = sizeof d;
    TEST_CHECK(ag_npy_write(tmp, &a, &err) == 0, "write file: %s", err.msg);
    TEST_CHECK(ag_npy_read(tmp, &b, &err) == 0 && b.dtype == AG_DTYPE_F64 && rd_shape_is(&b, 1, 3, 0, 0) && !memcmp(b.data, d, sizeof d), "f64 back");
    ag_array_free(&b);
    a.dtype = AG_DTYPE_U8; a.ndim = 0; a.data = u; a.nbytes = 1;
    TEST_CHECK(ag_npy_write(tmp, &a, &err) == 0 && ag_npy_read(tmp, &b, &err) == 0 && b.ndim == 0 && b.nbytes == 1 &&
               ((unsigned char *)b.data)[0] == 0, "u8 scalar back");
    ag_array_free(&b);
    a.ndim = 3; a.shape[0] = 1; a.shape[1] = 2; a.shape[2] = 2; a.nbytes = 4;
    TEST_CHECK(ag_npy_write(tmp, &a, &err) == 0 && ag_npy_read(tmp, &b, &err) == 0 && rd_shape_is(&b, 3, 1, 2, 2) &&
               !memcmp(b.data, u, 4), "u8 3d back");
    ag_array_free(&b);
    remove(tmp);
    a.dtype = AG_DTYPE_BF16; a.nbytes = 8;
    TEST_CHECK(ag_npy_write_to_memory(&a, &out, &olen, &err) == -1 && rd_contains(err.msg, "bfloat16"), "bf16: %s", err.msg);
    a.dtype = AG_DTYPE_F32; a.nbytes = 3;   /* too few bytes for the shape */
    TEST_CHECK(ag_npy_write_to_memory(&a, &out, &olen, &err) == -1, "short data accepted");
    TEST_CHECK(ag_npy_write("no_such_dir/x.npy", &a, &err) == -1, "bad path accepted");
    return 0;
}

static int rd_check_stats(const ag_array_list *l, const char *what) {
    const ag_array *mu = ag_array_list_find(l, "mu"), *sg = ag_array_list_find(l, "sigma");
    int i, j;
    TEST_CHECK(l->count == 2 && mu && sg, "%s: members", what);
    TEST_CHECK(mu->dtype == AG_DTYPE_F64 && rd_shape_is(mu, 1, 5, 0, 0), "%s: mu shape", what);
    TEST_CHECK(sg->dtype == AG_DTYPE_F64 && rd_shape_is(sg, 2, 5, 5, 0), "%s: sigma shape", what);
    for (i = 0; i < 5; i++) TEST_CHECK(((double *)mu->data)[i] == 1 + 0.25 * i, "%s: mu[%d]", what, i);
    for (i = 0; i < 5; i++)
        for (j = 0; j < 5; j++) TEST_CHECK(((double *)sg->data)[i * 5 + j] == (i + 1) * 10 + j, "%s: sigma[%d][%d]", what, i, j);
    return 0;
}

static int test_npz(void) {
    ag_array_list l, l2;
    ag_error err;
    size_t len, cut;
    unsigned char *buf, *out;
    size_t olen;
    const ag_array *a;
    const char *tmp = "test_readers_tmp.npz";
    TEST_CHECK(ag_npz_read(AG_TEST_DATA_DIR "npz_stats_stored.npz", &l, &err) == 0, "stored: %s", err.msg);
    if (rd_check_stats(&l, "stored")) return 1;
    /* write it back (stored) and read again */
    TEST_CHECK(ag_npz_write(tmp, &l, &err) == 0, "write: %s", err.msg);
    TEST_CHECK(ag_npz_read(tmp, &l2, &err) == 0, "reread: %s", err.msg);
    if (rd_check_stats(&l2, "rewritten")) return 1;
    remove(tmp);
    ag_array_list_free(&l2);
    TEST_CHECK(ag_npz_write_to_memory(&l, &out, &olen, &err) == 0 && ag_npz_read_from_memory(out, olen, &l2, &err) == 0 &&
               rd_same_list(&l, &l2), "memory round trip");
    free(out);
    ag_array_list_free(&l2);
    ag_array_list_free(&l);
    TEST_CHECK(ag_npz_read(AG_TEST_DATA_DIR "npz_stats_deflated.npz", &l, &err) == 0, "deflated: %s", err.msg);
    if (rd_check_stats(&l, "deflated")) return 1;
    ag_array_list_free(&l);
    TEST_CHECK(ag_npz_read(AG_TEST_DATA_DIR "npz_mixed.npz", &l, &err) == 0 && l.count == 3, "mixed: %s", err.msg);
    a = ag_array_list_find(&l, "a");
    TEST_CHECK(a && a->dtype == AG_DTYPE_I64 && ((int64_t *)a->data)[2] == 2, "a");
    a = ag_array_list_find(&l, "b");
    TEST_CHECK(a && a->dtype == AG_DTYPE_F32 && a->ndim == 0 && ((float *)a->data)[0] == 2.5f, "b");
    a = ag_array_list_find(&l, "c");
    TEST_CHECK(a && a->dtype == AG_DTYPE_U8 && rd_shape_is(a, 2, 2, 0, 0), "c");
    ag_array_list_free(&l);
    /* every truncation fails (the end record is at the very end) */
    buf = rd_load("npz_stats_deflated.npz", &len);
    TEST_CHECK(buf != NULL, "load");
    for (cut = 0; cut < len; cut++) {
        err.msg[0] = '\0';
        TEST_CHECK(ag_npz_read_from_memory(buf, cut, &l, &err) == -1 && err.msg[0] && rd_is_zero(&l, sizeof l), "prefix %lu", (unsigned long)cut);
    }
    free(buf);
    /* an npz whose member is not an npy */
    buf = rd_load("zip_zip64.zip", &len);
    TEST_CHECK(buf && ag_npz_read_from_memory(buf, len, &l, &err) == 0 && l.count == 0, "no .npy members: %s", err.msg);
    ag_array_list_free(&l);
    free(buf);
    TEST_CHECK(ag_npz_read(AG_TEST_DATA_DIR "npy_f4_2x3.npy", &l, &err) == -1 && rd_contains(err.msg, "npy_f4_2x3.npy") &&
               rd_contains(err.msg, "zip"), "npy as npz: %s", err.msg);
    return 0;
}

/* ---- PNG ---- */

static int test_png_files(void) {
    static const char *names[] = { "png_g8", "png_rgb8", "png_pal8", "png_ga8", "png_rgba8", "png_rgb8_adam7",
        "png_pal2_adam7", "png_rgba16_adam7", "png_g1", "png_pal1", "png_g2", "png_pal2", "png_g4", "png_pal4",
        "png_g16", "png_rgb16", "png_ga16", "png_rgba16", "png_pal8_trns", "png_g8_trns", "png_rgb8_trns",
        "png_rgb8_split", "png_rgb8_paeth", "png_rgba8_avg" };
    size_t k;
    for (k = 0; k < sizeof names / sizeof names[0]; k++) {
        char fn[64];
        ag_array img, want, conv;
        ag_error err;
        int c;
        snprintf(fn, sizeof fn, "%s.npy", names[k]);
        TEST_CHECK(rd_read_npy(fn, &want) == 0, "%s", fn);
        snprintf(fn, sizeof fn, "%s%s.png", AG_TEST_DATA_DIR, names[k]);
        TEST_CHECK(ag_png_read(fn, 0, &img, &err) == 0, "%s: %s", names[k], err.msg);
        TEST_CHECK(img.dtype == AG_DTYPE_U8 && img.ndim == 3 && img.shape[0] == want.shape[0] && img.shape[1] == want.shape[1] &&
                   img.shape[2] == want.shape[2], "%s: shape %lldx%lldx%lld, want %lldx%lldx%lld", names[k],
                   (long long)img.shape[0], (long long)img.shape[1], (long long)img.shape[2], (long long)want.shape[0],
                   (long long)want.shape[1], (long long)want.shape[2]);
        TEST_CHECK(img.nbytes == want.nbytes && !memcmp(img.data, want.data, img.nbytes), "%s: pixels differ", names[k]);
        /* conversions to 1..4 channels follow the documented formulas */
        for (c = 1; c <= 4; c++) {
            const unsigned char *s = (const unsigned char *)img.data, *d;
            int64_t p, np = img.shape[0] * img.shape[1];
            int sc = (int)img.shape[2];
            TEST_CHECK(ag_png_read(fn, c, &conv, &err) == 0 && conv.shape[2] == c, "%s to %d: %s", names[k], c, err.msg);
            d = (const unsigned char *)conv.data;
            for (p = 0; p < np; p++, s += sc, d += c) {
                unsigned r = s[0], g = sc >= 3 ? s[1] : s[0], b = sc >= 3 ? s[2] : s[0];
                unsigned al = sc == 2 ? s[1] : sc == 4 ? s[3] : 255, y = sc >= 3 ? (77 * r + 150 * g + 29 * b) >> 8 : r;
                int ok = c == 1 ? d[0] == y : c == 2 ? (d[0] == y && d[1] == al)
                       : c == 3 ? (d[0] == r && d[1] == g && d[2] == b) : (d[0] == r && d[1] == g && d[2] == b && d[3] == al);
                TEST_CHECK(ok, "%s to %d channels: pixel %lld", names[k], c, (long long)p);
            }
            ag_array_free(&conv);
        }
        ag_array_free(&img);
        ag_array_free(&want);
    }
    return 0;
}

/* Build a PNG in memory from pieces (CRCs computed here). */
static size_t rd_png_chunk(unsigned char *o, const char *type, const unsigned char *data, size_t n) {
    ag__wr32be(o, (uint32_t)n);
    memcpy(o + 4, type, 4);
    if (n) memcpy(o + 8, data, n);
    ag__wr32be(o + 8 + n, ag_crc32(0, o + 4, n + 4));
    return n + 12;
}

static size_t rd_make_png(unsigned char *o, uint32_t w, uint32_t h, int depth, int ctype, int interlace,
                          const unsigned char *raw, size_t rawlen, const unsigned char *plte, size_t plen) {
    unsigned char ihdr[13], *z = NULL;
    size_t n = 8, zlen = 0;
    ag_error err;
    memcpy(o, "\x89PNG\r\n\x1a\n", 8);
    ag__wr32be(ihdr, w);
    ag__wr32be(ihdr + 4, h);
    ihdr[8] = (unsigned char)depth; ihdr[9] = (unsigned char)ctype; ihdr[10] = 0; ihdr[11] = 0; ihdr[12] = (unsigned char)interlace;
    n += rd_png_chunk(o + n, "IHDR", ihdr, 13);
    if (plte) n += rd_png_chunk(o + n, "PLTE", plte, plen);
    if (ag__deflate_zlib(raw, rawlen, &z, &zlen, &err)) return 0;
    n += rd_png_chunk(o + n, "IDAT", z, zlen);
    free(z);
    n += rd_png_chunk(o + n, "IEND", NULL, 0);
    return n;
}

static int test_png_bad(void) {
    unsigned char png[4096], raw[64], plte[6] = { 1, 2, 3, 4, 5, 6 }, *buf, *bad;
    size_t n, len, cut, i;
    ag_array a;
    ag_error err;
    memset(raw, 0, sizeof raw);   /* 2x2 gray rows: filter byte + 2 pixels */
    n = rd_make_png(png, 2, 2, 8, 0, 0, raw, 6, NULL, 0);
    TEST_CHECK(n && ag_png_read_from_memory(png, n, 0, &a, &err) == 0 && rd_shape_is(&a, 3, 2, 2, 1), "valid base case: %s", err.msg);
    ag_array_free(&a);
    n = rd_make_png(png, 2, 2, 3, 0, 0, raw, 6, NULL, 0);
    TEST_CHECK(ag_png_read_from_memory(png, n, 0, &a, &err) == -1 && rd_contains(err.msg, "bit depth"), "depth 3: %s", err.msg);
    n = rd_make_png(png, 2, 2, 8, 5, 0, raw, 6, NULL, 0);
    TEST_CHECK(ag_png_read_from_memory(png, n, 0, &a, &err) == -1 && rd_contains(err.msg, "colour type"), "ctype 5: %s", err.msg);
    n = rd_make_png(png, 0, 2, 8, 0, 0, raw, 6, NULL, 0);
    TEST_CHECK(ag_png_read_from_memory(png, n, 0, &a, &err) == -1 && rd_contains(err.msg, "size"), "width 0: %s", err.msg);
    n = rd_make_png(png, 2, 2, 8, 0, 2, raw, 6, NULL, 0);
    TEST_CHECK(ag_png_read_from_memory(png, n, 0, &a, &err) == -1 && rd_contains(err.msg, "interlace"), "interlace 2: %s", err.msg);
    n = rd_make_png(png, 100000, 100000, 8, 0, 0, raw, 6, NULL, 0);
    TEST_CHECK(ag_png_read_from_memory(png, n, 0, &a, &err) == -1 && rd_contains(err.msg, "too large"), "huge: %s", err.msg);
    n = rd_make_png(png, 5000, 5000, 8, 0, 0, raw, 6, NULL, 0);     /* allowed size but 6 bytes of data */
    TEST_CHECK(ag_png_read_from_memory(png, n, 0, &a, &err) == -1 && rd_contains(err.msg, "too short"), "bomb: %s", err.msg);
    n = rd_make_png(png, 2, 3, 8, 0, 0, raw, 6, NULL, 0);            /* one row short */
    TEST_CHECK(ag_png_read_from_memory(png, n, 0, &a, &err) == -1 && rd_contains(err.msg, "truncated"), "short data: %s", err.msg);
    n = rd_make_png(png, 2, 1, 8, 0, 0, raw, 6, NULL, 0);            /* one row too many */
    TEST_CHECK(ag_png_read_from_memory(png, n, 0, &a, &err) == -1 && rd_contains(err.msg, "limit"), "long data: %s", err.msg);
    raw[3] = 5;                                                      /* filter type 5 in row 1 */
    n = rd_make_png(png, 2, 2, 8, 0, 0, raw, 6, NULL, 0);
    TEST_CHECK(ag_png_read_from_memory(png, n, 0, &a, &err) == -1 && rd_contains(err.msg, "filter"), "filter 5: %s", err.msg);
    raw[3] = 0;
    raw[1] = 2;                                                      /* palette index 2 of 2 entries */
    n = rd_make_png(png, 2, 2, 8, 3, 0, raw, 6, plte, 6);
    TEST_CHECK(ag_png_read_from_memory(png, n, 0, &a, &err) == -1 && rd_contains(err.msg, "palette index"), "index: %s", err.msg);
    n = rd_make_png(png, 2, 2, 8, 3, 0, raw, 6, NULL, 0);
    TEST_CHECK(ag_png_read_from_memory(png, n, 0, &a, &err) == -1 && rd_contains(err.msg, "PLTE"), "no PLTE: %s", err.msg);
    n = rd_make_png(png, 2, 2, 8, 0, 0, raw, 6, plte, 6);
    TEST_CHECK(ag_png_read_from_memory(png, n, 0, &a, &err) == -1 && rd_contains(err.msg, "PLTE"), "PLTE in gray: %s", err.msg);
    TEST_CHECK(ag_png_read_from_memory(png, n, 7, &a, &err) == -1 && rd_contains(err.msg, "channels"), "channels 7: %s", err.msg);
    /* a real file: every truncation and every single-byte change must be refused (CRCs) */
    buf = rd_load("png_rgb8_adam7.png", &len);
    TEST_CHECK(buf != NULL, "load");
    for (cut = 0; cut < len; cut++) {
        err.msg[0] = '\0';
        TEST_CHECK(ag_png_read_from_memory(buf, cut, 0, &a, &err) == -1 && err.msg[0] && rd_is_zero(&a, sizeof a), "prefix %lu accepted", (unsigned long)cut);
    }
    bad = (unsigned char *)malloc(len);
    for (i = 0; i < len; i++) {
        memcpy(bad, buf, len);
        bad[i] ^= 0x01;
        TEST_CHECK(ag_png_read_from_memory(bad, len, 0, &a, &err) == -1, "bit flip at %lu accepted", (unsigned long)i);
    }
    free(bad);
    free(buf);
    return 0;
}

static int test_png_write(void) {
    static const int dims[][2] = { { 1, 1 }, { 3, 2 }, { 17, 5 }, { 64, 48 } };
    unsigned char *px, *png;
    size_t plen, d, k;
    ag_array a;
    ag_error err;
    int c;
    uint32_t s = 99;
    px = (unsigned char *)malloc(64 * 48 * 4);
    for (d = 0; d < 4; d++)
        for (c = 1; c <= 4; c++) {
            int w = dims[d][0], h = dims[d][1];
            for (k = 0; k < (size_t)(w * h * c); k++) { s = s * 1664525u + 1013904223u; px[k] = (unsigned char)(k % 7 == 0 ? s >> 24 : k / 3); }
            TEST_CHECK(ag_png_write_to_memory(px, w, h, c, &png, &plen, &err) == 0, "encode: %s", err.msg);
            TEST_CHECK(ag_png_read_from_memory(png, plen, 0, &a, &err) == 0, "decode our own %dx%dx%d: %s", w, h, c, err.msg);
            TEST_CHECK(rd_shape_is(&a, 3, h, w, c) && !memcmp(a.data, px, (size_t)(w * h * c)), "round trip %dx%dx%d", w, h, c);
            ag_array_free(&a);
            free(png);
        }
    /* a smooth image compresses well */
    for (k = 0; k < 64 * 48 * 3; k++) px[k] = (unsigned char)((k / 3) % 64 * 2 + (k % 3) * 10 + (k / 192));
    TEST_CHECK(ag_png_write("test_readers_tmp.png", px, 64, 48, 3, &err) == 0, "write: %s", err.msg);
    TEST_CHECK(ag_png_read("test_readers_tmp.png", 3, &a, &err) == 0 && !memcmp(a.data, px, 64 * 48 * 3), "file round trip");
    ag_array_free(&a);
    TEST_CHECK(ag_png_write_to_memory(px, 64, 48, 3, &png, &plen, &err) == 0 && plen < 64 * 48 * 3 / 4,
               "gradient compressed only to %lu bytes", (unsigned long)plen);
    free(png);
    remove("test_readers_tmp.png");
    TEST_CHECK(ag_png_write_to_memory(px, 0, 4, 3, &png, &plen, &err) == -1, "width 0 accepted");
    TEST_CHECK(ag_png_write_to_memory(px, 4, 4, 5, &png, &plen, &err) == -1, "5 channels accepted");
    free(px);
    return 0;
}

/* ---- .pth ---- */

static int rd_read_pth(const char *name, ag_array_list *l) {
    char path[512];
    ag_error err;
    snprintf(path, sizeof path, "%s%s", AG_TEST_DATA_DIR, name);
    if (ag_pth_read(path, l, &err)) {
        fprintf(stderr, "    %s\n", err.msg);
        return -1;
    }
    return 0;
}

/* The small module's state dict against the arrays torch wrote with numpy. */
static int rd_check_small(const ag_array_list *l, int with_nbt, const char *what) {
    ag_array_list want;
    ag_error err;
    const ag_array *nbt;
    int k, n = 0;
    TEST_CHECK(ag_npz_read(AG_TEST_DATA_DIR "pth_small_expected.npz", &want, &err) == 0, "expected: %s", err.msg);
    for (k = 0; k < want.count; k++) {
        const ag_array *w = &want.items[k], *g;
        int isnbt = strstr(w->name, "num_batches_tracked") != NULL;
        if (isnbt && !with_nbt) continue;
        g = ag_array_list_find(l, w->name);
        TEST_CHECK(g != NULL, "%s: '%s' missing", what, w->name);
        TEST_CHECK(rd_same_array(g, w), "%s: '%s' differs", what, w->name);
        n++;
    }
    TEST_CHECK(l->count == n, "%s: %d entries, want %d", what, l->count, n);
    nbt = ag_array_list_find(l, "bn.num_batches_tracked");
    if (with_nbt) TEST_CHECK(nbt && nbt->dtype == AG_DTYPE_I64 && nbt->ndim == 0 && ((int64_t *)nbt->data)[0] == 42, "%s: nbt", what);
    else TEST_CHECK(nbt == NULL, "%s: nbt present", what);
    /* spot values the generator set by formula */
    {
        const ag_array *rm = ag_array_list_find(l, "bn.running_var"), *cw = ag_array_list_find(l, "conv.weight");
        TEST_CHECK(rm && rm->dtype == AG_DTYPE_F32 && ((float *)rm->data)[3] == 4.0f, "%s: running_var", what);
        TEST_CHECK(cw && rd_shape_is(cw, 4, 4, 3, 3) && cw->shape[3] == 3, "%s: conv.weight shape", what);
    }
    ag_array_list_free(&want);
    return 0;
}

static int test_pth_small(void) {
    ag_array_list l;
    TEST_CHECK(rd_read_pth("pth_small_zip.pth", &l) == 0, "zip");
    if (rd_check_small(&l, 1, "zip")) return 1;
    ag_array_list_free(&l);
    TEST_CHECK(rd_read_pth("pth_small_legacy.pth", &l) == 0, "legacy");
    if (rd_check_small(&l, 0, "legacy")) return 1;
    ag_array_list_free(&l);
    return 0;
}

static int rd_check_views(const ag_array_list *l, const char *what) {
    static const char *absent[] = { "name", "nothing" };
    const ag_array *a;
    float *f;
    int i, j;
    int64_t i64[4];
    a = ag_array_list_find(l, "base");
    TEST_CHECK(a && a->dtype == AG_DTYPE_F32 && rd_shape_is(a, 2, 4, 6, 0), "%s: base", what);
    {
        float want[24];
        for (i = 0; i < 24; i++) want[i] = (float)i;
        TEST_CLOSE("base", (const float *)a->data, want, 24, 0.0, 0.0);
    }
    a = ag_array_list_find(l, "T");
    TEST_CHECK(a && rd_shape_is(a, 2, 6, 4, 0), "%s: T shape", what);
    for (i = 0; i < 6; i++)
        for (j = 0; j < 4; j++) TEST_CHECK(((float *)a->data)[i * 4 + j] == (float)(6 * j + i), "%s: T[%d][%d]", what, i, j);
    a = ag_array_list_find(l, "row");
    TEST_CHECK(a && rd_shape_is(a, 1, 6, 0, 0), "%s: row", what);
    for (i = 0; i < 6; i++) TEST_CHECK(((float *)a->data)[i] == (float)(12 + i), "%s: row[%d]", what, i);
    a = ag_array_list_find(l, "col");
    TEST_CHECK(a && rd_shape_is(a, 1, 4, 0, 0), "%s: col", what);
    for (i = 0; i < 4; i++) TEST_CHECK(((float *)a->data)[i] == (float)(6 * i + 3), "%s: col[%d]", what, i);
    a = ag_array_list_find(l, "block");
    TEST_CHECK(a && rd_shape_is(a, 2, 2, 3, 0), "%s: block", what);
    for (i = 0; i < 2; i++)
        for (j = 0; j < 3; j++) TEST_CHECK(((float *)a->data)[i * 3 + j] == (float)(6 * (i + 1) + j + 2), "%s: block[%d][%d]", what, i, j);
    a = ag_array_list_find(l, "expand");
    TEST_CHECK(a && rd_shape_is(a, 2, 3, 4, 0), "%s: expand", what);
    for (i = 0; i < 12; i++) TEST_CHECK(((float *)a->data)[i] == (float)(i / 4), "%s: expand[%d]", what, i);
    a = ag_array_list_find(l, "f64");
    TEST_CHECK(a && a->dtype == AG_DTYPE_F64 && rd_shape_is(a, 1, 5, 0, 0), "%s: f64", what);
    for (i = 0; i < 5; i++) TEST_CHECK(((double *)a->data)[i] == i / 4.0, "%s: f64[%d]", what, i);
    a = ag_array_list_find(l, "i64");
    TEST_CHECK(a && a->dtype == AG_DTYPE_I64 && a->nbytes == 32, "%s: i64", what);
    memcpy(i64, a->data, 32);
    for (i = 0; i < 4; i++) TEST_CHECK(i64[i] == i * 3000000000LL, "%s: i64[%d]", what, i);
    a = ag_array_list_find(l, "i32");
    TEST_CHECK(a && a->dtype == AG_DTYPE_I32 && ((int32_t *)a->data)[0] == -7 && ((int32_t *)a->data)[1] == 8, "%s: i32", what);
    a = ag_array_list_find(l, "i16");
    TEST_CHECK(a && a->dtype == AG_DTYPE_I16 && ((int16_t *)a->data)[0] == -300 && ((int16_t *)a->data)[1] == 301, "%s: i16", what);
    a = ag_array_list_find(l, "i8");
    TEST_CHECK(a && a->dtype == AG_DTYPE_I8 && ((signed char *)a->data)[0] == -5, "%s: i8", what);
    a = ag_array_list_find(l, "u8");
    TEST_CHECK(a && a->dtype == AG_DTYPE_U8 && ((unsigned char *)a->data)[0] == 250, "%s: u8", what);
    a = ag_array_list_find(l, "bool");
    TEST_CHECK(a && a->dtype == AG_DTYPE_BOOL && a->nbytes == 3 && !memcmp(a->data, "\1\0\1", 3), "%s: bool", what);
    a = ag_array_list_find(l, "f16");
    TEST_CHECK(a && a->dtype == AG_DTYPE_F16 && (f = rd_f32(a)) != NULL, "%s: f16", what);
    TEST_CHECK(f[0] == 0.5f && f[1] == -1.25f, "%s: f16 values", what);
    free(f);
    a = ag_array_list_find(l, "bf16");
    TEST_CHECK(a && a->dtype == AG_DTYPE_BF16 && (f = rd_f32(a)) != NULL, "%s: bf16", what);
    TEST_CHECK(f[0] == 1.5f && f[1] == -3.0f, "%s: bf16 values", what);
    free(f);
    a = ag_array_list_find(l, "scalar");
    TEST_CHECK(a && a->ndim == 0 && ((float *)a->data)[0] == 3.25f, "%s: scalar", what);
    a = ag_array_list_find(l, "empty");
    TEST_CHECK(a && rd_shape_is(a, 2, 0, 3, 0) && a->nbytes == 0, "%s: empty", what);
    a = ag_array_list_find(l, "nested.a");
    TEST_CHECK(a && ((float *)a->data)[1] == 2.0f, "%s: nested.a", what);
    a = ag_array_list_find(l, "nested.b.0");
    TEST_CHECK(a && rd_shape_is(a, 1, 1, 0, 0) && ((float *)a->data)[0] == 3.0f, "%s: nested.b.0", what);
    a = ag_array_list_find(l, "nested.b.1");
    TEST_CHECK(a && ((float *)a->data)[1] == 5.0f, "%s: nested.b.1", what);
    a = ag_array_list_find(l, "epoch");
    TEST_CHECK(a && a->dtype == AG_DTYPE_I64 && a->ndim == 0 && ((int64_t *)a->data)[0] == 7, "%s: epoch", what);
    a = ag_array_list_find(l, "lr");
    TEST_CHECK(a && a->dtype == AG_DTYPE_F64 && ((double *)a->data)[0] == 0.5, "%s: lr", what);
    a = ag_array_list_find(l, "flag");
    TEST_CHECK(a && a->dtype == AG_DTYPE_BOOL && ((unsigned char *)a->data)[0] == 1, "%s: flag", what);
    for (i = 0; i < 2; i++) TEST_CHECK(ag_array_list_find(l, absent[i]) == NULL, "%s: '%s' should be skipped", what, absent[i]);
    TEST_CHECK(l->count == 23, "%s: %d entries, want 23", what, l->count);
    return 0;
}

static int test_pth_views(void) {
    static const char *files[] = { "pth_views_zip.pth", "pth_views_legacy.pth", "pth_views_p4_zip.pth",
                                   "pth_views_p1_legacy.pth", "pth_views_p4_legacy.pth" };
    size_t k;
    for (k = 0; k < sizeof files / sizeof files[0]; k++) {
        ag_array_list l;
        TEST_CHECK(rd_read_pth(files[k], &l) == 0, "%s", files[k]);
        if (rd_check_views(&l, files[k])) return 1;
        ag_array_list_free(&l);
    }
    return 0;
}

static int test_pth_param_ckpt_tensor(void) {
    ag_array_list l;
    ag_error err;
    const ag_array *a;
    int k, f;
    for (f = 0; f < 2; f++) {
        TEST_CHECK(rd_read_pth(f ? "pth_param_legacy.pth" : "pth_param_zip.pth", &l) == 0, "param %d", f);
        a = ag_array_list_find(&l, "w");
        TEST_CHECK(l.count == 1 && a && rd_shape_is(a, 2, 2, 3, 0), "param shape");
        for (k = 0; k < 6; k++) TEST_CHECK(((float *)a->data)[k] == (float)(k - 2), "param[%d]", k);
        ag_array_list_free(&l);
    }
    TEST_CHECK(rd_read_pth("pth_ckpt_zip.pth", &l) == 0, "ckpt");
    a = ag_array_list_find(&l, "epoch");
    TEST_CHECK(a && ((int64_t *)a->data)[0] == 3, "epoch");
    a = ag_array_list_find(&l, "optimizer.param_groups.0.lr");
    TEST_CHECK(a && a->dtype == AG_DTYPE_F64 && ((double *)a->data)[0] == 0.1, "optimizer lr");
    a = ag_array_list_find(&l, "optimizer.param_groups.0.params.5");
    TEST_CHECK(a && ((int64_t *)a->data)[0] == 5, "optimizer params list");
    TEST_CHECK(ag_array_list_select_prefix(&l, "nope.", &err) == -1 && l.count > 20, "select of nothing changed the list");
    TEST_CHECK(ag_array_list_select_prefix(&l, "state_dict.", &err) == 0, "select: %s", err.msg);
    if (rd_check_small(&l, 1, "ckpt")) return 1;
    ag_array_list_free(&l);
    TEST_CHECK(rd_read_pth("pth_tensor_zip.pth", &l) == 0 && l.count == 1, "bare tensor");
    a = &l.items[0];
    TEST_CHECK(a->name && a->name[0] == '\0' && rd_shape_is(a, 1, 4, 0, 0) && ((float *)a->data)[3] == 6.0f, "bare tensor value");
    ag_array_list_free(&l);
    return 0;
}

static int test_pth_corrupt(void) {
    static const char *files[] = { "pth_views_zip.pth", "pth_views_legacy.pth", "pth_small_zip.pth" };
    size_t f, len, cut, i;
    unsigned char *buf, *bad;
    ag_array_list l, l0;
    ag_error err;
    for (f = 0; f < sizeof files / sizeof files[0]; f++) {
        int is_zip;
        buf = rd_load(files[f], &len);
        TEST_CHECK(buf != NULL, "load");
        is_zip = buf[0] == 'P';
        TEST_CHECK(ag_pth_read_from_memory(buf, len, &l0, &err) == 0, "original: %s", err.msg);
        for (cut = 0; cut < len; cut += (cut < 400 || len - cut < 400) ? 1 : 7) {
            err.msg[0] = '\0';
            TEST_CHECK(ag_pth_read_from_memory(buf, cut, &l, &err) == -1 && err.msg[0] && rd_is_zero(&l, sizeof l),
                       "%s: prefix of %lu bytes accepted", files[f], (unsigned long)cut);
        }
        bad = (unsigned char *)malloc(len);
        for (i = 0; i < len; i++) {
            memcpy(bad, buf, len);
            bad[i] ^= (unsigned char)(1u << (i % 8));
            err.msg[0] = '\0';
            if (ag_pth_read_from_memory(bad, len, &l, &err) == 0) {
                /* zip members are CRC-checked: a change that reads fine must not alter any tensor */
                if (is_zip) TEST_CHECK(rd_same_list(&l, &l0), "%s: flip at %lu changed the result unnoticed", files[f], (unsigned long)i);
                ag_array_list_free(&l);
            } else TEST_CHECK(err.msg[0] && rd_is_zero(&l, sizeof l), "failure without message");
        }
        free(bad);
        ag_array_list_free(&l0);
        free(buf);
    }
    /* wrong magic, a missing storage member, a huge storage count */
    buf = rd_load("pth_small_zip.pth", &len);
    TEST_CHECK(buf != NULL, "load");
    bad = (unsigned char *)malloc(len);
    memcpy(bad, buf, len);
    bad[0] = 'Q';
    TEST_CHECK(ag_pth_read_from_memory(bad, len, &l, &err) == -1 && rd_contains(err.msg, "not a PyTorch file"), "magic: %s", err.msg);
    memcpy(bad, buf, len);
    for (i = len - 7; i > 0 && memcmp(bad + i, "/data/3", 7); i--) {}   /* the central directory's name */
    TEST_CHECK(i > 0, "found the name");
    bad[i + 6] = 'x';
    TEST_CHECK(ag_pth_read_from_memory(bad, len, &l, &err) == -1 && rd_contains(err.msg, "missing"), "missing member: %s", err.msg);
    free(bad);
    free(buf);
    buf = rd_load("pth_small_legacy.pth", &len);
    TEST_CHECK(buf != NULL, "load");
    {   /* the first storage count follows the key-list pickle, which ends with the last STOP before the data */
        ag_array_list ok;
        size_t total = 0, pos;
        int k;
        TEST_CHECK(ag_pth_read_from_memory(buf, len, &ok, &err) == 0, "legacy ok");
        for (k = 0; k < ok.count; k++) if (ok.items[k].ndim > 0) total += ok.items[k].nbytes + 8;
        ag_array_list_free(&ok);
        pos = len - total;   /* every storage here is used by exactly one tensor, densely */
        bad = (unsigned char *)malloc(len);
        memcpy(bad, buf, len);
        TEST_CHECK(bad[pos - 1] == '.', "layout assumption (STOP before the storages)");
        bad[pos + 7] = 0x10;   /* element count 2^60 */
        TEST_CHECK(ag_pth_read_from_memory(bad, len, &l, &err) == -1 && rd_contains(err.msg, "truncated"), "huge count: %s", err.msg);
        free(bad);
    }
    free(buf);
    TEST_CHECK(ag_pth_read(AG_TEST_DATA_DIR "npz_stats_stored.npz", &l, &err) == -1 && rd_contains(err.msg, "data.pkl") &&
               rd_contains(err.msg, "npz_stats_stored.npz"), "npz as pth: %s", err.msg);
    return 0;
}

/* Legacy-format files built here around a hand-written object pickle: the storage list is
   ['k'] with nfloats float32 values 0, 1, 2, ..., or empty when nfloats < 0. */
static size_t rd_legacy(unsigned char *o, const unsigned char *obj, size_t objlen, int nfloats) {
    static const unsigned char head[] = {
        0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e,   /* magic */
        0x80, 0x02, 'M', 0xe9, 0x03, '.',                                                            /* 1001 */
        0x80, 0x02, '}', '.' };                                                                      /* sys info */
    static const unsigned char keys[] = { 0x80, 0x02, ']', 'X', 1, 0, 0, 0, 'k', 'a', '.' };
    size_t n = 0;
    int k;
    memcpy(o, head, sizeof head); n += sizeof head;
    memcpy(o + n, obj, objlen); n += objlen;
    if (nfloats < 0) { memcpy(o + n, "\x80\x02].", 4); return n + 4; }
    memcpy(o + n, keys, sizeof keys); n += sizeof keys;
    memset(o + n, 0, 8);
    o[n] = (unsigned char)nfloats; n += 8;
    for (k = 0; k < nfloats; k++) { float v = (float)k; memcpy(o + n, &v, 4); n += 4; }
    return n;
}

#define RD_T2 "ctorch._utils\n_rebuild_tensor_v2\n"
#define RD_PID(type, numel) "(X\x07\0\0\0storagectorch\n" type "\nX\x01\0\0\0kX\x03\0\0\0cpuK" numel "tQ"
static int test_pth_pickles(void) {
    /* {'w': tensor(storage k (4 floats), offset, size, stride)} and friends */
    static const struct { const char *pkl; size_t len; int nfloats; const char *want; } bad[] = {
#define RD_P(s, nf, want) { s, sizeof s - 1, nf, want }
        RD_P("\x80\x02}X\x01\0\0\0w" RD_T2 "(" RD_PID("FloatStorage", "\x04") "K\0K\x0a\x85K\x01\x85\x89)tRs.", 4, "past its storage"),
        RD_P("\x80\x02}X\x01\0\0\0w" RD_T2 "(" RD_PID("FloatStorage", "\x04") "K\x02K\x03\x85K\x01\x85\x89)tRs.", 4, "past its storage"),
        RD_P("\x80\x02}X\x01\0\0\0w" RD_T2 "(" RD_PID("FloatStorage", "\x04") "K\0K\x02\x85J\xff\xff\xff\xff\x85\x89)tRs.", 4, "stride"),
        RD_P("\x80\x02}X\x01\0\0\0w" RD_T2 "(" RD_PID("FloatStorage", "\x02") "K\0K\x03\x85K\x01\x85\x89)tRs.", 4, "past its storage"),
        RD_P("\x80\x02}X\x01\0\0\0w" RD_T2 "(" RD_PID("QInt8Storage", "\x04") "K\0K\x02\x85K\x01\x85\x89)tRs.", 4, "unsupported storage type"),
        RD_P("\x80\x02}X\x01\0\0\0w" RD_T2 "(" RD_PID("FloatStorage", "\x04") "K\0K\x02K\x02\x86K\x01\x85\x89)tRs.", 4, "malformed"),
        RD_P("\x80\x02}X\x01\0\0\0w" RD_T2 "(" RD_PID("FloatStorage", "\x04") "K\0K\x02\x85K\x01\x85\x89)tRs.", 4, "ok"),
        RD_P("\x80\x02}X\x01\0\0\0wctorch._utils\n_rebuild_qtensor\n)Rs.", -1, "unsupported object"),
        RD_P("\x80\x02(X\x07\0\0\0storageQ.", -1, "persistent id"),
        RD_P("\x80\x02s.", -1, "underflow"),
        RD_P("\x80\x02h\x05.", -1, "memo"),
        RD_P("\x80\x02\xff.", -1, "opcode 0xff"),
        RD_P("\x80\x02}X\x01\0\0\0w", -1, "truncated"),
        RD_P("\x80\x02]q\x00h\x00" "a.", -1, "deep"),          /* a list that contains itself */
        RD_P("\x80\x02}X\x01\0\0\0aK\x01sX\x01\0\0\0a\x88s.", -1, "two entries"),
        RD_P("\x80\x02" "e.", -1, "MARK"),
        RD_P("\x80\x02}.", 4, "not used"),                   /* listed storage that no tensor uses */
#undef RD_P
    };
    unsigned char file[2048], deep[600];
    size_t n, k;
    ag_array_list l;
    ag_error err;
    /* a valid one first: w = storage[1:3] */
    static const char good[] = "\x80\x02}X\x01\0\0\0w" RD_T2 "(" RD_PID("FloatStorage", "\x04") "K\x01K\x02\x85K\x01\x85\x89)tRs.";
    n = rd_legacy(file, (const unsigned char *)good, sizeof good - 1, 4);
    TEST_CHECK(ag_pth_read_from_memory(file, n, &l, &err) == 0, "hand-made legacy file: %s", err.msg);
    TEST_CHECK(l.count == 1 && ((float *)l.items[0].data)[0] == 1.0f && ((float *)l.items[0].data)[1] == 2.0f, "values");
    ag_array_list_free(&l);
    {   /* a legacy storage view ('kv' = k[1:3]): the tensor's offset counts from the view */
        static const char view[] = "\x80\x02}X\x01\0\0\0w" RD_T2 "((X\x07\0\0\0storagectorch\nFloatStorage\nX\x01\0\0\0k"
            "X\x03\0\0\0cpuK\x04(X\x02\0\0\0kvK\x01K\x02ttQK\x01K\x01\x85K\x01\x85\x89)tRs.";
        static const char over[] = "\x80\x02}X\x01\0\0\0w" RD_T2 "((X\x07\0\0\0storagectorch\nFloatStorage\nX\x01\0\0\0k"
            "X\x03\0\0\0cpuK\x04(X\x02\0\0\0kvK\x01K\x02ttQK\x01K\x02\x85K\x01\x85\x89)tRs.";
        n = rd_legacy(file, (const unsigned char *)view, sizeof view - 1, 4);
        TEST_CHECK(ag_pth_read_from_memory(file, n, &l, &err) == 0 && l.count == 1 && l.items[0].nbytes == 4, "view: %s", err.msg);
        TEST_CHECK(((float *)l.items[0].data)[0] == 2.0f, "view value %g", ((float *)l.items[0].data)[0]);
        ag_array_list_free(&l);
        n = rd_legacy(file, (const unsigned char *)over, sizeof over - 1, 4);
        TEST_CHECK(ag_pth_read_from_memory(file, n, &l, &err) == -1 && rd_contains(err.msg, "view"), "past the view: %s", err.msg);
    }
    {   /* a big-endian legacy file (sys info little_endian=False): counts and data are swapped */
        static const unsigned char head[] = { 0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50,
            0x19, 0x2e, 0x80, 0x02, 'M', 0xe9, 0x03, '.', 0x80, 0x02, '}', 'X', 13, 0, 0, 0, 'l', 'i', 't', 't', 'l', 'e',
            '_', 'e', 'n', 'd', 'i', 'a', 'n', 0x89, 's', '.' };
        static const unsigned char keys[] = { 0x80, 0x02, ']', 'X', 1, 0, 0, 0, 'k', 'a', '.' };
        static const unsigned char data[] = { 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0x3f, 0x80, 0, 0, 0x40, 0, 0, 0, 0x40, 0x40, 0, 0 };
        n = 0;
        memcpy(file, head, sizeof head); n += sizeof head;
        memcpy(file + n, good, sizeof good - 1); n += sizeof good - 1;
        memcpy(file + n, keys, sizeof keys); n += sizeof keys;
        memcpy(file + n, data, sizeof data); n += sizeof data;
        TEST_CHECK(ag_pth_read_from_memory(file, n, &l, &err) == 0 && l.count == 1, "big-endian legacy: %s", err.msg);
        TEST_CHECK(((float *)l.items[0].data)[0] == 1.0f && ((float *)l.items[0].data)[1] == 2.0f, "big-endian values %g %g",
                   ((float *)l.items[0].data)[0], ((float *)l.items[0].data)[1]);
        ag_array_list_free(&l);
    }
    n = rd_legacy(file, (const unsigned char *)good, sizeof good - 1, 4) - 4;   /* file ends inside the storage */
    TEST_CHECK(ag_pth_read_from_memory(file, n, &l, &err) == -1 && rd_contains(err.msg, "truncated"), "short storage: %s", err.msg);
    for (k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        n = rd_legacy(file, (const unsigned char *)bad[k].pkl, bad[k].len, bad[k].nfloats);
        err.msg[0] = '\0';
        if (!strcmp(bad[k].want, "ok")) {   /* the control case of the row above */
            TEST_CHECK(ag_pth_read_from_memory(file, n, &l, &err) == 0 && l.count == 1, "control case: %s", err.msg);
            ag_array_list_free(&l);
            continue;
        }
        TEST_CHECK(ag_pth_read_from_memory(file, n, &l, &err) == -1 && rd_is_zero(&l, sizeof l), "bad pickle %lu accepted", (unsigned long)k);
        TEST_CHECK(rd_contains(err.msg, bad[k].want), "bad pickle %lu: message '%s' lacks '%s'", (unsigned long)k, err.msg, bad[k].want);
    }
    /* nesting: 200 lists deep is refused; 2^40 shared visits are refused quickly */
    n = 0;
    deep[n++] = 0x80; deep[n++] = 0x02;
    for (k = 0; k < 200; k++) deep[n++] = ']';
    for (k = 0; k < 199; k++) deep[n++] = 'a';
    deep[n++] = '.';
    n = rd_legacy(file, deep, n, -1);
    TEST_CHECK(ag_pth_read_from_memory(file, n, &l, &err) == -1 && rd_contains(err.msg, "deep"), "deep: %s", err.msg);
    n = 0;
    deep[n++] = 0x80; deep[n++] = 0x02; deep[n++] = 'K'; deep[n++] = 1;
    for (k = 0; k < 40; k++) { deep[n++] = '2'; deep[n++] = 0x86; }   /* x = (x, x) */
    deep[n++] = '.';
    n = rd_legacy(file, deep, n, -1);
    TEST_CHECK(ag_pth_read_from_memory(file, n, &l, &err) == -1 && rd_contains(err.msg, "too large"), "shared: %s", err.msg);
    /* objects that are not tensors are skipped: a big int, a set, a custom class */
    {
        static const char odd[] = "\x80\x02}(X\x01\0\0\0b\x8a\x09\0\0\0\0\0\0\0\x80\0X\x01\0\0\0s\x8f(K\x01\x90"
                                  "X\x01\0\0\0ccargparse\nNamespace\n)\x81}bX\x01\0\0\0nK\x05u.";
        n = rd_legacy(file, (const unsigned char *)odd, sizeof odd - 1, -1);
        TEST_CHECK(ag_pth_read_from_memory(file, n, &l, &err) == 0, "odd objects: %s", err.msg);
        TEST_CHECK(l.count == 1 && !strcmp(l.items[0].name, "n") && ((int64_t *)l.items[0].data)[0] == 5, "only 'n' is kept");
        ag_array_list_free(&l);
    }
    return 0;
}

/* ---- shared helpers ---- */

static int test_array_helpers(void) {
    ag_array_list l;
    ag_error err;
    int64_t shape[3] = { 2, 3, 4 }, huge[2] = { (int64_t)1 << 40, (int64_t)1 << 40 }, neg[1] = { -1 };
    float f[24], out[8];
    uint16_t h[6] = { 0x3c00, 0xc000, 0x7c00, 0x0001, 0x8000, 0x7e00 };   /* 1, -2, inf, 2^-24, -0, nan */
    ag_array a;
    int k;
    for (k = 0; k < 24; k++) f[k] = (float)k;
    memset(&l, 0, sizeof l);
    TEST_CHECK(ag_array_list_add(&l, "x", AG_DTYPE_F32, 3, shape, f, &err) == 0, "add");
    TEST_CHECK(ag_array_list_add(&l, "zeros", AG_DTYPE_I64, 1, shape, NULL, &err) == 0, "add zeros");
    TEST_CHECK(ag_array_list_add(&l, "big", AG_DTYPE_F32, 2, huge, NULL, &err) == -1 && l.count == 2, "huge accepted");
    TEST_CHECK(ag_array_list_add(&l, "neg", AG_DTYPE_F32, 1, neg, NULL, &err) == -1, "negative accepted");
    TEST_CHECK(ag_array_list_add(&l, "nine", AG_DTYPE_F32, 9, shape, NULL, &err) == -1, "9 dims accepted");
    TEST_CHECK(ag_array_list_find(&l, "x") == &l.items[0] && ag_array_list_find(&l, "y") == NULL, "find");
    TEST_CHECK(l.items[0].nbytes == 96 && ((float *)l.items[0].data)[23] == 23.0f && l.items[0].data != (void *)f, "copied");
    TEST_CHECK(l.items[1].nbytes == 16 && rd_is_zero(l.items[1].data, 16), "zero-filled");
    TEST_CHECK(ag_array_numel(&l.items[0]) == 24, "numel");
    ag_array_list_free(&l);
    TEST_CHECK(rd_is_zero(&l, sizeof l), "free zeroes");
    memset(&a, 0, sizeof a);
    a.dtype = AG_DTYPE_F16; a.ndim = 1; a.shape[0] = 6; a.data = h; a.nbytes = sizeof h;
    TEST_CHECK(ag_array_to_f32(&a, out, &err) == 0, "f16");
    TEST_CHECK(out[0] == 1.0f && out[1] == -2.0f && out[2] > 3e38f && out[3] == 5.9604644775390625e-8f &&
               out[4] == 0.0f && out[5] != out[5], "f16 values %g %g %g %g %g %g", out[0], out[1], out[2], out[3], out[4], out[5]);
    TEST_CHECK(strcmp(ag_dtype_name(AG_DTYPE_BF16), "bfloat16") == 0 && ag_dtype_size(AG_DTYPE_I16) == 2, "dtype info");
    return 0;
}

static int test_file_helpers(void) {
    unsigned char *b;
    size_t n;
    ag_error err;
    const char *p = "test_readers_tmp.bin";
    TEST_CHECK(ag_write_file_atomic(p, "abc", 3, &err) == 0, "write: %s", err.msg);
    TEST_CHECK(ag_write_file_atomic(p, "defg", 4, &err) == 0, "overwrite: %s", err.msg);
    TEST_CHECK(ag_read_file(p, &b, &n, &err) == 0 && n == 4 && !memcmp(b, "defg", 4), "read back");
    free(b);
    TEST_CHECK(ag_write_file_atomic(p, NULL, 0, &err) == 0 && ag_read_file(p, &b, &n, &err) == 0 && n == 0, "empty file");
    free(b);
    remove(p);
    TEST_CHECK(ag_write_file_atomic("no_such_dir/x.bin", "abc", 3, &err) == -1 && rd_contains(err.msg, "no_such_dir/x.bin"), "bad dir: %s", err.msg);
    TEST_CHECK(ag_read_file("no_such_file.bin", &b, &n, &err) == -1 && b == NULL && n == 0 && rd_contains(err.msg, "no_such_file.bin"), "missing: %s", err.msg);
    return 0;
}

const test_case tests_readers[] = {
    { "readers/checksums", test_checksums },
    { "readers/inflate_zlib_files", test_inflate_zlib_files },
    { "readers/inflate_raw_and_empty", test_inflate_raw_and_empty },
    { "readers/inflate_truncated_and_flipped", test_inflate_truncated_and_flipped },
    { "readers/inflate_bad_streams", test_inflate_bad_streams },
    { "readers/deflate_roundtrip", test_deflate_roundtrip },
    { "readers/zip_read", test_zip_read },
    { "readers/zip_encrypted_zip64", test_zip_encrypted_zip64 },
    { "readers/zip_corrupt", test_zip_corrupt },
    { "readers/zip_write", test_zip_write },
    { "readers/npy_read", test_npy_read },
    { "readers/npy_bad", test_npy_bad },
    { "readers/npy_write", test_npy_write },
    { "readers/npz", test_npz },
    { "readers/png_files", test_png_files },
    { "readers/png_bad", test_png_bad },
    { "readers/png_write", test_png_write },
    { "readers/pth_small", test_pth_small },
    { "readers/pth_views", test_pth_views },
    { "readers/pth_param_ckpt_tensor", test_pth_param_ckpt_tensor },
    { "readers/pth_corrupt", test_pth_corrupt },
    { "readers/pth_pickles", test_pth_pickles },
    { "readers/array_helpers", test_array_helpers },
    { "readers/file_helpers", test_file_helpers },
    { 0, 0 }
};
