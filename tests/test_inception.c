/* test_inception.c - the FID Inception-v3 port, its preprocessing, the Inception score and
   FID against PyTorch / NumPy (tests/golden/gen_inception.py, gen_scores.py).

   Weights: deterministic pseudo-random (tests/inception_weights.h, the same PCG32 stream
   in C and in the script; He-normal convs, randomised BN statistics), checked bit-exact.
   Tolerances (float32 network with folded BN vs PyTorch's float32 network; PyTorch's own
   float32-vs-float64 error is 3.4e-7 on pool3 and 1.3e-6 on logits, relative to the largest
   value): pool3 |d| <= 1e-5·max|pool3|, logits 3e-5·max|logits|; a wrong BN eps in two of
   the 94 layers moves pool3 by 3.4e-4, a wrong pooling mode by 6e-2. TF-exact input: 1e-6
   (the same float32 arithmetic as TF); pytorch-fid input 5e-6 (PyTorch's interpolation
   kernel orders the float32 products differently; one wrong source row moves it by 1e-2). Scores are double: IS and the statistics 1e-9
   relative, FID 1e-8 relative (Cholesky + eigenvalues against scipy's sqrtm). */
#include "inception_weights.h"

static int rel_close(const char *what, double got, double want, double rtol) {
    if (!(fabs(got - want) <= rtol * fabs(want))) { fprintf(stderr, "    %s: got %.17g want %.17g\n", what, got, want); return 1; }
    return 0;
}
static double array_f64(const golden *g, const char *name, size_t i) {
    const ag_array *a = ag_array_list_find(&g->arrays, name); double v = NAN;
    if (a && a->dtype == AG_DTYPE_F64 && (i + 1) * 8 <= a->nbytes) memcpy(&v, (const char *)a->data + 8 * i, 8);
    return v;
}
static double max_abs_f32(const float *x, size_t n) { double m = 0; size_t i; for (i = 0; i < n; i++) if (fabs(x[i]) > m) m = fabs(x[i]); return m; }

static ag_inception *test_inception_net(ag_error *err) {
    ag_array_list sd; ag_inception *net;
    memset(&sd, 0, sizeof sd);
    if (inception_random_weights(&sd, err)) { ag_array_list_free(&sd); return NULL; }
    net = ag_inception_from_arrays(&sd, err);
    ag_array_list_free(&sd);
    return net;
}

static int test_inception_weights_bit_exact(void) {
    golden g; ag_array_list sd; ag_error err; const ag_array *w, *b; int bad = 0;
    memset(&g, 0, sizeof g); memset(&sd, 0, sizeof sd);
    TEST_CHECK(golden_open(&g, "inception_forward") == 0, "golden");
    TEST_CHECK(inception_random_weights(&sd, &err) == 0, "%s", err.msg);
    w = ag_array_list_find(&sd, "Conv2d_1a_3x3.conv.weight"); b = ag_array_list_find(&sd, "fc.bias");
    TEST_CHECK(w && b && sd.count == 472, "state dict: %d arrays", sd.count);
    {
        const ag_array *head = ag_array_list_find(&g.arrays, "weights_head"), *tail = ag_array_list_find(&g.arrays, "weights_tail");
        if (!head || !tail || head->nbytes < 64 || tail->nbytes < 64) { ag_array_list_free(&sd); golden_close(&g); TEST_CHECK(0, "golden file lacks weights_head/weights_tail"); }
        bad |= memcmp(w->data, head->data, 64) != 0;
        bad |= memcmp((const char *)b->data + b->nbytes - 64, tail->data, 64) != 0;
    }
    ag_array_list_free(&sd); golden_close(&g);
    TEST_CHECK(!bad, "the C and Python weight streams differ");
    return 0;
}

static int test_inception_preprocess(void) {
    golden g; float *img = (float *)malloc((size_t)3 * 299 * 299 * sizeof(float)), *rows; const ag_array *im, *ir; int bad = 0, pass;
    memset(&g, 0, sizeof g);
    TEST_CHECK(golden_open(&g, "inception_forward") == 0, "golden");
    im = ag_array_list_find(&g.arrays, "images32"); ir = ag_array_list_find(&g.arrays, "input_rows");
    TEST_CHECK(im && ir && im->dtype == AG_DTYPE_U8, "images");
    rows = (float *)malloc((size_t)3 * 38 * 299 * sizeof(float));
    for (pass = 0; pass < 2; pass++) {
        int c, r;
        if (pass == 0) ag_inception_preprocess_tf((const unsigned char *)im->data, 32, 32, img);
        else ag_inception_preprocess_pytorch((const unsigned char *)im->data, 32, 32, img);
        for (c = 0; c < 3; c++) for (r = 0; r < 38; r++)
            memcpy(rows + ((size_t)c * 38 + r) * 299, img + ((size_t)c * 299 + ((const int64_t *)ir->data)[r]) * 299, 299 * sizeof(float));
        bad |= golden_compare(&g, pass ? "input0_ptfid" : "input0", rows, (size_t)3 * 38 * 299, pass ? 5e-6 : 1e-6, 0);
    }
    free(img); free(rows); golden_close(&g);
    TEST_CHECK(!bad, "preprocessing differs");
    return 0;
}

static int test_inception_forward(void) {
    golden g; ag_error err; ag_inception *net; const ag_array *im32, *im48; float *x, *pool3, *logits, *lnb; int i, bad = 0;
    size_t per = (size_t)3 * 299 * 299;
    memset(&g, 0, sizeof g);
    TEST_CHECK(golden_open(&g, "inception_forward") == 0, "golden");
    net = test_inception_net(&err);
    TEST_CHECK(net != NULL, "network: %s", err.msg);
    ag_inception_set_threads(net, 2);
    im32 = ag_array_list_find(&g.arrays, "images32"); im48 = ag_array_list_find(&g.arrays, "image48");
    TEST_CHECK(im32 && im48 && im32->nbytes >= 3 * 32 * 32 * 3 && im48->nbytes >= 48 * 48 * 3, "golden file lacks images32/image48");
    x = (float *)malloc(per * 4 * sizeof(float)); pool3 = (float *)malloc(4 * 2048 * sizeof(float));
    logits = (float *)malloc(4 * 1008 * sizeof(float)); lnb = (float *)malloc(4 * 1008 * sizeof(float));
    for (i = 0; i < 3; i++) ag_inception_preprocess_tf((const unsigned char *)im32->data + (size_t)i * 32 * 32 * 3, 32, 32, x + (size_t)i * per);
    ag_inception_preprocess_tf((const unsigned char *)im48->data, 48, 48, x + 3 * per);
    TEST_CHECK(ag_inception_forward(net, x, 4, pool3, logits, 1, &err) == 0, "forward: %s", err.msg);
    TEST_CHECK(ag_inception_forward(net, x, 4, NULL, lnb, 0, &err) == 0, "forward: %s", err.msg);
    bad |= golden_compare(&g, "pool3", pool3, 4 * 2048, 1e-5 * max_abs_f32(pool3, 4 * 2048), 0);
    bad |= golden_compare(&g, "logits", logits, 4 * 1008, 3e-5 * max_abs_f32(logits, 4 * 1008), 0);
    bad |= golden_compare(&g, "logits_nobias", lnb, 4 * 1008, 3e-5 * max_abs_f32(lnb, 4 * 1008), 0);
    ag_inception_preprocess_pytorch((const unsigned char *)im32->data, 32, 32, x);
    TEST_CHECK(ag_inception_forward(net, x, 1, pool3, NULL, 0, &err) == 0, "forward: %s", err.msg);
    bad |= golden_compare(&g, "pool3_ptfid", pool3, 2048, 1e-5 * max_abs_f32(pool3, 2048), 0);
    /* a NaN in an image is refused */
    x[12345] = NAN;
    TEST_CHECK(ag_inception_forward(net, x, 1, pool3, NULL, 0, &err) != 0 && strstr(err.msg, "NaN"), "NaN image: %s", err.msg);
    free(x); free(pool3); free(logits); free(lnb);
    ag_inception_free(net); golden_close(&g);
    TEST_CHECK(!bad, "Inception outputs differ from PyTorch");
    return 0;
}

static int test_inception_bad_weights(void) {
    ag_array_list sd; ag_error err; ag_inception *net; ag_array *a; int i;
    memset(&sd, 0, sizeof sd);
    TEST_CHECK(inception_random_weights(&sd, &err) == 0, "%s", err.msg);
    /* wrong shape */
    a = ag_array_list_find(&sd, "Mixed_6c.branch7x7_2.conv.weight");
    a->shape[3] = 5;
    net = ag_inception_from_arrays(&sd, &err);
    TEST_CHECK(!net && strstr(err.msg, "Mixed_6c.branch7x7_2.conv.weight"), "shape: %s", err.msg);
    a->shape[3] = 7;
    /* negative variance */
    a = ag_array_list_find(&sd, "Mixed_7b.branch_pool.bn.running_var");
    ((float *)a->data)[3] = -1.0f;
    net = ag_inception_from_arrays(&sd, &err);
    TEST_CHECK(!net && strstr(err.msg, "Mixed_7b.branch_pool.bn"), "variance: %s", err.msg);
    ((float *)a->data)[3] = 1.0f;
    /* missing key */
    for (i = 0; i < sd.count; i++) if (!strcmp(sd.items[i].name, "fc.weight")) sd.items[i].name[0] = 'X';
    net = ag_inception_from_arrays(&sd, &err);
    TEST_CHECK(!net && strstr(err.msg, "'fc.weight' is missing"), "missing: %s", err.msg);
    ag_array_list_free(&sd);
    return 0;
}

static int test_inception_score_formula(void) {
    golden g; const ag_array *l; double m, s; ag_error err; int bad = 0;
    memset(&g, 0, sizeof g);
    TEST_CHECK(golden_open(&g, "scores") == 0, "golden");
    l = ag_array_list_find(&g.arrays, "logits_a");
    TEST_CHECK(l && l->dtype == AG_DTYPE_F32 && l->nbytes >= (size_t)200 * 1008 * 4, "golden file lacks logits_a [200, 1008] float32");
    TEST_CHECK(ag_inception_score((const float *)l->data, 200, 1008, 10, &m, &s, &err) == 0, "%s", err.msg);
    bad |= rel_close("IS mean", m, array_f64(&g, "is_mean", 0), 1e-9) | rel_close("IS std", s, array_f64(&g, "is_std", 0), 1e-9);
    TEST_CHECK(ag_inception_score((const float *)l->data, 150, 1008, 3, &m, &s, &err) == 0, "%s", err.msg);
    bad |= rel_close("IS3 mean", m, array_f64(&g, "is3_mean", 0), 1e-9) | rel_close("IS3 std", s, array_f64(&g, "is3_std", 0), 1e-9);
    TEST_CHECK(ag_inception_score((const float *)l->data, 5, 1008, 10, &m, &s, &err) != 0, "fewer images than splits refused");
    golden_close(&g);
    TEST_CHECK(!bad, "IS differs from NumPy");
    return 0;
}

static int fid_stats_of(const golden *g, const char *name, int n, int d, ag_fid_stats *st) {
    const ag_array *f = ag_array_list_find(&g->arrays, name); ag_error err;
    if (!f || ag_fid_stats_init(st, d, &err)) return -1;
    /* three uneven batches: the streaming sums must equal one pass */
    if (ag_fid_stats_add(st, (const float *)f->data, 7, &err) || ag_fid_stats_add(st, (const float *)f->data + 7 * d, n / 2, &err) ||
        ag_fid_stats_add(st, (const float *)f->data + (size_t)(7 + n / 2) * d, n - 7 - n / 2, &err)) return -1;
    return ag_fid_stats_finish(st, &err);
}
static int test_fid_formula(void) {
    golden g; ag_fid_stats a, b; double fid; ag_error err; int bad = 0, i;
    memset(&g, 0, sizeof g);
    TEST_CHECK(golden_open(&g, "scores") == 0, "golden");
    TEST_CHECK(fid_stats_of(&g, "feat_a", 300, 64, &a) == 0 && fid_stats_of(&g, "feat_b", 250, 64, &b) == 0, "stats");
    for (i = 0; i < 64; i++) bad |= rel_close("mu_a", a.mu[i], array_f64(&g, "mu_a", (size_t)i), 1e-9);
    for (i = 0; i < 64 * 64; i += 37) bad |= rel_close("sigma_b", b.sigma[i], array_f64(&g, "sigma_b", (size_t)i), 1e-9);
    TEST_CHECK(ag_fid(a.mu, a.sigma, b.mu, b.sigma, 64, &fid, &err) == 0, "%s", err.msg);
    bad |= rel_close("FID", fid, array_f64(&g, "fid", 0), 1e-8);
    TEST_CHECK(ag_fid(a.mu, a.sigma, a.mu, a.sigma, 64, &fid, &err) == 0 && fabs(fid) < 1e-8, "FID of a set with itself is 0 (%g)", fid);
    ag_fid_stats_free(&a); ag_fid_stats_free(&b);
    /* rank-deficient covariance: Cholesky fails, 1e-6·I on both (pytorch-fid's offset) */
    TEST_CHECK(fid_stats_of(&g, "feat_lr_a", 40, 64, &a) == 0 && fid_stats_of(&g, "feat_lr_b", 40, 64, &b) == 0, "stats");
    TEST_CHECK(ag_fid(a.mu, a.sigma, b.mu, b.sigma, 64, &fid, &err) == 0, "%s", err.msg);
    bad |= rel_close("FID low rank", fid, array_f64(&g, "fid_lowrank_chol_both", 0), 1e-8);
    bad |= rel_close("FID low rank vs pytorch-fid", fid, array_f64(&g, "fid_lowrank", 0), 1e-5);
    a.sigma[5] = NAN;
    TEST_CHECK(ag_fid(a.mu, a.sigma, b.mu, b.sigma, 64, &fid, &err) != 0 && strstr(err.msg, "NaN"), "NaN statistics refused: %s", err.msg);
    ag_fid_stats_free(&a); ag_fid_stats_free(&b);
    golden_close(&g);
    TEST_CHECK(!bad, "FID differs from NumPy");
    return 0;
}

static int test_sym_eigenvalues(void) {
    /* a matrix with known spectrum: Q diag(1..n) Qᵀ for a Householder Q */
    enum { N = 9 }; double a[N * N], v[N], eig[N], nv = 0; ag_error err; int i, j, k;
    for (i = 0; i < N; i++) { v[i] = sin(1.0 + i); nv += v[i] * v[i]; }
    for (i = 0; i < N; i++) for (j = 0; j < N; j++) {
        double s = 0;
        for (k = 0; k < N; k++) {
            double qik = (i == k) - 2 * v[i] * v[k] / nv, qjk = (j == k) - 2 * v[j] * v[k] / nv;
            s += qik * (k + 1.0) * qjk;
        }
        a[i * N + j] = s;
    }
    TEST_CHECK(ag_sym_eigenvalues(a, N, eig, &err) == 0, "%s", err.msg);
    for (i = 0; i < N; i++) for (j = i + 1; j < N; j++) if (eig[j] < eig[i]) { double t = eig[i]; eig[i] = eig[j]; eig[j] = t; }
    for (i = 0; i < N; i++) TEST_CHECK(fabs(eig[i] - (i + 1.0)) < 1e-12, "eigenvalue %d: %.17g", i, eig[i]);
    return 0;
}

/* build/score end to end: weights from .safetensors, uint8 and float .npy, a directory of
   PNGs as the reference, --save-stats then --stats; every number equal to the library's */
#if defined(__unix__) || defined(__APPLE__)
static int run_score(const char *args, double *is_mean, double *is_std, double *fid) {
    char cmd[2048], line[256]; FILE *p; int rc;
    *is_mean = *is_std = *fid = NAN;
    snprintf(cmd, sizeof cmd, "./build/score --threads 2 %s 2>/dev/null", args);
    p = popen(cmd, "r");
    if (!p) return -1;
    while (fgets(line, sizeof line, p)) {
        if (!strncmp(line, "IS ", 3)) sscanf(line + 3, "%lf %lf", is_mean, is_std);
        if (!strncmp(line, "FID ", 4)) sscanf(line + 4, "%lf", fid);
    }
    rc = pclose(p);
    return rc;
}
static int test_score_cli(void) {
    ag_array_list sd; ag_error err; ag_rng rng; ag_inception *net; int i, k, c, y, x;
    enum { NG = 6, NR = 4, S = 16 };
    unsigned char gen[NG * S * S * 3], ref[NR * 20 * 20 * 3]; float genf[NG * 3 * S * S];
    float *xin = (float *)malloc((size_t)NG * 3 * 299 * 299 * sizeof(float)), pool[NG * 2048], logits[NG * 1008];
    ag_fid_stats gs, rs; double want_is, want_std, want_fid, want_self, is, sd2, fid; char args[1024]; FILE *f;
    memset(&sd, 0, sizeof sd);
    TEST_CHECK(system("mkdir -p build/cli/ref") == 0, "mkdir");
    TEST_CHECK(inception_random_weights(&sd, &err) == 0, "%s", err.msg);
    TEST_CHECK(ag_safetensors_write("build/cli/inception_random.safetensors", &sd, NULL, &err) == 0, "%s", err.msg);
    net = ag_inception_from_arrays(&sd, &err);
    ag_array_list_free(&sd);
    TEST_CHECK(net != NULL, "%s", err.msg);
    ag_inception_set_threads(net, 2);
    ag_rng_seed(&rng, 5, 5);
    for (i = 0; i < (int)sizeof gen; i++) gen[i] = (unsigned char)(ag_rng_u32(&rng) >> 24);
    for (i = 0; i < (int)sizeof ref; i++) ref[i] = (unsigned char)((ag_rng_u32(&rng) >> 25) + 40);
    for (k = 0; k < NG; k++) for (c = 0; c < 3; c++) for (y = 0; y < S; y++) for (x = 0; x < S; x++)   /* quantises back exactly */
        genf[((k * 3 + c) * S + y) * S + x] = ((float)gen[((k * S + y) * S + x) * 3 + c] + 0.5f) / 127.5f - 1.0f;
    {
        ag_array a; memset(&a, 0, sizeof a);
        a.dtype = AG_DTYPE_U8; a.ndim = 4; a.shape[0] = NG; a.shape[1] = S; a.shape[2] = S; a.shape[3] = 3; a.data = gen; a.nbytes = sizeof gen;
        TEST_CHECK(ag_npy_write("build/cli/gen.npy", &a, &err) == 0, "%s", err.msg);
        a.dtype = AG_DTYPE_F32; a.shape[1] = 3; a.shape[2] = S; a.shape[3] = S; a.data = genf; a.nbytes = sizeof genf;
        TEST_CHECK(ag_npy_write("build/cli/gen_float.npy", &a, &err) == 0, "%s", err.msg);
    }
    for (k = 0; k < NR; k++) {
        char path[64]; snprintf(path, sizeof path, "build/cli/ref/r%d.png", k);
        TEST_CHECK(ag_png_write(path, ref + (size_t)k * 20 * 20 * 3, 20, 20, 3, &err) == 0, "%s", err.msg);
    }
    /* expected values from the library */
    for (k = 0; k < NG; k++) ag_inception_preprocess_tf(gen + (size_t)k * S * S * 3, S, S, xin + (size_t)k * 3 * 299 * 299);
    TEST_CHECK(ag_inception_forward(net, xin, NG, pool, logits, 0, &err) == 0, "%s", err.msg);
    TEST_CHECK(ag_inception_score(logits, NG, 1008, 3, &want_is, &want_std, &err) == 0, "%s", err.msg);
    ag_fid_stats_init(&gs, 2048, &err); ag_fid_stats_add(&gs, pool, NG, &err); ag_fid_stats_finish(&gs, &err);
    for (k = 0; k < NR; k++) ag_inception_preprocess_tf(ref + (size_t)k * 20 * 20 * 3, 20, 20, xin + (size_t)k * 3 * 299 * 299);
    TEST_CHECK(ag_inception_forward(net, xin, NR, pool, NULL, 0, &err) == 0, "%s", err.msg);
    ag_fid_stats_init(&rs, 2048, &err); ag_fid_stats_add(&rs, pool, NR, &err); ag_fid_stats_finish(&rs, &err);
    TEST_CHECK(ag_fid(gs.mu, gs.sigma, rs.mu, rs.sigma, 2048, &want_fid, &err) == 0, "%s", err.msg);
    /* 6 images in 2048 dims: a singular covariance, so FID(x, x) is -2·2048·1e-6 from the offset */
    TEST_CHECK(ag_fid(gs.mu, gs.sigma, gs.mu, gs.sigma, 2048, &want_self, &err) == 0, "%s", err.msg);
    ag_fid_stats_free(&gs); ag_fid_stats_free(&rs); ag_inception_free(net); free(xin);
    /* the program: uint8 .npy against a PNG directory, saving the statistics */
    TEST_CHECK(run_score("--inception build/cli/inception_random.safetensors --splits 3 --batch 4 --save-stats build/cli/gen_stats.npz "
                         "--ref build/cli/ref -- build/cli/gen.npy", &is, &sd2, &fid) == 0, "score failed");
    TEST_CHECK(fabs(is - want_is) <= 2e-6 && fabs(sd2 - want_std) <= 2e-6, "IS %.6f %.6f, library %.6f %.6f", is, sd2, want_is, want_std);
    TEST_CHECK(fabs(fid - want_fid) <= 1e-6 + 1e-6 * fabs(want_fid), "FID %.6f, library %.6f", fid, want_fid);
    /* float images in [-1, 1] against their own saved statistics */
    TEST_CHECK(run_score("--inception build/cli/inception_random.safetensors --splits 3 --stats build/cli/gen_stats.npz build/cli/gen_float.npy",
                         &is, &sd2, &fid) == 0, "score (float npy) failed");
    TEST_CHECK(fabs(is - want_is) <= 2e-6 && fabs(fid - want_self) <= 2e-6, "float npy: IS %.6f (want %.6f), FID %.6f (want %.6f)", is, want_is, fid, want_self);
    /* bad input: a truncated .npy and a missing weights file fail with a non-zero exit */
    f = fopen("build/cli/bad.npy", "wb"); fwrite("\x93NUMPY\x01\x00\x76\x00{'descr'", 1, 18, f); fclose(f);
    snprintf(args, sizeof args, "--inception build/cli/inception_random.safetensors build/cli/bad.npy");
    TEST_CHECK(run_score(args, &is, &sd2, &fid) != 0, "a truncated .npy must fail");
    TEST_CHECK(run_score("--inception build/cli/missing.pth build/cli/gen.npy", &is, &sd2, &fid) != 0, "missing weights must fail");
    remove("build/cli/inception_random.safetensors");
    return 0;
}
#endif

const test_case tests_inception[] = {
    { "inception_weights_bit_exact", test_inception_weights_bit_exact },
    { "inception_preprocess (TF-exact, pytorch-fid)", test_inception_preprocess },
    { "inception_forward (pool3, logits vs PyTorch)", test_inception_forward },
    { "inception_bad_weights", test_inception_bad_weights },
    { "inception_score_formula", test_inception_score_formula },
    { "fid_formula", test_fid_formula },
    { "sym_eigenvalues", test_sym_eigenvalues },
#if defined(__unix__) || defined(__APPLE__)
    { "score_cli (build/score end to end)", test_score_cli },
#endif
    { NULL, NULL }
};
