"""ArcSight Common Event Format (CEF) lines for alerts.

``CEF:0|Vendor|Product|Version|SignatureID|Name|Severity|Extension``. Escaping per the CEF
spec: in header fields ``\\`` and ``|`` are backslash-escaped (a line break, which a header
cannot hold, becomes a space); in extension values ``\\`` and ``=`` are backslash-escaped and
line breaks are written ``\\n`` / ``\\r``.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from pipeline.notify.alerts import Alert, delivery_key

VENDOR, PRODUCT, VERSION = "trailpipe", "trailpipe", "1"
CEF_SEVERITY = {"info": 1, "low": 3, "medium": 5, "high": 8, "critical": 10}
"""Alert severity → CEF's 0-10 scale."""


def escape_header(value: Any) -> str:
    text = str(value).replace("\\", "\\\\").replace("|", "\\|")
    return text.replace("\r\n", " ").replace("\n", " ").replace("\r", " ")


def escape_extension(value: Any) -> str:
    text = str(value).replace("\\", "\\\\").replace("=", "\\=")
    return text.replace("\r\n", "\\n").replace("\n", "\\n").replace("\r", "\\r")


def extensions(alert: Alert) -> list[tuple[str, Any]]:
    """The extension pairs of an alert, in output order (absent fields omitted). Custom
    string fields carry their meaning in the ``csNLabel`` that precedes them."""
    pairs: list[tuple[str, Any]] = [
        ("externalId", delivery_key(alert)), ("cat", alert["kind"]),
        ("cnt", alert["count"]), ("start", alert["first_seen_ms"]),
        ("end", alert["last_seen_ms"]), ("rt", alert["created_ms"]),
        ("cs1Label", "alertId"), ("cs1", alert["alert_id"]),
        ("cn1Label", "update"), ("cn1", alert["update"]),
        ("cs2Label", "tags"), ("cs2", ",".join(alert.get("tags") or ())),
        ("cs3Label", "dedupKey"), ("cs3", alert["dedup_key"]),
        ("cs4Label", "ruleSource"), ("cs4", alert["rule_source"]),
    ]
    for label_key, key, field in (("cs5Label", "cs5", "account"), ("cs6Label", "cs6", "region")):
        if alert.get(field):
            pairs += [(label_key, field), (key, alert[field])]
    if alert.get("principal"):
        pairs.append(("suser", alert["principal"]))
    ip = alert.get("source_ip")
    if ip:
        pairs.append(("src" if is_ip(ip) else "shost", ip))
    if alert.get("sample_event_ids"):
        pairs.append(("msg", "sample eventIDs: " + ", ".join(alert["sample_event_ids"])))
    return pairs


def cef_line(alert: Alert) -> str:
    """One CEF line for ``alert`` (no line break at the end)."""
    header = [VENDOR, PRODUCT, VERSION, alert["rule_id"], alert["title"],
              CEF_SEVERITY[alert["severity"]]]
    ext = " ".join(f"{k}={escape_extension(v)}" for k, v in extensions(alert))
    return "CEF:0|" + "|".join(escape_header(h) for h in header) + "|" + ext


def is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
