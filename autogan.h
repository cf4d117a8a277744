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
   Adversarial Networks", ICCV 2019): float32 NCHW tensors with a per-step arena,
   reverse-mode autograd recorded on a tape, every layer of the AutoGAN search space
   (conv, transposed conv, bilinear/nearest upsampling, BatchNorm/InstanceNorm, spectral
   norm), Adam, the weight-shared generator and the growing discriminator with PyTorch's
   state_dict names, one hinge-loss GAN iteration as a call, and .safetensors I/O.

   Configuration (define before the implementation include):
       AUTOGAN_STATIC          make every API function static to the including file
       AG_MALLOC/AG_REALLOC/AG_FREE   your allocator (define all three or none)
       AG_ASSERT(x)            your assert (used for internal invariants only; errors
                               in input are always returned, never asserted)

   Errors: functions that can fail return NULL or -1 and leave a message in the context
   (ag_ctx_error) or in the ag_error you pass. Ops receiving a NULL input return NULL, so
   a forward pass can be checked once at its end. A failed load leaves the caller's
   parameters unchanged.

   Determinism: the same seed and the same thread count give the same bits.

   TABLE OF CONTENTS (sections of the implementation, in the order data flows)
       1. Configuration and API ................ (this part, outside the implementation)
       2. Errors, files and host arrays
       3. Tensors, arena and PRNG
       4. Kernels: GEMM, im2col/col2im, scalar reference
       5. Autograd tape and ops (forward + backward pairs)
       6. Parameters, layers and initialisation
       7. Optimiser: Adam, EMA
       8. AutoGAN generator, discriminator and the GAN iteration
       9. Inception-v3, Inception score and FID
      10. File formats: .safetensors

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
AGDEF int       ag_read_file(const char *path, unsigned char **bytes, size_t *len, ag_error *err);
AGDEF int       ag_write_file_atomic(const char *path, const void *bytes, size_t len, ag_error *err);

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
} ag_tensor;

typedef struct ag_ctx ag_ctx;

AGDEF ag_ctx     *ag_ctx_create(uint64_t seed);
AGDEF void        ag_ctx_free(ag_ctx *ctx);
AGDEF void        ag_ctx_reset(ag_ctx *ctx);          /* frees every op tensor and the tape */
AGDEF const char *ag_ctx_error(const ag_ctx *ctx);    /* "" when nothing failed */
AGDEF int         ag_ctx_failed(const ag_ctx *ctx);
AGDEF void        ag_ctx_clear_error(ag_ctx *ctx);
AGDEF void        ag_ctx_set_threads(ag_ctx *ctx, int num_threads); /* <= 0: OpenMP default */
AGDEF int         ag_ctx_threads(const ag_ctx *ctx);
AGDEF void        ag_ctx_set_grad_enabled(ag_ctx *ctx, int enabled); /* no-grad mode when 0 */
AGDEF int         ag_ctx_grad_enabled(const ag_ctx *ctx);
AGDEF size_t      ag_ctx_arena_bytes(const ag_ctx *ctx); /* high-water mark of the arena */
AGDEF const char *ag_ctx_cpu_name(const ag_ctx *ctx);
AGDEF double      ag_ctx_gemm_flops(const ag_ctx *ctx);  /* floating-point operations in GEMMs so far */

/* arena tensors (uninitialised / zeroed / copied from host floats) */
AGDEF ag_tensor *ag_tensor_new(ag_ctx *ctx, int ndim, const int *shape);
AGDEF ag_tensor *ag_tensor_zeros(ag_ctx *ctx, int ndim, const int *shape);
AGDEF ag_tensor *ag_tensor_from(ag_ctx *ctx, int ndim, const int *shape, const float *data);
AGDEF ag_tensor *ag_tensor4(ag_ctx *ctx, int n, int c, int h, int w);
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

/* ---- AutoGAN modules -------------------------------------------------------------- */
#define AG_ARCH_MAX 14
enum { AG_CONV_POST = 0, AG_CONV_PRE = 1 };
enum { AG_NORM_NONE = 0, AG_NORM_BN = 1, AG_NORM_IN = 2 };
enum { AG_UP_BILINEAR = 0, AG_UP_NEAREST = 1, AG_UP_DECONV = 2 };

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
AGDEF int ag_gan_g_step(ag_ctx *ctx, ag_gan *gan, const float *z_g, float *g_loss);
/* A full iteration: D step, then a G step when (iteration % n_critic == 0). */
AGDEF int ag_gan_step(ag_ctx *ctx, ag_gan *gan, const float *real, ag_gan_losses *out);

/* ---- Inception-v3 (the 2015-12-05 FID network) and scores ----------------------------
   Built from a state dict with the keys of pt_inception-2015-12-05-6726825d.pth
   (P.conv.weight, P.bn.{weight,bias,running_mean,running_var} per conv prefix P, fc.weight,
   fc.bias); BatchNorm (eps 1e-3) is folded into the convolutions at load time. The
   network owns a context of its own, so scoring never disturbs the caller's arena. */
typedef struct ag_inception ag_inception;
AGDEF ag_inception *ag_inception_from_arrays(const ag_array_list *state_dict, ag_error *err);
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
AGDEF int  ag_fid_stats_add(ag_fid_stats *s, const float *features, int n);   /* n x dim */
AGDEF int  ag_fid_stats_finish(ag_fid_stats *s, ag_error *err);                /* fills mu, sigma */
AGDEF void ag_fid_stats_free(ag_fid_stats *s);
/* d² = |mu1-mu2|² + tr s1 + tr s2 - 2 tr sqrt(s1 s2); the trace term is the sum of square
   roots of the eigenvalues of Lᵀ s1 L with s2 = L Lᵀ (1e-6·I added when Cholesky fails) */
AGDEF int  ag_fid(const double *mu1, const double *sigma1, const double *mu2, const double *sigma2, int dim,
                  double *fid, ag_error *err);
AGDEF int  ag_sym_eigenvalues(double *a, int n, double *eig, ag_error *err);   /* a is destroyed */

/* ---- file formats ------------------------------------------------------------------- */
/* .safetensors: F32 tensors and I64 counters by name. Saving goes through a temporary
   file and a rename. Loading checks every name, dtype and shape first and changes
   nothing unless all of them fit (strict: a missing or unexpected tensor is an error;
   with strict 0, tensors in the file that the set lacks are ignored). */
AGDEF int ag_safetensors_save(const char *path, const ag_params *ps, const char *metadata_json_or_null, ag_error *err);
AGDEF int ag_safetensors_load(const char *path, ag_params *ps, int strict, ag_error *err);
/* the same checks and all-or-nothing copy from arrays already read; names are looked up
   as prefix + entry name; `source` names the origin in messages */
AGDEF int ag_params_load_arrays(ag_params *ps, const ag_array_list *arrays, const char *prefix, int strict,
                                const char *source, ag_error *err);
AGDEF int ag_safetensors_read(const char *path, ag_array_list *out, char **metadata_json, ag_error *err);
AGDEF int ag_safetensors_read_memory(const unsigned char *buf, size_t len, ag_array_list *out, char **metadata_json, ag_error *err);
AGDEF int ag_safetensors_write(const char *path, const ag_array_list *arrays, const char *metadata_json_or_null, ag_error *err);
/* A GAN checkpoint (.safetensors): G and D (parameters, buffers, counters) under "G." and
   "D.", both Adam states ("adam_g.m.<name>", ...), the EMA of G when given ("ema.<name>"),
   and in the metadata the iteration, Adam steps, stage, architecture, the context's PRNG
   state and the caller's extra fields (`"key":"value"` pairs, comma-separated, or NULL).
   Loading restores all of it exactly or, on any error, changes nothing. */
AGDEF int ag_gan_save(const char *path, const ag_gan *gan, const ag_ema *ema, const ag_ctx *ctx,
                      const char *extra_fields, ag_error *err);
AGDEF int ag_gan_load(const char *path, ag_gan *gan, ag_ema *ema, ag_ctx *ctx, char **metadata, ag_error *err);
/* value of a string key in the flat JSON object of __metadata__ ("" when absent) */
AGDEF int ag_json_get_string(const char *json, const char *key, char *out, size_t out_len);

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

/* OpenMP without warnings when it is off: every parallel loop declares `int ag__nt`. */
#ifdef _OPENMP
#define AG__PARALLEL_FOR _Pragma("omp parallel for schedule(static) num_threads(ag__nt)")
#else
#define AG__PARALLEL_FOR
#endif

/* ===================================================================================
   2. Errors, files and host arrays
   =================================================================================== */
static int ag__vfail(ag_error *err, const char *fmt, va_list ap) {
    if (err) vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    return -1;
}
static int ag__fail(ag_error *err, const char *fmt, ...) {
    va_list ap; va_start(ap, fmt); ag__vfail(err, fmt, ap); va_end(ap);
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

AGDEF int ag_read_file(const char *path, unsigned char **bytes, size_t *len, ag_error *err) {
    FILE *f = fopen(path, "rb"); long size; unsigned char *buf; size_t got;
    *bytes = NULL; *len = 0;
    if (!f) return ag__fail(err, "%s: cannot open for reading", path);
    if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f); return ag__fail(err, "%s: cannot determine the file size", path);
    }
    buf = (unsigned char *)AG_MALLOC((size_t)size + 1);
    if (!buf) { fclose(f); return ag__fail(err, "%s: out of memory reading %ld bytes", path, size); }
    got = fread(buf, 1, (size_t)size, f);
    fclose(f);
    if (got != (size_t)size) { AG_FREE(buf); return ag__fail(err, "%s: read %zu of %ld bytes", path, got, size); }
    buf[size] = 0;
    *bytes = buf; *len = (size_t)size;
    return 0;
}

AGDEF int ag_write_file_atomic(const char *path, const void *bytes, size_t len, ag_error *err) {
    /* write path.tmp-<address-derived tag> and rename, so a crash never leaves half a file */
    char tmp[4096]; FILE *f; size_t put; int closed;
    if (strlen(path) + 32 > sizeof tmp) return ag__fail(err, "%s: path too long", path);
    snprintf(tmp, sizeof tmp, "%s.tmp-%lx", path, (unsigned long)((uintptr_t)&tmp >> 4) & 0xffffffUL);
    f = fopen(tmp, "wb");
    if (!f) return ag__fail(err, "%s: cannot create temporary file %s", path, tmp);
    put = len ? fwrite(bytes, 1, len, f) : 0;
    closed = fclose(f);
    if (put != len || closed != 0) { remove(tmp); return ag__fail(err, "%s: write failed (disk full?)", path); }
    if (rename(tmp, path) != 0) { remove(tmp); return ag__fail(err, "%s: cannot rename %s into place", path, tmp); }
    return 0;
}

/* ===================================================================================
   3. Tensors, arena and PRNG
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
    float *scratch[3]; size_t scratch_cap[3];   /* reused within one op: im2col, gathers, GEMM packing */
    void **heap; int heap_len, heap_cap;        /* large gradient buffers, freed once consumed */
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
static void ag__heap_release_all(ag_ctx *ctx) {
    int i;
    for (i = 0; i < ctx->heap_len; i++) AG_FREE(ctx->heap[i]);
    ctx->heap_len = 0;
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

AGDEF ag_ctx *ag_ctx_create(uint64_t seed) {
    ag_ctx *ctx = (ag_ctx *)AG_MALLOC(sizeof(ag_ctx));
    if (!ctx) return NULL;
    memset(ctx, 0, sizeof *ctx);
    ctx->grad_enabled = 1;
    ag_rng_seed(&ctx->rng, seed, 54u);
#ifdef _OPENMP
    ctx->num_threads = omp_get_max_threads();
#else
    ctx->num_threads = 1;
#endif
    ag__kernels_setup(ctx);
    if (!ctx->kern) { AG_FREE(ctx); return NULL; }
    return ctx;
}

AGDEF void ag_ctx_free(ag_ctx *ctx) {
    ag__chunk *c, *next;
    if (!ctx) return;
    for (c = ctx->chunks; c; c = next) { next = c->next; AG_FREE(c); }
    AG_FREE(ctx->tape);
    ag__heap_release_all(ctx);
    AG_FREE(ctx->heap);
    AG_FREE(ctx->scratch[0]); AG_FREE(ctx->scratch[1]); AG_FREE(ctx->scratch[2]);
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
    ctx->num_threads = num_threads > 0 ? num_threads : omp_get_max_threads();
#else
    (void)num_threads; ctx->num_threads = 1;
#endif
    ag__kernels_set_threads(ctx);
}
AGDEF int ag_ctx_threads(const ag_ctx *ctx) { return ctx->num_threads; }
AGDEF void ag_ctx_set_grad_enabled(ag_ctx *ctx, int enabled) { ctx->grad_enabled = enabled != 0; }
AGDEF int ag_ctx_grad_enabled(const ag_ctx *ctx) { return ctx->grad_enabled; }
AGDEF size_t ag_ctx_arena_bytes(const ag_ctx *ctx) { return ctx->arena_high; }
AGDEF ag_rng *ag_ctx_rng(ag_ctx *ctx) { return &ctx->rng; }
AGDEF double ag_ctx_gemm_flops(const ag_ctx *ctx) { return ctx->gemm_flops; }

/* threads for a loop of `work` elementary operations: one below ~32k, else all */
static int ag__threads_for(const ag_ctx *ctx, size_t work) {
    return work < 32768 ? 1 : ctx->num_threads;
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
    t->data = (float *)ag__arena_alloc(ctx, n * sizeof(float) + 4);
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
   4. Kernels: GEMM, im2col/col2im, scalar reference
   =================================================================================== */
/* The kernel table: filled once per context. */
typedef struct ag__kernels { const char *name; int num_threads; } ag__kernels;

static void ag__kernels_setup(ag_ctx *ctx) {
    ag__kernels *k = (ag__kernels *)AG_MALLOC(sizeof(ag__kernels));
    if (!k) return;
    k->name = "scalar"; k->num_threads = ctx->num_threads;
    ctx->kern = k;
}
static void ag__kernels_release(ag_ctx *ctx) { AG_FREE(ctx->kern); ctx->kern = NULL; }
static void ag__kernels_set_threads(ag_ctx *ctx) { if (ctx->kern) ctx->kern->num_threads = ctx->num_threads; }
AGDEF const char *ag_ctx_cpu_name(const ag_ctx *ctx) { return ctx->kern->name; }

static size_t ag__sgemm_scratch_bytes(const ag__kernels *kern, int M, int N, int K) {
    (void)kern; (void)M; (void)N; (void)K; return 0;
}

/* C[M x N] (ldc) = beta*C + op(A)[M x K] . op(B)[K x N], row-major.
   transA: A is stored K x M; transB: B is stored N x K. beta is 0 or 1.
   Each element of C is summed by one thread in a fixed order (deterministic). */
static void ag__sgemm(const ag__kernels *kern, int transA, int transB, int M, int N, int K,
                      const float *A, int lda, const float *B, int ldb, float beta,
                      float *C, int ldc, void *scratch, size_t scratch_bytes) {
    long i;
    int ag__nt = ((double)M * N * K < 65536.0) ? 1 : kern->num_threads;
    (void)scratch; (void)scratch_bytes; (void)ag__nt;
    AG__PARALLEL_FOR
    for (i = 0; i < M; i++) {
        float *c = C + (size_t)i * ldc; int j, k;
        if (beta == 0.0f) for (j = 0; j < N; j++) c[j] = 0.0f;
        if (!transB) {
            for (k = 0; k < K; k++) {
                float a = transA ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
                const float *b = B + (size_t)k * ldb;
                if (a == 0.0f) continue;
                for (j = 0; j < N; j++) c[j] += a * b[j];
            }
        } else {
            for (j = 0; j < N; j++) {
                const float *b = B + (size_t)j * ldb;
                float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
                k = 0;
                if (!transA) {
                    const float *a = A + (size_t)i * lda;
                    for (; k + 4 <= K; k += 4) { s0 += a[k] * b[k]; s1 += a[k+1] * b[k+1]; s2 += a[k+2] * b[k+2]; s3 += a[k+3] * b[k+3]; }
                    for (; k < K; k++) s0 += a[k] * b[k];
                } else {
                    for (; k < K; k++) s0 += A[(size_t)k * lda + i] * b[k];
                }
                c[j] += (s0 + s1) + (s2 + s3);
            }
        }
    }
}

/* im2col for one image: x[C,H,W] -> col[C*kh*kw, OH*OW], rows `ldc` floats apart (so
   several images can sit side by side in one wide matrix) */
static void ag__im2col(const ag__kernels *kern, const float *x, int C, int H, int W, int kh, int kw,
                       int sh, int sw, int ph, int pw, int OH, int OW, float *col, size_t ldc) {
    long r; int ag__nt = ((size_t)C * kh * kw * OH * OW < 65536) ? 1 : kern->num_threads;
    (void)ag__nt;
    AG__PARALLEL_FOR
    for (r = 0; r < (long)C * kh * kw; r++) {
        int c = (int)(r / (kh * kw)), ki = (int)(r / kw % kh), kj = (int)(r % kw), oy, ox;
        float *dst = col + (size_t)r * ldc;
        const float *src = x + (size_t)c * H * W;
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
    long c; int ag__nt = ((size_t)C * kh * kw * OH * OW < 65536) ? 1 : kern->num_threads;
    (void)ag__nt;
    AG__PARALLEL_FOR
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
    ag__node *n;
    if (!out || !ctx->grad_enabled || !ag__any_requires_grad(a, b, c, d)) return NULL;
    if (!(n = ag__push_node(ctx, out, backward))) return NULL;
    n->in[0] = a; n->in[1] = b; n->in[2] = c; n->in[3] = d;
    return n;
}

/* The gradient buffer of t, zeroed on first use: small ones in the arena, large ones
   (>= 1 MB) on the heap so backward can free them as soon as their node has run. */
static float *ag__grad(ag_ctx *ctx, ag_tensor *t) {
    if (!t->grad) {
        size_t bytes = t->size * sizeof(float);
        if (bytes >= ((size_t)1 << 20)) {
            if (ctx->heap_len == ctx->heap_cap) {
                int cap = ctx->heap_cap ? ctx->heap_cap * 2 : 64;
                void **h = (void **)AG_REALLOC(ctx->heap, (size_t)cap * sizeof(void *));
                if (!h) return (float *)ag__ctx_fail(ctx, "out of memory for gradient bookkeeping");
                ctx->heap = h; ctx->heap_cap = cap;
            }
            t->grad = (float *)AG_MALLOC(bytes);
            if (!t->grad) return (float *)ag__ctx_fail(ctx, "out of memory: a %zu-byte gradient", bytes);
            ctx->heap[ctx->heap_len++] = t->grad;
            t->grad_slot = ctx->heap_len;
        } else t->grad = (float *)ag__arena_alloc(ctx, bytes + 4);
        if (t->grad) memset(t->grad, 0, bytes);
    }
    return t->grad;
}
static void ag__grad_release(ag_ctx *ctx, ag_tensor *t) {
    if (t->grad_slot > 0 && t->grad_slot <= ctx->heap_len && ctx->heap[t->grad_slot - 1] == t->grad) {
        AG_FREE(t->grad);
        ctx->heap[t->grad_slot - 1] = NULL;
    }
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
    return t;
}

/* ---- argument checks ---- */
static int ag__check(ag_ctx *ctx, const char *op, ag_tensor *x, int ndim) {
    char s[64];
    if (ctx->failed) return -1;
    if (!x) { ag__ctx_fail(ctx, "%s: input is NULL", op); return -1; }
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

/* GEMM with its packing scratch taken from the arena */
static void ag__gemm(ag_ctx *ctx, int transA, int transB, int M, int N, int K, const float *A, int lda,
                     const float *B, int ldb, float beta, float *C, int ldc) {
    size_t bytes = ag__sgemm_scratch_bytes(ctx->kern, M, N, K);
    void *scratch = bytes ? ag__scratch(ctx, 2, bytes / sizeof(float) + 1) : NULL;
    if (bytes && !scratch) return;
    ctx->gemm_flops += 2.0 * M * N * K;
    ag__sgemm(ctx->kern, transA, transB, M, N, K, A, lda, B, ldb, beta, C, ldc, scratch, bytes);
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
    ag_tensor *y; int shape[2], N, I, O, i, o; char s1[64], s2[64];
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
    ag__record(ctx, y, ag__linear_backward, x, w, b, NULL);
    return y;
}

/* ---- conv2d: x[N,C,H,W] w[O,C,kh,kw] b[O] -> y[N,O,OH,OW] via im2col + GEMM ---- */
static int ag__is_pointwise(int kh, int kw, int sh, int sw, int ph, int pw) {
    return kh == 1 && kw == 1 && sh == 1 && sw == 1 && ph == 0 && pw == 0;
}
static void ag__bias_add_planes(float *y, const float *b, int N, int C, size_t plane) {
    long nc;
    int ag__nt = 1; (void)ag__nt;
    for (nc = 0; nc < (long)N * C; nc++) {
        float v = b[nc % C]; float *p = y + (size_t)nc * plane; size_t i;
        for (i = 0; i < plane; i++) p[i] += v;
    }
}
static void ag__bias_grad_planes(float *gb, const float *gy, int N, int C, size_t plane) {
    int n, c;
    for (c = 0; c < C; c++) {
        double s = 0.0;
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
static void ag__conv2d_backward(ag_ctx *ctx, ag__node *n) {
    ag_tensor *x = n->in[0], *w = n->in[1], *b = n->in[2], *y = n->out;
    int N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
    int O = w->shape[0], kh = w->shape[2], kw = w->shape[3];
    int sh = n->iarg[0], sw = n->iarg[1], ph = n->iarg[2], pw = n->iarg[3];
    int OH = y->shape[2], OW = y->shape[3], K = C * kh * kw, n0, j;
    size_t P = (size_t)OH * OW, HWin = (size_t)H * W;
    int pointwise = ag__is_pointwise(kh, kw, sh, sw, ph, pw), cnt = ag__conv_group(N, (size_t)K, P);
    float *gx = ag__in_grad(ctx, n, 0), *gw = ag__in_grad(ctx, n, 1), *gb = ag__in_grad(ctx, n, 2);
    float *col = NULL, *tmp = NULL;
    if (gx || gw) {
        if (!pointwise || cnt > 1) col = ag__scratch(ctx, 0, (size_t)K * cnt * P);
        if (cnt > 1) tmp = ag__scratch(ctx, 1, (size_t)O * cnt * P);
        if (ctx->failed) return;
        for (n0 = 0; n0 < N; n0 += cnt) {
            int c = N - n0 < cnt ? N - n0 : cnt; size_t ld = (size_t)c * P;
            const float *ci = x->data + (size_t)n0 * C * HWin, *dyg = y->grad + (size_t)n0 * O * P;
            if (c > 1) { ag__gather_planes(y->grad + (size_t)n0 * O * P, c, O, P, tmp); dyg = tmp; }
            if (gw) {
                if (col) {
                    for (j = 0; j < c; j++)
                        ag__im2col(ctx->kern, x->data + (size_t)(n0 + j) * C * HWin, C, H, W, kh, kw, sh, sw, ph, pw, OH, OW, col + (size_t)j * P, ld);
                    ci = col;
                }
                ag__gemm(ctx, 0, 1, O, K, (int)ld, dyg, (int)ld, ci, (int)ld, 1.0f, gw, K);
            }
            if (gx) {
                if (!col) ag__gemm(ctx, 1, 0, C, (int)P, O, w->data, K, dyg, (int)P, 1.0f, gx + (size_t)n0 * C * HWin, (int)P);
                else {
                    ag__gemm(ctx, 1, 0, K, (int)ld, O, w->data, K, dyg, (int)ld, 0.0f, col, (int)ld);
                    for (j = 0; j < c; j++)
                        ag__col2im(ctx->kern, col + (size_t)j * P, C, H, W, kh, kw, sh, sw, ph, pw, OH, OW, gx + (size_t)(n0 + j) * C * HWin, ld);
                }
            }
        }
    }
    if (gb && b) ag__bias_grad_planes(gb, y->grad, N, O, P);
}
AGDEF ag_tensor *ag_conv2d(ag_ctx *ctx, ag_tensor *x, ag_tensor *w, ag_tensor *b,
                           int sh, int sw, int ph, int pw) {
    int N, C, H, W, O, kh, kw, OH, OW, K, n0, j, cnt, pointwise; size_t P; ag_tensor *y; float *col = NULL, *tmp = NULL; ag__node *nd;
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
    OH = (H + 2 * ph - kh) / sh + 1; OW = (W + 2 * pw - kw) / sw + 1;
    K = C * kh * kw; P = (size_t)OH * OW;
    pointwise = ag__is_pointwise(kh, kw, sh, sw, ph, pw);
    cnt = ag__conv_group(N, (size_t)K, P);
    y = ag_tensor4(ctx, N, O, OH, OW);
    if (!y) return NULL;
    if (!pointwise || cnt > 1) col = ag__scratch(ctx, 0, (size_t)K * cnt * P);
    if (cnt > 1) tmp = ag__scratch(ctx, 1, (size_t)O * cnt * P);
    if (ctx->failed) return NULL;
    for (n0 = 0; n0 < N; n0 += cnt) {
        int c = N - n0 < cnt ? N - n0 : cnt; size_t ld = (size_t)c * P;
        const float *ci = x->data + (size_t)n0 * C * H * W;
        if (col) {
            for (j = 0; j < c; j++)
                ag__im2col(ctx->kern, x->data + (size_t)(n0 + j) * C * H * W, C, H, W, kh, kw, sh, sw, ph, pw, OH, OW, col + (size_t)j * P, ld);
            ci = col;
        }
        if (c == 1) ag__gemm(ctx, 0, 0, O, (int)P, K, w->data, K, ci, (int)P, 0.0f, y->data + (size_t)n0 * O * P, (int)P);
        else {
            ag__gemm(ctx, 0, 0, O, (int)ld, K, w->data, K, ci, (int)ld, 0.0f, tmp, (int)ld);
            ag__scatter_planes(tmp, c, O, P, y->data + (size_t)n0 * O * P, 0);
        }
    }
    if (b) ag__bias_add_planes(y->data, b->data, N, O, P);
    nd = ag__record(ctx, y, ag__conv2d_backward, x, w, b, NULL);
    if (nd) { nd->iarg[0] = sh; nd->iarg[1] = sw; nd->iarg[2] = ph; nd->iarg[3] = pw; }
    return y;
}

/* ---- transposed conv: x[N,I,H,W] w[I,O,kh,kw] b[O] -> y[N,O,(H-1)s-2p+kh, ...]
   forward = GEMM (Wᵀ x) then col2im; for k2 s2 the columns never overlap ---- */
static void ag__deconv_backward(ag_ctx *ctx, ag__node *n) {
    ag_tensor *x = n->in[0], *w = n->in[1], *b = n->in[2], *y = n->out;
    int N = x->shape[0], I = x->shape[1], H = x->shape[2], W = x->shape[3];
    int O = w->shape[1], kh = w->shape[2], kw = w->shape[3], s = n->iarg[0], p = n->iarg[1];
    int OH = y->shape[2], OW = y->shape[3], K = O * kh * kw, n0, j;
    size_t P = (size_t)H * W, PO = (size_t)OH * OW; int cnt = ag__conv_group(N, (size_t)K, P);
    float *gx = ag__in_grad(ctx, n, 0), *gw = ag__in_grad(ctx, n, 1), *gb = ag__in_grad(ctx, n, 2);
    float *col, *tmp;
    if (gx || gw) {
        col = ag__scratch(ctx, 0, (size_t)K * cnt * P);
        tmp = ag__scratch(ctx, 1, (size_t)I * cnt * P);
        if (ctx->failed) return;
        for (n0 = 0; n0 < N; n0 += cnt) {
            int c = N - n0 < cnt ? N - n0 : cnt; size_t ld = (size_t)c * P;
            for (j = 0; j < c; j++)
                ag__im2col(ctx->kern, y->grad + (size_t)(n0 + j) * O * PO, O, OH, OW, kh, kw, s, s, p, p, H, W, col + (size_t)j * P, ld);
            if (gw) {
                const float *xg = x->data + (size_t)n0 * I * P;
                if (c > 1) { ag__gather_planes(x->data + (size_t)n0 * I * P, c, I, P, tmp); xg = tmp; }
                ag__gemm(ctx, 0, 1, I, K, (int)ld, xg, (int)ld, col, (int)ld, 1.0f, gw, K);
            }
            if (gx) {
                if (c == 1) ag__gemm(ctx, 0, 0, I, (int)P, K, w->data, K, col, (int)P, 1.0f, gx + (size_t)n0 * I * P, (int)P);
                else {
                    ag__gemm(ctx, 0, 0, I, (int)ld, K, w->data, K, col, (int)ld, 0.0f, tmp, (int)ld);
                    ag__scatter_planes(tmp, c, I, P, gx + (size_t)n0 * I * P, 1);
                }
            }
        }
    }
    if (gb && b) ag__bias_grad_planes(gb, y->grad, N, O, PO);
}
AGDEF ag_tensor *ag_conv_transpose2d(ag_ctx *ctx, ag_tensor *x, ag_tensor *w, ag_tensor *b, int s, int p) {
    int N, I, H, W, O, kh, kw, OH, OW, K, n0, j, cnt; size_t P; ag_tensor *y; float *col, *tmp = NULL; ag__node *nd; char s1[64], s2[64];
    if (ag__check(ctx, "conv_transpose2d", x, 4) || ag__check(ctx, "conv_transpose2d (weight)", w, 4)) return NULL;
    N = x->shape[0]; I = x->shape[1]; H = x->shape[2]; W = x->shape[3];
    O = w->shape[1]; kh = w->shape[2]; kw = w->shape[3];
    if (w->shape[0] != I) {
        ag_tensor_shape_str(x, s1, sizeof s1); ag_tensor_shape_str(w, s2, sizeof s2);
        return (ag_tensor *)ag__ctx_fail(ctx, "conv_transpose2d: input %s has %d channels but weight %s expects %d", s1, I, s2, w->shape[0]);
    }
    if (s < 1 || p < 0) return (ag_tensor *)ag__ctx_fail(ctx, "conv_transpose2d: bad stride %d or padding %d", s, p);
    if (b && b->size != (size_t)O) return (ag_tensor *)ag__ctx_fail(ctx, "conv_transpose2d: bias has %zu elements, weight has %d outputs", b->size, O);
    OH = (H - 1) * s - 2 * p + kh; OW = (W - 1) * s - 2 * p + kw;
    if (OH < 1 || OW < 1) return (ag_tensor *)ag__ctx_fail(ctx, "conv_transpose2d: empty output (%dx%d)", OH, OW);
    K = O * kh * kw; P = (size_t)H * W;
    cnt = ag__conv_group(N, (size_t)K, P);
    y = ag_tensor4(ctx, N, O, OH, OW);
    col = ag__scratch(ctx, 0, (size_t)K * cnt * P);
    if (cnt > 1) tmp = ag__scratch(ctx, 1, (size_t)I * cnt * P);
    if (!y || ctx->failed) return NULL;
    memset(y->data, 0, y->size * sizeof(float));
    for (n0 = 0; n0 < N; n0 += cnt) {
        int c = N - n0 < cnt ? N - n0 : cnt; size_t ld = (size_t)c * P;
        const float *xg = x->data + (size_t)n0 * I * P;
        if (c > 1) { ag__gather_planes(x->data + (size_t)n0 * I * P, c, I, P, tmp); xg = tmp; }
        ag__gemm(ctx, 1, 0, K, (int)ld, I, w->data, K, xg, (int)ld, 0.0f, col, (int)ld);
        for (j = 0; j < c; j++)
            ag__col2im(ctx->kern, col + (size_t)j * P, O, OH, OW, kh, kw, s, s, p, p, H, W, y->data + (size_t)(n0 + j) * O * OH * OW, ld);
    }
    if (b) ag__bias_add_planes(y->data, b->data, N, O, (size_t)OH * OW);
    nd = ag__record(ctx, y, ag__deconv_backward, x, w, b, NULL);
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
    int H = x->shape[2], W = x->shape[3], OH = y->shape[2], OW = y->shape[3];
    const int *iy = (const int *)n->saved, *ix = (const int *)n->saved2;
    float *gx = ag__in_grad(ctx, n, 0); long pl; int ag__nt = ag__threads_for(ctx, y->size); (void)ag__nt;
    if (!gx) return;
    AG__PARALLEL_FOR
    for (pl = 0; pl < (long)x->shape[0] * x->shape[1]; pl++) {
        const float *g = y->grad + (size_t)pl * OH * OW; float *d = gx + (size_t)pl * H * W; int oy, ox;
        for (oy = 0; oy < OH; oy++) for (ox = 0; ox < OW; ox++) d[iy[oy] * W + ix[ox]] += g[oy * OW + ox];
    }
}
AGDEF ag_tensor *ag_upsample_nearest(ag_ctx *ctx, ag_tensor *x, int OH, int OW) {
    ag_tensor *y; int H, W, *iy, *ix; long pl; ag__node *nd; int ag__nt;
    if (ag__check(ctx, "upsample_nearest", x, 4)) return NULL;
    if (OH < 1 || OW < 1) return (ag_tensor *)ag__ctx_fail(ctx, "upsample_nearest: bad output size %dx%d", OH, OW);
    H = x->shape[2]; W = x->shape[3];
    y = ag_tensor4(ctx, x->shape[0], x->shape[1], OH, OW);
    iy = ag__nearest_index(ctx, H, OH); ix = ag__nearest_index(ctx, W, OW);
    if (!y || !iy || !ix) return NULL;
    ag__nt = ag__threads_for(ctx, y->size); (void)ag__nt;
    AG__PARALLEL_FOR
    for (pl = 0; pl < (long)x->shape[0] * x->shape[1]; pl++) {
        const float *s = x->data + (size_t)pl * H * W; float *d = y->data + (size_t)pl * OH * OW; int oy, ox;
        for (oy = 0; oy < OH; oy++) for (ox = 0; ox < OW; ox++) d[oy * OW + ox] = s[iy[oy] * W + ix[ox]];
    }
    nd = ag__record(ctx, y, ag__nearest_backward, x, NULL, NULL, NULL);
    if (nd) { nd->saved = iy; nd->saved2 = ix; }
    return y;
}

/* ---- bilinear upsampling (align_corners=False) to any size ---- */
typedef struct ag__lerp { int i0, i1; float w0, w1; } ag__lerp;
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
    int H = x->shape[2], W = x->shape[3], OH = y->shape[2], OW = y->shape[3];
    const ag__lerp *ty = (const ag__lerp *)n->saved, *tx = (const ag__lerp *)n->saved2;
    float *gx = ag__in_grad(ctx, n, 0); long pl; int ag__nt = ag__threads_for(ctx, y->size * 4); (void)ag__nt;
    if (!gx) return;
    AG__PARALLEL_FOR
    for (pl = 0; pl < (long)x->shape[0] * x->shape[1]; pl++) {
        const float *g = y->grad + (size_t)pl * OH * OW; float *d = gx + (size_t)pl * H * W; int oy, ox;
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
AGDEF ag_tensor *ag_upsample_bilinear(ag_ctx *ctx, ag_tensor *x, int OH, int OW) {
    ag_tensor *y; int H, W; ag__lerp *ty, *tx; long pl; ag__node *nd; int ag__nt;
    if (ag__check(ctx, "upsample_bilinear", x, 4)) return NULL;
    if (OH < 1 || OW < 1) return (ag_tensor *)ag__ctx_fail(ctx, "upsample_bilinear: bad output size %dx%d", OH, OW);
    H = x->shape[2]; W = x->shape[3];
    y = ag_tensor4(ctx, x->shape[0], x->shape[1], OH, OW);
    ty = ag__bilinear_table(ctx, H, OH); tx = ag__bilinear_table(ctx, W, OW);
    if (!y || !ty || !tx) return NULL;
    ag__nt = ag__threads_for(ctx, y->size * 4); (void)ag__nt;
    AG__PARALLEL_FOR
    for (pl = 0; pl < (long)x->shape[0] * x->shape[1]; pl++) {
        const float *s = x->data + (size_t)pl * H * W; float *d = y->data + (size_t)pl * OH * OW; int oy, ox;
        for (oy = 0; oy < OH; oy++) {
            const float *r0 = s + ty[oy].i0 * W, *r1 = s + ty[oy].i1 * W;
            for (ox = 0; ox < OW; ox++)
                d[oy * OW + ox] = ty[oy].w0 * (tx[ox].w0 * r0[tx[ox].i0] + tx[ox].w1 * r0[tx[ox].i1])
                                + ty[oy].w1 * (tx[ox].w0 * r1[tx[ox].i0] + tx[ox].w1 * r1[tx[ox].i1]);
        }
    }
    nd = ag__record(ctx, y, ag__bilinear_backward, x, NULL, NULL, NULL);
    if (nd) { nd->saved = ty; nd->saved2 = tx; }
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
    AG__PARALLEL_FOR
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
    AG__PARALLEL_FOR
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
    nd = ag__record(ctx, y, ag__avgpool_backward, x, NULL, NULL, NULL);
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
    arg = (int *)ag__arena_alloc(ctx, (y ? y->size : 1) * sizeof(int));
    if (!y || !arg) return NULL;
    ag__nt = ag__threads_for(ctx, y->size * k * k); (void)ag__nt;
    AG__PARALLEL_FOR
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
    if (nd) nd->saved = arg;
    return y;
}

/* ---- elementwise ---- */
static ag_tensor *ag__like(ag_ctx *ctx, ag_tensor *x) { return ag_tensor_new(ctx, x->ndim, x->shape); }

static void ag__relu_backward(ag_ctx *ctx, ag__node *n) {
    float *gx = ag__in_grad(ctx, n, 0); size_t i; const float *y = n->out->data, *g = n->out->grad;
    if (gx) for (i = 0; i < n->out->size; i++) if (y[i] > 0.0f) gx[i] += g[i];
}
AGDEF ag_tensor *ag_relu(ag_ctx *ctx, ag_tensor *x) {
    ag_tensor *y; size_t i;
    if (ag__check(ctx, "relu", x, 0) || !(y = ag__like(ctx, x))) return NULL;
    for (i = 0; i < x->size; i++) y->data[i] = x->data[i] > 0.0f ? x->data[i] : 0.0f;
    ag__record(ctx, y, ag__relu_backward, x, NULL, NULL, NULL);
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
    ag__record(ctx, y, ag__tanh_backward, x, NULL, NULL, NULL);
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
    ag__record(ctx, y, ag__sigmoid_backward, x, NULL, NULL, NULL);
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
    ag__record(ctx, y, ag__exp_backward, x, NULL, NULL, NULL);
    return y;
}
/* add / sub: iarg[0] = sign of b */
static void ag__addsub_backward(ag_ctx *ctx, ag__node *n) {
    float *ga = ag__in_grad(ctx, n, 0), *gb = ag__in_grad(ctx, n, 1); size_t i; const float *g = n->out->grad;
    float sb = (float)n->iarg[0];
    if (ga) for (i = 0; i < n->out->size; i++) ga[i] += g[i];
    if (gb) for (i = 0; i < n->out->size; i++) gb[i] += sb * g[i];
}
static ag_tensor *ag__addsub(ag_ctx *ctx, ag_tensor *a, ag_tensor *b, int sign, const char *op) {
    ag_tensor *y; size_t i; ag__node *nd; int ag__nt;
    if (ag__check_same(ctx, op, a, b) || !(y = ag__like(ctx, a))) return NULL;
    ag__nt = ag__threads_for(ctx, a->size); (void)ag__nt;
    {
        long j; const float *pa = a->data, *pb = b->data; float *py = y->data; float s = (float)sign;
        AG__PARALLEL_FOR
        for (j = 0; j < (long)a->size; j++) py[j] = pa[j] + s * pb[j];
    }
    (void)i;
    nd = ag__record(ctx, y, ag__addsub_backward, a, b, NULL, NULL);
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
    ag__record(ctx, y, ag__mul_backward, a, b, NULL, NULL);
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
    if (nd) nd->iarg[0] = start;
    return y;
}

/* ---- reshape: same data, new shape ---- */
static void ag__reshape_backward(ag_ctx *ctx, ag__node *n) {
    float *gx = ag__in_grad(ctx, n, 0); size_t i;
    if (gx) for (i = 0; i < n->out->size; i++) gx[i] += n->out->grad[i];
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
    ag__record(ctx, y, ag__reshape_backward, x, NULL, NULL, NULL);
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
    AG__PARALLEL_FOR
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
    AG__PARALLEL_FOR
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
    AG__PARALLEL_FOR
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
    AG__PARALLEL_FOR
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
    ag__record(ctx, y, ag__sum_hw_backward, x, NULL, NULL, NULL);
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
   6. Parameters, layers and initialisation
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

/* ===================================================================================
   7. Optimiser: Adam, EMA
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

/* ===================================================================================
   8. AutoGAN generator, discriminator and the GAN iteration
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

AGDEF void ag_generator_reset_params(ag_generator *g, ag_rng *rng) {
    int k, j;
    ag__init_default(rng, g->l1.weight, g->l1.bias, 1);
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
static ag_tensor *ag__gen_block(ag_ctx *ctx, ag_gen_block *b, ag_tensor *x, int pre, int norm, int up, int up_block, int training) {
    ag_tensor *h = x;
    if (pre) {
        h = ag_relu(ctx, ag__gen_norm(ctx, &b->bn, h, norm, training));
        if (up_block) h = ag__up2(ctx, h, up, &b->deconv);
        return ag__conv_apply(ctx, &b->conv, h);
    }
    if (up_block) h = ag__up2(ctx, h, up, &b->deconv);
    h = ag__conv_apply(ctx, &b->conv, h);
    return ag_relu(ctx, ag__gen_norm(ctx, &b->bn, h, norm, training));
}
static ag_tensor *ag__gen_cell(ag_ctx *ctx, ag_generator *g, int k, ag_tensor *x, ag_tensor **skip_in, ag_tensor **skip_out) {
    ag_gen_cell *c = &g->cells[k];
    const int *a = g->arch + (k == 0 ? 0 : 4 + 5 * (k - 1));
    int pre = a[0] == AG_CONV_PRE, norm = a[1], up = a[2], sc = a[3], skip = k ? a[4] : 0, j;
    ag_tensor *h, *out;
    h = ag__gen_block(ctx, pre ? &c->pre_conv1 : &c->post_conv1, x, pre, norm, up, 1, g->training);
    *skip_out = h;
    if (!h) return NULL;
    for (j = 0; j < c->num_skip_in; j++) {
        ag_tensor *ft = skip_in[j], *r;
        if (!((skip >> (c->num_skip_in - 1 - j)) & 1)) continue;   /* bit 0 = most recent cell */
        if (up == AG_UP_DECONV) {
            int scale = h->shape[3] / ft->shape[3];
            r = scale == 2 ? ag__deconv_apply(ctx, &c->skip_deconvx2, ft)
                           : ag__deconv_apply(ctx, &c->skip_deconvx4[1], ag__deconv_apply(ctx, &c->skip_deconvx4[0], ft));
        } else if (up == AG_UP_NEAREST) r = ag_upsample_nearest(ctx, ft, h->shape[2], h->shape[3]);
        else r = ag_upsample_bilinear(ctx, ft, h->shape[2], h->shape[3]);
        h = ag_add(ctx, h, ag__conv_apply(ctx, &c->skip_in_ops[j], r));
    }
    out = ag__gen_block(ctx, pre ? &c->pre_conv2 : &c->post_conv2, h, pre, norm, up, 0, g->training);
    if (sc) out = ag_add(ctx, out, ag__conv_apply(ctx, &c->c_sc, ag__up2(ctx, x, up, &c->deconv_sc)));
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
    h = ag_reshape(ctx, h, 4, shape);
    for (k = 0; k <= g->stage && h; k++) h = ag__gen_cell(ctx, g, k, h, skips, &skips[k]);
    h = ag__bn_apply(ctx, &g->to_rgb_bn, h, g->training);
    h = ag__conv_apply(ctx, &g->to_rgb_conv, ag_relu(ctx, h));
    return ag_tanh(ctx, h);
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
    /* block1 (optimized): c1 -> ReLU -> c2 -> avgpool;  shortcut avgpool -> c_sc */
    r = ag__avgpool2(ctx, ag__sn_conv(ctx, d, &d->block_c2[0], ag_relu(ctx, ag__sn_conv(ctx, d, &d->block_c1[0], x))));
    sc = ag__sn_conv(ctx, d, &d->block_c_sc[0], ag__avgpool2(ctx, x));
    h = ag_add(ctx, r, sc);
    for (b = 1; b < 4; b++) {
        if ((b == 1 && d->stage < 1) || (b == 2 && d->stage < 2)) continue;
        r = ag__sn_conv(ctx, d, &d->block_c2[b], ag_relu(ctx, ag__sn_conv(ctx, d, &d->block_c1[b], ag_relu(ctx, h))));
        if (b == 1) { r = ag__avgpool2(ctx, r); sc = ag__avgpool2(ctx, ag__sn_conv(ctx, d, &d->block_c_sc[1], h)); }
        else sc = h;
        h = ag_add(ctx, r, sc);
    }
    h = ag_sum_hw(ctx, ag_relu(ctx, h));
    return ag_linear(ctx, h, ag__sn_weight(ctx, d, &d->l5), NULL);
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
    ag_tensor *x, *z, *fake, *dr, *dfk, *loss; int R = ag_stage_resolution(gan->G->stage, gan->G->bottom_width);
    ag_ctx_reset(ctx);
    if (ctx->failed) return -1;
    gan->G->training = gan->D->training = 1;
    ag_params_zero_grad(&gan->D->params);
    ag__params_set_requires_grad(&gan->D->params, 1);
    x = ag_tensor4(ctx, gan->dis_bs, gan->G->out_channels, R, R);
    if (!x) return ag__step_fail(ctx, "D step");
    memcpy(x->data, real, x->size * sizeof(float));
    z = ag__latent(ctx, gan->dis_bs, gan->G->latent_dim, z_d);
    dr = ag_discriminator_forward(ctx, gan->D, x);
    ag_ctx_set_grad_enabled(ctx, 0);                 /* fake = G(z).detach() */
    fake = ag_generator_forward(ctx, gan->G, z);
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
    ag_tensor *z, *out, *loss;
    ag_ctx_reset(ctx);
    if (ctx->failed) return -1;
    gan->G->training = gan->D->training = 1;
    ag_params_zero_grad(&gan->G->params);
    ag__params_set_requires_grad(&gan->D->params, 0);   /* D's weight gradients are not needed here */
    z = ag__latent(ctx, gan->gen_bs, gan->G->latent_dim, z_g);
    out = ag_discriminator_forward(ctx, gan->D, ag_generator_forward(ctx, gan->G, z));
    loss = ag_hinge_loss_g(ctx, out);
    if (!loss || ag_backward(ctx, loss)) { ag__params_set_requires_grad(&gan->D->params, 1); return ag__step_fail(ctx, "G step"); }
    ag__params_set_requires_grad(&gan->D->params, 1);
    ag_adam_step(&gan->opt_g);
    if (g_loss) *g_loss = loss->data[0];
    gan->last_g_out = out;
    return 0;
}
AGDEF int ag_gan_step(ag_ctx *ctx, ag_gan *gan, const float *real, ag_gan_losses *out) {
    ag_gan_losses l; memset(&l, 0, sizeof l);
    if (ag_gan_d_step(ctx, gan, real, NULL, &l.d_loss)) return -1;
    if ((gan->iteration - 1) % gan->n_critic == 0) {
        if (ag_gan_g_step(ctx, gan, NULL, &l.g_loss)) return -1;
        l.g_stepped = 1;
    }
    if (out) *out = l;
    return 0;
}

/* ===================================================================================
   9. Inception-v3, Inception score and FID
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

AGDEF ag_inception *ag_inception_from_arrays(const ag_array_list *sd, ag_error *err) {
    ag_inception *net = (ag_inception *)AG_MALLOC(sizeof(ag_inception)); int i;
    float *tmp = NULL, *g = NULL, *b = NULL, *m = NULL, *v = NULL;
    if (!net) { ag__fail(err, "out of memory for the Inception network"); return NULL; }
    memset(net, 0, sizeof *net);
    net->batch = 8;
    ag__inc_layout(net);
    net->ctx = ag_ctx_create(0);
    if (!net->ctx) { ag__fail(err, "out of memory for the Inception context"); goto fail; }
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
    ag__inc_conv *c = &net->convs[(*cursor)++]; ag_tensor *y; size_t i;
    y = ag_conv2d(net->ctx, x, c->weight, c->bias, c->stride, c->stride, c->ph, c->pw);
    if (y) for (i = 0; i < y->size; i++) if (y->data[i] < 0.0f) y->data[i] = 0.0f;
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
AGDEF int ag_fid_stats_add(ag_fid_stats *s, const float *x, int n) {
    int d = s->dim, i; long r; double *xs;
    if (n <= 0) return 0;
    if (s->count == 0) {
        for (r = 0; r < d; r++) { double m = 0; for (i = 0; i < n; i++) m += x[(size_t)i * d + r]; s->shift[r] = m / n; }
    }
    xs = (double *)AG_MALLOC((size_t)n * d * sizeof(double));
    if (!xs) return -1;
    for (i = 0; i < n; i++) for (r = 0; r < d; r++) {
        double v = (double)x[(size_t)i * d + r] - s->shift[r];
        xs[(size_t)i * d + r] = v; s->sum[r] += v;
    }
    {
        int ag__nt = (size_t)n * d * d > 1000000 ? 0 : 1;
#ifdef _OPENMP
        if (!ag__nt) ag__nt = omp_get_max_threads();
#else
        ag__nt = 1;
#endif
        (void)ag__nt;
        AG__PARALLEL_FOR
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

/* eigenvalues of a symmetric matrix: Householder reduction to tridiagonal form, then the
   implicit QL iteration with Wilkinson-type shifts */
AGDEF int ag_sym_eigenvalues(double *a, int n, double *d, ag_error *err) {
    double *e, *v, *p; int k, l, m, iter;
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
            long ii; int ag__nt = (size_t)len * len > 262144 ? 0 : 1;
#ifdef _OPENMP
            if (!ag__nt) ag__nt = omp_get_max_threads();
#else
            ag__nt = 1;
#endif
            (void)ag__nt;
            AG__PARALLEL_FOR
            for (ii = 0; ii < len; ii++) {
                const double *row = a + (size_t)(k + 1 + ii) * n + k + 1; double sacc = 0.0; int jj;
                for (jj = 0; jj < len; jj++) sacc += row[jj] * v[jj];
                p[ii] = sacc;
            }
            for (i = 0; i < len; i++) K += v[i] * p[i];
            for (i = 0; i < len; i++) p[i] -= K * v[i];
            AG__PARALLEL_FOR
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
    for (l = 0; l < n; l++) {
        iter = 0;
        do {
            for (m = l; m < n - 1; m++) {
                double dd = fabs(d[m]) + fabs(d[m + 1]);
                if (fabs(e[m]) <= DBL_EPSILON * dd) break;
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
            long ii; int ag__nt = (size_t)(n - j) * j > 65536 ? 0 : 1;
#ifdef _OPENMP
            if (!ag__nt) ag__nt = omp_get_max_threads();
#else
            ag__nt = 1;
#endif
            (void)ag__nt;
            AG__PARALLEL_FOR
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
        long r; int ag__nt = d > 64 ? 0 : 1;
#ifdef _OPENMP
        if (!ag__nt) ag__nt = omp_get_max_threads();
#else
        ag__nt = 1;
#endif
        (void)ag__nt;
        AG__PARALLEL_FOR
        for (r = 0; r < d; r++) {
            double *trow = T + (size_t)r * d; const double *srow = s1 + (size_t)r * d; int k, j;
            for (j = 0; j < d; j++) trow[j] = offset * L[(size_t)r * d + j];
            for (k = 0; k < d; k++) { double a = srow[k]; const double *lrow = L + (size_t)k * d; if (a != 0.0) for (j = 0; j <= k; j++) trow[j] += a * lrow[j]; }
        }
        AG__PARALLEL_FOR
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
    *fid = diff + tr1 + tr2 - 2.0 * trs;
    AG_FREE(L);
    return 0;
}

/* ===================================================================================
   10. File formats: .safetensors
   =================================================================================== */
/* Layout: u64 little-endian header length N, N bytes of JSON
   {"__metadata__": {str: str}, name: {"dtype": "F32", "shape": [..], "data_offsets": [b, e]}},
   then the data; offsets are relative to the end of the header. */
typedef struct ag__json { const char *p, *end; int depth; } ag__json;
static void ag__json_ws(ag__json *j) { while (j->p < j->end && (*j->p == ' ' || *j->p == '\n' || *j->p == '\r' || *j->p == '\t')) j->p++; }
static int ag__json_lit(ag__json *j, char c) { ag__json_ws(j); if (j->p < j->end && *j->p == c) { j->p++; return 1; } return 0; }
/* a JSON string into out (escapes decoded for \" \\ \/ and control letters; \u kept as '?') */
static int ag__json_string(ag__json *j, char *out, size_t cap) {
    size_t n = 0;
    ag__json_ws(j);
    if (j->p >= j->end || *j->p != '"') return -1;
    j->p++;
    while (j->p < j->end && *j->p != '"') {
        char c = *j->p++;
        if (c == '\\') {
            if (j->p >= j->end) return -1;
            c = *j->p++;
            switch (c) { case 'n': c = '\n'; break; case 't': c = '\t'; break; case 'r': c = '\r'; break; case 'b': c = '\b'; break; case 'f': c = '\f'; break;
            case 'u': if (j->end - j->p < 4) return -1; j->p += 4; c = '?'; break;
            case '"': case '\\': case '/': break; default: return -1; }
        }
        if (n + 1 >= cap) return -1;
        out[n++] = c;
    }
    if (j->p >= j->end) return -1;
    j->p++;
    out[n] = 0;
    return 0;
}
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
static const char *ag__st_dtype_name(ag_dtype t) {
    switch (t) { case AG_DTYPE_F32: return "F32"; case AG_DTYPE_F64: return "F64"; case AG_DTYPE_F16: return "F16"; case AG_DTYPE_BF16: return "BF16";
    case AG_DTYPE_I64: return "I64"; case AG_DTYPE_I32: return "I32"; case AG_DTYPE_I16: return "I16"; case AG_DTYPE_I8: return "I8"; case AG_DTYPE_U8: return "U8"; case AG_DTYPE_BOOL: return "BOOL"; }
    return "?";
}

AGDEF int ag_safetensors_read_memory(const unsigned char *buf, size_t len, ag_array_list *out, char **metadata, ag_error *err) {
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
AGDEF int ag_safetensors_read(const char *path, ag_array_list *out, char **metadata, ag_error *err) {
    unsigned char *buf; size_t len; int rc; ag_error e;
    if (ag_read_file(path, &buf, &len, err)) return -1;
    rc = ag_safetensors_read_memory(buf, len, out, metadata, &e);
    AG_FREE(buf);
    if (rc) return ag__fail(err, "%s: %s", path, e.msg);
    return 0;
}

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
AGDEF int ag_safetensors_load(const char *path, ag_params *ps, int strict, ag_error *err) {
    ag_array_list list; int rc;
    if (ag_safetensors_read(path, &list, NULL, err)) return -1;
    rc = ag_params_load_arrays(ps, &list, NULL, strict, path, err);
    ag_array_list_free(&list);
    return rc;
}
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
static int ag__check_buffers(const ag_array_list *list, const ag_params *ps, const char *prefix, float *const *alt, const char *source, ag_error *err) {
    int i; char key[AG_NAME_MAX + 64];
    for (i = 0; i < ps->count; i++) {
        const ag_array *a;
        if (!alt[i]) continue;
        snprintf(key, sizeof key, "%s%s", prefix, ps->entries[i].name);
        a = ag_array_list_find(list, key);
        if (!a) return ag__fail(err, "%s: tensor '%s' is missing", source, key);
        if (a->dtype != AG_DTYPE_F32 || a->nbytes != ps->entries[i].tensor->size * 4)
            return ag__fail(err, "%s: tensor '%s' must be F32 with %zu elements", source, key, ps->entries[i].tensor->size);
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
AGDEF int ag_gan_save(const char *path, const ag_gan *gan, const ag_ema *ema, const ag_ctx *ctx,
                      const char *extra, ag_error *err) {
    ag_array_list list; ag__buf meta; int rc = 0, i, len = ag_arch_len(gan->G->stage);
    memset(&list, 0, sizeof list); memset(&meta, 0, sizeof meta);
    ag__buf_put(&meta, "{\"format\":\"autogan.h gan checkpoint 1\",\"iteration\":\"%lld\",\"adam_g_step\":\"%lld\",\"adam_d_step\":\"%lld\","
                "\"stage\":\"%d\",\"rng_state\":\"%llx\",\"rng_inc\":\"%llx\",\"ema\":\"%d\",\"arch\":\"",
                (long long)gan->iteration, (long long)gan->opt_g.step, (long long)gan->opt_d.step, gan->G->stage,
                (unsigned long long)ctx->rng.state, (unsigned long long)ctx->rng.inc, ema ? 1 : 0);
    for (i = 0; i < len; i++) ag__buf_put(&meta, i ? " %d" : "%d", gan->G->arch[i]);
    ag__buf_put(&meta, "\"%s%s}", extra && *extra ? "," : "", extra ? extra : "");
    if (meta.oom) rc = ag__fail(err, "%s: out of memory", path);
    if (!rc) rc = ag__list_add_params(&list, &gan->G->params, "G.", NULL, err);
    if (!rc) rc = ag__list_add_params(&list, &gan->D->params, "D.", NULL, err);
    if (!rc) rc = ag__list_add_params(&list, &gan->G->params, "adam_g.m.", gan->opt_g.m, err);
    if (!rc) rc = ag__list_add_params(&list, &gan->G->params, "adam_g.v.", gan->opt_g.v, err);
    if (!rc) rc = ag__list_add_params(&list, &gan->D->params, "adam_d.m.", gan->opt_d.m, err);
    if (!rc) rc = ag__list_add_params(&list, &gan->D->params, "adam_d.v.", gan->opt_d.v, err);
    if (!rc && ema) rc = ag__list_add_params(&list, &gan->G->params, "ema.", ema->avg, err);
    if (!rc) rc = ag_safetensors_write(path, &list, meta.p, err);
    ag_array_list_free(&list); AG_FREE(meta.p);
    return rc;
}
AGDEF int ag_gan_load(const char *path, ag_gan *gan, ag_ema *ema, ag_ctx *ctx, char **metadata, ag_error *err) {
    ag_array_list list; char *meta = NULL, v[128]; int rc = 0, stage = 0, arch[AG_ARCH_MAX], alen = 0;
    long long iter = 0, sg = 0, sd = 0; unsigned long long rs = 0, ri = 0;
    if (metadata) *metadata = NULL;
    if (ag_safetensors_read(path, &list, &meta, err)) return -1;
    if (ag_json_get_string(meta, "format", v, sizeof v) || strcmp(v, "autogan.h gan checkpoint 1"))
        rc = ag__fail(err, "%s: not an autogan.h GAN checkpoint (metadata 'format' missing or unknown)", path);
    if (!rc && (ag_json_get_string(meta, "iteration", v, sizeof v) || sscanf(v, "%lld", &iter) != 1 ||
                ag_json_get_string(meta, "adam_g_step", v, sizeof v) || sscanf(v, "%lld", &sg) != 1 ||
                ag_json_get_string(meta, "adam_d_step", v, sizeof v) || sscanf(v, "%lld", &sd) != 1 ||
                ag_json_get_string(meta, "rng_state", v, sizeof v) || sscanf(v, "%llx", &rs) != 1 ||
                ag_json_get_string(meta, "rng_inc", v, sizeof v) || sscanf(v, "%llx", &ri) != 1 ||
                ag_json_get_string(meta, "stage", v, sizeof v) || sscanf(v, "%d", &stage) != 1))
        rc = ag__fail(err, "%s: checkpoint metadata incomplete (iteration, Adam steps, stage or PRNG state)", path);
    if (!rc) {
        ag_error e2; e2.msg[0] = 0;
        if (ag_json_get_string(meta, "arch", v, sizeof v) || ag_arch_parse(v, arch, &alen, &e2) || ag__arch_check(stage, arch, alen, &e2))
            rc = ag__fail(err, "%s: checkpoint architecture invalid: %s", path, e2.msg);
    }
    if (!rc && (iter < 0 || sg < 0 || sd < 0)) rc = ag__fail(err, "%s: negative counters in the checkpoint", path);
    if (!rc) rc = ag__params_check_arrays(&gan->G->params, &list, "G.", 0, path, err);
    if (!rc) rc = ag__params_check_arrays(&gan->D->params, &list, "D.", 0, path, err);
    if (!rc) rc = ag__check_buffers(&list, &gan->G->params, "adam_g.m.", gan->opt_g.m, path, err);
    if (!rc) rc = ag__check_buffers(&list, &gan->G->params, "adam_g.v.", gan->opt_g.v, path, err);
    if (!rc) rc = ag__check_buffers(&list, &gan->D->params, "adam_d.m.", gan->opt_d.m, path, err);
    if (!rc) rc = ag__check_buffers(&list, &gan->D->params, "adam_d.v.", gan->opt_d.v, path, err);
    if (!rc && ema) rc = ag__check_buffers(&list, &gan->G->params, "ema.", ema->avg, path, err);
    if (!rc) {
        ag__params_copy_arrays(&gan->G->params, &list, "G.");
        ag__params_copy_arrays(&gan->D->params, &list, "D.");
        ag__copy_buffers(&list, &gan->G->params, "adam_g.m.", gan->opt_g.m);
        ag__copy_buffers(&list, &gan->G->params, "adam_g.v.", gan->opt_g.v);
        ag__copy_buffers(&list, &gan->D->params, "adam_d.m.", gan->opt_d.m);
        ag__copy_buffers(&list, &gan->D->params, "adam_d.v.", gan->opt_d.v);
        if (ema) ag__copy_buffers(&list, &gan->G->params, "ema.", ema->avg);
        gan->iteration = iter; gan->opt_g.step = sg; gan->opt_d.step = sd;
        ag_generator_set_arch(gan->G, stage, arch, alen, NULL);
        gan->D->stage = stage;
        ctx->rng.state = rs; ctx->rng.inc = ri;
        if (metadata) { *metadata = meta; meta = NULL; }
    }
    AG_FREE(meta);
    ag_array_list_free(&list);
    return rc;
}

AGDEF int ag_json_get_string(const char *json, const char *key, char *out, size_t out_len) {
    ag__json j; char k[256];
    if (out_len) out[0] = 0;
    if (!json) return -1;
    j.p = json; j.end = json + strlen(json); j.depth = 0;
    if (!ag__json_lit(&j, '{')) return -1;
    if (ag__json_lit(&j, '}')) return -1;
    do {
        if (ag__json_string(&j, k, sizeof k) || !ag__json_lit(&j, ':')) return -1;
        if (strcmp(k, key) == 0) return ag__json_string(&j, out, out_len);
        if (ag__json_skip(&j)) return -1;
    } while (ag__json_lit(&j, ','));
    return -1;
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
