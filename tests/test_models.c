/* test_models.c - the AutoGAN generator and discriminator against PyTorch: three GAN
   iterations per golden file (tests/golden/data/gan_*.safetensors) covering stages 0-2
   and every token value; parameter counts; safetensors round trips and bad input.

   Tolerances (float32 through ~20 layers, different summation orders):
   forward outputs and losses |d| <= 1e-4 + 1e-3|want|; gradients |d| <= 1e-3·max|want of
   the tensor| + 1e-5·(largest gradient of the network) + 2e-3|want| (the floor: a conv bias
   feeding a batch-statistics BatchNorm has a true gradient of 0, and both sides hold only
   rounding noise); parameters after 3 Adam steps |d| <= 5e-5 + 1e-4|want| (a quarter of
   lr = 2e-4: a wrong gradient sign or a missed step moves an element by ~lr and fails),
   except those null-gradient biases (4e-3: Adam turns their noise into steps of ~lr) and
   the running means that contain them (1e-3); other buffers (running_var, spectral-norm
   u and v) 1e-4 + 1e-4|want|; counters exactly. */

static int load_entries(ag_params *ps, const golden *g, const char *prefix) {
    ag_error err;
    if (ag_params_load_arrays(ps, &g->arrays, prefix, 1, g->path, &err)) { fprintf(stderr, "    %s\n", err.msg); return 1; }
    return 0;
}
static double golden_max_abs(const golden *g, const char *key) {
    const ag_array *a = ag_array_list_find(&g->arrays, key); double m = 0; size_t j;
    if (a && a->dtype == AG_DTYPE_F32) for (j = 0; j < a->nbytes / 4; j++) if (fabs(((const float *)a->data)[j]) > m) m = fabs(((const float *)a->data)[j]);
    return m;
}
/* the largest step-0 gradient magnitude over a whole network (grad_prefix "gradG.") */
static double golden_grad_scale(const ag_params *ps, const golden *g, const char *grad_prefix) {
    int i; double s = 0; char key[256];
    for (i = 0; i < ps->count; i++) {
        double m;
        snprintf(key, sizeof key, "%s%s", grad_prefix, ps->entries[i].name);
        m = golden_max_abs(g, key);
        if (m > s) s = m;
    }
    return s;
}
/* compares every entry of ps with prefix+name in g (params, buffers, counters).
   mode 0: values after training; mode 1: gradients. grad_prefix/scale identify the
   "null-gradient" tensors (step-0 gradient below 1e-5 of the network's largest): biases
   feeding a batch-statistics BatchNorm, whose true gradient is 0 and whose Adam steps
   (~lr each, random sign) follow rounding noise on both sides. */
static int compare_entries(const ag_params *ps, const golden *g, const char *prefix, int mode, const char *grad_prefix, double scale) {
    int i, bad = 0, compared = 0, in_file = 0; char key[256], gkey[256]; size_t plen = strlen(prefix);
    for (i = 0; i < g->arrays.count; i++) if (!strncmp(g->arrays.items[i].name, prefix, plen)) in_file++;
    for (i = 0; i < ps->count; i++) {
        const ag_param_entry *e = &ps->entries[i]; const ag_array *a; size_t nl = strlen(e->name);
        if (mode == 1 && e->kind != AG_ENTRY_PARAM) continue;
        snprintf(key, sizeof key, "%s%s", prefix, e->name);
        a = ag_array_list_find(&g->arrays, key);
        if (!a && mode == 1) {
            /* PyTorch stores no gradient for a parameter the architecture leaves unused;
               then ours must be absent or zero too */
            size_t j; int nonzero = 0;
            if (e->tensor->grad) for (j = 0; j < e->tensor->size; j++) nonzero |= e->tensor->grad[j] != 0.0f;
            if (nonzero) { fprintf(stderr, "    %s missing in %s, but our gradient is nonzero\n", key, g->path); bad = 1; }
            continue;
        }
        if (!a) { fprintf(stderr, "    %s missing in %s\n", key, g->path); bad = 1; continue; }
        compared++;
        if (e->kind == AG_ENTRY_COUNTER) {
            int64_t want; memcpy(&want, a->data, 8);
            if (*e->counter != want) { fprintf(stderr, "    %s: counter %lld, want %lld\n", key, (long long)*e->counter, (long long)want); bad = 1; }
        } else if (mode == 1) {
            bad |= golden_compare(g, key, e->tensor->grad, e->tensor->size, 1e-3 * golden_max_abs(g, key) + 1e-5 * scale, 2e-3);
        } else {
            double atol = 5e-5;
            snprintf(gkey, sizeof gkey, "%s%s", grad_prefix, e->name);
            if (e->kind == AG_ENTRY_PARAM && golden_max_abs(g, gkey) < 1e-5 * scale) atol = 4e-3;   /* 3 steps x 2 sides x lr/sqrt(1-b2) */
            else if (nl > 12 && !strcmp(e->name + nl - 12, "running_mean")) atol = 1e-3;          /* holds those biases */
            else if (e->kind == AG_ENTRY_BUFFER) atol = 1e-4;
            bad |= golden_compare(g, key, e->tensor->data, e->tensor->size, atol, 1e-4);
        }
    }
    /* every tensor the file holds under the prefix was compared (none matched a wrong name) */
    if (compared != in_file) { fprintf(stderr, "    %s: compared %d of the %d '%s' tensors in the file\n", g->path, compared, in_file, prefix); bad = 1; }
    return bad;
}
static float golden_scalar(const golden *g, const char *name) {
    const ag_array *a = ag_array_list_find(&g->arrays, name); float v = NAN;
    if (a && a->dtype == AG_DTYPE_F32 && a->nbytes == 4) memcpy(&v, a->data, 4);
    return v;
}
static int scalar_close(const char *what, float got, float want) {
    if (!(fabs(got - want) <= 1e-4 + 1e-3 * fabs(want))) { fprintf(stderr, "    %s: got %.8g want %.8g\n", what, got, want); return 1; }
    return 0;
}

static int golden_gan_file(const char *name, const char *isa) {
    golden g; ag_ctx *ctx; ag_generator G; ag_discriminator D; ag_gan gan; ag_error err;
    char archs[128], key[64]; int arch[AG_ARCH_MAX], alen, stage, t, bad = 0; double gscale, dscale;
    memset(&g, 0, sizeof g);
    if (golden_open(&g, name)) return 1;
    stage = golden_int(&g, "stage", -1);
    ag_json_get_string(g.meta, "arch", archs, sizeof archs);
    ctx = ag_ctx_create(1, NULL);
    if (!test_force_isa(ctx, isa)) { ag_ctx_free(ctx); golden_close(&g); return 0; }
    if (ag_arch_parse(archs, arch, &alen, &err) ||
        ag_generator_init(&G, golden_int(&g, "gf", 0), golden_int(&g, "latent", 0), golden_int(&g, "bw", 4), golden_int(&g, "out_ch", 3), NULL, &err) ||
        ag_generator_set_arch(&G, stage, arch, alen, &err) ||
        ag_discriminator_init(&D, golden_int(&g, "df", 0), golden_int(&g, "out_ch", 3), 1, NULL, &err) ||
        ag_discriminator_set_stage(&D, stage, &err)) {
        fprintf(stderr, "    %s: setup: %s\n", g.path, err.msg); golden_close(&g); ag_ctx_free(ctx); return 1;
    }
    if (load_entries(&G.params, &g, "G.") || load_entries(&D.params, &g, "D.") ||
        ag_gan_init(&gan, &G, &D, golden_int(&g, "dis_bs", 0), golden_int(&g, "gen_bs", 0), golden_int(&g, "n_critic", 1),
                    (float)golden_float(&g, "lr", 0), (float)golden_float(&g, "lr", 0), (float)golden_float(&g, "beta1", 0),
                    (float)golden_float(&g, "beta2", 0), &err)) {
        fprintf(stderr, "    %s: load/init failed %s\n", g.path, err.msg); bad = 1; goto done;
    }
    gscale = golden_grad_scale(&G.params, &g, "gradG."); dscale = golden_grad_scale(&D.params, &g, "gradD.");
    for (t = 0; t < golden_int(&g, "iters", 3) && !bad; t++) {
        const ag_array *real, *zd, *zg; float dl = 0, gl = 0;
        snprintf(key, sizeof key, "real%d", t); real = ag_array_list_find(&g.arrays, key);
        snprintf(key, sizeof key, "zd%d", t); zd = ag_array_list_find(&g.arrays, key);
        snprintf(key, sizeof key, "zg%d", t); zg = ag_array_list_find(&g.arrays, key);
        if (!real || !zd || !zg) { fprintf(stderr, "    %s: inputs of step %d missing\n", g.path, t); bad = 1; break; }
        if (ag_gan_d_step(ctx, &gan, (const float *)real->data, (const float *)zd->data, &dl)) { fprintf(stderr, "    D step: %s\n", ag_ctx_error(ctx)); bad = 1; break; }
        if (t == 0) {
            bad |= golden_compare(&g, "fake0", gan.last_fake->data, gan.last_fake->size, 1e-4, 1e-3);
            bad |= golden_compare(&g, "d_real0", gan.last_d_real->data, gan.last_d_real->size, 1e-4, 1e-3);
            bad |= golden_compare(&g, "d_fake0", gan.last_d_fake->data, gan.last_d_fake->size, 1e-4, 1e-3);
            bad |= compare_entries(&D.params, &g, "gradD.", 1, NULL, dscale);
        }
        snprintf(key, sizeof key, "d_loss%d", t);
        bad |= scalar_close(key, dl, golden_scalar(&g, key));
        if (ag_gan_g_step(ctx, &gan, (const float *)zg->data, &gl)) { fprintf(stderr, "    G step: %s\n", ag_ctx_error(ctx)); bad = 1; break; }
        if (t == 0) {
            bad |= golden_compare(&g, "gout0", gan.last_g_out->data, gan.last_g_out->size, 1e-4, 1e-3);
            bad |= compare_entries(&G.params, &g, "gradG.", 1, NULL, gscale);
        }
        snprintf(key, sizeof key, "g_loss%d", t);
        bad |= scalar_close(key, gl, golden_scalar(&g, key));
    }
    if (!bad) {
        bad |= compare_entries(&G.params, &g, "G3.", 0, "gradG.", gscale);
        bad |= compare_entries(&D.params, &g, "D3.", 0, "gradD.", dscale);
    }
    if (!bad) {   /* evaluation mode (running statistics) on PyTorch's own trained weights */
        ag_tensor *z, *y;
        if (load_entries(&G.params, &g, "G3.")) bad = 1;
        z = golden_tensor(ctx, &g, "zd0", 0);
        G.training = 0;
        ag_ctx_set_grad_enabled(ctx, 0);
        y = ag_generator_forward(ctx, &G, z);
        ag_ctx_set_grad_enabled(ctx, 1);
        if (!y) { fprintf(stderr, "    eval forward: %s\n", ag_ctx_error(ctx)); bad = 1; }
        else bad |= golden_compare(&g, "gen_eval", y->data, y->size, 1e-4, 1e-3);
    }
    ag_gan_free(&gan);
done:
    ag_generator_free(&G); ag_discriminator_free(&D);
    ag_ctx_free(ctx);
    golden_close(&g);
    return bad;
}

static int test_golden_gan(void) {
    static const char *const cases[] = { "gan_s0_a", "gan_s0_b", "gan_s0_c", "gan_s1_a", "gan_s1_b", "gan_s1_c",
                                         "gan_s2_a", "gan_s2_b", "gan_s2_c", "gan_s2_d", "gan_s2_e",
                                         "gan_s2_f", "gan_s2_g", "gan_s2_h", "gan_s2_i", NULL };
    int i, k, failed = 0;
    for (k = 0; test_isas[k]; k++) for (i = 0; cases[i]; i++)
        if (golden_gan_file(cases[i], test_isas[k])) { fprintf(stderr, "    golden GAN case %s FAILED (%s kernels)\n", cases[i], test_isas[k]); failed++; }
    TEST_CHECK(failed == 0, "%d golden GAN cases off", failed);
    return 0;
}

static int test_param_counts(void) {
    ag_generator G; ag_discriminator D; ag_error err;
    TEST_CHECK(ag_generator_init(&G, 128, 128, 4, 3, NULL, &err) == 0, "%s", err.msg);
    TEST_CHECK(ag_params_count(&G.params) == 3716995, "shared generator gf 128: %zu parameters", ag_params_count(&G.params));
    TEST_CHECK(G.params.count == 153, "shared generator: %d state_dict entries (want 153)", G.params.count);
    ag_generator_free(&G);
    TEST_CHECK(ag_discriminator_init(&D, 64, 3, 1, NULL, &err) == 0, "%s", err.msg);
    TEST_CHECK(ag_params_count(&D.params) == 264768, "discriminator df 64: %zu", ag_params_count(&D.params));
    TEST_CHECK(D.params.count == 43, "discriminator: %d entries (want 43)", D.params.count);
    ag_discriminator_free(&D);
    TEST_CHECK(ag_discriminator_init(&D, 128, 3, 1, NULL, &err) == 0, "%s", err.msg);
    TEST_CHECK(ag_params_count(&D.params) == 1053824, "discriminator df 128: %zu", ag_params_count(&D.params));
    ag_discriminator_free(&D);
    return 0;
}

static int test_arch_validation(void) {
    ag_generator G; ag_error err; int good[14] = { 1, 0, 1, 1, 1, 0, 0, 1, 1, 1, 0, 1, 0, 3 }, bad[14], i, n;
    TEST_CHECK(ag_generator_init(&G, 8, 16, 4, 3, NULL, &err) == 0, "%s", err.msg);
    TEST_CHECK(ag_generator_set_arch(&G, 2, good, 14, &err) == 0, "AutoGAN-a accepted: %s", err.msg);
    memcpy(bad, good, sizeof bad); bad[13] = 4;
    TEST_CHECK(ag_generator_set_arch(&G, 2, bad, 14, &err) != 0 && strstr(err.msg, "token 13") && strstr(err.msg, "skip"), "skip 4 rejected: %s", err.msg);
    TEST_CHECK(G.arch[13] == 3, "arch unchanged after a rejected set");
    memcpy(bad, good, sizeof bad); bad[8] = 2;   /* cell 2 skip in [0,2) */
    TEST_CHECK(ag_generator_set_arch(&G, 2, bad, 14, &err) != 0 && strstr(err.msg, "cell 2"), "%s", err.msg);
    memcpy(bad, good, sizeof bad); bad[2] = 3;
    TEST_CHECK(ag_generator_set_arch(&G, 2, bad, 14, &err) != 0 && strstr(err.msg, "upsample"), "%s", err.msg);
    memcpy(bad, good, sizeof bad); bad[0] = -1;
    TEST_CHECK(ag_generator_set_arch(&G, 2, bad, 14, &err) != 0, "negative token");
    TEST_CHECK(ag_generator_set_arch(&G, 1, good, 14, &err) != 0 && strstr(err.msg, "needs 9"), "length: %s", err.msg);
    TEST_CHECK(ag_generator_set_arch(&G, 3, good, 14, &err) != 0 && strstr(err.msg, "stage 3"), "stage: %s", err.msg);
    TEST_CHECK(ag_arch_parse("1 0 1 1 x", bad, &n, &err) != 0, "parse garbage");
    TEST_CHECK(ag_arch_parse("[1, 0, 1, 1]", bad, &n, &err) == 0 && n == 4 && bad[0] == 1 && bad[3] == 1, "parse list");
    for (i = 0; i < 14; i++) TEST_CHECK(ag_arch_token_choices(i) > 0, "choices");
    TEST_CHECK(ag_arch_token_choices(8) == 2 && ag_arch_token_choices(13) == 4, "skip choices");
    ag_generator_free(&G);
    return 0;
}

static uint64_t params_checksum(const ag_params *ps) {
    uint64_t h = 1469598103934665603ULL; int i; size_t j;
    for (i = 0; i < ps->count; i++) {
        const unsigned char *p; size_t n;
        if (ps->entries[i].kind == AG_ENTRY_COUNTER) { p = (const unsigned char *)ps->entries[i].counter; n = 8; }
        else { p = (const unsigned char *)ps->entries[i].tensor->data; n = ps->entries[i].tensor->size * 4; }
        for (j = 0; j < n; j++) h = (h ^ p[j]) * 1099511628211ULL;
    }
    return h;
}

static int test_safetensors_roundtrip_and_bad_input(void) {
    ag_generator G, G2; ag_rng rng; ag_error err; const char *path = "build/test_g.safetensors";
    unsigned char *bytes; size_t len, cut; uint64_t before; int i, rejected = 0; FILE *f;
    ag_rng_seed(&rng, 42, 1);
    TEST_CHECK(ag_generator_init(&G, 8, 16, 4, 3, &rng, &err) == 0, "%s", err.msg);
    TEST_CHECK(ag_generator_init(&G2, 8, 16, 4, 3, NULL, &err) == 0, "%s", err.msg);
    G.to_rgb_bn.num_batches_tracked = 77;
    TEST_CHECK(ag_safetensors_save(path, &G.params, "{\"arch\":\"1 0 1 1\"}", &err) == 0, "save: %s", err.msg);
    TEST_CHECK(ag_safetensors_load(path, &G2.params, 1, &err) == 0, "load: %s", err.msg);
    TEST_CHECK(params_checksum(&G.params) == params_checksum(&G2.params) && G2.to_rgb_bn.num_batches_tracked == 77, "round trip exact");
    { ag_array_list l; char *meta = NULL; char v[32];
      TEST_CHECK(ag_safetensors_read(path, &l, &meta, &err) == 0, "%s", err.msg);
      TEST_CHECK(ag_json_get_string(meta, "arch", v, sizeof v) == 0 && !strcmp(v, "1 0 1 1"), "metadata kept");
      ag_array_list_free(&l); free(meta); }
    TEST_CHECK(ag_read_file(path, &bytes, &len, &err) == 0, "%s", err.msg);
    /* truncations at many points: every load fails with a message and changes nothing */
    ag_generator_reset_params(&G2, &rng);
    before = params_checksum(&G2.params);
    for (cut = 0; cut < len; cut += 1 + len / 97) {
        f = fopen("build/test_cut.safetensors", "wb"); fwrite(bytes, 1, cut, f); fclose(f);
        err.msg[0] = 0;
        if (ag_safetensors_load("build/test_cut.safetensors", &G2.params, 1, &err) != 0 && strstr(err.msg, "test_cut")) rejected++;
        else { fprintf(stderr, "    truncation at %zu accepted (%s)\n", cut, err.msg); }
    }
    TEST_CHECK(rejected == (int)((len + len / 97) / (1 + len / 97)), "every truncation rejected (%d)", rejected);
    TEST_CHECK(params_checksum(&G2.params) == before, "failed loads left the parameters unchanged");
    /* byte flips in the header: reject or load cleanly, never crash; when rejected, unchanged */
    for (i = 8; i < 400 && (size_t)i < len; i += 3) {
        unsigned char save = bytes[i]; int rc;
        bytes[i] = (unsigned char)(save ^ 0x5a);
        f = fopen("build/test_cut.safetensors", "wb"); fwrite(bytes, 1, len, f); fclose(f);
        bytes[i] = save;
        rc = ag_safetensors_load("build/test_cut.safetensors", &G2.params, 1, &err);
        if (rc != 0) TEST_CHECK(params_checksum(&G2.params) == before, "flip at %d changed the parameters", i);
        else before = params_checksum(&G2.params);
    }
    free(bytes);
    /* a missing tensor and a shape mismatch name the tensor */
    {
        ag_generator G3;
        TEST_CHECK(ag_generator_init(&G3, 16, 16, 4, 3, NULL, &err) == 0, "%s", err.msg);
        before = params_checksum(&G3.params);
        TEST_CHECK(ag_safetensors_load(path, &G3.params, 1, &err) != 0 && strstr(err.msg, "l1.weight") && strstr(err.msg, "shape"), "shape mismatch: %s", err.msg);
        TEST_CHECK(params_checksum(&G3.params) == before, "unchanged after shape mismatch");
        ag_generator_free(&G3);
    }
    {
        ag_array_list l; ag_array_list l2; memset(&l2, 0, sizeof l2);
        TEST_CHECK(ag_safetensors_read(path, &l, NULL, &err) == 0, "%s", err.msg);
        for (i = 0; i < l.count; i++) if (strcmp(l.items[i].name, "cell2.c_sc.bias"))
            ag_array_list_add(&l2, l.items[i].name, l.items[i].dtype, l.items[i].ndim, l.items[i].shape, l.items[i].data, &err);
        TEST_CHECK(ag_safetensors_write("build/test_missing.safetensors", &l2, NULL, &err) == 0, "%s", err.msg);
        before = params_checksum(&G2.params);
        TEST_CHECK(ag_safetensors_load("build/test_missing.safetensors", &G2.params, 1, &err) != 0 && strstr(err.msg, "cell2.c_sc.bias") && strstr(err.msg, "missing"), "missing: %s", err.msg);
        TEST_CHECK(params_checksum(&G2.params) == before, "unchanged after a missing tensor");
        ag_array_list_free(&l); ag_array_list_free(&l2);
    }
    TEST_CHECK(ag_safetensors_load("build/does_not_exist.safetensors", &G2.params, 1, &err) != 0 && strstr(err.msg, "does_not_exist"), "%s", err.msg);
    ag_generator_free(&G); ag_generator_free(&G2);
    return 0;
}

/* a short training run: finite losses, same bits for the same seed */
static int run_small_gan(uint64_t seed, int threads, float *losses, int n) {
    ag_ctx *ctx = ag_ctx_create(seed, NULL); ag_generator G; ag_discriminator D; ag_gan gan; ag_error err; ag_rng rng;
    int arch[14] = { 1, 0, 1, 1, 1, 0, 0, 1, 1, 1, 0, 1, 0, 3 }, i, rc = 0; float real[4 * 3 * 32 * 32];
    ag_ctx_set_threads(ctx, threads);
    ag_rng_seed(&rng, seed, 3);
    if (ag_generator_init(&G, 16, 16, 4, 3, &rng, &err) || ag_generator_set_arch(&G, 2, arch, 14, &err) ||
        ag_discriminator_init(&D, 16, 3, 1, &rng, &err) || ag_gan_init(&gan, &G, &D, 4, 6, 2, 2e-4f, 2e-4f, 0.0f, 0.9f, &err)) return -1;
    for (i = 0; i < n && !rc; i++) {
        ag_gan_losses l;
        ag_rng_fill_uniform(&rng, real, sizeof real / sizeof real[0], -1.0f, 1.0f);
        rc = ag_gan_step(ctx, &gan, real, &l);
        losses[2 * i] = l.d_loss; losses[2 * i + 1] = l.g_stepped ? l.g_loss : 0.0f;
    }
    ag_gan_free(&gan); ag_generator_free(&G); ag_discriminator_free(&D); ag_ctx_free(ctx);
    return rc;
}
static int test_gan_determinism(void) {
    float a[8], b[8]; int i;
    TEST_CHECK(run_small_gan(5, 2, a, 4) == 0 && run_small_gan(5, 2, b, 4) == 0, "gan steps ran");
    for (i = 0; i < 8; i++) TEST_CHECK(isfinite(a[i]), "loss %d finite", i);
    TEST_CHECK(memcmp(a, b, sizeof a) == 0, "same seed, same threads: same bits");
    return 0;
}

/* Releasing intermediates (the G/D forward passes release what backward does not read)
   changes memory, never numbers: two GAN iterations with tensors large enough for the
   pool (gf 32, 32x32: Winograd, fused upsampling, few-output to_rgb), once with every
   release ignored and once with released buffers overwritten by NaN, give the same bits;
   and the pool's high-water mark drops. */
static int gan_release_run(int keep_all, float *params_out, size_t *pool_high) {
    ag_ctx *ctx = ag_ctx_create(5, NULL); ag_rng rng; ag_error err; ag_generator G; ag_discriminator D; ag_gan gan;
    int arch[14] = { 1, 0, 1, 1, 1, 0, 0, 1, 1, 1, 0, 1, 0, 3 }, i; static float real[6 * 3 * 32 * 32];
    ag_ctx_set_threads(ctx, 2);
    ctx->debug_keep_all = keep_all; ctx->debug_poison = !keep_all;
    ag_rng_seed(&rng, 5, 3);
    if (ag_generator_init(&G, 32, 16, 4, 3, &rng, &err) || ag_generator_set_arch(&G, 2, arch, 14, &err) ||
        ag_discriminator_init(&D, 16, 3, 1, &rng, &err) || ag_discriminator_set_stage(&D, 2, &err) ||
        ag_gan_init(&gan, &G, &D, 6, 6, 1, 2e-4f, 2e-4f, 0.0f, 0.9f, &err)) { fprintf(stderr, "    %s\n", err.msg); return -1; }
    for (i = 0; i < 2; i++) {
        ag_rng_fill_uniform(&rng, real, sizeof real / sizeof real[0], -1.0f, 1.0f);
        if (ag_gan_step(ctx, &gan, real, NULL)) { fprintf(stderr, "    %s\n", ag_ctx_error(ctx)); return -1; }
    }
    { int k = 0; for (i = G.params.count - 1; i >= 0 && k < 8; i--) if (G.params.entries[i].kind == AG_ENTRY_PARAM) params_out[k++] = G.params.entries[i].tensor->data[0]; }
    params_out[8] = G.cells[2].post_conv1.conv.weight->data[5]; params_out[9] = G.cells[2].pre_conv1.conv.weight->data[5];
    params_out[10] = G.cells[2].c_sc.weight->data[3]; params_out[11] = D.block_c1[0].weight_orig->data[1];
    *pool_high = ag_ctx_pool_bytes(ctx);
    ag_gan_free(&gan); ag_generator_free(&G); ag_discriminator_free(&D); ag_ctx_free(ctx);
    return 0;
}
static int test_gan_release_same_bits(void) {
    float a[12], b[12]; size_t ha, hb;
    TEST_CHECK(gan_release_run(1, a, &ha) == 0 && gan_release_run(0, b, &hb) == 0, "gan steps ran");
    TEST_CHECK(memcmp(a, b, sizeof a) == 0, "releases changed the numbers (e.g. %.9g vs %.9g, %.9g vs %.9g)", (double)a[0], (double)b[0], (double)a[9], (double)b[9]);
    TEST_CHECK(hb < ha, "releasing should lower the pool's high-water mark (%zu vs %zu bytes)", hb, ha);
    return 0;
}

/* a checkpoint restores a run exactly: save after 3 iterations, run 3 more; a fresh
   process state loaded from the checkpoint runs the same 3 with identical bits; a
   damaged checkpoint is refused and changes nothing */
typedef struct small_run { ag_ctx *ctx; ag_generator G; ag_discriminator D; ag_gan gan; ag_ema ema; } small_run;
static int small_run_init(small_run *r, uint64_t seed) {
    ag_error err; ag_rng rng; int arch[9] = { 0, 1, 2, 1, 1, 2, 0, 0, 1 };
    r->ctx = ag_ctx_create(seed, NULL); ag_ctx_set_threads(r->ctx, 2);
    ag_rng_seed(&rng, seed, 3);
    if (ag_generator_init(&r->G, 8, 16, 4, 3, &rng, &err) || ag_generator_set_arch(&r->G, 1, arch, 9, &err) ||
        ag_discriminator_init(&r->D, 8, 3, 1, &rng, &err) || ag_discriminator_set_stage(&r->D, 1, &err) ||
        ag_gan_init(&r->gan, &r->G, &r->D, 4, 6, 2, 2e-4f, 2e-4f, 0.0f, 0.9f, &err) || ag_ema_init(&r->ema, &r->G.params, 0.9f, &err)) {
        fprintf(stderr, "    %s\n", err.msg); return -1;
    }
    return 0;
}
static void small_run_free(small_run *r) { ag_ema_free(&r->ema); ag_gan_free(&r->gan); ag_generator_free(&r->G); ag_discriminator_free(&r->D); ag_ctx_free(r->ctx); }
static int small_run_steps(small_run *r, int n, float *losses) {
    float real[4 * 3 * 16 * 16]; int i; ag_rng data; ag_rng_seed(&data, 77, 1);
    for (i = 0; i < n; i++) {
        ag_gan_losses l;
        ag_rng_fill_uniform(&data, real, sizeof real / sizeof real[0], -1.0f, 1.0f);
        if (ag_gan_step(r->ctx, &r->gan, real, &l)) return -1;
        ag_ema_update(&r->ema);
        losses[2 * i] = l.d_loss; losses[2 * i + 1] = l.g_loss;
    }
    return 0;
}
static int test_gan_checkpoint_resume(void) {
    small_run a, b; float la[6], lb[6], tmp[6]; ag_error err; uint64_t before; const char *path = "build/test_ckpt.safetensors";
    unsigned char *bytes; size_t len; FILE *f;
    TEST_CHECK(small_run_init(&a, 11) == 0 && small_run_init(&b, 99) == 0, "init");
    TEST_CHECK(small_run_steps(&a, 3, tmp) == 0, "steps: %s", ag_ctx_error(a.ctx));
    TEST_CHECK(ag_gan_save(path, &a.gan, &a.ema, a.ctx, "\"note\":\"test\"", &err) == 0, "save: %s", err.msg);
    TEST_CHECK(small_run_steps(&a, 3, la) == 0, "steps");
    TEST_CHECK(ag_gan_load(path, &b.gan, &b.ema, b.ctx, NULL, &err) == 0, "load: %s", err.msg);
    TEST_CHECK(b.gan.iteration == 3 && b.gan.opt_g.step == 2, "counters restored (%lld, %lld)", (long long)b.gan.iteration, (long long)b.gan.opt_g.step);
    TEST_CHECK(small_run_steps(&b, 3, lb) == 0, "steps");
    TEST_CHECK(memcmp(la, lb, sizeof la) == 0, "resumed run differs: d %.9g vs %.9g", la[4], lb[4]);
    TEST_CHECK(params_checksum(&a.G.params) == params_checksum(&b.G.params) && params_checksum(&a.D.params) == params_checksum(&b.D.params), "weights equal after resume");
    TEST_CHECK(memcmp(a.ema.avg[0], b.ema.avg[0], a.G.params.entries[0].tensor->size * 4) == 0, "EMA restored");
    /* damaged checkpoints */
    TEST_CHECK(ag_read_file(path, &bytes, &len, &err) == 0, "%s", err.msg);
    f = fopen("build/test_ckpt_cut.safetensors", "wb"); fwrite(bytes, 1, len - 100, f); fclose(f);
    before = params_checksum(&b.G.params);
    TEST_CHECK(ag_gan_load("build/test_ckpt_cut.safetensors", &b.gan, &b.ema, b.ctx, NULL, &err) != 0 && strstr(err.msg, "test_ckpt_cut"), "truncated: %s", err.msg);
    TEST_CHECK(params_checksum(&b.G.params) == before && b.gan.iteration == 6, "unchanged after a refused load");
    TEST_CHECK(ag_gan_load("build/test_g.safetensors", &b.gan, &b.ema, b.ctx, NULL, &err) != 0 && strstr(err.msg, "not an autogan.h GAN checkpoint"), "plain weights file: %s", err.msg);
    free(bytes);
    small_run_free(&a); small_run_free(&b);
    return 0;
}

/* the reference initialisation: bounds and moments of each family of weights */
static int check_uniform(const ag_tensor *t, double bound, const char *what) {
    double mx = 0, mean = 0, var = 0; size_t i;
    for (i = 0; i < t->size; i++) { double v = t->data[i]; if (fabs(v) > mx) mx = fabs(v); mean += v; }
    mean /= (double)t->size;
    for (i = 0; i < t->size; i++) var += (t->data[i] - mean) * (t->data[i] - mean);
    var /= (double)t->size;
    /* U(-b, b): max just under b, mean 0, variance b^2/3 (to 5% with >= 16k samples) */
    if (!(mx <= bound && mx > 0.99 * bound && fabs(mean) < 0.02 * bound && fabs(var / (bound * bound / 3.0) - 1.0) < 0.05)) {
        fprintf(stderr, "    %s: max %g mean %g var %g for bound %g\n", what, mx, mean, var, bound); return 1;
    }
    return 0;
}
static int test_initialisation(void) {
    ag_generator G; ag_discriminator D; ag_error err; ag_rng rng; int bad = 0; size_t i; double m = 0, v = 0;
    ag_rng_seed(&rng, 3, 3);
    TEST_CHECK(ag_generator_init(&G, 128, 128, 4, 3, &rng, &err) == 0, "%s", err.msg);
    bad |= check_uniform(G.l1.weight, 1.0 / sqrt(128.0), "l1.weight (default: 1/sqrt(fan_in))");
    bad |= check_uniform(G.cells[0].post_conv1.conv.weight, sqrt(6.0 / (128 * 9 + 128 * 9)), "conv xavier_uniform");
    bad |= check_uniform(G.cells[1].c_sc.weight, sqrt(6.0 / (128 + 128)), "1x1 conv xavier_uniform");
    bad |= check_uniform(G.cells[2].skip_deconvx2.weight, 1.0 / sqrt(128 * 4.0), "deconv default (fan_in = out*k*k)");
    for (i = 0; i < 128; i++) { float w = G.cells[0].post_conv1.bn.weight->data[i]; m += w; v += (w - 1.0) * (w - 1.0); }
    TEST_CHECK(fabs(m / 128 - 1.0) < 0.01 && fabs(sqrt(v / 128) - 0.02) < 0.006, "BN weight N(1, 0.02): mean %g std %g", m / 128, sqrt(v / 128));
    TEST_CHECK(G.to_rgb_bn.bias->data[5] == 0.0f && G.to_rgb_bn.running_var->data[7] == 1.0f, "BN bias 0, running_var 1");
    ag_generator_free(&G);
    TEST_CHECK(ag_discriminator_init(&D, 128, 3, 1, &rng, &err) == 0, "%s", err.msg);
    bad |= check_uniform(D.block_c1[1].weight_orig, sqrt(6.0 / (128 * 9 + 128 * 9)), "D conv xavier_uniform");
    { double n = 0; for (i = 0; i < D.block_c1[1].u->size; i++) n += D.block_c1[1].u->data[i] * D.block_c1[1].u->data[i];
      TEST_CHECK(fabs(n - 1.0) < 1e-5, "spectral-norm u has unit norm (%g)", n); }
    ag_discriminator_free(&D);
    TEST_CHECK(!bad, "initialisation statistics off (see above)");
    return 0;
}

const test_case tests_models[] = {
    { "golden_gan (15 PyTorch cases, stages 0-2, every kernel path)", test_golden_gan },
    { "param_counts", test_param_counts },
    { "initialisation", test_initialisation },
    { "arch_validation", test_arch_validation },
    { "safetensors_roundtrip_and_bad_input", test_safetensors_roundtrip_and_bad_input },
    { "gan_determinism", test_gan_determinism },
    { "gan_release_same_bits (released buffers poisoned)", test_gan_release_same_bits },
    { "gan_checkpoint_resume", test_gan_checkpoint_resume },
    { NULL, NULL }
};
