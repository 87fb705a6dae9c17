"""The CloudTrail-native JSON mirror: Avro event batches -> one CloudTrail JSON record per
message (``audit.events.json.v1``), plus the per-SIEM filtered and redacted views."""
