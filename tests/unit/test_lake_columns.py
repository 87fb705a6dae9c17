"""The lake's columns: AWS's Athena CloudTrail DDL, lossless datums, Kafka coordinates (pure)."""

from __future__ import annotations

import json
import re
from itertools import pairwise
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from pipeline.events import IngestMeta, decode, default_registry, encode, from_avro, to_avro
from pipeline.lake.columns import (
    _AVRO_TYPE,
    LAKE_SCHEMA,
    lake_name,
    lake_table,
    to_datums,
    to_table,
)

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "cloudtrail"
INGEST = IngestMeta(1_764_201_600_000, "test", "unit-1", "file.jsonl:1")

# The columns of the table AWS documents for CloudTrail in Athena ("Create a table for
# CloudTrail logs in Athena using manual partitioning"), as its DDL declares them.
ATHENA_DDL = """
eventversion STRING,
useridentity STRUCT<type:STRING, principalid:STRING, arn:STRING, accountid:STRING,
  invokedby:STRING, accesskeyid:STRING, username:STRING,
  onbehalfof:STRUCT<userid:STRING, identitystorearn:STRING>,
  sessioncontext:STRUCT<attributes:STRUCT<mfaauthenticated:STRING, creationdate:STRING>,
    sessionissuer:STRUCT<type:STRING, principalid:STRING, arn:STRING, accountid:STRING,
      username:STRING>,
    ec2roledelivery:STRING,
    webidfederationdata:STRUCT<federatedprovider:STRING, attributes:MAP<STRING,STRING>>,
    sourceidentity:STRING>>,
eventtime STRING, eventsource STRING, eventname STRING, awsregion STRING,
sourceipaddress STRING, useragent STRING, errorcode STRING, errormessage STRING,
requestparameters STRING, responseelements STRING, additionaleventdata STRING,
requestid STRING, eventid STRING,
resources ARRAY<STRUCT<arn:STRING, accountid:STRING, type:STRING>>,
eventtype STRING, apiversion STRING, readonly STRING, recipientaccountid STRING,
serviceeventdetails STRING, sharedeventid STRING, vpcendpointid STRING,
vpcendpointaccountid STRING, eventcategory STRING,
addendum STRUCT<reason:STRING, updatedfields:STRING, originalrequestid:STRING,
  originaleventid:STRING>,
sessioncredentialfromconsole STRING, edgedevicedetails STRING,
tlsdetails STRUCT<tlsversion:STRING, ciphersuite:STRING, clientprovidedhostheader:STRING>
"""


def _hive_type(tokens: list[str]) -> pa.DataType:
    """Parse a Hive type from a token list (consumed from the front)."""
    word = tokens.pop(0).upper()
    if word == "STRING":
        return pa.string()
    assert tokens.pop(0) == "<"
    if word == "ARRAY":
        item = _hive_type(tokens)
        assert tokens.pop(0) == ">"
        return pa.list_(item)
    if word == "MAP":
        key = _hive_type(tokens)
        assert tokens.pop(0) == ","
        value = _hive_type(tokens)
        assert tokens.pop(0) == ">"
        return pa.map_(key, value)
    fields = []
    while True:
        name = tokens.pop(0)
        assert tokens.pop(0) == ":"
        fields.append(pa.field(name, _hive_type(tokens)))
        if tokens.pop(0) == ">":
            return pa.struct(fields)


def athena_columns() -> dict[str, pa.DataType]:
    tokens = re.findall(r"[A-Za-z0-9_]+|[<>:,]", ATHENA_DDL)
    columns = {}
    while tokens:
        name = tokens.pop(0)
        columns[name] = _hive_type(tokens)
        if tokens:
            assert tokens.pop(0) == ","
    return columns


def assert_covers(ours: pa.DataType, theirs: pa.DataType, path: str) -> None:
    """``ours`` holds every field of ``theirs`` with the same type (extra fields allowed)."""
    if pa.types.is_struct(theirs):
        assert pa.types.is_struct(ours), path
        names = [f.name for f in ours]
        for f in theirs:
            assert f.name in names, f"{path}.{f.name} missing"
            assert_covers(ours.field(f.name).type, f.type, f"{path}.{f.name}")
    elif pa.types.is_list(theirs):
        assert pa.types.is_list(ours), path
        assert_covers(ours.value_type, theirs.value_type, f"{path}[]")
    else:
        assert ours == theirs, f"{path}: {ours} != {theirs}"


def test_every_athena_column_is_there_with_its_documented_type() -> None:
    documented = athena_columns()
    assert len(documented) == 29
    for name, typ in documented.items():
        assert name in LAKE_SCHEMA.names, name
        assert_covers(LAKE_SCHEMA.field(name).type, typ, name)
    # Documented columns come first, in the documented order.
    assert LAKE_SCHEMA.names[: len(documented)] == list(documented)


def test_kafka_coordinates_and_no_hive_partition_columns() -> None:
    assert LAKE_SCHEMA.field("_partition").type == pa.int32()
    assert LAKE_SCHEMA.field("_offset").type == pa.int64()
    assert LAKE_SCHEMA.field("_timestamp_ms").type == pa.int64()
    for hive in ("account", "region", "date", "hour"):
        assert hive not in LAKE_SCHEMA.names  # they come from the object path


def _avro_paths(fields: list[dict[str, Any]], prefix: str = "") -> list[str]:
    out = []
    for f in fields:
        path = prefix + f["name"]
        out.append(path)
        inner = next(t for t in f["type"] if t != "null") if isinstance(f["type"], list) \
            else f["type"]
        if isinstance(inner, dict) and inner["type"] == "record":
            out += _avro_paths(inner["fields"], path + ".")
        if isinstance(inner, dict) and inner["type"] == "array":
            out += _avro_paths(inner["items"]["fields"], path + "[].")
    return out


def _lake_has(path: str) -> bool:
    parts = path.replace("[]", "").split(".")
    typ: pa.DataType = pa.struct(list(LAKE_SCHEMA))
    for i, part in enumerate(parts):
        name = lake_name(part, top=i == 0)
        if pa.types.is_list(typ):
            typ = typ.value_type
        if name not in [f.name for f in typ]:
            return False
        typ = typ.field(name).type
    return True


def test_every_avro_field_has_a_lake_column() -> None:
    for entry in (default_registry().get(version=version) for version in ("1", "1.1")):
        missing = [p for p in _avro_paths(entry.raw["fields"]) if not _lake_has(p)]
        assert missing == [], f"v{entry.version}: no lake column for {missing}"


def _datums(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [decode(encode(to_avro(r, ingest=INGEST))) for r in records]


@pytest.mark.parametrize("source", sorted(p.parent.name for p in CORPUS.glob("*/records.jsonl")))
def test_corpus_is_lossless_through_the_lake_table(source: str) -> None:
    records = [json.loads(line) for line in
               (CORPUS / source / "records.jsonl").read_text().splitlines() if line.strip()]
    datums = _datums(records)
    table = to_table(datums, partition=4, offsets=list(range(100, 100 + len(datums))),
                     timestamps_ms=[7] * len(datums))
    assert table.schema == LAKE_SCHEMA and table.num_rows == len(records)
    back = to_datums(table)
    assert back == datums
    assert [from_avro(d) for d in back] == records


def _batch(datums: list[dict[str, Any]], *, partition: int, first: int) -> pa.Table:
    """A decoded batch as the Runner hands it: Avro-shaped event columns + coordinates."""
    n = len(datums)
    batch = pa.Table.from_struct_array(pa.array(datums, type=_AVRO_TYPE))
    coordinates = {"_topic": pa.array(["audit.events.v1"] * n),
                   "_partition": pa.array([partition] * n, pa.int32()),
                   "_offset": pa.array(range(first, first + n), pa.int64()),
                   "_timestamp_ms": pa.array([7 + i for i in range(n)], pa.int64()),
                   "_key": pa.array([b"k"] * n, pa.binary()),
                   "_size_bytes": pa.array([100] * n, pa.int32())}
    for name, column in coordinates.items():
        batch = batch.append_column(name, column)
    return batch


def _corpus_datums() -> list[dict[str, Any]]:
    return _datums([json.loads(line) for path in sorted(CORPUS.glob("*/records.jsonl"))
                    for line in path.read_text().splitlines() if line.strip()])


def test_lake_table_of_a_batch_equals_to_table_over_the_whole_corpus() -> None:
    datums = _corpus_datums()
    n = len(datums)
    assert n > 1000
    expected = to_table(datums, partition=4, offsets=list(range(100, 100 + n)),
                        timestamps_ms=[7 + i for i in range(n)])
    batch = _batch(datums, partition=4, first=100)
    got = lake_table(batch)
    assert got.schema == LAKE_SCHEMA and got.equals(expected)
    # Chunked and sliced anywhere (lists and structs of a slice start mid-buffer).
    cuts = [0, 1, 2, 37, 500, 501, n - 3, n]
    chunked = pa.concat_tables([batch.slice(a, b - a) for a, b in pairwise(cuts)])
    assert lake_table(chunked).equals(expected)
    for a, b in pairwise(cuts):
        assert lake_table(batch.slice(a, b - a)).equals(expected.slice(a, b - a))


def test_lake_table_nulls_missing_event_columns_and_needs_coordinates() -> None:
    datums = _datums([{"eventName": "X", "readOnly": False, "awsRegion": "eu-west-1"}])
    batch = _batch(datums, partition=1, first=5)
    thin = lake_table(batch.drop_columns(["awsRegion", "userIdentity", "_topic"]))
    row = thin.to_pylist()[0]
    assert row["awsregion"] is None and row["useridentity"] is None
    assert row["readonly"] == "false" and row["eventname"] == "X"
    assert (row["_partition"], row["_offset"], row["_timestamp_ms"]) == (1, 5, 7)
    assert lake_table(batch.slice(0, 0)).schema == LAKE_SCHEMA
    with pytest.raises(KeyError):
        lake_table(batch.drop_columns(["_offset"]))


def test_values_land_in_the_documented_shapes() -> None:
    record = {
        "eventVersion": "1.08", "eventTime": "2024-05-01T10:00:00Z", "eventName": "GetObject",
        "readOnly": True, "managementEvent": False, "awsRegion": "eu-west-1",
        "userIdentity": {"type": "AssumedRole", "accountId": "111122223333",
                         "sessionContext": {"attributes": {"mfaAuthenticated": "false"},
                                            "webIdFederationData": {
                                                "federatedProvider": "x",
                                                "attributes": {"k": "v"}}}},
        "requestParameters": {"bucketName": "b", "n": 1},
        "resources": [{"ARN": "arn:aws:s3:::b", "type": "AWS::S3::Bucket"}],
        "tlsDetails": {"tlsVersion": "TLSv1.3"}, "@timestamp": "odd key",
    }
    row = to_table(_datums([record]), partition=2, offsets=[41], timestamps_ms=[99]).to_pylist()[0]
    assert row["readonly"] == "true" and row["managementevent"] == "false"
    assert row["useridentity"]["accountid"] == "111122223333"
    sc = row["useridentity"]["sessioncontext"]
    assert sc["attributes"]["mfaauthenticated"] == "false"
    assert sc["webidfederationdata"]["attributes"] == [("k", "v")]
    assert json.loads(row["requestparameters"]) == {"bucketName": "b", "n": 1}
    assert row["resources"] == [{"arn": "arn:aws:s3:::b", "accountid": None,
                                 "type": "AWS::S3::Bucket", "arnprefix": None}]
    assert row["tlsdetails"]["tlsversion"] == "TLSv1.3"
    assert json.loads(row["_unmodelled"]) == {"@timestamp": "odd key"}
    assert row["_event_time_status"] == "PRESENT" and row["_event_time_ms"] == 1714557600000
    assert (row["_partition"], row["_offset"], row["_timestamp_ms"]) == (2, 41, 99)


def test_v1_writer_datums_fit_and_an_empty_batch_is_an_empty_table() -> None:
    datum = _datums([{"eventName": "X"}])[0]
    datum.pop("labels", None)  # as a v1 writer's datum
    assert to_datums(to_table([datum], partition=0, offsets=[0], timestamps_ms=[0])) == [datum]
    assert to_table([], partition=0, offsets=[], timestamps_ms=[]).num_rows == 0
    with pytest.raises(ValueError):
        to_table([datum], partition=0, offsets=[], timestamps_ms=[0])
