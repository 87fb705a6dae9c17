"""One ``trailpipe replay`` run, end to end: plan, read, select, order, deliver, account.

The CLI (:mod:`pipeline.cli.replay`) checks the arguments into a :class:`Request`; this module
runs it. Steps, in order:

1. **plan** the hot read (:mod:`pipeline.replay.plan`) and the lake read
   (:mod:`pipeline.replay.sources`); ``dry_run`` prints both and stops;
2. **read** the topic (:func:`pipeline.replay.hot.read_plan`) with the progress bar and the
   clean Ctrl-C (:mod:`pipeline.replay.progress`), and the lake (:mod:`pipeline.replay.cold`);
3. **merge** them on (partition, offset) (:mod:`pipeline.replay.seam`);
4. **select and order**: ``--where`` (:mod:`pipeline.replay.where`), then the output order;
5. **deliver**: into a topic (:mod:`pipeline.replay.to_topic`), into ``out`` with its
   manifest beside it (:mod:`pipeline.replay.output`, :mod:`pipeline.replay.manifest`), or
   as JSON lines on stdout, paced by ``--rate`` (:mod:`pipeline.replay.rate`); then the
   retro-hunt over the same rows (:mod:`pipeline.replay.hunt_out`), alerts to a file or a
   ``replay.*`` topic;
6. **account**: the JSON summary (plan, counters, what was written) is returned for stderr.

Raises ReplayError/KafkaException for a runtime failure (the CLI exits 1).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
from confluent_kafka import Consumer

from pipeline.config import Config
from pipeline.kafka import base_client_config
from pipeline.logs import get_logger
from pipeline.replay.cold import Source
from pipeline.replay.custody import write_custody
from pipeline.replay.filters import Filters
from pipeline.replay.rate import RateLimiter
from pipeline.replay.sources import Read, Sources
from pipeline.rules.ruleset import RuleSet

log = get_logger("pipeline.replay.session")
DEFAULT_TARGET = "replay"
"""``--to-topic replay`` names the default target ``replay.<replay id>.events.v1``."""


@dataclass(frozen=True, slots=True)
class HuntRequest:
    """A retro-hunt (:mod:`pipeline.replay.hunt`): the loaded rules and where alerts go
    (a file and/or a topic, never the live alerts topic)."""

    rules: RuleSet
    alerts_out: Path | None = None
    alerts_topic: str | None = None


@dataclass(frozen=True, slots=True)
class Request:
    """A checked replay request: the filters, where the records go, and the run's options.
    ``to_topic``: None (a file or stdout), :data:`DEFAULT_TARGET`, or a topic name."""

    filters: Filters
    out: Path | None = None
    to_topic: str | None = None
    force: bool = False
    replay_id: str | None = None
    dry_run: bool = False
    signing_key: str | None = None
    rate_per_s: float | None = None
    source: Source = "auto"
    hunt: HuntRequest | None = None

    def the_replay_id(self, topic: str) -> str:
        """``replay_id``, else one derived from the source topic and the filters: the same
        command gives the same id, so running it again into a topic writes nothing twice."""
        if self.replay_id is not None:
            return self.replay_id
        text = json.dumps([topic, dataclasses.asdict(self.filters)], sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(slots=True)
class Outcome:
    """What a run did: the summary for stderr and whether it read everything."""

    summary: dict[str, Any]
    complete: bool


def execute(cfg: Config, bootstrap: str, request: Request) -> Outcome | None:
    """Run ``request`` (see the module contract); None after a dry run (the plan printed)."""
    from pipeline.replay.hot import replay_consumer
    from pipeline.replay.progress import NoProgress, progress_for, stop_on_sigint
    from pipeline.replay.sources import dry_run_json, plan_sources, read_sources

    kafka_base = base_client_config(cfg.kafka, bootstrap)
    consumer = replay_consumer(kafka_base, dict(cfg.kafka.extra))
    try:
        sources = plan_sources(consumer, cfg, request.filters, request.source)
        if request.dry_run:
            print(json.dumps(dry_run_json(cfg, sources, request.filters), indent=2))
            return None
        bar = progress_for(sources.plan, sys.stderr) if sources.plan else NoProgress()
        with stop_on_sigint() as stop, bar:
            # Logged once Ctrl-C is handled: from here it stops the read cleanly.
            log.info("replay_reading", topic=sources.topic, kafka=sources.reads_hot,
                     lake=sources.scope is not None)
            read = read_sources(consumer, cfg, sources, request.filters, _decoder(cfg),
                                stop=stop, progress=bar.update)
        ordered = _selected(read.table, request.filters)
        delivered = _deliver(cfg, kafka_base, consumer, request, sources, read, ordered)
        delivered.update(_hunted(cfg, kafka_base, request.hunt, ordered))
    finally:
        consumer.close()
    summary = {"topic": sources.topic, "from_ms": request.filters.from_ms,
               "to_ms": request.filters.to_ms,
               "plan": sources.plan.to_json() if sources.plan else None, **read.summary(),
               "where_kept": ordered.num_rows, "written": ordered.num_rows, **delivered}
    return Outcome(summary, read.complete)


def _decoder(cfg: Config) -> Any:
    from pipeline.daemon import events_decoder

    return events_decoder(cfg)


def _selected(table: pa.Table, filters: Filters) -> pa.Table:
    """The matched rows ``--where`` keeps, in the output order."""
    from pipeline.replay.canonical import sorted_rows
    from pipeline.replay.where import apply_where

    if filters.where is not None and table.num_rows:
        table = apply_where(table, filters.where)
    return sorted_rows(table)


def _hunted(cfg: Config, kafka_base: dict[str, Any], hunt: HuntRequest | None,
            ordered: pa.Table) -> dict[str, Any]:
    """Run the retro-hunt over the delivered rows, when asked; its summary fields."""
    if hunt is None:
        return {}
    from pipeline.replay.hunt_out import run_hunt

    return run_hunt(cfg, kafka_base, hunt.rules, ordered, alerts_out=hunt.alerts_out,
                    alerts_to=hunt.alerts_topic)


def _deliver(cfg: Config, kafka_base: dict[str, Any], consumer: Consumer, request: Request,
             sources: Sources, read: Read, ordered: pa.Table) -> dict[str, Any]:
    """Send ``ordered`` where the request says; the summary fields of that delivery."""
    limiter = RateLimiter(request.rate_per_s) if request.rate_per_s else None
    if request.to_topic is not None:
        _only_kafka_rows(read)
        return {"to_topic": _to_topic(cfg, kafka_base, consumer, request, sources.topic,
                                      ordered, limiter)}
    if request.out is None:
        from pipeline.replay.canonical import json_records
        from pipeline.replay.output import write_records

        write_records(json_records(ordered), "jsonl", sys.stdout.buffer, limiter)
        sys.stdout.buffer.flush()
        return {"out": "-"}
    from pipeline.replay.output import write_output

    described = write_output(ordered, request.out, limiter=limiter)
    write_custody(cfg, request, described, sources, read, ordered.num_rows)
    return {"out": str(request.out)}


def _only_kafka_rows(read: Read) -> None:
    """Raise ReplayError, before anything is produced, when some selected records came from
    the lake only: ``--to-topic`` copies Kafka records (key, value bytes, timestamp and
    headers), which the lake does not keep whole."""
    from pipeline.replay.hot import ReplayError

    hot_rows = read.hot.table.num_rows if read.hot is not None else 0
    if read.table.num_rows > hot_rows:
        raise ReplayError(f"{read.table.num_rows - hot_rows} selected records are only in the "
                          "lake (retention removed them from the topic); --to-topic copies "
                          "Kafka records whole: replay them into a file with --out, or use "
                          "--source kafka for the records the topic still holds")


def _to_topic(cfg: Config, kafka_base: dict[str, Any], consumer: Consumer, request: Request,
              topic: str, ordered: pa.Table, limiter: RateLimiter | None) -> dict[str, Any]:
    """Copy the selected source records into the target topic (created like the source
    when missing); the replay id, target and counts."""
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient

    from pipeline.kafka import producer_config
    from pipeline.replay.to_topic import coordinates, replay_to_topic, target_topic
    from pipeline.topics import ensure_topic_like

    replay_id = request.the_replay_id(topic)
    wanted = None if request.to_topic == DEFAULT_TARGET else request.to_topic
    target = target_topic(replay_id, cfg.topics, wanted, force=request.force)
    created = ensure_topic_like(AdminClient(kafka_base), topic, target)
    producer = Producer(producer_config(kafka_base, dict(cfg.kafka.extra)))
    done = replay_to_topic(consumer, producer, topic, coordinates(ordered), target,
                           replay_id, cfg.replay, limiter, fresh=created)
    return {"replay_id": replay_id, "created": created, **done.to_json()}
