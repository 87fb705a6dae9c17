"""``trailpipe lake query``: SQL over the lake with DuckDB.

The Parquet objects under ``events/`` are exposed as the view ``cloudtrail``, with the Hive
partition columns ``account``, ``region``, ``date`` and ``hour``. Files are read through
pyarrow's filesystems (local, or S3 with any endpoint), so no DuckDB extension has to be
downloaded; DuckDB pushes filters and projections into the Arrow dataset.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlparse

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs

from pipeline.lake.layout import EVENTS_DIR

VIEW = "cloudtrail"
PARTITIONS = pa.schema([("account", pa.string()), ("region", pa.string()),
                        ("date", pa.string()), ("hour", pa.string())])


class EmptyLake(Exception):
    """The lake holds no event objects yet."""


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


def events_dataset(url: str, s3_endpoint: str | None = None) -> ds.Dataset:
    """The events of the lake as one Arrow dataset with Hive partition columns.
    Raises EmptyLake when there are no Parquet objects."""
    fs, base = filesystem_for(url, s3_endpoint)
    selector = pafs.FileSelector(f"{base}/{EVENTS_DIR}", recursive=True, allow_not_found=True)
    files = sorted(i.path for i in fs.get_file_info(selector)
                   if i.type == pafs.FileType.File and i.path.endswith(".parquet"))
    if not files:
        raise EmptyLake(f"no event objects under {url}/{EVENTS_DIR}")
    partitioning = ds.partitioning(PARTITIONS, flavor="hive")
    return ds.dataset(files, format="parquet", filesystem=fs, partitioning=partitioning,
                      partition_base_dir=f"{base}/{EVENTS_DIR}")


def connect(url: str, s3_endpoint: str | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the ``cloudtrail`` view over the lake."""
    con = duckdb.connect()
    con.register(VIEW, events_dataset(url, s3_endpoint))
    return con


def run_query(url: str, sql: str, s3_endpoint: str | None = None) -> pa.Table:
    """Run ``sql`` against the lake; returns an Arrow table. DuckDB errors propagate."""
    return connect(url, s3_endpoint).sql(sql).to_arrow_table()
