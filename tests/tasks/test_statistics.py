"""tasks/statistics.py: the fixed row order the resampling statistics rely on."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from jetstream.tasks.statistics import in_key_order


def _rows(ids, keys, values):
    return pa.table(
        {
            "analysis_id": pa.array(ids, pa.string()),
            "branch": pa.array(["control"] * len(ids), pa.string()),
            "client_key": pa.array(keys, pa.int64()),
            "m0": pa.array(values, pa.float64()),
        }
    )


def test_rows_come_out_in_key_order_whatever_the_input_order():
    rng = np.random.default_rng(7)
    n = 1000
    keys = rng.choice(np.arange(-(2**62), 2**62, 2**50, dtype=np.int64), n, replace=False)
    ids = [f"id-{i}" for i in range(n)]
    values = np.arange(n, dtype=float)
    want = values[np.argsort(keys)]
    for _ in range(3):
        perm = rng.permutation(n)
        got = in_key_order(_rows([ids[i] for i in perm], keys[perm], values[perm]))
        assert got.column_names == ["branch", "m0"]  # id and key dropped
        assert np.array_equal(got.column("m0").to_numpy(), want)


def test_clients_sharing_a_key_are_ordered_by_id():
    ids = ["b", "a", "c", "d"]
    keys = [5, 5, -1, 5]
    values = [1.0, 2.0, 3.0, 4.0]
    forward = in_key_order(_rows(ids, keys, values)).column("m0").to_pylist()
    backward = in_key_order(_rows(ids[::-1], keys[::-1], values[::-1])).column("m0").to_pylist()
    assert forward == backward == [3.0, 2.0, 1.0, 4.0]  # key -1, then a, b, d of key 5
