"""Stable seeds: the same parts give the same seed on every machine and Python version."""

from __future__ import annotations

import hashlib

_SEPARATOR = "\x1f"


def derive_seed(*parts: str | int | None) -> int:
    """A 63-bit seed from a stable hash (blake2b) of the parts, e.g. (experiment, metric,
    statistic, period, window, segment, basis). Reruns with the same parts reproduce
    results exactly; `hash()` is not used because it is salted per process."""
    text = _SEPARATOR.join("" if p is None else f"{type(p).__name__}:{p}" for p in parts)
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") & ((1 << 63) - 1)
