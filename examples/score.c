/* score.c - Inception score and FID in pure C.

   build/score --inception W.pth [--stats REF.npz | --ref IMAGES...] [--save_stats OUT.npz]
               [--splits 10] [--preprocess tf|pytorch] [--batch 25] [--threads N] IMAGES...

   IMAGES are .npy files (uint8 N x H x W x 3, or float N x 3 x H x W in [-1, 1]), PNG files,
   or directories of PNG files (sorted by name). Float images are quantised as the AutoGAN
   reference does before scoring: uint8(clamp(x * 127.5 + 127.5, 0, 255)), truncating.
   Prints `IS <mean> <std>` and, with a reference, `FID <value>`. Images stream through in
   batches: only one batch is ever held at 299 x 299. Progress goes to stderr.

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
    free(s->paths); ag_array_free(&s->npy); free(s->img);
    memset(s, 0, sizeof *s);
}
/* counts the images before any scoring (so a bad file or too few images for the splits
   is reported at once): .npy files are read in full (cheap next to scoring), PNGs count
   one each; -1 with a message when a .npy cannot be read */
static int64_t stream_total(const stream *s) {
    int64_t n = 0; int i; ag_error err;
    for (i = 0; i < s->count; i++) {
        if (ends_with(s->paths[i], ".npy")) {
            ag_array a;
            if (ag_npy_read(s->paths[i], &a, &err)) { fprintf(stderr, "score: %s\n", err.msg); return -1; }
            n += a.ndim ? a.shape[0] : 0; ag_array_free(&a);
        } else n++;
    }
    return n;
}
/* the next image as uint8 H x W x 3; 1 = got one, 0 = end, -1 = error */
static int stream_next(stream *s, const unsigned char **img, int *h, int *w, ag_error *err) {
    for (;;) {
        if (s->npy.data && s->npy_index < s->npy.shape[0]) {
            int64_t i = s->npy_index++;
            if (!s->npy_float) {
                *h = (int)s->npy.shape[1]; *w = (int)s->npy.shape[2];
                *img = (const unsigned char *)s->npy.data + (size_t)i * (*h) * (*w) * 3;
            } else {
                int H = (int)s->npy.shape[2], W = (int)s->npy.shape[3], c, y, x; size_t need = (size_t)H * W * 3;
                float *src;
                if (need > s->img_cap) { unsigned char *p = (unsigned char *)realloc(s->img, need); if (!p) return fail(err, "out of memory"); s->img = p; s->img_cap = need; }
                src = (float *)s->npy.data + (size_t)i * 3 * H * W;
                for (c = 0; c < 3; c++) for (y = 0; y < H; y++) for (x = 0; x < W; x++) {
                    float v = src[((size_t)c * H + y) * W + x];
                    if (!(v == v)) return fail(err, "%s: image %lld holds NaN", s->npy_path, (long long)i);
                    v = v * 127.5f + 127.5f; v = v < 0.0f ? 0.0f : v > 255.0f ? 255.0f : v;
                    s->img[((size_t)y * W + x) * 3 + c] = (unsigned char)v;
                }
                *h = H; *w = W; *img = s->img;
            }
            return 1;
        }
        ag_array_free(&s->npy);
        if (s->next >= s->count) return 0;
        {
            const char *p = s->paths[s->next++];
            if (ends_with(p, ".npy")) {
                if (ag_npy_read(p, &s->npy, err)) return -1;
                s->npy_index = 0; s->npy_path = p;
                if (s->npy.dtype == AG_DTYPE_U8 && s->npy.ndim == 4 && s->npy.shape[3] == 3) s->npy_float = 0;
                else if ((s->npy.dtype == AG_DTYPE_F32 || s->npy.dtype == AG_DTYPE_F64) && s->npy.ndim == 4 && s->npy.shape[1] == 3) {
                    if (s->npy.dtype == AG_DTYPE_F64) {   /* to float32 in place */
                        size_t n = s->npy.nbytes / 8, k; float *f = (float *)malloc(n * sizeof(float) + 1);
                        if (!f) return fail(err, "out of memory");
                        for (k = 0; k < n; k++) f[k] = (float)((double *)s->npy.data)[k];
                        free(s->npy.data); s->npy.data = f; s->npy.dtype = AG_DTYPE_F32; s->npy.nbytes = n * 4;
                    }
                    s->npy_float = 1;
                } else {
                    ag_array_free(&s->npy);
                    return fail(err, "%s: expected uint8 N x H x W x 3 or float N x 3 x H x W images", p);
                }
                if (s->npy.shape[0] == 0) continue;
                if ((s->npy_float ? s->npy.shape[2] : s->npy.shape[1]) < 1 || (s->npy_float ? s->npy.shape[3] : s->npy.shape[2]) < 1)
                    return fail(err, "%s: empty images", p);
            } else {
                ag_array a; size_t need;
                if (ag_png_read(p, 3, &a, err)) return -1;
                need = a.nbytes;
                if (need > s->img_cap) { unsigned char *q = (unsigned char *)realloc(s->img, need); if (!q) { ag_array_free(&a); return fail(err, "out of memory"); } s->img = q; s->img_cap = need; }
                memcpy(s->img, a.data, need);
                *h = (int)a.shape[0]; *w = (int)a.shape[1]; *img = s->img;
                ag_array_free(&a);
                return 1;
            }
        }
    }
}

typedef struct scorer {
    ag_inception *net; int batch, pytorch_pre;
    float *x, *pool3, *logits;
} scorer;

/* runs every image of the stream; accumulates FID statistics and (optionally) logits */
static int score_stream(scorer *sc, stream *s, int64_t total, ag_fid_stats *stats, float **logits_out, int64_t *count_out, const char *label) {
    ag_error err; int64_t done = 0, cap = 0; float *all = NULL; double t0 = ag_wall_seconds(), last = t0;
    size_t per = (size_t)3 * 299 * 299;
    for (;;) {
        int n = 0, r = 0, h = 0, w = 0;
        const unsigned char *img = NULL;
        while (n < sc->batch && (r = stream_next(s, &img, &h, &w, &err)) == 1) {
            if (sc->pytorch_pre) ag_inception_preprocess_pytorch(img, h, w, sc->x + (size_t)n * per);
            else ag_inception_preprocess_tf(img, h, w, sc->x + (size_t)n * per);
            n++;
        }
        if (r < 0) { fprintf(stderr, "score: %s\n", err.msg); free(all); return -1; }
        if (n == 0) break;
        if (ag_inception_forward(sc->net, sc->x, n, sc->pool3, logits_out ? sc->logits : NULL, 0, &err)) { fprintf(stderr, "score: %s\n", err.msg); free(all); return -1; }
        if (stats && ag_fid_stats_add(stats, sc->pool3, n)) { fprintf(stderr, "score: out of memory\n"); free(all); return -1; }
        if (logits_out) {
            if (done + n > cap) {
                int64_t nc = cap ? cap * 2 : 1024; float *p;
                while (nc < done + n) nc *= 2;
                p = (float *)realloc(all, (size_t)nc * 1008 * sizeof(float));
                if (!p) { fprintf(stderr, "score: out of memory for the logits\n"); free(all); return -1; }
                all = p; cap = nc;
            }
            memcpy(all + (size_t)done * 1008, sc->logits, (size_t)n * 1008 * sizeof(float));
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
    if (ag_fid_stats_load(path, &st, &err)) { fprintf(stderr, "score: %s\n", err.msg); return -1; }
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
    fprintf(stderr, "usage: score --inception W.pth [--stats REF.npz | --ref IMAGES... --] [--save_stats OUT.npz]\n"
                    "             [--splits 10] [--preprocess tf|pytorch] [--batch 25] [--threads N] IMAGES...\n"
                    "  IMAGES: .npy (uint8 NxHxWx3 or float Nx3xHxW in [-1,1]), .png files, directories of PNGs\n"
                    "  --ref takes every following argument up to '--' as the reference images\n");
}

int main(int argc, char **argv) {
    const char *weights = NULL, *stats_path = NULL, *save_path = NULL; int splits = 10, threads = 0, rc = 1, dim = 0;
    stream gen, ref; scorer sc; ag_error err; ag_fid_stats gst, rst; float *logits = NULL; int64_t n = 0, nref = 0;
    double *rmu = NULL, *rsigma = NULL, is_mean, is_std; cli c; int ref_unterminated = 0; int64_t n_total = 0, nref_total = 0;
    memset(&gen, 0, sizeof gen); memset(&ref, 0, sizeof ref); memset(&sc, 0, sizeof sc); memset(&gst, 0, sizeof gst); memset(&rst, 0, sizeof rst);
    sc.batch = 25;
    cli_start(&c, "score", argc, argv);
    while (cli_next(&c)) {
        if (cli_is(&c, "--inception")) weights = cli_str(&c);
        else if (cli_is(&c, "--stats")) stats_path = cli_str(&c);
        else if (cli_is(&c, "--save_stats")) save_path = cli_str(&c);
        else if (cli_is(&c, "--splits")) splits = (int)cli_int(&c, 1, 1000000);
        else if (cli_is(&c, "--threads")) threads = cli_threads(&c);
        else if (cli_is(&c, "--batch")) sc.batch = (int)cli_int(&c, 1, 1024);
        else if (cli_is(&c, "--preprocess")) {
            const char *p = cli_str(&c);
            if (!strcmp(p, "tf")) sc.pytorch_pre = 0; else if (!strcmp(p, "pytorch")) sc.pytorch_pre = 1;
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
    if (!weights) { fprintf(stderr, "score: --inception W.pth is required (see weights/README.md)\n"); usage(); return 2; }
    if (!gen.count && ref_unterminated) cli_fail(&c, "no images to score: --ref took every argument after it as a reference image; end the reference list with '--'");
    if (!gen.count) cli_fail(&c, "no images given");
    if (stats_path && ref.count) { fprintf(stderr, "score: give --stats or --ref, not both\n"); return 2; }
    if (stats_path && load_stats(stats_path, &rmu, &rsigma, &dim)) return 1;
    if (stats_path && dim != 2048) { fprintf(stderr, "score: %s: statistics of dimension %d; pool3 has 2048\n", stats_path, dim); return 1; }
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
    sc.net = ag_inception_load(weights, &err);
    if (!sc.net) { fprintf(stderr, "score: %s\n", err.msg); return 1; }
    if (threads > 0) ag_inception_set_threads(sc.net, threads);
    sc.x = (float *)malloc((size_t)sc.batch * 3 * 299 * 299 * sizeof(float));
    sc.pool3 = (float *)malloc((size_t)sc.batch * 2048 * sizeof(float));
    sc.logits = (float *)malloc((size_t)sc.batch * 1008 * sizeof(float));
    if (!sc.x || !sc.pool3 || !sc.logits || ag_fid_stats_init(&gst, 2048, &err) || ag_fid_stats_init(&rst, 2048, &err)) { fprintf(stderr, "score: out of memory\n"); goto done; }
    if (score_stream(&sc, &gen, n_total, &gst, &logits, &n, "images")) goto done;
    if (n < splits) { fprintf(stderr, "score: %lld images for %d splits\n", (long long)n, splits); goto done; }
    if (ag_inception_score(logits, (int)n, 1008, splits, &is_mean, &is_std, &err)) { fprintf(stderr, "score: %s\n", err.msg); goto done; }
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
        if (ag_fid(gst.mu, gst.sigma, rmu, rsigma, 2048, &fid, &err)) { fprintf(stderr, "score: %s\n", err.msg); goto done; }
        printf("FID %.6f\n", fid);
    }
    rc = 0;
done:
    if (stats_path) { free(rmu); free(rsigma); }
    free(logits); free(sc.x); free(sc.pool3); free(sc.logits);
    ag_fid_stats_free(&gst); ag_fid_stats_free(&rst);
    ag_inception_free(sc.net); stream_free(&gen); stream_free(&ref);
    return rc;
}
