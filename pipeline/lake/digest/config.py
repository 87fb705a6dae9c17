"""The ``[digest]`` config section: the signing key and how the digester closes hours."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator


class DigestConfig(BaseModel):
    """Integrity digests (``trailpipe lake digester`` writes them, ``lake validate`` checks).

    Keys are PEM text or paths of PEM files (``trailpipe lake keygen --out PATH``). The
    digester reads the ``[topics]`` ``deliveries`` topic.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    private_key: SecretStr | None = Field(
        default=None, description="Ed25519 private key (PEM text or file path); the digester "
        "needs it, and validate trusts its public half")
    trusted_public_keys: list[str] = Field(
        default_factory=list, description="more public keys validate trusts (PEM text or "
        "paths), e.g. the keys that signed older digests before a rotation")
    group: str = "trailpipe-digester"
    close_grace_ms: int = Field(
        default=15 * 60_000, ge=0, description="an hour's digest is written once wall-clock "
        "passes hour end + this grace (late notices of a closed hour go to the next one)")
    startup_settle_ms: int = Field(
        default=30_000, ge=0, description="after start, close no hour before this long unless "
        "notices were read and the backlog drained (time to join the group and catch up)")
    dedupe_lookback_hours: int = Field(
        default=48, ge=1, description="re-delivered notices already listed in a digest this "
        "recent are not listed again")
    max_digests_per_tick: int = Field(default=100, ge=1, le=10_000)

    @field_validator("trusted_public_keys", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        # Environment variables carry lists as "a,b"; PEM text is passed via a file instead.
        if isinstance(value, str) and "-----BEGIN" not in value:
            return [t for t in value.split(",") if t]
        return [value] if isinstance(value, str) else value
