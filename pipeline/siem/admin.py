"""The cluster side of a subscription, through an AdminClient of trailpipe's own principal:
ACL bindings, the SCRAM credential, the view topic, and the lag of the subscriber's groups.

Every call waits for the broker's answer and raises KafkaException when the cluster refuses or
does not answer within ``TIMEOUT_S`` (the CLI exits 1 with the message).
"""

from __future__ import annotations

from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialDeletion,
    UserScramCredentialUpsertion,
)

from pipeline.health.lag import PROBE_GROUP, LagProbe, PartitionLag

TIMEOUT_S = 30.0
SCRAM_ITERATIONS = 8192


def principal_bindings(admin: AdminClient, name: str) -> set[AclBinding]:
    """Every ACL binding of ``User:<name>``, on any resource."""
    # None name / host: any (the stubs type them as str only)
    flt = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY,  # type: ignore[arg-type]
                           f"User:{name}", None,  # type: ignore[arg-type]
                           AclOperation.ANY, AclPermissionType.ANY)
    return set(admin.describe_acls(flt, request_timeout=TIMEOUT_S).result(timeout=TIMEOUT_S))


def sync_acls(admin: AdminClient, name: str, wanted: set[AclBinding]) -> set[AclBinding]:
    """Make ``wanted`` exactly the bindings of ``User:<name>``: create them (idempotent in
    Kafka), then delete any other binding of the principal. Returns the deleted ones."""
    for fut in admin.create_acls(list(wanted), request_timeout=TIMEOUT_S).values():
        fut.result(timeout=TIMEOUT_S)
    extra = principal_bindings(admin, name) - wanted
    _delete(admin, extra)
    return extra


def delete_acls(admin: AdminClient, name: str) -> set[AclBinding]:
    """Delete every binding of ``User:<name>``; returns them."""
    found = principal_bindings(admin, name)
    _delete(admin, found)
    return found


def _delete(admin: AdminClient, bindings: set[AclBinding]) -> None:
    if not bindings:
        return
    filters = [AclBindingFilter(b.restype, b.name, b.resource_pattern_type, b.principal, b.host,
                                b.operation, b.permission_type) for b in bindings]
    for fut in admin.delete_acls(filters, request_timeout=TIMEOUT_S).values():
        fut.result(timeout=TIMEOUT_S)


def scram_exists(admin: AdminClient, name: str) -> bool:
    """Whether ``name`` has a SCRAM-SHA-512 credential."""
    futures: Any = admin.describe_user_scram_credentials([name], request_timeout=TIMEOUT_S)
    try:
        desc = futures[name].result(timeout=TIMEOUT_S)
    except KafkaException as exc:
        if exc.args[0].name() == "RESOURCE_NOT_FOUND":
            return False
        raise
    return any(i.mechanism == ScramMechanism.SCRAM_SHA_512 for i in desc.scram_credential_infos)


def set_scram(admin: AdminClient, name: str, password: str) -> None:
    """Create or replace ``name``'s SCRAM-SHA-512 credential (the broker stores a salted hash;
    a replaced password fails from the next authentication)."""
    info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, SCRAM_ITERATIONS)
    upsert = UserScramCredentialUpsertion(name, info, password.encode())
    admin.alter_user_scram_credentials([upsert], request_timeout=TIMEOUT_S)[name].result(
        timeout=TIMEOUT_S)


def delete_scram(admin: AdminClient, name: str) -> bool:
    """Delete ``name``'s SCRAM-SHA-512 credential; False when it had none."""
    if not scram_exists(admin, name):
        return False
    deletion = UserScramCredentialDeletion(name, ScramMechanism.SCRAM_SHA_512)
    admin.alter_user_scram_credentials([deletion], request_timeout=TIMEOUT_S)[name].result(
        timeout=TIMEOUT_S)
    return True


def topic_exists(admin: AdminClient, topic: str) -> bool:
    meta = admin.list_topics(timeout=TIMEOUT_S).topics.get(topic)
    return meta is not None and meta.error is None


def delete_topic(admin: AdminClient, topic: str) -> bool:
    """Delete ``topic``; False when it did not exist."""
    if not topic_exists(admin, topic):
        return False
    try:
        admin.delete_topics([topic], operation_timeout=TIMEOUT_S)[topic].result(
            timeout=TIMEOUT_S)
    except KafkaException as exc:
        if exc.args[0].name() != "UNKNOWN_TOPIC_OR_PART":
            raise
        return False
    return True


def group_lags(admin: AdminClient, base_conf: dict[str, Any], name: str) -> list[PartitionLag]:
    """Committed vs end offsets of every partition committed by a group whose id starts with
    ``<name>.`` (the subscriber's own groups)."""
    probe = LagProbe(admin, {**base_conf, "group.id": PROBE_GROUP}, groups=(), prefix=f"{name}.",
                     timeout_s=TIMEOUT_S)
    try:
        return probe.measure(0)
    finally:
        probe.close()
