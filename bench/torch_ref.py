#!/usr/bin/env python3
"""The bench/bench.c workloads in PyTorch, printing the same line format.

    /usr/bin/python3 bench/torch_ref.py WORKLOAD [--threads N] [--iters N] [--warmup N]

WORKLOAD: search-step | derived-step | g-sample | conv | inception | all. Uses the AutoGAN models of
tests/golden/gen_models.py (the reference's layers and names). gflops counts the same
GEMM work as bench.c (2*M*N*K of every conv, deconv and linear), so the two compare.
Run both in one session, at the same thread count, to compare.
"""
import os, sys, time, resource, argparse
import torch
import torch.nn.functional as F
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "golden"))
import gen_models as M  # noqa: E402  (may set torch's thread count; main() sets ours after)

ARCH_A = [1, 0, 1, 1, 1, 0, 0, 1, 1, 1, 0, 1, 0, 3]


def max_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


class FlopCounter:
    """2*M*N*K per conv / deconv / linear call, counted with forward hooks (forward) and
    doubled for the backward's data and weight gradients when training."""
    def __init__(self, *modules):
        self.flops = 0.0
        for mod in modules:
            for m in mod.modules():
                if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d, torch.nn.Linear)):
                    m.register_forward_hook(self.hook)

    def hook(self, m, inp, out):
        x = inp[0]
        if isinstance(m, torch.nn.Linear):
            f = 2.0 * x.shape[0] * m.in_features * m.out_features
        elif isinstance(m, torch.nn.Conv2d):
            f = 2.0 * out.numel() * m.in_channels * m.kernel_size[0] * m.kernel_size[1]
        else:
            f = 2.0 * x.numel() * m.out_channels * m.kernel_size[0] * m.kernel_size[1]
        if torch.is_grad_enabled():
            # backward: weight gradient always, data gradient unless the input is a leaf without grad
            f *= 3.0 if x.requires_grad else 2.0
        self.flops += f


def report(name, seconds, flops, n, extra):
    print(f"{name:<14} ms_per_iter={1e3 * seconds / n:.2f} gflops={flops / seconds / 1e9:.1f} {extra}", flush=True)


def gan_step(name, gf, df, iters, warmup):
    torch.manual_seed(1)
    G, D = M.SharedGenerator(gf, 128), M.Discriminator(df)
    og = torch.optim.Adam(G.parameters(), 2e-4, betas=(0.0, 0.9))
    od = torch.optim.Adam(D.parameters(), 2e-4, betas=(0.0, 0.9))
    fc = FlopCounter(G, D)
    real = torch.rand(64, 3, 32, 32) * 2 - 1
    t0 = f0 = 0
    for i in range(warmup + iters):
        if i == warmup:
            t0, f0 = time.time(), fc.flops
        od.zero_grad()
        z = torch.randn(64, 128)
        dr = D(real, 2)
        with torch.no_grad():
            fake = G(z, ARCH_A, 2)
        dfk = D(fake, 2)
        loss = F.relu(1 - dr).mean() + F.relu(1 + dfk).mean()
        loss.backward()
        od.step()
        og.zero_grad()
        g_loss = -D(G(torch.randn(128, 128), ARCH_A, 2), 2).mean()
        g_loss.backward()
        og.step()
    t = time.time() - t0
    report(name, t, fc.flops - f0, iters, f"threads={torch.get_num_threads()} iters={iters} torch={torch.__version__} max_rss_mb={max_rss_mb():.0f}")


def g_sample(iters, warmup):
    torch.manual_seed(1)
    G = M.SharedGenerator(256, 128).eval()
    fc = FlopCounter(G)
    t0 = f0 = 0
    with torch.no_grad():
        for i in range(warmup + iters):
            if i == warmup:
                t0, f0 = time.time(), fc.flops
            G(torch.randn(100, 128), ARCH_A, 2)
    t = time.time() - t0
    report("g-sample", t, fc.flops - f0, iters, f"threads={torch.get_num_threads()} iters={iters} images=100 max_rss_mb={max_rss_mb():.0f}")


SHAPES = [("g3x3_c256_8", 64, 256, 256, 8, 3, 0), ("g3x3_c256_16", 64, 256, 256, 16, 3, 0),
          ("g3x3_c256_32", 64, 256, 256, 32, 3, 0), ("g3x3_c128_32", 64, 128, 128, 32, 3, 0),
          ("g1x1_c256_32", 64, 256, 256, 32, 1, 0), ("d3x3_c128_16", 64, 128, 128, 16, 3, 0),
          ("d3x3_c64_32", 64, 64, 64, 32, 3, 0), ("deconv_c256_16", 64, 256, 256, 16, 2, 1)]


def conv(iters, warmup):
    for name, n, c, o, h, k, deconv in SHAPES:
        x = torch.randn(n, c, h, h)
        w = torch.randn(c, o, k, k) * 0.05 if deconv else torch.randn(o, c, k, k) * 0.05
        b = torch.zeros(o)
        def fwd(x, w):
            return F.conv_transpose2d(x, w, b, stride=2) if deconv else F.conv2d(x, w, b, padding=k // 2)
        with torch.no_grad():
            y = fwd(x, w)
        flops = 2.0 * (x.numel() * o * k * k if deconv else y.numel() * c * k * k)
        for p, pname in enumerate(["fwd", "dgrad", "wgrad"]):
            tsum = 0.0
            for i in range(warmup + iters):
                xx = x.clone().requires_grad_(p == 1)
                ww = w.clone().requires_grad_(p == 2)
                if p == 0:
                    t0 = time.time()
                    with torch.no_grad():
                        fwd(xx, ww)
                else:
                    y = fwd(xx, ww)
                    t0 = time.time()
                    y.backward(y.detach())
                if i >= warmup:
                    tsum += time.time() - t0
            report(f"conv:{name}:{pname}", tsum, flops * iters, iters, f"threads={torch.get_num_threads()} iters={iters}")


def inception(iters, warmup):
    nt = torch.get_num_threads()
    import gen_inception as GI        # sets 1 thread for its golden runs; restore ours
    torch.set_num_threads(nt)
    torch.manual_seed(4)
    net = GI.FIDInceptionV3().eval()
    x = torch.rand(50, 3, 299, 299) * 2 - 1
    t0 = 0
    with torch.no_grad():
        for i in range(warmup + iters):
            if i == warmup:
                t0 = time.time()
            net.fc(net.pool3(x))
    t = time.time() - t0
    report("inception", t, 2.0 * 5.713e9 * 50 * iters, iters,
           f"threads={torch.get_num_threads()} iters={iters} images=50 img_per_s={50 * iters / t:.1f} max_rss_mb={max_rss_mb():.0f}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("workload", nargs="?", default="all")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    w = a.workload
    if w in ("search-step", "all"):
        gan_step("search-step", 128, 64, a.iters, a.warmup)
    if w in ("derived-step", "all"):
        gan_step("derived-step", 256, 128, a.iters, a.warmup)
    if w in ("g-sample", "all"):
        g_sample(a.iters, a.warmup)
    if w in ("conv", "all"):
        conv(a.iters, a.warmup)
    if w in ("inception", "all"):
        inception(a.iters, a.warmup)


if __name__ == "__main__":
    main()
