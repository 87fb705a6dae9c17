"""Deterministic replay output: the sorted matched rows (:mod:`pipeline.replay.canonical`) in a
file or on stdout. Formats, by the name of ``--out``:

* ``.jsonl``: canonical JSON records, one per line, each line ending in ``\\n``;
* ``.jsonl.gz``: the same, gzip with mtime 0 and no file name in the header;
* ``.json.gz``: CloudTrail's log file shape ``{"Records":[...]}``, gzip as above;
* ``.parquet``: the lake's columns (:data:`pipeline.lake.columns.LAKE_SCHEMA`, so it opens
  like a lake object; ``_timestamp_ms`` is null: replayed rows do not carry the Kafka
  timestamp), zstd, row groups of :data:`ROW_GROUP_ROWS` rows in the sorted order;
* ``.avro``: an Avro object container file of ApiCallEvent records in the newest schema of
  ``schemas/`` (the decoder's reader schema, so no field is lost), deflate, with a fixed sync
  marker;
* no ``--out``: JSON lines on stdout.

So the same rows give byte-identical output (for Parquet, with the same pyarrow version,
which the file's ``created_by`` names). :func:`write_output` is the one entry point for files;
the JSON records are computed only for the JSON formats. Every file is written to
``PATH.partial`` through a :class:`HashingWriter` (size and SHA-256 for the manifest) and
renamed. With a :class:`~pipeline.replay.rate.RateLimiter`, writing waits chunk by chunk
(the bytes do not depend on the rate).
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, Literal, cast

import fastavro
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.events.schemas import default_registry
from pipeline.lake.columns import lake_table
from pipeline.replay.canonical import json_records
from pipeline.replay.lake_rows import empty_decoded
from pipeline.replay.manifest import OutputFile
from pipeline.replay.rate import RateLimiter, chunk_size, paced

Format = Literal["jsonl", "jsonl.gz", "json.gz", "parquet", "avro"]
_SUFFIXES: dict[str, Format] = {".jsonl": "jsonl", ".jsonl.gz": "jsonl.gz", ".json.gz": "json.gz",
                                ".parquet": "parquet", ".avro": "avro"}
_GZIP_LEVEL = 6
ROW_GROUP_ROWS = 65_536
"""Rows per Parquet row group (a fixed number, so the bytes do not depend on ``--rate``)."""
AVRO_SYNC_MARKER = hashlib.sha256(b"trailpipe replay .avro").digest()[:16]
"""Fixed, so the same records give the same file (fastavro otherwise draws a random one)."""
_AVRO_BLOCK_BYTES = 1 << 20


def output_format(path: Path | None) -> Format:
    """The format ``--out PATH`` names (``jsonl`` for stdout). Raises ValueError otherwise."""
    if path is None:
        return "jsonl"
    for suffix, fmt in _SUFFIXES.items():
        if path.name.endswith(suffix) and len(path.name) > len(suffix):
            return fmt
    raise ValueError(f"--out {path}: unsupported output; use a name ending in "
                     f"{', '.join(_SUFFIXES)} (or no --out for stdout)")


def write_output(ordered: pa.Table, path: Path, records: list[bytes] | None = None,
                 limiter: RateLimiter | None = None) -> OutputFile:
    """Write ``ordered`` (matched rows already in :func:`~pipeline.replay.canonical.sorted_rows`
    order: decoded event columns plus ``_partition``/``_offset``) to ``path`` in the format
    its name gives (ValueError for others) and return its size and SHA-256, hashed as the
    bytes were written. ``records``: ``json_records(ordered)`` when the caller already has
    them (JSON formats only; computed here otherwise). ``path`` only ever holds a whole
    output: it is written as ``PATH.partial`` and renamed."""
    fmt = output_format(path)
    if ordered.num_columns == 0:  # no rows matched and none decoded: no columns either
        ordered = empty_decoded()
    partial = path.with_name(path.name + ".partial")
    with partial.open("wb") as fh:
        hashing = HashingWriter(fh)
        if fmt == "parquet":
            _write_parquet(ordered, hashing, limiter)
        elif fmt == "avro":
            _write_avro(ordered, hashing, limiter)
        else:
            texts = json_records(ordered) if records is None else records
            write_records(texts, fmt, hashing, limiter)
    partial.replace(path)
    return OutputFile(name=path.name, size_bytes=hashing.size_bytes,
                      sha256=hashing.sha.hexdigest())


def write_file(records: list[bytes], path: Path) -> OutputFile:
    """:func:`write_output` for the JSON formats, from the canonical records alone (kept for
    callers that have no table); ValueError for ``.parquet``/``.avro``, which need the rows."""
    fmt = output_format(path)
    if fmt in ("parquet", "avro"):
        raise ValueError(f"--out {path}: .{fmt} is written from the rows (write_output)")
    return write_output(pa.table({}), path, records)


def write_records(records: list[bytes], fmt: Format, stream: BinaryIO | HashingWriter,
                  limiter: RateLimiter | None = None) -> None:
    """Write ``records`` (canonical JSON texts) to ``stream`` in JSON format ``fmt``; with a
    ``limiter``, chunk by chunk, flushing ``stream`` after each chunk of plain JSON lines (so
    a pipe sees them as they are allowed)."""
    if fmt == "jsonl":
        for chunk in paced(records, limiter):
            _write_lines(chunk, stream)
            if limiter is not None:
                stream.flush()
        return
    if fmt not in ("jsonl.gz", "json.gz"):
        raise ValueError(f"write_records writes JSON formats, not {fmt}")
    with gzip.GzipFile(filename="", mode="wb", fileobj=stream, compresslevel=_GZIP_LEVEL,
                       mtime=0) as gz:
        if fmt == "jsonl.gz":
            for chunk in paced(records, limiter):
                _write_lines(chunk, gz)
            return
        gz.write(b'{"Records":[')
        for i, chunk in enumerate(paced(records, limiter)):
            gz.write((b"," if i else b"") + b",".join(chunk))
        gz.write(b"]}")


class HashingWriter:
    """A binary stream that writes through to ``inner`` and keeps the SHA-256 and size of
    everything written (what a gzip writer on top of it emits, header and trailer included)."""

    def __init__(self, inner: BinaryIO) -> None:
        self.inner = inner
        self.sha = hashlib.sha256()
        self.size_bytes = 0

    def write(self, data: bytes) -> int:
        self.sha.update(data)
        self.size_bytes += len(data)
        return self.inner.write(data)

    def flush(self) -> None:
        self.inner.flush()

    @property
    def closed(self) -> bool:  # pyarrow's file wrapper asks before writing
        return self.inner.closed

    def seekable(self) -> bool:  # fastavro asks (to append); hashing needs a forward stream
        return False


def _write_lines(records: Iterable[bytes],
                 stream: BinaryIO | HashingWriter | gzip.GzipFile) -> None:
    for record in records:
        stream.write(record)
        stream.write(b"\n")


def parquet_table(ordered: pa.Table) -> pa.Table:
    """The lake table (:data:`~pipeline.lake.columns.LAKE_SCHEMA`) of the matched rows, in
    their order; ``_timestamp_ms`` null (replayed rows do not carry it)."""
    timestamps = pa.nulls(ordered.num_rows, pa.int64())
    return lake_table(ordered.append_column("_timestamp_ms", timestamps))


def _write_parquet(ordered: pa.Table, stream: HashingWriter,
                   limiter: RateLimiter | None) -> None:
    table = parquet_table(ordered)
    with pq.ParquetWriter(stream, table.schema, compression="zstd") as writer:
        for start in range(0, max(table.num_rows, 1), ROW_GROUP_ROWS):
            group = table.slice(start, ROW_GROUP_ROWS)
            if limiter is not None:
                limiter.wait(group.num_rows)
            writer.write_table(group, row_group_size=ROW_GROUP_ROWS)


def avro_schema() -> dict[str, Any]:
    """The schema of the ``.avro`` output: the newest ApiCallEvent of ``schemas/``."""
    raw: dict[str, Any] = default_registry().newest().raw
    return raw


def avro_datums(ordered: pa.Table, limiter: RateLimiter | None = None
                ) -> Iterator[dict[str, Any]]:
    """The matched rows as ApiCallEvent datums of :func:`avro_schema` (the decoded columns
    are that schema's fields; Kafka coordinates are not part of a datum), in their order;
    with a ``limiter``, each chunk once it allows it."""
    names = [f["name"] for f in avro_schema()["fields"]]
    for batch in ordered.select(names).to_batches(max_chunksize=chunk_size(limiter)):
        if limiter is not None:
            limiter.wait(batch.num_rows)
        yield from batch.to_pylist(maps_as_pydicts="strict")


def _write_avro(ordered: pa.Table, stream: HashingWriter, limiter: RateLimiter | None) -> None:
    # Blocks close by size (sync_interval), never by how the datums arrive, so the bytes do
    # not depend on the rate. The schema goes in unparsed: fastavro writes the header from
    # what it is given, and its parsed form orders keys by set iteration (per process).
    fastavro.writer(cast(BinaryIO, stream), avro_schema(), avro_datums(ordered, limiter),
                    codec="deflate", sync_interval=_AVRO_BLOCK_BYTES,
                    sync_marker=AVRO_SYNC_MARKER)
