"""CloudTrail JSON record <-> ApiCallEvent Avro datum, losslessly.

Contract: for any JSON object ``r`` (as ``json.loads`` returns it),
``from_avro(to_avro(r, ingest=m)) == r`` with every type kept (``"true"`` stays a string, ``1``
never becomes ``1.0`` or ``True``, big integers stay exact), also after an Avro encode/decode.
Key order is not kept. How: documented fields go to typed Avro fields when their value has the
documented type; free-form members (requestParameters, ...) are JSON text; everything else
(unknown keys such as ``@timestamp`` or lower-cased ``eventname``, and values of an unexpected
type such as ``"readOnly": "true"`` or ``"eventTime": null``) goes to ``unmodelled``, JSON text
of an object that mirrors the record's nesting (see :mod:`pipeline.events.plan`).

**eventTime policy** (never a guess): ``eventTime`` is kept exactly as written. In addition
``eventTimeMs`` holds it as epoch ms UTC and ``eventTimeStatus`` says how it went:

* ``PRESENT``: an RFC 3339 timestamp with a zone (``Z`` or ``+hh:mm``; ``T`` or, as RFC 3339
  allows, a space between date and time), fraction truncated to ms;
* ``MISSING``: the key is absent or ``null``; ``eventTimeMs`` is null;
* ``INVALID``: anything else (a zone-less ``2021-01-01 00:00:00`` as in Panther test logs, a
  non-string, a non-date, a leap second); ``eventTimeMs`` is null. A zone-less time is not
  assumed to be UTC.

Consumers that need a time for windows or lake partitions use :func:`effective_time_ms`, which
falls back to the ingest time only when ``eventTimeMs`` is null; the status field tells them
(and auditors) that the fallback happened.

Schema evolution rule that keeps this lossless: a minor version (v1.1) may add ``meta`` fields
only. Promoting a CloudTrail key from ``unmodelled`` to a typed field would hide it from
readers of older minors, so it needs a new major version.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from pipeline.events.errors import InvalidDatum, InvalidRecord
from pipeline.events.plan import compile_plan, join, json_text, merge, parse_json_text, split
from pipeline.events.schemas import default_registry

PRESENT, MISSING, INVALID = "PRESENT", "MISSING", "INVALID"
"""``eventTimeStatus`` symbols."""

_PLAN = compile_plan(default_registry().get().raw)
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
# re.ASCII: \d must not accept other scripts' digits.
_RFC3339 = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(?:\.(\d+))?(?:([Zz])|([+-])(\d\d):(\d\d))",
    re.ASCII,
)


@dataclass(frozen=True, slots=True)
class IngestMeta:
    """Who ingested the record, when (producer wall clock, epoch ms) and from where."""

    ingest_time_ms: int
    source: str
    producer_id: str
    location: str | None = None

    def __post_init__(self) -> None:
        if type(self.ingest_time_ms) is not int:
            raise TypeError("ingest_time_ms must be an int (epoch milliseconds)")


def to_avro(record: dict[str, Any], *, ingest: IngestMeta) -> dict[str, Any]:
    """Map one CloudTrail record to an ApiCallEvent datum (the current schema version).

    ``record`` must be a JSON object as ``json.loads`` returns it; it is not modified. The datum
    is sparse: a field that would be null is left out (every such field defaults to null).
    Raises InvalidRecord if ``record`` is not an object or holds a non-JSON value.
    """
    if not isinstance(record, dict):
        raise InvalidRecord(f"a CloudTrail record must be a JSON object, got {_json_type(record)}")
    datum, rest = split(record, _PLAN)
    datum["eventTimeMs"], datum["eventTimeStatus"] = parse_event_time(record)
    datum["unmodelled"] = json_text(rest) if rest else None
    datum["ingest"] = {
        "ingestTimeMs": ingest.ingest_time_ms,
        "source": ingest.source,
        "producerId": ingest.producer_id,
        "location": ingest.location,
    }
    return datum


def from_avro(datum: dict[str, Any]) -> dict[str, Any]:
    """The CloudTrail record a datum carries (ingest metadata and derived fields dropped).

    Accepts datums of any ApiCallEvent v1.x writer. Raises InvalidDatum if ``unmodelled`` or a
    JSON-text field is not valid JSON, or if ``unmodelled`` contradicts the typed fields.
    """
    record = join(datum, _PLAN)
    text = datum.get("unmodelled")
    if text is not None:
        rest = parse_json_text(text, "unmodelled")
        if type(rest) is not dict:
            raise InvalidDatum("unmodelled must be a JSON object")
        merge(record, rest)
    return record


def parse_event_time(record: dict[str, Any]) -> tuple[int | None, str]:
    """``(eventTimeMs, eventTimeStatus)`` for a record, by the policy in the module docstring."""
    value = record.get("eventTime")
    if value is None:
        return None, MISSING
    if type(value) is not str:
        return None, INVALID
    m = _RFC3339.fullmatch(value)
    if m is None:
        return None, INVALID
    y, mo, d, h, mi, sec, frac, zulu, sign, off_h, off_m = m.groups()
    h, mi, sec = int(h), int(mi), int(sec)
    if h > 23 or mi > 59 or sec > 59:  # second 60: leap seconds are not representable
        return None, INVALID
    try:
        days = date(int(y), int(mo), int(d)).toordinal() - _EPOCH_ORDINAL
    except ValueError:  # year 0, month 13, Feb 30
        return None, INVALID
    ms = ((days * 24 + h) * 60 + mi) * 60_000 + sec * 1000
    if frac:
        ms += int(frac[:3].ljust(3, "0"))
    if zulu is None:  # +hh:mm / -hh:mm: local time = UTC + offset
        hours, minutes = int(off_h), int(off_m)
        if hours > 23 or minutes > 59:
            return None, INVALID
        offset_ms = (hours * 60 + minutes) * 60_000
        ms += -offset_ms if sign == "+" else offset_ms
    return ms, PRESENT


def effective_time_ms(datum: dict[str, Any]) -> int:
    """Event time for windows and lake partitions: ``eventTimeMs``, or the ingest time when the
    record had no usable eventTime (``eventTimeStatus`` != PRESENT says so)."""
    ms = datum.get("eventTimeMs")
    return int(ms) if ms is not None else int(datum["ingest"]["ingestTimeMs"])


def ingest_of(datum: dict[str, Any]) -> IngestMeta:
    """The ingest metadata of a datum."""
    ing = datum["ingest"]
    return IngestMeta(ing["ingestTimeMs"], ing["source"], ing["producerId"], ing.get("location"))


def _json_type(value: Any) -> str:
    names = {list: "array", str: "string", bool: "boolean", int: "number", float: "number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)
