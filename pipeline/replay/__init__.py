"""Forensic replay (``trailpipe replay``): re-read the events topic without joining a group,
filter, and write a deterministic, sorted output (issue 11)."""
