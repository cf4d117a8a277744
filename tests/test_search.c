/* test_search.c - the controller against PyTorch goldens (logits, log-probabilities,
   entropies, final state, REINFORCE loss and every parameter gradient at stages 0, 1, 2),
   sampling with kept prefixes, the loss windows, the search checkpoint, and build/search
   end to end (three stages with growth, a forced dynamic reset, SIGKILL-and-resume). */

static const float *ts_find(const ag_array_list *l, const char *name, size_t n) {
    const ag_array *a = ag_array_list_find(l, name);
    if (!a || a->dtype != AG_DTYPE_F32 || a->nbytes != n * 4) {
        fprintf(stderr, "    golden tensor %s missing or not %zu floats\n", name, n);
        return NULL;
    }
    return (const float *)a->data;
}

static int test_controller_golden(void) {
    int stage;
    for (stage = 0; stage < 3; stage++) {
        char path[128], key[128]; ag_array_list l; ag_error err; ag_controller c; ag_ctx *ctx;
        ag_controller_pass pass; const ag_array *aa; int B, T, H = 100, i, t, *actions;
        float *lp, *ent, *adv; const float *want; ag_tensor *loss;
        snprintf(path, sizeof path, "tests/golden/data/controller_s%d.safetensors", stage);
        TEST_CHECK(ag_safetensors_read(path, &l, NULL, &err) == 0, "%s", err.msg);
        TEST_CHECK(ag_controller_init(&c, stage, H, NULL, &err) == 0, "%s", err.msg);
        TEST_CHECK(ag_params_load_arrays(&c.params, &l, "param.", 1, path, &err) == 0, "%s", err.msg);
        aa = ag_array_list_find(&l, "actions");
        TEST_CHECK(aa && aa->dtype == AG_DTYPE_I64 && aa->ndim == 2, "actions");
        B = (int)aa->shape[0]; T = (int)aa->shape[1];
        TEST_CHECK(T == c.num_tokens, "stage %d: %d tokens, controller has %d", stage, T, c.num_tokens);
        actions = (int *)malloc(sizeof(int) * B * T); lp = (float *)malloc(4 * B * T); ent = (float *)malloc(4 * B * T);
        for (i = 0; i < B * T; i++) actions[i] = (int)((const int64_t *)aa->data)[i];
        adv = (float *)ts_find(&l, "advantage", (size_t)B);
        TEST_CHECK(adv, "advantage");
        ctx = ag_ctx_create(1, NULL);
        ag_params_zero_grad(&c.params);
        TEST_CHECK(ag_controller_forward(ctx, &c, B, ts_find(&l, "h0", (size_t)B * H), ts_find(&l, "c0", (size_t)B * H),
                                         NULL, actions, lp, ent, &pass) == 0, "forward: %s", ag_ctx_error(ctx));
        for (t = 0; t < T; t++) {
            size_t n = (size_t)B * c.choices[t];
            snprintf(key, sizeof key, "logits.%d", t);
            TEST_CHECK((want = ts_find(&l, key, n)), "%s", key);
            TEST_CLOSE(key, pass.logits[t]->data, want, n, 1e-5, 1e-4);
            snprintf(key, sizeof key, "log_probs.%d", t);
            TEST_CHECK((want = ts_find(&l, key, n)), "%s", key);
            TEST_CLOSE(key, pass.log_probs[t]->data, want, n, 1e-5, 1e-4);
        }
        TEST_CHECK((want = ts_find(&l, "selected_log_probs", (size_t)B * T)), "sel");
        TEST_CLOSE("selected log-probs", lp, want, (size_t)B * T, 1e-5, 1e-4);
        TEST_CHECK((want = ts_find(&l, "entropies", (size_t)B * T)), "ent");
        TEST_CLOSE("entropies", ent, want, (size_t)B * T, 1e-5, 1e-4);
        TEST_CHECK((want = ts_find(&l, "h", (size_t)B * H)), "h");
        TEST_CLOSE("final h", pass.h->data, want, (size_t)B * H, 1e-5, 1e-4);
        TEST_CHECK((want = ts_find(&l, "c", (size_t)B * H)), "c");
        TEST_CLOSE("final c", pass.c->data, want, (size_t)B * H, 1e-5, 1e-4);
        loss = ag_controller_loss(ctx, &pass, actions, adv, 1e-3f);
        TEST_CHECK(loss, "loss: %s", ag_ctx_error(ctx));
        TEST_CHECK((want = ts_find(&l, "loss", 1)), "loss");
        TEST_CLOSE("REINFORCE loss", loss->data, want, 1, 1e-5, 1e-4);
        TEST_CHECK(ag_backward(ctx, loss) == 0, "backward: %s", ag_ctx_error(ctx));
        for (i = 0; i < c.params.count; i++) {
            ag_tensor *p = c.params.entries[i].tensor;
            snprintf(key, sizeof key, "grad.%s", c.params.entries[i].name);
            TEST_CHECK((want = ts_find(&l, key, p->size)), "%s", key);
            TEST_CLOSE(key, p->grad, want, p->size, 2e-6, 1e-4);
        }
        free(actions); free(lp); free(ent);
        ag_ctx_free(ctx); ag_controller_free(&c); ag_array_list_free(&l);
    }
    return 0;
}

/* PyTorch's default initialisers: ranges and the embedding's N(0, 1) */
static int test_controller_init_and_sampling(void) {
    ag_controller c; ag_rng rng, r2; ag_error err; ag_ctx *ctx = ag_ctx_create(3, NULL); size_t i;
    int archs[6 * AG_ARCH_MAX], archs2[6 * AG_ARCH_MAX], pidx[6], counts[3] = { 0, 0, 0 }, b, t, acts[5];
    float lp[30], ent[30], h[600], cc[600], lp2[30], hk[300], ck[300]; double m = 0, v = 0;
    int kept_archs[3 * AG_ARCH_MAX]; ag_kept_archs kept; ag_controller_pass pass;
    memset(&kept, 0, sizeof kept);
    ag_rng_seed(&rng, 5, 1);
    TEST_CHECK(ag_controller_init(&c, 2, 100, &rng, &err) == 0, "%s", err.msg);
    TEST_CHECK(c.params.count == 5 + 2 * 5 && c.encoder->shape[0] == 2 + 3 + 3 + 2 + 4, "stage-2 controller layout");
    TEST_CHECK(!strcmp(c.params.entries[0].name, "lstm.weight_ih") && !strcmp(c.params.entries[4].name, "encoder.weight") &&
               !strcmp(c.params.entries[14].name, "decoders.4.bias"), "state_dict names");
    for (i = 0; i < c.w_hh->size; i++) TEST_CHECK(fabsf(c.w_hh->data[i]) <= 0.1f, "LSTM weight within 1/sqrt(100)");
    for (i = 0; i < c.encoder->size; i++) { m += c.encoder->data[i]; v += c.encoder->data[i] * c.encoder->data[i]; }
    m /= c.encoder->size; v = v / c.encoder->size - m * m;
    TEST_CHECK(fabs(m) < 0.1 && fabs(v - 1.0) < 0.15, "embedding N(0,1): mean %g var %g", m, v);
    /* sampling from kept prefixes: the prefix tokens are copied, the index is in range,
       the same PRNG state gives the same draws, and a teacher-forced pass from the kept
       (h, c) gives the same log-probs */
    for (b = 0; b < 3; b++) for (t = 0; t < AG_ARCH_MAX; t++) kept_archs[b * AG_ARCH_MAX + t] = (b + t) % 2;
    ag_rng_fill_normal(&rng, hk, 300, 0, 0.5f); ag_rng_fill_normal(&rng, ck, 300, 0, 0.5f);
    TEST_CHECK(ag_kept_archs_set(&kept, 3, 9, 100, kept_archs, AG_ARCH_MAX, hk, ck, &err) == 0, "%s", err.msg);
    r2 = rng;
    TEST_CHECK(ag_controller_sample(ctx, &c, &rng, &kept, 6, archs, pidx, lp, ent, h, cc) == 0, "%s", ag_ctx_error(ctx));
    TEST_CHECK(ag_controller_sample(ctx, &c, &r2, &kept, 6, archs2, NULL, NULL, NULL, NULL, NULL) == 0, "%s", ag_ctx_error(ctx));
    TEST_CHECK(!memcmp(archs, archs2, sizeof archs), "same PRNG state, same architectures");
    for (b = 0; b < 6; b++) {
        TEST_CHECK(pidx[b] >= 0 && pidx[b] < 3, "prefix index %d", pidx[b]);
        counts[pidx[b]]++;
        TEST_CHECK(!memcmp(archs + b * AG_ARCH_MAX, kept_archs + pidx[b] * AG_ARCH_MAX, 9 * sizeof(int)), "prefix copied");
        for (t = 0; t < 5; t++) TEST_CHECK(archs[b * AG_ARCH_MAX + 9 + t] >= 0 && archs[b * AG_ARCH_MAX + 9 + t] < c.choices[t], "token in range");
        for (t = 0; t < 5; t++) acts[t] = archs[b * AG_ARCH_MAX + 9 + t];
        ag_ctx_reset(ctx);
        TEST_CHECK(ag_controller_forward(ctx, &c, 1, hk + pidx[b] * 100, ck + pidx[b] * 100, NULL, acts, lp2, NULL, &pass) == 0, "tf");
        TEST_CLOSE("sampled vs teacher-forced log-probs", lp2, lp + b * 5, 5, 0, 0);
        TEST_CLOSE("final h of the sample", pass.h->data, h + b * 100, 100, 0, 0);
    }
    /* a kept set that does not lead to this stage is refused */
    TEST_CHECK(ag_kept_archs_set(&kept, 3, 4, 100, kept_archs, AG_ARCH_MAX, hk, ck, &err) == 0, "%s", err.msg);
    TEST_CHECK(ag_controller_sample(ctx, &c, &rng, &kept, 2, archs, NULL, NULL, NULL, NULL, NULL) != 0 &&
               strstr(ag_ctx_error(ctx), "kept"), "wrong prefix length refused: %s", ag_ctx_error(ctx));
    ag_ctx_clear_error(ctx);
    ag_kept_archs_free(&kept); ag_controller_free(&c); ag_ctx_free(ctx);
    return 0;
}

static int test_loss_window(void) {
    ag_loss_window w; ag_error err; int i; double m, v;
    TEST_CHECK(ag_loss_window_init(&w, 4, &err) == 0, "%s", err.msg);
    TEST_CHECK(ag_loss_window_var(&w) == 0.0 && !ag_loss_window_full(&w), "empty");
    for (i = 1; i <= 6; i++) ag_loss_window_push(&w, (float)i);   /* keeps 3 4 5 6 */
    m = 4.5; v = ((1.5 * 1.5) * 2 + (0.5 * 0.5) * 2) / 4;
    TEST_CHECK(ag_loss_window_full(&w) && fabs(ag_loss_window_var(&w) - v) < 1e-12, "population variance %g want %g (mean %g)", ag_loss_window_var(&w), v, m);
    ag_loss_window_clear(&w);
    TEST_CHECK(w.count == 0 && ag_loss_window_var(&w) == 0.0, "cleared");
    ag_loss_window_free(&w);
    return 0;
}

/* ag_search_save / ag_search_load: exact round trip of everything; a damaged file changes nothing */
static uint64_t ts_hash(const void *p, size_t n, uint64_t h) {
    const unsigned char *b = (const unsigned char *)p; size_t i;
    for (i = 0; i < n; i++) { h ^= b[i]; h *= 1099511628211ull; }
    return h;
}
static uint64_t ts_state_hash(const ag_search_state *s, const ag_gan *gan, const ag_ctx *ctx) {
    uint64_t h = 1469598103934665603ull; int i;
    const ag_params *sets[3]; sets[0] = &gan->G->params; sets[1] = &gan->D->params; sets[2] = &s->ctrl.params;
    for (i = 0; i < 3; i++) { int j; for (j = 0; j < sets[i]->count; j++) {
        const ag_param_entry *e = &sets[i]->entries[j];
        if (e->tensor) h = ts_hash(e->tensor->data, e->tensor->size * 4, h); else h = ts_hash(e->counter, 8, h);
    } }
    for (i = 0; i < s->ctrl.params.count; i++) if (s->ctrl_opt.m[i]) {
        h = ts_hash(s->ctrl_opt.m[i], s->ctrl.params.entries[i].tensor->size * 4, h);
        h = ts_hash(s->ctrl_opt.v[i], s->ctrl.params.entries[i].tensor->size * 4, h);
    }
    for (i = 0; i < gan->G->params.count; i++) if (gan->opt_g.m[i]) h = ts_hash(gan->opt_g.v[i], gan->G->params.entries[i].tensor->size * 4, h);
    h = ts_hash(&s->stage, sizeof s->stage, h); h = ts_hash(&s->search_iter, sizeof s->search_iter, h);
    h = ts_hash(&s->ctrl_steps, 8, h); h = ts_hash(&s->baseline, 4, h); h = ts_hash(&s->has_baseline, sizeof(int), h);
    h = ts_hash(&s->rng, sizeof s->rng, h); h = ts_hash(&ctx->rng, sizeof ctx->rng, h);
    h = ts_hash(&s->ctrl_opt.step, 8, h); h = ts_hash(&gan->opt_d.step, 8, h); h = ts_hash(&gan->iteration, 8, h);
    if (s->kept.count) { h = ts_hash(s->kept.archs, sizeof(int) * s->kept.count * s->kept.len, h);
                         h = ts_hash(s->kept.h, 4 * s->kept.count * s->kept.hid_size, h); h = ts_hash(s->kept.c, 4 * s->kept.count * s->kept.hid_size, h); }
    h = ts_hash(&s->g_window.count, sizeof(int), h); h = ts_hash(&s->d_window.count, sizeof(int), h);
    for (i = 0; i < s->g_window.count; i++) h = ts_hash(&s->g_window.v[(s->g_window.head + i) % s->g_window.cap], 4, h);
    for (i = 0; i < s->d_window.count; i++) h = ts_hash(&s->d_window.v[(s->d_window.head + i) % s->d_window.cap], 4, h);
    return h;
}
static int test_search_checkpoint(void) {
    ag_ctx *ctx = ag_ctx_create(9, NULL); ag_generator G; ag_discriminator D; ag_gan gan; ag_search_state s; ag_error err;
    const char *path = "build/test_search_ckpt.safetensors"; int archs[2 * AG_ARCH_MAX] = { 1, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 0 };
    float hk[2 * 100], ck[2 * 100]; uint64_t before, saved; int i, rejected = 0, tries = 0; unsigned char *bytes; size_t len, cut; float adv = 0.5f;
    int act[5] = { 1, 0, 2, 1, 1 }; FILE *f;
    TEST_CHECK(ag_generator_init(&G, 8, 16, 4, 1, ag_ctx_rng(ctx), &err) == 0 && ag_discriminator_init(&D, 8, 1, 1, ag_ctx_rng(ctx), &err) == 0 &&
               ag_gan_init(&gan, &G, &D, 4, 4, 1, 2e-4f, 2e-4f, 0.0f, 0.9f, &err) == 0 &&
               ag_search_state_init(&s, 100, 3.5e-4f, 0.0f, 0.9f, 5, 77, &err) == 0, "%s", err.msg);
    /* a state with something in every field: stage 1 with kept archs, a controller step, windows, a baseline */
    ag_rng_fill_normal(&s.rng, hk, 200, 0, 1); ag_rng_fill_normal(&s.rng, ck, 200, 0, 1);
    TEST_CHECK(ag_kept_archs_set(&s.kept, 2, 4, 100, archs, AG_ARCH_MAX, hk, ck, &err) == 0 && ag_search_new_controller(&s, 1, &err) == 0, "%s", err.msg);
    TEST_CHECK(ag_controller_update(ctx, &s.ctrl, &s.ctrl_opt, 1, hk, ck, act, &adv, 1e-3f, NULL) == 0, "%s", ag_ctx_error(ctx));
    { int a9[9] = { 1, 0, 1, 1, 1, 0, 2, 1, 1 }; TEST_CHECK(ag_generator_set_arch(&G, 1, a9, 9, &err) == 0 && ag_discriminator_set_stage(&D, 1, &err) == 0, "%s", err.msg); }
    { float real[4 * 16 * 16]; ag_rng_fill_uniform(&s.rng, real, 4 * 256, -1, 1);
      TEST_CHECK(ag_gan_d_step_n(ctx, &gan, real, 3, NULL, NULL) == 0 && ag_gan_g_step(ctx, &gan, NULL, NULL) == 0, "%s", ag_ctx_error(ctx)); }
    for (i = 0; i < 7; i++) ag_loss_window_push(&s.d_window, (float)i * 0.25f);
    ag_loss_window_push(&s.g_window, -1.5f);
    s.has_baseline = 1; s.baseline = 2.125f; s.search_iter = 4; s.ctrl_steps = 12;
    saved = ts_state_hash(&s, &gan, ctx);
    TEST_CHECK(ag_search_save(path, &s, &gan, ctx, "\"note\":\"x\"", &err) == 0, "%s", err.msg);
    /* scramble, then load: everything comes back */
    ag_generator_reset_params(&G, &s.rng); ag_controller_reset_params(&s.ctrl, &s.rng); ag_adam_reset(&s.ctrl_opt); ag_adam_reset(&gan.opt_g);
    ag_kept_archs_free(&s.kept); ag_loss_window_clear(&s.d_window); s.baseline = 0; s.has_baseline = 0; s.search_iter = 0; s.ctrl_steps = 0;
    ag_rng_u32(&s.rng); ag_rng_u32(ag_ctx_rng(ctx)); gan.iteration = 0;
    TEST_CHECK(ag_search_new_controller(&s, 0, &err) == 0, "%s", err.msg);
    { char *meta = NULL, v[16];
      TEST_CHECK(ag_search_load(path, &s, &gan, ctx, &meta, &err) == 0, "%s", err.msg);
      TEST_CHECK(ag_json_get_string(meta, "note", v, sizeof v) == 0 && !strcmp(v, "x"), "extra fields kept");
      free(meta); }
    TEST_CHECK(s.stage == 1 && s.ctrl.num_tokens == 5 && s.kept.count == 2 && s.d_window.count == 5 && s.g_window.count == 1, "restored layout");
    TEST_CHECK(ts_state_hash(&s, &gan, ctx) == saved, "every field restored bit for bit");
    /* truncations: rejected with the path in the message, nothing changed */
    TEST_CHECK(ag_read_file(path, &bytes, &len, &err) == 0, "%s", err.msg);
    ag_controller_reset_params(&s.ctrl, &s.rng);
    before = ts_state_hash(&s, &gan, ctx);
    for (cut = 0; cut < len; cut += 1 + len / 53, tries++) {
        f = fopen("build/test_search_cut.safetensors", "wb"); fwrite(bytes, 1, cut, f); fclose(f);
        err.msg[0] = 0;
        if (ag_search_load("build/test_search_cut.safetensors", &s, &gan, ctx, NULL, &err) != 0 && strstr(err.msg, "test_search_cut")) rejected++;
    }
    TEST_CHECK(rejected == tries, "every truncation rejected (%d of %d)", rejected, tries);
    TEST_CHECK(ts_state_hash(&s, &gan, ctx) == before, "failed loads changed nothing");
    /* a GAN checkpoint is not a search checkpoint */
    TEST_CHECK(ag_gan_save("build/test_search_gan.safetensors", &gan, NULL, ctx, NULL, &err) == 0, "%s", err.msg);
    TEST_CHECK(ag_search_load("build/test_search_gan.safetensors", &s, &gan, ctx, NULL, &err) != 0 && strstr(err.msg, "not an autogan.h search checkpoint"), "%s", err.msg);
    TEST_CHECK(ts_state_hash(&s, &gan, ctx) == before, "unchanged");
    free(bytes);
    ag_search_state_free(&s); ag_gan_free(&gan); ag_generator_free(&G); ag_discriminator_free(&D); ag_ctx_free(ctx);
    return 0;
}

/* ---- build/search end to end ---- */
#if defined(__unix__) || defined(__APPLE__)
#include <unistd.h>
#include <signal.h>
#include <sys/wait.h>
#define TS_TINY "--preset demo --classifier build/test_search_cls.safetensors --max_search_iter 4 --grow_step1 1 --grow_step2 3 " \
    "--ctrl_step 2 --num_train_imgs 32 --rl_num_eval_img 10 --is_splits 1 --eval_batch_size 10 --num_candidate 3 --topk 2 --gf_dim 8 --df_dim 8 " \
    "--latent_dim 16 -gen_bs 8 -dis_bs 12 --n_critic 1 --dynamic_reset_window 3 --dynamic_reset_threshold 1e9 --print_freq 100 --threads 1"
static int ts_run(const char *args, const char *log) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "./build/search " TS_TINY " %s > %s 2>&1", args, log);
    return system(cmd);
}
/* byte equality, after the first `skip_lines` lines (a header naming the run) */
static int ts_same_after(const char *a, const char *b, int skip_lines) {
    unsigned char *x, *y; size_t nx, ny, ox = 0, oy = 0; ag_error err; int same, k;
    if (ag_read_file(a, &x, &nx, &err)) { fprintf(stderr, "    %s\n", err.msg); return 0; }
    if (ag_read_file(b, &y, &ny, &err)) { fprintf(stderr, "    %s\n", err.msg); free(x); return 0; }
    for (k = 0; k < skip_lines; k++) {
        while (ox < nx && x[ox++] != '\n') {}
        while (oy < ny && y[oy++] != '\n') {}
    }
    same = nx - ox == ny - oy && !memcmp(x + ox, y + oy, nx - ox);
    free(x); free(y);
    return same;
}
static int ts_same_file(const char *a, const char *b) { return ts_same_after(a, b, 0); }
/* archs.txt of test_search_a and of another run: equal once the other's name reads test_search_a */
static int ts_same_archs(const char *a, const char *b) {
    unsigned char *x, *y; size_t nx, ny, i, k = 0; ag_error err; int same;
    if (ag_read_file(a, &x, &nx, &err)) { fprintf(stderr, "    %s\n", err.msg); return 0; }
    if (ag_read_file(b, &y, &ny, &err)) { fprintf(stderr, "    %s\n", err.msg); free(x); return 0; }
    for (i = 0; i < ny; i++) {   /* test_search_c -> test_search_a in place (same length) */
        if (i + 13 <= ny && !memcmp(y + i, "test_search_c", 13) && (i + 13 == ny || y[i + 13] != 'l')) { y[i + 12] = 'a'; k++; }
    }
    same = nx == ny && !memcmp(x, y, nx);
    if (!same) fprintf(stderr, "    %s and %s differ (after the names)\n", a, b);
    free(x); free(y);
    return same && k;
}
static int ts_count(const char *path, const char *needle) {
    unsigned char *x; size_t n, i, k = strlen(needle); ag_error err; int c = 0;
    if (ag_read_file(path, &x, &n, &err)) return -1;
    for (i = 0; i + k <= n; i++) if (!memcmp(x + i, needle, k)) c++;
    free(x);
    return c;
}
static double ts_now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
static int ts_make_classifier(void) {
    ag_classifier net; ag_rng r; ag_error err; int rc;
    ag_rng_seed(&r, 3, 1);
    if (ag_classifier_init(&net, 1, 28, 10, &r, &err)) { fprintf(stderr, "    %s\n", err.msg); return -1; }
    {   /* a fresh classifier's fc starts at zero: every image gets the uniform softmax and every
           architecture IS 1. Random fc weights make rewards differ, so the baseline and advantage
           are seen at work. */
        size_t i;
        for (i = 0; i < net.fc.weight->size; i++) net.fc.weight->data[i] = 3.0f * ag_rng_normal(&r);
    }
    rc = ag_classifier_save("build/test_search_cls.safetensors", &net, "fashion-mnist", NULL, &err);
    if (rc) fprintf(stderr, "    %s\n", err.msg);
    ag_classifier_free(&net);
    return rc;
}
static double ts_full_seconds = 0;
/* three stages with both growths, a dynamic reset forced by an unreachable variance
   threshold, checkpoints, logs, plots and the final architectures */
static int test_search_program(void) {
    double t0;
    TEST_CHECK(ts_make_classifier() == 0, "classifier");
    TEST_CHECK(system("rm -rf logs/test_search_a logs/test_search_b logs/test_search_c") == 0, "rm");
    t0 = ts_now();
    TEST_CHECK(ts_run("--exp_name test_search_a", "build/test_search_a.log") == 0, "build/search failed; see build/test_search_a.log");
    ts_full_seconds = ts_now() - t0;
    TEST_CHECK(ts_count("build/test_search_a.log", "<search iteration 1/4, stage 0>") == 1 && ts_count("build/test_search_a.log", "[search iteration 4/4 done]") == 1 &&
               ts_count("build/test_search_a.log", "iteration 0/") == 0 && ts_count("build/test_search_a.log", "[search iteration 1/4 stage 0] [epoch 1/1] [batch 1/") == 1,
               "iterations, epochs and batches counted from 1 everywhere");
    TEST_CHECK(ts_count("build/test_search_a.log", "=> grow to stage 1") == 1 && ts_count("build/test_search_a.log", "=> grow to stage 2") == 1, "both growths");
    TEST_CHECK(ts_count("build/test_search_a.log", "=> dynamic reset triggered") == 4 && ts_count("build/test_search_a.log", "=> re-initialise the shared GAN") == 4,
               "a dynamic reset in every iteration (window 3, threshold 1e9)");
    TEST_CHECK(ts_count("logs/test_search_a/controller.csv", "\n") == 1 + 4 * 2, "controller.csv: header + 4 iterations x 2 steps");
    TEST_CHECK(ts_count("logs/test_search_a/archs.txt", "build/train --arch ") == 2, "top-2 written");
    {   /* the baseline as the reference's train_controller: the iteration's first reward, then
           0.9 b + 0.1 R; advantage R - b (controller.csv: search_iter,step,stage,arch,reward,entropy,baseline,advantage,loss) */
        unsigned char *x; size_t n; ag_error err; char *line; int prev_iter = -1, rows = 0, varied = 0; double prev_b = 0;
        TEST_CHECK(ag_read_file("logs/test_search_a/controller.csv", &x, &n, &err) == 0, "%s", err.msg);
        x = (unsigned char *)realloc(x, n + 1); x[n] = 0;
        for (line = strchr((char *)x, '\n'); line && line[1]; line = strchr(line + 1, '\n')) {
            int it, st, sg; double rw, en, b, adv; const char *p = line + 1; int commas = 0;
            TEST_CHECK(sscanf(p, "%d,%d,%d,", &it, &st, &sg) == 3, "row %d", rows);
            while (commas < 4 && *p) if (*p++ == ',') commas++;
            TEST_CHECK(sscanf(p, "%lf,%lf,%lf,%lf", &rw, &en, &b, &adv) == 4, "row %d fields", rows);
            if (it != prev_iter) TEST_CHECK(fabs(b - rw) < 1e-6, "iteration %d starts its baseline at its first reward: b %.6f, R %.6f", it, b, rw);
            else TEST_CHECK(fabs(b - (0.9 * prev_b + 0.1 * rw)) < 2e-6, "iteration %d: b %.6f, wanted 0.9 * %.6f + 0.1 * %.6f", it, b, prev_b, rw);
            TEST_CHECK(fabs(adv - (rw - b)) < 2e-6, "advantage = R - b");
            if (fabs(rw - 1.0) > 1e-5) varied = 1;
            prev_iter = it; prev_b = b; rows++;
        }
        free(x);
        TEST_CHECK(rows == 8 && varied, "8 controller rows with rewards that differ (%d rows)", rows);
    }
    { unsigned char *x; size_t n; ag_error err; int a[14], k;
      TEST_CHECK(ag_read_file("logs/test_search_a/archs.txt", &x, &n, &err) == 0, "%s", err.msg);
      k = sscanf(strstr((char *)x, "--arch ") + 7, "%d %d %d %d %d %d %d %d %d %d %d %d %d %d", a, a + 1, a + 2, a + 3, a + 4, a + 5, a + 6, a + 7, a + 8, a + 9, a + 10, a + 11, a + 12, a + 13);
      free(x);
      TEST_CHECK(k == 14, "a 14-token architecture (got %d tokens)", k); }
    { ag_array png; ag_error err;
      TEST_CHECK(ag_png_read("logs/test_search_a/controller.png", 3, &png, &err) == 0 && png.shape[1] == 720, "reward plot: %s", err.msg); ag_array_free(&png);
      TEST_CHECK(ag_png_read("logs/test_search_a/samples/iter_004.png", 1, &png, &err) == 0 && png.shape[0] == 8 * 34 + 2, "32x32 sample grid: %s", err.msg); ag_array_free(&png); }
    /* stopped after one iteration, then resumed: the same final bytes */
    TEST_CHECK(ts_run("--exp_name test_search_b --stop_after_iter 1", "build/test_search_b.log") == 0, "first half");
    TEST_CHECK(ts_run("--load_path logs/test_search_b", "build/test_search_b2.log") == 0, "resume; see build/test_search_b2.log");
    TEST_CHECK(ts_same_file("logs/test_search_a/Model/checkpoint.safetensors", "logs/test_search_b/Model/checkpoint.safetensors"), "stop + resume: same checkpoint bytes");
    TEST_CHECK(ts_same_file("logs/test_search_a/controller.csv", "logs/test_search_b/controller.csv"), "same controller.csv");
    TEST_CHECK(ts_same_file("logs/test_search_a/search.csv", "logs/test_search_b/search.csv"), "same search.csv");
    return 0;
}
/* starts build/search on test_search_c (a resume when a checkpoint exists, else a fresh
   start in the used directory) and SIGKILLs it after `delay` seconds; 1 = it had resumed */
static int ts_start_and_kill(double delay, const char *log) {
    pid_t pid; int status, resumed; char *args[64]; char buf[2048], *tok; int n = 0;
    resumed = access("logs/test_search_c/Model/checkpoint.safetensors", F_OK) == 0;
    snprintf(buf, sizeof buf, "./build/search " TS_TINY " %s", resumed ? "--load_path logs/test_search_c" : "--exp_name test_search_c --overwrite");
    for (tok = strtok(buf, " "); tok && n < 62; tok = strtok(NULL, " ")) args[n++] = tok;
    args[n] = NULL;
    pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        FILE *o = freopen(log, "w", stdout);
        (void)o; dup2(1, 2);
        execv(args[0], args);
        _exit(127);
    }
    { struct timespec ts; ts.tv_sec = (time_t)delay; ts.tv_nsec = (long)((delay - (double)ts.tv_sec) * 1e9); nanosleep(&ts, NULL); }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return resumed;
}
/* SIGKILL twice: early (before the first checkpoint, often before the first complete CSV
   line) and at a random later moment, then run to the end: the final checkpoint, logs and
   architectures equal the uninterrupted run's. The moments are printed for a replay. */
static int test_search_kill_resume(void) {
    double early, later; int resumed;
    TEST_CHECK(ts_full_seconds > 0, "needs test_search_program first");
    srand((unsigned)time(NULL) ^ (unsigned)getpid());
    early = ts_full_seconds * (0.01 + 0.09 * rand() / (double)RAND_MAX);
    later = ts_full_seconds * (0.1 + 0.8 * rand() / (double)RAND_MAX);
    TEST_CHECK(system("rm -rf logs/test_search_c") == 0, "rm");
    TEST_CHECK(ts_start_and_kill(early, "build/test_search_c.log") == 0, "fork");
    resumed = ts_start_and_kill(later, "build/test_search_c1.log");
    TEST_CHECK(resumed >= 0, "fork");
    printf("    killed after %.3f s, then %s after %.3f s; the last run %s (a full run takes %.2f s)\n", early,
           resumed ? "resumed and killed" : "started again and killed", later,
           access("logs/test_search_c/Model/checkpoint.safetensors", F_OK) == 0 ? "resumes from a checkpoint" : "starts again", ts_full_seconds);
    resumed = access("logs/test_search_c/Model/checkpoint.safetensors", F_OK) == 0;
    TEST_CHECK(ts_run(resumed ? "--load_path logs/test_search_c" : "--exp_name test_search_c --overwrite", "build/test_search_c2.log") == 0, "resume; see build/test_search_c2.log");
    TEST_CHECK(ts_same_file("logs/test_search_a/Model/checkpoint.safetensors", "logs/test_search_c/Model/checkpoint.safetensors"), "kill + resume: same checkpoint bytes");
    TEST_CHECK(ts_same_file("logs/test_search_a/controller.csv", "logs/test_search_c/controller.csv"), "same controller.csv");
    TEST_CHECK(ts_same_file("logs/test_search_a/search.csv", "logs/test_search_c/search.csv"), "same search.csv");
    TEST_CHECK(ts_same_archs("logs/test_search_a/archs.txt", "logs/test_search_c/archs.txt"), "same archs.txt but for the run's name");
    return 0;
}
/* ---- issue 15: resume from the directory alone, stored values checked, inputs checked
   first, run directories, archs.txt lines that paste ---- */
static char ts_out[1 << 16];
/* build/search with TS_TINY and args (or, with bare = 1, args alone); output in ts_out */
static int ts_cmd(int bare, const char *args) {
    char cmd[3072];
    if (bare) snprintf(cmd, sizeof cmd, "OMP_WAIT_POLICY=passive ./build/search %s", args);
    else snprintf(cmd, sizeof cmd, "OMP_WAIT_POLICY=passive ./build/search " TS_TINY " %s", args);
    return test_run_command(cmd, ts_out, sizeof ts_out);
}
static int ts_is_dir(const char *p) { struct stat st; return stat(p, &st) == 0 && S_ISDIR(st.st_mode); }
/* logs/test_search_a, the uninterrupted tiny search (test_search_program makes it; run alone, a test makes it here) */
static int ts_need_full(void) {
    if (ts_full_seconds > 0 && access("logs/test_search_a/archs.txt", F_OK) == 0) return 0;
    if (ts_make_classifier() || system("rm -rf logs/test_search_a")) return -1;
    return ts_run("--exp_name test_search_a", "build/test_search_a.log") == 0 ? 0 : -1;
}

/* --load_path DIR alone resumes to the uninterrupted run's bytes; a flag given beside it
   (any spelling) must equal the stored value; --max_search_iter may be raised */
static int test_search_resume_contract(void) {
    TEST_CHECK(ts_need_full() == 0, "the uninterrupted search failed; see build/test_search_a.log");
    TEST_CHECK(system("rm -rf logs/test_search_d") == 0, "rm");
    TEST_CHECK(ts_cmd(0, "--exp_name test_search_d --stop_after_iter 1") == 0, "first iteration: %s", ts_out);
    TEST_CHECK(ts_cmd(1, "--load_path logs/test_search_d --gf_dim 16") == 2 && strstr(ts_out, "--gf_dim 16") && strstr(ts_out, "--gf_dim 8"),
               "a different --gf_dim refused naming both values: %s", ts_out);
    TEST_CHECK(ts_cmd(1, "--load_path logs/test_search_d --gf-dim=16") == 2 && strstr(ts_out, "16") && strstr(ts_out, "8"), "--gf-dim=16 refused too: %s", ts_out);
    TEST_CHECK(ts_cmd(1, "--load_path logs/test_search_d --dataset=mnist") == 2 && strstr(ts_out, "fashion-mnist"), "another data set refused: %s", ts_out);
    TEST_CHECK(ts_cmd(1, "--load_path logs/test_search_d --classifier weights/fashion-mnist-classifier.safetensors") == 2 &&
               strstr(ts_out, "test_search_cls"), "another scorer refused: %s", ts_out);
    TEST_CHECK(ts_cmd(1, "--load_path logs/test_search_d --max_search_iter 3") == 2 && strstr(ts_out, "raised"), "a shorter --max_search_iter refused: %s", ts_out);
    TEST_CHECK(ts_cmd(1, "--load_path logs/test_search_d --overwrite") == 2, "--overwrite with --load_path refused: %s", ts_out);
    TEST_CHECK(ts_cmd(1, "--load_path logs/test_search_d --max-search-iter=4 --random_seed 12345") == 0 && !strstr(ts_out, "<search iteration 1/"),
               "--load_path alone (with equal flags) resumes at iteration 2: %s", ts_out);
    TEST_CHECK(ts_same_file("logs/test_search_a/Model/checkpoint.safetensors", "logs/test_search_d/Model/checkpoint.safetensors"), "the uninterrupted run's bytes");
    TEST_CHECK(ts_same_file("logs/test_search_a/controller.csv", "logs/test_search_d/controller.csv"), "same controller.csv");
    TEST_CHECK(ts_cmd(1, "--resume logs/test_search_d/Model/checkpoint.safetensors --max_search_iter 5") == 0 && strstr(ts_out, "extends") &&
               strstr(ts_out, "<search iteration 5/5") && !strstr(ts_out, "<search iteration 4/"), "a larger --max_search_iter extends by one iteration: %s", ts_out);
    TEST_CHECK(ts_count("logs/test_search_d/controller.csv", "\n") == 1 + 5 * 2, "controller.csv: 5 iterations");
    return 0;
}

/* a checkpoint's metadata rewritten with one value changed; 0 on success */
static int ts_edit_meta(const char *src, const char *dst, const char *key, const char *value) {
    ag_array_list l; char *meta = NULL, *out, pat[96]; const char *p, *q; ag_error err; int rc; size_t n;
    if (ag_safetensors_read(src, &l, &meta, &err)) { fprintf(stderr, "    %s\n", err.msg); return -1; }
    snprintf(pat, sizeof pat, "\"%s\":\"", key);
    if (!(p = strstr(meta, pat))) { fprintf(stderr, "    no key %s\n", key); free(meta); ag_array_list_free(&l); return -1; }
    p += strlen(pat);
    q = strchr(p, '"');
    n = strlen(meta) + strlen(value) + 1;
    out = (char *)malloc(n);
    snprintf(out, n, "%.*s%s%s", (int)(p - meta), meta, value, q);
    rc = ag_safetensors_write(dst, &l, out, &err);
    if (rc) fprintf(stderr, "    %s\n", err.msg);
    free(out); free(meta); ag_array_list_free(&l);
    return rc;
}
/* every stored value checked as strictly as its flag: exit 2 naming the file and the key, never a crash */
static int test_search_bad_checkpoint(void) {
    static const char *cases[][2] = {
        { "data_stage", "99999999999" }, { "data_stage", "2" }, { "data_stage", "-1" }, { "stage", "x" }, { "stage", "1" }, { "search_iter", "-1" },
        { "search_iter", "3" }, { "ctrl_steps", "1e3" }, { "gan_iteration", "99999999999999999999" }, { "rng_inc", "2" }, { "baseline_bits", "7fc00000" },
        { "loader", "garbage" }, { "loader", "1 99999 5 7" }, { "loader", "1 2 5 7 8" }, { "opt.gf_dim", "0" }, { "opt.dis_bs", "abc" },
        { "opt.g_lr", "nan" }, { "opt.dynamic_reset_window", "1" }, { "opt.threads", "9999" }, { "opt.split", "valid" }, { "opt.dataset", "imagenet" },
        { "opt.d_spectral_norm", "maybe" }, { "opt.random_seed", "-5" }, { "opt.is_splits", "11" }, { "opt.topk", "9" }, { "opt.hid_size", "50" },
        { "opt.max_search_iter", "0" }, { "opt.eval_batch_size", " 10" },
    };
    size_t i; char cmd[512];
    TEST_CHECK(ts_make_classifier() == 0, "classifier");
    TEST_CHECK(system("rm -rf logs/test_search_h") == 0, "rm");
    TEST_CHECK(ts_cmd(0, "--exp_name test_search_h --stop_after_iter 1") == 0, "one iteration: %s", ts_out);
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        TEST_CHECK(system("rm -rf logs/test_search_e && mkdir -p logs/test_search_e/Model") == 0, "mkdir");
        TEST_CHECK(ts_edit_meta("logs/test_search_h/Model/checkpoint.safetensors", "logs/test_search_e/Model/checkpoint.safetensors", cases[i][0], cases[i][1]) == 0, "edit");
        snprintf(cmd, sizeof cmd, "--load_path logs/test_search_e");
        TEST_CHECK(ts_cmd(1, cmd) == 2, "%s = '%s': exit 2 wanted: %s", cases[i][0], cases[i][1], ts_out);
        TEST_CHECK(!strstr(ts_out, "<search iteration"), "%s = '%s': ran: %s", cases[i][0], cases[i][1], ts_out);
        TEST_CHECK(strstr(ts_out, "logs/test_search_e/Model/checkpoint.safetensors") && (strstr(ts_out, cases[i][0]) ||
                   (!strncmp(cases[i][0], "opt.", 4) && (strstr(ts_out, "stored settings") || strstr(ts_out, cases[i][0] + 4)))),
                   "%s = '%s': the message names the file and the key: %s", cases[i][0], cases[i][1], ts_out);
    }
    /* the unedited copy resumes */
    TEST_CHECK(ts_edit_meta("logs/test_search_h/Model/checkpoint.safetensors", "logs/test_search_e/Model/checkpoint.safetensors", "data_stage", "0") == 0, "copy");
    TEST_CHECK(ts_cmd(1, "--load_path logs/test_search_e --stop_after_iter 1") == 0, "the untampered copy resumes: %s", ts_out);
    return 0;
}

/* flag combinations and every input checked before LOG_DIR/NAME is made: exit 2, no directory */
static int test_search_checks_before_writing(void) {
    static const char *bad[] = {
        "--rl_num_eval_img 5 --eval_batch_size 5 --is_splits 10",     /* fewer reward images than IS splits */
        "--classifier build/no_such_classifier.safetensors",
        "--inception build/no_such_inception.pth",
        "--data_path build/no_such_data --dataset mnist",
        "--dataset imagenet",
        "--fid_stat build/no_such_stats.npz",
        "--stats weights/fashion-mnist-train-stats.npz --classifier tests/data/no_such.safetensors",
        "--threads 257",
        "--log_dir build/no_such_parent/logs",
    };
    size_t i; char args[512];
    TEST_CHECK(ts_make_classifier() == 0, "classifier");
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        TEST_CHECK(system("rm -rf logs/test_search_f") == 0, "rm");
        snprintf(args, sizeof args, "%s --exp_name test_search_f", bad[i]);
        TEST_CHECK(ts_cmd(0, args) == 2, "'%s': exit 2 wanted: %s", bad[i], ts_out);
        TEST_CHECK(!ts_is_dir("logs/test_search_f"), "'%s': logs/test_search_f made before the check", bad[i]);
    }
    TEST_CHECK(ts_cmd(0, "--exp_name ''") == 2 && strstr(ts_out, "--exp_name"), "--exp_name '' refused: %s", ts_out);
    TEST_CHECK(ts_cmd(0, "--exp_name=") == 2, "--exp_name= refused: %s", ts_out);
    /* the aliases of item 7 are read */
    TEST_CHECK(ts_cmd(0, "--exp_name test_search_f --batch 7 --threads 256 --help") == 0, "--batch and --threads 256 accepted: %s", ts_out);
    TEST_CHECK(ts_cmd(0, "--stats build/no_such_stats.npz --exp_name test_search_f") == 2 && strstr(ts_out, "no_such_stats"), "--stats is --fid_stat: %s", ts_out);
    return 0;
}

/* archs.txt's first line, pasted as it is with a tiny budget appended, trains (exit 0); a
   search stopped before stage 2 writes no build/train lines but says why */
static int test_search_archs_paste(void) {
    unsigned char *x; size_t n; ag_error err; char line[2048], cmd[3072], *nl, *hash; const char *p;
    TEST_CHECK(ts_make_classifier() == 0, "classifier");
    TEST_CHECK(system("rm -rf logs/test_search_p logs/test_search_p_top1 logs/test_search_q") == 0, "rm");
    TEST_CHECK(ts_cmd(0, "--dataset mnist --data_path tests/data/datasets/mnist --split train --exp_name test_search_p") == 0, "search: %s", ts_out);
    TEST_CHECK(ag_read_file("logs/test_search_p/archs.txt", &x, &n, &err) == 0, "%s", err.msg);
    x = (unsigned char *)realloc(x, n + 1); x[n] = 0;
    p = strstr((char *)x, "\nbuild/train --arch ");
    TEST_CHECK(p, "no build/train line in archs.txt: %s", (char *)x);
    snprintf(line, sizeof line, "%s", p + 1);
    free(x);
    if ((nl = strchr(line, '\n'))) *nl = 0;
    TEST_CHECK(strstr(line, "--exp_name test_search_p_top1") && strstr(line, "--gf_dim 8") && strstr(line, "--df_dim 8") && strstr(line, "--latent_dim 16") &&
               strstr(line, "--dataset mnist") && strstr(line, "--data_path tests/data/datasets/mnist") && strstr(line, "--classifier build/test_search_cls.safetensors") &&
               strstr(line, "--channels 1") && strstr(line, "--bottom_width 4"), "the line carries the search's widths, data and scorer: %s", line);
    if ((hash = strstr(line, "   # IS"))) *hash = 0;   /* the shell drops the comment too */
    snprintf(cmd, sizeof cmd, "OMP_WAIT_POLICY=passive ./%s --max_iter 2 --num_eval_imgs 10 --eval_batch_size 10 --threads 1", line);
    TEST_CHECK(test_run_command(cmd, ts_out, sizeof ts_out) == 0, "the pasted line failed: %s\n%s", cmd, ts_out);
    TEST_CHECK(ts_is_dir("logs/test_search_p_top1/Model"), "trained into logs/test_search_p_top1");
    /* stopped at stage 1 (--max_search_iter 2 with --grow_step2 3) */
    TEST_CHECK(ts_cmd(0, "--max_search_iter 2 --exp_name test_search_q") == 0, "search: %s", ts_out);
    TEST_CHECK(strstr(ts_out, "not trainable yet") && !strstr(ts_out, "build/train --arch"), "printed: no lines that fail: %s", ts_out);
    TEST_CHECK(ts_count("logs/test_search_q/archs.txt", "\nbuild/train") == 0 && ts_count("logs/test_search_q/archs.txt", "not trainable yet") >= 1,
               "archs.txt says the 9-token architectures are not trainable yet");
    return 0;
}

/* a fresh search refuses a directory holding a search, a training run or other files (exit 2,
   naming what it holds and how to resume it); --overwrite starts a search afresh but never over
   a training run; --load_path on a training run names it; a locked directory is refused */
static int test_search_run_dirs(void) {
    ag_run_lock lk; ag_error err;
    TEST_CHECK(ts_need_full() == 0, "the uninterrupted search failed; see build/test_search_a.log");
    TEST_CHECK(ts_cmd(0, "--exp_name test_search_a") == 2 && strstr(ts_out, "a search") && strstr(ts_out, "build/search --load_path logs/test_search_a") &&
               strstr(ts_out, "--overwrite"), "a search's directory refused: %s", ts_out);
    if (!ts_is_dir("logs/test_search_p_top1/Model"))
        TEST_CHECK(system("mkdir -p logs/test_search_p_top1/Model") == 0 &&
                   ts_edit_meta("logs/test_search_a/Model/checkpoint.safetensors", "logs/test_search_p_top1/Model/checkpoint.safetensors", "format",
                                "autogan.h train checkpoint 1") == 0, "a training run's directory");
    TEST_CHECK(ts_cmd(0, "--exp_name test_search_p_top1") == 2 && strstr(ts_out, "training run") && strstr(ts_out, "build/train --load_path logs/test_search_p_top1"),
               "a training run's directory refused: %s", ts_out);
    TEST_CHECK(ts_cmd(0, "--exp_name test_search_p_top1 --overwrite") == 2 && strstr(ts_out, "training run"), "--overwrite never over a training run: %s", ts_out);
    TEST_CHECK(ts_cmd(1, "--load_path logs/test_search_p_top1") == 2 && strstr(ts_out, "training run") && strstr(ts_out, "build/train --load_path"),
               "--load_path on a training run names it: %s", ts_out);
    TEST_CHECK(system("rm -rf logs/test_search_g && mkdir -p logs/test_search_g && echo keep > logs/test_search_g/notes.txt && echo old > logs/test_search_g/archs.txt") == 0, "mk");
    TEST_CHECK(ts_cmd(0, "--exp_name test_search_g") == 2 && strstr(ts_out, "notes.txt"), "other files refused, named: %s", ts_out);
    TEST_CHECK(ts_cmd(0, "--exp_name test_search_g --overwrite --max_search_iter 1") == 0, "--overwrite: %s", ts_out);
    TEST_CHECK(ts_count("logs/test_search_g/notes.txt", "keep") == 1 && ts_count("logs/test_search_g/archs.txt", "old") == 0, "others' files stay, the search's are new");
    /* the lock: a second process on the same directory is refused */
    TEST_CHECK(ag_run_dir_lock("logs/test_search_g", &lk, &err) == 0, "%s", err.msg);
    TEST_CHECK(ts_cmd(1, "--load_path logs/test_search_g --max_search_iter 2") == 2 && strstr(ts_out, "in use"), "a locked directory refused: %s", ts_out);
    ag_run_dir_unlock(&lk);
    TEST_CHECK(ts_cmd(1, "--load_path logs/test_search_g --max_search_iter 2") == 0, "unlocked: resumes: %s", ts_out);
    return 0;
}
#else
static int test_search_program(void) { test_skip("needs POSIX (system, fork)"); return 0; }
static int test_search_kill_resume(void) { test_skip("needs POSIX (fork, kill)"); return 0; }
static int test_search_resume_contract(void) { test_skip("needs POSIX"); return 0; }
static int test_search_bad_checkpoint(void) { test_skip("needs POSIX"); return 0; }
static int test_search_checks_before_writing(void) { test_skip("needs POSIX"); return 0; }
static int test_search_archs_paste(void) { test_skip("needs POSIX"); return 0; }
static int test_search_run_dirs(void) { test_skip("needs POSIX"); return 0; }
#endif

const test_case tests_search[] = {
    { "controller_golden (PyTorch, stages 0-2: logits, log-probs, entropies, (h, c), loss, every gradient)", test_controller_golden },
    { "controller_init_and_sampling (defaults, kept prefixes, sampled = teacher-forced)", test_controller_init_and_sampling },
    { "loss_window", test_loss_window },
    { "search_checkpoint (round trip of every field, truncations change nothing)", test_search_checkpoint },
    { "search_program (build/search: 3 stages, growths, forced dynamic resets, logs, plot; stop + resume = same bytes)", test_search_program },
    { "search_kill_resume (SIGKILL at a random moment, resume: same bytes as uninterrupted)", test_search_kill_resume },
    { "search_resume_contract (--load_path alone resumes; other flags refused naming both; --max_search_iter extends)", test_search_resume_contract },
    { "search_bad_checkpoint (28 tampered stored values: exit 2 naming the file and the key)", test_search_bad_checkpoint },
    { "search_checks_before_writing (bad inputs and combinations: exit 2 before logs/NAME exists)", test_search_checks_before_writing },
    { "search_archs_paste (archs.txt's first line trains as pasted; stopped before stage 2: no lines)", test_search_archs_paste },
    { "search_run_dirs (a search, a training run, other files: refused; --overwrite; the lock)", test_search_run_dirs },
    { NULL, NULL }
};
