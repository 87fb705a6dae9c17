"""The ``trailpipe`` command line: one module per command group (composition only)."""
