"""Seeds (jetstream.statistics.seeds): derived seeds are stable, and the seed decides the rows."""

from __future__ import annotations

from jetstream.statistics import (
    SummaryRequest,
    derive_seed,
    summarise,
)
from tests.statistics.data import make_table


def test_derive_seed_is_stable_and_distinct():
    assert derive_seed("exp", "metric", 1) == derive_seed("exp", "metric", 1)
    assert derive_seed("exp", "metric", 1) != derive_seed("exp", "metric", 2)
    assert derive_seed("exp", 1) != derive_seed("exp", "1")
    # a fixed value: the hash must not change between releases (reruns reproduce)
    import hashlib

    digest = hashlib.blake2b(b"str:a\x1fint:1", digest_size=8).digest()
    assert derive_seed("a", 1) == int.from_bytes(digest, "big") & (2**63 - 1)
    assert 0 <= derive_seed("x") < 2**63


def test_same_seed_same_rows_other_seed_other_rows():
    t = make_table()
    a, _ = summarise(SummaryRequest(t, "y", "bootstrap_mean", params={"num_samples": 500}, seed=7))
    b, _ = summarise(SummaryRequest(t, "y", "bootstrap_mean", params={"num_samples": 500}, seed=7))
    c, _ = summarise(SummaryRequest(t, "y", "bootstrap_mean", params={"num_samples": 500}, seed=8))
    assert a == b
    assert a != c
