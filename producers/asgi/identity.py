"""Who made an API call and from where, for :mod:`producers.asgi.middleware`: the pluggable identity
resolver and the source IP rule. Pure functions, no I/O.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
from collections.abc import Mapping
from typing import Any, Protocol

from starlette.datastructures import Headers

MAX_SUBJECT_CHARS = 256
MAX_TOKEN_CHARS = 16 * 1024


class IdentityResolver(Protocol):
    """Returns the CloudTrail ``userIdentity`` object of one request.

    Called after the response was sent, off the event loop (in the audit worker thread), with a
    shallow copy of the ASGI scope as the app left it (so ``scope["user"]`` set by Starlette's
    AuthenticationMiddleware, or anything your auth put in the scope, is visible) and the request
    headers. Must be thread-safe, must not do async I/O, and should return a JSON object shaped
    like CloudTrail's ``userIdentity`` (``type``, ``principalId``, ``arn``, ``accountId``,
    ``userName``, ...). Never put the credential itself in it. If it raises or returns something
    that is not a dict, the event gets ``{"type": "Unknown"}`` and the failure is logged.
    """

    def __call__(self, scope: Mapping[str, Any], headers: Headers) -> dict[str, Any]: ...


def default_identity(scope: Mapping[str, Any], headers: Headers) -> dict[str, Any]:
    """The default :class:`IdentityResolver`, in this order:

    1. an authenticated Starlette user in ``scope["user"]`` (verified by the app's own
       authentication backend): ``{"type": "Unknown", "principalId": <display name>,
       "userName": <display name>, "verification": "app"}``;
    2. a bearer token that is a JWT with a string ``sub`` claim: ``{"type": "WebIdentityUser",
       "principalId": sub, "userName": sub, "identityProvider": iss (when present),
       "verification": "unverified"}``. The signature is NOT checked (the app does that); the
       ``verification`` member says so, and the token itself is never recorded;
    3. otherwise ``{"type": "Unknown"}``.
    """
    user = scope.get("user")
    if getattr(user, "is_authenticated", False):
        name = _display_name(user)
        if name:
            return {"type": "Unknown", "principalId": name, "userName": name,
                    "verification": "app"}
    claims = unverified_jwt_claims(headers.get("authorization", ""))
    sub = claims.get("sub")
    if isinstance(sub, str) and 0 < len(sub) <= MAX_SUBJECT_CHARS:
        identity: dict[str, Any] = {"type": "WebIdentityUser", "principalId": sub,
                                    "userName": sub, "verification": "unverified"}
        iss = claims.get("iss")
        if isinstance(iss, str) and len(iss) <= MAX_SUBJECT_CHARS:
            identity["identityProvider"] = iss
        return identity
    return {"type": "Unknown"}


def unverified_jwt_claims(authorization: str) -> dict[str, Any]:
    """The claims of a ``Bearer <JWT>`` header value, decoded WITHOUT verifying the signature;
    ``{}`` when the value is not a bearer JWT with a JSON-object payload. Never raises."""
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > MAX_TOKEN_CHARS:
        return {}
    parts = token.split(".")
    if len(parts) != 3:
        return {}
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeError, RecursionError):
        return {}
    return claims if isinstance(claims, dict) else {}


def source_ip(client: Any, headers: Headers, trust_forwarded: bool) -> str | None:
    """The caller's IP address: the ASGI ``client`` host; with ``trust_forwarded`` the LAST
    valid address of ``X-Forwarded-For`` (the one the proxy in front of this server appended;
    the left-hand entries are client-supplied and spoofable). Behind a chain of proxies, use the
    server's own proxy-header handling instead (uvicorn ``--forwarded-allow-ips``), which
    rewrites ``client``, and leave ``trust_forwarded`` off."""
    if trust_forwarded:
        hops = [h.strip() for v in headers.getlist("x-forwarded-for") for h in v.split(",")]
        if hops and _is_ip(hops[-1]):
            return hops[-1]
    if isinstance(client, list | tuple) and client and isinstance(client[0], str):
        return client[0]
    return None


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _display_name(user: Any) -> str | None:
    try:
        name = user.display_name
    except Exception:  # a user object of the app's own making: anything may happen
        return None
    return name if isinstance(name, str) and 0 < len(name) <= MAX_SUBJECT_CHARS else None
