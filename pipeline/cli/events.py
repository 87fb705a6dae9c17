"""``trailpipe events encode|decode``: CloudTrail JSON ⇄ Avro, offline.

encode: CloudTrail JSON (a ``{"Records": [...]}`` file, JSON lines, ``.gz`` either way) from
paths or stdin → one Avro object container file on stdout. decode: Avro container files, or
single-object-encoded messages as written to Kafka → CloudTrail JSON lines on stdout.
Invalid input: one message on stderr per bad record with its location, exit 1; the good
records are still written.
"""

from __future__ import annotations

import io
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from fastavro import reader as avro_reader
from fastavro import writer as avro_writer

from pipeline.events.errors import EventError
from pipeline.events.mapping import IngestMeta, from_avro, to_avro
from pipeline.events.schemas import default_registry
from pipeline.events.wire import MAGIC, decode

app = typer.Typer(help="Convert CloudTrail JSON to Avro and back, offline.",
                  no_args_is_help=True)
AVRO_CONTAINER_MAGIC = b"Obj\x01"
PathsArg = Annotated[list[Path] | None,
                     typer.Argument(help="Input files; none or '-' reads stdin.")]


def _inputs(paths: list[Path] | None) -> Iterator[tuple[str, bytes]]:
    if not paths or paths == [Path("-")]:
        yield "<stdin>", sys.stdin.buffer.read()
        return
    for path in paths:
        yield str(path), path.read_bytes()


def _report(location: str, error: str) -> None:
    typer.echo(f"{location}: {error}", err=True)


@app.command("encode")
def encode_cmd(paths: PathsArg = None) -> None:
    """CloudTrail JSON → an Avro object container file (deflate) on stdout."""
    from producers.files import parse_bytes

    entry = default_registry().get()
    now_ms = time.time_ns() // 1_000_000
    good: list[dict[str, Any]] = []
    bad = 0
    for name, data in _inputs(paths):
        for rec in parse_bytes(data, name):
            try:
                if rec.value is None:
                    raise EventError(rec.error or "invalid record")
                ingest = IngestMeta(now_ms, "events-encode", "cli", rec.location)
                good.append(to_avro(rec.value, ingest=ingest))
            except (EventError, TypeError, ValueError) as exc:
                bad += 1
                _report(rec.location, str(exc))
    out = io.BytesIO()
    avro_writer(out, entry.parsed, good, codec="deflate")
    sys.stdout.buffer.write(out.getvalue())
    sys.stdout.buffer.flush()
    if bad:
        raise typer.Exit(1)


@app.command("decode")
def decode_cmd(paths: PathsArg = None) -> None:
    """Avro container files or single-object messages → CloudTrail JSON lines on stdout."""
    bad = 0
    for name, data in _inputs(paths):
        try:
            for datum in _datums(data):
                sys.stdout.write(json.dumps(from_avro(datum), ensure_ascii=False) + "\n")
        except (EventError, ValueError, EOFError) as exc:
            bad += 1
            _report(name, f"{type(exc).__name__}: {exc}")
    sys.stdout.flush()
    if bad:
        raise typer.Exit(1)


def _datums(data: bytes) -> Iterator[dict[str, Any]]:
    if data.startswith(AVRO_CONTAINER_MAGIC):
        # The container's writer schema resolves to the current reader schema.
        yield from (dict(d) for d in avro_reader(io.BytesIO(data),
                                                 default_registry().get().parsed)
                    if isinstance(d, dict))
    elif data.startswith(MAGIC):
        yield decode(data)
    else:
        raise ValueError(f"neither an Avro container file nor a single-object message "
                         f"(starts with {data[:4].hex()})")
