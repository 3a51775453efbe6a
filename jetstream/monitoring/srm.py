"""Sample-ratio mismatch (SRM) as an anytime-valid sequential test. Pure: no I/O.

The data are the distinct enrolled clients per branch (each client counted once, in the
branch of its first enrollment), looked at as often as one likes (every 5 minutes).

Test: the Dirichlet-multinomial mixture likelihood ratio (a mixture sequential probability
ratio test). Under the null the branch of each new client is drawn from the configured
ratios `pi`; under the alternative from unknown shares `p ~ Dirichlet(K * pi)`. The
ratio of the two marginal likelihoods of the sequence seen so far,

    M_n = B(K*pi + x) / B(K*pi) / prod_i pi_i ** x_i,   B(a) = prod Gamma(a_i) / Gamma(sum a),

depends on the counts `x` only, and is a nonnegative martingale with M_0 = 1 under the null
(an e-process). Ville's inequality gives P(sup_n M_n >= 1/alpha) <= alpha: rejecting the
first time M_n reaches 1/alpha keeps the false alarm rate at most alpha however often, and
however irregularly, the counts are looked at. The anytime-valid p-value is
min(1, 1 / max_{m <= n} M_m), which never increases.

`K` (the concentration) sets which mismatches the test is tuned for: the prior on the shares
has standard deviation about sqrt(pi (1 - pi) / K). The default 10,000 suits mismatches of
around half a percentage point, found within some 10^5 clients (see docs/monitoring.md and
benchmarks/srm_simulation.py); larger mismatches are found sooner with any K.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import numpy as np
from numpy.typing import ArrayLike
from scipy.special import gammaln

DEFAULT_ALPHA = 0.01
DEFAULT_CONCENTRATION = 10_000.0


def _shares(ratios: Sequence[float]) -> np.ndarray:
    r = np.asarray(ratios, dtype=float)
    if r.ndim != 1 or r.size < 2:
        raise ValueError(f"SRM needs the ratios of at least two branches, got {list(ratios)!r}")
    if not np.all(np.isfinite(r)) or np.any(r <= 0):
        raise ValueError(f"branch ratios must be positive numbers, got {list(ratios)!r}")
    return r / r.sum()


def log_e_values(
    counts: ArrayLike, ratios: Sequence[float], concentration: float = DEFAULT_CONCENTRATION
) -> np.ndarray:
    """log M for counts of shape (..., branches) (cumulative distinct clients per branch at
    each look); returns shape (...). Vectorised over every leading axis."""
    if not concentration > 0:
        raise ValueError(f"concentration must be positive, got {concentration!r}")
    pi = _shares(ratios)
    x = np.asarray(counts, dtype=float)
    if x.shape[-1:] != pi.shape:
        raise ValueError(
            f"counts have {x.shape[-1] if x.ndim else 0} branches, ratios have {pi.size}"
        )
    if np.any(x < 0):
        raise ValueError("counts must be nonnegative")
    a = concentration * pi
    n = x.sum(axis=-1)
    log_b_post = gammaln(a + x).sum(axis=-1) - gammaln(concentration + n)
    log_b_prior = gammaln(a).sum() - gammaln(concentration)
    log_null = (x * np.log(pi)).sum(axis=-1)
    return np.asarray(log_b_post - log_b_prior - log_null)


@attrs.frozen
class SRMResult:
    """The test after the last look of a sequence of looks."""

    counts: tuple[int, ...]  # distinct clients per branch at the last look
    expected_shares: tuple[float, ...]
    log_e_value: float  # at the last look
    max_log_e_value: float  # over every look so far (0 before any client: M_0 = 1)
    p_value: float  # anytime-valid: min(1, 1 / max M)
    alpha: float
    mismatch: bool  # max M >= 1 / alpha
    first_detected: int | None  # index of the first look with M >= 1 / alpha
    concentration: float

    @property
    def total(self) -> int:
        return int(sum(self.counts))

    @property
    def observed_shares(self) -> tuple[float, ...]:
        n = self.total
        return tuple(c / n if n else 0.0 for c in self.counts)


def srm_test(
    cumulative_counts: ArrayLike,
    ratios: Sequence[float],
    alpha: float = DEFAULT_ALPHA,
    concentration: float = DEFAULT_CONCENTRATION,
) -> SRMResult:
    """Run the sequential test over looks: `cumulative_counts` has shape (looks, branches),
    each row the cumulative distinct clients per branch at that look (rows nondecreasing).
    An empty sequence of looks is the state before any data: no mismatch, p = 1."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    pi = _shares(ratios)
    x = np.asarray(cumulative_counts, dtype=float).reshape(-1, pi.size)
    if x.shape[0] and np.any(np.diff(x, axis=0) < 0):
        raise ValueError("cumulative counts must not decrease from one look to the next")
    logs = log_e_values(x, ratios, concentration) if x.shape[0] else np.zeros(0)
    # M_0 = 1 (log 0) is part of the path: the running maximum starts there.
    running = np.maximum.accumulate(np.concatenate([[0.0], logs]))[1:]
    threshold = float(np.log(1.0 / alpha))
    hits = np.flatnonzero(running >= threshold)
    max_log = float(running[-1]) if running.size else 0.0
    last = x[-1] if x.shape[0] else np.zeros(pi.size)
    return SRMResult(
        counts=tuple(int(v) for v in last),
        expected_shares=tuple(float(p) for p in pi),
        log_e_value=float(logs[-1]) if logs.size else 0.0,
        max_log_e_value=max_log,
        p_value=float(min(1.0, np.exp(-max_log))),
        alpha=alpha,
        mismatch=bool(hits.size),
        first_detected=int(hits[0]) if hits.size else None,
        concentration=float(concentration),
    )


def detections(
    cumulative_counts: np.ndarray,
    ratios: Sequence[float],
    alpha: float = DEFAULT_ALPHA,
    concentration: float = DEFAULT_CONCENTRATION,
) -> np.ndarray:
    """For many simulated runs at once, counts of shape (runs, looks, branches): whether
    each run raised the alarm at some look (bool array of shape (runs,))."""
    logs = log_e_values(cumulative_counts, ratios, concentration)
    return np.asarray((logs >= np.log(1.0 / alpha)).any(axis=-1))
