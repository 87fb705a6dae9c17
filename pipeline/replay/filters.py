"""Replay filters as a column-wise mask over a decoded events batch table.

The table is what :func:`pipeline.daemon.events_decoder` gives (ApiCallEvent columns, nested
structs kept). Every filter that is set must hold (AND); a null value never matches:

* window: ``from_ms <= eventTimeMs < to_ms`` (half-open, UTC epoch ms; a record without a
  usable ``eventTime`` has a null ``eventTimeMs`` and is never in a window);
* ``account``: the account of the event key (:func:`pipeline.events.partition.event_key`):
  ``recipientAccountId``, else ``userIdentity.accountId`` when that is null or empty;
* ``region``: ``awsRegion``; ``event_source``: ``eventSource``; ``event_name``: ``eventName``
  (exact, case-sensitive, as CloudTrail writes them);
* ``principal``: ``userIdentity.arn`` or ``userIdentity.userName`` equals it;
* ``source_ip``: ``sourceIPAddress``;
* ``error``: True keeps records with a non-empty ``errorCode``, False those without.

``where`` is not part of :func:`mask`: it needs SQL over all the rows a run kept
(:func:`pipeline.replay.where.apply_where`).
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc


@dataclass(frozen=True, slots=True)
class Filters:
    """What a replay keeps; ``None`` means "any"."""

    from_ms: int
    to_ms: int
    account: str | None = None
    region: str | None = None
    event_source: str | None = None
    event_name: str | None = None
    principal: str | None = None
    source_ip: str | None = None
    error: bool | None = None
    where: str | None = None
    """A SQL predicate (:mod:`pipeline.replay.where`), applied after :func:`mask` on the
    merged rows; part of the filters so the manifest and the replay id record it."""

    def __post_init__(self) -> None:
        if self.from_ms >= self.to_ms:
            raise ValueError(f"empty window: from {self.from_ms} >= to {self.to_ms}")

    @property
    def targeted(self) -> bool:
        """Both account and region are given: one partition holds every match."""
        return self.account is not None and self.region is not None


def mask(table: pa.Table, filters: Filters) -> pa.Array:
    """A boolean array (no nulls), True for each row of ``table`` that every filter keeps."""
    times = table.column("eventTimeMs")
    keep = pc.and_(pc.greater_equal(times, filters.from_ms), pc.less(times, filters.to_ms))
    for column, wanted in _equalities(table, filters):
        if wanted is not None:
            keep = pc.and_(keep, pc.equal(column, wanted))
    if filters.principal is not None:
        identity = table.column("userIdentity")
        by_arn = pc.equal(pc.struct_field(identity, "arn"), filters.principal)
        by_name = pc.equal(pc.struct_field(identity, "userName"), filters.principal)
        keep = pc.and_(keep, pc.or_(pc.fill_null(by_arn, False), pc.fill_null(by_name, False)))
    if filters.error is not None:
        code = table.column("errorCode")
        has_error = pc.fill_null(pc.greater(pc.utf8_length(code), 0), False)
        keep = pc.and_(keep, has_error if filters.error else pc.invert(has_error))
    return pc.fill_null(_combined(keep), False)


def _equalities(table: pa.Table, filters: Filters) -> list[tuple[pa.ChunkedArray, str | None]]:
    return [(account_column(table), filters.account),
            (table.column("awsRegion"), filters.region),
            (table.column("eventSource"), filters.event_source),
            (table.column("eventName"), filters.event_name),
            (table.column("sourceIPAddress"), filters.source_ip)]


def account_column(table: pa.Table) -> pa.ChunkedArray:
    """The event key's account per row: ``recipientAccountId``, else ``userIdentity.accountId``
    (null when neither is a non-empty string)."""
    recipient = table.column("recipientAccountId")
    identity = pc.struct_field(table.column("userIdentity"), "accountId")
    usable = pc.fill_null(pc.greater(pc.utf8_length(recipient), 0), False)
    return pc.if_else(usable, recipient, identity)


def _combined(keep: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(keep, pa.ChunkedArray):
        return keep.combine_chunks() if keep.num_chunks else pa.array([], pa.bool_())
    return keep
