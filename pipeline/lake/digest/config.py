"""The ``[digest]`` config section: the signing key and how the digester closes periods."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from pipeline.lake.digest.period import period_problem


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
    period_ms: int = Field(
        default=3_600_000, description="each digest covers this much delivery time: whole "
        "minutes from 60000 (1 min) to 3600000 (1 h) dividing an hour evenly; shorter makes "
        "an object provable sooner. A change applies from the next digest; the chain goes on")
    close_grace_ms: int = Field(
        default=15 * 60_000, ge=0, description="a period's digest is written once wall-clock "
        "passes its end + this grace (late notices of a closed period go to the next one); "
        "an object is unprovable for up to period_ms + close_grace_ms")
    startup_settle_ms: int = Field(
        default=30_000, ge=0, description="after start, close no hour before this long unless "
        "notices were read and the backlog drained (time to join the group and catch up)")
    dedupe_lookback_hours: int = Field(
        default=48, ge=1, description="re-delivered notices already listed in a digest this "
        "recent are not listed again; each (re)start reads every digest of this span, one "
        "read each (2,880 at a 1-minute period): lower it with short periods")
    max_digests_per_tick: int = Field(default=100, ge=1, le=10_000)

    @field_validator("period_ms")
    @classmethod
    def _allowed_period(cls, value: int) -> int:
        problem = period_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    @field_validator("trusted_public_keys", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        # Environment variables carry lists as "a,b"; PEM text is passed via a file instead.
        if isinstance(value, str) and "-----BEGIN" not in value:
            return [t for t in value.split(",") if t]
        return [value] if isinstance(value, str) else value
