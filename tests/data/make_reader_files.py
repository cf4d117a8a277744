#!/usr/bin/python3
"""Make the small input files for tests/test_readers.c.

Run with Debian's python (torch 1.13, numpy, PIL):  /usr/bin/python3 tests/data/make_reader_files.py
Deterministic (fixed seeds, fixed zip times) except the legacy-form .pth files, whose storage
keys are memory addresses; values are simple formulas wherever the C test checks them directly. PNGs are written by hand (zlib + struct) so every filter type, colour
type and bit depth is present, then cross-checked against PIL when PIL is available.
"""
import io
import os
import struct
import sys
import zipfile
import zlib

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def out(name):
    return os.path.join(HERE, name)


def write(name, data):
    with open(out(name), "wb") as f:
        f.write(data)


# ---------------------------------------------------------------- deflate streams
def deflate_files():
    rng = np.random.RandomState(1)
    words = [b"alpha", b"beta", b"gamma", b"generator", b"discriminator", b"cell", b"conv", b"\n", b" ", b"0123"]
    parts = []
    for _ in range(1500):
        parts.append(words[rng.randint(len(words))])
    text = b"".join(parts)                                   # compressible text, ~8 KB
    noise = rng.randint(0, 256, 2000).astype(np.uint8).tobytes()   # incompressible
    run = b"\x07" * 1500                                     # long runs: length-258 matches, distance 1
    far = text[:3000]                                        # repeats at distance > 16 KB
    content = text + noise + run + b"abc" * 300 + far
    assert len(content) < 20000
    write("defl_content.bin", content)
    write("defl_l0.zlib", zlib.compress(content, 0))        # stored blocks
    write("defl_l1.zlib", zlib.compress(content, 1))
    write("defl_l9.zlib", zlib.compress(content, 9))        # dynamic Huffman
    c = zlib.compressobj(6, zlib.DEFLATED, 15, 9, zlib.Z_FIXED)
    write("defl_fixed.zlib", c.compress(content) + c.flush())
    c = zlib.compressobj(6, zlib.DEFLATED, 15, 9, zlib.Z_HUFFMAN_ONLY)
    write("defl_huff.zlib", c.compress(content) + c.flush())
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    write("defl_raw.deflate", c.compress(content) + c.flush())
    # several blocks, mixed types: flush with Z_FULL_FLUSH between chunks at different levels
    c = zlib.compressobj(6, zlib.DEFLATED, 15)
    mixed = c.compress(content[:5000]) + c.flush(zlib.Z_FULL_FLUSH)
    mixed += c.compress(content[5000:]) + c.flush()
    write("defl_multi.zlib", mixed)
    write("defl_empty.zlib", zlib.compress(b"", 9))


# ---------------------------------------------------------------- PNG by hand
def png_chunk(typ, data):
    return struct.pack(">I", len(data)) + typ + data + struct.pack(">I", zlib.crc32(typ + data) & 0xFFFFFFFF)


def pack_row(samples, depth):
    """samples: 1-d list of ints for one row (all channels interleaved)."""
    if depth == 8:
        return bytes(int(v) for v in samples)
    if depth == 16:
        return b"".join(struct.pack(">H", int(v)) for v in samples)
    out_b, acc, nb = bytearray(), 0, 0
    for v in samples:
        acc = (acc << depth) | int(v)
        nb += depth
        if nb == 8:
            out_b.append(acc)
            acc, nb = 0, 0
    if nb:
        out_b.append(acc << (8 - nb))
    return bytes(out_b)


def paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def filter_row(raw, prior, bpp, ftype):
    res = bytearray([ftype])
    for i in range(len(raw)):
        a = raw[i - bpp] if i >= bpp else 0
        b = prior[i] if prior is not None else 0
        c = prior[i - bpp] if (prior is not None and i >= bpp) else 0
        x = raw[i]
        if ftype == 0:
            v = x
        elif ftype == 1:
            v = x - a
        elif ftype == 2:
            v = x - b
        elif ftype == 3:
            v = x - ((a + b) >> 1)
        else:
            v = x - paeth(a, b, c)
        res.append(v & 255)
    return bytes(res)


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
NCH = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


def make_png(samples, ctype, depth, palette=None, trns=None, interlace=False, filters=None, idat_parts=1,
             ancillary=False):
    """samples: int array [H, W, ch] of raw sample values."""
    h, w, ch = samples.shape
    bpp = max(1, ch * depth // 8)
    passes = ADAM7 if interlace else [(0, 0, 1, 1)]
    filtered = bytearray()
    rowno = 0
    for (x0, y0, dx, dy) in passes:
        sub = samples[y0::dy, x0::dx]
        if sub.shape[0] == 0 or sub.shape[1] == 0:
            continue
        prior = None
        for r in range(sub.shape[0]):
            raw = pack_row(sub[r].reshape(-1), depth)
            f = filters[rowno % len(filters)] if filters else rowno % 5
            filtered += filter_row(raw, prior, bpp, f)
            prior = raw
            rowno += 1
    z = zlib.compress(bytes(filtered), 9)
    png = b"\x89PNG\r\n\x1a\n"
    png += png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, 1 if interlace else 0))
    if ancillary:
        png += png_chunk(b"tEXt", b"Comment\x00autogan reader test")
    if palette is not None:
        png += png_chunk(b"PLTE", bytes(np.asarray(palette, dtype=np.uint8).reshape(-1)))
    if trns is not None:
        png += png_chunk(b"tRNS", trns)
    step = (len(z) + idat_parts - 1) // idat_parts
    for k in range(idat_parts):
        png += png_chunk(b"IDAT", z[k * step:(k + 1) * step])
    if ancillary:
        png += png_chunk(b"tIME", b"\x07\xe9\x01\x02\x03\x04\x05")
    png += png_chunk(b"IEND", b"")
    return png


def expected_pixels(samples, ctype, depth, palette=None, trns_alpha=None, key=None):
    s = samples.astype(np.int64)
    if depth == 16:
        scaled = s >> 8
    elif depth < 8:
        scaled = s * 255 // ((1 << depth) - 1)
    else:
        scaled = s
    if ctype == 3:
        pal = np.asarray(palette, dtype=np.int64)
        rgb = pal[s[..., 0]]
        if trns_alpha is not None:
            alpha = np.full(len(pal), 255, dtype=np.int64)
            alpha[:len(trns_alpha)] = trns_alpha
            return np.concatenate([rgb, alpha[s[..., 0]][..., None]], axis=2).astype(np.uint8)
        return rgb.astype(np.uint8)
    if key is not None:
        match = np.all(s == np.asarray(key, dtype=np.int64), axis=2)
        alpha = np.where(match, 0, 255)[..., None]
        return np.concatenate([scaled, alpha], axis=2).astype(np.uint8)
    return scaled.astype(np.uint8)


def pil_check(name, exp):
    try:
        from PIL import Image
    except ImportError:
        return
    im = Image.open(out(name))
    im.load()
    c = exp.shape[2]
    if im.mode == "P":
        im = im.convert("RGBA" if c == 4 else "RGB")
    elif im.mode in ("I;16", "I;16B", "I"):
        arr = (np.asarray(im).astype(np.int64) >> 8).astype(np.uint8)[..., None]
        assert np.array_equal(arr, exp), name
        return
    elif im.mode == "1":
        im = im.convert("L")
    arr = np.asarray(im)
    if arr.ndim == 2:
        arr = arr[..., None]
    assert arr.shape == exp.shape and np.array_equal(arr, exp), (name, im.mode, arr.shape, exp.shape)


def png_files():
    rng = np.random.RandomState(7)
    H, W = 7, 11
    cases = []

    def add(name, samples, ctype, depth, check_pil=True, **kw):
        pal = kw.get("palette")
        trns_alpha = kw.pop("trns_alpha", None)
        key = kw.pop("key", None)
        write(name + ".png", make_png(samples, ctype, depth, **kw))
        exp = expected_pixels(samples, ctype, depth, pal, trns_alpha, key)
        np.save(out(name + ".npy"), exp)
        if check_pil:
            pil_check(name + ".png", exp)
        cases.append(name)

    # smooth-ish content so every filter has something to do
    yy, xx = np.mgrid[0:H, 0:W]
    base = (xx * 23 + yy * 37) % 256

    def rnd(ch, depth, h=H, w=W):
        return rng.randint(0, 1 << depth, size=(h, w, ch))

    g8 = ((base + rng.randint(0, 8, (H, W))) % 256)[..., None]
    add("png_g8", g8, 0, 8)
    rgb8 = np.stack([base, (base * 3) % 256, 255 - base], axis=2)
    add("png_rgb8", rgb8, 2, 8)
    pal = rng.randint(0, 256, (13, 3))
    add("png_pal8", rng.randint(0, 13, (H, W, 1)), 3, 8, palette=pal)
    add("png_ga8", np.concatenate([g8, rnd(1, 8)], axis=2), 4, 8)
    add("png_rgba8", np.concatenate([rgb8, rnd(1, 8)], axis=2), 6, 8)
    # Adam7: 8-bit RGB (decoded) and 2-bit palette, 16-bit RGBA
    add("png_rgb8_adam7", rnd(3, 8, 13, 11), 2, 8, interlace=True)
    add("png_pal2_adam7", rng.randint(0, 4, (9, 10, 1)), 3, 2, palette=pal[:4], interlace=True)
    add("png_rgba16_adam7", rnd(4, 16, 5, 6), 6, 16, interlace=True, check_pil=False)
    # sub-byte and 16-bit depths
    for d in (1, 2, 4):
        add("png_g%d" % d, rnd(1, d), 0, d)
        add("png_pal%d" % d, rng.randint(0, min(1 << d, 13), (H, W, 1)), 3, d, palette=pal[:min(1 << d, 13)])
    add("png_g16", rnd(1, 16), 0, 16)
    add("png_rgb16", rnd(3, 16), 2, 16)
    add("png_ga16", rnd(2, 16), 4, 16, check_pil=False)
    add("png_rgba16", rnd(4, 16), 6, 16, check_pil=False)
    # transparency: palette alpha, gray key, RGB key
    add("png_pal8_trns", rng.randint(0, 13, (H, W, 1)), 3, 8, palette=pal, trns=bytes([0, 128, 255, 7, 9]),
        trns_alpha=[0, 128, 255, 7, 9])
    g8k = g8.copy()
    g8k[1, :, 0] = 77
    add("png_g8_trns", g8k, 0, 8, trns=struct.pack(">H", 77), key=[77], check_pil=False)
    rgbk = rgb8.copy()
    rgbk[2, 3:6] = [10, 20, 30]
    add("png_rgb8_trns", rgbk, 2, 8, trns=struct.pack(">HHH", 10, 20, 30), key=[10, 20, 30], check_pil=False)
    # several IDAT chunks and ancillary chunks to skip; all rows Paeth / all rows Average
    add("png_rgb8_split", rgb8, 2, 8, idat_parts=4, ancillary=True)
    # all rows Paeth, on noise
    add("png_rgb8_paeth", rnd(3, 8, 24, 24), 2, 8, filters=[4])
    add("png_rgba8_avg", np.concatenate([rgb8, rnd(1, 8)], axis=2), 6, 8, filters=[3])
    return cases


# ---------------------------------------------------------------- npy / npz
def npy_files():
    f4 = (np.arange(6, dtype=np.float32) * 0.5 - 1).reshape(2, 3)           # v = i*0.5 - 1
    np.save(out("npy_f4_2x3.npy"), f4)
    np.save(out("npy_f8_4x1.npy"), (np.arange(4, dtype=np.float64) / 3).reshape(4, 1))   # v = i/3
    np.save(out("npy_i8_5.npy"), np.arange(5, dtype=np.int64) * -1000000007)
    np.save(out("npy_i4_scalar.npy"), np.array(-123456, dtype=np.int32))
    np.save(out("npy_u1_2x2x3.npy"), (np.arange(12) * 21 % 256).astype(np.uint8).reshape(2, 2, 3))
    np.save(out("npy_b1_4.npy"), np.array([True, False, False, True]))
    np.save(out("npy_f2_3.npy"), np.array([1.5, -2.0, 65504.0], dtype=np.float16))
    np.save(out("npy_i2_3.npy"), np.array([-32768, 5, 32767], dtype=np.int16))
    np.save(out("npy_i1_3.npy"), np.array([-128, 5, 127], dtype=np.int8))
    np.save(out("npy_f4_fortran.npy"), np.asfortranarray(np.arange(12, dtype=np.float32).reshape(3, 4)))
    np.save(out("npy_f4_fortran3d.npy"), np.asfortranarray(np.arange(24, dtype=np.float32).reshape(2, 3, 4)))
    np.save(out("npy_f4_be.npy"), (np.arange(6, dtype=np.float32) * 0.5 - 1).astype(">f4"))
    np.save(out("npy_empty_0x3.npy"), np.zeros((0, 3), dtype=np.float32))
    for ver in ((2, 0), (3, 0)):
        with open(out("npy_f4_v%d.npy" % ver[0]), "wb") as f:
            np.lib.format.write_array(f, f4, version=ver)
    with open(out("npy_c8.npy"), "wb") as f:
        np.save(f, np.zeros(2, dtype=np.complex64))      # unsupported dtype
    np.save(out("npy_u2.npy"), np.zeros(2, dtype=np.uint16))   # unsupported dtype
    # FID-statistics style npz: mu (n,), sigma (n, n), float64
    n = 5
    mu = np.arange(n, dtype=np.float64) * 0.25 + 1                    # v = 1 + 0.25 i
    sigma = np.fromfunction(lambda i, j: (i + 1) * 10 + j, (n, n), dtype=np.float64)   # 10(i+1) + j
    np.savez(out("npz_stats_stored.npz"), mu=mu, sigma=sigma)
    np.savez_compressed(out("npz_stats_deflated.npz"), mu=mu, sigma=sigma)
    np.savez(out("npz_mixed.npz"), a=np.arange(3, dtype=np.int64), b=np.array(2.5, dtype=np.float32),
             c=np.zeros((2, 0), dtype=np.uint8))


# ---------------------------------------------------------------- zip oddities
def zinfo(name, method=zipfile.ZIP_STORED):
    zi = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))   # fixed time: reproducible bytes
    zi.compress_type = method
    return zi


def zip_files():
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w") as z:
        z.writestr(zinfo("dir/"), b"")
        z.writestr(zinfo("dir/stored.txt"), b"hello stored member\n" * 3)
        z.writestr(zinfo("deflated.bin", zipfile.ZIP_DEFLATED), bytes(range(256)) * 8)
        z.writestr(zinfo("bzip2.bin", zipfile.ZIP_BZIP2), b"bz" * 100)
        z.writestr(zinfo("empty.txt"), b"")
        z.comment = b"a zip comment"
    write("zip_mixed.zip", b.getvalue())
    # encrypted flag on a stored member (both headers)
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w") as z:
        z.writestr(zinfo("secret.txt"), b"not really encrypted")
    data = bytearray(b.getvalue())
    assert data[6] == 0
    data[6] |= 1
    cd = data.rfind(b"PK\x01\x02")
    data[cd + 8] |= 1
    write("zip_encrypted.zip", bytes(data))
    # zip64 by hand: stored members, 0xFFFFFFFF in the central directory, zip64 extra fields,
    # zip64 end record + locator, and 0xFFFF / 0xFFFFFFFF in the classic end record.
    members = [(b"first.txt", b"zip64 member one"), (b"second.bin", bytes(range(40)))]
    body, cdir = b"", b""
    for name, payload in members:
        off = len(body)
        crc = zlib.crc32(payload) & 0xFFFFFFFF
        extra_l = struct.pack("<HHQQ", 1, 16, len(payload), len(payload))
        body += struct.pack("<IHHHHHIIIHH", 0x04034B50, 45, 0, 0, 0, 0x21, crc, 0xFFFFFFFF, 0xFFFFFFFF,
                            len(name), len(extra_l)) + name + extra_l + payload
        extra_c = struct.pack("<HHQQQ", 1, 24, len(payload), len(payload), off)
        cdir += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 45, 45, 0, 0, 0, 0x21, crc, 0xFFFFFFFF, 0xFFFFFFFF,
                            len(name), len(extra_c), 0, 0, 0, 0, 0xFFFFFFFF) + name + extra_c
    cd_off = len(body)
    z64_off = cd_off + len(cdir)
    z64 = struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, len(members), len(members), len(cdir), cd_off)
    loc = struct.pack("<IIQI", 0x07064B50, 0, z64_off, 1)
    eocd = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    data = body + cdir + z64 + loc + eocd
    write("zip_zip64.zip", data)
    with zipfile.ZipFile(out("zip_zip64.zip")) as z:       # Python agrees it is valid
        assert z.read("second.bin") == bytes(range(40))


# ---------------------------------------------------------------- .pth
def pth_files():
    import torch
    import torch.nn as nn
    torch.manual_seed(0)

    class Small(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)
            self.bn = nn.BatchNorm2d(4)
            self.fc = nn.Linear(8, 2)

    m = Small()
    with torch.no_grad():
        m.bn.running_mean.copy_(torch.arange(4) * 0.1)
        m.bn.running_var.copy_(torch.arange(4) + 1.0)
        m.bn.num_batches_tracked.fill_(42)
    sd = m.state_dict()
    np.savez(out("pth_small_expected.npz"), **{k: v.numpy() for k, v in sd.items()})
    torch.save(sd, out("pth_small_zip.pth"))
    sd_old = type(sd)((k, v) for k, v in sd.items() if not k.endswith("num_batches_tracked"))
    torch.save(sd_old, out("pth_small_legacy.pth"), _use_new_zipfile_serialization=False)

    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)     # base[i, j] = 6 i + j
    views = {
        "base": base,
        "T": base.t(),                    # transposed: strides (1, 6)
        "row": base[2],                   # offset 12
        "col": base[:, 3],                # offset 3, stride 6
        "block": base[1:3, 2:5],          # offset 8, strides (6, 1)
        "expand": torch.arange(3, dtype=torch.float32).reshape(3, 1).expand(3, 4),   # stride 0
        "f64": torch.arange(5, dtype=torch.float64) / 4,
        "i64": torch.arange(4, dtype=torch.int64) * 3000000000,
        "i32": torch.tensor([-7, 8], dtype=torch.int32),
        "i16": torch.tensor([-300, 301], dtype=torch.int16),
        "i8": torch.tensor([-5, 6], dtype=torch.int8),
        "u8": torch.tensor([250, 3], dtype=torch.uint8),
        "bool": torch.tensor([True, False, True]),
        "f16": torch.tensor([0.5, -1.25], dtype=torch.float16),
        "bf16": torch.tensor([1.5, -3.0], dtype=torch.bfloat16),
        "scalar": torch.tensor(3.25),
        "empty": torch.zeros(0, 3),
        "nested": {"a": torch.tensor([1.0, 2.0]), "b": [torch.tensor([3.0]), torch.tensor([4.0, 5.0])]},
        "epoch": 7,
        "lr": 0.5,
        "flag": True,
        "name": "skipped string",
        "nothing": None,
    }
    torch.save(views, out("pth_views_zip.pth"))
    torch.save(views, out("pth_views_legacy.pth"), _use_new_zipfile_serialization=False)
    torch.save(views, out("pth_views_p4_zip.pth"), pickle_protocol=4)
    torch.save(views, out("pth_views_p1_legacy.pth"), _use_new_zipfile_serialization=False, pickle_protocol=1)
    torch.save(views, out("pth_views_p4_legacy.pth"), _use_new_zipfile_serialization=False, pickle_protocol=4)

    p = {"w": nn.Parameter(torch.arange(6, dtype=torch.float32).reshape(2, 3) - 2)}   # v = i - 2
    torch.save(p, out("pth_param_zip.pth"))
    torch.save(p, out("pth_param_legacy.pth"), _use_new_zipfile_serialization=False)

    opt = torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
    ckpt = {"epoch": 3, "state_dict": sd, "optimizer": opt.state_dict()}
    torch.save(ckpt, out("pth_ckpt_zip.pth"))
    torch.save(torch.arange(4, dtype=torch.float32) * 2, out("pth_tensor_zip.pth"))   # a bare tensor
    for name in os.listdir(HERE):
        if name.endswith(".pth"):
            torch.load(out(name))   # sanity: torch reads them back


def main():
    deflate_files()
    cases = png_files()
    npy_files()
    zip_files()
    pth_files()
    total = sum(os.path.getsize(out(n)) for n in os.listdir(HERE))
    print("%d PNG cases; tests/data holds %d bytes" % (len(cases), total))
    assert total < 300 * 1024


if __name__ == "__main__":
    sys.exit(main())
