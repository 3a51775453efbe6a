"""Which rows of a per-client table belong to which branch, computed once and reused.

`summarise` needs every branch's rows on every call. Comparing a string column with each
branch name costs tens of milliseconds per million rows (object arrays compare through
Python), which the engine would pay on each of hundreds of calls over the same column.
`BranchRows` holds the answer (ascending row indices per branch), built either from
integer codes (e.g. a pyarrow `dictionary_encode()` of the branch column: no string
comparison at all) or, once, from the labels themselves.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import numpy as np

Array = np.ndarray


@attrs.frozen(eq=False)
class BranchRows:
    """Ascending row indices of each branch in a table of `size` rows.

    `names` lists the branches that have rows, in order of their first row; `rows[i]` are
    the rows of `names[i]`. Rows of no branch (negative codes, null labels) are in none.
    """

    names: tuple[str, ...]
    rows: tuple[Array, ...]
    size: int

    def of(self, name: str) -> Array | None:
        """The rows of branch `name`, or None when it has none."""
        try:
            return self.rows[self.names.index(name)]
        except ValueError:
            return None

    @classmethod
    def from_codes(cls, codes: Array, names: Sequence[str]) -> BranchRows:
        """From integer codes: row i belongs to branch `names[codes[i]]`; a negative code
        means no branch. Raises ValueError for non-integer codes, codes outside
        [-inf, len(names)) or duplicate names."""
        codes = np.asarray(codes)
        labels = [str(b) for b in names]
        if codes.ndim != 1 or not np.issubdtype(codes.dtype, np.integer):
            raise ValueError(f"branch codes must be a 1-d integer array, not {codes.dtype}")
        if len(set(labels)) != len(labels):
            raise ValueError(f"branch names must be distinct: {labels}")
        if codes.size and int(codes.max()) >= len(labels):
            raise ValueError(
                f"branch code {int(codes.max())} has no name ({len(labels)} names given)"
            )
        valid = codes if not codes.size or int(codes.min()) >= 0 else codes[codes >= 0]
        counts = np.bincount(valid, minlength=len(labels)) if valid.size else np.zeros(0)
        found = [(np.flatnonzero(codes == c), labels[c]) for c, k in enumerate(counts) if k]
        found.sort(key=lambda item: int(item[0][0]))
        return cls(tuple(b for _, b in found), tuple(r for r, _ in found), int(codes.size))

    @classmethod
    def from_labels(cls, labels: Array, expected: Sequence[str] = ()) -> BranchRows:
        """From a column of branch names (object or string array). One vectorised
        comparison per distinct name (the `expected` names first); no sort. Null labels
        (None, NaN) belong to no branch."""
        labels = np.asarray(labels)
        n = labels.shape[0]
        found: list[tuple[Array, str]] = []
        seen = np.zeros(n, dtype=bool)
        for b in dict.fromkeys(str(e) for e in expected):
            mask = labels == b
            if mask.any():
                found.append((np.flatnonzero(mask), b))
                seen |= mask
        while not seen.all():
            i = int(np.argmin(seen))
            label = labels[i]
            mask = np.asarray(labels == label)  # elementwise, also for None
            mask[i] = True  # NaN never equals itself
            seen |= mask
            if label is None or (isinstance(label, float) and np.isnan(label)):
                continue
            found.append((np.flatnonzero(mask), str(label)))
        found.sort(key=lambda item: int(item[0][0]))
        return cls(tuple(b for _, b in found), tuple(r for r, _ in found), int(n))
