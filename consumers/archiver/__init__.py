"""The archiver daemon: Kafka → Parquet lake, exactly once."""
