"""The ASGI audit middleware's pure pieces (naming, redaction, errors, identity, record), and
its response-path contract against an in-memory ASGI call with a stub publisher (no I/O)."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
from typing import Any

from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from producers.asgi.identity import default_identity, source_ip, unverified_jwt_claims
from producers.asgi.mapping import (
    AuditContext,
    Exchange,
    RouteInfo,
    build_record,
    error_for,
    event_name,
    format_time,
    pascal_case,
    read_only,
)
from producers.asgi.middleware import AuditMiddleware
from producers.asgi.redact import DEFAULT_SECRET_KEYS, REDACTED, TRUNCATED, is_secret, redact
from producers.files import RawRecord

CTX = AuditContext("orders.example.internal", "111122223333", "eu-west-1")


def jwt(claims: dict[str, Any]) -> str:
    def part(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()
    return f"{part({'alg': 'RS256'})}.{part(claims)}.c2ln"


def headers(**items: str) -> Headers:
    return Headers({k.replace("_", "-"): v for k, v in items.items()})


# --- eventName ------------------------------------------------------------------------------

def test_single_method_named_route_gives_pascal_case_name() -> None:
    info = RouteInfo("GET", "/orders/7", "/orders/{order_id}", "get_order",
                     frozenset({"GET", "HEAD"}))
    assert event_name(info) == "GetOrder"
    assert event_name(RouteInfo("POST", "/o", "/o", "createOrder", frozenset({"POST"}))) \
        == "CreateOrder"
    assert pascal_case("list-orders_v2") == "ListOrdersV2"


def test_multi_method_lambda_and_unmatched_routes_use_the_template() -> None:
    multi = RouteInfo("DELETE", "/orders/7", "/orders/{order_id}", "OrderEndpoint", None)
    assert event_name(multi) == "DELETE /orders/{order_id}"
    lam = RouteInfo("GET", "/x", "/x", "<lambda>", frozenset({"GET", "HEAD"}))
    assert event_name(lam) == "GET /x"
    assert event_name(RouteInfo("GET", "/nope")) == "GET (unmatched)"


def test_route_names_override_and_fall_back_on_none() -> None:
    info = RouteInfo("GET", "/orders/7", "/orders/{order_id}", "get_order",
                     frozenset({"GET"}))
    assert event_name(info, lambda i: f"Describe{i.template.count('/')}") == "Describe2"
    assert event_name(info, lambda i: None) == "GetOrder"


def test_route_template_read_from_a_starlette_scope_including_mounts() -> None:
    async def get_order(_r: Request) -> JSONResponse:
        return JSONResponse({})
    inner = Route("/orders/{order_id}", get_order)
    mount = Mount("/v1", routes=[inner])
    ex = Exchange("r", 0, "GET", "/v1/orders/7",
                  scope={"route": inner, "root_path": "/v1", "path_params": {"order_id": "7"}})
    record = build_record(ex, CTX)
    assert record["eventName"] == "GetOrder"
    assert record["additionalEventData"]["path"] == "/v1/orders/{order_id}"
    assert record["requestParameters"] == {"order_id": "7"}
    unmatched = build_record(Exchange("r", 0, "GET", "/v1/zz", scope={"route": mount}), CTX)
    assert unmatched["eventName"] == "GET (unmatched)"
    assert unmatched["additionalEventData"]["path"] == "/v1/zz"


# --- redaction, readOnly, errors ------------------------------------------------------------

def test_redaction_is_recursive_case_insensitive_and_separator_blind() -> None:
    value = {"user": "ann", "Password": "p", "nested": {"API-Key": "k", "list": [
        {"client_secret": "s", "ok": 1}, "plain"]}, "X-Auth-Token": "t", "sessionId": "x",
        "Cookie": "c", "credentials": {"a": 1}}
    assert redact(value) == {"user": "ann", "Password": REDACTED, "nested": {
        "API-Key": REDACTED, "list": [{"client_secret": REDACTED, "ok": 1}, "plain"]},
        "X-Auth-Token": REDACTED, "sessionId": REDACTED, "Cookie": REDACTED,
        "credentials": REDACTED}
    assert value["Password"] == "p"  # a copy, the input is untouched
    assert is_secret("x_api_key") and is_secret("Authorization") and not is_secret("author")
    assert redact({"ssn": "1"}, DEFAULT_SECRET_KEYS | {"SSN"}) == {"ssn": REDACTED}


def test_redaction_truncates_absurd_nesting() -> None:
    deep: Any = "leaf"
    for _ in range(100):
        deep = {"a": deep}
    out = redact(deep)
    for _ in range(33):
        out = out["a"]
    assert out == TRUNCATED


def test_read_only_methods() -> None:
    assert [read_only(m) for m in ("GET", "head", "OPTIONS", "POST", "PUT", "DELETE")] \
        == [True, True, True, False, False, False]


def test_error_codes() -> None:
    assert error_for(200) is None and error_for(302) is None
    assert error_for(404) == ("NotFound", "Not Found")
    assert error_for(403) == ("AccessDenied", "Forbidden")
    assert error_for(409) == ("Conflict", "Conflict")
    assert error_for(429) == ("TooManyRequests", "Too Many Requests")
    assert error_for(500) == ("InternalError", "Internal Server Error")
    assert error_for(599) == ("HTTP599", "HTTP 599")
    assert error_for(500, "KeyError") == ("InternalError",
                                          "Internal Server Error: unhandled KeyError")


# --- identity and source IP -----------------------------------------------------------------

def test_default_identity_from_unverified_bearer_subject() -> None:
    h = headers(authorization="Bearer " + jwt({"sub": "alice", "iss": "https://idp"}))
    assert default_identity({}, h) == {"type": "WebIdentityUser", "principalId": "alice",
                                       "userName": "alice", "identityProvider": "https://idp",
                                       "verification": "unverified"}
    assert default_identity({}, headers(authorization="Bearer opaque")) == {"type": "Unknown"}
    assert default_identity({}, headers(authorization="Basic YTpi")) == {"type": "Unknown"}
    assert default_identity({}, headers()) == {"type": "Unknown"}
    assert unverified_jwt_claims("Bearer a.!!!.c") == {}


def test_default_identity_prefers_an_authenticated_starlette_user() -> None:
    from starlette.authentication import SimpleUser
    assert default_identity({"user": SimpleUser("bob")}, headers())["userName"] == "bob"


def test_source_ip_honours_forwarded_for_only_when_trusted() -> None:
    h = headers(x_forwarded_for="6.6.6.6, 203.0.113.9")
    assert source_ip(("10.0.0.2", 5000), h, False) == "10.0.0.2"
    assert source_ip(("10.0.0.2", 5000), h, True) == "203.0.113.9"
    assert source_ip(("10.0.0.2", 5000), headers(x_forwarded_for="junk"), True) == "10.0.0.2"
    assert source_ip(None, headers(), False) is None


# --- the whole record -----------------------------------------------------------------------

def test_record_shape_params_collisions_and_custom_resolver() -> None:
    def resolver(scope: Any, h: Headers) -> dict[str, Any]:
        return {"type": "IAMUser", "userName": h["x-user"]}
    ex = Exchange("req-1", 1_706_933_106_789, "POST", "/orders", b"dry=1&tag=a&tag=b&token=q",
                  [(b"x-user", b"carol"), (b"authorization", b"Bearer zzz"),
                   (b"user-agent", b"cli/1")], ("127.0.0.1", 1), status=201,
                  request_body=b'{"item": "pen", "dry": true, "password": "hunter2"}',
                  response_body=b'{"id": "o-1", "statusCode": "x"}')
    rec = build_record(ex, AuditContext("svc", "1", "r", resolver=resolver))
    assert rec["eventTime"] == format_time(1_706_933_106_789) == "2024-02-03T04:05:06.789Z"
    assert rec["userIdentity"] == {"type": "IAMUser", "userName": "carol"}
    assert rec["requestParameters"] == {"dry": "1", "tag": ["a", "b"], "token": REDACTED,
                                        "item": "pen", "body.dry": True, "password": REDACTED}
    assert rec["responseElements"] == {"statusCode": 201, "id": "o-1", "body.statusCode": "x"}
    assert rec["additionalEventData"]["requestHeaders"]["authorization"] == REDACTED
    assert (rec["readOnly"], rec["userAgent"], rec["sourceIPAddress"]) == (False, "cli/1",
                                                                           "127.0.0.1")
    assert "errorCode" not in rec and rec["eventName"] == "POST (unmatched)"
    assert {rec[k] for k in ("eventType", "eventCategory", "eventVersion")} \
        == {"AwsApiCall", "Management", "1.08"}


# --- the middleware's response path, with a stub publisher -----------------------------------

class StubPublisher:
    """Records when publish was called relative to the response; can raise or block."""

    def __init__(self, events: list[str], fail: bool = False, block_s: float = 0) -> None:
        self.events, self.fail, self.block_s = events, fail, block_s
        self.records: list[RawRecord] = []

    def publish(self, record: RawRecord, batch: Any = None) -> None:
        time.sleep(self.block_s)
        self.events.append("publish")
        if self.fail:
            raise RuntimeError("broker on fire")
        self.records.append(record)

    def poll(self, timeout_s: float = 0) -> None:
        pass

    def flush(self, timeout_s: float = 60) -> None:
        pass


def call(app: Any, method: str, path: str, body: bytes = b"") -> tuple[int, float]:
    """One in-memory ASGI request; returns (status, seconds until the response was complete)."""
    sent: list[dict[str, Any]] = []
    done = threading.Event()
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": method, "path": path, "raw_path": path.encode(), "root_path": "",
             "scheme": "http", "query_string": b"", "client": ("127.0.0.1", 1234),
             "server": ("test", 80), "headers": [(b"content-type", b"application/json")]}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            done.set()

    async def run() -> float:
        start = time.perf_counter()
        await app(scope, receive, send)
        return time.perf_counter() - start

    elapsed = asyncio.run(run())
    assert done.is_set()
    return sent[0]["status"], elapsed


def make_app(publisher: Any) -> AuditMiddleware:
    async def echo(request: Request) -> JSONResponse:
        return JSONResponse(await request.json())

    async def boom(_request: Request) -> JSONResponse:
        raise KeyError("password=hunter2")
    app = Starlette(routes=[Route("/echo", echo, methods=["POST"]), Route("/boom", boom)])
    return AuditMiddleware(app, publisher=publisher, service="svc", account_id="1", region="r")


def test_publish_happens_after_the_response_and_does_not_block_it() -> None:
    events: list[str] = []
    mw = make_app(StubPublisher(events, block_s=0.5))
    status, elapsed = call(mw, "POST", "/echo", b'{"a": 1}')
    events.append("response-returned")
    assert status == 200 and elapsed < 0.4
    assert mw.flush(5)
    assert events == ["response-returned", "publish"]
    assert mw.stats.published == 1


def test_a_failing_publisher_never_breaks_the_request() -> None:
    events: list[str] = []
    mw = make_app(StubPublisher(events, fail=True))
    assert call(mw, "POST", "/echo", b'{"a": 1}')[0] == 200
    assert call(mw, "POST", "/echo", b'{"a": 2}')[0] == 200
    mw.flush(5)
    assert events == ["publish", "publish"]
    assert (mw.stats.captured, mw.stats.published, mw.stats.failed) == (2, 0, 2)


def test_a_full_queue_drops_and_counts_instead_of_waiting() -> None:
    publisher = StubPublisher([], block_s=0.3)
    mw = make_app(publisher)
    mw._worker = type(mw._worker)(mw._publish, publisher.poll, max_queue=1)
    for _ in range(4):
        assert call(mw, "POST", "/echo", b"{}")[0] == 200
    mw.flush(5)
    assert mw.stats.captured == 4 and mw.stats.dropped >= 1
    assert mw.stats.published + mw.stats.dropped == 4


def test_an_exception_is_recorded_then_re_raised_unchanged() -> None:
    publisher = StubPublisher([])
    mw = make_app(publisher)
    try:
        call(mw, "GET", "/boom")
    except KeyError as exc:
        assert exc.args == ("password=hunter2",)
    else:
        raise AssertionError("the app's exception must propagate")
    mw.close(5)
    (record,) = publisher.records
    assert record.location.startswith("asgi:svc:") and record.value is not None
    assert record.value["errorCode"] == "InternalError"
    assert record.value["errorMessage"] == "Internal Server Error: unhandled KeyError"
    assert "hunter2" not in record.raw.decode()
    assert record.value["responseElements"] == {"statusCode": 500}
