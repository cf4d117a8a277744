/* score.c - Inception score and FID in pure C, with Inception-v3 or the compact classifier.

   build/score --inception W.pth | --classifier W.safetensors
               [--fid_stat REF.npz | --ref IMAGES... --] [--save_stats OUT.npz]
               [--splits 10] [--preprocess tf|pytorch] [--eval_batch_size 25] [--threads N]
               [--dataset NAME [--data_path P] [--split test]] IMAGES...

   IMAGES are .npy files (uint8 N x H x W x C or N x H x W, or float N x C x H x W in [-1, 1];
   C is 1 or 3), PNG files, or directories of PNG files (sorted by name); --dataset adds a
   data set's split as it is stored (e.g. the raw 28 x 28 x 1 Fashion-MNIST test set). Float
   images are quantised as the AutoGAN reference does before scoring:
   uint8(clamp(x * 127.5 + 127.5, 0, 255)), truncating. The scorer then converts them as it
   needs (ag_scorer_forward_u8): Inception resizes to 299 (gray replicated to RGB); the
   classifier resizes to its input size with PIL's bilinear filter and converts RGB to gray
   as it was trained. "classifier IS" and "classifier FID" are the same formulas over the
   classifier's softmax and its 256 pooled features (reference statistics from
   build/classifier --save_stats, e.g. weights/fashion-mnist-train-stats.npz).
   Prints `IS <mean> <std>` and, with a reference, `FID <value>`. --fid_stat (alias --stats)
   statistics are checked when read (finite, a symmetric covariance, the scorer's dimension);
   --eval_batch_size has the alias --batch; outputs are checked before any work. Images stream through in
   batches: only one batch is ever held at the network's input size. Progress goes to stderr.

   W is pt_inception-2015-12-05-6726825d.pth (see weights/README.md), or a .safetensors
   file with the same keys. --save_stats writes the generated images' statistics as .npz
   (`mu`, `sigma`, float64), the format of the published fid_stats_*.npz files. */
#define AUTOGAN_IMPLEMENTATION
#include "../autogan.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <math.h>
#include <stdarg.h>
#include "cli.h"
#if defined(__unix__) || defined(__APPLE__)
#include <dirent.h>
#include <sys/stat.h>
#define SCORE_HAVE_DIRS 1
#endif

/* sets err's message; returns -1 (errors travel up as in the library) */
static int fail(ag_error *err, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt); vsnprintf(err->msg, sizeof err->msg, fmt, ap); va_end(ap);
    return -1;
}

/* ---- a stream of uint8 HWC images over a list of files ---- */
typedef struct stream {
    char **paths; int count, next;     /* files still to open */
    ag_array npy; int64_t npy_index;   /* the .npy being read, if any */
    int npy_float;
    const char *npy_path;
    unsigned char *img; size_t img_cap;
    int npy_c;                         /* channels of the .npy being read */
    const char *ds_name, *ds_path, *ds_split;  /* --dataset: read first */
    ag_dataset ds; int ds_loaded; int64_t ds_index;
} stream;

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}
static int cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }
static int add_path(stream *s, const char *p) {
    char **np = (char **)realloc(s->paths, (size_t)(s->count + 1) * sizeof(char *));
    if (!np) return -1;
    s->paths = np;
    s->paths[s->count] = (char *)malloc(strlen(p) + 1);
    if (!s->paths[s->count]) return -1;
    strcpy(s->paths[s->count++], p);
    return 0;
}
static int stream_add(stream *s, const char *arg) {
#ifdef SCORE_HAVE_DIRS
    struct stat st;
    if (stat(arg, &st) == 0 && S_ISDIR(st.st_mode)) {
        DIR *d = opendir(arg); struct dirent *e; int first = s->count, n = 0;
        char path[4096];
        if (!d) { fprintf(stderr, "score: %s: cannot open the directory\n", arg); return -1; }
        while ((e = readdir(d)) != NULL) {
            if (!ends_with(e->d_name, ".png") && !ends_with(e->d_name, ".PNG")) continue;
            snprintf(path, sizeof path, "%s/%s", arg, e->d_name);
            if (add_path(s, path)) { closedir(d); return -1; }
            n++;
        }
        closedir(d);
        if (!n) { fprintf(stderr, "score: %s: no PNG files in the directory\n", arg); return -1; }
        qsort(s->paths + first, (size_t)n, sizeof(char *), cmp_str);
        return 0;
    }
#endif
    if (!ends_with(arg, ".npy") && !ends_with(arg, ".png") && !ends_with(arg, ".PNG")) {
        fprintf(stderr, "score: %s: expected a .npy file, a .png file or a directory of PNGs\n", arg);
        return -1;
    }
    return add_path(s, arg);
}
static void stream_free(stream *s) {
    int i;
    for (i = 0; i < s->count; i++) free(s->paths[i]);
    free(s->paths); ag_array_free(&s->npy); free(s->img); ag_dataset_free(&s->ds);
    memset(s, 0, sizeof *s);
}
/* counts the images before any scoring (so a bad file or too few images for the splits
   is reported at once): .npy files are read in full (cheap next to scoring), PNGs count
   one each; -1 with a message when a .npy cannot be read */
static int64_t stream_total(stream *s) {
    int64_t n = 0; int i; ag_error err;
    if (s->ds_name) {
        if (!s->ds_loaded && ag_dataset_load(&s->ds, s->ds_name, s->ds_path, s->ds_split, 0, &err)) { fprintf(stderr, "score: %s\n", err.msg); return -1; }
        s->ds_loaded = 1;
        n += s->ds.count;
    }
    for (i = 0; i < s->count; i++) {
        if (ends_with(s->paths[i], ".npy")) {
            ag_array a;
            if (ag_npy_read(s->paths[i], &a, &err)) { fprintf(stderr, "score: %s\n", err.msg); return -1; }
            n += a.ndim ? a.shape[0] : 0; ag_array_free(&a);
        } else n++;
    }
    return n;
}
/* the next image as uint8 H x W x C (C = 1 or 3); 1 = got one, 0 = end, -1 = error */
static int stream_next(stream *s, const unsigned char **img, int *h, int *w, int *ch, ag_error *err) {
    for (;;) {
        if (s->ds_loaded && s->ds_index < s->ds.count) {
            size_t per = (size_t)s->ds.height * s->ds.width * s->ds.channels;
            *h = s->ds.height; *w = s->ds.width; *ch = s->ds.channels;
            *img = s->ds.pixels + (size_t)(s->ds_index++) * per;
            return 1;
        }
        if (s->npy.data && s->npy_index < s->npy.shape[0]) {
            int64_t i = s->npy_index++; int C = s->npy_c;
            if (!s->npy_float) {
                *h = (int)s->npy.shape[1]; *w = (int)s->npy.shape[2];
                *img = (const unsigned char *)s->npy.data + (size_t)i * (*h) * (*w) * C;
            } else {
                int H = (int)s->npy.shape[2], W = (int)s->npy.shape[3], c, y, x; size_t need = (size_t)H * W * C;
                float *src;
                if (need > s->img_cap) { unsigned char *p = (unsigned char *)realloc(s->img, need); if (!p) return fail(err, "out of memory"); s->img = p; s->img_cap = need; }
                src = (float *)s->npy.data + (size_t)i * C * H * W;
                for (c = 0; c < C; c++) for (y = 0; y < H; y++) for (x = 0; x < W; x++) {
                    float v = src[((size_t)c * H + y) * W + x];
                    if (!(v == v)) return fail(err, "%s: image %lld holds NaN", s->npy_path, (long long)i);
                    v = v * 127.5f + 127.5f; v = v < 0.0f ? 0.0f : v > 255.0f ? 255.0f : v;
                    s->img[((size_t)y * W + x) * C + c] = (unsigned char)v;
                }
                *h = H; *w = W; *img = s->img;
            }
            *ch = C;
            return 1;
        }
        ag_array_free(&s->npy);
        if (s->next >= s->count) return 0;
        {
            const char *p = s->paths[s->next++];
            if (ends_with(p, ".npy")) {
                if (ag_npy_read(p, &s->npy, err)) return -1;
                s->npy_index = 0; s->npy_path = p;
                if (s->npy.dtype == AG_DTYPE_U8 && s->npy.ndim == 4 && (s->npy.shape[3] == 3 || s->npy.shape[3] == 1)) { s->npy_float = 0; s->npy_c = (int)s->npy.shape[3]; }
                else if (s->npy.dtype == AG_DTYPE_U8 && s->npy.ndim == 3) { s->npy_float = 0; s->npy_c = 1; }   /* N x H x W gray */
                else if ((s->npy.dtype == AG_DTYPE_F32 || s->npy.dtype == AG_DTYPE_F64) && s->npy.ndim == 4 && (s->npy.shape[1] == 3 || s->npy.shape[1] == 1)) {
                    s->npy_c = (int)s->npy.shape[1];
                    if (s->npy.dtype == AG_DTYPE_F64) {   /* to float32 in place */
                        size_t n = s->npy.nbytes / 8, k; float *f = (float *)malloc(n * sizeof(float) + 1);
                        if (!f) return fail(err, "out of memory");
                        for (k = 0; k < n; k++) f[k] = (float)((double *)s->npy.data)[k];
                        free(s->npy.data); s->npy.data = f; s->npy.dtype = AG_DTYPE_F32; s->npy.nbytes = n * 4;
                    }
                    s->npy_float = 1;
                } else {
                    ag_array_free(&s->npy);
                    return fail(err, "%s: expected uint8 N x H x W x C (C 1 or 3) or N x H x W, or float N x C x H x W images", p);
                }
                if (s->npy.shape[0] == 0) continue;
                if ((s->npy_float ? s->npy.shape[2] : s->npy.shape[1]) < 1 || (s->npy_float ? s->npy.shape[3] : s->npy.shape[2]) < 1)
                    return fail(err, "%s: empty images", p);
            } else {
                /* gray PNGs stay gray (1 channel), everything else becomes RGB; alpha is dropped */
                ag_array a; size_t need, k, npx; int fc, C;
                if (ag_png_read(p, 0, &a, err)) return -1;
                fc = (int)a.shape[2]; C = fc <= 2 ? 1 : 3; npx = (size_t)a.shape[0] * a.shape[1];
                need = npx * C;
                if (need > s->img_cap) { unsigned char *q = (unsigned char *)realloc(s->img, need); if (!q) { ag_array_free(&a); return fail(err, "out of memory"); } s->img = q; s->img_cap = need; }
                for (k = 0; k < npx; k++) memcpy(s->img + k * C, (const unsigned char *)a.data + k * fc, (size_t)C);
                *h = (int)a.shape[0]; *w = (int)a.shape[1]; *ch = C; *img = s->img;
                ag_array_free(&a);
                return 1;
            }
        }
    }
}

typedef struct scorer {
    ag_scorer *net; int batch, K, F;
    unsigned char *u8; size_t u8_cap;
    float *features, *logits;
} scorer;

/* runs every image of the stream; accumulates FID statistics and (optionally) logits.
   Consecutive images of the same size and channels go through the scorer together. */
static int score_stream(scorer *sc, stream *s, int64_t total, ag_fid_stats *stats, float **logits_out, int64_t *count_out, const char *label) {
    ag_error err; int64_t done = 0, cap = 0; float *all = NULL; double t0 = ag_wall_seconds(), last = t0;
    int r = 1, h = 0, w = 0, ch = 0, held = 0;   /* held: an image read but not yet in a batch */
    const unsigned char *img = NULL;
    for (;;) {
        int n = 0, bh = 0, bw = 0, bc = 0; size_t per = 0;
        for (;;) {
            if (!held) { r = stream_next(s, &img, &h, &w, &ch, &err); if (r != 1) break; held = 1; }
            if (n && (h != bh || w != bw || ch != bc)) break;   /* a new size starts the next batch */
            if (!n) {
                bh = h; bw = w; bc = ch; per = (size_t)h * w * ch;
                if (per * sc->batch > sc->u8_cap) {
                    unsigned char *q = (unsigned char *)realloc(sc->u8, per * sc->batch);
                    if (!q) { fprintf(stderr, "score: out of memory\n"); free(all); return -1; }
                    sc->u8 = q; sc->u8_cap = per * sc->batch;
                }
            }
            memcpy(sc->u8 + (size_t)n * per, img, per);
            held = 0;
            if (++n == sc->batch) break;
        }
        if (r < 0) { fprintf(stderr, "score: %s\n", err.msg); free(all); return -1; }
        if (n == 0) break;
        if (ag_scorer_forward_u8(sc->net, sc->u8, n, bh, bw, bc, logits_out ? sc->logits : NULL, sc->features, &err)) {
            fprintf(stderr, "score: %s\n", err.msg); free(all); return -1;
        }
        if (stats && ag_fid_stats_add(stats, sc->features, n, &err)) { fprintf(stderr, "score: %s\n", err.msg); free(all); return -1; }
        if (logits_out) {
            if (done + n > cap) {
                int64_t nc = cap ? cap * 2 : 1024; float *p;
                while (nc < done + n) nc *= 2;
                p = (float *)realloc(all, (size_t)nc * sc->K * sizeof(float));
                if (!p) { fprintf(stderr, "score: out of memory for the logits\n"); free(all); return -1; }
                all = p; cap = nc;
            }
            memcpy(all + (size_t)done * sc->K, sc->logits, (size_t)n * sc->K * sizeof(float));
        }
        done += n;
        if (ag_wall_seconds() - last >= 5 || done == total) {
            double el = ag_wall_seconds() - t0, rate = el > 0 ? done / el : 0;
            fprintf(stderr, "score: %s %lld/%lld images, %.1f img/s, eta %.0f s\n", label, (long long)done, (long long)total, rate,
                    rate > 0 ? (total - done) / rate : 0.0);
            last = ag_wall_seconds();
        }
    }
    if (logits_out) *logits_out = all;
    *count_out = done;
    return 0;
}

static int load_stats(const char *path, double **mu, double **sigma, int *dim) {
    ag_fid_stats st; ag_error err; size_t n;
    if (ag_fid_stats_load(path, &st, &err)) { fprintf(stderr, "score: --fid_stat: %s\n", err.msg); return -1; }
    *dim = st.dim; n = (size_t)st.dim;
    *mu = (double *)malloc(n * sizeof(double)); *sigma = (double *)malloc(n * n * sizeof(double));
    if (!*mu || !*sigma) { fprintf(stderr, "score: out of memory\n"); ag_fid_stats_free(&st); return -1; }
    memcpy(*mu, st.mu, n * sizeof(double)); memcpy(*sigma, st.sigma, n * n * sizeof(double));
    ag_fid_stats_free(&st);
    return 0;
}
static int save_stats(const char *path, const ag_fid_stats *st) {
    ag_array_list l; ag_error err; int64_t s1[1], s2[2]; int rc;
    memset(&l, 0, sizeof l);
    s1[0] = st->dim; s2[0] = s2[1] = st->dim;
    rc = ag_array_list_add(&l, "mu", AG_DTYPE_F64, 1, s1, st->mu, &err) || ag_array_list_add(&l, "sigma", AG_DTYPE_F64, 2, s2, st->sigma, &err) ||
         ag_npz_write(path, &l, &err);
    if (rc) fprintf(stderr, "score: %s\n", err.msg);
    ag_array_list_free(&l);
    return rc ? -1 : 0;
}

static void usage(void) {
    fprintf(stderr, "usage: score --inception W.pth | --classifier W.safetensors\n"
                    "             [--fid_stat REF.npz | --ref IMAGES... --] [--save_stats OUT.npz]\n"
                    "             [--splits 10] [--preprocess tf|pytorch] [--eval_batch_size 25] [--threads N]\n"
                    "             [--dataset NAME [--data_path P] [--split test]] IMAGES...\n"
                    "  IMAGES: .npy (uint8 NxHxWxC or NxHxW, float NxCxHxW in [-1,1]; C 1 or 3), .png files, directories of PNGs\n"
                    "  --classifier: the compact classifier (weights/fashion-mnist-classifier.safetensors): classifier IS and FID\n"
                    "  --dataset: score a data set's split as stored (e.g. fashion-mnist: the raw 28x28x1 test images)\n"
                    "  --ref takes every following argument up to '--' as the reference images\n"
                    "  --fid_stat is also spelled --stats, --eval_batch_size --batch (500 with --classifier)\n"
                    "  --threads N: 0 (OpenMP default) to 256\n"
                    "  flags use underscores; --save-stats style spellings and --flag=value work too\n");
}

int main(int argc, char **argv) {
    const char *weights = NULL, *cls_weights = NULL, *stats_path = NULL, *save_path = NULL; int splits = 10, threads = 0, rc = 1, dim = 0;
    stream gen, ref; scorer sc; ag_error err; ag_fid_stats gst, rst; float *logits = NULL; int64_t n = 0, nref = 0;
    double *rmu = NULL, *rsigma = NULL, is_mean, is_std; cli c; int ref_unterminated = 0, pytorch_pre = 0, batch_given = 0; int64_t n_total = 0, nref_total = 0;
    memset(&gen, 0, sizeof gen); memset(&ref, 0, sizeof ref); memset(&sc, 0, sizeof sc); memset(&gst, 0, sizeof gst); memset(&rst, 0, sizeof rst);
    sc.batch = 25;
    cli_start(&c, "score", argc, argv);
    while (cli_next(&c)) {
        if (cli_is(&c, "--inception")) weights = cli_str(&c);
        else if (cli_is(&c, "--classifier")) cls_weights = cli_str(&c);
        else if (cli_is(&c, "--dataset")) gen.ds_name = cli_str(&c);
        else if (cli_is(&c, "--data_path")) gen.ds_path = cli_str(&c);
        else if (cli_is(&c, "--split")) {
            gen.ds_split = cli_str(&c);
            if (strcmp(gen.ds_split, "train") && strcmp(gen.ds_split, "test")) cli_fail(&c, "--split '%s': must be 'train' or 'test'", gen.ds_split);
        }
        else if (cli_is(&c, "--fid_stat") || cli_is(&c, "--stats")) stats_path = cli_str(&c);
        else if (cli_is(&c, "--save_stats")) save_path = cli_str(&c);
        else if (cli_is(&c, "--splits")) splits = (int)cli_int(&c, 1, 1000000);
        else if (cli_is(&c, "--threads")) threads = cli_threads(&c);
        else if (cli_is(&c, "--eval_batch_size") || cli_is(&c, "--batch")) { sc.batch = (int)cli_int(&c, 1, 1024); batch_given = 1; }
        else if (cli_is(&c, "--preprocess")) {
            const char *p = cli_str(&c);
            if (!strcmp(p, "tf")) pytorch_pre = 0; else if (!strcmp(p, "pytorch")) pytorch_pre = 1;
            else cli_fail(&c, "--preprocess '%s': must be 'tf' or 'pytorch'", p);
        } else if (cli_is(&c, "--ref")) {
            /* the reference images run up to '--' or the next flag */
            if (!cli_more(&c)) cli_fail(&c, "--ref needs a value (reference images, ended by '--')");
            do { if (stream_add(&ref, cli_str(&c))) return 2; } while (cli_more(&c));
            ref_unterminated = !(c.i + 1 < argc && !strcmp(argv[c.i + 1], "--"));
            if (!ref_unterminated) c.i++;
        } else if (cli_is(&c, "-h") || cli_is(&c, "--help")) { usage(); return 0; }
        else if (cli_positional(&c)) { if (stream_add(&gen, c.arg)) return 2; }
        else cli_unknown(&c);
    }
    if (!weights && !cls_weights) { fprintf(stderr, "score: --inception W.pth or --classifier W.safetensors is required (see weights/README.md)\n"); usage(); return 2; }
    if (weights && cls_weights) cli_fail(&c, "give --inception or --classifier, not both");
    if (cls_weights && pytorch_pre) cli_fail(&c, "--preprocess is for --inception; the classifier converts images as it was trained");
    if ((gen.ds_path || gen.ds_split) && !gen.ds_name) cli_fail(&c, "--data_path and --split need --dataset");
    if (!gen.count && !gen.ds_name && ref_unterminated) cli_fail(&c, "no images to score: --ref took every argument after it as a reference image; end the reference list with '--'");
    if (!gen.count && !gen.ds_name) cli_fail(&c, "no images given");
    if (gen.ds_name) cli_dataset(&c, gen.ds_name, gen.ds_path);
    if (gen.ds_name && !gen.ds_split) gen.ds_split = "test";
    if (stats_path && ref.count) { fprintf(stderr, "score: give --fid_stat or --ref, not both\n"); return 2; }
    if (stats_path && load_stats(stats_path, &rmu, &rsigma, &dim)) return 2;
    if (stats_path && weights && dim != 2048) { fprintf(stderr, "score: --fid_stat %s: statistics of dimension %d; Inception's pool3 has 2048\n", stats_path, dim); return 2; }
    /* everything that can be checked is checked before the scoring starts */
    if (save_path && ag_file_check_writable(save_path, &err)) { fprintf(stderr, "score: --save_stats: %s\n", err.msg); return 2; }
    if ((n_total = stream_total(&gen)) < 0 || (ref.count && (nref_total = stream_total(&ref)) < 0)) return 1;
    {
        int64_t total = n_total;
        if (total < splits) {
            fprintf(stderr, "score: %lld images for --splits %d: the Inception score needs at least one image per split\n", (long long)total, splits);
            return 2;
        }
    }
    sc.net = ag_scorer_load(weights ? weights : cls_weights, &err);
    if (!sc.net) { fprintf(stderr, "score: %s\n", err.msg); return 1; }
    if (strcmp(ag_scorer_kind(sc.net), weights ? "inception" : "classifier")) {
        fprintf(stderr, "score: %s holds %s weights; use --%s\n", weights ? weights : cls_weights, ag_scorer_kind(sc.net), ag_scorer_kind(sc.net));
        ag_scorer_free(sc.net); return 2;
    }
    sc.K = ag_scorer_num_classes(sc.net); sc.F = ag_scorer_feature_dim(sc.net);
    if (stats_path && dim != sc.F) { fprintf(stderr, "score: --fid_stat %s: statistics of dimension %d; the %s's features have %d\n", stats_path, dim, ag_scorer_kind(sc.net), sc.F); ag_scorer_free(sc.net); return 2; }
    if (cls_weights && !batch_given) sc.batch = 500;   /* the classifier is cheap: larger batches */
    ag_scorer_set_pytorch_preprocess(sc.net, pytorch_pre);
    if (threads > 0) ag_scorer_set_threads(sc.net, threads);
    if (cls_weights) fprintf(stderr, "score: classifier %s (%dx%dx%d input, trained on '%s')\n", cls_weights, ag_scorer_input_channels(sc.net),
                             ag_scorer_input_size(sc.net), ag_scorer_input_size(sc.net), ag_scorer_dataset(sc.net));
    sc.features = (float *)malloc((size_t)sc.batch * sc.F * sizeof(float));
    sc.logits = (float *)malloc((size_t)sc.batch * sc.K * sizeof(float));
    if (!sc.features || !sc.logits || ag_fid_stats_init(&gst, sc.F, &err) || ag_fid_stats_init(&rst, sc.F, &err)) { fprintf(stderr, "score: out of memory\n"); goto done; }
    if (score_stream(&sc, &gen, n_total, &gst, &logits, &n, "images")) goto done;
    if (n < splits) { fprintf(stderr, "score: %lld images for %d splits\n", (long long)n, splits); goto done; }
    if (ag_inception_score(logits, (int)n, sc.K, splits, &is_mean, &is_std, &err)) { fprintf(stderr, "score: %s\n", err.msg); goto done; }
    printf("IS %.6f %.6f\n", is_mean, is_std);
    fflush(stdout);
    if (save_path || stats_path || ref.count) {
        if (ag_fid_stats_finish(&gst, &err)) { fprintf(stderr, "score: %s\n", err.msg); goto done; }
        if (save_path && save_stats(save_path, &gst)) goto done;
    }
    if (ref.count) {
        if (score_stream(&sc, &ref, nref_total, &rst, NULL, &nref, "reference")) goto done;
        if (ag_fid_stats_finish(&rst, &err)) { fprintf(stderr, "score: reference: %s\n", err.msg); goto done; }
        rmu = rst.mu; rsigma = rst.sigma;
    }
    if (rmu) {
        double fid;
        if (ag_fid(gst.mu, gst.sigma, rmu, rsigma, sc.F, &fid, &err)) {
            if (stats_path) fprintf(stderr, "score: FID against --fid_stat %s: %s\n", stats_path, err.msg);
            else fprintf(stderr, "score: FID against the --ref images: %s\n", err.msg);
            goto done;
        }
        printf("FID %.6f\n", fid);
    }
    rc = 0;
done:
    if (stats_path) { free(rmu); free(rsigma); }
    free(logits); free(sc.u8); free(sc.features); free(sc.logits);
    ag_fid_stats_free(&gst); ag_fid_stats_free(&rst);
    ag_scorer_free(sc.net); stream_free(&gen); stream_free(&ref);
    return rc;
}
