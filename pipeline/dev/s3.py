"""Local S3 API for dev/tests: moto's server mode on 127.0.0.1, started as a subprocess."""

from __future__ import annotations

import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from pipeline.dev import procs
from pipeline.dev.model import HOST, DevClusterError, S3Record


def endpoint(port: int) -> str:
    """HTTP endpoint URL of an S3 server on ``port``."""
    return f"http://{HOST}:{port}"


def answers(port: int, timeout_s: float = 1.0) -> bool:
    """True if an HTTP server answers on ``port`` (any status code counts)."""
    try:
        with urllib.request.urlopen(endpoint(port) + "/", timeout=timeout_s):
            return True
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, OSError):
        return False


def start(state_dir: Path, deadline: float) -> S3Record:
    """Start ``<this python> -m moto.server`` on a free loopback port and wait until it answers
    HTTP; before ``deadline`` (time.monotonic) or raise DevClusterError (the process is stopped)."""
    port = procs.free_port()
    argv = [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(port)]
    log = state_dir / "s3" / "moto.log"
    rec = S3Record(port=port, proc=procs.spawn(argv, log, cwd=state_dir))
    while not answers(port):
        if not procs.is_ours(rec.proc) or time.monotonic() >= deadline:
            procs.stop(rec.proc, grace_s=3.0)
            raise DevClusterError(
                f"moto S3 server did not answer on {endpoint(port)}; last lines of {log}:\n"
                + procs.tail(log)
            )
        time.sleep(0.2)
    return rec
