"""The aggregation columns of a decoded events batch, computed on whole Arrow columns.

Definitions (the brute-force recount in the tests uses the same ones):

* ``time_ms``: ``eventTimeMs``, else the Kafka timestamp (records without a usable eventTime);
* ``account``: ``recipientAccountId``, else ``userIdentity.accountId``, else ``""`` — the event
  key's account (:mod:`pipeline.events.partition`), so one key's events share one partition;
* ``region``: ``awsRegion`` else ``""``; ``event_source``/``event_name`` else ``""``;
* ``outcome``: ``errorCode``, else ``OK``; ``identity_type``: ``userIdentity.type`` else ``""``;
* ``principal``: ``userIdentity.arn``, else ``invokedBy``, else ``principalId`` (null: none);
* ``source_ip``: ``sourceIPAddress`` (null: none); ``user_agent``: ``userAgent``;
* ``write_management``: ``readOnly`` is false and the event is a management event
  (``managementEvent`` true, or ``eventCategory`` Management) — what Insights analyses.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

DIMENSIONS = ("account", "region", "event_source", "event_name", "outcome", "identity_type")
"""The key of one aggregate, in Kafka-key order."""


def _str(table: pa.Table, name: str) -> pa.ChunkedArray:
    if name in table.column_names:
        return table.column(name)
    return pa.chunked_array([pa.nulls(table.num_rows, pa.string())])


def _identity(table: pa.Table, field: str) -> pa.ChunkedArray | pa.Array:
    if "userIdentity" not in table.column_names:
        return pa.nulls(table.num_rows, pa.string())
    struct = table.column("userIdentity")
    if not any(struct.type.field(i).name == field for i in range(struct.type.num_fields)):
        return pa.nulls(table.num_rows, pa.string())
    return pc.struct_field(struct, field)


def aggregation_columns(table: pa.Table) -> pa.Table:
    """A table with ``partition``, ``offset``, ``time_ms``, the :data:`DIMENSIONS`,
    ``principal``, ``source_ip``, ``user_agent`` and ``write_management`` (one row per event,
    same order)."""
    empty = pa.scalar("", pa.string())
    time_ms = pc.coalesce(table.column("eventTimeMs"), table.column("_timestamp_ms"))
    account = pc.coalesce(_str(table, "recipientAccountId"), _identity(table, "accountId"), empty)
    read_only = table.column("readOnly") if "readOnly" in table.column_names else None
    management = pc.or_kleene(
        pc.equal(table.column("managementEvent"), True),
        pc.equal(_str(table, "eventCategory"), "Management"))
    writes = pc.and_(pc.fill_null(pc.equal(read_only, False), False),
                     pc.fill_null(management, False)) if read_only is not None else \
        pa.chunked_array([pa.array([False] * table.num_rows)])
    return pa.table({
        "partition": table.column("_partition"), "offset": table.column("_offset"),
        "time_ms": time_ms,
        "account": account,
        "region": pc.coalesce(_str(table, "awsRegion"), empty),
        "event_source": pc.coalesce(_str(table, "eventSource"), empty),
        "event_name": pc.coalesce(_str(table, "eventName"), empty),
        "outcome": pc.coalesce(_str(table, "errorCode"), pa.scalar("OK")),
        "identity_type": pc.coalesce(_identity(table, "type"), empty),
        "principal": pc.coalesce(_identity(table, "arn"), _identity(table, "invokedBy"),
                                 _identity(table, "principalId")),
        "source_ip": _str(table, "sourceIPAddress"),
        "user_agent": _str(table, "userAgent"),
        "write_management": writes,
    })
