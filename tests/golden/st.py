"""Minimal safetensors writer (and reader, for self-checks), written by hand.

Layout: 8-byte little-endian u64 header length N, then N bytes of JSON
  {"__metadata__": {str: str}, "<name>": {"dtype": "F32"|"I64", "shape": [...],
   "data_offsets": [begin, end]}, ...}
padded with spaces so that N is a multiple of 8, then the raw little-endian data of
every tensor, in insertion order, contiguous (offsets are relative to the data start).
Floating tensors are stored as F32, integer tensors as I64, unless `dtypes` names another
dtype for a tensor (F64, U8). Scalars have shape [].
"""
import json
import os
import struct

import numpy as np
import torch


def _to_numpy(t):
    if isinstance(t, torch.Tensor):
        t = t.detach().cpu()
        if t.is_floating_point():
            return t.to(torch.float32).contiguous().numpy(), "F32"
        if t.dtype == torch.bool:
            raise TypeError("bool tensors are not supported")
        return t.to(torch.int64).contiguous().numpy(), "I64"
    a = np.asarray(t)
    if np.issubdtype(a.dtype, np.floating):
        return np.ascontiguousarray(a, dtype="<f4"), "F32"
    if np.issubdtype(a.dtype, np.integer):
        return np.ascontiguousarray(a, dtype="<i8"), "I64"
    raise TypeError(f"unsupported dtype {a.dtype}")


_NP = {"F32": "<f4", "F64": "<f8", "I64": "<i8", "U8": "u1"}


def save(path, tensors, meta=None, dtypes=None):
    """Write `tensors` (dict name -> tensor, insertion order kept) and string metadata.
    dtypes: optional dict name -> "F32" | "F64" | "I64" | "U8" overriding the default
    (F64 keeps float64 values; U8 requires integers in [0, 255])."""
    meta = {} if meta is None else meta
    header = {"__metadata__": {str(k): str(v) for k, v in meta.items()}}
    blobs = []
    off = 0
    for name, t in tensors.items():
        if name == "__metadata__":
            raise ValueError("reserved name")
        if dtypes and name in dtypes:
            dt = dtypes[name]
            src = t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)
            a = src.astype(_NP[dt], order="C")
            if not np.array_equal(a, src):
                raise ValueError(f"{name}: values do not fit {dt}")
        else:
            a, dt = _to_numpy(t)
            a = a.astype("<f4" if dt == "F32" else "<i8", copy=False)
        b = a.tobytes(order="C")
        header[name] = {"dtype": dt, "shape": [int(s) for s in a.shape],
                        "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    hj = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hj += b" " * ((8 - len(hj) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(hj)))
        f.write(hj)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def load(path):
    """Read a file written by save(): returns (dict name -> torch.Tensor, metadata dict)."""
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {})
    base = 8 + n
    out = {}
    for name, h in header.items():
        b, e = h["data_offsets"]
        dt = _NP[h["dtype"]]
        a = np.frombuffer(raw[base + b:base + e], dtype=dt).reshape(h["shape"]).copy()
        out[name] = torch.from_numpy(a)
    return out, meta
