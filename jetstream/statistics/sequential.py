"""Always-valid (sequential) intervals: the normal-mixture confidence sequence.

For a running mean of n observations with per-observation standard deviation sigma, the
two-sided normal-mixture boundary of Howard, Ramdas, McAuliffe and Sekhon (2021, "Time-
uniform, nonparametric, nonasymptotic confidence sequences", eq. 14) is

    half_width(n) = sigma * sqrt( 2 (n rho^2 + 1) / (n^2 rho^2) * log( sqrt(n rho^2 + 1) / alpha ) )

and with sigma estimated from the data it is the asymptotic confidence sequence of
Waudby-Smith, Arbour, Sinha, Kennedy and Ramdas (2021, "Time-uniform central limit
theory and asymptotic confidence sequences"): the interval covers the true mean at every
n at once with probability >= 1 - alpha (asymptotically), so it may be looked at after
every day of data without inflating the error rate. rho tunes where the boundary is
narrowest: `mixture_rho2(n_star, alpha)` makes it narrowest at n = n_star.

Written in terms of an estimator's variance V = sigma^2 / n, half_width = sqrt(V) *
`sequential_z(n, ...)`: the fixed-horizon interval's 1.96 is replaced by a multiplier that
grows with n like sqrt(log n). For a difference of two branch means, n is the number of
clients in both branches and V the variance of the difference.

Pure vectorised numpy: every function broadcasts over its array arguments.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

Array = np.ndarray


def mixture_rho2(n_star: ArrayLike, alpha: ArrayLike) -> Array:
    """The mixture variance rho^2 that makes the boundary narrowest at n = n_star
    (Howard et al. 2021, eq. 15's approximate minimiser)."""
    a = np.asarray(alpha, dtype=float)
    log_term = -2.0 * np.log(a)
    return (log_term + np.log1p(log_term)) / np.asarray(n_star, dtype=float)


def sequential_z(n: ArrayLike, alpha: ArrayLike, rho2: ArrayLike) -> Array:
    """The multiplier of sqrt(V) (the estimator's standard error after n observations)
    in the normal-mixture confidence sequence of level 1 - alpha."""
    n_ = np.asarray(n, dtype=float)
    a = np.asarray(alpha, dtype=float)
    nr = n_ * np.asarray(rho2, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.sqrt(2.0 * (nr + 1.0) / nr * np.log(np.sqrt(nr + 1.0) / a))


def half_width(sd: ArrayLike, n: ArrayLike, alpha: ArrayLike, rho2: ArrayLike) -> Array:
    """The boundary for a running mean: sd is the per-observation standard deviation."""
    n_ = np.asarray(n, dtype=float)
    return np.asarray(sd, dtype=float) / np.sqrt(n_) * sequential_z(n_, alpha, rho2)


def confidence_sequence(
    estimate: ArrayLike,
    variance: ArrayLike,
    n: ArrayLike,
    alpha: ArrayLike = 0.05,
    n_star: ArrayLike = 100_000,
) -> tuple[Array, Array]:
    """(lower, upper) of the always-valid interval of level 1 - alpha for an estimate with
    sampling variance `variance` after `n` observations, tuned to be narrowest at
    n_star."""
    e = np.asarray(estimate, dtype=float)
    w = np.sqrt(np.asarray(variance, dtype=float)) * sequential_z(
        n, alpha, mixture_rho2(n_star, alpha)
    )
    return e - w, e + w


def always_valid_p(
    estimate: ArrayLike,
    variance: ArrayLike,
    n: ArrayLike,
    alpha: ArrayLike = 0.05,
    n_star: ArrayLike = 100_000,
) -> Array:
    """The always-valid p-value for "the true value is 0": the smallest level at which the
    confidence sequence (with rho tuned at `alpha` and `n_star`, held fixed) excludes 0,

        p = min(1, sqrt(1 + n rho^2) exp(-z^2 n rho^2 / (2 (1 + n rho^2)))),  z^2 = e^2 / V.

    It stays valid under continuous monitoring: P(p_n <= a for some n) <= a under the null."""
    e = np.asarray(estimate, dtype=float)
    v = np.asarray(variance, dtype=float)
    nr = np.asarray(n, dtype=float) * mixture_rho2(n_star, alpha)
    with np.errstate(divide="ignore", invalid="ignore"):
        z2 = np.where(v > 0, e * e / v, np.where(e == 0, 0.0, np.inf))
        p = np.sqrt(1.0 + nr) * np.exp(-z2 * nr / (2.0 * (1.0 + nr)))
    return np.minimum(1.0, p)
