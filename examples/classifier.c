/* classifier.c - train the compact classifier (the fast reward and the default scorer).

   build/classifier --dataset fashion-mnist [--data_path P] [--out W.safetensors]
                    [--save_stats STATS.npz] [--epochs 10] [--batch_size 64] [--lr 2e-3]
                    [--img_size 32] [--channels 1] [--random_seed 0] [--threads 1]
   build/classifier --eval W.safetensors --dataset fashion-mnist [--data_path P] [--save_stats S.npz]

   Trains ag_classifier (autogan.h, section "The compact classifier") on the labelled train
   split, images resized to --img_size at load as the GANs see them (PIL bilinear) and
   normalised as the data loader does; Adam (beta 0.9, 0.999) with a cosine learning-rate
   decay to zero over all steps, BatchNorm, random horizontal flips (--flip 0 turns them off).
   Prints the loss and accuracy as it goes and the test accuracy after every epoch; writes the
   weights after every epoch (to a temporary name, then renamed), with the data set, epochs
   and test accuracy in the .safetensors metadata. --save_stats then writes the FID statistics
   (`mu`, `sigma`, float64, as the Inception ones) of the classifier's features over the train
   split, the reference for "classifier FID". The same flags and thread count give the same
   bits (--threads 1, the default; 0 is the OpenMP default). --out and --save_stats are
   checked writable, and the data set name and path known, before anything is loaded (exit 2
   naming the flag and the path). */
#define AUTOGAN_IMPLEMENTATION
#include "../autogan.h"
#include "cli.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif

typedef struct options {
    const char *dataset, *data_path, *out, *stats, *eval;
    int epochs, batch, img_size, channels, threads, flip, print_freq;
    double lr, beta1, beta2;
    unsigned long long seed;
} options;

static double now_seconds(void) {
#ifdef _OPENMP
    return omp_get_wtime();
#else
    return (double)time(NULL);
#endif
}

static void usage(FILE *f) {
    fprintf(f,
        "usage: classifier --dataset NAME [options]      train and save the compact classifier\n"
        "       classifier --eval W.safetensors --dataset NAME [--data_path P] [--save_stats S.npz]\n"
        "                      test accuracy of W (and the train split's feature statistics)\n"
        "  --dataset NAME      fashion-mnist | mnist | cifar10 | stl10 | folder (labelled splits only)\n"
        "  --data_path P       where the data set is (default: the data set's default place)\n"
        "  --out PATH          weights (.safetensors; default fashion-mnist-classifier.safetensors)\n"
        "  --save_stats PATH   FID statistics of the train split's features (.npz: mu, sigma)\n"
        "  --epochs N (10)     --batch_size N (64)     --lr X (0.002, cosine decay to 0)\n"
        "  --beta1 X (0.9)     --beta2 X (0.999)       --flip 0|1 (1: random horizontal flips)\n"
        "  --img_size N (32)   --channels N (1)        --random_seed N (0)\n"
        "  --threads N (1; 0: the OpenMP default; at most 256)   --print_freq N (100 steps)\n");
}

static void parse_args(int argc, char **argv, options *o) {
    cli c;
    memset(o, 0, sizeof *o);
    o->epochs = 10; o->batch = 64; o->img_size = 32; o->channels = 1; o->threads = 1; o->flip = 1; o->print_freq = 100;
    o->lr = 2e-3; o->beta1 = 0.9; o->beta2 = 0.999; o->seed = 0;
    o->out = "fashion-mnist-classifier.safetensors";
    cli_start(&c, "classifier", argc, argv);
    while (cli_next(&c)) {
        if (cli_is(&c, "-h") || cli_is(&c, "--help")) { usage(stdout); exit(0); }
        else if (cli_is(&c, "--dataset")) o->dataset = cli_str(&c);
        else if (cli_is(&c, "--data_path")) o->data_path = cli_str(&c);
        else if (cli_is(&c, "--out")) o->out = cli_str(&c);
        else if (cli_is(&c, "--save_stats")) o->stats = cli_str(&c);
        else if (cli_is(&c, "--eval")) o->eval = cli_str(&c);
        else if (cli_is(&c, "--epochs")) o->epochs = (int)cli_int(&c, 1, 1000);
        else if (cli_is(&c, "--batch_size")) o->batch = (int)cli_int(&c, 2, 4096);
        else if (cli_is(&c, "--img_size")) o->img_size = (int)cli_int(&c, 8, 512);
        else if (cli_is(&c, "--channels")) { o->channels = (int)cli_int(&c, 1, 3); if (o->channels == 2) cli_fail(&c, "--channels must be 1 or 3"); }
        else if (cli_is(&c, "--threads")) o->threads = cli_threads(&c);
        else if (cli_is(&c, "--flip")) o->flip = (int)cli_int(&c, 0, 1);
        else if (cli_is(&c, "--print_freq")) o->print_freq = (int)cli_int(&c, 1, 1000000);
        else if (cli_is(&c, "--random_seed")) o->seed = cli_u64(&c);
        else if (cli_is(&c, "--lr")) o->lr = cli_float(&c, 1e-8, 10.0);
        else if (cli_is(&c, "--beta1")) o->beta1 = cli_float(&c, 0.0, 0.999999);
        else if (cli_is(&c, "--beta2")) o->beta2 = cli_float(&c, 0.0, 0.999999);
        else cli_unknown(&c);
    }
    if (!o->dataset) cli_fail(&c, "--dataset is required (e.g. --dataset fashion-mnist)");
    cli_dataset(&c, o->dataset, o->data_path);
    /* the outputs, before hours of training: exit 2 naming the flag and the path */
    {
        ag_error err;
        if (!o->eval && ag_file_check_writable(o->out, &err)) { fprintf(stderr, "classifier: --out: %s\n", err.msg); exit(2); }
        if (o->stats && ag_file_check_writable(o->stats, &err)) { fprintf(stderr, "classifier: --save_stats: %s\n", err.msg); exit(2); }
    }
}

/* test accuracy of net (eval mode) on ds; returns -1 on error */
static int evaluate(ag_scorer *sc, const ag_dataset *ds, double *acc) {
    ag_error err; int i0, chunk = 500, K = ag_scorer_num_classes(sc), correct = 0;
    float *lg = (float *)malloc((size_t)chunk * K * sizeof(float));
    if (!lg) { fprintf(stderr, "classifier: out of memory\n"); return -1; }
    for (i0 = 0; i0 < ds->count; i0 += chunk) {
        int n = ds->count - i0 < chunk ? ds->count - i0 : chunk, i, k;
        size_t per = (size_t)ds->height * ds->width * ds->channels;
        if (ag_scorer_forward_u8(sc, ds->pixels + (size_t)i0 * per, n, ds->height, ds->width, ds->channels, lg, NULL, &err)) {
            fprintf(stderr, "classifier: %s\n", err.msg); free(lg); return -1;
        }
        for (i = 0; i < n; i++) {
            int best = 0; const float *l = lg + (size_t)i * K;
            for (k = 1; k < K; k++) if (l[k] > l[best]) best = k;
            correct += best == ds->labels[i0 + i];
        }
    }
    free(lg);
    *acc = (double)correct / ds->count;
    return 0;
}

/* FID statistics of the classifier's features over every image of ds */
static int save_stats(ag_scorer *sc, const ag_dataset *ds, const char *path) {
    ag_error err; ag_fid_stats st; int i0, chunk = 1000, F = ag_scorer_feature_dim(sc), rc = -1;
    size_t per = (size_t)ds->height * ds->width * ds->channels; float *f = (float *)malloc((size_t)chunk * F * sizeof(float));
    ag_array_list l; int64_t s1[1], s2[2];
    memset(&l, 0, sizeof l);
    if (!f || ag_fid_stats_init(&st, F, &err)) { fprintf(stderr, "classifier: out of memory\n"); free(f); return -1; }
    for (i0 = 0; i0 < ds->count; i0 += chunk) {
        int n = ds->count - i0 < chunk ? ds->count - i0 : chunk;
        if (ag_scorer_forward_u8(sc, ds->pixels + (size_t)i0 * per, n, ds->height, ds->width, ds->channels, NULL, f, &err)) goto done;
        if (ag_fid_stats_add(&st, f, n, &err)) goto done;
    }
    if (ag_fid_stats_finish(&st, &err)) goto done;
    s1[0] = F; s2[0] = s2[1] = F;
    if (ag_array_list_add(&l, "mu", AG_DTYPE_F64, 1, s1, st.mu, &err) || ag_array_list_add(&l, "sigma", AG_DTYPE_F64, 2, s2, st.sigma, &err) ||
        ag_npz_write(path, &l, &err)) goto done;
    rc = 0;
done:
    if (rc) fprintf(stderr, "classifier: %s: %s\n", path, err.msg);
    ag_array_list_free(&l); ag_fid_stats_free(&st); free(f);
    return rc;
}

/* in-place horizontal flip of one C x H x W image */
static void flip_image(float *x, int c, int h, int w) {
    int k, y, i;
    for (k = 0; k < c * h; k++) for (y = 0, i = w - 1; y < i; y++, i--) { float t = x[(size_t)k * w + y]; x[(size_t)k * w + y] = x[(size_t)k * w + i]; x[(size_t)k * w + i] = t; }
    (void)y;
}

int main(int argc, char **argv) {
    options o; ag_error err; ag_dataset train, test; ag_ctx *ctx = NULL; ag_classifier net; ag_adam opt; ag_data_loader loader;
    ag_scorer *sc = NULL; ag_rng data_rng, flip_rng; float *x = NULL; int *labels = NULL; int64_t *targets = NULL;
    int epoch, steps_per_epoch, rc = 1; int64_t step = 0, total_steps; double t_start, acc = 0.0;
    memset(&train, 0, sizeof train); memset(&test, 0, sizeof test); memset(&net, 0, sizeof net);
    memset(&opt, 0, sizeof opt); memset(&loader, 0, sizeof loader);
    parse_args(argc, argv, &o);

    if (o.eval) {
        if (!(sc = ag_scorer_load(o.eval, &err))) { fprintf(stderr, "classifier: %s\n", err.msg); return 1; }
        if (strcmp(ag_scorer_kind(sc), "classifier")) { fprintf(stderr, "classifier: %s holds Inception weights, not a classifier\n", o.eval); ag_scorer_free(sc); return 1; }
        ag_scorer_set_threads(sc, o.threads);
        if (ag_dataset_load(&test, o.dataset, o.data_path, "test", 0, &err)) { fprintf(stderr, "classifier: %s\n", err.msg); ag_scorer_free(sc); return 1; }
        if (evaluate(sc, &test, &acc)) { ag_scorer_free(sc); ag_dataset_free(&test); return 1; }
        printf("%s on %s test (%d images as stored, %dx%dx%d): accuracy %.2f%%\n", o.eval, o.dataset, test.count, test.height, test.width,
               test.channels, 100.0 * acc);
        ag_dataset_free(&test);
        if (o.stats) {   /* the train-set statistics exactly as a training run ends with them */
            double t0 = now_seconds(); int rc2;
            if (ag_dataset_load(&train, o.dataset, o.data_path, "train", ag_scorer_input_size(sc), &err)) { fprintf(stderr, "classifier: %s\n", err.msg); ag_scorer_free(sc); return 1; }
            rc2 = save_stats(sc, &train, o.stats);
            if (!rc2) printf("saved %s (train-set feature statistics, %d images, %.1f s)\n", o.stats, train.count, now_seconds() - t0);
            ag_dataset_free(&train); ag_scorer_free(sc);
            return rc2 ? 1 : 0;
        }
        ag_scorer_free(sc);
        return 0;
    }

    printf("classifier: loading %s (train and test, resized to %d)\n", o.dataset, o.img_size);
    fflush(stdout);
    if (ag_dataset_load(&train, o.dataset, o.data_path, "train", o.img_size, &err) ||
        ag_dataset_load(&test, o.dataset, o.data_path, "test", o.img_size, &err)) { fprintf(stderr, "classifier: %s\n", err.msg); goto done; }
    if (train.num_classes < 2 || !train.labels) { fprintf(stderr, "classifier: %s has no labels to train on\n", o.dataset); goto done; }
    {
        int i;
        for (i = 0; i < train.count; i++) if (train.labels[i] < 0 || train.labels[i] >= train.num_classes) {
            fprintf(stderr, "classifier: %s train image %d is unlabelled or its label %d is out of range\n", o.dataset, i, train.labels[i]); goto done;
        }
    }
    if (!(ctx = ag_ctx_create(o.seed, &err))) { fprintf(stderr, "classifier: %s\n", err.msg); goto done; }
    ag_ctx_set_threads(ctx, o.threads);
    if (ag_classifier_init(&net, o.channels, o.img_size, train.num_classes, ag_ctx_rng(ctx), &err) ||
        ag_adam_init(&opt, &net.params, (float)o.lr, (float)o.beta1, (float)o.beta2, 1e-8f, &err) ||
        ag_data_loader_init(&loader, &train, o.batch, o.channels, &err)) { fprintf(stderr, "classifier: %s\n", err.msg); goto done; }
    snprintf(net.dataset, sizeof net.dataset, "%s", o.dataset);
    ag_rng_seed(&data_rng, o.seed, 1); ag_rng_seed(&flip_rng, o.seed, 2);
    x = (float *)malloc((size_t)o.batch * o.channels * o.img_size * o.img_size * sizeof(float));
    labels = (int *)malloc((size_t)o.batch * sizeof(int)); targets = (int64_t *)malloc((size_t)o.batch * sizeof(int64_t));
    if (!x || !labels || !targets) { fprintf(stderr, "classifier: out of memory\n"); goto done; }
    steps_per_epoch = (train.count + o.batch - 1) / o.batch;
    total_steps = (int64_t)steps_per_epoch * o.epochs;
    printf("classifier: %d train / %d test images, %dx%dx%d, %d classes; %lu parameters; %d epochs of %d steps (batch %d), %d thread(s), kernels %s\n",
           train.count, test.count, o.channels, o.img_size, o.img_size, train.num_classes, (unsigned long)ag_params_count(&net.params),
           o.epochs, steps_per_epoch, o.batch, ag_ctx_threads(ctx), ag_ctx_cpu_name(ctx));
    fflush(stdout);
    t_start = now_seconds();
    for (epoch = 1; epoch <= o.epochs; epoch++) {
        double loss_sum = 0.0, t_epoch = now_seconds(); int64_t seen = 0, correct = 0; int s;
        char extra[256];
        net.training = 1;
        for (s = 0; s < steps_per_epoch; s++) {
            int n = ag_data_loader_next(&loader, &data_rng, x, labels), i, k, shape[4]; ag_tensor *xt, *lg, *loss;
            size_t per = (size_t)o.channels * o.img_size * o.img_size;
            /* cosine decay from lr to 0 over every step */
            opt.lr = (float)(o.lr * 0.5 * (1.0 + cos(3.14159265358979323846 * (double)step / (double)total_steps)));
            for (i = 0; i < n; i++) {
                targets[i] = labels[i];
                if (o.flip && (ag_rng_u32(&flip_rng) & 1u)) flip_image(x + (size_t)i * per, o.channels, o.img_size, o.img_size);
            }
            ag_ctx_reset(ctx);
            shape[0] = n; shape[1] = o.channels; shape[2] = shape[3] = o.img_size;
            xt = ag_tensor_from(ctx, 4, shape, x);
            lg = ag_classifier_forward(ctx, &net, xt, NULL);
            loss = ag_cross_entropy(ctx, lg, targets);
            if (!loss) { fprintf(stderr, "classifier: %s\n", ag_ctx_error(ctx)); goto done; }
            if (!isfinite(loss->data[0])) { fprintf(stderr, "classifier: the loss became %f at step %lld (try a smaller --lr)\n", loss->data[0], (long long)step); goto done; }
            for (i = 0; i < n; i++) {
                int best = 0; const float *l = lg->data + (size_t)i * train.num_classes;
                for (k = 1; k < train.num_classes; k++) if (l[k] > l[best]) best = k;
                correct += best == labels[i];
            }
            loss_sum += (double)loss->data[0] * n; seen += n;
            ag_params_zero_grad(&net.params);
            if (ag_backward(ctx, loss)) { fprintf(stderr, "classifier: %s\n", ag_ctx_error(ctx)); goto done; }
            ag_adam_step(&opt);
            step++;
            if ((s + 1) % o.print_freq == 0 || s + 1 == steps_per_epoch) {
                double el = now_seconds() - t_start, rate = el > 0 ? step / el : 0.0;
                printf("epoch %d/%d step %d/%d  loss %.4f  train acc %.2f%%  lr %.2e  %.1f img/s  eta %.0f s\n", epoch, o.epochs, s + 1,
                       steps_per_epoch, loss_sum / seen, 100.0 * correct / seen, opt.lr, rate * o.batch,
                       rate > 0 ? (total_steps - step) / rate : 0.0);
                fflush(stdout);
            }
        }
        net.training = 0;
        ag_scorer_free(sc);
        if (!(sc = ag_scorer_from_classifier(&net, &err))) { fprintf(stderr, "classifier: %s\n", err.msg); goto done; }
        ag_scorer_set_threads(sc, o.threads);
        if (evaluate(sc, &test, &acc)) goto done;
        printf("epoch %d/%d done in %.1f s: train loss %.4f, train acc %.2f%%, TEST ACCURACY %.2f%% (%d images)\n", epoch, o.epochs,
               now_seconds() - t_epoch, loss_sum / seen, 100.0 * correct / seen, 100.0 * acc, test.count);
        snprintf(extra, sizeof extra, "\"epochs\":\"%d\",\"test_accuracy\":\"%.4f\",\"batch_size\":\"%d\",\"lr\":\"%g\",\"random_seed\":\"%llu\",\"threads\":\"%d\"",
                 epoch, acc, o.batch, o.lr, o.seed, ag_ctx_threads(ctx));
        if (ag_classifier_save(o.out, &net, o.dataset, extra, &err)) { fprintf(stderr, "classifier: %s: %s\n", o.out, err.msg); goto done; }
        printf("saved %s\n", o.out);
        fflush(stdout);
    }
    printf("classifier: trained in %.1f s; test accuracy %.2f%%\n", now_seconds() - t_start, 100.0 * acc);
    if (o.stats) {
        double t0 = now_seconds();
        if (save_stats(sc, &train, o.stats)) goto done;
        printf("saved %s (train-set feature statistics, %d images, %.1f s)\n", o.stats, train.count, now_seconds() - t0);
    }
    rc = 0;
done:
    free(x); free(labels); free(targets);
    ag_scorer_free(sc);
    ag_data_loader_free(&loader);
    ag_adam_free(&opt);
    ag_classifier_free(&net);
    ag_ctx_free(ctx);
    ag_dataset_free(&train); ag_dataset_free(&test);
    return rc;
}
