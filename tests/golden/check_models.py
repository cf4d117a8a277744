"""Self-check of the gan_*.safetensors files: a functional re-implementation that reads
ONLY the file (tensors + metadata), the way the C side does, and reproduces fake0,
d_real0, d_fake0, gout0, d_loss0, g_loss0 and the t=0 gradients.

    /usr/bin/python3 tests/golden/check_models.py
    /usr/bin/python3 tests/golden/check_models.py --ref /path/to/AutoGAN

With --ref (a checkout of the authors' code, which is not part of this project) it also
replays every file with the authors' own models_search.shared_gan Generator/Discriminator
(all iterations: Adam steps, running statistics, spectral-norm u/v, the eval forward) and
compares every stored tensor. Their PostGenBlock output is cloned (`relu(h).clone()`):
PyTorch >= 1.x refuses the in-place `h +=` / `final_out +=` on a ReLU output that its
backward reads; the clone keeps the PyTorch 1.0 forward exactly and gives the true gradients.
"""
import argparse
import types
import glob
import os
import sys

import torch
import torch.nn.functional as F

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st  # noqa: E402

torch.set_num_threads(1)


def bn_train(x, P, pre, stats):
    """batch-stat BN; records the running-stat update in `stats` (not used for the check)."""
    return F.batch_norm(x, stats[pre + "running_mean"], stats[pre + "running_var"],
                        P[pre + "weight"], P[pre + "bias"], True, 0.1, 1e-5)


def G_forward(P, z, arch, stage, gf, bw, stats):
    def up(h, mode, pre):
        if mode == 2:
            return F.conv_transpose2d(h, P[pre + "weight"], P[pre + "bias"], stride=2)
        if mode == 0:
            return F.interpolate(h, scale_factor=2, mode="bilinear", align_corners=False)
        return F.interpolate(h, scale_factor=2, mode="nearest")

    def norm(h, n, pre):
        if n == 1:
            return bn_train(h, P, pre, stats)
        if n == 2:
            return F.instance_norm(h, eps=1e-5)
        return h

    def block(x, c, conv, n, u, first):
        name = f"{c}.{'post' if conv == 0 else 'pre'}_conv{1 if first else 2}."
        if conv == 0:
            h = up(x, u, name + "deconv.") if first else x
            h = F.conv2d(h, P[name + "conv.weight"], P[name + "conv.bias"], padding=1)
            return F.relu(norm(h, n, name + "bn."))
        h = F.relu(norm(x, n, name + "bn."))
        if first:
            h = up(h, u, name + "deconv.")
        return F.conv2d(h, P[name + "conv.weight"], P[name + "conv.bias"], padding=1)

    def cell(k, x, tok, skips):
        c = f"cell{k}"
        conv, n, u, sc = tok[:4]
        h = block(x, c, conv, n, u, True)
        skip_out = h
        nsk = k - 1
        for j in range(nsk):
            if not (tok[4] >> (nsk - 1 - j)) & 1:  # bit 0 = most recent cell
                continue
            ft = skips[j]
            if u == 2:
                if h.shape[-1] // ft.shape[-1] == 2:
                    r = F.conv_transpose2d(ft, P[c + ".skip_deconvx2.weight"],
                                           P[c + ".skip_deconvx2.bias"], stride=2)
                else:
                    r = F.conv_transpose2d(ft, P[c + ".skip_deconvx4.0.weight"],
                                           P[c + ".skip_deconvx4.0.bias"], stride=2)
                    r = F.conv_transpose2d(r, P[c + ".skip_deconvx4.1.weight"],
                                           P[c + ".skip_deconvx4.1.bias"], stride=2)
            else:
                r = F.interpolate(ft, size=h.shape[-2:], mode="bilinear" if u == 0 else "nearest",
                                  **({"align_corners": False} if u == 0 else {}))
            h = h + F.conv2d(r, P[f"{c}.skip_in_ops.{j}.weight"], P[f"{c}.skip_in_ops.{j}.bias"])
            skip_out = h  # block 1 output plus the skip terms (the reference's in-place h +=)
        out = block(h, c, conv, n, u, False)
        if sc:
            out = out + F.conv2d(up(x, u, c + ".deconv_sc."), P[c + ".c_sc.weight"], P[c + ".c_sc.bias"])
        return skip_out, out

    h = F.linear(z, P["l1.weight"], P["l1.bias"]).view(-1, gf, bw, bw)
    toks = [arch[0:4], arch[4:9], arch[9:14]]
    skips = []
    for k in range(1, stage + 2):
        s, h = cell(k, h, toks[k - 1], skips)
        skips.append(s)
    h = F.relu(bn_train(h, P, "to_rgb.0.", stats))
    return torch.tanh(F.conv2d(h, P["to_rgb.2.weight"], P["to_rgb.2.bias"], padding=1))


def D_forward(P, UV, x, stage):
    def sn(pre):
        W = P[pre + "weight_orig"]
        Wm = W.reshape(W.shape[0], -1)
        with torch.no_grad():
            v = F.normalize(Wm.t() @ UV[pre + "weight_u"], dim=0, eps=1e-12)
            u = F.normalize(Wm @ v, dim=0, eps=1e-12)
        UV[pre + "weight_u"], UV[pre + "weight_v"] = u, v  # persistent update
        return W / torch.dot(u, Wm @ v)

    def conv(h, pre, pad):
        return F.conv2d(h, sn(pre), P[pre + "bias"], padding=pad)

    def blk(h, b):
        if b == 1:
            r = F.avg_pool2d(conv(F.relu(conv(h, "block1.c1.", 1)), "block1.c2.", 1), 2)
            return r + conv(F.avg_pool2d(h, 2), "block1.c_sc.", 0)
        r = conv(F.relu(conv(F.relu(h), f"block{b}.c1.", 1)), f"block{b}.c2.", 1)
        if b == 2:
            return F.avg_pool2d(r, 2) + F.avg_pool2d(conv(h, "block2.c_sc.", 0), 2)
        return r + h

    h = x
    for b in [1, 2, 3][:stage + 1] + [4]:
        h = blk(h, b)
    h = F.relu(h).sum(2).sum(2)
    return F.linear(h, sn("l5."))


def check(path):
    t, m = st.load(path)
    stage, arch = int(m["stage"]), [int(a) for a in m["arch"].split()]
    gf, bw = int(m["gf"]), int(m["bw"])
    PG = {k[2:]: v.clone().requires_grad_(v.is_floating_point() and "running" not in k)
          for k, v in t.items() if k.startswith("G.")}
    PD = {k[2:]: v.clone().requires_grad_(not k.endswith(("weight_u", "weight_v")))
          for k, v in t.items() if k.startswith("D.")}
    UV = {k: v.detach().clone() for k, v in PD.items() if k.endswith(("weight_u", "weight_v"))}
    stats = {k: v.detach().clone() for k, v in PG.items() if "running" in k}
    d_real = D_forward(PD, UV, t["real0"], stage)
    with torch.no_grad():
        fake = G_forward(PG, t["zd0"], arch, stage, gf, bw, stats)
    d_fake = D_forward(PD, UV, fake, stage)
    d_loss = F.relu(1 - d_real).mean() + F.relu(1 + d_fake).mean()
    gD = torch.autograd.grad(d_loss, [PD[k] for k in PD if PD[k].requires_grad], allow_unused=True)
    worst = 0.0

    def cmp(name, got, want, tol=1e-4):
        nonlocal worst
        err = float((got.detach() - want).abs().max()) / (1.0 + float(want.abs().max()))
        worst = max(worst, err)
        assert err < tol, (path, name, err)

    cmp("fake0", fake, t["fake0"])
    cmp("d_real0", d_real, t["d_real0"])
    cmp("d_fake0", d_fake, t["d_fake0"])
    cmp("d_loss0", d_loss, t["d_loss0"])
    for k, g in zip([k for k in PD if PD[k].requires_grad], gD):
        cmp("gradD." + k, torch.zeros_like(PD[k]) if g is None else g, t["gradD." + k])
    # G step at t=0 uses the D parameters after one Adam step; rebuild them from the step
    # rule (beta1 = 0: p -= lr * g / (|g| / sqrt(1 - beta2) + eps) at the first step).
    lr, b2, eps = float(m["lr"]), float(m["beta2"]), float(m["adam_eps"])
    PD1 = {}
    for k, v in PD.items():
        if v.requires_grad:
            g = t["gradD." + k]
            PD1[k] = (v.detach() - lr * g / ((g * g * (1 - b2)).sqrt() / (1 - b2) ** 0.5 + eps))
        else:
            PD1[k] = v.detach()
    gout = D_forward(PD1, UV, G_forward(PG, t["zg0"], arch, stage, gf, bw, stats), stage)
    g_loss = -gout.mean()
    keys = [k for k in PG if PG[k].requires_grad]
    gG = torch.autograd.grad(g_loss, [PG[k] for k in keys], allow_unused=True)
    cmp("gout0", gout, t["gout0"])
    cmp("g_loss0", g_loss, t["g_loss0"])
    for k, g in zip(keys, gG):
        cmp("gradG." + k, torch.zeros_like(PG[k]) if g is None else g, t["gradG." + k])
    return worst


def check_with_reference(path, ref_dir):
    """Replays the whole file with the authors' modules; returns the worst relative error."""
    if ref_dir not in sys.path:
        sys.path.insert(0, ref_dir)
    import models_search.building_blocks_search as bbs
    from models_search.shared_gan import Discriminator, Generator
    if not getattr(bbs.PostGenBlock, "_cloned", False):
        orig = bbs.PostGenBlock.forward
        bbs.PostGenBlock.forward = lambda self, x: orig(self, x).clone()
        bbs.PostGenBlock._cloned = True
    t, m = st.load(path)
    stage, arch = int(m["stage"]), [int(a) for a in m["arch"].split()]
    args = types.SimpleNamespace(gf_dim=int(m["gf"]), df_dim=int(m["df"]), latent_dim=int(m["latent"]),
                                 bottom_width=int(m["bw"]), d_spectral_norm=True)
    assert int(m["out_ch"]) == 3 and int(m["n_critic"]) == 1
    G, D = Generator(args), Discriminator(args)
    G.load_state_dict({k[2:]: v for k, v in t.items() if k.startswith("G.")})
    D.load_state_dict({k[2:]: v for k, v in t.items() if k.startswith("D.")})
    G.set_arch(arch, stage)
    D.cur_stage = stage
    G.train()
    D.train()
    lr, b1, b2, eps = float(m["lr"]), float(m["beta1"]), float(m["beta2"]), float(m["adam_eps"])
    opt_G = torch.optim.Adam(G.parameters(), lr=lr, betas=(b1, b2), eps=eps)
    opt_D = torch.optim.Adam(D.parameters(), lr=lr, betas=(b1, b2), eps=eps)
    for p in list(G.parameters()) + list(D.parameters()):
        p.grad = torch.zeros_like(p)
    worst = 0.0

    def cmp(name, got, tol=1e-5):
        nonlocal worst
        want = t[name]
        got = got.detach()
        if not want.is_floating_point():
            assert torch.equal(got, want), (path, name)
            return
        err = float((got - want).abs().max()) / (1e-6 + float(want.abs().max()))
        worst = max(worst, err)
        assert err < tol, (path, name, err)

    for it in range(int(m["iters"])):
        real, zd, zg = t[f"real{it}"], t[f"zd{it}"], t[f"zg{it}"]
        opt_D.zero_grad(set_to_none=False)
        d_real = D(real)
        fake = G(zd).detach()
        d_fake = D(fake)
        d_loss = F.relu(1.0 - d_real).mean() + F.relu(1.0 + d_fake).mean()
        d_loss.backward()
        if it == 0:
            cmp("fake0", fake)
            cmp("d_real0", d_real)
            cmp("d_fake0", d_fake)
            for k, p in D.named_parameters():
                cmp("gradD." + k, p.grad, 1e-4)
        cmp(f"d_loss{it}", d_loss)
        opt_D.step()
        opt_G.zero_grad(set_to_none=False)
        g_out = D(G(zg))
        g_loss = -g_out.mean()
        g_loss.backward()
        if it == 0:
            cmp("gout0", g_out)
            for k, p in G.named_parameters():
                cmp("gradG." + k, p.grad, 1e-4)
        cmp(f"g_loss{it}", g_loss)
        opt_G.step()
    # after the steps: parameters can differ by Adam's rounding-noise steps where a true
    # gradient is 0 (biases before a batch-statistics BatchNorm), so compare loosely
    for k, v in G.state_dict().items():
        cmp("G3." + k, v, 1e-2)
    for k, v in D.state_dict().items():
        cmp("D3." + k, v, 1e-2)
    G.eval()
    with torch.no_grad():
        cmp("gen_eval", G(t["zd0"]), 1e-2)
    return worst


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ref", help="directory of the authors' AutoGAN code (models_search/)")
    a = ap.parse_args()
    files = sorted(glob.glob(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                          "data", "gan_*.safetensors")))
    for p in files:
        print(f"{os.path.basename(p)}: ok, worst relative error {check(p):.2e}")
        if a.ref:
            print(f"{os.path.basename(p)}: authors' modules agree, worst relative error "
                  f"{check_with_reference(p, os.path.abspath(a.ref)):.2e}")


if __name__ == "__main__":
    main()
