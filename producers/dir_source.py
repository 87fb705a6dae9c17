"""``trailpipe produce cloudtrail-dir``: CloudTrail files from local paths, recursively."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from pipeline.progress import IngestProgress
from producers.files import RawRecord, find_files, read_file
from producers.publisher import Publisher

POLL_EVERY_RECORDS = 1000


def ingest_paths(publisher: Publisher, paths: list[Path], *, max_record_bytes: int,
                 workers: int = 1) -> int:
    """Publish every record of every file under ``paths``; returns the number of files read.
    ``workers`` > 1 maps and encodes in that many processes (:class:`producers.pool.EncodePool`,
    records still published in file order); the default, 1, does it in this thread.
    The caller flushes the publisher (and so learns about delivery failures)."""
    files = [f for p in paths for f in find_files(p)]
    with IngestProgress(len(files), "cloudtrail-dir") as progress:
        if workers > 1:
            from producers.pool import EncodePool

            with EncodePool(workers) as pool:
                publisher.publish_many(_read_all(files, max_record_bytes, progress), pool,
                                       poll_every=POLL_EVERY_RECORDS)
            publisher.poll()
            return len(files)
        for path in files:
            count = 0
            for record in read_file(path, max_record_bytes):
                publisher.publish(record)
                count += 1
                if count % POLL_EVERY_RECORDS == 0:
                    publisher.poll()
            publisher.poll()
            progress.advance(files=1, records=count, nbytes=path.stat().st_size)
    return len(files)


def _read_all(files: list[Path], max_record_bytes: int,
              progress: IngestProgress) -> Iterator[RawRecord]:
    """Every record of ``files`` in order; progress advances as each file is read (ahead of
    publishing by the pool's window, a few thousand records at most)."""
    for path in files:
        count = 0
        for record in read_file(path, max_record_bytes):
            count += 1
            yield record
        progress.advance(files=1, records=count, nbytes=path.stat().st_size)
