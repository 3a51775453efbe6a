"""How deeply a parsed TOML or JSON document may nest, and parsers that enforce it.

The parsers of the standard library recurse once per level of nesting: a document of a few
thousand nested arrays ends in a RecursionError (TOML) or is parsed into a value that other
recursive code (merging, hashing, `json.dumps`, `copy.deepcopy`) cannot walk. No config or
Experimenter record comes near MAX_DEPTH levels, so anything deeper is refused with a
NestingError naming the document and the limit. The depth of a parsed value is measured
without recursion, so dotted TOML keys (`a.b.c... = 1`, which the parser builds without
recursing) are caught too.

Pure: no I/O.
"""

from __future__ import annotations

import json
import tomllib
from typing import Any

MAX_DEPTH = 100


class NestingError(ValueError):
    """A document nested more deeply than MAX_DEPTH levels."""


def depth_over(value: Any, limit: int = MAX_DEPTH) -> bool:
    """True when `value` (dicts and lists) nests more than `limit` levels deep."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        if depth + 1 > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def _refuse(label: str, limit: int) -> NestingError:
    return NestingError(f"{label}: nested more than {limit} levels deep (arrays or tables)")


def _key_dots(line: str) -> int:
    """The dots (outside quotes) of the key or table header that starts `line`."""
    header = line.startswith("[")
    end = "]" if header else "="
    dots, quote, i = 0, "", 1 if header else 0
    while i < len(line):
        c = line[i]
        if quote:
            if c == "\\" and quote == '"':
                i += 1
            elif c == quote:
                quote = ""
        elif c in "\"'":
            quote = c
        elif c == ".":
            dots += 1
        elif c == end or c == "#":
            break
        i += 1
    return dots


def dotted_keys_over(text: str, limit: int = MAX_DEPTH) -> bool:
    """True when a dotted key or table header of the TOML `text` has more than `limit`
    parts: a lexical scan before parsing (the parser takes time quadratic in their
    length). Lines inside multi-line strings are skipped."""
    if text.count(".") <= limit:
        return False
    in_string = ""
    for line in text.splitlines():
        if in_string:
            if in_string in line:
                in_string = ""
            continue
        stripped = line.lstrip()
        if stripped.startswith("#") or not stripped:
            continue
        if stripped.count(".") > limit and _key_dots(stripped) >= limit:
            return True
        for q in ('"""', "'''"):
            if line.count(q) % 2 == 1:
                in_string = q
                break
    return False


def loads_toml(text: str, label: str, limit: int = MAX_DEPTH) -> dict[str, Any]:
    """`tomllib.loads`, refusing documents nested more than `limit` levels (NestingError).
    A malformed document raises tomllib.TOMLDecodeError as usual."""
    if dotted_keys_over(text, limit):
        raise _refuse(label, limit)
    try:
        doc = tomllib.loads(text)
    except RecursionError:
        raise _refuse(label, limit) from None
    if depth_over(doc, limit):
        raise _refuse(label, limit)
    return doc


def loads_json(text: str | bytes, label: str, limit: int = MAX_DEPTH) -> Any:
    """`json.loads`, refusing documents nested more than `limit` levels (NestingError).
    Malformed JSON raises ValueError (json.JSONDecodeError, UnicodeDecodeError) as usual."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise _refuse(label, limit) from None
    if depth_over(value, limit):
        raise _refuse(label, limit)
    return value
