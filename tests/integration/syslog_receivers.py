"""Real syslog receivers for the forwarder's tests, and independent readers of what they wrote.

- :class:`RsyslogReceiver`: Debian's rsyslogd, ``imtcp`` on loopback (octet-counted framing),
  ``maxMessageSize`` 1 MiB, every message's raw text written as one line by ``omfile``.
- :class:`SyslogNgReceiver`: syslog-ng's ``syslog()`` source (RFC 5424, octet counting) with
  ``log-msg-size`` 1 MiB and ``store-raw-message``, ``$RAWMSG`` written one per line. Debian's
  ``syslog-ng-core`` conflicts with ``rsyslog``, so it is not installed: :func:`syslog_ng_root`
  runs ``apt-get download`` + ``dpkg-deb -x`` into ``var/syslog-ng`` (once; the libraries it
  needs that are missing are installed with apt when we are root) and the binary runs with
  its module path and ``LD_LIBRARY_PATH`` pointing there. When that is impossible the tests
  that need it skip LOUDLY with the reason.

Readers (written from the RFCs, sharing no code with the forwarder): :func:`parse_rfc5424`
and :func:`parse_cef`. And :func:`forwarder`: a forwarder daemon (syslog or HEC) in a thread.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
SYSLOG_NG_DIR = REPO / "var" / "syslog-ng"
SYSLOG_NG_LIBS = ("libivykis0", "libnet1", "libpcre3", "libwrap0")
"""Debian packages syslog-ng-core needs that a machine with rsyslog may lack."""


# --- readers ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Syslog5424:
    pri: int
    version: str
    timestamp: str
    hostname: str
    app_name: str
    procid: str
    msgid: str
    sd: str
    msg: str


def parse_rfc5424(line: str) -> Syslog5424:
    """One RFC 5424 message (no framing). SD is returned as written (``-`` or elements)."""
    head, rest = line.split(">", 1)
    assert head.startswith("<"), line[:80]
    version, timestamp, hostname, app, procid, msgid, rest = rest.split(" ", 6)
    if rest.startswith("-"):
        sd, msg = "-", rest[2:]
    else:
        i, in_quotes = 0, False
        while True:  # elements end at an unquoted ']' not followed by '['
            c = rest[i]
            if c == "\\" and in_quotes:
                i += 2
                continue
            if c == '"':
                in_quotes = not in_quotes
            elif c == "]" and not in_quotes and not rest[i + 1:].startswith("["):
                break
            i += 1
        sd, msg = rest[:i + 1], rest[i + 2:]
    return Syslog5424(int(head[1:]), version, timestamp, hostname, app, procid, msgid, sd, msg)


def sd_params(sd: str) -> dict[str, str]:
    """The PARAM-NAME → value pairs of structured data (values unescaped)."""
    out: dict[str, str] = {}
    i = 0
    while i < len(sd):
        eq = sd.find('="', i)
        if eq < 0:
            break
        name = sd[sd.rfind(" ", 0, eq) + 1:eq]
        j, value = eq + 2, []
        while sd[j] != '"':
            if sd[j] == "\\":
                j += 1
            value.append(sd[j])
            j += 1
        out[name] = "".join(value)
        i = j + 1
    return out


def parse_cef(line: str) -> tuple[list[str], dict[str, str]]:
    """A CEF line: its six header fields after ``CEF:0`` (unescaped) and its extension."""
    assert line.startswith("CEF:"), line[:80]
    fields: list[str] = []
    buf: list[str] = []
    i = 0
    while len(fields) < 7:
        c = line[i]
        if c == "\\" and line[i + 1] in "\\|":
            buf.append(line[i + 1])
            i += 2
            continue
        if c == "|":
            fields.append("".join(buf))
            buf = []
        else:
            buf.append(c)
        i += 1
    return fields[1:], parse_extension(line[i:])


def parse_extension(text: str) -> dict[str, str]:
    """``key=value`` pairs: a key is the word before an unescaped ``=``; values unescape
    ``\\\\``, ``\\=``, ``\\n``, ``\\r`` and keep their spaces."""
    out: dict[str, str] = {}
    key: str | None = None
    buf: list[str] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            buf.append({"n": "\n", "r": "\r"}.get(text[i + 1], text[i + 1]))
            i += 2
            continue
        if c == "=":
            s = "".join(buf)
            if key is not None:
                cut = s.rfind(" ")
                out[key], s = s[:cut], s[cut + 1:]
            key, buf = s, []
        else:
            buf.append(c)
        i += 1
    if key is not None:
        out[key] = "".join(buf)
    return out


# --- receivers -------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Receiver:
    """A syslog daemon in the foreground on 127.0.0.1:``port`` appending each received
    message as one line to ``output``; restartable on the same port and file."""

    name = "receiver"

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.output = workdir / "received.log"
        self.process: subprocess.Popen[bytes] | None = None

    def command(self) -> tuple[list[str], dict[str, str]]:
        raise NotImplementedError

    def start(self) -> Receiver:
        argv, env = self.command()
        log = (self.workdir / f"{self.name}.log").open("ab")
        self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                        env={**os.environ, **env})
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited: " + self.log_tail())
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not listen within 15 s: " + self.log_tail())

    def log_tail(self) -> str:
        return (self.workdir / f"{self.name}.log").read_text(errors="replace")[-2000:]

    def stop(self) -> None:
        """Graceful stop (SIGTERM): what the daemon read is written out."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(15)

    def kill(self) -> None:
        """SIGKILL: what the daemon had read but not written is lost. A line it was writing
        when killed is ended with a newline, so the messages written after the restart start
        on lines of their own (the torn line does not parse)."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(15)
        if self.output.exists() and not self.output.read_bytes().endswith(b"\n"):
            with self.output.open("ab") as out:
                out.write(b"\n")

    def lines(self) -> list[str]:
        if not self.output.exists():
            return []
        return [line for line in self.output.read_text(encoding="utf-8").split("\n") if line]

    def wait_lines(self, predicate: Callable[[list[str]], bool],
                   timeout_s: float = 60) -> list[str]:
        """Lines received once ``predicate(lines)`` holds; fails the test after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while True:
            lines = self.lines()
            if predicate(lines):
                return lines
            if time.monotonic() > deadline:
                pytest.fail(f"{self.name}: {len(lines)} lines, condition not met in "
                            f"{timeout_s} s; log: {self.log_tail()}")
            time.sleep(0.1)


class RsyslogReceiver(Receiver):
    name = "rsyslogd"

    def command(self) -> tuple[list[str], dict[str, str]]:
        binary = shutil.which("rsyslogd") or "/usr/sbin/rsyslogd"
        if not Path(binary).exists():
            pytest.skip("rsyslogd is not installed (Debian package rsyslog; .ci/run installs "
                        "it): the forwarder's rsyslog receiver test did NOT run")
        conf = self.workdir / "rsyslog.conf"
        conf.write_text(f"""
global(workDirectory="{self.workdir}" maxMessageSize="1m")
module(load="imtcp" maxFrameSize="2000000")
template(name="raw" type="string" string="%rawmsg%\\n")
ruleset(name="forwarded") {{
  action(type="omfile" file="{self.output}" template="raw")
}}
input(type="imtcp" address="127.0.0.1" port="{self.port}" ruleset="forwarded")
""")
        return [binary, "-n", "-f", str(conf), "-i", str(self.workdir / "rsyslogd.pid")], {}


class SyslogNgReceiver(Receiver):
    name = "syslog-ng"

    def command(self) -> tuple[list[str], dict[str, str]]:
        root = syslog_ng_root()
        conf = self.workdir / "syslog-ng.conf"
        conf.write_text(f"""@version: 3.38
options {{ log-msg-size(1048576); keep-hostname(yes); }};
source s_fwd {{ syslog(ip("127.0.0.1") port({self.port}) transport("tcp")
                      flags(store-raw-message) log-msg-size(1048576)); }};
destination d_file {{ file("{self.output}" template("$RAWMSG\\n")); }};
log {{ source(s_fwd); destination(d_file); }};
""")
        w = self.workdir
        argv = [str(root / "usr/sbin/syslog-ng"), "-F", "--no-caps", "--stderr", "-f", str(conf),
                f"--module-path={root / 'usr/lib/syslog-ng/3.38'}",
                "-R", str(w / "syslog-ng.persist"), "-p", str(w / "syslog-ng.pid"),
                "-c", str(w / "syslog-ng.ctl")]
        return argv, {"LD_LIBRARY_PATH": str(root / "usr/lib/syslog-ng")}


def syslog_ng_root() -> Path:
    """The extracted syslog-ng-core package (see the module docstring); skips LOUDLY when it
    cannot be had."""
    root = SYSLOG_NG_DIR / "root"
    binary = root / "usr/sbin/syslog-ng"
    if not binary.exists():
        _extract_syslog_ng(root)
    env = {**os.environ, "LD_LIBRARY_PATH": str(root / "usr/lib/syslog-ng")}
    probe = subprocess.run([str(binary), "--version"], capture_output=True, text=True, env=env)
    if probe.returncode != 0 and os.geteuid() == 0:
        subprocess.run(["apt-get", "install", "-y", "--no-install-recommends",
                        *SYSLOG_NG_LIBS], capture_output=True, check=False)
        probe = subprocess.run([str(binary), "--version"], capture_output=True, text=True,
                               env=env)
    if probe.returncode != 0:
        pytest.skip("syslog-ng (extracted from Debian's syslog-ng-core) does not run: "
                    f"{probe.stderr.strip()[-300:]}; install {' '.join(SYSLOG_NG_LIBS)}: "
                    "the forwarder's syslog-ng receiver test did NOT run")
    return root


def _extract_syslog_ng(root: Path) -> None:
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        pytest.skip("no apt-get/dpkg-deb to fetch syslog-ng-core: the forwarder's syslog-ng "
                    "receiver test did NOT run")
    with tempfile.TemporaryDirectory() as tmp:
        got = subprocess.run(["apt-get", "download", "syslog-ng-core"], cwd=tmp,
                             capture_output=True, text=True)
        debs = list(Path(tmp).glob("syslog-ng-core_*.deb"))
        if got.returncode != 0 or not debs:
            pytest.skip("`apt-get download syslog-ng-core` failed: "
                        f"{got.stderr.strip()[-300:]}: the forwarder's syslog-ng receiver "
                        "test did NOT run")
        SYSLOG_NG_DIR.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=SYSLOG_NG_DIR))
        subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(staging)], check=True)
        staging.rename(root)  # atomic: a concurrent session sees all of it or none


# --- the daemon under test -------------------------------------------------------------------

@contextmanager
def forwarder(name: str, bootstrap: str, **settings: Any) -> Iterator[Any]:
    """Registered daemon ``name`` (``forward-syslog`` / ``forward-hec``) running in a thread,
    configured by ``settings`` (dotted keys) over short runner intervals; stopped on exit."""
    from pipeline.config import load_config
    from pipeline.daemon import Context, build_registered

    overrides = {"kafka.bootstrap": bootstrap, "runner.session_timeout_ms": 6000,
                 "runner.commit_interval_ms": 300, "runner.flush_retry_budget_ms": 1000,
                 "runner.flush_retry_backoff_ms": 100, "runner.backpressure_pause_ms": 300,
                 **settings}
    daemon = build_registered(name, Context(load_config(env={}, overrides=overrides),
                                            bootstrap))
    thread = threading.Thread(target=daemon.run, daemon=True)
    thread.start()
    try:
        yield daemon
    finally:
        daemon.runner.request_stop()
        thread.join(30)
        assert not thread.is_alive()


def wait_until(condition: Callable[[], bool], what: str = "condition",
               timeout_s: float = 60) -> None:
    """Until ``condition()`` holds; fails the test after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not reached in {timeout_s} s: {what}")
        time.sleep(0.05)
