"""The ``[run]`` config section: which daemons ``trailpipe run`` supervises and how it restarts
and stops them."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

DEFAULT_DAEMONS = ("archiver", "digester", "alerter", "notifier", "aggregator", "mirror")
"""What ``trailpipe run`` starts unless ``[run] daemons`` says otherwise (the forwarders need a
receiver: opt-in). The digester needs ``[digest] private_key``; a demo run makes a demo key."""


class RunConfig(BaseModel):
    """``trailpipe run``: one child process per daemon (``trailpipe consume NAME``), plus the
    traffic generator in demo mode. A child that exits while the supervisor is not stopping is
    restarted after ``restart_backoff_ms`` x 2^(n-1) for its n-th consecutive restart, at most
    ``restart_backoff_max_ms``; a child that stayed up ``stable_after_ms`` starts again at n=1.
    On stop every child gets SIGTERM (it flushes and commits) and SIGKILL after
    ``stop_timeout_ms``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    daemons: list[str] = Field(
        default_factory=lambda: list(DEFAULT_DAEMONS),
        description="registered daemon names (`trailpipe consume --help`), one child each; "
        "also a comma-separated string (TRAILPIPE_RUN__DAEMONS)")
    generator: bool = Field(default=True, description="also run the traffic generator (demo "
                            "mode); false in production, where only consumers run")
    restart_backoff_ms: int = Field(default=1_000, ge=1, description="delay before the first "
                                    "restart of a crashed child; doubles per consecutive crash")
    restart_backoff_max_ms: int = Field(default=60_000, ge=1,
                                        description="cap of the restart delay")
    stable_after_ms: int = Field(default=60_000, ge=1, description="a child up this long "
                                 "counts as healthy again: its next crash waits the base delay")
    stop_timeout_ms: int = Field(default=30_000, ge=1, description="how long a child may take "
                                 "to flush after SIGTERM before it is SIGKILLed; keep it above "
                                 "[runner] shutdown_grace_s")

    @field_validator("daemons", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        return [n.strip() for n in value.split(",") if n.strip()] if isinstance(value, str) \
            else value

    @field_validator("daemons")
    @classmethod
    def _registered_once(cls, names: list[str]) -> list[str]:
        # Imported here: pipeline.daemon imports pipeline.config, which imports this module.
        from pipeline.daemon import DAEMONS

        unknown = [n for n in names if n not in DAEMONS]
        if unknown:
            raise ValueError(f"unknown daemon(s) {unknown}; known: {sorted(DAEMONS)}")
        if len(set(names)) != len(names):
            raise ValueError("a daemon is listed twice (one child per daemon)")
        return names

    @model_validator(mode="after")
    def _cap_above_base(self) -> RunConfig:
        if self.restart_backoff_max_ms < self.restart_backoff_ms:
            raise ValueError("restart_backoff_max_ms must be at least restart_backoff_ms")
        return self
