"""Decide from a metric's SQL AST whether it can be rolled up from daily partials, and
build the leaf aggregates and the roll-up expression. Pure.

A select expression is decomposable when every column reference sits inside an aggregate
of a decomposable kind (SUM, COUNT, COUNTIF, MIN, MAX, LOGICAL_OR, LOGICAL_AND, AVG,
COUNT(DISTINCT x) with a scalar x, see below), no aggregate nests another, and the rest is
arithmetic or scalar functions of those aggregates. Each aggregate becomes a leaf computed
once per client and day; the window value takes two steps (`rolled_select`): per client,
one roll-up aggregate per leaf over the window's rows (SUM of sums, SUM of counts, MIN of
mins, ...), named like the leaf; then `rollup_sql`, the expression with each aggregate
replaced by a scalar of its roll-up (`COALESCE(m_0, 0)` for a COUNT, ...).

COUNT(DISTINCT x) rolls up exactly: the daily leaf is the client's distinct values of the
day, `ARRAY_AGG(DISTINCT x IGNORE NULLS)`, its roll-up the window's leaves concatenated,
`ARRAY_CONCAT_AGG(leaf)`, and the value counts the distinct elements,
`(SELECT COUNT(DISTINCT v) FROM UNNEST(leaf) AS v)`: 0 for a client without rows
(ARRAY_CONCAT_AGG skips NULL arrays and gives NULL over none; UNNEST(NULL) is empty), as
COUNT(DISTINCT x) over no rows. It works inside arithmetic like any other leaf, e.g.
`COUNT(DISTINCT a) / SUM(b)`. The two steps are needed here: GoogleSQL refuses an
aggregate inside UNNEST ("Aggregate function ARRAY_CONCAT_AGG not allowed in UNNEST").

BigQuery cannot ARRAY_AGG an ARRAY (nor non-groupable types such as JSON or GEOGRAPHY),
and the type of x is not known from the SQL alone. The rule: x must be built only from
column references (assumed to hold scalars, as COUNT(DISTINCT) of them almost always
does), literals, and the scalar operators and functions in `_SCALAR_NODES` (comparisons,
arithmetic, CASE/IF/COALESCE, string and date functions, CAST to a scalar type). Anything
else (array or struct constructors, SPLIT, JSON functions, UDF calls, subqueries, ...)
keeps the metric on the direct path. Floats are fine: BigQuery groups them (NaN equal to
NaN, +0 equal to -0) the same way in COUNT(DISTINCT) and ARRAY_AGG(DISTINCT).
"""

from __future__ import annotations

import attrs
import sqlglot
from sqlglot import exp

# aggregate class -> (roll-up aggregate of its leaf, the value from the roll-up); "{}" is
# the leaf column, which also names its roll-up
_ROLLUP: dict[type[exp.Expr], tuple[str, str]] = {
    exp.Sum: ("SUM({})", "{}"),
    exp.Count: ("SUM({})", "COALESCE({}, 0)"),
    exp.CountIf: ("SUM({})", "COALESCE({}, 0)"),
    exp.Min: ("MIN({})", "{}"),
    exp.Max: ("MAX({})", "{}"),
    exp.LogicalOr: ("LOGICAL_OR({})", "{}"),
    exp.LogicalAnd: ("LOGICAL_AND({})", "{}"),
}

# a COUNT(DISTINCT x) leaf (the day's distinct values of x, an ARRAY): its roll-up, value
DISTINCT_VALUE = "_distinct_value"
_COUNT_DISTINCT_ROLLUP = (
    "ARRAY_CONCAT_AGG({})",
    f"(SELECT COUNT(DISTINCT {DISTINCT_VALUE}) FROM UNNEST({{}}) AS {DISTINCT_VALUE})",
)

# node types a COUNT(DISTINCT x) argument may contain to roll up (x is then a scalar)
_SCALAR_NODES: tuple[type[exp.Expr], ...] = (
    exp.Column,
    exp.Identifier,
    exp.Literal,
    exp.Null,
    exp.Boolean,
    exp.Paren,
    exp.Var,
    exp.WeekStart,
    exp.DataType,
    exp.DataTypeParam,
    exp.Cast,  # TryCast (SAFE_CAST) is a subclass; the target type is checked separately
    exp.If,
    exp.Case,
    exp.Coalesce,
    exp.Nullif,
    exp.EQ,
    exp.NEQ,
    exp.GT,
    exp.GTE,
    exp.LT,
    exp.LTE,
    exp.And,
    exp.Or,
    exp.Not,
    exp.Is,
    exp.In,
    exp.Between,
    exp.Like,
    exp.ILike,
    exp.Add,
    exp.Sub,
    exp.Mul,
    exp.Div,
    exp.Mod,
    exp.Neg,
    exp.DPipe,
    exp.Concat,
    exp.Lower,
    exp.Upper,
    exp.Trim,
    exp.Substring,
    exp.Length,
    exp.Abs,
    exp.Round,
    exp.Floor,
    exp.Ceil,
    exp.Date,
    exp.DateTrunc,
    exp.TimestampTrunc,
    exp.Extract,
    exp.UnixDate,
)
_NON_SCALAR_TYPES = {
    exp.DataType.Type.ARRAY,
    exp.DataType.Type.STRUCT,
    exp.DataType.Type.JSON,
    exp.DataType.Type.GEOGRAPHY,
    exp.DataType.Type.MAP,
}


@attrs.frozen
class Leaf:
    column: str  # leaf column name in the partials table
    sql: str  # the aggregate, computed per client and day


@attrs.frozen
class Decomposition:
    leaves: tuple[Leaf, ...]
    # per client and window: one aggregate of each leaf's rows, named like the leaf
    rollups: tuple[Leaf, ...]
    rollup_sql: str  # the metric's value: a scalar expression over the `rollups` columns


def rolled_select(keys: list[str], columns: list[tuple[str, Decomposition]], rest: str) -> str:
    """`SELECT keys, rollup_sql AS name, ...` over `SELECT keys, rollups ... {rest}` (rest:
    FROM, WHERE, GROUP BY). `keys` may be qualified (`l.analysis_id`); the outer SELECT
    names them unqualified."""
    inner = [*keys, *(f"{r.sql} AS {r.column}" for _, d in columns for r in d.rollups)]
    outer = [k.rsplit(".", 1)[-1] for k in keys]
    outer += [f"{d.rollup_sql} AS {name}" for name, d in columns]
    sep = ",\n           "
    return f"SELECT {sep.join(outer)}\nFROM (\n    SELECT {sep.join(inner)}\n    {rest}\n)"


@attrs.frozen
class NotDecomposable:
    reason: str


def _parse(select_expression: str) -> exp.Expr:
    return sqlglot.parse_one(f"SELECT {select_expression}", read="bigquery").expressions[0].copy()


def _is_agg(node: exp.Expr) -> bool:
    return isinstance(node, exp.AggFunc)


def decompose(select_expression: str, prefix: str) -> Decomposition | NotDecomposable:
    """Leaves are named `<prefix>_<i>`; `prefix` must be unique per metric in a source."""
    try:
        tree = _parse(select_expression)
    except sqlglot.errors.ParseError as exc:
        return NotDecomposable(f"does not parse: {exc}")
    if isinstance(tree, exp.Alias):
        tree = tree.this
    if any(isinstance(n, exp.Window) for n in tree.walk()):
        return NotDecomposable("uses a window function")
    if any(isinstance(n, exp.Subquery | exp.Select) for n in tree.walk()):
        # subqueries at the top level (not inside an aggregate argument) are unsafe
        for node in tree.walk():
            if (
                isinstance(node, exp.Subquery | exp.Select)
                and node.find_ancestor(exp.AggFunc) is None
            ):
                return NotDecomposable("uses a subquery outside an aggregate")

    leaves: list[Leaf] = []
    rollups: list[Leaf] = []
    replacements: dict[int, str] = {}
    for node in tree.walk():
        if not _is_agg(node) or _in_subquery(node, tree):
            continue
        if node.find_ancestor(exp.AggFunc) is not None:
            continue  # nested: judged with its outer aggregate
        if any(
            _is_agg(inner) and not _in_subquery(inner, node)
            for inner in node.walk()
            if inner is not node
        ):
            return NotDecomposable(f"nested aggregate in {node.sql(dialect='bigquery')}")
        if isinstance(node, exp.Count) and isinstance(node.this, exp.Distinct):
            arg = _distinct_argument(node.this)
            if isinstance(arg, NotDecomposable):
                return arg
            leaf = Leaf(f"{prefix}_{len(leaves)}", f"ARRAY_AGG(DISTINCT {arg} IGNORE NULLS)")
            leaves.append(leaf)
            rollups.append(Leaf(leaf.column, _COUNT_DISTINCT_ROLLUP[0].format(leaf.column)))
            replacements[id(node)] = _COUNT_DISTINCT_ROLLUP[1].format(leaf.column)
            continue
        if isinstance(node, exp.Avg):
            arg = node.this.sql(dialect="bigquery")
            s = Leaf(f"{prefix}_{len(leaves)}", f"SUM({arg})")
            c = Leaf(f"{prefix}_{len(leaves) + 1}", f"COUNT({arg})")
            leaves += [s, c]
            rollups += [Leaf(x.column, f"SUM({x.column})") for x in (s, c)]
            replacements[id(node)] = f"({s.column} / NULLIF({c.column}, 0))"
            continue
        template = _ROLLUP.get(type(node))
        if template is None:
            name = node.sql_name() if hasattr(node, "sql_name") else type(node).__name__
            return NotDecomposable(f"aggregate {name} cannot be rolled up")
        leaf = Leaf(f"{prefix}_{len(leaves)}", node.sql(dialect="bigquery"))
        leaves.append(leaf)
        rollups.append(Leaf(leaf.column, template[0].format(leaf.column)))
        replacements[id(node)] = template[1].format(leaf.column)

    if not leaves:
        return NotDecomposable("has no aggregate")
    for col in tree.find_all(exp.Column):
        if col.find_ancestor(exp.AggFunc) is None:
            return NotDecomposable(f"column {col.sql(dialect='bigquery')} outside an aggregate")

    rolled = _transform(tree, replacements)
    return Decomposition(tuple(leaves), tuple(rollups), rolled.sql(dialect="bigquery"))


def _distinct_argument(distinct: exp.Distinct) -> str | NotDecomposable:
    """The BigQuery SQL of x in COUNT(DISTINCT x) when x is known to be a scalar (see the
    module doc), else why the metric stays on the direct path."""
    if len(distinct.expressions) != 1:
        return NotDecomposable("COUNT(DISTINCT ...) of several expressions needs the raw rows")
    arg = distinct.expressions[0]
    for node in arg.walk():
        if not isinstance(node, _SCALAR_NODES) or (
            isinstance(node, exp.In) and node.args.get("query") is not None
        ):
            return NotDecomposable(
                f"COUNT(DISTINCT ...) of {arg.sql(dialect='bigquery')} needs the raw rows: "
                f"{type(node).__name__} may not give a scalar to collect per day"
            )
        if isinstance(node, exp.DataType) and node.this in _NON_SCALAR_TYPES:
            return NotDecomposable(
                f"COUNT(DISTINCT ...) of {arg.sql(dialect='bigquery')} needs the raw rows: "
                f"values of type {node.sql(dialect='bigquery')} cannot be collected per day"
            )
    return arg.sql(dialect="bigquery")


def _in_subquery(node: exp.Expr, root: exp.Expr) -> bool:
    """True when `node` sits inside a SELECT nested below `root` (a row-level subquery)."""
    parent = node.parent
    while parent is not None and parent is not root:
        if isinstance(parent, exp.Select):
            return True
        parent = parent.parent
    return False


def _transform(tree: exp.Expr, replacements: dict[int, str]) -> exp.Expr:
    def swap(node: exp.Expr) -> exp.Expr:
        rep = replacements.get(id(node))
        if rep is not None:
            return sqlglot.parse_one(rep, read="bigquery")
        return node

    return tree.transform(swap, copy=False)
