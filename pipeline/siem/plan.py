"""What a subscription grants, computed without Kafka: topic roles to topic names, the
:class:`Subscription` record for a request, and its exact ACL bindings.

A subscriber gets exactly ``len(topics) + 1`` bindings: ALLOW READ on each granted topic
(LITERAL, so no other topic matches; READ implies DESCRIBE) and ALLOW READ on the GROUP
prefix ``<name>.`` (PREFIXED). No WRITE, no CLUSTER, no prefixed topic grant.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from confluent_kafka.admin import (
    AclBinding,
    AclOperation,
    AclPermissionType,
    ResourcePatternType,
    ResourceType,
)

from pipeline.siem.model import NAME_PATTERN, Subscription, View, ViewFilter, ViewRedact, view_topic
from pipeline.topics_config import TopicsConfig

Auth = Literal["scram", "mtls"]
Format = Literal["json", "avro"]
ROLES: tuple[str, ...] = ("events", "alerts")
_ROLE_FIELDS: dict[Format, dict[str, str]] = {
    "json": {"events": "events_json", "alerts": "alerts_json"},
    "avro": {"events": "events", "alerts": "alerts"},
}
HASH_KEY_BYTES = 32


class PlanError(ValueError):
    """The request cannot become a subscription (bad name, role or combination): a usage
    error, reported with exit code 2."""


@dataclass(frozen=True, slots=True)
class SubscribeRequest:
    """What ``siem subscribe`` was asked for; ``roles`` in the order given, no duplicates."""

    name: str
    roles: tuple[str, ...]
    auth: Auth = "scram"
    format: Format = "json"
    filter: ViewFilter = field(default_factory=ViewFilter)
    redact: ViewRedact = field(default_factory=ViewRedact)

    @property
    def wants_view(self) -> bool:
        return not (self.filter.is_empty() and self.redact.is_empty())


def check_name(name: str) -> str:
    """``name`` when it is a valid subscription name, else PlanError saying what is allowed."""
    if re.fullmatch(NAME_PATTERN, name) is None:
        raise PlanError(f"subscription name {name!r}: use 1-63 of a-z 0-9 _ - (starting with a "
                        "letter or digit); it becomes User:<name>, the group prefix <name>. "
                        "and part of a topic name")
    return name


def parse_roles(text: str) -> tuple[str, ...]:
    """``"events,alerts"`` -> ``("events", "alerts")``; PlanError on an unknown or no role."""
    roles = tuple(dict.fromkeys(r.strip() for r in text.split(",") if r.strip()))
    unknown = [r for r in roles if r not in ROLES]
    if unknown or not roles:
        raise PlanError(f"--topics: roles are {', '.join(ROLES)} (comma-separated); "
                        f"got {text!r}")
    return roles


def topic_name(topics: TopicsConfig, role: str, fmt: Format) -> str:
    """The topic a role means in a format: json events -> ``[topics] events_json``, ..."""
    return str(getattr(topics, _ROLE_FIELDS[fmt][role]))


def build_subscription(req: SubscribeRequest, topics: TopicsConfig, *,
                       existing: Subscription | None, now_ms: int,
                       new_key: Callable[[], str] | None = None) -> Subscription:
    """The record for ``req``. With a view (any filter or redact option) the events grant is
    the view topic; a new hashing key is drawn only when ``existing`` has none, and
    ``created_ms`` is kept from ``existing``, so re-subscribing alike writes the same record.
    Raises PlanError when a view is asked for in avro format."""
    check_name(req.name)
    view = None
    if req.wants_view:
        if req.format != "json":
            raise PlanError("views (filter/redact options) are served as CloudTrail JSON: "
                            "use --format json")
        view = _view(req, existing, new_key or _new_hash_key)
    granted = [view.topic if view is not None and role == "events"
               else topic_name(topics, role, req.format) for role in req.roles]
    created_ms = existing.created_ms if existing is not None else now_ms
    return Subscription(name=req.name, topics=granted, auth=req.auth, format=req.format,
                        view=view, created_ms=created_ms)


def _view(req: SubscribeRequest, existing: Subscription | None,
          new_key: Callable[[], str]) -> View:
    key = None
    if req.redact.hash_source_ip:
        old = existing.view if existing is not None else None
        key = old.hash_key_hex if old is not None and old.hash_key_hex else new_key()
    return View(filter=req.filter, redact=req.redact, topic=view_topic(req.name),
                hash_key_hex=key)


def _new_hash_key() -> str:
    return secrets.token_hex(HASH_KEY_BYTES)


def acl_bindings(name: str, topics: list[str]) -> set[AclBinding]:
    """Exactly the bindings subscription ``name`` reading ``topics`` must have."""
    principal = f"User:{name}"
    out = {AclBinding(ResourceType.TOPIC, topic, ResourcePatternType.LITERAL, principal, "*",
                      AclOperation.READ, AclPermissionType.ALLOW) for topic in topics}
    out.add(AclBinding(ResourceType.GROUP, f"{name}.", ResourcePatternType.PREFIXED, principal,
                       "*", AclOperation.READ, AclPermissionType.ALLOW))
    return out


def describe_view(sub: Subscription) -> str:
    """One line summarising a subscription's view (no secret): ``-`` when it has none."""
    if sub.view is None:
        return "-"
    parts = [f"{k}={v}" for k, v in sub.view.filter.model_dump(exclude_defaults=True).items()]
    if sub.view.redact.remove:
        parts.append(f"remove={','.join(sub.view.redact.remove)}")
    if sub.view.redact.hash_source_ip:
        parts.append("hash_source_ip")
    return f"{sub.view.topic} ({'; '.join(parts) or 'all records'})"
