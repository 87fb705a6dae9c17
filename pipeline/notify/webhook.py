"""Webhook destination: an HTTP POST per alert, signed the Standard Webhooks way or
GitHub's way.

Standard Webhooks: ``webhook-id`` (the idempotency key), ``webhook-timestamp`` (Unix seconds)
and ``webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`` with the key the
``whsec_`` secret decodes to. GitHub style: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of
the body>``. Status handling: 2xx delivered; 410 :class:`RouteGone`; 408, 429 and 5xx
retryable (``Retry-After`` honoured); other statuses are not retryable.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import time
import urllib.error
import urllib.request
from collections.abc import Callable

from pipeline.notify.alerts import Alert, alert_json, delivery_key, slack_body
from pipeline.notify.config import WebhookRoute, standard_key
from pipeline.notify.retry import DeliveryFailed, RateLimiter, RouteGone, parse_retry_after

RETRYABLE_STATUSES = frozenset({408, 425, 429})


def standard_signature(key: bytes, msg_id: str, timestamp_s: int, body: bytes) -> str:
    """The ``webhook-signature`` value: ``v1,`` + base64 HMAC-SHA256 of ``id.timestamp.body``."""
    signed = f"{msg_id}.{timestamp_s}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def github_signature(secret: bytes, body: bytes) -> str:
    """The ``X-Hub-Signature-256`` value: ``sha256=`` + hex HMAC-SHA256 of the body."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def signed_headers(route: WebhookRoute, msg_id: str, timestamp_s: int,
                   body: bytes) -> dict[str, str]:
    """The headers of one request: content type, the id, and the route's signature."""
    headers = {"Content-Type": "application/json", "webhook-id": msg_id,
               "webhook-timestamp": str(timestamp_s), "User-Agent": "trailpipe-notifier"}
    if route.signing == "standard" and route.secret is not None:
        headers["webhook-signature"] = standard_signature(
            standard_key(route.secret), msg_id, timestamp_s, body)
    elif route.signing == "github" and route.secret is not None:
        headers["X-Hub-Signature-256"] = github_signature(
            route.secret.get_secret_value().encode(), body)
    return headers


class Webhook:
    """Posts alerts to one route's URL (see the module docstring). ``limiter`` spaces the
    requests (Slack); ``now_s`` is the wall clock for ``webhook-timestamp``."""

    def __init__(self, route: WebhookRoute, *, limiter: RateLimiter | None = None,
                 now_s: Callable[[], float] = time.time) -> None:
        self._route, self._limiter, self._now_s = route, limiter, now_s

    def send(self, alert: Alert, raw: bytes) -> None:
        """Deliver one alert; raises DeliveryFailed or RouteGone."""
        body = slack_body(alert) if self._route.format == "slack" else alert_json(alert)
        if self._limiter is not None:
            self._limiter.acquire()
        now_s = self._now_s()
        headers = signed_headers(self._route, delivery_key(alert), int(now_s), body)
        request = urllib.request.Request(self._route.url, data=body, headers=headers,
                                         method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self._route.retry.timeout_s) as resp:
                resp.read()
        except urllib.error.HTTPError as exc:
            raise status_error(exc.code, exc.headers.get("Retry-After"), now_s) from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            reason = getattr(exc, "reason", exc)
            raise DeliveryFailed(f"{type(exc).__name__}: {reason}") from None

    def close(self) -> None:
        return None


def status_error(status: int, retry_after_header: str | None, now_s: float) -> Exception:
    """The exception a non-2xx answer means (see the module docstring)."""
    if status == 410:
        return RouteGone("HTTP 410 Gone")
    retry_after = parse_retry_after(retry_after_header, now_s)
    retryable = status in RETRYABLE_STATUSES or status >= 500
    return DeliveryFailed(f"HTTP {status}", retryable=retryable,
                          retry_after_s=retry_after if retryable else None)
