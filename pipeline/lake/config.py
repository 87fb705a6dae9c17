"""``[archiver]``: settings of ``trailpipe consume archiver`` (the lake writer).

Where the lake is and how its objects are written (``lake`` URL, ``s3_endpoint``,
``encryption``, ``kms_key_id``, ``storage_class``) lives in ``[storage]``; this section says how
the archiver reads and rolls. Unknown keys are rejected, like every config section.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ArchiverConfig(BaseModel):
    """How the archiver consumes the events topic and when it rolls a Parquet object (the
    topics it reads and writes are named in ``[topics]``: ``events``, ``deliveries``, ``health``).

    A flush (one object per Hive partition x Kafka partition buffered) happens when the buffer
    holds ``max_records`` records or ``max_bytes`` of consumed (Avro) bytes, or when its oldest
    record has waited ``max_age_ms`` (wall clock). Where the rolls fall does not change the
    exactly-once result (see :mod:`consumers.archiver.sink`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    group: str = "trailpipe-archiver"
    max_records: int = Field(default=100_000, ge=1,
                             description="buffered rows; ~1 KB of memory each, plus as much "
                             "again while a flush builds its objects")
    max_bytes: int = Field(default=128 * 1024 * 1024, ge=1024,
                           description="buffered Avro bytes; Parquet objects are ~10x smaller")
    max_age_ms: int = Field(default=60_000, ge=100)
    row_group_rows: int = Field(default=128 * 1024, ge=1024)
    zstd_level: int = Field(default=1, ge=1, le=22, description="1 measured both smaller "
                            "and faster than 3 on CloudTrail rows (consumers/archiver/parquet.py)")
    health_interval_ms: int = Field(
        default=10_000, ge=0, description="least gap between two health records of one state")
    owner_id: str | None = Field(
        default=None, description="names this writer in ownership records; default host-pid")
    sns_topic_arn: str | None = Field(
        default=None, description="also publish each delivery notice to this SNS topic, as "
        "CloudTrail notifies on each log file (best effort, after the Kafka notice)")
    sns_endpoint: str | None = Field(default=None, pattern=r"^https?://.+",
                                     description="SNS API endpoint; None: AWS")
