"""``trailpipe replay``: re-read audit events from Kafka for forensics (hot path).

Thin: arguments are checked (every error listed, exit 2), the plan is made from the topic's
metadata, read, filtered, sorted and written (:mod:`pipeline.replay`). The records go to
``--out FILE`` or stdout; a JSON summary (plan, counters per partition, records written) goes to
stderr at the end. ``--dry-run`` prints the plan as JSON on stdout and reads nothing.
Exit codes: 0 done, 1 runtime failure (topic missing, broker silent), 2 bad arguments/config.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from pipeline.cli.common import BootstrapOpt, ConfigOpt, build_config, fail, resolve_bootstrap
from pipeline.replay.filters import Filters

app = typer.Typer(help="Replay audit events from the events topic (no group, no commits), "
                  "filtered, sorted by (eventTime, eventID), as canonical JSON.",
                  invoke_without_command=True)

Text = Annotated[str | None, typer.Option()]


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
    """Plan, read and write; the summary on stderr. Exit 1 on a runtime failure."""
    from confluent_kafka import KafkaException

    from pipeline.daemon import events_decoder
    from pipeline.kafka import base_client_config
    from pipeline.replay.hot import ReplayError, make_plan, read_plan, replay_consumer
    from pipeline.replay.output import canonical_records, output_format, write_file, write_records

    consumer = replay_consumer(base_client_config(cfg.kafka, bootstrap), dict(cfg.kafka.extra))
    try:
        plan = make_plan(consumer, cfg.topics.events, filters, cfg.replay)
        if dry_run:
            typer.echo(json.dumps(plan.to_json(), indent=2))
            return
        result = read_plan(consumer, plan, filters, events_decoder(cfg), cfg.replay)
    except (ReplayError, KafkaException) as exc:
        fail(1, [f"trailpipe replay: {exc}"])
    finally:
        consumer.close()
    records = canonical_records(result.table)
    if out is None:
        write_records(records, output_format(None), sys.stdout.buffer)
        sys.stdout.buffer.flush()
    else:
        write_file(records, out)
    summary = {"topic": plan.topic, "from_ms": filters.from_ms, "to_ms": filters.to_ms,
               "plan": plan.to_json(), **result.summary(), "written": len(records),
               "out": str(out) if out is not None else "-"}
    typer.echo(json.dumps(summary), err=True)
