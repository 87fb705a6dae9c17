"""The Parquet lake on S3 or a local directory: storage, layout, digests."""
