"""Syslog destination: RFC 5424 messages over UDP (RFC 5426), TCP with octet counting
(RFC 6587) or TLS (RFC 5425, octet counted too).

Each message: ``<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [SD] MSG`` where PRI is the
route's facility and the alert's severity, TIMESTAMP the alert's ``created_ms`` (UTC, ms),
MSGID ``ALERT`` (an opening) or ``ALERT_UPDATE``, and the structured data element
``trailpipe@32473`` (32473: the documentation enterprise number of RFC 5612) carries the
idempotency key, alert id, update number, rule id and severity. MSG is the CEF line or the
alert's compact JSON (UTF-8, no BOM).

Delivery: syslog has no acknowledgement. Over TCP/TLS a send that the kernel accepted counts
as delivered; a connection the peer closed is noticed before the next send and reopened.
Over UDP a datagram sent counts as delivered (no guarantee at all: prefer TCP or TLS).
"""

from __future__ import annotations

import os
import select
import socket
import ssl
from datetime import UTC, datetime
from pathlib import Path

from pipeline.notify.alerts import Alert, alert_json, delivery_key
from pipeline.notify.cef import cef_line
from pipeline.notify.config import SyslogRoute
from pipeline.notify.retry import DeliveryFailed

SYSLOG_SEVERITY = {"critical": 2, "high": 3, "medium": 4, "low": 5, "info": 6}
"""Alert severity → syslog severity (2 crit, 3 err, 4 warning, 5 notice, 6 info)."""
SD_ID = "trailpipe@32473"


def sd_value(value: object) -> str:
    """An SD-PARAM value escaped per RFC 5424: ``\\``, ``"`` and ``]``."""
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def header_field(value: str, limit: int) -> str:
    """A header field: printable US-ASCII without spaces, at most ``limit`` chars, or ``-``."""
    clean = "".join(c for c in value if "!" <= c <= "~")[:limit]
    return clean or "-"


def rfc5424(alert: Alert, *, facility: int, app_name: str, hostname: str, procid: str,
            msg: str) -> bytes:
    """One RFC 5424 message for ``alert`` with ``msg`` as its MSG part."""
    pri = facility * 8 + SYSLOG_SEVERITY[alert["severity"]]
    stamp = datetime.fromtimestamp(alert["created_ms"] / 1000, UTC)
    timestamp = stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"
    msgid = "ALERT" if alert["update"] == 0 else "ALERT_UPDATE"
    params = (("key", delivery_key(alert)), ("alertId", alert["alert_id"]),
              ("update", alert["update"]), ("ruleId", alert["rule_id"]),
              ("severity", alert["severity"]))
    sd = f"[{SD_ID} " + " ".join(f'{k}="{sd_value(v)}"' for k, v in params) + "]"
    head = (f"<{pri}>1 {timestamp} {header_field(hostname, 255)} "
            f"{header_field(app_name, 48)} {header_field(procid, 128)} {msgid} {sd} ")
    return head.encode() + msg.encode("utf-8")


def octet_frame(message: bytes) -> bytes:
    """RFC 6587 octet counting: the message's length in bytes, a space, the message."""
    return str(len(message)).encode() + b" " + message


class Syslog:
    """Sends alerts to one route's syslog receiver (see the module docstring)."""

    def __init__(self, route: SyslogRoute, *, hostname: str | None = None) -> None:
        self._route = route
        self._hostname = hostname or socket.gethostname()
        self._sock: socket.socket | None = None

    def message(self, alert: Alert) -> bytes:
        msg = cef_line(alert) if self._route.format == "cef" else alert_json(alert).decode()
        return rfc5424(alert, facility=self._route.facility, app_name=self._route.app_name,
                       hostname=self._hostname, procid=str(os.getpid()), msg=msg)

    def send(self, alert: Alert, raw: bytes) -> None:
        """Send one alert; raises DeliveryFailed when the receiver cannot be reached."""
        message = self.message(alert)
        route = self._route
        try:
            if route.protocol == "udp":
                with socket.socket(address_family(route.host), socket.SOCK_DGRAM) as sock:
                    sock.sendto(message, (route.host, route.port))
                return
            self._connected().sendall(octet_frame(message))
        except OSError as exc:
            self.close()
            raise DeliveryFailed(f"syslog {route.protocol}://{route.host}:{route.port}: "
                                 f"{type(exc).__name__}: {exc}") from None

    def _connected(self) -> socket.socket:
        if self._sock is not None and peer_closed(self._sock):
            self.close()
        if self._sock is None:
            route = self._route
            self._sock = open_stream(route.host, route.port, tls=route.protocol == "tls",
                                     ca_file=route.ca_file, server_name=route.server_name,
                                     timeout_s=route.retry.timeout_s)
        return self._sock

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None


def open_stream(host: str, port: int, *, tls: bool, ca_file: Path | None,
                server_name: str | None, timeout_s: float) -> socket.socket:
    """A connected TCP socket to a syslog receiver, wrapped in TLS (RFC 5425) trusting
    ``ca_file`` (default: the system store) when ``tls``. Raises OSError (ssl.SSLError too)."""
    sock = socket.create_connection((host, port), timeout=timeout_s)
    if not tls:
        return sock
    context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    try:
        return context.wrap_socket(sock, server_hostname=server_name or host)
    except OSError:
        sock.close()
        raise


def address_family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def peer_closed(sock: socket.socket) -> bool:
    """True when the receiver closed the connection. A syslog receiver sends no data, so a
    readable socket is either its close (EOF, a TLS close_notify, a reset) or TLS
    housekeeping (a TLS 1.3 session ticket), which a non-blocking read consumes."""
    readable, _, _ = select.select([sock], [], [], 0)
    if not readable:
        return False
    timeout_s = sock.gettimeout()
    sock.setblocking(False)
    try:
        return sock.recv(4096) == b""
    except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
        return False
    except OSError:
        return True
    finally:
        sock.settimeout(timeout_s)
