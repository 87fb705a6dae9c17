"""The forwarder daemons: ``forward-syslog`` and ``forward-hec`` (see :mod:`pipeline.forward`)."""
