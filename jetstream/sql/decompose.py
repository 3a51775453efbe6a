"""Decide from a metric's SQL AST whether it can be rolled up from daily partials, and
build the leaf aggregates and the roll-up expression. Pure.

A select expression is decomposable when every column reference sits inside an aggregate
of a decomposable kind (SUM, COUNT (not DISTINCT), COUNTIF, MIN, MAX, LOGICAL_OR,
LOGICAL_AND, AVG), no aggregate nests another, and the rest is arithmetic or scalar
functions of those aggregates. Each aggregate becomes a leaf computed once per client and
day; the window value re-evaluates the expression with each aggregate replaced by its
roll-up over the leaves (SUM of sums, SUM of counts, MIN of mins, ...).
"""

from __future__ import annotations

import attrs
import sqlglot
from sqlglot import exp

# aggregate class -> roll-up of its leaf ("{}" is the leaf column)
_ROLLUP: dict[type[exp.Expr], str] = {
    exp.Sum: "SUM({})",
    exp.Count: "COALESCE(SUM({}), 0)",
    exp.CountIf: "COALESCE(SUM({}), 0)",
    exp.Min: "MIN({})",
    exp.Max: "MAX({})",
    exp.LogicalOr: "LOGICAL_OR({})",
    exp.LogicalAnd: "LOGICAL_AND({})",
}


@attrs.frozen
class Leaf:
    column: str  # leaf column name in the partials table
    sql: str  # the aggregate, computed per client and day


@attrs.frozen
class Decomposition:
    leaves: tuple[Leaf, ...]
    rollup_sql: str  # the expression over leaf columns (aggregates of leaves)


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
            return NotDecomposable("COUNT(DISTINCT ...) needs the raw rows")
        if isinstance(node, exp.Avg):
            arg = node.this.sql(dialect="bigquery")
            s = Leaf(f"{prefix}_{len(leaves)}", f"SUM({arg})")
            c = Leaf(f"{prefix}_{len(leaves) + 1}", f"COUNT({arg})")
            leaves += [s, c]
            replacements[id(node)] = f"(SUM({s.column}) / NULLIF(SUM({c.column}), 0))"
            continue
        template = _ROLLUP.get(type(node))
        if template is None:
            name = node.sql_name() if hasattr(node, "sql_name") else type(node).__name__
            return NotDecomposable(f"aggregate {name} cannot be rolled up")
        leaf = Leaf(f"{prefix}_{len(leaves)}", node.sql(dialect="bigquery"))
        leaves.append(leaf)
        replacements[id(node)] = template.format(leaf.column)

    if not leaves:
        return NotDecomposable("has no aggregate")
    for col in tree.find_all(exp.Column):
        if col.find_ancestor(exp.AggFunc) is None:
            return NotDecomposable(f"column {col.sql(dialect='bigquery')} outside an aggregate")

    rolled = _transform(tree, replacements)
    return Decomposition(tuple(leaves), rolled.sql(dialect="bigquery"))


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
