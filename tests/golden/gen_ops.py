"""Golden files for the single ops of autogan.h: tests/golden/data/op_<case>.safetensors.

Run with Debian's python (torch 1.13):  /usr/bin/python3 tests/golden/gen_ops.py
Per case: float inputs x0, x1, ... (or as named), outputs y (y1, ...), upstream
gradients gy (gy1, ...) and the gradients of L = sum(y*gy) (+ sum(y1*gy1)) w.r.t. every
float input: gx0, gx1, ... Metadata: op, case, and the op's arguments as decimal strings.
"""
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st  # noqa: E402

torch.set_num_threads(1)
torch.set_default_dtype(torch.float32)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
WRITTEN = []


def fstr(v):
    """Decimal string of a float argument (Python repr, parseable by strtod)."""
    return repr(float(v))


def away_from(x, point=0.0, margin=0.05):
    """Push every element of x at least `margin` away from `point`."""
    d = x - point
    s = torch.where(d >= 0, torch.ones_like(d), -torch.ones_like(d))
    return point + s * (d.abs() + margin)


def run(case, op, fn, inputs, meta=None, extra=None, seed_gy=True):
    """inputs: dict name -> tensor; float tensors named x*, h0, c0 get gradients.
    fn(**inputs) returns a tensor or a tuple of differentiable outputs.
    extra: tensors stored after the inputs (not differentiated), e.g. an index."""
    leaves = {}
    for k, v in inputs.items():
        if v.is_floating_point():
            leaves[k] = v.detach().clone().requires_grad_(True)
        else:
            leaves[k] = v
    outs = fn(**leaves)
    if not isinstance(outs, tuple):
        outs = (outs,)
    onames = ["y"] + [f"y{i}" for i in range(1, len(outs))]
    gnames = ["gy"] + [f"gy{i}" for i in range(1, len(outs))]
    gys = [torch.randn(o.shape) for o in outs]
    L = sum((o * g).sum() for o, g in zip(outs, gys))
    flt = [k for k, v in leaves.items() if v.is_floating_point()]
    grads = torch.autograd.grad(L, [leaves[k] for k in flt], allow_unused=True)
    t = {}
    for k, v in inputs.items():
        t[k] = v
    for k, v in (extra or {}).items():
        t[k] = v
    for n, o in zip(onames, outs):
        t[n] = o.detach()
    for n, g in zip(gnames, gys):
        t[n] = g
    for k, g in zip(flt, grads):
        gname = "g" + k
        t[gname] = torch.zeros_like(leaves[k]) if g is None else g
    m = {"op": op, "case": case}
    for k, v in (meta or {}).items():
        m[k] = v
    path = os.path.join(OUT, f"op_{case}.safetensors")
    st.save(path, t, m)
    WRITTEN.append(path)
    return t


def seed(case):
    # a per-case seed derived from the name (stable across Python runs: no hash())
    s = 0
    for ch in case.encode():
        s = (s * 131 + ch) % 1000003
    torch.manual_seed(s)


# ---------------------------------------------------------------- linear
def gen_linear():
    for case, bias in (("linear", 1), ("linear_nobias", 0)):
        seed(case)
        inp = {"x0": torch.randn(3, 7), "x1": torch.randn(5, 7)}
        if bias:
            inp["x2"] = torch.randn(5)
            fn = lambda x0, x1, x2: F.linear(x0, x1, x2)
        else:
            fn = lambda x0, x1: F.linear(x0, x1)
        run(case, "linear", fn, inp, {"bias": str(bias)})


# ---------------------------------------------------------------- conv2d
def gen_conv2d():
    # case, N, C, H, W, O, kh, kw, sh, sw, ph, pw, bias
    cases = [
        ("conv3x3_s1p1", 2, 3, 7, 6, 4, 3, 3, 1, 1, 1, 1, 1),
        ("conv1x1", 2, 5, 5, 7, 3, 1, 1, 1, 1, 0, 0, 1),
        ("conv3x3_s2p0", 2, 3, 9, 9, 4, 3, 3, 2, 2, 0, 0, 1),
        ("conv1x7_p03", 2, 3, 5, 9, 4, 1, 7, 1, 1, 0, 3, 1),
        ("conv7x1_p30", 2, 3, 9, 5, 4, 7, 1, 1, 1, 3, 0, 1),
        ("conv5x5_p2", 2, 3, 7, 8, 4, 5, 5, 1, 1, 2, 2, 1),
        ("conv1x3_p01", 2, 4, 6, 7, 3, 1, 3, 1, 1, 0, 1, 1),
        ("conv3x1_p10", 2, 4, 7, 6, 3, 3, 1, 1, 1, 1, 0, 1),
        ("conv3x3_nobias", 2, 3, 6, 7, 4, 3, 3, 1, 1, 1, 1, 0),
        ("conv3x3_s2p1_odd", 2, 3, 7, 8, 5, 3, 3, 2, 2, 1, 1, 1),
        # >= 16 channels: the Winograd F(4x4, 3x3) path (partial tiles, padding 1 and 0)
        ("conv3x3_wino_c24", 3, 24, 11, 10, 20, 3, 3, 1, 1, 1, 1, 1),
        ("conv3x3_wino_p0", 2, 16, 9, 13, 32, 3, 3, 1, 1, 0, 0, 1),
        # few outputs (to_rgb): per-tap planes summed shifted
        ("conv3x3_to_rgb", 2, 16, 8, 7, 3, 3, 3, 1, 1, 1, 1, 1),
    ]
    for case, N, C, H, W, O, kh, kw, sh, sw, ph, pw, bias in cases:
        seed(case)
        inp = {"x0": torch.randn(N, C, H, W), "x1": torch.randn(O, C, kh, kw) * 0.5}
        if bias:
            inp["x2"] = torch.randn(O)
            fn = lambda x0, x1, x2, s=(sh, sw), p=(ph, pw): F.conv2d(x0, x1, x2, stride=s, padding=p)
        else:
            fn = lambda x0, x1, s=(sh, sw), p=(ph, pw): F.conv2d(x0, x1, None, stride=s, padding=p)
        run(case, "conv2d", fn, inp, {"stride_h": str(sh), "stride_w": str(sw),
                                      "pad_h": str(ph), "pad_w": str(pw), "bias": str(bias)})


# ---------------------------------------------------------------- conv_transpose2d
def gen_deconv():
    # case, N, I, H, W, O, k, stride, pad
    cases = [
        ("deconv_k2s2", 2, 3, 4, 5, 4, 2, 2, 0),
        ("deconv_k4s2p1", 2, 3, 4, 5, 4, 4, 2, 1),
        ("deconv_k3s1p1", 2, 3, 5, 6, 4, 3, 1, 1),
    ]
    for case, N, I, H, W, O, k, s, p in cases:
        seed(case)
        inp = {"x0": torch.randn(N, I, H, W), "x1": torch.randn(I, O, k, k) * 0.5,
               "x2": torch.randn(O)}
        fn = lambda x0, x1, x2, s=s, p=p: F.conv_transpose2d(x0, x1, x2, stride=s, padding=p)
        run(case, "conv_transpose2d", fn, inp, {"stride": str(s), "pad": str(p), "bias": "1"})


# ---------------------------------------------------------------- upsampling
def gen_upsample():
    for case, (H, W), (oh, ow) in (("nearest_x2", (4, 4), (8, 8)),
                                   ("nearest_x4", (4, 5), (16, 20)),
                                   ("nearest_odd", (5, 7), (8, 11))):
        seed(case)
        fn = lambda x0, oh=oh, ow=ow: F.interpolate(x0, size=(oh, ow), mode="nearest")
        run(case, "upsample_nearest", fn, {"x0": torch.randn(2, 3, H, W)},
            {"out_h": str(oh), "out_w": str(ow)})
    for case, (H, W), (oh, ow) in (("bilinear_x2", (4, 4), (8, 8)),
                                   ("bilinear_x4", (4, 5), (16, 20)),
                                   ("bilinear_odd", (5, 7), (8, 11)),
                                   ("bilinear_down", (9, 9), (5, 6))):
        seed(case)
        fn = lambda x0, oh=oh, ow=ow: F.interpolate(x0, size=(oh, ow), mode="bilinear",
                                                    align_corners=False)
        run(case, "upsample_bilinear", fn, {"x0": torch.randn(2, 3, H, W)},
            {"out_h": str(oh), "out_w": str(ow)})


# ---------------------------------------------------------------- pooling
def distinct(shape):
    n = 1
    for s in shape:
        n *= s
    return (torch.randperm(n).to(torch.float32) / n * 4.0 - 2.0).reshape(shape)


def gen_pool():
    for case, shape, k, s, p, cip in (("avgpool2", (2, 3, 7, 8), 2, 2, 0, 1),
                                      ("avgpool3_s1p1", (2, 3, 6, 7), 3, 1, 1, 0),
                                      ("avgpool3_s2p1", (2, 3, 7, 8), 3, 2, 1, 0)):
        seed(case)
        fn = lambda x0, k=k, s=s, p=p, cip=cip: F.avg_pool2d(x0, k, s, p, count_include_pad=bool(cip))
        run(case, "avg_pool2d", fn, {"x0": torch.randn(*shape)},
            {"kernel": str(k), "stride": str(s), "pad": str(p), "count_include_pad": str(cip)})
    for case, shape, k, s, p in (("maxpool3_s2", (2, 3, 9, 9), 3, 2, 0),
                                 ("maxpool3_s1p1", (2, 3, 6, 7), 3, 1, 1)):
        seed(case)
        fn = lambda x0, k=k, s=s, p=p: F.max_pool2d(x0, k, s, p)
        run(case, "max_pool2d", fn, {"x0": distinct(shape)},
            {"kernel": str(k), "stride": str(s), "pad": str(p)})


# ---------------------------------------------------------------- elementwise & reductions
def gen_elementwise():
    seed("relu")
    run("relu", "relu", lambda x0: F.relu(x0), {"x0": away_from(torch.randn(2, 3, 5, 6))})
    seed("tanh")
    run("tanh", "tanh", lambda x0: torch.tanh(x0), {"x0": torch.randn(2, 3, 5, 6) * 1.5})
    seed("sigmoid")
    run("sigmoid", "sigmoid", lambda x0: torch.sigmoid(x0), {"x0": torch.randn(2, 3, 5, 6) * 2})
    seed("add")
    run("add", "add", lambda x0, x1: x0 + x1,
        {"x0": torch.randn(2, 3, 5, 6), "x1": torch.randn(2, 3, 5, 6)})
    seed("mul")
    run("mul", "mul", lambda x0, x1: x0 * x1,
        {"x0": torch.randn(2, 3, 5, 6), "x1": torch.randn(2, 3, 5, 6)})
    seed("concat")
    run("concat", "concat", lambda x0, x1, x2: torch.cat([x0, x1, x2], dim=1),
        {"x0": torch.randn(2, 2, 5, 6), "x1": torch.randn(2, 3, 5, 6), "x2": torch.randn(2, 1, 5, 6)})
    seed("sum_hw")
    run("sum_hw", "sum_hw", lambda x0: x0.sum((2, 3)), {"x0": torch.randn(2, 4, 5, 7)})
    seed("mean")
    run("mean", "mean", lambda x0: x0.mean(), {"x0": torch.randn(2, 3, 5, 7)})


# ---------------------------------------------------------------- normalisation
def gen_norm():
    for case, training in (("batchnorm2d_train", True), ("batchnorm2d_eval", False)):
        seed(case)
        N, C, H, W = 3, 4, 5, 6
        x0 = torch.randn(N, C, H, W) * 1.5 + 0.3
        x1 = 1.0 + 0.2 * torch.randn(C)
        x2 = 0.2 * torch.randn(C)
        rm = torch.randn(C)
        rv = 0.5 + torch.rand(C)
        rm_work, rv_work = rm.clone(), rv.clone()

        def fn(x0, x1, x2):
            return F.batch_norm(x0, rm_work, rv_work, x1, x2, training=training,
                                momentum=0.1, eps=1e-5)
        # run() performs exactly one forward, so rm_work / rv_work get one update.
        t = {"x0": x0, "x1": x1, "x2": x2}
        res = run_bn(case, fn, t, rm, rv, rm_work, rv_work, training)
        assert res


def run_bn(case, fn, inputs, rm, rv, rm_work, rv_work, training):
    leaves = {k: v.detach().clone().requires_grad_(True) for k, v in inputs.items()}
    y = fn(**leaves)
    gy = torch.randn(y.shape)
    g = torch.autograd.grad((y * gy).sum(), [leaves["x0"], leaves["x1"], leaves["x2"]])
    if not training:
        assert torch.equal(rm_work, rm) and torch.equal(rv_work, rv)
    t = dict(inputs)
    t["running_mean"] = rm
    t["running_var"] = rv
    t["y"] = y.detach()
    t["running_mean_out"] = rm_work.clone()
    t["running_var_out"] = rv_work.clone()
    t["gy"] = gy
    t["gx0"], t["gx1"], t["gx2"] = g
    path = os.path.join(OUT, f"op_{case}.safetensors")
    st.save(path, t, {"op": "batchnorm2d", "case": case, "training": "1" if training else "0",
                      "momentum": fstr(0.1), "eps": fstr(1e-5)})
    WRITTEN.append(path)
    return True


def gen_instancenorm():
    seed("instancenorm2d")
    run("instancenorm2d", "instancenorm2d", lambda x0: F.instance_norm(x0, eps=1e-5),
        {"x0": torch.randn(2, 3, 5, 7) * 2 + 0.5}, {"eps": fstr(1e-5)})


# ---------------------------------------------------------------- spectral norm
def gen_spectral_norm():
    for case, make, training in (("sn_conv", lambda: nn.Conv2d(4, 5, 3), True),
                                 ("sn_linear", lambda: nn.Linear(6, 1, bias=False), True),
                                 ("sn_conv_eval", lambda: nn.Conv2d(4, 5, 3), False)):
        seed(case)
        mod = nn.utils.spectral_norm(make())
        mod.train(training)
        w0 = mod.weight_orig.detach().clone()
        u0 = mod.weight_u.detach().clone()
        v0 = mod.weight_v.detach().clone()
        # by hand, exactly like torch/nn/utils/spectral_norm.py
        W = w0.clone().requires_grad_(True)
        Wm = W.reshape(W.shape[0], -1)
        u, v = u0.clone(), v0.clone()
        if training:
            with torch.no_grad():
                v = F.normalize(torch.mv(Wm.t(), u), dim=0, eps=1e-12)
                u = F.normalize(torch.mv(Wm, v), dim=0, eps=1e-12)
            u, v = u.clone(), v.clone()
        sigma = torch.dot(u, torch.mv(Wm, v))
        Wsn = W / sigma
        gy = torch.randn(Wsn.shape)
        (gx1,) = torch.autograd.grad((Wsn * gy).sum(), [W])
        # the module's own hook must agree
        xin = torch.randn(2, 4, 5, 5) if isinstance(mod, nn.Conv2d) else torch.randn(2, 6)
        mod(xin)
        assert torch.allclose(mod.weight.detach(), Wsn.detach(), rtol=1e-6, atol=1e-7)
        assert torch.allclose(mod.weight_u, u, rtol=1e-6, atol=1e-7)
        assert torch.allclose(mod.weight_v, v, rtol=1e-6, atol=1e-7)
        t = {"x1": w0, "u": u0, "v": v0, "y": Wsn.detach(), "u_out": u.detach(),
             "v_out": v.detach(), "gy": gy, "gx1": gx1}
        path = os.path.join(OUT, f"op_{case}.safetensors")
        st.save(path, t, {"op": "spectral_norm", "case": case,
                          "training": "1" if training else "0", "eps": fstr(1e-12)})
        WRITTEN.append(path)


# ---------------------------------------------------------------- losses
def gen_losses():
    seed("hinge_d")
    N = 6
    d_real = away_from(torch.randn(N, 1) * 1.5 + 0.5, 1.0)
    d_fake = away_from(torch.randn(N, 1) * 1.5 - 0.5, -1.0)
    run("hinge_d", "hinge_d",
        lambda x0, x1: F.relu(1.0 - x0).mean() + F.relu(1.0 + x1).mean(),
        {"x0": d_real, "x1": d_fake})
    seed("hinge_g")
    run("hinge_g", "hinge_g", lambda x0: -x0.mean(), {"x0": torch.randn(N, 1)})
    seed("cross_entropy")
    logits = torch.randn(4, 5) * 2
    target = torch.tensor([2, 0, 4, 2], dtype=torch.int64)
    run("cross_entropy", "cross_entropy", lambda x0: F.cross_entropy(x0, target),
        {"x0": logits}, extra={"target": target})
    seed("log_softmax")
    run("log_softmax", "log_softmax", lambda x0: F.log_softmax(x0, dim=1),
        {"x0": torch.randn(3, 7) * 2})


# ---------------------------------------------------------------- controller pieces
def gen_embedding():
    seed("embedding")
    table = torch.randn(6, 4)
    index = torch.tensor([1, 3, 1, 5, 0], dtype=torch.int64)
    run("embedding", "embedding", lambda x1: F.embedding(index, x1), {"x1": table},
        extra={"index": index})


def gen_lstm_cell():
    seed("lstm_cell")
    N, I, Hd = 3, 7, 5
    cell = nn.LSTMCell(I, Hd)
    x0 = torch.randn(N, I)
    h0 = torch.randn(N, Hd) * 0.5
    c0 = torch.randn(N, Hd) * 0.5
    with torch.no_grad():
        for p in cell.parameters():
            p.mul_(2.0)  # stronger than the default +-1/sqrt(5) so gates saturate a bit
    W = [cell.weight_ih.detach().clone(), cell.weight_hh.detach().clone(),
         cell.bias_ih.detach().clone(), cell.bias_hh.detach().clone()]
    leaves = [t.clone().requires_grad_(True) for t in [x0, W[0], W[1], W[2], W[3], h0, c0]]
    xl, wih, whh, bih, bhh, hl, cl = leaves
    h1, c1 = torch._VF.lstm_cell(xl, (hl, cl), wih, whh, bih, bhh)
    # same as the module
    with torch.no_grad():
        hm, cm = cell(x0, (h0, c0))
    assert torch.allclose(hm, h1) and torch.allclose(cm, c1)
    # and the textbook gate math (order i, f, g, o)
    gates = xl @ wih.t() + bih + hl @ whh.t() + bhh
    i, f, g, o = gates.chunk(4, 1)
    c_ref = torch.sigmoid(f) * cl + torch.sigmoid(i) * torch.tanh(g)
    h_ref = torch.sigmoid(o) * torch.tanh(c_ref)
    assert torch.allclose(h_ref, h1, atol=1e-6) and torch.allclose(c_ref, c1, atol=1e-6)
    gy = torch.randn(N, Hd)
    gy1 = torch.randn(N, Hd)
    grads = torch.autograd.grad((h1 * gy).sum() + (c1 * gy1).sum(), leaves)
    t = {"x0": x0, "h0": h0, "c0": c0, "x1": W[0], "x2": W[1], "x3": W[2], "x4": W[3],
         "y": h1.detach(), "y1": c1.detach(), "gy": gy, "gy1": gy1,
         "gx0": grads[0], "gx1": grads[1], "gx2": grads[2], "gx3": grads[3], "gx4": grads[4],
         "gh0": grads[5], "gc0": grads[6]}
    path = os.path.join(OUT, "op_lstm_cell.safetensors")
    st.save(path, t, {"op": "lstm_cell", "case": "lstm_cell", "input_size": str(I),
                      "hidden_size": str(Hd)})
    WRITTEN.append(path)


def main():
    os.makedirs(OUT, exist_ok=True)
    gen_linear()
    gen_conv2d()
    gen_deconv()
    gen_upsample()
    gen_pool()
    gen_elementwise()
    gen_norm()
    gen_instancenorm()
    gen_spectral_norm()
    gen_losses()
    gen_embedding()
    gen_lstm_cell()
    # self-check: every file reads back
    for p in WRITTEN:
        st.load(p)
    print(f"wrote {len(WRITTEN)} files to {OUT} (torch {torch.__version__})")


if __name__ == "__main__":
    main()
