"""The aggregator: 1-minute/1-hour windows, Insights and source health (see :mod:`.daemon`)."""
