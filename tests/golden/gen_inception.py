"""Golden file for the FID Inception-v3: tests/golden/data/inception_forward.safetensors.

Run with Debian's python (torch 1.13):  /usr/bin/python3 tests/golden/gen_inception.py [--check-c]

The network is pytorch-fid's FID Inception (FIDInceptionA/C/E_1/E_2 blocks, stock Mixed_6a
and Mixed_7a, BN eps 0.001 in eval mode, convs without bias), written out here so that no
torchvision or download is needed. Its weights are NOT the real ones: every tensor is drawn
from autogan.h's PCG32 (ported below bit for bit) by the scheme of tests/inception_weights.h,
so the C test can rebuild the same state dict with inception_random_weights().

--check-c compiles a small C program with tests/inception_weights.h and checks that the C
state dict equals the Python one byte for byte (needs cc; dev-time only).
"""
import math
import os
import re
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import st  # noqa: E402

torch.set_num_threads(1)
ROOT = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(HERE, "data")
WEIGHTS_H = os.path.join(ROOT, "tests", "inception_weights.h")

# ---------------------------------------------------------------------------------------
# autogan.h's ag_rng (PCG32, O'Neill), bit for bit. u32 is vectorised with jump-ahead
# tables (state_k = A^k s + inc (A^(k-1) + ... + 1) mod 2^64). Box-Muller uses the C
# library's log/cos/sqrt through Python's math module, tabulated over all 2^24 inputs.

MASK = (1 << 64) - 1
MULT = 6364136223846793005
WEIGHT_SEED, WEIGHT_SEQ = 20151205, 3   # ag_rng_seed(&rng, 20151205, 3)
IMAGE_SEED, IMAGE_SEQ = 20151205, 4     # the test images


class Rng:
    BLOCK = 1 << 16
    _jump = None

    def __init__(self, seed, seq):
        self.inc = ((seq << 1) | 1) & MASK
        self.state = 0
        self.u32(1)
        self.state = (self.state + seed) & MASK
        self.u32(1)

    @classmethod
    def _tables(cls):
        if cls._jump is None:
            a = np.empty(cls.BLOCK + 1, np.uint64)
            s = np.empty(cls.BLOCK + 1, np.uint64)
            ak, sk = 1, 0
            for k in range(cls.BLOCK + 1):
                a[k], s[k] = ak, sk
                sk = (sk + ak) & MASK
                ak = (ak * MULT) & MASK
            cls._jump = (a, s)
        return cls._jump

    def u32(self, n):
        a, s = self._tables()
        out = np.empty(n, np.uint32)
        inc, i = np.uint64(self.inc), 0
        while i < n:
            m = min(self.BLOCK, n - i)
            old = a[:m] * np.uint64(self.state) + s[:m] * inc          # wraps mod 2^64
            xs = (((old >> np.uint64(18)) ^ old) >> np.uint64(27)).astype(np.uint32)
            rot = (old >> np.uint64(59)).astype(np.uint32)
            out[i:i + m] = (xs >> rot) | (xs << ((np.uint32(32) - rot) & np.uint32(31)))
            self.state = (int(a[m]) * self.state + int(s[m]) * self.inc) & MASK
            i += m
        return out

    _bm = None

    @classmethod
    def _box_muller(cls):
        if cls._bm is None:
            n = 1 << 24
            r = np.fromiter((math.sqrt(-2.0 * math.log((k + 1.0) / 16777216.0)) for k in range(n)),
                            np.float64, n)
            c = np.fromiter((math.cos(6.283185307179586 * (k / 16777216.0)) for k in range(n)),
                            np.float64, n)
            cls._bm = (r, c)
        return cls._bm

    def normal(self, n):                      # ag_rng_normal, n times
        r, c = self._box_muller()
        u = self.u32(2 * n) >> np.uint32(8)
        return (r[u[0::2]] * c[u[1::2]]).astype(np.float32)

    def uniform(self, n):                     # ag_rng_uniform, n times
        return (self.u32(n) >> np.uint32(8)).astype(np.float32) * np.float32(1.0 / 16777216.0)

    def fill_normal(self, n, mean, std):      # float32 arithmetic, as the C
        return np.float32(mean) + np.float32(std) * self.normal(n)

    def fill_uniform(self, n, lo, hi):
        lo, hi = np.float32(lo), np.float32(hi)
        return lo + (hi - lo) * self.uniform(n)


# ---------------------------------------------------------------------------------------
# The weight scheme (keep in sync with the comment and code of tests/inception_weights.h).
BN_WEIGHT = (0.75, 1.25)      # uniform [lo, hi); widths are powers of two, so
BN_BIAS = (-0.125, 0.125)     # lo + (hi-lo)*u is exact before the final rounding and an
BN_MEAN = (-0.125, 0.125)     # FMA-contracting compiler gives the same floats
BN_VAR = (0.75, 1.25)
FC_BIAS = (-0.5, 0.5)


def random_weights(convs):
    """convs: [(prefix, I, O, kh, kw)] in table order -> dict key -> float32 numpy array."""
    rng = Rng(WEIGHT_SEED, WEIGHT_SEQ)
    sd = {}
    for prefix, i, o, kh, kw in convs:
        fan_in = i * kh * kw
        sd[prefix + ".conv.weight"] = rng.fill_normal(o * fan_in, 0.0, math.sqrt(2.0 / fan_in)).reshape(o, i, kh, kw)
        sd[prefix + ".bn.weight"] = rng.fill_uniform(o, *BN_WEIGHT)
        sd[prefix + ".bn.bias"] = rng.fill_uniform(o, *BN_BIAS)
        sd[prefix + ".bn.running_mean"] = rng.fill_uniform(o, *BN_MEAN)
        sd[prefix + ".bn.running_var"] = rng.fill_uniform(o, *BN_VAR)
    sd["fc.weight"] = rng.fill_normal(1008 * 2048, 0.0, math.sqrt(1.0 / 2048)).reshape(1008, 2048)
    sd["fc.bias"] = rng.fill_uniform(1008, *FC_BIAS)
    return sd


def c_table():
    """The conv table of tests/inception_weights.h: [(prefix, I, O, kh, kw)]."""
    text = open(WEIGHTS_H).read()
    body = text[text.index("inception_convs[] = {"):]
    body = body[:body.index("};")]
    return [(p, int(i), int(o), int(h), int(w))
            for p, i, o, h, w in re.findall(r'\{\s*"([A-Za-z0-9_.]+)"\s*,\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*\}', body)]


# ---------------------------------------------------------------------------------------
# pytorch-fid's FID Inception-v3

class BasicConv2d(nn.Module):
    def __init__(self, i, o, k, stride=1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(i, o, k, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(o, eps=0.001)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


def avg3(x):
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)


def chain(mods, x):
    for m in mods:
        x = m(x)
    return x


class FIDInceptionA(nn.Module):
    def __init__(self, i, pool_features):
        super().__init__()
        self.branch1x1 = BasicConv2d(i, 64, 1)
        self.branch5x5_1 = BasicConv2d(i, 48, 1)
        self.branch5x5_2 = BasicConv2d(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(i, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, padding=1)
        self.branch_pool = BasicConv2d(i, pool_features, 1)

    def forward(self, x):
        return torch.cat([self.branch1x1(x),
                          chain([self.branch5x5_1, self.branch5x5_2], x),
                          chain([self.branch3x3dbl_1, self.branch3x3dbl_2, self.branch3x3dbl_3], x),
                          self.branch_pool(avg3(x))], 1)


class InceptionB(nn.Module):          # Mixed_6a, stock
    def __init__(self, i):
        super().__init__()
        self.branch3x3 = BasicConv2d(i, 384, 3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(i, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, stride=2)

    def forward(self, x):
        return torch.cat([self.branch3x3(x),
                          chain([self.branch3x3dbl_1, self.branch3x3dbl_2, self.branch3x3dbl_3], x),
                          F.max_pool2d(x, 3, stride=2)], 1)


class FIDInceptionC(nn.Module):
    def __init__(self, i, c7):
        super().__init__()
        self.branch1x1 = BasicConv2d(i, 192, 1)
        self.branch7x7_1 = BasicConv2d(i, c7, 1)
        self.branch7x7_2 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(i, c7, 1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(i, 192, 1)

    def forward(self, x):
        return torch.cat([self.branch1x1(x),
                          chain([self.branch7x7_1, self.branch7x7_2, self.branch7x7_3], x),
                          chain([self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3,
                                 self.branch7x7dbl_4, self.branch7x7dbl_5], x),
                          self.branch_pool(avg3(x))], 1)


class InceptionD(nn.Module):          # Mixed_7a, stock
    def __init__(self, i):
        super().__init__()
        self.branch3x3_1 = BasicConv2d(i, 192, 1)
        self.branch3x3_2 = BasicConv2d(192, 320, 3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(i, 192, 1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, 3, stride=2)

    def forward(self, x):
        return torch.cat([chain([self.branch3x3_1, self.branch3x3_2], x),
                          chain([self.branch7x7x3_1, self.branch7x7x3_2, self.branch7x7x3_3,
                                 self.branch7x7x3_4], x),
                          F.max_pool2d(x, 3, stride=2)], 1)


class FIDInceptionE(nn.Module):       # E_1 (Mixed_7b): avg pool; E_2 (Mixed_7c): MAX pool
    def __init__(self, i, max_pool):
        super().__init__()
        self.max_pool = max_pool
        self.branch1x1 = BasicConv2d(i, 320, 1)
        self.branch3x3_1 = BasicConv2d(i, 384, 1)
        self.branch3x3_2a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(i, 448, 1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(i, 192, 1)

    def forward(self, x):
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        d = torch.cat([self.branch3x3dbl_3a(d), self.branch3x3dbl_3b(d)], 1)
        p = F.max_pool2d(x, 3, stride=1, padding=1) if self.max_pool else avg3(x)
        return torch.cat([self.branch1x1(x), b3, d, self.branch_pool(p)], 1)


class FIDInceptionV3(nn.Module):
    STAGES = ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "maxpool",
              "Conv2d_3b_1x1", "Conv2d_4a_3x3", "maxpool",
              "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d",
              "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c")

    def __init__(self):
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, 1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3)
        self.Mixed_5b = FIDInceptionA(192, 32)
        self.Mixed_5c = FIDInceptionA(256, 64)
        self.Mixed_5d = FIDInceptionA(288, 64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = FIDInceptionC(768, 128)
        self.Mixed_6c = FIDInceptionC(768, 160)
        self.Mixed_6d = FIDInceptionC(768, 160)
        self.Mixed_6e = FIDInceptionC(768, 192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = FIDInceptionE(1280, False)
        self.Mixed_7c = FIDInceptionE(2048, True)
        self.fc = nn.Linear(2048, 1008)

    def pool3(self, x, trace=None):
        for name in self.STAGES:
            x = F.max_pool2d(x, 3, stride=2) if name == "maxpool" else getattr(self, name)(x)
            if trace is not None:
                trace.append((name, x))
        return x.mean((2, 3))

    def convs(self):
        """[(prefix, I, O, kh, kw)] in module (= state_dict) order."""
        return [(n, m.conv.in_channels, m.conv.out_channels) + tuple(m.conv.kernel_size)
                for n, m in self.named_modules() if isinstance(m, BasicConv2d)]


# ---------------------------------------------------------------------------------------
# Preprocessing

def resize_tf1(img, out=299):
    """TF1 ResizeBilinear, align_corners=False, legacy (no half-pixel) rule, in float32 as
    TF: scale = (float)in/out; src = dst*scale; x0 = floor(src), x1 = min(x0+1, in-1),
    w = src - x0; lerp in x, then in y. img: HWC float32 -> HWC float32."""
    def weights(n_in):
        scale = np.float32(n_in) / np.float32(out)
        src = np.arange(out, dtype=np.float32) * scale
        x0 = np.floor(src)
        w = (src - x0).astype(np.float32)
        x0 = x0.astype(np.int64)
        return x0, np.minimum(x0 + 1, n_in - 1), w
    y0, y1, wy = weights(img.shape[0])
    x0, x1, wx = weights(img.shape[1])
    wx = wx[None, :, None]
    top = img[y0][:, x0] + (img[y0][:, x1] - img[y0][:, x0]) * wx
    bot = img[y1][:, x0] + (img[y1][:, x1] - img[y1][:, x0]) * wx
    return (top + (bot - top) * wy[:, None, None]).astype(np.float32)


def resize_tf1_f64(img, out=299):
    """The same rule in float64 with the exact ratio (to bound the float32 rounding)."""
    def weights(n_in):
        src = np.arange(out, dtype=np.float64) * (n_in / out)
        x0 = np.floor(src)
        return x0.astype(np.int64), np.minimum(x0.astype(np.int64) + 1, n_in - 1), src - x0
    img = img.astype(np.float64)
    y0, y1, wy = weights(img.shape[0])
    x0, x1, wx = weights(img.shape[1])
    wx = wx[None, :, None]
    top = img[y0][:, x0] + (img[y0][:, x1] - img[y0][:, x0]) * wx
    bot = img[y1][:, x0] + (img[y1][:, x1] - img[y1][:, x0]) * wx
    return top + (bot - top) * wy[:, None, None]


def preprocess_tf(u8):
    """uint8 HWC -> float32 [3,299,299]: TF1 resize, then (x - 128) / 128."""
    x = resize_tf1(u8.astype(np.float32))
    x = (x - np.float32(128)) / np.float32(128)
    return np.ascontiguousarray(x.transpose(2, 0, 1))


def preprocess_ptfid(u8):
    """pytorch-fid: x/255, F.interpolate(299, bilinear, align_corners=False), 2x - 1."""
    x = torch.from_numpy(u8.astype(np.float32)).permute(2, 0, 1)[None] / 255.0
    x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
    return (2 * x - 1)[0]


def make_images():
    """Three 32x32 RGB uint8 images (two random, one smooth gradient) and one 48x48 random
    one. Random bytes are the top 8 bits of ag_rng_u32 from ag_rng_seed(20151205, 4):
    image 0, image 1, then the 48x48 image, each in HWC order."""
    rng = Rng(IMAGE_SEED, IMAGE_SEQ)
    r0 = (rng.u32(32 * 32 * 3) >> np.uint32(24)).astype(np.uint8).reshape(32, 32, 3)
    r1 = (rng.u32(32 * 32 * 3) >> np.uint32(24)).astype(np.uint8).reshape(32, 32, 3)
    r48 = (rng.u32(48 * 48 * 3) >> np.uint32(24)).astype(np.uint8).reshape(48, 48, 3)
    yy, xx = np.meshgrid(np.arange(32), np.arange(32), indexing="ij")
    grad = np.stack([(255 * xx) // 31, (255 * yy) // 31, (255 * (31 - xx + yy)) // 62], -1).astype(np.uint8)
    return np.stack([r0, r1, grad]), r48[None]


# The rows of the 299x299 preprocessed image 0 that are stored (a full image is 1 MB):
# every 9th row, and both borders and the middle.
INPUT_ROWS = sorted(set(range(0, 299, 9)) | {1, 149, 150, 297, 298})


# ---------------------------------------------------------------------------------------

def check_c(sd, convs):
    """Build the C state dict with tests/inception_weights.h and compare every byte."""
    src = r'''
#define AUTOGAN_IMPLEMENTATION
#include "autogan.h"
#include "tests/inception_weights.h"
#include <stdio.h>
int main(int argc, char **argv) {
    ag_array_list l; ag_error e; int i; FILE *f;
    memset(&l, 0, sizeof l);
    if (argc < 2 || inception_random_weights(&l, &e)) { fprintf(stderr, "%s\n", e.msg); return 1; }
    f = fopen(argv[1], "wb");
    for (i = 0; i < l.count; i++) {
        int d; fprintf(f, "%s", l.items[i].name);
        for (d = 0; d < l.items[i].ndim; d++) fprintf(f, " %lld", (long long)l.items[i].shape[d]);
        fprintf(f, "\n"); fwrite(l.items[i].data, 1, l.items[i].nbytes, f);
    }
    fclose(f); ag_array_list_free(&l); return 0;
}
'''
    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, "w.c"), "w") as f:
            f.write(src)
        exe, dump = os.path.join(d, "w"), os.path.join(d, "w.bin")
        subprocess.run(["cc", "-O2", "-std=c99", "-Wall", "-Wextra", "-pedantic", "-Werror",
                        "-I", ROOT, "-o", exe, os.path.join(d, "w.c"), "-lm"], check=True)
        subprocess.run([exe, dump], check=True)
        ref = b"".join(("%s %s\n" % (k, " ".join(str(s) for s in v.shape))).encode() + v.tobytes()
                       for k, v in sd.items())
        got = open(dump, "rb").read()
    assert got == ref, "C weights differ from the Python port"
    print(f"check-c: the C state dict equals the Python one ({len(sd)} arrays, {len(got)} bytes)")


def rel(a, b):
    """max |a-b| / max |b| and the largest elementwise |a-b|/|b| over |b| > 1e-3 max |b|."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    m = np.abs(b).max()
    big = np.abs(b) > 1e-3 * m
    return float(np.abs(a - b).max() / m), float((np.abs(a - b)[big] / np.abs(b)[big]).max())


def main():
    os.makedirs(OUT, exist_ok=True)
    net = FIDInceptionV3().eval()
    convs = net.convs()
    assert convs == c_table(), "tests/inception_weights.h's table differs from the network"
    n_param = sum(p.numel() for p in net.parameters())
    n_stats = sum(b.numel() for n, b in net.named_buffers() if "running" in n)
    assert (n_param, n_stats) == (23850960, 34432), (n_param, n_stats)
    sd = random_weights(convs)
    keys = [k for k in net.state_dict() if not k.endswith("num_batches_tracked")]
    assert list(sd) == keys
    if "--check-c" in sys.argv:
        check_c(sd, convs)
    net.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()}, strict=False)

    images32, image48 = make_images()
    uint8_images = [images32[0], images32[1], images32[2], image48[0]]
    x = torch.from_numpy(np.stack([preprocess_tf(im) for im in uint8_images]))
    x_ptfid = preprocess_ptfid(images32[0])[None]
    resize_err = max(float(np.abs(resize_tf1(im.astype(np.float32)) - resize_tf1_f64(im)).max())
                     for im in uint8_images)

    fc_w, fc_b = torch.from_numpy(sd["fc.weight"]), torch.from_numpy(sd["fc.bias"])
    trace = []
    with torch.no_grad():
        pool3 = net.pool3(x, trace)
        logits_nobias = pool3 @ fc_w.T
        logits = F.linear(pool3, fc_w, fc_b)
        pool3_ptfid = net.pool3(x_ptfid)
        net64 = FIDInceptionV3().eval().double()
        net64.load_state_dict({k: torch.from_numpy(v.astype(np.float64)) for k, v in sd.items()}, strict=False)
        pool3_64 = net64.pool3(x.double())
        logits_64 = pool3_64 @ fc_w.double().T + fc_b.double()
        pool3_ptfid_64 = net64.pool3(x_ptfid.double())

    for name, t in trace:
        print("  %-13s %4d x %3d x %3d   rms %6.3f   mean %6.3f   across-image std / rms %.3f"
              % (name, t.shape[1], t.shape[2], t.shape[3], t.pow(2).mean().sqrt(), t.mean(),
                 (t - t.mean(0)).pow(2).mean().sqrt() / t.pow(2).mean().sqrt()))
    prob = logits_nobias.double().softmax(1)
    print("pool3: std %.3f mean %.3f, across images std %.3f; logits: std %.3f, across images std %.3f;"
          " max softmax prob per image %s" % (pool3.std(), pool3.mean(), pool3.std(0).mean(),
                                              logits.std(), logits.std(0).mean(),
                                              " ".join("%.3f" % v for v in prob.max(1).values)))
    e = {"pool3": rel(pool3, pool3_64), "logits": rel(logits, logits_64),
         "pool3_ptfid": rel(pool3_ptfid, pool3_ptfid_64)}
    for k, (r_max, r_elem) in e.items():
        print(f"float32 vs float64 {k}: max|d|/max|ref| {r_max:.2e}, worst elementwise rel {r_elem:.2e}")
    print(f"TF resize float32 vs float64: max abs diff {resize_err:.2e} (pixel units, 0..255)")

    rows = torch.tensor(INPUT_ROWS, dtype=torch.int64)
    t = {"weights_head": sd["Conv2d_1a_3x3.conv.weight"].reshape(-1)[:16],
         "weights_tail": sd["fc.bias"][-16:],
         "images32": images32, "image48": image48, "input_rows": rows,
         "input0": x[0:1, :, rows], "pool3": pool3, "logits": logits, "logits_nobias": logits_nobias,
         "input0_ptfid": x_ptfid[:, :, rows], "pool3_ptfid": pool3_ptfid}
    meta = {"weights": "inception_random_weights: ag_rng_seed(20151205, 3), see tests/inception_weights.h",
            "weights_head": "the first 16 values of Conv2d_1a_3x3.conv.weight; weights_tail: the last 16 of fc.bias",
            "images": "images32[0..2] then image48[0]; pool3/logits rows in that order",
            "input0": "rows input_rows of the preprocessed [1,3,299,299] image 0 (all columns)",
            "preprocess": "tf1-legacy bilinear 299, (x-128)/128; *_ptfid: x/255, bilinear align_corners=False, 2x-1",
            "rel_err_f32_f64_pool3": "%.3e" % e["pool3"][0], "rel_err_f32_f64_logits": "%.3e" % e["logits"][0],
            "torch": torch.__version__, "numpy": np.__version__}
    path = os.path.join(OUT, "inception_forward.safetensors")
    st.save(path, t, meta, dtypes={"images32": "U8", "image48": "U8"})
    back, _ = st.load(path)
    for k, v in t.items():
        assert np.array_equal(back[k].numpy(), v.numpy() if isinstance(v, torch.Tensor) else v), k
    print(f"{os.path.relpath(path, ROOT)}: {os.path.getsize(path)} bytes; torch {torch.__version__}")


if __name__ == "__main__":
    main()
