"""The lake's column schema (the CloudTrail table AWS documents for Athena) and the conversion
of ApiCallEvent datums into Arrow tables of that schema, column by column.

Columns, in order:

* the CloudTrail columns of AWS's Athena DDL, lower-case, same types: ``useridentity`` and
  ``tlsdetails`` are structs, ``resources`` an array of structs, the free-form JSON members
  (``requestparameters``, ``responseelements``, ``additionaleventdata``,
  ``serviceeventdetails``, ...) are JSON text, ``readonly`` is the string ``"true"``/``"false"``
  (as AWS's DDL declares it). Fields the Avro model carries beyond that DDL are appended where
  they belong (``useridentity.identityprovider``, ``resources[].arnprefix``, ``addendum``,
  ``managementevent`` as ``"true"``/``"false"`` like ``readonly``, ``insightdetails``, ...).
  Existing CloudTrail SQL therefore runs unchanged; extra columns are ignored by it.
* lossless fidelity: ``_unmodelled`` (JSON text of everything the typed columns do not hold,
  see :mod:`pipeline.events.mapping`), ``_event_time_ms`` / ``_event_time_status``,
  ``_ingest`` and ``_labels``: with these, :func:`to_datums` gives back the exact datum, and
  ``from_avro`` the exact CloudTrail record.
* Kafka coordinates of every row: ``_partition`` (int32), ``_offset`` and ``_timestamp_ms``
  (int64), so readers can de-duplicate on (``_partition``, ``_offset``).

The Hive partition columns ``account``/``region``/``date``/``hour`` are *not* in the files;
readers take them from the object path (:func:`pipeline.lake.layout.object_key`).

Conversion cost: one C++ pass (``pa.array``) turns the decoded dicts into an Arrow struct
shaped like the Avro schema; renaming and type fixes then work on whole columns (zero-copy
re-wrapping of child arrays, one vectorised cast per boolean), never per row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.events.batch_arrow import avro_arrow_type
from pipeline.events.schemas import default_registry

_S = pa.string()
_MAP = pa.map_(pa.string(), pa.string())


def _struct(*fields: str | tuple[str, pa.DataType]) -> pa.StructType:
    """A struct type; a bare name is a string field."""
    return pa.struct([(f, _S) if isinstance(f, str) else f for f in fields])


_SESSION_CONTEXT = _struct(
    ("attributes", _struct("mfaauthenticated", "creationdate")),
    ("sessionissuer", _struct("type", "principalid", "arn", "accountid", "username")),
    "ec2roledelivery",
    ("webidfederationdata", _struct("federatedprovider", ("attributes", _MAP))),
    "sourceidentity", "assumedroot",
)
_USER_IDENTITY = _struct(
    "type", "principalid", "arn", "accountid", "invokedby", "accesskeyid", "username",
    ("onbehalfof", _struct("userid", "identitystorearn")),
    ("sessioncontext", _SESSION_CONTEXT),
    "identityprovider", "credentialid",
    ("inscopeof", _struct("sourcearn", "sourceaccount", "issuertype", "credentialsissuedto")),
)

CLOUDTRAIL_SCHEMA = pa.schema([
    ("eventversion", _S), ("useridentity", _USER_IDENTITY), ("eventtime", _S),
    ("eventsource", _S), ("eventname", _S), ("awsregion", _S), ("sourceipaddress", _S),
    ("useragent", _S), ("errorcode", _S), ("errormessage", _S), ("requestparameters", _S),
    ("responseelements", _S), ("additionaleventdata", _S), ("requestid", _S), ("eventid", _S),
    ("resources", pa.list_(_struct("arn", "accountid", "type", "arnprefix"))),
    ("eventtype", _S), ("apiversion", _S), ("readonly", _S), ("recipientaccountid", _S),
    ("serviceeventdetails", _S), ("sharedeventid", _S), ("vpcendpointid", _S),
    ("vpcendpointaccountid", _S), ("eventcategory", _S),
    ("addendum", _struct("reason", "updatedfields", "originalrequestid", "originaleventid")),
    ("sessioncredentialfromconsole", _S), ("edgedevicedetails", _S),
    ("tlsdetails", _struct("tlsversion", "ciphersuite", "clientprovidedhostheader")),
    ("managementevent", _S), ("insightdetails", _S), ("eventcontext", _S),
])
"""The CloudTrail columns (AWS's Athena DDL, then the extra fields the Avro model carries)."""

META_SCHEMA = pa.schema([
    ("_event_time_ms", pa.int64()), ("_event_time_status", _S), ("_unmodelled", _S),
    ("_ingest", pa.struct([("ingesttimems", pa.int64()), ("source", _S), ("producerid", _S),
                           ("location", _S)])),
    ("_labels", _MAP),
])
KAFKA_SCHEMA = pa.schema([("_partition", pa.int32()), ("_offset", pa.int64()),
                          ("_timestamp_ms", pa.int64())])
LAKE_SCHEMA = pa.schema([*CLOUDTRAIL_SCHEMA, *META_SCHEMA, *KAFKA_SCHEMA])
"""Every column of a lake Parquet object, in file order."""

_META_NAMES = {"eventTimeMs": "_event_time_ms", "eventTimeStatus": "_event_time_status",
               "unmodelled": "_unmodelled", "ingest": "_ingest", "labels": "_labels"}
"""Top-level Avro meta fields and their lake column names; every other name is lower-cased."""


_AVRO_SCHEMA: dict[str, Any] = default_registry().get().raw
_AVRO_TYPE: pa.StructType = avro_arrow_type(_AVRO_SCHEMA)
"""The datum shape of the current ApiCallEvent schema (older writers' datums fit it: fields
they lack are null)."""


def lake_name(avro_name: str, *, top: bool = False) -> str:
    """The lake column (or struct field) name of an Avro field."""
    if top and avro_name in _META_NAMES:
        return _META_NAMES[avro_name]
    return avro_name.lower()


def to_table(datums: Sequence[Mapping[str, Any]], *, partition: int,
             offsets: Sequence[int], timestamps_ms: Sequence[int]) -> pa.Table:
    """The lake table (:data:`LAKE_SCHEMA`) of ``datums`` read from Kafka ``partition`` at
    ``offsets`` with record timestamps ``timestamps_ms`` (all three sequences align).

    Raises ``pyarrow.ArrowInvalid``/``ArrowTypeError`` when a datum does not fit the current
    ApiCallEvent schema (it cannot: datums come from the Avro decoder)."""
    if not len(datums) == len(offsets) == len(timestamps_ms):
        raise ValueError("datums, offsets and timestamps_ms must have the same length")
    root = pa.array(datums, type=_AVRO_TYPE)
    by_name = {lake_name(f.name, top=True): child
               for f, child in zip(_AVRO_TYPE, root.flatten(), strict=True)}
    columns = [convert_column(by_name.get(f.name), f.type, len(datums))
               for f in (*CLOUDTRAIL_SCHEMA, *META_SCHEMA)]
    columns += [pa.array([partition] * len(datums), pa.int32()),
                pa.array(offsets, pa.int64()), pa.array(timestamps_ms, pa.int64())]
    return pa.Table.from_arrays(columns, schema=LAKE_SCHEMA)


def lake_table(batch: pa.Table) -> pa.Table:
    """The lake table (:data:`LAKE_SCHEMA`) of a decoded batch: event columns in the Avro
    shape (the fields of :data:`_AVRO_TYPE`, Avro names; absent ones become null) plus the
    Kafka coordinate columns ``_partition``/``_offset``/``_timestamp_ms`` (other columns
    starting with ``_``, such as ``_topic``/``_key``/``_size_bytes``, are not lake columns).

    Same rows in, same table out as :func:`to_table` (chunking aside); whole columns only,
    chunk by chunk, zero-copy where the types already match. Raises ``KeyError`` when a
    coordinate column is missing."""
    batches = [_lake_batch(b) for b in batch.to_batches()]
    return pa.Table.from_batches(batches, schema=LAKE_SCHEMA)


def _lake_batch(batch: pa.RecordBatch) -> pa.RecordBatch:
    n = batch.num_rows
    by_name = {lake_name(name, top=True): column
               for name, column in zip(batch.schema.names, batch.columns, strict=True)
               if not name.startswith("_")}
    columns = [convert_column(by_name.get(f.name), f.type, n)
               for f in (*CLOUDTRAIL_SCHEMA, *META_SCHEMA)]
    for f in KAFKA_SCHEMA:
        column = batch.column(f.name)
        columns.append(column if column.type == f.type else pc.cast(column, f.type))
    return pa.RecordBatch.from_arrays(columns, schema=LAKE_SCHEMA)


def convert_column(src: pa.Array | None, target: pa.DataType, length: int) -> pa.Array:
    """``src`` as ``target``, either way between the Avro shape and the lake's: struct fields
    matched by lower-cased name (absent ones are all-null), lists converted element-wise, a
    string as a boolean is ``== "true"``, other types cast (boolean → "true"/"false")."""
    if src is None:
        return pa.nulls(length, target)
    if pa.types.is_struct(target):
        children = {f.name.lower(): c for f, c in zip(src.type, src.flatten(), strict=True)}
        arrays = [convert_column(children.get(f.name.lower()), f.type, len(src))
                  for f in target]
        return pa.StructArray.from_arrays(arrays, fields=list(target), mask=src.is_null())
    if pa.types.is_list(target) and src.type != target:
        offsets = src.offsets  # of a slice: into the parent's values, starting anywhere
        start = offsets[0].as_py()
        values = src.values.slice(start, offsets[-1].as_py() - start)
        values = convert_column(values, target.value_type, len(values))
        return pa.ListArray.from_arrays(pc.subtract(offsets, pa.scalar(start, offsets.type)),
                                        values, type=target, mask=src.is_null())
    if pa.types.is_boolean(target) and pa.types.is_string(src.type):
        return pc.equal(src, "true")
    return src if src.type == target else pc.cast(src, target)


def to_datums(table: pa.Table) -> list[dict[str, Any]]:
    """The datums a lake table holds (the inverse of :func:`to_table`, per row; for readers
    such as replay and tests, not the hot path). Kafka coordinates are not part of a datum."""
    rows = table.select([f.name for f in (*CLOUDTRAIL_SCHEMA, *META_SCHEMA)]).to_pylist()
    return [_datum(row, _AVRO_SCHEMA, top=True) for row in rows]


def _datum(row: Mapping[str, Any], record: Mapping[str, Any], *, top: bool = False
           ) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for field in record["fields"]:
        value = row.get(lake_name(field["name"], top=top))
        if value is not None:
            out[field["name"]] = _value(value, field["type"])
        elif not top or field["name"] != "labels":
            out[field["name"]] = None
    return out


def _value(value: Any, avro: Any) -> Any:
    if isinstance(avro, list):
        (avro,) = [t for t in avro if t != "null"]
    kind = avro["type"] if isinstance(avro, dict) else avro
    if kind == "record":
        return _datum(value, avro)
    if kind == "array":
        return [_value(v, avro["items"]) for v in value]
    if kind == "map":
        return dict(value)
    if kind == "boolean":
        return value == "true"
    return value
