"""What ``lake compact`` works on: the Hive partitions of a date, the objects in them, the
units to merge, their deterministic output keys, and the intent record of a unit in progress.
No Parquet here (see :mod:`pipeline.lake.compact.merge`)."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from pipeline.lake.layout import EVENTS_DIR
from pipeline.lake.store import FileStore, ObjectInfo, ObjectStore, StoreError

INTENTS_DIR = "_compactions"
_TOPIC = r"(?P<topic>[A-Za-z0-9._-]+)"
_ARCHIVED_RE = re.compile(rf"^{_TOPIC}\+(?P<partition>\d+)\+(?P<offset>\d{{19}})\.parquet$")
_COMPACTED_RE = re.compile(rf"^{_TOPIC}\+compacted\+(?P<id>[0-9a-f]{{16}})\+\d{{3,}}\.parquet$")
_HOUR_DIR_RE = re.compile(rf"^{EVENTS_DIR}/account=[^/]+/region=[^/]+/date=[^/]+/hour=[^/]+$")


class CompactionError(Exception):
    """A unit cannot be completed safely; the lake is left as it was for an operator."""


@dataclass(frozen=True, slots=True)
class LakeFile:
    """A Parquet object of a Hive partition: archived (topic, Kafka partition, first offset
    from its key) or compacted (no Kafka coordinates in its key)."""

    key: str
    size: int
    topic: str
    kafka_partition: int = -1
    first_offset: int = -1

    @property
    def order(self) -> tuple[int, int, str]:
        return (self.kafka_partition, self.first_offset, self.key)


def parse_file(info: ObjectInfo) -> LakeFile | None:
    """The object as a :class:`LakeFile`, None when its name is neither kind of lake object."""
    name = info.key.rsplit("/", 1)[-1]
    m = _ARCHIVED_RE.match(name)
    if m is not None:
        return LakeFile(info.key, info.size, m["topic"], int(m["partition"]), int(m["offset"]))
    m = _COMPACTED_RE.match(name)
    return LakeFile(info.key, info.size, m["topic"]) if m is not None else None


def partition_of(key: str) -> str:
    """The Hive partition (hour directory) of an object key."""
    return key.rsplit("/", 1)[0]


def unit_id(keys: Iterable[str]) -> str:
    """16 hex of the SHA-256 of the sorted keys, one per line."""
    return hashlib.sha256("\n".join(sorted(keys)).encode()).hexdigest()[:16]


def output_key(partition: str, topic: str, uid: str, n: int) -> str:
    return f"{partition}/{topic}+compacted+{uid}+{n:03d}.parquet"


def intent_key(partition: str, uid: str) -> str:
    return f"{INTENTS_DIR}/{partition.removeprefix(EVENTS_DIR + '/')}/{uid}.json"


@dataclass(frozen=True, slots=True)
class Unit:
    """Objects of one partition and topic merged together, in (Kafka partition, offset)
    order."""

    partition: str
    topic: str
    inputs: tuple[LakeFile, ...]

    @property
    def id(self) -> str:
        return unit_id(f.key for f in self.inputs)

    @property
    def input_bytes(self) -> int:
        return sum(f.size for f in self.inputs)


def plan_partition(partition: str, files: Iterable[LakeFile], *, small_bytes: int,
                   min_objects: int, max_input_bytes: int) -> list[Unit]:
    """The units of one partition: per topic, when it has ``min_objects`` small objects, those
    objects in order, cut where a unit would exceed ``max_input_bytes``; single objects are
    left alone."""
    by_topic: dict[str, list[LakeFile]] = {}
    for f in files:
        if f.size < small_bytes:
            by_topic.setdefault(f.topic, []).append(f)
    units: list[Unit] = []
    for topic, small in sorted(by_topic.items()):
        if len(small) < min_objects:
            continue
        chunk: list[LakeFile] = []
        for f in sorted(small, key=lambda f: f.order):
            if chunk and sum(c.size for c in chunk) + f.size > max_input_bytes:
                units.append(Unit(partition, topic, tuple(chunk)))
                chunk = []
            chunk.append(f)
        units.append(Unit(partition, topic, tuple(chunk)))
    return [u for u in units if len(u.inputs) >= 2]


@dataclass(frozen=True, slots=True)
class Intent:
    """The record of a unit in progress: what it replaces, by what, and how many rows each
    output holds (outputs are consecutive slices of the merged rows)."""

    lake: str
    partition: str
    topic: str
    replaced: tuple[str, ...]
    outputs: tuple[tuple[str, int], ...]
    rows_in: int
    created_at_ms: int

    @property
    def id(self) -> str:
        return unit_id(self.replaced)

    @property
    def key(self) -> str:
        return intent_key(self.partition, self.id)

    @property
    def by(self) -> tuple[str, ...]:
        return tuple(k for k, _ in self.outputs)

    @property
    def rows_out(self) -> int:
        return sum(n for _, n in self.outputs)

    def to_json(self) -> bytes:
        doc = {"version": 1, "lake": self.lake, "partition": self.partition,
               "topic": self.topic, "replaced": list(self.replaced),
               "outputs": [{"key": k, "records": n} for k, n in self.outputs],
               "rows_in": self.rows_in, "created_at_ms": self.created_at_ms}
        return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes) -> Intent:
        """Raises ValueError (or KeyError/TypeError) on anything else."""
        doc: dict[str, Any] = json.loads(data)
        if doc.get("version") != 1:
            raise ValueError(f"unknown intent version {doc.get('version')!r}")
        return cls(str(doc["lake"]), str(doc["partition"]), str(doc["topic"]),
                   tuple(map(str, doc["replaced"])),
                   tuple((str(o["key"]), int(o["records"])) for o in doc["outputs"]),
                   int(doc["rows_in"]), int(doc["created_at_ms"]))


def date_partitions(store: ObjectStore, date: str, account: str | None) -> list[str]:
    """The ``events/account=*/region=*/date=<date>`` prefixes (with a trailing slash), of one
    account when given. Enumerates accounts and regions by delimiter (S3) or directory (file
    store) rather than listing every object of the lake."""
    base = f"{EVENTS_DIR}/"
    accounts = ([f"{base}account={quote(account, safe='')}/"] if account else
                [p for p in children(store, base) if p[len(base):].startswith("account=")])
    out: list[str] = []
    for acc in accounts:
        out += [f"{reg}date={date}/" for reg in children(store, acc)
                if reg[len(acc):].startswith("region=")]
    return sorted(out)


def hour_partitions(infos: Iterable[ObjectInfo]) -> dict[str, list[ObjectInfo]]:
    """Objects directly inside hour directories, grouped by directory."""
    out: dict[str, list[ObjectInfo]] = {}
    for info in infos:
        part = partition_of(info.key)
        if _HOUR_DIR_RE.match(part):
            out.setdefault(part, []).append(info)
    return out


def children(store: ObjectStore, prefix: str) -> list[str]:
    """The 'directories' right under ``prefix`` (each ending in '/'). Raises StoreError."""
    from pipeline.lake.s3store import S3Store

    if isinstance(store, S3Store):
        return _s3_children(store, prefix)
    if isinstance(store, FileStore):
        path = store.root / prefix
        return sorted(f"{prefix}{p.name}/" for p in path.iterdir()
                      if p.is_dir()) if path.is_dir() else []
    return sorted({f"{prefix}{info.key[len(prefix):].split('/', 1)[0]}/"
                   for info in store.list(prefix) if "/" in info.key[len(prefix):]})


def _s3_children(store: Any, prefix: str) -> list[str]:
    from botocore.exceptions import BotoCoreError, ClientError

    full = f"{store.prefix}/{prefix}" if store.prefix else prefix
    strip = len(full) - len(prefix)
    try:
        pages = store.client.get_paginator("list_objects_v2").paginate(
            Bucket=store.bucket, Prefix=full, Delimiter="/")
        return sorted(str(cp["Prefix"])[strip:] for page in pages
                      for cp in page.get("CommonPrefixes", []))
    except (BotoCoreError, ClientError) as exc:
        raise StoreError(f"listing {prefix}: {exc}", type(exc).__name__) from exc
