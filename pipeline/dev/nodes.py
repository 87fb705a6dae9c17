"""Node lifecycle internals: layout (ports, cluster id, formatting), spawning, readiness.

A *layout* (``cluster.json``) outlives ``down`` so that a later ``up`` with the same shape
(broker count, SASL on/off, Kafka version) reuses the formatted data dirs and keeps topics.
Any other shape wipes the node dirs and formats them afresh. TLS on/off only changes the
listeners (and so the ports), not the data.
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
import shutil
import subprocess
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from pipeline.dev import kafka_config as kc
from pipeline.dev import procs
from pipeline.dev.model import (
    ADMIN_USER,
    LAYOUT_FILE,
    DevClusterError,
    NodeRecord,
    ProcRecord,
    SaslInfo,
    State,
    write_json_atomic,
)

_log = logging.getLogger("pipeline.dev")


@dataclass(frozen=True)
class Layout:
    """Shape and identity of a cluster. Per node id 1..N, its ports: (port, controller_port),
    plus (sasl_ssl_port, ssl_port) in a TLS cluster."""

    kafka_version: str
    cluster_id: str
    sasl_password: str | None
    ports: list[tuple[int, ...]]
    fresh: bool  # True: node dirs were wiped and must be formatted


def _new_cluster_id() -> str:
    """A Kafka Uuid string (base64url of 16 random bytes, never starting with '-')."""
    while True:
        cid = base64.urlsafe_b64encode(secrets.token_bytes(16)).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


def _reusable(state_dir: Path, doc: dict[str, Any], brokers: int, sasl: bool, version: str) -> bool:
    return (
        doc.get("kafka_version") == version
        and len(doc.get("ports", [])) == brokers
        and (doc.get("sasl_password") is not None) == sasl
        and all((kc.node_dir(state_dir, i) / "data" / "meta.properties").is_file()
                for i in range(1, brokers + 1))
    )


def _new_ports(brokers: int, per_node: int) -> list[tuple[int, ...]]:
    flat = procs.free_ports(per_node * brokers)
    return [tuple(flat[i:i + per_node]) for i in range(0, len(flat), per_node)]


def prepare_layout(state_dir: Path, brokers: int, sasl: bool, tls: bool, version: str) -> Layout:
    """Reuse ``cluster.json`` if it has the requested shape (keeping its ports when still free
    and as many as ``tls`` needs), otherwise wipe ``node-*`` dirs and create a new layout;
    either way persist it."""
    path = state_dir / LAYOUT_FILE
    try:
        doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        doc = {}
    per_node = 4 if tls else 2
    if _reusable(state_dir, doc, brokers, sasl, version):
        ports = [tuple(int(p) for p in node) for node in doc["ports"]]
        if not all(len(node) == per_node and all(map(procs.port_is_free, node))
                   for node in ports):
            ports = _new_ports(brokers, per_node)
        layout = Layout(version, str(doc["cluster_id"]), doc.get("sasl_password"), ports, False)
    else:
        for old in state_dir.glob("node-*"):
            shutil.rmtree(old)
        layout = Layout(version, _new_cluster_id(), secrets.token_hex(16) if sasl else None,
                        _new_ports(brokers, per_node), True)
    write_json_atomic(path, {"kafka_version": layout.kafka_version,
                             "cluster_id": layout.cluster_id,
                             "sasl_password": layout.sasl_password, "ports": layout.ports})
    return layout


def write_configs(state_dir: Path, layout: Layout) -> list[NodeRecord]:
    """Write every node's server.properties; return node records (proc not started: pid 0)."""
    nodes = [NodeRecord(i, ports[0], ports[1], ProcRecord(0, [], None), *ports[2:4])
             for i, ports in enumerate(layout.ports, start=1)]
    for node in nodes:
        props = kc.server_properties(state_dir, node, nodes, layout.sasl_password)
        kc.write_properties(kc.node_dir(state_dir, node.node_id) / "server.properties", props)
    return nodes


def format_nodes(state_dir: Path, libs: Path, layout: Layout, timeout_s: float) -> None:
    """Run StorageTool format for every node in parallel; raise DevClusterError on failure."""
    jobs = []
    for node_id in range(1, len(layout.ports) + 1):
        argv = kc.format_argv(libs, state_dir, node_id, layout.cluster_id, layout.sasl_password)
        jobs.append(subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True))
    failures = []
    for node_id, job in enumerate(jobs, start=1):
        try:
            out, _ = job.communicate(timeout=max(timeout_s, 5.0))
        except subprocess.TimeoutExpired:
            job.kill()
            out, _ = job.communicate()
        if job.returncode != 0:
            failures.append(f"node {node_id} (exit {job.returncode}):\n{out.strip()[-3000:]}")
    if failures:
        raise DevClusterError("kafka StorageTool format failed for " + "\n".join(failures))


def spawn_node(state_dir: Path, node: NodeRecord, argv: list[str]) -> NodeRecord:
    """Start one node with ``argv``; return its record with the new process."""
    ndir = kc.node_dir(state_dir, node.node_id)
    rec = procs.spawn(argv, ndir / "stdout.log", cwd=ndir)
    return replace(node, proc=rec)


def log_tails(state_dir: Path, node_id: int, lines: int = 30) -> str:
    """Last lines of a node's server.log and of its JVM stdout (if it has any)."""
    ndir = kc.node_dir(state_dir, node_id)
    out = f"--- {ndir / 'logs' / 'server.log'} (last {lines} lines) ---\n"
    out += procs.tail(ndir / "logs" / "server.log", lines) or "(empty)"
    stdout = procs.tail(ndir / "stdout.log", lines)
    if stdout:
        out += f"\n--- {ndir / 'stdout.log'} ---\n{stdout}"
    return out


def admin_config(state: State) -> dict[str, Any]:
    """librdkafka settings for the admin super-user, logging into ``pipeline.dev`` (not stderr)."""
    conf: dict[str, Any] = {
        "bootstrap.servers": ",".join(f"127.0.0.1:{n.port}" for n in state.nodes),
        "logger": _log,
    }
    if state.sasl_password is not None:
        sasl = SaslInfo(ADMIN_USER, state.sasl_password)
        conf.update({"security.protocol": sasl.security_protocol,
                     "sasl.mechanism": sasl.mechanism,
                     "sasl.username": sasl.username, "sasl.password": sasl.password})
    return conf


def _check_alive(state_dir: Path, nodes: list[NodeRecord]) -> None:
    for node in nodes:
        if not procs.is_ours(node.proc):
            raise DevClusterError(f"Kafka node {node.node_id} (pid {node.proc.pid}) exited during "
                                  f"startup\n{log_tails(state_dir, node.node_id)}")


def wait_ready(state_dir: Path, state: State, node_ids: list[int], deadline: float) -> None:
    """Block until every node in ``node_ids`` accepts TCP and appears in a metadata response.

    Raises DevClusterError (with the log tail of a lagging node) if a node process exits or
    ``deadline`` (time.monotonic) passes. Stops nothing: the caller decides what to clean up.
    """
    waiting = [state.node(i) for i in node_ids]
    while not all(procs.port_answers(p) for n in waiting for p in n.listener_ports()):
        _check_alive(state_dir, waiting)
        _check_deadline(state_dir, waiting, deadline, "accept connections")
        time.sleep(0.2)
    admin = AdminClient(admin_config(state))
    want = set(node_ids)
    while True:
        _check_alive(state_dir, waiting)
        remaining = deadline - time.monotonic()
        try:
            seen = set(admin.list_topics(timeout=max(0.5, min(3.0, remaining))).brokers)
        except KafkaException as exc:
            _log.debug("metadata not ready yet: %s", exc)
            seen = set()
        if want <= seen:
            return
        lagging = [n for n in waiting if n.node_id not in seen]
        _check_deadline(state_dir, lagging, deadline, "join the cluster metadata")
        time.sleep(0.3)


def _check_deadline(state_dir: Path, nodes: list[NodeRecord], deadline: float, what: str) -> None:
    if time.monotonic() < deadline:
        return
    ids = [n.node_id for n in nodes]
    first = nodes[0].node_id if nodes else 1
    raise DevClusterError(f"Kafka node(s) {ids} did not {what} in time\n"
                          f"{log_tails(state_dir, first)}")
