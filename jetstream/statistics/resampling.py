"""Fast, exact-where-possible bootstrap draws.

Bayesian bootstrap of a mean. Client weights are Dirichlet(1, ..., 1). By the aggregation
property of the Dirichlet, for any partition of the clients into groups, the group totals
are Dirichlet(group sizes), i.e. normalised Gamma(n_g) variables, and independent of them
each group's weighted mean is a Dirichlet(1, ..., 1)-weighted mean of its own values, with
mean m_g and variance v_g / (n_g + 1) (v_g the within-group population variance). So

    mean* = sum_g G_g M_g / sum_g G_g,   G_g ~ Gamma(n_g),  M_g = group's weighted mean.

* Groups of equal values (few distinct values, e.g. counts): M_g = m_g exactly; this is the
  exact Bayesian bootstrap over distinct values with their counts.
* Many distinct values: groups are equal-count bins of the sorted values (default 1,000).
  M_g is replaced by m_g + sqrt(v_g / (n_g + 1)) Z_g: exact in its first two moments and,
  because a bin is narrow, nearly normal. Conditional on G the extra term
  sum_g G_g sqrt(v_g / (n_g + 1)) Z_g is normal with variance sum_g G_g^2 v_g / (n_g + 1),
  so one normal per draw suffices. The resulting draws have exactly the exact method's
  mean and variance; benchmarks/statistics_bench.py measures the quantiles against the
  exact method.

Ordinary bootstrap of a ratio of means (population_ratio): resample counts per group.
The ratio is invariant to the total weight, so independent Poisson(n_g) group counts give
the same distribution as multinomial ones up to O(n^-1/2) of the total's variation
(a Poisson bootstrap). Pairs (numerator, denominator) with few distinct combinations are
grouped exactly; otherwise clients are binned by their linearised influence
num - r * den (r the observed ratio) and the within-bin sums get a bivariate normal term
with the bin's exact covariance scaled by the drawn count.
"""

from __future__ import annotations

import numpy as np

Array = np.ndarray

DEFAULT_BINS = 1000
_CHUNK_CELLS = 4_000_000  # draws x groups per chunk: bounds memory at ~100 MB


# Above this shape a Gamma draw is taken by the Wilson-Hilferty transform of a normal
# (relative quantile error below 1e-4 there, far inside the Monte Carlo noise of 10,000
# draws) at well under half the cost of numpy's Gamma sampler.
WILSON_HILFERTY_MIN_SHAPE = 100.0


def gamma_weights(counts: Array, m: int, rng: np.random.Generator) -> Array:
    """(m, k) independent Gamma(counts) draws: exponentials when every count is 1 (exact
    and ~3x faster), Wilson-Hilferty when every count is large, numpy's sampler otherwise."""
    k = counts.shape[0]
    if np.all(counts == 1.0):
        return rng.standard_exponential(size=(m, k))
    if np.all(counts >= WILSON_HILFERTY_MIN_SHAPE):
        z = rng.standard_normal(size=(m, k))
        c = 1.0 / (9.0 * counts)
        g = 1.0 - c + z * np.sqrt(c)
        np.maximum(g, 0.0, out=g)
        return counts * g * g * g
    return rng.standard_gamma(counts, size=(m, k))


def _group_sorted(xs: Array, max_groups: int) -> tuple[Array, Array, Array]:
    """(counts, means, within-group variances) for a sorted 1-d array: distinct values
    when there are at most `max_groups` of them, else equal-count bins."""
    n = xs.shape[0]
    change = np.flatnonzero(xs[1:] != xs[:-1]) + 1
    if change.size + 1 <= max_groups:
        starts = np.concatenate(([0], change))
        counts = np.diff(np.concatenate((starts, [n])))
        return counts.astype(np.float64), xs[starts].astype(np.float64), np.zeros(starts.size)
    edges = np.unique(np.linspace(0, n, max_groups + 1).astype(np.int64))
    starts = edges[:-1]
    counts = np.diff(edges).astype(np.float64)
    means = np.add.reduceat(xs, starts) / counts
    dev = xs - np.repeat(means, counts.astype(np.int64))
    var = np.add.reduceat(dev * dev, starts) / counts
    return counts, means, var


def bayesian_bootstrap_means(
    x: Array, num_samples: int, rng: np.random.Generator, bins: int = DEFAULT_BINS
) -> Array:
    """Draws of the Dirichlet(1, ..., 1)-weighted mean of x (see module docstring)."""
    xs = np.sort(np.asarray(x, dtype=np.float64))
    counts, means, var = _group_sorted(xs, bins)
    scale2 = var / (counts + 1.0)
    approx = bool(np.any(scale2 > 0))
    k = counts.size
    out = np.empty(num_samples)
    chunk = max(1, _CHUNK_CELLS // k)
    for start in range(0, num_samples, chunk):
        m = min(chunk, num_samples - start)
        g = gamma_weights(counts, m, rng)
        total = g.sum(axis=1)
        num = g @ means
        if approx:
            noise_sd = np.sqrt((g * g) @ scale2)
            num = num + noise_sd * rng.standard_normal(m)
        out[start : start + m] = num / total
    return out


def exact_bayesian_bootstrap_means(x: Array, num_samples: int, rng: np.random.Generator) -> Array:
    """The exact Bayesian bootstrap over distinct values (slow for many distinct values:
    used by the benchmark to validate the binned method)."""
    xs = np.sort(np.asarray(x, dtype=np.float64))
    counts, means, _ = _group_sorted(xs, xs.size + 1)
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
    """(counts, mean num, mean den, within-group 2x2 covariances or None)."""
    n = num.shape[0]
    order = np.lexsort((den, num))
    sn, sd = num[order], den[order]
    change = np.flatnonzero((sn[1:] != sn[:-1]) | (sd[1:] != sd[:-1])) + 1
    if change.size + 1 <= max_groups:
        starts = np.concatenate(([0], change))
        counts = np.diff(np.concatenate((starts, [n]))).astype(np.float64)
        return counts, sn[starts], sd[starts], None
    total_den = den.sum()
    ratio = num.sum() / total_den if total_den != 0 else 0.0
    order = np.argsort(num - ratio * den, kind="stable")
    sn, sd = num[order], den[order]
    edges = np.unique(np.linspace(0, n, max_groups + 1).astype(np.int64))
    starts = edges[:-1]
    counts = np.diff(edges).astype(np.float64)
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
