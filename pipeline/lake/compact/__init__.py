"""Lake compaction: plan, merge, run, notices."""
