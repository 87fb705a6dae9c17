"""rsyslog as a subscribed SIEM: a private ``rsyslogd -n`` whose only input is ``imkafka``
(no system sockets), writing each message's ``%msg%`` as one line of a file."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from siem_clients import require


@dataclass
class RsyslogKafka:
    """A private ``rsyslogd -n`` whose one input is imkafka reading ``topic`` in ``group``
    with librdkafka settings ``params`` (a subscription's ``librdkafka.conf``, less bootstrap
    and group), writing each message as one line (``%msg%``) to ``output``."""

    workdir: Path
    topic: str
    bootstrap: str
    group: str
    params: dict[str, str]
    process: subprocess.Popen[bytes] | None = None

    @property
    def output(self) -> Path:
        return self.workdir / "siem.log"

    def config(self) -> str:
        params = ", ".join(json.dumps(f"{k}={v}") for k, v in self.params.items())
        return f"""
global(workDirectory="{self.workdir}" maxMessageSize="4m")
module(load="imkafka")
template(name="msgonly" type="string" string="%msg%\\n")
ruleset(name="siem") {{
  action(type="omfile" file="{self.output}" template="msgonly")
}}
input(type="imkafka" topic="{self.topic}" broker="{self.bootstrap}"
      consumergroup="{self.group}" ruleset="siem" confParam=[{params}])
"""

    def start(self) -> RsyslogKafka:
        """Validate the config (``-N1``), then start rsyslogd in the foreground."""
        binary = require("rsyslogd", "rsyslog")
        conf = self.workdir / "rsyslog.conf"
        conf.write_text(self.config(), encoding="utf-8")
        check = subprocess.run([binary, "-N1", "-f", str(conf)], capture_output=True,
                               text=True, check=False)
        assert check.returncode == 0, f"rsyslog rejects its config:\n{check.stderr}"
        with (self.workdir / "rsyslogd.log").open("ab") as log:
            self.process = subprocess.Popen(
                [binary, "-n", "-f", str(conf), "-i", str(self.workdir / "rsyslogd.pid")],
                stdout=log, stderr=subprocess.STDOUT)
        return self

    def lines(self) -> list[str]:
        """The complete lines written so far (a line being written is left for later)."""
        if not self.output.exists():
            return []
        data = self.output.read_bytes()
        # split on "\n" only: a record may hold U+2028 and the like, which splitlines() splits
        return data[:data.rfind(b"\n") + 1].decode().split("\n")[:-1]

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self) -> str:
        path = self.workdir / "rsyslogd.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def stop(self) -> None:
        """SIGTERM (imkafka closes its consumer) and wait until rsyslogd has exited."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(20)
