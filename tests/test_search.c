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
        ctx = ag_ctx_create(1);
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
    ag_controller c; ag_rng rng, r2; ag_error err; ag_ctx *ctx = ag_ctx_create(3); size_t i;
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

const test_case tests_search[] = {
    { "controller_golden (PyTorch, stages 0-2: logits, log-probs, entropies, (h, c), loss, every gradient)", test_controller_golden },
    { "controller_init_and_sampling (defaults, kept prefixes, sampled = teacher-forced)", test_controller_init_and_sampling },
    { "loss_window", test_loss_window },
    { NULL, NULL }
};
