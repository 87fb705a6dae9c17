"""The ASGI audit middleware in a real uvicorn server, publishing to the real broker."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from kit import read_all
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from pipeline.config import KafkaConfig
from pipeline.events import decode, from_avro
from pipeline.kafka import base_client_config, producer_config
from producers.asgi.middleware import AuditMiddleware
from producers.asgi.redact import REDACTED
from producers.publisher import Publisher

pytestmark = pytest.mark.integration
SERVICE, ACCOUNT, REGION = "orders.example.internal", "111122223333", "eu-west-1"
ORDERS = {"o-1": {"id": "o-1", "item": "pen"}}


async def get_order(request: Request) -> JSONResponse:
    order = ORDERS.get(request.path_params["order_id"])
    if order is None:
        raise HTTPException(404, "no such order")
    return JSONResponse(order)


async def create_order(request: Request) -> JSONResponse:
    body = await request.json()
    return JSONResponse({"id": "o-2", "item": body["item"], "token": "s3cr3t"}, 201)


async def boom(_request: Request) -> JSONResponse:
    raise RuntimeError("kaput")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(kafka: Any, make_topic: Any) -> Iterator[tuple[str, str, AuditMiddleware]]:
    events, dlq = make_topic("asgi", 3), make_topic("asgidlq", 1)
    conf = producer_config(base_client_config(KafkaConfig(), kafka.bootstrap), {"linger.ms": "5"})
    publisher = Publisher(conf, events_topic=events, dlq_topic=dlq, source="asgi",
                          producer_id="test-asgi")
    app = Starlette(routes=[Route("/orders/{order_id}", get_order, methods=["GET"]),
                            Route("/orders", create_order, methods=["POST"]),
                            Route("/boom", boom)])
    audited = AuditMiddleware(app, publisher=publisher, service=SERVICE, account_id=ACCOUNT,
                              region=REGION)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(audited, host="127.0.0.1", port=port,
                                           log_level="critical", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}", events, audited
    finally:
        server.should_exit = True  # lifespan shutdown flushes the audit queue
        thread.join(15)


def drive(url: str) -> None:
    """Five calls: a read, a write with secrets, a 404 from the app, an unknown path, a crash."""
    with httpx.Client(base_url=url, timeout=10) as client:
        assert client.get("/orders/o-1", headers={"User-Agent": "it/1"}).status_code == 200
        created = client.post("/orders?dry_run=1", json={"item": "ink", "password": "hunter2",
                                                          "card": {"api_key": "k"}},
                              headers={"Authorization": "Bearer opaque"})
        assert created.status_code == 201 and created.json()["token"] == "s3cr3t"
        assert client.get("/orders/o-9").status_code == 404
        assert client.get("/nowhere").status_code == 404
        # Last: uvicorn closes the connection after an app crash, and a request racing that
        # close on the same keep-alive connection would be reset.
        assert client.get("/boom").status_code == 500


def events_by_name(bootstrap: str, topic: str, count: int) -> dict[str, list[dict[str, Any]]]:
    """Read the events back, check what every one shares, and group them by eventName."""
    messages = read_all(bootstrap, topic, expected=count, timeout_s=20)
    assert len(messages) == count
    assert {m.key() for m in messages} == {f"{ACCOUNT}|{REGION}".encode()}
    by_name: dict[str, list[dict[str, Any]]] = {}
    for msg in messages:
        rec = from_avro(decode(msg.value()))
        by_name.setdefault(rec["eventName"], []).append(rec)
        assert rec["eventSource"] == SERVICE and rec["awsRegion"] == REGION
        assert rec["recipientAccountId"] == ACCOUNT and rec["sourceIPAddress"] == "127.0.0.1"
        assert rec["eventTime"].endswith("Z") and len(rec["eventTime"]) == 24
        location = dict(msg.headers() or [])["x-source-location"]
        assert location == f"asgi:{SERVICE}:{rec['requestID']}".encode()
    return by_name


def test_api_calls_become_cloudtrail_events_on_kafka(kafka: Any, served: Any) -> None:
    url, topic, audited = served
    drive(url)
    assert audited.flush(20)
    assert (audited.stats.captured, audited.stats.published) == (5, 5)
    by_name = events_by_name(kafka.bootstrap, topic, 5)
    assert sorted(by_name) == ["Boom", "CreateOrder", "GET (unmatched)", "GetOrder"]

    ok, missing = sorted(by_name["GetOrder"], key=lambda r: "errorCode" in r)
    assert ok["requestParameters"] == {"order_id": "o-1"} and ok["readOnly"] is True
    assert ok["responseElements"] == {"statusCode": 200, "id": "o-1", "item": "pen"}
    assert ok["userAgent"] == "it/1" and ok["userIdentity"] == {"type": "Unknown"}
    assert (missing["errorCode"], missing["errorMessage"]) == ("NotFound", "Not Found")

    create = by_name["CreateOrder"][0]
    assert create["readOnly"] is False and "errorCode" not in create
    assert create["requestParameters"] == {"dry_run": "1", "item": "ink", "password": REDACTED,
                                           "card": {"api_key": REDACTED}}
    assert create["responseElements"] == {"statusCode": 201, "id": "o-2", "item": "ink",
                                          "token": REDACTED}
    assert create["additionalEventData"]["requestHeaders"]["authorization"] == REDACTED

    crash = by_name["Boom"][0]
    assert crash["errorCode"] == "InternalError"
    assert crash["responseElements"]["statusCode"] == 500
    assert crash["additionalEventData"]["exception"] == "RuntimeError"
    assert by_name["GET (unmatched)"][0]["errorCode"] == "NotFound"
