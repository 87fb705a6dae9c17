"""Presto/Trino (Athena) functions for ``trailpipe lake query``, as DuckDB macros.

Published Athena CloudTrail queries call Presto functions. We make them run unchanged by
defining DuckDB *temporary macros* on the query connection (:func:`install`), not by rewriting
the SQL text: a macro is expanded by DuckDB's own binder, so it composes with any SQL DuckDB
parses, keeps filter pushdown, and its definition is one line of SQL per function below. A
macro shadows a built-in of the same name on that connection only; its body calls the
built-in through ``system.main.<name>``.

Checked against DuckDB 2.0:

* **Already there with Presto's semantics, left alone**: ``cardinality`` (arrays and maps),
  ``split``, ``split_part``, ``strpos``, ``contains`` (arrays), ``concat``, ``substr``,
  ``lower``/``upper``, ``length``, ``date_trunc``, ``year``/``month``/``day``/``hour``,
  ``arbitrary``, ``count_if``, ``max_by``/``min_by``, ``json_array_length``, ``if``,
  ``try_cast``, ``now``/``current_timestamp``, ``UNNEST`` in ``FROM`` (``CROSS JOIN
  UNNEST(resources) AS t(r)``), ``INTERVAL '1' DAY``, ``timestamp '...'`` literals.
* **Missing, defined here**: ``json_extract_scalar``, ``json_parse``, ``json_format``,
  ``from_iso8601_timestamp``, ``from_iso8601_date``, ``to_iso8601``, ``date_parse`` and
  ``date_format`` (by the rewrite below), ``to_unixtime``, ``from_unixtime``,
  ``regexp_like``, ``approx_distinct``, ``approx_percentile``, ``array_join``, ``date``,
  ``day_of_week``, ``levenshtein_distance``.
* **Present with different semantics, redefined with Presto's** (on this connection, Presto
  wins where the names collide):

  - ``json_extract`` also takes Presto's bracket paths (``$["key"]``), and gives NULL for text
    that is not JSON (DuckDB raises);
  - ``date_add(unit, n, ts)`` is Presto's three-argument form (DuckDB's ``date_add(ts,
    interval)`` still works);
  - ``date_diff(unit, a, b)`` counts whole units elapsed, as Presto does (DuckDB counts unit
    boundaries crossed: 23:00 → 01:00 next day is 1 day in DuckDB, 0 in Presto);
  - ``element_at`` works on arrays (1-based, negative from the end, NULL out of range) and
    returns a map's value, not a one-element list;
  - ``replace(s, search)`` with two arguments removes ``search``;
  - ``regexp_extract`` gives NULL when nothing matches (DuckDB: empty string);
    ``regexp_replace`` replaces every match and takes ``$1`` group references;
  - ``dow`` is ISO (Monday 1 .. Sunday 7), as Presto's ``day_of_week`` (``extract(dow FROM
    t)`` is DuckDB syntax, not a call, and keeps DuckDB's Sunday 0).

  DuckDB's own ``json(x)`` macro calls ``json_extract``, so on this connection it too gives
  NULL for text that is not JSON.

Lambdas: Presto's ``x -> expr`` syntax is enabled on the connection, so ``filter(array, x ->
...)`` runs as is; ``transform(array, x -> ...)`` is renamed to DuckDB's ``list_transform`` by
the rewrite below (a macro cannot pass a lambda on).

Timestamps: ``from_iso8601_timestamp`` gives ``TIMESTAMP WITH TIME ZONE``; the connection's
time zone is UTC (as Athena's session), so comparing it with ``timestamp '...'`` literals or
``date_parse`` results means UTC.

``date_parse`` and ``date_format`` are the one place (with the ``transform`` rename) where we
rewrite SQL text (:func:`rewrite`): DuckDB's strptime/strftime insist on a constant format,
which a macro parameter is not. DuckDB's own parser (``json_serialize_sql``) locates each call
and its format literal; the call becomes ``strptime``/``strftime`` and the literal's Presto
(MySQL-style) specifiers become DuckDB's (``%i`` minutes, ``%s`` seconds, ``%M`` month name,
``%T``, ``%r``, ``%h``, ``%c``, ``%e``, ``%k``, ``%l``, ``%W``); ``%D %U %u %V %v %X %x`` have no
DuckDB equivalent (DuckDB reports them).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import duckdb

_PRESTO_FORMAT = {"%i": "%M", "%M": "%B", "%s": "%S", "%T": "%H:%M:%S", "%r": "%I:%M:%S %p",
                  "%h": "%I", "%W": "%A", "%c": "%-m", "%e": "%-d", "%k": "%-H", "%l": "%-I"}
"""Presto (MySQL-style) date specifiers that differ from DuckDB's strptime/strftime ones;
the others (``%Y %m %d %H %S %f %p %a %b %j %y %I %%``) mean the same in both."""
_SPECIFIER = re.compile(r"%.")
_DATE_FUNCTIONS = {"date_parse": "strptime", "date_format": "strftime"}
_RENAMED = {"transform": "list_transform"}
"""Presto functions taking a lambda (a macro cannot pass one on) with a DuckDB twin."""
_REWRITTEN_CALL = re.compile(r"\b(date_parse|date_format|transform)\s*\(", re.IGNORECASE)


def duckdb_format(presto: str) -> str:
    """The DuckDB strptime/strftime format of a Presto date format (one left-to-right pass,
    so ``%%i`` stays a literal ``%i``)."""
    return _SPECIFIER.sub(lambda m: _PRESTO_FORMAT.get(m[0], m[0]), presto)


def rewrite(con: duckdb.DuckDBPyConnection, sql: str) -> str:
    """``sql`` with each ``date_parse(x, '<presto format>')`` / ``date_format(t, '...')`` call
    turned into ``strptime``/``strftime`` with the translated format, and ``transform`` into
    ``list_transform``; everything else (comments included) untouched. Calls whose format is
    not a string literal, and statements DuckDB's parser cannot serialise (non-SELECT), are
    left as they are (DuckDB then reports them)."""
    if not _REWRITTEN_CALL.search(sql):
        return sql
    tree = json.loads(con.execute("SELECT json_serialize_sql(?)", [sql]).fetchall()[0][0])
    if tree.get("error"):
        return sql
    text = sql.encode()  # DuckDB's query locations are byte offsets
    edits: list[tuple[int, int, bytes]] = []
    for node in statement_nodes(tree):
        edits += _call_edits(node, text)
    for start, length, new in sorted(edits, reverse=True):
        text = text[:start] + new + text[start + length:]
    return text.decode()


def statement_nodes(tree: Any) -> Iterator[dict[str, Any]]:
    """Every JSON object in a serialised statement, depth first."""
    if isinstance(tree, dict):
        yield tree
        for value in tree.values():
            yield from statement_nodes(value)
    elif isinstance(tree, list):
        for value in tree:
            yield from statement_nodes(value)


def _call_edits(node: dict[str, Any], text: bytes) -> list[tuple[int, int, bytes]]:
    """(byte offset, length, replacement) edits for one call node: a date_parse/date_format
    with a literal format, or a renamed function; none for any other node."""
    name = str(node.get("function_name", "")).lower()
    at = node.get("query_location")
    if (node.get("class") != "FUNCTION" or at is None
            or text[at:at + len(name)].decode(errors="replace").lower() != name):
        return []
    if name in _RENAMED:
        return [(at, len(name), _RENAMED[name].encode())]
    args = node.get("arguments") or []
    if name not in _DATE_FUNCTIONS or len(args) != 2:
        return []
    fmt = args[1].get("expression", {})
    if fmt.get("class") != "CONSTANT" or fmt.get("literal", {}).get("kind") != "STRING":
        return []
    literal = "'" + duckdb_format(fmt["literal"]["text"]).replace("'", "''") + "'"
    return [(at, len(name), _DATE_FUNCTIONS[name].encode()),
            (fmt["query_location"], fmt["query_location_length"], literal.encode())]


_PATH = r"""system.main.regexp_replace(p, '\[\s*"([^"]*)"\s*\]', '."\1"', 'g')"""
"""SQL turning Presto's bracket JSON path steps (``$["a b"]``) into DuckDB's (``$."a b"``)."""

_UNIT_INTERVALS = {"millisecond": "to_milliseconds(CAST(n AS BIGINT))",
                   "second": "to_seconds(CAST(n AS BIGINT))",
                   "minute": "to_minutes(CAST(n AS BIGINT))",
                   "hour": "to_hours(CAST(n AS BIGINT))", "day": "to_days(CAST(n AS INTEGER))",
                   "week": "to_weeks(CAST(n AS INTEGER))",
                   "month": "to_months(CAST(n AS INTEGER))",
                   "quarter": "to_months(CAST(3 * n AS INTEGER))",
                   "year": "to_years(CAST(n AS INTEGER))"}
_INTERVAL = ("CASE lower(u) " + " ".join(f"WHEN '{k}' THEN {v}" for k, v in
                                          _UNIT_INTERVALS.items())
             + " ELSE error('date_add: unknown unit ' || u) END")

_JSON_OK = "json_valid(j)"
_EXTRACT = f"system.main.json_extract(j, {_PATH})"

MACROS: dict[str, str] = {
    "json_extract": f"(j, p) AS CASE WHEN {_JSON_OK} THEN {_EXTRACT} END",
    "json_extract_scalar": (
        f"(j, p) AS CASE WHEN {_JSON_OK} AND json_type({_EXTRACT}) NOT IN ('OBJECT', 'ARRAY') "
        f"THEN system.main.json_extract_string(j, {_PATH}) END"),
    "json_parse": "(s) AS CAST(s AS JSON)",
    "json_format": "(j) AS CAST(j AS VARCHAR)",
    "from_iso8601_timestamp": "(s) AS CAST(s AS TIMESTAMPTZ)",
    "from_iso8601_date": "(s) AS CAST(s AS DATE)",
    "to_iso8601": ("(t) AS strftime(t, '%Y-%m-%dT%H:%M:%S.%g') || CASE WHEN typeof(t) = "
                   "'TIMESTAMP WITH TIME ZONE' THEN 'Z' ELSE '' END"),
    "date_add": f"(t, i) AS system.main.date_add(t, i), (u, n, t) AS t + {_INTERVAL}",
    "date_diff": "(u, a, b) AS system.main.date_sub(u, a, b)",
    "to_unixtime": "(t) AS epoch(t)",
    "from_unixtime": "(n) AS to_timestamp(n)",
    "regexp_like": "(s, p) AS regexp_matches(s, p)",
    "regexp_extract": (
        "(s, p) AS CASE WHEN regexp_matches(s, p) THEN system.main.regexp_extract(s, p) END, "
        "(s, p, g) AS CASE WHEN regexp_matches(s, p) "
        "THEN system.main.regexp_extract(s, p, g) END"),
    "regexp_replace": (
        "(s, p) AS system.main.regexp_replace(s, p, '', 'g'), "
        r"(s, p, r) AS system.main.regexp_replace(s, p, "
        r"system.main.regexp_replace(r, '\$(\d)', '\\\1', 'g'), 'g')"),
    "element_at": "(a, i) AS (a)[i]",
    "replace": "(s, f) AS system.main.replace(s, f, ''), "
               "(s, f, r) AS system.main.replace(s, f, r)",
    "approx_distinct": "(x) AS approx_count_distinct(x)",
    "approx_percentile": "(x, q) AS approx_quantile(x, q)",
    "array_join": "(a, sep) AS array_to_string(a, sep)",
    "date": "(x) AS CAST(x AS DATE)",
    "day_of_week": "(t) AS isodow(t)",
    "dow": "(t) AS isodow(t)",
    "levenshtein_distance": "(a, b) AS levenshtein(a, b)",
}
"""Macro name → DuckDB ``CREATE MACRO`` parameters and body (overloads comma-separated)."""


def install(con: duckdb.DuckDBPyConnection) -> None:
    """Define :data:`MACROS` as temporary macros on ``con`` and set its time zone to UTC.
    Call once per connection, before any query; raises ``duckdb.Error`` if DuckDB rejects a
    definition (a DuckDB upgrade changed a built-in)."""
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET lambda_syntax = 'ENABLE_SINGLE_ARROW'")  # Presto's x -> f(x)
    for name, definition in MACROS.items():
        con.execute(f"CREATE OR REPLACE TEMP MACRO {name}{definition}")
