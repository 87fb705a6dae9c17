"""The ``Alert`` record on ``audit.alerts.v1``: Avro single-object encoding (``C3 01`` + the
schema's CRC-64-AVRO fingerprint + body, as events are), keyed by ``alert_id``.

:func:`alert_record` builds the record from an :class:`~pipeline.rules.model.AlertDraft`;
:func:`encode_alert` / :func:`decode_alert` are the wire form (any Avro library can read it
with ``schemas/Alert.v1.avsc``).
"""

from __future__ import annotations

import hashlib
from typing import Any

from pipeline.events.records import RecordDecodeError, decode_record, encode_record
from pipeline.events.schemas import SchemaEntry, default_registry
from pipeline.rules.model import AlertDraft

ALERT = "io.trailpipe.audit.Alert"


class AlertDecodeError(ValueError):
    """A value on the alerts topic that is not an Alert this build knows."""


def alert_schema() -> SchemaEntry:
    return default_registry().newest(ALERT)


def alert_id(rule_id: str, key: str, window_start_ms: int) -> str:
    """Deterministic id: the first 32 hex digits of SHA-256 over rule id, key and window."""
    text = f"{rule_id}\x1f{key}\x1f{window_start_ms}".encode()
    return hashlib.sha256(text).hexdigest()[:32]


def alert_record(draft: AlertDraft, *, tags: tuple[str, ...], rule_source: str,
                 created_ms: int) -> dict[str, Any]:
    """The Avro datum for ``draft`` (empty strings become nulls for the optional fields)."""
    return {
        "alert_id": draft.alert_id, "update": draft.update, "kind": draft.kind,
        "rule_id": draft.rule_id, "title": draft.title, "severity": draft.severity,
        "tags": list(tags), "dedup_key": draft.key, "window_start_ms": draft.window_start_ms,
        "account": draft.account or None, "region": draft.region or None,
        "principal": draft.principal or None, "source_ip": draft.source_ip or None,
        "count": draft.count, "first_seen_ms": draft.first_seen_ms,
        "last_seen_ms": draft.last_seen_ms, "sample_event_ids": list(draft.sample_event_ids),
        "rule_ids": list(draft.rule_ids), "context": dict(draft.context),
        "rule_source": rule_source, "created_ms": created_ms,
    }


def encode_alert(record: dict[str, Any]) -> bytes:
    return encode_record(ALERT, record)


def decode_alert(value: bytes) -> dict[str, Any]:
    """The Alert datum in ``value``; AlertDecodeError when it is not one."""
    try:
        return decode_record(ALERT, value)
    except RecordDecodeError as exc:
        raise AlertDecodeError(str(exc)) from None
