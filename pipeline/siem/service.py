"""``trailpipe siem subscribe|rotate|revoke|list``: the steps, in order, over trailpipe's own
(super-user) principal.

subscribe: read the registry -> build the record (:mod:`pipeline.siem.plan`) -> create the
view topic (or delete one no longer wanted) -> the credential (kept when its files exist) ->
the CA copy and client configs -> exactly the wanted ACL bindings -> the record. Each step is
idempotent, so a re-run (also after a failure half-way) converges to the same state.

Raises PlanError (usage: exit 2), CertificateError (the CA files: exit 2), ValueError (a topic
the grant needs is missing: exit 1) and KafkaException / DeliveryError / Unavailable (the
cluster: exit 1).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka.admin import AclBinding, AdminClient

from pipeline.certs import CertificateAuthority
from pipeline.config import Config
from pipeline.health.lag import PartitionLag
from pipeline.kafka import base_client_config, producer_config
from pipeline.logs import get_logger
from pipeline.siem import admin as kafka_admin
from pipeline.siem.clients import CERT_FILE, KEY_FILE, PASSWORD_FILE, ClientSpec
from pipeline.siem.credentials import (
    Credential,
    client_certificate,
    drop_files,
    remove_dir,
    scram_password,
    subscription_dir,
    write_client_files,
)
from pipeline.siem.model import Subscription, view_topic
from pipeline.siem.plan import Auth, PlanError, SubscribeRequest, acl_bindings, build_subscription
from pipeline.siem.registry import delete_subscription, load_subscriptions, put_subscription
from pipeline.topics import ensure_topic_like

log = get_logger("pipeline.siem")


@dataclass(frozen=True, slots=True)
class Endpoints:
    """Where subscribers connect (printed in their configs) and the CA files. ``scram_tls``:
    the SCRAM bootstrap is a SASL_SSL listener (False: SASL_PLAINTEXT, a dev cluster without
    TLS)."""

    scram_bootstrap: str | None
    scram_tls: bool
    mtls_bootstrap: str | None
    ca_cert: Path
    ca_key: Path


def resolve_endpoints(cfg: Config) -> Endpoints:
    """``[siem]`` settings, each defaulting to the local dev cluster's (``dev.state_dir``)."""
    s = cfg.siem
    tls_dir = cfg.dev.state_dir / "tls"
    scram, mtls, scram_tls = s.bootstrap_scram, s.bootstrap_mtls, True
    if scram is None or mtls is None:
        from pipeline.dev import status

        info = status(cfg.dev.state_dir)
        if info is not None and info.tls is not None:
            scram = scram or info.tls.sasl_ssl_bootstrap
            mtls = mtls or info.tls.ssl_bootstrap
        elif info is not None and info.sasl is not None and scram is None:
            scram, scram_tls = info.bootstrap, False
    return Endpoints(scram, scram_tls, mtls, s.ca_cert or tls_dir / "ca.pem",
                     s.ca_key or tls_dir / "ca.key")


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a command did. ``files``: written (or, for revoke, the directory removed);
    ``bindings``: the principal's bindings now; ``removed``: bindings deleted; ``bootstrap``:
    where the subscriber connects."""

    name: str
    sub: Subscription | None
    files: list[Path] = field(default_factory=list)
    bindings: set[AclBinding] = field(default_factory=set)
    removed: set[AclBinding] = field(default_factory=set)
    new_credential: bool = False
    notes: list[str] = field(default_factory=list)
    bootstrap: str = ""


class Siem:
    """The commands, over the cluster ``bootstrap`` as configured in ``cfg.kafka``."""

    def __init__(self, cfg: Config, bootstrap: str, endpoints: Endpoints) -> None:
        self.cfg, self.endpoints = cfg, endpoints
        self.base: dict[str, Any] = base_client_config(cfg.kafka, bootstrap)
        self.admin = AdminClient(self.base)
        self.topic = cfg.topics.siem_subscriptions

    def subscriptions(self) -> dict[str, Subscription]:
        return load_subscriptions(self.base, self.topic)

    def subscribe(self, req: SubscribeRequest, now_ms: int | None = None) -> Outcome:
        """Create or update subscription ``req.name`` (see the module docstring)."""
        existing = self.subscriptions().get(req.name)
        sub = build_subscription(req, self.cfg.topics, existing=existing,
                                 now_ms=int(time.time() * 1000) if now_ms is None else now_ms)
        bootstrap, _ = self._bootstrap(sub.auth)  # fail before changing anything
        notes = self._view(sub, existing)
        if existing is not None and existing.auth == "mtls" and sub.auth == "scram":
            notes.append("switched from mtls: the old client certificate still authenticates "
                         "as this principal until it expires (the dev CA publishes no CRL)")
        files, cred = self._credential(sub, rotate=False)
        wanted = acl_bindings(sub.name, sub.topics)
        removed = kafka_admin.sync_acls(self.admin, sub.name, wanted)
        if sub != existing:  # an unchanged record is not rewritten (the mirror reloads on news)
            put_subscription(producer_config(self.base, {}), self.topic, sub)
        log.info("siem_subscribed", name=sub.name, auth=sub.auth, topics=sub.topics,
                 view=sub.view is not None, new_credential=cred.new, removed_bindings=len(removed))
        return Outcome(sub.name, sub, files, wanted, removed, cred.new, notes, bootstrap)

    def rotate(self, name: str) -> Outcome:
        """A new password or key/certificate for an existing subscription."""
        sub = self.subscriptions().get(name)
        if sub is None:
            raise PlanError(f"no subscription {name!r} (see `trailpipe siem list`)")
        files, _ = self._credential(sub, rotate=True)
        log.info("siem_rotated", name=name, auth=sub.auth)
        return Outcome(name, sub, files, new_credential=True)

    def revoke(self, name: str) -> Outcome:
        """Remove everything of ``name`` that exists: ACL bindings, SCRAM credential, record
        (tombstone), view topic, secrets directory."""
        sub = self.subscriptions().get(name)
        removed = kafka_admin.delete_acls(self.admin, name)
        notes = []
        if kafka_admin.delete_scram(self.admin, name):
            notes.append("SCRAM credential deleted")
        if sub is not None:
            delete_subscription(producer_config(self.base, {}), self.topic, name)
            notes.append("subscription record deleted (tombstone)")
        if kafka_admin.delete_topic(self.admin, view_topic(name)):
            notes.append(f"view topic {view_topic(name)} deleted")
        files = [self.cfg.siem.secrets_dir / name] if remove_dir(self.cfg.siem.secrets_dir,
                                                                  name) else []
        log.info("siem_revoked", name=name, bindings=len(removed), had_record=sub is not None)
        return Outcome(name, sub, files, set(), removed, notes=notes)

    def lags(self) -> list[tuple[Subscription, list[PartitionLag]]]:
        """Every subscription with the lag of each of its groups' committed partitions."""
        return [(sub, kafka_admin.group_lags(self.admin, self.base, name))
                for name, sub in sorted(self.subscriptions().items())]

    def _bootstrap(self, auth: Auth) -> tuple[str, str]:
        """(bootstrap, security.protocol) subscribers of ``auth`` use; PlanError when unknown."""
        e = self.endpoints
        if auth == "scram" and e.scram_bootstrap is not None:
            return e.scram_bootstrap, "SASL_SSL" if e.scram_tls else "SASL_PLAINTEXT"
        if auth == "mtls" and e.mtls_bootstrap is not None:
            return e.mtls_bootstrap, "SSL"
        setting = "bootstrap_scram" if auth == "scram" else "bootstrap_mtls"
        raise PlanError(f"no {auth} listener known: set [siem] {setting}, or start the dev "
                        "cluster with `trailpipe dev up --tls`")

    def _view(self, sub: Subscription, existing: Subscription | None) -> list[str]:
        if sub.view is not None:
            created = ensure_topic_like(self.admin, self.cfg.topics.events,
                                        sub.view.topic)
            return [f"view topic {sub.view.topic} created"] if created else []
        old = existing.view if existing is not None else None
        if old is not None and kafka_admin.delete_topic(self.admin, old.topic):
            return [f"view topic {old.topic} deleted (no view asked for)"]
        return []

    def _credential(self, sub: Subscription, *, rotate: bool) -> tuple[list[Path], Credential]:
        """Keep or make ``sub``'s credential, drop the other auth's, write the client files."""
        bootstrap, protocol = self._bootstrap(sub.auth)
        directory = subscription_dir(self.cfg.siem.secrets_dir, sub.name)
        if sub.auth == "scram":
            cred = scram_password(directory, rotate=rotate)
            if cred.new or not kafka_admin.scram_exists(self.admin, sub.name):
                kafka_admin.set_scram(self.admin, sub.name, cred.secret)
            drop_files(directory, (KEY_FILE, CERT_FILE))
        else:
            ca = CertificateAuthority.load(self.endpoints.ca_cert, self.endpoints.ca_key)
            cred = client_certificate(directory, sub.name, ca, self.cfg.siem.client_cert_days,
                                      rotate=rotate)
            kafka_admin.delete_scram(self.admin, sub.name)
            drop_files(directory, (PASSWORD_FILE,))
        tls = protocol != "SASL_PLAINTEXT"
        ca_pem = self._ca_pem() if tls else None
        spec = ClientSpec(sub.name, sub.auth, protocol, bootstrap, tuple(sub.topics), directory,
                          cred.secret, cred.cert_pem)
        return write_client_files(spec, ca_pem), cred

    def _ca_pem(self) -> bytes:
        try:
            return self.endpoints.ca_cert.read_bytes()
        except OSError as exc:
            raise PlanError(f"cannot read the CA certificate {self.endpoints.ca_cert} that "
                            f"clients must trust: set [siem] ca_cert ({exc.strerror})") from exc
