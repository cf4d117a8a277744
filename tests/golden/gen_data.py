"""Goldens for the data-set code of autogan.h (dev time only; the C tests never run Python).

data_resize.safetensors: for each case <c> (gray and RGB; 32->8, 32->16, 96->48, 28->32 and a
few more shapes the search uses), `<c>.in` uint8 [H][W][C] and `<c>.out` uint8 [S][S][C] =
torchvision.transforms.Resize(S) applied to PIL.Image.fromarray(in) -- exactly the reference's
datasets.py transform before ToTensor (PIL BILINEAR, antialiased when shrinking).
Inputs: half the cases uniform noise (every rounding path), half smooth gradients plus noise.

Run with Debian's /usr/bin/python3 (numpy, torchvision and PIL installed there).
"""
import os

import numpy as np
import PIL
from PIL import Image
import torchvision
import torchvision.transforms as T

import st

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "data")

CASES = [  # name, input size, channels, output size
    ("gray_32_8", 32, 1, 8), ("rgb_32_8", 32, 3, 8),
    ("gray_32_16", 32, 1, 16), ("rgb_32_16", 32, 3, 16),
    ("gray_96_48", 96, 1, 48), ("rgb_96_48", 96, 3, 48),
    ("gray_28_32", 28, 1, 32), ("rgb_28_32", 28, 3, 32),
    ("gray_28_8", 28, 1, 8), ("rgb_96_8", 96, 3, 8), ("rgb_96_16", 96, 3, 16),
    ("rgb_96_32", 96, 3, 32), ("rgb_48_8", 48, 3, 8), ("gray_28_14", 28, 1, 14),
    ("rgb_32_32", 32, 3, 32), ("gray_7_23", 7, 1, 23), ("rgb_10_3", 10, 3, 3),
]


def make_input(rng, n, c, smooth):
    if smooth:
        y, x = np.mgrid[0:n, 0:n].astype(np.float64)
        base = 127.5 + 100 * np.sin(x / 3.1 + 0.7 * y / 5.3)
        img = base[:, :, None] + rng.normal(0, 20, size=(n, n, c))
        return np.clip(np.rint(img), 0, 255).astype(np.uint8)
    return rng.integers(0, 256, size=(n, n, c), dtype=np.uint8)


def main():
    tensors, dtypes = {}, {}
    rng = np.random.default_rng(20191027)
    for k, (name, n, c, s) in enumerate(CASES):
        a = make_input(rng, n, c, smooth=(k % 2 == 1))
        im = Image.fromarray(a[:, :, 0] if c == 1 else a, mode="L" if c == 1 else "RGB")
        out = np.asarray(T.Resize(s)(im), dtype=np.uint8)
        if c == 1:
            out = out[:, :, None]
        assert out.shape == (s, s, c)
        tensors[name + ".in"] = a
        tensors[name + ".out"] = out
        dtypes[name + ".in"] = dtypes[name + ".out"] = "U8"
    meta = {"pil": PIL.__version__, "torchvision": torchvision.__version__, "numpy": np.__version__,
            "cases": ",".join(c[0] for c in CASES)}
    st.save(os.path.join(OUT, "data_resize.safetensors"), tensors, meta, dtypes)
    print("wrote data_resize.safetensors:", len(CASES), "cases")


if __name__ == "__main__":
    main()
