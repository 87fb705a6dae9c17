"""server.properties and command lines for dev Kafka nodes (KRaft, combined broker+controller).

Every node listens only on 127.0.0.1: a client listener (PLAINTEXT, or SASL_PLAINTEXT with
SCRAM-SHA-512 when SASL is on) and a CONTROLLER listener (PLAINTEXT) for the static voter quorum.
With TLS (which implies SASL) two more client listeners open, each on its own port:
``SASL_SSL`` (SCRAM over TLS) and ``SSL`` (mutual TLS: ``ssl.client.auth=required``). The
brokers read PEM directly (``ssl.keystore.type=PEM``, ``ssl.truststore.type=PEM``; files from
:mod:`pipeline.dev.tls`). On the SSL listener the principal comes from the client certificate:
``ssl.principal.mapping.rules`` maps a subject of exactly ``CN=<name>`` to ``User:<name>``, the
principal a SCRAM user ``<name>`` gets, so one set of ACLs serves both; any other subject keeps
its full DN (``DEFAULT``), which no ACL names. Inter-broker traffic stays on the SASL_PLAINTEXT
listener. Topic auto-creation is off on purpose: code must create the topics it uses.

Revocation and ``connections.max.reauth.ms``: Kafka checks SASL credentials when a connection
authenticates, not on every request, so without re-authentication a deleted or rotated SCRAM
credential keeps working on connections already open. With SASL on, the dev brokers set
``connections.max.reauth.ms`` (:data:`REAUTH_MS`): clients must re-authenticate within that time
(librdkafka >= 2.2 and the Java client do it transparently; older clients are disconnected and
reconnect), and a client whose credential is gone is cut off. Production brokers should set it
too (minutes, not hours: it bounds how long a revoked SIEM can keep reading). ACL changes, in
contrast, apply to the next request on any connection, which is what revokes mTLS principals.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from pipeline.dev import tls
from pipeline.dev.model import ADMIN_USER, HOST, SASL_MECHANISM, DevClusterError, NodeRecord

JVM_HEAP = ["-Xmx512m", "-Xms256m"]
JVM_OPTS = ["-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-Djava.awt.headless=true"]
REAUTH_MS = 60_000
PRINCIPAL_MAPPING_RULES = "RULE:^CN=([^,]+)$/$1/,DEFAULT"
"""``CN=splunk`` -> ``User:splunk``; any other subject keeps its full DN."""


def node_dir(state_dir: Path, node_id: int) -> Path:
    """Directory holding one node's server.properties, data/ and logs/."""
    return state_dir / f"node-{node_id}"


def _topic_defaults(brokers: int) -> dict[str, str]:
    """Replication settings: 1 for a single node; RF 3 / min ISR 2 for a three-node cluster."""
    rf = str(min(brokers, 3))
    isr = "1" if brokers == 1 else "2"
    return {
        "num.partitions": "3",
        "default.replication.factor": rf,
        "min.insync.replicas": isr,
        "offsets.topic.replication.factor": rf,
        "offsets.topic.num.partitions": "10",
        "transaction.state.log.replication.factor": rf,
        "transaction.state.log.min.isr": isr,
        "share.coordinator.state.topic.replication.factor": rf,
        "share.coordinator.state.topic.min.isr": isr,
    }


def _sasl_settings(password: str, listeners: list[str]) -> dict[str, str]:
    """SCRAM on the SASL ``listeners`` (SASL_PLAINTEXT is also used between brokers), forced
    re-authentication, plus StandardAuthorizer.

    ``User:ANONYMOUS`` is a super-user only because the CONTROLLER listener is PLAINTEXT (KRaft
    controllers cannot use SCRAM, whose credentials live in the metadata log) and loopback-only.
    """
    jaas = (
        "org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="{ADMIN_USER}" password="{password}";'
    )
    return {
        "sasl.enabled.mechanisms": SASL_MECHANISM,
        "sasl.mechanism.inter.broker.protocol": SASL_MECHANISM,
        **{f"listener.name.{name.lower()}.{SASL_MECHANISM.lower()}.sasl.jaas.config": jaas
           for name in listeners},
        "connections.max.reauth.ms": str(REAUTH_MS),
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users": f"User:{ADMIN_USER};User:ANONYMOUS",
        "allow.everyone.if.no.acl.found": "false",
    }


def _tls_settings(state_dir: Path) -> dict[str, str]:
    """PEM keystore and truststore for both TLS listeners; client certificates required on SSL
    and mapped to ``User:<CN>``."""
    tdir = tls.tls_dir(state_dir).resolve()
    return {
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(tdir / tls.BROKER_KEYSTORE),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(tdir / tls.CA_CERT),
        "listener.name.ssl.ssl.client.auth": "required",
        "ssl.principal.mapping.rules": PRINCIPAL_MAPPING_RULES,
    }


def _listeners(node: NodeRecord, client: str) -> dict[str, int]:
    """Client listener name -> port (listener names equal their security protocols)."""
    ports = {client: node.port}
    if node.sasl_ssl_port is not None and node.ssl_port is not None:
        ports.update({"SASL_SSL": node.sasl_ssl_port, "SSL": node.ssl_port})
    return ports


def server_properties(
    state_dir: Path, node: NodeRecord, voters: list[NodeRecord], sasl_password: str | None
) -> dict[str, str]:
    """All broker/controller settings for ``node`` in a cluster whose voters are ``voters``;
    TLS listeners when the node has TLS ports (which needs ``sasl_password``)."""
    client = "SASL_PLAINTEXT" if sasl_password is not None else "PLAINTEXT"
    listeners = _listeners(node, client)
    if len(listeners) > 1 and sasl_password is None:
        raise DevClusterError("TLS listeners need SASL (tls implies sasl)")
    advertised = ",".join(f"{name}://{HOST}:{port}" for name, port in listeners.items())
    brokers = len(voters)
    props = {
        "process.roles": "broker,controller",
        "node.id": str(node.node_id),
        "controller.quorum.voters": ",".join(
            f"{v.node_id}@{HOST}:{v.controller_port}" for v in voters
        ),
        "listeners": f"{advertised},CONTROLLER://{HOST}:{node.controller_port}",
        "advertised.listeners": advertised,
        "listener.security.protocol.map": ",".join(
            [*(f"{name}:{name}" for name in listeners), "CONTROLLER:PLAINTEXT"]),
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": client,
        "log.dirs": str(node_dir(state_dir, node.node_id) / "data"),
        "auto.create.topics.enable": "false",
        "group.initial.rebalance.delay.ms": "0",
        # Faster failure detection than the 9 s default, so fault tests fail over quickly.
        "broker.session.timeout.ms": "6000",
        "broker.heartbeat.interval.ms": "1000",
        "log.segment.bytes": str(64 * 1024 * 1024),
        **_topic_defaults(brokers),
    }
    if sasl_password is not None:
        props.update(_sasl_settings(sasl_password, [n for n in listeners if "SASL" in n]))
    if "SSL" in listeners:
        props.update(_tls_settings(state_dir))
    return props


def write_properties(path: Path, props: dict[str, str]) -> None:
    """Write ``props`` as a Java properties file (values escaped for backslashes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["# Generated by pipeline.dev; edits are overwritten on the next fresh `up`."]
    lines += [f"{k}={v.replace(chr(92), chr(92) * 2)}" for k, v in sorted(props.items())]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def java_bin() -> str:
    """Path of ``java``: ``$JAVA_HOME/bin/java`` when set, else the one on PATH."""
    home = os.environ.get("JAVA_HOME")
    if home and Path(home, "bin", "java").is_file():
        return str(Path(home, "bin", "java"))
    found = shutil.which("java")
    if found is None:
        raise DevClusterError("no 'java' on PATH and JAVA_HOME is not set (Java 17+ is needed)")
    return found


def server_argv(libs: Path, log4j2: Path, state_dir: Path, node_id: int) -> list[str]:
    """The exact java command line of one node (also used to recognise it later)."""
    ndir = node_dir(state_dir, node_id).resolve()
    return [
        java_bin(), *JVM_HEAP, *JVM_OPTS,
        f"-Dtrailpipe.dev.node={ndir}",
        f"-Dkafka.logs.dir={ndir / 'logs'}",
        f"-Dlog4j2.configurationFile={log4j2.resolve()}",
        "-cp", f"{libs.resolve()}/*",
        "kafka.Kafka", str(ndir / "server.properties"),
    ]


def format_argv(
    libs: Path, state_dir: Path, node_id: int, cluster_id: str, sasl_password: str | None
) -> list[str]:
    """StorageTool command that formats one node's log dir (adding the SCRAM admin if SASL)."""
    ndir = node_dir(state_dir, node_id).resolve()
    argv = [java_bin(), "-Xmx256m", "-cp", f"{libs.resolve()}/*", "kafka.tools.StorageTool",
            "format", "-t", cluster_id, "-c", str(ndir / "server.properties")]
    if sasl_password is not None:
        argv += ["--add-scram", f"{SASL_MECHANISM}=[name={ADMIN_USER},password={sasl_password}]"]
    return argv
