"""The syslog forwarder: CloudTrail records as RFC 5424 messages over TCP (RFC 6587 octet
counting), TLS (RFC 5425) or UDP (RFC 5426, one datagram per message).

Message: ``<PRI>1 TIMESTAMP HOSTNAME trailpipe PROCID cloudtrail SD MSG``. PRI is the
configured facility and the severity of the record (CEF 8 → 2 critical, 6 → 4 warning,
3 → 6 informational; :func:`pipeline.forward.cef.severity`); TIMESTAMP the record's eventTime
(UTC, milliseconds) or ``-`` when it has no valid one; SD ``[trailpipe@32473 eventID="…"]`` (or
``-``); MSG the record as one line of compact JSON or a CEF line (UTF-8, no BOM).

Long records: a message longer than ``max_message_bytes`` (UDP: at most 65,000) is
dead-lettered with the reason, never truncated. Receivers cut long messages by default: raise
their limits to match (rsyslog: ``global(maxMessageSize="1m")`` before its inputs load, or
``$MaxMessageSize 1m``, and imtcp's ``maxFrameSize`` (default 200,000: a longer octet-counted
frame is misread as octet stuffing); syslog-ng: ``options { log-msg-size(1048576); }`` and
the source's ``log-msg-size()``).

Delivery (at least once; duplicates possible, dedupe by eventID). Syslog has no application
acknowledgement, so over TCP/TLS the sink keeps every message it sent until it is *confirmed*:
at a later flush the connection is still open, the receiver's TCP acknowledged every byte
sent (the kernel's send queue is empty), and at least ``confirm_after_ms`` passed since the
send. :meth:`SyslogSink.held` keeps the offsets of unconfirmed messages from being committed.
When the connection broke (the receiver closed or restarted, a send failed), the next flush
reconnects and first resends every unconfirmed message, then the new ones. So a receiver that
is killed or restarted mid-run loses nothing it had not written out within
``confirm_after_ms``. Unconfirmed messages at shutdown are not committed and are sent again by
the next run. Over UDP nothing can be confirmed: a datagram sent counts as delivered.
"""

from __future__ import annotations

import fcntl
import os
import socket
import struct
import termios
import time
from collections import deque
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from pipeline.events.mapping import parse_event_time
from pipeline.forward.cef import SEVERITY_ERROR, SEVERITY_HIGH, cef_line, severity
from pipeline.forward.config import ForwardSyslogConfig
from pipeline.forward.records import compact_json
from pipeline.logs import get_logger
from pipeline.model import Event, SinkBase, TopicPartitionKey
from pipeline.notify.syslog import (
    SD_ID,
    address_family,
    header_field,
    octet_frame,
    open_stream,
    peer_closed,
    sd_value,
)

log = get_logger("pipeline.forward.syslog")

UDP_MAX_BYTES = 65_000
APP_NAME, MSGID = "trailpipe", "cloudtrail"
FLUSH_AT_COUNT, FLUSH_AT_BYTES = 1000, 4 * 1024 * 1024


def syslog_severity(cef_severity: int) -> int:
    """CEF severity → syslog severity (2 critical, 4 warning, 6 informational)."""
    return {SEVERITY_HIGH: 2, SEVERITY_ERROR: 4}.get(cef_severity, 6)


def rfc3339_ms(ms: int | None) -> str:
    """An RFC 5424 TIMESTAMP (UTC, milliseconds), or ``-`` for none or out of range."""
    if ms is None:
        return "-"
    try:
        stamp = datetime.fromtimestamp(ms / 1000, UTC)
    except (ValueError, OverflowError, OSError):
        return "-"
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def syslog_message(record: dict[str, Any], *, fmt: str, facility: int, hostname: str,
                   procid: str) -> bytes:
    """One RFC 5424 message for a CloudTrail record (see the module docstring)."""
    pri = facility * 8 + syslog_severity(severity(record))
    event_ms, _ = parse_event_time(record)
    event_id = record.get("eventID")
    sd = f'[{SD_ID} eventID="{sd_value(event_id)}"]' if isinstance(event_id, str) \
        and event_id else "-"
    msg = cef_line(record) if fmt == "cef" else compact_json(record)
    head = (f"<{pri}>1 {rfc3339_ms(event_ms)} {header_field(hostname, 255)} {APP_NAME} "
            f"{header_field(procid, 128)} {MSGID} {sd} ")
    return head.encode() + msg.encode("utf-8")


def renderer(cfg: ForwardSyslogConfig) -> Callable[[dict[str, Any]], bytes]:
    hostname, procid = cfg.hostname or socket.gethostname(), str(os.getpid())
    return lambda record: syslog_message(record, fmt=cfg.format, facility=cfg.facility,
                                         hostname=hostname, procid=procid)


def message_limit(cfg: ForwardSyslogConfig) -> int:
    """The longest message sent: ``max_message_bytes``, for UDP at most 65,000."""
    limit = cfg.max_message_bytes
    return min(limit, UDP_MAX_BYTES) if cfg.transport == "udp" else limit


def unacked_bytes(sock: socket.socket) -> int:
    """Bytes sent on ``sock`` the peer's TCP has not acknowledged yet (Linux SIOCOUTQ)."""
    out = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, struct.pack("i", 0))
    count: int = struct.unpack("i", out)[0]
    return count


@dataclass(frozen=True, slots=True)
class _Message:
    data: bytes
    tp: TopicPartitionKey | None
    offset: int
    sent_s: float = 0.0


class SyslogSink(SinkBase):
    """Sends rendered messages to one syslog receiver (see the module docstring)."""

    def __init__(self, cfg: ForwardSyslogConfig, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._cfg, self._clock = cfg, clock
        self._pending: deque[_Message] = deque()
        self._inflight: deque[_Message] = deque()
        self._pending_bytes = 0
        self._sock: socket.socket | None = None
        self.counters = {"sent": 0, "resent": 0, "confirmed": 0, "connects": 0}

    def add(self, item: Any, source: Event | None) -> None:
        tp = source.tp if source is not None else None
        self._pending.append(_Message(item, tp, source.offset if source else 0))
        self._pending_bytes += len(item)

    def should_flush(self, now_ms: int) -> bool:
        return len(self._pending) >= FLUSH_AT_COUNT or self._pending_bytes >= FLUSH_AT_BYTES

    def flush(self) -> None:
        """Send what is pending (after resending the unconfirmed, on a new connection).
        Raises OSError when the receiver cannot be reached; what was not sent stays."""
        if self._cfg.transport == "udp":
            self._send_datagrams()
            return
        self._confirm()
        sock = self._connection()
        try:
            while self._pending:
                message = self._pending[0]
                sock.sendall(octet_frame(message.data))
                self._pending.popleft()
                self._pending_bytes -= len(message.data)
                self._inflight.append(replace(message, sent_s=self._clock()))
                self.counters["sent"] += 1
        except OSError:
            self._disconnect()
            raise

    def _confirm(self) -> None:
        """Confirm the inflight messages old enough, if the connection is still healthy."""
        sock = self._sock
        if sock is None:
            return
        if peer_closed(sock):
            log.warning("syslog_receiver_closed", unconfirmed=len(self._inflight))
            self._disconnect()
            return
        if self._inflight and unacked_bytes(sock) == 0:
            cutoff_s = self._clock() - self._cfg.confirm_after_ms / 1000
            while self._inflight and self._inflight[0].sent_s <= cutoff_s:
                self._inflight.popleft()
                self.counters["confirmed"] += 1

    def _connection(self) -> socket.socket:
        """The open connection, or a new one with every unconfirmed message queued first."""
        if self._sock is not None:
            return self._sock
        cfg = self._cfg
        self._sock = open_stream(cfg.host, cfg.port, tls=cfg.transport == "tls",
                                 ca_file=cfg.ca_file, server_name=cfg.server_name,
                                 timeout_s=cfg.connect_timeout_s)
        self.counters["connects"] += 1
        if self._inflight:
            self.counters["resent"] += len(self._inflight)
            log.info("syslog_resending", messages=len(self._inflight))
            self._pending.extendleft(reversed(self._inflight))
            self._pending_bytes += sum(len(m.data) for m in self._inflight)
            self._inflight.clear()
        return self._sock

    def _send_datagrams(self) -> None:
        cfg = self._cfg
        with socket.socket(address_family(cfg.host), socket.SOCK_DGRAM) as sock:
            while self._pending:
                sock.sendto(self._pending[0].data, (cfg.host, cfg.port))
                self._pending_bytes -= len(self._pending.popleft().data)
                self.counters["sent"] += 1

    def _disconnect(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None

    def discard(self) -> None:
        self._pending.clear()
        self._pending_bytes = 0

    def held(self) -> Mapping[TopicPartitionKey, int]:
        """Per partition, the oldest offset not confirmed yet (pending or inflight)."""
        low: dict[TopicPartitionKey, int] = {}
        for message in (*self._inflight, *self._pending):
            if message.tp is not None:
                low[message.tp] = min(message.offset, low.get(message.tp, message.offset))
        return low

    def release(self, partitions: Collection[TopicPartitionKey]) -> None:
        gone = set(partitions)
        self._inflight = deque(m for m in self._inflight if m.tp not in gone)
        self._pending = deque(m for m in self._pending if m.tp not in gone)
        self._pending_bytes = sum(len(m.data) for m in self._pending)

    def healthcheck(self) -> bool:
        """TCP/TLS: the receiver accepts a connection (kept for the first flush)."""
        if self._cfg.transport == "udp":
            return True
        try:
            self._connection()
        except OSError as exc:
            log.warning("syslog_unreachable", host=self._cfg.host, port=self._cfg.port,
                        error=str(exc), error_type=type(exc).__name__)
            return False
        return True

    def close(self) -> None:
        self._disconnect()

    def summary(self) -> dict[str, Any]:
        return {**self.counters, "unconfirmed": len(self._inflight)}
