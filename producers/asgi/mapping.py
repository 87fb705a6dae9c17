"""One HTTP exchange -> one CloudTrail-shaped record, for :mod:`producers.asgi.middleware`.
Pure, no I/O.

**eventName** (:func:`event_name`), first rule that gives a name wins:

1. the ``route_names`` callable, given a :class:`RouteInfo`, returns a non-empty string;
2. the matched Starlette/FastAPI route has a name and serves exactly one method (HEAD, which
   Starlette adds to GET routes, does not count): the name in PascalCase, so the endpoint
   function ``get_order`` gives ``GetOrder`` and ``listOrders`` gives ``ListOrders``;
3. a route matched (multi-method routes, ``HTTPEndpoint`` classes, lambdas): ``"<METHOD>
   <template>"``, e.g. ``"DELETE /orders/{order_id}"`` (mount prefixes as matched);
4. no route matched (a 404 from the router, a plain ASGI app): ``"<METHOD> (unmatched)"``;
   the raw path is then in ``additionalEventData.path`` (a template otherwise).

**Redaction**: see :mod:`producers.asgi.redact`; applied to requestParameters,
responseElements and the recorded request headers.

**Errors** (:func:`error_for`): status >= 400 gives ``errorCode`` 403 ``AccessDenied``,
404 ``NotFound``, 5xx from an exception or 500 ``InternalError``, otherwise the reason phrase
in PascalCase (``BadRequest``, ``Conflict``, ``TooManyRequests``); ``errorMessage`` is the
reason phrase. An exception's message is not recorded (it may hold data), only its type.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl

from starlette.datastructures import Headers

from producers.asgi.identity import IdentityResolver, default_identity, source_ip
from producers.asgi.redact import DEFAULT_SECRET_KEYS, redact

READ_ONLY_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_ERROR_CODES = {403: "AccessDenied", 404: "NotFound", 500: "InternalError"}
_WORDS = re.compile(r"[^0-9A-Za-z]+")
_NOT_NAMES = frozenset({"<lambda>", "partial"})
RouteNamer = Callable[["RouteInfo"], "str | None"]


@dataclass(frozen=True, slots=True)
class RouteInfo:
    """What is known about the route of a request; the input of ``route_names``.
    ``template`` and ``name`` are None when no route matched."""

    method: str
    path: str
    template: str | None = None
    name: str | None = None
    methods: frozenset[str] | None = None


@dataclass(slots=True)
class Exchange:
    """What the middleware saw of one request and its response."""

    request_id: str
    start_ms: int
    method: str
    path: str
    query_string: bytes = b""
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    client: Any = None
    root_path: str = ""
    scope: dict[str, Any] = field(default_factory=dict)
    request_body: bytes | None = None
    request_bytes: int = 0
    status: int | None = None
    response_body: bytes | None = None
    response_bytes: int = 0
    duration_ms: float = 0.0
    exception: str | None = None


@dataclass(frozen=True, slots=True)
class AuditContext:
    """The fixed parts of every record of one service."""

    service: str
    account_id: str
    region: str
    resolver: IdentityResolver = default_identity
    secret_keys: Collection[str] = DEFAULT_SECRET_KEYS
    route_names: RouteNamer | None = None
    trust_forwarded: bool = False


def build_record(ex: Exchange, ctx: AuditContext) -> dict[str, Any]:
    """The CloudTrail record of one exchange (values may still need JSON normalising).
    Raises only if a user callable does (the caller counts and logs it)."""
    headers = Headers(raw=ex.headers)
    info = route_info(ex)
    record: dict[str, Any] = {
        "eventVersion": "1.08",
        "userIdentity": identity_of(ctx.resolver, ex.scope, headers),
        "eventTime": format_time(ex.start_ms),
        "eventSource": ctx.service,
        "eventName": event_name(info, ctx.route_names),
        "awsRegion": ctx.region,
        "requestParameters": request_parameters(ex, ctx.secret_keys),
        "responseElements": response_elements(ex, ctx.secret_keys),
        "additionalEventData": additional_data(ex, info, headers, ctx.secret_keys),
        "requestID": ex.request_id,
        "eventID": str(uuid.uuid4()),
        "readOnly": read_only(ex.method),
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": ctx.account_id,
        "eventCategory": "Management",
    }
    ip = source_ip(ex.client, headers, ctx.trust_forwarded)
    if ip is not None:
        record["sourceIPAddress"] = ip
    if "user-agent" in headers:
        record["userAgent"] = headers["user-agent"][:1024]
    error = error_for(ex.status or 500, ex.exception)
    if error is not None:
        record["errorCode"], record["errorMessage"] = error
    return record


def route_info(ex: Exchange) -> RouteInfo:
    """The matched route of a finished exchange, read from ``scope["route"]`` as Starlette's
    router leaves it (a Mount without a matching inner route counts as unmatched)."""
    route = ex.scope.get("route")
    path_format = getattr(route, "path_format", None)
    if route is None or not isinstance(path_format, str) or hasattr(route, "routes"):
        return RouteInfo(ex.method, ex.path)
    prefix = str(ex.scope.get("root_path", ""))
    prefix = prefix[len(ex.root_path):] if prefix.startswith(ex.root_path) else prefix
    methods = getattr(route, "methods", None)
    name = getattr(route, "name", None)
    return RouteInfo(ex.method, ex.path, prefix.rstrip("/") + path_format,
                     name if isinstance(name, str) else None,
                     frozenset(methods) if methods else None)


def event_name(info: RouteInfo, override: RouteNamer | None = None) -> str:
    """eventName by the rule in the module docstring."""
    if override is not None:
        named = override(info)
        if isinstance(named, str) and named:
            return named
    if info.template is None:
        return f"{info.method} (unmatched)"
    served = (info.methods or frozenset()) - {"HEAD"} or info.methods or frozenset()
    if info.name and info.name not in _NOT_NAMES and len(served) == 1:
        pascal = pascal_case(info.name)
        if pascal and not pascal[0].isdigit():
            return pascal
    return f"{info.method} {info.template}"


def pascal_case(name: str) -> str:
    """``get_order`` / ``get-order`` / ``getOrder`` -> ``GetOrder`` (inner capitals kept)."""
    return "".join(w[:1].upper() + w[1:] for w in _WORDS.split(name) if w)


def read_only(method: str) -> bool:
    """GET, HEAD and OPTIONS calls are read-only."""
    return method.upper() in READ_ONLY_METHODS


def error_for(status: int, exception: str | None = None) -> tuple[str, str] | None:
    """``(errorCode, errorMessage)`` for a failed call, None for status < 400 without an
    exception (rule in the module docstring)."""
    if exception is not None:
        return "InternalError", f"{_phrase(max(status, 500))}: unhandled {exception}"
    if status < 400:
        return None
    phrase = _phrase(status)
    code = _ERROR_CODES.get(status) or (pascal_case(phrase) if phrase else f"HTTP{status}")
    return code, phrase or f"HTTP {status}"


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def request_parameters(ex: Exchange, secret_keys: Collection[str]) -> dict[str, Any] | None:
    """Path params, then query params (repeated ones as a list), then the members of a JSON
    object body (a non-object body as ``body``); a key already taken is stored as
    ``query.<key>`` / ``body.<key>``. Redacted; None when empty."""
    params: dict[str, Any] = {}
    path_params = ex.scope.get("path_params")
    if isinstance(path_params, Mapping):
        _merge(params, "path", {str(k): _plain(v) for k, v in path_params.items()})
    query: dict[str, Any] = {}
    for key, val in parse_qsl(ex.query_string.decode("latin-1"), keep_blank_values=True):
        query[key] = [*query[key], val] if isinstance(query.get(key), list) else (
            [query[key], val] if key in query else val)
    _merge(params, "query", query)
    _merge(params, "body", _json_members(ex.request_body))
    return redact(params, secret_keys) if params else None


def response_elements(ex: Exchange, secret_keys: Collection[str]) -> dict[str, Any]:
    """``{"statusCode": n}`` plus the members of a captured JSON response body (same
    collision and redaction rules as :func:`request_parameters`)."""
    elements: dict[str, Any] = {"statusCode": ex.status or 500}
    _merge(elements, "body", _json_members(ex.response_body))
    return dict(redact(elements, secret_keys))


def additional_data(ex: Exchange, info: RouteInfo, headers: Headers,
                    secret_keys: Collection[str]) -> dict[str, Any]:
    """HTTP details CloudTrail has no field for: method, path template (raw path only when no
    route matched), duration, body sizes, redacted request headers, exception type."""
    data: dict[str, Any] = {
        "httpMethod": ex.method,
        "path": info.template if info.template is not None else ex.path[:1024],
        "durationMs": round(ex.duration_ms, 3),
        "requestBodyBytes": ex.request_bytes,
        "responseBodyBytes": ex.response_bytes,
        "requestHeaders": redact({k: ", ".join(headers.getlist(k)) for k in headers},
                                 secret_keys),
    }
    if ex.exception is not None:
        data["exception"] = ex.exception
    return data


def identity_of(resolver: IdentityResolver, scope: Mapping[str, Any],
                headers: Headers) -> dict[str, Any]:
    """The resolver's userIdentity; ``{"type": "Unknown"}`` when it returns a non-dict
    (a resolver that raises propagates: the caller logs it)."""
    identity = resolver(scope, headers)
    return identity if isinstance(identity, dict) else {"type": "Unknown"}


def format_time(epoch_ms: int) -> str:
    """``2024-02-03T04:05:06.789Z`` (UTC, millisecond precision)."""
    stamp = datetime.fromtimestamp(epoch_ms // 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{epoch_ms % 1000:03d}Z"


def _merge(into: dict[str, Any], source: str, members: Mapping[str, Any] | None) -> None:
    for key, val in (members or {}).items():
        into[f"{source}.{key}" if key in into else key] = val


def _json_members(body: bytes | None) -> dict[str, Any] | None:
    if not body:
        return None
    try:
        value = json.loads(body, parse_constant=_reject_constant)
    except (ValueError, RecursionError):  # not JSON, not UTF-8, NaN/Infinity, too deep
        return None
    return value if isinstance(value, dict) else {"body": value}


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _plain(value: Any) -> Any:
    return value if isinstance(value, str | int | float | bool) or value is None else str(value)
