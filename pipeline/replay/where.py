"""``trailpipe replay --where "SQL predicate"``: the predicate of a ``lake query`` WHERE, over
the replayed rows.

Contract. The predicate sees the rows as the ``cloudtrail`` view of ``lake query`` shows them
(:mod:`pipeline.lake.query`), so one predicate keeps the same events in both: the decoded
events table (Avro names, ``readOnly`` a boolean, ...) is projected onto the lake's columns
(:func:`pipeline.lake.columns.lake_table`: lower-case names as AWS's Athena DDL has them,
``useridentity.arn``, ``readonly``/``managementevent`` as ``'true'``/``'false'``, JSON members
such as ``requestparameters`` as JSON text, ``eventtime`` the string CloudTrail sent), plus the
view's partition columns computed as the archiver keys its objects: ``account``
(recipientAccountId, else userIdentity.accountId, else ``'unknown'``), ``region``
(awsRegion, else ``'unknown'``), ``date``/``hour`` (UTC, of eventTime, else the ingest time)
and ``year``/``month``/``day``. Athena's Presto functions are there
(:mod:`pipeline.lake.athena`: ``json_extract_scalar``, ``from_iso8601_timestamp``, ...).

One column of the view is not: ``_timestamp_ms`` (the Kafka record timestamp), which the
replayed rows do not carry; a predicate naming it is refused as an unknown column rather than
silently compared with NULL.

The text must be ONE boolean expression: a second statement, anything that is not a WHERE
condition (``UNION``, ``ORDER BY``, ``LIMIT``, ``GROUP BY``, ...), a subquery, a non-boolean
expression or an unknown column is a ValueError. DuckDB runs with external access off, so the
predicate cannot read files either.
"""

from __future__ import annotations

import json
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.lake import athena
from pipeline.lake.columns import lake_table
from pipeline.lake.query import VIEW
from pipeline.replay.lake_rows import empty_decoded

_ROW = "__where_row"
_SOURCE = "__where_events"
_TIME_MS = "coalesce(_event_time_ms, _ingest.ingesttimems)"
_PARTITION_COLUMNS = f"""
    coalesce(nullif(recipientaccountid, ''), nullif(useridentity.accountid, ''), 'unknown')
        AS account,
    coalesce(nullif(awsregion, ''), 'unknown') AS region,
    strftime(make_timestamp({_TIME_MS} * 1000), '%Y-%m-%d') AS date,
    strftime(make_timestamp({_TIME_MS} * 1000), '%H') AS hour,
    strftime(make_timestamp({_TIME_MS} * 1000), '%Y') AS year,
    strftime(make_timestamp({_TIME_MS} * 1000), '%m') AS month,
    strftime(make_timestamp({_TIME_MS} * 1000), '%d') AS day"""


def check_where(sql: str) -> None:
    """Raise ValueError (a message naming the problem) unless ``sql`` is one boolean SQL
    expression over the view's columns. Needs no data: it binds against an empty table of
    the decoded events shape."""
    con = _connection(empty_decoded())
    try:
        _checked_query(con, sql)
    finally:
        con.close()


def apply_where(table: pa.Table, sql: str) -> pa.Table:
    """The rows of ``table`` (decoded event columns plus ``_partition``/``_offset``) for which
    ``sql`` is TRUE (FALSE and NULL drop the row), in their order, columns unchanged.
    ValueError as :func:`check_where`, and when evaluating it fails on a row (as the same
    query in ``lake query`` would, e.g. ``from_iso8601_timestamp`` of a malformed eventTime)."""
    con = _connection(table)
    try:
        query = _checked_query(con, sql)
        rows = con.sql(query).to_arrow_table().column(0)
    except duckdb.Error as exc:  # on the data, e.g. a cast of a malformed eventTime
        raise ValueError(f"--where failed on the replayed rows: {_first_line(exc)}") from exc
    finally:
        con.close()
    return table.take(rows.take(pc.sort_indices(rows)))


def where_schema() -> pa.Schema:
    """The columns a predicate sees, in order: those of ``lake query``'s ``cloudtrail`` view
    but ``_timestamp_ms``."""
    con = _connection(empty_decoded())
    try:
        schema = con.sql(f"SELECT * EXCLUDE ({_ROW}) FROM {VIEW}").to_arrow_table().schema
    finally:
        con.close()
    return schema


def _connection(table: pa.Table) -> duckdb.DuckDBPyConnection:
    """A connection with the view ``cloudtrail`` over ``table`` (lake columns, partition
    columns, and a row number) and Athena's functions; no file or network access."""
    con = duckdb.connect(config={"enable_external_access": False})
    athena.install(con)
    n = table.num_rows
    lake = lake_table(table.append_column("_timestamp_ms", pa.nulls(n, pa.int64())))
    lake = lake.drop_columns(["_timestamp_ms"]).append_column(_ROW, pa.array(range(n),
                                                                               pa.int64()))
    con.register(_SOURCE, lake)
    con.execute(f"CREATE TEMP VIEW {VIEW} AS SELECT *, {_PARTITION_COLUMNS} FROM {_SOURCE}")
    return con


def _checked_query(con: duckdb.DuckDBPyConnection, sql: str) -> str:
    """The row-number query for ``sql`` after the shape and binding checks."""
    # The newlines end a trailing ``--`` comment before the closing parenthesis.
    query = athena.rewrite(con, f"SELECT {_ROW} FROM {VIEW} WHERE (\n{sql}\n)")
    try:
        statements = duckdb.extract_statements(query)
    except duckdb.Error as exc:
        raise ValueError(f"--where: not a SQL expression: {_first_line(exc)}") from exc
    if len(statements) != 1:
        raise ValueError("--where: one SQL expression expected, got more than one statement")
    tree = json.loads(con.execute("SELECT json_serialize_sql(?)", [query]).fetchall()[0][0])
    _check_shape(tree)
    try:
        types = con.sql(f"SELECT (\n{_where_text(query)}\n) FROM {VIEW} LIMIT 0").types
    except duckdb.Error as exc:
        raise ValueError(f"--where: {_first_line(exc)}") from exc
    if str(types[0]) not in ("BOOLEAN", '"NULL"', "NULL"):
        raise ValueError(f"--where: the expression is {types[0]}, not a boolean")
    return query


def _where_text(query: str) -> str:
    return query[query.index("WHERE (") + len("WHERE ("):-1]


def _check_shape(tree: dict[str, Any]) -> None:
    """The serialised query must be our SELECT with only a WHERE added: one SELECT node, no
    modifiers, grouping, HAVING or QUALIFY, and no subquery anywhere."""
    statements = tree.get("statements") or []
    node = statements[0]["node"] if len(statements) == 1 else {}
    extra = (node.get("type") != "SELECT_NODE" or node.get("modifiers")
             or node.get("group_expressions") or node.get("having") or node.get("qualify")
             or (node.get("cte_map") or {}).get("map")
             or (node.get("from_table") or {}).get("table_name") != VIEW)
    if tree.get("error") or extra:
        raise ValueError("--where: one boolean expression expected (no UNION, ORDER BY, "
                         "LIMIT, GROUP BY, ... after it)")
    if any(n.get("class") == "SUBQUERY" for n in athena.statement_nodes(node.get("where_clause"))):
        raise ValueError("--where: subqueries are not allowed; the predicate sees one event")


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0]
