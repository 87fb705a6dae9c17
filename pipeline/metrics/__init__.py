"""Prometheus metrics and health endpoints for every daemon: the Runner's observer
(:class:`~pipeline.metrics.registry.DaemonMetrics`), the health checks
(:mod:`~pipeline.metrics.readiness`), the HTTP endpoint (:mod:`~pipeline.metrics.server`),
every metric name (:mod:`~pipeline.metrics.names`) and ``[metrics]``
(:mod:`~pipeline.metrics.config`)."""
