"""Replay filters: the column-wise mask equals a plain Python predicate over the corpus."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from pipeline.config import Config
from pipeline.daemon import events_decoder
from pipeline.events import wire
from pipeline.events.mapping import IngestMeta, parse_event_time, to_avro
from pipeline.replay.filters import Filters, mask

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "cloudtrail"
INGEST = IngestMeta(1_764_201_600_000, "test", "unit-1", "records.jsonl:1")
RECORDS = [json.loads(line) for p in sorted(CORPUS.glob("*/records.jsonl"))
           for line in p.read_text().splitlines() if line.strip()]


def _table() -> Any:
    decoded = events_decoder(Config())([wire.encode(to_avro(r, ingest=INGEST)) for r in RECORDS])
    assert not decoded.errors and list(decoded.rows) == list(range(len(RECORDS)))
    return decoded.table


TABLE = _table()


def _text(value: Any) -> str | None:
    return value if type(value) is str else None


def account_of(record: dict[str, Any]) -> str | None:
    account = _text(record.get("recipientAccountId"))
    if account:
        return account
    identity = record.get("userIdentity")
    return _text(identity.get("accountId")) if isinstance(identity, dict) else None


def keeps(record: dict[str, Any], f: Filters) -> bool:
    """The filters' contract, written record by record."""
    time_ms = parse_event_time(record)[0]
    if time_ms is None or not f.from_ms <= time_ms < f.to_ms:
        return False
    identity = record.get("userIdentity")
    identity = identity if isinstance(identity, dict) else {}
    checks = [(f.account, account_of(record)), (f.region, _text(record.get("awsRegion"))),
              (f.event_source, _text(record.get("eventSource"))),
              (f.event_name, _text(record.get("eventName"))),
              (f.source_ip, _text(record.get("sourceIPAddress")))]
    if any(wanted is not None and wanted != got for wanted, got in checks):
        return False
    if f.principal is not None and f.principal not in (_text(identity.get("arn")),
                                                       _text(identity.get("userName"))):
        return False
    has_error = bool(_text(record.get("errorCode")))
    return f.error is None or f.error == has_error


def _most_common(values: list[Any]) -> Any:
    return Counter(v for v in values if type(v) is str and v).most_common(1)[0][0]


TIMES = sorted(t for t in (parse_event_time(r)[0] for r in RECORDS) if t is not None)
MID = TIMES[len(TIMES) // 2]
TIMED = [r for r in RECORDS if parse_event_time(r)[0] is not None]
ACCOUNT = _most_common([account_of(r) for r in TIMED])
REGION = _most_common([r.get("awsRegion") for r in TIMED])
SOURCE = _most_common([r.get("eventSource") for r in TIMED])
NAME = _most_common([r.get("eventName") for r in TIMED if r.get("eventSource") == SOURCE])
IP = _most_common([r.get("sourceIPAddress") for r in TIMED])
IDENTITIES = [r["userIdentity"] for r in TIMED if isinstance(r.get("userIdentity"), dict)]
ARN = _most_common([i.get("arn") for i in IDENTITIES])
USER = _most_common([i.get("userName") for i in IDENTITIES])
ALL_TIME = (TIMES[0], TIMES[-1] + 1)

CASES = {
    "window": Filters(TIMES[0], MID),
    "window-end-exclusive": Filters(MID, TIMES[-1]),
    "account": Filters(*ALL_TIME, account=ACCOUNT),
    "account+region": Filters(*ALL_TIME, account=ACCOUNT, region=REGION),
    "source+name": Filters(*ALL_TIME, event_source=SOURCE, event_name=NAME),
    "principal-arn": Filters(*ALL_TIME, principal=ARN),
    "principal-user": Filters(*ALL_TIME, principal=USER),
    "source-ip": Filters(*ALL_TIME, source_ip=IP),
    "error": Filters(*ALL_TIME, error=True),
    "no-error": Filters(*ALL_TIME, error=False),
    "everything": Filters(TIMES[0], MID, account=ACCOUNT, region=REGION, error=False),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_mask_equals_the_python_predicate(name: str) -> None:
    f = CASES[name]
    expected = [keeps(r, f) for r in RECORDS]
    got = mask(TABLE, f).to_pylist()
    assert got == expected
    if name != "everything":  # each filter alone both keeps and drops corpus records
        assert 0 < sum(got) < len(RECORDS)


def test_records_without_event_time_are_in_no_window() -> None:
    missing = [i for i, r in enumerate(RECORDS) if parse_event_time(r)[0] is None]
    assert missing, "the corpus has records without a usable eventTime"
    got = mask(TABLE, Filters(-(2**62), 2**62)).to_pylist()
    assert not any(got[i] for i in missing)


def test_an_empty_window_is_refused() -> None:
    with pytest.raises(ValueError, match="empty window"):
        Filters(MID, MID)
