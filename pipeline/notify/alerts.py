"""What every destination says about an alert: its idempotency key, its JSON form, the Slack
text, and which routes take it.

The idempotency key is ``<alert_id>-<update>``: the same alert re-delivered after a crash (the
notifier is at-least-once) carries the same key, so a receiver can drop the copy; an update of
the alert carries a new one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from pipeline.notify.config import SEVERITY_RANK, Match

Alert = Mapping[str, Any]
"""A decoded ``io.trailpipe.audit.Alert`` datum (see ``schemas/Alert.v1.avsc``)."""


def delivery_key(alert: Alert) -> str:
    """The idempotency key of one alert version: ``<alert_id>-<update>``."""
    return f"{alert['alert_id']}-{alert['update']}"


def alert_json(alert: Alert) -> bytes:
    """The alert as compact JSON with sorted keys, plus ``delivery_key``."""
    return orjson.dumps({**alert, "delivery_key": delivery_key(alert)},
                        option=orjson.OPT_SORT_KEYS)


def matches(match: Match, alert: Alert) -> bool:
    """True when ``alert`` satisfies every condition of ``match``."""
    if SEVERITY_RANK[alert["severity"]] < SEVERITY_RANK[match.min_severity]:
        return False
    if match.tags and not set(match.tags) & set(alert.get("tags") or ()):
        return False
    if match.accounts and alert.get("account") not in match.accounts:
        return False
    kind = "opening" if alert["update"] == 0 else "update"
    return kind in match.kinds


def slack_body(alert: Alert) -> bytes:
    """A Slack-compatible incoming-webhook body: ``{"text": ...}`` in Slack's mrkdwn, with
    ``&``, ``<`` and ``>`` escaped as Slack requires."""
    def esc(value: Any) -> str:
        return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

    what = "update" if alert["update"] else "new alert"
    lines = [f"*[{esc(alert['severity']).upper()}] {esc(alert['title'])}* ({what})",
             f"rule `{esc(alert['rule_id'])}` · count {alert['count']}"]
    for label, field in (("account", "account"), ("region", "region"),
                         ("principal", "principal"), ("source IP", "source_ip")):
        if alert.get(field):
            lines.append(f"{label}: {esc(alert[field])}")
    lines.append(f"alert `{esc(delivery_key(alert))}`")
    return orjson.dumps({"text": "\n".join(lines)})
