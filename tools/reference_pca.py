"""Reference values for `tests/pca.rs`: NumPy's `eigh` for `typednet::linalg::symmetric_eigen`,
a PCA written out in float64 NumPy (cross-checked against `torch.pca_lowrank`) for
`typednet::pca::Pca`, and principal angles by SVD for `typednet::linalg::principal_angles`.
Writes `tests/fixtures/pca.txt`, one `name v v v …` line per array (row-major); inputs rounded
to 4 decimals, so the Rust side reads exactly the values NumPy saw.

Run: /tmp/ref/bin/python tools/reference_pca.py
"""
from pathlib import Path

import numpy as np
import torch

rng = np.random.default_rng(7)
lines = [f"# tools/reference_pca.py, numpy {np.__version__}, torch {torch.__version__}"]


def put(name, array):
    lines.append(name + " " + " ".join(repr(float(v)) for v in np.asarray(array, dtype=np.float64).ravel()))


# --- A 6×6 symmetric matrix: eigenvalues descending, eigenvectors as rows (sign arbitrary).
upper = np.round(rng.normal(size=(6, 6)) * 2, 4)
sym = np.triu(upper) + np.triu(upper, 1).T
assert (sym == sym.T).all()
w, v = np.linalg.eigh(sym)
put("eigen.matrix", sym)
put("eigen.values", w[::-1])
put("eigen.vectors", v[:, ::-1].T)

# --- PCA of 40 samples of 7 dimensions with decaying variances along random directions, so
# the top three eigenvalues are well separated.
n, dim, k = 40, 7, 3
directions = np.linalg.qr(rng.normal(size=(dim, dim)))[0]
scales = np.array([3.0, 2.0, 1.2, 0.5, 0.3, 0.2, 0.1])
x = np.round(rng.normal(size=(n, dim)) * scales @ directions.T + rng.normal(size=dim), 4)
mean = x.mean(axis=0)
xc = x - mean
scatter = xc.T @ xc / n
w, v = np.linalg.eigh(scatter)
values = w[::-1]
components = v[:, ::-1].T[:k]
# Fix signs as typednet does (scikit-learn's svd_flip): the largest |entry| of each row positive.
signs = np.sign(components[np.arange(k), np.abs(components).argmax(axis=1)])
components = components * signs[:, None]
codes = xc @ components.T
reconstruction = mean + codes @ components
error = ((x - reconstruction) ** 2).sum(axis=1).mean()
assert np.isclose(error, values[k:].sum())
# Cross-check with torch.pca_lowrank (randomised; enough power iterations to be exact here).
torch.manual_seed(0)
u, s, vt = torch.pca_lowrank(torch.from_numpy(x), q=k, center=True, niter=20)
assert np.allclose((s**2 / n).numpy(), values[:k], rtol=1e-8)
assert np.allclose(np.abs(vt.T.numpy()), np.abs(components), atol=1e-8)
put("pca.data", x)
put("pca.mean", mean)
put("pca.components", components)
put("pca.explained_variance", values[:k])
put("pca.all_eigenvalues", values)
put("pca.codes", codes)
put("pca.reconstruction", reconstruction)
put("pca.error", [error])

# --- Principal angles between the row spaces of two random 3×7 matrices (SciPy is not at
# hand: orthonormal bases by QR, then the singular values of Qaᵀ Qb).
a = np.round(rng.normal(size=(3, 7)), 4)
b = np.round(rng.normal(size=(3, 7)), 4)
qa = np.linalg.qr(a.T)[0]
qb = np.linalg.qr(b.T)[0]
sigma = np.linalg.svd(qa.T @ qb, compute_uv=False)
put("angles.a", a)
put("angles.b", b)
put("angles.values", np.sort(np.arccos(np.clip(sigma, 0.0, 1.0))))

out = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "pca.txt"
out.write_text("\n".join(lines) + "\n")
print(f"wrote {out}")
