/* train.c - train a found AutoGAN architecture: the C form of the authors' train.py /
   train_derived.py (functions.train, validate, LinearLrDecay, the EMA generator).

   build/train --gen_model autogan_cifar10_a --dataset fashion-mnist --gf_dim 64 --df_dim 64 \
               --gen_bs 64 --dis_bs 32 --n_critic 5 --max_iter 3000 --val_freq 1 \
               --classifier weights/fashion-mnist-classifier.safetensors --exp_name fmnist_a

   As the reference: epochs of the data loader (shuffled, last batch partial), one D step per
   batch and a G step whenever the D-step counter is a multiple of --n_critic (before the
   step); --max_iter G steps give ceil(max_iter * n_critic / batches per epoch) epochs, else
   --max_epoch x n_critic epochs. After every G step the EMA (0.999) of G's parameters is
   updated (BatchNorm buffers stay live); --lr_decay decays both rates linearly to 0 over
   max_iter x n_critic D steps, set at G steps. Every --val_freq epochs (not epoch 0) and at
   the last epoch the EMA generator in eval mode makes --num_eval_imgs images, scored with
   IS and FID (--inception W --fid_stat S, or --classifier W [--fid_stat S]; without
   --fid_stat the classifier's statistics of the training set are computed once); the 25
   fixed z give 5x5 grids of the live and the EMA generator.
   Files, all written to a temporary name and renamed (logs/EXP/ from --exp_name):
     Model/checkpoint.safetensors       every epoch: gen_state_dict, avg_gen_state_dict,
                                        dis_state_dict, gen_optimizer, dis_optimizer, epoch,
                                        best_fid (the reference's checkpoint.pth, as safetensors)
     Model/checkpoint_best.safetensors  the checkpoint of the lowest FID so far
     train.csv, eval.csv, eval.png      losses; epoch, G step, IS, FID, seconds; IS/FID plot
     Samples/grid_{live,ema}_eNNNN.png  the 5x5 grids (and grid_{live,ema}.png, the latest)
   --load_path EXP_DIR or CHECKPOINT resumes (the checkpoint names its model; no other flag is
   needed, a conflicting one is an error) and continues to the same bits as an uninterrupted
   run with the same thread count. --export OUT.safetensors with --load_path writes the EMA
   generator alone (what build/sample --load_path reads) and exits. */
#define AUTOGAN_IMPLEMENTATION
#include "../autogan.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include "cli.h"
#if defined(__unix__) || defined(__APPLE__)
#include <sys/stat.h>
#include <dirent.h>
#define TRAIN_HAVE_DIRENT 1
#endif

typedef struct options {
    const char *gen_model, *dataset, *data_path, *load_path, *exp_name, *log_dir, *inception, *classifier, *fid_stat, *export_path, *rescore;
    int arch[AG_ARCH_MAX], arch_len;
    int gf, df, latent, bottom_width, channels, gen_bs, dis_bs, n_critic, max_iter, max_epoch, val_freq, print_freq;
    int num_eval, eval_bs, threads, spectral_norm, lr_decay, splits, val_freq_iter;
    double g_lr, d_lr, beta1, beta2, ema;
    unsigned long long seed;
    /* which model flags were given (a resumed checkpoint must agree with them) */
    int set_gf, set_df, set_latent, set_bw, set_channels, set_sn;
} options;

static void usage(void) {
    fprintf(stderr,
        "usage: train (--gen_model NAME | --arch T1 ... T14) --exp_name NAME [options]\n"
        "       train --load_path EXP_DIR|CHECKPOINT [options]   (resume)\n"
        "  --gen_model NAME   autogan_cifar10_a | autogan_cifar10_b | autogan_cifar10_c\n"
        "  --arch TOKENS      14 tokens, e.g. 1 0 1 1 1 0 0 1 1 1 0 1 0 3 (pre-activation bilinear/nearest cells: the\n"
        "                     derived model's names; any other arch: the shared generator set to it)\n"
        "  --gf_dim N (256)  --df_dim N (128)  --latent_dim N (128)  --bottom_width N (4: 32x32)\n"
        "  --dataset NAME (fashion-mnist) cifar10|stl10|mnist|fashion-mnist|folder  --data_path P\n"
        "  --channels N       images' channels (1 for (fashion-)mnist, 3 otherwise)\n"
        "  --gen_bs N (64)  --dis_bs N (64)  --n_critic N (1)  --max_iter N (G steps)  --max_epoch N (200)\n"
        "  --g_lr X --d_lr X (2e-4)  --beta1 X (0.0)  --beta2 X (0.9)  --lr_decay  --ema X (0.999)\n"
        "  --d_spectral_norm True|False (True)  --random_seed N (12345)  --threads N\n"
        "  --val_freq N (20 epochs)  --val_freq_iter N (also every N G steps, with a checkpoint; 0 = off)\n"
        "  --print_freq N (100 D steps)  --num_eval_imgs N (50000)  --eval_batch_size N (100)\n"
        "  --inception W.pth --fid_stat S.npz | --classifier W.safetensors [--fid_stat S.npz]\n"
        "  --exp_name NAME  --log_dir DIR (logs)  --load_path (--resume) EXP_DIR|CHECKPOINT\n"
        "  --export OUT.safetensors   with --load_path: write its EMA generator and exit\n"
        "  --rescore EXP_DIR  score every EXP_DIR/Model/avg_gen_g*.safetensors (the EMA generator of each evaluation)\n"
        "                     with the scorer given; rewrites EXP_DIR/eval.csv and eval.png\n");
}

static void parse_args(int argc, char **argv, options *o) {
    cli c;
    memset(o, 0, sizeof *o);
    o->gf = 256; o->df = 128; o->latent = 128; o->bottom_width = 4; o->channels = 0; o->gen_bs = 64; o->dis_bs = 64;
    o->n_critic = 1; o->max_epoch = 200; o->val_freq = 20; o->print_freq = 100; o->num_eval = 50000; o->eval_bs = 100;
    o->g_lr = o->d_lr = 2e-4; o->beta1 = 0.0; o->beta2 = 0.9; o->ema = 0.999; o->seed = 12345; o->spectral_norm = 1;
    o->dataset = "fashion-mnist"; o->log_dir = "logs"; o->splits = 10;
    cli_start(&c, "train", argc, argv);
    while (cli_next(&c)) {
        if (cli_is(&c, "--arch")) {
            o->arch_len = 0;
            if (!cli_more(&c)) cli_fail(&c, "--arch needs 14 tokens");
            do {
                if (o->arch_len == AG_ARCH_MAX) cli_fail(&c, "--arch takes %d tokens", AG_ARCH_MAX);
                o->arch[o->arch_len++] = (int)cli_int(&c, 0, 99);
            } while (cli_more(&c));
        } else if (cli_is(&c, "--gen_model")) o->gen_model = cli_str(&c);
        else if (cli_is(&c, "--dis_model")) (void)cli_str(&c);   /* the reference names D too; ours follows G */
        else if (cli_is(&c, "--gf_dim")) { o->gf = (int)cli_int(&c, 1, 4096); o->set_gf = 1; }
        else if (cli_is(&c, "--df_dim")) { o->df = (int)cli_int(&c, 1, 4096); o->set_df = 1; }
        else if (cli_is(&c, "--latent_dim")) { o->latent = (int)cli_int(&c, 1, 4096); o->set_latent = 1; }
        else if (cli_is(&c, "--bottom_width")) { o->bottom_width = (int)cli_int(&c, 1, 64); o->set_bw = 1; }
        else if (cli_is(&c, "--channels")) { o->channels = (int)cli_int(&c, 1, 3); o->set_channels = 1; }
        else if (cli_is(&c, "--img_size")) (void)cli_int(&c, 1, 4096);   /* follows from bottom_width, as in the reference */
        else if (cli_is(&c, "--gen_bs") || cli_is(&c, "--gen_batch_size") || cli_is(&c, "-gen_bs")) o->gen_bs = (int)cli_int(&c, 2, 65536);
        else if (cli_is(&c, "--dis_bs") || cli_is(&c, "--dis_batch_size") || cli_is(&c, "-dis_bs")) o->dis_bs = (int)cli_int(&c, 2, 65536);
        else if (cli_is(&c, "--n_critic")) o->n_critic = (int)cli_int(&c, 1, 1000);
        else if (cli_is(&c, "--max_iter")) o->max_iter = (int)cli_int(&c, 1, 100000000);
        else if (cli_is(&c, "--max_epoch")) o->max_epoch = (int)cli_int(&c, 1, 1000000);
        else if (cli_is(&c, "--g_lr")) o->g_lr = cli_float(&c, 0.0, 1.0);
        else if (cli_is(&c, "--d_lr")) o->d_lr = cli_float(&c, 0.0, 1.0);
        else if (cli_is(&c, "--beta1")) o->beta1 = cli_float(&c, 0.0, 0.999999);
        else if (cli_is(&c, "--beta2")) o->beta2 = cli_float(&c, 0.0, 0.999999);
        else if (cli_is(&c, "--lr_decay")) o->lr_decay = 1;
        else if (cli_is(&c, "--ema")) o->ema = cli_float(&c, 0.0, 0.999999);
        else if (cli_is(&c, "--d_spectral_norm")) {
            const char *v = cli_str(&c);
            if (!strcmp(v, "True") || !strcmp(v, "true") || !strcmp(v, "1")) o->spectral_norm = 1;
            else if (!strcmp(v, "False") || !strcmp(v, "false") || !strcmp(v, "0")) o->spectral_norm = 0;
            else cli_fail(&c, "--d_spectral_norm takes True or False, got '%s'", v);
            o->set_sn = 1;
        } else if (cli_is(&c, "--g_spectral_norm")) {
            const char *v = cli_str(&c);
            if (strcmp(v, "False") && strcmp(v, "false") && strcmp(v, "0")) cli_fail(&c, "--g_spectral_norm: only False (the released models' setting) is supported");
        } else if (cli_is(&c, "--init_type")) {
            const char *v = cli_str(&c);
            if (strcmp(v, "xavier_uniform")) cli_fail(&c, "--init_type: only xavier_uniform (the released scripts' setting) is supported, got '%s'", v);
        } else if (cli_is(&c, "--random_seed") || cli_is(&c, "--seed")) o->seed = cli_u64(&c);
        else if (cli_is(&c, "--threads")) o->threads = cli_threads(&c);
        else if (cli_is(&c, "--dataset")) o->dataset = cli_str(&c);
        else if (cli_is(&c, "--data_path")) o->data_path = cli_str(&c);
        else if (cli_is(&c, "--val_freq")) o->val_freq = (int)cli_int(&c, 1, 1000000);
        else if (cli_is(&c, "--val_freq_iter")) o->val_freq_iter = (int)cli_int(&c, 1, 100000000);
        else if (cli_is(&c, "--print_freq")) o->print_freq = (int)cli_int(&c, 1, 1000000000);
        else if (cli_is(&c, "--num_eval_imgs")) o->num_eval = (int)cli_int(&c, 10, 10000000);
        else if (cli_is(&c, "--eval_batch_size")) o->eval_bs = (int)cli_int(&c, 1, 4096);
        else if (cli_is(&c, "--inception")) o->inception = cli_str(&c);
        else if (cli_is(&c, "--classifier")) o->classifier = cli_str(&c);
        else if (cli_is(&c, "--fid_stat")) o->fid_stat = cli_str(&c);
        else if (cli_is(&c, "--exp_name")) o->exp_name = cli_str(&c);
        else if (cli_is(&c, "--log_dir")) o->log_dir = cli_str(&c);
        else if (cli_is(&c, "--load_path") || cli_is(&c, "--resume")) o->load_path = cli_str(&c);
        else if (cli_is(&c, "--export")) o->export_path = cli_str(&c);
        else if (cli_is(&c, "--rescore")) o->rescore = cli_str(&c);
        else if (cli_is(&c, "-h") || cli_is(&c, "--help")) { usage(); exit(0); }
        else cli_unknown(&c);
    }
    if (o->inception && o->classifier) cli_fail(&c, "give --inception or --classifier, not both");
    if (o->inception && !o->fid_stat) cli_fail(&c, "--inception needs --fid_stat S.npz (the data set's Inception statistics)");
    if (o->fid_stat && !o->inception && !o->classifier) cli_fail(&c, "--fid_stat needs --inception W or --classifier W");
    if (o->export_path && !o->load_path) cli_fail(&c, "--export needs --load_path CHECKPOINT");
    if (o->rescore && !o->inception && !o->classifier) cli_fail(&c, "--rescore needs --classifier W or --inception W");
    if (!o->load_path && !o->rescore) {
        if (!o->gen_model && !o->arch_len) cli_fail(&c, "give --gen_model NAME or --arch (14 tokens), or --load_path to resume");
        if (!o->exp_name) cli_fail(&c, "--exp_name NAME is required (logs go to %s/NAME)", o->log_dir);
    }
    if (o->arch_len && o->arch_len != AG_ARCH_MAX) cli_fail(&c, "--arch has %d tokens; a derived model has 14", o->arch_len);
    {
        int i;
        for (i = 0; i < o->arch_len; i++)
            if (o->arch[i] >= ag_arch_token_choices(i))
                cli_fail(&c, "--arch token %d is %d; it must be 0 to %d", i + 1, o->arch[i], ag_arch_token_choices(i) - 1);
    }
    if (o->num_eval < o->splits) cli_fail(&c, "--num_eval_imgs %d is fewer than the %d Inception-score splits", o->num_eval, o->splits);
}

/* ---- small file helpers ---- */
static int make_dir(const char *path) {
#if defined(__unix__) || defined(__APPLE__)
    struct stat st;
    if (stat(path, &st) == 0) return S_ISDIR(st.st_mode) ? 0 : -1;
    return mkdir(path, 0777);
#else
    (void)path; return 0;
#endif
}
static int is_dir(const char *path) {
#if defined(__unix__) || defined(__APPLE__)
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
#else
    (void)path; return 0;
#endif
}
static void join(char *out, size_t cap, const char *a, const char *b) {
    if (snprintf(out, cap, "%s/%s", a, b) >= (int)cap) { fprintf(stderr, "train: path too long: %s/%s\n", a, b); exit(2); }
}

/* a text file kept in memory and rewritten whole (temp file, fsync, rename) on every change */
typedef struct textlog { char *p; size_t n, cap; char path[1100]; } textlog;
static int textlog_add(textlog *t, const char *line) {
    size_t k = strlen(line);
    if (t->n + k + 1 > t->cap) {
        size_t cap = (t->cap ? t->cap * 2 : 4096) + k; char *q = (char *)realloc(t->p, cap);
        if (!q) return -1;
        t->p = q; t->cap = cap;
    }
    memcpy(t->p + t->n, line, k + 1); t->n += k;
    return 0;
}
static int textlog_write(textlog *t) {
    ag_error err;
    if (ag_write_file_atomic(t->path, t->p ? t->p : "", t->n, &err)) { fprintf(stderr, "train: %s\n", err.msg); return -1; }
    return 0;
}
/* on resume: keep the header and the rows whose G step (column col, 0-based) is at most max_g */
static int textlog_load_upto(textlog *t, const char *header, int col, long long max_g) {
    unsigned char *bytes = NULL; size_t len = 0, i, start = 0; ag_error err; int line = 0;
    t->n = 0;
    if (textlog_add(t, header)) return -1;
    if (ag_read_file(t->path, &bytes, &len, &err)) return 0;   /* no earlier log: start a new one */
    for (i = 0; i < len; i++) if (bytes[i] == '\n') {
        char row[1024]; size_t k = i - start; const char *p; int c; long long g = -1;
        if (k < sizeof row - 2 && line++) {
            memcpy(row, bytes + start, k); row[k] = '\n'; row[k + 1] = 0;
            for (p = row, c = 0; c < col && p; c++) { p = strchr(p, ','); if (p) p++; }
            if (p && sscanf(p, "%lld", &g) == 1 && g <= max_g && textlog_add(t, row)) { free(bytes); return -1; }
        }
        start = i + 1;
    }
    free(bytes);
    return 0;
}

/* 1 when every cell of a 14-token architecture fits the derived models' Cell */
static int derived_cells(const int *arch) {
    int k;
    for (k = 0; k < 3; k++) {
        const int *a = arch + (k == 0 ? 0 : 4 + 5 * (k - 1));
        if (a[0] != AG_CONV_PRE || a[2] == AG_UP_DECONV) return 0;
    }
    return 1;
}

/* The training split of --dataset. A fresh clone without Debian's dataset-fashion-mnist still
   trains: on the 10,000 test images shipped in examples/data, and it says so (once). */
static int load_train_split(ag_dataset *ds, const char *dataset, const char *data_path, int resize_to, ag_error *err) {
    static int told;
    ag_error e2;
    if (ag_dataset_load(ds, dataset, data_path, "train", resize_to, err) == 0) return 0;
    if (data_path || strcmp(dataset, "fashion-mnist") || ag_dataset_load(ds, dataset, NULL, "test", resize_to, &e2)) return -1;
    if (!told++) printf("data: fashion-mnist's train split is not installed (apt install dataset-fashion-mnist for 60,000 images);\n"
                        "      training on the 10,000 test images shipped in %s\n", AG_DATA_DIR);
    return 0;
}

/* ---- evaluation ---- */
static unsigned char to_u8(float v) {   /* the reference's mul_(127.5).add_(127.5).clamp_(0, 255).to(uint8) */
    volatile float t = v * 127.5f; float x = t + 127.5f;
    if (!(x > 0.0f)) return 0;
    if (x > 255.0f) x = 255.0f;
    return (unsigned char)x;
}
/* G in eval mode on z [n, latent] -> out [n, C, R, R] */
static int generate(ag_ctx *ctx, ag_generator *G, const float *z, int n, float *out) {
    ag_tensor *zt, *y; int shape[2]; int was = G->training;
    shape[0] = n; shape[1] = G->latent_dim;
    ag_ctx_reset(ctx);
    ag_ctx_set_grad_enabled(ctx, 0);
    G->training = 0;
    zt = ag_tensor_from(ctx, 2, shape, z);
    y = ag_generator_forward(ctx, G, zt);
    G->training = was;
    ag_ctx_set_grad_enabled(ctx, 1);
    if (!y) { fprintf(stderr, "train: generating images failed: %s\n", ag_ctx_error(ctx)); return -1; }
    memcpy(out, y->data, y->size * sizeof(float));
    ag_ctx_reset(ctx);
    return 0;
}
/* the 25 fixed z as a 5x5 grid, 2-pixel gaps */
static int save_grid(ag_ctx *ctx, ag_generator *G, const float *fixed_z, const char *path) {
    int R = ag_stage_resolution(G->stage, G->bottom_width), C = G->out_channels, cols = 5, W = cols * (R + 2) + 2, i, c, y, x, rc;
    float *img = (float *)malloc((size_t)25 * C * R * R * sizeof(float)); unsigned char *pix = (unsigned char *)calloc((size_t)W * W * C, 1);
    ag_error err;
    if (!img || !pix) { free(img); free(pix); fprintf(stderr, "train: out of memory\n"); return -1; }
    if (generate(ctx, G, fixed_z, 25, img)) { free(img); free(pix); return -1; }
    for (i = 0; i < 25; i++) {
        int ox = 2 + (i % cols) * (R + 2), oy = 2 + (i / cols) * (R + 2);
        for (y = 0; y < R; y++) for (x = 0; x < R; x++) for (c = 0; c < C; c++)
            pix[((size_t)(oy + y) * W + ox + x) * C + c] = to_u8(img[(((size_t)i * C + c) * R + y) * R + x]);
    }
    rc = ag_png_write(path, pix, W, W, C, &err);
    if (rc) fprintf(stderr, "train: %s\n", err.msg);
    free(img); free(pix);
    return rc;
}
/* IS and FID of n images of the EMA generator (already swapped in), z from its own stream */
static int evaluate(ag_ctx *ctx, ag_generator *G, ag_scorer *sc, const ag_fid_stats *ref, int n, int bs, int splits,
                    unsigned long long seed, int epoch, double *is_mean, double *is_std, double *fid) {
    int R = ag_stage_resolution(G->stage, G->bottom_width), C = G->out_channels, done = 0, rc = -1, k = ag_scorer_num_classes(sc);
    float *z = (float *)malloc((size_t)bs * G->latent_dim * sizeof(float)), *img = (float *)malloc((size_t)bs * C * R * R * sizeof(float));
    float *logits = (float *)malloc((size_t)n * k * sizeof(float)), *feat = (float *)malloc((size_t)bs * ag_scorer_feature_dim(sc) * sizeof(float));
    ag_fid_stats st; ag_error err; ag_rng zr;
    memset(&st, 0, sizeof st);
    ag_rng_seed(&zr, seed, 1000 + (unsigned long long)epoch);   /* evaluation noise never touches the training stream */
    if (!z || !img || !logits || !feat || ag_fid_stats_init(&st, ag_scorer_feature_dim(sc), &err)) { fprintf(stderr, "train: out of memory for evaluation\n"); goto out; }
    while (done < n) {
        int m = n - done < bs ? n - done : bs;
        ag_rng_fill_normal(&zr, z, (size_t)m * G->latent_dim, 0.0f, 1.0f);
        if (generate(ctx, G, z, m, img)) goto out;
        if (ag_scorer_forward(sc, img, m, C, R, R, logits + (size_t)done * k, feat, &err) || ag_fid_stats_add(&st, feat, m, &err)) {
            fprintf(stderr, "train: scoring failed: %s\n", err.msg); goto out;
        }
        done += m;
    }
    if (ag_fid_stats_finish(&st, &err)) { fprintf(stderr, "train: %s\n", err.msg); goto out; }
    if (ag_inception_score(logits, n, k, splits, is_mean, is_std, &err)) { fprintf(stderr, "train: IS: %s\n", err.msg); goto out; }
    if (ag_fid(st.mu, st.sigma, ref->mu, ref->sigma, st.dim, fid, &err)) { fprintf(stderr, "train: FID: %s\n", err.msg); goto out; }
    rc = 0;
out:
    free(z); free(img); free(logits); free(feat); ag_fid_stats_free(&st);
    return rc;
}
/* the classifier's statistics of the training images, when no --fid_stat is given */
static int train_set_stats(ag_scorer *sc, const ag_dataset *ds, ag_fid_stats *st) {
    int i, chunk = 500, F = ag_scorer_feature_dim(sc); float *f = (float *)malloc((size_t)chunk * F * sizeof(float)); ag_error err;
    if (!f || ag_fid_stats_init(st, F, &err)) { free(f); fprintf(stderr, "train: out of memory\n"); return -1; }
    for (i = 0; i < ds->count; i += chunk) {
        int n = ds->count - i < chunk ? ds->count - i : chunk;
        if (ag_scorer_forward_u8(sc, ds->pixels + (size_t)i * ds->height * ds->width * ds->channels, n, ds->height, ds->width, ds->channels, NULL, f, &err) ||
            ag_fid_stats_add(st, f, n, &err)) { fprintf(stderr, "train: train-set statistics: %s\n", err.msg); free(f); return -1; }
    }
    free(f);
    if (ag_fid_stats_finish(st, &err)) { fprintf(stderr, "train: %s\n", err.msg); return -1; }
    return 0;
}

static int plot_eval(const char *path, const double *x, const double *is, const double *fid, int n, const char *scorer) {
    ag_plot_series s[2]; char l1[64], l2[64]; ag_error err;
    memset(s, 0, sizeof s);
    snprintf(l1, sizeof l1, "IS (%s) of the EMA generator", scorer);
    snprintf(l2, sizeof l2, "FID (%s) of the EMA generator", scorer);
    s[0].label = l1; s[0].x = x; s[0].y = is; s[0].n = n; s[0].rgb[0] = 30; s[0].rgb[1] = 90; s[0].rgb[2] = 200;
    s[1].label = l2; s[1].x = x; s[1].y = fid; s[1].n = n; s[1].rgb[0] = 200; s[1].rgb[1] = 40; s[1].rgb[2] = 40;
    if (ag_plot_png(path, "G step", s, 2, &err)) { fprintf(stderr, "train: %s\n", err.msg); return -1; }
    return 0;
}

/* was the flag (or an alias) on the command line? A resumed run takes every other setting
   from the checkpoint, so `build/train --load_path X` continues X as it was started. */
static int given(int argc, char **argv, const char *a, const char *b) {
    int i;
    for (i = 1; i < argc; i++) if (!strcmp(argv[i], a) || (b && !strcmp(argv[i], b))) return 1;
    return 0;
}
static void meta_int(const char *meta, const char *key, int *out, int is_given) {
    char v[64]; int x;
    if (!is_given && !ag_json_get_string(meta, key, v, sizeof v) && sscanf(v, "%d", &x) == 1) *out = x;
}
static void meta_double(const char *meta, const char *key, double *out, int is_given) {
    char v[64]; double x;
    if (!is_given && !ag_json_get_string(meta, key, v, sizeof v) && sscanf(v, "%lf", &x) == 1) *out = x;
}
/* strings live as long as the program: they are copied once, here */
static void meta_str(const char *meta, const char *key, const char **out, int is_given) {
    char v[1100];
    if (is_given || ag_json_get_string(meta, key, v, sizeof v)) return;
    if (!v[0]) { *out = NULL; return; }
    { char *d = (char *)malloc(strlen(v) + 1); if (d) { strcpy(d, v); *out = d; } }
}
static int has_json_specials(const char *v) { return v && strpbrk(v, "\"\\") != NULL; }

static int meta_get(const char *meta, const char *key, char *v, size_t cap, const char *path) {
    if (ag_json_get_string(meta, key, v, cap) || !v[0]) { fprintf(stderr, "train: %s: checkpoint metadata '%s' missing\n", path, key); return -1; }
    return 0;
}

#ifdef TRAIN_HAVE_DIRENT
static int cmp_ll(const void *a, const void *b) { long long x = *(const long long *)a, y = *(const long long *)b; return x < y ? -1 : x > y; }
#endif
/* --rescore: the curve of an earlier run (trained without a scorer, or scored with another one),
   from the EMA generators kept at each evaluation */
static int rescore(const options *o) {
#ifdef TRAIN_HAVE_DIRENT
    char dir[1100], path[1300], line[256], best[1300]; DIR *d; struct dirent *e; long long *steps = NULL, g; int n = 0, cap = 0, i, rc = 1;
    ag_scorer *sc = NULL; ag_fid_stats ref; ag_error err; ag_ctx *ctx = NULL; textlog elog; double *x = NULL, *is = NULL, *fid = NULL, best_fid = 1e300;
    memset(&ref, 0, sizeof ref); memset(&elog, 0, sizeof elog); best[0] = 0;
    join(dir, sizeof dir, o->rescore, "Model");
    if (!(d = opendir(dir))) { fprintf(stderr, "train: --rescore %s: no Model directory (%s)\n", o->rescore, dir); return 2; }
    while ((e = readdir(d)) != NULL) {
        char tail[64];
        if (sscanf(e->d_name, "avg_gen_g%lld%63s", &g, tail) == 2 && !strcmp(tail, ".safetensors")) {
            if (n == cap) { long long *q = (long long *)realloc(steps, (cap = cap ? 2 * cap : 64) * sizeof *q); if (!q) { closedir(d); free(steps); return 1; } steps = q; }
            steps[n++] = g;
        }
    }
    closedir(d);
    if (!n) { fprintf(stderr, "train: --rescore: no avg_gen_g*.safetensors in %s\n", dir); free(steps); return 2; }
    qsort(steps, (size_t)n, sizeof *steps, cmp_ll);
    if (!(sc = ag_scorer_load(o->inception ? o->inception : o->classifier, &err))) { fprintf(stderr, "train: %s\n", err.msg); goto out; }
    if (o->threads > 0) ag_scorer_set_threads(sc, o->threads);
    if (o->fid_stat) { if (ag_fid_stats_load(o->fid_stat, &ref, &err)) { fprintf(stderr, "train: %s\n", err.msg); goto out; } }
    else {
        ag_dataset ds; memset(&ds, 0, sizeof ds);
        if (load_train_split(&ds, o->dataset, o->data_path, 0, &err)) { fprintf(stderr, "train: --dataset %s: %s\n", o->dataset, err.msg); goto out; }
        printf("train: no --fid_stat: the scorer's statistics of the %d %s training images ...\n", ds.count, o->dataset); fflush(stdout);
        i = train_set_stats(sc, &ds, &ref); ag_dataset_free(&ds);
        if (i) goto out;
    }
    if (ref.dim != ag_scorer_feature_dim(sc)) { fprintf(stderr, "train: statistics of dimension %d; the scorer's features have %d\n", ref.dim, ag_scorer_feature_dim(sc)); goto out; }
    if (!(ctx = ag_ctx_create(o->seed, &err))) { fprintf(stderr, "train: %s\n", err.msg); goto out; }
    if (o->threads > 0) ag_ctx_set_threads(ctx, o->threads);
    x = (double *)malloc((size_t)n * 3 * sizeof(double));
    if (!x) goto out;
    is = x + n; fid = is + n;
    join(elog.path, sizeof elog.path, o->rescore, "eval.csv");
    if (textlog_add(&elog, "epoch,g_step,is_mean,is_std,fid,eval_seconds,train_seconds\n")) goto out;
    for (i = 0; i < n; i++) {
        ag_generator G; ag_generator_spec spec; double m, s, f, t0 = ag_wall_seconds(); int epoch = -1; char v[64]; ag_array_list l; char *meta = NULL;
        snprintf(path, sizeof path, "%s/avg_gen_g%06lld.safetensors", dir, steps[i]);
        if (ag_generator_spec_read(path, &spec, &err) || ag_generator_init_spec(&G, &spec, NULL, &err)) { fprintf(stderr, "train: %s\n", err.msg); goto out; }
        if (ag_generator_load(&G, path, NULL, 0, &err)) { fprintf(stderr, "train: %s\n", err.msg); ag_generator_free(&G); goto out; }
        if (!ag_safetensors_read(path, &l, &meta, &err)) { if (!ag_json_get_string(meta, "epoch", v, sizeof v)) sscanf(v, "%d", &epoch); ag_array_list_free(&l); AG_FREE(meta); }
        if (evaluate(ctx, &G, sc, &ref, o->num_eval, o->eval_bs, o->splits, o->seed, (int)(steps[i] & 0x7fffffff), &m, &s, &f)) { ag_generator_free(&G); goto out; }
        ag_generator_free(&G);
        printf("G step %lld: IS (%s) %.4f +- %.4f, FID %.4f (%.1f s)\n", steps[i], ag_scorer_kind(sc), m, s, f, ag_wall_seconds() - t0); fflush(stdout);
        snprintf(line, sizeof line, "%d,%lld,%.6f,%.6f,%.6f,%.1f,\n", epoch, steps[i], m, s, f, ag_wall_seconds() - t0);
        if (textlog_add(&elog, line) || textlog_write(&elog)) goto out;
        x[i] = (double)steps[i]; is[i] = m; fid[i] = f;
        if (f < best_fid) { best_fid = f; snprintf(best, sizeof best, "%s", path); }
        join(path, sizeof path, o->rescore, "eval.png");
        if (plot_eval(path, x, is, fid, i + 1, ag_scorer_kind(sc))) goto out;
    }
    printf("best FID %.4f: %s\n", best_fid, best);
    rc = 0;
out:
    free(steps); free(x); free(elog.p); ag_fid_stats_free(&ref); if (sc) ag_scorer_free(sc); if (ctx) ag_ctx_free(ctx);
    return rc;
#else
    (void)o; fprintf(stderr, "train: --rescore needs a POSIX directory listing\n"); return 2;
#endif
}

int main(int argc, char **argv) {
    options o; ag_ctx *ctx = NULL; ag_generator G; ag_discriminator D; ag_gan gan; ag_ema ema; ag_error err; ag_rng init_rng, zrng, data_rng;
    ag_dataset ds; ag_data_loader loader; ag_scorer *sc = NULL; ag_fid_stats ref; ag_generator_spec spec;
    char ckpt_path[1100], exp_dir[1024], model_dir[1100], samples_dir[1100], best_path[1100], plot_path[1100], path[1200], line[1024], extra[4096];
    textlog tlog, elog; float *real = NULL, *fixed_z = NULL; double best_fid = 1e4, t_start, t_train = 0, t_eval = 0, *ex = NULL, *eis = NULL, *efid = NULL;
    int max_eval = 0, rc = 1, res, start_epoch = 0, start_batch = 0, max_epoch, loader_len, epoch, i, n_eval = 0, have_models = 0, have_ema = 0, have_loader = 0;
    long long g_steps = 0, g_steps_start, decay_end, last_eval_g = -1;
    float d_loss = 0, g_loss = 0; char *meta = NULL;

    memset(&ds, 0, sizeof ds); memset(&loader, 0, sizeof loader); memset(&ref, 0, sizeof ref); memset(&tlog, 0, sizeof tlog); memset(&elog, 0, sizeof elog);
    memset(&spec, 0, sizeof spec); memset(&G, 0, sizeof G); memset(&D, 0, sizeof D);
    parse_args(argc, argv, &o);
    if (o.rescore) return rescore(&o);

    /* ---- the model: from the flags, or named by the checkpoint ---- */
    ckpt_path[0] = 0; exp_dir[0] = 0;
    if (o.load_path) {
        ag_gan_checkpoint_info info; char want[256], got[256]; ag_generator_spec flags;
        if (is_dir(o.load_path)) { snprintf(ckpt_path, sizeof ckpt_path, "%s/Model/checkpoint.safetensors", o.load_path); snprintf(exp_dir, sizeof exp_dir, "%s", o.load_path); }
        else snprintf(ckpt_path, sizeof ckpt_path, "%s", o.load_path);
        if (ag_gan_checkpoint_read_info(ckpt_path, &info, &err) || ag_generator_spec_read(ckpt_path, &spec, &err)) { fprintf(stderr, "train: --load_path: %s\n", err.msg); return 2; }
        if (!info.train_layout) { fprintf(stderr, "train: --load_path: %s is not a build/train checkpoint (no epoch, best FID, loader state)\n", ckpt_path); return 2; }
        {
            ag_array_list l0; char *m0 = NULL, v[64]; unsigned long long seed;
            if (ag_safetensors_read(ckpt_path, &l0, &m0, &err)) { fprintf(stderr, "train: --load_path: %s\n", err.msg); return 2; }
            ag_array_list_free(&l0);
            if (given(argc, argv, "--dataset", NULL) && !ag_json_get_string(m0, "dataset", v, sizeof v) && strcmp(v, o.dataset)) {
                fprintf(stderr, "train: --load_path %s was trained on %s; --dataset %s would change the data under it (leave --dataset out)\n", ckpt_path, v, o.dataset);
                AG_FREE(m0); return 2;
            }
            meta_str(m0, "dataset", &o.dataset, given(argc, argv, "--dataset", NULL));
            meta_str(m0, "data_path", &o.data_path, given(argc, argv, "--data_path", NULL));
            meta_int(m0, "gen_bs", &o.gen_bs, given(argc, argv, "--gen_bs", "--gen_batch_size") || given(argc, argv, "-gen_bs", NULL));
            meta_int(m0, "dis_bs", &o.dis_bs, given(argc, argv, "--dis_bs", "--dis_batch_size") || given(argc, argv, "-dis_bs", NULL));
            meta_int(m0, "n_critic", &o.n_critic, given(argc, argv, "--n_critic", NULL));
            meta_int(m0, "max_iter", &o.max_iter, given(argc, argv, "--max_iter", NULL));
            meta_int(m0, "max_epoch", &o.max_epoch, given(argc, argv, "--max_epoch", NULL));
            meta_int(m0, "lr_decay", &o.lr_decay, given(argc, argv, "--lr_decay", NULL));
            meta_double(m0, "g_lr", &o.g_lr, given(argc, argv, "--g_lr", NULL));
            meta_double(m0, "d_lr", &o.d_lr, given(argc, argv, "--d_lr", NULL));
            meta_double(m0, "beta1", &o.beta1, given(argc, argv, "--beta1", NULL));
            meta_double(m0, "beta2", &o.beta2, given(argc, argv, "--beta2", NULL));
            meta_double(m0, "ema_decay", &o.ema, given(argc, argv, "--ema", NULL));
            meta_int(m0, "val_freq", &o.val_freq, given(argc, argv, "--val_freq", NULL));
            meta_int(m0, "val_freq_iter", &o.val_freq_iter, given(argc, argv, "--val_freq_iter", NULL));
            meta_int(m0, "print_freq", &o.print_freq, given(argc, argv, "--print_freq", NULL));
            meta_int(m0, "num_eval_imgs", &o.num_eval, given(argc, argv, "--num_eval_imgs", NULL));
            meta_int(m0, "eval_batch_size", &o.eval_bs, given(argc, argv, "--eval_batch_size", NULL));
            if (!o.inception && !o.classifier) {   /* the scorer of the run, unless another is named */
                meta_str(m0, "inception", &o.inception, 0); meta_str(m0, "classifier", &o.classifier, 0);
                if (!given(argc, argv, "--fid_stat", NULL)) meta_str(m0, "fid_stat", &o.fid_stat, 0);
            }
            if (!given(argc, argv, "--random_seed", "--seed") && !ag_json_get_string(m0, "seed", v, sizeof v) && sscanf(v, "%llu", &seed) == 1) o.seed = seed;
            AG_FREE(m0);
        }
        /* the flags given must describe the same model */
        flags = spec;
        if (o.gen_model) { snprintf(flags.gen_model, sizeof flags.gen_model, "%s", o.gen_model); if (ag_derived_arch(o.gen_model, flags.arch)) { fprintf(stderr, "train: --gen_model '%s': unknown model\n", o.gen_model); return 2; } }
        if (o.arch_len) { memcpy(flags.arch, o.arch, sizeof flags.arch); if (!o.gen_model) snprintf(flags.gen_model, sizeof flags.gen_model, "derived"); }
        if (o.set_gf) flags.gf = o.gf;
        if (o.set_latent) flags.latent_dim = o.latent;
        if (o.set_bw) flags.bottom_width = o.bottom_width;
        if (o.set_channels) flags.channels = o.channels;
        if (memcmp(flags.arch, spec.arch, sizeof spec.arch) || flags.gf != spec.gf || flags.latent_dim != spec.latent_dim ||
            flags.bottom_width != spec.bottom_width || flags.channels != spec.channels || (o.set_df && o.df != spec.df) ||
            (o.set_sn && o.spectral_norm != spec.d_spectral_norm)) {
            ag_generator_spec_describe(&flags, want, sizeof want); ag_generator_spec_describe(&spec, got, sizeof got);
            fprintf(stderr, "train: --load_path %s holds %s, df %d; the flags ask for %s", ckpt_path, got, spec.df, want);
            if (o.set_df) fprintf(stderr, ", df %d", o.df);
            fprintf(stderr, ". Leave the model flags out to continue the checkpoint's model; nothing was written.\n");
            return 2;
        }
        o.gf = spec.gf; o.latent = spec.latent_dim; o.bottom_width = spec.bottom_width; o.channels = spec.channels;
        if (spec.df > 0) o.df = spec.df;
        if (spec.d_spectral_norm >= 0) o.spectral_norm = spec.d_spectral_norm;
    } else {
        if (o.gen_model) {
            if (ag_derived_arch(o.gen_model, spec.arch)) { fprintf(stderr, "train: --gen_model '%s': unknown model (autogan_cifar10_a, autogan_cifar10_b, autogan_cifar10_c)\n", o.gen_model); return 2; }
            if (o.arch_len && memcmp(o.arch, spec.arch, sizeof spec.arch)) { fprintf(stderr, "train: --arch does not match --gen_model %s\n", o.gen_model); return 2; }
        } else memcpy(spec.arch, o.arch, sizeof spec.arch);
        spec.stage = 2; spec.arch_len = AG_ARCH_MAX;
        /* the derived models' cells are pre-activation with bilinear or nearest upsampling; any
           other architecture (post-activation, deconv: e.g. what a search finds) trains as the
           shared generator set to it, the same function with the reference's search names */
        spec.derived = o.gen_model != NULL || derived_cells(spec.arch);
        snprintf(spec.gen_model, sizeof spec.gen_model, "%s", o.gen_model ? o.gen_model : spec.derived ? "derived" : "shared_gan");
        if (!o.channels) o.channels = (!strcmp(o.dataset, "mnist") || !strcmp(o.dataset, "fashion-mnist")) ? 1 : 3;
        spec.gf = o.gf; spec.latent_dim = o.latent; spec.bottom_width = o.bottom_width; spec.channels = o.channels;
    }
    res = ag_stage_resolution(2, o.bottom_width);
    ag_rng_seed(&init_rng, o.seed, 1);
    if (ag_generator_init_spec(&G, &spec, &init_rng, &err)) { fprintf(stderr, "train: %s\n", err.msg); return 2; }
    if (ag_discriminator_init(&D, o.df, o.channels, o.spectral_norm, &init_rng, &err) || ag_discriminator_set_stage(&D, 2, &err) ||
        ag_gan_init(&gan, &G, &D, o.dis_bs, o.gen_bs, o.n_critic, (float)o.g_lr, (float)o.d_lr, (float)o.beta1, (float)o.beta2, &err) ||
        ag_ema_init(&ema, &G.params, (float)o.ema, &err)) { fprintf(stderr, "train: %s\n", err.msg); ag_generator_free(&G); return 2; }
    have_models = have_ema = 1;
    if (!(ctx = ag_ctx_create(o.seed, &err))) { fprintf(stderr, "train: %s\n", err.msg); goto done; }
    if (o.threads > 0) ag_ctx_set_threads(ctx, o.threads);
    ag_rng_seed(&data_rng, o.seed, 3);

    if (o.load_path) {
        char v[256]; unsigned long long a, b; unsigned bits;
        if (ag_gan_load(ckpt_path, &gan, &ema, ctx, &meta, &err)) { fprintf(stderr, "train: --load_path: %s\n", err.msg); rc = 2; goto done; }
        if (meta_get(meta, "epoch", v, sizeof v, ckpt_path) || sscanf(v, "%d", &start_epoch) != 1 ||
            meta_get(meta, "best_fid", v, sizeof v, ckpt_path) || sscanf(v, "%lf", &best_fid) != 1 ||
            meta_get(meta, "g_steps", v, sizeof v, ckpt_path) || sscanf(v, "%lld", &g_steps) != 1 ||
            meta_get(meta, "batch", v, sizeof v, ckpt_path) || sscanf(v, "%d", &start_batch) != 1 || start_batch < 0 ||
            meta_get(meta, "train_seconds", v, sizeof v, ckpt_path) || sscanf(v, "%lf", &t_train) != 1 ||
            meta_get(meta, "data_rng", v, sizeof v, ckpt_path) || sscanf(v, "%llx %llx", &a, &b) != 2) { rc = 2; goto done; }
        data_rng.state = a; data_rng.inc = b;
        if (!meta_get(meta, "g_lr_bits", v, sizeof v, ckpt_path) && sscanf(v, "%x", &bits) == 1) memcpy(&gan.opt_g.lr, &bits, 4); else { rc = 2; goto done; }
        if (!meta_get(meta, "d_lr_bits", v, sizeof v, ckpt_path) && sscanf(v, "%x", &bits) == 1) memcpy(&gan.opt_d.lr, &bits, 4); else { rc = 2; goto done; }
        if (!exp_dir[0]) {
            if (o.exp_name) join(exp_dir, sizeof exp_dir, o.log_dir, o.exp_name);
            else if (meta_get(meta, "exp_dir", exp_dir, sizeof exp_dir, ckpt_path)) { rc = 2; goto done; }
        }
    } else join(exp_dir, sizeof exp_dir, o.log_dir, o.exp_name);

    if (o.export_path) {   /* the EMA generator alone, for build/sample */
        char ex2[256];
        snprintf(ex2, sizeof ex2, "\"source\":\"%s\",\"epoch\":\"%d\",\"g_steps\":\"%lld\"", ckpt_path, start_epoch, g_steps);
        for (i = 0; ex2[i]; i++) if (ex2[i] == '\\') ex2[i] = '/';
        if (ag_generator_save_ema(o.export_path, &G, &ema, ex2, &err)) { fprintf(stderr, "train: --export: %s\n", err.msg); goto done; }
        printf("wrote %s: the EMA generator of %s (epoch %d, G step %lld)\n", o.export_path, ckpt_path, start_epoch, g_steps);
        rc = 0; goto done;
    }

    /* ---- outputs checked before any work ---- */
    if (has_json_specials(exp_dir) || has_json_specials(o.dataset) || has_json_specials(o.data_path) || has_json_specials(o.inception) ||
        has_json_specials(o.classifier) || has_json_specials(o.fid_stat)) { fprintf(stderr, "train: the log directory and data set name and the data/scorer paths may not hold '\"' or '\\' (they go into the checkpoint's JSON metadata)\n"); rc = 2; goto done; }
    join(model_dir, sizeof model_dir, exp_dir, "Model"); join(samples_dir, sizeof samples_dir, exp_dir, "Samples");
    if (make_dir(o.log_dir) && !o.load_path) { fprintf(stderr, "train: --log_dir %s: not a directory and cannot be created\n", o.log_dir); rc = 2; goto done; }
    if (make_dir(exp_dir) || make_dir(model_dir) || make_dir(samples_dir)) { fprintf(stderr, "train: %s: cannot create the log directories (Model, Samples)\n", exp_dir); rc = 2; goto done; }
    join(ckpt_path, sizeof ckpt_path, model_dir, "checkpoint.safetensors");
    join(best_path, sizeof best_path, model_dir, "checkpoint_best.safetensors");
    join(plot_path, sizeof plot_path, exp_dir, "eval.png");
    join(tlog.path, sizeof tlog.path, exp_dir, "train.csv"); join(elog.path, sizeof elog.path, exp_dir, "eval.csv");
    if (ag_file_check_writable(ckpt_path, &err) || ag_file_check_writable(tlog.path, &err)) { fprintf(stderr, "train: %s\n", err.msg); rc = 2; goto done; }

    /* ---- data and scorer ---- */
    if (load_train_split(&ds, o.dataset, o.data_path, res, &err)) { fprintf(stderr, "train: --dataset %s: %s\n", o.dataset, err.msg); rc = 2; goto done; }
    if (ag_data_loader_init(&loader, &ds, o.dis_bs, o.channels, &err)) { fprintf(stderr, "train: %s\n", err.msg); goto done; }
    have_loader = 1;
    if (o.load_path) {
        char v[256];
        if (meta_get(meta, "loader", v, sizeof v, o.load_path) || ag_data_loader_restore(&loader, v, &err)) { fprintf(stderr, "train: --load_path: %s\n", err.msg); rc = 2; goto done; }
    }
    if (o.inception || o.classifier) {
        double t0 = ag_wall_seconds();
        if (!(sc = ag_scorer_load(o.inception ? o.inception : o.classifier, &err))) { fprintf(stderr, "train: %s\n", err.msg); rc = 2; goto done; }
        if (o.threads > 0) ag_scorer_set_threads(sc, o.threads);
        if (o.inception && strcmp(ag_scorer_kind(sc), "inception")) { fprintf(stderr, "train: --inception %s is a %s\n", o.inception, ag_scorer_kind(sc)); rc = 2; goto done; }
        if (o.classifier && strcmp(ag_scorer_kind(sc), "classifier")) { fprintf(stderr, "train: --classifier %s is an %s network\n", o.classifier, ag_scorer_kind(sc)); rc = 2; goto done; }
        if (o.fid_stat) {
            if (ag_fid_stats_load(o.fid_stat, &ref, &err)) { fprintf(stderr, "train: %s\n", err.msg); rc = 2; goto done; }
            if (ref.dim != ag_scorer_feature_dim(sc)) { fprintf(stderr, "train: --fid_stat %s has dimension %d; the %s's features have %d\n", o.fid_stat, ref.dim, ag_scorer_kind(sc), ag_scorer_feature_dim(sc)); rc = 2; goto done; }
        } else {
            ag_dataset orig; int r2;   /* as loaded, not resized: the images the classifier was trained and its statistics made on */
            memset(&orig, 0, sizeof orig);
            printf("train: no --fid_stat: the %s's statistics of the %d training images ...\n", ag_scorer_kind(sc), ds.count); fflush(stdout);
            if (load_train_split(&orig, o.dataset, o.data_path, 0, &err)) { fprintf(stderr, "train: --dataset %s: %s\n", o.dataset, err.msg); goto done; }
            r2 = train_set_stats(sc, &orig, &ref);
            ag_dataset_free(&orig);
            if (r2) goto done;
            printf("train: statistics done in %.1f s\n", ag_wall_seconds() - t0);
        }
    }

    loader_len = (ds.count + o.dis_bs - 1) / o.dis_bs;
    if (o.max_iter) max_epoch = (int)(((long long)o.max_iter * o.n_critic + loader_len - 1) / loader_len);
    else max_epoch = o.max_epoch * o.n_critic;
    decay_end = o.max_iter ? (long long)o.max_iter * o.n_critic : (long long)max_epoch * loader_len;
    real = (float *)malloc((size_t)o.dis_bs * o.channels * res * res * sizeof(float));
    fixed_z = (float *)malloc((size_t)25 * o.latent * sizeof(float));
    max_eval = max_epoch + 2 + (o.val_freq_iter ? (int)((long long)max_epoch * loader_len / o.n_critic / o.val_freq_iter) + 2 : 0);
    ex = (double *)malloc((size_t)max_eval * 3 * sizeof(double));
    if (!real || !fixed_z || !ex) { fprintf(stderr, "train: out of memory\n"); goto done; }
    eis = ex + max_eval; efid = eis + max_eval;
    ag_rng_seed(&zrng, o.seed, 7);
    ag_rng_fill_normal(&zrng, fixed_z, (size_t)25 * o.latent, 0.0f, 1.0f);   /* drawn once: every grid shows the same 25 z */

    /* logs: a resumed run keeps the rows up to its checkpoint */
    if (textlog_load_upto(&tlog, "epoch,d_step,g_step,d_loss,g_loss,g_lr,d_lr,seconds\n", 2, o.load_path ? g_steps : -1) ||
        textlog_load_upto(&elog, "epoch,g_step,is_mean,is_std,fid,eval_seconds,train_seconds\n", 1, o.load_path ? g_steps : -1)) { fprintf(stderr, "train: out of memory\n"); goto done; }
    {   /* earlier evaluations back into the plot */
        const char *p = elog.p; int ep; long long gs; double m, s, f;
        while ((p = strchr(p, '\n')) && *++p) if (sscanf(p, "%d,%lld,%lf,%lf,%lf", &ep, &gs, &m, &s, &f) == 5 && n_eval < max_eval) { ex[n_eval] = (double)gs; eis[n_eval] = m; efid[n_eval] = f; n_eval++; }
    }
    if (textlog_write(&tlog) || textlog_write(&elog)) goto done;

    printf("train: %s | arch", spec.gen_model); for (i = 0; i < AG_ARCH_MAX; i++) printf(" %d", spec.arch[i]);
    printf(" | gf %d df %d latent %d | %dx%dx%d | G %zu params, D %zu params\n", o.gf, o.df, o.latent, o.channels, res, res,
           ag_params_count(&G.params), ag_params_count(&D.params));
    printf("train: %s, %d images, %d batches of %d per epoch | epochs %d..%d (max_iter %d x n_critic %d) | %s | %d threads, %s kernels | logs in %s\n",
           o.dataset, ds.count, loader_len, o.dis_bs, start_epoch, max_epoch, o.max_iter, o.n_critic,
           sc ? ag_scorer_kind(sc) : "no evaluation scorer (grids only)", ag_ctx_threads(ctx), ag_ctx_cpu_name(ctx), exp_dir);
    if (o.load_path) printf("resumed from %s: epoch %d, G step %lld, D step %lld, best FID %g\n", o.load_path, start_epoch, g_steps, (long long)gan.iteration, best_fid);
    fflush(stdout);

    t_start = ag_wall_seconds(); g_steps_start = g_steps;
    if (start_batch >= loader_len) { fprintf(stderr, "train: --load_path: batch %d of an epoch of %d batches (another --dis_bs or data set?)\n", start_batch, loader_len); rc = 2; goto done; }
    for (epoch = start_epoch; epoch < max_epoch; epoch++) {
        int iter_idx, n;
        double t_epoch = ag_wall_seconds();
        for (iter_idx = epoch == start_epoch ? start_batch : 0; iter_idx < loader_len; iter_idx++) {
            long long global_steps = (long long)gan.iteration;
            int stepped = 0, last = iter_idx == loader_len - 1, eval_now, is_best = 0;
            n = ag_data_loader_next(&loader, &data_rng, real, NULL);
            if (ag_gan_d_step_n(ctx, &gan, real, n, NULL, &d_loss)) { fprintf(stderr, "train: %s\n", ag_ctx_error(ctx)); goto done; }
            if (global_steps % o.n_critic == 0) {
                if (ag_gan_g_step(ctx, &gan, NULL, &g_loss)) { fprintf(stderr, "train: %s\n", ag_ctx_error(ctx)); goto done; }
                if (o.lr_decay) {   /* LinearLrDecay.step(global_steps), after the optimiser step */
                    int sets; double g = ag_linear_lr_decay(o.g_lr, 0.0, 0, decay_end, global_steps, &sets), d = ag_linear_lr_decay(o.d_lr, 0.0, 0, decay_end, global_steps, NULL);
                    if (sets) { gan.opt_g.lr = (float)g; gan.opt_d.lr = (float)d; }
                }
                ag_ema_update(&ema);
                g_steps++; stepped = 1;
                if (!isfinite(d_loss) || !isfinite(g_loss)) { fprintf(stderr, "train: loss is not finite at G step %lld (epoch %d)\n", g_steps, epoch); goto done; }
            }
            if (g_steps > g_steps_start && iter_idx % o.print_freq == 0) {
                double el = ag_wall_seconds() - t_start - t_eval, per = el / (double)(g_steps - g_steps_start);
                printf("[Epoch %d/%d] [Batch %d/%d] [D loss: %f] [G loss: %f] | G step %lld, %.3f s/G step\n", epoch, max_epoch,
                       iter_idx, loader_len, d_loss, g_loss, g_steps, per);
                fflush(stdout);
                snprintf(line, sizeof line, "%d,%lld,%lld,%.6f,%.6f,%.8g,%.8g,%.1f\n", epoch, (long long)gan.iteration, g_steps, d_loss, g_loss,
                         gan.opt_g.lr, gan.opt_d.lr, t_train + el);
                if (textlog_add(&tlog, line) || textlog_write(&tlog)) goto done;
            }
            eval_now = (last && ((epoch && epoch % o.val_freq == 0) || epoch == max_epoch - 1)) ||
                       (stepped && o.val_freq_iter && g_steps % o.val_freq_iter == 0);
            if (eval_now && g_steps == last_eval_g) eval_now = 0;   /* this G step's generator is scored already */
            if (last) printf("epoch %d done: %.1f s\n", epoch, ag_wall_seconds() - t_epoch);
            if (!last && !eval_now) continue;
            if (eval_now) {
                double te = ag_wall_seconds(), m = 0, s = 0, f = 0; char g1[1200], g2[1200];
                snprintf(path, sizeof path, "%s/grid_live_g%06lld.png", samples_dir, g_steps);
                join(g1, sizeof g1, samples_dir, "grid_live.png");
                if (save_grid(ctx, &G, fixed_z, path) || save_grid(ctx, &G, fixed_z, g1)) goto done;
                ag_ema_swap(&ema);   /* the EMA parameters with the live BatchNorm buffers, as load_params(gen_net, gen_avg_param) */
                snprintf(path, sizeof path, "%s/grid_ema_g%06lld.png", samples_dir, g_steps);
                join(g2, sizeof g2, samples_dir, "grid_ema.png");
                if (save_grid(ctx, &G, fixed_z, path) || save_grid(ctx, &G, fixed_z, g2)) { ag_ema_swap(&ema); goto done; }
                if (sc && evaluate(ctx, &G, sc, &ref, o.num_eval, o.eval_bs, o.splits, o.seed, (int)(g_steps & 0x7fffffff), &m, &s, &f)) { ag_ema_swap(&ema); goto done; }
                ag_ema_swap(&ema);
                {   /* the EMA generator of this evaluation, kept (small) so any scorer can replay the curve (--rescore) */
                    char gx[160];
                    snprintf(path, sizeof path, "%s/avg_gen_g%06lld.safetensors", model_dir, g_steps);
                    snprintf(gx, sizeof gx, "\"epoch\":\"%d\",\"g_steps\":\"%lld\"", epoch, g_steps);
                    if (ag_generator_save_ema(path, &G, &ema, gx, &err)) { fprintf(stderr, "train: %s\n", err.msg); goto done; }
                }
                if (sc) {
                    printf("Inception score (%s): %.4f +- %.4f, FID score: %.4f || @ epoch %d (G step %lld), %.1f s\n", ag_scorer_kind(sc), m, s, f, epoch, g_steps, ag_wall_seconds() - te);
                    snprintf(line, sizeof line, "%d,%lld,%.6f,%.6f,%.6f,%.1f,%.1f\n", epoch, g_steps, m, s, f, ag_wall_seconds() - te, t_train + ag_wall_seconds() - t_start - t_eval);
                    if (textlog_add(&elog, line) || textlog_write(&elog)) goto done;
                    if (n_eval < max_eval) { ex[n_eval] = (double)g_steps; eis[n_eval] = m; efid[n_eval] = f; n_eval++; }
                    if (plot_eval(plot_path, ex, eis, efid, n_eval, ag_scorer_kind(sc))) goto done;
                    if (f < best_fid) { best_fid = f; is_best = 1; }
                } else printf("grids of G step %lld in %s\n", g_steps, samples_dir);
                fflush(stdout);
                t_eval += ag_wall_seconds() - te;
                last_eval_g = g_steps;
            }
            {   /* the checkpoint: after every epoch (as the reference) and every mid-epoch evaluation */
                char rs[200]; unsigned gb, db; memcpy(&gb, &gan.opt_g.lr, 4); memcpy(&db, &gan.opt_d.lr, 4);
                ag_data_loader_state_string(&loader, rs, sizeof rs);
                snprintf(extra, sizeof extra, "\"program\":\"train\",\"epoch\":\"%d\",\"batch\":\"%d\",\"best_fid\":\"%.17g\",\"g_steps\":\"%lld\",\"loader\":\"%s\","
                         "\"data_rng\":\"%llx %llx\",\"g_lr_bits\":\"%08x\",\"d_lr_bits\":\"%08x\",\"dataset\":\"%s\",\"exp_dir\":\"%s\","
                         "\"n_critic\":\"%d\",\"gen_bs\":\"%d\",\"dis_bs\":\"%d\",\"max_iter\":\"%d\",\"lr_decay\":\"%d\",\"train_seconds\":\"%.1f\","
                         "\"max_epoch\":\"%d\",\"g_lr\":\"%.17g\",\"d_lr\":\"%.17g\",\"beta1\":\"%.17g\",\"beta2\":\"%.17g\",\"ema_decay\":\"%.17g\","
                         "\"seed\":\"%llu\",\"val_freq\":\"%d\",\"val_freq_iter\":\"%d\",\"print_freq\":\"%d\",\"num_eval_imgs\":\"%d\",\"eval_batch_size\":\"%d\","
                         "\"data_path\":\"%s\",\"inception\":\"%s\",\"classifier\":\"%s\",\"fid_stat\":\"%s\",\"threads\":\"%d\"",
                         last ? epoch + 1 : epoch, last ? 0 : iter_idx + 1, best_fid, g_steps, rs, (unsigned long long)data_rng.state,
                         (unsigned long long)data_rng.inc, gb, db, o.dataset, exp_dir, o.n_critic, o.gen_bs, o.dis_bs, o.max_iter, o.lr_decay,
                         t_train + ag_wall_seconds() - t_start - t_eval, o.max_epoch, o.g_lr, o.d_lr, o.beta1, o.beta2, o.ema, o.seed, o.val_freq,
                         o.val_freq_iter, o.print_freq, o.num_eval, o.eval_bs, o.data_path ? o.data_path : "", o.inception ? o.inception : "",
                         o.classifier ? o.classifier : "", o.fid_stat ? o.fid_stat : "", ag_ctx_threads(ctx));
                if (ag_gan_save_train(ckpt_path, &gan, &ema, ctx, extra, &err)) { fprintf(stderr, "train: %s\n", err.msg); goto done; }
                if (is_best && ag_gan_save_train(best_path, &gan, &ema, ctx, extra, &err)) { fprintf(stderr, "train: %s\n", err.msg); goto done; }
                if (is_best) printf("new best FID %.4f: %s\n", best_fid, best_path);
            }
        }
    }
    printf("done: %lld G steps (%lld this run) in %.1f s (%.3f s per G step), best FID %g; checkpoint %s\n", g_steps, g_steps - g_steps_start,
           ag_wall_seconds() - t_start, g_steps > g_steps_start ? (ag_wall_seconds() - t_start - t_eval) / (double)(g_steps - g_steps_start) : 0.0, best_fid, ckpt_path);
    rc = 0;
done:
    free(real); free(fixed_z); free(ex); free(tlog.p); free(elog.p); AG_FREE(meta);
    if (have_loader) ag_data_loader_free(&loader);
    ag_dataset_free(&ds); ag_fid_stats_free(&ref); if (sc) ag_scorer_free(sc);
    if (have_ema) ag_ema_free(&ema);
    if (have_models) { ag_gan_free(&gan); ag_discriminator_free(&D); }
    ag_generator_free(&G);
    if (ctx) ag_ctx_free(ctx);
    return rc;
}
