/* sample.c - images from a trained AutoGAN generator, and their IS / FID: the C form of the
   reference's test.py (functions.validate).

   build/sample --gen_model autogan_cifar10_a --load_path autogan_cifar10_a.pth \
                --inception pt_inception-2015-12-05-6726825d.pth --fid_stat fid_stats_cifar10_train.npz

   The generator: --gen_model autogan_cifar10_a|b|c (the derived models of the release), or
   --arch with 14 tokens (the same derived model for any architecture of pre-activation cells
   with bilinear/nearest upsampling), or --gen_model shared_gan --arch T... (the weight-shared
   search generator, e.g. a build/train checkpoint). --load_path is a PyTorch .pth (zip or
   legacy form; a training checkpoint's 'avg_gen_state_dict' when present, as test.py, else
   'gen_state_dict', else a bare state_dict) or a .safetensors file (bare, or a build/train
   checkpoint: its EMA weights when it has them, as avg_gen_state_dict, else its "G." weights).

   Images are made as the reference makes them: eval mode (BatchNorm running statistics),
   x * 127.5 + 127.5 in float32, clamped to [0, 255], truncated to uint8. z is N(0, 1) from the
   PCG32 stream of --seed (the reference's numpy draws cannot be reproduced), or read from
   --z FILE.npy (float32 [N, latent_dim]). --out FILE.npy writes uint8 [N, H, W, 3]; --out DIR
   writes DIR/iter<i>_b<j>.png as the reference's fid_buffer. With --inception W the images are
   scored (TF-exact preprocessing, 10 splits) and `IS <mean> <std>` is printed, plus
   `FID <value>` with --fid_stat S.npz. Images stream through in batches of --eval_batch_size
   (never all in memory); progress goes to stderr. Unlike test.py's N // batch batches, exactly
   --num_eval_imgs images are made (the last batch may be smaller). */
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
#define SAMPLE_HAVE_MKDIR 1
#endif

typedef struct options {
    const char *gen_model, *load_path, *z_path, *out, *inception, *fid_stat;
    int arch[AG_ARCH_MAX], arch_len, gf, latent, bottom_width, num_eval, num_eval_set, batch, threads, splits;
    unsigned long long seed;
} options;

static void usage(void) {
    fprintf(stderr,
        "usage: sample [--gen_model NAME | --arch T1 ... T14] --load_path FILE [options]\n"
        "  (a .safetensors from build/train names its model in its metadata: no model flag needed)\n"
        "  --gen_model NAME     autogan_cifar10_a | autogan_cifar10_b | autogan_cifar10_c | shared_gan (needs --arch)\n"
        "  --arch TOKENS        14 tokens, e.g. 1 0 1 1 1 0 0 1 1 1 0 1 0 3 (4 or 9 with shared_gan)\n"
        "  --gf_dim N (256)  --latent_dim N (128)  --bottom_width N (4: 32x32, 6: 48x48)\n"
        "  --load_path FILE     .pth (zip or legacy; avg_gen_state_dict, gen_state_dict or bare) or .safetensors\n"
        "                       (bare, or a build/train checkpoint: its EMA weights, else its G weights)\n"
        "  --num_eval_imgs N (50000; with --z: its row count)  --eval_batch_size N (100)\n"
        "  --seed N (12345)  --z FILE.npy (float32 [N, latent_dim], replaces the random z)\n"
        "  --out FILE.npy (uint8 N x H x W x 3) | --out DIR (PNG files)\n"
        "  --inception W.pth [--fid_stat S.npz] [--splits 10]   prints IS <mean> <std> and FID <value>\n"
        "  --threads N (OpenMP default)\n");
}

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
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
        else if (cli_is(&c, "--inception")) o->inception = cli_str(&c);
        else if (cli_is(&c, "--fid_stat")) o->fid_stat = cli_str(&c);
        else if (cli_is(&c, "--gf_dim")) o->gf = (int)cli_int(&c, 1, 4096);
        else if (cli_is(&c, "--latent_dim")) o->latent = (int)cli_int(&c, 1, 65536);
        else if (cli_is(&c, "--bottom_width")) o->bottom_width = (int)cli_int(&c, 1, 64);
        else if (cli_is(&c, "--num_eval_imgs")) { o->num_eval = (int)cli_int(&c, 1, 100000000); o->num_eval_set = 1; }
        else if (cli_is(&c, "--eval_batch_size")) o->batch = (int)cli_int(&c, 1, 4096);
        else if (cli_is(&c, "--threads")) o->threads = cli_threads(&c);
        else if (cli_is(&c, "--splits")) o->splits = (int)cli_int(&c, 1, 1000);
        else if (cli_is(&c, "--seed") || cli_is(&c, "--random_seed")) o->seed = cli_u64(&c);
        else cli_unknown(&c);
    }
    if (!o->load_path) cli_fail(&c, "--load_path FILE is required");
    if (!o->gen_model && !o->arch_len && !ends_with(o->load_path, ".safetensors"))
        cli_fail(&c, "give --gen_model NAME or --arch (14 tokens) for a .pth (a .safetensors from build/train names its model)");
    if (!o->out && !o->inception) cli_fail(&c, "nothing to do: give --out FILE.npy|DIR and/or --inception W");
    if (o->fid_stat && !o->inception) cli_fail(&c, "--fid_stat needs --inception W");
}

/* the generator the options name; 0 or -1 with a message */
static int build_generator(const options *o, ag_generator *G) {
    ag_error err; int arch[AG_ARCH_MAX];
    if (!o->gen_model && !o->arch_len) {   /* the model the file's metadata names (build/train's checkpoints and generators) */
        ag_generator_spec spec; char desc[256];
        if (ag_generator_spec_read(o->load_path, &spec, &err) || ag_generator_init_spec(G, &spec, NULL, &err)) { fprintf(stderr, "sample: %s\n", err.msg); return -1; }
        ag_generator_spec_describe(&spec, desc, sizeof desc);
        fprintf(stderr, "sample: %s names its model: %s\n", o->load_path, desc);
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

/* the reference's G(z).mul_(127.5).add_(127.5).clamp_(0, 255).permute(0, 2, 3, 1).to(uint8):
   two float32 roundings (no fused multiply-add), then truncation */
static unsigned char to_u8(float x) {
    volatile float t = x * 127.5f;
    float v = t + 127.5f;
    if (!(v > 0.0f)) return 0;   /* also NaN */
    if (v > 255.0f) v = 255.0f;
    return (unsigned char)v;
}

typedef struct scoring {
    ag_inception *net; ag_fid_stats stats; float *x299, *pool3, *logits_all; int64_t n;
} scoring;

int main(int argc, char **argv) {
    options o; ag_generator G; ag_ctx *ctx = NULL; ag_error err; ag_array zfile, hdr_arr; scoring sc; ag_fid_stats ref;
    FILE *npy = NULL; char tmp_path[4096], key[64]; unsigned char *img = NULL; int rc = 1, R, out_dir = 0;
    int64_t done = 0; double t0, last; ag_rng zrng;
    memset(&zfile, 0, sizeof zfile); memset(&sc, 0, sizeof sc); memset(&ref, 0, sizeof ref); memset(&G, 0, sizeof G);
    parse_args(argc, argv, &o);
    if (build_generator(&o, &G)) return 2;
    if (ag_generator_load(&G, o.load_path, key, sizeof key, &err)) { fprintf(stderr, "sample: %s\n", err.msg); goto done; }
    fprintf(stderr, "sample: %s generator, %zu parameters, '%s' of %s\n", G.derived ? "derived" : "shared", ag_params_count(&G.params), key, o.load_path);
    G.training = 0;   /* eval mode: BatchNorm uses its running statistics */
    R = ag_stage_resolution(G.stage, G.bottom_width);
    if (o.z_path) {
        if (ag_npy_read(o.z_path, &zfile, &err)) { fprintf(stderr, "sample: %s\n", err.msg); goto done; }
        if (zfile.dtype != AG_DTYPE_F32 || zfile.ndim != 2 || zfile.shape[1] != G.latent_dim || zfile.shape[0] < 1) {
            fprintf(stderr, "sample: %s: z must be float32 [N, %d] (latent_dim)\n", o.z_path, G.latent_dim); goto done;
        }
        if (o.num_eval_set && o.num_eval > zfile.shape[0]) { fprintf(stderr, "sample: --num_eval_imgs %d but %s holds %lld rows\n", o.num_eval, o.z_path, (long long)zfile.shape[0]); goto done; }
        if (!o.num_eval_set) o.num_eval = zfile.shape[0] > 100000000 ? 100000000 : (int)zfile.shape[0];
    }
    ag_rng_seed(&zrng, o.seed, 7);
    if (o.out) {
        if (ends_with(o.out, ".npy")) {
            size_t hlen; unsigned char hdr[512];
            memset(&hdr_arr, 0, sizeof hdr_arr);
            hdr_arr.dtype = AG_DTYPE_U8; hdr_arr.ndim = 4; hdr_arr.shape[0] = o.num_eval; hdr_arr.shape[1] = R; hdr_arr.shape[2] = R; hdr_arr.shape[3] = 3;
            snprintf(tmp_path, sizeof tmp_path, "%s.tmp", o.out);
            if (ag_npy_header(&hdr_arr, hdr, sizeof hdr, &hlen, &err)) { fprintf(stderr, "sample: %s\n", err.msg); goto done; }
            if (!(npy = fopen(tmp_path, "wb")) || fwrite(hdr, 1, hlen, npy) != hlen) { fprintf(stderr, "sample: %s: cannot write\n", tmp_path); goto done; }
        } else {
#ifdef SAMPLE_HAVE_MKDIR
            struct stat st;
            if (stat(o.out, &st) != 0 && mkdir(o.out, 0777) != 0) { fprintf(stderr, "sample: %s: cannot create the directory\n", o.out); goto done; }
            if (stat(o.out, &st) != 0 || !S_ISDIR(st.st_mode)) { fprintf(stderr, "sample: --out %s: not a directory (give FILE.npy or DIR)\n", o.out); goto done; }
#endif
            out_dir = 1;
        }
    }
    if (o.inception) {
        if (o.fid_stat && ag_fid_stats_load(o.fid_stat, &ref, &err)) { fprintf(stderr, "sample: %s\n", err.msg); goto done; }
        if (o.fid_stat && ref.dim != 2048) { fprintf(stderr, "sample: %s: statistics of dimension %d; pool3 has 2048\n", o.fid_stat, ref.dim); goto done; }
        if (o.num_eval < o.splits) { fprintf(stderr, "sample: %d images for %d Inception-score splits\n", o.num_eval, o.splits); goto done; }
        if (!(sc.net = ag_inception_load(o.inception, &err))) { fprintf(stderr, "sample: %s\n", err.msg); goto done; }
        if (o.threads > 0) ag_inception_set_threads(sc.net, o.threads);
        sc.x299 = (float *)malloc((size_t)o.batch * 3 * 299 * 299 * sizeof(float));
        sc.pool3 = (float *)malloc((size_t)o.batch * 2048 * sizeof(float));
        sc.logits_all = (float *)malloc((size_t)o.num_eval * 1008 * sizeof(float));   /* 4 KB per image */
        if (!sc.x299 || !sc.pool3 || !sc.logits_all) { fprintf(stderr, "sample: out of memory for scoring %d images\n", o.num_eval); goto done; }
        if (ag_fid_stats_init(&sc.stats, 2048, &err)) { fprintf(stderr, "sample: %s\n", err.msg); goto done; }
    }
    if (!(ctx = ag_ctx_create(o.seed, &err)) || !(img = (unsigned char *)malloc((size_t)o.batch * R * R * 3))) { fprintf(stderr, "sample: %s\n", ctx ? "out of memory for the image batch" : err.msg); goto done; }
    if (o.threads > 0) ag_ctx_set_threads(ctx, o.threads);
    ag_ctx_set_grad_enabled(ctx, 0);
    t0 = last = ag_wall_seconds();
    while (done < o.num_eval) {
        int n = (int)(o.num_eval - done < o.batch ? o.num_eval - done : o.batch), shape[2], k, c, y, x;
        ag_tensor *z, *out;
        ag_ctx_reset(ctx);
        shape[0] = n; shape[1] = G.latent_dim;
        if (!(z = ag_tensor_new(ctx, 2, shape))) { fprintf(stderr, "sample: %s\n", ag_ctx_error(ctx)); goto done; }
        if (o.z_path) memcpy(z->data, (const float *)zfile.data + (size_t)done * G.latent_dim, (size_t)n * G.latent_dim * sizeof(float));
        else ag_rng_fill_normal(&zrng, z->data, z->size, 0.0f, 1.0f);
        if (!(out = ag_generator_forward(ctx, &G, z))) { fprintf(stderr, "sample: generator: %s\n", ag_ctx_error(ctx)); goto done; }
        for (k = 0; k < n; k++) for (c = 0; c < 3; c++) for (y = 0; y < R; y++) for (x = 0; x < R; x++) {   /* gray is replicated to RGB */
            int C = G.out_channels, cc = c < C ? c : C - 1;
            img[(((size_t)k * R + y) * R + x) * 3 + c] = to_u8(out->data[(((size_t)k * C + cc) * R + y) * R + x]);
        }
        if (npy && fwrite(img, 1, (size_t)n * R * R * 3, npy) != (size_t)n * R * R * 3) { fprintf(stderr, "sample: %s: write failed\n", tmp_path); goto done; }
        if (out_dir) for (k = 0; k < n; k++) {   /* the reference's fid_buffer names */
            char path[4200]; int64_t idx = done + k;
            snprintf(path, sizeof path, "%s/iter%lld_b%lld.png", o.out, (long long)(idx / o.batch), (long long)(idx % o.batch));
            if (ag_png_write(path, img + (size_t)k * R * R * 3, R, R, 3, &err)) { fprintf(stderr, "sample: %s\n", err.msg); goto done; }
        }
        if (sc.net) {
            for (k = 0; k < n; k++) ag_inception_preprocess_tf(img + (size_t)k * R * R * 3, R, R, sc.x299 + (size_t)k * 3 * 299 * 299);
            if (ag_inception_forward(sc.net, sc.x299, n, sc.pool3, sc.logits_all + (size_t)done * 1008, 0, &err)) { fprintf(stderr, "sample: %s\n", err.msg); goto done; }
            if (ag_fid_stats_add(&sc.stats, sc.pool3, n, &err)) { fprintf(stderr, "sample: FID statistics: %s\n", err.msg); goto done; }
        }
        done += n;
        if (ag_wall_seconds() - last >= 5 || done == o.num_eval) {
            double el = ag_wall_seconds() - t0, rate = el > 0 ? done / el : 0;
            fprintf(stderr, "sample: %lld/%d images, %.1f img/s, eta %.0f s\n", (long long)done, o.num_eval, rate, rate > 0 ? (o.num_eval - done) / rate : 0.0);
            last = ag_wall_seconds();
        }
    }
    if (npy) {
        if (fflush(npy) != 0 || fclose(npy) != 0) { npy = NULL; fprintf(stderr, "sample: %s: write failed\n", tmp_path); goto done; }
        npy = NULL;
        if (rename(tmp_path, o.out) != 0) { fprintf(stderr, "sample: cannot rename %s to %s\n", tmp_path, o.out); goto done; }
        tmp_path[0] = 0;
        fprintf(stderr, "sample: wrote %s (uint8 [%d, %d, %d, 3])\n", o.out, o.num_eval, R, R);
    }
    if (sc.net) {
        double is_mean, is_std, fid;
        if (ag_inception_score(sc.logits_all, o.num_eval, 1008, o.splits, &is_mean, &is_std, &err)) { fprintf(stderr, "sample: %s\n", err.msg); goto done; }
        printf("IS %.6f %.6f\n", is_mean, is_std);
        fflush(stdout);
        if (o.fid_stat) {
            if (ag_fid_stats_finish(&sc.stats, &err) || ag_fid(sc.stats.mu, sc.stats.sigma, ref.mu, ref.sigma, 2048, &fid, &err)) { fprintf(stderr, "sample: %s\n", err.msg); goto done; }
            printf("FID %.6f\n", fid);
        }
    }
    rc = 0;
done:
    if (npy) { fclose(npy); remove(tmp_path); }
    free(img); free(sc.x299); free(sc.pool3); free(sc.logits_all);
    ag_fid_stats_free(&sc.stats); ag_fid_stats_free(&ref); ag_inception_free(sc.net);
    ag_array_free(&zfile); ag_generator_free(&G); ag_ctx_free(ctx);
    return rc;
}
