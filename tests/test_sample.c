/* test_sample.c - the derived generators autogan_cifar10_a|b|c and build/sample.

   Goldens (tests/golden/gen_derived.py, PyTorch 1.13): derived_<case>.pth as the authors'
   release holds checkpoints (zip and legacy form; a training-checkpoint dict with
   avg_gen_state_dict, a dict with gen_state_dict only, a bare state_dict; bottom width 4
   and 6) and derived_<case>.safetensors with z, the reference's uint8 images and the float
   values x*127.5+127.5 they are truncated from. Images must be equal, except that a value
   within 2e-3 of an integer may truncate to either side (float32 through ~10 layers in a
   different summation order differs by ~1e-4 in those units); at most 1% of the values may
   use that slack. */

typedef struct derived_case { const char *name, *model, *key; int bw; } derived_case;
static const derived_case derived_cases[] = {
    { "a_bw4_zip_avg", "autogan_cifar10_a", "avg_gen_state_dict", 4 },
    { "a_bw6_legacy_bare", "autogan_cifar10_a", "state_dict", 6 },
    { "b_bw4_legacy_avg", "autogan_cifar10_b", "avg_gen_state_dict", 4 },
    { "b_bw6_zip_bare", "autogan_cifar10_b", "state_dict", 6 },
    { "c_bw4_zip_gen", "autogan_cifar10_c", "gen_state_dict", 4 },
    { "c_bw6_legacy_avg", "autogan_cifar10_c", "avg_gen_state_dict", 6 },
    { NULL, NULL, NULL, 0 } };

/* got: uint8 [N,H,W,3]; the golden's img (U8) and x (F32) of the same shape */
static int compare_images(const golden *g, const unsigned char *got, size_t n, const char *what) {
    const ag_array *img = ag_array_list_find(&g->arrays, "img"), *x = ag_array_list_find(&g->arrays, "x");
    size_t i, slack = 0;
    if (!img || !x || img->dtype != AG_DTYPE_U8 || x->dtype != AG_DTYPE_F32 || img->nbytes != n || x->nbytes != 4 * n) {
        fprintf(stderr, "    %s: golden %s lacks img/x of %zu values\n", what, g->path, n); return 1;
    }
    for (i = 0; i < n; i++) {
        unsigned char w = ((const unsigned char *)img->data)[i];
        float xv = ((const float *)x->data)[i];
        if (got[i] == w) continue;
        if (fabs(xv - floor(xv + 0.5)) < 2e-3 && abs((int)got[i] - (int)w) == 1) { slack++; continue; }
        fprintf(stderr, "    %s: value %zu is %d, the reference's %d (float %.6f)\n", what, i, got[i], w, xv);
        return 1;
    }
    if (slack > n / 100) { fprintf(stderr, "    %s: %zu of %zu values off by one at integer boundaries\n", what, slack, n); return 1; }
    return 0;
}
static unsigned char ref_u8(float x) {   /* x.mul_(127.5).add_(127.5).clamp_(0, 255).to(uint8) */
    volatile float t = x * 127.5f; float v = t + 127.5f;
    if (!(v > 0.0f)) return 0;
    return (unsigned char)(v > 255.0f ? 255.0f : v);
}

/* names, order and sizes of the released generators (gf 256, latent 128, bw 4) */
static int test_derived_state_dicts(void) {
    static const struct { const char *model; int entries; size_t params; } want[3] = {
        { "autogan_cifar10_a", 31, 4405251 }, { "autogan_cifar10_b", 33, 4471043 }, { "autogan_cifar10_c", 41, 4406275 } };
    static const char *const a_names[] = { "l1.weight", "l1.bias", "cell1.c1.weight", "cell1.c1.bias", "cell1.c2.weight", "cell1.c2.bias",
        "cell1.c_sc.weight", "cell1.c_sc.bias", "cell2.c1.weight", "cell2.c1.bias", "cell2.c2.weight", "cell2.c2.bias", "cell2.c_sc.weight",
        "cell2.c_sc.bias", "cell2.skip_in_ops.0.weight", "cell2.skip_in_ops.0.bias", "cell3.c1.weight", "cell3.c1.bias", "cell3.c2.weight",
        "cell3.c2.bias", "cell3.skip_in_ops.0.weight", "cell3.skip_in_ops.0.bias", "cell3.skip_in_ops.1.weight", "cell3.skip_in_ops.1.bias",
        "to_rgb.0.weight", "to_rgb.0.bias", "to_rgb.0.running_mean", "to_rgb.0.running_var", "to_rgb.0.num_batches_tracked",
        "to_rgb.2.weight", "to_rgb.2.bias" };
    ag_generator G; ag_error err; int arch[AG_ARCH_MAX], i, k;
    for (k = 0; k < 3; k++) {
        TEST_CHECK(ag_derived_arch(want[k].model, arch) == 0, "%s is known", want[k].model);
        TEST_CHECK(ag_generator_init_derived(&G, arch, 256, 128, 4, 3, NULL, &err) == 0, "%s", err.msg);
        TEST_CHECK(G.params.count == want[k].entries && ag_params_count(&G.params) == want[k].params, "%s: %d entries, %zu parameters (want %d, %zu)",
                   want[k].model, G.params.count, ag_params_count(&G.params), want[k].entries, want[k].params);
        if (k == 0) for (i = 0; i < 31; i++) TEST_CHECK(!strcmp(G.params.entries[i].name, a_names[i]), "entry %d is %s, want %s", i, G.params.entries[i].name, a_names[i]);
        if (k == 2) TEST_CHECK(ag_params_find(&G.params, "cell1.n1.running_var") && ag_params_find(&G.params, "cell1.n2.num_batches_tracked") &&
                               !ag_params_find(&G.params, "cell2.n1.weight"), "c: BN n1/n2 in cell 1 only");
        TEST_CHECK(ag_generator_set_arch(&G, 2, arch, 14, &err) == 0, "its own arch is accepted");
        arch[2] = 0;
        TEST_CHECK(ag_generator_set_arch(&G, 2, arch, 14, &err) != 0 && strstr(err.msg, "fixed"), "another arch is refused: %s", err.msg);
        ag_generator_free(&G);
    }
    TEST_CHECK(ag_derived_arch("autogan_cifar10_d", arch) != 0, "unknown name refused");
    { int post[14] = { 0, 0, 1, 1, 1, 0, 0, 1, 1, 1, 0, 1, 0, 3 }, dec[14] = { 1, 0, 2, 1, 1, 0, 0, 1, 1, 1, 0, 1, 0, 3 };
      TEST_CHECK(ag_generator_init_derived(&G, post, 8, 16, 4, 3, NULL, &err) != 0 && strstr(err.msg, "post-activation"), "post refused: %s", err.msg);
      TEST_CHECK(ag_generator_init_derived(&G, dec, 8, 16, 4, 3, NULL, &err) != 0 && strstr(err.msg, "deconv"), "deconv refused: %s", err.msg); }
    return 0;
}

static void copy_tensor(ag_tensor *dst, const ag_tensor *src) { if (dst && src) memcpy(dst->data, src->data, dst->size * sizeof(float)); }
static void copy_conv(ag_conv_layer *d, const ag_conv_layer *s) { copy_tensor(d->weight, s->weight); copy_tensor(d->bias, s->bias); }
static void copy_bn(ag_bn_layer *d, const ag_bn_layer *s) {
    copy_tensor(d->weight, s->weight); copy_tensor(d->bias, s->bias); copy_tensor(d->running_mean, s->running_mean); copy_tensor(d->running_var, s->running_var);
}
/* the derived model's weights taken from a shared generator at the same architecture */
static void derived_from_shared(ag_generator *d, const ag_generator *s) {
    int k, j;
    copy_conv(&d->l1, &s->l1); copy_bn(&d->to_rgb_bn, &s->to_rgb_bn); copy_conv(&d->to_rgb_conv, &s->to_rgb_conv);
    for (k = 0; k < 3; k++) {
        ag_gen_cell *dc = &d->cells[k]; const ag_gen_cell *sc = &s->cells[k];
        copy_conv(&dc->pre_conv1.conv, &sc->pre_conv1.conv); copy_conv(&dc->pre_conv2.conv, &sc->pre_conv2.conv);
        copy_bn(&dc->pre_conv1.bn, &sc->pre_conv1.bn); copy_bn(&dc->pre_conv2.bn, &sc->pre_conv2.bn);
        copy_conv(&dc->c_sc, &sc->c_sc);
        for (j = 0; j < k; j++) copy_conv(&dc->skip_in_ops[j], &sc->skip_in_ops[j]);
    }
}

/* forward of each derived model = the shared generator's at its architecture (same bits),
   in training and in eval mode; and a derived G trains, checkpoints and resumes */
static int test_derived_equals_shared(void) {
    static const char *const models[3] = { "autogan_cifar10_a", "autogan_cifar10_b", "autogan_cifar10_c" };
    ag_ctx *ctx = ag_ctx_create(3, NULL); ag_rng rng; ag_error err; ag_generator S, Dg; int arch[AG_ARCH_MAX], k, mode, shape[2] = { 5, 16 };
    ag_rng_seed(&rng, 17, 1);
    for (k = 0; k < 3; k++) for (mode = 1; mode >= 0; mode--) {
        ag_tensor *z, *ys, *yd; size_t i, nbn = 0;
        TEST_CHECK(ag_derived_arch(models[k], arch) == 0, "arch");
        TEST_CHECK(ag_generator_init(&S, 8, 16, 4, 3, &rng, &err) == 0 && ag_generator_set_arch(&S, 2, arch, 14, &err) == 0, "%s", err.msg);
        TEST_CHECK(ag_generator_init_derived(&Dg, arch, 8, 16, 4, 3, NULL, &err) == 0, "%s", err.msg);
        for (i = 0; i < (size_t)S.params.count; i++) {   /* random running statistics so eval mode matters */
            ag_param_entry *e = &S.params.entries[i]; size_t n = strlen(e->name);
            if (n > 12 && !strcmp(e->name + n - 12, "running_mean")) { ag_rng_fill_uniform(&rng, e->tensor->data, e->tensor->size, -0.3f, 0.3f); nbn++; }
            if (n > 11 && !strcmp(e->name + n - 11, "running_var")) ag_rng_fill_uniform(&rng, e->tensor->data, e->tensor->size, 0.5f, 1.5f);
        }
        derived_from_shared(&Dg, &S);
        S.training = Dg.training = mode;
        ag_ctx_reset(ctx);
        z = ag_tensor_new(ctx, 2, shape); ag_rng_fill_normal(&rng, z->data, z->size, 0.0f, 1.0f);
        ys = ag_generator_forward(ctx, &S, z); yd = ag_generator_forward(ctx, &Dg, z);
        TEST_CHECK(ys && yd && ys->size == yd->size, "forward: %s", ag_ctx_error(ctx));
        TEST_CHECK(memcmp(ys->data, yd->data, ys->size * sizeof(float)) == 0, "%s (%s mode): derived and shared outputs differ", models[k], mode ? "train" : "eval");
        ag_generator_free(&S); ag_generator_free(&Dg);
    }
    ag_ctx_free(ctx);
    /* the GAN step, EMA and checkpoints with a derived G */
    {
        ag_ctx *c1 = ag_ctx_create(9, NULL), *c2 = ag_ctx_create(9, NULL); ag_generator G1, G2, Gb; ag_discriminator D1, D2; ag_gan g1, g2, gb; ag_ema e1, e2;
        static float real[4 * 3 * 32 * 32]; int i, arch_b[AG_ARCH_MAX]; float l1[4], l2[4]; const char *path = "build/test_derived_ckpt.safetensors";
        ag_derived_arch("autogan_cifar10_a", arch); ag_derived_arch("autogan_cifar10_b", arch_b);
        ag_ctx_set_threads(c1, 2); ag_ctx_set_threads(c2, 2);
        ag_rng_seed(&rng, 21, 1);
        TEST_CHECK(ag_generator_init_derived(&G1, arch, 8, 16, 4, 3, &rng, &err) == 0 && ag_discriminator_init(&D1, 8, 3, 1, &rng, &err) == 0 &&
                   ag_gan_init(&g1, &G1, &D1, 4, 4, 1, 2e-4f, 2e-4f, 0.0f, 0.9f, &err) == 0 && ag_ema_init(&e1, &G1.params, 0.9f, &err) == 0, "%s", err.msg);
        TEST_CHECK(ag_generator_init_derived(&G2, arch, 8, 16, 4, 3, &rng, &err) == 0 && ag_discriminator_init(&D2, 8, 3, 1, &rng, &err) == 0 &&
                   ag_gan_init(&g2, &G2, &D2, 4, 4, 1, 2e-4f, 2e-4f, 0.0f, 0.9f, &err) == 0 && ag_ema_init(&e2, &G2.params, 0.9f, &err) == 0, "%s", err.msg);
        for (i = 0; i < 4; i++) {
            ag_gan_losses l;
            if (i == 2) {
                TEST_CHECK(ag_gan_save(path, &g1, &e1, c1, NULL, &err) == 0, "save: %s", err.msg);
                TEST_CHECK(ag_gan_load(path, &g2, &e2, c2, NULL, &err) == 0, "load: %s", err.msg);
            }
            ag_rng_fill_uniform(&rng, real, sizeof real / sizeof real[0], -1.0f, 1.0f);
            TEST_CHECK(ag_gan_step(c1, &g1, real, &l) == 0, "derived GAN step: %s", ag_ctx_error(c1));
            ag_ema_update(&e1); l1[i] = l.d_loss + l.g_loss;
            if (i >= 2) { TEST_CHECK(ag_gan_step(c2, &g2, real, &l) == 0, "step"); ag_ema_update(&e2); l2[i] = l.d_loss + l.g_loss; }
        }
        TEST_CHECK(isfinite(l1[0]) && l1[2] == l2[2] && l1[3] == l2[3], "resumed derived run differs (%.9g vs %.9g)", (double)l1[3], (double)l2[3]);
        TEST_CHECK(memcmp(G1.cells[2].skip_in_ops[1].weight->data, G2.cells[2].skip_in_ops[1].weight->data, 8 * 8 * sizeof(float)) == 0, "weights equal after resume");
        /* ag_generator_load on a GAN checkpoint: the EMA weights (as avg_gen_state_dict) */
        {
            ag_generator G3; char key[32]; int bad = 0;
            TEST_CHECK(ag_gan_save(path, &g1, &e1, c1, NULL, &err) == 0, "save: %s", err.msg);
            TEST_CHECK(ag_generator_init_derived(&G3, arch, 8, 16, 4, 3, NULL, &err) == 0, "%s", err.msg);
            TEST_CHECK(ag_generator_load(&G3, path, key, sizeof key, &err) == 0 && !strcmp(key, "ema"), "load: %s (%s)", err.msg, key);
            for (i = 0; i < G3.params.count; i++) {
                const ag_param_entry *e = &G3.params.entries[i];
                if (e->kind == AG_ENTRY_PARAM) bad |= memcmp(e->tensor->data, e1.avg[i], e->tensor->size * 4) != 0;
                else if (e->kind == AG_ENTRY_BUFFER) bad |= memcmp(e->tensor->data, G1.params.entries[i].tensor->data, e->tensor->size * 4) != 0;
                else bad |= *e->counter != *G1.params.entries[i].counter;
            }
            TEST_CHECK(!bad, "EMA parameters and live buffers loaded");
            ag_generator_free(&G3);
        }
        /* the checkpoint of model a does not load into model b */
        TEST_CHECK(ag_generator_init_derived(&Gb, arch_b, 8, 16, 4, 3, NULL, &err) == 0 && ag_gan_init(&gb, &Gb, &D2, 4, 4, 1, 2e-4f, 2e-4f, 0.0f, 0.9f, &err) == 0, "%s", err.msg);
        TEST_CHECK(ag_gan_load(path, &gb, NULL, c2, NULL, &err) != 0 && strstr(err.msg, "test_derived_ckpt"), "a's checkpoint into b: %s", err.msg);
        ag_gan_free(&gb); ag_generator_free(&Gb);
        ag_ema_free(&e1); ag_ema_free(&e2); ag_gan_free(&g1); ag_gan_free(&g2);
        ag_generator_free(&G1); ag_generator_free(&G2); ag_discriminator_free(&D1); ag_discriminator_free(&D2);
        ag_ctx_free(c1); ag_ctx_free(c2); remove(path);
    }
    return 0;
}

/* the library on the golden .pth files: the right dict, eval mode, the reference's images */
static int test_derived_golden_pth(void) {
    int k, failed = 0;
    for (k = 0; derived_cases[k].name; k++) {
        const derived_case *dc = &derived_cases[k]; golden g; ag_generator G; ag_error err; int arch[AG_ARCH_MAX], R = 8 * dc->bw, i, c, y, x;
        char name[96], pth[600], key[64]; ag_ctx *ctx = ag_ctx_create(1, NULL); ag_tensor *z, *out; unsigned char *img;
        snprintf(name, sizeof name, "derived_%s", dc->name);
        TEST_CHECK(golden_open(&g, name) == 0, "golden %s", name);
        snprintf(pth, sizeof pth, "%s/golden/data/%s.pth", TEST_DATA_DIR, name);
        TEST_CHECK(ag_derived_arch(dc->model, arch) == 0 && ag_generator_init_derived(&G, arch, golden_int(&g, "gf", 0), golden_int(&g, "latent", 0), dc->bw, 3, NULL, &err) == 0, "%s", err.msg);
        TEST_CHECK(ag_generator_load(&G, pth, key, sizeof key, &err) == 0, "%s", err.msg);
        TEST_CHECK(!strcmp(key, dc->key), "%s: loaded '%s', want '%s'", name, key, dc->key);
        G.training = 0; ag_ctx_set_grad_enabled(ctx, 0);
        z = golden_tensor(ctx, &g, "z", 0);
        out = ag_generator_forward(ctx, &G, z);
        TEST_CHECK(out && out->shape[2] == R, "forward: %s", ag_ctx_error(ctx));
        img = (unsigned char *)malloc(out->size);
        for (i = 0; i < out->shape[0]; i++) for (c = 0; c < 3; c++) for (y = 0; y < R; y++) for (x = 0; x < R; x++)
            img[(((size_t)i * R + y) * R + x) * 3 + c] = ref_u8(out->data[(((size_t)i * 3 + c) * R + y) * R + x]);
        if (compare_images(&g, img, out->size, name)) failed++;
        free(img); ag_generator_free(&G); ag_ctx_free(ctx); golden_close(&g);
    }
    TEST_CHECK(failed == 0, "%d golden .pth cases off", failed);
    return 0;
}

#if defined(__unix__) || defined(__APPLE__)
/* runs build/sample; its stderr+stdout into out (truncated); returns the exit status */
static int run_sample(const char *args, char *out, size_t cap) {
    char cmd[2048]; FILE *p; size_t n = 0; int ch;
    snprintf(cmd, sizeof cmd, "./build/sample --threads 2 %s 2>&1", args);
    if (!(p = popen(cmd, "r"))) return -1;
    while ((ch = fgetc(p)) != EOF) if (n + 1 < cap) out[n++] = (char)ch;
    out[n] = 0;
    return pclose(p);
}
static int write_z(const golden *g, const char *path) {
    const ag_array *z = ag_array_list_find(&g->arrays, "z"); ag_error err;
    if (!z || ag_npy_write(path, z, &err)) { fprintf(stderr, "    %s: %s\n", path, z ? err.msg : "no z"); return -1; }
    return 0;
}
static int test_sample_cli(void) {
    static char out[8192]; int k, failed = 0; ag_error err;
    TEST_CHECK(system("mkdir -p build/cli && rm -rf build/cli/sample_png") == 0, "mkdir");
    for (k = 0; derived_cases[k].name; k++) {
        const derived_case *dc = &derived_cases[k]; golden g; char name[96], args[1200]; ag_array a; int rc;
        snprintf(name, sizeof name, "derived_%s", dc->name);
        TEST_CHECK(golden_open(&g, name) == 0, "golden %s", name);
        TEST_CHECK(write_z(&g, "build/cli/sample_z.npy") == 0, "z");
        remove("build/cli/sample_out.npy");
        snprintf(args, sizeof args, "%s%s --gf_dim %d --latent_dim %d --bottom_width %d --load_path %s/golden/data/%s.pth --z build/cli/sample_z.npy --out build/cli/sample_out.npy",
                 k % 2 ? "--arch " : "--gen_model ", k % 2 ? "" : dc->model, golden_int(&g, "gf", 0), golden_int(&g, "latent", 0), dc->bw, TEST_DATA_DIR, name);
        if (k % 2) {   /* the same model given by its 14 tokens */
            char archs[64]; ag_json_get_string(g.meta, "arch", archs, sizeof archs);
            snprintf(args, sizeof args, "--arch %s --gf_dim %d --latent_dim %d --bottom_width %d --load_path %s/golden/data/%s.pth --z build/cli/sample_z.npy --out build/cli/sample_out.npy",
                     archs, golden_int(&g, "gf", 0), golden_int(&g, "latent", 0), dc->bw, TEST_DATA_DIR, name);
        }
        rc = run_sample(args, out, sizeof out);
        if (rc != 0) { fprintf(stderr, "    sample %s failed (%d):\n%s", args, rc, out); failed++; golden_close(&g); continue; }
        if (ag_npy_read("build/cli/sample_out.npy", &a, &err)) { fprintf(stderr, "    %s\n", err.msg); failed++; golden_close(&g); continue; }
        if (a.dtype != AG_DTYPE_U8 || a.ndim != 4 || a.shape[1] != 8 * dc->bw || a.shape[3] != 3) { fprintf(stderr, "    %s: output is not uint8 [N,%d,%d,3]\n", name, 8 * dc->bw, 8 * dc->bw); failed++; }
        else if (compare_images(&g, (const unsigned char *)a.data, a.nbytes, name)) failed++;
        ag_array_free(&a);
        if (k == 0) {   /* PNG directory: the reference's file names, the same pixels */
            ag_array p0, p5; golden_close(&g);
            TEST_CHECK(golden_open(&g, name) == 0, "golden");
            snprintf(args, sizeof args, "--gen_model %s --gf_dim 8 --latent_dim 16 --load_path %s/golden/data/%s.pth --z build/cli/sample_z.npy --eval_batch_size 3 --out build/cli/sample_png",
                     dc->model, TEST_DATA_DIR, name);
            TEST_CHECK(run_sample(args, out, sizeof out) == 0, "sample --out DIR: %s", out);
            TEST_CHECK(ag_png_read("build/cli/sample_png/iter0_b0.png", 3, &p0, &err) == 0, "%s", err.msg);
            TEST_CHECK(ag_png_read("build/cli/sample_png/iter1_b0.png", 3, &p5, &err) == 0, "%s (the 4th image is batch 1, index 0)", err.msg);
            { const ag_array *img = ag_array_list_find(&g.arrays, "img");
              TEST_CHECK(img && memcmp(p0.data, img->data, 32 * 32 * 3) == 0 && memcmp(p5.data, (const unsigned char *)img->data + 3 * 32 * 32 * 3, 32 * 32 * 3) == 0,
                         "PNG pixels equal the reference's images"); }
            ag_array_free(&p0); ag_array_free(&p5);
        }
        golden_close(&g);
    }
    TEST_CHECK(failed == 0, "%d build/sample golden cases off", failed);
    return 0;
}

/* build/sample with Inception scoring (3 images in batches of 2, random Inception weights):
   the numbers equal the library's on the same images */
static int test_sample_scores(void) {
    static char out[8192]; ag_array_list sd, st; ag_error err; ag_inception *net; golden g; ag_array a; ag_fid_stats gs;
    float *xin, pool[3 * 2048], logits[3 * 1008]; double want_is, want_std, is = NAN, isd = NAN, fid = NAN; int k; int64_t s1[1] = { 2048 }, s2[2] = { 2048, 2048 };
    char *line;
    memset(&sd, 0, sizeof sd); memset(&st, 0, sizeof st);
    TEST_CHECK(system("mkdir -p build/cli") == 0, "mkdir");
    TEST_CHECK(inception_random_weights(&sd, &err) == 0, "%s", err.msg);
    TEST_CHECK(ag_safetensors_write("build/cli/sample_inception.safetensors", &sd, NULL, &err) == 0, "%s", err.msg);
    net = ag_inception_from_arrays(&sd, &err); ag_array_list_free(&sd);
    TEST_CHECK(net != NULL, "%s", err.msg);
    ag_inception_set_threads(net, 2);
    TEST_CHECK(golden_open(&g, "derived_b_bw4_legacy_avg") == 0, "golden");
    TEST_CHECK(write_z(&g, "build/cli/sample_z.npy") == 0, "z");
    /* the images build/sample makes (checked against the reference above) */
    TEST_CHECK(run_sample("--gen_model autogan_cifar10_b --gf_dim 8 --latent_dim 16 --load_path " TEST_DATA_DIR "/golden/data/derived_b_bw4_legacy_avg.pth "
                          "--z build/cli/sample_z.npy --out build/cli/sample_out.npy", out, sizeof out) == 0, "%s", out);
    TEST_CHECK(ag_npy_read("build/cli/sample_out.npy", &a, &err) == 0 && a.shape[0] == 4, "%s", err.msg);
    xin = (float *)malloc((size_t)3 * 3 * 299 * 299 * sizeof(float));
    for (k = 0; k < 3; k++) ag_inception_preprocess_tf((const unsigned char *)a.data + (size_t)k * 32 * 32 * 3, 32, 32, xin + (size_t)k * 3 * 299 * 299);
    TEST_CHECK(ag_inception_forward(net, xin, 3, pool, logits, 0, &err) == 0, "%s", err.msg);
    TEST_CHECK(ag_inception_score(logits, 3, 1008, 1, &want_is, &want_std, &err) == 0, "%s", err.msg);
    /* reference statistics = those of the same images: FID ~ 0 (only the 1e-6 offset of the
       singular covariance, -2·2048·1e-6); features of other images would give a large value
       (an in-process ag_fid on 2048 dims would double the test's time) */
    ag_fid_stats_init(&gs, 2048, &err); TEST_CHECK(ag_fid_stats_add(&gs, pool, 3, &err) == 0, "%s", err.msg); ag_fid_stats_finish(&gs, &err);
    TEST_CHECK(ag_array_list_add(&st, "mu", AG_DTYPE_F64, 1, s1, gs.mu, &err) == 0 && ag_array_list_add(&st, "sigma", AG_DTYPE_F64, 2, s2, gs.sigma, &err) == 0 &&
               ag_npz_write("build/cli/sample_stats.npz", &st, &err) == 0, "%s", err.msg);
    ag_array_list_free(&st); ag_fid_stats_free(&gs); ag_array_free(&a); free(xin); ag_inception_free(net);
    TEST_CHECK(run_sample("--gen_model autogan_cifar10_b --gf_dim 8 --latent_dim 16 --load_path " TEST_DATA_DIR "/golden/data/derived_b_bw4_legacy_avg.pth "
                          "--z build/cli/sample_z.npy --num_eval_imgs 3 --eval_batch_size 2 --splits 1 --inception build/cli/sample_inception.safetensors --fid_stat build/cli/sample_stats.npz",
                          out, sizeof out) == 0, "%s", out);
    if ((line = strstr(out, "\nIS ")) != NULL) sscanf(line + 4, "%lf %lf", &is, &isd);
    if ((line = strstr(out, "\nFID ")) != NULL) sscanf(line + 5, "%lf", &fid);
    TEST_CHECK(fabs(is - want_is) <= 2e-6 && fabs(isd - want_std) <= 2e-6, "IS %.6f %.6f, library %.6f %.6f\n%s", is, isd, want_is, want_std, out);
    TEST_CHECK(fabs(fid) < 1e-2, "FID of the images against their own statistics: %.6f (want ~0)", fid);
    golden_close(&g);
    remove("build/cli/sample_inception.safetensors");
    return 0;
}

/* bad input: a clear message naming the file and the mismatch, a non-zero exit */
static int test_sample_bad_input(void) {
    static char out[8192]; unsigned char *bytes; size_t len; ag_error err; FILE *f; ag_generator G; int arch[AG_ARCH_MAX];
    const char *d = TEST_DATA_DIR "/golden/data/";
    char args[1024];
    TEST_CHECK(system("mkdir -p build/cli") == 0, "mkdir");
    TEST_CHECK(run_sample("--gen_model autogan_cifar10_z --load_path x.pth --out build/cli/x.npy", out, sizeof out) != 0 &&
               strstr(out, "autogan_cifar10_z") && strstr(out, "unknown model"), "unknown model: %s", out);
    /* b's checkpoint for model a: b has cell3.c_sc, a has not */
    snprintf(args, sizeof args, "--gen_model autogan_cifar10_a --gf_dim 8 --latent_dim 16 --load_path %sderived_b_bw4_legacy_avg.pth --num_eval_imgs 2 --out build/cli/x.npy", d);
    TEST_CHECK(run_sample(args, out, sizeof out) != 0 && strstr(out, "derived_b_bw4_legacy_avg.pth") && strstr(out, "cell3.c_sc"), "another model: %s", out);
    /* a 48x48 (bottom width 6) checkpoint read as 32x32 */
    snprintf(args, sizeof args, "--gen_model autogan_cifar10_a --gf_dim 8 --latent_dim 16 --bottom_width 4 --load_path %sderived_a_bw6_legacy_bare.pth --num_eval_imgs 2 --out build/cli/x.npy", d);
    TEST_CHECK(run_sample(args, out, sizeof out) != 0 && strstr(out, "derived_a_bw6_legacy_bare.pth") && strstr(out, "l1.weight") && strstr(out, "[288,16]") &&
               strstr(out, "bottom width 4"), "another width: %s", out);
    /* truncated files, zip and legacy */
    TEST_CHECK(ag_read_file(TEST_DATA_DIR "/golden/data/derived_a_bw4_zip_avg.pth", &bytes, &len, &err) == 0, "%s", err.msg);
    f = fopen("build/cli/cut_zip.pth", "wb"); fwrite(bytes, 1, len / 2, f); fclose(f); free(bytes);
    TEST_CHECK(run_sample("--gen_model autogan_cifar10_a --gf_dim 8 --latent_dim 16 --load_path build/cli/cut_zip.pth --num_eval_imgs 2 --out build/cli/x.npy", out, sizeof out) != 0 &&
               strstr(out, "cut_zip.pth"), "truncated zip .pth: %s", out);
    TEST_CHECK(ag_read_file(TEST_DATA_DIR "/golden/data/derived_a_bw6_legacy_bare.pth", &bytes, &len, &err) == 0, "%s", err.msg);
    f = fopen("build/cli/cut_legacy.pth", "wb"); fwrite(bytes, 1, len - 100, f); fclose(f); free(bytes);
    TEST_CHECK(run_sample("--gen_model autogan_cifar10_a --gf_dim 8 --latent_dim 16 --bottom_width 6 --load_path build/cli/cut_legacy.pth --num_eval_imgs 2 --out build/cli/x.npy", out, sizeof out) != 0 &&
               strstr(out, "cut_legacy.pth"), "truncated legacy .pth: %s", out);
    TEST_CHECK(run_sample("--gen_model autogan_cifar10_a --arch 1 0 1 1 1 0 1 1 1 1 0 1 1 3 --load_path x.pth --out build/cli/x.npy", out, sizeof out) != 0 &&
               strstr(out, "does not match"), "--arch against --gen_model: %s", out);
    { FILE *a = fopen("build/cli/x.npy", "rb"), *b = fopen("build/cli/x.npy.tmp", "rb");
      if (a) fclose(a);
      if (b) fclose(b);
      TEST_CHECK(!a && !b, "no output file left behind"); }
    /* a failed load changes nothing */
    ag_derived_arch("autogan_cifar10_a", arch);
    TEST_CHECK(ag_generator_init_derived(&G, arch, 8, 16, 4, 3, NULL, &err) == 0, "%s", err.msg);
    G.l1.weight->data[0] = 42.0f;
    TEST_CHECK(ag_generator_load(&G, TEST_DATA_DIR "/golden/data/derived_b_bw4_legacy_avg.pth", NULL, 0, &err) != 0 && G.l1.weight->data[0] == 42.0f, "unchanged");
    ag_generator_free(&G);
    return 0;
}

/* build/sample --load_path RUN_DIR (issue 15, new user 3): a build/train run directory reads
   RUN_DIR/Model/checkpoint.safetensors (--best: checkpoint_best.safetensors), says which, and
   gives the same images as the file itself; a directory without it is refused naming what was
   looked for. Was: the directory read as a .pth. Also --classifier scores the images. */
static int sample_same_file(const char *a, const char *b) {
    unsigned char *x, *y; size_t nx, ny; ag_error err; int same;
    if (ag_read_file(a, &x, &nx, &err)) return 0;
    if (ag_read_file(b, &y, &ny, &err)) { free(x); return 0; }
    same = nx == ny && !memcmp(x, y, nx);
    free(x); free(y);
    return same;
}
static int run_sample_rc(const char *args, char *out, size_t cap) {   /* the exit status */
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "./build/sample --threads 2 %s", args);
    return test_run_command(cmd, out, cap);
}
static int test_sample_run_dir(void) {
    static char out[16384]; ag_classifier net; ag_rng r; ag_error err; int rc; char *line; double is = NAN;
    system("rm -rf build/cli_rundir && mkdir -p build/cli_rundir");
    ag_rng_seed(&r, 5, 1);
    TEST_CHECK(ag_classifier_init(&net, 1, 28, 10, &r, &err) == 0 && ag_classifier_save("build/cli_rundir/cls.safetensors", &net, "mnist", NULL, &err) == 0, "%s", err.msg);
    ag_classifier_free(&net);
    rc = test_run_command("./build/train --gen_model autogan_cifar10_a --gf_dim 8 --df_dim 8 --latent_dim 16 --bottom_width 2 --dataset mnist --data_path tests/data/datasets/mnist "
                          "--gen_bs 4 --dis_bs 2 --n_critic 1 --val_freq_iter 2 --num_eval_imgs 20 --eval_batch_size 10 --classifier build/cli_rundir/cls.safetensors "
                          "--max_iter 4 --print_freq 100 --threads 2 --exp_name run --log_dir build/cli_rundir", out, sizeof out);
    TEST_CHECK(rc == 0, "the tiny training run: exit %d\n%s", rc, out);
    TEST_CHECK(sample_same_file("build/cli_rundir/run/Model/checkpoint.safetensors", "build/cli_rundir/run/Model/checkpoint.safetensors"), "the run wrote no checkpoint");
    /* the latest checkpoint, named on stderr; the same images as the file given itself */
    rc = run_sample_rc("--load_path build/cli_rundir/run --num_eval_imgs 5 --out build/cli_rundir/dir.npy", out, sizeof out);
    TEST_CHECK(rc == 0 && strstr(out, "reading build/cli_rundir/run/Model/checkpoint.safetensors") && strstr(out, "latest"), "RUN_DIR: exit %d\n%s", rc, out);
    rc = run_sample_rc("--load_path build/cli_rundir/run/Model/checkpoint.safetensors --num_eval_imgs 5 --out build/cli_rundir/file.npy", out, sizeof out);
    TEST_CHECK(rc == 0, "the checkpoint itself: exit %d\n%s", rc, out);
    TEST_CHECK(sample_same_file("build/cli_rundir/dir.npy", "build/cli_rundir/file.npy"), "RUN_DIR and RUN_DIR/Model/checkpoint.safetensors give other images");
    /* --best: the checkpoint of the lowest FID */
    rc = run_sample_rc("--load_path build/cli_rundir/run/ --best --num_eval_imgs 5 --out build/cli_rundir/best.npy", out, sizeof out);
    TEST_CHECK(rc == 0 && strstr(out, "reading build/cli_rundir/run/Model/checkpoint_best.safetensors") && strstr(out, "lowest FID"), "--best: exit %d\n%s", rc, out);
    rc = run_sample_rc("--load_path build/cli_rundir/run/Model/checkpoint_best.safetensors --num_eval_imgs 5 --out build/cli_rundir/best_file.npy", out, sizeof out);
    TEST_CHECK(rc == 0 && sample_same_file("build/cli_rundir/best.npy", "build/cli_rundir/best_file.npy"), "--best reads another file: exit %d\n%s", rc, out);
    /* a directory without a checkpoint: exit 2 naming what was looked for, nothing loaded */
    rc = run_sample_rc("--load_path build/cli_rundir --num_eval_imgs 5 --out build/cli_rundir/none.npy", out, sizeof out);
    TEST_CHECK(rc == 2 && strstr(out, "build/cli_rundir/Model/checkpoint.safetensors") && !strstr(out, "parameters"), "no checkpoint: exit %d\n%s", rc, out);
    rc = run_sample_rc("--load_path build/cli_rundir --best --num_eval_imgs 5 --out build/cli_rundir/none.npy", out, sizeof out);
    TEST_CHECK(rc == 2 && strstr(out, "build/cli_rundir/Model/checkpoint_best.safetensors"), "no best checkpoint: exit %d\n%s", rc, out);
    rc = run_sample_rc("--load_path build/cli_rundir/cls.safetensors --best --num_eval_imgs 5 --out build/cli_rundir/none.npy", out, sizeof out);
    TEST_CHECK(rc == 2 && strstr(out, "--best needs --load_path RUN_DIR"), "--best with a file: exit %d\n%s", rc, out);
    /* a build/search run directory: said so (its checkpoint has no generator to sample) */
    {
        ag_array_list l; int64_t one[1] = { 1 }; float v = 0.0f;
        memset(&l, 0, sizeof l);
        system("mkdir -p build/cli_rundir/search/Model");
        TEST_CHECK(ag_array_list_add(&l, "x", AG_DTYPE_F32, 1, one, &v, &err) == 0 &&
                   ag_safetensors_write("build/cli_rundir/search/Model/checkpoint.safetensors", &l, "{\"format\":\"autogan.h search checkpoint 1\"}", &err) == 0, "%s", err.msg);
        ag_array_list_free(&l);
        rc = run_sample_rc("--load_path build/cli_rundir/search --num_eval_imgs 5 --out build/cli_rundir/none.npy", out, sizeof out);
        TEST_CHECK(rc == 2 && strstr(out, "build/search checkpoint"), "a search directory: exit %d\n%s", rc, out);
    }
    /* IS with the compact classifier (before: --inception only) */
    rc = run_sample_rc("--load_path build/cli_rundir/run --num_eval_imgs 6 --splits 2 --classifier build/cli_rundir/cls.safetensors", out, sizeof out);
    if ((line = strstr(out, "\nIS ")) != NULL) sscanf(line + 4, "%lf", &is);
    TEST_CHECK(rc == 0 && is >= 1.0 - 1e-9 && is <= 10.0 + 1e-9, "--classifier: exit %d, IS %g\n%s", rc, is, out);
    return 0;
}
#endif

const test_case tests_sample[] = {
    { "derived_state_dicts (a, b, c: reference names and sizes)", test_derived_state_dicts },
    { "derived_equals_shared (forward bits, GAN step, checkpoint)", test_derived_equals_shared },
    { "derived_golden_pth (zip/legacy, dict/bare, bw 4/6 vs PyTorch)", test_derived_golden_pth },
#if defined(__unix__) || defined(__APPLE__)
    { "sample_cli (build/sample vs the reference's images)", test_sample_cli },
    { "sample_scores (build/sample IS and FID)", test_sample_scores },
    { "sample_bad_input", test_sample_bad_input },
    { "sample_run_dir (--load_path RUN_DIR, --best, --classifier)", test_sample_run_dir },
#endif
    { NULL, NULL }
};
