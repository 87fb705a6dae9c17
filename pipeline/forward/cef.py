"""CloudTrail records as ArcSight CEF lines (the syslog forwarder's ``format = "cef"``).

``CEF:0|trailpipe|trailpipe|<version>|<eventSource>:<eventName>|<eventName>|<severity>|<ext>``

Escaping is the notifier's (:mod:`pipeline.notify.cef`, per the CEF spec): header fields
escape ``\\`` and ``|`` (a line break cannot be held by a header and becomes a space: the
exact eventName is in ``act``); extension values escape ``\\`` and ``=`` and write line breaks
as ``\\n`` / ``\\r`` (a CR LF pair as one ``\\n``). Text is UTF-8.

Extension keys, in output order (absent or empty fields are left out):

================================  ==========================================================
``rt``                            eventTime as epoch milliseconds (when it is valid)
``externalId``                    eventID
``act``                           eventName
``cs1Label=eventSource cs1``      eventSource
``cs2Label=recipientAccountId``   recipientAccountId (in ``cs2``)
``cs3Label=awsRegion cs3``        awsRegion
``cs4Label=userIdentityType``     userIdentity.type (in ``cs4``)
``cs5Label=eventType cs5``        eventType
``cat``                           eventCategory
``suser``                         userIdentity.arn, else userIdentity.userName
``suid``                          userIdentity.principalId
``src`` / ``shost``               sourceIPAddress: ``src`` when it is an IP address, else
                                  ``shost`` (CloudTrail puts service names there too)
``requestClientApplication``      userAgent
``outcome``                       errorCode, else ``success``
``msg``                           errorMessage
================================  ==========================================================

Severity (:func:`severity`): 8 for a failed ConsoleLogin or any call by the root identity;
6 for a call that failed (errorCode set); 3 otherwise.
"""

from __future__ import annotations

from typing import Any

from pipeline import __version__
from pipeline.events.mapping import parse_event_time
from pipeline.notify.cef import escape_extension, escape_header, is_ip

VENDOR, PRODUCT = "trailpipe", "trailpipe"
SEVERITY_HIGH, SEVERITY_ERROR, SEVERITY_NORMAL = 8, 6, 3

_LABELLED = (("cs1", "eventSource", "eventSource"), ("cs2", "recipientAccountId",
             "recipientAccountId"), ("cs3", "awsRegion", "awsRegion"))


def severity(record: dict[str, Any]) -> int:
    """The CEF severity of a CloudTrail record (see the module docstring)."""
    identity = _dict(record.get("userIdentity"))
    response = _dict(record.get("responseElements"))
    if identity.get("type") == "Root":
        return SEVERITY_HIGH
    if record.get("eventName") == "ConsoleLogin" and (
            response.get("ConsoleLogin") == "Failure" or record.get("errorMessage")):
        return SEVERITY_HIGH
    return SEVERITY_ERROR if record.get("errorCode") else SEVERITY_NORMAL


def extensions(record: dict[str, Any]) -> list[tuple[str, Any]]:
    """The extension pairs of a record, in output order (see the module docstring)."""
    identity = _dict(record.get("userIdentity"))
    event_ms, _ = parse_event_time(record)
    pairs: list[tuple[str, Any]] = [("rt", event_ms), ("externalId", record.get("eventID")),
                                    ("act", record.get("eventName"))]
    for key, label, field in _LABELLED:
        pairs += [(f"{key}Label", label), (key, record.get(field))]
    pairs += [("cs4Label", "userIdentityType"), ("cs4", identity.get("type")),
              ("cs5Label", "eventType"), ("cs5", record.get("eventType")),
              ("cat", record.get("eventCategory")),
              ("suser", identity.get("arn") or identity.get("userName")),
              ("suid", identity.get("principalId"))]
    ip = record.get("sourceIPAddress")
    pairs.append(("src" if isinstance(ip, str) and is_ip(ip) else "shost", ip))
    pairs += [("requestClientApplication", record.get("userAgent")),
              ("outcome", record.get("errorCode") or "success"),
              ("msg", record.get("errorMessage"))]
    present = [(k, v) for k, v in pairs if _scalar(v)]
    # A label whose value is absent is dropped with it.
    keys = {k for k, _ in present}
    return [(k, v) for k, v in present if not k.endswith("Label") or k[:-5] in keys]


def cef_line(record: dict[str, Any]) -> str:
    """One CEF line for a CloudTrail record (no line break at the end)."""
    source, name = record.get("eventSource"), record.get("eventName")
    header = [VENDOR, PRODUCT, __version__, f"{_text(source)}:{_text(name)}", _text(name),
              severity(record)]
    ext = " ".join(f"{k}={escape_extension(_text(v))}" for k, v in extensions(record))
    return "CEF:0|" + "|".join(escape_header(h) for h in header) + "|" + ext


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):  # JSON's spelling, as CloudTrail writes it
        return "true" if value else "false"
    return str(value)


def _scalar(value: Any) -> bool:
    return value is not None and value != "" and not isinstance(value, dict | list)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
