"""Golden file for the compact classifier (autogan.h, "The compact classifier"):
tests/golden/data/classifier.safetensors.

Run with Debian's python (torch 1.13):  /usr/bin/python3 tests/golden/gen_classifier.py

The PyTorch module below is the classifier the header defines, with the same state_dict
names. The file holds, for a tiny input (3 images, 1 x 16 x 16, 10 classes) with random
weights and random BatchNorm running statistics:
  w.<name>           every state_dict entry (parameters, running stats, counters)
  x, targets         the input (floats as the data loader makes them) and the labels
  train.logits, train.features, train.loss   the forward pass in training mode (batch statistics)
  grad.<name>        d(cross-entropy)/d(parameter) of that pass
  after.<name>       running_mean / running_var / num_batches_tracked after it
  eval.logits, eval.features                 the forward pass in eval mode (running statistics)
  score_a_u8, score_b_u8   300 gray 16x16 and 300 RGB 20x20 uint8 images (HWC)
  score_a_logits, score_b_features   eval mode through the scorer's conversions
  score_is, score_fid      NumPy IS of set A (10 splits) and FID(A, B) of the features
  x3, eval3.logits   a 3-channel network (in_channels 3) in eval mode: the weights w.<name>
                     but conv1.conv.weight, which is w3.conv1.conv.weight
"""
import os
import sys

import numpy as np
import torch
import torch.nn as nn
from PIL import Image
import torch.nn.functional as F

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st  # noqa: E402

torch.set_num_threads(1)
HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "data")

WIDTHS = [(32, 32, 48, 16, 24, 24), (48, 48, 64, 32, 48, 32), (64, 64, 96, 48, 64, 32)]
BLOCK_IN = [48, 128, 192]


class BasicConv2d(nn.Module):
    def __init__(self, cin, cout, k):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, padding=k // 2, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=1e-5, momentum=0.1)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


class Mixed(nn.Module):
    def __init__(self, cin, w):
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, w[0], 1)
        self.branch3x3_1 = BasicConv2d(cin, w[1], 1)
        self.branch3x3_2 = BasicConv2d(w[1], w[2], 3)
        self.branch3x3dbl_1 = BasicConv2d(cin, w[3], 1)
        self.branch3x3dbl_2 = BasicConv2d(w[3], w[4], 3)
        self.branch3x3dbl_3 = BasicConv2d(w[4], w[4], 3)
        self.branch_pool = BasicConv2d(cin, w[5], 1)

    def forward(self, x):
        b1 = self.branch1x1(x)
        b2 = self.branch3x3_2(self.branch3x3_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        b4 = self.branch_pool(F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False))
        return torch.cat([b1, b2, b3, b4], 1)


class Classifier(nn.Module):
    def __init__(self, in_channels=1, num_classes=10):
        super().__init__()
        self.conv1 = BasicConv2d(in_channels, 32, 3)
        self.conv2 = BasicConv2d(32, 48, 3)
        self.mixed1 = Mixed(BLOCK_IN[0], WIDTHS[0])
        self.mixed2 = Mixed(BLOCK_IN[1], WIDTHS[1])
        self.mixed3 = Mixed(BLOCK_IN[2], WIDTHS[2])
        self.fc = nn.Linear(256, num_classes)

    def forward(self, x):
        x = F.max_pool2d(self.conv1(x), 2)
        x = F.max_pool2d(self.conv2(x), 2)
        x = self.mixed2(self.mixed1(x))
        x = self.mixed3(F.max_pool2d(x, 2))
        f = x.mean((2, 3))
        return self.fc(f), f


def randomise(net, g):
    """random weights and BN statistics, so eval mode is not the identity"""
    with torch.no_grad():
        for name, t in net.state_dict().items():
            if name.endswith("num_batches_tracked"):
                t.fill_(3)
            elif name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=g) * 0.5 + 0.75)
            elif name.endswith("running_mean"):
                t.copy_(torch.randn(t.shape, generator=g) * 0.1)
            elif name.endswith("bn.weight"):
                t.copy_(torch.rand(t.shape, generator=g) * 0.5 + 0.75)
            elif name.endswith("bn.bias"):
                t.copy_(torch.randn(t.shape, generator=g) * 0.1)
            else:
                fan_in = t[0].numel()
                t.copy_(torch.randn(t.shape, generator=g) * (2.0 / fan_in) ** 0.5)


def inception_score(logits, splits):
    """the IS formula in NumPy (float64): mean and population std of exp(E KL(p(y|x) || p(y)))"""
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    n, scores = len(p), []
    for k in range(splits):
        part = p[k * n // splits:(k + 1) * n // splits]
        q = part.mean(0, keepdims=True)
        scores.append(np.exp((part * (np.log(part) - np.log(q))).sum(1).mean()))
    return float(np.mean(scores)), float(np.std(scores))


def stats(f):
    return f.mean(0), np.cov(f, rowvar=False)


def fid(mu1, s1, mu2, s2):
    """|mu1-mu2|^2 + tr s1 + tr s2 - 2 tr sqrt(s1 s2); the trace term from eigh (PSD-safe)"""
    w, v = np.linalg.eigh(s1)
    r = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    lam = np.linalg.eigvalsh(r @ s2 @ r)
    d = mu1 - mu2
    return float(d @ d + np.trace(s1) + np.trace(s2) - 2.0 * np.sqrt(np.clip(lam, 0, None)).sum())


def main():
    g = torch.Generator().manual_seed(20261128)
    out = {}
    net = Classifier(1, 10)
    randomise(net, g)
    for k, v in net.state_dict().items():
        out["w." + k] = v.clone()
    x = (torch.randint(0, 256, (3, 1, 16, 16), generator=g).float() / 255.0 - 0.5) / 0.5
    targets = torch.tensor([3, 0, 9])
    out["x"] = x
    out["targets"] = targets
    net.train()
    logits, feats = net(x)
    loss = F.cross_entropy(logits, targets)
    loss.backward()
    out["train.logits"] = logits
    out["train.features"] = feats
    out["train.loss"] = loss.reshape(1)
    for k, p in net.named_parameters():
        out["grad." + k] = p.grad
    for k, v in net.state_dict().items():
        if "running" in k or "num_batches" in k:
            out["after." + k] = v.clone()
    net.eval()
    with torch.no_grad():
        logits, feats = net(x)
    out["eval.logits"] = logits
    out["eval.features"] = feats

    net3 = Classifier(3, 10)
    with torch.no_grad():
        net3.conv1.conv.weight.copy_(torch.randn(32, 3, 3, 3, generator=g) * (2.0 / 27) ** 0.5)
    # every other entry as net had it before its training-mode pass
    net3.load_state_dict({k[2:]: v for k, v in out.items() if k.startswith("w.") and k != "w.conv1.conv.weight"}, strict=False)
    out["w3.conv1.conv.weight"] = net3.conv1.conv.weight.detach().clone()
    x3 = (torch.randint(0, 256, (2, 3, 16, 16), generator=g).float() / 255.0 - 0.5) / 0.5
    net3.eval()
    with torch.no_grad():
        l3, _ = net3(x3)
    out["x3"] = x3
    out["eval3.logits"] = l3
    # scores through the scorer's conversions (eval mode, the 1-channel net):
    # set A: 300 gray 16x16 uint8 images (no resize); set B: 300 RGB 20x20 images, resized by
    # PIL (BILINEAR) to 16x16, then convert("L"), as the scorer and the data sets do
    a_u8 = torch.randint(0, 256, (300, 16, 16, 1), generator=g).to(torch.uint8).numpy()
    base = torch.randint(0, 256, (300, 20, 20, 1), generator=g)
    b_u8 = (base + torch.randint(-30, 31, (300, 20, 20, 3), generator=g)).clamp(0, 255).to(torch.uint8).numpy()

    def to_input(u8):   # HWC uint8 -> NCHW as ag_data_loader_next: ((x/255) - 0.5)/0.5 in float32
        t = torch.from_numpy(np.ascontiguousarray(u8)).float().permute(0, 3, 1, 2)
        return (t / 255.0 - 0.5) / 0.5

    b_conv = np.stack([np.asarray(Image.fromarray(im).resize((16, 16), Image.BILINEAR).convert("L"))[:, :, None] for im in b_u8])
    with torch.no_grad():
        la, fa = net(to_input(a_u8))
        lb, fb = net(to_input(b_conv))
    out["score_a_u8"] = a_u8
    out["score_b_u8"] = b_u8
    out["score_a_logits"] = la
    out["score_b_features"] = fb
    is_mean, is_std = inception_score(la.double().numpy(), 10)
    mu_a, sig_a = stats(fa.double().numpy())
    mu_b, sig_b = stats(fb.double().numpy())
    out["score_is"] = np.array([is_mean, is_std])
    out["score_fid"] = np.array([fid(mu_a, sig_a, mu_b, sig_b)])
    dtypes = {"score_a_u8": "U8", "score_b_u8": "U8", "score_is": "F64", "score_fid": "F64"}
    print("classifier IS %.6f +- %.6f, FID(A, B) %.6f" % (is_mean, is_std, out["score_fid"][0]))
    os.makedirs(OUT, exist_ok=True)
    st.save(os.path.join(OUT, "classifier.safetensors"), out, {"generator": "tests/golden/gen_classifier.py"}, dtypes)
    print("wrote", os.path.join(OUT, "classifier.safetensors"), len(out), "tensors; loss", float(loss))


if __name__ == "__main__":
    main()
