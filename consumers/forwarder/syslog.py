"""Wiring of ``trailpipe consume forward-syslog``: a JSON topic (``[forward_syslog] topic``,
default ``[topics] events_json``) in group ``[forward_syslog] group``, per record, to one
syslog receiver (:mod:`pipeline.forward.syslog`). At least once, not transactional: offsets
are committed only for messages the receiver confirmed; undecodable or too long records are
dead-lettered with the reason."""

from __future__ import annotations

from pipeline.daemon import Context, Parts
from pipeline.forward.records import Formatter
from pipeline.forward.syslog import SyslogSink, message_limit, renderer


def wire(ctx: Context) -> Parts:
    cfg = ctx.cfg.forward_syslog
    hint = (": raise max_message_bytes and the receiver's limit (rsyslog maxMessageSize, "
            "syslog-ng log-msg-size) together" if cfg.transport != "udp" else
            ": UDP carries at most 65,000 bytes; use tcp or tls")
    sink = SyslogSink(cfg)
    return Parts(topics=[cfg.topic or ctx.cfg.topics.events_json], group=cfg.group,
                 processor=Formatter(renderer(cfg), max_bytes=message_limit(cfg),
                                     limit_hint=hint),
                 sink=sink, summary=sink.summary)
