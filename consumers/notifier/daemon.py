"""Wiring of the notifier daemon: alerts from ``[topics] alerts`` (read committed, so only
alerts of committed alerter transactions), decoded per record, fanned out by
:class:`~consumers.notifier.sink.NotifierSink` to the ``[notifier] routes``.

A value that is not an Alert is dead-lettered by the Runner. Alerts that no route takes are
counted (``unrouted`` in the summary) and logged once at start when there are no routes.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from consumers.notifier.sink import NotifierSink
from pipeline.daemon import Context, Parts
from pipeline.lake.store import aws_client
from pipeline.logs import get_logger
from pipeline.model import Event, StatelessProcessor
from pipeline.notify.config import KafkaRoute, SnsRoute, SyslogRoute, WebhookRoute
from pipeline.notify.fanout import Destination, Fanout, Item, Lane, RouteConfig
from pipeline.notify.outputs import KafkaTopic, Sns
from pipeline.notify.retry import RateLimiter
from pipeline.notify.syslog import Syslog
from pipeline.notify.webhook import Webhook
from pipeline.producer import KafkaProducer
from pipeline.rules.alert import decode_alert

log = get_logger("consumers.notifier")


class AlertDecoder(StatelessProcessor):
    """Decodes each consumed value into an :class:`Item` (raises AlertDecodeError on a
    value that is not an Alert: the Runner dead-letters it)."""

    def process(self, event: Event) -> Iterable[Any]:
        raw = event.raw if event.raw is not None else event.value
        return [Item(decode_alert(raw), raw)]


def destination(route: RouteConfig, ctx: Context) -> Destination:
    """The client for one route."""
    if isinstance(route, WebhookRoute):
        rate = route.rate_per_s()
        limiter = None if rate is None else RateLimiter(rate, clock=time.monotonic,
                                                        sleep=time.sleep)
        return Webhook(route, limiter=limiter)
    if isinstance(route, SnsRoute):
        region = route.region or route.topic_arn.split(":")[3] or None
        return Sns(aws_client("sns", route.endpoint_url, region), route.topic_arn)
    if isinstance(route, SyslogRoute):
        return Syslog(route)
    assert isinstance(route, KafkaRoute)
    return KafkaTopic(ctx.producer_conf(**{"linger.ms": "0"}), route.topic,
                      route.retry.timeout_s)


def wire(ctx: Context) -> Parts:
    """The notifier's parts: group ``[notifier] group`` on ``[topics] alerts``; dead letters
    to ``[topics] dlq``, route-disabled health records to ``[topics] health``; every Kafka
    route's topic must exist."""
    cfg, ncfg = ctx.cfg, ctx.cfg.notifier
    if not ncfg.routes:
        log.warning("notifier_without_routes", hint="add [[notifier.routes]] tables; alerts "
                    "are read and counted as unrouted")
    fanout = Fanout([Lane(route, destination(route, ctx)) for route in ncfg.routes])
    sink = NotifierSink(fanout, KafkaProducer(ctx.producer_conf(**{"linger.ms": "5"})),
                        dlq_topic=cfg.topics.dlq, health_topic=cfg.topics.health)
    route_topics = [r.topic for r in ncfg.routes if isinstance(r, KafkaRoute)]
    return Parts(topics=[cfg.topics.alerts], group=ncfg.group, processor=AlertDecoder(),
                 sink=sink, output_topics=[cfg.topics.health, *route_topics],
                 summary=sink.summary)
