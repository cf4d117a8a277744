/* test_kernels.c - every SGEMM path against a double-precision reference.

   Also builds alone: cc -std=c99 -O2 -fopenmp -DKERNELS_STANDALONE tests/test_kernels.c -lm
   Each path (scalar, avx2, avx512, neon - those this CPU has) is forced through
   ag__kernels_init_isa, not through the environment, at 1 thread and at 2 threads.

   Two kinds of data, with stated tolerances:
   - dyadic: entries k/8 with |k| <= 8 (C too). Every product is a multiple of 1/64 and every
     partial sum stays below 2^24/64, so any summation order, with or without FMA, is exact:
     the result must EQUAL the reference. This catches every indexing, packing and edge bug.
   - random: uniform in [-1, 1). Any order of summing K products (FMA or separate
     rounding) is off by at most gamma_K = K*u/(1-K*u) times sum_k |a_ik||b_kj| (plus u|C0|
     for beta 1), u = 2^-24; the test allows err <= (K+2)*u*(sum |a||b| + |C0|).
   Plus: beta 0 must ignore NaN garbage in C; columns beyond N in C (ldc > N) must be left
   untouched; repeated runs give the same bits; 1 and 2 threads give the same bits; a
   missing/short scratch buffer falls back to the unpacked loop with the same result. */
#ifdef KERNELS_STANDALONE
#define AUTOGAN_IMPLEMENTATION
#include "../autogan.h"
#include "test.h"
#include <stdlib.h>
#include <stdint.h>
#include <time.h>
#endif

typedef struct tk_rng { uint64_t s; } tk_rng;
static uint32_t tk_next(tk_rng *r) {
    r->s = r->s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(r->s >> 33);
}
static float tk_uniform(tk_rng *r) { return (float)((double)tk_next(r) / 2147483648.0 * 2.0 - 1.0); }
static float tk_dyadic(tk_rng *r) { return (float)((int)(tk_next(r) % 17) - 8) / 8.0f; }

typedef struct tk_problem {
    int M, N, K, ta, tb, lda, ldb, ldc;
    float *A, *B, *C0;       /* C0: initial C (for beta 1) */
    double *ref1, *ref0;     /* reference for beta 1 and beta 0 */
    double *bound;           /* sum_k |a||b| + |C0| */
} tk_problem;

static void tk_free(tk_problem *p) {
    free(p->A); free(p->B); free(p->C0); free(p->ref1); free(p->ref0); free(p->bound);
    memset(p, 0, sizeof *p);
}

static int tk_make(tk_problem *p, int M, int N, int K, int ta, int tb, int dyadic, uint64_t seed) {
    tk_rng r;
    int i, j, k, arows = ta ? K : M, acols = ta ? M : K, brows = tb ? N : K, bcols = tb ? K : N;
    size_t na, nb, nc;
    r.s = seed;
    memset(p, 0, sizeof *p);
    p->M = M; p->N = N; p->K = K; p->ta = ta; p->tb = tb;
    p->lda = acols + 3; p->ldb = bcols + 5; p->ldc = N + 7;  /* strides wider than the rows */
    na = (size_t)arows * p->lda; nb = (size_t)brows * p->ldb; nc = (size_t)M * p->ldc;
    p->A = (float *)malloc((na + 1) * sizeof(float));
    p->B = (float *)malloc((nb + 1) * sizeof(float));
    p->C0 = (float *)malloc((nc + 1) * sizeof(float));
    p->ref1 = (double *)malloc(((size_t)M * N + 1) * sizeof(double));
    p->ref0 = (double *)malloc(((size_t)M * N + 1) * sizeof(double));
    p->bound = (double *)malloc(((size_t)M * N + 1) * sizeof(double));
    if (!p->A || !p->B || !p->C0 || !p->ref1 || !p->ref0 || !p->bound) return -1;
    for (i = 0; i < (int)na; i++) p->A[i] = dyadic ? tk_dyadic(&r) : tk_uniform(&r);
    for (i = 0; i < (int)nb; i++) p->B[i] = dyadic ? tk_dyadic(&r) : tk_uniform(&r);
    for (i = 0; i < (int)nc; i++) p->C0[i] = dyadic ? tk_dyadic(&r) : tk_uniform(&r);
    for (i = 0; i < M; i++)
        for (j = 0; j < N; j++) {
            double s = 0.0, sa = 0.0;
            for (k = 0; k < K; k++) {
                double a = ta ? p->A[(size_t)k * p->lda + i] : p->A[(size_t)i * p->lda + k];
                double b = tb ? p->B[(size_t)j * p->ldb + k] : p->B[(size_t)k * p->ldb + j];
                s += a * b; sa += fabs(a * b);
            }
            p->ref0[(size_t)i * N + j] = s;
            p->ref1[(size_t)i * N + j] = s + p->C0[(size_t)i * p->ldc + j];
            p->bound[(size_t)i * N + j] = sa + fabs(p->C0[(size_t)i * p->ldc + j]);
        }
    return 0;
}

static unsigned char *tk_scratch(const ag__kernels *kern, const tk_problem *p, size_t *bytes) {
    *bytes = ag__sgemm_scratch_bytes(kern, p->M, p->N, p->K);
    return (unsigned char *)malloc(*bytes + 1);
}

/* run one gemm; check values against the reference and the untouched padding. Returns
   0 on pass, prints and returns 1 on failure. out (M*ldc floats) receives C. */
static int tk_run_check(const ag__kernels *kern, const tk_problem *p, float beta, int exact,
                        int use_scratch, float *out) {
    size_t bytes = 0, i, nc = (size_t)p->M * p->ldc;
    unsigned char *scratch = use_scratch ? tk_scratch(kern, p, &bytes) : NULL;
    const float sentinel = -12345.5f;
    int r, j, bad = 0;
    double u = 1.0 / 16777216.0;
    for (i = 0; i < nc; i++) {
        int col = (int)(i % p->ldc);
        if (col >= p->N) out[i] = sentinel;
        else out[i] = beta != 0.0f ? p->C0[i] : NAN;     /* beta 0: garbage must be ignored */
    }
    ag__sgemm(kern, p->ta, p->tb, p->M, p->N, p->K, p->A, p->lda, p->B, p->ldb, beta, out, p->ldc,
              scratch, bytes);
    free(scratch);
    for (r = 0; r < p->M && !bad; r++) {
        for (j = p->N; j < p->ldc; j++)
            if (out[(size_t)r * p->ldc + j] != sentinel) {
                fprintf(stderr, "    %s: wrote outside C at row %d col %d\n", kern->name, r, j);
                bad = 1; break;
            }
        for (j = 0; j < p->N && !bad; j++) {
            double got = out[(size_t)r * p->ldc + j];
            double want = beta != 0.0f ? p->ref1[(size_t)r * p->N + j] : p->ref0[(size_t)r * p->N + j];
            double tol = exact ? 0.0 : (p->K + 2) * u * p->bound[(size_t)r * p->N + j];
            if (!(fabs(got - want) <= tol)) {
                fprintf(stderr, "    %s threads %d: M %d N %d K %d transA %d transB %d beta %g %s: C[%d][%d] = %.9g, want %.9g (tol %.3g)\n",
                        kern->name, kern->num_threads, p->M, p->N, p->K, p->ta, p->tb, (double)beta,
                        exact ? "dyadic" : "random", r, j, got, want, tol);
                bad = 1;
            }
        }
    }
    return bad;
}

static const char *const tk_paths[] = { "scalar", "avx2", "avx512", "neon" };

/* the paths this CPU cannot run are reported as skipped, once per test */
static void tk_report_skips(void) {
    int pi;
    for (pi = 0; pi < 4; pi++) {
        ag__kernels k; char why[96];
        if (ag__kernels_init_isa(&k, tk_paths[pi], 1)) continue;
        snprintf(why, sizeof why, "kernel path '%s' not available on this CPU", tk_paths[pi]);
        test_skip(why);
    }
}

/* for every available path at 1 and 2 threads (par_min 0 so that even small shapes are
   split), every trans combination and both betas */
static int tk_check_shapes(const int (*shapes)[3], int nshapes, int exact, uint64_t seed) {
    int s, ta, tb, pi, th, b, fails = 0;
    tk_report_skips();
    for (s = 0; s < nshapes; s++)
        for (ta = 0; ta < 2; ta++)
            for (tb = 0; tb < 2; tb++) {
                tk_problem p;
                float *out;
                if (tk_make(&p, shapes[s][0], shapes[s][1], shapes[s][2], ta, tb, exact,
                            seed + (uint64_t)s * 4 + ta * 2 + tb)) { tk_free(&p); return 1; }
                out = (float *)malloc(((size_t)p.M * p.ldc + 1) * sizeof(float));
                for (pi = 0; pi < 4; pi++)
                    for (th = 1; th <= 2; th++) {
                        ag__kernels kern;
                        if (!ag__kernels_init_isa(&kern, tk_paths[pi], th)) continue;
                        if (kern.num_threads != th) continue;   /* no OpenMP: 2 threads = 1 thread */
                        kern.par_min = 0;
                        for (b = 0; b < 2; b++)
                            if (tk_run_check(&kern, &p, (float)b, exact, 1, out)) {
                                fails++;
                                if (fails > 5) { free(out); tk_free(&p); return 1; }
                            }
                    }
                free(out);
                tk_free(&p);
            }
    return fails != 0;
}

static const int tk_small_dims[] = { 1, 2, 3, 5, 8, 13, 14, 15, 16, 17, 31, 33 };

static int test_sgemm_small_exact(void) {
    int shapes[12 * 12 * 3][3], n = 0, i, j, k;
    static const int ks[] = { 1, 3, 17 };
    for (i = 0; i < 12; i++)
        for (j = 0; j < 12; j++)
            for (k = 0; k < 3; k++) {
                shapes[n][0] = tk_small_dims[i]; shapes[n][1] = tk_small_dims[j]; shapes[n][2] = ks[k]; n++;
            }
    return tk_check_shapes((const int (*)[3])shapes, n, 1, 1000);
}

/* the conv shapes (forward, dW with transB, dX with transA as M/N/K) at sizes that keep
   the double reference quick, plus odd sizes crossing every block boundary */
static const int tk_conv_shapes[][3] = {
    { 64, 64, 576 }, { 64, 256, 576 }, { 128, 64, 1152 }, { 3, 1024, 64 }, { 256, 16, 2304 },
    { 255, 17, 576 }, { 17, 255, 64 }, { 576, 64, 128 }, { 64, 576, 256 }, { 1, 1000, 300 },
    { 1000, 1, 300 }, { 33, 513, 257 }, { 100, 1100, 9 }, { 1008, 33, 64 }, { 29, 2000, 1 },
    { 3, 3, 2400 }, { 64, 255, 513 },
    { 5, 7001, 3 }, { 2100, 20, 7 }    /* many tiles along N (> 16 x nc); several along M (> mc) */
};

static int test_sgemm_conv_exact(void) {
    return tk_check_shapes(tk_conv_shapes, (int)(sizeof tk_conv_shapes / sizeof tk_conv_shapes[0]), 1, 2000);
}

static int test_sgemm_conv_random(void) {
    static const int shapes[][3] = { { 64, 256, 576 }, { 256, 16, 2304 }, { 255, 17, 576 },
                                     { 17, 255, 64 }, { 33, 513, 257 }, { 3, 3, 2400 } };
    return tk_check_shapes(shapes, (int)(sizeof shapes / sizeof shapes[0]), 0, 3000);
}

static int test_sgemm_medium_random(void) {
    static const int shapes[][3] = { { 1, 1, 1 }, { 3, 17, 64 }, { 17, 3, 255 }, { 64, 64, 64 },
                                     { 255, 64, 17 }, { 31, 47, 1000 } };
    return tk_check_shapes(shapes, (int)(sizeof shapes / sizeof shapes[0]), 0, 4000);
}

/* same bits: run to run (3 runs), 1 vs 2 threads, par_min default vs 0, and the unpacked
   fallback (no scratch) against the reference. */
static int test_sgemm_determinism(void) {
    static const int shapes[][3] = { { 64, 300, 600 }, { 100, 640, 256 }, { 255, 129, 300 } };
    int s, pi, ta, tb, fails = 0;
    tk_report_skips();
    for (s = 0; s < 3; s++)
        for (ta = 0; ta < 2; ta++)
            for (tb = 0; tb < 2; tb++) {
                tk_problem p;
                size_t nc;
                float *first, *out;
                if (tk_make(&p, shapes[s][0], shapes[s][1], shapes[s][2], ta, tb, 0, 77 + s)) { tk_free(&p); return 1; }
                nc = (size_t)p.M * p.ldc;
                first = (float *)malloc((nc + 1) * sizeof(float));
                out = (float *)malloc((nc + 1) * sizeof(float));
                for (pi = 0; pi < 4; pi++) {
                    ag__kernels k1, k2;
                    int run;
                    if (!ag__kernels_init_isa(&k1, tk_paths[pi], 1)) continue;
                    ag__kernels_init_isa(&k2, tk_paths[pi], 2);
                    fails += tk_run_check(&k1, &p, 1.0f, 0, 1, first);
                    for (run = 0; run < 4; run++) {
                        const ag__kernels *k = run < 2 ? &k2 : &k1;
                        fails += tk_run_check(k, &p, 1.0f, 0, 1, out);
                        if (memcmp(first, out, nc * sizeof(float)) != 0) {
                            fprintf(stderr, "    %s: run %d (threads %d) differs in bits from the first run\n",
                                    k->name, run, k->num_threads);
                            fails++;
                        }
                    }
                    if (pi == 0 && s == 2) fails += tk_run_check(&k1, &p, 0.0f, 0, 0, out); /* no scratch */
                }
                free(first); free(out); tk_free(&p);
                if (fails) return 1;
            }
    return 0;
}

/* scalar vs each SIMD path on random data: within the tolerance of each other too, and
   the forced table really is the requested path. */
static int test_kernels_dispatch(void) {
    ag__kernels k;
    int pi, n = 0;
    for (pi = 0; pi < 4; pi++)
        if (ag__kernels_init_isa(&k, tk_paths[pi], 1)) {
            TEST_CHECK(strcmp(ag__kernels_name(&k), tk_paths[pi]) == 0, "asked %s got %s", tk_paths[pi], ag__kernels_name(&k));
            TEST_CHECK(k.mr > 0 && k.nr > 0 && k.kernel && k.pack_a && k.pack_b, "incomplete table for %s", tk_paths[pi]);
            n++;
        }
    TEST_CHECK(n >= 1, "no path at all");
    for (pi = 0; pi < 4; pi++)   /* a 2x3 by 3x2 product worked by hand */
        if (ag__kernels_init_isa(&k, tk_paths[pi], 1)) {
            static const float A[6] = { 1, 2, 3, 4, 5, 6 }, B[6] = { 7, 8, 9, 10, 11, 12 };
            static const float want[4] = { 58, 64, 139, 154 };
            float C[4], scratch_buf[4096];
            TEST_CHECK(ag__sgemm_scratch_bytes(&k, 2, 2, 3) <= sizeof scratch_buf, "scratch for 2x2x3: %lu bytes",
                       (unsigned long)ag__sgemm_scratch_bytes(&k, 2, 2, 3));
            ag__sgemm(&k, 0, 0, 2, 2, 3, A, 3, B, 2, 0.0f, C, 2, scratch_buf, sizeof scratch_buf);
            TEST_CLOSE(tk_paths[pi], C, want, 4, 0.0, 0.0);
        }
    TEST_CHECK(!ag__kernels_init_isa(&k, "bogus", 1), "unknown path accepted");
    ag__kernels_init(&k, 0);
    TEST_CHECK(k.name != NULL && k.num_threads >= 1, "init failed");
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    if (__builtin_cpu_supports("avx512f") && !getenv("AUTOGAN_CPU"))
        TEST_CHECK(strcmp(k.name, "avx512") == 0, "AVX-512F CPU but picked %s", k.name);
#endif
    return 0;
}

const test_case tests_kernels[] = {
    { "kernels_dispatch", test_kernels_dispatch },
    { "sgemm_small_exact", test_sgemm_small_exact },
    { "sgemm_conv_exact", test_sgemm_conv_exact },
    { "sgemm_conv_random", test_sgemm_conv_random },
    { "sgemm_medium_random", test_sgemm_medium_random },
    { "sgemm_determinism", test_sgemm_determinism },
    { 0, 0 }
};

#ifdef KERNELS_STANDALONE
int main(void) {
    int i, pass = 0, fail = 0;
    ag__kernels k;
    ag__kernels_init(&k, 0);
    printf("kernels: default path %s, %d thread(s)%s%s\n", ag__kernels_name(&k), k.num_threads,
           *ag__kernels_note(&k) ? "; note: " : "", ag__kernels_note(&k));
    for (i = 0; tests_kernels[i].name; i++) {
        clock_t t0 = clock();
        int r = tests_kernels[i].fn();
        printf("%-28s %s (%.1f s cpu)\n", tests_kernels[i].name, r ? "FAIL" : "ok",
               (double)(clock() - t0) / CLOCKS_PER_SEC);
        if (r) fail++; else pass++;
    }
    printf("%d passed, %d failed\n", pass, fail);
    return fail != 0;
}
#endif
