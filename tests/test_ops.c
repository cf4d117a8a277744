/* test_ops.c - every op against PyTorch golden files (tests/golden/data/op_*.safetensors)
   and against central finite differences; bad arguments give errors, not crashes.

   Tolerances. Golden forward outputs: |got-want| <= 2e-5 + 2e-4|want| (float32 with a
   different summation order; values are O(1)). Gradients: the same relative bound, with
   the absolute part 5e-5 since gradients sum more terms. Finite differences (float32
   ops, step 1e-2 on inputs kept away from kinks): |num-ana| <= 2e-3 + 2e-2|ana|, which a
   wrong formula (a missing term or factor) exceeds by far. */
#ifndef TEST_DATA_DIR
#define TEST_DATA_DIR "tests"
#endif

typedef struct golden { ag_array_list arrays; char *meta; char path[512]; } golden;

static int golden_open(golden *g, const char *name) {
    ag_error err;
    snprintf(g->path, sizeof g->path, "%s/golden/data/%s.safetensors", TEST_DATA_DIR, name);
    if (ag_safetensors_read(g->path, &g->arrays, &g->meta, &err)) {
        fprintf(stderr, "    cannot read golden file: %s\n", err.msg);
        return 1;
    }
    return 0;
}
static void golden_close(golden *g) { ag_array_list_free(&g->arrays); free(g->meta); }
static int golden_int(const golden *g, const char *key, int dflt) {
    char v[64];
    if (ag_json_get_string(g->meta, key, v, sizeof v)) return dflt;
    return atoi(v);
}
static double golden_float(const golden *g, const char *key, double dflt) {
    char v[64];
    if (ag_json_get_string(g->meta, key, v, sizeof v)) return dflt;
    return strtod(v, NULL);
}
/* an arena tensor holding the golden array `name` (NULL if absent) */
static ag_tensor *golden_tensor(ag_ctx *ctx, const golden *g, const char *name, int requires_grad) {
    const ag_array *a = ag_array_list_find(&g->arrays, name);
    int shape[4], i; ag_tensor *t;
    if (!a || a->ndim > 4) return NULL;
    for (i = 0; i < a->ndim; i++) shape[i] = (int)a->shape[i];
    if (a->ndim == 0) shape[0] = 1;
    t = ag_tensor_new(ctx, a->ndim ? a->ndim : 1, shape);
    if (!t) return NULL;
    ag_array_to_f32(a, t->data, NULL);
    t->requires_grad = requires_grad;
    return t;
}
static int golden_compare(const golden *g, const char *name, const float *got, size_t n, double atol, double rtol) {
    const ag_array *a = ag_array_list_find(&g->arrays, name);
    float *want; int rc; char what[600];
    if (!a) { fprintf(stderr, "    %s: golden tensor '%s' missing\n", g->path, name); return 1; }
    if (a->nbytes / 4 != n || a->dtype != AG_DTYPE_F32) { fprintf(stderr, "    %s: '%s' has %zu elements, computed %zu\n", g->path, name, a->nbytes / 4, n); return 1; }
    want = (float *)a->data;
    snprintf(what, sizeof what, "%s:%s", g->path, name);
    rc = test_close_arrays(what, got, want, n, atol, rtol);
    return rc;
}

/* runs the op of a golden file on its inputs, returns up to 2 outputs */
static int golden_run_op(ag_ctx *ctx, const golden *g, const char *op, const char *cs, ag_tensor **x, ag_tensor **ys,
                         ag_tensor **extra) {
    ag_tensor *rm = NULL, *rv = NULL; int64_t nbt = 0;
    ys[0] = ys[1] = NULL;
    if (!strcmp(op, "linear")) ys[0] = ag_linear(ctx, x[0], x[1], x[2]);
    else if (!strcmp(op, "conv2d")) ys[0] = ag_conv2d(ctx, x[0], x[1], x[2], golden_int(g, "stride_h", 1), golden_int(g, "stride_w", 1), golden_int(g, "pad_h", 0), golden_int(g, "pad_w", 0));
    else if (!strcmp(op, "conv_transpose2d")) ys[0] = ag_conv_transpose2d(ctx, x[0], x[1], x[2], golden_int(g, "stride", 1), golden_int(g, "pad", 0));
    else if (!strcmp(op, "upsample_nearest")) ys[0] = ag_upsample_nearest(ctx, x[0], golden_int(g, "out_h", 0), golden_int(g, "out_w", 0));
    else if (!strcmp(op, "upsample_bilinear")) ys[0] = ag_upsample_bilinear(ctx, x[0], golden_int(g, "out_h", 0), golden_int(g, "out_w", 0));
    else if (!strcmp(op, "avg_pool2d")) ys[0] = ag_avg_pool2d(ctx, x[0], golden_int(g, "kernel", 2), golden_int(g, "stride", 2), golden_int(g, "pad", 0), golden_int(g, "count_include_pad", 1));
    else if (!strcmp(op, "max_pool2d")) ys[0] = ag_max_pool2d(ctx, x[0], golden_int(g, "kernel", 2), golden_int(g, "stride", 2), golden_int(g, "pad", 0));
    else if (!strcmp(op, "relu")) ys[0] = ag_relu(ctx, x[0]);
    else if (!strcmp(op, "tanh")) ys[0] = ag_tanh(ctx, x[0]);
    else if (!strcmp(op, "sigmoid")) ys[0] = ag_sigmoid(ctx, x[0]);
    else if (!strcmp(op, "add")) ys[0] = ag_add(ctx, x[0], x[1]);
    else if (!strcmp(op, "mul")) ys[0] = ag_mul(ctx, x[0], x[1]);
    else if (!strcmp(op, "concat")) ys[0] = ag_concat_channels(ctx, x, 3);
    else if (!strcmp(op, "sum_hw")) ys[0] = ag_sum_hw(ctx, x[0]);
    else if (!strcmp(op, "mean")) ys[0] = ag_mean(ctx, x[0]);
    else if (!strcmp(op, "batchnorm2d")) {
        rm = golden_tensor(ctx, g, "running_mean", 0); rv = golden_tensor(ctx, g, "running_var", 0);
        ys[0] = ag_batch_norm2d(ctx, x[0], x[1], x[2], rm, rv, &nbt, golden_int(g, "training", 1),
                                (float)golden_float(g, "momentum", 0.1), (float)golden_float(g, "eps", 1e-5));
        extra[0] = rm; extra[1] = rv;
    } else if (!strcmp(op, "instancenorm2d")) ys[0] = ag_instance_norm2d(ctx, x[0], (float)golden_float(g, "eps", 1e-5));
    else if (!strcmp(op, "spectral_norm")) {
        ag_tensor *u = golden_tensor(ctx, g, "u", 0), *v = golden_tensor(ctx, g, "v", 0);
        ys[0] = ag_spectral_norm(ctx, x[1], u, v, golden_int(g, "training", 1), (float)golden_float(g, "eps", 1e-12));
        extra[0] = u; extra[1] = v;
    } else if (!strcmp(op, "hinge_d")) ys[0] = ag_hinge_loss_d(ctx, x[0], x[1]);
    else if (!strcmp(op, "hinge_g")) ys[0] = ag_hinge_loss_g(ctx, x[0]);
    else if (!strcmp(op, "cross_entropy")) {
        const ag_array *t = ag_array_list_find(&g->arrays, "target");
        ys[0] = t ? ag_cross_entropy(ctx, x[0], (const int64_t *)t->data) : NULL;
    } else if (!strcmp(op, "log_softmax")) ys[0] = ag_log_softmax(ctx, x[0]);
    else if (!strcmp(op, "embedding")) {
        const ag_array *t = ag_array_list_find(&g->arrays, "index");
        ys[0] = t ? ag_embedding(ctx, x[1], (const int64_t *)t->data, (int)t->shape[0]) : NULL;
    } else if (!strcmp(op, "lstm_cell")) {
        ag_tensor *h0 = golden_tensor(ctx, g, "h0", 1), *c0 = golden_tensor(ctx, g, "c0", 1);
        extra[0] = h0; extra[1] = c0;
        ys[0] = ag_lstm_cell(ctx, x[0], h0, c0, x[1], x[2], x[3], x[4], &ys[1]);
    } else { fprintf(stderr, "    %s: unknown op '%s' (case %s)\n", g->path, op, cs); return 1; }
    if (!ys[0]) { fprintf(stderr, "    %s: op failed: %s\n", g->path, ag_ctx_error(ctx)); return 1; }
    return 0;
}

/* every kernel path this CPU has: the golden tests run under each */
static const char *const test_isas[] = { "scalar", "avx2", "avx512", "neon", NULL };
/* selects a kernel path; one the machine lacks is reported as skipped (the caller returns 0) */
static int test_force_isa(ag_ctx *ctx, const char *isa) {
    int ok = ag__kernels_init_isa(ctx->kern, isa, ag_ctx_threads(ctx));
    if (!ok) { char why[96]; snprintf(why, sizeof why, "kernel path '%s' not available on this CPU", isa); test_skip(why); }
    return ok;
}

static int golden_op_file(const char *name, const char *isa) {
    golden g; ag_ctx *ctx; ag_tensor *x[5], *ys[2], *extra[2] = { NULL, NULL }, *loss = NULL; char op[64], cs[64], key[16];
    int i, bad = 0, wino;
    memset(&g, 0, sizeof g);
    if (golden_open(&g, name)) return 1;
    ag_json_get_string(g.meta, "op", op, sizeof op); ag_json_get_string(g.meta, "case", cs, sizeof cs);
    ctx = ag_ctx_create(1, NULL);
    if (!test_force_isa(ctx, isa)) { ag_ctx_free(ctx); golden_close(&g); return 0; }
    for (i = 0; i < 5; i++) { snprintf(key, sizeof key, "x%d", i); x[i] = golden_tensor(ctx, &g, key, 1); }
    if (golden_run_op(ctx, &g, op, cs, x, ys, extra)) { ag_ctx_free(ctx); golden_close(&g); return 1; }
    /* Winograd F(4x4, 3x3) rounds differently from a direct sum: its error grows with the
       largest output (here ~20), not with each element, hence the absolute 3e-4 */
    wino = strstr(cs, "_wino") != NULL;
    bad |= golden_compare(&g, "y", ys[0]->data, ys[0]->size, wino ? 3e-4 : 2e-5, 2e-4);
    if (ys[1]) bad |= golden_compare(&g, "y1", ys[1]->data, ys[1]->size, 2e-5, 2e-4);
    if (!strcmp(op, "batchnorm2d") && ag_array_list_find(&g.arrays, "running_mean_out")) {
        bad |= golden_compare(&g, "running_mean_out", extra[0]->data, extra[0]->size, 2e-6, 2e-5);
        bad |= golden_compare(&g, "running_var_out", extra[1]->data, extra[1]->size, 2e-6, 2e-5);
    }
    if (!strcmp(op, "spectral_norm")) {
        bad |= golden_compare(&g, "u_out", extra[0]->data, extra[0]->size, 2e-5, 2e-4);
        bad |= golden_compare(&g, "v_out", extra[1]->data, extra[1]->size, 2e-5, 2e-4);
    }
    /* L = sum(y*gy) (+ sum(y1*gy1)) through the graph, then backward */
    for (i = 0; i < 2 && ys[i]; i++) {
        ag_tensor *gy = golden_tensor(ctx, &g, i ? "gy1" : "gy", 0), *term;
        if (!gy) { fprintf(stderr, "    %s: gy missing\n", g.path); bad = 1; break; }
        term = ag_sum(ctx, ag_mul(ctx, ys[i], ag_reshape(ctx, gy, ys[i]->ndim, ys[i]->shape)));
        loss = loss ? ag_add(ctx, loss, term) : term;
    }
    if (!bad && (!loss || ag_backward(ctx, loss))) { fprintf(stderr, "    %s: backward failed: %s\n", g.path, ag_ctx_error(ctx)); bad = 1; }
    if (!bad) {
        for (i = 0; i < 5; i++) {
            snprintf(key, sizeof key, "gx%d", i);
            if (!ag_array_list_find(&g.arrays, key)) continue;
            if (!x[i] || !x[i]->grad) { fprintf(stderr, "    %s: no gradient for x%d\n", g.path, i); bad = 1; continue; }
            bad |= golden_compare(&g, key, x[i]->grad, x[i]->size, wino ? 3e-4 : 5e-5, 2e-4);
        }
        if (!strcmp(op, "lstm_cell")) {
            bad |= golden_compare(&g, "gh0", extra[0]->grad, extra[0]->size, 5e-5, 2e-4);
            bad |= golden_compare(&g, "gc0", extra[1]->grad, extra[1]->size, 5e-5, 2e-4);
        }
    }
    ag_ctx_free(ctx);
    golden_close(&g);
    return bad;
}

static const char *const golden_op_cases[] = {
    "linear", "linear_nobias", "conv3x3_s1p1", "conv1x1", "conv3x3_s2p0", "conv1x7_p03", "conv7x1_p30", "conv5x5_p2",
    "conv1x3_p01", "conv3x1_p10", "conv3x3_nobias", "conv3x3_s2p1_odd", "conv3x3_wino_c24", "conv3x3_wino_p0", "conv3x3_to_rgb", "deconv_k2s2", "deconv_k4s2p1", "deconv_k3s1p1",
    "nearest_x2", "nearest_x4", "nearest_odd", "bilinear_x2", "bilinear_x4", "bilinear_odd", "bilinear_down",
    "avgpool2", "avgpool3_s1p1", "avgpool3_s2p1", "maxpool3_s2", "maxpool3_s1p1", "relu", "tanh", "sigmoid", "add", "mul",
    "concat", "sum_hw", "mean", "batchnorm2d_train", "batchnorm2d_eval", "instancenorm2d", "sn_conv", "sn_linear",
    "sn_conv_eval", "hinge_d", "hinge_g", "cross_entropy", "log_softmax", "embedding", "lstm_cell", NULL
};
static int test_golden_ops(void) {
    int i, k, failed = 0, n = 0; char name[96];
    for (k = 0; test_isas[k]; k++) for (i = 0; golden_op_cases[i]; i++, n++) {
        snprintf(name, sizeof name, "op_%s", golden_op_cases[i]);
        if (golden_op_file(name, test_isas[k])) { fprintf(stderr, "    golden op case %s FAILED (%s kernels)\n", golden_op_cases[i], test_isas[k]); failed++; }
    }
    TEST_CHECK(failed == 0, "%d of %d golden op cases off", failed, n);
    return 0;
}

/* ---------------- finite differences ---------------- */
typedef ag_tensor *(*fd_fn)(ag_ctx *ctx, ag_tensor **in);
typedef struct fd_input { int ndim; int shape[4]; float lo, hi; int away_from_zero; } fd_input;

/* L = sum(f(in) * R) with R fixed; returns 0 on pass */
static int fd_check(const char *name, fd_fn f, const fd_input *spec, int nin) {
    ag_ctx *ctx = ag_ctx_create(7, NULL); ag_rng rng; float *host[6]; size_t n[6]; int i, k, bad = 0;
    float *R = NULL; size_t rn = 0; const float h = 1e-2f;
    ag_rng_seed(&rng, 1234, 5);
    for (i = 0; i < nin; i++) {
        size_t j; n[i] = 1;
        for (k = 0; k < spec[i].ndim; k++) n[i] *= (size_t)spec[i].shape[k];
        host[i] = (float *)malloc(n[i] * sizeof(float));
        for (j = 0; j < n[i]; j++) {
            float v = spec[i].lo + (spec[i].hi - spec[i].lo) * ag_rng_uniform(&rng);
            if (spec[i].away_from_zero && fabsf(v) < 0.1f) v = v < 0 ? v - 0.1f : v + 0.1f;
            host[i][j] = v;
        }
    }
    do {   /* once: the analytic gradient, then 40 probed coordinates */
        ag_tensor *in[6], *y; int which = 0; size_t idx = 0;
        ag_ctx_reset(ctx);
        for (i = 0; i < nin; i++) { in[i] = ag_tensor_from(ctx, spec[i].ndim, spec[i].shape, host[i]); in[i]->requires_grad = 1; }
        y = f(ctx, in);
        if (!y) { fprintf(stderr, "    fd %s: op failed: %s\n", name, ag_ctx_error(ctx)); bad = 1; break; }
        {
            float *grads[6];
            size_t j;
            rn = y->size; R = (float *)malloc(rn * sizeof(float));
            for (j = 0; j < rn; j++) R[j] = ag_rng_uniform(&rng) * 2.0f - 1.0f;
            if (ag_backward_with(ctx, y, R)) { fprintf(stderr, "    fd %s: backward failed: %s\n", name, ag_ctx_error(ctx)); bad = 1; break; }
            for (i = 0; i < nin; i++) {
                grads[i] = (float *)malloc(n[i] * sizeof(float));
                if (in[i]->grad) memcpy(grads[i], in[i]->grad, n[i] * sizeof(float)); else memset(grads[i], 0, n[i] * sizeof(float));
            }
            /* probe coordinates */
            {
                int probe;
                for (probe = 0; probe < 40 && !bad; probe++) {
                    double lp = 0, lm = 0, num, ana; float save; ag_tensor *yp, *ym; size_t j2;
                    which = (int)(ag_rng_u32(&rng) % (uint32_t)nin);
                    idx = ag_rng_u32(&rng) % n[which];
                    save = host[which][idx];
                    host[which][idx] = save + h;
                    ag_ctx_reset(ctx);
                    for (i = 0; i < nin; i++) in[i] = ag_tensor_from(ctx, spec[i].ndim, spec[i].shape, host[i]);
                    yp = f(ctx, in);
                    for (j2 = 0; yp && j2 < rn; j2++) lp += (double)yp->data[j2] * R[j2];
                    host[which][idx] = save - h;
                    ag_ctx_reset(ctx);
                    for (i = 0; i < nin; i++) in[i] = ag_tensor_from(ctx, spec[i].ndim, spec[i].shape, host[i]);
                    ym = f(ctx, in);
                    for (j2 = 0; ym && j2 < rn; j2++) lm += (double)ym->data[j2] * R[j2];
                    host[which][idx] = save;
                    if (!yp || !ym) { bad = 1; break; }
                    num = (lp - lm) / (2.0 * h); ana = grads[which][idx];
                    if (!(fabs(num - ana) <= 2e-3 + 2e-2 * fabs(ana))) {
                        fprintf(stderr, "    fd %s: input %d [%zu]: numeric %.6g analytic %.6g\n", name, which, idx, num, ana);
                        bad = 1;
                    }
                }
            }
            for (i = 0; i < nin; i++) free(grads[i]);
        }
    } while (0);
    for (i = 0; i < nin; i++) free(host[i]);
    free(R);
    ag_ctx_free(ctx);
    return bad;
}

static ag_tensor *fd_linear(ag_ctx *c, ag_tensor **x) { return ag_linear(c, x[0], x[1], x[2]); }
static ag_tensor *fd_conv3(ag_ctx *c, ag_tensor **x) { return ag_conv2d(c, x[0], x[1], x[2], 1, 1, 1, 1); }
static ag_tensor *fd_conv_s2(ag_ctx *c, ag_tensor **x) { return ag_conv2d(c, x[0], x[1], x[2], 2, 2, 0, 0); }
static ag_tensor *fd_conv1x7(ag_ctx *c, ag_tensor **x) { return ag_conv2d(c, x[0], x[1], NULL, 1, 1, 0, 3); }
static ag_tensor *fd_conv1x1(ag_ctx *c, ag_tensor **x) { return ag_conv2d(c, x[0], x[1], x[2], 1, 1, 0, 0); }
static ag_tensor *fd_deconv(ag_ctx *c, ag_tensor **x) { return ag_conv_transpose2d(c, x[0], x[1], x[2], 2, 0); }
static ag_tensor *fd_deconv_k3(ag_ctx *c, ag_tensor **x) { return ag_conv_transpose2d(c, x[0], x[1], x[2], 2, 1); }
static ag_tensor *fd_conv_up_nearest(ag_ctx *c, ag_tensor **x) { return ag_conv3x3_upsampled2(c, x[0], x[1], x[2], AG_UP_NEAREST); }
static ag_tensor *fd_conv_up_bilinear(ag_ctx *c, ag_tensor **x) { return ag_conv3x3_upsampled2(c, x[0], x[1], x[2], AG_UP_BILINEAR); }
static ag_tensor *fd_nearest(ag_ctx *c, ag_tensor **x) { return ag_upsample_nearest(c, x[0], 7, 12); }
static ag_tensor *fd_bilinear(ag_ctx *c, ag_tensor **x) { return ag_upsample_bilinear(c, x[0], 9, 10); }
static ag_tensor *fd_avgpool(ag_ctx *c, ag_tensor **x) { return ag_avg_pool2d(c, x[0], 3, 1, 1, 0); }
static ag_tensor *fd_avgpool2(ag_ctx *c, ag_tensor **x) { return ag_avg_pool2d(c, x[0], 2, 2, 0, 1); }
static ag_tensor *fd_maxpool(ag_ctx *c, ag_tensor **x) { return ag_max_pool2d(c, x[0], 3, 2, 1); }
static ag_tensor *fd_relu(ag_ctx *c, ag_tensor **x) { return ag_relu(c, x[0]); }
static ag_tensor *fd_tanh(ag_ctx *c, ag_tensor **x) { return ag_tanh(c, x[0]); }
static ag_tensor *fd_sigmoid(ag_ctx *c, ag_tensor **x) { return ag_sigmoid(c, x[0]); }
static ag_tensor *fd_exp(ag_ctx *c, ag_tensor **x) { return ag_exp(c, x[0]); }
static ag_tensor *fd_addmul(ag_ctx *c, ag_tensor **x) { return ag_scale(c, ag_sub(c, ag_mul(c, x[0], x[1]), ag_add(c, x[0], x[1])), 0.5f); }
static ag_tensor *fd_concat(ag_ctx *c, ag_tensor **x) { return ag_concat_channels(c, x, 2); }
static ag_tensor *fd_narrow(ag_ctx *c, ag_tensor **x) { return ag_narrow(c, x[0], 2, 3); }
static ag_tensor *fd_bn_train(ag_ctx *c, ag_tensor **x) { return ag_batch_norm2d(c, x[0], x[1], x[2], NULL, NULL, NULL, 1, 0.1f, 1e-5f); }
static ag_tensor *fd_bn_eval(ag_ctx *c, ag_tensor **x) {
    int C = x[0]->shape[1]; ag_tensor *rm = ag_tensor_zeros(c, 1, &C), *rv = ag_tensor_zeros(c, 1, &C); int i;
    if (!rm || !rv) return NULL;
    for (i = 0; i < C; i++) { rm->data[i] = 0.1f * (float)i; rv->data[i] = 0.5f + 0.25f * (float)i; }
    return ag_batch_norm2d(c, x[0], x[1], x[2], rm, rv, NULL, 0, 0.1f, 1e-5f);
}
static ag_tensor *fd_in(ag_ctx *c, ag_tensor **x) { return ag_instance_norm2d(c, x[0], 1e-5f); }
static ag_tensor *fd_sn(ag_ctx *c, ag_tensor **x) {
    /* evaluation mode: u, v fixed, so the function of W is deterministic */
    int O = x[0]->shape[0], R = (int)(x[0]->size / (size_t)O), i;
    ag_tensor *u = ag_tensor_new(c, 1, &O), *v = ag_tensor_new(c, 1, &R);
    if (!u || !v) return NULL;
    for (i = 0; i < O; i++) u->data[i] = (float)(i + 1) / (float)O;
    for (i = 0; i < R; i++) v->data[i] = (float)((i * 7) % 5 + 1) / 5.0f;
    return ag_spectral_norm(c, x[0], u, v, 0, 1e-12f);
}
static ag_tensor *fd_sum_hw(ag_ctx *c, ag_tensor **x) { return ag_sum_hw(c, x[0]); }
static ag_tensor *fd_mean(ag_ctx *c, ag_tensor **x) { return ag_add(c, ag_mean(c, x[0]), ag_sum(c, x[0])); }
static ag_tensor *fd_hinge_d(ag_ctx *c, ag_tensor **x) { return ag_hinge_loss_d(c, x[0], x[1]); }
static ag_tensor *fd_hinge_g(ag_ctx *c, ag_tensor **x) { return ag_hinge_loss_g(c, x[0]); }
static ag_tensor *fd_logsm(ag_ctx *c, ag_tensor **x) { return ag_log_softmax(c, x[0]); }
static ag_tensor *fd_xent(ag_ctx *c, ag_tensor **x) { static const int64_t t[3] = { 2, 0, 4 }; return ag_cross_entropy(c, x[0], t); }
static ag_tensor *fd_embed(ag_ctx *c, ag_tensor **x) { static const int64_t t[4] = { 1, 3, 1, 0 }; return ag_embedding(c, x[0], t, 4); }
static ag_tensor *fd_lstm(ag_ctx *c, ag_tensor **x) {
    ag_tensor *c2, *h2 = ag_lstm_cell(c, x[0], x[1], x[2], x[3], x[4], NULL, NULL, &c2);
    return h2 ? ag_add(c, h2, ag_scale(c, c2, 0.5f)) : NULL;
}

#define FD_IN(nd, a, b, c, d, lo, hi, away) { nd, { a, b, c, d }, lo, hi, away }
static int test_finite_differences(void) {
    int bad = 0;
    { fd_input s[3] = { FD_IN(2, 3, 5, 1, 1, -1, 1, 0), FD_IN(2, 4, 5, 1, 1, -1, 1, 0), FD_IN(1, 4, 1, 1, 1, -1, 1, 0) }; bad |= fd_check("linear", fd_linear, s, 3); }
    { fd_input s[3] = { FD_IN(4, 2, 3, 5, 6, -1, 1, 0), FD_IN(4, 4, 3, 3, 3, -1, 1, 0), FD_IN(1, 4, 1, 1, 1, -1, 1, 0) }; bad |= fd_check("conv3x3", fd_conv3, s, 3); }
    { fd_input s[3] = { FD_IN(4, 2, 2, 7, 8, -1, 1, 0), FD_IN(4, 3, 2, 3, 3, -1, 1, 0), FD_IN(1, 3, 1, 1, 1, -1, 1, 0) }; bad |= fd_check("conv3x3_s2", fd_conv_s2, s, 3); }
    { fd_input s[2] = { FD_IN(4, 1, 2, 4, 9, -1, 1, 0), FD_IN(4, 3, 2, 1, 7, -1, 1, 0) }; bad |= fd_check("conv1x7", fd_conv1x7, s, 2); }
    { fd_input s[3] = { FD_IN(4, 2, 3, 4, 4, -1, 1, 0), FD_IN(4, 5, 3, 1, 1, -1, 1, 0), FD_IN(1, 5, 1, 1, 1, -1, 1, 0) }; bad |= fd_check("conv1x1", fd_conv1x1, s, 3); }
    { fd_input s[3] = { FD_IN(4, 2, 3, 3, 4, -1, 1, 0), FD_IN(4, 3, 2, 2, 2, -1, 1, 0), FD_IN(1, 2, 1, 1, 1, -1, 1, 0) }; bad |= fd_check("deconv_k2s2", fd_deconv, s, 3); }
    { fd_input s[3] = { FD_IN(4, 1, 2, 3, 3, -1, 1, 0), FD_IN(4, 2, 3, 3, 3, -1, 1, 0), FD_IN(1, 3, 1, 1, 1, -1, 1, 0) }; bad |= fd_check("deconv_k3s2p1", fd_deconv_k3, s, 3); }
    { fd_input s[1] = { FD_IN(4, 2, 2, 3, 5, -1, 1, 0) }; bad |= fd_check("nearest", fd_nearest, s, 1); }
    { fd_input s[3] = { FD_IN(4, 2, 3, 3, 4, -1, 1, 0), FD_IN(4, 4, 3, 3, 3, -1, 1, 0), FD_IN(1, 4, 1, 1, 1, -1, 1, 0) };
      bad |= fd_check("conv3x3_upsampled2 nearest", fd_conv_up_nearest, s, 3); bad |= fd_check("conv3x3_upsampled2 bilinear", fd_conv_up_bilinear, s, 3); }
    { fd_input s[3] = { FD_IN(4, 1, 16, 3, 2, -1, 1, 0), FD_IN(4, 16, 16, 3, 3, -0.3f, 0.3f, 0), FD_IN(1, 16, 1, 1, 1, -1, 1, 0) };   /* Winograd */
      bad |= fd_check("conv3x3_upsampled2 nearest (Winograd)", fd_conv_up_nearest, s, 3); bad |= fd_check("conv3x3_upsampled2 bilinear (Winograd)", fd_conv_up_bilinear, s, 3); }
    { fd_input s[1] = { FD_IN(4, 2, 2, 4, 3, -1, 1, 0) }; bad |= fd_check("bilinear", fd_bilinear, s, 1); }
    { fd_input s[1] = { FD_IN(4, 2, 2, 5, 4, -1, 1, 0) }; bad |= fd_check("avgpool3", fd_avgpool, s, 1); }
    { fd_input s[1] = { FD_IN(4, 2, 2, 6, 4, -1, 1, 0) }; bad |= fd_check("avgpool2", fd_avgpool2, s, 1); }
    { fd_input s[1] = { FD_IN(4, 1, 1, 5, 5, -1, 1, 0) }; bad |= fd_check("maxpool3", fd_maxpool, s, 1); }
    { fd_input s[1] = { FD_IN(2, 4, 6, 1, 1, -1, 1, 1) }; bad |= fd_check("relu", fd_relu, s, 1); }
    { fd_input s[1] = { FD_IN(2, 4, 6, 1, 1, -2, 2, 0) }; bad |= fd_check("tanh", fd_tanh, s, 1); }
    { fd_input s[1] = { FD_IN(2, 4, 6, 1, 1, -3, 3, 0) }; bad |= fd_check("sigmoid", fd_sigmoid, s, 1); }
    { fd_input s[1] = { FD_IN(2, 4, 6, 1, 1, -1, 1, 0) }; bad |= fd_check("exp", fd_exp, s, 1); }
    { fd_input s[2] = { FD_IN(3, 2, 3, 4, 1, -1, 1, 0), FD_IN(3, 2, 3, 4, 1, -1, 1, 0) }; bad |= fd_check("add_sub_mul_scale", fd_addmul, s, 2); }
    { fd_input s[2] = { FD_IN(4, 2, 2, 3, 3, -1, 1, 0), FD_IN(4, 2, 3, 3, 3, -1, 1, 0) }; bad |= fd_check("concat", fd_concat, s, 2); }
    { fd_input s[1] = { FD_IN(2, 3, 7, 1, 1, -1, 1, 0) }; bad |= fd_check("narrow", fd_narrow, s, 1); }
    { fd_input s[3] = { FD_IN(4, 3, 4, 3, 3, -2, 2, 0), FD_IN(1, 4, 1, 1, 1, 0.5f, 1.5f, 0), FD_IN(1, 4, 1, 1, 1, -1, 1, 0) }; bad |= fd_check("batchnorm_train", fd_bn_train, s, 3); }
    { fd_input s[3] = { FD_IN(4, 3, 4, 3, 3, -2, 2, 0), FD_IN(1, 4, 1, 1, 1, 0.5f, 1.5f, 0), FD_IN(1, 4, 1, 1, 1, -1, 1, 0) }; bad |= fd_check("batchnorm_eval", fd_bn_eval, s, 3); }
    { fd_input s[1] = { FD_IN(4, 2, 3, 4, 5, -2, 2, 0) }; bad |= fd_check("instancenorm", fd_in, s, 1); }
    { fd_input s[1] = { FD_IN(4, 5, 3, 3, 3, -1, 1, 0) }; bad |= fd_check("spectral_norm", fd_sn, s, 1); }
    { fd_input s[1] = { FD_IN(4, 2, 3, 4, 5, -1, 1, 0) }; bad |= fd_check("sum_hw", fd_sum_hw, s, 1); }
    { fd_input s[1] = { FD_IN(3, 2, 3, 4, 1, -1, 1, 0) }; bad |= fd_check("mean_sum", fd_mean, s, 1); }
    { fd_input s[2] = { FD_IN(2, 6, 1, 1, 1, -2.5f, 2.5f, 0), FD_IN(2, 5, 1, 1, 1, -2.5f, 2.5f, 0) }; bad |= fd_check("hinge_d", fd_hinge_d, s, 2); }
    { fd_input s[1] = { FD_IN(2, 6, 1, 1, 1, -2, 2, 0) }; bad |= fd_check("hinge_g", fd_hinge_g, s, 1); }
    { fd_input s[1] = { FD_IN(2, 3, 6, 1, 1, -2, 2, 0) }; bad |= fd_check("log_softmax", fd_logsm, s, 1); }
    { fd_input s[1] = { FD_IN(2, 3, 5, 1, 1, -2, 2, 0) }; bad |= fd_check("cross_entropy", fd_xent, s, 1); }
    { fd_input s[1] = { FD_IN(2, 5, 3, 1, 1, -1, 1, 0) }; bad |= fd_check("embedding", fd_embed, s, 1); }
    { fd_input s[5] = { FD_IN(2, 2, 3, 1, 1, -1, 1, 0), FD_IN(2, 2, 4, 1, 1, -1, 1, 0), FD_IN(2, 2, 4, 1, 1, -1, 1, 0),
                        FD_IN(2, 16, 3, 1, 1, -1, 1, 0), FD_IN(2, 16, 4, 1, 1, -1, 1, 0) }; bad |= fd_check("lstm_cell", fd_lstm, s, 5); }
    TEST_CHECK(bad == 0, "finite-difference gradient checks failed (see above)");
    return 0;
}

/* the checker must be able to fail: ops whose backward is deliberately wrong (part of the
   forward goes through ag_detach, so the tape misses that share of the gradient) must be
   caught, and the same forward with its true backward must pass */
static ag_tensor *fd_square(ag_ctx *c, ag_tensor **x) { return ag_mul(c, x[0], x[0]); }
static ag_tensor *fd_square_half_grad(ag_ctx *c, ag_tensor **x) { return ag_mul(c, x[0], ag_detach(c, x[0])); }            /* backward x, true 2x */
static ag_tensor *fd_square_5pct(ag_ctx *c, ag_tensor **x) {                                                              /* backward 2.1x, true 2.2x */
    return ag_mul(c, x[0], ag_add(c, x[0], ag_scale(c, ag_detach(c, x[0]), 0.1f)));
}
static int test_fd_can_fail(void) {
    fd_input s[1] = { FD_IN(2, 6, 7, 1, 1, -2, 2, 1) };
    TEST_CHECK(fd_check("square", fd_square, s, 1) == 0, "the correct backward must pass");
    fprintf(stderr, "    (the next fd lines are expected: deliberately wrong backward passes)\n");
    TEST_CHECK(fd_check("square_half_grad", fd_square_half_grad, s, 1) != 0, "a backward missing half the gradient passed the check");
    TEST_CHECK(fd_check("square_5pct", fd_square_5pct, s, 1) != 0, "a backward 5%% off passed the check");
    return 0;
}

/* ---------------- the fast conv paths against a double-precision direct conv ----------------
   Forward, data gradient, weight gradient and bias gradient under every kernel path:
   Winograd F(4x4, 3x3) (3x3 stride 1, >= 16 channels) on shapes with partial tiles,
   padding 0/1/2, groups of images that do not divide the batch and tile blocks spanning
   images; the few-outputs path (to_rgb: O <= 8, C >= 4·O, any kernel); im2col's
   stride-1 shifted-plane copy (1x7, 7x1, kernels wider than the image). Bound:
   max |error| <= 4e-5 * max |reference| per tensor (F(4x4, 3x3) in float32 measures
   ~1e-5 here; a wrong transform coefficient gives errors of order 1). */
static int wino_case(const char *isa, int N, int C, int O, int H, int W, int kh, int kw, int p, int pw) {
    ag_ctx *ctx = ag_ctx_create(3, NULL); ag_rng rng; int OH = H + 2 * p - kh + 1, OW = W + 2 * pw - kw + 1, bad = 0, xs[4], ws[4], bs[1];
    size_t nx = (size_t)N * C * H * W, nw = (size_t)O * C * kh * kw, ny = (size_t)N * O * OH * OW, i;
    float *hx = (float *)malloc(nx * 4), *hw = (float *)malloc(nw * 4), *hb = (float *)malloc((size_t)O * 4), *hg = (float *)malloc(ny * 4);
    double *ry = (double *)calloc(ny, 8), *rgx = (double *)calloc(nx, 8), *rgw = (double *)calloc(nw, 8), *rgb = (double *)calloc((size_t)O, 8);
    ag_tensor *x, *w, *b, *y;
    if (!test_force_isa(ctx, isa)) { ag_ctx_free(ctx); free(hx); free(hw); free(hb); free(hg); free(ry); free(rgx); free(rgw); free(rgb); return 0; }
    ag_rng_seed(&rng, (uint64_t)(N * 1000 + C * 10 + p), 9);
    ag_rng_fill_normal(&rng, hx, nx, 0.0f, 1.0f); ag_rng_fill_normal(&rng, hw, nw, 0.0f, 0.3f);
    ag_rng_fill_normal(&rng, hb, (size_t)O, 0.0f, 1.0f); ag_rng_fill_normal(&rng, hg, ny, 0.0f, 1.0f);
    {   /* the reference: y = conv(x, w) + b; gx, gw, gb for upstream gradient hg */
        int n, o, c, oy, ox, a, e;
        for (n = 0; n < N; n++) for (o = 0; o < O; o++) for (oy = 0; oy < OH; oy++) for (ox = 0; ox < OW; ox++) {
            size_t yi = (((size_t)n * O + o) * OH + oy) * OW + ox; double acc = hb[o], gy = hg[yi];
            for (c = 0; c < C; c++) for (a = 0; a < kh; a++) for (e = 0; e < kw; e++) {
                int iy = oy - p + a, ix = ox - pw + e; size_t xi, wi;
                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                xi = (((size_t)n * C + c) * H + iy) * W + ix; wi = (((size_t)o * C + c) * kh + a) * kw + e;
                acc += (double)hx[xi] * hw[wi];
                rgx[xi] += gy * hw[wi]; rgw[wi] += gy * hx[xi];
            }
            ry[yi] = acc; rgb[o] += gy;
        }
    }
    xs[0] = N; xs[1] = C; xs[2] = H; xs[3] = W; ws[0] = O; ws[1] = C; ws[2] = kh; ws[3] = kw; bs[0] = O;
    x = ag_tensor_from(ctx, 4, xs, hx); w = ag_tensor_from(ctx, 4, ws, hw); b = ag_tensor_from(ctx, 1, bs, hb);
    x->requires_grad = w->requires_grad = b->requires_grad = 1;
    y = ag_conv2d(ctx, x, w, b, 1, 1, p, pw);
    if (!y || ag_backward_with(ctx, y, hg)) { fprintf(stderr, "    winograd %s: %s\n", isa, ag_ctx_error(ctx)); bad = 1; }
    else {
        const float *got[4]; const double *want[4]; size_t cnt[4]; const char *names[4] = { "y", "gx", "gw", "gb" }; int k;
        got[0] = y->data; got[1] = x->grad; got[2] = w->grad; got[3] = b->grad;
        want[0] = ry; want[1] = rgx; want[2] = rgw; want[3] = rgb; cnt[0] = ny; cnt[1] = nx; cnt[2] = nw; cnt[3] = (size_t)O;
        for (k = 0; k < 4; k++) {
            double mx = 0, err = 0;
            for (i = 0; i < cnt[k]; i++) {
                double d = fabs(got[k][i] - want[k][i]);
                if (fabs(want[k][i]) > mx) mx = fabs(want[k][i]);
                if (!(d <= err)) err = d;
            }
            if (!(err <= 4e-5 * mx)) {
                fprintf(stderr, "    conv %s N%d C%d O%d %dx%d k%dx%d p%d,%d: %s max error %.3g (max |ref| %.3g)\n", isa, N, C, O, H, W, kh, kw, p, pw, names[k], err, mx);
                bad = 1;
            }
        }
    }
    ag_ctx_free(ctx);
    free(hx); free(hw); free(hb); free(hg); free(ry); free(rgx); free(rgw); free(rgb);
    return bad;
}
static int test_winograd_conv(void) {
    /* N, C, O, H, W, kh, kw, padding h, w: Winograd (3x3, >= 16 channels), then few outputs */
    static const int shapes[][9] = {
        { 1, 16, 16, 8, 8, 3, 3, 1, 1 }, { 2, 16, 24, 7, 9, 3, 3, 1, 1 }, { 3, 17, 16, 5, 6, 3, 3, 0, 0 },
        { 2, 20, 18, 13, 35, 3, 3, 2, 2 }, { 1, 16, 16, 3, 3, 3, 3, 1, 1 }, { 40, 16, 16, 4, 4, 3, 3, 1, 1 },
        { 3, 32, 16, 35, 35, 3, 3, 1, 1 }, { 1, 16, 16, 300, 5, 3, 3, 1, 1 },
        { 2, 16, 3, 9, 7, 3, 3, 1, 1 }, { 2, 12, 1, 6, 8, 5, 5, 2, 2 }, { 3, 8, 2, 5, 7, 1, 3, 0, 1 }, { 1, 24, 3, 6, 6, 3, 3, 0, 0 },
        /* im2col's stride-1 copy path: kernels wider than the image, 1x7 / 7x1 as in Inception */
        { 1, 3, 2, 3, 2, 1, 7, 0, 3 }, { 2, 3, 2, 2, 5, 7, 1, 3, 0 }, { 2, 5, 4, 17, 17, 1, 7, 0, 3 }, { 2, 5, 4, 17, 17, 7, 1, 3, 0 },
    };
    int k, s, bad = 0;
    for (k = 0; test_isas[k]; k++)
        for (s = 0; s < (int)(sizeof shapes / sizeof shapes[0]); s++)
            bad |= wino_case(test_isas[k], shapes[s][0], shapes[s][1], shapes[s][2], shapes[s][3], shapes[s][4],
                             shapes[s][5], shapes[s][6], shapes[s][7], shapes[s][8]);
    TEST_CHECK(!bad, "fast conv paths off (see above)");
    return 0;
}

/* ---------------- ag_conv3x3_upsampled2: the conv of an upsampled input, fused ----------------
   It must give the bits of ag_upsample_* followed by ag_conv2d: output and every gradient,
   on every kernel path, in both modes, on shapes the Winograd path takes (it reads x through
   the upsampling there) and on shapes it does not (few outputs, im2col, Winograd switched
   off: the upsampled input is made in a buffer). `grads`: bit 0 x, bit 1 w requires grad.
   Returns the number of tensors that differ (-1 on an error); comparing against the other
   mode's two ops must find differences, or the comparison could not fail. */
static int fused_up_case(const char *isa, int mode, int ref_mode, int winograd, int grads, int N, int C, int O, int H, int W) {
    ag_rng rng; int pass, bad = 0, differ = 0, xs[4], ws[4], bs[1]; float *res[2][4]; size_t n[4], ny, i; int k;
    size_t nx = (size_t)N * C * H * W, nw = (size_t)O * C * 9;
    float *hx = (float *)malloc(nx * 4), *hw = (float *)malloc(nw * 4), *hb = (float *)malloc((size_t)O * 4), *hg;
    ny = (size_t)N * O * 4 * H * W; hg = (float *)malloc(ny * 4);
    ag_rng_seed(&rng, (uint64_t)(mode * 100 + C), 3);
    ag_rng_fill_normal(&rng, hx, nx, 0.0f, 1.0f); ag_rng_fill_normal(&rng, hw, nw, 0.0f, 0.2f);
    ag_rng_fill_normal(&rng, hb, (size_t)O, 0.0f, 1.0f); ag_rng_fill_normal(&rng, hg, ny, 0.0f, 1.0f);
    xs[0] = N; xs[1] = C; xs[2] = H; xs[3] = W; ws[0] = O; ws[1] = C; ws[2] = 3; ws[3] = 3; bs[0] = O;
    n[0] = ny; n[1] = nx; n[2] = nw; n[3] = (size_t)O;
    for (pass = 0; pass < 2; pass++) {
        ag_ctx *ctx = ag_ctx_create(1, NULL);
        ag_tensor *x, *w, *b, *y;
        if (!test_force_isa(ctx, isa)) { ag_ctx_free(ctx); free(hx); free(hw); free(hb); free(hg); if (pass) for (k = 0; k < 4; k++) free(res[0][k]); return -1; }
        ag_ctx_set_winograd(ctx, winograd);
        x = ag_tensor_from(ctx, 4, xs, hx); w = ag_tensor_from(ctx, 4, ws, hw); b = ag_tensor_from(ctx, 1, bs, hb);
        x->requires_grad = grads & 1; w->requires_grad = grads >> 1 & 1; b->requires_grad = 1;
        if (pass == 0) y = ag_conv3x3_upsampled2(ctx, x, w, b, mode);
        else {
            ag_tensor *u = ref_mode == AG_UP_NEAREST ? ag_upsample_nearest(ctx, x, 2 * H, 2 * W) : ag_upsample_bilinear(ctx, x, 2 * H, 2 * W);
            y = ag_conv2d(ctx, u, w, b, 1, 1, 1, 1);
        }
        if (!y || ag_backward_with(ctx, y, hg)) { fprintf(stderr, "    conv3x3_upsampled2 %s: %s\n", isa, ag_ctx_error(ctx)); bad = 1; }
        for (k = 0; k < 4; k++) res[pass][k] = (float *)calloc(n[k], 4);
        if (!bad) {
            memcpy(res[pass][0], y->data, ny * 4); memcpy(res[pass][3], b->grad, (size_t)O * 4);
            if (x->grad) memcpy(res[pass][1], x->grad, nx * 4);
            if (w->grad) memcpy(res[pass][2], w->grad, nw * 4);
        }
        ag_ctx_free(ctx);
    }
    for (k = 0; k < 4 && !bad; k++)
        for (i = 0; i < n[k]; i++)
            if (memcmp(&res[0][k][i], &res[1][k][i], 4)) {
                if (mode == ref_mode)
                    fprintf(stderr, "    conv3x3_upsampled2 %s mode %d winograd %d grads %d N%d C%d O%d %dx%d: tensor %d [%zu] %.9g vs %.9g\n",
                            isa, mode, winograd, grads, N, C, O, H, W, k, i, (double)res[0][k][i], (double)res[1][k][i]);
                differ++; break;
            }
    for (k = 0; k < 4; k++) { free(res[0][k]); free(res[1][k]); }
    free(hx); free(hw); free(hb); free(hg);
    return bad ? -1 : differ;
}
static int test_conv_upsampled_fused(void) {
    /* N, C, O, H, W, winograd on, grads: the first four take the Winograd path (C, O >= 16),
       then Winograd switched off, few outputs (O <= 8, C >= 4·O), im2col (O < 16, C < 4·O),
       fewer than 16 input channels, and only x / only w requiring grad on both sides */
    static const int shapes[][7] = {
        { 3, 16, 24, 4, 5, 1, 3 }, { 2, 32, 16, 8, 8, 1, 3 }, { 5, 16, 16, 1, 3, 1, 3 }, { 2, 16, 16, 5, 7, 1, 1 },
        { 2, 16, 16, 5, 7, 1, 2 }, { 3, 16, 24, 4, 5, 0, 3 }, { 2, 16, 3, 6, 6, 1, 3 }, { 2, 16, 12, 6, 6, 1, 3 },
        { 3, 8, 12, 5, 4, 1, 3 }, { 3, 8, 12, 5, 4, 1, 1 }, { 3, 8, 12, 5, 4, 1, 2 },
    };
    int k, s, m, r, bad = 0, missed = 0;
    for (k = 0; test_isas[k]; k++) {
        ag_ctx *probe = ag_ctx_create(1, NULL); int available = test_force_isa(probe, test_isas[k]);   /* one skip per missing path */
        ag_ctx_free(probe);
        if (!available) continue;
        for (s = 0; s < (int)(sizeof shapes / sizeof shapes[0]); s++)
            for (m = 0; m < 2; m++) {
                const int *v = shapes[s]; int mode = m ? AG_UP_NEAREST : AG_UP_BILINEAR;
                r = fused_up_case(test_isas[k], mode, mode, v[5], v[6], v[0], v[1], v[2], v[3], v[4]);
                if (r) bad = 1;
                /* the check can fail: the other mode's upsampling must be told apart */
                if (s == 0 || s == 8) {
                    r = fused_up_case(test_isas[k], mode, m ? AG_UP_BILINEAR : AG_UP_NEAREST, v[5], v[6], v[0], v[1], v[2], v[3], v[4]);
                    if (r < 0) bad = 1;
                    else if (r == 0) missed = 1;
                }
            }
    }
    TEST_CHECK(!bad, "ag_conv3x3_upsampled2 differs from upsample + conv (see above)");
    TEST_CHECK(!missed, "comparing against the other upsampling mode found no difference: the check cannot fail");
    return 0;
}

static int test_op_bad_shapes(void) {
    ag_ctx *ctx = ag_ctx_create(1, NULL); ag_tensor *x, *w, *y; int s4[4] = { 2, 3, 8, 8 }, w4[4] = { 4, 5, 3, 3 }, s2[2] = { 3, 4 };
    x = ag_tensor_zeros(ctx, 4, s4); w = ag_tensor_zeros(ctx, 4, w4);
    y = ag_conv2d(ctx, x, w, NULL, 1, 1, 1, 1);
    TEST_CHECK(y == NULL && strstr(ag_ctx_error(ctx), "conv2d") && strstr(ag_ctx_error(ctx), "channels"), "conv2d channel mismatch: %s", ag_ctx_error(ctx));
    /* NULL propagates without a new message */
    y = ag_relu(ctx, y);
    TEST_CHECK(y == NULL && strstr(ag_ctx_error(ctx), "conv2d"), "first error kept: %s", ag_ctx_error(ctx));
    ag_ctx_clear_error(ctx); ag_ctx_reset(ctx);
    x = ag_tensor_zeros(ctx, 2, s2);
    y = ag_conv2d(ctx, x, ag_tensor_zeros(ctx, 4, w4), NULL, 1, 1, 1, 1);
    TEST_CHECK(y == NULL && strstr(ag_ctx_error(ctx), "4-D"), "2-D into conv2d: %s", ag_ctx_error(ctx));
    ag_ctx_clear_error(ctx);
    { int a[2] = { 3, 5 }; y = ag_add(ctx, x, ag_tensor_zeros(ctx, 2, a)); }
    TEST_CHECK(y == NULL && strstr(ag_ctx_error(ctx), "[3,4]") && strstr(ag_ctx_error(ctx), "[3,5]"), "add mismatch: %s", ag_ctx_error(ctx));
    ag_ctx_clear_error(ctx);
    { int64_t t[3] = { 0, 9, 1 }; y = ag_cross_entropy(ctx, x, t); }
    TEST_CHECK(y == NULL && strstr(ag_ctx_error(ctx), "target 9"), "bad target: %s", ag_ctx_error(ctx));
    ag_ctx_clear_error(ctx);
    { int64_t t[1] = { -1 }; y = ag_embedding(ctx, x, t, 1); }
    TEST_CHECK(y == NULL && strstr(ag_ctx_error(ctx), "index -1"), "bad index: %s", ag_ctx_error(ctx));
    ag_ctx_clear_error(ctx);
    { int l[2] = { 4, 9 }; y = ag_linear(ctx, x, ag_tensor_zeros(ctx, 2, l), NULL); }
    TEST_CHECK(y == NULL && strstr(ag_ctx_error(ctx), "linear"), "linear mismatch: %s", ag_ctx_error(ctx));
    ag_ctx_clear_error(ctx);
    x = ag_tensor_zeros(ctx, 4, s4);
    y = ag_max_pool2d(ctx, x, 9, 1, 0);
    TEST_CHECK(y == NULL && strstr(ag_ctx_error(ctx), "max_pool2d"), "pool too big: %s", ag_ctx_error(ctx));
    ag_ctx_clear_error(ctx);
    { int u1 = 4, v1 = 3; y = ag_spectral_norm(ctx, ag_tensor_zeros(ctx, 4, w4), ag_tensor_zeros(ctx, 1, &u1), ag_tensor_zeros(ctx, 1, &v1), 1, 1e-12f); }
    TEST_CHECK(y == NULL && strstr(ag_ctx_error(ctx), "spectral_norm"), "sn sizes: %s", ag_ctx_error(ctx));
    ag_ctx_clear_error(ctx);
    y = ag_conv3x3_upsampled2(ctx, x, ag_tensor_zeros(ctx, 4, w4), NULL, AG_UP_NEAREST);
    TEST_CHECK(y == NULL && strstr(ag_ctx_error(ctx), "conv3x3_upsampled2") && strstr(ag_ctx_error(ctx), "channels"), "conv3x3_upsampled2 channels: %s", ag_ctx_error(ctx));
    ag_ctx_clear_error(ctx);
    { int w5[4] = { 4, 3, 5, 5 }; y = ag_conv3x3_upsampled2(ctx, x, ag_tensor_zeros(ctx, 4, w5), NULL, AG_UP_BILINEAR); }
    TEST_CHECK(y == NULL && strstr(ag_ctx_error(ctx), "[O,3,3,3]"), "conv3x3_upsampled2 5x5 weight: %s", ag_ctx_error(ctx));
    ag_ctx_clear_error(ctx);
    { int w3[4] = { 4, 3, 3, 3 }; y = ag_conv3x3_upsampled2(ctx, x, ag_tensor_zeros(ctx, 4, w3), NULL, AG_UP_DECONV); }
    TEST_CHECK(y == NULL && strstr(ag_ctx_error(ctx), "mode 2"), "conv3x3_upsampled2 deconv mode: %s", ag_ctx_error(ctx));
    ag_ctx_clear_error(ctx);
    y = ag_upsample_bilinear(ctx, x, 0, 4);
    TEST_CHECK(y == NULL && strstr(ag_ctx_error(ctx), "output size"), "bad size: %s", ag_ctx_error(ctx));
    ag_ctx_free(ctx);
    return 0;
}

/* no-grad mode records nothing; detach cuts the graph; gradients accumulate */
static int test_autograd_modes(void) {
    ag_ctx *ctx = ag_ctx_create(1, NULL); ag_params ps; ag_error err; ag_tensor *w, *x, *y; int s[2] = { 1, 3 }, i;
    memset(&ps, 0, sizeof ps);
    w = ag_params_add(&ps, "w", AG_ENTRY_PARAM, 2, s, &err);
    for (i = 0; i < 3; i++) w->data[i] = (float)(i + 1);
    x = ag_tensor_zeros(ctx, 2, s); x->data[0] = 1; x->data[1] = 2; x->data[2] = 3;
    y = ag_sum(ctx, ag_mul(ctx, x, w));
    TEST_CHECK(ag_backward(ctx, y) == 0, "backward: %s", ag_ctx_error(ctx));
    y = ag_sum(ctx, ag_mul(ctx, x, w));
    TEST_CHECK(ag_backward(ctx, y) == 0, "backward 2: %s", ag_ctx_error(ctx));
    TEST_CHECK(w->grad[0] == 2.0f && w->grad[2] == 6.0f, "gradients accumulate: %g %g", w->grad[0], w->grad[2]);
    ag_params_zero_grad(&ps);
    ag_ctx_set_grad_enabled(ctx, 0);
    y = ag_sum(ctx, ag_mul(ctx, x, w));
    ag_ctx_set_grad_enabled(ctx, 1);
    TEST_CHECK(y && !y->requires_grad && ag_backward(ctx, y) != 0, "no-grad output cannot backprop");
    ag_ctx_clear_error(ctx);
    y = ag_sum(ctx, ag_detach(ctx, ag_mul(ctx, x, w)));
    TEST_CHECK(y && !y->requires_grad, "detach cuts the graph");
    TEST_CHECK(w->grad[0] == 0.0f, "zero_grad");
    ag_params_free(&ps);
    ag_ctx_free(ctx);
    return 0;
}

const test_case tests_ops[] = {
    { "golden_ops (50 PyTorch cases, every kernel path)", test_golden_ops },
    { "fast_conv_paths (Winograd, few outputs; vs double, every kernel path)", test_winograd_conv },
    { "conv3x3_upsampled2 (bit-identical to upsample + conv2d, every path, both modes)", test_conv_upsampled_fused },
    { "finite_differences (every op)", test_finite_differences },
    { "finite_difference_check_can_fail", test_fd_can_fail },
    { "op_bad_shapes", test_op_bad_shapes },
    { "autograd_modes", test_autograd_modes },
    { NULL, NULL }
};
