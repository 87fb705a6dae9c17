"""``trailpipe produce cloudtrail-dir``: CloudTrail files from local paths, recursively."""

from __future__ import annotations

from pathlib import Path

from pipeline.progress import IngestProgress
from producers.files import find_files, read_file
from producers.publisher import Publisher

POLL_EVERY_RECORDS = 1000


def ingest_paths(publisher: Publisher, paths: list[Path], *, max_record_bytes: int) -> int:
    """Publish every record of every file under ``paths``; returns the number of files read.
    The caller flushes the publisher (and so learns about delivery failures)."""
    files = [f for p in paths for f in find_files(p)]
    with IngestProgress(len(files), "cloudtrail-dir") as progress:
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
