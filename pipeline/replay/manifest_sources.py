"""What a replay read, as its manifest records it: topic partitions, lake objects, and the
counts per source. Models of :mod:`pipeline.replay.manifest` (frozen, extra members refused).

Manifests written before the lake path existed have no ``counts_by_source`` and no
``duplicates_dropped``: those default to ``{}`` and 0, so such a manifest still validates and
verifies (its stored bytes are checked as stored, never re-serialised).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

KAFKA = "kafka"
LAKE = "lake"


class Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PartitionRange(Frozen):
    """One topic partition read: offsets ``[start_offset, end_offset)``, and the high
    watermark captured at the start of the run (the cap of the read)."""

    topic: StrictStr
    partition: StrictInt = Field(ge=0)
    start_offset: StrictInt = Field(ge=0)
    end_offset: StrictInt = Field(ge=0)
    high_watermark: StrictInt = Field(ge=0)


class LakeObject(Frozen):
    """One lake object read: its key (relative to the lake), its size and the SHA-256 of its
    bytes as read, and whether a digest lists it with that SHA-256
    (:mod:`pipeline.replay.lake_digests`: signed by a trusted key when keys were given)."""

    key: StrictStr
    size_bytes: StrictInt = Field(ge=0)
    sha256: StrictStr
    digest_covered: StrictBool


class SourceCounts(Frozen):
    """Records one source gave: ``records_in`` read (scanned), ``records_out`` kept by the
    filters (before the seam's de-duplication)."""

    records_in: StrictInt = Field(ge=0)
    records_out: StrictInt = Field(ge=0)


def lake_objects(reads: Iterable[tuple[str, int, str]], covered: Mapping[str, bool]
                 ) -> list[LakeObject]:
    """Manifest entries of the objects read, each ``(key, size_bytes, sha256)``; ``covered``
    from :func:`pipeline.replay.lake_digests.digest_coverage` (a key missing from it is not
    covered)."""
    return [LakeObject(key=key, size_bytes=size, sha256=sha,
                       digest_covered=covered.get(key, False)) for key, size, sha in reads]
