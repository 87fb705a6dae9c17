"""Deterministic replay output: canonical records (:mod:`pipeline.replay.canonical`) in a file
or on stdout. Formats, by the name of ``--out``:

* ``.jsonl``: one record per line, each line ending in ``\\n``;
* ``.jsonl.gz``: the same, gzip with mtime 0 and no file name in the header;
* ``.json.gz``: CloudTrail's log file shape ``{"Records":[...]}``, gzip as above;
* no ``--out``: JSON lines on stdout.

So the same records give byte-identical output. ``.parquet`` and ``.avro`` are not supported
yet (:func:`output_format` says so).
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO, Literal

from pipeline.replay.manifest import OutputFile

Format = Literal["jsonl", "jsonl.gz", "json.gz"]
_SUFFIXES: dict[str, Format] = {".jsonl": "jsonl", ".jsonl.gz": "jsonl.gz", ".json.gz": "json.gz"}
_GZIP_LEVEL = 6


def output_format(path: Path | None) -> Format:
    """The format ``--out PATH`` names (``jsonl`` for stdout). Raises ValueError otherwise."""
    if path is None:
        return "jsonl"
    for suffix, fmt in _SUFFIXES.items():
        if path.name.endswith(suffix) and len(path.name) > len(suffix):
            return fmt
    raise ValueError(f"--out {path}: unsupported output; use a name ending in "
                     f"{', '.join(_SUFFIXES)} (or no --out for stdout)")


def write_records(records: list[bytes], fmt: Format, stream: BinaryIO | HashingWriter
                  ) -> None:
    """Write ``records`` (canonical JSON texts) to ``stream`` in ``fmt``."""
    if fmt == "jsonl":
        _write_lines(records, stream)
        return
    with gzip.GzipFile(filename="", mode="wb", fileobj=stream, compresslevel=_GZIP_LEVEL,
                       mtime=0) as gz:
        if fmt == "jsonl.gz":
            _write_lines(records, gz)
        else:
            gz.write(b'{"Records":[' + b",".join(records) + b"]}")


def write_file(records: list[bytes], path: Path) -> OutputFile:
    """Write ``records`` to ``path`` in the format its name gives (ValueError for others)
    and return its size and SHA-256, hashed as the bytes were written (for the manifest).
    Written to ``PATH.partial`` and renamed, so ``path`` only ever holds a whole output."""
    fmt = output_format(path)
    partial = path.with_name(path.name + ".partial")
    with partial.open("wb") as fh:
        hashing = HashingWriter(fh)
        write_records(records, fmt, hashing)
    partial.replace(path)
    return OutputFile(name=path.name, size_bytes=hashing.size_bytes,
                      sha256=hashing.sha.hexdigest())


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


def _write_lines(records: Iterable[bytes],
                 stream: BinaryIO | HashingWriter | gzip.GzipFile) -> None:
    for record in records:
        stream.write(record)
        stream.write(b"\n")
