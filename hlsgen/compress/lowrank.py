"""Low-rank factorisation: a layer becomes thinner layers the engines map as they are.

* Dense ``[n_in, n_out]``: truncated SVD, ``W ~ (U_r S_r^1/2)(S_r^1/2 V_r^T)``: a Dense of r
  units without bias, then the original Dense from r inputs (bias and activation kept).
* Conv2D ``[kh, kw, c_in, c_out]``: Tucker-2 (Kim et al. 2016) on the two channel modes by
  HOSVD: a 1x1 convolution to R1 channels, the kh x kw core from R1 to R2 channels (the
  original strides and padding), a 1x1 convolution to c_out (bias and activation kept).

The rank keeps ``energy`` of the squared singular values of each unfolding; a layer is
factored only when that stores fewer weights.  Fine-tuning follows in the pipeline.
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


def svd_factors(w: np.ndarray, energy: float):
    u, s, vt = np.linalg.svd(np.asarray(w, np.float64), full_matrices=False)
    r = rank_for_energy(s, energy)
    root = np.sqrt(s[:r])
    return (u[:, :r] * root).astype(np.float32), (root[:, None] * vt[:r]).astype(np.float32), r


def tucker2(k: np.ndarray, energy: float):
    """HOSVD factors of a conv kernel along its input and output channel modes."""
    kh, kw, ci, co = k.shape
    k64 = np.asarray(k, np.float64)
    u_in, s_in, _ = np.linalg.svd(k64.transpose(2, 0, 1, 3).reshape(ci, -1), full_matrices=False)
    u_out, s_out, _ = np.linalg.svd(k64.transpose(3, 0, 1, 2).reshape(co, -1), full_matrices=False)
    r1, r2 = rank_for_energy(s_in, energy), rank_for_energy(s_out, energy)
    a, b = u_in[:, :r1], u_out[:, :r2]
    core = np.einsum("hwio,ir,os->hwrs", k64, a, b)
    return a.astype(np.float32), core.astype(np.float32), b.T.astype(np.float32), (r1, r2)


def factor_chain(layers: list[Layer], energy: float, only=None) -> tuple[list[Layer], dict]:
    """The chain with its float Dense and Conv2D layers factored; ``{layer: rank}`` of those
    that were (a rank pair for Tucker-2).  ``only``: the layer names to consider."""
    out, ranks = [], {}
    for spec in layers:
        if only is not None and spec.name not in only:
            out.append(spec)
            continue
        if spec.cls == "Dense":
            w = spec.weights[0]
            n_in, n_out = w.shape
            a, b, r = svd_factors(w, energy)
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
            a, core, b, (r1, r2) = tucker2(k, energy)
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
