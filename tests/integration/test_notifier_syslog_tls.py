"""Syslog over TLS (RFC 5425) to a real TLS listener on loopback, trusting a private CA file,
and a TCP receiver that drops the connection: the next alert reconnects."""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from pipeline.notify.config import SyslogRoute
from pipeline.notify.retry import DeliveryFailed
from pipeline.notify.syslog import Syslog
from pipeline.rules.alert import alert_id, alert_record, decode_alert, encode_alert
from pipeline.rules.model import AlertDraft

pytestmark = pytest.mark.integration


def an_alert(n: int) -> dict:
    key = f"k{n}"
    draft = AlertDraft(alert_id=alert_id("r", key, 0), update=0, kind="rule", rule_id="r",
                       key=key, window_start_ms=0, count=1, first_seen_ms=0, last_seen_ms=0,
                       sample_event_ids=(), title=f"title {n}", severity="critical")
    return decode_alert(encode_alert(alert_record(draft, tags=(), rule_source="native:r@1",
                                                  created_ms=0)))


def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "syslog.test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def read_frames(conn: socket.socket, count: int) -> list[bytes]:
    """Read ``count`` octet-counted frames (the test's own RFC 6587 reader)."""
    buf, frames = b"", []
    while len(frames) < count:
        while b" " not in buf or len(buf) < int(buf.split(b" ", 1)[0]) + len(
                buf.split(b" ", 1)[0]) + 1:
            chunk = conn.recv(65536)
            if not chunk:
                return frames
            buf += chunk
        size, rest = buf.split(b" ", 1)
        frames.append(rest[:int(size)])
        buf = rest[int(size):]
    return frames


def serve(listener: socket.socket, per_connection: list[int], out: list[list[bytes]],
          wrap=lambda c: c, closed: threading.Event | None = None) -> threading.Thread:
    """Accept one connection per entry, read that many frames, close it (then set
    ``closed``)."""
    def run() -> None:
        for count in per_connection:
            conn, _ = listener.accept()
            with wrap(conn) as c:
                out.append(read_frames(c, count))
            if closed is not None:
                closed.set()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_tls_with_a_private_ca(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))
    out: list[list[bytes]] = []
    thread = serve(listener, [2], out, lambda c: server_ctx.wrap_socket(c, server_side=True))
    route = SyslogRoute(type="syslog", name="tls", host="127.0.0.1",
                        port=listener.getsockname()[1], protocol="tls", ca_file=cert)
    client = Syslog(route, hostname="h")
    alerts = [an_alert(1), an_alert(2)]
    for alert in alerts:
        client.send(alert, b"")
    thread.join(10)
    client.close()
    listener.close()
    assert [f[: f.index(b" ")] for f in out[0]] == [b"<106>1", b"<106>1"]
    assert [client.message(a) for a in alerts] == out[0]


def test_tls_refuses_an_untrusted_server(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    (tmp_path / "other").mkdir()
    other, _ = self_signed(tmp_path / "other")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))

    def accept() -> None:
        conn, _ = listener.accept()
        try:
            server_ctx.wrap_socket(conn, server_side=True).close()
        except (ssl.SSLError, OSError):
            conn.close()
    threading.Thread(target=accept, daemon=True).start()
    route = SyslogRoute(type="syslog", name="tls", host="127.0.0.1",
                        port=listener.getsockname()[1], protocol="tls", ca_file=other)
    with pytest.raises(DeliveryFailed, match="CERTIFICATE_VERIFY_FAILED"):
        Syslog(route).send(an_alert(1), b"")
    listener.close()


def test_tcp_reconnects_after_the_receiver_closed(tmp_path: Path) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    out: list[list[bytes]] = []
    closed = threading.Event()
    thread = serve(listener, [1, 1], out, closed=closed)
    route = SyslogRoute(type="syslog", name="tcp", host="127.0.0.1",
                        port=listener.getsockname()[1], protocol="tcp", format="json")
    client = Syslog(route)
    client.send(an_alert(1), b"")
    assert closed.wait(10)
    client.send(an_alert(2), b"")  # the first connection is closed by now: reconnects
    thread.join(10)
    client.close()
    listener.close()
    assert len(out) == 2 and all(len(frames) == 1 for frames in out)
    assert b'"title":"title 2"' in out[1][0]
