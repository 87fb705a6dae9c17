"""``trailpipe replay``: re-read audit events from Kafka for forensics (hot path).

Thin: arguments are checked (every error listed, exit 2), the plan is made from the topic's
metadata, read, filtered, sorted and written (:mod:`pipeline.replay`). The records go to
``--out FILE`` (with ``FILE.manifest.json`` beside it, signed with ``[digest] private_key`` when
one is configured) or stdout; a JSON summary (plan, counters per partition, records written)
goes to stderr at the end. ``--dry-run`` prints the plan as JSON on stdout and reads nothing.
On a terminal a progress bar is drawn on stderr. Ctrl-C stops the read cleanly: what matched
so far is written, the manifest says ``complete: false``, exit 130.
Exit codes: 0 done, 1 runtime failure (topic missing, broker silent), 2 bad arguments/config,
130 stopped by Ctrl-C.

``trailpipe replay verify FILE`` checks a file against its manifest (and the signature, with
``--public-key`` or the configured digest key): exit 0 valid, 1 invalid, 2 bad arguments.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from pipeline.cli.common import BootstrapOpt, ConfigOpt, build_config, fail, resolve_bootstrap
from pipeline.logs import get_logger
from pipeline.replay.filters import Filters

if TYPE_CHECKING:
    from pipeline.replay.hot import HotResult
    from pipeline.replay.manifest import OutputFile
    from pipeline.replay.plan import Plan

app = typer.Typer(help="Replay audit events from the events topic (no group, no commits), "
                  "filtered, sorted by (eventTime, eventID), as canonical JSON.",
                  invoke_without_command=True)

Text = Annotated[str | None, typer.Option()]
EXIT_INTERRUPTED = 130
log = get_logger("pipeline.cli.replay")


def parse_utc_ms(text: str) -> int:
    """Epoch ms of an ISO 8601 time (``2026-11-24T02:00:00Z``); a time without an offset is
    UTC. Raises ValueError for anything else."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


@app.callback()
def replay(
    ctx: typer.Context,
    start: Annotated[str | None, typer.Option("--from", help="Window start (inclusive), ISO "
                                              "8601, UTC unless an offset is given.")] = None,
    end: Annotated[str | None, typer.Option("--to", help="Window end (exclusive).")] = None,
    account: Annotated[str | None, typer.Option(help="Account id (recipientAccountId, else "
                                                "userIdentity.accountId).")] = None,
    region: Annotated[str | None, typer.Option(help="awsRegion; with --account, only the one "
                                               "partition holding account|region is read.")
                      ] = None,
    event_source: Annotated[str | None, typer.Option(help="eventSource, exact.")] = None,
    event_name: Annotated[str | None, typer.Option(help="eventName, exact.")] = None,
    principal: Annotated[str | None, typer.Option(help="userIdentity.arn or .userName.")
                         ] = None,
    source_ip: Annotated[str | None, typer.Option(help="sourceIPAddress, exact.")] = None,
    error: Annotated[bool | None, typer.Option("--error/--no-error", help="Only failed "
                                               "calls (errorCode set) / only successful ones.")
                     ] = None,
    out: Annotated[Path | None, typer.Option(help="Output file: .jsonl, .jsonl.gz or "
                                             "CloudTrail {\"Records\": [...]} .json.gz; "
                                             "default: JSON lines on stdout.")] = None,
    dry_run: Annotated[bool, typer.Option(help="Print the plan (partitions, offset ranges, "
                                          "estimated records) and read nothing.")] = False,
    topic: Annotated[str | None, typer.Option(help="Events topic; default: config topics.events.")
                     ] = None,
    config: ConfigOpt = None,
    bootstrap: BootstrapOpt = None,
) -> None:
    """Replay the events of a time window that every given filter keeps."""
    if ctx.invoked_subcommand is not None:
        return
    filters = checked_filters(start, end, out, account=account, region=region,
                              event_source=event_source, event_name=event_name,
                              principal=principal, source_ip=source_ip, error=error)
    cfg = build_config(config, **{"kafka.bootstrap": bootstrap, "topics.events": topic})
    run(cfg, resolve_bootstrap(cfg), filters, out, dry_run=dry_run)


def checked_filters(start: str | None, end: str | None, out: Path | None,
                    **fields: Any) -> Filters:
    """The filters from the arguments; exit 2 listing every bad argument."""
    from pipeline.replay.output import output_format

    errors: list[str] = []
    times: list[int] = []
    for flag, text in (("--from", start), ("--to", end)):
        if text is None:
            errors.append(f"{flag} is required")
            continue
        try:
            times.append(parse_utc_ms(text))
        except ValueError:
            errors.append(f"{flag} {text!r}: not an ISO 8601 time (e.g. 2026-11-24T02:00:00Z)")
    if len(times) == 2 and times[0] >= times[1]:
        errors.append("--from must be before --to (the window is [from, to))")
    try:
        output_format(out)
    except ValueError as exc:
        errors.append(str(exc))
    if errors:
        fail(2, ["trailpipe replay: bad arguments:", *(f"  - {e}" for e in errors)])
    return Filters(times[0], times[1], **fields)


def run(cfg: Any, bootstrap: str, filters: Filters, out: Path | None, *,
        dry_run: bool) -> None:
    """Plan, read and write (and the manifest beside ``out``); the summary on stderr. Exit 1
    on a runtime failure, 2 for an unusable signing key, 130 after Ctrl-C."""
    from confluent_kafka import KafkaException

    from pipeline.daemon import events_decoder
    from pipeline.kafka import base_client_config
    from pipeline.replay.canonical import canonical_records
    from pipeline.replay.hot import ReplayError, make_plan, read_plan, replay_consumer
    from pipeline.replay.progress import progress_for, stop_on_sigint

    signing_key = checked_signing_key(cfg) if out is not None else None
    consumer = replay_consumer(base_client_config(cfg.kafka, bootstrap), dict(cfg.kafka.extra))
    try:
        plan = make_plan(consumer, cfg.topics.events, filters, cfg.replay)
        if dry_run:
            typer.echo(json.dumps(plan.to_json(), indent=2))
            return
        with stop_on_sigint() as stop, progress_for(plan, sys.stderr) as bar:
            # Logged once Ctrl-C is handled: from here it stops the read cleanly.
            log.info("replay_reading", topic=plan.topic, partitions=len(plan.ranges),
                     estimated_records=plan.estimated_records)
            result = read_plan(consumer, plan, filters, events_decoder(cfg), cfg.replay,
                               stop=stop, progress=bar.update)
    except (ReplayError, KafkaException) as exc:
        fail(1, [f"trailpipe replay: {exc}"])
    finally:
        consumer.close()
    records = canonical_records(result.table)
    write_output(records, out, plan, filters, result, signing_key)
    summary = {"topic": plan.topic, "from_ms": filters.from_ms, "to_ms": filters.to_ms,
               "plan": plan.to_json(), **result.summary(), "written": len(records),
               "out": str(out) if out is not None else "-"}
    typer.echo(json.dumps(summary), err=True)
    if not result.complete:
        raise typer.Exit(EXIT_INTERRUPTED)


def write_output(records: list[bytes], out: Path | None, plan: Plan, filters: Filters,
                 result: HotResult, signing_key: str | None) -> None:
    """``records`` as JSON lines on stdout, or into ``out`` with its manifest beside it."""
    from pipeline.replay.output import output_format, write_file, write_records

    if out is None:
        write_records(records, output_format(None), sys.stdout.buffer)
        sys.stdout.buffer.flush()
        return
    described = write_file(records, out)
    write_custody(out, described, plan, filters, result, len(records), signing_key)


def checked_signing_key(cfg: Any) -> str | None:
    """The configured ``[digest] private_key`` (PEM text or path), loaded once to check it
    before anything is read; None when none is configured. Exit 2 when it cannot be used."""
    from pipeline.lake.keys import SigningKeyError, load_private_key

    if cfg.digest.private_key is None:
        return None
    value: str = cfg.digest.private_key.get_secret_value()
    try:
        load_private_key(value)
    except SigningKeyError as exc:
        fail(2, [f"trailpipe replay: [digest] private_key: {exc}"])
    return value


def write_custody(out: Path, described: OutputFile, plan: Plan, filters: Filters,
                  result: HotResult, written: int, signing_key: str | None) -> Path:
    """Write ``out``'s manifest: the command, filters, every partition read (offsets from the
    plan start to where the read stopped, and the high watermark captured at start), the
    counts, and ``described`` (size and SHA-256 of ``out`` as written)."""
    from pipeline.lake.digest.model import iso_ms
    from pipeline.replay.manifest import Manifest, PartitionRange, write_manifest

    ranges = tuple(PartitionRange(topic=plan.topic, partition=r.partition,
                                  start_offset=r.start,
                                  end_offset=result.counts[r.partition].next_offset,
                                  high_watermark=r.end) for r in plan.ranges)
    manifest = Manifest(command=["trailpipe", *sys.argv[1:]],
                        filters=dataclasses.asdict(filters),
                        run_at=iso_ms(int(time.time() * 1000)), topic_partitions=ranges,
                        records_in=sum(c.scanned for c in result.counts.values()),
                        records_out=written, complete=result.complete,
                        output=described)
    return write_manifest(out, manifest, signing_key=signing_key)


@app.command("verify")
def verify_command(
    file: Annotated[Path, typer.Argument(help="A replay output; its FILE.manifest.json must "
                                         "be beside it.")],
    public_key: Annotated[str | None, typer.Option(help="Ed25519 public key (PEM file or "
                                                   "text) the manifest must be signed by; "
                                                   "default: the public half of [digest] "
                                                   "private_key, if configured.")] = None,
    config: ConfigOpt = None,
) -> None:
    """Check FILE against its manifest (size, SHA-256, canonical form, completeness) and the
    manifest's signature. Prints each problem; exit 0 valid, 1 invalid, 2 bad arguments."""
    from pipeline.lake.keys import SigningKeyError
    from pipeline.replay.manifest import verify

    key = public_key
    if key is None:
        cfg = build_config(config)
        if cfg.digest.private_key is not None:
            key = cfg.digest.private_key.get_secret_value()
    try:
        problems = verify(file, public_key=key)
    except SigningKeyError as exc:
        fail(2, [f"trailpipe replay verify: public key: {exc}"])
    if problems:
        fail(1, [f"trailpipe replay verify: {file}: INVALID", *(f"  - {p}" for p in problems)])
    checked = "signature verified" if key is not None else "signature NOT checked (no key)"
    typer.echo(f"{file}: OK (size and SHA-256 match the manifest; {checked})")
