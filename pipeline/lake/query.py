"""``trailpipe lake query``: SQL over the lake with DuckDB.

The Parquet objects under ``events/`` are exposed as the view ``cloudtrail``, with the Hive
partition columns ``account``, ``region``, ``date`` and ``hour``, and ``year``, ``month``, ``day``
(from ``date``) as AWS's partitioned CloudTrail table has them, so partition-filtered Athena
queries run and skip the objects they exclude; columns and struct fields are lower case as in
Athena's DDL (``useridentity.sessioncontext.sessionissuer.username``); the aggregator's rows under
``aggregates/`` as the view ``aggregates`` (columns of the ``Aggregate`` record plus ``date``;
:mod:`pipeline.aggregates.table`). Those are raw parts: a window's base record and its
corrections are separate rows, and a replay can leave copies; :mod:`pipeline.aggregates.merge`
says how to sum them (``trailpipe aggregates show --source lake`` does). A view whose
directory holds no objects yet is an empty table with its columns.

The connection speaks Athena's Presto dialect too (its functions as DuckDB macros, UTC session
time zone): :mod:`pipeline.lake.athena`.

Files are read through pyarrow's filesystems (local, or S3 with any endpoint), so no DuckDB
extension has to be downloaded; DuckDB pushes filters and projections into the Arrow dataset.

Before a query runs, only the Hive prefixes its ``WHERE`` allows are listed: equality or ``IN``
on ``account``, ``region``, ``date``, ``hour`` (or ``year``/``month``/``day``) of every
reference to ``cloudtrail`` (:mod:`pipeline.lake.prune` reads the SQL,
:mod:`pipeline.lake.listing` walks the prefixes), so a query on one account, region and day
of a lake of millions of objects lists and opens only that day's. A query pruned to nothing
reads an empty ``cloudtrail`` view; the result is the same as without pruning.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlparse

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs

from pipeline.aggregates.table import AGGREGATES_DIR, ARROW_SCHEMA, PARTITIONING_SCHEMA
from pipeline.lake import athena
from pipeline.lake.columns import LAKE_SCHEMA
from pipeline.lake.layout import EVENTS_DIR
from pipeline.lake.listing import Listing, PartitionFilter, list_events
from pipeline.lake.prune import ANY, partition_filter
from pipeline.logs import get_logger

VIEW = "cloudtrail"
AGGREGATES_VIEW = "aggregates"
DATE_FIELD = PARTITIONING_SCHEMA.field("date")
PARTITIONS = pa.schema([("account", pa.string()), ("region", pa.string()),
                        ("date", pa.string()), ("hour", pa.string())])
ATHENA_PARTITIONS = pa.schema([("year", pa.string()), ("month", pa.string()),
                               ("day", pa.string())])
"""The partition columns of AWS's documented partitioned CloudTrail table (``region`` is
already ours), derived from ``date``: ``year='2024'``, ``month='03'``, ``day='10'``."""
EVENTS_SCHEMA = pa.schema([*LAKE_SCHEMA, *PARTITIONS, *ATHENA_PARTITIONS])
"""The columns of the ``cloudtrail`` view."""


log = get_logger("pipeline.lake.query")


class EmptyLake(Exception):
    """The lake holds no objects (of the kind asked for) yet."""


@dataclass(frozen=True, slots=True)
class QueryResult:
    """A query's rows, the partitions it was pruned to, and the listing work that took."""

    table: pa.Table
    partitions: PartitionFilter
    listing: Listing


def filesystem_for(url: str, s3_endpoint: str | None) -> tuple[pafs.FileSystem, str]:
    """(filesystem, base path) for a lake URL."""
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return pafs.LocalFileSystem(), os.path.abspath(parsed.netloc + parsed.path)
    if parsed.scheme != "s3":
        raise ValueError(f"unsupported lake URL {url!r}")
    args: dict[str, Any] = {"region": os.environ.get("AWS_REGION", "us-east-1")}
    if s3_endpoint:
        endpoint = urlparse(s3_endpoint)
        args.update(endpoint_override=endpoint.netloc, scheme=endpoint.scheme)
        if not os.environ.get("AWS_ACCESS_KEY_ID"):
            args.update(access_key="trailpipe", secret_key="trailpipe")
    return pafs.S3FileSystem(**args), f"{parsed.netloc}{parsed.path}".rstrip("/")


def _parquet_files(fs: pafs.FileSystem, root: str) -> list[str]:
    selector = pafs.FileSelector(root, recursive=True, allow_not_found=True)
    return sorted(i.path for i in fs.get_file_info(selector)
                  if i.type == pafs.FileType.File and i.path.endswith(".parquet"))


def _hive_dataset(url: str, s3_endpoint: str | None, directory: str,
                  partitions: pa.Schema) -> ds.Dataset:
    fs, base = filesystem_for(url, s3_endpoint)
    root = f"{base}/{directory}"
    files = _parquet_files(fs, root)
    if not files:
        raise EmptyLake(f"no objects under {url}/{directory}")
    partitioning = ds.partitioning(partitions, flavor="hive")
    return ds.dataset(files, format="parquet", filesystem=fs, partitioning=partitioning,
                      partition_base_dir=root)


def partition_values(relative_path: str) -> dict[str, str]:
    """The partition columns of an object at ``relative_path`` under ``events/``: its Hive
    ``key=value`` segments (URL-decoded, as the archiver quotes them), plus ``year``/``month``/
    ``day`` when it has a ``date=YYYY-MM-DD`` segment."""
    values: dict[str, str] = {}
    for segment in relative_path.split("/")[:-1]:
        name, equals, value = segment.partition("=")
        if name and equals:
            values[name] = unquote(value)
    date = values.get("date", "")
    if len(date) == 10 and date[4] == date[7] == "-":
        values.update(year=date[:4], month=date[5:7], day=date[8:])
    return values


def _partition_expression(values: dict[str, str]) -> ds.Expression:
    expr: ds.Expression = ds.scalar(True)
    for name in (*PARTITIONS.names, *ATHENA_PARTITIONS.names):
        if name in values:
            expr = expr & (ds.field(name) == pa.scalar(values[name], pa.string()))
    return expr


def events_dataset(url: str, s3_endpoint: str | None = None,
                   partitions: PartitionFilter = ANY) -> ds.Dataset:
    """The events of the lake as one Arrow dataset of :data:`EVENTS_SCHEMA`, from the objects
    under the Hive prefixes ``partitions`` allows (:func:`pipeline.lake.listing.list_events`):
    every object's partition columns come from its key (:func:`partition_values`), and a
    filter on them skips the objects it excludes without opening them. Raises EmptyLake when
    there are no such Parquet objects."""
    return _events(url, s3_endpoint, partitions)[0]


def _events(url: str, s3_endpoint: str | None,
            partitions: PartitionFilter) -> tuple[ds.Dataset, Listing]:
    fs, base = filesystem_for(url, s3_endpoint)
    root = f"{base}/{EVENTS_DIR}"
    listing = list_events(fs, root, partitions)
    if not listing.files:
        raise EmptyLake(f"no objects under {url}/{EVENTS_DIR}")
    files = listing.files
    expressions = [_partition_expression(partition_values(f[len(root) + 1:])) for f in files]
    dataset = ds.FileSystemDataset.from_paths(files, schema=EVENTS_SCHEMA,
                                              format=ds.ParquetFileFormat(), filesystem=fs,
                                              partitions=expressions)
    return dataset, listing


def aggregates_dataset(url: str, s3_endpoint: str | None = None) -> ds.Dataset:
    """The aggregator's rows under ``aggregates/`` as one Arrow dataset (partition columns
    ``window_size`` and ``date``). Raises EmptyLake when there are no Parquet objects."""
    return _hive_dataset(url, s3_endpoint, AGGREGATES_DIR, PARTITIONING_SCHEMA)


def connect(url: str, s3_endpoint: str | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the ``cloudtrail`` and ``aggregates`` views over the lake; a
    view whose directory holds no objects yet is an empty table of its columns. Raises
    EmptyLake when neither has objects."""
    con = duckdb.connect()
    athena.install(con)
    _register(con, url, s3_endpoint, ANY)
    return con


def _register(con: duckdb.DuckDBPyConnection, url: str, s3_endpoint: str | None,
              partitions: PartitionFilter) -> Listing:
    """Register both views on ``con``, ``cloudtrail`` over the objects ``partitions`` allows
    (an empty table when it allows none); raises EmptyLake (closing ``con``) when neither view
    has objects and nothing was pruned."""
    empty: list[str] = []
    listing = Listing()
    try:
        events, listing = _events(url, s3_endpoint, partitions)
        con.register(VIEW, events)
    except EmptyLake as exc:
        if partitions == ANY:
            empty.append(str(exc))
        con.register(VIEW, EVENTS_SCHEMA.empty_table())
    try:
        con.register(AGGREGATES_VIEW, aggregates_dataset(url, s3_endpoint))
    except EmptyLake as exc:
        empty.append(str(exc))
        con.register(AGGREGATES_VIEW, pa.schema([*ARROW_SCHEMA, DATE_FIELD]).empty_table())
    if len(empty) == 2:
        con.close()
        raise EmptyLake("; ".join(empty))
    return listing


def query(url: str, sql: str, s3_endpoint: str | None = None,
          prune: bool = True) -> QueryResult:
    """Run ``sql`` (DuckDB SQL, or Athena's Presto dialect: :mod:`pipeline.lake.athena`)
    against the lake, listing only the partitions its predicates allow (all with
    ``prune=False``); logs ``lake_query_listing`` with the listing counts. DuckDB errors
    propagate."""
    con = duckdb.connect()
    athena.install(con)
    text = athena.rewrite(con, sql)
    partitions = partition_filter(con, text) if prune else ANY
    listing = _register(con, url, s3_endpoint, partitions)
    log.info("lake_query_listing", objects_listed=listing.listed, listing_calls=listing.calls,
             objects=len(listing.files), pruned=partitions != ANY)
    return QueryResult(con.sql(text).to_arrow_table(), partitions, listing)


def run_query(url: str, sql: str, s3_endpoint: str | None = None) -> pa.Table:
    """The rows of :func:`query`."""
    return query(url, sql, s3_endpoint).table
