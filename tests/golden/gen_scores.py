"""Golden file for the Inception Score and FID formulas: tests/golden/data/scores.safetensors.

Run with Debian's python:  /usr/bin/python3 tests/golden/gen_scores.py
NumPy only, float64 throughout, from the STORED float32 features (cast to float64), so the
C side reads exactly the numbers used here. SciPy (Debian: python3-scipy), when present,
cross-checks the FID trace term with pytorch-fid's own code (scipy.linalg.sqrtm); the file
does not depend on it.
"""
import os
import sys

import numpy as np

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import st  # noqa: E402

OUT = os.path.join(HERE, "data")
EPS = 1e-6      # the covariance offset of pytorch-fid's calculate_frechet_distance


def inception_score(logits, splits):
    """torch-fidelity / TF: softmax; rows [k*N/splits, (k+1)*N/splits); per split
    exp(mean_i sum_j p_ij (log p_ij - log q_j)), q = mean of p over the split;
    mean and population std over the splits."""
    x = logits.astype(np.float64)
    logp = x - x.max(1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(1, keepdims=True))
    p = np.exp(logp)
    n = len(x)
    scores = []
    for k in range(splits):
        a, b = k * n // splits, (k + 1) * n // splits
        q = p[a:b].mean(0)
        kl = (p[a:b] * (logp[a:b] - np.log(q))).sum(1)
        scores.append(np.exp(kl.mean()))
    return float(np.mean(scores)), float(np.std(scores))


def stats(feat):
    f = feat.astype(np.float64)
    return f.mean(0), np.cov(f, rowvar=False)


def tr_sqrt_chol(s1, s2, both=False):
    """tr sqrt(s1 s2) = sum sqrt(eig(L^T s1 L)), s2 = L L^T. If the Cholesky factorisation
    of s2 fails, s2 + EPS*I is factorised instead (and, with both=True, s1 + EPS*I is
    used too, which is pytorch-fid's offset). Returns (trace, fallback used)."""
    eye = np.eye(len(s2))
    try:
        L = np.linalg.cholesky(s2)
        fb = False
    except np.linalg.LinAlgError:
        L = np.linalg.cholesky(s2 + EPS * eye)
        fb = True
        if both:
            s1 = s1 + EPS * eye
    lam = np.linalg.eigvalsh(L.T @ s1 @ L)
    return float(np.sqrt(np.clip(lam, 0, None)).sum()), fb


def tr_sqrt_psd(s1, s2):
    """tr sqrt(s1 s2) with no offset: sum sqrt(eig(R s2 R)), R = s1^(1/2) from eigh (valid
    for singular PSD matrices too)."""
    w, v = np.linalg.eigh(s1)
    r = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    lam = np.linalg.eigvalsh(r @ s2 @ r)
    return float(np.sqrt(np.clip(lam, 0, None)).sum())


def fid_from(mu1, s1, mu2, s2, tr):
    d = mu1 - mu2
    return float(d @ d + np.trace(s1) + np.trace(s2) - 2.0 * tr)


def fid_pytorch_fid(mu1, s1, mu2, s2):
    """pytorch-fid's calculate_frechet_distance, verbatim in substance (needs SciPy)."""
    from scipy import linalg
    covmean, _ = linalg.sqrtm(s1.dot(s2), disp=False)
    offset_used = False
    if not np.isfinite(covmean).all():
        offset = np.eye(s1.shape[0]) * EPS
        covmean = linalg.sqrtm((s1 + offset).dot(s2 + offset))
        offset_used = True
    if np.iscomplexobj(covmean):
        assert np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3)
        covmean = covmean.real
    return fid_from(mu1, s1, mu2, s2, np.trace(covmean)), offset_used


def features(rs, n, dim, scale, shift):
    """n samples of a correlated Gaussian: z @ M + m, M = scale * randn/sqrt(dim)."""
    m = rs.randn(dim) * shift
    M = rs.randn(dim, dim) * (scale / np.sqrt(dim))
    return (rs.randn(n, dim) @ M + m).astype(np.float32)


def main():
    os.makedirs(OUT, exist_ok=True)
    rs = np.random.RandomState(20151205)   # legacy MT19937: a stream fixed across NumPy versions

    # --- Inception score: logits with a favourite class per row, so p is peaked but not one-hot
    n, c = 200, 1008
    logits_a = rs.randn(n, c) * 1.5
    logits_a[np.arange(n), rs.randint(0, 50, n)] += rs.uniform(4.0, 9.0, n)
    logits_a = logits_a.astype(np.float32)
    is_mean, is_std = inception_score(logits_a, 10)
    is3_mean, is3_std = inception_score(logits_a[:150], 3)

    # --- FID between two full-rank feature sets
    feat_a = features(rs, 300, 64, 1.0, 0.5)
    feat_b = features(rs, 250, 64, 0.8, 0.5)
    mu_a, sigma_a = stats(feat_a)
    mu_b, sigma_b = stats(feat_b)
    tr_c, fb = tr_sqrt_chol(sigma_a, sigma_b)
    assert not fb
    fid = fid_from(mu_a, sigma_a, mu_b, sigma_b, tr_c)
    fid_psd = fid_from(mu_a, sigma_a, mu_b, sigma_b, tr_sqrt_psd(sigma_a, sigma_b))
    assert abs(fid - fid_psd) < 1e-10 * fid, (fid, fid_psd)

    # --- FID with rank-deficient covariances: 40 samples of 64 features (rank <= 39), and
    # feature 5 of the second set dead (constant 0, as a dead ReLU unit), so sigma_lr_b has
    # an exactly zero row/column and every Cholesky factorisation meets a zero pivot.
    feat_lr_a = features(rs, 40, 64, 1.0, 0.5)
    feat_lr_b = features(rs, 40, 64, 0.8, 0.5)
    feat_lr_b[:, 5] = 0.0
    mu_la, sigma_la = stats(feat_lr_a)
    mu_lb, sigma_lb = stats(feat_lr_b)
    assert (sigma_lb[5] == 0).all()
    fid_lowrank = fid_from(mu_la, sigma_la, mu_lb, sigma_lb, tr_sqrt_psd(sigma_la, sigma_lb))
    tr_l1, fb1 = tr_sqrt_chol(sigma_la, sigma_lb)
    tr_l2, fb2 = tr_sqrt_chol(sigma_la, sigma_lb, both=True)
    assert fb1 and fb2
    fid_lowrank_chol = fid_from(mu_la, sigma_la, mu_lb, sigma_lb, tr_l1)
    fid_lowrank_chol_both = fid_from(mu_la, sigma_la, mu_lb, sigma_lb, tr_l2)

    eye = EPS * np.eye(64)
    alt1 = fid_from(mu_la, sigma_la, mu_lb, sigma_lb, tr_sqrt_psd(sigma_la, sigma_lb + eye))
    alt2 = fid_from(mu_la, sigma_la, mu_lb, sigma_lb, tr_sqrt_psd(sigma_la + eye, sigma_lb + eye))
    print(f"IS 10 splits: {is_mean!r} +- {is_std!r};  3 splits (150 rows): {is3_mean!r} +- {is3_std!r}")
    print(f"FID: {fid!r} (eig(L^T s1 L) vs eig(R s2 R): {abs(fid - fid_psd) / fid:.1e} rel)")
    print(f"FID low rank: no offset {fid_lowrank!r}; Cholesky fallback, +{EPS} I on sigma2 only "
          f"{fid_lowrank_chol!r}; on both {fid_lowrank_chol_both!r}")
    print(f"  same offsets through eig(R s2 R) instead of Cholesky: rel diff {abs(alt1 - fid_lowrank_chol) / alt1:.1e} "
          f"(sigma2 only), {abs(alt2 - fid_lowrank_chol_both) / alt2:.1e} (both)")
    try:
        import scipy
    except ImportError:
        print("SciPy not installed: pytorch-fid cross-check skipped (apt-get install python3-scipy)")
    else:
        ref, off = fid_pytorch_fid(mu_a, sigma_a, mu_b, sigma_b)
        print(f"  pytorch-fid (scipy {scipy.__version__} sqrtm): FID {ref!r}, rel diff {abs(ref - fid) / fid:.1e}, offset {off}")
        assert abs(ref - fid) < 1e-9 * fid and not off
        ref, off = fid_pytorch_fid(mu_la, sigma_la, mu_lb, sigma_lb)
        print(f"  pytorch-fid low rank: {ref!r}, offset used: {off}; rel diff to no-offset "
              f"{abs(ref - fid_lowrank) / fid_lowrank:.1e}, to sigma2-only fallback "
              f"{abs(ref - fid_lowrank_chol) / fid_lowrank:.1e}, to both {abs(ref - fid_lowrank_chol_both) / fid_lowrank:.1e}")
        assert abs(ref - fid_lowrank) < 1e-7 * fid_lowrank
        off_ref = fid_from(mu_la, sigma_la, mu_lb, sigma_lb, np.trace(__import__("scipy.linalg").linalg.sqrtm(
            (sigma_la + EPS * np.eye(64)).dot(sigma_lb + EPS * np.eye(64))).real))
        print(f"  pytorch-fid's offset formula forced: {off_ref!r}, rel diff to both {abs(off_ref - fid_lowrank_chol_both) / fid_lowrank:.1e}")
        assert abs(off_ref - fid_lowrank_chol_both) < 1e-9 * fid_lowrank

    f64 = lambda v: np.asarray(v, np.float64)  # noqa: E731
    t = {"logits_a": logits_a, "is_mean": f64(is_mean), "is_std": f64(is_std),
         "is3_mean": f64(is3_mean), "is3_std": f64(is3_std),
         "feat_a": feat_a, "feat_b": feat_b, "mu_a": mu_a, "sigma_a": sigma_a,
         "mu_b": mu_b, "sigma_b": sigma_b, "fid": f64(fid),
         "feat_lr_a": feat_lr_a, "feat_lr_b": feat_lr_b, "fid_lowrank": f64(fid_lowrank),
         "fid_lowrank_chol": f64(fid_lowrank_chol), "fid_lowrank_chol_both": f64(fid_lowrank_chol_both)}
    dtypes = {k: "F64" for k, v in t.items() if np.asarray(v).dtype == np.float64}
    meta = {"is": "logits_a, 10 splits; is3: logits_a[:150], 3 splits",
            "fid": "FID(feat_a, feat_b): mu, sigma (np.cov, N-1) in float64 from the F32 features",
            "fid_lowrank": "FID(feat_lr_a, feat_lr_b) without offset (= pytorch-fid: its sqrtm stays finite)",
            "fid_lowrank_chol": "Cholesky of sigma2 fails; sigma2 + 1e-6 I",
            "fid_lowrank_chol_both": "Cholesky of sigma2 fails; sigma1 + 1e-6 I and sigma2 + 1e-6 I (pytorch-fid's offset)",
            "numpy": np.__version__}
    path = os.path.join(OUT, "scores.safetensors")
    st.save(path, t, meta, dtypes=dtypes)
    back, _ = st.load(path)
    for k, v in t.items():
        assert np.array_equal(back[k].numpy(), np.asarray(v)), k
    print(f"tests/golden/data/scores.safetensors: {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
