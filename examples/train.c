/* train.c - train a found AutoGAN architecture: the C form of the authors' train.py /
   train_derived.py (functions.train, validate, LinearLrDecay, the EMA generator).

   build/train --gen_model autogan_cifar10_a --dataset fashion-mnist --gf_dim 64 --df_dim 64 \
               --gen_bs 64 --dis_bs 32 --n_critic 5 --max_iter 3000 --val_freq 1 \
               --classifier weights/fashion-mnist-classifier.safetensors --exp_name fmnist_a

   As the reference: epochs of the data loader (shuffled, last batch partial), one D step per
   batch and a G step whenever the D-step counter is a multiple of --n_critic (before the
   step). --max_iter N stops right after the N-th G step (the reference rounds up to whole
   epochs), else --max_epoch x n_critic epochs. After every G step the EMA (0.999) of G's
   parameters is updated (BatchNorm buffers stay live); --lr_decay decays both rates linearly
   to 0 over max_iter x n_critic D steps (the reference's schedule), set at G steps. Every
   --val_freq epochs (not epoch 0), every --val_freq_iter G steps and at the end of the run
   the EMA generator in eval mode makes --num_eval_imgs images, scored with IS and FID
   (--inception W --fid_stat S, or --classifier W [--fid_stat S]; without --fid_stat the
   classifier's statistics of the training set are computed once); the 25 fixed z give 5x5
   grids of the live and the EMA generator.
   Files, all written to a temporary name and renamed (logs/EXP/ from --log_dir, --exp_name):
     Model/checkpoint.safetensors       after every epoch and every evaluation: gen_state_dict,
                                        avg_gen_state_dict, dis_state_dict, gen_optimizer,
                                        dis_optimizer, and in the metadata every setting, epoch,
                                        best_fid, the loader's and the data rng's state
                                        (the reference's checkpoint.pth, as safetensors)
     Model/checkpoint_best.safetensors  the checkpoint of the lowest FID so far, written before
                                        checkpoint.safetensors (a run killed between the two
                                        redoes both when resumed)
     Model/avg_gen_gNNNNNN.safetensors  the EMA generator of each evaluation (--rescore)
     train.csv, eval.csv, eval.png      losses; epoch, G step, IS, FID, seconds; IS/FID plot
     Samples/grid_{live,ema}_gNNNNNN.png  the 5x5 grids of G step NNNNNN (and
                                        grid_{live,ema}.png, the latest)
   Every input (data set, scorer, statistics) is loaded before logs/EXP is created. A fresh run
   refuses a directory that holds anything (another training run, a search, other files),
   saying how to resume it; --overwrite first removes the files a training run writes there
   (never a search's). The run directory is locked (EXP/.lock) while a process works in it.
   --load_path EXP_DIR or CHECKPOINT resumes: every setting comes from the checkpoint, checked
   as strictly as the flag that set it; a flag given with it replaces the stored value, except
   the model and the data set, which must match. It continues to the same files as an
   uninterrupted run with the same thread count (the checkpoint's, unless --threads is given).
   --export OUT.safetensors with --load_path writes the EMA generator alone (what build/sample
   --load_path reads) and exits. */
#if !defined(_POSIX_C_SOURCE) && !defined(_WIN32)
#define _POSIX_C_SOURCE 200809L
#endif
#define AUTOGAN_IMPLEMENTATION
#include "../autogan.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdarg.h>
#include <errno.h>
#include <math.h>
#include "cli.h"
#if defined(__unix__) || defined(__APPLE__)
#include <sys/stat.h>
#include <dirent.h>
#include <unistd.h>
#define TRAIN_HAVE_DIRENT 1
#endif

/* the settings a resumed run takes from its checkpoint unless the flag is given */
enum { G_DATASET, G_DATA_PATH, G_GEN_BS, G_DIS_BS, G_N_CRITIC, G_MAX_ITER, G_MAX_EPOCH, G_LR_DECAY, G_G_LR, G_D_LR,
       G_BETA1, G_BETA2, G_EMA, G_VAL_FREQ, G_VAL_FREQ_ITER, G_PRINT_FREQ, G_NUM_EVAL, G_EVAL_BS, G_SEED, G_FID_STAT,
       G_THREADS, G_NUM_TRAIN, G_COUNT };

typedef struct options {
    const char *gen_model, *dataset, *data_path, *load_path, *exp_name, *log_dir, *inception, *classifier, *fid_stat, *export_path, *rescore;
    int arch[AG_ARCH_MAX], arch_len;
    int gf, df, latent, bottom_width, channels, gen_bs, dis_bs, n_critic, max_iter, max_epoch, val_freq, print_freq;
    int num_eval, eval_bs, threads, spectral_norm, lr_decay, splits, val_freq_iter, num_train_imgs, overwrite;
    double g_lr, d_lr, beta1, beta2, ema;
    unsigned long long seed;
    /* which model flags were given (a resumed checkpoint must agree with them) */
    int set_gf, set_df, set_latent, set_bw, set_channels, set_sn;
    /* which settings were given, recorded by the parser (any spelling: aliases, --flag=value) */
    unsigned char given[G_COUNT];
    char *owned[5];   /* the strings taken from a checkpoint (freed at the end) */
} options;

/* the limits of the flags, shared by the parser and the checks of a checkpoint's settings */
#define LIM_BS_LO 2
#define LIM_BS_HI 65536
#define LIM_N_CRITIC 1000
#define LIM_MAX_ITER 100000000
#define LIM_MAX_EPOCH 1000000
#define LIM_BETA 0.999999
#define LIM_VAL_FREQ 1000000
#define LIM_PRINT_FREQ 1000000000
#define LIM_NUM_EVAL_LO 10
#define LIM_NUM_EVAL_HI 10000000
#define LIM_EVAL_BS 4096
#define LIM_NUM_TRAIN 100000000

static void usage(void) {
    fprintf(stderr,
        "usage: train (--gen_model NAME | --arch T1 ... T14) --exp_name NAME [options]\n"
        "       train --load_path EXP_DIR|CHECKPOINT [options]   (resume)\n"
        "  --gen_model NAME   autogan_cifar10_a | autogan_cifar10_b | autogan_cifar10_c\n"
        "  --arch TOKENS      14 tokens, e.g. 1 0 1 1 1 0 0 1 1 1 0 1 0 3 (pre-activation bilinear/nearest cells: the\n"
        "                     derived model's names; any other arch: the shared generator set to it)\n"
        "  --gf_dim N (256)  --df_dim N (128)  --latent_dim N (128)  --bottom_width N (4: 32x32)\n"
        "  --dataset NAME (fashion-mnist) cifar10|stl10|mnist|fashion-mnist|folder  --data_path P\n"
        "  --num_train_imgs N (0 = all; the first N training images)\n"
        "  --channels N       images' channels (1 for (fashion-)mnist, 3 otherwise)\n"
        "  --gen_bs N (64)  --dis_bs N (64)  --n_critic N (1)  --max_iter N (stop after N G steps)  --max_epoch N (200)\n"
        "  --g_lr X --d_lr X (2e-4)  --beta1 X (0.0)  --beta2 X (0.9)  --lr_decay  --ema X (0.999)\n"
        "  --d_spectral_norm True|False (True)  --random_seed N (12345)  --threads N (0-256; 0 = OpenMP's default)\n"
        "  --val_freq N (20 epochs)  --val_freq_iter N (also every N G steps, with a checkpoint; 0 = off)\n"
        "  --print_freq N (100 D steps)  --num_eval_imgs N (50000)  --eval_batch_size (--batch) N (100)\n"
        "  --inception W.pth --fid_stat S.npz | --classifier W.safetensors [--fid_stat (--stats) S.npz]\n"
        "  --exp_name NAME  --log_dir DIR (logs)  --load_path (--resume) EXP_DIR|CHECKPOINT\n"
        "  --overwrite        a fresh run into a directory holding a training run: remove its files first\n"
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
#define GIVEN(id) (o->given[id] = 1)
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
        else if (cli_is(&c, "--gen_bs") || cli_is(&c, "--gen_batch_size") || cli_is(&c, "-gen_bs")) { o->gen_bs = (int)cli_int(&c, LIM_BS_LO, LIM_BS_HI); GIVEN(G_GEN_BS); }
        else if (cli_is(&c, "--dis_bs") || cli_is(&c, "--dis_batch_size") || cli_is(&c, "-dis_bs")) { o->dis_bs = (int)cli_int(&c, LIM_BS_LO, LIM_BS_HI); GIVEN(G_DIS_BS); }
        else if (cli_is(&c, "--n_critic")) { o->n_critic = (int)cli_int(&c, 1, LIM_N_CRITIC); GIVEN(G_N_CRITIC); }
        else if (cli_is(&c, "--max_iter")) { o->max_iter = (int)cli_int(&c, 1, LIM_MAX_ITER); GIVEN(G_MAX_ITER); }
        else if (cli_is(&c, "--max_epoch")) { o->max_epoch = (int)cli_int(&c, 1, LIM_MAX_EPOCH); GIVEN(G_MAX_EPOCH); }
        else if (cli_is(&c, "--g_lr")) { o->g_lr = cli_float(&c, 0.0, 1.0); GIVEN(G_G_LR); }
        else if (cli_is(&c, "--d_lr")) { o->d_lr = cli_float(&c, 0.0, 1.0); GIVEN(G_D_LR); }
        else if (cli_is(&c, "--beta1")) { o->beta1 = cli_float(&c, 0.0, LIM_BETA); GIVEN(G_BETA1); }
        else if (cli_is(&c, "--beta2")) { o->beta2 = cli_float(&c, 0.0, LIM_BETA); GIVEN(G_BETA2); }
        else if (cli_is(&c, "--lr_decay")) { o->lr_decay = 1; GIVEN(G_LR_DECAY); }
        else if (cli_is(&c, "--ema")) { o->ema = cli_float(&c, 0.0, LIM_BETA); GIVEN(G_EMA); }
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
        } else if (cli_is(&c, "--random_seed") || cli_is(&c, "--seed")) { o->seed = cli_u64(&c); GIVEN(G_SEED); }
        else if (cli_is(&c, "--threads")) { o->threads = cli_threads(&c); GIVEN(G_THREADS); }
        else if (cli_is(&c, "--dataset")) { o->dataset = cli_str(&c); GIVEN(G_DATASET); }
        else if (cli_is(&c, "--data_path")) { o->data_path = cli_str(&c); GIVEN(G_DATA_PATH); }
        else if (cli_is(&c, "--num_train_imgs")) { o->num_train_imgs = (int)cli_int(&c, 0, LIM_NUM_TRAIN); GIVEN(G_NUM_TRAIN); }
        else if (cli_is(&c, "--val_freq")) { o->val_freq = (int)cli_int(&c, 1, LIM_VAL_FREQ); GIVEN(G_VAL_FREQ); }
        else if (cli_is(&c, "--val_freq_iter")) { o->val_freq_iter = (int)cli_int(&c, 0, LIM_MAX_ITER); GIVEN(G_VAL_FREQ_ITER); }
        else if (cli_is(&c, "--print_freq")) { o->print_freq = (int)cli_int(&c, 1, LIM_PRINT_FREQ); GIVEN(G_PRINT_FREQ); }
        else if (cli_is(&c, "--num_eval_imgs")) { o->num_eval = (int)cli_int(&c, LIM_NUM_EVAL_LO, LIM_NUM_EVAL_HI); GIVEN(G_NUM_EVAL); }
        else if (cli_is(&c, "--eval_batch_size") || cli_is(&c, "--batch")) { o->eval_bs = (int)cli_int(&c, 1, LIM_EVAL_BS); GIVEN(G_EVAL_BS); }
        else if (cli_is(&c, "--inception")) o->inception = cli_str(&c);
        else if (cli_is(&c, "--classifier")) o->classifier = cli_str(&c);
        else if (cli_is(&c, "--fid_stat") || cli_is(&c, "--stats")) { o->fid_stat = cli_str(&c); GIVEN(G_FID_STAT); }
        else if (cli_is(&c, "--exp_name")) o->exp_name = cli_str(&c);
        else if (cli_is(&c, "--log_dir")) o->log_dir = cli_str(&c);
        else if (cli_is(&c, "--load_path") || cli_is(&c, "--resume")) o->load_path = cli_str(&c);
        else if (cli_is(&c, "--overwrite")) o->overwrite = 1;
        else if (cli_is(&c, "--export")) o->export_path = cli_str(&c);
        else if (cli_is(&c, "--rescore")) o->rescore = cli_str(&c);
        else if (cli_is(&c, "-h") || cli_is(&c, "--help")) { usage(); exit(0); }
        else cli_unknown(&c);
    }
#undef GIVEN
    if (o->inception && o->classifier) cli_fail(&c, "give --inception or --classifier, not both");
    if (o->inception && !o->fid_stat) cli_fail(&c, "--inception needs --fid_stat S.npz (the data set's Inception statistics)");
    if (o->fid_stat && !o->inception && !o->classifier) cli_fail(&c, "--fid_stat needs --inception W or --classifier W");
    if (o->export_path && !o->load_path) cli_fail(&c, "--export needs --load_path CHECKPOINT");
    if (o->rescore && !o->inception && !o->classifier) cli_fail(&c, "--rescore needs --classifier W or --inception W");
    if (o->overwrite && o->load_path) cli_fail(&c, "--overwrite is for a fresh run; --load_path continues the run it names");
    if (!o->load_path && !o->rescore) {
        if (!o->gen_model && !o->arch_len) cli_fail(&c, "give --gen_model NAME or --arch (14 tokens), or --load_path to resume");
        if (!o->exp_name) cli_fail(&c, "--exp_name NAME is required (logs go to %s/NAME)", o->log_dir);
    }
    if (o->exp_name && (!o->exp_name[0] || !strcmp(o->exp_name, ".") || !strcmp(o->exp_name, "..") || strchr(o->exp_name, '/')))
        cli_fail(&c, "--exp_name '%s': give a name for the run's directory under --log_dir %s (not empty, '.', '..', and no '/': set --log_dir for another parent)",
                 o->exp_name, o->log_dir);
    if (!o->log_dir[0]) cli_fail(&c, "--log_dir needs a directory");
    if (o->arch_len && o->arch_len != AG_ARCH_MAX) cli_fail(&c, "--arch has %d tokens; a derived model has 14", o->arch_len);
    {
        int i;
        for (i = 0; i < o->arch_len; i++)
            if (o->arch[i] >= ag_arch_token_choices(i))
                cli_fail(&c, "--arch token %d is %d; it must be 0 to %d", i + 1, o->arch[i], ag_arch_token_choices(i) - 1);
    }
    if (o->num_eval < o->splits) cli_fail(&c, "--num_eval_imgs %d is fewer than the %d Inception-score splits", o->num_eval, o->splits);
}

/* ---- small helpers: strings of any length, directories ---- */
static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) { fprintf(stderr, "train: out of memory\n"); exit(1); }
    return p;
}
static char *xprintf(const char *fmt, ...) {
    va_list ap; int n; char *s;
    va_start(ap, fmt); n = vsnprintf(NULL, 0, fmt, ap); va_end(ap);
    if (n < 0) { fprintf(stderr, "train: cannot format '%s'\n", fmt); exit(1); }
    s = (char *)xmalloc((size_t)n + 1);
    va_start(ap, fmt); vsnprintf(s, (size_t)n + 1, fmt, ap); va_end(ap);
    return s;
}
static char *xstrdup(const char *v) { return v ? xprintf("%s", v) : NULL; }
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
/* --log_dir exists as a directory, or its parent does (so it can be made), checked before
   anything is created */
static int log_dir_possible(const char *dir) {
#if defined(__unix__) || defined(__APPLE__)
    struct stat st; char *parent, *slash; size_t n = strlen(dir); int ok;
    if (stat(dir, &st) == 0) return S_ISDIR(st.st_mode) && access(dir, W_OK | X_OK) == 0;
    while (n > 1 && dir[n - 1] == '/') n--;
    parent = xprintf("%.*s", (int)n, dir);
    if (!(slash = strrchr(parent, '/'))) { free(parent); parent = xstrdup("."); }
    else if (slash == parent) slash[1] = 0;
    else *slash = 0;
    ok = stat(parent, &st) == 0 && S_ISDIR(st.st_mode) && access(parent, W_OK | X_OK) == 0;
    free(parent);
    return ok;
#else
    (void)dir; return 1;
#endif
}

/* a text file kept in memory and rewritten whole (temp file, fsync, rename) on every change */
typedef struct textlog { char *p; size_t n, cap; char *path; } textlog;
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
/* on resume: keep the header and the rows whose column col (0-based) is at most max_v (the
   checkpoint's D step for train.csv, its last evaluated G step for eval.csv) */
static int textlog_load_upto(textlog *t, const char *header, int col, long long max_v) {
    unsigned char *bytes = NULL; size_t len = 0, i, start = 0; ag_error err; int line = 0;
    t->n = 0;
    if (textlog_add(t, header)) return -1;
    if (ag_read_file(t->path, &bytes, &len, &err)) return 0;   /* no earlier log: start a new one */
    for (i = 0; i < len; i++) if (bytes[i] == '\n') {
        char row[1024]; size_t k = i - start; const char *p; int c; long long g = -1;
        if (k < sizeof row - 2 && line++) {
            memcpy(row, bytes + start, k); row[k] = '\n'; row[k + 1] = 0;
            for (p = row, c = 0; c < col && p; c++) { p = strchr(p, ','); if (p) p++; }
            if (p && sscanf(p, "%lld", &g) == 1 && g <= max_v && textlog_add(t, row)) { free(bytes); return -1; }
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
/* G in eval mode on z [n, latent] -> out [n, C, R, R] */
static int generate(ag_ctx *ctx, ag_generator *G, const float *z, int n, float *out) {
    if (ag_generator_generate(ctx, G, z, n, out)) { fprintf(stderr, "train: generating images failed: %s\n", ag_ctx_error(ctx)); return -1; }
    return 0;
}
/* the 25 fixed z as a 5x5 grid, 2-pixel gaps, quantised as the reference */
static int save_grid(ag_ctx *ctx, ag_generator *G, const float *fixed_z, const char *path) {
    int R = ag_stage_resolution(G->stage, G->bottom_width), C = G->out_channels, rc = -1;
    float *img = (float *)malloc((size_t)25 * C * R * R * sizeof(float)); unsigned char *pix = (unsigned char *)malloc((size_t)25 * C * R * R);
    ag_error err;
    if (!img || !pix) { free(img); free(pix); fprintf(stderr, "train: out of memory\n"); return -1; }
    if (!generate(ctx, G, fixed_z, 25, img) && !ag_images_to_u8(img, 25, C, R, R, C, AG_U8_TRUNCATE, pix)) {
        rc = ag_png_write_grid(path, pix, 25, R, R, C, 5, 2, &err);
        if (rc) fprintf(stderr, "train: %s\n", err.msg);
    }
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

/* ---- a checkpoint's settings and state, each checked as strictly as the flag that set it ---- */
static void ck_bad(const char *ckpt, const char *key, const char *v, const char *what) {
    fprintf(stderr, "train: %s: checkpoint metadata '%s' is '%.80s%s'; %s\n", ckpt, key, v, strlen(v) > 80 ? "..." : "", what);
}
/* the value of key (malloc'd), or NULL and a message naming the file and the key */
static char *ck_str(const char *ckpt, const char *meta, const char *key) {
    char *v = ag_json_get_string_alloc(meta, key);
    if (!v) fprintf(stderr, "train: %s: checkpoint metadata '%s' is missing\n", ckpt, key);
    return v;
}
/* a decimal integer in [lo, hi], the whole text (as cli_int); `as` names what set it */
static int ck_int(const char *ckpt, const char *meta, const char *key, long long lo, long long hi, const char *as, long long *out) {
    char *v = ck_str(ckpt, meta, key), *end, what[160]; long long x;
    if (!v) return -1;
    errno = 0;
    x = strtoll(v, &end, 10);
    if (end == v || *end || v[0] == ' ' || v[0] == '\t' || v[0] == '+' || errno == ERANGE || x < lo || x > hi) {
        snprintf(what, sizeof what, "it must be an integer from %lld to %lld (%s)", lo, hi, as);
        ck_bad(ckpt, key, v, what); free(v); return -1;
    }
    free(v); *out = x;
    return 0;
}
/* a finite number in [lo, hi], the whole text (as cli_float) */
static int ck_double(const char *ckpt, const char *meta, const char *key, double lo, double hi, const char *as, double *out) {
    char *v = ck_str(ckpt, meta, key), *end, what[160]; double x;
    if (!v) return -1;
    errno = 0;
    x = strtod(v, &end);
    if (end == v || *end || v[0] == ' ' || v[0] == '\t' || !isfinite(x) || x < lo || x > hi) {
        snprintf(what, sizeof what, "it must be a finite number from %g to %g (%s)", lo, hi, as);
        ck_bad(ckpt, key, v, what); free(v); return -1;
    }
    free(v); *out = x;
    return 0;
}
/* n hexadecimal words (lower case, one space apart), each at most 16 digits */
static int ck_hex(const char *ckpt, const char *meta, const char *key, int n, int max_digits, unsigned long long *out, const char *as) {
    char *v = ck_str(ckpt, meta, key), what[160]; const char *p; int k;
    if (!v) return -1;
    for (p = v, k = 0; k < n; k++) {
        int d = 0; unsigned long long x = 0;
        if (k) { if (*p != ' ') break; p++; }
        while ((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')) { x = x * 16 + (unsigned long long)(*p <= '9' ? *p - '0' : *p - 'a' + 10); p++; d++; }
        if (!d || d > max_digits) break;
        out[k] = x;
    }
    if (k < n || *p) {
        snprintf(what, sizeof what, "it must be %s", as);
        ck_bad(ckpt, key, v, what); free(v); return -1;
    }
    free(v);
    return 0;
}
/* an optional path or name: NULL when empty */
static int ck_path(const char *ckpt, const char *meta, const char *key, char **out) {
    char *v = ck_str(ckpt, meta, key);
    if (!v) return -1;
    if (!v[0]) { free(v); v = NULL; }
    *out = v;
    return 0;
}

/* what a build/train checkpoint records besides its settings */
typedef struct train_state {
    int epoch, batch;
    long long g_steps, last_eval_g;
    double best_fid, train_seconds;
    unsigned long long data_rng[2];
    float g_lr, d_lr, g_loss;   /* g_loss: the last G step's, printed with the D steps after it */
    char *loader, *exp_dir;
} train_state;

static int ck_lr_bits(const char *ckpt, const char *meta, const char *key, float *out) {
    unsigned long long b; unsigned u; float f;
    if (ck_hex(ckpt, meta, key, 1, 8, &b, "the bits of a float32 learning rate (8 hexadecimal digits)")) return -1;
    u = (unsigned)b; memcpy(&f, &u, 4);
    if (!isfinite(f) || f < 0.0f || f > 1.0f) {
        char v[16], what[96]; snprintf(v, sizeof v, "%08x", u);
        snprintf(what, sizeof what, "that is the learning rate %g; it must be from 0 to 1 (as --g_lr, --d_lr)", (double)f);
        ck_bad(ckpt, key, v, what); return -1;
    }
    *out = f;
    return 0;
}

/* Every setting and the state of a build/train checkpoint, checked; a setting whose flag was
   given keeps the flag's value, except the data set and the batch layout (--dataset, --dis_bs,
   --n_critic, --num_train_imgs), which must match: the checkpoint's loader position and step
   counters are only meaningful with them. Returns -1 after a message. */
static int read_checkpoint(options *o, const char *ckpt, const char *meta, const ag_gan_checkpoint_info *info, train_state *st) {
    long long x; double d; unsigned long long u[2]; char *s = NULL; int n_critic;
    memset(st, 0, sizeof *st);
    /* the data and the schedule */
    if (!(s = ck_str(ckpt, meta, "dataset"))) return -1;
    if (!s[0]) { ck_bad(ckpt, "dataset", s, "it must name a data set (as --dataset)"); free(s); return -1; }
    if (o->given[G_DATASET] && strcmp(s, o->dataset)) {
        fprintf(stderr, "train: --load_path %s was trained on %s; --dataset %s would change the data under it (leave --dataset out)\n", ckpt, s, o->dataset);
        free(s); return -1;
    }
    o->dataset = o->owned[0] = s;
#define MATCH(gid, field, key, flag) do { if (o->given[gid] && (long long)(field) != x) { \
        fprintf(stderr, "train: --load_path %s was trained with %s %lld; %s %lld would change the run under its loader position and step counters (leave %s out)\n", \
                ckpt, flag, x, flag, (long long)(field), flag); return -1; } (field) = (int)x; } while (0)
#define TAKE(gid, field) do { if (!o->given[gid]) (field) = (int)x; } while (0)
    if (ck_path(ckpt, meta, "data_path", &s)) return -1;
    if (!o->given[G_DATA_PATH]) o->data_path = o->owned[1] = s; else free(s);
    if (ck_int(ckpt, meta, "dis_bs", LIM_BS_LO, LIM_BS_HI, "as --dis_bs", &x)) return -1;
    MATCH(G_DIS_BS, o->dis_bs, "dis_bs", "--dis_bs");
    if (ck_int(ckpt, meta, "n_critic", 1, LIM_N_CRITIC, "as --n_critic", &x)) return -1;
    MATCH(G_N_CRITIC, o->n_critic, "n_critic", "--n_critic");
    n_critic = (int)x;
    if (meta && strstr(meta, "\"num_train_imgs\"")) {   /* absent before it was recorded: all images */
        if (ck_int(ckpt, meta, "num_train_imgs", 0, LIM_NUM_TRAIN, "as --num_train_imgs", &x)) return -1;
    } else x = 0;
    MATCH(G_NUM_TRAIN, o->num_train_imgs, "num_train_imgs", "--num_train_imgs");
    if (ck_int(ckpt, meta, "gen_bs", LIM_BS_LO, LIM_BS_HI, "as --gen_bs", &x)) return -1;
    TAKE(G_GEN_BS, o->gen_bs);
    if (ck_int(ckpt, meta, "max_iter", 0, LIM_MAX_ITER, "as --max_iter; 0: by --max_epoch", &x)) return -1;
    TAKE(G_MAX_ITER, o->max_iter);
    if (ck_int(ckpt, meta, "max_epoch", 1, LIM_MAX_EPOCH, "as --max_epoch", &x)) return -1;
    TAKE(G_MAX_EPOCH, o->max_epoch);
    if (ck_int(ckpt, meta, "lr_decay", 0, 1, "as --lr_decay: 0 off, 1 on", &x)) return -1;
    TAKE(G_LR_DECAY, o->lr_decay);
    if (ck_double(ckpt, meta, "g_lr", 0.0, 1.0, "as --g_lr", &d)) return -1;
    if (!o->given[G_G_LR]) o->g_lr = d;
    if (ck_double(ckpt, meta, "d_lr", 0.0, 1.0, "as --d_lr", &d)) return -1;
    if (!o->given[G_D_LR]) o->d_lr = d;
    if (ck_double(ckpt, meta, "beta1", 0.0, LIM_BETA, "as --beta1", &d)) return -1;
    if (!o->given[G_BETA1]) o->beta1 = d;
    if (ck_double(ckpt, meta, "beta2", 0.0, LIM_BETA, "as --beta2", &d)) return -1;
    if (!o->given[G_BETA2]) o->beta2 = d;
    if (ck_double(ckpt, meta, "ema_decay", 0.0, LIM_BETA, "as --ema", &d)) return -1;
    if (!o->given[G_EMA]) o->ema = d;
    {
        char *v = ck_str(ckpt, meta, "seed"), *end; unsigned long long seed;
        if (!v) return -1;
        errno = 0; seed = strtoull(v, &end, 10);
        if (!(v[0] >= '0' && v[0] <= '9') || *end || errno == ERANGE) { ck_bad(ckpt, "seed", v, "it must be a non-negative 64-bit integer (as --random_seed)"); free(v); return -1; }
        free(v);
        if (!o->given[G_SEED]) o->seed = seed;
    }
    /* evaluation and logging */
    if (ck_int(ckpt, meta, "val_freq", 1, LIM_VAL_FREQ, "as --val_freq", &x)) return -1;
    TAKE(G_VAL_FREQ, o->val_freq);
    if (ck_int(ckpt, meta, "val_freq_iter", 0, LIM_MAX_ITER, "as --val_freq_iter; 0: off", &x)) return -1;
    TAKE(G_VAL_FREQ_ITER, o->val_freq_iter);
    if (ck_int(ckpt, meta, "print_freq", 1, LIM_PRINT_FREQ, "as --print_freq", &x)) return -1;
    TAKE(G_PRINT_FREQ, o->print_freq);
    if (ck_int(ckpt, meta, "num_eval_imgs", o->splits, LIM_NUM_EVAL_HI, "as --num_eval_imgs, at least the Inception-score splits", &x)) return -1;
    TAKE(G_NUM_EVAL, o->num_eval);
    if (ck_int(ckpt, meta, "eval_batch_size", 1, LIM_EVAL_BS, "as --eval_batch_size", &x)) return -1;
    TAKE(G_EVAL_BS, o->eval_bs);
    if (ck_int(ckpt, meta, "threads", 0, AG_MAX_THREADS, "as --threads", &x)) return -1;
    TAKE(G_THREADS, o->threads);
#undef MATCH
#undef TAKE
    {   /* the scorer of the run, unless another is named */
        char *inc = NULL, *cls = NULL, *fs = NULL;
        if (ck_path(ckpt, meta, "inception", &inc) || ck_path(ckpt, meta, "classifier", &cls) || ck_path(ckpt, meta, "fid_stat", &fs)) { free(inc); free(cls); return -1; }
        if ((inc && cls) || (inc && !fs) || (fs && !inc && !cls)) {
            fprintf(stderr, "train: %s: checkpoint metadata 'inception', 'classifier', 'fid_stat' name no valid scorer (as the flags: --inception W --fid_stat S, or --classifier W [--fid_stat S])\n", ckpt);
            free(inc); free(cls); free(fs); return -1;
        }
        if (!o->inception && !o->classifier) {
            o->inception = o->owned[2] = inc; o->classifier = o->owned[3] = cls; inc = cls = NULL;
            if (!o->given[G_FID_STAT]) { o->fid_stat = o->owned[4] = fs; fs = NULL; }
        }
        free(inc); free(cls); free(fs);
    }
    /* where the run stands */
    if (ck_int(ckpt, meta, "epoch", 0, (long long)LIM_MAX_EPOCH * LIM_N_CRITIC, "an epoch count", &x)) return -1;
    st->epoch = (int)x;
    if (ck_int(ckpt, meta, "batch", 0, LIM_NUM_TRAIN, "a batch index within the epoch", &x)) return -1;
    st->batch = (int)x;
    if (ck_int(ckpt, meta, "g_steps", 0, (long long)1 << 53, "a G step count", &st->g_steps)) return -1;
    if (st->g_steps != (info->iteration + n_critic - 1) / n_critic) {
        char v[32], what[200]; snprintf(v, sizeof v, "%lld", st->g_steps);
        snprintf(what, sizeof what, "its D step counter %lld at n_critic %d means %lld G steps", (long long)info->iteration, n_critic,
                 (long long)((info->iteration + n_critic - 1) / n_critic));
        ck_bad(ckpt, "g_steps", v, what); return -1;
    }
    if (meta && strstr(meta, "\"last_eval_g\"")) {   /* absent before it was recorded */
        if (ck_int(ckpt, meta, "last_eval_g", -1, st->g_steps, "the last evaluated G step, -1 for none", &st->last_eval_g)) return -1;
    } else st->last_eval_g = -1;
    if (ck_double(ckpt, meta, "best_fid", -1e300, 1e300, "the lowest FID so far", &st->best_fid)) return -1;
    if (ck_double(ckpt, meta, "train_seconds", 0.0, 1e300, "seconds of training", &st->train_seconds)) return -1;
    if (ck_hex(ckpt, meta, "data_rng", 2, 16, u, "the data rng's state and increment: two hexadecimal numbers")) return -1;
    if (!(u[1] & 1)) { char v[48]; snprintf(v, sizeof v, "%llx %llx", u[0], u[1]); ck_bad(ckpt, "data_rng", v, "a PCG32 increment is odd"); return -1; }
    st->data_rng[0] = u[0]; st->data_rng[1] = u[1];
    if (ck_lr_bits(ckpt, meta, "g_lr_bits", &st->g_lr) || ck_lr_bits(ckpt, meta, "d_lr_bits", &st->d_lr)) return -1;
    if (meta && strstr(meta, "\"g_loss\"")) {   /* absent before it was recorded */
        if (ck_double(ckpt, meta, "g_loss", -3e38, 3e38, "the last G loss", &d)) return -1;
        st->g_loss = (float)d;
    }
    if (!(st->loader = ck_str(ckpt, meta, "loader"))) return -1;
    if (!(st->exp_dir = ck_str(ckpt, meta, "exp_dir"))) return -1;
    if (!st->exp_dir[0]) { ck_bad(ckpt, "exp_dir", "", "it must name the run's directory"); return -1; }
    return 0;
}

/* a fresh run never writes over another: 0 when exp_dir is absent or empty (or holds a
   training run and --overwrite is given), else 1 after saying what it holds and what to do */
static int refuse_occupied(const char *exp_dir, const options *o) {
    char what[600];
    if (!ag_run_dir_describe(exp_dir, what, sizeof what)) return 0;
    if (!strncmp(what, "a search", 8)) {
        fprintf(stderr, "train: %s holds %s. Resume it with build/search --load_path %s, or train under another --exp_name "
                        "(--overwrite never replaces a search)\n", exp_dir, what, exp_dir);
        return 1;
    }
    if (o->overwrite) return 0;
    fprintf(stderr, "train: %s already holds %s. Resume it with build/train --load_path %s, start afresh under another --exp_name, "
                    "or give --overwrite to remove the files a training run writes there (checkpoints, avg_gen_g*, train.csv, eval.csv, "
                    "eval.png, grids) first\n", exp_dir, what, exp_dir);
    return 1;
}
static int ends_with(const char *s, const char *tail) { size_t a = strlen(s), b = strlen(tail); return a >= b && !strcmp(s + a - b, tail); }
/* --overwrite: the files a training run writes into exp_dir (and their temporary names) */
static int remove_train_files(const char *exp_dir) {
    static const char *const top[] = { "train.csv", "eval.csv", "eval.png", "train.csv.tmp", "eval.csv.tmp", "eval.png.tmp" };
    int n = 0; size_t i; char *p;
    for (i = 0; i < sizeof top / sizeof top[0]; i++) { p = xprintf("%s/%s", exp_dir, top[i]); if (remove(p) == 0) n++; free(p); }
#ifdef TRAIN_HAVE_DIRENT
    {
        int k;
        for (k = 0; k < 2; k++) {
            char *dir = xprintf("%s/%s", exp_dir, k ? "Samples" : "Model"); DIR *d = opendir(dir); struct dirent *e;
            if (d) {
                while ((e = readdir(d)) != NULL) {
                    const char *f = e->d_name; int mine;
                    if (k) mine = !strncmp(f, "grid_", 5) && (ends_with(f, ".png") || ends_with(f, ".png.tmp"));
                    else mine = (!strncmp(f, "avg_gen_g", 9) || !strcmp(f, "checkpoint.safetensors") || !strcmp(f, "checkpoint_best.safetensors") ||
                                 !strcmp(f, "checkpoint.safetensors.tmp") || !strcmp(f, "checkpoint_best.safetensors.tmp")) &&
                               (ends_with(f, ".safetensors") || ends_with(f, ".safetensors.tmp"));
                    if (!mine) continue;
                    p = xprintf("%s/%s", dir, f);
                    if (remove(p) == 0) n++;
                    else { fprintf(stderr, "train: --overwrite: cannot remove %s (%s)\n", p, strerror(errno)); free(p); closedir(d); free(dir); return -1; }
                    free(p);
                }
                closedir(d);
            }
            free(dir);
        }
    }
#endif
    printf("train: --overwrite: removed %d files of the earlier run in %s\n", n, exp_dir);
    return 0;
}

#ifdef TRAIN_HAVE_DIRENT
static int cmp_ll(const void *a, const void *b) { long long x = *(const long long *)a, y = *(const long long *)b; return x < y ? -1 : x > y; }
#endif
/* --rescore: the curve of an earlier run (trained without a scorer, or scored with another one),
   from the EMA generators kept at each evaluation */
static int rescore(const options *o) {
#ifdef TRAIN_HAVE_DIRENT
    char *dir, *path = NULL, *best = NULL, line[256]; DIR *d; struct dirent *e; long long *steps = NULL, g; int n = 0, cap = 0, i, rc = 1;
    ag_scorer *sc = NULL; ag_fid_stats ref; ag_error err; ag_ctx *ctx = NULL; textlog elog; double *x = NULL, *is = NULL, *fid = NULL, best_fid = 1e300;
    ag_run_lock lock;
    memset(&ref, 0, sizeof ref); memset(&elog, 0, sizeof elog); lock.fd = -1;
    dir = xprintf("%s/Model", o->rescore);
    if (!(d = opendir(dir))) { fprintf(stderr, "train: --rescore %s: no Model directory (%s)\n", o->rescore, dir); free(dir); return 2; }
    while ((e = readdir(d)) != NULL) {
        char tail[64];
        if (sscanf(e->d_name, "avg_gen_g%lld%63s", &g, tail) == 2 && !strcmp(tail, ".safetensors")) {
            if (n == cap) { long long *q = (long long *)realloc(steps, (cap = cap ? 2 * cap : 64) * sizeof *q); if (!q) { closedir(d); free(steps); free(dir); return 1; } steps = q; }
            steps[n++] = g;
        }
    }
    closedir(d);
    if (!n) { fprintf(stderr, "train: --rescore: no avg_gen_g*.safetensors in %s\n", dir); free(steps); free(dir); return 2; }
    qsort(steps, (size_t)n, sizeof *steps, cmp_ll);
    if (ag_run_dir_lock(o->rescore, &lock, &err)) { fprintf(stderr, "train: --rescore: %s\n", err.msg); free(steps); free(dir); return 2; }
    if (!(sc = ag_scorer_load(o->inception ? o->inception : o->classifier, &err))) { fprintf(stderr, "train: %s\n", err.msg); rc = 2; goto out; }
    if (o->threads > 0) ag_scorer_set_threads(sc, o->threads);
    if (o->fid_stat) { if (ag_fid_stats_load(o->fid_stat, &ref, &err)) { fprintf(stderr, "train: %s\n", err.msg); rc = 2; goto out; } }
    else {
        ag_dataset ds; memset(&ds, 0, sizeof ds);
        if (load_train_split(&ds, o->dataset, o->data_path, 0, &err)) { fprintf(stderr, "train: --dataset %s: %s\n", o->dataset, err.msg); rc = 2; goto out; }
        printf("train: no --fid_stat: the scorer's statistics of the %d %s training images ...\n", ds.count, o->dataset); fflush(stdout);
        i = train_set_stats(sc, &ds, &ref); ag_dataset_free(&ds);
        if (i) goto out;
    }
    if (ref.dim != ag_scorer_feature_dim(sc)) { fprintf(stderr, "train: statistics of dimension %d; the scorer's features have %d\n", ref.dim, ag_scorer_feature_dim(sc)); rc = 2; goto out; }
    if (!(ctx = ag_ctx_create(o->seed, &err))) { fprintf(stderr, "train: %s\n", err.msg); goto out; }
    if (o->threads > 0) ag_ctx_set_threads(ctx, o->threads);
    x = (double *)malloc((size_t)n * 3 * sizeof(double));
    if (!x) goto out;
    is = x + n; fid = is + n;
    elog.path = xprintf("%s/eval.csv", o->rescore);
    if (textlog_add(&elog, "epoch,g_step,is_mean,is_std,fid,eval_seconds,train_seconds\n")) goto out;
    for (i = 0; i < n; i++) {
        ag_generator G; ag_generator_spec spec; double m, s, f, t0 = ag_wall_seconds(); int epoch = -1; char v[64]; char *meta = NULL;
        free(path); path = xprintf("%s/avg_gen_g%06lld.safetensors", dir, steps[i]);
        if (ag_generator_spec_read(path, &spec, &err) || ag_generator_init_spec(&G, &spec, NULL, &err)) { fprintf(stderr, "train: %s\n", err.msg); goto out; }
        if (ag_generator_load(&G, path, NULL, 0, &err)) { fprintf(stderr, "train: %s\n", err.msg); ag_generator_free(&G); goto out; }
        if (!ag_safetensors_read_metadata(path, &meta, &err) && meta) { if (!ag_json_get_string(meta, "epoch", v, sizeof v)) sscanf(v, "%d", &epoch); AG_FREE(meta); }
        if (evaluate(ctx, &G, sc, &ref, o->num_eval, o->eval_bs, o->splits, o->seed, (int)(steps[i] & 0x7fffffff), &m, &s, &f)) { ag_generator_free(&G); goto out; }
        ag_generator_free(&G);
        printf("G step %lld: IS (%s) %.4f +- %.4f, FID %.4f (%.1f s)\n", steps[i], ag_scorer_kind(sc), m, s, f, ag_wall_seconds() - t0); fflush(stdout);
        snprintf(line, sizeof line, "%d,%lld,%.6f,%.6f,%.6f,%.1f,\n", epoch, steps[i], m, s, f, ag_wall_seconds() - t0);
        if (textlog_add(&elog, line) || textlog_write(&elog)) goto out;
        x[i] = (double)steps[i]; is[i] = m; fid[i] = f;
        if (f < best_fid) { best_fid = f; free(best); best = xstrdup(path); }
        free(path); path = xprintf("%s/eval.png", o->rescore);
        if (plot_eval(path, x, is, fid, i + 1, ag_scorer_kind(sc))) goto out;
    }
    printf("best FID %.4f: %s\n", best_fid, best ? best : "");
    rc = 0;
out:
    free(steps); free(x); free(elog.p); free(elog.path); free(dir); free(path); free(best);
    ag_fid_stats_free(&ref); if (sc) ag_scorer_free(sc); if (ctx) ag_ctx_free(ctx);
    ag_run_dir_unlock(&lock);
    return rc;
#else
    (void)o; fprintf(stderr, "train: --rescore needs a POSIX directory listing\n"); return 2;
#endif
}

/* the evaluations so far, for eval.png */
typedef struct curve { double *x, *is, *fid; int n, cap; } curve;
static int curve_add(curve *c, double x, double is, double fid) {
    if (c->n == c->cap) {
        int cap = c->cap ? 2 * c->cap : 64; double *q;
        if (!(q = (double *)realloc(c->x, (size_t)cap * sizeof *q))) goto oom;
        c->x = q;
        if (!(q = (double *)realloc(c->is, (size_t)cap * sizeof *q))) goto oom;
        c->is = q;
        if (!(q = (double *)realloc(c->fid, (size_t)cap * sizeof *q))) goto oom;
        c->fid = q; c->cap = cap;
    }
    c->x[c->n] = x; c->is[c->n] = is; c->fid[c->n] = fid; c->n++;
    return 0;
oom:
    fprintf(stderr, "train: out of memory\n");
    return -1;
}

/* the checkpoint's metadata: every setting (so --load_path alone resumes) and where the run stands */
static void checkpoint_fields(ag_json_fields *f, const options *o, const train_state *st, const char *loader_state, const ag_rng *data_rng,
                              float g_lr, float d_lr, const char *exp_dir, int threads) {
    char v[64]; unsigned gb, db;
    memcpy(&gb, &g_lr, 4); memcpy(&db, &d_lr, 4);
    ag_json_add_string(f, "program", "train");
    ag_json_add_int(f, "epoch", st->epoch);
    ag_json_add_int(f, "batch", st->batch);
    ag_json_add_double(f, "best_fid", st->best_fid);
    ag_json_add_int(f, "g_steps", st->g_steps);
    ag_json_add_int(f, "last_eval_g", st->last_eval_g);
    ag_json_add_string(f, "loader", loader_state);
    snprintf(v, sizeof v, "%llx %llx", (unsigned long long)data_rng->state, (unsigned long long)data_rng->inc);
    ag_json_add_string(f, "data_rng", v);
    snprintf(v, sizeof v, "%08x", gb); ag_json_add_string(f, "g_lr_bits", v);
    snprintf(v, sizeof v, "%08x", db); ag_json_add_string(f, "d_lr_bits", v);
    snprintf(v, sizeof v, "%.9g", (double)st->g_loss); ag_json_add_string(f, "g_loss", v);
    ag_json_add_double(f, "train_seconds", st->train_seconds);
    ag_json_add_string(f, "exp_dir", exp_dir);
    ag_json_add_string(f, "dataset", o->dataset);
    ag_json_add_string(f, "data_path", o->data_path);
    ag_json_add_int(f, "num_train_imgs", o->num_train_imgs);
    ag_json_add_int(f, "n_critic", o->n_critic);
    ag_json_add_int(f, "gen_bs", o->gen_bs);
    ag_json_add_int(f, "dis_bs", o->dis_bs);
    ag_json_add_int(f, "max_iter", o->max_iter);
    ag_json_add_int(f, "max_epoch", o->max_epoch);
    ag_json_add_int(f, "lr_decay", o->lr_decay);
    ag_json_add_double(f, "g_lr", o->g_lr);
    ag_json_add_double(f, "d_lr", o->d_lr);
    ag_json_add_double(f, "beta1", o->beta1);
    ag_json_add_double(f, "beta2", o->beta2);
    ag_json_add_double(f, "ema_decay", o->ema);
    snprintf(v, sizeof v, "%llu", o->seed); ag_json_add_string(f, "seed", v);
    ag_json_add_int(f, "val_freq", o->val_freq);
    ag_json_add_int(f, "val_freq_iter", o->val_freq_iter);
    ag_json_add_int(f, "print_freq", o->print_freq);
    ag_json_add_int(f, "num_eval_imgs", o->num_eval);
    ag_json_add_int(f, "eval_batch_size", o->eval_bs);
    ag_json_add_string(f, "inception", o->inception);
    ag_json_add_string(f, "classifier", o->classifier);
    ag_json_add_string(f, "fid_stat", o->fid_stat);
    ag_json_add_int(f, "threads", threads);
}

int main(int argc, char **argv) {
    options o; ag_ctx *ctx = NULL; ag_generator G; ag_discriminator D; ag_gan gan; ag_ema ema; ag_error err; ag_rng init_rng, zrng, data_rng;
    ag_dataset ds; ag_data_loader loader; ag_scorer *sc = NULL; ag_fid_stats ref; ag_generator_spec spec; ag_run_lock lock; train_state st;
    char *ckpt_path = NULL, *exp_dir = NULL, *model_dir = NULL, *samples_dir = NULL, *best_path = NULL, *plot_path = NULL;
    char *m0 = NULL, *meta = NULL, *path = NULL, *g1 = NULL, line[1024];
    textlog tlog, elog; float *real = NULL, *fixed_z = NULL; double t_start, t_eval = 0; curve curve;
    int rc = 1, res, max_epoch, loader_len, epoch, i, have_models = 0, have_ema = 0, have_loader = 0, locked = 0, stop = 0;
    long long g_steps_start, decay_end;
    float d_loss = 0, g_loss = 0;

    memset(&ds, 0, sizeof ds); memset(&loader, 0, sizeof loader); memset(&ref, 0, sizeof ref); memset(&tlog, 0, sizeof tlog); memset(&elog, 0, sizeof elog);
    memset(&spec, 0, sizeof spec); memset(&G, 0, sizeof G); memset(&D, 0, sizeof D); memset(&st, 0, sizeof st); memset(&curve, 0, sizeof curve);
    lock.fd = -1; st.best_fid = 1e4; st.last_eval_g = -1;
    parse_args(argc, argv, &o);
    if (o.rescore) return rescore(&o);

    /* ---- the model: from the flags, or named by the checkpoint ---- */
    if (o.load_path) {
        ag_gan_checkpoint_info info; char fmt[64], want[256], got[256]; ag_generator_spec flags;
        if (is_dir(o.load_path)) { ckpt_path = xprintf("%s/Model/checkpoint.safetensors", o.load_path); exp_dir = xstrdup(o.load_path); }
        else ckpt_path = xstrdup(o.load_path);
        if (ag_safetensors_read_metadata(ckpt_path, &m0, &err)) { fprintf(stderr, "train: --load_path: %s\n", err.msg); return 2; }
        if (!m0 || ag_json_get_string(m0, "format", fmt, sizeof fmt)) fmt[0] = 0;
        if (!strcmp(fmt, "autogan.h search checkpoint 1")) {
            fprintf(stderr, "train: --load_path %s is a search's checkpoint (build/search): resume the search with build/search --load_path %s, "
                            "or train an architecture it found (its archs.txt) with build/train --arch ... --exp_name NAME\n",
                    ckpt_path, exp_dir ? exp_dir : ckpt_path);
            return 2;
        }
        if (ag_gan_checkpoint_read_info(ckpt_path, &info, &err) || ag_generator_spec_read(ckpt_path, &spec, &err)) { fprintf(stderr, "train: --load_path: %s\n", err.msg); return 2; }
        if (!info.train_layout) { fprintf(stderr, "train: --load_path: %s is not a build/train checkpoint (no epoch, best FID, loader state)\n", ckpt_path); return 2; }
        if (read_checkpoint(&o, ckpt_path, m0, &info, &st)) return 2;
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
        if (!exp_dir) exp_dir = o.exp_name ? xprintf("%s/%s", o.log_dir, o.exp_name) : xstrdup(st.exp_dir);
        /* one process per run directory, from before anything is read in earnest */
        if (!o.export_path && is_dir(exp_dir)) {
            if (ag_run_dir_lock(exp_dir, &lock, &err)) { fprintf(stderr, "train: %s\n", err.msg); return 2; }
            locked = 1;
        }
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
        exp_dir = xprintf("%s/%s", o.log_dir, o.exp_name);
        /* the outputs, checked before any work and before anything is created */
        if (!log_dir_possible(o.log_dir)) { fprintf(stderr, "train: --log_dir %s: not a writable directory, and it cannot be created\n", o.log_dir); return 2; }
        if (refuse_occupied(exp_dir, &o)) return 2;
    }
    res = ag_stage_resolution(2, o.bottom_width);
    ag_rng_seed(&init_rng, o.seed, 1);
    if (ag_generator_init_spec(&G, &spec, &init_rng, &err)) { fprintf(stderr, "train: %s\n", err.msg); rc = 2; goto done; }
    if (ag_discriminator_init(&D, o.df, o.channels, o.spectral_norm, &init_rng, &err) || ag_discriminator_set_stage(&D, 2, &err) ||
        ag_gan_init(&gan, &G, &D, o.dis_bs, o.gen_bs, o.n_critic, (float)o.g_lr, (float)o.d_lr, (float)o.beta1, (float)o.beta2, &err) ||
        ag_ema_init(&ema, &G.params, (float)o.ema, &err)) { fprintf(stderr, "train: %s\n", err.msg); rc = 2; goto done; }
    have_models = have_ema = 1;
    if (!(ctx = ag_ctx_create(o.seed, &err))) { fprintf(stderr, "train: %s\n", err.msg); goto done; }
    if (o.threads > 0) ag_ctx_set_threads(ctx, o.threads);
    ag_rng_seed(&data_rng, o.seed, 3);

    if (o.load_path) {
        if (ag_gan_load(ckpt_path, &gan, &ema, ctx, &meta, &err)) { fprintf(stderr, "train: --load_path: %s\n", err.msg); rc = 2; goto done; }
        if (!meta || strcmp(meta, m0)) { fprintf(stderr, "train: --load_path: %s changed while this run started (another process?); run it again\n", ckpt_path); rc = 2; goto done; }
        data_rng.state = st.data_rng[0]; data_rng.inc = st.data_rng[1];
        gan.opt_g.lr = st.g_lr; gan.opt_d.lr = st.d_lr; g_loss = st.g_loss;
    }

    if (o.export_path) {   /* the EMA generator alone, for build/sample */
        ag_json_fields f; memset(&f, 0, sizeof f);
        ag_json_add_string(&f, "source", ckpt_path); ag_json_add_int(&f, "epoch", st.epoch); ag_json_add_int(&f, "g_steps", st.g_steps);
        if (f.failed) { fprintf(stderr, "train: out of memory\n"); ag_json_fields_free(&f); goto done; }
        if (ag_generator_save_ema(o.export_path, &G, &ema, f.text, &err)) { fprintf(stderr, "train: --export: %s\n", err.msg); ag_json_fields_free(&f); goto done; }
        ag_json_fields_free(&f);
        printf("wrote %s: the EMA generator of %s (epoch %d, G step %lld)\n", o.export_path, ckpt_path, st.epoch, st.g_steps);
        rc = 0; goto done;
    }
    if (o.load_path && o.max_iter && st.g_steps >= o.max_iter) {
        printf("train: %s is at G step %lld; --max_iter %d: nothing to train (give a larger --max_iter to continue)\n", ckpt_path, st.g_steps, o.max_iter);
        rc = 0; goto done;
    }

    /* ---- data and scorer: every input loads before logs/EXP is created ---- */
    if (load_train_split(&ds, o.dataset, o.data_path, res, &err)) { fprintf(stderr, "train: --dataset %s: %s\n", o.dataset, err.msg); rc = 2; goto done; }
    if (o.num_train_imgs > 0 && o.num_train_imgs < ds.count) ds.count = o.num_train_imgs;   /* the first N, as build/search */
    if (ag_data_loader_init(&loader, &ds, o.dis_bs, o.channels, &err)) { fprintf(stderr, "train: %s\n", err.msg); goto done; }
    have_loader = 1;
    loader_len = (ds.count + o.dis_bs - 1) / o.dis_bs;
    if (o.load_path) {
        if (ag_data_loader_restore(&loader, st.loader, &err)) { fprintf(stderr, "train: %s: checkpoint metadata 'loader': %s\n", ckpt_path, err.msg); rc = 2; goto done; }
        if (st.batch >= loader_len || (long long)st.epoch * loader_len + st.batch != (long long)gan.iteration) {
            fprintf(stderr, "train: --load_path %s: epoch %d, batch %d, D step %lld does not fit %d images in batches of %d (%d per epoch): "
                            "another data set or --data_path than the run's?\n", ckpt_path, st.epoch, st.batch, (long long)gan.iteration, ds.count, o.dis_bs, loader_len);
            rc = 2; goto done;
        }
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
            if (load_train_split(&orig, o.dataset, o.data_path, 0, &err)) { fprintf(stderr, "train: --dataset %s: %s\n", o.dataset, err.msg); goto done; }
            printf("train: no --fid_stat: the %s's statistics of the %d training images ...\n", ag_scorer_kind(sc), orig.count); fflush(stdout);
            r2 = train_set_stats(sc, &orig, &ref);
            ag_dataset_free(&orig);
            if (r2) goto done;
            printf("train: statistics done in %.1f s\n", ag_wall_seconds() - t0);
        }
    }

    /* ---- the run directory: created, locked, checked again under the lock ---- */
    if (!o.load_path && make_dir(o.log_dir)) { fprintf(stderr, "train: --log_dir %s: not a directory and cannot be created\n", o.log_dir); rc = 2; goto done; }
    if (make_dir(exp_dir)) { fprintf(stderr, "train: %s: cannot create the run's directory (%s)\n", exp_dir, strerror(errno)); rc = 2; goto done; }
    if (!locked) {
        if (ag_run_dir_lock(exp_dir, &lock, &err)) { fprintf(stderr, "train: %s\n", err.msg); rc = 2; goto done; }
        locked = 1;
    }
    if (!o.load_path) {
        if (refuse_occupied(exp_dir, &o)) { rc = 2; goto done; }   /* another run may have started meanwhile */
        if (o.overwrite && remove_train_files(exp_dir)) { rc = 2; goto done; }
    }
    model_dir = xprintf("%s/Model", exp_dir); samples_dir = xprintf("%s/Samples", exp_dir);
    if (make_dir(model_dir) || make_dir(samples_dir)) { fprintf(stderr, "train: %s: cannot create the log directories (Model, Samples)\n", exp_dir); rc = 2; goto done; }
    free(ckpt_path); ckpt_path = xprintf("%s/checkpoint.safetensors", model_dir);
    best_path = xprintf("%s/checkpoint_best.safetensors", model_dir);
    plot_path = xprintf("%s/eval.png", exp_dir);
    tlog.path = xprintf("%s/train.csv", exp_dir); elog.path = xprintf("%s/eval.csv", exp_dir);
    if (ag_file_check_writable(ckpt_path, &err) || ag_file_check_writable(tlog.path, &err)) { fprintf(stderr, "train: %s\n", err.msg); rc = 2; goto done; }

    if (o.max_iter) max_epoch = (int)(((long long)o.max_iter * o.n_critic + loader_len - 1) / loader_len);
    else max_epoch = o.max_epoch * o.n_critic;
    decay_end = o.max_iter ? (long long)o.max_iter * o.n_critic : (long long)max_epoch * loader_len;
    real = (float *)malloc((size_t)o.dis_bs * o.channels * res * res * sizeof(float));
    fixed_z = (float *)malloc((size_t)25 * o.latent * sizeof(float));
    if (!real || !fixed_z) { fprintf(stderr, "train: out of memory\n"); goto done; }
    ag_rng_seed(&zrng, o.seed, 7);
    ag_rng_fill_normal(&zrng, fixed_z, (size_t)25 * o.latent, 0.0f, 1.0f);   /* drawn once: every grid shows the same 25 z */

    /* logs: a resumed run keeps the rows up to its checkpoint (train.csv by D step, eval.csv by
       the last G step evaluated before it was written) */
    if (textlog_load_upto(&tlog, "epoch,d_step,g_step,d_loss,g_loss,g_lr,d_lr,seconds\n", 1, o.load_path ? (long long)gan.iteration : -1) ||
        textlog_load_upto(&elog, "epoch,g_step,is_mean,is_std,fid,eval_seconds,train_seconds\n", 1, o.load_path ? st.last_eval_g : -1)) { fprintf(stderr, "train: out of memory\n"); goto done; }
    {   /* earlier evaluations back into the plot (the values as eval.csv holds them, as a run that was never stopped plots them) */
        const char *p = elog.p; int ep; long long gs; double m, s, f;
        while ((p = strchr(p, '\n')) && *++p)
            if (sscanf(p, "%d,%lld,%lf,%lf,%lf", &ep, &gs, &m, &s, &f) == 5 && curve_add(&curve, (double)gs, m, f)) goto done;
    }
    if (textlog_write(&tlog) || textlog_write(&elog)) goto done;

    printf("train: %s | arch", spec.gen_model); for (i = 0; i < AG_ARCH_MAX; i++) printf(" %d", spec.arch[i]);
    printf(" | gf %d df %d latent %d | %dx%dx%d | G %zu params, D %zu params\n", o.gf, o.df, o.latent, o.channels, res, res,
           ag_params_count(&G.params), ag_params_count(&D.params));
    if (o.max_iter) printf("train: %s, %d images, %d batches of %d per epoch | %d G steps (n_critic %d; up to %d epochs) | %s | %d threads, %s kernels | logs in %s\n",
                           o.dataset, ds.count, loader_len, o.dis_bs, o.max_iter, o.n_critic, max_epoch,
                           sc ? ag_scorer_kind(sc) : "no evaluation scorer (grids only)", ag_ctx_threads(ctx), ag_ctx_cpu_name(ctx), exp_dir);
    else printf("train: %s, %d images, %d batches of %d per epoch | %d epochs (max_epoch %d x n_critic %d) | %s | %d threads, %s kernels | logs in %s\n",
                o.dataset, ds.count, loader_len, o.dis_bs, max_epoch, o.max_epoch, o.n_critic,
                sc ? ag_scorer_kind(sc) : "no evaluation scorer (grids only)", ag_ctx_threads(ctx), ag_ctx_cpu_name(ctx), exp_dir);
    if (o.load_path) printf("resumed from %s: epoch %d, G step %lld, D step %lld, best FID %g\n", o.load_path, st.epoch, st.g_steps, (long long)gan.iteration, st.best_fid);
    fflush(stdout);

    t_start = ag_wall_seconds(); g_steps_start = st.g_steps;
    for (epoch = st.epoch; epoch < max_epoch && !stop; epoch++) {
        int iter_idx, n;
        double t_epoch = ag_wall_seconds();
        for (iter_idx = epoch == st.epoch ? st.batch : 0; iter_idx < loader_len; iter_idx++) {
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
                st.g_steps++; stepped = 1;
                if (!isfinite(d_loss) || !isfinite(g_loss)) { fprintf(stderr, "train: loss is not finite at G step %lld (epoch %d)\n", st.g_steps, epoch); goto done; }
                if (o.max_iter && st.g_steps >= o.max_iter) stop = 1;   /* exactly --max_iter G steps */
            }
            if (iter_idx % o.print_freq == 0) {   /* every D step has a G step before or at it */
                double el = ag_wall_seconds() - t_start - t_eval, per = st.g_steps > g_steps_start ? el / (double)(st.g_steps - g_steps_start) : 0.0;
                printf("[Epoch %d/%d] [Batch %d/%d] [D loss: %f] [G loss: %f] | G step %lld, %.3f s/G step\n", epoch, max_epoch,
                       iter_idx, loader_len, d_loss, g_loss, st.g_steps, per);
                fflush(stdout);
                snprintf(line, sizeof line, "%d,%lld,%lld,%.6f,%.6f,%.8g,%.8g,%.1f\n", epoch, (long long)gan.iteration, st.g_steps, d_loss, g_loss,
                         gan.opt_g.lr, gan.opt_d.lr, st.train_seconds + el);
                if (textlog_add(&tlog, line) || textlog_write(&tlog)) goto done;
            }
            eval_now = (last && ((epoch && epoch % o.val_freq == 0) || epoch == max_epoch - 1)) || stop ||
                       (stepped && o.val_freq_iter && st.g_steps % o.val_freq_iter == 0);
            if (eval_now && st.g_steps == st.last_eval_g) eval_now = 0;   /* this G step's generator is scored already */
            if (last) printf("epoch %d done: %.1f s\n", epoch, ag_wall_seconds() - t_epoch);
            if (!last && !eval_now && !stop) continue;
            if (eval_now) {
                double te = ag_wall_seconds(), m = 0, s = 0, f = 0;
                free(path); free(g1);
                path = xprintf("%s/grid_live_g%06lld.png", samples_dir, st.g_steps); g1 = xprintf("%s/grid_live.png", samples_dir);
                if (save_grid(ctx, &G, fixed_z, path) || save_grid(ctx, &G, fixed_z, g1)) goto done;
                ag_ema_swap(&ema);   /* the EMA parameters with the live BatchNorm buffers, as load_params(gen_net, gen_avg_param) */
                free(path); free(g1);
                path = xprintf("%s/grid_ema_g%06lld.png", samples_dir, st.g_steps); g1 = xprintf("%s/grid_ema.png", samples_dir);
                if (save_grid(ctx, &G, fixed_z, path) || save_grid(ctx, &G, fixed_z, g1)) { ag_ema_swap(&ema); goto done; }
                if (sc && evaluate(ctx, &G, sc, &ref, o.num_eval, o.eval_bs, o.splits, o.seed, (int)(st.g_steps & 0x7fffffff), &m, &s, &f)) { ag_ema_swap(&ema); goto done; }
                ag_ema_swap(&ema);
                {   /* the EMA generator of this evaluation, kept (small) so any scorer can replay the curve (--rescore) */
                    ag_json_fields gx; int r;
                    memset(&gx, 0, sizeof gx);
                    ag_json_add_int(&gx, "epoch", epoch); ag_json_add_int(&gx, "g_steps", st.g_steps);
                    free(path); path = xprintf("%s/avg_gen_g%06lld.safetensors", model_dir, st.g_steps);
                    r = gx.failed ? -1 : ag_generator_save_ema(path, &G, &ema, gx.text, &err);
                    if (gx.failed) snprintf(err.msg, sizeof err.msg, "out of memory");
                    ag_json_fields_free(&gx);
                    if (r) { fprintf(stderr, "train: %s\n", err.msg); goto done; }
                }
                if (sc) {
                    double mr, sr, fr;
                    printf("Inception score (%s): %.4f +- %.4f, FID score: %.4f || @ epoch %d (G step %lld), %.1f s\n", ag_scorer_kind(sc), m, s, f, epoch, st.g_steps, ag_wall_seconds() - te);
                    snprintf(line, sizeof line, "%d,%lld,%.6f,%.6f,%.6f,%.1f,%.1f\n", epoch, st.g_steps, m, s, f, ag_wall_seconds() - te,
                             st.train_seconds + ag_wall_seconds() - t_start - t_eval);
                    if (textlog_add(&elog, line) || textlog_write(&elog)) goto done;
                    if (sscanf(line, "%*d,%*d,%lf,%lf,%lf", &mr, &sr, &fr) != 3) { mr = m; fr = f; }   /* plotted as eval.csv holds them */
                    if (curve_add(&curve, (double)st.g_steps, mr, fr)) goto done;
                    if (plot_eval(plot_path, curve.x, curve.is, curve.fid, curve.n, ag_scorer_kind(sc))) goto done;
                    if (f < st.best_fid) { st.best_fid = f; is_best = 1; }
                } else printf("grids of G step %lld in %s\n", st.g_steps, samples_dir);
                fflush(stdout);
                t_eval += ag_wall_seconds() - te;
                st.last_eval_g = st.g_steps;
            }
            {   /* the checkpoint: after every epoch (as the reference), every evaluation and at the end; the best one first,
                   so a kill between the two leaves checkpoint.safetensors before this evaluation, which a resumed run redoes */
                ag_json_fields f; char rs[200];
                memset(&f, 0, sizeof f);
                ag_data_loader_state_string(&loader, rs, sizeof rs);
                st.epoch = last ? epoch + 1 : epoch; st.batch = last ? 0 : iter_idx + 1; st.g_loss = g_loss;
                {
                    double saved = st.train_seconds;
                    st.train_seconds = saved + ag_wall_seconds() - t_start - t_eval;
                    checkpoint_fields(&f, &o, &st, rs, &data_rng, gan.opt_g.lr, gan.opt_d.lr, exp_dir, ag_ctx_threads(ctx));
                    st.train_seconds = saved;
                }
                if (f.failed) { fprintf(stderr, "train: out of memory\n"); ag_json_fields_free(&f); goto done; }
                if ((is_best && ag_gan_save_train(best_path, &gan, &ema, ctx, f.text, &err)) || ag_gan_save_train(ckpt_path, &gan, &ema, ctx, f.text, &err)) {
                    fprintf(stderr, "train: %s\n", err.msg); ag_json_fields_free(&f); goto done;
                }
                ag_json_fields_free(&f);
                if (is_best) printf("new best FID %.4f: %s\n", st.best_fid, best_path);
            }
            if (stop) break;
        }
    }
    printf("done: %lld G steps (%lld this run) in %.1f s (%.3f s per G step), best FID %g; checkpoint %s\n", st.g_steps, st.g_steps - g_steps_start,
           ag_wall_seconds() - t_start, st.g_steps > g_steps_start ? (ag_wall_seconds() - t_start - t_eval) / (double)(st.g_steps - g_steps_start) : 0.0, st.best_fid, ckpt_path);
    rc = 0;
done:
    free(real); free(fixed_z); free(curve.x); free(curve.is); free(curve.fid); free(tlog.p); free(elog.p); free(tlog.path); free(elog.path); AG_FREE(meta); AG_FREE(m0);
    free(ckpt_path); free(exp_dir); free(model_dir); free(samples_dir); free(best_path); free(plot_path); free(path); free(g1);
    free(st.loader); free(st.exp_dir);
    for (i = 0; i < 5; i++) free(o.owned[i]);
    if (have_loader) ag_data_loader_free(&loader);
    ag_dataset_free(&ds); ag_fid_stats_free(&ref); if (sc) ag_scorer_free(sc);
    if (have_ema) ag_ema_free(&ema);
    if (have_models) { ag_gan_free(&gan); ag_discriminator_free(&D); }
    ag_generator_free(&G);
    if (ctx) ag_ctx_free(ctx);
    if (locked) ag_run_dir_unlock(&lock);
    return rc;
}
