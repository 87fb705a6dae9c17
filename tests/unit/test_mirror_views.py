"""Per-SIEM views (pipeline.mirror.views) over the whole corpus: a filtered view holds exactly
the records a plain Python predicate over the original records selects; a redacted view never
holds a redacted value and keeps everything else."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
from collections import Counter
from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pytest
from test_events_mapping import assert_same
from test_mirror_json import INGEST, corpus_records, decode

from pipeline.events import to_avro, wire
from pipeline.events.partition import event_key
from pipeline.mirror.json import cloudtrail_json
from pipeline.mirror.views import HASH_PREFIX, ViewEncoder
from pipeline.notify.cef import is_ip
from pipeline.siem.model import View, ViewFilter, ViewRedact

KEY_HEX = "5e" * 32
REMOVED = ["responseElements.credentials", "requestParameters.policyDocument",
           "userIdentity.accessKeyId", "requestParameters.encryptionContext",
           "userIdentity.sessionContext.sessionIssuer.arn", "additionalEventData.x-amz-id-2",
           "requestParameters.password", "resources.ARN"]
Record = dict[str, Any]


@pytest.fixture(scope="module")
def batch() -> tuple[list[Record], pa.Table, list[bytes]]:
    """The corpus as one mirror batch: records, table (with the producer's keys), texts."""
    records = corpus_records()
    table = decode([wire.encode(to_avro(r, ingest=INGEST)) for r in records])
    table = table.append_column("_key", pa.array([event_key(r) for r in records], pa.binary()))
    return records, table, cloudtrail_json(table)


def view(**kwargs: Any) -> View:
    return View(topic="siem.t.events.json.v1", **kwargs)


def account_of(r: Record) -> str:
    """The account as the key names it: recipientAccountId, else userIdentity.accountId."""
    for holder, name in ((r, "recipientAccountId"), (r.get("userIdentity"), "accountId")):
        value = holder.get(name) if isinstance(holder, dict) else None
        if isinstance(value, str) and value:
            return value
    return ""


def top(records: list[Record], value: Callable[[Record], Any], n: int) -> list[str]:
    counts = Counter(v for r in records if isinstance(v := value(r), str) and v)
    return [v for v, _ in counts.most_common(n)]


def filters(records: list[Record]) -> list[tuple[ViewFilter, Callable[[Record], bool]]]:
    """Filters on the corpus's common values, each with the predicate it stands for."""
    accounts = top(records, account_of, 3)
    regions = top(records, lambda r: r.get("awsRegion"), 2)
    sources = top(records, lambda r: r.get("eventSource"), 4)
    names = top(records, lambda r: r.get("eventName"), 6)

    def is_error(r: Record) -> bool:
        return isinstance(r.get("errorCode"), str)

    return [
        (ViewFilter(accounts=accounts), lambda r: account_of(r) in accounts),
        (ViewFilter(regions=regions), lambda r: r.get("awsRegion") in regions),
        (ViewFilter(accounts=accounts[:2], regions=regions),
         lambda r: account_of(r) in accounts[:2] and r.get("awsRegion") in regions),
        (ViewFilter(event_sources=sources, read_only=False),
         lambda r: r.get("eventSource") in sources and r.get("readOnly") is not True),
        (ViewFilter(event_names=names, errors=True),
         lambda r: r.get("eventName") in names and is_error(r)),
        (ViewFilter(read_only=True, errors=False),
         lambda r: r.get("readOnly") is True and not is_error(r)),
        (ViewFilter(accounts=["no-such-account"]), lambda r: False),
        (ViewFilter(), lambda r: True),
    ]


def test_a_filtered_view_holds_exactly_the_selected_records(
        batch: tuple[list[Record], pa.Table, list[bytes]]) -> None:
    records, table, texts = batch
    for flt, predicate in filters(records):
        expected = [i for i, r in enumerate(records) if predicate(r)]
        if flt != ViewFilter(accounts=["no-such-account"]):
            assert len(expected) > 0, f"{flt} selects nothing in the corpus: a weak test"
        encoder = ViewEncoder(view(filter=flt))
        mask = encoder.mask(table)
        assert mask.null_count == 0 and len(mask) == len(records)
        got = encoder.select(table, texts)
        assert [row for row, _ in got] == expected, flt
        assert all(text is texts[row] for row, text in got)  # no redaction: the same text


def test_keys_without_a_separator_or_null_match_no_account_filter() -> None:
    table = pa.table({"_key": pa.array([b"111|r1", None, b"111", b"|r1", b"111|"], pa.binary())})
    by_account = ViewEncoder(view(filter=ViewFilter(accounts=["111"])))
    by_region = ViewEncoder(view(filter=ViewFilter(regions=["r1"])))
    assert by_account.mask(table).to_pylist() == [True, False, False, False, True]
    assert by_region.mask(table).to_pylist() == [True, False, False, True, False]


def expected_redacted(record: Record) -> Record:
    """The record as the view must show it, computed independently of the encoder."""
    out = copy.deepcopy(record)
    for path in REMOVED:
        *parents, last = path.split(".")
        node: Any = out
        for key in parents:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(last, None)
    ip = out.get("sourceIPAddress")
    if isinstance(ip, str):
        mac = hmac.new(bytes.fromhex(KEY_HEX), ip.encode(), hashlib.sha256).hexdigest()
        out["sourceIPAddress"] = "hmac-sha256:" + mac
    return out


def removed_values(record: Record) -> list[Any]:
    out = []
    for path in REMOVED:
        node: Any = record
        for key in path.split("."):
            node = node.get(key, KeyError) if isinstance(node, dict) else KeyError
        if node is not KeyError:
            out.append(node)
    return out


def test_a_redacted_view_never_holds_a_redacted_value(
        batch: tuple[list[Record], pa.Table, list[bytes]]) -> None:
    records, table, texts = batch
    encoder = ViewEncoder(view(redact=ViewRedact(remove=REMOVED, hash_source_ip=True),
                               hash_key_hex=KEY_HEX))
    got = encoder.select(table, texts)
    assert [row for row, _ in got] == list(range(len(records)))
    view_texts = [text.decode() for _, text in got]
    for (row, text), record in zip(got, records, strict=True):
        assert_same(json.loads(text), expected_redacted(record), f"row {row}")
    everything = "\n".join(view_texts)
    kept = "\n".join(compact(expected_redacted(r)) for r in records)
    secrets = [v for r in records for v in removed_values(r)]
    assert len(secrets) > 1000  # the paths do occur in the corpus
    checked = 0
    for needle in map(compact, secrets):
        if needle not in kept:  # a value that also sits in a kept field is not a secret
            assert needle not in everything, needle
            checked += 1
    ips = {r["sourceIPAddress"] for r in records if isinstance(r.get("sourceIPAddress"), str)}
    addresses = {ip for ip in ips if is_ip(ip)}
    assert len(addresses) > 20
    for ip in addresses:
        if ip not in kept:
            assert ip not in everything, ip
            checked += 1
    assert checked > 500
    assert everything.count(f'"sourceIPAddress":"{HASH_PREFIX}') == len(
        [r for r in records if isinstance(r.get("sourceIPAddress"), str)])


def compact(value: Any) -> str:
    """JSON text as the mirror writes it (no spaces, non-ASCII as is)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def test_redaction_keeps_numbers_exact_and_same_ip_same_hash() -> None:
    records: list[Record] = [
        {"sourceIPAddress": "192.0.2.1",
         "requestParameters": {"n": 10**30, "f": 1e300, "password": "hunter2"}},
        {"sourceIPAddress": "192.0.2.1", "responseElements": float("nan")},
        {"sourceIPAddress": 7, "requestParameters": {"password": {"x": [1]}}}]
    table = decode([wire.encode(to_avro(r, ingest=INGEST)) for r in records])
    encoder = ViewEncoder(view(redact=ViewRedact(remove=["requestParameters.password"],
                                                 hash_source_ip=True), hash_key_hex=KEY_HEX))
    other = ViewEncoder(view(redact=ViewRedact(hash_source_ip=True), hash_key_hex="01" * 32))
    texts = cloudtrail_json(table)
    out = [json.loads(encoder.redact(t)) for t in texts]
    assert out[0]["requestParameters"] == {"n": 10**30, "f": 1e300}
    assert out[0]["sourceIPAddress"] == out[1]["sourceIPAddress"] != "192.0.2.1"
    assert json.loads(other.redact(texts[0]))["sourceIPAddress"] != out[0]["sourceIPAddress"]
    assert out[2] == {"sourceIPAddress": 7, "requestParameters": {}}
    assert ViewEncoder(view()).redact(texts[0]) is texts[0]
