"""Golden files for the derived generators autogan_cifar10_a|b|c and for build/sample:
tests/golden/data/derived_<case>.pth (checkpoints as the authors' release holds them) and
derived_<case>.safetensors (z, the expected uint8 images, the float values they come from).

    /usr/bin/python3 tests/golden/gen_derived.py                    # writes the files
    /usr/bin/python3 tests/golden/gen_derived.py --ref /path/to/AutoGAN   # + checks against
        the authors' models/autogan_cifar10_{a,b,c}.py and models_search/ (not part of this project)

The derived Cell below is written from AUTOGAN-SPEC §1 (the authors' models/building_blocks.py):
[n1] -> ReLU -> interpolate x2 -> c1; h_skip_out = h; h += skip_in_ops.K(interpolate(skip_K));
[n2] -> ReLU -> c2; + c_sc(interpolate(x)). The authors' `h +=` is in place, so the skip
output handed on includes the skip terms (c1's output is a conv output: in place is fine
in PyTorch 1.13 too).

Images are made exactly as the reference's functions.validate: eval mode,
G(z).mul_(127.5).add_(127.5).clamp_(0, 255).permute(0, 2, 3, 1).to(torch.uint8) (truncation).
"""
import argparse
import os
import sys
import types

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st  # noqa: E402

torch.set_num_threads(1)
HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "data")

# (up mode, number of skip inputs, shortcut, norm) per cell, as models/autogan_cifar10_*.py
MODELS = {
    "a": [("nearest", 0, True, None), ("bilinear", 1, True, None), ("nearest", 2, False, None)],
    "b": [("nearest", 0, True, None), ("nearest", 1, True, None), ("nearest", 2, True, None)],
    "c": [("nearest", 0, True, "bn"), ("bilinear", 1, True, None), ("nearest", 2, False, None)],
}
ARCH = {"a": "1 0 1 1 1 0 0 1 1 1 0 1 0 3", "b": "1 0 1 1 1 0 1 1 1 1 0 1 1 3",
        "c": "1 1 1 1 1 0 0 1 1 1 0 1 0 3"}
GF, LATENT, N_IMG = 8, 16, 4
# case: model, bottom width, .pth form (zip / legacy), content (avg: training checkpoint
# dict with avg_gen_state_dict; gen: dict with gen_state_dict only; bare: the state_dict)
CASES = [
    ("a_bw4_zip_avg", "a", 4, "zip", "avg"),
    ("a_bw6_legacy_bare", "a", 6, "legacy", "bare"),
    ("b_bw4_legacy_avg", "b", 4, "legacy", "avg"),
    ("b_bw6_zip_bare", "b", 6, "zip", "bare"),
    ("c_bw4_zip_gen", "c", 4, "zip", "gen"),
    ("c_bw6_legacy_avg", "c", 6, "legacy", "avg"),
]


class Cell(nn.Module):
    def __init__(self, ch, up, num_skip_in, short_cut, norm):
        super().__init__()
        self.c1 = nn.Conv2d(ch, ch, 3, padding=1)
        self.c2 = nn.Conv2d(ch, ch, 3, padding=1)
        self.up, self.norm = up, norm
        if norm == "bn":
            self.n1, self.n2 = nn.BatchNorm2d(ch), nn.BatchNorm2d(ch)
        self.c_sc = nn.Conv2d(ch, ch, 1) if short_cut else None
        self.skip_in_ops = nn.ModuleList([nn.Conv2d(ch, ch, 1) for _ in range(num_skip_in)]) \
            if num_skip_in else None

    def forward(self, x, skips=()):
        h = self.n1(x) if self.norm else x
        h = F.interpolate(F.relu(h), scale_factor=2, mode=self.up)
        h = self.c1(h)
        if self.skip_in_ops:
            for ft, op in zip(skips, self.skip_in_ops):
                h = h + op(F.interpolate(ft, size=h.shape[-2:], mode=self.up))
        skip_out = h  # after the adds, as the authors' in-place h +=
        out = self.c2(F.relu(self.n2(h) if self.norm else h))
        if self.c_sc is not None:
            out = out + self.c_sc(F.interpolate(x, scale_factor=2, mode=self.up))
        return skip_out, out


class DerivedGenerator(nn.Module):
    def __init__(self, model, gf, latent, bw):
        super().__init__()
        self.gf, self.bw = gf, bw
        self.l1 = nn.Linear(latent, bw * bw * gf)
        for k, spec in enumerate(MODELS[model]):
            setattr(self, f"cell{k + 1}", Cell(gf, *spec))
        self.to_rgb = nn.Sequential(nn.BatchNorm2d(gf), nn.ReLU(), nn.Conv2d(gf, 3, 3, 1, 1), nn.Tanh())

    def forward(self, z):
        h = self.l1(z).view(-1, self.gf, self.bw, self.bw)
        s1, h = self.cell1(h)
        s2, h = self.cell2(h, (s1,))
        _, h = self.cell3(h, (s1, s2))
        return self.to_rgb(h)


def randomise(m, seed):
    """xavier convs (train_derived.py --init_type xavier_uniform), BN with random running
    statistics so that eval mode matters"""
    torch.manual_seed(seed)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, nn.Conv2d):
                nn.init.xavier_uniform_(mod.weight, 1.0)
            elif isinstance(mod, nn.BatchNorm2d):
                mod.weight.normal_(1.0, 0.2)
                mod.bias.normal_(0.0, 0.2)
                mod.running_mean.normal_(0.0, 0.2)
                mod.running_var.uniform_(0.5, 1.5)
                mod.num_batches_tracked.fill_(int(torch.randint(0, 1000, ())))


def images(G, z):
    G.eval()
    with torch.no_grad():
        x = G(z).mul_(127.5).add_(127.5).clamp_(0.0, 255.0).permute(0, 2, 3, 1)
    return x.contiguous(), x.to("cpu", torch.uint8)


def make_case(name, model, bw, form, content):
    seed = sum(ord(ch) * 31 ** i for i, ch in enumerate(name)) % 100003
    G = DerivedGenerator(model, GF, LATENT, bw)
    randomise(G, seed)
    torch.manual_seed(seed + 1)
    z = torch.randn(N_IMG, LATENT)
    x, img = images(G, z)
    sd = G.state_dict()
    if content == "bare":
        obj = sd
    else:
        # a training checkpoint as the reference's train.py saves it; the live weights
        # differ from the averaged ones, so loading the wrong one fails the test
        live = DerivedGenerator(model, GF, LATENT, bw)
        randomise(live, seed + 2)
        opt = torch.optim.Adam(live.parameters(), 2e-4, betas=(0.0, 0.9))
        live(torch.randn(2, LATENT)).mean().backward()
        opt.step()
        obj = {"epoch": 7, "model": "autogan_cifar10_" + model, "gen_state_dict": live.state_dict(),
               "dis_state_dict": {"l5.weight_orig": torch.randn(1, GF)},
               "gen_optimizer": opt.state_dict(), "best_fid": 12.42,
               "path_helper": {"prefix": "logs/x", "ckpt_path": "logs/x/Model"}}
        if content == "avg":
            obj["avg_gen_state_dict"] = sd
        else:  # only the live weights: those are then the expected ones
            obj["gen_state_dict"] = sd
    pth = os.path.join(OUT, f"derived_{name}.pth")
    torch.save(obj, pth, _use_new_zipfile_serialization=(form == "zip"))
    meta = {"case": name, "model": "autogan_cifar10_" + model, "arch": ARCH[model], "gf": str(GF),
            "latent": str(LATENT), "bw": str(bw), "form": form, "content": content}
    st.save(os.path.join(OUT, f"derived_{name}.safetensors"),
            {"z": z, "x": x, "img": img.to(torch.int64)}, meta, dtypes={"img": "U8"})
    # what the reference's test.py does with the file: torch.load, pick the dict, strict load
    ck = torch.load(pth)
    G2 = DerivedGenerator(model, GF, LATENT, bw)
    G2.load_state_dict(ck["avg_gen_state_dict"] if "avg_gen_state_dict" in ck else
                       ck["gen_state_dict"] if "gen_state_dict" in ck else ck)
    assert torch.equal(images(G2, z)[1], img)
    return G, z, img


def check_shared_equivalence(G, model, z):
    """the same function as the shared generator of gen_models.py at the model's arch"""
    import gen_models as gm
    S = gm.SharedGenerator(G.gf, LATENT, G.bw, 3)
    sd = S.state_dict()
    for k in range(1, 4):
        c = getattr(G, f"cell{k}")
        for src, dst in (("c1", "pre_conv1.conv"), ("c2", "pre_conv2.conv"), ("n1", "pre_conv1.bn"),
                         ("n2", "pre_conv2.bn"), ("c_sc", "c_sc")):
            for key, v in G.state_dict().items():
                if key.startswith(f"cell{k}.{src}."):
                    sd[f"cell{k}.{dst}." + key.split(".", 2)[2]] = v
        if c.skip_in_ops:
            for j in range(len(c.skip_in_ops)):
                for p in ("weight", "bias"):
                    sd[f"cell{k}.skip_in_ops.{j}.{p}"] = G.state_dict()[f"cell{k}.skip_in_ops.{j}.{p}"]
    for key in ("l1.weight", "l1.bias"):
        sd[key] = G.state_dict()[key]
    for key, v in G.state_dict().items():
        if key.startswith("to_rgb."):
            sd[key] = v
    S.load_state_dict(sd)
    S.eval()
    G.eval()
    arch = [int(a) for a in ARCH[model].split()]
    with torch.no_grad():
        d = (S(z, arch, 2) - G(z)).abs().max().item()
    assert d < 1e-6, (model, d)
    return d


def check_reference(ref_dir, G, model, bw, z):
    """the authors' own models/autogan_cifar10_<model>.py with our weights"""
    if ref_dir not in sys.path:
        sys.path.insert(0, ref_dir)
    import importlib
    mod = importlib.import_module(f"models.autogan_cifar10_{model}")
    args = types.SimpleNamespace(gf_dim=GF, latent_dim=LATENT, bottom_width=bw, df_dim=GF, d_spectral_norm=True)
    R = mod.Generator(args)
    R.load_state_dict(G.state_dict())  # strict: the same names, shapes, no extra weights
    R.eval()
    G.eval()
    with torch.no_grad():
        d = (R(z) - G(z)).abs().max().item()
    assert d == 0.0, (model, d)
    return d


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ref", help="directory of the authors' AutoGAN code (models/)")
    a = ap.parse_args()
    os.makedirs(OUT, exist_ok=True)
    for name, model, bw, form, content in CASES:
        G, z, img = make_case(name, model, bw, form, content)
        d = check_shared_equivalence(G, model, z)
        line = f"derived_{name}: {os.path.getsize(os.path.join(OUT, f'derived_{name}.pth'))} bytes, " \
               f"shared model at arch {ARCH[model]} agrees to {d:.1e}"
        if a.ref:
            line += f", authors' models/autogan_cifar10_{model}.py to {check_reference(a.ref, G, model, bw, z):.1e}"
        print(line)
    # the released checkpoints are gf 256: the state_dict of a must be the one listed in
    # autogan-state-dict.txt (31 entries, 4405251 parameters)
    big = DerivedGenerator("a", 256, 128, 4)
    assert len(big.state_dict()) == 31 and sum(p.numel() for p in big.parameters()) == 4405251
    print(f"torch {torch.__version__}")


if __name__ == "__main__":
    main()
