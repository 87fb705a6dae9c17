"""The syslog forwarder daemon against real receivers: rsyslogd (``imtcp``) and syslog-ng.

CloudTrail JSON records with adversarial values (``|``, ``\\``, ``=``, line breaks, non-ASCII,
a 300 KB record) and real corpus records go through a Kafka topic and ``forward-syslog`` (JSON
and CEF) to the receiver; what it wrote is read back with independent RFC 5424 / CEF readers
and compared with the produced fields. Undecodable and too long records are dead-lettered with
the reason. A receiver stopped and restarted mid-run loses nothing (set of eventIDs)."""

from __future__ import annotations

import json
import socket
import ssl
import struct
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from kit import produce, read_all
from syslog_receivers import (
    Receiver,
    RsyslogReceiver,
    SyslogNgReceiver,
    forwarder,
    parse_cef,
    parse_rfc5424,
    sd_params,
    wait_until,
)
from test_notifier_syslog_tls import self_signed

from pipeline.forward.config import ForwardSyslogConfig
from pipeline.forward.syslog import SyslogSink
from pipeline.model import Event
from pipeline.notify.syslog import peer_closed

pytestmark = pytest.mark.integration

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "cloudtrail"
NASTY = ["a|b|c", "back\\slash\\", "k=v=w", "line1\nline2", "cr\rx", "ünïcødé 日本語 🚀",
         "|\\=\n mixed ", "\\n not a break", " spaced  out ", "\\|\\="]
RECEIVERS = {"rsyslog": RsyslogReceiver, "syslog-ng": SyslogNgReceiver}


def adversarial(tag: str) -> list[dict[str, Any]]:
    """One record per nasty value (in every mapped field) and one of ~300 KB."""
    records = []
    for n, v in enumerate(NASTY):
        records.append({
            "eventVersion": "1.08", "eventID": f"adv-{n}-{tag}",
            "eventTime": "2024-03-01T12:34:56.789Z", "eventSource": f"s3{v}.amazonaws.com",
            "eventName": f"Get{v}", "awsRegion": v, "sourceIPAddress": "203.0.113.7",
            "userAgent": v, "errorCode": f"Err{v}", "errorMessage": v,
            "recipientAccountId": "123456789012",
            "userIdentity": {"type": "IAMUser", "arn": f"arn:aws:iam::1:user/{v}",
                             "principalId": v},
            "requestParameters": {"bucketName": v, v: [v, 1, None, True]}})
    records.append({"eventID": f"big-{tag}", "eventTime": "2024-03-01T00:00:00Z",
                    "eventName": "PutObject", "eventSource": "s3.amazonaws.com",
                    "requestParameters": {"blob": "x|\\=\nü" * 34_000}})  # ~306 KB of JSON
    return records


def corpus_records(count: int) -> list[dict[str, Any]]:
    lines = (CORPUS / "stratus-red-team" / "records.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines[:count]]


def messages(lines: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Received lines by eventID (from the SD), split into JSON and CEF messages. A line torn
    by a receiver's SIGKILL (see :meth:`Receiver.kill`) is skipped."""
    as_json: dict[str, Any] = {}
    as_cef: dict[str, Any] = {}
    for line in lines:
        try:
            parsed = parse_rfc5424(line)
            event_id = sd_params(parsed.sd)["eventID"]
            if parsed.msg.startswith("CEF:0|"):
                as_cef[event_id] = (parsed, *parse_cef(parsed.msg))
            else:
                as_json[event_id] = (parsed, json.loads(parsed.msg))
        except (ValueError, IndexError, KeyError, AssertionError):
            continue
    return as_json, as_cef


def has_all(ids: set[str], formats: int = 1) -> Callable[[list[str]], bool]:
    def done(lines: list[str]) -> bool:
        got = messages(lines)
        return all(ids <= set(by_id) for by_id in got[:formats])
    return done


@pytest.fixture(params=sorted(RECEIVERS))
def receiver(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Receiver]:
    started = RECEIVERS[request.param](tmp_path).start()
    yield started
    started.stop()


def check_cef(record: dict[str, Any], header: list[str], ext: dict[str, str]) -> None:
    flat = {k: str(v).replace("\n", " ").replace("\r", " ") for k, v in record.items()
            if isinstance(v, str)}
    assert header[3:5] == [f"{flat['eventSource']}:{flat['eventName']}", flat["eventName"]]
    identity = record.get("userIdentity", {})
    expected = {"externalId": record["eventID"], "act": record["eventName"],
                "cs1": record["eventSource"], "cs3": record.get("awsRegion"),
                "requestClientApplication": record.get("userAgent"),
                "outcome": record.get("errorCode", "success"),
                "msg": record.get("errorMessage"), "suser": identity.get("arn"),
                "suid": identity.get("principalId")}
    assert {k: ext.get(k) for k in expected} == expected


def test_adversarial_records_parse_back(kafka: Any, make_topic: Callable[..., str],
                                        receiver: Receiver, unique: str) -> None:
    topic, dlq_json, dlq_cef = make_topic("json"), make_topic("dlq", 1), make_topic("dlq", 1)
    records = adversarial(unique) + corpus_records(60)
    too_long = {"eventID": f"long-{unique}", "userAgent": "y" * 500_000}  # JSON and CEF
    values = [json.dumps(r, ensure_ascii=False).encode() for r in [*records, too_long]]
    produce(kafka.bootstrap, topic, [*values, b"{not json"])
    common = {"forward_syslog.topic": topic, "forward_syslog.port": receiver.port,
              "forward_syslog.max_message_bytes": 400_000}
    with forwarder("forward-syslog", kafka.bootstrap, **common, **{
            "forward_syslog.group": f"fwd-json-{unique}", "topics.dlq": dlq_json}) as fj, \
            forwarder("forward-syslog", kafka.bootstrap, **common, **{
                "forward_syslog.format": "cef", "forward_syslog.group": f"fwd-cef-{unique}",
                "topics.dlq": dlq_cef}) as fc:
        ids = {r["eventID"] for r in records}
        as_json, as_cef = messages(receiver.wait_lines(has_all(ids, formats=2)))
    assert {json.dumps(v[1], sort_keys=True) for v in as_json.values()} == {
        json.dumps(r, sort_keys=True) for r in records}
    assert set(as_cef) == ids
    for record in records:
        _, header, ext = as_cef[record["eventID"]]
        check_cef(record, header, ext)
    first = as_json[f"adv-0-{unique}"][0]
    assert (first.timestamp, first.app_name, first.msgid) == (
        "2024-03-01T12:34:56.789Z", "trailpipe", "cloudtrail")
    big = as_json[f"big-{unique}"][0]
    assert len(big.msg.encode()) > 300_000 and big.app_name == "trailpipe"
    for daemon, dlq in ((fj, dlq_json), (fc, dlq_cef)):
        count = daemon.runner.stats.dead_lettered  # at least once: a rewind re-reads
        assert count >= 2
        errors = {dict(cast(list[tuple[str, bytes]], m.headers()))["x-error"].decode()
                  for m in read_all(kafka.bootstrap, dlq, expected=count)}
        assert len(errors) == 2, errors
        assert any("exceeds max_message_bytes=400000; not truncated" in e for e in errors)
        assert any(e.startswith("not a CloudTrail record: not JSON") for e in errors)


def test_a_receiver_killed_mid_run_loses_nothing(kafka: Any, make_topic: Callable[..., str],
                                                 receiver: Receiver, unique: str) -> None:
    """SIGKILL the receiver while megabytes are on their way (in its socket buffer and its
    queue, read but not written), produce more while it is down, start it again: every
    eventID arrives (duplicates allowed)."""
    topic = make_topic("json")
    pad = {"pad": "p" * 4000}
    records = [{**r, "eventID": f"{n}-{unique}", "additionalEventData": pad}
               for n, r in enumerate(corpus_records(300) * 10)]
    first, second = records[:2500], records[2500:]
    produce(kafka.bootstrap, topic, [json.dumps(r).encode() for r in first])
    with forwarder("forward-syslog", kafka.bootstrap, **{"forward_syslog.topic": topic,
                                       "forward_syslog.port": receiver.port,
                                       "forward_syslog.group": f"fwd-{unique}"}) as daemon:
        receiver.wait_lines(lambda lines: len(lines) >= 100)
        receiver.kill()
        rewinds = daemon.runner.stats.rewinds
        produce(kafka.bootstrap, topic, [json.dumps(r).encode() for r in second])
        wait_until(lambda: daemon.runner.stats.rewinds > rewinds)  # sends failed meanwhile
        receiver.start()
        as_json, _ = messages(receiver.wait_lines(has_all({r["eventID"] for r in records})))
    assert set(as_json) == {r["eventID"] for r in records}
    assert all(as_json[r["eventID"]][1] == r for r in records)


class VolatileReceiver:
    """A TCP receiver on loopback that keeps what it read in memory only: ``crash()`` resets
    the connection and forgets it, as a receiver killed before writing anything out would."""

    def __init__(self, wrap: Callable[[socket.socket], socket.socket] = lambda c: c) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.wrap = wrap
        self.conn: socket.socket | None = None
        self.buffer = b""

    def frames(self, count: int) -> list[bytes]:
        """Accept a connection when there is none; read until ``count`` frames arrived."""
        if self.conn is None:
            self.listener.settimeout(10)
            conn, _ = self.listener.accept()
            self.conn = self.wrap(conn)
            self.conn.settimeout(10)
        out: list[bytes] = []
        while len(out) < count:
            size, _, rest = self.buffer.partition(b" ")
            if rest and len(rest) >= int(size):
                out.append(rest[:int(size)])
                self.buffer = rest[int(size):]
                continue
            chunk = self.conn.recv(65536)
            assert chunk, f"connection closed after {len(out)} of {count} frames"
            self.buffer += chunk
        return out

    def crash(self) -> None:
        assert self.conn is not None
        self.conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.conn.close()  # linger 0: a reset, like a killed process
        self.conn, self.buffer = None, b""


def test_unconfirmed_messages_are_resent_after_a_crash_and_held_until_confirmed() -> None:
    receiver = VolatileReceiver()
    now = [0.0]
    sink = SyslogSink(ForwardSyslogConfig(port=receiver.port, confirm_after_ms=1000),
                      clock=lambda: now[0])
    source = [Event(None, None, 0, "t", 0, offset) for offset in range(10, 15)]
    for n in range(3):
        sink.add(b"m%d" % n, source[n])
    sink.flush()
    assert receiver.frames(3) == [b"m0", b"m1", b"m2"]
    assert sink.held() == {("t", 0): 10}  # sent, not confirmed: not committable
    receiver.crash()
    wait_until(lambda: peer_closed_seen(sink))
    sink.add(b"m3", source[3])
    sink.flush()  # reconnects and resends the unconfirmed first
    assert receiver.frames(4) == [b"m0", b"m1", b"m2", b"m3"]
    assert sink.held() == {("t", 0): 10}
    now[0] += 0.5
    sink.flush()
    assert sink.held() == {("t", 0): 10}  # not confirm_after_ms yet
    now[0] += 0.5

    def confirmed() -> bool:
        sink.flush()
        return sink.held() == {}
    wait_until(confirmed)  # the connection is healthy and the receiver acknowledged the bytes
    sink.add(b"m4", source[4])
    sink.flush()
    assert receiver.frames(1) == [b"m4"] and sink.held() == {("t", 0): 14}
    sink.close()
    receiver.listener.close()


def peer_closed_seen(sink: SyslogSink) -> bool:
    """Whether the sink's socket shows the reset (what its next flush checks first)."""
    sock = sink._sock
    return sock is not None and peer_closed(sock)


def test_tls_and_udp_transports(tmp_path: Path) -> None:
    """TLS (RFC 5425, a private CA file, octet counted) and UDP (one datagram each)."""
    cert, key = self_signed(tmp_path)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    receiver = VolatileReceiver(lambda c: server_ctx.wrap_socket(c, server_side=True))
    got: list[bytes] = []
    thread = threading.Thread(target=lambda: got.extend(receiver.frames(2)), daemon=True)
    thread.start()
    tls = SyslogSink(ForwardSyslogConfig(port=receiver.port, transport="tls", ca_file=cert))
    source = Event(None, None, 0, "t", 0, 1)
    tls.add("ü one".encode(), source)
    tls.add(b"two", source)
    tls.flush()
    thread.join(10)
    assert got == ["ü one".encode(), b"two"]
    tls.close()
    receiver.listener.close()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp_in:
        udp_in.bind(("127.0.0.1", 0))
        udp_in.settimeout(10)
        udp = SyslogSink(ForwardSyslogConfig(port=udp_in.getsockname()[1], transport="udp"))
        udp.add(b"d1", source)
        udp.add(b"d2" * 1000, source)
        udp.flush()
        assert [udp_in.recv(65536) for _ in range(2)] == [b"d1", b"d2" * 1000]
        assert udp.held() == {}
