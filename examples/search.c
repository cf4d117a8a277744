/* search.c - the AutoGAN architecture search (Gong et al., ICCV 2019): an LSTM controller
   trained by REINFORCE picks generator cells, a weight-shared GAN is trained with an
   architecture sampled for every D step, the search grows 8x8 -> 16x16 -> 32x32 keeping the
   top-k architectures (and the controller's hidden state after each) at every growth, and
   resets the shared GAN when its losses stop moving (dynamic reset).

   build/search --preset demo                      the embedded Fashion-MNIST, a few minutes
   build/search --preset paper --dataset cifar10 --data_path cifar-10-binary.tar.gz \
                --inception pt_inception-2015-12-05-6726825d.pth --fid_stat fid_stats_cifar10_train.npz
   build/search --load_path logs/demo               resume: every setting comes from the checkpoint

   Flags are the reference's cfg.py (search.py); --help lists them with their defaults.
   Outputs in LOG_DIR/EXP/ (--log_dir, default logs): search.csv (losses), controller.csv (one
   row per controller step), controller.png (reward and entropy over controller steps),
   samples/iter_NNN.png (the best architecture of iteration NNN), archs.txt (the top-k
   architectures as complete build/train command lines) and Model/checkpoint.safetensors
   (everything needed to resume exactly, every setting included; written to a temporary name
   and renamed after every search iteration). Iterations are counted from 1 everywhere (the
   progress lines, the CSVs' search_iter column, the sample file names).
   Resume: --load_path DIR (or DIR/Model/checkpoint.safetensors) alone continues the search;
   a flag given beside it must equal the stored value (else exit 2 naming both), except
   --max_search_iter, which may be raised to extend the search, and --threads, which may
   differ (the run continues, with a note that its bits then differ from an uninterrupted
   run's). A run killed at any moment and resumed ends with the same bits as an uninterrupted
   one (same thread count). A fresh search refuses a directory that holds anything (another
   search, a training run, other files) unless --overwrite is given (it removes the files a
   search writes there first; a training run's directory is never overwritten); the run
   directory is locked (DIR/.lock) while the search runs, so a second process is refused.
   Every input (data set, scorer, FID statistics) and every combination of flags is checked
   before anything is written. */
#if !defined(_POSIX_C_SOURCE) && !defined(_WIN32)
#define _POSIX_C_SOURCE 200809L
#endif
#define AUTOGAN_IMPLEMENTATION
#include "../autogan.h"
#include "cli.h"
#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>
#include <math.h>
#include <time.h>
#include <stdarg.h>
#include <errno.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <dirent.h>
#include <unistd.h>

/* ---- options: the reference's cfg.py ------------------------------------------------ */
typedef struct options {
    int gen_bs, dis_bs, latent_dim, img_size, channels, n_critic, print_freq, gf_dim, df_dim, bottom_width;
    int eval_batch_size, shared_epoch, grow_step1, grow_step2, max_search_iter, ctrl_step, ctrl_sample_batch;
    int hid_size, rl_num_eval_img, num_candidate, topk, dynamic_reset_window, d_spectral_norm, threads;
    int num_train_imgs, is_splits, stop_after_iter, overwrite;
    double g_lr, d_lr, ctrl_lr, beta1, beta2, baseline_decay, entropy_coeff, dynamic_reset_threshold;
    unsigned long long random_seed;
    const char *exp_name, *log_dir, *load_path, *dataset, *data_path, *split, *init_type, *classifier, *inception, *fid_stat, *preset;
} options;

/* Every setting once: its flag (and aliases), type, place in `options` and range. The same
   table parses the command line, writes the checkpoint's "opt.NAME" metadata and reads it
   back with the same checks, and compares the flags given beside --load_path. */
enum { T_INT, T_DBL, T_U64, T_STR, T_BOOL };
enum { R_MATCH, R_RAISE, R_DIFFER, R_NOSTORE, R_DIR };
/* on resume: must match | may be raised | may differ | not stored | the run directory's own name and parent (not stored) */
typedef struct setting { const char *flag, *alias1, *alias2; int type; size_t off; double lo, hi; int resume; } setting;
#define OPT(f) offsetof(options, f)
static const setting settings[] = {
    { "--preset", NULL, NULL, T_STR, OPT(preset), 0, 0, R_MATCH },
    { "--gen_bs", "-gen_bs", "--gen_batch_size", T_INT, OPT(gen_bs), 2, 65536, R_MATCH },
    { "--dis_bs", "-dis_bs", "--dis_batch_size", T_INT, OPT(dis_bs), 2, 65536, R_MATCH },
    { "--g_lr", NULL, NULL, T_DBL, OPT(g_lr), 0, 1, R_MATCH },
    { "--d_lr", NULL, NULL, T_DBL, OPT(d_lr), 0, 1, R_MATCH },
    { "--ctrl_lr", NULL, NULL, T_DBL, OPT(ctrl_lr), 0, 1, R_MATCH },
    { "--beta1", NULL, NULL, T_DBL, OPT(beta1), 0, 0.999999, R_MATCH },
    { "--beta2", NULL, NULL, T_DBL, OPT(beta2), 0, 0.999999, R_MATCH },
    { "--latent_dim", NULL, NULL, T_INT, OPT(latent_dim), 1, 4096, R_MATCH },
    { "--img_size", NULL, NULL, T_INT, OPT(img_size), 8, 4096, R_MATCH },
    { "--channels", NULL, NULL, T_INT, OPT(channels), 1, 3, R_MATCH },
    { "--n_critic", NULL, NULL, T_INT, OPT(n_critic), 1, 1000, R_MATCH },
    { "--print_freq", NULL, NULL, T_INT, OPT(print_freq), 1, 100000000, R_MATCH },
    { "--d_spectral_norm", NULL, NULL, T_BOOL, OPT(d_spectral_norm), 0, 1, R_MATCH },
    { "--init_type", NULL, NULL, T_STR, OPT(init_type), 0, 0, R_MATCH },
    { "--gf_dim", NULL, NULL, T_INT, OPT(gf_dim), 1, 4096, R_MATCH },
    { "--df_dim", NULL, NULL, T_INT, OPT(df_dim), 1, 4096, R_MATCH },
    { "--bottom_width", NULL, NULL, T_INT, OPT(bottom_width), 1, 64, R_MATCH },
    { "--eval_batch_size", "--batch", NULL, T_INT, OPT(eval_batch_size), 1, 100000, R_MATCH },
    { "--random_seed", "--seed", NULL, T_U64, OPT(random_seed), 0, 0, R_MATCH },
    { "--shared_epoch", NULL, NULL, T_INT, OPT(shared_epoch), 1, 1000000, R_MATCH },
    { "--grow_step1", NULL, NULL, T_INT, OPT(grow_step1), 1, 1000000, R_MATCH },
    { "--grow_step2", NULL, NULL, T_INT, OPT(grow_step2), 2, 1000000, R_MATCH },
    { "--max_search_iter", NULL, NULL, T_INT, OPT(max_search_iter), 0, 1000000, R_RAISE },
    { "--ctrl_step", NULL, NULL, T_INT, OPT(ctrl_step), 0, 1000000, R_MATCH },
    { "--ctrl_sample_batch", NULL, NULL, T_INT, OPT(ctrl_sample_batch), 1, 4096, R_MATCH },
    { "--hid_size", NULL, NULL, T_INT, OPT(hid_size), 1, 4096, R_MATCH },
    { "--baseline_decay", NULL, NULL, T_DBL, OPT(baseline_decay), 0, 1, R_MATCH },
    { "--rl_num_eval_img", NULL, NULL, T_INT, OPT(rl_num_eval_img), 2, 10000000, R_MATCH },
    { "--num_candidate", NULL, NULL, T_INT, OPT(num_candidate), 1, 100000, R_MATCH },
    { "--topk", NULL, NULL, T_INT, OPT(topk), 1, 100000, R_MATCH },
    { "--entropy_coeff", NULL, NULL, T_DBL, OPT(entropy_coeff), 0, 1e6, R_MATCH },
    { "--dynamic_reset_threshold", NULL, NULL, T_DBL, OPT(dynamic_reset_threshold), 0, 1e30, R_MATCH },
    { "--dynamic_reset_window", NULL, NULL, T_INT, OPT(dynamic_reset_window), 2, 100000000, R_MATCH },
    { "--dataset", NULL, NULL, T_STR, OPT(dataset), 0, 0, R_MATCH },
    { "--data_path", NULL, NULL, T_STR, OPT(data_path), 0, 0, R_MATCH },
    { "--split", NULL, NULL, T_STR, OPT(split), 0, 0, R_MATCH },
    { "--num_train_imgs", NULL, NULL, T_INT, OPT(num_train_imgs), 0, 100000000, R_MATCH },
    { "--is_splits", NULL, NULL, T_INT, OPT(is_splits), 1, 1000, R_MATCH },
    { "--classifier", NULL, NULL, T_STR, OPT(classifier), 0, 0, R_MATCH },
    { "--inception", NULL, NULL, T_STR, OPT(inception), 0, 0, R_MATCH },
    { "--fid_stat", "--stats", NULL, T_STR, OPT(fid_stat), 0, 0, R_MATCH },
    { "--exp_name", NULL, NULL, T_STR, OPT(exp_name), 0, 0, R_DIR },
    { "--log_dir", NULL, NULL, T_STR, OPT(log_dir), 0, 0, R_DIR },
    { "--threads", NULL, NULL, T_INT, OPT(threads), 0, AG_MAX_THREADS, R_DIFFER },
    { "--load_path", "--resume", NULL, T_STR, OPT(load_path), 0, 0, R_NOSTORE },
    { "--stop_after_iter", NULL, NULL, T_INT, OPT(stop_after_iter), 1, 1000000, R_NOSTORE },   /* tests: exit after N iterations */
};
#define NSETTINGS ((int)(sizeof settings / sizeof settings[0]))
#define FIELD(o, st, T) ((T *)((char *)(o) + (st)->off))

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
    o->exp_name = NULL; o->log_dir = "logs"; o->classifier = NULL; o->inception = NULL; o->fid_stat = NULL;
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
    {   /* the shipped classifier, found from any working directory */
        static char shipped[4096];
        ag_find_resource(AG_WEIGHTS_DIR "/fashion-mnist-classifier.safetensors", shipped, sizeof shipped);
        o->classifier = shipped;
    }
    o->gen_bs = 32; o->dis_bs = 32; o->gf_dim = 32; o->df_dim = 32; o->latent_dim = 64;
    o->shared_epoch = 1; o->grow_step1 = 3; o->grow_step2 = 6; o->max_search_iter = 9;
    o->ctrl_step = 8; o->rl_num_eval_img = 500; o->eval_batch_size = 100; o->num_candidate = 6; o->topk = 3;
    o->dynamic_reset_window = 100; o->print_freq = 16; o->exp_name = "demo";
}

static void usage(const options *d) {
    printf("usage: search [--preset paper|demo] [options]   (flags as the reference's cfg.py)\n"
           "       search --load_path DIR   resume: every setting comes from the checkpoint\n"
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
           "  --entropy_coeff X (%g)  --rl_num_eval_img N (%d)  --eval_batch_size (--batch) N (%d)\n"
           "  --num_candidate N (%d)  --topk N (%d)\n"
           "  --dynamic_reset_threshold X (%g)  --dynamic_reset_window N (%d)\n"
           "  --dataset NAME (%s: cifar10 | stl10 | mnist | fashion-mnist | folder)  --data_path PATH (default location)\n"
           "  --split train|test (%s)  --num_train_imgs N (0 = all; the first N images)\n"
           "  --classifier W.safetensors | --inception W.pth   the reward's scorer (IS over --is_splits %d splits)\n"
           "  --fid_stat (--stats) S.npz  the data set's statistics for the scorer: not used by the search, passed on to\n"
           "                            the build/train lines of archs.txt (build/train needs it with --inception)\n"
           "  --exp_name NAME  --log_dir DIR (%s): the run goes to DIR/NAME, which must be empty or new\n"
           "  --overwrite               start afresh in a directory that holds a search or other files (removes what a\n"
           "                            search writes there first; a training run's directory is never overwritten)\n"
           "  --load_path (--resume) DIR|FILE   resume; flags beside it must equal the stored ones, except a larger\n"
           "                            --max_search_iter (extends the search) and --threads (a note: the bits then differ)\n"
           "  --random_seed N (%llu)  --print_freq N (%d)  --threads N (0-%d; 0: OpenMP's default)\n"
           "  --num_workers N --val_freq N --max_epoch N (accepted, unused)\n",
           d->gen_bs, d->dis_bs, d->g_lr, d->d_lr, d->ctrl_lr, d->beta1, d->beta2, d->latent_dim, d->gf_dim, d->df_dim,
           d->bottom_width, d->img_size, d->n_critic, d->d_spectral_norm ? "True" : "False", d->init_type, d->shared_epoch,
           d->grow_step1, d->grow_step2, d->max_search_iter, d->ctrl_step, d->ctrl_sample_batch, d->hid_size, d->baseline_decay,
           d->entropy_coeff, d->rl_num_eval_img, d->eval_batch_size, d->num_candidate, d->topk, d->dynamic_reset_threshold,
           d->dynamic_reset_window, d->dataset, d->split, d->is_splits, d->log_dir, d->random_seed, d->print_freq, AG_MAX_THREADS);
}

/* A setting's value from text, as strictly as cli.h reads a flag (the whole text, a decimal
   integer or finite number within range; the named choices); 0, or -1 with the reason. */
static int parse_value(const setting *st, const char *v, options *o, char *why, size_t n) {
    char *end; const char *name = st->flag + 2;
    errno = 0;
    switch (st->type) {
    case T_INT: {
        long long x = strtoll(v, &end, 10);
        if (!v[0] || end == v || *end || v[0] == ' ' || v[0] == '\t' || v[0] == '+') { snprintf(why, n, "'%s' is not an integer", v); return -1; }
        if (errno == ERANGE || x < (long long)st->lo || x > (long long)st->hi) { snprintf(why, n, "%s is out of range (%.0f to %.0f)", v, st->lo, st->hi); return -1; }
        *FIELD(o, st, int) = (int)x; return 0;
    }
    case T_U64: {
        unsigned long long x;
        if (!(v[0] >= '0' && v[0] <= '9')) { snprintf(why, n, "'%s' is not a non-negative integer", v); return -1; }
        x = strtoull(v, &end, 10);
        if (*end) { snprintf(why, n, "'%s' is not a non-negative integer", v); return -1; }
        if (errno == ERANGE) { snprintf(why, n, "%s is out of range (0 to %llu)", v, (unsigned long long)-1); return -1; }
        *FIELD(o, st, unsigned long long) = x; return 0;
    }
    case T_DBL: {
        double x = strtod(v, &end);
        if (!v[0] || end == v || *end || v[0] == ' ' || v[0] == '\t') { snprintf(why, n, "'%s' is not a number", v); return -1; }
        if (!isfinite(x) || errno == ERANGE || x < st->lo || x > st->hi) { snprintf(why, n, "%s is out of range (%g to %g)", v, st->lo, st->hi); return -1; }
        *FIELD(o, st, double) = x; return 0;
    }
    case T_BOOL:
        if (!strcmp(v, "True") || !strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "yes")) { *FIELD(o, st, int) = 1; return 0; }
        if (!strcmp(v, "False") || !strcmp(v, "false") || !strcmp(v, "0") || !strcmp(v, "no")) { *FIELD(o, st, int) = 0; return 0; }
        snprintf(why, n, "takes True or False (got '%s')", v); return -1;
    default:
        if (!v[0]) { snprintf(why, n, "needs a value (got an empty one)"); return -1; }
        if (!strcmp(name, "preset") && strcmp(v, "paper") && strcmp(v, "demo")) { snprintf(why, n, "takes paper or demo (got '%s')", v); return -1; }
        if (!strcmp(name, "split") && strcmp(v, "train") && strcmp(v, "test")) { snprintf(why, n, "takes train or test (got '%s')", v); return -1; }
        if (!strcmp(name, "init_type") && strcmp(v, "xavier_uniform")) { snprintf(why, n, "%s is not implemented; the search script's xavier_uniform is", v); return -1; }
        if (!strcmp(name, "dataset") && strcmp(v, "cifar10") && strcmp(v, "stl10") && strcmp(v, "mnist") && strcmp(v, "fashion-mnist") && strcmp(v, "folder")) {
            snprintf(why, n, "'%s' is not one of cifar10, stl10, mnist, fashion-mnist, folder", v); return -1;
        }
        if (!strcmp(name, "exp_name") && (!strcmp(v, ".") || !strcmp(v, "..") || strchr(v, '/'))) { snprintf(why, n, "'%s' is not a directory name (no '/', not . or ..)", v); return -1; }
        *FIELD(o, st, const char *) = v; return 0;
    }
}

/* a setting's value as text (the metadata value; "" for an unset path) */
static void value_text(const setting *st, const options *o, char *buf, size_t n) {
    switch (st->type) {
    case T_INT: case T_BOOL: snprintf(buf, n, "%d", *FIELD(o, st, int)); break;
    case T_U64: snprintf(buf, n, "%llu", *FIELD(o, st, unsigned long long)); break;
    case T_DBL: snprintf(buf, n, "%.17g", *FIELD(o, st, double)); break;
    default: snprintf(buf, n, "%s", *FIELD(o, st, const char *) ? *FIELD(o, st, const char *) : ""); break;
    }
}
/* for messages: numbers as short as they read back, strings quoted, "(none)" when unset */
static void value_show(const setting *st, const options *o, char *buf, size_t n) {
    if (st->type == T_DBL) snprintf(buf, n, "%g", *FIELD(o, st, double));
    else if (st->type == T_BOOL) snprintf(buf, n, "%s", *FIELD(o, st, int) ? "True" : "False");
    else if (st->type == T_STR) {
        const char *v = *FIELD(o, st, const char *);
        if (v) snprintf(buf, n, "'%s'", v); else snprintf(buf, n, "(none)");
    } else value_text(st, o, buf, n);
}
static int values_equal(const setting *st, const options *a, const options *b) {
    switch (st->type) {
    case T_INT: case T_BOOL: return *FIELD(a, st, int) == *FIELD(b, st, int);
    case T_U64: return *FIELD(a, st, unsigned long long) == *FIELD(b, st, unsigned long long);
    case T_DBL: return *FIELD(a, st, double) == *FIELD(b, st, double);
    default: {
        const char *x = *FIELD(a, st, const char *), *y = *FIELD(b, st, const char *);
        return (!x && !y) || (x && y && !strcmp(x, y));
    }
    }
}
static int setting_index(const char *flag) {
    int i;
    for (i = 0; i < NSETTINGS; i++) if (!strcmp(settings[i].flag, flag)) return i;
    return -1;
}

/* the command line; given[i] = 1 for every setting given (any spelling: --flag=value, hyphens, aliases) */
static void parse_args(int argc, char **argv, options *o, unsigned char *given) {
    cli c; options d; int i; char why[256];
    set_defaults(o);
    memset(given, 0, NSETTINGS);
    cli_start(&c, "search", argc, argv);
    while (cli_next(&c)) {
        for (i = 0; i < NSETTINGS; i++) {
            const setting *st = &settings[i];
            if (cli_is(&c, st->flag) || (st->alias1 && cli_is(&c, st->alias1)) || (st->alias2 && cli_is(&c, st->alias2))) break;
        }
        if (i < NSETTINGS) {
            const setting *st = &settings[i]; const char *v = cli_str(&c);
            if (parse_value(st, v, o, why, sizeof why)) cli_fail(&c, "%s %s", c.flag, why);
            given[i] = 1;
            if (!strcmp(st->flag, "--preset")) { if (!strcmp(v, "paper")) preset_paper(o); else preset_demo(o); }
            if (!strcmp(st->flag, "--classifier")) o->inception = NULL;   /* one scorer: the last given */
            if (!strcmp(st->flag, "--inception")) o->classifier = NULL;
        }
        else if (cli_is(&c, "--overwrite")) o->overwrite = 1;
        else if (cli_is(&c, "--g_spectral_norm")) {
            options t; const setting *sn = &settings[setting_index("--d_spectral_norm")]; const char *v = cli_str(&c);
            if (parse_value(sn, v, &t, why, sizeof why)) cli_fail(&c, "%s %s", c.flag, why);
            if (t.d_spectral_norm) cli_fail(&c, "--g_spectral_norm True is not implemented (the search uses False)");
        }
        else if (cli_is(&c, "--gen_model") || cli_is(&c, "--dis_model")) { if (strcmp(cli_str(&c), "shared_gan")) cli_fail(&c, "%s: only shared_gan exists", c.flag); }
        else if (cli_is(&c, "--controller")) { if (strcmp(cli_str(&c), "controller")) cli_fail(&c, "--controller: only 'controller' exists"); }
        else if (cli_is(&c, "--num_workers") || cli_is(&c, "--val_freq") || cli_is(&c, "--max_epoch")) (void)cli_int(&c, 0, 1000000000);
        else if (cli_is(&c, "--help") || cli_is(&c, "-h")) { set_defaults(&d); usage(&d); exit(0); }
        else cli_unknown(&c);
    }
    if (o->load_path && o->overwrite) cli_fail(&c, "--overwrite starts afresh; it does not go with --load_path (resume)");
    if (!o->load_path && !o->exp_name) cli_fail(&c, "give --exp_name (a new search in %s/NAME) or --load_path DIR (resume)", o->log_dir);
}

/* the combinations of settings, checked before any work (from the command line, or from a
   checkpoint's metadata: `where` then names the file); exit 2 with the reason */
static void check_options(const options *o, const char *where) {
    char why[512]; int n_eval = o->rl_num_eval_img / o->eval_batch_size * o->eval_batch_size;
    why[0] = 0;
    if (o->grow_step2 <= o->grow_step1) snprintf(why, sizeof why, "--grow_step2 (%d) must be after --grow_step1 (%d)", o->grow_step2, o->grow_step1);
    else if (o->topk > o->num_candidate) snprintf(why, sizeof why, "--topk (%d) must not exceed --num_candidate (%d)", o->topk, o->num_candidate);
    else if (o->rl_num_eval_img < o->eval_batch_size) snprintf(why, sizeof why, "--rl_num_eval_img (%d) must be at least --eval_batch_size (%d)", o->rl_num_eval_img, o->eval_batch_size);
    else if (n_eval < o->is_splits)
        snprintf(why, sizeof why, "the reward scores %d images (--rl_num_eval_img %d in whole batches of --eval_batch_size %d): fewer than --is_splits %d",
                 n_eval, o->rl_num_eval_img, o->eval_batch_size, o->is_splits);
    else if (o->img_size != o->bottom_width * 8) snprintf(why, sizeof why, "--img_size %d: the search ends at bottom_width*8 = %d", o->img_size, o->bottom_width * 8);
    else if (o->classifier && o->inception) snprintf(why, sizeof why, "give --classifier or --inception, not both");
    else if (!o->classifier && !o->inception) snprintf(why, sizeof why, "the reward needs a scorer: --classifier W.safetensors or --inception W.pth");
    if (!why[0]) return;
    if (where) fprintf(stderr, "search: %s: the stored settings do not fit together: %s\n", where, why);
    else fprintf(stderr, "search: %s\n(run 'search --help' for the options)\n", why);
    exit(2);
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
    if ((size_t)snprintf(out, n, "%s%s", a, b) >= n) { fprintf(stderr, "search: path too long: %s%s\n", a, b); exit(2); }
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
    char dir[4096], ckpt[4200], search_csv[4200], ctrl_csv[4200], plot_png[4200], samples_dir[4200], archs_txt[4200];
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
    int n = s->o.rl_num_eval_img / ebs * ebs, b; size_t per = (size_t)s->channels * R * R; double sd; ag_error err;
    double t0 = now_seconds();
    for (b = 0; b < n / ebs; b++)   /* z from the context's stream, as every reward before */
        if (ag_generator_generate(s->ctx, &s->G, NULL, ebs, s->eval_imgs + (size_t)b * ebs * per)) {
            fprintf(stderr, "search: generating reward images: %s\n", ag_ctx_error(s->ctx)); return -1;
        }
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
            if (s->fsearch) fprintf(s->fsearch, "%d,%d,%d,%d,%.6f,%.6f,%d\n", iter + 1, s->st.stage, epoch, bi, d_loss, g_loss, step % s->o.n_critic == 0);
            if (g_steps && bi % s->o.print_freq == 0) {
                char a[64]; arch_str(arch, len, a, sizeof a);
                printf("[search iteration %d/%d stage %d] [epoch %d/%d] [batch %d/%d] [D loss %.4f] [G loss %.4f] arch [%s]\n", iter + 1, s->o.max_search_iter,
                       s->st.stage, epoch + 1, s->o.shared_epoch, bi + 1, batches, d_loss, g_loss, a);
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
        if (s->fctrl) fprintf(s->fctrl, "%d,%lld,%d,%s,%.6f,%.6f,%.6f,%.6f,%.6f\n", iter + 1, (long long)s->st.ctrl_steps, s->st.stage, a,
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

/* a grid of 64 samples of G with arch (fixed noise from its own PRNG: the search's draws are
   untouched), rounded to uint8 as the search always has */
static int save_grid(search *s, const int *arch, const char *path) {
    int n = 64, R = ag_stage_resolution(s->st.stage, s->G.bottom_width), C = s->channels, rc = -1, len = ag_arch_len(s->st.stage);
    ag_rng zr; ag_error err;
    float *z = (float *)malloc((size_t)n * s->o.latent_dim * sizeof(float)), *img = (float *)malloc((size_t)n * C * R * R * sizeof(float));
    unsigned char *pix = (unsigned char *)malloc((size_t)n * C * R * R);
    if (!z || !img || !pix) { fprintf(stderr, "search: out of memory\n"); goto out; }
    if (ag_generator_set_arch(&s->G, s->st.stage, arch, len, &err)) { fprintf(stderr, "search: %s\n", err.msg); goto out; }
    ag_rng_seed(&zr, 1234, 99);
    ag_rng_fill_normal(&zr, z, (size_t)n * s->o.latent_dim, 0.0f, 1.0f);
    if (ag_generator_generate(s->ctx, &s->G, z, n, img)) { fprintf(stderr, "search: sampling: %s\n", ag_ctx_error(s->ctx)); goto out; }
    ag_images_to_u8(img, n, C, R, R, C, AG_U8_ROUND, pix);
    rc = ag_png_write_grid(path, pix, n, R, R, C, 8, 2, &err);
    if (rc) fprintf(stderr, "search: %s\n", err.msg);
out:
    free(z); free(img); free(pix);
    return rc;
}

/* the checkpoint: the search state (ag_search_save) and, in its metadata, the data loader's
   position and every setting as "opt.NAME" (ag_json_fields: any length, escaped) */
static int save_checkpoint(search *s) {
    char loader[256], v[64]; ag_error err; ag_json_fields f; int i, rc;
    memset(&f, 0, sizeof f);
    ag_data_loader_state_string(&s->loader, loader, sizeof loader);
    ag_json_add_string(&f, "loader", loader);
    ag_json_add_int(&f, "data_stage", s->data_stage);
    ag_json_add_int(&f, "gf_dim", s->o.gf_dim); ag_json_add_int(&f, "df_dim", s->o.df_dim); ag_json_add_int(&f, "latent_dim", s->o.latent_dim);
    snprintf(v, sizeof v, "%llu", s->o.random_seed); ag_json_add_string(&f, "random_seed", v);
    for (i = 0; i < NSETTINGS; i++) {
        const setting *st = &settings[i]; char key[64], *val; size_t n = 64;
        if (st->resume >= R_NOSTORE || (st->type == T_STR && !*FIELD(&s->o, st, const char *))) continue;   /* an unset path: no key */
        if (st->type == T_STR) n = strlen(*FIELD(&s->o, st, const char *)) + 1;
        if (!(val = (char *)malloc(n))) { f.failed = 1; break; }
        value_text(st, &s->o, val, n);
        snprintf(key, sizeof key, "opt.%s", st->flag + 2);
        ag_json_add_string(&f, key, val);
        free(val);
    }
    if (f.failed) { fprintf(stderr, "search: checkpoint: out of memory\n"); ag_json_fields_free(&f); return -1; }
    rc = ag_search_save(s->ckpt, &s->st, &s->gan, s->ctx, f.text, &err);
    if (rc) fprintf(stderr, "search: checkpoint: %s\n", err.msg);
    ag_json_fields_free(&f);
    return rc;
}

/* the settings stored in a checkpoint's metadata, each read with its flag's checks; exit 2
   naming the file and the key. Strings are malloc'd and kept for the run. */
static void load_settings(const char *ckpt, const char *meta, options *o) {
    int i; char why[256];
    set_defaults(o);
    o->preset = NULL; o->exp_name = NULL; o->log_dir = "logs";
    for (i = 0; i < NSETTINGS; i++) {
        const setting *st = &settings[i]; char key[64], *v;
        if (st->resume >= R_NOSTORE) continue;
        snprintf(key, sizeof key, "opt.%s", st->flag + 2);
        v = ag_json_get_string_alloc(meta, key);
        if (!v) {
            if (st->type == T_STR) { *FIELD(o, st, const char *) = NULL; continue; }   /* an unset path */
            fprintf(stderr, "search: %s: metadata '%s' is missing: not a checkpoint of this build/search (it records every setting)\n", ckpt, key);
            exit(2);
        }
        if (parse_value(st, v, o, why, sizeof why)) {
            fprintf(stderr, "search: %s: metadata '%s' (%s): %s\n", ckpt, key, st->flag, why);
            exit(2);
        }
        if (st->type != T_STR) free(v);
    }
    if (!o->log_dir) o->log_dir = "logs";
}

/* a stored decimal: digits only, within [lo, hi]; else exit 2 naming the file and the key */
static long long stored_int(const char *ckpt, const char *meta, const char *key, long long lo, long long hi) {
    char v[64], *end; long long x;
    if (ag_json_get_string(meta, key, v, sizeof v)) { fprintf(stderr, "search: %s: metadata '%s' is missing or too long\n", ckpt, key); exit(2); }
    errno = 0;
    x = strtoll(v, &end, 10);
    if (!((v[0] >= '0' && v[0] <= '9') || (v[0] == '-' && v[1] >= '0' && v[1] <= '9')) || *end || errno == ERANGE || x < lo || x > hi) {
        fprintf(stderr, "search: %s: metadata '%s' is '%s', not an integer from %lld to %lld\n", ckpt, key, v, lo, hi); exit(2);
    }
    return x;
}
/* the data loader's stored position: "epoch position state inc", four decimal numbers */
static void check_loader_state(const char *ckpt, const char *state, int count) {
    const char *p = state; int k; unsigned long long x[4]; char *end;
    for (k = 0; k < 4; k++) {
        if (*p < '0' || *p > '9') break;
        errno = 0; x[k] = strtoull(p, &end, 10);
        if (errno == ERANGE) break;
        p = end;
        if (k < 3) { if (*p != ' ') break; p++; }
    }
    if (k < 4 || *p || x[0] > (1ull << 53) || x[1] > (unsigned long long)count || (x[0] > 0 && !(x[3] & 1))) {
        fprintf(stderr, "search: %s: metadata 'loader' is '%s', not \"epoch position state inc\" for a data set of %d images\n", ckpt, state, count);
        exit(2);
    }
}

/* a value for a shell command line: as it is when it needs no quoting, else in single quotes */
static void shell_put(text *t, const char *v) {
    const char *p; int plain = *v != 0;
    for (p = v; *p; p++) if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || strchr("_-./+=:,@%", *p))) plain = 0;
    if (plain) { text_put(t, "%s", v); return; }
    text_put(t, "'");
    for (p = v; *p; p++) { if (*p == '\'') text_put(t, "'\\''"); else text_put(t, "%c", *p); }
    text_put(t, "'");
}
/* the build/train command that trains arch at this search's widths, data and scorer */
static void train_line(search *s, text *t, const char *arch, int rank) {
    char name[64];
    text_put(t, "build/train --arch %s --exp_name ", arch);
    snprintf(name, sizeof name, "_top%d", rank);
    { text tmp; memset(&tmp, 0, sizeof tmp); text_put(&tmp, "%s%s", s->o.exp_name ? s->o.exp_name : "search", name); shell_put(t, tmp.p); free(tmp.p); }
    if (strcmp(s->o.log_dir, "logs")) { text_put(t, " --log_dir "); shell_put(t, s->o.log_dir); }
    text_put(t, " --dataset "); shell_put(t, s->o.dataset);
    if (s->o.data_path) { text_put(t, " --data_path "); shell_put(t, s->o.data_path); }
    text_put(t, " --channels %d --gf_dim %d --df_dim %d --latent_dim %d --bottom_width %d", s->channels, s->o.gf_dim, s->o.df_dim,
             s->o.latent_dim, s->o.bottom_width);
    if (s->o.classifier) { text_put(t, " --classifier "); shell_put(t, s->o.classifier); }
    else { text_put(t, " --inception "); shell_put(t, s->o.inception); }
    if (s->o.fid_stat) { text_put(t, " --fid_stat "); shell_put(t, s->o.fid_stat); }
}

/* archs.txt: the top-k architectures of the last stage as build/train command lines (stage 2);
   before stage 2 the architectures are partial (4 or 9 tokens) and written as comments */
static int write_final(search *s) {
    int k = s->o.topk, i, len = ag_arch_len(s->st.stage); int *archs = (int *)malloc(sizeof(int) * k * AG_ARCH_MAX);
    double *score = (double *)malloc(sizeof(double) * k); text out; ag_error err; char a[64]; int rc, whole = s->st.stage == 2;
    if (!archs || !score) return -1;
    if (topk_archs(s, archs, score, NULL, NULL)) return -1;
    memset(&out, 0, sizeof out);
    text_put(&out, "# AutoGAN search %s: top %d of %d candidates at stage %d, reward IS (%s)\n", s->dir, k, s->o.num_candidate,
                s->st.stage, ag_scorer_kind(s->scorer));
    if (!whole)
        text_put(&out, "# stopped at stage %d (--max_search_iter %d, --grow_step2 %d): these %d-token architectures are not trainable yet;\n"
                       "# build/train takes the 14 tokens of stage 2: extend the search with build/search --load_path %s --max_search_iter N (N > %d)\n",
                 s->st.stage, s->o.max_search_iter, s->o.grow_step2, len, s->dir, s->o.grow_step2);
    else if (s->o.inception && !s->o.fid_stat)
        text_put(&out, "# build/train with --inception needs --fid_stat S.npz (the data set's Inception statistics): the search was given none, add it\n");
    printf("discovered architectures (best first):\n");
    for (i = 0; i < k; i++) {
        size_t at = out.n;
        arch_str(archs + i * AG_ARCH_MAX, len, a, sizeof a);
        if (whole) train_line(s, &out, a, i + 1);
        else text_put(&out, "# stage %d architecture (not trainable yet): %s", s->st.stage, a);
        text_put(&out, "   # IS %.4f\n", score[i]);
        printf("  %s", out.p + at);
    }
    if (!whole) printf("(the search stopped at stage %d: %d-token architectures are not trainable yet; build/train takes stage 2's 14 tokens)\n",
                       s->st.stage, len);
    rc = ag_write_file_atomic(s->archs_txt, out.p, out.n, &err);
    if (rc) fprintf(stderr, "search: %s\n", err.msg);
    else printf("written to %s\n", s->archs_txt);
    free(out.p); free(archs); free(score);
    return rc;
}

/* --overwrite: the files a search writes in its directory, removed before it starts afresh */
static void remove_search_files(search *s) {
    static const char *files[] = { "/Model/checkpoint.safetensors", "/Model/checkpoint.safetensors.tmp", "/search.csv", "/search.csv.tmp",
                                   "/controller.csv", "/controller.csv.tmp", "/controller.png", "/controller.png.tmp", "/archs.txt", "/archs.txt.tmp" };
    char path[4400]; size_t i; DIR *d;
    for (i = 0; i < sizeof files / sizeof files[0]; i++) { join(path, sizeof path, s->dir, files[i]); remove(path); }
    if ((d = opendir(s->samples_dir)) != NULL) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL)
            if (!strncmp(e->d_name, "iter_", 5) && strstr(e->d_name, ".png")) { join(path, sizeof path, s->samples_dir, "/"); join(path + strlen(path), sizeof path - strlen(path), e->d_name, ""); remove(path); }
        closedir(d);
    }
}

/* the inputs, all checked before the run directory is touched; exit 2 on a bad one */
static void load_inputs(search *s) {
    ag_error err;
    if (!(s->scorer = ag_scorer_load(s->o.classifier ? s->o.classifier : s->o.inception, &err))) { fprintf(stderr, "search: %s\n", err.msg); exit(2); }
    if (s->o.threads) ag_scorer_set_threads(s->scorer, s->o.threads);
    if (s->o.fid_stat) {
        ag_fid_stats fs; memset(&fs, 0, sizeof fs);
        if (ag_fid_stats_load(s->o.fid_stat, &fs, &err)) { fprintf(stderr, "search: --fid_stat: %s\n", err.msg); exit(2); }
        if (fs.dim != ag_scorer_feature_dim(s->scorer)) {
            fprintf(stderr, "search: --fid_stat %s holds %d-dimensional statistics; the %s scorer's features have %d\n", s->o.fid_stat, fs.dim,
                    ag_scorer_kind(s->scorer), ag_scorer_feature_dim(s->scorer));
            exit(2);
        }
        ag_fid_stats_free(&fs);
    }
    if (ag_dataset_load(&s->full, s->o.dataset, s->o.data_path, s->o.split, 0, &err)) { fprintf(stderr, "search: %s\n", err.msg); exit(2); }
    if (s->o.num_train_imgs > 0 && s->o.num_train_imgs < s->full.count) s->full.count = s->o.num_train_imgs;
    s->channels = s->o.channels ? s->o.channels : s->full.channels;   /* 1 <-> 3 converts */
    s->o.channels = s->channels;   /* stored resolved: a resume needs no data set to know it */
}

int main(int argc, char **argv) {
    static search S; search *s = &S; ag_error err; char *meta = NULL, v[4400], what[1024]; int iter, rc = 1, start_iter = 0, i;
    unsigned char given[NSETTINGS]; ag_run_lock lock;
    parse_args(argc, argv, &s->o, given);
    s->data_stage = -1;
    lock.fd = -1;

    if (s->o.load_path) {
        /* resume: the directory (or the checkpoint in it), its settings, then the flags given beside it */
        options stored; const char *lp = s->o.load_path;
        if (dir_exists(lp)) {
            join(s->dir, sizeof s->dir, lp, "");
            join(s->ckpt, sizeof s->ckpt, s->dir, "/Model/checkpoint.safetensors");
        } else {
            const char *slash; size_t n;
            join(s->ckpt, sizeof s->ckpt, lp, "");
            slash = strstr(lp, "/Model/");
            n = slash ? (size_t)(slash - lp) : 0;
            if (n >= sizeof s->dir) { fprintf(stderr, "search: path too long: %s\n", lp); return 2; }
            memcpy(s->dir, n ? lp : ".", n ? n : 1); s->dir[n ? n : 1] = 0;
        }
        if (!file_exists(s->ckpt)) {
            if (dir_exists(s->dir) && ag_run_dir_describe(s->dir, what, sizeof what))
                fprintf(stderr, "search: --load_path %s: no search checkpoint at %s (the directory holds %s); start afresh with --exp_name NAME [--overwrite]\n", lp, s->ckpt, what);
            else fprintf(stderr, "search: --load_path %s: no search checkpoint at %s\n", lp, s->ckpt);
            return 2;
        }
        if (ag_safetensors_read_metadata(s->ckpt, &meta, &err)) { fprintf(stderr, "search: %s\n", err.msg); return 2; }
        if (ag_json_get_string(meta, "format", v, 64) || strcmp(v, "autogan.h search checkpoint 1")) {
            if (ag_run_dir_describe(s->dir, what, sizeof what) && strstr(what, "a training run"))
                fprintf(stderr, "search: --load_path %s: %s holds %s, not a search; resume it with build/train --load_path %s\n", lp, s->dir, what, s->dir);
            else fprintf(stderr, "search: --load_path %s: %s is not an autogan.h search checkpoint (metadata 'format' is '%s')\n", lp, s->ckpt, v);
            return 2;
        }
        load_settings(s->ckpt, meta, &stored);
        check_options(&stored, s->ckpt);
        {   /* the run's name and place are its directory's (a moved run keeps working) */
            char *d = strdup(s->dir), *slash;
            size_t n = strlen(d);
            while (n > 1 && d[n - 1] == '/') d[--n] = 0;
            slash = strrchr(d, '/');
            if (slash && slash != d) { *slash = 0; stored.log_dir = d; stored.exp_name = slash + 1; }
            else if (slash) { stored.log_dir = "/"; stored.exp_name = slash + 1; }
            else { stored.log_dir = "."; stored.exp_name = d; }
        }
        for (i = 0; i < NSETTINGS; i++) {
            const setting *st = &settings[i]; char a[300], b[300];
            if (!given[i] || st->resume == R_NOSTORE || values_equal(st, &s->o, &stored)) continue;
            value_show(st, &s->o, a, sizeof a); value_show(st, &stored, b, sizeof b);
            if (st->resume == R_RAISE && *FIELD(&s->o, st, int) > *FIELD(&stored, st, int)) {
                printf("search: %s %s extends the search (it was started with %s)\n", st->flag, a, b);
                *FIELD(&stored, st, int) = *FIELD(&s->o, st, int);
            } else if (st->resume == R_DIFFER) {
                printf("search: note: %s %s differs from the %s the search ran with: it continues, but not to the same bits as an uninterrupted run\n", st->flag, a, b);
                *FIELD(&stored, st, int) = *FIELD(&s->o, st, int);
            } else {
                fprintf(stderr, "search: %s %s given, but the search in %s was started with %s %s%s; resume with --load_path %s alone (or start "
                        "another search with --exp_name)\n", st->flag, a, s->dir, st->flag, b,
                        st->resume == R_RAISE ? " (--max_search_iter may only be raised)" : "", lp);
                return 2;
            }
        }
        stored.load_path = s->o.load_path; stored.stop_after_iter = s->o.stop_after_iter;
        s->o = stored;
        if (ag_run_dir_lock(s->dir, &lock, &err)) { fprintf(stderr, "search: %s\n", err.msg); return 2; }
        load_inputs(s);
    } else {
        /* a fresh search: LOG_DIR/EXP must be new or empty (or --overwrite), every input checked before it is made */
        int holds;
        check_options(&s->o, NULL);
        if (strlen(s->o.log_dir) + strlen(s->o.exp_name) + 2 > sizeof s->dir) { fprintf(stderr, "search: path too long: %s/%s\n", s->o.log_dir, s->o.exp_name); return 2; }
        join(s->dir, sizeof s->dir, s->o.log_dir, "/"); join(s->dir + strlen(s->dir), sizeof s->dir - strlen(s->dir), s->o.exp_name, "");
        join(s->ckpt, sizeof s->ckpt, s->dir, "/Model/checkpoint.safetensors");
        holds = ag_run_dir_describe(s->dir, what, sizeof what);
        if (holds && strstr(what, "a training run")) {
            fprintf(stderr, "search: %s holds %s: resume it with build/train --load_path %s, or give the search another --exp_name\n", s->dir, what, s->dir);
            return 2;
        }
        if (holds && !s->o.overwrite) {
            if (strstr(what, "a search"))
                fprintf(stderr, "search: %s already holds %s: resume it with build/search --load_path %s, or start afresh with another --exp_name "
                        "or --overwrite (which removes its files)\n", s->dir, what, s->dir);
            else fprintf(stderr, "search: %s is not empty (%s): give another --exp_name, or --overwrite to start a search there "
                         "(removes the files a search writes; others stay)\n", s->dir, what);
            return 2;
        }
        load_inputs(s);
        if (!dir_exists(s->o.log_dir) && mkdir(s->o.log_dir, 0777) && errno != EEXIST) { fprintf(stderr, "search: cannot create --log_dir %s (%s)\n", s->o.log_dir, strerror(errno)); return 2; }
        if (!dir_exists(s->dir) && mkdir(s->dir, 0777) && errno != EEXIST) { fprintf(stderr, "search: cannot create %s (%s)\n", s->dir, strerror(errno)); return 2; }
        if (ag_run_dir_lock(s->dir, &lock, &err)) { fprintf(stderr, "search: %s\n", err.msg); return 2; }
    }
    join(v, sizeof v, s->dir, "/Model"); make_dir(v);
    join(s->samples_dir, sizeof s->samples_dir, s->dir, "/samples"); make_dir(s->samples_dir);
    join(s->search_csv, sizeof s->search_csv, s->dir, "/search.csv");
    join(s->ctrl_csv, sizeof s->ctrl_csv, s->dir, "/controller.csv");
    join(s->plot_png, sizeof s->plot_png, s->dir, "/controller.png");
    join(s->archs_txt, sizeof s->archs_txt, s->dir, "/archs.txt");
    if (!s->o.load_path && s->o.overwrite) remove_search_files(s);

    s->ctx = ag_ctx_create(s->o.random_seed, &err);
    if (!s->ctx) { fprintf(stderr, "search: %s\n", err.msg); return 1; }
    if (s->o.threads) ag_ctx_set_threads(s->ctx, s->o.threads);
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
        int data_stage, done_stage; char *loader;
        free(meta); meta = NULL;
        if (ag_search_load(s->ckpt, &s->st, &s->gan, s->ctx, &meta, &err)) { fprintf(stderr, "search: %s\n", err.msg); return 2; }
        start_iter = s->st.search_iter;
        /* the counters must be those of a search with these settings */
        done_stage = start_iter ? stage_of(&s->o, start_iter - 1) : 0;
        if (start_iter > s->o.max_search_iter || s->st.stage != done_stage || s->st.ctrl_steps != (int64_t)start_iter * s->o.ctrl_step) {
            fprintf(stderr, "search: %s: metadata 'search_iter' %d, 'stage' %d and 'ctrl_steps' %lld do not fit the stored settings (--max_search_iter %d, "
                    "--grow_step1 %d, --grow_step2 %d, --ctrl_step %d)\n", s->ckpt, start_iter, s->st.stage, (long long)s->st.ctrl_steps,
                    s->o.max_search_iter, s->o.grow_step1, s->o.grow_step2, s->o.ctrl_step);
            return 2;
        }
        data_stage = (int)stored_int(s->ckpt, meta, "data_stage", 0, 2);
        if (data_stage != s->st.stage) { fprintf(stderr, "search: %s: metadata 'data_stage' %d differs from 'stage' %d\n", s->ckpt, data_stage, s->st.stage); return 2; }
        if (prepare_data(s, data_stage)) return 1;
        if (!(loader = ag_json_get_string_alloc(meta, "loader"))) { fprintf(stderr, "search: %s: metadata 'loader' is missing\n", s->ckpt); return 2; }
        check_loader_state(s->ckpt, loader, s->data.count);
        if (ag_data_loader_restore(&s->loader, loader, &err)) {
            fprintf(stderr, "search: %s: metadata 'loader' (the data loader's position): %s\n", s->ckpt, err.msg); return 2;
        }
        free(loader);
        printf("=> resuming %s after %d of %d search iterations (stage %d, %lld controller steps so far)\n", s->ckpt, start_iter,
               s->o.max_search_iter, s->st.stage, (long long)s->st.ctrl_steps);
        if (csv_truncate(s->search_csv, start_iter + 1) || csv_truncate(s->ctrl_csv, start_iter + 1)) return 1;   /* rows of iterations 1..done */
    }
    if (prepare_data(s, s->st.stage)) return 1;
    s->fsearch = csv_open(s->search_csv, "search_iter,stage,epoch,batch,d_loss,g_loss,g_step");
    s->fctrl = csv_open(s->ctrl_csv, "search_iter,step,stage,arch,reward,entropy,baseline,advantage,loss");
    if (!s->fsearch || !s->fctrl) return 1;

    s->t_start = now_seconds();
    for (iter = start_iter; iter < s->o.max_search_iter; iter++) {
        int reset, best[AG_ARCH_MAX]; double best_r, el, eta; char a[64], e1[32], e2[32], path[4400];
        printf("<search iteration %d/%d, stage %d>\n", iter + 1, s->o.max_search_iter, stage_of(&s->o, iter));
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
            { char f[32]; snprintf(f, sizeof f, "/iter_%03d.png", iter + 1); join(path, sizeof path, s->samples_dir, f); }
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
        printf("[search iteration %d/%d done] stage %d  last reward %.4f  best this iteration [%s]  elapsed %s  ETA %s  (shared %.0fs, rewards %.0fs, controller %.1fs)\n",
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
    ag_run_dir_unlock(&lock);
    return rc;
}
