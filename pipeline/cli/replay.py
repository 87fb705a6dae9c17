"""``trailpipe replay``: re-read audit events for forensics, from Kafka and the lake.

Thin: the arguments are checked into a :class:`~pipeline.replay.session.Request` (every error
listed, exit 2, before anything is read) and run by :mod:`pipeline.replay.session`: the topic
is read from ``offsets_for_times(from - L)`` to the high watermark captured at start, the lake
for what retention removed (``--source``), merged on (partition, offset), filtered
(``--where``), sorted by (eventTime, eventID) and written as canonical JSON (or Parquet/Avro)
to ``--out FILE`` (with ``FILE.manifest.json`` beside it, signed with ``[digest] private_key``
when one is configured), stdout, or ``--to-topic``; ``--rules`` hunts the same rows. A JSON
summary goes to stderr at the end; ``--dry-run`` prints the plan (partitions, offset ranges,
lake objects) and reads nothing. On a terminal a progress bar is drawn on stderr. Ctrl-C stops
the read cleanly: what matched so far is written, the manifest says ``complete: false``.
Exit codes: 0 done, 1 runtime failure (topic missing, broker silent), 2 bad arguments/config,
130 stopped by Ctrl-C.

``trailpipe replay verify FILE`` checks a file against its manifest (and the signature, with
``--public-key`` or the configured digest key): exit 0 valid, 1 invalid, 2 bad arguments.
"""
from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from pipeline.cli.common import BootstrapOpt, ConfigOpt, build_config, fail, resolve_bootstrap
from pipeline.replay.cold import SOURCES, Source
from pipeline.replay.filters import Filters
from pipeline.replay.session import DEFAULT_TARGET, HuntRequest, Request

app = typer.Typer(help="Replay audit events from the events topic (no group, no commits), "
                  "filtered, sorted by (eventTime, eventID), as canonical JSON.",
                  invoke_without_command=True)

Text = Annotated[str | None, typer.Option()]
EXIT_INTERRUPTED = 130


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
    where: Annotated[str | None, typer.Option(
        help="SQL predicate over lake query's cloudtrail columns (Athena names and "
             "functions), e.g. \"useridentity.type = 'Root'\".")] = None,
    out: Annotated[Path | None, typer.Option(help="Output file: .jsonl, .jsonl.gz, CloudTrail "
                                             "{\"Records\": [...]} .json.gz, .parquet (lake "
                                             "columns) or .avro (ApiCallEvent); default: "
                                             "JSON lines on stdout.")] = None,
    rate: Annotated[float | None, typer.Option(help="At most this many records per second "
                                               "to the output (file, stdout or topic).")
                    ] = None,
    source: Annotated[str, typer.Option(
        help="auto: the topic, and the lake for what retention removed (merged on "
             "partition and offset); kafka: the topic only; lake: the lake only.")] = "auto",
    dry_run: Annotated[bool, typer.Option(help="Print the plan (partitions, offset ranges, "
                                          "estimated records) and read nothing.")] = False,
    to_topic: Annotated[str | None, typer.Option(
        help=f"Copy the selected records into this topic (key, value bytes, timestamp and "
             f"headers kept, x-replay-* headers added); '{DEFAULT_TARGET}' names "
             f"replay.<replay-id>.events.v1. Pipeline and audit.* topics need --force.")
                        ] = None,
    rules: Annotated[Path | None, typer.Option(
        help="Retro-hunt: run these rules (Sigma/native file or directory) over the replayed "
             "records; without it, --alerts-out/--alerts-topic hunt with [alerter]'s rules.")
                     ] = None,
    alerts_out: Annotated[Path | None, typer.Option(help="Retro-hunt alerts as canonical "
                                                    "JSON lines in this file.")] = None,
    alerts_topic: Annotated[str | None, typer.Option(
        help="Retro-hunt alerts into this topic (never the live alerts topic).")] = None,
    force: Annotated[bool, typer.Option(help="Allow --to-topic into a pipeline or audit.* "
                                        "topic.")] = False,
    replay_id: Annotated[str | None, typer.Option(
        help="Id of a --to-topic replay ([A-Za-z0-9_-]); default: derived from the topic and "
             "filters, so re-running the same command writes nothing twice.")] = None,
    topic: Annotated[str | None, typer.Option(help="Events topic; default: config topics.events.")
                     ] = None,
    config: ConfigOpt = None,
    bootstrap: BootstrapOpt = None,
) -> None:
    """Replay the events of a time window that every given filter keeps."""
    if ctx.invoked_subcommand is not None:
        return
    filters = checked_filters(start, end, out, to_topic, rate, account=account, region=region,
                              event_source=event_source, event_name=event_name,
                              principal=principal, source_ip=source_ip, error=error,
                              where=where)
    cfg = build_config(config, **{"kafka.bootstrap": bootstrap, "topics.events": topic})
    request = Request(filters, out=out, to_topic=to_topic, force=force, replay_id=replay_id,
                      dry_run=dry_run, rate_per_s=rate, source=checked_source(source),
                      signing_key=checked_signing_key(cfg) if out is not None else None)
    check_target(cfg, request)
    hunt = checked_hunt(cfg, rules, alerts_out, alerts_topic)
    run(cfg, resolve_bootstrap(cfg), dataclasses.replace(request, hunt=hunt))


def checked_filters(start: str | None, end: str | None, out: Path | None,
                    to_topic: str | None, rate: float | None, **fields: Any) -> Filters:
    """The filters from the arguments; exit 2 listing every bad argument."""
    from pipeline.replay.output import output_format
    from pipeline.replay.where import check_where

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
    if fields.get("where") is not None:
        try:
            check_where(fields["where"])
        except ValueError as exc:
            errors.append(str(exc))
    if rate is not None and not rate > 0:
        errors.append(f"--rate {rate}: must be a positive number of records per second")
    if out is not None and to_topic is not None:
        errors.append("--out and --to-topic exclude each other (one destination per run)")
    if errors:
        fail(2, ["trailpipe replay: bad arguments:", *(f"  - {e}" for e in errors)])
    return Filters(times[0], times[1], **fields)


def run(cfg: Any, bootstrap: str, request: Request) -> None:
    """Run ``request`` (:func:`pipeline.replay.session.execute`); the summary on stderr. Exit
    1 on a runtime failure, 130 after Ctrl-C."""
    from confluent_kafka import KafkaException

    from pipeline.producer import DeliveryError
    from pipeline.replay.hot import ReplayError
    from pipeline.replay.session import execute

    try:
        outcome = execute(cfg, bootstrap, request)
    except (ReplayError, KafkaException, DeliveryError, ValueError) as exc:
        fail(1, [f"trailpipe replay: {exc}"])
    if outcome is None:
        return
    typer.echo(json.dumps(outcome.summary), err=True)
    if not outcome.complete:
        raise typer.Exit(EXIT_INTERRUPTED)


def checked_source(source: str) -> Source:
    """``--source`` as a :data:`~pipeline.replay.cold.Source`; exit 2 for anything else."""
    for known in SOURCES:
        if source == known:
            return known
    fail(2, [f"trailpipe replay: --source {source!r}: one of {', '.join(SOURCES)}"])


def check_target(cfg: Any, request: Request) -> None:
    """Exit 2 when ``--to-topic`` names a refused target (a pipeline or audit.* topic
    without ``--force``) or ``--replay-id`` cannot name a topic; before anything is read."""
    from pipeline.replay.to_topic import ToTopicError, target_topic

    if request.to_topic is None:
        return
    try:
        target_topic(request.the_replay_id(cfg.topics.events), cfg.topics,
                     None if request.to_topic == DEFAULT_TARGET else request.to_topic,
                     force=request.force)
    except ToTopicError as exc:
        fail(2, [f"trailpipe replay: {exc}"])


def checked_hunt(cfg: Any, rules: Path | None, alerts_out: Path | None,
                 alerts_topic: str | None) -> HuntRequest | None:
    """The retro-hunt asked for (any of the three options), its rules loaded; exit 2 listing
    every problem (no alerts destination, rules that do not load, a refused topic)."""
    from pipeline.replay.hunt import load_hunt_rules
    from pipeline.replay.hunt_out import alerts_topic as checked_topic
    from pipeline.replay.to_topic import ToTopicError

    if rules is None and alerts_out is None and alerts_topic is None:
        return None
    errors: list[str] = []
    if alerts_out is None and alerts_topic is None:
        errors.append("--rules needs --alerts-out FILE and/or --alerts-topic T (alerts never "
                      "go to the live alerts topic)")
    try:
        loaded = load_hunt_rules(cfg, rules)
    except ValueError as exc:
        errors.append(f"--rules: {exc}")
    if alerts_topic is not None:
        try:
            checked_topic(cfg.topics, alerts_topic)
        except ToTopicError as exc:
            errors.append(f"--alerts-topic: {exc}")
    if errors:
        fail(2, ["trailpipe replay: bad arguments:", *(f"  - {e}" for e in errors)])
    return HuntRequest(loaded, alerts_out, alerts_topic)


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
