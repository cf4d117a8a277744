/* train.c - train a fixed AutoGAN architecture (the "derived" training of the paper).

   build/train --arch 1 0 1 1 1 0 0 1 1 1 0 1 0 3 --max_iter 50000 --dataset cifar10 \
               --data_path cifar-10-python.tar.gz --ckpt runs/a.safetensors --samples runs/a_samples

   Flags follow the reference release (train_derived.py). Real data: --dataset cifar10 |
   stl10 | mnist | fashion-mnist | folder with --data_path (the archive as downloaded, its
   folder, or a folder of PNGs; fashion-mnist without --data_path uses the shipped test split
   or Debian's train split), resized to the stage's resolution at load as the reference's
   transforms.Resize (PIL bilinear), shuffled every epoch from the seed, the last partial
   batch kept (DataLoader's default); gray data sets train with --channels 1 or are
   replicated to 3 channels. The loader's position is saved in checkpoints, so a resumed
   run reads the same images in the same order. Without --dataset, --data is `synthetic`
   (procedural shapes, for trying the pipeline) or `raw:FILE` with uint8 images
   N x H x W x C in a flat file (--img_size H, --channels C); images whose size is an
   integer multiple of the training resolution are box-averaged down to it.
   Progress every --print_freq G steps; a resumable checkpoint (weights, Adam, EMA, PRNG)
   every --ckpt_freq G steps and at the end; a PNG grid of samples from fixed noise (EMA
   weights when --ema > 0) every --sample_freq G steps. Ctrl-C between checkpoints loses
   at most that many steps; checkpoints are written to a temporary name and renamed. */
#define AUTOGAN_IMPLEMENTATION
#include "../autogan.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <math.h>
#include "cli.h"
#if defined(__unix__) || defined(__APPLE__)
#include <sys/stat.h>
#endif

typedef struct options {
    int arch[AG_ARCH_MAX], arch_len, stage;
    int gf, df, latent, bottom_width, channels, gen_bs, dis_bs, n_critic, max_iter, print_freq, ckpt_freq, sample_freq;
    int threads, img_size, spectral_norm;
    double g_lr, d_lr, beta1, beta2, ema;
    unsigned long long seed;
    const char *data, *ckpt, *resume, *samples, *dataset, *data_path;
    int data_given;
} options;

static void usage(void) {
    fprintf(stderr,
        "usage: train --arch T1 T2 ... [options]\n"
        "  --arch TOKENS     4, 9 or 14 tokens (stage 0, 1, 2), e.g. 1 0 1 1 1 0 0 1 1 1 0 1 0 3\n"
        "  --gf_dim N        generator channels (256)      --df_dim N      discriminator channels (128)\n"
        "  --latent_dim N    z size (128)                  --bottom_width N (4: 32x32 at stage 2)\n"
        "  --gen_bs N        G batch (128)                 --dis_bs N      D batch (64)\n"
        "  --n_critic N      D steps per G step (5)        --max_iter N    G steps (50000)\n"
        "  --g_lr X --d_lr X (2e-4)  --beta1 X (0.0)  --beta2 X (0.9)  --ema X (0.999; 0 = off)\n"
        "  --dataset NAME    cifar10 | stl10 | mnist | fashion-mnist | folder (real images, resized to the stage)\n"
        "  --data_path PATH  the data set's archive or folder (fashion-mnist: optional)\n"
        "  --data SRC        without --dataset: synthetic | raw:FILE (uint8 NxHxWxC)  --img_size N (32)  --channels N (3)\n"
        "  --seed N (12345)  --threads N (OpenMP default)  --no_sn (no spectral norm in D)\n"
        "  --print_freq N (100)  --ckpt PATH  --ckpt_freq N (1000)  --resume PATH\n"
        "  --samples DIR (PNG grids DIR/NNNNNN.png, made if missing)  --sample_freq N (1000)\n");
}

static void parse_args(int argc, char **argv, options *o) {
    cli c;
    memset(o, 0, sizeof *o);
    o->gf = 256; o->df = 128; o->latent = 128; o->bottom_width = 4; o->channels = 3; o->gen_bs = 128; o->dis_bs = 64;
    o->n_critic = 5; o->max_iter = 50000; o->print_freq = 100; o->ckpt_freq = 1000; o->sample_freq = 1000;
    o->g_lr = o->d_lr = 2e-4; o->beta1 = 0.0; o->beta2 = 0.9; o->ema = 0.999; o->seed = 12345; o->img_size = 32;
    o->spectral_norm = 1; o->data = "synthetic"; o->stage = -1;
    cli_start(&c, "train", argc, argv);
    while (cli_next(&c)) {
        if (cli_is(&c, "--arch")) {
            o->arch_len = 0;   /* a repeated --arch replaces the earlier one */
            if (!cli_more(&c)) cli_fail(&c, "--arch needs a value (4, 9 or 14 tokens)");
            do {
                if (o->arch_len == AG_ARCH_MAX) cli_fail(&c, "--arch takes at most %d tokens", AG_ARCH_MAX);
                o->arch[o->arch_len++] = (int)cli_int(&c, 0, 99);
            } while (cli_more(&c));
        } else if (cli_is(&c, "--gf_dim")) o->gf = (int)cli_int(&c, 1, 4096);
        else if (cli_is(&c, "--df_dim")) o->df = (int)cli_int(&c, 1, 4096);
        else if (cli_is(&c, "--latent_dim")) o->latent = (int)cli_int(&c, 1, 1024);   /* the sample grid's fixed noise holds 1024 per image */
        else if (cli_is(&c, "--bottom_width")) o->bottom_width = (int)cli_int(&c, 1, 64);
        else if (cli_is(&c, "--channels")) o->channels = (int)cli_int(&c, 1, 4);
        else if (cli_is(&c, "--gen_bs") || cli_is(&c, "--gen_batch_size")) o->gen_bs = (int)cli_int(&c, 2, 65536);
        else if (cli_is(&c, "--dis_bs") || cli_is(&c, "--dis_batch_size")) o->dis_bs = (int)cli_int(&c, 2, 65536);
        else if (cli_is(&c, "--n_critic")) o->n_critic = (int)cli_int(&c, 1, 1000);
        else if (cli_is(&c, "--max_iter")) o->max_iter = (int)cli_int(&c, 0, 1000000000);
        else if (cli_is(&c, "--g_lr")) o->g_lr = cli_float(&c, 0.0, 1.0);
        else if (cli_is(&c, "--d_lr")) o->d_lr = cli_float(&c, 0.0, 1.0);
        else if (cli_is(&c, "--beta1")) o->beta1 = cli_float(&c, 0.0, 0.999999);
        else if (cli_is(&c, "--beta2")) o->beta2 = cli_float(&c, 0.0, 0.999999);
        else if (cli_is(&c, "--ema")) o->ema = cli_float(&c, 0.0, 0.999999);   /* a decay of 1 or more never averages */
        else if (cli_is(&c, "--seed") || cli_is(&c, "--random_seed")) o->seed = cli_u64(&c);
        else if (cli_is(&c, "--threads")) o->threads = cli_threads(&c);
        else if (cli_is(&c, "--data")) { o->data = cli_str(&c); o->data_given = 1; }
        else if (cli_is(&c, "--dataset")) o->dataset = cli_str(&c);
        else if (cli_is(&c, "--data_path")) o->data_path = cli_str(&c);
        else if (cli_is(&c, "--img_size")) o->img_size = (int)cli_int(&c, 1, 4096);
        else if (cli_is(&c, "--no_sn")) o->spectral_norm = 0;
        else if (cli_is(&c, "--print_freq")) o->print_freq = (int)cli_int(&c, 1, 1000000000);
        else if (cli_is(&c, "--ckpt")) o->ckpt = cli_str(&c);
        else if (cli_is(&c, "--ckpt_freq")) o->ckpt_freq = (int)cli_int(&c, 1, 1000000000);
        else if (cli_is(&c, "--resume")) o->resume = cli_str(&c);
        else if (cli_is(&c, "--samples")) o->samples = cli_str(&c);
        else if (cli_is(&c, "--sample_freq")) o->sample_freq = (int)cli_int(&c, 1, 1000000000);
        else if (cli_is(&c, "-h") || cli_is(&c, "--help")) { usage(); exit(0); }
        else cli_unknown(&c);
    }
    if (o->dataset && o->data_given) cli_fail(&c, "give --dataset (a real data set) or --data (synthetic, raw:FILE), not both");
    if (o->data_path && !o->dataset) cli_fail(&c, "--data_path needs --dataset NAME (cifar10, stl10, mnist, fashion-mnist or folder)");
    if (o->dataset && strcmp(o->dataset, "cifar10") && strcmp(o->dataset, "stl10") && strcmp(o->dataset, "mnist") &&
        strcmp(o->dataset, "fashion-mnist") && strcmp(o->dataset, "folder"))
        cli_fail(&c, "--dataset '%s' unknown; cifar10, stl10, mnist, fashion-mnist or folder", o->dataset);
    if (!o->arch_len && !o->resume) cli_fail(&c, "--arch is required (or --resume CHECKPOINT, whose architecture is used)");
    if (o->arch_len) {
        int i;
        o->stage = o->arch_len == 4 ? 0 : o->arch_len == 9 ? 1 : o->arch_len == 14 ? 2 : -1;
        if (o->stage < 0) cli_fail(&c, "--arch has %d tokens; 4, 9 or 14 expected", o->arch_len);
        for (i = 0; i < o->arch_len; i++)
            if (o->arch[i] >= ag_arch_token_choices(i))
                cli_fail(&c, "--arch token %d is %d; it must be 0 to %d", i + 1, o->arch[i], ag_arch_token_choices(i) - 1);
    }
}

/* creates the directory (one level) unless it exists */
static int make_dir(const char *path) {
#if defined(__unix__) || defined(__APPLE__)
    struct stat st;
    if (stat(path, &st) == 0) return S_ISDIR(st.st_mode) ? 0 : -1;
    return mkdir(path, 0777);
#else
    (void)path; return 0;   /* elsewhere the directory must exist; the write check reports it */
#endif
}

/* ---- data ---- */
typedef struct dataset { int n, res, channels; float *images; /* n x C x res x res in [-1,1] */ } dataset;

/* procedural images: a colour gradient background and a few discs and squares */
static int make_synthetic(dataset *ds, int n, int res, int channels, unsigned long long seed) {
    ag_rng rng; int i, c, y, x, k;
    ag_rng_seed(&rng, seed, 99);
    ds->n = n; ds->res = res; ds->channels = channels;
    ds->images = (float *)malloc((size_t)n * channels * res * res * sizeof(float));
    if (!ds->images) return -1;
    for (i = 0; i < n; i++) {
        float *img = ds->images + (size_t)i * channels * res * res;
        float base[4], grad[4];
        for (c = 0; c < channels; c++) { base[c] = ag_rng_uniform(&rng) * 1.6f - 0.8f; grad[c] = ag_rng_uniform(&rng) * 0.8f - 0.4f; }
        for (c = 0; c < channels; c++) for (y = 0; y < res; y++) for (x = 0; x < res; x++)
            img[(c * res + y) * res + x] = base[c] + grad[c] * ((float)(x + y) / (float)res - 1.0f);
        for (k = 0; k < 3; k++) {
            float cx = ag_rng_uniform(&rng) * res, cy = ag_rng_uniform(&rng) * res, r = (0.1f + 0.2f * ag_rng_uniform(&rng)) * res, col[4];
            int square = ag_rng_u32(&rng) & 1;
            for (c = 0; c < channels; c++) col[c] = ag_rng_uniform(&rng) * 2.0f - 1.0f;
            for (y = 0; y < res; y++) for (x = 0; x < res; x++) {
                float dx = (float)x + 0.5f - cx, dy = (float)y + 0.5f - cy;
                int in = square ? (fabsf(dx) < r && fabsf(dy) < r) : (dx * dx + dy * dy < r * r);
                if (in) for (c = 0; c < channels; c++) img[(c * res + y) * res + x] = col[c];
            }
        }
    }
    return 0;
}

static int load_raw(dataset *ds, const char *path, int size, int channels, int res) {
    unsigned char *bytes; size_t len, per; ag_error err; int i, c, y, x, f;
    if (ag_read_file(path, &bytes, &len, &err)) { fprintf(stderr, "train: %s\n", err.msg); return -1; }
    per = (size_t)size * size * channels;
    if (len == 0 || len % per) {
        fprintf(stderr, "train: %s: %zu bytes is not a whole number of %dx%dx%d uint8 images\n", path, len, size, size, channels);
        free(bytes); return -1;
    }
    if (size % res) { fprintf(stderr, "train: %s: image size %d is not a multiple of the training resolution %d\n", path, size, res); free(bytes); return -1; }
    f = size / res;
    ds->n = (int)(len / per); ds->res = res; ds->channels = channels;
    ds->images = (float *)malloc((size_t)ds->n * channels * res * res * sizeof(float));
    if (!ds->images) { fprintf(stderr, "train: out of memory for %d images\n", ds->n); free(bytes); return -1; }
    for (i = 0; i < ds->n; i++) {
        const unsigned char *src = bytes + (size_t)i * per;   /* H x W x C */
        float *dst = ds->images + (size_t)i * channels * res * res;
        for (c = 0; c < channels; c++) for (y = 0; y < res; y++) for (x = 0; x < res; x++) {
            int a, b; float s = 0.0f;
            for (a = 0; a < f; a++) for (b = 0; b < f; b++) s += src[((size_t)(y * f + a) * size + (x * f + b)) * channels + c];
            dst[(c * res + y) * res + x] = s / (float)(f * f) / 127.5f - 1.0f;
        }
    }
    free(bytes);
    return 0;
}

/* ---- sample grid: 8x8 images from fixed noise, 2-pixel gaps ---- */
static int save_grid(ag_ctx *ctx, ag_generator *G, const float *fixed_z, int count, const char *path) {
    ag_tensor *z, *y; int shape[2], res, C, cols = 8, rows, W, H, i, c, yy, xx; unsigned char *pix; ag_error err; int rc;
    shape[0] = count; shape[1] = G->latent_dim;
    ag_ctx_reset(ctx);
    z = ag_tensor_from(ctx, 2, shape, fixed_z);
    G->training = 0;
    ag_ctx_set_grad_enabled(ctx, 0);
    y = ag_generator_forward(ctx, G, z);
    ag_ctx_set_grad_enabled(ctx, 1);
    G->training = 1;
    if (!y) { fprintf(stderr, "train: sampling failed: %s\n", ag_ctx_error(ctx)); return -1; }
    res = y->shape[2]; C = y->shape[1]; rows = (count + cols - 1) / cols;
    W = cols * (res + 2) + 2; H = rows * (res + 2) + 2;
    pix = (unsigned char *)calloc((size_t)W * H * (C == 1 ? 1 : 3), 1);
    if (!pix) return -1;
    for (i = 0; i < count; i++) {
        int ox = 2 + (i % cols) * (res + 2), oy = 2 + (i / cols) * (res + 2);
        for (yy = 0; yy < res; yy++) for (xx = 0; xx < res; xx++) for (c = 0; c < (C == 1 ? 1 : 3); c++) {
            float v = y->data[(((size_t)i * C + (c < C ? c : C - 1)) * res + yy) * res + xx];
            int q = (int)floorf((v + 1.0f) * 127.5f + 0.5f);
            pix[((size_t)(oy + yy) * W + ox + xx) * (C == 1 ? 1 : 3) + c] = (unsigned char)(q < 0 ? 0 : q > 255 ? 255 : q);
        }
    }
    rc = ag_png_write(path, pix, W, H, C == 1 ? 1 : 3, &err);
    if (rc) fprintf(stderr, "train: %s\n", err.msg);
    free(pix);
    return rc;
}

int main(int argc, char **argv) {
    options o; ag_ctx *ctx; ag_generator G; ag_discriminator D; ag_gan gan; ag_ema ema; ag_error err; ag_rng init_rng, zrng;
    dataset ds; float *real = NULL, fixed_z[64 * 1024]; int res, g_steps = 0, use_ema, rc = 1, i;
    ag_dataset images; ag_data_loader loader; char loader_state[160], extra[512]; char *meta = NULL;
    double d_acc = 0.0, g_acc = 0.0, t_start; int d_cnt = 0, g_cnt = 0; clock_t c_start; long long resume_steps = 0;

    parse_args(argc, argv, &o);
    if (o.resume) {
        /* the checkpoint decides the architecture; a different --arch is a mistake */
        ag_gan_checkpoint_info info;
        if (ag_gan_checkpoint_read_info(o.resume, &info, &err)) { fprintf(stderr, "train: --resume: %s\n", err.msg); return 1; }
        if (o.arch_len) {
            int same = o.arch_len == info.arch_len;
            for (i = 0; same && i < o.arch_len; i++) same = o.arch[i] == info.arch[i];
            if (!same) {
                fprintf(stderr, "train: --arch");
                for (i = 0; i < o.arch_len; i++) fprintf(stderr, " %d", o.arch[i]);
                fprintf(stderr, " (stage %d) differs from the checkpoint %s, which holds arch", o.stage, o.resume);
                for (i = 0; i < info.arch_len; i++) fprintf(stderr, " %d", info.arch[i]);
                fprintf(stderr, " (stage %d); leave --arch out to continue the checkpoint's\n", info.stage);
                return 2;
            }
        }
        o.arch_len = info.arch_len; o.stage = info.stage;
        memcpy(o.arch, info.arch, sizeof o.arch);
        if (o.ema > 0.0 && !info.has_ema) { fprintf(stderr, "train: --resume: %s holds no EMA weights; pass --ema 0 to continue it\n", o.resume); return 2; }
        resume_steps = (info.iteration + o.n_critic - 1) / o.n_critic;
        if (resume_steps > o.max_iter) {
            fprintf(stderr, "train: --resume: %s is at G step %lld (iteration %lld), past --max_iter %d\n", o.resume,
                    (long long)resume_steps, (long long)info.iteration, o.max_iter);
            return 2;
        }
    }
    /* outputs are checked before any work */
    if (o.ckpt && ag_file_check_writable(o.ckpt, &err)) { fprintf(stderr, "train: --ckpt: %s\n", err.msg); return 2; }
    if (o.samples) {
        char probe[1100];
        if (make_dir(o.samples)) { fprintf(stderr, "train: --samples %s: not a directory and cannot be created as one\n", o.samples); return 2; }
        snprintf(probe, sizeof probe, "%s/%06d.png", o.samples, 0);
        if (ag_file_check_writable(probe, &err)) { fprintf(stderr, "train: --samples: %s\n", err.msg); return 2; }
    }
    ctx = ag_ctx_create(o.seed);
    if (!ctx) { fprintf(stderr, "train: out of memory creating the context\n"); return 1; }
    if (o.threads > 0) ag_ctx_set_threads(ctx, o.threads);
    ag_rng_seed(&init_rng, o.seed, 1);
    if (ag_generator_init(&G, o.gf, o.latent, o.bottom_width, o.channels, &init_rng, &err) ||
        ag_generator_set_arch(&G, o.stage, o.arch, o.arch_len, &err) ||
        ag_discriminator_init(&D, o.df, o.channels, o.spectral_norm, &init_rng, &err) ||
        ag_discriminator_set_stage(&D, o.stage, &err) ||
        ag_gan_init(&gan, &G, &D, o.dis_bs, o.gen_bs, o.n_critic, (float)o.g_lr, (float)o.d_lr, (float)o.beta1, (float)o.beta2, &err)) {
        fprintf(stderr, "train: %s\n", err.msg); return 2;
    }
    use_ema = o.ema > 0.0;
    if (use_ema && ag_ema_init(&ema, &G.params, (float)o.ema, &err)) { fprintf(stderr, "train: %s\n", err.msg); return 1; }
    res = ag_stage_resolution(o.stage, o.bottom_width);

    memset(&ds, 0, sizeof ds);
    memset(&images, 0, sizeof images);
    memset(&loader, 0, sizeof loader);
    if (o.dataset) {
        double t0 = ag_wall_seconds();
        if (ag_dataset_load(&images, o.dataset, o.data_path, "train", res, &err)) { fprintf(stderr, "train: --dataset %s: %s\n", o.dataset, err.msg); return 1; }
        if (ag_data_loader_init(&loader, &images, o.dis_bs, o.channels, &err)) { fprintf(stderr, "train: --dataset %s: %s\n", o.dataset, err.msg); return 2; }
        ds.n = images.count;
        printf("data: %s, %d images at %dx%d (%d channel%s, fed as %d), loaded in %.1f s\n", o.dataset, images.count, images.height,
               images.width, images.channels, images.channels == 1 ? "" : "s", o.channels, ag_wall_seconds() - t0);
    } else if (!strcmp(o.data, "synthetic")) { if (make_synthetic(&ds, 4096, res, o.channels, o.seed)) { fprintf(stderr, "train: out of memory\n"); return 1; } }
    else if (!strncmp(o.data, "raw:", 4)) { if (load_raw(&ds, o.data + 4, o.img_size, o.channels, res)) return 1; }
    else { fprintf(stderr, "train: --data must be 'synthetic' or 'raw:FILE', got '%s'\n", o.data); return 2; }
    real = (float *)malloc((size_t)o.dis_bs * o.channels * res * res * sizeof(float));
    if (!real) { fprintf(stderr, "train: out of memory\n"); return 1; }
    ag_rng_seed(&zrng, o.seed, 7);
    ag_rng_fill_normal(&zrng, fixed_z, (size_t)64 * o.latent, 0.0f, 1.0f);

    if (o.resume) {
        char saved[64];
        if (ag_gan_load(o.resume, &gan, use_ema ? &ema : NULL, ctx, &meta, &err)) { fprintf(stderr, "train: --resume: %s\n", err.msg); goto done; }
        ag_json_get_string(meta, "dataset", saved, sizeof saved);
        if (strcmp(saved, o.dataset ? o.dataset : "")) {
            fprintf(stderr, "train: --resume: %s was trained on %s; this run reads %s\n", o.resume, saved[0] ? saved : "--data (no --dataset)",
                    o.dataset ? o.dataset : "--data (no --dataset)");
            rc = 2; goto done;
        }
        if (o.dataset && ag_json_get_string(meta, "loader", loader_state, sizeof loader_state) == 0 && loader_state[0] &&
            ag_data_loader_restore(&loader, loader_state, &err)) { fprintf(stderr, "train: --resume: %s: %s\n", o.resume, err.msg); rc = 2; goto done; }
        g_steps = (int)resume_steps;
        printf("resumed from %s at iteration %lld (G step %d)\n", o.resume, (long long)gan.iteration, g_steps);
        if (g_steps == o.max_iter) printf("nothing to do: the checkpoint is already at --max_iter %d\n", o.max_iter);
    }
    printf("train: arch"); for (i = 0; i < o.arch_len; i++) printf(" %d", o.arch[i]);
    printf(" | stage %d (%dx%d) | G %zu params, D %zu params | %d images | %d threads, %s kernels\n",
           o.stage, res, res, ag_params_count(&G.params), ag_params_count(&D.params), ds.n, ag_ctx_threads(ctx), ag_ctx_cpu_name(ctx));
    fflush(stdout);
    t_start = ag_wall_seconds(); c_start = clock();
    {
        int start_steps = g_steps;
        while (g_steps < o.max_iter) {
            ag_gan_losses l; size_t per = (size_t)o.channels * res * res;
            if (o.dataset) {
                /* the reference's loop: every image once per epoch, the last batch partial
                   (a lone last image is skipped: BatchNorm needs two) */
                int n = ag_data_loader_next(&loader, ag_ctx_rng(ctx), real, NULL);
                if (n < 2) n = ag_data_loader_next(&loader, ag_ctx_rng(ctx), real, NULL);
                gan.dis_bs = n;
            } else {
                for (i = 0; i < o.dis_bs; i++) {
                    uint32_t k = ag_rng_u32(ag_ctx_rng(ctx)) % (uint32_t)ds.n;
                    memcpy(real + (size_t)i * per, ds.images + (size_t)k * per, per * sizeof(float));
                }
            }
            rc = ag_gan_step(ctx, &gan, real, &l);
            gan.dis_bs = o.dis_bs;
            if (rc) { rc = 1; fprintf(stderr, "train: %s\n", ag_ctx_error(ctx)); goto done; }
            rc = 1;
            d_acc += l.d_loss; d_cnt++;
            if (!l.g_stepped) continue;
            g_acc += l.g_loss; g_cnt++; g_steps++;
            if (use_ema) ag_ema_update(&ema);
            if (!isfinite(l.d_loss) || !isfinite(l.g_loss)) { fprintf(stderr, "train: loss is not finite at G step %d\n", g_steps); goto done; }
            if (g_steps % o.print_freq == 0 || g_steps == o.max_iter) {
                double el = ag_wall_seconds() - t_start, rate = el > 0 ? (g_steps - start_steps) / el : 0.0;
                printf("[G step %d/%d] [iter %lld] d_loss %.4f g_loss %.4f | %.3g G steps/s, eta %.0f s\n", g_steps, o.max_iter,
                       (long long)gan.iteration, d_acc / d_cnt, g_acc / g_cnt, rate, rate > 0 ? (o.max_iter - g_steps) / rate : 0.0);
                fflush(stdout);
                d_acc = g_acc = 0.0; d_cnt = g_cnt = 0;
            }
            if (o.samples && (g_steps % o.sample_freq == 0 || g_steps == o.max_iter)) {
                char path[1024];
                snprintf(path, sizeof path, "%s/%06d.png", o.samples, g_steps);
                if (use_ema) ag_ema_swap(&ema);
                if (save_grid(ctx, &G, fixed_z, 64, path)) { if (use_ema) ag_ema_swap(&ema); goto done; }
                if (use_ema) ag_ema_swap(&ema);
            }
            if (o.ckpt && (g_steps % o.ckpt_freq == 0 || g_steps == o.max_iter)) {
                if (o.dataset) ag_data_loader_state_string(&loader, loader_state, sizeof loader_state);
                snprintf(extra, sizeof extra, "\"program\":\"train\",\"dataset\":\"%s\",\"loader\":\"%s\"", o.dataset ? o.dataset : "",
                         o.dataset ? loader_state : "");
                if (ag_gan_save(o.ckpt, &gan, use_ema ? &ema : NULL, ctx, extra, &err)) { fprintf(stderr, "train: %s\n", err.msg); goto done; }
            }
        }
    }
    printf("done: %d G steps, %.1f s wall, %.1f s cpu, arena %.1f MB\n", g_steps, ag_wall_seconds() - t_start,
           (double)(clock() - c_start) / CLOCKS_PER_SEC, ag_ctx_arena_bytes(ctx) / 1048576.0);
    rc = 0;
done:
    free(real); free(ds.images); free(meta);
    ag_data_loader_free(&loader); ag_dataset_free(&images);
    if (use_ema) ag_ema_free(&ema);
    ag_gan_free(&gan); ag_generator_free(&G); ag_discriminator_free(&D); ag_ctx_free(ctx);
    return rc;
}
