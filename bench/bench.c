/* bench.c - how fast autogan.h runs the AutoGAN workloads (CIFAR-10 geometry: 32x32, z 128).

   build/bench WORKLOAD [--threads N] [--iters N] [--warmup N]
   WORKLOAD: search-step | search-iter | derived-step | g-sample | conv | inception | peak | all

   One line per workload (per shape for `conv`) with ms_per_iter=<x> and gflops=<y>
   (GEMM floating-point operations / time), plus the fraction of the measured FMA peak.
   bench/torch_ref.py prints the same lines for PyTorch; run both in one session to compare. */
#define AUTOGAN_IMPLEMENTATION
#include "../autogan.h"
#include "../examples/cli.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#if defined(__unix__) || defined(__APPLE__)
#include <sys/resource.h>
#include <sys/time.h>
#endif

static double now_seconds(void) {
#if defined(__unix__) || defined(__APPLE__)
    struct timeval tv; gettimeofday(&tv, NULL); return (double)tv.tv_sec + 1e-6 * (double)tv.tv_usec;
#else
    return (double)clock() / CLOCKS_PER_SEC;
#endif
}
static double max_rss_mb(void) {
#if defined(__unix__) || defined(__APPLE__)
    struct rusage ru; getrusage(RUSAGE_SELF, &ru);
#if defined(__APPLE__)
    return (double)ru.ru_maxrss / 1048576.0;
#else
    return (double)ru.ru_maxrss / 1024.0;
#endif
#else
    return 0.0;
#endif
}

static int threads = 0, iters = 3, warmup = 1;

static double peak_gflops = 0.0;

static void report(const char *name, const char *extra, double seconds, double flops, int n) {
    double ms = 1e3 * seconds / n, gf = flops / seconds / 1e9;
    printf("%-14s ms_per_iter=%.2f gflops=%.1f", name, ms, gf);
    if (peak_gflops > 0) printf(" peak_fraction=%.2f", gf / peak_gflops);
    printf(" %s\n", extra ? extra : "");
    fflush(stdout);
}

static const int arch_a[14] = { 1, 0, 1, 1, 1, 0, 0, 1, 1, 1, 0, 1, 0, 3 };

static int gan_step_bench(const char *name, int gf, int df) {
    ag_ctx *ctx = ag_ctx_create(1, NULL); ag_generator G; ag_discriminator D; ag_gan gan; ag_error err; ag_rng rng;
    float *real; int i; double t0 = 0, t, f0 = 0; char extra[160];
    if (threads > 0) ag_ctx_set_threads(ctx, threads);
    ag_rng_seed(&rng, 1, 1);
    if (ag_generator_init(&G, gf, 128, 4, 3, &rng, &err) || ag_generator_set_arch(&G, 2, arch_a, 14, &err) ||
        ag_discriminator_init(&D, df, 3, 1, &rng, &err) || ag_gan_init(&gan, &G, &D, 64, 128, 1, 2e-4f, 2e-4f, 0.0f, 0.9f, &err)) {
        fprintf(stderr, "bench: %s\n", err.msg); return 1;
    }
    real = (float *)malloc((size_t)64 * 3 * 32 * 32 * sizeof(float));
    ag_rng_fill_uniform(&rng, real, (size_t)64 * 3 * 32 * 32, -1.0f, 1.0f);
    for (i = 0; i < warmup + iters; i++) {
        if (i == warmup) { t0 = now_seconds(); f0 = ag_ctx_gemm_flops(ctx); }
        if (ag_gan_d_step(ctx, &gan, real, NULL, NULL) || ag_gan_g_step(ctx, &gan, NULL, NULL)) { fprintf(stderr, "bench: %s\n", ag_ctx_error(ctx)); return 1; }
    }
    t = now_seconds() - t0;
    snprintf(extra, sizeof extra, "threads=%d iters=%d cpu=%s max_rss_mb=%.0f arena_mb=%.0f pool_mb=%.0f", ag_ctx_threads(ctx), iters,
             ag_ctx_cpu_name(ctx), max_rss_mb(), ag_ctx_arena_bytes(ctx) / 1048576.0, ag_ctx_pool_bytes(ctx) / 1048576.0);
    report(name, extra, t, ag_ctx_gemm_flops(ctx) - f0, iters);
    free(real); ag_gan_free(&gan); ag_generator_free(&G); ag_discriminator_free(&D); ag_ctx_free(ctx);
    return 0;
}

static int g_sample_bench(void) {
    ag_ctx *ctx = ag_ctx_create(1, NULL); ag_generator G; ag_error err; ag_rng rng; int i, shape[2] = { 100, 128 };
    double t0 = 0, t, f0 = 0; char extra[160];
    if (threads > 0) ag_ctx_set_threads(ctx, threads);
    ag_rng_seed(&rng, 1, 1);
    if (ag_generator_init(&G, 256, 128, 4, 3, &rng, &err) || ag_generator_set_arch(&G, 2, arch_a, 14, &err)) { fprintf(stderr, "bench: %s\n", err.msg); return 1; }
    G.training = 0;
    ag_ctx_set_grad_enabled(ctx, 0);
    for (i = 0; i < warmup + iters; i++) {
        ag_tensor *z, *y;
        if (i == warmup) { t0 = now_seconds(); f0 = ag_ctx_gemm_flops(ctx); }
        ag_ctx_reset(ctx);
        z = ag_tensor_new(ctx, 2, shape);
        if (!z) return 1;
        ag_rng_fill_normal(&rng, z->data, z->size, 0.0f, 1.0f);
        y = ag_generator_forward(ctx, &G, z);
        if (!y) { fprintf(stderr, "bench: %s\n", ag_ctx_error(ctx)); return 1; }
    }
    t = now_seconds() - t0;
    snprintf(extra, sizeof extra, "threads=%d iters=%d images=100 cpu=%s max_rss_mb=%.0f", ag_ctx_threads(ctx), iters, ag_ctx_cpu_name(ctx), max_rss_mb());
    report("g-sample", extra, t, ag_ctx_gemm_flops(ctx) - f0, iters);
    ag_generator_free(&G); ag_ctx_free(ctx);
    return 0;
}

/* per-op: forward, data gradient and weight gradient of the conv shapes of the step */
typedef struct conv_shape { const char *name; int n, c, o, h, k, deconv; } conv_shape;
static int conv_bench(void) {
    static const conv_shape shapes[] = {
        { "g3x3_c256_8",   64, 256, 256,  8, 3, 0 }, { "g3x3_c256_16", 64, 256, 256, 16, 3, 0 },
        { "g3x3_c256_32",  64, 256, 256, 32, 3, 0 }, { "g3x3_c128_32", 64, 128, 128, 32, 3, 0 },
        { "g1x1_c256_32",  64, 256, 256, 32, 1, 0 }, { "d3x3_c128_16", 64, 128, 128, 16, 3, 0 },
        { "d3x3_c64_32",   64,  64,  64, 32, 3, 0 }, { "deconv_c256_16", 64, 256, 256, 16, 2, 1 },
        { NULL, 0, 0, 0, 0, 0, 0 } };
    int s;
    for (s = 0; shapes[s].name; s++) {
        const conv_shape *cs = &shapes[s]; ag_ctx *ctx = ag_ctx_create(1, NULL); ag_rng rng; int i, pass;
        int xs[4], ws[4]; ag_tensor *x, *w, *b, *y; int bn = cs->o;
        if (threads > 0) ag_ctx_set_threads(ctx, threads);
        ag_rng_seed(&rng, 2, 2);
        xs[0] = cs->n; xs[1] = cs->c; xs[2] = xs[3] = cs->h;
        ws[0] = cs->deconv ? cs->c : cs->o; ws[1] = cs->deconv ? cs->o : cs->c; ws[2] = ws[3] = cs->k;
        for (pass = 0; pass < 3; pass++) {   /* 0 forward, 1 data gradient, 2 weight gradient */
            double tsum = 0, fsum = 0; char name[64], extra[96];
            for (i = 0; i < warmup + iters; i++) {
                double t0, f0;
                ag_ctx_reset(ctx);
                x = ag_tensor_new(ctx, 4, xs); w = ag_tensor_new(ctx, 4, ws); b = ag_tensor_zeros(ctx, 1, &bn);
                if (!x || !w || !b) { fprintf(stderr, "bench: %s\n", ag_ctx_error(ctx)); return 1; }
                ag_rng_fill_normal(&rng, x->data, x->size, 0, 1); ag_rng_fill_normal(&rng, w->data, w->size, 0, 0.05f);
                x->requires_grad = pass == 1; w->requires_grad = pass == 2;
                ag_ctx_set_grad_enabled(ctx, pass > 0);
                t0 = now_seconds(); f0 = ag_ctx_gemm_flops(ctx);
                y = cs->deconv ? ag_conv_transpose2d(ctx, x, w, b, 2, 0) : ag_conv2d(ctx, x, w, b, 1, 1, cs->k / 2, cs->k / 2);
                ag_ctx_set_grad_enabled(ctx, 1);
                if (!y) { fprintf(stderr, "bench: %s\n", ag_ctx_error(ctx)); return 1; }
                if (pass > 0) {   /* time the backward alone */
                    t0 = now_seconds(); f0 = ag_ctx_gemm_flops(ctx);
                    if (ag_backward_with(ctx, y, y->data)) { fprintf(stderr, "bench: %s\n", ag_ctx_error(ctx)); return 1; }
                }
                if (i >= warmup) { tsum += now_seconds() - t0; fsum += ag_ctx_gemm_flops(ctx) - f0; }
            }
            snprintf(name, sizeof name, "conv:%s:%s", cs->name, pass == 0 ? "fwd" : pass == 1 ? "dgrad" : "wgrad");
            snprintf(extra, sizeof extra, "threads=%d iters=%d cpu=%s", ag_ctx_threads(ctx), iters, ag_ctx_cpu_name(ctx));
            report(name, extra, tsum, fsum, iters);
        }
        ag_ctx_free(ctx);
    }
    return 0;
}

/* the FID Inception on a batch of 50 299x299 images (random weights: speed only) */
static int inception_bench(void) {
    ag_array_list sd; ag_error err; ag_rng rng; ag_inception *net; float *x, *pool3, *logits; int i, n = 50;
    double t0 = 0, t; char extra[160]; size_t k;
    memset(&sd, 0, sizeof sd);
    ag_rng_seed(&rng, 4, 4);
    net = NULL;
    if (ag_inception_random_state_dict(&sd, &rng, &err) || !(net = ag_inception_from_arrays(&sd, &err))) { fprintf(stderr, "bench: %s\n", err.msg); return 1; }
    ag_array_list_free(&sd);
    if (threads > 0) ag_inception_set_threads(net, threads);
    x = (float *)malloc((size_t)n * 3 * 299 * 299 * sizeof(float)); pool3 = (float *)malloc((size_t)n * 2048 * sizeof(float));
    logits = (float *)malloc((size_t)n * 1008 * sizeof(float));
    for (k = 0; k < (size_t)n * 3 * 299 * 299; k++) x[k] = ag_rng_uniform(&rng) * 2.0f - 1.0f;
    for (i = 0; i < warmup + iters; i++) {
        if (i == warmup) t0 = now_seconds();
        if (ag_inception_forward(net, x, n, pool3, logits, 0, &err)) { fprintf(stderr, "bench: %s\n", err.msg); return 1; }
    }
    t = now_seconds() - t0;
    snprintf(extra, sizeof extra, "threads=%d iters=%d images=%d img_per_s=%.1f cpu=%s max_rss_mb=%.0f", threads > 0 ? threads : 0, iters, n,
             n * iters / t, ag_ctx_cpu_name(net->ctx), max_rss_mb());
    /* 5.71 GMAC per image */
    report("inception", extra, t, 2.0 * 5.713e9 * n * iters, iters);
    free(x); free(pool3); free(logits); ag_inception_free(net);
    return 0;
}


/* search-iter: what one search iteration costs, split as the paper reports its search cost:
   shared GAN training (an architecture sampled per D step, D step, a G step every n_critic),
   reward evaluation (G in eval mode on rl_num_eval_img images, then the scorer's IS), and the
   controller (sampling + REINFORCE updates). Unit costs are measured at each stage's
   resolution; the totals are those units times the counts of one iteration of a preset:
   paper (CIFAR-10: 782 D steps x 15 epochs, n_critic 5, 30 controller steps x 5,000 images
   through Inception-v3) and demo (--preset demo: 64 D steps, 8 controller steps x 500 images
   through the compact classifier). */
typedef struct si_geom { const char *name; int gf, df, latent, C, dis_bs, gen_bs, n_critic, d_steps, ctrl_steps, eval_imgs, inception; } si_geom;
static int search_iter_bench(void) {
    static const si_geom geoms[2] = {
        { "paper", 128, 64, 128, 3, 64, 128, 5, 782 * 15, 30, 5000, 1 },
        { "demo", 32, 32, 64, 1, 32, 32, 5, 64, 8, 500, 0 },
    };
    ag_error err; ag_rng rng; int gi, stage, i; double t0;
    double t_inception_img = 0, t_classifier_img = 0;
    /* scorers: per-image cost (resolution independent: both resize to their input) */
    {
        ag_array_list sd; ag_inception *net; int n = 2; float *x, *logits;
        memset(&sd, 0, sizeof sd); ag_rng_seed(&rng, 2, 1);
        if (ag_inception_random_state_dict(&sd, &rng, &err) || !(net = ag_inception_from_arrays(&sd, &err))) { fprintf(stderr, "bench: %s\n", err.msg); return 1; }
        if (threads > 0) ag_inception_set_threads(net, threads);
        x = (float *)malloc((size_t)n * 3 * 299 * 299 * sizeof(float)); logits = (float *)malloc((size_t)n * 1008 * sizeof(float));
        ag_rng_fill_uniform(&rng, x, (size_t)n * 3 * 299 * 299, -1.0f, 1.0f);
        if (ag_inception_forward(net, x, n, NULL, logits, 0, &err)) { fprintf(stderr, "bench: %s\n", err.msg); return 1; }
        t0 = now_seconds();
        for (i = 0; i < iters; i++) if (ag_inception_forward(net, x, n, NULL, logits, 0, &err)) { fprintf(stderr, "bench: %s\n", err.msg); return 1; }
        t_inception_img = (now_seconds() - t0) / (iters * n);
        free(x); free(logits); ag_inception_free(net); ag_array_list_free(&sd);
    }
    {
        ag_classifier cls; ag_scorer *sc; int n = 100; float *x; double m, sdv;
        ag_rng_seed(&rng, 3, 1);
        if (ag_classifier_init(&cls, 1, 28, 10, &rng, &err) || !(sc = ag_scorer_from_classifier(&cls, &err))) { fprintf(stderr, "bench: %s\n", err.msg); return 1; }
        if (threads > 0) ag_scorer_set_threads(sc, threads);
        x = (float *)malloc((size_t)n * 32 * 32 * sizeof(float));
        ag_rng_fill_uniform(&rng, x, (size_t)n * 32 * 32, -1.0f, 1.0f);
        if (ag_scorer_inception_score(sc, x, n, 1, 32, 32, 10, &m, &sdv, &err)) { fprintf(stderr, "bench: %s\n", err.msg); return 1; }
        t0 = now_seconds();
        for (i = 0; i < iters; i++) if (ag_scorer_inception_score(sc, x, n, 1, 32, 32, 10, &m, &sdv, &err)) { fprintf(stderr, "bench: %s\n", err.msg); return 1; }
        t_classifier_img = (now_seconds() - t0) / (iters * n);
        free(x); ag_scorer_free(sc); ag_classifier_free(&cls);
    }
    printf("search-iter    scorer per image: inception %.2f ms, classifier %.3f ms\n", 1e3 * t_inception_img, 1e3 * t_classifier_img);
    for (gi = 0; gi < 2; gi++) {
        const si_geom *g = &geoms[gi];
        for (stage = 0; stage < 3; stage++) {
            ag_ctx *ctx = ag_ctx_create(1, NULL); ag_generator G; ag_discriminator D; ag_gan gan; ag_search_state st; ag_kept_archs *kept;
            int R = ag_stage_resolution(stage, 4), arch[AG_ARCH_MAX], shape[2], k, ebs = 100;
            float *real, adv = 0.1f; double t_d, t_g, t_sample, t_gen, t_upd, shared, reward, ctrl, total;
            if (threads > 0) ag_ctx_set_threads(ctx, threads);
            ag_rng_seed(&rng, 1, 1);
            if (ag_generator_init(&G, g->gf, g->latent, 4, g->C, &rng, &err) || ag_discriminator_init(&D, g->df, g->C, 1, &rng, &err) ||
                ag_discriminator_set_stage(&D, stage, &err) ||
                ag_gan_init(&gan, &G, &D, g->dis_bs, g->gen_bs, g->n_critic, 2e-4f, 2e-4f, 0.0f, 0.9f, &err) ||
                ag_search_state_init(&st, 100, 3.5e-4f, 0.0f, 0.9f, 500, 1, &err)) { fprintf(stderr, "bench: %s\n", err.msg); return 1; }
            if (stage) {   /* kept prefixes as after a growth */
                int pre[AG_ARCH_MAX] = { 1, 0, 1, 1, 1, 0, 0, 1, 1 }; float hc[100];
                ag_rng_fill_normal(&rng, hc, 100, 0.0f, 0.5f);
                if (ag_kept_archs_set(&st.kept, 1, ag_arch_len(stage - 1), 100, pre, AG_ARCH_MAX, hc, hc, &err) ||
                    ag_search_new_controller(&st, stage, &err)) { fprintf(stderr, "bench: %s\n", err.msg); return 1; }
            }
            kept = &st.kept;
            real = (float *)malloc((size_t)g->dis_bs * g->C * R * R * sizeof(float));
            ag_rng_fill_uniform(&rng, real, (size_t)g->dis_bs * g->C * R * R, -1.0f, 1.0f);
            /* sampling an architecture (once per D step and per controller step) */
            t0 = now_seconds();
            for (i = 0; i < 20; i++) if (ag_controller_sample(ctx, &st.ctrl, &st.rng, kept, 1, arch, NULL, NULL, NULL, NULL, NULL)) { fprintf(stderr, "bench: %s\n", ag_ctx_error(ctx)); return 1; }
            t_sample = (now_seconds() - t0) / 20;
            ag_generator_set_arch(&G, stage, arch, ag_arch_len(stage), NULL);
            /* D and G steps */
            if (ag_gan_d_step(ctx, &gan, real, NULL, NULL) || ag_gan_g_step(ctx, &gan, NULL, NULL)) { fprintf(stderr, "bench: %s\n", ag_ctx_error(ctx)); return 1; }
            t0 = now_seconds();
            for (i = 0; i < iters; i++) if (ag_gan_d_step(ctx, &gan, real, NULL, NULL)) return 1;
            t_d = (now_seconds() - t0) / iters;
            t0 = now_seconds();
            for (i = 0; i < iters; i++) if (ag_gan_g_step(ctx, &gan, NULL, NULL)) return 1;
            t_g = (now_seconds() - t0) / iters;
            /* G in eval mode, 100 images per batch */
            G.training = 0; ag_ctx_set_grad_enabled(ctx, 0);
            t0 = now_seconds();
            for (i = 0; i < iters; i++) {
                ag_tensor *z, *y; ag_ctx_reset(ctx); shape[0] = ebs; shape[1] = g->latent;
                z = ag_tensor_new(ctx, 2, shape); ag_rng_fill_normal(&rng, z->data, z->size, 0.0f, 1.0f);
                if (!(y = ag_generator_forward(ctx, &G, z))) { fprintf(stderr, "bench: %s\n", ag_ctx_error(ctx)); return 1; }
            }
            t_gen = (now_seconds() - t0) / (iters * ebs);
            ag_ctx_set_grad_enabled(ctx, 1); G.training = 1;
            /* a REINFORCE update */
            {
                int T = st.ctrl.num_tokens, acts[5]; for (k = 0; k < T; k++) acts[k] = arch[ag_arch_len(stage) - T + k];
                t0 = now_seconds();
                for (i = 0; i < 20; i++) if (ag_controller_update(ctx, &st.ctrl, &st.ctrl_opt, 1, stage ? kept->h : NULL, stage ? kept->c : NULL, acts, &adv, 1e-3f, NULL)) { fprintf(stderr, "bench: %s\n", ag_ctx_error(ctx)); return 1; }
                t_upd = (now_seconds() - t0) / 20;
            }
            shared = g->d_steps * (t_sample + t_d) + (g->d_steps + g->n_critic - 1) / g->n_critic * t_g;
            reward = (double)g->ctrl_steps * g->eval_imgs * (t_gen + (g->inception ? t_inception_img : t_classifier_img));
            ctrl = g->ctrl_steps * (t_sample + t_upd);
            total = shared + reward + ctrl;
            printf("search-iter    preset=%s stage=%d res=%d units: sample_arch=%.2fms d_step=%.1fms g_step=%.1fms g_eval_img=%.3fms ctrl_update=%.2fms"
                   " | one iteration: shared=%.1fs (%.0f%%) reward=%.1fs (%.0f%%) controller=%.2fs (%.1f%%) total=%.1fs threads=%d\n",
                   g->name, stage, R, 1e3 * t_sample, 1e3 * t_d, 1e3 * t_g, 1e3 * t_gen, 1e3 * t_upd, shared, 100 * shared / total, reward,
                   100 * reward / total, ctrl, 100 * ctrl / total, total, ag_ctx_threads(ctx));
            fflush(stdout);
            free(real); ag_search_state_free(&st); ag_gan_free(&gan); ag_generator_free(&G); ag_discriminator_free(&D); ag_ctx_free(ctx);
        }
    }
    return 0;
}

/* scoring with the compact classifier: 1,000 generator-style images (floats in [-1, 1],
   1 x 32 x 32) through ag_scorer_forward (quantisation, normalisation, eval forward, logits
   and features), random weights (the speed does not depend on them) */
static int classifier_bench(void) {
    ag_error err; ag_rng rng; ag_classifier net; ag_scorer *sc; float *x, *feat, *logits; int i, n = 1000;
    double t0 = 0, t, cpu; clock_t c0 = 0; char extra[240]; size_t k;
    ag_rng_seed(&rng, 5, 5);
    if (ag_classifier_init(&net, 1, 32, 10, &rng, &err) || !(sc = ag_scorer_from_classifier(&net, &err))) { fprintf(stderr, "bench: %s\n", err.msg); return 1; }
    ag_classifier_free(&net);
    if (threads > 0) ag_scorer_set_threads(sc, threads);
    x = (float *)malloc((size_t)n * 32 * 32 * sizeof(float)); feat = (float *)malloc((size_t)n * 256 * sizeof(float));
    logits = (float *)malloc((size_t)n * 10 * sizeof(float));
    for (k = 0; k < (size_t)n * 32 * 32; k++) x[k] = ag_rng_uniform(&rng) * 2.0f - 1.0f;
    for (i = 0; i < warmup + iters; i++) {
        if (i == warmup) { t0 = now_seconds(); c0 = clock(); }
        if (ag_scorer_forward(sc, x, n, 1, 32, 32, logits, feat, &err)) { fprintf(stderr, "bench: %s\n", err.msg); return 1; }
    }
    t = now_seconds() - t0;
    cpu = (double)(clock() - c0) / CLOCKS_PER_SEC;   /* all threads' CPU time: on a shared machine the wall time includes waiting */
    snprintf(extra, sizeof extra, "threads=%d iters=%d images=%d img_per_s=%.0f s_per_1000=%.3f cpu_s_per_1000=%.3f max_rss_mb=%.0f", threads > 0 ? threads : 0, iters, n,
             n * iters / t, 1000.0 * t / ((double)n * iters), 1000.0 * cpu / ((double)n * iters), max_rss_mb());
    /* 13.44 MMAC per 1 x 32 x 32 image (convs and fc) */
    report("classifier", extra, t, 2.0 * 13.44e6 * n * iters, iters);
    free(x); free(feat); free(logits); ag_scorer_free(sc);
    return 0;
}

int main(int argc, char **argv) {
    const char *w = NULL; int rc = 0; cli c;
    cli_start(&c, "bench", argc, argv);
    while (cli_next(&c)) {
        if (cli_is(&c, "--threads")) threads = cli_threads(&c);
        else if (cli_is(&c, "--iters")) iters = (int)cli_int(&c, 1, 1000000);
        else if (cli_is(&c, "--warmup")) warmup = (int)cli_int(&c, 0, 1000000);
        else if (cli_is(&c, "-h") || cli_is(&c, "--help")) {
            printf("usage: bench [search-step|search-iter|derived-step|g-sample|conv|inception|classifier|peak|all] [--threads N] [--iters N] [--warmup N]\n");
            return 0;
        } else if (cli_positional(&c) && !w) w = c.arg;
        else cli_unknown(&c);
    }
    if (!w) w = "all";
    if (!strcmp(w, "peak") || !strcmp(w, "conv") || !strcmp(w, "all")) {
        /* the machine's limit: independent FMA chains on every thread of the chosen path */
        ag_ctx *ctx = ag_ctx_create(1, NULL);
        if (threads > 0) ag_ctx_set_threads(ctx, threads);
        peak_gflops = ag_ctx_fma_peak_gflops(ctx);
        printf("%-14s gflops=%.1f threads=%d cpu=%s (measured FMA peak)\n", "peak", peak_gflops, ag_ctx_threads(ctx), ag_ctx_cpu_name(ctx));
        ag_ctx_free(ctx);
    }
    if (strcmp(w, "search-step") && strcmp(w, "search-iter") && strcmp(w, "derived-step") && strcmp(w, "g-sample") && strcmp(w, "conv") && strcmp(w, "inception") &&
        strcmp(w, "classifier") && strcmp(w, "peak") && strcmp(w, "all")) { fprintf(stderr, "bench: unknown workload '%s'\n", w); return 2; }
    if (!strcmp(w, "search-step") || !strcmp(w, "all")) rc |= gan_step_bench("search-step", 128, 64);
    if (!strcmp(w, "search-iter")) rc |= search_iter_bench();   /* not in all: it measures Inception too */
    if (!strcmp(w, "derived-step") || !strcmp(w, "all")) rc |= gan_step_bench("derived-step", 256, 128);
    if (!strcmp(w, "g-sample") || !strcmp(w, "all")) rc |= g_sample_bench();
    if (!strcmp(w, "conv") || !strcmp(w, "all")) rc |= conv_bench();
    if (!strcmp(w, "inception") || !strcmp(w, "all")) rc |= inception_bench();
    if (!strcmp(w, "classifier") || !strcmp(w, "all")) rc |= classifier_bench();
    return rc;
}
