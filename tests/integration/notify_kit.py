"""Real receivers for the notifier's integration tests: an HTTP webhook receiver and an
rsyslogd (Debian's rsyslog) listening on loopback TCP and UDP, writing what it parsed."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    at_s: float


@dataclass
class Receiver:
    """A webhook receiver on 127.0.0.1; ``status`` decides each answer (default 200)."""

    status: Callable[[int], int] = lambda _n: 200
    retry_after: str | None = None
    requests: list[Received] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.requests.append(Received(
                    {k.lower(): v for k, v in self.headers.items()}, body, time.monotonic()))
                self.send_response(receiver.status(len(receiver.requests)))
                if receiver.retry_after is not None:
                    self.send_header("Retry-After", receiver.retry_after)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


FIELDS_TEMPLATE = "%protocol-version%\\t%msgid%\\t%app-name%\\t%structured-data%\\t%msg%\\n"


@dataclass
class Rsyslog:
    """rsyslogd in the foreground with imtcp (octet-counted or LF framing) and imudp on
    loopback, writing one tab-separated line per message: version, MSGID, APP-NAME,
    structured data, MSG (as rsyslog parsed them)."""

    workdir: Path
    tcp_port: int = 0
    udp_port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def output(self) -> Path:
        return self.workdir / "out.log"

    def start(self) -> Rsyslog:
        binary = shutil.which("rsyslogd") or (
            "/usr/sbin/rsyslogd" if Path("/usr/sbin/rsyslogd").exists() else None)
        if binary is None:
            pytest.skip("rsyslogd is not installed (Debian package rsyslog; .ci/run installs "
                        "it): the notifier's rsyslog receiver test did NOT run")
        self.tcp_port, self.udp_port = free_port(), free_port(socket.SOCK_DGRAM)
        conf = self.workdir / "rsyslog.conf"
        conf.write_text(f"""
global(workDirectory="{self.workdir}")
module(load="imtcp")
module(load="imudp")
template(name="fields" type="string" string="{FIELDS_TEMPLATE}")
ruleset(name="alerts") {{
  action(type="omfile" file="{self.output}" template="fields")
}}
input(type="imtcp" address="127.0.0.1" port="{self.tcp_port}" ruleset="alerts")
input(type="imudp" address="127.0.0.1" port="{self.udp_port}" ruleset="alerts")
""")
        log = (self.workdir / "rsyslogd.log").open("wb")
        self.process = subprocess.Popen(
            [binary, "-n", "-f", str(conf), "-i", str(self.workdir / "rsyslogd.pid")],
            stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("rsyslogd exited: "
                                   + (self.workdir / "rsyslogd.log").read_text()[-2000:])
            try:
                socket.create_connection(("127.0.0.1", self.tcp_port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("rsyslogd did not listen within 15 s")

    def lines(self, expected: int, timeout_s: float = 15) -> list[list[str]]:
        deadline = time.monotonic() + timeout_s
        while True:
            text = self.output.read_text() if self.output.exists() else ""
            rows = [line.split("\t") for line in text.splitlines() if line]
            if len(rows) >= expected or time.monotonic() > deadline:
                return rows
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
