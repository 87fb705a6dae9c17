"""Process and socket helpers for the dev launcher (POSIX; pid-reuse guarded via /proc or ps).

A process "is ours" only if its current argv equals the argv we recorded and, where the kernel
exposes it, its start time matches too. Nothing here ever signals a process that is not ours.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from pipeline.dev.model import HOST, ProcRecord

# Popen objects of children started by this interpreter, so they can be reaped (no zombies that
# look alive, no ResourceWarning) when this same process later stops them.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def free_ports(count: int) -> list[int]:
    """Return ``count`` distinct free loopback ports (all bound at once, so no duplicates)."""
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            socks.append(sock)
            sock.bind((HOST, 0))
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for sock in socks:
            sock.close()


def port_is_free(port: int) -> bool:
    """True if no socket listens on 127.0.0.1:``port`` (TIME_WAIT leftovers do not count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
        return True


def port_answers(port: int, timeout_s: float = 0.5) -> bool:
    """True if something accepts TCP connections on 127.0.0.1:``port``."""
    try:
        with socket.create_connection((HOST, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def _start_ticks(pid: int) -> int | None:
    """Kernel start time of ``pid`` in clock ticks (field 22 of /proc/PID/stat), if available."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    fields = raw.rsplit(")", 1)[-1].split()
    return int(fields[19]) if len(fields) > 19 else None


def _is_zombie(pid: int) -> bool:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    fields = raw.rsplit(")", 1)[-1].split()
    return bool(fields) and fields[0] in ("Z", "X")


def _cmdline(pid: int) -> list[str] | None:
    """Current argv of ``pid`` (from /proc, else ``ps``); None if the process does not exist."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        return [a.decode(errors="replace") for a in raw.split(b"\0")[:-1]]
    except FileNotFoundError:
        if Path("/proc/self").exists():
            return None
    except OSError:
        return None
    out = subprocess.run(["ps", "-o", "command=", "-p", str(pid)],
                         capture_output=True, text=True, check=False)
    return out.stdout.split() if out.returncode == 0 and out.stdout.strip() else None


def is_ours(rec: ProcRecord) -> bool:
    """True if the process recorded in ``rec`` is still running and is the one we started."""
    child = _CHILDREN.get(rec.pid)
    if child is not None:  # our own child: poll() is exact and reaps it when it has exited
        if child.poll() is None:
            return True
        _CHILDREN.pop(rec.pid, None)
        return False
    if _is_zombie(rec.pid):
        return False
    argv = _cmdline(rec.pid)
    if argv is None:
        return False
    if argv != rec.argv and " ".join(argv) != " ".join(rec.argv):
        return False
    ticks = _start_ticks(rec.pid)
    return rec.start_ticks is None or ticks is None or ticks == rec.start_ticks


def spawn(argv: list[str], log_path: Path, cwd: Path) -> ProcRecord:
    """Start ``argv`` in its own session (survives Ctrl-C of the caller), stdout+stderr appended
    to ``log_path``; return its record."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                 stderr=subprocess.STDOUT, cwd=cwd, start_new_session=True)
    _CHILDREN[child.pid] = child
    return ProcRecord(pid=child.pid, argv=list(argv), start_ticks=_start_ticks(child.pid))


def wait_gone(rec: ProcRecord, timeout_s: float) -> bool:
    """Wait up to ``timeout_s`` for the process to exit; True if it is gone."""
    deadline = time.monotonic() + timeout_s
    while is_ours(rec):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def send_signal(rec: ProcRecord, sig: int) -> bool:
    """Send ``sig`` to the process if it is still ours; True if sent."""
    if not is_ours(rec):
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(rec.pid, sig)
        return True
    return False


def stop(rec: ProcRecord, grace_s: float = 15.0) -> bool:
    """SIGTERM the process if it is ours, SIGKILL it after ``grace_s``; True if we signalled it."""
    if not send_signal(rec, signal.SIGTERM):
        return False
    if not wait_gone(rec, grace_s):
        send_signal(rec, signal.SIGKILL)
        wait_gone(rec, 5.0)
    return True


def tail(path: Path, lines: int = 30) -> str:
    """Last ``lines`` lines of a text file ('' if it does not exist)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 64 * 1024))
            data = fh.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(data.splitlines()[-lines:])


@contextlib.contextmanager
def locked(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``lock_path`` (serialises up/down on one state dir)."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
