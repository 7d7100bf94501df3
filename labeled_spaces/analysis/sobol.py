"""The Sobol estimators of every output element, and their bootstrap.

The estimators are those of ``scipy.stats.sobol_indices``: outputs centred on
the mean of ``f(A)`` and ``f(B)``; ``S1_i = mean(f_B (f_ABi - f_A)) / var``
(Saltelli 2010) and ``ST_i = mean((f_A - f_ABi)^2) / 2 / var`` (Jansen), with
``var`` the variance of ``f(A)`` and ``f(B)`` together; an element without
variance gets 0, one whose outputs are not all finite NaN. They are computed
for every element at once; the bootstrap draws rows with replacement, which
for means is a matrix product of resampling counts with per-row terms.
"""

from __future__ import annotations

from statistics import NormalDist

import numpy as np

__all__ = ["sobol_estimates"]


def _indices(f_a: np.ndarray, f_b: np.ndarray, f_ab: np.ndarray, weights: np.ndarray | None
             ) -> tuple[np.ndarray, np.ndarray]:
    """S1 and ST ``(d, [R,] E)`` from ``f_a, f_b (n, E)`` and ``f_ab (d, n, E)``.

    ``weights`` (``(R, n)`` resampling counts) turns every mean over rows into
    the mean over each resample's rows.
    """
    n = f_a.shape[0]

    def mean(terms: np.ndarray) -> np.ndarray:  # over rows (axis -2)
        if weights is None:
            return terms.mean(axis=-2)
        return np.matmul(weights, terms) / n

    first = mean(f_b * (f_ab - f_a))
    total = 0.5 * mean((f_a - f_ab) ** 2)
    centre = 0.5 * mean(f_a + f_b)
    var = 0.5 * mean(f_a**2 + f_b**2) - centre**2
    with np.errstate(divide="ignore", invalid="ignore"):
        s1, st = first / var, total / var
    # an element without variance has no sensitivity (scipy's convention); one whose
    # outputs are not all finite has no estimate: NaN, never a made-up 0
    flat = var <= 0
    return np.where(flat, 0.0, s1), np.where(flat, 0.0, st)


def sobol_estimates(values: np.ndarray, d: int, n_resamples: int, confidence: float,
                    rng: np.random.Generator) -> dict[str, np.ndarray]:
    """S1, ST and their bootstrap half-widths from the outputs of a Saltelli sweep.

    Parameters
    ----------
    values : numpy.ndarray
        ``(n (d + 2), *element shape)``: the outputs at A, B, AB_1, ..., AB_d.
    d : int
        Number of factors.
    n_resamples : int
        Bootstrap resamples of the ``n`` rows (drawn with replacement).
    confidence : float
        The half-widths are ``z * std`` of the resampled indices, with ``z``
        the normal quantile at ``(1 + confidence) / 2`` (as SALib reports).
    rng : numpy.random.Generator

    Returns
    -------
    dict
        ``S1``, ``ST``, ``S1_conf``, ``ST_conf``, each ``(d, *element shape)``.

    Examples
    --------
    >>> import numpy as np
    >>> from labeled_spaces.analysis.sobol import sobol_estimates
    >>> rng = np.random.default_rng(0)
    >>> a, b = rng.random((2, 256, 2))
    >>> ab = np.stack([np.where(np.arange(2) == i, b, a) for i in range(2)])
    >>> f = lambda x: x[..., 0] + 0.0 * x[..., 1]
    >>> out = sobol_estimates(np.concatenate([f(a), f(b), *f(ab)]), 2, 50, 0.95, rng)
    >>> np.round(out["ST"], 1).tolist()
    [1.0, 0.0]
    """
    with np.errstate(invalid="ignore"):  # inf - inf: that element's indices are NaN
        return _estimates(values, d, n_resamples, confidence, rng)


def _estimates(values: np.ndarray, d: int, n_resamples: int, confidence: float,
               rng: np.random.Generator) -> dict[str, np.ndarray]:
    shape = values.shape[1:]
    n = values.shape[0] // (d + 2)
    flat = values.reshape(d + 2, n, -1).astype(np.float64)
    flat = flat - 0.5 * (flat[0] + flat[1]).mean(axis=0)  # centred, as scipy does
    f_a, f_b, f_ab = flat[0], flat[1], flat[2:]
    s1, st = _indices(f_a, f_b, f_ab, None)
    rows = rng.integers(0, n, size=(n_resamples, n))
    counts = np.bincount((rows + n * np.arange(n_resamples)[:, None]).ravel(),
                         minlength=n_resamples * n).reshape(n_resamples, n).astype(np.float64)
    s1_r, st_r = _indices(f_a, f_b, f_ab, counts)
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    return {
        "S1": s1.reshape(d, *shape),
        "ST": st.reshape(d, *shape),
        "S1_conf": (z * s1_r.std(axis=1, ddof=1)).reshape(d, *shape),
        "ST_conf": (z * st_r.std(axis=1, ddof=1)).reshape(d, *shape),
    }
