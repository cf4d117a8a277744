"""Goldens for the data-set code of autogan.h (dev time only; the C tests never run Python).

data_resize.safetensors: for each case <c> (gray and RGB; 32->8, 32->16, 96->48, 28->32 and a
few more shapes the search uses), `<c>.in` uint8 [H][W][C] and `<c>.out` uint8 [S][S][C] =
torchvision.transforms.Resize(S) applied to PIL.Image.fromarray(in) -- exactly the reference's
datasets.py transform before ToTensor (PIL BILINEAR, antialiased when shrinking).
Inputs: half the cases uniform noise (every rounding path), half smooth gradients plus noise.

Run with Debian's /usr/bin/python3 (numpy, torchvision and PIL installed there).
`gen_data.py --big DIR [N]` writes full-size stand-ins of the CIFAR-10 and STL-10 archives
(N unlabeled STL images, 100,000 by default) for timing the readers; they are not test files.
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



# ---- small data-set files for the reader tests: tests/data/datasets/ --------------------------
# Pixel values follow formulas the C test recomputes (no stored expectations):
#   CIFAR-10 record k of batch b (b = 1..5 train, 6 test), channel c, position q = row*32+col:
#       (b*53 + k*29 + c*7 + q*11) & 255, label (b + 3k) % 10
#   STL-10 image i of file f (f = 0 train, 1 unlabeled, 2 test), row y, column x, channel c:
#       (f*71 + i*13 + y*5 + x*3 + c*101 + (x*y) % 7) & 255, stored column-major (c, x, y);
#       labels (stored 1..10) (f + 2i) % 10 + 1
#   (Fashion-)MNIST image i, row y, column x: (i*17 + y*9 + x*5) & 255, label (i*7) % 10
#   PNG folder: see make_png_folder
import gzip
import io
import pickle
import struct
import tarfile

DS = os.path.join(HERE, "..", "data", "datasets")
CIFAR_COUNTS = {1: 2, 2: 3, 3: 1, 4: 2, 5: 2, 6: 3}


def cifar_chw(b, k):
    c = np.arange(3)[:, None]
    q = np.arange(1024)[None, :]
    return ((b * 53 + k * 29 + c * 7 + q * 11) & 255).astype(np.uint8)


def cifar_label(b, k):
    return (b + 3 * k) % 10


def py2_pickle_cifar(b, n):
    """A batch as Python 2's cPickle (protocol 2) wrote the official cifar-10-python files:
    str keys (SHORT_BINSTRING), numpy's _reconstruct + BUILD with a BINSTRING of raw bytes."""
    data = np.stack([cifar_chw(b, k).reshape(-1) for k in range(n)])
    raw = data.tobytes()
    o = bytearray(b"\x80\x02}q\x01(")
    o += b"U\x04dataq\x02cnumpy.core.multiarray\n_reconstruct\nq\x03cnumpy\nndarray\nq\x04K\x00\x85U\x01b\x87Rq\x05("
    o += b"K\x01K" + bytes([n]) + b"M\x00\x0c\x86cnumpy\ndtype\nq\x06U\x02u1K\x00K\x01\x87Rq\x07("
    o += b"K\x03U\x01|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89T" + struct.pack("<I", len(raw)) + raw + b"tb"
    o += b"U\x06labelsq\x08]q\x09(" + b"".join(b"K" + bytes([cifar_label(b, k)]) for k in range(n)) + b"e"
    label = b"training batch %d of 5" % b if b < 6 else b"testing batch 1 of 1"
    o += b"U\x0bbatch_labelq\x0aU" + bytes([len(label)]) + label
    o += b"U\x09filenamesq\x0b](" + b"".join(b"U\x0bimg_%02d_.png" % k for k in range(n)) + b"eu."
    d = pickle.loads(bytes(o), encoding="latin1")   # the generator checks its own bytes
    assert np.array_equal(d["data"], data) and d["labels"] == [cifar_label(b, k) for k in range(n)]
    return bytes(o)


def py3_pickle_cifar(b, n, protocol):
    data = np.stack([cifar_chw(b, k).reshape(-1) for k in range(n)])
    d = {b"batch_label": b"batch", b"labels": [cifar_label(b, k) for k in range(n)], b"data": data,
         b"filenames": [b"x.png"] * n}
    d = {k.decode(): v for k, v in d.items()}
    return pickle.dumps(d, protocol=protocol)


def add_member(tar, name, payload):
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    info.mtime = 1262304000
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(payload))


def write_tar(path, members, gz):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        info = tarfile.TarInfo(members[0][0].split("/")[0])
        info.type = tarfile.DIRTYPE
        info.mtime = 1262304000
        tar.addfile(info)
        for name, payload in members:
            add_member(tar, name, payload)
    raw = buf.getvalue()
    if gz:
        raw = gzip.compress(raw, compresslevel=9, mtime=0)
    with open(path, "wb") as f:
        f.write(raw)


def make_cifar():
    order = [4, 6, 3, 2, 5, 1]   # archive order differs from batch order, as in the real archive
    bins = []
    for b in order:
        recs = b"".join(bytes([cifar_label(b, k)]) + cifar_chw(b, k).tobytes() for k in range(CIFAR_COUNTS[b]))
        bins.append(("cifar-10-batches-bin/%s" % ("test_batch.bin" if b == 6 else "data_batch_%d.bin" % b), recs))
    bins.insert(2, ("cifar-10-batches-bin/batches.meta.txt", b"airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n"))
    write_tar(os.path.join(DS, "cifar10_bin.tar"), bins, gz=False)
    pys = []
    for b in order:
        n = CIFAR_COUNTS[b]
        payload = py3_pickle_cifar(b, n, 2) if b == 5 else py3_pickle_cifar(b, n, 4) if b == 6 else py2_pickle_cifar(b, n)
        pys.append(("cifar-10-batches-py/%s" % ("test_batch" if b == 6 else "data_batch_%d" % b), payload))
    pys.append(("cifar-10-batches-py/readme.html", b"<html></html>"))
    write_tar(os.path.join(DS, "cifar10_py.tar.gz"), pys, gz=True)


STL_COUNTS = (3, 4, 2)


def stl_hwc(f, i):
    y, x, c = np.meshgrid(np.arange(96), np.arange(96), np.arange(3), indexing="ij")
    return ((f * 71 + i * 13 + y * 5 + x * 3 + c * 101 + (x * y) % 7) & 255).astype(np.uint8)


def make_stl():
    files = {}
    for f, name in enumerate(("train", "unlabeled", "test")):
        imgs = np.stack([stl_hwc(f, i) for i in range(STL_COUNTS[f])])     # N, H(y), W(x), C
        files[name + "_X.bin"] = np.transpose(imgs, (0, 3, 2, 1)).tobytes()  # N, C, x, y
        if name != "unlabeled":
            files[name + "_y.bin"] = bytes((f + 2 * i) % 10 + 1 for i in range(STL_COUNTS[f]))
    # torchvision's own reader must see the formula images (it transposes the last two axes)
    raw = np.frombuffer(files["train_X.bin"], np.uint8).reshape(-1, 3, 96, 96)
    tv = np.transpose(np.transpose(raw, (0, 1, 3, 2))[1], (1, 2, 0))
    assert np.array_equal(tv, stl_hwc(0, 1))
    order = ["test_y.bin", "unlabeled_X.bin", "train_y.bin", "class_names.txt", "train_X.bin", "test_X.bin"]
    files["class_names.txt"] = b"airplane\nbird\ncar\ncat\ndeer\ndog\nhorse\nmonkey\nship\ntruck\n"
    write_tar(os.path.join(DS, "stl10.tar.gz"), [("stl10_binary/" + n, files[n]) for n in order], gz=True)


def idx_bytes(a):
    code = {np.uint8: 0x08, np.int32: 0x0C}[a.dtype.type]
    hdr = bytes([0, 0, code, a.ndim]) + b"".join(struct.pack(">I", s) for s in a.shape)
    return hdr + a.astype(a.dtype.newbyteorder(">")).tobytes()


def make_mnist():
    d = os.path.join(DS, "mnist")
    os.makedirs(d, exist_ok=True)
    for split, n, gz in (("train", 5, True), ("t10k", 3, False)):
        i, y, x = np.meshgrid(np.arange(n), np.arange(28), np.arange(28), indexing="ij")
        imgs = ((i * 17 + y * 9 + x * 5) & 255).astype(np.uint8)
        labels = ((np.arange(n) * 7) % 10).astype(np.uint8)
        for kind, a in (("images-idx3", imgs), ("labels-idx1", labels)):
            path = os.path.join(d, "%s-%s-ubyte" % (split, kind))
            if gz:
                with open(path + ".gz", "wb") as f:
                    f.write(gzip.compress(idx_bytes(a), mtime=0))
            else:
                with open(path, "wb") as f:
                    f.write(idx_bytes(a))


def make_png_folder():
    """b/2.png RGB 12x10, a.png gray 12x10, b/c/1.png RGB 12x10: loaded sorted by path (a.png,
    b/2.png, b/c/1.png) as RGB. Pixel (y, x, c) of image j (in that order): (j*40 + y*7 + x*3 + c*50) & 255,
    gray images having c = 0 in all three channels."""
    d = os.path.join(DS, "pngs")
    os.makedirs(os.path.join(d, "b", "c"), exist_ok=True)
    for j, (rel, mode) in enumerate((("a.png", "L"), ("b/2.png", "RGB"), ("b/c/1.png", "RGB"))):
        y, x, c = np.meshgrid(np.arange(10), np.arange(12), np.arange(3), indexing="ij")
        a = ((j * 40 + y * 7 + x * 3 + c * 50) & 255).astype(np.uint8)
        im = Image.fromarray(a[:, :, 0], "L") if mode == "L" else Image.fromarray(a, "RGB")
        im.save(os.path.join(d, rel))


def make_datasets():
    os.makedirs(DS, exist_ok=True)
    make_cifar()
    make_stl()
    make_mnist()
    make_png_folder()
    print("wrote", DS)


def make_big(out_dir, stl_unlabeled):
    """Full-size stand-ins for timing the readers (not test files): cifar-10-binary.tar.gz with
    50,000 + 10,000 records and stl10_binary.tar.gz with 5,000 train, 8,000 test and
    `stl_unlabeled` unlabeled images, laid out as the official archives. Pixels are smooth
    random fields plus noise (they compress about as badly as photographs do)."""
    rng = np.random.default_rng(5)

    def images(n, side):
        out = np.empty((n, 3, side, side), np.uint8)
        y, x = np.mgrid[0:side, 0:side].astype(np.float32) / side
        for i in range(0, n, 500):
            m = min(500, n - i)
            a = rng.uniform(0, 6, size=(m, 3, 4, 1, 1)).astype(np.float32)
            f = 127 + 60 * np.sin(a[:, :, 0] * x + a[:, :, 1] * y + a[:, :, 2]) + 30 * np.cos(a[:, :, 3] * 3 * x * y)
            f += rng.normal(0, 12, size=f.shape).astype(np.float32)
            out[i:i + m] = np.clip(f, 0, 255).astype(np.uint8)
        return out

    os.makedirs(out_dir, exist_ok=True)
    members = []
    for b in range(1, 7):
        n = 10000
        imgs = images(n, 32).reshape(n, -1)
        labels = rng.integers(0, 10, size=(n, 1), dtype=np.uint8)
        name = "test_batch.bin" if b == 6 else "data_batch_%d.bin" % b
        members.append(("cifar-10-batches-bin/" + name, np.concatenate([labels, imgs], axis=1).tobytes()))
    write_tar(os.path.join(out_dir, "cifar-10-binary.tar.gz"), members, gz=True)
    members = []
    for name, n in (("train", 5000), ("test", 8000), ("unlabeled", stl_unlabeled)):
        members.append(("stl10_binary/%s_X.bin" % name, images(n, 96).tobytes()))
        if name != "unlabeled":
            members.append(("stl10_binary/%s_y.bin" % name, rng.integers(1, 11, size=n, dtype=np.uint8).tobytes()))
    write_tar(os.path.join(out_dir, "stl10_binary.tar.gz"), members, gz=True)
    print("wrote", out_dir)


if __name__ == "__main__":
    import sys
    if len(sys.argv) >= 2 and sys.argv[1] == "--big":
        make_big(sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 100000)
    else:
        main()
        make_datasets()
