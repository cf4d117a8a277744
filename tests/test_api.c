/* test_api.c - the calls every program used to rewrite (issue 15, items 8-10): the
   generator's eval mode and generation, the reference's float -> uint8 quantisation, image
   grids as PNG, a generator built from a file's metadata, the GAN step on a partial batch,
   the project's files found from any working directory, and the one-line build of the
   design card. Expected values are computed here independently (double arithmetic, pixel
   by pixel), and the grids are compared byte for byte with what build/train and
   build/dataset write. */
#if !defined(_WIN32)
#include <unistd.h>
#include <sys/stat.h>
#endif

/* the quantisations, computed in double: every float product and sum of two floats here is
   exact in double, so the casts are the float32 roundings the reference makes one by one */
static unsigned char api_ref_truncate(float x) {
    float t, v;
    if (x != x) return 0;
    t = (float)((double)x * 127.5);
    v = (float)((double)t + 127.5);
    if (v <= 0.0f) return 0;
    if (v >= 255.0f) return 255;
    return (unsigned char)(int)floor((double)v);
}
static unsigned char api_ref_round(float x) {
    float a, b, v;
    if (x != x) return 0;
    a = (float)((double)x + 1.0);
    b = (float)((double)a * 127.5);
    v = (float)((double)b + 0.5);
    if (v <= 0.0f) return 0;
    if (v >= 255.0f) return 255;
    return (unsigned char)(int)floor((double)v);
}

static int test_api_images_to_u8(void) {
    static const float edge[] = { -1.0f, 1.0f, 0.0f, -2.0f, 2.0f, 1e30f, -1e30f, 0.999f, -0.999f, 1.0f / 255.0f,
                                  -0.9960785f, 0.0039215f, 0.5f, -0.5f, 1.0000001f, -1.0000001f, 0.99607843f };
    enum { N = 3, C = 3, H = 5, W = 7 };
    float img[N * C * H * W], x; unsigned char got[N * H * W * 3], g1[1]; ag_rng rng; int i, k, c, y, xx, mode, differ = 0;
    /* boundaries: -1 -> 0, 1 -> 255, 0 -> 127 (127.5 truncated), out of range clamped, NaN 0, inf 255 */
    for (mode = 0; mode < 2; mode++) for (i = 0; i < (int)(sizeof edge / sizeof edge[0]); i++) {
        TEST_CHECK(ag_images_to_u8(&edge[i], 1, 1, 1, 1, 1, mode, g1) == 0, "one value");
        TEST_CHECK(g1[0] == (mode ? api_ref_round(edge[i]) : api_ref_truncate(edge[i])), "mode %d: %.9g -> %d, want %d",
                   mode, (double)edge[i], g1[0], mode ? api_ref_round(edge[i]) : api_ref_truncate(edge[i]));
    }
    x = -1.0f; ag_images_to_u8(&x, 1, 1, 1, 1, 1, AG_U8_TRUNCATE, g1); TEST_CHECK(g1[0] == 0, "-1 -> %d", g1[0]);
    x = 1.0f; ag_images_to_u8(&x, 1, 1, 1, 1, 1, AG_U8_TRUNCATE, g1); TEST_CHECK(g1[0] == 255, "1 -> %d", g1[0]);
    x = 0.0f; ag_images_to_u8(&x, 1, 1, 1, 1, 1, AG_U8_TRUNCATE, g1); TEST_CHECK(g1[0] == 127, "0 -> %d (127.5 truncates)", g1[0]);
    x = 0.0f; ag_images_to_u8(&x, 1, 1, 1, 1, 1, AG_U8_ROUND, g1); TEST_CHECK(g1[0] == 128, "0 rounds to %d", g1[0]);
    x = (float)NAN; ag_images_to_u8(&x, 1, 1, 1, 1, 1, AG_U8_TRUNCATE, g1); TEST_CHECK(g1[0] == 0, "NaN -> %d", g1[0]);
    x = (float)INFINITY; ag_images_to_u8(&x, 1, 1, 1, 1, 1, AG_U8_ROUND, g1); TEST_CHECK(g1[0] == 255, "inf -> %d", g1[0]);
    /* a million random values in [-1.1, 1.1]: both modes as computed above; among them values
       where one fused rounding (x * 127.5 + 127.5 in one step) would truncate differently */
    ag_rng_seed(&rng, 99, 1);
    for (i = 0; i < 1000000; i++) {
        float v = ag_rng_uniform(&rng) * 2.2f - 1.1f; unsigned char a, b; double fused;
        ag_images_to_u8(&v, 1, 1, 1, 1, 1, AG_U8_TRUNCATE, &a);
        ag_images_to_u8(&v, 1, 1, 1, 1, 1, AG_U8_ROUND, &b);
        TEST_CHECK(a == api_ref_truncate(v), "%.9g truncates to %d, want %d", (double)v, a, api_ref_truncate(v));
        TEST_CHECK(b == api_ref_round(v), "%.9g rounds to %d, want %d", (double)v, b, api_ref_round(v));
        fused = (double)(float)((double)v * 127.5 + 127.5);
        if (fused > 0 && fused < 255 && (int)floor(fused) != a) differ++;
    }
    /* layout: NCHW in, NHWC out; 3 -> 3 channels, and gray replicated into RGB */
    ag_rng_seed(&rng, 5, 2);
    ag_rng_fill_uniform(&rng, img, sizeof img / sizeof img[0], -1.2f, 1.2f);
    TEST_CHECK(ag_images_to_u8(img, N, C, H, W, 3, AG_U8_TRUNCATE, got) == 0, "RGB");
    for (k = 0; k < N; k++) for (c = 0; c < C; c++) for (y = 0; y < H; y++) for (xx = 0; xx < W; xx++)
        TEST_CHECK(got[((k * H + y) * W + xx) * 3 + c] == api_ref_truncate(img[((k * C + c) * H + y) * W + xx]), "pixel %d %d %d %d", k, c, y, xx);
    TEST_CHECK(ag_images_to_u8(img, N, 1, H, W, 3, AG_U8_ROUND, got) == 0, "gray to RGB");
    for (k = 0; k < N; k++) for (c = 0; c < 3; c++) for (y = 0; y < H; y++) for (xx = 0; xx < W; xx++)
        TEST_CHECK(got[((k * H + y) * W + xx) * 3 + c] == api_ref_round(img[(k * H + y) * W + xx]), "gray pixel %d %d %d %d", k, c, y, xx);
    /* bad arguments write nothing */
    memset(got, 7, sizeof got);
    TEST_CHECK(ag_images_to_u8(img, 0, 3, H, W, 3, 0, got) == -1 && ag_images_to_u8(img, 1, 5, H, W, 3, 0, got) == -1 &&
               ag_images_to_u8(img, 1, 3, H, W, 0, 0, got) == -1 && ag_images_to_u8(img, 1, 3, H, W, 3, 2, got) == -1 &&
               ag_images_to_u8(NULL, 1, 3, H, W, 3, 0, got) == -1 && got[0] == 7, "bad arguments refused");
    printf("    (%d of 1,000,000 values would truncate differently with a fused multiply-add)\n", differ);
    return 0;
}

/* the grid canvas, pixel by pixel from the other side: which image (if any) covers (gx, gy) */
static unsigned char *api_ref_grid(const unsigned char *nhwc, int n, int h, int w, int c, int cols, int gap, int *gw, int *gh) {
    int rows = (n + cols - 1) / cols, gx, gy, k; unsigned char *g;
    *gw = cols * (w + gap) + gap; *gh = rows * (h + gap) + gap;
    g = (unsigned char *)malloc((size_t)*gw * *gh * c);
    if (!g) return NULL;
    for (gy = 0; gy < *gh; gy++) for (gx = 0; gx < *gw; gx++) {
        int cx = (gx - gap) / (w + gap), cy = (gy - gap) / (h + gap), ix = (gx - gap) % (w + gap), iy = (gy - gap) % (h + gap), i = cy * cols + cx;
        int inside = gx >= gap && gy >= gap && ix < w && iy < h && i < n;
        for (k = 0; k < c; k++) g[((size_t)gy * *gw + gx) * c + k] = inside ? nhwc[(((size_t)i * h + iy) * w + ix) * c + k] : 0;
    }
    return g;
}
static int api_files_equal(const char *a, const char *b) {
    unsigned char *x = NULL, *y = NULL; size_t nx = 0, ny = 0; ag_error err; int eq;
    if (ag_read_file(a, &x, &nx, &err) || ag_read_file(b, &y, &ny, &err)) { fprintf(stderr, "    %s\n", err.msg); free(x); return 0; }
    eq = nx == ny && memcmp(x, y, nx) == 0;
    if (!eq) fprintf(stderr, "    %s (%zu bytes) and %s (%zu bytes) differ\n", a, nx, b, ny);
    free(x); free(y);
    return eq;
}

static int test_api_png_grid(void) {
    static const struct { int n, h, w, c, cols, gap; } cases[] = {
        { 25, 16, 16, 1, 5, 2 }, { 64, 8, 8, 3, 8, 2 }, { 3, 5, 4, 3, 8, 2 }, { 10, 3, 6, 2, 4, 0 }, { 7, 2, 2, 4, 3, 5 } };
    int k; ag_error err; ag_rng rng;
    TEST_CHECK(system("mkdir -p build/test_api") == 0, "mkdir");
    ag_rng_seed(&rng, 3, 3);
    for (k = 0; k < (int)(sizeof cases / sizeof cases[0]); k++) {
        int n = cases[k].n, h = cases[k].h, w = cases[k].w, c = cases[k].c, gw, gh, rw, rh; size_t i, sz = (size_t)n * h * w * c;
        unsigned char *img = (unsigned char *)malloc(sz), *want, *got; ag_array back;
        for (i = 0; i < sz; i++) img[i] = (unsigned char)(1 + ag_rng_u32(&rng) % 255);   /* never 0: the background shows */
        want = api_ref_grid(img, n, h, w, c, cases[k].cols, cases[k].gap, &rw, &rh);
        got = ag_image_grid(img, n, h, w, c, cases[k].cols, cases[k].gap, &gw, &gh, &err);
        TEST_CHECK(want && got, "grid %d: %s", k, err.msg);
        TEST_CHECK(gw == rw && gh == rh, "grid %d: %d x %d, want %d x %d", k, gw, gh, rw, rh);
        TEST_CHECK(memcmp(got, want, (size_t)gw * gh * c) == 0, "grid %d: pixels differ", k);
        /* the PNG: the same bytes as ag_png_write of the canvas, and it reads back */
        TEST_CHECK(ag_png_write_grid("build/test_api/grid.png", img, n, h, w, c, cases[k].cols, cases[k].gap, &err) == 0, "%s", err.msg);
        TEST_CHECK(ag_png_write("build/test_api/canvas.png", want, rw, rh, c, &err) == 0, "%s", err.msg);
        TEST_CHECK(api_files_equal("build/test_api/grid.png", "build/test_api/canvas.png"), "grid %d: PNG bytes", k);
        TEST_CHECK(ag_png_read("build/test_api/grid.png", c, &back, &err) == 0 && back.nbytes == (size_t)gw * gh * c &&
                   memcmp(back.data, want, back.nbytes) == 0, "grid %d reads back: %s", k, err.msg);
        ag_array_free(&back); AG_FREE(got); free(want); free(img);
    }
    {   /* bad sizes: refused with a message, nothing written */
        unsigned char px[4] = { 1, 2, 3, 4 }; int gw = 5, gh = 5;
        remove("build/test_api/bad.png");
        TEST_CHECK(ag_image_grid(px, 1, 1, 1, 1, 0, 2, &gw, &gh, &err) == NULL && gw == 0 && strstr(err.msg, "columns"), "cols 0: %s", err.msg);
        TEST_CHECK(ag_png_write_grid("build/test_api/bad.png", px, 1, 1, 1, 5, 1, 2, &err) != 0 && strstr(err.msg, "bad.png"), "5 channels: %s", err.msg);
        TEST_CHECK(ag_image_grid(px, 1, 1 << 20, 1 << 20, 1, 1, 2, &gw, &gh, &err) == NULL && strstr(err.msg, "too large"), "huge: %s", err.msg);
        { FILE *f = fopen("build/test_api/bad.png", "rb"); TEST_CHECK(!f, "nothing written"); }
    }
    return 0;
}

/* a shared generator with random weights and running statistics (eval mode then matters) */
static int api_random_generator(ag_generator *G, uint64_t seed) {
    static const int arch[AG_ARCH_MAX] = { 1, 0, 1, 1, 1, 0, 0, 1, 1, 1, 0, 1, 0, 3 };
    ag_rng rng; ag_error err; int i;
    ag_rng_seed(&rng, seed, 1);
    if (ag_generator_init(G, 8, 16, 2, 3, &rng, &err) || ag_generator_set_arch(G, 2, arch, 14, &err)) { fprintf(stderr, "    %s\n", err.msg); return -1; }
    for (i = 0; i < G->params.count; i++) {
        ag_param_entry *e = &G->params.entries[i]; size_t n = strlen(e->name);
        if (n > 12 && !strcmp(e->name + n - 12, "running_mean")) ag_rng_fill_uniform(&rng, e->tensor->data, e->tensor->size, -0.3f, 0.3f);
        if (n > 11 && !strcmp(e->name + n - 11, "running_var")) ag_rng_fill_uniform(&rng, e->tensor->data, e->tensor->size, 0.5f, 1.5f);
    }
    return 0;
}

static int test_api_generator_generate(void) {
    ag_generator G; ag_ctx *ctx = ag_ctx_create(4, NULL); ag_rng rng, copy; float z[6 * 16], *got, *want; ag_tensor *zt, *y; int shape[2] = { 6, 16 }; size_t n;
    TEST_CHECK(ctx && api_random_generator(&G, 11) == 0, "generator");
    ag_ctx_set_threads(ctx, 2);
    ag_rng_seed(&rng, 8, 8);
    ag_rng_fill_normal(&rng, z, sizeof z / sizeof z[0], 0.0f, 1.0f);
    /* by hand: eval mode, no graph */
    G.training = 0; ag_ctx_set_grad_enabled(ctx, 0);
    ag_ctx_reset(ctx);
    zt = ag_tensor_from(ctx, 2, shape, z);
    y = ag_generator_forward(ctx, &G, zt);
    TEST_CHECK(y && y->shape[1] == 3 && y->shape[2] == 16, "forward: %s", ag_ctx_error(ctx));
    n = y->size;
    want = (float *)malloc(n * sizeof(float)); got = (float *)malloc(n * sizeof(float));
    memcpy(want, y->data, n * sizeof(float));
    /* the call, from train mode with gradients on: the same bits, both modes restored */
    G.training = 1; ag_ctx_set_grad_enabled(ctx, 1);
    TEST_CHECK(ag_generator_generate(ctx, &G, z, 6, got) == 0, "%s", ag_ctx_error(ctx));
    TEST_CHECK(memcmp(got, want, n * sizeof(float)) == 0, "generate differs from the eval-mode forward");
    TEST_CHECK(G.training == 1 && ag_ctx_grad_enabled(ctx) == 1, "modes restored (training %d, grad %d)", G.training, ag_ctx_grad_enabled(ctx));
    ag_ctx_set_grad_enabled(ctx, 0);
    TEST_CHECK(ag_generator_generate(ctx, &G, z, 6, got) == 0 && ag_ctx_grad_enabled(ctx) == 0, "grad off stays off");
    ag_ctx_set_grad_enabled(ctx, 1);
    /* train mode really differs (batch statistics): the eval switch is what made them equal */
    TEST_CHECK(ag_generator_set_training(&G, 1) == 1 && ag_generator_set_training(&G, 0) == 1 && G.training == 0 &&
               ag_generator_set_training(&G, 1) == 0, "set_training returns the previous mode");
    ag_ctx_reset(ctx);
    zt = ag_tensor_from(ctx, 2, shape, z);
    y = ag_generator_forward(ctx, &G, zt);
    TEST_CHECK(y && memcmp(y->data, want, n * sizeof(float)) != 0, "train-mode output equals eval's: the test would prove nothing");
    /* z NULL: drawn from the context's PRNG, as n x latent normals */
    copy = *ag_ctx_rng(ctx);
    ag_rng_fill_normal(&copy, z, sizeof z / sizeof z[0], 0.0f, 1.0f);
    TEST_CHECK(ag_generator_generate(ctx, &G, NULL, 6, got) == 0, "%s", ag_ctx_error(ctx));
    TEST_CHECK(ag_ctx_rng(ctx)->state == copy.state, "the context's PRNG advanced by 6 x 16 normals");
    TEST_CHECK(ag_generator_generate(ctx, &G, z, 6, want) == 0 && memcmp(got, want, n * sizeof(float)) == 0, "z from the PRNG");
    /* errors come back in the context */
    TEST_CHECK(ag_generator_generate(ctx, &G, z, 0, got) == -1 && strstr(ag_ctx_error(ctx), "generate"), "n 0: '%s'", ag_ctx_error(ctx));
    ag_ctx_clear_error(ctx);
    free(got); free(want); ag_generator_free(&G); ag_ctx_free(ctx);
    return 0;
}

static int api_params_equal(const ag_generator *a, const ag_generator *b) {
    int i;
    if (a->params.count != b->params.count) return 0;
    for (i = 0; i < a->params.count; i++) {
        const ag_param_entry *x = &a->params.entries[i], *y = &b->params.entries[i];
        if (strcmp(x->name, y->name) || x->kind != y->kind) return 0;
        if (x->kind == AG_ENTRY_COUNTER) { if (*x->counter != *y->counter) return 0; }
        else if (x->tensor->size != y->tensor->size || memcmp(x->tensor->data, y->tensor->data, x->tensor->size * 4)) return 0;
    }
    return 1;
}
static int api_same_images(ag_generator *a, ag_generator *b) {
    ag_ctx *ctx = ag_ctx_create(1, NULL); ag_rng rng; int R = ag_stage_resolution(a->stage, a->bottom_width), ok;
    size_t n = (size_t)4 * a->out_channels * R * R; float *z = (float *)malloc((size_t)4 * a->latent_dim * sizeof(float));
    float *x = (float *)malloc(n * sizeof(float)), *y = (float *)malloc(n * sizeof(float));
    ag_rng_seed(&rng, 2, 2);
    ag_rng_fill_normal(&rng, z, (size_t)4 * a->latent_dim, 0.0f, 1.0f);
    ok = ctx && z && x && y && ag_generator_generate(ctx, a, z, 4, x) == 0 && ag_generator_generate(ctx, b, z, 4, y) == 0 &&
         memcmp(x, y, n * sizeof(float)) == 0;
    free(z); free(x); free(y); ag_ctx_free(ctx);
    return ok;
}

static int test_api_generator_from_checkpoint(void) {
    ag_generator G, M, H, Dg; ag_discriminator D; ag_gan gan; ag_ema ema; ag_ctx *ctx = ag_ctx_create(6, NULL); ag_error err;
    ag_generator_spec spec; char key[64], key2[64]; static float real[4 * 3 * 16 * 16]; ag_rng rng; int i, k;
    const char *ckpt = "build/test_api/gan.safetensors", *train_ckpt = "build/test_api/train.safetensors", *ema_file = "build/test_api/ema.safetensors";
    TEST_CHECK(system("mkdir -p build/test_api") == 0, "mkdir");
    /* a GAN trained a few steps with an EMA, saved in both layouts and as an EMA generator */
    TEST_CHECK(ctx && api_random_generator(&G, 21) == 0, "generator");
    ag_rng_seed(&rng, 21, 2);
    TEST_CHECK(ag_discriminator_init(&D, 8, 3, 1, &rng, &err) == 0 && ag_gan_init(&gan, &G, &D, 4, 4, 1, 2e-3f, 2e-3f, 0.0f, 0.9f, &err) == 0 &&
               ag_ema_init(&ema, &G.params, 0.5f, &err) == 0, "%s", err.msg);
    for (i = 0; i < 3; i++) {
        ag_rng_fill_uniform(&rng, real, sizeof real / sizeof real[0], -1.0f, 1.0f);
        TEST_CHECK(ag_gan_step(ctx, &gan, real, NULL) == 0, "%s", ag_ctx_error(ctx));
        ag_ema_update(&ema);
    }
    TEST_CHECK(ag_gan_save(ckpt, &gan, &ema, ctx, NULL, &err) == 0 && ag_gan_save_train(train_ckpt, &gan, &ema, ctx, NULL, &err) == 0 &&
               ag_generator_save_ema(ema_file, &G, &ema, NULL, &err) == 0, "%s", err.msg);
    for (k = 0; k < 3; k++) {
        const char *path = k == 0 ? ckpt : k == 1 ? train_ckpt : ema_file; int use_ema;
        for (use_ema = 1; use_ema >= 0; use_ema--) {
            /* the manual way: the spec, the model, ag_generator_load (EMA first) */
            TEST_CHECK(ag_generator_spec_read(path, &spec, &err) == 0 && ag_generator_init_spec(&M, &spec, NULL, &err) == 0 &&
                       ag_generator_load(&M, path, key, sizeof key, &err) == 0, "%s: %s", path, err.msg);
            memset(&H, 0x5a, sizeof H);   /* whatever g held is ignored */
            TEST_CHECK(ag_generator_create_from_checkpoint(&H, path, NULL, use_ema, key2, sizeof key2, &err) == 0, "%s: %s", path, err.msg);
            TEST_CHECK(H.stage == 2 && H.gf == 8 && H.latent_dim == 16 && H.bottom_width == 2 && H.out_channels == 3 && !H.derived &&
                       !memcmp(H.arch, G.arch, sizeof H.arch), "%s: the model its metadata names", path);
            if (use_ema || k == 2) {
                TEST_CHECK(!strcmp(key, key2), "%s: loaded '%s', ag_generator_load '%s'", path, key2, key);
                TEST_CHECK(api_params_equal(&H, &M), "%s: weights differ from spec + init + ag_generator_load", path);
                TEST_CHECK(api_same_images(&H, &M), "%s: images differ", path);
            } else {   /* the live generator: G as it was trained */
                TEST_CHECK(!strcmp(key2, k == 0 ? "G" : "gen_state_dict"), "%s: live weights from '%s'", path, key2);
                TEST_CHECK(api_params_equal(&H, &G), "%s: live weights differ from the trained G", path);
                TEST_CHECK(!api_params_equal(&H, &M), "%s: EMA and live equal: the test would prove nothing", path);
                TEST_CHECK(api_same_images(&H, &G), "%s: images differ from the trained G", path);
            }
            ag_generator_free(&H); ag_generator_free(&M);
        }
    }
    /* the released .pth forms (zip, legacy; avg/gen/bare), with a spec: as init_derived + load */
    for (k = 0; derived_cases[k].name; k++) {
        const derived_case *dc = &derived_cases[k]; golden g; char name[96], pth[600]; int use_ema;
        snprintf(name, sizeof name, "derived_%s", dc->name);
        TEST_CHECK(golden_open(&g, name) == 0, "golden %s", name);
        snprintf(pth, sizeof pth, "%s/golden/data/%s.pth", TEST_DATA_DIR, name);
        memset(&spec, 0, sizeof spec);
        snprintf(spec.gen_model, sizeof spec.gen_model, "%s", dc->model);
        TEST_CHECK(ag_derived_arch(dc->model, spec.arch) == 0, "arch");
        spec.derived = 1; spec.stage = 2; spec.arch_len = 14; spec.gf = golden_int(&g, "gf", 0); spec.latent_dim = golden_int(&g, "latent", 0);
        spec.bottom_width = dc->bw; spec.channels = 3; spec.d_spectral_norm = -1;
        TEST_CHECK(ag_generator_init_derived(&Dg, spec.arch, spec.gf, spec.latent_dim, dc->bw, 3, NULL, &err) == 0 &&
                   ag_generator_load(&Dg, pth, key, sizeof key, &err) == 0, "%s: %s", pth, err.msg);
        TEST_CHECK(ag_generator_create_from_checkpoint(&H, pth, NULL, 1, NULL, 0, &err) != 0 && strstr(err.msg, "--gen_model"),
                   "a .pth names no model: '%s'", err.msg);
        for (use_ema = 1; use_ema >= 0; use_ema--) {
            int rc = ag_generator_create_from_checkpoint(&H, pth, &spec, use_ema, key2, sizeof key2, &err);
            if (!use_ema && !strcmp(dc->key, "avg_gen_state_dict")) {   /* gen_state_dict too, or a clear refusal */
                ag_array_list l; int live;
                TEST_CHECK(ag_pth_read(pth, &l, &err) == 0, "%s", err.msg);
                live = ag_array_list_find(&l, "gen_state_dict.l1.weight") != NULL;
                ag_array_list_free(&l);
                if (live) { TEST_CHECK(rc == 0 && !strcmp(key2, "gen_state_dict"), "%s: live weights: %s", pth, rc ? err.msg : key2); ag_generator_free(&H); }
                else TEST_CHECK(rc != 0 && strstr(err.msg, "only the EMA"), "%s without live weights: '%s'", pth, err.msg);
                continue;
            }
            TEST_CHECK(rc == 0, "%s: %s", pth, err.msg);
            TEST_CHECK(!strcmp(key2, dc->key), "%s: '%s', want '%s'", pth, key2, dc->key);
            TEST_CHECK(api_params_equal(&H, &Dg) && api_same_images(&H, &Dg), "%s: differs from init_derived + ag_generator_load", pth);
            ag_generator_free(&H);
        }
        ag_generator_free(&Dg); golden_close(&g);
    }
    /* failures leave g empty and name the file */
    TEST_CHECK(ag_generator_create_from_checkpoint(&H, "build/test_api/missing.safetensors", NULL, 1, NULL, 0, &err) != 0 &&
               strstr(err.msg, "missing.safetensors") && H.params.count == 0, "missing file: %s", err.msg);
    spec.gf = 12;   /* the wrong width for the last golden: a shape mismatch */
    TEST_CHECK(ag_generator_create_from_checkpoint(&H, "tests/golden/data/derived_c_bw6_legacy_avg.pth", &spec, 1, NULL, 0, &err) != 0 &&
               H.params.count == 0 && H.params.entries == NULL, "mismatch: %s", err.msg);
    ag_ema_free(&ema); ag_gan_free(&gan); ag_discriminator_free(&D); ag_generator_free(&G); ag_ctx_free(ctx);
    return 0;
}

/* ag_gan_step_n: the loader's partial last batch, as train.c's d_step_n + g_step */
static int test_api_gan_step_n(void) {
    ag_generator G[3]; ag_discriminator D[3]; ag_gan gan[3]; ag_ctx *ctx[3]; ag_error err; ag_rng rng; int i, k, n;
    static float real[4 * 3 * 16 * 16];
    for (k = 0; k < 3; k++) {
        ctx[k] = ag_ctx_create(31, NULL);
        TEST_CHECK(ctx[k] && api_random_generator(&G[k], 31) == 0, "generator");
        ag_rng_seed(&rng, 31, 2);
        TEST_CHECK(ag_discriminator_init(&D[k], 8, 3, 1, &rng, &err) == 0 &&
                   ag_gan_init(&gan[k], &G[k], &D[k], 4, 3, 2, 2e-3f, 2e-3f, 0.0f, 0.9f, &err) == 0, "%s", err.msg);
        ag_ctx_set_threads(ctx[k], 1);
    }
    ag_rng_seed(&rng, 77, 1);
    for (i = 0; i < 5; i++) {
        ag_gan_losses l0, l1; float d2 = 0, g2 = 0; int stepped;
        n = i % 2 ? 3 : 1;   /* partial batches of 3 and 1 images (dis_bs 4) */
        ag_rng_fill_uniform(&rng, real, sizeof real / sizeof real[0], -1.0f, 1.0f);
        TEST_CHECK(ag_gan_step_n(ctx[0], &gan[0], real, n, &l0) == 0, "%s", ag_ctx_error(ctx[0]));
        stepped = gan[1].iteration % gan[1].n_critic == 0;
        TEST_CHECK(ag_gan_d_step_n(ctx[1], &gan[1], real, n, NULL, &d2) == 0, "%s", ag_ctx_error(ctx[1]));
        if (stepped) TEST_CHECK(ag_gan_g_step(ctx[1], &gan[1], NULL, &g2) == 0, "%s", ag_ctx_error(ctx[1]));
        TEST_CHECK(l0.d_loss == d2 && l0.g_stepped == stepped && (!stepped || l0.g_loss == g2), "step %d: losses %g %g vs %g %g", i,
                   (double)l0.d_loss, (double)l0.g_loss, (double)d2, (double)g2);
        if (!stepped) TEST_CHECK(gan[0].last_fake->shape[0] == n, "step %d: %d fakes for %d real images", i, gan[0].last_fake->shape[0], n);
        /* n = dis_bs is ag_gan_step */
        TEST_CHECK(ag_gan_step(ctx[2], &gan[2], real, &l1) == 0 && (l1.g_stepped || gan[2].last_fake->shape[0] == 4), "full batch: %s", ag_ctx_error(ctx[2]));
    }
    TEST_CHECK(api_params_equal(&G[0], &G[1]) && gan[0].iteration == gan[1].iteration, "G after 5 partial steps differs");
    TEST_CHECK(memcmp(D[0].l5.weight_orig->data, D[1].l5.weight_orig->data, D[0].l5.weight_orig->size * 4) == 0, "D differs");
    TEST_CHECK(ag_gan_step_n(ctx[0], &gan[0], real, 4, NULL) == 0 && ag_gan_step(ctx[1], &gan[1], real, NULL) == 0 && api_params_equal(&G[0], &G[1]),
               "step_n with dis_bs is ag_gan_step");
    TEST_CHECK(ag_gan_step_n(ctx[0], &gan[0], real, 0, NULL) == -1 && strstr(ag_ctx_error(ctx[0]), "0 real images"), "n 0: %s", ag_ctx_error(ctx[0]));
    for (k = 0; k < 3; k++) { ag_gan_free(&gan[k]); ag_discriminator_free(&D[k]); ag_generator_free(&G[k]); ag_ctx_free(ctx[k]); }
    return 0;
}

#if defined(__unix__) || defined(__APPLE__)
/* build/train's grids, byte for byte, from the new calls: the checkpoint's live and EMA
   generators on train.c's 25 fixed z (PCG32 stream 7 of the seed), truncated to uint8, 5 x 5
   with 2-pixel gaps. build/dataset's --grid likewise from the data set. */
static int test_api_grids_match_programs(void) {
    char out[16384]; int rc, use_ema; ag_error err; ag_rng zr; float z[25 * 16]; ag_dataset ds;
    TEST_CHECK(system("rm -rf build/test_api/grids && mkdir -p build/test_api") == 0, "mkdir");
    rc = test_run_command("OMP_WAIT_POLICY=passive ./build/train --gen_model autogan_cifar10_a --gf_dim 8 --df_dim 8 --latent_dim 16 --bottom_width 2 "
                          "--dataset mnist --data_path tests/data/datasets/mnist --gen_bs 4 --dis_bs 4 --n_critic 1 --max_epoch 1 "
                          "--random_seed 7 --threads 1 --log_dir build/test_api --exp_name grids", out, sizeof out);
    TEST_CHECK(rc == 0, "build/train: exit %d\n%s", rc, out);
    ag_rng_seed(&zr, 7, 7);
    ag_rng_fill_normal(&zr, z, sizeof z / sizeof z[0], 0.0f, 1.0f);
    for (use_ema = 0; use_ema < 2; use_ema++) {
        ag_generator G; ag_ctx *ctx = ag_ctx_create(7, NULL); float img[25 * 16 * 16]; unsigned char u8[25 * 16 * 16]; char key[64];
        const char *want = use_ema ? "build/test_api/grids/Samples/grid_ema.png" : "build/test_api/grids/Samples/grid_live.png";
        TEST_CHECK(ctx, "ctx");
        ag_ctx_set_threads(ctx, 1);
        TEST_CHECK(ag_generator_create_from_checkpoint(&G, "build/test_api/grids/Model/checkpoint.safetensors", NULL, use_ema, key, sizeof key, &err) == 0, "%s", err.msg);
        TEST_CHECK(!strcmp(key, use_ema ? "avg_gen_state_dict" : "gen_state_dict") && G.out_channels == 1, "loaded '%s'", key);
        TEST_CHECK(ag_generator_generate(ctx, &G, z, 25, img) == 0, "%s", ag_ctx_error(ctx));
        TEST_CHECK(ag_images_to_u8(img, 25, 1, 16, 16, 1, AG_U8_TRUNCATE, u8) == 0, "to u8");
        TEST_CHECK(ag_png_write_grid("build/test_api/grid_api.png", u8, 25, 16, 16, 1, 5, 2, &err) == 0, "%s", err.msg);
        TEST_CHECK(api_files_equal("build/test_api/grid_api.png", want), "%s grid differs from build/train's %s", use_ema ? "EMA" : "live", want);
        ag_generator_free(&G); ag_ctx_free(ctx);
    }
    rc = test_run_command("OMP_WAIT_POLICY=passive ./build/dataset --dataset mnist --data_path tests/data/datasets/mnist --split test "
                          "--grid build/test_api/ds_grid.png --threads 1", out, sizeof out);
    TEST_CHECK(rc == 0, "build/dataset: exit %d\n%s", rc, out);
    memset(&ds, 0, sizeof ds);
    TEST_CHECK(ag_dataset_load(&ds, "mnist", "tests/data/datasets/mnist", "test", 0, &err) == 0, "%s", err.msg);
    TEST_CHECK(ag_png_write_grid("build/test_api/ds_api.png", ds.pixels, ds.count < 64 ? ds.count : 64, ds.height, ds.width, ds.channels, 8, 2, &err) == 0, "%s", err.msg);
    ag_dataset_free(&ds);
    TEST_CHECK(api_files_equal("build/test_api/ds_api.png", "build/test_api/ds_grid.png"), "build/dataset's --grid");
    return 0;
}

/* the project's files from any working directory: build/dataset run from a temporary
   directory finds the shipped Fashion-MNIST test split (examples/data), as does a copy of the
   program outside the repository (the path make compiled in) */
static int test_api_find_resource(void) {
    char root[2048], tmp[64] = "/tmp/ag_api_XXXXXX", cmd[8192], out[8192], got[4096]; int rc;
    TEST_CHECK(getcwd(root, sizeof root) != NULL, "getcwd");
    /* in-process: as given when it exists; a missing one gives -1 and the name back */
    TEST_CHECK(ag_find_resource("tests/test.h", got, sizeof got) == 0 && !strcmp(got, "tests/test.h"), "as given: %s", got);
    TEST_CHECK(ag_find_resource("no/such/file.bin", got, sizeof got) == -1 && !strcmp(got, "no/such/file.bin"), "missing: %s", got);
    TEST_CHECK(ag_find_resource("/no/such/abs", got, sizeof got) == -1, "absolute, missing");
    TEST_CHECK(ag_find_resource("tests/test.h", got, 5) == -1, "does not fit");
    TEST_CHECK(ag_find_resource(AG_WEIGHTS_DIR "/README.md", got, sizeof got) == 0, "weights/: %s", got);
    TEST_CHECK(mkdtemp(tmp) != NULL, "mkdtemp");
    snprintf(cmd, sizeof cmd, "cd %s && OMP_WAIT_POLICY=passive '%s/build/dataset' --dataset fashion-mnist --split test --threads 1", tmp, root);
    rc = test_run_command(cmd, out, sizeof out);
    TEST_CHECK(rc == 0 && strstr(out, "10000 images of 28 x 28 x 1"), "build/dataset from %s: exit %d\n%s", tmp, rc, out);
    snprintf(cmd, sizeof cmd, "mkdir -p %s/elsewhere && cp '%s/build/dataset' %s/elsewhere/ && cd %s && OMP_WAIT_POLICY=passive ./elsewhere/dataset "
             "--dataset fashion-mnist --split test --threads 1", tmp, root, tmp, tmp);
    rc = test_run_command(cmd, out, sizeof out);
    TEST_CHECK(rc == 0 && strstr(out, "10000 images"), "a copy outside the repository: exit %d\n%s", rc, out);
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    TEST_CHECK(system(cmd) == 0, "rm");
    return 0;
}

/* the design card's one-line build, exactly (glibc 2.36 needs -lm), from the repository root
   into a temporary directory; the program answers --help. And a program built so (no
   AG_PROJECT_DIR) finds examples/data next to its executable (dir/.. here). */
static int test_api_one_line_build(void) {
    char tmp[64] = "/tmp/ag_build_XXXXXX", cmd[8192], out[16384], root[2048]; int rc; FILE *f;
    if (system("command -v cc >/dev/null 2>&1") != 0) { test_skip("no cc on this machine"); return 0; }
    TEST_CHECK(getcwd(root, sizeof root) != NULL && mkdtemp(tmp) != NULL, "temporary directory");
    snprintf(cmd, sizeof cmd, "cc -O3 -fopenmp examples/search.c -lm -o %s/search", tmp);
    rc = test_run_command(cmd, out, sizeof out);
    TEST_CHECK(rc == 0, "%s: exit %d\n%s", cmd, rc, out);
    snprintf(cmd, sizeof cmd, "OMP_WAIT_POLICY=passive %s/search --help", tmp);
    rc = test_run_command(cmd, out, sizeof out);
    TEST_CHECK(rc == 0 && strstr(out, "search"), "%s: exit %d\n%s", cmd, rc, out);
    /* next to the executable: tmp/bin/find with tmp/examples/data a link to the shipped one */
    snprintf(cmd, sizeof cmd, "%s/find.c", tmp);
    f = fopen(cmd, "w");
    TEST_CHECK(f != NULL, "%s", cmd);
    fprintf(f, "#define AUTOGAN_IMPLEMENTATION\n#include \"%s/autogan.h\"\n#include <stdio.h>\n"
               "int main(void) { char p[4096]; int r = ag_find_resource(AG_DATA_DIR \"/t10k-images-idx3-ubyte.gz\", p, sizeof p); printf(\"%%d %%s\\n\", r, p); return r ? 1 : 0; }\n", root);
    fclose(f);
    snprintf(cmd, sizeof cmd, "mkdir -p %s/bin %s/examples && ln -s '%s/examples/data' %s/examples/data && cc -O0 %s/find.c -lm -o %s/bin/find && "
             "cd / && %s/bin/find", tmp, tmp, root, tmp, tmp, tmp, tmp);
    rc = test_run_command(cmd, out, sizeof out);
    snprintf(cmd, sizeof cmd, "0 %s/examples/data/t10k-images-idx3-ubyte.gz", tmp);
    TEST_CHECK(rc == 0 && strstr(out, cmd), "found next to the executable: exit %d\n%s", rc, out);
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    TEST_CHECK(system(cmd) == 0, "rm");
    return 0;
}
#endif

static const test_case tests_api[] = {
    { "api/images_to_u8", test_api_images_to_u8 },
    { "api/png_grid", test_api_png_grid },
    { "api/generator_generate", test_api_generator_generate },
    { "api/generator_from_checkpoint", test_api_generator_from_checkpoint },
    { "api/gan_step_n", test_api_gan_step_n },
#if defined(__unix__) || defined(__APPLE__)
    { "api/grids_match_programs", test_api_grids_match_programs },
    { "api/find_resource", test_api_find_resource },
    { "api/one_line_build", test_api_one_line_build },
#endif
    { NULL, NULL } };
