"""The identifier rules for values that come from Experimenter or a config and end up in SQL,
table names and file names: experiment slugs, branch slugs, outcome and segment slugs,
application names and ids.

Experimenter makes an experiment's slug with Django's `slugify` of its name (lower-case
letters, digits, hyphens and underscores) and stores it in a `SlugField`; branch slugs are
`SlugField`s too. We accept that alphabet plus dots (application ids such as
`org.mozilla.firefox` and some older records use them), upper-case letters only where
Experimenter's `SlugField` does (branch slugs), and at most MAX_LENGTH characters. Nothing
in the accepted alphabet can end a SQL string literal, start a comment, climb a directory
(`..` is refused separately) or break a line, so a checked value is safe inside quotes; the
SQL builders still escape it (`sql.literals.string`) wherever it is written as a literal.

Pure: no I/O.
"""

from __future__ import annotations

import re

MAX_LENGTH = 200

# Experiment slugs: Experimenter's slugify alphabet (lower case), plus `.`.
EXPERIMENT_SLUG = re.compile(r"[a-z0-9][a-z0-9_.-]*")
# Branch, outcome and segment slugs and app ids: SlugField's alphabet (any case), plus `.`.
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
# Names of metrics, segments, data sources and the other named tables of a config: they
# become SQL column names and table suffixes, so a BigQuery/DuckDB unquoted identifier.
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# a definitions table named by a wildcard pattern (`[metrics.'*']`, metric-config-parser's
# way to update every matching definition): identifier characters and `*`; never SQL
IDENTIFIER_PATTERN = re.compile(r"[A-Za-z0-9_*]*\*[A-Za-z0-9_*]*")

_ALLOWED = {
    EXPERIMENT_SLUG.pattern: "lower-case letters, digits, '-', '_' and '.', starting with a "
    "letter or digit",
    NAME.pattern: "letters, digits, '-', '_' and '.', starting with a letter or digit",
    IDENTIFIER.pattern: "letters, digits and '_', not starting with a digit",
    IDENTIFIER_PATTERN.pattern: "letters, digits, '_' and '*'",
}


class SlugError(ValueError):
    """A value that is not a valid identifier; the message says which rule it breaks."""


def problem(value: object, rule: re.Pattern[str] = EXPERIMENT_SLUG) -> str | None:
    """Why `value` breaks `rule`, or None when it is a valid identifier."""
    if not isinstance(value, str):
        return f"must be a string, got {type(value).__name__}"
    if not value:
        return "must not be empty"
    if len(value) > MAX_LENGTH:
        return f"is {len(value)} characters long (at most {MAX_LENGTH})"
    if ".." in value:
        return f"{value!r} contains '..'"
    if rule.fullmatch(value) is None:
        bad = sorted({c for c in value if not rule.fullmatch("a" + c)} - {""})
        shown = ", ".join(repr(c) for c in bad[:5]) or "its first character"
        allowed = _ALLOWED.get(rule.pattern, f"characters matching {rule.pattern}")
        return f"{value!r} may only contain {allowed} (not {shown})"
    return None


def check(value: object, what: str = "slug", rule: re.Pattern[str] = EXPERIMENT_SLUG) -> str:
    """`value` when it is a valid identifier, else SlugError naming `what`."""
    found = problem(value, rule)
    if found is not None:
        raise SlugError(f"{what} {found}")
    assert isinstance(value, str)
    return value


def collision_key(slug: str) -> str:
    """What tells two slugs apart in table names (`results.safe`: `-` and `.` become `_`),
    published file names and Argo task names (runs of other characters become one `-`, ends
    trimmed): two experiments with the same key would share tables, files or tasks."""
    return re.sub(r"[^a-z0-9]+", "-", slug.lower()).strip("-")
