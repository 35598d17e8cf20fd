"""Low-rank factorisation: a layer becomes thinner layers the engines map as they are.

* Dense ``[n_in, n_out]``: truncated SVD, ``W ~ (U_r S_r^1/2)(S_r^1/2 V_r^T)``: a Dense of r
  units without bias, then the original Dense from r inputs (bias and activation kept).
* Conv2D ``[kh, kw, c_in, c_out]``: Tucker-2 (Kim et al. 2016) on the two channel modes by
  HOSVD: a 1x1 convolution to R1 channels, the kh x kw core from R1 to R2 channels (the
  original strides and padding), a 1x1 convolution to c_out (bias and activation kept).

The rank keeps ``energy`` of the squared singular values of each unfolding, or is chosen by
empirical variational Bayesian matrix factorisation (VBMF, Nakajima et al. 2013; what Kim et
al. use for Tucker-2): the singular values above the analytic threshold of the EVB solution,
with the noise variance estimated from the matrix itself.  A layer is factored only when that
stores fewer weights.  Fine-tuning follows in the pipeline.
"""

from __future__ import annotations

import numpy as np

from .chain import Layer


def rank_for_energy(s: np.ndarray, energy: float) -> int:
    """The smallest r whose top singular values keep ``energy`` of sum(s^2)."""
    e = np.cumsum(np.asarray(s, np.float64) ** 2)
    if e[-1] <= 0:
        return 1
    return int(np.searchsorted(e / e[-1], energy - 1e-12) + 1)


def _tau(x: np.ndarray, alpha: float) -> np.ndarray:
    return 0.5 * (x - (1 + alpha) + np.sqrt(np.maximum((x - (1 + alpha)) ** 2 - 4 * alpha, 0.0)))


def vbmf(y: np.ndarray) -> tuple[int, float]:
    """Empirical VBMF of ``y``: ``(rank, noise variance)``.

    The global analytic solution (Nakajima, Sugiyama, Babacan and Tomioka, JMLR 2013): with
    L <= M the matrix's short and long sides, alpha = L/M and x_h = s_h^2 / (M sigma^2), the
    EVB estimate keeps the components with x_h above (1 + tau)(1 + alpha/tau), tau = 2.5129
    sqrt(alpha); sigma^2 minimises the free energy over its analytic bounds.
    """
    from scipy.optimize import minimize_scalar

    y = np.asarray(y, np.float64)
    if y.shape[0] > y.shape[1]:
        y = y.T
    L, M = y.shape
    s = np.linalg.svd(y, compute_uv=False)
    H = len(s)
    alpha = L / M
    tau_bar = 2.5129 * np.sqrt(alpha)
    x_bar = (1 + tau_bar) * (1 + alpha / tau_bar)
    residual = max(0.0, float(np.sum(y**2) - np.sum(s**2)))
    if not np.any(s > 0):
        return 0, 0.0

    def free_energy(sigma2: float) -> float:
        x = s**2 / (M * sigma2)
        z1, z2 = x[x > x_bar], x[x <= x_bar]
        t1 = _tau(z1, alpha)
        return float(
            np.sum(z2 - np.log(z2))
            + np.sum(z1 - t1)
            + np.sum(np.log((t1 + 1) / z1))
            + alpha * np.sum(np.log(t1 / alpha + 1))
            + residual / (M * sigma2)
            + (L - H) * np.log(sigma2)
        )

    h_ub = int(min(np.ceil(L / (1 + alpha)) - 1, H)) - 1
    upper = (np.sum(s**2) + residual) / (L * M)
    tail = s[h_ub + 1 :] if h_ub + 1 < H else s[-1:]
    lower = max(tail[0] ** 2 / (M * x_bar), float(np.mean(tail**2)) / M, upper * 1e-12)
    if lower >= upper:
        sigma2 = upper
    else:
        sigma2 = float(minimize_scalar(free_energy, bounds=(lower, upper), method="bounded").x)
    threshold = np.sqrt(M * sigma2 * x_bar)
    return int(np.sum(s > threshold)), sigma2


def choose_rank(s: np.ndarray, y: np.ndarray, energy: float, method: str) -> int:
    """The rank of ``y`` (singular values ``s``): by retained energy, or by VBMF (at least 1)."""
    if method == "vbmf":
        return max(1, vbmf(y)[0])
    return rank_for_energy(s, energy)


def svd_factors(w: np.ndarray, energy: float, method: str = "energy"):
    u, s, vt = np.linalg.svd(np.asarray(w, np.float64), full_matrices=False)
    r = choose_rank(s, w, energy, method)
    root = np.sqrt(s[:r])
    return (u[:, :r] * root).astype(np.float32), (root[:, None] * vt[:r]).astype(np.float32), r


def tucker2(k: np.ndarray, energy: float, method: str = "energy"):
    """HOSVD factors of a conv kernel along its input and output channel modes (each mode's
    rank from its unfolding, as Kim et al. choose them)."""
    kh, kw, ci, co = k.shape
    k64 = np.asarray(k, np.float64)
    y_in, y_out = k64.transpose(2, 0, 1, 3).reshape(ci, -1), k64.transpose(3, 0, 1, 2).reshape(co, -1)
    u_in, s_in, _ = np.linalg.svd(y_in, full_matrices=False)
    u_out, s_out, _ = np.linalg.svd(y_out, full_matrices=False)
    r1, r2 = choose_rank(s_in, y_in, energy, method), choose_rank(s_out, y_out, energy, method)
    a, b = u_in[:, :r1], u_out[:, :r2]
    core = np.einsum("hwio,ir,os->hwrs", k64, a, b)
    return a.astype(np.float32), core.astype(np.float32), b.T.astype(np.float32), (r1, r2)


def factor_chain(layers: list[Layer], energy: float, only=None, method: str = "energy") -> tuple[list[Layer], dict]:
    """The chain with its float Dense and Conv2D layers factored; ``{layer: rank}`` of those
    that were (a rank pair for Tucker-2).  ``only``: the layer names to consider; ``method``:
    ``energy`` or ``vbmf``."""
    out, ranks = [], {}
    for spec in layers:
        if only is not None and spec.name not in only:
            out.append(spec)
            continue
        if spec.cls == "Dense":
            w = spec.weights[0]
            n_in, n_out = w.shape
            a, b, r = svd_factors(w, energy, method)
            if r * (n_in + n_out) >= n_in * n_out:
                out.append(spec)
                continue
            first = {"name": f"{spec.name}_lr", "units": r, "activation": "linear", "use_bias": False}
            second = dict(spec.config)
            out += [Layer("Dense", first, [a]), Layer("Dense", second, [b, *spec.weights[1:]])]
            ranks[spec.name] = r
        elif spec.cls == "Conv2D" and spec.config.get("groups", 1) == 1:
            k = spec.weights[0]
            kh, kw, ci, co = k.shape
            a, core, b, (r1, r2) = tucker2(k, energy, method)
            if ci * r1 + kh * kw * r1 * r2 + r2 * co >= k.size:
                out.append(spec)
                continue
            base = {"padding": "valid", "use_bias": False, "activation": "linear", "data_format": "channels_last"}
            c1 = {**base, "name": f"{spec.name}_in", "filters": r1, "kernel_size": (1, 1), "strides": (1, 1)}
            c2 = dict(spec.config)
            c2.update(name=f"{spec.name}_core", filters=r2, use_bias=False, activation="linear")
            c3 = dict(spec.config)
            c3.update(kernel_size=(1, 1), strides=(1, 1), padding="valid", dilation_rate=(1, 1))
            out += [
                Layer("Conv2D", c1, [a[None, None]]),
                Layer("Conv2D", c2, [core]),
                Layer("Conv2D", c3, [b[None, None], *spec.weights[1:]]),
            ]
            ranks[spec.name] = [r1, r2]
        else:
            out.append(spec)
    return out, ranks
