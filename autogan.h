/* autogan.h - v0.1.0 - AutoGAN neural architecture search for GANs in one C header.

   Do this:
       #define AUTOGAN_IMPLEMENTATION
   before you include this file in *one* C or C++ file to create the implementation.
   Every other file includes it without the macro.

       #define AUTOGAN_IMPLEMENTATION
       #include "autogan.h"

   It needs libc and libm only; compile with -fopenmp to use threads (OMP_NUM_THREADS or
   ag_ctx_set_threads decide how many). Build as C99 or as C++.

   What is inside (Gong et al., "AutoGAN: Neural Architecture Search for Generative
   Adversarial Networks", ICCV 2019): float32 NCHW tensors with a per-step arena and a
   reference-counted pool for large activations, reverse-mode autograd recorded on a tape,
   every layer of the AutoGAN search space (conv, transposed conv, bilinear/nearest
   upsampling, BatchNorm/InstanceNorm, spectral norm), a packed SGEMM with
   AVX2/AVX-512/NEON micro-kernels chosen at run time, Winograd F(4x4, 3x3) convs, Adam,
   the weight-shared generator, the derived generators of the release
   (autogan_cifar10_a|b|c) and the growing discriminator with PyTorch's state_dict names,
   one hinge-loss GAN iteration as a call, resumable checkpoints, the LSTM controller with
   REINFORCE and the search's resumable state, the FID Inception-v3 with Inception score and
   FID, a compact classifier as a fast scorer, readers/writers for .safetensors, PyTorch
   .pth, .npy/.npz and PNG, streaming gzip/tar and idx readers, and the data sets (CIFAR-10,
   STL-10, (Fashion-)MNIST, PNG folders) resized bit-exactly as PIL does, with a shuffling,
   resumable batch loader.

   Kernel path: chosen once per context from CPUID/XGETBV (x86-64) or at compile time
   (AArch64); the environment variable AUTOGAN_CPU=scalar|avx2|avx512|neon forces one.

   Test hooks (for the test suite's kill-and-resume tests; never set them otherwise), read
   once per process: AUTOGAN_TEST_EXIT_AFTER_RENAMES=N makes the process _Exit(75) right
   after the N-th successful rename of ag_write_file_atomic (every file writer goes through
   it), so a kill lands exactly between two chosen writes; AUTOGAN_TEST_TRACE_RENAMES=1
   prints "autogan.h test hook: rename N PATH" to stderr after each one.

   Configuration (define before the implementation include):
       AUTOGAN_STATIC          make every API function static to the including file
       AG_MALLOC/AG_REALLOC/AG_FREE   your allocator (define all three or none)
       AG_ASSERT(x)            your assert (used for internal invariants only; errors
                               in input are always returned, never asserted)
       AG_PROJECT_DIR          the repository's absolute path (the Makefile sets it), where
                               ag_find_resource looks for weights/ and examples/data/
       AG_DATA_DIR, AG_WEIGHTS_DIR   the shipped data and weights ("examples/data", "weights")

   Errors: functions that can fail return NULL or -1 and leave a message in the context
   (ag_ctx_error) or in the ag_error you pass. Ops receiving a NULL input return NULL, so
   a forward pass can be checked once at its end. A failed load leaves the caller's
   parameters unchanged.

   Determinism: the same seed and the same thread count give the same bits.

   TABLE OF CONTENTS (sections of the implementation, in the order data flows)
       1. Configuration and API ................ (this part, outside the implementation)
       2. Errors, files and host arrays; text and byte helpers
       3. Tensors, arena, buffer pool (reference counts) and PRNG
       4. Kernels: SGEMM per ISA (scalar, AVX2, AVX-512, NEON) with run-time dispatch,
          im2col/col2im, Winograd F(4x4, 3x3) transforms, upsampling, and the conv
          algorithms (Winograd, few-output taps, im2col + GEMM; transposed conv) behind
          one forward/backward interface the ops call
       5. Autograd tape and ops (forward + backward pairs)
       6. Parameters, layers and initialisation; loading arrays into parameters
       7. Optimiser: Adam, EMA, the linear learning-rate decay
       8. Data sets: (Fashion-)MNIST, CIFAR-10, STL-10, image folders; PIL-exact resize; loader
       9. AutoGAN generator, discriminator, the GAN iteration and checkpoints
      10. Controller and search: LSTM policy, REINFORCE loss, kept architectures, loss
          windows, the search checkpoint
      11. Inception-v3, Inception score and FID
      12. The compact classifier and the scorer interface (Inception or classifier)
      13. Containers: CRC-32/Adler-32, DEFLATE (inflate, deflate), gzip, tar, zip
      14. Array files: .safetensors, .npy/.npz, idx, PyTorch .pth
      15. Images: PNG and line plots

   LICENSE: MIT or public domain, your choice; see the end of the file.
*/
#ifndef AUTOGAN_H
#define AUTOGAN_H

/* ===================================================================================
   1. Configuration and API
   =================================================================================== */
#include <stddef.h>
#include <stdint.h>

#ifdef AUTOGAN_STATIC
#if defined(__GNUC__) || defined(__clang__)
#define AGDEF static __attribute__((unused))
#else
#define AGDEF static
#endif
#else
#ifdef __cplusplus
#define AGDEF extern "C"
#else
#define AGDEF extern
#endif
#endif

#define AG_VERSION "0.1.0"
#define AG_MAX_DIMS 4
#define AG_NAME_MAX 96
/* the most threads a context or the Inception network will use: more are clamped (OpenMP
   runtimes crash when asked for tens of thousands) */
#define AG_MAX_THREADS 256

/* ---- errors -------------------------------------------------------------------- */
typedef struct ag_error { char msg[512]; } ag_error;

/* ---- host arrays: what files hold (any dtype, up to 8 dims) --------------------- */
typedef enum ag_dtype {
    AG_DTYPE_F32, AG_DTYPE_F64, AG_DTYPE_F16, AG_DTYPE_BF16, AG_DTYPE_I64, AG_DTYPE_I32,
    AG_DTYPE_I16, AG_DTYPE_I8, AG_DTYPE_U8, AG_DTYPE_BOOL
} ag_dtype;
typedef struct ag_array {
    char *name; ag_dtype dtype; int ndim; int64_t shape[8]; void *data; size_t nbytes;
} ag_array;
typedef struct ag_array_list { ag_array *items; int count, cap; } ag_array_list;

AGDEF void      ag_array_list_free(ag_array_list *list);
AGDEF int       ag_array_list_add(ag_array_list *list, const char *name, ag_dtype dtype, int ndim,
                                  const int64_t *shape, const void *data_or_null, ag_error *err);
AGDEF ag_array *ag_array_list_find(const ag_array_list *list, const char *name);
AGDEF size_t    ag_dtype_size(ag_dtype t);
AGDEF int       ag_array_to_f32(const ag_array *a, float *out, ag_error *err);
AGDEF void ag_array_free(ag_array *a);                 /* frees name and data, zeroes *a */
AGDEF const char *ag_dtype_name(ag_dtype t);           /* "float32", "int64", ... */
AGDEF int64_t ag_array_numel(const ag_array *a);       /* product of shape (1 for ndim 0) */
/* Keep only the entries whose name starts with prefix and strip it ("state_dict." turns
   "state_dict.conv.weight" into "conv.weight"). Error (list unchanged) when none match. */
AGDEF int ag_array_list_select_prefix(ag_array_list *list, const char *prefix, ag_error *err);
/* a regular file, whole; a directory, FIFO or device is refused (without waiting on it) */
AGDEF int       ag_read_file(const char *path, unsigned char **bytes, size_t *len, ag_error *err);
AGDEF int       ag_write_file_atomic(const char *path, const void *bytes, size_t len, ag_error *err); /* via path.tmp, fsync, rename (test hooks: the top comment) */
/* checks before long work that `path` can be written (its directory exists and is
   writable, and it is not a directory), by creating and removing path.tmp */
AGDEF int       ag_file_check_writable(const char *path, ag_error *err);
/* wall-clock seconds from an arbitrary origin, sub-second resolution (for progress and eta) */
AGDEF double    ag_wall_seconds(void);
/* Files the project ships (AG_WEIGHTS_DIR "/...", AG_DATA_DIR "/...": relative names such as
   "weights/fashion-mnist-classifier.safetensors"), found from any working directory. Tries, in
   order: `relative` as given (from the working directory; an absolute path is only checked);
   AG_PROJECT_DIR "/" relative (the repository's absolute path, compiled in by the Makefile:
   -DAG_PROJECT_DIR='"$(CURDIR)"'; unset in a one-line build); then next to the executable, its
   directory and that directory's parent (build/search finds ../weights; Linux /proc/self/exe
   only). The first that exists (file or directory) goes into out (cap bytes) and 0 is returned;
   -1 when none exists (out then holds `relative`, for messages) or it does not fit in cap. */
AGDEF int       ag_find_resource(const char *relative, char *out, size_t cap);
#ifndef AG_WEIGHTS_DIR
#define AG_WEIGHTS_DIR "weights"
#endif

/* ---- tensors and the context ---------------------------------------------------- */
/* A float32 tensor of up to 4 dims, row-major (NCHW for images). Tensors made by ops
   live in the context's arena until ag_ctx_reset; parameters own their memory. */
typedef struct ag_tensor {
    float *data;
    float *grad;        /* NULL until a backward pass reaches it; persistent for params */
    int ndim;
    int shape[AG_MAX_DIMS];
    size_t size;        /* number of elements */
    int requires_grad;  /* 1 for parameters and for op outputs that depend on one */
    int is_param;       /* owns data and grad (not in the arena) */
    int node;           /* 1 + index of the tape node that made it; 0 for leaves */
    int grad_slot;      /* internal: 1 + heap slot of a large gradient buffer, 0 otherwise */
    /* internal: large op outputs (>= 256 KB) live in a recycled pool instead of the arena,
       so they can go back as soon as nobody needs them: `refs` counts the caller (until
       ag_tensor_release) and every tape node whose backward reads the data; views
       (reshape, detach) share their `base` tensor's buffer and hold a reference on it */
    struct ag_tensor *base;
    int refs, data_slot, released;
} ag_tensor;

typedef struct ag_ctx ag_ctx;

AGDEF ag_ctx     *ag_ctx_create(uint64_t seed, ag_error *err);   /* NULL (and why in err, which may be NULL) when out of memory */
AGDEF void        ag_ctx_free(ag_ctx *ctx);
AGDEF void        ag_ctx_reset(ag_ctx *ctx);          /* frees every op tensor and the tape */
AGDEF const char *ag_ctx_error(const ag_ctx *ctx);    /* "" when nothing failed */
AGDEF int         ag_ctx_failed(const ag_ctx *ctx);
AGDEF void        ag_ctx_clear_error(ag_ctx *ctx);
AGDEF void        ag_ctx_set_threads(ag_ctx *ctx, int num_threads); /* <= 0: OpenMP default; at most AG_MAX_THREADS */
AGDEF int         ag_ctx_threads(const ag_ctx *ctx);
AGDEF void        ag_ctx_set_grad_enabled(ag_ctx *ctx, int enabled); /* no-grad mode when 0 */
AGDEF int         ag_ctx_grad_enabled(const ag_ctx *ctx);
AGDEF size_t      ag_ctx_arena_bytes(const ag_ctx *ctx); /* high-water mark of the arena */
AGDEF size_t      ag_ctx_pool_bytes(const ag_ctx *ctx);  /* high-water mark of large buffers in use (activations, gradients) */
AGDEF const char *ag_ctx_cpu_name(const ag_ctx *ctx);
AGDEF double      ag_ctx_gemm_flops(const ag_ctx *ctx);  /* conv/linear flops so far (Winograd convs: their direct count) */
/* 3x3 stride-1 convs with >= 16 channels in and out go through Winograd F(4x4, 3x3) (on
   by default; the environment variable AUTOGAN_WINOGRAD=0 turns it off); off: im2col */
AGDEF void        ag_ctx_set_winograd(ag_ctx *ctx, int enabled);
AGDEF int         ag_ctx_winograd(const ag_ctx *ctx);
AGDEF double      ag_ctx_fma_peak_gflops(const ag_ctx *ctx); /* measured: an FMA loop on every thread (~0.5 s) */

/* arena tensors (uninitialised / zeroed / copied from host floats) */
AGDEF ag_tensor *ag_tensor_new(ag_ctx *ctx, int ndim, const int *shape);
AGDEF ag_tensor *ag_tensor_zeros(ag_ctx *ctx, int ndim, const int *shape);
AGDEF ag_tensor *ag_tensor_from(ag_ctx *ctx, int ndim, const int *shape, const float *data);
AGDEF ag_tensor *ag_tensor4(ag_ctx *ctx, int n, int c, int h, int w);
/* The caller will not use t again. Its memory returns to the context at once, or after
   the backward pass for data a recorded op still needs (PyTorch frees tensors that no
   Python name and no graph node refer to; this is the explicit C form). Optional:
   without it everything lives until ag_ctx_reset. */
AGDEF void       ag_tensor_release(ag_ctx *ctx, ag_tensor *t);
AGDEF int        ag_tensor_same_shape(const ag_tensor *a, const ag_tensor *b);
AGDEF void       ag_tensor_shape_str(const ag_tensor *t, char *buf, size_t len);

/* ---- PRNG: PCG32 (O'Neill), documented so other languages can reproduce it ---------
   state' = state * 6364136223846793005 + inc; output = rotr32(((s >> 18) ^ s) >> 27, s >> 59).
   Seeding: state = 0, inc = (seq << 1) | 1, step, state += seed, step.
   uniform float = (u32 >> 8) * 2^-24 in [0, 1).
   normal: Box-Muller on two uniforms u1 in (0,1], u2: sqrt(-2 ln u1) * cos(2 pi u2),
   in double, one variate per pair (no cached spare, so the state is two integers). */
typedef struct ag_rng { uint64_t state, inc; } ag_rng;
AGDEF void     ag_rng_seed(ag_rng *rng, uint64_t seed, uint64_t seq);
AGDEF uint32_t ag_rng_u32(ag_rng *rng);
AGDEF float    ag_rng_uniform(ag_rng *rng);                 /* [0, 1) */
AGDEF float    ag_rng_normal(ag_rng *rng);                  /* N(0, 1) */
AGDEF void     ag_rng_fill_normal(ag_rng *rng, float *x, size_t n, float mean, float std);
AGDEF void     ag_rng_fill_uniform(ag_rng *rng, float *x, size_t n, float lo, float hi);
AGDEF ag_rng  *ag_ctx_rng(ag_ctx *ctx);

/* ---- autograd ---------------------------------------------------------------------
   Every op records a node on the context's tape when grad mode is on and an input
   requires grad. ag_backward seeds d(loss)=1 (loss must have one element);
   ag_backward_with seeds an explicit upstream gradient. Gradients ACCUMULATE into
   parameters' grad until ag_params_zero_grad. The tape is cleared after a backward. */
AGDEF int        ag_backward(ag_ctx *ctx, ag_tensor *loss);
AGDEF int        ag_backward_with(ag_ctx *ctx, ag_tensor *out, const float *grad_out);
AGDEF ag_tensor *ag_detach(ag_ctx *ctx, ag_tensor *x);

/* ---- ops (each returns NULL and sets the context error on bad input) ------------- */
AGDEF ag_tensor *ag_linear(ag_ctx *ctx, ag_tensor *x, ag_tensor *w, ag_tensor *b);        /* x[N,in] w[out,in] b[out]|NULL */
AGDEF ag_tensor *ag_conv2d(ag_ctx *ctx, ag_tensor *x, ag_tensor *w, ag_tensor *b,
                           int stride_h, int stride_w, int pad_h, int pad_w);             /* w[O,I,kh,kw] */
AGDEF ag_tensor *ag_conv_transpose2d(ag_ctx *ctx, ag_tensor *x, ag_tensor *w, ag_tensor *b,
                                     int stride, int pad);                                /* w[I,O,kh,kw] */
AGDEF ag_tensor *ag_upsample_nearest(ag_ctx *ctx, ag_tensor *x, int out_h, int out_w);
AGDEF ag_tensor *ag_upsample_bilinear(ag_ctx *ctx, ag_tensor *x, int out_h, int out_w);  /* align_corners=False */
/* upsampling modes (also the cell token "up": bilinear, nearest, transposed conv) */
enum { AG_UP_BILINEAR = 0, AG_UP_NEAREST = 1, AG_UP_DECONV = 2 };
/* ag_conv2d(ag_upsample_nearest|bilinear(x, 2H, 2W), w, b, 1, 1, 1, 1) for x[N,C,H,W] w[O,C,3,3], bit for bit,
   without making the upsampled tensor (4x the size of x); mode AG_UP_NEAREST or AG_UP_BILINEAR */
AGDEF ag_tensor *ag_conv3x3_upsampled2(ag_ctx *ctx, ag_tensor *x, ag_tensor *w, ag_tensor *b, int mode);
AGDEF ag_tensor *ag_avg_pool2d(ag_ctx *ctx, ag_tensor *x, int kernel, int stride, int pad, int count_include_pad);
AGDEF ag_tensor *ag_max_pool2d(ag_ctx *ctx, ag_tensor *x, int kernel, int stride, int pad);
AGDEF ag_tensor *ag_relu(ag_ctx *ctx, ag_tensor *x);
AGDEF ag_tensor *ag_tanh(ag_ctx *ctx, ag_tensor *x);
AGDEF ag_tensor *ag_sigmoid(ag_ctx *ctx, ag_tensor *x);
AGDEF ag_tensor *ag_exp(ag_ctx *ctx, ag_tensor *x);
AGDEF ag_tensor *ag_add(ag_ctx *ctx, ag_tensor *a, ag_tensor *b);                         /* same shape */
AGDEF ag_tensor *ag_sub(ag_ctx *ctx, ag_tensor *a, ag_tensor *b);
AGDEF ag_tensor *ag_mul(ag_ctx *ctx, ag_tensor *a, ag_tensor *b);
AGDEF ag_tensor *ag_scale(ag_ctx *ctx, ag_tensor *x, float s);
AGDEF ag_tensor *ag_concat_channels(ag_ctx *ctx, ag_tensor **xs, int n);                 /* along dim 1 */
AGDEF ag_tensor *ag_narrow(ag_ctx *ctx, ag_tensor *x, int start, int len);               /* x[N,D] -> x[:, start:start+len] */
AGDEF ag_tensor *ag_reshape(ag_ctx *ctx, ag_tensor *x, int ndim, const int *shape);
AGDEF ag_tensor *ag_batch_norm2d(ag_ctx *ctx, ag_tensor *x, ag_tensor *weight, ag_tensor *bias,
                                 ag_tensor *running_mean, ag_tensor *running_var,
                                 int64_t *num_batches_tracked, int training, float momentum, float eps);
AGDEF ag_tensor *ag_instance_norm2d(ag_ctx *ctx, ag_tensor *x, float eps);               /* affine-free */
AGDEF ag_tensor *ag_spectral_norm(ag_ctx *ctx, ag_tensor *weight_orig, ag_tensor *u, ag_tensor *v,
                                  int training, float eps);                              /* W / sigma(W) */
AGDEF ag_tensor *ag_sum_hw(ag_ctx *ctx, ag_tensor *x);                                   /* [N,C,H,W] -> [N,C] */
AGDEF ag_tensor *ag_sum(ag_ctx *ctx, ag_tensor *x);                                      /* -> [1] */
AGDEF ag_tensor *ag_mean(ag_ctx *ctx, ag_tensor *x);                                     /* -> [1] */
AGDEF ag_tensor *ag_hinge_loss_d(ag_ctx *ctx, ag_tensor *d_real, ag_tensor *d_fake);     /* mean relu(1-r) + mean relu(1+f) */
AGDEF ag_tensor *ag_hinge_loss_g(ag_ctx *ctx, ag_tensor *d_fake);                        /* -mean f */
AGDEF ag_tensor *ag_log_softmax(ag_ctx *ctx, ag_tensor *x);                              /* rows of x[N,C] */
AGDEF ag_tensor *ag_cross_entropy(ag_ctx *ctx, ag_tensor *logits, const int64_t *targets); /* mean over N */
AGDEF ag_tensor *ag_embedding(ag_ctx *ctx, ag_tensor *table, const int64_t *index, int n); /* -> [n,D] */
AGDEF ag_tensor *ag_lstm_cell(ag_ctx *ctx, ag_tensor *x, ag_tensor *h, ag_tensor *c,
                              ag_tensor *w_ih, ag_tensor *w_hh, ag_tensor *b_ih, ag_tensor *b_hh,
                              ag_tensor **c_out);                                        /* returns h'; gates i,f,g,o */

/* ---- parameters ------------------------------------------------------------------
   A parameter set holds named tensors in PyTorch state_dict order: trainable
   parameters, float buffers (running statistics, spectral-norm u/v) and int64
   counters (num_batches_tracked). */
typedef enum ag_entry_kind { AG_ENTRY_PARAM, AG_ENTRY_BUFFER, AG_ENTRY_COUNTER } ag_entry_kind;
typedef struct ag_param_entry {
    char name[AG_NAME_MAX];
    ag_entry_kind kind;
    ag_tensor *tensor;      /* PARAM and BUFFER */
    int64_t *counter;       /* COUNTER */
} ag_param_entry;
typedef struct ag_params { ag_param_entry *entries; int count, cap; } ag_params;

AGDEF ag_tensor *ag_params_add(ag_params *ps, const char *name, ag_entry_kind kind, int ndim, const int *shape, ag_error *err);
AGDEF int        ag_params_add_counter(ag_params *ps, const char *name, int64_t *counter, ag_error *err);
AGDEF ag_param_entry *ag_params_find(const ag_params *ps, const char *name);
AGDEF void       ag_params_free(ag_params *ps);
AGDEF void       ag_params_zero_grad(ag_params *ps);
AGDEF size_t     ag_params_count(const ag_params *ps);    /* trainable elements, like sum(p.numel()) */
AGDEF int        ag_params_copy(ag_params *dst, const ag_params *src, ag_error *err); /* same names and shapes */
/* loads arrays already read (any file format) into the set: every name, dtype, shape and
   value is checked first, then all are copied or none (strict as ag_safetensors_load); names are looked up
   as prefix + entry name; `source` names the origin in messages */
AGDEF int ag_params_load_arrays(ag_params *ps, const ag_array_list *arrays, const char *prefix, int strict,
                                const char *source, ag_error *err);

/* initialisers (PyTorch's formulas; values come from the context's PRNG) */
AGDEF void ag_init_uniform(ag_rng *rng, ag_tensor *t, float lo, float hi);
AGDEF void ag_init_normal(ag_rng *rng, ag_tensor *t, float mean, float std);
AGDEF void ag_init_xavier_uniform(ag_rng *rng, ag_tensor *t, float gain);  /* fan from [O,I,kh,kw] or [O,I] */
AGDEF void ag_init_fill(ag_tensor *t, float value);

/* ---- optimiser ---------------------------------------------------------------------- */
typedef struct ag_adam {
    ag_params *params; float lr, beta1, beta2, eps; int64_t step;
    float **m, **v;         /* one moment buffer per entry (NULL for non-parameters) */
} ag_adam;
AGDEF int  ag_adam_init(ag_adam *opt, ag_params *params, float lr, float beta1, float beta2, float eps, ag_error *err);
AGDEF void ag_adam_step(ag_adam *opt);      /* PyTorch's Adam update of every parameter */
AGDEF void ag_adam_reset(ag_adam *opt);     /* zero moments and step */
AGDEF void ag_adam_free(ag_adam *opt);

typedef struct ag_ema { ag_params *params; float decay; float **avg; } ag_ema;
AGDEF int  ag_ema_init(ag_ema *ema, ag_params *params, float decay, ag_error *err);
AGDEF void ag_ema_update(ag_ema *ema);      /* avg = decay*avg + (1-decay)*p for parameters */
AGDEF void ag_ema_swap(ag_ema *ema);        /* exchange averages and live weights (to evaluate) */
AGDEF void ag_ema_free(ag_ema *ema);
/* The reference's LinearLrDecay(start, end, decay_start, decay_end).step(step): returns the
   rate; *sets (may be NULL) is 1 when the reference assigns it to the optimiser (only for
   decay_start < step < decay_end; outside, the optimiser keeps its rate). */
AGDEF double ag_linear_lr_decay(double start_lr, double end_lr, int64_t decay_start, int64_t decay_end, int64_t step, int *sets);

/* ---- data sets --------------------------------------------------------------------
   Images as stored: uint8 [count][height][width][channels] (HWC per image, RGB or gray).
   ag_dataset_load(ds, name, path, split, resize_to, err):
     name   cifar10 | stl10 | mnist | fashion-mnist | folder
     path   the archive as downloaded (cifar-10-binary.tar.gz, cifar-10-python.tar.gz,
            stl10_binary.tar.gz), its extracted folder, the folder holding the idx files
            (gzipped or not; also under raw/ or FashionMNIST/raw/, as torchvision keeps them),
            a folder of PNG images (searched recursively), or NULL for the default:
            fashion-mnist's test split is shipped in examples/data/ (AG_DATA_DIR, found from any
            working directory through ag_find_resource), its train
            split is read where Debian's dataset-fashion-mnist installs it,
            /usr/share/datasets/fashion-mnist (AG_DEBIAN_FASHION_MNIST_DIR).
     split  "train" (the reference's: CIFAR-10 50,000; STL-10 train+unlabeled 105,000; MNIST
            60,000) or "test" (10,000 / 8,000); NULL means "train". Folders ignore it.
     resize_to > 0 resizes every image to resize_to x resize_to at load, as the reference's
            transforms.Resize(resize_to) on a PIL image (ag_image_resize_bilinear_pil);
            STL-10 is resized while it streams, so the 96x96 originals never all sit in memory.
   Decoding and resizing run on OpenMP threads. On failure *ds is left as it was and the
   message names the file and what is wrong. */
typedef struct ag_dataset {
    char name[32];
    int count, height, width, channels;
    unsigned char *pixels;     /* [count][height][width][channels] */
    int *labels;               /* [count]; -1 where unlabelled (STL-10 unlabeled, folders) */
    int num_classes;           /* 10, or 0 when nothing is labelled */
} ag_dataset;
#ifndef AG_DATA_DIR
#define AG_DATA_DIR "examples/data"
#endif
#ifndef AG_DEBIAN_FASHION_MNIST_DIR
#define AG_DEBIAN_FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"
#endif
AGDEF int  ag_dataset_load(ag_dataset *ds, const char *name, const char *path, const char *split, int resize_to, ag_error *err);
AGDEF void ag_dataset_free(ag_dataset *ds);
/* a copy of src with every image resized to size x size (PIL BILINEAR, as below) */
AGDEF int  ag_dataset_resized(const ag_dataset *src, int size, ag_dataset *dst, ag_error *err);
/* PIL's Image.resize(..., BILINEAR) bit for bit (Pillow's ImagingResample, 8 bits per
   channel): separable triangle filter whose support is scaled by the reduction factor when
   shrinking (antialiased), 22-bit fixed-point weights, horizontal pass first into uint8, then
   vertical; rounding and clamping as Pillow. src [h][w][c] -> dst [out_h][out_w][c], any c.
   Returns -1 only when out of memory. */
AGDEF int  ag_image_resize_bilinear_pil(const unsigned char *src, int h, int w, int c, unsigned char *dst, int out_h, int out_w);

/* The loader: batches of a data set, reshuffled at the start of every epoch (Fisher-Yates
   from the rng passed to ag_data_loader_next: same seed, same order), the last partial batch
   kept (PyTorch's DataLoader with drop_last=False). Fields are public; a resumed run calls
   ag_data_loader_restore with what ag_data_loader_state_string wrote into its checkpoint. */
typedef struct ag_data_loader {
    const ag_dataset *ds;
    int batch_size, channels;  /* channels out: the data set's, or 1 <-> 3 converted */
    int shuffle;               /* 1 after init; 0 keeps data set order (the reference's test loaders) */
    int *order;                /* [ds->count]: this epoch's permutation */
    int position;              /* next index into order; ds->count when the epoch is used up */
    int64_t epoch;             /* epochs started (0 before the first batch) */
    ag_rng epoch_rng;          /* the rng as it was when this epoch's shuffle began */
} ag_data_loader;
AGDEF int  ag_data_loader_init(ag_data_loader *l, const ag_dataset *ds, int batch_size, int channels, ag_error *err);
/* Next batch as NCHW floats ((x / 255) - 0.5) / 0.5 in float32, the reference's ToTensor +
   Normalize(0.5, 0.5) (gray to 3 channels by replication, RGB to gray by PIL's
   L = (19595 R + 38470 G + 7471 B + 32768) >> 16); labels (may be NULL) get the labels.
   images must hold batch_size x channels x height x width floats. Returns the number of
   images (batch_size, or fewer at the end of an epoch). A new epoch starts when the previous
   one is used up: the permutation is drawn from rng then. */
AGDEF int  ag_data_loader_next(ag_data_loader *l, ag_rng *rng, float *images, int *labels_or_null);
AGDEF void ag_data_loader_free(ag_data_loader *l);
/* Fisher-Yates shuffle of idx[0..n) with unbiased bounded draws (rejection below 2^32 mod k) */
AGDEF void ag_shuffle_indices(ag_rng *rng, int *idx, int n);
/* "epoch position state inc" (decimal) <-> the loader; restore rebuilds the permutation from
   the saved epoch_rng, so the resumed run reads the same images in the same order */
AGDEF void ag_data_loader_state_string(const ag_data_loader *l, char *buf, size_t len);
AGDEF int  ag_data_loader_restore(ag_data_loader *l, const char *state, ag_error *err);

/* ---- AutoGAN modules -------------------------------------------------------------- */
#define AG_ARCH_MAX 14
enum { AG_CONV_POST = 0, AG_CONV_PRE = 1 };
enum { AG_NORM_NONE = 0, AG_NORM_BN = 1, AG_NORM_IN = 2 };

typedef struct ag_conv_layer { ag_tensor *weight, *bias; int cin, cout, kh, kw, stride, pad; } ag_conv_layer;
typedef struct ag_bn_layer { ag_tensor *weight, *bias, *running_mean, *running_var; int64_t num_batches_tracked; int channels; } ag_bn_layer;
typedef struct ag_sn_conv_layer { ag_tensor *weight_orig, *bias, *u, *v; int cin, cout, k, pad; } ag_sn_conv_layer;

typedef struct ag_gen_block {     /* PostGenBlock / PreGenBlock of the reference */
    ag_conv_layer deconv, conv; ag_bn_layer bn;
} ag_gen_block;
typedef struct ag_gen_cell {
    ag_gen_block post_conv1, pre_conv1, post_conv2, pre_conv2;
    ag_conv_layer deconv_sc, c_sc, skip_deconvx2, skip_deconvx4[2], skip_in_ops[2];
    int num_skip_in;
} ag_gen_cell;

typedef struct ag_generator {
    int gf, latent_dim, bottom_width, out_channels, stage;
    int arch[AG_ARCH_MAX];
    ag_conv_layer l1;             /* linear as [out, in] weight */
    ag_gen_cell cells[3];
    ag_bn_layer to_rgb_bn;        /* to_rgb.0 */
    ag_conv_layer to_rgb_conv;    /* to_rgb.2 */
    ag_params params;
    int training;
    int derived;                  /* 1: a derived (fixed) model, see ag_generator_init_derived */
} ag_generator;

typedef struct ag_discriminator {
    int df, in_channels, stage, spectral_norm, training;
    ag_sn_conv_layer block_c1[4], block_c2[4], block_c_sc[2];   /* c_sc for block1, block2 */
    ag_sn_conv_layer l5;
    ag_params params;
} ag_discriminator;

/* Number of architecture tokens at a stage (4, 9, 14) and the choice count of token i. */
AGDEF int ag_arch_len(int stage);
AGDEF int ag_arch_token_choices(int token_index);
AGDEF int ag_arch_parse(const char *text, int *arch, int *len, ag_error *err);

AGDEF int  ag_generator_init(ag_generator *g, int gf, int latent_dim, int bottom_width, int out_channels,
                             ag_rng *rng, ag_error *err);
AGDEF void ag_generator_free(ag_generator *g);
AGDEF int  ag_generator_set_arch(ag_generator *g, int stage, const int *arch, int len, ag_error *err);
AGDEF void ag_generator_reset_params(ag_generator *g, ag_rng *rng);   /* the reference init */
AGDEF ag_tensor *ag_generator_forward(ag_ctx *ctx, ag_generator *g, ag_tensor *z);  /* z[N,latent] -> [N,C,R,R] */
/* Train (1: BatchNorm on batch statistics, updating its running ones) or eval mode (0: the
   running statistics, the reference's gen_net.eval()); returns the previous mode. */
AGDEF int  ag_generator_set_training(ag_generator *g, int on);
/* n images of g in eval mode without a graph, as the reference's validate (gen_net.eval(),
   torch.no_grad()): z holds n x latent_dim floats (NULL: drawn N(0,1) from the context's PRNG,
   ag_rng_fill_normal over n x latent_dim values), out receives [n, C, R, R] in [-1, 1]. The
   context is reset before and after (its tensors are gone); g's mode and the context's grad
   mode are restored. 0, or -1 with the message in ag_ctx_error. */
AGDEF int  ag_generator_generate(ag_ctx *ctx, ag_generator *g, const float *z, int n, float *out);

/* The derived (fixed) generators of the authors' release, models/autogan_cifar10_{a,b,c}.py:
   one architecture of 14 tokens, only its own weights, with the reference's names
   (cellS.c1, cellS.c2, cellS.n1/n2 when the norm is BN, cellS.c_sc when the cell has a
   shortcut, cellS.skip_in_ops.K for its K-th skip input, l1, to_rgb.0/.2). Its forward is
   the shared generator's at that architecture (stage 2), so training, checkpoints and the
   EMA work as for the shared one; ag_generator_set_arch accepts only its own architecture.
   Any architecture of pre-activation cells with bilinear/nearest upsampling can be built
   this way (the derived Cell has no post-activation or deconv form). Released checkpoints:
   gf 256, latent 128, bottom width 4 (CIFAR-10, 32x32) or 6 (STL-10, 48x48). */
AGDEF int ag_derived_arch(const char *name, int *arch14);   /* "autogan_cifar10_a|b|c"; -1 if unknown */
AGDEF int ag_generator_init_derived(ag_generator *g, const int *arch14, int gf, int latent_dim, int bottom_width,
                                    int out_channels, ag_rng *rng, ag_error *err);
/* Generator weights from a file, all or nothing (strict names and shapes; on error g is
   unchanged and the message names the file and the mismatch):
   - PyTorch .pth (zip or legacy form): a training checkpoint's 'avg_gen_state_dict' when
     present (as the reference's test.py), else its 'gen_state_dict', else the file is a
     bare state_dict;
   - .safetensors: a bare state_dict, or an autogan.h GAN checkpoint (ag_gan_save): its EMA
     weights when it holds them (the counterpart of avg_gen_state_dict), else its "G." weights.
   `loaded_key` (may be NULL) receives which of those was used ("avg_gen_state_dict",
   "gen_state_dict", "state_dict", "ema" or "G"). */
AGDEF int ag_generator_load(ag_generator *g, const char *path, char *loaded_key, size_t key_len, ag_error *err);

AGDEF int  ag_discriminator_init(ag_discriminator *d, int df, int in_channels, int spectral_norm,
                                 ag_rng *rng, ag_error *err);
AGDEF void ag_discriminator_free(ag_discriminator *d);
AGDEF int  ag_discriminator_set_stage(ag_discriminator *d, int stage, ag_error *err);
AGDEF void ag_discriminator_reset_params(ag_discriminator *d, ag_rng *rng);
AGDEF ag_tensor *ag_discriminator_forward(ag_ctx *ctx, ag_discriminator *d, ag_tensor *x); /* -> [N,1] */
AGDEF int  ag_stage_resolution(int stage, int bottom_width);          /* bw * 2^(stage+1) */

/* ---- one GAN iteration -------------------------------------------------------------- */
typedef struct ag_gan {
    ag_generator *G; ag_discriminator *D;
    ag_adam opt_g, opt_d;
    int dis_bs, gen_bs, n_critic;
    int64_t iteration;      /* D steps taken */
    /* the last step's tensors (valid until the next step or ag_ctx_reset) */
    ag_tensor *last_fake, *last_d_real, *last_d_fake, *last_g_out;
} ag_gan;
typedef struct ag_gan_losses { float d_loss, g_loss; int g_stepped; } ag_gan_losses;

AGDEF int ag_gan_init(ag_gan *gan, ag_generator *G, ag_discriminator *D, int dis_bs, int gen_bs, int n_critic,
                      float g_lr, float d_lr, float beta1, float beta2, ag_error *err);
AGDEF void ag_gan_free(ag_gan *gan);
/* One D step on dis_bs real images (NCHW floats in [-1,1] at the stage's resolution)
   and dis_bs fakes from z_d; when z_d is NULL it is drawn from the context's PRNG. */
AGDEF int ag_gan_d_step(ag_ctx *ctx, ag_gan *gan, const float *real, const float *z_d, float *d_loss);
/* The same on n real images and n fakes (n >= 1: the data loader's partial last batch, as
   the reference's imgs.shape[0]); z_d, when given, holds n latents. */
AGDEF int ag_gan_d_step_n(ag_ctx *ctx, ag_gan *gan, const float *real, int n, const float *z_d, float *d_loss);
AGDEF int ag_gan_g_step(ag_ctx *ctx, ag_gan *gan, const float *z_g, float *g_loss);
/* A full iteration: D step, then a G step when (iteration % n_critic == 0). */
AGDEF int ag_gan_step(ag_ctx *ctx, ag_gan *gan, const float *real, ag_gan_losses *out);
/* The same with n real images (ag_gan_d_step_n: n >= 1, e.g. the loader's partial last batch
   as ag_data_loader_next returns it); the G step still draws gen_bs latents. ag_gan_step is
   ag_gan_step_n with n = dis_bs. */
AGDEF int ag_gan_step_n(ag_ctx *ctx, ag_gan *gan, const float *real, int n, ag_gan_losses *out);

/* ---- checkpoints ---------------------------------------------------------------------- */
/* A GAN checkpoint (.safetensors): G and D (parameters, buffers, counters) under "G." and
   "D.", both Adam states ("adam_g.m.<name>", ...), the EMA of G when given ("ema.<name>"),
   and in the metadata the iteration, Adam steps, stage, architecture, the context's PRNG
   state and the caller's extra fields (`"key":"value"` pairs, comma-separated, or NULL).
   Loading restores all of it exactly or, on any error, changes nothing. */
AGDEF int ag_gan_save(const char *path, const ag_gan *gan, const ag_ema *ema, const ag_ctx *ctx,
                      const char *extra_fields, ag_error *err);
AGDEF int ag_gan_load(const char *path, ag_gan *gan, ag_ema *ema, ag_ctx *ctx, char **metadata, ag_error *err);
/* What a GAN checkpoint holds, read from its metadata and checked (counters in range, a
   valid architecture for the stage): build the models from it before ag_gan_load, which
   refuses a checkpoint whose stage or architecture differs from the models it is given
   (their buffers, e.g. the real-image batch, are sized for one stage). */
typedef struct ag_gan_checkpoint_info {
    int stage, arch[AG_ARCH_MAX], arch_len, has_ema;
    int64_t iteration, adam_g_step, adam_d_step;
    int train_layout;      /* 1: written by ag_gan_save_train (the reference's key names) */
} ag_gan_checkpoint_info;
AGDEF int ag_gan_checkpoint_read_info(const char *path, ag_gan_checkpoint_info *info, ag_error *err);
/* The reference's checkpoint layout and model descriptions (build/train, build/sample).
   ag_gan_save_train writes what train_derived.py's save_checkpoint holds, as .safetensors:
   "gen_state_dict.*", "dis_state_dict.*", "avg_gen_state_dict.*" (the EMA parameters with G's
   live BatchNorm buffers: a whole state_dict, what test.py and ag_generator_load take),
   "gen_optimizer.m|v.*", "dis_optimizer.m|v.*"; the metadata as ag_gan_save's plus the caller's
   fields (train.c: epoch, best_fid, the loader's state). ag_gan_load and
   ag_gan_checkpoint_read_info read both layouts. Every checkpoint and generator file written
   here names its model in the metadata: gen_model (autogan_cifar10_a|b|c, "derived" for another
   14-token derived model, "shared_gan"), arch, gf_dim, latent_dim, bottom_width, channels (and
   df_dim, d_spectral_norm for a GAN), so ag_generator_spec_read + ag_generator_init_spec rebuild
   it with no other input. */
AGDEF int ag_gan_save_train(const char *path, const ag_gan *gan, const ag_ema *ema, const ag_ctx *ctx,
                            const char *extra_fields, ag_error *err);
/* G alone as a bare state_dict (EMA parameters with live buffers when ema is given) */
AGDEF int ag_generator_save_ema(const char *path, const ag_generator *g, const ag_ema *ema, const char *extra_fields, ag_error *err);
typedef struct ag_generator_spec {
    char gen_model[32]; int derived, stage, arch[AG_ARCH_MAX], arch_len;
    int gf, latent_dim, bottom_width, channels;
    int df, d_spectral_norm;   /* 0 / -1 when the file holds no discriminator description */
} ag_generator_spec;
AGDEF int  ag_generator_spec_read(const char *path, ag_generator_spec *spec, ag_error *err);  /* .safetensors metadata */
AGDEF int  ag_generator_init_spec(ag_generator *g, const ag_generator_spec *spec, ag_rng *rng, ag_error *err);
AGDEF void ag_generator_spec_describe(const ag_generator_spec *spec, char *out, size_t cap);   /* for messages */
/* One call from a file to a loaded generator: g is built (initialised here; whatever it held is
   ignored) as `spec` describes, or, when spec is NULL, as the file's metadata names it
   (ag_generator_spec_read: the .safetensors that build/train, ag_gan_save and
   ag_generator_save_ema write), then its weights are read as ag_generator_load reads them
   (every format: .pth zip or legacy, .safetensors bare or a GAN/training checkpoint).
   use_ema 1: the EMA weights when the file holds them ('avg_gen_state_dict', "ema."), else the
   live or bare ones (ag_generator_load's choice); use_ema 0: the live generator
   ('gen_state_dict', "G."), an error for a .pth holding only 'avg_gen_state_dict'; a bare
   state_dict is taken as it is either way. g starts in train mode (as ag_generator_init);
   loaded_key (may be NULL) as ag_generator_load's. g is overwritten (free a generator it held
   first); on failure it is left empty (zeroed), nothing to free. */
AGDEF int  ag_generator_create_from_checkpoint(ag_generator *g, const char *path, const ag_generator_spec *spec, int use_ema,
                                               char *loaded_key, size_t key_len, ag_error *err);

/* ---- controller and search ----------------------------------------------------------
   The AutoGAN controller: one LSTM cell (hidden hid_size), an embedding table over every
   token choice of the stage, one linear decoder per token. Stage 0 decides the 4 tokens of
   cell 1 ([2, 3, 3, 2] choices); stage s >= 1 decides the 5 tokens of cell s+1
   ([2, 3, 3, 2, 2^s]). State_dict names as the reference: lstm.weight_ih, lstm.weight_hh,
   lstm.bias_ih, lstm.bias_hh, encoder.weight, decoders.K.weight, decoders.K.bias. */
#define AG_CTRL_MAX_TOKENS 5
typedef struct ag_controller {
    int stage, hid_size, num_tokens;
    int choices[AG_CTRL_MAX_TOKENS], offset[AG_CTRL_MAX_TOKENS];  /* offset: first embedding row of token i */
    ag_tensor *w_ih, *w_hh, *b_ih, *b_hh, *encoder;
    ag_tensor *dec_w[AG_CTRL_MAX_TOKENS], *dec_b[AG_CTRL_MAX_TOKENS];
    ag_params params;
} ag_controller;
/* The graph of one pass over the stage's tokens (arena tensors, valid until ag_ctx_reset). */
typedef struct ag_controller_pass {
    int batch, num_tokens;
    ag_tensor *logits[AG_CTRL_MAX_TOKENS];    /* [batch, choices_i] */
    ag_tensor *log_probs[AG_CTRL_MAX_TOKENS]; /* [batch, choices_i]: log_softmax of the logits */
    ag_tensor *h, *c;                         /* the final LSTM state [batch, hid] */
} ag_controller_pass;
/* Architectures kept at a growth with the controller's final (h, c) after each. */
typedef struct ag_kept_archs {
    int count, len, hid_size;   /* len: tokens per kept architecture (the prefix of later ones) */
    int *archs;                 /* [count][len] */
    float *h, *c;               /* [count][hid_size] */
} ag_kept_archs;

/* PyTorch's default initialisers: LSTM U(+-1/sqrt(hid)), embedding N(0, 1), linear U(+-1/sqrt(fan_in)) */
AGDEF int  ag_controller_init(ag_controller *c, int stage, int hid_size, ag_rng *rng, ag_error *err);
AGDEF void ag_controller_free(ag_controller *c);
AGDEF void ag_controller_reset_params(ag_controller *c, ag_rng *rng);
/* One pass over the stage's tokens for `batch` rows from (h0, c0) ([batch][hid], NULL for
   zeros); the first input is a zero vector, the next one the embedding of the previous
   action (+ its token's offset). With rng, actions are drawn from the softmax and written
   to actions [batch][num_tokens]; without, they are read from it (teacher forcing, so the
   same graph can be scored and differentiated). log_probs (of the chosen actions) and
   entropies: [batch][num_tokens], or NULL. Records a graph when grad mode is on. */
AGDEF int  ag_controller_forward(ag_ctx *ctx, ag_controller *c, int batch, const float *h0, const float *c0,
                                 ag_rng *rng_or_null, int *actions, float *log_probs, float *entropies,
                                 ag_controller_pass *pass);
/* REINFORCE loss of a pass: -sum_b sum_t log p(a_bt) * advantage_b - coeff * sum_b sum_t H_bt. */
AGDEF ag_tensor *ag_controller_loss(ag_ctx *ctx, const ag_controller_pass *pass, const int *actions,
                                    const float *advantage, float entropy_coeff);
/* Sample `batch` whole architectures (no graph): each row continues a kept architecture drawn
   uniformly (its tokens and its (h, c)) when kept has entries, else starts from zeros.
   archs: [batch][AG_ARCH_MAX] (ag_arch_len(stage) used); prefix_index [batch], h_out/c_out
   [batch][hid], log_probs/entropies [batch][num_tokens]: each may be NULL. */
AGDEF int  ag_controller_sample(ag_ctx *ctx, ag_controller *c, ag_rng *rng, const ag_kept_archs *kept, int batch,
                                int *archs, int *prefix_index, float *log_probs, float *entropies,
                                float *h_out, float *c_out);
/* One REINFORCE update: ag_ctx_reset, a teacher-forced pass over this stage's tokens
   (actions [batch][num_tokens]) from (h0, c0), the loss above, backward, one Adam step. */
AGDEF int  ag_controller_update(ag_ctx *ctx, ag_controller *c, ag_adam *opt, int batch, const float *h0, const float *c0,
                                const int *actions, const float *advantage, float entropy_coeff, float *loss_out);
AGDEF void ag_kept_archs_free(ag_kept_archs *k);
/* keep `count` architectures (len tokens each) with their (h, c); replaces what k held */
AGDEF int  ag_kept_archs_set(ag_kept_archs *k, int count, int len, int hid_size, const int *archs, int arch_stride,
                             const float *h, const float *c, ag_error *err);

/* Sliding window of losses for the dynamic reset (the reference's RunningStats): population
   variance of the last `cap` values. */
typedef struct ag_loss_window { int cap, count, head; float *v; } ag_loss_window;
AGDEF int    ag_loss_window_init(ag_loss_window *w, int cap, ag_error *err);
AGDEF void   ag_loss_window_free(ag_loss_window *w);
AGDEF void   ag_loss_window_push(ag_loss_window *w, float x);
AGDEF void   ag_loss_window_clear(ag_loss_window *w);
AGDEF int    ag_loss_window_full(const ag_loss_window *w);
AGDEF double ag_loss_window_var(const ag_loss_window *w);   /* 0 with fewer than 2 values */

/* Everything a search needs to resume exactly, besides the GAN (G, D, Adam) and the
   context's PRNG (latents): the stage, the next iteration, the controller and its Adam,
   the kept architectures, the REINFORCE baseline, both loss windows and the search PRNG
   (architecture and prefix draws). */
typedef struct ag_search_state {
    int stage, search_iter;       /* search_iter: the next iteration to run */
    int64_t ctrl_steps;           /* controller steps taken over the whole search */
    ag_controller ctrl; ag_adam ctrl_opt;
    float ctrl_lr, ctrl_beta1, ctrl_beta2;
    ag_kept_archs kept;
    int has_baseline; float baseline;
    ag_loss_window g_window, d_window;
    ag_rng rng;
} ag_search_state;
AGDEF int  ag_search_state_init(ag_search_state *s, int hid_size, float ctrl_lr, float beta1, float beta2,
                                int window, uint64_t seed, ag_error *err);
AGDEF void ag_search_state_free(ag_search_state *s);
/* a fresh controller (and Adam) for `stage`, initialised from the search PRNG; the baseline restarts */
AGDEF int  ag_search_new_controller(ag_search_state *s, int stage, ag_error *err);
/* The search checkpoint (.safetensors, written to a temporary name and renamed): the GAN
   as ag_gan_save ("G.", "D.", "adam_g.*", "adam_d.*"), the controller ("ctrl.") and its
   Adam ("adam_c.*"), "kept.archs"/"kept.h"/"kept.c", "window.g"/"window.d", and in the
   metadata the counters, both PRNG states, the baseline and the caller's extra fields.
   Loading checks all of it first (every metadata value strictly: digits only and in range,
   PRNG streams odd, a finite baseline; the message names the file and the key) and changes
   nothing on any error. */
AGDEF int  ag_search_save(const char *path, const ag_search_state *s, const ag_gan *gan, const ag_ctx *ctx,
                          const char *extra_fields, ag_error *err);
AGDEF int  ag_search_load(const char *path, ag_search_state *s, ag_gan *gan, ag_ctx *ctx, char **metadata, ag_error *err);

/* ---- run directories (logs/NAME of build/search and build/train) ----
   ag_run_dir_lock: an advisory lock (DIR/.lock) held until ag_run_dir_unlock or the
   process ends; a second holder, in this process or another, gets an error naming the
   first one's pid. ag_run_dir_describe: 0 when dir is absent or empty (the lock file
   aside); else 1 and what it holds in `what` ("a search (...)", "a training run (...)",
   or its first file names), so a program can refuse to write one run over another. */
typedef struct ag_run_lock { int fd; } ag_run_lock;
AGDEF int  ag_run_dir_lock(const char *dir, ag_run_lock *lock, ag_error *err);
AGDEF void ag_run_dir_unlock(ag_run_lock *lock);
AGDEF int  ag_run_dir_describe(const char *dir, char *what, size_t cap);

/* ---- Inception-v3 (the 2015-12-05 FID network) and scores ----------------------------
   Built from a state dict with the keys of pt_inception-2015-12-05-6726825d.pth
   (P.conv.weight, P.bn.{weight,bias,running_mean,running_var} per conv prefix P, fc.weight,
   fc.bias); BatchNorm (eps 1e-3) is folded into the convolutions at load time. The
   network owns a context of its own, so scoring never disturbs the caller's arena. */
typedef struct ag_inception ag_inception;
AGDEF ag_inception *ag_inception_from_arrays(const ag_array_list *state_dict, ag_error *err);
/* the Inception weights from a .pth state dict (pt_inception-2015-12-05-6726825d.pth) or a
   .safetensors file with the same keys */
AGDEF ag_inception *ag_inception_load(const char *path, ag_error *err);
/* a state dict with the FID network's keys and shapes, not trained: He-normal convs from
   rng, identity BatchNorm, zero fc (for benchmarks and smoke tests) */
AGDEF int ag_inception_random_state_dict(ag_array_list *state_dict, ag_rng *rng, ag_error *err);
AGDEF void ag_inception_free(ag_inception *net);
AGDEF void ag_inception_set_threads(ag_inception *net, int num_threads);
/* images: n x 3 x 299 x 299 floats, already preprocessed; pool3: n x 2048 and/or
   logits: n x 1008 (pool3 . fcᵀ + bias when with_bias, else without: the IS convention) */
AGDEF int  ag_inception_forward(ag_inception *net, const float *images, int n, float *pool3, float *logits,
                                int with_bias, ag_error *err);
/* Preprocessing of one uint8 H x W x 3 image to 3 x 299 x 299 floats.
   TF-exact (the published numbers): TF1 legacy bilinear resize src = dst*in/out, then
   (x - 128) / 128. pytorch-fid: x/255, bilinear align_corners=False, then 2x - 1. */
AGDEF void ag_inception_preprocess_tf(const unsigned char *hwc, int h, int w, float *chw299);
AGDEF void ag_inception_preprocess_pytorch(const unsigned char *hwc, int h, int w, float *chw299);
/* Inception score: softmax of logits (n x classes, computed in double), `splits` equal
   splits in input order; mean and population standard deviation of exp(mean KL). */
AGDEF int ag_inception_score(const float *logits, int n, int classes, int splits, double *mean, double *std, ag_error *err);

/* FID statistics: mean and covariance (N-1) in double, accumulated in batches. */
typedef struct ag_fid_stats { int dim; int64_t count; double *mu, *sigma; double *shift, *sum, *sumsq; } ag_fid_stats;
AGDEF int  ag_fid_stats_init(ag_fid_stats *s, int dim, ag_error *err);
AGDEF int  ag_fid_stats_add(ag_fid_stats *s, const float *features, int n, ag_error *err);   /* n x dim; refuses NaN */
AGDEF int  ag_fid_stats_finish(ag_fid_stats *s, ag_error *err);                /* fills mu, sigma */
AGDEF void ag_fid_stats_free(ag_fid_stats *s);
/* reads published statistics (fid_stats_cifar10_train.npz: float 'mu' [d], 'sigma' [d, d])
   into s (dim, mu, sigma; nothing to add to) and checks them, naming the file: every value
   finite, |mu|^2 and the trace finite, sigma square and symmetric (to 1e-6 relative), its
   diagonal >= 0 and |sigma_ij| <= sqrt(sigma_ii sigma_jj) (to 1e-6: what any covariance
   satisfies). The caller checks that dim is its features' dimension. */
AGDEF int  ag_fid_stats_load(const char *path, ag_fid_stats *s, ag_error *err);
/* d² = |mu1-mu2|² + tr s1 + tr s2 - 2 tr sqrt(s1 s2); the trace term is the sum of square
   roots of the eigenvalues of Lᵀ s1 L with s2 = L Lᵀ (1e-6·I added when Cholesky fails).
   Fails on NaN or infinite inputs, a second covariance that is not positive semi-definite,
   and a result that is not finite (values too large) */
AGDEF int  ag_fid(const double *mu1, const double *sigma1, const double *mu2, const double *sigma2, int dim,
                  double *fid, ag_error *err);
AGDEF int  ag_sym_eigenvalues(double *a, int n, double *eig, ag_error *err);   /* a is destroyed */

/* ---- the compact classifier (the fast reward and the default scorer) ------------------
   A small Inception-style CNN for a fixed input size (C x S x S; Fashion-MNIST: 1 x 32 x 32,
   the 28 x 28 images resized to 32 as the GAN sees them):
       conv1  3x3 C->32, BN, ReLU            S x S
       max pool 2                             S/2
       conv2  3x3 32->48, BN, ReLU            S/2
       max pool 2                             S/4
       mixed1 inception block 48 -> 128       S/4
       mixed2 inception block 128 -> 192      S/4
       max pool 2                             S/8
       mixed3 inception block 192 -> 256      S/8
       global average pool -> features [N, 256] (the "classifier FID" features)
       fc 256 -> classes -> logits
   An inception block has four branches concatenated along channels, each a BasicConv2d
   (conv without bias -> BatchNorm eps 1e-5 -> ReLU): branch1x1; branch3x3_1 (1x1) ->
   branch3x3_2 (3x3); branch3x3dbl_1 (1x1) -> _2 (3x3) -> _3 (3x3); a 3x3 average pool
   (count_include_pad false) -> branch_pool (1x1). state_dict names as a PyTorch module
   would have them: conv1.conv.weight, conv1.bn.running_mean, mixed2.branch3x3dbl_3.bn.weight,
   fc.weight, fc.bias (tests/golden/gen_classifier.py is that module). Saved as .safetensors
   with metadata "format": "autogan.h classifier 1" and the input size, channels, classes,
   feature dim and data set. */
typedef struct ag_cls_unit { ag_conv_layer conv; ag_bn_layer bn; } ag_cls_unit;      /* BasicConv2d */
typedef struct ag_cls_block {
    ag_cls_unit branch1x1, branch3x3_1, branch3x3_2, branch3x3dbl_1, branch3x3dbl_2, branch3x3dbl_3, branch_pool;
    int in, out;
} ag_cls_block;
typedef struct ag_classifier {
    int in_channels, in_size, num_classes, feature_dim;
    char dataset[64];          /* what it was trained on (metadata), "" when unknown */
    ag_cls_unit conv1, conv2;
    ag_cls_block mixed[3];
    ag_conv_layer fc;          /* weight [classes, feature_dim], bias [classes] */
    ag_params params;
    int training;              /* BatchNorm: batch statistics (1) or running ones (0) */
} ag_classifier;
#define AG_CLASSIFIER_FEATURES 256

AGDEF int  ag_classifier_init(ag_classifier *net, int in_channels, int in_size, int num_classes, ag_rng *rng, ag_error *err);
AGDEF void ag_classifier_free(ag_classifier *net);
AGDEF void ag_classifier_reset_params(ag_classifier *net, ag_rng *rng);  /* PyTorch's default init, BN 1/0 */
/* x [N, C, S, S] (floats as ag_data_loader_next makes them) -> logits [N, classes];
   *features (when not NULL) receives the pooled features [N, feature_dim] */
AGDEF ag_tensor *ag_classifier_forward(ag_ctx *ctx, ag_classifier *net, ag_tensor *x, ag_tensor **features);
/* dataset and extra_fields (`"key":"value"` pairs, comma-separated) go into the metadata */
AGDEF int  ag_classifier_save(const char *path, const ag_classifier *net, const char *dataset, const char *extra_fields, ag_error *err);
/* builds *net from the file (shape from its metadata); *net is untouched on failure */
AGDEF int  ag_classifier_load(const char *path, ag_classifier *net, ag_error *err);

/* ---- one scoring interface over Inception-v3 and the compact classifier ----------------
   Images come as the generator makes them (n x c x h x w floats in [-1, 1], c 1 or 3, any
   h, w) or as uint8 n x h x w x c. Floats are first quantised exactly as the reference
   saves images: uint8 = trunc(clamp(x * 127.5 + 127.5, 0, 255)). Then, per kind:
     inception:  gray replicated to RGB, TF-exact resize to 299 and (x-128)/128 (the published
                 numbers; ag_scorer_set_pytorch_preprocess switches to pytorch-fid's), logits
                 without the fc bias (the IS convention, 1008 classes), pool3 features (2048);
     classifier: resized to its input size as the data sets are (PIL bilinear,
                 ag_image_resize_bilinear_pil), RGB to gray as PIL's convert("L") when the
                 classifier has 1 channel (gray replicated when it has 3), ((x/255) - 0.5)/0.5
                 as ag_data_loader_next, BatchNorm in eval mode.
   logits (n x classes) and features (n x feature_dim) may each be NULL. */
typedef struct ag_scorer ag_scorer;
AGDEF ag_scorer  *ag_scorer_load(const char *path, ag_error *err);   /* kind from the file's metadata/keys */
AGDEF ag_scorer  *ag_scorer_from_classifier(const ag_classifier *net, ag_error *err); /* a copy of net's weights */
AGDEF void        ag_scorer_free(ag_scorer *s);
AGDEF void        ag_scorer_set_threads(ag_scorer *s, int n);
AGDEF void        ag_scorer_set_pytorch_preprocess(ag_scorer *s, int on);   /* inception only */
AGDEF const char *ag_scorer_kind(const ag_scorer *s);                /* "inception" | "classifier" */
AGDEF int         ag_scorer_num_classes(const ag_scorer *s);
AGDEF int         ag_scorer_feature_dim(const ag_scorer *s);
AGDEF int         ag_scorer_input_size(const ag_scorer *s);          /* 299 or the classifier's S */
AGDEF int         ag_scorer_input_channels(const ag_scorer *s);      /* 3 or the classifier's C */
AGDEF const char *ag_scorer_dataset(const ag_scorer *s);             /* classifier's data set, "" otherwise */
AGDEF int ag_scorer_forward(ag_scorer *s, const float *images, int n, int c, int h, int w, float *logits, float *features, ag_error *err);
AGDEF int ag_scorer_forward_u8(ag_scorer *s, const unsigned char *nhwc, int n, int h, int w, int c, float *logits, float *features, ag_error *err);
/* IS (ag_inception_score over the scorer's softmax, `splits` splits in input order) */
AGDEF int ag_scorer_inception_score(ag_scorer *s, const float *images, int n, int c, int h, int w, int splits,
                                    double *mean, double *std, ag_error *err);
/* FID statistics of images, accumulated into st (initialised with ag_scorer_feature_dim) */
AGDEF int ag_scorer_fid_stats_add(ag_scorer *s, ag_fid_stats *st, const float *images, int n, int c, int h, int w, ag_error *err);

/* ---- file formats -------------------------------------------------------------------
   Readers work from memory (`_read_from_memory`) or from a file (the path goes into
   errors); on failure the output is zeroed and nothing leaks. Writers go through a
   temporary file, fsync and a rename (ag_write_file_atomic). */

/* -- containers: checksums, gzip, tar, zip -- */
/* -- checksums: pass 0 (crc32) / 1 (adler32) as the initial value, or a previous result -- */
AGDEF uint32_t ag_crc32(uint32_t crc, const void *data, size_t len);
AGDEF uint32_t ag_adler32(uint32_t adler, const void *data, size_t len);

/* -- gzip: every member, CRC-32 and length checked; max_out (0 = none) bounds the output -- */
AGDEF int ag_gunzip(const unsigned char *buf, size_t len, size_t max_out, unsigned char **out, size_t *out_len, ag_error *err);

/* -- tar: POSIX ustar (prefix + name), GNU long names and base-256 sizes, gzipped or not; the
   archive is streamed through the callback, nothing is extracted. For each regular-file
   member the callback is called once with data NULL, len 0 (offset 0: the member starts),
   then with consecutive pieces of its data (offset = bytes before this piece); it returns
   -1 (with a message in err) to stop. The reading ends at the first end-of-archive (zero)
   block; a gzipped archive is inflated at most 1 MB past it (to check its CRC-32 when it
   ends there). ag_tar_read refuses a FIFO or device. */
typedef int (*ag_tar_callback)(void *user, const char *name, uint64_t size, const unsigned char *data, size_t len,
                               uint64_t offset, ag_error *err);
AGDEF int ag_tar_read_from_memory(const unsigned char *buf, size_t len, ag_tar_callback cb, void *user, ag_error *err);
AGDEF int ag_tar_read(const char *path, ag_tar_callback cb, void *user, ag_error *err);

/* -- zip archives -- */
typedef struct ag_zip_entry {
    char *name;              /* NUL-terminated member name */
    uint64_t size;           /* uncompressed size (central directory) */
    uint64_t comp_size;      /* compressed size (central directory) */
    uint64_t local_offset;   /* offset of the local header */
    uint32_t crc32;
    int method;              /* 0 stored, 8 deflate; others are rejected on extraction */
    int flags;               /* general purpose flags; bit 0 = encrypted */
} ag_zip_entry;
typedef struct ag_zip {
    const unsigned char *data; size_t len;   /* the whole archive */
    unsigned char *owned;                    /* data when ag_zip_open read the file */
    char *label;                             /* file path or "<memory>", for messages */
    ag_zip_entry *entries; int count;
} ag_zip;
/* The memory form does not copy buf: keep it alive until ag_zip_close. */
AGDEF int  ag_zip_open_from_memory(ag_zip *zip, const unsigned char *buf, size_t len, ag_error *err);
AGDEF int  ag_zip_open(ag_zip *zip, const char *path, ag_error *err);
AGDEF void ag_zip_close(ag_zip *zip);
AGDEF int  ag_zip_find(const ag_zip *zip, const char *name);          /* entry index or -1 */
AGDEF int  ag_zip_find_suffix(const ag_zip *zip, const char *suffix); /* first match or -1 */
/* Decompress member `index` into a new AG_MALLOC buffer (CRC checked). max_size (0 = none)
   rejects members larger than that before anything is allocated. */
AGDEF int  ag_zip_extract(const ag_zip *zip, int index, size_t max_size, unsigned char **data, size_t *len, ag_error *err);
/* Zero-copy view of a stored (method 0) member inside zip->data (CRC checked). */
AGDEF int  ag_zip_view(const ag_zip *zip, int index, const unsigned char **data, size_t *len, ag_error *err);

/* Zip writer (stored members, in memory). Zero-initialise, add members, then finish. */
typedef struct ag_zip_writer {
    unsigned char *buf; size_t len, cap;     /* local headers + data */
    unsigned char *cdir; size_t cdir_len, cdir_cap;
    int count;
} ag_zip_writer;
AGDEF int  ag_zip_writer_add(ag_zip_writer *w, const char *name, const void *data, size_t len, ag_error *err);
/* Appends the central directory and hands the archive over (AG_FREE it); resets the writer. */
AGDEF int  ag_zip_writer_finish(ag_zip_writer *w, unsigned char **out, size_t *out_len, ag_error *err);
AGDEF void ag_zip_writer_free(ag_zip_writer *w);

/* -- array files: .safetensors, .npy/.npz, idx, PyTorch .pth -- */
/* .safetensors: F32 tensors and I64 counters by name. Saving goes through a temporary
   file and a rename. Loading checks every name, dtype and shape first and changes
   nothing unless all of them fit (strict: a missing or unexpected tensor is an error;
   with strict 0, tensors in the file that the set lacks are ignored). */
AGDEF int ag_safetensors_save(const char *path, const ag_params *ps, const char *metadata_json_or_null, ag_error *err);
AGDEF int ag_safetensors_load(const char *path, ag_params *ps, int strict, ag_error *err);
AGDEF int ag_safetensors_read(const char *path, ag_array_list *out, char **metadata_json, ag_error *err);
AGDEF int ag_safetensors_read_from_memory(const unsigned char *buf, size_t len, ag_array_list *out, char **metadata_json, ag_error *err);
/* the __metadata__ object alone (JSON text, AG_MALLOC'd; NULL when the file has none),
   reading only the header: cheap on a large checkpoint */
AGDEF int ag_safetensors_read_metadata(const char *path, char **metadata_json, ag_error *err);
AGDEF int ag_safetensors_write(const char *path, const ag_array_list *arrays, const char *metadata_json_or_null, ag_error *err);
/* value of a string key in the flat JSON object of __metadata__: -1 ("" in out) when absent,
   malformed or longer than out_len - 1 bytes (never truncated) */
AGDEF int ag_json_get_string(const char *json, const char *key, char *out, size_t out_len);
/* the same value of any length, AG_MALLOC'd (AG_FREE it); NULL when absent or malformed */
AGDEF char *ag_json_get_string_alloc(const char *json, const char *key);
/* Metadata fields of any length for the checkpoint writers' extra_fields argument:
   zero-initialise, add "key":"value" fields (values escaped: any path may hold quotes,
   backslashes or control characters), pass .text (NULL when empty), then free. An
   allocation failure sets .failed; check it before writing. */
typedef struct ag_json_fields { char *text; size_t len, cap; int failed; } ag_json_fields;
AGDEF void ag_json_add_string(ag_json_fields *f, const char *key, const char *value);
AGDEF void ag_json_add_int(ag_json_fields *f, const char *key, long long value);
AGDEF void ag_json_add_double(ag_json_fields *f, const char *key, double value);   /* %.17g: read back exactly */
AGDEF void ag_json_fields_free(ag_json_fields *f);

/* -- NumPy .npy / .npz --
   Reads descr <f4 <f8 <f2 <i8 <i4 <i2 |i1 |u1 |b1 (and their '>' big-endian forms, swapped),
   fortran_order True (transposed to C order), versions 1.0/2.0/3.0. The npy array's name is
   NULL; npz arrays are named by member without ".npy". Writers: every dtype but BF16. */
AGDEF int ag_npy_read_from_memory(const unsigned char *buf, size_t len, ag_array *out, ag_error *err);
AGDEF int ag_npy_read(const char *path, ag_array *out, ag_error *err);
AGDEF int ag_npy_write_to_memory(const ag_array *a, unsigned char **out, size_t *out_len, ag_error *err);
AGDEF int ag_npy_write(const char *path, const ag_array *a, ag_error *err);
/* the .npy header alone for a's dtype and shape (a->data is not used), to stream the data
   after it; *len is a multiple of 64, at most 512 */
AGDEF int ag_npy_header(const ag_array *a, unsigned char *buf, size_t cap, size_t *len, ag_error *err);
AGDEF int ag_npz_read_from_memory(const unsigned char *buf, size_t len, ag_array_list *out, ag_error *err);
AGDEF int ag_npz_read(const char *path, ag_array_list *out, ag_error *err);
AGDEF int ag_npz_write_to_memory(const ag_array_list *arrays, unsigned char **out, size_t *out_len, ag_error *err);
AGDEF int ag_npz_write(const char *path, const ag_array_list *arrays, ag_error *err);

/* -- idx (the MNIST format): types u8 i8 i16 i32 f32 f64, 1 to 8 dims, gzipped or not; the data
   must be exactly as long as the header's shape says (gzipped: inflating stops with an error
   at the first byte more) -- */
AGDEF int ag_idx_read_from_memory(const unsigned char *buf, size_t len, ag_array *out, ag_error *err);
AGDEF int ag_idx_read(const char *path, ag_array *out, ag_error *err);

/* -- PyTorch .pth --
   Zip form (PyTorch >= 1.6) and legacy form (pickles + raw storages). One contiguous array per
   tensor (views, offsets, strides and shared storages materialised), named by its dict key;
   nested dicts / lists join keys with '.' ("state_dict.conv.weight", "layers.0.bias").
   Python int / float / bool values become 0-d I64 / F64 / BOOL arrays; other objects are
   skipped. A bare tensor at top level is named "". Use ag_array_list_select_prefix to pick
   one sub-dict of a checkpoint. */
AGDEF int ag_pth_read_from_memory(const unsigned char *buf, size_t len, ag_array_list *out, ag_error *err);
AGDEF int ag_pth_read(const char *path, ag_array_list *out, ag_error *err);

/* -- images: PNG and line plots -- */
/* -- PNG --
   Decode to a U8 array [H, W, C]. channels 0 keeps the file's layout: gray 1, gray+alpha 2,
   RGB 3, RGBA 4, palette 3 (4 with tRNS); a tRNS colour key on gray/RGB adds alpha.
   channels 1..4 converts (gray = (77 R + 150 G + 29 B) >> 8; alpha dropped or set to 255).
   All bit depths (1/2/4 scaled to 0..255, 16 reduced to its high byte), all filters, Adam7.
   Images over AG_PNG_MAX_PIXELS pixels are rejected. */
#ifndef AG_PNG_MAX_PIXELS
#define AG_PNG_MAX_PIXELS ((uint64_t)1 << 26)   /* 64 M pixels, e.g. 8192 x 8192 */
#endif
AGDEF int ag_png_read_from_memory(const unsigned char *buf, size_t len, int channels, ag_array *out, ag_error *err);
AGDEF int ag_png_read(const char *path, int channels, ag_array *out, ag_error *err);
/* Encode 8-bit pixels [height][width][channels] (1 gray, 2 gray+alpha, 3 RGB, 4 RGBA), with
   per-row filter choice and an LZ77 + fixed-Huffman deflate stream. */
AGDEF int ag_png_write_to_memory(const unsigned char *pixels, int width, int height, int channels, unsigned char **out, size_t *out_len, ag_error *err);
AGDEF int ag_png_write(const char *path, const unsigned char *pixels, int width, int height, int channels, ag_error *err);
/* Generated images (NCHW floats in [-1, 1]) to 8-bit NHWC pixels, out_channels per pixel
   (channel k is input channel min(k, c - 1): 1 -> 3 replicates gray into RGB). Modes:
     AG_U8_TRUNCATE  the reference's x.mul_(127.5).add_(127.5).clamp_(0, 255).to(uint8):
                     two float32 roundings (never fused into one FMA), clamped, truncated;
                     what build/train's grids and build/sample's images hold
     AG_U8_ROUND     floor((x + 1) * 127.5 + 0.5), each step rounded to float32, clamped to
                     [0, 255] (round half up; build/search's sample grids)
   NaN gives 0, +inf 255. Returns -1 (nothing written) for a NULL buffer, a size < 1, c or
   out_channels outside 1..4, or an unknown mode. */
enum { AG_U8_TRUNCATE = 0, AG_U8_ROUND = 1 };
AGDEF int ag_images_to_u8(const float *nchw, int n, int c, int h, int w, int out_channels, int mode, unsigned char *nhwc);
/* n images [n][h][w][c] laid out in a grid of `cols` columns and ceil(n / cols) rows, with
   `gap` black pixels between the images and around the edge: width cols*(w+gap)+gap, height
   rows*(h+gap)+gap, the background 0 (a last row not full stays black; cols is not reduced
   when n < cols). ag_image_grid returns the pixels [grid_h][grid_w][c] (free with AG_FREE) or
   NULL with the reason in err; ag_png_write_grid writes them as a PNG (atomically). With gap 2:
   build/train's 5x5 grids, build/search's 8x8 and build/dataset's --grid. */
AGDEF unsigned char *ag_image_grid(const unsigned char *nhwc, int n, int h, int w, int c, int cols, int gap,
                                   int *grid_w, int *grid_h, ag_error *err);
AGDEF int ag_png_write_grid(const char *path, const unsigned char *nhwc, int n, int h, int w, int c, int cols, int gap, ag_error *err);
/* A line plot as an RGB PNG, drawn here (no plotting library): one panel per series,
   stacked, each with its own y range (4 grid lines labelled), a shared x axis from 0 to the
   largest x, points joined by 2-pixel lines and marked; non-finite points are skipped. Text is
   a 3x5 pixel font (letters shown as capitals, digits, . - + : ( ) / = , _ %). 720 pixels wide,
   230 per panel. `marks` (may be NULL) are x positions drawn as light vertical lines in the
   series' panel (e.g. the search's growths). Written atomically (ag_png_write). Used by
   build/train (IS and FID over G steps) and build/search (reward and entropy over controller
   steps). */
typedef struct ag_plot_series {
    const char *label; const double *x, *y; int n; unsigned char rgb[3];
    const double *marks; int n_marks;
} ag_plot_series;
AGDEF int ag_plot_png(const char *path, const char *x_label, const ag_plot_series *series, int count, ag_error *err);

#endif /* AUTOGAN_H */

/* =================================================================================== */
#ifdef AUTOGAN_IMPLEMENTATION
#ifndef AUTOGAN_IMPLEMENTATION_DONE
#define AUTOGAN_IMPLEMENTATION_DONE

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdarg.h>
#include <math.h>
#include <float.h>
#include <time.h>
#include <errno.h>
#if !defined(_WIN32)
#include <sys/stat.h>   /* POSIX: data-set folders (stat, opendir) */
#include <dirent.h>
#endif
#include <limits.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#if defined(AG_MALLOC) && defined(AG_FREE) && defined(AG_REALLOC)
/* ok: all three user-supplied */
#elif !defined(AG_MALLOC) && !defined(AG_FREE) && !defined(AG_REALLOC)
#define AG_MALLOC(sz) malloc(sz)
#define AG_REALLOC(p, sz) realloc(p, sz)
#define AG_FREE(p) free(p)
#else
#error "Must define all or none of AG_MALLOC, AG_FREE, and AG_REALLOC."
#endif
#ifndef AG_ASSERT
#include <assert.h>
#define AG_ASSERT(x) assert(x)
#endif

/* AG__PARALLEL_FOR(nt): the next `for` runs on nt threads (static schedule); nothing
   without OpenMP, where callers write (void)nt to stay warning-free. */
#ifdef _OPENMP
#define AG__PRAGMA(x) _Pragma(#x)
#define AG__PARALLEL_FOR(nt) AG__PRAGMA(omp parallel for schedule(static) num_threads(nt))
#else
#define AG__PARALLEL_FOR(nt)
#endif

/* The one thread-count rule. A loop of `work` elementary operations runs on one thread
   below `serial_below` (starting threads costs more than it saves there), else on
   `available` threads (<= 0: the OpenMP default), never more than AG_MAX_THREADS. */
static int ag__threads(int available, size_t work, size_t serial_below) {
#ifdef _OPENMP
    if (work < serial_below) return 1;
    if (available <= 0) available = omp_get_max_threads();
    return available < 1 ? 1 : available > AG_MAX_THREADS ? AG_MAX_THREADS : available;
#else
    (void)available; (void)work; (void)serial_below;
    return 1;
#endif
}

/* ===================================================================================
   2. Errors, files and host arrays; text and byte helpers
   =================================================================================== */
static int ag__vfail(ag_error *err, const char *fmt, va_list ap) {
    if (err) vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    return -1;
}
static int ag__fail(ag_error *err, const char *fmt, ...) {
    va_list ap; va_start(ap, fmt); ag__vfail(err, fmt, ap); va_end(ap);
    return -1;
}

/* Prefix the message already in err with "<formatted prefix>: " (e.g. the file path). */
static int ag__fail_prefix(ag_error *err, const char *fmt, ...) {
    char tmp[sizeof ((ag_error *)0)->msg], pre[160];
    va_list ap;
    size_t n;
    if (!err) return -1;
    memcpy(tmp, err->msg, sizeof tmp);
    tmp[sizeof tmp - 1] = '\0';
    va_start(ap, fmt);
    vsnprintf(pre, sizeof pre, fmt, ap);
    va_end(ap);
    n = strlen(pre);
    memcpy(err->msg, pre, n);
    err->msg[n] = ':';
    err->msg[n + 1] = ' ';
    n += 2;
    memcpy(err->msg + n, tmp, sizeof err->msg - n - 1);
    err->msg[sizeof err->msg - 1] = '\0';
    return -1;
}

AGDEF size_t ag_dtype_size(ag_dtype t) {
    switch (t) {
    case AG_DTYPE_F64: case AG_DTYPE_I64: return 8;
    case AG_DTYPE_F32: case AG_DTYPE_I32: return 4;
    case AG_DTYPE_F16: case AG_DTYPE_BF16: case AG_DTYPE_I16: return 2;
    case AG_DTYPE_I8: case AG_DTYPE_U8: case AG_DTYPE_BOOL: return 1;
    }
    return 0;
}

/* product of dims with overflow checks; returns -1 on overflow or a negative dim */
static int ag__shape_numel(int ndim, const int64_t *shape, size_t elem, size_t *numel, size_t *bytes) {
    size_t n = 1; int i;
    for (i = 0; i < ndim; i++) {
        if (shape[i] < 0) return -1;
        if (shape[i] != 0 && n > (SIZE_MAX / 16) / (size_t)shape[i]) return -1;
        n *= (size_t)shape[i];
    }
    if (elem && n > SIZE_MAX / elem) return -1;
    if (numel) *numel = n;
    if (bytes) *bytes = n * elem;
    return 0;
}

static char *ag__strdup(const char *s) {
    size_t n = strlen(s) + 1; char *p = (char *)AG_MALLOC(n);
    if (p) memcpy(p, s, n);
    return p;
}

AGDEF void ag_array_list_free(ag_array_list *list) {
    int i;
    if (!list) return;
    for (i = 0; i < list->count; i++) { AG_FREE(list->items[i].name); AG_FREE(list->items[i].data); }
    AG_FREE(list->items);
    list->items = NULL; list->count = list->cap = 0;
}

AGDEF int ag_array_list_add(ag_array_list *list, const char *name, ag_dtype dtype, int ndim,
                            const int64_t *shape, const void *data, ag_error *err) {
    ag_array a; size_t bytes; int i;
    if (ndim < 0 || ndim > 8) return ag__fail(err, "array '%s': %d dimensions (at most 8)", name, ndim);
    if (ag__shape_numel(ndim, shape, ag_dtype_size(dtype), NULL, &bytes))
        return ag__fail(err, "array '%s': shape too large or negative", name);
    if (list->count == list->cap) {
        int cap = list->cap ? list->cap * 2 : 16;
        ag_array *items = (ag_array *)AG_REALLOC(list->items, (size_t)cap * sizeof(ag_array));
        if (!items) return ag__fail(err, "out of memory adding array '%s'", name);
        list->items = items; list->cap = cap;
    }
    memset(&a, 0, sizeof a);
    a.name = ag__strdup(name);
    a.data = AG_MALLOC(bytes ? bytes : 1);
    if (!a.name || !a.data) { AG_FREE(a.name); AG_FREE(a.data); return ag__fail(err, "out of memory for array '%s' (%zu bytes)", name, bytes); }
    if (data) memcpy(a.data, data, bytes); else memset(a.data, 0, bytes);
    a.dtype = dtype; a.ndim = ndim; a.nbytes = bytes;
    for (i = 0; i < ndim; i++) a.shape[i] = shape[i];
    list->items[list->count++] = a;
    return 0;
}

AGDEF ag_array *ag_array_list_find(const ag_array_list *list, const char *name) {
    int i;
    for (i = 0; i < list->count; i++) if (strcmp(list->items[i].name, name) == 0) return &list->items[i];
    return NULL;
}

static float ag__half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 31, man = h & 1023, bits;
    float f;
    if (exp == 0) {                          /* zero or subnormal */
        f = (float)man * (1.0f / 16777216.0f);
        return sign ? -f : f;
    } else if (exp == 31) bits = sign | 0x7f800000u | (man << 13);
    else bits = sign | ((exp + 112) << 23) | (man << 13);
    memcpy(&f, &bits, 4);
    return f;
}

AGDEF int ag_array_to_f32(const ag_array *a, float *out, ag_error *err) {
    size_t n = a->nbytes / (ag_dtype_size(a->dtype) ? ag_dtype_size(a->dtype) : 1), i;
    const unsigned char *p = (const unsigned char *)a->data;
    for (i = 0; i < n; i++) {
        switch (a->dtype) {
        case AG_DTYPE_F32: { float v; memcpy(&v, p + 4 * i, 4); out[i] = v; } break;
        case AG_DTYPE_F64: { double v; memcpy(&v, p + 8 * i, 8); out[i] = (float)v; } break;
        case AG_DTYPE_F16: { uint16_t v; memcpy(&v, p + 2 * i, 2); out[i] = ag__half_to_float(v); } break;
        case AG_DTYPE_BF16: { uint16_t v; uint32_t b; float f; memcpy(&v, p + 2 * i, 2); b = (uint32_t)v << 16; memcpy(&f, &b, 4); out[i] = f; } break;
        case AG_DTYPE_I64: { int64_t v; memcpy(&v, p + 8 * i, 8); out[i] = (float)v; } break;
        case AG_DTYPE_I32: { int32_t v; memcpy(&v, p + 4 * i, 4); out[i] = (float)v; } break;
        case AG_DTYPE_I16: { int16_t v; memcpy(&v, p + 2 * i, 2); out[i] = (float)v; } break;
        case AG_DTYPE_I8: out[i] = (float)(signed char)p[i]; break;
        case AG_DTYPE_U8: case AG_DTYPE_BOOL: out[i] = (float)p[i]; break;
        default: return ag__fail(err, "array '%s': unknown dtype", a->name ? a->name : "?");
        }
    }
    return 0;
}

/* Files: whole-file reads, and writes that never leave a half-written target. A write goes
   to one fixed temporary name per target (`path.tmp`, so a crashed writer leaves at most
   one stale file, replaced by the next write), is flushed to the disk (fsync), renamed over
   the target, and the directory is flushed too, so a power cut leaves the old or the new
   file, never an empty one. Two processes writing the same target at once are not
   supported (they would share the temporary name). */
#if defined(__unix__) || defined(__APPLE__)
#define AG__POSIX_FILES 1
#include <unistd.h>
#include <fcntl.h>
#include <sys/stat.h>
#endif
/* readlink (ag_find_resource's /proc/self/exe) is POSIX.1-2001: strict C99 (-std=c99 without
   a feature macro) leaves it undeclared, so it is declared here then */
#if defined(__linux__) && defined(AG__POSIX_FILES) && \
    ((defined(__GLIBC__) && !defined(__USE_XOPEN2K) && !defined(__USE_XOPEN_EXTENDED)) || \
     (!defined(__GLIBC__) && defined(__STRICT_ANSI__) && !defined(_POSIX_C_SOURCE) && !defined(_XOPEN_SOURCE) && \
      !defined(_GNU_SOURCE) && !defined(_BSD_SOURCE) && !defined(_DEFAULT_SOURCE)))
extern ssize_t readlink(const char *path, char *buf, size_t len);
#endif

/* Inputs are opened through ag__in_open, which refuses what is not a regular file before
   anything can block on it: a FIFO or a device (open() of a FIFO waits for a writer, and
   /dev/zero never ends) is opened with O_NONBLOCK, identified by fstat and refused with a
   message naming it; a regular file gets its blocking mode back and its size. */
typedef struct ag__in {
#ifdef AG__POSIX_FILES
    int fd;
#else
    FILE *f;
#endif
    uint64_t size;
} ag__in;

#ifdef AG__POSIX_FILES
static const char *ag__file_kind(mode_t m) {
    if (S_ISFIFO(m)) return "a FIFO (named pipe)";
    if (S_ISCHR(m)) return "a character device";
    if (S_ISBLK(m)) return "a block device";
#ifdef S_ISSOCK
    if (S_ISSOCK(m)) return "a socket";
#endif
    return "not a file";
}
#endif

static int ag__in_open(ag__in *in, const char *path, ag_error *err) {
#ifdef AG__POSIX_FILES
    struct stat st;
    int fl, fd = open(path, O_RDONLY | O_NONBLOCK);
    in->fd = -1; in->size = 0;
    if (fd < 0) return ag__fail(err, "%s: cannot open for reading (%s)", path, strerror(errno));
    if (fstat(fd, &st) != 0) { close(fd); return ag__fail(err, "%s: cannot determine the file size", path); }
    if (S_ISDIR(st.st_mode)) { close(fd); return ag__fail(err, "%s: is a directory, not a file", path); }
    if (!S_ISREG(st.st_mode)) { close(fd); return ag__fail(err, "%s: is %s, not a regular file", path, ag__file_kind(st.st_mode)); }
    if (st.st_size < 0) { close(fd); return ag__fail(err, "%s: cannot determine the file size", path); }
    fl = fcntl(fd, F_GETFL);
    if (fl == -1 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) == -1) { close(fd); return ag__fail(err, "%s: cannot open for reading (%s)", path, strerror(errno)); }
    in->fd = fd; in->size = (uint64_t)st.st_size;
    return 0;
#else
    long n;
    in->size = 0;
    in->f = fopen(path, "rb");
    if (!in->f) return ag__fail(err, "%s: cannot open for reading", path);
    if (fseek(in->f, 0, SEEK_END) != 0 || (n = ftell(in->f)) < 0 || n == LONG_MAX || fseek(in->f, 0, SEEK_SET) != 0) {
        fclose(in->f); in->f = NULL;
        return ag__fail(err, "%s: cannot determine the file size (a directory?)", path);
    }
    in->size = (uint64_t)n;
    return 0;
#endif
}

/* up to n bytes (fewer only at the end of the file); *ioerr set on a read error */
static size_t ag__in_read(ag__in *in, void *buf, size_t n, int *ioerr) {
#ifdef AG__POSIX_FILES
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(in->fd, (unsigned char *)buf + got, n - got > ((size_t)1 << 30) ? ((size_t)1 << 30) : n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) { *ioerr = 1; break; }
        if (r == 0) break;
        got += (size_t)r;
    }
    return got;
#else
    size_t got = fread(buf, 1, n, in->f);
    if (got < n && ferror(in->f)) *ioerr = 1;
    return got;
#endif
}

static void ag__in_close(ag__in *in) {
#ifdef AG__POSIX_FILES
    if (in->fd >= 0) close(in->fd);
    in->fd = -1;
#else
    if (in->f) fclose(in->f);
    in->f = NULL;
#endif
}

AGDEF int ag_read_file(const char *path, unsigned char **bytes, size_t *len, ag_error *err) {
    unsigned char *buf; size_t size, got; int ioerr = 0;
    ag__in in;
    *bytes = NULL; *len = 0;
    if (ag__in_open(&in, path, err)) return -1;
    if (in.size >= (uint64_t)SIZE_MAX) { ag__in_close(&in); return ag__fail(err, "%s: too large to read", path); }
    size = (size_t)in.size;
    buf = (unsigned char *)AG_MALLOC(size + 1);
    if (!buf) { ag__in_close(&in); return ag__fail(err, "%s: out of memory reading %zu bytes", path, size); }
    got = ag__in_read(&in, buf, size, &ioerr);
    ag__in_close(&in);
    if (got != size) { AG_FREE(buf); return ag__fail(err, "%s: read %zu of %zu bytes", path, got, size); }
    buf[size] = 0;
    *bytes = buf; *len = size;
    return 0;
}

#ifdef AG__POSIX_FILES
#include <sys/time.h>
#endif
AGDEF double ag_wall_seconds(void) {
#if defined(_OPENMP)
    return omp_get_wtime();
#elif defined(AG__POSIX_FILES)
    struct timeval tv; gettimeofday(&tv, NULL); return (double)tv.tv_sec + 1e-6 * (double)tv.tv_usec;
#else
    return (double)time(NULL);
#endif
}

/* the temporary name for a target: path + ".tmp" */
static int ag__tmp_name(const char *path, char *tmp, size_t cap, ag_error *err) {
    if (!path || !*path) return ag__fail(err, "empty output path");
    if (strlen(path) + 5 > cap) return ag__fail(err, "%s: path too long", path);
    snprintf(tmp, cap, "%s.tmp", path);
    return 0;
}

AGDEF int ag_file_check_writable(const char *path, ag_error *err) {
    char tmp[4096]; FILE *f;
    if (ag__tmp_name(path, tmp, sizeof tmp, err)) return -1;
#ifdef AG__POSIX_FILES
    {
        struct stat st;
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) return ag__fail(err, "%s: is a directory; a file name is needed", path);
    }
#endif
    f = fopen(tmp, "wb");
    if (!f) return ag__fail(err, "%s: cannot be written (%s)", path, strerror(errno));
    fclose(f);
    remove(tmp);
    return 0;
}

/* ---- resources: weights/ and examples/data/ from any working directory ---- */
static int ag__path_exists(const char *path) {
#ifdef AG__POSIX_FILES
    struct stat st;
    return stat(path, &st) == 0;
#else
    FILE *f = fopen(path, "rb");
    if (f) fclose(f);
    return f != NULL;
#endif
}
static int ag__resource_try(const char *dir, const char *relative, char *out, size_t cap) {
    char cand[4096];
    if (snprintf(cand, sizeof cand, "%s%s%s", dir ? dir : "", dir ? "/" : "", relative) >= (int)sizeof cand) return 0;
    if (!ag__path_exists(cand) || strlen(cand) >= cap) return 0;
    memcpy(out, cand, strlen(cand) + 1);
    return 1;
}
AGDEF int ag_find_resource(const char *relative, char *out, size_t cap) {
    int absolute;
    if (!out || !cap) return -1;
    out[0] = 0;
    if (!relative || !*relative) return -1;
    absolute = relative[0] == '/' || relative[0] == '\\' || (relative[0] && relative[1] == ':');
    if (ag__resource_try(NULL, relative, out, cap)) return 0;
    if (!absolute) {
#ifdef AG_PROJECT_DIR
        if (AG_PROJECT_DIR[0] && ag__resource_try(AG_PROJECT_DIR, relative, out, cap)) return 0;
#endif
#if defined(__linux__) && defined(AG__POSIX_FILES)
        {   /* the executable's directory, then its parent (build/x finds ../weights) */
            char exe[4096]; ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1); char *slash;
            if (k > 0 && (size_t)k < sizeof exe - 1) {
                exe[k] = 0;
                if ((slash = strrchr(exe, '/')) != NULL) {
                    *slash = 0;
                    if (ag__resource_try(exe[0] ? exe : "", relative, out, cap)) return 0;
                    if ((slash = strrchr(exe, '/')) != NULL) {
                        *slash = 0;
                        if (ag__resource_try(exe, relative, out, cap)) return 0;   /* "" + "/" + relative: the root */
                    }
                }
            }
        }
#endif
    }
    if (strlen(relative) < cap) memcpy(out, relative, strlen(relative) + 1);
    return -1;
}

/* the test hooks of the header comment: count the renames, trace them, exit after the N-th */
static void ag__test_rename_hook(const char *path) {
    static int limit = -2, trace; static long count;
    if (limit == -2) {
        const char *v = getenv("AUTOGAN_TEST_EXIT_AFTER_RENAMES"), *t = getenv("AUTOGAN_TEST_TRACE_RENAMES");
        limit = v && *v ? atoi(v) : -1;
        trace = t && *t && strcmp(t, "0") != 0;
    }
    count++;
    if (trace) { fprintf(stderr, "autogan.h test hook: rename %ld %s\n", count, path); fflush(stderr); }
    if (limit > 0 && count == limit) { fflush(stdout); _Exit(75); }
}
AGDEF int ag_write_file_atomic(const char *path, const void *bytes, size_t len, ag_error *err) {
    char tmp[4096];
    if (ag__tmp_name(path, tmp, sizeof tmp, err)) return -1;
#ifdef AG__POSIX_FILES
    {
        const unsigned char *p = (const unsigned char *)bytes; size_t put = 0; int fd, ok = 1;
        struct stat st;
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) return ag__fail(err, "%s: is a directory; a file name is needed", path);
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0666);
        if (fd < 0) return ag__fail(err, "%s: cannot create the temporary file %s (%s)", path, tmp, strerror(errno));
        while (put < len) {
            ssize_t w = write(fd, p + put, len - put > ((size_t)1 << 30) ? ((size_t)1 << 30) : len - put);
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) { ok = 0; break; }
            put += (size_t)w;
        }
        if (ok && fsync(fd) != 0) ok = 0;            /* the data is on the disk before the rename */
        if (close(fd) != 0) ok = 0;
        if (!ok) { int e = errno; remove(tmp); return ag__fail(err, "%s: write failed (%s)", path, strerror(e)); }
        if (rename(tmp, path) != 0) { int e = errno; remove(tmp); return ag__fail(err, "%s: cannot rename %s into place (%s)", path, tmp, strerror(e)); }
        {   /* and the rename itself: flush the directory entry */
            char dir[4096]; const char *slash = strrchr(path, '/'); int dfd;
            if (!slash) { dir[0] = '.'; dir[1] = 0; }
            else if (slash == path) { dir[0] = '/'; dir[1] = 0; }
            else { size_t n = (size_t)(slash - path); memcpy(dir, path, n); dir[n] = 0; }
            dfd = open(dir, O_RDONLY);
            if (dfd >= 0) { (void)fsync(dfd); close(dfd); }
        }
        ag__test_rename_hook(path);
    }
#else
    {
        FILE *f = fopen(tmp, "wb"); size_t put; int closed;
        if (!f) return ag__fail(err, "%s: cannot create the temporary file %s", path, tmp);
        put = len ? fwrite(bytes, 1, len, f) : 0;
        closed = fflush(f) | fclose(f);
        if (put != len || closed != 0) { remove(tmp); return ag__fail(err, "%s: write failed (disk full?)", path); }
        remove(path);                                /* rename does not replace on every platform */
        if (rename(tmp, path) != 0) { remove(tmp); return ag__fail(err, "%s: cannot rename %s into place", path, tmp); }
        ag__test_rename_hook(path);
    }
#endif
    return 0;
}

/* What every file reader and writer shares: a reader decodes the whole file from memory
   (ag_read_file, then its _from_memory twin) and a writer encodes to memory, then writes
   atomically; these finish both, freeing the buffer and putting the path before the
   decoder's or encoder's message. */
static int ag__read_finish(const char *path, unsigned char *buf, int decode_rc, ag_error *err) {
    AG_FREE(buf);
    return decode_rc ? ag__fail_prefix(err, "%s", path) : 0;
}
static int ag__write_finish(const char *path, unsigned char *buf, size_t len, int encode_rc, ag_error *err) {
    int rc;
    if (encode_rc) return ag__fail_prefix(err, "%s", path ? path : "");
    rc = ag_write_file_atomic(path, buf, len, err);
    AG_FREE(buf);
    return rc;
}

/* ---- text buffers (headers, metadata, messages) ---- */
/* growable text buffer for writing headers */
typedef struct ag__buf { char *p; size_t n, cap; int oom; } ag__buf;
static void ag__buf_put(ag__buf *b, const char *fmt, ...) {
    va_list ap; int need;
    if (b->oom) return;
    for (;;) {
        size_t room = b->cap - b->n;
        va_start(ap, fmt); need = vsnprintf(b->p ? b->p + b->n : NULL, b->p ? room : 0, fmt, ap); va_end(ap);
        if (need < 0) { b->oom = 1; return; }
        if (b->p && (size_t)need < room) { b->n += (size_t)need; return; }
        {
            size_t cap = (b->cap + (size_t)need + 1) * 2; char *q = (char *)AG_REALLOC(b->p, cap);
            if (!q) { b->oom = 1; return; }
            b->p = q; b->cap = cap;
        }
    }
}

/* ---- bytes: little/big-endian fields, growable buffers, shapes and strided copies ---- */
/* Element count of a shape; -1 if a dim is negative or the count overflows int64. */
static int ag__rd_numel(int ndim, const int64_t *shape, uint64_t *numel) {
    int i, zero = 0;
    uint64_t n = 1;
    if (ndim < 0 || ndim > 8) return -1;
    for (i = 0; i < ndim; i++) {
        if (shape[i] < 0) return -1;
        if (shape[i] == 0) zero = 1;
    }
    if (zero) { *numel = 0; return 0; }
    for (i = 0; i < ndim; i++) {
        uint64_t d = (uint64_t)shape[i];
        if (n > (uint64_t)INT64_MAX / d) return -1;
        n *= d;
    }
    *numel = n;
    return 0;
}

/* Bytes of numel elements of esz bytes, -1 if that does not fit a size_t. */
static int ag__rd_bytes(uint64_t numel, size_t esz, size_t *nbytes) {
    if (esz && numel > (uint64_t)SIZE_MAX / esz) return -1;
    *nbytes = (size_t)numel * esz;
    return 0;
}

static uint32_t ag__rd16(const unsigned char *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }
static uint32_t ag__rd32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t ag__rd64(const unsigned char *p) { return (uint64_t)ag__rd32(p) | (uint64_t)ag__rd32(p + 4) << 32; }
static uint32_t ag__rd32be(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}
static void ag__wr16(unsigned char *p, uint32_t v) { p[0] = (unsigned char)v; p[1] = (unsigned char)(v >> 8); }
static void ag__wr32(unsigned char *p, uint32_t v) { ag__wr16(p, v & 0xffffu); ag__wr16(p + 2, v >> 16); }
static void ag__wr32be(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v >> 24); p[1] = (unsigned char)(v >> 16); p[2] = (unsigned char)(v >> 8); p[3] = (unsigned char)v;
}

static int ag__host_is_le(void) {
    uint16_t x = 1;
    unsigned char c;
    memcpy(&c, &x, 1);
    return c == 1;
}

static void ag__swap_elems(void *data, size_t count, size_t esz) {
    unsigned char *p = (unsigned char *)data, t;
    size_t i, j;
    if (esz < 2) return;
    for (i = 0; i < count; i++, p += esz)
        for (j = 0; j < esz / 2; j++) { t = p[j]; p[j] = p[esz - 1 - j]; p[esz - 1 - j] = t; }
}

/* Grow *buf (capacity *cap) to hold at least need bytes. */
static int ag__grow(unsigned char **buf, size_t *cap, size_t need, ag_error *err) {
    size_t ncap;
    unsigned char *nb;
    if (need <= *cap) return 0;
    ncap = *cap ? *cap : 256;
    while (ncap < need) {
        if (ncap > SIZE_MAX / 2) { ncap = need; break; }
        ncap *= 2;
    }
    nb = (unsigned char *)AG_REALLOC(*buf, ncap);
    if (!nb) return ag__fail(err, "out of memory (%lu bytes)", (unsigned long)ncap);
    *buf = nb;
    *cap = ncap;
    return 0;
}

static int ag__append(unsigned char **buf, size_t *len, size_t *cap, const void *src, size_t n, ag_error *err) {
    if (n > SIZE_MAX - *len) return ag__fail(err, "output too large");
    if (ag__grow(buf, cap, *len + n, err)) return -1;
    if (n) memcpy(*buf + *len, src, n);
    *len += n;
    return 0;
}

/* Copy a strided view into contiguous C order. src points at the view's first element,
   strides are in elements; the caller has checked every index is in bounds. */
static void ag__gather(unsigned char *dst, const unsigned char *src, size_t esz, int ndim,
                       const int64_t *shape, const int64_t *stride) {
    int64_t idx[8];
    int d;
    int64_t inner, istr, j;
    for (d = 0; d < ndim; d++) if (shape[d] == 0) return;
    if (ndim == 0) { memcpy(dst, src, esz); return; }
    memset(idx, 0, sizeof idx);
    inner = shape[ndim - 1];
    istr = stride[ndim - 1];
    for (;;) {
        int64_t off = 0;
        const unsigned char *p;
        for (d = 0; d < ndim - 1; d++) off += idx[d] * stride[d];
        p = src + (size_t)off * esz;
        if (istr == 1) memcpy(dst, p, (size_t)inner * esz);
        else for (j = 0; j < inner; j++) memcpy(dst + (size_t)j * esz, p + (size_t)(j * istr) * esz, esz);
        dst += (size_t)inner * esz;
        for (d = ndim - 2; d >= 0; d--) {
            if (++idx[d] < shape[d]) break;
            idx[d] = 0;
        }
        if (d < 0) break;
    }
}

/* Number of elements a strided view spans (1 + max index), 0 for an empty view;
   -1 on negative sizes or strides, or overflow. */
static int ag__view_extent(int ndim, const int64_t *shape, const int64_t *stride, uint64_t *extent) {
    uint64_t e = 0, numel;
    int d;
    if (ag__rd_numel(ndim, shape, &numel)) return -1;
    for (d = 0; d < ndim; d++) if (stride[d] < 0) return -1;
    if (numel == 0) { *extent = 0; return 0; }
    for (d = 0; d < ndim; d++) {
        uint64_t s = (uint64_t)shape[d] - 1, st = (uint64_t)stride[d];
        if (st && s > (uint64_t)INT64_MAX / st) return -1;
        if (s * st > (uint64_t)INT64_MAX - e) return -1;
        e += s * st;
    }
    if (e >= (uint64_t)INT64_MAX) return -1;
    *extent = e + 1;
    return 0;
}

/* ---- host arrays: names of dtypes, element counts, freeing, selecting by prefix ---- */
/* the dtype's name as .safetensors headers spell it (F32, I64, ...) */
static const char *ag__st_dtype_name(ag_dtype t) {
    switch (t) { case AG_DTYPE_F32: return "F32"; case AG_DTYPE_F64: return "F64"; case AG_DTYPE_F16: return "F16"; case AG_DTYPE_BF16: return "BF16";
    case AG_DTYPE_I64: return "I64"; case AG_DTYPE_I32: return "I32"; case AG_DTYPE_I16: return "I16"; case AG_DTYPE_I8: return "I8"; case AG_DTYPE_U8: return "U8"; case AG_DTYPE_BOOL: return "BOOL"; }
    return "?";
}
AGDEF const char *ag_dtype_name(ag_dtype t) {
    switch (t) {
    case AG_DTYPE_F32: return "float32";
    case AG_DTYPE_F64: return "float64";
    case AG_DTYPE_F16: return "float16";
    case AG_DTYPE_BF16: return "bfloat16";
    case AG_DTYPE_I64: return "int64";
    case AG_DTYPE_I32: return "int32";
    case AG_DTYPE_I16: return "int16";
    case AG_DTYPE_I8: return "int8";
    case AG_DTYPE_U8: return "uint8";
    case AG_DTYPE_BOOL: return "bool";
    }
    return "unknown";
}

AGDEF int64_t ag_array_numel(const ag_array *a) {
    uint64_t n = 0;
    if (!a || ag__rd_numel(a->ndim, a->shape, &n)) return 0;
    return (int64_t)n;
}

AGDEF void ag_array_free(ag_array *a) {
    if (!a) return;
    AG_FREE(a->name);
    AG_FREE(a->data);
    memset(a, 0, sizeof *a);
}

AGDEF int ag_array_list_select_prefix(ag_array_list *list, const char *prefix_in, ag_error *err) {
    size_t plen;
    int i, j, hits = 0;
    char *prefix;
    if (!list || !prefix_in) return ag__fail(err, "ag_array_list_select_prefix: NULL argument");
    /* a copy: the prefix may point into one of the names this function rewrites */
    if (!(prefix = ag__strdup(prefix_in))) return ag__fail(err, "out of memory");
    plen = strlen(prefix);
    for (i = 0; i < list->count; i++)
        if (list->items[i].name && strncmp(list->items[i].name, prefix, plen) == 0) hits++;
    if (!hits) { ag__fail(err, "no array name starts with '%s'", prefix); AG_FREE(prefix); return -1; }
    for (i = j = 0; i < list->count; i++) {
        ag_array *a = &list->items[i];
        if (a->name && strncmp(a->name, prefix, plen) == 0) {
            memmove(a->name, a->name + plen, strlen(a->name + plen) + 1);
            list->items[j++] = *a;
        } else {
            AG_FREE(a->name);
            AG_FREE(a->data);
        }
    }
    list->count = j;
    AG_FREE(prefix);
    return 0;
}


/* ===================================================================================
   3. Tensors, arena, buffer pool (reference counts) and PRNG
   =================================================================================== */
struct ag__kernels;
struct ag__node;

/* The arena: a list of chunks, bump-allocated. ag_ctx_reset keeps one chunk as large as
   the last step's high-water mark, so a steady training loop stops allocating. */
typedef struct ag__chunk { struct ag__chunk *next; size_t size, used; } ag__chunk;
#define AG__ALIGN 64
#define AG__CHUNK_HEADER ((sizeof(ag__chunk) + AG__ALIGN - 1) / AG__ALIGN * AG__ALIGN)

struct ag_ctx {
    ag_error err;
    int failed;
    ag__chunk *chunks;                 /* newest first */
    size_t arena_in_use, arena_high;
    struct ag__node *tape; int tape_len, tape_cap;
    int grad_enabled;
    int num_threads;
    ag_rng rng;
    struct ag__kernels *kern;
    double gemm_flops;                 /* 2*M*N*K summed over every GEMM (for benchmarks) */
    float *scratch[4]; size_t scratch_cap[4];   /* reused within one op: im2col or Winograd tiles, gathers, GEMM packing, Winograd filters */
    int winograd;                      /* 3x3 stride-1 convs through Winograd F(4x4, 3x3) */
    void **heap; size_t *heap_size; int heap_len, heap_cap;   /* large gradient buffers, released once consumed */
    void **spare; size_t *spare_size; int spare_len, spare_cap;   /* released buffers kept for reuse */
    size_t pool_live, pool_high;       /* bytes of pool buffers in use now / at most */
    int debug_keep_all, debug_poison;  /* tests: ignore releases / fill released buffers with NaN */
};

static void *ag__ctx_fail(ag_ctx *ctx, const char *fmt, ...) {
    if (!ctx->failed) {
        va_list ap; va_start(ap, fmt); ag__vfail(&ctx->err, fmt, ap); va_end(ap);
        ctx->failed = 1;
    }
    return NULL;
}

static void *ag__arena_alloc(ag_ctx *ctx, size_t bytes) {
    ag__chunk *c = ctx->chunks; unsigned char *p;
    bytes = (bytes + AG__ALIGN - 1) / AG__ALIGN * AG__ALIGN;
    if (!c || c->size - c->used < bytes) {
        size_t want = bytes > ((size_t)8 << 20) ? bytes : ((size_t)8 << 20);
        void *raw;
        if (c && want < c->size * 2) want = c->size * 2;
        raw = AG_MALLOC(AG__CHUNK_HEADER + want + AG__ALIGN);
        if (!raw) return ag__ctx_fail(ctx, "out of memory: the arena needs %zu more bytes", bytes);
        c = (ag__chunk *)raw;
        c->size = want; c->used = 0; c->next = ctx->chunks; ctx->chunks = c;
    }
    /* chunk memory starts after the header, rounded up to the alignment */
    p = (unsigned char *)c + AG__CHUNK_HEADER;
    p = (unsigned char *)(((uintptr_t)p + AG__ALIGN - 1) & ~(uintptr_t)(AG__ALIGN - 1));
    p += c->used;
    c->used += bytes;
    ctx->arena_in_use += bytes;
    if (ctx->arena_in_use > ctx->arena_high) ctx->arena_high = ctx->arena_in_use;
    return p;
}

/* a per-context buffer reused by every op (ops run one at a time): slot 0 im2col
   columns, slot 1 gathered planes, slot 2 GEMM packing */
static float *ag__scratch(ag_ctx *ctx, int slot, size_t floats) {
    if (ctx->failed) return NULL;
    if (floats > ctx->scratch_cap[slot]) {
        float *p = (float *)AG_REALLOC(ctx->scratch[slot], floats * sizeof(float) + AG__ALIGN);
        if (!p) return (float *)ag__ctx_fail(ctx, "out of memory: %zu bytes of scratch", floats * sizeof(float));
        ctx->scratch[slot] = p; ctx->scratch_cap[slot] = floats;
    }
    return ctx->scratch[slot];
}
/* Large gradient buffers cycle through a list of spares, so a training loop whose shapes
   repeat every step stops calling malloc/free (and stops faulting fresh pages in). The
   spares never exceed the largest set of buffers one step had alive at once plus one. */
static void ag__spare_put(ag_ctx *ctx, void *p, size_t bytes) {
    if (ctx->spare_len == ctx->spare_cap) {
        int cap = ctx->spare_cap ? ctx->spare_cap * 2 : 32;
        void **a = (void **)AG_REALLOC(ctx->spare, (size_t)cap * sizeof(void *));
        size_t *b;
        if (!a) { AG_FREE(p); return; }
        ctx->spare = a;
        b = (size_t *)AG_REALLOC(ctx->spare_size, (size_t)cap * sizeof(size_t));
        if (!b) { AG_FREE(p); return; }
        ctx->spare_size = b; ctx->spare_cap = cap;
    }
    ctx->spare[ctx->spare_len] = p; ctx->spare_size[ctx->spare_len++] = bytes;
}
/* best fit among the spares at least as large as asked and at most twice as large (the
   D and G steps use different batch sizes; this lets one step's buffers serve the other);
   the buffer keeps its real size for when it is put back */
static void *ag__spare_take(ag_ctx *ctx, size_t bytes, size_t *got) {
    int i, best = -1;
    for (i = 0; i < ctx->spare_len; i++)
        if (ctx->spare_size[i] >= bytes && ctx->spare_size[i] / 2 <= bytes && (best < 0 || ctx->spare_size[i] < ctx->spare_size[best])) best = i;
    if (best >= 0) {
        void *p = ctx->spare[best];
        *got = ctx->spare_size[best];
        ctx->spare[best] = ctx->spare[ctx->spare_len - 1]; ctx->spare_size[best] = ctx->spare_size[ctx->spare_len - 1];
        ctx->spare_len--;
        return p;
    }
    return NULL;
}
/* every pool buffer back to the spares (ag_ctx_reset; ag_ctx_free then frees the spares) */
static void ag__heap_release_all(ag_ctx *ctx) {
    int i;
    for (i = 0; i < ctx->heap_len; i++) if (ctx->heap[i]) ag__spare_put(ctx, ctx->heap[i], ctx->heap_size[i]);
    ctx->heap_len = 0;
    ctx->pool_live = 0;
}

static void ag__spare_free_all(ag_ctx *ctx) {
    int i;
    for (i = 0; i < ctx->spare_len; i++) AG_FREE(ctx->spare[i]);
    AG_FREE(ctx->spare); AG_FREE(ctx->spare_size);
    ctx->spare = NULL; ctx->spare_size = NULL; ctx->spare_len = ctx->spare_cap = 0;
}

/* A buffer from the pool: a recycled spare or a new one, listed in ctx->heap so that
   ag_ctx_reset gets it back; `slot` is 1 + its index there. */
static void *ag__pool_take(ag_ctx *ctx, size_t bytes, int *slot) {
    size_t got = bytes; void *p;
    if (ctx->heap_len == ctx->heap_cap) {
        int cap = ctx->heap_cap ? ctx->heap_cap * 2 : 64;
        void **h = (void **)AG_REALLOC(ctx->heap, (size_t)cap * sizeof(void *));
        size_t *hs;
        if (!h) return ag__ctx_fail(ctx, "out of memory for buffer bookkeeping");
        ctx->heap = h;
        hs = (size_t *)AG_REALLOC(ctx->heap_size, (size_t)cap * sizeof(size_t));
        if (!hs) return ag__ctx_fail(ctx, "out of memory for buffer bookkeeping");
        ctx->heap_size = hs; ctx->heap_cap = cap;
    }
    p = ag__spare_take(ctx, bytes, &got);
    if (!p) {
        /* a miss: first free spares too small to serve this size, up to as many bytes as
           are about to be allocated, so the pool's footprint follows what a step needs
           instead of growing by every size it ever saw */
        size_t freed = 0; int i;
        for (i = ctx->spare_len - 1; i >= 0 && freed < bytes; i--)
            if (ctx->spare_size[i] < bytes) {
                freed += ctx->spare_size[i];
                AG_FREE(ctx->spare[i]);
                ctx->spare[i] = ctx->spare[ctx->spare_len - 1]; ctx->spare_size[i] = ctx->spare_size[ctx->spare_len - 1];
                ctx->spare_len--;
            }
        p = AG_MALLOC(bytes);
    }
    if (!p) return ag__ctx_fail(ctx, "out of memory: a %zu-byte buffer", bytes);
    ctx->pool_live += got;
    if (ctx->pool_live > ctx->pool_high) ctx->pool_high = ctx->pool_live;
    ctx->heap_size[ctx->heap_len] = got;
    ctx->heap[ctx->heap_len++] = p;
    *slot = ctx->heap_len;
    return p;
}
/* back to the spares (ignored when the slot no longer holds p: a tensor from before a reset) */
static void ag__pool_put(ag_ctx *ctx, int slot, void *p) {
    if (slot > 0 && slot <= ctx->heap_len && ctx->heap[slot - 1] == p && p) {
        if (ctx->debug_poison) memset(p, 0xff, ctx->heap_size[slot - 1]);   /* NaN: a read after release shows */
        ag__spare_put(ctx, p, ctx->heap_size[slot - 1]);
        ctx->pool_live -= ctx->heap_size[slot - 1];
        ctx->heap[slot - 1] = NULL;
    }
}
#define AG__POOL_MIN ((size_t)256 << 10)   /* tensors this large take their data from the pool */

static ag_tensor *ag__owner(ag_tensor *t) { return t->base ? t->base : t; }
static void ag__ref(ag_tensor *t) { if (t) ag__owner(t)->refs++; }
static void ag__unref(ag_ctx *ctx, ag_tensor *t) {
    ag_tensor *o;
    if (!t) return;
    o = ag__owner(t);
    if (o->refs > 0 && --o->refs == 0 && o->data_slot) {
        ag__pool_put(ctx, o->data_slot, o->data);
        o->data = NULL; o->data_slot = 0;
    }
}
AGDEF void ag_tensor_release(ag_ctx *ctx, ag_tensor *t) {
    if (!t || t->released || t->is_param || ctx->debug_keep_all) return;
    t->released = 1;
    ag__unref(ctx, t);
}

AGDEF void ag_rng_seed(ag_rng *rng, uint64_t seed, uint64_t seq) {
    rng->state = 0; rng->inc = (seq << 1) | 1u;
    ag_rng_u32(rng); rng->state += seed; ag_rng_u32(rng);
}
AGDEF uint32_t ag_rng_u32(ag_rng *rng) {
    uint64_t old = rng->state;
    uint32_t xorshifted, rot;
    rng->state = old * 6364136223846793005ULL + rng->inc;
    xorshifted = (uint32_t)(((old >> 18) ^ old) >> 27);
    rot = (uint32_t)(old >> 59);
    return (xorshifted >> rot) | (xorshifted << ((32 - rot) & 31));
}
AGDEF float ag_rng_uniform(ag_rng *rng) { return (float)(ag_rng_u32(rng) >> 8) * (1.0f / 16777216.0f); }
AGDEF float ag_rng_normal(ag_rng *rng) {
    double u1 = ((double)(ag_rng_u32(rng) >> 8) + 1.0) / 16777216.0;   /* (0, 1] */
    double u2 = (double)(ag_rng_u32(rng) >> 8) / 16777216.0;
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}
AGDEF void ag_rng_fill_normal(ag_rng *rng, float *x, size_t n, float mean, float std) {
    size_t i; for (i = 0; i < n; i++) x[i] = mean + std * ag_rng_normal(rng);
}
AGDEF void ag_rng_fill_uniform(ag_rng *rng, float *x, size_t n, float lo, float hi) {
    size_t i; for (i = 0; i < n; i++) x[i] = lo + (hi - lo) * ag_rng_uniform(rng);
}

static void ag__kernels_setup(ag_ctx *ctx);   /* section 4 */
static void ag__kernels_release(ag_ctx *ctx);
static void ag__kernels_set_threads(ag_ctx *ctx);

AGDEF ag_ctx *ag_ctx_create(uint64_t seed, ag_error *err) {
    ag_ctx *ctx = (ag_ctx *)AG_MALLOC(sizeof(ag_ctx));
    if (!ctx) { ag__fail(err, "out of memory for a context (%lu bytes)", (unsigned long)sizeof(ag_ctx)); return NULL; }
    memset(ctx, 0, sizeof *ctx);
    ctx->grad_enabled = 1;
    ctx->winograd = !(getenv("AUTOGAN_WINOGRAD") && !strcmp(getenv("AUTOGAN_WINOGRAD"), "0"));
    ag_rng_seed(&ctx->rng, seed, 54u);
#ifdef _OPENMP
    ctx->num_threads = ag__threads(0, 1, 0);
#else
    ctx->num_threads = 1;
#endif
    ag__kernels_setup(ctx);
    if (!ctx->kern) { AG_FREE(ctx); ag__fail(err, "out of memory for a context's kernel table"); return NULL; }
    return ctx;
}

AGDEF void ag_ctx_free(ag_ctx *ctx) {
    ag__chunk *c, *next;
    if (!ctx) return;
    for (c = ctx->chunks; c; c = next) { next = c->next; AG_FREE(c); }
    AG_FREE(ctx->tape);
    ag__heap_release_all(ctx);
    ag__spare_free_all(ctx);
    AG_FREE(ctx->heap); AG_FREE(ctx->heap_size);
    AG_FREE(ctx->scratch[0]); AG_FREE(ctx->scratch[1]); AG_FREE(ctx->scratch[2]); AG_FREE(ctx->scratch[3]);
    ag__kernels_release(ctx);
    AG_FREE(ctx);
}

AGDEF void ag_ctx_reset(ag_ctx *ctx) {
    ag__chunk *c = ctx->chunks;
    if (c && c->next) {          /* several chunks: replace them by one of the high-water size */
        ag__chunk *next; size_t want = ctx->arena_high;
        for (; c; c = next) { next = c->next; AG_FREE(c); }
        ctx->chunks = NULL;
        c = (ag__chunk *)AG_MALLOC(AG__CHUNK_HEADER + want + AG__ALIGN);
        if (c) { c->size = want; c->used = 0; c->next = NULL; ctx->chunks = c; }
    } else if (c) c->used = 0;
    ctx->arena_in_use = 0;
    ctx->tape_len = 0;
    ag__heap_release_all(ctx);
}

AGDEF const char *ag_ctx_error(const ag_ctx *ctx) { return ctx->failed ? ctx->err.msg : ""; }
AGDEF int ag_ctx_failed(const ag_ctx *ctx) { return ctx->failed; }
AGDEF void ag_ctx_clear_error(ag_ctx *ctx) { ctx->failed = 0; ctx->err.msg[0] = 0; }
AGDEF void ag_ctx_set_threads(ag_ctx *ctx, int num_threads) {
#ifdef _OPENMP
    ctx->num_threads = ag__threads(num_threads, 1, 0);
#else
    (void)num_threads; ctx->num_threads = 1;
#endif
    ag__kernels_set_threads(ctx);
}
AGDEF int ag_ctx_threads(const ag_ctx *ctx) { return ctx->num_threads; }
AGDEF void ag_ctx_set_grad_enabled(ag_ctx *ctx, int enabled) { ctx->grad_enabled = enabled != 0; }
AGDEF int ag_ctx_grad_enabled(const ag_ctx *ctx) { return ctx->grad_enabled; }
AGDEF void ag_ctx_set_winograd(ag_ctx *ctx, int enabled) { ctx->winograd = enabled != 0; }
AGDEF int ag_ctx_winograd(const ag_ctx *ctx) { return ctx->winograd; }
AGDEF size_t ag_ctx_arena_bytes(const ag_ctx *ctx) { return ctx->arena_high; }
AGDEF size_t ag_ctx_pool_bytes(const ag_ctx *ctx) { return ctx->pool_high; }
AGDEF ag_rng *ag_ctx_rng(ag_ctx *ctx) { return &ctx->rng; }
AGDEF double ag_ctx_gemm_flops(const ag_ctx *ctx) { return ctx->gemm_flops; }

/* threads for a loop of `work` elementary operations: one below ~32k, else all */
static int ag__threads_for(const ag_ctx *ctx, size_t work) {
    return ag__threads(ctx->num_threads, work, 32768);
}

static ag_tensor *ag__tensor_alloc(ag_ctx *ctx, int ndim, const int *shape, int zero) {
    ag_tensor *t; size_t n = 1; int i;
    if (ctx->failed) return NULL;
    if (ndim < 1 || ndim > AG_MAX_DIMS) return (ag_tensor *)ag__ctx_fail(ctx, "tensor: %d dimensions (1 to 4 allowed)", ndim);
    for (i = 0; i < ndim; i++) {
        if (shape[i] < 0) return (ag_tensor *)ag__ctx_fail(ctx, "tensor: negative dimension %d", shape[i]);
        if (shape[i] && n > ((size_t)1 << 40) / (size_t)shape[i]) return (ag_tensor *)ag__ctx_fail(ctx, "tensor: too many elements");
        n *= (size_t)shape[i];
    }
    t = (ag_tensor *)ag__arena_alloc(ctx, sizeof(ag_tensor));
    if (!t) return NULL;
    memset(t, 0, sizeof *t);
    t->refs = 1;
    if (n * sizeof(float) >= AG__POOL_MIN) t->data = (float *)ag__pool_take(ctx, n * sizeof(float), &t->data_slot);
    else t->data = (float *)ag__arena_alloc(ctx, n * sizeof(float) + 4);
    if (!t->data) return NULL;
    if (zero) memset(t->data, 0, n * sizeof(float));
    t->ndim = ndim; t->size = n;
    for (i = 0; i < ndim; i++) t->shape[i] = shape[i];
    for (; i < AG_MAX_DIMS; i++) t->shape[i] = 1;
    return t;
}
AGDEF ag_tensor *ag_tensor_new(ag_ctx *ctx, int ndim, const int *shape) { return ag__tensor_alloc(ctx, ndim, shape, 0); }
AGDEF ag_tensor *ag_tensor_zeros(ag_ctx *ctx, int ndim, const int *shape) { return ag__tensor_alloc(ctx, ndim, shape, 1); }
AGDEF ag_tensor *ag_tensor_from(ag_ctx *ctx, int ndim, const int *shape, const float *data) {
    ag_tensor *t = ag__tensor_alloc(ctx, ndim, shape, 0);
    if (t) memcpy(t->data, data, t->size * sizeof(float));
    return t;
}
AGDEF ag_tensor *ag_tensor4(ag_ctx *ctx, int n, int c, int h, int w) {
    int s[4]; s[0] = n; s[1] = c; s[2] = h; s[3] = w;
    return ag__tensor_alloc(ctx, 4, s, 0);
}
AGDEF int ag_tensor_same_shape(const ag_tensor *a, const ag_tensor *b) {
    int i;
    if (a->ndim != b->ndim) return 0;
    for (i = 0; i < a->ndim; i++) if (a->shape[i] != b->shape[i]) return 0;
    return 1;
}
AGDEF void ag_tensor_shape_str(const ag_tensor *t, char *buf, size_t len) {
    size_t used = 0; int i;
    if (!len) return;
    buf[0] = 0;
    if (!t) { snprintf(buf, len, "(null)"); return; }
    used += (size_t)snprintf(buf, len, "[");
    for (i = 0; i < t->ndim && used < len; i++)
        used += (size_t)snprintf(buf + used, len - used, i ? ",%d" : "%d", t->shape[i]);
    if (used < len) snprintf(buf + used, len - used, "]");
}

/* ===================================================================================
   4. Kernels: SGEMM per ISA with run-time dispatch, im2col/col2im, Winograd F(4x4, 3x3)
      transforms, upsampling; the conv algorithms behind ag__conv_forward / ag__conv_backward
   =================================================================================== */
/* ---- SGEMM: packing, micro-kernels per ISA, run-time dispatch ---- */

#if defined(__GNUC__) || defined(__clang__)
#define AG__KUNUSED __attribute__((unused))
#else
#define AG__KUNUSED
#endif

typedef struct ag__kernels ag__kernels;  /* a table of function pointers filled once per context */

/* pack rows [i0, i0+rows) x k [p0, p0+kc) of op(A) into one micro-panel: dst[k*mr + i]
   where mr here is the packed stride kern->mr_pack; rows past `rows` are zero padded. */
typedef void (*ag__pack_a_fn)(float *dst, const float *A, int lda, int transA,
                              int i0, int rows, int p0, int kc, int mr);
/* pack k [p0, p0+kc) x columns [j0, j0+ncols) of op(B) into panels of nr columns:
   panel t at dst + t*AG__PSTRIDE(nr, kc) holds [k*nr + j]; the last panel is zero padded.
   (The 16 extra floats per panel keep the panels off 4 KiB aliasing: with kc*nr*4 a
   multiple of 4096 every panel start would fall in the same L1 set.) */
#define AG__PSTRIDE(nr, kc) ((size_t)(nr) * (size_t)(kc) + 16)
typedef void (*ag__pack_b_fn)(float *dst, const float *B, int ldb, int transB,
                              int j0, int ncols, int p0, int kc, int nr);
/* one rows x cols tile (rows <= mr, cols <= nr): acc = sum_k ap[k*mr_pack+i]*bp[k*nr+j];
   C[i*ldc+j] = acc (accumulate 0) or C[i*ldc+j] += acc (accumulate 1). */
typedef void (*ag__ukernel_fn)(int kc, const float *ap, const float *bp, float *c, int ldc,
                               int accumulate, int rows, int cols);
typedef double (*ag__fma_loop_fn)(long iters, float seed); /* returns a checksum */

struct ag__kernels {
    const char *name;        /* "avx512", "avx2", "neon", "scalar" */
    int isa;                 /* AG__ISA_* */
    int num_threads;         /* threads ag__sgemm may use (1 without OpenMP) */
    int mr, nr;              /* micro-tile */
    int mr_pack;             /* row stride of a packed A micro-panel (>= mr) */
    int kc, nc, mc;          /* blocking: K block, max columns and rows of a thread's tile */
    double par_min;          /* below this many multiply-adds: no parallel region */
    ag__pack_a_fn pack_a;
    ag__pack_b_fn pack_b;
    ag__ukernel_fn kernel;
    ag__fma_loop_fn fma_loop;
    double fma_loop_flops;   /* flops done by one iteration of fma_loop */
    char note[160];          /* why the requested path was not taken, or "" */
};

enum { AG__ISA_SCALAR = 0, AG__ISA_AVX2 = 1, AG__ISA_AVX512 = 2, AG__ISA_NEON = 3 };

/* C[M x N] (row stride ldc) = beta*C + op(A)·op(B), all row-major.
   op(A) is M x K: A stored M x K (lda) when transA == 0, stored K x M (lda) when transA == 1.
   op(B) is K x N: B stored K x N (ldb) when transB == 0, stored N x K (ldb) when transB == 1.
   beta is 0 or 1 only (0 means C is overwritten and may hold garbage/NaN beforehand).
   scratch must hold ag__sgemm_scratch_bytes(kern, M, N, K) bytes (any alignment); if it is
   smaller (or NULL), a slow unpacked loop computes the same product. */
AG__KUNUSED static void ag__sgemm(const ag__kernels *kern, int transA, int transB, int M, int N, int K,
                      const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc,
                      void *scratch, size_t scratch_bytes);
/* packing buffers needed per call, incl. all threads */
AG__KUNUSED static size_t ag__sgemm_scratch_bytes(const ag__kernels *kern, int M, int N, int K);
/* detect CPU, honour env AUTOGAN_CPU=scalar|avx2|avx512|neon, fill the table.
   num_threads <= 0: OpenMP's default (OMP_NUM_THREADS); always 1 without OpenMP. */
AG__KUNUSED static void ag__kernels_init(ag__kernels *kern, int num_threads);
/* fill the table for one named path; returns 0 (table untouched) if it is not available
   on this CPU/compiler. Lets tests force every path without the environment. */
AG__KUNUSED static int ag__kernels_init_isa(ag__kernels *kern, const char *isa, int num_threads);
AG__KUNUSED static const char *ag__kernels_name(const ag__kernels *kern);  /* "avx512", "avx2", "neon", "scalar" */
AG__KUNUSED static const char *ag__kernels_note(const ag__kernels *kern);  /* "" or why the env request was not honoured */
/* an FMA loop with enough independent accumulators on the table's ISA, run on `threads`
   threads at once (each its own loop); returns the total GFLOP/s (best of 5 runs of ~0.1 s). */
AG__KUNUSED static double ag__measure_fma_peak_gflops(const ag__kernels *kern, int threads);



#if defined(__GNUC__) || defined(__clang__)
#define AG__KRESTRICT __restrict__
#define AG__KINLINE __inline__ __attribute__((always_inline, unused))
#else
#define AG__KRESTRICT
#define AG__KINLINE
#endif

#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
#define AG__KX86 1
#include <immintrin.h>
#include <cpuid.h>
#define AG__TARGET_AVX2 __attribute__((target("avx2,fma")))
#define AG__TARGET_AVX512 __attribute__((target("avx512f")))
#else
#define AG__KX86 0
#endif

#if defined(__aarch64__) && defined(__ARM_NEON)
#define AG__KNEON 1
#include <arm_neon.h>
#else
#define AG__KNEON 0
#endif

static AG__KUNUSED int ag__kmin(int a, int b) { return a < b ? a : b; }

/* ------------------------------------------------------------------------------------
   Portable packing (used by scalar and NEON; the x86 paths have SIMD versions).
   ------------------------------------------------------------------------------------ */
static AG__KUNUSED void ag__pack_a_generic(float *AG__KRESTRICT dst, const float *AG__KRESTRICT A,
                                           int lda, int transA, int i0, int rows, int p0, int kc, int mr) {
    int i, k;
    if (!transA) { /* A stored M x K: gather a column of mr rows per k */
        for (i = 0; i < rows; i++) {
            const float *s = A + (size_t)(i0 + i) * lda + p0;
            for (k = 0; k < kc; k++) dst[(size_t)k * mr + i] = s[k];
        }
    } else {       /* A stored K x M: mr contiguous values per k */
        for (k = 0; k < kc; k++) {
            const float *s = A + (size_t)(p0 + k) * lda + i0;
            for (i = 0; i < rows; i++) dst[(size_t)k * mr + i] = s[i];
        }
    }
    if (rows < mr)
        for (k = 0; k < kc; k++)
            for (i = rows; i < mr; i++) dst[(size_t)k * mr + i] = 0.0f;
}

static AG__KUNUSED void ag__pack_b_generic(float *AG__KRESTRICT dst, const float *AG__KRESTRICT B,
                                           int ldb, int transB, int j0, int ncols, int p0, int kc, int nr) {
    int jp, j, k;
    for (jp = 0; jp < ncols; jp += nr) {
        int w = ag__kmin(nr, ncols - jp);
        float *d = dst + (size_t)(jp / nr) * AG__PSTRIDE(nr, kc);
        if (!transB) {
            const float *s = B + (size_t)p0 * ldb + j0 + jp;
            for (k = 0; k < kc; k++) {
                for (j = 0; j < w; j++) d[(size_t)k * nr + j] = s[(size_t)k * ldb + j];
                for (; j < nr; j++) d[(size_t)k * nr + j] = 0.0f;
            }
        } else {
            const float *s = B + (size_t)(j0 + jp) * ldb + p0;
            for (j = 0; j < w; j++)
                for (k = 0; k < kc; k++) d[(size_t)k * nr + j] = s[(size_t)j * ldb + k];
            for (k = 0; k < kc; k++)
                for (j = w; j < nr; j++) d[(size_t)k * nr + j] = 0.0f;
        }
    }
}

/* ------------------------------------------------------------------------------------
   Scalar micro-kernel: 4 x 8, plain C (the reference path).
   ------------------------------------------------------------------------------------ */
#define AG__S_MR 4
#define AG__S_NR 8
static void ag__s_kernel(int kc, const float *AG__KRESTRICT ap, const float *AG__KRESTRICT bp,
                         float *AG__KRESTRICT c, int ldc, int accumulate, int rows, int cols) {
    float acc[AG__S_MR][AG__S_NR];
    int i, j, k;
    for (i = 0; i < AG__S_MR; i++)
        for (j = 0; j < AG__S_NR; j++) acc[i][j] = 0.0f;
    for (k = 0; k < kc; k++) {
        const float *a = ap + (size_t)k * AG__S_MR, *b = bp + (size_t)k * AG__S_NR;
        for (i = 0; i < AG__S_MR; i++) {
            float ai = a[i];
            for (j = 0; j < AG__S_NR; j++) acc[i][j] += ai * b[j];
        }
    }
    for (i = 0; i < rows; i++) {
        float *cr = c + (size_t)i * ldc;
        if (accumulate) for (j = 0; j < cols; j++) cr[j] += acc[i][j];
        else            for (j = 0; j < cols; j++) cr[j] = acc[i][j];
    }
}

static double ag__s_fma_loop(long iters, float seed) {
    float a0 = seed, a1 = seed + 1, a2 = seed + 2, a3 = seed + 3;
    float a4 = seed + 4, a5 = seed + 5, a6 = seed + 6, a7 = seed + 7;
    const float m = 0.9999999f, d = 1e-7f;
    long it;
    for (it = 0; it < iters; it++) {
        a0 = a0 * m + d; a1 = a1 * m + d; a2 = a2 * m + d; a3 = a3 * m + d;
        a4 = a4 * m + d; a5 = a5 * m + d; a6 = a6 * m + d; a7 = a7 * m + d;
    }
    return (double)a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7;
}

#if AG__KX86
/* ------------------------------------------------------------------------------------
   x86: CPU detection (CPUID + XGETBV)
   ------------------------------------------------------------------------------------ */
static unsigned long long ag__xgetbv0(void) {
    unsigned int eax, edx;
    __asm__ __volatile__("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((unsigned long long)edx << 32) | eax;
}
/* returns 2 for AVX-512F usable, 1 for AVX2+FMA usable, 0 otherwise */
static int ag__x86_level(void) {
    unsigned int a, b, c, d, max_leaf;
    unsigned long long xcr0;
    int has_fma, has_avx, has_osxsave, has_avx2, has_avx512f;
    if (!__get_cpuid(0, &max_leaf, &b, &c, &d)) return 0;
    if (max_leaf < 7) return 0;
    __get_cpuid(1, &a, &b, &c, &d);
    has_fma = (c >> 12) & 1; has_osxsave = (c >> 27) & 1; has_avx = (c >> 28) & 1;
    if (!has_osxsave || !has_avx || !has_fma) return 0;
    xcr0 = ag__xgetbv0();
    if ((xcr0 & 0x6) != 0x6) return 0;               /* XMM and YMM state saved by the OS */
    __cpuid_count(7, 0, a, b, c, d);
    has_avx2 = (b >> 5) & 1; has_avx512f = (b >> 16) & 1;
    if (!has_avx2) return 0;
    if (has_avx512f && (xcr0 & 0xe6) == 0xe6) return 2; /* + opmask, ZMM_Hi256, Hi16_ZMM */
    return 1;
}

/* ------------------------------------------------------------------------------------
   x86 packing with 8x8 transposes (AVX); used by the AVX2 and AVX-512 paths.
   ------------------------------------------------------------------------------------ */
#define AG__TRANSPOSE8(r0, r1, r2, r3, r4, r5, r6, r7) do { \
    __m256 t0_ = _mm256_unpacklo_ps(r0, r1), t1_ = _mm256_unpackhi_ps(r0, r1); \
    __m256 t2_ = _mm256_unpacklo_ps(r2, r3), t3_ = _mm256_unpackhi_ps(r2, r3); \
    __m256 t4_ = _mm256_unpacklo_ps(r4, r5), t5_ = _mm256_unpackhi_ps(r4, r5); \
    __m256 t6_ = _mm256_unpacklo_ps(r6, r7), t7_ = _mm256_unpackhi_ps(r6, r7); \
    __m256 s0_ = _mm256_shuffle_ps(t0_, t2_, 0x44), s1_ = _mm256_shuffle_ps(t0_, t2_, 0xEE); \
    __m256 s2_ = _mm256_shuffle_ps(t1_, t3_, 0x44), s3_ = _mm256_shuffle_ps(t1_, t3_, 0xEE); \
    __m256 s4_ = _mm256_shuffle_ps(t4_, t6_, 0x44), s5_ = _mm256_shuffle_ps(t4_, t6_, 0xEE); \
    __m256 s6_ = _mm256_shuffle_ps(t5_, t7_, 0x44), s7_ = _mm256_shuffle_ps(t5_, t7_, 0xEE); \
    r0 = _mm256_permute2f128_ps(s0_, s4_, 0x20); r1 = _mm256_permute2f128_ps(s1_, s5_, 0x20); \
    r2 = _mm256_permute2f128_ps(s2_, s6_, 0x20); r3 = _mm256_permute2f128_ps(s3_, s7_, 0x20); \
    r4 = _mm256_permute2f128_ps(s0_, s4_, 0x31); r5 = _mm256_permute2f128_ps(s1_, s5_, 0x31); \
    r6 = _mm256_permute2f128_ps(s2_, s6_, 0x31); r7 = _mm256_permute2f128_ps(s3_, s7_, 0x31); \
} while (0)

/* Transposing copy of up to 8 source rows: dst[k*dstride + j] = src[j*sstride + k] for
   j < w (<= 8), k < kc; lanes j >= w of dst are written with zeros (dst rows are 8 wide).
   Loads past the row end are masked, so nothing outside the source is read. */
AG__TARGET_AVX2 static void ag__x86_transpose8(float *AG__KRESTRICT dst, int dstride,
                                               const float *AG__KRESTRICT src, size_t sstride,
                                               int w, int kc) {
    const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const float *s1 = src + (w > 1 ? 1 : 0) * sstride, *s2 = src + (w > 2 ? 2 : 0) * sstride;
    const float *s3 = src + (w > 3 ? 3 : 0) * sstride, *s4 = src + (w > 4 ? 4 : 0) * sstride;
    const float *s5 = src + (w > 5 ? 5 : 0) * sstride, *s6 = src + (w > 6 ? 6 : 0) * sstride;
    const float *s7 = src + (w > 7 ? 7 : 0) * sstride;
    int k;
    for (k = 0; k < kc; k += 8) {
        __m256 r0, r1, r2, r3, r4, r5, r6, r7, z = _mm256_setzero_ps();
        int nk = kc - k;
        if (nk >= 8) {
            r0 = _mm256_loadu_ps(src + k); r1 = _mm256_loadu_ps(s1 + k); r2 = _mm256_loadu_ps(s2 + k);
            r3 = _mm256_loadu_ps(s3 + k); r4 = _mm256_loadu_ps(s4 + k); r5 = _mm256_loadu_ps(s5 + k);
            r6 = _mm256_loadu_ps(s6 + k); r7 = _mm256_loadu_ps(s7 + k);
        } else {
            __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32(nk), iota);
            r0 = _mm256_maskload_ps(src + k, m); r1 = _mm256_maskload_ps(s1 + k, m);
            r2 = _mm256_maskload_ps(s2 + k, m); r3 = _mm256_maskload_ps(s3 + k, m);
            r4 = _mm256_maskload_ps(s4 + k, m); r5 = _mm256_maskload_ps(s5 + k, m);
            r6 = _mm256_maskload_ps(s6 + k, m); r7 = _mm256_maskload_ps(s7 + k, m);
        }
        if (w < 8) { /* rows past w read row 0 above (always valid): zero them */
            if (w < 2) r1 = z;
            if (w < 3) r2 = z;
            if (w < 4) r3 = z;
            if (w < 5) r4 = z;
            if (w < 6) r5 = z;
            if (w < 7) r6 = z;
            r7 = z;
        }
        AG__TRANSPOSE8(r0, r1, r2, r3, r4, r5, r6, r7);
        {
            float *d = dst + (size_t)k * dstride;
            _mm256_storeu_ps(d, r0);
            if (nk > 1) _mm256_storeu_ps(d + 1 * (size_t)dstride, r1);
            if (nk > 2) _mm256_storeu_ps(d + 2 * (size_t)dstride, r2);
            if (nk > 3) _mm256_storeu_ps(d + 3 * (size_t)dstride, r3);
            if (nk > 4) _mm256_storeu_ps(d + 4 * (size_t)dstride, r4);
            if (nk > 5) _mm256_storeu_ps(d + 5 * (size_t)dstride, r5);
            if (nk > 6) _mm256_storeu_ps(d + 6 * (size_t)dstride, r6);
            if (nk > 7) _mm256_storeu_ps(d + 7 * (size_t)dstride, r7);
        }
    }
}

/* copy w <= 8 floats into an 8-wide slot, zero filling */
#define AG__X86_COPY8(d, s, w, iota) do { \
    if ((w) >= 8) _mm256_storeu_ps((d), _mm256_loadu_ps(s)); \
    else _mm256_storeu_ps((d), _mm256_maskload_ps((s), _mm256_cmpgt_epi32(_mm256_set1_epi32(w), iota))); \
} while (0)

/* A micro-panel; mr (the packed stride) is a multiple of 8 on x86 */
AG__TARGET_AVX2 static void ag__x86_pack_a(float *AG__KRESTRICT dst, const float *AG__KRESTRICT A,
                                           int lda, int transA, int i0, int rows, int p0, int kc, int mr) {
    const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    int i, k;
    if (!transA) {
        for (i = 0; i < mr; i += 8)
            if (i < rows)
                ag__x86_transpose8(dst + i, mr, A + (size_t)(i0 + i) * lda + p0, (size_t)lda,
                                   ag__kmin(8, rows - i), kc);
            else
                for (k = 0; k < kc; k++) _mm256_storeu_ps(dst + (size_t)k * mr + i, _mm256_setzero_ps());
    } else {
        for (k = 0; k < kc; k++) {
            const float *s = A + (size_t)(p0 + k) * lda + i0;
            float *d = dst + (size_t)k * mr;
            for (i = 0; i < mr; i += 8) {
                int w = rows - i;
                if (w > 0) AG__X86_COPY8(d + i, s + i, w, iota);
                else _mm256_storeu_ps(d + i, _mm256_setzero_ps());
            }
        }
    }
}

/* B block; NR (a multiple of 8) is a compile-time constant in the callers below, so the
   panel copies unroll into plain vector moves (no memcpy calls). */
AG__TARGET_AVX2 static AG__KINLINE void ag__x86_pack_b_body(float *AG__KRESTRICT dst,
        const float *AG__KRESTRICT B, int ldb, int transB, int j0, int ncols, int p0, int kc, const int NR) {
    const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    int jp, j, k;
    if (!transB) {
        /* row by row through B (sequential reads), scattering into the panels */
        for (k = 0; k < kc; k++) {
            const float *s = B + (size_t)(p0 + k) * ldb + j0;
            float *d = dst + (size_t)k * NR;
            for (jp = 0; jp + NR <= ncols; jp += NR) {
                float *dp = d + (size_t)(jp / NR) * AG__PSTRIDE(NR, kc);
                const float *sp = s + jp;
                __m256 v0 = _mm256_loadu_ps(sp), v1 = _mm256_setzero_ps(), v2 = v1, v3 = v1;
                if (NR > 8) v1 = _mm256_loadu_ps(sp + 8);
                if (NR > 16) v2 = _mm256_loadu_ps(sp + 16);
                if (NR > 24) v3 = _mm256_loadu_ps(sp + 24);
                _mm256_storeu_ps(dp, v0);
                if (NR > 8) _mm256_storeu_ps(dp + 8, v1);
                if (NR > 16) _mm256_storeu_ps(dp + 16, v2);
                if (NR > 24) _mm256_storeu_ps(dp + 24, v3);
            }
            if (jp < ncols) {
                float *dp = d + (size_t)(jp / NR) * AG__PSTRIDE(NR, kc);
                for (j = 0; j < NR; j += 8) {
                    int w = ncols - jp - j;
                    if (w > 0) AG__X86_COPY8(dp + j, s + jp + j, w, iota);
                    else _mm256_storeu_ps(dp + j, _mm256_setzero_ps());
                }
            }
        }
    } else {
        for (jp = 0; jp < ncols; jp += NR) {
            float *d = dst + (size_t)(jp / NR) * AG__PSTRIDE(NR, kc);
            for (j = 0; j < NR; j += 8) {
                int w = ncols - jp - j;
                if (w > 0)
                    ag__x86_transpose8(d + j, NR, B + (size_t)(j0 + jp + j) * ldb + p0, (size_t)ldb,
                                       ag__kmin(8, w), kc);
                else
                    for (k = 0; k < kc; k++) _mm256_storeu_ps(d + (size_t)k * NR + j, _mm256_setzero_ps());
            }
        }
    }
}
AG__TARGET_AVX2 static void ag__x86_pack_b16(float *dst, const float *B, int ldb, int transB,
                                             int j0, int ncols, int p0, int kc, int nr) {
    (void)nr; ag__x86_pack_b_body(dst, B, ldb, transB, j0, ncols, p0, kc, 16);
}
AG__TARGET_AVX2 static void ag__x86_pack_b32(float *dst, const float *B, int ldb, int transB,
                                             int j0, int ncols, int p0, int kc, int nr) {
    (void)nr; ag__x86_pack_b_body(dst, B, ldb, transB, j0, ncols, p0, kc, 32);
}

/* ------------------------------------------------------------------------------------
   AVX2 + FMA micro-kernel: 6 x 16 (12 ymm accumulators), specialised per row count
   (1..6) and per column vectors (1..2); partial columns via masked load/store.
   ------------------------------------------------------------------------------------ */
#define AG__Y_MR 6
#define AG__Y_MRP 8   /* packed A stride */
#define AG__Y_NR 16

#define AG__Y_STEP(r) if (ROWS > r) { __m256 a_ = _mm256_broadcast_ss(ap + r); \
    c##r##0 = _mm256_fmadd_ps(a_, b0, c##r##0); if (NV > 1) c##r##1 = _mm256_fmadd_ps(a_, b1, c##r##1); }
#define AG__Y_K(off) do { \
    __m256 b0 = _mm256_loadu_ps(bp + (off) * AG__Y_NR), b1 = _mm256_setzero_ps(); \
    if (NV > 1) b1 = _mm256_loadu_ps(bp + (off) * AG__Y_NR + 8); \
    ap += (off) * AG__Y_MRP; \
    AG__Y_STEP(0) AG__Y_STEP(1) AG__Y_STEP(2) AG__Y_STEP(3) AG__Y_STEP(4) AG__Y_STEP(5) \
    ap -= (off) * AG__Y_MRP; } while (0)
#define AG__Y_OUT1(cr, v, m, full) do { \
    if (full) { if (accumulate) v = _mm256_add_ps(_mm256_loadu_ps(cr), v); _mm256_storeu_ps(cr, v); } \
    else { if (accumulate) v = _mm256_add_ps(_mm256_maskload_ps(cr, m), v); _mm256_maskstore_ps(cr, m, v); } \
} while (0)
#define AG__Y_STORE(r) if (ROWS > r) { float *cr_ = c + (size_t)(r) * ldc; \
    if (NV == 1) { AG__Y_OUT1(cr_, c##r##0, m0, full0); } \
    else { AG__Y_OUT1(cr_, c##r##0, m0, 1); AG__Y_OUT1(cr_ + 8, c##r##1, m1, full1); } }

AG__TARGET_AVX2 static AG__KINLINE void ag__y_body(int kc, const float *AG__KRESTRICT ap,
        const float *AG__KRESTRICT bp, float *AG__KRESTRICT c, int ldc, int accumulate, int cols,
        const int ROWS, const int NV) {
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    __m256i m0, m1, iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    int k, full0, full1, r;
    for (r = 0; r < ROWS; r++) /* C is read (or written) at the end: ask for it now */
        _mm_prefetch((const char *)(c + (size_t)r * ldc), _MM_HINT_T0);
    for (k = 0; k + 4 <= kc; k += 4) {
        AG__Y_K(0); AG__Y_K(1); AG__Y_K(2); AG__Y_K(3);
        ap += 4 * AG__Y_MRP; bp += 4 * AG__Y_NR;
    }
    for (; k < kc; k++) { AG__Y_K(0); ap += AG__Y_MRP; bp += AG__Y_NR; }
    m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(cols), iota);
    m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32(cols - 8), iota);
    full0 = cols >= 8; full1 = cols >= 16;
    AG__Y_STORE(0) AG__Y_STORE(1) AG__Y_STORE(2) AG__Y_STORE(3) AG__Y_STORE(4) AG__Y_STORE(5)
}

#define AG__Y_WRAP(R, V) AG__TARGET_AVX2 static void ag__y_k##R##_##V(int kc, const float *ap, \
    const float *bp, float *c, int ldc, int acc, int cols) { ag__y_body(kc, ap, bp, c, ldc, acc, cols, R, V); }
AG__Y_WRAP(1, 1) AG__Y_WRAP(2, 1) AG__Y_WRAP(3, 1) AG__Y_WRAP(4, 1) AG__Y_WRAP(5, 1) AG__Y_WRAP(6, 1)
AG__Y_WRAP(1, 2) AG__Y_WRAP(2, 2) AG__Y_WRAP(3, 2) AG__Y_WRAP(4, 2) AG__Y_WRAP(5, 2) AG__Y_WRAP(6, 2)

typedef void (*ag__tile_fn)(int kc, const float *ap, const float *bp, float *c, int ldc, int acc, int cols);

static void ag__y_kernel(int kc, const float *ap, const float *bp, float *c, int ldc,
                         int accumulate, int rows, int cols) {
    static const ag__tile_fn tab[AG__Y_MR][2] = {
        { ag__y_k1_1, ag__y_k1_2 }, { ag__y_k2_1, ag__y_k2_2 }, { ag__y_k3_1, ag__y_k3_2 },
        { ag__y_k4_1, ag__y_k4_2 }, { ag__y_k5_1, ag__y_k5_2 }, { ag__y_k6_1, ag__y_k6_2 } };
    tab[rows - 1][(cols - 1) >> 3](kc, ap, bp, c, ldc, accumulate, cols);
}

AG__TARGET_AVX2 static double ag__y_fma_loop(long iters, float seed) {
    __m256 m = _mm256_set1_ps(0.9999999f), d = _mm256_set1_ps(1e-7f);
    __m256 a0 = _mm256_set1_ps(seed), a1 = _mm256_add_ps(a0, d), a2 = _mm256_add_ps(a1, d);
    __m256 a3 = _mm256_add_ps(a2, d), a4 = _mm256_add_ps(a3, d), a5 = _mm256_add_ps(a4, d);
    __m256 a6 = _mm256_add_ps(a5, d), a7 = _mm256_add_ps(a6, d), a8 = _mm256_add_ps(a7, d);
    __m256 a9 = _mm256_add_ps(a8, d), a10 = _mm256_add_ps(a9, d), a11 = _mm256_add_ps(a10, d);
    float out[8];
    long it;
    for (it = 0; it < iters; it++) {
        a0 = _mm256_fmadd_ps(a0, m, d); a1 = _mm256_fmadd_ps(a1, m, d); a2 = _mm256_fmadd_ps(a2, m, d);
        a3 = _mm256_fmadd_ps(a3, m, d); a4 = _mm256_fmadd_ps(a4, m, d); a5 = _mm256_fmadd_ps(a5, m, d);
        a6 = _mm256_fmadd_ps(a6, m, d); a7 = _mm256_fmadd_ps(a7, m, d); a8 = _mm256_fmadd_ps(a8, m, d);
        a9 = _mm256_fmadd_ps(a9, m, d); a10 = _mm256_fmadd_ps(a10, m, d); a11 = _mm256_fmadd_ps(a11, m, d);
    }
    a0 = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                       _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
    a0 = _mm256_add_ps(a0, _mm256_add_ps(_mm256_add_ps(a8, a9), _mm256_add_ps(a10, a11)));
    _mm256_storeu_ps(out, a0);
    return (double)out[0] + out[7];
}

/* ------------------------------------------------------------------------------------
   AVX-512F micro-kernel: 14 x 32 (28 zmm accumulators), specialised per row count
   (1..14) and per column vectors (1..2); partial columns via opmask.
   ------------------------------------------------------------------------------------ */
#define AG__Z_MR 14
#define AG__Z_MRP 16  /* packed A stride */
#define AG__Z_NR 32

#define AG__Z_STEP(r) if (ROWS > r) { __m512 a_ = _mm512_set1_ps(ap[r]); \
    c##r##_0 = _mm512_fmadd_ps(a_, b0, c##r##_0); if (NV > 1) c##r##_1 = _mm512_fmadd_ps(a_, b1, c##r##_1); }
#define AG__Z_K(off) do { \
    __m512 b0 = _mm512_loadu_ps(bp + (off) * AG__Z_NR), b1 = _mm512_setzero_ps(); \
    if (NV > 1) b1 = _mm512_loadu_ps(bp + (off) * AG__Z_NR + 16); \
    ap += (off) * AG__Z_MRP; \
    AG__Z_STEP(0) AG__Z_STEP(1) AG__Z_STEP(2) AG__Z_STEP(3) AG__Z_STEP(4) AG__Z_STEP(5) AG__Z_STEP(6) \
    AG__Z_STEP(7) AG__Z_STEP(8) AG__Z_STEP(9) AG__Z_STEP(10) AG__Z_STEP(11) AG__Z_STEP(12) AG__Z_STEP(13) \
    ap -= (off) * AG__Z_MRP; } while (0)
#define AG__Z_STORE(r) if (ROWS > r) { float *cr_ = c + (size_t)(r) * ldc; \
    if (accumulate) c##r##_0 = _mm512_add_ps(_mm512_maskz_loadu_ps(m0, cr_), c##r##_0); \
    _mm512_mask_storeu_ps(cr_, m0, c##r##_0); \
    if (NV > 1) { if (accumulate) c##r##_1 = _mm512_add_ps(_mm512_maskz_loadu_ps(m1, cr_ + 16), c##r##_1); \
                  _mm512_mask_storeu_ps(cr_ + 16, m1, c##r##_1); } }

AG__TARGET_AVX512 static AG__KINLINE void ag__z_body(int kc, const float *AG__KRESTRICT ap,
        const float *AG__KRESTRICT bp, float *AG__KRESTRICT c, int ldc, int accumulate, int cols,
        const int ROWS, const int NV) {
    __m512 z = _mm512_setzero_ps();
    __m512 c0_0 = z, c0_1 = z, c1_0 = z, c1_1 = z, c2_0 = z, c2_1 = z, c3_0 = z, c3_1 = z;
    __m512 c4_0 = z, c4_1 = z, c5_0 = z, c5_1 = z, c6_0 = z, c6_1 = z, c7_0 = z, c7_1 = z;
    __m512 c8_0 = z, c8_1 = z, c9_0 = z, c9_1 = z, c10_0 = z, c10_1 = z, c11_0 = z, c11_1 = z;
    __m512 c12_0 = z, c12_1 = z, c13_0 = z, c13_1 = z;
    __mmask16 m0, m1;
    int k, r;
    for (r = 0; r < ROWS; r++) { /* C is read (or written) at the end: ask for it now */
        _mm_prefetch((const char *)(c + (size_t)r * ldc), _MM_HINT_T0);
        if (NV > 1) _mm_prefetch((const char *)(c + (size_t)r * ldc + 16), _MM_HINT_T0);
    }
    for (k = 0; k + 4 <= kc; k += 4) {
        AG__Z_K(0); AG__Z_K(1); AG__Z_K(2); AG__Z_K(3);
        ap += 4 * AG__Z_MRP; bp += 4 * AG__Z_NR;
    }
    for (; k < kc; k++) { AG__Z_K(0); ap += AG__Z_MRP; bp += AG__Z_NR; }
    m0 = (__mmask16)(cols >= 16 ? 0xFFFF : (1u << cols) - 1u);
    m1 = (__mmask16)(cols >= 32 ? 0xFFFF : cols <= 16 ? 0u : (1u << (cols - 16)) - 1u);
    AG__Z_STORE(0) AG__Z_STORE(1) AG__Z_STORE(2) AG__Z_STORE(3) AG__Z_STORE(4) AG__Z_STORE(5)
    AG__Z_STORE(6) AG__Z_STORE(7) AG__Z_STORE(8) AG__Z_STORE(9) AG__Z_STORE(10) AG__Z_STORE(11)
    AG__Z_STORE(12) AG__Z_STORE(13)
}

#define AG__Z_WRAP(R, V) AG__TARGET_AVX512 static void ag__z_k##R##_##V(int kc, const float *ap, \
    const float *bp, float *c, int ldc, int acc, int cols) { ag__z_body(kc, ap, bp, c, ldc, acc, cols, R, V); }
#define AG__Z_WRAP2(R) AG__Z_WRAP(R, 1) AG__Z_WRAP(R, 2)
AG__Z_WRAP2(1) AG__Z_WRAP2(2) AG__Z_WRAP2(3) AG__Z_WRAP2(4) AG__Z_WRAP2(5) AG__Z_WRAP2(6) AG__Z_WRAP2(7)
AG__Z_WRAP2(8) AG__Z_WRAP2(9) AG__Z_WRAP2(10) AG__Z_WRAP2(11) AG__Z_WRAP2(12) AG__Z_WRAP2(13) AG__Z_WRAP2(14)

static void ag__z_kernel(int kc, const float *ap, const float *bp, float *c, int ldc,
                         int accumulate, int rows, int cols) {
#define AG__Z_T(R) { ag__z_k##R##_1, ag__z_k##R##_2 }
    static const ag__tile_fn tab[AG__Z_MR][2] = {
        AG__Z_T(1), AG__Z_T(2), AG__Z_T(3), AG__Z_T(4), AG__Z_T(5), AG__Z_T(6), AG__Z_T(7),
        AG__Z_T(8), AG__Z_T(9), AG__Z_T(10), AG__Z_T(11), AG__Z_T(12), AG__Z_T(13), AG__Z_T(14) };
#undef AG__Z_T
    tab[rows - 1][(cols - 1) >> 4](kc, ap, bp, c, ldc, accumulate, cols);
}

AG__TARGET_AVX512 static double ag__z_fma_loop(long iters, float seed) {
    __m512 m = _mm512_set1_ps(0.9999999f), d = _mm512_set1_ps(1e-7f);
    __m512 a0 = _mm512_set1_ps(seed), a1 = _mm512_add_ps(a0, d), a2 = _mm512_add_ps(a1, d);
    __m512 a3 = _mm512_add_ps(a2, d), a4 = _mm512_add_ps(a3, d), a5 = _mm512_add_ps(a4, d);
    __m512 a6 = _mm512_add_ps(a5, d), a7 = _mm512_add_ps(a6, d), a8 = _mm512_add_ps(a7, d);
    __m512 a9 = _mm512_add_ps(a8, d), a10 = _mm512_add_ps(a9, d), a11 = _mm512_add_ps(a10, d);
    long it;
    for (it = 0; it < iters; it++) {
        a0 = _mm512_fmadd_ps(a0, m, d); a1 = _mm512_fmadd_ps(a1, m, d); a2 = _mm512_fmadd_ps(a2, m, d);
        a3 = _mm512_fmadd_ps(a3, m, d); a4 = _mm512_fmadd_ps(a4, m, d); a5 = _mm512_fmadd_ps(a5, m, d);
        a6 = _mm512_fmadd_ps(a6, m, d); a7 = _mm512_fmadd_ps(a7, m, d); a8 = _mm512_fmadd_ps(a8, m, d);
        a9 = _mm512_fmadd_ps(a9, m, d); a10 = _mm512_fmadd_ps(a10, m, d); a11 = _mm512_fmadd_ps(a11, m, d);
    }
    a0 = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)),
                       _mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(a6, a7)));
    a0 = _mm512_add_ps(a0, _mm512_add_ps(_mm512_add_ps(a8, a9), _mm512_add_ps(a10, a11)));
    {
        float out[16];
        _mm512_storeu_ps(out, a0);
        return (double)out[0] + out[15];
    }
}
#endif /* AG__KX86 */

#if AG__KNEON
/* ------------------------------------------------------------------------------------
   NEON micro-kernel (AArch64): 12 x 8 (24 q accumulators), specialised per row count.
   ------------------------------------------------------------------------------------ */
#define AG__N_MR 12
#define AG__N_NR 8
#define AG__N_STEP(r, av, lane) if (ROWS > r) { \
    c##r##_0 = vfmaq_laneq_f32(c##r##_0, b0, av, lane); c##r##_1 = vfmaq_laneq_f32(c##r##_1, b1, av, lane); }
#define AG__N_STORE1(cr, v, n) do { \
    if ((n) >= 4) { if (accumulate) v = vaddq_f32(vld1q_f32(cr), v); vst1q_f32(cr, v); } \
    else if ((n) > 0) { float t_[4]; int q_; vst1q_f32(t_, v); \
        for (q_ = 0; q_ < (n); q_++) (cr)[q_] = accumulate ? (cr)[q_] + t_[q_] : t_[q_]; } } while (0)
#define AG__N_STORE(r) if (ROWS > r) { float *cr_ = c + (size_t)(r) * ldc; \
    AG__N_STORE1(cr_, c##r##_0, cols); AG__N_STORE1(cr_ + 4, c##r##_1, cols - 4); }

static AG__KINLINE void ag__n_body(int kc, const float *AG__KRESTRICT ap, const float *AG__KRESTRICT bp,
                                   float *AG__KRESTRICT c, int ldc, int accumulate, int cols, const int ROWS) {
    float32x4_t z = vdupq_n_f32(0.0f);
    float32x4_t c0_0 = z, c0_1 = z, c1_0 = z, c1_1 = z, c2_0 = z, c2_1 = z, c3_0 = z, c3_1 = z;
    float32x4_t c4_0 = z, c4_1 = z, c5_0 = z, c5_1 = z, c6_0 = z, c6_1 = z, c7_0 = z, c7_1 = z;
    float32x4_t c8_0 = z, c8_1 = z, c9_0 = z, c9_1 = z, c10_0 = z, c10_1 = z, c11_0 = z, c11_1 = z;
    int k;
    for (k = 0; k < kc; k++) {
        float32x4_t b0 = vld1q_f32(bp), b1 = vld1q_f32(bp + 4);
        float32x4_t a0 = vld1q_f32(ap), a1 = z, a2 = z;
        if (ROWS > 4) a1 = vld1q_f32(ap + 4);
        if (ROWS > 8) a2 = vld1q_f32(ap + 8);
        AG__N_STEP(0, a0, 0) AG__N_STEP(1, a0, 1) AG__N_STEP(2, a0, 2) AG__N_STEP(3, a0, 3)
        AG__N_STEP(4, a1, 0) AG__N_STEP(5, a1, 1) AG__N_STEP(6, a1, 2) AG__N_STEP(7, a1, 3)
        AG__N_STEP(8, a2, 0) AG__N_STEP(9, a2, 1) AG__N_STEP(10, a2, 2) AG__N_STEP(11, a2, 3)
        ap += AG__N_MR; bp += AG__N_NR;
    }
    AG__N_STORE(0) AG__N_STORE(1) AG__N_STORE(2) AG__N_STORE(3) AG__N_STORE(4) AG__N_STORE(5)
    AG__N_STORE(6) AG__N_STORE(7) AG__N_STORE(8) AG__N_STORE(9) AG__N_STORE(10) AG__N_STORE(11)
}
#define AG__N_WRAP(R) static void ag__n_k##R(int kc, const float *ap, const float *bp, float *c, \
    int ldc, int acc, int cols) { ag__n_body(kc, ap, bp, c, ldc, acc, cols, R); }
AG__N_WRAP(1) AG__N_WRAP(2) AG__N_WRAP(3) AG__N_WRAP(4) AG__N_WRAP(5) AG__N_WRAP(6)
AG__N_WRAP(7) AG__N_WRAP(8) AG__N_WRAP(9) AG__N_WRAP(10) AG__N_WRAP(11) AG__N_WRAP(12)

typedef void (*ag__ntile_fn)(int kc, const float *ap, const float *bp, float *c, int ldc, int acc, int cols);
static void ag__n_kernel(int kc, const float *ap, const float *bp, float *c, int ldc,
                         int accumulate, int rows, int cols) {
    static const ag__ntile_fn tab[AG__N_MR] = { ag__n_k1, ag__n_k2, ag__n_k3, ag__n_k4, ag__n_k5,
        ag__n_k6, ag__n_k7, ag__n_k8, ag__n_k9, ag__n_k10, ag__n_k11, ag__n_k12 };
    tab[rows - 1](kc, ap, bp, c, ldc, accumulate, cols);
}

static double ag__n_fma_loop(long iters, float seed) {
    float32x4_t m = vdupq_n_f32(0.9999999f), d = vdupq_n_f32(1e-7f);
    float32x4_t a0 = vdupq_n_f32(seed), a1 = vaddq_f32(a0, d), a2 = vaddq_f32(a1, d);
    float32x4_t a3 = vaddq_f32(a2, d), a4 = vaddq_f32(a3, d), a5 = vaddq_f32(a4, d);
    float32x4_t a6 = vaddq_f32(a5, d), a7 = vaddq_f32(a6, d), a8 = vaddq_f32(a7, d);
    float32x4_t a9 = vaddq_f32(a8, d), a10 = vaddq_f32(a9, d), a11 = vaddq_f32(a10, d);
    long it;
    for (it = 0; it < iters; it++) {
        a0 = vfmaq_f32(d, a0, m); a1 = vfmaq_f32(d, a1, m); a2 = vfmaq_f32(d, a2, m);
        a3 = vfmaq_f32(d, a3, m); a4 = vfmaq_f32(d, a4, m); a5 = vfmaq_f32(d, a5, m);
        a6 = vfmaq_f32(d, a6, m); a7 = vfmaq_f32(d, a7, m); a8 = vfmaq_f32(d, a8, m);
        a9 = vfmaq_f32(d, a9, m); a10 = vfmaq_f32(d, a10, m); a11 = vfmaq_f32(d, a11, m);
    }
    a0 = vaddq_f32(vaddq_f32(vaddq_f32(a0, a1), vaddq_f32(a2, a3)), vaddq_f32(vaddq_f32(a4, a5), vaddq_f32(a6, a7)));
    a0 = vaddq_f32(a0, vaddq_f32(vaddq_f32(a8, a9), vaddq_f32(a10, a11)));
    return (double)vaddvq_f32(a0);
}
#endif /* AG__KNEON */

/* ------------------------------------------------------------------------------------
   Dispatch
   ------------------------------------------------------------------------------------ */
static int ag__kernels_init_isa(ag__kernels *kern, const char *isa, int num_threads) {
    ag__kernels k;
    memset(&k, 0, sizeof k);
    if (!isa) return 0;
    if (strcmp(isa, "scalar") == 0) {
        k.name = "scalar"; k.isa = AG__ISA_SCALAR; k.mr = AG__S_MR; k.mr_pack = AG__S_MR; k.nr = AG__S_NR;
        k.kc = 256; k.nc = 512; k.mc = 1024;
        k.pack_a = ag__pack_a_generic; k.pack_b = ag__pack_b_generic; k.kernel = ag__s_kernel;
        k.fma_loop = ag__s_fma_loop; k.fma_loop_flops = 16.0;
    }
#if AG__KX86
    else if (strcmp(isa, "avx2") == 0) {
        if (ag__x86_level() < 1) return 0;
        k.name = "avx2"; k.isa = AG__ISA_AVX2; k.mr = AG__Y_MR; k.mr_pack = AG__Y_MRP; k.nr = AG__Y_NR;
        k.kc = 256; k.nc = 512; k.mc = 1008;
        k.pack_a = ag__x86_pack_a; k.pack_b = ag__x86_pack_b16; k.kernel = ag__y_kernel;
        k.fma_loop = ag__y_fma_loop; k.fma_loop_flops = 12.0 * 8 * 2;
    } else if (strcmp(isa, "avx512") == 0) {
        if (ag__x86_level() < 2) return 0;
        k.name = "avx512"; k.isa = AG__ISA_AVX512; k.mr = AG__Z_MR; k.mr_pack = AG__Z_MRP; k.nr = AG__Z_NR;
        k.kc = 320; k.nc = 384; k.mc = 1008;  /* 256/512 .. 576/384: all within 3% here */
        k.pack_a = ag__x86_pack_a; k.pack_b = ag__x86_pack_b32; k.kernel = ag__z_kernel;
        k.fma_loop = ag__z_fma_loop; k.fma_loop_flops = 12.0 * 16 * 2;
    }
#endif
#if AG__KNEON
    else if (strcmp(isa, "neon") == 0) {
        k.name = "neon"; k.isa = AG__ISA_NEON; k.mr = AG__N_MR; k.mr_pack = AG__N_MR; k.nr = AG__N_NR;
        k.kc = 256; k.nc = 512; k.mc = 1008;
        k.pack_a = ag__pack_a_generic; k.pack_b = ag__pack_b_generic; k.kernel = ag__n_kernel;
        k.fma_loop = ag__n_fma_loop; k.fma_loop_flops = 12.0 * 4 * 2;
    }
#endif
    else return 0;
#ifdef _OPENMP
    k.num_threads = ag__threads(num_threads, 1, 0);
#else
    (void)num_threads;
    k.num_threads = 1;
#endif
    if (k.num_threads < 1) k.num_threads = 1;
    k.par_min = 65536.0 * 4;
    *kern = k;
    return 1;
}

static void ag__kernels_init(ag__kernels *kern, int num_threads) {
    static const char *const best[] = { "avx512", "avx2", "neon", "scalar" };
    const char *env = getenv("AUTOGAN_CPU");
    int i;
    if (env && *env && strcmp(env, "auto") != 0) {
        if (ag__kernels_init_isa(kern, env, num_threads)) return;
    }
    for (i = 0; i < 4; i++)
        if (ag__kernels_init_isa(kern, best[i], num_threads)) break;
    if (env && *env && strcmp(env, "auto") != 0) {
        size_t n = strlen(env);
        if (n > 40) n = 40;
        memcpy(kern->note, "AUTOGAN_CPU=", 12);
        memcpy(kern->note + 12, env, n);
        strcpy(kern->note + 12 + n, " is unknown or not available here; using ");
        strcat(kern->note, kern->name);
    }
}

static const char *ag__kernels_name(const ag__kernels *kern) { return kern->name; }
static const char *ag__kernels_note(const ag__kernels *kern) { return kern->note; }

/* ------------------------------------------------------------------------------------
   Blocking plan and the driver
   ------------------------------------------------------------------------------------ */
typedef struct ag__gemm_plan {
    int kc;            /* K block (depends on K and the path only: fixes the summation order) */
    int tm, tn;        /* tile rows (multiple of mr) and columns (multiple of nr) */
    int nbm, nbn;      /* tiles along M and N */
    int nt;            /* threads that will run */
    size_t per_thread; /* floats of scratch per thread (64-byte multiples) */
} ag__gemm_plan;

/* Estimated time (in multiply-adds) of the busiest thread when C is cut into tiles of
   tm x tn, handed out like schedule(static) does: a tile costs its rows x columns (rounded
   to 8) x K plus its packing (rows + columns) x K at ~24 multiply-adds per packed float
   (a measured fit: packing, short kernel calls and C traffic per panel; it makes e.g.
   256x64x2304 split along M, 1.3x faster on 2 threads than splitting N). */
static double ag__plan_cost(int M, int N, int K, int tm, int tn, int nt) {
    int nbm = (M + tm - 1) / tm, nbn = (N + tn - 1) / tn, tiles = nbm * nbn, t, th;
    int q = tiles / nt, extra = tiles % nt, first = 0;
    double worst = 0.0;
    for (th = 0; th < nt; th++) {
        int cnt = q + (th < extra ? 1 : 0);
        double c = 0.0;
        for (t = first; t < first + cnt; t++) {
            int rows = ag__kmin(tm, M - (t / nbn) * tm), cols = ag__kmin(tn, N - (t % nbn) * tn);
            c += ((double)rows * ((cols + 7) / 8 * 8) + 24.0 * (rows + cols)) * K;
        }
        first += cnt;
        if (c > worst) worst = c;
    }
    return worst;
}

static ag__gemm_plan ag__gemm_make_plan(const ag__kernels *kern, int M, int N, int K) {
    ag__gemm_plan p;
    int nkb, mp, np, bm0, bn0, nt = kern->num_threads;
    size_t a_floats, b_floats;
    nkb = K > 0 ? (K + kern->kc - 1) / kern->kc : 1;
    p.kc = K > 0 ? (K + nkb - 1) / nkb : 1;
    mp = (M + kern->mr - 1) / kern->mr;       /* micro-panels along M and N */
    np = (N + kern->nr - 1) / kern->nr;
    if (mp < 1) mp = 1;
    if (np < 1) np = 1;
    bm0 = (M + kern->mc - 1) / kern->mc;      /* tiles the cache blocking asks for */
    bn0 = (N + kern->nc - 1) / kern->nc;
    if (bm0 < 1) bm0 = 1;
    if (bn0 < 1) bn0 = 1;
    if (nt > 1 && (double)M * N * K < kern->par_min) nt = 1;
    p.tm = (mp + bm0 - 1) / bm0 * kern->mr;
    p.tn = (np + bn0 - 1) / bn0 * kern->nr;
    if (nt > 1 && bm0 * bn0 >= 8 * nt) {
        /* many tiles: only make their count a multiple of the threads */
        int d;
        for (d = 1; d < nt && (bm0 * bn0) % nt != 0; d++)
            if ((bm0 * (bn0 + d)) % nt == 0 && bn0 + d <= np) {
                p.tn = (np + bn0 + d - 1) / (bn0 + d) * kern->nr;
                break;
            }
    } else if (nt > 1) {
        /* few tiles: try finer cuts along M and N and keep the best balanced one */
        double best = ag__plan_cost(M, N, K, p.tm, p.tn, nt);
        int bm, bn, bm_max = ag__kmin(mp, bm0 + 4 * nt), bn_max = ag__kmin(np, bn0 + 4 * nt);
        for (bm = bm0; bm <= bm_max; bm++)
            for (bn = bn0; bn <= bn_max; bn++) {
                int tm = (mp + bm - 1) / bm * kern->mr, tn = (np + bn - 1) / bn * kern->nr;
                double c = ag__plan_cost(M, N, K, tm, tn, nt);
                if (c < best * 0.999) { best = c; p.tm = tm; p.tn = tn; }
            }
    }
    p.nbm = (M + p.tm - 1) / p.tm; if (p.nbm < 1) p.nbm = 1;
    p.nbn = (N + p.tn - 1) / p.tn; if (p.nbn < 1) p.nbn = 1;
    p.nt = ag__kmin(nt, p.nbm * p.nbn);
    a_floats = ((size_t)kern->mr_pack * p.kc + 15) / 16 * 16;
    b_floats = (size_t)(p.tn / kern->nr) * AG__PSTRIDE(kern->nr, p.kc);
    p.per_thread = (a_floats + b_floats + 15) / 16 * 16;   /* slices stay 64-byte aligned */
    return p;
}

static size_t ag__sgemm_scratch_bytes(const ag__kernels *kern, int M, int N, int K) {
    ag__gemm_plan p;
    if (M <= 0 || N <= 0 || K <= 0) return 0;
    p = ag__gemm_make_plan(kern, M, N, K);
    return (size_t)p.nt * p.per_thread * sizeof(float) + 64;
}

/* one tile of C: rows [i0, i1) x columns [j0, j1) over the whole K */
static void ag__gemm_tile(const ag__kernels *kern, const ag__gemm_plan *p, int transA, int transB,
                          int K, const float *A, int lda, const float *B, int ldb, float beta,
                          float *C, int ldc, int i0, int i1, int j0, int j1, float *abuf, float *bbuf) {
    const int mr = kern->mr, nr = kern->nr;
    int p0, i, j;
    for (p0 = 0; p0 < K; p0 += p->kc) {
        int kc = ag__kmin(p->kc, K - p0);
        int accumulate = p0 > 0 || beta != 0.0f;
        kern->pack_b(bbuf, B, ldb, transB, j0, j1 - j0, p0, kc, nr);
        for (i = i0; i < i1; i += mr) {
            int rows = ag__kmin(mr, i1 - i);
            float *ci = C + (size_t)i * ldc;
            kern->pack_a(abuf, A, lda, transA, i, rows, p0, kc, kern->mr_pack);
            for (j = j0; j < j1; j += nr)
                kern->kernel(kc, abuf, bbuf + (size_t)((j - j0) / nr) * AG__PSTRIDE(nr, kc), ci + j, ldc, accumulate,
                             rows, ag__kmin(nr, j1 - j));
        }
    }
}

/* fallback without scratch: the same product, unpacked and slow */
static void ag__sgemm_unpacked(int transA, int transB, int M, int N, int K, const float *A, int lda,
                               const float *B, int ldb, float beta, float *C, int ldc) {
    int i, j, k;
    for (i = 0; i < M; i++)
        for (j = 0; j < N; j++) {
            float acc = 0.0f;
            for (k = 0; k < K; k++) {
                float a = transA ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
                float b = transB ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
                acc += a * b;
            }
            C[(size_t)i * ldc + j] = beta != 0.0f ? C[(size_t)i * ldc + j] + acc : acc;
        }
}

static void ag__sgemm(const ag__kernels *kern, int transA, int transB, int M, int N, int K,
                      const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc,
                      void *scratch, size_t scratch_bytes) {
    ag__gemm_plan p;
    float *base;
    int t, ntiles;
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {
        if (beta == 0.0f) {
            int i;
            for (i = 0; i < M; i++) memset(C + (size_t)i * ldc, 0, (size_t)N * sizeof(float));
        }
        return;
    }
    p = ag__gemm_make_plan(kern, M, N, K);
    if (!scratch || scratch_bytes < (size_t)p.nt * p.per_thread * sizeof(float) + 64) {
        ag__sgemm_unpacked(transA, transB, M, N, K, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    base = (float *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    ntiles = p.nbm * p.nbn;
    if (p.nt <= 1) {
        for (t = 0; t < ntiles; t++) {
            int tm = t / p.nbn, tn = t % p.nbn;
            ag__gemm_tile(kern, &p, transA, transB, K, A, lda, B, ldb, beta, C, ldc,
                          tm * p.tm, ag__kmin(M, (tm + 1) * p.tm), tn * p.tn, ag__kmin(N, (tn + 1) * p.tn),
                          base, base + ((size_t)kern->mr_pack * p.kc + 15) / 16 * 16);
        }
        return;
    }
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(p.nt)
    for (t = 0; t < ntiles; t++) {
        int tm = t / p.nbn, tn = t % p.nbn;
        float *abuf = base + (size_t)omp_get_thread_num() * p.per_thread;
        ag__gemm_tile(kern, &p, transA, transB, K, A, lda, B, ldb, beta, C, ldc,
                      tm * p.tm, ag__kmin(M, (tm + 1) * p.tm), tn * p.tn, ag__kmin(N, (tn + 1) * p.tn),
                      abuf, abuf + ((size_t)kern->mr_pack * p.kc + 15) / 16 * 16);
    }
#endif
}

/* ------------------------------------------------------------------------------------
   FMA peak probe
   ------------------------------------------------------------------------------------ */
static double ag__kern_now(void) {
#ifdef _OPENMP
    return omp_get_wtime();
#else
    return (double)clock() / CLOCKS_PER_SEC;
#endif
}

static double ag__measure_fma_peak_gflops(const ag__kernels *kern, int threads) {
    volatile double sink = 0.0;
    double acc = 0.0, best = 0.0, t0, dt = 0.0, total_flops;
    long iters = 1 << 16;
    int rep;
    if (threads < 1) threads = 1;
#ifndef _OPENMP
    threads = 1;
#endif
    /* calibrate to about 0.1 s per run on one thread */
    for (;;) {
        t0 = ag__kern_now();
        sink = sink + kern->fma_loop(iters, 1.0f);
        dt = ag__kern_now() - t0;
        if (dt > 0.05 || iters > (1L << 40)) break;
        iters *= 2;
    }
    if (dt > 0) iters = (long)(iters * (0.1 / dt)) + 1;
    for (rep = 0; rep < 5; rep++) {
        t0 = ag__kern_now();
#ifdef _OPENMP
        {
            int th;
#pragma omp parallel for schedule(static) num_threads(threads)
            for (th = 0; th < threads; th++) {
                double r = kern->fma_loop(iters, 1.0f + (float)th);
#pragma omp atomic
                acc += r;
            }
        }
#else
        sink = sink + kern->fma_loop(iters, 1.0f);
#endif
        dt = ag__kern_now() - t0;
        total_flops = (double)iters * kern->fma_loop_flops * threads;
        if (dt > 0 && total_flops / dt > best) best = total_flops / dt;
    }
    sink = sink + acc;
    return best * 1e-9;
}

/* the context's kernel table */
static void ag__kernels_setup(ag_ctx *ctx) {
    ag__kernels *k = (ag__kernels *)AG_MALLOC(sizeof(ag__kernels));
    if (!k) return;
    memset(k, 0, sizeof *k);
    ag__kernels_init(k, ctx->num_threads);
    ctx->kern = k;
}
static void ag__kernels_release(ag_ctx *ctx) { AG_FREE(ctx->kern); ctx->kern = NULL; }
static void ag__kernels_set_threads(ag_ctx *ctx) { if (ctx->kern) ctx->kern->num_threads = ctx->num_threads; }
AGDEF const char *ag_ctx_cpu_name(const ag_ctx *ctx) { return ag__kernels_name(ctx->kern); }
AGDEF double ag_ctx_fma_peak_gflops(const ag_ctx *ctx) { return ag__measure_fma_peak_gflops(ctx->kern, ctx->num_threads); }

/* im2col for one image: x[C,H,W] -> col[C*kh*kw, OH*OW], rows `ldc` floats apart (so
   several images can sit side by side in one wide matrix) */
static void ag__im2col(const ag__kernels *kern, const float *x, int C, int H, int W, int kh, int kw,
                       int sh, int sw, int ph, int pw, int OH, int OW, float *col, size_t ldc) {
    long r; int ag__nt = ag__threads(kern->num_threads, (size_t)C * kh * kw * OH * OW, 65536);
    (void)ag__nt;
    AG__PARALLEL_FOR(ag__nt)
    for (r = 0; r < (long)C * kh * kw; r++) {
        int c = (int)(r / (kh * kw)), ki = (int)(r / kw % kh), kj = (int)(r % kw), oy, ox;
        float *dst = col + (size_t)r * ldc;
        const float *src = x + (size_t)c * H * W;
        if (sh == 1 && sw == 1 && OW == W) {
            /* rows line up: one copy of the shifted plane, then zero what fell outside
               (rows above/below and the |dx| columns that wrapped from the next row) */
            int dy = ki - ph, dx = kj - pw, oy0 = dy < 0 ? -dy : 0, oy1 = H - dy < OH ? H - dy : OH;
            long s0, n, lo = 0, hi;
            if (oy1 <= oy0 || dx >= W || -dx >= W) { memset(dst, 0, (size_t)OH * OW * sizeof(float)); continue; }
            if (oy0 > 0) memset(dst, 0, (size_t)oy0 * W * sizeof(float));
            if (oy1 < OH) memset(dst + (size_t)oy1 * W, 0, (size_t)(OH - oy1) * W * sizeof(float));
            s0 = (long)(oy0 + dy) * W + dx; n = (long)(oy1 - oy0) * W; hi = n;
            if (s0 < 0) lo = -s0;
            if (s0 + n > (long)H * W) hi = (long)H * W - s0;
            if (hi > lo) memcpy(dst + (size_t)oy0 * W + lo, src + s0 + lo, (size_t)(hi - lo) * sizeof(float));
            for (oy = oy0; oy < oy1; oy++) {
                float *d = dst + (size_t)oy * W;
                if (dx > 0) for (ox = W - dx; ox < W; ox++) d[ox] = 0.0f;
                else for (ox = 0; ox < -dx; ox++) d[ox] = 0.0f;
            }
            continue;
        }
        for (oy = 0; oy < OH; oy++) {
            int iy = oy * sh - ph + ki;
            float *d = dst + (size_t)oy * OW;
            if (iy < 0 || iy >= H) { for (ox = 0; ox < OW; ox++) d[ox] = 0.0f; continue; }
            if (sw == 1) {
                int ix0 = -pw + kj, lo = ix0 < 0 ? -ix0 : 0, hi = W - ix0 < OW ? W - ix0 : OW;
                const float *srow = src + (size_t)iy * W + ix0;
                if (hi < lo) hi = lo;
                for (ox = 0; ox < lo; ox++) d[ox] = 0.0f;
                for (; ox < hi; ox++) d[ox] = srow[ox];
                for (; ox < OW; ox++) d[ox] = 0.0f;
            } else {
                for (ox = 0; ox < OW; ox++) {
                    int ix = ox * sw - pw + kj;
                    d[ox] = (ix >= 0 && ix < W) ? src[iy * W + ix] : 0.0f;
                }
            }
        }
    }
}

/* col2im (the adjoint): x[C,H,W] += fold(col[C*kh*kw, OH*OW]) */
static void ag__col2im(const ag__kernels *kern, const float *col, int C, int H, int W, int kh, int kw,
                       int sh, int sw, int ph, int pw, int OH, int OW, float *x, size_t ldc) {
    long c; int ag__nt = ag__threads(kern->num_threads, (size_t)C * kh * kw * OH * OW, 65536);
    (void)ag__nt;
    AG__PARALLEL_FOR(ag__nt)
    for (c = 0; c < C; c++) {
        int ki, kj, oy, ox;
        float *dst = x + (size_t)c * H * W;
        for (ki = 0; ki < kh; ki++) for (kj = 0; kj < kw; kj++) {
            const float *src = col + ((size_t)(c * kh + ki) * kw + kj) * ldc;
            for (oy = 0; oy < OH; oy++) {
                int iy = oy * sh - ph + ki;
                if (iy < 0 || iy >= H) continue;
                for (ox = 0; ox < OW; ox++) {
                    int ix = ox * sw - pw + kj;
                    if (ix >= 0 && ix < W) dst[iy * W + ix] += src[oy * OW + ox];
                }
            }
        }
    }
}

/* planes of images side by side: dst[C, cnt*P] <- src images [cnt][C, P], and back */
static void ag__gather_planes(const float *src, int cnt, int C, size_t P, float *dst) {
    int j, c;
    for (j = 0; j < cnt; j++) for (c = 0; c < C; c++)
        memcpy(dst + (size_t)c * cnt * P + (size_t)j * P, src + ((size_t)j * C + c) * P, P * sizeof(float));
}
static void ag__scatter_planes(const float *src, int cnt, int C, size_t P, float *dst, int accumulate) {
    int j, c; size_t i;
    for (j = 0; j < cnt; j++) for (c = 0; c < C; c++) {
        const float *s = src + (size_t)c * cnt * P + (size_t)j * P; float *d = dst + ((size_t)j * C + c) * P;
        if (accumulate) for (i = 0; i < P; i++) d[i] += s[i];
        else memcpy(d, s, P * sizeof(float));
    }
}

/* ------------------------------------------------------------------------------------
   Winograd F(4x4, 3x3) for stride-1 3x3 convolutions (Lavin & Gray, 2016). A 6x6 input
   tile d and a 3x3 filter g give the 4x4 output tile Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A, so an
   output costs 36/16 multiplies per input channel instead of 9. Summing over input
   channels turns into 36 independent GEMMs, one per tile-domain position xi = 6i + j:
       M[xi] (O x T) = U[xi] (O x C) · V[xi] (C x T)          T = tiles
   Layouts: U[xi][o][c]; V[c][xi][t] and M[o][xi][t] with rows `ld` floats apart (the
   GEMM for xi reads every 36th row). Tiles are numbered image by image, then by tile
   row, then tile column; tile (ty, tx) covers outputs [4ty, 4ty+4) x [4tx, 4tx+4) and
   inputs from (4ty - p, 4tx - p), p the padding. The transforms gather AG__WTB tiles at
   a time into [36][tiles] blocks, so every arithmetic loop runs over contiguous tiles.
   ------------------------------------------------------------------------------------ */

/* Bᵀ applied to six values (a row or a column of a 6x6 tile) */
#define AG__WINO_BT(d0, d1, d2, d3, d4, d5, o0, o1, o2, o3, o4, o5) do { \
    float d_1 = d1, d_2 = d2, d_3 = d3, d_4 = d4;                    \
    o0 = 4.0f * (d0) - 5.0f * d_2 + d_4;                              \
    o1 = -4.0f * (d_1 + d_2) + d_3 + d_4;                             \
    o2 = 4.0f * (d_1 - d_2) - d_3 + d_4;                              \
    o3 = 2.0f * (d_3 - d_1) - d_2 + d_4;                              \
    o4 = 2.0f * (d_1 - d_3) - d_2 + d_4;                              \
    o5 = 4.0f * d_1 - 5.0f * d_3 + (d5);                              \
} while (0)
/* Aᵀ applied to six values, giving four */
#define AG__WINO_AT(m0, m1, m2, m3, m4, m5, o0, o1, o2, o3) do {    \
    float s12 = (m1) + (m2), d12 = (m1) - (m2), s34 = (m3) + (m4), d34 = (m3) - (m4); \
    o0 = (m0) + s12 + s34;                                            \
    o1 = d12 + 2.0f * d34;                                            \
    o2 = s12 + 4.0f * s34;                                            \
    o3 = d12 + 8.0f * d34 + (m5);                                     \
} while (0)
/* A applied to four values (the adjoint of Aᵀ), giving six */
#define AG__WINO_A(d0, d1, d2, d3, o0, o1, o2, o3, o4, o5) do {     \
    float s02 = (d0) + (d2), s13 = (d1) + (d3), e02 = (d0) + 4.0f * (d2), e13 = 2.0f * (d1) + 8.0f * (d3); \
    o0 = (d0); o1 = s02 + s13; o2 = s02 - s13; o3 = e02 + e13; o4 = e02 - e13; o5 = (d3); \
} while (0)

static const double ag__wino_G[6][3] = {
    { 1.0 / 4, 0, 0 }, { -1.0 / 6, -1.0 / 6, -1.0 / 6 }, { -1.0 / 6, 1.0 / 6, -1.0 / 6 },
    { 1.0 / 24, 1.0 / 12, 1.0 / 6 }, { 1.0 / 24, -1.0 / 12, 1.0 / 6 }, { 0, 0, 1 } };

/* U[xi][r][s] = G g Gᵀ with g = w[r][s] (w is [R, S, 3, 3]); with `flip`, g = w[s][r]
   rotated by 180 degrees (w is [S, R, 3, 3]): the filter of the data gradient */
/* G applied to three values (a column or row of a 3x3 filter), giving six */
#define AG__WINO_G(a, b, c, o0, o1, o2, o3, o4, o5) do {                  \
    float g_a = (a), g_b = (b), g_c = (c), e = g_a * (1.0f / 24) + g_c * (1.0f / 6), f = g_b * (1.0f / 12); \
    o0 = 0.25f * g_a; o1 = -(g_a + g_b + g_c) * (1.0f / 6); o2 = -(g_a - g_b + g_c) * (1.0f / 6); \
    o3 = e + f; o4 = e - f; o5 = g_c;                                       \
} while (0)
static void ag__wino_filter(const ag__kernels *kern, const float *w, int R, int S, int flip, float *U) {
    long blk, nblk = ((long)R * S + 15) / 16; int ag__nt = ag__threads(kern->num_threads, (size_t)R * S, 256);
    size_t plane = (size_t)R * S;
    (void)ag__nt;
    AG__PARALLEL_FOR(ag__nt)
    for (blk = 0; blk < nblk; blk++) {   /* 16 filters at a time, the loops run across them */
        float g[9][16], t[18][16], u[6][16];
        long rs0 = blk * 16;
        int nb = (int)((long)R * S - rs0 < 16 ? (long)R * S - rs0 : 16), k, ab, b, i, j;
        for (k = 0; k < nb; k++) {
            long rs = rs0 + k; int r = (int)(rs / S), s = (int)(rs % S);
            for (ab = 0; ab < 9; ab++)
                g[ab][k] = flip ? w[((size_t)s * R + r) * 9 + 8 - ab] : w[(size_t)rs * 9 + ab];
        }
        for (b = 0; b < 3; b++)   /* t[i][b] = sum_a G[i][a] g[a][b] */
            for (k = 0; k < nb; k++)
                AG__WINO_G(g[b][k], g[3 + b][k], g[6 + b][k], t[b][k], t[3 + b][k], t[6 + b][k], t[9 + b][k], t[12 + b][k], t[15 + b][k]);
        for (i = 0; i < 6; i++) {  /* U[i][j] = sum_b t[i][b] G[j][b] */
            for (k = 0; k < nb; k++)
                AG__WINO_G(t[3 * i][k], t[3 * i + 1][k], t[3 * i + 2][k], u[0][k], u[1][k], u[2][k], u[3][k], u[4][k], u[5][k]);
            for (j = 0; j < 6; j++) memcpy(U + (size_t)(i * 6 + j) * plane + rs0, u[j], (size_t)nb * sizeof(float));
        }
    }
}

/* gw[r][s] += Gᵀ dU[xi][r][s] G: the weight gradient back from the tile domain */
static void ag__wino_filter_grad(const ag__kernels *kern, const float *dU, int R, int S, float *gw) {
    long rs; int ag__nt = ag__threads(kern->num_threads, (size_t)R * S, 256);
    size_t plane = (size_t)R * S;
    (void)ag__nt;
    AG__PARALLEL_FOR(ag__nt)
    for (rs = 0; rs < (long)R * S; rs++) {
        int a, b, i, j;
        double t[3][6];
        for (a = 0; a < 3; a++) for (j = 0; j < 6; j++) {
            double acc = 0.0;
            for (i = 0; i < 6; i++) acc += ag__wino_G[i][a] * dU[(size_t)(i * 6 + j) * plane + rs];
            t[a][j] = acc;
        }
        for (a = 0; a < 3; a++) for (b = 0; b < 3; b++) {
            double acc = 0.0;
            for (j = 0; j < 6; j++) acc += t[a][j] * ag__wino_G[j][b];
            gw[(size_t)rs * 9 + a * 3 + b] += (float)acc;
        }
    }
}

/* Geometry of one conv for the tile transforms: input planes H x W, padding p, output
   OH x OW cut into th x tw tiles (T1 = th * tw per image). */
/* bilinear resampling: output i reads inputs i0 and i1 with weights w0 and w1 */
typedef struct ag__lerp { int i0, i1; float w0, w1; } ag__lerp;
/* An input read through a x2 upsampling (the conv of an upsampled tensor without the
   upsampled tensor): `mode` 1 nearest (rows ny[], columns nx[]), 2 bilinear (ty[], tx[]),
   the stored planes SH x SW. */
typedef struct ag__wino_src { int mode, SH, SW; const int *ny, *nx; const ag__lerp *ty, *tx; } ag__wino_src;
typedef struct ag__wino_geom { int H, W, p, OH, OW, th, tw; size_t T1, plane; const ag__wino_src *src; } ag__wino_geom;
static ag__wino_geom ag__wino_geometry(int H, int W, int p, int OH, int OW, const ag__wino_src *src) {
    ag__wino_geom g;
    g.H = H; g.W = W; g.p = p; g.OH = OH; g.OW = OW; g.th = (OH + 3) / 4; g.tw = (OW + 3) / 4;
    g.T1 = (size_t)g.th * g.tw;
    g.src = src; g.plane = src ? (size_t)src->SH * src->SW : (size_t)H * W;
    return g;
}
#define AG__WTB 64   /* tiles transformed together (vectors run over them) */

/* row iy of an [H, W] plane from column x0 on, 4n + extra values, zero outside the plane */
static void ag__wino_line(const float *plane, int H, int W, int iy, int x0, int len, float *line) {
    int lo = x0 < 0 ? -x0 : 0, hi = W - x0 < len ? W - x0 : len;
    if (iy < 0 || iy >= H || hi <= lo) { memset(line, 0, (size_t)len * sizeof(float)); return; }
    if (lo > 0) memset(line, 0, (size_t)lo * sizeof(float));
    if (hi < len) memset(line + hi, 0, (size_t)(len - hi) * sizeof(float));
    memcpy(line + lo, plane + (size_t)iy * W + x0 + lo, (size_t)(hi - lo) * sizeof(float));
}
/* the same from the upsampled view of a stored plane (the products are those of
   ag_upsample_nearest / ag_upsample_bilinear, so the values are bit-identical) */
static void ag__wino_line_src(const float *plane, const ag__wino_src *s, int H, int W, int iy, int x0, int len, float *line) {
    int lo = x0 < 0 ? -x0 : 0, hi = W - x0 < len ? W - x0 : len, k;
    if (!s) { ag__wino_line(plane, H, W, iy, x0, len, line); return; }
    if (iy < 0 || iy >= H || hi <= lo) { memset(line, 0, (size_t)len * sizeof(float)); return; }
    if (lo > 0) memset(line, 0, (size_t)lo * sizeof(float));
    if (hi < len) memset(line + hi, 0, (size_t)(len - hi) * sizeof(float));
    if (s->mode == 1) {
        const float *r = plane + (size_t)s->ny[iy] * s->SW; const int *nx = s->nx + x0;
        for (k = lo; k < hi; k++) line[k] = r[nx[k]];
    } else {
        const ag__lerp *ty = s->ty + iy, *tx = s->tx + x0;
        const float *r0 = plane + (size_t)ty->i0 * s->SW, *r1 = plane + (size_t)ty->i1 * s->SW;
        for (k = lo; k < hi; k++)
            line[k] = ty->w0 * (tx[k].w0 * r0[tx[k].i0] + tx[k].w1 * r0[tx[k].i1])
                    + ty->w1 * (tx[k].w0 * r1[tx[k].i0] + tx[k].w1 * r1[tx[k].i1]);
    }
}

/* the last pass of a transform, written straight to the tile buffer's six rows */
static void ag__wino_bt_rows(const float *AG__KRESTRICT e0, const float *AG__KRESTRICT e1, const float *AG__KRESTRICT e2,
                             const float *AG__KRESTRICT e3, const float *AG__KRESTRICT e4, const float *AG__KRESTRICT e5,
                             float *AG__KRESTRICT v0, float *AG__KRESTRICT v1, float *AG__KRESTRICT v2,
                             float *AG__KRESTRICT v3, float *AG__KRESTRICT v4, float *AG__KRESTRICT v5, int n) {
    int k;
    for (k = 0; k < n; k++) AG__WINO_BT(e0[k], e1[k], e2[k], e3[k], e4[k], e5[k], v0[k], v1[k], v2[k], v3[k], v4[k], v5[k]);
}
static void ag__wino_a_rows(const float *AG__KRESTRICT e0, const float *AG__KRESTRICT e1, const float *AG__KRESTRICT e2,
                            const float *AG__KRESTRICT e3,
                            float *AG__KRESTRICT g0, float *AG__KRESTRICT g1, float *AG__KRESTRICT g2,
                            float *AG__KRESTRICT g3, float *AG__KRESTRICT g4, float *AG__KRESTRICT g5, int n) {
    int k;
    for (k = 0; k < n; k++) AG__WINO_A(e0[k], e1[k], e2[k], e3[k], g0[k], g1[k], g2[k], g3[k], g4[k], g5[k]);
}

/* V[c][xi][t] = Bᵀ d B for the tiles t of cnt images x[cnt][C, H, W] (rows `ld` apart,
   channel c at row 36·c): the 6x6 windows are gathered into D[36][tiles], then both
   passes of Bᵀ run as vector loops over the tiles */
static void ag__wino_input(const ag__kernels *kern, const float *x, int cnt, int C, const ag__wino_geom *g, float *V, size_t ld) {
    long c; size_t T = (size_t)cnt * g->T1;
    int ag__nt = ag__threads(kern->num_threads, (size_t)C * T, 512);
    (void)ag__nt;
    AG__PARALLEL_FOR(ag__nt)
    for (c = 0; c < C; c++) {
        float D[36][AG__WTB], E[36][AG__WTB], line[4 * AG__WTB + 8];
        size_t t0, t;
        int r, s, i, k;
        for (t0 = 0; t0 < T; t0 += AG__WTB) {
            int nb = (int)(T - t0 < AG__WTB ? T - t0 : AG__WTB);
            for (t = t0; t < t0 + (size_t)nb;) {   /* gather by runs of tiles along a tile row */
                size_t img = t / g->T1, rem = t % g->T1;
                int ty = (int)(rem / g->tw), tx = (int)(rem % g->tw), run = g->tw - tx, o = (int)(t - t0);
                const float *xc = x + (img * C + c) * g->plane;
                if (run > nb - o) run = nb - o;
                for (r = 0; r < 6; r++) {
                    ag__wino_line_src(xc, g->src, g->H, g->W, 4 * ty - g->p + r, 4 * tx - g->p, 4 * run + 2, line);
                    for (s = 0; s < 6; s++) {
                        float *d = D[r * 6 + s] + o;
                        for (k = 0; k < run; k++) d[k] = line[4 * k + s];
                    }
                }
                t += run;
            }
            /* Bᵀ down the columns: E[i][s] = sum_r Bᵀ[i][r] D[r][s] */
            for (s = 0; s < 6; s++)
                for (k = 0; k < nb; k++)
                    AG__WINO_BT(D[s][k], D[6 + s][k], D[12 + s][k], D[18 + s][k], D[24 + s][k], D[30 + s][k],
                                E[s][k], E[6 + s][k], E[12 + s][k], E[18 + s][k], E[24 + s][k], E[30 + s][k]);
            /* B along the rows, straight into V: V[i][j] = sum_s E[i][s] Bᵀ[j][s] */
            for (i = 0; i < 6; i++) {
                float *v = V + ((size_t)c * 36 + 6 * i) * ld + t0;
                ag__wino_bt_rows(E[6 * i], E[6 * i + 1], E[6 * i + 2], E[6 * i + 3], E[6 * i + 4], E[6 * i + 5],
                                 v, v + ld, v + 2 * ld, v + 3 * ld, v + 4 * ld, v + 5 * ld, nb);
            }
        }
    }
}

/* y[cnt][O, OH, OW] = (or += with `accumulate`) Aᵀ M A (+ bias) from M[o][xi][t] (rows `ld` apart) */
static void ag__wino_output(const ag__kernels *kern, const float *M, int cnt, int O, const ag__wino_geom *g, size_t ld,
                            const float *bias, float *y, int accumulate) {
    long o; size_t T = (size_t)cnt * g->T1;
    int ag__nt = ag__threads(kern->num_threads, (size_t)O * T, 512);
    (void)ag__nt;
    AG__PARALLEL_FOR(ag__nt)
    for (o = 0; o < O; o++) {
        float R[24][AG__WTB], Y[16][AG__WTB], line[4 * AG__WTB];
        float bv = bias ? bias[o] : 0.0f;
        size_t t0, t;
        int r, q, i, k;
        for (t0 = 0; t0 < T; t0 += AG__WTB) {
            int nb = (int)(T - t0 < AG__WTB ? T - t0 : AG__WTB);
            /* Aᵀ along the rows: R[i][q] = sum_j M[i][j] Aᵀ[q][j] */
            for (i = 0; i < 6; i++) {
                const float *m = M + ((size_t)o * 36 + 6 * i) * ld + t0;
                for (k = 0; k < nb; k++)
                    AG__WINO_AT(m[k], m[ld + k], m[2 * ld + k], m[3 * ld + k], m[4 * ld + k], m[5 * ld + k],
                                R[4 * i][k], R[4 * i + 1][k], R[4 * i + 2][k], R[4 * i + 3][k]);
            }
            /* Aᵀ down the columns: Y[r][q] = sum_i Aᵀ[r][i] R[i][q] */
            for (q = 0; q < 4; q++)
                for (k = 0; k < nb; k++)
                    AG__WINO_AT(R[q][k], R[4 + q][k], R[8 + q][k], R[12 + q][k], R[16 + q][k], R[20 + q][k],
                                Y[q][k], Y[4 + q][k], Y[8 + q][k], Y[12 + q][k]);
            for (t = t0; t < t0 + (size_t)nb;) {   /* scatter by runs along a tile row */
                size_t img = t / g->T1, rem = t % g->T1;
                int ty = (int)(rem / g->tw), tx = (int)(rem % g->tw), run = g->tw - tx, off = (int)(t - t0), n;
                float *yo = y + (img * O + o) * g->OH * g->OW;
                if (run > nb - off) run = nb - off;
                n = ag__kmin(4 * run, g->OW - 4 * tx);
                for (r = 0; r < 4 && 4 * ty + r < g->OH; r++) {
                    float *row = yo + (size_t)(4 * ty + r) * g->OW + 4 * tx;
                    const float *y0 = Y[4 * r] + off, *y1 = Y[4 * r + 1] + off, *y2 = Y[4 * r + 2] + off, *y3 = Y[4 * r + 3] + off;
                    for (k = 0; k < run; k++) { line[4 * k] = y0[k]; line[4 * k + 1] = y1[k]; line[4 * k + 2] = y2[k]; line[4 * k + 3] = y3[k]; }
                    if (accumulate) for (k = 0; k < n; k++) row[k] += line[k];
                    else for (k = 0; k < n; k++) row[k] = line[k] + bv;
                }
                t += run;
            }
        }
    }
}

/* G[o][xi][t] = A dy Aᵀ for the 4x4 tiles of the output gradient dy[cnt][O, OH, OW]
   (the tile-domain gradient the weight-gradient GEMMs take) */
static void ag__wino_grad_tiles(const ag__kernels *kern, const float *dy, int cnt, int O, const ag__wino_geom *g, float *G, size_t ld) {
    long o; size_t T = (size_t)cnt * g->T1;
    int ag__nt = ag__threads(kern->num_threads, (size_t)O * T, 512);
    (void)ag__nt;
    AG__PARALLEL_FOR(ag__nt)
    for (o = 0; o < O; o++) {
        float D[16][AG__WTB], E[24][AG__WTB], line[4 * AG__WTB];
        size_t t0, t;
        int r, q, i, k;
        for (t0 = 0; t0 < T; t0 += AG__WTB) {
            int nb = (int)(T - t0 < AG__WTB ? T - t0 : AG__WTB);
            for (t = t0; t < t0 + (size_t)nb;) {
                size_t img = t / g->T1, rem = t % g->T1;
                int ty = (int)(rem / g->tw), tx = (int)(rem % g->tw), run = g->tw - tx, off = (int)(t - t0);
                const float *dyo = dy + (img * O + o) * g->OH * g->OW;
                if (run > nb - off) run = nb - off;
                for (r = 0; r < 4; r++) {
                    ag__wino_line(dyo, g->OH, g->OW, 4 * ty + r, 4 * tx, 4 * run, line);
                    for (q = 0; q < 4; q++) {
                        float *d = D[4 * r + q] + off;
                        for (k = 0; k < run; k++) d[k] = line[4 * k + q];
                    }
                }
                t += run;
            }
            /* A down the columns: E[i][q] = sum_r A[i][r] D[r][q] */
            for (q = 0; q < 4; q++)
                for (k = 0; k < nb; k++)
                    AG__WINO_A(D[q][k], D[4 + q][k], D[8 + q][k], D[12 + q][k],
                               E[q][k], E[4 + q][k], E[8 + q][k], E[12 + q][k], E[16 + q][k], E[20 + q][k]);
            /* Aᵀ along the rows, straight into G: G[i][j] = sum_q E[i][q] A[j][q] */
            for (i = 0; i < 6; i++) {
                float *gr = G + ((size_t)o * 36 + 6 * i) * ld + t0;
                ag__wino_a_rows(E[4 * i], E[4 * i + 1], E[4 * i + 2], E[4 * i + 3],
                                gr, gr + ld, gr + 2 * ld, gr + 3 * ld, gr + 4 * ld, gr + 5 * ld, nb);
            }
        }
    }
}

/* ---- conv algorithms: Winograd F(4x4,3x3), few-output taps, im2col + GEMM; one forward/backward interface ----
   The conv ops (section 5) describe a convolution with an ag__conv_geom and call
   ag__conv_forward / ag__conv_backward, which pick the algorithm from the shapes (and
   ctx->winograd) alone, the same pick forward and backward, so the bits depend on the
   shapes, the kernel path and the thread count only:
       few outputs  O <= 8, C >= 4·O, stride 1, kernel > 1x1 (to_rgb)  -> shifted tap planes
       Winograd     3x3, stride 1, one padding <= 2, >= 16 channels in/out -> F(4x4, 3x3)
       otherwise    im2col + GEMM (a 1x1 stride-1 conv reads x as it is)
   An input read through a x2 upsampling (g->up: ag_conv3x3_upsampled2) goes through
   Winograd, whose input transform reads it upsampled; other shapes upsample it into a
   temporary buffer first. The transposed conv has one algorithm (GEMM, then col2im) and
   the same pair of calls, ag__conv_transpose_forward / _backward. Every function here
   takes the context for its scratch buffers, pool buffers and thread count. */

/* C[M, N] = beta·C + op(A)·op(B) with the packing scratch from the context (slot 2) */
static void ag__gemm(ag_ctx *ctx, int transA, int transB, int M, int N, int K, const float *A, int lda,
                     const float *B, int ldb, float beta, float *C, int ldc) {
    size_t bytes = ag__sgemm_scratch_bytes(ctx->kern, M, N, K);
    void *scratch = bytes ? ag__scratch(ctx, 2, bytes / sizeof(float) + 1) : NULL;
    if (bytes && !scratch) return;
    ctx->gemm_flops += 2.0 * M * N * K;
    ag__sgemm(ctx->kern, transA, transB, M, N, K, A, lda, B, ldb, beta, C, ldc, scratch, bytes);
}

/* Upsampling to any size through index tables (ag__nearest_index / ag__bilinear_table,
   section 5): y[planes][OH, OW] from x[planes][H, W], and the adjoints ("folds") adding
   gy[planes][OH, OW] into gx[planes][H, W]. The ops ag_upsample_* and the conv of an
   upsampled input share them, so both give the same bits. */
static void ag__nearest_planes(const ag_ctx *ctx, const float *x, long planes, int H, int W, int OH, int OW,
                               const int *iy, const int *ix, float *y) {
    long pl; int ag__nt = ag__threads_for(ctx, (size_t)planes * OH * OW); (void)ag__nt;
    AG__PARALLEL_FOR(ag__nt)
    for (pl = 0; pl < planes; pl++) {
        const float *s = x + (size_t)pl * H * W; float *d = y + (size_t)pl * OH * OW; int oy, ox;
        for (oy = 0; oy < OH; oy++) for (ox = 0; ox < OW; ox++) d[oy * OW + ox] = s[iy[oy] * W + ix[ox]];
    }
}
/* gx[planes][H, W] += the nearest upsampling's adjoint applied to gy[planes][OH, OW] */
static void ag__nearest_fold(const ag_ctx *ctx, const float *gy, long planes, int OH, int OW, const int *iy, const int *ix,
                             int H, int W, float *gx) {
    long pl; int ag__nt = ag__threads_for(ctx, (size_t)planes * OH * OW); (void)ag__nt;
    AG__PARALLEL_FOR(ag__nt)
    for (pl = 0; pl < planes; pl++) {
        const float *g = gy + (size_t)pl * OH * OW; float *d = gx + (size_t)pl * H * W; int oy, ox;
        for (oy = 0; oy < OH; oy++) for (ox = 0; ox < OW; ox++) d[iy[oy] * W + ix[ox]] += g[oy * OW + ox];
    }
}
static void ag__bilinear_planes(const ag_ctx *ctx, const float *x, long planes, int H, int W, int OH, int OW,
                                const ag__lerp *ty, const ag__lerp *tx, float *y) {
    long pl; int ag__nt = ag__threads_for(ctx, (size_t)planes * OH * OW * 4); (void)ag__nt;
    AG__PARALLEL_FOR(ag__nt)
    for (pl = 0; pl < planes; pl++) {
        const float *s = x + (size_t)pl * H * W; float *d = y + (size_t)pl * OH * OW; int oy, ox;
        for (oy = 0; oy < OH; oy++) {
            const float *r0 = s + ty[oy].i0 * W, *r1 = s + ty[oy].i1 * W;
            for (ox = 0; ox < OW; ox++)
                d[oy * OW + ox] = ty[oy].w0 * (tx[ox].w0 * r0[tx[ox].i0] + tx[ox].w1 * r0[tx[ox].i1])
                                + ty[oy].w1 * (tx[ox].w0 * r1[tx[ox].i0] + tx[ox].w1 * r1[tx[ox].i1]);
        }
    }
}
/* gx[planes][H, W] += the bilinear upsampling's adjoint applied to gy[planes][OH, OW] */
static void ag__bilinear_fold(const ag_ctx *ctx, const float *gy, long planes, int OH, int OW, const ag__lerp *ty,
                              const ag__lerp *tx, int H, int W, float *gx) {
    long pl; int ag__nt = ag__threads_for(ctx, (size_t)planes * OH * OW * 4); (void)ag__nt;
    AG__PARALLEL_FOR(ag__nt)
    for (pl = 0; pl < planes; pl++) {
        const float *g = gy + (size_t)pl * OH * OW; float *d = gx + (size_t)pl * H * W; int oy, ox;
        for (oy = 0; oy < OH; oy++) {
            float *r0 = d + ty[oy].i0 * W, *r1 = d + ty[oy].i1 * W; float hy0 = ty[oy].w0, hy1 = ty[oy].w1;
            for (ox = 0; ox < OW; ox++) {
                float v = g[oy * OW + ox];
                r0[tx[ox].i0] += hy0 * tx[ox].w0 * v; r0[tx[ox].i1] += hy0 * tx[ox].w1 * v;
                r1[tx[ox].i0] += hy1 * tx[ox].w0 * v; r1[tx[ox].i1] += hy1 * tx[ox].w1 * v;
            }
        }
    }
}
/* ---- the algorithms ---- */
/* a 1x1, stride-1, unpadded conv: x is its own im2col */
static int ag__is_pointwise(int kh, int kw, int sh, int sw, int ph, int pw) {
    return kh == 1 && kw == 1 && sh == 1 && sw == 1 && ph == 0 && pw == 0;
}
/* y[N, C, plane] += b[C] */
static void ag__bias_add_planes(const ag_ctx *ctx, float *y, const float *b, int N, int C, size_t plane) {
    long nc;
    int ag__nt = ag__threads_for(ctx, (size_t)N * C * plane); (void)ag__nt;
    AG__PARALLEL_FOR(ag__nt)
    for (nc = 0; nc < (long)N * C; nc++) {
        float v = b[nc % C]; float *p = y + (size_t)nc * plane; size_t i;
        for (i = 0; i < plane; i++) p[i] += v;
    }
}
/* gb[C] += the sums (in double) of gy[N, C, plane] over N and the plane */
static void ag__bias_grad_planes(const ag_ctx *ctx, float *gb, const float *gy, int N, int C, size_t plane) {
    long c; int ag__nt = ag__threads_for(ctx, (size_t)N * C * plane); (void)ag__nt;
    AG__PARALLEL_FOR(ag__nt)
    for (c = 0; c < C; c++) {
        double s = 0.0; int n;
        for (n = 0; n < N; n++) { const float *p = gy + ((size_t)n * C + c) * plane; size_t i; for (i = 0; i < plane; i++) s += p[i]; }
        gb[c] += (float)s;
    }
}
/* images per GEMM: small planes are placed side by side so the GEMM is at least ~512
   columns wide, with the column buffer kept under 32 MB */
static int ag__conv_group(int N, size_t K, size_t P) {
    int cnt = P >= 512 ? 1 : (int)((512 + P - 1) / P);
    while (cnt > 1 && K * (size_t)cnt * P > ((size_t)8 << 20)) cnt--;
    return cnt < N ? cnt : N;
}
/* Winograd path: 3x3, stride 1, the same padding (0..2) on both axes, >= 16 channels in and out */
static int ag__wino_applies(const ag_ctx *ctx, int C, int O, int kh, int kw, int sh, int sw, int ph, int pw) {
    return ctx->winograd && kh == 3 && kw == 3 && sh == 1 && sw == 1 && ph == pw && ph <= 2 && C >= 16 && O >= 16;
}
/* images per Winograd group: the GEMMs at least ~1024 tiles wide, tile buffers <= ~32 MB */
static int ag__wino_group(int N, size_t tiles, int C, int O) {
    size_t per_image = 36 * (size_t)(C + O) * tiles * sizeof(float);
    int cnt = (int)((1024 + tiles - 1) / tiles);
    while (cnt > 1 && per_image * cnt > ((size_t)32 << 20)) cnt--;
    return cnt < N ? cnt : N;
}
/* this OpenMP thread's number (0 without OpenMP): which slice of the scratch its GEMM packs into */
static int ag__thread_id(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}
/* the 36 tile-domain GEMMs C[xi] = beta*C[xi] + A[xi]·op(B[xi]), whole GEMMs spread over
   the threads (a fixed split: the same bits for a fixed thread count) */
static void ag__wino_gemms(ag_ctx *ctx, int transB, int M, int N, int K, const float *A, size_t a_plane, int lda,
                           const float *B, size_t b_plane, int ldb, float beta, float *C, size_t c_plane, int ldc) {
    ag__kernels serial = *ctx->kern;
    size_t per; float *scratch; long xi; int ag__nt = ctx->num_threads;
    serial.num_threads = 1;
    per = ag__sgemm_scratch_bytes(&serial, M, N, K) / sizeof(float) + 16;
    scratch = ag__scratch(ctx, 2, per * (size_t)ag__nt);
    if (!scratch) return;
    (void)ag__nt;
    AG__PARALLEL_FOR(ag__nt)
    for (xi = 0; xi < 36; xi++)
        ag__sgemm(&serial, 0, transB, M, N, K, A + (size_t)xi * a_plane, lda, B + (size_t)xi * b_plane, ldb, beta,
                  C + (size_t)xi * c_plane, ldc, scratch + (size_t)ag__thread_id() * per, per * sizeof(float));
}
/* y[N, O, OH, OW] (= or +=) conv3x3(x[N, C, H, W], w, padding p) + bias through Winograd;
   `flip` takes w as [C, O, 3, 3] rotated by 180 degrees (the data gradient's filter) */
static void ag__wino_conv(ag_ctx *ctx, const float *x, const ag__wino_src *src, int N, int C, int H, int W, int p,
                          const float *w, int O, int flip, const float *bias, float *y, int OH, int OW, int accumulate) {
    ag__wino_geom g = ag__wino_geometry(H, W, p, OH, OW, src);
    int cnt = ag__wino_group(N, g.T1, C, O), n0;
    size_t ld = (size_t)cnt * g.T1;
    float *U = ag__scratch(ctx, 3, 36 * (size_t)O * C), *V = ag__scratch(ctx, 0, 36 * (size_t)C * ld);
    float *M = ag__scratch(ctx, 1, 36 * (size_t)O * ld);
    if (ctx->failed) return;
    ag__wino_filter(ctx->kern, w, O, C, flip, U);
    for (n0 = 0; n0 < N; n0 += cnt) {
        int c = ag__kmin(cnt, N - n0);
        ag__wino_input(ctx->kern, x + (size_t)n0 * C * g.plane, c, C, &g, V, ld);
        ag__wino_gemms(ctx, 0, O, (int)(c * g.T1), C, U, (size_t)O * C, C, V, ld, (int)(36 * ld), 0.0f, M, ld, (int)(36 * ld));
        if (ctx->failed) return;
        ag__wino_output(ctx->kern, M, c, O, &g, ld, bias, y + (size_t)n0 * O * OH * OW, accumulate);
    }
    ctx->gemm_flops += 2.0 * 9.0 * N * O * C * OH * OW;
}
/* gw[O, C, 3, 3] += the weight gradient of ag__wino_conv (x, padding p, output gradient dy) */
static void ag__wino_conv_wgrad(ag_ctx *ctx, const float *x, const ag__wino_src *src, int N, int C, int H, int W, int p,
                                const float *dy, int O, int OH, int OW, float *gw) {
    ag__wino_geom g = ag__wino_geometry(H, W, p, OH, OW, src);
    int cnt = ag__wino_group(N, g.T1, C, O), n0;
    size_t ld = (size_t)cnt * g.T1;
    float *dU = ag__scratch(ctx, 3, 36 * (size_t)O * C), *V = ag__scratch(ctx, 0, 36 * (size_t)C * ld);
    float *G = ag__scratch(ctx, 1, 36 * (size_t)O * ld);
    if (ctx->failed) return;
    memset(dU, 0, 36 * (size_t)O * C * sizeof(float));
    for (n0 = 0; n0 < N; n0 += cnt) {
        int c = ag__kmin(cnt, N - n0);
        ag__wino_input(ctx->kern, x + (size_t)n0 * C * g.plane, c, C, &g, V, ld);
        ag__wino_grad_tiles(ctx->kern, dy + (size_t)n0 * O * OH * OW, c, O, &g, G, ld);
        ag__wino_gemms(ctx, 1, O, C, (int)(c * g.T1), G, ld, (int)(36 * ld), V, ld, (int)(36 * ld), 1.0f, dU, (size_t)O * C, C);
        if (ctx->failed) return;
    }
    ag__wino_filter_grad(ctx->kern, dU, O, C, gw);
    ctx->gemm_flops += 2.0 * 9.0 * N * O * C * OH * OW;
}
/* Few output channels (to_rgb: 3): im2col would copy the wide input kh*kw times for a
   GEMM with 3 rows. Instead the GEMM runs on the input as it is, giving one plane per
   (output channel, tap): Z[(o,a,e)] = sum_c w[o,c,a,e] x[c], and the taps are summed
   shifted: y[o][oy][ox] = sum_(a,e) Z[(o,a,e)][oy - ph + a][ox - pw + e]. Backward
   spreads dy the same way (dZ, the adjoint) and runs two GEMMs on it. Stride 1. */
static int ag__small_out_applies(int C, int O, int kh, int kw, int sh, int sw) {
    return sh == 1 && sw == 1 && kh * kw > 1 && O <= 8 && C >= 4 * O;
}
/* y[O, OH, OW] (+)= sum over taps of the shifted planes Z[O*kh*kw][H, W] */
static void ag__tap_sum(const ag__kernels *kern, const float *Z, int O, int H, int W, int kh, int kw, int ph, int pw,
                        int OH, int OW, float *y) {
    long o; int ag__nt = ag__threads(ag__kmin(kern->num_threads, O), (size_t)O * OH * OW * kh * kw, 65536);
    (void)ag__nt;
    AG__PARALLEL_FOR(ag__nt)
    for (o = 0; o < O; o++) {
        int a, e, oy, ox;
        float *yo = y + (size_t)o * OH * OW;
        for (a = 0; a < kh; a++) for (e = 0; e < kw; e++) {
            const float *z = Z + (((size_t)o * kh + a) * kw + e) * H * W;
            int lo = pw - e > 0 ? pw - e : 0, hi = W + pw - e < OW ? W + pw - e : OW;   /* ox with 0 <= ox - pw + e < W */
            for (oy = 0; oy < OH; oy++) {
                int iy = oy - ph + a;
                const float *zr = z + (size_t)iy * W - pw + e;
                float *yr = yo + (size_t)oy * OW;
                if (iy < 0 || iy >= H) continue;
                for (ox = lo; ox < hi; ox++) yr[ox] += zr[ox];
            }
        }
    }
}
/* the adjoint: dZ[(o,a,e)][iy][ix] = dy[o][iy + ph - a][ix + pw - e] (zero outside) */
static void ag__tap_spread(const ag__kernels *kern, const float *dy, int O, int H, int W, int kh, int kw, int ph, int pw,
                           int OH, int OW, float *dZ) {
    long r; int ag__nt = ag__threads(kern->num_threads, (size_t)O * H * W * kh * kw, 65536);
    (void)ag__nt;
    AG__PARALLEL_FOR(ag__nt)
    for (r = 0; r < (long)O * kh * kw; r++) {
        int o = (int)(r / (kh * kw)), a = (int)(r / kw % kh), e = (int)(r % kw), iy, ix;
        int lo = e - pw > 0 ? e - pw : 0, hi = OW - pw + e < W ? OW - pw + e : W;   /* ix with 0 <= ix + pw - e < OW */
        float *z = dZ + (size_t)r * H * W;
        const float *d = dy + (size_t)o * OH * OW;
        for (iy = 0; iy < H; iy++) {
            int oy = iy + ph - a;
            float *zr = z + (size_t)iy * W;
            if (oy < 0 || oy >= OH) { memset(zr, 0, (size_t)W * sizeof(float)); continue; }
            for (ix = 0; ix < lo; ix++) zr[ix] = 0.0f;
            for (; ix < hi; ix++) zr[ix] = d[(size_t)oy * OW + ix + pw - e];
            for (; ix < W; ix++) zr[ix] = 0.0f;
        }
    }
}
/* Wr[(o,a,e)][c] = w[o][c][a][e] */
static void ag__taps_first(const float *w, int O, int C, int T, float *Wr) {
    int o, c, t;
    for (o = 0; o < O; o++) for (c = 0; c < C; c++) for (t = 0; t < T; t++)
        Wr[((size_t)o * T + t) * C + c] = w[((size_t)o * C + c) * T + t];
}
/* y[N, O, OH, OW] = conv(x[N, C, H, W], w[O, C, kh, kw]) per image: Z = Wr·x (one GEMM), then the tap sum */
static void ag__conv_small_out_forward(ag_ctx *ctx, const float *x, int N, int C, int H, int W, const float *w, int O,
                                       int kh, int kw, int ph, int pw, float *y, int OH, int OW) {
    int T = kh * kw, n;
    size_t HW = (size_t)H * W;
    float *Wr = ag__scratch(ctx, 3, (size_t)O * T * C), *Z = ag__scratch(ctx, 0, (size_t)O * T * HW);
    if (ctx->failed) return;
    ag__taps_first(w, O, C, T, Wr);
    memset(y, 0, (size_t)N * O * OH * OW * sizeof(float));
    for (n = 0; n < N; n++) {
        ag__gemm(ctx, 0, 0, O * T, (int)HW, C, Wr, C, x + (size_t)n * C * HW, (int)HW, 0.0f, Z, (int)HW);
        ag__tap_sum(ctx->kern, Z, O, H, W, kh, kw, ph, pw, OH, OW, y + (size_t)n * O * OH * OW);
    }
}
/* its backward from dy: dZ = the tap spread of dy, gx += Wrᵀ·dZ, gw += dZ·xᵀ (gx or gw may be NULL) */
static void ag__conv_small_out_backward(ag_ctx *ctx, const float *x, int N, int C, int H, int W, const float *w, int O,
                                        int kh, int kw, int ph, int pw, const float *dy, int OH, int OW, float *gx, float *gw) {
    int T = kh * kw, n, o, c, t;
    size_t HW = (size_t)H * W;
    float *Wr = ag__scratch(ctx, 3, 2 * (size_t)O * T * C), *dZ = ag__scratch(ctx, 0, (size_t)O * T * HW), *gWr;
    if (ctx->failed) return;
    gWr = Wr + (size_t)O * T * C;
    ag__taps_first(w, O, C, T, Wr);
    memset(gWr, 0, (size_t)O * T * C * sizeof(float));
    for (n = 0; n < N; n++) {
        ag__tap_spread(ctx->kern, dy + (size_t)n * O * OH * OW, O, H, W, kh, kw, ph, pw, OH, OW, dZ);
        if (gx) ag__gemm(ctx, 1, 0, C, (int)HW, O * T, Wr, C, dZ, (int)HW, 1.0f, gx + (size_t)n * C * HW, (int)HW);
        if (gw) ag__gemm(ctx, 0, 1, O * T, C, (int)HW, dZ, (int)HW, x + (size_t)n * C * HW, (int)HW, 1.0f, gWr, C);
    }
    if (gw) for (o = 0; o < O; o++) for (c = 0; c < C; c++) for (t = 0; t < T; t++)
        gw[((size_t)o * C + c) * T + t] += gWr[((size_t)o * T + t) * C + c];
}
/* the im2col path's images per GEMM and its buffers: columns (none for a lone 1x1 image)
   and gathered planes; -1 when out of memory */
static int ag__im2col_buffers(ag_ctx *ctx, int N, int K, int O, size_t P, int pointwise, float **col, float **tmp) {
    int cnt = ag__conv_group(N, (size_t)K, P);
    *col = NULL; *tmp = NULL;
    if (!pointwise || cnt > 1) *col = ag__scratch(ctx, 0, (size_t)K * cnt * P);
    if (cnt > 1) *tmp = ag__scratch(ctx, 1, (size_t)O * cnt * P);
    return ctx->failed ? -1 : cnt;
}
/* im2col path: y = W · im2col(x) per group of images side by side (1x1 stride 1 reads x as it is) */
static void ag__conv_im2col_forward(ag_ctx *ctx, const float *x, int N, int C, int H, int W, const float *w, int O,
                                    int kh, int kw, int sh, int sw, int ph, int pw, float *y, int OH, int OW) {
    int K = C * kh * kw, n0, j, cnt;
    size_t P = (size_t)OH * OW;
    float *col, *tmp;
    if ((cnt = ag__im2col_buffers(ctx, N, K, O, P, ag__is_pointwise(kh, kw, sh, sw, ph, pw), &col, &tmp)) < 0) return;
    for (n0 = 0; n0 < N; n0 += cnt) {
        int c = N - n0 < cnt ? N - n0 : cnt; size_t ld = (size_t)c * P;
        const float *ci = x + (size_t)n0 * C * H * W;
        if (col) {
            for (j = 0; j < c; j++)
                ag__im2col(ctx->kern, x + (size_t)(n0 + j) * C * H * W, C, H, W, kh, kw, sh, sw, ph, pw, OH, OW, col + (size_t)j * P, ld);
            ci = col;
        }
        if (c == 1) ag__gemm(ctx, 0, 0, O, (int)P, K, w, K, ci, (int)P, 0.0f, y + (size_t)n0 * O * P, (int)P);
        else {
            ag__gemm(ctx, 0, 0, O, (int)ld, K, w, K, ci, (int)ld, 0.0f, tmp, (int)ld);
            ag__scatter_planes(tmp, c, O, P, y + (size_t)n0 * O * P, 0);
        }
    }
}
/* its backward: gw += dy · im2col(x)ᵀ, gx += col2im(Wᵀ dy) */
static void ag__conv_im2col_backward(ag_ctx *ctx, const float *x, int N, int C, int H, int W, const float *w, int O,
                                     int kh, int kw, int sh, int sw, int ph, int pw, const float *dy, int OH, int OW,
                                     float *gx, float *gw) {
    int K = C * kh * kw, n0, j, cnt;
    size_t P = (size_t)OH * OW, HWin = (size_t)H * W;
    float *col, *tmp;
    if ((cnt = ag__im2col_buffers(ctx, N, K, O, P, ag__is_pointwise(kh, kw, sh, sw, ph, pw), &col, &tmp)) < 0) return;
    for (n0 = 0; n0 < N; n0 += cnt) {
        int c = N - n0 < cnt ? N - n0 : cnt; size_t ld = (size_t)c * P;
        const float *dyg = dy + (size_t)n0 * O * P;
        if (c > 1) { ag__gather_planes(dy + (size_t)n0 * O * P, c, O, P, tmp); dyg = tmp; }
        if (gw) {
            const float *ci = x + (size_t)n0 * C * HWin;   /* x is read for gw only (it may be NULL otherwise) */
            if (col) {
                for (j = 0; j < c; j++)
                    ag__im2col(ctx->kern, x + (size_t)(n0 + j) * C * HWin, C, H, W, kh, kw, sh, sw, ph, pw, OH, OW, col + (size_t)j * P, ld);
                ci = col;
            }
            ag__gemm(ctx, 0, 1, O, K, (int)ld, dyg, (int)ld, ci, (int)ld, 1.0f, gw, K);
        }
        if (gx) {
            if (!col) ag__gemm(ctx, 1, 0, C, (int)P, O, w, K, dyg, (int)P, 1.0f, gx + (size_t)n0 * C * HWin, (int)P);
            else {
                ag__gemm(ctx, 1, 0, K, (int)ld, O, w, K, dyg, (int)ld, 0.0f, col, (int)ld);
                for (j = 0; j < c; j++)
                    ag__col2im(ctx->kern, col + (size_t)j * P, C, H, W, kh, kw, sh, sw, ph, pw, OH, OW, gx + (size_t)(n0 + j) * C * HWin, ld);
            }
        }
    }
}

/* One convolution as the ops describe it to ag__conv_forward / ag__conv_backward:
       x[N, C, H, W] * w[O, C, kh, kw] (+ b[O]) -> y[N, O, OH, OW], stride sh x sw, zero padding ph x pw
   With `up` set, x is stored at half the size, [N, C, up->SH, up->SW], and read through its
   x2 upsampling (H = 2·SH, W = 2·SW): the conv of an upsampled tensor without that tensor.
   For ag__conv_transpose_*: x[N, C, H, W] -> y[N, O, OH, OW] with w[C, O, kh, kw], stride
   sh = sw and padding ph = pw, no `up`. */
typedef struct ag__conv_geom {
    int N, C, H, W, O, kh, kw, sh, sw, ph, pw, OH, OW;
    const ag__wino_src *up;
} ag__conv_geom;
static ag__conv_geom ag__conv_geometry(int N, int C, int H, int W, int O, int kh, int kw, int sh, int sw, int ph, int pw) {
    ag__conv_geom g;
    g.N = N; g.C = C; g.H = H; g.W = W; g.O = O; g.kh = kh; g.kw = kw; g.sh = sh; g.sw = sw; g.ph = ph; g.pw = pw;
    g.OH = (H + 2 * ph - kh) / sh + 1; g.OW = (W + 2 * pw - kw) / sw + 1;
    g.up = NULL;
    return g;
}
/* u[N, C, H, W] = g->up's upsampling of x[N, C, SH, SW], the values of ag_upsample_* */
static void ag__conv_upsample_input(const ag_ctx *ctx, const ag__conv_geom *g, const float *x, float *u) {
    const ag__wino_src *s = g->up;
    if (s->mode == 1) ag__nearest_planes(ctx, x, (long)g->N * g->C, s->SH, s->SW, g->H, g->W, s->ny, s->nx, u);
    else ag__bilinear_planes(ctx, x, (long)g->N * g->C, s->SH, s->SW, g->H, g->W, s->ty, s->tx, u);
}
/* gx[N, C, SH, SW] += the adjoint of that upsampling applied to gu[N, C, H, W] */
static void ag__conv_upsample_fold(const ag_ctx *ctx, const ag__conv_geom *g, const float *gu, float *gx) {
    const ag__wino_src *s = g->up;
    if (s->mode == 1) ag__nearest_fold(ctx, gu, (long)g->N * g->C, g->H, g->W, s->ny, s->nx, s->SH, s->SW, gx);
    else ag__bilinear_fold(ctx, gu, (long)g->N * g->C, g->H, g->W, s->ty, s->tx, s->SH, s->SW, gx);
}

/* y[N, O, OH, OW] = conv(x, w) + b (b may be NULL); x is [N, C, H, W], or [N, C, SH, SW]
   read upsampled when g->up is set */
static void ag__conv_forward(ag_ctx *ctx, const ag__conv_geom *g, const float *x, const float *w, const float *b, float *y) {
    int wino = ag__wino_applies(ctx, g->C, g->O, g->kh, g->kw, g->sh, g->sw, g->ph, g->pw);
    size_t P = (size_t)g->OH * g->OW;
    if (g->up && !wino) {   /* the upsampled input made in a pool buffer, then the conv of that */
        ag__conv_geom plain = *g; int slot = 0;
        float *u = (float *)ag__pool_take(ctx, (size_t)g->N * g->C * g->H * g->W * sizeof(float), &slot);
        if (!u) return;
        plain.up = NULL;
        ag__conv_upsample_input(ctx, g, x, u);
        ag__conv_forward(ctx, &plain, u, w, b, y);
        ag__pool_put(ctx, slot, u);
    } else if (ag__small_out_applies(g->C, g->O, g->kh, g->kw, g->sh, g->sw)) {
        ag__conv_small_out_forward(ctx, x, g->N, g->C, g->H, g->W, w, g->O, g->kh, g->kw, g->ph, g->pw, y, g->OH, g->OW);
        if (b) ag__bias_add_planes(ctx, y, b, g->N, g->O, P);
    } else if (wino) {
        ag__wino_conv(ctx, x, g->up, g->N, g->C, g->H, g->W, g->ph, w, g->O, 0, b, y, g->OH, g->OW, 0);
    } else {
        ag__conv_im2col_forward(ctx, x, g->N, g->C, g->H, g->W, w, g->O, g->kh, g->kw, g->sh, g->sw, g->ph, g->pw, y, g->OH, g->OW);
        if (b) ag__bias_add_planes(ctx, y, b, g->N, g->O, P);
    }
}
/* From dy[N, O, OH, OW]: gx += dL/dx, gw += dL/dw, gb += dL/db; each may be NULL (not
   wanted). x is read for gw only, so a caller that wants no gw may pass x = NULL. With
   g->up, gx is the gradient of the stored (small) x. */
static void ag__conv_backward(ag_ctx *ctx, const ag__conv_geom *g, const float *x, const float *w, const float *dy,
                              float *gx, float *gw, float *gb) {
    int wino = ag__wino_applies(ctx, g->C, g->O, g->kh, g->kw, g->sh, g->sw, g->ph, g->pw);
    size_t up_bytes = (size_t)g->N * g->C * g->H * g->W * sizeof(float);
    if (!gx && !gw) {
    } else if (g->up && wino) {   /* x read upsampled; the upsampled input's gradient, folded back at once */
        if (gw) ag__wino_conv_wgrad(ctx, x, g->up, g->N, g->C, g->H, g->W, g->ph, dy, g->O, g->OH, g->OW, gw);
        if (gx) {
            int slot = 0; float *gu = (float *)ag__pool_take(ctx, up_bytes, &slot);
            if (!gu) return;
            ag__wino_conv(ctx, dy, NULL, g->N, g->O, g->OH, g->OW, 2 - g->ph, w, g->C, 1, NULL, gu, g->H, g->W, 0);
            ag__conv_upsample_fold(ctx, g, gu, gx);
            ag__pool_put(ctx, slot, gu);
        }
    } else if (g->up) {   /* as the forward: on the upsampled input, made again; its gradient folded back */
        ag__conv_geom plain = *g; int su = 0, sg = 0; float *u = NULL, *gu = NULL;
        plain.up = NULL;
        if (gw && !(u = (float *)ag__pool_take(ctx, up_bytes, &su))) return;
        if (gx && !(gu = (float *)ag__pool_take(ctx, up_bytes, &sg))) { ag__pool_put(ctx, su, u); return; }
        if (u) ag__conv_upsample_input(ctx, g, x, u);
        if (gu) memset(gu, 0, up_bytes);
        ag__conv_backward(ctx, &plain, u, w, dy, gu, gw, NULL);
        if (gu) ag__conv_upsample_fold(ctx, g, gu, gx);
        ag__pool_put(ctx, sg, gu); ag__pool_put(ctx, su, u);
    } else if (ag__small_out_applies(g->C, g->O, g->kh, g->kw, g->sh, g->sw)) {
        ag__conv_small_out_backward(ctx, x, g->N, g->C, g->H, g->W, w, g->O, g->kh, g->kw, g->ph, g->pw, dy, g->OH, g->OW, gx, gw);
    } else if (wino) {
        if (gw) ag__wino_conv_wgrad(ctx, x, NULL, g->N, g->C, g->H, g->W, g->ph, dy, g->O, g->OH, g->OW, gw);
        if (gx) ag__wino_conv(ctx, dy, NULL, g->N, g->O, g->OH, g->OW, 2 - g->ph, w, g->C, 1, NULL, gx, g->H, g->W, 1);
    } else {
        ag__conv_im2col_backward(ctx, x, g->N, g->C, g->H, g->W, w, g->O, g->kh, g->kw, g->sh, g->sw, g->ph, g->pw,
                                 dy, g->OH, g->OW, gx, gw);
    }
    if (gb) ag__bias_grad_planes(ctx, gb, dy, g->N, g->O, (size_t)g->OH * g->OW);
}

/* The transposed conv's geometry: x[N, C, H, W] -> y[N, O, (H-1)s - 2p + kh, (W-1)s - 2p + kw] */
static ag__conv_geom ag__conv_transpose_geometry(int N, int C, int H, int W, int O, int kh, int kw, int s, int p) {
    ag__conv_geom g;
    g.N = N; g.C = C; g.H = H; g.W = W; g.O = O; g.kh = kh; g.kw = kw; g.sh = g.sw = s; g.ph = g.pw = p;
    g.OH = (H - 1) * s - 2 * p + kh; g.OW = (W - 1) * s - 2 * p + kw;
    g.up = NULL;
    return g;
}
/* y[N, O, OH, OW] = the transposed conv of x[N, C, H, W] with w[C, O, kh, kw] (+ b): the
   columns Wᵀ·x (one GEMM per group of images side by side) folded into y by col2im; for
   k2 s2 the columns never overlap */
static void ag__conv_transpose_forward(ag_ctx *ctx, const ag__conv_geom *g, const float *x, const float *w, const float *b, float *y) {
    int N = g->N, I = g->C, O = g->O, kh = g->kh, kw = g->kw, s = g->sh, p = g->ph, H = g->H, W = g->W, OH = g->OH, OW = g->OW;
    int K = O * kh * kw, n0, j;
    size_t P = (size_t)H * W;
    int cnt = ag__conv_group(N, (size_t)K, P);
    float *col = ag__scratch(ctx, 0, (size_t)K * cnt * P), *tmp = NULL;
    if (cnt > 1) tmp = ag__scratch(ctx, 1, (size_t)I * cnt * P);
    if (ctx->failed) return;
    memset(y, 0, (size_t)N * O * OH * OW * sizeof(float));
    for (n0 = 0; n0 < N; n0 += cnt) {
        int c = N - n0 < cnt ? N - n0 : cnt; size_t ld = (size_t)c * P;
        const float *xg = x + (size_t)n0 * I * P;
        if (c > 1) { ag__gather_planes(x + (size_t)n0 * I * P, c, I, P, tmp); xg = tmp; }
        ag__gemm(ctx, 1, 0, K, (int)ld, I, w, K, xg, (int)ld, 0.0f, col, (int)ld);
        for (j = 0; j < c; j++)
            ag__col2im(ctx->kern, col + (size_t)j * P, O, OH, OW, kh, kw, s, s, p, p, H, W, y + (size_t)(n0 + j) * O * OH * OW, ld);
    }
    if (b) ag__bias_add_planes(ctx, y, b, N, O, (size_t)OH * OW);
}
/* its backward from dy[N, O, OH, OW], through the columns im2col(dy): gw += x·colᵀ,
   gx += W·col, gb += the planes' sums; each may be NULL; x is read for gw only */
static void ag__conv_transpose_backward(ag_ctx *ctx, const ag__conv_geom *g, const float *x, const float *w, const float *dy,
                                        float *gx, float *gw, float *gb) {
    int N = g->N, I = g->C, O = g->O, kh = g->kh, kw = g->kw, s = g->sh, p = g->ph, H = g->H, W = g->W, OH = g->OH, OW = g->OW;
    int K = O * kh * kw, n0, j;
    size_t P = (size_t)H * W, PO = (size_t)OH * OW; int cnt = ag__conv_group(N, (size_t)K, P);
    float *col, *tmp;
    if (gx || gw) {
        col = ag__scratch(ctx, 0, (size_t)K * cnt * P);
        tmp = ag__scratch(ctx, 1, (size_t)I * cnt * P);
        if (ctx->failed) return;
        for (n0 = 0; n0 < N; n0 += cnt) {
            int c = N - n0 < cnt ? N - n0 : cnt; size_t ld = (size_t)c * P;
            for (j = 0; j < c; j++)
                ag__im2col(ctx->kern, dy + (size_t)(n0 + j) * O * PO, O, OH, OW, kh, kw, s, s, p, p, H, W, col + (size_t)j * P, ld);
            if (gw) {
                const float *xg = x + (size_t)n0 * I * P;
                if (c > 1) { ag__gather_planes(x + (size_t)n0 * I * P, c, I, P, tmp); xg = tmp; }
                ag__gemm(ctx, 0, 1, I, K, (int)ld, xg, (int)ld, col, (int)ld, 1.0f, gw, K);
            }
            if (gx) {
                if (c == 1) ag__gemm(ctx, 0, 0, I, (int)P, K, w, K, col, (int)P, 1.0f, gx + (size_t)n0 * I * P, (int)P);
                else {
                    ag__gemm(ctx, 0, 0, I, (int)ld, K, w, K, col, (int)ld, 0.0f, tmp, (int)ld);
                    ag__scatter_planes(tmp, c, I, P, gx + (size_t)n0 * I * P, 1);
                }
            }
        }
    }
    if (gb) ag__bias_grad_planes(ctx, gb, dy, N, O, PO);
}

/* ===================================================================================
   5. Autograd tape and ops (forward + backward pairs)
   =================================================================================== */
/* A tape node: the op's backward, its output and inputs, integer/float arguments and
   whatever the forward saved (in the arena). Backward reads out->grad and ADDS into the
   grads of inputs that require grad. */
typedef struct ag__node {
    void (*backward)(ag_ctx *ctx, struct ag__node *node);
    ag_tensor *out;
    ag_tensor *in[4];
    int iarg[8];
    float farg[4];
    void *saved, *saved2;
    int keeps;          /* bit i: backward reads in[i]->data; bit 4: reads out->data */
} ag__node;

static int ag__any_requires_grad(ag_tensor *a, ag_tensor *b, ag_tensor *c, ag_tensor *d) {
    return (a && a->requires_grad) || (b && b->requires_grad) || (c && c->requires_grad) || (d && d->requires_grad);
}

/* Records a node for `out` when grad mode is on and an input requires grad. */
static ag__node *ag__push_node(ag_ctx *ctx, ag_tensor *out, void (*backward)(ag_ctx *, ag__node *)) {
    ag__node *n;
    if (ctx->tape_len == ctx->tape_cap) {
        int cap = ctx->tape_cap ? ctx->tape_cap * 2 : 256;
        ag__node *t = (ag__node *)AG_REALLOC(ctx->tape, (size_t)cap * sizeof(ag__node));
        if (!t) { ag__ctx_fail(ctx, "out of memory growing the autograd tape"); return NULL; }
        ctx->tape = t; ctx->tape_cap = cap;
    }
    n = &ctx->tape[ctx->tape_len++];
    memset(n, 0, sizeof *n);
    n->backward = backward; n->out = out;
    out->requires_grad = 1;
    out->node = ctx->tape_len;
    return n;
}
static ag__node *ag__record(ag_ctx *ctx, ag_tensor *out, void (*backward)(ag_ctx *, ag__node *),
                            ag_tensor *a, ag_tensor *b, ag_tensor *c, ag_tensor *d) {
    ag__node *n; int i;
    if (!out || !ctx->grad_enabled || !ag__any_requires_grad(a, b, c, d)) return NULL;
    if (!(n = ag__push_node(ctx, out, backward))) return NULL;
    n->in[0] = a; n->in[1] = b; n->in[2] = c; n->in[3] = d;
    /* by default backward may read every input; ops that do not say so (ag__unkeep) */
    for (i = 0; i < 4; i++) if (n->in[i]) { ag__ref(n->in[i]); n->keeps |= 1 << i; }
    return n;
}
/* backward does not read in[i]->data (or, with i = 4, does read out->data) */
static void ag__unkeep(ag_ctx *ctx, ag__node *n, int i) {
    if (n && (n->keeps >> i & 1)) { n->keeps &= ~(1 << i); ag__unref(ctx, n->in[i]); }
}
static void ag__keep_out(ag__node *n) { if (n && !(n->keeps >> 4 & 1)) { n->keeps |= 1 << 4; ag__ref(n->out); } }
static void ag__node_drop_keeps(ag_ctx *ctx, ag__node *n) {
    int i;
    for (i = 0; i < 4; i++) if (n->keeps >> i & 1) ag__unref(ctx, n->in[i]);
    if (n->keeps >> 4 & 1) ag__unref(ctx, n->out);
    n->keeps = 0;
}

/* The gradient buffer of t, zeroed on first use: small ones in the arena, large ones
   (>= 1 MB) in the pool so backward can recycle them as soon as their node has run. */
static float *ag__grad(ag_ctx *ctx, ag_tensor *t) {
    if (!t->grad) {
        size_t bytes = t->size * sizeof(float);
        if (bytes >= ((size_t)1 << 20)) t->grad = (float *)ag__pool_take(ctx, bytes, &t->grad_slot);
        else t->grad = (float *)ag__arena_alloc(ctx, bytes + 4);
        if (t->grad) memset(t->grad, 0, bytes);
    }
    return t->grad;
}
static void ag__grad_release(ag_ctx *ctx, ag_tensor *t) {
    ag__pool_put(ctx, t->grad_slot, t->grad);
    t->grad = NULL; t->grad_slot = 0;
}
/* The gradient of input i if it needs one (NULL otherwise). */
static float *ag__in_grad(ag_ctx *ctx, ag__node *n, int i) {
    ag_tensor *t = n->in[i];
    return (t && t->requires_grad) ? ag__grad(ctx, t) : NULL;
}

static int ag__run_backward(ag_ctx *ctx) {
    int i;
    for (i = ctx->tape_len - 1; i >= 0 && !ctx->failed; i--) {
        ag__node *n = &ctx->tape[i];
        if (n->out->grad) n->backward(ctx, n);
        ag__node_drop_keeps(ctx, n);
        /* an op output's gradient is complete once its node ran; clear the pointer so a
           tensor kept across steps never carries a stale gradient into a new graph */
        if (!n->out->is_param) ag__grad_release(ctx, n->out);
    }
    ctx->tape_len = 0;
    return ctx->failed ? -1 : 0;
}

AGDEF int ag_backward_with(ag_ctx *ctx, ag_tensor *out, const float *grad_out) {
    float *g; size_t i;
    if (!out || ctx->failed) { ag__ctx_fail(ctx, "backward: no output tensor"); return -1; }
    if (!out->requires_grad) { ag__ctx_fail(ctx, "backward: the output does not depend on anything that requires grad"); return -1; }
    g = ag__grad(ctx, out);
    if (!g) return -1;
    for (i = 0; i < out->size; i++) g[i] += grad_out[i];
    return ag__run_backward(ctx);
}
AGDEF int ag_backward(ag_ctx *ctx, ag_tensor *loss) {
    float one = 1.0f;
    if (loss && loss->size != 1) { ag__ctx_fail(ctx, "backward: the loss has %zu elements (must be 1)", loss->size); return -1; }
    return ag_backward_with(ctx, loss, &one);
}

AGDEF ag_tensor *ag_detach(ag_ctx *ctx, ag_tensor *x) {
    ag_tensor *t;
    if (!x || ctx->failed) return NULL;
    t = (ag_tensor *)ag__arena_alloc(ctx, sizeof(ag_tensor));
    if (!t) return NULL;
    *t = *x;
    t->grad = NULL; t->requires_grad = 0; t->is_param = 0; t->node = 0; t->grad_slot = 0;
    t->base = x->is_param ? NULL : ag__owner(x); t->refs = 0; t->data_slot = 0; t->released = 0;
    ag__ref(t);
    return t;
}

/* ---- argument checks ---- */
static int ag__check(ag_ctx *ctx, const char *op, ag_tensor *x, int ndim) {
    char s[64];
    if (ctx->failed) return -1;
    if (!x) { ag__ctx_fail(ctx, "%s: input is NULL", op); return -1; }
    if (!x->data) { ag__ctx_fail(ctx, "%s: the input tensor was released (ag_tensor_release)", op); return -1; }
    if (ndim && x->ndim != ndim) {
        ag_tensor_shape_str(x, s, sizeof s);
        ag__ctx_fail(ctx, "%s: expected a %d-D tensor, got shape %s", op, ndim, s);
        return -1;
    }
    return 0;
}
static int ag__check_same(ag_ctx *ctx, const char *op, ag_tensor *a, ag_tensor *b) {
    char s1[64], s2[64];
    if (ag__check(ctx, op, a, 0) || ag__check(ctx, op, b, 0)) return -1;
    if (!ag_tensor_same_shape(a, b)) {
        ag_tensor_shape_str(a, s1, sizeof s1); ag_tensor_shape_str(b, s2, sizeof s2);
        ag__ctx_fail(ctx, "%s: shapes differ: %s and %s", op, s1, s2);
        return -1;
    }
    return 0;
}

/* ---- linear: x[N,in] w[out,in] b[out] -> y[N,out] ---- */
static void ag__linear_backward(ag_ctx *ctx, ag__node *n) {
    ag_tensor *x = n->in[0], *w = n->in[1], *b = n->in[2];
    int N = x->shape[0], I = x->shape[1], O = w->shape[0], i, o;
    const float *gy = n->out->grad; float *gx = ag__in_grad(ctx, n, 0), *gw = ag__in_grad(ctx, n, 1), *gb = ag__in_grad(ctx, n, 2);
    if (gx) ag__gemm(ctx, 0, 0, N, I, O, gy, O, w->data, I, 1.0f, gx, I);
    if (gw) ag__gemm(ctx, 1, 0, O, I, N, gy, O, x->data, I, 1.0f, gw, I);
    if (gb && b) for (i = 0; i < N; i++) for (o = 0; o < O; o++) gb[o] += gy[(size_t)i * O + o];
}
AGDEF ag_tensor *ag_linear(ag_ctx *ctx, ag_tensor *x, ag_tensor *w, ag_tensor *b) {
    ag_tensor *y; int shape[2], N, I, O, i, o; char s1[64], s2[64]; ag__node *nd;
    if (ag__check(ctx, "linear", x, 2) || ag__check(ctx, "linear (weight)", w, 2)) return NULL;
    N = x->shape[0]; I = x->shape[1]; O = w->shape[0];
    if (w->shape[1] != I) {
        ag_tensor_shape_str(x, s1, sizeof s1); ag_tensor_shape_str(w, s2, sizeof s2);
        return (ag_tensor *)ag__ctx_fail(ctx, "linear: input %s does not match weight %s (in features)", s1, s2);
    }
    if (b && (b->size != (size_t)O)) return (ag_tensor *)ag__ctx_fail(ctx, "linear: bias has %zu elements, weight has %d outputs", b->size, O);
    shape[0] = N; shape[1] = O;
    y = ag_tensor_new(ctx, 2, shape);
    if (!y) return NULL;
    ag__gemm(ctx, 0, 1, N, O, I, x->data, I, w->data, I, 0.0f, y->data, O);
    if (b) for (i = 0; i < N; i++) for (o = 0; o < O; o++) y->data[(size_t)i * O + o] += b->data[o];
    nd = ag__record(ctx, y, ag__linear_backward, x, w, b, NULL);
    if (!w->requires_grad) ag__unkeep(ctx, nd, 0);   /* x only serves the weight gradient */
    ag__unkeep(ctx, nd, 2);
    return y;
}

/* ---- conv2d: x[N,C,H,W] w[O,C,kh,kw] b[O] -> y[N,O,OH,OW]; ag__conv_forward / _backward
   (section 4) pick the algorithm: Winograd, few-output taps or im2col + GEMM ---- */
static void ag__conv2d_backward(ag_ctx *ctx, ag__node *n) {
    ag_tensor *x = n->in[0], *w = n->in[1], *y = n->out;
    ag__conv_geom g = ag__conv_geometry(x->shape[0], x->shape[1], x->shape[2], x->shape[3], w->shape[0], w->shape[2], w->shape[3],
                                        n->iarg[0], n->iarg[1], n->iarg[2], n->iarg[3]);
    float *gx = ag__in_grad(ctx, n, 0), *gw = ag__in_grad(ctx, n, 1), *gb = ag__in_grad(ctx, n, 2);
    ag__conv_backward(ctx, &g, x->data, w->data, y->grad, gx, gw, gb);
}
AGDEF ag_tensor *ag_conv2d(ag_ctx *ctx, ag_tensor *x, ag_tensor *w, ag_tensor *b,
                           int sh, int sw, int ph, int pw) {
    int N, C, H, W, O, kh, kw; ag_tensor *y; ag__node *nd; ag__conv_geom g;
    char s1[64], s2[64];
    if (ag__check(ctx, "conv2d", x, 4) || ag__check(ctx, "conv2d (weight)", w, 4)) return NULL;
    N = x->shape[0]; C = x->shape[1]; H = x->shape[2]; W = x->shape[3];
    O = w->shape[0]; kh = w->shape[2]; kw = w->shape[3];
    if (w->shape[1] != C) {
        ag_tensor_shape_str(x, s1, sizeof s1); ag_tensor_shape_str(w, s2, sizeof s2);
        return (ag_tensor *)ag__ctx_fail(ctx, "conv2d: input %s has %d channels but weight %s expects %d", s1, C, s2, w->shape[1]);
    }
    if (sh < 1 || sw < 1 || ph < 0 || pw < 0) return (ag_tensor *)ag__ctx_fail(ctx, "conv2d: bad stride %dx%d or padding %dx%d", sh, sw, ph, pw);
    if (b && b->size != (size_t)O) return (ag_tensor *)ag__ctx_fail(ctx, "conv2d: bias has %zu elements, weight has %d outputs", b->size, O);
    if (H + 2 * ph < kh || W + 2 * pw < kw) {
        ag_tensor_shape_str(x, s1, sizeof s1);
        return (ag_tensor *)ag__ctx_fail(ctx, "conv2d: input %s smaller than the %dx%d kernel with padding %dx%d", s1, kh, kw, ph, pw);
    }
    g = ag__conv_geometry(N, C, H, W, O, kh, kw, sh, sw, ph, pw);
    y = ag_tensor4(ctx, N, O, g.OH, g.OW);
    if (!y) return NULL;
    ag__conv_forward(ctx, &g, x->data, w->data, b ? b->data : NULL, y->data);
    if (ctx->failed) return NULL;
    nd = ag__record(ctx, y, ag__conv2d_backward, x, w, b, NULL);
    if (nd) { nd->iarg[0] = sh; nd->iarg[1] = sw; nd->iarg[2] = ph; nd->iarg[3] = pw; }
    if (!w->requires_grad) ag__unkeep(ctx, nd, 0);   /* x only serves the weight gradient */
    ag__unkeep(ctx, nd, 2);
    return y;
}

/* ---- transposed conv: x[N,I,H,W] w[I,O,kh,kw] b[O] -> y[N,O,(H-1)s-2p+kh, ...]
   through ag__conv_transpose_forward / _backward (section 4: GEMM, then col2im) ---- */
static void ag__deconv_backward(ag_ctx *ctx, ag__node *n) {
    ag_tensor *x = n->in[0], *w = n->in[1], *y = n->out;
    ag__conv_geom g = ag__conv_transpose_geometry(x->shape[0], x->shape[1], x->shape[2], x->shape[3], w->shape[1], w->shape[2], w->shape[3],
                                                  n->iarg[0], n->iarg[1]);
    float *gx = ag__in_grad(ctx, n, 0), *gw = ag__in_grad(ctx, n, 1), *gb = ag__in_grad(ctx, n, 2);
    ag__conv_transpose_backward(ctx, &g, x->data, w->data, y->grad, gx, gw, gb);
}
AGDEF ag_tensor *ag_conv_transpose2d(ag_ctx *ctx, ag_tensor *x, ag_tensor *w, ag_tensor *b, int s, int p) {
    int N, I, H, W, O, kh, kw; ag_tensor *y; ag__node *nd; ag__conv_geom g; char s1[64], s2[64];
    if (ag__check(ctx, "conv_transpose2d", x, 4) || ag__check(ctx, "conv_transpose2d (weight)", w, 4)) return NULL;
    N = x->shape[0]; I = x->shape[1]; H = x->shape[2]; W = x->shape[3];
    O = w->shape[1]; kh = w->shape[2]; kw = w->shape[3];
    if (w->shape[0] != I) {
        ag_tensor_shape_str(x, s1, sizeof s1); ag_tensor_shape_str(w, s2, sizeof s2);
        return (ag_tensor *)ag__ctx_fail(ctx, "conv_transpose2d: input %s has %d channels but weight %s expects %d", s1, I, s2, w->shape[0]);
    }
    if (s < 1 || p < 0) return (ag_tensor *)ag__ctx_fail(ctx, "conv_transpose2d: bad stride %d or padding %d", s, p);
    if (b && b->size != (size_t)O) return (ag_tensor *)ag__ctx_fail(ctx, "conv_transpose2d: bias has %zu elements, weight has %d outputs", b->size, O);
    g = ag__conv_transpose_geometry(N, I, H, W, O, kh, kw, s, p);
    if (g.OH < 1 || g.OW < 1) return (ag_tensor *)ag__ctx_fail(ctx, "conv_transpose2d: empty output (%dx%d)", g.OH, g.OW);
    y = ag_tensor4(ctx, N, O, g.OH, g.OW);
    if (!y) return NULL;
    ag__conv_transpose_forward(ctx, &g, x->data, w->data, b ? b->data : NULL, y->data);
    if (ctx->failed) return NULL;
    nd = ag__record(ctx, y, ag__deconv_backward, x, w, b, NULL);
    if (!w->requires_grad) ag__unkeep(ctx, nd, 0);
    ag__unkeep(ctx, nd, 2);
    if (nd) { nd->iarg[0] = s; nd->iarg[1] = p; }
    return y;
}

/* ---- nearest upsampling to any size (PyTorch's legacy 'nearest': src = floor(dst*in/out)) ---- */
static int *ag__nearest_index(ag_ctx *ctx, int in, int out) {
    int *idx = (int *)ag__arena_alloc(ctx, (size_t)out * sizeof(int)), i;
    float scale = (float)in / (float)out;
    if (!idx) return NULL;
    for (i = 0; i < out; i++) { int s = (int)floorf((float)i * scale); idx[i] = s < in - 1 ? s : in - 1; }
    return idx;
}
static void ag__nearest_backward(ag_ctx *ctx, ag__node *n) {
    ag_tensor *x = n->in[0], *y = n->out;
    float *gx = ag__in_grad(ctx, n, 0);
    if (gx) ag__nearest_fold(ctx, y->grad, (long)x->shape[0] * x->shape[1], y->shape[2], y->shape[3],
                             (const int *)n->saved, (const int *)n->saved2, x->shape[2], x->shape[3], gx);
}
AGDEF ag_tensor *ag_upsample_nearest(ag_ctx *ctx, ag_tensor *x, int OH, int OW) {
    ag_tensor *y; int H, W, *iy, *ix; ag__node *nd;
    if (ag__check(ctx, "upsample_nearest", x, 4)) return NULL;
    if (OH < 1 || OW < 1) return (ag_tensor *)ag__ctx_fail(ctx, "upsample_nearest: bad output size %dx%d", OH, OW);
    H = x->shape[2]; W = x->shape[3];
    y = ag_tensor4(ctx, x->shape[0], x->shape[1], OH, OW);
    iy = ag__nearest_index(ctx, H, OH); ix = ag__nearest_index(ctx, W, OW);
    if (!y || !iy || !ix) return NULL;
    ag__nearest_planes(ctx, x->data, (long)x->shape[0] * x->shape[1], H, W, OH, OW, iy, ix, y->data);
    nd = ag__record(ctx, y, ag__nearest_backward, x, NULL, NULL, NULL);
    ag__unkeep(ctx, nd, 0);
    if (nd) { nd->saved = iy; nd->saved2 = ix; }
    return y;
}

/* ---- bilinear upsampling (align_corners=False) to any size ---- */
static ag__lerp *ag__bilinear_table(ag_ctx *ctx, int in, int out) {
    ag__lerp *t = (ag__lerp *)ag__arena_alloc(ctx, (size_t)out * sizeof(ag__lerp)); int i;
    float scale = (float)in / (float)out;
    if (!t) return NULL;
    for (i = 0; i < out; i++) {
        float src = scale * ((float)i + 0.5f) - 0.5f;
        if (src < 0.0f) src = 0.0f;
        t[i].i0 = (int)src;
        if (t[i].i0 > in - 1) t[i].i0 = in - 1;
        t[i].i1 = t[i].i0 + (t[i].i0 < in - 1 ? 1 : 0);
        t[i].w1 = src - (float)t[i].i0;
        t[i].w0 = 1.0f - t[i].w1;
    }
    return t;
}
static void ag__bilinear_backward(ag_ctx *ctx, ag__node *n) {
    ag_tensor *x = n->in[0], *y = n->out;
    float *gx = ag__in_grad(ctx, n, 0);
    if (gx) ag__bilinear_fold(ctx, y->grad, (long)x->shape[0] * x->shape[1], y->shape[2], y->shape[3],
                              (const ag__lerp *)n->saved, (const ag__lerp *)n->saved2, x->shape[2], x->shape[3], gx);
}
AGDEF ag_tensor *ag_upsample_bilinear(ag_ctx *ctx, ag_tensor *x, int OH, int OW) {
    ag_tensor *y; int H, W; ag__lerp *ty, *tx; ag__node *nd;
    if (ag__check(ctx, "upsample_bilinear", x, 4)) return NULL;
    if (OH < 1 || OW < 1) return (ag_tensor *)ag__ctx_fail(ctx, "upsample_bilinear: bad output size %dx%d", OH, OW);
    H = x->shape[2]; W = x->shape[3];
    y = ag_tensor4(ctx, x->shape[0], x->shape[1], OH, OW);
    ty = ag__bilinear_table(ctx, H, OH); tx = ag__bilinear_table(ctx, W, OW);
    if (!y || !ty || !tx) return NULL;
    ag__bilinear_planes(ctx, x->data, (long)x->shape[0] * x->shape[1], H, W, OH, OW, ty, tx, y->data);
    nd = ag__record(ctx, y, ag__bilinear_backward, x, NULL, NULL, NULL);
    ag__unkeep(ctx, nd, 0);
    if (nd) { nd->saved = ty; nd->saved2 = tx; }
    return y;
}

/* ---- ag_conv3x3_upsampled2: conv3x3 (stride 1, padding 1) of x upsampled x2, without the
   upsampled tensor: x[N,C,H,W] w[O,C,3,3] b[O] -> y[N,O,2H,2W], the bits of
   ag_upsample_nearest/bilinear(x, 2H, 2W) followed by ag_conv2d(.., 1, 1, 1, 1). The node
   keeps x (a quarter of the upsampled size) and the upsampling's index tables;
   ag__conv_forward / _backward read x through them (Winograd) or upsample x into a
   temporary buffer (the shapes Winograd does not take). ---- */
static ag__conv_geom ag__conv_up2_geometry(ag__wino_src *src, int N, int C, int H, int W, int O, int mode,
                                           const void *rows, const void *cols) {
    ag__conv_geom g = ag__conv_geometry(N, C, 2 * H, 2 * W, O, 3, 3, 1, 1, 1, 1);
    src->mode = mode == AG_UP_NEAREST ? 1 : 2; src->SH = H; src->SW = W;
    src->ny = (const int *)rows; src->nx = (const int *)cols; src->ty = (const ag__lerp *)rows; src->tx = (const ag__lerp *)cols;
    g.up = src;
    return g;
}
static void ag__conv_up2_backward(ag_ctx *ctx, ag__node *n) {
    ag_tensor *x = n->in[0], *w = n->in[1], *y = n->out;
    ag__wino_src src;
    ag__conv_geom g = ag__conv_up2_geometry(&src, x->shape[0], x->shape[1], x->shape[2], x->shape[3], w->shape[0], n->iarg[0],
                                            n->saved, n->saved2);
    float *gx = ag__in_grad(ctx, n, 0), *gw = ag__in_grad(ctx, n, 1), *gb = ag__in_grad(ctx, n, 2);
    ag__conv_backward(ctx, &g, x->data, w->data, y->grad, gx, gw, gb);
}
AGDEF ag_tensor *ag_conv3x3_upsampled2(ag_ctx *ctx, ag_tensor *x, ag_tensor *w, ag_tensor *b, int mode) {
    int N, C, H, W, O; ag_tensor *y; ag__node *nd; ag__wino_src src; ag__conv_geom g; void *t0, *t1; char s1[64], s2[64];
    if (ag__check(ctx, "conv3x3_upsampled2", x, 4) || ag__check(ctx, "conv3x3_upsampled2 (weight)", w, 4)) return NULL;
    if (mode != AG_UP_NEAREST && mode != AG_UP_BILINEAR)
        return (ag_tensor *)ag__ctx_fail(ctx, "conv3x3_upsampled2: mode %d is neither AG_UP_NEAREST (%d) nor AG_UP_BILINEAR (%d)",
                                         mode, AG_UP_NEAREST, AG_UP_BILINEAR);
    N = x->shape[0]; C = x->shape[1]; H = x->shape[2]; W = x->shape[3]; O = w->shape[0];
    if (w->shape[1] != C || w->shape[2] != 3 || w->shape[3] != 3) {
        ag_tensor_shape_str(x, s1, sizeof s1); ag_tensor_shape_str(w, s2, sizeof s2);
        return (ag_tensor *)ag__ctx_fail(ctx, "conv3x3_upsampled2: input %s has %d channels; the weight must be [O,%d,3,3], got %s", s1, C, C, s2);
    }
    if (b && b->size != (size_t)O) return (ag_tensor *)ag__ctx_fail(ctx, "conv3x3_upsampled2: bias has %zu elements, weight has %d outputs", b->size, O);
    y = ag_tensor4(ctx, N, O, 2 * H, 2 * W);
    if (mode == AG_UP_NEAREST) { t0 = ag__nearest_index(ctx, H, 2 * H); t1 = ag__nearest_index(ctx, W, 2 * W); }
    else { t0 = ag__bilinear_table(ctx, H, 2 * H); t1 = ag__bilinear_table(ctx, W, 2 * W); }
    if (!y || !t0 || !t1) return NULL;
    g = ag__conv_up2_geometry(&src, N, C, H, W, O, mode, t0, t1);
    ag__conv_forward(ctx, &g, x->data, w->data, b ? b->data : NULL, y->data);
    if (ctx->failed) return NULL;
    nd = ag__record(ctx, y, ag__conv_up2_backward, x, w, b, NULL);
    if (nd) { nd->iarg[0] = mode; nd->saved = t0; nd->saved2 = t1; }
    if (!w->requires_grad) ag__unkeep(ctx, nd, 0);   /* x only serves the weight gradient */
    ag__unkeep(ctx, nd, 2);
    return y;
}

/* ---- pooling: windows of `kernel` at `stride` with `pad`; avg divides by the window
   (count_include_pad) or by its in-bounds taps; max keeps the first maximum ---- */
static int ag__pool_out(int in, int k, int s, int p) { return (in + 2 * p - k) / s + 1; }
static void ag__avgpool_backward(ag_ctx *ctx, ag__node *n) {
    ag_tensor *x = n->in[0], *y = n->out;
    int H = x->shape[2], W = x->shape[3], OH = y->shape[2], OW = y->shape[3];
    int k = n->iarg[0], s = n->iarg[1], p = n->iarg[2], cip = n->iarg[3];
    float *gx = ag__in_grad(ctx, n, 0); long pl; int ag__nt = ag__threads_for(ctx, y->size * k * k); (void)ag__nt;
    if (!gx) return;
    AG__PARALLEL_FOR(ag__nt)
    for (pl = 0; pl < (long)x->shape[0] * x->shape[1]; pl++) {
        const float *g = y->grad + (size_t)pl * OH * OW; float *d = gx + (size_t)pl * H * W; int oy, ox, iy, ix;
        for (oy = 0; oy < OH; oy++) for (ox = 0; ox < OW; ox++) {
            int y0 = oy * s - p, x0 = ox * s - p, y1 = y0 + k, x1 = x0 + k, div;
            if (y1 > H + p) y1 = H + p;
            if (x1 > W + p) x1 = W + p;
            div = (y1 - y0) * (x1 - x0);
            if (y0 < 0) y0 = 0;
            if (x0 < 0) x0 = 0;
            if (y1 > H) y1 = H;
            if (x1 > W) x1 = W;
            if (!cip) div = (y1 - y0) * (x1 - x0);
            for (iy = y0; iy < y1; iy++) for (ix = x0; ix < x1; ix++) d[iy * W + ix] += g[oy * OW + ox] / (float)div;
        }
    }
}
AGDEF ag_tensor *ag_avg_pool2d(ag_ctx *ctx, ag_tensor *x, int k, int s, int p, int cip) {
    ag_tensor *y; int H, W, OH, OW; long pl; ag__node *nd; int ag__nt;
    if (ag__check(ctx, "avg_pool2d", x, 4)) return NULL;
    H = x->shape[2]; W = x->shape[3];
    if (k < 1 || s < 1 || p < 0 || 2 * p > k || H + 2 * p < k || W + 2 * p < k)
        return (ag_tensor *)ag__ctx_fail(ctx, "avg_pool2d: kernel %d stride %d pad %d do not fit a %dx%d input", k, s, p, H, W);
    OH = ag__pool_out(H, k, s, p); OW = ag__pool_out(W, k, s, p);
    y = ag_tensor4(ctx, x->shape[0], x->shape[1], OH, OW);
    if (!y) return NULL;
    ag__nt = ag__threads_for(ctx, y->size * k * k); (void)ag__nt;
    if (k == 3 && s == 1 && p == 1 && W <= 1024) {   /* Inception's branch pool: separable sums */
        AG__PARALLEL_FOR(ag__nt)
        for (pl = 0; pl < (long)x->shape[0] * x->shape[1]; pl++) {
            const float *src = x->data + (size_t)pl * H * W; float *d = y->data + (size_t)pl * OH * OW, col[1026];
            int oy, ox;
            for (oy = 0; oy < H; oy++) {
                const float *r1 = src + (size_t)oy * W, *r0 = oy > 0 ? r1 - W : NULL, *r2 = oy + 1 < H ? r1 + W : NULL;
                int rows = 1 + (r0 != NULL) + (r2 != NULL);
                col[0] = col[W + 1] = 0.0f;
                for (ox = 0; ox < W; ox++) col[ox + 1] = (r0 ? r0[ox] : 0.0f) + r1[ox] + (r2 ? r2[ox] : 0.0f);
                for (ox = 0; ox < W; ox++) {
                    int cols = 1 + (ox > 0) + (ox + 1 < W);
                    d[(size_t)oy * W + ox] = (col[ox] + col[ox + 1] + col[ox + 2]) / (float)(cip ? 9 : rows * cols);
                }
            }
        }
    } else {
    AG__PARALLEL_FOR(ag__nt)
    for (pl = 0; pl < (long)x->shape[0] * x->shape[1]; pl++) {
        const float *src = x->data + (size_t)pl * H * W; float *d = y->data + (size_t)pl * OH * OW; int oy, ox, iy, ix;
        for (oy = 0; oy < OH; oy++) for (ox = 0; ox < OW; ox++) {
            int y0 = oy * s - p, x0 = ox * s - p, y1 = y0 + k, x1 = x0 + k, div; float sum = 0.0f;
            if (y1 > H + p) y1 = H + p;
            if (x1 > W + p) x1 = W + p;
            div = (y1 - y0) * (x1 - x0);
            if (y0 < 0) y0 = 0;
            if (x0 < 0) x0 = 0;
            if (y1 > H) y1 = H;
            if (x1 > W) x1 = W;
            if (!cip) div = (y1 - y0) * (x1 - x0);
            for (iy = y0; iy < y1; iy++) for (ix = x0; ix < x1; ix++) sum += src[iy * W + ix];
            d[oy * OW + ox] = sum / (float)div;
        }
    }
    }
    nd = ag__record(ctx, y, ag__avgpool_backward, x, NULL, NULL, NULL);
    ag__unkeep(ctx, nd, 0);
    if (nd) { nd->iarg[0] = k; nd->iarg[1] = s; nd->iarg[2] = p; nd->iarg[3] = cip; }
    return y;
}
static void ag__maxpool_backward(ag_ctx *ctx, ag__node *n) {
    ag_tensor *x = n->in[0], *y = n->out; const int *arg = (const int *)n->saved;
    size_t plane_in = (size_t)x->shape[2] * x->shape[3], plane_out = (size_t)y->shape[2] * y->shape[3], i;
    float *gx = ag__in_grad(ctx, n, 0);
    if (!gx) return;
    for (i = 0; i < y->size; i++) gx[(i / plane_out) * plane_in + (size_t)arg[i]] += y->grad[i];
}
AGDEF ag_tensor *ag_max_pool2d(ag_ctx *ctx, ag_tensor *x, int k, int s, int p) {
    ag_tensor *y; int H, W, OH, OW, *arg; long pl; ag__node *nd; int ag__nt;
    if (ag__check(ctx, "max_pool2d", x, 4)) return NULL;
    H = x->shape[2]; W = x->shape[3];
    if (k < 1 || s < 1 || p < 0 || 2 * p > k || H + 2 * p < k || W + 2 * p < k)
        return (ag_tensor *)ag__ctx_fail(ctx, "max_pool2d: kernel %d stride %d pad %d do not fit a %dx%d input", k, s, p, H, W);
    OH = ag__pool_out(H, k, s, p); OW = ag__pool_out(W, k, s, p);
    y = ag_tensor4(ctx, x->shape[0], x->shape[1], OH, OW);
    if (!y) return NULL;
    ag__nt = ag__threads_for(ctx, y->size * k * k); (void)ag__nt;
    if (p == 0 && k == 3 && W <= 4096 && !(ctx->grad_enabled && x->requires_grad)) {
        /* no backward: the max of three rows, then of three columns (NaN propagates) */
        AG__PARALLEL_FOR(ag__nt)
        for (pl = 0; pl < (long)x->shape[0] * x->shape[1]; pl++) {
            const float *src = x->data + (size_t)pl * H * W; float *d = y->data + (size_t)pl * OH * OW, m[4096];
            int oy, ox;
            for (oy = 0; oy < OH; oy++) {
                const float *r0 = src + (size_t)oy * s * W, *r1 = r0 + W, *r2 = r1 + W;
                for (ox = 0; ox < W; ox++) {
                    float a = r0[ox], b = r1[ox], c = r2[ox];
                    a = (a > b || a != a) ? a : b;
                    m[ox] = (a > c || a != a) ? a : c;
                }
                for (ox = 0; ox < OW; ox++) {
                    float a = m[ox * s], b = m[ox * s + 1], c = m[ox * s + 2];
                    a = (a > b || a != a) ? a : b;
                    d[(size_t)oy * OW + ox] = (a > c || a != a) ? a : c;
                }
            }
        }
        return y;
    }
    arg = (int *)ag__arena_alloc(ctx, y->size * sizeof(int));
    if (!arg) return NULL;
    AG__PARALLEL_FOR(ag__nt)
    for (pl = 0; pl < (long)x->shape[0] * x->shape[1]; pl++) {
        const float *src = x->data + (size_t)pl * H * W; float *d = y->data + (size_t)pl * OH * OW;
        int *a = arg + (size_t)pl * OH * OW, oy, ox, iy, ix;
        for (oy = 0; oy < OH; oy++) for (ox = 0; ox < OW; ox++) {
            int y0 = oy * s - p, x0 = ox * s - p, y1 = y0 + k, x1 = x0 + k, best = -1; float m = -INFINITY;
            if (y0 < 0) y0 = 0;
            if (x0 < 0) x0 = 0;
            if (y1 > H) y1 = H;
            if (x1 > W) x1 = W;
            for (iy = y0; iy < y1; iy++) for (ix = x0; ix < x1; ix++) {
                float v = src[iy * W + ix];
                if (best < 0 || v > m || v != v) { m = v; best = iy * W + ix; if (v != v) goto done; }
            }
        done:
            d[oy * OW + ox] = m; a[oy * OW + ox] = best;
        }
    }
    nd = ag__record(ctx, y, ag__maxpool_backward, x, NULL, NULL, NULL);
    ag__unkeep(ctx, nd, 0);
    if (nd) nd->saved = arg;
    return y;
}

/* ---- elementwise ---- */
static ag_tensor *ag__like(ag_ctx *ctx, ag_tensor *x) { return ag_tensor_new(ctx, x->ndim, x->shape); }

static void ag__relu_backward(ag_ctx *ctx, ag__node *n) {
    float *gx = ag__in_grad(ctx, n, 0); long i; const float *y = n->out->data, *g = n->out->grad;
    int ag__nt = ag__threads_for(ctx, n->out->size); (void)ag__nt;
    if (!gx) return;
    AG__PARALLEL_FOR(ag__nt)
    for (i = 0; i < (long)n->out->size; i++) if (y[i] > 0.0f) gx[i] += g[i];
}
AGDEF ag_tensor *ag_relu(ag_ctx *ctx, ag_tensor *x) {
    ag_tensor *y; long i; int ag__nt;
    if (ag__check(ctx, "relu", x, 0) || !(y = ag__like(ctx, x))) return NULL;
    ag__nt = ag__threads_for(ctx, x->size); (void)ag__nt;
    {
        const float *px = x->data; float *py = y->data;
        AG__PARALLEL_FOR(ag__nt)
        for (i = 0; i < (long)x->size; i++) py[i] = px[i] > 0.0f ? px[i] : 0.0f;
    }
    { ag__node *nd = ag__record(ctx, y, ag__relu_backward, x, NULL, NULL, NULL); ag__unkeep(ctx, nd, 0); ag__keep_out(nd); }   /* reads its output */
    return y;
}
static void ag__tanh_backward(ag_ctx *ctx, ag__node *n) {
    float *gx = ag__in_grad(ctx, n, 0); size_t i; const float *y = n->out->data, *g = n->out->grad;
    if (gx) for (i = 0; i < n->out->size; i++) gx[i] += g[i] * (1.0f - y[i] * y[i]);
}
AGDEF ag_tensor *ag_tanh(ag_ctx *ctx, ag_tensor *x) {
    ag_tensor *y; size_t i;
    if (ag__check(ctx, "tanh", x, 0) || !(y = ag__like(ctx, x))) return NULL;
    for (i = 0; i < x->size; i++) y->data[i] = tanhf(x->data[i]);
    { ag__node *nd = ag__record(ctx, y, ag__tanh_backward, x, NULL, NULL, NULL); ag__unkeep(ctx, nd, 0); ag__keep_out(nd); }   /* reads its output */
    return y;
}
static void ag__sigmoid_backward(ag_ctx *ctx, ag__node *n) {
    float *gx = ag__in_grad(ctx, n, 0); size_t i; const float *y = n->out->data, *g = n->out->grad;
    if (gx) for (i = 0; i < n->out->size; i++) gx[i] += g[i] * y[i] * (1.0f - y[i]);
}
AGDEF ag_tensor *ag_sigmoid(ag_ctx *ctx, ag_tensor *x) {
    ag_tensor *y; size_t i;
    if (ag__check(ctx, "sigmoid", x, 0) || !(y = ag__like(ctx, x))) return NULL;
    for (i = 0; i < x->size; i++) y->data[i] = 1.0f / (1.0f + expf(-x->data[i]));
    { ag__node *nd = ag__record(ctx, y, ag__sigmoid_backward, x, NULL, NULL, NULL); ag__unkeep(ctx, nd, 0); ag__keep_out(nd); }   /* reads its output */
    return y;
}
static void ag__exp_backward(ag_ctx *ctx, ag__node *n) {
    float *gx = ag__in_grad(ctx, n, 0); size_t i; const float *y = n->out->data, *g = n->out->grad;
    if (gx) for (i = 0; i < n->out->size; i++) gx[i] += g[i] * y[i];
}
AGDEF ag_tensor *ag_exp(ag_ctx *ctx, ag_tensor *x) {
    ag_tensor *y; size_t i;
    if (ag__check(ctx, "exp", x, 0) || !(y = ag__like(ctx, x))) return NULL;
    for (i = 0; i < x->size; i++) y->data[i] = expf(x->data[i]);
    { ag__node *nd = ag__record(ctx, y, ag__exp_backward, x, NULL, NULL, NULL); ag__unkeep(ctx, nd, 0); ag__keep_out(nd); }   /* reads its output */
    return y;
}
/* add / sub: iarg[0] = sign of b */
static void ag__addsub_backward(ag_ctx *ctx, ag__node *n) {
    float *ga = ag__in_grad(ctx, n, 0), *gb = ag__in_grad(ctx, n, 1); long i; const float *g = n->out->grad;
    float sb = (float)n->iarg[0]; int ag__nt = ag__threads_for(ctx, n->out->size); (void)ag__nt;
    if (ga) {
        AG__PARALLEL_FOR(ag__nt)
        for (i = 0; i < (long)n->out->size; i++) ga[i] += g[i];
    }
    if (gb) {
        AG__PARALLEL_FOR(ag__nt)
        for (i = 0; i < (long)n->out->size; i++) gb[i] += sb * g[i];
    }
}
static ag_tensor *ag__addsub(ag_ctx *ctx, ag_tensor *a, ag_tensor *b, int sign, const char *op) {
    ag_tensor *y; size_t i; ag__node *nd; int ag__nt;
    if (ag__check_same(ctx, op, a, b) || !(y = ag__like(ctx, a))) return NULL;
    ag__nt = ag__threads_for(ctx, a->size); (void)ag__nt;
    {
        long j; const float *pa = a->data, *pb = b->data; float *py = y->data; float s = (float)sign;
        AG__PARALLEL_FOR(ag__nt)
        for (j = 0; j < (long)a->size; j++) py[j] = pa[j] + s * pb[j];
    }
    (void)i;
    nd = ag__record(ctx, y, ag__addsub_backward, a, b, NULL, NULL);
    ag__unkeep(ctx, nd, 0); ag__unkeep(ctx, nd, 1);
    if (nd) nd->iarg[0] = sign;
    return y;
}
AGDEF ag_tensor *ag_add(ag_ctx *ctx, ag_tensor *a, ag_tensor *b) { return ag__addsub(ctx, a, b, 1, "add"); }
AGDEF ag_tensor *ag_sub(ag_ctx *ctx, ag_tensor *a, ag_tensor *b) { return ag__addsub(ctx, a, b, -1, "sub"); }
static void ag__mul_backward(ag_ctx *ctx, ag__node *n) {
    float *ga = ag__in_grad(ctx, n, 0), *gb = ag__in_grad(ctx, n, 1); size_t i; const float *g = n->out->grad;
    if (ga) for (i = 0; i < n->out->size; i++) ga[i] += g[i] * n->in[1]->data[i];
    if (gb) for (i = 0; i < n->out->size; i++) gb[i] += g[i] * n->in[0]->data[i];
}
AGDEF ag_tensor *ag_mul(ag_ctx *ctx, ag_tensor *a, ag_tensor *b) {
    ag_tensor *y; size_t i;
    if (ag__check_same(ctx, "mul", a, b) || !(y = ag__like(ctx, a))) return NULL;
    for (i = 0; i < a->size; i++) y->data[i] = a->data[i] * b->data[i];
    {
        ag__node *nd = ag__record(ctx, y, ag__mul_backward, a, b, NULL, NULL);
        if (!b->requires_grad) ag__unkeep(ctx, nd, 0);   /* a serves b's gradient only */
        if (!a->requires_grad) ag__unkeep(ctx, nd, 1);
    }
    return y;
}
static void ag__scale_backward(ag_ctx *ctx, ag__node *n) {
    float *gx = ag__in_grad(ctx, n, 0); size_t i;
    if (gx) for (i = 0; i < n->out->size; i++) gx[i] += n->farg[0] * n->out->grad[i];
}
AGDEF ag_tensor *ag_scale(ag_ctx *ctx, ag_tensor *x, float s) {
    ag_tensor *y; size_t i; ag__node *nd;
    if (ag__check(ctx, "scale", x, 0) || !(y = ag__like(ctx, x))) return NULL;
    for (i = 0; i < x->size; i++) y->data[i] = s * x->data[i];
    nd = ag__record(ctx, y, ag__scale_backward, x, NULL, NULL, NULL);
    ag__unkeep(ctx, nd, 0);
    if (nd) nd->farg[0] = s;
    return y;
}

/* ---- channel concat: xs[i] = [N, C_i, ...] -> [N, sum C_i, ...] ---- */
static void ag__concat_backward(ag_ctx *ctx, ag__node *n) {
    ag_tensor **xs = (ag_tensor **)n->saved; int count = n->iarg[0], i, b;
    ag_tensor *y = n->out; size_t inner = y->size / ((size_t)y->shape[0] * y->shape[1]); int off = 0;
    for (i = 0; i < count; i++) {
        int C = xs[i]->shape[1];
        if (xs[i]->requires_grad) {
            float *g = ag__grad(ctx, xs[i]);
            if (!g) return;
            for (b = 0; b < y->shape[0]; b++) {
                const float *src = y->grad + ((size_t)b * y->shape[1] + off) * inner; float *dst = g + (size_t)b * C * inner; size_t k;
                for (k = 0; k < (size_t)C * inner; k++) dst[k] += src[k];
            }
        }
        off += C;
    }
}
AGDEF ag_tensor *ag_concat_channels(ag_ctx *ctx, ag_tensor **xs, int count) {
    int i, d, total = 0, shape[AG_MAX_DIMS], b, off = 0, rg = 0; ag_tensor *y, **saved; size_t inner = 1; ag__node *nd;
    char s1[64], s2[64];
    if (ctx->failed) return NULL;
    if (count < 1 || !xs) return (ag_tensor *)ag__ctx_fail(ctx, "concat: no inputs");
    for (i = 0; i < count; i++) {
        if (ag__check(ctx, "concat", xs[i], 0)) return NULL;
        if (xs[i]->ndim < 2 || xs[i]->ndim != xs[0]->ndim) return (ag_tensor *)ag__ctx_fail(ctx, "concat: input %d has %d dims (need >= 2, equal)", i, xs[i]->ndim);
        for (d = 0; d < xs[0]->ndim; d++) if (d != 1 && xs[i]->shape[d] != xs[0]->shape[d]) {
            ag_tensor_shape_str(xs[0], s1, sizeof s1); ag_tensor_shape_str(xs[i], s2, sizeof s2);
            return (ag_tensor *)ag__ctx_fail(ctx, "concat: input %d shape %s does not match %s outside dim 1", i, s2, s1);
        }
        total += xs[i]->shape[1];
        rg |= xs[i]->requires_grad;
    }
    for (d = 0; d < xs[0]->ndim; d++) shape[d] = xs[0]->shape[d];
    for (d = 2; d < xs[0]->ndim; d++) inner *= (size_t)shape[d];
    shape[1] = total;
    y = ag_tensor_new(ctx, xs[0]->ndim, shape);
    if (!y) return NULL;
    for (i = 0; i < count; i++) {
        int C = xs[i]->shape[1];
        for (b = 0; b < shape[0]; b++)
            memcpy(y->data + ((size_t)b * total + off) * inner, xs[i]->data + (size_t)b * C * inner, (size_t)C * inner * sizeof(float));
        off += C;
    }
    if (rg && ctx->grad_enabled) {
        saved = (ag_tensor **)ag__arena_alloc(ctx, (size_t)count * sizeof(ag_tensor *));
        if (!saved) return NULL;
        for (i = 0; i < count; i++) saved[i] = xs[i];
        nd = ag__push_node(ctx, y, ag__concat_backward);   /* inputs listed in `saved` */
        if (nd) { nd->saved = saved; nd->iarg[0] = count; }
    }
    return y;
}

/* ---- narrow: x[N,D] -> x[:, start:start+len] ---- */
static void ag__narrow_backward(ag_ctx *ctx, ag__node *n) {
    float *gx = ag__in_grad(ctx, n, 0); int N = n->out->shape[0], L = n->out->shape[1], D = n->in[0]->shape[1], s = n->iarg[0], i, j;
    if (gx) for (i = 0; i < N; i++) for (j = 0; j < L; j++) gx[(size_t)i * D + s + j] += n->out->grad[(size_t)i * L + j];
}
AGDEF ag_tensor *ag_narrow(ag_ctx *ctx, ag_tensor *x, int start, int len) {
    ag_tensor *y; int shape[2], i; ag__node *nd;
    if (ag__check(ctx, "narrow", x, 2)) return NULL;
    if (start < 0 || len < 1 || start + len > x->shape[1])
        return (ag_tensor *)ag__ctx_fail(ctx, "narrow: columns [%d, %d) outside [0, %d)", start, start + len, x->shape[1]);
    shape[0] = x->shape[0]; shape[1] = len;
    if (!(y = ag_tensor_new(ctx, 2, shape))) return NULL;
    for (i = 0; i < shape[0]; i++) memcpy(y->data + (size_t)i * len, x->data + (size_t)i * x->shape[1] + start, (size_t)len * sizeof(float));
    nd = ag__record(ctx, y, ag__narrow_backward, x, NULL, NULL, NULL);
    ag__unkeep(ctx, nd, 0);
    if (nd) nd->iarg[0] = start;
    return y;
}

/* ---- reshape: same data, new shape ---- */
static void ag__reshape_backward(ag_ctx *ctx, ag__node *n) {
    float *gx = ag__in_grad(ctx, n, 0); long i; const float *g = n->out->grad;
    int ag__nt = ag__threads_for(ctx, n->out->size); (void)ag__nt;
    if (!gx) return;
    AG__PARALLEL_FOR(ag__nt)
    for (i = 0; i < (long)n->out->size; i++) gx[i] += g[i];
}
AGDEF ag_tensor *ag_reshape(ag_ctx *ctx, ag_tensor *x, int ndim, const int *shape) {
    ag_tensor *y; size_t numel = 1; int i; char s1[64];
    if (ag__check(ctx, "reshape", x, 0)) return NULL;
    if (ndim < 1 || ndim > AG_MAX_DIMS) return (ag_tensor *)ag__ctx_fail(ctx, "reshape: %d dimensions", ndim);
    for (i = 0; i < ndim; i++) { if (shape[i] < 0) return (ag_tensor *)ag__ctx_fail(ctx, "reshape: negative dimension"); numel *= (size_t)shape[i]; }
    if (numel != x->size) { ag_tensor_shape_str(x, s1, sizeof s1); return (ag_tensor *)ag__ctx_fail(ctx, "reshape: %s has %zu elements, the new shape %zu", s1, x->size, numel); }
    y = (ag_tensor *)ag__arena_alloc(ctx, sizeof(ag_tensor));
    if (!y) return NULL;
    memset(y, 0, sizeof *y);
    y->data = x->data; y->size = numel; y->ndim = ndim;
    for (i = 0; i < AG_MAX_DIMS; i++) y->shape[i] = i < ndim ? shape[i] : 1;
    if (!x->is_param) { y->base = ag__owner(x); ag__ref(y); }
    ag__unkeep(ctx, ag__record(ctx, y, ag__reshape_backward, x, NULL, NULL, NULL), 0);
    return y;
}

/* ---- normalisation over groups of elements: shared by BatchNorm (group = channel over
   N,H,W) and InstanceNorm (group = one plane). Saved per group: mean and 1/std. ---- */
typedef struct ag__norm_saved { float *mean, *invstd; } ag__norm_saved;

static void ag__bn_backward(ag_ctx *ctx, ag__node *n) {
    ag_tensor *x = n->in[0], *w = n->in[1]; const ag__norm_saved *sv = (const ag__norm_saved *)n->saved;
    int N = x->shape[0], C = x->shape[1], training = n->iarg[0]; size_t plane = x->size / ((size_t)N * C);
    float *gx = ag__in_grad(ctx, n, 0), *gw = ag__in_grad(ctx, n, 1), *gb = ag__in_grad(ctx, n, 2);
    const float *gy = n->out->grad; long c; int ag__nt = ag__threads_for(ctx, x->size * 4); (void)ag__nt;
    AG__PARALLEL_FOR(ag__nt)
    for (c = 0; c < C; c++) {
        double sdy = 0.0, sdyx = 0.0, M = (double)N * plane; int b; size_t i;
        float mean = sv->mean[c], inv = sv->invstd[c], wc = w ? w->data[c] : 1.0f;
        for (b = 0; b < N; b++) {
            const float *xp = x->data + ((size_t)b * C + c) * plane, *gp = gy + ((size_t)b * C + c) * plane;
            for (i = 0; i < plane; i++) { sdy += gp[i]; sdyx += (double)gp[i] * (xp[i] - mean) * inv; }
        }
        if (gw) gw[c] += (float)sdyx;
        if (gb) gb[c] += (float)sdy;
        if (gx) {
            float k = wc * inv;
            for (b = 0; b < N; b++) {
                const float *xp = x->data + ((size_t)b * C + c) * plane, *gp = gy + ((size_t)b * C + c) * plane;
                float *dx = gx + ((size_t)b * C + c) * plane;
                if (training) {
                    float a = (float)(sdy / M), bb = (float)(sdyx / M);
                    for (i = 0; i < plane; i++) dx[i] += k * (gp[i] - a - (xp[i] - mean) * inv * bb);
                } else for (i = 0; i < plane; i++) dx[i] += k * gp[i];
            }
        }
    }
}
AGDEF ag_tensor *ag_batch_norm2d(ag_ctx *ctx, ag_tensor *x, ag_tensor *w, ag_tensor *b,
                                 ag_tensor *rm, ag_tensor *rv, int64_t *nbt, int training, float momentum, float eps) {
    ag_tensor *y; int N, C; size_t plane; ag__norm_saved *sv; long c; ag__node *nd; int ag__nt; char s1[64];
    if (ag__check(ctx, "batch_norm2d", x, 0)) return NULL;
    if (x->ndim != 4 && x->ndim != 2) { ag_tensor_shape_str(x, s1, sizeof s1); return (ag_tensor *)ag__ctx_fail(ctx, "batch_norm2d: expected [N,C,H,W], got %s", s1); }
    N = x->shape[0]; C = x->shape[1]; plane = x->size / ((size_t)N * C);
    if ((w && w->size != (size_t)C) || (b && b->size != (size_t)C) || (rm && rm->size != (size_t)C) || (rv && rv->size != (size_t)C)) {
        ag_tensor_shape_str(x, s1, sizeof s1);
        return (ag_tensor *)ag__ctx_fail(ctx, "batch_norm2d: parameters do not have %d elements for input %s", C, s1);
    }
    if (!training && (!rm || !rv)) return (ag_tensor *)ag__ctx_fail(ctx, "batch_norm2d: evaluation mode needs running statistics");
    if (training && (size_t)N * plane < 2) return (ag_tensor *)ag__ctx_fail(ctx, "batch_norm2d: training needs more than 1 value per channel");
    y = ag__like(ctx, x);
    sv = (ag__norm_saved *)ag__arena_alloc(ctx, sizeof *sv);
    if (!y || !sv) return NULL;
    sv->mean = (float *)ag__arena_alloc(ctx, (size_t)C * sizeof(float));
    sv->invstd = (float *)ag__arena_alloc(ctx, (size_t)C * sizeof(float));
    if (!sv->mean || !sv->invstd) return NULL;
    ag__nt = ag__threads_for(ctx, x->size * 3); (void)ag__nt;
    AG__PARALLEL_FOR(ag__nt)
    for (c = 0; c < C; c++) {
        double mean, var; int bi; size_t i; float fm, inv, wc = w ? w->data[c] : 1.0f, bc = b ? b->data[c] : 0.0f;
        if (training) {
            double s = 0.0, ss = 0.0, M = (double)N * plane;
            for (bi = 0; bi < N; bi++) { const float *p = x->data + ((size_t)bi * C + c) * plane; for (i = 0; i < plane; i++) s += p[i]; }
            mean = s / M;
            for (bi = 0; bi < N; bi++) { const float *p = x->data + ((size_t)bi * C + c) * plane; for (i = 0; i < plane; i++) { double d = p[i] - mean; ss += d * d; } }
            var = ss / M;
            if (rm) rm->data[c] = (1.0f - momentum) * rm->data[c] + momentum * (float)mean;
            if (rv) rv->data[c] = (1.0f - momentum) * rv->data[c] + momentum * (float)(ss / (M - 1.0));
        } else { mean = rm->data[c]; var = rv->data[c]; }
        fm = (float)mean; inv = (float)(1.0 / sqrt(var + (double)eps));
        sv->mean[c] = fm; sv->invstd[c] = inv;
        for (bi = 0; bi < N; bi++) {
            const float *p = x->data + ((size_t)bi * C + c) * plane; float *q = y->data + ((size_t)bi * C + c) * plane;
            for (i = 0; i < plane; i++) q[i] = (p[i] - fm) * inv * wc + bc;
        }
    }
    if (training && nbt) (*nbt)++;
    nd = ag__record(ctx, y, ag__bn_backward, x, w, b, NULL);
    if (nd) { nd->saved = sv; nd->iarg[0] = training; }
    return y;
}

static void ag__in_backward(ag_ctx *ctx, ag__node *n) {
    ag_tensor *x = n->in[0]; const ag__norm_saved *sv = (const ag__norm_saved *)n->saved;
    size_t plane = (size_t)x->shape[2] * x->shape[3]; long pl; float *gx = ag__in_grad(ctx, n, 0);
    int ag__nt = ag__threads_for(ctx, x->size * 4); (void)ag__nt;
    if (!gx) return;
    AG__PARALLEL_FOR(ag__nt)
    for (pl = 0; pl < (long)x->shape[0] * x->shape[1]; pl++) {
        const float *xp = x->data + (size_t)pl * plane, *gp = n->out->grad + (size_t)pl * plane; float *dx = gx + (size_t)pl * plane;
        double sdy = 0.0, sdyx = 0.0; size_t i; float mean = sv->mean[pl], inv = sv->invstd[pl], a, bb;
        for (i = 0; i < plane; i++) { sdy += gp[i]; sdyx += (double)gp[i] * (xp[i] - mean) * inv; }
        a = (float)(sdy / (double)plane); bb = (float)(sdyx / (double)plane);
        for (i = 0; i < plane; i++) dx[i] += inv * (gp[i] - a - (xp[i] - mean) * inv * bb);
    }
}
AGDEF ag_tensor *ag_instance_norm2d(ag_ctx *ctx, ag_tensor *x, float eps) {
    ag_tensor *y; size_t plane, P; ag__norm_saved *sv; long pl; ag__node *nd; int ag__nt;
    if (ag__check(ctx, "instance_norm2d", x, 4)) return NULL;
    plane = (size_t)x->shape[2] * x->shape[3]; P = (size_t)x->shape[0] * x->shape[1];
    if (plane < 2) return (ag_tensor *)ag__ctx_fail(ctx, "instance_norm2d: needs more than 1 value per plane (got %dx%d)", x->shape[2], x->shape[3]);
    y = ag__like(ctx, x);
    sv = (ag__norm_saved *)ag__arena_alloc(ctx, sizeof *sv);
    if (!y || !sv) return NULL;
    sv->mean = (float *)ag__arena_alloc(ctx, P * sizeof(float));
    sv->invstd = (float *)ag__arena_alloc(ctx, P * sizeof(float));
    if (!sv->mean || !sv->invstd) return NULL;
    ag__nt = ag__threads_for(ctx, x->size * 3); (void)ag__nt;
    AG__PARALLEL_FOR(ag__nt)
    for (pl = 0; pl < (long)P; pl++) {
        const float *p = x->data + (size_t)pl * plane; float *q = y->data + (size_t)pl * plane;
        double s = 0.0, ss = 0.0, mean; size_t i; float fm, inv;
        for (i = 0; i < plane; i++) s += p[i];
        mean = s / (double)plane;
        for (i = 0; i < plane; i++) { double d = p[i] - mean; ss += d * d; }
        fm = (float)mean; inv = (float)(1.0 / sqrt(ss / (double)plane + (double)eps));
        sv->mean[pl] = fm; sv->invstd[pl] = inv;
        for (i = 0; i < plane; i++) q[i] = (p[i] - fm) * inv;
    }
    nd = ag__record(ctx, y, ag__in_backward, x, NULL, NULL, NULL);
    if (nd) nd->saved = sv;
    return y;
}

/* ---- spectral norm (PyTorch semantics): W viewed [O, R]; training runs one power
   iteration v = normalize(Wᵀu), u = normalize(Wv) and stores u, v; sigma = uᵀWv;
   out = W / sigma. Backward holds u, v constant:
   dW = g/sigma - (sum(g*W)/sigma^2) u vᵀ. ---- */
typedef struct ag__sn_saved { float *u, *v; float sigma; } ag__sn_saved;
static void ag__sn_backward(ag_ctx *ctx, ag__node *n) {
    ag_tensor *w = n->in[0]; const ag__sn_saved *sv = (const ag__sn_saved *)n->saved;
    int O = w->shape[0]; size_t R = w->size / (size_t)O, i; int o;
    const float *g = n->out->grad; float *gw = ag__in_grad(ctx, n, 0); double s = 0.0; float sig = sv->sigma, k;
    if (!gw) return;
    for (i = 0; i < w->size; i++) s += (double)g[i] * w->data[i];
    k = (float)(s / ((double)sig * sig));
    for (o = 0; o < O; o++) for (i = 0; i < R; i++)
        gw[(size_t)o * R + i] += g[(size_t)o * R + i] / sig - k * sv->u[o] * sv->v[i];
}
AGDEF ag_tensor *ag_spectral_norm(ag_ctx *ctx, ag_tensor *w, ag_tensor *u, ag_tensor *v, int training, float eps) {
    ag_tensor *y; int O; size_t R, i; int o; ag__sn_saved *sv; double nrm, sigma; ag__node *nd; double *tmp;
    if (ag__check(ctx, "spectral_norm", w, 0) || ag__check(ctx, "spectral_norm (u)", u, 0) || ag__check(ctx, "spectral_norm (v)", v, 0)) return NULL;
    O = w->shape[0]; R = w->size / (size_t)O;
    if (u->size != (size_t)O || v->size != R)
        return (ag_tensor *)ag__ctx_fail(ctx, "spectral_norm: u has %zu and v %zu elements; the weight needs %d and %zu", u->size, v->size, O, R);
    tmp = (double *)ag__arena_alloc(ctx, (R > (size_t)O ? R : (size_t)O) * sizeof(double));
    y = ag__like(ctx, w);
    sv = (ag__sn_saved *)ag__arena_alloc(ctx, sizeof *sv);
    if (!tmp || !y || !sv) return NULL;
    if (training) {
        /* v = normalize(Wᵀ u) */
        for (i = 0; i < R; i++) tmp[i] = 0.0;
        for (o = 0; o < O; o++) { const float *row = w->data + (size_t)o * R; double uo = u->data[o]; for (i = 0; i < R; i++) tmp[i] += uo * row[i]; }
        nrm = 0.0; for (i = 0; i < R; i++) nrm += tmp[i] * tmp[i];
        nrm = sqrt(nrm); if (nrm < eps) nrm = eps;
        for (i = 0; i < R; i++) v->data[i] = (float)(tmp[i] / nrm);
        /* u = normalize(W v) */
        nrm = 0.0;
        for (o = 0; o < O; o++) { const float *row = w->data + (size_t)o * R; double s = 0.0; for (i = 0; i < R; i++) s += (double)row[i] * v->data[i]; tmp[o] = s; nrm += s * s; }
        nrm = sqrt(nrm); if (nrm < eps) nrm = eps;
        for (o = 0; o < O; o++) u->data[o] = (float)(tmp[o] / nrm);
    }
    sigma = 0.0;
    for (o = 0; o < O; o++) { const float *row = w->data + (size_t)o * R; double s = 0.0; for (i = 0; i < R; i++) s += (double)row[i] * v->data[i]; sigma += u->data[o] * s; }
    if (!(fabs(sigma) > 0.0) || sigma != sigma) return (ag_tensor *)ag__ctx_fail(ctx, "spectral_norm: sigma is %g (weight all zero or not finite)", sigma);
    sv->sigma = (float)sigma;
    for (i = 0; i < w->size; i++) y->data[i] = w->data[i] / sv->sigma;
    nd = ag__record(ctx, y, ag__sn_backward, w, NULL, NULL, NULL);
    if (nd) {
        sv->u = (float *)ag__arena_alloc(ctx, (size_t)O * sizeof(float));
        sv->v = (float *)ag__arena_alloc(ctx, R * sizeof(float));
        if (!sv->u || !sv->v) return NULL;
        memcpy(sv->u, u->data, (size_t)O * sizeof(float)); memcpy(sv->v, v->data, R * sizeof(float));
        nd->saved = sv;
    }
    return y;
}

/* ---- reductions and losses ---- */
static void ag__sum_hw_backward(ag_ctx *ctx, ag__node *n) {
    ag_tensor *x = n->in[0]; size_t plane = (size_t)x->shape[2] * x->shape[3], pl, i; float *gx = ag__in_grad(ctx, n, 0);
    if (gx) for (pl = 0; pl < n->out->size; pl++) { float g = n->out->grad[pl]; for (i = 0; i < plane; i++) gx[pl * plane + i] += g; }
}
AGDEF ag_tensor *ag_sum_hw(ag_ctx *ctx, ag_tensor *x) {
    ag_tensor *y; int shape[2]; size_t plane, pl, i;
    if (ag__check(ctx, "sum_hw", x, 4)) return NULL;
    shape[0] = x->shape[0]; shape[1] = x->shape[1]; plane = (size_t)x->shape[2] * x->shape[3];
    if (!(y = ag_tensor_new(ctx, 2, shape))) return NULL;
    for (pl = 0; pl < y->size; pl++) { float s = 0.0f; for (i = 0; i < plane; i++) s += x->data[pl * plane + i]; y->data[pl] = s; }
    ag__unkeep(ctx, ag__record(ctx, y, ag__sum_hw_backward, x, NULL, NULL, NULL), 0);
    return y;
}
static void ag__sum_backward(ag_ctx *ctx, ag__node *n) {
    float *gx = ag__in_grad(ctx, n, 0), g = n->out->grad[0] * n->farg[0]; size_t i;
    if (gx) for (i = 0; i < n->in[0]->size; i++) gx[i] += g;
}
static ag_tensor *ag__reduce(ag_ctx *ctx, ag_tensor *x, int mean) {
    ag_tensor *y; int one = 1; double s = 0.0; size_t i; ag__node *nd;
    if (ag__check(ctx, mean ? "mean" : "sum", x, 0)) return NULL;
    if (!x->size) return (ag_tensor *)ag__ctx_fail(ctx, "%s of an empty tensor", mean ? "mean" : "sum");
    if (!(y = ag_tensor_new(ctx, 1, &one))) return NULL;
    for (i = 0; i < x->size; i++) s += x->data[i];
    y->data[0] = (float)(mean ? s / (double)x->size : s);
    nd = ag__record(ctx, y, ag__sum_backward, x, NULL, NULL, NULL);
    ag__unkeep(ctx, nd, 0);
    if (nd) nd->farg[0] = mean ? 1.0f / (float)x->size : 1.0f;
    return y;
}
AGDEF ag_tensor *ag_sum(ag_ctx *ctx, ag_tensor *x) { return ag__reduce(ctx, x, 0); }
AGDEF ag_tensor *ag_mean(ag_ctx *ctx, ag_tensor *x) { return ag__reduce(ctx, x, 1); }

static void ag__hinge_d_backward(ag_ctx *ctx, ag__node *n) {
    ag_tensor *r = n->in[0], *f = n->in[1]; float g = n->out->grad[0]; size_t i;
    float *gr = ag__in_grad(ctx, n, 0), *gf = ag__in_grad(ctx, n, 1);
    if (gr) for (i = 0; i < r->size; i++) if (1.0f - r->data[i] > 0.0f) gr[i] -= g / (float)r->size;
    if (gf) for (i = 0; i < f->size; i++) if (1.0f + f->data[i] > 0.0f) gf[i] += g / (float)f->size;
}
AGDEF ag_tensor *ag_hinge_loss_d(ag_ctx *ctx, ag_tensor *r, ag_tensor *f) {
    ag_tensor *y; int one = 1; double sr = 0.0, sf = 0.0; size_t i;
    if (ag__check(ctx, "hinge_loss_d (real)", r, 0) || ag__check(ctx, "hinge_loss_d (fake)", f, 0)) return NULL;
    if (!r->size || !f->size) return (ag_tensor *)ag__ctx_fail(ctx, "hinge_loss_d: empty input");
    if (!(y = ag_tensor_new(ctx, 1, &one))) return NULL;
    for (i = 0; i < r->size; i++) { float v = 1.0f - r->data[i]; if (v > 0.0f) sr += v; }
    for (i = 0; i < f->size; i++) { float v = 1.0f + f->data[i]; if (v > 0.0f) sf += v; }
    y->data[0] = (float)(sr / (double)r->size + sf / (double)f->size);
    ag__record(ctx, y, ag__hinge_d_backward, r, f, NULL, NULL);
    return y;
}
AGDEF ag_tensor *ag_hinge_loss_g(ag_ctx *ctx, ag_tensor *f) { return ag_scale(ctx, ag_mean(ctx, f), -1.0f); }

static void ag__log_softmax_backward(ag_ctx *ctx, ag__node *n) {
    ag_tensor *y = n->out; int N = y->shape[0], C = y->shape[1], i, j; float *gx = ag__in_grad(ctx, n, 0);
    if (!gx) return;
    for (i = 0; i < N; i++) {
        const float *yr = y->data + (size_t)i * C, *gr = y->grad + (size_t)i * C; double s = 0.0;
        for (j = 0; j < C; j++) s += gr[j];
        for (j = 0; j < C; j++) gx[(size_t)i * C + j] += gr[j] - expf(yr[j]) * (float)s;
    }
}
static void ag__log_softmax_rows(const float *x, float *y, int N, int C) {
    int i, j;
    for (i = 0; i < N; i++) {
        const float *xr = x + (size_t)i * C; float *yr = y + (size_t)i * C; float m = xr[0]; double s = 0.0; float lse;
        for (j = 1; j < C; j++) if (xr[j] > m) m = xr[j];
        for (j = 0; j < C; j++) s += exp((double)xr[j] - m);
        lse = m + (float)log(s);
        for (j = 0; j < C; j++) yr[j] = xr[j] - lse;
    }
}
AGDEF ag_tensor *ag_log_softmax(ag_ctx *ctx, ag_tensor *x) {
    ag_tensor *y;
    if (ag__check(ctx, "log_softmax", x, 2) || !(y = ag__like(ctx, x))) return NULL;
    ag__log_softmax_rows(x->data, y->data, x->shape[0], x->shape[1]);
    ag__record(ctx, y, ag__log_softmax_backward, x, NULL, NULL, NULL);
    return y;
}
static void ag__xent_backward(ag_ctx *ctx, ag__node *n) {
    ag_tensor *x = n->in[0]; const float *lp = (const float *)n->saved; const int64_t *t = (const int64_t *)n->saved2;
    int N = x->shape[0], C = x->shape[1], i, j; float g = n->out->grad[0] / (float)N; float *gx = ag__in_grad(ctx, n, 0);
    if (!gx) return;
    for (i = 0; i < N; i++) for (j = 0; j < C; j++)
        gx[(size_t)i * C + j] += g * (expf(lp[(size_t)i * C + j]) - (j == (int)t[i] ? 1.0f : 0.0f));
}
AGDEF ag_tensor *ag_cross_entropy(ag_ctx *ctx, ag_tensor *x, const int64_t *targets) {
    ag_tensor *y; int N, C, i, one = 1; float *lp; int64_t *t; double s = 0.0; ag__node *nd;
    if (ag__check(ctx, "cross_entropy", x, 2)) return NULL;
    N = x->shape[0]; C = x->shape[1];
    for (i = 0; i < N; i++) if (targets[i] < 0 || targets[i] >= C) return (ag_tensor *)ag__ctx_fail(ctx, "cross_entropy: target %lld of row %d outside [0, %d)", (long long)targets[i], i, C);
    lp = (float *)ag__arena_alloc(ctx, x->size * sizeof(float));
    t = (int64_t *)ag__arena_alloc(ctx, (size_t)N * sizeof(int64_t));
    y = ag_tensor_new(ctx, 1, &one);
    if (!lp || !t || !y) return NULL;
    memcpy(t, targets, (size_t)N * sizeof(int64_t));
    ag__log_softmax_rows(x->data, lp, N, C);
    for (i = 0; i < N; i++) s -= lp[(size_t)i * C + targets[i]];
    y->data[0] = (float)(s / N);
    nd = ag__record(ctx, y, ag__xent_backward, x, NULL, NULL, NULL);
    if (nd) { nd->saved = lp; nd->saved2 = t; }
    return y;
}

static void ag__embedding_backward(ag_ctx *ctx, ag__node *n) {
    ag_tensor *tab = n->in[0]; const int64_t *idx = (const int64_t *)n->saved; int k, D = tab->shape[1], j;
    float *gt = ag__in_grad(ctx, n, 0);
    if (gt) for (k = 0; k < n->out->shape[0]; k++) for (j = 0; j < D; j++) gt[(size_t)idx[k] * D + j] += n->out->grad[(size_t)k * D + j];
}
AGDEF ag_tensor *ag_embedding(ag_ctx *ctx, ag_tensor *tab, const int64_t *index, int count) {
    ag_tensor *y; int shape[2], k, D; int64_t *idx; ag__node *nd;
    if (ag__check(ctx, "embedding", tab, 2)) return NULL;
    if (count < 1) return (ag_tensor *)ag__ctx_fail(ctx, "embedding: %d indices", count);
    D = tab->shape[1];
    for (k = 0; k < count; k++) if (index[k] < 0 || index[k] >= tab->shape[0])
        return (ag_tensor *)ag__ctx_fail(ctx, "embedding: index %lld outside the table of %d rows", (long long)index[k], tab->shape[0]);
    shape[0] = count; shape[1] = D;
    y = ag_tensor_new(ctx, 2, shape);
    idx = (int64_t *)ag__arena_alloc(ctx, (size_t)count * sizeof(int64_t));
    if (!y || !idx) return NULL;
    memcpy(idx, index, (size_t)count * sizeof(int64_t));
    for (k = 0; k < count; k++) memcpy(y->data + (size_t)k * D, tab->data + (size_t)index[k] * D, (size_t)D * sizeof(float));
    nd = ag__record(ctx, y, ag__embedding_backward, tab, NULL, NULL, NULL);
    if (nd) nd->saved = idx;
    return y;
}

/* LSTM cell from the primitives above: gates = x W_ihᵀ + b_ih + h W_hhᵀ + b_hh, split
   as i, f, g, o (PyTorch's order); c' = σ(f) c + σ(i) tanh(g); h' = σ(o) tanh(c'). */
AGDEF ag_tensor *ag_lstm_cell(ag_ctx *ctx, ag_tensor *x, ag_tensor *h, ag_tensor *c, ag_tensor *w_ih,
                              ag_tensor *w_hh, ag_tensor *b_ih, ag_tensor *b_hh, ag_tensor **c_out) {
    ag_tensor *gates, *ig, *fg, *gg, *og, *c2, *h2; int H;
    if (c_out) *c_out = NULL;
    if (ag__check(ctx, "lstm_cell (h)", h, 2) || ag__check(ctx, "lstm_cell (c)", c, 2) || ag__check(ctx, "lstm_cell (w_hh)", w_hh, 2)) return NULL;
    H = h->shape[1];
    if (w_hh->shape[0] != 4 * H) return (ag_tensor *)ag__ctx_fail(ctx, "lstm_cell: weight_hh has %d rows, hidden size %d needs %d", w_hh->shape[0], H, 4 * H);
    gates = ag_add(ctx, ag_linear(ctx, x, w_ih, b_ih), ag_linear(ctx, h, w_hh, b_hh));
    ig = ag_sigmoid(ctx, ag_narrow(ctx, gates, 0, H));
    fg = ag_sigmoid(ctx, ag_narrow(ctx, gates, H, H));
    gg = ag_tanh(ctx, ag_narrow(ctx, gates, 2 * H, H));
    og = ag_sigmoid(ctx, ag_narrow(ctx, gates, 3 * H, H));
    c2 = ag_add(ctx, ag_mul(ctx, fg, c), ag_mul(ctx, ig, gg));
    h2 = ag_mul(ctx, og, ag_tanh(ctx, c2));
    if (c_out) *c_out = h2 ? c2 : NULL;
    return h2;
}

/* ===================================================================================
   6. Parameters, layers and initialisation; loading arrays into parameters
   =================================================================================== */
static ag_tensor *ag__param_tensor(int ndim, const int *shape, int with_grad) {
    ag_tensor *t = (ag_tensor *)AG_MALLOC(sizeof(ag_tensor)); size_t n = 1; int i;
    if (!t) return NULL;
    memset(t, 0, sizeof *t);
    for (i = 0; i < ndim; i++) n *= (size_t)shape[i];
    t->data = (float *)AG_MALLOC(n * sizeof(float) + 4);
    t->grad = with_grad ? (float *)AG_MALLOC(n * sizeof(float) + 4) : NULL;
    if (!t->data || (with_grad && !t->grad)) { AG_FREE(t->data); AG_FREE(t->grad); AG_FREE(t); return NULL; }
    memset(t->data, 0, n * sizeof(float));
    if (t->grad) memset(t->grad, 0, n * sizeof(float));
    t->ndim = ndim; t->size = n; t->is_param = 1; t->requires_grad = with_grad;
    for (i = 0; i < AG_MAX_DIMS; i++) t->shape[i] = i < ndim ? shape[i] : 1;
    return t;
}
static int ag__params_grow(ag_params *ps, ag_error *err) {
    if (ps->count == ps->cap) {
        int cap = ps->cap ? ps->cap * 2 : 64;
        ag_param_entry *e = (ag_param_entry *)AG_REALLOC(ps->entries, (size_t)cap * sizeof(ag_param_entry));
        if (!e) return ag__fail(err, "out of memory growing a parameter set");
        ps->entries = e; ps->cap = cap;
    }
    return 0;
}
AGDEF ag_tensor *ag_params_add(ag_params *ps, const char *name, ag_entry_kind kind, int ndim, const int *shape, ag_error *err) {
    ag_param_entry *e; ag_tensor *t; int i;
    if (strlen(name) >= AG_NAME_MAX) { ag__fail(err, "parameter name too long: %s", name); return NULL; }
    if (ndim < 1 || ndim > AG_MAX_DIMS) { ag__fail(err, "parameter %s: %d dims", name, ndim); return NULL; }
    for (i = 0; i < ndim; i++) if (shape[i] < 1) { ag__fail(err, "parameter %s: empty dimension", name); return NULL; }
    if (ag_params_find(ps, name)) { ag__fail(err, "parameter %s registered twice", name); return NULL; }
    if (ag__params_grow(ps, err)) return NULL;
    if (!(t = ag__param_tensor(ndim, shape, kind == AG_ENTRY_PARAM))) { ag__fail(err, "out of memory for parameter %s", name); return NULL; }
    e = &ps->entries[ps->count++];
    memset(e, 0, sizeof *e);
    strcpy(e->name, name); e->kind = kind; e->tensor = t;
    return t;
}
AGDEF int ag_params_add_counter(ag_params *ps, const char *name, int64_t *counter, ag_error *err) {
    ag_param_entry *e;
    if (strlen(name) >= AG_NAME_MAX) return ag__fail(err, "parameter name too long: %s", name);
    if (ag__params_grow(ps, err)) return -1;
    e = &ps->entries[ps->count++];
    memset(e, 0, sizeof *e);
    strcpy(e->name, name); e->kind = AG_ENTRY_COUNTER; e->counter = counter;
    return 0;
}
AGDEF ag_param_entry *ag_params_find(const ag_params *ps, const char *name) {
    int i;
    for (i = 0; i < ps->count; i++) if (strcmp(ps->entries[i].name, name) == 0) return &ps->entries[i];
    return NULL;
}
AGDEF void ag_params_free(ag_params *ps) {
    int i;
    for (i = 0; i < ps->count; i++) if (ps->entries[i].tensor) {
        AG_FREE(ps->entries[i].tensor->data); AG_FREE(ps->entries[i].tensor->grad); AG_FREE(ps->entries[i].tensor);
    }
    AG_FREE(ps->entries);
    ps->entries = NULL; ps->count = ps->cap = 0;
}
AGDEF void ag_params_zero_grad(ag_params *ps) {
    int i;
    for (i = 0; i < ps->count; i++) if (ps->entries[i].kind == AG_ENTRY_PARAM)
        memset(ps->entries[i].tensor->grad, 0, ps->entries[i].tensor->size * sizeof(float));
}
static void ag__params_set_requires_grad(ag_params *ps, int on) {
    int i;
    for (i = 0; i < ps->count; i++) if (ps->entries[i].kind == AG_ENTRY_PARAM) ps->entries[i].tensor->requires_grad = on;
}
AGDEF size_t ag_params_count(const ag_params *ps) {
    size_t n = 0; int i;
    for (i = 0; i < ps->count; i++) if (ps->entries[i].kind == AG_ENTRY_PARAM) n += ps->entries[i].tensor->size;
    return n;
}
AGDEF int ag_params_copy(ag_params *dst, const ag_params *src, ag_error *err) {
    int i;
    if (dst->count != src->count) return ag__fail(err, "copy: parameter sets differ in size (%d vs %d)", dst->count, src->count);
    for (i = 0; i < dst->count; i++) {
        const ag_param_entry *s = &src->entries[i]; ag_param_entry *d = &dst->entries[i];
        if (strcmp(s->name, d->name) || s->kind != d->kind || (s->tensor && !ag_tensor_same_shape(s->tensor, d->tensor)))
            return ag__fail(err, "copy: entry %d differs (%s vs %s)", i, s->name, d->name);
    }
    for (i = 0; i < dst->count; i++) {
        const ag_param_entry *s = &src->entries[i]; ag_param_entry *d = &dst->entries[i];
        if (s->kind == AG_ENTRY_COUNTER) *d->counter = *s->counter;
        else memcpy(d->tensor->data, s->tensor->data, s->tensor->size * sizeof(float));
    }
    return 0;
}

AGDEF void ag_init_uniform(ag_rng *rng, ag_tensor *t, float lo, float hi) { ag_rng_fill_uniform(rng, t->data, t->size, lo, hi); }
AGDEF void ag_init_normal(ag_rng *rng, ag_tensor *t, float mean, float std) { ag_rng_fill_normal(rng, t->data, t->size, mean, std); }
AGDEF void ag_init_fill(ag_tensor *t, float value) { size_t i; for (i = 0; i < t->size; i++) t->data[i] = value; }
/* fans as torch.nn.init._calculate_fan_in_and_fan_out: dim1 * receptive, dim0 * receptive */
static void ag__fans(const ag_tensor *t, double *fan_in, double *fan_out) {
    double rec = 1.0; int i;
    for (i = 2; i < t->ndim; i++) rec *= t->shape[i];
    *fan_in = (t->ndim > 1 ? t->shape[1] : 1) * rec; *fan_out = t->shape[0] * rec;
}
AGDEF void ag_init_xavier_uniform(ag_rng *rng, ag_tensor *t, float gain) {
    double fi, fo, a; ag__fans(t, &fi, &fo);
    a = gain * sqrt(6.0 / (fi + fo));
    ag_init_uniform(rng, t, (float)-a, (float)a);
}
/* PyTorch's default for Linear/Conv/ConvTranspose: kaiming_uniform(a=sqrt 5) on the
   weight = U(+-1/sqrt(fan_in)), and the bias U(+-1/sqrt(fan_in)) with the weight's fan_in */
static void ag__init_default(ag_rng *rng, ag_tensor *w, ag_tensor *b, int weight_too) {
    double fi, fo, bound; ag__fans(w, &fi, &fo);
    bound = 1.0 / sqrt(fi);
    if (weight_too) ag_init_uniform(rng, w, (float)-bound, (float)bound);
    if (b) ag_init_uniform(rng, b, (float)-bound, (float)bound);
}

/* layer registration, in state_dict order */
static int ag__reg_conv(ag_params *ps, ag_conv_layer *l, const char *prefix, int cin, int cout, int k, int transposed, int bias, ag_error *err) {
    char name[AG_NAME_MAX + 16]; int shape[4];
    memset(l, 0, sizeof *l);
    l->cin = cin; l->cout = cout; l->kh = l->kw = k; l->stride = transposed ? 2 : 1; l->pad = transposed ? 0 : k / 2;
    shape[0] = transposed ? cin : cout; shape[1] = transposed ? cout : cin; shape[2] = shape[3] = k;
    snprintf(name, sizeof name, "%s.weight", prefix);
    if (!(l->weight = ag_params_add(ps, name, AG_ENTRY_PARAM, k ? 4 : 2, shape, err))) return -1;
    if (bias) {
        snprintf(name, sizeof name, "%s.bias", prefix);
        if (!(l->bias = ag_params_add(ps, name, AG_ENTRY_PARAM, 1, &cout, err))) return -1;
    }
    return 0;
}
static int ag__reg_bn(ag_params *ps, ag_bn_layer *l, const char *prefix, int C, ag_error *err) {
    char name[AG_NAME_MAX + 16];
    memset(l, 0, sizeof *l);
    l->channels = C;
    snprintf(name, sizeof name, "%s.weight", prefix);       if (!(l->weight = ag_params_add(ps, name, AG_ENTRY_PARAM, 1, &C, err))) return -1;
    snprintf(name, sizeof name, "%s.bias", prefix);         if (!(l->bias = ag_params_add(ps, name, AG_ENTRY_PARAM, 1, &C, err))) return -1;
    snprintf(name, sizeof name, "%s.running_mean", prefix); if (!(l->running_mean = ag_params_add(ps, name, AG_ENTRY_BUFFER, 1, &C, err))) return -1;
    snprintf(name, sizeof name, "%s.running_var", prefix);  if (!(l->running_var = ag_params_add(ps, name, AG_ENTRY_BUFFER, 1, &C, err))) return -1;
    snprintf(name, sizeof name, "%s.num_batches_tracked", prefix);
    return ag_params_add_counter(ps, name, &l->num_batches_tracked, err);
}
static int ag__reg_sn_conv(ag_params *ps, ag_sn_conv_layer *l, const char *prefix, int cin, int cout, int k, int sn, ag_error *err) {
    char name[AG_NAME_MAX + 16]; int shape[4], rest = cin * (k ? k * k : 1);
    memset(l, 0, sizeof *l);
    l->cin = cin; l->cout = cout; l->k = k; l->pad = k / 2;
    shape[0] = cout; shape[1] = cin; shape[2] = shape[3] = k;
    if (k) { snprintf(name, sizeof name, "%s.bias", prefix); if (!(l->bias = ag_params_add(ps, name, AG_ENTRY_PARAM, 1, &cout, err))) return -1; }
    snprintf(name, sizeof name, sn ? "%s.weight_orig" : "%s.weight", prefix);
    if (!(l->weight_orig = ag_params_add(ps, name, AG_ENTRY_PARAM, k ? 4 : 2, shape, err))) return -1;
    if (sn) {
        snprintf(name, sizeof name, "%s.weight_u", prefix); if (!(l->u = ag_params_add(ps, name, AG_ENTRY_BUFFER, 1, &cout, err))) return -1;
        snprintf(name, sizeof name, "%s.weight_v", prefix); if (!(l->v = ag_params_add(ps, name, AG_ENTRY_BUFFER, 1, &rest, err))) return -1;
    }
    return 0;
}

/* layer application */
static ag_tensor *ag__conv_apply(ag_ctx *ctx, const ag_conv_layer *l, ag_tensor *x) {
    return ag_conv2d(ctx, x, l->weight, l->bias, 1, 1, l->pad, l->pad);
}
static ag_tensor *ag__deconv_apply(ag_ctx *ctx, const ag_conv_layer *l, ag_tensor *x) {
    return ag_conv_transpose2d(ctx, x, l->weight, l->bias, 2, 0);
}
static ag_tensor *ag__bn_apply(ag_ctx *ctx, ag_bn_layer *l, ag_tensor *x, int training) {
    return ag_batch_norm2d(ctx, x, l->weight, l->bias, l->running_mean, l->running_var, &l->num_batches_tracked, training, 0.1f, 1e-5f);
}
static void ag__bn_reset(ag_rng *rng, ag_bn_layer *l) {   /* the reference's weights_init for BN */
    ag_init_normal(rng, l->weight, 1.0f, 0.02f); ag_init_fill(l->bias, 0.0f);
    ag_init_fill(l->running_mean, 0.0f); ag_init_fill(l->running_var, 1.0f); l->num_batches_tracked = 0;
}
static void ag__conv_reset(ag_rng *rng, ag_conv_layer *l) {  /* Conv2d: xavier weight, default bias */
    ag_init_xavier_uniform(rng, l->weight, 1.0f); ag__init_default(rng, l->weight, l->bias, 0);
}
static void ag__deconv_reset(ag_rng *rng, ag_conv_layer *l) { ag__init_default(rng, l->weight, l->bias, 1); }

/* ---- loading arrays into a parameter set: every name, dtype, shape and value checked first,
   then all copied or nothing ---- */
/* index of the first element that is NaN or infinite (or, with nonneg, negative); -1 if none */
static long ag__array_first_bad(const ag_array *a, int nonneg) {
    size_t n = a->nbytes / (ag_dtype_size(a->dtype) ? ag_dtype_size(a->dtype) : 1), i;
    for (i = 0; i < n; i++) {
        double v;
        switch (a->dtype) {
        case AG_DTYPE_F32: { float f; memcpy(&f, (const unsigned char *)a->data + 4 * i, 4); v = f; } break;
        case AG_DTYPE_F64: memcpy(&v, (const unsigned char *)a->data + 8 * i, 8); break;
        case AG_DTYPE_F16: { uint16_t h; memcpy(&h, (const unsigned char *)a->data + 2 * i, 2); if ((h & 0x7c00u) == 0x7c00u) return (long)i; v = (h & 0x8000u) && (h & 0x7fffu) ? -1.0 : 0.0; } break;
        case AG_DTYPE_BF16: { uint16_t h; memcpy(&h, (const unsigned char *)a->data + 2 * i, 2); if ((h & 0x7f80u) == 0x7f80u) return (long)i; v = (h & 0x8000u) && (h & 0x7fffu) ? -1.0 : 0.0; } break;
        default: return -1;
        }
        if (!(v == v) || v > 3.4e38 || v < -3.4e38 || (nonneg && v < 0.0)) return (long)i;
    }
    return -1;
}
/* checks that every entry of ps is in the list with a fitting dtype and shape (and, when
   strict, that the list holds nothing else under the prefix); changes nothing */
static int ag__params_check_arrays(const ag_params *ps, const ag_array_list *list, const char *prefix, int strict,
                                   const char *source, ag_error *err) {
    int i, d, rc = 0; char key[AG_NAME_MAX + 64]; size_t plen = prefix ? strlen(prefix) : 0;
    if (plen > 60) return ag__fail(err, "%s: prefix too long", source);
    for (i = 0; i < ps->count && !rc; i++) {
        const ag_param_entry *e = &ps->entries[i]; const ag_array *a;
        snprintf(key, sizeof key, "%s%s", prefix ? prefix : "", e->name);
        a = ag_array_list_find(list, key);
        if (!a) { rc = ag__fail(err, "%s: tensor '%s' is missing", source, key); break; }
        if (e->kind == AG_ENTRY_COUNTER) {
            if (a->dtype != AG_DTYPE_I64 || a->ndim > 1 || a->nbytes != 8) rc = ag__fail(err, "%s: '%s' must be an I64 scalar", source, key);
        } else {
            int same = a->ndim == e->tensor->ndim;
            for (d = 0; same && d < a->ndim; d++) same = a->shape[d] == e->tensor->shape[d];
            if (a->dtype != AG_DTYPE_F32 && a->dtype != AG_DTYPE_F64 && a->dtype != AG_DTYPE_F16 && a->dtype != AG_DTYPE_BF16)
                rc = ag__fail(err, "%s: tensor '%s' has dtype %s; a float type is needed", source, key, ag__st_dtype_name(a->dtype));
            else if (!same) {
                char want[64], got[96]; size_t u = 0;
                ag_tensor_shape_str(e->tensor, want, sizeof want);
                u += (size_t)snprintf(got, sizeof got, "[");
                for (d = 0; d < a->ndim && u < sizeof got; d++) u += (size_t)snprintf(got + u, sizeof got - u, d ? ",%lld" : "%lld", (long long)a->shape[d]);
                if (u < sizeof got) snprintf(got + u, sizeof got - u, "]");
                rc = ag__fail(err, "%s: tensor '%s' has shape %s; the model needs %s", source, key, got, want);
            } else {
                long bad = ag__array_first_bad(a, 0);
                if (bad >= 0) rc = ag__fail(err, "%s: tensor '%s' element %ld is NaN or infinite", source, key, bad);
            }
        }
    }
    if (!rc && strict) for (i = 0; i < list->count; i++) {
        const char *name = list->items[i].name;
        if (plen && strncmp(name, prefix, plen) != 0) continue;
        if (!ag_params_find(ps, name + plen)) { rc = ag__fail(err, "%s: unexpected tensor '%s' (not in the model)", source, name); break; }
    }
    return rc;
}
static void ag__params_copy_arrays(ag_params *ps, const ag_array_list *list, const char *prefix) {
    int i; char key[AG_NAME_MAX + 64];
    for (i = 0; i < ps->count; i++) {
        const ag_param_entry *e = &ps->entries[i]; const ag_array *a;
        snprintf(key, sizeof key, "%s%s", prefix ? prefix : "", e->name);
        a = ag_array_list_find(list, key);
        if (!a) continue;
        if (e->kind == AG_ENTRY_COUNTER) memcpy(e->counter, a->data, 8);
        else ag_array_to_f32(a, e->tensor->data, NULL);
    }
}
/* checks every entry first; copies only when all fit */
AGDEF int ag_params_load_arrays(ag_params *ps, const ag_array_list *list, const char *prefix, int strict,
                                const char *source, ag_error *err) {
    if (ag__params_check_arrays(ps, list, prefix, strict, source, err)) return -1;
    ag__params_copy_arrays(ps, list, prefix);
    return 0;
}


/* ===================================================================================
   7. Optimiser: Adam, EMA, the linear learning-rate decay
   =================================================================================== */
AGDEF int ag_adam_init(ag_adam *opt, ag_params *ps, float lr, float beta1, float beta2, float eps, ag_error *err) {
    int i;
    memset(opt, 0, sizeof *opt);
    opt->params = ps; opt->lr = lr; opt->beta1 = beta1; opt->beta2 = beta2; opt->eps = eps;
    opt->m = (float **)AG_MALLOC((size_t)(ps->count ? ps->count : 1) * sizeof(float *));
    opt->v = (float **)AG_MALLOC((size_t)(ps->count ? ps->count : 1) * sizeof(float *));
    if (!opt->m || !opt->v) { AG_FREE(opt->m); AG_FREE(opt->v); memset(opt, 0, sizeof *opt); return ag__fail(err, "out of memory for Adam"); }
    for (i = 0; i < ps->count; i++) {
        opt->m[i] = opt->v[i] = NULL;
        if (ps->entries[i].kind != AG_ENTRY_PARAM) continue;
        opt->m[i] = (float *)AG_MALLOC(ps->entries[i].tensor->size * sizeof(float) + 4);
        opt->v[i] = (float *)AG_MALLOC(ps->entries[i].tensor->size * sizeof(float) + 4);
        if (!opt->m[i] || !opt->v[i]) {
            AG_FREE(opt->m[i]); AG_FREE(opt->v[i]);
            for (--i; i >= 0; i--) { AG_FREE(opt->m[i]); AG_FREE(opt->v[i]); }
            AG_FREE(opt->m); AG_FREE(opt->v); memset(opt, 0, sizeof *opt);
            return ag__fail(err, "out of memory for Adam moments");
        }
    }
    ag_adam_reset(opt);
    return 0;
}
AGDEF void ag_adam_reset(ag_adam *opt) {
    int i;
    opt->step = 0;
    for (i = 0; i < opt->params->count; i++) if (opt->m[i]) {
        size_t n = opt->params->entries[i].tensor->size;
        memset(opt->m[i], 0, n * sizeof(float)); memset(opt->v[i], 0, n * sizeof(float));
    }
}
/* torch.optim.Adam (no weight decay, no amsgrad): m = b1 m + (1-b1) g; v = b2 v + (1-b2) g²;
   p -= (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps); corrections in double */
AGDEF void ag_adam_step(ag_adam *opt) {
    int i; double bc1, bc2s; float step_size, inv_bc2s, b1 = opt->beta1, b2 = opt->beta2, eps = opt->eps;
    opt->step++;
    bc1 = 1.0 - pow((double)b1, (double)opt->step);
    bc2s = sqrt(1.0 - pow((double)b2, (double)opt->step));
    step_size = (float)(opt->lr / bc1); inv_bc2s = (float)bc2s;
    for (i = 0; i < opt->params->count; i++) {
        ag_tensor *t; size_t j;
        if (!opt->m[i]) continue;
        t = opt->params->entries[i].tensor;
        for (j = 0; j < t->size; j++) {
            float g = t->grad[j], m, v, denom;
            m = opt->m[i][j] = b1 * opt->m[i][j] + (1.0f - b1) * g;
            v = opt->v[i][j] = b2 * opt->v[i][j] + (1.0f - b2) * g * g;
            denom = sqrtf(v) / inv_bc2s + eps;
            t->data[j] -= step_size * (m / denom);
        }
    }
}
AGDEF void ag_adam_free(ag_adam *opt) {
    int i;
    if (!opt->params) return;
    for (i = 0; i < opt->params->count; i++) { AG_FREE(opt->m[i]); AG_FREE(opt->v[i]); }
    AG_FREE(opt->m); AG_FREE(opt->v);
    memset(opt, 0, sizeof *opt);
}

AGDEF int ag_ema_init(ag_ema *ema, ag_params *ps, float decay, ag_error *err) {
    int i;
    memset(ema, 0, sizeof *ema);
    ema->params = ps; ema->decay = decay;
    ema->avg = (float **)AG_MALLOC((size_t)(ps->count ? ps->count : 1) * sizeof(float *));
    if (!ema->avg) return ag__fail(err, "out of memory for the EMA");
    for (i = 0; i < ps->count; i++) {
        ema->avg[i] = NULL;
        if (ps->entries[i].kind != AG_ENTRY_PARAM) continue;
        ema->avg[i] = (float *)AG_MALLOC(ps->entries[i].tensor->size * sizeof(float) + 4);
        if (!ema->avg[i]) { for (--i; i >= 0; i--) AG_FREE(ema->avg[i]); AG_FREE(ema->avg); memset(ema, 0, sizeof *ema); return ag__fail(err, "out of memory for the EMA"); }
        memcpy(ema->avg[i], ps->entries[i].tensor->data, ps->entries[i].tensor->size * sizeof(float));
    }
    return 0;
}
AGDEF void ag_ema_update(ag_ema *ema) {
    int i; size_t j; float d = ema->decay, e = 1.0f - ema->decay;
    for (i = 0; i < ema->params->count; i++) if (ema->avg[i]) {
        const float *p = ema->params->entries[i].tensor->data; float *a = ema->avg[i];
        for (j = 0; j < ema->params->entries[i].tensor->size; j++) a[j] = d * a[j] + e * p[j];
    }
}
AGDEF void ag_ema_swap(ag_ema *ema) {
    int i; size_t j;
    for (i = 0; i < ema->params->count; i++) if (ema->avg[i]) {
        float *p = ema->params->entries[i].tensor->data, *a = ema->avg[i];
        for (j = 0; j < ema->params->entries[i].tensor->size; j++) { float t = p[j]; p[j] = a[j]; a[j] = t; }
    }
}
AGDEF void ag_ema_free(ag_ema *ema) {
    int i;
    if (!ema->params) return;
    for (i = 0; i < ema->params->count; i++) AG_FREE(ema->avg[i]);
    AG_FREE(ema->avg);
    memset(ema, 0, sizeof *ema);
}

/* ---- learning-rate schedule ---- */
/* the reference's LinearLrDecay.step(current_step): the rate it returns, and whether it sets
   the optimiser's rate (only strictly inside (decay_start, decay_end): at and past the end the
   optimiser keeps the last rate it was given, as the reference does) */
AGDEF double ag_linear_lr_decay(double start_lr, double end_lr, int64_t decay_start, int64_t decay_end, int64_t step, int *sets) {
    double delta = (start_lr - end_lr) / (double)(decay_end - decay_start);
    if (sets) *sets = 0;
    if (step <= decay_start) return start_lr;
    if (step >= decay_end) return end_lr;
    if (sets) *sets = 1;
    return start_lr - delta * (double)(step - decay_start);
}


/* ===================================================================================
   8. Data sets: (Fashion-)MNIST, CIFAR-10, STL-10, image folders; PIL-exact resizing;
       the shuffling loader
   =================================================================================== */

AGDEF void ag_dataset_free(ag_dataset *ds) {
    if (!ds) return;
    AG_FREE(ds->pixels);
    AG_FREE(ds->labels);
    memset(ds, 0, sizeof *ds);
}

static int ag__ds_alloc(ag_dataset *ds, const char *name, int count, int h, int w, int c, ag_error *err) {
    size_t n = (size_t)count * (size_t)h * (size_t)w * (size_t)c;
    memset(ds, 0, sizeof *ds);
    snprintf(ds->name, sizeof ds->name, "%s", name);
    if (count < 0 || h <= 0 || w <= 0 || c <= 0) return ag__fail(err, "%s: bad image geometry %d x %d x %d x %d", name, count, h, w, c);
    ds->pixels = (unsigned char *)AG_MALLOC(n ? n : 1);
    ds->labels = (int *)AG_MALLOC(count ? (size_t)count * sizeof(int) : 1);
    if (!ds->pixels || !ds->labels) {
        ag_dataset_free(ds);
        return ag__fail(err, "%s: out of memory for %d images of %d x %d x %d", name, count, h, w, c);
    }
    ds->count = count; ds->height = h; ds->width = w; ds->channels = c;
    return 0;
}

static int ag__ds_threads(void) { return ag__threads(0, 1, 0); }   /* OMP_NUM_THREADS decides (no context here) */
static int ag__ds_thread_id(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* ---- PIL's BILINEAR resample (Pillow src/libImaging/Resample.c, 8 bits per channel) ----
   For each output pixel xx: center = (xx + 0.5) * scale, scale = in/out; the filter
   (triangle, support 1) is stretched by max(scale, 1); taps x in [xmin, xmax) with
   xmin = (int)(center - support + 0.5), xmax = (int)(center + support + 0.5) clamped, weights
   tri((x - center + 0.5) / filterscale) normalised to sum 1, then scaled by 2^22 and rounded
   half away from zero. Sums start at 2^21 and are clamped to 0..255 after >> 22. */
#define AG__PIL_PRECISION_BITS 22
typedef struct ag__pil_axis { int ksize, *bounds; int32_t *kk; } ag__pil_axis;

static void ag__pil_axis_free(ag__pil_axis *a) { AG_FREE(a->bounds); AG_FREE(a->kk); a->bounds = NULL; a->kk = NULL; }

static int ag__pil_axis_init(ag__pil_axis *a, int in_size, int out_size) {
    double scale = (double)in_size / out_size, filterscale = scale < 1.0 ? 1.0 : scale;
    double support = 1.0 * filterscale, *k;
    int xx, x;
    a->ksize = (int)ceil(support) * 2 + 1;
    a->bounds = (int *)AG_MALLOC((size_t)out_size * 2 * sizeof(int));
    a->kk = (int32_t *)AG_MALLOC((size_t)out_size * (size_t)a->ksize * sizeof(int32_t));
    k = (double *)AG_MALLOC((size_t)a->ksize * sizeof(double));
    if (!a->bounds || !a->kk || !k) { AG_FREE(k); ag__pil_axis_free(a); return -1; }
    for (xx = 0; xx < out_size; xx++) {
        double center = (xx + 0.5) * scale, ww = 0.0, ss = 1.0 / filterscale;
        int xmin = (int)(center - support + 0.5), xmax = (int)(center + support + 0.5);
        if (xmin < 0) xmin = 0;
        if (xmax > in_size) xmax = in_size;
        xmax -= xmin;
        for (x = 0; x < xmax; x++) {
            double t = (x + xmin - center + 0.5) * ss, w;
            if (t < 0.0) t = -t;
            w = t < 1.0 ? 1.0 - t : 0.0;
            k[x] = w;
            ww += w;
        }
        for (x = 0; x < xmax; x++) if (ww != 0.0) k[x] /= ww;
        for (x = 0; x < a->ksize; x++) {
            double v = x < xmax ? k[x] : 0.0;
            a->kk[(size_t)xx * a->ksize + x] = v < 0 ? (int32_t)(-0.5 + v * (1 << AG__PIL_PRECISION_BITS))
                                                     : (int32_t)(0.5 + v * (1 << AG__PIL_PRECISION_BITS));
        }
        a->bounds[xx * 2] = xmin;
        a->bounds[xx * 2 + 1] = xmax;
    }
    AG_FREE(k);
    return 0;
}

static unsigned char ag__pil_clip8(int32_t v) {
    if (v >= (1 << AG__PIL_PRECISION_BITS << 8)) return 255;
    if (v <= 0) return 0;
    return (unsigned char)(v >> AG__PIL_PRECISION_BITS);
}

typedef struct ag__pil_plan { int h, w, c, out_h, out_w, need_h, need_v, y_first, y_last; ag__pil_axis hor, ver; } ag__pil_plan;

static void ag__pil_plan_free(ag__pil_plan *p) { ag__pil_axis_free(&p->hor); ag__pil_axis_free(&p->ver); }

static int ag__pil_plan_init(ag__pil_plan *p, int h, int w, int c, int out_h, int out_w) {
    int i;
    memset(p, 0, sizeof *p);
    p->h = h; p->w = w; p->c = c; p->out_h = out_h; p->out_w = out_w;
    p->need_h = out_w != w; p->need_v = out_h != h;
    if (ag__pil_axis_init(&p->hor, w, out_w) || ag__pil_axis_init(&p->ver, h, out_h)) { ag__pil_plan_free(p); return -1; }
    p->y_first = 0; p->y_last = h;
    if (p->need_h) {   /* the horizontal pass covers only the rows the vertical pass reads */
        p->y_first = p->ver.bounds[0];
        p->y_last = p->ver.bounds[out_h * 2 - 2] + p->ver.bounds[out_h * 2 - 1];
        for (i = 0; i < out_h; i++) p->ver.bounds[i * 2] -= p->y_first;
    }
    return 0;
}

/* tmp: (y_last - y_first) x out_w x c bytes */
static void ag__pil_apply(const ag__pil_plan *p, const unsigned char *src, unsigned char *dst, unsigned char *tmp) {
    const unsigned char *vin = src;
    int c = p->c, x, y, ch, k;
    if (!p->need_h && !p->need_v) { memcpy(dst, src, (size_t)p->h * p->w * c); return; }
    if (p->need_h) {
        unsigned char *hout = p->need_v ? tmp : dst;
        for (y = p->y_first; y < p->y_last; y++) {
            const unsigned char *row = src + (size_t)y * p->w * c;
            unsigned char *orow = hout + (size_t)(y - p->y_first) * p->out_w * c;
            for (x = 0; x < p->out_w; x++) {
                int xmin = p->hor.bounds[x * 2], xmax = p->hor.bounds[x * 2 + 1];
                const int32_t *kk = p->hor.kk + (size_t)x * p->hor.ksize;
                for (ch = 0; ch < c; ch++) {
                    int32_t ss = 1 << (AG__PIL_PRECISION_BITS - 1);
                    for (k = 0; k < xmax; k++) ss += (int32_t)row[(size_t)(xmin + k) * c + ch] * kk[k];
                    orow[(size_t)x * c + ch] = ag__pil_clip8(ss);
                }
            }
        }
        if (!p->need_v) return;
        vin = tmp;
    }
    {
        int in_w = p->out_w;   /* the vertical pass runs on the horizontally resized rows */
        for (y = 0; y < p->out_h; y++) {
            int ymin = p->ver.bounds[y * 2], ymax = p->ver.bounds[y * 2 + 1];
            const int32_t *kk = p->ver.kk + (size_t)y * p->ver.ksize;
            unsigned char *orow = dst + (size_t)y * p->out_w * c;
            for (x = 0; x < in_w * c; x++) {
                int32_t ss = 1 << (AG__PIL_PRECISION_BITS - 1);
                for (k = 0; k < ymax; k++) ss += (int32_t)vin[(size_t)(ymin + k) * in_w * c + x] * kk[k];
                orow[x] = ag__pil_clip8(ss);
            }
        }
    }
}

static size_t ag__pil_tmp_bytes(const ag__pil_plan *p) { return (size_t)(p->y_last - p->y_first) * p->out_w * p->c + 1; }

AGDEF int ag_image_resize_bilinear_pil(const unsigned char *src, int h, int w, int c, unsigned char *dst, int out_h, int out_w) {
    ag__pil_plan p;
    unsigned char *tmp;
    if (h <= 0 || w <= 0 || c <= 0 || out_h <= 0 || out_w <= 0) return -1;
    if (ag__pil_plan_init(&p, h, w, c, out_h, out_w)) return -1;
    tmp = (unsigned char *)AG_MALLOC(ag__pil_tmp_bytes(&p));
    if (!tmp) { ag__pil_plan_free(&p); return -1; }
    ag__pil_apply(&p, src, dst, tmp);
    AG_FREE(tmp);
    ag__pil_plan_free(&p);
    return 0;
}

/* resize images [0, n) of src (h x w x c each) into dst (size x size x c each), threaded */
static int ag__resize_images(const unsigned char *src, int n, int h, int w, int c, unsigned char *dst, int size, ag_error *err) {
    ag__pil_plan p;
    unsigned char *tmp;
    size_t tb, in_sz = (size_t)h * w * c, out_sz = (size_t)size * size * c;
    int ag__nt = n < 16 ? 1 : ag__ds_threads();
    long i;
    (void)ag__nt;
    if (ag__pil_plan_init(&p, h, w, c, size, size)) return ag__fail(err, "resize: out of memory");
    tb = ag__pil_tmp_bytes(&p);
    tmp = (unsigned char *)AG_MALLOC(tb * (size_t)ag__nt);
    if (!tmp) { ag__pil_plan_free(&p); return ag__fail(err, "resize: out of memory"); }
    AG__PARALLEL_FOR(ag__nt)
    for (i = 0; i < n; i++)
        ag__pil_apply(&p, src + (size_t)i * in_sz, dst + (size_t)i * out_sz, tmp + tb * (size_t)ag__ds_thread_id());
    AG_FREE(tmp);
    ag__pil_plan_free(&p);
    return 0;
}

AGDEF int ag_dataset_resized(const ag_dataset *src, int size, ag_dataset *dst, ag_error *err) {
    ag_dataset t;
    if (size <= 0 || size > 4096) return ag__fail(err, "%s: resize to %d (1 to 4096)", src->name, size);
    if (ag__ds_alloc(&t, src->name, src->count, size, size, src->channels, err)) return -1;
    if (ag__resize_images(src->pixels, src->count, src->height, src->width, src->channels, t.pixels, size, err)) {
        ag_dataset_free(&t);
        return -1;
    }
    if (src->count) memcpy(t.labels, src->labels, (size_t)src->count * sizeof(int));
    t.num_classes = src->num_classes;
    *dst = t;
    return 0;
}

/* ---- files and folders ---- */
/* something is there (stat, not open: opening a FIFO would wait for a writer) */
static int ag__file_exists(const char *path) {
#if !defined(_WIN32)
    struct stat st;
    return stat(path, &st) == 0;
#else
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    fclose(f);
    return 1;
#endif
}

static int ag__is_dir(const char *path);

/* first of dir/{"", raw/, sub/raw/}base{"", .gz} that exists, into out */
static int ag__find_data_file(char *out, size_t cap, const char *dir, const char *sub, const char *base) {
    static const char *const mids[3] = { "", "raw/", NULL };
    char mid[128];
    int m, g;
    for (m = 0; m < 3; m++) {
        if (m == 2) snprintf(mid, sizeof mid, "%s/raw/", sub);
        else snprintf(mid, sizeof mid, "%s", mids[m]);
        for (g = 0; g < 2; g++) {
            snprintf(out, cap, "%s/%s%s%s", dir, mid, base, g ? ".gz" : "");
            if (ag__file_exists(out) && !ag__is_dir(out)) return 0;
        }
    }
    return -1;
}

/* ---- MNIST / Fashion-MNIST (idx) ---- */
static int ag__load_mnist(ag_dataset *ds, const char *name, const char *dir, const char *split, ag_error *err) {
    char ipath[4096], lpath[4096], ibase[64], lbase[64];
    const char *pre = strcmp(split, "train") == 0 ? "train" : "t10k";
    const char *sub = strcmp(name, "mnist") == 0 ? "MNIST" : "FashionMNIST";
    ag_array im, lb;
    ag_dataset t;
    int64_t i, n;
    snprintf(ibase, sizeof ibase, "%s-images-idx3-ubyte", pre);
    snprintf(lbase, sizeof lbase, "%s-labels-idx1-ubyte", pre);
    if (ag__find_data_file(ipath, sizeof ipath, dir, sub, ibase))
        return ag__fail(err, "%s: no %s[.gz] in %s (nor in its raw/ or %s/raw/)", name, ibase, dir, sub);
    if (ag__find_data_file(lpath, sizeof lpath, dir, sub, lbase))
        return ag__fail(err, "%s: no %s[.gz] in %s (nor in its raw/ or %s/raw/)", name, lbase, dir, sub);
    if (ag_idx_read(ipath, &im, err)) return -1;
    if (ag_idx_read(lpath, &lb, err)) { ag_array_free(&im); return -1; }
    if (im.dtype != AG_DTYPE_U8 || im.ndim != 3 || im.shape[1] <= 0 || im.shape[2] <= 0 || im.shape[1] > 4096 || im.shape[2] > 4096) {
        ag__fail(err, "%s: expected uint8 images [N][H][W], found %s with %d dimensions", ipath, ag_dtype_name(im.dtype), im.ndim);
        goto fail;
    }
    if (lb.dtype != AG_DTYPE_U8 || lb.ndim != 1) {
        ag__fail(err, "%s: expected uint8 labels [N], found %s with %d dimensions", lpath, ag_dtype_name(lb.dtype), lb.ndim);
        goto fail;
    }
    if (lb.shape[0] != im.shape[0]) {
        ag__fail(err, "%s holds %lld images but %s holds %lld labels", ipath, (long long)im.shape[0], lpath, (long long)lb.shape[0]);
        goto fail;
    }
    n = im.shape[0];
    if (n > (1 << 28)) { ag__fail(err, "%s: %lld images (too many)", ipath, (long long)n); goto fail; }
    for (i = 0; i < n; i++) if (((unsigned char *)lb.data)[i] > 9) {
        ag__fail(err, "%s: label %d at index %lld (0..9 expected)", lpath, ((unsigned char *)lb.data)[i], (long long)i);
        goto fail;
    }
    memset(&t, 0, sizeof t);
    snprintf(t.name, sizeof t.name, "%s", name);
    t.labels = (int *)AG_MALLOC(n ? (size_t)n * sizeof(int) : 1);
    if (!t.labels) { ag__fail(err, "%s: out of memory", name); goto fail; }
    for (i = 0; i < n; i++) t.labels[i] = ((unsigned char *)lb.data)[i];
    t.pixels = (unsigned char *)im.data;   /* [N][H][W] is already [N][H][W][1] */
    im.data = NULL;
    t.count = (int)n; t.height = (int)im.shape[1]; t.width = (int)im.shape[2]; t.channels = 1;
    t.num_classes = 10;
    ag_array_free(&im); ag_array_free(&lb);
    *ds = t;
    return 0;
fail:
    ag_array_free(&im); ag_array_free(&lb);
    return -1;
}

/* ---- the loader ---- */
AGDEF void ag_shuffle_indices(ag_rng *rng, int *idx, int n) {
    int i;
    for (i = n - 1; i > 0; i--) {
        uint32_t bound = (uint32_t)i + 1u, threshold = (uint32_t)(0u - bound) % bound, r, j;
        do r = ag_rng_u32(rng); while (r < threshold);
        j = r % bound;
        { int t = idx[i]; idx[i] = idx[j]; idx[j] = t; }
    }
}

static void ag__loader_order(ag_data_loader *l) {
    int i, n = l->ds->count;
    for (i = 0; i < n; i++) l->order[i] = i;
    if (l->shuffle) { ag_rng r = l->epoch_rng; ag_shuffle_indices(&r, l->order, n); }
}

AGDEF int ag_data_loader_init(ag_data_loader *l, const ag_dataset *ds, int batch_size, int channels, ag_error *err) {
    ag_data_loader t;
    memset(&t, 0, sizeof t);
    if (!ds || ds->count <= 0) return ag__fail(err, "data loader: the data set is empty");
    if (batch_size <= 0) return ag__fail(err, "data loader: batch size %d (must be > 0)", batch_size);
    if (channels <= 0) channels = ds->channels;
    if (channels != ds->channels && !((channels == 3 && ds->channels == 1) || (channels == 1 && ds->channels == 3)))
        return ag__fail(err, "data loader: %s has %d channels; %d asked (only 1 <-> 3 converts)", ds->name, ds->channels, channels);
    t.ds = ds; t.batch_size = batch_size; t.channels = channels; t.shuffle = 1;
    t.order = (int *)AG_MALLOC((size_t)ds->count * sizeof(int));
    if (!t.order) return ag__fail(err, "data loader: out of memory");
    t.position = ds->count;   /* the first call starts epoch 1 */
    *l = t;
    return 0;
}

AGDEF void ag_data_loader_free(ag_data_loader *l) {
    if (!l) return;
    AG_FREE(l->order);
    memset(l, 0, sizeof *l);
}

AGDEF int ag_data_loader_next(ag_data_loader *l, ag_rng *rng, float *images, int *labels) {
    const ag_dataset *ds = l->ds;
    float lut[256];
    int i, n, C = l->channels, H = ds->height, W = ds->width, cin = ds->channels;
    size_t plane = (size_t)H * W;
    if (l->position >= ds->count) {
        int k;
        l->epoch_rng = *rng;   /* ag__loader_order replays the shuffle from this copy on restore */
        for (k = 0; k < ds->count; k++) l->order[k] = k;
        if (l->shuffle) ag_shuffle_indices(rng, l->order, ds->count);
        l->position = 0;
        l->epoch++;
    }
    for (i = 0; i < 256; i++) lut[i] = ((float)i / 255.0f - 0.5f) / 0.5f;
    n = ds->count - l->position < l->batch_size ? ds->count - l->position : l->batch_size;
    for (i = 0; i < n; i++) {
        int idx = l->order[l->position + i], c;
        const unsigned char *px = ds->pixels + (size_t)idx * plane * cin;
        float *out = images + (size_t)i * C * plane;
        size_t p;
        if (labels) labels[i] = ds->labels ? ds->labels[idx] : -1;
        if (C == cin) {
            for (c = 0; c < C; c++) for (p = 0; p < plane; p++) out[c * plane + p] = lut[px[p * cin + c]];
        } else if (C == 3) {
            for (p = 0; p < plane; p++) out[p] = out[plane + p] = out[2 * plane + p] = lut[px[p]];
        } else {
            for (p = 0; p < plane; p++) {
                const unsigned char *q = px + p * 3;
                out[p] = lut[(q[0] * 19595u + q[1] * 38470u + q[2] * 7471u + 0x8000u) >> 16];
            }
        }
    }
    l->position += n;
    return n;
}

AGDEF void ag_data_loader_state_string(const ag_data_loader *l, char *buf, size_t len) {
    snprintf(buf, len, "%lld %d %llu %llu", (long long)l->epoch, l->position,
             (unsigned long long)l->epoch_rng.state, (unsigned long long)l->epoch_rng.inc);
}

AGDEF int ag_data_loader_restore(ag_data_loader *l, const char *state, ag_error *err) {
    long long epoch; int position; unsigned long long st, inc; char extra;
    if (!state || sscanf(state, "%lld %d %llu %llu %c", &epoch, &position, &st, &inc, &extra) != 4)
        return ag__fail(err, "data loader: state '%s' is not \"epoch position state inc\"", state ? state : "(null)");
    if (epoch < 0 || position < 0 || position > l->ds->count || (epoch == 0 && position != l->ds->count && position != 0))
        return ag__fail(err, "data loader: state '%s' does not fit a data set of %d images", state, l->ds->count);
    l->epoch = epoch;
    l->epoch_rng.state = st; l->epoch_rng.inc = inc;
    if (epoch == 0) { l->position = l->ds->count; return 0; }
    ag__loader_order(l);
    l->position = position;
    return 0;
}

/* ---- CIFAR-10 and STL-10: members of a tar (gzipped or not) or files of a folder ----
   Both sets are read by member base name, wherever the member sits in the archive (the
   official archives put them under cifar-10-batches-bin/, cifar-10-batches-py/,
   stl10_binary/), in the reference's order (data_batch_1..5; train then unlabeled) whatever
   the order in the archive. Only the split's members are read (the others stream past);
   small members are collected whole (at most their declared size, itself bounded: 64 MB
   for a CIFAR-10 batch); STL-10's image files are decoded (and resized) in batches of 256
   images while they stream. */
static int ag__cifar_pickle(const unsigned char *buf, size_t len, unsigned char **data, int **labels, int *count, ag_error *err); /* section 14 (the pickle machine) */

#define AG__STL_SIDE 96
#define AG__STL_RECORD (3 * 96 * 96)
#define AG__STL_STAGE 256
#define AG__MEMBERS_MAX 12

typedef struct ag__stream_part {   /* one STL-10 image file, decoded as it streams */
    unsigned char *out;            /* [count][size][size][3] */
    int count, done;               /* images in the member, images decoded */
    unsigned char *stage;          /* [AG__STL_STAGE][AG__STL_RECORD] raw records not yet decoded */
    size_t staged;                 /* bytes in stage */
} ag__stream_part;

typedef struct ag__members {
    const char *label;                         /* archive or folder, for messages */
    const char *const *names; int n;           /* known members, by base name */
    unsigned want;                             /* bit i: names[i] is read (the split's); others are skipped */
    uint64_t max_size;                         /* largest member collected whole (0: 256 MB) */
    const int *stream;                         /* stream[i]: names[i] holds STL-10 images */
    unsigned char *data[AG__MEMBERS_MAX];      /* collected members */
    size_t len[AG__MEMBERS_MAX];
    uint64_t size[AG__MEMBERS_MAX];
    int seen[AG__MEMBERS_MAX];
    ag__stream_part part[AG__MEMBERS_MAX];
    int current;                               /* index of the member being read, or -1 */
    int out_size;                              /* STL-10 output side (96: no resizing) */
    ag__pil_plan plan;
    unsigned char *work; size_t work_per_thread;
} ag__members;

static void ag__members_free(ag__members *m) {
    int i;
    for (i = 0; i < AG__MEMBERS_MAX; i++) { AG_FREE(m->data[i]); AG_FREE(m->part[i].out); AG_FREE(m->part[i].stage); }
    ag__pil_plan_free(&m->plan);
    AG_FREE(m->work);
    memset(m, 0, sizeof *m);
}

/* STL-10 stores each image column-major per channel: byte c*9216 + x*96 + y is row y,
   column x (torchvision transposes the last two axes); out: HWC, resized when asked */
static void ag__stl_decode(ag__members *m, ag__stream_part *pt) {
    int k = (int)(pt->staged / AG__STL_RECORD), S = m->out_size;
    int ag__nt = k < 8 ? 1 : ag__ds_threads();
    long j;
    (void)ag__nt;
    AG__PARALLEL_FOR(ag__nt)
    for (j = 0; j < k; j++) {
        unsigned char *hwc = m->work + m->work_per_thread * (size_t)ag__ds_thread_id(), *tmp = hwc + AG__STL_RECORD;
        const unsigned char *rec = pt->stage + (size_t)j * AG__STL_RECORD;
        unsigned char *dst = pt->out + (size_t)(pt->done + j) * S * S * 3;
        int c, x, y;
        for (c = 0; c < 3; c++) for (x = 0; x < AG__STL_SIDE; x++) for (y = 0; y < AG__STL_SIDE; y++)
            hwc[(y * AG__STL_SIDE + x) * 3 + c] = rec[c * 9216 + x * AG__STL_SIDE + y];
        if (S == AG__STL_SIDE) memcpy(dst, hwc, AG__STL_RECORD);
        else ag__pil_apply(&m->plan, hwc, dst, tmp);
    }
    pt->done += k;
    pt->staged = 0;
}

static int ag__members_cb(void *user, const char *name, uint64_t size, const unsigned char *p, size_t n, uint64_t off, ag_error *err) {
    ag__members *m = (ag__members *)user;
    int i;
    if (!p) {                                  /* a member starts */
        const char *base = strrchr(name, '/');
        base = base ? base + 1 : name;
        m->current = -1;
        for (i = 0; i < m->n; i++) if (!strcmp(base, m->names[i])) break;
        if (i == m->n || !(m->want >> i & 1u)) return 0;
        if (m->seen[i]) return ag__fail(err, "%s: %s appears twice", m->label, name);
        m->seen[i] = 1;
        m->size[i] = size;
        m->current = i;
        if (m->stream && m->stream[i]) {
            ag__stream_part *pt = &m->part[i];
            size_t S = (size_t)m->out_size;
            if (size % AG__STL_RECORD)
                return ag__fail(err, "%s: %s has %llu bytes, not a whole number of 96x96x3 images (%d bytes each)",
                                m->label, name, (unsigned long long)size, AG__STL_RECORD);
            if (size / AG__STL_RECORD > (1u << 24)) return ag__fail(err, "%s: %s holds too many images", m->label, name);
            pt->count = (int)(size / AG__STL_RECORD);
            pt->out = (unsigned char *)AG_MALLOC((size_t)pt->count * S * S * 3 + 1);
            pt->stage = (unsigned char *)AG_MALLOC((size_t)AG__STL_STAGE * AG__STL_RECORD);
            if (!pt->out || !pt->stage) return ag__fail(err, "%s: out of memory for %d images of %d x %d", m->label, pt->count, m->out_size, m->out_size);
        } else {
            if (size > (m->max_size ? m->max_size : ((uint64_t)1 << 28)))
                return ag__fail(err, "%s: %s has %llu bytes (too large)", m->label, name, (unsigned long long)size);
            m->data[i] = (unsigned char *)AG_MALLOC((size_t)size + 1);
            if (!m->data[i]) return ag__fail(err, "%s: out of memory", m->label);
        }
        return 0;
    }
    if (m->current < 0) return 0;
    i = m->current;
    if (off + n > m->size[i]) return ag__fail(err, "%s: %s is longer than its header says", m->label, name);
    if (m->stream && m->stream[i]) {
        ag__stream_part *pt = &m->part[i];
        while (n) {
            size_t room = (size_t)AG__STL_STAGE * AG__STL_RECORD - pt->staged, k = n < room ? n : room;
            memcpy(pt->stage + pt->staged, p, k);
            pt->staged += k; p += k; n -= k; off += k;
            if (pt->staged == (size_t)AG__STL_STAGE * AG__STL_RECORD || off == m->size[i]) ag__stl_decode(m, pt);
        }
    } else {
        memcpy(m->data[i] + m->len[i], p, n);
        m->len[i] += n;
    }
    return 0;
}

/* a file of a folder, fed to cb as a tar member would be */
static int ag__feed_file(const char *path, ag_tar_callback cb, void *user, ag_error *err) {
    ag__in in;
    unsigned char *buf;
    uint64_t off = 0, size;
    int r = 0, ioerr = 0;
    if (ag__in_open(&in, path, err)) return -1;
    size = in.size;
    buf = (unsigned char *)AG_MALLOC((size_t)1 << 22);
    if (!buf) { ag__in_close(&in); return ag__fail(err, "%s: out of memory", path); }
    r = cb(user, path, size, NULL, 0, 0, err);
    while (!r && off < size) {
        size_t want = size - off < ((uint64_t)1 << 22) ? (size_t)(size - off) : (size_t)1 << 22;
        size_t got = ag__in_read(&in, buf, want, &ioerr);
        if (got == 0) { r = ag__fail(err, "%s: read %llu of %llu bytes", path, (unsigned long long)off, (unsigned long long)size); break; }
        r = cb(user, path, size, buf, got, off, err);
        off += got;
    }
    AG_FREE(buf);
    ag__in_close(&in);
    return r;
}

/* read the wanted members from an archive, or from a folder (or its official sub-folder) */
static int ag__members_read(ag__members *m, const char *path, ag_error *err) {
    static const char *const subs[] = { "", "cifar-10-batches-bin/", "cifar-10-batches-py/", "stl10_binary/" };
    m->current = -1;
    m->label = path;
    if (ag__is_dir(path)) {
        char fp[4096];
        int i, s;
        for (i = 0; i < m->n; i++)
            for (s = 0; s < 4 && (m->want >> i & 1u); s++) {
                snprintf(fp, sizeof fp, "%s/%s%s", path, subs[s], m->names[i]);
                if (ag__file_exists(fp) && !ag__is_dir(fp)) {
                    if (ag__feed_file(fp, ag__members_cb, m, err)) return -1;
                    break;
                }
            }
        return 0;
    }
    if (!ag__file_exists(path)) return ag__fail(err, "%s: no such file or folder", path);
    return ag_tar_read(path, ag__members_cb, m, err);
}

static int ag__load_cifar10(ag_dataset *ds, const char *path, const char *split, ag_error *err) {
    static const char *const names[12] = { "data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin",
        "data_batch_5.bin", "test_batch.bin", "data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch" };
    int train = strcmp(split, "train") == 0, first = train ? 0 : 5, nb = train ? 5 : 1;
    int bin = 1, py = 1, b, total = 0, at = 0, r = -1;
    ag__members m;
    ag_dataset t;
    unsigned char *pdata[5] = { 0 };
    int *plabels[5] = { 0 }, pcount[5] = { 0 };
    memset(&m, 0, sizeof m);
    memset(&t, 0, sizeof t);
    m.names = names; m.n = 12;
    for (b = 0; b < nb; b++) m.want |= 1u << (first + b) | 1u << (6 + first + b);   /* the split's batches only */
    m.max_size = (uint64_t)1 << 26;   /* a batch of CIFAR-10 has 30.7 MB (10,000 records) */
    if (ag__members_read(&m, path, err)) goto done;
    for (b = 0; b < nb; b++) { bin &= m.seen[first + b]; py &= m.seen[6 + first + b]; }
    if (!bin && !py) {
        for (b = 0; b < nb && m.seen[first + b]; b++) {}
        if (b == nb) for (b = 0; b < nb && m.seen[6 + first + b]; b++) {}
        ag__fail(err, "%s: no %s (nor %s): not CIFAR-10 (cifar-10-binary.tar.gz, cifar-10-python.tar.gz or their folders)",
                 path, names[first + b], names[6 + first + b]);
        goto done;
    }
    for (b = 0; b < nb; b++) {
        int i = first + b;
        if (bin) {
            if (m.len[i] % 3073 || m.len[i] == 0) {
                ag__fail(err, "%s: %s has %lu bytes, not a whole number of 3073-byte records", path, names[i], (unsigned long)m.len[i]);
                goto done;
            }
            pcount[b] = (int)(m.len[i] / 3073);
        } else {
            if (ag__cifar_pickle(m.data[6 + i], m.len[6 + i], &pdata[b], &plabels[b], &pcount[b], err)) {
                ag__fail_prefix(err, "%s: %s", path, names[6 + i]);
                goto done;
            }
        }
        total += pcount[b];
    }
    if (ag__ds_alloc(&t, "cifar10", total, 32, 32, 3, err)) goto done;
    t.num_classes = 10;
    for (b = 0; b < nb; b++) {
        int i = first + b, k;
        for (k = 0; k < pcount[b]; k++) {
            const unsigned char *chw = bin ? m.data[i] + (size_t)k * 3073 + 1 : pdata[b] + (size_t)k * 3072;
            unsigned char *hwc = t.pixels + (size_t)(at + k) * 3072;
            int lab = bin ? m.data[i][(size_t)k * 3073] : plabels[b][k], c, q;
            if (lab > 9) { ag__fail(err, "%s: %s record %d has label %d (0..9 expected)", path, names[i], k, lab); goto done; }
            t.labels[at + k] = lab;
            for (c = 0; c < 3; c++) for (q = 0; q < 1024; q++) hwc[q * 3 + c] = chw[c * 1024 + q];
        }
        at += pcount[b];
    }
    *ds = t;
    memset(&t, 0, sizeof t);
    r = 0;
done:
    for (b = 0; b < 5; b++) { AG_FREE(pdata[b]); AG_FREE(plabels[b]); }
    ag_dataset_free(&t);
    ag__members_free(&m);
    return r;
}

static int ag__load_stl10(ag_dataset *ds, const char *path, const char *split, int resize_to, ag_error *err) {
    static const char *const names[5] = { "train_X.bin", "train_y.bin", "unlabeled_X.bin", "test_X.bin", "test_y.bin" };
    static const int stream[5] = { 1, 0, 1, 1, 0 };
    int train = strcmp(split, "train") == 0, xi = train ? 0 : 3, yi = xi + 1, S = resize_to > 0 ? resize_to : AG__STL_SIDE;
    int i, k, total, r = -1;
    size_t img;
    ag__members m;
    ag_dataset t;
    memset(&m, 0, sizeof m);
    memset(&t, 0, sizeof t);
    m.names = names; m.n = 5; m.stream = stream; m.out_size = S;
    m.want = train ? 7u : 24u;   /* train_X, train_y, unlabeled_X; or test_X, test_y */
    if (S != AG__STL_SIDE && ag__pil_plan_init(&m.plan, AG__STL_SIDE, AG__STL_SIDE, 3, S, S)) { ag__fail(err, "stl10: out of memory"); goto done; }
    m.work_per_thread = AG__STL_RECORD + (S != AG__STL_SIDE ? ag__pil_tmp_bytes(&m.plan) : 1);
    m.work = (unsigned char *)AG_MALLOC(m.work_per_thread * (size_t)ag__ds_threads());
    if (!m.work) { ag__fail(err, "stl10: out of memory"); goto done; }
    if (ag__members_read(&m, path, err)) goto done;
    for (i = xi; i <= (train ? 2 : 4); i++)
        if (!m.seen[i]) {
            ag__fail(err, "%s: no %s: not STL-10 (stl10_binary.tar.gz or its folder)", path, names[i]);
            goto done;
        }
    if (m.len[yi] != (size_t)m.part[xi].count) {
        ag__fail(err, "%s: %s holds %d images but %s %lu labels", path, names[xi], m.part[xi].count, names[yi], (unsigned long)m.len[yi]);
        goto done;
    }
    total = m.part[xi].count + (train ? m.part[2].count : 0);
    img = (size_t)S * S * 3;
    if (!train || m.part[2].count == 0) {   /* nothing to concatenate: keep the buffer */
        snprintf(t.name, sizeof t.name, "stl10");
        t.pixels = m.part[xi].out; m.part[xi].out = NULL;
        t.labels = (int *)AG_MALLOC((size_t)total * sizeof(int) + 1);
        t.count = total; t.height = t.width = S; t.channels = 3;
        if (!t.labels) { ag__fail(err, "stl10: out of memory"); goto done; }
    } else {   /* grow the (large) unlabeled buffer and slide it up behind the train images */
        unsigned char *grown = (unsigned char *)AG_REALLOC(m.part[2].out, (size_t)total * img);
        if (!grown) { ag__fail(err, "stl10: out of memory for %d images of %d x %d", total, S, S); goto done; }
        m.part[2].out = NULL;
        memmove(grown + (size_t)m.part[xi].count * img, grown, (size_t)m.part[2].count * img);
        memcpy(grown, m.part[xi].out, (size_t)m.part[xi].count * img);
        snprintf(t.name, sizeof t.name, "stl10");
        t.pixels = grown;
        t.labels = (int *)AG_MALLOC((size_t)total * sizeof(int) + 1);
        t.count = total; t.height = t.width = S; t.channels = 3;
        if (!t.labels) { ag__fail(err, "stl10: out of memory"); goto done; }
    }
    for (k = 0; k < m.part[xi].count; k++) {
        int lab = m.data[yi][k];
        if (lab < 1 || lab > 10) { ag__fail(err, "%s: %s label %d at index %d (1..10 expected)", path, names[yi], lab, k); goto done; }
        t.labels[k] = lab - 1;
    }
    for (; k < total; k++) t.labels[k] = -1;
    t.num_classes = 10;
    *ds = t;
    memset(&t, 0, sizeof t);
    r = 0;
done:
    ag_dataset_free(&t);
    ag__members_free(&m);
    return r;
}

/* ---- a folder of PNG images (recursive; sorted by path; every file must be a PNG) ---- */
typedef struct ag__paths { char **p; int n, cap; } ag__paths;

static void ag__paths_free(ag__paths *ps) {
    int i;
    for (i = 0; i < ps->n; i++) AG_FREE(ps->p[i]);
    AG_FREE(ps->p);
    memset(ps, 0, sizeof *ps);
}

static int ag__list_files(const char *dir, ag__paths *ps, int depth, ag_error *err) {
#if !defined(_WIN32)
    DIR *d;
    struct dirent *e;
    if (depth > 32) return ag__fail(err, "%s: folders nested too deeply", dir);
    d = opendir(dir);
    if (!d) return ag__fail(err, "%s: cannot open the folder", dir);
    while ((e = readdir(d)) != NULL) {
        char full[4096];
        if (e->d_name[0] == '.') continue;    /* ., .. and hidden files */
        if ((size_t)snprintf(full, sizeof full, "%s/%s", dir, e->d_name) >= sizeof full) {
            closedir(d);
            return ag__fail(err, "%s/%s: path too long", dir, e->d_name);
        }
        if (ag__is_dir(full)) {
            if (ag__list_files(full, ps, depth + 1, err)) { closedir(d); return -1; }
            continue;
        }
        if (ps->n == ps->cap) {
            int cap = ps->cap ? ps->cap * 2 : 256;
            char **np = (char **)AG_REALLOC(ps->p, (size_t)cap * sizeof *np);
            if (!np) { closedir(d); return ag__fail(err, "%s: out of memory", dir); }
            ps->p = np; ps->cap = cap;
        }
        if (!(ps->p[ps->n] = ag__strdup(full))) { closedir(d); return ag__fail(err, "%s: out of memory", dir); }
        ps->n++;
    }
    closedir(d);
    return 0;
#else
    (void)ps; (void)depth;
    return ag__fail(err, "%s: image folders are not supported on this platform", dir);
#endif
}

static int ag__cmp_cstr(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* colour type (0 gray, 2 RGB, 3 palette, 4 gray+alpha, 6 RGBA) and size of a PNG file, from
   its IHDR (the file is not decoded) */
static int ag__png_info(const char *path, int *ctype, int *w, int *h, ag_error *err) {
    unsigned char b[26];
    ag__in in;
    size_t got;
    int ioerr = 0;
    uint32_t pw, ph;
    if (ag__in_open(&in, path, err)) return -1;
    got = ag__in_read(&in, b, sizeof b, &ioerr);
    ag__in_close(&in);
    if (got != sizeof b || memcmp(b, "\x89PNG\r\n\x1a\n", 8) != 0 || memcmp(b + 12, "IHDR", 4) != 0)
        return ag__fail(err, "%s: not a PNG image (image folders hold PNG files only)", path);
    pw = ag__rd32be(b + 16); ph = ag__rd32be(b + 20);
    if (pw == 0 || ph == 0 || pw > 65535 || ph > 65535)
        return ag__fail(err, "%s: %lu x %lu pixels (1 to 65535 a side in an image folder)", path, (unsigned long)pw, (unsigned long)ph);
    *ctype = b[25]; *w = (int)pw; *h = (int)ph;
    return 0;
}

/* Every file's IHDR is read first (colour, size); then each image is decoded and resized
   into its place in turn, so memory holds the data set plus one decoded image per thread
   (decoding all first took 1 GB for 20 images of 4096 x 4096). */
static int ag__load_folder(ag_dataset *ds, const char *path, int resize_to, ag_error *err) {
    ag__paths ps;
    ag_dataset t;
    ag_error *errs = NULL;
    int *dims = NULL;
    int i, C = 1, H = 0, W = 0, r = -1, bad = -1;
    int ag__nt;
    long j;
    memset(&ps, 0, sizeof ps);
    memset(&t, 0, sizeof t);
    if (!ag__is_dir(path)) return ag__fail(err, "%s: not a folder", path);
    if (ag__list_files(path, &ps, 0, err)) goto done;
    if (ps.n == 0) { ag__fail(err, "%s: no images in the folder", path); goto done; }
    qsort(ps.p, (size_t)ps.n, sizeof *ps.p, ag__cmp_cstr);
    dims = (int *)AG_MALLOC((size_t)ps.n * 2 * sizeof *dims);
    errs = (ag_error *)AG_MALLOC((size_t)ps.n * sizeof *errs);
    if (!dims || !errs) { ag__fail(err, "%s: out of memory", path); goto done; }
    for (i = 0; i < ps.n; i++) {   /* gray data sets stay gray; any colour image makes it RGB */
        int ct = 0;
        if (ag__png_info(ps.p[i], &ct, &dims[2 * i + 1], &dims[2 * i], err)) goto done;
        if (ct != 0 && ct != 4) C = 3;
    }
    H = dims[0]; W = dims[1];
    if (resize_to <= 0)
        for (i = 1; i < ps.n; i++)
            if (dims[2 * i] != H || dims[2 * i + 1] != W) {
                ag__fail(err, "%s: %d x %d, but %s is %d x %d (give a size to resize every image to)", ps.p[i],
                         dims[2 * i + 1], dims[2 * i], ps.p[0], W, H);
                goto done;
            }
    if (resize_to > 0) H = W = resize_to;
    if ((uint64_t)ps.n * (uint64_t)H * (uint64_t)W * (uint64_t)C > ((uint64_t)1 << 40)) {
        ag__fail(err, "%s: %d images of %d x %d x %d are too many bytes (give a smaller size to resize to)", path, ps.n, W, H, C);
        goto done;
    }
    if (ag__ds_alloc(&t, "folder", ps.n, H, W, C, err)) goto done;
    {
        size_t img = (size_t)H * W * C;
        ag__nt = ps.n < 4 ? 1 : ag__ds_threads();
        (void)ag__nt;
        AG__PARALLEL_FOR(ag__nt)
        for (j = 0; j < ps.n; j++) {
            ag_array a;
            errs[j].msg[0] = 0;
            if (ag_png_read(ps.p[j], C, &a, &errs[j])) continue;
            if (a.shape[0] != dims[2 * j] || a.shape[1] != dims[2 * j + 1])   /* the file changed since its IHDR was read */
                ag__fail(&errs[j], "%s: changed while it was read", ps.p[j]);
            else if (a.shape[0] == H && a.shape[1] == W) memcpy(t.pixels + (size_t)j * img, a.data, img);
            else if (ag_image_resize_bilinear_pil((const unsigned char *)a.data, (int)a.shape[0], (int)a.shape[1], C,
                                                  t.pixels + (size_t)j * img, H, W))
                ag__fail(&errs[j], "%s: out of memory resizing", ps.p[j]);
            ag_array_free(&a);
        }
    }
    for (i = 0; i < ps.n; i++) if (errs[i].msg[0]) { if (err) *err = errs[i]; bad = i; break; }   /* the first in path order */
    if (bad >= 0) goto done;
    for (i = 0; i < ps.n; i++) t.labels[i] = -1;
    t.num_classes = 0;
    *ds = t;
    memset(&t, 0, sizeof t);
    r = 0;
done:
    AG_FREE(dims);
    AG_FREE(errs);
    ag_dataset_free(&t);
    ag__paths_free(&ps);
    return r;
}

static int ag__load_archive_set(ag_dataset *ds, const char *name, const char *path, const char *split, int resize_to, ag_error *err) {
    if (!strcmp(name, "cifar10")) return ag__load_cifar10(ds, path, split, err);
    if (!strcmp(name, "stl10")) return ag__load_stl10(ds, path, split, resize_to, err);
    return ag__load_folder(ds, path, resize_to, err);
}

/* ---- dispatch ---- */
static int ag__is_dir(const char *path) {
#if !defined(_WIN32)
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
#else
    (void)path; return 0;
#endif
}

AGDEF int ag_dataset_load(ag_dataset *ds, const char *name, const char *path, const char *split, int resize_to, ag_error *err) {
    ag_dataset t;
    char dir[4096];
    int r;
    if (!name) return ag__fail(err, "dataset: no name given (cifar10, stl10, mnist, fashion-mnist or folder)");
    if (!split) split = "train";
    if (strcmp(split, "train") != 0 && strcmp(split, "test") != 0)
        return ag__fail(err, "dataset %s: split '%s' (train or test)", name, split);
    if (resize_to < 0 || resize_to > 4096) return ag__fail(err, "dataset %s: resize to %d (0 keeps the size; at most 4096)", name, resize_to);
    memset(&t, 0, sizeof t);
    if (strcmp(name, "mnist") == 0 || strcmp(name, "fashion-mnist") == 0) {
        if (path) {
            if (!ag__path_exists(path)) return ag__fail(err, "%s: %s: no such file or directory", name, path);
            snprintf(dir, sizeof dir, "%s", path);
            if (!ag__is_dir(path)) {   /* an images file given: its folder */
                char *slash = strrchr(dir, '/');
                if (slash) *slash = 0; else snprintf(dir, sizeof dir, ".");
            }
            r = ag__load_mnist(&t, name, dir, split, err);
        } else if (strcmp(name, "fashion-mnist") == 0) {
            /* the shipped test split, else Debian's package (which has both splits) */
            ag_error e1, e2; char shipped[4096];
            r = -1;
            e1.msg[0] = e2.msg[0] = 0;
            /* from any working directory: the folder where the shipped images file is found */
            if (ag_find_resource(AG_DATA_DIR "/t10k-images-idx3-ubyte.gz", shipped, sizeof shipped) == 0) *strrchr(shipped, '/') = 0;
            else snprintf(shipped, sizeof shipped, "%s", AG_DATA_DIR);
            if (strcmp(split, "test") == 0) r = ag__load_mnist(&t, name, shipped, split, &e1);
            if (r) r = ag__load_mnist(&t, name, AG_DEBIAN_FASHION_MNIST_DIR, split, &e2);
            if (r && strcmp(split, "train") == 0)
                ag__fail(err, "fashion-mnist: the train split is not shipped; it is read from %s (apt install "
                         "dataset-fashion-mnist), or give --data_path (%s)", AG_DEBIAN_FASHION_MNIST_DIR, e2.msg);
            else if (r) ag__fail(err, "fashion-mnist: the test split was found neither in %s (%s) nor in %s (%s)",
                                 shipped, e1.msg, AG_DEBIAN_FASHION_MNIST_DIR, e2.msg);
        } else {
            return ag__fail(err, "mnist: give the folder holding train-images-idx3-ubyte.gz etc. (--data_path)");
        }
    } else if (strcmp(name, "cifar10") == 0 || strcmp(name, "stl10") == 0 || strcmp(name, "folder") == 0) {
        if (!path) return ag__fail(err, "%s: no path given (--data_path)", name);
        r = ag__load_archive_set(&t, name, path, split, resize_to, err);
    } else {
        return ag__fail(err, "dataset '%s' unknown (cifar10, stl10, mnist, fashion-mnist or folder)", name);
    }
    if (r) return -1;
    if (resize_to > 0 && (t.height != resize_to || t.width != resize_to)) {
        ag_dataset rs;
        if (ag_dataset_resized(&t, resize_to, &rs, err)) { ag_dataset_free(&t); return -1; }
        ag_dataset_free(&t);
        t = rs;
    }
    *ds = t;
    return 0;
}

/* ===================================================================================
   9. AutoGAN generator, discriminator, the GAN iteration and checkpoints
   =================================================================================== */
static const char *const ag__token_names[5] = { "conv type", "norm", "upsample", "shortcut", "skip" };
AGDEF int ag_arch_len(int stage) { return stage <= 0 ? 4 : 4 + 5 * stage; }
static int ag__arch_cell_of(int flat, int *token) {   /* cell index 0..2 and token 0..4 */
    if (flat < 4) { *token = flat; return 0; }
    *token = (flat - 4) % 5; return 1 + (flat - 4) / 5;
}
AGDEF int ag_arch_token_choices(int flat) {
    static const int base[4] = { 2, 3, 3, 2 }; int token, cell = ag__arch_cell_of(flat, &token);
    if (flat < 0 || flat >= AG_ARCH_MAX) return 0;
    return token < 4 ? base[token] : 1 << cell;
}
AGDEF int ag_arch_parse(const char *text, int *arch, int *len, ag_error *err) {
    int n = 0; const char *p = text; char *end;
    while (*p) {
        long v;
        while (*p == ' ' || *p == ',' || *p == '\t' || *p == '[' || *p == ']' || *p == '\n') p++;
        if (!*p) break;
        v = strtol(p, &end, 10);
        if (end == p) return ag__fail(err, "architecture '%s': '%c' is not a digit", text, *p);
        if (n == AG_ARCH_MAX) return ag__fail(err, "architecture '%s': more than %d tokens", text, AG_ARCH_MAX);
        arch[n++] = (int)v; p = end;
    }
    *len = n;
    return 0;
}
static int ag__arch_check(int stage, const int *arch, int len, ag_error *err) {
    int i;
    if (stage < 0 || stage > 2) return ag__fail(err, "stage %d: must be 0, 1 or 2", stage);
    if (len != ag_arch_len(stage)) return ag__fail(err, "architecture has %d tokens; stage %d needs %d", len, stage, ag_arch_len(stage));
    for (i = 0; i < len; i++) {
        int token, cell = ag__arch_cell_of(i, &token), n = ag_arch_token_choices(i);
        if (arch[i] < 0 || arch[i] >= n)
            return ag__fail(err, "architecture token %d (cell %d %s) is %d; must be in [0, %d)", i, cell + 1, ag__token_names[token], arch[i], n);
    }
    return 0;
}
AGDEF int ag_stage_resolution(int stage, int bottom_width) { return bottom_width << (stage + 1); }

AGDEF int ag_generator_init(ag_generator *g, int gf, int latent, int bw, int out_ch, ag_rng *rng, ag_error *err) {
    ag_params *ps = &g->params; char p[48], q[AG_NAME_MAX]; int k, j, l1_shape[2];
    static const char *const blocks[4] = { "post_conv1", "pre_conv1", "post_conv2", "pre_conv2" };
    memset(g, 0, sizeof *g);
    if (gf < 1 || latent < 1 || bw < 1 || out_ch < 1 || gf > 65536 || latent > 65536 || bw > 64 || out_ch > 64)
        return ag__fail(err, "generator: bad sizes gf %d latent %d bottom width %d channels %d", gf, latent, bw, out_ch);
    g->gf = gf; g->latent_dim = latent; g->bottom_width = bw; g->out_channels = out_ch; g->training = 1;
    l1_shape[0] = gf * bw * bw; l1_shape[1] = latent;
    g->l1.cin = latent; g->l1.cout = l1_shape[0];
    if (!(g->l1.weight = ag_params_add(ps, "l1.weight", AG_ENTRY_PARAM, 2, l1_shape, err))) goto fail;
    if (!(g->l1.bias = ag_params_add(ps, "l1.bias", AG_ENTRY_PARAM, 1, l1_shape, err))) goto fail;
    for (k = 0; k < 3; k++) {
        ag_gen_cell *c = &g->cells[k];
        for (j = 0; j < 4; j++) {
            ag_gen_block *b = j == 0 ? &c->post_conv1 : j == 1 ? &c->pre_conv1 : j == 2 ? &c->post_conv2 : &c->pre_conv2;
            int pre = j & 1;
            snprintf(p, sizeof p, "cell%d.%s", k + 1, blocks[j]);
            if (pre) { snprintf(q, sizeof q, "%s.bn", p); if (ag__reg_bn(ps, &b->bn, q, gf, err)) goto fail; }
            snprintf(q, sizeof q, "%s.deconv", p); if (ag__reg_conv(ps, &b->deconv, q, gf, gf, 2, 1, 1, err)) goto fail;
            snprintf(q, sizeof q, "%s.conv", p);   if (ag__reg_conv(ps, &b->conv, q, gf, gf, 3, 0, 1, err)) goto fail;
            if (!pre) { snprintf(q, sizeof q, "%s.bn", p); if (ag__reg_bn(ps, &b->bn, q, gf, err)) goto fail; }
        }
        snprintf(q, sizeof q, "cell%d.deconv_sc", k + 1);       if (ag__reg_conv(ps, &c->deconv_sc, q, gf, gf, 2, 1, 1, err)) goto fail;
        snprintf(q, sizeof q, "cell%d.c_sc", k + 1);            if (ag__reg_conv(ps, &c->c_sc, q, gf, gf, 1, 0, 1, err)) goto fail;
        snprintf(q, sizeof q, "cell%d.skip_deconvx2", k + 1);   if (ag__reg_conv(ps, &c->skip_deconvx2, q, gf, gf, 2, 1, 1, err)) goto fail;
        snprintf(q, sizeof q, "cell%d.skip_deconvx4.0", k + 1); if (ag__reg_conv(ps, &c->skip_deconvx4[0], q, gf, gf, 2, 1, 1, err)) goto fail;
        snprintf(q, sizeof q, "cell%d.skip_deconvx4.1", k + 1); if (ag__reg_conv(ps, &c->skip_deconvx4[1], q, gf, gf, 2, 1, 1, err)) goto fail;
        c->num_skip_in = k;
        for (j = 0; j < k; j++) {
            snprintf(q, sizeof q, "cell%d.skip_in_ops.%d", k + 1, j);
            if (ag__reg_conv(ps, &c->skip_in_ops[j], q, gf, gf, 1, 0, 1, err)) goto fail;
        }
    }
    if (ag__reg_bn(ps, &g->to_rgb_bn, "to_rgb.0", gf, err)) goto fail;
    if (ag__reg_conv(ps, &g->to_rgb_conv, "to_rgb.2", gf, out_ch, 3, 0, 1, err)) goto fail;
    if (rng) ag_generator_reset_params(g, rng);
    { int a[4] = { 0, 0, 0, 0 }; ag_generator_set_arch(g, 0, a, 4, NULL); }
    return 0;
fail:
    ag_params_free(ps);
    memset(g, 0, sizeof *g);
    return -1;
}
AGDEF void ag_generator_free(ag_generator *g) { ag_params_free(&g->params); memset(g, 0, sizeof *g); }

AGDEF int ag_derived_arch(const char *name, int *arch) {
    static const struct { const char *name; int arch[AG_ARCH_MAX]; } models[3] = {
        { "autogan_cifar10_a", { 1, 0, 1, 1, 1, 0, 0, 1, 1, 1, 0, 1, 0, 3 } },   /* (nearest, sc) (bilinear, sc) (nearest) */
        { "autogan_cifar10_b", { 1, 0, 1, 1, 1, 0, 1, 1, 1, 1, 0, 1, 1, 3 } },   /* nearest, shortcuts everywhere */
        { "autogan_cifar10_c", { 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 0, 1, 0, 3 } } }; /* a with BN in cell 1 */
    int i;
    for (i = 0; name && i < 3; i++)
        if (!strcmp(name, models[i].name)) { memcpy(arch, models[i].arch, sizeof models[i].arch); return 0; }
    return -1;
}
/* the derived Cell (models/building_blocks.py): [n1] -> ReLU -> up -> c1; h += skip terms;
   [n2] -> ReLU -> c2; + c_sc(up(x)). Its weights sit in the shared cell's pre-activation
   slots (c1 = pre_conv1.conv, n1 = pre_conv1.bn, c2 = pre_conv2.conv, n2 = pre_conv2.bn) and
   skip_in_ops[j] stays indexed by source cell j, so the shared forward runs it unchanged. */
AGDEF int ag_generator_init_derived(ag_generator *g, const int *arch, int gf, int latent, int bw, int out_ch,
                                    ag_rng *rng, ag_error *err) {
    ag_params *ps = &g->params; char q[AG_NAME_MAX]; int k, j, l1_shape[2];
    memset(g, 0, sizeof *g);
    if (!arch) return ag__fail(err, "derived generator: no architecture");
    if (ag__arch_check(2, arch, AG_ARCH_MAX, err)) return -1;
    for (k = 0; k < 3; k++) {
        const int *a = arch + (k == 0 ? 0 : 4 + 5 * (k - 1));
        if (a[0] != AG_CONV_PRE || a[2] == AG_UP_DECONV)
            return ag__fail(err, "derived generator: cell %d is %s with %s upsampling; derived cells are pre-activation with bilinear or nearest upsampling",
                            k + 1, a[0] == AG_CONV_PRE ? "pre-activation" : "post-activation", a[2] == AG_UP_DECONV ? "deconv" : a[2] == AG_UP_NEAREST ? "nearest" : "bilinear");
    }
    if (gf < 1 || latent < 1 || bw < 1 || out_ch < 1 || gf > 65536 || latent > 65536 || bw > 64 || out_ch > 64)
        return ag__fail(err, "generator: bad sizes gf %d latent %d bottom width %d channels %d", gf, latent, bw, out_ch);
    g->gf = gf; g->latent_dim = latent; g->bottom_width = bw; g->out_channels = out_ch; g->training = 1;
    g->derived = 1; g->stage = 2; memcpy(g->arch, arch, sizeof g->arch);
    l1_shape[0] = gf * bw * bw; l1_shape[1] = latent;
    g->l1.cin = latent; g->l1.cout = l1_shape[0];
    if (!(g->l1.weight = ag_params_add(ps, "l1.weight", AG_ENTRY_PARAM, 2, l1_shape, err))) goto fail;
    if (!(g->l1.bias = ag_params_add(ps, "l1.bias", AG_ENTRY_PARAM, 1, l1_shape, err))) goto fail;
    for (k = 0; k < 3; k++) {
        ag_gen_cell *c = &g->cells[k];
        const int *a = arch + (k == 0 ? 0 : 4 + 5 * (k - 1));
        int norm = a[1], sc = a[3], skip = k ? a[4] : 0, n_used = 0;
        snprintf(q, sizeof q, "cell%d.c1", k + 1); if (ag__reg_conv(ps, &c->pre_conv1.conv, q, gf, gf, 3, 0, 1, err)) goto fail;
        snprintf(q, sizeof q, "cell%d.c2", k + 1); if (ag__reg_conv(ps, &c->pre_conv2.conv, q, gf, gf, 3, 0, 1, err)) goto fail;
        if (norm == AG_NORM_BN) {   /* InstanceNorm2d has no state */
            snprintf(q, sizeof q, "cell%d.n1", k + 1); if (ag__reg_bn(ps, &c->pre_conv1.bn, q, gf, err)) goto fail;
            snprintf(q, sizeof q, "cell%d.n2", k + 1); if (ag__reg_bn(ps, &c->pre_conv2.bn, q, gf, err)) goto fail;
        }
        if (sc) { snprintf(q, sizeof q, "cell%d.c_sc", k + 1); if (ag__reg_conv(ps, &c->c_sc, q, gf, gf, 1, 0, 1, err)) goto fail; }
        c->num_skip_in = k;
        for (j = 0; j < k; j++) {
            if (!((skip >> (k - 1 - j)) & 1)) continue;   /* bit 0 = most recent cell, as in the shared model */
            snprintf(q, sizeof q, "cell%d.skip_in_ops.%d", k + 1, n_used++);
            if (ag__reg_conv(ps, &c->skip_in_ops[j], q, gf, gf, 1, 0, 1, err)) goto fail;
        }
    }
    if (ag__reg_bn(ps, &g->to_rgb_bn, "to_rgb.0", gf, err)) goto fail;
    if (ag__reg_conv(ps, &g->to_rgb_conv, "to_rgb.2", gf, out_ch, 3, 0, 1, err)) goto fail;
    if (rng) ag_generator_reset_params(g, rng);
    return 0;
fail:
    ag_params_free(ps);
    memset(g, 0, sizeof *g);
    return -1;
}

AGDEF void ag_generator_reset_params(ag_generator *g, ag_rng *rng) {
    int k, j;
    ag__init_default(rng, g->l1.weight, g->l1.bias, 1);
    if (g->derived) {   /* train_derived.py's weights_init: Conv2d and BatchNorm2d */
        for (k = 0; k < 3; k++) {
            ag_gen_cell *c = &g->cells[k];
            ag__conv_reset(rng, &c->pre_conv1.conv); ag__conv_reset(rng, &c->pre_conv2.conv);
            if (c->pre_conv1.bn.weight) { ag__bn_reset(rng, &c->pre_conv1.bn); ag__bn_reset(rng, &c->pre_conv2.bn); }
            if (c->c_sc.weight) ag__conv_reset(rng, &c->c_sc);
            for (j = 0; j < c->num_skip_in; j++) if (c->skip_in_ops[j].weight) ag__conv_reset(rng, &c->skip_in_ops[j]);
        }
        ag__bn_reset(rng, &g->to_rgb_bn); ag__conv_reset(rng, &g->to_rgb_conv);
        return;
    }
    for (k = 0; k < 3; k++) {
        ag_gen_cell *c = &g->cells[k];
        ag_gen_block *bl[4]; bl[0] = &c->post_conv1; bl[1] = &c->pre_conv1; bl[2] = &c->post_conv2; bl[3] = &c->pre_conv2;
        for (j = 0; j < 4; j++) { ag__deconv_reset(rng, &bl[j]->deconv); ag__conv_reset(rng, &bl[j]->conv); ag__bn_reset(rng, &bl[j]->bn); }
        ag__deconv_reset(rng, &c->deconv_sc); ag__conv_reset(rng, &c->c_sc);
        ag__deconv_reset(rng, &c->skip_deconvx2); ag__deconv_reset(rng, &c->skip_deconvx4[0]); ag__deconv_reset(rng, &c->skip_deconvx4[1]);
        for (j = 0; j < c->num_skip_in; j++) ag__conv_reset(rng, &c->skip_in_ops[j]);
    }
    ag__bn_reset(rng, &g->to_rgb_bn); ag__conv_reset(rng, &g->to_rgb_conv);
}

AGDEF int ag_generator_set_arch(ag_generator *g, int stage, const int *arch, int len, ag_error *err) {
    int i;
    if (ag__arch_check(stage, arch, len, err)) return -1;
    if (g->derived) {   /* a derived model has the weights of one architecture only */
        for (i = 0; i < len && arch[i] == g->arch[i]; i++) {}
        if (stage != 2 || i < len) return ag__fail(err, "derived generator: its architecture is fixed (stage 2); it cannot be changed");
        return 0;
    }
    g->stage = stage;
    for (i = 0; i < AG_ARCH_MAX; i++) g->arch[i] = i < len ? arch[i] : 0;
    return 0;
}

/* upsampling x2 inside a block / for the shortcut: interpolation or the given deconv */
static ag_tensor *ag__up2(ag_ctx *ctx, ag_tensor *x, int mode, const ag_conv_layer *deconv) {
    if (!x) return NULL;
    if (mode == AG_UP_DECONV) return ag__deconv_apply(ctx, deconv, x);
    if (mode == AG_UP_NEAREST) return ag_upsample_nearest(ctx, x, 2 * x->shape[2], 2 * x->shape[3]);
    return ag_upsample_bilinear(ctx, x, 2 * x->shape[2], 2 * x->shape[3]);
}
static ag_tensor *ag__gen_norm(ag_ctx *ctx, ag_bn_layer *bn, ag_tensor *x, int norm, int training) {
    if (norm == AG_NORM_BN) return ag__bn_apply(ctx, bn, x, training);
    if (norm == AG_NORM_IN) return ag_instance_norm2d(ctx, x, 1e-5f);
    return x;
}
/* PostGenBlock: (up) -> conv -> norm -> ReLU;  PreGenBlock: norm -> ReLU -> (up) -> conv */
/* t = op(...); then ag__drop(ctx, &old, t): releases an intermediate the forward no longer
   needs (tape nodes keep what their backward reads), unless it is the block's input */
static ag_tensor *ag__drop(ag_ctx *ctx, ag_tensor *old, ag_tensor *keep, ag_tensor *next) {
    if (old && old != keep && old != next) ag_tensor_release(ctx, old);
    return next;
}
static ag_tensor *ag__gen_block(ag_ctx *ctx, ag_gen_block *b, ag_tensor *x, int pre, int norm, int up, int up_block, int training) {
    ag_tensor *h = x;
    if (pre) {
        h = ag__drop(ctx, h, x, ag__gen_norm(ctx, &b->bn, h, norm, training));
        h = ag__drop(ctx, h, x, ag_relu(ctx, h));
        if (up_block && up != AG_UP_DECONV) return ag__drop(ctx, h, x, ag_conv3x3_upsampled2(ctx, h, b->conv.weight, b->conv.bias, up));
        if (up_block) h = ag__drop(ctx, h, x, ag__up2(ctx, h, up, &b->deconv));
        return ag__drop(ctx, h, x, ag__conv_apply(ctx, &b->conv, h));
    }
    if (up_block && up != AG_UP_DECONV) h = ag_conv3x3_upsampled2(ctx, h, b->conv.weight, b->conv.bias, up);
    else {
        if (up_block) h = ag__drop(ctx, h, x, ag__up2(ctx, h, up, &b->deconv));
        h = ag__drop(ctx, h, x, ag__conv_apply(ctx, &b->conv, h));
    }
    h = ag__drop(ctx, h, x, ag__gen_norm(ctx, &b->bn, h, norm, training));
    return ag__drop(ctx, h, x, ag_relu(ctx, h));
}
static ag_tensor *ag__gen_cell(ag_ctx *ctx, ag_generator *g, int k, ag_tensor *x, ag_tensor **skip_in, ag_tensor **skip_out) {
    ag_gen_cell *c = &g->cells[k];
    const int *a = g->arch + (k == 0 ? 0 : 4 + 5 * (k - 1));
    int pre = a[0] == AG_CONV_PRE, norm = a[1], up = a[2], sc = a[3], skip = k ? a[4] : 0, j;
    ag_tensor *h, *out;
    /* The reference adds the skip terms in place (`h += ...` after `h_skip_out = h`), so the
       skip output handed to later cells is block 1's output PLUS the skip terms; the adds
       here are out of place (the ReLU's backward keeps its own output) with the same result */
    h = ag__gen_block(ctx, pre ? &c->pre_conv1 : &c->post_conv1, x, pre, norm, up, 1, g->training);
    *skip_out = NULL;
    if (!h) return NULL;
    for (j = 0; j < c->num_skip_in; j++) {
        ag_tensor *ft = skip_in[j], *r;
        if (!((skip >> (c->num_skip_in - 1 - j)) & 1)) continue;   /* bit 0 = most recent cell */
        if (up == AG_UP_DECONV) {
            int scale = h->shape[3] / ft->shape[3];
            if (scale == 2) r = ag__deconv_apply(ctx, &c->skip_deconvx2, ft);
            else {
                ag_tensor *r1 = ag__deconv_apply(ctx, &c->skip_deconvx4[0], ft);
                r = ag__drop(ctx, r1, NULL, ag__deconv_apply(ctx, &c->skip_deconvx4[1], r1));
            }
            r = ag__drop(ctx, r, NULL, ag__conv_apply(ctx, &c->skip_in_ops[j], r));
        } else {
            /* conv1x1 then resize: the same function as the reference's resize then conv1x1
               (both are linear, and interpolation weights sum to one so the bias passes
               through), at 1/4 or 1/16 of the pixels */
            r = ag__conv_apply(ctx, &c->skip_in_ops[j], ft);
            r = ag__drop(ctx, r, NULL, up == AG_UP_NEAREST ? ag_upsample_nearest(ctx, r, h->shape[2], h->shape[3])
                                                           : ag_upsample_bilinear(ctx, r, h->shape[2], h->shape[3]));
        }
        h = ag__drop(ctx, h, NULL, ag_add(ctx, h, r));
        ag_tensor_release(ctx, r);
    }
    *skip_out = h;   /* kept for later cells; the caller releases it */
    out = ag__gen_block(ctx, pre ? &c->pre_conv2 : &c->post_conv2, h, pre, norm, up, 0, g->training);
    if (sc) {
        ag_tensor *s;
        if (up == AG_UP_DECONV) {
            s = ag__up2(ctx, x, up, &c->deconv_sc);
            s = ag__drop(ctx, s, NULL, ag__conv_apply(ctx, &c->c_sc, s));
        } else {   /* commuted as above */
            s = ag__conv_apply(ctx, &c->c_sc, x);
            s = ag__drop(ctx, s, NULL, ag__up2(ctx, s, up, NULL));
        }
        out = ag__drop(ctx, out, NULL, ag_add(ctx, out, s));
        ag_tensor_release(ctx, s);
    }
    return out;
}
AGDEF ag_tensor *ag_generator_forward(ag_ctx *ctx, ag_generator *g, ag_tensor *z) {
    ag_tensor *h, *skips[3]; int shape[4], k; char s1[64];
    if (ag__check(ctx, "generator", z, 2)) return NULL;
    if (z->shape[1] != g->latent_dim) {
        ag_tensor_shape_str(z, s1, sizeof s1);
        return (ag_tensor *)ag__ctx_fail(ctx, "generator: z has shape %s; the latent size is %d", s1, g->latent_dim);
    }
    h = ag_linear(ctx, z, g->l1.weight, g->l1.bias);
    shape[0] = z->shape[0]; shape[1] = g->gf; shape[2] = shape[3] = g->bottom_width;
    h = ag__drop(ctx, h, NULL, ag_reshape(ctx, h, 4, shape));
    for (k = 0; k <= g->stage && h; k++) h = ag__drop(ctx, h, NULL, ag__gen_cell(ctx, g, k, h, skips, &skips[k]));
    for (k = 0; k <= g->stage && h; k++) ag_tensor_release(ctx, skips[k]);
    h = ag__drop(ctx, h, NULL, ag__bn_apply(ctx, &g->to_rgb_bn, h, g->training));
    h = ag__drop(ctx, h, NULL, ag_relu(ctx, h));
    h = ag__drop(ctx, h, NULL, ag__conv_apply(ctx, &g->to_rgb_conv, h));
    return ag__drop(ctx, h, NULL, ag_tanh(ctx, h));
}

AGDEF int ag_discriminator_init(ag_discriminator *d, int df, int in_ch, int sn, ag_rng *rng, ag_error *err) {
    ag_params *ps = &d->params; char q[AG_NAME_MAX]; int b;
    memset(d, 0, sizeof *d);
    if (df < 1 || df > 65536 || in_ch < 1 || in_ch > 64) return ag__fail(err, "discriminator: bad sizes df %d channels %d", df, in_ch);
    d->df = df; d->in_channels = in_ch; d->spectral_norm = sn != 0; d->training = 1; d->stage = 2;
    for (b = 0; b < 4; b++) {
        snprintf(q, sizeof q, "block%d.c1", b + 1); if (ag__reg_sn_conv(ps, &d->block_c1[b], q, b ? df : in_ch, df, 3, sn, err)) goto fail;
        snprintf(q, sizeof q, "block%d.c2", b + 1); if (ag__reg_sn_conv(ps, &d->block_c2[b], q, df, df, 3, sn, err)) goto fail;
        if (b < 2) { snprintf(q, sizeof q, "block%d.c_sc", b + 1); if (ag__reg_sn_conv(ps, &d->block_c_sc[b], q, b ? df : in_ch, df, 1, sn, err)) goto fail; }
    }
    if (ag__reg_sn_conv(ps, &d->l5, "l5", df, 1, 0, sn, err)) goto fail;
    if (rng) ag_discriminator_reset_params(d, rng);
    return 0;
fail:
    ag_params_free(ps);
    memset(d, 0, sizeof *d);
    return -1;
}
AGDEF void ag_discriminator_free(ag_discriminator *d) { ag_params_free(&d->params); memset(d, 0, sizeof *d); }
static void ag__sn_reset(ag_rng *rng, ag_sn_conv_layer *l, int xavier) {
    float nrm; size_t i; double s;
    if (xavier) { ag_init_xavier_uniform(rng, l->weight_orig, 1.0f); ag__init_default(rng, l->weight_orig, l->bias, 0); }
    else ag__init_default(rng, l->weight_orig, l->bias, 1);
    if (l->u) {
        ag_tensor *uv[2]; int k; uv[0] = l->u; uv[1] = l->v;
        for (k = 0; k < 2; k++) {   /* u, v = normalize(N(0,1)) as torch.nn.utils.spectral_norm */
            ag_init_normal(rng, uv[k], 0.0f, 1.0f);
            for (s = 0.0, i = 0; i < uv[k]->size; i++) s += (double)uv[k]->data[i] * uv[k]->data[i];
            nrm = (float)sqrt(s); if (nrm < 1e-12f) nrm = 1e-12f;
            for (i = 0; i < uv[k]->size; i++) uv[k]->data[i] /= nrm;
        }
    }
}
AGDEF void ag_discriminator_reset_params(ag_discriminator *d, ag_rng *rng) {
    int b;
    for (b = 0; b < 4; b++) {
        ag__sn_reset(rng, &d->block_c1[b], 1); ag__sn_reset(rng, &d->block_c2[b], 1);
        if (b < 2) ag__sn_reset(rng, &d->block_c_sc[b], 1);
    }
    ag__sn_reset(rng, &d->l5, 0);
}
AGDEF int ag_discriminator_set_stage(ag_discriminator *d, int stage, ag_error *err) {
    if (stage < 0 || stage > 2) return ag__fail(err, "discriminator stage %d: must be 0, 1 or 2", stage);
    d->stage = stage;
    return 0;
}
static ag_tensor *ag__sn_weight(ag_ctx *ctx, ag_discriminator *d, ag_sn_conv_layer *l) {
    return d->spectral_norm ? ag_spectral_norm(ctx, l->weight_orig, l->u, l->v, d->training, 1e-12f) : l->weight_orig;
}
static ag_tensor *ag__sn_conv(ag_ctx *ctx, ag_discriminator *d, ag_sn_conv_layer *l, ag_tensor *x) {
    return ag_conv2d(ctx, x, ag__sn_weight(ctx, d, l), l->bias, 1, 1, l->pad, l->pad);
}
static ag_tensor *ag__avgpool2(ag_ctx *ctx, ag_tensor *x) { return ag_avg_pool2d(ctx, x, 2, 2, 0, 1); }
AGDEF ag_tensor *ag_discriminator_forward(ag_ctx *ctx, ag_discriminator *d, ag_tensor *x) {
    ag_tensor *h, *r, *sc; int b, res = ag_stage_resolution(d->stage, 4); char s1[64];
    if (ag__check(ctx, "discriminator", x, 4)) return NULL;
    if (x->shape[1] != d->in_channels || x->shape[2] < 4 || x->shape[3] < 4) {
        ag_tensor_shape_str(x, s1, sizeof s1);
        return (ag_tensor *)ag__ctx_fail(ctx, "discriminator: input %s; expected [N,%d,%d,%d] at stage %d", s1, d->in_channels, res, res, d->stage);
    }
    /* block1 (optimized): c1 -> ReLU -> c2 -> avgpool;  shortcut avgpool -> c_sc.
       Intermediates are released as soon as the forward is done with them. */
    r = ag__sn_conv(ctx, d, &d->block_c1[0], x);
    r = ag__drop(ctx, r, NULL, ag_relu(ctx, r));
    r = ag__drop(ctx, r, NULL, ag__sn_conv(ctx, d, &d->block_c2[0], r));
    r = ag__drop(ctx, r, NULL, ag__avgpool2(ctx, r));
    sc = ag__avgpool2(ctx, x);
    sc = ag__drop(ctx, sc, NULL, ag__sn_conv(ctx, d, &d->block_c_sc[0], sc));
    h = ag_add(ctx, r, sc);
    ag_tensor_release(ctx, r); ag_tensor_release(ctx, sc);
    for (b = 1; b < 4; b++) {
        if ((b == 1 && d->stage < 1) || (b == 2 && d->stage < 2)) continue;
        r = ag_relu(ctx, h);
        r = ag__drop(ctx, r, NULL, ag__sn_conv(ctx, d, &d->block_c1[b], r));
        r = ag__drop(ctx, r, NULL, ag_relu(ctx, r));
        r = ag__drop(ctx, r, NULL, ag__sn_conv(ctx, d, &d->block_c2[b], r));
        if (b == 1) {
            r = ag__drop(ctx, r, NULL, ag__avgpool2(ctx, r));
            sc = ag__sn_conv(ctx, d, &d->block_c_sc[1], h);
            sc = ag__drop(ctx, sc, NULL, ag__avgpool2(ctx, sc));
        } else sc = h;
        r = ag__drop(ctx, r, NULL, ag_add(ctx, r, sc));
        ag_tensor_release(ctx, sc);
        if (sc != h) ag_tensor_release(ctx, h);
        h = r;
    }
    r = ag_relu(ctx, h);
    ag_tensor_release(ctx, h);
    r = ag__drop(ctx, r, NULL, ag_sum_hw(ctx, r));
    return ag__drop(ctx, r, NULL, ag_linear(ctx, r, ag__sn_weight(ctx, d, &d->l5), NULL));
}

AGDEF int ag_gan_init(ag_gan *gan, ag_generator *G, ag_discriminator *D, int dis_bs, int gen_bs, int n_critic,
                      float g_lr, float d_lr, float beta1, float beta2, ag_error *err) {
    memset(gan, 0, sizeof *gan);
    if (dis_bs < 2 || gen_bs < 2 || n_critic < 1) return ag__fail(err, "gan: dis_bs %d, gen_bs %d (need >= 2 for BatchNorm) and n_critic %d (need >= 1)", dis_bs, gen_bs, n_critic);
    gan->G = G; gan->D = D; gan->dis_bs = dis_bs; gan->gen_bs = gen_bs; gan->n_critic = n_critic;
    if (ag_adam_init(&gan->opt_g, &G->params, g_lr, beta1, beta2, 1e-8f, err)) return -1;
    if (ag_adam_init(&gan->opt_d, &D->params, d_lr, beta1, beta2, 1e-8f, err)) { ag_adam_free(&gan->opt_g); return -1; }
    return 0;
}
AGDEF void ag_gan_free(ag_gan *gan) { ag_adam_free(&gan->opt_g); ag_adam_free(&gan->opt_d); }

static ag_tensor *ag__latent(ag_ctx *ctx, int n, int latent, const float *z) {
    int shape[2]; ag_tensor *t; shape[0] = n; shape[1] = latent;
    if (!(t = ag_tensor_new(ctx, 2, shape))) return NULL;
    if (z) memcpy(t->data, z, t->size * sizeof(float));
    else ag_rng_fill_normal(&ctx->rng, t->data, t->size, 0.0f, 1.0f);
    return t;
}
static int ag__step_fail(ag_ctx *ctx, const char *what) {
    char msg[512];
    snprintf(msg, sizeof msg, "%s", ctx->err.msg);
    ctx->failed = 0;
    ag__ctx_fail(ctx, "%s: %s", what, msg);
    return -1;
}
AGDEF int ag_gan_d_step(ag_ctx *ctx, ag_gan *gan, const float *real, const float *z_d, float *d_loss) {
    return ag_gan_d_step_n(ctx, gan, real, gan->dis_bs, z_d, d_loss);
}
AGDEF int ag_gan_d_step_n(ag_ctx *ctx, ag_gan *gan, const float *real, int n, const float *z_d, float *d_loss) {
    ag_tensor *x, *z, *fake, *dr, *dfk, *loss; int R = ag_stage_resolution(gan->G->stage, gan->G->bottom_width);
    ag_ctx_reset(ctx);
    if (ctx->failed) return -1;
    if (n < 1) { ag__ctx_fail(ctx, "D step: %d real images", n); return -1; }
    gan->G->training = gan->D->training = 1;
    ag_params_zero_grad(&gan->D->params);
    ag__params_set_requires_grad(&gan->D->params, 1);
    x = ag_tensor4(ctx, n, gan->G->out_channels, R, R);
    if (!x) return ag__step_fail(ctx, "D step");
    memcpy(x->data, real, x->size * sizeof(float));
    z = ag__latent(ctx, n, gan->G->latent_dim, z_d);
    dr = ag_discriminator_forward(ctx, gan->D, x);
    ag_tensor_release(ctx, x);
    ag_ctx_set_grad_enabled(ctx, 0);                 /* fake = G(z).detach() */
    fake = ag_generator_forward(ctx, gan->G, z);
    ag_tensor_release(ctx, z);
    ag_ctx_set_grad_enabled(ctx, 1);
    dfk = ag_discriminator_forward(ctx, gan->D, fake);
    loss = ag_hinge_loss_d(ctx, dr, dfk);
    if (!loss || ag_backward(ctx, loss)) return ag__step_fail(ctx, "D step");
    ag_adam_step(&gan->opt_d);
    if (d_loss) *d_loss = loss->data[0];
    gan->last_fake = fake; gan->last_d_real = dr; gan->last_d_fake = dfk;
    gan->iteration++;
    return 0;
}
AGDEF int ag_gan_g_step(ag_ctx *ctx, ag_gan *gan, const float *z_g, float *g_loss) {
    ag_tensor *z, *fake, *out, *loss;
    ag_ctx_reset(ctx);
    if (ctx->failed) return -1;
    gan->G->training = gan->D->training = 1;
    ag_params_zero_grad(&gan->G->params);
    ag__params_set_requires_grad(&gan->D->params, 0);   /* D's weight gradients are not needed here */
    z = ag__latent(ctx, gan->gen_bs, gan->G->latent_dim, z_g);
    fake = ag_generator_forward(ctx, gan->G, z);
    ag_tensor_release(ctx, z);
    out = ag_discriminator_forward(ctx, gan->D, fake);
    ag_tensor_release(ctx, fake);
    loss = ag_hinge_loss_g(ctx, out);
    if (!loss || ag_backward(ctx, loss)) { ag__params_set_requires_grad(&gan->D->params, 1); return ag__step_fail(ctx, "G step"); }
    ag__params_set_requires_grad(&gan->D->params, 1);
    ag_adam_step(&gan->opt_g);
    if (g_loss) *g_loss = loss->data[0];
    gan->last_g_out = out;
    return 0;
}
AGDEF int ag_gan_step(ag_ctx *ctx, ag_gan *gan, const float *real, ag_gan_losses *out) {
    return ag_gan_step_n(ctx, gan, real, gan->dis_bs, out);
}
AGDEF int ag_gan_step_n(ag_ctx *ctx, ag_gan *gan, const float *real, int n, ag_gan_losses *out) {
    ag_gan_losses l; memset(&l, 0, sizeof l);
    if (ag_gan_d_step_n(ctx, gan, real, n, NULL, &l.d_loss)) return -1;
    if ((gan->iteration - 1) % gan->n_critic == 0) {
        if (ag_gan_g_step(ctx, gan, NULL, &l.g_loss)) return -1;
        l.g_stepped = 1;
    }
    if (out) *out = l;
    return 0;
}

/* ---- the generator in eval mode: the images of validate() and of every grid ---- */
AGDEF int ag_generator_set_training(ag_generator *g, int on) {
    int was = g->training;
    g->training = on != 0;
    return was;
}
AGDEF int ag_generator_generate(ag_ctx *ctx, ag_generator *g, const float *z, int n, float *out) {
    ag_tensor *zt, *y; int shape[2], was, grad;
    ag_ctx_reset(ctx);
    if (n < 1 || !out) { ag__ctx_fail(ctx, "generate: %d images%s", n, out ? "" : " into no buffer"); return -1; }
    shape[0] = n; shape[1] = g->latent_dim;
    grad = ag_ctx_grad_enabled(ctx);
    ag_ctx_set_grad_enabled(ctx, 0);
    was = ag_generator_set_training(g, 0);
    zt = z ? ag_tensor_from(ctx, 2, shape, z) : ag_tensor_new(ctx, 2, shape);
    if (zt && !z) ag_rng_fill_normal(&ctx->rng, zt->data, zt->size, 0.0f, 1.0f);
    y = ag_generator_forward(ctx, g, zt);
    ag_generator_set_training(g, was);
    ag_ctx_set_grad_enabled(ctx, grad);
    if (!y) return ag__step_fail(ctx, "generate");
    memcpy(out, y->data, y->size * sizeof(float));
    ag_ctx_reset(ctx);
    return 0;
}

/* ---- checkpoints: a GAN with its optimisers and EMA (autogan.h's and the reference's layouts),
   generators alone, and the model descriptions that rebuild them ---- */
static int ag__list_add_params(ag_array_list *list, const ag_params *ps, const char *prefix, float *const *alt, ag_error *err) {
    int i, d; char key[AG_NAME_MAX + 64];
    for (i = 0; i < ps->count; i++) {
        const ag_param_entry *e = &ps->entries[i]; int64_t shape[8];
        snprintf(key, sizeof key, "%s%s", prefix, e->name);
        if (alt) {                                   /* per-parameter moment or average buffers */
            if (!alt[i]) continue;
            for (d = 0; d < e->tensor->ndim; d++) shape[d] = e->tensor->shape[d];
            if (ag_array_list_add(list, key, AG_DTYPE_F32, e->tensor->ndim, shape, alt[i], err)) return -1;
        } else if (e->kind == AG_ENTRY_COUNTER) {
            if (ag_array_list_add(list, key, AG_DTYPE_I64, 0, shape, e->counter, err)) return -1;
        } else {
            for (d = 0; d < e->tensor->ndim; d++) shape[d] = e->tensor->shape[d];
            if (ag_array_list_add(list, key, AG_DTYPE_F32, e->tensor->ndim, shape, e->tensor->data, err)) return -1;
        }
    }
    return 0;
}
static int ag__check_buffers(const ag_array_list *list, const ag_params *ps, const char *prefix, float *const *alt, int nonneg, const char *source, ag_error *err) {
    int i; char key[AG_NAME_MAX + 64]; long bad;
    for (i = 0; i < ps->count; i++) {
        const ag_array *a;
        if (!alt[i]) continue;
        snprintf(key, sizeof key, "%s%s", prefix, ps->entries[i].name);
        a = ag_array_list_find(list, key);
        if (!a) return ag__fail(err, "%s: tensor '%s' is missing", source, key);
        if (a->dtype != AG_DTYPE_F32 || a->nbytes != ps->entries[i].tensor->size * 4)
            return ag__fail(err, "%s: tensor '%s' must be F32 with %zu elements", source, key, ps->entries[i].tensor->size);
        if ((bad = ag__array_first_bad(a, nonneg)) >= 0)
            return ag__fail(err, "%s: tensor '%s' element %ld is %s", source, key, bad, nonneg ? "NaN, infinite or negative" : "NaN or infinite");
    }
    return 0;
}
static void ag__copy_buffers(const ag_array_list *list, const ag_params *ps, const char *prefix, float **alt) {
    int i; char key[AG_NAME_MAX + 64];
    for (i = 0; i < ps->count; i++) if (alt[i]) {
        snprintf(key, sizeof key, "%s%s", prefix, ps->entries[i].name);
        memcpy(alt[i], ag_array_list_find(list, key)->data, ps->entries[i].tensor->size * 4);
    }
}
/* The two checkpoint layouts: autogan.h's own ("G.", "D.", "adam_g.m.", ..., "ema.") and the
   reference's train_derived.py save_checkpoint ("gen_state_dict.", "dis_state_dict.",
   "gen_optimizer.m.", ..., "avg_gen_state_dict." as a whole state_dict: the EMA parameters
   with G's live BatchNorm buffers, as deepcopy(gen_net) + load_params(gen_avg_param)). */
static int ag__meta_counter(const char *meta, const char *key, int64_t *out);
typedef struct ag__ckpt_layout { const char *format, *g, *d, *gm, *gv, *dm, *dv, *ema; int ema_full; } ag__ckpt_layout;
static const ag__ckpt_layout ag__layout_gan = { "autogan.h gan checkpoint 1", "G.", "D.", "adam_g.m.", "adam_g.v.", "adam_d.m.", "adam_d.v.", "ema.", 0 };
static const ag__ckpt_layout ag__layout_train = { "autogan.h train checkpoint 1", "gen_state_dict.", "dis_state_dict.", "gen_optimizer.m.",
                                                  "gen_optimizer.v.", "dis_optimizer.m.", "dis_optimizer.v.", "avg_gen_state_dict.", 1 };
/* the model's name as sample/train accept it: a released derived model's name, "derived" or "shared_gan" */
static const char *ag__gen_model_name(const ag_generator *g) {
    static const char *const names[3] = { "autogan_cifar10_a", "autogan_cifar10_b", "autogan_cifar10_c" };
    int i, a[AG_ARCH_MAX];
    if (!g->derived) return "shared_gan";
    for (i = 0; i < 3; i++) if (!ag_derived_arch(names[i], a) && !memcmp(a, g->arch, sizeof a)) return names[i];
    return "derived";
}
/* "gen_model", "arch" are written by the savers; these keys describe the rest of G (and D) */
static void ag__put_model_meta(ag__buf *meta, const ag_generator *g, const ag_discriminator *d) {
    ag__buf_put(meta, ",\"gen_model\":\"%s\",\"gf_dim\":\"%d\",\"latent_dim\":\"%d\",\"bottom_width\":\"%d\",\"channels\":\"%d\"",
                ag__gen_model_name(g), g->gf, g->latent_dim, g->bottom_width, g->out_channels);
    if (d) ag__buf_put(meta, ",\"df_dim\":\"%d\",\"d_spectral_norm\":\"%d\"", d->df, d->spectral_norm);
}
/* every entry of ps under prefix: parameters from avg (the EMA), buffers and counters live */
static int ag__list_add_avg_state(ag_array_list *list, const ag_params *ps, const char *prefix, float *const *avg, ag_error *err) {
    int i, d; char key[AG_NAME_MAX + 64];
    for (i = 0; i < ps->count; i++) {
        const ag_param_entry *e = &ps->entries[i]; int64_t shape[8];
        snprintf(key, sizeof key, "%s%s", prefix, e->name);
        if (e->kind == AG_ENTRY_COUNTER) { if (ag_array_list_add(list, key, AG_DTYPE_I64, 0, shape, e->counter, err)) return -1; continue; }
        for (d = 0; d < e->tensor->ndim; d++) shape[d] = e->tensor->shape[d];
        if (ag_array_list_add(list, key, AG_DTYPE_F32, e->tensor->ndim, shape, avg[i] ? avg[i] : e->tensor->data, err)) return -1;
    }
    return 0;
}
static int ag__gan_save_as(const char *path, const ag_gan *gan, const ag_ema *ema, const ag_ctx *ctx,
                           const char *extra, const ag__ckpt_layout *L, ag_error *err) {
    ag_array_list list; ag__buf meta; int rc = 0, i, len = ag_arch_len(gan->G->stage);
    memset(&list, 0, sizeof list); memset(&meta, 0, sizeof meta);
    ag__buf_put(&meta, "{\"format\":\"%s\",\"iteration\":\"%lld\",\"adam_g_step\":\"%lld\",\"adam_d_step\":\"%lld\","
                "\"stage\":\"%d\",\"rng_state\":\"%llx\",\"rng_inc\":\"%llx\",\"ema\":\"%d\",\"arch\":\"", L->format,
                (long long)gan->iteration, (long long)gan->opt_g.step, (long long)gan->opt_d.step, gan->G->stage,
                (unsigned long long)ctx->rng.state, (unsigned long long)ctx->rng.inc, ema ? 1 : 0);
    for (i = 0; i < len; i++) ag__buf_put(&meta, i ? " %d" : "%d", gan->G->arch[i]);
    ag__buf_put(&meta, "\"");
    ag__put_model_meta(&meta, gan->G, gan->D);
    ag__buf_put(&meta, "%s%s}", extra && *extra ? "," : "", extra ? extra : "");
    if (meta.oom) rc = ag__fail(err, "%s: out of memory", path);
    if (!rc) rc = ag__list_add_params(&list, &gan->G->params, L->g, NULL, err);
    if (!rc) rc = ag__list_add_params(&list, &gan->D->params, L->d, NULL, err);
    if (!rc) rc = ag__list_add_params(&list, &gan->G->params, L->gm, gan->opt_g.m, err);
    if (!rc) rc = ag__list_add_params(&list, &gan->G->params, L->gv, gan->opt_g.v, err);
    if (!rc) rc = ag__list_add_params(&list, &gan->D->params, L->dm, gan->opt_d.m, err);
    if (!rc) rc = ag__list_add_params(&list, &gan->D->params, L->dv, gan->opt_d.v, err);
    if (!rc && ema) rc = L->ema_full ? ag__list_add_avg_state(&list, &gan->G->params, L->ema, ema->avg, err)
                                     : ag__list_add_params(&list, &gan->G->params, L->ema, ema->avg, err);
    if (!rc) rc = ag_safetensors_write(path, &list, meta.p, err);
    ag_array_list_free(&list); AG_FREE(meta.p);
    return rc;
}
AGDEF int ag_gan_save(const char *path, const ag_gan *gan, const ag_ema *ema, const ag_ctx *ctx,
                      const char *extra, ag_error *err) {
    return ag__gan_save_as(path, gan, ema, ctx, extra, &ag__layout_gan, err);
}
AGDEF int ag_gan_save_train(const char *path, const ag_gan *gan, const ag_ema *ema, const ag_ctx *ctx,
                            const char *extra, ag_error *err) {
    return ag__gan_save_as(path, gan, ema, ctx, extra, &ag__layout_train, err);
}
AGDEF int ag_generator_save_ema(const char *path, const ag_generator *g, const ag_ema *ema, const char *extra, ag_error *err) {
    ag_array_list list; ag__buf meta; int rc = 0, i, len = ag_arch_len(g->stage);
    memset(&list, 0, sizeof list); memset(&meta, 0, sizeof meta);
    ag__buf_put(&meta, "{\"format\":\"autogan.h generator 1\",\"stage\":\"%d\",\"ema\":\"%d\",\"arch\":\"", g->stage, ema ? 1 : 0);
    for (i = 0; i < len; i++) ag__buf_put(&meta, i ? " %d" : "%d", g->arch[i]);
    ag__buf_put(&meta, "\"");
    ag__put_model_meta(&meta, g, NULL);
    ag__buf_put(&meta, "%s%s}", extra && *extra ? "," : "", extra ? extra : "");
    if (meta.oom) rc = ag__fail(err, "%s: out of memory", path);
    if (!rc) rc = ema ? ag__list_add_avg_state(&list, &g->params, "", ema->avg, err) : ag__list_add_params(&list, &g->params, "", NULL, err);
    if (!rc) rc = ag_safetensors_write(path, &list, meta.p, err);
    ag_array_list_free(&list); AG_FREE(meta.p);
    return rc;
}
AGDEF int ag_generator_spec_read(const char *path, ag_generator_spec *spec, ag_error *err) {
    ag_array_list list; char *meta = NULL, v[128]; int rc = 0; int64_t x; ag_error e2;
    size_t n = path ? strlen(path) : 0;
    memset(spec, 0, sizeof *spec);
    if (!path) return ag__fail(err, "generator: no file given");
    if (n < 12 || strcmp(path + n - 12, ".safetensors"))
        return ag__fail(err, "%s: only .safetensors files name their model; give --gen_model or --arch for a .pth", path);
    if (ag_safetensors_read(path, &list, &meta, err)) return -1;
    ag_array_list_free(&list);
    if (ag_json_get_string(meta, "gen_model", spec->gen_model, sizeof spec->gen_model) || !spec->gen_model[0])
        rc = ag__fail(err, "%s: the metadata names no model ('gen_model' missing); give --gen_model or --arch", path);
    e2.msg[0] = 0;
    if (!rc && (ag_json_get_string(meta, "arch", v, sizeof v) || ag_arch_parse(v, spec->arch, &spec->arch_len, &e2)))
        rc = ag__fail(err, "%s: metadata 'arch' missing or malformed%s%s", path, e2.msg[0] ? ": " : "", e2.msg);
    if (!rc) {
        spec->stage = spec->arch_len == 4 ? 0 : spec->arch_len == 9 ? 1 : spec->arch_len == 14 ? 2 : -1;
        if (spec->stage < 0 || ag__arch_check(spec->stage, spec->arch, spec->arch_len, &e2))
            rc = ag__fail(err, "%s: metadata 'arch' is not a valid architecture%s%s", path, e2.msg[0] ? ": " : "", e2.msg);
    }
#define AG__SPEC_INT(key, field, lo, hi) \
    if (!rc) { if (ag__meta_counter(meta, key, &x) || x < (lo) || x > (hi)) rc = ag__fail(err, "%s: metadata '%s' missing or out of range [%d, %d]", path, key, lo, hi); else spec->field = (int)x; }
    AG__SPEC_INT("gf_dim", gf, 1, 4096)
    AG__SPEC_INT("latent_dim", latent_dim, 1, 65536)
    AG__SPEC_INT("bottom_width", bottom_width, 1, 64)
    AG__SPEC_INT("channels", channels, 1, 4)
    spec->df = 0; spec->d_spectral_norm = -1;
    if (!rc && !ag__meta_counter(meta, "df_dim", &x) && x >= 1 && x <= 4096) spec->df = (int)x;
    if (!rc && !ag__meta_counter(meta, "d_spectral_norm", &x) && x <= 1) spec->d_spectral_norm = (int)x;
#undef AG__SPEC_INT
    spec->derived = strcmp(spec->gen_model, "shared_gan") != 0;
    if (!rc && spec->derived) {
        int a[AG_ARCH_MAX];
        if (spec->stage != 2) rc = ag__fail(err, "%s: a derived generator ('%s') needs 14 arch tokens", path, spec->gen_model);
        else if (strcmp(spec->gen_model, "derived") && (ag_derived_arch(spec->gen_model, a) || memcmp(a, spec->arch, sizeof a)))
            rc = ag__fail(err, "%s: metadata 'gen_model' %s does not match its 'arch'", path, spec->gen_model);
    }
    if (rc) memset(spec, 0, sizeof *spec);
    AG_FREE(meta);
    return rc;
}
AGDEF int ag_generator_init_spec(ag_generator *g, const ag_generator_spec *spec, ag_rng *rng, ag_error *err) {
    if (spec->derived) return ag_generator_init_derived(g, spec->arch, spec->gf, spec->latent_dim, spec->bottom_width, spec->channels, rng, err);
    if (ag_generator_init(g, spec->gf, spec->latent_dim, spec->bottom_width, spec->channels, rng, err)) return -1;
    if (ag_generator_set_arch(g, spec->stage, spec->arch, spec->arch_len, err)) { ag_generator_free(g); return -1; }
    return 0;
}
AGDEF void ag_generator_spec_describe(const ag_generator_spec *spec, char *out, size_t cap) {
    size_t u; int i;
    if (!cap) return;
    u = (size_t)snprintf(out, cap, "%s (arch", spec->gen_model);
    for (i = 0; i < spec->arch_len && u < cap; i++) u += (size_t)snprintf(out + u, cap - u, " %d", spec->arch[i]);
    if (u < cap) snprintf(out + u, cap - u, ", gf %d, latent %d, bottom width %d, %d channel%s)", spec->gf, spec->latent_dim,
                          spec->bottom_width, spec->channels, spec->channels == 1 ? "" : "s");
}
/* a checkpoint counter: decimal digits only, at most 2^53 (far beyond any run; larger
   values are damage, and would overflow the step arithmetic) */
static int ag__meta_counter(const char *meta, const char *key, int64_t *out) {
    char v[64]; int i; uint64_t x = 0;
    if (ag_json_get_string(meta, key, v, sizeof v) || !v[0]) return -1;
    for (i = 0; v[i]; i++) {
        if (v[i] < '0' || v[i] > '9' || i >= 17) return -1;
        x = x * 10 + (uint64_t)(v[i] - '0');
    }
    if (x > ((uint64_t)1 << 53)) return -1;
    *out = (int64_t)x;
    return 0;
}
static int ag__meta_hex(const char *meta, const char *key, uint64_t *out) {
    char v[64]; int i; uint64_t x = 0;
    if (ag_json_get_string(meta, key, v, sizeof v) || !v[0]) return -1;
    for (i = 0; v[i]; i++) {
        int d = v[i] >= '0' && v[i] <= '9' ? v[i] - '0' : v[i] >= 'a' && v[i] <= 'f' ? v[i] - 'a' + 10 : v[i] >= 'A' && v[i] <= 'F' ? v[i] - 'A' + 10 : -1;
        if (d < 0 || i >= 16) return -1;
        x = x << 4 | (uint64_t)d;
    }
    *out = x;
    return 0;
}
/* parses and checks a GAN checkpoint's metadata; rng may be NULL */
static int ag__gan_meta_parse(const char *meta, const char *path, ag_gan_checkpoint_info *info, uint64_t *rng, ag_error *err) {
    char v[128]; int64_t stage = -1; uint64_t rs = 0, ri = 0; ag_error e2;
    memset(info, 0, sizeof *info);
    if (ag_json_get_string(meta, "format", v, sizeof v) || (strcmp(v, ag__layout_gan.format) && strcmp(v, ag__layout_train.format)))
        return ag__fail(err, "%s: not an autogan.h GAN checkpoint nor a training checkpoint (metadata 'format' missing or unknown)", path);
    info->train_layout = strcmp(v, ag__layout_train.format) == 0;
    if (ag__meta_counter(meta, "iteration", &info->iteration))
        return ag__fail(err, "%s: checkpoint metadata 'iteration' is missing or not a count from 0 to 2^53", path);
    if (ag__meta_counter(meta, "adam_g_step", &info->adam_g_step) || ag__meta_counter(meta, "adam_d_step", &info->adam_d_step))
        return ag__fail(err, "%s: checkpoint metadata 'adam_g_step' or 'adam_d_step' is missing or not a count from 0 to 2^53", path);
    if (ag__meta_counter(meta, "stage", &stage) || stage > 2)
        return ag__fail(err, "%s: checkpoint metadata 'stage' is missing or not 0, 1 or 2", path);
    if (ag__meta_hex(meta, "rng_state", &rs) || ag__meta_hex(meta, "rng_inc", &ri) || !(ri & 1))
        return ag__fail(err, "%s: checkpoint metadata 'rng_state' or 'rng_inc' is missing or malformed", path);
    info->stage = (int)stage;
    e2.msg[0] = 0;
    if (ag_json_get_string(meta, "arch", v, sizeof v) || ag_arch_parse(v, info->arch, &info->arch_len, &e2) ||
        ag__arch_check(info->stage, info->arch, info->arch_len, &e2))
        return ag__fail(err, "%s: checkpoint architecture invalid: %s", path, e2.msg[0] ? e2.msg : "'arch' missing");
    info->has_ema = ag_json_get_string(meta, "ema", v, sizeof v) == 0 && strcmp(v, "1") == 0;
    if (rng) { rng[0] = rs; rng[1] = ri; }
    return 0;
}
AGDEF int ag_gan_checkpoint_read_info(const char *path, ag_gan_checkpoint_info *info, ag_error *err) {
    ag_array_list list; char *meta = NULL; int rc;
    memset(info, 0, sizeof *info);
    if (ag_safetensors_read(path, &list, &meta, err)) return -1;
    rc = ag__gan_meta_parse(meta, path, info, NULL, err);
    if (rc) memset(info, 0, sizeof *info);
    AG_FREE(meta);
    ag_array_list_free(&list);
    return rc;
}
static void ag__arch_str(const int *arch, int len, char *out, size_t cap) {
    size_t u = 0; int i;
    out[0] = 0;
    for (i = 0; i < len && u < cap; i++) u += (size_t)snprintf(out + u, cap - u, i ? " %d" : "%d", arch[i]);
}
AGDEF int ag_gan_load(const char *path, ag_gan *gan, ag_ema *ema, ag_ctx *ctx, char **metadata, ag_error *err) {
    ag_array_list list; char *meta = NULL; int rc = 0, i, len = ag_arch_len(gan->G->stage); ag_gan_checkpoint_info info; uint64_t rng[2]; const ag__ckpt_layout *L = &ag__layout_gan;
    if (metadata) *metadata = NULL;
    if (ag_safetensors_read(path, &list, &meta, err)) return -1;
    rc = ag__gan_meta_parse(meta, path, &info, rng, err);
    if (!rc && info.train_layout) L = &ag__layout_train;
    if (!rc) {
        int same = info.stage == gan->G->stage && info.stage == gan->D->stage && info.arch_len == len;
        for (i = 0; same && i < len; i++) same = info.arch[i] == gan->G->arch[i];
        if (!same) {
            char want[64], got[64];
            ag__arch_str(info.arch, info.arch_len, got, sizeof got); ag__arch_str(gan->G->arch, len, want, sizeof want);
            rc = ag__fail(err, "%s: the checkpoint is stage %d, arch '%s'; the models given are stage %d, arch '%s' "
                          "(build them from ag_gan_checkpoint_read_info)", path, info.stage, got, gan->G->stage, want);
        }
    }
    if (!rc && ema && !info.has_ema) rc = ag__fail(err, "%s: the checkpoint holds no EMA weights (saved without EMA)", path);
    if (!rc) rc = ag__params_check_arrays(&gan->G->params, &list, L->g, 0, path, err);
    if (!rc) rc = ag__params_check_arrays(&gan->D->params, &list, L->d, 0, path, err);
    if (!rc) rc = ag__check_buffers(&list, &gan->G->params, L->gm, gan->opt_g.m, 0, path, err);
    if (!rc) rc = ag__check_buffers(&list, &gan->G->params, L->gv, gan->opt_g.v, 1, path, err);
    if (!rc) rc = ag__check_buffers(&list, &gan->D->params, L->dm, gan->opt_d.m, 0, path, err);
    if (!rc) rc = ag__check_buffers(&list, &gan->D->params, L->dv, gan->opt_d.v, 1, path, err);
    if (!rc && ema) rc = ag__check_buffers(&list, &gan->G->params, L->ema, ema->avg, 0, path, err);
    if (!rc) {
        ag__params_copy_arrays(&gan->G->params, &list, L->g);
        ag__params_copy_arrays(&gan->D->params, &list, L->d);
        ag__copy_buffers(&list, &gan->G->params, L->gm, gan->opt_g.m);
        ag__copy_buffers(&list, &gan->G->params, L->gv, gan->opt_g.v);
        ag__copy_buffers(&list, &gan->D->params, L->dm, gan->opt_d.m);
        ag__copy_buffers(&list, &gan->D->params, L->dv, gan->opt_d.v);
        if (ema) ag__copy_buffers(&list, &gan->G->params, L->ema, ema->avg);
        gan->iteration = info.iteration; gan->opt_g.step = info.adam_g_step; gan->opt_d.step = info.adam_d_step;
        ctx->rng.state = rng[0]; ctx->rng.inc = rng[1];
        if (metadata) { *metadata = meta; meta = NULL; }
    }
    AG_FREE(meta);
    ag_array_list_free(&list);
    return rc;
}

static int ag__list_has_prefix(const ag_array_list *list, const char *prefix) {
    int i; size_t n = strlen(prefix);
    for (i = 0; i < list->count; i++) if (list->items[i].name && !strncmp(list->items[i].name, prefix, n)) return 1;
    return 0;
}
static int ag__generator_load(ag_generator *g, const char *path, int use_ema, char *loaded_key, size_t key_len, ag_error *err);
AGDEF int ag_generator_load(ag_generator *g, const char *path, char *loaded_key, size_t key_len, ag_error *err) {
    return ag__generator_load(g, path, 1, loaded_key, key_len, err);
}
AGDEF int ag_generator_create_from_checkpoint(ag_generator *g, const char *path, const ag_generator_spec *spec, int use_ema,
                                               char *loaded_key, size_t key_len, ag_error *err) {
    ag_generator_spec own;
    memset(g, 0, sizeof *g);
    if (!path) return ag__fail(err, "generator: no file given");
    if (!spec) {
        if (ag_generator_spec_read(path, &own, err)) return -1;
        spec = &own;
    }
    if (ag_generator_init_spec(g, spec, NULL, err)) { memset(g, 0, sizeof *g); return -1; }
    if (ag__generator_load(g, path, use_ema, loaded_key, key_len, err)) { ag_generator_free(g); memset(g, 0, sizeof *g); return -1; }
    return 0;
}
static int ag__generator_load(ag_generator *g, const char *path, int use_ema, char *loaded_key, size_t key_len, ag_error *err) {
    static const char *const keys[3] = { "avg_gen_state_dict", "gen_state_dict", "G" };
    ag_array_list list; ag_error e; char *meta = NULL, desc[160], prefix[32]; const char *key = "state_dict";
    size_t n = path ? strlen(path) : 0, u; int i, rc, st = n >= 12 && !strcmp(path + n - 12, ".safetensors");
    if (!path) return ag__fail(err, "generator: no file given");
    if (st ? ag_safetensors_read(path, &list, &meta, err) : ag_pth_read(path, &list, err)) return -1;
    AG_FREE(meta);
    prefix[0] = 0;
    for (i = use_ema ? 0 : 1; i < 3; i++) {   /* the .pth training checkpoints of the reference, or ag_gan_save's file */
        snprintf(prefix, sizeof prefix, "%s.", keys[i]);
        if ((i < 2 || st) && ag__list_has_prefix(&list, prefix)) { key = keys[i]; break; }
        prefix[0] = 0;
    }
    if (!use_ema && !prefix[0] && ag__list_has_prefix(&list, "avg_gen_state_dict.")) {
        ag_array_list_free(&list);
        return ag__fail(err, "%s: holds only the EMA generator ('avg_gen_state_dict'), no live one ('gen_state_dict')", path);
    }
    if (use_ema && !strcmp(key, "G") && ag__list_has_prefix(&list, "ema.")) {
        /* an ag_gan_save checkpoint with an EMA: the averaged weights, as avg_gen_state_dict
           (buffers and counters from "G.", parameters from "ema.") */
        rc = ag__params_check_arrays(&g->params, &list, prefix, 0, path, &e);
        for (i = 0; i < g->params.count && !rc; i++) {
            const ag_param_entry *pe = &g->params.entries[i]; const ag_array *a; char k2[AG_NAME_MAX + 8];
            if (pe->kind != AG_ENTRY_PARAM) continue;
            snprintf(k2, sizeof k2, "ema.%s", pe->name);
            a = ag_array_list_find(&list, k2);
            if (!a || a->dtype != AG_DTYPE_F32 || a->nbytes != pe->tensor->size * 4)
                rc = ag__fail(&e, "%s: tensor '%s' is missing or not F32 with %zu elements", path, k2, pe->tensor->size);
        }
        if (!rc) {
            ag__params_copy_arrays(&g->params, &list, prefix);
            for (i = 0; i < g->params.count; i++) {
                const ag_param_entry *pe = &g->params.entries[i]; char k2[AG_NAME_MAX + 8];
                if (pe->kind != AG_ENTRY_PARAM) continue;
                snprintf(k2, sizeof k2, "ema.%s", pe->name);
                memcpy(pe->tensor->data, ag_array_list_find(&list, k2)->data, pe->tensor->size * 4);
            }
            key = "ema";
        }
    } else rc = ag_params_load_arrays(&g->params, &list, prefix, 1, path, &e);
    if (rc) {
        u = (size_t)snprintf(desc, sizeof desc, "%s generator (arch", g->derived ? "derived" : "shared");
        for (i = 0; i < ag_arch_len(g->stage) && u < sizeof desc; i++) u += (size_t)snprintf(desc + u, sizeof desc - u, " %d", g->arch[i]);
        if (u < sizeof desc) snprintf(desc + u, sizeof desc - u, ", gf %d, latent %d, bottom width %d)", g->gf, g->latent_dim, g->bottom_width);
        ag__fail(err, "%s (its '%s' does not fit the %s)", e.msg, key, desc);
    } else if (loaded_key && key_len) snprintf(loaded_key, key_len, "%s", key);
    ag_array_list_free(&list);
    return rc;
}


/* ===================================================================================
   10. Controller and search: the LSTM policy, REINFORCE, kept architectures, loss windows,
   the search checkpoint
   =================================================================================== */
AGDEF void ag_controller_reset_params(ag_controller *c, ag_rng *rng) {
    float k = 1.0f / sqrtf((float)c->hid_size); int i;
    ag_init_uniform(rng, c->w_ih, -k, k); ag_init_uniform(rng, c->w_hh, -k, k);
    ag_init_uniform(rng, c->b_ih, -k, k); ag_init_uniform(rng, c->b_hh, -k, k);
    ag_init_normal(rng, c->encoder, 0.0f, 1.0f);
    for (i = 0; i < c->num_tokens; i++) ag__init_default(rng, c->dec_w[i], c->dec_b[i], 1);
}
AGDEF int ag_controller_init(ag_controller *c, int stage, int hid_size, ag_rng *rng, ag_error *err) {
    static const int base[4] = { 2, 3, 3, 2 };
    int i, total = 0, shape[2]; char name[64];
    memset(c, 0, sizeof *c);
    if (stage < 0 || stage > 2) return ag__fail(err, "controller: stage %d (0, 1 or 2)", stage);
    if (hid_size < 1 || hid_size > 4096) return ag__fail(err, "controller: hidden size %d (1..4096)", hid_size);
    c->stage = stage; c->hid_size = hid_size; c->num_tokens = stage ? 5 : 4;
    for (i = 0; i < 4; i++) c->choices[i] = base[i];
    if (stage) c->choices[4] = 1 << stage;
    for (i = 0; i < c->num_tokens; i++) { c->offset[i] = total; total += c->choices[i]; }
    shape[0] = 4 * hid_size; shape[1] = hid_size;
    if (!(c->w_ih = ag_params_add(&c->params, "lstm.weight_ih", AG_ENTRY_PARAM, 2, shape, err))) goto fail;
    if (!(c->w_hh = ag_params_add(&c->params, "lstm.weight_hh", AG_ENTRY_PARAM, 2, shape, err))) goto fail;
    if (!(c->b_ih = ag_params_add(&c->params, "lstm.bias_ih", AG_ENTRY_PARAM, 1, shape, err))) goto fail;
    if (!(c->b_hh = ag_params_add(&c->params, "lstm.bias_hh", AG_ENTRY_PARAM, 1, shape, err))) goto fail;
    shape[0] = total;
    if (!(c->encoder = ag_params_add(&c->params, "encoder.weight", AG_ENTRY_PARAM, 2, shape, err))) goto fail;
    for (i = 0; i < c->num_tokens; i++) {
        shape[0] = c->choices[i]; shape[1] = hid_size;
        snprintf(name, sizeof name, "decoders.%d.weight", i);
        if (!(c->dec_w[i] = ag_params_add(&c->params, name, AG_ENTRY_PARAM, 2, shape, err))) goto fail;
        snprintf(name, sizeof name, "decoders.%d.bias", i);
        if (!(c->dec_b[i] = ag_params_add(&c->params, name, AG_ENTRY_PARAM, 1, shape, err))) goto fail;
    }
    if (rng) ag_controller_reset_params(c, rng);
    return 0;
fail:
    ag_params_free(&c->params); memset(c, 0, sizeof *c);
    return -1;
}
AGDEF void ag_controller_free(ag_controller *c) { ag_params_free(&c->params); memset(c, 0, sizeof *c); }

/* a draw from softmax(row) (C entries of log-probabilities): the first index whose
   cumulative probability (in double) exceeds a uniform u; the last one on rounding */
static int ag__sample_categorical(ag_rng *rng, const float *log_probs, int C) {
    double u = ag_rng_uniform(rng), acc = 0.0; int j;
    for (j = 0; j < C; j++) { acc += exp((double)log_probs[j]); if (u < acc) return j; }
    return C - 1;
}
AGDEF int ag_controller_forward(ag_ctx *ctx, ag_controller *c, int batch, const float *h0, const float *c0,
                                ag_rng *rng, int *actions, float *log_probs, float *entropies,
                                ag_controller_pass *pass) {
    ag_tensor *x, *h, *cs, *cn; int shape[2], t, b, T = c->num_tokens, H = c->hid_size; int64_t *idx;
    memset(pass, 0, sizeof *pass);
    if (batch < 1) { ag__ctx_fail(ctx, "controller: batch %d", batch); return -1; }
    pass->batch = batch; pass->num_tokens = T;
    shape[0] = batch; shape[1] = H;
    x = ag_tensor_zeros(ctx, 2, shape);               /* [batch, H]: the first input */
    h = h0 ? ag_tensor_from(ctx, 2, shape, h0) : ag_tensor_zeros(ctx, 2, shape);
    cs = c0 ? ag_tensor_from(ctx, 2, shape, c0) : ag_tensor_zeros(ctx, 2, shape);
    idx = (int64_t *)ag__arena_alloc(ctx, (size_t)batch * sizeof(int64_t));
    if (!x || !h || !cs || !idx) return -1;
    for (t = 0; t < T; t++) {
        ag_tensor *lp; int C = c->choices[t];
        h = ag_lstm_cell(ctx, x, h, cs, c->w_ih, c->w_hh, c->b_ih, c->b_hh, &cn);   /* [batch, H] */
        cs = cn;
        pass->logits[t] = ag_linear(ctx, h, c->dec_w[t], c->dec_b[t]);             /* [batch, C] */
        lp = pass->log_probs[t] = ag_log_softmax(ctx, pass->logits[t]);
        if (!lp) return -1;
        for (b = 0; b < batch; b++) {
            const float *row = lp->data + (size_t)b * C; int a; double ent = 0.0; int j;
            if (rng) actions[b * T + t] = ag__sample_categorical(rng, row, C);
            a = actions[b * T + t];
            if (a < 0 || a >= C) { ag__ctx_fail(ctx, "controller: action %d of token %d outside [0, %d)", a, t, C); return -1; }
            for (j = 0; j < C; j++) ent -= exp((double)row[j]) * row[j];
            if (log_probs) log_probs[b * T + t] = row[a];
            if (entropies) entropies[b * T + t] = (float)ent;
            idx[b] = a + c->offset[t];
        }
        if (t + 1 < T) x = ag_embedding(ctx, c->encoder, idx, batch);
    }
    pass->h = h; pass->c = cs;
    return ctx->failed ? -1 : 0;
}
AGDEF ag_tensor *ag_controller_loss(ag_ctx *ctx, const ag_controller_pass *pass, const int *actions,
                                    const float *advantage, float entropy_coeff) {
    ag_tensor *total = NULL; int t, b, T = pass->num_tokens;
    for (t = 0; t < T; t++) {
        ag_tensor *lp = pass->log_probs[t], *sel, *term, *plogp; int C;
        if (!lp) return NULL;
        C = lp->shape[1];
        /* sel [batch, C]: -advantage_b at the chosen action, 0 elsewhere (a constant) */
        if (!(sel = ag_tensor_zeros(ctx, 2, lp->shape))) return NULL;
        for (b = 0; b < pass->batch; b++) sel->data[(size_t)b * C + actions[b * T + t]] = -advantage[b];
        term = ag_sum(ctx, ag_mul(ctx, lp, sel));
        /* -coeff * H = coeff * sum p log p */
        plogp = ag_sum(ctx, ag_mul(ctx, ag_exp(ctx, lp), lp));
        term = ag_add(ctx, term, ag_scale(ctx, plogp, entropy_coeff));
        total = total ? ag_add(ctx, total, term) : term;
    }
    return total;
}
AGDEF int ag_controller_update(ag_ctx *ctx, ag_controller *c, ag_adam *opt, int batch, const float *h0, const float *c0,
                               const int *actions, const float *advantage, float entropy_coeff, float *loss_out) {
    ag_controller_pass pass; ag_tensor *loss; int grad = ag_ctx_grad_enabled(ctx);
    ag_ctx_reset(ctx);
    if (ctx->failed) return -1;
    ag_ctx_set_grad_enabled(ctx, 1);
    ag_params_zero_grad(&c->params);
    if (ag_controller_forward(ctx, c, batch, h0, c0, NULL, (int *)actions, NULL, NULL, &pass) ||
        !(loss = ag_controller_loss(ctx, &pass, actions, advantage, entropy_coeff)) || ag_backward(ctx, loss)) {
        ag_ctx_set_grad_enabled(ctx, grad);
        return ag__step_fail(ctx, "controller update");
    }
    ag_ctx_set_grad_enabled(ctx, grad);
    ag_adam_step(opt);
    if (loss_out) *loss_out = loss->data[0];
    return 0;
}
AGDEF void ag_kept_archs_free(ag_kept_archs *k) { AG_FREE(k->archs); AG_FREE(k->h); AG_FREE(k->c); memset(k, 0, sizeof *k); }
AGDEF int ag_kept_archs_set(ag_kept_archs *k, int count, int len, int hid_size, const int *archs, int arch_stride,
                            const float *h, const float *c, ag_error *err) {
    ag_kept_archs n; int i;
    memset(&n, 0, sizeof n);
    if (count < 1 || len < 1 || len > AG_ARCH_MAX || hid_size < 1) return ag__fail(err, "kept architectures: %d of %d tokens, hidden %d", count, len, hid_size);
    n.count = count; n.len = len; n.hid_size = hid_size;
    n.archs = (int *)AG_MALLOC((size_t)count * len * sizeof(int));
    n.h = (float *)AG_MALLOC((size_t)count * hid_size * sizeof(float));
    n.c = (float *)AG_MALLOC((size_t)count * hid_size * sizeof(float));
    if (!n.archs || !n.h || !n.c) { ag_kept_archs_free(&n); return ag__fail(err, "out of memory for kept architectures"); }
    for (i = 0; i < count; i++) memcpy(n.archs + (size_t)i * len, archs + (size_t)i * arch_stride, (size_t)len * sizeof(int));
    memcpy(n.h, h, (size_t)count * hid_size * sizeof(float));
    memcpy(n.c, c, (size_t)count * hid_size * sizeof(float));
    ag_kept_archs_free(k);
    *k = n;
    return 0;
}
AGDEF int ag_controller_sample(ag_ctx *ctx, ag_controller *c, ag_rng *rng, const ag_kept_archs *kept, int batch,
                               int *archs, int *prefix_index, float *log_probs, float *entropies,
                               float *h_out, float *c_out) {
    int b, t, T = c->num_tokens, H = c->hid_size, plen = 0, grad = ag_ctx_grad_enabled(ctx), rc = -1;
    int *sel = NULL, *acts = NULL; float *h0 = NULL, *c0 = NULL; ag_controller_pass pass;
    int use_kept = kept && kept->count > 0;
    if (batch < 1) { ag__ctx_fail(ctx, "controller sample: batch %d", batch); return -1; }
    if (use_kept && (kept->hid_size != H || kept->len + T != ag_arch_len(c->stage))) {
        ag__ctx_fail(ctx, "controller sample: kept architectures of %d tokens (hidden %d) do not lead to stage %d (hidden %d)", kept->len, kept->hid_size, c->stage, H);
        return -1;
    }
    ag_ctx_reset(ctx);
    if (ctx->failed) return -1;
    sel = (int *)AG_MALLOC((size_t)batch * sizeof(int));
    acts = (int *)AG_MALLOC((size_t)batch * T * sizeof(int));
    if (use_kept) {
        plen = kept->len;
        h0 = (float *)AG_MALLOC((size_t)batch * H * sizeof(float));
        c0 = (float *)AG_MALLOC((size_t)batch * H * sizeof(float));
    }
    if (!sel || !acts || (use_kept && (!h0 || !c0))) { ag__ctx_fail(ctx, "controller sample: out of memory"); goto done; }
    /* the prefix of every row first (the reference draws them all before the tokens) */
    for (b = 0; b < batch; b++) {
        sel[b] = use_kept ? (int)(ag_rng_u32(rng) % (uint32_t)kept->count) : -1;
        if (use_kept) {
            memcpy(h0 + (size_t)b * H, kept->h + (size_t)sel[b] * H, (size_t)H * sizeof(float));
            memcpy(c0 + (size_t)b * H, kept->c + (size_t)sel[b] * H, (size_t)H * sizeof(float));
        }
    }
    ag_ctx_set_grad_enabled(ctx, 0);
    if (ag_controller_forward(ctx, c, batch, h0, c0, rng, acts, log_probs, entropies, &pass)) goto done;
    for (b = 0; b < batch; b++) {
        int *row = archs + (size_t)b * AG_ARCH_MAX;
        for (t = 0; t < AG_ARCH_MAX; t++) row[t] = 0;
        if (use_kept) memcpy(row, kept->archs + (size_t)sel[b] * plen, (size_t)plen * sizeof(int));
        for (t = 0; t < T; t++) row[plen + t] = acts[b * T + t];
        if (prefix_index) prefix_index[b] = sel[b];
    }
    if (h_out) memcpy(h_out, pass.h->data, (size_t)batch * H * sizeof(float));
    if (c_out) memcpy(c_out, pass.c->data, (size_t)batch * H * sizeof(float));
    rc = 0;
done:
    ag_ctx_set_grad_enabled(ctx, grad);
    AG_FREE(sel); AG_FREE(acts); AG_FREE(h0); AG_FREE(c0);
    return rc;
}

AGDEF int ag_loss_window_init(ag_loss_window *w, int cap, ag_error *err) {
    memset(w, 0, sizeof *w);
    if (cap < 2) return ag__fail(err, "loss window of %d values (need >= 2)", cap);
    if (!(w->v = (float *)AG_MALLOC((size_t)cap * sizeof(float)))) return ag__fail(err, "out of memory for a loss window of %d", cap);
    w->cap = cap;
    return 0;
}
AGDEF void ag_loss_window_free(ag_loss_window *w) { AG_FREE(w->v); memset(w, 0, sizeof *w); }
AGDEF void ag_loss_window_push(ag_loss_window *w, float x) {
    w->v[(w->head + w->count) % w->cap] = x;
    if (w->count < w->cap) w->count++; else w->head = (w->head + 1) % w->cap;
}
AGDEF void ag_loss_window_clear(ag_loss_window *w) { w->count = 0; w->head = 0; }
AGDEF int  ag_loss_window_full(const ag_loss_window *w) { return w->count == w->cap; }
/* two passes in double over the window (the reference updates a running sum; the value is
   the same up to its rounding) */
AGDEF double ag_loss_window_var(const ag_loss_window *w) {
    double m = 0.0, s = 0.0; int i;
    if (w->count < 2) return 0.0;
    for (i = 0; i < w->count; i++) m += w->v[(w->head + i) % w->cap];
    m /= w->count;
    for (i = 0; i < w->count; i++) { double d = w->v[(w->head + i) % w->cap] - m; s += d * d; }
    return s / w->count;
}

AGDEF int ag_search_new_controller(ag_search_state *s, int stage, ag_error *err) {
    ag_controller c; ag_adam opt;
    if (ag_controller_init(&c, stage, s->ctrl.hid_size ? s->ctrl.hid_size : 100, &s->rng, err)) return -1;
    if (ag_adam_init(&opt, &c.params, s->ctrl_lr, s->ctrl_beta1, s->ctrl_beta2, 1e-8f, err)) { ag_controller_free(&c); return -1; }
    ag_adam_free(&s->ctrl_opt); ag_controller_free(&s->ctrl);
    s->ctrl = c; s->ctrl_opt = opt;
    s->ctrl_opt.params = &s->ctrl.params;   /* the struct moved */
    s->stage = stage; s->has_baseline = 0; s->baseline = 0.0f;
    return 0;
}
AGDEF int ag_search_state_init(ag_search_state *s, int hid_size, float ctrl_lr, float beta1, float beta2,
                               int window, uint64_t seed, ag_error *err) {
    memset(s, 0, sizeof *s);
    s->ctrl_lr = ctrl_lr; s->ctrl_beta1 = beta1; s->ctrl_beta2 = beta2;
    s->ctrl.hid_size = hid_size;
    ag_rng_seed(&s->rng, seed, 7);            /* stream 7: the search's own draws */
    if (ag_loss_window_init(&s->g_window, window, err) || ag_loss_window_init(&s->d_window, window, err) ||
        ag_search_new_controller(s, 0, err)) { ag_search_state_free(s); return -1; }
    return 0;
}
AGDEF void ag_search_state_free(ag_search_state *s) {
    if (s->ctrl_opt.m) ag_adam_free(&s->ctrl_opt);
    ag_controller_free(&s->ctrl); ag_kept_archs_free(&s->kept);
    ag_loss_window_free(&s->g_window); ag_loss_window_free(&s->d_window);
    memset(s, 0, sizeof *s);
}

/* ---- the search checkpoint: the GAN, the controller and everything of the loop ---- */
static int ag__list_add_window(ag_array_list *list, const char *name, const ag_loss_window *w, ag_error *err) {
    float *tmp = (float *)AG_MALLOC((size_t)(w->count ? w->count : 1) * sizeof(float)); int64_t shape[1]; int i, rc;
    if (!tmp) return ag__fail(err, "out of memory");
    for (i = 0; i < w->count; i++) tmp[i] = w->v[(w->head + i) % w->cap];   /* oldest first */
    shape[0] = w->count;
    rc = ag_array_list_add(list, name, AG_DTYPE_F32, 1, shape, tmp, err);
    AG_FREE(tmp);
    return rc;
}
AGDEF int ag_search_save(const char *path, const ag_search_state *s, const ag_gan *gan, const ag_ctx *ctx,
                         const char *extra, ag_error *err) {
    ag_array_list list; ag__buf meta; int rc = 0, i, len = ag_arch_len(gan->G->stage); uint32_t bits; int64_t shape[2];
    memset(&list, 0, sizeof list); memset(&meta, 0, sizeof meta);
    memcpy(&bits, &s->baseline, 4);
    ag__buf_put(&meta, "{\"format\":\"autogan.h search checkpoint 1\",\"stage\":\"%d\",\"search_iter\":\"%d\",\"ctrl_steps\":\"%lld\","
                "\"gan_iteration\":\"%lld\",\"adam_g_step\":\"%lld\",\"adam_d_step\":\"%lld\",\"adam_c_step\":\"%lld\","
                "\"rng_state\":\"%llx\",\"rng_inc\":\"%llx\",\"search_rng_state\":\"%llx\",\"search_rng_inc\":\"%llx\","
                "\"has_baseline\":\"%d\",\"baseline_bits\":\"%08lx\",\"baseline\":\"%.9g\",\"hid_size\":\"%d\",\"g_stage\":\"%d\",\"arch\":\"",
                s->stage, s->search_iter, (long long)s->ctrl_steps, (long long)gan->iteration, (long long)gan->opt_g.step,
                (long long)gan->opt_d.step, (long long)s->ctrl_opt.step, (unsigned long long)ctx->rng.state,
                (unsigned long long)ctx->rng.inc, (unsigned long long)s->rng.state, (unsigned long long)s->rng.inc,
                s->has_baseline, (unsigned long)bits, (double)s->baseline, s->ctrl.hid_size, gan->G->stage);
    for (i = 0; i < len; i++) ag__buf_put(&meta, i ? " %d" : "%d", gan->G->arch[i]);
    ag__buf_put(&meta, "\"%s%s}", extra && *extra ? "," : "", extra ? extra : "");
    if (meta.oom) rc = ag__fail(err, "%s: out of memory", path);
    if (!rc) rc = ag__list_add_params(&list, &gan->G->params, "G.", NULL, err);
    if (!rc) rc = ag__list_add_params(&list, &gan->D->params, "D.", NULL, err);
    if (!rc) rc = ag__list_add_params(&list, &gan->G->params, "adam_g.m.", gan->opt_g.m, err);
    if (!rc) rc = ag__list_add_params(&list, &gan->G->params, "adam_g.v.", gan->opt_g.v, err);
    if (!rc) rc = ag__list_add_params(&list, &gan->D->params, "adam_d.m.", gan->opt_d.m, err);
    if (!rc) rc = ag__list_add_params(&list, &gan->D->params, "adam_d.v.", gan->opt_d.v, err);
    if (!rc) rc = ag__list_add_params(&list, &s->ctrl.params, "ctrl.", NULL, err);
    if (!rc) rc = ag__list_add_params(&list, &s->ctrl.params, "adam_c.m.", s->ctrl_opt.m, err);
    if (!rc) rc = ag__list_add_params(&list, &s->ctrl.params, "adam_c.v.", s->ctrl_opt.v, err);
    if (!rc && s->kept.count) {
        int64_t *a = (int64_t *)AG_MALLOC((size_t)s->kept.count * s->kept.len * sizeof(int64_t));
        if (!a) rc = ag__fail(err, "out of memory");
        for (i = 0; !rc && i < s->kept.count * s->kept.len; i++) a[i] = s->kept.archs[i];
        shape[0] = s->kept.count; shape[1] = s->kept.len;
        if (!rc) rc = ag_array_list_add(&list, "kept.archs", AG_DTYPE_I64, 2, shape, a, err);
        AG_FREE(a);
        shape[1] = s->kept.hid_size;
        if (!rc) rc = ag_array_list_add(&list, "kept.h", AG_DTYPE_F32, 2, shape, s->kept.h, err);
        if (!rc) rc = ag_array_list_add(&list, "kept.c", AG_DTYPE_F32, 2, shape, s->kept.c, err);
    }
    if (!rc) rc = ag__list_add_window(&list, "window.g", &s->g_window, err);
    if (!rc) rc = ag__list_add_window(&list, "window.d", &s->d_window, err);
    if (!rc) rc = ag_safetensors_write(path, &list, meta.p, err);
    ag_array_list_free(&list); AG_FREE(meta.p);
    return rc;
}
/* a stored counter or small number: decimal digits only (ag__meta_counter), at most hi; a
   PRNG word or the baseline's bits: 1 to 16 hex digits. Every failure names the file and the key. */
static int ag__search_meta_int(const char *path, const char *meta, const char *key, int64_t hi, int64_t *out, ag_error *err) {
    char v[64];
    if (ag__meta_counter(meta, key, out) || *out > hi) {
        if (ag_json_get_string(meta, key, v, sizeof v)) strcpy(v, "(missing or too long)");
        return ag__fail(err, "%s: search checkpoint metadata '%s' is '%s', not an integer from 0 to %lld", path, key, v, (long long)hi);
    }
    return 0;
}
static int ag__search_meta_hex(const char *path, const char *meta, const char *key, uint64_t *out, ag_error *err) {
    char v[64];
    if (ag__meta_hex(meta, key, out)) {
        if (ag_json_get_string(meta, key, v, sizeof v)) strcpy(v, "(missing or too long)");
        return ag__fail(err, "%s: search checkpoint metadata '%s' is '%s', not 1 to 16 hex digits", path, key, v);
    }
    return 0;
}
AGDEF int ag_search_load(const char *path, ag_search_state *s, ag_gan *gan, ag_ctx *ctx, char **metadata, ag_error *err) {
    ag_array_list list; char *meta = NULL, v[128]; int rc = 0, stage = 0, gstage = 0, iter = 0, hid = 0, has_b = 0, arch[AG_ARCH_MAX], alen = 0, i;
    int64_t csteps = 0, giter = 0, sg = 0, sd = 0, sc = 0, x = 0; uint64_t rs = 0, ri = 0, ss = 0, si = 0, bits = 0;
    const int64_t big = (int64_t)1 << 53;
    ag_controller nc; ag_adam nopt; ag_kept_archs nk; const ag_array *ka = NULL, *kh = NULL, *kc = NULL, *wg, *wd;
    memset(&nc, 0, sizeof nc); memset(&nopt, 0, sizeof nopt); memset(&nk, 0, sizeof nk);
    if (metadata) *metadata = NULL;
    if (ag_safetensors_read(path, &list, &meta, err)) return -1;
    if (ag_json_get_string(meta, "format", v, sizeof v) || strcmp(v, "autogan.h search checkpoint 1"))
        rc = ag__fail(err, "%s: not an autogan.h search checkpoint (metadata 'format' missing or unknown)", path);
    if (!rc && !(rc = ag__search_meta_int(path, meta, "stage", 2, &x, err))) stage = (int)x;
    if (!rc && !(rc = ag__search_meta_int(path, meta, "g_stage", 2, &x, err))) gstage = (int)x;
    if (!rc && !(rc = ag__search_meta_int(path, meta, "search_iter", 1000000000, &x, err))) iter = (int)x;
    if (!rc && !(rc = ag__search_meta_int(path, meta, "hid_size", 4096, &x, err))) hid = (int)x;
    if (!rc && !(rc = ag__search_meta_int(path, meta, "has_baseline", 1, &x, err))) has_b = (int)x;
    if (!rc) rc = ag__search_meta_int(path, meta, "ctrl_steps", big, &csteps, err);
    if (!rc) rc = ag__search_meta_int(path, meta, "gan_iteration", big, &giter, err);
    if (!rc) rc = ag__search_meta_int(path, meta, "adam_g_step", big, &sg, err);
    if (!rc) rc = ag__search_meta_int(path, meta, "adam_d_step", big, &sd, err);
    if (!rc) rc = ag__search_meta_int(path, meta, "adam_c_step", big, &sc, err);
    if (!rc) rc = ag__search_meta_hex(path, meta, "rng_state", &rs, err);
    if (!rc) rc = ag__search_meta_hex(path, meta, "rng_inc", &ri, err);
    if (!rc) rc = ag__search_meta_hex(path, meta, "search_rng_state", &ss, err);
    if (!rc) rc = ag__search_meta_hex(path, meta, "search_rng_inc", &si, err);
    if (!rc) rc = ag__search_meta_hex(path, meta, "baseline_bits", &bits, err);
    if (!rc && (!(ri & 1) || !(si & 1)))
        rc = ag__fail(err, "%s: search checkpoint metadata '%s' is even: not a PRNG stream (always odd)", path, (ri & 1) ? "search_rng_inc" : "rng_inc");
    if (!rc) {
        uint32_t b32 = (uint32_t)bits; float b;
        memcpy(&b, &b32, 4);
        if (bits > 0xffffffffu || !isfinite(b)) rc = ag__fail(err, "%s: search checkpoint metadata 'baseline_bits' is not a finite float's 8 hex digits", path);
    }
    if (!rc && gstage != stage) rc = ag__fail(err, "%s: search checkpoint metadata 'g_stage' %d differs from 'stage' %d", path, gstage, stage);
    if (!rc && hid < 1) rc = ag__fail(err, "%s: search checkpoint metadata 'hid_size' is 0", path);
    if (!rc && hid != s->ctrl.hid_size)
        rc = ag__fail(err, "%s: the controller has hidden size %d, this search uses %d (--hid_size)", path, hid, s->ctrl.hid_size);
    if (!rc) {
        ag_error e2; e2.msg[0] = 0;
        if (ag_json_get_string(meta, "arch", v, sizeof v) || ag_arch_parse(v, arch, &alen, &e2) || ag__arch_check(gstage, arch, alen, &e2))
            rc = ag__fail(err, "%s: checkpoint architecture invalid: %s", path, e2.msg);
    }
    if (!rc) rc = ag__params_check_arrays(&gan->G->params, &list, "G.", 0, path, err);
    if (!rc) rc = ag__params_check_arrays(&gan->D->params, &list, "D.", 0, path, err);
    if (!rc) rc = ag__check_buffers(&list, &gan->G->params, "adam_g.m.", gan->opt_g.m, 0, path, err);
    if (!rc) rc = ag__check_buffers(&list, &gan->G->params, "adam_g.v.", gan->opt_g.v, 1, path, err);
    if (!rc) rc = ag__check_buffers(&list, &gan->D->params, "adam_d.m.", gan->opt_d.m, 0, path, err);
    if (!rc) rc = ag__check_buffers(&list, &gan->D->params, "adam_d.v.", gan->opt_d.v, 1, path, err);
    /* the controller of the checkpoint's stage, built aside */
    if (!rc && ag_controller_init(&nc, stage, hid, NULL, err)) rc = -1;
    if (!rc && ag_adam_init(&nopt, &nc.params, s->ctrl_lr, s->ctrl_beta1, s->ctrl_beta2, 1e-8f, err)) rc = -1;
    if (!rc) rc = ag__params_check_arrays(&nc.params, &list, "ctrl.", 0, path, err);
    if (!rc) rc = ag__check_buffers(&list, &nc.params, "adam_c.m.", nopt.m, 0, path, err);
    if (!rc) rc = ag__check_buffers(&list, &nc.params, "adam_c.v.", nopt.v, 1, path, err);
    if (!rc) {
        ka = ag_array_list_find(&list, "kept.archs"); kh = ag_array_list_find(&list, "kept.h"); kc = ag_array_list_find(&list, "kept.c");
        if (stage > 0 && !ka) rc = ag__fail(err, "%s: stage %d without kept architectures ('kept.archs' missing)", path, stage);
        else if (ka) {
            int n = ka->ndim == 2 ? (int)ka->shape[0] : -1, len = ka->ndim == 2 ? (int)ka->shape[1] : -1;
            if (ka->dtype != AG_DTYPE_I64 || n < 1 || n > 1000000 || len != ag_arch_len(stage) - nc.num_tokens)
                rc = ag__fail(err, "%s: 'kept.archs' must be I64 [count, %d]", path, ag_arch_len(stage) - nc.num_tokens);
            else if (!kh || !kc || kh->dtype != AG_DTYPE_F32 || kc->dtype != AG_DTYPE_F32 || kh->ndim != 2 || kc->ndim != 2 ||
                     kh->shape[0] != n || kc->shape[0] != n || kh->shape[1] != hid || kc->shape[1] != hid)
                rc = ag__fail(err, "%s: 'kept.h' and 'kept.c' must be F32 [%d, %d]", path, n, hid);
            else {
                int *a = (int *)AG_MALLOC((size_t)n * len * sizeof(int));
                if (!a) rc = ag__fail(err, "out of memory");
                for (i = 0; !rc && i < n * len; i++) {
                    int64_t x = ((const int64_t *)ka->data)[i];
                    a[i] = (x < 0 || x > 7) ? -1 : (int)x;
                }
                for (i = 0; !rc && i < n; i++) {
                    ag_error e2; if (ag__arch_check(stage - 1, a + (size_t)i * len, len, &e2)) rc = ag__fail(err, "%s: kept architecture %d invalid: %s", path, i, e2.msg);
                }
                if (!rc) rc = ag_kept_archs_set(&nk, n, len, hid, a, len, (const float *)kh->data, (const float *)kc->data, err);
                AG_FREE(a);
            }
        }
    }
    wg = ag_array_list_find(&list, "window.g"); wd = ag_array_list_find(&list, "window.d");
    if (!rc && (!wg || !wd || wg->dtype != AG_DTYPE_F32 || wd->dtype != AG_DTYPE_F32 || wg->ndim != 1 || wd->ndim != 1 ||
                wg->shape[0] > s->g_window.cap || wd->shape[0] > s->d_window.cap))
        rc = ag__fail(err, "%s: loss windows 'window.g'/'window.d' missing, or longer than --dynamic_reset_window %d", path, s->g_window.cap);
    if (!rc) {
        ag__params_copy_arrays(&gan->G->params, &list, "G.");
        ag__params_copy_arrays(&gan->D->params, &list, "D.");
        ag__copy_buffers(&list, &gan->G->params, "adam_g.m.", gan->opt_g.m);
        ag__copy_buffers(&list, &gan->G->params, "adam_g.v.", gan->opt_g.v);
        ag__copy_buffers(&list, &gan->D->params, "adam_d.m.", gan->opt_d.m);
        ag__copy_buffers(&list, &gan->D->params, "adam_d.v.", gan->opt_d.v);
        ag__params_copy_arrays(&nc.params, &list, "ctrl.");
        ag__copy_buffers(&list, &nc.params, "adam_c.m.", nopt.m);
        ag__copy_buffers(&list, &nc.params, "adam_c.v.", nopt.v);
        nopt.step = sc;
        ag_adam_free(&s->ctrl_opt); ag_controller_free(&s->ctrl);
        s->ctrl = nc; s->ctrl_opt = nopt; s->ctrl_opt.params = &s->ctrl.params;
        memset(&nc, 0, sizeof nc); memset(&nopt, 0, sizeof nopt);
        ag_kept_archs_free(&s->kept); s->kept = nk; memset(&nk, 0, sizeof nk);
        ag_loss_window_clear(&s->g_window); ag_loss_window_clear(&s->d_window);
        for (i = 0; i < (int)wg->shape[0]; i++) ag_loss_window_push(&s->g_window, ((const float *)wg->data)[i]);
        for (i = 0; i < (int)wd->shape[0]; i++) ag_loss_window_push(&s->d_window, ((const float *)wd->data)[i]);
        s->stage = stage; s->search_iter = iter; s->ctrl_steps = csteps;
        s->has_baseline = has_b; { uint32_t b32 = (uint32_t)bits; memcpy(&s->baseline, &b32, 4); }
        s->rng.state = ss; s->rng.inc = si;
        gan->iteration = giter; gan->opt_g.step = sg; gan->opt_d.step = sd;
        ag_generator_set_arch(gan->G, gstage, arch, alen, NULL);
        gan->D->stage = stage;
        ctx->rng.state = rs; ctx->rng.inc = ri;
        if (metadata) { *metadata = meta; meta = NULL; }
    }
    if (nopt.m) ag_adam_free(&nopt);
    ag_controller_free(&nc); ag_kept_archs_free(&nk);
    AG_FREE(meta);
    ag_array_list_free(&list);
    return rc;
}


/* ---- run directories: logs/NAME of build/search and build/train ----
   The lock is flock() on DIR/.lock (our pid written into it for the message): per open
   file, so a second ag_run_dir_lock on the same directory fails even in the same process,
   and the kernel drops it when the process ends, however it ends. */
#ifdef AG__POSIX_FILES
#include <sys/file.h>
#endif
AGDEF int ag_run_dir_lock(const char *dir, ag_run_lock *lock, ag_error *err) {
    char path[4096];
    lock->fd = -1;
    if (snprintf(path, sizeof path, "%s/.lock", dir) >= (int)sizeof path) return ag__fail(err, "%s: path too long", dir);
#ifdef AG__POSIX_FILES
    {
        int fd = open(path, O_RDWR | O_CREAT, 0666);
        char pid[32]; int n;
        if (fd < 0) return ag__fail(err, "%s: cannot create the lock file %s (%s)", dir, path, strerror(errno));
        if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
            int e = errno; ssize_t r = read(fd, pid, sizeof pid - 1);
            close(fd);
            pid[r > 0 ? r : 0] = 0;
            for (n = (int)strlen(pid); n > 0 && pid[n - 1] == ' '; n--) pid[n - 1] = 0;
            if (e == EWOULDBLOCK || e == EAGAIN)
                return ag__fail(err, "%s is in use by another process%s%s%s (its lock: %s); wait for it to end or stop it",
                                dir, pid[0] ? " (pid " : "", pid, pid[0] ? ")" : "", path);
            return ag__fail(err, "%s: cannot lock %s (%s)", dir, path, strerror(e));
        }
        n = snprintf(pid, sizeof pid, "%-23ld", (long)getpid());   /* fixed width: overwrites an older pid whole */
        if (lseek(fd, 0, SEEK_SET) == 0 && write(fd, pid, (size_t)n) == n) {}
        lock->fd = fd;
    }
#endif
    return 0;
}
AGDEF void ag_run_dir_unlock(ag_run_lock *lock) {
#ifdef AG__POSIX_FILES
    if (lock->fd >= 0) close(lock->fd);   /* closing drops the flock */
#endif
    lock->fd = -1;
}

AGDEF int ag_run_dir_describe(const char *dir, char *what, size_t cap) {
    char path[4096], *meta = NULL, fmt[64], a[32], b[32]; ag_error e; int any = 0;
    if (cap) what[0] = 0;
#if !defined(_WIN32)
    {
        DIR *d = opendir(dir); struct dirent *ent; size_t used = 0;
        if (!d) return 0;
        while ((ent = readdir(d)) != NULL) {
            if (!strcmp(ent->d_name, ".") || !strcmp(ent->d_name, "..") || !strcmp(ent->d_name, ".lock")) continue;
            if (any < 4 && cap > used + 1) used += (size_t)snprintf(what + used, cap - used, "%s%s", any ? ", " : "files: ", ent->d_name);
            if (used >= cap) used = cap - 1;
            any++;
        }
        closedir(d);
        if (any > 4 && cap > used + 1) snprintf(what + used, cap - used, ", ... (%d entries)", any);
    }
#endif
    if (!any) return 0;
    if (snprintf(path, sizeof path, "%s/Model/checkpoint.safetensors", dir) >= (int)sizeof path) return 1;
    if (ag_safetensors_read_metadata(path, &meta, &e) || !meta) return 1;
    if (ag_json_get_string(meta, "format", fmt, sizeof fmt)) fmt[0] = 0;
    if (!strcmp(fmt, "autogan.h search checkpoint 1")) {
        if (ag_json_get_string(meta, "search_iter", a, sizeof a)) strcpy(a, "?");
        if (ag_json_get_string(meta, "stage", b, sizeof b)) strcpy(b, "?");
        snprintf(what, cap, "a search (build/search; %s search iterations done, stage %s)", a, b);
    } else if (!strcmp(fmt, ag__layout_train.format)) {
        if (ag_json_get_string(meta, "g_steps", a, sizeof a)) strcpy(a, "?");
        if (ag_json_get_string(meta, "epoch", b, sizeof b)) strcpy(b, "?");
        snprintf(what, cap, "a training run (build/train; G step %s, epoch %s)", a, b);
    } else if (fmt[0]) snprintf(what, cap, "a checkpoint (%s)", fmt);
    AG_FREE(meta);
    return 1;
}

/* ===================================================================================
   11. Inception-v3, Inception score and FID
   =================================================================================== */
/* The FID Inception-v3. Every conv is BasicConv2d (conv without bias -> BatchNorm eps 1e-3
   -> ReLU); BN is folded into the conv: w' = w·γ/√(var+ε), b' = β - mean·γ/√(var+ε). */
typedef struct ag__inc_conv { char prefix[40]; int cin, cout, kh, kw, stride, ph, pw; ag_tensor *weight, *bias; } ag__inc_conv;
#define AG__INC_MAX_CONVS 96
struct ag_inception {
    ag__inc_conv convs[AG__INC_MAX_CONVS];
    int count;
    ag_tensor *fc_weight, *fc_bias;   /* [1008, 2048], [1008] */
    ag_params params;
    ag_ctx *ctx;
    float *carry; size_t carry_cap;   /* a block's output while the arena is reset */
    int batch;                        /* images per internal pass */
};

static void ag__inc_add(ag_inception *net, const char *block, const char *name, int cin, int cout, int kh, int kw, int stride, int ph, int pw) {
    ag__inc_conv *c = &net->convs[net->count++];
    if (block) snprintf(c->prefix, sizeof c->prefix, "%s.%s", block, name);
    else snprintf(c->prefix, sizeof c->prefix, "%s", name);
    c->cin = cin; c->cout = cout; c->kh = kh; c->kw = kw; c->stride = stride; c->ph = ph; c->pw = pw;
}
/* the conv list in module order (the order the forward pass uses them) */
static void ag__inc_layout(ag_inception *net) {
    static const char *const a_blocks[3] = { "Mixed_5b", "Mixed_5c", "Mixed_5d" };
    static const int a_in[3] = { 192, 256, 288 }, a_pool[3] = { 32, 64, 64 };
    static const char *const c_blocks[4] = { "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e" };
    static const int c7s[4] = { 128, 160, 160, 192 };
    static const char *const e_blocks[2] = { "Mixed_7b", "Mixed_7c" };
    static const int e_in[2] = { 1280, 2048 };
    int i;
    net->count = 0;
    ag__inc_add(net, NULL, "Conv2d_1a_3x3", 3, 32, 3, 3, 2, 0, 0);
    ag__inc_add(net, NULL, "Conv2d_2a_3x3", 32, 32, 3, 3, 1, 0, 0);
    ag__inc_add(net, NULL, "Conv2d_2b_3x3", 32, 64, 3, 3, 1, 1, 1);
    ag__inc_add(net, NULL, "Conv2d_3b_1x1", 64, 80, 1, 1, 1, 0, 0);
    ag__inc_add(net, NULL, "Conv2d_4a_3x3", 80, 192, 3, 3, 1, 0, 0);
    for (i = 0; i < 3; i++) {
        const char *b = a_blocks[i]; int in = a_in[i];
        ag__inc_add(net, b, "branch1x1", in, 64, 1, 1, 1, 0, 0);
        ag__inc_add(net, b, "branch5x5_1", in, 48, 1, 1, 1, 0, 0);
        ag__inc_add(net, b, "branch5x5_2", 48, 64, 5, 5, 1, 2, 2);
        ag__inc_add(net, b, "branch3x3dbl_1", in, 64, 1, 1, 1, 0, 0);
        ag__inc_add(net, b, "branch3x3dbl_2", 64, 96, 3, 3, 1, 1, 1);
        ag__inc_add(net, b, "branch3x3dbl_3", 96, 96, 3, 3, 1, 1, 1);
        ag__inc_add(net, b, "branch_pool", in, a_pool[i], 1, 1, 1, 0, 0);
    }
    ag__inc_add(net, "Mixed_6a", "branch3x3", 288, 384, 3, 3, 2, 0, 0);
    ag__inc_add(net, "Mixed_6a", "branch3x3dbl_1", 288, 64, 1, 1, 1, 0, 0);
    ag__inc_add(net, "Mixed_6a", "branch3x3dbl_2", 64, 96, 3, 3, 1, 1, 1);
    ag__inc_add(net, "Mixed_6a", "branch3x3dbl_3", 96, 96, 3, 3, 2, 0, 0);
    for (i = 0; i < 4; i++) {
        const char *b = c_blocks[i]; int c7 = c7s[i];
        ag__inc_add(net, b, "branch1x1", 768, 192, 1, 1, 1, 0, 0);
        ag__inc_add(net, b, "branch7x7_1", 768, c7, 1, 1, 1, 0, 0);
        ag__inc_add(net, b, "branch7x7_2", c7, c7, 1, 7, 1, 0, 3);
        ag__inc_add(net, b, "branch7x7_3", c7, 192, 7, 1, 1, 3, 0);
        ag__inc_add(net, b, "branch7x7dbl_1", 768, c7, 1, 1, 1, 0, 0);
        ag__inc_add(net, b, "branch7x7dbl_2", c7, c7, 7, 1, 1, 3, 0);
        ag__inc_add(net, b, "branch7x7dbl_3", c7, c7, 1, 7, 1, 0, 3);
        ag__inc_add(net, b, "branch7x7dbl_4", c7, c7, 7, 1, 1, 3, 0);
        ag__inc_add(net, b, "branch7x7dbl_5", c7, 192, 1, 7, 1, 0, 3);
        ag__inc_add(net, b, "branch_pool", 768, 192, 1, 1, 1, 0, 0);
    }
    ag__inc_add(net, "Mixed_7a", "branch3x3_1", 768, 192, 1, 1, 1, 0, 0);
    ag__inc_add(net, "Mixed_7a", "branch3x3_2", 192, 320, 3, 3, 2, 0, 0);
    ag__inc_add(net, "Mixed_7a", "branch7x7x3_1", 768, 192, 1, 1, 1, 0, 0);
    ag__inc_add(net, "Mixed_7a", "branch7x7x3_2", 192, 192, 1, 7, 1, 0, 3);
    ag__inc_add(net, "Mixed_7a", "branch7x7x3_3", 192, 192, 7, 1, 1, 3, 0);
    ag__inc_add(net, "Mixed_7a", "branch7x7x3_4", 192, 192, 3, 3, 2, 0, 0);
    for (i = 0; i < 2; i++) {
        const char *b = e_blocks[i]; int in = e_in[i];
        ag__inc_add(net, b, "branch1x1", in, 320, 1, 1, 1, 0, 0);
        ag__inc_add(net, b, "branch3x3_1", in, 384, 1, 1, 1, 0, 0);
        ag__inc_add(net, b, "branch3x3_2a", 384, 384, 1, 3, 1, 0, 1);
        ag__inc_add(net, b, "branch3x3_2b", 384, 384, 3, 1, 1, 1, 0);
        ag__inc_add(net, b, "branch3x3dbl_1", in, 448, 1, 1, 1, 0, 0);
        ag__inc_add(net, b, "branch3x3dbl_2", 448, 384, 3, 3, 1, 1, 1);
        ag__inc_add(net, b, "branch3x3dbl_3a", 384, 384, 1, 3, 1, 0, 1);
        ag__inc_add(net, b, "branch3x3dbl_3b", 384, 384, 3, 1, 1, 1, 0);
        ag__inc_add(net, b, "branch_pool", in, 192, 1, 1, 1, 0, 0);
    }
}

AGDEF void ag_inception_free(ag_inception *net) {
    if (!net) return;
    ag_params_free(&net->params);
    ag_ctx_free(net->ctx);
    AG_FREE(net->carry);
    AG_FREE(net);
}

static const ag_array *ag__inc_find(const ag_array_list *sd, const char *prefix, const char *suffix, int ndim,
                                    const int64_t *shape, ag_error *err) {
    char key[96]; const ag_array *a; int d;
    snprintf(key, sizeof key, "%s%s", prefix, suffix);
    a = ag_array_list_find(sd, key);
    if (!a) { ag__fail(err, "Inception weights: '%s' is missing", key); return NULL; }
    if (a->dtype != AG_DTYPE_F32 && a->dtype != AG_DTYPE_F64 && a->dtype != AG_DTYPE_F16 && a->dtype != AG_DTYPE_BF16) {
        ag__fail(err, "Inception weights: '%s' is not a float tensor", key); return NULL;
    }
    if (a->ndim != ndim) { ag__fail(err, "Inception weights: '%s' has %d dims, expected %d", key, a->ndim, ndim); return NULL; }
    for (d = 0; d < ndim; d++) if (a->shape[d] != shape[d]) {
        ag__fail(err, "Inception weights: '%s' dim %d is %lld, expected %lld", key, d, (long long)a->shape[d], (long long)shape[d]);
        return NULL;
    }
    return a;
}

AGDEF int ag_inception_random_state_dict(ag_array_list *sd, ag_rng *rng, ag_error *err) {
    static const char *const bn[4] = { "weight", "bias", "running_mean", "running_var" };
    ag_inception *layout = (ag_inception *)AG_MALLOC(sizeof(ag_inception)); float *buf = NULL; size_t cap = 0; int i, k, rc = 0;
    int64_t fw[2] = { 1008, 2048 }, fb[1] = { 1008 };
    if (!layout) return ag__fail(err, "out of memory");
    memset(layout, 0, sizeof *layout);
    ag__inc_layout(layout);
    for (i = 0; i < layout->count && !rc; i++) {
        const ag__inc_conv *c = &layout->convs[i]; int64_t ws[4], cs[1]; char name[96]; size_t j;
        size_t n = (size_t)c->cout * c->cin * c->kh * c->kw;
        if (n > cap) {
            AG_FREE(buf); cap = n; buf = (float *)AG_MALLOC(n * sizeof(float));
            if (!buf) { rc = ag__fail(err, "out of memory"); break; }
        }
        ws[0] = c->cout; ws[1] = c->cin; ws[2] = c->kh; ws[3] = c->kw; cs[0] = c->cout;
        ag_rng_fill_normal(rng, buf, n, 0.0f, (float)sqrt(2.0 / (double)(c->cin * c->kh * c->kw)));
        snprintf(name, sizeof name, "%s.conv.weight", c->prefix);
        rc = ag_array_list_add(sd, name, AG_DTYPE_F32, 4, ws, buf, err);
        for (k = 0; k < 4 && !rc; k++) {
            for (j = 0; j < (size_t)c->cout; j++) buf[j] = (k == 0 || k == 3) ? 1.0f : 0.0f;
            snprintf(name, sizeof name, "%s.bn.%s", c->prefix, bn[k]);
            rc = ag_array_list_add(sd, name, AG_DTYPE_F32, 1, cs, buf, err);
        }
    }
    if (!rc) rc = ag_array_list_add(sd, "fc.weight", AG_DTYPE_F32, 2, fw, NULL, err);
    if (!rc) rc = ag_array_list_add(sd, "fc.bias", AG_DTYPE_F32, 1, fb, NULL, err);
    AG_FREE(buf); AG_FREE(layout);
    return rc;
}
AGDEF ag_inception *ag_inception_from_arrays(const ag_array_list *sd, ag_error *err) {
    ag_inception *net = (ag_inception *)AG_MALLOC(sizeof(ag_inception)); int i;
    float *tmp = NULL, *g = NULL, *b = NULL, *m = NULL, *v = NULL;
    if (!net) { ag__fail(err, "out of memory for the Inception network"); return NULL; }
    memset(net, 0, sizeof *net);
    net->batch = 8;
    ag__inc_layout(net);
    net->ctx = ag_ctx_create(0, err);
    if (!net->ctx) goto fail;
    for (i = 0; i < net->count; i++) {
        ag__inc_conv *c = &net->convs[i]; int64_t ws[4], cs[1]; const ag_array *aw, *ag, *ab, *am, *av;
        char name[96]; int shape[4], o; size_t per, j;
        ws[0] = c->cout; ws[1] = c->cin; ws[2] = c->kh; ws[3] = c->kw; cs[0] = c->cout;
        if (!(aw = ag__inc_find(sd, c->prefix, ".conv.weight", 4, ws, err)) || !(ag = ag__inc_find(sd, c->prefix, ".bn.weight", 1, cs, err)) ||
            !(ab = ag__inc_find(sd, c->prefix, ".bn.bias", 1, cs, err)) || !(am = ag__inc_find(sd, c->prefix, ".bn.running_mean", 1, cs, err)) ||
            !(av = ag__inc_find(sd, c->prefix, ".bn.running_var", 1, cs, err))) goto fail;
        shape[0] = c->cout; shape[1] = c->cin; shape[2] = c->kh; shape[3] = c->kw;
        snprintf(name, sizeof name, "%s.weight", c->prefix);
        if (!(c->weight = ag_params_add(&net->params, name, AG_ENTRY_BUFFER, 4, shape, err))) goto fail;
        snprintf(name, sizeof name, "%s.bias", c->prefix);
        if (!(c->bias = ag_params_add(&net->params, name, AG_ENTRY_BUFFER, 1, &c->cout, err))) goto fail;
        per = (size_t)c->cin * c->kh * c->kw;
        tmp = (float *)AG_MALLOC((per * c->cout + 4 * (size_t)c->cout) * sizeof(float));
        if (!tmp) { ag__fail(err, "out of memory loading Inception weights"); goto fail; }
        g = tmp + per * c->cout; b = g + c->cout; m = b + c->cout; v = m + c->cout;
        ag_array_to_f32(aw, tmp, NULL); ag_array_to_f32(ag, g, NULL); ag_array_to_f32(ab, b, NULL);
        ag_array_to_f32(am, m, NULL); ag_array_to_f32(av, v, NULL);
        for (o = 0; o < c->cout; o++) {
            double scale;
            if (!(v[o] >= 0.0f) || !isfinite(g[o]) || !isfinite(b[o]) || !isfinite(m[o])) {
                ag__fail(err, "Inception weights: '%s.bn' has a negative or non-finite statistic at channel %d", c->prefix, o);
                goto fail;
            }
            scale = (double)g[o] / sqrt((double)v[o] + 1e-3);
            for (j = 0; j < per; j++) {
                float wv = tmp[(size_t)o * per + j];
                if (!isfinite(wv)) { ag__fail(err, "Inception weights: '%s.conv.weight' is not finite", c->prefix); goto fail; }
                c->weight->data[(size_t)o * per + j] = (float)(wv * scale);
            }
            c->bias->data[o] = (float)((double)b[o] - (double)m[o] * scale);
        }
        AG_FREE(tmp); tmp = NULL;
    }
    {
        int64_t fw[2], fb[1]; const ag_array *a1, *a2; int shape[2]; size_t j;
        fw[0] = 1008; fw[1] = 2048; fb[0] = 1008;
        if (!(a1 = ag__inc_find(sd, "fc", ".weight", 2, fw, err)) || !(a2 = ag__inc_find(sd, "fc", ".bias", 1, fb, err))) goto fail;
        shape[0] = 1008; shape[1] = 2048;
        if (!(net->fc_weight = ag_params_add(&net->params, "fc.weight", AG_ENTRY_BUFFER, 2, shape, err))) goto fail;
        if (!(net->fc_bias = ag_params_add(&net->params, "fc.bias", AG_ENTRY_BUFFER, 1, shape, err))) goto fail;
        ag_array_to_f32(a1, net->fc_weight->data, NULL); ag_array_to_f32(a2, net->fc_bias->data, NULL);
        for (j = 0; j < net->fc_weight->size; j++) if (!isfinite(net->fc_weight->data[j])) { ag__fail(err, "Inception weights: 'fc.weight' is not finite"); goto fail; }
    }
    return net;
fail:
    AG_FREE(tmp);
    ag_inception_free(net);
    return NULL;
}
AGDEF void ag_inception_set_threads(ag_inception *net, int n) { ag_ctx_set_threads(net->ctx, n); }

/* conv (BN folded) + ReLU in place, no tape */
static ag_tensor *ag__inc_conv_apply(ag_inception *net, int *cursor, ag_tensor *x) {
    ag__inc_conv *c = &net->convs[(*cursor)++]; ag_tensor *y;
    y = ag_conv2d(net->ctx, x, c->weight, c->bias, c->stride, c->stride, c->ph, c->pw);
    if (y) {
        float *d = y->data; long n = (long)y->size, i; int ag__nt = ag__threads_for(net->ctx, y->size); (void)ag__nt;
        AG__PARALLEL_FOR(ag__nt)
        for (i = 0; i < n; i++) d[i] = d[i] > 0.0f ? d[i] : 0.0f;
    }
    return y;
}
/* keep t, drop everything else in the arena (a block's temporaries) */
static ag_tensor *ag__inc_carry(ag_inception *net, ag_tensor *t) {
    int shape[4], d;
    if (!t) return NULL;
    if (t->size > net->carry_cap) {
        float *p = (float *)AG_REALLOC(net->carry, t->size * sizeof(float));
        if (!p) return (ag_tensor *)ag__ctx_fail(net->ctx, "out of memory between Inception blocks");
        net->carry = p; net->carry_cap = t->size;
    }
    memcpy(net->carry, t->data, t->size * sizeof(float));
    for (d = 0; d < 4; d++) shape[d] = t->shape[d];
    ag_ctx_reset(net->ctx);
    return ag_tensor_from(net->ctx, 4, shape, net->carry);
}
static ag_tensor *ag__inc_cat(ag_ctx *ctx, ag_tensor *a, ag_tensor *b, ag_tensor *c, ag_tensor *d) {
    ag_tensor *xs[4]; int n = 0;
    if (!a || !b || !c) return NULL;
    xs[n++] = a; xs[n++] = b; xs[n++] = c; if (d) xs[n++] = d;
    return ag_concat_channels(ctx, xs, n);
}
static ag_tensor *ag__inc_forward_chunk(ag_inception *net, ag_tensor *x) {
    ag_ctx *ctx = net->ctx; int cur = 0, i; ag_tensor *b1, *b2, *b3, *b4, *t;
    x = ag__inc_carry(net, ag__inc_conv_apply(net, &cur, x));                         /* 32 x 149 x 149 */
    x = ag__inc_carry(net, ag__inc_conv_apply(net, &cur, x));                         /* 32 x 147 x 147 */
    x = ag__inc_carry(net, ag__inc_conv_apply(net, &cur, x));                         /* 64 x 147 x 147 */
    x = ag__inc_carry(net, ag_max_pool2d(ctx, x, 3, 2, 0));                           /* 64 x 73 x 73 */
    x = ag__inc_carry(net, ag__inc_conv_apply(net, &cur, x));                         /* 80 x 73 x 73 */
    x = ag__inc_carry(net, ag__inc_conv_apply(net, &cur, x));                         /* 192 x 71 x 71 */
    x = ag__inc_carry(net, ag_max_pool2d(ctx, x, 3, 2, 0));                           /* 192 x 35 x 35 */
    for (i = 0; i < 3; i++) {                                                         /* Mixed_5b-d */
        b1 = ag__inc_conv_apply(net, &cur, x);
        b2 = ag__inc_conv_apply(net, &cur, ag__inc_conv_apply(net, &cur, x));
        b3 = ag__inc_conv_apply(net, &cur, ag__inc_conv_apply(net, &cur, ag__inc_conv_apply(net, &cur, x)));
        b4 = ag__inc_conv_apply(net, &cur, ag_avg_pool2d(ctx, x, 3, 1, 1, 0));
        x = ag__inc_carry(net, ag__inc_cat(ctx, b1, b2, b3, b4));
    }
    b1 = ag__inc_conv_apply(net, &cur, x);                                            /* Mixed_6a */
    b2 = ag__inc_conv_apply(net, &cur, ag__inc_conv_apply(net, &cur, ag__inc_conv_apply(net, &cur, x)));
    b3 = ag_max_pool2d(ctx, x, 3, 2, 0);
    x = ag__inc_carry(net, ag__inc_cat(ctx, b1, b2, b3, NULL));                       /* 768 x 17 x 17 */
    for (i = 0; i < 4; i++) {                                                         /* Mixed_6b-e */
        b1 = ag__inc_conv_apply(net, &cur, x);
        t = ag__inc_conv_apply(net, &cur, x);
        b2 = ag__inc_conv_apply(net, &cur, ag__inc_conv_apply(net, &cur, t));
        t = ag__inc_conv_apply(net, &cur, x);
        t = ag__inc_conv_apply(net, &cur, ag__inc_conv_apply(net, &cur, t));
        b3 = ag__inc_conv_apply(net, &cur, ag__inc_conv_apply(net, &cur, t));
        b4 = ag__inc_conv_apply(net, &cur, ag_avg_pool2d(ctx, x, 3, 1, 1, 0));
        x = ag__inc_carry(net, ag__inc_cat(ctx, b1, b2, b3, b4));
    }
    b1 = ag__inc_conv_apply(net, &cur, ag__inc_conv_apply(net, &cur, x));             /* Mixed_7a */
    t = ag__inc_conv_apply(net, &cur, ag__inc_conv_apply(net, &cur, x));
    b2 = ag__inc_conv_apply(net, &cur, ag__inc_conv_apply(net, &cur, t));
    b3 = ag_max_pool2d(ctx, x, 3, 2, 0);
    x = ag__inc_carry(net, ag__inc_cat(ctx, b1, b2, b3, NULL));                       /* 1280 x 8 x 8 */
    for (i = 0; i < 2; i++) {                                                         /* Mixed_7b, 7c */
        ag_tensor *p[2];
        b1 = ag__inc_conv_apply(net, &cur, x);
        t = ag__inc_conv_apply(net, &cur, x);
        p[0] = ag__inc_conv_apply(net, &cur, t); p[1] = ag__inc_conv_apply(net, &cur, t);
        b2 = (p[0] && p[1]) ? ag_concat_channels(ctx, p, 2) : NULL;
        t = ag__inc_conv_apply(net, &cur, ag__inc_conv_apply(net, &cur, x));
        p[0] = ag__inc_conv_apply(net, &cur, t); p[1] = ag__inc_conv_apply(net, &cur, t);
        b3 = (p[0] && p[1]) ? ag_concat_channels(ctx, p, 2) : NULL;
        /* the pool branch: average (count_include_pad false) in 7b, MAX in 7c */
        b4 = ag__inc_conv_apply(net, &cur, i == 0 ? ag_avg_pool2d(ctx, x, 3, 1, 1, 0) : ag_max_pool2d(ctx, x, 3, 1, 1));
        x = ag__inc_carry(net, ag__inc_cat(ctx, b1, b2, b3, b4));                     /* 2048 x 8 x 8 */
    }
    return x;
}

AGDEF int ag_inception_forward(ag_inception *net, const float *images, int n, float *pool3, float *logits,
                               int with_bias, ag_error *err) {
    int i0, shape[4]; size_t per = (size_t)3 * 299 * 299;
    if (n < 0) return ag__fail(err, "Inception: %d images", n);
    for (i0 = 0; i0 < n; i0 += net->batch) {
        int cnt = n - i0 < net->batch ? n - i0 : net->batch, i, c; ag_tensor *x, *feat, *lg; size_t j;
        ag_ctx_reset(net->ctx);
        ag_ctx_clear_error(net->ctx);
        ag_ctx_set_grad_enabled(net->ctx, 0);
        shape[0] = cnt; shape[1] = 3; shape[2] = shape[3] = 299;
        x = ag_tensor_from(net->ctx, 4, shape, images + (size_t)i0 * per);
        for (j = 0; x && j < x->size; j++) if (!isfinite(x->data[j])) return ag__fail(err, "Inception: image %d holds a NaN or infinity", i0 + (int)(j / per));
        x = ag__inc_forward_chunk(net, x);
        feat = ag_sum_hw(net->ctx, x);          /* global average pool: sum / 64 */
        if (!feat) return ag__fail(err, "Inception forward: %s", ag_ctx_error(net->ctx));
        for (i = 0; i < cnt; i++) for (c = 0; c < 2048; c++) feat->data[(size_t)i * 2048 + c] /= (float)(x->shape[2] * x->shape[3]);
        if (pool3) memcpy(pool3 + (size_t)i0 * 2048, feat->data, (size_t)cnt * 2048 * sizeof(float));
        if (logits) {
            lg = ag_linear(net->ctx, feat, net->fc_weight, with_bias ? net->fc_bias : NULL);
            if (!lg) return ag__fail(err, "Inception fc: %s", ag_ctx_error(net->ctx));
            memcpy(logits + (size_t)i0 * 1008, lg->data, (size_t)cnt * 1008 * sizeof(float));
        }
    }
    ag_ctx_reset(net->ctx);
    return 0;
}

AGDEF void ag_inception_preprocess_tf(const unsigned char *hwc, int h, int w, float *out) {
    /* TF1 resize_bilinear (align_corners=False, half_pixel_centers=False): src = dst*in/out,
       lerp along x on both rows, then along y; all in float like TF */
    float sy = (float)h / 299.0f, sx = (float)w / 299.0f; int y, x, c;
    for (y = 0; y < 299; y++) {
        float fy = (float)y * sy; int y0 = (int)floorf(fy), y1 = y0 + 1 < h ? y0 + 1 : h - 1; float ly = fy - (float)y0;
        for (x = 0; x < 299; x++) {
            float fx = (float)x * sx; int x0 = (int)floorf(fx), x1 = x0 + 1 < w ? x0 + 1 : w - 1; float lx = fx - (float)x0;
            for (c = 0; c < 3; c++) {
                float tl = hwc[((size_t)y0 * w + x0) * 3 + c], tr = hwc[((size_t)y0 * w + x1) * 3 + c];
                float bl = hwc[((size_t)y1 * w + x0) * 3 + c], br = hwc[((size_t)y1 * w + x1) * 3 + c];
                float top = tl + (tr - tl) * lx, bot = bl + (br - bl) * lx, v = top + (bot - top) * ly;
                out[((size_t)c * 299 + y) * 299 + x] = (v - 128.0f) / 128.0f;
            }
        }
    }
}
AGDEF void ag_inception_preprocess_pytorch(const unsigned char *hwc, int h, int w, float *out) {
    /* x/255, then F.interpolate(bilinear, align_corners=False) to 299, then 2x - 1 */
    float scy = (float)h / 299.0f, scx = (float)w / 299.0f; int y, x, c;
    for (y = 0; y < 299; y++) {
        float fy = scy * ((float)y + 0.5f) - 0.5f; int y0, y1; float ly;
        if (fy < 0.0f) fy = 0.0f;
        y0 = (int)fy; if (y0 > h - 1) y0 = h - 1; y1 = y0 + (y0 < h - 1 ? 1 : 0); ly = fy - (float)y0;
        for (x = 0; x < 299; x++) {
            float fx = scx * ((float)x + 0.5f) - 0.5f; int x0, x1; float lx;
            if (fx < 0.0f) fx = 0.0f;
            x0 = (int)fx; if (x0 > w - 1) x0 = w - 1; x1 = x0 + (x0 < w - 1 ? 1 : 0); lx = fx - (float)x0;
            for (c = 0; c < 3; c++) {
                float tl = hwc[((size_t)y0 * w + x0) * 3 + c] / 255.0f, tr = hwc[((size_t)y0 * w + x1) * 3 + c] / 255.0f;
                float bl = hwc[((size_t)y1 * w + x0) * 3 + c] / 255.0f, br = hwc[((size_t)y1 * w + x1) * 3 + c] / 255.0f;
                float v = (1.0f - ly) * ((1.0f - lx) * tl + lx * tr) + ly * ((1.0f - lx) * bl + lx * br);
                out[((size_t)c * 299 + y) * 299 + x] = 2.0f * v - 1.0f;
            }
        }
    }
}

AGDEF int ag_inception_score(const float *logits, int n, int classes, int splits, double *mean, double *stdev, ag_error *err) {
    double *p, *q, *scores, m = 0.0, v = 0.0; int k, i, j;
    if (splits < 1 || n < splits || classes < 2) return ag__fail(err, "Inception score: %d images in %d splits (need at least one image per split)", n, splits);
    p = (double *)AG_MALLOC((size_t)classes * sizeof(double) * 2 + (size_t)splits * sizeof(double));
    if (!p) return ag__fail(err, "out of memory");
    q = p + classes; scores = q + classes;
    for (i = 0; i < n * classes; i++) if (!isfinite(logits[i])) { AG_FREE(p); return ag__fail(err, "Inception score: logit %d of image %d is not finite", i % classes, i / classes); }
    for (k = 0; k < splits; k++) {
        int lo = (int)((int64_t)k * n / splits), hi = (int)((int64_t)(k + 1) * n / splits); double kl = 0.0;
        for (j = 0; j < classes; j++) q[j] = 0.0;
        for (i = lo; i < hi; i++) {   /* q = mean softmax over the split */
            const float *l = logits + (size_t)i * classes; double mx = l[0], s = 0.0;
            for (j = 1; j < classes; j++) if (l[j] > mx) mx = l[j];
            for (j = 0; j < classes; j++) s += exp((double)l[j] - mx);
            for (j = 0; j < classes; j++) q[j] += exp((double)l[j] - mx) / s;
        }
        for (j = 0; j < classes; j++) q[j] /= (double)(hi - lo);
        for (i = lo; i < hi; i++) {
            const float *l = logits + (size_t)i * classes; double mx = l[0], s = 0.0, lse;
            for (j = 1; j < classes; j++) if (l[j] > mx) mx = l[j];
            for (j = 0; j < classes; j++) s += exp((double)l[j] - mx);
            lse = mx + log(s);
            for (j = 0; j < classes; j++) {
                double lp = (double)l[j] - lse, pj = exp(lp);
                if (pj > 0.0) kl += pj * (lp - log(q[j]));
            }
        }
        scores[k] = exp(kl / (double)(hi - lo));
        m += scores[k];
    }
    m /= splits;
    for (k = 0; k < splits; k++) v += (scores[k] - m) * (scores[k] - m);
    *mean = m; *stdev = sqrt(v / splits);
    AG_FREE(p);
    return 0;
}

AGDEF int ag_fid_stats_init(ag_fid_stats *s, int dim, ag_error *err) {
    memset(s, 0, sizeof *s);
    if (dim < 1 || dim > 65536) return ag__fail(err, "FID statistics: dimension %d", dim);
    s->dim = dim;
    s->shift = (double *)AG_MALLOC((size_t)dim * sizeof(double) * 3);
    s->sumsq = (double *)AG_MALLOC((size_t)dim * dim * sizeof(double));
    if (!s->shift || !s->sumsq) { ag_fid_stats_free(s); return ag__fail(err, "out of memory for FID statistics (%d dims)", dim); }
    s->sum = s->shift + dim; s->mu = s->sum + dim;
    memset(s->shift, 0, (size_t)dim * 3 * sizeof(double));
    memset(s->sumsq, 0, (size_t)dim * dim * sizeof(double));
    return 0;
}
/* sums of (x - shift) and its outer products (upper triangle); the shift (the first
   batch's mean) keeps the covariance free of cancellation */
AGDEF int ag_fid_stats_add(ag_fid_stats *s, const float *x, int n, ag_error *err) {
    int d = s->dim, i; long r; double *xs;
    if (n <= 0) return 0;
    for (i = 0; i < n; i++) for (r = 0; r < d; r++)
        if (!isfinite(x[(size_t)i * d + r])) return ag__fail(err, "FID statistics: feature %ld of image %d (of this batch) is NaN or infinite", r, i);
    if (s->count == 0) {
        for (r = 0; r < d; r++) { double m = 0; for (i = 0; i < n; i++) m += x[(size_t)i * d + r]; s->shift[r] = m / n; }
    }
    xs = (double *)AG_MALLOC((size_t)n * d * sizeof(double));
    if (!xs) return ag__fail(err, "FID statistics: out of memory for a batch of %d x %d", n, d);
    for (i = 0; i < n; i++) for (r = 0; r < d; r++) {
        double v = (double)x[(size_t)i * d + r] - s->shift[r];
        xs[(size_t)i * d + r] = v; s->sum[r] += v;
    }
    {
        int ag__nt = ag__threads(0, (size_t)n * d * d, 1000001);
        (void)ag__nt;
        AG__PARALLEL_FOR(ag__nt)
        for (r = 0; r < d; r++) {
            double *row = s->sumsq + (size_t)r * d; int k, j;
            for (k = 0; k < n; k++) {
                const double *xk = xs + (size_t)k * d; double a = xk[r];
                for (j = (int)r; j < d; j++) row[j] += a * xk[j];
            }
        }
    }
    AG_FREE(xs);
    s->count += n;
    return 0;
}
AGDEF int ag_fid_stats_finish(ag_fid_stats *s, ag_error *err) {
    int d = s->dim, i, j; double n = (double)s->count;
    if (s->count < 2) return ag__fail(err, "FID statistics need at least 2 images (have %lld)", (long long)s->count);
    if (!s->sigma) {
        s->sigma = (double *)AG_MALLOC((size_t)d * d * sizeof(double));
        if (!s->sigma) return ag__fail(err, "out of memory");
    }
    for (i = 0; i < d; i++) s->mu[i] = s->shift[i] + s->sum[i] / n;
    for (i = 0; i < d; i++) for (j = i; j < d; j++) {
        double c = (s->sumsq[(size_t)i * d + j] - s->sum[i] * s->sum[j] / n) / (n - 1.0);
        s->sigma[(size_t)i * d + j] = c; s->sigma[(size_t)j * d + i] = c;
    }
    return 0;
}
AGDEF void ag_fid_stats_free(ag_fid_stats *s) { AG_FREE(s->shift); AG_FREE(s->sumsq); AG_FREE(s->sigma); memset(s, 0, sizeof *s); }
/* what any mean and covariance satisfy (finite values given): |mu|^2 and the trace finite
   (so FID cannot overflow), a non-negative diagonal, symmetry, and Cauchy-Schwarz
   |s_ij| <= sqrt(s_ii s_jj), each to 1e-6 relative (published statistics are float64 or
   float32 roundings of np.cov) */
static int ag__fid_stats_check(const char *path, const double *mu, const double *sg, size_t n, ag_error *err) {
    size_t i, j; double m2 = 0.0, tr = 0.0;
    for (i = 0; i < n; i++) { m2 += mu[i] * mu[i]; tr += sg[i * n + i]; }
    if (!isfinite(m2)) return ag__fail(err, "%s: 'mu' is too large (its squared norm overflows)", path);
    if (!isfinite(tr)) return ag__fail(err, "%s: 'sigma' is too large (its trace overflows)", path);
    for (i = 0; i < n; i++)
        if (!(sg[i * n + i] >= 0.0)) return ag__fail(err, "%s: 'sigma' is not a covariance: its diagonal element [%lu, %lu] is %g (< 0)", path, (unsigned long)i, (unsigned long)i, sg[i * n + i]);
    for (i = 0; i < n; i++) for (j = i + 1; j < n; j++) {
        double a = sg[i * n + j], b = sg[j * n + i], lim = sqrt(sg[i * n + i]) * sqrt(sg[j * n + j]), tol = 1e-6 * lim + 1e-300;
        if (!(fabs(a - b) <= tol + 1e-6 * fabs(a)))
            return ag__fail(err, "%s: 'sigma' is not symmetric: [%lu, %lu] = %.9g but [%lu, %lu] = %.9g", path, (unsigned long)i, (unsigned long)j, a, (unsigned long)j, (unsigned long)i, b);
        if (!(fabs(a) <= lim + tol))
            return ag__fail(err, "%s: 'sigma' is not a covariance: |[%lu, %lu]| = %g exceeds sqrt([%lu, %lu] * [%lu, %lu]) = %g", path, (unsigned long)i, (unsigned long)j, fabs(a),
                            (unsigned long)i, (unsigned long)i, (unsigned long)j, (unsigned long)j, lim);
    }
    return 0;
}
AGDEF int ag_fid_stats_load(const char *path, ag_fid_stats *s, ag_error *err) {
    ag_array_list l; ag_array *m, *sg; size_t n, i; int rc = 0;
    memset(s, 0, sizeof *s);
    if (ag_npz_read(path, &l, err)) return -1;
    m = ag_array_list_find(&l, "mu"); sg = ag_array_list_find(&l, "sigma");
    if (!m || !sg) rc = ag__fail(err, "%s: needs arrays 'mu' and 'sigma'", path);
    else if (m->ndim != 1 || sg->ndim != 2 || sg->shape[0] != m->shape[0] || sg->shape[1] != m->shape[0] || m->shape[0] < 1 || m->shape[0] > 65536 ||
             (m->dtype != AG_DTYPE_F64 && m->dtype != AG_DTYPE_F32) || (sg->dtype != AG_DTYPE_F64 && sg->dtype != AG_DTYPE_F32))
        rc = ag__fail(err, "%s: 'mu' must be a float vector [d] and 'sigma' a float matrix [d, d]", path);
    if (!rc) {
        n = (size_t)m->shape[0]; s->dim = (int)n;
        s->shift = (double *)AG_MALLOC(n * 3 * sizeof(double)); s->sigma = (double *)AG_MALLOC(n * n * sizeof(double));
        if (!s->shift || !s->sigma) rc = ag__fail(err, "%s: out of memory", path);
        else {
            memset(s->shift, 0, n * 2 * sizeof(double));
            s->sum = s->shift + n; s->mu = s->sum + n;
            for (i = 0; i < n; i++) s->mu[i] = m->dtype == AG_DTYPE_F64 ? ((double *)m->data)[i] : ((float *)m->data)[i];
            for (i = 0; i < n * n; i++) s->sigma[i] = sg->dtype == AG_DTYPE_F64 ? ((double *)sg->data)[i] : ((float *)sg->data)[i];
            for (i = 0; i < n && !rc; i++) if (!isfinite(s->mu[i])) rc = ag__fail(err, "%s: 'mu' holds NaN or infinity (element %lu)", path, (unsigned long)i);
            for (i = 0; i < n * n && !rc; i++)
                if (!isfinite(s->sigma[i])) rc = ag__fail(err, "%s: 'sigma' holds NaN or infinity (element [%lu, %lu])", path, (unsigned long)(i / n), (unsigned long)(i % n));
            if (!rc) rc = ag__fid_stats_check(path, s->mu, s->sigma, n, err);
        }
    }
    ag_array_list_free(&l);
    if (rc) ag_fid_stats_free(s);
    return rc;
}

/* eigenvalues of a symmetric matrix: Householder reduction to tridiagonal form, then the
   implicit QL iteration with Wilkinson-type shifts */
AGDEF int ag_sym_eigenvalues(double *a, int n, double *d, ag_error *err) {
    double *e, *v, *p, anorm; int k, l, m, iter;
    if (n < 1) return ag__fail(err, "eigenvalues: empty matrix");
    e = (double *)AG_MALLOC((size_t)n * 3 * sizeof(double));
    if (!e) return ag__fail(err, "out of memory");
    v = e + n; p = v + n;
    for (k = 0; k + 2 < n; k++) {
        int len = n - k - 1, i, j; double alpha = 0.0, vn = 0.0, K = 0.0;
        for (i = 0; i < len; i++) { v[i] = a[(size_t)(k + 1 + i) * n + k]; alpha += v[i] * v[i]; }
        alpha = sqrt(alpha);
        d[k] = a[(size_t)k * n + k];
        if (alpha == 0.0) { e[k] = 0.0; continue; }
        if (v[0] > 0) alpha = -alpha;
        e[k] = alpha;
        v[0] -= alpha;
        for (i = 0; i < len; i++) vn += v[i] * v[i];
        vn = sqrt(vn);
        if (vn == 0.0) continue;
        for (i = 0; i < len; i++) v[i] /= vn;
        /* trailing block A22 (rows/cols k+1..): p = A22 v, K = vᵀp, w = p - K v, A22 -= 2(v wᵀ + w vᵀ) */
        {
            long ii; int ag__nt = ag__threads(0, (size_t)len * len, 262145);
            (void)ag__nt;
            AG__PARALLEL_FOR(ag__nt)
            for (ii = 0; ii < len; ii++) {
                const double *row = a + (size_t)(k + 1 + ii) * n + k + 1; double sacc = 0.0; int jj;
                for (jj = 0; jj < len; jj++) sacc += row[jj] * v[jj];
                p[ii] = sacc;
            }
            for (i = 0; i < len; i++) K += v[i] * p[i];
            for (i = 0; i < len; i++) p[i] -= K * v[i];
            AG__PARALLEL_FOR(ag__nt)
            for (ii = 0; ii < len; ii++) {
                double *row = a + (size_t)(k + 1 + ii) * n + k + 1; double vi = 2.0 * v[ii], wi = 2.0 * p[ii]; int jj;
                for (jj = 0; jj < len; jj++) row[jj] -= vi * p[jj] + wi * v[jj];
            }
        }
        (void)j;
    }
    if (n >= 2) { d[n - 2] = a[(size_t)(n - 2) * n + n - 2]; e[n - 2] = a[(size_t)(n - 1) * n + n - 2]; }
    d[n - 1] = a[(size_t)(n - 1) * n + n - 1];
    e[n - 1] = 0.0;
    {   /* the norm of the tridiagonal matrix: the floor of the deflation test below */
        int i2; anorm = 0.0;
        for (i2 = 0; i2 < n; i2++) { double r = fabs(d[i2]) + fabs(e[i2]) + (i2 ? fabs(e[i2 - 1]) : 0.0); if (r > anorm) anorm = r; }
    }
    for (l = 0; l < n; l++) {
        iter = 0;
        do {
            /* deflate when e[m] is negligible next to its diagonal neighbours; after 30
               sweeps also when it is at rounding level of the whole matrix (clusters of
               zero eigenvalues of a singular covariance never pass the relative test) */
            for (m = l; m < n - 1; m++) {
                double dd = fabs(d[m]) + fabs(d[m + 1]);
                if (fabs(e[m]) <= DBL_EPSILON * dd || (iter > 30 && fabs(e[m]) <= DBL_EPSILON * anorm)) break;
            }
            if (m != l) {
                double g, r, s, c, pp, f, b; int i;
                if (iter++ == 100) { AG_FREE(e); return ag__fail(err, "eigenvalues: no convergence"); }
                g = (d[l + 1] - d[l]) / (2.0 * e[l]);
                r = hypot(g, 1.0);
                g = d[m] - d[l] + e[l] / (g + (g >= 0 ? fabs(r) : -fabs(r)));
                s = c = 1.0; pp = 0.0;
                for (i = m - 1; i >= l; i--) {
                    f = s * e[i]; b = c * e[i];
                    e[i + 1] = (r = hypot(f, g));
                    if (r == 0.0) { d[i + 1] -= pp; e[m] = 0.0; break; }
                    s = f / r; c = g / r;
                    g = d[i + 1] - pp;
                    r = (d[i] - g) * s + 2.0 * c * b;
                    pp = s * r;
                    d[i + 1] = g + pp;
                    g = c * r - b;
                }
                if (r == 0.0 && i >= l) continue;
                d[l] -= pp; e[l] = g; e[m] = 0.0;
            }
        } while (m != l);
    }
    AG_FREE(e);
    return 0;
}

/* lower Cholesky factor in place (upper part zeroed); -1 when not positive definite */
static int ag__cholesky(double *a, int n) {
    int j, i, k;
    for (j = 0; j < n; j++) {
        double s = a[(size_t)j * n + j];
        for (k = 0; k < j; k++) s -= a[(size_t)j * n + k] * a[(size_t)j * n + k];
        if (!(s > 0.0)) return -1;
        s = sqrt(s);
        a[(size_t)j * n + j] = s;
        {
            long ii; int ag__nt = ag__threads(0, (size_t)(n - j) * j, 65537);
            (void)ag__nt;
            AG__PARALLEL_FOR(ag__nt)
            for (ii = j + 1; ii < n; ii++) {
                double t = a[(size_t)ii * n + j]; int kk;
                for (kk = 0; kk < j; kk++) t -= a[(size_t)ii * n + kk] * a[(size_t)j * n + kk];
                a[(size_t)ii * n + j] = t / s;
            }
        }
        for (i = 0; i < j; i++) a[(size_t)i * n + j] = 0.0;
    }
    return 0;
}

AGDEF int ag_fid(const double *mu1, const double *s1, const double *mu2, const double *s2, int d, double *fid, ag_error *err) {
    double *L, *T, *M, *eig, diff = 0.0, tr1 = 0.0, tr2 = 0.0, trs = 0.0, offset = 0.0; size_t nn = (size_t)d * d, i; int attempt;
    for (i = 0; i < (size_t)d; i++) if (!isfinite(mu1[i]) || !isfinite(mu2[i])) return ag__fail(err, "FID: a mean holds NaN or infinity");
    for (i = 0; i < nn; i++) if (!isfinite(s1[i]) || !isfinite(s2[i])) return ag__fail(err, "FID: a covariance holds NaN or infinity");
    L = (double *)AG_MALLOC(nn * 3 * sizeof(double) + (size_t)d * sizeof(double));
    if (!L) return ag__fail(err, "out of memory for FID (%d dims)", d);
    T = L + nn; M = T + nn; eig = M + nn;
    for (attempt = 0; attempt < 2; attempt++) {   /* 1e-6·I on both when Cholesky fails */
        memcpy(L, s2, nn * sizeof(double));
        for (i = 0; i < (size_t)d; i++) L[i * d + i] += offset;
        if (ag__cholesky(L, d) == 0) break;
        offset = 1e-6;
    }
    if (attempt == 2) { AG_FREE(L); return ag__fail(err, "FID: the second covariance is not positive semi-definite"); }
    /* T = (s1 + offset I) L; M = Lᵀ T (symmetric) */
    {
        long r; int ag__nt = ag__threads(0, (size_t)d, 65);
        (void)ag__nt;
        AG__PARALLEL_FOR(ag__nt)
        for (r = 0; r < d; r++) {
            double *trow = T + (size_t)r * d; const double *srow = s1 + (size_t)r * d; int k, j;
            for (j = 0; j < d; j++) trow[j] = offset * L[(size_t)r * d + j];
            for (k = 0; k < d; k++) { double a = srow[k]; const double *lrow = L + (size_t)k * d; if (a != 0.0) for (j = 0; j <= k; j++) trow[j] += a * lrow[j]; }
        }
        AG__PARALLEL_FOR(ag__nt)
        for (r = 0; r < d; r++) {
            double *mrow = M + (size_t)r * d; int k, j;
            for (j = 0; j < d; j++) mrow[j] = 0.0;
            for (k = (int)r; k < d; k++) { double a = L[(size_t)k * d + r]; const double *trow = T + (size_t)k * d; for (j = 0; j < d; j++) mrow[j] += a * trow[j]; }
        }
    }
    for (i = 0; i < (size_t)d; i++) {   /* symmetrise rounding */
        size_t j;
        for (j = i + 1; j < (size_t)d; j++) { double v = 0.5 * (M[i * d + j] + M[j * d + i]); M[i * d + j] = M[j * d + i] = v; }
    }
    if (ag_sym_eigenvalues(M, d, eig, err)) { AG_FREE(L); return -1; }
    for (i = 0; i < (size_t)d; i++) {
        double dm = mu1[i] - mu2[i];
        diff += dm * dm; tr1 += s1[i * d + i]; tr2 += s2[i * d + i];   /* traces without the offset, as pytorch-fid */
        trs += sqrt(eig[i] > 0.0 ? eig[i] : 0.0);
    }
    AG_FREE(L);
    if (!isfinite(diff + tr1 + tr2 - 2.0 * trs)) return ag__fail(err, "FID: the result is not finite (|mu1 - mu2|^2 %g, traces %g and %g): the statistics' values are too large", diff, tr1, tr2);
    *fid = diff + tr1 + tr2 - 2.0 * trs;
    return 0;
}

/* ---- the weights from a file: .pth (the FID network's release) or .safetensors ---- */
AGDEF ag_inception *ag_inception_load(const char *path, ag_error *err) {
    ag_array_list sd; ag_inception *net; ag_error e; size_t n = strlen(path);
    int rc;
    memset(&sd, 0, sizeof sd);
    if (n > 12 && strcmp(path + n - 12, ".safetensors") == 0) rc = ag_safetensors_read(path, &sd, NULL, err);
    else rc = ag_pth_read(path, &sd, err);
    if (rc) return NULL;
    net = ag_inception_from_arrays(&sd, &e);
    ag_array_list_free(&sd);
    if (!net) ag__fail(err, "%s: %s", path, e.msg);
    return net;
}


/* ===================================================================================
   12. The compact classifier and the scorer interface (Inception-v3 or the classifier)
   =================================================================================== */
/* branch widths of the three inception blocks: 1x1, 3x3 reduce, 3x3, 3x3dbl reduce, 3x3dbl, pool */
static const int ag__cls_widths[3][6] = { { 32, 32, 48, 16, 24, 24 }, { 48, 48, 64, 32, 48, 32 }, { 64, 64, 96, 48, 64, 32 } };
static const int ag__cls_block_in[3] = { 48, 128, 192 };

static int ag__cls_reg_unit(ag_params *ps, ag_cls_unit *u, const char *prefix, int cin, int cout, int k, ag_error *err) {
    char name[AG_NAME_MAX];
    snprintf(name, sizeof name, "%s.conv", prefix);
    if (ag__reg_conv(ps, &u->conv, name, cin, cout, k, 0, 0, err)) return -1;
    snprintf(name, sizeof name, "%s.bn", prefix);
    return ag__reg_bn(ps, &u->bn, name, cout, err);
}
AGDEF void ag_classifier_free(ag_classifier *net) {
    if (!net) return;
    ag_params_free(&net->params);
    memset(net, 0, sizeof *net);
}
static void ag__cls_reset_unit(ag_rng *rng, ag_cls_unit *u) {
    ag__init_default(rng, u->conv.weight, NULL, 1);
    ag_init_fill(u->bn.weight, 1.0f); ag_init_fill(u->bn.bias, 0.0f);
    ag_init_fill(u->bn.running_mean, 0.0f); ag_init_fill(u->bn.running_var, 1.0f); u->bn.num_batches_tracked = 0;
}
AGDEF void ag_classifier_reset_params(ag_classifier *net, ag_rng *rng) {
    int b;
    ag__cls_reset_unit(rng, &net->conv1); ag__cls_reset_unit(rng, &net->conv2);
    for (b = 0; b < 3; b++) {
        ag_cls_block *k = &net->mixed[b];
        ag__cls_reset_unit(rng, &k->branch1x1); ag__cls_reset_unit(rng, &k->branch3x3_1); ag__cls_reset_unit(rng, &k->branch3x3_2);
        ag__cls_reset_unit(rng, &k->branch3x3dbl_1); ag__cls_reset_unit(rng, &k->branch3x3dbl_2); ag__cls_reset_unit(rng, &k->branch3x3dbl_3);
        ag__cls_reset_unit(rng, &k->branch_pool);
    }
    ag__init_default(rng, net->fc.weight, net->fc.bias, 1);
}
AGDEF int ag_classifier_init(ag_classifier *net, int in_channels, int in_size, int num_classes, ag_rng *rng, ag_error *err) {
    int b;
    memset(net, 0, sizeof *net);
    if (in_channels != 1 && in_channels != 3) return ag__fail(err, "classifier: %d input channels (1 or 3)", in_channels);
    if (in_size < 8 || in_size > 512) return ag__fail(err, "classifier: input size %d (8 to 512)", in_size);
    if (num_classes < 2 || num_classes > 100000) return ag__fail(err, "classifier: %d classes (2 to 100000)", num_classes);
    net->in_channels = in_channels; net->in_size = in_size; net->num_classes = num_classes;
    net->feature_dim = AG_CLASSIFIER_FEATURES; net->training = 1;
    if (ag__cls_reg_unit(&net->params, &net->conv1, "conv1", in_channels, 32, 3, err) ||
        ag__cls_reg_unit(&net->params, &net->conv2, "conv2", 32, 48, 3, err)) goto fail;
    for (b = 0; b < 3; b++) {
        ag_cls_block *k = &net->mixed[b]; const int *wd = ag__cls_widths[b]; int in = ag__cls_block_in[b]; char p[AG_NAME_MAX];
        k->in = in; k->out = wd[0] + wd[2] + wd[4] + wd[5];
#define AG__CLS_UNIT(field, cin, cout, kk) \
        snprintf(p, sizeof p, "mixed%d.%s", b + 1, #field); if (ag__cls_reg_unit(&net->params, &k->field, p, cin, cout, kk, err)) goto fail;
        AG__CLS_UNIT(branch1x1, in, wd[0], 1)
        AG__CLS_UNIT(branch3x3_1, in, wd[1], 1)
        AG__CLS_UNIT(branch3x3_2, wd[1], wd[2], 3)
        AG__CLS_UNIT(branch3x3dbl_1, in, wd[3], 1)
        AG__CLS_UNIT(branch3x3dbl_2, wd[3], wd[4], 3)
        AG__CLS_UNIT(branch3x3dbl_3, wd[4], wd[4], 3)
        AG__CLS_UNIT(branch_pool, in, wd[5], 1)
#undef AG__CLS_UNIT
    }
    AG_ASSERT(net->mixed[0].out == ag__cls_block_in[1] && net->mixed[1].out == ag__cls_block_in[2] && net->mixed[2].out == AG_CLASSIFIER_FEATURES);
    {   /* fc as a Linear: weight [classes, features], bias [classes] */
        int shape[2]; shape[0] = num_classes; shape[1] = net->feature_dim;
        if (!(net->fc.weight = ag_params_add(&net->params, "fc.weight", AG_ENTRY_PARAM, 2, shape, err)) ||
            !(net->fc.bias = ag_params_add(&net->params, "fc.bias", AG_ENTRY_PARAM, 1, &num_classes, err))) goto fail;
        net->fc.cin = net->feature_dim; net->fc.cout = num_classes;
    }
    if (rng) ag_classifier_reset_params(net, rng);
    return 0;
fail:
    ag_classifier_free(net);
    return -1;
}

static ag_tensor *ag__cls_unit_apply(ag_ctx *ctx, ag_cls_unit *u, ag_tensor *x, int training) {
    ag_tensor *y = ag_conv2d(ctx, x, u->conv.weight, NULL, 1, 1, u->conv.pad, u->conv.pad);
    y = ag_batch_norm2d(ctx, y, u->bn.weight, u->bn.bias, u->bn.running_mean, u->bn.running_var, &u->bn.num_batches_tracked, training, 0.1f, 1e-5f);
    return ag_relu(ctx, y);
}
static ag_tensor *ag__cls_block_apply(ag_ctx *ctx, ag_cls_block *k, ag_tensor *x, int tr) {
    ag_tensor *br[4];
    br[0] = ag__cls_unit_apply(ctx, &k->branch1x1, x, tr);
    br[1] = ag__cls_unit_apply(ctx, &k->branch3x3_2, ag__cls_unit_apply(ctx, &k->branch3x3_1, x, tr), tr);
    br[2] = ag__cls_unit_apply(ctx, &k->branch3x3dbl_3,
                               ag__cls_unit_apply(ctx, &k->branch3x3dbl_2, ag__cls_unit_apply(ctx, &k->branch3x3dbl_1, x, tr), tr), tr);
    br[3] = ag__cls_unit_apply(ctx, &k->branch_pool, ag_avg_pool2d(ctx, x, 3, 1, 1, 0), tr);
    if (!br[0] || !br[1] || !br[2] || !br[3]) return NULL;
    return ag_concat_channels(ctx, br, 4);
}
AGDEF ag_tensor *ag_classifier_forward(ag_ctx *ctx, ag_classifier *net, ag_tensor *x, ag_tensor **features) {
    int tr = net->training, hw; ag_tensor *f;
    if (features) *features = NULL;
    if (!x) return NULL;
    if (x->ndim != 4 || x->shape[1] != net->in_channels || x->shape[2] != net->in_size || x->shape[3] != net->in_size) {
        char s[64]; ag_tensor_shape_str(x, s, sizeof s);
        return (ag_tensor *)ag__ctx_fail(ctx, "classifier: input %s, expected [N, %d, %d, %d]", s, net->in_channels, net->in_size, net->in_size);
    }
    x = ag__cls_unit_apply(ctx, &net->conv1, x, tr);                 /* 32 x S x S */
    x = ag_max_pool2d(ctx, x, 2, 2, 0);
    x = ag__cls_unit_apply(ctx, &net->conv2, x, tr);                 /* 48 x S/2 x S/2 */
    x = ag_max_pool2d(ctx, x, 2, 2, 0);
    x = ag__cls_block_apply(ctx, &net->mixed[0], x, tr);             /* 128 x S/4 x S/4 */
    x = ag__cls_block_apply(ctx, &net->mixed[1], x, tr);             /* 192 x S/4 x S/4 */
    x = ag_max_pool2d(ctx, x, 2, 2, 0);
    x = ag__cls_block_apply(ctx, &net->mixed[2], x, tr);             /* 256 x S/8 x S/8 */
    if (!x) return NULL;
    hw = x->shape[2] * x->shape[3];
    f = ag_scale(ctx, ag_sum_hw(ctx, x), 1.0f / (float)hw);          /* global average pool: [N, 256] */
    if (features) *features = f;
    return ag_linear(ctx, f, net->fc.weight, net->fc.bias);
}

#define AG__CLS_FORMAT "autogan.h classifier 1"
AGDEF int ag_classifier_save(const char *path, const ag_classifier *net, const char *dataset, const char *extra_fields, ag_error *err) {
    char meta[2048]; size_t i;
    if (!dataset) dataset = net->dataset;
    for (i = 0; dataset[i]; i++) if (dataset[i] == '"' || dataset[i] == '\\' || (unsigned char)dataset[i] < 32)
        return ag__fail(err, "classifier save: data set name '%s' has a character JSON would need to escape", dataset);
    if (strlen(dataset) >= sizeof net->dataset) return ag__fail(err, "classifier save: data set name too long");
    snprintf(meta, sizeof meta,
             "{\"format\":\"" AG__CLS_FORMAT "\",\"model\":\"compact inception classifier (autogan.h)\","
             "\"in_channels\":\"%d\",\"in_size\":\"%d\",\"num_classes\":\"%d\",\"feature_dim\":\"%d\",\"dataset\":\"%s\"%s%s}",
             net->in_channels, net->in_size, net->num_classes, net->feature_dim, dataset,
             extra_fields && *extra_fields ? "," : "", extra_fields ? extra_fields : "");
    if (strlen(meta) >= sizeof meta - 1) return ag__fail(err, "classifier save: metadata too long");
    return ag_safetensors_save(path, &net->params, meta, err);
}
static int ag__cls_meta_int(const char *json, const char *key, int lo, int hi, int *out) {
    char v[64]; char *end; long x;
    if (ag_json_get_string(json, key, v, sizeof v) || !v[0]) return -1;
    x = strtol(v, &end, 10);
    if (*end || x < lo || x > hi) return -1;
    *out = (int)x;
    return 0;
}
/* a classifier from arrays already read and their metadata */
static int ag__cls_from_arrays(ag_classifier *net, const ag_array_list *arrays, const char *meta, const char *source, ag_error *err) {
    ag_classifier tmp; int c, s, k, f; char ds[64]; char fmt[64];
    if (!meta || ag_json_get_string(meta, "format", fmt, sizeof fmt) || strcmp(fmt, AG__CLS_FORMAT))
        return ag__fail(err, "%s: not a classifier file (metadata \"format\" is not \"" AG__CLS_FORMAT "\")", source);
    if (ag__cls_meta_int(meta, "in_channels", 1, 3, &c) || ag__cls_meta_int(meta, "in_size", 8, 512, &s) ||
        ag__cls_meta_int(meta, "num_classes", 2, 100000, &k) || ag__cls_meta_int(meta, "feature_dim", 1, 65536, &f))
        return ag__fail(err, "%s: classifier metadata needs in_channels, in_size, num_classes and feature_dim as integers in range", source);
    if (f != AG_CLASSIFIER_FEATURES) return ag__fail(err, "%s: classifier feature_dim %d, this build has %d", source, f, AG_CLASSIFIER_FEATURES);
    if (ag_classifier_init(&tmp, c, s, k, NULL, err)) return ag__fail_prefix(err, "%s", source);
    if (ag_params_load_arrays(&tmp.params, arrays, "", 1, source, err)) { ag_classifier_free(&tmp); return -1; }
    if (ag_json_get_string(meta, "dataset", ds, sizeof ds)) ds[0] = 0;
    memcpy(tmp.dataset, ds, sizeof tmp.dataset);
    tmp.training = 0;
    *net = tmp;
    return 0;
}
AGDEF int ag_classifier_load(const char *path, ag_classifier *net, ag_error *err) {
    ag_array_list arr; char *meta = NULL; int rc;
    memset(&arr, 0, sizeof arr);
    if (ag_safetensors_read(path, &arr, &meta, err)) return -1;
    rc = ag__cls_from_arrays(net, &arr, meta, path, err);
    ag_array_list_free(&arr); AG_FREE(meta);
    return rc;
}

/* ---- the scorer ---- */
enum { AG__SCORER_INCEPTION = 0, AG__SCORER_CLASSIFIER = 1 };
#define AG__CLS_UNITS 23   /* conv1, conv2 and 7 per inception block */
struct ag_scorer {
    int kind, pytorch_pre, batch;
    ag_inception *inc;
    ag_classifier cls; ag_ctx *ctx;
    ag_params folded;                       /* classifier convs with eval BatchNorm folded in */
    ag_tensor *fw[AG__CLS_UNITS], *fb[AG__CLS_UNITS];
    unsigned char *u8, *img; float *x;   /* a batch of quantised images; one converted image; network input */
    size_t u8_cap, img_cap, x_cap;
    float lut[256]; int lut_ready;
};
AGDEF void ag_scorer_free(ag_scorer *s) {
    if (!s) return;
    ag_inception_free(s->inc);
    ag_classifier_free(&s->cls);
    ag_params_free(&s->folded);
    ag_ctx_free(s->ctx);
    AG_FREE(s->u8); AG_FREE(s->img); AG_FREE(s->x);
    AG_FREE(s);
}
/* the classifier's units in forward order */
static void ag__cls_units(ag_classifier *net, ag_cls_unit **u) {
    int b, k = 0;
    u[k++] = &net->conv1; u[k++] = &net->conv2;
    for (b = 0; b < 3; b++) {
        ag_cls_block *m = &net->mixed[b];
        u[k++] = &m->branch1x1; u[k++] = &m->branch3x3_1; u[k++] = &m->branch3x3_2; u[k++] = &m->branch3x3dbl_1;
        u[k++] = &m->branch3x3dbl_2; u[k++] = &m->branch3x3dbl_3; u[k++] = &m->branch_pool;
    }
}
/* eval-mode BatchNorm folded into each conv (as the Inception port does): w' = w·γ/√(var+ε),
   b' = β - mean·γ/√(var+ε); scoring then runs conv + in-place ReLU only */
static int ag__scorer_fold(ag_scorer *s, ag_error *err) {
    ag_cls_unit *u[AG__CLS_UNITS]; int k;
    ag__cls_units(&s->cls, u);
    for (k = 0; k < AG__CLS_UNITS; k++) {
        ag_conv_layer *c = &u[k]->conv; ag_bn_layer *bn = &u[k]->bn; char name[32]; int shape[4], o; size_t per, j;
        shape[0] = c->cout; shape[1] = c->cin; shape[2] = c->kh; shape[3] = c->kw;
        snprintf(name, sizeof name, "w%d", k);
        if (!(s->fw[k] = ag_params_add(&s->folded, name, AG_ENTRY_BUFFER, 4, shape, err))) return -1;
        snprintf(name, sizeof name, "b%d", k);
        if (!(s->fb[k] = ag_params_add(&s->folded, name, AG_ENTRY_BUFFER, 1, &c->cout, err))) return -1;
        per = (size_t)c->cin * c->kh * c->kw;
        for (o = 0; o < c->cout; o++) {
            double scale, var = bn->running_var->data[o];
            if (!(var >= 0.0) || !isfinite(var) || !isfinite(bn->running_mean->data[o]) || !isfinite(bn->weight->data[o]) || !isfinite(bn->bias->data[o]))
                return ag__fail(err, "classifier: a BatchNorm statistic of unit %d channel %d is negative or not finite", k, o);
            scale = (double)bn->weight->data[o] / sqrt(var + 1e-5);
            for (j = 0; j < per; j++) {
                float wv = c->weight->data[(size_t)o * per + j];
                if (!isfinite(wv)) return ag__fail(err, "classifier: a conv weight of unit %d is not finite", k);
                s->fw[k]->data[(size_t)o * per + j] = (float)(wv * scale);
            }
            s->fb[k]->data[o] = (float)((double)bn->bias->data[o] - (double)bn->running_mean->data[o] * scale);
        }
    }
    for (k = 0; k < (int)s->cls.fc.weight->size; k++) if (!isfinite(s->cls.fc.weight->data[k])) return ag__fail(err, "classifier: fc.weight is not finite");
    return 0;
}
static ag_tensor *ag__scorer_unit(ag_scorer *s, int k, ag_tensor *x) {
    ag_tensor *y = ag_conv2d(s->ctx, x, s->fw[k], s->fb[k], 1, 1, s->fw[k]->shape[2] / 2, s->fw[k]->shape[3] / 2);
    if (y) {   /* ReLU in place: no tape in scoring */
        float *d = y->data; long n = (long)y->size, i; int ag__nt = ag__threads_for(s->ctx, y->size); (void)ag__nt;
        AG__PARALLEL_FOR(ag__nt)
        for (i = 0; i < n; i++) d[i] = d[i] > 0.0f ? d[i] : 0.0f;
    }
    return y;
}
static ag_tensor *ag__scorer_block(ag_scorer *s, int k0, ag_tensor *x) {
    ag_tensor *br[4];
    br[0] = ag__scorer_unit(s, k0, x);
    br[1] = ag__scorer_unit(s, k0 + 2, ag__scorer_unit(s, k0 + 1, x));
    br[2] = ag__scorer_unit(s, k0 + 5, ag__scorer_unit(s, k0 + 4, ag__scorer_unit(s, k0 + 3, x)));
    br[3] = ag__scorer_unit(s, k0 + 6, ag_avg_pool2d(s->ctx, x, 3, 1, 1, 0));
    if (!br[0] || !br[1] || !br[2] || !br[3]) return NULL;
    return ag_concat_channels(s->ctx, br, 4);
}
/* the classifier's eval forward with folded BN: x [N,C,S,S] -> logits, features */
static ag_tensor *ag__scorer_cls_forward(ag_scorer *s, ag_tensor *x, ag_tensor **features) {
    ag_ctx *ctx = s->ctx; ag_tensor *f;
    x = ag_max_pool2d(ctx, ag__scorer_unit(s, 0, x), 2, 2, 0);
    x = ag_max_pool2d(ctx, ag__scorer_unit(s, 1, x), 2, 2, 0);
    x = ag__scorer_block(s, 9, ag__scorer_block(s, 2, x));
    x = ag__scorer_block(s, 16, ag_max_pool2d(ctx, x, 2, 2, 0));
    if (!x) return NULL;
    f = ag_scale(ctx, ag_sum_hw(ctx, x), 1.0f / (float)(x->shape[2] * x->shape[3]));
    *features = f;
    return ag_linear(ctx, f, s->cls.fc.weight, s->cls.fc.bias);
}
static ag_scorer *ag__scorer_new(int kind, ag_error *err) {
    ag_scorer *s = (ag_scorer *)AG_MALLOC(sizeof(ag_scorer));
    if (!s) { ag__fail(err, "out of memory for a scorer"); return NULL; }
    memset(s, 0, sizeof *s);
    s->kind = kind; s->batch = kind == AG__SCORER_INCEPTION ? 8 : 128;
    if (kind == AG__SCORER_CLASSIFIER && !(s->ctx = ag_ctx_create(0, err))) { AG_FREE(s); return NULL; }
    return s;
}
AGDEF ag_scorer *ag_scorer_from_classifier(const ag_classifier *net, ag_error *err) {
    ag_scorer *s = ag__scorer_new(AG__SCORER_CLASSIFIER, err);
    if (!s) return NULL;
    if (ag_classifier_init(&s->cls, net->in_channels, net->in_size, net->num_classes, NULL, err) ||
        ag_params_copy(&s->cls.params, &net->params, err)) { ag_scorer_free(s); return NULL; }
    memcpy(s->cls.dataset, net->dataset, sizeof s->cls.dataset);
    s->cls.training = 0;
    if (ag__scorer_fold(s, err)) { ag_scorer_free(s); return NULL; }
    return s;
}
AGDEF ag_scorer *ag_scorer_load(const char *path, ag_error *err) {
    ag_array_list arr; char *meta = NULL; ag_scorer *s = NULL; size_t n = strlen(path); char fmt[64];
    ag_error e;
    memset(&arr, 0, sizeof arr);
    if (n > 12 && strcmp(path + n - 12, ".safetensors") == 0) {
        if (ag_safetensors_read(path, &arr, &meta, err)) return NULL;
    } else if (ag_pth_read(path, &arr, err)) return NULL;
    if (meta && !ag_json_get_string(meta, "format", fmt, sizeof fmt) && !strcmp(fmt, AG__CLS_FORMAT)) {
        if ((s = ag__scorer_new(AG__SCORER_CLASSIFIER, err)) && (ag__cls_from_arrays(&s->cls, &arr, meta, path, err) || ag__scorer_fold(s, err))) {
            if (s->cls.in_size) ag__fail_prefix(err, "%s", path);
            ag_scorer_free(s); s = NULL;
        }
    } else if (ag_array_list_find(&arr, "Conv2d_1a_3x3.conv.weight")) {
        if ((s = ag__scorer_new(AG__SCORER_INCEPTION, err)) && !(s->inc = ag_inception_from_arrays(&arr, &e))) {
            ag__fail(err, "%s: %s", path, e.msg); ag_scorer_free(s); s = NULL;
        }
    } else {
        ag__fail(err, "%s: neither Inception-v3 weights (no 'Conv2d_1a_3x3.conv.weight') nor a compact classifier "
                 "(no metadata \"format\": \"" AG__CLS_FORMAT "\")", path);
    }
    ag_array_list_free(&arr); AG_FREE(meta);
    return s;
}
AGDEF void ag_scorer_set_threads(ag_scorer *s, int n) {
    if (s->inc) ag_inception_set_threads(s->inc, n);
    if (s->ctx) ag_ctx_set_threads(s->ctx, n);
}
AGDEF void ag_scorer_set_pytorch_preprocess(ag_scorer *s, int on) { s->pytorch_pre = on != 0; }
AGDEF const char *ag_scorer_kind(const ag_scorer *s) { return s->kind == AG__SCORER_INCEPTION ? "inception" : "classifier"; }
AGDEF int ag_scorer_num_classes(const ag_scorer *s) { return s->kind == AG__SCORER_INCEPTION ? 1008 : s->cls.num_classes; }
AGDEF int ag_scorer_feature_dim(const ag_scorer *s) { return s->kind == AG__SCORER_INCEPTION ? 2048 : s->cls.feature_dim; }
AGDEF int ag_scorer_input_size(const ag_scorer *s) { return s->kind == AG__SCORER_INCEPTION ? 299 : s->cls.in_size; }
AGDEF int ag_scorer_input_channels(const ag_scorer *s) { return s->kind == AG__SCORER_INCEPTION ? 3 : s->cls.in_channels; }
AGDEF const char *ag_scorer_dataset(const ag_scorer *s) { return s->kind == AG__SCORER_INCEPTION ? "" : s->cls.dataset; }

static int ag__scorer_grow(void **p, size_t *cap, size_t need, ag_error *err) {
    void *q;
    if (need <= *cap) return 0;
    q = AG_REALLOC(*p, need);
    if (!q) return ag__fail(err, "out of memory (%lu bytes) in the scorer", (unsigned long)need);
    *p = q; *cap = need;
    return 0;
}
/* one uint8 h x w x c image -> the classifier's C x S x S floats, the way the training data
   was made: resized at load (PIL bilinear, ag_image_resize_bilinear_pil), channels converted
   and normalised as ag_data_loader_next does (gray = PIL's L; ((x / 255) - 0.5) / 0.5) */
static int ag__cls_convert(ag_scorer *s, const unsigned char *hwc, int h, int w, int c, float *out, ag_error *err) {
    int C = s->cls.in_channels, S = s->cls.in_size, k; size_t p, plane = (size_t)S * S;
    const unsigned char *px = hwc;
    if (h != S || w != S) {
        if (ag__scorer_grow((void **)&s->img, &s->img_cap, plane * (size_t)c, err)) return -1;
        if (ag_image_resize_bilinear_pil(hwc, h, w, c, s->img, S, S)) return ag__fail(err, "out of memory resizing an image");
        px = s->img;
    }
    if (!s->lut_ready) { for (k = 0; k < 256; k++) s->lut[k] = ((float)k / 255.0f - 0.5f) / 0.5f; s->lut_ready = 1; }
    if (C == c) {
        for (k = 0; k < C; k++) for (p = 0; p < plane; p++) out[k * plane + p] = s->lut[px[p * c + k]];
    } else if (C == 3) {
        for (p = 0; p < plane; p++) out[p] = out[plane + p] = out[2 * plane + p] = s->lut[px[p]];
    } else {
        for (p = 0; p < plane; p++) {
            const unsigned char *q = px + p * 3;
            out[p] = s->lut[(q[0] * 19595u + q[1] * 38470u + q[2] * 7471u + 0x8000u) >> 16];
        }
    }
    return 0;
}
static int ag__scorer_check(const ag_scorer *s, int n, int h, int w, int c, ag_error *err) {
    (void)s;
    if (n < 0) return ag__fail(err, "scorer: %d images", n);
    if (c != 1 && c != 3) return ag__fail(err, "scorer: images with %d channels (1 or 3)", c);
    if (h < 1 || w < 1 || h > 8192 || w > 8192) return ag__fail(err, "scorer: image size %dx%d", h, w);
    return 0;
}
AGDEF int ag_scorer_forward_u8(ag_scorer *s, const unsigned char *nhwc, int n, int h, int w, int c, float *logits, float *features, ag_error *err) {
    int i0, K = ag_scorer_num_classes(s), F = ag_scorer_feature_dim(s); size_t in_per = (size_t)h * w * c;
    if (ag__scorer_check(s, n, h, w, c, err)) return -1;
    if (s->kind == AG__SCORER_INCEPTION) {
        size_t per = (size_t)3 * 299 * 299;
        if (ag__scorer_grow((void **)&s->x, &s->x_cap, per * (size_t)s->batch * sizeof(float), err)) return -1;
        if (c == 1 && ag__scorer_grow((void **)&s->img, &s->img_cap, (size_t)h * w * 3, err)) return -1;
        for (i0 = 0; i0 < n; i0 += s->batch) {
            int cnt = n - i0 < s->batch ? n - i0 : s->batch, i;
            for (i = 0; i < cnt; i++) {
                const unsigned char *img = nhwc + (size_t)(i0 + i) * in_per;
                if (c == 1) { size_t j; for (j = 0; j < (size_t)h * w; j++) s->img[3 * j] = s->img[3 * j + 1] = s->img[3 * j + 2] = img[j]; img = s->img; }
                if (s->pytorch_pre) ag_inception_preprocess_pytorch(img, h, w, s->x + (size_t)i * per);
                else ag_inception_preprocess_tf(img, h, w, s->x + (size_t)i * per);
            }
            if (ag_inception_forward(s->inc, s->x, cnt, features ? features + (size_t)i0 * F : NULL, logits ? logits + (size_t)i0 * K : NULL, 0, err)) return -1;
        }
        return 0;
    }
    {
        int C = s->cls.in_channels, S = s->cls.in_size, shape[4]; size_t per = (size_t)C * S * S;
        if (ag__scorer_grow((void **)&s->x, &s->x_cap, per * (size_t)s->batch * sizeof(float), err)) return -1;
        for (i0 = 0; i0 < n; i0 += s->batch) {
            int cnt = n - i0 < s->batch ? n - i0 : s->batch, i; ag_tensor *x, *f = NULL, *lg;
            for (i = 0; i < cnt; i++)
                if (ag__cls_convert(s, nhwc + (size_t)(i0 + i) * in_per, h, w, c, s->x + (size_t)i * per, err)) return -1;
            ag_ctx_reset(s->ctx); ag_ctx_clear_error(s->ctx); ag_ctx_set_grad_enabled(s->ctx, 0);
            shape[0] = cnt; shape[1] = C; shape[2] = shape[3] = S;
            x = ag_tensor_from(s->ctx, 4, shape, s->x);
            lg = ag__scorer_cls_forward(s, x, &f);
            if (!lg) { ag__fail(err, "classifier forward: %s", ag_ctx_error(s->ctx)); ag_ctx_reset(s->ctx); return -1; }
            if (logits) memcpy(logits + (size_t)i0 * K, lg->data, (size_t)cnt * K * sizeof(float));
            if (features) memcpy(features + (size_t)i0 * F, f->data, (size_t)cnt * F * sizeof(float));
        }
        ag_ctx_reset(s->ctx);
        return 0;
    }
}
AGDEF int ag_scorer_forward(ag_scorer *s, const float *images, int n, int c, int h, int w, float *logits, float *features, ag_error *err) {
    int i0, K = ag_scorer_num_classes(s), F = ag_scorer_feature_dim(s), chunk = s->batch; size_t per = (size_t)c * h * w;
    if (ag__scorer_check(s, n, h, w, c, err)) return -1;
    if (ag__scorer_grow((void **)&s->u8, &s->u8_cap, per * (size_t)chunk, err)) return -1;
    for (i0 = 0; i0 < n; i0 += chunk) {
        int cnt = n - i0 < chunk ? n - i0 : chunk, i, k; size_t j, hw = (size_t)h * w;
        for (i = 0; i < cnt; i++) {   /* NCHW floats -> HWC uint8 as the reference saves images */
            const float *src = images + (size_t)(i0 + i) * per; unsigned char *dst = s->u8 + (size_t)i * per;
            for (k = 0; k < c; k++) for (j = 0; j < hw; j++) {
                float v = src[(size_t)k * hw + j];
                if (v != v) return ag__fail(err, "scorer: image %d holds a NaN", i0 + i);
                v = v * 127.5f + 127.5f; v = v < 0.0f ? 0.0f : v > 255.0f ? 255.0f : v;
                dst[j * c + k] = (unsigned char)v;
            }
        }
        if (ag_scorer_forward_u8(s, s->u8, cnt, h, w, c, logits ? logits + (size_t)i0 * K : NULL, features ? features + (size_t)i0 * F : NULL, err))
            return -1;
    }
    return 0;
}
AGDEF int ag_scorer_inception_score(ag_scorer *s, const float *images, int n, int c, int h, int w, int splits,
                                    double *mean, double *stdev, ag_error *err) {
    int K = ag_scorer_num_classes(s), rc; float *lg;
    if (splits < 1 || n < splits) return ag__fail(err, "scorer IS: %d images in %d splits (need at least one image per split)", n, splits);
    lg = (float *)AG_MALLOC((size_t)n * K * sizeof(float));
    if (!lg) return ag__fail(err, "out of memory for %d x %d logits", n, K);
    rc = ag_scorer_forward(s, images, n, c, h, w, lg, NULL, err);
    if (!rc) rc = ag_inception_score(lg, n, K, splits, mean, stdev, err);
    AG_FREE(lg);
    return rc;
}
AGDEF int ag_scorer_fid_stats_add(ag_scorer *s, ag_fid_stats *st, const float *images, int n, int c, int h, int w, ag_error *err) {
    int F = ag_scorer_feature_dim(s), i0, chunk = 1024; float *f;
    if (st->dim != F) return ag__fail(err, "scorer FID: statistics of dimension %d, the %s gives %d", st->dim, ag_scorer_kind(s), F);
    f = (float *)AG_MALLOC((size_t)chunk * F * sizeof(float));
    if (!f) return ag__fail(err, "out of memory for features");
    for (i0 = 0; i0 < n; i0 += chunk) {
        int cnt = n - i0 < chunk ? n - i0 : chunk;
        if (ag_scorer_forward(s, images + (size_t)i0 * c * h * w, cnt, c, h, w, NULL, f, err)) { AG_FREE(f); return -1; }
        if (ag_fid_stats_add(st, f, cnt, err)) { AG_FREE(f); return -1; }
    }
    AG_FREE(f);
    return 0;
}

/* ===================================================================================
   13. Containers: CRC-32/Adler-32, DEFLATE (inflate, deflate), gzip, tar, zip
   Byte streams that hold other files; the array and image formats below read through them.
   =================================================================================== */

/* ---- CRC-32 (zip, PNG) and Adler-32 (zlib) ---- */

static const uint32_t ag__crc_table[256] = {
    0x00000000u, 0x77073096u, 0xee0e612cu, 0x990951bau, 0x076dc419u, 0x706af48fu,
    0xe963a535u, 0x9e6495a3u, 0x0edb8832u, 0x79dcb8a4u, 0xe0d5e91eu, 0x97d2d988u,
    0x09b64c2bu, 0x7eb17cbdu, 0xe7b82d07u, 0x90bf1d91u, 0x1db71064u, 0x6ab020f2u,
    0xf3b97148u, 0x84be41deu, 0x1adad47du, 0x6ddde4ebu, 0xf4d4b551u, 0x83d385c7u,
    0x136c9856u, 0x646ba8c0u, 0xfd62f97au, 0x8a65c9ecu, 0x14015c4fu, 0x63066cd9u,
    0xfa0f3d63u, 0x8d080df5u, 0x3b6e20c8u, 0x4c69105eu, 0xd56041e4u, 0xa2677172u,
    0x3c03e4d1u, 0x4b04d447u, 0xd20d85fdu, 0xa50ab56bu, 0x35b5a8fau, 0x42b2986cu,
    0xdbbbc9d6u, 0xacbcf940u, 0x32d86ce3u, 0x45df5c75u, 0xdcd60dcfu, 0xabd13d59u,
    0x26d930acu, 0x51de003au, 0xc8d75180u, 0xbfd06116u, 0x21b4f4b5u, 0x56b3c423u,
    0xcfba9599u, 0xb8bda50fu, 0x2802b89eu, 0x5f058808u, 0xc60cd9b2u, 0xb10be924u,
    0x2f6f7c87u, 0x58684c11u, 0xc1611dabu, 0xb6662d3du, 0x76dc4190u, 0x01db7106u,
    0x98d220bcu, 0xefd5102au, 0x71b18589u, 0x06b6b51fu, 0x9fbfe4a5u, 0xe8b8d433u,
    0x7807c9a2u, 0x0f00f934u, 0x9609a88eu, 0xe10e9818u, 0x7f6a0dbbu, 0x086d3d2du,
    0x91646c97u, 0xe6635c01u, 0x6b6b51f4u, 0x1c6c6162u, 0x856530d8u, 0xf262004eu,
    0x6c0695edu, 0x1b01a57bu, 0x8208f4c1u, 0xf50fc457u, 0x65b0d9c6u, 0x12b7e950u,
    0x8bbeb8eau, 0xfcb9887cu, 0x62dd1ddfu, 0x15da2d49u, 0x8cd37cf3u, 0xfbd44c65u,
    0x4db26158u, 0x3ab551ceu, 0xa3bc0074u, 0xd4bb30e2u, 0x4adfa541u, 0x3dd895d7u,
    0xa4d1c46du, 0xd3d6f4fbu, 0x4369e96au, 0x346ed9fcu, 0xad678846u, 0xda60b8d0u,
    0x44042d73u, 0x33031de5u, 0xaa0a4c5fu, 0xdd0d7cc9u, 0x5005713cu, 0x270241aau,
    0xbe0b1010u, 0xc90c2086u, 0x5768b525u, 0x206f85b3u, 0xb966d409u, 0xce61e49fu,
    0x5edef90eu, 0x29d9c998u, 0xb0d09822u, 0xc7d7a8b4u, 0x59b33d17u, 0x2eb40d81u,
    0xb7bd5c3bu, 0xc0ba6cadu, 0xedb88320u, 0x9abfb3b6u, 0x03b6e20cu, 0x74b1d29au,
    0xead54739u, 0x9dd277afu, 0x04db2615u, 0x73dc1683u, 0xe3630b12u, 0x94643b84u,
    0x0d6d6a3eu, 0x7a6a5aa8u, 0xe40ecf0bu, 0x9309ff9du, 0x0a00ae27u, 0x7d079eb1u,
    0xf00f9344u, 0x8708a3d2u, 0x1e01f268u, 0x6906c2feu, 0xf762575du, 0x806567cbu,
    0x196c3671u, 0x6e6b06e7u, 0xfed41b76u, 0x89d32be0u, 0x10da7a5au, 0x67dd4accu,
    0xf9b9df6fu, 0x8ebeeff9u, 0x17b7be43u, 0x60b08ed5u, 0xd6d6a3e8u, 0xa1d1937eu,
    0x38d8c2c4u, 0x4fdff252u, 0xd1bb67f1u, 0xa6bc5767u, 0x3fb506ddu, 0x48b2364bu,
    0xd80d2bdau, 0xaf0a1b4cu, 0x36034af6u, 0x41047a60u, 0xdf60efc3u, 0xa867df55u,
    0x316e8eefu, 0x4669be79u, 0xcb61b38cu, 0xbc66831au, 0x256fd2a0u, 0x5268e236u,
    0xcc0c7795u, 0xbb0b4703u, 0x220216b9u, 0x5505262fu, 0xc5ba3bbeu, 0xb2bd0b28u,
    0x2bb45a92u, 0x5cb36a04u, 0xc2d7ffa7u, 0xb5d0cf31u, 0x2cd99e8bu, 0x5bdeae1du,
    0x9b64c2b0u, 0xec63f226u, 0x756aa39cu, 0x026d930au, 0x9c0906a9u, 0xeb0e363fu,
    0x72076785u, 0x05005713u, 0x95bf4a82u, 0xe2b87a14u, 0x7bb12baeu, 0x0cb61b38u,
    0x92d28e9bu, 0xe5d5be0du, 0x7cdcefb7u, 0x0bdbdf21u, 0x86d3d2d4u, 0xf1d4e242u,
    0x68ddb3f8u, 0x1fda836eu, 0x81be16cdu, 0xf6b9265bu, 0x6fb077e1u, 0x18b74777u,
    0x88085ae6u, 0xff0f6a70u, 0x66063bcau, 0x11010b5cu, 0x8f659effu, 0xf862ae69u,
    0x616bffd3u, 0x166ccf45u, 0xa00ae278u, 0xd70dd2eeu, 0x4e048354u, 0x3903b3c2u,
    0xa7672661u, 0xd06016f7u, 0x4969474du, 0x3e6e77dbu, 0xaed16a4au, 0xd9d65adcu,
    0x40df0b66u, 0x37d83bf0u, 0xa9bcae53u, 0xdebb9ec5u, 0x47b2cf7fu, 0x30b5ffe9u,
    0xbdbdf21cu, 0xcabac28au, 0x53b39330u, 0x24b4a3a6u, 0xbad03605u, 0xcdd70693u,
    0x54de5729u, 0x23d967bfu, 0xb3667a2eu, 0xc4614ab8u, 0x5d681b02u, 0x2a6f2b94u,
    0xb40bbe37u, 0xc30c8ea1u, 0x5a05df1bu, 0x2d02ef8du,
};

AGDEF uint32_t ag_crc32(uint32_t crc, const void *data, size_t len) {
    const unsigned char *p = (const unsigned char *)data;
    crc = ~crc;
    if (len >= ((size_t)1 << 16)) {
        /* slicing-by-8 for long inputs (storages of big checkpoints); the 8 KB of tables are
           built on the stack, which costs little next to the bytes they save */
        uint32_t t[8][256];
        int i, k;
        for (i = 0; i < 256; i++) t[0][i] = ag__crc_table[i];
        for (k = 1; k < 8; k++)
            for (i = 0; i < 256; i++) t[k][i] = (t[k - 1][i] >> 8) ^ ag__crc_table[t[k - 1][i] & 0xffu];
        while (len >= 8) {
            uint32_t a = crc ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
            crc = t[7][a & 0xffu] ^ t[6][(a >> 8) & 0xffu] ^ t[5][(a >> 16) & 0xffu] ^ t[4][a >> 24] ^
                  t[3][p[4]] ^ t[2][p[5]] ^ t[1][p[6]] ^ t[0][p[7]];
            p += 8;
            len -= 8;
        }
    }
    while (len--) crc = ag__crc_table[(crc ^ *p++) & 0xffu] ^ (crc >> 8);
    return ~crc;
}

AGDEF uint32_t ag_adler32(uint32_t adler, const void *data, size_t len) {
    const unsigned char *p = (const unsigned char *)data;
    uint32_t a = adler & 0xffffu, b = adler >> 16;
    while (len) {
        size_t n = len < 5552 ? len : 5552;
        len -= n;
        while (n--) { a += *p++; b += a; }
        a %= 65521u;
        b %= 65521u;
    }
    return b << 16 | a;
}

/* ---- DEFLATE decoder (RFC 1951) with optional zlib wrapper (RFC 1950) ---- */

#define AG__FAST_BITS 9
typedef struct ag__huff {
    uint16_t fast[1 << AG__FAST_BITS];  /* (length << 9) | symbol for codes <= 9 bits; 0 = slow */
    uint16_t count[16];                 /* number of codes of each length */
    uint16_t symbol[288];               /* symbols ordered by code */
} ag__huff;

/* An input window: a whole buffer in memory, or a file read 1 MB at a time (in set). When
   more is needed, the unread bytes and 8 bytes before them move to the front first, so the
   inflater can give back the whole bytes left in its 64-bit buffer. */
typedef struct ag__src {
    const unsigned char *p; size_t len, pos;
    ag__in *in; unsigned char *buf; size_t cap; int eof, ioerr;
} ag__src;

/* make at least k bytes (k <= cap / 2) available at p + pos; -1 when the input ends first */
static int ag__src_need(ag__src *s, size_t k) {
    size_t hist, keep;
    if (s->len - s->pos >= k) return 0;
    if (!s->in || s->eof) return -1;
    hist = s->pos < 8 ? s->pos : 8;
    keep = s->len - s->pos + hist;
    memmove(s->buf, s->p + s->pos - hist, keep);
    s->p = s->buf; s->pos = hist; s->len = keep;
    while (s->len - s->pos < k && !s->eof) {
        size_t got = ag__in_read(s->in, s->buf + s->len, s->cap - s->len, &s->ioerr);
        if (got == 0) { s->eof = 1; break; }
        s->len += got;
    }
    return s->len - s->pos >= k ? 0 : -1;
}
static int ag__src_byte(ag__src *s) { return ag__src_need(s, 1) ? -1 : s->p[s->pos++]; }

typedef struct ag__inf {
    ag__src *src;     /* streamed input, or NULL when in holds all of it */
    const unsigned char *in;
    size_t in_len, pos;
    uint64_t bits;    /* bit buffer, LSB first */
    int nbits;        /* valid bits in the buffer */
    int pad;          /* zero bits past the end of input at the top of the buffer */
    unsigned char *out;
    size_t out_len, out_cap, max_out;
    ag_error *err;
    /* streaming: when sink is set, output beyond the 32 KB window goes to it in chunks
       (CRC-32 kept over everything handed over), so out stays about 1 MB */
    int (*sink)(void *user, const unsigned char *data, size_t len, ag_error *err);
    void *sink_user;
    uint64_t flushed;
    uint32_t crc;
    int stopped;      /* the sink returned > 0: it wants no more (not an error) */
} ag__inf;

static const uint16_t ag__len_base[29] = { 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31,
    35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258 };
static const unsigned char ag__len_extra[29] = { 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2,
    3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0 };
static const uint16_t ag__dist_base[30] = { 1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129,
    193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577 };
static const unsigned char ag__dist_extra[30] = { 0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6,
    7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13 };

/* Build a canonical Huffman decoder from code lengths (each 0..15). Returns -1 for an
   over-subscribed or (except for a single code, or no code at all) incomplete set. */
static int ag__huff_build(ag__huff *h, const unsigned char *lens, int n) {
    uint16_t offs[16], next[16];
    int len, sym, left, maxlen = 0, ncodes = 0;
    unsigned code;
    memset(h->count, 0, sizeof h->count);
    memset(h->fast, 0, sizeof h->fast);
    for (sym = 0; sym < n; sym++) h->count[lens[sym]]++;
    h->count[0] = 0;
    left = 1;
    for (len = 1; len < 16; len++) {
        left <<= 1;
        left -= h->count[len];
        if (left < 0) return -1;
        if (h->count[len]) maxlen = len;
        ncodes += h->count[len];
    }
    if (left > 0 && ncodes > 0 && !(ncodes == 1 && maxlen == 1)) return -1;
    offs[1] = 0;
    for (len = 1; len < 15; len++) offs[len + 1] = (uint16_t)(offs[len] + h->count[len]);
    for (sym = 0; sym < n; sym++)
        if (lens[sym]) h->symbol[offs[lens[sym]]++] = (uint16_t)sym;
    code = 0;
    next[0] = 0;
    for (len = 1; len < 16; len++) {
        code = (code + h->count[len - 1]) << 1;
        next[len] = (uint16_t)code;
    }
    for (sym = 0; sym < n; sym++) {
        unsigned c, rev = 0, j;
        int k;
        len = lens[sym];
        if (!len) continue;
        c = next[len]++;
        if (len > AG__FAST_BITS) continue;
        for (k = 0; k < len; k++) rev |= ((c >> k) & 1u) << (len - 1 - k);
        for (j = rev; j < (1u << AG__FAST_BITS); j += 1u << len)
            h->fast[j] = (uint16_t)(len << 9 | sym);
    }
    return 0;
}

/* refill the window from the streamed source; -1 at its end */
static int ag__inf_pull(ag__inf *s, size_t k) {
    int r;
    s->src->pos = s->pos;
    r = ag__src_need(s->src, k);
    s->in = s->src->p; s->in_len = s->src->len; s->pos = s->src->pos;
    return r;
}

static void ag__inf_refill(ag__inf *s) {
    while (s->nbits <= 56) {
        uint64_t byte = 0;
        if (s->pos < s->in_len || (s->src && !ag__inf_pull(s, 1))) byte = s->in[s->pos++];
        else s->pad += 8;
        s->bits |= byte << s->nbits;
        s->nbits += 8;
    }
}

static unsigned ag__inf_getbits(ag__inf *s, int n) {
    unsigned v;
    if (n == 0) return 0;
    if (s->nbits < n) ag__inf_refill(s);
    v = (unsigned)(s->bits & ((1u << n) - 1u));
    s->bits >>= n;
    s->nbits -= n;
    return v;
}

static int ag__inf_overrun(const ag__inf *s) { return s->nbits < s->pad; }

static int ag__huff_decode(ag__inf *s, const ag__huff *h) {
    unsigned e;
    int len, code = 0, first = 0, index = 0;
    if (s->nbits < 16) ag__inf_refill(s);
    e = h->fast[s->bits & ((1u << AG__FAST_BITS) - 1u)];
    if (e) {
        len = (int)(e >> 9);
        s->bits >>= len;
        s->nbits -= len;
        return (int)(e & 511u);
    }
    for (len = 1; len < 16; len++) {
        int count = h->count[len];
        code |= (int)((s->bits >> (len - 1)) & 1u);
        if (code - count < first) {
            s->bits >>= len;
            s->nbits -= len;
            return h->symbol[index + (code - first)];
        }
        index += count;
        first += count;
        first <<= 1;
        code <<= 1;
    }
    return -1;
}

/* hand out[0..n) to the sink and keep the rest (the back-reference window) */
static int ag__inf_flush(ag__inf *s, size_t n) {
    int r;
    s->crc = ag_crc32(s->crc, s->out, n);
    r = s->sink(s->sink_user, s->out, n, s->err);
    if (r) { s->stopped = r > 0; return -1; }
    memmove(s->out, s->out + n, s->out_len - n);
    s->out_len -= n;
    s->flushed += n;
    return 0;
}

static int ag__inf_reserve(ag__inf *s, size_t n) {
    size_t need;
    if (s->sink && s->out_len + n > s->out_cap && s->out_len > 32768 && ag__inf_flush(s, s->out_len - 32768)) return -1;
    if (n > s->max_out - s->out_len)
        return ag__fail(s->err, "inflate: output exceeds the limit of %lu bytes", (unsigned long)s->max_out);
    need = s->out_len + n;
    if (need > s->out_cap) {
        size_t ncap = s->out_cap ? s->out_cap : 1024;
        unsigned char *nb;
        while (ncap < need) ncap = ncap > SIZE_MAX / 2 ? SIZE_MAX : ncap * 2;
        if (ncap > s->max_out) ncap = s->max_out;
        nb = (unsigned char *)AG_REALLOC(s->out, ncap ? ncap : 1);
        if (!nb) return ag__fail(s->err, "inflate: out of memory (%lu bytes)", (unsigned long)ncap);
        s->out = nb;
        s->out_cap = ncap;
    }
    return 0;
}

/* Give back whole bytes still in the bit buffer (after byte alignment). */
static int ag__inf_unread(ag__inf *s) {
    int drop = s->nbits & 7;
    s->bits >>= drop;
    s->nbits -= drop;
    if (ag__inf_overrun(s)) return ag__fail(s->err, "inflate: truncated data");
    s->pos -= (size_t)((s->nbits - s->pad) / 8);
    s->bits = 0;
    s->nbits = 0;
    s->pad = 0;
    return 0;
}

static int ag__inf_codes(ag__inf *s, const ag__huff *lit, const ag__huff *dist) {
    for (;;) {
        int sym = ag__huff_decode(s, lit);
        if (sym < 0) return ag__fail(s->err, "inflate: invalid literal/length code");
        if (ag__inf_overrun(s)) return ag__fail(s->err, "inflate: truncated data");
        if (sym < 256) {
            if (s->out_len == s->out_cap && ag__inf_reserve(s, 1)) return -1;
            s->out[s->out_len++] = (unsigned char)sym;
        } else if (sym == 256) {
            return 0;
        } else {
            size_t len, d, i;
            unsigned char *o;
            int ds;
            sym -= 257;
            if (sym >= 29) return ag__fail(s->err, "inflate: invalid length symbol");
            len = ag__len_base[sym] + ag__inf_getbits(s, ag__len_extra[sym]);
            ds = ag__huff_decode(s, dist);
            if (ds < 0 || ds >= 30) return ag__fail(s->err, "inflate: invalid distance code");
            d = ag__dist_base[ds] + ag__inf_getbits(s, ag__dist_extra[ds]);
            if (ag__inf_overrun(s)) return ag__fail(s->err, "inflate: truncated data");
            if (d > s->out_len) return ag__fail(s->err, "inflate: distance %lu reaches before the start", (unsigned long)d);
            if (ag__inf_reserve(s, len)) return -1;
            o = s->out + s->out_len;
            if (d >= len) memcpy(o, o - d, len);
            else for (i = 0; i < len; i++) o[i] = o[(ptrdiff_t)i - (ptrdiff_t)d];
            s->out_len += len;
        }
    }
}

static int ag__inf_stored(ag__inf *s) {
    size_t n;
    if (ag__inf_unread(s)) return -1;
    if (s->in_len - s->pos < 4 && (!s->src || ag__inf_pull(s, 4))) return ag__fail(s->err, "inflate: truncated stored block");
    n = ag__rd16(s->in + s->pos);
    if (n != (~ag__rd16(s->in + s->pos + 2) & 0xffffu))
        return ag__fail(s->err, "inflate: stored block length check failed");
    s->pos += 4;
    if (s->in_len - s->pos < n && !s->src) return ag__fail(s->err, "inflate: truncated stored block");
    if (ag__inf_reserve(s, n)) return -1;
    while (n) {
        size_t k = s->in_len - s->pos;
        if (!k && ag__inf_pull(s, 1)) return ag__fail(s->err, "inflate: truncated stored block");
        k = s->in_len - s->pos < n ? s->in_len - s->pos : n;
        memcpy(s->out + s->out_len, s->in + s->pos, k);
        s->out_len += k; s->pos += k; n -= k;
    }
    return 0;
}

static int ag__inf_fixed(ag__inf *s, ag__huff *lit, ag__huff *dist) {
    unsigned char lens[288];
    int i;
    for (i = 0; i < 144; i++) lens[i] = 8;
    for (; i < 256; i++) lens[i] = 9;
    for (; i < 280; i++) lens[i] = 7;
    for (; i < 288; i++) lens[i] = 8;
    ag__huff_build(lit, lens, 288);
    for (i = 0; i < 32; i++) lens[i] = 5;   /* 30 and 31 are decoded, then rejected */
    ag__huff_build(dist, lens, 32);
    return ag__inf_codes(s, lit, dist);
}

static int ag__inf_dynamic(ag__inf *s, ag__huff *lit, ag__huff *dist) {
    static const unsigned char order[19] = { 16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15 };
    unsigned char lens[320];
    int nlit, ndist, ncode, i, n;
    nlit = (int)ag__inf_getbits(s, 5) + 257;
    ndist = (int)ag__inf_getbits(s, 5) + 1;
    ncode = (int)ag__inf_getbits(s, 4) + 4;
    if (nlit > 286 || ndist > 30) return ag__fail(s->err, "inflate: bad code counts");
    memset(lens, 0, sizeof lens);
    for (i = 0; i < ncode; i++) lens[order[i]] = (unsigned char)ag__inf_getbits(s, 3);
    if (ag__inf_overrun(s)) return ag__fail(s->err, "inflate: truncated data");
    if (ag__huff_build(lit, lens, 19)) return ag__fail(s->err, "inflate: bad code-length code");
    n = 0;
    while (n < nlit + ndist) {
        int sym = ag__huff_decode(s, lit), rep, val = 0;
        if (sym < 0) return ag__fail(s->err, "inflate: invalid code-length symbol");
        if (sym < 16) { lens[n++] = (unsigned char)sym; continue; }
        if (sym == 16) {
            if (n == 0) return ag__fail(s->err, "inflate: repeat with no previous length");
            val = lens[n - 1];
            rep = 3 + (int)ag__inf_getbits(s, 2);
        } else if (sym == 17) rep = 3 + (int)ag__inf_getbits(s, 3);
        else rep = 11 + (int)ag__inf_getbits(s, 7);
        if (n + rep > nlit + ndist) return ag__fail(s->err, "inflate: too many code lengths");
        while (rep--) lens[n++] = (unsigned char)val;
        if (ag__inf_overrun(s)) return ag__fail(s->err, "inflate: truncated data");
    }
    if (ag__inf_overrun(s)) return ag__fail(s->err, "inflate: truncated data");
    if (lens[256] == 0) return ag__fail(s->err, "inflate: no end-of-block code");
    if (ag__huff_build(lit, lens, nlit)) return ag__fail(s->err, "inflate: bad literal/length lengths");
    if (ag__huff_build(dist, lens + nlit, ndist)) return ag__fail(s->err, "inflate: bad distance lengths");
    return ag__inf_codes(s, lit, dist);
}

/* Inflate in[0..in_len) (a zlib stream when zlib_wrapped, else raw DEFLATE) into a new
   AG_MALLOC buffer of at most max_out bytes; size_hint is the expected size (0 if unknown).
   *consumed (may be NULL) gets the number of input bytes used. */
static int ag__inflate_to(const unsigned char *in, size_t in_len, int zlib_wrapped, size_t size_hint,
                          size_t max_out, unsigned char **out, size_t *out_len, size_t *consumed,
                          int (*sink)(void *, const unsigned char *, size_t, ag_error *), void *sink_user,
                          uint32_t *crc, uint64_t *total, ag__src *src, ag_error *err);
static int ag__inflate(const unsigned char *in, size_t in_len, int zlib_wrapped, size_t size_hint,
                       size_t max_out, unsigned char **out, size_t *out_len, size_t *consumed, ag_error *err) {
    return ag__inflate_to(in, in_len, zlib_wrapped, size_hint, max_out, out, out_len, consumed, NULL, NULL, NULL, NULL, NULL, err);
}
/* Raw DEFLATE from src (left just past the stream) into sink(user, chunk, len, err) (which
   returns -1 to stop, with its message in err, or 1 to stop without an error: then this
   returns 1); *crc gets the CRC-32 and *total the length of everything it was given. */
static int ag__inflate_stream(ag__src *src, int (*sink)(void *, const unsigned char *, size_t, ag_error *), void *sink_user,
                              uint32_t *crc, uint64_t *total, ag_error *err) {
    unsigned char *out; size_t out_len;
    return ag__inflate_to(src->p, src->len, 0, (size_t)1 << 20, SIZE_MAX, &out, &out_len, NULL, sink, sink_user, crc, total, src, err);
}
static int ag__inflate_to(const unsigned char *in, size_t in_len, int zlib_wrapped, size_t size_hint,
                          size_t max_out, unsigned char **out, size_t *out_len, size_t *consumed,
                          int (*sink)(void *, const unsigned char *, size_t, ag_error *), void *sink_user,
                          uint32_t *crc, uint64_t *total, ag__src *src, ag_error *err) {
    ag__inf s;
    ag__huff *tabs;
    int final = 0;
    *out = NULL;
    *out_len = 0;
    memset(&s, 0, sizeof s);
    s.sink = sink;
    s.sink_user = sink_user;
    s.in = in;
    s.in_len = in ? in_len : 0;
    if (src) { s.src = src; s.pos = src->pos; }
    s.max_out = max_out;
    s.err = err;
    if (zlib_wrapped) {
        if (s.in_len < 2) return ag__fail(err, "inflate: truncated zlib header");
        if ((in[0] & 15) != 8 || (in[0] >> 4) > 7 || ((unsigned)in[0] << 8 | in[1]) % 31 != 0)
            return ag__fail(err, "inflate: bad zlib header");
        if (in[1] & 0x20) return ag__fail(err, "inflate: zlib preset dictionary not supported");
        s.pos = 2;
    }
    tabs = (ag__huff *)AG_MALLOC(2 * sizeof *tabs);
    if (!tabs) return ag__fail(err, "inflate: out of memory");
    if (size_hint) {
        s.out_cap = size_hint < max_out ? size_hint : max_out;
        s.out = (unsigned char *)AG_MALLOC(s.out_cap ? s.out_cap : 1);
        if (!s.out) { AG_FREE(tabs); return ag__fail(err, "inflate: out of memory (%lu bytes)", (unsigned long)s.out_cap); }
    }
    while (!final) {
        unsigned type;
        int r;
        final = (int)ag__inf_getbits(&s, 1);
        type = ag__inf_getbits(&s, 2);
        if (ag__inf_overrun(&s)) { r = ag__fail(err, "inflate: truncated data"); }
        else if (type == 0) r = ag__inf_stored(&s);
        else if (type == 1) r = ag__inf_fixed(&s, &tabs[0], &tabs[1]);
        else if (type == 2) r = ag__inf_dynamic(&s, &tabs[0], &tabs[1]);
        else r = ag__fail(err, "inflate: invalid block type 3");
        if (r) { AG_FREE(tabs); AG_FREE(s.out); return s.stopped ? 1 : -1; }
    }
    AG_FREE(tabs);
    if (ag__inf_unread(&s)) { AG_FREE(s.out); return -1; }
    if (src) src->pos = s.pos;
    if (sink) {
        int r = s.out_len ? ag__inf_flush(&s, s.out_len) : 0;
        AG_FREE(s.out);
        if (r) return s.stopped ? 1 : -1;
        *crc = s.crc;
        *total = s.flushed;
        if (consumed) *consumed = s.pos;
        return 0;
    }
    if (zlib_wrapped) {
        if (s.in_len - s.pos < 4) { AG_FREE(s.out); return ag__fail(err, "inflate: truncated zlib checksum"); }
        if (ag__rd32be(s.in + s.pos) != ag_adler32(1, s.out, s.out_len)) {
            AG_FREE(s.out);
            return ag__fail(err, "inflate: zlib checksum (adler32) mismatch");
        }
        s.pos += 4;
    }
    if (!s.out) {
        s.out = (unsigned char *)AG_MALLOC(1);
        if (!s.out) return ag__fail(err, "inflate: out of memory");
    }
    *out = s.out;
    *out_len = s.out_len;
    if (consumed) *consumed = s.pos;
    return 0;
}

/* ---- DEFLATE encoder: LZ77 (hash chains, 32 KB window) + one fixed-Huffman block ---- */

typedef struct ag__bitw { unsigned char *buf; size_t len, cap; uint32_t bits; int nbits; } ag__bitw;

/* The buffer is sized for the worst case up front, so writes never fail. */
static void ag__bw_put(ag__bitw *w, uint32_t v, int n) {
    w->bits |= v << w->nbits;
    w->nbits += n;
    while (w->nbits >= 8) {
        AG_ASSERT(w->len < w->cap);
        w->buf[w->len++] = (unsigned char)w->bits;
        w->bits >>= 8;
        w->nbits -= 8;
    }
}

static void ag__bw_code(ag__bitw *w, uint32_t code, int len) {   /* Huffman codes go MSB first */
    uint32_t rev = 0;
    int k;
    for (k = 0; k < len; k++) rev |= ((code >> k) & 1u) << (len - 1 - k);
    ag__bw_put(w, rev, len);
}

static void ag__bw_fixed_sym(ag__bitw *w, int sym) {
    if (sym < 144) ag__bw_code(w, 0x30u + (uint32_t)sym, 8);
    else if (sym < 256) ag__bw_code(w, 0x190u + (uint32_t)(sym - 144), 9);
    else if (sym < 280) ag__bw_code(w, (uint32_t)(sym - 256), 7);
    else ag__bw_code(w, 0xc0u + (uint32_t)(sym - 280), 8);
}

#define AG__WSIZE 32768u
#define AG__HASH_BITS 15
/* zlib stream of in[0..n) into a new AG_MALLOC buffer. */
static int ag__deflate_zlib(const unsigned char *in, size_t n, unsigned char **out, size_t *out_len, ag_error *err) {
    ag__bitw w;
    size_t *head = NULL, *prev = NULL, i, cap;
    uint32_t adler;
    *out = NULL;
    *out_len = 0;
    if (n > (SIZE_MAX - 64) / 9 * 8) return ag__fail(err, "deflate: input too large");
    cap = n / 8 * 9 + n % 8 * 2 + 64;   /* at most 9 bits per input byte */
    memset(&w, 0, sizeof w);
    w.buf = (unsigned char *)AG_MALLOC(cap);
    head = (size_t *)AG_MALLOC(((size_t)1 << AG__HASH_BITS) * sizeof *head);
    prev = (size_t *)AG_MALLOC(AG__WSIZE * sizeof *prev);
    if (!w.buf || !head || !prev) {
        AG_FREE(w.buf); AG_FREE(head); AG_FREE(prev);
        return ag__fail(err, "deflate: out of memory");
    }
    w.cap = cap;
    memset(head, 0, ((size_t)1 << AG__HASH_BITS) * sizeof *head);   /* 0 = empty, else pos + 1 */
    memset(prev, 0, AG__WSIZE * sizeof *prev);
    w.buf[w.len++] = 0x78;
    w.buf[w.len++] = 0x01;
    ag__bw_put(&w, 1, 1);   /* final block */
    ag__bw_put(&w, 1, 2);   /* fixed Huffman */
    i = 0;
    while (i < n) {
        size_t best = 0, bestd = 0;
        if (n - i >= 3) {
            uint32_t hv = ((uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2]) * 2654435761u >> (32 - AG__HASH_BITS);
            size_t cand = head[hv], maxl = n - i < 258 ? n - i : 258;
            int chain = 0;
            while (cand && chain++ < 48) {
                size_t c = cand - 1, l = 0;
                if (i - c > AG__WSIZE) break;
                if (in[c + best] == in[i + best]) {
                    while (l < maxl && in[c + l] == in[i + l]) l++;
                    if (l > best) { best = l; bestd = i - c; if (l == maxl) break; }
                }
                if (prev[c % AG__WSIZE] >= cand) break;
                cand = prev[c % AG__WSIZE];
            }
            prev[i % AG__WSIZE] = head[hv];
            head[hv] = i + 1;
        }
        if (best >= 3) {
            int k, dk;
            size_t j;
            for (k = 28; ag__len_base[k] > best; k--) {}
            for (dk = 29; ag__dist_base[dk] > bestd; dk--) {}
            ag__bw_fixed_sym(&w, 257 + k);
            ag__bw_put(&w, (uint32_t)(best - ag__len_base[k]), ag__len_extra[k]);
            ag__bw_code(&w, (uint32_t)dk, 5);
            ag__bw_put(&w, (uint32_t)(bestd - ag__dist_base[dk]), ag__dist_extra[dk]);
            for (j = i + 1; j < i + best && n - j >= 3; j++) {
                uint32_t hv = ((uint32_t)in[j] << 16 | (uint32_t)in[j + 1] << 8 | in[j + 2]) * 2654435761u >> (32 - AG__HASH_BITS);
                prev[j % AG__WSIZE] = head[hv];
                head[hv] = j + 1;
            }
            i += best;
        } else {
            ag__bw_fixed_sym(&w, in[i]);
            i++;
        }
    }
    ag__bw_fixed_sym(&w, 256);
    if (w.nbits) ag__bw_put(&w, 0, 8 - w.nbits);
    adler = ag_adler32(1, in, n);
    AG_ASSERT(w.len + 4 <= w.cap);
    ag__wr32be(w.buf + w.len, adler);
    w.len += 4;
    AG_FREE(head);
    AG_FREE(prev);
    *out = w.buf;
    *out_len = w.len;
    return 0;
}

/* ---- gzip (RFC 1952): members of raw DEFLATE with a CRC-32 and length trailer ------- */

static int ag__gzip_header(ag__src *s, ag_error *err) {
    int flags, k, c;
    if (ag__src_need(s, 10)) {
        if (s->len - s->pos >= 2 && s->p[s->pos] == 0x1f && s->p[s->pos + 1] == 0x8b) return ag__fail(err, "gzip: truncated header");
        return ag__fail(err, "gzip: bad magic (not a gzip file)");
    }
    if (s->p[s->pos] != 0x1f || s->p[s->pos + 1] != 0x8b) return ag__fail(err, "gzip: bad magic (not a gzip file)");
    if (s->p[s->pos + 2] != 8) return ag__fail(err, "gzip: compression method %d (only 8, deflate)", s->p[s->pos + 2]);
    flags = s->p[s->pos + 3];
    if (flags & 0xe0) return ag__fail(err, "gzip: reserved flag bits set");
    s->pos += 10;
    if (flags & 4) {                                  /* FEXTRA */
        int lo = ag__src_byte(s), hi = ag__src_byte(s);
        if (hi < 0) return ag__fail(err, "gzip: truncated header");
        for (k = 0; k < (lo | hi << 8); k++) if (ag__src_byte(s) < 0) return ag__fail(err, "gzip: truncated header");
    }
    if (flags & 8) { do c = ag__src_byte(s); while (c > 0); if (c < 0) return ag__fail(err, "gzip: truncated header"); }   /* FNAME */
    if (flags & 16) { do c = ag__src_byte(s); while (c > 0); if (c < 0) return ag__fail(err, "gzip: truncated header"); }  /* FCOMMENT */
    if ((flags & 2) && (ag__src_byte(s) < 0 || ag__src_byte(s) < 0)) return ag__fail(err, "gzip: truncated header");    /* FHCRC */
    return 0;
}

/* every member, one after another (as gzip -d does); trailing zero padding is allowed.
   1 (no error) when the sink stopped the reading early (the rest is neither read nor checked) */
static int ag__gunzip_src(ag__src *src, int (*sink)(void *, const unsigned char *, size_t, ag_error *), void *user, ag_error *err) {
    do {
        uint32_t crc = 0; uint64_t total = 0;
        int r;
        if (ag__gzip_header(src, err)) return -1;
        if ((r = ag__inflate_stream(src, sink, user, &crc, &total, err)) != 0) return r;
        if (ag__src_need(src, 8)) return ag__fail(err, "gzip: truncated (no CRC-32/length trailer)");
        if (ag__rd32(src->p + src->pos) != crc) return ag__fail(err, "gzip: CRC-32 mismatch (corrupt data)");
        if (ag__rd32(src->p + src->pos + 4) != (uint32_t)total) return ag__fail(err, "gzip: length in the trailer disagrees with the data");
        src->pos += 8;
        while (!ag__src_need(src, 1) && src->p[src->pos] == 0) src->pos++;
    } while (!ag__src_need(src, 1));
    if (src->ioerr) return ag__fail(err, "gzip: read error");
    return 0;
}

static int ag__gunzip_stream(const unsigned char *buf, size_t len,
                             int (*sink)(void *, const unsigned char *, size_t, ag_error *), void *user, ag_error *err) {
    ag__src src;
    memset(&src, 0, sizeof src);
    src.p = buf; src.len = buf ? len : 0;
    return ag__gunzip_src(&src, sink, user, err);
}

typedef struct ag__membuf { unsigned char *data; size_t len, cap, max; } ag__membuf;
static int ag__membuf_sink(void *user, const unsigned char *p, size_t n, ag_error *err) {
    ag__membuf *m = (ag__membuf *)user;
    if (n > m->max - m->len) return ag__fail(err, "gzip: output exceeds the limit of %lu bytes", (unsigned long)m->max);
    if (m->len + n > m->cap) {
        size_t cap = m->cap ? m->cap : 1 << 16;
        unsigned char *nb;
        while (cap < m->len + n) cap = cap > SIZE_MAX / 2 ? SIZE_MAX : cap * 2;
        nb = (unsigned char *)AG_REALLOC(m->data, cap);
        if (!nb) return ag__fail(err, "gzip: out of memory (%lu bytes)", (unsigned long)cap);
        m->data = nb; m->cap = cap;
    }
    memcpy(m->data + m->len, p, n);
    m->len += n;
    return 0;
}

AGDEF int ag_gunzip(const unsigned char *buf, size_t len, size_t max_out, unsigned char **out, size_t *out_len, ag_error *err) {
    ag__membuf m;
    memset(&m, 0, sizeof m);
    *out = NULL; *out_len = 0;
    m.max = max_out ? max_out : SIZE_MAX;
    if (len >= 18 && buf[0] == 0x1f && buf[1] == 0x8b) {      /* size the buffer from the (last) ISIZE */
        size_t isize = ag__rd32(buf + len - 4);   /* trusted only as far as DEFLATE can expand (1032:1) */
        if (isize > 0 && isize <= m.max && isize < ((size_t)1 << 31) && isize / 1032 <= len) {
            m.data = (unsigned char *)AG_MALLOC(isize);
            if (m.data) m.cap = isize;
        }
    }
    if (ag__gunzip_stream(buf, len, ag__membuf_sink, &m, err)) { AG_FREE(m.data); return -1; }
    if (!m.data && !(m.data = (unsigned char *)AG_MALLOC(1))) return ag__fail(err, "gzip: out of memory");
    *out = m.data; *out_len = m.len;
    return 0;
}

/* ---- tar (POSIX ustar and GNU long names), streamed: plain or gzipped -------------- */

typedef struct ag__tar {
    ag_tar_callback cb; void *user;
    unsigned char hdr[512]; size_t hdr_fill;   /* header being assembled */
    uint64_t remaining, skip, size, offset;   /* member data left, padding left, member size, data seen */
    uint64_t tail;                             /* bytes seen after the end-of-archive block */
    int in_member, ended, deliver, longname_pending, reading_longname, pax;
    char name[1024];                           /* the current member's name (GNU ././@LongLink or ustar prefix/name) */
    char *longname; size_t longname_len;
} ag__tar;

static uint64_t ag__tar_octal(const unsigned char *f, int n, int *bad) {
    uint64_t v = 0; int i = 0, digits = 0;
    if (f[0] & 0x80) {                         /* GNU base-256 for sizes >= 8 GB */
        v = f[0] & 0x3f;
        for (i = 1; i < n; i++) { if (v >> 55) { *bad = 1; return 0; } v = v << 8 | f[i]; }
        return v;
    }
    while (i < n && f[i] == ' ') i++;
    for (; i < n && f[i] >= '0' && f[i] <= '7'; i++, digits++) {
        if (v >> 60) { *bad = 1; return 0; }
        v = v * 8 + (uint64_t)(f[i] - '0');
    }
    if (i < n && f[i] != 0 && f[i] != ' ') *bad = 1;
    if (!digits) *bad = 1;
    return v;
}

static int ag__tar_header(ag__tar *t, ag_error *err) {
    const unsigned char *h = t->hdr;
    unsigned sum = 0; int i, bad = 0; uint64_t stored;
    char type;
    for (i = 0; i < 512 && !h[i]; i++) {}
    if (i == 512) { t->ended = 1; return 0; }  /* an end-of-archive zero block */
    for (i = 0; i < 512; i++) sum += (i >= 148 && i < 156) ? ' ' : h[i];
    stored = ag__tar_octal(h + 148, 8, &bad);
    if (bad || stored != sum) return ag__fail(err, "tar: header checksum mismatch (not a tar archive, or corrupt)");
    t->size = ag__tar_octal(h + 124, 12, &bad);
    if (bad) return ag__fail(err, "tar: bad size field");
    type = (char)h[156];
    if (t->reading_longname) t->reading_longname = 0;
    if (type == 'L' || type == 'x') {           /* GNU long name / pax header: the next member's name */
        if (t->size > 65536) return ag__fail(err, "tar: %s of %lu bytes", type == 'L' ? "long name" : "pax header", (unsigned long)t->size);
        t->pax = type == 'x';
        AG_FREE(t->longname);
        t->longname = (char *)AG_MALLOC((size_t)t->size + 1);
        if (!t->longname) return ag__fail(err, "tar: out of memory");
        t->longname_len = 0;
        t->reading_longname = 1;
        t->deliver = 0;
    } else {
        if (t->longname_pending) {
            size_t n = t->longname_len < sizeof t->name - 1 ? t->longname_len : sizeof t->name - 1;
            memcpy(t->name, t->longname, n); t->name[n] = 0;
            t->longname_pending = 0;
        } else {
            size_t np = 0;
            if (memcmp(h + 257, "ustar\0", 6) == 0 && h[345]) {   /* POSIX prefix (old GNU keeps times there) */
                for (i = 0; i < 155 && h[345 + i]; i++) t->name[np++] = (char)h[345 + i];
                t->name[np++] = '/';
            }
            for (i = 0; i < 100 && h[i]; i++) t->name[np++] = (char)h[i];
            t->name[np] = 0;
        }
        /* regular files ('0' or NUL) go to the callback; directories, links, pax headers are skipped */
        t->deliver = (type == '0' || type == 0 || type == '7');
        if (type == '5' || type == '1' || type == '2') t->size = 0;
    }
    t->remaining = t->size;
    t->skip = (512 - (t->size & 511)) & 511;
    t->offset = 0;
    t->in_member = 1;
    if (t->deliver && t->cb(t->user, t->name, t->size, NULL, 0, 0, err)) return -1;
    return 0;
}

/* pax records "LEN key=value\n": keep the value of path= as the next member's name */
static void ag__tar_pax_path(ag__tar *t) {
    size_t pos = 0, n = t->longname_len;
    char *b = t->longname;
    while (pos < n) {
        size_t len = 0, q = pos;
        while (q < n && b[q] >= '0' && b[q] <= '9' && len < 65536) len = len * 10 + (size_t)(b[q++] - '0');
        if (q >= n || b[q] != ' ' || len < 2 || len > n - pos || b[pos + len - 1] != '\n') return;   /* malformed: ignored */
        q++;
        if (pos + len - q > 5 && !memcmp(b + q, "path=", 5)) {
            size_t vl = pos + len - 1 - (q + 5);
            memmove(b, b + q + 5, vl);
            b[vl] = 0;
            t->longname_len = vl;
            t->longname_pending = 1;
            return;
        }
        pos += len;
    }
}

/* after the end-of-archive block a gzipped archive is read on for at most this many bytes
   (its zero padding to a whole record, so that its CRC-32 is checked), then no further */
#define AG__TAR_TAIL ((uint64_t)1 << 20)

/* 1 (stop reading, not an error) once the archive has ended and AG__TAR_TAIL more bytes came */
static int ag__tar_sink(void *user, const unsigned char *p, size_t n, ag_error *err) {
    ag__tar *t = (ag__tar *)user;
    while (n) {
        if (t->ended) {                            /* anything after the end blocks is ignored */
            t->tail += n;
            return t->tail > AG__TAR_TAIL ? 1 : 0;
        }
        if (!t->in_member) {
            size_t k = 512 - t->hdr_fill < n ? 512 - t->hdr_fill : n;
            memcpy(t->hdr + t->hdr_fill, p, k);
            t->hdr_fill += k; p += k; n -= k;
            if (t->hdr_fill == 512) { t->hdr_fill = 0; if (ag__tar_header(t, err)) return -1; }
        } else if (t->remaining) {
            size_t k = t->remaining < n ? (size_t)t->remaining : n;
            if (t->reading_longname) { memcpy(t->longname + t->longname_len, p, k); t->longname_len += k; }
            else if (t->deliver && t->cb(t->user, t->name, t->size, p, k, t->offset, err)) return -1;
            t->offset += k; t->remaining -= k; p += k; n -= k;
        } else if (t->skip) {
            size_t k = t->skip < n ? (size_t)t->skip : n;
            t->skip -= k; p += k; n -= k;
        }
        if (t->in_member && !t->remaining && !t->skip) {
            t->in_member = 0;
            if (t->reading_longname) {
                t->reading_longname = 0;
                t->longname[t->longname_len] = 0;
                if (t->pax) ag__tar_pax_path(t);
                else { t->longname_len = strlen(t->longname); t->longname_pending = 1; }
            }
        }
    }
    return 0;
}

static int ag__tar_finish(ag__tar *t, int r, ag_error *err) {
    if (!r && (t->in_member || t->hdr_fill)) r = ag__fail(err, "tar: truncated archive (member '%s' ends early)", t->in_member ? t->name : "header");
    /* GNU tar ends with two zero blocks; some writers omit them, which is harmless, but an
       archive without a single header is not one */
    if (!r && !t->ended && !t->name[0] && !t->longname) r = ag__fail(err, "tar: empty archive (no members)");
    AG_FREE(t->longname);
    return r;
}

AGDEF int ag_tar_read_from_memory(const unsigned char *buf, size_t len, ag_tar_callback cb, void *user, ag_error *err) {
    ag__tar t;
    int r;
    memset(&t, 0, sizeof t);
    t.cb = cb; t.user = user;
    if (len >= 2 && buf[0] == 0x1f && buf[1] == 0x8b) r = ag__gunzip_stream(buf, len, ag__tar_sink, &t, err);
    else r = ag__tar_sink(&t, buf, len, err);
    return ag__tar_finish(&t, r > 0 ? 0 : r, err);
}

/* the file streams through 1 MB at a time: an archive of gigabytes never sits in memory;
   the reading stops at the end-of-archive block (a plain tar) or soon after it (gzipped) */
AGDEF int ag_tar_read(const char *path, ag_tar_callback cb, void *user, ag_error *err) {
    ag__tar t;
    ag__src src;
    ag__in in;
    int r = 0;
    memset(&t, 0, sizeof t);
    memset(&src, 0, sizeof src);
    t.cb = cb; t.user = user;
    if (ag__in_open(&in, path, err)) return -1;
    src.in = &in;
    src.cap = (size_t)1 << 20;
    src.buf = (unsigned char *)AG_MALLOC(src.cap);
    if (!src.buf) { ag__in_close(&in); return ag__fail(err, "%s: out of memory", path); }
    src.p = src.buf;
    if (!ag__src_need(&src, 2) && src.p[0] == 0x1f && src.p[1] == 0x8b) r = ag__gunzip_src(&src, ag__tar_sink, &t, err);
    else {
        while (!r && !t.ended && !ag__src_need(&src, 1)) {
            r = ag__tar_sink(&t, src.p + src.pos, src.len - src.pos, err);
            src.pos = src.len;
        }
    }
    if (r > 0) r = 0;
    if (!r && src.ioerr) r = ag__fail(err, "read error");
    r = ag__tar_finish(&t, r, err);
    ag__in_close(&in);
    AG_FREE(src.buf);
    if (!r) return 0;
    {   /* the callback's own message may name the archive already */
        size_t pl = strlen(path);
        if (err && !strncmp(err->msg, path, pl) && err->msg[pl] == ':') return -1;
    }
    return ag__fail_prefix(err, "%s", path);
}

/* ---- zip archives: read (central directory, stored + deflate, zip64) and write (stored) ---- */

AGDEF void ag_zip_close(ag_zip *zip) {
    int i;
    if (!zip) return;
    for (i = 0; i < zip->count; i++) AG_FREE(zip->entries[i].name);
    AG_FREE(zip->entries);
    AG_FREE(zip->owned);
    AG_FREE(zip->label);
    memset(zip, 0, sizeof *zip);
}

static int ag__zip_parse(ag_zip *z, ag_error *err) {
    const unsigned char *d = z->data;
    size_t len = z->len, eocd, stop, pos, i;
    uint64_t count, cd_size, cd_off;
    if (len < 22) return ag__fail(err, "not a zip file (too short)");
    eocd = len - 22;
    stop = len - 22 > 65535 ? len - 22 - 65535 : 0;
    for (;;) {
        if (d[eocd] == 'P' && d[eocd + 1] == 'K' && d[eocd + 2] == 5 && d[eocd + 3] == 6) break;
        if (eocd == stop) return ag__fail(err, "not a zip file (no end of central directory record)");
        eocd--;
    }
    if (ag__rd16(d + eocd + 4) != 0 || ag__rd16(d + eocd + 6) != 0)
        return ag__fail(err, "multi-disk zip archives are not supported");
    count = ag__rd16(d + eocd + 10);
    cd_size = ag__rd32(d + eocd + 12);
    cd_off = ag__rd32(d + eocd + 16);
    if (count == 0xffffu || cd_size == 0xffffffffu || cd_off == 0xffffffffu) {
        /* zip64: locator just before the end record, pointing at the zip64 end record */
        uint64_t z64;
        if (eocd < 20 || ag__rd32(d + eocd - 20) != 0x07064b50u)
            return ag__fail(err, "zip64 end of central directory locator missing");
        z64 = ag__rd64(d + eocd - 20 + 8);
        if (z64 > len || len - z64 < 56 || ag__rd32(d + z64) != 0x06064b50u)
            return ag__fail(err, "bad zip64 end of central directory record");
        count = ag__rd64(d + z64 + 32);
        cd_size = ag__rd64(d + z64 + 40);
        cd_off = ag__rd64(d + z64 + 48);
    }
    if (cd_off > len || cd_size > len - cd_off) return ag__fail(err, "central directory outside the file (truncated?)");
    if (count > cd_size / 46) return ag__fail(err, "central directory too small for %lu entries", (unsigned long)count);
    if (count) {
        z->entries = (ag_zip_entry *)AG_MALLOC((size_t)count * sizeof *z->entries);
        if (!z->entries) return ag__fail(err, "out of memory");
        memset(z->entries, 0, (size_t)count * sizeof *z->entries);
    }
    pos = (size_t)cd_off;
    for (i = 0; i < (size_t)count; i++) {
        const unsigned char *p = d + pos;
        size_t rest = (size_t)(cd_off + cd_size) - pos, nlen, xlen, clen, x;
        ag_zip_entry *e = &z->entries[i];
        if (rest < 46 || ag__rd32(p) != 0x02014b50u)
            return ag__fail(err, "bad central directory entry %lu", (unsigned long)i);
        e->flags = (int)ag__rd16(p + 8);
        e->method = (int)ag__rd16(p + 10);
        e->crc32 = ag__rd32(p + 16);
        e->comp_size = ag__rd32(p + 20);
        e->size = ag__rd32(p + 24);
        nlen = ag__rd16(p + 28);
        xlen = ag__rd16(p + 30);
        clen = ag__rd16(p + 32);
        e->local_offset = ag__rd32(p + 42);
        if (46 + nlen + xlen + clen > rest) return ag__fail(err, "central directory entry %lu overruns", (unsigned long)i);
        if (memchr(p + 46, 0, nlen)) return ag__fail(err, "zip member name contains a NUL byte");
        e->name = (char *)AG_MALLOC(nlen + 1);
        if (!e->name) return ag__fail(err, "out of memory");
        z->count = (int)i + 1;
        memcpy(e->name, p + 46, nlen);
        e->name[nlen] = '\0';
        for (x = 0; x + 4 <= xlen;) {   /* extra fields: look for the zip64 one */
            const unsigned char *f = p + 46 + nlen + x;
            size_t id = ag__rd16(f), sz = ag__rd16(f + 2), o = 4;
            if (4 + sz > xlen - x) return ag__fail(err, "zip member '%s': bad extra field", e->name);
            if (id == 1) {
                if (e->size == 0xffffffffu) { if (o + 8 > 4 + sz) goto bad64; e->size = ag__rd64(f + o); o += 8; }
                if (e->comp_size == 0xffffffffu) { if (o + 8 > 4 + sz) goto bad64; e->comp_size = ag__rd64(f + o); o += 8; }
                if (e->local_offset == 0xffffffffu) { if (o + 8 > 4 + sz) goto bad64; e->local_offset = ag__rd64(f + o); o += 8; }
            }
            x += 4 + sz;
        }
        pos += 46 + nlen + xlen + clen;
    }
    return 0;
bad64:
    return ag__fail(err, "zip member '%s': zip64 extra field too short", z->entries[z->count - 1].name);
}

static int ag__zip_open_common(ag_zip *zip, const char *label, ag_error *err) {
    zip->label = ag__strdup(label);
    if (!zip->label) return ag__fail(err, "out of memory");
    return ag__zip_parse(zip, err);
}

AGDEF int ag_zip_open_from_memory(ag_zip *zip, const unsigned char *buf, size_t len, ag_error *err) {
    if (!zip) return ag__fail(err, "ag_zip_open_from_memory: NULL zip");
    memset(zip, 0, sizeof *zip);
    if (!buf && len) return ag__fail(err, "ag_zip_open_from_memory: NULL buffer");
    zip->data = buf;
    zip->len = len;
    if (ag__zip_open_common(zip, "<memory>", err)) {
        ag_zip_close(zip);
        return ag__fail_prefix(err, "zip");
    }
    return 0;
}

AGDEF int ag_zip_open(ag_zip *zip, const char *path, ag_error *err) {
    unsigned char *buf;
    size_t len;
    if (!zip) return ag__fail(err, "ag_zip_open: NULL zip");
    memset(zip, 0, sizeof *zip);
    if (ag_read_file(path, &buf, &len, err)) return -1;
    zip->data = buf;
    zip->len = len;
    zip->owned = buf;
    if (ag__zip_open_common(zip, path, err)) {
        ag_zip_close(zip);
        return ag__fail_prefix(err, "%s", path);
    }
    return 0;
}

AGDEF int ag_zip_find(const ag_zip *zip, const char *name) {
    int i;
    if (!zip || !name) return -1;
    for (i = 0; i < zip->count; i++)
        if (strcmp(zip->entries[i].name, name) == 0) return i;
    return -1;
}

AGDEF int ag_zip_find_suffix(const ag_zip *zip, const char *suffix) {
    int i;
    size_t sl;
    if (!zip || !suffix) return -1;
    sl = strlen(suffix);
    for (i = 0; i < zip->count; i++) {
        size_t nl = strlen(zip->entries[i].name);
        if (nl >= sl && strcmp(zip->entries[i].name + nl - sl, suffix) == 0) return i;
    }
    return -1;
}

/* Locate member data (compressed bytes) after checking the local header. */
static int ag__zip_locate(const ag_zip *zip, int index, const unsigned char **data, ag_error *err) {
    const ag_zip_entry *e;
    uint64_t off, start;
    if (!zip || index < 0 || index >= zip->count)
        return ag__fail(err, "%s: no zip member #%d", zip && zip->label ? zip->label : "zip", index);
    e = &zip->entries[index];
    if (e->flags & 1) return ag__fail(err, "%s: zip member '%s' is encrypted (not supported)", zip->label, e->name);
    if (e->method != 0 && e->method != 8)
        return ag__fail(err, "%s: zip member '%s' uses compression method %d (only stored and deflate are supported)",
                        zip->label, e->name, e->method);
    off = e->local_offset;
    if (off > zip->len || zip->len - off < 30 || ag__rd32(zip->data + off) != 0x04034b50u)
        return ag__fail(err, "%s: zip member '%s': bad local header", zip->label, e->name);
    start = off + 30 + ag__rd16(zip->data + off + 26) + ag__rd16(zip->data + off + 28);
    if (start > zip->len || e->comp_size > zip->len - start)
        return ag__fail(err, "%s: zip member '%s': data outside the file (truncated?)", zip->label, e->name);
    if (e->method == 0 && e->comp_size != e->size)
        return ag__fail(err, "%s: zip member '%s': stored sizes disagree", zip->label, e->name);
    *data = zip->data + start;
    return 0;
}

AGDEF int ag_zip_view(const ag_zip *zip, int index, const unsigned char **data, size_t *len, ag_error *err) {
    const unsigned char *p;
    const ag_zip_entry *e;
    if (data) *data = NULL;
    if (len) *len = 0;
    if (!data || !len) return ag__fail(err, "ag_zip_view: NULL argument");
    if (ag__zip_locate(zip, index, &p, err)) return -1;
    e = &zip->entries[index];
    if (e->method != 0) return ag__fail(err, "%s: zip member '%s' is compressed (no zero-copy view)", zip->label, e->name);
    if (e->size > SIZE_MAX) return ag__fail(err, "%s: zip member '%s' too large", zip->label, e->name);
    if (ag_crc32(0, p, (size_t)e->size) != e->crc32)
        return ag__fail(err, "%s: zip member '%s': CRC-32 mismatch (corrupt file)", zip->label, e->name);
    *data = p;
    *len = (size_t)e->size;
    return 0;
}

AGDEF int ag_zip_extract(const ag_zip *zip, int index, size_t max_size, unsigned char **data, size_t *len, ag_error *err) {
    const unsigned char *p;
    const ag_zip_entry *e;
    unsigned char *buf = NULL;
    size_t got = 0;
    if (data) *data = NULL;
    if (len) *len = 0;
    if (!data || !len) return ag__fail(err, "ag_zip_extract: NULL argument");
    if (ag__zip_locate(zip, index, &p, err)) return -1;
    e = &zip->entries[index];
    if (e->size > SIZE_MAX - 1 || (max_size && e->size > max_size))
        return ag__fail(err, "%s: zip member '%s' is too large (%.0f bytes)", zip->label, e->name, (double)e->size);
    if (e->method == 0) {
        buf = (unsigned char *)AG_MALLOC((size_t)e->size + 1);
        if (!buf) return ag__fail(err, "%s: out of memory for zip member '%s'", zip->label, e->name);
        memcpy(buf, p, (size_t)e->size);
        got = (size_t)e->size;
    } else {
        /* DEFLATE expands at most ~1032:1; a larger declared size is a lie or a bomb. */
        if (e->size / 1032 > e->comp_size + 64)
            return ag__fail(err, "%s: zip member '%s': implausible uncompressed size", zip->label, e->name);
        if (ag__inflate(p, (size_t)e->comp_size, 0, (size_t)e->size, (size_t)e->size, &buf, &got, NULL, err))
            return ag__fail_prefix(err, "%s: zip member '%s'", zip->label, e->name);
        if (got != e->size) {
            AG_FREE(buf);
            return ag__fail(err, "%s: zip member '%s': inflated to %lu bytes, expected %.0f", zip->label, e->name,
                            (unsigned long)got, (double)e->size);
        }
    }
    if (ag_crc32(0, buf, got) != e->crc32) {
        AG_FREE(buf);
        return ag__fail(err, "%s: zip member '%s': CRC-32 mismatch (corrupt file)", zip->label, e->name);
    }
    *data = buf;
    *len = got;
    return 0;
}

/* Writer. DOS time 0 / date 1980-01-01 keeps the output reproducible. */
static int ag__zip_writer_add_parts(ag_zip_writer *w, const char *name, const void *a, size_t alen,
                                    const void *b, size_t blen, ag_error *err) {
    unsigned char h[46];
    size_t nlen, total, off;
    uint32_t crc;
    unsigned flags = 0;
    size_t k;
    if (!w || !name) return ag__fail(err, "ag_zip_writer_add: NULL argument");
    nlen = strlen(name);
    if (nlen == 0 || nlen > 0xffffu) return ag__fail(err, "zip member name '%s' has a bad length", name);
    for (k = 0; k < nlen; k++) if ((unsigned char)name[k] >= 0x80) flags = 1u << 11;   /* UTF-8 */
    if (alen > SIZE_MAX - blen) return ag__fail(err, "zip member '%s' too large", name);
    total = alen + blen;
    off = w->len;
    if ((uint64_t)total >= 0xffffffffu || (uint64_t)off >= 0xffffffffu || (uint64_t)total + 30 + nlen >= 0xffffffffu - off ||
        w->count >= 0xffff)
        return ag__fail(err, "zip member '%s': archive would need zip64 (over 4 GB or 65535 members), not supported", name);
    crc = ag_crc32(0, a, alen);
    crc = ag_crc32(crc, b, blen);
    memset(h, 0, sizeof h);
    ag__wr32(h, 0x04034b50u);
    ag__wr16(h + 4, 20);
    ag__wr16(h + 6, flags);
    ag__wr16(h + 8, 0);            /* stored */
    ag__wr16(h + 10, 0);           /* time */
    ag__wr16(h + 12, 0x21);        /* date 1980-01-01 */
    ag__wr32(h + 14, crc);
    ag__wr32(h + 18, (uint32_t)total);
    ag__wr32(h + 22, (uint32_t)total);
    ag__wr16(h + 26, (uint32_t)nlen);
    ag__wr16(h + 28, 0);
    if (ag__append(&w->buf, &w->len, &w->cap, h, 30, err) || ag__append(&w->buf, &w->len, &w->cap, name, nlen, err) ||
        ag__append(&w->buf, &w->len, &w->cap, a, alen, err) || ag__append(&w->buf, &w->len, &w->cap, b, blen, err)) {
        w->len = off;
        return -1;
    }
    memset(h, 0, sizeof h);
    ag__wr32(h, 0x02014b50u);
    ag__wr16(h + 4, 20);           /* made by: MS-DOS, 2.0 */
    ag__wr16(h + 6, 20);
    ag__wr16(h + 8, flags);
    ag__wr16(h + 12, 0);
    ag__wr16(h + 14, 0x21);
    ag__wr32(h + 16, crc);
    ag__wr32(h + 20, (uint32_t)total);
    ag__wr32(h + 24, (uint32_t)total);
    ag__wr16(h + 28, (uint32_t)nlen);
    ag__wr32(h + 42, (uint32_t)off);
    if (ag__append(&w->cdir, &w->cdir_len, &w->cdir_cap, h, 46, err) ||
        ag__append(&w->cdir, &w->cdir_len, &w->cdir_cap, name, nlen, err)) {
        w->len = off;
        return -1;
    }
    w->count++;
    return 0;
}

AGDEF int ag_zip_writer_add(ag_zip_writer *w, const char *name, const void *data, size_t len, ag_error *err) {
    if (len && !data) return ag__fail(err, "ag_zip_writer_add: NULL data");
    return ag__zip_writer_add_parts(w, name, data, len, NULL, 0, err);
}

AGDEF void ag_zip_writer_free(ag_zip_writer *w) {
    if (!w) return;
    AG_FREE(w->buf);
    AG_FREE(w->cdir);
    memset(w, 0, sizeof *w);
}

AGDEF int ag_zip_writer_finish(ag_zip_writer *w, unsigned char **out, size_t *out_len, ag_error *err) {
    unsigned char e[22];
    size_t cd_off;
    if (out) *out = NULL;
    if (out_len) *out_len = 0;
    if (!w || !out || !out_len) return ag__fail(err, "ag_zip_writer_finish: NULL argument");
    cd_off = w->len;
    if ((uint64_t)cd_off + w->cdir_len + 22 >= 0xffffffffu) return ag__fail(err, "zip archive over 4 GB (zip64) not supported");
    memset(e, 0, sizeof e);
    ag__wr32(e, 0x06054b50u);
    ag__wr16(e + 8, (uint32_t)w->count);
    ag__wr16(e + 10, (uint32_t)w->count);
    ag__wr32(e + 12, (uint32_t)w->cdir_len);
    ag__wr32(e + 16, (uint32_t)cd_off);
    if (ag__append(&w->buf, &w->len, &w->cap, w->cdir, w->cdir_len, err) ||
        ag__append(&w->buf, &w->len, &w->cap, e, 22, err)) {
        w->len = cd_off;
        return -1;
    }
    *out = w->buf;
    *out_len = w->len;
    w->buf = NULL;
    ag_zip_writer_free(w);
    return 0;
}

/* ===================================================================================
   14. Array files: .safetensors, .npy/.npz, idx, PyTorch .pth
   Named host arrays in and out of files; ag_safetensors_save/load of a parameter set.
   =================================================================================== */

/* ---- .safetensors (and the flat JSON of its header) ---- */
/* Layout: u64 little-endian header length N, N bytes of JSON
   {"__metadata__": {str: str}, name: {"dtype": "F32", "shape": [..], "data_offsets": [b, e]}},
   then the data; offsets are relative to the end of the header. */
typedef struct ag__json { const char *p, *end; int depth; } ag__json;
static void ag__json_ws(ag__json *j) { while (j->p < j->end && (*j->p == ' ' || *j->p == '\n' || *j->p == '\r' || *j->p == '\t')) j->p++; }
static int ag__json_lit(ag__json *j, char c) { ag__json_ws(j); if (j->p < j->end && *j->p == c) { j->p++; return 1; } return 0; }
/* a JSON string into out (cap bytes with the NUL; out NULL: only measured), its decoded
   length in *len; escapes decoded, \uXXXX (and surrogate pairs) as UTF-8 */
static int ag__json_hex4(const char *p, unsigned *v) {
    int i; *v = 0;
    for (i = 0; i < 4; i++) {
        char c = p[i]; unsigned d;
        if (c >= '0' && c <= '9') d = (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') d = (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') d = (unsigned)(c - 'A' + 10);
        else return -1;
        *v = *v * 16 + d;
    }
    return 0;
}
static int ag__json_string_n(ag__json *j, char *out, size_t cap, size_t *len) {
    size_t n = 0;
    ag__json_ws(j);
    if (j->p >= j->end || *j->p != '"') return -1;
    j->p++;
    while (j->p < j->end && *j->p != '"') {
        char c = *j->p++, u8[4]; int k = 1, i;
        u8[0] = c;
        if ((unsigned char)c < 0x20) return -1;   /* raw control characters are not JSON */
        if (c == '\\') {
            if (j->p >= j->end) return -1;
            c = *j->p++;
            switch (c) { case 'n': c = '\n'; break; case 't': c = '\t'; break; case 'r': c = '\r'; break; case 'b': c = '\b'; break; case 'f': c = '\f'; break;
            case '"': case '\\': case '/': break;
            case 'u': {
                unsigned cp, lo;
                if (j->end - j->p < 4 || ag__json_hex4(j->p, &cp)) return -1;
                j->p += 4;
                if (cp >= 0xD800 && cp < 0xDC00) {   /* a surrogate pair */
                    if (j->end - j->p < 6 || j->p[0] != '\\' || j->p[1] != 'u' || ag__json_hex4(j->p + 2, &lo) || lo < 0xDC00 || lo >= 0xE000) return -1;
                    j->p += 6; cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                } else if (cp >= 0xDC00 && cp < 0xE000) return -1;
                if (cp == 0) return -1;               /* a NUL cannot live in a C string */
                if (cp < 0x80) { u8[0] = (char)cp; k = 1; }
                else if (cp < 0x800) { u8[0] = (char)(0xC0 | (cp >> 6)); u8[1] = (char)(0x80 | (cp & 63)); k = 2; }
                else if (cp < 0x10000) { u8[0] = (char)(0xE0 | (cp >> 12)); u8[1] = (char)(0x80 | ((cp >> 6) & 63)); u8[2] = (char)(0x80 | (cp & 63)); k = 3; }
                else { u8[0] = (char)(0xF0 | (cp >> 18)); u8[1] = (char)(0x80 | ((cp >> 12) & 63)); u8[2] = (char)(0x80 | ((cp >> 6) & 63)); u8[3] = (char)(0x80 | (cp & 63)); k = 4; }
                c = u8[0];
                break;
            }
            default: return -1; }
            u8[0] = c;
        }
        for (i = 0; i < k; i++) {
            if (out) { if (n + 1 >= cap) return -1; out[n] = u8[i]; }
            n++;
        }
    }
    if (j->p >= j->end) return -1;
    j->p++;
    if (out) { if (n >= cap) return -1; out[n] = 0; }
    if (len) *len = n;
    return 0;
}
static int ag__json_string(ag__json *j, char *out, size_t cap) { return ag__json_string_n(j, out, cap, NULL); }
static int ag__json_int(ag__json *j, int64_t *v) {
    int64_t x = 0; int digits = 0;
    ag__json_ws(j);
    while (j->p < j->end && *j->p >= '0' && *j->p <= '9') {
        if (x > (INT64_MAX - 9) / 10) return -1;
        x = x * 10 + (*j->p++ - '0'); digits++;
    }
    if (!digits) return -1;
    *v = x;
    return 0;
}
/* skips any JSON value (for unknown keys) */
static int ag__json_skip(ag__json *j) {
    char tmp[8];
    ag__json_ws(j);
    if (j->p >= j->end || ++j->depth > 64) return -1;
    if (*j->p == '"') { const char *s = j->p + 1; while (s < j->end && *s != '"') { if (*s == '\\') s++; s++; } if (s >= j->end) return -1; j->p = s + 1; }
    else if (*j->p == '{' || *j->p == '[') {
        char close = *j->p == '{' ? '}' : ']'; j->p++;
        if (!ag__json_lit(j, close)) {
            do {
                if (close == '}') { const char *s; ag__json_ws(j); s = j->p; if (s >= j->end || *s != '"') return -1; if (ag__json_skip(j)) return -1; if (!ag__json_lit(j, ':')) return -1; }
                if (ag__json_skip(j)) return -1;
            } while (ag__json_lit(j, ','));
            if (!ag__json_lit(j, close)) return -1;
        }
    } else { while (j->p < j->end && strchr(",}] \n\r\t", *j->p) == NULL) j->p++; }
    (void)tmp;
    j->depth--;
    return 0;
}
static int ag__st_dtype(const char *s, ag_dtype *t) {
    static const char *const names[] = { "F32", "F64", "F16", "BF16", "I64", "I32", "I16", "I8", "U8", "BOOL" };
    static const ag_dtype types[] = { AG_DTYPE_F32, AG_DTYPE_F64, AG_DTYPE_F16, AG_DTYPE_BF16, AG_DTYPE_I64, AG_DTYPE_I32, AG_DTYPE_I16, AG_DTYPE_I8, AG_DTYPE_U8, AG_DTYPE_BOOL };
    int i;
    for (i = 0; i < 10; i++) if (strcmp(s, names[i]) == 0) { *t = types[i]; return 0; }
    return -1;
}

static int ag__st_parse(const unsigned char *buf, size_t len, ag_array_list *out, char **metadata, ag_error *err) {
    uint64_t hlen = 0; int i; ag__json j; ag_array_list list; size_t data_len; const unsigned char *data; char key[256];
    memset(&list, 0, sizeof list);
    if (metadata) *metadata = NULL;
    if (len < 8) return ag__fail(err, "file too short for a safetensors header (%zu bytes)", len);
    for (i = 7; i >= 0; i--) hlen = (hlen << 8) | buf[i];
    if (hlen < 2 || hlen > len - 8) return ag__fail(err, "header length %llu does not fit in the %zu-byte file", (unsigned long long)hlen, len);
    data = buf + 8 + hlen; data_len = len - 8 - (size_t)hlen;
    j.p = (const char *)buf + 8; j.end = j.p + hlen; j.depth = 0;
    if (!ag__json_lit(&j, '{')) return ag__fail(err, "header is not a JSON object");
    if (!ag__json_lit(&j, '}')) do {
        if (ag__json_string(&j, key, sizeof key) || !ag__json_lit(&j, ':')) { ag_array_list_free(&list); return ag__fail(err, "malformed JSON header near byte %d", (int)(j.p - (const char *)buf)); }
        if (strcmp(key, "__metadata__") == 0) {
            const char *start; ag__json_ws(&j); start = j.p;
            if (ag__json_skip(&j)) { ag_array_list_free(&list); return ag__fail(err, "malformed __metadata__"); }
            if (metadata) {
                size_t n = (size_t)(j.p - start);
                AG_FREE(*metadata);
                *metadata = (char *)AG_MALLOC(n + 1);
                if (!*metadata) { ag_array_list_free(&list); return ag__fail(err, "out of memory"); }
                memcpy(*metadata, start, n); (*metadata)[n] = 0;
            }
            continue;
        } else {
            char field[32], dts[16]; int have_dtype = 0, have_shape = 0, have_off = 0, ndim = 0; int64_t shape[8], off[2] = { 0, 0 };
            ag_dtype dt = AG_DTYPE_F32; size_t bytes;
            if (!ag__json_lit(&j, '{')) goto malformed;
            if (!ag__json_lit(&j, '}')) do {
                if (ag__json_string(&j, field, sizeof field) || !ag__json_lit(&j, ':')) goto malformed;
                if (strcmp(field, "dtype") == 0) {
                    if (ag__json_string(&j, dts, sizeof dts)) goto malformed;
                    if (ag__st_dtype(dts, &dt)) { ag_array_list_free(&list); return ag__fail(err, "tensor '%s': unsupported dtype '%s'", key, dts); }
                    have_dtype = 1;
                } else if (strcmp(field, "shape") == 0) {
                    if (!ag__json_lit(&j, '[')) goto malformed;
                    if (!ag__json_lit(&j, ']')) { do { if (ndim == 8 || ag__json_int(&j, &shape[ndim])) goto malformed; ndim++; } while (ag__json_lit(&j, ',')); if (!ag__json_lit(&j, ']')) goto malformed; }
                    have_shape = 1;
                } else if (strcmp(field, "data_offsets") == 0) {
                    if (!ag__json_lit(&j, '[') || ag__json_int(&j, &off[0]) || !ag__json_lit(&j, ',') || ag__json_int(&j, &off[1]) || !ag__json_lit(&j, ']')) goto malformed;
                    have_off = 1;
                } else if (ag__json_skip(&j)) goto malformed;
            } while (ag__json_lit(&j, ','));
            if (!ag__json_lit(&j, '}')) goto malformed;
            if (!have_dtype || !have_shape || !have_off) { ag_array_list_free(&list); return ag__fail(err, "tensor '%s': dtype, shape or data_offsets missing", key); }
            if (ag__shape_numel(ndim, shape, ag_dtype_size(dt), NULL, &bytes)) { ag_array_list_free(&list); return ag__fail(err, "tensor '%s': shape too large", key); }
            if (off[0] > off[1] || (uint64_t)off[1] > data_len) { ag_array_list_free(&list); return ag__fail(err, "tensor '%s': data_offsets [%lld, %lld] outside the %zu data bytes (truncated file?)", key, (long long)off[0], (long long)off[1], data_len); }
            if ((uint64_t)(off[1] - off[0]) != bytes) { ag_array_list_free(&list); return ag__fail(err, "tensor '%s': %lld data bytes for a shape of %zu bytes", key, (long long)(off[1] - off[0]), bytes); }
            if (ag_array_list_find(&list, key)) { ag_array_list_free(&list); return ag__fail(err, "tensor '%s' appears twice", key); }
            if (ag_array_list_add(&list, key, dt, ndim, shape, data + off[0], err)) { ag_array_list_free(&list); return -1; }
        }
    } while (ag__json_lit(&j, ','));
    if (!ag__json_lit(&j, '}')) goto malformed;
    *out = list;
    return 0;
malformed:
    ag_array_list_free(&list);
    if (metadata) { AG_FREE(*metadata); *metadata = NULL; }
    return ag__fail(err, "malformed JSON header near byte %d", (int)(j.p - (const char *)buf));
}
/* on failure: the list and the metadata are freed and zeroed */
AGDEF int ag_safetensors_read_from_memory(const unsigned char *buf, size_t len, ag_array_list *out, char **metadata, ag_error *err) {
    int rc;
    if (metadata) *metadata = NULL;
    rc = ag__st_parse(buf, len, out, metadata, err);
    if (rc) {
        if (metadata) { AG_FREE(*metadata); *metadata = NULL; }
        memset(out, 0, sizeof *out);
    }
    return rc;
}
AGDEF int ag_safetensors_read(const char *path, ag_array_list *out, char **metadata, ag_error *err) {
    unsigned char *buf; size_t len;
    if (ag_read_file(path, &buf, &len, err)) return -1;
    return ag__read_finish(path, buf, ag_safetensors_read_from_memory(buf, len, out, metadata, err), err);
}

/* positions j just after "key": in the flat object json; 0 found, -1 absent or malformed */
static int ag__json_find(ag__json *j, const char *json, const char *key) {
    char k[256];
    if (!json) return -1;
    j->p = json; j->end = json + strlen(json); j->depth = 0;
    if (!ag__json_lit(j, '{')) return -1;
    if (ag__json_lit(j, '}')) return -1;
    do {
        if (ag__json_string(j, k, sizeof k) || !ag__json_lit(j, ':')) return -1;
        if (strcmp(k, key) == 0) return 0;
        if (ag__json_skip(j)) return -1;
    } while (ag__json_lit(j, ','));
    return -1;
}
AGDEF int ag_json_get_string(const char *json, const char *key, char *out, size_t out_len) {
    ag__json j;
    if (out_len) out[0] = 0;
    if (ag__json_find(&j, json, key)) return -1;
    if (ag__json_string(&j, out, out_len)) { if (out_len) out[0] = 0; return -1; }
    return 0;
}
AGDEF char *ag_json_get_string_alloc(const char *json, const char *key) {
    ag__json j, again; size_t n; char *out;
    if (ag__json_find(&j, json, key)) return NULL;
    again = j;
    if (ag__json_string_n(&j, NULL, 0, &n)) return NULL;
    if (!(out = (char *)AG_MALLOC(n + 1))) return NULL;
    if (ag__json_string_n(&again, out, n + 1, NULL)) { AG_FREE(out); return NULL; }
    return out;
}

AGDEF int ag_safetensors_read_metadata(const char *path, char **metadata, ag_error *err) {
    FILE *f; unsigned char h8[8]; uint64_t hl = 0; char *hdr; int i, rc = 0; ag__json j;
    *metadata = NULL;
#ifdef AG__POSIX_FILES
    {   /* a FIFO or device would block or never end: regular files only */
        struct stat st;
        if (stat(path, &st) != 0) return ag__fail(err, "%s: cannot open for reading (%s)", path, strerror(errno));
        if (!S_ISREG(st.st_mode)) return ag__fail(err, "%s: not a regular file", path);
    }
#endif
    if (!(f = fopen(path, "rb"))) return ag__fail(err, "%s: cannot open for reading (%s)", path, strerror(errno));
    if (fread(h8, 1, 8, f) != 8) { fclose(f); return ag__fail(err, "%s: not a .safetensors file (shorter than 8 bytes)", path); }
    for (i = 0; i < 8; i++) hl |= (uint64_t)h8[i] << (8 * i);
    if (hl < 2 || hl > ((uint64_t)100 << 20)) { fclose(f); return ag__fail(err, "%s: not a .safetensors file (header length %llu)", path, (unsigned long long)hl); }
    if (!(hdr = (char *)AG_MALLOC((size_t)hl + 1))) { fclose(f); return ag__fail(err, "%s: out of memory", path); }
    if (fread(hdr, 1, (size_t)hl, f) != (size_t)hl) { fclose(f); AG_FREE(hdr); return ag__fail(err, "%s: truncated .safetensors header", path); }
    fclose(f);
    hdr[hl] = 0;
    if (!ag__json_find(&j, hdr, "__metadata__")) {
        const char *s; ag__json_ws(&j); s = j.p;
        if (ag__json_skip(&j)) rc = ag__fail(err, "%s: malformed __metadata__", path);
        else if (!(*metadata = (char *)AG_MALLOC((size_t)(j.p - s) + 1))) rc = ag__fail(err, "%s: out of memory", path);
        else { memcpy(*metadata, s, (size_t)(j.p - s)); (*metadata)[j.p - s] = 0; }
    }
    AG_FREE(hdr);
    return rc;
}

/* ---- building metadata: "key":"value" fields, values escaped ---- */
static void ag__json_fields_key(ag_json_fields *f, const char *key) {
    ag__buf b; b.p = f->text; b.n = f->len; b.cap = f->cap; b.oom = f->failed;
    ag__buf_put(&b, "%s\"%s\":\"", b.n ? "," : "", key);
    f->text = b.p; f->len = b.n; f->cap = b.cap; f->failed = b.oom;
}
AGDEF void ag_json_add_string(ag_json_fields *f, const char *key, const char *value) {
    ag__buf b; const unsigned char *s = (const unsigned char *)(value ? value : "");
    ag__json_fields_key(f, key);
    b.p = f->text; b.n = f->len; b.cap = f->cap; b.oom = f->failed;
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') ag__buf_put(&b, "\\%c", *s);
        else if (*s < 0x20) ag__buf_put(&b, "\\u%04x", *s);
        else ag__buf_put(&b, "%c", *s);
    }
    ag__buf_put(&b, "\"");
    f->text = b.p; f->len = b.n; f->cap = b.cap; f->failed = b.oom;
}
AGDEF void ag_json_add_int(ag_json_fields *f, const char *key, long long value) {
    char v[32]; snprintf(v, sizeof v, "%lld", value); ag_json_add_string(f, key, v);
}
AGDEF void ag_json_add_double(ag_json_fields *f, const char *key, double value) {
    char v[40]; snprintf(v, sizeof v, "%.17g", value); ag_json_add_string(f, key, v);
}
AGDEF void ag_json_fields_free(ag_json_fields *f) { AG_FREE(f->text); memset(f, 0, sizeof *f); }

static int ag__st_write(const char *path, int count, const char *const *names, const ag_dtype *dtypes, const int *ndims,
                        const int64_t (*shapes)[8], const void *const *datas, const size_t *nbytes, const char *metadata, ag_error *err) {
    ag__buf h; size_t off = 0, total, hl, pos; int i, d; unsigned char *file; int rc;
    memset(&h, 0, sizeof h);
    ag__buf_put(&h, "{");
    if (metadata && *metadata) ag__buf_put(&h, "\"__metadata__\":%s", metadata);
    for (i = 0; i < count; i++) {
        ag__buf_put(&h, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[", (i || (metadata && *metadata)) ? "," : "", names[i], ag__st_dtype_name(dtypes[i]));
        for (d = 0; d < ndims[i]; d++) ag__buf_put(&h, d ? ",%lld" : "%lld", (long long)shapes[i][d]);
        ag__buf_put(&h, "],\"data_offsets\":[%zu,%zu]}", off, off + nbytes[i]);
        off += nbytes[i];
    }
    ag__buf_put(&h, "}");
    while (!h.oom && h.n % 8) ag__buf_put(&h, " ");
    if (h.oom) { AG_FREE(h.p); return ag__fail(err, "%s: out of memory writing the header", path); }
    hl = h.n; total = 8 + hl + off;
    file = (unsigned char *)AG_MALLOC(total);
    if (!file) { AG_FREE(h.p); return ag__fail(err, "%s: out of memory (%zu bytes)", path, total); }
    for (i = 0; i < 8; i++) file[i] = (unsigned char)((uint64_t)hl >> (8 * i));
    memcpy(file + 8, h.p, hl);
    pos = 8 + hl;
    for (i = 0; i < count; i++) { if (nbytes[i]) memcpy(file + pos, datas[i], nbytes[i]); pos += nbytes[i]; }
    rc = ag_write_file_atomic(path, file, total, err);
    AG_FREE(file); AG_FREE(h.p);
    return rc;
}
AGDEF int ag_safetensors_write(const char *path, const ag_array_list *arrays, const char *metadata, ag_error *err) {
    int n = arrays->count, i, d, rc;
    const char **names = (const char **)AG_MALLOC((size_t)(n + 1) * sizeof(char *));
    ag_dtype *dt = (ag_dtype *)AG_MALLOC((size_t)(n + 1) * sizeof(ag_dtype));
    int *nd = (int *)AG_MALLOC((size_t)(n + 1) * sizeof(int));
    int64_t (*sh)[8] = (int64_t (*)[8])AG_MALLOC((size_t)(n + 1) * sizeof(*sh));
    const void **data = (const void **)AG_MALLOC((size_t)(n + 1) * sizeof(void *));
    size_t *nb = (size_t *)AG_MALLOC((size_t)(n + 1) * sizeof(size_t));
    if (!names || !dt || !nd || !sh || !data || !nb) rc = ag__fail(err, "%s: out of memory", path);
    else {
        for (i = 0; i < n; i++) {
            const ag_array *a = &arrays->items[i];
            names[i] = a->name; dt[i] = a->dtype; nd[i] = a->ndim; data[i] = a->data; nb[i] = a->nbytes;
            for (d = 0; d < 8; d++) sh[i][d] = d < a->ndim ? a->shape[d] : 0;
        }
        rc = ag__st_write(path, n, names, dt, nd, (const int64_t (*)[8])sh, data, nb, metadata, err);
    }
    AG_FREE((void *)names); AG_FREE(dt); AG_FREE(nd); AG_FREE(sh); AG_FREE((void *)data); AG_FREE(nb);
    return rc;
}
AGDEF int ag_safetensors_save(const char *path, const ag_params *ps, const char *metadata, ag_error *err) {
    ag_array_list list; int i, rc = 0, d;
    memset(&list, 0, sizeof list);
    for (i = 0; i < ps->count && !rc; i++) {
        const ag_param_entry *e = &ps->entries[i]; int64_t shape[8];
        if (e->kind == AG_ENTRY_COUNTER) rc = ag_array_list_add(&list, e->name, AG_DTYPE_I64, 0, shape, e->counter, err);
        else {
            for (d = 0; d < e->tensor->ndim; d++) shape[d] = e->tensor->shape[d];
            rc = ag_array_list_add(&list, e->name, AG_DTYPE_F32, e->tensor->ndim, shape, e->tensor->data, err);
        }
    }
    if (!rc) rc = ag_safetensors_write(path, &list, metadata, err);
    ag_array_list_free(&list);
    return rc;
}

AGDEF int ag_safetensors_load(const char *path, ag_params *ps, int strict, ag_error *err) {
    ag_array_list list; int rc;
    if (ag_safetensors_read(path, &list, NULL, err)) return -1;
    rc = ag_params_load_arrays(ps, &list, NULL, strict, path, err);
    ag_array_list_free(&list);
    return rc;
}

/* ---- idx (MNIST): magic 0 0 type ndim, big-endian u32 dims, big-endian data --------- */

/* the header in p[0..n): 0 with its fields, 1 when it needs more bytes than n, -1 when bad */
static int ag__idx_header(const unsigned char *p, size_t n, ag_dtype *dtype, int *ndim, int64_t *shape,
                          size_t *hlen, size_t *nbytes, ag_error *err) {
    uint64_t numel;
    int d;
    if ((n >= 1 && p[0] != 0) || (n >= 2 && p[1] != 0)) return ag__fail(err, "idx: bad magic (not an idx file)");
    if (n < 3) return 1;
    switch (p[2]) {
    case 0x08: *dtype = AG_DTYPE_U8; break;
    case 0x09: *dtype = AG_DTYPE_I8; break;
    case 0x0B: *dtype = AG_DTYPE_I16; break;
    case 0x0C: *dtype = AG_DTYPE_I32; break;
    case 0x0D: *dtype = AG_DTYPE_F32; break;
    case 0x0E: *dtype = AG_DTYPE_F64; break;
    default: return ag__fail(err, "idx: unknown data type 0x%02x", p[2]);
    }
    if (n < 4) return 1;
    *ndim = p[3];
    if (*ndim < 1 || *ndim > 8) return ag__fail(err, "idx: %d dimensions (1 to 8 supported)", *ndim);
    *hlen = 4 + (size_t)*ndim * 4;
    if (n < *hlen) return 1;
    for (d = 0; d < *ndim; d++) shape[d] = (int64_t)ag__rd32be(p + 4 + 4 * d);
    if (ag__rd_numel(*ndim, shape, &numel) || ag__rd_bytes(numel, ag_dtype_size(*dtype), nbytes)) return ag__fail(err, "idx: shape too large");
    return 0;
}

/* a gzipped idx inflates into this sink: the header first, then exactly the data bytes it
   declares (grown as they come, so a header that lies costs nothing); one byte more stops
   the inflating with an error, so a gzip bomb behind a small header is never expanded */
typedef struct ag__idx_sink {
    unsigned char hdr[36]; size_t hfill, hlen, nbytes, got, cap;
    int have, ndim; ag_dtype dtype; int64_t shape[8];
    unsigned char *data;
} ag__idx_sink;

static int ag__idx_sink_put(void *user, const unsigned char *p, size_t n, ag_error *err) {
    ag__idx_sink *s = (ag__idx_sink *)user;
    while (!s->have && n) {
        int r;
        s->hdr[s->hfill++] = *p++; n--;
        r = ag__idx_header(s->hdr, s->hfill, &s->dtype, &s->ndim, s->shape, &s->hlen, &s->nbytes, err);
        if (r < 0) return -1;
        s->have = r == 0;
    }
    if (!n) return 0;
    if (n > s->nbytes - s->got)
        return ag__fail(err, "idx: the header's shape needs %lu data bytes, the gzipped data holds more (inflating stopped there)",
                        (unsigned long)s->nbytes);
    if (s->got + n > s->cap) {
        size_t cap = s->cap ? s->cap : (size_t)1 << 16;
        unsigned char *nb;
        while (cap < s->got + n) cap = cap > s->nbytes / 2 ? s->nbytes : cap * 2;
        if (cap > s->nbytes) cap = s->nbytes;
        nb = (unsigned char *)AG_REALLOC(s->data, cap);
        if (!nb) return ag__fail(err, "idx: out of memory (%lu bytes)", (unsigned long)cap);
        s->data = nb; s->cap = cap;
    }
    memcpy(s->data + s->got, p, n);
    s->got += n;
    return 0;
}

AGDEF int ag_idx_read_from_memory(const unsigned char *buf, size_t len, ag_array *out, ag_error *err) {
    ag__idx_sink s;
    int d, r;
    memset(out, 0, sizeof *out);
    memset(&s, 0, sizeof s);
    if (len >= 2 && buf[0] == 0x1f && buf[1] == 0x8b) {
        if (ag__gunzip_stream(buf, len, ag__idx_sink_put, &s, err)) { AG_FREE(s.data); return -1; }
    } else {
        r = ag__idx_header(buf, len, &s.dtype, &s.ndim, s.shape, &s.hlen, &s.nbytes, err);
        if (r < 0) return -1;
        s.have = r == 0;
        s.hfill = len < sizeof s.hdr ? len : sizeof s.hdr;
        memcpy(s.hdr, buf, s.hfill);
        if (s.have) s.got = len - s.hlen;
    }
    if (!s.have) {
        AG_FREE(s.data);
        if (s.hfill < 4) return ag__fail(err, "idx: bad magic (not an idx file)");
        return ag__fail(err, "idx: truncated header (%d dimensions)", s.hdr[3]);
    }
    if (s.got != s.nbytes) {
        AG_FREE(s.data);
        return ag__fail(err, "idx: the header's shape needs %lu data bytes, the file has %lu (%s)", (unsigned long)s.nbytes,
                        (unsigned long)s.got, s.got < s.nbytes ? "truncated" : "extra bytes");
    }
    if (!s.data) {   /* not gzipped (or no data): one copy */
        s.data = (unsigned char *)AG_MALLOC(s.nbytes ? s.nbytes : 1);
        if (!s.data) return ag__fail(err, "idx: out of memory (%lu bytes)", (unsigned long)s.nbytes);
        if (s.nbytes) memcpy(s.data, buf + s.hlen, s.nbytes);
    }
    { /* big-endian to host */
        const uint16_t one = 1;
        size_t esz = ag_dtype_size(s.dtype);
        if (*(const unsigned char *)&one == 1) ag__swap_elems(s.data, s.nbytes / esz, esz);
    }
    out->data = s.data;
    out->dtype = s.dtype; out->ndim = s.ndim; out->nbytes = s.nbytes;
    for (d = 0; d < s.ndim; d++) out->shape[d] = s.shape[d];
    return 0;
}

AGDEF int ag_idx_read(const char *path, ag_array *out, ag_error *err) {
    unsigned char *buf;
    size_t len;
    int r;
    memset(out, 0, sizeof *out);
    if (ag_read_file(path, &buf, &len, err)) return -1;
    r = ag_idx_read_from_memory(buf, len, out, err);
    AG_FREE(buf);
    return r ? ag__fail_prefix(err, "%s", path) : 0;
}

/* ---- NumPy .npy / .npz ---- */

typedef struct ag__cur { const char *s; size_t n, i; } ag__cur;

static void ag__cur_ws(ag__cur *c) {
    while (c->i < c->n && (c->s[c->i] == ' ' || c->s[c->i] == '\t' || c->s[c->i] == '\n' || c->s[c->i] == '\r')) c->i++;
}
static int ag__cur_eat(ag__cur *c, char ch) {
    ag__cur_ws(c);
    if (c->i < c->n && c->s[c->i] == ch) { c->i++; return 1; }
    return 0;
}
/* Quoted string (no escapes) into out[cap]. */
static int ag__cur_str(ag__cur *c, char *out, size_t cap) {
    char q;
    size_t k = 0;
    ag__cur_ws(c);
    if (c->i >= c->n || (c->s[c->i] != '\'' && c->s[c->i] != '"')) return -1;
    q = c->s[c->i++];
    while (c->i < c->n && c->s[c->i] != q) {
        if (c->s[c->i] == '\\' || k + 1 >= cap) return -1;
        out[k++] = c->s[c->i++];
    }
    if (c->i >= c->n) return -1;
    c->i++;
    out[k] = '\0';
    return 0;
}
static int ag__cur_word(ag__cur *c, const char *w) {
    size_t n = strlen(w);
    ag__cur_ws(c);
    if (c->n - c->i >= n && memcmp(c->s + c->i, w, n) == 0) { c->i += n; return 1; }
    return 0;
}
static int ag__cur_int(ag__cur *c, int64_t *v) {
    uint64_t x = 0;
    int digits = 0;
    ag__cur_ws(c);
    while (c->i < c->n && c->s[c->i] >= '0' && c->s[c->i] <= '9') {
        unsigned dgt = (unsigned)(c->s[c->i] - '0');
        if (x > ((uint64_t)INT64_MAX - dgt) / 10) return -1;
        x = x * 10 + dgt;
        c->i++;
        digits++;
    }
    if (!digits) return -1;
    if (c->i < c->n && c->s[c->i] == 'L') c->i++;   /* Python 2 long */
    *v = (int64_t)x;
    return 0;
}

/* dtype from a numpy descr; *swap set when the data is big-endian. */
static int ag__npy_descr(const char *d, ag_dtype *t, int *swap) {
    char bo = d[0];
    const char *k = d + 1;
    if (bo != '<' && bo != '>' && bo != '|' && bo != '=') return -1;
    if (!strcmp(k, "f4")) *t = AG_DTYPE_F32;
    else if (!strcmp(k, "f8")) *t = AG_DTYPE_F64;
    else if (!strcmp(k, "f2")) *t = AG_DTYPE_F16;
    else if (!strcmp(k, "i8")) *t = AG_DTYPE_I64;
    else if (!strcmp(k, "i4")) *t = AG_DTYPE_I32;
    else if (!strcmp(k, "i2")) *t = AG_DTYPE_I16;
    else if (!strcmp(k, "i1")) *t = AG_DTYPE_I8;
    else if (!strcmp(k, "u1")) *t = AG_DTYPE_U8;
    else if (!strcmp(k, "b1")) *t = AG_DTYPE_BOOL;
    else return -1;
    if (ag_dtype_size(*t) > 1 && bo == '|') return -1;
    *swap = (bo == '>' && ag__host_is_le()) || (bo == '<' && !ag__host_is_le());
    return 0;
}

AGDEF int ag_npy_read_from_memory(const unsigned char *buf, size_t len, ag_array *out, ag_error *err) {
    size_t hstart, hlen, nbytes, esz;
    uint64_t numel;
    ag__cur c;
    char key[32], descr[32];
    int have_descr = 0, have_fo = 0, have_shape = 0, fortran = 0, ndim = 0, swap = 0, d;
    int64_t shape[8];
    ag_dtype dtype = AG_DTYPE_F32;
    const unsigned char *src;
    unsigned char *data;
    if (!out) return ag__fail(err, "npy: NULL output");
    memset(out, 0, sizeof *out);
    if (!buf) len = 0;
    if (len < 10 || memcmp(buf, "\x93NUMPY", 6) != 0) return ag__fail(err, "npy: bad magic (not a .npy file)");
    if (buf[6] == 1) { hlen = ag__rd16(buf + 8); hstart = 10; }
    else if (buf[6] == 2 || buf[6] == 3) {
        if (len < 12) return ag__fail(err, "npy: truncated header");
        hlen = ag__rd32(buf + 8);
        hstart = 12;
    } else return ag__fail(err, "npy: unsupported format version %d.%d", buf[6], buf[7]);
    if (hlen > len - hstart) return ag__fail(err, "npy: truncated header");
    c.s = (const char *)buf + hstart;
    c.n = hlen;
    c.i = 0;
    if (!ag__cur_eat(&c, '{')) return ag__fail(err, "npy: header is not a dict");
    for (;;) {
        if (ag__cur_eat(&c, '}')) break;
        if (ag__cur_str(&c, key, sizeof key) || !ag__cur_eat(&c, ':')) return ag__fail(err, "npy: malformed header");
        if (!strcmp(key, "descr")) {
            ag__cur_ws(&c);
            if (c.i < c.n && c.s[c.i] == '[') return ag__fail(err, "npy: structured dtypes are not supported");
            if (ag__cur_str(&c, descr, sizeof descr)) return ag__fail(err, "npy: malformed descr");
            if (ag__npy_descr(descr, &dtype, &swap)) return ag__fail(err, "npy: unsupported dtype '%s'", descr);
            have_descr = 1;
        } else if (!strcmp(key, "fortran_order")) {
            if (ag__cur_word(&c, "True")) fortran = 1;
            else if (ag__cur_word(&c, "False")) fortran = 0;
            else return ag__fail(err, "npy: malformed fortran_order");
            have_fo = 1;
        } else if (!strcmp(key, "shape")) {
            if (!ag__cur_eat(&c, '(')) return ag__fail(err, "npy: malformed shape");
            ndim = 0;
            for (;;) {
                if (ag__cur_eat(&c, ')')) break;
                if (ndim == 8) return ag__fail(err, "npy: more than 8 dimensions");
                if (ag__cur_int(&c, &shape[ndim])) return ag__fail(err, "npy: malformed shape");
                ndim++;
                if (ag__cur_eat(&c, ',')) continue;
                if (ag__cur_eat(&c, ')')) break;
                return ag__fail(err, "npy: malformed shape");
            }
            have_shape = 1;
        } else return ag__fail(err, "npy: unexpected header key '%s'", key);
        if (ag__cur_eat(&c, ',')) continue;
        if (ag__cur_eat(&c, '}')) break;
        return ag__fail(err, "npy: malformed header");
    }
    if (!have_descr || !have_fo || !have_shape) return ag__fail(err, "npy: header lacks descr, fortran_order or shape");
    esz = ag_dtype_size(dtype);
    if (ag__rd_numel(ndim, shape, &numel) || ag__rd_bytes(numel, esz, &nbytes))
        return ag__fail(err, "npy: shape too large");
    src = buf + hstart + hlen;
    if (nbytes > len - hstart - hlen)
        return ag__fail(err, "npy: truncated data (%lu bytes, need %lu)", (unsigned long)(len - hstart - hlen), (unsigned long)nbytes);
    data = (unsigned char *)AG_MALLOC(nbytes ? nbytes : 1);
    if (!data) return ag__fail(err, "npy: out of memory (%lu bytes)", (unsigned long)nbytes);
    if (fortran && ndim > 1 && numel > 0) {
        int64_t stride[8], s = 1;
        for (d = 0; d < ndim; d++) { stride[d] = s; s *= shape[d] ? shape[d] : 1; }
        ag__gather(data, src, esz, ndim, shape, stride);
    } else if (nbytes) memcpy(data, src, nbytes);
    if (swap) ag__swap_elems(data, (size_t)numel, esz);
    out->name = NULL;
    out->dtype = dtype;
    out->ndim = ndim;
    for (d = 0; d < ndim; d++) out->shape[d] = shape[d];
    out->data = data;
    out->nbytes = nbytes;
    return 0;
}

AGDEF int ag_npy_read(const char *path, ag_array *out, ag_error *err) {
    unsigned char *buf; size_t len;
    if (out) memset(out, 0, sizeof *out);
    if (ag_read_file(path, &buf, &len, err)) return -1;
    return ag__read_finish(path, buf, ag_npy_read_from_memory(buf, len, out, err), err);
}

/* The header numpy 1.24 writes: dict, growth spaces, padding to 64, '\n'. */
static int ag__npy_header(const ag_array *a, unsigned char *hdr, size_t cap, size_t *hlen, ag_error *err) {
    const char *descr;
    char dict[400];
    size_t n, total, pre;
    int d, k;
    switch (a->dtype) {
    case AG_DTYPE_F32: descr = "<f4"; break;
    case AG_DTYPE_F64: descr = "<f8"; break;
    case AG_DTYPE_F16: descr = "<f2"; break;
    case AG_DTYPE_I64: descr = "<i8"; break;
    case AG_DTYPE_I32: descr = "<i4"; break;
    case AG_DTYPE_I16: descr = "<i2"; break;
    case AG_DTYPE_I8: descr = "|i1"; break;
    case AG_DTYPE_U8: descr = "|u1"; break;
    case AG_DTYPE_BOOL: descr = "|b1"; break;
    default: return ag__fail(err, "npy: dtype %s has no numpy equivalent", ag_dtype_name(a->dtype));
    }
    if (a->ndim < 0 || a->ndim > 8) return ag__fail(err, "npy: bad ndim %d", a->ndim);
    n = (size_t)snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
    for (d = 0; d < a->ndim; d++)
        n += (size_t)snprintf(dict + n, sizeof dict - n, d ? ", %lld" : "%lld", (long long)a->shape[d]);
    n += (size_t)snprintf(dict + n, sizeof dict - n, a->ndim == 1 ? ",), }" : "), }");
    if (a->ndim > 0) {   /* numpy leaves room to grow the first axis in place */
        char first[32];
        int fl = snprintf(first, sizeof first, "%lld", (long long)a->shape[0]);
        for (k = fl; k < 21; k++) dict[n++] = ' ';
    }
    pre = 10;
    total = pre + n + 1;
    total += 64 - total % 64;   /* numpy pads 1..64 bytes */
    if (total > cap) return ag__fail(err, "npy: header too long");
    memcpy(hdr, "\x93NUMPY\x01\x00", 8);
    ag__wr16(hdr + 8, (uint32_t)(total - pre));
    memcpy(hdr + pre, dict, n);
    memset(hdr + pre + n, ' ', total - pre - n - 1);
    hdr[total - 1] = '\n';
    *hlen = total;
    return 0;
}

static int ag__npy_check(const ag_array *a, size_t *nbytes, ag_error *err) {
    uint64_t numel;
    if (!a) return ag__fail(err, "npy: NULL array");
    if (ag__rd_numel(a->ndim, a->shape, &numel) || ag__rd_bytes(numel, ag_dtype_size(a->dtype), nbytes) ||
        *nbytes > a->nbytes || (*nbytes && !a->data))
        return ag__fail(err, "npy: array '%s': shape does not match its data", a->name ? a->name : "");
    return 0;
}

AGDEF int ag_npy_header(const ag_array *a, unsigned char *buf, size_t cap, size_t *len, ag_error *err) {
    if (!a || !buf || !len) return ag__fail(err, "npy: NULL argument");
    return ag__npy_header(a, buf, cap, len, err);
}
AGDEF int ag_npy_write_to_memory(const ag_array *a, unsigned char **out, size_t *out_len, ag_error *err) {
    unsigned char hdr[512], *buf;
    size_t hlen, nbytes = 0;
    if (out) *out = NULL;
    if (out_len) *out_len = 0;
    if (!out || !out_len) return ag__fail(err, "npy: NULL output");
    if (ag__npy_check(a, &nbytes, err) || ag__npy_header(a, hdr, sizeof hdr, &hlen, err)) return -1;
    if (nbytes > SIZE_MAX - hlen) return ag__fail(err, "npy: array too large");
    buf = (unsigned char *)AG_MALLOC(hlen + nbytes);
    if (!buf) return ag__fail(err, "npy: out of memory");
    memcpy(buf, hdr, hlen);
    if (nbytes) memcpy(buf + hlen, a->data, nbytes);
    if (!ag__host_is_le()) ag__swap_elems(buf + hlen, nbytes / ag_dtype_size(a->dtype), ag_dtype_size(a->dtype));
    *out = buf;
    *out_len = hlen + nbytes;
    return 0;
}

AGDEF int ag_npy_write(const char *path, const ag_array *a, ag_error *err) {
    unsigned char *buf = NULL; size_t len = 0;
    int rc = ag_npy_write_to_memory(a, &buf, &len, err);
    return ag__write_finish(path, buf, len, rc, err);
}

AGDEF int ag_npz_read_from_memory(const unsigned char *buf, size_t len, ag_array_list *out, ag_error *err) {
    ag_zip z;
    ag_array_list list;
    int i;
    if (!out) return ag__fail(err, "npz: NULL output");
    memset(out, 0, sizeof *out);
    memset(&list, 0, sizeof list);
    if (ag_zip_open_from_memory(&z, buf, len, err)) return ag__fail_prefix(err, "npz");
    for (i = 0; i < z.count; i++) {
        const ag_zip_entry *e = &z.entries[i];
        size_t nl = strlen(e->name), mlen = 0;
        const unsigned char *mem = NULL;
        unsigned char *owned = NULL;
        ag_array a;
        int r;
        if (nl < 4 || strcmp(e->name + nl - 4, ".npy") != 0) continue;   /* not an array */
        if (e->method == 0) r = ag_zip_view(&z, i, &mem, &mlen, err);
        else { r = ag_zip_extract(&z, i, 0, &owned, &mlen, err); mem = owned; }
        if (!r) {
            r = ag_npy_read_from_memory(mem, mlen, &a, err);
            if (r) ag__fail_prefix(err, "npz member '%s'", e->name);
        }
        AG_FREE(owned);
        if (r) { ag_zip_close(&z); ag_array_list_free(&list); return -1; }
        e->name[nl - 4] = '\0';   /* the list copies the name without ".npy" */
        if (ag_array_list_find(&list, e->name)) {
            ag_array_free(&a);
            ag__fail(err, "npz: duplicate member '%s.npy'", e->name);
            ag_zip_close(&z);
            ag_array_list_free(&list);
            return -1;
        }
        r = ag_array_list_add(&list, e->name, a.dtype, a.ndim, a.shape, NULL, err);
        if (!r) {   /* hand the data over instead of copying it */
            ag_array *dst = &list.items[list.count - 1];
            AG_FREE(dst->data);
            dst->data = a.data;
            dst->nbytes = a.nbytes;
        } else ag_array_free(&a);
        if (r) { ag_zip_close(&z); ag_array_list_free(&list); return -1; }
    }
    ag_zip_close(&z);
    *out = list;
    return 0;
}

AGDEF int ag_npz_read(const char *path, ag_array_list *out, ag_error *err) {
    unsigned char *buf; size_t len;
    if (out) memset(out, 0, sizeof *out);
    if (ag_read_file(path, &buf, &len, err)) return -1;
    return ag__read_finish(path, buf, ag_npz_read_from_memory(buf, len, out, err), err);
}

AGDEF int ag_npz_write_to_memory(const ag_array_list *arrays, unsigned char **out, size_t *out_len, ag_error *err) {
    ag_zip_writer w;
    int i;
    if (out) *out = NULL;
    if (out_len) *out_len = 0;
    if (!arrays || !out || !out_len) return ag__fail(err, "npz: NULL argument");
    memset(&w, 0, sizeof w);
    for (i = 0; i < arrays->count; i++) {
        const ag_array *a = &arrays->items[i];
        unsigned char hdr[512];
        size_t hlen, nbytes = 0, nl;
        char *name;
        unsigned char *swapped = NULL;
        const void *data;
        int r;
        if (!a->name || !a->name[0]) { ag_zip_writer_free(&w); return ag__fail(err, "npz: array #%d has no name", i); }
        if (ag__npy_check(a, &nbytes, err) || ag__npy_header(a, hdr, sizeof hdr, &hlen, err)) {
            ag_zip_writer_free(&w);
            return ag__fail_prefix(err, "npz array '%s'", a->name);
        }
        nl = strlen(a->name);
        name = (char *)AG_MALLOC(nl + 5);
        if (!name) { ag_zip_writer_free(&w); return ag__fail(err, "npz: out of memory"); }
        memcpy(name, a->name, nl);
        memcpy(name + nl, ".npy", 5);
        data = a->data;
        if (!ag__host_is_le() && ag_dtype_size(a->dtype) > 1 && nbytes) {
            swapped = (unsigned char *)AG_MALLOC(nbytes);
            if (!swapped) { AG_FREE(name); ag_zip_writer_free(&w); return ag__fail(err, "npz: out of memory"); }
            memcpy(swapped, a->data, nbytes);
            ag__swap_elems(swapped, nbytes / ag_dtype_size(a->dtype), ag_dtype_size(a->dtype));
            data = swapped;
        }
        r = ag__zip_writer_add_parts(&w, name, hdr, hlen, data, nbytes, err);
        AG_FREE(name);
        AG_FREE(swapped);
        if (r) { ag_zip_writer_free(&w); return -1; }
    }
    return ag_zip_writer_finish(&w, out, out_len, err);
}

AGDEF int ag_npz_write(const char *path, const ag_array_list *arrays, ag_error *err) {
    unsigned char *buf = NULL; size_t len = 0;
    int rc = ag_npz_write_to_memory(arrays, &buf, &len, err);
    return ag__write_finish(path, buf, len, rc, err);
}

/* ---- PyTorch .pth: a small pickle VM and the state-dict reader ---- */

enum { AG__PK_NONE, AG__PK_BOOL, AG__PK_INT, AG__PK_FLOAT, AG__PK_STR, AG__PK_TUPLE, AG__PK_LIST, AG__PK_DICT,
       AG__PK_GLOBAL, AG__PK_STORAGE, AG__PK_TENSOR, AG__PK_OPAQUE,
       AG__PK_NDARRAY, AG__PK_NPDTYPE };   /* numpy arrays (CIFAR-10's python batches) */
enum { AG__G_OTHER, AG__G_ORDERED_DICT, AG__G_REBUILD_V2, AG__G_REBUILD_V1, AG__G_REBUILD_PARAM,
       AG__G_REBUILD_FROM_TYPE, AG__G_STORAGE_TYPE, AG__G_TORCH_SIZE, AG__G_UNSUPPORTED,
       AG__G_NP_RECONSTRUCT, AG__G_NP_DTYPE, AG__G_CODECS_ENCODE };

typedef struct ag__pk {
    int kind, gid, n, cap, ndim;
    ag_dtype dtype;                 /* STORAGE, TENSOR and storage-type GLOBAL */
    int64_t i;                      /* INT, BOOL; STORAGE: element count; TENSOR: storage offset */
    int64_t voff, vsize;            /* STORAGE: legacy view offset and size (vsize -1: no view) */
    double f;
    char *s;                        /* STR (NUL-terminated copy); GLOBAL "module.name"; STORAGE key */
    size_t slen;
    struct ag__pk **items, **vals;  /* TUPLE / LIST items; DICT keys and values */
    struct ag__pk *ref;             /* TENSOR: its STORAGE; NDARRAY: its data (a STR) */
    int64_t *dims;                  /* TENSOR: shape[ndim] then stride[ndim] */
    struct ag__pk *next;            /* every node, for freeing */
} ag__pk;

typedef struct ag__pvm {
    ag__pk *all;
    size_t nnodes;
    ag__pk **stack;
    size_t sp, scap;
    size_t *marks;
    size_t nmarks, mcap;
    ag__pk **memo;
    size_t memo_cap, memo_count;
    ag__pk **storages;              /* every STORAGE node, in creation order */
    size_t nstorages, stcap;
    ag_error *err;
} ag__pvm;

static void ag__pvm_free(ag__pvm *vm) {
    ag__pk *p = vm->all, *nx;
    while (p) {
        nx = p->next;
        AG_FREE(p->s);
        AG_FREE(p->items);
        AG_FREE(p->vals);
        AG_FREE(p->dims);
        AG_FREE(p);
        p = nx;
    }
    AG_FREE(vm->stack);
    AG_FREE(vm->marks);
    AG_FREE(vm->memo);
    AG_FREE(vm->storages);
    memset(vm, 0, sizeof *vm);
}

static ag__pk *ag__pk_new(ag__pvm *vm, int kind) {
    ag__pk *p = (ag__pk *)AG_MALLOC(sizeof *p);
    if (!p) { ag__fail(vm->err, "pickle: out of memory"); return NULL; }
    memset(p, 0, sizeof *p);
    p->kind = kind;
    p->vsize = -1;
    p->next = vm->all;
    vm->all = p;
    vm->nnodes++;
    return p;
}

static ag__pk *ag__pk_str(ag__pvm *vm, const unsigned char *s, size_t n) {
    ag__pk *p = ag__pk_new(vm, AG__PK_STR);
    if (!p) return NULL;
    if (n > SIZE_MAX - 1 || !(p->s = (char *)AG_MALLOC(n + 1))) { ag__fail(vm->err, "pickle: out of memory"); return NULL; }
    if (n) memcpy(p->s, s, n);
    p->s[n] = '\0';
    p->slen = n;
    return p;
}

static ag__pk *ag__pk_int(ag__pvm *vm, int64_t v) {
    ag__pk *p = ag__pk_new(vm, AG__PK_INT);
    if (p) p->i = v;
    return p;
}

/* Append item (and value, for dicts) to a container. */
static int ag__pk_add(ag__pvm *vm, ag__pk *c, ag__pk *item, ag__pk *val) {
    if (c->n == c->cap) {
        int ncap = c->cap ? c->cap * 2 : 4;
        ag__pk **ni, **nv = NULL;
        if (c->cap > (1 << 28)) return ag__fail(vm->err, "pickle: container too large");
        ni = (ag__pk **)AG_REALLOC(c->items, (size_t)ncap * sizeof *ni);
        if (!ni) return ag__fail(vm->err, "pickle: out of memory");
        c->items = ni;
        if (c->kind == AG__PK_DICT) {
            nv = (ag__pk **)AG_REALLOC(c->vals, (size_t)ncap * sizeof *nv);
            if (!nv) return ag__fail(vm->err, "pickle: out of memory");
            c->vals = nv;
        }
        c->cap = ncap;
    }
    c->items[c->n] = item;
    if (c->kind == AG__PK_DICT) c->vals[c->n] = val;
    c->n++;
    return 0;
}

static int ag__pvm_push(ag__pvm *vm, ag__pk *p) {
    if (!p) return -1;
    if (vm->sp == vm->scap) {
        size_t ncap = vm->scap ? vm->scap * 2 : 64;
        ag__pk **ns = (ag__pk **)AG_REALLOC(vm->stack, ncap * sizeof *ns);
        if (!ns) return ag__fail(vm->err, "pickle: out of memory");
        vm->stack = ns;
        vm->scap = ncap;
    }
    vm->stack[vm->sp++] = p;
    return 0;
}

static size_t ag__pvm_floor(const ag__pvm *vm) { return vm->nmarks ? vm->marks[vm->nmarks - 1] : 0; }

static ag__pk *ag__pvm_pop(ag__pvm *vm) {
    if (vm->sp <= ag__pvm_floor(vm)) { ag__fail(vm->err, "pickle: stack underflow"); return NULL; }
    return vm->stack[--vm->sp];
}

static ag__pk *ag__pvm_top(ag__pvm *vm) {
    if (vm->sp <= ag__pvm_floor(vm)) { ag__fail(vm->err, "pickle: stack underflow"); return NULL; }
    return vm->stack[vm->sp - 1];
}

/* Pop back to the last MARK; the popped items stay readable at vm->stack[*start .. *start + *count). */
static int ag__pvm_pop_mark(ag__pvm *vm, size_t *start, size_t *count) {
    if (!vm->nmarks) return ag__fail(vm->err, "pickle: MARK missing");
    *start = vm->marks[--vm->nmarks];
    *count = vm->sp - *start;
    vm->sp = *start;
    return 0;
}

/* A new TUPLE / LIST / DICT from stack items (dicts take key, value pairs). */
static ag__pk *ag__pk_from_items(ag__pvm *vm, int kind, ag__pk **items, size_t n) {
    ag__pk *c = ag__pk_new(vm, kind);
    size_t k;
    if (!c) return NULL;
    if (kind == AG__PK_DICT) {
        if (n % 2) { ag__fail(vm->err, "pickle: odd number of dict items"); return NULL; }
        for (k = 0; k < n; k += 2) if (ag__pk_add(vm, c, items[k], items[k + 1])) return NULL;
    } else {
        for (k = 0; k < n; k++) if (ag__pk_add(vm, c, items[k], NULL)) return NULL;
    }
    return c;
}

static int ag__pk_global_id(const char *mod, const char *name, ag_dtype *dt) {
    static const struct { const char *name; ag_dtype dt; } st[] = {
        { "FloatStorage", AG_DTYPE_F32 }, { "DoubleStorage", AG_DTYPE_F64 }, { "HalfStorage", AG_DTYPE_F16 },
        { "BFloat16Storage", AG_DTYPE_BF16 }, { "LongStorage", AG_DTYPE_I64 }, { "IntStorage", AG_DTYPE_I32 },
        { "ShortStorage", AG_DTYPE_I16 }, { "CharStorage", AG_DTYPE_I8 }, { "ByteStorage", AG_DTYPE_U8 },
        { "BoolStorage", AG_DTYPE_BOOL } };
    size_t k, nl = strlen(name);
    if (!strcmp(mod, "collections") && !strcmp(name, "OrderedDict")) return AG__G_ORDERED_DICT;
    if ((!strcmp(mod, "numpy.core.multiarray") || !strcmp(mod, "numpy._core.multiarray")) && !strcmp(name, "_reconstruct"))
        return AG__G_NP_RECONSTRUCT;
    if (!strcmp(mod, "numpy") && !strcmp(name, "dtype")) return AG__G_NP_DTYPE;
    if (!strcmp(mod, "_codecs") && !strcmp(name, "encode")) return AG__G_CODECS_ENCODE;
    if (!strcmp(mod, "torch._utils")) {
        if (!strcmp(name, "_rebuild_tensor_v2")) return AG__G_REBUILD_V2;
        if (!strcmp(name, "_rebuild_tensor")) return AG__G_REBUILD_V1;
        if (!strcmp(name, "_rebuild_parameter") || !strcmp(name, "_rebuild_parameter_with_state")) return AG__G_REBUILD_PARAM;
        if (!strncmp(name, "_rebuild", 8)) return AG__G_UNSUPPORTED;
        return AG__G_OTHER;
    }
    if ((!strcmp(mod, "torch._tensor") || !strcmp(mod, "torch.tensor")) && !strcmp(name, "_rebuild_from_type_v2"))
        return AG__G_REBUILD_FROM_TYPE;
    if (!strcmp(mod, "torch")) {
        if (!strcmp(name, "Size")) return AG__G_TORCH_SIZE;
        for (k = 0; k < sizeof st / sizeof st[0]; k++)
            if (!strcmp(name, st[k].name)) { *dt = st[k].dt; return AG__G_STORAGE_TYPE; }
        if (nl > 7 && !strcmp(name + nl - 7, "Storage")) return AG__G_UNSUPPORTED;
    }
    return AG__G_OTHER;
}

static ag__pk *ag__pk_global(ag__pvm *vm, const unsigned char *mod, size_t ml, const unsigned char *name, size_t nl) {
    ag__pk *g;
    char m[128], n[128];
    if (ml >= sizeof m || nl >= sizeof n) { ag__fail(vm->err, "pickle: GLOBAL name too long"); return NULL; }
    memcpy(m, mod, ml);
    m[ml] = '\0';
    memcpy(n, name, nl);
    n[nl] = '\0';
    g = ag__pk_new(vm, AG__PK_GLOBAL);
    if (!g) return NULL;
    g->s = (char *)AG_MALLOC(ml + nl + 2);
    if (!g->s) { ag__fail(vm->err, "pickle: out of memory"); return NULL; }
    memcpy(g->s, m, ml);
    g->s[ml] = '.';
    memcpy(g->s + ml + 1, n, nl + 1);
    g->slen = ml + nl + 1;
    g->gid = ag__pk_global_id(m, n, &g->dtype);
    return g;
}

/* A tuple (or list) of at most 8 non-negative... ints; -1 otherwise. */
static int ag__pk_dims(const ag__pk *t, int64_t *out, int *n) {
    int k;
    if (!t || (t->kind != AG__PK_TUPLE && t->kind != AG__PK_LIST) || t->n > 8) return -1;
    for (k = 0; k < t->n; k++) {
        if (t->items[k]->kind != AG__PK_INT) return -1;
        out[k] = t->items[k]->i;
    }
    *n = t->n;
    return 0;
}

static ag__pk *ag__pk_call(ag__pvm *vm, ag__pk *fn, ag__pk *args, int depth) {
    ag__pk *r;
    int k;
    if (fn->kind != AG__PK_GLOBAL) return ag__pk_new(vm, AG__PK_OPAQUE);
    if (args->kind != AG__PK_TUPLE) { ag__fail(vm->err, "pickle: REDUCE arguments are not a tuple"); return NULL; }
    switch (fn->gid) {
    case AG__G_ORDERED_DICT:
        r = ag__pk_new(vm, AG__PK_DICT);
        if (!r) return NULL;
        if (args->n == 1 && (args->items[0]->kind == AG__PK_LIST || args->items[0]->kind == AG__PK_TUPLE)) {
            const ag__pk *l = args->items[0];
            for (k = 0; k < l->n; k++) {
                const ag__pk *pr = l->items[k];
                if ((pr->kind != AG__PK_TUPLE && pr->kind != AG__PK_LIST) || pr->n != 2) {
                    ag__fail(vm->err, "pickle: OrderedDict item is not a pair");
                    return NULL;
                }
                if (ag__pk_add(vm, r, pr->items[0], pr->items[1])) return NULL;
            }
        }
        return r;
    case AG__G_REBUILD_V2:
    case AG__G_REBUILD_V1: {
        int64_t shape[8], stride[8];
        int nd, ns;
        if (args->n < 4 || args->items[0]->kind != AG__PK_STORAGE || args->items[1]->kind != AG__PK_INT ||
            ag__pk_dims(args->items[2], shape, &nd) || ag__pk_dims(args->items[3], stride, &ns) || nd != ns ||
            args->items[1]->i < 0) {
            ag__fail(vm->err, "pickle: malformed %s arguments", fn->s);
            return NULL;
        }
        r = ag__pk_new(vm, AG__PK_TENSOR);
        if (!r) return NULL;
        r->ref = args->items[0];
        r->dtype = r->ref->dtype;
        r->i = args->items[1]->i;
        r->ndim = nd;
        r->dims = (int64_t *)AG_MALLOC(2 * 8 * sizeof *r->dims);
        if (!r->dims) { ag__fail(vm->err, "pickle: out of memory"); return NULL; }
        for (k = 0; k < nd; k++) { r->dims[k] = shape[k]; r->dims[nd + k] = stride[k]; }
        return r;
    }
    case AG__G_REBUILD_PARAM:
        if (args->n < 1 || args->items[0]->kind != AG__PK_TENSOR) {
            ag__fail(vm->err, "pickle: malformed %s arguments", fn->s);
            return NULL;
        }
        return args->items[0];
    case AG__G_REBUILD_FROM_TYPE:   /* (func, type, args, state): a tensor subclass */
        if (args->n < 3 || depth > 4 || args->items[2]->kind != AG__PK_TUPLE) {
            ag__fail(vm->err, "pickle: malformed %s arguments", fn->s);
            return NULL;
        }
        return ag__pk_call(vm, args->items[0], args->items[2], depth + 1);
    case AG__G_TORCH_SIZE:
        if (args->n == 1 && args->items[0]->kind == AG__PK_TUPLE) return args->items[0];
        return ag__pk_new(vm, AG__PK_OPAQUE);
    case AG__G_NP_RECONSTRUCT:      /* (ndarray, (0,), b'b'): filled in by BUILD */
        return ag__pk_new(vm, AG__PK_NDARRAY);
    case AG__G_NP_DTYPE: {          /* ('u1', 0, 1); the byte order comes with BUILD */
        static const struct { const char *code; ag_dtype dt; } np[] = {
            { "u1", AG_DTYPE_U8 }, { "i1", AG_DTYPE_I8 }, { "i2", AG_DTYPE_I16 }, { "i4", AG_DTYPE_I32 },
            { "i8", AG_DTYPE_I64 }, { "f2", AG_DTYPE_F16 }, { "f4", AG_DTYPE_F32 }, { "f8", AG_DTYPE_F64 }, { "b1", AG_DTYPE_BOOL } };
        const char *code;
        size_t j;
        if (args->n < 1 || args->items[0]->kind != AG__PK_STR) return ag__pk_new(vm, AG__PK_OPAQUE);
        code = args->items[0]->s;
        if (code[0] == '<' || code[0] == '>' || code[0] == '|' || code[0] == '=') code++;
        for (j = 0; j < sizeof np / sizeof np[0]; j++)
            if (!strcmp(code, np[j].code)) {
                r = ag__pk_new(vm, AG__PK_NPDTYPE);
                if (r) r->dtype = np[j].dt;
                return r;
            }
        return ag__pk_new(vm, AG__PK_OPAQUE);
    }
    case AG__G_CODECS_ENCODE: {     /* Python 3's protocol-2 bytes: encode(text, 'latin1') */
        const ag__pk *t = args->n >= 1 ? args->items[0] : NULL;
        unsigned char *b;
        size_t j, m = 0;
        if (!t || t->kind != AG__PK_STR || args->n < 2 || args->items[1]->kind != AG__PK_STR ||
            (strcmp(args->items[1]->s, "latin1") && strcmp(args->items[1]->s, "latin-1")))
            return ag__pk_new(vm, AG__PK_OPAQUE);
        r = ag__pk_str(vm, (const unsigned char *)t->s, t->slen);   /* UTF-8 -> latin-1 in place */
        if (!r) return NULL;
        b = (unsigned char *)r->s;
        for (j = 0; j < t->slen; j++) {
            unsigned char ch = (unsigned char)t->s[j];
            if (ch < 0x80) b[m++] = ch;
            else if ((ch == 0xc2 || ch == 0xc3) && j + 1 < t->slen && ((unsigned char)t->s[j + 1] & 0xc0) == 0x80) {
                b[m++] = (unsigned char)(((ch & 0x1f) << 6) | ((unsigned char)t->s[j + 1] & 0x3f));
                j++;
            } else { ag__fail(vm->err, "pickle: text beyond latin-1 in _codecs.encode"); return NULL; }
        }
        b[m] = 0;
        r->slen = m;
        return r;
    }
    case AG__G_UNSUPPORTED:
        ag__fail(vm->err, "unsupported object %s (quantized, sparse or other special tensors are not supported)", fn->s);
        return NULL;
    default:
        return ag__pk_new(vm, AG__PK_OPAQUE);
    }
}

/* ('storage', storage_type, key, location, numel[, view_metadata]) */
static ag__pk *ag__pk_persid(ag__pvm *vm, ag__pk *pid) {
    ag__pk *st, *ty, *key, *vm6;
    char num[32];
    if (pid->kind != AG__PK_TUPLE || pid->n < 5 || pid->items[0]->kind != AG__PK_STR || strcmp(pid->items[0]->s, "storage") != 0) {
        ag__fail(vm->err, "pickle: unsupported persistent id (not a torch storage)");
        return NULL;
    }
    ty = pid->items[1];
    key = pid->items[2];
    if (ty->kind != AG__PK_GLOBAL || ty->gid != AG__G_STORAGE_TYPE) {
        ag__fail(vm->err, "pickle: unsupported storage type %s", ty->kind == AG__PK_GLOBAL ? ty->s : "(not a class)");
        return NULL;
    }
    if (pid->items[4]->kind != AG__PK_INT || pid->items[4]->i < 0 || (key->kind != AG__PK_STR && key->kind != AG__PK_INT)) {
        ag__fail(vm->err, "pickle: malformed storage id");
        return NULL;
    }
    if (key->kind == AG__PK_INT) {
        snprintf(num, sizeof num, "%lld", (long long)key->i);
        st = ag__pk_str(vm, (const unsigned char *)num, strlen(num));
    } else st = ag__pk_str(vm, (const unsigned char *)key->s, key->slen);
    if (!st) return NULL;
    st->kind = AG__PK_STORAGE;
    st->dtype = ty->dtype;
    st->i = pid->items[4]->i;
    if (pid->n >= 6 && (vm6 = pid->items[5])->kind != AG__PK_NONE) {
        if (vm6->kind != AG__PK_TUPLE || vm6->n != 3 || vm6->items[1]->kind != AG__PK_INT || vm6->items[2]->kind != AG__PK_INT ||
            vm6->items[1]->i < 0 || vm6->items[2]->i < 0) {
            ag__fail(vm->err, "pickle: malformed storage view metadata");
            return NULL;
        }
        st->voff = vm6->items[1]->i;
        st->vsize = vm6->items[2]->i;
    }
    if (vm->nstorages == vm->stcap) {
        size_t ncap = vm->stcap ? vm->stcap * 2 : 64;
        ag__pk **ns = (ag__pk **)AG_REALLOC(vm->storages, ncap * sizeof *ns);
        if (!ns) { ag__fail(vm->err, "pickle: out of memory"); return NULL; }
        vm->storages = ns;
        vm->stcap = ncap;
    }
    vm->storages[vm->nstorages++] = st;
    return st;
}

/* numpy ndarray.__setstate__: (version, shape, dtype, is_fortran, raw bytes), version optional */
static int ag__pk_np_build(ag__pvm *vm, ag__pk *a, const ag__pk *st) {
    const ag__pk *shape, *dt, *raw;
    int64_t dims[8];
    uint64_t numel;
    size_t nbytes;
    int nd, k, o;
    if (st->kind != AG__PK_TUPLE || (st->n != 5 && st->n != 4)) return ag__fail(vm->err, "pickle: malformed numpy array state");
    o = st->n == 5;
    shape = st->items[o]; dt = st->items[o + 1]; raw = st->items[o + 3];
    if (dt->kind != AG__PK_NPDTYPE) return ag__fail(vm->err, "pickle: numpy array of an unsupported dtype");
    if (raw->kind != AG__PK_STR) return ag__fail(vm->err, "pickle: numpy array without raw data (object arrays are not supported)");
    if (ag__pk_dims(shape, dims, &nd)) return ag__fail(vm->err, "pickle: malformed numpy array shape");
    if (ag__rd_numel(nd, dims, &numel) || ag__rd_bytes(numel, ag_dtype_size(dt->dtype), &nbytes) || nbytes != raw->slen)
        return ag__fail(vm->err, "pickle: numpy array shape needs %lu bytes, the data has %lu",
                        (unsigned long)(numel * ag_dtype_size(dt->dtype)), (unsigned long)raw->slen);
    a->dims = (int64_t *)AG_MALLOC(8 * sizeof *a->dims);
    if (!a->dims) return ag__fail(vm->err, "pickle: out of memory");
    for (k = 0; k < nd; k++) a->dims[k] = dims[k];
    a->ndim = nd;
    a->dtype = dt->dtype;
    a->ref = (ag__pk *)raw;
    a->i = st->items[o + 2]->kind != AG__PK_NONE && st->items[o + 2]->i != 0;   /* fortran order */
    a->voff = dt->i;                                                             /* big-endian */
    return 0;
}

/* Little-endian two's complement integer of n bytes; -1 when it does not fit int64. */
static int ag__pk_long(const unsigned char *p, size_t n, int64_t *v) {
    uint64_t u = 0;
    size_t k;
    int neg;
    if (n == 0) { *v = 0; return 0; }
    neg = (p[n - 1] & 0x80) != 0;
    for (k = 8; k < n; k++) if (p[k] != (neg ? 0xff : 0x00)) return -1;
    if (n > 8 && ((p[7] & 0x80) != 0) != neg) return -1;
    for (k = 0; k < n && k < 8; k++) u |= (uint64_t)p[k] << (8 * k);
    if (n < 8 && neg) u |= ~(uint64_t)0 << (8 * n);
    memcpy(v, &u, sizeof u);
    return 0;
}

/* A text line (protocol 0 argument): returns its length, p advanced past '\n'; -1 if none. */
static int ag__pk_line(const unsigned char *d, size_t len, size_t *pos, const unsigned char **line, size_t *n) {
    const unsigned char *e;
    if (*pos >= len) return -1;
    e = (const unsigned char *)memchr(d + *pos, '\n', len - *pos);
    if (!e) return -1;
    *line = d + *pos;
    *n = (size_t)(e - (d + *pos));
    *pos += *n + 1;
    return 0;
}

static int ag__pk_line_int(const unsigned char *l, size_t n, int64_t *v) {
    char tmp[32];
    char *end;
    long long x;
    if (n && l[n - 1] == 'L') n--;
    if (n == 0 || n >= sizeof tmp) return -1;
    memcpy(tmp, l, n);
    tmp[n] = '\0';
    errno = 0;
    x = strtoll(tmp, &end, 10);
    if (errno || *end) return -1;
    *v = (int64_t)x;
    return 0;
}

static int ag__pvm_memo_put(ag__pvm *vm, uint64_t idx, size_t limit) {
    ag__pk *top = ag__pvm_top(vm);
    if (!top) return -1;
    if (idx >= limit) return ag__fail(vm->err, "pickle: memo index %lu out of range", (unsigned long)idx);
    if (idx >= vm->memo_cap) {
        size_t ncap = vm->memo_cap ? vm->memo_cap : 64;
        ag__pk **nm;
        while (ncap <= idx) ncap *= 2;
        nm = (ag__pk **)AG_REALLOC(vm->memo, ncap * sizeof *nm);
        if (!nm) return ag__fail(vm->err, "pickle: out of memory");
        memset(nm + vm->memo_cap, 0, (ncap - vm->memo_cap) * sizeof *nm);
        vm->memo = nm;
        vm->memo_cap = ncap;
    }
    if (!vm->memo[idx]) vm->memo_count++;
    vm->memo[idx] = top;
    return 0;
}

static int ag__pvm_memo_get(ag__pvm *vm, uint64_t idx) {
    if (idx >= vm->memo_cap || !vm->memo[idx]) return ag__fail(vm->err, "pickle: memo key %lu missing", (unsigned long)idx);
    return ag__pvm_push(vm, vm->memo[idx]);
}

/* Run one pickle from d[0..len); the result is the object STOP returns. */
static int ag__pvm_run(ag__pvm *vm, const unsigned char *d, size_t len, size_t *consumed, ag__pk **result) {
    size_t pos = 0, start = 0, count = 0, n, k;
    *result = NULL;
    if (!vm->stack) {   /* allocated up front: MARK-delimited slices never start at NULL */
        vm->stack = (ag__pk **)AG_MALLOC(64 * sizeof *vm->stack);
        if (!vm->stack) return ag__fail(vm->err, "pickle: out of memory");
        vm->scap = 64;
    }
    vm->sp = 0;
    vm->nmarks = 0;
    vm->memo_count = 0;
    if (vm->memo) memset(vm->memo, 0, vm->memo_cap * sizeof *vm->memo);
    for (;;) {
        unsigned op;
        size_t at = pos;
        ag__pk *a, *b, *c;
        const unsigned char *l1, *l2;
        size_t n1, n2;
        int64_t v;
        if (pos >= len) return ag__fail(vm->err, "pickle: truncated (no STOP opcode)");
        op = d[pos++];
#define AG__NEED(nb) do { if (len - pos < (size_t)(nb)) return ag__fail(vm->err, "pickle: truncated at offset %lu", (unsigned long)at); } while (0)
#define AG__PUSH(x) do { if (ag__pvm_push(vm, (x))) return -1; } while (0)
#define AG__POP(x) do { if (!((x) = ag__pvm_pop(vm))) return -1; } while (0)
        switch (op) {
        case 0x80: AG__NEED(1); if (d[pos] > 5) return ag__fail(vm->err, "pickle: unsupported protocol %d", d[pos]); pos++; break;
        case 0x95: AG__NEED(8); pos += 8; break;                                   /* FRAME */
        case '.':                                                                  /* STOP */
            AG__POP(a);
            *result = a;
            if (consumed) *consumed = pos;
            return 0;
        case 'N': AG__PUSH(ag__pk_new(vm, AG__PK_NONE)); break;
        case 0x88: case 0x89:                                                      /* NEWTRUE / NEWFALSE */
            a = ag__pk_new(vm, AG__PK_BOOL);
            if (!a) return -1;
            a->i = op == 0x88;
            AG__PUSH(a);
            break;
        case 'K': AG__NEED(1); AG__PUSH(ag__pk_int(vm, d[pos])); pos += 1; break;
        case 'M': AG__NEED(2); AG__PUSH(ag__pk_int(vm, (int64_t)ag__rd16(d + pos))); pos += 2; break;
        case 'J': AG__NEED(4); AG__PUSH(ag__pk_int(vm, (int64_t)(int32_t)ag__rd32(d + pos))); pos += 4; break;
        case 0x8a: case 0x8b:                                                      /* LONG1 / LONG4 */
            if (op == 0x8a) { AG__NEED(1); n = d[pos]; pos += 1; }
            else { AG__NEED(4); n = ag__rd32(d + pos); pos += 4; }
            AG__NEED(n);
            if (ag__pk_long(d + pos, n, &v)) AG__PUSH(ag__pk_new(vm, AG__PK_OPAQUE));   /* big int */
            else AG__PUSH(ag__pk_int(vm, v));
            pos += n;
            break;
        case 'I': case 'L':                                                        /* INT / LONG (text) */
            if (ag__pk_line(d, len, &pos, &l1, &n1)) return ag__fail(vm->err, "pickle: truncated at offset %lu", (unsigned long)at);
            if (op == 'I' && n1 == 2 && l1[0] == '0' && (l1[1] == '0' || l1[1] == '1')) {
                a = ag__pk_new(vm, AG__PK_BOOL);
                if (!a) return -1;
                a->i = l1[1] == '1';
                AG__PUSH(a);
            } else if (ag__pk_line_int(l1, n1, &v) == 0) AG__PUSH(ag__pk_int(vm, v));
            else AG__PUSH(ag__pk_new(vm, AG__PK_OPAQUE));
            break;
        case 'G': {                                                                /* BINFLOAT (big-endian) */
            uint64_t u;
            AG__NEED(8);
            u = (uint64_t)ag__rd32be(d + pos) << 32 | ag__rd32be(d + pos + 4);
            a = ag__pk_new(vm, AG__PK_FLOAT);
            if (!a) return -1;
            memcpy(&a->f, &u, 8);
            AG__PUSH(a);
            pos += 8;
            break;
        }
        case 'F': {                                                                /* FLOAT (text) */
            char tmp[64];
            if (ag__pk_line(d, len, &pos, &l1, &n1) || n1 >= sizeof tmp) return ag__fail(vm->err, "pickle: bad FLOAT at offset %lu", (unsigned long)at);
            memcpy(tmp, l1, n1);
            tmp[n1] = '\0';
            a = ag__pk_new(vm, AG__PK_FLOAT);
            if (!a) return -1;
            a->f = strtod(tmp, NULL);
            AG__PUSH(a);
            break;
        }
        case 'X': case 'T': case 'B':                                              /* 4-byte length strings */
            AG__NEED(4); n = ag__rd32(d + pos); pos += 4; AG__NEED(n);
            AG__PUSH(ag__pk_str(vm, d + pos, n)); pos += n;
            break;
        case 0x8c: case 'U': case 'C':                                             /* 1-byte length strings */
            AG__NEED(1); n = d[pos]; pos += 1; AG__NEED(n);
            AG__PUSH(ag__pk_str(vm, d + pos, n)); pos += n;
            break;
        case 0x8d: case 0x8e: case 0x96: {                                         /* 8-byte length strings */
            uint64_t n64;
            AG__NEED(8); n64 = ag__rd64(d + pos); pos += 8;
            if (n64 > len - pos) return ag__fail(vm->err, "pickle: truncated at offset %lu", (unsigned long)at);
            n = (size_t)n64;
            AG__PUSH(ag__pk_str(vm, d + pos, n)); pos += n;
            break;
        }
        case 'S': case 'V':                                                        /* STRING / UNICODE (text) */
            if (ag__pk_line(d, len, &pos, &l1, &n1)) return ag__fail(vm->err, "pickle: truncated at offset %lu", (unsigned long)at);
            if (op == 'S' && n1 >= 2 && (l1[0] == '\'' || l1[0] == '"') && l1[n1 - 1] == l1[0]) { l1++; n1 -= 2; }
            AG__PUSH(ag__pk_str(vm, l1, n1));
            break;
        case ')': AG__PUSH(ag__pk_new(vm, AG__PK_TUPLE)); break;
        case ']': AG__PUSH(ag__pk_new(vm, AG__PK_LIST)); break;
        case '}': AG__PUSH(ag__pk_new(vm, AG__PK_DICT)); break;
        case 0x8f: AG__PUSH(ag__pk_new(vm, AG__PK_OPAQUE)); break;                 /* EMPTY_SET */
        case '(':                                                                  /* MARK */
            if (vm->nmarks == vm->mcap) {
                size_t ncap = vm->mcap ? vm->mcap * 2 : 32;
                size_t *nm = (size_t *)AG_REALLOC(vm->marks, ncap * sizeof *nm);
                if (!nm) return ag__fail(vm->err, "pickle: out of memory");
                vm->marks = nm;
                vm->mcap = ncap;
            }
            vm->marks[vm->nmarks++] = vm->sp;
            break;
        case 't': case 'l': case 'd':                                              /* TUPLE / LIST / DICT */
            if (ag__pvm_pop_mark(vm, &start, &count)) return -1;
            AG__PUSH(ag__pk_from_items(vm, op == 't' ? AG__PK_TUPLE : op == 'l' ? AG__PK_LIST : AG__PK_DICT, vm->stack + start, count));
            break;
        case 0x85: case 0x86: case 0x87: {                                         /* TUPLE1..3 */
            ag__pk *it[3];
            int m = (int)op - 0x84, j;
            for (j = m - 1; j >= 0; j--) AG__POP(it[j]);
            AG__PUSH(ag__pk_from_items(vm, AG__PK_TUPLE, it, (size_t)m));
            break;
        }
        case 0x91: case '1':                                                       /* FROZENSET / POP_MARK */
            if (ag__pvm_pop_mark(vm, &start, &count)) return -1;
            if (op == 0x91) AG__PUSH(ag__pk_new(vm, AG__PK_OPAQUE));
            break;
        case '0':                                                                  /* POP */
            if (vm->sp <= ag__pvm_floor(vm) && vm->nmarks) vm->nmarks--;
            else AG__POP(a);
            break;
        case '2': if (!(a = ag__pvm_top(vm))) return -1; AG__PUSH(a); break;       /* DUP */
        case 'a':                                                                  /* APPEND */
            AG__POP(b);
            if (!(a = ag__pvm_top(vm))) return -1;
            if (a->kind == AG__PK_LIST) { if (ag__pk_add(vm, a, b, NULL)) return -1; }
            else if (a->kind != AG__PK_OPAQUE) return ag__fail(vm->err, "pickle: APPEND to a non-list");
            break;
        case 'e': case 0x90:                                                       /* APPENDS / ADDITEMS */
            if (ag__pvm_pop_mark(vm, &start, &count)) return -1;
            if (!(a = ag__pvm_top(vm))) return -1;
            if (a->kind == AG__PK_LIST && op == 'e') {
                for (k = 0; k < count; k++) if (ag__pk_add(vm, a, vm->stack[start + k], NULL)) return -1;
            } else if (a->kind != AG__PK_OPAQUE) return ag__fail(vm->err, "pickle: APPENDS to a non-list");
            break;
        case 's':                                                                  /* SETITEM */
            AG__POP(c);
            AG__POP(b);
            if (!(a = ag__pvm_top(vm))) return -1;
            if (a->kind == AG__PK_DICT) { if (ag__pk_add(vm, a, b, c)) return -1; }
            else if (a->kind != AG__PK_OPAQUE) return ag__fail(vm->err, "pickle: SETITEM on a non-dict");
            break;
        case 'u':                                                                  /* SETITEMS */
            if (ag__pvm_pop_mark(vm, &start, &count)) return -1;
            if (!(a = ag__pvm_top(vm))) return -1;
            if (count % 2) return ag__fail(vm->err, "pickle: odd number of SETITEMS items");
            if (a->kind == AG__PK_DICT) {
                for (k = 0; k < count; k += 2) if (ag__pk_add(vm, a, vm->stack[start + k], vm->stack[start + k + 1])) return -1;
            } else if (a->kind != AG__PK_OPAQUE) return ag__fail(vm->err, "pickle: SETITEMS on a non-dict");
            break;
        case 'c':                                                                  /* GLOBAL */
            if (ag__pk_line(d, len, &pos, &l1, &n1) || ag__pk_line(d, len, &pos, &l2, &n2))
                return ag__fail(vm->err, "pickle: truncated GLOBAL at offset %lu", (unsigned long)at);
            AG__PUSH(ag__pk_global(vm, l1, n1, l2, n2));
            break;
        case 0x93:                                                                 /* STACK_GLOBAL */
            AG__POP(b);
            AG__POP(a);
            if (a->kind != AG__PK_STR || b->kind != AG__PK_STR) return ag__fail(vm->err, "pickle: bad STACK_GLOBAL");
            AG__PUSH(ag__pk_global(vm, (const unsigned char *)a->s, a->slen, (const unsigned char *)b->s, b->slen));
            break;
        case 'i':                                                                  /* INST */
            if (ag__pk_line(d, len, &pos, &l1, &n1) || ag__pk_line(d, len, &pos, &l2, &n2))
                return ag__fail(vm->err, "pickle: truncated INST at offset %lu", (unsigned long)at);
            /* fall through */
        case 'o':                                                                  /* OBJ */
            if (ag__pvm_pop_mark(vm, &start, &count)) return -1;
            AG__PUSH(ag__pk_new(vm, AG__PK_OPAQUE));
            break;
        case 'R':                                                                  /* REDUCE */
            AG__POP(b);
            AG__POP(a);
            AG__PUSH(ag__pk_call(vm, a, b, 0));
            break;
        case 0x81:                                                                 /* NEWOBJ */
            AG__POP(b);
            AG__POP(a);
            AG__PUSH(ag__pk_new(vm, AG__PK_OPAQUE));
            break;
        case 0x92:                                                                 /* NEWOBJ_EX */
            AG__POP(c);
            AG__POP(b);
            AG__POP(a);
            AG__PUSH(ag__pk_new(vm, AG__PK_OPAQUE));
            break;
        case 'b':                                                                  /* BUILD */
            AG__POP(b);
            if (!(a = ag__pvm_top(vm))) return -1;
            if (a->kind == AG__PK_NDARRAY) { if (ag__pk_np_build(vm, a, b)) return -1; }
            else if (a->kind == AG__PK_NPDTYPE && b->kind == AG__PK_TUPLE && b->n >= 2 && b->items[1]->kind == AG__PK_STR)
                a->i = b->items[1]->s[0] == '>';                                   /* big-endian */
            break;                                                                 /* other states are ignored */
        case 'Q':                                                                  /* BINPERSID */
            AG__POP(a);
            AG__PUSH(ag__pk_persid(vm, a));
            break;
        case 'q': AG__NEED(1); if (ag__pvm_memo_put(vm, d[pos], len)) return -1; pos += 1; break;
        case 'r': AG__NEED(4); if (ag__pvm_memo_put(vm, ag__rd32(d + pos), len)) return -1; pos += 4; break;
        case 0x94: if (ag__pvm_memo_put(vm, vm->memo_count, len)) return -1; break;   /* MEMOIZE */
        case 'p':
            if (ag__pk_line(d, len, &pos, &l1, &n1) || ag__pk_line_int(l1, n1, &v) || v < 0)
                return ag__fail(vm->err, "pickle: bad PUT at offset %lu", (unsigned long)at);
            if (ag__pvm_memo_put(vm, (uint64_t)v, len)) return -1;
            break;
        case 'h': AG__NEED(1); if (ag__pvm_memo_get(vm, d[pos])) return -1; pos += 1; break;
        case 'j': AG__NEED(4); if (ag__pvm_memo_get(vm, ag__rd32(d + pos))) return -1; pos += 4; break;
        case 'g':
            if (ag__pk_line(d, len, &pos, &l1, &n1) || ag__pk_line_int(l1, n1, &v) || v < 0)
                return ag__fail(vm->err, "pickle: bad GET at offset %lu", (unsigned long)at);
            if (ag__pvm_memo_get(vm, (uint64_t)v)) return -1;
            break;
        default:
            return ag__fail(vm->err, "pickle: unsupported opcode 0x%02x at offset %lu", op, (unsigned long)at);
        }
#undef AG__NEED
#undef AG__PUSH
#undef AG__POP
    }
}

/* -- materialising the object tree -- */

typedef struct ag__pth_st {   /* a storage's bytes, resolved once */
    const char *key;
    const unsigned char *data;
    size_t nbytes;
    unsigned char *owned;
    ag_dtype dtype;
} ag__pth_st;

typedef struct ag__pth_ctx {
    const ag_zip *zip;          /* zip form */
    const char *zprefix;        /* "archive/" */
    ag__pth_st *st;
    size_t nst, stcap;
    int swap;                   /* file byte order differs from the host's */
    uint64_t out_bytes, max_out_bytes;
    size_t visits, max_visits;
    ag_array_list *out;
    char *name;
    size_t name_len, name_cap;
    ag_error *err;
} ag__pth_ctx;

static int ag__pth_st_add(ag__pth_ctx *cx, const char *key, ag_dtype dt, const unsigned char *data, size_t nbytes,
                          unsigned char *owned) {
    if (cx->nst == cx->stcap) {
        size_t ncap = cx->stcap ? cx->stcap * 2 : 64;
        ag__pth_st *ns = (ag__pth_st *)AG_REALLOC(cx->st, ncap * sizeof *ns);
        if (!ns) { AG_FREE(owned); return ag__fail(cx->err, "out of memory"); }
        cx->st = ns;
        cx->stcap = ncap;
    }
    cx->st[cx->nst].key = key;
    cx->st[cx->nst].data = data;
    cx->st[cx->nst].nbytes = nbytes;
    cx->st[cx->nst].owned = owned;
    cx->st[cx->nst].dtype = dt;
    cx->nst++;
    return 0;
}

static int ag__pth_storage(ag__pth_ctx *cx, const ag__pk *st, const ag__pth_st **out) {
    size_t k;
    for (k = 0; k < cx->nst; k++)
        if (!strcmp(cx->st[k].key, st->s)) {
            if (cx->st[k].dtype != st->dtype) return ag__fail(cx->err, "storage '%s' is used with two dtypes", st->s);
            *out = &cx->st[k];
            return 0;
        }
    if (cx->zip) {   /* zip form: load <prefix>data/<key> on first use */
        size_t pl = strlen(cx->zprefix), kl = strlen(st->s);
        char *mn = (char *)AG_MALLOC(pl + kl + 6);
        int idx;
        const unsigned char *data = NULL;
        unsigned char *owned = NULL;
        size_t nbytes = 0;
        if (!mn) return ag__fail(cx->err, "out of memory");
        memcpy(mn, cx->zprefix, pl);
        memcpy(mn + pl, "data/", 5);
        memcpy(mn + pl + 5, st->s, kl + 1);
        idx = ag_zip_find(cx->zip, mn);
        if (idx < 0) { ag__fail(cx->err, "storage member '%s' missing from the zip", mn); AG_FREE(mn); return -1; }
        AG_FREE(mn);
        if (cx->zip->entries[idx].method == 0) {
            if (ag_zip_view(cx->zip, idx, &data, &nbytes, cx->err)) return -1;
        } else {
            if (ag_zip_extract(cx->zip, idx, 0, &owned, &nbytes, cx->err)) return -1;
            data = owned;
        }
        if (ag__pth_st_add(cx, st->s, st->dtype, data, nbytes, owned)) return -1;
        *out = &cx->st[cx->nst - 1];
        return 0;
    }
    return ag__fail(cx->err, "storage '%s' is not in the file", st->s);
}

static int ag__pth_tensor(ag__pth_ctx *cx, const ag__pk *t) {
    const ag__pk *st = t->ref;
    const ag__pth_st *sb = NULL;
    size_t esz = ag_dtype_size(t->dtype), nbytes;
    uint64_t extent, numel, avail, off;
    ag_array *a;
    if (ag__pth_storage(cx, st, &sb)) return -1;
    avail = sb->nbytes / esz;
    if ((uint64_t)st->i < avail) avail = (uint64_t)st->i;
    if (ag__view_extent(t->ndim, t->dims, t->dims + t->ndim, &extent) || ag__rd_numel(t->ndim, t->dims, &numel))
        return ag__fail(cx->err, "tensor '%s': bad size or stride", cx->name);
    off = (uint64_t)t->i;
    if (st->vsize >= 0) {   /* legacy storage view */
        if (off + extent > (uint64_t)st->vsize) return ag__fail(cx->err, "tensor '%s' reaches past its storage view", cx->name);
        off += (uint64_t)st->voff;
    }
    if (numel && (off > avail || extent > avail - off))
        return ag__fail(cx->err, "tensor '%s' reaches past its storage (%lu elements)", cx->name, (unsigned long)avail);
    if (ag__rd_bytes(numel, esz, &nbytes) || nbytes > cx->max_out_bytes - cx->out_bytes)
        return ag__fail(cx->err, "tensor '%s': tensors expand to more than %.0f bytes", cx->name, (double)cx->max_out_bytes);
    cx->out_bytes += nbytes;
    if (ag_array_list_add(cx->out, cx->name, t->dtype, t->ndim, t->dims, NULL, cx->err)) return -1;
    a = &cx->out->items[cx->out->count - 1];
    if (numel) ag__gather((unsigned char *)a->data, sb->data + (size_t)off * esz, esz, t->ndim, t->dims, t->dims + t->ndim);
    if (cx->swap) ag__swap_elems(a->data, (size_t)numel, esz);
    return 0;
}

static int ag__pth_name_room(ag__pth_ctx *cx, size_t need) {
    char *nn;
    size_t ncap;
    if (need <= cx->name_cap) return 0;
    ncap = need * 2;
    nn = (char *)AG_REALLOC(cx->name, ncap);
    if (!nn) return ag__fail(cx->err, "out of memory");
    cx->name = nn;
    cx->name_cap = ncap;
    return 0;
}

static int ag__pth_scalar(ag__pth_ctx *cx, ag_dtype dt, const void *v) {
    return ag_array_list_add(cx->out, cx->name, dt, 0, NULL, v, cx->err);
}

static int ag__pth_walk(ag__pth_ctx *cx, const ag__pk *v, int depth) {
    int k;
    if (++cx->visits > cx->max_visits) return ag__fail(cx->err, "object graph too large (shared containers?)");
    if (depth > 64) return ag__fail(cx->err, "objects nested too deeply");
    switch (v->kind) {
    case AG__PK_DICT: case AG__PK_LIST: case AG__PK_TUPLE:
        for (k = 0; k < v->n; k++) {
            char num[32];
            const char *seg;
            size_t old = cx->name_len, sl;
            const ag__pk *key = v->kind == AG__PK_DICT ? v->items[k] : NULL;
            if (!key) { snprintf(num, sizeof num, "%d", k); seg = num; }
            else if (key->kind == AG__PK_STR) seg = key->s;
            else if (key->kind == AG__PK_INT) { snprintf(num, sizeof num, "%lld", (long long)key->i); seg = num; }
            else continue;   /* keys that are not names */
            sl = strlen(seg);
            if (ag__pth_name_room(cx, old + sl + 2)) return -1;
            if (old) cx->name[cx->name_len++] = '.';
            memcpy(cx->name + cx->name_len, seg, sl + 1);
            cx->name_len += sl;
            if (ag__pth_walk(cx, v->kind == AG__PK_DICT ? v->vals[k] : v->items[k], depth + 1)) return -1;
            cx->name_len = old;
            cx->name[old] = '\0';
        }
        return 0;
    case AG__PK_TENSOR: return ag__pth_tensor(cx, v);
    case AG__PK_INT: return ag__pth_scalar(cx, AG_DTYPE_I64, &v->i);
    case AG__PK_FLOAT: return ag__pth_scalar(cx, AG_DTYPE_F64, &v->f);
    case AG__PK_BOOL: { unsigned char b = (unsigned char)(v->i != 0); return ag__pth_scalar(cx, AG_DTYPE_BOOL, &b); }
    default: return 0;   /* None, strings and other objects are skipped */
    }
}

static int ag__cmp_str_ptr(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int ag__pth_finish(ag__pth_ctx *cx, ag__pvm *vm, const ag__pk *root, size_t in_len) {
    const char **names;
    int k;
    cx->max_out_bytes = (uint64_t)in_len * 4 > ((uint64_t)64 << 20) ? (uint64_t)in_len * 4 : ((uint64_t)64 << 20);
    cx->max_visits = vm->nnodes * 16 + 1024;
    if (ag__pth_name_room(cx, 64)) return -1;
    cx->name[0] = '\0';
    cx->name_len = 0;
    if (ag__pth_walk(cx, root, 0)) return -1;
    if (cx->out->count < 2) return 0;
    names = (const char **)AG_MALLOC((size_t)cx->out->count * sizeof *names);
    if (!names) return ag__fail(cx->err, "out of memory");
    for (k = 0; k < cx->out->count; k++) names[k] = cx->out->items[k].name;
    qsort(names, (size_t)cx->out->count, sizeof *names, ag__cmp_str_ptr);
    for (k = 1; k < cx->out->count; k++)
        if (!strcmp(names[k - 1], names[k])) {
            ag__fail(cx->err, "two entries are named '%s'", names[k]);
            AG_FREE(names);
            return -1;
        }
    AG_FREE(names);
    return 0;
}

static void ag__pth_ctx_free(ag__pth_ctx *cx) {
    size_t k;
    for (k = 0; k < cx->nst; k++) AG_FREE(cx->st[k].owned);
    AG_FREE(cx->st);
    AG_FREE(cx->name);
}

static int ag__pth_zip(const unsigned char *buf, size_t len, ag_array_list *out, ag_error *err) {
    ag_zip z;
    ag__pvm vm;
    ag__pth_ctx cx;
    ag__pk *root;
    unsigned char *pkl = NULL, *bo = NULL;
    size_t pkl_len = 0, bo_len = 0, used;
    char *prefix = NULL;
    int k, idx = -1, r = -1;
    memset(&vm, 0, sizeof vm);
    memset(&cx, 0, sizeof cx);
    vm.err = err;
    cx.err = err;
    cx.out = out;
    if (ag_zip_open_from_memory(&z, buf, len, err)) return -1;
    for (k = 0; k < z.count && idx < 0; k++) {   /* "<folder>/data.pkl", the folder name varies */
        const char *nm = z.entries[k].name;
        size_t nl = strlen(nm);
        if (nl >= 8 && !strcmp(nm + nl - 8, "data.pkl") && (nl == 8 || (nm[nl - 9] == '/' && !memchr(nm, '/', nl - 9))))
            idx = k;
    }
    if (idx < 0) { ag__fail(err, "no data.pkl in the zip (not a PyTorch checkpoint?)"); goto done; }
    {
        size_t pl = strlen(z.entries[idx].name) - 8;
        prefix = (char *)AG_MALLOC(pl + 16);
        if (!prefix) { ag__fail(err, "out of memory"); goto done; }
        memcpy(prefix, z.entries[idx].name, pl);
        memcpy(prefix + pl, "byteorder", 10);
        k = ag_zip_find(&z, prefix);
        prefix[pl] = '\0';
    }
    cx.swap = !ag__host_is_le();
    if (k >= 0) {
        if (ag_zip_extract(&z, k, 16, &bo, &bo_len, err)) goto done;
        if (bo_len == 3 && !memcmp(bo, "big", 3)) cx.swap = ag__host_is_le();
        else if (!(bo_len == 6 && !memcmp(bo, "little", 6))) { ag__fail(err, "unknown byteorder '%.*s'", (int)bo_len, (const char *)bo); goto done; }
    }
    if (ag_zip_extract(&z, idx, (size_t)1 << 30, &pkl, &pkl_len, err)) goto done;
    if (ag__pvm_run(&vm, pkl, pkl_len, &used, &root)) { ag__fail_prefix(err, "%s", z.entries[idx].name); goto done; }
    cx.zip = &z;
    cx.zprefix = prefix;
    r = ag__pth_finish(&cx, &vm, root, len);
done:
    ag__pth_ctx_free(&cx);
    ag__pvm_free(&vm);
    AG_FREE(pkl);
    AG_FREE(bo);
    AG_FREE(prefix);
    ag_zip_close(&z);
    return r;
}

/* The legacy file starts with a pickle of the magic number 0x1950a86a20f9469cfc6c: LONG1
   bytes in protocol >= 2, decimal text in protocol 1. */
static int ag__pth_has_magic(const unsigned char *p, size_t n) {
    static const unsigned char bin[12] = { 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19 };
    static const char txt[] = "L119547037146038801333356";
    size_t k;
    for (k = 0; k + sizeof bin <= n; k++)
        if (!memcmp(p + k, bin, sizeof bin)) return 1;
    for (k = 0; k + sizeof txt - 1 <= n; k++)
        if (!memcmp(p + k, txt, sizeof txt - 1)) return 1;
    return 0;
}

static int ag__pth_legacy(const unsigned char *buf, size_t len, ag_array_list *out, ag_error *err) {
    ag__pvm vm;
    ag__pth_ctx cx;
    ag__pk *obj = NULL, *keys = NULL, *v = NULL;
    size_t pos = 0, used, k, j;
    int r = -1, i, file_be = 0;
    memset(&vm, 0, sizeof vm);
    memset(&cx, 0, sizeof cx);
    vm.err = err;
    cx.err = err;
    cx.out = out;
    cx.swap = !ag__host_is_le();
    /* magic number, then protocol version */
    if (ag__pvm_run(&vm, buf, len, &used, &v) || !ag__pth_has_magic(buf, used)) {
        ag__fail(err, "not a PyTorch file (no zip signature and no legacy magic number)");
        goto done;
    }
    pos = used;
    if (ag__pvm_run(&vm, buf + pos, len - pos, &used, &v)) { ag__fail_prefix(err, "legacy header"); goto done; }
    if (v->kind != AG__PK_INT || v->i != 1001) { ag__fail(err, "unsupported legacy protocol version"); goto done; }
    pos += used;
    /* sys info: byte order */
    if (ag__pvm_run(&vm, buf + pos, len - pos, &used, &v)) { ag__fail_prefix(err, "legacy sys info"); goto done; }
    pos += used;
    if (v->kind == AG__PK_DICT)
        for (i = 0; i < v->n; i++)
            if (v->items[i]->kind == AG__PK_STR && !strcmp(v->items[i]->s, "little_endian") && v->vals[i]->kind == AG__PK_BOOL)
                file_be = !v->vals[i]->i;
    cx.swap = file_be ? ag__host_is_le() : !ag__host_is_le();
    if (ag__pvm_run(&vm, buf + pos, len - pos, &used, &obj)) goto done;
    pos += used;
    if (ag__pvm_run(&vm, buf + pos, len - pos, &used, &keys)) { ag__fail_prefix(err, "storage key list"); goto done; }
    pos += used;
    if (keys->kind != AG__PK_LIST && keys->kind != AG__PK_TUPLE) { ag__fail(err, "storage key list is not a list"); goto done; }
    for (i = 0; i < keys->n; i++) {   /* per key: int64 element count, then the raw bytes */
        const ag__pk *key = keys->items[i], *st = NULL;
        uint64_t numel;
        size_t esz, nbytes;
        if (key->kind != AG__PK_STR) { ag__fail(err, "storage key is not a string"); goto done; }
        for (k = 0; k < vm.nstorages; k++) {
            const ag__pk *s = vm.storages[k];
            if (!strcmp(s->s, key->s)) {
                if (st && st->dtype != s->dtype) { ag__fail(err, "storage '%s' is used with two dtypes", key->s); goto done; }
                st = s;
            }
        }
        if (!st) { ag__fail(err, "storage '%s' is not used by any tensor (element size unknown)", key->s); goto done; }
        for (j = 0; j < cx.nst; j++)
            if (!strcmp(cx.st[j].key, key->s)) { ag__fail(err, "storage '%s' listed twice", key->s); goto done; }
        if (len - pos < 8) { ag__fail(err, "truncated before storage '%s'", key->s); goto done; }
        numel = file_be ? (uint64_t)ag__rd32be(buf + pos) << 32 | ag__rd32be(buf + pos + 4) : ag__rd64(buf + pos);
        pos += 8;
        esz = ag_dtype_size(st->dtype);
        if (numel > (uint64_t)INT64_MAX || ag__rd_bytes(numel, esz, &nbytes) || nbytes > len - pos) {
            ag__fail(err, "storage '%s' truncated (%.0f elements declared)", key->s, (double)numel);
            goto done;
        }
        if (ag__pth_st_add(&cx, key->s, st->dtype, buf + pos, nbytes, NULL)) goto done;
        pos += nbytes;
    }
    r = ag__pth_finish(&cx, &vm, obj, len);
done:
    ag__pth_ctx_free(&cx);
    ag__pvm_free(&vm);
    return r;
}

/* A CIFAR-10 python batch: a pickled dict (Python 2's cPickle, or any later protocol) with
   'data' a uint8 numpy array [N][3072] (R, G, B planes of 32x32) and 'labels' a list of N
   ints. Returns new buffers: data [N][3072] and labels [N]. */
static int ag__cifar_pickle(const unsigned char *buf, size_t len, unsigned char **data, int **labels, int *count, ag_error *err) {
    ag__pvm vm;
    ag__pk *root = NULL;
    const ag__pk *arr = NULL, *lab = NULL;
    size_t used;
    int k, n, r = -1;
    *data = NULL; *labels = NULL; *count = 0;
    memset(&vm, 0, sizeof vm);
    vm.err = err;
    if (len < 2 || buf[0] != 0x80) { ag__fail(err, "not a pickle (no protocol opcode)"); goto done; }
    if (ag__pvm_run(&vm, buf, len, &used, &root)) goto done;
    if (root->kind != AG__PK_DICT) { ag__fail(err, "the pickle holds no dict"); goto done; }
    for (k = 0; k < root->n; k++) {
        const ag__pk *key = root->items[k];
        if (key->kind != AG__PK_STR) continue;
        if (!strcmp(key->s, "data")) arr = root->vals[k];
        else if (!strcmp(key->s, "labels")) lab = root->vals[k];
    }
    if (!arr || !lab) { ag__fail(err, "no '%s' entry in the dict", arr ? "labels" : "data"); goto done; }
    if (arr->kind != AG__PK_NDARRAY || !arr->ref) { ag__fail(err, "'data' is not a numpy array"); goto done; }
    if (arr->dtype != AG_DTYPE_U8 || arr->ndim != 2 || arr->dims[1] != 3072 || arr->i) {
        ag__fail(err, "'data' is not a C-order uint8 array [N][3072]");
        goto done;
    }
    if (lab->kind != AG__PK_LIST && lab->kind != AG__PK_TUPLE) { ag__fail(err, "'labels' is not a list"); goto done; }
    if (arr->dims[0] != lab->n || arr->dims[0] > (1 << 24)) {
        ag__fail(err, "'data' holds %lld images but 'labels' %d", (long long)arr->dims[0], lab->n);
        goto done;
    }
    n = lab->n;
    *data = (unsigned char *)AG_MALLOC((size_t)n * 3072 + 1);
    *labels = (int *)AG_MALLOC((size_t)n * sizeof(int) + 1);
    if (!*data || !*labels) { ag__fail(err, "out of memory"); goto done; }
    memcpy(*data, arr->ref->s, (size_t)n * 3072);
    for (k = 0; k < n; k++) {
        if (lab->items[k]->kind != AG__PK_INT || lab->items[k]->i < 0 || lab->items[k]->i > 9) {
            ag__fail(err, "label %d is not an integer 0..9", k);
            goto done;
        }
        (*labels)[k] = (int)lab->items[k]->i;
    }
    *count = n;
    r = 0;
done:
    if (r) { AG_FREE(*data); AG_FREE(*labels); *data = NULL; *labels = NULL; }
    ag__pvm_free(&vm);
    return r;
}

AGDEF int ag_pth_read_from_memory(const unsigned char *buf, size_t len, ag_array_list *out, ag_error *err) {
    ag_array_list list;
    int r;
    if (!out) return ag__fail(err, "pth: NULL output");
    memset(out, 0, sizeof *out);
    memset(&list, 0, sizeof list);
    if (!buf) len = 0;
    if (len >= 4 && !memcmp(buf, "PK\3\4", 4)) r = ag__pth_zip(buf, len, &list, err);
    else if (len >= 262 && !memcmp(buf + 257, "ustar", 5))
        r = ag__fail(err, "tar-format checkpoints (PyTorch < 0.4) are not supported");
    else if (len >= 1 && (buf[0] == 0x80 || buf[0] == 'L'))   /* a pickle: legacy form */
        r = ag__pth_legacy(buf, len, &list, err);
    else r = ag__fail(err, "not a PyTorch file (no zip signature and no legacy magic number)");
    if (r) {
        ag_array_list_free(&list);
        return ag__fail_prefix(err, "pth");
    }
    *out = list;
    return 0;
}

AGDEF int ag_pth_read(const char *path, ag_array_list *out, ag_error *err) {
    unsigned char *buf; size_t len;
    if (out) memset(out, 0, sizeof *out);
    if (ag_read_file(path, &buf, &len, err)) return -1;
    return ag__read_finish(path, buf, ag_pth_read_from_memory(buf, len, out, err), err);
}

/* ===================================================================================
   15. Images: PNG and line plots
   =================================================================================== */

/* ---- PNG decode / encode ---- */

static unsigned char ag__paeth(int a, int b, int c) {
    int p = a + b - c, pa = p > a ? p - a : a - p, pb = p > b ? p - b : b - p, pc = p > c ? p - c : c - p;
    if (pa <= pb && pa <= pc) return (unsigned char)a;
    return (unsigned char)(pb <= pc ? b : c);
}

/* Undo the filters of h rows of rowbytes (+1 filter byte each), in place. */
static int ag__png_unfilter(unsigned char *raw, size_t rowbytes, size_t h, size_t bpp, ag_error *err) {
    size_t y, i;
    unsigned char *prior = NULL;
    for (y = 0; y < h; y++) {
        unsigned char *row = raw + y * (rowbytes + 1), f = row[0], *x = row + 1;
        switch (f) {
        case 0: break;
        case 1: for (i = bpp; i < rowbytes; i++) x[i] = (unsigned char)(x[i] + x[i - bpp]); break;
        case 2: if (prior) for (i = 0; i < rowbytes; i++) x[i] = (unsigned char)(x[i] + prior[i]); break;
        case 3:
            for (i = 0; i < rowbytes; i++) {
                int a = i >= bpp ? x[i - bpp] : 0, b = prior ? prior[i] : 0;
                x[i] = (unsigned char)(x[i] + ((a + b) >> 1));
            }
            break;
        case 4:
            for (i = 0; i < rowbytes; i++) {
                int a = i >= bpp ? x[i - bpp] : 0, b = prior ? prior[i] : 0, c = (i >= bpp && prior) ? prior[i - bpp] : 0;
                x[i] = (unsigned char)(x[i] + ag__paeth(a, b, c));
            }
            break;
        default: return ag__fail(err, "png: bad filter type %d in row %lu", f, (unsigned long)y);
        }
        prior = x;
    }
    return 0;
}

typedef struct ag__png {
    uint32_t w, h;
    int depth, ctype, interlace, fch;      /* fch: samples per pixel in the file */
    unsigned char pal[256][4];
    int npal, has_trns;
    uint32_t trns[3];                      /* colour key (gray or RGB), in file sample units */
    int nch;                               /* natural output channels */
} ag__png;

static uint32_t ag__png_sample(const unsigned char *row, size_t idx, int depth) {
    if (depth == 8) return row[idx];
    if (depth == 16) return (uint32_t)row[2 * idx] << 8 | row[2 * idx + 1];
    {
        size_t bit = idx * (size_t)depth;
        return (uint32_t)(row[bit / 8] >> (8 - depth - (int)(bit % 8))) & ((1u << depth) - 1u);
    }
}

static unsigned char ag__png_to8(uint32_t v, int depth) {
    switch (depth) {
    case 1: return (unsigned char)(v * 255u);
    case 2: return (unsigned char)(v * 85u);
    case 4: return (unsigned char)(v * 17u);
    case 16: return (unsigned char)(v >> 8);
    default: return (unsigned char)v;
    }
}

/* Convert one unfiltered row (pass pixels) into the image: pixel k goes to column x0 + k*dx. */
static int ag__png_row(const ag__png *p, const unsigned char *row, size_t pw, unsigned char *dst, size_t dx, ag_error *err) {
    size_t k;
    int c, nch = p->nch;
    for (k = 0; k < pw; k++, dst += dx * (size_t)nch) {
        uint32_t s[4];
        for (c = 0; c < p->fch; c++) s[c] = ag__png_sample(row, k * (size_t)p->fch + (size_t)c, p->depth);
        switch (p->ctype) {
        case 0:
            dst[0] = ag__png_to8(s[0], p->depth);
            if (p->has_trns) dst[1] = s[0] == p->trns[0] ? 0 : 255;
            break;
        case 2:
            for (c = 0; c < 3; c++) dst[c] = ag__png_to8(s[c], p->depth);
            if (p->has_trns) dst[3] = (s[0] == p->trns[0] && s[1] == p->trns[1] && s[2] == p->trns[2]) ? 0 : 255;
            break;
        case 3:
            if ((int)s[0] >= p->npal) return ag__fail(err, "png: palette index %u out of range (%d entries)", (unsigned)s[0], p->npal);
            for (c = 0; c < nch; c++) dst[c] = p->pal[s[0]][c];
            break;
        case 4:
            dst[0] = ag__png_to8(s[0], p->depth);
            dst[1] = ag__png_to8(s[1], p->depth);
            break;
        default:
            for (c = 0; c < 4; c++) dst[c] = ag__png_to8(s[c], p->depth);
            break;
        }
    }
    return 0;
}

static int ag__png_convert(const unsigned char *src, int sc, unsigned char *dst, int dc, size_t npix) {
    size_t i;
    for (i = 0; i < npix; i++, src += sc, dst += dc) {
        unsigned r, g, b, a, y;
        if (sc <= 2) { r = g = b = src[0]; a = sc == 2 ? src[1] : 255; }
        else { r = src[0]; g = src[1]; b = src[2]; a = sc == 4 ? src[3] : 255; }
        y = sc <= 2 ? r : (77u * r + 150u * g + 29u * b) >> 8;
        switch (dc) {
        case 1: dst[0] = (unsigned char)y; break;
        case 2: dst[0] = (unsigned char)y; dst[1] = (unsigned char)a; break;
        case 3: dst[0] = (unsigned char)r; dst[1] = (unsigned char)g; dst[2] = (unsigned char)b; break;
        default: dst[0] = (unsigned char)r; dst[1] = (unsigned char)g; dst[2] = (unsigned char)b; dst[3] = (unsigned char)a; break;
        }
    }
    return 0;
}

AGDEF int ag_png_read_from_memory(const unsigned char *buf, size_t len, int channels, ag_array *out, ag_error *err) {
    static const unsigned char sig[8] = { 137, 80, 78, 71, 13, 10, 26, 10 };
    static const unsigned a7[7][4] = { { 0, 0, 8, 8 }, { 4, 0, 8, 8 }, { 0, 4, 4, 8 }, { 2, 0, 4, 4 },
                                  { 0, 2, 2, 4 }, { 1, 0, 2, 2 }, { 0, 1, 1, 2 } };   /* x0 y0 dx dy */
    ag__png p;
    size_t pos = 8, idat_len = 0, idat_cap = 0, raw_len = 0, npix, bpp, rowb, y;
    unsigned char *idat = NULL, *raw = NULL, *img = NULL, *fin;
    uint64_t raw_need = 0;
    int seen_ihdr = 0, seen_iend = 0, seen_idat = 0, pass, npass, r;
    if (!out) return ag__fail(err, "png: NULL output");
    memset(out, 0, sizeof *out);
    if (channels < 0 || channels > 4) return ag__fail(err, "png: channels must be 0..4, got %d", channels);
    if (!buf) len = 0;
    if (len < 8 || memcmp(buf, sig, 8) != 0) return ag__fail(err, "png: bad signature (not a PNG file)");
    memset(&p, 0, sizeof p);
    while (!seen_iend) {
        uint32_t clen;
        const unsigned char *type, *data;
        int k;
        if (len - pos < 12) { ag__fail(err, "png: truncated (no IEND chunk)"); goto fail; }
        clen = ag__rd32be(buf + pos);
        type = buf + pos + 4;
        data = buf + pos + 8;
        if (clen > 0x7fffffffu || clen > len - pos - 12) { ag__fail(err, "png: truncated chunk"); goto fail; }
        for (k = 0; k < 4; k++)
            if (!((type[k] >= 'A' && type[k] <= 'Z') || (type[k] >= 'a' && type[k] <= 'z'))) {
                ag__fail(err, "png: bad chunk type");
                goto fail;
            }
        if (ag_crc32(0, type, (size_t)clen + 4) != ag__rd32be(data + clen)) {
            ag__fail(err, "png: CRC mismatch in %.4s chunk (corrupt file)", (const char *)type);
            goto fail;
        }
        pos += 12 + (size_t)clen;
        if (!seen_ihdr && memcmp(type, "IHDR", 4) != 0) { ag__fail(err, "png: first chunk is not IHDR"); goto fail; }
        if (!memcmp(type, "IHDR", 4)) {
            int okd;
            if (seen_ihdr || clen != 13) { ag__fail(err, "png: bad IHDR"); goto fail; }
            p.w = ag__rd32be(data);
            p.h = ag__rd32be(data + 4);
            p.depth = data[8];
            p.ctype = data[9];
            p.interlace = data[12];
            if (p.w == 0 || p.h == 0 || p.w > 0x7fffffffu || p.h > 0x7fffffffu) {
                ag__fail(err, "png: bad image size %lux%lu", (unsigned long)p.w, (unsigned long)p.h);
                goto fail;
            }
            if (data[10] != 0 || data[11] != 0 || p.interlace > 1) {
                ag__fail(err, "png: unknown compression, filter or interlace method");
                goto fail;
            }
            switch (p.ctype) {
            case 0: p.fch = 1; okd = p.depth == 1 || p.depth == 2 || p.depth == 4 || p.depth == 8 || p.depth == 16; break;
            case 2: p.fch = 3; okd = p.depth == 8 || p.depth == 16; break;
            case 3: p.fch = 1; okd = p.depth == 1 || p.depth == 2 || p.depth == 4 || p.depth == 8; break;
            case 4: p.fch = 2; okd = p.depth == 8 || p.depth == 16; break;
            case 6: p.fch = 4; okd = p.depth == 8 || p.depth == 16; break;
            default: { ag__fail(err, "png: bad colour type %d", p.ctype); goto fail; }
            }
            if (!okd) { ag__fail(err, "png: bit depth %d not allowed for colour type %d", p.depth, p.ctype); goto fail; }
            if ((uint64_t)p.w * p.h > AG_PNG_MAX_PIXELS) {
                ag__fail(err, "png: image too large (%lux%lu)", (unsigned long)p.w, (unsigned long)p.h);
                goto fail;
            }
            seen_ihdr = 1;
        } else if (!memcmp(type, "PLTE", 4)) {
            uint32_t i;
            if (seen_idat || p.npal) { ag__fail(err, "png: misplaced PLTE chunk"); goto fail; }
            if (clen % 3 || clen == 0 || clen > 768) { ag__fail(err, "png: bad PLTE length %lu", (unsigned long)clen); goto fail; }
            if (p.ctype == 0 || p.ctype == 4) { ag__fail(err, "png: PLTE in a grayscale image"); goto fail; }
            p.npal = (int)(clen / 3);
            for (i = 0; i < clen / 3; i++) {
                p.pal[i][0] = data[3 * i];
                p.pal[i][1] = data[3 * i + 1];
                p.pal[i][2] = data[3 * i + 2];
                p.pal[i][3] = 255;
            }
        } else if (!memcmp(type, "tRNS", 4)) {
            uint32_t i;
            if (seen_idat || p.has_trns) { ag__fail(err, "png: misplaced tRNS chunk"); goto fail; }
            if (p.ctype == 3) {
                if (!p.npal || clen > (uint32_t)p.npal) { ag__fail(err, "png: bad tRNS for a palette image"); goto fail; }
                for (i = 0; i < clen; i++) p.pal[i][3] = data[i];
            } else if (p.ctype == 0 && clen == 2) {
                p.trns[0] = (uint32_t)data[0] << 8 | data[1];
            } else if (p.ctype == 2 && clen == 6) {
                for (i = 0; i < 3; i++) p.trns[i] = (uint32_t)data[2 * i] << 8 | data[2 * i + 1];
            } else { ag__fail(err, "png: bad tRNS chunk for colour type %d", p.ctype); goto fail; }
            p.has_trns = 1;
        } else if (!memcmp(type, "IDAT", 4)) {
            if (seen_idat == 2) { ag__fail(err, "png: IDAT chunks are not consecutive"); goto fail; }
            seen_idat = 1;
            if (ag__append(&idat, &idat_len, &idat_cap, data, clen, err)) goto fail;
            continue;
        } else if (!memcmp(type, "IEND", 4)) {
            seen_iend = 1;
        } else if (!(type[0] & 0x20)) {
            ag__fail(err, "png: unknown critical chunk %.4s", (const char *)type);
            goto fail;
        }
        if (seen_idat) seen_idat = 2;
    }
    if (!seen_idat) { AG_FREE(idat); return ag__fail(err, "png: no image data (IDAT)"); }
    if (p.ctype == 3 && !p.npal) { AG_FREE(idat); return ag__fail(err, "png: palette image without PLTE"); }
    p.nch = p.fch;
    if (p.ctype == 3) p.nch = p.has_trns ? 4 : 3;
    else if (p.has_trns) p.nch = p.fch + 1;
    /* the exact size of the filtered data, pass by pass */
    npass = p.interlace ? 7 : 1;
    for (pass = 0; pass < npass; pass++) {
        uint64_t pw = p.interlace ? (p.w > a7[pass][0] ? (p.w - a7[pass][0] + a7[pass][2] - 1) / a7[pass][2] : 0) : p.w;
        uint64_t ph = p.interlace ? (p.h > a7[pass][1] ? (p.h - a7[pass][1] + a7[pass][3] - 1) / a7[pass][3] : 0) : p.h;
        if (pw && ph) raw_need += ph * ((pw * (uint64_t)p.fch * (uint64_t)p.depth + 7) / 8 + 1);
    }
    if (raw_need > SIZE_MAX || raw_need / 1032 > (uint64_t)idat_len + 64) {
        AG_FREE(idat);
        return ag__fail(err, "png: image data too short for a %lux%lu image", (unsigned long)p.w, (unsigned long)p.h);
    }
    r = ag__inflate(idat, idat_len, 1, (size_t)raw_need, (size_t)raw_need, &raw, &raw_len, NULL, err);
    AG_FREE(idat);
    if (r) return ag__fail_prefix(err, "png: image data");
    if (raw_len != raw_need) {
        AG_FREE(raw);
        return ag__fail(err, "png: image data truncated (%lu of %lu bytes)", (unsigned long)raw_len, (unsigned long)raw_need);
    }
    npix = (size_t)p.w * p.h;
    img = (unsigned char *)AG_MALLOC(npix * (size_t)p.nch);
    if (!img) { AG_FREE(raw); return ag__fail(err, "png: out of memory"); }
    bpp = ((size_t)p.fch * (size_t)p.depth + 7) / 8;
    {
        unsigned char *cur = raw;
        for (pass = 0; pass < npass; pass++) {
            size_t x0 = p.interlace ? (size_t)a7[pass][0] : 0, y0 = p.interlace ? (size_t)a7[pass][1] : 0;
            size_t dx = p.interlace ? (size_t)a7[pass][2] : 1, dy = p.interlace ? (size_t)a7[pass][3] : 1;
            size_t pw = p.w > x0 ? (p.w - x0 + dx - 1) / dx : 0, ph = p.h > y0 ? (p.h - y0 + dy - 1) / dy : 0;
            if (!pw || !ph) continue;
            rowb = (pw * (size_t)p.fch * (size_t)p.depth + 7) / 8;
            if (ag__png_unfilter(cur, rowb, ph, bpp, err)) { AG_FREE(raw); AG_FREE(img); return -1; }
            for (y = 0; y < ph; y++) {
                unsigned char *dst = img + ((y0 + y * dy) * p.w + x0) * (size_t)p.nch;
                if (ag__png_row(&p, cur + y * (rowb + 1) + 1, pw, dst, dx, err)) { AG_FREE(raw); AG_FREE(img); return -1; }
            }
            cur += ph * (rowb + 1);
        }
    }
    AG_FREE(raw);
    fin = img;
    if (channels && channels != p.nch) {
        fin = (unsigned char *)AG_MALLOC(npix * (size_t)channels);
        if (!fin) { AG_FREE(img); return ag__fail(err, "png: out of memory"); }
        ag__png_convert(img, p.nch, fin, channels, npix);
        AG_FREE(img);
    }
    out->name = NULL;
    out->dtype = AG_DTYPE_U8;
    out->ndim = 3;
    out->shape[0] = p.h;
    out->shape[1] = p.w;
    out->shape[2] = channels ? channels : p.nch;
    out->data = fin;
    out->nbytes = npix * (size_t)out->shape[2];
    return 0;
fail:
    AG_FREE(idat);
    return -1;
}

AGDEF int ag_png_read(const char *path, int channels, ag_array *out, ag_error *err) {
    unsigned char *buf; size_t len;
    if (out) memset(out, 0, sizeof *out);
    if (ag_read_file(path, &buf, &len, err)) return -1;
    return ag__read_finish(path, buf, ag_png_read_from_memory(buf, len, channels, out, err), err);
}

static int ag__png_chunk(unsigned char **buf, size_t *len, size_t *cap, const char *type, const unsigned char *data,
                         size_t n, ag_error *err) {
    unsigned char h[8], c[4];
    uint32_t crc;
    ag__wr32be(h, (uint32_t)n);
    memcpy(h + 4, type, 4);
    crc = ag_crc32(0, type, 4);
    crc = ag_crc32(crc, data, n);
    ag__wr32be(c, crc);
    if (ag__append(buf, len, cap, h, 8, err) || ag__append(buf, len, cap, data, n, err) ||
        ag__append(buf, len, cap, c, 4, err))
        return -1;
    return 0;
}

AGDEF int ag_png_write_to_memory(const unsigned char *pixels, int width, int height, int channels,
                                 unsigned char **out, size_t *out_len, ag_error *err) {
    static const unsigned char sig[8] = { 137, 80, 78, 71, 13, 10, 26, 10 };
    unsigned char ihdr[13], *filt, *z = NULL, *buf = NULL, *row;
    size_t stride, y, i, zlen, len = 0, cap = 0, off, n;
    int f;
    if (out) *out = NULL;
    if (out_len) *out_len = 0;
    if (!out || !out_len || !pixels) return ag__fail(err, "png: NULL argument");
    if (width <= 0 || height <= 0 || channels < 1 || channels > 4)
        return ag__fail(err, "png: bad image %dx%d with %d channels", width, height, channels);
    if ((uint64_t)width * (uint64_t)height > AG_PNG_MAX_PIXELS) return ag__fail(err, "png: image too large");
    stride = (size_t)width * (size_t)channels;
    if (((uint64_t)stride + 1) * ((uint64_t)height + 5) > SIZE_MAX) return ag__fail(err, "png: image too large");
    filt = (unsigned char *)AG_MALLOC((stride + 1) * (size_t)height + 5 * (stride + 1));
    if (!filt) return ag__fail(err, "png: out of memory");
    row = filt + (stride + 1) * (size_t)height;   /* 5 scratch rows, one per filter */
    for (y = 0; y < (size_t)height; y++) {
        const unsigned char *x = pixels + y * stride, *up = y ? x - stride : NULL;
        size_t best = 0;
        uint64_t best_cost = 0;
        for (f = 0; f < 5; f++) {
            unsigned char *o = row + (size_t)f * (stride + 1);
            uint64_t cost = 0;
            o[0] = (unsigned char)f;
            for (i = 0; i < stride; i++) {
                int a = i >= (size_t)channels ? x[i - (size_t)channels] : 0, b = up ? up[i] : 0;
                int c = (up && i >= (size_t)channels) ? up[i - (size_t)channels] : 0, v;
                switch (f) {
                case 0: v = x[i]; break;
                case 1: v = x[i] - a; break;
                case 2: v = x[i] - b; break;
                case 3: v = x[i] - ((a + b) >> 1); break;
                default: v = x[i] - ag__paeth(a, b, c); break;
                }
                o[i + 1] = (unsigned char)v;
                cost += (uint64_t)(o[i + 1] < 128 ? o[i + 1] : 256 - o[i + 1]);
            }
            if (f == 0 || cost < best_cost) { best = (size_t)f; best_cost = cost; }
        }
        memcpy(filt + y * (stride + 1), row + best * (stride + 1), stride + 1);
    }
    if (ag__deflate_zlib(filt, (stride + 1) * (size_t)height, &z, &zlen, err)) { AG_FREE(filt); return -1; }
    AG_FREE(filt);
    ag__wr32be(ihdr, (uint32_t)width);
    ag__wr32be(ihdr + 4, (uint32_t)height);
    ihdr[8] = 8;
    ihdr[9] = (unsigned char)(channels == 1 ? 0 : channels == 2 ? 4 : channels == 3 ? 2 : 6);
    ihdr[10] = ihdr[11] = ihdr[12] = 0;
    if (ag__append(&buf, &len, &cap, sig, 8, err) || ag__png_chunk(&buf, &len, &cap, "IHDR", ihdr, 13, err)) goto fail;
    for (off = 0; off < zlen; off += n) {
        n = zlen - off < ((size_t)1 << 20) ? zlen - off : ((size_t)1 << 20);
        if (ag__png_chunk(&buf, &len, &cap, "IDAT", z + off, n, err)) goto fail;
    }
    if (ag__png_chunk(&buf, &len, &cap, "IEND", NULL, 0, err)) goto fail;
    AG_FREE(z);
    *out = buf;
    *out_len = len;
    return 0;
fail:
    AG_FREE(z);
    AG_FREE(buf);
    return -1;
}

AGDEF int ag_png_write(const char *path, const unsigned char *pixels, int width, int height, int channels, ag_error *err) {
    unsigned char *buf = NULL; size_t len = 0;
    int rc = ag_png_write_to_memory(pixels, width, height, channels, &buf, &len, err);
    return ag__write_finish(path, buf, len, rc, err);
}

/* ---- generated images to pixels, and grids of them ---- */
static unsigned char ag__u8_truncate(float x) {   /* x.mul_(127.5).add_(127.5).clamp_(0, 255).to(uint8) */
    volatile float t = x * 127.5f;                 /* rounded to float32 here: no fused multiply-add */
    float v = t + 127.5f;
    if (!(v > 0.0f)) return 0;                     /* also NaN */
    if (v > 255.0f) v = 255.0f;
    return (unsigned char)v;
}
static unsigned char ag__u8_round(float x) {      /* floor((x + 1) * 127.5 + 0.5), clamped */
    volatile float a = x + 1.0f;
    volatile float b = a * 127.5f;
    float v = b + 0.5f;
    if (!(v > 0.0f)) return 0;
    if (v >= 255.0f) return 255;
    return (unsigned char)v;                       /* positive: truncation is floor */
}
AGDEF int ag_images_to_u8(const float *nchw, int n, int c, int h, int w, int out_c, int mode, unsigned char *nhwc) {
    int k, ch, y, x;
    if (!nchw || !nhwc || n < 1 || h < 1 || w < 1 || c < 1 || c > 4 || out_c < 1 || out_c > 4 ||
        (mode != AG_U8_TRUNCATE && mode != AG_U8_ROUND)) return -1;
    for (k = 0; k < n; k++) for (ch = 0; ch < out_c; ch++) {
        const float *src = nchw + ((size_t)k * c + (ch < c ? ch : c - 1)) * h * w;
        unsigned char *dst = nhwc + (size_t)k * h * w * out_c + ch;
        for (y = 0; y < h; y++) for (x = 0; x < w; x++) {
            float v = src[(size_t)y * w + x];
            dst[((size_t)y * w + x) * out_c] = mode == AG_U8_ROUND ? ag__u8_round(v) : ag__u8_truncate(v);
        }
    }
    return 0;
}
AGDEF unsigned char *ag_image_grid(const unsigned char *nhwc, int n, int h, int w, int c, int cols, int gap,
                                   int *grid_w, int *grid_h, ag_error *err) {
    int64_t rows, gw, gh; unsigned char *g; int i, y;
    if (grid_w) *grid_w = 0;
    if (grid_h) *grid_h = 0;
    if (!nhwc || n < 1 || h < 1 || w < 1 || c < 1 || c > 4 || cols < 1 || gap < 0)
        { ag__fail(err, "image grid: %d images of %d x %d x %d in %d columns, gap %d (all >= 1, 1 to 4 channels, gap >= 0)", n, h, w, c, cols, gap); return NULL; }
    rows = ((int64_t)n + cols - 1) / cols;
    gw = (int64_t)cols * ((int64_t)w + gap) + gap; gh = rows * ((int64_t)h + gap) + gap;
    if (gw > INT32_MAX || gh > INT32_MAX || (uint64_t)gw * (uint64_t)gh > AG_PNG_MAX_PIXELS)
        { ag__fail(err, "image grid: %lld x %lld pixels is too large", (long long)gw, (long long)gh); return NULL; }
    g = (unsigned char *)AG_MALLOC((size_t)gw * (size_t)gh * (size_t)c);
    if (!g) { ag__fail(err, "image grid: out of memory (%lld x %lld pixels)", (long long)gw, (long long)gh); return NULL; }
    memset(g, 0, (size_t)gw * (size_t)gh * (size_t)c);
    for (i = 0; i < n; i++) {
        size_t ox = (size_t)gap + (size_t)(i % cols) * ((size_t)w + gap), oy = (size_t)gap + (size_t)(i / cols) * ((size_t)h + gap);
        for (y = 0; y < h; y++)
            memcpy(g + ((oy + (size_t)y) * (size_t)gw + ox) * c, nhwc + ((size_t)i * h + y) * (size_t)w * c, (size_t)w * c);
    }
    if (grid_w) *grid_w = (int)gw;
    if (grid_h) *grid_h = (int)gh;
    return g;
}
AGDEF int ag_png_write_grid(const char *path, const unsigned char *nhwc, int n, int h, int w, int c, int cols, int gap, ag_error *err) {
    int gw, gh, rc; unsigned char *g = ag_image_grid(nhwc, n, h, w, c, cols, gap, &gw, &gh, err);
    if (!g) return ag__fail_prefix(err, "%s", path ? path : "");
    rc = ag_png_write(path, g, gw, gh, c, err);
    AG_FREE(g);
    return rc;
}

/* ---- line plots (ag_plot_png) ---- */
typedef struct ag__canvas { int w, h; unsigned char *rgb; } ag__canvas;
static void ag__px(ag__canvas *c, int x, int y, const unsigned char *col) {
    if (x < 0 || y < 0 || x >= c->w || y >= c->h) return;
    memcpy(c->rgb + ((size_t)y * c->w + x) * 3, col, 3);
}
/* 3x5 glyphs, 2x scaled: rows top to bottom, 3 bits each (bit 2 = left column) */
static void ag__text(ag__canvas *c, int x, int y, const char *s, const unsigned char *col) {
    static const char chars[] = "0123456789.-+:()/=,_%ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    static const unsigned char glyphs[][5] = {
        {7,5,5,5,7},{2,6,2,2,7},{7,1,7,4,7},{7,1,7,1,7},{5,5,7,1,1},{7,4,7,1,7},{7,4,7,5,7},{7,1,1,1,1},{7,5,7,5,7},{7,5,7,1,7},
        {0,0,0,0,2},{0,0,7,0,0},{0,2,7,2,0},{0,2,0,2,0},{1,2,2,2,1},{4,2,2,2,4},{1,1,2,4,4},{0,7,0,7,0},{0,0,0,2,4},{0,0,0,0,7},{5,1,2,4,5},
        {2,5,7,5,5},{6,5,6,5,6},{3,4,4,4,3},{6,5,5,5,6},{7,4,6,4,7},{7,4,6,4,4},{3,4,5,5,3},{5,5,7,5,5},{7,2,2,2,7},{1,1,1,5,2},
        {5,5,6,5,5},{4,4,4,4,7},{5,7,7,5,5},{6,5,5,5,5},{2,5,5,5,2},{6,5,6,4,4},{2,5,5,6,3},{6,5,6,5,5},{3,4,2,1,6},{7,2,2,2,2},
        {5,5,5,5,7},{5,5,5,5,2},{5,5,7,7,5},{5,5,2,5,5},{5,5,2,2,2},{7,1,2,4,7} };
    for (; *s; s++, x += 8) {
        char ch = *s >= 'a' && *s <= 'z' ? (char)(*s - 'a' + 'A') : *s; const char *p = strchr(chars, ch); int g, r, b, dx, dy;
        if (!p || !ch) continue;
        g = (int)(p - chars);
        for (r = 0; r < 5; r++) for (b = 0; b < 3; b++) if (glyphs[g][r] & (4 >> b))
            for (dy = 0; dy < 2; dy++) for (dx = 0; dx < 2; dx++) ag__px(c, x + 2 * b + dx, y + 2 * r + dy, col);
    }
}
static void ag__line(ag__canvas *c, int x0, int y0, int x1, int y1, const unsigned char *col) {   /* Bresenham, 2 pixels wide */
    int dx = x1 > x0 ? x1 - x0 : x0 - x1, sx = x0 < x1 ? 1 : -1, dy = -(y1 > y0 ? y1 - y0 : y0 - y1), sy = y0 < y1 ? 1 : -1, e = dx + dy;
    for (;;) {
        int e2 = 2 * e;
        ag__px(c, x0, y0, col); ag__px(c, x0 + 1, y0, col); ag__px(c, x0, y0 + 1, col);
        if (x0 == x1 && y0 == y1) break;
        if (e2 >= dy) { e += dy; x0 += sx; }
        if (e2 <= dx) { e += dx; y0 += sy; }
    }
}
AGDEF int ag_plot_png(const char *path, const char *x_label, const ag_plot_series *series, int count, ag_error *err) {
    static const unsigned char black[3] = { 40, 40, 40 }, grid[3] = { 215, 215, 215 };
    ag__canvas c; int k, i, rc, left = 80, right, panel = 230, height = 180; double xmax = 0; char buf[64];
    if (!path || count < 1 || count > 16 || !series) return ag__fail(err, "plot: 1 to 16 series needed");
    c.w = 720; c.h = count * panel + 40; right = c.w - 20;
    c.rgb = (unsigned char *)AG_MALLOC((size_t)c.w * c.h * 3);
    if (!c.rgb) return ag__fail(err, "%s: out of memory", path);
    memset(c.rgb, 255, (size_t)c.w * c.h * 3);
    for (k = 0; k < count; k++) for (i = 0; i < series[k].n; i++) if (series[k].x[i] > xmax && series[k].x[i] < 1e300) xmax = series[k].x[i];
    if (!(xmax > 0)) xmax = 1;
    for (k = 0; k < count; k++) {
        const ag_plot_series *S = &series[k]; int top = 20 + k * panel, bottom = top + height, prev = -1, px = 0, py = 0, g;
        double lo = 1e300, hi = -1e300;
        for (i = 0; i < S->n; i++) if (S->y[i] == S->y[i] && S->y[i] < 1e300 && S->y[i] > -1e300 && S->x[i] == S->x[i]) {
            if (S->y[i] < lo) lo = S->y[i];
            if (S->y[i] > hi) hi = S->y[i];
        }
        if (lo > hi) { lo = 0; hi = 1; }
        if (hi - lo < 1e-9 * (1 + (hi > 0 ? hi : -hi))) { hi += 0.5; lo -= 0.5; }
        for (g = 0; g <= 4; g++) {
            int y = bottom - (int)((double)g / 4 * height), xx;
            for (xx = left; xx <= right; xx++) ag__px(&c, xx, y, grid);
            snprintf(buf, sizeof buf, "%.4g", lo + (hi - lo) * g / 4);
            ag__text(&c, 4, y - 5, buf, black);
        }
        for (i = 0; S->marks && i < S->n_marks; i++) if (S->marks[i] >= 0 && S->marks[i] <= xmax) {
            static const unsigned char mark[3] = { 150, 150, 230 };
            int xx = left + (int)(S->marks[i] / xmax * (right - left)), y;
            for (y = top; y <= bottom; y++) ag__px(&c, xx, y, mark);
        }
        for (i = top; i <= bottom; i++) { ag__px(&c, left, i, black); ag__px(&c, right, i, black); }
        for (i = left; i <= right; i++) { ag__px(&c, i, top, black); ag__px(&c, i, bottom, black); }
        ag__text(&c, left + 8, top + 8, S->label ? S->label : "", S->rgb);
        ag__text(&c, left, bottom + 8, "0", black);
        snprintf(buf, sizeof buf, "%.0f", xmax);
        ag__text(&c, right - 8 * (int)strlen(buf), bottom + 8, buf, black);
        for (i = 0; i < S->n; i++) {
            int dx, dy;
            if (!(S->y[i] == S->y[i] && S->y[i] < 1e300 && S->y[i] > -1e300 && S->x[i] >= 0 && S->x[i] <= xmax)) continue;
            px = left + (int)(S->x[i] / xmax * (right - left));
            py = bottom - (int)((S->y[i] - lo) / (hi - lo) * height);
            if (prev >= 0) ag__line(&c, left + (int)(S->x[prev] / xmax * (right - left)), bottom - (int)((S->y[prev] - lo) / (hi - lo) * height), px, py, S->rgb);
            for (dy = -2; dy <= 2; dy++) for (dx = -2; dx <= 2; dx++) ag__px(&c, px + dx, py + dy, S->rgb);
            prev = i;
        }
    }
    if (x_label) ag__text(&c, (c.w - 8 * (int)strlen(x_label)) / 2, c.h - 18, x_label, black);
    rc = ag_png_write(path, c.rgb, c.w, c.h, 3, err);
    AG_FREE(c.rgb);
    return rc;
}


#endif /* AUTOGAN_IMPLEMENTATION_DONE */
#endif /* AUTOGAN_IMPLEMENTATION */

/*
------------------------------------------------------------------------------
This software is available under 2 licenses -- choose whichever you prefer.
------------------------------------------------------------------------------
ALTERNATIVE A - MIT License
Copyright (c) 2026 the autogan.h authors
Permission is hereby granted, free of charge, to any person obtaining a copy of
this software and associated documentation files (the "Software"), to deal in
the Software without restriction, including without limitation the rights to
use, copy, modify, merge, publish, distribute, sublicense, and/or sell copies
of the Software, and to permit persons to whom the Software is furnished to do
so, subject to the following conditions:
The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.
THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
------------------------------------------------------------------------------
ALTERNATIVE B - Public Domain (www.unlicense.org)
This is free and unencumbered software released into the public domain.
Anyone is free to copy, modify, publish, use, compile, sell, or distribute this
software, either in source code form or as a compiled binary, for any purpose,
commercial or non-commercial, and by any means.
In jurisdictions that recognize copyright laws, the author or authors of this
software dedicate any and all copyright interest in the software to the public
domain. We make this dedication in perpetuity for the benefit of our heirs and
successors. We intend this dedication to be an overt act of relinquishment in
perpetuity of all present and future rights to this software under copyright
law.
THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER IN AN
ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM, OUT OF OR IN CONNECTION
WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.
------------------------------------------------------------------------------
*/
