"""The alerter: rules over the event stream, exactly-once alerts (see :mod:`.daemon`)."""
