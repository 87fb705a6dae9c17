"""Pipeline health on ``[topics] health`` (``audit.health.v1``): the Avro ``Health`` record every
component writes (:mod:`pipeline.health.record`), and the probes that watch the pipeline from
outside: consumer lag (:mod:`pipeline.health.lag`) and the dead-letter rate
(:mod:`pipeline.health.dlq`), run on a schedule by :class:`pipeline.health.monitor.HealthMonitor`.
"""
