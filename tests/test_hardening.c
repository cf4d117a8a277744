/* test_hardening.c - the defects of issue 9, each kept from coming back: the resume
   contract (stage and architecture of a checkpoint), checked checkpoint metadata, NaN
   weights, atomic writes (one temp name, killed writers), files that are directories,
   and the programs' strict flags and early output checks (run as built, through popen). */
#if defined(__unix__) || defined(__APPLE__)
#include <sys/types.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <signal.h>
#include <unistd.h>
#include <dirent.h>
#define HARDEN_POSIX 1
#endif

/* ---- checkpoints ---- */
typedef struct harden_run { ag_ctx *ctx; ag_generator G; ag_discriminator D; ag_gan gan; ag_ema ema; } harden_run;
static int harden_run_init(harden_run *r, int stage, uint64_t seed) {
    static const int arch[14] = { 1, 0, 1, 1, 1, 0, 0, 1, 1, 1, 0, 1, 0, 3 };
    ag_error err; ag_rng rng;
    r->ctx = ag_ctx_create(seed, NULL); ag_ctx_set_threads(r->ctx, 2);
    ag_rng_seed(&rng, seed, 3);
    if (ag_generator_init(&r->G, 8, 8, 4, 3, &rng, &err) || ag_generator_set_arch(&r->G, stage, arch, ag_arch_len(stage), &err) ||
        ag_discriminator_init(&r->D, 8, 3, 1, &rng, &err) || ag_discriminator_set_stage(&r->D, stage, &err) ||
        ag_gan_init(&r->gan, &r->G, &r->D, 2, 2, 1, 2e-4f, 2e-4f, 0.0f, 0.9f, &err) || ag_ema_init(&r->ema, &r->G.params, 0.9f, &err)) {
        fprintf(stderr, "    %s\n", err.msg); return -1;
    }
    return 0;
}
static void harden_run_free(harden_run *r) { ag_ema_free(&r->ema); ag_gan_free(&r->gan); ag_generator_free(&r->G); ag_discriminator_free(&r->D); ag_ctx_free(r->ctx); }
static double harden_checksum(const ag_params *ps) {
    double s = 0; int i; size_t j;
    for (i = 0; i < ps->count; i++) if (ps->entries[i].tensor) for (j = 0; j < ps->entries[i].tensor->size; j++) s += ps->entries[i].tensor->data[j] * (double)(j % 7 + 1);
    return s;
}
/* rewrites a checkpoint with one metadata field replaced, or one tensor element set to NaN */
static int harden_tamper(const char *src, const char *dst, const char *field, const char *value, const char *nan_tensor) {
    ag_array_list l; char *meta = NULL, *m2; ag_error err; int rc;
    if (ag_safetensors_read(src, &l, &meta, &err)) { fprintf(stderr, "    %s\n", err.msg); return -1; }
    m2 = (char *)malloc(strlen(meta) + 256);
    if (field) {
        char key[64], *p, *q; snprintf(key, sizeof key, "\"%s\":\"", field);
        p = strstr(meta, key);
        if (!p) { free(meta); free(m2); ag_array_list_free(&l); return -1; }
        p += strlen(key); q = strchr(p, '"');
        memcpy(m2, meta, (size_t)(p - meta)); strcpy(m2 + (p - meta), value); strcat(m2, q);
    } else strcpy(m2, meta);
    if (nan_tensor) { ag_array *a = ag_array_list_find(&l, nan_tensor); float v = NAN; if (!a) return -1; memcpy(a->data, &v, 4); }
    rc = ag_safetensors_write(dst, &l, m2, &err);
    free(meta); free(m2); ag_array_list_free(&l);
    return rc;
}
static int test_checkpoint_stage_contract(void) {
    harden_run a, b; ag_error err; float real[2 * 3 * 16 * 16]; ag_gan_checkpoint_info info; double before; int i;
    const char *path = "build/harden_stage1.safetensors";
    TEST_CHECK(harden_run_init(&a, 1, 3) == 0 && harden_run_init(&b, 0, 4) == 0, "init");
    for (i = 0; i < (int)(sizeof real / sizeof real[0]); i++) real[i] = (float)((i * 37) % 200) / 100.0f - 1.0f;
    TEST_CHECK(ag_gan_step(a.ctx, &a.gan, real, NULL) == 0, "%s", ag_ctx_error(a.ctx));
    TEST_CHECK(ag_gan_save(path, &a.gan, &a.ema, a.ctx, NULL, &err) == 0, "save: %s", err.msg);
    TEST_CHECK(ag_gan_checkpoint_read_info(path, &info, &err) == 0, "info: %s", err.msg);
    TEST_CHECK(info.stage == 1 && info.arch_len == 9 && info.arch[8] == 1 && info.iteration == 1 && info.has_ema, "info: stage %d, %d tokens, iteration %lld",
               info.stage, info.arch_len, (long long)info.iteration);
    /* a stage-0 model refuses the stage-1 checkpoint, and is left as it was */
    before = harden_checksum(&b.G.params);
    TEST_CHECK(ag_gan_load(path, &b.gan, &b.ema, b.ctx, NULL, &err) != 0, "a stage-1 checkpoint loaded into stage-0 models");
    TEST_CHECK(strstr(err.msg, "stage 1") && strstr(err.msg, "stage 0"), "the message names both stages: %s", err.msg);
    TEST_CHECK(b.G.stage == 0 && b.D.stage == 0 && b.gan.iteration == 0 && harden_checksum(&b.G.params) == before, "refused load changed the models");
    harden_run_free(&b);
    /* the same stage loads */
    TEST_CHECK(harden_run_init(&b, 1, 4) == 0, "init");
    TEST_CHECK(ag_gan_load(path, &b.gan, &b.ema, b.ctx, NULL, &err) == 0, "same stage: %s", err.msg);
    TEST_CHECK(harden_checksum(&b.G.params) == harden_checksum(&a.G.params), "weights restored");
    harden_run_free(&a); harden_run_free(&b);
    return 0;
}
static int test_checkpoint_metadata_checked(void) {
    static const struct { const char *field, *value, *nan_tensor, *want; } cases[] = {
        { "iteration", "99999999999999999999", NULL, "iteration" },
        { "iteration", "-5", NULL, "iteration" },
        { "iteration", "12abc", NULL, "iteration" },
        { "adam_g_step", "9007199254740993", NULL, "adam_g_step" },
        { "stage", "7", NULL, "stage" },
        { "rng_inc", "zz", NULL, "rng" },
        { "arch", "1 0 9 1 1 0 0 1 1", NULL, "architecture" },
        { NULL, NULL, "G.l1.weight", "NaN" },
        { NULL, NULL, "adam_d.v.block1.c1.weight_orig", "NaN" },
        { NULL, NULL, "ema.l1.weight", "NaN" },
    };
    harden_run a, b; ag_error err; ag_gan_checkpoint_info info; size_t k; double before;
    const char *path = "build/harden_meta.safetensors", *bad = "build/harden_meta_bad.safetensors";
    TEST_CHECK(harden_run_init(&a, 1, 5) == 0 && harden_run_init(&b, 1, 6) == 0, "init");
    TEST_CHECK(ag_gan_save(path, &a.gan, &a.ema, a.ctx, NULL, &err) == 0, "save: %s", err.msg);
    before = harden_checksum(&b.G.params);
    for (k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        TEST_CHECK(harden_tamper(path, bad, cases[k].field, cases[k].value, cases[k].nan_tensor) == 0, "tamper case %zu (is the tensor name still right?)", k);
        TEST_CHECK(ag_gan_load(bad, &b.gan, &b.ema, b.ctx, NULL, &err) != 0, "case %zu (%s %s) loaded", k, cases[k].field ? cases[k].field : cases[k].nan_tensor,
                   cases[k].value ? cases[k].value : "NaN");
        TEST_CHECK(strstr(err.msg, cases[k].want) != NULL, "case %zu: message should mention '%s': %s", k, cases[k].want, err.msg);
        if (cases[k].field) TEST_CHECK(ag_gan_checkpoint_read_info(bad, &info, &err) != 0, "case %zu: info accepted it", k);
    }
    TEST_CHECK(harden_checksum(&b.G.params) == before && b.gan.iteration == 0, "refused loads changed the models");
    harden_run_free(&a); harden_run_free(&b);
    return 0;
}

/* ---- files ---- */
static int harden_exists(const char *path) { FILE *f = fopen(path, "rb"); if (f) fclose(f); return f != NULL; }
static int test_write_atomic_temp_names(void) {
    ag_error err; unsigned char *bytes; size_t len; FILE *f; const char *path = "build/harden_atomic.bin";
    remove(path);
    f = fopen("build/harden_atomic.bin.tmp", "wb"); TEST_CHECK(f != NULL, "stale temp"); fputs("stale half-written data", f); fclose(f);
    TEST_CHECK(ag_write_file_atomic(path, "new", 3, &err) == 0, "%s", err.msg);
    TEST_CHECK(!harden_exists("build/harden_atomic.bin.tmp"), "the stale temp file is still there");
    TEST_CHECK(ag_read_file(path, &bytes, &len, &err) == 0 && len == 3 && !memcmp(bytes, "new", 3), "content");
    free(bytes);
    TEST_CHECK(ag_write_file_atomic("build", "x", 1, &err) != 0 && strstr(err.msg, "directory"), "a directory as the target: %s", err.msg);
    TEST_CHECK(ag_write_file_atomic("build/no_such_dir/x.bin", "x", 1, &err) != 0 && strstr(err.msg, "no_such_dir"), "missing directory: %s", err.msg);
    TEST_CHECK(ag_file_check_writable("build/no_such_dir/x.bin", &err) != 0 && strstr(err.msg, "no_such_dir"), "check: %s", err.msg);
    TEST_CHECK(ag_file_check_writable("build/harden_ok.bin", &err) == 0 && !harden_exists("build/harden_ok.bin") && !harden_exists("build/harden_ok.bin.tmp"),
               "check of a writable path leaves nothing behind: %s", err.msg);
    return 0;
}
static int test_read_directory_says_so(void) {
    ag_error err; unsigned char *bytes; size_t len; ag_array a; ag_array_list l;
    TEST_CHECK(ag_read_file("build", &bytes, &len, &err) != 0 && strstr(err.msg, "is a directory"), "read_file: %s", err.msg);
    TEST_CHECK(ag_npy_read("build", &a, &err) != 0 && strstr(err.msg, "is a directory"), "npy: %s", err.msg);
    TEST_CHECK(ag_safetensors_read("build", &l, NULL, &err) != 0 && strstr(err.msg, "is a directory"), "safetensors: %s", err.msg);
    return 0;
}
/* every fallible call says why: FID statistics refuse NaN features with a reason */
static int test_fid_stats_add_reports(void) {
    ag_fid_stats st; ag_error err; float x[2 * 4] = { 1, 2, 3, 4, 5, 6, 7, 8 };
    memset(&st, 0, sizeof st);
    TEST_CHECK(ag_fid_stats_init(&st, 4, &err) == 0, "%s", err.msg);
    TEST_CHECK(ag_fid_stats_add(&st, x, 2, &err) == 0, "%s", err.msg);
    x[5] = NAN; err.msg[0] = 0;
    TEST_CHECK(ag_fid_stats_add(&st, x, 2, &err) != 0 && strstr(err.msg, "NaN"), "NaN features: '%s'", err.msg);
    ag_fid_stats_free(&st);
    return 0;
}

/* the public stand-in for the FID network's weights (bench.c used private layout calls) */
static int test_inception_random_state_dict(void) {
    ag_array_list sd; ag_error err; ag_rng rng; ag_inception *net;
    memset(&sd, 0, sizeof sd); ag_rng_seed(&rng, 1, 1);
    TEST_CHECK(ag_inception_random_state_dict(&sd, &rng, &err) == 0, "%s", err.msg);
    TEST_CHECK(sd.count == 472 && ag_array_list_find(&sd, "Mixed_7c.branch_pool.conv.weight"), "%d arrays", sd.count);
    net = ag_inception_from_arrays(&sd, &err);
    ag_array_list_free(&sd);
    TEST_CHECK(net != NULL, "the network refuses it: %s", err.msg);
    ag_inception_free(net);
    return 0;
}

#ifdef HARDEN_POSIX
/* writers killed mid-write leave at most one temp file (issue 9 saw 14 after 15 kills).
   Each writer is a fresh process (the runner started again with --write-loop), as in a
   real crash and restart: a forked child would share its parent's addresses, and so any
   name derived from them, and could not catch a per-process temp name. */
static int test_killed_writers_leak_nothing(void) {
    int k, temps = 0; DIR *d; struct dirent *e; const char *dir = "build/harden_kill";
    TEST_CHECK(system("rm -rf build/harden_kill && mkdir -p build/harden_kill") == 0, "mkdir");
    for (k = 0; k < 8; k++) {
        pid_t pid = fork(); int status;
        struct timespec ts;
        TEST_CHECK(pid >= 0, "fork");
        if (pid == 0) {
            execl(test_program, test_program, "--write-loop", "build/harden_kill/ck.safetensors", (char *)NULL);
            _exit(127);
        }
        ts.tv_sec = 0; ts.tv_nsec = 30000000L + 20000000L * (k % 4);
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        TEST_CHECK(WIFSIGNALED(status), "writer %d ended before the kill (status %d): could it start %s?", k, status, test_program);
    }
    d = opendir(dir); TEST_CHECK(d != NULL, "opendir");
    while ((e = readdir(d)) != NULL) if (strstr(e->d_name, ".tmp")) temps++;
    closedir(d);
    TEST_CHECK(temps <= 1, "%d temporary files left after 8 killed writers", temps);
    return 0;
}

/* ---- the programs ---- */
static int test_train_strict_flags(void) {
#define HT "--gen_model autogan_cifar10_a --exp_name hx --log_dir build/harden_train "
    static const struct { const char *args, *want; } cases[] = {
        { HT "--max_iter abc", "--max_iter 'abc' is not an integer" },
        { HT "--max_iter 1e99", "--max_iter '1e99'" },
        { HT "--max_iter 99999999999", "--max_iter 99999999999 is out of range" },
        { "--exp_name hx --arch 1 x 1 1", "--arch 'x' is not an integer" },
        { "--exp_name hx --arch 1 0 1.7 1", "--arch '1.7'" },
        { "--exp_name hx --arch 1 0 1 1 1 0 0 1 1 1 0 1 0 9", "--arch token 14 is 9" },
        { "--exp_name hx --arch 1 0 1", "--arch has 3 tokens" },
        { HT "--ema 2", "--ema 2 is out of range" },
        { HT "--g_lr abc", "--g_lr 'abc' is not a number" },
        { HT "--g_lr nan", "--g_lr nan is out of range" },
        { HT "--threads 100000", "--threads 100000 is out of range" },
        { HT "--load_path", "--load_path needs a value" },
        { HT "--gen_bs --dis_bs 4", "--gen_bs needs a value" },
        { HT "--bogus 3", "unknown option '--bogus'" },
        { HT "--seed -1", "--seed '-1'" },
        { HT "--d_spectral_norm maybe", "--d_spectral_norm takes True or False" },
        { HT "--fid_stat s.npz", "--fid_stat needs --inception W or --classifier W" },
        { "--max_iter 3 --exp_name hx", "give --gen_model NAME or --arch" },
        { "--gen_model autogan_cifar10_a --max_iter 3", "--exp_name NAME is required" },
        { HT "--gen_model autogan_x", "--gen_model 'autogan_x': unknown model" },
    };
#undef HT
    char out[8192], cmd[1024]; size_t k;
    for (k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        int rc;
        snprintf(cmd, sizeof cmd, "./build/train %s", cases[k].args);
        rc = test_run_command(cmd, out, sizeof out);
        TEST_CHECK(rc == 2 && strstr(out, cases[k].want), "train %s: exit %d, wanted 2 and '%s' in:\n%s", cases[k].args, rc, cases[k].want, out);
        TEST_CHECK(!strstr(out, "G step"), "train %s: trained before failing", cases[k].args);
    }
    /* the hyphenated alias and --flag=value are accepted */
    system("rm -rf build/harden_train && mkdir -p build/harden_train");
    TEST_CHECK(test_run_command("./build/train --gen_model autogan_cifar10_a --gf-dim=8 --df_dim 8 --latent_dim 8 --bottom_width 1 --gen-bs 2 --dis_bs=8 "
                         "--dataset mnist --data_path tests/data/datasets/mnist --max_iter 1 --threads 1 --exp_name alias --log_dir build/harden_train",
                         out, sizeof out) == 0, "aliases: %s", out);
    return 0;
}
/* build/sample takes the same convention (it had a parser of its own) */
static int test_sample_strict_flags(void) {
    static const struct { const char *args, *want; } cases[] = {
        { "--load_path x.pth --gen_model autogan_cifar10_a --out o.npy --num_eval_imgs abc", "--num_eval_imgs 'abc' is not an integer" },
        { "--load_path x.pth --arch 1 0 x --out o.npy", "--arch 'x' is not an integer" },
        { "--load_path x.pth --gen_model autogan_cifar10_a --out o.npy --eval_batch_size 0", "--eval_batch_size 0 is out of range" },
        { "--load_path x.pth --gen_model autogan_cifar10_a --out o.npy --seed -3", "--seed '-3'" },
        { "--load_path x.pth --gen_model autogan_cifar10_a --out o.npy --threads 100000", "--threads 100000 is out of range" },
        { "--load_path x.pth --gen_model autogan_cifar10_a --out", "--out needs a value" },
        { "--load_path x.pth --gen_model autogan_cifar10_a --bogus 1", "unknown option '--bogus'" },
        { "--load_path x.pth --gen_model autogan_cifar10_a", "nothing to do" },
        { "--gen_model autogan_cifar10_a --out o.npy", "--load_path FILE is required" },
        { "--load_path x.pth --out o.npy", "give --gen_model NAME or --arch" },
    };
    char out[8192], cmd[1024]; size_t k; int rc;
    for (k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        snprintf(cmd, sizeof cmd, "./build/sample %s", cases[k].args);
        rc = test_run_command(cmd, out, sizeof out);
        TEST_CHECK(rc == 2 && strstr(out, cases[k].want), "sample %s: exit %d, wanted 2 and '%s' in:\n%s", cases[k].args, rc, cases[k].want, out);
    }
    /* hyphenated aliases and --flag=value reach the file (and its error), not the parser */
    rc = test_run_command("./build/sample --load-path build/no_such.pth --gen-model=autogan_cifar10_a --num-eval-imgs=4 --out build/x.npy", out, sizeof out);
    TEST_CHECK(rc != 0 && strstr(out, "build/no_such.pth") && !strstr(out, "unknown option"), "aliases: exit %d\n%s", rc, out);
    return 0;
}
static int test_train_resume_contract(void) {
    char out[16384]; const char *base = "./build/train --gf_dim 8 --df_dim 8 --latent_dim 8 --bottom_width 1 --gen_bs 2 --dis_bs 2 --n_critic 1 "
                                        "--threads 2 --ema 0.9 --dataset mnist --data_path tests/data/datasets/mnist --log_dir build/harden_train";
    char cmd[1024]; int rc;
    system("rm -rf build/harden_train && mkdir -p build/harden_train");
    snprintf(cmd, sizeof cmd, "%s --gen_model autogan_cifar10_a --max_iter 1 --exp_name r", base);
    rc = test_run_command(cmd, out, sizeof out);
    TEST_CHECK(rc == 0, "first run: exit %d\n%s", rc, out);
    TEST_CHECK(harden_exists("build/harden_train/r/Samples/grid_ema.png") && harden_exists("build/harden_train/r/Model/checkpoint.safetensors"),
               "the last epoch writes grids and the checkpoint:\n%s", out);
    /* a different architecture: an error naming both (issue 9: heap overflow, then a silent switch) */
    rc = test_run_command("./build/train --gen_model autogan_cifar10_c --max_iter 2 --load_path build/harden_train/r", out, sizeof out);
    TEST_CHECK(rc == 2 && strstr(out, "holds autogan_cifar10_a (arch 1 0 1 1 1 0 0 1 1 1 0 1 0 3") && strstr(out, "autogan_cifar10_c (arch 1 1 1 1 1 0 0 1 1 1 0 1 0 3"),
               "mismatch: exit %d\n%s", rc, out);
    /* no model flag: the checkpoint's, printed */
    rc = test_run_command("./build/train --max_iter 5 --load_path build/harden_train/r", out, sizeof out);
    TEST_CHECK(rc == 0 && strstr(out, "autogan_cifar10_a | arch 1 0 1 1 1 0 0 1 1 1 0 1 0 3") && strstr(out, "resumed from"), "resume: exit %d\n%s", rc, out);
    /* outputs checked first */
    snprintf(cmd, sizeof cmd, "%s --gen_model autogan_cifar10_a --max_iter 1 --exp_name x --log_dir build/no_such_dir/deeper", base);
    rc = test_run_command(cmd, out, sizeof out);
    TEST_CHECK(rc == 2 && strstr(out, "no_such_dir") && !strstr(out, "G step"), "--log_dir into a missing directory: exit %d\n%s", rc, out);
    rc = test_run_command("./build/train --max_iter 1 --load_path build", out, sizeof out);
    TEST_CHECK(rc != 0 && strstr(out, "build/Model/checkpoint.safetensors"), "--load_path DIR without a checkpoint: exit %d\n%s", rc, out);
    return 0;
}
static int test_score_checks_first(void) {
    char out[8192]; int rc; ag_array a; ag_error err; unsigned char img[5 * 8 * 8 * 3];
    memset(&a, 0, sizeof a); memset(img, 100, sizeof img);
    a.dtype = AG_DTYPE_U8; a.ndim = 4; a.shape[0] = 5; a.shape[1] = 8; a.shape[2] = 8; a.shape[3] = 3; a.data = img; a.nbytes = sizeof img;
    TEST_CHECK(ag_npy_write("build/harden_five.npy", &a, &err) == 0, "%s", err.msg);
    rc = test_run_command("./build/score build/harden_five.npy --inception", out, sizeof out);
    TEST_CHECK(rc == 2 && strstr(out, "--inception needs a value"), "missing value: exit %d\n%s", rc, out);
    rc = test_run_command("./build/score --inception w.pth --ref build/harden_five.npy build/harden_five.npy", out, sizeof out);
    TEST_CHECK(rc == 2 && strstr(out, "'--'"), "--ref list without '--': exit %d\n%s", rc, out);
    rc = test_run_command("./build/score --inception w.pth --splits 10 build/harden_five.npy", out, sizeof out);
    TEST_CHECK(rc == 2 && strstr(out, "5 images for --splits 10"), "too few images: exit %d\n%s", rc, out);
    rc = test_run_command("./build/score --inception w.pth --splits 5 --save_stats build/no_such_dir/o.npz build/harden_five.npy", out, sizeof out);
    TEST_CHECK(rc == 2 && strstr(out, "no_such_dir"), "--save_stats into a missing directory: exit %d\n%s", rc, out);
    rc = test_run_command("./build/score --inception w.pth --splits 5 --save-stats build/no_such_dir/o.npz build/harden_five.npy", out, sizeof out);
    TEST_CHECK(rc == 2 && strstr(out, "no_such_dir"), "--save-stats alias: exit %d\n%s", rc, out);
    rc = test_run_command("./build/score --inception w.pth --threads 100000 build/harden_five.npy", out, sizeof out);
    TEST_CHECK(rc == 2 && strstr(out, "--threads 100000 is out of range"), "threads: exit %d\n%s", rc, out);
    rc = test_run_command("./build/score --inception w.pth --batch 0 build/harden_five.npy", out, sizeof out);
    TEST_CHECK(rc == 2 && strstr(out, "--batch 0 is out of range"), "batch: exit %d\n%s", rc, out);
    return 0;
}

/* ---- issue 15: outputs and inputs checked before the work, statistics validated, one
   flag per meaning, passive OpenMP waiting ---- */
static int harden_write_stats(const char *path, int d, double mu_value, double diag, int asym) {
    ag_array_list l; ag_error err; int64_t s1[1], s2[2]; double *mu = (double *)calloc((size_t)d, sizeof(double)), *sg = (double *)calloc((size_t)d * d, sizeof(double)); int i, rc;
    memset(&l, 0, sizeof l);
    for (i = 0; i < d; i++) { mu[i] = mu_value; sg[(size_t)i * d + i] = diag; }
    if (asym) sg[1] = 0.5 * diag;   /* [0, 1] without [1, 0] */
    s1[0] = d; s2[0] = s2[1] = d;
    rc = ag_array_list_add(&l, "mu", AG_DTYPE_F64, 1, s1, mu, &err) || ag_array_list_add(&l, "sigma", AG_DTYPE_F64, 2, s2, sg, &err) || ag_npz_write(path, &l, &err);
    if (rc) fprintf(stderr, "    %s: %s\n", path, err.msg);
    ag_array_list_free(&l); free(mu); free(sg);
    return rc ? -1 : 0;
}
/* fault 9: mu 1e200 printed `FID inf` with exit 0; sigma = -I failed after IS without naming
   the file. The statistics are checked when they are loaded, naming the file. */
static int test_fid_stats_validated(void) {
    ag_fid_stats st; ag_error err; double fid = 0.0, mu1[2] = { 1e200, 0 }, mu2[2] = { -1e200, 0 }, eye[4] = { 1, 0, 0, 1 };
    char out[8192]; int rc;
    TEST_CHECK(harden_write_stats("build/harden_st_big.npz", 4, 1e200, 1.0, 0) == 0 && harden_write_stats("build/harden_st_negi.npz", 4, 0.0, -1.0, 0) == 0 &&
               harden_write_stats("build/harden_st_asym.npz", 4, 0.0, 1.0, 1) == 0 && harden_write_stats("build/harden_st_ok.npz", 4, 0.5, 2.0, 0) == 0 &&
               harden_write_stats("build/harden_st_d10.npz", 10, 0.0, 1.0, 0) == 0 && harden_write_stats("build/harden_st_big256.npz", 256, 1e200, 1.0, 0) == 0 &&
               harden_write_stats("build/harden_st_negi256.npz", 256, 0.0, -1.0, 0) == 0, "writing the statistics");
    TEST_CHECK(ag_fid_stats_load("build/harden_st_big.npz", &st, &err) != 0 && strstr(err.msg, "harden_st_big.npz") && strstr(err.msg, "'mu'"), "mu 1e200: %s", err.msg);
    TEST_CHECK(ag_fid_stats_load("build/harden_st_negi.npz", &st, &err) != 0 && strstr(err.msg, "harden_st_negi.npz") && strstr(err.msg, "not a covariance"), "sigma -I: %s", err.msg);
    TEST_CHECK(ag_fid_stats_load("build/harden_st_asym.npz", &st, &err) != 0 && strstr(err.msg, "harden_st_asym.npz") && strstr(err.msg, "not symmetric"), "asymmetric: %s", err.msg);
    TEST_CHECK(ag_fid_stats_load("build/harden_st_ok.npz", &st, &err) == 0 && st.dim == 4 && st.mu[3] == 0.5 && st.sigma[5] == 2.0, "valid statistics: %s", err.msg);
    ag_fid_stats_free(&st);
    /* the library's FID refuses a result that is not finite */
    TEST_CHECK(ag_fid(mu1, eye, mu2, eye, 2, &fid, &err) != 0 && strstr(err.msg, "not finite"), "FID of 1e200 means: %g, '%s'", fid, err.msg);
    /* the programs: exit 2 naming the flag and the file, before anything is printed */
#define HS "./build/score --classifier weights/fashion-mnist-classifier.safetensors --splits 1 --dataset mnist --data_path tests/data/datasets/mnist "
    rc = test_run_command(HS "--fid_stat build/harden_st_big256.npz", out, sizeof out);
    TEST_CHECK(rc == 2 && strstr(out, "harden_st_big256.npz") && !strstr(out, "FID inf") && !strstr(out, "IS "), "score, mu 1e200: exit %d\n%s", rc, out);
    rc = test_run_command(HS "--fid_stat build/harden_st_negi256.npz", out, sizeof out);
    TEST_CHECK(rc == 2 && strstr(out, "harden_st_negi256.npz") && !strstr(out, "IS "), "score, sigma -I: exit %d\n%s", rc, out);
    rc = test_run_command(HS "--stats build/harden_st_d10.npz", out, sizeof out);
    TEST_CHECK(rc == 2 && strstr(out, "harden_st_d10.npz") && strstr(out, "dimension 10") && !strstr(out, "IS "), "score, 10 dimensions: exit %d\n%s", rc, out);
#undef HS
#define HSA "./build/sample --load_path weights/fashion-mnist-autogan-a.safetensors --num_eval_imgs 4 --splits 1 --classifier weights/fashion-mnist-classifier.safetensors "
    rc = test_run_command(HSA "--fid_stat build/harden_st_big256.npz", out, sizeof out);
    TEST_CHECK(rc == 2 && strstr(out, "harden_st_big256.npz") && !strstr(out, "FID inf") && !strstr(out, "IS "), "sample, mu 1e200: exit %d\n%s", rc, out);
    rc = test_run_command(HSA "--fid_stat build/harden_st_negi256.npz", out, sizeof out);
    TEST_CHECK(rc == 2 && strstr(out, "harden_st_negi256.npz") && !strstr(out, "IS ") && !strstr(out, "images,"), "sample, sigma -I: exit %d\n%s", rc, out);
#undef HSA
    return 0;
}
/* fault 6: outputs checked before anything is loaded or made: exit 2 naming the flag and the path */
static int test_outputs_checked_first(void) {
    char out[8192]; int rc;
    system("rm -rf build/harden_out && mkdir -p build/harden_out/x.npy");
#define HSO "./build/sample --load_path weights/fashion-mnist-autogan-a.safetensors --num_eval_imgs 300 --eval_batch_size 100 "
    rc = test_run_command(HSO "--out build/harden_out/x.npy", out, sizeof out);
    TEST_CHECK(rc == 2 && strstr(out, "--out") && strstr(out, "build/harden_out/x.npy") && strstr(out, "directory") && !strstr(out, "images,"),
               "sample --out DIR.npy: exit %d\n%s", rc, out);
    TEST_CHECK(!harden_exists("build/harden_out/x.npy.tmp"), "sample left x.npy.tmp behind");
    rc = test_run_command(HSO "--out build/harden_out/missing/y.npy", out, sizeof out);
    TEST_CHECK(rc == 2 && strstr(out, "--out") && strstr(out, "missing/y.npy") && !strstr(out, "parameters") && !strstr(out, "images,"), "sample --out in a missing directory: exit %d\n%s", rc, out);
    rc = test_run_command(HSO "--out build/harden_out/missing/pngs", out, sizeof out);
    TEST_CHECK(rc == 2 && strstr(out, "--out") && strstr(out, "missing/pngs") && !strstr(out, "images,"), "sample --out DIR in a missing directory: exit %d\n%s", rc, out);
    { FILE *f = fopen("build/harden_out/file", "wb"); if (f) fclose(f); }
    rc = test_run_command(HSO "--out build/harden_out/file", out, sizeof out);
    TEST_CHECK(rc == 2 && strstr(out, "--out") && strstr(out, "harden_out/file") && strstr(out, "not a directory") && !strstr(out, "images,"), "sample --out FILE (not .npy): exit %d\n%s", rc, out);
#undef HSO
    /* build/classifier trained first and failed after (exit 1) */
#define HC "./build/classifier --dataset mnist --data_path tests/data/datasets/mnist --epochs 1 --batch_size 2 --threads 1 "
    rc = test_run_command(HC "--out build/harden_out/missing/w.safetensors", out, sizeof out);
    TEST_CHECK(rc == 2 && strstr(out, "--out") && strstr(out, "missing/w.safetensors") && !strstr(out, "epoch"), "classifier --out: exit %d\n%s", rc, out);
    rc = test_run_command(HC "--out build/harden_out/w.safetensors --save_stats build/harden_out/missing/s.npz", out, sizeof out);
    TEST_CHECK(rc == 2 && strstr(out, "--save_stats") && strstr(out, "missing/s.npz") && !strstr(out, "epoch") && !harden_exists("build/harden_out/w.safetensors"),
               "classifier --save_stats: exit %d\n%s", rc, out);
    rc = test_run_command(HC "--out build/harden_out/x.npy", out, sizeof out);
    TEST_CHECK(rc == 2 && strstr(out, "--out") && strstr(out, "x.npy") && strstr(out, "directory") && !strstr(out, "epoch"), "classifier --out DIR: exit %d\n%s", rc, out);
    rc = test_run_command("./build/classifier --eval weights/fashion-mnist-classifier.safetensors --dataset mnist --data_path tests/data/datasets/mnist --save_stats build/harden_out/x.npy",
                          out, sizeof out);
    TEST_CHECK(rc == 2 && strstr(out, "--save_stats") && !strstr(out, "accuracy"), "classifier --eval --save_stats DIR: exit %d\n%s", rc, out);
#undef HC
    rc = test_run_command("./build/score --classifier weights/fashion-mnist-classifier.safetensors --splits 1 --dataset mnist --data_path tests/data/datasets/mnist "
                          "--save_stats build/harden_out/x.npy", out, sizeof out);
    TEST_CHECK(rc == 2 && strstr(out, "--save_stats") && strstr(out, "x.npy") && !strstr(out, "IS "), "score --save_stats DIR: exit %d\n%s", rc, out);
    return 0;
}
/* fault 9: `sample --z` with NaN or infinity made black images; `dataset --dataset imagenet`
   exited 1; `--help=1` was accepted */
static int test_bad_values_refused(void) {
    char out[8192], cmd[512]; int rc, k; ag_array a; ag_error err; float z[3 * 128];
    static const char *const progs[] = { "train", "search", "sample", "score", "classifier", "dataset", "bench" };
    memset(&a, 0, sizeof a); memset(z, 0, sizeof z);
    z[128 + 2] = NAN;
    a.dtype = AG_DTYPE_F32; a.ndim = 2; a.shape[0] = 3; a.shape[1] = 128; a.data = z; a.nbytes = sizeof z;
    TEST_CHECK(ag_npy_write("build/harden_z_nan.npy", &a, &err) == 0, "%s", err.msg);
    z[128 + 2] = 0.0f; z[2 * 128 + 5] = INFINITY;
    TEST_CHECK(ag_npy_write("build/harden_z_inf.npy", &a, &err) == 0, "%s", err.msg);
    rc = test_run_command("./build/sample --load_path weights/fashion-mnist-autogan-a.safetensors --z build/harden_z_nan.npy --out build/harden_z_out.npy", out, sizeof out);
    TEST_CHECK(rc == 2 && strstr(out, "harden_z_nan.npy") && strstr(out, "row 1, column 2") && strstr(out, "NaN") && !strstr(out, "images,"), "NaN z: exit %d\n%s", rc, out);
    rc = test_run_command("./build/sample --load_path weights/fashion-mnist-autogan-a.safetensors --z build/harden_z_inf.npy --out build/harden_z_out.npy", out, sizeof out);
    TEST_CHECK(rc == 2 && strstr(out, "harden_z_inf.npy") && strstr(out, "row 2, column 5") && !strstr(out, "images,"), "infinite z: exit %d\n%s", rc, out);
    TEST_CHECK(!harden_exists("build/harden_z_out.npy"), "an output was written");
    rc = test_run_command("./build/dataset --dataset imagenet", out, sizeof out);
    TEST_CHECK(rc == 2 && strstr(out, "'imagenet'") && strstr(out, "unknown"), "dataset imagenet: exit %d\n%s", rc, out);
    rc = test_run_command("./build/dataset --dataset cifar10", out, sizeof out);
    TEST_CHECK(rc == 2 && strstr(out, "--data_path"), "dataset cifar10 without a path: exit %d\n%s", rc, out);
    rc = test_run_command("./build/classifier --dataset imagenet", out, sizeof out);
    TEST_CHECK(rc == 2 && strstr(out, "'imagenet'"), "classifier imagenet: exit %d\n%s", rc, out);
    rc = test_run_command("./build/score --classifier w.safetensors --dataset imagenet", out, sizeof out);
    TEST_CHECK(rc == 2 && strstr(out, "'imagenet'"), "score imagenet: exit %d\n%s", rc, out);
    for (k = 0; k < (int)(sizeof progs / sizeof progs[0]); k++) {
        snprintf(cmd, sizeof cmd, "./build/%s --help=1", progs[k]);
        rc = test_run_command(cmd, out, sizeof out);
        TEST_CHECK(rc == 2 && strstr(out, "--help takes no value"), "%s: exit %d\n%s", cmd, rc, out);
    }
    return 0;
}
/* item 7: one flag per meaning: --fid_stat (alias --stats), --eval_batch_size (alias --batch),
   --threads 0 to 256 in every program */
static int test_flag_names_unified(void) {
    char out[8192], cmd[512]; int rc, k;
    static const struct { const char *prog, *args; } threads[] = {
        { "train", "--gen_model autogan_cifar10_a --exp_name hx --log_dir build/harden_train" },
        { "search", "--exp_name hx" },
        { "sample", "--load_path x.pth --gen_model autogan_cifar10_a --out o.npy" },
        { "score", "--classifier w.safetensors x.npy" },
        { "classifier", "--dataset mnist --data_path tests/data/datasets/mnist" },
        { "dataset", "--dataset fashion-mnist" },
        { "bench", "conv" },
    };
    for (k = 0; k < (int)(sizeof threads / sizeof threads[0]); k++) {
        snprintf(cmd, sizeof cmd, "./build/%s %s --threads 257", threads[k].prog, threads[k].args);
        rc = test_run_command(cmd, out, sizeof out);
        TEST_CHECK(rc == 2 && strstr(out, "--threads 257 is out of range (0 to 256)"), "%s: exit %d\n%s", cmd, rc, out);
    }
    /* build/classifier took 1 to 256 */
    rc = test_run_command("./build/classifier --dataset mnist --data_path tests/data/datasets/mnist --epochs 1 --batch_size 2 --threads 0 --out build/harden_out/w0.safetensors", out, sizeof out);
    TEST_CHECK(rc == 0 && strstr(out, "saved build/harden_out/w0.safetensors"), "classifier --threads 0: exit %d\n%s", rc, out);
    /* build/score: --fid_stat and --eval_batch_size, as train and sample spell them */
    rc = test_run_command("./build/score --classifier w.safetensors --fid_stat build/no_such.npz x.npy", out, sizeof out);
    TEST_CHECK(rc == 2 && strstr(out, "no_such.npz") && !strstr(out, "unknown option"), "score --fid_stat: exit %d\n%s", rc, out);
    rc = test_run_command("./build/score --classifier w.safetensors --eval_batch_size 0 x.npy", out, sizeof out);
    TEST_CHECK(rc == 2 && strstr(out, "--eval_batch_size 0 is out of range"), "score --eval_batch_size: exit %d\n%s", rc, out);
    /* build/sample: the aliases --stats and --batch */
    rc = test_run_command("./build/sample --load_path x.pth --gen_model autogan_cifar10_a --out o.npy --batch 0", out, sizeof out);
    TEST_CHECK(rc == 2 && strstr(out, "--batch 0 is out of range"), "sample --batch: exit %d\n%s", rc, out);
    rc = test_run_command("./build/sample --load_path x.pth --gen_model autogan_cifar10_a --out o.npy --stats s.npz", out, sizeof out);
    TEST_CHECK(rc == 2 && strstr(out, "--fid_stat needs --inception W or --classifier W"), "sample --stats: exit %d\n%s", rc, out);
    return 0;
}
/* speed under load: a program started with OMP_WAIT_POLICY unset runs with it passive (cli.h
   re-executes it); a value the user set is kept */
static int test_passive_wait_default(void) {
#ifdef _OPENMP
    char out[8192], cmd[512]; int rc, k;
    static const char *const progs[] = { "train", "search", "sample", "score", "classifier", "dataset", "bench" };
    for (k = 0; k < (int)(sizeof progs / sizeof progs[0]); k++) {
        snprintf(cmd, sizeof cmd, "env -u OMP_WAIT_POLICY AUTOGAN_CLI_SHOW_WAIT=1 ./build/%s --help", progs[k]);
        rc = test_run_command(cmd, out, sizeof out);
        TEST_CHECK(rc == 0 && strstr(out, "OMP_WAIT_POLICY=passive"), "%s: exit %d\n%s", cmd, rc, out);
        snprintf(cmd, sizeof cmd, "env OMP_WAIT_POLICY=active AUTOGAN_CLI_SHOW_WAIT=1 ./build/%s --help", progs[k]);
        rc = test_run_command(cmd, out, sizeof out);
        TEST_CHECK(rc == 0 && strstr(out, "OMP_WAIT_POLICY=active"), "%s: exit %d\n%s", cmd, rc, out);
    }
    /* started through a relative path from another directory, with stdin/stdout piped */
    rc = test_run_command("cd build && env -u OMP_WAIT_POLICY AUTOGAN_CLI_SHOW_WAIT=1 ./dataset --dataset mnist --data_path ../tests/data/datasets/mnist < /dev/null", out, sizeof out);
    TEST_CHECK(rc == 0 && strstr(out, "OMP_WAIT_POLICY=passive") && strstr(out, "5 images"), "from build/: exit %d\n%s", rc, out);
#else
    test_skip("built without OpenMP: nothing to re-execute");
#endif
    return 0;
}
#endif

static const test_case tests_hardening[] = {
    { "hardening/checkpoint_stage_contract", test_checkpoint_stage_contract },
    { "hardening/checkpoint_metadata_checked", test_checkpoint_metadata_checked },
    { "hardening/write_atomic_temp_names", test_write_atomic_temp_names },
    { "hardening/read_directory_says_so", test_read_directory_says_so },
    { "hardening/fid_stats_add_reports", test_fid_stats_add_reports },
    { "hardening/inception_random_state_dict", test_inception_random_state_dict },
#ifdef HARDEN_POSIX
    { "hardening/killed_writers_leak_nothing", test_killed_writers_leak_nothing },
    { "hardening/train_strict_flags", test_train_strict_flags },
    { "hardening/sample_strict_flags", test_sample_strict_flags },
    { "hardening/train_resume_contract", test_train_resume_contract },
    { "hardening/score_checks_first", test_score_checks_first },
    { "hardening/fid_stats_validated", test_fid_stats_validated },
    { "hardening/outputs_checked_first", test_outputs_checked_first },
    { "hardening/bad_values_refused", test_bad_values_refused },
    { "hardening/flag_names_unified", test_flag_names_unified },
    { "hardening/passive_wait_default", test_passive_wait_default },
#endif
    { NULL, NULL }
};
