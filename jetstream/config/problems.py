"""A problem found in a config file: where (file, dotted TOML key), what, and how bad."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

import attrs

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")

ERROR = "error"
WARNING = "warning"


@attrs.frozen
class Problem:
    file: str
    key: str  # dotted TOML key path, "" for the whole file
    message: str
    level: str = ERROR

    @property
    def is_error(self) -> bool:
        return self.level == ERROR

    def __str__(self) -> str:
        prefix = {ERROR: "", WARNING: "warning: "}.get(self.level, f"{self.level}: ")
        where = f"{self.file}: {self.key}: " if self.key else f"{self.file}: "
        return f"{where}{prefix}{self.message}"


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """` (did you mean X?)` for the closest candidate, or ""."""
    match = difflib.get_close_matches(word, sorted(set(candidates)), n=1, cutoff=0.6)
    return f" (did you mean {match[0]!r}?)" if match else ""


def errors(problems: Iterable[Problem]) -> list[Problem]:
    return [p for p in problems if p.is_error]


def key_path(prefix: str, *parts: object) -> str:
    """Append TOML key parts to an already-formatted `prefix` path, quoting parts that are
    not bare keys; ints become `[i]` array indices."""
    out = prefix
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
            continue
        s = str(p)
        if not s:
            continue
        if not _BARE_KEY.fullmatch(s):
            s = '"' + s.replace('"', '\\"') + '"'
        out = f"{out}.{s}" if out else s
    return out
