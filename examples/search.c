/* search.c - the AutoGAN architecture search (Gong et al., ICCV 2019): an LSTM controller
   trained by REINFORCE picks generator cells, a weight-shared GAN is trained with an
   architecture sampled for every D step, the search grows 8x8 -> 16x16 -> 32x32 keeping the
   top-k architectures (and the controller's hidden state after each) at every growth, and
   resets the shared GAN when its losses stop moving (dynamic reset).

   build/search --preset demo                      the embedded Fashion-MNIST, a few minutes
   build/search --preset paper --dataset cifar10 --data_path cifar-10-binary.tar.gz \
                --inception pt_inception-2015-12-05-6726825d.pth
   build/search --load_path logs/demo               resume (same flags as the first run)

   Flags are the reference's cfg.py (search.py); --help lists them with their defaults.
   Outputs in logs/EXP/: search.csv (losses), controller.csv (one row per controller step),
   controller.png (reward and entropy over controller steps), samples/iter_NNN.png (the best
   architecture of each iteration), archs.txt (the discovered architectures as build/train
   command lines) and Model/checkpoint.safetensors (everything needed to resume exactly;
   written to a temporary name and renamed after every search iteration). A run killed at
   any moment and resumed with --load_path ends with the same bits as an uninterrupted one
   (same thread count). */
#if !defined(_POSIX_C_SOURCE) && !defined(_WIN32)
#define _POSIX_C_SOURCE 200809L
#endif
#define AUTOGAN_IMPLEMENTATION
#include "../autogan.h"
#ifndef AG_MAX_THREADS
#define AG_MAX_THREADS 1024
#endif
#include "cli.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <time.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/types.h>

/* ---- options: the reference's cfg.py ------------------------------------------------ */
typedef struct options {
    int gen_bs, dis_bs, latent_dim, img_size, channels, n_critic, print_freq, gf_dim, df_dim, bottom_width;
    int eval_batch_size, shared_epoch, grow_step1, grow_step2, max_search_iter, ctrl_step, ctrl_sample_batch;
    int hid_size, rl_num_eval_img, num_candidate, topk, dynamic_reset_window, d_spectral_norm, threads;
    int num_train_imgs, is_splits, stop_after_iter;
    double g_lr, d_lr, ctrl_lr, beta1, beta2, baseline_decay, entropy_coeff, dynamic_reset_threshold;
    unsigned long long random_seed;
    const char *exp_name, *load_path, *dataset, *data_path, *split, *init_type, *classifier, *inception, *preset;
} options;

static void set_defaults(options *o) {
    memset(o, 0, sizeof *o);
    o->gen_bs = 64; o->dis_bs = 64; o->g_lr = 2e-4; o->d_lr = 2e-4; o->ctrl_lr = 3.5e-4; o->beta1 = 0.0; o->beta2 = 0.9;
    o->latent_dim = 128; o->img_size = 32; o->channels = 0; o->n_critic = 1; o->print_freq = 100;
    o->d_spectral_norm = 0; o->init_type = "xavier_uniform"; o->gf_dim = 64; o->df_dim = 64;
    o->eval_batch_size = 100; o->bottom_width = 4; o->random_seed = 12345; o->shared_epoch = 15;
    o->grow_step1 = 25; o->grow_step2 = 55; o->max_search_iter = 90; o->ctrl_step = 30; o->ctrl_sample_batch = 1;
    o->hid_size = 100; o->baseline_decay = 0.9; o->rl_num_eval_img = 5000; o->num_candidate = 10; o->topk = 5;
    o->entropy_coeff = 1e-3; o->dynamic_reset_threshold = 1e-3; o->dynamic_reset_window = 500;
    o->dataset = "fashion-mnist"; o->data_path = NULL; o->split = "train"; o->is_splits = 10;
    o->exp_name = NULL; o->classifier = NULL; o->inception = NULL;
}
/* exps/autogan_search.sh: the authors' CIFAR-10 search */
static void preset_paper(options *o) {
    o->gen_bs = 128; o->dis_bs = 64; o->latent_dim = 128; o->gf_dim = 128; o->df_dim = 64; o->d_spectral_norm = 1;
    o->g_lr = o->d_lr = 2e-4; o->beta1 = 0.0; o->beta2 = 0.9; o->init_type = "xavier_uniform"; o->n_critic = 5;
    o->ctrl_sample_batch = 1; o->num_candidate = 10; o->topk = 5; o->shared_epoch = 15; o->grow_step1 = 15;
    o->grow_step2 = 35; o->max_search_iter = 65; o->ctrl_step = 30; o->exp_name = "autogan_search";
    o->dataset = "cifar10"; o->channels = 3;
}
/* a few minutes on two cores: Fashion-MNIST's shipped test split (2,048 images used), the
   compact classifier as the reward, narrow G and D, all three stages with both growths */
static void preset_demo(options *o) {
    preset_paper(o);
    o->dataset = "fashion-mnist"; o->split = "test"; o->channels = 1; o->num_train_imgs = 2048;
    o->classifier = "weights/fashion-mnist-classifier.safetensors";
    o->gen_bs = 32; o->dis_bs = 32; o->gf_dim = 32; o->df_dim = 32; o->latent_dim = 64;
    o->shared_epoch = 1; o->grow_step1 = 3; o->grow_step2 = 6; o->max_search_iter = 9;
    o->ctrl_step = 8; o->rl_num_eval_img = 500; o->eval_batch_size = 100; o->num_candidate = 6; o->topk = 3;
    o->dynamic_reset_window = 100; o->print_freq = 16; o->exp_name = "demo";
}

static void usage(const options *d) {
    printf("usage: search [--preset paper|demo] [options]   (flags as the reference's cfg.py)\n"
           "  --preset NAME             paper: exps/autogan_search.sh (CIFAR-10); demo: embedded Fashion-MNIST, minutes\n"
           "                            (a preset sets its values first; flags after it override them)\n"
           "  -gen_bs, --gen_bs, --gen_batch_size N  G batch (%d)   -dis_bs, --dis_bs, --dis_batch_size N  D batch (%d)\n"
           "  --g_lr X (%g)  --d_lr X (%g)  --ctrl_lr X (%g)  --beta1 X (%g)  --beta2 X (%g)\n"
           "  --latent_dim N (%d)  --gf_dim N (%d)  --df_dim N (%d)  --bottom_width N (%d: 8, 16, 32 per stage)\n"
           "  --img_size N (%d, must be bottom_width*8)  --channels N (the data set's; 1 or 3)\n"
           "  --n_critic N (%d)  --d_spectral_norm True|False (%s)  --g_spectral_norm False\n"
           "  --init_type xavier_uniform (%s)  --gen_model shared_gan  --dis_model shared_gan  --controller controller\n"
           "  --shared_epoch N (%d)  epochs of shared GAN training per search iteration\n"
           "  --grow_step1 N (%d)  --grow_step2 N (%d)  --max_search_iter N (%d)\n"
           "  --ctrl_step N (%d)  --ctrl_sample_batch N (%d)  --hid_size N (%d)  --baseline_decay X (%g)\n"
           "  --entropy_coeff X (%g)  --rl_num_eval_img N (%d)  --eval_batch_size N (%d)\n"
           "  --num_candidate N (%d)  --topk N (%d)\n"
           "  --dynamic_reset_threshold X (%g)  --dynamic_reset_window N (%d)\n"
           "  --dataset NAME (%s: cifar10 | stl10 | mnist | fashion-mnist | folder)  --data_path PATH (default location)\n"
           "  --split train|test (%s)  --num_train_imgs N (0 = all; the first N images)\n"
           "  --classifier W.safetensors | --inception W.pth   the reward's scorer (IS over --is_splits %d splits)\n"
           "  --exp_name NAME (logs/NAME)  --load_path DIR|FILE (resume)  --random_seed N (%llu)\n"
           "  --print_freq N (%d)  --threads N (OpenMP default)  --num_workers N --val_freq N --max_epoch N (accepted, unused)\n",
           d->gen_bs, d->dis_bs, d->g_lr, d->d_lr, d->ctrl_lr, d->beta1, d->beta2, d->latent_dim, d->gf_dim, d->df_dim,
           d->bottom_width, d->img_size, d->n_critic, d->d_spectral_norm ? "True" : "False", d->init_type, d->shared_epoch,
           d->grow_step1, d->grow_step2, d->max_search_iter, d->ctrl_step, d->ctrl_sample_batch, d->hid_size, d->baseline_decay,
           d->entropy_coeff, d->rl_num_eval_img, d->eval_batch_size, d->num_candidate, d->topk, d->dynamic_reset_threshold,
           d->dynamic_reset_window, d->dataset, d->split, d->is_splits, d->random_seed, d->print_freq);
}

static int parse_bool(cli *c) {
    const char *v = cli_str(c);
    if (!strcmp(v, "True") || !strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "yes")) return 1;
    if (!strcmp(v, "False") || !strcmp(v, "false") || !strcmp(v, "0") || !strcmp(v, "no")) return 0;
    cli_fail(c, "%s takes True or False (got '%s')", c->flag, v);
}

static void parse_args(int argc, char **argv, options *o) {
    cli c; options d;
    set_defaults(o);
    cli_start(&c, "search", argc, argv);
    while (cli_next(&c)) {
        if (cli_is(&c, "--preset")) {
            const char *p = cli_str(&c);
            if (!strcmp(p, "paper")) preset_paper(o);
            else if (!strcmp(p, "demo")) preset_demo(o);
            else cli_fail(&c, "--preset takes paper or demo (got '%s')", p);
            o->preset = p;
        }
        else if (cli_is(&c, "-gen_bs") || cli_is(&c, "--gen_bs") || cli_is(&c, "--gen_batch_size")) o->gen_bs = (int)cli_int(&c, 2, 65536);
        else if (cli_is(&c, "-dis_bs") || cli_is(&c, "--dis_bs") || cli_is(&c, "--dis_batch_size")) o->dis_bs = (int)cli_int(&c, 2, 65536);
        else if (cli_is(&c, "--g_lr")) o->g_lr = cli_float(&c, 0, 1);
        else if (cli_is(&c, "--d_lr")) o->d_lr = cli_float(&c, 0, 1);
        else if (cli_is(&c, "--ctrl_lr")) o->ctrl_lr = cli_float(&c, 0, 1);
        else if (cli_is(&c, "--beta1")) o->beta1 = cli_float(&c, 0, 0.999999);
        else if (cli_is(&c, "--beta2")) o->beta2 = cli_float(&c, 0, 0.999999);
        else if (cli_is(&c, "--latent_dim")) o->latent_dim = (int)cli_int(&c, 1, 4096);
        else if (cli_is(&c, "--img_size")) o->img_size = (int)cli_int(&c, 8, 4096);
        else if (cli_is(&c, "--channels")) o->channels = (int)cli_int(&c, 1, 3);
        else if (cli_is(&c, "--n_critic")) o->n_critic = (int)cli_int(&c, 1, 1000);
        else if (cli_is(&c, "--print_freq")) o->print_freq = (int)cli_int(&c, 1, 100000000);
        else if (cli_is(&c, "--d_spectral_norm")) o->d_spectral_norm = parse_bool(&c);
        else if (cli_is(&c, "--g_spectral_norm")) { if (parse_bool(&c)) cli_fail(&c, "--g_spectral_norm True is not implemented (the search uses False)"); }
        else if (cli_is(&c, "--init_type")) {
            o->init_type = cli_str(&c);
            if (strcmp(o->init_type, "xavier_uniform")) cli_fail(&c, "--init_type %s is not implemented; the search script's xavier_uniform is", o->init_type);
        }
        else if (cli_is(&c, "--gen_model") || cli_is(&c, "--dis_model")) { if (strcmp(cli_str(&c), "shared_gan")) cli_fail(&c, "%s: only shared_gan exists", c.flag); }
        else if (cli_is(&c, "--controller")) { if (strcmp(cli_str(&c), "controller")) cli_fail(&c, "--controller: only 'controller' exists"); }
        else if (cli_is(&c, "--gf_dim")) o->gf_dim = (int)cli_int(&c, 1, 4096);
        else if (cli_is(&c, "--df_dim")) o->df_dim = (int)cli_int(&c, 1, 4096);
        else if (cli_is(&c, "--bottom_width")) o->bottom_width = (int)cli_int(&c, 1, 64);
        else if (cli_is(&c, "--eval_batch_size")) o->eval_batch_size = (int)cli_int(&c, 1, 100000);
        else if (cli_is(&c, "--random_seed")) o->random_seed = cli_u64(&c);
        else if (cli_is(&c, "--shared_epoch")) o->shared_epoch = (int)cli_int(&c, 1, 1000000);
        else if (cli_is(&c, "--grow_step1")) o->grow_step1 = (int)cli_int(&c, 1, 1000000);
        else if (cli_is(&c, "--grow_step2")) o->grow_step2 = (int)cli_int(&c, 2, 1000000);
        else if (cli_is(&c, "--max_search_iter")) o->max_search_iter = (int)cli_int(&c, 0, 1000000);
        else if (cli_is(&c, "--ctrl_step")) o->ctrl_step = (int)cli_int(&c, 0, 1000000);
        else if (cli_is(&c, "--ctrl_sample_batch")) o->ctrl_sample_batch = (int)cli_int(&c, 1, 4096);
        else if (cli_is(&c, "--hid_size")) o->hid_size = (int)cli_int(&c, 1, 4096);
        else if (cli_is(&c, "--baseline_decay")) o->baseline_decay = cli_float(&c, 0, 1);
        else if (cli_is(&c, "--rl_num_eval_img")) o->rl_num_eval_img = (int)cli_int(&c, 2, 10000000);
        else if (cli_is(&c, "--num_candidate")) o->num_candidate = (int)cli_int(&c, 1, 100000);
        else if (cli_is(&c, "--topk")) o->topk = (int)cli_int(&c, 1, 100000);
        else if (cli_is(&c, "--entropy_coeff")) o->entropy_coeff = cli_float(&c, 0, 1e6);
        else if (cli_is(&c, "--dynamic_reset_threshold")) o->dynamic_reset_threshold = cli_float(&c, 0, 1e30);
        else if (cli_is(&c, "--dynamic_reset_window")) o->dynamic_reset_window = (int)cli_int(&c, 2, 100000000);
        else if (cli_is(&c, "--dataset")) o->dataset = cli_str(&c);
        else if (cli_is(&c, "--data_path")) o->data_path = cli_str(&c);
        else if (cli_is(&c, "--split")) {
            o->split = cli_str(&c);
            if (strcmp(o->split, "train") && strcmp(o->split, "test")) cli_fail(&c, "--split takes train or test (got '%s')", o->split);
        }
        else if (cli_is(&c, "--num_train_imgs")) o->num_train_imgs = (int)cli_int(&c, 0, 100000000);
        else if (cli_is(&c, "--is_splits")) o->is_splits = (int)cli_int(&c, 1, 1000);
        else if (cli_is(&c, "--classifier")) { o->classifier = cli_str(&c); o->inception = NULL; }
        else if (cli_is(&c, "--inception")) { o->inception = cli_str(&c); o->classifier = NULL; }
        else if (cli_is(&c, "--exp_name")) o->exp_name = cli_str(&c);
        else if (cli_is(&c, "--load_path")) o->load_path = cli_str(&c);
        else if (cli_is(&c, "--threads")) o->threads = cli_threads(&c);
        else if (cli_is(&c, "--stop_after_iter")) o->stop_after_iter = (int)cli_int(&c, 1, 1000000);  /* tests: exit after N iterations */
        else if (cli_is(&c, "--num_workers") || cli_is(&c, "--val_freq") || cli_is(&c, "--max_epoch")) (void)cli_int(&c, 0, 1000000000);
        else if (cli_is(&c, "--help") || cli_is(&c, "-h")) { set_defaults(&d); usage(&d); exit(0); }
        else cli_unknown(&c);
    }
    if (o->grow_step2 <= o->grow_step1) cli_fail(&c, "--grow_step2 (%d) must be after --grow_step1 (%d)", o->grow_step2, o->grow_step1);
    if (o->topk > o->num_candidate) cli_fail(&c, "--topk (%d) must not exceed --num_candidate (%d)", o->topk, o->num_candidate);
    if (o->rl_num_eval_img < o->eval_batch_size) cli_fail(&c, "--rl_num_eval_img (%d) must be at least --eval_batch_size (%d)", o->rl_num_eval_img, o->eval_batch_size);
    if (o->img_size != o->bottom_width * 8) cli_fail(&c, "--img_size %d: the search ends at bottom_width*8 = %d", o->img_size, o->bottom_width * 8);
    if (!o->classifier && !o->inception) cli_fail(&c, "the reward needs a scorer: --classifier W.safetensors or --inception W.pth");
    if (!o->exp_name && !o->load_path) cli_fail(&c, "give --exp_name (a new search in logs/NAME) or --load_path (resume)");
}

/* ---- small helpers -------------------------------------------------------------------- */
typedef struct text { char *p; size_t n, cap; } text;   /* a growable string */
static void text_put(text *t, const char *fmt, ...) {
    va_list ap; int k;
    for (;;) {
        size_t room = t->cap - t->n;
        va_start(ap, fmt); k = vsnprintf(t->p ? t->p + t->n : NULL, t->p ? room : 0, fmt, ap); va_end(ap);
        if (k < 0) return;
        if (t->p && (size_t)k < room) { t->n += (size_t)k; return; }
        t->cap = (t->cap + (size_t)k + 1) * 2;
        if (!(t->p = (char *)realloc(t->p, t->cap))) { fprintf(stderr, "search: out of memory\n"); exit(1); }
    }
}
static double now_seconds(void) {
    struct timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}
/* out = a + b (b a suffix such as "/search.csv"); a path too long for the buffer is an error */
static void join(char *out, size_t n, const char *a, const char *b) {
    if ((size_t)snprintf(out, n, "%s%s", a, b) >= n) { fprintf(stderr, "search: path too long: %s%s\n", a, b); exit(1); }
}
static void make_dir(const char *path) { mkdir(path, 0777); }
static int file_exists(const char *path) { struct stat st; return stat(path, &st) == 0 && S_ISREG(st.st_mode); }
static int dir_exists(const char *path) { struct stat st; return stat(path, &st) == 0 && S_ISDIR(st.st_mode); }
static void arch_str(const int *arch, int len, char *buf, size_t n) {
    int i; size_t u = 0; buf[0] = 0;
    for (i = 0; i < len && u < n; i++) u += (size_t)snprintf(buf + u, n - u, i ? " %d" : "%d", arch[i]);
}
static void fmt_time(double s, char *buf, size_t n) {
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, n, "%ldh%02ldm", t / 3600, (t / 60) % 60);
    else snprintf(buf, n, "%ldm%02lds", t / 60, t % 60);
}

/* Keep the complete lines of a CSV whose first field (the search iteration) is below
   `keep_below` (and the header): a resumed run rewrites what the killed one logged after
   its last checkpoint. A partial last line (no newline) is dropped. */
static int csv_truncate(const char *path, int keep_below) {
    unsigned char *bytes; size_t len, i, start = 0; ag_error err; text out; int line = 0, rc;
    if (!file_exists(path)) return 0;
    if (ag_read_file(path, &bytes, &len, &err)) { fprintf(stderr, "search: %s\n", err.msg); return -1; }
    memset(&out, 0, sizeof out);
    for (i = 0; i < len; i++) if (bytes[i] == '\n') {
        int it = -1;
        if (line == 0 || (sscanf((const char *)bytes + start, "%d", &it) == 1 && it < keep_below))
            text_put(&out, "%.*s", (int)(i + 1 - start), (const char *)bytes + start);
        start = i + 1; line++;
    }
    rc = ag_write_file_atomic(path, out.p ? out.p : "", out.n, &err);
    if (rc) fprintf(stderr, "search: %s\n", err.msg);
    free(bytes); free(out.p);
    return rc;
}
/* appends to what csv_truncate kept; the header goes into an empty file, which is also
   what a run killed before its first complete line leaves behind */
static FILE *csv_open(const char *path, const char *header) {
    struct stat st; int empty = stat(path, &st) != 0 || st.st_size == 0; FILE *f = fopen(path, "a");
    if (!f) { fprintf(stderr, "search: cannot open %s for appending\n", path); return NULL; }
    if (empty) fprintf(f, "%s\n", header);
    return f;
}

/* ---- the plot: reward and entropy over controller steps (ag_plot_png), growths marked ---- */
/* reads controller.csv (search_iter,step,stage,arch,reward,entropy,...) and draws it */
static int plot_controller(const char *csv_path, const char *png_path) {
    unsigned char *bytes; size_t len, i, start = 0; ag_error err; int n = 0, cap = 0, line = 0, rc, nm = 0, prev_stage = -1;
    double *x = NULL, *r = NULL, *e = NULL, *marks = NULL; ag_plot_series s[2];
    if (ag_read_file(csv_path, &bytes, &len, &err)) { fprintf(stderr, "search: %s\n", err.msg); return -1; }
    for (i = 0; i < len; i++) if (bytes[i] == '\n') {
        int it, st, sg; char arch[64]; double rw, en;
        bytes[i] = 0;
        if (line++ && sscanf((const char *)bytes + start, "%d,%d,%d,%63[0-9 ],%lf,%lf", &it, &st, &sg, arch, &rw, &en) == 6) {
            if (n == cap) {
                cap = cap ? 2 * cap : 256;
                x = (double *)realloc(x, cap * sizeof *x); r = (double *)realloc(r, cap * sizeof *r);
                e = (double *)realloc(e, cap * sizeof *e); marks = (double *)realloc(marks, cap * sizeof *marks);
                if (!x || !r || !e || !marks) { fprintf(stderr, "search: out of memory\n"); exit(1); }
            }
            if (isfinite(rw) && isfinite(en)) {
                if (prev_stage >= 0 && sg != prev_stage) marks[nm++] = st + 0.5;   /* a growth */
                prev_stage = sg; x[n] = st + 1; r[n] = rw; e[n] = en; n++;
            }
        }
        start = i + 1;
    }
    free(bytes);
    memset(s, 0, sizeof s);
    s[0].label = "reward (IS)"; s[0].x = x; s[0].y = r; s[0].n = n; s[0].rgb[0] = 200; s[0].rgb[1] = 40; s[0].rgb[2] = 40;
    s[1].label = "entropy"; s[1].x = x; s[1].y = e; s[1].n = n; s[1].rgb[0] = 30; s[1].rgb[1] = 90; s[1].rgb[2] = 200;
    s[0].marks = s[1].marks = marks; s[0].n_marks = s[1].n_marks = nm;
    rc = ag_plot_png(png_path, "controller step", s, 2, &err);
    if (rc) fprintf(stderr, "search: %s\n", err.msg);
    free(x); free(r); free(e); free(marks);
    return rc;
}

/* ---- the search ---------------------------------------------------------------------------- */
typedef struct search {
    options o;
    ag_ctx *ctx;
    ag_generator G; ag_discriminator D; ag_gan gan;
    ag_search_state st;
    ag_scorer *scorer;
    ag_dataset full, data;       /* the data set as loaded, and resized to the current stage */
    ag_data_loader loader;
    int data_stage, channels;
    float *batch, *eval_imgs;
    char dir[256], ckpt[320], search_csv[320], ctrl_csv[320], plot_png[320], samples_dir[320], archs_txt[320];
    FILE *fsearch, *fctrl;
    double t_start; int iters_done_this_run;
    float last_reward; int have_reward;
    double t_shared, t_reward, t_ctrl;   /* seconds spent, for the cost split */
} search;

static int stage_of(const options *o, int iter) { return iter < o->grow_step1 ? 0 : iter < o->grow_step2 ? 1 : 2; }

static int prepare_data(search *s, int stage) {
    ag_error err; int R = ag_stage_resolution(stage, s->o.bottom_width);
    if (s->data_stage == stage) return 0;
    ag_data_loader_free(&s->loader);
    ag_dataset_free(&s->data);
    if (ag_dataset_resized(&s->full, R, &s->data, &err)) { fprintf(stderr, "search: resizing the data to %dx%d: %s\n", R, R, err.msg); return -1; }
    if (ag_data_loader_init(&s->loader, &s->data, s->o.dis_bs, s->channels, &err)) { fprintf(stderr, "search: %s\n", err.msg); return -1; }
    s->data_stage = stage;
    free(s->batch);
    s->batch = (float *)malloc((size_t)s->o.dis_bs * s->channels * R * R * sizeof(float));
    if (!s->batch) { fprintf(stderr, "search: out of memory\n"); return -1; }
    return 0;
}

/* IS of rl_num_eval_img images of G (eval mode, no graph) with its current architecture */
static int reward_of(search *s, double *is_mean) {
    int R = ag_stage_resolution(s->G.stage, s->o.bottom_width), ebs = s->o.eval_batch_size;
    int n = s->o.rl_num_eval_img / ebs * ebs, b, shape[2]; size_t per = (size_t)s->channels * R * R; double sd; ag_error err;
    double t0 = now_seconds();
    s->G.training = 0;
    ag_ctx_set_grad_enabled(s->ctx, 0);
    for (b = 0; b < n / ebs; b++) {
        ag_tensor *z, *y;
        ag_ctx_reset(s->ctx);
        shape[0] = ebs; shape[1] = s->o.latent_dim;
        z = ag_tensor_new(s->ctx, 2, shape);
        if (z) ag_rng_fill_normal(ag_ctx_rng(s->ctx), z->data, z->size, 0.0f, 1.0f);
        y = ag_generator_forward(s->ctx, &s->G, z);
        if (!y) { fprintf(stderr, "search: generating reward images: %s\n", ag_ctx_error(s->ctx)); ag_ctx_set_grad_enabled(s->ctx, 1); return -1; }
        memcpy(s->eval_imgs + (size_t)b * ebs * per, y->data, (size_t)ebs * per * sizeof(float));
    }
    ag_ctx_set_grad_enabled(s->ctx, 1);
    s->G.training = 1;
    if (ag_scorer_inception_score(s->scorer, s->eval_imgs, n, s->channels, R, R, s->o.is_splits, is_mean, &sd, &err)) {
        fprintf(stderr, "search: scoring: %s\n", err.msg); return -1;
    }
    s->t_reward += now_seconds() - t0;
    return 0;
}

/* the reference's get_topk_arch_hidden: num_candidate samples with their final (h, c),
   scored; the top-k kept (ties: the later sample first, as its sorted(...)[::-1]) */
static int topk_archs(search *s, int *out_archs, double *out_scores, float *out_h, float *out_c) {
    int n = s->o.num_candidate, H = s->o.hid_size, i, j, len = ag_arch_len(s->st.stage), *order, rc = -1;
    int *archs = (int *)malloc(sizeof(int) * n * AG_ARCH_MAX); double *score = (double *)malloc(sizeof(double) * n);
    float *h = (float *)malloc(sizeof(float) * n * H), *c = (float *)malloc(sizeof(float) * n * H); char buf[64]; ag_error err;
    order = (int *)malloc(sizeof(int) * n);
    if (!archs || !score || !h || !c || !order) { fprintf(stderr, "search: out of memory\n"); goto done; }
    printf("=> top %d of %d candidate architectures (stage %d)\n", s->o.topk, n, s->st.stage);
    if (ag_controller_sample(s->ctx, &s->st.ctrl, &s->st.rng, &s->st.kept, n, archs, NULL, NULL, NULL, h, c)) {
        fprintf(stderr, "search: %s\n", ag_ctx_error(s->ctx)); goto done;
    }
    for (i = 0; i < n; i++) {
        if (ag_generator_set_arch(&s->G, s->st.stage, archs + i * AG_ARCH_MAX, len, &err)) { fprintf(stderr, "search: %s\n", err.msg); goto done; }
        if (reward_of(s, &score[i])) goto done;
        arch_str(archs + i * AG_ARCH_MAX, len, buf, sizeof buf);
        printf("   candidate %2d  arch [%s]  IS %.4f\n", i, buf, score[i]);
        order[i] = i;
    }
    for (i = 1; i < n; i++) for (j = i; j > 0; j--) {   /* insertion sort: higher score first, ties later index first */
        int a = order[j - 1], b = order[j];
        if (score[b] > score[a] || (score[b] == score[a] && b > a)) { order[j - 1] = b; order[j] = a; } else break;
    }
    for (i = 0; i < s->o.topk; i++) {
        int k = order[i];
        memcpy(out_archs + i * AG_ARCH_MAX, archs + k * AG_ARCH_MAX, sizeof(int) * AG_ARCH_MAX);
        out_scores[i] = score[k];
        if (out_h) memcpy(out_h + (size_t)i * H, h + (size_t)k * H, sizeof(float) * H);
        if (out_c) memcpy(out_c + (size_t)i * H, c + (size_t)k * H, sizeof(float) * H);
    }
    rc = 0;
done:
    free(archs); free(score); free(h); free(c); free(order);
    return rc;
}

static int grow(search *s, int new_stage) {
    int k = s->o.topk, H = s->o.hid_size, i; ag_error err; char buf[64];
    int *archs = (int *)malloc(sizeof(int) * k * AG_ARCH_MAX); double *score = (double *)malloc(sizeof(double) * k);
    float *h = (float *)malloc(sizeof(float) * k * H), *c = (float *)malloc(sizeof(float) * k * H);
    if (!archs || !score || !h || !c) { fprintf(stderr, "search: out of memory\n"); return -1; }
    if (topk_archs(s, archs, score, h, c)) return -1;
    for (i = 0; i < k; i++) { arch_str(archs + i * AG_ARCH_MAX, ag_arch_len(s->st.stage), buf, sizeof buf); printf("   kept [%s]  IS %.4f\n", buf, score[i]); }
    if (ag_kept_archs_set(&s->st.kept, k, ag_arch_len(s->st.stage), H, archs, AG_ARCH_MAX, h, c, &err) ||
        ag_search_new_controller(&s->st, new_stage, &err) || ag_discriminator_set_stage(&s->D, new_stage, &err)) {
        fprintf(stderr, "search: %s\n", err.msg); return -1;
    }
    printf("=> grow to stage %d (%dx%d), a fresh controller continues from the kept architectures\n", new_stage,
           ag_stage_resolution(new_stage, s->o.bottom_width), ag_stage_resolution(new_stage, s->o.bottom_width));
    free(archs); free(score); free(h); free(c);
    return prepare_data(s, new_stage);
}

/* the reference's train_shared; returns 1 when the dynamic reset triggered, -1 on error */
static int train_shared(search *s, int iter) {
    int epoch, step = 0, n, arch[AG_ARCH_MAX], len = ag_arch_len(s->st.stage), batches, bi; float d_loss = 0, g_loss = 0;
    ag_error err; double t0 = now_seconds(); int g_steps = 0;
    ag_discriminator_set_stage(&s->D, s->st.stage, NULL);
    batches = (s->data.count + s->o.dis_bs - 1) / s->o.dis_bs;
    for (epoch = 0; epoch < s->o.shared_epoch; epoch++) {
        s->loader.position = s->data.count;            /* every epoch a fresh shuffled pass, as a new DataLoader iterator */
        for (bi = 0; bi < batches; bi++) {
            if (ag_controller_sample(s->ctx, &s->st.ctrl, &s->st.rng, &s->st.kept, 1, arch, NULL, NULL, NULL, NULL, NULL) ||
                ag_generator_set_arch(&s->G, s->st.stage, arch, len, &err)) {
                fprintf(stderr, "search: sampling an architecture: %s\n", ag_ctx_failed(s->ctx) ? ag_ctx_error(s->ctx) : err.msg); return -1;
            }
            n = ag_data_loader_next(&s->loader, &s->st.rng, s->batch, NULL);
            if (n < 1) { fprintf(stderr, "search: the data loader returned no images\n"); return -1; }
            if (ag_gan_d_step_n(s->ctx, &s->gan, s->batch, n, NULL, &d_loss)) { fprintf(stderr, "search: %s\n", ag_ctx_error(s->ctx)); return -1; }
            ag_loss_window_push(&s->st.d_window, d_loss);
            if (step % s->o.n_critic == 0) {
                if (ag_gan_g_step(s->ctx, &s->gan, NULL, &g_loss)) { fprintf(stderr, "search: %s\n", ag_ctx_error(s->ctx)); return -1; }
                ag_loss_window_push(&s->st.g_window, g_loss);
                g_steps++;
            }
            if (s->fsearch) fprintf(s->fsearch, "%d,%d,%d,%d,%.6f,%.6f,%d\n", iter, s->st.stage, epoch, bi, d_loss, g_loss, step % s->o.n_critic == 0);
            if (g_steps && bi % s->o.print_freq == 0) {
                char a[64]; arch_str(arch, len, a, sizeof a);
                printf("[iter %d/%d stage %d] [epoch %d/%d] [batch %d/%d] [D loss %.4f] [G loss %.4f] arch [%s]\n", iter, s->o.max_search_iter,
                       s->st.stage, epoch, s->o.shared_epoch, bi, batches, d_loss, g_loss, a);
                fflush(stdout);
            }
            if (ag_loss_window_full(&s->st.g_window) &&
                (ag_loss_window_var(&s->st.g_window) < s->o.dynamic_reset_threshold ||
                 ag_loss_window_var(&s->st.d_window) < s->o.dynamic_reset_threshold)) {
                printf("=> dynamic reset triggered (G loss variance %.3g, D loss variance %.3g over the last %d)\n",
                       ag_loss_window_var(&s->st.g_window), ag_loss_window_var(&s->st.d_window), s->o.dynamic_reset_window);
                ag_loss_window_clear(&s->st.g_window); ag_loss_window_clear(&s->st.d_window);
                s->t_shared += now_seconds() - t0;
                return 1;
            }
            step++;
        }
    }
    s->t_shared += now_seconds() - t0;
    return 0;
}

/* the reference's train_controller (textbook REINFORCE): rewards, moving-average baseline,
   one Adam step per controller step */
static int train_controller(search *s, int iter, int *best_arch, double *best_reward) {
    int B = s->o.ctrl_sample_batch, H = s->o.hid_size, T = s->st.ctrl.num_tokens, len = ag_arch_len(s->st.stage), step, b, t;
    int plen = len - T, *archs = (int *)malloc(sizeof(int) * B * AG_ARCH_MAX), *pidx = (int *)malloc(sizeof(int) * B);
    int *acts = (int *)malloc(sizeof(int) * B * T); float *ent = (float *)malloc(sizeof(float) * B * T);
    float *h0 = (float *)malloc(sizeof(float) * B * H), *c0 = (float *)malloc(sizeof(float) * B * H), *adv = (float *)malloc(sizeof(float) * B);
    double *R = (double *)malloc(sizeof(double) * B); ag_error err; int rc = -1;
    *best_reward = -1e300;
    s->st.has_baseline = 0;   /* as the reference's train_controller (baseline = None): each search iteration starts its own */
    if (!archs || !pidx || !acts || !ent || !h0 || !c0 || !adv || !R) { fprintf(stderr, "search: out of memory\n"); goto done; }
    for (step = 0; step < s->o.ctrl_step; step++) {
        double mean_r = 0, mean_e = 0, t0; float loss; char a[64];
        if (ag_controller_sample(s->ctx, &s->st.ctrl, &s->st.rng, &s->st.kept, B, archs, pidx, NULL, ent, NULL, NULL)) {
            fprintf(stderr, "search: %s\n", ag_ctx_error(s->ctx)); goto done;
        }
        for (b = 0; b < B; b++) {
            if (ag_generator_set_arch(&s->G, s->st.stage, archs + b * AG_ARCH_MAX, len, &err)) { fprintf(stderr, "search: %s\n", err.msg); goto done; }
            if (reward_of(s, &R[b])) goto done;
            mean_r += R[b] / B;
            if (R[b] > *best_reward) { *best_reward = R[b]; memcpy(best_arch, archs + b * AG_ARCH_MAX, sizeof(int) * AG_ARCH_MAX); }
            for (t = 0; t < T; t++) { acts[b * T + t] = archs[b * AG_ARCH_MAX + plen + t]; mean_e += ent[b * T + t] / B; }
            if (pidx[b] >= 0) {
                memcpy(h0 + (size_t)b * H, s->st.kept.h + (size_t)pidx[b] * H, sizeof(float) * H);
                memcpy(c0 + (size_t)b * H, s->st.kept.c + (size_t)pidx[b] * H, sizeof(float) * H);
            }
        }
        /* baseline: the iteration's first reward, then an exponential moving average (decay 0.9)
           of the batch's mean reward; the advantage is taken against the updated baseline */
        if (!s->st.has_baseline) { s->st.baseline = (float)mean_r; s->st.has_baseline = 1; }
        else s->st.baseline = (float)(s->o.baseline_decay * s->st.baseline + (1.0 - s->o.baseline_decay) * mean_r);
        for (b = 0; b < B; b++) adv[b] = (float)(R[b] - s->st.baseline);
        t0 = now_seconds();
        if (ag_controller_update(s->ctx, &s->st.ctrl, &s->st.ctrl_opt, B, pidx[0] >= 0 ? h0 : NULL, pidx[0] >= 0 ? c0 : NULL,
                                 acts, adv, (float)s->o.entropy_coeff, &loss)) {
            fprintf(stderr, "search: %s\n", ag_ctx_error(s->ctx)); goto done;
        }
        s->t_ctrl += now_seconds() - t0;
        arch_str(archs, len, a, sizeof a);
        if (s->fctrl) fprintf(s->fctrl, "%d,%lld,%d,%s,%.6f,%.6f,%.6f,%.6f,%.6f\n", iter, (long long)s->st.ctrl_steps, s->st.stage, a,
                              mean_r, mean_e, s->st.baseline, mean_r - s->st.baseline, loss);
        printf("   controller step %d/%d  arch [%s]  reward %.4f  baseline %.4f  entropy %.3f  loss %.4f\n", step + 1, s->o.ctrl_step, a,
               mean_r, s->st.baseline, mean_e, loss);
        fflush(stdout);
        s->last_reward = (float)mean_r; s->have_reward = 1;
        s->st.ctrl_steps++;
    }
    rc = 0;
done:
    free(archs); free(pidx); free(acts); free(ent); free(h0); free(c0); free(adv); free(R);
    return rc;
}

/* a grid of 64 samples of G with arch (fixed noise from its own PRNG: the search's draws are untouched) */
static int save_grid(search *s, const int *arch, const char *path) {
    int n = 64, cols = 8, R, C = s->channels, W, Hh, i, c, yy, xx, shape[2], len = ag_arch_len(s->st.stage); ag_rng zr; ag_error err;
    ag_tensor *z, *y; unsigned char *pix; int rc;
    if (ag_generator_set_arch(&s->G, s->st.stage, arch, len, &err)) { fprintf(stderr, "search: %s\n", err.msg); return -1; }
    ag_rng_seed(&zr, 1234, 99);
    ag_ctx_reset(s->ctx);
    shape[0] = n; shape[1] = s->o.latent_dim;
    z = ag_tensor_new(s->ctx, 2, shape);
    if (z) ag_rng_fill_normal(&zr, z->data, z->size, 0.0f, 1.0f);
    s->G.training = 0; ag_ctx_set_grad_enabled(s->ctx, 0);
    y = ag_generator_forward(s->ctx, &s->G, z);
    ag_ctx_set_grad_enabled(s->ctx, 1); s->G.training = 1;
    if (!y) { fprintf(stderr, "search: sampling: %s\n", ag_ctx_error(s->ctx)); return -1; }
    R = y->shape[2];
    W = cols * (R + 2) + 2; Hh = (n / cols) * (R + 2) + 2;
    pix = (unsigned char *)calloc((size_t)W * Hh * C, 1);
    if (!pix) return -1;
    for (i = 0; i < n; i++) {
        int ox = 2 + (i % cols) * (R + 2), oy = 2 + (i / cols) * (R + 2);
        for (c = 0; c < C; c++) for (yy = 0; yy < R; yy++) for (xx = 0; xx < R; xx++) {
            float v = y->data[(((size_t)i * C + c) * R + yy) * R + xx]; int q = (int)floorf((v + 1.0f) * 127.5f + 0.5f);
            pix[((size_t)(oy + yy) * W + ox + xx) * C + c] = (unsigned char)(q < 0 ? 0 : q > 255 ? 255 : q);
        }
    }
    rc = ag_png_write(path, pix, W, Hh, C, &err);
    if (rc) fprintf(stderr, "search: %s\n", err.msg);
    free(pix);
    return rc;
}

static int save_checkpoint(search *s) {
    char extra[512], loader[256]; ag_error err;
    ag_data_loader_state_string(&s->loader, loader, sizeof loader);
    snprintf(extra, sizeof extra, "\"loader\":\"%s\",\"data_stage\":\"%d\",\"gf_dim\":\"%d\",\"df_dim\":\"%d\",\"latent_dim\":\"%d\",\"random_seed\":\"%llu\"",
             loader, s->data_stage, s->o.gf_dim, s->o.df_dim, s->o.latent_dim, s->o.random_seed);
    if (ag_search_save(s->ckpt, &s->st, &s->gan, s->ctx, extra, &err)) { fprintf(stderr, "search: checkpoint: %s\n", err.msg); return -1; }
    return 0;
}

static int write_final(search *s) {
    int k = s->o.topk, i, len = ag_arch_len(s->st.stage); int *archs = (int *)malloc(sizeof(int) * k * AG_ARCH_MAX);
    double *score = (double *)malloc(sizeof(double) * k); text out; ag_error err; char a[64]; int rc;
    if (!archs || !score) return -1;
    if (topk_archs(s, archs, score, NULL, NULL)) return -1;
    memset(&out, 0, sizeof out);
    text_put(&out, "# AutoGAN search %s: top %d of %d candidates at stage %d, reward IS (%s)\n", s->dir, k, s->o.num_candidate,
                s->st.stage, ag_scorer_kind(s->scorer));
    printf("discovered architectures (best first):\n");
    for (i = 0; i < k; i++) {
        arch_str(archs + i * AG_ARCH_MAX, len, a, sizeof a);
        text_put(&out, "build/train --arch %s   # IS %.4f\n", a, score[i]);
        printf("  build/train --arch %s   # IS %.4f\n", a, score[i]);
    }
    rc = ag_write_file_atomic(s->archs_txt, out.p, out.n, &err);
    if (rc) fprintf(stderr, "search: %s\n", err.msg);
    else printf("written to %s\n", s->archs_txt);
    free(out.p); free(archs); free(score);
    return rc;
}

int main(int argc, char **argv) {
    static search S; search *s = &S; ag_error err; char *meta = NULL, v[320]; int iter, rc = 1, start_iter = 0;
    parse_args(argc, argv, &s->o);
    s->data_stage = -1;
    s->ctx = ag_ctx_create(s->o.random_seed, &err);
    if (!s->ctx) { fprintf(stderr, "search: %s\n", err.msg); return 1; }
    if (s->o.threads) ag_ctx_set_threads(s->ctx, s->o.threads);

    /* the log directory: logs/EXP, or the one holding the checkpoint to resume */
    if (s->o.load_path) {
        if (dir_exists(s->o.load_path)) {
            join(s->dir, sizeof s->dir, s->o.load_path, "");
            join(s->ckpt, sizeof s->ckpt, s->dir, "/Model/checkpoint.safetensors");
        } else {
            const char *slash; size_t n;
            join(s->ckpt, sizeof s->ckpt, s->o.load_path, "");
            slash = strstr(s->o.load_path, "/Model/");
            n = slash ? (size_t)(slash - s->o.load_path) : 0;
            if (n >= sizeof s->dir) { fprintf(stderr, "search: path too long: %s\n", s->o.load_path); return 1; }
            memcpy(s->dir, n ? s->o.load_path : ".", n ? n : 1); s->dir[n ? n : 1] = 0;
        }
        if (!file_exists(s->ckpt)) { fprintf(stderr, "search: --load_path %s: no checkpoint at %s\n", s->o.load_path, s->ckpt); return 1; }
    } else {
        make_dir("logs");
        join(s->dir, sizeof s->dir, "logs/", s->o.exp_name);
        join(s->ckpt, sizeof s->ckpt, s->dir, "/Model/checkpoint.safetensors");
        if (file_exists(s->ckpt)) { fprintf(stderr, "search: %s already holds a search; resume it with --load_path %s or pick another --exp_name\n", s->dir, s->dir); return 1; }
    }
    make_dir(s->dir);
    join(v, sizeof v, s->dir, "/Model"); make_dir(v);
    join(s->samples_dir, sizeof s->samples_dir, s->dir, "/samples"); make_dir(s->samples_dir);
    join(s->search_csv, sizeof s->search_csv, s->dir, "/search.csv");
    join(s->ctrl_csv, sizeof s->ctrl_csv, s->dir, "/controller.csv");
    join(s->plot_png, sizeof s->plot_png, s->dir, "/controller.png");
    join(s->archs_txt, sizeof s->archs_txt, s->dir, "/archs.txt");

    /* the reward's scorer and the data */
    if (!(s->scorer = ag_scorer_load(s->o.classifier ? s->o.classifier : s->o.inception, &err))) { fprintf(stderr, "search: %s\n", err.msg); return 1; }
    if (s->o.threads) ag_scorer_set_threads(s->scorer, s->o.threads);
    if (ag_dataset_load(&s->full, s->o.dataset, s->o.data_path, s->o.split, 0, &err)) { fprintf(stderr, "search: %s\n", err.msg); return 1; }
    if (s->o.num_train_imgs > 0 && s->o.num_train_imgs < s->full.count) s->full.count = s->o.num_train_imgs;
    s->channels = s->o.channels ? s->o.channels : s->full.channels;
    printf("search: %s %s, %d images, %d channel(s); reward: IS by the %s (%s); %d thread(s)\n", s->o.dataset, s->o.split, s->full.count,
           s->channels, ag_scorer_kind(s->scorer), s->o.classifier ? s->o.classifier : s->o.inception, ag_ctx_threads(s->ctx));

    /* the shared GAN and the search state */
    if (ag_generator_init(&s->G, s->o.gf_dim, s->o.latent_dim, s->o.bottom_width, s->channels, ag_ctx_rng(s->ctx), &err) ||
        ag_discriminator_init(&s->D, s->o.df_dim, s->channels, s->o.d_spectral_norm, ag_ctx_rng(s->ctx), &err) ||
        ag_gan_init(&s->gan, &s->G, &s->D, s->o.dis_bs, s->o.gen_bs, s->o.n_critic, (float)s->o.g_lr, (float)s->o.d_lr,
                    (float)s->o.beta1, (float)s->o.beta2, &err) ||
        ag_search_state_init(&s->st, s->o.hid_size, (float)s->o.ctrl_lr, (float)s->o.beta1, (float)s->o.beta2,
                             s->o.dynamic_reset_window, s->o.random_seed, &err)) {
        fprintf(stderr, "search: %s\n", err.msg); return 1;
    }
    s->eval_imgs = (float *)malloc((size_t)s->o.rl_num_eval_img * s->channels * s->o.img_size * s->o.img_size * sizeof(float));
    if (!s->eval_imgs) { fprintf(stderr, "search: out of memory for %d reward images\n", s->o.rl_num_eval_img); return 1; }

    if (s->o.load_path) {
        int data_stage = -1;
        if (ag_search_load(s->ckpt, &s->st, &s->gan, s->ctx, &meta, &err)) { fprintf(stderr, "search: %s\n", err.msg); return 1; }
        start_iter = s->st.search_iter;
        if (ag_json_get_string(meta, "data_stage", v, sizeof v) == 0) data_stage = atoi(v);
        if (data_stage >= 0) {
            if (prepare_data(s, data_stage)) return 1;
            if (ag_json_get_string(meta, "loader", v, sizeof v) || ag_data_loader_restore(&s->loader, v, &err)) {
                fprintf(stderr, "search: %s: the data loader's position: %s\n", s->ckpt, err.msg); return 1;
            }
        }
        printf("=> resuming %s at search iteration %d (stage %d, %lld controller steps so far)\n", s->ckpt, start_iter, s->st.stage,
               (long long)s->st.ctrl_steps);
        if (csv_truncate(s->search_csv, start_iter) || csv_truncate(s->ctrl_csv, start_iter)) return 1;
    }
    else if (csv_truncate(s->search_csv, 0) || csv_truncate(s->ctrl_csv, 0)) return 1;   /* a fresh start in a used directory */
    if (prepare_data(s, s->st.stage)) return 1;
    s->fsearch = csv_open(s->search_csv, "search_iter,stage,epoch,batch,d_loss,g_loss,g_step");
    s->fctrl = csv_open(s->ctrl_csv, "search_iter,step,stage,arch,reward,entropy,baseline,advantage,loss");
    if (!s->fsearch || !s->fctrl) return 1;

    s->t_start = now_seconds();
    for (iter = start_iter; iter < s->o.max_search_iter; iter++) {
        int reset, best[AG_ARCH_MAX]; double best_r, el, eta; char a[64], e1[32], e2[32], path[400];
        printf("<search iteration %d/%d, stage %d>\n", iter, s->o.max_search_iter, s->st.stage);
        if ((iter == s->o.grow_step1 || iter == s->o.grow_step2) && stage_of(&s->o, iter) != s->st.stage)
            if (grow(s, stage_of(&s->o, iter))) goto out;
        if ((reset = train_shared(s, iter)) < 0) goto out;
        if (train_controller(s, iter, best, &best_r)) goto out;
        if (reset) {
            printf("=> re-initialise the shared GAN (G, D and their Adam states)\n");
            ag_generator_reset_params(&s->G, ag_ctx_rng(s->ctx));
            ag_discriminator_reset_params(&s->D, ag_ctx_rng(s->ctx));
            ag_adam_reset(&s->gan.opt_g); ag_adam_reset(&s->gan.opt_d);
        }
        fflush(s->fsearch); fflush(s->fctrl);
        if (s->o.ctrl_step > 0) {
            { char f[32]; snprintf(f, sizeof f, "/iter_%03d.png", iter); join(path, sizeof path, s->samples_dir, f); }
            if (save_grid(s, best, path)) goto out;
            if (plot_controller(s->ctrl_csv, s->plot_png)) goto out;
        }
        s->st.search_iter = iter + 1;
        if (save_checkpoint(s)) goto out;
        s->iters_done_this_run++;
        el = now_seconds() - s->t_start;
        eta = el / s->iters_done_this_run * (s->o.max_search_iter - iter - 1);
        fmt_time(el, e1, sizeof e1); fmt_time(eta, e2, sizeof e2);
        arch_str(best, ag_arch_len(s->st.stage), a, sizeof a);
        printf("[iter %d/%d done] stage %d  last reward %.4f  best this iteration [%s]  elapsed %s  ETA %s  (shared %.0fs, rewards %.0fs, controller %.1fs)\n",
               iter + 1, s->o.max_search_iter, s->st.stage, s->last_reward, a, e1, e2, s->t_shared, s->t_reward, s->t_ctrl);
        fflush(stdout);
        if (s->o.stop_after_iter && s->iters_done_this_run >= s->o.stop_after_iter) { printf("stopping after %d iterations (--stop_after_iter)\n", s->iters_done_this_run); rc = 0; goto out; }
    }
    if (write_final(s)) goto out;
    printf("outputs: %s/ (search.csv, controller.csv, controller.png, samples/, archs.txt, Model/checkpoint.safetensors)\n", s->dir);
    rc = 0;
out:
    if (s->fsearch) fclose(s->fsearch);
    if (s->fctrl) fclose(s->fctrl);
    free(meta); free(s->batch); free(s->eval_imgs);
    ag_search_state_free(&s->st); ag_gan_free(&s->gan); ag_generator_free(&s->G); ag_discriminator_free(&s->D);
    ag_data_loader_free(&s->loader); ag_dataset_free(&s->data); ag_dataset_free(&s->full);
    ag_scorer_free(s->scorer); ag_ctx_free(s->ctx);
    return rc;
}
