"""What a SIEM subscription is: its name (principal and consumer-group prefix), the topics it
may read, how it authenticates, and its optional view (filter + redaction).

A subscription is stored as one JSON record keyed by its name on the compacted
``[topics] siem_subscriptions`` topic (a tombstone once revoked); ``trailpipe siem`` writes
it, the mirror reads it to serve views. The view's hashing key is a secret of the
subscription: it lives only in that record (readable by trailpipe's own principal, never
granted to a SIEM) and is never logged.
"""

from __future__ import annotations

from typing import Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, model_validator

NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
"""Subscription names: they become ``User:<name>``, the group prefix ``<name>.`` and part of
a topic name, so they are kept to characters valid in all three."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ViewFilter(_Strict):
    """Which records a view holds: every condition given must hold (an empty list: any).
    ``accounts``/``regions`` are the record's key (``<accountId>|<region>``, the partition
    key); ``read_only``: only readOnly true (True) or only not true (False); ``errors``: only
    records with an errorCode (True) or only without (False)."""

    accounts: list[str] = Field(default_factory=list)
    regions: list[str] = Field(default_factory=list)
    event_sources: list[str] = Field(default_factory=list)
    event_names: list[str] = Field(default_factory=list)
    read_only: bool | None = None
    errors: bool | None = None

    def is_empty(self) -> bool:
        return self == ViewFilter()


class ViewRedact(_Strict):
    """What a view hides. ``remove``: dotted paths deleted from every record (a path into a
    JSON member such as ``requestParameters.password`` reaches inside it; a missing path is
    fine). ``hash_source_ip``: ``sourceIPAddress`` replaced by ``hmac-sha256:<hex>`` under the
    subscription's key (same IP, same hash, within one subscription only)."""

    remove: list[str] = Field(default_factory=list)
    hash_source_ip: bool = False

    def is_empty(self) -> bool:
        return self == ViewRedact()


class View(_Strict):
    filter: ViewFilter = Field(default_factory=ViewFilter)
    redact: ViewRedact = Field(default_factory=ViewRedact)
    topic: str = Field(min_length=1, description="siem.<name>.events.json.v1")
    hash_key_hex: str | None = Field(default=None, pattern=r"^(?:[0-9a-f]{2}){16,}$",
                                     description="HMAC key (secret, lower-case hex, at least "
                                     "128 bits) when "
                                     "redact.hash_source_ip")

    @model_validator(mode="after")
    def _key_when_hashing(self) -> View:
        if self.redact.hash_source_ip and not self.hash_key_hex:
            raise ValueError("redact.hash_source_ip needs hash_key_hex")
        return self


class Subscription(_Strict):
    """One SIEM's grant. ``topics`` are the exact topic names it may read (LITERAL ACLs);
    its consumer groups must start with ``<name>.`` (one PREFIXED ACL)."""

    name: str = Field(pattern=NAME_PATTERN)
    topics: list[str] = Field(min_length=1)
    auth: Literal["scram", "mtls"]
    format: Literal["json", "avro"] = "json"
    view: View | None = None
    created_ms: int = Field(ge=0)

    @property
    def principal(self) -> str:
        return f"User:{self.name}"

    @property
    def group_prefix(self) -> str:
        return f"{self.name}."

    def to_bytes(self) -> bytes:
        """The record value on the subscriptions topic."""
        return orjson.dumps(self.model_dump(mode="json"))

    @classmethod
    def from_bytes(cls, value: bytes) -> Subscription:
        """Parse a record value (raises pydantic.ValidationError or orjson.JSONDecodeError)."""
        return cls.model_validate(orjson.loads(value))


def view_topic(name: str) -> str:
    """The topic of subscription ``name``'s view."""
    return f"siem.{name}.events.json.v1"
