"""schemas/*.avsc: fingerprints, documented fields, and v1 <-> v1.1 evolution (pure)."""

from __future__ import annotations

import io
import json
from typing import Any

import fastavro
import pytest
from fastavro.schema import to_parsing_canonical_form

from pipeline.events import (
    API_CALL_EVENT,
    IngestMeta,
    decode,
    default_registry,
    encode,
    from_avro,
    to_avro,
)
from pipeline.events.plan import compile_plan
from pipeline.events.schemas import SCHEMA_DIR, fingerprint_of

V1 = default_registry().get(API_CALL_EVENT, "1")
V1_1 = default_registry().get(API_CALL_EVENT, "1.1")
INGEST = IngestMeta(1_764_201_600_000, "test", "unit-1")
RECORD: dict[str, Any] = {"eventVersion": "1.08", "eventName": "PutObject", "readOnly": "false",
          "userIdentity": {"accountId": "111122223333", "type": "IAMUser"},
          "requestParameters": {"bucketName": "b", "n": 2**64}, "@timestamp": "x"}

DOCUMENTED = [
    "eventVersion", "userIdentity", "eventTime", "eventSource", "eventName", "awsRegion",
    "sourceIPAddress", "userAgent", "errorCode", "errorMessage", "requestParameters",
    "responseElements", "additionalEventData", "requestID", "eventID", "eventType", "apiVersion",
    "managementEvent", "readOnly", "resources", "recipientAccountId", "serviceEventDetails",
    "sharedEventID", "vpcEndpointId", "vpcEndpointAccountId", "eventCategory", "addendum",
    "sessionCredentialFromConsole", "edgeDeviceDetails", "tlsDetails", "insightDetails",
]
JSON_TEXT = ["requestParameters", "responseElements", "additionalEventData", "serviceEventDetails",
             "insightDetails", "edgeDeviceDetails"]


def crc64_avro(data: bytes) -> int:
    """CRC-64-AVRO exactly as the Avro specification writes it (independent of fastavro)."""
    empty = 0xC15D213AA4D7A795
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (empty & -(fp & 1))
        table.append(fp)
    fp = empty
    for byte in data:
        fp = (fp >> 8) ^ table[(fp ^ byte) & 0xFF]
    return fp


def signed_le(n: int) -> bytes:
    return (n & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "little")


# Published in Apache Avro's share/test/data/schema-tests.txt (signed Java longs).
@pytest.mark.parametrize(("canonical", "published"), [
    ('"null"', 7195948357588979594),
    ('"boolean"', -6970731678124411036),
    ('"int"', 8247732601305521295),
    ('{"name":"foo","type":"fixed","size":15}', 1756455273707447556),
    ('{"name":"foo","type":"record","fields":[{"name":"f1","type":"boolean"}]}',
     7843277075252814651),
])
def test_fingerprint_matches_published_avro_vectors(canonical: str, published: int) -> None:
    assert fingerprint_of(canonical) == signed_le(published)
    assert crc64_avro(canonical.encode()) == published & 0xFFFFFFFFFFFFFFFF


def test_registry_loads_every_file_with_spec_fingerprints() -> None:
    entries = default_registry().entries()
    assert [e.path.name for e in entries] == sorted(p.name for p in SCHEMA_DIR.glob("*.avsc"))
    versions = {(e.name, e.version) for e in entries}
    assert versions >= {(API_CALL_EVENT, "1"), (API_CALL_EVENT, "1.1")}
    for e in entries:
        assert e.canonical == to_parsing_canonical_form(e.raw)
        assert e.fingerprint == signed_le(crc64_avro(e.canonical.encode()))
        assert default_registry().by_fingerprint(e.fingerprint) is e
    assert V1.fingerprint != V1_1.fingerprint


def test_every_documented_cloudtrail_field_is_modelled() -> None:
    fields = {f["name"]: f for f in V1.raw["fields"]}
    for name in DOCUMENTED:
        assert name in fields, name
        assert fields[name]["type"][0] == "null" and fields[name]["default"] is None, name
    for name in JSON_TEXT:
        assert fields[name].get("trailpipe.kind") == "json", name
    ui = {f["name"]: f for f in fields["userIdentity"]["type"][1]["fields"]}
    sc = {f["name"] for f in ui["sessionContext"]["type"][1]["fields"]}
    assert {"sessionIssuer", "webIdFederationData", "attributes"} <= sc
    assert {"unmodelled", "ingest", "eventTimeMs", "eventTimeStatus"} <= fields.keys()
    ingest = {f["name"] for f in fields["ingest"]["type"]["fields"]}
    assert {"ingestTimeMs", "source", "producerId"} <= ingest


def test_minor_version_adds_only_meta_fields() -> None:
    # The mapping's losslessness rule: v1 readers must still see every CloudTrail key.
    assert compile_plan(V1.raw) == compile_plan(V1_1.raw)
    v1_names = [f["name"] for f in V1.raw["fields"]]
    added = [f for f in V1_1.raw["fields"] if f["name"] not in v1_names]
    assert added and all(f.get("trailpipe.kind") == "meta" and "default" in f for f in added)


def test_v1_data_reads_with_v1_1_reader() -> None:
    message = encode(to_avro(RECORD, ingest=INGEST), V1)
    datum = decode(message, reader=V1_1)
    assert datum["labels"] == {}
    assert from_avro(datum) == RECORD
    # The same with plain fastavro, so any Avro reader can do it.
    body = io.BytesIO(message[10:])
    plain: Any = fastavro.schemaless_reader(body, V1.parsed, V1_1.parsed)
    assert plain["labels"] == {}


def test_v1_1_data_reads_with_v1_reader() -> None:
    datum_v1_1: dict[str, Any] = to_avro(RECORD, ingest=INGEST) | {"labels": {"team": "sec"}}
    message = encode(datum_v1_1, V1_1)
    assert decode(message)["labels"] == {"team": "sec"}
    datum = decode(message, reader=V1)
    assert "labels" not in datum
    assert from_avro(datum) == RECORD
    assert json.loads(datum["requestParameters"])["n"] == 2**64


def test_plan_rejects_types_it_cannot_carry() -> None:
    bad = {"type": "record", "name": "X", "fields": [{"name": "n", "type": ["null", "long"]}]}
    with pytest.raises(ValueError, match="unsupported type"):
        compile_plan(bad)
    not_nullable = {"type": "record", "name": "X", "fields": [{"name": "s", "type": "string"}]}
    with pytest.raises(ValueError, match="null"):
        compile_plan(not_nullable)
