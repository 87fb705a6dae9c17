"""Public launcher API: ``up``, ``down``, ``status``, ``kill_node``, ``start_node``.

All processes run on 127.0.0.1 with ports chosen at start, in their own session, and are
recorded in ``<state_dir>/state.json``. Calls on one state dir are serialised by a file lock.
Only recorded processes whose argv (and start time) still match are ever signalled.
"""

from __future__ import annotations

import shutil
import signal
import time
from dataclasses import replace
from pathlib import Path

from pipeline.dev import kafka_config as kc
from pipeline.dev import nodes, procs, registry
from pipeline.dev import s3 as s3mod
from pipeline.dev import tls as tlsmod
from pipeline.dev.libs import LOG4J2, ensure_kafka_libs, find_repo_root
from pipeline.dev.model import (
    ADMIN_USER,
    HOST,
    LAYOUT_FILE,
    STATE_FILE,
    BrokerInfo,
    ClusterInfo,
    DevClusterError,
    ProcRecord,
    SaslInfo,
    State,
    TlsInfo,
    load_state,
    save_state,
)

_LOCK = ".lock"
_WAIT_SIGNALS = (signal.SIGKILL, signal.SIGTERM, signal.SIGINT)


def _tls_info(state_dir: Path, state: State) -> TlsInfo | None:
    if not state.tls:
        return None
    ordered = sorted(state.nodes, key=lambda n: n.node_id)
    tdir = tlsmod.tls_dir(state_dir)
    return TlsInfo(
        sasl_ssl_bootstrap=",".join(f"{HOST}:{n.sasl_ssl_port}" for n in ordered),
        ssl_bootstrap=",".join(f"{HOST}:{n.ssl_port}" for n in ordered),
        ca_location=tdir / tlsmod.CA_CERT,
        ca_key=tdir / tlsmod.CA_KEY,
        admin_certificate=tdir / tlsmod.ADMIN_CERT,
        admin_key=tdir / tlsmod.ADMIN_KEY,
    )


def _info(state_dir: Path, state: State) -> ClusterInfo:
    ordered = sorted(state.nodes, key=lambda n: n.node_id)
    brokers = [BrokerInfo(n.node_id, n.proc.pid, n.port, procs.is_ours(n.proc)) for n in ordered]
    return ClusterInfo(
        bootstrap=",".join(f"{HOST}:{n.port}" for n in ordered),
        brokers=brokers,
        kafka_version=state.kafka_version,
        s3_endpoint=s3mod.endpoint(state.s3.port) if state.s3 is not None else None,
        sasl=SaslInfo(ADMIN_USER, state.sasl_password) if state.sasl_password else None,
        schema_registry_url=(registry.url(state.schema_registry.port)
                             if state.schema_registry is not None else None),
        state_dir=state_dir,
        tls=_tls_info(state_dir, state),
    )


def _healthy(state: State) -> bool:
    return all(procs.is_ours(n.proc) and procs.port_answers(n.port) for n in state.nodes)


def _stop_all(state: State, grace_s: float = 20.0) -> list[int]:
    """SIGTERM every recorded process that is still ours, SIGKILL stragglers after ``grace_s``."""
    recs: list[ProcRecord] = [n.proc for n in state.nodes]
    if state.s3 is not None:
        recs.append(state.s3.proc)
    if state.schema_registry is not None:
        recs.append(state.schema_registry.proc)
    signalled = [r for r in recs if procs.send_signal(r, signal.SIGTERM)]
    deadline = time.monotonic() + grace_s
    for rec in signalled:
        if not procs.wait_gone(rec, max(0.0, deadline - time.monotonic())):
            procs.stop(rec, grace_s=0.0)
    return [r.pid for r in signalled]


def _start_fresh(state_dir: Path, brokers: int, sasl: bool, tls: bool, s3: bool,
                 schema_registry: bool, timeout_s: float, repo_root: Path | None) -> State:
    root = find_repo_root(repo_root)
    libs, version = ensure_kafka_libs(root)
    app = registry.ensure_registry_app(root) if schema_registry else None
    deadline = time.monotonic() + timeout_s
    if tls:
        tlsmod.ensure_material(state_dir)
    layout = nodes.prepare_layout(state_dir, brokers, sasl, tls, version)
    records = nodes.write_configs(state_dir, layout)
    if layout.fresh:
        nodes.format_nodes(state_dir, libs, layout, timeout_s)
    state = State(version, layout.cluster_id, [], layout.sasl_password, tls=tls)
    try:
        for rec in records:
            argv = kc.server_argv(libs, root / LOG4J2, state_dir, rec.node_id)
            state = replace(state, nodes=[*state.nodes, nodes.spawn_node(state_dir, rec, argv)])
            save_state(state_dir, state)  # recorded at once, so `down` can always clean up
        if app is not None:  # starts while the brokers start; waited for below
            state = replace(state, schema_registry=registry.spawn(state_dir, *app))
            save_state(state_dir, state)
        if s3:
            state = replace(state, s3=s3mod.start(state_dir, deadline))
            save_state(state_dir, state)
        nodes.wait_ready(state_dir, state, state.node_ids(), deadline)
        if state.schema_registry is not None:
            registry.wait_ready(state_dir, state.schema_registry, deadline)
    except BaseException:
        _stop_all(state, grace_s=5.0)
        (state_dir / STATE_FILE).unlink(missing_ok=True)
        raise
    return state


def _add_missing(state_dir: Path, state: State, s3: bool, schema_registry: bool,
                 timeout_s: float, repo_root: Path | None) -> State:
    """Start the asked-for S3 server / schema registry of a running cluster if it has none (or
    its recorded one is gone)."""
    if s3 and (state.s3 is None or not procs.is_ours(state.s3.proc)):
        state = replace(state, s3=s3mod.start(state_dir, time.monotonic() + timeout_s))
        save_state(state_dir, state)
    reg = state.schema_registry
    if schema_registry and (reg is None or not procs.is_ours(reg.proc)):
        reg = registry.start(state_dir, find_repo_root(repo_root), timeout_s)
        state = replace(state, schema_registry=reg)
        save_state(state_dir, state)
    return state


def up(state_dir: Path, *, brokers: int = 1, sasl: bool = False, tls: bool = False,
       s3: bool = False, schema_registry: bool = False, timeout_s: float = 90,
       repo_root: Path | None = None) -> ClusterInfo:
    """Start (or find already running) a dev Kafka cluster and return how to reach it.

    ``brokers`` KRaft nodes, each a combined broker+controller (1: RF 1; 3: RF 3, min ISR 2),
    topic auto-creation off. ``sasl``: SCRAM-SHA-512 client listener, StandardAuthorizer, admin
    super-user with a random password (in ``ClusterInfo.sasl``), brokers forcing SASL
    re-authentication (see :mod:`pipeline.dev.kafka_config`). ``tls`` (implies ``sasl``): also a
    SASL_SSL and an SSL (client certificate required) listener, with a CA, broker keystore and
    ``CN=admin`` client certificate kept in ``<state_dir>/tls/`` (facts in ``ClusterInfo.tls``;
    see :mod:`pipeline.dev.tls`). ``s3``: also a moto S3 server.
    ``schema_registry``: also a Confluent-compatible schema registry (Apicurio, in-memory, see
    :mod:`pipeline.dev.registry`; URL in ``ClusterInfo.schema_registry_url``).
    Idempotent: a healthy cluster of the same shape in ``state_dir`` is returned untouched (an S3
    server / registry is added if asked for and missing); a different shape raises
    DevClusterError; a half-dead one is stopped and restarted on its data. Returns once every
    broker is in a metadata response (and the registry answers); otherwise stops what it started
    and raises DevClusterError with log tails. ``timeout_s`` excludes the one-time Maven
    downloads. ``repo_root`` locates ``infra/``.
    """
    if brokers < 1:
        raise DevClusterError(f"brokers must be >= 1, got {brokers}")
    sasl = sasl or tls
    state_dir = state_dir.resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    with procs.locked(state_dir / _LOCK):
        current = load_state(state_dir)
        if current is not None and _healthy(current):
            if (len(current.nodes) != brokers or (current.sasl_password is not None) != sasl
                    or current.tls != tls):
                raise DevClusterError(
                    f"{state_dir} already runs {len(current.nodes)} broker(s) with SASL "
                    f"{'on' if current.sasl_password else 'off'} and TLS "
                    f"{'on' if current.tls else 'off'}; run `down` first")
            current = _add_missing(state_dir, current, s3, schema_registry, timeout_s, repo_root)
            return _info(state_dir, current)
        if current is not None:
            _stop_all(current)
            (state_dir / STATE_FILE).unlink(missing_ok=True)
        return _info(state_dir, _start_fresh(state_dir, brokers, sasl, tls, s3,
                                             schema_registry, timeout_s, repo_root))


def down(state_dir: Path, *, purge: bool = False) -> list[int]:
    """Stop the processes recorded in ``state_dir`` (SIGTERM, SIGKILL after a grace period) that
    are still the ones we started; remove ``state.json``; return the pids that were signalled.
    ``purge`` also deletes node data/logs, the S3 and registry logs and the layout (next ``up``
    starts empty); the TLS material in ``tls/`` is kept (clients trust that CA).
    """
    state_dir = state_dir.resolve()
    if not state_dir.is_dir():
        return []
    with procs.locked(state_dir / _LOCK):
        state = load_state(state_dir)
        stopped = _stop_all(state) if state is not None else []
        (state_dir / STATE_FILE).unlink(missing_ok=True)
        if purge:
            for path in [*state_dir.glob("node-*"), state_dir / "s3",
                         state_dir / registry.LOG.parent]:
                shutil.rmtree(path, ignore_errors=True)
            (state_dir / LAYOUT_FILE).unlink(missing_ok=True)
    return stopped


def status(state_dir: Path) -> ClusterInfo | None:
    """The recorded cluster with per-broker liveness, or None if nothing is recorded."""
    state_dir = state_dir.resolve()
    state = load_state(state_dir)
    return None if state is None else _info(state_dir, state)


def _require_state(state_dir: Path) -> State:
    state = load_state(state_dir)
    if state is None:
        raise DevClusterError(f"no dev cluster recorded in {state_dir}")
    return state


def kill_node(state_dir: Path, node_id: int, sig: int = signal.SIGKILL,
              wait_s: float = 10.0) -> int:
    """Send ``sig`` to node ``node_id`` (fault injection) and return its pid. For SIGKILL,
    SIGTERM and SIGINT, wait up to ``wait_s`` until it has exited. Raises DevClusterError if
    the node is not running. Its state entry stays, so ``start_node`` can bring it back."""
    state_dir = state_dir.resolve()
    node = _require_state(state_dir).node(node_id)
    if not procs.send_signal(node.proc, sig):
        raise DevClusterError(f"node {node_id} (pid {node.proc.pid}) is not running")
    if sig in _WAIT_SIGNALS and not procs.wait_gone(node.proc, wait_s):
        raise DevClusterError(f"node {node_id} (pid {node.proc.pid}) still runs after {wait_s}s")
    return node.proc.pid


def start_node(state_dir: Path, node_id: int, wait_s: float = 60.0) -> int:
    """Restart a stopped node with its recorded command line (same config, ports and data),
    wait up to ``wait_s`` until it is back in the cluster metadata, and return its pid.
    A node that is still running is left alone. On failure the new process is stopped and
    DevClusterError is raised with its log tail."""
    state_dir = state_dir.resolve()
    with procs.locked(state_dir / _LOCK):
        state = _require_state(state_dir)
        node = state.node(node_id)
        if procs.is_ours(node.proc):
            return node.proc.pid
        for port in node.listener_ports():
            if not procs.port_is_free(port):
                raise DevClusterError(f"port {port} of node {node_id} is in use by someone else")
        new = nodes.spawn_node(state_dir, node, node.proc.argv)
        state = replace(state, nodes=[new if n.node_id == node_id else n for n in state.nodes])
        save_state(state_dir, state)
        try:
            nodes.wait_ready(state_dir, state, [node_id], time.monotonic() + wait_s)
        except BaseException:
            procs.stop(new.proc, grace_s=5.0)
            raise
        return new.proc.pid
