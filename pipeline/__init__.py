"""trailpipe: CloudTrail-style audit events on Kafka (the library)."""

__version__ = "0.1.0"
