"""Real, independent Kafka clients for the SIEM acceptance tests, each run as a subprocess:
the harness (:class:`Client`, :func:`run_until`, :func:`wait_until`) and ``kcat`` (the Debian
package: librdkafka 2.0.2) with a subscription's ``librdkafka.conf``. Kafka's own Java tools:
:mod:`siem_java`; rsyslog with imkafka: :mod:`siem_rsyslog`.

Every run waits for a state (records read, an error printed, the process gone) with a
deadline and never sleeps blindly. Which Kafka error a client reported is read from its own
words (:func:`kafka_error`), so the tests assert what the client saw, not what we assume.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pytest

from pipeline.certs import CertificateAuthority, write_secret

SCRAM_FIX_LIBRDKAFKA = (2, 6, 1)
"""First librdkafka whose SCRAM final message Kafka 4 accepts (the nonce was sent twice)."""

# How each client words a Kafka error: librdkafka's text (kcat, rsyslog) and the Java
# exception class (console tools). Keys are Kafka's error names.
ERROR_WORDS: dict[str, tuple[str, ...]] = {
    "TOPIC_AUTHORIZATION_FAILED": ("Topic authorization failed", "TopicAuthorizationException"),
    "GROUP_AUTHORIZATION_FAILED": ("Group authorization failed", "GroupAuthorizationException"),
    "SASL_AUTHENTICATION_FAILED": ("SASL authentication error", "SaslAuthenticationException"),
    "SSL_HANDSHAKE_FAILED": ("certificate unknown", "SslAuthenticationException"),
}


def require(program: str, package: str) -> str:
    """The path of ``program``; skips the test LOUDLY when it is not installed."""
    path = shutil.which(program) or shutil.which(program, path="/usr/sbin:/sbin")
    if path is None:
        pytest.skip(f"{program} is not installed (Debian package {package}; .ci/run installs "
                    "it): this SIEM acceptance check did NOT run")
    return path


def wait_until(check: Callable[[], bool], timeout_s: float, what: str,
               interval_s: float = 0.2) -> None:
    """Poll ``check`` until it is true; fail the test naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(interval_s)


@dataclass
class Run:
    """What a client printed: stdout lines and stderr text; ``returncode`` is None when the
    harness stopped it (it had reached the awaited state or the deadline)."""

    argv: list[str]
    out: list[str] = field(default_factory=list)
    err: str = ""
    returncode: int | None = None

    def records(self) -> list[str]:
        """The stdout lines that are messages (JSON objects); a Java tool logs there too."""
        return [line for line in self.out if line.startswith("{")]

    def log(self) -> str:
        """What the client said about itself: stderr, then stdout lines that are no message."""
        return self.err + "\n" + "\n".join(ln for ln in self.out if not ln.startswith("{"))

    def error(self) -> str | None:
        """The Kafka error the client reported, if any (never read from a message)."""
        return kafka_error(self.log())

    def describe(self) -> str:
        return (f"{' '.join(self.argv[:3])} ... -> rc {self.returncode}, "
                f"{len(self.records())} messages; log tail:\n{self.log()[-1500:]}")


def kafka_error(text: str) -> str | None:
    """The first Kafka error (a key of :data:`ERROR_WORDS`) named in a client's output."""
    found = [(text.find(w), name) for name, words in ERROR_WORDS.items() for w in words
             if w in text]
    return min(found)[1] if found else None


class Client:
    """A client process whose output is collected as it arrives (stdout lines in
    ``run.out``, stderr in ``run.err``), so a test can wait for a state while it runs."""

    def __init__(self, argv: list[str], stdin: bytes | None = None) -> None:
        self.run = Run(argv)
        self._err: list[bytes] = []
        self._proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE)
        pipes = self._proc.stdin, self._proc.stdout, self._proc.stderr
        assert pipes[0] is not None and pipes[1] is not None and pipes[2] is not None
        self._readers = [threading.Thread(target=_lines, args=(pipes[1], self.run.out)),
                         threading.Thread(target=_chunks, args=(pipes[2], self._err))]
        for reader in self._readers:
            reader.daemon = True
            reader.start()
        if stdin is not None:
            pipes[0].write(stdin)
        pipes[0].close()

    def wait_for(self, done: Callable[[Run], bool], timeout_s: float) -> bool:
        """Until ``done(run)`` holds (True) or the process exits or ``timeout_s`` passes."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.run.err = b"".join(self._err).decode(errors="replace")
            if done(self.run):
                return True
            if self._proc.poll() is not None:
                break
            time.sleep(0.05)
        for reader in self._readers if self._proc.poll() is not None else []:
            reader.join(5)  # the exited process's last output
        self.run.err = b"".join(self._err).decode(errors="replace")
        return done(self.run)

    def stop(self) -> Run:
        """SIGTERM (SIGKILL after 5 s) if still running; its complete output."""
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(5)
        else:
            self.run.returncode = self._proc.returncode
        for reader in self._readers:
            reader.join(5)
        self.run.err = b"".join(self._err).decode(errors="replace")
        return self.run


def run_until(argv: list[str], done: Callable[[Run], bool], timeout_s: float, *,
              stdin: bytes | None = None) -> Run:
    """Run ``argv`` until it exits, ``done(run)`` holds or ``timeout_s`` passes; then stop
    it and return its output."""
    client = Client(argv, stdin)
    client.wait_for(done, timeout_s)
    return client.stop()


def _lines(stream: IO[bytes], out: list[str]) -> None:
    for line in stream:
        out.append(line.decode(errors="replace").rstrip("\n"))


def _chunks(stream: IO[bytes], out: list[bytes]) -> None:
    for chunk in stream:
        out.append(chunk)


def until_count_or_error(expected: int) -> Callable[[Run], bool]:
    """A ``done`` predicate: ``expected`` records read, or a Kafka error reported."""
    return lambda run: len(run.records()) >= expected or run.error() is not None


def until_error(run: Run) -> bool:
    return run.error() is not None


def refused_until(attempt: Callable[[], Run], errors: set[str], what: str,
                  timeout_s: float = 60) -> Run:
    """Repeat ``attempt`` (a client run) until it reports one of ``errors``."""
    deadline = time.monotonic() + timeout_s
    while (run := attempt()).error() not in errors:
        assert time.monotonic() < deadline, f"timed out waiting for {what}: {run.describe()}"
    return run


# --- librdkafka config files and kcat -------------------------------------------------------

def read_properties(path: Path) -> dict[str, str]:
    """``key=value`` lines of a librdkafka or Java properties file (``#`` comments skipped)."""
    out: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            out[key.strip()] = value.strip()
    return out


def write_properties(source: Path, dest: Path, changes: Mapping[str, str | None]) -> Path:
    """Copy a properties file with some keys replaced (None: removed); keeps mode 0600."""
    lines = []
    for line in source.read_text(encoding="utf-8").splitlines():
        key = line.split("=", 1)[0].strip()
        if "=" in line and key in changes and not line.lstrip().startswith("#"):
            if changes[key] is not None:
                lines.append(f"{key}={changes[key]}")
            continue
        lines.append(line)
    lines += [f"{k}={v}" for k, v in changes.items()
              if v is not None and all(not ln.startswith(f"{k}=") for ln in lines)]
    dest.touch(mode=0o600)
    dest.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return dest


def foreign_certificate(conf: Path, name: str, tmp_path: Path) -> Path:
    """``conf`` with a key and certificate for the same subject (``CN=<name>``) issued by a CA
    the cluster does not trust."""
    key_pem, cert_pem = CertificateAuthority.create("rogue CA", days=1).issue_client(name, 1)
    write_secret(tmp_path / "rogue.key", key_pem)
    write_secret(tmp_path / "rogue.pem", cert_pem)
    return write_properties(conf, tmp_path / "rogue.conf",
                            {"ssl.key.location": str(tmp_path / "rogue.key"),
                             "ssl.certificate.location": str(tmp_path / "rogue.pem")})


def kcat_librdkafka_version(kcat: str) -> tuple[int, ...]:
    """The librdkafka version kcat was built with (from ``kcat -V``)."""
    text = subprocess.run([kcat, "-V"], capture_output=True, text=True, check=False).stdout
    match = re.search(r"librdkafka (\d+)\.(\d+)\.(\d+)", text)
    assert match is not None, f"no librdkafka version in `kcat -V`: {text}"
    return tuple(int(g) for g in match.groups())


def kcat_consumer(kcat: str, conf: Path, group: str, topic: str) -> list[str]:
    """kcat as a balanced consumer in ``group`` (``-G``) from the earliest offset, one JSON
    envelope per message (``-J``), unbuffered; it runs until stopped or an error."""
    return [kcat, "-u", "-F", str(conf), "-X", "auto.offset.reset=earliest", "-J", "-G", group,
            topic]


def kcat_consume(kcat: str, conf: Path, group: str, topic: str, *, expected: int,
                 timeout_s: float = 60) -> Run:
    """:func:`kcat_consumer` until ``expected`` messages or a Kafka error."""
    return run_until(kcat_consumer(kcat, conf, group, topic), until_count_or_error(expected),
                     timeout_s)


def kcat_envelopes(run: Run) -> list[dict[str, Any]]:
    """The messages of a ``-J`` run: ``topic``, ``partition``, ``offset``, ``key``,
    ``payload`` (text) and ``headers`` (as a dict)."""
    out = []
    for line in run.records():
        envelope = json.loads(line)
        pairs = envelope.get("headers") or []
        envelope["headers"] = dict(zip(pairs[::2], pairs[1::2], strict=True))
        out.append(envelope)
    return out


def kcat_produce(kcat: str, conf: Path, topic: str, value: bytes, timeout_s: float = 20) -> Run:
    """kcat as a producer of one message; it exits when the delivery report arrives."""
    return run_until([kcat, "-F", str(conf), "-P", "-t", topic], until_error, timeout_s,
                     stdin=value + b"\n")


def kcat_metadata(kcat: str, settings: Mapping[str, str], timeout_s: float = 20) -> Run:
    """``kcat -L`` (metadata) with librdkafka ``settings`` given as ``-X`` options."""
    argv = [kcat, "-L", "-m", "5"]
    for key, value in settings.items():
        argv += ["-X", f"{key}={value}"]
    return run_until(argv, until_error, timeout_s)
