"""``[forward_syslog]`` and ``[forward_hec]``: the forwarder daemons."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ForwardSyslogConfig(_Strict):
    """``trailpipe consume forward-syslog``: RFC 5424 over TCP (RFC 6587 octet counting), TLS
    (RFC 5425) or UDP; the message is the CloudTrail JSON or CEF."""

    group: str = Field(default="trailpipe-forward-syslog", min_length=1)
    topic: str | None = Field(default=None, description="JSON topic to forward; default: "
                              "[topics] events_json (a SIEM view topic works too)")
    host: str = "127.0.0.1"
    port: int = Field(default=6514, ge=1, le=65535)
    transport: Literal["tcp", "tls", "udp"] = "tcp"
    format: Literal["json", "cef"] = "json"
    ca_file: Path | None = Field(default=None, description="CA to trust for tls "
                                 "(default: the system store)")
    max_message_bytes: int = Field(default=1024 * 1024, ge=480, description="a record whose "
                                   "syslog message would be longer is dead-lettered with the "
                                   "reason, never truncated (UDP: at most 65,000)")
    server_name: str | None = Field(default=None, description="tls: the name the receiver's "
                                    "certificate must carry (default: host)")
    facility: int = Field(default=13, ge=0, le=23, description="syslog facility of every "
                          "message (13: log audit)")
    hostname: str | None = Field(default=None, description="RFC 5424 HOSTNAME (default: this "
                                 "host's name)")
    connect_timeout_s: float = Field(default=10.0, gt=0, description="connect and send timeout")
    confirm_after_ms: int = Field(default=1000, ge=0, description="tcp/tls: a message counts "
                                  "as received (its offset may be committed) once the receiver "
                                  "acknowledged its bytes and kept the connection open this "
                                  "long after the send; until then it is resent after a "
                                  "reconnect")


class ForwardHecConfig(_Strict):
    """``trailpipe consume forward-hec``: Splunk HTTP Event Collector, batched
    ``/services/collector/event``, offsets committed only after indexer acknowledgement."""

    group: str = Field(default="trailpipe-forward-hec", min_length=1)
    topic: str | None = Field(default=None, description="JSON topic to forward; default: "
                              "[topics] events_json")
    url: str = Field(default="https://127.0.0.1:8088", pattern=r"^https?://.+")
    token: SecretStr | None = None
    index: str | None = None
    sourcetype: str = "aws:cloudtrail"
    ack: bool = Field(default=True, description="use indexer acknowledgement (channel header "
                      "+ ack polling) before committing")
    batch_max_events: int = Field(default=500, ge=1)
    batch_max_bytes: int = Field(default=1024 * 1024, ge=1024)
    ack_timeout_ms: int = Field(default=60_000, ge=100)
    ack_poll_ms: int = Field(default=500, ge=10)
    ca_file: Path | None = None
    verify_tls: bool = True
    host: str | None = Field(default=None, description="the events' host field (default: this "
                             "host's name)")
    source: str = "trailpipe"
    request_timeout_s: float = Field(default=30.0, gt=0)
