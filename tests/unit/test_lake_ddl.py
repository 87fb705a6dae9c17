"""The Athena DDL is generated from the lake's column schema."""

from __future__ import annotations

import pyarrow as pa
import pytest

from pipeline.lake.columns import LAKE_SCHEMA
from pipeline.lake.ddl import athena_ddl, hive_type


def test_every_column_is_declared_with_its_hive_type() -> None:
    ddl = athena_ddl("s3://audit-lake/trail/")
    for field in LAKE_SCHEMA:
        assert f"  `{field.name}` {hive_type(field.type)}" in ddl
    assert "LOCATION 's3://audit-lake/trail/events/'" in ddl
    assert "PARTITIONED BY (account string, region string, `date` string, `hour` string)" in ddl


def test_nested_types() -> None:
    t = pa.struct([("a", pa.string()), ("b", pa.list_(pa.struct([("c", pa.int64())]))),
                   ("m", pa.map_(pa.string(), pa.string()))])
    assert hive_type(t) == "struct<a:string,b:array<struct<c:bigint>>,m:map<string,string>>"
    with pytest.raises(ValueError):
        hive_type(pa.float16())
