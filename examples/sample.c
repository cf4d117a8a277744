/* sample.c - images from a trained AutoGAN generator, and their IS / FID: the C form of the
   reference's test.py (functions.validate).

   build/sample --gen_model autogan_cifar10_a --load_path autogan_cifar10_a.pth \
                --inception pt_inception-2015-12-05-6726825d.pth --fid_stat fid_stats_cifar10_train.npz

   The generator: --gen_model autogan_cifar10_a|b|c (the derived models of the release), or
   --arch with 14 tokens (the same derived model for any architecture of pre-activation cells
   with bilinear/nearest upsampling), or --gen_model shared_gan --arch T... (the weight-shared
   search generator, e.g. a build/train checkpoint). --load_path is a PyTorch .pth (zip or
   legacy form; a training checkpoint's 'avg_gen_state_dict' when present, as test.py, else
   'gen_state_dict', else a bare state_dict), a .safetensors file (bare, or a build/train
   checkpoint: its EMA weights when it has them, as avg_gen_state_dict, else its "G." weights),
   or a build/train run directory: its Model/checkpoint.safetensors (the latest), or with
   --best its Model/checkpoint_best.safetensors (the lowest FID); the file read is printed.

   Images are made as the reference makes them: eval mode (BatchNorm running statistics),
   x * 127.5 + 127.5 in float32, clamped to [0, 255], truncated to uint8. z is N(0, 1) from the
   PCG32 stream of --seed (the reference's numpy draws cannot be reproduced), or read from
   --z FILE.npy (float32 [N, latent_dim], every value finite). --out FILE.npy writes uint8
   [N, H, W, 3]; --out DIR writes DIR/iter<i>_b<j>.png as the reference's fid_buffer. With
   --inception W (or --classifier W, the compact classifier) the images are scored (10 splits)
   and `IS <mean> <std>` is printed, plus `FID <value>` with --fid_stat S.npz (the statistics
   are checked when they are read: finite, a symmetric covariance, the scorer's dimension).
   Without a scorer nothing is scored. Images stream through in batches of --eval_batch_size
   (never all in memory); progress goes to stderr. Unlike test.py's N // batch batches, exactly
   --num_eval_imgs images are made (the last batch may be smaller). Every input and output is
   checked before the generator is loaded: a bad one exits 2 naming the flag and the path. */
#define _POSIX_C_SOURCE 200809L   /* fileno, fsync */
#define AUTOGAN_IMPLEMENTATION
#include "../autogan.h"
#include "cli.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <math.h>
#if defined(__unix__) || defined(__APPLE__)
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>
#include <errno.h>
#define SAMPLE_HAVE_MKDIR 1
#endif

typedef struct options {
    const char *gen_model, *load_path, *z_path, *out, *inception, *classifier, *fid_stat;
    char ckpt[4200];   /* the file --load_path names (a run directory's checkpoint) */
    int arch[AG_ARCH_MAX], arch_len, gf, latent, bottom_width, num_eval, num_eval_set, batch, threads, splits, best;
    unsigned long long seed;
} options;

static void usage(void) {
    fprintf(stderr,
        "usage: sample [--gen_model NAME | --arch T1 ... T14] --load_path FILE|RUN_DIR [options]\n"
        "  (a .safetensors from build/train names its model in its metadata: no model flag needed)\n"
        "  --gen_model NAME     autogan_cifar10_a | autogan_cifar10_b | autogan_cifar10_c | shared_gan (needs --arch)\n"
        "  --arch TOKENS        14 tokens, e.g. 1 0 1 1 1 0 0 1 1 1 0 1 0 3 (4 or 9 with shared_gan)\n"
        "  --gf_dim N (256)  --latent_dim N (128)  --bottom_width N (4: 32x32, 6: 48x48)\n"
        "  --load_path FILE     .pth (zip or legacy; avg_gen_state_dict, gen_state_dict or bare) or .safetensors\n"
        "                       (bare, or a build/train checkpoint: its EMA weights, else its G weights)\n"
        "  --load_path RUN_DIR  a build/train run directory: RUN_DIR/Model/checkpoint.safetensors (the latest)\n"
        "  --best               with RUN_DIR: Model/checkpoint_best.safetensors (the lowest FID) instead\n"
        "  --num_eval_imgs N (50000; with --z: its row count)  --eval_batch_size N (100)\n"
        "  --seed N (12345)  --z FILE.npy (float32 [N, latent_dim], replaces the random z)\n"
        "  --out FILE.npy (uint8 N x H x W x 3) | --out DIR (PNG files)\n"
        "  --inception W.pth | --classifier W.safetensors   score the images: prints IS <mean> <std>\n"
        "  --fid_stat S.npz (alias --stats)   and FID <value> against these statistics   --splits N (10)\n"
        "  --eval_batch_size is also spelled --batch; --threads N (0: OpenMP default; at most 256)\n"
        "  without --inception/--classifier nothing is scored\n");
}

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}
static int is_dir(const char *path) {
#ifdef SAMPLE_HAVE_MKDIR
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
#else
    (void)path; return 0;
#endif
}
static int is_file(const char *path) { FILE *f = is_dir(path) ? NULL : fopen(path, "rb"); if (f) fclose(f); return f != NULL; }

/* --load_path FILE, or a build/train run directory: its latest checkpoint (--best: the best
   one), said on stderr; a directory without it is refused naming what was looked for */
static void resolve_load_path(cli *c, options *o) {
    const char *name = o->best ? "checkpoint_best.safetensors" : "checkpoint.safetensors";
    size_t n = strlen(o->load_path);
    if (!is_dir(o->load_path)) {
        if (o->best) cli_fail(c, "--best needs --load_path RUN_DIR (a build/train run directory); %s is not a directory", o->load_path);
        if (n >= sizeof o->ckpt) cli_fail(c, "--load_path: the path is longer than %d bytes", (int)sizeof o->ckpt - 1);
        memcpy(o->ckpt, o->load_path, n + 1);
        return;
    }
    while (n > 1 && o->load_path[n - 1] == '/') n--;   /* "run/" reads as "run" */
    if (n + 40 >= sizeof o->ckpt) cli_fail(c, "--load_path: the path is longer than %d bytes", (int)sizeof o->ckpt - 41);
    snprintf(o->ckpt, sizeof o->ckpt, "%.*s/Model/%s", (int)n, o->load_path, name);
    if (!is_file(o->ckpt)) {
        char other[4200];
        snprintf(other, sizeof other, "%.*s/Model/%s", (int)n, o->load_path, o->best ? "checkpoint.safetensors" : "checkpoint_best.safetensors");
        cli_fail(c, "--load_path %s is a directory without Model/%s (looked for %s, the %s checkpoint of a build/train run directory)%s", o->load_path,
                 name, o->ckpt, o->best ? "best-FID" : "latest", is_file(other) ? (o->best ? "; it has the latest one: leave out --best" : "; it has the best one: add --best") : "");
    }
    fprintf(stderr, "sample: --load_path %s: reading %s (the %s)\n", o->load_path, o->ckpt,
            o->best ? "checkpoint of the lowest FID" : "latest checkpoint; --best reads the checkpoint of the lowest FID");
}

/* the flags (examples/cli.h: underscores as the reference, hyphenated aliases, --flag=value;
   an error names the flag and the value and exits 2 before any work) */
static void parse_args(int argc, char **argv, options *o) {
    cli c;
    memset(o, 0, sizeof *o);
    o->gf = 256; o->latent = 128; o->bottom_width = 4; o->num_eval = 50000; o->batch = 100; o->splits = 10; o->seed = 12345;
    cli_start(&c, "sample", argc, argv);
    while (cli_next(&c)) {
        if (cli_is(&c, "-h") || cli_is(&c, "--help")) { usage(); exit(0); }
        else if (cli_is(&c, "--arch")) {
            while (cli_more(&c)) {
                if (o->arch_len == AG_ARCH_MAX) cli_fail(&c, "--arch takes at most %d tokens", AG_ARCH_MAX);
                o->arch[o->arch_len++] = (int)cli_int(&c, 0, 255);
            }
            if (!o->arch_len) cli_fail(&c, "--arch needs tokens");
        }
        else if (cli_is(&c, "--gen_model")) o->gen_model = cli_str(&c);
        else if (cli_is(&c, "--load_path")) o->load_path = cli_str(&c);
        else if (cli_is(&c, "--z")) o->z_path = cli_str(&c);
        else if (cli_is(&c, "--out")) o->out = cli_str(&c);
        else if (cli_is(&c, "--best")) o->best = 1;
        else if (cli_is(&c, "--inception")) o->inception = cli_str(&c);
        else if (cli_is(&c, "--classifier")) o->classifier = cli_str(&c);
        else if (cli_is(&c, "--fid_stat") || cli_is(&c, "--stats")) o->fid_stat = cli_str(&c);
        else if (cli_is(&c, "--gf_dim")) o->gf = (int)cli_int(&c, 1, 4096);
        else if (cli_is(&c, "--latent_dim")) o->latent = (int)cli_int(&c, 1, 65536);
        else if (cli_is(&c, "--bottom_width")) o->bottom_width = (int)cli_int(&c, 1, 64);
        else if (cli_is(&c, "--num_eval_imgs")) { o->num_eval = (int)cli_int(&c, 1, 100000000); o->num_eval_set = 1; }
        else if (cli_is(&c, "--eval_batch_size") || cli_is(&c, "--batch")) o->batch = (int)cli_int(&c, 1, 4096);
        else if (cli_is(&c, "--threads")) o->threads = cli_threads(&c);
        else if (cli_is(&c, "--splits")) o->splits = (int)cli_int(&c, 1, 1000);
        else if (cli_is(&c, "--seed") || cli_is(&c, "--random_seed")) o->seed = cli_u64(&c);
        else cli_unknown(&c);
    }
    if (!o->load_path) cli_fail(&c, "--load_path FILE is required");
    resolve_load_path(&c, o);
    if (!o->gen_model && !o->arch_len && !ends_with(o->ckpt, ".safetensors"))
        cli_fail(&c, "give --gen_model NAME or --arch (14 tokens) for a .pth (a .safetensors from build/train names its model)");
    if (o->inception && o->classifier) cli_fail(&c, "give --inception or --classifier, not both");
    if (!o->out && !o->inception && !o->classifier) cli_fail(&c, "nothing to do: give --out FILE.npy|DIR and/or --inception W (or --classifier W)");
    if (o->fid_stat && !o->inception && !o->classifier) cli_fail(&c, "--fid_stat needs --inception W or --classifier W");
}

/* the generator the options name; 0 or -1 with a message */
static int build_generator(const options *o, ag_generator *G) {
    ag_error err; int arch[AG_ARCH_MAX];
    if (!o->gen_model && !o->arch_len) {   /* the model the file's metadata names (build/train's checkpoints and generators) */
        ag_generator_spec spec; char desc[256];
        if (ag_generator_spec_read(o->ckpt, &spec, &err) || ag_generator_init_spec(G, &spec, NULL, &err)) {
            ag_array_list l; char *meta = NULL, fmt[64]; ag_error e2;
            memset(&l, 0, sizeof l);
            if (ends_with(o->ckpt, ".safetensors") && !ag_safetensors_read(o->ckpt, &l, &meta, &e2) && meta &&
                !ag_json_get_string(meta, "format", fmt, sizeof fmt) && strstr(fmt, "search checkpoint"))
                fprintf(stderr, "sample: %s is a build/search checkpoint (the search's shared GAN), not a trained generator: train an architecture of "
                                "the search's archs.txt with build/train, then sample that run\n", o->ckpt);
            else fprintf(stderr, "sample: %s\n", err.msg);
            ag_array_list_free(&l); free(meta);
            return -1;
        }
        ag_generator_spec_describe(&spec, desc, sizeof desc);
        fprintf(stderr, "sample: %s names its model: %s\n", o->ckpt, desc);
        return 0;
    }
    if (o->gen_model && !strcmp(o->gen_model, "shared_gan")) {
        int stage = o->arch_len == 4 ? 0 : o->arch_len == 9 ? 1 : 2;
        if (!o->arch_len) { fprintf(stderr, "sample: --gen_model shared_gan needs --arch\n"); return -1; }
        if (ag_generator_init(G, o->gf, o->latent, o->bottom_width, 3, NULL, &err) || ag_generator_set_arch(G, stage, o->arch, o->arch_len, &err)) {
            fprintf(stderr, "sample: --arch: %s\n", err.msg); return -1;
        }
        return 0;
    }
    if (o->gen_model) {
        if (ag_derived_arch(o->gen_model, arch)) {
            fprintf(stderr, "sample: --gen_model '%s': unknown model (autogan_cifar10_a, autogan_cifar10_b, autogan_cifar10_c or shared_gan)\n", o->gen_model);
            return -1;
        }
        if (o->arch_len && (o->arch_len != AG_ARCH_MAX || memcmp(arch, o->arch, sizeof arch))) {
            fprintf(stderr, "sample: --arch does not match --gen_model %s (its architecture is", o->gen_model);
            { int i; for (i = 0; i < AG_ARCH_MAX; i++) fprintf(stderr, " %d", arch[i]); }
            fprintf(stderr, ")\n");
            return -1;
        }
    } else {
        if (o->arch_len != AG_ARCH_MAX) { fprintf(stderr, "sample: --arch has %d tokens; a derived generator needs 14 (or use --gen_model shared_gan)\n", o->arch_len); return -1; }
        memcpy(arch, o->arch, sizeof arch);
    }
    if (ag_generator_init_derived(G, arch, o->gf, o->latent, o->bottom_width, 3, NULL, &err)) { fprintf(stderr, "sample: %s\n", err.msg); return -1; }
    return 0;
}

/* the outputs, checked before anything is loaded: --out FILE.npy must be writable (not a
   directory, its directory existing); --out DIR is created if missing and must take a file.
   0, or -1 with a message naming the flag and the path. *made: DIR was created here. */
static int check_out(const char *out, int *out_dir, int *made) {
    ag_error err; char probe[4300];
    *out_dir = 0; *made = 0;
    if (ends_with(out, ".npy")) {
        if (ag_file_check_writable(out, &err)) { fprintf(stderr, "sample: --out: %s\n", err.msg); return -1; }
        return 0;
    }
#ifdef SAMPLE_HAVE_MKDIR
    {
        struct stat st;
        if (stat(out, &st) == 0) {
            if (!S_ISDIR(st.st_mode)) { fprintf(stderr, "sample: --out %s: exists and is not a directory (give FILE.npy or DIR)\n", out); return -1; }
        } else if (mkdir(out, 0777) != 0) {
            fprintf(stderr, "sample: --out %s: cannot create the directory (%s)\n", out, strerror(errno)); return -1;
        } else *made = 1;
    }
#endif
    snprintf(probe, sizeof probe, "%s/iter0_b0.png", out);
    if (ag_file_check_writable(probe, &err)) {
        fprintf(stderr, "sample: --out %s: the directory cannot take the images: %s\n", out, err.msg);
#ifdef SAMPLE_HAVE_MKDIR
        if (*made) rmdir(out);
#endif
        *made = 0;
        return -1;
    }
    *out_dir = 1;
    return 0;
}

/* --z FILE.npy: float32 [N, latent_dim], every value finite; 0, or -1 with a message naming
   the file (and the row and column of a NaN or infinity) */
static int read_z(const char *path, int latent, ag_array *z) {
    ag_error err; int64_t i, n; int j;
    if (ag_npy_read(path, z, &err)) { fprintf(stderr, "sample: --z: %s\n", err.msg); return -1; }
    if (z->dtype != AG_DTYPE_F32 || z->ndim != 2 || z->shape[1] != latent || z->shape[0] < 1) {
        fprintf(stderr, "sample: --z %s: z must be float32 [N, %d] (latent_dim); the file holds %s [", path, latent, ag_dtype_name(z->dtype));
        for (j = 0; j < z->ndim; j++) fprintf(stderr, "%s%lld", j ? ", " : "", (long long)z->shape[j]);
        fprintf(stderr, "]\n");
        return -1;
    }
    n = z->shape[0];
    for (i = 0; i < n; i++) for (j = 0; j < latent; j++) {
        float v = ((const float *)z->data)[(size_t)i * latent + j];
        if (!isfinite(v)) {
            fprintf(stderr, "sample: --z %s: row %lld, column %d is %s; z must be finite\n", path, (long long)i, j, v != v ? "NaN" : "infinite");
            return -1;
        }
    }
    return 0;
}

typedef struct scoring {
    ag_scorer *net; ag_fid_stats stats; float *features, *logits_all; int K, F; int64_t n;
} scoring;

int main(int argc, char **argv) {
    options o; ag_generator G; ag_ctx *ctx = NULL; ag_error err; ag_array zfile, hdr_arr; scoring sc; ag_fid_stats ref;
    FILE *npy = NULL; char tmp_path[4300], key[64]; unsigned char *img = NULL; int rc = 1, R, out_dir = 0, made_dir = 0;
    int64_t done = 0; double t0, last; ag_rng zrng; const char *scorer_path;
    memset(&zfile, 0, sizeof zfile); memset(&sc, 0, sizeof sc); memset(&ref, 0, sizeof ref); memset(&G, 0, sizeof G);
    tmp_path[0] = 0;
    parse_args(argc, argv, &o);
    scorer_path = o.inception ? o.inception : o.classifier;
    /* ---- every input and output checked before the generator's weights are loaded ---- */
    if (o.out && check_out(o.out, &out_dir, &made_dir)) return 2;
    rc = 2;
    if (build_generator(&o, &G)) goto done;
    R = ag_stage_resolution(G.stage, G.bottom_width);
    if (o.z_path) {
        if (read_z(o.z_path, G.latent_dim, &zfile)) goto done;
        if (o.num_eval_set && o.num_eval > zfile.shape[0]) { fprintf(stderr, "sample: --num_eval_imgs %d but --z %s holds %lld rows\n", o.num_eval, o.z_path, (long long)zfile.shape[0]); goto done; }
        if (!o.num_eval_set) o.num_eval = zfile.shape[0] > 100000000 ? 100000000 : (int)zfile.shape[0];
    }
    if (scorer_path) {
        if (o.num_eval < o.splits) { fprintf(stderr, "sample: %d images for --splits %d: the Inception score needs at least one image per split\n", o.num_eval, o.splits); goto done; }
        if (o.fid_stat && ag_fid_stats_load(o.fid_stat, &ref, &err)) { fprintf(stderr, "sample: --fid_stat: %s\n", err.msg); goto done; }
        if (o.fid_stat && o.inception && ref.dim != 2048) { fprintf(stderr, "sample: --fid_stat %s: statistics of dimension %d; Inception's pool3 has 2048\n", o.fid_stat, ref.dim); goto done; }
    }
    /* ---- the generator's weights, then the scorer's ---- */
    rc = 1;
    if (ag_generator_load(&G, o.ckpt, key, sizeof key, &err)) { fprintf(stderr, "sample: %s\n", err.msg); goto done; }
    fprintf(stderr, "sample: %s generator, %zu parameters, '%s' of %s\n", G.derived ? "derived" : "shared", ag_params_count(&G.params), key, o.ckpt);
    G.training = 0;   /* eval mode: BatchNorm uses its running statistics */
    if (scorer_path) {
        if (!(sc.net = ag_scorer_load(scorer_path, &err))) { fprintf(stderr, "sample: %s\n", err.msg); goto done; }
        rc = 2;
        if (strcmp(ag_scorer_kind(sc.net), o.inception ? "inception" : "classifier")) {
            fprintf(stderr, "sample: %s holds %s weights; use --%s\n", scorer_path, ag_scorer_kind(sc.net), ag_scorer_kind(sc.net)); goto done;
        }
        sc.K = ag_scorer_num_classes(sc.net); sc.F = ag_scorer_feature_dim(sc.net);
        if (o.fid_stat && ref.dim != sc.F) { fprintf(stderr, "sample: --fid_stat %s: statistics of dimension %d; the %s's features have %d\n", o.fid_stat, ref.dim, ag_scorer_kind(sc.net), sc.F); goto done; }
        rc = 1;
        if (o.threads > 0) ag_scorer_set_threads(sc.net, o.threads);
        sc.features = (float *)malloc((size_t)o.batch * sc.F * sizeof(float));
        sc.logits_all = (float *)malloc((size_t)o.num_eval * sc.K * sizeof(float));   /* 4 KB per image with Inception */
        if (!sc.features || !sc.logits_all) { fprintf(stderr, "sample: out of memory for scoring %d images\n", o.num_eval); goto done; }
        if (ag_fid_stats_init(&sc.stats, sc.F, &err)) { fprintf(stderr, "sample: %s\n", err.msg); goto done; }
    }
    ag_rng_seed(&zrng, o.seed, 7);
    if (o.out && !out_dir) {   /* the .npy streams to OUT.tmp, renamed over OUT at the end */
        size_t hlen; unsigned char hdr[512];
        memset(&hdr_arr, 0, sizeof hdr_arr);
        hdr_arr.dtype = AG_DTYPE_U8; hdr_arr.ndim = 4; hdr_arr.shape[0] = o.num_eval; hdr_arr.shape[1] = R; hdr_arr.shape[2] = R; hdr_arr.shape[3] = 3;
        if (ag_npy_header(&hdr_arr, hdr, sizeof hdr, &hlen, &err)) { fprintf(stderr, "sample: %s\n", err.msg); goto done; }
        snprintf(tmp_path, sizeof tmp_path, "%s.tmp", o.out);
        if (!(npy = fopen(tmp_path, "wb")) || fwrite(hdr, 1, hlen, npy) != hlen) { fprintf(stderr, "sample: --out: %s: cannot write (%s)\n", tmp_path, strerror(errno)); goto done; }
    }
    if (!(ctx = ag_ctx_create(o.seed, &err)) || !(img = (unsigned char *)malloc((size_t)o.batch * R * R * 3))) { fprintf(stderr, "sample: %s\n", ctx ? "out of memory for the image batch" : err.msg); goto done; }
    if (o.threads > 0) ag_ctx_set_threads(ctx, o.threads);
    ag_ctx_set_grad_enabled(ctx, 0);
    t0 = last = ag_wall_seconds();
    while (done < o.num_eval) {
        int n = (int)(o.num_eval - done < o.batch ? o.num_eval - done : o.batch), shape[2], k;
        ag_tensor *z, *out;
        ag_ctx_reset(ctx);
        shape[0] = n; shape[1] = G.latent_dim;
        if (!(z = ag_tensor_new(ctx, 2, shape))) { fprintf(stderr, "sample: %s\n", ag_ctx_error(ctx)); goto done; }
        if (o.z_path) memcpy(z->data, (const float *)zfile.data + (size_t)done * G.latent_dim, (size_t)n * G.latent_dim * sizeof(float));
        else ag_rng_fill_normal(&zrng, z->data, z->size, 0.0f, 1.0f);
        if (!(out = ag_generator_forward(ctx, &G, z))) { fprintf(stderr, "sample: generator: %s\n", ag_ctx_error(ctx)); goto done; }
        /* the reference's G(z).mul_(127.5).add_(127.5).clamp_(0, 255).permute(0, 2, 3, 1).to(uint8); gray replicated to RGB */
        ag_images_to_u8(out->data, n, G.out_channels, R, R, 3, AG_U8_TRUNCATE, img);
        if (npy && fwrite(img, 1, (size_t)n * R * R * 3, npy) != (size_t)n * R * R * 3) { fprintf(stderr, "sample: %s: write failed (%s)\n", tmp_path, strerror(errno)); goto done; }
        if (out_dir) for (k = 0; k < n; k++) {   /* the reference's fid_buffer names */
            char path[4300]; int64_t idx = done + k;
            snprintf(path, sizeof path, "%s/iter%lld_b%lld.png", o.out, (long long)(idx / o.batch), (long long)(idx % o.batch));
            if (ag_png_write(path, img + (size_t)k * R * R * 3, R, R, 3, &err)) { fprintf(stderr, "sample: %s\n", err.msg); goto done; }
        }
        if (sc.net) {
            if (ag_scorer_forward_u8(sc.net, img, n, R, R, 3, sc.logits_all + (size_t)done * sc.K, sc.features, &err)) { fprintf(stderr, "sample: %s\n", err.msg); goto done; }
            if (ag_fid_stats_add(&sc.stats, sc.features, n, &err)) { fprintf(stderr, "sample: FID statistics: %s\n", err.msg); goto done; }
        }
        done += n;
        if (ag_wall_seconds() - last >= 5 || done == o.num_eval) {
            double el = ag_wall_seconds() - t0, rate = el > 0 ? done / el : 0;
            fprintf(stderr, "sample: %lld/%d images, %.1f img/s, eta %.0f s\n", (long long)done, o.num_eval, rate, rate > 0 ? (o.num_eval - done) / rate : 0.0);
            last = ag_wall_seconds();
        }
    }
    if (npy) {
        int bad = fflush(npy) != 0;
#ifdef SAMPLE_HAVE_MKDIR
        bad = bad || fsync(fileno(npy)) != 0;   /* on the disk before the rename */
#endif
        if (fclose(npy) != 0) bad = 1;
        npy = NULL;
        if (bad) { fprintf(stderr, "sample: %s: write failed (%s)\n", tmp_path, strerror(errno)); remove(tmp_path); goto done; }
        if (rename(tmp_path, o.out) != 0) { fprintf(stderr, "sample: cannot rename %s to %s (%s)\n", tmp_path, o.out, strerror(errno)); remove(tmp_path); goto done; }
        tmp_path[0] = 0;
        fprintf(stderr, "sample: wrote %s (uint8 [%d, %d, %d, 3])\n", o.out, o.num_eval, R, R);
    }
    if (sc.net) {
        double is_mean, is_std, fid;
        if (ag_inception_score(sc.logits_all, o.num_eval, sc.K, o.splits, &is_mean, &is_std, &err)) { fprintf(stderr, "sample: %s\n", err.msg); goto done; }
        printf("IS %.6f %.6f\n", is_mean, is_std);
        fflush(stdout);
        if (o.fid_stat) {
            if (ag_fid_stats_finish(&sc.stats, &err)) { fprintf(stderr, "sample: %s\n", err.msg); goto done; }
            if (ag_fid(sc.stats.mu, sc.stats.sigma, ref.mu, ref.sigma, sc.F, &fid, &err)) { fprintf(stderr, "sample: FID against --fid_stat %s: %s\n", o.fid_stat, err.msg); goto done; }
            printf("FID %.6f\n", fid);
        }
    }
    rc = 0;
done:
    if (npy) { fclose(npy); remove(tmp_path); }
#ifdef SAMPLE_HAVE_MKDIR
    if (rc && made_dir) rmdir(o.out);   /* only when still empty */
#endif
    free(img); free(sc.features); free(sc.logits_all);
    ag_fid_stats_free(&sc.stats); ag_fid_stats_free(&ref); ag_scorer_free(sc.net);
    ag_array_free(&zfile); ag_generator_free(&G); ag_ctx_free(ctx);
    return rc;
}
