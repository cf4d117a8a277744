/* test_classifier.c - the compact classifier and the scorer interface.

   Against PyTorch (tests/golden/gen_classifier.py, the same module with the same state_dict
   names): a training-mode forward (batch statistics), the cross-entropy loss, every
   parameter's gradient and the updated running statistics; an eval-mode forward; a
   3-channel network. Tolerances: float32 both sides, summation orders differ (Winograd in C
   for the 3x3 convs with >= 16 channels); logits and features 2e-4 relative to their
   largest value, gradients 1e-3 relative to each tensor's largest gradient (a wrong BN
   backward or a swapped branch moves them by > 1e-1). Through the scorer (quantisation,
   PIL resize, PIL's RGB->L, normalisation, eval mode): logits of 300 gray images and
   features of 300 RGB 20x20 images against PyTorch + Pillow, the classifier IS against
   NumPy (1e-5 relative) and FID against NumPy (1e-3 relative: 256-dim covariances of 300
   float32 feature vectors). Both kinds through ag_scorer_load: Inception (the suite's
   deterministic weights) equal to ag_inception_forward bit for bit; bad input refused. */

static int cls_load_golden_weights(ag_classifier *net, const golden *g, int three_channels, ag_error *err) {
    ag_array_list sel; int i, rc;
    memset(&sel, 0, sizeof sel);
    for (i = 0; i < g->arrays.count; i++) {
        const ag_array *a = &g->arrays.items[i]; const char *name = NULL;
        if (!strncmp(a->name, "w.", 2)) name = a->name + 2;
        if (three_channels && !strcmp(a->name, "w.conv1.conv.weight")) continue;
        if (three_channels && !strcmp(a->name, "w3.conv1.conv.weight")) name = a->name + 3;
        if (name && ag_array_list_add(&sel, name, a->dtype, a->ndim, a->shape, a->data, err)) { ag_array_list_free(&sel); return -1; }
    }
    rc = ag_params_load_arrays(&net->params, &sel, "", 1, "classifier golden", err);
    ag_array_list_free(&sel);
    return rc;
}
static double cls_max_abs(const float *x, size_t n) { double m = 0; size_t i; for (i = 0; i < n; i++) if (fabs(x[i]) > m) m = fabs(x[i]); return m; }
static int cls_compare_scaled(const golden *g, const char *name, const float *got, size_t n, double rel) {
    const ag_array *a = ag_array_list_find(&g->arrays, name);
    if (!a || a->dtype != AG_DTYPE_F32) { fprintf(stderr, "    golden '%s' missing\n", name); return 1; }
    return golden_compare(g, name, got, n, rel * cls_max_abs((const float *)a->data, a->nbytes / 4), 0);
}

static int test_classifier_vs_pytorch(void) {
    golden g; ag_error err; ag_classifier net; ag_ctx *ctx; ag_tensor *x, *lg, *feat, *loss; int i, bad = 0; int64_t targets[3];
    const ag_array *ta; char name[160];
    memset(&g, 0, sizeof g);
    TEST_CHECK(golden_open(&g, "classifier") == 0, "golden");
    ctx = ag_ctx_create(1, NULL); ag_ctx_set_threads(ctx, 2);
    TEST_CHECK(ag_classifier_init(&net, 1, 16, 10, ag_ctx_rng(ctx), &err) == 0, "%s", err.msg);
    TEST_CHECK(ag_params_count(&net.params) < 1000000, "%lu parameters (<= 1 M)", (unsigned long)ag_params_count(&net.params));
    TEST_CHECK(cls_load_golden_weights(&net, &g, 0, &err) == 0, "%s", err.msg);
    ta = ag_array_list_find(&g.arrays, "targets");
    TEST_CHECK(ta && ta->dtype == AG_DTYPE_I64, "targets");
    memcpy(targets, ta->data, sizeof targets);
    x = golden_tensor(ctx, &g, "x", 0);
    net.training = 1;
    lg = ag_classifier_forward(ctx, &net, x, &feat);
    loss = ag_cross_entropy(ctx, lg, targets);
    TEST_CHECK(loss != NULL, "%s", ag_ctx_error(ctx));
    bad |= cls_compare_scaled(&g, "train.logits", lg->data, lg->size, 2e-4);
    bad |= cls_compare_scaled(&g, "train.features", feat->data, feat->size, 2e-4);
    bad |= golden_compare(&g, "train.loss", loss->data, 1, 1e-5, 1e-5);
    ag_params_zero_grad(&net.params);
    TEST_CHECK(ag_backward(ctx, loss) == 0, "%s", ag_ctx_error(ctx));
    for (i = 0; i < net.params.count; i++) {
        ag_param_entry *e = &net.params.entries[i];
        if (e->kind == AG_ENTRY_PARAM) {
            snprintf(name, sizeof name, "grad.%s", e->name);
            if (cls_compare_scaled(&g, name, e->tensor->grad, e->tensor->size, 1e-3)) { bad = 1; fprintf(stderr, "    (%s)\n", name); }
        } else if (e->kind == AG_ENTRY_BUFFER) {
            snprintf(name, sizeof name, "after.%s", e->name);
            bad |= golden_compare(&g, name, e->tensor->data, e->tensor->size, 1e-5, 1e-4);
        } else {
            const ag_array *c; snprintf(name, sizeof name, "after.%s", e->name); c = ag_array_list_find(&g.arrays, name);
            TEST_CHECK(c && *e->counter == ((const int64_t *)c->data)[0], "%s: %lld", name, (long long)*e->counter);
        }
    }
    ag_ctx_reset(ctx);
    net.training = 0;
    ag_ctx_set_grad_enabled(ctx, 0);
    x = golden_tensor(ctx, &g, "x", 0);
    lg = ag_classifier_forward(ctx, &net, x, &feat);
    TEST_CHECK(lg != NULL, "%s", ag_ctx_error(ctx));
    bad |= cls_compare_scaled(&g, "eval.logits", lg->data, lg->size, 2e-4);
    bad |= cls_compare_scaled(&g, "eval.features", feat->data, feat->size, 2e-4);
    /* the wrong input shape is refused with a message */
    {
        int shape[4] = { 1, 3, 16, 16 }; ag_tensor *bad_x = ag_tensor_zeros(ctx, 4, shape);
        TEST_CHECK(ag_classifier_forward(ctx, &net, bad_x, NULL) == NULL && strstr(ag_ctx_error(ctx), "expected [N, 1, 16, 16]"),
                   "wrong channels refused: %s", ag_ctx_error(ctx));
        ag_ctx_clear_error(ctx);
    }
    ag_classifier_free(&net);
    /* the 3-channel network (eval mode, the golden's initial running statistics) */
    ag_ctx_reset(ctx);
    TEST_CHECK(ag_classifier_init(&net, 3, 16, 10, NULL, &err) == 0, "%s", err.msg);
    TEST_CHECK(cls_load_golden_weights(&net, &g, 1, &err) == 0, "%s", err.msg);
    net.training = 0;
    lg = ag_classifier_forward(ctx, &net, golden_tensor(ctx, &g, "x3", 0), NULL);
    TEST_CHECK(lg != NULL, "%s", ag_ctx_error(ctx));
    bad |= cls_compare_scaled(&g, "eval3.logits", lg->data, lg->size, 2e-4);
    ag_classifier_free(&net);
    ag_ctx_free(ctx);
    golden_close(&g);
    TEST_CHECK(!bad, "the classifier differs from PyTorch");
    return 0;
}

/* the golden network after its training-mode pass, as a scorer */
static ag_scorer *cls_golden_scorer(const golden *g, ag_error *err) {
    ag_classifier net; ag_ctx *ctx = ag_ctx_create(1, NULL); ag_tensor *lg; ag_scorer *s = NULL; const ag_array *ta; int64_t targets[3];
    if (ag_classifier_init(&net, 1, 16, 10, NULL, err)) { ag_ctx_free(ctx); return NULL; }
    if (cls_load_golden_weights(&net, g, 0, err)) goto done;
    ta = ag_array_list_find(&g->arrays, "targets"); memcpy(targets, ta->data, sizeof targets);
    net.training = 1;
    lg = ag_classifier_forward(ctx, &net, golden_tensor(ctx, g, "x", 0), NULL);   /* updates the running statistics */
    if (!lg) { snprintf(err->msg, sizeof err->msg, "%s", ag_ctx_error(ctx)); goto done; }
    snprintf(net.dataset, sizeof net.dataset, "golden");
    s = ag_scorer_from_classifier(&net, err);
done:
    ag_classifier_free(&net); ag_ctx_free(ctx);
    return s;
}

static int test_classifier_scorer(void) {
    golden g; ag_error err; ag_scorer *s; const ag_array *a, *b; float *lg, *fb, *img; double m, sd, want_m, want_sd, want_fid, fid;
    ag_fid_stats sa, sb; int i, bad = 0; size_t j;
    memset(&g, 0, sizeof g);
    TEST_CHECK(golden_open(&g, "classifier") == 0, "golden");
    s = cls_golden_scorer(&g, &err);
    TEST_CHECK(s != NULL, "%s", err.msg);
    ag_scorer_set_threads(s, 2);
    TEST_CHECK(!strcmp(ag_scorer_kind(s), "classifier") && ag_scorer_num_classes(s) == 10 && ag_scorer_feature_dim(s) == 256 &&
               ag_scorer_input_size(s) == 16 && ag_scorer_input_channels(s) == 1 && !strcmp(ag_scorer_dataset(s), "golden"), "scorer properties");
    a = ag_array_list_find(&g.arrays, "score_a_u8"); b = ag_array_list_find(&g.arrays, "score_b_u8");
    TEST_CHECK(a && b && a->dtype == AG_DTYPE_U8 && b->dtype == AG_DTYPE_U8, "golden images");
    lg = (float *)malloc(300 * 10 * sizeof(float)); fb = (float *)malloc(300 * 256 * sizeof(float));
    img = (float *)malloc((size_t)300 * 3 * 20 * 20 * sizeof(float));
    /* uint8 in: gray 16x16 (as is) and RGB 20x20 (PIL resize, then L) */
    TEST_CHECK(ag_scorer_forward_u8(s, (const unsigned char *)a->data, 300, 16, 16, 1, lg, NULL, &err) == 0, "%s", err.msg);
    bad |= cls_compare_scaled(&g, "score_a_logits", lg, 3000, 2e-4);
    TEST_CHECK(ag_scorer_forward_u8(s, (const unsigned char *)b->data, 300, 20, 20, 3, NULL, fb, &err) == 0, "%s", err.msg);
    bad |= cls_compare_scaled(&g, "score_b_features", fb, 300 * 256, 2e-4);
    /* floats in [-1, 1] NCHW that quantise to the same uint8 ((u + 0.5)/127.5 - 1 truncates back to u) */
    for (i = 0; i < 300; i++) for (j = 0; j < 256; j++) img[(size_t)i * 256 + j] = ((float)((const unsigned char *)a->data)[(size_t)i * 256 + j] + 0.5f) / 127.5f - 1.0f;
    want_m = ((const double *)ag_array_list_find(&g.arrays, "score_is")->data)[0];
    want_sd = ((const double *)ag_array_list_find(&g.arrays, "score_is")->data)[1];
    TEST_CHECK(ag_scorer_inception_score(s, img, 300, 1, 16, 16, 10, &m, &sd, &err) == 0, "%s", err.msg);
    TEST_CHECK(fabs(m - want_m) <= 1e-5 * want_m && fabs(sd - want_sd) <= 1e-5 * want_m + 1e-7, "classifier IS %.8f +- %.8f, NumPy %.8f +- %.8f", m, sd, want_m, want_sd);
    /* FID(A, B): A from floats through ag_scorer_fid_stats_add, B from the uint8 features above */
    TEST_CHECK(ag_fid_stats_init(&sa, 256, &err) == 0 && ag_fid_stats_init(&sb, 256, &err) == 0, "%s", err.msg);
    TEST_CHECK(ag_scorer_fid_stats_add(s, &sa, img, 300, 1, 16, 16, &err) == 0, "%s", err.msg);
    TEST_CHECK(ag_fid_stats_add(&sb, fb, 300, &err) == 0 && ag_fid_stats_finish(&sa, &err) == 0 && ag_fid_stats_finish(&sb, &err) == 0, "stats");
    TEST_CHECK(ag_fid(sa.mu, sa.sigma, sb.mu, sb.sigma, 256, &fid, &err) == 0, "%s", err.msg);
    want_fid = ((const double *)ag_array_list_find(&g.arrays, "score_fid")->data)[0];
    TEST_CHECK(fabs(fid - want_fid) <= 1e-3 * want_fid, "classifier FID %.6f, NumPy %.6f", fid, want_fid);
    /* RGB float images (3 channels) go through PIL's L: equal gray channels give the gray result */
    for (i = 0; i < 4; i++) for (j = 0; j < 256; j++) {
        float v = img[(size_t)i * 256 + j];
        img[(size_t)300 * 256 + ((size_t)i * 3 + 0) * 256 + j] = v; img[(size_t)300 * 256 + ((size_t)i * 3 + 1) * 256 + j] = v;
        img[(size_t)300 * 256 + ((size_t)i * 3 + 2) * 256 + j] = v;
    }
    {
        float l3[40];
        TEST_CHECK(ag_scorer_forward(s, img + (size_t)300 * 256, 4, 3, 16, 16, l3, NULL, &err) == 0, "%s", err.msg);
        TEST_CHECK(memcmp(l3, lg, sizeof l3) == 0, "gray replicated to RGB and converted back scores as gray");
    }
    /* bad input */
    TEST_CHECK(ag_scorer_forward(s, img, 2, 2, 16, 16, lg, NULL, &err) != 0 && strstr(err.msg, "channels"), "2 channels refused: %s", err.msg);
    TEST_CHECK(ag_scorer_forward(s, img, 2, 1, 0, 16, lg, NULL, &err) != 0 && strstr(err.msg, "size"), "empty images refused: %s", err.msg);
    TEST_CHECK(ag_scorer_inception_score(s, img, 5, 1, 16, 16, 10, &m, &sd, &err) != 0, "fewer images than splits refused");
    img[7] = NAN;
    TEST_CHECK(ag_scorer_forward(s, img, 2, 1, 16, 16, lg, NULL, &err) != 0 && strstr(err.msg, "NaN"), "NaN refused: %s", err.msg);
    ag_fid_stats_free(&sa); ag_fid_stats_free(&sb);
    TEST_CHECK(ag_fid_stats_init(&sa, 2048, &err) == 0, "stats");
    TEST_CHECK(ag_scorer_fid_stats_add(s, &sa, img + 256 * 10, 2, 1, 16, 16, &err) != 0 && strstr(err.msg, "2048"), "wrong stats dimension refused: %s", err.msg);
    ag_fid_stats_free(&sa);
    free(lg); free(fb); free(img);
    ag_scorer_free(s);
    golden_close(&g);
    TEST_CHECK(!bad, "the scorer differs from PyTorch");
    return 0;
}

/* save -> ag_scorer_load -> same logits; ag_classifier_load; files that are neither kind */
static int test_classifier_files(void) {
    golden g; ag_error err; ag_classifier net, back; ag_scorer *s, *s2; float l1[30], l2[30]; const ag_array *a; ag_array_list junk;
    int64_t shp[1] = { 4 }; float four[4] = { 1, 2, 3, 4 }; FILE *f;
    memset(&g, 0, sizeof g); memset(&junk, 0, sizeof junk);
    TEST_CHECK(golden_open(&g, "classifier") == 0, "golden");
    TEST_CHECK(ag_classifier_init(&net, 1, 16, 10, NULL, &err) == 0 && cls_load_golden_weights(&net, &g, 0, &err) == 0, "%s", err.msg);
    TEST_CHECK(ag_classifier_save("build/test_classifier.safetensors", &net, "unit-test", "\"test_accuracy\":\"0.5\"", &err) == 0, "%s", err.msg);
    TEST_CHECK(ag_classifier_load("build/test_classifier.safetensors", &back, &err) == 0, "%s", err.msg);
    TEST_CHECK(back.in_size == 16 && back.in_channels == 1 && back.num_classes == 10 && !strcmp(back.dataset, "unit-test"), "metadata round trip");
    s = ag_scorer_load("build/test_classifier.safetensors", &err);
    TEST_CHECK(s != NULL, "%s", err.msg);
    s2 = ag_scorer_from_classifier(&net, &err);
    TEST_CHECK(s2 != NULL, "%s", err.msg);
    a = ag_array_list_find(&g.arrays, "score_a_u8");
    TEST_CHECK(ag_scorer_forward_u8(s, (const unsigned char *)a->data, 3, 16, 16, 1, l1, NULL, &err) == 0, "%s", err.msg);
    TEST_CHECK(ag_scorer_forward_u8(s2, (const unsigned char *)a->data, 3, 16, 16, 1, l2, NULL, &err) == 0, "%s", err.msg);
    TEST_CHECK(memcmp(l1, l2, sizeof l1) == 0, "loaded weights score as the originals");
    ag_scorer_free(s); ag_scorer_free(s2); ag_classifier_free(&back);
    /* a safetensors file that is neither kind; a missing file; a classifier with a wrong shape */
    TEST_CHECK(ag_array_list_add(&junk, "something.weight", AG_DTYPE_F32, 1, shp, four, &err) == 0, "%s", err.msg);
    TEST_CHECK(ag_safetensors_write("build/test_junk.safetensors", &junk, NULL, &err) == 0, "%s", err.msg);
    s = ag_scorer_load("build/test_junk.safetensors", &err);
    TEST_CHECK(s == NULL && strstr(err.msg, "neither") && strstr(err.msg, "test_junk"), "neither kind refused: %s", err.msg);
    TEST_CHECK(ag_scorer_load("build/no_such_file.safetensors", &err) == NULL && strstr(err.msg, "no_such_file"), "missing file: %s", err.msg);
    TEST_CHECK(ag_safetensors_write("build/test_junk.safetensors", &junk,
                                    "{\"format\":\"autogan.h classifier 1\",\"in_channels\":\"1\",\"in_size\":\"16\",\"num_classes\":\"10\",\"feature_dim\":\"256\"}", &err) == 0, "%s", err.msg);
    TEST_CHECK(ag_scorer_load("build/test_junk.safetensors", &err) == NULL && strstr(err.msg, "test_junk"), "classifier metadata without its tensors: %s", err.msg);
    memset(&back, 0x5a, sizeof back);
    TEST_CHECK(ag_classifier_load("build/test_junk.safetensors", &back, &err) != 0 && back.in_size == 0x5a5a5a5a, "a failed load leaves the struct alone");
    TEST_CHECK(ag_safetensors_write("build/test_junk.safetensors", &junk,
                                    "{\"format\":\"autogan.h classifier 1\",\"in_channels\":\"2\",\"in_size\":\"16\",\"num_classes\":\"10\",\"feature_dim\":\"256\"}", &err) == 0, "%s", err.msg);
    TEST_CHECK(ag_scorer_load("build/test_junk.safetensors", &err) == NULL && strstr(err.msg, "input channels"), "2 channels in metadata: %s", err.msg);
    f = fopen("build/test_junk.safetensors", "wb"); fputs("not a file format", f); fclose(f);
    TEST_CHECK(ag_scorer_load("build/test_junk.safetensors", &err) == NULL, "garbage refused");
    remove("build/test_junk.safetensors"); remove("build/test_classifier.safetensors");
    ag_array_list_free(&junk);
    ag_classifier_free(&net);
    golden_close(&g);
    return 0;
}

/* Inception through the scorer: the suite's deterministic weights, written as .safetensors */
static int test_scorer_inception(void) {
    ag_array_list sd; ag_error err; ag_scorer *s; ag_inception *net; unsigned char u8[2 * 24 * 24]; float *x, *f1, *f2, *l1, *l2, *img;
    size_t per = (size_t)3 * 299 * 299; int i, j;
    memset(&sd, 0, sizeof sd);
    TEST_CHECK(inception_random_weights(&sd, &err) == 0, "%s", err.msg);
    TEST_CHECK(ag_safetensors_write("build/test_scorer_inception.safetensors", &sd, NULL, &err) == 0, "%s", err.msg);
    net = ag_inception_from_arrays(&sd, &err);
    ag_array_list_free(&sd);
    TEST_CHECK(net != NULL, "%s", err.msg);
    s = ag_scorer_load("build/test_scorer_inception.safetensors", &err);
    remove("build/test_scorer_inception.safetensors");
    TEST_CHECK(s != NULL, "%s", err.msg);
    TEST_CHECK(!strcmp(ag_scorer_kind(s), "inception") && ag_scorer_num_classes(s) == 1008 && ag_scorer_feature_dim(s) == 2048 &&
               ag_scorer_input_size(s) == 299, "inception properties");
    ag_scorer_set_threads(s, 2); ag_inception_set_threads(net, 2);
    for (i = 0; i < 2 * 24 * 24; i++) u8[i] = (unsigned char)((i * 37 + (i / 24) * 11) & 255);
    x = (float *)malloc(per * 2 * sizeof(float)); img = (float *)malloc((size_t)24 * 24 * 3 * 2 * sizeof(float));
    f1 = (float *)malloc(2 * 2048 * sizeof(float)); f2 = (float *)malloc(2 * 2048 * sizeof(float));
    l1 = (float *)malloc(2 * 1008 * sizeof(float)); l2 = (float *)malloc(2 * 1008 * sizeof(float));
    for (i = 0; i < 2; i++) {   /* gray replicated to RGB, TF-exact preprocessing */
        for (j = 0; j < 24 * 24; j++) img[j * 3] = img[j * 3 + 1] = img[j * 3 + 2] = 0.0f;
        {
            unsigned char rgb[24 * 24 * 3];
            for (j = 0; j < 24 * 24; j++) rgb[j * 3] = rgb[j * 3 + 1] = rgb[j * 3 + 2] = u8[i * 576 + j];
            ag_inception_preprocess_tf(rgb, 24, 24, x + (size_t)i * per);
        }
    }
    /* one image each way (Inception costs ~6 GFLOP an image): the second image is checked
       through the uint8 path, the first through float NCHW images that quantise to u8 */
    TEST_CHECK(ag_inception_forward(net, x, 2, f1, l1, 0, &err) == 0, "%s", err.msg);
    for (i = 0; i < 576; i++) img[i] = ((float)u8[i] + 0.5f) / 127.5f - 1.0f;
    TEST_CHECK(ag_scorer_forward(s, img, 1, 1, 24, 24, l2, f2, &err) == 0, "%s", err.msg);
    TEST_CHECK(memcmp(f1, f2, 2048 * sizeof(float)) == 0 && memcmp(l1, l2, 1008 * sizeof(float)) == 0,
               "the scorer equals ag_inception_forward bit for bit");
    TEST_CHECK(ag_scorer_forward_u8(s, u8 + 576, 1, 24, 24, 1, l2, f2, &err) == 0 && memcmp(l1 + 1008, l2, 1008 * sizeof(float)) == 0 &&
               memcmp(f1 + 2048, f2, 2048 * sizeof(float)) == 0, "uint8 path");
    TEST_CHECK(ag_scorer_forward(s, img, 1, 4, 24, 24, l2, NULL, &err) != 0 && strstr(err.msg, "channels"), "4 channels refused: %s", err.msg);
    free(x); free(img); free(f1); free(f2); free(l1); free(l2);
    ag_scorer_free(s); ag_inception_free(net);
    return 0;
}

#if defined(__unix__) || defined(__APPLE__)
/* build/score --classifier end to end: gray uint8 .npy, RGB 20x20 .npy (resized), statistics */
static int test_classifier_score_cli(void) {
    golden g; ag_error err; ag_classifier net; ag_ctx *ctx; const ag_array *a, *b, *ta; ag_array arr; int64_t targets[3];
    double is, sd, fid, want_is, want_fid;
    memset(&g, 0, sizeof g);
    TEST_CHECK(system("mkdir -p build/cli") == 0, "mkdir");
    TEST_CHECK(golden_open(&g, "classifier") == 0, "golden");
    ctx = ag_ctx_create(1, NULL);
    TEST_CHECK(ag_classifier_init(&net, 1, 16, 10, NULL, &err) == 0 && cls_load_golden_weights(&net, &g, 0, &err) == 0, "%s", err.msg);
    ta = ag_array_list_find(&g.arrays, "targets"); memcpy(targets, ta->data, sizeof targets);
    net.training = 1;
    TEST_CHECK(ag_classifier_forward(ctx, &net, golden_tensor(ctx, &g, "x", 0), NULL) != NULL, "%s", ag_ctx_error(ctx));
    TEST_CHECK(ag_classifier_save("build/cli/cls.safetensors", &net, "golden", NULL, &err) == 0, "%s", err.msg);
    ag_classifier_free(&net); ag_ctx_free(ctx);
    a = ag_array_list_find(&g.arrays, "score_a_u8"); b = ag_array_list_find(&g.arrays, "score_b_u8");
    memset(&arr, 0, sizeof arr);
    arr.dtype = AG_DTYPE_U8; arr.ndim = 3; arr.shape[0] = 300; arr.shape[1] = arr.shape[2] = 16; arr.data = a->data; arr.nbytes = a->nbytes;
    TEST_CHECK(ag_npy_write("build/cli/cls_a.npy", &arr, &err) == 0, "%s", err.msg);     /* N x H x W gray */
    arr.ndim = 4; arr.shape[1] = arr.shape[2] = 20; arr.shape[3] = 3; arr.data = b->data; arr.nbytes = b->nbytes;
    TEST_CHECK(ag_npy_write("build/cli/cls_b.npy", &arr, &err) == 0, "%s", err.msg);     /* N x 20 x 20 x 3 */
    want_is = ((const double *)ag_array_list_find(&g.arrays, "score_is")->data)[0];
    want_fid = ((const double *)ag_array_list_find(&g.arrays, "score_fid")->data)[0];
    TEST_CHECK(run_score("--classifier build/cli/cls.safetensors --save_stats build/cli/cls_b_stats.npz build/cli/cls_b.npy", &is, &sd, &fid) == 0, "score B");
    TEST_CHECK(run_score("--classifier build/cli/cls.safetensors --splits 10 --stats build/cli/cls_b_stats.npz build/cli/cls_a.npy", &is, &sd, &fid) == 0, "score A");
    TEST_CHECK(fabs(is - want_is) <= 1e-5 * want_is, "classifier IS %.6f, NumPy %.6f", is, want_is);
    TEST_CHECK(fabs(fid - want_fid) <= 1e-3 * want_fid, "classifier FID %.6f, NumPy %.6f", fid, want_fid);
    /* the wrong kind of weights and statistics of the wrong dimension fail */
    TEST_CHECK(run_score("--inception build/cli/cls.safetensors build/cli/cls_a.npy", &is, &sd, &fid) != 0, "--inception with a classifier file must fail");
    golden_close(&g);
    remove("build/cli/cls.safetensors"); remove("build/cli/cls_a.npy"); remove("build/cli/cls_b.npy"); remove("build/cli/cls_b_stats.npz");
    return 0;
}
#endif

const test_case tests_classifier[] = {
    { "classifier_vs_pytorch (train forward, grads, BN stats, eval, 3 channels)", test_classifier_vs_pytorch },
    { "classifier_scorer (resize, L, IS and FID vs NumPy, bad input)", test_classifier_scorer },
    { "classifier_files (save/load, neither kind, bad metadata)", test_classifier_files },
    { "scorer_inception (equals ag_inception_forward)", test_scorer_inception },
#if defined(__unix__) || defined(__APPLE__)
    { "classifier_score_cli (build/score --classifier end to end)", test_classifier_score_cli },
#endif
    { NULL, NULL }
};
