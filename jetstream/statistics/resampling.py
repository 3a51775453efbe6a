"""Fast bootstrap draws: exact where the data allow, exactly-moment-matched elsewhere.

Bayesian bootstrap of a mean. Client weights are Dirichlet(1, ..., 1). By the aggregation
property of the Dirichlet, for any partition of the clients into groups, the group totals
are Dirichlet(group sizes), i.e. normalised Gamma(n_g) variables, and independent of them
each group's weighted mean M_g is a Dirichlet(1, ..., 1)-weighted mean of its own values,
with mean m_g and variance v_g / (n_g + 1) (v_g the within-group population variance). So

    mean* = sum_g G_g M_g / sum_g G_g,   G_g ~ Gamma(n_g),  exactly.

* At most `EXACT_GROUPS` (64) distinct values (0/1, small counts): the groups are the
  distinct values, M_g = m_g, and this *is* the exact Bayesian bootstrap.
* Otherwise the groups are bins of the sorted values and M_g is replaced by
  m_g + sqrt(v_g / (n_g + 1)) Z_g, exact in its first two moments. Conditional on G the
  added term is normal with variance sum_g G_g^2 v_g / (n_g + 1): one normal per draw.
  The draws have exactly the exact method's mean and variance; what the normal term
  leaves out is the within-bin part of the third and fourth cumulants. `adaptive_bins`
  bounds that: a bin of n_g values with central moments mu3_g, mu4_g leaves out
  2 n_g mu3_g / N^3 of the third cumulant of the mean and 6 n_g mu4_g / N^4 of the fourth
  (Exp(1) weights have cumulants 2 and 6), i.e. a skewness error of
  2 n_g mu3_g / (N^1.5 sigma^3) and a kurtosis error of 6 n_g mu4_g / (N^2 sigma^4).
  Through the Cornish-Fisher expansion at z = 3 these move a quantile by
  (8/6) skew-error + (18/24) kurtosis-error standard deviations. Starting from 32
  equal-count bins, bins carrying the largest share are split (into 8 equal-count parts)
  until the total is below 0.01 SD (the accuracy bands allow 0.11 SD for the point and
  0.22 SD for a 95% bound) or `bins` (1,000) groups are used. Because the bound shrinks
  like N^-1/2, a branch of 1M clients needs no splitting at all (32 groups), while a small
  or heavy-tailed branch gets narrow bins, down to single clients, in its tails.
* The Gamma variables (`gamma_weights`): exponentials for single clients (exact),
  Wilson-Hilferty cubes of normals for groups of at least 100 (quantiles within 1e-4
  relative of Gamma(k), far inside the Monte Carlo noise of 10,000 draws), numpy's Gamma
  sampler in between. Draws are centre + weighted mean of (m_g - centre): no cancellation.

Cost per branch: one sort, a few passes to bin, and 10,000 x ~32 Gamma variables instead
of 10,000 x 1,000 (the previous fixed equal-count bins) or 10,000 x n (exact).

Ordinary bootstrap of a ratio of means (population_ratio): resample counts per group.
The ratio is invariant to the total weight, so independent Poisson(n_g) group counts give
the same distribution as multinomial ones up to O(n^-1/2) of the total's variation
(a Poisson bootstrap). Pairs (numerator, denominator) are grouped exactly when their
linearised influence num - r * den (r the observed ratio) takes at most 64 values and the
pairs at most `bins`; otherwise clients are sorted by influence and binned by
`adaptive_bins` (Poisson(1) weights: cumulants 1 and 1), and the within-bin sums get a
bivariate normal term with the bin's exact covariance scaled by the drawn count.

Every draw comes from the generator passed in, in a fixed order: a seed gives the same
draws on every machine.
"""

from __future__ import annotations

import numpy as np

Array = np.ndarray

DEFAULT_BINS = 1000  # the most groups a draw may use
MIN_BINS = 32  # equal-count groups the adaptive binning starts from
EXACT_GROUPS = 64  # up to this many distinct values, group them exactly
# The adaptive binning stops when its bound on the shift of a quantile at z = 3 (the
# Cornish-Fisher terms of the skewness and kurtosis the normal within-bin term leaves
# out) is below this many standard deviations of the draws (the accuracy bands allow
# 0.11 SD for the point and 0.22 SD for the bounds of a 95% interval).
QUANTILE_TOLERANCE = 0.01
_CF3 = (3.0**2 - 1.0) / 6.0  # Cornish-Fisher coefficient of the skewness at z = 3
_CF4 = (3.0**3 - 3.0 * 3.0) / 24.0  # ... and of the excess kurtosis
_SPLIT = 8  # children of a bin that is split
_CHUNK_CELLS = 4_000_000  # draws x groups per chunk: bounds memory at ~100 MB


# Above this shape a Gamma draw is taken by the Wilson-Hilferty transform of a normal
# (relative quantile error below 1e-4 there, far inside the Monte Carlo noise of 10,000
# draws) at well under half the cost of numpy's Gamma sampler.
WILSON_HILFERTY_MIN_SHAPE = 100.0


def gamma_weights(counts: Array, m: int, rng: np.random.Generator) -> Array:
    """(m, k) independent Gamma(counts) draws: exponentials for counts of 1 (exact and
    ~3x faster than the Gamma sampler), Wilson-Hilferty for counts of at least
    `WILSON_HILFERTY_MIN_SHAPE`, numpy's Gamma sampler for the others. The columns of
    each kind are drawn in that order, so a seed gives the same draws everywhere."""
    k = counts.shape[0]
    one = counts == 1.0
    big = counts >= WILSON_HILFERTY_MIN_SHAPE
    if one.all():
        return rng.standard_exponential(size=(m, k))
    if big.all():
        return _wilson_hilferty(counts, m, rng)
    out = np.empty((m, k))
    mid = ~(one | big)
    if one.any():
        out[:, one] = rng.standard_exponential(size=(m, int(one.sum())))
    if big.any():
        out[:, big] = _wilson_hilferty(counts[big], m, rng)
    if mid.any():
        out[:, mid] = rng.standard_gamma(counts[mid], size=(m, int(mid.sum())))
    return out


def _wilson_hilferty(counts: Array, m: int, rng: np.random.Generator) -> Array:
    """Gamma(k) ~ k (1 - 1/(9k) + Z / (3 sqrt(k)))^3, computed in place."""
    c = 1.0 / (9.0 * counts)
    g = rng.standard_normal(size=(m, counts.shape[0]))
    g *= np.sqrt(c)
    g += 1.0 - c
    np.maximum(g, 0.0, out=g)
    cube = g * g
    cube *= g
    cube *= counts
    return cube


def _bin_moments(xs: Array, starts: Array) -> tuple[Array, Array, Array, Array, Array]:
    """(counts, means, and the 2nd, 3rd, 4th central moments) of the bins of a sorted
    array that start at `starts`."""
    counts = np.diff(np.append(starts, xs.shape[0]))
    means = np.add.reduceat(xs, starts) / counts
    dev = xs - np.repeat(means, counts)
    d2 = dev * dev
    m2 = np.add.reduceat(d2, starts) / counts
    d2 *= dev
    m3 = np.add.reduceat(d2, starts) / counts
    d2 *= dev
    m4 = np.add.reduceat(d2, starts) / counts
    return counts.astype(np.float64), means, m2, m3, m4


def adaptive_bins(
    xs: Array,
    max_bins: int,
    kappa3: float,
    kappa4: float,
    min_bins: int = MIN_BINS,
    tolerance: float = QUANTILE_TOLERANCE,
) -> tuple[Array, Array, Array, Array]:
    """Bin starts, and the bins' (counts, means, variances), for a sorted 1-d array whose
    bins' weighted means will be replaced by normals with the same mean and variance.

    The weights are i.i.d. with third and fourth cumulants `kappa3`, `kappa4` (2 and 6
    for the Bayesian bootstrap's exponentials, 1 and 1 for Poisson counts). A bin of n_g
    values with central moments mu3_g, mu4_g then leaves out kappa3 n_g mu3_g / N^3 of
    the third cumulant of the mean of all N values and kappa4 n_g mu4_g / N^4 of the
    fourth, i.e. kappa3 n_g mu3_g / (N^1.5 sigma^3) of its skewness and
    kappa4 n_g mu4_g / (N^2 sigma^4) of its excess kurtosis. Starting from `min_bins`
    equal-count bins, the bins with the largest share of the Cornish-Fisher quantile shift
    these cause (at z = 3) are split into equal-count parts until the total is below
    `tolerance` standard deviations or `max_bins` is reached. The bulk of a large sample
    needs no splitting (the mean of 1M clients is normal to far better than the
    tolerance); the tails of a small or heavy-tailed one end up in narrow bins.
    """
    n = xs.shape[0]
    k0 = max(1, min(min_bins, max_bins, n))
    starts = np.unique(np.linspace(0, n, k0 + 1).astype(np.int64)[:-1])
    sigma2 = float(np.var(xs))
    while True:
        counts, means, var, m3, m4 = _bin_moments(xs, starts)
        if sigma2 <= 0 or not np.isfinite(sigma2):
            break
        err = counts * (
            (_CF3 * kappa3 / (n**1.5 * sigma2**1.5)) * np.abs(m3)
            + (_CF4 * kappa4 / (n * n * sigma2 * sigma2)) * m4
        )
        total = float(err.sum())
        room = max_bins - starts.size
        if not total > tolerance or room <= 0:
            break
        split = (err > tolerance / (4.0 * starts.size)) & (counts > 1)
        split[int(np.argmax(err))] = counts[int(np.argmax(err))] > 1
        if not split.any():
            break
        idx = np.flatnonzero(split)
        parts = np.minimum(_SPLIT, counts[idx]).astype(np.int64)
        if int((parts - 1).sum()) > room:  # split the worst bins that still fit
            idx = idx[np.argsort(-err[idx], kind="stable")]
            parts = np.minimum(_SPLIT, counts[idx]).astype(np.int64)
            fits = np.cumsum(parts - 1) <= room
            if not fits[0]:
                parts[0] = room + 1
                fits[0] = True
            idx, parts = idx[fits], parts[fits]
        c = counts[idx].astype(np.int64)
        children = [
            starts[i] + (np.arange(p) * ci) // p for i, p, ci in zip(idx, parts, c, strict=True)
        ]
        starts = np.unique(np.concatenate([starts, *children]))
    return starts, counts, means, var


def _group_sorted(
    xs: Array, max_groups: int, kappa3: float = 2.0, kappa4: float = 6.0
) -> tuple[Array, Array, Array]:
    """(counts, means, within-group variances) for a sorted 1-d array: its distinct
    values (exact) when there are at most `EXACT_GROUPS` of them (or `max_groups`, if
    fewer), else the adaptive bins of `adaptive_bins`."""
    change = np.flatnonzero(xs[1:] != xs[:-1]) + 1
    if change.size + 1 <= min(EXACT_GROUPS, max_groups):
        return _distinct(xs, change)
    _, counts, means, var = adaptive_bins(xs, max_groups, kappa3, kappa4)
    return counts, means, var


def _distinct(xs: Array, change: Array | None = None) -> tuple[Array, Array, Array]:
    """(counts, values, zeros) of the distinct values of a sorted 1-d array."""
    if change is None:
        change = np.flatnonzero(xs[1:] != xs[:-1]) + 1
    starts = np.concatenate(([0], change))
    counts = np.diff(np.concatenate((starts, [xs.shape[0]])))
    return counts.astype(np.float64), xs[starts].astype(np.float64), np.zeros(starts.size)


def bayesian_bootstrap_means(
    x: Array, num_samples: int, rng: np.random.Generator, bins: int = DEFAULT_BINS
) -> Array:
    """Draws of the Dirichlet(1, ..., 1)-weighted mean of x (see module docstring).
    `bins` caps the number of groups."""
    xs = np.sort(np.asarray(x, dtype=np.float64))
    counts, means, var = _group_sorted(xs, bins)
    centre = float(xs.mean()) if xs.size else 0.0
    dev = means - centre  # draws are centre + weighted mean of dev: no cancellation
    scale2 = var / (counts + 1.0)
    approx = bool(np.any(scale2 > 0))
    k = counts.size
    out = np.empty(num_samples)
    chunk = max(1, _CHUNK_CELLS // k)
    for start in range(0, num_samples, chunk):
        m = min(chunk, num_samples - start)
        g = gamma_weights(counts, m, rng)
        total = g.sum(axis=1)
        num = g @ dev
        if approx:
            g *= g
            noise_sd = np.sqrt(g @ scale2)
            num += noise_sd * rng.standard_normal(m)
        out[start : start + m] = centre + num / total
    return out


def exact_bayesian_bootstrap_means(x: Array, num_samples: int, rng: np.random.Generator) -> Array:
    """The exact Bayesian bootstrap over distinct values (slow for many distinct values:
    used by the benchmark to validate the binned method)."""
    xs = np.sort(np.asarray(x, dtype=np.float64))
    counts, means, _ = _distinct(xs)
    out = np.empty(num_samples)
    chunk = max(1, _CHUNK_CELLS // counts.size)
    for start in range(0, num_samples, chunk):
        m = min(chunk, num_samples - start)
        g = rng.standard_gamma(counts, size=(m, counts.size))
        out[start : start + m] = (g @ means) / g.sum(axis=1)
    return out


def _group_pairs(
    num: Array, den: Array, max_groups: int
) -> tuple[Array, Array, Array, Array | None]:
    """(counts, mean num, mean den, within-group 2x2 covariances or None): the distinct
    (num, den) pairs when the influence values take at most `EXACT_GROUPS` values and the
    pairs at most `max_groups`, else `adaptive_bins` of the influence num - r den (Poisson
    weights: third and fourth cumulants 1)."""
    n = num.shape[0]
    total_den = den.sum()
    ratio = num.sum() / total_den if total_den != 0 else 0.0
    influence = num - ratio * den
    order = np.argsort(influence, kind="stable")
    us = influence[order]
    if np.count_nonzero(us[1:] != us[:-1]) + 1 <= EXACT_GROUPS:
        pair_order = np.lexsort((den, num))
        sn, sd = num[pair_order], den[pair_order]
        change = np.flatnonzero((sn[1:] != sn[:-1]) | (sd[1:] != sd[:-1])) + 1
        if change.size + 1 <= max_groups:
            starts = np.concatenate(([0], change))
            counts = np.diff(np.concatenate((starts, [n]))).astype(np.float64)
            return counts, sn[starts], sd[starts], None
    starts, counts, _, _ = adaptive_bins(us, max_groups, 1.0, 1.0)
    sn, sd = num[order], den[order]
    reps = counts.astype(np.int64)
    mn = np.add.reduceat(sn, starts) / counts
    md = np.add.reduceat(sd, starts) / counts
    dn = sn - np.repeat(mn, reps)
    dd = sd - np.repeat(md, reps)
    cov = np.stack(
        [
            np.add.reduceat(dn * dn, starts) / counts,
            np.add.reduceat(dn * dd, starts) / counts,
            np.add.reduceat(dd * dd, starts) / counts,
        ],
        axis=1,
    )
    return counts, mn, md, cov


def bootstrap_ratio_of_means(
    num: Array,
    den: Array,
    num_samples: int,
    rng: np.random.Generator,
    bins: int = DEFAULT_BINS,
) -> Array:
    """Draws of sum(w num) / sum(w den) under the (Poisson) ordinary bootstrap of clients."""
    counts, mn, md, cov = _group_pairs(
        np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64), bins
    )
    k = counts.size
    out = np.empty(num_samples)
    chunk = max(1, _CHUNK_CELLS // k)
    for start in range(0, num_samples, chunk):
        m = min(chunk, num_samples - start)
        w = rng.poisson(counts, size=(m, k)).astype(np.float64)
        sn = w @ mn
        sd = w @ md
        if cov is not None:
            # Sum over bins of w_b draws from the bin: + N(0, sum_b w_b C_b).
            a = w @ cov[:, 0]
            b = w @ cov[:, 1]
            c = w @ cov[:, 2]
            z1 = rng.standard_normal(m)
            z2 = rng.standard_normal(m)
            l11 = np.sqrt(np.maximum(a, 0.0))
            with np.errstate(divide="ignore", invalid="ignore"):
                l21 = np.where(l11 > 0, b / l11, 0.0)
            l22 = np.sqrt(np.maximum(c - l21 * l21, 0.0))
            sn = sn + l11 * z1
            sd = sd + l21 * z1 + l22 * z2
        with np.errstate(divide="ignore", invalid="ignore"):
            out[start : start + m] = sn / sd
    return out
