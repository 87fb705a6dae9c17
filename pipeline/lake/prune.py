"""Which Hive partitions of ``events/`` a ``lake query`` can need, from its SQL.

DuckDB's own parser (``json_serialize_sql``, as :mod:`pipeline.lake.athena` uses it) gives
the query's tree; no regex reads SQL. A reference to the ``cloudtrail`` view is constrained
on a partition column only by what provably removes rows: a conjunct (``AND``) of the
``WHERE`` of the ``SELECT`` whose ``FROM`` holds the reference (directly, or through inner
joins only), of the form ``column = 'text'`` or ``column IN ('text', ...)``, the column being
``account``, ``region``, ``date``, ``hour``, or ``year``/``month``/``day`` (which combine into
dates); and ``date BETWEEN 'd1' AND 'd2'`` or ``date >= 'd1' AND date < 'd2'`` (the days in
between, as the archiver only writes ``YYYY-MM-DD`` dates). Anything else (``OR``, ``NOT``,
a function of the column, a number, an outer join, a derived table, a CTE named
``cloudtrail``, more than one statement, SQL the parser does not serialize) leaves the column
unconstrained. Every reference must be constrained for the listing to be: the
filter is the union over references, so pruning never drops a row any part of the query
reads; the query's predicates still filter rows as before.
"""

from __future__ import annotations

import calendar
import json
import operator
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from typing import Any

import duckdb

from pipeline.lake.athena import statement_nodes
from pipeline.lake.listing import PartitionFilter

VIEW = "cloudtrail"
COLUMNS = ("account", "region", "date", "hour", "year", "month", "day")
INNER_JOINS = frozenset({"REGULAR", "CROSS", "NATURAL"})
"""``ref_type`` of an ``INNER`` join node whose sides both keep only matching rows."""
ANY = PartitionFilter()
RANGES = {"COMPARE_GREATERTHAN": (1, True), "COMPARE_GREATERTHANOREQUALTO": (0, True),
          "COMPARE_LESSTHAN": (-1, False), "COMPARE_LESSTHANOREQUALTO": (0, False)}
"""``col <op> 'd'``: (days from ``d`` to the bound, whether it is the first day or the last)."""
FLIPPED = {"COMPARE_GREATERTHAN": "COMPARE_LESSTHAN", "COMPARE_LESSTHAN": "COMPARE_GREATERTHAN",
           "COMPARE_GREATERTHANOREQUALTO": "COMPARE_LESSTHANOREQUALTO",
           "COMPARE_LESSTHANOREQUALTO": "COMPARE_GREATERTHANOREQUALTO",
           "COMPARE_NOTEQUAL": "COMPARE_NOTEQUAL"}
"""``'d' <op> col`` is ``col <FLIPPED[op]> 'd'``."""
COMPARE = {"COMPARE_GREATERTHAN": operator.gt, "COMPARE_GREATERTHANOREQUALTO": operator.ge,
           "COMPARE_LESSTHAN": operator.lt, "COMPARE_LESSTHANOREQUALTO": operator.le,
           "COMPARE_NOTEQUAL": operator.ne}
DOMAINS = {"hour": frozenset(f"{h:02d}" for h in range(24)),
           "month": frozenset(f"{m:02d}" for m in range(1, 13)),
           "day": frozenset(f"{d:02d}" for d in range(1, 32))}
"""Every value ``hour``, ``month`` and ``day`` can take (the archiver's ``%H`` and the ``%m``
and ``%d`` of ``date``), so any text comparison on them is a finite set of values."""
MAX_RANGE_DAYS = 3660
"""A ``date`` range longer than this (ten years) is not enumerated: it prunes little."""

Node = dict[str, Any]
Constraints = dict[str, frozenset[str]]
"""Per reference: the values a column is restricted to; a column absent is unconstrained."""


def partition_filter(con: duckdb.DuckDBPyConnection, sql: str) -> PartitionFilter:
    """The partitions ``sql`` (DuckDB SQL, after :func:`pipeline.lake.athena.rewrite`) can
    read from the ``cloudtrail`` view; :data:`ANY` when not provably fewer than all."""
    tree = json.loads(con.execute("SELECT json_serialize_sql(?)", [sql]).fetchall()[0][0])
    statements = tree.get("statements") or []
    if tree.get("error") or len(statements) != 1:
        return ANY
    root = statements[0]
    if any(_is_cloudtrail_cte(n) for n in statement_nodes(root)):
        return ANY
    refs = [n for n in statement_nodes(root) if _is_view(n)]
    owned: list[Constraints] = []
    for select in (n for n in statement_nodes(root) if n.get("type") == "SELECT_NODE"):
        aliases = _owned_aliases(select.get("from_table"))
        for alias in aliases:
            owned.append(_constraints(_conjuncts(select.get("where_clause")), alias,
                                      len(aliases) == 1))
    if not refs or len(owned) != len(refs):
        return ANY  # a reference outside any FROM we understand (an outer join, ...)
    return _union([_to_filter(c) for c in owned])


def _is_view(node: Node) -> bool:
    return node.get("type") == "BASE_TABLE" and str(node.get("table_name")).lower() == VIEW


def _is_cloudtrail_cte(node: Node) -> bool:
    entries = node.get("cte_map", {}).get("map", []) if "cte_map" in node else []
    return any(str(e.get("key")).lower() == VIEW for e in entries)


def _owned_aliases(table: Any) -> list[str]:
    """The names (alias, else table name) of the view's references in this ``FROM``, reached
    through inner joins only: the ``WHERE`` filters each of their rows."""
    if not isinstance(table, dict):
        return []
    if _is_view(table):
        return [str(table.get("alias") or table["table_name"]).lower()]
    if table.get("type") == "JOIN" and table.get("join_type") == "INNER" \
            and table.get("ref_type") in INNER_JOINS:
        return _owned_aliases(table.get("left")) + _owned_aliases(table.get("right"))
    return []


def _conjuncts(expr: Any) -> Iterator[Node]:
    if not isinstance(expr, dict):
        return
    if expr.get("type") == "CONJUNCTION_AND":
        for child in expr.get("children", []):
            yield from _conjuncts(child)
    else:
        yield expr


def _constraints(conjuncts: Iterator[Node], alias: str, sole: bool) -> Constraints:
    """What the conjuncts restrict the reference named ``alias`` to; unqualified columns count
    when it is the only reference of its ``FROM`` to the view (every reference has all the
    partition columns, so an unqualified one names it, or the query is ambiguous)."""
    out: Constraints = {}
    firsts: list[date] = []
    lasts: list[date] = []
    for expr in conjuncts:
        found = _column_values(expr) or _domain_values(expr)
        if found is not None and found[0][-1] in COLUMNS and _names(found[0], alias, sole):
            column, values = found[0][-1], found[1]
            out[column] = out[column] & values if column in out else values
        bounds = _date_bounds(expr)
        if bounds is not None and _names(bounds[0], alias, sole):
            firsts += bounds[1]
            lasts += bounds[2]
    span = _calendar(max(firsts), min(lasts)) if firsts and lasts else None
    if span is not None:
        out["date"] = out["date"] & span if "date" in out else span
    return out


def _names(parts: list[str], alias: str, sole: bool) -> bool:
    """Whether a column reference's name parts name a column of the reference ``alias``."""
    return parts[:-1] == [alias] or (len(parts) == 1 and sole)


def _domain_values(expr: Node) -> tuple[list[str], frozenset[str]] | None:
    """``(column name parts, values)`` for ``<>``, ``NOT IN``, ``<``, ``<=``, ``>``, ``>=``,
    ``BETWEEN`` with text on ``hour``, ``month`` or ``day``: the values of the column's few
    possible ones (two digits each) that satisfy it, compared as text as DuckDB does."""
    kind = expr.get("type")
    column: Any
    tests: list[tuple[Callable[[Any, Any], bool], str | None]]
    if kind == "COMPARE_BETWEEN":
        column, bounds = expr.get("input"), [_text(expr.get("lower")), _text(expr.get("upper"))]
        tests = [(operator.ge, bounds[0]), (operator.le, bounds[1])]
    elif kind in COMPARE:
        column, other = expr.get("left"), expr.get("right")
        if not _is_column(column):
            column, other, kind = other, column, FLIPPED[kind]
        tests = [(COMPARE[kind], _text(other))]
    elif kind == "COMPARE_NOT_IN":
        column, *others = expr.get("children", [None])
        tests = [(operator.ne, _text(other)) for other in others]
    else:
        return None
    if not _is_column(column) or any(text is None for _, text in tests):
        return None
    names = [str(n).lower() for n in column["column_names"]]
    domain = DOMAINS.get(names[-1])
    if domain is None:
        return None
    return names, frozenset(v for v in domain if all(test(v, text) for test, text in tests))


def _date_bounds(expr: Node) -> tuple[list[str], list[date], list[date]] | None:
    """``(column name parts, first days, last days)`` of ``col BETWEEN 'd1' AND 'd2'`` and
    ``col >|>=|<|<= 'd'`` (either side) on ``date``, inclusive; a bound that is not a
    ``YYYY-MM-DD`` date is left out (strings compare as text, and only dates are keys)."""
    kind = expr.get("type")
    column: Any
    if kind == "COMPARE_BETWEEN":
        column, first, last = expr.get("input"), _day(expr.get("lower")), _day(expr.get("upper"))
    elif kind in RANGES:
        column, other = expr.get("left"), expr.get("right")
        if not _is_column(column):
            column, other, kind = other, column, FLIPPED[kind]
        step_days, is_first = RANGES[kind]
        day = _day(other)
        try:
            bound = day + timedelta(days=step_days) if day else None
        except OverflowError:
            bound = None
        first, last = (bound, None) if is_first else (None, bound)
    else:
        return None
    if not _is_column(column) or str(column["column_names"][-1]).lower() != "date":
        return None
    names = [str(n).lower() for n in column["column_names"]]
    return names, [first] if first else [], [last] if last else []


def _day(node: Any) -> date | None:
    text = _text(node)
    if text is None or len(text) != 10 or text[4] != "-" or text[7] != "-":
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def _calendar(first: date, last: date) -> frozenset[str] | None:
    """The ``YYYY-MM-DD`` dates from ``first`` to ``last`` inclusive; None (any) past
    :data:`MAX_RANGE_DAYS`."""
    days = (last - first).days
    if days > MAX_RANGE_DAYS:
        return None
    return frozenset((first + timedelta(days=i)).isoformat() for i in range(days + 1))


def _column_values(expr: Node) -> tuple[list[str], frozenset[str]] | None:
    """``(column name parts, values)`` for ``col = 'v'``, ``'v' = col``, ``col IN ('v', ...)``."""
    kind = expr.get("type")
    operands: list[Any]
    if kind == "COMPARE_EQUAL":
        operands = [expr.get("left"), expr.get("right")]
        if not _is_column(operands[0]):
            operands.reverse()
    elif kind == "COMPARE_IN":
        operands = list(expr.get("children", []))
    else:
        return None
    column, constants = operands[0], operands[1:]
    texts = [_text(c) for c in constants]
    if not _is_column(column) or not texts or any(t is None for t in texts):
        return None
    names = [str(n).lower() for n in column["column_names"]]
    return names, frozenset(t for t in texts if t is not None)


def _is_column(node: Any) -> bool:
    return isinstance(node, dict) and node.get("class") == "COLUMN_REF"


def _text(node: Any) -> str | None:
    if not isinstance(node, dict) or node.get("class") != "CONSTANT":
        return None
    literal = node.get("literal") or {}
    return str(literal["text"]) if literal.get("kind") == "STRING" else None


def _to_filter(c: Constraints) -> PartitionFilter:
    return PartitionFilter(c.get("account"), c.get("region"), _dates(c), c.get("hour"))


def _dates(c: Constraints) -> frozenset[str] | None:
    """``date`` values, narrowed by (or made of) ``year``, ``month`` and ``day``: a year, or a
    year and month, enumerate their calendar days; without a year nothing is enumerable."""
    if "year" not in c:
        return _narrow(c.get("date"), c.get("month"), c.get("day"))
    made = frozenset(f"{y}-{m:02d}-{d:02d}" for y in c["year"] if _is_year(y)
                     for m in range(1, 13) for d in range(1, calendar.monthrange(int(y), m)[1] + 1))
    made = _narrow(made, c.get("month"), c.get("day")) or frozenset()
    return made & c["date"] if "date" in c else made


def _narrow(dates: frozenset[str] | None, months: frozenset[str] | None,
            days: frozenset[str] | None) -> frozenset[str] | None:
    """The ``YYYY-MM-DD`` dates whose month and day are among those wanted (None: any)."""
    if dates is None:
        return None
    return frozenset(d for d in dates if (months is None or d[5:7] in months)
                     and (days is None or d[8:10] in days))


def _is_year(text: str) -> bool:
    return len(text) == 4 and text.isdigit()


def _union(filters: list[PartitionFilter]) -> PartitionFilter:
    def merge(sets: list[frozenset[str] | None]) -> frozenset[str] | None:
        if any(s is None for s in sets):
            return None
        return frozenset().union(*(s for s in sets if s is not None))

    levels = [[values for _, values in f.levels()] for f in filters]
    return PartitionFilter(*(merge(list(column)) for column in zip(*levels, strict=True)))

