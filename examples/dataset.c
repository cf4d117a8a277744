/* dataset.c - load a data set as the other programs do and say what is in it.

   build/dataset --dataset cifar10 --data_path cifar-10-python.tar.gz [--split test]
                 [--img_size 16] [--grid first64.png] [--threads N]

   Prints the image count, size and channels, the label counts, the pixel mean, an FNV-1a
   hash of the pixels (to compare two loads bit for bit), the load time and how fast the
   loader turns the images into normalised float batches. --grid writes the first 64 images
   (8 x 8, after resizing) as a PNG to look at. Exit 0 when the data set loaded, 1 when it did
   not (the message names the file and what is wrong), 2 for bad flags (an unknown data set,
   a missing --data_path, a --grid that cannot be written). */
#define AUTOGAN_IMPLEMENTATION
#include "../autogan.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"

static void usage(void) {
    fprintf(stderr,
        "usage: dataset --dataset NAME [--data_path PATH] [options]\n"
        "  --dataset NAME    cifar10 | stl10 | mnist | fashion-mnist | folder\n"
        "  --data_path PATH  the archive as downloaded, its folder, or a folder of PNGs\n"
        "                    (fashion-mnist without it: examples/data/ for test, Debian's package for train)\n"
        "  --split S         train (default; STL-10: train+unlabeled) or test\n"
        "  --img_size N      resize every image to N x N at load (PIL bilinear, as transforms.Resize)\n"
        "  --batch_size N    loader batch for the speed line (64; alias --batch)\n"
        "  --threads N       0 (OpenMP default) to 256\n"
        "  --grid FILE.png   the first 64 images as an 8 x 8 grid\n");
}

int main(int argc, char **argv) {
    const char *name = NULL, *path = NULL, *split = "train", *grid = NULL;
    int size = 0, batch = 64, threads = 0, i, k, classes[11] = { 0 };
    ag_dataset ds; ag_data_loader l; ag_error err; ag_rng rng; cli c;
    double t0, t_load, sum = 0.0;
    uint64_t hash = 1469598103934665603ULL;
    size_t n, j;
    float *x;
    cli_start(&c, "dataset", argc, argv);
    while (cli_next(&c)) {
        if (cli_is(&c, "--dataset")) name = cli_str(&c);
        else if (cli_is(&c, "--data_path")) path = cli_str(&c);
        else if (cli_is(&c, "--split")) split = cli_str(&c);
        else if (cli_is(&c, "--img_size")) size = (int)cli_int(&c, 1, 4096);
        else if (cli_is(&c, "--batch_size") || cli_is(&c, "--batch")) batch = (int)cli_int(&c, 1, 65536);
        else if (cli_is(&c, "--threads")) threads = cli_threads(&c);
        else if (cli_is(&c, "--grid")) grid = cli_str(&c);
        else if (cli_is(&c, "-h") || cli_is(&c, "--help")) { usage(); return 0; }
        else cli_unknown(&c);
    }
    if (!name) cli_fail(&c, "--dataset is required (cifar10, stl10, mnist, fashion-mnist or folder)");
    cli_dataset(&c, name, path);
    if (strcmp(split, "train") && strcmp(split, "test")) cli_fail(&c, "--split '%s': train or test", split);
    if (grid && ag_file_check_writable(grid, &err)) { fprintf(stderr, "dataset: --grid: %s\n", err.msg); return 2; }
#ifdef _OPENMP
    if (threads > 0) omp_set_num_threads(threads);
#else
    (void)threads;
#endif
    t0 = ag_wall_seconds();
    if (ag_dataset_load(&ds, name, path, split, size, &err)) { fprintf(stderr, "dataset: %s\n", err.msg); return 1; }
    t_load = ag_wall_seconds() - t0;
    n = (size_t)ds.count * ds.height * ds.width * ds.channels;
    for (j = 0; j < n; j++) { sum += ds.pixels[j]; hash = (hash ^ ds.pixels[j]) * 1099511628211ULL; }
    for (i = 0; i < ds.count; i++) classes[ds.labels[i] >= 0 && ds.labels[i] < 10 ? ds.labels[i] : 10]++;
    printf("%s (%s): %d images of %d x %d x %d, loaded in %.2f s\n", ds.name, split, ds.count, ds.height, ds.width, ds.channels, t_load);
    printf("labels:");
    for (k = 0; k < 10; k++) printf(" %d", classes[k]);
    printf(" | unlabelled %d\n", classes[10]);
    printf("pixel mean %.4f, FNV-1a %016llx\n", n ? sum / (double)n : 0.0, (unsigned long long)hash);
    /* one epoch through the loader: shuffled float batches as the GAN step takes them */
    if (ag_data_loader_init(&l, &ds, batch, ds.channels, &err)) { fprintf(stderr, "dataset: %s\n", err.msg); return 1; }
    x = (float *)malloc((size_t)batch * ds.channels * ds.height * ds.width * sizeof(float));
    if (!x) { fprintf(stderr, "dataset: out of memory\n"); return 1; }
    ag_rng_seed(&rng, 1, 0);
    t0 = ag_wall_seconds();
    for (i = 0; i < ds.count; i += ag_data_loader_next(&l, &rng, x, NULL)) {}
    printf("loader: one epoch in batches of %d in %.2f s (%.0f images/s)\n", batch, ag_wall_seconds() - t0,
           ds.count / (ag_wall_seconds() - t0 + 1e-9));
    if (grid) {
        if (ag_png_write_grid(grid, ds.pixels, ds.count < 64 ? ds.count : 64, ds.height, ds.width, ds.channels, 8, 2, &err)) {
            fprintf(stderr, "dataset: %s\n", err.msg); return 1;
        }
        printf("wrote %s\n", grid);
    }
    free(x);
    ag_data_loader_free(&l);
    ag_dataset_free(&ds);
    return 0;
}
