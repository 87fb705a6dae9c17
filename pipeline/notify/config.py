"""``[notifier]``: routes from alerts to destinations.

Each ``[[notifier.routes]]`` table names a route, says which alerts it takes (``match``), where
they go (``type`` and that destination's settings) and how hard to try (``retry``). Secrets are
``SecretStr`` (masked when the config is logged). A Standard Webhooks secret is ``whsec_`` +
base64; a GitHub-style secret is any string.
"""

from __future__ import annotations

import base64
import binascii
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from pipeline.rules.model import SEVERITIES

Severity = Literal["info", "low", "medium", "high", "critical"]
Kind = Literal["opening", "update"]
MAX_RETRY_BUDGET_MS = 120_000
"""A flush blocks polling, so a route's budget must stay well under max.poll.interval.ms."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _openings() -> list[Kind]:
    return ["opening"]


class Match(_Strict):
    """Which alerts a route takes: all given conditions must hold. ``tags``: any of them;
    ``accounts``: the alert's account is one of them (empty: any); ``kinds``: ``opening``
    (update 0, the one that pages) and/or ``update`` (later updates of the same alert)."""

    min_severity: Severity = "info"
    tags: list[str] = Field(default_factory=list)
    accounts: list[str] = Field(default_factory=list)
    kinds: list[Kind] = Field(default_factory=_openings, min_length=1)


class Retry(_Strict):
    """Exponential backoff with full jitter: before retry ``n`` (1-based) sleep a uniform
    random time in ``[0, min(max_backoff_ms, initial_backoff_ms * 2**(n-1)))``, or at least a
    429/503's ``Retry-After``. A route gives up once ``budget_ms`` has passed in one flush; its
    undelivered alerts then go to the dead-letter topic."""

    budget_ms: int = Field(default=30_000, ge=0, le=MAX_RETRY_BUDGET_MS)
    initial_backoff_ms: int = Field(default=200, ge=1)
    max_backoff_ms: int = Field(default=10_000, ge=1)
    timeout_s: float = Field(default=10.0, gt=0, le=60, description="per attempt")


class _Route(_Strict):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    match: Match = Field(default_factory=Match)
    retry: Retry = Field(default_factory=Retry)


class WebhookRoute(_Route):
    """POST the alert as JSON. ``signing``: ``standard`` (``webhook-id``/``-timestamp``/
    ``-signature``, secret ``whsec_<base64>``), ``github`` (``X-Hub-Signature-256``) or
    ``none``. ``format = "slack"`` posts a Slack-compatible ``{"text": ...}`` body, at most
    ``max_per_s`` per second (default 1, Slack's incoming-webhook limit)."""

    type: Literal["webhook"]
    url: str = Field(pattern=r"^https?://.+")
    signing: Literal["standard", "github", "none"] = "standard"
    secret: SecretStr | None = None
    format: Literal["json", "slack"] = "json"
    max_per_s: float | None = Field(default=None, gt=0)

    @field_validator("secret")
    @classmethod
    def _standard_secret(cls, secret: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if secret is not None and info.data.get("signing") == "standard":
            standard_key(secret)
        return secret

    @model_validator(mode="after")
    def _secret_for_signing(self) -> WebhookRoute:
        if self.signing != "none" and self.secret is None:
            raise ValueError(f"signing = {self.signing!r} needs a secret")
        return self

    def rate_per_s(self) -> float | None:
        return self.max_per_s if self.max_per_s is not None else (
            1.0 if self.format == "slack" else None)


class SnsRoute(_Route):
    """Publish the alert JSON to an SNS topic (a ``.fifo`` topic gets the idempotency key as
    ``MessageDeduplicationId`` and the alert id as ``MessageGroupId``)."""

    type: Literal["sns"]
    topic_arn: str = Field(pattern=r"^arn:[^:]+:sns:[^:]*:[^:]*:.+")
    endpoint_url: str | None = Field(default=None, pattern=r"^https?://.+")
    region: str | None = None


class SyslogRoute(_Route):
    """RFC 5424 messages over ``udp`` (RFC 5426, one datagram each: no delivery guarantee),
    ``tcp`` (RFC 6587 octet counting) or ``tls`` (RFC 5425; ``ca_file`` to trust a private
    CA). ``format``: the alert as compact JSON, or a CEF line."""

    type: Literal["syslog"]
    host: str = Field(min_length=1)
    port: int = Field(ge=1, le=65535)
    protocol: Literal["udp", "tcp", "tls"] = "tcp"
    format: Literal["json", "cef"] = "cef"
    facility: int = Field(default=13, ge=0, le=23, description="13: log audit")
    app_name: str = Field(default="trailpipe", pattern=r"^[!-~]{1,48}$")
    ca_file: Path | None = None
    server_name: str | None = Field(default=None, description="TLS: default host")

    @model_validator(mode="after")
    def _tls_settings(self) -> SyslogRoute:
        if self.protocol != "tls" and (self.ca_file or self.server_name):
            raise ValueError("ca_file and server_name are for protocol = \"tls\"")
        return self


class KafkaRoute(_Route):
    """Produce the alert as JSON (UTF-8) to ``topic``, keyed by the idempotency key."""

    type: Literal["kafka"]
    topic: str = Field(min_length=1)


Route = Annotated[WebhookRoute | SnsRoute | SyslogRoute | KafkaRoute, Field(discriminator="type")]


class NotifierConfig(_Strict):
    """The notifier daemon's settings: its consumer group and its routes (names unique)."""

    group: str = Field(default="trailpipe-notifier", min_length=1)
    routes: list[Route] = Field(default_factory=list)

    @model_validator(mode="after")
    def _names_unique(self) -> NotifierConfig:
        names = [r.name for r in self.routes]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"route names must be unique: {', '.join(dupes)}")
        return self


def standard_key(secret: SecretStr) -> bytes:
    """The HMAC key of a Standard Webhooks secret (``whsec_`` + base64). ValueError if not."""
    text = secret.get_secret_value()
    if not text.startswith("whsec_"):
        raise ValueError("a Standard Webhooks secret starts with whsec_ (then base64)")
    try:
        key = base64.b64decode(text.removeprefix("whsec_"), validate=True)
    except binascii.Error:
        raise ValueError("the Standard Webhooks secret after whsec_ is not base64") from None
    if not 24 <= len(key) <= 64:
        raise ValueError("a Standard Webhooks secret is 24 to 64 bytes (base64-decoded)")
    return key


SEVERITY_RANK = {s: i for i, s in enumerate(SEVERITIES)}
