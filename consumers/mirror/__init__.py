"""The JSON mirror daemon (``trailpipe consume mirror``): Avro events and alerts -> CloudTrail's
own JSON, plus every SIEM's filtered/redacted view, exactly once."""
