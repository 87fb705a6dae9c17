"""The syslog forwarder's messages: RFC 5424 fields, octet framing, the processor's dead-letter
reasons and size limits (read back with an independent RFC 5424 reader)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from pipeline.forward.config import ForwardSyslogConfig
from pipeline.forward.records import Formatter, NotForwardable, parse_record
from pipeline.forward.syslog import message_limit, renderer, rfc3339_ms, syslog_message
from pipeline.model import Event
from pipeline.notify.syslog import octet_frame

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from syslog_receivers import parse_cef, parse_rfc5424, sd_params

RECORD = {"eventTime": "2024-03-01T12:34:56.789Z", "eventID": 'e"]\\1', "eventName": "Put|=",
          "eventSource": "s3.amazonaws.com", "userAgent": "ünï\n日本",
          "requestParameters": {"k": "a\\b=c|d\r\ne", "n": [1, 2.5, None, True]}}


def message(record: dict[str, Any], fmt: str = "json") -> str:
    raw = syslog_message(record, fmt=fmt, facility=13, hostname="host one", procid="42")
    assert b"\n" not in raw and b"\r" not in raw  # one line, whatever the record holds
    return raw.decode("utf-8")


def test_json_message_fields() -> None:
    parsed = parse_rfc5424(message(RECORD))
    assert (parsed.pri, parsed.version, parsed.timestamp) == (13 * 8 + 6, "1",
                                                              "2024-03-01T12:34:56.789Z")
    assert (parsed.hostname, parsed.app_name, parsed.procid, parsed.msgid) == (
        "hostone", "trailpipe", "42", "cloudtrail")
    assert sd_params(parsed.sd) == {"eventID": RECORD["eventID"]}
    assert json.loads(parsed.msg) == RECORD


def test_cef_message_and_severity_in_pri() -> None:
    record = {**RECORD, "errorCode": "AccessDenied"}
    parsed = parse_rfc5424(message(record, "cef"))
    assert parsed.pri == 13 * 8 + 4
    header, ext = parse_cef(parsed.msg)
    assert header[3:] == ["s3.amazonaws.com:Put|=", "Put|=", "6"]
    assert ext["act"] == "Put|=" and ext["requestClientApplication"] == "ünï\n日本"
    root = parse_rfc5424(message({"userIdentity": {"type": "Root"}}, "cef"))
    assert root.pri == 13 * 8 + 2


def test_without_event_time_or_id() -> None:
    parsed = parse_rfc5424(message({"eventTime": "2024-13-01T00:00:00Z", "x": 1}))
    assert (parsed.timestamp, parsed.sd, json.loads(parsed.msg)) == ("-", "-", {
        "eventTime": "2024-13-01T00:00:00Z", "x": 1})
    assert rfc3339_ms(None) == "-" and rfc3339_ms(10**18) == "-"
    assert rfc3339_ms(5) == "1970-01-01T00:00:00.005Z"


def test_octet_framing_counts_bytes() -> None:
    raw = syslog_message(RECORD, fmt="json", facility=1, hostname="h", procid="1")
    framed = octet_frame(raw)
    size, rest = framed.split(b" ", 1)
    assert int(size) == len(rest) == len(raw) > len(raw.decode())


def event(raw: bytes | None) -> Event:
    return Event(key=None, value=raw, timestamp_ms=0, topic="t", partition=0, offset=7, raw=raw)


@pytest.mark.parametrize(("raw", "reason"), [
    (None, "tombstone"), (b"{not json", "not JSON"), (b"\xff\xfe\x00", "not JSON"),
    (b"[1, 2]", "a JSON list, not an object"), (b'{"a": NaN}', "no NaN"),
])
def test_undecodable_values_are_refused_with_the_reason(raw: bytes | None, reason: str) -> None:
    with pytest.raises(NotForwardable, match=reason):
        parse_record(raw)
    with pytest.raises(NotForwardable, match=reason):
        Formatter(lambda r: b"").process(event(raw))


def test_too_long_messages_are_refused_never_cut() -> None:
    cfg = ForwardSyslogConfig(max_message_bytes=2000, hostname="h")
    fmt = Formatter(renderer(cfg), max_bytes=message_limit(cfg), limit_hint="; raise it")
    fits = {"eventID": "a", "p": "x" * 1000}
    (out,) = fmt.process(event(json.dumps(fits).encode()))
    assert json.loads(parse_rfc5424(out.decode()).msg) == fits
    with pytest.raises(NotForwardable, match=r"exceeds max_message_bytes=2000; not truncated; "
                                             r"raise it"):
        fmt.process(event(json.dumps({"p": "x" * 2000}).encode()))


def test_udp_limit() -> None:
    assert message_limit(ForwardSyslogConfig(transport="udp")) == 65_000
    assert message_limit(ForwardSyslogConfig(transport="udp", max_message_bytes=9000)) == 9000
    assert message_limit(ForwardSyslogConfig(transport="tcp")) == 1024 * 1024
