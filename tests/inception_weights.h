/* tests/inception_weights.h - deterministic random weights for the FID Inception-v3.

   The real FID weights (pt_inception-2015-12-05-6726825d.pth) cannot be downloaded on the
   test machines, so the C network is tested on random weights that PyTorch uses too
   (tests/golden/gen_inception.py ports this scheme and ag_rng bit for bit, and its
   --check-c option compares the two state dicts byte for byte).

   Include after autogan.h (with or without AUTOGAN_IMPLEMENTATION in the same file).

   static int inception_random_weights(ag_array_list *out, ag_error *err);
     Appends the 472 arrays of a complete FID-Inception state dict to `out`: F32, named
     exactly as the .pth keys, shaped as the .pth tensors ([O,I,kh,kw] conv weights, [O]
     BN vectors, fc.weight [1008,2048], fc.bias [1008]); no num_batches_tracked. Returns 0,
     or -1 with `err` set (out of memory); the caller frees `out` either way.

   The scheme. ONE generator, ag_rng_seed(&rng, 20151205, 3), drawn in this order:
     for each row (P, I, O, kh, kw) of inception_convs[] below (module order of pytorch-fid's
     InceptionV3, 94 rows), with fan_in = I*kh*kw:
       P.conv.weight       O*I*kh*kw values  ag_rng_fill_normal(mean 0, std (float)sqrt(2.0/fan_in))
       P.bn.weight         O values          ag_rng_fill_uniform(0.75, 1.25)
       P.bn.bias           O values          ag_rng_fill_uniform(-0.125, 0.125)
       P.bn.running_mean   O values          ag_rng_fill_uniform(-0.125, 0.125)
       P.bn.running_var    O values          ag_rng_fill_uniform(0.75, 1.25)
     then
       fc.weight           1008*2048 values  ag_rng_fill_normal(mean 0, std (float)sqrt(1.0/2048))
       fc.bias             1008 values       ag_rng_fill_uniform(-0.5, 0.5)
   Every tensor is filled in row-major order of its shape. He-normal convs keep the second
   moment through conv+ReLU; gamma/sqrt(var) has mean square close to 1; the small BN
   shifts keep the image-independent part of the activations from swamping the signal.
   With PyTorch's default init (BN = identity statistics, kaiming-uniform a=sqrt(5))
   the activations vanish; with these the RMS grows gently from 0.6 after Conv2d_1a to
   about 3 at Mixed_7c, pool3 and logits have std O(1) and differ across images (numbers in
   tests/golden/README.md). Uniform widths are powers of two and normal means are 0, so
   the fills give the same floats whether or not the compiler contracts a*b+c into an FMA.

   The table doubles as the architecture list: every BasicConv2d (conv without bias ->
   BatchNorm eps 0.001 -> ReLU) of the network, in state-dict order, with its input and
   output channels and kernel size (strides and paddings are in INCEPTION-SPEC.md). */
#ifndef INCEPTION_WEIGHTS_H
#define INCEPTION_WEIGHTS_H

#include <math.h>
#include <stdio.h>

typedef struct inception_conv { const char *prefix; int in, out, kh, kw; } inception_conv;

static const inception_conv inception_convs[] = {
    { "Conv2d_1a_3x3",                    3,   32, 3, 3 },
    { "Conv2d_2a_3x3",                   32,   32, 3, 3 },
    { "Conv2d_2b_3x3",                   32,   64, 3, 3 },
    { "Conv2d_3b_1x1",                   64,   80, 1, 1 },
    { "Conv2d_4a_3x3",                   80,  192, 3, 3 },
    { "Mixed_5b.branch1x1",             192,   64, 1, 1 },
    { "Mixed_5b.branch5x5_1",           192,   48, 1, 1 },
    { "Mixed_5b.branch5x5_2",            48,   64, 5, 5 },
    { "Mixed_5b.branch3x3dbl_1",        192,   64, 1, 1 },
    { "Mixed_5b.branch3x3dbl_2",         64,   96, 3, 3 },
    { "Mixed_5b.branch3x3dbl_3",         96,   96, 3, 3 },
    { "Mixed_5b.branch_pool",           192,   32, 1, 1 },
    { "Mixed_5c.branch1x1",             256,   64, 1, 1 },
    { "Mixed_5c.branch5x5_1",           256,   48, 1, 1 },
    { "Mixed_5c.branch5x5_2",            48,   64, 5, 5 },
    { "Mixed_5c.branch3x3dbl_1",        256,   64, 1, 1 },
    { "Mixed_5c.branch3x3dbl_2",         64,   96, 3, 3 },
    { "Mixed_5c.branch3x3dbl_3",         96,   96, 3, 3 },
    { "Mixed_5c.branch_pool",           256,   64, 1, 1 },
    { "Mixed_5d.branch1x1",             288,   64, 1, 1 },
    { "Mixed_5d.branch5x5_1",           288,   48, 1, 1 },
    { "Mixed_5d.branch5x5_2",            48,   64, 5, 5 },
    { "Mixed_5d.branch3x3dbl_1",        288,   64, 1, 1 },
    { "Mixed_5d.branch3x3dbl_2",         64,   96, 3, 3 },
    { "Mixed_5d.branch3x3dbl_3",         96,   96, 3, 3 },
    { "Mixed_5d.branch_pool",           288,   64, 1, 1 },
    { "Mixed_6a.branch3x3",             288,  384, 3, 3 },
    { "Mixed_6a.branch3x3dbl_1",        288,   64, 1, 1 },
    { "Mixed_6a.branch3x3dbl_2",         64,   96, 3, 3 },
    { "Mixed_6a.branch3x3dbl_3",         96,   96, 3, 3 },
    { "Mixed_6b.branch1x1",             768,  192, 1, 1 },
    { "Mixed_6b.branch7x7_1",           768,  128, 1, 1 },
    { "Mixed_6b.branch7x7_2",           128,  128, 1, 7 },
    { "Mixed_6b.branch7x7_3",           128,  192, 7, 1 },
    { "Mixed_6b.branch7x7dbl_1",        768,  128, 1, 1 },
    { "Mixed_6b.branch7x7dbl_2",        128,  128, 7, 1 },
    { "Mixed_6b.branch7x7dbl_3",        128,  128, 1, 7 },
    { "Mixed_6b.branch7x7dbl_4",        128,  128, 7, 1 },
    { "Mixed_6b.branch7x7dbl_5",        128,  192, 1, 7 },
    { "Mixed_6b.branch_pool",           768,  192, 1, 1 },
    { "Mixed_6c.branch1x1",             768,  192, 1, 1 },
    { "Mixed_6c.branch7x7_1",           768,  160, 1, 1 },
    { "Mixed_6c.branch7x7_2",           160,  160, 1, 7 },
    { "Mixed_6c.branch7x7_3",           160,  192, 7, 1 },
    { "Mixed_6c.branch7x7dbl_1",        768,  160, 1, 1 },
    { "Mixed_6c.branch7x7dbl_2",        160,  160, 7, 1 },
    { "Mixed_6c.branch7x7dbl_3",        160,  160, 1, 7 },
    { "Mixed_6c.branch7x7dbl_4",        160,  160, 7, 1 },
    { "Mixed_6c.branch7x7dbl_5",        160,  192, 1, 7 },
    { "Mixed_6c.branch_pool",           768,  192, 1, 1 },
    { "Mixed_6d.branch1x1",             768,  192, 1, 1 },
    { "Mixed_6d.branch7x7_1",           768,  160, 1, 1 },
    { "Mixed_6d.branch7x7_2",           160,  160, 1, 7 },
    { "Mixed_6d.branch7x7_3",           160,  192, 7, 1 },
    { "Mixed_6d.branch7x7dbl_1",        768,  160, 1, 1 },
    { "Mixed_6d.branch7x7dbl_2",        160,  160, 7, 1 },
    { "Mixed_6d.branch7x7dbl_3",        160,  160, 1, 7 },
    { "Mixed_6d.branch7x7dbl_4",        160,  160, 7, 1 },
    { "Mixed_6d.branch7x7dbl_5",        160,  192, 1, 7 },
    { "Mixed_6d.branch_pool",           768,  192, 1, 1 },
    { "Mixed_6e.branch1x1",             768,  192, 1, 1 },
    { "Mixed_6e.branch7x7_1",           768,  192, 1, 1 },
    { "Mixed_6e.branch7x7_2",           192,  192, 1, 7 },
    { "Mixed_6e.branch7x7_3",           192,  192, 7, 1 },
    { "Mixed_6e.branch7x7dbl_1",        768,  192, 1, 1 },
    { "Mixed_6e.branch7x7dbl_2",        192,  192, 7, 1 },
    { "Mixed_6e.branch7x7dbl_3",        192,  192, 1, 7 },
    { "Mixed_6e.branch7x7dbl_4",        192,  192, 7, 1 },
    { "Mixed_6e.branch7x7dbl_5",        192,  192, 1, 7 },
    { "Mixed_6e.branch_pool",           768,  192, 1, 1 },
    { "Mixed_7a.branch3x3_1",           768,  192, 1, 1 },
    { "Mixed_7a.branch3x3_2",           192,  320, 3, 3 },
    { "Mixed_7a.branch7x7x3_1",         768,  192, 1, 1 },
    { "Mixed_7a.branch7x7x3_2",         192,  192, 1, 7 },
    { "Mixed_7a.branch7x7x3_3",         192,  192, 7, 1 },
    { "Mixed_7a.branch7x7x3_4",         192,  192, 3, 3 },
    { "Mixed_7b.branch1x1",            1280,  320, 1, 1 },
    { "Mixed_7b.branch3x3_1",          1280,  384, 1, 1 },
    { "Mixed_7b.branch3x3_2a",          384,  384, 1, 3 },
    { "Mixed_7b.branch3x3_2b",          384,  384, 3, 1 },
    { "Mixed_7b.branch3x3dbl_1",       1280,  448, 1, 1 },
    { "Mixed_7b.branch3x3dbl_2",        448,  384, 3, 3 },
    { "Mixed_7b.branch3x3dbl_3a",       384,  384, 1, 3 },
    { "Mixed_7b.branch3x3dbl_3b",       384,  384, 3, 1 },
    { "Mixed_7b.branch_pool",          1280,  192, 1, 1 },
    { "Mixed_7c.branch1x1",            2048,  320, 1, 1 },
    { "Mixed_7c.branch3x3_1",          2048,  384, 1, 1 },
    { "Mixed_7c.branch3x3_2a",          384,  384, 1, 3 },
    { "Mixed_7c.branch3x3_2b",          384,  384, 3, 1 },
    { "Mixed_7c.branch3x3dbl_1",       2048,  448, 1, 1 },
    { "Mixed_7c.branch3x3dbl_2",        448,  384, 3, 3 },
    { "Mixed_7c.branch3x3dbl_3a",       384,  384, 1, 3 },
    { "Mixed_7c.branch3x3dbl_3b",       384,  384, 3, 1 },
    { "Mixed_7c.branch_pool",          2048,  192, 1, 1 },
};
#define INCEPTION_NUM_CONVS ((int)(sizeof inception_convs / sizeof inception_convs[0]))

/* Append a zeroed F32 array and return its data (NULL on failure, err set). */
static float *inception__array(ag_array_list *out, const char *prefix, const char *suffix,
                               int ndim, const int64_t *shape, ag_error *err) {
    char name[128];
    snprintf(name, sizeof name, "%s%s", prefix, suffix);
    if (ag_array_list_add(out, name, AG_DTYPE_F32, ndim, shape, NULL, err)) return NULL;
    return (float *)out->items[out->count - 1].data;
}

static int inception_random_weights(ag_array_list *out, ag_error *err) {
    static const struct { const char *suffix; float lo, hi; } bn[4] = {
        { ".bn.weight", 0.75f, 1.25f }, { ".bn.bias", -0.125f, 0.125f },
        { ".bn.running_mean", -0.125f, 0.125f }, { ".bn.running_var", 0.75f, 1.25f } };
    static const int64_t fc_w_shape[2] = { 1008, 2048 }, fc_b_shape[1] = { 1008 };
    ag_rng rng;
    float *p;
    int c, k;
    ag_rng_seed(&rng, 20151205u, 3u);
    for (c = 0; c < INCEPTION_NUM_CONVS; c++) {
        const inception_conv *t = &inception_convs[c];
        int64_t w_shape[4], v_shape[1];
        int fan_in = t->in * t->kh * t->kw;
        w_shape[0] = t->out; w_shape[1] = t->in; w_shape[2] = t->kh; w_shape[3] = t->kw;
        v_shape[0] = t->out;
        if (!(p = inception__array(out, t->prefix, ".conv.weight", 4, w_shape, err))) return -1;
        ag_rng_fill_normal(&rng, p, (size_t)t->out * (size_t)fan_in, 0.0f, (float)sqrt(2.0 / fan_in));
        for (k = 0; k < 4; k++) {
            if (!(p = inception__array(out, t->prefix, bn[k].suffix, 1, v_shape, err))) return -1;
            ag_rng_fill_uniform(&rng, p, (size_t)t->out, bn[k].lo, bn[k].hi);
        }
    }
    if (!(p = inception__array(out, "fc", ".weight", 2, fc_w_shape, err))) return -1;
    ag_rng_fill_normal(&rng, p, (size_t)(1008 * 2048), 0.0f, (float)sqrt(1.0 / 2048));
    if (!(p = inception__array(out, "fc", ".bias", 1, fc_b_shape, err))) return -1;
    ag_rng_fill_uniform(&rng, p, 1008, -0.5f, 0.5f);
    return 0;
}

#endif /* INCEPTION_WEIGHTS_H */
