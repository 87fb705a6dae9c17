"""Data model of a dev cluster: what is recorded in ``state.json`` and what callers see.

``state.json`` (written atomically, mode 0600) is the single source of truth for processes the
launcher started. ``ClusterInfo`` is the read-only view handed to callers and printed by the CLI.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

STATE_FILE = "state.json"
LAYOUT_FILE = "cluster.json"
HOST = "127.0.0.1"
SASL_MECHANISM = "SCRAM-SHA-512"
SASL_PROTOCOL = "SASL_PLAINTEXT"
ADMIN_USER = "admin"


class DevClusterError(RuntimeError):
    """The dev cluster could not be started, stopped or inspected; the message says why."""


@dataclass(frozen=True)
class ProcRecord:
    """A process we started: pid, exact argv and kernel start time (the pid-reuse guard)."""

    pid: int
    argv: list[str]
    start_ticks: int | None


@dataclass(frozen=True)
class NodeRecord:
    """A Kafka node (combined broker+controller) with its fixed ports and its current process.
    ``sasl_ssl_port`` and ``ssl_port`` are set only in a TLS cluster."""

    node_id: int
    port: int
    controller_port: int
    proc: ProcRecord
    sasl_ssl_port: int | None = None
    ssl_port: int | None = None

    def listener_ports(self) -> list[int]:
        """Every port this node listens on (client listeners, then the controller's)."""
        tls = [p for p in (self.sasl_ssl_port, self.ssl_port) if p is not None]
        return [self.port, *tls, self.controller_port]


@dataclass(frozen=True)
class S3Record:
    """The moto S3 server process and its port."""

    port: int
    proc: ProcRecord


@dataclass(frozen=True)
class RegistryRecord:
    """The schema registry process (Apicurio, Confluent-compatible API), its port and version."""

    port: int
    version: str
    proc: ProcRecord


@dataclass(frozen=True)
class State:
    """Everything ``state.json`` holds about a started cluster."""

    kafka_version: str
    cluster_id: str
    nodes: list[NodeRecord]
    sasl_password: str | None = None
    s3: S3Record | None = None
    schema_registry: RegistryRecord | None = None
    tls: bool = False

    def node(self, node_id: int) -> NodeRecord:
        """Return the node with ``node_id``; raise DevClusterError if there is none."""
        for node in self.nodes:
            if node.node_id == node_id:
                return node
        raise DevClusterError(f"no node {node_id} in this cluster (nodes: {self.node_ids()})")

    def node_ids(self) -> list[int]:
        """Node ids in ascending order."""
        return sorted(n.node_id for n in self.nodes)


@dataclass(frozen=True)
class SaslInfo:
    """Client credentials of the admin super-user (SCRAM over SASL_PLAINTEXT)."""

    username: str
    password: str
    mechanism: str = SASL_MECHANISM
    security_protocol: str = SASL_PROTOCOL


@dataclass(frozen=True)
class TlsInfo:
    """The TLS listeners of a dev cluster and its files (all PEM): the CA clients trust and
    its key (what signs client certificates, 0600), and the admin super-user's client
    certificate and key (subject ``CN=admin``)."""

    sasl_ssl_bootstrap: str
    ssl_bootstrap: str
    ca_location: Path
    ca_key: Path
    admin_certificate: Path
    admin_key: Path


@dataclass(frozen=True)
class BrokerInfo:
    """One broker as seen by ``status``: ``alive`` means our recorded process is still running."""

    node_id: int
    pid: int
    port: int
    alive: bool


@dataclass(frozen=True)
class ClusterInfo:
    """Public view of a dev cluster: bootstrap address, brokers, optional S3 endpoint, SASL and
    schema registry (``schema_registry_url`` is the base URL confluent-kafka's client takes)."""

    bootstrap: str
    brokers: list[BrokerInfo]
    kafka_version: str
    s3_endpoint: str | None = None
    sasl: SaslInfo | None = None
    schema_registry_url: str | None = None
    state_dir: Path | None = field(default=None, compare=False)
    tls: TlsInfo | None = None

    def to_json_dict(self) -> dict[str, Any]:
        """Return ``{"bootstrap", "brokers": [{node_id, pid, port, alive}], "kafka_version",
        "s3_endpoint"}`` (s3_endpoint is None when no S3 server was started) plus ``"sasl":
        {username, password, mechanism, security_protocol}`` only when SASL is on, and
        ``"schema_registry_url"`` only when a schema registry was started, and ``"tls":
        {sasl_ssl_bootstrap, ssl_bootstrap, ca_location, ca_key, admin_certificate,
        admin_key}`` (paths as strings) only when TLS is on."""
        out: dict[str, Any] = {
            "bootstrap": self.bootstrap,
            "brokers": [asdict(b) for b in self.brokers],
            "kafka_version": self.kafka_version,
            "s3_endpoint": self.s3_endpoint,
        }
        if self.sasl is not None:
            out["sasl"] = asdict(self.sasl)
        if self.schema_registry_url is not None:
            out["schema_registry_url"] = self.schema_registry_url
        if self.tls is not None:
            out["tls"] = {k: str(v) for k, v in asdict(self.tls).items()}
        return out

    def client_config(self) -> dict[str, str]:
        """librdkafka settings to reach this cluster: ``bootstrap.servers`` and, with SASL,
        ``security.protocol``, ``sasl.mechanism``, ``sasl.username``, ``sasl.password``."""
        conf = {"bootstrap.servers": self.bootstrap}
        if self.sasl is not None:
            conf.update(
                {
                    "security.protocol": self.sasl.security_protocol,
                    "sasl.mechanism": self.sasl.mechanism,
                    "sasl.username": self.sasl.username,
                    "sasl.password": self.sasl.password,
                }
            )
        return conf

    def _require_tls(self) -> TlsInfo:
        if self.tls is None:
            raise DevClusterError("this dev cluster has no TLS listeners (start it with --tls)")
        return self.tls

    def sasl_ssl_client_config(self) -> dict[str, str]:
        """librdkafka settings for the admin super-user over the SASL_SSL listener (SCRAM,
        trusting the cluster's CA); raises DevClusterError when TLS is off."""
        tls = self._require_tls()
        return {**self.client_config(), "bootstrap.servers": tls.sasl_ssl_bootstrap,
                "security.protocol": "SASL_SSL", "ssl.ca.location": str(tls.ca_location)}

    def ssl_client_config(self) -> dict[str, str]:
        """librdkafka settings for the admin super-user over the SSL listener (mutual TLS with
        the ``CN=admin`` client certificate); raises DevClusterError when TLS is off."""
        tls = self._require_tls()
        return {"bootstrap.servers": tls.ssl_bootstrap, "security.protocol": "SSL",
                "ssl.ca.location": str(tls.ca_location),
                "ssl.certificate.location": str(tls.admin_certificate),
                "ssl.key.location": str(tls.admin_key)}


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _proc_from(d: dict[str, Any]) -> ProcRecord:
    return ProcRecord(pid=int(d["pid"]), argv=[str(a) for a in d["argv"]],
                      start_ticks=d.get("start_ticks"))


def state_from_dict(d: dict[str, Any]) -> State:
    """Parse the ``state.json`` document; raise DevClusterError if it is malformed."""
    try:
        nodes = [
            NodeRecord(int(n["node_id"]), int(n["port"]), int(n["controller_port"]),
                       _proc_from(n["proc"]), _optional_int(n.get("sasl_ssl_port")),
                       _optional_int(n.get("ssl_port")))
            for n in d["nodes"]
        ]
        s3, reg = d.get("s3"), d.get("schema_registry")
        return State(
            kafka_version=str(d["kafka_version"]),
            cluster_id=str(d["cluster_id"]),
            nodes=nodes,
            sasl_password=d.get("sasl_password"),
            s3=S3Record(int(s3["port"]), _proc_from(s3["proc"])) if s3 else None,
            schema_registry=(RegistryRecord(int(reg["port"]), str(reg["version"]),
                                            _proc_from(reg["proc"])) if reg else None),
            tls=bool(d.get("tls", False)),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise DevClusterError(f"malformed {STATE_FILE}: {exc!r}") from exc


def write_json_atomic(path: Path, doc: dict[str, Any]) -> None:
    """Write ``doc`` to ``path`` via a temp file + rename, readable by the owner only."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(doc, fh, indent=2, sort_keys=True)
        fh.write("\n")
    os.replace(tmp, path)


def load_state(state_dir: Path) -> State | None:
    """Return the recorded state, or None when ``state_dir`` has no ``state.json``."""
    path = state_dir / STATE_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        return state_from_dict(json.loads(text))
    except json.JSONDecodeError as exc:
        raise DevClusterError(f"{path} is not valid JSON: {exc}") from exc


def save_state(state_dir: Path, state: State) -> None:
    """Persist ``state`` as ``state_dir/state.json`` (atomic)."""
    write_json_atomic(state_dir / STATE_FILE, asdict(state))
