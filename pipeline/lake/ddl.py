"""The Athena (Hive) ``CREATE EXTERNAL TABLE`` for the lake, generated from the lake's column
schema so it can never drift from what the archiver writes."""

from __future__ import annotations

import pyarrow as pa

from pipeline.lake.columns import LAKE_SCHEMA
from pipeline.lake.layout import EVENTS_DIR


def hive_type(t: pa.DataType) -> str:
    """The Hive/Athena type name of an Arrow type used by the lake."""
    if pa.types.is_struct(t):
        return "struct<" + ",".join(f"{f.name}:{hive_type(f.type)}" for f in t) + ">"
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return f"array<{hive_type(t.value_type)}>"
    if pa.types.is_map(t):
        return f"map<{hive_type(t.key_type)},{hive_type(t.item_type)}>"
    simple = {pa.int32(): "int", pa.int64(): "bigint", pa.bool_(): "boolean",
              pa.float64(): "double", pa.string(): "string", pa.large_string(): "string"}
    if t in simple:
        return simple[t]
    raise ValueError(f"no Hive type for {t}")


def athena_ddl(location: str, table: str = "cloudtrail") -> str:
    """DDL for the events of the lake at ``location`` (``s3://bucket/prefix``), with the Hive
    partitions account/region/date/hour (partition projection left to the reader)."""
    columns = ",\n".join(f"  `{f.name}` {hive_type(f.type)}" for f in LAKE_SCHEMA)
    return (f"CREATE EXTERNAL TABLE {table} (\n{columns}\n)\n"
            "PARTITIONED BY (account string, region string, `date` string, `hour` string)\n"
            "STORED AS PARQUET\n"
            f"LOCATION '{location.rstrip('/')}/{EVENTS_DIR}/';\n"
            f"-- then: MSCK REPAIR TABLE {table};  (or partition projection)")
