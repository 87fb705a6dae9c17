"""The report's DuckDB connection over the lake, listing only the window's partitions.

``cloudtrail`` is the events dataset of the Hive prefixes the window can hold
(:func:`pipeline.lake.listing.window_filter`: its UTC dates, its hours when it lies within one
day, its account), so a day's report on a lake of years lists and opens that day's objects
only; the rows are then cut to the exact window by the report's view. ``aggregates`` is the
aggregator's dataset (small: per-window counts). A view whose objects do not exist yet is an
empty table of its columns, so an empty lake gives a report of "no data" sections.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import pyarrow as pa

from pipeline.aggregates.table import ARROW_SCHEMA
from pipeline.lake import athena
from pipeline.lake.listing import window_filter
from pipeline.lake.query import (
    AGGREGATES_VIEW,
    DATE_FIELD,
    EVENTS_SCHEMA,
    VIEW,
    EmptyLake,
    aggregates_dataset,
    events_dataset,
)
from pipeline.report.window import Window


@dataclass(frozen=True, slots=True)
class LakeViews:
    """The connection, the event objects the window's listing found, and whether the lake's
    ``aggregates/`` had objects."""

    con: duckdb.DuckDBPyConnection
    event_objects: int
    has_aggregates: bool


def open_window(url: str, s3_endpoint: str | None, window: Window) -> LakeViews:
    """A connection with the ``cloudtrail`` view over the objects of the window's partitions
    and the ``aggregates`` view (see the module contract), Athena's functions installed.
    Listing or reading errors (``OSError``, ``ValueError`` for a bad URL) propagate."""
    con = duckdb.connect()
    athena.install(con)
    accounts = None if window.account is None else frozenset({window.account})
    partitions = window_filter(window.start_ms, window.end_ms, accounts=accounts)
    try:
        events = events_dataset(url, s3_endpoint, partitions)
        con.register(VIEW, events)
        objects = len(events.files)
    except EmptyLake:
        con.register(VIEW, EVENTS_SCHEMA.empty_table())
        objects = 0
    try:
        con.register(AGGREGATES_VIEW, aggregates_dataset(url, s3_endpoint))
        has_aggregates = True
    except EmptyLake:
        con.register(AGGREGATES_VIEW, pa.schema([*ARROW_SCHEMA, DATE_FIELD]).empty_table())
        has_aggregates = False
    return LakeViews(con, objects, has_aggregates)
