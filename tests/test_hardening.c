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
#endif
    { NULL, NULL }
};
