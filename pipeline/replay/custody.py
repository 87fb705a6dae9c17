"""The chain-of-custody manifest of one replay output (:mod:`pipeline.replay.manifest`).

Contract. :func:`write_custody` records the command and filters, every topic partition read
(offsets from the plan start to where the read stopped, and the high watermark captured at
start), every lake object read (key, size, SHA-256 of its bytes as read, and whether a digest
signed by a trusted key lists it with that SHA-256: what ``lake validate`` checks), the counts
per source and in total, the duplicates the seam dropped, whether the run completed, and the
output's size and SHA-256 as written; signed with ``[digest] private_key`` when configured.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.config import Config
from pipeline.replay.manifest import OutputFile
from pipeline.replay.manifest_sources import LakeObject, PartitionRange, SourceCounts

if TYPE_CHECKING:
    from pipeline.replay.session import Request
    from pipeline.replay.sources import Read, Sources


def write_custody(cfg: Config, request: Request, described: OutputFile, sources: Sources,
                  read: Read, written: int) -> Path:
    """Write ``request.out``'s manifest (see the module contract); its path."""
    from pipeline.lake.digest.model import iso_ms
    from pipeline.replay.manifest import Manifest, write_manifest

    assert request.out is not None
    counts: dict[Any, SourceCounts] = {}
    records_in = 0
    if read.hot is not None:
        scanned = sum(c.scanned for c in read.hot.counts.values())
        matched = sum(c.matched for c in read.hot.counts.values())
        counts["kafka"] = SourceCounts(records_in=scanned, records_out=matched)
        records_in += scanned
    if read.cold is not None:
        counts["lake"] = SourceCounts(records_in=read.cold.rows_scanned,
                                      records_out=read.cold.rows_matched)
        records_in += read.cold.rows_scanned
    manifest = Manifest(command=["trailpipe", *sys.argv[1:]],
                        filters=dataclasses.asdict(request.filters),
                        run_at=iso_ms(int(time.time() * 1000)),
                        topic_partitions=_ranges(sources, read), lake_objects=_objects(cfg, read),
                        records_in=records_in, records_out=written, counts_by_source=counts,
                        duplicates_dropped=read.duplicates_dropped, complete=read.complete,
                        output=described)
    return write_manifest(request.out, manifest, signing_key=request.signing_key)


def _ranges(sources: Sources, read: Read) -> tuple[PartitionRange, ...]:
    if sources.plan is None or read.hot is None:
        return ()
    counts = read.hot.counts
    return tuple(PartitionRange(topic=sources.topic, partition=r.partition, start_offset=r.start,
                                end_offset=counts[r.partition].next_offset, high_watermark=r.end)
                 for r in sources.plan.ranges)


def _objects(cfg: Config, read: Read) -> tuple[LakeObject, ...]:
    if read.cold is None or not read.cold.objects:
        return ()
    from pipeline.replay.lake_digests import digest_coverage
    from pipeline.replay.manifest_sources import lake_objects
    from pipeline.replay.sources import lake_root

    fs, base = lake_root(cfg)
    objects = read.cold.objects
    covered = digest_coverage(fs, base, [(o.key, o.sha256) for o in objects], _trusted(cfg))
    return tuple(lake_objects([(o.key, o.size_bytes, o.sha256) for o in objects], covered))


def _trusted(cfg: Config) -> Any:
    """The digest keys ``lake validate`` trusts by default: ``[digest] trusted_public_keys``
    and the public half of ``private_key``; None when none is configured."""
    from pipeline.lake.keys import configured_public_keys, trusted_keys

    private = cfg.digest.private_key
    keys = configured_public_keys(cfg.digest.trusted_public_keys,
                                  private.get_secret_value() if private else None)
    return trusted_keys(keys) if keys else None
